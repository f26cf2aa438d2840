package acl

import (
	"fmt"
	"slices"
	"strings"
)

// FileUser is one user of an ACL file (--acl-file): an application's
// user, which the agent defines on every redis-server as written.
type FileUser struct {
	Name  string
	Rules []string // the rules after the name, as ACL SETUSER takes them
}

// Line is the user line of u in redis.conf syntax.
func (u FileUser) Line() string {
	return "user " + u.Name + " " + strings.Join(u.Rules, " ")
}

// ParseFile reads an ACL file in the syntax of Redis's aclfile ("user
// <name> <rules...>" per line; blank lines and lines starting with # are
// skipped). source names the file in errors; managed are the users the
// agent defines itself, which the file may not. Errors name the line and
// the fix, never the line's text (it may hold a password).
func ParseFile(data []byte, source string, managed []string) ([]FileUser, error) {
	var out []FileUser
	seen := map[string]int{}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		l := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.ContainsFunc(l, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return nil, fmt.Errorf("%s line %d holds a control character: write each user on one line of printable characters", source, n)
		}
		f := strings.Fields(l)
		if f[0] != "user" || len(f) < 2 {
			return nil, fmt.Errorf("%s line %d is not a user line: each line must be \"user <name> <rules...>\" as in a Redis ACL file", source, n)
		}
		name := f[1]
		switch {
		case name == "default":
			return nil, fmt.Errorf("%s line %d defines the default user: the agent sets its password from --password-file (and turns it off with --disable-default-user); remove the line", source, n)
		case slices.Contains(managed, name):
			return nil, fmt.Errorf("%s line %d defines %q, a user the agent manages (--agent-user, --replication-user, --sentinel-auth-user) with the rules it needs: remove the line or give the flag another name", source, n, name)
		case strings.ContainsAny(name, `"'`):
			return nil, fmt.Errorf("%s line %d: the user name holds a quote: use letters, digits, - and _", source, n)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s lines %d and %d both define %q: keep one line per user", source, prev, n, name)
		}
		for _, r := range f[2:] {
			if strings.ContainsAny(r, `"'`) {
				return nil, fmt.Errorf("%s line %d: a rule holds a quote, which redis.conf would read differently from an ACL file: use passwords without quotes, or #<sha256> hashes", source, n)
			}
		}
		seen[name] = n
		out = append(out, FileUser{Name: name, Rules: f[2:]})
	}
	return out, nil
}

// The include's block of --acl-file users is between these lines, so the
// agent can replace it when the file changes without touching the rest.
const (
	fileBegin = "# --acl-file users (redis-ha-agent; replaced when the file changes)"
	fileEnd   = "# end of --acl-file users"
)

// ReplaceFileBlock returns text (an include) with its --acl-file block
// holding users; the block is appended when text has none, and left out
// for no users.
func ReplaceFileBlock(text string, users []FileUser) string {
	var block []string
	if len(users) > 0 {
		block = append(block, fileBegin)
		for _, u := range users {
			block = append(block, u.Line())
		}
		block = append(block, fileEnd)
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if text == "" {
		lines = nil
	}
	b, e := slices.Index(lines, fileBegin), slices.Index(lines, fileEnd)
	if b >= 0 && e > b {
		lines = append(lines[:b], append(block, lines[e+1:]...)...)
	} else {
		lines = append(lines, block...)
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// FileBlockNames are the user names in text's --acl-file block: what the
// include defined before a change.
func FileBlockNames(text string) []string {
	lines := strings.Split(text, "\n")
	b, e := slices.Index(lines, fileBegin), slices.Index(lines, fileEnd)
	var out []string
	for i := b + 1; b >= 0 && i < e; i++ {
		if f := strings.Fields(lines[i]); len(f) > 1 && f[0] == "user" {
			out = append(out, f[1])
		}
	}
	return out
}
