package sentinelconf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse: whatever Parse accepts writes back to a file that parses to the
// same lines; every argument survives quoting; Merge never panics, and what
// it writes parses and merges to itself.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	engines, _ := filepath.Glob("testdata/*/*.conf")
	files = append(files, engines...)
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("sentinel auth-pass mymaster a \"b\nsentinel sentinel-pass 'x\n"))
	f.Add([]byte("x \"\\x41\\q\" 'it\\'s'\r\n\v\n# c\n"))
	f.Add([]byte("sentinel monitor mymaster 127.0.20.11 6390 2\nsentinel primary-foo mymaster 1\nsentinel monitor old 10.0.0.1 6379 2\nsentinel primary-foo old 2\nrequirepass \"a\"b\"\n"))
	p := realParams(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if _, _, merr := Merge(data, p); merr == nil {
				t.Fatalf("Parse failed (%v) but Merge did not", err)
			}
			return
		}
		again, err := Parse(file.Bytes())
		if err != nil {
			t.Fatalf("written file does not parse: %v\n%q", err, file.Bytes())
		}
		if diff := cmp.Diff(file.Lines, again.Lines); diff != "" {
			t.Fatalf("parse → write → parse changed the lines (-first +second):\n%s", diff)
		}
		for _, l := range file.Lines {
			if l.Args == nil || bytes.IndexByte([]byte(l.Text), 0) >= 0 {
				continue
			}
			args, err := splitArgs(joinArgs(l.Args...))
			if err != nil || !cmp.Equal(args, l.Args) {
				t.Fatalf("quoting does not round-trip %q: %q, %v", l.Args, args, err)
			}
		}
		out, _, err := Merge(data, p)
		if err != nil {
			t.Fatalf("Merge failed on a file Parse accepts: %v", err)
		}
		twice, _, err := Merge(out, p)
		if err != nil {
			t.Fatalf("merged file does not merge again: %v\n%s", err, out)
		}
		if !bytes.Equal(out, twice) {
			t.Fatalf("merge(merge(x)) != merge(x):\n%s", cmp.Diff(string(out), string(twice)))
		}
	})
}
