package nodesconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// validFiles are the testdata files Redis (or the Redis format) accepts:
// everything but invalid-*.conf.
func validFiles(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range all {
		if !strings.HasPrefix(filepath.Base(f), "invalid-") {
			out = append(out, f)
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d valid testdata files: %v", len(out), out)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, path := range validFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(string(data), string(f.Bytes())); diff != "" {
				t.Errorf("Bytes() differs from the file (-file +written):\n%s", diff)
			}
			if f.Myself() == nil {
				t.Errorf("no myself node")
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	f, err := Parse(nil)
	if err != nil {
		t.Fatalf("Parse(empty) = %v, want no error: Redis leaves an empty file before its first save", err)
	}
	if len(f.Nodes) != 0 || f.Myself() != nil || len(f.Bytes()) != 0 {
		t.Errorf("Parse(empty) = %d nodes, myself %v, %q; want nothing", len(f.Nodes), f.Myself(), f.Bytes())
	}
}

func TestParse(t *testing.T) {
	ignore := cmpopts.IgnoreUnexported(Node{})
	cases := map[string]struct {
		reason string
		file   string
		want   []*Node // the nodes at the lines given by Node.Line
		epochs [2]uint64
	}{
		"7.0 master migrating, ranges, failed peer without hostname": {
			reason: "real redis 7.0.15 file: myself with two slot ranges and a migrating slot; a failed slot-less master without hostname",
			file:   "redis-7.0.15-master-migrating.conf",
			epochs: [2]uint64{5, 0},
			want: []*Node{
				{Line: 3, ID: "89d3c39a2641f697355ac8052ed4fdf1b45e08b4", Addr: Addr{IP: "127.0.10.6", Port: 7010, CPort: 17010},
					Flags: []string{"master", "fail"}, PingSent: 1795305021799, PongRecv: 1795305021296, ConfigEpoch: 3, Link: "disconnected"},
				{Line: 4, ID: "bbd6c68dddad332e7d6a17b67de558872b4acc05", Addr: Addr{IP: "127.0.10.1", Port: 7010, CPort: 17010, Hostname: "node-1.test"},
					Flags: []string{"myself", "master"}, PongRecv: 1795305023000, ConfigEpoch: 2, Link: "connected",
					Slots: []SlotRange{{0, 5460}, {16383, 16383}},
					Moves: []SlotMove{{Slot: 93, NodeID: "a4a25dc6581ab7f421fa2b7e8617819ec0986213"}}},
			},
		},
		"7.0 importing and migrating, replica nofailover": {
			reason: "real redis 7.0.15 file with both move directions on myself",
			file:   "redis-7.0.15-master-importing-migrating.conf",
			epochs: [2]uint64{5, 0},
			want: []*Node{
				{Line: 1, ID: "a4a25dc6581ab7f421fa2b7e8617819ec0986213", Addr: Addr{IP: "127.0.10.2", Port: 7010, CPort: 17010, Hostname: "node-2.test"},
					Flags: []string{"myself", "master"}, PongRecv: 1795305023000, ConfigEpoch: 1, Link: "connected",
					Slots: []SlotRange{{5461, 10921}},
					Moves: []SlotMove{{Slot: 93, Importing: true, NodeID: "bbd6c68dddad332e7d6a17b67de558872b4acc05"}, {Slot: 5500, NodeID: "e42f57c1d53c6cce67145bc777dd478da1a9e2dc"}}},
				{Line: 6, ID: "13a458ebddc675f69a06806004f97fe1221cd3d9", Addr: Addr{IP: "127.0.10.5", Port: 7010, CPort: 17010, Hostname: "node-5.test"},
					Flags: []string{"slave", "nofailover"}, MasterID: "a4a25dc6581ab7f421fa2b7e8617819ec0986213", PongRecv: 1795305023112, ConfigEpoch: 1, Link: "connected"},
			},
		},
		"7.0 IPv6 without brackets": {
			reason: "real redis 7.0.15 file: the port is after the last colon",
			file:   "redis-7.0.15-ipv6-replica.conf",
			want: []*Node{
				{Line: 1, ID: "1add9e3f480df40d0927838e85d3699781e70b88", Addr: Addr{IP: "::1", Port: 7011, CPort: 17011, Hostname: "node-v1.test"},
					Flags: []string{"master"}, PongRecv: 1795305023951, Link: "connected", Slots: []SlotRange{{0, 16383}}},
			},
		},
		"7.0 fresh node has no address": {
			reason: "real redis 7.0.15 file before any MEET: myself is :0@0",
			file:   "redis-7.0.15-fresh.conf",
			want: []*Node{
				{Line: 1, ID: "bbd6c68dddad332e7d6a17b67de558872b4acc05", Addr: Addr{IP: "", Port: 0, CPort: 0},
					Flags: []string{"myself", "master"}, Link: "connected"},
			},
		},
		"7.2 aux fields, empty hostname, fail?": {
			reason: "7.2 writes ip:port@cport,hostname,aux=value...; hostname may be empty",
			file:   "redis-7.2-aux.conf",
			epochs: [2]uint64{3, 0},
			want: []*Node{
				{Line: 2, ID: "5f2a1c8e0d3b4a6978c1e2d3f4a5b6c7d8e9f001", Addr: Addr{IP: "10.244.1.7", Port: 6379, CPort: 16379, Hostname: "redis-1.redis-headless.default.svc.cluster.local",
					Aux: []Aux{{"tls-port", "0"}, {"nodename", "redis-1"}, {"shard-id", "2c9ce9b5c3f5c5e4a9eaf1d1c9a2b3d4e5f60718"}}},
					Flags: []string{"master"}, PongRecv: 1717000000512, ConfigEpoch: 2, Link: "connected", Slots: []SlotRange{{5461, 10922}}},
				{Line: 5, ID: "1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e", Addr: Addr{IP: "10.244.2.10", Port: 6379, CPort: 16379, Hostname: "redis-4.redis-headless.default.svc.cluster.local",
					Aux: []Aux{{"tls-port", "0"}, {"shard-id", "2c9ce9b5c3f5c5e4a9eaf1d1c9a2b3d4e5f60718"}}},
					Flags: []string{"slave", "fail?"}, MasterID: "5f2a1c8e0d3b4a6978c1e2d3f4a5b6c7d8e9f001", PingSent: 1717000000100, PongRecv: 1717000000000, ConfigEpoch: 2, Link: "disconnected"},
				{Line: 6, ID: "2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f", Addr: Addr{IP: "10.244.0.13", Port: 6379, CPort: 16379,
					Aux: []Aux{{"tls-port", "0"}, {"shard-id", "3dadfac6d4a6d6f5bafb02e2dab3c4e5f6071829"}}},
					Flags: []string{"slave", "nofailover"}, MasterID: "9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b", PongRecv: 1717000000000, ConfigEpoch: 3, Link: "connected"},
			},
		},
		"7.2 noaddr, handshake, noflags": {
			reason: "flags Redis writes for nodes it lost or has not met yet",
			file:   "redis-7.2-noaddr-handshake.conf",
			epochs: [2]uint64{1, 0},
			want: []*Node{
				{Line: 2, ID: "5f2a1c8e0d3b4a6978c1e2d3f4a5b6c7d8e9f001", Addr: Addr{Aux: []Aux{{"tls-port", "0"}, {"shard-id", "1b8bd8a4b2e4b4d3f8d9e0c0b8f1a2c3d4e5f607"}}},
					Flags: []string{"slave", "noaddr"}, MasterID: "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca", PingSent: 1717000000100, PongRecv: 1717000000000, ConfigEpoch: 1, Link: "disconnected"},
				{Line: 3, ID: "9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b", Addr: Addr{IP: "10.244.2.9", Port: 6379, CPort: 16379, Aux: []Aux{{"tls-port", "0"}}},
					Flags: []string{"handshake"}, Link: "disconnected"},
				{Line: 4, ID: "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", Addr: Addr{IP: "10.244.1.8", Port: 6379, CPort: 16379, Hostname: "redis-3.redis-headless.default.svc.cluster.local",
					Aux: []Aux{{"tls-port", "0"}, {"shard-id", "2c9ce9b5c3f5c5e4a9eaf1d1c9a2b3d4e5f60718"}}},
					Flags: []string{"noflags"}, Link: "disconnected"},
			},
		},
		"6.x importing": {
			reason: "Redis 5/6: ip:port@cport, no hostname",
			file:   "redis-6.conf",
			epochs: [2]uint64{3, 0},
			want: []*Node{
				{Line: 1, ID: "c9d93d9f2c0c524ff34cc11838c2003d8c29e013", Addr: Addr{IP: "10.0.0.11", Port: 6379, CPort: 16379},
					Flags: []string{"myself", "master"}, PongRecv: 1594032960000, ConfigEpoch: 1, Link: "connected", Slots: []SlotRange{{0, 5460}},
					Moves: []SlotMove{{Slot: 5461, Importing: true, NodeID: "6ec23923021cf3ffec47632106199cb7f496ce01"}}},
			},
		},
		"3.x without bus port": {
			reason: "before Redis 4 there is no @cport; Redis assumes port+10000",
			file:   "redis-3.conf",
			epochs: [2]uint64{2, 0},
			want: []*Node{
				{Line: 2, ID: "6ec23923021cf3ffec47632106199cb7f496ce01", Addr: Addr{IP: "192.168.1.11", Port: 7000, CPort: 17000},
					Flags: []string{"master"}, PongRecv: 1454432960000, ConfigEpoch: 2, Link: "connected", Slots: []SlotRange{{8192, 16383}}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(data)
			if err != nil {
				t.Fatalf("%s: Parse: %v", tc.reason, err)
			}
			var got []*Node
			for _, w := range tc.want {
				for _, n := range f.Nodes {
					if n.Line == w.Line {
						got = append(got, n)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got, ignore); diff != "" {
				t.Errorf("%s: nodes (-want +got):\n%s", tc.reason, diff)
			}
			if e := [2]uint64{f.CurrentEpoch, f.LastVoteEpoch}; e != tc.epochs {
				t.Errorf("%s: epochs = %v, want %v", tc.reason, e, tc.epochs)
			}
		})
	}
}

// TestParseInvalid maps each testdata/invalid-*.conf to the exact error it
// must produce, and checks that every such file is in the table.
func TestParseInvalid(t *testing.T) {
	want := map[string]string{
		"invalid-address-ip.conf":            "line 1: got \"127.0.10.999:7010@17010\", want field 2 (address): ip:port@cport[,hostname][,key=value]... with an IP address, a DNS name or nothing before the port",
		"invalid-address-ipv6-brackets.conf": "line 1: got \"[::1]:7010@17010\", want field 2 (address): ip:port@cport[,hostname][,key=value]... with IPv6 unbracketed, as Redis writes it",
		"invalid-address-no-port.conf":       "line 2: got \"127.0.10.2,node-2.test\", want field 2 (address): ip:port@cport[,hostname][,key=value]... with a colon before the port",
		"invalid-aux.conf":                   "line 1: got \"127.0.10.1:7010@17010,node-1.test,tls-port\", want field 2 (address): ip:port@cport[,hostname][,key=value]... with aux fields as key=value",
		"invalid-blank-spaces.conf":          "line 2: got \"   \", want a node line or the vars line, not only blanks",
		"invalid-cut-fields.conf":            "line 2: got \"a4a25dc6581ab7f421fa2b7e8617819ec0986213 127.0.10.2:7010@17010,node-2.\", want at least 8 fields: <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> [slots]",
		"invalid-duplicate-id.conf":          "line 3: got \"a4a25dc6581ab7f421fa2b7e8617819ec0986213\", want each node ID once; line 2 has it too",
		"invalid-epoch.conf":                 "line 2: got \"x1\", want field 7 (config-epoch): a number",
		"invalid-flag.conf":                  "line 2: got \"primary\", want field 3 (flags): a comma-separated list of myself master slave fail? fail handshake noaddr nofailover noflags",
		"invalid-garbage.conf":               "line 1: got \"port 6379\", want at least 8 fields: <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> [slots]",
		"invalid-link.conf":                  "line 2: got \"up\", want field 8 (link-state): connected or disconnected",
		"invalid-master.conf":                "line 2: got \"node-1\", want field 4 (master): \"-\" or a 40-character node ID",
		"invalid-migrating.conf":             "line 1: got \"[93->-a4a25dc6581ab7f421fa2b7e8617819ec0986213\", want field 10 (slots): [slot->-id] or [slot-<-id] closed by ]",
		"invalid-no-myself.conf":             "want a node line flagged myself, found none (Redis refuses such a file)",
		"invalid-node-id.conf":               "line 2: got \"a4a25dc6581ab7f421fa2b7e8617819ec098621\", want field 1 (node ID): 40 characters 0-9 a-z",
		"invalid-only-newlines.conf":         "want a node line flagged myself, found none (Redis refuses such a file)",
		"invalid-port.conf":                  "line 2: got \"127.0.10.2:70100@17010,node-2.test\", want field 2 (address): ip:port@cport[,hostname][,key=value]... with a port of 0-65535",
		"invalid-slot.conf":                  "line 2: got \"5461-16384\", want field 9 (slots): a slot or a range start-end within 0-16383",
		"invalid-truncated-mid-line.conf":    "line 3: got \"vars currentEpoch 5 lastVo\", want a line ending in a newline; the file ends mid-line (truncated)",
		"invalid-truncated-mid-node.conf":    "line 2: got \"a4a25dc6581ab7f421fa2b7e8617819ec0986213 127.0.10.2:7010@17010,node-2.\", want a line ending in a newline; the file ends mid-line (truncated)",
		"invalid-two-myself.conf":            "line 2: got \"myself,master\", want one node flagged myself; line 1 is myself too",
		"invalid-vars-number.conf":           "line 3: got \"five\", want a number after currentEpoch",
		"invalid-vars.conf":                  "line 3: got \"vars currentEpoch 5 lastVoteEpoch\", want vars followed by name value pairs, e.g. vars currentEpoch 6 lastVoteEpoch 0",
		"invalid-zeros.conf":                 "line 1: got \"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\", want text, not NUL bytes (the file was not fully written to disk)",
	}
	files, err := filepath.Glob("testdata/invalid-*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("%d invalid-*.conf files but %d table entries: keep them in step", len(files), len(want))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data)
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expected error for %s; got %v", name, err)
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", w)
			}
			if diff := cmp.Diff(w, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error is %T, want *ParseError", err)
			}
		})
	}
}
