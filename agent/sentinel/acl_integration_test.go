package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

const appUserLine = "user app on >" + appPass + " ~* &* +@all\n"

const (
	aclAgent    = "ha-agent"
	aclRepl     = "ha-repl"
	aclSentinel = "ha-sentinel"
)

// newSentinelEnvACL is newSentinelEnv with the ACL users on and every
// redis-server's default user off; the test's clients log in as an
// application user of the pods' own redis.conf.
func newSentinelEnvACL(t *testing.T, server, sentinel string) *sentinelEnv {
	proctest.NeedPrograms(t, server, sentinel)
	e := newSentinelEnv(t)
	e.server, e.sentinel = server, sentinel
	e.appUser = "app"
	// The application's user comes from --acl-file, a Secret in a pod.
	aclFile := filepath.Join(t.TempDir(), "users.acl")
	if err := os.WriteFile(aclFile, []byte(appUserLine), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.pods {
		p.cfg.ACLFile = aclFile
		p.cfg.AgentUser, p.cfg.ReplicationUser, p.cfg.SentinelAuthUser, p.cfg.DisableDefaultUser = aclAgent, aclRepl, aclSentinel, true
		if err := p.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestSentinelACLUsers runs sentinel mode with the default user off and
// the agent, replication and Sentinel each logging in as its own user
// (README, "ACL users"): the election, a preStop switchover, a SIGKILL
// failover that needs the Sentinels' votes and a password rotation must
// all work with no command, key, channel or login refused on any
// redis-server or Sentinel, while each user is refused what it does not
// need. It runs on each engine on this machine (Redis 7.0, Valkey 8.0).
func TestSentinelACLUsers(t *testing.T) {
	for _, eng := range proctest.EngineServers() {
		t.Run(eng.Engine, func(t *testing.T) {
			testSentinelACLUsers(t, eng.Bin, strings.TrimSuffix(eng.Bin, "-server")+"-sentinel")
		})
	}
}

func testSentinelACLUsers(t *testing.T, server, sentinel string) {
	e := newSentinelEnvACL(t, server, sentinel)
	ctx := context.Background()
	for i := 0; i < envPods; i++ {
		if err := e.init(i); err != nil {
			t.Fatalf("init pod %d: %v", i, err)
		}
	}
	for i := 0; i < envPods; i++ {
		e.startRedis(i, true)
		e.startSentinel(i)
	}
	// The test's own checks log in to Sentinels as the application user
	// too, which the rotation leaves alone (a login with a dropped
	// password would count as refused).
	for i := 0; i < envPods; i++ {
		c := testServer{addr: e.addr(i) + ":26379"}.dial(e.pw())
		if err := c.Do(ctx, "ACL", "SETUSER", e.appUser, "on", ">"+appPass, "~*", "&*", "+@all").Err(); err != nil {
			t.Fatalf("ACL SETUSER %s on Sentinel %d: %v", e.appUser, i, err)
		}
		c.Close()
	}
	// Every refusal from here on counts: the ACL logs start empty.
	for _, s := range e.servers() {
		c := e.observer(s)
		if err := c.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
			t.Fatalf("ACL LOG RESET on %s: %v", s.name, err)
		}
		c.Close()
	}
	for i := 0; i < envPods; i++ {
		e.startAgent(i)
	}
	var m int
	e.waitFor(60*time.Second, "a master elected, labelled, holding the Lease", func() (bool, string) {
		var s string
		m, s = e.masterOf()
		return m >= 0, s
	})
	e.waitFor(30*time.Second, "both replicas linked, every Sentinel names the master", func() (bool, string) {
		return e.settled(m, e.pw())
	})

	inc, err := os.ReadFile(e.pods[m].cfg.RedisConfInclude)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"masteruser " + aclRepl + "\n", acl.DefaultOffLine + "\n", "user " + aclAgent + " ", "user " + aclRepl + " ", "user " + aclSentinel + " "} {
		if !strings.Contains(string(inc), want) {
			t.Errorf("include of pod %d has no %q:\n%s", m, want, inc)
		}
	}
	if strings.Contains(string(inc), "requirepass") {
		t.Errorf("include of pod %d sets requirepass with the default user off:\n%s", m, inc)
	}
	conf, _ := os.ReadFile(e.pods[m].cfg.SentinelConf)
	for _, want := range []string{"sentinel auth-user mymaster " + aclSentinel + "\n", "sentinel sentinel-user " + aclSentinel + "\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("sentinel.conf of pod %d has no %q", m, want)
		}
	}

	t.Run("PreStopSwitchover", func(t *testing.T) {
		old := m
		e.waitFor(30*time.Second, "both replicas online", func() (bool, string) {
			n := 0
			for _, rep := range e.role(old).Replicas {
				if rep.State == "online" {
					n++
				}
			}
			return n == 2, fmt.Sprint(n)
		})
		w := startWriter(t, e)
		time.Sleep(time.Second)
		e.deletePod(old)
		code, body := getPreStop(t, e, old)
		if code != http.StatusOK {
			t.Fatalf("preStop on deleted master pod %d: %d %q", old, code, body)
		}
		e.waitFor(20*time.Second, "the new master agreed by role, Lease and label", func() (bool, string) {
			var s string
			m, s = e.masterOf()
			return m >= 0 && m != old, s
		})
		time.Sleep(500 * time.Millisecond)
		res := w.stop()
		t.Logf("preStop switchover as %s: write gap %s, %d writes answered OK", aclAgent, res.maxGap.Round(time.Millisecond), len(res.ok))
		checkWrites(t, e, m, res, false)
		e.recreatePod(old)
		e.waitFor(30*time.Second, "the old master replicates from the new one", func() (bool, string) {
			return e.settled(m, e.pw())
		})
	})

	t.Run("SIGKILLMasterFailsOver", func(t *testing.T) {
		// Sentinel's own failover: the Sentinels vote with each other as
		// the Sentinel user (is-master-down-by-addr) and turn replicas
		// around on the redis-servers as the same user.
		old := m
		w := startWriter(t, e)
		time.Sleep(500 * time.Millisecond)
		e.pods[old].redis.Stop(syscall.SIGKILL, time.Second)
		e.waitFor(30*time.Second, "a new master agreed by role, Lease and label", func() (bool, string) {
			var s string
			m, s = e.masterOf()
			return m >= 0 && m != old, s
		})
		res := w.stop()
		t.Logf("SIGKILL failover: write gap %s", res.maxGap.Round(time.Millisecond))
		checkWrites(t, e, m, res, true)
		e.startRedis(old, true)
		e.waitFor(30*time.Second, "the restarted old master replicates from the new one", func() (bool, string) {
			return e.settled(m, e.pw())
		})
	})

	t.Run("Rotation", func(t *testing.T) {
		p2 := "rotated-acl-pass-31c0"
		for i := 0; i < envPods; i++ {
			e.rotatePasswordOn((m+i)%envPods, p2)
			time.Sleep(time.Second)
		}
		e.waitFor(60*time.Second, "every user the agent manages holds only the new password, masterauth on it", func() (bool, string) {
			return e.usersRotated(p2)
		})
		// Sentinel-aware clients log in to Sentinels as the default user,
		// which keeps following the file too.
		e.setPassword(p2)
		e.waitFor(30*time.Second, "replicas linked, every Sentinel names the master, on the new password", func() (bool, string) {
			return e.settled(m, p2)
		})
	})

	// No command, key, channel or login was refused on any server through
	// the election, the switchover, the failover and the rotation.
	for _, s := range e.servers() {
		c := e.observer(s)
		entries, err := aclLog(ctx, c)
		c.Close()
		if err != nil {
			t.Errorf("ACL LOG on %s: %v", s.name, err)
		} else if len(entries) > 0 {
			t.Errorf("%s refused %d time(s): %s", s.name, len(entries), strings.Join(entries, "; "))
		}
	}

	// Each user is refused what it does not need.
	pw := e.pw()
	denied := []struct {
		server string // "redis" or "sentinel"
		user   string
		cmd    []any
	}{
		{"redis", aclAgent, []any{"FLUSHALL"}},
		{"redis", aclAgent, []any{"GET", "k"}},
		{"redis", aclAgent, []any{"KEYS", "*"}},
		{"redis", aclAgent, []any{"ACL", "DELUSER", "app"}},
		{"redis", aclAgent, []any{"SET", "k", "v"}},
		{"redis", aclAgent, []any{"CONFIG", "REWRITE"}},
		{"redis", aclAgent, []any{"SHUTDOWN"}},
		{"redis", aclRepl, []any{"GET", "k"}},
		{"redis", aclRepl, []any{"REPLICAOF", "NO", "ONE"}},
		{"redis", aclRepl, []any{"CONFIG", "SET", "maxmemory", "1"}},
		{"redis", aclSentinel, []any{"SET", "k", "v"}},
		{"redis", aclSentinel, []any{"CONFIG", "SET", "maxmemory", "1"}},
		{"redis", aclSentinel, []any{"SUBSCRIBE", "other"}},
		{"sentinel", aclAgent, []any{"INFO"}},
		{"sentinel", aclSentinel, []any{"SENTINEL", "FAILOVER", "mymaster"}},
		{"sentinel", aclSentinel, []any{"ACL", "SETUSER", "x"}},
	}
	for _, d := range denied {
		port := "6379"
		if d.server == "sentinel" {
			port = "26379"
		}
		c := testServer{addr: e.addr(m) + ":" + port}.dialAs(d.user, pw)
		err := c.Do(ctx, d.cmd...).Err()
		c.Close()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%s on the %s as %s: %v, want NOPERM", fmt.Sprint(d.cmd...), d.server, d.user, err)
		}
	}
	// The default user is off: no login without a user name.
	c := testServer{addr: e.addr(m) + ":6379"}.dial(pw)
	err = c.Ping(ctx).Err()
	c.Close()
	if err == nil {
		t.Error("redis-server accepted a login as the default user, which is off")
	}

	t.Run("ACLFileChanges", func(t *testing.T) {
		// A user added to the file appears on every redis-server, and in
		// every include; one removed from it is turned off everywhere.
		path := e.pods[0].cfg.ACLFile
		if _, err := atomicfile.Write(path, []byte(appUserLine+"user reader on >reader-pass-77 ~* +get\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.waitFor(20*time.Second, "reader on every redis-server and in every include", func() (bool, string) {
			return e.userFlag("reader", "on", true)
		})
		if _, err := atomicfile.Write(path, []byte(appUserLine), 0o600); err != nil {
			t.Fatal(err)
		}
		e.waitFor(20*time.Second, "reader off on every redis-server and gone from every include", func() (bool, string) {
			return e.userFlag("reader", "off", false)
		})
	})

	t.Run("MissingPermissionStopsTheAgent", func(t *testing.T) {
		r := otherThan(m)
		e.stopAgent(r)
		// An ACL SETUSER by hand (or an aclfile in the image) takes
		// CLIENT KILL from the agent's user.
		c := e.client(r)
		if err := c.Do(ctx, "ACL", "SETUSER", aclAgent, "-client|kill").Err(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		err := e.runAgentUntilExit(r, 20*time.Second)
		var perm *acl.PermissionError
		if !errors.As(err, &perm) {
			t.Fatalf("agent with a user lacking CLIENT KILL: %v, want a permission error", err)
		}
		t.Logf("the agent stopped with: %v", err)
		for _, want := range []string{`"` + aclAgent + `"`, `"client kill type normal"`, "ACL SETUSER " + aclAgent + " " + acl.AgentRules(acl.ModeSentinel, acl.Redis).Rules, `README, "ACL users"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
	})
}

// observer is a client of s logged in as the application user, which
// may read the ACL log and which no rotation touches.
func (e *sentinelEnv) observer(s testServer) *redis.Client {
	return s.dialAs(e.appUser, appPass)
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

// usersRotated: on every server each user the agent manages (and each
// Sentinel's default user) accepts only p2, and every masterauth is p2.
func (e *sentinelEnv) usersRotated(p2 string) (bool, string) {
	ctx := context.Background()
	u := e.pods[0].cfg.Users()
	ok := true
	var state []string
	for _, s := range e.servers() {
		side := acl.Redis
		if strings.HasSuffix(s.addr, ":26379") {
			side = acl.Sentinel
		}
		c := e.observer(s)
		for _, name := range u.Accepting(acl.ModeSentinel, side) {
			v := c.Do(ctx, "ACL", "GETUSER", name)
			hs, err := redisx.ACLPasswords(v)
			only := err == nil && slices.Equal(hs, []string{rotation.Hash(p2)})
			ok = ok && only
			if !only {
				state = append(state, fmt.Sprintf("%s user %s: %d passwords %v", s.name, name, len(hs), err))
			}
		}
		if side == acl.Redis {
			ma, err := c.ConfigGet(ctx, "masterauth").Result()
			if err != nil || ma["masterauth"] != p2 {
				ok = false
				state = append(state, fmt.Sprintf("%s masterauth not the new one %v", s.name, err))
			}
		}
		c.Close()
	}
	return ok, strings.Join(state, "; ")
}

// userFlag: on every redis-server user has flag (ACL GETUSER), and every
// include defines it (inInclude) or not.
func (e *sentinelEnv) userFlag(user, flag string, inInclude bool) (bool, string) {
	ctx := context.Background()
	ok := true
	var state []string
	for i, p := range e.pods {
		c := e.client(i)
		v, err := c.Do(ctx, "ACL", "GETUSER", user).Slice()
		c.Close()
		has := false
		for j := 0; err == nil && j+1 < len(v); j += 2 {
			if v[j] == "flags" {
				fs, _ := v[j+1].([]any)
				for _, f := range fs {
					has = has || f == flag
				}
			}
		}
		inc, _ := os.ReadFile(p.cfg.RedisConfInclude)
		good := has && strings.Contains(string(inc), "user "+user+" ") == inInclude
		ok = ok && good
		state = append(state, fmt.Sprintf("pod %d %s=%t include=%t %v", i, flag, has, strings.Contains(string(inc), "user "+user+" "), err))
	}
	return ok, strings.Join(state, "; ")
}

// runAgentUntilExit runs pod i's sentinel mode until it returns or d
// passes, and returns its error.
func (e *sentinelEnv) runAgentUntilExit(i int, d time.Duration) error {
	p := e.pods[i]
	pw, err := secrets.NewPassword(p.pwFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	log := e.log.With().Str("pod", p.cfg.PodName).Logger()
	rec, stopEvents := kubeapi.NewRecorder(ctx, e.kube)
	defer stopEvents()
	aclFile, err := secrets.NewFile(p.cfg.ACLFile, "--acl-file")
	if err != nil {
		return err
	}
	deps := sidecar.Deps{Log: log, Kube: e.kube, Election: e.kube, Events: rec, Metrics: metrics.New("test", config.ModeSentinel), Password: pw, ACLFile: aclFile, Clock: clock.RealClock{}}
	deps.Rotation = rotation.New(pw.Get, clock.RealClock{}, p.cfg.PasswordRotationGrace, log)
	m := newSentinelModeWith(p.cfg, deps, e.peers(i, deps.Rotation.Outgoing))
	m.peerStatus = httpPeerStatus(m.peers, "8080")
	err = m.Run(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("still running after %s (last error %v)", d, err)
	}
	return err
}
