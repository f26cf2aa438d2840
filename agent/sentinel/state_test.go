package sentinel

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

func TestSentinelEffectiveState(t *testing.T) {
	dir := t.TempDir()
	envAddr := func(i int) string { return fmt.Sprintf("127.0.30.%d", 10+i) }
	m := &sentinelMode{
		cfg:   config.Config{RedisConfInclude: filepath.Join(dir, "redis-ha.conf")},
		peers: sentinelPeers{Pods: 3, Self: 1, Addr: envAddr},
		deps:  sidecar.Deps{Clock: clocktesting.NewFakeClock(t0)},
		log:   zerolog.Nop(),
	}
	// A live replica's position is saved...
	m.saveState(redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(0), ReplID: "aaa", Offset: 500})
	// ...a fenced boot's is not (its replid may be a fresh random one).
	m.saveState(redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "rnd", Offset: 0})
	cases := map[string]struct {
		reason string
		r      redisx.ReplInfo
		want   nodeState
	}{
		"AOFFencedBoot": {
			reason: "restarted with AOF: redis-server reports a new replid and offset 0; the saved position counts",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "rnd", Offset: 0},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "aaa", Offset: 500},
		},
		"RDBFencedBootNewer": {
			reason: "restarted from an RDB written after the last save: redis-server's own position is newer",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "aaa", Offset: 700},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "aaa", Offset: 700},
		},
		"RDBFencedBootOlder": {
			reason: "a reply without INFO persistence: an RDB older than the last saved position (kept replicating after the last SAVE) cannot be told from an AOF's base, and the saved position counts as before",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "aaa", Offset: 300},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "aaa", Offset: 500},
		},
		"RDBOnlyStaleDump": {
			reason: "RDB only: killed minutes after its last save, the dump holds offset 300 although the file says 500; the data counts, or stale data could win",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "aaa", Offset: 300, DataKnown: true, Keys: 10},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "aaa", Offset: 300},
		},
		"AOFRestoredOlderPosition": {
			reason: "AOF: an engine that restores the replid from the AOF's RDB base reports the base's offset, older than the writes the AOF holds after it; the file counts",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "aaa", Offset: 300, DataKnown: true, AOF: true, Keys: 10},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "aaa", Offset: 500},
		},
		"AOFFencedBootWithData": {
			reason: "AOF, data loaded (50 keys), no position restored: the saved position counts",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "rnd", Offset: 0, DataKnown: true, AOF: true, Keys: 50},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "aaa", Offset: 500},
		},
		"DataMovedAside": {
			reason: "the data directory was moved aside but the file stayed: no key and no position loaded, so the pod claims nothing",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(1), ReplID: "rnd", Offset: 0, DataKnown: true, AOF: true},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "rnd", Offset: 0},
		},
		"LiveReplica": {
			reason: "a replica of another pod reports what redis-server says",
			r:      redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: envAddr(0), ReplID: "bbb", Offset: 10},
			want:   nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "bbb", Offset: 10},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, m.effective(tc.r)); diff != "" {
				t.Errorf("%s\neffective(): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestSentinelBlockedElectionEvent: a blocked election is a Warning Event
// once per distinct reason, and again after it was unblocked in between.
func TestSentinelBlockedElectionEvent(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	m := &sentinelMode{
		cfg:   config.Config{Identity: config.Identity{PodName: "redis-1"}},
		peers: sentinelPeers{Pods: 3, Self: 1},
		deps:  sidecar.Deps{Clock: clocktesting.NewFakeClock(t0), Events: rec, Metrics: metrics.New("test", config.ModeSentinel)},
		log:   zerolog.Nop(),
	}
	o := obs3(1, redisx.RoleReplica)
	o.LocalMaster = 1 // fenced boot
	o.Lease = leaseView{Known: true, Holder: -1}
	diverged := []nodeState{
		{Reported: true, Role: redisx.RoleReplica, ReplID: "a", Offset: 10},
		{Reported: true, Role: redisx.RoleReplica, ReplID: "b", Offset: 30},
		{Reported: true, Role: redisx.RoleReplica, ReplID: "a", Offset: 50},
	}
	o.Peers, o.Local = diverged, diverged[1]
	blocked := decideSentinel(o)
	if !strings.HasPrefix(blocked.Reason, electionBlocked) {
		t.Fatalf("diverged peers: plan %s; want a blocked election", blocked)
	}
	o.Peers = []nodeState{diverged[0], {Reported: true, Role: redisx.RoleReplica, ReplID: "a", Offset: 30}, diverged[2]}
	waiting := decideSentinel(o)
	if strings.HasPrefix(waiting.Reason, electionBlocked) {
		t.Fatalf("one history: plan %s; want no blocked election", waiting)
	}
	for _, p := range []sentinelPlan{blocked, blocked, blocked, waiting, blocked} {
		m.record(o, p, false)
	}
	var got []string
	for len(rec.Events) > 0 {
		got = append(got, <-rec.Events)
	}
	want := "Warning ElectionBlocked " + blocked.Reason
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Errorf("events %q; want twice %q", got, want)
	}
}

// TestSentinelEffectiveStateKeepsHistoryLink: Redis keeps replid2 in memory
// only, so a pod promoted by a failover and restarted reports its replid
// and offset from the RDB without the link to the history it was promoted
// from; the saved file supplies it (without it, a full restart after a
// failover blocked the election for good in CI on real nodes).
func TestSentinelEffectiveStateKeepsHistoryLink(t *testing.T) {
	dir := t.TempDir()
	addr := func(i int) string { return fmt.Sprintf("127.0.31.%d", 10+i) }
	m := &sentinelMode{
		cfg:   config.Config{RedisConfInclude: filepath.Join(dir, "redis-ha.conf")},
		peers: sentinelPeers{Pods: 3, Self: 2, Addr: addr},
		deps:  sidecar.Deps{Clock: clocktesting.NewFakeClock(t0)},
		log:   zerolog.Nop(),
	}
	m.saveState(redisx.ReplInfo{Role: redisx.RoleMaster, ReplID: "new", ReplID2: "old", SecondOffset: 27914, Offset: 47877})
	got := m.effective(redisx.ReplInfo{Role: redisx.RoleReplica, MasterHost: addr(2), ReplID: "new", Offset: 47877, SecondOffset: -1})
	want := nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: "new", ReplID2: "old", Offset: 47877, SecondOffset: 27914}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("effective() after a restart of the promoted pod: -want, +got:\n%s", diff)
	}
}
