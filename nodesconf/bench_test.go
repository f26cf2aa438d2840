package nodesconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"testing"
)

// genNodesConf builds an n-node 7.0-style nodes.conf: n/2 masters with
// slot ranges and one replica each, every node with a hostname.
func genNodesConf(n int) []byte {
	var b bytes.Buffer
	masters := n / 2
	id := func(i int) string { return fmt.Sprintf("%040x", i+1) }
	for i := 0; i < n; i++ {
		flags, master, slots := "master", "-", ""
		if i >= masters {
			flags, master = "slave", id(i-masters)
		} else {
			slots = fmt.Sprintf(" %d-%d", i*16384/masters, (i+1)*16384/masters-1)
		}
		if i == 0 {
			flags = "myself," + flags
		}
		fmt.Fprintf(&b, "%s 10.%d.%d.%d:6379@16379,redis-%d.redis-headless.default.svc.cluster.local %s %s 0 1717000000000 %d connected%s\n",
			id(i), i>>16&255, i>>8&255, i&255, i, flags, master, i%masters+1, slots)
	}
	fmt.Fprintf(&b, "vars currentEpoch %d lastVoteEpoch 0\n", masters)
	return b.Bytes()
}

// BenchmarkRewrite1000 is the init step on a 1,000-node cluster: parse,
// rewrite myself and every peer (all moved), render.
func BenchmarkRewrite1000(b *testing.B) {
	data := genNodesConf(1000)
	pod := netip.MustParseAddr("10.200.0.1")
	resolve := func(_ string, old netip.Addr) (netip.Addr, error) {
		a := old.As4()
		a[0] = 11 // every pod moved
		return netip.AddrFrom4(a), nil
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		res, err := f.Rewrite(pod, resolve)
		if err != nil || len(res.Changes) != 1000 {
			b.Fatalf("Rewrite: %d changes, %v", len(res.Changes), err)
		}
		_ = f.Bytes()
	}
}

// seedIPv4 is the seed's update-node.sh:
//
//	sed -i -e "/myself/ s/[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}/${POD_IP}/"
//
// first IPv4-looking match on each line containing "myself", nothing else.
var seedIPv4 = regexp.MustCompile(`[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}`)

func seedRewrite(data []byte, podIP string) []byte {
	out := make([]byte, 0, len(data)+16)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if bytes.Contains(line, []byte("myself")) {
			if loc := seedIPv4.FindIndex(line); loc != nil {
				out = append(out, line[:loc[0]]...)
				out = append(out, podIP...)
				line = line[loc[1]:]
			}
		}
		out = append(out, line...)
	}
	return out
}

// BenchmarkSeedSed1000 is the baseline: the seed's sed, as a Go regexp,
// over the same file. It rewrites only myself, which is why the cluster
// breaks after a full restart (see the integration test).
func BenchmarkSeedSed1000(b *testing.B) {
	data := genNodesConf(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		out := seedRewrite(data, "10.200.0.1")
		if bytes.Equal(out, data) {
			b.Fatal("seed rewrite changed nothing")
		}
	}
}

func TestGenNodesConfParses(t *testing.T) {
	f, err := Parse(genNodesConf(1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Nodes) != 1000 || f.Myself() == nil {
		t.Fatalf("got %d nodes, myself %v", len(f.Nodes), f.Myself())
	}
	seeded := seedRewrite(genNodesConf(4), "10.200.0.1")
	g, err := Parse(seeded)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Myself().Addr.IP; got != "10.200.0.1" {
		t.Errorf("seed rewrite: myself at %s, want 10.200.0.1", got)
	}
}
