package workload

import "testing"

func TestKeySlot(t *testing.T) {
	cases := map[string]struct {
		reason string
		key    string
		want   int
	}{
		"Foo":        {reason: "CLUSTER KEYSLOT foo", key: "foo", want: 12182},
		"Bar":        {reason: "CLUSTER KEYSLOT bar", key: "bar", want: 5061},
		"HashTag":    {reason: "only the tag is hashed", key: "{foo}.bar", want: 12182},
		"SecondTag":  {reason: "only the first {...} counts", key: "x{bar}{foo}", want: 5061},
		"EmptyTag":   {reason: "an empty tag hashes the whole key", key: "{}foo", want: int(crc16([]byte("{}foo")) % Slots)},
		"NoCloseTag": {reason: "an unclosed { hashes the whole key", key: "{foo", want: int(crc16([]byte("{foo")) % Slots)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := KeySlot(tc.key); got != tc.want {
				t.Errorf("%s: KeySlot(%q) = %d, want %d", tc.reason, tc.key, got, tc.want)
			}
		})
	}
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Errorf("crc16(123456789) = %#04x, want 0x31c3 (the CRC-16/XMODEM check value)", got)
	}
}

func TestSlotTags(t *testing.T) {
	tags := newSlotTags()
	for slot, tag := range tags {
		if tag == "" {
			t.Fatalf("slot %d has no tag", slot)
		}
		if got := KeySlot(tags.clusterProbeKey("redis-cluster-0", slot)); got != slot {
			t.Fatalf("probe key for slot %d (tag %q) hashes to %d", slot, tag, got)
		}
	}
}
