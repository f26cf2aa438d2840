package sentinelconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Each invalid file maps to the exact error it must produce. Redis 7.0.15
// refuses every one of these at start, except the two epoch files and the
// monitor-port file, which it loads as atoi/strtoull garbage (port 63, epoch
// 2^64-1, epoch 0) that a merge must not carry on silently.
func TestParseInvalid(t *testing.T) {
	want := map[string]string{
		"invalid-garbage.conf":                     `line 4 "<<<<<<< HEAD": expected a config directive (a word of letters, digits and '-') at the start of the line, or a # comment`,
		"invalid-unbalanced-quotes.conf":           `line 4 "dir \"/data/conf": expected balanced quotes: every "..." or '...' closed before the end of the line and followed by a space or the end`,
		"invalid-quote-not-followed-by-space.conf": `line 4 "logfile \"/data/sentinel.log\"x": expected balanced quotes: every "..." or '...' closed before the end of the line and followed by a space or the end`,
		"invalid-monitor-missing-fields.conf":      `line 4 "sentinel monitor othermaster 127.0.20.2 6390": expected sentinel monitor <master-name> <host> <port> <quorum>, got 3 arguments after "sentinel monitor"`,
		"invalid-monitor-port.conf":                `line 4 "sentinel monitor othermaster 127.0.20.2 63a90 2": expected a port of 0-65535, not "63a90"`,
		"invalid-monitor-quorum.conf":              `line 4 "sentinel monitor othermaster 127.0.20.2 6390 0": expected sentinel monitor <master-name> <host> <port> <quorum> with a quorum of 1 or more, not "0"`,
		"invalid-unknown-sentinel-directive.conf":  `line 4 "sentinel monitr mymaster 127.0.20.2 6390 2": expected a sentinel directive redis-sentinel 7.0 knows (monitor, known-sentinel, known-replica, config-epoch, myid, ...), not "monitr"`,
		"invalid-config-epoch.conf":                `line 4 "sentinel config-epoch mymaster -1": expected a config-epoch that is a non-negative integer, not "-1"`,
		"invalid-current-epoch.conf":               `line 4 "sentinel current-epoch many": expected a current-epoch that is a non-negative integer, not "many"`,
		"invalid-myid.conf":                        `line 4 "sentinel myid 4aeb58df": expected sentinel myid with a 40-character id, not 8 characters`,
		"invalid-known-sentinel-missing-port.conf": `line 4 "sentinel known-sentinel mymaster 127.0.20.12": expected sentinel known-sentinel <master-name> <host> <port> [<runid>], got 2 arguments after "sentinel known-sentinel"`,
		"invalid-known-replica-port.conf":          `line 4 "sentinel known-replica mymaster 127.0.20.2 99999": expected a known-replica port of 0-65535, not "99999"`,
		"invalid-requirepass-quotes.conf":          `line 4 "requirepass <redacted>": expected balanced quotes: every "..." or '...' closed before the end of the line and followed by a space or the end`,
		"invalid-nul.conf":                         `line 4 "logfile \"a\x00b\"": expected no NUL byte: this is not a text file line`,
	}
	files, err := filepath.Glob("testdata/invalid-*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("testdata has %d invalid-*.conf files, the table %d: keep them in step", len(files), len(want))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expected error for %s", name)
			}
			_, err := Parse(readTestdata(t, name))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want a *ParseError", err)
			}
			if diff := cmp.Diff(w, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

const (
	id1 = "4aeb58df7991324eb3bdca40ccc2d0d51bf50250" // MyID("redis", "redis-0")
	id2 = "8d99e832daf59baa3cd502f70fc824bcfc0efaaf" // MyID("redis", "redis-1")
	id3 = "005b5c70e3a11a1f329a629366c2946f95999eeb" // MyID("redis", "redis-2")
)

// The real files were written by redis-sentinel 7.0.15 (testdata/generate.sh):
// three "pods" 127.0.20.11-13 each with a Sentinel, the first two also with a
// redis-server (master .11, replica .12), then two SENTINEL FAILOVERs that end
// on the first master at epoch 2. Sentinel writes known-sentinel lines in
// hash order, so their order is not compared.
func TestParseReal(t *testing.T) {
	cases := map[string]struct {
		reason       string
		myID         string
		currentEpoch uint64
		master       Master
	}{
		"real-noauth-start-1.conf": {
			reason:       "Sentinel rewrote the file on start and after discovering its peers",
			myID:         id1,
			currentEpoch: 0,
			master: Master{
				Name: "mymaster", Addr: Addr{"127.0.20.11", 6390}, Quorum: 2,
				KnownReplicas:  []Addr{{"127.0.20.12", 6390}},
				KnownSentinels: []KnownSentinel{{Addr{"127.0.20.12", 26390}, id2}, {Addr{"127.0.20.13", 26390}, id3}},
			},
		},
		"real-noauth-failover-1.conf": {
			reason:       "the Sentinel that led both failovers",
			myID:         id1,
			currentEpoch: 2,
			master: Master{
				Name: "mymaster", Addr: Addr{"127.0.20.11", 6390}, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 2,
				KnownReplicas:  []Addr{{"127.0.20.12", 6390}},
				KnownSentinels: []KnownSentinel{{Addr{"127.0.20.12", 26390}, id2}, {Addr{"127.0.20.13", 26390}, id3}},
			},
		},
		"real-noauth-failover-2.conf": {
			reason:       "a Sentinel that followed: config-epoch 2, it never voted",
			myID:         id2,
			currentEpoch: 2,
			master: Master{
				Name: "mymaster", Addr: Addr{"127.0.20.11", 6390}, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 0,
				KnownReplicas:  []Addr{{"127.0.20.12", 6390}},
				KnownSentinels: []KnownSentinel{{Addr{"127.0.20.11", 26390}, id1}, {Addr{"127.0.20.13", 26390}, id3}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Parse(readTestdata(t, name))
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			if got := f.MyID(); got != tc.myID {
				t.Errorf("%s: MyID = %q, want %q", tc.reason, got, tc.myID)
			}
			if got := f.CurrentEpoch(); got != tc.currentEpoch {
				t.Errorf("%s: CurrentEpoch = %d, want %d", tc.reason, got, tc.currentEpoch)
			}
			got, ok := f.Master("mymaster")
			if !ok {
				t.Fatalf("%s: no master mymaster", tc.reason)
			}
			bySentinelHost := cmpopts.SortSlices(func(a, b KnownSentinel) bool { return a.Host < b.Host })
			if diff := cmp.Diff(tc.master, got, bySentinelHost); diff != "" {
				t.Errorf("%s: Master (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff([]string{"mymaster"}, f.Masters()); diff != "" {
				t.Errorf("Masters (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(string(readTestdata(t, name)), string(f.Bytes())); diff != "" {
				t.Errorf("Bytes does not give the file back (-want +got):\n%s", diff)
			}
		})
	}
}

// Sentinel 7.0.15 writes auth-pass and sentinel-pass unquoted, and then
// refuses the file (measured: "Unrecognized sentinel configuration
// statement" at sentinel-pass). Parse takes the rest of the line.
func TestParseSentinelsUnquotedPassword(t *testing.T) {
	f, err := Parse(readTestdata(t, "real-auth-failover-1.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, l := range f.Lines {
		switch l.Directive() {
		case "sentinel auth-pass", "sentinel sentinel-pass", "requirepass":
			got = append(got, l.Args)
		}
	}
	want := [][]string{
		{"sentinel", "auth-pass", "mymaster", `s3cret "pw"`},
		{"requirepass", `s3cret "pw"`},
		{"sentinel", "sentinel-pass", `s3cret "pw"`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("password lines (-want +got):\n%s", diff)
	}
}

func TestMyID(t *testing.T) {
	cases := map[string]struct {
		namespace, pod, want string
	}{
		"pod 0": {"redis", "redis-0", id1},
		"pod 1": {"redis", "redis-1", id2},
		// printf prod/redis-0 | sha1sum
		"other namespace": {"prod", "redis-0", "0e1baa174350ed5e65730c80f588fc756673dce5"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := MyID(tc.namespace, tc.pod)
			if len(got) != 40 {
				t.Fatalf("MyID = %q, want 40 hex characters", got)
			}
			if got != tc.want {
				t.Errorf("MyID(%q, %q) = %q, want %q", tc.namespace, tc.pod, got, tc.want)
			}
		})
	}
}
