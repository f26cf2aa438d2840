package demo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoleLabel is the pod label the agent keeps on every pod (manifests' Services
// select on it).
const RoleLabel = "redis-ha-agent/role"

// newClient is a plain client for one address, with timeouts short enough
// that a dead pod costs a fraction of a second, and no retries: the demo
// wants to see each failure, not hide it.
func (e Env) newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:       addr,
		Dialer:     e.Dial,
		MaxRetries: -1,
		PoolSize:   2,
		// A frozen pod must cost the caller's deadline, not ReadTimeout.
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
	})
}

// Replication is what INFO replication says about one node.
type Replication struct {
	Role       string // master or slave (Redis' word)
	ReplID     string
	Offset     int64
	MasterHost string
	LinkUp     bool
}

// ParseReplication reads INFO replication output. Pure.
func ParseReplication(info string) Replication {
	var r Replication
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "role":
			r.Role = v
		case "master_replid":
			r.ReplID = v
		case "master_repl_offset":
			r.Offset, _ = strconv.ParseInt(v, 10, 64)
		case "master_host":
			r.MasterHost = v
		case "master_link_status":
			r.LinkUp = v == "up"
		}
	}
	return r
}

// ParseInfoField returns one field of an INFO section ("cluster_state"). Pure.
func ParseInfoField(info, field string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == field {
			return v
		}
	}
	return ""
}

// replicationOf asks one pod's redis-server directly.
func (e Env) replicationOf(ctx context.Context, c *redis.Client) (Replication, error) {
	s, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return Replication{}, err
	}
	return ParseReplication(s), nil
}

// podsOf lists the StatefulSet's pods, ordered by name.
func (e Env) podsOf(ctx context.Context, ns, sts string) ([]corev1.Pod, error) {
	s, err := e.Kube.AppsV1().StatefulSets(ns).Get(ctx, sts, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get StatefulSet %s/%s: %w", ns, sts, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return nil, err
	}
	l, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s/%s: %w", ns, sts, err)
	}
	pods := l.Items
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func redisAddr(p *corev1.Pod) string { return net.JoinHostPort(p.Status.PodIP, "6379") }

// poll calls cond every interval until it returns nil or timeout passes; the
// error then is cond's last one, prefixed with what was awaited.
func poll(ctx context.Context, what string, timeout, interval time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		if last = cond(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not reached within %s: %w", what, timeout, last)
		case <-tick.C:
		}
	}
}

func sortEvents(evs []AgentEvent) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(&evs[j].Time) })
}

func podIP(pods []corev1.Pod, name string) string {
	for _, p := range pods {
		if p.Name == name {
			return p.Status.PodIP
		}
	}
	return ""
}

// Pods lists the StatefulSet's pods, ordered by name.
func (e Env) Pods(ctx context.Context, ns, sts string) ([]corev1.Pod, error) {
	return e.podsOf(ctx, ns, sts)
}

// NewClient is a client for one Redis address inside the cluster network,
// with short timeouts and no retries.
func (e Env) NewClient(addr string) *redis.Client { return e.newClient(addr) }

// ReplicationAt asks the redis-server at addr for INFO replication.
func (e Env) ReplicationAt(ctx context.Context, addr string) (Replication, error) {
	c := e.newClient(addr)
	defer c.Close()
	return e.replicationOf(ctx, c)
}

// PodReady reports the pod's Ready condition (false while it terminates).
func PodReady(p *corev1.Pod) bool { return podReady(p) }

// roleOf asks one pod's redis-server for its role.
func (e Env) roleOf(ctx context.Context, ns, sts, pod string) (string, error) {
	pods, err := e.podsOf(ctx, ns, sts)
	if err != nil {
		return "", err
	}
	for i := range pods {
		if pods[i].Name == pod {
			r, err := e.ReplicationAt(ctx, redisAddr(&pods[i]))
			return r.Role, err
		}
	}
	return "", fmt.Errorf("pod %s/%s not found", ns, pod)
}
