package sentinelconf

import (
	"errors"
	"strings"
)

// errUnbalanced is the only way Redis's sdssplitargs fails; Redis reports it
// as "Unbalanced quotes in configuration line".
var errUnbalanced = errors.New("unbalanced quotes")

// splitArgs splits one config line the way Redis does (sdssplitargs in
// sds.c), so a line means here exactly what it means to redis-sentinel:
// "double quotes" take \n \r \t \b \a \xHH and \<any> escapes, 'single
// quotes' take only \', a closing quote must be followed by a space or the
// end of the line, and a quote inside a bare word opens a quoted part of the
// same word (ab"c d" is one argument "abc d").
func splitArgs(line string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(line) && isCSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		var cur strings.Builder
		inDouble, inSingle := false, false
		for done := false; !done; {
			if i >= len(line) && (inDouble || inSingle) {
				return nil, errUnbalanced
			}
			switch {
			case inDouble:
				c := line[i]
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					cur.WriteByte(unhex(line[i+2])<<4 | unhex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					cur.WriteByte(unescape(line[i]))
				case c == '"':
					if i+1 < len(line) && !isCSpace(line[i+1]) {
						return nil, errUnbalanced
					}
					done = true
				default:
					cur.WriteByte(c)
				}
			case inSingle:
				c := line[i]
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur.WriteByte('\'')
				case c == '\'':
					if i+1 < len(line) && !isCSpace(line[i+1]) {
						return nil, errUnbalanced
					}
					done = true
				default:
					cur.WriteByte(c)
				}
			default:
				if i >= len(line) {
					done = true
					break
				}
				switch c := line[i]; c {
				case ' ', '\n', '\r', '\t':
					done = true
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					cur.WriteByte(c)
				}
			}
			if i < len(line) {
				i++
			}
		}
		args = append(args, cur.String())
	}
}

// isCSpace is C's isspace in the "C" locale, which sdssplitargs uses
// between arguments.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// quoteArg writes s so that splitArgs reads it back unchanged: bare when that
// is safe, otherwise double-quoted with the escapes Redis's sdscatrepr uses.
func quoteArg(s string) string {
	if isBare(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		default:
			if c < 0x20 || c >= 0x7f {
				const hexDigits = "0123456789abcdef"
				b.WriteString(`\x`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
				continue
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isBare reports whether s reads back as one argument without quotes: not
// empty, printable ASCII, no spaces and no quote characters anywhere (a quote
// inside a bare word opens a quoted part).
func isBare(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\'' {
			return false
		}
	}
	return true
}

// joinArgs is the inverse of splitArgs.
func joinArgs(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteArg(a)
	}
	return strings.Join(q, " ")
}
