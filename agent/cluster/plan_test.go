package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fnode describes one pod of a fake cluster; views builds every pod's
// CLUSTER NODES from the same table, so the views agree like a settled
// cluster's.
type fnode struct {
	ord    int
	k8s    string
	slots  []slotRange
	master int // ordinal of its master, -1 for none
	keys   int64
	down   bool
	flags  string // extra flags every view shows, e.g. "fail"
	mig    map[int]int
	imp    map[int]int
	id     string // overrides the generated ID
	host   int    // overrides the hostname ordinal
}

func fid(ord int) string { return fmt.Sprintf("%040d", ord+1) }

func (f fnode) nodeID() string {
	if f.id != "" {
		return f.id
	}
	return fid(f.ord)
}

func empty(ord int, k8s string) fnode { return fnode{ord: ord, k8s: k8s, master: -1, host: -1} }

func master(ord int, k8s string, slots ...slotRange) fnode {
	return fnode{ord: ord, k8s: k8s, slots: slots, master: -1, host: -1}
}

func replica(ord int, k8s string, of int) fnode {
	return fnode{ord: ord, k8s: k8s, master: of, host: -1}
}

func (f fnode) line(self bool, all []fnode) clusterNode {
	host := f.ord
	if f.host >= 0 {
		host = f.host
	}
	n := clusterNode{ID: f.nodeID(), IP: fmt.Sprintf("10.0.0.%d", f.ord+1), Port: 6379, Hostname: fmt.Sprintf("redis-%d", host),
		Connected: true, Slots: f.slots}
	if f.master >= 0 {
		n.Flags = []string{"slave"}
		for _, o := range all {
			if o.ord == f.master && o.flags == "" {
				n.MasterID = o.nodeID()
			}
		}
	} else {
		n.Flags = []string{"master"}
	}
	if self {
		n.Flags = append([]string{"myself"}, n.Flags...)
	}
	if f.flags != "" {
		n.Flags = append(n.Flags, f.flags)
	}
	for s, to := range f.mig {
		if n.Migrating == nil {
			n.Migrating = map[int]string{}
		}
		n.Migrating[s] = fid(to)
	}
	for s, from := range f.imp {
		if n.Importing == nil {
			n.Importing = map[int]string{}
		}
		n.Importing[s] = fid(from)
	}
	return n
}

func state(expected, replicas int, scaleOut string, nodes ...fnode) clusterState {
	s := clusterState{Expected: expected, Replicas: replicas, ScaleOutAs: scaleOut, OrdinalOf: func(h string) (int, bool) {
		var o int
		_, err := fmt.Sscanf(h, "redis-%d", &o)
		return o, err == nil
	}}
	for _, f := range nodes {
		if f.flags != "" { // a ghost: only seen through others' views
			continue
		}
		p := podState{Ordinal: f.ord, Hostname: fmt.Sprintf("redis-%d", f.ord), K8sNode: f.k8s, Keys: f.keys}
		if f.down {
			p.Err = errors.New("connection refused")
		} else {
			for _, o := range nodes {
				p.View = append(p.View, o.line(o.ord == f.ord && o.flags == "", nodes))
			}
		}
		s.Pods = append(s.Pods, p)
	}
	return s
}

func r(a, b int) slotRange { return slotRange{a, b} }

func TestDecideClusterSlots(t *testing.T) {
	six := []fnode{empty(0, ""), empty(1, ""), empty(2, ""), empty(3, ""), empty(4, ""), empty(5, "")}
	withKeys := append([]fnode(nil), six...)
	withKeys[3].keys = 12
	oneDown := append([]fnode(nil), six...)
	oneDown[4].down = true
	cases := map[string]struct {
		reason string
		state  clusterState
		want   clusterAction
	}{
		"SixEmptyPodsMakeThreeMasters": {
			reason: "6 empty pods with 1 replica per master: 3 masters with the redis-cli split",
			state:  state(6, 1, "replica", six...),
			want:   clusterAction{Kind: actAddSlots, AddSlots: map[int][]slotRange{0: {r(0, 5460)}, 1: {r(5461, 10922)}, 2: {r(10923, 16383)}}},
		},
		"MastersSpreadOverKubernetesNodes": {
			reason: "pods 0,1 share node a: masters go to one pod per node",
			state:  state(6, 1, "replica", empty(0, "a"), empty(1, "a"), empty(2, "b"), empty(3, "b"), empty(4, "c"), empty(5, "c")),
			want:   clusterAction{Kind: actAddSlots, AddSlots: map[int][]slotRange{0: {r(0, 5460)}, 2: {r(5461, 10922)}, 4: {r(10923, 16383)}}},
		},
		"NeverCreateOverKeys": {
			reason: "a pod with keys and no cluster anywhere: wait, never create",
			state:  state(6, 1, "replica", withKeys...),
			want:   clusterAction{Kind: actWait},
		},
		"WaitForEveryPod": {
			reason: "creation needs every expected pod",
			state:  state(6, 1, "replica", oneDown...),
			want:   clusterAction{Kind: actWait},
		},
		"ResumeAfterOneMaster": {
			reason: "the coordinator died after the first ADDSLOTSRANGE: the rest goes to new masters",
			state:  state(6, 1, "replica", master(0, "", r(0, 5460)), empty(1, ""), empty(2, ""), empty(3, ""), empty(4, ""), empty(5, "")),
			want:   clusterAction{Kind: actAddSlots, AddSlots: map[int][]slotRange{1: {r(5461, 10922)}, 2: {r(10923, 16383)}}},
		},
		"ResumeKeepsHolderOfItsRange": {
			reason: "pod 4 got part of the second range: it keeps it and gets the rest of it",
			state:  state(6, 1, "replica", empty(0, ""), empty(1, ""), empty(2, ""), empty(3, ""), master(4, "", r(6000, 6001)), empty(5, "")),
			want:   clusterAction{Kind: actAddSlots, AddSlots: map[int][]slotRange{0: {r(0, 5460)}, 4: {r(5461, 5999), r(6002, 10922)}, 1: {r(10923, 16383)}}},
		},
		"ResumeSkipsPodWithKeys": {
			reason: "a pod with keys is never given slots: the next empty pod is",
			state: state(6, 1, "replica", master(0, "", r(0, 5460)), fnode{ord: 1, master: -1, host: -1, keys: 3},
				empty(2, ""), empty(3, ""), empty(4, ""), empty(5, "")),
			want: clusterAction{Kind: actAddSlots, AddSlots: map[int][]slotRange{2: {r(5461, 10922)}, 3: {r(10923, 16383)}}},
		},
		"NoSecondCreation": {
			reason: "every slot assigned: nothing to create",
			state: state(6, 1, "replica", master(0, "", r(0, 5460)), master(1, "", r(5461, 10922)), master(2, "", r(10923, 16383)),
				replica(3, "", 0), replica(4, "", 1), replica(5, "", 2)),
			want: clusterAction{Kind: actNone},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decideCluster(tc.state)
			if got.Reason == "" {
				t.Errorf("%s: action %s has no reason", tc.reason, got.Kind)
			}
			got.Reason = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: decideCluster() -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDecideClusterReplicas(t *testing.T) {
	masters := []fnode{master(0, "a", r(0, 5460)), master(1, "b", r(5461, 10922)), master(2, "c", r(10923, 16383))}
	full := append(append([]fnode(nil), masters...), replica(3, "a", 1), replica(4, "b", 2), replica(5, "c", 0))
	cases := map[string]struct {
		reason string
		state  clusterState
		want   []replicateStep
		kind   actionKind
	}{
		"OnePerMasterOffItsNode": {
			reason: "replicas on a,b,c each go to a master on another node",
			state:  state(6, 1, "replica", append(append([]fnode(nil), masters...), empty(3, "a"), empty(4, "b"), empty(5, "c"))...),
			kind:   actReplicate,
			want:   []replicateStep{{3, 1, fid(1)}, {4, 2, fid(2)}, {5, 0, fid(0)}},
		},
		"UnknownPlacementByOrdinal": {
			reason: "no node names: replicas fill masters in ordinal order",
			state:  state(6, 1, "replica", master(0, "", r(0, 5460)), master(1, "", r(5461, 10922)), master(2, "", r(10923, 16383)), empty(3, ""), empty(4, ""), empty(5, "")),
			kind:   actReplicate,
			want:   []replicateStep{{3, 0, fid(0)}, {4, 1, fid(1)}, {5, 2, fid(2)}},
		},
		"ScaleOutAsReplica": {
			reason: "pod 6 joins the master with the fewest replicas, off its own node",
			state:  state(7, 1, "replica", append(append([]fnode(nil), full...), empty(6, "a"))...),
			kind:   actReplicate,
			want:   []replicateStep{{6, 1, fid(1)}},
		},
		"ScaleOutFillsMissingReplicaFirst": {
			reason: "master mode still gives a master without replica its replica first",
			state:  state(6, 1, "master", append(append([]fnode(nil), masters...), replica(3, "", 0), replica(4, "", 1), empty(5, ""))...),
			kind:   actReplicate,
			want:   []replicateStep{{5, 2, fid(2)}},
		},
		"PodBeyondExpectedIgnored": {
			reason: "a pod above spec.replicas (being scaled in) never joins",
			state:  state(6, 1, "replica", append(append([]fnode(nil), full...), empty(6, "a"))...),
			kind:   actNone,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decideCluster(tc.state)
			if got.Kind != tc.kind {
				t.Fatalf("%s: kind %s (%s), want %s", tc.reason, got.Kind, got.Reason, tc.kind)
			}
			if diff := cmp.Diff(tc.want, got.Replicate); diff != "" {
				t.Errorf("%s: replicate steps -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDecideClusterWaitsUntilReplicaKnowsMaster(t *testing.T) {
	s := state(4, 1, "replica", master(0, "", r(0, 16383)), replica(1, "", 0), master(2, "", r(0, 0)), empty(3, ""))
	// Rebuild: one master holding everything, pod 3 has not met it yet.
	s = state(2, 1, "replica", master(0, "", r(0, 16383)), empty(1, ""))
	s.Pods[1].View = s.Pods[1].View[1:] // pod 1 only knows itself
	got := decideCluster(s)
	if got.Kind != actWait || !strings.Contains(got.Reason, "does not know master pod 0") {
		t.Fatalf("decideCluster() = %s %q, want wait until pod 1 knows master pod 0", got.Kind, got.Reason)
	}
}

func TestDecideClusterScaleOutAsMaster(t *testing.T) {
	nodes := []fnode{master(0, "", r(0, 5460)), master(1, "", r(5461, 10922)), master(2, "", r(10923, 16383)),
		replica(3, "", 0), replica(4, "", 1), replica(5, "", 2), empty(6, "")}
	got := decideCluster(state(7, 1, "master", nodes...))
	if got.Kind != actMoveSlots {
		t.Fatalf("kind %s (%s), want move-slots", got.Kind, got.Reason)
	}
	per := map[int]int{}
	for _, m := range got.Moves {
		if m.To != 6 || m.ToID != fid(6) || m.FromID != fid(m.From) {
			t.Fatalf("move %+v: want every slot to pod 6 from its owner", m)
		}
		per[m.From]++
	}
	// 4 masters: 4096 each; donors give what they hold above that.
	if diff := cmp.Diff(map[int]int{0: 1365, 1: 1366, 2: 1365}, per); diff != "" {
		t.Errorf("slots moved per donor -want +got:\n%s", diff)
	}
	for _, m := range got.Moves {
		if m.From == 0 && m.Slot > 5460 || m.From == 1 && (m.Slot < 5461 || m.Slot > 10922) {
			t.Fatalf("move %+v takes a slot its donor does not own", m)
		}
	}

	// Resume: pod 6 got a few slots before the coordinator died.
	nodes[6] = master(6, "", r(5000, 5460))
	nodes[0] = master(0, "", r(0, 4999))
	got = decideCluster(state(7, 1, "master", nodes...))
	if got.Kind != actMoveSlots {
		t.Fatalf("resume: kind %s (%s), want move-slots", got.Kind, got.Reason)
	}
	if len(got.Moves) != 4096-461 {
		t.Errorf("resume moves %d slots, want %d", len(got.Moves), 4096-461)
	}

	// Balanced within the threshold: nothing moves.
	bal := []fnode{master(0, "", r(0, 4095)), master(1, "", r(4096, 8191)), master(2, "", r(8192, 12287)), master(3, "", r(12288, 16383))}
	if got := decideCluster(state(4, 0, "master", bal...)); got.Kind != actNone {
		t.Errorf("balanced cluster: kind %s (%s), want none", got.Kind, got.Reason)
	}
}

func TestDecideClusterFinishesOpenSlot(t *testing.T) {
	m0 := master(0, "", r(0, 5460))
	m0.mig = map[int]int{100: 3}
	m3 := master(3, "", r(10000, 16383))
	m3.imp = map[int]int{100: 0}
	nodes := []fnode{m0, master(1, "", r(5461, 9999)), m3}
	got := decideCluster(state(4, 0, "replica", nodes...))
	want := []slotMove{{Slot: 100, From: 0, To: 3, FromID: fid(0), ToID: fid(3)}}
	if got.Kind != actMoveSlots || !cmp.Equal(want, got.Moves) {
		t.Fatalf("decideCluster() = %s %+v (%s), want move-slots %+v", got.Kind, got.Moves, got.Reason, want)
	}
	// Only the target opened the slot (died before MIGRATING): still finished.
	m0.mig = nil
	got = decideCluster(state(4, 0, "replica", m0, master(1, "", r(5461, 9999)), m3))
	if got.Kind != actMoveSlots || !cmp.Equal(want, got.Moves) {
		t.Fatalf("importing only: %s %+v (%s), want %+v", got.Kind, got.Moves, got.Reason, want)
	}
}

func TestDecideClusterForget(t *testing.T) {
	base := []fnode{master(0, "", r(0, 5460)), master(1, "", r(5461, 10922)), master(2, "", r(10923, 16383)),
		replica(3, "", 0), replica(4, "", 1), replica(5, "", 2)}
	scaledIn := fnode{ord: 6, master: 0, flags: "fail", host: -1}
	holder := fnode{ord: 6, master: -1, flags: "fail", host: -1, slots: []slotRange{r(0, 0)}}
	replaced := fnode{ord: 9, id: strings.Repeat("f", 40), master: -1, flags: "fail", host: 4}
	notFailed := fnode{ord: 6, master: 0, flags: "fail?", host: -1}
	cases := map[string]struct {
		nodes []fnode
		want  []string
	}{
		"ScaledInReplica":          {append(append([]fnode(nil), base...), scaledIn), []string{fid(6)}},
		"PodCameBackAsNewNode":     {append(append([]fnode(nil), base...), replaced), []string{strings.Repeat("f", 40)}},
		"NotYetFailed":             {append(append([]fnode(nil), base...), notFailed), nil},
		"HoldsSlotsNeverForgotten": {append(append([]fnode(nil), base...), holder), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decideCluster(state(6, 1, "replica", tc.nodes...))
			if diff := cmp.Diff(tc.want, got.Forget); diff != "" {
				t.Errorf("forget -want +got (%s: %s):\n%s", got.Kind, got.Reason, diff)
			}
		})
	}
}

func TestSplitSlots(t *testing.T) {
	for n := 1; n <= 10; n++ {
		rs := splitSlots(n)
		next := 0
		for _, r := range rs {
			if r.From != next || r.len() < clusterSlots/n || r.len() > clusterSlots/n+1 {
				t.Fatalf("splitSlots(%d) = %v: not contiguous and even", n, rs)
			}
			next = r.To + 1
		}
		if next != clusterSlots {
			t.Fatalf("splitSlots(%d) = %v does not cover every slot", n, rs)
		}
	}
}

func TestMatchSeatsAvoidsSameNode(t *testing.T) {
	// Greedy in ordinal order would put pod 5 beside its master on c.
	cands := []podState{{Ordinal: 3, K8sNode: "a"}, {Ordinal: 4, K8sNode: "b"}, {Ordinal: 5, K8sNode: "c"}}
	seats := []podState{{Ordinal: 0, K8sNode: "b"}, {Ordinal: 1, K8sNode: "a"}, {Ordinal: 2, K8sNode: "c"}}
	got := matchSeats(cands, seats)
	for c, s := range got {
		if cands[c].K8sNode == seats[s].K8sNode {
			t.Errorf("pod %d placed with master pod %d on node %s; matching %v", cands[c].Ordinal, seats[s].Ordinal, seats[s].K8sNode, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("matched %d of 3 candidates: %v", len(got), got)
	}
	// All on one node: still every seat filled.
	one := []podState{{Ordinal: 3, K8sNode: "a"}, {Ordinal: 4, K8sNode: "a"}}
	if got := matchSeats(one, []podState{{Ordinal: 0, K8sNode: "a"}, {Ordinal: 1, K8sNode: "a"}}); len(got) != 2 {
		t.Errorf("single node: matched %v, want both", got)
	}
}

func TestPlanDrain(t *testing.T) {
	nodes := []fnode{master(0, "", r(0, 4095)), master(1, "", r(4096, 8191)), master(2, "", r(8192, 12287)), master(3, "", r(12288, 16383)), replica(4, "", 0)}
	moves, err := planDrain(state(3, 1, "master", nodes...), 3)
	if err != nil {
		t.Fatal(err)
	}
	per := map[int]int{}
	seen := map[int]bool{}
	for _, m := range moves {
		if m.From != 3 || m.FromID != fid(3) || m.Slot < 12288 || seen[m.Slot] {
			t.Fatalf("move %+v: want each slot of pod 3 once", m)
		}
		seen[m.Slot] = true
		per[m.To]++
	}
	if len(seen) != 4096 {
		t.Fatalf("%d slots moved, want all 4096 of pod 3", len(seen))
	}
	// 16384 over 3 masters: 5462, 5461, 5461.
	if diff := cmp.Diff(map[int]int{0: 5462 - 4096, 1: 5461 - 4096, 2: 5461 - 4096}, per); diff != "" {
		t.Errorf("slots per receiver -want +got:\n%s", diff)
	}
	if _, err := planDrain(state(1, 0, "master", master(0, "", r(0, 8191)), master(1, "", r(8192, 16383))), 0); err == nil {
		t.Errorf("draining the only master below spec.replicas: want an error")
	}
}
