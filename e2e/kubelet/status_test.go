package kubelet

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func running(ready, started bool) v1.ContainerStatus {
	return v1.ContainerStatus{State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}, Ready: ready, Started: ptr.To(started)}
}
func exited(code int32) v1.ContainerStatus {
	return v1.ContainerStatus{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}, Started: ptr.To(false)}
}
func waiting() v1.ContainerStatus {
	return v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "PodInitializing"}}, Started: ptr.To(false)}
}
func backoff(code int32) v1.ContainerStatus {
	s := waiting()
	s.LastTerminationState.Terminated = &v1.ContainerStateTerminated{ExitCode: code}
	return s
}

func testPod(policy v1.RestartPolicy, nInit int, sidecar bool, nMain int) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: v1.PodSpec{RestartPolicy: policy}}
	for i := 0; i < nInit; i++ {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: "init" + string(rune('a'+i))})
	}
	if sidecar {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: "side", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways)})
	}
	for i := 0; i < nMain; i++ {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "main" + string(rune('a'+i))})
	}
	return p
}

func TestPodPhase(t *testing.T) {
	tests := map[string]struct {
		pod        *v1.Pod
		init, main []v1.ContainerStatus
		want       v1.PodPhase
	}{
		"init running":             {testPod(v1.RestartPolicyAlways, 1, false, 1), []v1.ContainerStatus{running(false, true)}, []v1.ContainerStatus{waiting()}, v1.PodPending},
		"init failed, Always":      {testPod(v1.RestartPolicyAlways, 1, false, 1), []v1.ContainerStatus{exited(1)}, []v1.ContainerStatus{waiting()}, v1.PodPending},
		"init failed, Never":       {testPod(v1.RestartPolicyNever, 1, false, 1), []v1.ContainerStatus{exited(1)}, []v1.ContainerStatus{waiting()}, v1.PodFailed},
		"sidecar not started":      {testPod(v1.RestartPolicyAlways, 1, true, 1), []v1.ContainerStatus{exited(0), running(false, false)}, []v1.ContainerStatus{waiting()}, v1.PodPending},
		"all running":              {testPod(v1.RestartPolicyAlways, 1, true, 1), []v1.ContainerStatus{exited(0), running(true, true)}, []v1.ContainerStatus{running(false, true)}, v1.PodRunning},
		"crashloop Always":         {testPod(v1.RestartPolicyAlways, 0, false, 1), nil, []v1.ContainerStatus{backoff(1)}, v1.PodRunning},
		"done Never ok":            {testPod(v1.RestartPolicyNever, 0, true, 2), []v1.ContainerStatus{running(true, true)}, []v1.ContainerStatus{exited(0), exited(0)}, v1.PodSucceeded},
		"done Never failed":        {testPod(v1.RestartPolicyNever, 0, false, 2), nil, []v1.ContainerStatus{exited(0), exited(2)}, v1.PodFailed},
		"OnFailure failed retries": {testPod(v1.RestartPolicyOnFailure, 0, false, 1), nil, []v1.ContainerStatus{exited(2)}, v1.PodRunning},
		"OnFailure ok":             {testPod(v1.RestartPolicyOnFailure, 0, false, 1), nil, []v1.ContainerStatus{exited(0)}, v1.PodSucceeded},
		"one waiting":              {testPod(v1.RestartPolicyAlways, 0, false, 2), nil, []v1.ContainerStatus{running(true, true), waiting()}, v1.PodPending},
	}
	// Once initialized, a restarting sidecar does not make the pod Pending.
	p := testPod(v1.RestartPolicyAlways, 0, true, 1)
	if got := podPhase(&p.Spec, []v1.ContainerStatus{backoff(1)}, []v1.ContainerStatus{running(true, true)}, true); got != v1.PodRunning {
		t.Errorf("initialized pod with a crashed sidecar: phase %s, want Running", got)
	}
	for name, tc := range tests {
		if got := podPhase(&tc.pod.Spec, tc.init, tc.main, false); got != tc.want {
			t.Errorf("%s: phase = %s, want %s", name, got, tc.want)
		}
	}
}

func condOf(st v1.PodStatus, ty v1.PodConditionType) *v1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == ty {
			return &st.Conditions[i]
		}
	}
	return nil
}

func TestComputeStatus(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := testPod(v1.RestartPolicyAlways, 1, true, 1)
	pod.Status.QOSClass = v1.PodQOSBestEffort
	pod.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionTrue}}
	v := podView{pod: pod, init: []v1.ContainerStatus{exited(0), running(true, true)}, main: []v1.ContainerStatus{running(false, true)},
		sandboxReady: true, podIP: "10.244.0.7", hostIP: "10.244.0.1", now: t0}
	st := computeStatus(v)
	if st.Phase != v1.PodRunning || st.PodIP != "10.244.0.7" || st.PodIPs[0].IP != "10.244.0.7" || st.HostIP != "10.244.0.1" || st.QOSClass != v1.PodQOSBestEffort {
		t.Fatalf("status = %+v", st)
	}
	if c := condOf(st, v1.PodScheduled); c == nil {
		t.Errorf("PodScheduled (the scheduler's) was dropped")
	}
	if c := condOf(st, v1.PodInitialized); c == nil || c.Status != v1.ConditionTrue {
		t.Errorf("Initialized = %+v, want True", c)
	}
	if c := condOf(st, v1.PodReady); c == nil || c.Status != v1.ConditionFalse || c.Message != "containers with unready status: [maina]" {
		t.Errorf("Ready = %+v, want False naming maina", c)
	}
	// Becoming ready flips Ready with a new transition time; unchanged
	// conditions keep theirs.
	pod.Status = st
	v.main = []v1.ContainerStatus{running(true, true)}
	v.now = t0.Add(time.Minute)
	st2 := computeStatus(v)
	if c := condOf(st2, v1.PodReady); c.Status != v1.ConditionTrue || !c.LastTransitionTime.Time.Equal(v.now) {
		t.Errorf("Ready = %+v, want True at %v", c, v.now)
	}
	if c := condOf(st2, v1.PodInitialized); !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Initialized transition moved to %v, want %v", c.LastTransitionTime, t0)
	}
	// A readiness gate that is not True keeps the pod unready.
	pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/gate"}}
	if c := condOf(computeStatus(v), v1.PodReady); c.Status != v1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" {
		t.Errorf("Ready with gate = %+v", c)
	}
	// Unsupported pods fail with a condition that names the feature.
	v.unsupported = "this node agent does not support: spec.hostNetwork"
	st3 := computeStatus(v)
	if c := condOf(st3, ConditionUnsupported); st3.Phase != v1.PodFailed || c == nil || c.Message != v.unsupported {
		t.Errorf("unsupported: phase %s cond %+v", st3.Phase, c)
	}
}
