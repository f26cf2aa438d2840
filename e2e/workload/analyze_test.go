package workload

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func master(ms int, pod string) Sample {
	return Sample{At: at(ms), Pod: pod, Known: true, Role: "master", ClusterOK: true, Via: "direct"}
}

func replica(ms int, pod string) Sample {
	return Sample{At: at(ms), Pod: pod, Known: true, Role: "slave", ClusterOK: true, Via: "direct"}
}

func fenced(ms int, pod string) Sample {
	s := master(ms, pod)
	s.Fenced = true
	return s
}

// every samples each pod every step ms from from to to (inclusive).
func every(from, to, step int, f func(int, string) Sample, pods ...string) []Sample {
	var out []Sample
	for ms := from; ms <= to; ms += step {
		for _, p := range pods {
			out = append(out, f(ms, p))
		}
	}
	return out
}

func unknown(ms int, pod string) Sample { return Sample{At: at(ms), Pod: pod} }

// probed is a ProbeWrites sample: ROLE said role, the probe SET was
// answered OK or refused.
func probed(role string, ok bool) func(int, string) Sample {
	return func(ms int, pod string) Sample {
		return Sample{At: at(ms), Pod: pod, Known: true, Role: role, ClusterOK: true, Via: "exec", Probed: true, ProbeOK: ok}
	}
}

func shard(ms int, pod string, ok bool, slots ...SlotRange) Sample {
	return Sample{At: at(ms), Pod: pod, Known: true, Role: "master", ClusterOK: ok, Cluster: true, Slots: slots}
}

func TestAnalyze(t *testing.T) {
	const stale, deadline = time.Second, 10 * time.Second
	cases := map[string]struct {
		reason         string
		tl             Timeline
		wantOverlaps   []Interval
		wantViolations []Interval
		wantLabels     []Interval
	}{
		"CleanFailover": {
			reason: "the old master stops answering before the new one is promoted: no overlap",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: []Sample{
				master(0, "a"), replica(0, "b"), unknown(100, "a"), replica(100, "b"), unknown(6000, "a"), master(6000, "b"),
			}},
		},
		"PartitionFencedInTime": {
			reason: "the partitioned master (seen through exec) stays writable 4s beside the new one, then fences before the deadline: an overlap, no violation",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: append(append(append([]Sample{master(0, "a"), replica(0, "b")},
				every(5900, 9400, 500, master, "a")...), every(6000, 9500, 500, master, "b")...), fenced(9500, "a"), master(9600, "b"))},
			wantOverlaps: []Interval{{From: at(6000), To: at(9500), Pods: []string{"a", "b"}}},
		},
		"PartitionNeverFenced": {
			reason:         "the old master is still writable 12s after the fault: a fence violation",
			tl:             Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: append(every(6000, 12000, 500, master, "a", "b"), replica(12500, "a"))},
			wantOverlaps:   []Interval{{From: at(6000), To: at(12500), Pods: []string{"a", "b"}}},
			wantViolations: []Interval{{From: at(6000), To: at(12500), Pods: []string{"a", "b"}}},
		},
		"NoFaultOverlap": {
			reason: "two writable masters with no fault before them: always a violation",
			tl: Timeline{Samples: []Sample{
				master(0, "a"), master(10, "b"), replica(20, "b"),
			}},
			wantOverlaps:   []Interval{{From: at(10), To: at(20), Pods: []string{"a", "b"}}},
			wantViolations: []Interval{{From: at(10), To: at(20), Pods: []string{"a", "b"}}},
		},
		"ProbeRefusedIsNotWritable": {
			reason: "the agent says nothing (not fenced), ROLE says master, but the probe got NOREPLICAS: the write oracle is what counts, no overlap",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: append(append([]Sample{probed("master", true)(0, "a"), probed("slave", false)(0, "b")},
				every(4500, 9000, 500, probed("master", false), "a")...), every(6000, 9000, 500, probed("master", true), "b")...)},
		},
		"ProbeAcceptedBesideNewMaster": {
			reason: "a fenced-by-the-agent master whose probe is still answered OK is writable: an overlap the agent's flag would hide",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: []Sample{
				func() Sample { s := probed("master", true)(6000, "a"); s.Fenced = true; return s }(), probed("master", true)(6100, "b"), probed("master", false)(6200, "a"),
			}},
			wantOverlaps: []Interval{{From: at(6100), To: at(6200), Pods: []string{"a", "b"}}},
		},
		"StaleSampleDoesNotCount": {
			reason: "a master last seen 3s ago (frozen, every later probe timed out without a sample) is unknown now",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: []Sample{
				master(0, "a"), master(3000, "b"),
			}},
		},
		"ClusterDisjointSlots": {
			reason: "three cluster masters with disjoint slots are not an overlap",
			tl: Timeline{Samples: []Sample{
				shard(0, "a", true, SlotRange{0, 5460}), shard(0, "b", true, SlotRange{5461, 10922}), shard(0, "c", true, SlotRange{10923, 16383}),
			}},
		},
		"ClusterMinorityFailState": {
			reason: "an old master that still claims its slots but is in cluster_state:fail takes no writes: no overlap with its promoted replica",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: []Sample{
				shard(0, "a", true, SlotRange{0, 5460}), shard(5000, "a", false, SlotRange{0, 5460}), shard(6000, "d", true, SlotRange{0, 5460}),
			}},
		},
		"ClusterSameSlotTwice": {
			reason: "two nodes both writable for slot 100: an overlap",
			tl: Timeline{Marks: []Mark{{At: at(0), Fault: true}}, Samples: []Sample{
				shard(5000, "a", true, SlotRange{0, 5460}), shard(5100, "d", true, SlotRange{100, 100}), shard(5200, "a", false, SlotRange{0, 5460}),
			}},
			wantOverlaps: []Interval{{From: at(5100), To: at(5200), Pods: []string{"a", "d"}}},
		},
		"Labels": {
			reason: "the new master is labelled before the old label is removed: a label overlap",
			tl: Timeline{End: at(9000), Labels: []LabelEvent{
				{At: at(0), Pod: "a", Role: "master"}, {At: at(0), Pod: "b", Role: "replica"},
				{At: at(6000), Pod: "b", Role: "master"}, {At: at(6300), Pod: "a", Role: ""},
			}},
			wantLabels: []Interval{{From: at(6000), To: at(6300), Pods: []string{"a", "b"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := Analyze(tc.tl, stale, deadline)
			opt := cmpopts.EquateEmpty()
			if diff := cmp.Diff(tc.wantOverlaps, a.WritableOverlaps, opt); diff != "" {
				t.Errorf("%s\nWritableOverlaps -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantViolations, a.FenceViolations, opt); diff != "" {
				t.Errorf("%s\nFenceViolations -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantLabels, a.LabelOverlaps, opt); diff != "" {
				t.Errorf("%s\nLabelOverlaps -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestMoved(t *testing.T) {
	tl := Timeline{
		Samples: []Sample{
			shard(0, "a", true, SlotRange{0, 5460}), shard(0, "b", true, SlotRange{5461, 10922}),
			shard(7000, "b", true, SlotRange{5461, 10922}), shard(7500, "d", true, SlotRange{0, 5460}),
		},
		Labels: []LabelEvent{{At: at(0), Pod: "a", Role: "master"}, {At: at(6100), Pod: "a", Role: ""}, {At: at(6200), Pod: "d", Role: "master"}},
	}
	if got, pod, ok := MasterMoved(tl, at(1000), "a"); !ok || pod != "d" || !got.Equal(at(7500)) {
		t.Errorf("MasterMoved = %v %q %v, want %v d true (b's own slots are not a's)", got, pod, ok, at(7500))
	}
	if got, pod, ok := LabelMoved(tl, at(1000), "a"); !ok || pod != "d" || !got.Equal(at(6200)) {
		t.Errorf("LabelMoved = %v %q %v, want %v d true", got, pod, ok, at(6200))
	}
	if _, _, ok := MasterMoved(Timeline{Samples: []Sample{master(0, "a"), master(100, "a")}}, at(50), "a"); ok {
		t.Error("MasterMoved found a move where only the old master is writable")
	}
}

func TestParseClusterNodes(t *testing.T) {
	out := "07c37dfeb235213a872192d90877d0cd55635b91 10.244.0.5:6379@16379,redis-cluster-0.h.ns.svc.cluster.local myself,master - 0 1426238317239 4 connected 0-5460 5462 [5463->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]\n" +
		"67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 10.244.0.6:6379@16379 slave 07c37dfeb235213a872192d90877d0cd55635b91 0 1426238316232 2 connected\n"
	role, slots, ok := parseClusterNodes(out)
	if !ok || role != "master" {
		t.Fatalf("parseClusterNodes role %q ok %v, want master true", role, ok)
	}
	if diff := cmp.Diff([]SlotRange{{0, 5460}, {5462, 5462}}, slots); diff != "" {
		t.Errorf("slots -want +got:\n%s", diff)
	}
	role, slots, ok = parseClusterNodes("67ed2db8 10.244.0.6:6379@16379 myself,slave 07c37dfe 0 1 2 connected\n")
	if !ok || role != "slave" || len(slots) != 0 {
		t.Errorf("replica line: role %q slots %v ok %v", role, slots, ok)
	}
}

// probedShard is a cluster ProbeWrites sample of a node that claims slots
// as myself,master: the probe SET to one of its slots was answered OK, or
// refused (MOVED, CLUSTERDOWN, NOREPLICAS) or blocked.
func probedShard(ms int, pod string, ok bool, slots ...SlotRange) Sample {
	s := shard(ms, pod, true, slots...)
	s.Probed, s.ProbeOK = true, ok
	return s
}

// demoted is a cluster node that now answers myself,slave.
func demoted(ms int, pod string) Sample {
	return Sample{At: at(ms), Pod: pod, Known: true, Role: "slave", ClusterOK: true, Cluster: true}
}

func TestWritableOverlaps(t *testing.T) {
	const stale = time.Second
	s := SlotRange{0, 5460}
	cases := map[string]struct {
		reason string
		tl     Timeline
		want   []Interval
	}{
		"HandoverArtifact": {
			reason: "CLUSTER FAILOVER: the old master a was last sampled writable 80ms before d's first writable sample; the re-sample d's turn triggered finds a a replica 5ms later: below Resolution, no overlap",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), demoted(1000, "d"), probedShard(1080, "d", true, s), demoted(1085, "a"), probedShard(1180, "d", true, s), demoted(1185, "a"),
			}},
		},
		"HandoverBlockedProbe": {
			reason: "the old master's probe sent at 1050 was held by the failover pause (recorded not writable at its send time), then answered MOVED: no overlap",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), probedShard(1050, "a", false, s), probedShard(1080, "d", true, s), demoted(1120, "a"), probedShard(1180, "d", true, s),
			}},
		},
		"RealOverlap": {
			reason: "the old master still takes the probe 5ms after d's first writable sample and keeps taking it for 300ms: an overlap, its whole length counted",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), probedShard(1080, "d", true, s), probedShard(1085, "a", true, s),
				probedShard(1180, "d", true, s), probedShard(1185, "a", true, s), probedShard(1280, "d", true, s), probedShard(1285, "a", true, s),
				probedShard(1390, "a", false, s), probedShard(1395, "d", true, s),
			}},
			want: []Interval{{From: at(1080), To: at(1390), Pods: []string{"a", "d"}}},
		},
		"ThawedMasterShortWindow": {
			reason: "a thawed old master takes probes for 160ms beside the new master before it refuses them (NOREPLICAS): longer than Resolution, counted",
			tl: Timeline{Samples: append(every(20000, 20300, 100, func(ms int, pod string) Sample { return probedShard(ms, pod, true, s) }, "d"),
				probedShard(20030, "a", true, s), probedShard(20110, "a", true, s), probedShard(20190, "a", false, s))},
			want: []Interval{{From: at(20030), To: at(20190), Pods: []string{"a", "d"}}},
		},
		"NoNextSample": {
			reason: "the old master is never sampled again (its sampler lost it): its last writable sample stands for staleness, conservatively",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), probedShard(1080, "d", true, s), probedShard(1180, "d", true, s),
			}},
			want: []Interval{{From: at(1080), To: at(1180), Pods: []string{"a", "d"}}},
		},
		"UnansweredNextIsNoEvidence": {
			reason: "the old master's next sample 10ms later got no answer at all: that does not contradict its writable sample, which stands until then",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), probedShard(1080, "d", true, s), unknown(1090, "a"), probedShard(1180, "d", true, s),
			}},
			want: []Interval{{From: at(1080), To: at(1090), Pods: []string{"a", "d"}}},
		},
		"RefusedNextIsEvidence": {
			reason: "the old master's next sample 10ms later found its port refusing connections (redis-server gone, the pod's address still there): it no longer took writes, no overlap",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), probedShard(1080, "d", true, s), {At: at(1090), Pod: "a", Refused: true, Cluster: true}, probedShard(1180, "d", true, s),
			}},
		},
		"ContradictionPastResolution": {
			reason: "the old master's next sample shows it refusing writes, but 120ms after d's first writable sample: past Resolution, the window counts",
			tl: Timeline{Samples: []Sample{
				probedShard(1000, "a", true, s), probedShard(1080, "d", true, s), probedShard(1200, "a", false, s),
			}},
			want: []Interval{{From: at(1080), To: at(1200), Pods: []string{"a", "d"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := writableOverlaps(tc.tl, stale, Resolution)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
