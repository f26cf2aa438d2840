package sentinelconf

import (
	"slices"
	"strconv"
	"strings"
)

// Header is the first line of every file this package writes.
const Header = "# Written by redis-ha-agent at every pod start: it owns port, myid, announce, auth and the monitor lines; Sentinel's own state below is kept."

// Changes says what Merge did beyond rewriting the lines it owns, for logs
// and Events. It never holds a password.
type Changes struct {
	// PreviousMaster is the address the file monitored before, set only
	// when it differs from Params.MasterHost/MasterPort (or that is empty).
	PreviousMaster *Addr
	// DroppedMasters are other master names whose lines were removed.
	DroppedMasters   []string
	DroppedSentinels []KnownSentinel
	DroppedReplicas  []Addr
	AddedReplicas    []Addr
}

// Render is the file for p when no file exists yet.
func Render(p Params) ([]byte, error) {
	out, _, err := Merge(nil, p)
	return out, err
}

// Merge renders p into existing, a file Sentinel may have rewritten since
// the last render (nil or empty means there is none). See the package
// documentation for which lines are replaced, kept and dropped. existing is
// never modified; on error nothing should be written.
func Merge(existing []byte, p Params) ([]byte, Changes, error) {
	if err := p.Validate(); err != nil {
		return nil, Changes{}, err
	}
	f, err := Parse(existing)
	if err != nil {
		return nil, Changes{}, err
	}
	out, ch := merge(f, p)
	return out, ch, nil
}

// ownedGlobal are directives Merge always writes itself (or, for auth
// lines without a password, leaves out).
var ownedGlobal = map[string]bool{
	"port":                        true,
	"requirepass":                 true,
	"sentinel myid":               true,
	"sentinel resolve-hostnames":  true,
	"sentinel announce-hostnames": true,
	"sentinel announce-ip":        true,
	"sentinel announce-port":      true,
	"sentinel sentinel-pass":      true,
}

// ownedPerMaster are the per-master directives Merge writes for its master.
var ownedPerMaster = map[string]bool{
	"sentinel monitor":                 true,
	"sentinel down-after-milliseconds": true,
	"sentinel failover-timeout":        true,
	"sentinel parallel-syncs":          true,
	"sentinel auth-pass":               true,
}

func merge(f *File, p Params) ([]byte, Changes) {
	var ch Changes
	master := Addr{Host: p.MasterHost, Port: p.MasterPort}
	unknown := p.MasterHost == ""
	old, had := f.Master(p.MasterName)
	if had && (unknown || !sameAddr(old.Addr, master)) {
		prev := old.Addr
		ch.PreviousMaster = &prev
	}
	peerID := make(map[string]string, len(p.Peers))
	for _, peer := range p.Peers {
		peerID[hostKey(peer.Host)] = strings.ToLower(peer.MyID)
	}
	exists := func(host string) bool {
		_, ok := peerID[hostKey(host)]
		return ok || sameHost(host, p.AnnounceHost)
	}

	var kept []string
	seen := map[string]bool{}
	stateEnd := -1 // index in kept after the last known-* or epoch line of our master
	for _, l := range f.Lines {
		d := l.Directive()
		switch {
		case d == "":
			if l.Text != Header {
				kept = append(kept, l.Text)
			}
			continue
		case ownedGlobal[d]:
			continue
		case d == "user" && len(l.Args) > 1 && l.Args[1] == "default":
			// Sentinel loads user lines after requirepass, so a rewritten
			// "user default on #<old hash>" would keep an old password
			// alive; Sentinel writes it again from requirepass.
			continue
		}
		if strings.HasPrefix(d, "sentinel ") && sentinelForms[strings.TrimPrefix(d, "sentinel ")].min >= 2 {
			name := l.Args[2]
			if name != p.MasterName {
				// One file, one master: a renamed master would otherwise
				// stay monitored under its old name and fail over twice.
				if !seen["master "+name] {
					seen["master "+name] = true
					ch.DroppedMasters = append(ch.DroppedMasters, name)
				}
				continue
			}
			// Without a monitor line Sentinel refuses every other line
			// about the master, epochs included.
			if ownedPerMaster[d] || unknown {
				continue
			}
			a := l.Args[3:]
			switch d {
			case "sentinel known-replica", "sentinel known-slave":
				r := addrOf(a[0], a[1])
				key := "replica " + hostKey(r.Host) + " " + strconv.Itoa(r.Port)
				// A replica at the master's address would have Sentinel
				// try to make the master a replica of itself; a repeated
				// one makes Sentinel 7.0 refuse the file ("Duplicate
				// hostname and port for replica").
				if !exists(r.Host) || sameAddr(r, master) || seen[key] {
					ch.DroppedReplicas = append(ch.DroppedReplicas, r)
					continue
				}
				seen[key] = true
			case "sentinel known-sentinel":
				ks := KnownSentinel{Addr: addrOf(a[0], a[1])}
				if len(a) > 2 {
					ks.RunID = a[2]
				}
				id, live := peerID[hostKey(ks.Host)]
				key := "sentinel " + strings.ToLower(ks.RunID)
				// A live host with another runid is a Sentinel that ran
				// there before (a random id from before the agent, or
				// another pod's); Sentinel would wait for it forever.
				if !live || !strings.EqualFold(ks.RunID, id) || seen[key] {
					ch.DroppedSentinels = append(ch.DroppedSentinels, ks)
					continue
				}
				seen[key] = true
			}
			kept = append(kept, l.Text)
			stateEnd = len(kept)
			continue
		}
		kept = append(kept, l.Text)
	}

	// Sentinel itself, on +switch-master, keeps the old master as a replica
	// of the new one, so that when it comes back as a master it is turned
	// into a replica (+convert-to-slave) instead of taking writes. Do the
	// same when the master changes here, if that pod still exists.
	if prev := ch.PreviousMaster; prev != nil && !unknown && exists(prev.Host) && !seen["replica "+hostKey(prev.Host)+" "+strconv.Itoa(prev.Port)] {
		line := joinArgs("sentinel", "known-replica", p.MasterName, prev.Host, strconv.Itoa(prev.Port))
		if stateEnd < 0 {
			stateEnd = len(kept)
		}
		kept = slices.Insert(kept, stateEnd, line)
		ch.AddedReplicas = append(ch.AddedReplicas, *prev)
	}

	var b strings.Builder
	for _, l := range ownedLines(p) {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	blank := true // no blank line right after our block: one is added below
	for _, l := range kept {
		if l == "" {
			blank = true
			continue
		}
		if blank {
			b.WriteByte('\n')
			blank = false
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return []byte(b.String()), ch
}

// ownedLines are the lines Merge always writes, in an order Sentinel can
// load: resolve-hostnames before a monitor line that names a host, the
// monitor before every other line about its master.
func ownedLines(p Params) []string {
	ms := func(d interface{ Milliseconds() int64 }) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	name := p.MasterName
	lines := []string{
		Header,
		joinArgs("port", strconv.Itoa(p.Port)),
		joinArgs("sentinel", "myid", strings.ToLower(p.MyID)),
		"sentinel resolve-hostnames yes",
		"sentinel announce-hostnames yes",
		// Quoted always, as Sentinel writes it, so its rewrite and ours agree.
		"sentinel announce-ip " + `"` + p.AnnounceHost + `"`,
		joinArgs("sentinel", "announce-port", strconv.Itoa(p.Port)),
	}
	if p.MasterHost != "" {
		lines = append(lines,
			joinArgs("sentinel", "monitor", name, p.MasterHost, strconv.Itoa(p.MasterPort), strconv.Itoa(p.Quorum)),
			joinArgs("sentinel", "down-after-milliseconds", name, ms(p.DownAfter)),
			joinArgs("sentinel", "failover-timeout", name, ms(p.FailoverTimeout)),
			joinArgs("sentinel", "parallel-syncs", name, strconv.Itoa(p.ParallelSyncs)),
		)
		if p.Password != "" {
			lines = append(lines, joinArgs("sentinel", "auth-pass", name, p.Password))
		}
	}
	if p.Password != "" {
		lines = append(lines, joinArgs("requirepass", p.Password), joinArgs("sentinel", "sentinel-pass", p.Password))
	}
	return lines
}

func hostKey(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }
