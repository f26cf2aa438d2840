package sentinel

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// TestSentinelTLS runs a three-pod StatefulSet with TLS on and plaintext
// off, on Redis 7.0 and Valkey 8.0 (the host's packages; Valkey from
// bookworm-backports, see e2e/hack/install-deps.sh): real redis-server and redis-sentinel processes load the include and
// sentinel.conf init wrote, the agents elect a master over TLS, replicas
// replicate over TLS, Sentinels find each other and fail over over TLS, and
// no WAIT-acknowledged write is lost. Plaintext clients and a server signed
// by another CA are refused.
func TestSentinelTLS(t *testing.T) {
	for _, engine := range []string{"redis", "valkey"} {
		t.Run(engine, func(t *testing.T) { testSentinelTLS(t, engine+"-server", engine+"-sentinel") })
	}
}

func testSentinelTLS(t *testing.T, server, sentinel string) {
	e := newSentinelEnvTLS(t, server, sentinel)
	ctx := context.Background()
	for i := 0; i < envPods; i++ {
		if err := e.init(i); err != nil {
			t.Fatalf("init pod %d: %v", i, err)
		}
	}
	t.Run("ConfigsSayTLS", func(t *testing.T) {
		inc, _ := os.ReadFile(e.pods[0].cfg.RedisConfInclude)
		sen, _ := os.ReadFile(e.pods[0].cfg.SentinelConf)
		for _, want := range []string{"tls-port 6379\n", "port 0\n", "tls-replication yes\n", "tls-auth-clients yes\n", "tls-cert-file \"" + e.pods[0].cfg.TLS.CertFile + "\"\n"} {
			if !strings.Contains(string(inc), want) {
				t.Errorf("include lacks %q:\n%s", want, inc)
			}
		}
		for _, want := range []string{"\nport 0\n", "\ntls-port 26379\n", "\ntls-replication yes\n", "\ntls-ca-cert-file " + e.pods[0].cfg.TLS.CAFile + "\n"} {
			if !strings.Contains(string(sen), want) {
				t.Errorf("sentinel.conf lacks %q:\n%s", want, sen)
			}
		}
	})
	for i := 0; i < envPods; i++ {
		e.startRedis(i, true)
		e.startSentinel(i)
	}
	for i := 0; i < envPods; i++ {
		e.startAgent(i)
	}
	var m int
	e.waitFor(60*time.Second, "a master elected over TLS, labelled, holding the Lease", func() (bool, string) {
		var s string
		m, s = e.masterOf()
		return m >= 0, s
	})
	e.waitFor(30*time.Second, "both replicas linked to the master over TLS", func() (bool, string) {
		info, err := e.client(m).Info(ctx, "replication").Result()
		return err == nil && strings.Count(info, "state=online") == 2, fmt.Sprint(info, err)
	})
	acked := writeAcked(t, e.client(m), "tls-before", 200)

	t.Run("PlaintextRefused", func(t *testing.T) {
		for _, port := range []int{6379, 26379} {
			c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", e.addr(m), port), Password: e.pw(), Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
			err := c.Ping(ctx).Err()
			c.Close()
			if err == nil {
				t.Errorf("a plaintext client got PONG from port %d", port)
			}
			t.Logf("plaintext PING to port %d: %v", port, err)
		}
	})
	t.Run("AgentRefusesWrongCA", func(t *testing.T) {
		// A redis-server whose certificate another CA signed, at an
		// address the agent dials: the handshake fails, naming the CA file.
		other := proctest.NewCA(t, "another CA")
		ip := e.addr(0) + "2"
		cert, key, ca := other.WriteSecret(t, t.TempDir(), proctest.Leaf{CommonName: "rogue", IPs: []string{ip}})
		startTestRedis(t, e.server, ip, other.ClientTLS(t), "--port", "0", "--tls-port", "6379", "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca)
		n := dialRedis(redisx.Dial{Password: e.pw, Timeout: time.Second, TLS: e.pods[0].tls}, ip, 6379)
		defer n.Close()
		err := n.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), e.pods[0].cfg.TLS.CAFile) {
			t.Fatalf("PING to a server signed by another CA = %v; want a refused handshake naming the CA file", err)
		}
		t.Logf("agent against a server signed by another CA: %v", err)
		// And against a plaintext server: no fallback.
		plain := e.addr(0) + "1"
		startTestRedis(t, e.server, plain, nil)
		n2 := dialRedis(redisx.Dial{Password: func() string { return "" }, Timeout: time.Second, TLS: e.pods[0].tls}, plain, 6379)
		defer n2.Close()
		if err := n2.Ping(ctx); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
			t.Fatalf("PING over TLS to a plaintext server = %v; want a failed TLS handshake", err)
		} else {
			t.Logf("agent against a plaintext server: %v", err)
		}
	})
	t.Run("RenewalReloadsServers", func(t *testing.T) {
		// cert-manager renews in place: every pod's files are replaced. The
		// agent reloads redis-server (CONFIG SET) and stops its Sentinel,
		// which the kubelet would start again; here the test does.
		want := map[int]string{}
		for i, p := range e.pods {
			cert, _, _ := e.ca.WriteSecret(t, filepath.Join(p.dir, "tls"), proctest.Leaf{CommonName: p.cfg.PodName, IPs: []string{e.addr(i)}})
			want[i] = proctest.MustLeaf(t, mustRead(t, cert)).SerialNumber.String()
		}
		for i, p := range e.pods {
			select {
			case <-p.sentinel.Done():
			case <-time.After(30 * time.Second):
				t.Fatalf("pod %d's Sentinel still runs 30 s after its TLS files were renewed", i)
			}
			e.startSentinel(i)
		}
		for i := range e.pods {
			for _, port := range []int{6379, 26379} {
				addr := fmt.Sprintf("%s:%d", e.addr(i), port)
				proctest.Eventually(t, 10*time.Second, func() error {
					if got := proctest.ServedSerial(t, addr, e.clientTLS); got != want[i] {
						return fmt.Errorf("serves serial %s, want the renewed %s", got, want[i])
					}
					return nil
				}, "%s serves the renewed certificate", addr)
			}
		}
	})
	t.Run("SentinelFailoverOverTLS", func(t *testing.T) {
		e.waitFor(40*time.Second, "every Sentinel knows 2 replicas and 2 other Sentinels (over TLS)", func() (bool, string) {
			ok := true
			var state []string
			for i := 0; i < envPods; i++ {
				mm, err := e.pods[i].mode.sentinels[i].(*goSentinelNode).c.Master(ctx, "mymaster").Result()
				ok = ok && err == nil && mm["num-slaves"] == "2" && mm["num-other-sentinels"] == "2"
				state = append(state, fmt.Sprintf("sentinel %d: slaves=%s sentinels=%s %v", i, mm["num-slaves"], mm["num-other-sentinels"], err))
			}
			return ok, strings.Join(state, "; ")
		})
		old := m
		start := time.Now()
		e.pods[old].redis.Stop(syscall.SIGKILL, time.Second)
		e.waitFor(60*time.Second, "Sentinels fail over to another pod, labelled and holding the Lease", func() (bool, string) {
			var s string
			m, s = e.masterOf()
			return m >= 0 && m != old, s
		})
		t.Logf("failover over TLS: new master pod %d after %s", m, time.Since(start).Round(time.Millisecond))
		c := e.client(m)
		defer c.Close()
		for _, k := range acked {
			if v, err := c.Get(ctx, k).Result(); err != nil || v != "v" {
				t.Fatalf("new master lost WAIT-acknowledged key %s: %q %v", k, v, err)
			}
		}
		t.Logf("all %d WAIT-acknowledged keys on the new master", len(acked))
	})
}

// writeAcked writes n keys, each acknowledged by WAIT 1, and returns them.
func writeAcked(t *testing.T, c *redis.Client, prefix string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for k := 0; k < n; k++ {
		key := fmt.Sprintf("%s:%d", prefix, k)
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got, err := c.Do(ctx, "WAIT", 1, 2000).Int(); err != nil || got < 1 {
			t.Fatalf("WAIT 1 after %s: %d %v", key, got, err)
		}
		keys = append(keys, key)
	}
	return keys
}

// startTestRedis runs a redis-server at ip:6379 with only these arguments
// (tc: how to reach it, nil for plaintext).
func startTestRedis(t *testing.T, server, ip string, tc *tls.Config, args ...string) {
	dir := t.TempDir()
	args = append([]string{"--bind", ip, "--port", "6379", "--dir", dir, "--save", "", "--protected-mode", "no"}, args...)
	proctest.Start(t, filepath.Join(dir, "redis.log"), server, args...)
	proctest.WaitPingTLS(t, ip+":6379", "", tc, 10*time.Second)
}

// servedSerial is the serial of the certificate the server at addr
// presents to a new connection.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTLSMigrationPorts: with --plaintext-port and
// --sentinel-plaintext-port, redis-server and redis-sentinel loaded from
// what init writes serve TLS on their ports and plaintext on the
// migration's; without them plaintext is closed (TestSentinelTLS).
func TestTLSMigrationPorts(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server", "redis-sentinel")
	const ip = "127.0.39.10"
	ca := proctest.NewCA(t, "migration CA")
	dir := t.TempDir()
	cfg, _ := startFencedTLS(t, ca, dir, ip, "redis-server", 1, secrets.TLSSettings{AuthClients: "optional", PlaintextPort: 6380, SentinelPlaintextPort: 26380})
	sen, _, err := sentinelFile(nil, sentinelconf.Params{MasterName: "mymaster", Quorum: 1, DownAfter: time.Second, FailoverTimeout: 10 * time.Second, ParallelSyncs: 1,
		MyID: sentinelconf.MyID("default", "redis-0"), AnnounceHost: ip, Port: 26379, TLS: cfg.TLS.SentinelParams()})
	if err != nil {
		t.Fatal(err)
	}
	senPath := filepath.Join(dir, "sentinel.conf")
	proctest.WriteFile(t, senPath, sen)
	proctest.Start(t, filepath.Join(dir, "sentinel.log"), "redis-sentinel", senPath, "--bind", ip)
	// TLS with no client certificate: tls-auth-clients optional.
	serverOnly := ca.ClientTLS(t)
	serverOnly.Certificates = nil
	for _, port := range []int{6379, 26379} {
		proctest.WaitPingTLS(t, fmt.Sprintf("%s:%d", ip, port), "", serverOnly, 10*time.Second)
	}
	for _, port := range []int{6380, 26380} {
		proctest.WaitPing(t, fmt.Sprintf("%s:%d", ip, port), "", 10*time.Second)
	}
}

// TestTLSFencedBootAnswers: a pod that boots fenced under TLS (no master
// known: the include makes it a replica of its own address) answers at
// once, every time. A fenced server that replicated from its own TLS port
// blocked in its own synchronous TLS handshake for 5 s out of every 6, so
// the agent's INFO and the Sentinels' pings timed out and the election
// waited tens of seconds (seen in TestSentinelTLS: 30 s from the agents'
// start to a master). Judged on the server alone: 20 PINGs over 5 s on
// fresh connections, each answered within 1 s, and INFO says it is a
// replica that refuses writes.
func TestTLSFencedBootAnswers(t *testing.T) {
	for i, server := range []string{"redis-server", "valkey-server"} {
		t.Run(server, func(t *testing.T) {
			proctest.NeedPrograms(t, server)
			ip := fmt.Sprintf("127.0.39.%d", 20+i)
			ca := proctest.NewCA(t, "fenced boot CA")
			_, inc := startFencedTLS(t, ca, t.TempDir(), ip, server, 3, secrets.TLSSettings{AuthClients: "yes"})
			addr := ip + ":6379"
			tc := ca.ClientTLS(t)
			proctest.WaitPingTLS(t, addr, "", tc, 10*time.Second)
			var slow []string
			for n := 0; n < 20; n++ {
				c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialTimeout: 3 * time.Second, ReadTimeout: 3 * time.Second, TLSConfig: tc})
				start := time.Now()
				err := c.Ping(context.Background()).Err()
				took := time.Since(start)
				_ = c.Close()
				if err != nil || took > time.Second {
					slow = append(slow, fmt.Sprintf("PING %d: %v after %s", n, err, took.Round(time.Millisecond)))
				}
				time.Sleep(250 * time.Millisecond)
			}
			if len(slow) > 0 {
				t.Errorf("%s booted fenced under TLS did not answer promptly (include:\n%s):\n%s", server, inc, strings.Join(slow, "\n"))
			}
			c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, TLSConfig: tc})
			defer c.Close()
			r, err := c.Info(context.Background(), "replication").Result()
			if err != nil || !strings.Contains(r, "role:slave") {
				t.Errorf("%s booted fenced: INFO replication = %q, %v; want a replica", server, r, err)
			}
			if err := c.Set(context.Background(), "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
				t.Errorf("%s booted fenced accepted a write (err %v); want READONLY", server, err)
			}
		})
	}
}

// startFencedTLS starts server on ip:6379 from the include init writes for a
// pod of pods that knows no master (a fenced boot) with TLS settings ts,
// whose certificate files it issues from ca into dir/tls; it returns the
// pod's validated config and the include.
func startFencedTLS(t *testing.T, ca *proctest.CA, dir, ip, server string, pods int, ts secrets.TLSSettings) (config.Config, []byte) {
	t.Helper()
	ts.CertFile, ts.KeyFile, ts.CAFile = ca.WriteSecret(t, filepath.Join(dir, "tls"), proctest.Leaf{CommonName: "redis-0", IPs: []string{ip}})
	cfg := config.Config{
		Identity: config.Identity{PodName: "redis-0", Namespace: "default", StatefulSet: "redis", Domain: "cluster.local"},
		Mode:     config.ModeSentinel, RedisPort: 6379, SentinelPort: 26379, MasterName: "mymaster",
		DownAfter: time.Second, FailoverTimeout: 10 * time.Second, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		TLS: ts,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	inc, err := redisInclude(cfg, pods, includeAddrs{Self: ip, AnnounceHost: ip, AnnouncePort: cfg.RedisPort}, "")
	if err != nil {
		t.Fatal(err)
	}
	incPath, confPath := filepath.Join(dir, "redis-ha.conf"), filepath.Join(dir, "redis.conf")
	proctest.WriteFile(t, incPath, inc)
	proctest.WriteFile(t, confPath, []byte(fmt.Sprintf("bind %s\nport 6379\nprotected-mode no\ndir %s\nsave \"\"\ninclude %s\n", ip, dir, incPath)))
	proctest.Start(t, filepath.Join(dir, "redis.log"), server, confPath)
	return cfg, inc
}
