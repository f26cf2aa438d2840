package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// WaitSentinel waits until the StatefulSet has want pods, all Ready, exactly
// one labelled master whose redis-server says role:master, and every other
// pod labelled replica with its master link up, replicating from that
// master. It returns the master's pod name.
func (e Env) WaitSentinel(ctx context.Context, ns, sts string, want int, timeout time.Duration) (string, error) {
	var master string
	err := poll(ctx, fmt.Sprintf("%d pods of %s/%s Ready with 1 master and %d replicas", want, ns, sts, want-1), timeout, 250*time.Millisecond, func(ctx context.Context) error {
		m, err := e.sentinelHealthy(ctx, ns, sts, want)
		master = m
		return err
	})
	return master, err
}

func (e Env) sentinelHealthy(ctx context.Context, ns, sts string, want int) (string, error) {
	pods, err := e.podsOf(ctx, ns, sts)
	if err != nil {
		return "", err
	}
	if len(pods) != want {
		return "", fmt.Errorf("%d pods, want %d", len(pods), want)
	}
	var masters []string
	for i := range pods {
		p := &pods[i]
		if !podReady(p) {
			return "", fmt.Errorf("pod %s not Ready", p.Name)
		}
		switch l := p.Labels[RoleLabel]; l {
		case "master":
			masters = append(masters, p.Name)
		case "replica":
		default:
			return "", fmt.Errorf("pod %s has role label %q", p.Name, l)
		}
	}
	if len(masters) != 1 {
		return "", fmt.Errorf("pods labelled master: %v, want exactly one", masters)
	}
	master := masters[0]
	var errs []error
	for i := range pods {
		p := &pods[i]
		c := e.newClient(redisAddr(p))
		r, err := e.replicationOf(ctx, c)
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: INFO replication: %w", p.Name, err))
			continue
		}
		if p.Name == master {
			if r.Role != "master" {
				errs = append(errs, fmt.Errorf("%s is labelled master but redis-server says role:%s", p.Name, r.Role))
			}
			continue
		}
		if r.Role != "slave" || !r.LinkUp {
			errs = append(errs, fmt.Errorf("%s: role:%s, master link up %v", p.Name, r.Role, r.LinkUp))
			continue
		}
		if !strings.HasPrefix(r.MasterHost, master+".") && r.MasterHost != podIP(pods, master) {
			errs = append(errs, fmt.Errorf("%s replicates from %s, not from the labelled master %s", p.Name, r.MasterHost, master))
		}
	}
	if len(errs) > 0 {
		return master, errors.Join(errs...)
	}
	return master, e.sentinelsAgree(ctx, pods, master, want-1)
}

// sentinelsAgree checks every pod's Sentinel: it names master (by pod DNS
// name or IP) and knows every replica as healthy (flags exactly "slave"),
// so a SENTINEL FAILOVER right now would find a replica to promote.
func (e Env) sentinelsAgree(ctx context.Context, pods []corev1.Pod, master string, replicas int) error {
	var errs []error
	for i := range pods {
		p := &pods[i]
		c := e.newClient(net.JoinHostPort(p.Status.PodIP, "26379"))
		addr, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice()
		var reps []any
		if err == nil {
			reps, err = c.Do(ctx, "SENTINEL", "REPLICAS", MasterName).Slice()
		}
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("Sentinel on %s: %w", p.Name, err))
			continue
		}
		if len(addr) == 0 || (!strings.HasPrefix(addr[0], master+".") && addr[0] != podIP(pods, master)) {
			errs = append(errs, fmt.Errorf("Sentinel on %s names master %v, not %s", p.Name, addr, master))
		}
		if n := healthyReplicas(reps); n != replicas {
			errs = append(errs, fmt.Errorf("Sentinel on %s knows %d healthy replicas, want %d", p.Name, n, replicas))
		}
	}
	return errors.Join(errs...)
}

// MasterName is the Sentinel master name the manifests configure.
const MasterName = "mymaster"

// healthyReplicas counts SENTINEL REPLICAS entries whose flags are exactly
// "slave" (not s_down, not disconnected). Entries are flat key/value lists
// (RESP2) or maps (RESP3).
func healthyReplicas(reps []any) int {
	n := 0
	for _, r := range reps {
		switch e := r.(type) {
		case []any:
			for i := 0; i+1 < len(e); i += 2 {
				if fmt.Sprint(e[i]) == "flags" && fmt.Sprint(e[i+1]) == "slave" {
					n++
				}
			}
		case map[any]any:
			if fmt.Sprint(e["flags"]) == "slave" {
				n++
			}
		}
	}
	return n
}
