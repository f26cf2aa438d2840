package realnodes

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestValkeySentinel applies manifests/overlays/sentinel-3-valkey (the
// sentinel-3 overlay with components/valkey) on the real nodes, checks that
// every server and Sentinel really is Valkey 8.1.1, writes keys to the
// master, has every Sentinel write a Valkey-only directive into its
// sentinel.conf (SENTINEL SET primary-reboot-down-after-period), deletes
// the master pod, and checks with reads from the servers themselves (not
// the agent) that the new master has every acknowledged key, that every
// Sentinel names it, and that the replaced pod came back as its replica
// with the keys, its agent-init having merged the file Valkey wrote.
func TestValkeySentinel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "valkey")
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", filepath.Join(repoRoot(), "manifests", "overlays", "sentinel-3-valkey")); err != nil {
		t.Fatal(err)
	}
	master := waitMaster(t, ctx, ns, "")
	t.Logf("3 pods Ready, master %s, %.1fs after apply", master, time.Since(start).Seconds())
	pods := []string{"redis-0", "redis-1", "redis-2"}

	t.Run("engine", func(t *testing.T) {
		for _, p := range pods {
			for _, addr := range []string{podFQDN(p, ns), sentinelFQDN(p, ns)} {
				info := serverInfo(t, ctx, addr)
				if info["server_name"] != "valkey" || info["valkey_version"] != "8.1.1" {
					t.Errorf("%s: server_name %q, valkey_version %q; want valkey 8.1.1", addr, info["server_name"], info["valkey_version"])
				}
			}
		}
	})
	checkRoles(t, ctx, ns, pods, master)
	var addrs []string
	for _, p := range pods {
		addrs = append(addrs, podFQDN(p, ns))
	}
	checkAnnounced(t, ctx, ns, "redis", addrs, false)

	mc := redisClient(podFQDN(master, ns), "")
	defer mc.Close()
	acked := writeAcked(t, ctx, mc, master, 200)
	for _, p := range pods {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelFQDN(p, ns), Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true, DialTimeout: 2 * time.Second})
		err := sc.Set(ctx, "mymaster", "primary-reboot-down-after-period", "60000").Err()
		sc.Close()
		if err != nil {
			t.Fatalf("SENTINEL SET on %s: %v", p, err)
		}
	}
	deleted := time.Now()
	if err := cluster.DeletePod(ctx, ns, master); err != nil {
		t.Fatal(err)
	}
	newMaster := waitMaster(t, ctx, ns, master)
	t.Logf("master moved %s → %s; 3 pods Ready again %.1fs after the delete", master, newMaster, time.Since(deleted).Seconds())
	checkRoles(t, ctx, ns, pods, newMaster)
	// The new master and the replaced old one (now a replica) both hold
	// every acknowledged key.
	for _, p := range []string{newMaster, master} {
		c := redisClient(podFQDN(p, ns), "")
		missing := 0
		for _, k := range acked {
			if err := c.Get(ctx, k).Err(); err != nil {
				missing++
			}
		}
		c.Close()
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged keys missing", p, missing, len(acked))
		}
	}
	// The replaced pod's agent-init merged the sentinel.conf Valkey had
	// rewritten (with its primary- directive) and its Sentinel loaded it.
	var conf, errb bytes.Buffer
	if err := cluster.Exec(ctx, ns, master, "sentinel", []string{"cat", "/data/conf/sentinel.conf"}, &conf, &errb); err != nil {
		t.Fatalf("read %s's sentinel.conf: %v (%s)", master, err, errb.String())
	}
	for _, want := range []string{"# Written by redis-ha-agent", "\nsentinel primary-reboot-down-after-period mymaster 60000\n"} {
		if !strings.Contains(conf.String(), want) {
			t.Errorf("%s's sentinel.conf has no %q:\n%s", master, want, conf.String())
		}
	}
	nc := redisClient(podFQDN(newMaster, ns), "")
	defer nc.Close()
	if err := nc.Set(ctx, "after", "1", 0).Err(); err != nil {
		t.Errorf("new master %s refuses writes: %v", newMaster, err)
	}
	// Every Sentinel names the new master.
	want := strings.TrimSuffix(podFQDN(newMaster, ns), ":6379")
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range pods {
			sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelFQDN(p, ns), Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true, DialTimeout: 2 * time.Second})
			addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
			sc.Close()
			if err != nil || len(addr) != 2 || !strings.EqualFold(strings.TrimSuffix(addr[0], "."), want) {
				t.Logf("sentinel of %s: master %v, %v", p, addr, err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("not every Sentinel names %s within a minute: %v", want, err)
	}
}

// checkRoles asks each server for its role (INFO replication): master on
// master, and on every other pod a replica with its link up to master.
func checkRoles(t *testing.T, ctx context.Context, ns string, pods []string, master string) {
	t.Helper()
	masterHost := strings.TrimSuffix(podFQDN(master, ns), ":6379")
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range pods {
			c := redisClient(podFQDN(p, ns), "")
			s, err := c.Info(ctx, "replication").Result()
			c.Close()
			if err != nil {
				t.Logf("%s: INFO replication: %v", p, err)
				return false, nil
			}
			info := parseInfoReply(s)
			switch {
			case p == master && info["role"] != "master":
				t.Logf("%s: role %q, want master", p, info["role"])
				return false, nil
			case p != master && (info["role"] != "slave" || info["master_link_status"] != "up" || !strings.EqualFold(info["master_host"], masterHost)):
				t.Logf("%s: role %q, master %q link %q; want a replica of %s", p, info["role"], info["master_host"], info["master_link_status"], masterHost)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("roles (INFO replication) do not show master %s with two linked replicas: %v", master, err)
	}
}

// TestValkeyCluster applies manifests/overlays/cluster-6-valkey and checks,
// from every node itself, that the agent built a healthy Valkey cluster:
// Valkey 8.1.1 everywhere, cluster_state:ok with 16384 slots over 3
// masters and 6 known nodes, no node flagged fail or noaddr; then writes
// keys through a cluster client and reads each back from its slot's owner.
func TestValkeyCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "valkeyc")
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", filepath.Join(repoRoot(), "manifests", "overlays", "cluster-6-valkey")); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := 0; i < 6; i++ {
		addrs = append(addrs, fmt.Sprintf("redis-cluster-%d.redis-cluster-headless.%s.svc.cluster.local:6379", i, ns))
	}
	waitClusterAs(t, ctx, "Valkey cluster", addrs, func(a string) *redis.Client { return redisClient(a, "") })
	t.Logf("6 nodes report cluster_state:ok, 3 masters, %.1fs after apply", time.Since(start).Seconds())
	for _, a := range addrs {
		info := serverInfo(t, ctx, a)
		if info["server_name"] != "valkey" || info["valkey_version"] != "8.1.1" || info["server_mode"] != "cluster" {
			t.Errorf("%s: server_name %q, valkey_version %q, server_mode %q; want valkey 8.1.1 in cluster mode", a, info["server_name"], info["valkey_version"], info["server_mode"])
		}
	}
	checkAnnounced(t, ctx, ns, "redis-cluster", addrs, true)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRedirects: 16})
	defer cc.Close()
	for i := 0; i < 100; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("write k%d through the cluster: %v", i, err)
		}
	}
	// Read each key from the master that owns its slot, by asking each
	// master directly (a master refuses keys it does not own with MOVED).
	found := map[string]bool{}
	for _, a := range addrs {
		c := redisClient(a, "")
		role, _ := c.Do(ctx, "ROLE").Slice()
		if len(role) > 0 && role[0] == "master" {
			for i := 0; i < 100; i++ {
				k := fmt.Sprintf("k%d", i)
				if v, err := c.Get(ctx, k).Result(); err == nil && v == fmt.Sprint(i) {
					found[k] = true
				}
			}
		}
		c.Close()
	}
	if len(found) != 100 {
		t.Errorf("%d of 100 keys read back from their masters", len(found))
	}
}

// checkAnnounced: each Valkey server announces the zone of its pod's node
// (the node's topology.kubernetes.io/zone label, which the API server
// copied onto the pod and the downward API handed the agent) as
// availability-zone, and in cluster mode its pod name as
// cluster-announce-human-nodename. addrs[i] is pod <sts>-<i>. The agent
// sets them on its first pass after redis-server answers, so this polls.
func checkAnnounced(t *testing.T, ctx context.Context, ns, sts string, addrs []string, clusterMode bool) {
	t.Helper()
	for i, a := range addrs {
		pod := fmt.Sprintf("%s-%d", sts, i)
		p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod %s: %v", pod, err)
		}
		n, err := cluster.Clientset.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get node %s: %v", p.Spec.NodeName, err)
		}
		want := map[string]string{"availability-zone": n.Labels["topology.kubernetes.io/zone"]}
		if want["availability-zone"] == "" {
			t.Fatalf("node %s has no topology.kubernetes.io/zone label (localkube labels its default nodes zone-a..c)", n.Name)
		}
		if clusterMode {
			want["cluster-announce-human-nodename"] = pod
		}
		var last string
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			c := redisClient(a, "")
			defer c.Close()
			for param, v := range want {
				got, err := c.ConfigGet(ctx, param).Result()
				if err != nil || got[param] != v {
					last = fmt.Sprintf("%s %s = %q (%v), want %q", pod, param, got[param], err, v)
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			t.Errorf("%s on node %s: %s", pod, n.Name, last)
		}
	}
}

func sentinelFQDN(pod, ns string) string {
	return fmt.Sprintf("%s.redis-headless.%s.svc.cluster.local:26379", pod, ns)
}

// serverInfo is INFO server of the server (or Sentinel) at addr.
func serverInfo(t *testing.T, ctx context.Context, addr string) map[string]string {
	t.Helper()
	c := redisClient(addr, "")
	defer c.Close()
	s, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatalf("%s: INFO server: %v", addr, err)
	}
	return parseInfoReply(s)
}

func parseInfoReply(s string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}
