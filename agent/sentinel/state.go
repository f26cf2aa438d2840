package sentinel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// replState is the replication position the agent last saw, kept on the
// data volume. redis-server 7.0 restores its replid and offset from an RDB
// file at start, but not from an AOF (measured: a replica restarted with
// appendonly yes reports a new replid and offset 0). Without this file a
// cold-start election over AOF data could not tell the freshest pod.
type replState struct {
	ReplID       string    `json:"replid"`
	ReplID2      string    `json:"replid2,omitempty"`
	Offset       int64     `json:"offset"`
	SecondOffset int64     `json:"second_offset"`
	Role         string    `json:"role"`
	SavedAt      time.Time `json:"saved_at"`
}

func (m *sentinelMode) statePath() string {
	return filepath.Join(filepath.Dir(m.cfg.RedisConfInclude), "redis-ha-state.json")
}

// saveState records a live position: never a fenced boot's (replica of
// itself), whose replid may be a fresh random one, and nothing after the
// final position of a stopping master (saveFinalState).
func (m *sentinelMode) saveState(r redisx.ReplInfo) {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	if !stopping {
		m.writeState(r)
	}
}

// saveFinalState records the position at which preStop paused a stopping
// master's writes, and keeps every later pass from overwriting it with a
// position read before the pause.
func (m *sentinelMode) saveFinalState(r redisx.ReplInfo) {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	m.writeState(r)
}

func (m *sentinelMode) writeState(r redisx.ReplInfo) {
	if r.Role == "" || r.ReplID == "" || (r.Role == redisx.RoleReplica && m.peerSet().ordinalOf(r.MasterHost, r.MasterPort) == m.peers.Self) {
		return
	}
	m.mu.Lock()
	same := m.saved.ReplID == r.ReplID && m.saved.Offset == r.Offset && m.saved.Role == r.Role
	m.mu.Unlock()
	if same {
		return
	}
	st := replState{ReplID: r.ReplID, ReplID2: r.ReplID2, Offset: r.Offset, SecondOffset: r.SecondOffset, Role: r.Role, SavedAt: m.deps.Clock.Now()}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	if _, err := atomicfile.Write(m.statePath(), b, 0o600); err != nil {
		m.log.Warn().Err(err).Msg("saving the replication position failed; an election after a full restart may not know this pod's data")
		return
	}
	m.mu.Lock()
	m.saved = st
	m.mu.Unlock()
}

func loadState(path string) (replState, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return replState{}, false
	}
	var st replState
	if json.Unmarshal(b, &st) != nil || st.ReplID == "" {
		return replState{}, false
	}
	return st, true
}

// reportedState is what redis-server's INFO replication says, as an
// election reads it.
func reportedState(r redisx.ReplInfo) nodeState {
	return nodeState{Reported: true, Role: r.Role, ReplID: r.ReplID, ReplID2: r.ReplID2, Offset: r.Offset, SecondOffset: r.SecondOffset}
}

// effective is the state this pod reports for elections: Redis's own, or
// during a fenced boot the saved position when Redis lost it (AOF) or has
// an older one — but never a position the data files do not hold:
//   - RDB only (appendonly no) and Redis restored the same replid from the
//     dump: the dump holds exactly the offset Redis reports. The file may be
//     newer (the pod was killed minutes after its last save), and claiming
//     its offset would let stale data win the election.
//   - Redis loaded no data at all (no key, no position restored: the data
//     directory was wiped or moved aside while the file stayed): the file
//     describes data this pod no longer has. The pod reports what it holds,
//     nothing, and loses to any pod with data. (A dataset emptied on
//     purpose, FLUSHALL, is treated the same: the others' keys win.)
//
// With AOF (the bases' setting) Redis 7.0 restores no replid, so the file
// stands: it is rewritten every pass, and the AOF holds the writes up to
// the last second (appendfsync everysec).
func (m *sentinelMode) effective(r redisx.ReplInfo) nodeState {
	n := reportedState(r)
	if r.Role != redisx.RoleReplica || m.peerSet().ordinalOf(r.MasterHost, r.MasterPort) != m.peers.Self {
		return n
	}
	st, ok := loadState(m.statePath())
	if !ok {
		return n
	}
	restored := r.ReplID == st.ReplID
	switch {
	case r.DataKnown && !r.AOF && restored:
		if n.ReplID2 == "" && st.ReplID2 != "" {
			n.ReplID2, n.SecondOffset = st.ReplID2, st.SecondOffset
		}
		return n
	case r.DataKnown && r.Keys == 0 && r.Offset == 0 && !restored:
		return n
	}
	// The file is rewritten every pass while redis-server lives, so it is
	// nearly always newer than the AOF the server loaded: with the same
	// history the higher offset counts, with another one the file.
	if !restored || st.Offset > r.Offset {
		n.ReplID, n.ReplID2, n.Offset, n.SecondOffset = st.ReplID, st.ReplID2, st.Offset, st.SecondOffset
	} else if n.ReplID2 == "" && st.ReplID2 != "" {
		// The same history: Redis keeps replid2 in memory only, so after
		// a restart the link to the history this one was promoted from is
		// in the file alone.
		n.ReplID2, n.SecondOffset = st.ReplID2, st.SecondOffset
	}
	return n
}
