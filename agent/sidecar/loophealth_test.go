package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

func TestLoopHealth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	limit := StallLimit(config.Config{ResyncInterval: 10 * time.Second})
	cases := map[string]struct {
		reason   string
		lastPass time.Time
		now      time.Time
		wantErr  string
	}{
		"JustFinished": {
			reason:   "a pass finished a moment ago",
			lastPass: t0, now: t0.Add(time.Second),
		},
		"LongWaitAndSlowPass": {
			reason:   "a resync interval of waiting plus a cluster pass that ran into its 30s deadline is not a stall",
			lastPass: t0, now: t0.Add(10*time.Second + 30*time.Second),
		},
		"AtTheLimit": {
			reason:   "exactly the limit is still healthy",
			lastPass: t0, now: t0.Add(limit),
		},
		"PastTheLimit": {
			reason:   "no pass for longer than the limit is a stuck loop",
			lastPass: t0, now: t0.Add(limit + time.Second),
			wantErr: "finished no pass for 2m21s (limit 2m20s",
		},
		"ClockBehind": {
			reason:   "a pass dated after now (clocks compared across a wall-clock step) is not a stall",
			lastPass: t0, now: t0.Add(-time.Hour),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := LoopHealth(tc.now, tc.lastPass, limit)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("%s: loopHealth = %v, want healthy", tc.reason, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%s: loopHealth = %v, want an error containing %q", tc.reason, err, tc.wantErr)
			}
		})
	}
}
