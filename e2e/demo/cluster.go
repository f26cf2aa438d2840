package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cluster is the cluster-mode part of the demo: 6 pods from
// manifests/overlays/cluster-6 (3 masters × 1 replica), a master killed.
type Cluster struct {
	Env       Env
	P         *Printer
	Namespace string
	STS       string
	Pods      int
	Keys      int

	view ClusterView
	// healthy: the last step left a healthy cluster to build on.
	healthy bool
}

func (c *Cluster) service() string {
	return fmt.Sprintf("%s.%s.svc.cluster.local:6379", c.STS, c.Namespace)
}

func (c *Cluster) key(i int) string { return fmt.Sprintf("demo:cluster:%04d", i) }

// NewClusterClient is a cluster-aware client that bootstraps from the
// Service and then talks to every node at the address it announces.
func (e Env) NewClusterClient(addr string) *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{addr}, Dialer: e.Dial, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
}

// Deploy applies the overlay, waits for the agents to create the cluster,
// shows the status table and the ClusterCreated event, and writes the keys.
func (c *Cluster) Deploy(ctx context.Context) error {
	p := c.P
	start := time.Now()
	err := c.Env.Deploy(ctx, c.Namespace, filepath.Join(c.Env.RepoRoot, "manifests", "overlays", "cluster-6"))
	if err := p.Check(fmt.Sprintf("kubectl apply -n %s -k manifests/overlays/cluster-6", c.Namespace), time.Since(start), err); err != nil {
		return err
	}
	v, err := c.Env.WaitCluster(ctx, c.Namespace, c.STS, c.Pods, 4*time.Minute)
	if err := p.Check(fmt.Sprintf("%d pods Ready, cluster_state:ok on every node: masters %s", c.Pods, strings.Join(v.Masters, ", ")), time.Since(start), err); err != nil {
		p.Info("%s", c.Env.logHint(c.Namespace))
		return err
	}
	c.view, c.healthy = v, true
	p.Record("cluster mode: deploy → cluster_state:ok on all 6 pods", time.Since(start), "")
	out, err := c.Env.StatusTable(ctx, c.Namespace, c.STS)
	if err != nil {
		p.Fail("redis-ha-agent status", err)
		return err
	}
	p.Info("$ redis-ha-agent status --namespace %s --statefulset %s", c.Namespace, c.STS)
	p.Block(out)
	showEvents(ctx, c.Env, p, c.Namespace, time.Time{}, "ClusterCreating", "ReplicasAttached", "ClusterCreated")

	t := time.Now()
	cc := c.Env.NewClusterClient(c.service())
	defer cc.Close()
	err = poll(ctx, "writes through the cluster client", 30*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		_, err := cc.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i := 0; i < c.Keys; i++ {
				pl.Set(ctx, c.key(i), "v", 0)
			}
			return nil
		})
		return err
	})
	return p.Check(fmt.Sprintf("wrote %d keys with a cluster client (via Service %s)", c.Keys, c.STS), time.Since(t), err)
}

// Crash SIGKILLs every process of a master pod. The kubelet restarts them
// at once; if redis-server is back within cluster-node-timeout (5s) the
// master keeps its slots, otherwise its replica takes them over. Either way
// the cluster must end healthy with every key readable.
func (c *Cluster) Crash(ctx context.Context) error {
	return c.fault(ctx, clusterFault{
		name:    "SIGKILL a master pod",
		command: "kill-pod",
		what:    "every process of %s SIGKILLed",
		inject:  c.Env.KillPod,
	})
}

// Hang freezes every process of a master pod, like a node that stops
// answering without dying: after cluster-node-timeout (5s) the replica must
// take the slots over; once that happened the pod is resumed and must
// rejoin as a replica of its former replica.
func (c *Cluster) Hang(ctx context.Context) error {
	return c.fault(ctx, clusterFault{
		name:     "freeze a master pod (failover)",
		command:  "freeze",
		what:     "every process of %s frozen (cgroup freezer): a hung node",
		inject:   c.Env.Freeze,
		resume:   c.Env.Thaw,
		failover: true,
	})
}

type clusterFault struct {
	name, command, what string
	inject, resume      func(ctx context.Context, ns, pod string) error
	// failover: the replica must take over (and the fault lasts until it has).
	failover bool
}

func (c *Cluster) fault(ctx context.Context, f clusterFault) error {
	p := c.P
	victim, replica := c.pickVictim(ctx)
	if victim == "" {
		err := fmt.Errorf("no master with a replica in %+v", c.view)
		p.Fail("pick a master", err)
		return err
	}
	p.Info("$ (cd e2e && go run ./cmd/localkube -n %s %s %s)   # a master; its replica is %s; a writer sends SET + WAIT 1 every 20ms", c.Namespace, f.command, victim, replica)
	writer := c.Env.NewClusterClient(c.service())
	defer writer.Close()
	var resumed time.Time
	spec := faultSpec{
		Env: c.Env, Namespace: c.Namespace, STS: c.STS, Client: writer, Prefix: "demo:cluster-" + f.command, Timeout: 3 * time.Minute,
		Inject:    func(ctx context.Context) error { return f.inject(ctx, c.Namespace, victim) },
		StableFor: 12 * time.Second, // past cluster-node-timeout, so a late failover would show
		Healthy: func(ctx context.Context) error {
			v, err := c.Env.clusterHealthy(ctx, c.Namespace, c.STS, c.Pods)
			if err == nil {
				c.view = v
			}
			return err
		},
	}
	if f.failover {
		spec.StableFor = 3 * time.Second
		spec.Moved = func(ctx context.Context) error {
			r, err := c.Env.roleOf(ctx, c.Namespace, c.STS, replica)
			if err == nil && r != "master" {
				err = fmt.Errorf("%s still role:%s", replica, r)
			}
			return err
		}
	}
	if f.resume != nil {
		spec.AfterMoved = func(ctx context.Context) error {
			resumed = time.Now()
			return f.resume(context.WithoutCancel(ctx), c.Namespace, victim)
		}
	}
	run, err := runFault(ctx, spec, func() redis.UniversalClient { return c.Env.NewClusterClient(c.service()) })
	c.healthy = err == nil
	if err != nil {
		p.Fail("cluster: "+f.name, err)
		p.Info("%s", c.Env.logHint(c.Namespace))
		return err
	}
	t0 := run.T0
	tl := ReadTimeline(run.Samples, t0, victim)
	if f.failover && !run.Moved.IsZero() && (tl.Promoted == "" || run.Moved.Before(tl.PromotedAt)) {
		// The dedicated poll of the replica (every 100 ms) saw it first.
		tl.Promoted, tl.PromotedAt = replica, run.Moved
	}
	r := run.Result
	p.Info("timeline (from the fault):")
	tle := entries{t0: t0}
	tle.add(t0, fmt.Sprintf(f.what, victim))
	if r.Errors > 0 {
		tle.add(r.FirstError, "first write error seen by the client")
	}
	tle.add(tl.Down, fmt.Sprintf("redis-server on %s stops answering", victim))
	tle.add(tl.PromotedAt, fmt.Sprintf("%s answers role:master: Redis Cluster failed over", tl.Promoted))
	tle.add(resumed, fmt.Sprintf("%s thawed", victim))
	tle.add(tl.Back, fmt.Sprintf("redis-server on %s answers again (role:%s)", victim, tl.BackRole))
	if r.LongestGap > 100*time.Millisecond {
		tle.add(r.GapTo, fmt.Sprintf("end of the longest stretch without an acknowledged write (%s, from %s)", fmtDur(r.LongestGap), at(r.GapFrom, t0)))
	}
	tle.add(run.Recovered, fmt.Sprintf("cluster_state:ok, all slots served, no failed node, on all %d pods; masters %s", c.Pods, strings.Join(c.view.Masters, ", ")))
	tle.print(p)
	if tl.Promoted == "" {
		p.Info("no failover: %s was back before cluster-node-timeout (5s) and kept its slots", victim)
	}
	showEvents(ctx, c.Env, p, c.Namespace, t0)

	var failed error
	check := func(what string, took time.Duration, err error) {
		if p.Check(what, took, err) != nil && failed == nil {
			failed = err
		}
	}
	if f.failover {
		var promErr error
		if tl.Promoted != replica {
			promErr = fmt.Errorf("%s was not seen taking over (promoted: %q)", replica, tl.Promoted)
		}
		check(fmt.Sprintf("replica %s took over %s's slots", replica, victim), tl.PromotedAt.Sub(t0), promErr)
		var backErr error
		if tl.BackRole != "slave" {
			backErr = fmt.Errorf("%s came back as role:%q, want a replica", victim, tl.BackRole)
		}
		check(fmt.Sprintf("%s rejoined as a replica", victim), 0, backErr)
	}
	p.Info("writes: %d attempted, %d acknowledged by a replica (WAIT 1), %d errors, %d OK without a replica ack", r.Attempts, r.Acked, r.Errors, r.Wait0)
	// One writer, one write at a time: a write to a silent master holds
	// it for the client's 1s timeout, so the gap also counts writes to
	// other masters' slots that had to wait.
	p.OK("longest write gap (one sequential writer, 1s client timeout)", r.LongestGap)
	var lostErr error
	if r.AckedLost > 0 {
		lostErr = fmt.Errorf("%d acknowledged writes missing, e.g. %s", r.AckedLost, strings.Join(r.LostKeys, ", "))
	}
	check(fmt.Sprintf("0 of %d acknowledged writes lost", r.Acked), 0, lostErr)
	if run.OKLost > 0 {
		p.Info("%d writes answered OK without a replica ack vanished (asynchronous replication; WAIT 1 is the guarantee)", run.OKLost)
	}
	check(fmt.Sprintf("all %d keys readable through the cluster client", c.Keys), 0, c.checkKeys(ctx))
	p.Record("cluster: "+f.name+", write gap", r.LongestGap, "")
	if tl.Promoted != "" {
		p.Record("cluster: "+f.name+", replica promoted", tl.PromotedAt.Sub(t0), "")
	}
	p.Record("cluster: "+f.name+", healthy again", run.Recovered.Sub(t0), "")
	return failed
}

// pickVictim picks a master that is not the coordinator (the Lease holder)
// when it can, so the demo shows Redis Cluster's own failover; it returns
// the master and its replica.
func (c *Cluster) pickVictim(ctx context.Context) (string, string) {
	holder := ""
	if l, err := c.Env.Kube.CoordinationV1().Leases(c.Namespace).Get(ctx, c.STS, metav1.GetOptions{}); err == nil && l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	replicaOf := map[string]string{}
	for r, m := range c.view.Replicas {
		replicaOf[m] = r
	}
	masters := append([]string(nil), c.view.Masters...)
	sort.Strings(masters)
	var fallback [2]string
	for _, m := range masters {
		r, ok := replicaOf[m]
		if !ok {
			continue
		}
		if m != holder {
			return m, r
		}
		fallback = [2]string{m, r}
	}
	return fallback[0], fallback[1]
}

func (c *Cluster) checkKeys(ctx context.Context) error {
	cc := c.Env.NewClusterClient(c.service())
	defer cc.Close()
	return poll(ctx, "reading the keys", 30*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
		cmds, err := cc.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i := 0; i < c.Keys; i++ {
				pl.Get(ctx, c.key(i))
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			return err
		}
		missing := 0
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d keys missing", missing, c.Keys)
		}
		return nil
	})
}
