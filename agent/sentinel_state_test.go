package agent

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestSentinelEffectiveState(t *testing.T) {
	dir := t.TempDir()
	envAddr := func(i int) string { return fmt.Sprintf("127.0.30.%d", 10+i) }
	m := &sentinelMode{
		cfg:   Config{RedisConfInclude: filepath.Join(dir, "redis-ha.conf")},
		peers: sentinelPeers{Pods: 3, Self: 1, Addr: envAddr},
		deps:  Deps{Clock: clocktesting.NewFakeClock(t0)},
		log:   zerolog.Nop(),
	}
	// A live replica's position is saved...
	m.saveState(replInfo{Role: roleReplica, MasterHost: envAddr(0), ReplID: "aaa", Offset: 500})
	// ...a fenced boot's is not (its replid may be a fresh random one).
	m.saveState(replInfo{Role: roleReplica, MasterHost: envAddr(1), ReplID: "rnd", Offset: 0})
	cases := map[string]struct {
		reason string
		r      replInfo
		want   nodeState
	}{
		"AOFFencedBoot": {
			reason: "restarted with AOF: redis-server reports a new replid and offset 0; the saved position counts",
			r:      replInfo{Role: roleReplica, MasterHost: envAddr(1), ReplID: "rnd", Offset: 0},
			want:   nodeState{Reported: true, Role: roleReplica, ReplID: "aaa", Offset: 500},
		},
		"RDBFencedBootNewer": {
			reason: "restarted from an RDB written after the last save: redis-server's own position is newer",
			r:      replInfo{Role: roleReplica, MasterHost: envAddr(1), ReplID: "aaa", Offset: 700},
			want:   nodeState{Reported: true, Role: roleReplica, ReplID: "aaa", Offset: 700},
		},
		"RDBFencedBootOlder": {
			reason: "an RDB older than the last saved position (kept replicating after the last SAVE): the saved one counts",
			r:      replInfo{Role: roleReplica, MasterHost: envAddr(1), ReplID: "aaa", Offset: 300},
			want:   nodeState{Reported: true, Role: roleReplica, ReplID: "aaa", Offset: 500},
		},
		"LiveReplica": {
			reason: "a replica of another pod reports what redis-server says",
			r:      replInfo{Role: roleReplica, MasterHost: envAddr(0), ReplID: "bbb", Offset: 10},
			want:   nodeState{Reported: true, Role: roleReplica, ReplID: "bbb", Offset: 10},
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
