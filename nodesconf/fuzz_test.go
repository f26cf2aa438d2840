package nodesconf

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse: whatever Parse accepts, Bytes gives back unchanged, and after
// moving every node to a new IP the written file parses to the same table
// with only the IPs changed. Parse never panics.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		if out := file.Bytes(); !bytes.Equal(out, data) {
			t.Fatalf("round trip changed the bytes:\n in: %q\nout: %q", data, out)
		}
		ip := netip.MustParseAddr("fd00::7")
		_, err = file.Rewrite(netip.MustParseAddr("10.9.9.9"), func(string, netip.Addr) (netip.Addr, error) {
			ip = ip.Next() // a distinct address per peer: no conflicts
			return ip, nil
		})
		if err != nil {
			return // a conflict the input itself set up (same address twice)
		}
		out := file.Bytes()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v\n in: %q\nout: %q", err, data, out)
		}
		if diff := cmp.Diff(file.Nodes, again.Nodes, cmpopts.IgnoreUnexported(Node{})); diff != "" {
			t.Fatalf("rewritten file parses differently (-rewritten +reparsed):\n%s", diff)
		}
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("second round trip changed the bytes")
		}
	})
}
