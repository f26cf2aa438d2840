package faults

import (
	"context"
	"fmt"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// target is what a fault acts on, chosen on the healthy deployment.
type target struct {
	d       *deployment
	master  string
	replica string
	mark    func(what string, fault bool)
}

// fault is one row group of the matrix. inject blocks for the fault's own
// duration (a frozen or partitioned pod stays so for exactly that long, by
// design of the scenario, not to wait for a condition) and heals it.
type fault struct {
	name     string
	sentinel bool // applies to sentinel mode
	cluster  bool // applies to cluster mode
	// quick: part of FAULTS=quick (the CI subset) for that mode.
	quickSentinel, quickCluster bool
	// gracefulSentinel: every pod that stops goes through preStop and
	// SIGTERM (AOF flushed). In sentinel mode no write answered OK may be
	// lost then, WAIT 1 or not: the switchover waits for the replicas,
	// and a full restart elects the master's final position.
	gracefulSentinel bool
	// local: only the local nodes can cause it (signals, freezer,
	// iptables, the API server process); not run on E2E_KUBECONFIG.
	local  bool
	inject func(ctx context.Context, tg target) error
	// runFor: how much longer than a matrix row the scenario may run (a
	// chaos schedule's duration).
	runFor time.Duration
}

// hold keeps a fault in place for d; ctx ending early is an error so a
// canceled run never reports a short fault as the real one.
func hold(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func matrix() []fault {
	return []fault{
		{name: "sigkill-master", local: true, sentinel: true, cluster: true, quickSentinel: true, inject: func(ctx context.Context, tg target) error {
			tg.mark("SIGKILL "+tg.master, true)
			return cluster.KillPod(tg.d.ns, tg.master)
		}},
		{name: "delete-master", sentinel: true, cluster: true, quickSentinel: true, quickCluster: true, gracefulSentinel: true, inject: func(ctx context.Context, tg target) error {
			tg.mark("delete "+tg.master, true)
			return cluster.DeletePod(ctx, tg.d.ns, tg.master)
		}},
		{name: "freeze-master-20s", local: true, sentinel: true, cluster: true, quickSentinel: true, inject: func(ctx context.Context, tg target) error {
			tg.mark("freeze "+tg.master, true)
			if err := cluster.Freeze(tg.d.ns, tg.master); err != nil {
				return err
			}
			err := hold(ctx, 20*time.Second)
			tg.mark("thaw "+tg.master, false)
			if terr := cluster.Thaw(tg.d.ns, tg.master); terr != nil {
				return terr
			}
			return err
		}},
		{name: "partition-master-30s", local: true, sentinel: true, cluster: true, quickSentinel: true, inject: func(ctx context.Context, tg target) error {
			return partition(ctx, tg, tg.master)
		}},
		{name: "partition-replica-30s", local: true, sentinel: true, cluster: true, inject: func(ctx context.Context, tg target) error {
			return partition(ctx, tg, tg.replica)
		}},
		{name: "stop-2-of-3-sentinels-30s", local: true, sentinel: true, inject: func(ctx context.Context, tg target) error {
			// SIGSTOP, not SIGKILL: a killed container restarts within a
			// second, a stopped Sentinel stays silent like a hung one.
			var pids []int
			for _, p := range []string{tg.master, tg.replica} {
				pid, err := sentinelPID(tg.d.ns, p)
				if err != nil {
					return err
				}
				pids = append(pids, pid)
			}
			tg.mark("SIGSTOP sentinels of "+tg.master+", "+tg.replica, true)
			for _, pid := range pids {
				if err := signal(pid, syscall.SIGSTOP); err != nil {
					return err
				}
			}
			err := hold(ctx, 30*time.Second)
			tg.mark("SIGCONT sentinels", false)
			for _, pid := range pids {
				if cerr := signal(pid, syscall.SIGCONT); cerr != nil && err == nil {
					err = cerr
				}
			}
			return err
		}},
		{name: "apiserver-down-60s", local: true, sentinel: true, cluster: true, inject: func(ctx context.Context, tg target) error {
			tg.mark("stop kube-apiserver", true)
			if err := cluster.StopAPIServer(ctx); err != nil {
				return err
			}
			err := hold(ctx, 60*time.Second)
			tg.mark("start kube-apiserver", false)
			if serr := cluster.StartAPIServer(context.WithoutCancel(ctx)); serr != nil {
				return serr
			}
			return err
		}},
		{name: "delete-all-pods", sentinel: true, cluster: true, quickSentinel: true, quickCluster: true, gracefulSentinel: true, inject: func(ctx context.Context, tg target) error {
			tg.mark("delete all pods", true)
			return cluster.DeleteAllPods(ctx, tg.d.ns, tg.d.sts)
		}},
		// Cluster rolling-restart once counted an 8 ms window of two
		// writable masters at a handover: the old master's next sample,
		// taken as its pod stopped, went unanswered, and an unanswered
		// sample contradicts nothing. A stopping pod's refused port now
		// counts as evidence (Sample.Refused).
		{name: "rolling-restart", sentinel: true, cluster: true, quickCluster: true, inject: rollingRestart},
	}
}

func partition(ctx context.Context, tg target, pod string) error {
	tg.mark("partition "+pod, true)
	if err := cluster.Partition(ctx, tg.d.ns, pod); err != nil {
		return err
	}
	err := hold(ctx, 30*time.Second)
	tg.mark("heal "+pod, false)
	if herr := cluster.Heal(context.WithoutCancel(ctx), tg.d.ns, pod); herr != nil {
		return herr
	}
	return err
}

// rollingRestart does what `kubectl rollout restart` does (a template
// annotation) and waits until the StatefulSet controller is done.
func rollingRestart(ctx context.Context, tg target) error {
	tg.mark("rollout restart", true)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"faults.redis-ha-agent/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	sts := cluster.Clientset.AppsV1().StatefulSets(tg.d.ns)
	if _, err := sts.Patch(ctx, tg.d.sts, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch StatefulSet %s/%s: %w", tg.d.ns, tg.d.sts, err)
	}
	return waitRollout(ctx, tg)
}

// waitRollout waits until the StatefulSet controller has replaced every
// pod with the current template and all are Ready.
func waitRollout(ctx context.Context, tg target) error {
	sts := cluster.Clientset.AppsV1().StatefulSets(tg.d.ns)
	var last *appsv1.StatefulSetStatus
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 8*time.Minute, false, func(ctx context.Context) (bool, error) {
		s, err := sts.Get(ctx, tg.d.sts, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = &s.Status
		return s.Status.ObservedGeneration >= s.Generation && s.Status.UpdatedReplicas == int32(tg.d.pods) &&
			s.Status.ReadyReplicas == int32(tg.d.pods) && s.Status.CurrentRevision == s.Status.UpdateRevision, nil
	})
	if err != nil {
		return fmt.Errorf("rollout of %s/%s not done: %w (status %+v)", tg.d.ns, tg.d.sts, err, last)
	}
	tg.mark("rollout done", false)
	return nil
}

// fenceDeadline is how long two writable masters may coexist after a fault:
// sentinel mode, the agent's --renew-deadline (10s) plus one --retry-period
// (2s) for the pass that issues the pause; cluster mode, two
// cluster-node-timeouts (5s each: the minority master marks the cluster
// failed after one). Baselines without the agent get the same figure so the
// column compares like with like.
func fenceDeadline(d *deployment) time.Duration {
	if d.cluster {
		return 10 * time.Second
	}
	return 12 * time.Second
}
