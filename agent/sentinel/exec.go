package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// fenceHold is how long one CLIENT PAUSE WRITE lasts; the loop re-issues it
// every pass while fenced, so a crashed agent cannot leave writes paused
// for longer than this (its successor re-decides on its first pass).
const fenceHold = 5 * time.Minute

// execute carries a plan out. The Lease write comes first: promotion,
// pointing the Sentinels and the master label happen only if it succeeded,
// so two pods can never both act as winner.
func (m *sentinelMode) execute(ctx context.Context, o sentinelObservation, p sentinelPlan) error {
	leaseOK, err := m.executeLease(ctx, o, p)
	errs := []error{err}
	masterOK := p.Master == o.Self && (leaseOK || p.Authority == authoritySentinel)
	// Fencing is local and comes first: no API call of this pass, however
	// slow (a partition drops packets, it does not refuse them), may delay
	// it past the deadline.
	errs = append(errs, m.executeFence(ctx, p, masterOK))
	masterOK, err = m.executeRole(ctx, o, p, leaseOK, masterOK)
	errs = append(errs, err, m.executeUnfence(ctx, p, masterOK))
	if p.Failover {
		errs = append(errs, m.askFailover(ctx, p))
	}
	if p.PointSentinels && leaseOK {
		errs = append(errs, m.pointSentinels(ctx, o))
	}
	if p.MonitorLocal >= 0 {
		errs = append(errs, m.monitor(ctx, m.peers.Self, p.MonitorLocal))
	}
	if p.Label == redisx.RoleMaster && leaseOK && masterOK {
		errs = append(errs, m.labelMaster(ctx))
	}
	m.record(o, p, masterOK)
	return errors.Join(errs...)
}

// executeLease takes, renews or releases the Lease as planned; leaseOK says
// this pod holds it now.
func (m *sentinelMode) executeLease(ctx context.Context, o sentinelObservation, p sentinelPlan) (leaseOK bool, err error) {
	switch {
	case p.RenewLease && m.renewedWithin(renewEvery(m.cfg)):
		// Renewed recently enough: the Lease is ours for longer than the
		// fence deadline is away, and a write every pass would cost the
		// API server 30 requests a minute per master.
		return true, nil
	case p.TakeLease || p.RenewLease:
		c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
		err := m.lease.Acquire(c, m.cfg.LeaseDuration)
		cancel()
		if err != nil {
			return false, err
		}
		m.mu.Lock()
		m.lastRenew = m.deps.Clock.Now()
		m.mu.Unlock()
		if p.TakeLease && o.Lease.Holder != o.Self {
			m.deps.Metrics.LeaseTransitions.Inc()
			m.event(corev1.EventTypeNormal, "LeaseAcquired", "TakeLease", "took Lease %s: %s", m.cfg.LeaseName, p.Reason)
		}
		return true, nil
	case p.ReleaseLease:
		c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
		err := m.lease.Release(c)
		cancel()
		if err != nil {
			return false, err
		}
		m.event(corev1.EventTypeNormal, "LeaseReleased", "ReleaseLease", "released Lease %s: %s", m.cfg.LeaseName, p.Reason)
	}
	return false, nil
}

// executeFence pauses writes when the plan fences, and again every pass
// while fenced and neither master nor following another pod, so the pause
// outlives no agent.
func (m *sentinelMode) executeFence(ctx context.Context, p sentinelPlan, masterOK bool) error {
	m.mu.Lock()
	fenced := m.fenced
	m.mu.Unlock()
	if !p.Fence && !(fenced && !masterOK && p.ReplicaOf < 0) {
		return nil
	}
	if err := m.local.PauseWrites(ctx, fenceHold); err != nil {
		return err
	}
	m.mu.Lock()
	m.fenced = true
	m.mu.Unlock()
	if p.Fence {
		m.event(corev1.EventTypeWarning, "Fenced", "Fence", "writes paused: %s", p.Reason)
	}
	return nil
}

// executeRole drops the master label, follows another pod or promotes this
// one as planned; masterOK turns false when the promotion failed.
func (m *sentinelMode) executeRole(ctx context.Context, o sentinelObservation, p sentinelPlan, leaseOK, masterOK bool) (bool, error) {
	var errs []error
	// Drop the master label before anything else when this pod is not (or
	// no longer provably) the master, so two pods never carry it at once.
	if p.Label == redisx.RoleReplica || (p.Label == redisx.RoleMaster && !leaseOK) {
		errs = append(errs, m.labelSelf(ctx, redisx.RoleReplica))
	}
	if p.ReplicaOf >= 0 {
		host, port := announcedAddr(ctx, m.cfg, m.peerSet(), p.ReplicaOf, m.log)
		if err := m.local.ReplicaOf(ctx, host, port); err != nil {
			errs = append(errs, err)
		} else if o.Local.Role == redisx.RoleMaster {
			m.event(corev1.EventTypeWarning, "Demoted", "Demote", "demoted to replica of %s: %s", host, p.Reason)
		} else {
			m.event(corev1.EventTypeNormal, "Following", "ReplicaOf", "replicating from %s: %s", host, p.Reason)
		}
	}
	if p.Promote && leaseOK {
		if err := m.local.ReplicaOf(ctx, "", 0); err != nil {
			errs = append(errs, err)
			masterOK = false
		} else {
			m.event(corev1.EventTypeNormal, "Promoted", "Promote", "promoted to master: %s", p.Reason)
		}
	}
	return masterOK, errors.Join(errs...)
}

// executeUnfence lifts the pause when the plan unfences (or once per agent
// process, for a pause a previous one left) and this pod is master or
// follows another.
func (m *sentinelMode) executeUnfence(ctx context.Context, p sentinelPlan, masterOK bool) error {
	m.mu.Lock()
	needUnpause := !m.unpausedOnce
	m.mu.Unlock()
	if !(p.Unfence || needUnpause) || !(masterOK || p.ReplicaOf >= 0) {
		return nil
	}
	// A preStop that began while this pass was in flight owns the pause.
	m.pauseMu.Lock()
	defer m.pauseMu.Unlock()
	if m.preStopOwnsPause {
		return nil
	}
	if err := m.local.Unpause(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	was := m.fenced
	m.fenced, m.unpausedOnce = false, true
	m.mu.Unlock()
	if was {
		m.event(corev1.EventTypeNormal, "Unfenced", "Unfence", "writes accepted again: %s", p.Reason)
	}
	return nil
}

// askFailover asks a Sentinel to fail over, at most every 5s (one failover
// takes Sentinel a second or two; it answers INPROG meanwhile). The peers'
// Sentinels come first, as for a switchover: this plan follows a restart of
// the master pod, whose own Sentinel restarted with it and was pointed at
// this pod, now a replica that lists no replicas, so it knows none and
// answers NOGOODSLAVE for good (seen on real nodes: the two surviving
// Sentinels had split their vote, backed off for 2 × failover-timeout, and
// the pods stayed without a master for two minutes).
func (m *sentinelMode) askFailover(ctx context.Context, p sentinelPlan) error {
	m.mu.Lock()
	now := m.deps.Clock.Now()
	recent := now.Sub(m.lastFailoverAsk) < 5*time.Second
	if !recent {
		m.lastFailoverAsk = now
	}
	m.mu.Unlock()
	if recent {
		return nil
	}
	if err := m.failover(ctx); errors.Is(err, errMasterMovedOn) {
		m.log.Info().Str("reason", p.Reason).Msg("SENTINEL FAILOVER not asked: the Sentinels already name another master; the next pass follows it")
		return nil
	} else if err != nil {
		return err
	}
	m.event(corev1.EventTypeNormal, "FailoverRequested", "Failover", "SENTINEL FAILOVER: %s", p.Reason)
	return nil
}

// pointSentinels makes every Sentinel that monitors nothing monitor this pod:
// the election winner's duty after a cold start.
func (m *sentinelMode) pointSentinels(ctx context.Context, o sentinelObservation) error {
	var errs []error
	n := 0
	for i, v := range o.Sentinels {
		if !v.Reachable || v.named {
			continue
		}
		if err := m.monitor(ctx, i, o.Self); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n > 0 {
		m.event(corev1.EventTypeNormal, "SentinelsPointed", "Monitor", "%d Sentinel(s) now monitor this pod as %s", n, m.cfg.MasterName)
	}
	return errors.Join(errs...)
}

func (m *sentinelMode) monitor(ctx context.Context, sentinel, master int) error {
	host, port := announcedAddr(ctx, m.cfg, m.peerSet(), master, m.log)
	c, cancel := context.WithTimeout(ctx, 3*m.peers.Timeout)
	defer cancel()
	return m.sentinelNodes()[sentinel].Monitor(c, m.cfg.MasterName, host, port, monitorSettings{
		Quorum: quorumOf(m.cfg, m.podCount()), DownAfter: m.cfg.DownAfter, FailoverTimeout: m.cfg.FailoverTimeout,
		ParallelSyncs: 1, AuthPass: m.deps.Rotation.Outgoing(), AuthUser: m.cfg.Users().Login(m.cfg.SentinelAuthUser),
	})
}

// labelSelf writes this pod's role label when it differs from the last one
// written.
func (m *sentinelMode) labelSelf(ctx context.Context, value string) error {
	m.mu.Lock()
	same := m.label == value
	m.mu.Unlock()
	if same {
		return nil
	}
	c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
	defer cancel()
	if err := m.setLabel(c, m.cfg.PodName, value); err != nil {
		m.mu.Lock()
		m.label = ""
		m.mu.Unlock()
		return err
	}
	m.mu.Lock()
	m.label = value
	m.mu.Unlock()
	return nil
}

// labelMaster runs while this pod holds the Lease: any other pod of the
// StatefulSet still labelled master (an old master cut off from the API
// server cannot drop its own label) is relabelled first, then this one.
func (m *sentinelMode) labelMaster(ctx context.Context) error {
	m.mu.Lock()
	already := m.label == redisx.RoleMaster
	m.mu.Unlock()
	if already {
		return nil
	}
	c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
	defer cancel()
	others, err := m.listMasters(c)
	if err != nil {
		return err
	}
	for _, pod := range others {
		if pod == m.cfg.PodName {
			continue
		}
		if err := m.setLabel(c, pod, redisx.RoleReplica); err != nil {
			return fmt.Errorf("relabel old master %s before labelling this pod: %w", pod, err)
		}
	}
	return m.labelSelf(ctx, redisx.RoleMaster)
}

// record publishes the pass's outcome to /status and the metrics.
func (m *sentinelMode) record(o sentinelObservation, p sentinelPlan, masterOK bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.status.MasterOfRecord
	m.status.MasterOfRecord = ""
	if p.Master >= 0 && (p.Master != o.Self || masterOK) {
		m.status.MasterOfRecord = m.cfg.PodNameOf(p.Master)
	}
	m.status.Authority, m.status.LastDecision = p.Authority, p.Reason
	if prev != "" && m.status.MasterOfRecord != "" && prev != m.status.MasterOfRecord && p.Authority == authoritySentinel {
		m.deps.Metrics.Failovers.Inc()
		if m.status.MasterOfRecord == m.cfg.PodName {
			m.failoverLost, m.failoverPending = m.link.lostAt(), true
			m.link = linkWatch{}
		}
	}
	if m.failoverPending && m.label == redisx.RoleMaster {
		m.failoverPending = false
		if d, ok := failoverDuration(m.failoverLost, m.deps.Clock.Now()); ok {
			m.deps.Metrics.LastFailoverDuration.Set(d.Seconds())
			m.log.Info().Dur("duration", d).Str("previous", prev).Msg("Sentinel failover made this pod master; labelled")
		} else {
			m.log.Info().Str("previous", prev).Msg("Sentinel failover made this pod master; no pass saw the old master's link, so its duration is not measured")
		}
	}
	mt := m.deps.Metrics
	role := o.Local.Role
	switch {
	case m.fenced:
		role = "fenced"
	case role == "":
		role = "unknown"
	}
	mt.SetRole(role)
	mt.Fenced.Set(b2f(m.fenced))
	mt.MasterOfRecord.Set(b2f(m.status.MasterOfRecord == m.cfg.PodName))
	mt.LeaseHolder.Set(b2f(o.Lease.Holder == o.Self && o.Lease.Known || (p.TakeLease || p.RenewLease) && masterOK))
	// A blocked election needs a person: say so once per distinct reason,
	// not only in /status (the pods stay unready without another word).
	if p.Master < 0 && strings.HasPrefix(p.Reason, electionBlocked) {
		if m.blocked != p.Reason {
			m.blocked = p.Reason
			m.log.Warn().Str("event", "ElectionBlocked").Msg(p.Reason)
			if m.deps.Events != nil {
				m.deps.Events.Eventf(m.ref, nil, corev1.EventTypeWarning, "ElectionBlocked", "Elect", "%s", p.Reason)
			}
		}
	} else {
		m.blocked = ""
	}
	if prev != m.status.MasterOfRecord {
		m.log.Info().Str("master_of_record", m.status.MasterOfRecord).Str("previous", prev).Str("authority", p.Authority).Str("reason", p.Reason).Msg("master of record changed")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *sentinelMode) event(typ, reason, action, note string, args ...any) {
	m.log.Info().Str("event", reason).Msg(fmt.Sprintf(note, args...))
	if m.deps.Events != nil {
		m.deps.Events.Eventf(m.ref, nil, typ, reason, action, note, args...)
	}
}

// renewEvery is how often a master writes its Lease: a third of the
// duration (as the kubelet renews its node Lease) but at most half the
// renew deadline, never more often than --retry-period. Failed renewals
// are retried every pass (--retry-period), so a master has at least half
// of RenewDeadline to get one through before it fences.
func renewEvery(cfg config.Config) time.Duration {
	return max(cfg.RetryPeriod, min(cfg.LeaseDuration/3, cfg.RenewDeadline/2))
}

// renewedWithin: this agent's last successful Lease write is younger than d.
func (m *sentinelMode) renewedWithin(d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.lastRenew.IsZero() && m.deps.Clock.Since(m.lastRenew) < d
}
