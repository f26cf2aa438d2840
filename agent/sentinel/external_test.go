package sentinel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

var testExternal = config.External{Host: "10.0.0.1", RedisPort: 31000, SentinelPort: 31100}

func fqdnOf(i int) string { return fmt.Sprintf("redis-%d.redis-headless.default.svc.cluster.local", i) }

// TestOrdinalOfExternal: with external access, Sentinel and Redis report
// pods at node addresses shared by every pod of a node; the external port
// names the pod, whatever the address. Peer names keep mapping as before
// (the fence's own name on port 0 included), and with external access off
// a NodePort names nothing.
func TestOrdinalOfExternal(t *testing.T) {
	on := sentinelPeers{Pods: 3, Self: 1, Addr: fqdnOf, External: testExternal}
	off := sentinelPeers{Pods: 3, Self: 1, Addr: fqdnOf}
	cases := map[string]struct {
		reason string
		got    int
		want   int
	}{
		"PeerName":            {"a peer name at the Redis port", on.ordinalOf(fqdnOf(2), 6379), 2},
		"FenceOwnNamePort0":   {"the fenced include's replicaof <own name> 0 is this pod (state.go: not a replica of a peer)", on.ordinalOf(fqdnOf(1), 0), 1},
		"ExternalSameNode":    {"two pods on one node: the port tells them apart", on.ordinalOf("10.0.0.1", 31002), 2},
		"ExternalOtherNode":   {"an address announced from another node (or before the pod moved) still names the pod by its port", on.ordinalOf("10.0.0.7", 31000), 0},
		"ExternalDNSName":     {"a DNS name in front of the nodes", on.ordinalOf("nodes.example.com", 31001), 1},
		"ExternalBeyondPods":  {"the NodePort of an ordinal above the pod count (scaled away)", on.ordinalOf("10.0.0.1", 31003), -1},
		"SentinelPortAsRedis": {"a Sentinel's NodePort is not a redis-server", on.ordinalOf("10.0.0.1", 31101), -1},
		"PodIPInternalPort":   {"an address that is neither a peer name nor an external port", on.ordinalOf("10.244.1.5", 6379), -1},
		"OffNodePort":         {"external access off: a NodePort names no pod", off.ordinalOf("10.0.0.1", 31002), -1},
		"SentinelExternal":    {"a Sentinel at its NodePort", on.sentinelOrdinalOf("10.0.0.2", 31102), 2},
		"SentinelRedisPort":   {"a redis-server's NodePort is not a Sentinel", on.sentinelOrdinalOf("10.0.0.2", 31002), -1},
		"SentinelPeerName":    {"a Sentinel at its peer name", on.sentinelOrdinalOf(fqdnOf(0)+".", 26379), 0},
		"SentinelOffNodePort": {"external access off", off.sentinelOrdinalOf("10.0.0.2", 31102), -1},
	}
	for name, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: %s: ordinal %d, want %d", name, tc.reason, tc.got, tc.want)
		}
	}
}

// announceAsker is a redisNode whose only call is CONFIG GET
// replica-announce-ip.
type announceAsker struct {
	redisNode
	ip  string
	err error
}

func (a announceAsker) ConfigGet(_ context.Context, param string) (string, error) {
	if param != "replica-announce-ip" {
		return "", fmt.Errorf("unexpected CONFIG GET %s", param)
	}
	return a.ip, a.err
}

func (announceAsker) Close() error { return nil }

// TestAnnouncedAddr: a pod is named to Sentinel and Redis by the address it
// announces itself; without external access that is its peer name and the
// Redis port. A peer whose external host is unknown is named at this pod's
// own external host, which forwards the peer's NodePort too.
func TestAnnouncedAddr(t *testing.T) {
	cfg := config.Config{RedisPort: 6379, External: testExternal}
	cases := map[string]struct {
		reason   string
		external bool
		ordinal  int
		peer     announceAsker
		wantHost string
		wantPort int
	}{
		"Off":          {reason: "in-cluster: the peer name", ordinal: 2, wantHost: fqdnOf(2), wantPort: 6379},
		"Self":         {reason: "this pod: its own external host, no call", external: true, ordinal: 1, peer: announceAsker{err: errors.New("must not be asked")}, wantHost: "10.0.0.1", wantPort: 31001},
		"PeerAnswers":  {reason: "the peer's own node address", external: true, ordinal: 2, peer: announceAsker{ip: "10.0.0.3"}, wantHost: "10.0.0.3", wantPort: 31002},
		"PeerDNSName":  {reason: "a DNS name the peer announces", external: true, ordinal: 0, peer: announceAsker{ip: "nodes.example.com"}, wantHost: "nodes.example.com", wantPort: 31000},
		"PeerDown":     {reason: "the peer does not answer", external: true, ordinal: 2, peer: announceAsker{err: errors.New("connection refused")}, wantHost: "10.0.0.1", wantPort: 31002},
		"PeerInternal": {reason: "the peer announces its peer name (runs without external access, mid-rollout)", external: true, ordinal: 2, peer: announceAsker{ip: fqdnOf(2) + "."}, wantHost: "10.0.0.1", wantPort: 31002},
		"PeerGarbage":  {reason: "an announce that is no address", external: true, ordinal: 2, peer: announceAsker{ip: "a b"}, wantHost: "10.0.0.1", wantPort: 31002},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := cfg
			if !tc.external {
				c.External = config.External{}
			}
			p := sentinelPeers{Pods: 3, Self: 1, Addr: fqdnOf, Timeout: time.Second, External: c.External,
				Redis: func(h string) redisNode {
					if h != fqdnOf(tc.ordinal) {
						t.Errorf("asked %s, want the peer name of ordinal %d", h, tc.ordinal)
					}
					return tc.peer
				}}
			h, port := announcedAddr(context.Background(), c, p, tc.ordinal, zerolog.Nop())
			if h != tc.wantHost || port != tc.wantPort {
				t.Errorf("%s: %s:%d, want %s:%d", tc.reason, h, port, tc.wantHost, tc.wantPort)
			}
		})
	}
}

// TestRedisIncludeExternal: with external access the server announces the
// node address and its NodePort (what Sentinel hands to clients), follows
// the master at its announced address, and the fence still points at its
// own peer name on port 0 (which ordinalOf maps to itself).
func TestRedisIncludeExternal(t *testing.T) {
	cfg := testInitCfg(t)
	cfg.External = testExternal
	inc, err := redisInclude(cfg, 3, includeAddrs{Self: fqdnOf(1), AnnounceHost: "10.0.0.1", AnnouncePort: 31001, MasterHost: "10.0.0.2", MasterPort: 31000}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"replica-announce-ip 10.0.0.1\n", "replica-announce-port 31001\n", "replicaof 10.0.0.2 31000\n"} {
		if !strings.Contains(string(inc), want) {
			t.Errorf("include lacks %q:\n%s", want, inc)
		}
	}
	fenced, err := redisInclude(cfg, 3, includeAddrs{Self: fqdnOf(1), AnnounceHost: "10.0.0.1", AnnouncePort: 31001}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fenced), "replicaof "+fqdnOf(1)+" 0\n") || !strings.Contains(string(fenced), "replica-announce-port 31001\n") {
		t.Errorf("fenced include: want replicaof %s 0 and the external announce:\n%s", fqdnOf(1), fenced)
	}
	p := sentinelPeers{Pods: 3, Self: 1, Addr: fqdnOf, External: testExternal}
	if got := p.ordinalOf(fqdnOf(1), 0); got != 1 {
		t.Errorf("the fence's master address maps to ordinal %d, want this pod (1)", got)
	}
}

// namingSentinel is a sentinelNode that names the master at one address.
type namingSentinel struct {
	sentinelNode
	host string
	port int
}

func (s namingSentinel) MasterAddr(context.Context, string) (string, int, bool, error) {
	return s.host, s.port, true, nil
}

func (namingSentinel) Close() error { return nil }

// TestSentinelInitExternal: init with external access. A Sentinel majority
// names the master at a node address and NodePort; init recognises pod 2 by
// the port, follows it at the address pod 2 announces itself, and has this
// pod and its Sentinel announce the node address and their own NodePorts.
// Booting fenced, the fence still points at the pod's own name on port 0.
func TestSentinelInitExternal(t *testing.T) {
	for name, tc := range map[string]struct {
		sentinels namingSentinel
		include   []string
		sentinel  []string
	}{
		"MasterNamedExternally": {
			sentinels: namingSentinel{host: "10.0.0.7", port: 31002},
			include:   []string{"replica-announce-ip 10.0.0.1\n", "replica-announce-port 31001\n", "replicaof 10.0.0.3 31002\n"},
			sentinel:  []string{"port 26379\n", "sentinel announce-ip \"10.0.0.1\"\n", "sentinel announce-port 31101\n", "sentinel monitor mymaster 10.0.0.3 31002 2\n"},
		},
		"NoMajorityFenced": {
			sentinels: namingSentinel{host: "10.0.0.7", port: 31005}, // no pod's port: knows no master of ours
			include:   []string{"replica-announce-ip 10.0.0.1\n", "replica-announce-port 31001\n", "replicaof " + fqdnOf(1) + " 0\n"},
			sentinel:  []string{"sentinel announce-ip \"10.0.0.1\"\n", "sentinel announce-port 31101\n"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testInitCfg(t)
			cfg.External = testExternal
			peers := sentinelPeers{Pods: 3, Self: 1, Addr: fqdnOf, Timeout: time.Second, External: cfg.External,
				Sentinel: func(string) sentinelNode { return tc.sentinels },
				Redis: func(h string) redisNode {
					return announceAsker{ip: map[string]string{fqdnOf(0): "10.0.0.2", fqdnOf(2): "10.0.0.3"}[h]}
				},
				Resolve: func(context.Context, string) error { return nil },
			}
			in := sentinelInit{cfg: cfg, log: zerolog.Nop(), peers: peers,
				leaseHolder: func(context.Context) (string, error) { return "", nil }}
			if err := in.run(context.Background()); err != nil {
				t.Fatal(err)
			}
			inc, _ := os.ReadFile(cfg.RedisConfInclude)
			for _, w := range tc.include {
				if !strings.Contains(string(inc), w) {
					t.Errorf("include lacks %q:\n%s", w, inc)
				}
			}
			sen, _ := os.ReadFile(cfg.SentinelConf)
			for _, w := range tc.sentinel {
				if !strings.Contains(string(sen), w) {
					t.Errorf("sentinel.conf lacks %q:\n%s", w, sen)
				}
			}
		})
	}
}
