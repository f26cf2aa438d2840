package realnodes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
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

// TestSentinelTLS applies manifests/overlays/sentinel-3-tls (sentinel-3
// with components/tls) on the real nodes with a Secret redis-tls the test
// issues from its own CA (SAN: the headless Service wildcard, as README
// says), and checks from outside the agent: every server and Sentinel
// serves TLS only (CONFIG GET, and a plaintext PING to 6379 and 26379
// refused), replicas are linked over TLS; then deletes the master pod and
// checks that the new master holds every WAIT-acknowledged key and every
// Sentinel names it; then renews the Secret and checks that every server
// and Sentinel serves the new certificate without a pod restart.
func TestSentinelTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "tls")
	ca := newTestCA(t)
	// The SANs README recommends: the pods' wildcard, and the Services
	// clients reach over TLS with host name checks.
	sans := []string{"*.redis-headless." + ns + ".svc.cluster.local", "redis-master." + ns + ".svc.cluster.local", "redis-sentinel." + ns + ".svc.cluster.local"}
	secret := ca.secret(t, sans)
	if _, err := cluster.Clientset.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tc := ca.clientTLS(t)
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", filepath.Join(repoRoot(), "manifests", "overlays", "sentinel-3-tls")); err != nil {
		t.Fatal(err)
	}
	master := waitMaster(t, ctx, ns, "")
	t.Logf("3 pods Ready over TLS, master %s, %.1fs after apply", master, time.Since(start).Seconds())
	pods := []string{"redis-0", "redis-1", "redis-2"}

	t.Run("TLS only", func(t *testing.T) {
		for _, p := range pods {
			c := tlsRedisClient(podFQDN(p, ns), tc)
			for param, want := range map[string]string{"port": "0", "tls-port": "6379", "tls-replication": "yes", "tls-auth-clients": "yes"} {
				got, err := c.ConfigGet(ctx, param).Result()
				if err != nil || got[param] != want {
					t.Errorf("%s: CONFIG GET %s = %v %v, want %s", p, param, got, err, want)
				}
			}
			c.Close()
			for _, addr := range []string{podFQDN(p, ns), sentinelFQDN(p, ns)} {
				pc := redisClient(addr, "")
				err := pc.Ping(ctx).Err()
				pc.Close()
				if err == nil {
					t.Errorf("%s answered a plaintext PING", addr)
				} else {
					t.Logf("plaintext PING to %s refused: %v", addr, err)
				}
			}
		}
		checkRolesTLS(t, ctx, ns, pods, master, tc)
	})

	t.Run("Services", func(t *testing.T) { testTLSServices(t, ctx, ns, tc) })

	mc := tlsRedisClient(podFQDN(master, ns), tc)
	defer mc.Close()
	acked := writeAcked(t, ctx, mc, master, 200)
	deleted := time.Now()
	if err := cluster.DeletePod(ctx, ns, master); err != nil {
		t.Fatal(err)
	}
	newMaster := waitMaster(t, ctx, ns, master)
	t.Logf("master moved %s → %s; 3 pods Ready again %.1fs after the delete", master, newMaster, time.Since(deleted).Seconds())
	t.Run("delete master", func(t *testing.T) {
		checkRolesTLS(t, ctx, ns, pods, newMaster, tc)
		nc := tlsRedisClient(podFQDN(newMaster, ns), tc)
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
		t.Logf("new master %s holds %d of %d WAIT-acknowledged keys", newMaster, len(acked)-missing, len(acked))
		want := strings.TrimSuffix(podFQDN(newMaster, ns), ":6379")
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			for _, p := range pods {
				sc := redis.NewSentinelClient(tlsOptions(sentinelFQDN(p, ns), tc))
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
			t.Errorf("not every Sentinel names %s within a minute (over TLS): %v", want, err)
		}
	})
	t.Run("renewal", func(t *testing.T) { testRenewal(t, ctx, ns, pods, ca, sans, tc) })
}

// TestClusterTLS applies manifests/overlays/cluster-6-tls with a Secret
// for *.redis-cluster-headless.<ns>.svc.cluster.local and checks from every
// node itself, over TLS: cluster_state ok with 3 masters and no failed
// node (the cluster bus is TLS: tls-cluster yes, port 0), a plaintext PING
// refused; then writes keys through a cluster client, deletes a master pod
// (its agent's preStop runs CLUSTER FAILOVER on a replica it dials by IP
// and verifies by name) and reads every key back.
func TestClusterTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "tlsc")
	ca := newTestCA(t)
	if _, err := cluster.Clientset.CoreV1().Secrets(ns).Create(ctx, ca.secret(t, []string{"*.redis-cluster-headless." + ns + ".svc.cluster.local"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tc := ca.clientTLS(t)
	start := time.Now()
	if err := cluster.Kubectl(ctx, nil, os.Stderr, "apply", "--server-side", "-n", ns, "-k", filepath.Join(repoRoot(), "manifests", "overlays", "cluster-6-tls")); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := 0; i < 6; i++ {
		addrs = append(addrs, fmt.Sprintf("redis-cluster-%d.redis-cluster-headless.%s.svc.cluster.local:6379", i, ns))
	}
	waitClusterTLS(t, ctx, addrs, tc)
	t.Logf("6 nodes report cluster_state:ok over TLS, %.1fs after apply", time.Since(start).Seconds())
	for _, a := range addrs {
		c := tlsRedisClient(a, tc)
		for param, want := range map[string]string{"port": "0", "tls-port": "6379", "tls-cluster": "yes", "tls-replication": "yes"} {
			got, err := c.ConfigGet(ctx, param).Result()
			if err != nil || got[param] != want {
				t.Errorf("%s: CONFIG GET %s = %v %v, want %s", a, param, got, err, want)
			}
		}
		c.Close()
		pc := redisClient(a, "")
		if err := pc.Ping(ctx).Err(); err == nil {
			t.Errorf("%s answered a plaintext PING", a)
		}
		pc.Close()
	}
	name := strings.TrimSuffix(addrs[0], ":6379")
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: tlsDialerAs(tc, name), Protocol: 2, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRedirects: 16})
	defer cc.Close()
	for i := 0; i < 200; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("write k%d through the cluster over TLS: %v", i, err)
		}
	}
	var master string
	for i, a := range addrs {
		c := tlsRedisClient(a, tc)
		role, _ := c.Do(ctx, "ROLE").Slice()
		c.Close()
		if len(role) > 0 && role[0] == "master" {
			master = fmt.Sprintf("redis-cluster-%d", i)
			break
		}
	}
	// A master hands its slots over only to a replica that is online; one
	// still in its first sync is no candidate (the agent then says
	// FailoverSkipped), and this test is about the handover itself.
	waitReplicaOnline(t, ctx, addrs[masterOrdinal(master)], tc)
	old, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, master, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := cluster.DeletePod(ctx, ns, master); err != nil {
		t.Fatal(err)
	}
	// The replacement pod (a new UID) Ready, then every node healthy.
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, master, metav1.GetOptions{})
		return err == nil && p.UID != old.UID && p.DeletionTimestamp == nil && podReadyCond(p), nil
	})
	if err != nil {
		t.Fatalf("%s not replaced and Ready within 4 minutes: %v", master, err)
	}
	waitClusterTLS(t, ctx, addrs, tc)
	t.Logf("master pod %s deleted; replaced and cluster_state ok from all 6 nodes %.1fs later", master, time.Since(deleted).Seconds())
	rc := tlsRedisClient(fmt.Sprintf("%s.redis-cluster-headless.%s.svc.cluster.local:6379", master, ns), tc)
	role, _ := rc.Do(ctx, "ROLE").Slice()
	rc.Close()
	if len(role) == 0 || role[0] != "slave" {
		t.Errorf("replaced %s has role %v, want a replica: its preStop CLUSTER FAILOVER (over TLS) hands its slots to its replica; the agents' Events:\n%s", master, role, agentEvents(ctx, ns))
	}
	missing := 0
	for i := 0; i < 200; i++ {
		if v, err := cc.Get(ctx, fmt.Sprintf("k%d", i)).Int(); err != nil || v != i {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of 200 keys missing after deleting master pod %s", missing, master)
	}
}

// waitClusterTLS waits until every node answers over TLS with
// cluster_state ok, 16384 slots, 6 known nodes, 3 masters, no fail/noaddr.
func waitClusterTLS(t *testing.T, ctx context.Context, addrs []string, tc *tls.Config) {
	t.Helper()
	waitClusterAs(t, ctx, "cluster over TLS", addrs, func(a string) *redis.Client { return tlsRedisClient(a, tc) })
}

// testTLSServices: a plain client through redis-master and a
// Sentinel-aware client through redis-sentinel, both over TLS with the
// server's name checked, reach the master.
func testTLSServices(t *testing.T, ctx context.Context, ns string, tc *tls.Config) {
	c := tlsRedisClient("redis-master."+ns+".svc.cluster.local:6379", tc)
	defer c.Close()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return c.Set(ctx, "via-master-service", "1", 0).Err() == nil, nil
	})
	if err != nil {
		t.Errorf("no write through redis-master over TLS within 30s: %v (last: %v)", err, c.Set(ctx, "via-master-service", "1", 0).Err())
	}
	fc := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: "mymaster", SentinelAddrs: []string{"redis-sentinel." + ns + ".svc.cluster.local:26379"},
		Dialer: tlsDialer(tc), Protocol: 2, DisableIdentity: true, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	defer fc.Close()
	if err := fc.Set(ctx, "via-sentinel", "1", 0).Err(); err != nil {
		t.Errorf("write through a Sentinel-aware client (redis-sentinel Service) over TLS: %v", err)
	}
}

// testRenewal replaces the Secret's certificate, as cert-manager does, and
// waits until every server and Sentinel serves it: the kubelet updates the
// volume, the agent reloads redis-server and restarts the Sentinel process.
// No pod may be recreated, and only the sentinel containers restart.
func testRenewal(t *testing.T, ctx context.Context, ns string, pods []string, ca *testCA, sans []string, tc *tls.Config) {
	before := map[string]string{}
	for _, p := range pods {
		pod, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, p, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before[p] = string(pod.UID)
	}
	renewed := ca.secret(t, sans)
	if _, err := cluster.Clientset.CoreV1().Secrets(ns).Update(ctx, renewed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := leafSerial(t, renewed.Data["tls.crt"])
	start := time.Now()
	for _, p := range pods {
		for _, addr := range []string{podFQDN(p, ns), sentinelFQDN(p, ns)} {
			var got string
			err := wait.PollUntilContextTimeout(ctx, time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
				got = servedSerial(ctx, addr, tc)
				return got == want, nil
			})
			if err != nil {
				t.Errorf("%s serves %s, not the renewed certificate %s, %s after the Secret update", addr, got, want, time.Since(start).Round(time.Second))
			}
		}
	}
	t.Logf("every server and Sentinel serves the renewed certificate %.1fs after the Secret update", time.Since(start).Seconds())
	// The kubelet reports a container restart a moment after it happened:
	// poll until every sentinel container shows the one the agent caused.
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		var st []string
		ok := true
		for _, p := range pods {
			pod, err := cluster.Clientset.CoreV1().Pods(ns).Get(ctx, p, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			if string(pod.UID) != before[p] {
				t.Errorf("pod %s was recreated during the renewal", p)
				return true, nil
			}
			for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				switch {
				case cs.Name == "sentinel":
					ok = ok && cs.RestartCount >= 1
					st = append(st, fmt.Sprintf("%s/sentinel restarts %d", p, cs.RestartCount))
				case cs.RestartCount > 0:
					t.Errorf("pod %s container %s restarted %d times during the renewal", p, cs.Name, cs.RestartCount)
				}
			}
		}
		last = strings.Join(st, ", ")
		return ok, nil
	})
	if err != nil {
		t.Errorf("not every sentinel container restarted once to load the renewed files: %s", last)
	}
	t.Logf("%s (redis-sentinel cannot reload TLS files; no other container restarted, no pod recreated)", last)
}

// checkRolesTLS is checkRoles over TLS.
func checkRolesTLS(t *testing.T, ctx context.Context, ns string, pods []string, master string, tc *tls.Config) {
	t.Helper()
	masterHost := strings.TrimSuffix(podFQDN(master, ns), ":6379")
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range pods {
			c := tlsRedisClient(podFQDN(p, ns), tc)
			s, err := c.Info(ctx, "replication").Result()
			c.Close()
			info := parseInfoReply(s)
			switch {
			case err != nil:
				t.Logf("%s: INFO replication over TLS: %v", p, err)
				return false, nil
			case p == master && info["role"] != "master":
				return false, nil
			case p != master && (info["role"] != "slave" || info["master_link_status"] != "up" || !strings.EqualFold(info["master_host"], masterHost)):
				t.Logf("%s: role %q, master %q link %q; want a replica of %s", p, info["role"], info["master_host"], info["master_link_status"], masterHost)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("roles over TLS do not show master %s with two linked replicas: %v", master, err)
	}
}

// tlsOptions dial through the cluster network, then TLS verified against
// the test CA under the dialed host name.
func tlsOptions(addr string, tc *tls.Config) *redis.Options {
	return &redis.Options{Addr: addr, Dialer: tlsDialer(tc), Protocol: 2, DisableIdentity: true,
		MaxRetries: 3, DialTimeout: 2 * time.Second, ReadTimeout: 6 * time.Second, WriteTimeout: 2 * time.Second, PoolSize: 2}
}

func tlsRedisClient(addr string, tc *tls.Config) *redis.Client {
	return redis.NewClient(tlsOptions(addr, tc))
}

func tlsDialer(tc *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return tlsDialerAs(tc, "")
}

// tlsDialerAs verifies every server under serverName ("": the dialed
// host): cluster clients are redirected to node IPs, which the wildcard
// DNS SAN does not cover.
func tlsDialerAs(tc *tls.Config, serverName string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := cluster.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		cfg := tc.Clone()
		cfg.ServerName = host
		if serverName != "" {
			cfg.ServerName = serverName
		}
		tlsConn := tls.Client(c, cfg)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tlsConn, nil
	}
}

// servedSerial is the serial of the certificate addr presents to a new
// connection, or the dial error.
func servedSerial(ctx context.Context, addr string, tc *tls.Config) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := tlsDialer(tc)(ctx, "tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// testCA issues the test's certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: newSerial(t), Subject: pkix.Name{CommonName: "redis-ha-agent e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, cn string, dns []string) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: newSerial(t), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// secret is redis-tls in the layout cert-manager writes.
func (ca *testCA) secret(t *testing.T, dns []string) *corev1.Secret {
	c, k := ca.issue(t, "redis", dns)
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "redis-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": c, "tls.key": k, "ca.crt": ca.pem}}
}

func (ca *testCA) clientTLS(t *testing.T) *tls.Config {
	c, k := ca.issue(t, "e2e-client", nil)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

func leafSerial(t *testing.T, certPEM []byte) string {
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSerial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func masterOrdinal(pod string) int {
	var i int
	_, _ = fmt.Sscanf(pod[strings.LastIndex(pod, "-")+1:], "%d", &i)
	return i
}

// waitReplicaOnline waits until the master at addr streams to a replica
// that is online and has acknowledged the master's offset of the moment.
func waitReplicaOnline(t *testing.T, ctx context.Context, addr string, tc *tls.Config) {
	t.Helper()
	c := tlsRedisClient(addr, tc)
	defer c.Close()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		s, err := c.Info(ctx, "replication").Result()
		if err != nil {
			last = err.Error()
			return false, nil
		}
		info := parseInfoReply(s)
		last = fmt.Sprintf("connected_slaves=%s slave0=%s master_repl_offset=%s", info["connected_slaves"], info["slave0"], info["master_repl_offset"])
		return strings.Contains(info["slave0"], "state=online") && strings.Contains(info["slave0"], "offset="+info["master_repl_offset"]+","), nil
	})
	if err != nil {
		t.Fatalf("%s: no online replica caught up within 2 minutes (last: %s)", addr, last)
	}
}

// agentEvents lists the Events in ns (the agents write events.k8s.io/v1),
// oldest first, one per line.
func agentEvents(ctx context.Context, ns string) string {
	l, err := cluster.Clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range l.Items {
		fmt.Fprintf(&b, "  %s %s %s %s: %s\n", e.EventTime.Format("15:04:05.000"), e.Regarding.Name, e.Type, e.Reason, e.Note)
	}
	return b.String()
}
