package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// engineServers are the real servers on this machine: Debian 12's Redis 7.0
// and bookworm-backports' Valkey 8.0, whose INFO says redis_version:7.2.4.
var engineServers = []struct{ bin, engine string }{
	{"redis-server", "redis"},
	{"valkey-server", "valkey"},
}

// A reconcile pass in each mode reads the engine from the local server's
// INFO server: redis_ha_agent_engine_info and /status carry the engine's
// name and its own version (what `<server> --version` prints), and for
// Valkey never the redis_version it reports for compatibility.
func TestEngineReported(t *testing.T) {
	for i, s := range engineServers {
		t.Run(s.bin, func(t *testing.T) {
			proctest.NeedPrograms(t, s.bin)
			want := Engine{Name: s.engine, Version: binVersion(t, s.bin)}
			t.Run("sentinel", func(t *testing.T) {
				ip := fmt.Sprintf("127.0.50.%d", 10+i)
				startEngineServer(t, s.bin, ip)
				mt := metrics.New("test", ModeSentinel)
				m := engineSentinelMode(t, ip, mt)
				if _, err := m.observe(context.Background()); err != nil {
					t.Fatal(err)
				}
				m.mu.Lock()
				passed := m.status.Engine
				m.mu.Unlock()
				checkEngine(t, want, passed, m.Status(context.Background()), mt)
			})
			t.Run("cluster", func(t *testing.T) {
				ip := fmt.Sprintf("127.0.50.%d", 20+i)
				startEngineServer(t, s.bin, ip, "cluster-enabled yes", "cluster-config-file "+filepath.Join(t.TempDir(), "nodes.conf"))
				mt := metrics.New("test", ModeCluster)
				m := engineClusterMode(t, ip, mt)
				if _, err := m.pass(context.Background()); err != nil {
					t.Fatal(err)
				}
				m.mu.Lock()
				passed := m.status.Engine
				m.mu.Unlock()
				checkEngine(t, want, passed, m.Status(context.Background()), mt)
			})
		})
	}
}

// binVersion is the version `bin --version` prints ("... v=8.0.1 ...").
func binVersion(t *testing.T, bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	v := regexp.MustCompile(`\bv=([0-9][^ ]*)`).FindSubmatch(out)
	if v == nil {
		t.Fatalf("%s --version printed no v=<version>: %q", bin, out)
	}
	return string(v[1])
}

func startEngineServer(t *testing.T, bin, ip string, extra ...string) {
	dir := t.TempDir()
	lines := append([]string{"bind " + ip, "port 6379", "protected-mode no", "dir " + dir, `save ""`, "appendonly no"}, extra...)
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, filepath.Join(dir, "server.log"), bin, conf)
	proctest.WaitPing(t, ip+":6379", "", 10*time.Second)
}

// engineSentinelMode is one pod's sentinel mode on ip: its Sentinel does not
// run, the Lease is in a fake API, and it has no peers.
func engineSentinelMode(t *testing.T, ip string, mt *metrics.Metrics) *sentinelMode {
	kube := fake.NewClientset()
	cfg := Config{
		Identity: Identity{PodName: "redis-0", Namespace: "default", PodIP: ip, StatefulSet: "redis"},
		Mode:     ModeSentinel, MasterName: "mymaster", LeaseName: "redis",
		// The pass saves the replication state beside the include.
		RedisConfInclude: filepath.Join(t.TempDir(), "conf", "redis-ha.conf"),
		LeaseDuration:    15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
	}
	d := redisDial{password: func() string { return "" }, timeout: time.Second}
	peers := sentinelPeers{
		Pods: 1, Self: 0, Addr: func(int) string { return ip }, Timeout: time.Second,
		Redis:    func(h string) redisNode { return d.redis(h, 6379) },
		Sentinel: func(h string) sentinelNode { return d.sentinel(h, 26379) },
		Resolve:  func(context.Context, string) error { return nil },
	}
	deps := Deps{Log: zerolog.New(zerolog.NewTestWriter(t)), Kube: kube, Election: kube, Metrics: mt, Clock: clock.RealClock{}}
	m := newSentinelModeWith(cfg, deps, peers)
	m.peerStatus = func(context.Context, int) (nodeState, error) { return nodeState{}, errors.New("no peers in this test") }
	return m
}

// engineClusterMode is a one-pod cluster mode on ip, not the coordinator.
func engineClusterMode(t *testing.T, ip string, mt *metrics.Metrics) *clusterMode {
	cfg := Config{
		Identity: Identity{PodName: "redis-0", Namespace: "itest", PodIP: ip, StatefulSet: "redis", Service: "redis-headless", Domain: "cluster.local"},
		Mode:     ModeCluster, RedisPort: 6379, ResyncInterval: time.Second,
	}
	return newClusterModeWith(cfg, clusterEnv{
		Log:         zerolog.New(zerolog.NewTestWriter(t)),
		PeerIP:      func(context.Context, int) (string, error) { return ip, nil },
		Topology:    &fakeTopology{expected: func() int { return 1 }},
		Coordinator: func() bool { return false },
		Metrics:     mt,
	})
}

// checkEngine compares what the pass recorded, /status and /metrics with
// want; none may carry Valkey's compatibility redis_version.
func checkEngine(t *testing.T, want, passed Engine, status any, mt *metrics.Metrics) {
	t.Helper()
	if passed != want {
		t.Errorf("engine recorded by the pass: got %+v, want %+v", passed, want)
	}
	body, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st["engine"] != want.Name || st["engine_version"] != want.Version {
		t.Errorf("/status: engine=%v engine_version=%v, want %s %s; body %s", st["engine"], st["engine_version"], want.Name, want.Version, body)
	}
	rec := httptest.NewRecorder()
	mt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var series []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "redis_ha_agent_engine_info{") {
			series = append(series, l)
		}
	}
	wantSeries := fmt.Sprintf(`redis_ha_agent_engine_info{engine=%q,version=%q} 1`, want.Name, want.Version)
	if len(series) != 1 || series[0] != wantSeries {
		t.Errorf("/metrics engine series: got %q, want [%s]", series, wantSeries)
	}
	if want.Name == "valkey" {
		for what, text := range map[string]string{"/status": string(body), "/metrics engine series": strings.Join(series, "\n")} {
			if strings.Contains(text, "7.2.4") {
				t.Errorf("%s carries Valkey's compatibility redis_version 7.2.4: %s", what, text)
			}
		}
	}
}
