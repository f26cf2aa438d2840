package sentinelconf

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// File is a parsed sentinel.conf. It keeps every line, comments and blank
// lines included, so that writing it back loses nothing.
type File struct {
	Lines []Line
	// Warnings are the lines kept without being understood: sentinel
	// directives this package does not know, from an engine newer than the
	// ones it was tested with (or a typo the engine will refuse). Parse
	// keeps them verbatim rather than stopping a pod's start; the caller
	// logs them.
	Warnings []Warning
}

// Warning is one line Parse kept without understanding it.
type Warning struct {
	Line      int    // 1-based
	Text      string // the line; values of password lines are redacted
	Directive string // as Line.Directive, e.g. "sentinel primary-foo"
}

func (w Warning) String() string {
	return fmt.Sprintf("line %d %q: %q is not a sentinel directive of Redis 7.0-8.0 or Valkey 8.0-8.1; kept as it is: if the engine refuses it at start, remove the line", w.Line, w.Text, w.Directive)
}

// Line is one line of the file.
type Line struct {
	Num  int    // 1-based line number in the parsed input
	Text string // the line, trimmed of surrounding blanks as Redis trims it
	// Args are the line's arguments as Redis splits them (quotes removed,
	// escapes applied); nil for blank lines and comments.
	Args []string
}

// Directive is the lowercased directive of the line ("port"), with the
// subcommand for sentinel lines ("sentinel monitor"); "" for blank lines and
// comments. Redis matches both case-insensitively.
func (l Line) Directive() string {
	switch len(l.Args) {
	case 0:
		return ""
	case 1:
		return strings.ToLower(l.Args[0])
	}
	d := strings.ToLower(l.Args[0])
	if d == "sentinel" {
		return d + " " + strings.ToLower(l.Args[1])
	}
	return d
}

// ParseError is a line Redis Sentinel would refuse, or that this package
// cannot understand well enough to merge safely.
type ParseError struct {
	Line     int    // 1-based
	Text     string // the line; values of password lines are redacted
	Expected string // what the line should look like
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d %q: expected %s", e.Line, e.Text, e.Expected)
}

// Parse reads a sentinel.conf as redis-sentinel 7.0 does: one directive per
// line, directives case-insensitive, arguments split with Redis's quoting
// rules. It checks the sentinel directives this package relies on (monitor,
// epochs, known peers, myid) as strictly as Sentinel, and other directives
// only for being a directive at all. Sentinel 7.0 writes auth-pass and
// sentinel-pass without quotes, so a password with a space comes back as
// several words; Parse takes the rest of such a line as the password rather
// than refusing a file Sentinel wrote itself (Merge then rewrites it quoted).
func Parse(data []byte) (*File, error) {
	f := &File{}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	raw := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, text := range raw {
		text = strings.Trim(text, " \t\r\n")
		l := Line{Num: i + 1, Text: text}
		if text == "" || text[0] == '#' {
			f.Lines = append(f.Lines, l)
			continue
		}
		args, err := lineArgs(text)
		if err != nil {
			return nil, &ParseError{Line: l.Num, Text: redact(text), Expected: err.Error()}
		}
		l.Args = args
		if l.Args == nil { // only blanks Redis trims but Go's Trim kept (\v, \f)
			l.Text = ""
		} else if known, err := checkLine(l); err != nil {
			return nil, &ParseError{Line: l.Num, Text: redact(text), Expected: err.Error()}
		} else if !known {
			f.Warnings = append(f.Warnings, Warning{Line: l.Num, Text: redact(text), Directive: l.Directive()})
		}
		f.Lines = append(f.Lines, l)
	}
	return f, nil
}

// Bytes writes the file back: each line as it was read, so comments and
// Sentinel's own layout survive.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.Lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

type expectation string

func (e expectation) Error() string { return string(e) }

// lineArgs splits a line, tolerating the passwords Sentinel writes so that
// it cannot read them back: unquoted in auth-pass and sentinel-pass (every
// engine, measured with Redis 7.0.15 and 8.0.2, Valkey 8.0.1 and 8.1.1), and
// quoted without escapes in requirepass (Valkey 8.1.1 writes a password
// ab"cd as requirepass "ab"cd").
func lineArgs(text string) ([]string, error) {
	if strings.IndexByte(text, 0) >= 0 {
		return nil, expectation("no NUL byte: this is not a text file line")
	}
	args, err := splitArgs(text)
	words := strings.Fields(text)
	if err != nil && len(words) >= 2 && strings.EqualFold(words[0], "requirepass") {
		rest := strings.TrimLeft(text[len(words[0]):], " \t")
		if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
			return []string{words[0], rest[1 : len(rest)-1]}, nil
		}
	}
	if len(words) >= 3 && strings.EqualFold(words[0], "sentinel") {
		sub := strings.ToLower(words[1])
		if (sub == "auth-pass" && len(words) >= 4 && isBare(words[2])) || sub == "sentinel-pass" {
			keep := 2 // sentinel sentinel-pass <password...>
			if sub == "auth-pass" {
				keep = 3 // sentinel auth-pass <name> <password...>
			}
			if err == nil && len(args) == keep+1 {
				return args, nil
			}
			rest := text
			for range keep {
				rest = strings.TrimLeft(rest, " \t")
				rest = rest[strings.IndexAny(rest+" ", " \t"):]
			}
			return append(words[:keep:keep], strings.TrimLeft(rest, " \t")), nil
		}
	}
	if err != nil {
		return nil, expectation(`balanced quotes: every "..." or '...' closed before the end of the line and followed by a space or the end`)
	}
	return args, nil
}

var directiveName = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)

// sentinelForms lists the sentinel directives Redis 7.0-8.0 and Valkey
// 8.0-8.1 load, with their argument counts after the subcommand, from
// sentinelHandleConfiguration. Forms with a min of 2 or more are about one
// master, named by the first argument.
var sentinelForms = map[string]struct {
	min, max int
	usage    string
}{
	"monitor":                         {4, 4, "<master-name> <host> <port> <quorum>"},
	"down-after-milliseconds":         {2, 2, "<master-name> <milliseconds>"},
	"failover-timeout":                {2, 2, "<master-name> <milliseconds>"},
	"parallel-syncs":                  {2, 2, "<master-name> <count>"},
	"notification-script":             {2, 2, "<master-name> <path>"},
	"client-reconfig-script":          {2, 2, "<master-name> <path>"},
	"auth-pass":                       {2, 2, "<master-name> <password>"},
	"auth-user":                       {2, 2, "<master-name> <user>"},
	"master-reboot-down-after-period": {2, 2, "<master-name> <milliseconds>"},
	// Valkey 8's name for master-reboot-down-after-period, which it writes;
	// it still reads the old one, Redis only the old one.
	"primary-reboot-down-after-period": {2, 2, "<master-name> <milliseconds>"},
	"config-epoch":                     {2, 2, "<master-name> <epoch>"},
	"leader-epoch":                     {2, 2, "<master-name> <epoch>"},
	"known-replica":                    {3, 3, "<master-name> <host> <port>"},
	"known-slave":                      {3, 3, "<master-name> <host> <port>"},
	"known-sentinel":                   {3, 4, "<master-name> <host> <port> [<runid>]"},
	"rename-command":                   {3, 3, "<master-name> <command> <renamed-command>"},
	"current-epoch":                    {1, 1, "<epoch>"},
	"myid":                             {1, 1, "<40-character id>"},
	"announce-ip":                      {1, 1, "<host>"},
	"announce-port":                    {1, 1, "<port>"},
	"announce-hostnames":               {1, 1, "yes|no"},
	"resolve-hostnames":                {1, 1, "yes|no"},
	"deny-scripts-reconfig":            {1, 1, "yes|no"},
	"sentinel-user":                    {1, 1, "<user>"},
	"sentinel-pass":                    {1, 1, "<password>"},
}

// checkLine validates a directive line, and reports whether this package
// knows it. Only the sentinel directives whose values Merge reads are
// checked for their values. An unknown sentinel directive is not an error:
// a newer engine adds directives (Valkey 8 added
// primary-reboot-down-after-period), and refusing a file Sentinel wrote
// itself would stop the pod from starting.
func checkLine(l Line) (known bool, err error) {
	name := strings.ToLower(l.Args[0])
	if !directiveName.MatchString(name) {
		return false, expectation("a config directive (a word of letters, digits and '-') at the start of the line, or a # comment")
	}
	if name != "sentinel" {
		return true, nil
	}
	if len(l.Args) == 1 {
		return true, nil // Sentinel takes a bare "sentinel" line as the switch to sentinel mode
	}
	sub := strings.ToLower(l.Args[1])
	form, ok := sentinelForms[sub]
	if !ok {
		if !directiveName.MatchString(sub) {
			return false, expectation(fmt.Sprintf("a sentinel directive (a word of letters, digits and '-') after \"sentinel\", not %q", l.Args[1]))
		}
		return false, nil
	}
	n := len(l.Args) - 2
	if n < form.min || n > form.max {
		return true, expectation(fmt.Sprintf("sentinel %s %s, got %d argument%s after %q", sub, form.usage, n, plural(n), "sentinel "+sub))
	}
	return true, checkValues(sub, l.Args[2:])
}

func checkValues(sub string, a []string) error {
	switch sub {
	case "monitor":
		if err := checkPort(a[2], "port"); err != nil {
			return err
		}
		if q, err := strconv.Atoi(a[3]); err != nil || q < 1 {
			return expectation(fmt.Sprintf("sentinel monitor <master-name> <host> <port> <quorum> with a quorum of 1 or more, not %q", a[3]))
		}
	case "known-replica", "known-slave", "known-sentinel":
		return checkPort(a[2], sub+" port")
	case "config-epoch", "leader-epoch":
		return checkEpoch(a[1], sub)
	case "current-epoch":
		return checkEpoch(a[0], sub)
	case "myid":
		if len(a[0]) != 40 {
			return expectation(fmt.Sprintf("sentinel myid with a 40-character id, not %d characters", len(a[0])))
		}
	}
	return nil
}

func checkPort(s, what string) error {
	if p, err := strconv.Atoi(s); err != nil || p < 0 || p > 65535 {
		return expectation(fmt.Sprintf("a %s of 0-65535, not %q", what, s))
	}
	return nil
}

func checkEpoch(s, what string) error {
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return expectation(fmt.Sprintf("a %s that is a non-negative integer, not %q", what, s))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// redact hides the value of lines that carry secrets, so that errors can be
// logged. It works on words, because such a line may not split cleanly.
func redact(text string) string {
	w := strings.Fields(text)
	if len(w) == 0 {
		return text
	}
	switch d := strings.ToLower(w[0]); {
	case d == "requirepass" || d == "masterauth" || d == "user":
		return w[0] + " <redacted>"
	case d == "sentinel" && len(w) > 1:
		switch strings.ToLower(w[1]) {
		case "sentinel-pass":
			return w[0] + " " + w[1] + " <redacted>"
		case "auth-pass":
			if len(w) > 2 {
				return w[0] + " " + w[1] + " " + w[2] + " <redacted>"
			}
		}
	}
	if len(text) > 200 {
		return text[:200] + "..."
	}
	return text
}
