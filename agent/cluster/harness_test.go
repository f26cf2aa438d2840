package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// The integration tests run real redis-server processes on loopback, each
// on its own 127.0.4x.y address (bind + bind-source-addr so peers see the
// right source), with one agent per node in this process. There is no DNS
// on loopback, so the agents get an injected ordinal -> IP scheme; the
// coordinator Lease is replaced by a flag (the Lease runs in e2e).

const testRedisPort = 6379

var _ clusterTopology = (*fakeTopology)(nil)

// fakeTopology is a StatefulSet whose size the test changes.
type fakeTopology struct {
	expected  func() int
	placement func() map[int]string
}

func (f *fakeTopology) Expected(context.Context) (int, error)    { return f.expected(), nil }
func (f *fakeTopology) ExpectedNow(context.Context) (int, error) { return f.expected(), nil }
func (f *fakeTopology) Placement(context.Context) (map[int]string, error) {
	if f.placement == nil {
		return nil, nil
	}
	return f.placement(), nil
}

// testPod is one pod: a redis-server and its agent.
type testPod struct {
	ordinal int
	ip      string
	dir     string
	cfg     config.Config
	proc    *proctest.Proc
	mode    *clusterMode
	stop    context.CancelFunc
	done    chan struct{}
	// secret is this pod's copy of the password Secret once rotateOn
	// changed it (each kubelet updates its pod's at its own time); nil
	// follows the cluster's password.
	secret atomic.Value
}

// testCluster is a StatefulSet of testPods on 127.0.<subnet>.<ordinal+1>.
type testCluster struct {
	t        *testing.T
	subnet   int
	expected atomic.Int32
	coord    atomic.Int32 // ordinal of the coordinator
	scaleOut string
	password atomic.Value  // string; "" for no auth
	grace    time.Duration // --password-rotation-grace of the agents
	pwChange map[int]chan struct{}
	ipOf     func(ordinal int) string
	pods     map[int]*testPod
	mu       sync.Mutex
	events   []string
	// tls, when set by useTLS, is the settings every pod gets: one
	// certificate for the headless Service wildcard, shared by all pods as
	// a cert-manager Certificate would be; clientTLS is the test clients'.
	tls       secrets.TLSSettings
	clientTLS *tls.Config
	ca        *proctest.CA
	// users, when set by useACLUsers, are every pod's ACL user flags; the
	// test's clients then log in as appUser (appPass), which each pod's
	// own redis.conf defines.
	users   acl.Users
	appUser string
}

const appPass = "app-pass-4e2a"

// useACLUsers gives every pod started from now on an agent user, a
// replication user, and its default user off.
func (c *testCluster) useACLUsers() {
	c.users = acl.Users{Agent: "ha-agent", Replication: "ha-repl", DefaultOff: true}
	c.appUser = "app"
}

// creds are the test clients' credentials.
func (c *testCluster) creds() (string, string) {
	if c.appUser != "" {
		return c.appUser, appPass
	}
	return "", c.pw()
}

// useTLS switches the pods started from now on to TLS only.
func (c *testCluster) useTLS() {
	ca := proctest.NewCA(c.t, "cluster test CA")
	c.ca = ca
	cert, key, caFile := ca.WriteSecret(c.t, c.t.TempDir(), proctest.Leaf{CommonName: "redis", DNS: []string{"*.redis-headless.itest.svc.cluster.local"}})
	c.tls = secrets.TLSSettings{CertFile: cert, KeyFile: key, CAFile: caFile, AuthClients: "yes"}
	c.clientTLS = ca.ClientTLS(c.t)
	// The test dials IPs; the wildcard holds names only.
	c.clientTLS.ServerName = "redis-0.redis-headless.itest.svc.cluster.local"
}

func newTestCluster(t *testing.T, subnet int, scaleOut string) *testCluster {
	proctest.NeedPrograms(t, "redis-server")
	if subnet < 40 || subnet > 49 {
		t.Fatalf("subnet 127.0.%d.x is outside the 127.0.40-49 range reserved for these tests", subnet)
	}
	c := &testCluster{t: t, subnet: subnet, scaleOut: scaleOut, pods: map[int]*testPod{}, pwChange: map[int]chan struct{}{}}
	c.password.Store("")
	c.ipOf = func(o int) string { return fmt.Sprintf("127.0.%d.%d", subnet, o+1) }
	return c
}

func (c *testCluster) cfg(ordinal int) config.Config {
	return config.Config{
		Identity: config.Identity{PodName: fmt.Sprintf("redis-%d", ordinal), Namespace: "itest", PodIP: c.ipOf(ordinal),
			StatefulSet: "redis", Service: "redis-headless", Domain: "cluster.local"},
		Mode: config.ModeCluster, RedisPort: testRedisPort, ResyncInterval: time.Second, ClusterReplicas: 1, ScaleOutAs: c.scaleOut,
		InitTimeout: 5 * time.Second, SentinelPort: 26379, DownAfter: time.Second,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		TLS: c.tls, PasswordRotationGrace: c.grace,
		AgentUser: c.users.Agent, ReplicationUser: c.users.Replication, DisableDefaultUser: c.users.DefaultOff,
		PasswordFile: c.passwordFile(),
	}
}

// passwordFile: the agents get the password from the env, not a file;
// config only needs to know there is one.
func (c *testCluster) passwordFile() string {
	if c.pw() == "" {
		return ""
	}
	return "/test/password"
}

// startRedis runs init for the pod (include + nodes.conf) and starts its
// redis-server; dir is kept across restarts like a PVC.
func (c *testCluster) startRedis(ordinal int) *testPod {
	t := c.t
	p := c.pods[ordinal]
	if p == nil {
		p = &testPod{ordinal: ordinal, dir: t.TempDir()}
		c.pods[ordinal] = p
	}
	p.ip = c.ipOf(ordinal)
	p.cfg = c.cfg(ordinal)
	p.cfg.DataDir = p.dir
	p.cfg.RedisConfInclude = filepath.Join(p.dir, "conf", "redis-ha.conf")
	p.cfg.NodesConf = filepath.Join(p.dir, "nodes.conf")
	if err := p.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := writeClusterInclude(p.cfg, c.pw(), nil); err != nil {
		t.Fatal(err)
	}
	conf := strings.Join([]string{
		fmt.Sprintf("port %d", testRedisPort),
		"bind " + p.ip,
		"bind-source-addr " + p.ip,
		"protected-mode no",
		"cluster-enabled yes",
		"cluster-node-timeout 2000",
		"cluster-config-file " + p.cfg.NodesConf,
		"dir " + p.dir,
		`save ""`,
		"appendonly yes",
		"logfile " + filepath.Join(p.dir, "redis.log"),
		c.appUserLine(),
		"include " + p.cfg.RedisConfInclude,
	}, "\n") + "\n"
	confPath := filepath.Join(p.dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.proc = proctest.Start(t, filepath.Join(p.dir, "redis.log"), "redis-server", confPath)
	cl := c.client(ordinal)
	proctest.Eventually(t, 10*time.Second, func() error { return cl.Ping(context.Background()).Err() }, "%s answers PING", p.ip)
	return p
}

// appUserLine defines the test clients' user in a pod's own redis.conf.
func (c *testCluster) appUserLine() string {
	if c.appUser == "" {
		return "# no application user"
	}
	return "user " + c.appUser + " on >" + appPass + " ~* &* +@all"
}

// startAgent runs the pod's agent in this process until the test ends.
func (c *testCluster) startAgent(ordinal int) *testPod {
	p := c.pods[ordinal]
	cfg := p.cfg
	c.pwChange[ordinal] = make(chan struct{}, 1)
	files, err := secrets.NewTLSFiles(cfg.TLS, []string{cfg.PodFQDN(ordinal)}, clock.RealClock{})
	if err != nil {
		c.t.Fatal(err)
	}
	env := clusterEnv{
		TLS: files,
		Password: func() string {
			if v := p.secret.Load(); v != nil {
				return v.(string)
			}
			return c.pw()
		},
		PasswordChanged: c.pwChange[ordinal],
		Log:             zerolog.New(zerolog.NewTestWriter(c.t)).Level(zerolog.WarnLevel).With().Int("agent", ordinal).Logger(),
		PeerIP:          func(_ context.Context, o int) (string, error) { return c.ipOf(o), nil },
		Topology:        &fakeTopology{expected: func() int { return int(c.expected.Load()) }},
		Coordinator:     func() bool { return int(c.coord.Load()) == ordinal },
		Event:           func(typ, reason, note string) { c.event(ordinal, typ, reason, note) },
		FastInterval:    200 * time.Millisecond,
	}
	p.mode = newClusterModeWith(cfg, env)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		// The file watcher, as agent.Run runs it beside the mode.
		go func() { _ = files.Run(ctx, env.Log, clock.RealClock{}, time.Second) }()
		_ = p.mode.Run(ctx)
	}()
	c.t.Cleanup(func() { c.stopAgent(p) })
	return p
}

func (c *testCluster) stopAgent(p *testPod) {
	if p.stop == nil {
		return
	}
	p.stop()
	<-p.done
	p.stop = nil
}

func (c *testCluster) event(ordinal int, typ, reason, note string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, fmt.Sprintf("pod %d %s %s: %s", ordinal, typ, reason, note))
}

func (c *testCluster) hasEvent(reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if strings.Contains(e, " "+reason+": ") {
			return true
		}
	}
	return false
}

func (c *testCluster) pw() string { return c.password.Load().(string) }

// rotate changes the password the way a Secret update does: every agent's
// file watcher fires.
func (c *testCluster) rotate(pw string) {
	c.password.Store(pw)
	for _, p := range c.pods {
		p.secret.Store(pw)
	}
	for _, ch := range c.pwChange {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// rotateOn changes pod o's copy of the password Secret only, as its
// kubelet would; the test clients keep theirs.
func (c *testCluster) rotateOn(o int, pw string) {
	c.pods[o].secret.Store(pw)
	select {
	case c.pwChange[o] <- struct{}{}:
	default:
	}
}

func (c *testCluster) client(ordinal int) *redis.Client {
	cl := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", c.ipOf(ordinal), testRedisPort), Protocol: 2, DisableIdentity: true,
		CredentialsProvider: c.creds, TLSConfig: c.clientTLS})
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func (c *testCluster) clusterClient() *redis.ClusterClient {
	var addrs []string
	for o := range c.pods {
		addrs = append(addrs, fmt.Sprintf("%s:%d", c.ipOf(o), testRedisPort))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true,
		CredentialsProvider: c.creds,
		MaxRedirects:        16, ReadTimeout: time.Second, WriteTimeout: time.Second, DialTimeout: time.Second, TLSConfig: c.clientTLS})
	c.t.Cleanup(func() { cc.Close() })
	return cc
}

// healthy checks what DESIGN.md says cluster_state:ok alone does not: every
// expected pod is ready by the agent's own readiness, which checks node
// flags and each replica's master address.
func (c *testCluster) healthy(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for o := 0; o < n; o++ {
		p := c.pods[o]
		if p == nil || p.mode == nil {
			return fmt.Errorf("pod %d has no agent", o)
		}
		if err := p.mode.Ready(ctx); err != nil {
			if p.proc != nil && exited(p.proc) || strings.Contains(err.Error(), "connection refused") {
				log, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
				return fmt.Errorf("pod %d not ready: %w; redis.log tail:\n%s", o, err, proctest.Tail(string(log), 3000))
			}
			return fmt.Errorf("pod %d not ready: %w", o, err)
		}
		view, err := p.mode.local().Nodes(ctx)
		if err != nil {
			return err
		}
		if len(view) != n {
			return fmt.Errorf("pod %d knows %d nodes, want %d", o, len(view), n)
		}
	}
	return nil
}

// topology returns masters (ordinal -> slot count) and replicas (ordinal ->
// master ordinal) as the pods see themselves.
func (c *testCluster) topology(n int) (masters map[int]int, replicas map[int]int, err error) {
	ctx := context.Background()
	ids := map[string]int{}
	selves := map[int]clusterNode{}
	for o := 0; o < n; o++ {
		view, err := c.pods[o].mode.local().Nodes(ctx)
		if err != nil {
			return nil, nil, err
		}
		me, _ := myself(view)
		ids[me.ID], selves[o] = o, me
	}
	masters, replicas = map[int]int{}, map[int]int{}
	for o, me := range selves {
		if me.isReplica() {
			replicas[o] = ids[me.MasterID]
		} else if me.slotCount() > 0 {
			masters[o] = me.slotCount()
		}
	}
	return masters, replicas, nil
}

func writeKeys(t *testing.T, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("%s:%d", prefix, i), i, 0).Err(); err != nil {
			t.Fatalf("SET %s:%d: %v", prefix, i, err)
		}
	}
}

func checkKeys(t *testing.T, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	missing := 0
	for i := 0; i < n; i++ {
		v, err := cc.Get(ctx, fmt.Sprintf("%s:%d", prefix, i)).Int()
		if err != nil || v != i {
			missing++
			if missing <= 3 {
				t.Errorf("GET %s:%d = %d, %v; want %d", prefix, i, v, err, i)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d keys %s:* missing or wrong", missing, n, prefix)
	}
}

// shutdown stops a pod the way the kubelet does: agent first, then
// redis-server with SIGTERM so it flushes its AOF.
func (c *testCluster) shutdown(o int) {
	p := c.pods[o]
	c.stopAgent(p)
	if p.proc == nil {
		return
	}
	if p.proc.Stop(syscall.SIGTERM, 15*time.Second) {
		c.t.Logf("redis-server of pod %d ignored SIGTERM for 15s; killed it. Log tail:\n%s", o, proctest.Tail(p.proc.Tail(), 1500))
	}
	p.proc = nil
}

// exited reports whether the process ended.
func exited(p *proctest.Proc) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}
