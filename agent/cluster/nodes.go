package cluster

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
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

// parseClusterNodes parses the reply of CLUSTER NODES with nodesconf's
// parser: Redis writes the reply and nodes.conf with the same function, the
// reply only without the aux fields after the hostname and the vars line.
func parseClusterNodes(reply string) ([]clusterNode, error) {
	if reply == "" {
		return nil, nil
	}
	if !strings.HasSuffix(reply, "\n") {
		reply += "\n" // a live reply is never cut short
	}
	f, err := nodesconf.Parse([]byte(reply))
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES reply: %w", err)
	}
	out := make([]clusterNode, 0, len(f.Nodes))
	for _, n := range f.Nodes {
		out = append(out, clusterNodeOf(n))
	}
	return out, nil
}

func clusterNodeOf(n *nodesconf.Node) clusterNode {
	c := clusterNode{
		ID: n.ID, IP: n.Addr.IP, Port: n.Addr.Port, Hostname: n.Addr.Hostname,
		Flags: n.Flags, MasterID: n.MasterID, Connected: n.Link == "connected",
	}
	for _, a := range n.Addr.Aux {
		if a.Key == "hostname" && c.Hostname == "" {
			c.Hostname = a.Value
		}
	}
	for _, r := range n.Slots {
		c.Slots = append(c.Slots, slotRange{r.Start, r.End})
	}
	for _, mv := range n.Moves {
		open := &c.Migrating
		if mv.Importing {
			open = &c.Importing
		}
		if *open == nil {
			*open = map[int]string{}
		}
		(*open)[mv.Slot] = mv.NodeID
	}
	return c
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
