package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestClusterIntegrationTLS: six redis-servers with TLS only (clients,
// replication and the cluster bus; one wildcard certificate for the
// headless Service shared by all, verified under each pod's FQDN while the
// agents dial IPs) form a cluster through the agents; a plaintext client
// is refused; a seventh pod joins as a master and slots move to it with
// MIGRATE over TLS; renewed files are served by every node without a
// restart.
func TestClusterIntegrationTLS(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server")
	c := newTestCluster(t, 47, "master")
	c.useTLS()
	took := formCluster(t, c, 6)
	t.Logf("6 pods -> 3 masters x 1 replica over TLS: %s", took.Round(time.Millisecond))
	ctx := context.Background()
	for o := 0; o < 6; o++ {
		for param, want := range map[string]string{"port": "0", "tls-port": "6379", "tls-cluster": "yes", "tls-replication": "yes"} {
			got, err := c.client(o).ConfigGet(ctx, param).Result()
			if err != nil || got[param] != want {
				t.Errorf("pod %d: CONFIG GET %s = %v %v, want %s", o, param, got, err, want)
			}
		}
	}
	plain := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", c.ipOf(0), testRedisPort), Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Errorf("a plaintext client got PONG from pod 0")
	}
	plain.Close()

	cc := c.clusterClient()
	writeKeys(t, cc, "tls", 3000)
	c.startRedis(6)
	c.startAgent(6)
	c.expected.Store(7)
	proctest.Eventually(t, 90*time.Second, func() error {
		if err := c.healthy(7); err != nil {
			return err
		}
		if m, _, _ := c.topology(7); m[6] < 4000 {
			return fmt.Errorf("pod 6 holds %d slots", m[6])
		}
		return nil
	}, "pod 6 a master with slots moved over TLS (MIGRATE)")
	checkKeys(t, cc, "tls", 3000)

	// Renewal: the Secret's files are replaced; each agent's watcher makes
	// its redis-server reload them.
	want := renewClusterCert(t, c)
	for o := 0; o < 7; o++ {
		addr := fmt.Sprintf("%s:%d", c.ipOf(o), testRedisPort)
		proctest.Eventually(t, 20*time.Second, func() error {
			if got := proctest.ServedSerial(t, addr, c.clientTLS); got != want {
				return fmt.Errorf("serves %s, want %s", got, want)
			}
			return nil
		}, "pod %d serves the renewed certificate", o)
	}
	proctest.Eventually(t, 30*time.Second, func() error { return c.healthy(7) }, "healthy after the renewal")
	checkKeys(t, c.clusterClient(), "tls", 3000)
}

// renewClusterCert writes a new certificate and key over the shared files
// (same CA) and returns the new serial.
func renewClusterCert(t *testing.T, c *testCluster) string {
	t.Helper()
	ca := c.ca
	certPEM, keyPEM := ca.Issue(t, proctest.Leaf{CommonName: "redis", DNS: []string{"*.redis-headless.itest.svc.cluster.local"}})
	if _, err := atomicfile.Write(c.tls.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := atomicfile.Write(c.tls.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return proctest.MustLeaf(t, certPEM).SerialNumber.String()
}
