package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// minPassInterval coalesces bursts of events (several Sentinels announcing
// the same +switch-master) into one pass, like external-dns's controller.
const minPassInterval = 100 * time.Millisecond

// fastWindow is how long after an event passes run every fastPeriod: the
// Sentinels learn of a promotion one by one (hello messages every 2 s), so a
// majority may form a moment after the first +switch-master.
const (
	fastWindow = 5 * time.Second
	fastPeriod = 250 * time.Millisecond
)

// Run reconciles until ctx ends: a pass on every +switch-master from the
// local Sentinel, every password change, and periodically — every
// RetryPeriod while this pod holds or seeks the Lease, else ResyncInterval.
// The watchers that schedule passes run in the same errgroup as the loop,
// so the clients are closed only after every one of them has stopped.
func (m *sentinelMode) Run(ctx context.Context) error {
	defer m.closeAll()
	trigger := make(chan string, 1)
	poke := func(why string) {
		select {
		case trigger <- why:
		default:
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for range m.localSentinel().SwitchMaster(ctx) {
			poke("+switch-master")
		}
		return nil
	})
	g.Go(func() error {
		m.watchPeerNames(ctx, 5*time.Second)
		return nil
	})
	g.Go(func() error {
		m.lease.Watch(ctx, func() { poke("Lease changed") }, func(err error) {
			m.log.Warn().Err(err).Msg("cannot watch the Lease; following a new holder waits for the next periodic pass")
		})
		return nil
	})
	g.Go(func() error { return m.watchPassword(ctx, poke) })
	g.Go(func() error { return m.watchTLS(ctx) })
	g.Go(func() error { return m.checkUsers(ctx) })
	g.Go(func() error { return m.aclFileUsers().Run(ctx) })
	g.Go(func() error { return m.loop(ctx, trigger) })
	return g.Wait()
}

// loop runs a pass when trigger fires or the interval is up, until ctx
// ends.
func (m *sentinelMode) loop(ctx context.Context, trigger <-chan string) error {
	var fastUntil time.Time
	why := "start"
	for {
		start := m.deps.Clock.Now()
		if err := m.RunOnce(ctx); err != nil && ctx.Err() == nil {
			m.deps.Metrics.ReconcileErrors.Inc()
			m.log.Warn().Err(err).Str("trigger", why).Msg("reconcile pass failed; retrying")
		}
		m.deps.Metrics.ReconcilePasses.Inc()
		m.passes.Set(m.deps.Clock.Now())
		wait := m.nextInterval()
		if start.Before(fastUntil) {
			wait = min(wait, fastPeriod)
		}
		t := m.deps.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case why = <-trigger:
			t.Stop()
			if why == "+switch-master" {
				fastUntil = m.deps.Clock.Now().Add(fastWindow)
			}
			m.deps.Clock.Sleep(minPassInterval) // coalesce the burst
		case <-t.C():
			why = "resync"
		}
	}
}

// nextInterval: RetryPeriod while this pod holds or seeks the Lease, else
// ResyncInterval; and a master's next pass comes no later than its fence
// deadline, so it fences within RenewDeadline plus one observation (at most
// RetryPeriod) of its last renewal — before the Lease can expire for peers.
func (m *sentinelMode) nextInterval() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	wait := m.cfg.ResyncInterval
	if m.status.MasterOfRecord == m.cfg.PodName || m.status.MasterOfRecord == "" || m.fenced {
		wait = m.cfg.RetryPeriod
	}
	if m.status.Role == redisx.RoleMaster && !m.fenced {
		untilFence := m.lastRenew.Add(m.cfg.RenewDeadline).Sub(m.deps.Clock.Now())
		wait = min(wait, max(untilFence, minPassInterval))
	}
	return wait
}

// RunOnce is one pass: observe, decide, act.
func (m *sentinelMode) RunOnce(ctx context.Context) error {
	m.mu.Lock()
	switching, stopping := m.switching, m.stopping
	m.mu.Unlock()
	if switching || stopping {
		// The preStop switchover owns the roles until it returns; a master
		// that stops without handing over stays as preStop left it.
		return nil
	}
	var scaleErr error
	if _, _, err := m.followScale(ctx, false); err != nil {
		// Keep counting the last known size; the pass still runs.
		scaleErr = err
	}
	o, err := m.observe(ctx)
	if err != nil {
		return errors.Join(scaleErr, err)
	}
	p := decideSentinel(o)
	m.log.Debug().Stringer("plan", p).Msg("reconcile pass")
	err = m.execute(ctx, o, p)
	// The local Sentinel's quorum and stale entries are tended even when
	// the plan failed (a label patch refused): they depend on neither.
	_, majority := sentinelMajority(o.Sentinels, o.Pods)
	if m.announce != nil {
		m.announce.Apply(ctx, o.LocalEngine, o.LocalRunID, m.local.ConfigSet)
	}
	return errors.Join(scaleErr, err, m.tendLocalSentinel(ctx, majority))
}

// observe reads the local Redis, every Sentinel and the Lease, and the peers'
// states when an election may be needed.
func (m *sentinelMode) observe(ctx context.Context) (sentinelObservation, error) {
	peers, sentinels := m.peerSet(), m.sentinelNodes()
	o := sentinelObservation{
		Self: peers.Self, Pods: len(sentinels), LocalMaster: -1, LocalSentinelMaster: -2,
		Now: m.deps.Clock.Now(), RenewDeadline: m.cfg.RenewDeadline,
	}
	m.mu.Lock()
	o.LastRenew, o.Local.Fenced = m.lastRenew, m.fenced
	m.mu.Unlock()

	rd := m.readAll(ctx, peers, sentinels)
	o.Sentinels = rd.sentinels
	// Judge time after observing: a slow API call must not make a master
	// look fresher than it is when the fence deadline is checked.
	o.Now = m.deps.Clock.Now()

	if rd.rerr == nil {
		o.LocalEngine, o.LocalRunID = rd.r.Engine, rd.r.RunID
	}
	if rd.rerr == nil && !rd.r.Loading {
		m.observeLocal(&o, rd.r, peers)
	} else if rd.rerr != nil {
		m.log.Warn().Err(rd.rerr).Msg("local redis-server does not answer")
	}
	ls := o.Sentinels[m.peers.Self]
	if ls.Reachable && ls.Master >= 0 {
		o.LocalSentinelMaster = ls.Master
	} else if ls.Reachable && !ls.named {
		o.LocalSentinelMaster = -1
	}
	if rd.lerr != nil {
		m.log.Warn().Err(rd.lerr).Msg("cannot read the Lease")
	} else {
		o.Lease = leaseView{Known: true, Holder: m.ordinalOfPod(rd.lease.Holder), Live: rd.lease.Live}
	}
	m.observeRoles(ctx, &o)
	m.publishObservation(o, rd)
	return o, nil
}

// reads is what one pass reads at once: the local INFO (and the lag behind
// its master), every Sentinel, the Lease.
type reads struct {
	r         redisx.ReplInfo
	rerr      error
	lag       int64
	lagOK     bool
	sentinels []sentinelView
	lease     leaseRecord
	lerr      error
}

func (m *sentinelMode) readAll(ctx context.Context, peers sentinelPeers, sentinels []sentinelNode) reads {
	var rd reads
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
		defer cancel()
		rd.r, rd.rerr = m.local.Replication(c)
		if rd.rerr == nil {
			rd.lag, rd.lagOK = m.measureLag(ctx, rd.r)
		}
	}()
	rd.sentinels = make([]sentinelView, len(sentinels))
	for i := range rd.sentinels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd.sentinels[i], _ = querySentinel(ctx, sentinels[i], m.cfg.MasterName, peers)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
		defer cancel()
		rd.lease, rd.lerr = m.lease.Read(c, m.cfg.LeaseDuration)
	}()
	wg.Wait()
	return rd
}

// observeLocal fills in what the local redis-server reported, and keeps the
// local history (saved state, master since, link watch) up to date.
func (m *sentinelMode) observeLocal(o *sentinelObservation, r redisx.ReplInfo, peers sentinelPeers) {
	fenced := o.Local.Fenced
	o.Local = m.effective(r)
	o.Local.Fenced = fenced
	m.saveState(r)
	for _, rep := range r.Replicas {
		if rep.State == "online" {
			o.LocalReplicasOnline++
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Role != redisx.RoleMaster {
		m.masterSince = time.Time{}
	} else if m.masterSince.IsZero() {
		m.masterSince = o.Now
	}
	if r.Role == redisx.RoleMaster {
		o.LocalMasterFor = o.Now.Sub(m.masterSince)
	}
	if r.Role == redisx.RoleReplica {
		o.LocalMaster = peers.ordinalOf(r.MasterHost, r.MasterPort)
		if o.LocalMaster >= 0 && o.LocalMaster != o.Self {
			m.link.observe(o.Now, r.LinkUp, r.LinkDownFor)
		}
	}
}

// observeRoles reads, where the decision needs them, how long the local
// Sentinel has disagreed with the majority, the roles of the pods the
// Sentinels or the Lease name, and the peers' states for an election.
func (m *sentinelMode) observeRoles(ctx context.Context, o *sentinelObservation) {
	maj, hasMaj := sentinelMajority(o.Sentinels, o.Pods)
	m.mu.Lock()
	if hasMaj && o.LocalSentinelMaster >= 0 && o.LocalSentinelMaster != maj {
		if m.sentinelStaleSince.IsZero() {
			m.sentinelStaleSince = o.Now
		}
		o.LocalSentinelStaleFor = o.Now.Sub(m.sentinelStaleSince)
	} else {
		m.sentinelStaleSince = time.Time{}
	}
	m.mu.Unlock()
	if hasMaj && maj != o.Self && (o.Local.Role == redisx.RoleMaster || o.LocalSentinelStaleFor >= sentinelStaleAfter) {
		o.NamedMasterRole = m.roleOf(ctx, maj)
	}
	if !hasMaj && o.Lease.Known && o.Lease.Live && o.Lease.Holder >= 0 && o.Lease.Holder != o.Self && (o.LocalSentinelMaster == -1 || o.Local.Role == redisx.RoleMaster) {
		o.LeaseHolderRole = m.roleOf(ctx, o.Lease.Holder)
	}
	if hasMaj && o.Local.Role == redisx.RoleReplica && o.LocalMaster >= 0 && o.LocalMaster != maj && o.LocalMaster != o.Self {
		o.NamedMasterRole = m.roleOf(ctx, maj)
		o.LocalMasterRole = m.roleOf(ctx, o.LocalMaster)
	}
	// Peers' states are only needed when an election may run, or when the
	// Sentinels still name this pod after its redis-server restarted.
	election := !hasMaj && o.Lease.Known && (!o.Lease.Live || (o.Lease.Holder == o.Self && o.Local.Role != redisx.RoleMaster))
	restarted := hasMaj && maj == o.Self && o.Local.Reported && o.Local.Role != redisx.RoleMaster
	m.mu.Lock()
	if !election {
		m.electionSince = time.Time{}
	} else if m.electionSince.IsZero() {
		m.electionSince = o.Now
	}
	if election {
		o.ElectionFor, o.ElectionWait = o.Now.Sub(m.electionSince), m.cfg.ElectionWait
	}
	m.mu.Unlock()
	if election || restarted {
		o.Peers = m.peerStates(ctx, o.Local)
	}
}

// publishObservation puts the pass's view into /status and the lag and
// engine metrics.
func (m *sentinelMode) publishObservation(o sentinelObservation, rd reads) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status.RedisUp = o.Local.Reported
	m.status.Role, m.status.ReplID, m.status.Offset = o.Local.Role, o.Local.ReplID, o.Local.Offset
	m.status.MasterLinkUp, m.status.Loading = rd.r.LinkUp, rd.r.Loading
	m.status.Lag = nil
	lag, lagOK := rd.lag, rd.lagOK
	switch {
	case o.Local.Reported && o.Local.Role == redisx.RoleMaster:
		lag, lagOK = 0, true
		fallthrough
	case lagOK:
		m.status.Lag = &lag
		m.deps.Metrics.ReplicationLag.Set(float64(lag))
	default:
		m.deps.Metrics.ReplicationLag.Set(lagUnknown)
	}
	m.status.LeaseHolder = rd.lease.Holder
	m.status.ObservedAt = o.Now
	if rd.rerr == nil && rd.r.Engine.Name != "" && rd.r.Engine != m.status.Engine {
		m.status.Engine = rd.r.Engine
		m.deps.Metrics.SetEngine(rd.r.Engine.Name, rd.r.Engine.Version)
	}
}

func (m *sentinelMode) roleOf(ctx context.Context, ordinal int) string {
	c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
	defer cancel()
	n := m.peers.Redis(m.peers.Addr(ordinal))
	defer n.Close()
	r, err := n.Replication(c)
	if err != nil {
		return ""
	}
	return r.Role
}

func (m *sentinelMode) peerStates(ctx context.Context, local nodeState) []nodeState {
	out := make([]nodeState, m.podCount())
	var wg sync.WaitGroup
	for i := range out {
		if i == m.peers.Self {
			out[i] = local
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
			defer cancel()
			s, err := m.peerStatus(c, i)
			if err != nil {
				m.log.Debug().Int("peer", i).Err(err).Msg("peer did not report its state")
				return
			}
			out[i] = s
		}()
	}
	wg.Wait()
	return out
}

func (m *sentinelMode) ordinalOfPod(name string) int {
	for i := 0; i < m.podCount(); i++ {
		if name != "" && m.cfg.PodNameOf(i) == name {
			return i
		}
	}
	return -1
}

func (m *sentinelMode) closeAll() {
	_ = m.local.Close()
	m.sizeMu.Lock()
	defer m.sizeMu.Unlock()
	for _, s := range m.sentinels {
		_ = s.Close()
	}
}

// httpPeerStatus reads a peer agent's /status on the agent's HTTP port.
func httpPeerStatus(peers sentinelPeers, port string) func(ctx context.Context, ordinal int) (nodeState, error) {
	client := &http.Client{Timeout: peers.Timeout}
	return func(ctx context.Context, ordinal int) (nodeState, error) {
		url := "http://" + net.JoinHostPort(peers.Addr(ordinal), port) + "/status"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nodeState{}, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nodeState{}, fmt.Errorf("GET %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nodeState{}, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		var st SentinelStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return nodeState{}, fmt.Errorf("GET %s: decode: %w", url, err)
		}
		if st.Mode != config.ModeSentinel {
			return nodeState{}, fmt.Errorf("GET %s: mode %q, want sentinel", url, st.Mode)
		}
		return st.nodeState(), nil
	}
}

// podsLabelledMaster lists this StatefulSet's pods carrying the master label.
func podsLabelledMaster(ctx context.Context, kube kubeapi.Clients, cfg config.Config) ([]string, error) {
	list, err := kube.CoreV1().Pods(cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: cfg.RoleLabel + "=" + redisx.RoleMaster})
	if err != nil {
		return nil, fmt.Errorf("list pods labelled %s=%s (needs RBAC list on pods): %w", cfg.RoleLabel, redisx.RoleMaster, err)
	}
	var names []string
	for _, p := range list.Items {
		rest, ok := strings.CutPrefix(p.Name, cfg.StatefulSet+"-")
		if _, err := strconv.Atoi(rest); ok && err == nil {
			names = append(names, p.Name)
		}
	}
	return names, nil
}
