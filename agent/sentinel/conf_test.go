package sentinel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

func testInitCfg(t *testing.T) config.Config {
	dir := t.TempDir()
	cfg := config.Config{
		Identity: config.Identity{PodName: "redis-1", Namespace: "default", StatefulSet: "redis", Domain: "cluster.local"},
		Mode:     config.ModeSentinel, Replicas: 3, RedisPort: 6379, SentinelPort: 26379,
		RedisConfInclude: filepath.Join(dir, "conf", "redis-ha.conf"), SentinelConf: filepath.Join(dir, "conf", "sentinel.conf"),
		MasterName: "mymaster", DownAfter: 5 * time.Second, FailoverTimeout: time.Minute, MinReplicasToWrite: -1,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second, InitTimeout: 5 * time.Second,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// unreachablePeers has nothing listening: every Sentinel and Redis call fails
// fast, as on a cold start before any pod runs.
func unreachablePeers(self int) sentinelPeers {
	addr := func(i int) string { return []string{"127.0.31.10", "127.0.31.11", "127.0.31.12"}[i] }
	pw := func() string { return "" }
	return sentinelPeers{
		Pods: 3, Self: self, Addr: addr, Timeout: 200 * time.Millisecond,
		Redis:    func(h string) redisNode { return newRedisNode(h, 6379, pw, 200*time.Millisecond) },
		Sentinel: func(h string) sentinelNode { return newSentinelNode(h, 26379, pw, 200*time.Millisecond) },
		Resolve:  func(context.Context, string) error { return nil },
	}
}

// TestSentinelInitBadInputs: init exits with an error that names the file,
// the line and the fix, and leaves a file it cannot understand untouched.
func TestSentinelInitBadInputs(t *testing.T) {
	cases := map[string]struct {
		reason   string
		existing string // testdata file copied to sentinel.conf
		password string
		want     []string // substrings of the error
	}{
		"SentinelConfMonitorMissingFields": {
			reason: "a sentinel.conf line Sentinel would refuse", existing: "sentinel-bad-monitor.conf",
			want: []string{"--sentinel-conf (REDIS_HA_SENTINEL_CONF)", "line 2", "sentinel monitor mymaster 10.0.0.1", "move the file aside"},
		},
		"SentinelConfGarbage": {
			reason: "a garbled sentinel.conf", existing: "sentinel-bad-garbage.conf",
			want: []string{"--sentinel-conf (REDIS_HA_SENTINEL_CONF)", "line 2"},
		},
		"PasswordWithSpace": {
			reason: "a password Sentinel 7.0 cannot write back into its file", password: "two words",
			want: []string{"--password-file (REDIS_HA_PASSWORD_FILE)", "space"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testInitCfg(t)
			cfg.PasswordFile = "/run/secrets/redis/password"
			var before []byte
			if tc.existing != "" {
				b, err := os.ReadFile(filepath.Join("testdata", tc.existing))
				if err != nil {
					t.Fatal(err)
				}
				before = b
				if err := os.MkdirAll(filepath.Dir(cfg.SentinelConf), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cfg.SentinelConf, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			in := sentinelInit{cfg: cfg, log: zerolog.Nop(), peers: unreachablePeers(1), password: tc.password,
				leaseHolder: func(context.Context) (string, error) { return "", nil }}
			err := in.run(context.Background())
			if err == nil {
				t.Fatalf("%s: init succeeded, want an error", tc.reason)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not contain %q", tc.reason, err, w)
				}
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("%s: error leaks the password: %q", tc.reason, err)
			}
			if before != nil {
				after, _ := os.ReadFile(cfg.SentinelConf)
				if !bytes.Equal(before, after) {
					t.Errorf("%s: init changed the file it could not understand", tc.reason)
				}
			}
		})
	}
}

// TestSentinelInitColdStartFenced: nobody answers and the Lease is free:
// boot fenced, with no monitor line, and keep Sentinel's epoch and the peers'
// known-sentinel lines only where their myid matches the pod-derived one.
func TestSentinelInitColdStartFenced(t *testing.T) {
	cfg := testInitCfg(t)
	old, err := os.ReadFile(filepath.Join("testdata", "sentinel-real-failover.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.SentinelConf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.SentinelConf, old, 0o600); err != nil {
		t.Fatal(err)
	}
	in := sentinelInit{cfg: cfg, log: zerolog.Nop(), peers: unreachablePeers(1),
		leaseHolder: func(context.Context) (string, error) { return "redis-1", nil }}
	if err := in.run(context.Background()); err != nil {
		t.Fatalf("cold-start init: %v", err)
	}
	inc, _ := os.ReadFile(cfg.RedisConfInclude)
	// The flags' defaults: three pods fence with max-lag 2 under down-after 5s.
	for _, w := range []string{"replicaof 127.0.31.11 0\n", "replica-announce-ip 127.0.31.11", "replica-read-only yes", "min-replicas-to-write 1\n", "min-replicas-max-lag 2\n"} {
		if !strings.Contains(string(inc), w) {
			t.Errorf("include lacks %q:\n%s", w, inc)
		}
	}
	sen, _ := os.ReadFile(cfg.SentinelConf)
	f, err := sentinelconf.Parse(sen)
	if err != nil {
		t.Fatalf("rendered sentinel.conf does not parse: %v\n%s", err, sen)
	}
	if ms := f.Masters(); len(ms) != 0 {
		t.Errorf("fenced boot monitors %v, want nothing:\n%s", ms, sen)
	}
	if got, want := f.MyID(), sentinelconf.MyID("default", "redis-1"); got != want {
		t.Errorf("myid %s, want %s (from the pod name)", got, want)
	}
	if f.CurrentEpoch() != 2 {
		t.Errorf("current-epoch %d, want the file's 2 kept", f.CurrentEpoch())
	}
	if err := in.run(context.Background()); err != nil {
		t.Fatalf("second init: %v", err)
	}
	again, _ := os.ReadFile(cfg.SentinelConf)
	if !bytes.Equal(sen, again) {
		t.Errorf("init is not idempotent:\n%s\n---\n%s", sen, again)
	}
}

func TestSentinelInitLeaseUnreadable(t *testing.T) {
	cfg := testInitCfg(t)
	in := sentinelInit{cfg: cfg, log: zerolog.Nop(), peers: unreachablePeers(0),
		leaseHolder: func(context.Context) (string, error) { return "", errors.New("connection refused") }}
	if err := in.run(context.Background()); err != nil {
		t.Fatalf("init with the API server down must still boot (fenced): %v", err)
	}
	inc, _ := os.ReadFile(cfg.RedisConfInclude)
	if !strings.Contains(string(inc), "replicaof 127.0.31.10 0\n") {
		t.Errorf("want a fenced boot (replica of its own address, port 0):\n%s", inc)
	}
}

// sentinelConfWithUnknown has one sentinel directive no tested engine
// writes, carrying a secret and about no master (so it is kept also when
// init boots fenced), beside the password lines Sentinel writes.
const sentinelConfWithUnknown = `port 26379
requirepass s3cr3tReq
sentinel monitor mymaster 127.0.31.10 6379 2
sentinel auth-pass mymaster s3cr3tAuth
sentinel future-auth-pass s3cr3tFuture
sentinel current-epoch 2
`

// checkUnknownDirectiveLog: exactly one warn line, naming the unknown
// directive and its line, and no password anywhere in the log (an unknown
// directive's line is never logged: it may hold one).
func checkUnknownDirectiveLog(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	var warns []string
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.Contains(l, `"level":"warn"`) {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"directive":"sentinel future-auth-pass"`) || !strings.Contains(warns[0], `"line":5`) {
		t.Errorf("want one warn line naming directive sentinel future-auth-pass on line 5, got %d:\n%s", len(warns), strings.Join(warns, "\n"))
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the secret %q:\n%s", s, logs)
		}
	}
}

func TestSentinelInitLogsUnknownDirective(t *testing.T) {
	cfg := testInitCfg(t)
	if err := os.MkdirAll(filepath.Dir(cfg.SentinelConf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.SentinelConf, []byte(sentinelConfWithUnknown), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	in := sentinelInit{cfg: cfg, log: zerolog.New(&logs), peers: unreachablePeers(1), password: "n3wPassw0rd",
		leaseHolder: func(context.Context) (string, error) { return "redis-1", nil }}
	if err := in.run(context.Background()); err != nil {
		t.Fatalf("init: %v", err)
	}
	checkUnknownDirectiveLog(t, logs.String(), "s3cr3tReq", "s3cr3tAuth", "s3cr3tFuture", "n3wPassw0rd")
	sen, _ := os.ReadFile(cfg.SentinelConf)
	if !strings.Contains(string(sen), "sentinel future-auth-pass") {
		t.Errorf("the unknown directive was not kept:\n%s", sen)
	}
}
