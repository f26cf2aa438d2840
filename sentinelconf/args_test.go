package sentinelconf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// splitCases are lines with what Redis's sdssplitargs makes of them;
// TestSplitArgsMatchesRedis checks each against redis-cli, which splits its
// input lines with the same function. wantErr means Redis refuses the line.
var splitCases = map[string]struct {
	line    string
	want    []string
	wantErr bool
}{
	"bare words":                      {line: "sentinel monitor mymaster 10.0.0.1 6379 2", want: []string{"sentinel", "monitor", "mymaster", "10.0.0.1", "6379", "2"}},
	"tabs and runs of spaces":         {line: "port \t  26379", want: []string{"port", "26379"}},
	"double quotes":                   {line: `dir "/data/my conf"`, want: []string{"dir", "/data/my conf"}},
	"empty double quotes":             {line: `requirepass ""`, want: []string{"requirepass", ""}},
	"escapes in double quotes":        {line: `x "a\"b\\c\n\t\x41\x4a\q"`, want: []string{"x", "a\"b\\c\n\tAJq"}},
	"invalid hex escape is literal x": {line: `x "\xZZ"`, want: []string{"x", "xZZ"}},
	"single quotes":                   {line: `x 'it\'s "raw" \n'`, want: []string{"x", `it's "raw" \n`}},
	"quote opens inside a bare word":  {line: `x ab"c d"`, want: []string{"x", "abc d"}},
	"quote inside a bare word at end": {line: `x ab"`, wantErr: true},
	"closing quote then a letter":     {line: `x "a"b`, wantErr: true},
	"unclosed double quote":           {line: `x "abc`, wantErr: true},
	"unclosed single quote":           {line: `x 'abc`, wantErr: true},
	"backslash at end of quotes":      {line: `x "abc\`, wantErr: true},
	"backslash in a bare word":        {line: `x a\nb`, want: []string{"x", `a\nb`}},
	"unquoted password with quotes":   {line: `sentinel auth-pass mymaster s3cret "pw"`, want: []string{"sentinel", "auth-pass", "mymaster", "s3cret", "pw"}},
	"non-ascii":                       {line: "x héllo", want: []string{"x", "héllo"}},
}

func TestSplitArgs(t *testing.T) {
	for name, tc := range splitCases {
		t.Run(name, func(t *testing.T) {
			got, err := splitArgs(tc.line)
			if (err != nil) != tc.wantErr {
				t.Fatalf("splitArgs(%q) error = %v, want error %v", tc.line, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("splitArgs(%q) (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestQuoteArgRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "two words", `q"uote`, "it's", `back\slash`, "\x00\x01\xff\n\r\t\a\b", "héllo", "#hash", "a\"b c'd"} {
		line := joinArgs("x", s)
		got, err := splitArgs(line)
		if err != nil {
			t.Errorf("splitArgs(joinArgs(%q)) = %q: %v", s, line, err)
			continue
		}
		if diff := cmp.Diff([]string{"x", s}, got); diff != "" {
			t.Errorf("round trip of %q via %q (-want +got):\n%s", s, line, diff)
		}
	}
}
