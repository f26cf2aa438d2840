package nodesconf

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Parse reads a nodes.conf. It accepts what Redis's own loader accepts and is
// stricter where Redis would silently misread garbage (non-numeric fields,
// unknown link states, malformed addresses). An empty input is what Redis
// leaves before its first save: an empty File, no error. A last line without
// its newline means the file was cut short: Redis always ends a line with one.
func Parse(data []byte) (*File, error) {
	f := &File{size: len(data)}
	if len(data) == 0 {
		return f, nil
	}
	text := string(data)
	count := strings.Count(text, "\n")
	f.lines = make([]line, 0, count)
	f.Nodes = make([]*Node, 0, count)
	// One allocation for all nodes; cap is an upper bound, so pointers
	// into it stay valid.
	slab := make([]Node, 0, count)
	seen := make(map[string]int, count)
	myself := 0
	var fields []span // reused: one line at a time
	for num := 1; text != ""; num++ {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			if strings.IndexByte(text, 0) >= 0 {
				return nil, &ParseError{Line: num, Text: text[:min(len(text), 8)], Want: "text, not NUL bytes (the file was not fully written to disk)"}
			}
			return nil, &ParseError{Line: num, Text: text, Want: `a line ending in a newline; the file ends mid-line (truncated)`}
		}
		raw := text[:i]
		text = text[i+1:]
		if strings.IndexByte(raw, 0) >= 0 {
			return nil, &ParseError{Line: num, Text: raw[:min(len(raw), 8)], Want: "text, not NUL bytes (the file was not fully written to disk)"}
		}
		if raw == "" {
			f.lines = append(f.lines, line{})
			continue
		}
		fields = splitFields(fields[:0], raw)
		switch {
		case len(fields) == 0:
			return nil, &ParseError{Line: num, Text: raw, Want: "a node line or the vars line, not only blanks"}
		case strings.EqualFold(raw[fields[0].start:fields[0].end], "vars"):
			if err := f.parseVars(num, raw, fields); err != nil {
				return nil, err
			}
			f.lines = append(f.lines, line{raw: raw})
			continue
		}
		slab = append(slab, Node{})
		n := &slab[len(slab)-1]
		if err := parseNode(n, num, raw, fields); err != nil {
			return nil, err
		}
		if prev, ok := seen[n.ID]; ok {
			return nil, &ParseError{Line: num, Text: n.ID, Want: "each node ID once; line " + strconv.Itoa(prev) + " has it too"}
		}
		seen[n.ID] = num
		if n.isMyself {
			if myself != 0 {
				return nil, &ParseError{Line: num, Text: raw[fields[2].start:fields[2].end], Want: "one node flagged myself; line " + strconv.Itoa(myself) + " is myself too"}
			}
			myself = num
		}
		f.Nodes = append(f.Nodes, n)
		f.lines = append(f.lines, line{raw: raw, node: n})
	}
	if myself == 0 {
		return nil, &ParseError{Want: "a node line flagged myself, found none (Redis refuses such a file)"}
	}
	return f, nil
}

type span struct{ start, end int }

// splitFields splits at runs of white space, as Redis's sdssplitargs does
// for the unquoted fields it writes, and keeps offsets so a field can be
// replaced in place.
func splitFields(out []span, s string) []span {
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		out = append(out, span{i, j})
		i = j
	}
	return out
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

func (f *File) parseVars(num int, raw string, fields []span) error {
	if len(fields)%2 == 0 {
		return &ParseError{Line: num, Text: raw, Want: "vars followed by name value pairs, e.g. vars currentEpoch 6 lastVoteEpoch 0"}
	}
	for i := 1; i < len(fields); i += 2 {
		name := raw[fields[i].start:fields[i].end]
		val := raw[fields[i+1].start:fields[i+1].end]
		var dst *uint64
		switch {
		case strings.EqualFold(name, "currentEpoch"):
			dst = &f.CurrentEpoch
		case strings.EqualFold(name, "lastVoteEpoch"):
			dst = &f.LastVoteEpoch
		default:
			continue // Redis skips unknown vars; they stay in the line
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return &ParseError{Line: num, Text: val, Want: "a number after " + name}
		}
		*dst = v
	}
	return nil
}

var knownFlags = []string{"myself", "master", "slave", "fail?", "fail", "handshake", "noaddr", "nofailover", "noflags"}

func parseNode(n *Node, num int, raw string, fields []span) error {
	if len(fields) < 8 {
		return &ParseError{Line: num, Text: raw, Want: "at least 8 fields: <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> [slots]"}
	}
	field := func(i int) string { return raw[fields[i].start:fields[i].end] }
	bad := func(i int, want string) error {
		return &ParseError{Line: num, Text: field(i), Want: "field " + strconv.Itoa(i+1) + " " + want}
	}
	*n = Node{Line: num, ID: field(0), addrStart: fields[1].start, addrEnd: fields[1].end}
	if !isNodeID(n.ID) {
		return bad(0, "(node ID): 40 characters 0-9 a-z")
	}
	if err := n.parseAddr(field(1)); err != "" {
		return bad(1, "(address): "+err)
	}
	n.Flags = strings.Split(field(2), ",")
	for _, fl := range n.Flags {
		if !slices.ContainsFunc(knownFlags, func(k string) bool { return strings.EqualFold(k, fl) }) {
			return bad(2, "(flags): a comma-separated list of "+strings.Join(knownFlags, " "))
		}
		if strings.EqualFold(fl, "myself") {
			n.isMyself = true
		}
	}
	if m := field(3); m != "-" {
		if !isNodeID(m) {
			return bad(3, `(master): "-" or a 40-character node ID`)
		}
		n.MasterID = m
	}
	for i, dst := range []*uint64{&n.PingSent, &n.PongRecv, &n.ConfigEpoch} {
		v, err := strconv.ParseUint(field(4+i), 10, 64)
		if err != nil {
			return bad(4+i, "("+[]string{"ping-sent", "pong-recv", "config-epoch"}[i]+"): a number")
		}
		*dst = v
	}
	n.Link = field(7)
	if n.Link != "connected" && n.Link != "disconnected" {
		return bad(7, "(link-state): connected or disconnected")
	}
	for i := 8; i < len(fields); i++ {
		if err := n.parseSlot(field(i)); err != "" {
			return bad(i, "(slots): "+err)
		}
	}
	n.orig = n.Addr
	n.orig.Aux = slices.Clone(n.Addr.Aux)
	return nil
}

// isNodeID mirrors Redis's verifyClusterNodeId.
func isNodeID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

const addrWant = "ip:port@cport[,hostname][,key=value]..."

// parseAddr splits ip:port[@cport][,hostname][,key=value]... The port
// follows the last colon before any comma, so unbracketed IPv6 works.
func (n *Node) parseAddr(s string) string {
	hp, rest, hasHost := strings.Cut(s, ",")
	colon := strings.LastIndexByte(hp, ':')
	if colon < 0 {
		return addrWant + " with a colon before the port"
	}
	ip, ports := hp[:colon], hp[colon+1:]
	if ip != "" {
		if strings.HasPrefix(ip, "[") {
			return addrWant + " with IPv6 unbracketed, as Redis writes it"
		}
		// Redis stores cluster-announce-ip unchecked and connects with
		// getaddrinfo, so a DNS name works there too; refusing it would
		// keep a healthy node from starting. Anything else is garbage.
		if _, err := netip.ParseAddr(ip); err != nil && !isDNSName(ip) {
			return addrWant + " with an IP address, a DNS name or nothing before the port"
		}
	}
	port, cport, hasC := ports, "", false
	if at := strings.IndexByte(ports, '@'); at >= 0 {
		port, cport, hasC = ports[:at], ports[at+1:], true
	}
	p, ok := parsePort(port)
	if !ok {
		return addrWant + " with a port of 0-65535"
	}
	c := p + 10000 // what Redis assumes for files without the bus port
	if hasC {
		if c, ok = parsePort(cport); !ok {
			return addrWant + " with a bus port of 0-65535 after @"
		}
	}
	n.Addr = Addr{IP: ip, Port: p, CPort: c}
	n.hasCPort = hasC
	if !hasHost {
		return ""
	}
	host, rest, hasAux := strings.Cut(rest, ",")
	n.Addr.Hostname = host
	n.hostComma = host == "" && !hasAux
	for i := 0; i < len(host); i++ {
		if !isHostChar(host[i]) {
			return addrWant + " with a hostname of letters, digits, '-', '_' and '.'"
		}
	}
	for hasAux {
		var kv string
		kv, rest, hasAux = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.Contains(v, "=") {
			return addrWant + " with aux fields as key=value"
		}
		n.Addr.Aux = append(n.Addr.Aux, Aux{Key: k, Value: v})
	}
	return ""
}

// isDNSName accepts what fits Redis's 46-byte IP field and looks like a name.
func isDNSName(s string) bool {
	if len(s) > 46 || strings.Contains(s, "..") || s[0] == '.' || s[0] == '-' {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHostChar(c) {
			return false
		}
		letter = letter || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	return letter // all digits and dots is a broken IPv4 address, not a name
}

func isHostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > 65535 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	return v, true
}

const slots = 16384

// parseSlot reads "N", "N-M", "[N->-id]" (migrating) or "[N-<-id]" (importing).
func (n *Node) parseSlot(s string) string {
	if strings.HasPrefix(s, "[") {
		body, ok := strings.CutSuffix(s[1:], "]")
		if !ok {
			return "[slot->-id] or [slot-<-id] closed by ]"
		}
		slot, rest, ok := strings.Cut(body, "-")
		if !ok || len(rest) < 2 || (rest[0] != '>' && rest[0] != '<') || rest[1] != '-' {
			return "[slot->-id] (migrating) or [slot-<-id] (importing)"
		}
		v, ok := parseSlotNum(slot)
		if !ok || !isNodeID(rest[2:]) {
			return "[slot->-id] or [slot-<-id] with a slot of 0-16383 and a 40-character node ID"
		}
		n.Moves = append(n.Moves, SlotMove{Slot: v, Importing: rest[0] == '<', NodeID: rest[2:]})
		return ""
	}
	a, b, isRange := strings.Cut(s, "-")
	start, ok := parseSlotNum(a)
	end := start
	if ok && isRange {
		end, ok = parseSlotNum(b)
	}
	if !ok || end < start {
		return "a slot or a range start-end within 0-16383"
	}
	n.Slots = append(n.Slots, SlotRange{Start: start, End: end})
	return ""
}

func parseSlotNum(s string) (int, bool) {
	if s == "" || len(s) > 5 || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	return v, err == nil && v < slots
}
