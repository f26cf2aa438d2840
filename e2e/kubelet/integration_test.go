package kubelet_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/kubelet"
	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

const itNode = "kubelet-it"

// env is a localkube cluster plus this package's own node agent serving
// node kubelet-it on the cluster's pod network (the cluster's own nodes
// node-a..c run beside it); pods pinned with nodeName land on it.
type env struct {
	cs      kubernetes.Interface
	cluster *localkube.Cluster
	kl      *kubelet.Kubelet
	root    string
}

func setup(t *testing.T) *env {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli", "etcd", "ip", "nsenter", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (e2e/hack/install-deps.sh installs it)", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root (network and mount namespaces)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	c, err := localkube.Up(ctx, localkube.Options{StateDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatalf("localkube.Up: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("localkube down: %v", err)
		}
	})
	root := t.TempDir()
	// A stand-in agent binary below a private (0700) directory, like the
	// agent localkube builds into a test's temp dir: non-root containers
	// must still be able to run it.
	agent := filepath.Join(t.TempDir(), "redis-ha-agent")
	sleep, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, sleep, 0o755); err != nil {
		t.Fatal(err)
	}
	kl, err := kubelet.New(kubelet.Config{
		Client: c.Clientset, Nodes: []string{itNode}, Network: c.Network,
		RootDir: root, Log: log, MaxBackoff: 5 * time.Second,
		Binaries: map[string]string{kubelet.BinAgent: agent},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kl.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kubelet Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("kubelet Run did not return within 30s of cancel")
		}
	})
	e := &env{cs: c.Clientset, cluster: c, kl: kl, root: root}
	e.waitFor(t, "node "+itNode+" Ready", time.Minute, func() (bool, error) {
		n, err := e.cs.CoreV1().Nodes().Get(ctx, itNode, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	return e
}

// waitFor polls cond every 200ms until it holds or the deadline passes.
func (e *env) waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}

func (e *env) pod(t *testing.T, ns, name string) *v1.Pod {
	t.Helper()
	p, err := e.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// namespace creates ns and waits for its default service account (the
// ServiceAccount admission plugin rejects pods until it exists).
func (e *env) namespace(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "default service account in "+ns, time.Minute, func() (bool, error) {
		_, err := e.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func (e *env) exec(t *testing.T, ns, pod, container string, cmd ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.kl.Exec(ctx, ns, pod, container, cmd, &out, &errb); err != nil {
		t.Fatalf("exec %v in %s/%s: %v\nstderr: %s", cmd, pod, container, err, errb.String())
	}
	return out.String()
}

func (e *env) dumpLogs(t *testing.T, ns, pod string, containers ...string) {
	t.Helper()
	for _, c := range containers {
		if p, err := e.kl.LogPath(ns, pod, c); err == nil {
			b, _ := os.ReadFile(p)
			t.Logf("--- log %s/%s:\n%s", pod, c, b)
		}
	}
}

const redisConf = "port 6379\nprotected-mode no\nsave \"\"\nappendonly no\n"

func testPod(ns string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-0", Namespace: ns, Labels: map[string]string{"app": "redis"}},
		Spec: v1.PodSpec{
			NodeName:                      itNode,
			Hostname:                      "redis-0",
			Subdomain:                     "redis-headless",
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			Volumes: []v1.Volume{
				{Name: "conf", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
					LocalObjectReference: v1.LocalObjectReference{Name: "redis"}, DefaultMode: ptr.To(int32(0o755))}}},
				{Name: "auth", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "auth"}}},
				{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
			},
			InitContainers: []v1.Container{
				{
					Name: "init", Image: "busybox:1.36",
					Command:      []string{"sh", "-c", "cp /conf/redis.conf /data/redis.conf && echo \"init ran on $(hostname) as $POD_NAME\" > /data/init-marker"},
					Env:          []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
					VolumeMounts: []v1.VolumeMount{{Name: "conf", MountPath: "/conf"}, {Name: "data", MountPath: "/data"}},
				},
				{
					Name: "sidecar", Image: "redis:7.0", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways),
					Command: []string{"redis-server", "--port", "6380", "--save", "", "--protected-mode", "no"},
					StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(6380)}},
						PeriodSeconds: 1, FailureThreshold: 30},
				},
			},
			Containers: []v1.Container{{
				Name: "redis", Image: "docker.io/library/redis:7.0.15-alpine",
				Args:  []string{"/data/redis.conf", "--replica-announce-ip", "$(POD_IP)"},
				Env:   []v1.EnvVar{{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
				Ports: []v1.ContainerPort{{Name: "redis", ContainerPort: 6379}},
				ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"/usr/local/bin/redis-cli", "ping"}}},
					PeriodSeconds: 1},
				LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromString("redis")}},
					PeriodSeconds: 2, FailureThreshold: 3},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "auth", MountPath: "/etc/redis-auth", ReadOnly: true}},
			}},
		},
	}
}

// TestNodeAgent runs pods on this package's node agent against a real
// control plane; one cluster serves every subtest.
func TestNodeAgent(t *testing.T) {
	e := setup(t)
	t.Run("NodeRegistered", e.testNode)
	t.Run("PodLifecycle", e.testPodLifecycle)
	t.Run("UnsupportedPodFails", e.testUnsupported)
	t.Run("InitFailureNever", e.testInitFailureNever)
	t.Run("LivenessRestartRunsPreStop", e.testLiveness)
	t.Run("SecurityContext", e.testSecurityContext)
	t.Run("PVCSurvivesAndConfigMapUpdates", e.testPVCAndUpdates)
	t.Run("FreezeThawKillPod", e.testFreezeThaw)
	t.Run("SidecarJobSucceeds", e.testSidecarJob)
	t.Run("ForceDeleteEndsGrace", e.testForceDelete)
	// Last: leaves a pod in a long graceful termination that the node
	// agent's shutdown (t.Cleanup) must cut short.
	t.Run("SlowTerminationAtShutdown", e.testSlowTermination)
}

// testNode checks the Node object and its heartbeat Lease.
func (e *env) testNode(t *testing.T) {
	ctx := context.Background()
	n, err := e.cs.CoreV1().Nodes().Get(ctx, itNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["kubernetes.io/hostname"] != itNode || n.Status.Allocatable.Pods().Value() < 100 || len(n.Status.Addresses) == 0 {
		t.Errorf("node labels %v allocatable %v addresses %v", n.Labels, n.Status.Allocatable, n.Status.Addresses)
	}
	l, err := e.cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, itNode, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node lease: %v", err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != itNode || l.Spec.RenewTime == nil || time.Since(l.Spec.RenewTime.Time) > time.Minute {
		t.Errorf("node lease spec = %+v", l.Spec)
	}
}

// testPodLifecycle runs a pod with an init container, a native sidecar and a
// redis main container and checks status, volumes, DNS files, exec, crash
// restart and deletion.
func (e *env) testPodLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := "kubelet-it"
	e.namespace(t, ns)
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "redis"},
		Data: map[string]string{"redis.conf": redisConf}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "auth"},
		Data: map[string][]byte{"password": []byte("hunter2")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, testPod(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "pod redis-0 Ready", 90*time.Second, func() (bool, error) {
		p, err := e.cs.CoreV1().Pods(ns).Get(ctx, "redis-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == v1.PodFailed {
			e.dumpLogs(t, ns, "redis-0", "init", "sidecar", "redis")
			t.Fatalf("pod failed: %s", p.Status.Message)
		}
		return podReady(p), fmt.Errorf("phase %s conditions %+v", p.Status.Phase, p.Status.Conditions)
	})
	p := e.pod(t, ns, "redis-0")
	if p.Status.Phase != v1.PodRunning || !strings.HasPrefix(p.Status.PodIP, "10.244.") || p.Status.HostIP == "" || p.Status.StartTime == nil {
		t.Errorf("status: phase %s podIP %q hostIP %q start %v", p.Status.Phase, p.Status.PodIP, p.Status.HostIP, p.Status.StartTime)
	}
	if len(p.Status.InitContainerStatuses) != 2 {
		t.Fatalf("initContainerStatuses = %+v", p.Status.InitContainerStatuses)
	}
	if is := p.Status.InitContainerStatuses[0]; is.State.Terminated == nil || is.State.Terminated.ExitCode != 0 || is.State.Terminated.Reason != "Completed" {
		t.Errorf("init status = %+v", is.State)
	}
	if sc := p.Status.InitContainerStatuses[1]; sc.State.Running == nil || sc.Started == nil || !*sc.Started || !sc.Ready {
		t.Errorf("sidecar status = %+v", sc)
	}
	cs := p.Status.ContainerStatuses[0]
	if cs.State.Running == nil || !cs.Ready || cs.RestartCount != 0 || cs.ContainerID == "" || cs.Image != "docker.io/library/redis:7.0.15-alpine" {
		t.Errorf("redis status = %+v", cs)
	}

	// Inside the container: volumes, env expansion, DNS files, hostname.
	if got := e.exec(t, ns, "redis-0", "redis", "redis-cli", "ping"); strings.TrimSpace(got) != "PONG" {
		t.Errorf("redis-cli ping = %q", got)
	}
	if got := e.exec(t, ns, "redis-0", "redis", "redis-cli", "config", "get", "replica-announce-ip"); !strings.Contains(got, p.Status.PodIP) {
		t.Errorf("$(POD_IP) not expanded in args: config get = %q", got)
	}
	if got := e.exec(t, ns, "redis-0", "redis", "cat", "/etc/redis-auth/password"); got != "hunter2" {
		t.Errorf("secret volume = %q", got)
	}
	if got := e.exec(t, ns, "redis-0", "redis", "cat", "/data/init-marker"); got != "init ran on redis-0 as redis-0\n" {
		t.Errorf("init marker = %q", got)
	}
	resolv := e.exec(t, ns, "redis-0", "redis", "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "nameserver 10.96.0.10") || !strings.Contains(resolv, "search kubelet-it.svc.cluster.local svc.cluster.local cluster.local") || !strings.Contains(resolv, "ndots:5") {
		t.Errorf("resolv.conf = %q", resolv)
	}
	if hosts := e.exec(t, ns, "redis-0", "redis", "cat", "/etc/hosts"); !strings.Contains(hosts, p.Status.PodIP+"\tredis-0.redis-headless.kubelet-it.svc.cluster.local\tredis-0") {
		t.Errorf("/etc/hosts = %q", hosts)
	}
	if tok := e.exec(t, ns, "redis-0", "redis", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"); len(tok) < 100 {
		t.Errorf("service account token = %q", tok)
	}
	if ca := e.exec(t, ns, "redis-0", "redis", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"); !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("ca.crt = %q", ca)
	}
	if err := e.kl.Exec(ctx, ns, "redis-0", "redis", []string{"touch", "/etc/redis-auth/x"}, nil, nil); err == nil {
		t.Errorf("secret volume is writable")
	}

	// From the cluster network, like a client pod.
	conn, err := e.cluster.DialContext(ctx, "tcp", net.JoinHostPort(p.Status.PodIP, "6379"))
	if err != nil {
		t.Fatalf("dial pod from the cluster network: %v", err)
	}
	_, _ = conn.Write([]byte("PING\r\n"))
	buf := make([]byte, 7)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := conn.Read(buf)
	_ = conn.Close()
	if string(buf[:n]) != "+PONG\r\n" {
		t.Errorf("PING over the cluster network = %q", buf[:n])
	}

	// A crash restarts the container in place: restartCount 1, same IP.
	pid1, err := e.kl.PID(ns, "redis-0", "redis")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.kl.KillContainer(ns, "redis-0", "redis"); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "redis restarted and Ready", time.Minute, func() (bool, error) {
		p := e.pod(t, ns, "redis-0")
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.Ready && podReady(p), fmt.Errorf("status %+v", cs)
	})
	p = e.pod(t, ns, "redis-0")
	cs = p.Status.ContainerStatuses[0]
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 137 {
		t.Errorf("lastState = %+v, want exit code 137", cs.LastTerminationState)
	}
	if pid2, _ := e.kl.PID(ns, "redis-0", "redis"); pid2 == pid1 || pid2 == 0 {
		t.Errorf("pid after restart %d, before %d", pid2, pid1)
	}
	if p.Status.InitContainerStatuses[0].RestartCount != 0 {
		t.Errorf("init container ran again after a main container crash")
	}

	// Deletion: graceful stop, then the node agent removes the object.
	sidecarPID, err := e.kl.PID(ns, "redis-0", "sidecar")
	if err != nil {
		t.Fatal(err)
	}
	redisPID, _ := e.kl.PID(ns, "redis-0", "redis")
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "redis-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "pod object removed", 30*time.Second, func() (bool, error) {
		_, err := e.cs.CoreV1().Pods(ns).Get(ctx, "redis-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	for _, pid := range []int{redisPID, sidecarPID} {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still alive after pod deletion", pid)
		}
	}
}

// testUnsupported checks that a pod using something the node agent does
// not implement fails with a condition naming it.
func (e *env) testUnsupported(t *testing.T) {
	ctx := context.Background()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hostnet", Namespace: "default"},
		Spec:       v1.PodSpec{NodeName: itNode, HostNetwork: true, Containers: []v1.Container{{Name: "c", Image: "redis:7"}}},
	}
	if _, err := e.cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "pod failed as unsupported", time.Minute, func() (bool, error) {
		p := e.pod(t, "default", "hostnet")
		for _, c := range p.Status.Conditions {
			if c.Type == kubelet.ConditionUnsupported && strings.Contains(c.Message, "spec.hostNetwork") {
				return p.Status.Phase == v1.PodFailed, nil
			}
		}
		return false, fmt.Errorf("status %+v", p.Status)
	})
}
