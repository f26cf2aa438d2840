package nodesconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// newEngines wrote testdata/<engine>-*.conf themselves (generate.sh with an
// e2e image's root filesystem, or the host's bookworm-backports Valkey),
// in the same run as the redis-7.0.15 files: node-2 also announces a human
// node name (nodename aux field) and, on Valkey, node-3 a client address
// (client-ipv4). Node IDs are random per run, so nodes are found by
// hostname.
var newEngines = []string{"redis-8.0.2", "valkey-8.0.1", "valkey-8.1.1"}

func parseTestdata(t *testing.T, name string) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse %s: %v", name, err)
	}
	return f
}

func byHostname(f *File, host string) *Node {
	for _, n := range f.Nodes {
		if n.Addr.Hostname == host {
			return n
		}
	}
	return nil
}

func byIP(f *File, ip string) *Node {
	for _, n := range f.Nodes {
		if n.Addr.IP == ip {
			return n
		}
	}
	return nil
}

// TestParseEngines checks what each engine's files say, node by node.
func TestParseEngines(t *testing.T) {
	ignore := cmpopts.IgnoreFields(Node{}, "ID", "MasterID", "PingSent", "PongRecv", "ConfigEpoch", "Line", "Moves")
	unexported := cmpopts.IgnoreUnexported(Node{})
	for _, engine := range newEngines {
		valkey := strings.HasPrefix(engine, "valkey-")
		t.Run(engine+"-replica", func(t *testing.T) {
			f := parseTestdata(t, engine+"-replica.conf")
			if len(f.Nodes) != 6 || f.CurrentEpoch != 5 {
				t.Fatalf("%d nodes, currentEpoch %d; want 6 nodes (3 masters, 2 replicas, 1 failed) at epoch 5", len(f.Nodes), f.CurrentEpoch)
			}
			shard := func(host string) Aux {
				if n := byHostname(f, host); n != nil {
					for _, a := range n.Addr.Aux {
						if a.Key == "shard-id" {
							return a
						}
					}
				}
				t.Fatalf("%s has no shard-id", host)
				return Aux{}
			}
			node3Aux := []Aux{{"tls-port", "0"}, shard("node-3.test")}
			if valkey {
				node3Aux = append([]Aux{{"client-ipv4", "127.0.10.3"}}, node3Aux...)
			}
			want := map[string]*Node{
				"node-1.test": {Addr: Addr{IP: "127.0.10.1", Port: 7010, CPort: 17010, Hostname: "node-1.test", Aux: []Aux{{"tls-port", "0"}, shard("node-1.test")}},
					Flags: []string{"master"}, Link: "connected", Slots: []SlotRange{{0, 5460}, {16383, 16383}}},
				"node-2.test": {Addr: Addr{IP: "127.0.10.2", Port: 7010, CPort: 17010, Hostname: "node-2.test", Aux: []Aux{{"tls-port", "0"}, {"nodename", "node-2"}, shard("node-2.test")}},
					Flags: []string{"master"}, Link: "connected", Slots: []SlotRange{{5461, 10921}}},
				"node-3.test": {Addr: Addr{IP: "127.0.10.3", Port: 7010, CPort: 17010, Hostname: "node-3.test", Aux: node3Aux},
					Flags: []string{"master"}, Link: "connected", Slots: []SlotRange{{10922, 16382}}},
				"node-4.test": {Addr: Addr{IP: "127.0.10.4", Port: 7010, CPort: 17010, Hostname: "node-4.test", Aux: []Aux{{"tls-port", "0"}, shard("node-1.test")}},
					Flags: []string{"myself", "slave"}, Link: "connected"},
				"node-5.test": {Addr: Addr{IP: "127.0.10.5", Port: 7010, CPort: 17010, Hostname: "node-5.test", Aux: []Aux{{"tls-port", "0"}, shard("node-2.test")}},
					Flags: []string{"slave", "nofailover"}, Link: "connected"},
			}
			for host, w := range want {
				got := byHostname(f, host)
				if got == nil {
					t.Errorf("no node with hostname %s", host)
					continue
				}
				if diff := cmp.Diff(w, got, ignore, unexported); diff != "" {
					t.Errorf("%s (-want +got):\n%s", host, diff)
				}
			}
			if n4, n1 := byHostname(f, "node-4.test"), byHostname(f, "node-1.test"); n4 != f.Myself() || n4.MasterID != n1.ID {
				t.Errorf("myself = %v replicating %s, want node-4.test replicating node-1.test (%s)", f.Myself(), n4.MasterID, n1.ID)
			}
			// Redis 7.2+ and Valkey write the empty hostname of a node
			// without one as "ip:port@cport,,aux=...".
			n6 := byIP(f, "127.0.10.6")
			if n6 == nil || n6.Addr.Hostname != "" || !n6.HasFlag("fail") || n6.Link != "disconnected" {
				t.Errorf("127.0.10.6 = %+v, want a failed, disconnected node without hostname", n6)
			}
		})
		t.Run(engine+"-master-importing-migrating", func(t *testing.T) {
			f := parseTestdata(t, engine+"-master-importing-migrating.conf")
			me := f.Myself()
			n1, n3 := byHostname(f, "node-1.test"), byHostname(f, "node-3.test")
			if me == nil || me.Addr.Hostname != "node-2.test" || n1 == nil || n3 == nil {
				t.Fatalf("myself %v, node-1 %v, node-3 %v: want myself node-2.test", me, n1, n3)
			}
			want := []SlotMove{{Slot: 93, Importing: true, NodeID: n1.ID}, {Slot: 5500, NodeID: n3.ID}}
			if diff := cmp.Diff(want, me.Moves); diff != "" {
				t.Errorf("Moves (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]SlotRange{{5461, 10921}}, me.Slots); diff != "" {
				t.Errorf("Slots (-want +got):\n%s", diff)
			}
		})
		t.Run(engine+"-ipv6-replica", func(t *testing.T) {
			f := parseTestdata(t, engine+"-ipv6-replica.conf")
			me, master := f.Myself(), byHostname(f, "node-v1.test")
			if me == nil || master == nil {
				t.Fatalf("myself %v, node-v1.test %v", me, master)
			}
			if got := [2]string{me.Addr.HostPort(), master.Addr.HostPort()}; got != [2]string{"[::1]:7012", "[::1]:7011"} {
				t.Errorf("addresses = %v, want myself [::1]:7012, master [::1]:7011 (no brackets in the file)", got)
			}
			if me.MasterID != master.ID || !me.HasFlag("slave") {
				t.Errorf("myself %v replicates %s, want node-v1.test %s", me.Flags, me.MasterID, master.ID)
			}
		})
		t.Run(engine+"-fresh", func(t *testing.T) {
			// Unlike 7.0 (":0@0"), these engines write myself's port
			// before the first MEET: ":7010@17010,node-1.test,...".
			me := parseTestdata(t, engine+"-fresh.conf").Myself()
			if me == nil || me.Addr.IP != "" || me.Addr.Port != 7010 || me.Addr.Hostname != "node-1.test" {
				t.Errorf("myself = %+v, want no IP, port 7010, hostname node-1.test", me)
			}
		})
	}
}

// TestRewriteEngines: a full restart with every IP changed rewrites only
// the IPs of each engine's file; hostnames and aux fields (nodename,
// client-ipv4, shard-id) stay byte for byte. The client-ipv4 a Valkey node
// announces is its own setting, so it is left as it is.
func TestRewriteEngines(t *testing.T) {
	dns := map[string]string{"node-1.test": "10.1.0.1", "node-2.test": "10.1.0.2", "node-3.test": "10.1.0.3", "node-5.test": "10.1.0.5"}
	for _, engine := range newEngines {
		t.Run(engine, func(t *testing.T) {
			name := engine + "-replica.conf"
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			f := parseTestdata(t, name)
			res, err := f.Rewrite(netip.MustParseAddr("10.1.0.4"), table(dns))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Changes) != 5 || len(res.Unnamed) != 1 || len(res.Unresolved) != 0 {
				t.Errorf("Result = %+v, want 5 changes and the node without hostname unnamed", res)
			}
			want := string(data)
			for i := range 5 {
				n := string(rune('1' + i))
				want = strings.ReplaceAll(want, "127.0.10."+n+":7010", "10.1.0."+n+":7010")
			}
			if diff := cmp.Diff(want, string(f.Bytes())); diff != "" {
				t.Errorf("rewritten file (-want +got):\n%s", diff)
			}
		})
	}
}
