package sentinel

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestBadInputs (issue #4, test 8): four mistakes a user makes, on a
// running production layout (3 pods, password from a Secret). Three of
// them hit one pod at its restart — a malformed sentinel.conf on its
// volume, a Role without a verb the agent needs, a password file the peers
// refuse: the pod's init must fail with a log line and a Warning Event
// that name the value and where it came from, delete nothing on the pod's
// volume, and the other two pods keep serving writes through the master
// Service. The fourth, a deleted headless Service, hits every pod at once:
// each agent must warn (log and Event) which peer names fail and what to
// fix, and the roles stay. Each mistake is then undone and all three pods
// must come back.
func TestBadInputs(t *testing.T) {
	cluster.NeedsLocalNodes(t, "freeze, and files on the volume")
	ctx := context.Background()
	// The production overlay: password from the Secret redis-auth.
	e, _ := deployOverlay(t, ctx, "production", "bad-inputs-"+strings.Repeat("p", 8))
	cs := cluster.Clientset

	t.Run("MalformedSentinelConf", func(t *testing.T) {
		victim := e.replica(ctx)
		conf := filepath.Join(e.pvc(victim), "conf", "sentinel.conf")
		// Frozen, the pod's Sentinel cannot rewrite the file between our
		// write and its end; a zero grace period then skips preStop.
		if err := cluster.Freeze(e.ns, victim); err != nil {
			t.Fatalf("freeze %s: %v", victim, err)
		}
		t.Cleanup(func() { _ = cluster.Thaw(e.ns, victim) })
		old, err := os.ReadFile(conf)
		if err != nil {
			t.Fatalf("read %s's sentinel.conf on its volume: %v", victim, err)
		}
		fix := undoable(t, func() { writeKeepingOwner(t, conf, old) })
		bad := []byte("# TestBadInputs: line 3 has an unbalanced quote\n# (line 2)\nsentinel announce-hostnames \"yes\n" + string(old))
		writeKeepingOwner(t, conf, bad)
		f := e.expectInitFailure(t, ctx, victim, "/data/conf/sentinel.conf", "line 3")
		if got, err := os.ReadFile(conf); err != nil {
			t.Errorf("malformed %s is gone after the failed init: %v", conf, err)
		} else if !bytes.Equal(got, bad) {
			t.Errorf("init rewrote the malformed %s:\nwant %q\ngot  %q", conf, bad, got)
		}
		f.undo(fix)
	})

	t.Run("RoleWithoutStatefulSetGet", func(t *testing.T) {
		victim := e.replica(ctx)
		role, err := cs.RbacV1().Roles(e.ns).Get(ctx, "redis-ha-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get the agent's Role: %v", err)
		}
		saved := slices.Clone(role.Rules)
		var cut []rbacv1.PolicyRule
		removed := false
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "statefulsets") {
				r.Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { removed = removed || v == "get"; return v == "get" })
				if len(r.Verbs) == 0 {
					continue
				}
			}
			cut = append(cut, r)
		}
		if !removed {
			t.Fatalf("the shipped Role grants no get on statefulsets: %+v", role.Rules)
		}
		fix := undoable(t, func() {
			r, err := cs.RbacV1().Roles(e.ns).Get(ctx, "redis-ha-agent", metav1.GetOptions{})
			if err != nil {
				t.Errorf("get the Role to restore it: %v", err)
				return
			}
			r.Rules = saved
			if _, err := cs.RbacV1().Roles(e.ns).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
				t.Errorf("restore the Role: %v", err)
			}
		})
		role.Rules = cut
		if _, err := cs.RbacV1().Roles(e.ns).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update the Role without get on statefulsets: %v", err)
		}
		f := e.expectInitFailure(t, ctx, victim, "needs RBAC get on statefulsets", "forbidden")
		f.undo(fix)
	})

	t.Run("PeerNamesDoNotResolve", func(t *testing.T) {
		// Without the headless Service no pod's DNS name resolves. Nothing
		// restarts, so nothing breaks at once; every agent must say which
		// peer names fail and what to fix, while roles stay as they are.
		master, _ := e.agreed(ctx)
		svc, err := cs.CoreV1().Services(e.ns).Get(ctx, sts+"-headless", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get the headless Service: %v", err)
		}
		fix := undoable(t, func() {
			svc.ObjectMeta = metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels, Annotations: svc.Annotations}
			svc.Status = corev1.ServiceStatus{}
			if _, err := cs.CoreV1().Services(e.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				t.Errorf("recreate the headless Service: %v", err)
			}
		})
		deleted := time.Now()
		if err := cs.CoreV1().Services(e.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete the headless Service: %v", err)
		}
		want := []string{"--headless-service (REDIS_HA_HEADLESS_SERVICE)", ".redis-headless." + e.ns + ".svc.cluster.local"}
		warned := map[string]string{} // pod -> note
		_ = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			evs, err := cs.EventsV1().Events(e.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for _, ev := range evs.Items {
				if ev.Reason == "PeerUnresolvable" && ev.Type == corev1.EventTypeWarning && lineWithAll(ev.Note, want) != "" {
					warned[ev.Regarding.Name] = ev.Note
				}
			}
			return len(warned) == pods, nil
		})
		if len(warned) != pods {
			t.Errorf("PeerUnresolvable Warning Events naming the flag and a peer's name from %d of %d pods within 2m of deleting the headless Service: %v", len(warned), pods, warned)
		}
		for pod, note := range warned {
			t.Logf("%s: PeerUnresolvable: %s", pod, note)
		}
		var logged string
		for _, p := range e.pods(ctx) {
			if b, err := cluster.ContainerLog(ctx, e.ns, p.Name, "agent"); err == nil {
				logged += lineWithAll(b, append(want, `"level":"warn"`))
			}
		}
		if logged == "" {
			t.Errorf("no agent logged a warning naming the flag and a peer's name")
		}
		t.Logf("%d pods warned, %s after the headless Service was deleted", len(warned), time.Since(deleted).Round(time.Second))
		if now, _ := e.agreed(ctx); now != master {
			t.Errorf("master moved from %s to %q while peer names did not resolve (%+v)", master, now, e.views(ctx))
		}
		c := e.masterService()
		defer c.Close()
		if err := c.Set(ctx, e.ns+":no-dns", "ok", 0).Err(); err != nil {
			t.Errorf("write through %s-master while peer names do not resolve: %v", sts, err)
		}
		fix()
		e.waitReady(ctx, 3*time.Minute)
		e.waitMaster(ctx, 2*time.Minute, "")
	})

	t.Run("PasswordRefusedByPeers", func(t *testing.T) {
		// A canary rollout (partition 2) gives only pod 2 a password file
		// the others do not use, as a Secret mounted on one pod by mistake.
		victim := fmt.Sprintf("%s-%d", sts, pods-1)
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wrong-auth"}, StringData: map[string]string{"password": "not-what-the-others-use"}}
		if _, err := cs.CoreV1().Secrets(e.ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Secret wrong-auth: %v", err)
		}
		set, err := cs.AppsV1().StatefulSets(e.ns).Get(ctx, sts, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get StatefulSet %s: %v", sts, err)
		}
		savedTemplate, savedStrategy := set.Spec.Template.DeepCopy(), set.Spec.UpdateStrategy.DeepCopy()
		fix := undoable(t, func() {
			s, err := cs.AppsV1().StatefulSets(e.ns).Get(ctx, sts, metav1.GetOptions{})
			if err != nil {
				t.Errorf("get StatefulSet %s to restore it: %v", sts, err)
				return
			}
			s.Spec.Template, s.Spec.UpdateStrategy = *savedTemplate, *savedStrategy
			if _, err := cs.AppsV1().StatefulSets(e.ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
				t.Errorf("restore StatefulSet %s: %v", sts, err)
			}
		})
		const file = "/etc/redis-ha/wrong-auth/password"
		patch := fmt.Sprintf(`{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":%d}},"template":{"spec":{
			"volumes":[{"name":"wrong-auth","secret":{"secretName":"wrong-auth"}}],
			"initContainers":[{"name":"agent-init","env":[{"name":"REDIS_HA_PASSWORD_FILE","value":%q}],
			"volumeMounts":[{"name":"wrong-auth","mountPath":"/etc/redis-ha/wrong-auth","readOnly":true}]}]}}}}`, pods-1, file)
		before := volumeFiles(t, e.pvc(victim))
		oldUID := e.podUID(t, ctx, victim)
		if _, err := cs.AppsV1().StatefulSets(e.ns).Patch(ctx, sts, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch StatefulSet %s with a canary password file: %v", sts, err)
		}
		f := e.expectInitFailureOf(t, ctx, victim, oldUID, before, "refused the password", file)
		if strings.Contains(f.log, "not-what-the-others-use") {
			t.Errorf("the password itself is in %s's init log", victim)
		}
		f.undo(fix)
	})
}

// failedInit is one pod whose init failed, ready to be undone.
type failedInit struct {
	t      *testing.T
	e      *env
	ctx    context.Context
	victim string
	log    string
}

// undoable makes fix run once: when the case calls it, or at the case's
// end if it failed before, so the next case starts from a whole layout.
func undoable(t *testing.T, fix func()) func() {
	var once sync.Once
	f := func() { once.Do(fix) }
	t.Cleanup(f)
	return f
}

// undo fixes the mistake, recreates the pod and waits for the layout to be
// whole again.
func (f failedInit) undo(fix func()) {
	f.t.Helper()
	fix()
	_ = cluster.Thaw(f.e.ns, f.victim)
	f.e.deletePod(f.t, f.ctx, f.victim)
	f.e.waitReady(f.ctx, 3*time.Minute)
	f.e.waitMaster(f.ctx, 2*time.Minute, "")
}

// replica is a pod the master of record is not.
func (e *env) replica(ctx context.Context) string {
	e.t.Helper()
	master, _ := e.agreed(ctx)
	for _, p := range e.pods(ctx) {
		if p.Name != master {
			return p.Name
		}
	}
	e.t.Fatalf("no replica besides master %s in %s", master, e.ns)
	return ""
}

// pvc is the directory behind a pod's data volume.
func (e *env) pvc(pod string) string {
	return cluster.VolumeDir(e.ns, "data-"+pod)
}

func (e *env) podUID(t *testing.T, ctx context.Context, pod string) types.UID {
	t.Helper()
	p, err := cluster.Clientset.CoreV1().Pods(e.ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", pod, err)
	}
	return p.UID
}

// deletePod deletes a pod with no grace period (a frozen pod would never
// answer its preStop; a replica's returns at once anyway).
func (e *env) deletePod(t *testing.T, ctx context.Context, pod string) {
	t.Helper()
	zero := int64(0)
	err := cluster.Clientset.CoreV1().Pods(e.ns).Delete(ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil {
		t.Fatalf("delete %s: %v", pod, err)
	}
}

// expectInitFailure deletes nothing itself: the caller has made the
// mistake; this recreates the victim and checks the outcome.
func (e *env) expectInitFailure(t *testing.T, ctx context.Context, victim string, want ...string) failedInit {
	t.Helper()
	before := volumeFiles(t, e.pvc(victim))
	uid := e.podUID(t, ctx, victim)
	e.deletePod(t, ctx, victim)
	return e.expectInitFailureOf(t, ctx, victim, uid, before, want...)
}

// expectInitFailureOf waits for the recreated victim's init container to
// fail, then checks: a log line and an InitFailed Event that both carry
// every want string, the victim's volume holds the same files, the other
// pods stay Ready and the master Service takes writes. Files on the volume
// may be added (Redis saves at shutdown) but none may go.
func (e *env) expectInitFailureOf(t *testing.T, ctx context.Context, victim string, oldUID types.UID, before []string, want ...string) failedInit {
	t.Helper()
	cs := cluster.Clientset
	start := time.Now()
	var exit int32
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(e.ns).Get(ctx, victim, metav1.GetOptions{})
		if err != nil || p.UID == oldUID || len(p.Status.InitContainerStatuses) == 0 {
			last = fmt.Sprintf("pod not recreated yet (err %v)", err)
			return false, nil
		}
		is := p.Status.InitContainerStatuses[0]
		last = fmt.Sprintf("init container %s: state %+v last %+v", is.Name, is.State, is.LastTerminationState)
		for _, term := range []*corev1.ContainerStateTerminated{is.State.Terminated, is.LastTerminationState.Terminated} {
			if term != nil && term.ExitCode != 0 {
				exit = term.ExitCode
				return true, nil
			}
		}
		if is.State.Terminated != nil && is.State.Terminated.ExitCode == 0 {
			return false, fmt.Errorf("init container of %s succeeded", victim)
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s's init container to fail: %v (last: %s)", victim, err, last)
	}
	t.Logf("%s's init container exited %d, %s after the pod was replaced", victim, exit, time.Since(start).Round(time.Millisecond))

	f := failedInit{t: t, e: e, ctx: ctx, victim: victim}
	logs, err := cluster.ContainerLog(ctx, e.ns, victim, "agent-init")
	if err != nil {
		t.Fatalf("init container log of %s: %v", victim, err)
	}
	f.log = logs
	if l := lineWithAll(f.log, want); l == "" {
		t.Errorf("no init log line of %s carries all of %q; log:\n%s", victim, want, logs)
	} else {
		t.Logf("init error: %s", l)
	}

	var note string
	_ = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := cs.EventsV1().Events(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == victim && ev.Reason == "InitFailed" && ev.Type == corev1.EventTypeWarning && lineWithAll(ev.Note, want) != "" {
				note = ev.Note
				return true, nil
			}
		}
		return false, nil
	})
	if note == "" {
		t.Errorf("no Warning InitFailed Event on %s carries all of %q", victim, want)
	} else {
		t.Logf("event InitFailed: %s", note)
	}

	after := volumeFiles(t, e.pvc(victim))
	var gone []string
	for _, p := range before {
		if !slices.Contains(after, p) {
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 {
		t.Errorf("files gone from %s's volume across the failed init: %v (before %v, after %v)", victim, gone, before, after)
	}

	c := e.masterService()
	defer c.Close()
	key := e.ns + ":bad-inputs:" + victim
	var werr error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		werr = c.Set(ctx, key, "ok", 0).Err()
		return werr == nil, nil
	})
	if err != nil {
		t.Errorf("no write through %s-master while %s fails its init: %v (last: %v)", sts, victim, err, werr)
	}
	ready := 0
	for _, p := range e.pods(ctx) {
		if p.Name != victim && p.Status.Phase == corev1.PodRunning && podReady(&p) {
			ready++
		}
	}
	if ready != pods-1 {
		t.Errorf("%d of the other %d pods Ready while %s fails its init", ready, pods-1, victim)
	}
	return f
}

// lineWithAll returns the first line of s that contains every string.
func lineWithAll(s string, want []string) string {
	for _, l := range strings.Split(s, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return l
		}
	}
	return ""
}

// writeKeepingOwner replaces a file on a pod's volume, keeping its mode and
// owner (the pod runs as non-root).
func writeKeepingOwner(t *testing.T, path string, data []byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if err := os.WriteFile(path, data, st.Mode().Perm()); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(path, int(sys.Uid), int(sys.Gid)); err != nil {
			t.Fatalf("chown %s back to %d:%d: %v", path, sys.Uid, sys.Gid, err)
		}
	}
}

// volumeFiles lists every path on a pod's volume, so a test can tell that
// nothing was deleted.
func volumeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return out
}
