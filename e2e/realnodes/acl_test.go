package realnodes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestSentinelACL applies manifests/overlays/sentinel-3-acl (sentinel-3
// with components/acl: the agent, replication and Sentinel each log in as
// their own user, every default user off) with the password Secret
// redis-auth, and an application user defined the way README says, as a
// password hash in the overlay's redis.conf. It checks from outside the
// agent: a login without a user name is refused, each user the agent
// manages is refused data commands, the roles and links are right; then
// deletes the master pod and checks that the new master holds every
// WAIT-acknowledged key, every Sentinel names it, and no redis-server
// refused any command, key, channel or login meanwhile (ACL LOG).
func TestSentinelACL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "acl")
	password, appPass := randomHex(t), randomHex(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"}, Data: map[string][]byte{"password": []byte(password)}}
	if _, err := cluster.Clientset.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := aclKustomization(t, appPass, "sentinel", "sentinel-3-acl")
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", dir); err != nil {
		t.Fatal(err)
	}
	master := waitMaster(t, ctx, ns, "")
	t.Logf("3 pods Ready with ACL users, master %s, %.1fs after apply", master, time.Since(start).Seconds())
	pods := []string{"redis-0", "redis-1", "redis-2"}
	app := func(addr string) *redis.Client { return redisClientAs(addr, "app", appPass) }
	for _, p := range pods {
		c := app(podFQDN(p, ns))
		if err := c.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
			t.Fatalf("%s: ACL LOG RESET as app: %v", p, err)
		}
		c.Close()
	}

	t.Run("users", func(t *testing.T) {
		addr := podFQDN(master, ns)
		c := redisClient(addr, password)
		err := c.Ping(ctx).Err()
		c.Close()
		if err == nil {
			t.Errorf("%s: a login as the default user worked; want it off", master)
		}
		for _, d := range []struct {
			user string
			cmd  []any
		}{
			{"redis-ha-agent", []any{"GET", "k1"}},
			{"redis-ha-agent", []any{"FLUSHALL"}},
			{"redis-ha-replication", []any{"GET", "k1"}},
			{"redis-ha-sentinel", []any{"SET", "k1", "x"}},
		} {
			c := redisClientAs(addr, d.user, password)
			err := c.Do(ctx, d.cmd...).Err()
			c.Close()
			if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
				t.Errorf("%s as %s: %v, want NOPERM", fmt.Sprint(d.cmd...), d.user, err)
			}
		}
		// Those refusals were the test's: start the log again.
		c = app(addr)
		_ = c.Do(ctx, "ACL", "LOG", "RESET").Err()
		c.Close()
	})

	checkRolesAs(t, ctx, ns, pods, master, app)
	mc := app(podFQDN(master, ns))
	defer mc.Close()
	acked := writeAcked(t, ctx, mc, master, 200)
	deleted := time.Now()
	if err := cluster.DeletePod(ctx, ns, master); err != nil {
		t.Fatal(err)
	}
	newMaster := waitMaster(t, ctx, ns, master)
	t.Logf("master moved %s → %s; 3 pods Ready again %.1fs after the delete", master, newMaster, time.Since(deleted).Seconds())
	checkRolesAs(t, ctx, ns, pods, newMaster, app)
	nc := app(podFQDN(newMaster, ns))
	defer nc.Close()
	missing := 0
	for _, k := range acked {
		if err := nc.Get(ctx, k).Err(); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("new master %s: %d of %d WAIT-acknowledged keys missing", newMaster, missing, len(acked))
	}
	want := strings.TrimSuffix(podFQDN(newMaster, ns), ":6379")
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range pods {
			// Sentinels keep their default user, with the Secret's password.
			sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelFQDN(p, ns), Password: password, Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true})
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
	// The recreated pod's server is new; the other two saw the whole
	// switchover.
	for _, p := range pods {
		c := app(podFQDN(p, ns))
		v, err := c.Do(ctx, "ACL", "LOG").Slice()
		c.Close()
		if err != nil {
			t.Errorf("%s: ACL LOG: %v", p, err)
			continue
		}
		if len(v) > 0 {
			t.Errorf("%s refused %d time(s) during the switchover: %v", p, len(v), v)
		}
	}
}

// aclKustomization is the overlay with the application user added to the
// base's redis.conf (before the agent's include), as a password hash, the
// way README's "ACL users" says.
func aclKustomization(t *testing.T, appPass, base, overlayName string) string {
	t.Helper()
	conf0, err := os.ReadFile(filepath.Join(repoRoot(), "manifests", "base", base, "redis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(appPass))
	user := "user app on #" + hex.EncodeToString(sum[:]) + " ~* &* +@all\n"
	conf := strings.Replace(string(conf0), "include /data/conf/redis-ha.conf", user+"include /data/conf/redis-ha.conf", 1)
	if conf == string(conf0) {
		t.Fatal("the base redis.conf has no include line to put the application user before")
	}
	dir := t.TempDir()
	overlay, err := filepath.Rel(dir, filepath.Join(repoRoot(), "manifests", "overlays", overlayName))
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
configMapGenerator:
  - name: %s
    behavior: replace
    files:
      - redis.conf
`, overlay, map[string]string{"sentinel": "redis-config", "cluster": "redis-cluster-config"}[base])
	for name, data := range map[string]string{"kustomization.yaml": k, "redis.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkRolesAs is checkRoles logging in with dial's client.
func checkRolesAs(t *testing.T, ctx context.Context, ns string, pods []string, master string, dial func(addr string) *redis.Client) {
	t.Helper()
	masterHost := strings.TrimSuffix(podFQDN(master, ns), ":6379")
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range pods {
			c := dial(podFQDN(p, ns))
			s, err := c.Info(ctx, "replication").Result()
			c.Close()
			if err != nil {
				t.Logf("%s: INFO replication: %v", p, err)
				return false, nil
			}
			info := parseInfoReply(s)
			switch {
			case p == master && info["role"] != "master":
				return false, nil
			case p != master && (info["role"] != "slave" || info["master_link_status"] != "up" || !strings.EqualFold(info["master_host"], masterHost)):
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("roles (INFO replication) do not show master %s with two linked replicas: %v", master, err)
	}
}

// redisClientAs is redisClient logging in as user.
func redisClientAs(addr, user, password string) *redis.Client {
	c := redisClient(addr, password)
	o := c.Options()
	c.Close()
	o.Username = user
	return redis.NewClient(o)
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestClusterACL applies manifests/overlays/cluster-6-acl (cluster-6 with
// components/acl) with an application user from redis.conf, and checks
// from every node: cluster_state ok, a login as default refused, the
// agent's and the replication user refused data commands; then writes
// keys through a cluster client as the application, deletes a master pod
// (its agent's preStop runs CLUSTER FAILOVER as the agent's user) and
// reads every key back, with no ACL log entry on any node.
func TestClusterACL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "aclc")
	password, appPass := randomHex(t), randomHex(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-auth"}, Data: map[string][]byte{"password": []byte(password)}}
	if _, err := cluster.Clientset.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", aclKustomization(t, appPass, "cluster", "cluster-6-acl")); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := 0; i < 6; i++ {
		addrs = append(addrs, fmt.Sprintf("redis-cluster-%d.redis-cluster-headless.%s.svc.cluster.local:6379", i, ns))
	}
	app := func(addr string) *redis.Client { return redisClientAs(addr, "app", appPass) }
	waitClusterAs(t, ctx, "cluster", addrs, app)
	t.Logf("6 nodes report cluster_state:ok with ACL users, %.1fs after apply", time.Since(start).Seconds())
	for _, a := range addrs {
		c := app(a)
		_ = c.Do(ctx, "ACL", "LOG", "RESET").Err()
		c.Close()
	}
	c := redisClient(addrs[0], password)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("a login as the default user worked; want it off")
	}
	c.Close()
	for _, user := range []string{"redis-ha-agent", "redis-ha-replication"} {
		c := redisClientAs(addrs[0], user, password)
		err := c.Do(ctx, "GET", "k1").Err()
		c.Close()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("GET as %s: %v, want NOPERM", user, err)
		}
	}
	c = app(addrs[0])
	_ = c.Do(ctx, "ACL", "LOG", "RESET").Err()
	c.Close()

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: cluster.DialContext, Protocol: 2, DisableIdentity: true, Username: "app", Password: appPass,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRedirects: 16})
	defer cc.Close()
	for i := 0; i < 200; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("write k%d through the cluster as app: %v", i, err)
		}
	}
	var master string
	for i, a := range addrs {
		c := app(a)
		role, _ := c.Do(ctx, "ROLE").Slice()
		c.Close()
		if len(role) > 0 && role[0] == "master" {
			master = fmt.Sprintf("redis-cluster-%d", i)
			break
		}
	}
	old, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, master, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := cluster.DeletePod(ctx, ns, master); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, master, metav1.GetOptions{})
		return err == nil && p.UID != old.UID && p.DeletionTimestamp == nil && podReadyCond(p), nil
	})
	if err != nil {
		t.Fatalf("%s not replaced and Ready within 4 minutes: %v", master, err)
	}
	waitClusterAs(t, ctx, "cluster", addrs, app)
	t.Logf("master pod %s deleted; replaced and cluster_state ok from all 6 nodes %.1fs later", master, time.Since(deleted).Seconds())
	missing := 0
	for i := 0; i < 200; i++ {
		if v, err := cc.Get(ctx, fmt.Sprintf("k%d", i)).Int(); err != nil || v != i {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of 200 keys missing after deleting master pod %s", missing, master)
	}
	for i, a := range addrs {
		if fmt.Sprintf("redis-cluster-%d", i) == master {
			continue // a new server: its log starts with it
		}
		c := app(a)
		v, err := c.Do(ctx, "ACL", "LOG").Slice()
		c.Close()
		if err != nil || len(v) > 0 {
			t.Errorf("%s: ACL LOG %v %v, want no entry", a, v, err)
		}
	}
}

// waitClusterAs waits until every node, asked through dial's client,
// reports cluster_state:ok with 16384 slots over 3 masters and 6 known
// nodes, none flagged fail or noaddr; what names the cluster in the
// failure.
func waitClusterAs(t *testing.T, ctx context.Context, what string, addrs []string, dial func(addr string) *redis.Client) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, a := range addrs {
			c := dial(a)
			s, err := c.ClusterInfo(ctx).Result()
			nodes, nerr := c.ClusterNodes(ctx).Result()
			c.Close()
			if err != nil || nerr != nil {
				last = fmt.Sprintf("%s: %v %v", a, err, nerr)
				return false, nil
			}
			info := parseInfoReply(s)
			if info["cluster_state"] != "ok" || info["cluster_slots_assigned"] != "16384" || info["cluster_known_nodes"] != "6" || info["cluster_size"] != "3" {
				last = fmt.Sprintf("%s: state %s, slots %s, known %s, size %s", a, info["cluster_state"], info["cluster_slots_assigned"], info["cluster_known_nodes"], info["cluster_size"])
				return false, nil
			}
			if strings.Contains(nodes, "fail") || strings.Contains(nodes, "noaddr") {
				last = fmt.Sprintf("%s: CLUSTER NODES has fail/noaddr:\n%s", a, nodes)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s not healthy from every node: %v (last: %s)", what, err, last)
	}
}
