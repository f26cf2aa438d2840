package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// A reconcile pass in sentinel mode reads the engine from the local server's
// INFO server: redis_ha_agent_engine_info and /status carry the engine's
// name and its own version (what `<server> --version` prints), and for
// Valkey never the redis_version it reports for compatibility.
func TestSentinelEngineReported(t *testing.T) {
	for i, s := range proctest.EngineServers() {
		t.Run(s.Bin, func(t *testing.T) {
			proctest.NeedPrograms(t, s.Bin)
			want := redisx.Engine{Name: s.Engine, Version: proctest.BinVersion(t, s.Bin)}
			ip := fmt.Sprintf("127.0.50.%d", 10+i)
			proctest.StartEngineServer(t, s.Bin, ip)
			mt := metrics.New("test", config.ModeSentinel)
			m := engineSentinelMode(t, ip, mt)
			if _, err := m.observe(context.Background()); err != nil {
				t.Fatal(err)
			}
			m.mu.Lock()
			passed := m.status.Engine
			m.mu.Unlock()
			if passed != want {
				t.Errorf("engine recorded by the pass: got %+v, want %+v", passed, want)
			}
			proctest.CheckEngine(t, proctest.Engine{Name: want.Name, Version: want.Version}, m.Status(context.Background()), mt)
		})
	}
}

// A sentinel-mode pass gives Valkey the pod's zone as availability-zone
// (and no cluster node name); Redis 7.0, which has no such parameter, gets
// nothing. Read back from the server itself.
func TestSentinelAnnounce(t *testing.T) {
	for i, s := range proctest.EngineServers() {
		t.Run(s.Bin, func(t *testing.T) {
			proctest.NeedPrograms(t, s.Bin)
			ip := fmt.Sprintf("127.0.50.%d", 40+i)
			proctest.StartEngineServer(t, s.Bin, ip)
			m := engineSentinelMode(t, ip, metrics.New("test", config.ModeSentinel))
			m.announce.Zone = "zone-c"
			m.setLabel = func(context.Context, string, string) error { return nil }
			m.listMasters = func(context.Context) ([]string, error) { return nil, nil }
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = m.RunOnce(ctx) // no Sentinel runs here: the pass fails past the announcement
			c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(ip, "6379"), Protocol: 2})
			defer c.Close()
			got, err := c.ConfigGet(ctx, "availability-zone").Result()
			switch {
			case s.Engine == "redis" && err == nil && len(got) == 0:
			case err != nil:
				t.Errorf("CONFIG GET availability-zone: %v", err)
			case s.Engine == "valkey" && got["availability-zone"] != "zone-c":
				t.Errorf("valkey availability-zone = %q, want zone-c", got["availability-zone"])
			case s.Engine == "redis":
				t.Errorf("redis reports availability-zone %q: this Redis has the parameter, update redisx.AnnounceSettings", got["availability-zone"])
			}
			if s.Engine == "valkey" {
				if got, err := c.ConfigGet(ctx, "cluster-announce-human-nodename").Result(); err != nil || got["cluster-announce-human-nodename"] != "" {
					t.Errorf("sentinel mode set cluster-announce-human-nodename: %v %v", got, err)
				}
			}
		})
	}
}

// engineSentinelMode is one pod's sentinel mode on ip: its Sentinel does not
// run, the Lease is in a fake API, and it has no peers.
func engineSentinelMode(t *testing.T, ip string, mt *metrics.Metrics) *sentinelMode {
	kube := fake.NewClientset()
	cfg := config.Config{
		Identity: config.Identity{PodName: "redis-0", Namespace: "default", PodIP: ip, StatefulSet: "redis"},
		Mode:     config.ModeSentinel, MasterName: "mymaster", LeaseName: "redis",
		// The pass saves the replication state beside the include.
		RedisConfInclude: filepath.Join(t.TempDir(), "conf", "redis-ha.conf"),
		LeaseDuration:    15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
	}
	d := redisx.Dial{Password: func() string { return "" }, Timeout: time.Second}
	peers := sentinelPeers{
		Pods: 1, Self: 0, Addr: func(int) string { return ip }, Timeout: time.Second,
		Redis:    func(h string) redisNode { return dialRedis(d, h, 6379) },
		Sentinel: func(h string) sentinelNode { return dialSentinel(d, h, 26379) },
		Resolve:  func(context.Context, string) error { return nil },
	}
	deps := sidecar.Deps{Log: zerolog.New(zerolog.NewTestWriter(t)), Kube: kube, Election: kube, Metrics: mt, Clock: clock.RealClock{}}
	m := newSentinelModeWith(cfg, deps, peers)
	m.peerStatus = func(context.Context, int) (nodeState, error) { return nodeState{}, errors.New("no peers in this test") }
	return m
}
