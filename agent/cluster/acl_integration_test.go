package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// TestClusterACLUsers runs cluster mode with the default user off, the
// agent logging in as its own user and replicas as the replication user
// (README, "ACL users"): creating the cluster, a scale-out as master that
// moves keys (MIGRATE logs in to the target as the agent's user), a
// preStop failover and a password rotation must work with no command,
// key, channel or login refused on any node, while the agent's user is
// refused data commands; a user that lost a permission stops the agent
// with an error naming it.
func TestClusterACLUsers(t *testing.T) {
	c := newTestCluster(t, 49, "master")
	c.password.Store("p1")
	c.useACLUsers()
	formCluster(t, c, 6)
	ctx := context.Background()
	inc, err := os.ReadFile(c.pods[0].cfg.RedisConfInclude)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"masteruser ha-repl\n", acl.DefaultOffLine + "\n", "user ha-agent reset on \">p1\" ", "user ha-repl reset on \">p1\" "} {
		if !strings.Contains(string(inc), want) {
			t.Errorf("include has no %q:\n%s", want, inc)
		}
	}
	cc := c.clusterClient()
	writeKeys(t, cc, "a", 3000)

	// Scale-out as master: slots and their keys move to pod 6 by MIGRATE.
	c.startRedis(6)
	c.startAgent(6)
	c.expected.Store(7)
	proctest.Eventually(t, 90*time.Second, func() error {
		if err := c.healthy(7); err != nil {
			return err
		}
		if m, _, _ := c.topology(7); m[6] < 4000 {
			return fmt.Errorf("pod 6 holds %d slots", m[6])
		}
		return nil
	}, "pod 6 a master with keys moved by MIGRATE as the agent's user")
	checkKeys(t, cc, "a", 3000)

	// preStop of a master hands its slots to its replica.
	_, replicas, err := c.topology(7)
	if err != nil {
		t.Fatal(err)
	}
	replicaOf0 := -1
	for r, m := range replicas {
		if m == 0 {
			replicaOf0 = r
		}
	}
	psCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.pods[0].mode.PreStop(psCtx)
	cancel()
	if err != nil {
		t.Fatalf("preStop on master pod 0: %v", err)
	}
	proctest.Eventually(t, 30*time.Second, func() error {
		_, replicas, err := c.topology(7)
		if err != nil {
			return err
		}
		if replicas[0] != replicaOf0 {
			return fmt.Errorf("pod 0 replicates %d, want %d", replicas[0], replicaOf0)
		}
		return c.healthy(7)
	}, "pod 0 a replica of pod %d after its preStop", replicaOf0)
	checkKeys(t, cc, "a", 3000)

	// Rotation: every user the agent manages ends on the new password only.
	c.rotate("p2")
	proctest.Eventually(t, 60*time.Second, func() error {
		for o := 0; o < 7; o++ {
			cl := c.client(o)
			for _, u := range c.users.Accepting(acl.ModeCluster, acl.Redis) {
				hs, err := redisx.ACLPasswords(cl.Do(ctx, "ACL", "GETUSER", u))
				if err != nil || !slices.Equal(hs, []string{rotation.Hash("p2")}) {
					return fmt.Errorf("pod %d user %s: %d passwords %v", o, u, len(hs), err)
				}
			}
			ma, err := cl.ConfigGet(ctx, "masterauth").Result()
			if err != nil || ma["masterauth"] != "p2" {
				return fmt.Errorf("pod %d masterauth not the new one %v", o, err)
			}
		}
		return nil
	}, "every user on the new password only")
	proctest.Eventually(t, 30*time.Second, func() error { return c.healthy(7) }, "healthy after the rotation")

	// Nothing was refused on any node.
	for o := 0; o < 7; o++ {
		entries, err := aclLog(ctx, c.client(o))
		if err != nil {
			t.Errorf("ACL LOG on pod %d: %v", o, err)
		} else if len(entries) > 0 {
			t.Errorf("pod %d refused %d time(s): %s", o, len(entries), strings.Join(entries, "; "))
		}
	}
	// The agent's and the replication user are refused data commands.
	for _, d := range []struct {
		user string
		cmd  []any
	}{
		{"ha-agent", []any{"GET", "a:1"}},
		{"ha-agent", []any{"SET", "a:1", "x"}},
		{"ha-agent", []any{"FLUSHALL"}},
		{"ha-agent", []any{"KEYS", "*"}},
		{"ha-agent", []any{"ACL", "DELUSER", "app"}},
		{"ha-repl", []any{"GET", "a:1"}},
		{"ha-repl", []any{"CLUSTER", "FAILOVER"}},
	} {
		cl := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", c.ipOf(1), testRedisPort), Protocol: 2, DisableIdentity: true, Username: d.user, Password: "p2"})
		err := cl.Do(ctx, d.cmd...).Err()
		cl.Close()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%s as %s: %v, want NOPERM", fmt.Sprint(d.cmd...), d.user, err)
		}
	}

	t.Run("MissingPermissionStopsTheAgent", func(t *testing.T) {
		p := c.pods[2]
		c.stopAgent(p)
		if err := c.client(2).Do(ctx, "ACL", "SETUSER", "ha-agent", "-cluster|meet").Err(); err != nil {
			t.Fatal(err)
		}
		files, err := secrets.NewTLSFiles(p.cfg.TLS, nil, clock.RealClock{})
		if err != nil {
			t.Fatal(err)
		}
		m := newClusterModeWith(p.cfg, clusterEnv{
			TLS:         files,
			Coordinator: func() bool { return false },
			Password:    c.pw,
			Log:         zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
			PeerIP:      func(_ context.Context, o int) (string, error) { return c.ipOf(o), nil },
			Topology:    &fakeTopology{expected: func() int { return int(c.expected.Load()) }},
			Event:       func(typ, reason, note string) { c.event(2, typ, reason, note) },
		})
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err = m.Run(rctx)
		var perm *acl.PermissionError
		if !errors.As(err, &perm) {
			t.Fatalf("agent with a user lacking CLUSTER MEET: %v, want a permission error", err)
		}
		t.Logf("the agent stopped with: %v", err)
		for _, want := range []string{`"ha-agent"`, `"cluster meet`, "ACL SETUSER ha-agent " + acl.AgentRules(acl.ModeCluster, acl.Redis).Rules} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q", want)
			}
		}
		if !c.hasEvent("ACLUserMisconfigured") {
			t.Error("no ACLUserMisconfigured event")
		}
	})
}

// aclLog lists every entry of a server's ACL log: refused commands, keys,
// channels and logins.
func aclLog(ctx context.Context, c *redis.Client) ([]string, error) {
	v, err := c.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, en := range v {
		fields, _ := en.([]any)
		f := map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			f[k] = fmt.Sprint(fields[i+1])
		}
		out = append(out, fmt.Sprintf("reason=%s object=%s user=%s count=%s", f["reason"], f["object"], f["username"], f["count"]))
	}
	return out, nil
}
