package workload

import (
	"strconv"
	"strings"
)

// Slots is the number of Redis Cluster hash slots.
const Slots = 16384

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0, no
// reflection), the checksum Redis Cluster hashes keys with.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// KeySlot is the hash slot Redis Cluster stores key in: the CRC16 of the
// key, or of its hash tag (the text between the first "{" and the next "}",
// when that is not empty), modulo 16384 — what CLUSTER KEYSLOT answers.
func KeySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return int(crc16([]byte(key)) % Slots)
}

// slotTags holds, for every slot, a hash tag that lands in it.
type slotTags [Slots]string

// newSlotTags finds a tag for every slot by hashing decimal strings in
// order until each slot has one (about 1.6e5 of them; a few milliseconds).
func newSlotTags() *slotTags {
	var t slotTags
	left := Slots
	for i := 0; left > 0; i++ {
		tag := strconv.Itoa(i)
		if s := KeySlot(tag); t[s] == "" {
			t[s] = tag
			left--
		}
	}
	return &t
}

// clusterProbeKey is pod's probe key in slot: its own key, so two pods'
// probes never meet, and hashed to a slot the pod claims, so a master that
// serves the slot must take it and any other node answers MOVED.
func (t *slotTags) clusterProbeKey(pod string, slot int) string {
	return "redis-ha-e2e-probe:{" + t[slot] + "}:" + pod
}
