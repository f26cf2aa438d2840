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
		} else if err := checkLine(l); err != nil {
			return nil, &ParseError{Line: l.Num, Text: redact(text), Expected: err.Error()}
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

// lineArgs splits a line, tolerating the unquoted passwords Sentinel 7.0
// writes into auth-pass and sentinel-pass.
func lineArgs(text string) ([]string, error) {
	if strings.IndexByte(text, 0) >= 0 {
		return nil, expectation("no NUL byte: this is not a text file line")
	}
	args, err := splitArgs(text)
	words := strings.Fields(text)
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

// sentinelForms lists the sentinel directives Redis 7.0 loads, with their
// argument counts after the subcommand, from sentinelHandleConfiguration.
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
	"config-epoch":                    {2, 2, "<master-name> <epoch>"},
	"leader-epoch":                    {2, 2, "<master-name> <epoch>"},
	"known-replica":                   {3, 3, "<master-name> <host> <port>"},
	"known-slave":                     {3, 3, "<master-name> <host> <port>"},
	"known-sentinel":                  {3, 4, "<master-name> <host> <port> [<runid>]"},
	"rename-command":                  {3, 3, "<master-name> <command> <renamed-command>"},
	"current-epoch":                   {1, 1, "<epoch>"},
	"myid":                            {1, 1, "<40-character id>"},
	"announce-ip":                     {1, 1, "<host>"},
	"announce-port":                   {1, 1, "<port>"},
	"announce-hostnames":              {1, 1, "yes|no"},
	"resolve-hostnames":               {1, 1, "yes|no"},
	"deny-scripts-reconfig":           {1, 1, "yes|no"},
	"sentinel-user":                   {1, 1, "<user>"},
	"sentinel-pass":                   {1, 1, "<password>"},
}

// checkLine validates a directive line. Only the sentinel directives whose
// values Merge reads are checked for their values.
func checkLine(l Line) error {
	name := strings.ToLower(l.Args[0])
	if !directiveName.MatchString(name) {
		return expectation("a config directive (a word of letters, digits and '-') at the start of the line, or a # comment")
	}
	if name != "sentinel" {
		return nil
	}
	if len(l.Args) == 1 {
		return nil // Sentinel takes a bare "sentinel" line as the switch to sentinel mode
	}
	sub := strings.ToLower(l.Args[1])
	form, ok := sentinelForms[sub]
	if !ok {
		return expectation(fmt.Sprintf("a sentinel directive redis-sentinel 7.0 knows (monitor, known-sentinel, known-replica, config-epoch, myid, ...), not %q", l.Args[1]))
	}
	n := len(l.Args) - 2
	if n < form.min || n > form.max {
		return expectation(fmt.Sprintf("sentinel %s %s, got %d argument%s after %q", sub, form.usage, n, plural(n), "sentinel "+sub))
	}
	a := l.Args[2:]
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
