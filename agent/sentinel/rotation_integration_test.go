package sentinel

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// TestSentinelPasswordRotation rotates the password file of each pod at a
// different time (three seconds apart, as kubelets update Secret volumes
// each at its own time) while a client writes through the master and the
// replication links break and reconnect, and
// checks that no server or Sentinel refused a login at any moment, no
// replication link failed on auth, no acknowledged write was lost, and at
// the end only the new password works and every outgoing setting uses it.
func TestSentinelPasswordRotation(t *testing.T) {
	e := newSentinelEnv(t)
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
		ok, state := e.settled(m, e.pw())
		return ok, state
	})

	p1, p2 := e.pw(), "rotated-pass-77aa"
	// Every login refused from here on counts. The test's own checks log
	// in as another user, which the rotation leaves alone.
	var watches []*proctest.LoginWatch
	for _, s := range e.servers() {
		c := s.dial(p1)
		watches = append(watches, proctest.StartLoginWatch(t, s.name, c))
		c.Close()
	}
	logStart := map[string]int64{}
	for _, p := range e.pods {
		logStart[p.redis.Log()] = proctest.LogOffset(p.redis.Log())
	}

	w := startWriter(t, e)
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	// A second after each change the replicas' links break (as in a
	// network blip) and reconnect with their masterauth: a link that stays
	// up never logs in again.
	for i := 0; i < envPods; i++ {
		e.rotatePasswordOn((m+i)%envPods, p2) // the master's kubelet first
		time.Sleep(time.Second)
		c := testServer{addr: e.addr(m) + ":6379"}.observe()
		if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
			t.Errorf("CLIENT KILL TYPE replica on the master: %v", err)
		}
		c.Close()
		time.Sleep(2 * time.Second)
	}
	// The application moves to the new password once every server
	// accepts it, before the old one is dropped (the grace is 3s).
	e.waitFor(30*time.Second, "every redis-server and Sentinel accepts the new password", func() (bool, string) {
		return e.allAccept(p2)
	})
	e.setPassword(p2)
	e.waitFor(60*time.Second, "only the new password accepted and every outgoing setting on it", func() (bool, string) {
		return e.rotated(p2)
	})
	took := time.Since(start)
	e.waitFor(30*time.Second, "replicas linked, every Sentinel names the master, on the new password", func() (bool, string) {
		return e.settled(m, p2)
	})
	res := w.stop()
	t.Logf("staggered rotation (3 s between pods) done %s after the first file changed; %d writes, %d acknowledged, longest write gap %s",
		took.Round(time.Millisecond), len(res.ok), len(res.acked), res.maxGap.Round(time.Millisecond))
	if len(res.acked) == 0 {
		t.Error("the writer got no write acknowledged during the rotation")
	}
	checkWrites(t, e, m, res, true)

	for i, s := range e.servers() {
		c := s.observe()
		watches[i].Check(t, c)
		c.Close()
	}
	for path, off := range logStart {
		proctest.AuthErrorsSince(t, path, off)
	}
	// Last, as it counts as a refused login: the old password is refused
	// everywhere.
	for _, s := range e.servers() {
		c := s.dial(p1)
		err := c.Ping(ctx).Err()
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("%s with the old password: %v, want WRONGPASS", s.name, err)
		}
	}
}

// testServer is one redis-server or Sentinel of the env.
type testServer struct {
	name string
	addr string
}

func (s testServer) dial(pw string) *redis.Client {
	return s.dialAs("", pw)
}

func (s testServer) observe() *redis.Client {
	return s.dialAs(proctest.Observer, proctest.ObserverPass)
}

func (s testServer) dialAs(user, pw string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.addr, Username: user, Password: pw, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 1})
}

func (e *sentinelEnv) servers() []testServer {
	var out []testServer
	for i := 0; i < envPods; i++ {
		out = append(out, testServer{fmt.Sprintf("redis-server %d", i), e.addr(i) + ":6379"}, testServer{fmt.Sprintf("Sentinel %d", i), e.addr(i) + ":26379"})
	}
	return out
}

// passwordsOf is the default user's password hashes on s.
func passwordsOf(s testServer) ([]string, error) {
	c := s.observe()
	defer c.Close()
	return proctest.DefaultUserPasswords(c)
}

// allAccept: every server lists p2 (a login with p2 on a server that
// does not accept it yet would count as refused).
func (e *sentinelEnv) allAccept(p2 string) (bool, string) {
	ok := true
	var state []string
	for _, s := range e.servers() {
		hs, err := passwordsOf(s)
		has := slices.Contains(hs, proctest.PasswordHash(p2))
		ok = ok && err == nil && has
		state = append(state, fmt.Sprintf("%s accepts new=%t %v", s.name, has, err))
	}
	return ok, strings.Join(state, "; ")
}

// rotated: every server accepts p2 only; every redis-server's masterauth
// and every Sentinel's auth-pass and sentinel-pass (as saved in its file)
// are p2; the include a restarted redis-server reads carries only p2.
func (e *sentinelEnv) rotated(p2 string) (bool, string) {
	ctx := context.Background()
	ok := true
	var state []string
	for _, s := range e.servers() {
		hs, err := passwordsOf(s)
		only := err == nil && len(hs) == 1 && hs[0] == proctest.PasswordHash(p2)
		ok = ok && only
		state = append(state, fmt.Sprintf("%s only-new=%t (%d passwords) %v", s.name, only, len(hs), err))
	}
	for i, p := range e.pods {
		c := testServer{addr: e.addr(i) + ":6379"}.observe()
		ma, err := c.ConfigGet(ctx, "masterauth").Result()
		c.Close()
		sc := testServer{addr: e.addr(i) + ":26379"}.observe()
		sp, serr := sc.Do(ctx, "SENTINEL", "CONFIG", "GET", "sentinel-pass").Slice()
		sc.Close()
		conf, _ := os.ReadFile(p.cfg.SentinelConf)
		inc, _ := os.ReadFile(p.cfg.RedisConfInclude)
		authPass := strings.Contains(string(conf), "sentinel auth-pass mymaster "+p2+"\n")
		incOK := strings.Contains(string(inc), "masterauth "+p2+"\n") && strings.Contains(string(inc), "requirepass "+p2+"\n") && !strings.Contains(string(inc), "user default")
		spOK := serr == nil && len(sp) == 2 && sp[1] == p2
		good := err == nil && ma["masterauth"] == p2 && spOK && authPass && incOK
		ok = ok && good
		state = append(state, fmt.Sprintf("pod %d masterauth-new=%t sentinel-pass-new=%t auth-pass-new=%t include-new=%t", i, ma["masterauth"] == p2, spOK, authPass, incOK))
	}
	return ok, strings.Join(state, "; ")
}

// settled: both replicas linked to m and every Sentinel sees m as a
// healthy master, logging in with pw.
func (e *sentinelEnv) settled(m int, pw string) (bool, string) {
	ctx := context.Background()
	ok := true
	var state []string
	for i := 0; i < envPods; i++ {
		r := e.role(i)
		s := newSentinelNode(e.addr(i), 26379, func() string { return pw }, time.Second)
		mm, serr := s.c.Master(ctx, "mymaster").Result()
		s.Close()
		good := serr == nil && mm["flags"] == "master" && mm["ip"] == e.addr(m) && (i == m || (r.Role == redisx.RoleReplica && r.LinkUp))
		ok = ok && good
		state = append(state, fmt.Sprintf("pod %d role=%s link=%t sentinel master=%s flags=%q %v", i, r.Role, r.LinkUp, mm["ip"], mm["flags"], serr))
	}
	return ok, strings.Join(state, "; ")
}
