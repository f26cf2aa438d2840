package faults

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/workload"
)

// Client settings shared by every workload: each attempt is one try (no
// hidden retries, so the history is what the server did), bounded by short
// timeouts so a frozen or partitioned master costs one timeout per attempt.
const (
	dialTimeout  = 500 * time.Millisecond
	readTimeout  = 1500 * time.Millisecond
	writeTimeout = time.Second
	waitTimeout  = 500 * time.Millisecond // WAIT 1's own timeout, below readTimeout
	writeEvery   = 20 * time.Millisecond
)

func masterSvcClient(d *deployment) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("redis-master.%s.svc.cluster.local:6379", d.ns), Dialer: cluster.DialContext,
		DialTimeout: dialTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, MaxRetries: -1, PoolSize: 2, Protocol: 2})
}

func sentinelClient(d *deployment, svc string) *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster",
		SentinelAddrs: []string{fmt.Sprintf("%s.%s.svc.cluster.local:26379", svc, d.ns)}, Dialer: cluster.DialContext,
		DialTimeout: dialTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, MaxRetries: -1, PoolSize: 2, Protocol: 2})
}

func clusterClient(d *deployment, svc string) *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{fmt.Sprintf("%s.%s.svc.cluster.local:6379", svc, d.ns)}, Dialer: cluster.DialContext,
		DialTimeout: dialTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, MaxRetries: -1, MaxRedirects: 3, PoolSize: 2, Protocol: 2})
}

// clientKind names how a workload reaches Redis; fresh builds a new client
// of that kind (for the writer and, after the fault, for the read back).
type clientKind struct {
	name  string
	fresh func(d *deployment) redis.UniversalClient
}

func kindsFor(d *deployment) []clientKind {
	switch {
	case d.cluster:
		svc := "redis-cluster"
		return []clientKind{{"cluster-client", func(d *deployment) redis.UniversalClient { return clusterClient(d, svc) }}}
	case d.agent:
		return []clientKind{
			{"master-svc", func(d *deployment) redis.UniversalClient { return masterSvcClient(d) }},
			{"sentinel-client", func(d *deployment) redis.UniversalClient { return sentinelClient(d, "redis-sentinel") }},
		}
	default:
		return []clientKind{{"sentinel-client", func(d *deployment) redis.UniversalClient { return sentinelClient(d, "redis-sentinel") }}}
	}
}

// workloadSpec is one writer of a scenario.
type workloadSpec struct {
	mode workload.Mode
	kind clientKind
}

func (w workloadSpec) name() string { return string(w.mode) + "/" + w.kind.name }

// workloadsFor: WAIT 1 through every client kind, and no-WAIT and the
// counter through the first (the one the setup recommends).
func workloadsFor(d *deployment) []workloadSpec {
	kinds := kindsFor(d)
	var out []workloadSpec
	for _, k := range kinds {
		out = append(out, workloadSpec{workload.ModeWait1, k})
	}
	out = append(out, workloadSpec{workload.ModeNoWait, kinds[len(kinds)-1]}, workloadSpec{workload.ModeCounter, kinds[0]})
	return out
}
