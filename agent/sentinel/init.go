package sentinel

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// sentinelPeers is how sentinel mode reaches the pods of its StatefulSet.
// The default addresses pods by their headless-Service DNS name; tests use
// loopback IPs instead, since a test machine has no cluster DNS.
type sentinelPeers struct {
	Pods    int
	Self    int
	Addr    func(ordinal int) string
	Timeout time.Duration // one call to a peer
	// Dial functions; the defaults are the go-redis adapters.
	Redis    func(host string) redisNode
	Sentinel func(host string) sentinelNode
	// Resolve checks that a host name resolves (IPs always do).
	Resolve func(ctx context.Context, host string) error
	// External is how the pods are reached from outside the cluster; the
	// zero value (off) names pods only by Addr.
	External config.External
}

// ordinalOf maps a Redis address that Redis or a Sentinel reported back to
// a pod; -1 when it is not one of ours. A pod is known by its peer name
// (any port: the fence points at its own name on port 0) and, with
// external access on, by its external port on any host (external.go).
func (p sentinelPeers) ordinalOf(host string, port int) int {
	if i := p.nameOrdinal(host); i >= 0 {
		return i
	}
	return p.External.RedisOrdinal(port, p.Pods)
}

// sentinelOrdinalOf is ordinalOf for a Sentinel's address.
func (p sentinelPeers) sentinelOrdinalOf(host string, port int) int {
	if i := p.nameOrdinal(host); i >= 0 {
		return i
	}
	return p.External.SentinelOrdinal(port, p.Pods)
}

func (p sentinelPeers) nameOrdinal(host string) int {
	h := strings.TrimSuffix(host, ".")
	for i := 0; i < p.Pods; i++ {
		if strings.EqualFold(h, strings.TrimSuffix(p.Addr(i), ".")) {
			return i
		}
	}
	return -1
}

func defaultPeers(cfg config.Config, pods int, password func() string, tlsFiles *secrets.TLSFiles, kube kubeapi.Clients, log zerolog.Logger) sentinelPeers {
	timeout := time.Second
	d := redisx.Dial{User: cfg.Users().Login(cfg.AgentUser), Password: password, Timeout: timeout, Fallback: apiPodIP(cfg, kube, log), TLS: tlsFiles, ServerName: serverNames(cfg)}
	return sentinelPeers{
		Pods: pods, Self: cfg.Ordinal(), Addr: cfg.PodFQDN, Timeout: timeout, External: cfg.External,
		Redis:    func(h string) redisNode { return dialRedis(d, h, cfg.RedisPort) },
		Sentinel: func(h string) sentinelNode { return dialSentinel(d, h, cfg.SentinelPort) },
		Resolve: func(ctx context.Context, h string) error {
			if net.ParseIP(h) != nil {
				return nil
			}
			_, err := net.DefaultResolver.LookupHost(ctx, h)
			return err
		},
	}
}

// serverNames: peers are dialed by their FQDN, which their certificates
// hold; this pod's own servers are dialed at its pod IP (localHost), and
// verified under its FQDN, so one headless-Service wildcard SAN covers
// every connection the agent makes.
func serverNames(cfg config.Config) func(host string) string {
	return func(host string) string {
		if cfg.PodIP != "" && host == cfg.PodIP {
			return cfg.PodFQDN(cfg.Ordinal())
		}
		return host
	}
}

// apiPodIP maps a peer's DNS name back to its pod and reads the pod's IP
// from the API server.
func apiPodIP(cfg config.Config, kube kubeapi.Clients, log zerolog.Logger) redisx.PodIPLookup {
	if kube == nil {
		return nil
	}
	return func(ctx context.Context, host string) (string, bool) {
		name, _, _ := strings.Cut(host, ".")
		n, err := strconv.Atoi(strings.TrimPrefix(name, cfg.StatefulSet+"-"))
		if err != nil || !strings.EqualFold(strings.TrimSuffix(host, "."), cfg.PodFQDN(n)) {
			return "", false // not one of our pods
		}
		pod, err := kube.CoreV1().Pods(cfg.Namespace).Get(ctx, cfg.PodNameOf(n), metav1.GetOptions{})
		if err != nil {
			// Logged, not returned: the caller reports the DNS error, and a
			// refused get (RBAC) must still be visible to whoever debugs it.
			log.Warn().Err(err).Str("peer", host).Msg("peer's DNS name did not resolve and its pod IP could not be read from the API (needs RBAC get on pods)")
			return "", false
		}
		if pod.Status.PodIP == "" {
			return "", false
		}
		return pod.Status.PodIP, true
	}
}

// sentinelInit is init's work, with its surroundings injected.
type sentinelInit struct {
	cfg      config.Config
	log      zerolog.Logger
	peers    sentinelPeers
	password string
	// leaseHolder returns the Lease's holder identity ("" free or absent).
	leaseHolder func(ctx context.Context) (string, error)
	// clock times the waits; nil is the real clock.
	clock clock.Clock
}

func (in *sentinelInit) clk() clock.Clock {
	if in.clock == nil {
		return clock.RealClock{}
	}
	return in.clock
}

// Init is sentinel mode's init container: it decides this pod's role (what
// a Sentinel majority says, else the Lease holder, else boot fenced) and
// writes the redis.conf include and sentinel.conf.
func Init(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	log = log.With().Str("component", "init").Str("pod", cfg.PodName).Logger()
	pw, err := secrets.ReadPasswordFile(cfg.PasswordFile)
	if err != nil {
		return err
	}
	tlsFiles, err := secrets.NewTLSFiles(cfg.TLS, []string{cfg.PodFQDN(cfg.Ordinal())}, clock.RealClock{})
	if err != nil {
		return err
	}
	kube, election, err := kubeapi.NewClients(cfg.Kubeconfig, "redis-ha-agent/"+cfg.Version+"/init")
	if err != nil {
		return err
	}
	pods, err := expectedReplicas(ctx, kube, cfg)
	if err != nil {
		return err
	}
	if err := cfg.External.CheckSpan(pods); err != nil {
		return err
	}
	leases := newLeaseStore(election, cfg.Namespace, cfg.LeaseName, cfg.PodName, nil)
	in := sentinelInit{
		cfg: cfg, log: log, password: pw,
		peers:       defaultPeers(cfg, pods, func() string { return pw }, tlsFiles, kube, log),
		leaseHolder: leases.Holder,
	}
	return in.run(ctx)
}

// run decides the role and writes both files. Safe to run twice: the same
// inputs give the same files, and atomicfile.Write skips identical content.
func (in *sentinelInit) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.InitTimeout)
	defer cancel()
	self := in.peers.Addr(in.peers.Self)
	if net.ParseIP(self) == nil {
		if err := in.waitForOwnName(ctx, self); err != nil {
			return err
		}
	}

	master, why, err := in.discoverMaster(ctx)
	if err != nil {
		return err
	}
	addrs := includeAddrs{Self: self}
	addrs.AnnounceHost, addrs.AnnouncePort = announcedAddr(ctx, in.cfg, in.peers, in.peers.Self, in.log)
	if master >= 0 {
		addrs.MasterHost, addrs.MasterPort = announcedAddr(ctx, in.cfg, in.peers, master, in.log)
	}
	in.log.Info().Int("master", master).Str("master_host", addrs.MasterHost).Int("master_port", addrs.MasterPort).Str("reason", why).Msg("init decided the role")

	inc, err := redisInclude(in.cfg, in.peers.Pods, addrs, in.password)
	if err != nil {
		return err
	}
	fileUsers, err := sidecar.ReadACLFile(in.cfg, acl.ModeSentinel)
	if err != nil {
		return err
	}
	inc = []byte(acl.ReplaceFileBlock(string(inc), fileUsers))
	if _, err := writeConf(in.cfg.RedisConfInclude, inc); err != nil {
		return fmt.Errorf("write --redis-conf-include (REDIS_HA_REDIS_CONF_INCLUDE): %w", err)
	}

	p := sentinelconf.Params{
		MasterName: in.cfg.MasterName, MasterHost: addrs.MasterHost, MasterPort: addrs.MasterPort,
		Quorum: quorumOf(in.cfg, in.peers.Pods), DownAfter: in.cfg.DownAfter, FailoverTimeout: in.cfg.FailoverTimeout, ParallelSyncs: 1,
		MyID: sentinelconf.MyID(in.cfg.Namespace, in.cfg.PodName), AnnounceHost: self, Port: in.cfg.SentinelPort,
		Password: in.password, TLS: in.cfg.TLS.SentinelParams(),
		AuthUser: in.cfg.Users().Login(in.cfg.SentinelAuthUser), SentinelUser: in.cfg.Users().Login(in.cfg.SentinelAuthUser),
	}
	if in.password != "" {
		for _, u := range in.cfg.Users().On(acl.ModeSentinel, acl.Sentinel) {
			p.Users = append(p.Users, u.Line([]string{in.password}))
		}
	}
	if in.cfg.External.Enabled() {
		p.AnnounceHost, p.AnnouncePort = in.cfg.External.Host, in.cfg.External.SentinelPortOf(in.peers.Self)
	}
	// Sentinel 7.0 refuses to start when a known-sentinel host does not
	// resolve, so only peers that resolve now keep their lines.
	for i := 0; i < in.peers.Pods; i++ {
		if i == in.peers.Self {
			continue
		}
		h := in.peers.Addr(i)
		if err := in.peers.Resolve(ctx, h); err != nil {
			in.log.Info().Str("peer", h).Err(err).Msg("peer does not resolve yet; its known-sentinel line is dropped and Sentinel rediscovers it")
			continue
		}
		p.Peers = append(p.Peers, sentinelconf.Peer{Host: h, MyID: sentinelconf.MyID(in.cfg.Namespace, in.cfg.PodNameOf(i))})
	}
	old, err := readIfExists(in.cfg.SentinelConf)
	if err != nil {
		return fmt.Errorf("read --sentinel-conf (REDIS_HA_SENTINEL_CONF) %s: %w", in.cfg.SentinelConf, err)
	}
	conf, ch, err := sentinelFile(old, p)
	if err != nil {
		return fmt.Errorf("render --sentinel-conf (REDIS_HA_SENTINEL_CONF) %s: %w; fix or move the file aside", in.cfg.SentinelConf, err)
	}
	LogSentinelConfWarnings(in.log, in.cfg.SentinelConf, ch.Warnings)
	if _, err := writeConf(in.cfg.SentinelConf, conf); err != nil {
		return fmt.Errorf("write --sentinel-conf (REDIS_HA_SENTINEL_CONF): %w", err)
	}
	in.log.Info().Str("redis_conf_include", in.cfg.RedisConfInclude).Str("sentinel_conf", in.cfg.SentinelConf).
		Int("dropped_sentinels", len(ch.DroppedSentinels)).Int("dropped_replicas", len(ch.DroppedReplicas)).Msg("init wrote the configuration")
	return nil
}

// waitForOwnName waits, within half of init's timeout, for this pod's DNS
// name: the name is announced to peers, and Sentinel resolves it. A name
// that never resolves is a deployment error (no headless Service of that
// name, or one that does not publish not-ready pods): init fails, naming
// the host and the flag it came from, and the kubelet retries it.
func (in *sentinelInit) waitForOwnName(ctx context.Context, self string) error {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.InitTimeout/2)
	defer cancel()
	for {
		err := in.peers.Resolve(ctx, self)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("this pod's DNS name %s does not resolve after %s (%v): the headless Service --headless-service (REDIS_HA_HEADLESS_SERVICE) %q must exist in namespace %s, select this pod and set publishNotReadyAddresses: true",
				self, in.cfg.InitTimeout/2, err, in.cfg.Service, in.cfg.Namespace)
		case <-in.clk().After(500 * time.Millisecond):
		}
	}
}

// discoverMaster is init's decision: a Sentinel majority, else a Lease
// holder that answers as master, else nobody (-1: boot fenced).
// A peer that refuses this pod's password fails init: booting with a
// password the others do not share would leave the pod fenced for good.
func (in *sentinelInit) discoverMaster(ctx context.Context) (int, string, error) {
	views, authErrs := askSentinels(ctx, in.peers, in.cfg.MasterName, in.log)
	if len(authErrs) > 0 {
		return -1, "", fmt.Errorf("%s refused the password read from --password-file (REDIS_HA_PASSWORD_FILE) %q: every pod must mount the same Secret key; if the Secret was just changed, the other pods apply it within a minute and this init's retry succeeds",
			strings.Join(authErrs, "; "), in.cfg.PasswordFile)
	}
	if m, ok := sentinelMajority(views, in.peers.Pods); ok {
		if m != in.peers.Self {
			return m, "a Sentinel majority names it", nil
		}
		// The Sentinels still name this pod after a quick restart. A
		// replica may hold writes this pod lost; booting fenced lets
		// Sentinel fail over to the best replica instead.
		return -1, "a Sentinel majority still names this restarting pod; booting fenced so Sentinel picks the freshest replica", nil
	}
	holder, err := in.leaseHolder(ctx)
	if err != nil {
		in.log.Warn().Err(err).Msg("cannot read the Lease; booting fenced")
		return -1, "no Sentinel majority and the Lease is unreadable", nil
	}
	h := -1
	for i := 0; i < in.peers.Pods; i++ {
		if in.cfg.PodNameOf(i) == holder {
			h = i
		}
	}
	if h < 0 || h == in.peers.Self {
		return -1, fmt.Sprintf("no Sentinel majority and no other pod holds the Lease (holder %q)", holder), nil
	}
	cctx, cancel := context.WithTimeout(ctx, in.peers.Timeout)
	defer cancel()
	n := in.peers.Redis(in.peers.Addr(h))
	defer n.Close()
	r, err := n.Replication(cctx)
	if isAuthError(err) {
		return -1, "", fmt.Errorf("redis-server of Lease holder %s refused the password read from --password-file (REDIS_HA_PASSWORD_FILE) %q (%v): every pod must mount the same Secret key",
			holder, in.cfg.PasswordFile, err)
	}
	if err != nil || r.Role != redisx.RoleMaster {
		return -1, fmt.Sprintf("Lease holder %s does not answer as master (role %q, err %v)", holder, r.Role, err), nil
	}
	return h, "no Sentinel majority; the Lease holder answers as master", nil
}

// askSentinels asks every configured Sentinel in parallel which master it
// monitors. Unreachable ones count as not knowing; the ones that refused
// the password are also listed.
func askSentinels(ctx context.Context, peers sentinelPeers, name string, log zerolog.Logger) ([]sentinelView, []string) {
	views := make([]sentinelView, peers.Pods)
	errs := make([]error, peers.Pods)
	var wg sync.WaitGroup
	for i := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i], errs[i] = askSentinel(ctx, peers, i, name, log)
		}()
	}
	wg.Wait()
	var refused []string
	for i, err := range errs {
		if isAuthError(err) {
			refused = append(refused, fmt.Sprintf("Sentinel at %s (%v)", peers.Addr(i), err))
		}
	}
	return views, refused
}

func askSentinel(ctx context.Context, peers sentinelPeers, i int, name string, log zerolog.Logger) (sentinelView, error) {
	s := peers.Sentinel(peers.Addr(i))
	defer s.Close()
	v, err := querySentinel(ctx, s, name, peers)
	if err != nil {
		log.Debug().Int("sentinel", i).Err(err).Msg("Sentinel unreachable")
	}
	return v, err
}

// querySentinel is the one Sentinel query of both init and the run loop:
// which master s monitors under name, within one peer timeout. A Sentinel
// that does not answer knows no master; its error is returned.
func querySentinel(ctx context.Context, s sentinelNode, name string, peers sentinelPeers) (sentinelView, error) {
	ctx, cancel := context.WithTimeout(ctx, peers.Timeout)
	defer cancel()
	host, port, ok, err := s.MasterAddr(ctx, name)
	if err != nil {
		return sentinelView{Master: -1}, err
	}
	if !ok {
		return sentinelView{Reachable: true, Master: -1}, nil
	}
	return sentinelView{Reachable: true, Master: peers.ordinalOf(host, port), named: true}, nil
}

// isAuthError reports whether Redis or Sentinel refused the credentials:
// a wrong password, none where one is required, or one where none is set.
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "WRONGPASS") || strings.Contains(s, "NOAUTH") ||
		strings.Contains(s, "invalid password") || strings.Contains(s, "without any password configured")
}
