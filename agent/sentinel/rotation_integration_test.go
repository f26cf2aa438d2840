package sentinel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// TestSentinelPasswordRotation rotates the password file of each pod at a
// different time (three seconds apart, as kubelets update Secret volumes
// each at its own time) while a client writes through the master, and
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
	// Every login refused from here on counts: the ACL log of each server
	// and Sentinel, and INFO's acl_access_denied_auth where the engine has
	// it (Redis 7.2+, Valkey). The test's own checks log in as another
	// user, which the rotation leaves alone, so they never fail a login.
	before := map[string]int64{}
	logStart := map[string]int64{}
	for _, s := range e.servers() {
		c := s.dial(p1)
		if err := c.Do(ctx, "ACL", "SETUSER", observer, "on", ">"+observerPass, "~*", "&*", "+@all").Err(); err != nil {
			t.Fatalf("ACL SETUSER %s on %s: %v", observer, s.name, err)
		}
		if err := c.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
			t.Fatalf("ACL LOG RESET on %s: %v", s.name, err)
		}
		if n, ok := deniedAuth(ctx, c); ok {
			before[s.name] = n
		}
		c.Close()
	}
	for _, p := range e.pods {
		if fi, err := os.Stat(p.redis.Log()); err == nil {
			logStart[p.redis.Log()] = fi.Size()
		}
	}

	w := startWriter(t, e)
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	for i := 0; i < envPods; i++ {
		if i > 0 {
			time.Sleep(3 * time.Second)
		}
		e.rotatePasswordOn((m+i)%envPods, p2) // the master's kubelet first
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

	for _, s := range e.servers() {
		c := s.observe()
		entries, err := authLog(ctx, c)
		if err != nil {
			t.Errorf("ACL LOG on %s: %v", s.name, err)
		} else if len(entries) > 0 {
			t.Errorf("%s refused %d login(s) during the rotation: %s", s.name, len(entries), strings.Join(entries, "; "))
		}
		if b, ok := before[s.name]; ok {
			if n, _ := deniedAuth(ctx, c); n != b {
				t.Errorf("%s acl_access_denied_auth went from %d to %d during the rotation", s.name, b, n)
			}
		}
		c.Close()
	}
	authErr := regexp.MustCompile(`(?i)NOAUTH|WRONGPASS|invalid password|AUTH failed|-ERR.*auth`)
	for path, off := range logStart {
		b, err := os.ReadFile(path)
		if err != nil || int64(len(b)) < off {
			t.Errorf("read %s: %v", path, err)
			continue
		}
		for _, l := range strings.Split(string(b[off:]), "\n") {
			if authErr.MatchString(l) {
				t.Errorf("%s logged an auth error during the rotation: %s", path, l)
			}
		}
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

// observer is the test's own ACL user: its logins never depend on the
// default user's password, which the rotation changes.
const observer, observerPass = "rotation-test-observer", "observer-pass-0b5e"

func (s testServer) dial(pw string) *redis.Client {
	return s.dialAs("", pw)
}

func (s testServer) observe() *redis.Client { return s.dialAs(observer, observerPass) }

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

// deniedAuth is INFO stats' acl_access_denied_auth; ok false where the
// engine does not count it (Redis 7.0).
func deniedAuth(ctx context.Context, c *redis.Client) (int64, bool) {
	s, err := c.Info(ctx, "stats").Result()
	if err != nil {
		return 0, false
	}
	v, ok := redisx.ParseInfo(s)["acl_access_denied_auth"]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// authLog lists the ACL log's refused logins (reason auth), with their
// count and client.
func authLog(ctx context.Context, c *redis.Client) ([]string, error) {
	v, err := c.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range v {
		fields, _ := e.([]any)
		f := map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			f[k] = fmt.Sprint(fields[i+1])
		}
		if f["reason"] == "auth" {
			out = append(out, fmt.Sprintf("count=%s client=%s", f["count"], f["client-info"]))
		}
	}
	return out, nil
}

func hashOf(pw string) string {
	h := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(h[:])
}

// passwordsOf is the default user's password hashes on s.
func passwordsOf(s testServer) ([]string, error) {
	c := s.observe()
	defer c.Close()
	v, err := c.Do(context.Background(), "ACL", "GETUSER", "default").Slice()
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(v); i += 2 {
		if v[i] == "passwords" {
			ps, _ := v[i+1].([]any)
			var out []string
			for _, p := range ps {
				out = append(out, fmt.Sprint(p))
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("no passwords field in %v", v)
}

// allAccept: every server lists p2 (a login with p2 on a server that
// does not accept it yet would count as refused).
func (e *sentinelEnv) allAccept(p2 string) (bool, string) {
	ok := true
	var state []string
	for _, s := range e.servers() {
		hs, err := passwordsOf(s)
		has := slices.Contains(hs, hashOf(p2))
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
		only := err == nil && len(hs) == 1 && hs[0] == hashOf(p2)
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
