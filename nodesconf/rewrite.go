package nodesconf

import (
	"errors"
	"net/netip"
)

// Resolver returns the address hostname resolves to now. old is the address
// the file has for the node (invalid if none), so that a resolver can prefer
// the same address family.
type Resolver func(hostname string, old netip.Addr) (netip.Addr, error)

// Result says what Rewrite changed and what it could not.
type Result struct {
	// Changes lists every node whose address was rewritten, in file order.
	Changes []Change
	// Unresolved lists peers whose hostname did not resolve. They keep
	// their address; gossip or a CLUSTER MEET has to fix them later.
	Unresolved []Unresolved
	// Unnamed lists peers the file gives no hostname for (Redis < 7.0 or no
	// cluster-announce-hostname), so their address cannot be refreshed.
	Unnamed []string
	// Ghosts lists failed nodes that share their hostname with a live node:
	// a pod that came back with a new node ID (lost its volume). They keep
	// their address; Redis marks them noaddr when another node answers
	// there. Remove them with CLUSTER FORGET.
	Ghosts []string
}

// Change is one rewritten address.
type Change struct {
	ID       string
	Hostname string // "" for myself without a hostname
	Myself   bool
	Old, New netip.AddrPort
}

// Unresolved is a peer that keeps its address because its name did not resolve.
type Unresolved struct {
	ID       string
	Hostname string
	Addr     netip.AddrPort // the address it keeps
	Err      error
}

// Rewrite points myself at podIP and every peer that carries a hostname at
// the address resolve returns for it now.
//
// It works in two phases: every new address is computed from the table as
// read, then all are applied. Rewriting in place while resolving would let a
// pod that took over another pod's old IP be matched as that other pod.
// If two different nodes would end up at the same host:port because of the
// rewrite, Rewrite returns a *ConflictError and changes nothing. A node
// without an IP (":0@0", Redis never learnt it) is left alone, and so is one
// announced by DNS name (cluster-announce-ip set to a name): names do not
// go stale. Failed old node IDs of a live pod are left alone too (Ghosts).
func (f *File) Rewrite(podIP netip.Addr, resolve Resolver) (Result, error) {
	if !podIP.IsValid() {
		return Result{}, errors.New("rewrite nodes.conf: no pod IP given for myself")
	}
	var res Result
	// Phase 1: decide every node's next IP from the table as read.
	// Parse accepted only IPs and DNS names, so an invalid cur means "no
	// address" or "a name".
	next := make([]netip.Addr, len(f.Nodes))
	ghost := f.ghosts()
	for i, n := range f.Nodes {
		cur, _ := netip.ParseAddr(n.Addr.IP)
		next[i] = cur
		switch {
		case !cur.IsValid():
		case ghost[i]:
			res.Ghosts = append(res.Ghosts, n.ID)
		case n.isMyself:
			next[i] = podIP
		case n.Addr.Hostname == "":
			res.Unnamed = append(res.Unnamed, n.ID)
		default:
			ip, err := resolve(n.Addr.Hostname, cur)
			if err != nil || !ip.IsValid() {
				res.Unresolved = append(res.Unresolved, Unresolved{ID: n.ID, Hostname: n.Addr.Hostname, Addr: netip.AddrPortFrom(cur, uint16(n.Addr.Port)), Err: err})
				continue
			}
			next[i] = ip
		}
	}
	if err := f.conflict(next, ghost); err != nil {
		return Result{}, err
	}
	// Phase 2: apply. Same address in another notation is no change, so a
	// file is never reformatted for nothing.
	for i, n := range f.Nodes {
		cur, _ := netip.ParseAddr(n.Addr.IP)
		if next[i] == cur {
			continue
		}
		n.Addr.IP = next[i].String()
		res.Changes = append(res.Changes, Change{
			ID: n.ID, Hostname: n.Addr.Hostname, Myself: n.isMyself,
			Old: netip.AddrPortFrom(cur, uint16(n.Addr.Port)),
			New: netip.AddrPortFrom(next[i], uint16(n.Addr.Port)),
		})
	}
	return res, nil
}

// conflict finds two nodes sharing an address where at least one of them
// got it from this rewrite. Duplicates already in the file (a replaced node
// still listed as failed at its old address) are Redis's business.
func (f *File) conflict(next []netip.Addr, ghost []bool) error {
	at := make(map[netip.AddrPort]int, len(f.Nodes))
	moved := func(i int) bool {
		cur, _ := netip.ParseAddr(f.Nodes[i].Addr.IP)
		return next[i] != cur
	}
	for i, n := range f.Nodes {
		if !next[i].IsValid() || ghost[i] {
			continue
		}
		key := netip.AddrPortFrom(next[i], uint16(n.Addr.Port))
		j, dup := at[key]
		if !dup {
			at[key] = i
			continue
		}
		if moved(i) || moved(j) {
			return &ConflictError{Addr: key.String(), Nodes: []string{describe(f.Nodes[j]), describe(n)}}
		}
	}
	return nil
}

// ghosts marks nodes flagged fail or noaddr whose hostname also belongs to
// myself or to a node without those flags: the live one is the pod, the
// failed one an old node ID of it. Two live nodes with one hostname are not
// guessed at; the conflict check stops them.
func (f *File) ghosts() []bool {
	dead := func(n *Node) bool { return !n.isMyself && (n.HasFlag("fail") || n.HasFlag("noaddr")) }
	live := make(map[string]bool, len(f.Nodes))
	for _, n := range f.Nodes {
		if n.Addr.Hostname != "" && !dead(n) {
			live[n.Addr.Hostname] = true
		}
	}
	out := make([]bool, len(f.Nodes))
	for i, n := range f.Nodes {
		out[i] = dead(n) && live[n.Addr.Hostname]
	}
	return out
}

func describe(n *Node) string {
	if n.Addr.Hostname == "" {
		return n.ID
	}
	return n.ID + " (" + n.Addr.Hostname + ")"
}
