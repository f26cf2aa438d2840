package sentinel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

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

// sentinelEnv is a three-pod sentinel-mode StatefulSet on loopback: real
// redis-server and redis-sentinel processes on 127.0.30.10-12 (their IPs
// stand in for pod FQDNs), real agents, and a real kube-apiserver.
type sentinelEnv struct {
	t        *testing.T
	kube     kubernetes.Interface
	api      *proctest.Proc
	block    int        // third octet of the pods' loopback addresses
	mu       sync.Mutex // guards password
	password string
	pwFile   string
	pods     []*envPod
	log      zerolog.Logger
	// ca, when set, switched every pod to TLS (newSentinelEnvTLS);
	// clientTLS is a test client's configuration trusting it.
	ca        *proctest.CA
	clientTLS *tls.Config
	// server and sentinel are the engine's programs: redis-server and
	// redis-sentinel unless newSentinelEnvTLS was given another engine.
	server, sentinel string
	// appUser, when set, is the user the test's clients log in to
	// redis-servers as (with appPass), defined by redisExtra lines of
	// each pod's own redis.conf: a test whose default user is off.
	appUser    string
	redisExtra []string
}

const appPass = "app-pass-9c1d"

type envPod struct {
	i        int
	dir      string
	cfg      config.Config
	redis    *proctest.Proc
	sentinel *proctest.Proc
	mode     *sentinelMode
	stop     context.CancelFunc
	done     chan struct{}
	tls      *secrets.TLSFiles // nil: plaintext
	// pwFile is this pod's copy of the Secret, which the agent watches:
	// each kubelet updates its pod's volume at its own time.
	pwFile string
}

const envPods = 3

// addr is pod i's loopback address in this env's block.
func (e *sentinelEnv) addr(i int) string { return fmt.Sprintf("127.0.%d.%d", e.block, 10+i) }

// freeBlock picks a 127.0.B.0/24 block (B in 30..38) whose pod addresses
// have nothing listening, so two runs of this test (two engineers, or go
// test ./... beside a focused run) do not collide.
func freeBlock(t *testing.T) int {
	for b := 30; b <= 38; b++ {
		free := true
		for i := 0; i < envPods && free; i++ {
			for _, port := range []int{6379, 26379, 8080} {
				ln, err := net.Listen("tcp", fmt.Sprintf("127.0.%d.%d:%d", b, 10+i, port))
				if err != nil {
					free = false
					break
				}
				ln.Close()
			}
		}
		if free {
			return b
		}
	}
	t.Fatal("no free loopback block 127.0.30-38.10-12 for the test's pods")
	return 0
}

func newSentinelEnv(t *testing.T) *sentinelEnv {
	t.Helper()
	proctest.NeedPrograms(t, "redis-server", "redis-sentinel")
	rc, api := proctest.StartAPIServer(t)
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	e := &sentinelEnv{t: t, kube: kube, api: api, password: "test-pass-5e1f", pwFile: filepath.Join(base, "password"), block: freeBlock(t),
		server: "redis-server", sentinel: "redis-sentinel"}
	if testing.Verbose() {
		e.log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}).With().Timestamp().Logger()
	} else {
		e.log = zerolog.Nop()
	}
	if err := os.WriteFile(e.pwFile, []byte(e.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < envPods; i++ {
		dir := filepath.Join(base, fmt.Sprintf("redis-%d", i))
		for _, d := range []string{"data", "conf"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cfg := config.Config{
			Identity: config.Identity{PodName: fmt.Sprintf("redis-%d", i), Namespace: "default", StatefulSet: "redis", Domain: "cluster.local"},
			Mode:     config.ModeSentinel, Replicas: envPods, RedisPort: 6379, SentinelPort: 26379, PasswordFile: e.pwFile,
			DataDir: filepath.Join(dir, "data"), RedisConfInclude: filepath.Join(dir, "conf", "redis-ha.conf"), SentinelConf: filepath.Join(dir, "conf", "sentinel.conf"),
			// The flags' defaults for the fence: min-replicas-to-write 1 and
			// max-lag 2, derived from down-after 5s (agent/config/fence.go).
			MasterName: "mymaster", DownAfter: 5 * time.Second, FailoverTimeout: 10 * time.Second, MinReplicasToWrite: -1,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			RoleLabel: "redis-ha-agent/role", HTTPAddr: e.addr(i) + ":8080", ResyncInterval: 10 * time.Second,
			SwitchoverTimeout: 30 * time.Second, InitTimeout: 10 * time.Second, ElectionWait: 30 * time.Second,
			PasswordRotationGrace: 3 * time.Second,
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		pwFile := filepath.Join(dir, "secret", "password")
		if err := os.MkdirAll(filepath.Dir(pwFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pwFile, []byte(e.password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.pods = append(e.pods, &envPod{i: i, dir: dir, cfg: cfg, pwFile: pwFile})
		e.createPod(i)
	}
	return e
}

// testFinalizer keeps a deleted pod's object, with its deletionTimestamp,
// as a kubelet's grace period would: these pods run on no node, so the API
// server would remove them at once.
const testFinalizer = "redis-ha-agent.test/grace-period"

func (e *sentinelEnv) createPod(i int) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: e.pods[i].cfg.PodName, Namespace: "default", Labels: map[string]string{"app": "redis"}, Finalizers: []string{testFinalizer}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: "redis:7.0.15"}}},
	}
	if _, err := e.kube.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// deletePod deletes pod i's object as kubectl delete would: it stays, being
// deleted, until recreatePod.
func (e *sentinelEnv) deletePod(i int) {
	if err := e.kube.CoreV1().Pods("default").Delete(context.Background(), e.pods[i].cfg.PodName, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete pod %d: %v", i, err)
	}
}

// recreatePod replaces pod i's object by a new one (a new UID, no role
// label), as the StatefulSet does after a deletion, and restarts its agent
// as the new pod's would; redis-server and Sentinel keep running.
func (e *sentinelEnv) recreatePod(i int) {
	ctx := context.Background()
	pods := e.kube.CoreV1().Pods("default")
	name := e.pods[i].cfg.PodName
	e.stopAgent(i)
	if p, err := pods.Get(ctx, name, metav1.GetOptions{}); err == nil {
		p.Finalizers = nil
		if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			e.t.Fatalf("drop the test finalizer of pod %d: %v", i, err)
		}
		if p.DeletionTimestamp == nil {
			e.deletePod(i)
		}
	}
	e.waitFor(10*time.Second, fmt.Sprintf("pod %d's old object gone", i), func() (bool, string) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	e.createPod(i)
	e.startAgent(i)
}

func (e *sentinelEnv) pw() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.password
}

// rotatePassword replaces the Secret file's content in every pod at once,
// and the test clients' password with it.
func (e *sentinelEnv) rotatePassword(pw string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := atomicfile.Write(e.pwFile, []byte(pw+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	for i := range e.pods {
		e.rotatePasswordOn(i, pw)
	}
	e.password = pw
}

// rotatePasswordOn replaces pod i's copy of the Secret, as its kubelet
// would; the test clients keep their password (setPassword).
func (e *sentinelEnv) rotatePasswordOn(i int, pw string) {
	if _, err := atomicfile.Write(e.pods[i].pwFile, []byte(pw+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// setPassword is the test clients' password from now on (an application
// that read the new Secret).
func (e *sentinelEnv) setPassword(pw string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.password = pw
}

// newSentinelEnvTLS is newSentinelEnv with TLS on: a CA made for the test,
// and per pod a Secret-like directory (tls.crt, tls.key, ca.crt) whose
// certificate holds the pod's loopback IP, which stands in for its FQDN.
func newSentinelEnvTLS(t *testing.T, server, sentinel string) *sentinelEnv {
	proctest.NeedPrograms(t, server, sentinel)
	e := newSentinelEnv(t)
	e.server, e.sentinel = server, sentinel
	e.ca = proctest.NewCA(t, "redis-ha-agent test CA")
	e.clientTLS = e.ca.ClientTLS(t)
	for i, p := range e.pods {
		cert, key, ca := e.ca.WriteSecret(t, filepath.Join(p.dir, "tls"), proctest.Leaf{CommonName: p.cfg.PodName, IPs: []string{e.addr(i)}})
		p.cfg.TLS = secrets.TLSSettings{CertFile: cert, KeyFile: key, CAFile: ca, AuthClients: "yes"}
		if err := p.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		files, err := secrets.NewTLSFiles(p.cfg.TLS, []string{e.addr(i)}, clock.RealClock{})
		if err != nil {
			t.Fatal(err)
		}
		p.tls = files
	}
	return e
}

func (e *sentinelEnv) peers(self int, pw func() string) sentinelPeers {
	timeout := time.Second
	d := redisx.Dial{User: e.pods[self].cfg.Users().Login(e.pods[self].cfg.AgentUser), Password: pw, Timeout: timeout, TLS: e.pods[self].tls}
	return sentinelPeers{
		Pods: envPods, Self: self, Addr: e.addr, Timeout: timeout,
		Redis:    func(h string) redisNode { return dialRedis(d, h, 6379) },
		Sentinel: func(h string) sentinelNode { return dialSentinel(d, h, 26379) },
		Resolve:  func(context.Context, string) error { return nil },
	}
}

// init runs the agent's init for pod i, as the initContainer would.
func (e *sentinelEnv) init(i int) error {
	p := e.pods[i]
	leases := newLeaseStore(e.kube, "default", p.cfg.LeaseName, p.cfg.PodName, nil)
	in := sentinelInit{cfg: p.cfg, log: e.log.With().Int("pod", i).Logger(), peers: e.peers(i, e.pw), password: e.pw(), leaseHolder: leases.Holder}
	return in.run(context.Background())
}

// redisConf is the pod image's own redis.conf: loopback binds, then the
// agent's include. extra lines come first (the seed phase has no include).
func (e *sentinelEnv) writeRedisConf(i int, include bool, extra ...string) string {
	p := e.pods[i]
	lines := []string{
		"bind " + e.addr(i), "bind-source-addr " + e.addr(i), "port 6379", "protected-mode no",
		"dir " + p.cfg.DataDir, "save 3600 1", "repl-diskless-sync-delay 0", "appendonly no",
	}
	lines = append(lines, extra...)
	lines = append(lines, e.redisExtra...)
	if include {
		lines = append(lines, "include "+p.cfg.RedisConfInclude)
	}
	path := filepath.Join(p.dir, "redis.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

func (e *sentinelEnv) startRedis(i int, include bool, extra ...string) {
	p := e.pods[i]
	conf := e.writeRedisConf(i, include, extra...)
	p.redis = proctest.Start(e.t, filepath.Join(p.dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())), e.server, conf)
	pw, tc := "", (*tls.Config)(nil)
	if include {
		pw, tc = e.pw(), e.clientTLS
	}
	if e.appUser != "" {
		c := e.client(i)
		defer c.Close()
		proctest.Eventually(e.t, 10*time.Second, func() error { return c.Ping(context.Background()).Err() }, "%s answers PING as %s", e.addr(i), e.appUser)
		return
	}
	proctest.WaitPingTLS(e.t, e.addr(i)+":6379", pw, tc, 10*time.Second)
}

func (e *sentinelEnv) startSentinel(i int) {
	p := e.pods[i]
	p.sentinel = proctest.Start(e.t, filepath.Join(p.dir, fmt.Sprintf("sentinel-%d.log", time.Now().UnixNano())), e.sentinel, p.cfg.SentinelConf,
		"--bind", e.addr(i), "--protected-mode", "no")
	proctest.WaitPingTLS(e.t, e.addr(i)+":26379", e.pw(), e.clientTLS, 10*time.Second)
}

// startAgent runs pod i's sidecar: the sentinel mode and the shared HTTP
// server (peers read /status from it).
func (e *sentinelEnv) startAgent(i int) {
	p := e.pods[i]
	pw, err := secrets.NewPassword(p.pwFile)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := e.log.With().Str("pod", p.cfg.PodName).Logger()
	rec, stopEvents := kubeapi.NewRecorder(ctx, e.kube)
	aclFile, err := secrets.NewFile(p.cfg.ACLFile, "--acl-file")
	if err != nil {
		e.t.Fatal(err)
	}
	deps := sidecar.Deps{Log: log, Kube: e.kube, Election: e.kube, Events: rec, Metrics: metrics.New("test", config.ModeSentinel), Password: pw, TLS: p.tls, ACLFile: aclFile, Clock: clock.RealClock{}}
	deps.Rotation = rotation.New(pw.Get, clock.RealClock{}, p.cfg.PasswordRotationGrace, log)
	m := newSentinelModeWith(p.cfg, deps, e.peers(i, deps.Rotation.Outgoing))
	m.peerStatus = httpPeerStatus(m.peers, "8080")
	srv := sidecar.NewHTTPServer(p.cfg, deps, m)
	p.mode, p.stop, p.done = m, cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); _ = aclFile.Run(ctx, log, clock.RealClock{}, time.Second) }()
	go func() { defer wg.Done(); _ = srv.Run(ctx) }()
	go func() { defer wg.Done(); _ = p.tls.Run(ctx, log, clock.RealClock{}, time.Second) }()
	go func() { defer wg.Done(); _ = pw.Run(ctx, log, clock.RealClock{}, time.Second) }()
	go func() { defer wg.Done(); _ = m.Run(ctx) }()
	go func() { wg.Wait(); stopEvents(); close(p.done) }()
	e.t.Cleanup(func() { e.stopAgent(i) })
}

func (e *sentinelEnv) stopAgent(i int) {
	p := e.pods[i]
	if p.stop == nil {
		return
	}
	p.stop()
	<-p.done
	p.stop = nil
}

func (e *sentinelEnv) client(i int) *redis.Client {
	// The password is read at each connect: a client that reconnects
	// after setPassword uses the new one, as a restarted application would.
	creds := func() (string, string) { return "", e.pw() }
	if e.appUser != "" {
		creds = func() (string, string) { return e.appUser, appPass }
	}
	return redis.NewClient(&redis.Options{Addr: e.addr(i) + ":6379", CredentialsProvider: creds, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second, TLSConfig: e.clientTLS})
}

func (e *sentinelEnv) role(i int) redisx.ReplInfo {
	d := redisx.Dial{Password: e.pw, Timeout: 500 * time.Millisecond, TLS: e.pods[i].tls}
	if e.appUser != "" {
		d.User, d.Password = e.appUser, func() string { return appPass }
	}
	n := dialRedis(d, e.addr(i), 6379)
	defer n.Close()
	r, _ := n.Replication(context.Background())
	return r
}

func (e *sentinelEnv) labels() map[string]string {
	list, err := e.kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	out := map[string]string{}
	if err != nil {
		return out
	}
	for _, p := range list.Items {
		out[p.Name] = p.Labels["redis-ha-agent/role"]
	}
	return out
}

func (e *sentinelEnv) leaseHolder() string {
	h, _ := newLeaseStore(e.kube, "default", "redis", "test", nil).Holder(context.Background())
	return h
}

// waitFor polls cond until it holds or the deadline passes.
func (e *sentinelEnv) waitFor(d time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	err := proctest.Until(context.Background(), d, func() error {
		if ok, state := cond(); !ok {
			return errors.New(state)
		}
		return nil
	})
	if err != nil {
		// The reason first: a CI report that keeps only part of the
		// output should not lose it behind the process logs.
		e.t.Errorf("%s: not within %s; last state: %v", what, d, err)
		e.dumpLogs()
		e.t.FailNow()
	}
}

func (e *sentinelEnv) dumpLogs() {
	for _, p := range e.pods {
		for _, pr := range []*proctest.Proc{p.redis, p.sentinel} {
			if pr != nil {
				e.t.Logf("--- %s\n%s", pr.Log(), pr.Tail())
			}
		}
	}
}

// masterOf is the pod every check agrees is master: the only one labelled
// master, holding the Lease, with role master; -1 while they disagree.
func (e *sentinelEnv) masterOf() (int, string) {
	labels := e.labels()
	holder := e.leaseHolder()
	m := -1
	var state []string
	for i := 0; i < envPods; i++ {
		name := fmt.Sprintf("redis-%d", i)
		r := e.role(i)
		state = append(state, fmt.Sprintf("%s label=%q role=%q link=%t master=%s", name, labels[name], r.Role, r.LinkUp, r.MasterHost))
		if labels[name] == redisx.RoleMaster {
			if m >= 0 {
				return -1, "two master labels: " + strings.Join(state, "; ")
			}
			m = i
		}
	}
	state = append(state, "lease="+holder)
	if m < 0 || holder != fmt.Sprintf("redis-%d", m) || e.role(m).Role != redisx.RoleMaster {
		return -1, strings.Join(state, "; ")
	}
	return m, strings.Join(state, "; ")
}
