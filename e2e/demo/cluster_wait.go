package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ClusterView is one healthy Redis Cluster as its pods report it.
type ClusterView struct {
	Masters  []string          // pods with role:master
	Replicas map[string]string // replica pod -> its master's pod
}

// WaitCluster waits until the StatefulSet has want pods, all Ready, and
// every pod reports cluster_state:ok with all 16384 slots ok and want known
// nodes, and no node in any pod's CLUSTER NODES is flagged fail or noaddr
// (cluster_state:ok alone is not health after an IP change; see DESIGN.md).
func (e Env) WaitCluster(ctx context.Context, ns, sts string, want int, timeout time.Duration) (ClusterView, error) {
	var v ClusterView
	err := poll(ctx, fmt.Sprintf("%d pods of %s/%s Ready with cluster_state:ok everywhere", want, ns, sts), timeout, 250*time.Millisecond, func(ctx context.Context) error {
		var err error
		v, err = e.clusterHealthy(ctx, ns, sts, want)
		return err
	})
	return v, err
}

func (e Env) clusterHealthy(ctx context.Context, ns, sts string, want int) (ClusterView, error) {
	v := ClusterView{Replicas: map[string]string{}}
	pods, err := e.podsOf(ctx, ns, sts)
	if err != nil {
		return v, err
	}
	if len(pods) != want {
		return v, fmt.Errorf("%d pods, want %d", len(pods), want)
	}
	byIP := map[string]string{}
	for i := range pods {
		if !podReady(&pods[i]) {
			return v, fmt.Errorf("pod %s not Ready", pods[i].Name)
		}
		byIP[pods[i].Status.PodIP] = pods[i].Name
	}
	var errs []error
	for i := range pods {
		p := &pods[i]
		c := e.newClient(redisAddr(p))
		info, err := c.ClusterInfo(ctx).Result()
		var nodes string
		if err == nil {
			nodes, err = c.ClusterNodes(ctx).Result()
		}
		var repl Replication
		if err == nil {
			repl, err = e.replicationOf(ctx, c)
		}
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			continue
		}
		for field, wantV := range map[string]string{"cluster_state": "ok", "cluster_slots_ok": "16384", "cluster_known_nodes": fmt.Sprint(want)} {
			if got := ParseInfoField(info, field); got != wantV {
				errs = append(errs, fmt.Errorf("%s: %s:%s, want %s", p.Name, field, got, wantV))
			}
		}
		if bad := BadClusterNodes(nodes); len(bad) > 0 {
			errs = append(errs, fmt.Errorf("%s sees %s", p.Name, strings.Join(bad, "; ")))
		}
		switch repl.Role {
		case "master":
			v.Masters = append(v.Masters, p.Name)
		case "slave":
			v.Replicas[p.Name] = byIP[repl.MasterHost]
			if !repl.LinkUp {
				errs = append(errs, fmt.Errorf("%s: master link to %s down", p.Name, repl.MasterHost))
			}
		}
	}
	return v, errors.Join(errs...)
}

// BadClusterNodes returns the CLUSTER NODES lines (id, address, flags) of
// nodes flagged fail, fail? or noaddr. Pure.
func BadClusterNodes(nodes string) []string {
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		for _, flag := range strings.Split(f[2], ",") {
			if flag == "fail" || flag == "fail?" || flag == "noaddr" {
				id := f[0]
				if len(id) > 8 {
					id = id[:8]
				}
				bad = append(bad, fmt.Sprintf("node %s at %s flagged %s", id, f[1], f[2]))
				break
			}
		}
	}
	return bad
}
