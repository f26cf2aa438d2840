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
	// Warnings are the existing file's lines Parse kept without
	// understanding them (File.Warnings): not changes, but what the caller
	// should log, since the engine may refuse them at start. Merge keeps
	// them in place, or drops them with their master when their first
	// argument names a master whose lines are dropped.
	Warnings []Warning
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
	"tls-port":                    true,
	"tls-cert-file":               true,
	"tls-key-file":                true,
	"tls-ca-cert-file":            true,
	"tls-auth-clients":            true,
	"tls-replication":             true,
	"requirepass":                 true,
	"sentinel myid":               true,
	"sentinel resolve-hostnames":  true,
	"sentinel announce-hostnames": true,
	"sentinel announce-ip":        true,
	"sentinel announce-port":      true,
	"sentinel sentinel-pass":      true,
	"sentinel sentinel-user":      true,
}

// ownedPerMaster are the per-master directives Merge writes for its master.
var ownedPerMaster = map[string]bool{
	"sentinel monitor":                 true,
	"sentinel down-after-milliseconds": true,
	"sentinel failover-timeout":        true,
	"sentinel parallel-syncs":          true,
	"sentinel auth-pass":               true,
	"sentinel auth-user":               true,
}

func merge(f *File, p Params) ([]byte, Changes) {
	m := newMerger(f, p)
	for _, l := range f.Lines {
		m.line(l)
	}
	m.keepPreviousMaster()
	m.ch.Warnings = f.Warnings
	return m.render(), m.ch
}

// merger is one Merge: what it keeps of the existing file, and what it
// changed.
type merger struct {
	p       Params
	master  Addr
	unknown bool              // no master: no monitor, no per-master lines
	peerID  map[string]string // hostKey -> myid of the pods that exist
	// monitored are the master names of the file's monitor lines and
	// Params.MasterName.
	monitored map[string]bool
	seen      map[string]bool
	kept      []string
	// stateEnd is the index in kept after the last known-* or epoch line
	// of our master; -1 before one.
	stateEnd int
	ch       Changes
}

func newMerger(f *File, p Params) *merger {
	m := &merger{p: p, master: Addr{Host: p.MasterHost, Port: p.MasterPort}, unknown: p.MasterHost == "",
		peerID: make(map[string]string, len(p.Peers)), seen: map[string]bool{}, stateEnd: -1,
		monitored: map[string]bool{p.MasterName: true}}
	for _, name := range f.Masters() {
		m.monitored[name] = true
	}
	if old, had := f.Master(p.MasterName); had && (m.unknown || !sameAddr(old.Addr, m.master)) {
		prev := old.Addr
		m.ch.PreviousMaster = &prev
	}
	for _, peer := range p.Peers {
		m.peerID[hostKey(peer.Host)] = strings.ToLower(peer.MyID)
	}
	return m
}

// ownsUser: Params.Users defines the user name.
func (m *merger) ownsUser(name string) bool {
	for _, u := range m.p.Users {
		if f := strings.Fields(u); len(f) > 1 && f[1] == name {
			return true
		}
	}
	return false
}

// exists: host is a pod that exists now (a peer or this one).
func (m *merger) exists(host string) bool {
	_, ok := m.peerID[hostKey(host)]
	return ok || sameHost(host, m.p.AnnounceHost)
}

// line keeps or drops one line of the existing file.
func (m *merger) line(l Line) {
	d := l.Directive()
	switch {
	case d == "":
		// "# ??? " marks a line Sentinel's CONFIG REWRITE could not parse
		// and commented out, one more at every rewrite: Valkey 8.1.1 does
		// it to the requirepass it wrote itself, so they hold old
		// passwords, and Sentinel ignores them anyway.
		if l.Text != Header && !strings.HasPrefix(l.Text, "# ??? ") {
			m.kept = append(m.kept, l.Text)
		}
		return
	case ownedGlobal[d]:
		return
	case d == "user" && len(l.Args) > 1 && l.Args[1] == "default":
		// Sentinel loads user lines after requirepass, so a rewritten
		// "user default on #<old hash>" would keep an old password
		// alive; Sentinel writes it again from requirepass.
		return
	case d == "user" && len(l.Args) > 1 && m.ownsUser(l.Args[1]):
		// Params.Users replaces it (Sentinel's rewrite of it holds
		// password hashes the rotation may have dropped since).
		return
	}
	if m.aboutMaster(l, d) {
		m.masterLine(l, d)
		return
	}
	m.kept = append(m.kept, l.Text)
}

// aboutMaster: the line is about one master. A sentinel directive this
// package does not know (a newer engine's) is taken to be one when its
// first argument names a monitored master: Sentinel refuses a per-master
// line whose master has no monitor ("No such master with specified name"),
// so it must go with its master's other lines.
func (m *merger) aboutMaster(l Line, d string) bool {
	sub, ok := strings.CutPrefix(d, "sentinel ")
	if !ok {
		return false
	}
	if form, known := sentinelForms[sub]; known {
		return form.min >= 2
	}
	return len(l.Args) >= 3 && m.monitored[l.Args[2]]
}

// masterLine keeps or drops a line about a master.
func (m *merger) masterLine(l Line, d string) {
	name := l.Args[2]
	if name != m.p.MasterName {
		// One file, one master: a renamed master would otherwise
		// stay monitored under its old name and fail over twice.
		if !m.seen["master "+name] {
			m.seen["master "+name] = true
			m.ch.DroppedMasters = append(m.ch.DroppedMasters, name)
		}
		return
	}
	// Without a monitor line Sentinel refuses every other line
	// about the master, epochs included.
	if ownedPerMaster[d] || m.unknown || !m.keepState(d, l.Args[3:]) {
		return
	}
	m.kept = append(m.kept, l.Text)
	m.stateEnd = len(m.kept)
}

// keepState says whether a known-replica or known-sentinel line (args after
// the master name) is kept, recording a dropped one; other lines are kept.
func (m *merger) keepState(d string, a []string) bool {
	switch d {
	case "sentinel known-replica", "sentinel known-slave":
		r := addrOf(a[0], a[1])
		key := "replica " + hostKey(r.Host) + " " + strconv.Itoa(r.Port)
		// A replica at the master's address would have Sentinel
		// try to make the master a replica of itself; a repeated
		// one makes Sentinel 7.0 refuse the file ("Duplicate
		// hostname and port for replica").
		if !m.exists(r.Host) || sameAddr(r, m.master) || m.seen[key] {
			m.ch.DroppedReplicas = append(m.ch.DroppedReplicas, r)
			return false
		}
		m.seen[key] = true
	case "sentinel known-sentinel":
		ks := KnownSentinel{Addr: addrOf(a[0], a[1])}
		if len(a) > 2 {
			ks.RunID = a[2]
		}
		id, live := m.peerID[hostKey(ks.Host)]
		key := "sentinel " + strings.ToLower(ks.RunID)
		// A live host with another runid is a Sentinel that ran
		// there before (a random id from before the agent, or
		// another pod's); Sentinel would wait for it forever.
		if !live || !strings.EqualFold(ks.RunID, id) || m.seen[key] {
			m.ch.DroppedSentinels = append(m.ch.DroppedSentinels, ks)
			return false
		}
		m.seen[key] = true
	}
	return true
}

// keepPreviousMaster: Sentinel itself, on +switch-master, keeps the old
// master as a replica of the new one, so that when it comes back as a
// master it is turned into a replica (+convert-to-slave) instead of taking
// writes. Do the same when the master changes here, if that pod still
// exists.
func (m *merger) keepPreviousMaster() {
	prev := m.ch.PreviousMaster
	if prev == nil || m.unknown || !m.exists(prev.Host) || m.seen["replica "+hostKey(prev.Host)+" "+strconv.Itoa(prev.Port)] {
		return
	}
	line := joinArgs("sentinel", "known-replica", m.p.MasterName, prev.Host, strconv.Itoa(prev.Port))
	if m.stateEnd < 0 {
		m.stateEnd = len(m.kept)
	}
	m.kept = slices.Insert(m.kept, m.stateEnd, line)
	m.ch.AddedReplicas = append(m.ch.AddedReplicas, *prev)
}

// render writes the owned lines, then the kept ones with runs of blank
// lines folded into one.
func (m *merger) render() []byte {
	var b strings.Builder
	for _, l := range ownedLines(m.p) {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	blank := true // no blank line right after our block: one is added below
	for _, l := range m.kept {
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
	return []byte(b.String())
}

// ownedLines are the lines Merge always writes, in an order Sentinel can
// load: resolve-hostnames before a monitor line that names a host, the
// monitor before every other line about its master.
func ownedLines(p Params) []string {
	ms := func(d interface{ Milliseconds() int64 }) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	name := p.MasterName
	lines := []string{
		Header,
	}
	lines = append(lines, portLines(p)...)
	lines = append(lines,
		joinArgs("sentinel", "myid", strings.ToLower(p.MyID)),
		"sentinel resolve-hostnames yes",
		"sentinel announce-hostnames yes",
		// Quoted always, as Sentinel writes it, so its rewrite and ours agree.
		"sentinel announce-ip "+`"`+p.AnnounceHost+`"`,
		joinArgs("sentinel", "announce-port", strconv.Itoa(p.announcePort())),
	)
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
		if p.AuthUser != "" {
			lines = append(lines, joinArgs("sentinel", "auth-user", name, p.AuthUser))
		}
	}
	if p.Password != "" {
		lines = append(lines, joinArgs("requirepass", p.Password), joinArgs("sentinel", "sentinel-pass", p.Password))
	}
	if p.SentinelUser != "" {
		lines = append(lines, joinArgs("sentinel", "sentinel-user", p.SentinelUser))
	}
	lines = append(lines, p.Users...)
	return lines
}

// portLines: plaintext on Port, or with TLS, TLS on Port and plaintext
// only on a migration's port. tls-replication yes is what makes Sentinel
// use TLS towards Redis and other Sentinels.
func portLines(p Params) []string {
	if p.TLS == nil {
		return []string{joinArgs("port", strconv.Itoa(p.Port))}
	}
	return []string{
		joinArgs("port", strconv.Itoa(p.TLS.PlaintextPort)),
		joinArgs("tls-port", strconv.Itoa(p.Port)),
		joinArgs("tls-cert-file", p.TLS.CertFile),
		joinArgs("tls-key-file", p.TLS.KeyFile),
		joinArgs("tls-ca-cert-file", p.TLS.CAFile),
		joinArgs("tls-auth-clients", p.TLS.AuthClients),
		"tls-replication yes",
	}
}

func (p Params) announcePort() int {
	if p.AnnouncePort != 0 {
		return p.AnnouncePort
	}
	return p.Port
}

func hostKey(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }
