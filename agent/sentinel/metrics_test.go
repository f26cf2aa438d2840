package sentinel

import (
	"testing"
	"time"
)

func TestSentinelReplicationLag(t *testing.T) {
	cases := map[string]struct {
		reason          string
		master, replica int64
		want            int64
	}{
		"Behind":   {reason: "the master streamed 1500 bytes the replica has not processed", master: 10_000, replica: 8_500, want: 1500},
		"CaughtUp": {reason: "same offset", master: 42, replica: 42, want: 0},
		"Ahead":    {reason: "a replica can never be ahead; a negative difference is no lag", master: 10, replica: 50, want: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := replicationLag(tc.master, tc.replica); got != tc.want {
				t.Errorf("%s\nreplicationLag(%d, %d) = %d, want %d", tc.reason, tc.master, tc.replica, got, tc.want)
			}
		})
	}
}

func TestSentinelFailoverDuration(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type pass struct {
		at      time.Time
		linkUp  bool
		downFor time.Duration // master_link_down_since_seconds
	}
	cases := map[string]struct {
		reason   string
		passes   []pass
		labelled time.Time
		want     time.Duration
		ok       bool
	}{
		"FirstDownCounts": {
			reason:   "link up at 0s, down at 10s and 20s, labelled at 23s: measured from the first pass that saw it down",
			passes:   []pass{{at(0), true, 0}, {at(10), false, 0}, {at(20), false, 0}},
			labelled: at(23), want: 13 * time.Second, ok: true,
		},
		"RedisDatesTheLoss": {
			reason:   "the first pass that sees the link down at 10s reads master_link_down_since_seconds 6: lost at 4s",
			passes:   []pass{{at(0), true, 0}, {at(10), false, 6 * time.Second}, {at(20), false, 16 * time.Second}},
			labelled: at(12), want: 8 * time.Second, ok: true,
		},
		"NeverBeforeLastUp": {
			reason:   "whole seconds may round past the last pass that saw the link up: lost no earlier than that pass",
			passes:   []pass{{at(9.5), true, 0}, {at(10), false, 2 * time.Second}},
			labelled: at(11), want: 1500 * time.Millisecond, ok: true,
		},
		"BackUpResets": {
			reason:   "a link that came back up forgets the earlier outage",
			passes:   []pass{{at(0), false, 0}, {at(10), true, 0}, {at(20), false, 0}},
			labelled: at(21.5), want: 1500 * time.Millisecond, ok: true,
		},
		"NoPassSawItDown": {
			reason:   "promoted before any pass saw the link down: from the last pass that saw it up (an upper bound)",
			passes:   []pass{{at(0), true, 0}, {at(10), true, 0}},
			labelled: at(17), want: 7 * time.Second, ok: true,
		},
		"NeverSeen": {
			reason:   "no pass saw the link at all (agent started after the loss): not measured",
			labelled: at(5),
		},
		"ClockBackwards": {
			reason:   "a label time before the loss is not a duration",
			passes:   []pass{{at(10), false, 0}},
			labelled: at(9),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var w linkWatch
			for _, p := range tc.passes {
				w.observe(p.at, p.linkUp, p.downFor)
			}
			got, ok := failoverDuration(w.lostAt(), tc.labelled)
			if ok != tc.ok || got != tc.want {
				t.Errorf("%s\nfailoverDuration(...) = %s, %t; want %s, %t", tc.reason, got, ok, tc.want, tc.ok)
			}
		})
	}
}
