package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestNodesconfRewriteRotatedCluster is the full-restart case the seed's
// update-node.sh gets wrong: a Redis Cluster (3 masters, and 3 masters with
// a replica each) stops, every node comes back on the IP another node had,
// and nodes.conf is fixed before redis-server starts. With our rewrite the
// cluster is whole again; with the seed's sed (myself only) it is not.
// Addresses: 127.0.11.x-127.0.14.x, port 7100.
func TestNodesconfRewriteRotatedCluster(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server")
	for _, topo := range []struct {
		name       string
		replicas   int
		ours, seed string // address prefixes
	}{
		{"3 masters", 0, "127.0.11", "127.0.12"},
		{"3 masters 3 replicas", masters, "127.0.13", "127.0.14"},
	} {
		t.Run(topo.name, func(t *testing.T) {
			testRotation(t, topo.replicas, topo.ours, topo.seed)
		})
	}
}

func testRotation(t *testing.T, replicas int, oursNet, seedNet string) {
	t.Run("ours", func(t *testing.T) {
		c := newRotationCluster(t, oursNet, replicas)
		dns := map[string][]string{}
		for i := range c.nodes {
			dns[c.hostname(i)] = []string{c.newIP(i)}
		}
		for i, n := range c.nodes {
			cmd := &NodesconfRewriteCmd{NodesConf: filepath.Join(n.dir, "nodes.conf"), PodIP: c.newIP(i), DNSTimeout: 2 * time.Second}
			if err := cmd.rewrite(t.Context(), zerolog.New(zerolog.NewTestWriter(t)), fakeDNS(dns), clock.RealClock{}); err != nil {
				t.Fatalf("rewrite node %d: %v", i, err)
			}
		}
		start := time.Now()
		c.startAll(t, c.newIP)
		err := proctest.Until(t.Context(), 30*time.Second, func() error { return c.tablesAndKeys(t.Context(), c.newIP, false) })
		if err != nil {
			t.Fatalf("node tables not correct 30s after the restart with rewritten nodes.conf: %v", err)
		}
		t.Logf("ours: every node lists every peer at its new address, connected, %.2fs after start", time.Since(start).Seconds())
		err = proctest.Until(t.Context(), 30*time.Second, func() error { return c.check(t.Context(), c.newIP) })
		if err != nil {
			t.Fatalf("cluster not whole 30s after the restart with rewritten nodes.conf: %v", err)
		}
		t.Logf("ours: cluster_state:ok and all %d keys readable through every node %.2fs after start", len(c.keys), time.Since(start).Seconds())
	})
	t.Run("seed sed baseline", func(t *testing.T) {
		c := newRotationCluster(t, seedNet, replicas)
		// The seed's update-node.sh, verbatim.
		const sed = `sed -i -e "/myself/ s/[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}/${POD_IP}/" ${REDIS_NODES}`
		for i, n := range c.nodes {
			cmd := exec.Command("sh", "-c", sed)
			cmd.Env = append(os.Environ(), "POD_IP="+c.newIP(i), "REDIS_NODES="+filepath.Join(n.dir, "nodes.conf"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("seed sed on node %d: %v: %s", i, err, out)
			}
		}
		start := time.Now()
		c.startAll(t, c.newIP)
		okErr := proctest.Until(t.Context(), 20*time.Second, func() error { return c.stateOK(t.Context(), c.newIP) })
		t.Logf("seed: cluster_state:ok on every node after %.2fs: %v", time.Since(start).Seconds(), okErr == nil)
		// Give it the same 30 s ours had to become whole; it must not.
		var last error
		err := proctest.Until(t.Context(), 30*time.Second, func() error {
			last = c.check(t.Context(), c.newIP)
			return last
		})
		if err == nil {
			t.Fatalf("the seed's myself-only rewrite left a whole cluster: the baseline this project beats no longer fails")
		}
		t.Logf("seed: still broken after 30s: %v", last)
		for i := range c.nodes {
			t.Logf("seed: node %d (now %s)%s: %d of %d keys unreadable or MOVED to a wrong address; its CLUSTER NODES:\n%s",
				i, c.newIP(i), c.following(t.Context(), c.newIP, i), c.badKeys(t.Context(), c.newIP, i), len(c.keys), c.clusterNodes(t.Context(), c.newIP(i)))
		}
	})
}

type rotationNode struct {
	dir  string
	id   string
	proc *proctest.Proc
}

type rotationCluster struct {
	net   string // "127.0.11": node i starts on net.(i+1)
	port  int
	nodes []*rotationNode
	keys  map[string]int // key -> index of the node owning its slot
}

func (c *rotationCluster) hostname(i int) string { return fmt.Sprintf("node-%d.test", i) }
func (c *rotationCluster) oldIP(i int) string    { return fmt.Sprintf("%s.%d", c.net, i+1) }

// newIP rotates: node i comes back on node i+1's old address.
func (c *rotationCluster) newIP(i int) string { return c.oldIP((i + 1) % len(c.nodes)) }
func (c *rotationCluster) addr(ip string) string {
	return net.JoinHostPort(ip, strconv.Itoa(c.port))
}

// masters and their replicas: node i < masters owns a third of the slots,
// node masters+i replicates node i.
const masters = 3

// owner is the master of node i's shard.
func owner(i int) int { return i % masters }

// newRotationCluster creates a 3-master cluster with replicas (0 or 3) at
// the old addresses, writes keys across all slots, and stops it cleanly
// (SHUTDOWN SAVE).
func newRotationCluster(t *testing.T, netPrefix string, replicas int) *rotationCluster {
	t.Helper()
	ctx := t.Context()
	c := &rotationCluster{net: netPrefix, port: 7100, keys: map[string]int{}}
	for range masters + replicas {
		c.nodes = append(c.nodes, &rotationNode{dir: t.TempDir()})
	}
	c.startAll(t, c.oldIP)
	for i := range c.nodes {
		cl := c.client(c.oldIP(i))
		defer cl.Close()
		if i < masters {
			first, last := i*16384/masters, (i+1)*16384/masters-1
			if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
				t.Fatalf("node %d: CLUSTER ADDSLOTSRANGE %d %d: %v", i, first, last, err)
			}
		}
		id, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[i].id = id
		if i > 0 {
			if err := cl.ClusterMeet(ctx, c.oldIP(0), strconv.Itoa(c.port)).Err(); err != nil {
				t.Fatalf("node %d: CLUSTER MEET: %v", i, err)
			}
		}
	}
	for i := masters; i < len(c.nodes); i++ {
		cl := c.client(c.oldIP(i))
		defer cl.Close()
		// The replica must have heard of its master through gossip first.
		if err := proctest.Until(ctx, 30*time.Second, func() error {
			return cl.ClusterReplicate(ctx, c.nodes[owner(i)].id).Err()
		}); err != nil {
			t.Fatalf("node %d: CLUSTER REPLICATE %s: %v", i, c.nodes[owner(i)].id, err)
		}
	}
	if err := proctest.Until(ctx, 60*time.Second, func() error { return c.check(ctx, c.oldIP) }); err != nil {
		t.Fatalf("cluster did not form: %v", err)
	}
	// Hostnames travel in ping extensions; nodes.conf must carry them.
	if err := proctest.Until(ctx, 30*time.Second, func() error {
		for i := range c.nodes {
			cl := c.client(c.oldIP(i))
			out, err := cl.ClusterNodes(ctx).Result()
			cl.Close()
			if err != nil {
				return err
			}
			for j := range c.nodes {
				if !strings.Contains(out, ","+c.hostname(j)+" ") {
					return fmt.Errorf("node %d does not know node %d's hostname yet", i, j)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.addr(c.oldIP(0))}})
	defer cc.Close()
	c0 := c.client(c.oldIP(0))
	defer c0.Close()
	for k := range 300 {
		key := fmt.Sprintf("key:%d", k)
		if err := cc.Set(ctx, key, "v"+key, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		slot, err := c0.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		c.keys[key] = int(slot) * masters / 16384
	}
	for i, n := range c.nodes {
		cl := c.client(c.oldIP(i))
		defer cl.Close()
		if err := cl.Do(ctx, "CLUSTER", "SAVECONFIG").Err(); err != nil {
			t.Fatal(err)
		}
		_ = cl.ShutdownSave(ctx).Err() // the connection drops as it exits
		select {
		case <-n.proc.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("node %d did not exit after SHUTDOWN", i)
		}
	}
	return c
}

// startAll starts every node at ip(i) with its data dir and hostname.
func (c *rotationCluster) startAll(t *testing.T, ip func(int) string) {
	t.Helper()
	for i, n := range c.nodes {
		conf := strings.Join([]string{
			"port " + strconv.Itoa(c.port),
			"bind " + ip(i),
			"bind-source-addr " + ip(i), // else peers see 127.0.0.1
			"protected-mode no",
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout 5000",
			"cluster-announce-hostname " + c.hostname(i),
			"dir " + n.dir,
			"logfile redis.log",
			"save ''",
			"appendonly no",
		}, "\n") + "\n"
		path := filepath.Join(n.dir, "redis.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n.proc = proctest.Start(t, filepath.Join(n.dir, "redis.log"), "redis-server", path)
		proctest.WaitPing(t, c.addr(ip(i)), "", 20*time.Second)
	}
}

func (c *rotationCluster) client(ip string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: c.addr(ip), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 1})
}

func (c *rotationCluster) stateOK(ctx context.Context, ip func(int) string) error {
	for i := range c.nodes {
		cl := c.client(ip(i))
		info, err := cl.ClusterInfo(ctx).Result()
		cl.Close()
		if err != nil {
			return fmt.Errorf("node %d: CLUSTER INFO: %w", i, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %d: not cluster_state:ok", i)
		}
	}
	return nil
}

// check is the health check DESIGN.md asks for after an IP change:
// cluster_state:ok is not enough. Every node must list every node at its
// current address, connected, without noaddr/fail flags, and every key must
// be readable through every node, with MOVED pointing at the right address.
func (c *rotationCluster) check(ctx context.Context, ip func(int) string) error {
	if err := c.stateOK(ctx, ip); err != nil {
		return err
	}
	return c.tablesAndKeys(ctx, ip, true)
}

// tablesAndKeys is check without cluster_state (Redis holds a restarted
// master's state at fail for a fixed 2 s, which says nothing about us).
func (c *rotationCluster) tablesAndKeys(ctx context.Context, ip func(int) string, keys bool) error {
	want := map[string]string{}
	for j, n := range c.nodes {
		want[n.id] = c.addr(ip(j))
	}
	for i := range c.nodes {
		cl := c.client(ip(i))
		defer cl.Close()
		out, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("node %d: CLUSTER NODES: %w", i, err)
		}
		seen := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				return fmt.Errorf("node %d: short CLUSTER NODES line %q", i, line)
			}
			hp, _, _ := strings.Cut(f[1], "@")
			w, known := want[f[0]]
			switch {
			case !known:
				return fmt.Errorf("node %d lists an unknown node: %s", i, line)
			case hp != w:
				return fmt.Errorf("node %d has node %s at %s, want %s: %s", i, f[0][:8], hp, w, line)
			case strings.Contains(f[2], "noaddr") || strings.Contains(f[2], "fail"):
				return fmt.Errorf("node %d flags node %s %s: %s", i, f[0][:8], f[2], line)
			case f[7] != "connected":
				return fmt.Errorf("node %d: node %s %s: %s", i, f[0][:8], f[7], line)
			}
			seen++
		}
		if seen != len(c.nodes) {
			return fmt.Errorf("node %d lists %d nodes, want %d", i, seen, len(c.nodes))
		}
		if i >= masters {
			// A replica following a wrong address full-syncs another
			// shard's data while still listed as its master's replica.
			info, err := cl.Info(ctx, "replication").Result()
			if err != nil {
				return fmt.Errorf("node %d: INFO replication: %w", i, err)
			}
			host, port, link := infoField(info, "master_host"), infoField(info, "master_port"), infoField(info, "master_link_status")
			if w := c.addr(ip(owner(i))); net.JoinHostPort(host, port) != w || link != "up" {
				return fmt.Errorf("replica %d follows %s (link %s), want its master at %s", i, net.JoinHostPort(host, port), link, w)
			}
		}
		if !keys {
			continue
		}
		for key, owner := range c.keys {
			v, err := cl.Get(ctx, key).Result()
			if err != nil && strings.HasPrefix(err.Error(), "MOVED ") {
				to := strings.Fields(err.Error())[2]
				if to != c.addr(ip(owner)) {
					return fmt.Errorf("node %d: GET %s: %v, want MOVED to %s", i, key, err, c.addr(ip(owner)))
				}
				oc := c.client(ip(owner))
				v, err = oc.Get(ctx, key).Result()
				oc.Close()
			}
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("node %d: GET %s: key missing", i, key)
			}
			if err != nil {
				return fmt.Errorf("node %d: GET %s: %w", i, key, err)
			}
			if v != "v"+key {
				return fmt.Errorf("node %d: GET %s = %q, want %q", i, key, v, "v"+key)
			}
		}
	}
	return nil
}

func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return ""
}

// badKeys counts the keys that node i cannot serve or redirect correctly.
func (c *rotationCluster) badKeys(ctx context.Context, ip func(int) string, i int) int {
	cl := c.client(ip(i))
	defer cl.Close()
	bad := 0
	for key, owner := range c.keys {
		v, err := cl.Get(ctx, key).Result()
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "MOVED ") && strings.Fields(err.Error())[2] == c.addr(ip(owner)):
		case err != nil || v != "v"+key:
			bad++
		}
	}
	return bad
}

// following describes what replica i replicates from, "" for a master.
func (c *rotationCluster) following(ctx context.Context, ip func(int) string, i int) string {
	if i < masters {
		return ""
	}
	cl := c.client(ip(i))
	defer cl.Close()
	info, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return ", INFO: " + err.Error()
	}
	return fmt.Sprintf(", replica following %s (link %s; its master is at %s)",
		net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port")), infoField(info, "master_link_status"), c.addr(ip(owner(i))))
}

func (c *rotationCluster) clusterNodes(ctx context.Context, ip string) string {
	cl := c.client(ip)
	defer cl.Close()
	out, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return err.Error()
	}
	return out
}
