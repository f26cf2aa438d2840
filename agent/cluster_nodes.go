package agent

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// slotRange is an inclusive range of hash slots.
type slotRange struct{ From, To int }

func (r slotRange) len() int { return r.To - r.From + 1 }

func (r slotRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// clusterNode is one line of CLUSTER NODES: how one node sees one node.
type clusterNode struct {
	ID        string
	IP        string // empty when the node has no address yet (noaddr)
	Port      int
	Hostname  string // cluster-announce-hostname, the pod FQDN in this project
	Flags     []string
	MasterID  string // the master a replica follows; empty for masters
	Connected bool   // link-state
	Slots     []slotRange
	Migrating map[int]string // slot -> node the slot is moving to
	Importing map[int]string // slot -> node the slot is coming from
}

func (n clusterNode) has(flag string) bool {
	for _, f := range n.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

func (n clusterNode) isMaster() bool  { return n.has("master") }
func (n clusterNode) isReplica() bool { return n.has("slave") }

// failing says whether the node is unusable in the view it comes from:
// judged failed, unreachable, without address, or not yet through the
// handshake.
func (n clusterNode) failing() bool {
	return n.has("fail") || n.has("fail?") || n.has("noaddr") || n.has("handshake")
}

func (n clusterNode) addr() string {
	if n.IP == "" {
		return ""
	}
	return net.JoinHostPort(n.IP, strconv.Itoa(n.Port))
}

func (n clusterNode) slotCount() int {
	c := 0
	for _, r := range n.Slots {
		c += r.len()
	}
	return c
}

// parseClusterNodes parses the reply of CLUSTER NODES (Redis 7.0 and later:
// ip:port@cport[,hostname[,aux=value...]]). nodes.conf has its own parser in
// package nodesconf; this one reads the live reply, which has no vars line.
func parseClusterNodes(reply string) ([]clusterNode, error) {
	var out []clusterNode
	for i, line := range strings.Split(reply, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n, err := parseClusterNodeLine(line)
		if err != nil {
			return nil, fmt.Errorf("CLUSTER NODES line %d %q: %w", i+1, line, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseClusterNodeLine(line string) (clusterNode, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return clusterNode{}, fmt.Errorf("has %d fields, want at least 8", len(f))
	}
	n := clusterNode{ID: f[0], Flags: strings.Split(f[2], ","), Connected: f[7] == "connected"}
	if f[3] != "-" {
		n.MasterID = f[3]
	}
	addr, aux, _ := strings.Cut(f[1], ",")
	for i, a := range strings.Split(aux, ",") {
		if k, v, ok := strings.Cut(a, "="); ok {
			if k == "hostname" {
				n.Hostname = v
			}
		} else if i == 0 {
			n.Hostname = a
		}
	}
	hostPort, _, _ := strings.Cut(addr, "@")
	colon := strings.LastIndexByte(hostPort, ':')
	if colon < 0 {
		return clusterNode{}, fmt.Errorf("address %q has no port", f[1])
	}
	port, err := strconv.Atoi(hostPort[colon+1:])
	if err != nil {
		return clusterNode{}, fmt.Errorf("address %q: port: %w", f[1], err)
	}
	n.IP, n.Port = strings.Trim(hostPort[:colon], "[]"), port
	for _, s := range f[8:] {
		if strings.HasPrefix(s, "[") {
			if err := n.parseOpenSlot(s); err != nil {
				return clusterNode{}, err
			}
			continue
		}
		r, err := parseSlotRange(s)
		if err != nil {
			return clusterNode{}, err
		}
		n.Slots = append(n.Slots, r)
	}
	return n, nil
}

// parseOpenSlot reads "[slot->-id]" (migrating) or "[slot-<-id]" (importing).
func (n *clusterNode) parseOpenSlot(s string) error {
	body := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if slot, id, ok := strings.Cut(body, "->-"); ok {
		v, err := strconv.Atoi(slot)
		if err != nil {
			return fmt.Errorf("open slot %q: %w", s, err)
		}
		if n.Migrating == nil {
			n.Migrating = map[int]string{}
		}
		n.Migrating[v] = id
		return nil
	}
	if slot, id, ok := strings.Cut(body, "-<-"); ok {
		v, err := strconv.Atoi(slot)
		if err != nil {
			return fmt.Errorf("open slot %q: %w", s, err)
		}
		if n.Importing == nil {
			n.Importing = map[int]string{}
		}
		n.Importing[v] = id
		return nil
	}
	return fmt.Errorf("open slot %q is neither [slot->-id] nor [slot-<-id]", s)
}

func parseSlotRange(s string) (slotRange, error) {
	a, b, isRange := strings.Cut(s, "-")
	from, err := strconv.Atoi(a)
	if err != nil {
		return slotRange{}, fmt.Errorf("slot %q: %w", s, err)
	}
	to := from
	if isRange {
		if to, err = strconv.Atoi(b); err != nil {
			return slotRange{}, fmt.Errorf("slot range %q: %w", s, err)
		}
	}
	if from < 0 || to >= clusterSlots || from > to {
		return slotRange{}, fmt.Errorf("slot range %q is outside 0-%d", s, clusterSlots-1)
	}
	return slotRange{from, to}, nil
}

// myself is the line flagged myself.
func myself(view []clusterNode) (clusterNode, bool) {
	for _, n := range view {
		if n.has("myself") {
			return n, true
		}
	}
	return clusterNode{}, false
}

// rangesOf compresses a set of slots into sorted inclusive ranges.
func rangesOf(slots []int) []slotRange {
	s := append([]int(nil), slots...)
	sort.Ints(s)
	var out []slotRange
	for _, v := range s {
		if k := len(out); k > 0 && out[k-1].To+1 == v {
			out[k-1].To = v
			continue
		} else if k > 0 && out[k-1].To == v {
			continue
		}
		out = append(out, slotRange{v, v})
	}
	return out
}
