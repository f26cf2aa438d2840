package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// manualFailoverRetry is how long a CLUSTER FAILOVER gets before it is sent
// again; Redis aborts a manual failover that has not completed in 5 s.
const manualFailoverRetry = 6 * time.Second

// PreStop on a master with slots hands them to its best replica with a
// coordinated CLUSTER FAILOVER (the master pauses its clients until the
// replica has its offset, so no acknowledged write is lost) and returns once
// the replica is master and this node its replica. A replica, or a master
// with no replica that can take over, returns at once.
func (m *clusterMode) PreStop(ctx context.Context) error {
	start := m.env.Clock.Now()
	local := m.local()
	view, err := local.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("preStop: CLUSTER NODES on this node: %w", err)
	}
	me, _ := myself(view)
	if !me.isMaster() || len(me.Slots) == 0 {
		m.log.Info().Msg("preStop: not a master with slots; nothing to hand over")
		m.countSwitchover("skipped", 0)
		return nil
	}
	// Read now, not from the pass loop's cache: a scale-in deletes this pod
	// right after spec.replicas drops, and a stale count would take the
	// failover path and leave the slots on a pod that is gone for good.
	expected, err := m.env.Topology.ExpectedNow(ctx)
	if err != nil {
		m.log.Warn().Err(err).Msg("preStop: spec.replicas unknown; treating this stop as a restart")
	} else if m.cfg.Ordinal() >= expected {
		return m.drain(ctx, expected)
	}
	repl, err := local.Replication(ctx)
	if err != nil {
		return fmt.Errorf("preStop: INFO replication: %w", err)
	}
	best, err := bestReplica(view, repl)
	if err != nil {
		m.log.Warn().Err(err).Msg("preStop: no replica to hand the slots to; they are unavailable until this pod is back")
		m.env.Event("Warning", "FailoverSkipped", "preStop: "+err.Error())
		m.countSwitchover("skipped", 0)
		return nil
	}
	if o, ok := m.ordinalOf(best.Hostname); ok && m.env.PodTerminating != nil {
		dying, err := m.env.PodTerminating(ctx, o)
		if err != nil {
			m.log.Warn().Err(err).Int("replica", o).Msg("preStop: cannot tell whether the best replica's pod is being deleted too (needs RBAC get on pods); failing over to it")
		}
		if err == nil && dying {
			// A full restart or a namespace deletion: handing the slots to a
			// replica that stops too only adds a second failover.
			m.log.Info().Int("replica", o).Msg("preStop: the best replica's pod is being deleted too; not failing over to it")
			m.countSwitchover("skipped", 0)
			return nil
		}
	}
	m.conns.name(best.IP, best.Hostname)
	target := m.dial(best.IP, best.Port)
	note := fmt.Sprintf("preStop: CLUSTER FAILOVER to replica %s (%s) for slots %s", best.ID, best.addr(), rangesString(me.Slots))
	m.log.Info().Str("replica", best.ID).Str("addr", best.addr()).Msg(note)
	m.env.Event("Normal", "FailoverStarted", note)
	var sent time.Time
	for {
		if sent.IsZero() || m.env.Clock.Since(sent) > manualFailoverRetry {
			if err := target.Failover(ctx); err != nil {
				m.countSwitchover("failed", 0)
				return fmt.Errorf("preStop: CLUSTER FAILOVER on replica %s: %w", best.addr(), err)
			}
			sent = m.env.Clock.Now()
		}
		if done, _ := m.failoverDone(ctx, target, local); done {
			took := m.env.Clock.Since(start)
			m.env.Event("Normal", "FailoverCompleted", fmt.Sprintf("preStop: replica %s (%s) is master of slots %s; took %s", best.ID, best.addr(), rangesString(me.Slots), took.Round(time.Millisecond)))
			m.log.Info().Dur("took", took).Msg("preStop: failover completed")
			m.countSwitchover("completed", took)
			return nil
		}
		select {
		case <-ctx.Done():
			m.countSwitchover("failed", 0)
			m.env.Event("Warning", "FailoverTimedOut", note+": not completed before the switchover timeout")
			return fmt.Errorf("preStop: failover to %s not completed in time: %w", best.addr(), ctx.Err())
		case <-m.env.Clock.After(20 * time.Millisecond):
		}
	}
}

// failoverDone: the replica calls itself master and this node calls itself
// a replica.
func (m *clusterMode) failoverDone(ctx context.Context, target, local clusterNodeAPI) (bool, error) {
	tv, err := target.Nodes(ctx)
	if err != nil {
		return false, err
	}
	if t, _ := myself(tv); !t.isMaster() {
		return false, nil
	}
	lv, err := local.Nodes(ctx)
	if err != nil {
		return false, err
	}
	l, _ := myself(lv)
	return l.isReplica(), nil
}

func (m *clusterMode) countSwitchover(result string, took time.Duration) {
	if m.env.Metrics == nil {
		return
	}
	m.env.Metrics.Switchovers.WithLabelValues(result).Inc()
	if result == "completed" {
		m.env.Metrics.SwitchoverDuration.Observe(took.Seconds())
	}
}

// drain moves every slot of this master to the masters that stay: the pod
// is going away for good (spec.replicas dropped below its ordinal), and a
// failover would leave the slots on its replica, which goes away too.
func (m *clusterMode) drain(ctx context.Context, expected int) error {
	start := m.env.Clock.Now()
	st, err := m.observe(ctx, expected, m.cfg.Ordinal())
	if err != nil {
		return fmt.Errorf("preStop drain: %w", err)
	}
	moves, err := planDrain(st, m.cfg.Ordinal())
	if err != nil {
		m.env.Event("Warning", "DrainFailed", "preStop: scale-in: "+err.Error())
		return fmt.Errorf("preStop drain: %w", err)
	}
	note := fmt.Sprintf("preStop: scale-in to %d pods removes this master: moving its %d slots and their keys to the masters that stay", expected, len(moves))
	m.log.Info().Msg(note)
	m.env.Event("Normal", "DrainStarted", note)
	total := len(moves)
	failed := func(err error) error {
		m.env.Event("Warning", "DrainFailed", fmt.Sprintf("preStop: %v", err))
		m.countSwitchover("failed", 0)
		return fmt.Errorf("preStop drain: %w", err)
	}
	for len(moves) > 0 {
		err := m.moveSlots(ctx, st, moves)
		var waiting waitingError
		if err == nil {
			break
		}
		if !errors.As(err, &waiting) || ctx.Err() != nil {
			return failed(err)
		}
		// Gossip has not settled yet: look again and plan what is left.
		m.log.Info().Str("reason", waiting.reason).Msg("preStop drain waiting")
		select {
		case <-ctx.Done():
			return failed(fmt.Errorf("%w; gave up: %w", err, ctx.Err()))
		case <-m.env.Clock.After(250 * time.Millisecond):
		}
		if st, err = m.observe(ctx, expected, m.cfg.Ordinal()); err != nil {
			return failed(err)
		}
		if moves, err = planDrain(st, m.cfg.Ordinal()); err != nil {
			return failed(err)
		}
	}
	took := m.env.Clock.Since(start)
	m.env.Event("Normal", "DrainCompleted", fmt.Sprintf("preStop: %d slots moved in %s", total, took.Round(time.Millisecond)))
	m.countSwitchover("completed", took)
	return nil
}
