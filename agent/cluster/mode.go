package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// clusterEnv is what cluster mode acts through. NewMode builds it from
// Deps (DNS, the Kubernetes API, a Lease); integration tests build their own
// with loopback addresses and a fixed coordinator.
type clusterEnv struct {
	Log zerolog.Logger
	// PeerIP is the current IP of the pod with the given ordinal.
	PeerIP   func(ctx context.Context, ordinal int) (string, error)
	Topology clusterTopology
	// PodTerminating reports whether the pod with the given ordinal is
	// being deleted; nil means never.
	PodTerminating func(ctx context.Context, ordinal int) (bool, error)
	// Coordinator reports whether this pod holds the coordinator Lease now.
	Coordinator func() bool
	// RunElection campaigns for the coordinator Lease until ctx ends; nil
	// when Coordinator is decided elsewhere.
	RunElection func(ctx context.Context) error
	// Password is the password file's value; the agent's connections use
	// Rotation's outgoing password.
	Password func() string
	// PasswordChanged receives after the password file changed; nil for
	// never.
	PasswordChanged <-chan struct{}
	// Rotation steps a password change without failed logins; nil makes
	// one over Password.
	Rotation *rotation.Rotator
	// TLS is the certificate material of the agent's connections; nil is
	// plaintext. Its Changed makes redis-server reload renewed files.
	TLS *secrets.TLSFiles
	// ACLFile is --acl-file, the application users; nil: none.
	ACLFile *secrets.File
	Event   func(eventType, reason, note string)
	Metrics *metrics.Metrics // may be nil
	Clock   clock.WithTicker
	// FastInterval is the pass interval while the cluster is not settled.
	FastInterval time.Duration
	// Dial returns the client of one redis-server; nil means go-redis.
	Dial func(ip string, port int) clusterNodeAPI
}

// clusterTopology is what cluster mode reads from Kubernetes.
type clusterTopology interface {
	// Expected is the StatefulSet's spec.replicas (or --replicas).
	Expected(ctx context.Context) (int, error)
	// ExpectedNow is Expected read from the API server now, past any cache:
	// preStop must know whether a scale-in is removing this pod.
	ExpectedNow(ctx context.Context) (int, error)
	// Placement maps pod ordinals to spec.nodeName; missing means unknown.
	Placement(ctx context.Context) (map[int]string, error)
}

// clusterMode runs one pod's part of a Redis Cluster: every agent re-meets
// its peers; the coordinator also creates, completes and grows the cluster.
type clusterMode struct {
	cfg   config.Config
	env   clusterEnv
	log   zerolog.Logger
	conns *clusterConns

	mu       sync.Mutex
	status   clusterStatus
	creating time.Time // when this coordinator assigned the first slots
	settled  atomic.Bool
	passes   sidecar.PassMark // when the loop last finished a pass, for /healthz
	// announce gives the local server the names newer engines announce.
	announce *sidecar.Announcer
}

type clusterStatus struct {
	Mode           string `json:"mode"`
	Pod            string `json:"pod"`
	NodeID         string `json:"nodeID,omitempty"`
	Role           string `json:"role"`
	ClusterState   string `json:"clusterState,omitempty"`
	Coordinator    bool   `json:"coordinator"`
	Expected       int    `json:"expectedPods,omitempty"`
	LastDecision   string `json:"lastDecision,omitempty"`
	LastDecisionAt string `json:"lastDecisionAt,omitempty"`
	LastError      string `json:"lastError,omitempty"`
	// Live from the local redis-server when /status is asked.
	Slots      string `json:"slots,omitempty"` // e.g. "0-5460"
	SlotCount  int    `json:"slotCount"`
	MasterID   string `json:"masterID,omitempty"` // the master a replica follows
	ReplID     string `json:"replid,omitempty"`
	Offset     int64  `json:"offset"`
	MasterLink string `json:"masterLink,omitempty"` // replica: up/down
	// Engine is what the local redis-server's INFO server names (engine,
	// engine_version), as of the last pass; empty until it has answered.
	redisx.Engine
}

func newClusterModeWith(cfg config.Config, env clusterEnv) *clusterMode {
	if env.Clock == nil {
		env.Clock = clock.RealClock{}
	}
	if env.Password == nil {
		env.Password = func() string { return "" }
	}
	if env.Event == nil {
		env.Event = func(string, string, string) {}
	}
	if env.FastInterval <= 0 {
		env.FastInterval = time.Second
	}
	log := env.Log.With().Str("component", "cluster").Logger()
	if env.Rotation == nil {
		env.Rotation = rotation.New(env.Password, env.Clock, cfg.PasswordRotationGrace, env.Log)
	}
	env.Password = env.Rotation.Outgoing
	m := &clusterMode{cfg: cfg, env: env, log: log, conns: newClusterConns(cfg.Users().Login(cfg.AgentUser), env.Password, env.TLS),
		status:   clusterStatus{Mode: config.ModeCluster, Pod: cfg.PodName, Role: "unknown"},
		announce: &sidecar.Announcer{Cluster: true, Zone: cfg.Zone, PodName: cfg.PodName, Log: log}}
	m.passes.Set(env.Clock.Now()) // the loop's first pass is due now
	return m
}

func (m *clusterMode) dial(ip string, port int) clusterNodeAPI {
	if m.env.Dial != nil {
		return m.env.Dial(ip, port)
	}
	return m.conns.get(ip, port)
}

func (m *clusterMode) local() clusterNodeAPI {
	m.conns.name(m.cfg.PodIP, m.cfg.PodFQDN(m.cfg.Ordinal()))
	return m.dial(m.cfg.PodIP, m.cfg.RedisPort)
}

func (m *clusterMode) peer(ctx context.Context, ordinal int) (clusterNodeAPI, string, error) {
	if ordinal == m.cfg.Ordinal() {
		return m.local(), m.cfg.PodIP, nil
	}
	ip, err := m.env.PeerIP(ctx, ordinal)
	if err != nil {
		return nil, "", err
	}
	m.conns.name(ip, m.cfg.PodFQDN(ordinal))
	return m.dial(ip, m.cfg.RedisPort), ip, nil
}

// Run reconciles until ctx ends: a pass every FastInterval until the
// cluster is settled, then every --resync-interval. The coordinator
// election and the password watcher run in the same errgroup as the loop,
// so the connections are closed only after all of them have stopped.
func (m *clusterMode) Run(ctx context.Context) error {
	defer m.conns.close()
	g, ctx := errgroup.WithContext(ctx)
	if m.env.RunElection != nil {
		g.Go(func() error {
			if err := m.env.RunElection(ctx); err != nil && ctx.Err() == nil {
				m.log.Error().Err(err).Msg("coordinator election stopped")
			}
			return nil
		})
	}
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-m.env.TLS.Changed():
				m.applyTLS(ctx)
			}
		}
	})
	g.Go(func() error { m.watchPassword(ctx); return nil })
	g.Go(func() error { return m.checkUsers(ctx) })
	g.Go(func() error {
		return (&sidecar.ACLFileUsers{File: m.env.ACLFile, Managed: sidecar.ManagedNames(m.cfg, acl.ModeCluster), Include: m.cfg.RedisConfInclude,
			SetUser: func(ctx context.Context, user string, rules []string) error {
				return m.local().ACLSetUser(ctx, user, rules)
			},
			Log: m.log, Clock: m.env.Clock}).Run(ctx)
	})
	g.Go(func() error { return m.loop(ctx) })
	return g.Wait()
}

// loop runs the reconcile passes until ctx ends.
func (m *clusterMode) loop(ctx context.Context) error {
	if note := readInitReport(m.cfg); note != "" {
		m.env.Event("Normal", "NodesConfRewritten", note)
	}
	for {
		settled, err := m.pass(ctx)
		m.settled.Store(settled)
		m.notePass(ctx, err)
		m.passes.Set(m.env.Clock.Now())
		wait := m.env.FastInterval
		if settled && err == nil {
			wait = m.cfg.ResyncInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.env.Clock.After(wait):
		}
	}
}

// notePass counts and logs one pass's outcome and publishes its error.
func (m *clusterMode) notePass(ctx context.Context, err error) {
	var waiting waitingError
	isWait := errors.As(err, &waiting)
	if m.env.Metrics != nil {
		m.env.Metrics.ReconcilePasses.Inc()
		if err != nil && !isWait {
			m.env.Metrics.ReconcileErrors.Inc()
		}
	}
	switch {
	case err == nil || ctx.Err() != nil:
	case isWait:
		m.log.Info().Str("reason", waiting.reason).Msg("waiting; retrying")
	default:
		m.log.Warn().Err(err).Msg("reconcile pass failed; retrying")
	}
	m.setStatus(func(s *clusterStatus) {
		s.LastError = ""
		if err != nil {
			s.LastError = err.Error()
		}
	})
}

// pass is one reconcile: observe this node, meet peers, and, on the
// coordinator, decide and act for the whole cluster.
func (m *clusterMode) pass(ctx context.Context) (settled bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, max(m.cfg.ResyncInterval, 30*time.Second))
	defer cancel()
	local := m.local()
	view, err := local.Nodes(ctx)
	if err != nil {
		return false, fmt.Errorf("local redis-server %s: %w", net.JoinHostPort(m.cfg.PodIP, strconv.Itoa(m.cfg.RedisPort)), err)
	}
	info, err := local.ClusterInfo(ctx)
	if err != nil {
		return false, fmt.Errorf("local CLUSTER INFO: %w", err)
	}
	m.noteLocal(view, info)
	if e, err := redisx.EngineOf(info); err == nil {
		m.announce.Apply(ctx, e, info["run_id"], local.ConfigSet)
	}
	expected, err := m.env.Topology.Expected(ctx)
	if err != nil {
		return false, err
	}
	met, err := m.meetPeers(ctx, view, expected)
	if err != nil {
		return false, err
	}
	coord := m.env.Coordinator()
	m.setStatus(func(s *clusterStatus) { s.Coordinator, s.Expected = coord, expected })
	if !coord {
		return met == 0 && info["cluster_state"] == "ok", nil
	}
	st, err := m.observe(ctx, expected)
	if err != nil {
		return false, err
	}
	a := decideCluster(st)
	m.setStatus(func(s *clusterStatus) {
		s.LastDecision = string(a.Kind) + ": " + a.Reason
		s.LastDecisionAt = m.env.Clock.Now().UTC().Format(time.RFC3339)
	})
	if a.Kind != actNone {
		m.log.Info().Str("action", string(a.Kind)).Str("reason", a.Reason).Msg("coordinator decision")
	}
	if err := m.execute(ctx, st, a); err != nil {
		m.env.Event("Warning", "ClusterActionFailed", fmt.Sprintf("%s failed: %v (decision: %s)", a.Kind, err, a.Reason))
		return false, err
	}
	if a.Kind == actNone {
		m.maybeCreated(st)
	}
	return a.Kind == actNone && met == 0 && allOK(st), nil
}

func allOK(st clusterState) bool {
	for _, p := range st.Pods {
		if p.Ordinal < st.Expected && (!p.up() || p.State != "ok") {
			return false
		}
	}
	return true
}

// maybeCreated reports the end of a creation this coordinator started, once
// every pod reports cluster_state:ok.
func (m *clusterMode) maybeCreated(st clusterState) {
	m.mu.Lock()
	start := m.creating
	m.mu.Unlock()
	if start.IsZero() || !allOK(st) {
		return
	}
	took := m.env.Clock.Since(start)
	m.mu.Lock()
	m.creating = time.Time{}
	m.mu.Unlock()
	x := newIndex(st)
	m.env.Event("Normal", "ClusterCreated", fmt.Sprintf("cluster of %d pods ready: %d masters, every pod reports cluster_state:ok, %s after the first slots were assigned", st.Expected, len(x.masters()), took.Round(time.Millisecond)))
	m.log.Info().Dur("took", took).Msg("cluster created: every pod reports cluster_state:ok")
}

func (m *clusterMode) noteLocal(view []clusterNode, info map[string]string) {
	me, _ := myself(view)
	role := "master"
	if me.isReplica() {
		role = "replica"
	}
	e, engineErr := redisx.EngineOf(info)
	var engineChanged bool
	m.setStatus(func(s *clusterStatus) {
		s.NodeID, s.Role, s.ClusterState = me.ID, role, info["cluster_state"]
		if engineErr == nil && e != s.Engine {
			s.Engine, engineChanged = e, true
		}
	})
	if mt := m.env.Metrics; mt != nil {
		if engineChanged {
			mt.SetEngine(e.Name, e.Version)
		}
		mt.SetRole(role)
		v := 0.0
		if info["cluster_state"] == "ok" {
			v = 1
		}
		mt.ClusterState.Set(v)
	}
}

func (m *clusterMode) setStatus(f func(*clusterStatus)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.status)
}

// Status is the /status body.
func (m *clusterMode) Status(ctx context.Context) any {
	m.mu.Lock()
	st := m.status
	m.mu.Unlock()
	m.liveStatus(ctx, &st)
	return st
}

// liveStatus adds what this node reports right now (its slots, whom it
// follows, its replication offset), so `redis-ha-agent status` shows the
// shards as Redis sees them and not as of the last reconcile pass.
func (m *clusterMode) liveStatus(ctx context.Context, st *clusterStatus) {
	local := m.local()
	if view, err := local.Nodes(ctx); err == nil {
		if me, ok := myself(view); ok {
			ranges := make([]string, 0, len(me.Slots))
			for _, r := range me.Slots {
				ranges = append(ranges, r.String())
			}
			st.Slots = strings.Join(ranges, ",")
			st.SlotCount = me.slotCount()
			st.MasterID = me.MasterID
		}
	}
	if repl, err := local.Replication(ctx); err == nil {
		st.ReplID, st.Offset, st.MasterLink = repl.ReplID, repl.Offset, repl.LinkStatus()
	}
}

// Live: redis-server answers, or is loading its data.
func (m *clusterMode) Live(ctx context.Context) error {
	err := m.local().Ping(ctx)
	if err != nil && isLoading(err) {
		return nil
	}
	return err
}

// Healthy: the agent itself works, its reconcile loop finishing passes. It
// asks neither redis-server nor the API server: their outages are what the
// agent must keep running through.
func (m *clusterMode) Healthy(context.Context) error {
	return sidecar.LoopHealth(m.env.Clock.Now(), m.passes.Get(), sidecar.StallLimit(m.cfg))
}

// Ready: see clusterReadiness.
func (m *clusterMode) Ready(ctx context.Context) error {
	local := m.local()
	info, err := local.ClusterInfo(ctx)
	if err != nil {
		return fmt.Errorf("CLUSTER INFO: %w", err)
	}
	view, err := local.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("CLUSTER NODES: %w", err)
	}
	repl, err := local.Replication(ctx)
	if err != nil {
		return fmt.Errorf("INFO replication: %w", err)
	}
	return clusterReadiness(info, view, repl)
}

func isLoading(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "LOADING")
}

// applyTLS makes redis-server reload renewed TLS files: any CONFIG SET of a
// tls-* parameter rebuilds its TLS context (client, replication and the
// cluster bus) from the files, keeping open connections.
func (m *clusterMode) applyTLS(ctx context.Context) {
	if err := m.local().ConfigSet(ctx, "tls-cert-file", m.cfg.TLS.CertFile); err != nil {
		m.log.Error().Err(err).Msg("TLS files renewed but CONFIG SET tls-cert-file failed; redis-server serves the previous certificate until the next change or a restart")
		m.env.Event("Warning", "TLSReloadFailed", fmt.Sprintf("CONFIG SET tls-cert-file failed: %v", err))
		return
	}
	m.env.Event("Normal", "TLSReloaded", "redis-server reloaded the renewed TLS files")
}
