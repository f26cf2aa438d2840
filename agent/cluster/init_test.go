package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
)

// tableDNS answers like net.Resolver.LookupHost from a table of one
// address per host.
func tableDNS(m map[string]string) LookupHost {
	return func(_ context.Context, host string) ([]string, error) {
		ip, ok := m[host]
		if !ok {
			return nil, fmt.Errorf("lookup %s: no such host", host)
		}
		return []string{ip}, nil
	}
}

// rewriteOnce is init's rewrite without a wait: one round of lookups.
func rewriteOnce(ctx context.Context, path string, podIP netip.Addr, dns LookupHost, log zerolog.Logger) (nodesconf.Result, error) {
	return NodesConfRewrite{Path: path, PodIP: podIP.String(), LookupHost: dns}.Run(ctx, log)
}

func copyTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "nodes.conf")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRewriteNodesConf(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	ctx := context.Background()
	podIP := netip.MustParseAddr("10.9.9.9")
	peers := map[string]string{"node-1.test": "10.1.0.1", "node-2.test": "10.1.0.2", "node-3.test": "10.1.0.3"}

	t.Run("RewritesMyselfAndPeers", func(t *testing.T) {
		p := copyTestdata(t, "cluster-replica.conf")
		res, err := rewriteOnce(ctx, p, podIP, tableDNS(peers), log)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		want, _ := os.ReadFile(filepath.Join("testdata", "cluster-replica.rewritten.conf"))
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("nodes.conf -want +got:\n%s", diff)
		}
		if len(res.Changes) != 4 || len(res.Unresolved) != 1 || res.Unresolved[0].Hostname != "node-5.test" {
			t.Errorf("result: %d changes, unresolved %+v; want 4 changes and node-5.test unresolved (it keeps its address)", len(res.Changes), res.Unresolved)
		}
		// Idempotent: a second init changes nothing.
		res, err = rewriteOnce(ctx, p, podIP, tableDNS(peers), log)
		if err != nil || len(res.Changes) != 0 {
			t.Fatalf("second rewrite: %d changes, %v; want none", len(res.Changes), err)
		}
		again, _ := os.ReadFile(p)
		if !bytes.Equal(got, again) {
			t.Errorf("second rewrite changed the file")
		}
	})

	t.Run("MissingFileIsANewNode", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nodes.conf")
		if _, err := rewriteOnce(ctx, p, podIP, tableDNS(peers), log); err != nil {
			t.Fatalf("missing nodes.conf: %v, want no error", err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a missing nodes.conf was created: %v", err)
		}
	})

	t.Run("CorruptFileKeptAndNamed", func(t *testing.T) {
		p := copyTestdata(t, "cluster-truncated.conf")
		before, _ := os.ReadFile(p)
		_, err := rewriteOnce(ctx, p, podIP, tableDNS(peers), log)
		var pe *nodesconf.ParseError
		if !errors.As(err, &pe) || pe.Line != 3 || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 3") {
			t.Fatalf("truncated nodes.conf: error %v; want a ParseError at line 3 naming %s", err, p)
		}
		after, _ := os.ReadFile(p)
		if !bytes.Equal(before, after) {
			t.Errorf("a corrupt nodes.conf was modified")
		}
	})

	t.Run("ConflictLeavesFileUnchanged", func(t *testing.T) {
		p := copyTestdata(t, "cluster-replica.conf")
		before, _ := os.ReadFile(p)
		dup := map[string]string{"node-1.test": "10.1.0.1", "node-2.test": "10.1.0.1", "node-3.test": "10.1.0.3", "node-5.test": "10.1.0.5"}
		if _, err := rewriteOnce(ctx, p, podIP, tableDNS(dup), log); err != nil {
			t.Fatalf("conflict: %v, want the file left as is without error", err)
		}
		after, _ := os.ReadFile(p)
		if !bytes.Equal(before, after) {
			t.Errorf("nodes.conf changed although two nodes would share 10.1.0.1")
		}
	})
}

func TestClusterInclude(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3\"cr\\et\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Identity: config.Identity{PodName: "redis-2", Namespace: "prod", PodIP: "10.0.0.7", Domain: "cluster.local"},
		Mode: config.ModeCluster, PasswordFile: pwFile, RedisConfInclude: filepath.Join(dir, "conf", "redis-ha.conf"),
		NodesConf: filepath.Join(dir, "nodes.conf"), InitTimeout: 0, RedisPort: 6379, SentinelPort: 26379,
		LeaseDuration: 15e9, RenewDeadline: 10e9, RetryPeriod: 2e9, DownAfter: 5e9}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// No nodes.conf: init needs no DNS and writes only the include.
	if err := Init(context.Background(), cfg, zerolog.New(zerolog.NewTestWriter(t)), nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(cfg.RedisConfInclude)
	if err != nil {
		t.Fatal(err)
	}
	want := `# Written by redis-ha-agent init (cluster mode) at every pod start; edits are overwritten.
cluster-announce-hostname redis-2.redis-headless.prod.svc.cluster.local
cluster-announce-ip 10.0.0.7
cluster-preferred-endpoint-type ip
requirepass "s3\"cr\\et"
masterauth "s3\"cr\\et"
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("include -want +got:\n%s", diff)
	}
	st, _ := os.Stat(cfg.RedisConfInclude)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("include mode %v, want 0600 (it holds the password)", st.Mode().Perm())
	}
	if _, err := os.Stat(cfg.NodesConf); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("init created nodes.conf: %v", err)
	}
}

// With ACL users the include turns the default user off, names the
// replication user, and defines each user with the quoted password.
func TestClusterIncludeUsers(t *testing.T) {
	got := authLines(acl.Users{Agent: "ha-agent", Replication: "ha-repl", DefaultOff: true}, `p "w`)
	want := []string{
		acl.DefaultOffLine,
		"masteruser ha-repl",
		`masterauth "p \"w"`,
		`user ha-agent reset on ">p \"w" ` + acl.AgentRules(acl.ModeCluster, acl.Redis).Rules,
		`user ha-repl reset on ">p \"w" ` + acl.ReplicationRules().Rules,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("auth lines -want +got:\n%s", diff)
	}
}
