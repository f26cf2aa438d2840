package demo

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// INFO replication as redis-server 7.0.15 prints it (CRLF line ends).
const infoReplica = "# Replication\r\nrole:slave\r\nmaster_host:redis-0.redis-headless.demo-sentinel.svc.cluster.local\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:0\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:12856\r\nslave_repl_offset:12856\r\nslave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:fe449afdb67c6c5c9c2a1238f0c11b5e01fb9815\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:12856\r\nsecond_repl_offset:-1\r\n"

func TestParseReplication(t *testing.T) {
	tests := map[string]struct {
		info string
		want Replication
	}{
		"replica": {infoReplica, Replication{Role: "slave", ReplID: "fe449afdb67c6c5c9c2a1238f0c11b5e01fb9815", Offset: 12856,
			MasterHost: "redis-0.redis-headless.demo-sentinel.svc.cluster.local", LinkUp: true}},
		"master": {"# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=10.244.0.4,port=6379,state=online,offset=42,lag=0\r\nmaster_replid:abc\r\nmaster_repl_offset:42\r\n",
			Replication{Role: "master", ReplID: "abc", Offset: 42}},
		"link down": {"role:slave\nmaster_host:10.244.0.9\nmaster_link_status:down\n", Replication{Role: "slave", MasterHost: "10.244.0.9"}},
		"empty":     {"", Replication{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ParseReplication(tc.info)); diff != "" {
				t.Errorf("ParseReplication (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseInfoField(t *testing.T) {
	info := "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:6\r\n"
	for field, want := range map[string]string{"cluster_state": "ok", "cluster_known_nodes": "6", "cluster_size": ""} {
		if got := ParseInfoField(info, field); got != want {
			t.Errorf("ParseInfoField(%s) = %q, want %q", field, got, want)
		}
	}
}

func TestBadClusterNodes(t *testing.T) {
	nodes := strings.Join([]string{
		"07c37dfeb235213a872192d90877d0cd55635b91 10.244.0.5:6379@16379,redis-cluster-0.redis-cluster-headless.demo-cluster.svc.cluster.local myself,master - 0 0 1 connected 0-5460",
		"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 10.244.0.7:6379@16379,redis-cluster-1.redis-cluster-headless.demo-cluster.svc.cluster.local master,fail - 1700000000000 0 2 connected 5461-10922",
		"67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 :0@0 slave,noaddr e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 0 2 connected",
		"292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 10.244.0.8:6379@16379,redis-cluster-2 master,fail? - 0 0 3 connected 10923-16383",
		"6ec23923021cf3ffec47632106199cb7f496ce01 10.244.0.9:6379@16379,redis-cluster-5 slave 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 0 0 3 connected",
	}, "\n")
	got := BadClusterNodes(nodes)
	want := []string{
		"node e7d1eecc at 10.244.0.7:6379@16379,redis-cluster-1.redis-cluster-headless.demo-cluster.svc.cluster.local flagged master,fail",
		"node 67ed2db8 at :0@0 flagged slave,noaddr",
		"node 292f8b36 at 10.244.0.8:6379@16379,redis-cluster-2 flagged master,fail?",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BadClusterNodes (-want +got):\n%s", diff)
	}
	if got := BadClusterNodes(strings.SplitN(nodes, "\n", 2)[0]); len(got) != 0 {
		t.Errorf("healthy line reported as bad: %v", got)
	}
}

func TestHealthyReplicas(t *testing.T) {
	reps := []any{
		[]any{"name", "redis-1:6379", "flags", "slave"},
		[]any{"name", "redis-2:6379", "flags", "s_down,slave,disconnected"},
		map[any]any{"name": "redis-3:6379", "flags": "slave"},
	}
	if got := healthyReplicas(reps); got != 2 {
		t.Errorf("healthyReplicas = %d, want 2", got)
	}
}

func TestReadTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	pods := func(r0, l0, r1, l1, r2, l2 string, ready1 bool) map[string]PodSample {
		return map[string]PodSample{
			"redis-0": {Role: r0, Label: l0, Ready: l0 == "master"},
			"redis-1": {Role: r1, Label: l1, Ready: ready1},
			"redis-2": {Role: r2, Label: l2, Ready: true},
		}
	}
	samples := []Sample{
		{At: ms(-100), Pods: pods("master", "master", "slave", "replica", "slave", "replica", true)},
		{At: ms(100), Pods: pods("", "master", "slave", "replica", "slave", "replica", true)},
		{At: ms(400), Pods: pods("", "master", "master", "replica", "slave", "replica", true)},
		{At: ms(700), Pods: pods("", "", "master", "master", "slave", "replica", false)},
		{At: ms(900), Pods: pods("slave", "", "master", "master", "slave", "replica", true)},
	}
	got := ReadTimeline(samples, t0, "redis-0")
	want := Timeline{Down: ms(100), Back: ms(900), BackRole: "slave", Promoted: "redis-1", PromotedAt: ms(400), Labelled: "redis-1", LabelledAt: ms(900)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadTimeline (-want +got):\n%s", diff)
	}
	// A pod that was already master before the fault (another shard's
	// master in cluster mode) is not a promotion.
	got = ReadTimeline(samples[:2], t0, "redis-1")
	if got.Promoted != "" {
		t.Errorf("pod already master before the fault reported as promoted: %+v", got)
	}
	if n := MaxLabelledMasters(samples); n != 1 {
		t.Errorf("MaxLabelledMasters = %d, want 1 (redis-1 is labelled but not Ready at +700ms)", n)
	}
	samples[3].Pods["redis-1"] = PodSample{Role: "master", Label: "master", Ready: true}
	samples[3].Pods["redis-0"] = PodSample{Label: "master", Ready: true}
	if n := MaxLabelledMasters(samples); n != 2 {
		t.Errorf("MaxLabelledMasters = %d, want 2", n)
	}
}

func TestPrinterCountsFailures(t *testing.T) {
	var b bytes.Buffer
	p := NewPrinter(&b)
	p.Section(1, 2, "Step")
	p.OK("fine", 1500*time.Millisecond)
	if err := p.Check("bad", 0, errors.New("key demo:1 missing")); err == nil {
		t.Fatal("Check with an error returned nil")
	}
	p.Record("gap", 412*time.Millisecond, "baseline 11.2s")
	p.Summary()
	if p.Failed() != 1 {
		t.Errorf("Failed() = %d, want 1", p.Failed())
	}
	out := b.String()
	for _, want := range []string{"[1/2] Step", "✓ fine", "1.50s", "✗ bad: key demo:1 missing", "412ms   (baseline 11.2s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{85 * time.Millisecond: "85ms", 1243 * time.Millisecond: "1.24s", 65 * time.Second: "1m05s", -2 * time.Second: "-2.00s"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestReadTimelineSentinelMajority(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int, s0, s1, s2 string) Sample {
		return Sample{At: t0.Add(time.Duration(ms) * time.Millisecond), Pods: map[string]PodSample{
			"redis-0": {Role: map[bool]string{true: "master", false: ""}[ms < 0], SentinelMaster: s0},
			"redis-1": {Role: "slave", SentinelMaster: s1},
			"redis-2": {Role: "slave", SentinelMaster: s2},
		}}
	}
	samples := []Sample{
		at(-100, "redis-0", "redis-0", "redis-0"),
		at(100, "", "redis-0", "redis-0"),
		at(5000, "", "redis-1", "redis-0"), // one Sentinel of three: no majority yet
		at(5200, "", "redis-1", "redis-1"),
	}
	tl := ReadTimeline(samples, t0, "redis-0")
	if tl.Majority != "redis-1" || !tl.MajorityAt.Equal(t0.Add(5200*time.Millisecond)) {
		t.Errorf("majority = %s at %v, want redis-1 at +5.2s", tl.Majority, tl.MajorityAt.Sub(t0))
	}
	if got := podOfHost("redis-1.redis-headless.ns.svc.cluster.local", []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "redis-1"}}}); got != "redis-1" {
		t.Errorf("podOfHost = %q", got)
	}
}

func TestUnreadyWhileLabelled(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(ms int, label string, ready bool) Sample {
		return Sample{At: t0.Add(time.Duration(ms) * time.Millisecond), Pods: map[string]PodSample{"redis-1": {Label: label, Ready: ready}}}
	}
	samples := []Sample{s(0, "replica", true), s(600, "master", true), s(1200, "master", false), s(1300, "master", false), s(2800, "master", true)}
	from, to := unreadyWhileLabelled(samples, t0.Add(600*time.Millisecond), "redis-1")
	if from.Sub(t0) != 1200*time.Millisecond || to.Sub(t0) != 2800*time.Millisecond {
		t.Errorf("unready window %v..%v, want 1.2s..2.8s", from.Sub(t0), to.Sub(t0))
	}
	if from, _ := unreadyWhileLabelled(samples[:2], t0, "redis-1"); !from.IsZero() {
		t.Errorf("window reported for a pod that stayed Ready: %v", from)
	}
}
