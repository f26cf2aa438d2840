package redisx

import (
	"strconv"
	"strings"
)

// Setting is one redis-server parameter and the value the agent gives it
// with CONFIG SET.
type Setting struct {
	Param, Value string
}

// AnnounceSettings are the names a pod announces that only newer engines
// know, for the engine e reports:
//   - availability-zone (Valkey 8.0 and later): the zone of the pod's
//     node, which clients read to prefer a replica in their own zone;
//     only when zone is known.
//   - cluster-announce-human-nodename (cluster mode; Redis 7.2 and later,
//     every Valkey): the pod's name, shown beside the node ID in CLUSTER
//     NODES' aux fields and in the node's log lines about its peers.
//
// An engine that lacks a parameter refuses CONFIG SET of it (Redis 7.0),
// so it gets none: an unknown engine or version gets nothing. Pure.
func AnnounceSettings(e Engine, cluster bool, zone, podName string) []Setting {
	var out []Setting
	if e.Name == "valkey" && versionAtLeast(e.Version, 8, 0) && zone != "" {
		out = append(out, Setting{"availability-zone", zone})
	}
	humanName := e.Name == "valkey" || e.Name == "redis" && versionAtLeast(e.Version, 7, 2)
	if cluster && humanName && podName != "" {
		out = append(out, Setting{"cluster-announce-human-nodename", podName})
	}
	return out
}

// versionAtLeast: v ("8.0.1", "7.2.4-rc1") is major.minor or later; a
// version it cannot read is not.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
