package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

func TestNextSpan(t *testing.T) {
	cases := map[string]struct {
		reason    string
		cur, spec int
		exists    map[int]bool
		want      int
	}{
		"Steady": {
			reason: "spec.replicas unchanged: the span stays",
			cur:    3, spec: 3, want: 3,
		},
		"ScaleUp": {
			reason: "scaling up counts the new pods at once: the existing ones still make a majority of the larger count",
			cur:    3, spec: 5, want: 5,
		},
		"ScaleDownPodsStillThere": {
			reason: "pods above spec.replicas that still exist (terminating) keep their Sentinels voting",
			cur:    5, spec: 3, exists: map[int]bool{3: true, 4: true}, want: 5,
		},
		"ScaleDownTopGone": {
			reason: "the StatefulSet deletes the highest ordinal first: the span shrinks past it",
			cur:    5, spec: 3, exists: map[int]bool{3: true, 4: false}, want: 4,
		},
		"ScaleDownAllGone": {
			reason: "once every pod above spec.replicas is gone the span is spec.replicas",
			cur:    5, spec: 3, exists: map[int]bool{3: false, 4: false}, want: 3,
		},
		"ScaleDownUnknown": {
			reason: "a pod whose existence could not be read (API error) counts as existing",
			cur:    5, spec: 3, exists: map[int]bool{3: false}, want: 5,
		},
		"ScaleUpDuringScaleDown": {
			reason: "a scale back up while old pods are still leaving: spec.replicas wins when it is at least the span",
			cur:    5, spec: 5, exists: map[int]bool{4: false}, want: 5,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := nextSpan(tc.cur, tc.spec, tc.exists); got != tc.want {
				t.Errorf("%s\nnextSpan(%d, %d, %v) = %d, want %d", tc.reason, tc.cur, tc.spec, tc.exists, got, tc.want)
			}
		})
	}
}

func TestSentinelMajorityWhileScalingDown(t *testing.T) {
	views := func(masters ...int) []sentinelView {
		var v []sentinelView
		for _, m := range masters {
			v = append(v, sentinelView{Reachable: m != -2, Master: max(m, -1), named: m >= 0})
		}
		return v
	}
	cases := map[string]struct {
		reason string
		views  []sentinelView
		pods   int
		want   int
		ok     bool
	}{
		"ThreeOfFiveWhileLeaving": {
			reason: "the three remaining Sentinels are a majority of five while pods 3 and 4 terminate",
			views:  views(0, 0, 0, -2, -2), pods: 5, want: 0, ok: true,
		},
		"TwoOfFiveNotEnough": {
			reason: "two of five is no majority even though it would be one of three",
			views:  views(0, 0, -2, -2, -2), pods: 5, want: -1, ok: false,
		},
		"TwoOfThreeAfterGone": {
			reason: "once the span shrank to three, two Sentinels are a majority",
			views:  views(0, 0, -2), pods: 3, want: 0, ok: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := sentinelMajority(tc.views, tc.pods)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("%s\nsentinelMajority = %d, %t; want %d, %t", tc.reason, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDecideReset(t *testing.T) {
	calm := sentinelMembers{Quorum: 2, Flags: "master"}
	stale := []string{"redis-4.redis-headless.default.svc.cluster.local"}
	cases := map[string]struct {
		reason string
		in     resetInput
		want   bool
		why    string // substring of the reason
	}{
		"NothingStale": {
			reason: "a Sentinel that lists only live pods is left alone",
			in:     resetInput{Self: 0, Members: calm, Majority: true, StaleFor: time.Hour, SinceReset: time.Hour},
		},
		"Pod0Turn": {
			reason: "pod 0 resets resetSettle after it saw the stale entry",
			in:     resetInput{Self: 0, Stale: stale, Members: calm, Majority: true, StaleFor: resetSettle, SinceReset: time.Hour},
			want:   true, why: "redis-4",
		},
		"Pod2Waits": {
			reason: "pod 2 waits two staggers longer than pod 0, so the Sentinels reset one at a time",
			in:     resetInput{Self: 2, Stale: stale, Members: calm, Majority: true, StaleFor: resetSettle + resetStagger, SinceReset: time.Hour},
			why:    "turn",
		},
		"Pod2Turn": {
			reason: "pod 2's turn",
			in:     resetInput{Self: 2, Stale: stale, Members: calm, Majority: true, StaleFor: resetSettle + 2*resetStagger, SinceReset: time.Hour},
			want:   true,
		},
		"FailoverInProgress": {
			reason: "never while the Sentinel is failing over",
			in: resetInput{Self: 0, Stale: stale, Majority: true, StaleFor: time.Hour, SinceReset: time.Hour,
				Members: sentinelMembers{Quorum: 2, Flags: "master,failover_in_progress", FailoverState: "wait_promotion"}},
			why: "failover",
		},
		"FailoverStateOnly": {
			reason: "a failover-state other than none counts as a failover too",
			in: resetInput{Self: 0, Stale: stale, Majority: true, StaleFor: time.Hour, SinceReset: time.Hour,
				Members: sentinelMembers{Quorum: 2, Flags: "master", FailoverState: "select_slave"}},
			why: "select_slave",
		},
		"MasterDown": {
			reason: "never while the master is seen down: a failover may be about to start",
			in: resetInput{Self: 0, Stale: stale, Majority: true, StaleFor: time.Hour, SinceReset: time.Hour,
				Members: sentinelMembers{Quorum: 2, Flags: "master,s_down,o_down"}},
			why: "s_down",
		},
		"NoMajority": {
			reason: "never while the Sentinels disagree on the master",
			in:     resetInput{Self: 0, Stale: stale, Members: calm, StaleFor: time.Hour, SinceReset: time.Hour},
			why:    "majority",
		},
		"RecentlyReset": {
			reason: "an entry relearned after a reset does not start a reset loop",
			in:     resetInput{Self: 0, Stale: stale, Members: calm, Majority: true, StaleFor: time.Hour, SinceReset: time.Minute},
			why:    "ago",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, why := decideReset(tc.in)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("%s\ndecideReset = %t, %q; want %t and a reason containing %q", tc.reason, got, why, tc.want, tc.why)
			}
		})
	}
}

func TestStaleHosts(t *testing.T) {
	fqdn := func(i int) string { return fmt.Sprintf("redis-%d.redis-headless.default.svc.cluster.local", i) }
	cases := map[string]struct {
		reason string
		peers  sentinelPeers
		ms     sentinelMembers
		want   []string
	}{
		"PeerNames": {
			reason: "the entries of pods 3 and 4 (gone after a scale to 3) are stale, pods 1 and 2 (any case, trailing dot) are not",
			peers:  sentinelPeers{Pods: 3, Addr: fqdn},
			ms: sentinelMembers{
				Sentinels: []memberAddr{{fqdn(1), 26379}, {fqdn(3), 26379}, {fqdn(4) + ".", 26379}},
				Replicas:  []memberAddr{{"REDIS-2.redis-headless.default.svc.cluster.local", 6379}, {fqdn(4), 6379}},
			},
			want: []string{fqdn(3) + ":26379", fqdn(4) + ".:26379", fqdn(4) + ":6379"},
		},
		"ExternalPorts": {
			reason: "with external access every pod announces a node address; the port names the pod, so pods 0-2 on one node are live whatever the address, and ports of pods 3 and 4 (scaled away) or of the other range are stale",
			peers:  sentinelPeers{Pods: 3, Addr: fqdn, External: config.External{Host: "10.0.0.1", RedisPort: 31000, SentinelPort: 31100}},
			ms: sentinelMembers{
				Sentinels: []memberAddr{{"10.0.0.1", 31101}, {"10.0.0.2", 31102}, {"10.0.0.1", 31103}, {"10.0.0.1", 31001}},
				Replicas:  []memberAddr{{"10.0.0.1", 31000}, {"10.0.0.3", 31002}, {"10.0.0.1", 31004}, {"10.0.0.1", 31100}},
			},
			want: []string{"10.0.0.1:31103", "10.0.0.1:31001", "10.0.0.1:31004", "10.0.0.1:31100"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, staleHosts(tc.peers, tc.ms)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestProbeSpan(t *testing.T) {
	cases := map[string]struct {
		reason string
		alive  map[int]bool // ordinal → exists; absent: API error
		spec   int
		want   int
	}{
		"NothingAbove": {reason: "no pod above spec.replicas", alive: map[int]bool{3: false}, spec: 3, want: 3},
		"TwoLeaving":   {reason: "a restart mid scale-down counts the pods still there", alive: map[int]bool{3: true, 4: true, 5: false}, spec: 3, want: 5},
		"APIError":     {reason: "an unanswered ordinal counts as existing, the first NotFound ends the probe", alive: map[int]bool{4: false}, spec: 3, want: 4},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := probeSpan(context.Background(), tc.spec, func(_ context.Context, i int) (bool, error) {
				e, ok := tc.alive[i]
				if !ok {
					return false, errors.New("the server is currently unable to handle the request")
				}
				return e, nil
			})
			if got != tc.want {
				t.Errorf("%s\nprobeSpan = %d, want %d", tc.reason, got, tc.want)
			}
		})
	}
}
