package config

import (
	"strings"
	"testing"
)

// TestExternalValidate: external access is off by default; turned on, it
// needs an announceable host and, in sentinel mode, the Sentinel NodePort;
// cluster mode refuses it for now. Each error names the flag and value.
func TestExternalValidate(t *testing.T) {
	on := External{Host: "10.0.0.7", RedisPort: 31000, SentinelPort: 31100}
	cases := map[string]struct {
		mode string
		ext  External
		want []string // empty: accepted
	}{
		"Off":                  {mode: ModeSentinel},
		"OnSentinel":           {mode: ModeSentinel, ext: on},
		"OnDNSName":            {mode: ModeSentinel, ext: External{Host: "nodes.example.com", RedisPort: 31000, SentinelPort: 31100}},
		"NoHost":               {mode: ModeSentinel, ext: External{RedisPort: 31000, SentinelPort: 31100}, want: []string{"--external-host (REDIS_HA_EXTERNAL_HOST) is empty", "status.hostIP"}},
		"BadHost":              {mode: ModeSentinel, ext: External{Host: "a b", RedisPort: 31000, SentinelPort: 31100}, want: []string{`--external-host (REDIS_HA_EXTERNAL_HOST) "a b"`}},
		"NoSentinelPort":       {mode: ModeSentinel, ext: External{Host: "10.0.0.7", RedisPort: 31000}, want: []string{"--external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT) is 0"}},
		"SentinelPortAlone":    {mode: ModeSentinel, ext: External{SentinelPort: 31100}, want: []string{"--external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT) 31100 is set without"}},
		"PortTooHigh":          {mode: ModeSentinel, ext: External{Host: "10.0.0.7", RedisPort: 70000, SentinelPort: 31100}, want: []string{"--external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT) 70000 is not a TCP port"}},
		"NegativeSentinelPort": {mode: ModeSentinel, ext: External{Host: "10.0.0.7", RedisPort: 31000, SentinelPort: -1}, want: []string{"--external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT) -1"}},
		"ClusterNotYet":        {mode: ModeCluster, ext: on, want: []string{"not supported in cluster mode yet"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			c.Mode, c.External = tc.mode, tc.ext
			if tc.mode == ModeCluster {
				c.PodIP = "10.244.1.5"
			}
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate refused %+v: %v", tc.ext, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.ext)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestExternalOrdinals: an external port maps back to exactly the ordinal
// that announces it, within the pod count; ports of another range, of a
// pod beyond the count, or with external access off map to none.
func TestExternalOrdinals(t *testing.T) {
	e := External{Host: "10.0.0.7", RedisPort: 31000, SentinelPort: 31100}
	cases := map[string]struct {
		got, want int
	}{
		"RedisOrdinal0":          {e.RedisOrdinal(31000, 3), 0},
		"RedisOrdinal2":          {e.RedisOrdinal(31002, 3), 2},
		"RedisBeyondPods":        {e.RedisOrdinal(31003, 3), -1},
		"RedisBelowBase":         {e.RedisOrdinal(30999, 3), -1},
		"InternalPort":           {e.RedisOrdinal(6379, 3), -1},
		"SentinelPortIsNotRedis": {e.RedisOrdinal(31101, 3), -1},
		"SentinelOrdinal1":       {e.SentinelOrdinal(31101, 3), 1},
		"RedisPortIsNotSentinel": {e.SentinelOrdinal(31001, 3), -1},
		"Off":                    {External{}.RedisOrdinal(0, 3), -1},
		"RoundTrip":              {e.RedisOrdinal(e.RedisPortOf(4), 5), 4},
		"SentinelRoundTrip":      {e.SentinelOrdinal(e.SentinelPortOf(4), 5), 4},
	}
	for name, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: ordinal %d, want %d", name, tc.got, tc.want)
		}
	}
}

// TestExternalCheckSpan: the Redis and Sentinel port ranges of the pod
// count must not overlap.
func TestExternalCheckSpan(t *testing.T) {
	e := External{Host: "h", RedisPort: 31000, SentinelPort: 31003}
	if err := e.CheckSpan(3); err != nil {
		t.Errorf("3 pods at 31000-31002 and 31003-31005: %v", err)
	}
	err := e.CheckSpan(4)
	if err == nil || !strings.Contains(err.Error(), "overlap for 4 pods") {
		t.Errorf("4 pods at 31000-31003 and 31003-31006: got %v, want an overlap error", err)
	}
	if err := (External{}).CheckSpan(100); err != nil {
		t.Errorf("off: %v", err)
	}
}
