package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// switchoverPoll is how often the switchover checks offsets and roles: the
// write gap is paused time, so it is polled tightly.
const switchoverPoll = 5 * time.Millisecond

// PreStop hands the master role over before the pod stops. Measured with
// redis-sentinel 7.0.15: plain SENTINEL FAILOVER loses writes acknowledged
// by replicas, and pause-then-failover leaves an ~11 s write gap because
// Sentinel demotes the old master late. So: pause writes, wait until every
// online replica has the master's offset (nothing answered OK can be lost),
// SENTINEL FAILOVER, and the moment a replica reports master, demote this
// one and drop its clients so paused writes fail with an error instead of
// being applied to a master nobody reads any more.
func (m *sentinelMode) PreStop(ctx context.Context) error {
	m.pauseMu.Lock()
	m.preStopOwnsPause = true
	m.pauseMu.Unlock()
	err := m.preStop(ctx)
	m.resumeUnlessTerminating(ctx, err)
	return err
}

func (m *sentinelMode) preStop(ctx context.Context) error {
	r, err := m.local.Replication(ctx)
	if err != nil {
		return fmt.Errorf("preStop: %w", err)
	}
	// Every pod's last position before it stops, for an election after a
	// full restart with AOF persistence. A replica's data only grows past
	// it until it stops; a master's final position is saved by stopAsMaster.
	m.saveState(r)
	if r.Role != redisx.RoleMaster {
		return nil
	}
	online := 0
	for _, rep := range r.Replicas {
		if rep.State == "online" {
			online++
		}
	}
	if online == 0 {
		m.deps.Metrics.Switchovers.WithLabelValues("skipped").Inc()
		m.event(corev1.EventTypeWarning, "SwitchoverSkipped", "Switchover", "no online replica to hand the master role to; the pod stops and Sentinel fails over when it can")
		m.stopAsMaster(ctx)
		return nil
	}
	first, restart := m.peersAtStop(ctx)
	if restart {
		m.fullRestartSkip()
		m.stopAsMaster(ctx)
		return nil
	}
	return m.switchover(ctx, online, first)
}

// peersAtStop reads the other pods when the switchover starts; restart
// says every one of them is being deleted too. first is nil when they
// cannot be read (the switchover goes ahead without the check).
func (m *sentinelMode) peersAtStop(ctx context.Context) (first map[int]peerPod, restart bool) {
	if m.peerPods == nil {
		return nil, false
	}
	c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
	pods, err := m.peerPods(c)
	cancel()
	switch {
	case err != nil:
		m.log.Warn().Err(err).Msg("cannot tell whether the other pods are being deleted too; switching over")
		return nil, false
	case allPeersStopping(pods, pods):
		return nil, true
	default:
		return pods, false
	}
}

// switchover runs the planned switchover of a master with online replicas:
// the loop keeps hands off until it returns.
func (m *sentinelMode) switchover(ctx context.Context, online int, first map[int]peerPod) (err error) {
	m.mu.Lock()
	m.switching = true
	m.mu.Unlock()
	start := m.deps.Clock.Now()
	m.event(corev1.EventTypeNormal, "SwitchoverStarted", "Switchover", "planned switchover: pausing writes, %d online replica(s)", online)
	skipped := false
	defer func() { m.endSwitchover(start, skipped, err) }()

	demoted := false
	defer func() {
		if !demoted {
			// Failed before the demotion, or a full restart found on the
			// way: the pod stops in a moment either way, so its writes stay
			// paused. A write let through now could be acknowledged after
			// the position the election compares, by a master about to
			// lose its role (measured: a WAIT-1-acknowledged write lost in
			// a full restart).
			m.stopAsMaster(ctx)
		}
	}()
	newMaster, skipped, err := m.promoteReplica(ctx, first, start)
	if err != nil || skipped {
		return err
	}
	demoted, err = m.demoteTo(ctx, newMaster, start)
	return err
}

// endSwitchover hands the roles back to the loop and records the outcome.
func (m *sentinelMode) endSwitchover(start time.Time, skipped bool, err error) {
	m.mu.Lock()
	m.switching = false
	m.mu.Unlock()
	if skipped {
		return
	}
	if err != nil {
		m.deps.Metrics.Switchovers.WithLabelValues("failed").Inc()
		m.event(corev1.EventTypeWarning, "SwitchoverFailed", "Switchover", "%v", err)
		return
	}
	d := m.deps.Clock.Since(start)
	m.deps.Metrics.Switchovers.WithLabelValues("completed").Inc()
	m.deps.Metrics.SwitchoverDuration.Observe(d.Seconds())
	m.event(corev1.EventTypeNormal, "SwitchoverCompleted", "Switchover", "new master promoted and this pod demoted in %s", d.Round(time.Millisecond))
}

// promoteReplica pauses writes, waits until the replicas have every write,
// asks for the failover and waits for the promoted replica. skipped: a
// full restart was found on the way (recorded); writes stay paused.
func (m *sentinelMode) promoteReplica(ctx context.Context, first map[int]peerPod, start time.Time) (newMaster int, skipped bool, err error) {
	if err := m.local.PauseWrites(ctx, m.cfg.SwitchoverTimeout+5*time.Second); err != nil {
		return -1, false, err
	}
	restart := m.fullRestartWatch(first)
	if _, err := m.waitReplicasCaughtUp(ctx, restart); errors.Is(err, errFullRestart) {
		m.fullRestartSkip()
		return -1, true, nil
	} else if err != nil {
		return -1, false, err
	}
	caughtUp := m.deps.Clock.Since(start)
	if err := m.failover(ctx); err != nil && !errors.Is(err, errMasterMovedOn) {
		return -1, false, fmt.Errorf("preStop: %w", err)
	}
	failoverSent := m.deps.Clock.Since(start)
	newMaster, err = m.waitNewMaster(ctx, restart)
	if errors.Is(err, errFullRestart) {
		// The failover may still happen; this pod keeps its writes paused
		// and the election after the restart follows whichever history is
		// the freshest.
		m.fullRestartSkip()
		return -1, true, nil
	} else if err != nil {
		return -1, false, err
	}
	m.log.Info().Dur("caught_up", caughtUp).Dur("failover_sent", failoverSent).Dur("promoted", m.deps.Clock.Since(start)).Msg("switchover: replica promoted")
	return newMaster, false, nil
}

// demoteTo makes this pod a replica of the promoted one, fails its paused
// writers, hands the label and the Lease over and waits for the Sentinels
// to agree. demoted is true once REPLICAOF succeeded.
func (m *sentinelMode) demoteTo(ctx context.Context, newMaster int, start time.Time) (demoted bool, err error) {
	host, port := announcedAddr(ctx, m.cfg, m.peerSet(), newMaster, m.log)
	if err := m.local.ReplicaOf(ctx, host, port); err != nil {
		return false, err
	}
	// Paused writers are still connected to us: kill them so their writes
	// fail (and they reconnect to the new master) instead of being
	// refused later with READONLY after a long wait.
	if err := m.local.KillNormalClients(ctx); err != nil {
		m.log.Warn().Err(err).Msg("dropping clients after the demotion failed")
	}
	if err := m.local.Unpause(ctx); err != nil {
		m.log.Warn().Err(err).Msg("unpause after the demotion failed; the pause ends by itself")
	}
	m.log.Info().Str("new_master", host).Dur("paused", m.deps.Clock.Since(start)).Msg("switchover: demoted; new master promoted")
	m.mu.Lock()
	m.fenced = false
	m.mu.Unlock()
	if err := m.labelSelf(ctx, redisx.RoleReplica); err != nil {
		m.log.Warn().Err(err).Msg("dropping the master label failed; the new master relabels this pod")
	}
	if err := m.lease.HandOver(ctx, m.cfg.PodNameOf(newMaster), m.cfg.LeaseDuration); err != nil {
		m.log.Warn().Err(err).Msg("handing the Lease over failed; the new master takes it over on the Sentinels' word")
	}
	// Writes already flow to the new master; the pod stops only once the
	// Sentinels agree on it, so no Sentinel restarts the failover.
	m.waitSentinelMajority(ctx, newMaster)
	return true, nil
}

// errFullRestart: every other pod turned out to be deleted too while a
// switchover waited for them.
var errFullRestart = errors.New("every other pod is being deleted too")

// fullRestartSkip records a switchover skipped because every other pod is
// being deleted too.
func (m *sentinelMode) fullRestartSkip() {
	m.deps.Metrics.Switchovers.WithLabelValues("skipped").Inc()
	m.event(corev1.EventTypeNormal, "SwitchoverSkipped", "Switchover", "every other pod is being deleted too (a full restart): no replica to hand the master role to; writes stay paused and the freshest pod is elected when they return")
}

// stopAsMaster pauses writes for the rest of this pod's life and saves the
// replication position they stopped at, for a master that stops without
// handing its role over. The election after a full restart compares saved
// positions: a master that kept acknowledging writes after its last save
// could lose to a replica whose last save came later but holds less data,
// and the writes past it would be dropped by the resync (measured on the
// e2e cluster: 1-3 WAIT-1-acknowledged writes lost in a delete-all-pods). The
// pod stops right after preStop, so the pause costs only a few paused
// writes that fail when redis-server exits.
func (m *sentinelMode) stopAsMaster(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.local.PauseWrites(ctx, m.cfg.SwitchoverTimeout+5*time.Second); err != nil {
		m.log.Warn().Err(err).Msg("pausing writes before the pod stops failed; writes after the saved position may be lost in a full restart")
	}
	r, err := m.local.Replication(ctx)
	if err != nil {
		m.log.Warn().Err(err).Msg("reading the final replication position failed; the last saved one stands")
		m.saveFinalState(redisx.ReplInfo{})
		return
	}
	m.saveFinalState(r)
	m.log.Info().Str("role", r.Role).Str("replid", r.ReplID).Int64("offset", r.Offset).Msg("writes paused until the pod stops; final replication position saved")
}

// fullRestartWatch returns a check, for the switchover's waits, of whether
// every other pod has been deleted since first was read: DeleteCollection
// deletes pods one after another, so this pod's preStop may look before
// the others are deleted. It reads the API server at most once a second,
// and not in the first second (a switchover takes less); false when it
// cannot tell.
func (m *sentinelMode) fullRestartWatch(first map[int]peerPod) func(context.Context) bool {
	if m.peerPods == nil || first == nil {
		return func(context.Context) bool { return false }
	}
	last := m.deps.Clock.Now()
	return func(ctx context.Context) bool {
		if m.deps.Clock.Since(last) < time.Second {
			return false
		}
		last = m.deps.Clock.Now()
		c, cancel := context.WithTimeout(ctx, time.Second)
		now, err := m.peerPods(c)
		cancel()
		return err == nil && allPeersStopping(first, now)
	}
}

// waitSentinelMajority waits, at most 10s, until a majority of Sentinels
// name master.
func (m *sentinelMode) waitSentinelMajority(ctx context.Context, master int) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		peers, sentinels := m.peerSet(), m.sentinelNodes()
		views := make([]sentinelView, len(sentinels))
		for i := range sentinels {
			views[i], _ = querySentinel(ctx, sentinels[i], m.cfg.MasterName, peers)
		}
		if got, ok := sentinelMajority(views, len(sentinels)); ok && got == master {
			return
		}
		select {
		case <-ctx.Done():
			m.log.Warn().Int("new_master", master).Msg("switchover: the Sentinels did not agree on the new master within 10s; stopping anyway")
			return
		case <-m.deps.Clock.After(100 * time.Millisecond):
		}
	}
}

// waitReplicasCaughtUp waits until every online replica has processed the
// master's offset; with writes paused the offset stands still. It asks the
// replicas themselves: the master's slaveN offset is only their last
// REPLCONF ACK, sent once a second, which would add up to a second of
// paused writes. It returns the ordinals of the caught-up replicas.
func (m *sentinelMode) waitReplicasCaughtUp(ctx context.Context, restart func(context.Context) bool) (map[int]bool, error) {
	r, err := m.local.Replication(ctx)
	if err != nil {
		return nil, err
	}
	nodes := map[int]redisNode{}
	for _, rep := range r.Replicas {
		if i := m.peerSet().ordinalOf(rep.Host, rep.Port); i >= 0 && rep.State == "online" {
			nodes[i] = m.peers.Redis(m.peers.Addr(i))
		}
	}
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	if len(nodes) == 0 {
		return nil, fmt.Errorf("preStop: no online replica of ours among %+v", r.Replicas)
	}
	for {
		caught := map[int]bool{}
		var state []string
		for i, n := range nodes {
			c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
			rr, err := n.Replication(c)
			cancel()
			if err == nil && rr.Role == redisx.RoleReplica && rr.ReplID == r.ReplID && rr.Offset >= r.Offset {
				caught[i] = true
			}
			state = append(state, fmt.Sprintf("pod %d: role %s replid %s offset %d err %v", i, rr.Role, rr.ReplID, rr.Offset, err))
		}
		if len(caught) == len(nodes) {
			return caught, nil
		}
		if restart(ctx) {
			return nil, errFullRestart
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("preStop: replicas did not reach the master's replid %s offset %d within --switchover-timeout (%s): %w", r.ReplID, r.Offset, strings.Join(state, "; "), ctx.Err())
		case <-m.deps.Clock.After(switchoverPoll):
		}
	}
}

// failover asks the peers' Sentinels, then the local one, to fail over now:
// a definite refusal (NOGOODSLAVE from a Sentinel that knows no replica yet,
// which it learns from INFO every 10s) or an unreachable Sentinel moves on
// to the next; INPROG, or no answer at all, counts as started.
func (m *sentinelMode) failover(ctx context.Context) error {
	// A peer's Sentinel first: the one asked leads the failover, and this
	// pod's Sentinel stops with the pod right after preStop — a leader
	// killed before +switch-master leaves the others to start a second
	// failover of their own (measured on the e2e cluster).
	var order []int
	for i := range m.sentinelNodes() {
		if i != m.peers.Self {
			order = append(order, i)
		}
	}
	order = append(order, m.peers.Self)
	var last error
	moved := false
	for _, i := range order {
		last = m.failoverOn(ctx, i)
		var refused redis.Error
		switch {
		case last == nil, last != nil && strings.Contains(last.Error(), "INPROG"):
			return nil
		case errors.Is(last, errMasterMovedOn):
			moved = true
			continue // not asked: that Sentinel follows another master
		case errors.As(last, &refused), isDialError(last):
			continue // a definite no: another Sentinel may do it
		default:
			// A timeout: the Sentinel may have started the failover.
			// Asking another now could start a second one with a newer
			// epoch and promote a second replica; wait for the promotion.
			m.log.Warn().Err(last).Msg("switchover: SENTINEL FAILOVER got no answer; waiting for a promotion instead of asking another Sentinel")
			return nil
		}
	}
	if moved {
		return errMasterMovedOn
	}
	return fmt.Errorf("no Sentinel started the failover: %w", last)
}

// errMasterMovedOn: a Sentinel asked to fail over this pod already names
// another master, so it was not asked (failoverOn).
var errMasterMovedOn = errors.New("the Sentinels already name another master")

// failoverIfOurs sends SENTINEL FAILOVER to s only while s still names
// this pod master. The command fails over whatever master that Sentinel
// monitors at the time: sent to one that has already switched to another
// pod, it moves the role off a healthy new master to any replica, and the
// writes the new master took are gone. Seen on real nodes (fault matrix,
// sentinel sigkill-master): the killed master's container restarted while
// Sentinel promoted a replica; its agent, reading a majority that still
// named it, asked a peer Sentinel that had switched 50 ms earlier, which
// promoted the restarted pod and dropped 58 WAIT 1-acknowledged writes.
// What remains is the round trip between the two commands.
func (m *sentinelMode) failoverIfOurs(ctx context.Context, s sentinelNode) error {
	v, err := querySentinel(ctx, s, m.cfg.MasterName, m.peerSet())
	if err != nil {
		return err
	}
	if !v.named || v.Master != m.peers.Self {
		return fmt.Errorf("%w (pod %d; -1: none of ours)", errMasterMovedOn, v.Master)
	}
	c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
	defer cancel()
	return s.Failover(c, m.cfg.MasterName)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (m *sentinelMode) failoverOn(ctx context.Context, i int) error {
	s := m.sentinelNodes()[i]
	err := m.failoverIfOurs(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "NOGOODSLAVE") {
		return err
	}
	m.log.Info().Int("sentinel", i).Msg("switchover: Sentinel knows no replica yet; SENTINEL RESET to rediscover them from the master")
	c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
	err = s.Reset(c, m.cfg.MasterName)
	cancel()
	if err != nil {
		return err
	}
	deadline := m.deps.Clock.Now().Add(5 * time.Second)
	for {
		err = m.failoverIfOurs(ctx, s)
		if err == nil || errors.Is(err, errMasterMovedOn) || m.deps.Clock.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.deps.Clock.After(100 * time.Millisecond):
		}
	}
}

// waitNewMaster polls the other pods directly: one reports master as soon
// as Sentinel's REPLICAOF NO ONE ran, well before the Sentinels announce it.
func (m *sentinelMode) waitNewMaster(ctx context.Context, restart func(context.Context) bool) (int, error) {
	// Every other pod, not only the replicas that were waited for: Sentinel
	// picks by its own rules, and any replica that is online caught up.
	nodes := map[int]redisNode{}
	for i := 0; i < m.podCount(); i++ {
		if i != m.peers.Self {
			nodes[i] = m.peers.Redis(m.peers.Addr(i))
		}
	}
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	for {
		for i, n := range nodes {
			c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
			r, err := n.Replication(c)
			cancel()
			if err == nil && r.Role == redisx.RoleMaster {
				return i, nil
			}
		}
		if restart(ctx) {
			return -1, errFullRestart
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("preStop: no replica was promoted within --switchover-timeout: %w", ctx.Err())
		case <-m.deps.Clock.After(switchoverPoll):
		}
	}
}

// resumeUnlessTerminating undoes what a preStop left for the rest of the
// pod's life — writes paused, the loop keeping hands off — when the pod
// turns out not to be terminating after all: nothing else would ever clear
// it, and the master would stay paused and off duty until the agent
// restarts. The loop then follows whatever Sentinel did meanwhile (a
// failover that went ahead demotes this pod). A pod that is being deleted,
// or that cannot be read, stays as preStop left it.
func (m *sentinelMode) resumeUnlessTerminating(ctx context.Context, preStopErr error) {
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	if (!stopping && preStopErr == nil) || m.terminating == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sidecar.SelfPodReadTimeout+5*time.Second)
	defer cancel()
	ok, reason, err := m.terminating(ctx)
	switch {
	case err != nil:
		m.log.Warn().Err(err).Msg("preStop did not hand over and whether this pod is being deleted is unknown; staying stopped")
		return
	case ok:
		return
	}
	if err := m.local.Unpause(ctx); err != nil {
		m.log.Warn().Err(err).Msg("unpausing writes after an undone preStop failed; the pause ends by itself")
	}
	m.pauseMu.Lock()
	m.preStopOwnsPause = false
	m.pauseMu.Unlock()
	m.stateMu.Lock()
	m.mu.Lock()
	m.stopping = false
	m.mu.Unlock()
	m.stateMu.Unlock()
	what := "paused writes for the rest of the pod's life"
	if preStopErr != nil {
		what = "failed: " + preStopErr.Error()
	}
	m.log.Warn().Str("reason", reason).Str("prestop", what).Msg("preStop undone: this pod is not being deleted; writes unpaused, back on duty")
	m.event(corev1.EventTypeWarning, "PreStopUndone", "PreStop", "preStop %s, but %s: writes unpaused, the agent back on duty", what, reason)
}
