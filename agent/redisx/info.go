package redisx

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Roles as the agent names them (Redis says "slave" in INFO; adapters map it).
const (
	RoleMaster  = "master"
	RoleReplica = "replica"
)

// ParseInfo reads an INFO or CLUSTER INFO reply ("key:value" lines, any
// sections, "#" section headers) into key/value pairs. It is the one parser
// of that format; ReplInfo interprets it. Unknown fields are kept, so newer
// Redis versions still parse.
func ParseInfo(reply string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(reply, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// ReplInfo is INFO replication (plus loading from INFO persistence and the
// engine from INFO server) as both modes read it.
type ReplInfo struct {
	Role       string // roleMaster or roleReplica
	MasterHost string // replicas only
	MasterPort int
	LinkUp     bool // master_link_status:up
	// LinkDownFor is master_link_down_since_seconds while the link is
	// down (0 when not reported, under a second, or -1: never linked).
	LinkDownFor time.Duration
	// Syncing is master_sync_in_progress:1, a replica's full sync.
	Syncing      bool
	ReplID       string
	ReplID2      string
	Offset       int64
	SecondOffset int64
	Loading      bool
	Replicas     []ReplicaEntry // masters only
	// DataKnown: the reply had INFO persistence and keyspace (the sentinel
	// mode's Replication asks for both), so AOF and Keys below are read.
	DataKnown bool
	AOF       bool  // aof_enabled:1
	Keys      int64 // keys in every database (INFO keyspace dbN:keys=)
	// Engine is from INFO server when the reply has that section; zero
	// when it has not, or names no engine EngineOf can read (informational:
	// it never fails the replication read the HA decisions depend on).
	Engine Engine
	// RunID is INFO server's run_id: a new one means redis-server
	// restarted and lost what CONFIG SET changed at run time.
	RunID string
}

// LinkStatus is master_link_status as Redis says it: "up" or "down" on a
// replica, "" on a master.
func (r ReplInfo) LinkStatus() string {
	switch {
	case r.Role != RoleReplica:
		return ""
	case r.LinkUp:
		return "up"
	default:
		return "down"
	}
}

// ReplicaEntry is one slaveN line of a master's INFO replication.
type ReplicaEntry struct {
	Host   string
	Port   int
	State  string
	Offset int64
	Lag    int64
}

// ParseReplInfo reads INFO output into ReplInfo. It fails on a missing role
// or a field that is not a number where Redis writes one.
func ParseReplInfo(text string) (ReplInfo, error) {
	return replInfoOf(ParseInfo(text))
}

func replInfoOf(info map[string]string) (ReplInfo, error) {
	r := ReplInfo{
		MasterHost: info["master_host"],
		LinkUp:     info["master_link_status"] == "up",
		Syncing:    info["master_sync_in_progress"] == "1",
		ReplID:     info["master_replid"],
		Loading:    info["loading"] == "1",
	}
	switch v, ok := info["role"]; {
	case !ok:
		return r, fmt.Errorf("INFO output has no role field")
	case v == "master":
		r.Role = RoleMaster
	case v == "slave" || v == "replica":
		r.Role = RoleReplica
	default:
		return r, fmt.Errorf("INFO replication role %q is neither master nor slave", v)
	}
	if v := info["master_replid2"]; strings.Trim(v, "0") != "" {
		r.ReplID2 = v
	}
	var secs int64
	for _, f := range []struct {
		key string
		dst any
	}{{"master_port", &r.MasterPort}, {"master_link_down_since_seconds", &secs}, {"master_repl_offset", &r.Offset}, {"second_repl_offset", &r.SecondOffset}} {
		if err := parseNumber(info, f.key, f.dst); err != nil {
			return r, err
		}
	}
	if secs > 0 {
		r.LinkDownFor = time.Duration(secs) * time.Second
	}
	if e, err := EngineOf(info); err == nil {
		r.Engine = e
	}
	r.RunID = info["run_id"]
	if v, ok := info["aof_enabled"]; ok {
		r.DataKnown, r.AOF = true, v == "1"
		keys, err := keyCount(info)
		if err != nil {
			return r, err
		}
		r.Keys = keys
	}
	var err error
	r.Replicas, err = replicaEntries(info)
	return r, err
}

// keyCount adds up the keys of INFO keyspace's "dbN:keys=K,expires=..."
// lines; an empty server lists no database.
func keyCount(info map[string]string) (int64, error) {
	var n int64
	for k, v := range info {
		if !strings.HasPrefix(k, "db") || strings.Trim(k[2:], "0123456789") != "" || k == "db" {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			if c, ok := strings.CutPrefix(f, "keys="); ok {
				x, err := strconv.ParseInt(c, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO keyspace %s=%q: %w", k, v, err)
				}
				n += x
			}
		}
	}
	return n, nil
}

// parseNumber reads info[key], if present, into *dst (an *int or *int64).
func parseNumber(info map[string]string, key string, dst any) error {
	v, ok := info[key]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("INFO field %s=%q: %w", key, v, err)
	}
	switch d := dst.(type) {
	case *int:
		*d = int(n)
	case *int64:
		*d = n
	}
	return nil
}

// replicaEntries reads the slaveN lines in N order.
func replicaEntries(info map[string]string) ([]ReplicaEntry, error) {
	var keys []int
	for k, v := range info {
		n, ok := strings.CutPrefix(k, "slave")
		if i, err := strconv.Atoi(n); ok && err == nil && strings.Contains(v, "ip=") {
			keys = append(keys, i)
		}
	}
	slices.Sort(keys)
	var out []ReplicaEntry
	for _, i := range keys {
		k := "slave" + strconv.Itoa(i)
		e, err := parseReplicaEntry(info[k])
		if err != nil {
			return out, fmt.Errorf("INFO field %s=%q: %w", k, info[k], err)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseReplicaEntry reads "ip=10.0.0.1,port=6379,state=online,offset=42,lag=0".
func parseReplicaEntry(v string) (ReplicaEntry, error) {
	var e ReplicaEntry
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "ip":
			e.Host = val
		case "port":
			e.Port, err = strconv.Atoi(val)
		case "state":
			e.State = val
		case "offset":
			e.Offset, err = strconv.ParseInt(val, 10, 64)
		case "lag":
			e.Lag, err = strconv.ParseInt(val, 10, 64)
		}
		if err != nil {
			return e, err
		}
	}
	return e, nil
}
