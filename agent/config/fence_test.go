package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFenceFor: the default fences every StatefulSet of more than one pod
// with a max-lag that refuses writes before Sentinel can promote; explicit
// settings are kept when safe and refused, naming the flag, the value and
// the fix, when not.
func TestFenceFor(t *testing.T) {
	cases := map[string]struct {
		reason    string
		toWrite   int
		maxLag    int
		downAfter time.Duration
		pods      int
		want      redisFence
		wantErr   []string
	}{
		"DefaultThreePods": {
			reason:  "5s down-after: refuse by 2+2=4s < 5s",
			toWrite: -1, downAfter: 5 * time.Second, pods: 3,
			want: redisFence{ToWrite: 1, MaxLag: 2},
		},
		"DefaultSinglePod": {
			reason:  "no replica to wait for, no failover to race",
			toWrite: -1, downAfter: 5 * time.Second, pods: 1,
			want: redisFence{ToWrite: 0, MaxLag: 2},
		},
		"DefaultSinglePodShortDownAfter": {
			reason:  "a single pod needs no timing; Redis' own max-lag default",
			toWrite: -1, downAfter: time.Second, pods: 1,
			want: redisFence{ToWrite: 0, MaxLag: 10},
		},
		"LongerDownAfter": {
			reason:  "30s down-after: 27+2 < 30",
			toWrite: -1, downAfter: 30 * time.Second, pods: 3,
			want: redisFence{ToWrite: 1, MaxLag: 27},
		},
		"FractionalDownAfter": {
			reason:  "5.5s: 3+2 = 5 < 5.5",
			toWrite: -1, downAfter: 5500 * time.Millisecond, pods: 3,
			want: redisFence{ToWrite: 1, MaxLag: 3},
		},
		"ExplicitSafe": {
			reason:  "the production overlay's explicit 1, a shorter max-lag",
			toWrite: 1, maxLag: 1, downAfter: 5 * time.Second, pods: 3,
			want: redisFence{ToWrite: 1, MaxLag: 1},
		},
		"OptOut": {
			reason:  "0 turns the fence off whatever the timing",
			toWrite: 0, downAfter: 5 * time.Second, pods: 3,
			want: redisFence{ToWrite: 0, MaxLag: 2},
		},
		"MaxLagReachesDownAfter": {
			reason:  "Redis' default 10 against 5s: the measured 4.8s of two masters",
			toWrite: -1, maxLag: 10, downAfter: 5 * time.Second, pods: 3,
			wantErr: []string{"--min-replicas-max-lag (REDIS_HA_MIN_REPLICAS_MAX_LAG) 10", "--down-after (REDIS_HA_DOWN_AFTER) 5s", "use at most 2"},
		},
		"MaxLagOneTooLong": {
			reason:  "3+2 = 5 is not before 5s",
			toWrite: 1, maxLag: 3, downAfter: 5 * time.Second, pods: 3,
			wantErr: []string{"--min-replicas-max-lag (REDIS_HA_MIN_REPLICAS_MAX_LAG) 3", "use at most 2"},
		},
		"DownAfterTooShort": {
			reason:  "3s leaves no whole second of max-lag",
			toWrite: -1, downAfter: 3 * time.Second, pods: 3,
			wantErr: []string{"--down-after (REDIS_HA_DOWN_AFTER) 3s", "above 3s", "--min-replicas-to-write 0"},
		},
		"MoreThanReplicas": {
			reason:  "3 pods have 2 replicas: no write could ever succeed",
			toWrite: 3, downAfter: 5 * time.Second, pods: 3,
			wantErr: []string{"--min-replicas-to-write (REDIS_HA_MIN_REPLICAS_TO_WRITE) 3", "3 pod(s)", "at most 2 replica(s)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Config{MinReplicasToWrite: tc.toWrite, MinReplicasMaxLag: tc.maxLag, DownAfter: tc.downAfter}
			got, err := FenceFor(cfg, tc.pods)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("%s: fenceFor accepted it: %+v", tc.reason, got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", tc.reason, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: fence (-want +got):\n%s", tc.reason, diff)
			}
			if got.ToWrite > 0 && time.Duration(got.MaxLag)*time.Second+FenceMargin >= tc.downAfter {
				t.Errorf("%s: max-lag %ds + %s reaches down-after %s", tc.reason, got.MaxLag, FenceMargin, tc.downAfter)
			}
		})
	}
}
