package agent

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// replInfo is INFO replication (plus loading from INFO persistence) as the
// sentinel loop needs it.
type replInfo struct {
	Role       string // roleMaster or roleReplica
	MasterHost string // replicas only
	MasterPort int
	LinkUp     bool // master_link_status:up
	// LinkDownFor is master_link_down_since_seconds while the link is
	// down (0 when not reported, under a second, or -1: never linked).
	LinkDownFor  time.Duration
	ReplID       string
	ReplID2      string
	Offset       int64
	SecondOffset int64
	Loading      bool
	Replicas     []replicaEntry // masters only
}

// replicaEntry is one slaveN line of a master's INFO replication.
type replicaEntry struct {
	Host   string
	Port   int
	State  string
	Offset int64
}

// parseReplInfo reads the fields of INFO output ("key:value" lines, any
// sections). Unknown fields are ignored so newer Redis versions still parse.
func parseReplInfo(text string) (replInfo, error) {
	var r replInfo
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		var err error
		switch {
		case k == "role":
			switch v {
			case "master":
				r.Role = roleMaster
			case "slave", "replica":
				r.Role = roleReplica
			default:
				return r, fmt.Errorf("INFO replication role %q is neither master nor slave", v)
			}
		case k == "master_host":
			r.MasterHost = v
		case k == "master_port":
			r.MasterPort, err = strconv.Atoi(v)
		case k == "master_link_status":
			r.LinkUp = v == "up"
		case k == "master_link_down_since_seconds":
			var secs int64
			secs, err = strconv.ParseInt(v, 10, 64)
			if secs > 0 {
				r.LinkDownFor = time.Duration(secs) * time.Second
			}
		case k == "master_replid":
			r.ReplID = v
		case k == "master_replid2":
			if strings.Trim(v, "0") != "" {
				r.ReplID2 = v
			}
		case k == "master_repl_offset":
			r.Offset, err = strconv.ParseInt(v, 10, 64)
		case k == "second_repl_offset":
			r.SecondOffset, err = strconv.ParseInt(v, 10, 64)
		case k == "loading":
			r.Loading = v == "1"
		case strings.HasPrefix(k, "slave") && strings.Contains(v, "ip="):
			var e replicaEntry
			e, err = parseReplicaEntry(v)
			r.Replicas = append(r.Replicas, e)
		}
		if err != nil {
			return r, fmt.Errorf("INFO field %s=%q: %w", k, v, err)
		}
	}
	if r.Role == "" {
		return r, fmt.Errorf("INFO output has no role field")
	}
	return r, nil
}

// parseReplicaEntry reads "ip=10.0.0.1,port=6379,state=online,offset=42,lag=0".
func parseReplicaEntry(v string) (replicaEntry, error) {
	var e replicaEntry
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
		}
		if err != nil {
			return e, err
		}
	}
	return e, nil
}
