package nodesconf

import (
	"net"
	"slices"
	"strconv"
	"strings"
)

// File is a parsed nodes.conf. Nodes and the epochs are views of the lines;
// Bytes writes the lines back as they were read, except that a node whose
// Addr was changed gets its address field rendered anew.
type File struct {
	// Nodes are the node lines in file order.
	Nodes []*Node
	// CurrentEpoch and LastVoteEpoch come from the vars line (0 if absent).
	CurrentEpoch, LastVoteEpoch uint64

	lines []line
	size  int
}

// line is one line of the file without its newline. node is nil for the
// vars line and for blank lines (Redis skips blank lines; an interrupted
// in-place save of Redis < 7 leaves newline padding).
type line struct {
	raw  string
	node *Node
}

// Node is one node line.
type Node struct {
	ID   string
	Addr Addr
	// Flags as written, e.g. ["myself", "master"] or ["slave", "fail"].
	Flags []string
	// MasterID is the master's node ID for a replica, "" for "-".
	MasterID    string
	PingSent    uint64
	PongRecv    uint64
	ConfigEpoch uint64
	// Link is "connected" or "disconnected".
	Link  string
	Slots []SlotRange
	// Moves are the importing/migrating entries; Redis writes them on the
	// myself line only.
	Moves []SlotMove
	// Line is the 1-based line number in the parsed file.
	Line int

	orig      Addr // Addr as parsed, to see whether it changed
	addrStart int  // byte offsets of the address field in the raw line
	addrEnd   int
	isMyself  bool
	hasCPort  bool
	hostComma bool // "ip:port@cport," with nothing after: keep the comma
}

// Addr is the second field of a node line.
type Addr struct {
	// IP as Redis wrote it; "" when Redis does not know it (":0@0").
	// It may be a DNS name when cluster-announce-ip was set to one.
	IP    string
	Port  int
	CPort int // cluster bus port; Port+10000 when the file has none
	// Hostname is cluster-announce-hostname (Redis 7.0+), "" if none.
	Hostname string
	// Aux are the key=value fields Redis 7.2+ writes after the hostname,
	// in file order.
	Aux []Aux
}

// Aux is one key=value field of a 7.2+ address.
type Aux struct{ Key, Value string }

// SlotRange is an inclusive range of hash slots; a single slot has Start == End.
type SlotRange struct{ Start, End int }

// SlotMove is a slot being migrated to (Importing false) or imported from
// (Importing true) another node.
type SlotMove struct {
	Slot      int
	Importing bool
	NodeID    string
}

// HostPort renders the address as host:port for messages, with IPv6 in
// brackets. Not the nodes.conf form.
func (a Addr) HostPort() string { return net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) }

// Myself reports whether this is the line of the node that owns the file.
func (n *Node) Myself() bool { return n.isMyself }

// HasFlag reports whether the node carries flag (e.g. "fail", "noaddr").
func (n *Node) HasFlag(flag string) bool {
	return slices.ContainsFunc(n.Flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

// Myself returns the node that owns the file, nil for an empty file.
func (f *File) Myself() *Node {
	for _, n := range f.Nodes {
		if n.isMyself {
			return n
		}
	}
	return nil
}

// Bytes renders the file. Lines are written exactly as read; only the address
// field of a node whose Addr differs from what was parsed is rendered anew.
func (f *File) Bytes() []byte {
	b := make([]byte, 0, f.size+64)
	for _, l := range f.lines {
		n := l.node
		if n == nil || n.Addr.equal(n.orig) {
			b = append(b, l.raw...)
		} else {
			b = append(b, l.raw[:n.addrStart]...)
			b = n.appendAddr(b)
			b = append(b, l.raw[n.addrEnd:]...)
		}
		b = append(b, '\n')
	}
	return b
}

// appendAddr renders n.Addr the way Redis writes it: no brackets around
// IPv6, "@cport" only if the file had it, the hostname slot (possibly empty)
// whenever a hostname or aux fields follow.
func (n *Node) appendAddr(b []byte) []byte {
	a := n.Addr
	b = append(b, a.IP...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(a.Port), 10)
	if n.hasCPort {
		b = append(b, '@')
		b = strconv.AppendInt(b, int64(a.CPort), 10)
	}
	if a.Hostname != "" || len(a.Aux) > 0 || n.hostComma {
		b = append(b, ',')
		b = append(b, a.Hostname...)
	}
	for _, x := range a.Aux {
		b = append(b, ',')
		b = append(b, x.Key...)
		b = append(b, '=')
		b = append(b, x.Value...)
	}
	return b
}

func (a Addr) equal(o Addr) bool {
	return a.IP == o.IP && a.Port == o.Port && a.CPort == o.CPort &&
		a.Hostname == o.Hostname && slices.Equal(a.Aux, o.Aux)
}
