package kubelet_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func (e *env) create(t *testing.T, pod *v1.Pod) {
	t.Helper()
	pod.Spec.NodeName = itNode
	if pod.Spec.TerminationGracePeriodSeconds == nil {
		pod.Spec.TerminationGracePeriodSeconds = ptr.To(int64(2))
	}
	if _, err := e.cs.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) waitReady(t *testing.T, ns, name string) *v1.Pod {
	t.Helper()
	e.waitFor(t, "pod "+name+" Ready", 90*time.Second, func() (bool, error) {
		p := e.pod(t, ns, name)
		if p.Status.Phase == v1.PodFailed {
			t.Fatalf("pod %s failed: %s %+v", name, p.Status.Message, p.Status.ContainerStatuses)
		}
		return podReady(p), fmt.Errorf("phase %s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	return e.pod(t, ns, name)
}

func (e *env) deleteAndWait(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	e.waitFor(t, "pod "+name+" removed", time.Minute, func() (bool, error) {
		_, err := e.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

func shPod(ns, name, script string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
			Containers: []v1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sh", "-c", script},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
		},
	}
}

// testInitFailureNever: a failing init container of a restartPolicy Never
// pod fails the pod; its main container never starts.
func (e *env) testInitFailureNever(t *testing.T) {
	ns := "kubelet-it-init"
	e.namespace(t, ns)
	pod := shPod(ns, "init-fails", "sleep 1000")
	pod.Spec.RestartPolicy = v1.RestartPolicyNever
	pod.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox", Command: []string{"sh", "-c", "echo failing; exit 3"}}}
	e.create(t, pod)
	e.waitFor(t, "pod Failed", time.Minute, func() (bool, error) {
		p := e.pod(t, ns, "init-fails")
		return p.Status.Phase == v1.PodFailed, fmt.Errorf("phase %s", p.Status.Phase)
	})
	p := e.pod(t, ns, "init-fails")
	if is := p.Status.InitContainerStatuses[0]; is.State.Terminated == nil || is.State.Terminated.ExitCode != 3 || is.RestartCount != 0 {
		t.Errorf("init status = %+v", is)
	}
	if cs := p.Status.ContainerStatuses[0]; cs.State.Waiting == nil || cs.RestartCount != 0 {
		t.Errorf("main container status = %+v, want never started", cs)
	}

	// OnFailure: a main container that fails once and then succeeds ends
	// Succeeded with one restart.
	job := shPod(ns, "job", "if [ -e /data/once ]; then echo done; exit 0; fi; touch /data/once; exit 1")
	job.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	e.create(t, job)
	e.waitFor(t, "job Succeeded", time.Minute, func() (bool, error) {
		p := e.pod(t, ns, "job")
		return p.Status.Phase == v1.PodSucceeded, fmt.Errorf("phase %s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	if cs := e.pod(t, ns, "job").Status.ContainerStatuses[0]; cs.RestartCount != 1 || cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
		t.Errorf("job status = %+v", cs)
	}
	e.deleteAndWait(t, ns, "job")
	e.deleteAndWait(t, ns, "init-fails")
}

// testLiveness: a failing liveness probe restarts the container after its
// preStop hook ran.
func (e *env) testLiveness(t *testing.T) {
	ns := "kubelet-it-live"
	e.namespace(t, ns)
	pod := shPod(ns, "live", "touch /data/healthy; trap 'exit 0' TERM; while :; do sleep 0.2; done")
	c := &pod.Spec.Containers[0]
	c.LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"cat", "/data/healthy"}}},
		PeriodSeconds: 1, FailureThreshold: 2}
	c.Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo prestop >> /data/prestop.log"}}}}
	e.create(t, pod)
	e.waitReady(t, ns, "live")
	e.exec(t, ns, "live", "main", "rm", "/data/healthy")
	e.waitFor(t, "restart after liveness failure", time.Minute, func() (bool, error) {
		p := e.pod(t, ns, "live")
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.State.Running != nil, fmt.Errorf("%+v", cs)
	})
	e.waitReady(t, ns, "live")
	if got := e.exec(t, ns, "live", "main", "cat", "/data/prestop.log"); got != "prestop\n" {
		t.Errorf("preStop log = %q, want one run", got)
	}
	if lt := e.pod(t, ns, "live").Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 0 {
		t.Errorf("lastState = %+v, want exit 0 from the SIGTERM trap", lt)
	}
	e.deleteAndWait(t, ns, "live")
}

// testSecurityContext: runAsUser/runAsGroup, fsGroup on an emptyDir, a
// read-only root file system with writable volumes, and workingDir.
func (e *env) testSecurityContext(t *testing.T) {
	ns := "kubelet-it-sec"
	e.namespace(t, ns)
	pod := shPod(ns, "sec", "exec sleep 1000")
	pod.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(1000)), FSGroup: ptr.To(int64(2000))}
	c := &pod.Spec.Containers[0]
	c.WorkingDir = "/data"
	c.SecurityContext = &v1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
		Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}}}
	pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: "agent", Image: "ghcr.io/redis-ha-agent/redis-ha-agent:dev", Args: []string{"1000"}})
	e.create(t, pod)
	e.waitReady(t, ns, "sec")
	if pid, err := e.kl.PID(ns, "sec", "agent"); err != nil {
		t.Error(err)
	} else if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err != nil || !strings.Contains(string(st), "Uid:\t1000\t1000\t1000\t1000") {
		t.Errorf("agent process status: %v\n%s", err, st)
	}
	if got := strings.TrimSpace(e.exec(t, ns, "sec", "main", "id", "-u")); got != "1000" {
		t.Errorf("uid = %q", got)
	}
	if got := e.exec(t, ns, "sec", "main", "sh", "-c", "touch f && ls -n /data/f && pwd"); !strings.Contains(got, " 1000 2000 ") || !strings.HasSuffix(got, "/data\n") {
		t.Errorf("write in fsGroup emptyDir working dir: %q (want owner 1000 group 2000, cwd /data)", got)
	}
	pid, err := e.kl.PID(ns, "sec", "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.kl.Exec(context.Background(), ns, "sec", "main", []string{"sh", "-c", "touch /var/tmp/kubelet-it-" + fmt.Sprint(pid)}, nil, nil); err == nil {
		t.Errorf("root file system is writable despite readOnlyRootFilesystem")
	}
	e.deleteAndWait(t, ns, "sec")
}

// testPVCAndUpdates: data in a PVC survives the pod; a ConfigMap update
// reaches the mounted file.
func (e *env) testPVCAndUpdates(t *testing.T) {
	ctx := context.Background()
	ns := "kubelet-it-pvc"
	e.namespace(t, ns)
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-db-0", Namespace: ns},
		Spec: v1.PersistentVolumeClaimSpec{AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"v": "one"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mk := func() *v1.Pod {
		p := shPod(ns, "db-0", "exec sleep 1000")
		p.Spec.Volumes = []v1.Volume{
			{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}},
			{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		}
		p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
		return p
	}
	e.create(t, mk())
	e.waitReady(t, ns, "db-0")
	e.exec(t, ns, "db-0", "main", "sh", "-c", "echo kept > /data/file")
	cm, err := e.cs.CoreV1().ConfigMaps(ns).Get(ctx, "cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "two"
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "configMap update in the volume", 30*time.Second, func() (bool, error) {
		var out strings.Builder
		err := e.kl.Exec(ctx, ns, "db-0", "main", []string{"cat", "/cfg/v"}, &out, nil)
		return out.String() == "two", err
	})
	e.deleteAndWait(t, ns, "db-0")
	e.create(t, mk())
	e.waitReady(t, ns, "db-0")
	if got := e.exec(t, ns, "db-0", "main", "cat", "/data/file"); got != "kept\n" {
		t.Errorf("PVC content after pod re-creation = %q", got)
	}
	e.deleteAndWait(t, ns, "db-0")
}

// testFreezeThaw: a frozen pod fails its readiness probe and recovers on
// thaw.
func (e *env) testFreezeThaw(t *testing.T) {
	ns := "kubelet-it-freeze"
	e.namespace(t, ns)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "frozen", Namespace: ns},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "redis", Image: "redis:7.0", Args: []string{"--save", "", "--appendonly", "no"},
			ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"redis-cli", "ping"}}},
				PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 2},
		}}},
	}
	e.create(t, pod)
	e.waitReady(t, ns, "frozen")
	if err := e.kl.Freeze(ns, "frozen"); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "frozen pod unready", 30*time.Second, func() (bool, error) {
		return !podReady(e.pod(t, ns, "frozen")), nil
	})
	if err := e.kl.Thaw(ns, "frozen"); err != nil {
		t.Fatal(err)
	}
	p := e.waitReady(t, ns, "frozen")
	if rc := p.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Errorf("restartCount after freeze/thaw = %d, want 0", rc)
	}
	// KillPod: every process dies; the pod keeps its IP and its container
	// restarts in place.
	if err := e.kl.KillPod(ns, "frozen"); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "restart after KillPod", time.Minute, func() (bool, error) {
		q := e.pod(t, ns, "frozen")
		return q.Status.ContainerStatuses[0].RestartCount == 1 && podReady(q), nil
	})
	if q := e.pod(t, ns, "frozen"); q.Status.PodIP != p.Status.PodIP {
		t.Errorf("pod IP changed from %s to %s after KillPod", p.Status.PodIP, q.Status.PodIP)
	}
	e.deleteAndWait(t, ns, "frozen")
}

// testSidecarJob: when the main containers of a restartPolicy Never pod
// are done, the sidecar is stopped and the pod Succeeds.
func (e *env) testSidecarJob(t *testing.T) {
	ns := "kubelet-it-job"
	e.namespace(t, ns)
	pod := shPod(ns, "job", "sleep 1; exit 0")
	pod.Spec.RestartPolicy = v1.RestartPolicyNever
	pod.Spec.InitContainers = []v1.Container{{Name: "side", Image: "busybox", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways),
		Command: []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"}}}
	e.create(t, pod)
	e.waitFor(t, "job Succeeded", time.Minute, func() (bool, error) {
		p := e.pod(t, ns, "job")
		return p.Status.Phase == v1.PodSucceeded, fmt.Errorf("phase %s", p.Status.Phase)
	})
	e.waitFor(t, "sidecar stopped", 30*time.Second, func() (bool, error) {
		p := e.pod(t, ns, "job")
		return p.Status.InitContainerStatuses[0].State.Terminated != nil && p.Status.Phase == v1.PodSucceeded,
			fmt.Errorf("phase %s sidecar %+v", p.Status.Phase, p.Status.InitContainerStatuses[0].State)
	})
	e.deleteAndWait(t, ns, "job")
}

// testSlowTermination starts a graceful deletion whose preStop hook takes
// minutes; the pod stays terminating. setup's cleanup then checks that the
// node agent's shutdown does not wait for it.
func (e *env) testSlowTermination(t *testing.T) {
	ns := "kubelet-it-slow"
	e.namespace(t, ns)
	pod := shPod(ns, "slow", "exec sleep 1000")
	pod.Spec.TerminationGracePeriodSeconds = ptr.To(int64(300))
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 240}}}
	e.create(t, pod)
	e.waitReady(t, ns, "slow")
	ctx := context.Background()
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "slow", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.cs.CoreV1().Pods(ns).Get(ctx, "slow", metav1.GetOptions{}); err != nil {
			t.Fatalf("pod gone before its preStop sleep ended: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := e.kl.PID(ns, "slow", "main"); err != nil {
		t.Errorf("container stopped before its preStop hook ended: %v", err)
	}
}

// testForceDelete: a force deletion during a long graceful termination
// stops the pod's processes at once, as on a real node.
func (e *env) testForceDelete(t *testing.T) {
	ns := "kubelet-it-force"
	e.namespace(t, ns)
	pod := shPod(ns, "stuck", "exec sleep 1000")
	pod.Spec.TerminationGracePeriodSeconds = ptr.To(int64(300))
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 240}}}
	e.create(t, pod)
	e.waitReady(t, ns, "stuck")
	pid, err := e.kl.PID(ns, "stuck", "main")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "graceful termination started (Killing event)", 30*time.Second, func() (bool, error) {
		evs, err := e.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=stuck,reason=Killing"})
		return err == nil && len(evs.Items) > 0, err
	})
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "stuck", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "processes gone after force deletion", 15*time.Second, func() (bool, error) {
		return syscall.Kill(pid, 0) != nil, nil
	})
}
