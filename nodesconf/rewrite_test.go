package nodesconf

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var errNX = errors.New("no such host")

var ap = netip.MustParseAddrPort

// table is a fake DNS: hostname -> address; a missing name fails with errNX.
func table(m map[string]string) Resolver {
	return func(host string, _ netip.Addr) (netip.Addr, error) {
		s, ok := m[host]
		if !ok {
			return netip.Addr{}, errNX
		}
		return netip.MustParseAddr(s), nil
	}
}

// The real 7.0.15 file of node-4 (127.0.10.4, replica of node-1); node 6
// (127.0.10.6) has no hostname and is flagged fail.
const (
	id1 = "bbd6c68dddad332e7d6a17b67de558872b4acc05"
	id2 = "a4a25dc6581ab7f421fa2b7e8617819ec0986213"
	id3 = "e42f57c1d53c6cce67145bc777dd478da1a9e2dc"
	id4 = "f7f65fb3390585a87c13d4eb8a35c8b9d6e493f6"
	id5 = "13a458ebddc675f69a06806004f97fe1221cd3d9"
	id6 = "89d3c39a2641f697355ac8052ed4fdf1b45e08b4"
)

// same resolves every name to the address it already has.
var same = map[string]string{
	"node-1.test": "127.0.10.1", "node-2.test": "127.0.10.2", "node-3.test": "127.0.10.3",
	"node-4.test": "127.0.10.4", "node-5.test": "127.0.10.5",
}

func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func TestRewrite(t *testing.T) {
	cases := map[string]struct {
		reason  string
		file    string
		podIP   string
		dns     map[string]string
		replace []string // old, new pairs applied to the input to get the wanted output
		want    Result
		wantErr string
	}{
		"no-op": {
			reason: "nothing moved: not a byte changes",
			file:   "redis-7.0.15-replica.conf", podIP: "127.0.10.4", dns: same,
			want: Result{Unnamed: []string{id6}},
		},
		"myself only": {
			reason: "the pod came back with a new IP; peers did not move",
			file:   "redis-7.0.15-replica.conf", podIP: "10.1.0.4", dns: same,
			replace: []string{"127.0.10.4:7010@17010,node-4.test", "10.1.0.4:7010@17010,node-4.test"},
			want: Result{
				Changes: []Change{{ID: id4, Hostname: "node-4.test", Myself: true, Old: ap("127.0.10.4:7010"), New: ap("10.1.0.4:7010")}},
				Unnamed: []string{id6},
			},
		},
		"all peers resolved": {
			reason: "full restart: every pod has a new IP; each hostname's line gets its new address",
			file:   "redis-7.0.15-replica.conf", podIP: "10.1.0.4",
			dns: map[string]string{"node-1.test": "10.1.0.1", "node-2.test": "10.1.0.2", "node-3.test": "10.1.0.3", "node-5.test": "10.1.0.5"},
			replace: []string{
				"127.0.10.1:", "10.1.0.1:", "127.0.10.2:", "10.1.0.2:", "127.0.10.3:", "10.1.0.3:",
				"127.0.10.4:", "10.1.0.4:", "127.0.10.5:", "10.1.0.5:",
			},
			want: Result{
				Changes: []Change{
					{ID: id2, Hostname: "node-2.test", Old: ap("127.0.10.2:7010"), New: ap("10.1.0.2:7010")},
					{ID: id4, Hostname: "node-4.test", Myself: true, Old: ap("127.0.10.4:7010"), New: ap("10.1.0.4:7010")},
					{ID: id5, Hostname: "node-5.test", Old: ap("127.0.10.5:7010"), New: ap("10.1.0.5:7010")},
					{ID: id1, Hostname: "node-1.test", Old: ap("127.0.10.1:7010"), New: ap("10.1.0.1:7010")},
					{ID: id3, Hostname: "node-3.test", Old: ap("127.0.10.3:7010"), New: ap("10.1.0.3:7010")},
				},
				Unnamed: []string{id6},
			},
		},
		"rotation": {
			reason: "every pod took another pod's old IP (1->2->3->1, myself 4->5->4): two-phase, nobody gets a neighbour's address",
			file:   "redis-7.0.15-replica.conf", podIP: "127.0.10.5",
			dns: map[string]string{"node-1.test": "127.0.10.2", "node-2.test": "127.0.10.3", "node-3.test": "127.0.10.1", "node-5.test": "127.0.10.4"},
			replace: []string{
				"127.0.10.1:7010@17010,node-1", "127.0.10.2:7010@17010,node-1",
				"127.0.10.2:7010@17010,node-2", "127.0.10.3:7010@17010,node-2",
				"127.0.10.3:7010@17010,node-3", "127.0.10.1:7010@17010,node-3",
				"127.0.10.4:7010@17010,node-4", "127.0.10.5:7010@17010,node-4",
				"127.0.10.5:7010@17010,node-5", "127.0.10.4:7010@17010,node-5",
			},
			want: Result{
				Changes: []Change{
					{ID: id2, Hostname: "node-2.test", Old: ap("127.0.10.2:7010"), New: ap("127.0.10.3:7010")},
					{ID: id4, Hostname: "node-4.test", Myself: true, Old: ap("127.0.10.4:7010"), New: ap("127.0.10.5:7010")},
					{ID: id5, Hostname: "node-5.test", Old: ap("127.0.10.5:7010"), New: ap("127.0.10.4:7010")},
					{ID: id1, Hostname: "node-1.test", Old: ap("127.0.10.1:7010"), New: ap("127.0.10.2:7010")},
					{ID: id3, Hostname: "node-3.test", Old: ap("127.0.10.3:7010"), New: ap("127.0.10.1:7010")},
				},
				Unnamed: []string{id6},
			},
		},
		"unresolvable peer keeps its address": {
			reason: "node-3's pod has no DNS record yet: keep 127.0.10.3 and report it",
			file:   "redis-7.0.15-replica.conf", podIP: "127.0.10.4",
			dns:     with(same, "node-3.test", "", "node-1.test", "10.1.0.1"),
			replace: []string{"127.0.10.1:", "10.1.0.1:"},
			want: Result{
				Changes:    []Change{{ID: id1, Hostname: "node-1.test", Old: ap("127.0.10.1:7010"), New: ap("10.1.0.1:7010")}},
				Unresolved: []Unresolved{{ID: id3, Hostname: "node-3.test", Addr: ap("127.0.10.3:7010"), Err: errNX}},
				Unnamed:    []string{id6},
			},
		},
		"two peers resolve to one address": {
			reason: "stale DNS: node-2 and node-3 both answer 10.1.0.9; writing it would make one impersonate the other",
			file:   "redis-7.0.15-replica.conf", podIP: "127.0.10.4",
			dns:     with(same, "node-2.test", "10.1.0.9", "node-3.test", "10.1.0.9"),
			wantErr: "nodes a4a25dc6581ab7f421fa2b7e8617819ec0986213 (node-2.test) and e42f57c1d53c6cce67145bc777dd478da1a9e2dc (node-3.test) would all be at 10.1.0.9:7010 after the rewrite: resolve the duplicate (a stale node: CLUSTER FORGET it on the live nodes; a stale DNS answer: retry once DNS is current)",
		},
		"pod IP is an unresolved peer's old address": {
			reason: "myself moved onto node-3's old IP while node-3 does not resolve: node-3 would keep an address that is now ours",
			file:   "redis-7.0.15-replica.conf", podIP: "127.0.10.3",
			dns:     with(same, "node-3.test", ""),
			wantErr: "nodes f7f65fb3390585a87c13d4eb8a35c8b9d6e493f6 (node-4.test) and e42f57c1d53c6cce67145bc777dd478da1a9e2dc (node-3.test) would all be at 127.0.10.3:7010 after the rewrite: resolve the duplicate (a stale node: CLUSTER FORGET it on the live nodes; a stale DNS answer: retry once DNS is current)",
		},
		"peer moves onto an unnamed node's address": {
			reason: "node 6 has no hostname and keeps 127.0.10.6; node-1 resolving there is a conflict",
			file:   "redis-7.0.15-replica.conf", podIP: "127.0.10.4",
			dns:     with(same, "node-1.test", "127.0.10.6"),
			wantErr: "nodes 89d3c39a2641f697355ac8052ed4fdf1b45e08b4 and bbd6c68dddad332e7d6a17b67de558872b4acc05 (node-1.test) would all be at 127.0.10.6:7010 after the rewrite: resolve the duplicate (a stale node: CLUSTER FORGET it on the live nodes; a stale DNS answer: retry once DNS is current)",
		},
		"IPv6 7.0": {
			reason: "IPv6 is written back without brackets, port after the last colon",
			file:   "redis-7.0.15-ipv6-replica.conf", podIP: "fd00::12",
			dns:     map[string]string{"node-v1.test": "fd00::11"},
			replace: []string{"::1:7011@17011,node-v1.test", "fd00::11:7011@17011,node-v1.test", "::1:7012@17012 myself", "fd00::12:7012@17012 myself"},
			want: Result{Changes: []Change{
				{ID: "1add9e3f480df40d0927838e85d3699781e70b88", Hostname: "node-v1.test", Old: ap("[::1]:7011"), New: ap("[fd00::11]:7011")},
				{ID: "b7eeede0ac4fe1b3359fcaebda3fb904ed44d40c", Myself: true, Old: ap("[::1]:7012"), New: ap("[fd00::12]:7012")},
			}},
		},
		"7.2 aux fields kept": {
			reason: "only the IP changes; hostname, tls-port, nodename and shard-id stay; noaddr-less :0 nodes untouched",
			file:   "redis-7.2-aux.conf", podIP: "10.244.0.12",
			dns: map[string]string{
				"redis-1.redis-headless.default.svc.cluster.local": "10.244.3.1",
				"redis-2.redis-headless.default.svc.cluster.local": "10.244.2.9",
				"redis-3.redis-headless.default.svc.cluster.local": "10.244.1.8",
				"redis-4.redis-headless.default.svc.cluster.local": "10.244.2.10",
			},
			replace: []string{"10.244.1.7:6379@16379,redis-1", "10.244.3.1:6379@16379,redis-1"},
			want: Result{
				Changes: []Change{{ID: "5f2a1c8e0d3b4a6978c1e2d3f4a5b6c7d8e9f001", Hostname: "redis-1.redis-headless.default.svc.cluster.local", Old: ap("10.244.1.7:6379"), New: ap("10.244.3.1:6379")}},
				Unnamed: []string{"2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"},
			},
		},
		"ghost of a pod that lost its volume": {
			reason: "node-3 came back with a new node ID; its old ID, failed, still carries node-3.test and sits on the IP node-3 has now: not a conflict, the ghost is left alone",
			file:   "redis-7.0-ghost.conf", podIP: "127.0.10.4",
			dns:     with(same, "node-3.test", "127.0.10.7"),
			replace: []string{"127.0.10.3:7010@17010,node-3", "127.0.10.7:7010@17010,node-3"},
			want: Result{
				Changes: []Change{{ID: id3, Hostname: "node-3.test", Old: ap("127.0.10.3:7010"), New: ap("127.0.10.7:7010")}},
				Unnamed: []string{id6},
				Ghosts:  []string{"5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ff"},
			},
		},
		"announced by DNS name": {
			reason: "cluster-announce-ip set to a name: nothing goes stale, nothing to rewrite",
			file:   "redis-7.0-announce-ip-name.conf", podIP: "10.1.0.1",
		},
		"fresh node": {
			reason: "myself at :0@0 has never been met: Redis learns its own address, nothing to rewrite",
			file:   "redis-7.0.15-fresh.conf", podIP: "10.1.0.1",
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
				t.Fatal(err)
			}
			got, err := f.Rewrite(netip.MustParseAddr(tc.podIP), table(tc.dns))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("%s: Rewrite succeeded, want error %q", tc.reason, tc.wantErr)
				}
				if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
					t.Errorf("%s: error (-want +got):\n%s", tc.reason, diff)
				}
				if diff := cmp.Diff(string(data), string(f.Bytes())); diff != "" {
					t.Errorf("%s: a failed Rewrite changed the file (-before +after):\n%s", tc.reason, diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: Rewrite: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateErrors(), cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("%s: result (-want +got):\n%s", tc.reason, diff)
			}
			want := strings.NewReplacer(tc.replace...).Replace(string(data))
			if diff := cmp.Diff(want, string(f.Bytes())); diff != "" {
				t.Errorf("%s: written file (-want +got):\n%s", tc.reason, diff)
			}
			// What was written must parse, and rewriting it again to the
			// same answers must change nothing.
			f2, err := Parse(f.Bytes())
			if err != nil {
				t.Fatalf("%s: written file does not parse: %v", tc.reason, err)
			}
			again, err := f2.Rewrite(netip.MustParseAddr(tc.podIP), table(tc.dns))
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("%s: second Rewrite = %+v, %v; want no changes", tc.reason, again.Changes, err)
			}
		})
	}
}

func TestRewriteEmptyFile(t *testing.T) {
	f, err := Parse([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Rewrite(netip.MustParseAddr("10.0.0.1"), table(nil))
	if err != nil || len(res.Changes) != 0 || len(f.Bytes()) != 0 {
		t.Errorf("Rewrite(empty) = %+v, %v, %q; want nothing", res, err, f.Bytes())
	}
}

func TestRewriteNeedsPodIP(t *testing.T) {
	data, err := os.ReadFile("testdata/redis-7.0.15-replica.conf")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Rewrite(netip.Addr{}, table(same)); err == nil || string(f.Bytes()) != string(data) {
		t.Errorf("Rewrite(no pod IP) = %v, file changed %v; want an error and no change", err, string(f.Bytes()) != string(data))
	}
}

func TestRewritePassesOldAddress(t *testing.T) {
	data, err := os.ReadFile("testdata/redis-7.0.15-ipv6-replica.conf")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	_, err = f.Rewrite(netip.MustParseAddr("::1"), func(host string, old netip.Addr) (netip.Addr, error) {
		got = append(got, host+"="+old.String())
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"node-v1.test=::1"}, got); diff != "" {
		t.Errorf("resolver calls (-want +got):\n%s", diff)
	}
}
