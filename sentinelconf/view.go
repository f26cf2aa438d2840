package sentinelconf

import (
	"net"
	"strconv"
	"strings"
)

// Addr is a host and port as Sentinel writes them.
type Addr struct {
	Host string
	Port int
}

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// sameAddr compares as DNS does: host names are case-insensitive.
func sameAddr(a, b Addr) bool { return a.Port == b.Port && sameHost(a.Host, b.Host) }

func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// KnownSentinel is a peer Sentinel the file remembers.
type KnownSentinel struct {
	Addr
	RunID string // its myid; "" when the line has none
}

// Master is what the file says about one monitored master.
type Master struct {
	Name           string
	Addr           Addr
	Quorum         int
	ConfigEpoch    uint64 // epoch of the configuration (master address) Sentinel last accepted
	LeaderEpoch    uint64 // last epoch in which this Sentinel voted for a failover leader
	KnownReplicas  []Addr
	KnownSentinels []KnownSentinel
}

// MyID is the file's sentinel myid, "" when it has none yet.
func (f *File) MyID() string {
	id := ""
	for _, l := range f.Lines {
		if l.Directive() == "sentinel myid" {
			id = l.Args[2]
		}
	}
	return id
}

// CurrentEpoch is the file's sentinel current-epoch, 0 when it has none.
func (f *File) CurrentEpoch() uint64 {
	var e uint64
	for _, l := range f.Lines {
		if l.Directive() == "sentinel current-epoch" {
			e, _ = strconv.ParseUint(l.Args[2], 10, 64) // checked by Parse
		}
	}
	return e
}

// Masters lists the names of the monitored masters in file order.
func (f *File) Masters() []string {
	var names []string
	for _, l := range f.Lines {
		if l.Directive() == "sentinel monitor" {
			names = append(names, l.Args[2])
		}
	}
	return names
}

// Master is what the file says about the master with that name; false when
// the file has no sentinel monitor line for it. Like Sentinel, a later line
// wins over an earlier one.
func (f *File) Master(name string) (Master, bool) {
	m := Master{Name: name}
	found := false
	for _, l := range f.Lines {
		d := l.Directive()
		if !strings.HasPrefix(d, "sentinel ") || len(l.Args) < 3 || l.Args[2] != name {
			continue
		}
		a := l.Args[3:]
		switch d {
		case "sentinel monitor":
			found = true
			m.Addr = addrOf(a[0], a[1])
			m.Quorum, _ = strconv.Atoi(a[2])
		case "sentinel config-epoch":
			m.ConfigEpoch, _ = strconv.ParseUint(a[0], 10, 64)
		case "sentinel leader-epoch":
			m.LeaderEpoch, _ = strconv.ParseUint(a[0], 10, 64)
		case "sentinel known-replica", "sentinel known-slave":
			m.KnownReplicas = append(m.KnownReplicas, addrOf(a[0], a[1]))
		case "sentinel known-sentinel":
			ks := KnownSentinel{Addr: addrOf(a[0], a[1])}
			if len(a) > 2 {
				ks.RunID = a[2]
			}
			m.KnownSentinels = append(m.KnownSentinels, ks)
		}
	}
	return m, found
}

func addrOf(host, port string) Addr {
	p, _ := strconv.Atoi(port) // checked by Parse
	return Addr{Host: host, Port: p}
}
