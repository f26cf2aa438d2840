package sentinelconf

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
		"invalid-sentinel-subcommand.conf":         `line 4 "sentinel \"known replica\" mymaster 127.0.20.2 6390": expected a sentinel directive (a word of letters, digits and '-') after "sentinel", not "known replica"`,
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

// engines are the testdata directories of real files, written by each
// engine's own Sentinel (testdata/generate.sh): three "pods" 127.0.20.11-13
// each with a Sentinel, the first two also with a server (master .11,
// replica .12), then two SENTINEL FAILOVERs that end on the first master at
// epoch 2, then SENTINEL SET master-reboot-down-after-period.
var engines = []string{"redis-7.0.15", "redis-8.0.2", "valkey-8.0.1", "valkey-8.1.1"}

// TestParseEngines reads every file each engine's Sentinel wrote: none is
// refused or warned about, each gives itself back byte for byte, and the
// view is what the run did. Sentinel writes known-sentinel lines in hash
// order, so their order is not compared.
func TestParseEngines(t *testing.T) {
	ids := []string{id1, id2, id3}
	hosts := []string{"127.0.20.11", "127.0.20.12", "127.0.20.13"}
	for _, engine := range engines {
		for _, variant := range []string{"noauth", "auth"} {
			for _, stage := range []string{"start", "failover"} {
				for n := 1; n <= 3; n++ {
					name := fmt.Sprintf("%s/%s-%s-%d.conf", engine, variant, stage, n)
					t.Run(name, func(t *testing.T) {
						want := Master{Name: "mymaster", Addr: Addr{"127.0.20.11", 6390}, Quorum: 2, KnownReplicas: []Addr{{"127.0.20.12", 6390}}}
						var epoch uint64
						if stage == "failover" {
							epoch, want.ConfigEpoch = 2, 2
							if n == 1 { // the Sentinel both SENTINEL FAILOVERs were sent to leads them
								want.LeaderEpoch = 2
							}
						}
						for i := range ids {
							if i != n-1 {
								want.KnownSentinels = append(want.KnownSentinels, KnownSentinel{Addr{hosts[i], 26390}, ids[i]})
							}
						}
						data := readTestdata(t, name)
						f, err := Parse(data)
						if err != nil {
							t.Fatal(err)
						}
						if len(f.Warnings) != 0 {
							t.Errorf("warnings on a file the engine wrote itself: %v", f.Warnings)
						}
						if got := f.MyID(); got != ids[n-1] {
							t.Errorf("MyID = %q, want %q", got, ids[n-1])
						}
						if got := f.CurrentEpoch(); got != epoch {
							t.Errorf("CurrentEpoch = %d, want %d", got, epoch)
						}
						got, ok := f.Master("mymaster")
						if !ok {
							t.Fatal("no master mymaster")
						}
						bySentinelHost := cmpopts.SortSlices(func(a, b KnownSentinel) bool { return a.Host < b.Host })
						if diff := cmp.Diff(want, got, bySentinelHost); diff != "" {
							t.Errorf("Master (-want +got):\n%s", diff)
						}
						if diff := cmp.Diff([]string{"mymaster"}, f.Masters()); diff != "" {
							t.Errorf("Masters (-want +got):\n%s", diff)
						}
						if diff := cmp.Diff(string(data), string(f.Bytes())); diff != "" {
							t.Errorf("Bytes does not give the file back (-want +got):\n%s", diff)
						}
					})
				}
			}
		}
	}
}

// TestEngineDirectives lists every directive each engine's Sentinel wrote
// in the testdata files (the union over all of them), so that a new
// engine's or version's directive shows up here first. The generator's
// own lines (bind, port, the sentinel settings it starts with) are in it too,
// as Sentinel writes them back.
func TestEngineDirectives(t *testing.T) {
	common := []string{
		"bind", "bind-source-addr", "dir", "latency-tracking-info-percentiles", "logfile", "port", "protected-mode", "requirepass",
		"sentinel announce-hostnames", "sentinel announce-ip", "sentinel announce-port", "sentinel auth-pass", "sentinel config-epoch",
		"sentinel current-epoch", "sentinel down-after-milliseconds", "sentinel failover-timeout", "sentinel known-replica",
		"sentinel known-sentinel", "sentinel leader-epoch", "sentinel monitor", "sentinel myid", "sentinel resolve-hostnames",
		"sentinel sentinel-pass", "user",
	}
	with := func(extra string) []string { return append(slices.Clone(common), extra) }
	want := map[string][]string{
		"redis-7.0.15": with("sentinel master-reboot-down-after-period"),
		"redis-8.0.2":  with("sentinel master-reboot-down-after-period"),
		"valkey-8.0.1": with("sentinel primary-reboot-down-after-period"),
		"valkey-8.1.1": with("sentinel primary-reboot-down-after-period"),
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join("testdata", engine, "*.conf"))
			if err != nil || len(files) != 12 {
				t.Fatalf("want 12 files in testdata/%s, got %d (%v)", engine, len(files), err)
			}
			seen := map[string]bool{}
			for _, path := range files {
				f, err := Parse(readTestdata(t, strings.TrimPrefix(path, "testdata/")))
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range f.Lines {
					if d := l.Directive(); d != "" {
						seen[d] = true
					}
				}
			}
			got := slices.Sorted(maps.Keys(seen))
			if diff := cmp.Diff(want[engine], got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("directives (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseSentinelsUnquotedPassword: every engine writes auth-pass and
// sentinel-pass unquoted, and then refuses the file (measured with 7.0.15:
// "Unrecognized sentinel configuration statement" at sentinel-pass);
// Valkey 8.1.1 also writes requirepass in quotes without escaping the
// quotes inside, and comments its earlier line out as "# ??? requirepass
// ...", one more at every rewrite. Parse takes the rest of such a line.
func TestParseSentinelsUnquotedPassword(t *testing.T) {
	const pw = `s3cret "pw"`
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			f, err := Parse(readTestdata(t, engine+"/auth-failover-1.conf"))
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
				{"sentinel", "auth-pass", "mymaster", pw},
				{"requirepass", pw},
				{"sentinel", "sentinel-pass", pw},
			}
			if engine == "valkey-8.1.1" {
				want = [][]string{want[0], want[2], {"requirepass", pw}}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("password lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseWarnings: a sentinel directive this package does not know is
// kept as it is and reported, not refused; Merge keeps it with its master,
// or drops it with a master it drops.
func TestParseWarnings(t *testing.T) {
	const head = "port 26379\nsentinel monitor mymaster 127.0.20.11 6390 2\n"
	cases := map[string]struct {
		reason   string
		line     string
		want     []Warning
		inMerged bool // the line survives a Merge with realParams(1)
	}{
		"known valkey directive": {
			reason: "Valkey 8's name for master-reboot-down-after-period", line: "sentinel primary-reboot-down-after-period mymaster 60000", inMerged: true,
		},
		"future per-master directive": {
			reason: "a newer engine's directive about our master stays with it",
			line:   "sentinel primary-something mymaster 5",
			want:   []Warning{{Line: 3, Text: "sentinel primary-something mymaster 5", Directive: "sentinel primary-something"}}, inMerged: true,
		},
		"future global directive": {
			reason: "not about a master: kept",
			line:   "SENTINEL Announce-TLS yes",
			want:   []Warning{{Line: 3, Text: "SENTINEL Announce-TLS yes", Directive: "sentinel announce-tls"}}, inMerged: true,
		},
		"typo": {
			reason: "a typo is also kept (the engine will refuse it; the warning names the line)",
			line:   "sentinel monitr mymaster 127.0.20.2 6390 2",
			want:   []Warning{{Line: 3, Text: "sentinel monitr mymaster 127.0.20.2 6390 2", Directive: "sentinel monitr"}}, inMerged: true,
		},
		"about a dropped master": {
			reason: "Sentinel refuses a per-master line without its monitor: dropped with the other master",
			line:   "sentinel monitor other 10.0.0.9 6379 2\nsentinel primary-something other 5",
			want:   []Warning{{Line: 4, Text: "sentinel primary-something other 5", Directive: "sentinel primary-something"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			data := []byte(head + tc.line + "\n")
			f, err := Parse(data)
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, f.Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: Warnings (-want +got):\n%s", tc.reason, diff)
			}
			out, ch, err := Merge(data, realParams(1))
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, ch.Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: Changes.Warnings (-want +got):\n%s", tc.reason, diff)
			}
			last := tc.line[strings.LastIndex(tc.line, "\n")+1:]
			if got := strings.Contains(string(out), "\n"+last+"\n"); got != tc.inMerged {
				t.Errorf("%s: line %q in the merged file = %v, want %v:\n%s", tc.reason, last, got, tc.inMerged, out)
			}
			again, _, err := Merge(out, realParams(1))
			if err != nil || !bytes.Equal(out, again) {
				t.Errorf("%s: merge is not idempotent (%v):\n%s", tc.reason, err, cmp.Diff(string(out), string(again)))
			}
		})
	}
	if got := (Warning{Line: 3, Text: "sentinel x y", Directive: "sentinel x"}).String(); !strings.Contains(got, `line 3 "sentinel x y"`) {
		t.Errorf("Warning.String() = %q, want it to name the line", got)
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
