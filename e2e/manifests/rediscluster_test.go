package manifests

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
)

// nodeClient talks to one Redis node by pod IP from the cluster network.
func nodeClient(ip string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: ip + ":6379", Dialer: cluster.DialContext, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
}

// clusterClient is a cluster-aware client seeded with the pods' IPs; it
// follows MOVED to whatever addresses the nodes announce.
func clusterClient(pods []corev1.Pod) *redis.ClusterClient {
	var addrs []string
	for _, p := range pods {
		addrs = append(addrs, p.Status.PodIP+":6379")
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: cluster.DialContext, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRedirects: 4})
}

// createCluster runs the seed's manual step: redis-cli --cluster create over
// the pods' IPs from inside the first pod, then waits for every node to
// report cluster_state:ok.
func createCluster(ctx context.Context, ns string, pods []corev1.Pod) (string, error) {
	// The seed's pods have no readiness probe: Ready means started, not
	// listening.
	if err := waitPing(ctx, pods, 30*time.Second); err != nil {
		return "", err
	}
	args := []string{"redis-cli", "--cluster", "create"}
	for _, p := range pods {
		args = append(args, p.Status.PodIP+":6379")
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := execIn(ctx, ns, pods[0].Name, "redis", args...)
	if err != nil {
		return out, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var bad []string
		for _, p := range pods {
			if s := clusterState(ctx, p.Status.PodIP); s != "ok" {
				bad = append(bad, p.Name+"="+s)
			}
		}
		if len(bad) == 0 {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("cluster_state after redis-cli --cluster create: %v", bad)
		}
		time.Sleep(200 * time.Millisecond) // poll interval, bounded by deadline
	}
}

// waitPing waits until every pod's redis-server answers PING.
func waitPing(ctx context.Context, pods []corev1.Pod, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, p := range pods {
		c := nodeClient(p.Status.PodIP)
		for {
			err := c.Ping(ctx).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				return fmt.Errorf("redis-server in %s (%s) does not answer PING after %s: %w", p.Name, p.Status.PodIP, timeout, err)
			}
			time.Sleep(100 * time.Millisecond) // poll interval, bounded by deadline
		}
		c.Close()
	}
	return nil
}

func clusterState(ctx context.Context, ip string) string {
	c := nodeClient(ip)
	defer c.Close()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return "error: " + err.Error()
	}
	return field(info, "cluster_state")
}

// field reads "name:value" from INFO-style output.
func field(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return ""
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	ID, IP, Flags, Master string
}

func parseClusterNodes(s string) []clusterNode {
	var out []clusterNode
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		addr := f[1]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		ip := addr
		if i := strings.LastIndexByte(addr, ':'); i >= 0 {
			ip = addr[:i]
		}
		out = append(out, clusterNode{ID: f[0], IP: ip, Flags: f[2], Master: f[3]})
	}
	return out
}

// clusterProblems checks what DESIGN.md says cluster_state:ok does not
// prove after an IP change: every node reports cluster_state:ok; every
// node's CLUSTER NODES lists all n nodes, none noaddr/fail/handshake, each
// at the IP that node itself reports for `myself`; every replica's
// master_host is its master's current IP with the link up; and every key is
// readable, with its value, through a cluster client. Empty means healthy.
func clusterProblems(ctx context.Context, pods []corev1.Pod, keys map[string]string) []string {
	var problems []string
	current := map[string]string{} // node ID -> IP the node reports for itself
	views := map[string][]clusterNode{}
	masterHost := map[string]string{} // pod -> master_host of a replica
	for _, p := range pods {
		c := nodeClient(p.Status.PodIP)
		s, err := c.ClusterNodes(ctx).Result()
		info, ierr := c.Info(ctx, "replication", "cluster").Result()
		cinfo, cerr := c.ClusterInfo(ctx).Result()
		c.Close()
		if err != nil || ierr != nil || cerr != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): %v %v %v", p.Name, p.Status.PodIP, err, ierr, cerr))
			continue
		}
		if st := field(cinfo, "cluster_state"); st != "ok" {
			problems = append(problems, fmt.Sprintf("%s: cluster_state:%s", p.Name, st))
		}
		nodes := parseClusterNodes(s)
		views[p.Name] = nodes
		for _, n := range nodes {
			if strings.Contains(n.Flags, "myself") {
				current[n.ID] = n.IP
				if n.IP != p.Status.PodIP {
					problems = append(problems, fmt.Sprintf("%s: myself at %s, pod IP is %s", p.Name, n.IP, p.Status.PodIP))
				}
			}
		}
		if field(info, "role") == "slave" {
			masterHost[p.Name] = field(info, "master_host")
		}
		if field(info, "role") == "slave" && field(info, "master_link_status") != "up" {
			problems = append(problems, fmt.Sprintf("%s: replica with master_link_status:%s (master_host %s)", p.Name, field(info, "master_link_status"), field(info, "master_host")))
		}
	}
	for _, p := range pods {
		nodes := views[p.Name]
		if nodes == nil {
			continue
		}
		if len(nodes) != len(pods) {
			problems = append(problems, fmt.Sprintf("%s: CLUSTER NODES lists %d nodes, want %d", p.Name, len(nodes), len(pods)))
		}
		for _, n := range nodes {
			for _, bad := range []string{"noaddr", "fail", "handshake"} {
				if strings.Contains(n.Flags, bad) {
					problems = append(problems, fmt.Sprintf("%s sees %s at %q flagged %s", p.Name, n.ID[:8], n.IP, n.Flags))
					break
				}
			}
			if ip, ok := current[n.ID]; ok && ip != n.IP {
				problems = append(problems, fmt.Sprintf("%s sees %s at %q, that node is at %s", p.Name, n.ID[:8], n.IP, ip))
			}
			if strings.Contains(n.Flags, "myself") && strings.Contains(n.Flags, "slave") {
				switch ip := current[n.Master]; {
				case ip == "":
					problems = append(problems, fmt.Sprintf("%s replicates %s, which no pod reports as myself", p.Name, n.Master[:8]))
				case masterHost[p.Name] != ip:
					problems = append(problems, fmt.Sprintf("%s replicates %s at %s, but master_host is %s", p.Name, n.Master[:8], ip, masterHost[p.Name]))
				}
			}
		}
	}
	if len(problems) > 0 {
		return problems
	}
	cc := clusterClient(pods)
	defer cc.Close()
	missing := 0
	var first string
	for k, want := range keys {
		got, err := cc.Get(ctx, k).Result()
		if err != nil || got != want {
			if missing == 0 {
				first = fmt.Sprintf("GET %s = %q, %v; want %q", k, got, err, want)
			}
			missing++
		}
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d keys not readable through a cluster client (first: %s)", missing, len(keys), first))
	}
	return problems
}
