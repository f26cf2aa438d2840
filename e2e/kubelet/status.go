package kubelet

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionUnsupported is the pod condition that names what a pod uses that
// this node agent does not implement.
const ConditionUnsupported v1.PodConditionType = "UnsupportedPodSpec"

// podView is what the pod worker knows, reduced to what the status needs.
type podView struct {
	pod          *v1.Pod
	init, main   []v1.ContainerStatus // same order as the spec
	sandboxReady bool
	podIP        string
	hostIP       string
	startTime    *metav1.Time
	unsupported  string      // non-empty: the pod failed because of it
	initialized  bool        // init containers completed once
	phase        v1.PodPhase // set once the pod is terminal: kept as is
	now          time.Time
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

func succeeded(s v1.ContainerStatus) bool {
	return s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
}

// initProgress returns the init containers that have not finished their job
// (regular: exited 0; sidecar: started) and whether one failed for good
// (restartPolicy Never). Once the pod was initialized, a restarting sidecar
// does not make it pending again (as on a real node).
func initProgress(spec *v1.PodSpec, init []v1.ContainerStatus, initialized bool) (pending []string, failed bool) {
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		st := init[i]
		if isSidecar(c) {
			if !initialized && (st.Started == nil || !*st.Started) {
				pending = append(pending, c.Name)
			}
			continue
		}
		if succeeded(st) {
			continue
		}
		if st.State.Terminated != nil && spec.RestartPolicy == v1.RestartPolicyNever {
			failed = true
		}
		pending = append(pending, c.Name)
	}
	return pending, failed
}

// podPhase follows the real kubelet's getPhase.
func podPhase(spec *v1.PodSpec, init, main []v1.ContainerStatus, initialized bool) v1.PodPhase {
	pending, failed := initProgress(spec, init, initialized)
	if failed {
		return v1.PodFailed
	}
	if len(pending) > 0 {
		return v1.PodPending
	}
	var running, waiting, stopped, ok int
	for _, st := range main {
		switch {
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			stopped++
			if st.State.Terminated.ExitCode == 0 {
				ok++
			}
		case st.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		switch {
		case spec.RestartPolicy == v1.RestartPolicyAlways:
			return v1.PodRunning
		case stopped == ok:
			return v1.PodSucceeded
		case spec.RestartPolicy == v1.RestartPolicyNever:
			return v1.PodFailed
		}
		return v1.PodRunning
	}
	return v1.PodPending
}

// computeStatus builds the pod status the kubelet writes, starting from the
// previous status so fields owned by others (QOSClass, conditions set by the
// scheduler or controllers) and stable transition times are kept.
func computeStatus(v podView) v1.PodStatus {
	st := *v.pod.Status.DeepCopy()
	prev := st.Conditions
	spec := &v.pod.Spec
	st.ObservedGeneration = v.pod.Generation
	if v.startTime != nil {
		st.StartTime = v.startTime
	}
	st.HostIP, st.HostIPs = "", nil
	if v.hostIP != "" {
		st.HostIP = v.hostIP
		st.HostIPs = []v1.HostIP{{IP: v.hostIP}}
	}
	st.PodIP, st.PodIPs = "", nil
	if v.podIP != "" {
		st.PodIP = v.podIP
		st.PodIPs = []v1.PodIP{{IP: v.podIP}}
	}
	st.InitContainerStatuses = v.init
	st.ContainerStatuses = v.main
	st.Reason, st.Message = "", ""

	pending, _ := initProgress(spec, v.init, v.initialized)
	st.Phase = podPhase(spec, v.init, v.main, v.initialized)
	if v.phase != "" {
		st.Phase = v.phase
	}
	if v.unsupported != "" {
		st.Phase = v1.PodFailed
		st.Reason = "Unsupported"
		st.Message = v.unsupported
	}

	var unready []string
	for i := range spec.InitContainers {
		if isSidecar(&spec.InitContainers[i]) && !v.init[i].Ready {
			unready = append(unready, spec.InitContainers[i].Name)
		}
	}
	for i := range spec.Containers {
		if !v.main[i].Ready {
			unready = append(unready, spec.Containers[i].Name)
		}
	}

	conds := []v1.PodCondition{
		cond(v1.PodReadyToStartContainers, v.sandboxReady, "", ""),
	}
	if len(pending) == 0 {
		conds = append(conds, cond(v1.PodInitialized, true, "", ""))
	} else {
		conds = append(conds, cond(v1.PodInitialized, false, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(pending, " "))))
	}
	terminal := st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed
	switch {
	case terminal:
		conds = append(conds, cond(v1.ContainersReady, false, "PodCompleted", ""), cond(v1.PodReady, false, "PodCompleted", ""))
	case len(unready) > 0:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		conds = append(conds, cond(v1.ContainersReady, false, "ContainersNotReady", msg), cond(v1.PodReady, false, "ContainersNotReady", msg))
	default:
		conds = append(conds, cond(v1.ContainersReady, true, "", ""))
		if gates := unreadyGates(spec, prev); len(gates) > 0 {
			conds = append(conds, cond(v1.PodReady, false, "ReadinessGatesNotReady",
				fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not True", gates[0])))
		} else {
			conds = append(conds, cond(v1.PodReady, true, "", ""))
		}
	}
	if v.unsupported != "" {
		conds = append(conds, v1.PodCondition{Type: ConditionUnsupported, Status: v1.ConditionTrue, Reason: "Unsupported", Message: v.unsupported})
	}
	st.Conditions = mergeConditions(prev, conds, v.now, v.pod.Generation)
	return st
}

func cond(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
	s := v1.ConditionFalse
	if ok {
		s = v1.ConditionTrue
	}
	return v1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

func unreadyGates(spec *v1.PodSpec, conds []v1.PodCondition) []string {
	var out []string
	for _, g := range spec.ReadinessGates {
		ok := false
		for _, c := range conds {
			if c.Type == g.ConditionType && c.Status == v1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			out = append(out, string(g.ConditionType))
		}
	}
	return out
}

// mergeConditions replaces the kubelet-owned conditions in prev by own,
// keeping the others (PodScheduled, DisruptionTarget, readiness gates) and
// the transition time of every condition whose status did not change.
func mergeConditions(prev, own []v1.PodCondition, now time.Time, gen int64) []v1.PodCondition {
	owned := map[v1.PodConditionType]bool{}
	for _, c := range own {
		owned[c.Type] = true
	}
	var out []v1.PodCondition
	for _, c := range prev {
		if !owned[c.Type] {
			out = append(out, c)
		}
	}
	for _, c := range own {
		c.LastTransitionTime = metav1.NewTime(now)
		for _, p := range prev {
			if p.Type == c.Type && p.Status == c.Status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		c.ObservedGeneration = gen
		out = append(out, c)
	}
	return out
}
