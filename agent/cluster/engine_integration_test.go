package cluster

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// A reconcile pass in cluster mode reads the engine from the local server's
// INFO server: redis_ha_agent_engine_info and /status carry the engine's
// name and its own version (what `<server> --version` prints), and for
// Valkey never the redis_version it reports for compatibility.
func TestClusterEngineReported(t *testing.T) {
	for i, s := range proctest.EngineServers() {
		t.Run(s.Bin, func(t *testing.T) {
			proctest.NeedPrograms(t, s.Bin)
			want := redisx.Engine{Name: s.Engine, Version: proctest.BinVersion(t, s.Bin)}
			ip := fmt.Sprintf("127.0.50.%d", 20+i)
			proctest.StartEngineServer(t, s.Bin, ip, "cluster-enabled yes", "cluster-config-file "+filepath.Join(t.TempDir(), "nodes.conf"))
			mt := metrics.New("test", config.ModeCluster)
			m := engineClusterMode(t, ip, mt)
			if _, err := m.pass(context.Background()); err != nil {
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

// A pass gives a newer engine the names it can announce, and an older one
// nothing (it would refuse the parameters): valkey-server 8.0 takes the
// pod's zone as availability-zone and the pod's name as
// cluster-announce-human-nodename; redis-server 7.0 has neither, and the
// pass still succeeds. The values are read back from the server itself.
func TestClusterAnnounce(t *testing.T) {
	for i, s := range proctest.EngineServers() {
		t.Run(s.Bin, func(t *testing.T) {
			proctest.NeedPrograms(t, s.Bin)
			e := redisx.Engine{Name: s.Engine, Version: proctest.BinVersion(t, s.Bin)}
			ip := fmt.Sprintf("127.0.50.%d", 30+i)
			proctest.StartEngineServer(t, s.Bin, ip, "cluster-enabled yes", "cluster-config-file "+filepath.Join(t.TempDir(), "nodes.conf"))
			m := engineClusterMode(t, ip, metrics.New("test", config.ModeCluster))
			m.announce.Zone = "zone-b"
			if _, err := m.pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(ip, "6379"), Protocol: 2})
			defer c.Close()
			want := map[string]string{"availability-zone": "", "cluster-announce-human-nodename": ""}
			if e.Name == "valkey" {
				want = map[string]string{"availability-zone": "zone-b", "cluster-announce-human-nodename": "redis-0"}
			}
			for param, v := range want {
				got, err := c.ConfigGet(context.Background(), param).Result()
				switch {
				case e.Name == "redis" && err == nil && len(got) == 0:
					// Redis 7.0 knows no such parameter: nothing to read.
				case err != nil:
					t.Errorf("%s: CONFIG GET %s: %v", e, param, err)
				case got[param] != v:
					t.Errorf("%s: %s = %q, want %q", e, param, got[param], v)
				}
			}
		})
	}
}

// engineClusterMode is a one-pod cluster mode on ip, not the coordinator.
func engineClusterMode(t *testing.T, ip string, mt *metrics.Metrics) *clusterMode {
	cfg := config.Config{
		Identity: config.Identity{PodName: "redis-0", Namespace: "itest", PodIP: ip, StatefulSet: "redis", Service: "redis-headless", Domain: "cluster.local"},
		Mode:     config.ModeCluster, RedisPort: 6379, ResyncInterval: time.Second,
	}
	return newClusterModeWith(cfg, clusterEnv{
		Log:         zerolog.New(zerolog.NewTestWriter(t)),
		PeerIP:      func(context.Context, int) (string, error) { return ip, nil },
		Topology:    &fakeTopology{expected: func() int { return 1 }},
		Coordinator: func() bool { return false },
		Metrics:     mt,
	})
}
