package redisx

import (
	"slices"
	"testing"
)

func TestAnnounceSettings(t *testing.T) {
	zone := Setting{"availability-zone", "zone-a"}
	human := Setting{"cluster-announce-human-nodename", "redis-cluster-0"}
	for _, tc := range []struct {
		name    string
		e       Engine
		cluster bool
		zone    string
		want    []Setting
	}{
		{"redis 7.0 knows neither", Engine{"redis", "7.0.15"}, true, "zone-a", nil},
		{"redis 7.2 has the human name in cluster mode", Engine{"redis", "7.2.4"}, true, "zone-a", []Setting{human}},
		{"redis 8.0 has no zone", Engine{"redis", "8.0.2"}, true, "zone-a", []Setting{human}},
		{"valkey 8.0 cluster", Engine{"valkey", "8.0.1"}, true, "zone-a", []Setting{zone, human}},
		{"valkey 8.1 sentinel mode: no cluster name", Engine{"valkey", "8.1.1"}, false, "zone-a", []Setting{zone}},
		{"valkey 7.2 has no zone", Engine{"valkey", "7.2.5"}, true, "zone-a", []Setting{human}},
		{"zone unknown", Engine{"valkey", "8.0.1"}, false, "", nil},
		{"engine unknown", Engine{}, true, "zone-a", nil},
		{"unreadable version", Engine{"valkey", "unstable"}, false, "zone-a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AnnounceSettings(tc.e, tc.cluster, tc.zone, "redis-cluster-0")
			if !slices.Equal(got, tc.want) {
				t.Errorf("AnnounceSettings(%v, cluster=%t, %q) = %v, want %v", tc.e, tc.cluster, tc.zone, got, tc.want)
			}
		})
	}
}
