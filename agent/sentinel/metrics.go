package sentinel

import (
	"context"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// lagUnknown is the replication lag gauge's value while it cannot be
// measured (master link down, master not answering).
const lagUnknown = -1

// replicationLag is the master's master_repl_offset, read right after the
// replica's own, minus the replica's. The master is read second, so writes
// during that round trip count as lag; a negative difference (the master's
// offset restarted, or a different history) is not lag and reads 0.
func replicationLag(masterOffset, replicaOffset int64) int64 {
	return max(masterOffset-replicaOffset, 0)
}

// measureLag reads the offset of the master the local replica streams from.
// A replica's own INFO carries no master offset (its master_repl_offset is
// its own), so this is one INFO call to the master per pass. ok is false
// when the lag cannot be known: not a replica of one of our pods, link down,
// or the master does not answer.
func (m *sentinelMode) measureLag(ctx context.Context, r redisx.ReplInfo) (int64, bool) {
	if r.Role != redisx.RoleReplica || !r.LinkUp {
		return 0, false
	}
	i := m.peerSet().ordinalOf(r.MasterHost, r.MasterPort)
	if i < 0 || i == m.peers.Self {
		return 0, false
	}
	c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
	defer cancel()
	n := m.peers.Redis(m.peers.Addr(i))
	defer n.Close()
	mr, err := n.Replication(c)
	if err != nil || mr.Role != redisx.RoleMaster {
		return 0, false
	}
	return replicationLag(mr.Offset, r.Offset), true
}

// linkWatch times the loss of a replica's master, for the failover duration.
// LastUp is the last pass that saw the link to the master up, FirstDown the
// first pass after it that saw the link down.
type linkWatch struct {
	LastUp, FirstDown time.Time
}

// observe records one pass's view of the local replica's master link;
// downFor is how long Redis says the link has been down (0 unknown), which
// dates the loss more precisely than the pass that first saw it.
func (w *linkWatch) observe(now time.Time, linkUp bool, downFor time.Duration) {
	if linkUp {
		w.LastUp, w.FirstDown = now, time.Time{}
		return
	}
	if w.FirstDown.IsZero() {
		w.FirstDown = now.Add(-downFor)
		if w.FirstDown.Before(w.LastUp) {
			w.FirstDown = w.LastUp // whole seconds: never before a pass that saw it up
		}
	}
}

// lostAt is when the old master is taken to have been lost: the first pass
// that saw the link down, else (no pass ran between the loss and the
// promotion) the last pass that saw it up; zero when neither was seen.
func (w linkWatch) lostAt() time.Time {
	if !w.FirstDown.IsZero() {
		return w.FirstDown
	}
	return w.LastUp
}

// failoverDuration is the value of the last failover duration gauge: from
// the loss of the old master to this pod carrying the master label. ok is
// false when no loss time is known or the clock went backwards.
func failoverDuration(lost, labelled time.Time) (time.Duration, bool) {
	if lost.IsZero() || labelled.Before(lost) {
		return 0, false
	}
	return labelled.Sub(lost), true
}
