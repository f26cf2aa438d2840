package kubelet

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestMountHelpers(t *testing.T) {
	ms := []bindMount{
		{Target: "/etc/hosts", File: true},
		{Target: "/conf"},
		{Target: "/conf/extra"},
		{Target: "/data"},
	}
	for target, want := range map[string]bool{"/conf/extra": true, "/conf": false, "/data": false, "/database": false} {
		if got := nestedIn(target, ms); got != want {
			t.Errorf("nestedIn(%s) = %v, want %v", target, got, want)
		}
	}
	in := inMounts(ms)
	for p, want := range map[string]bool{"/conf/update-node.sh": true, "/data": true, "/datax/y": false, "/etc/hosts": false, "/usr/bin/redis-server": false} {
		if got := in(p); got != want {
			t.Errorf("inMounts(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestCheckRunAsNonRoot(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}}}
	c := &v1.Container{Name: "redis"}
	if err := checkRunAsNonRoot(pod, c); err == nil || !strings.Contains(err.Error(), "set runAsUser") {
		t.Errorf("no user: %v", err)
	}
	pod.Spec.SecurityContext.RunAsUser = ptr.To(int64(999))
	if err := checkRunAsNonRoot(pod, c); err != nil {
		t.Errorf("pod user 999: %v", err)
	}
	c.SecurityContext = &v1.SecurityContext{RunAsUser: ptr.To(int64(0))}
	if err := checkRunAsNonRoot(pod, c); err == nil {
		t.Errorf("container user 0 under runAsNonRoot accepted")
	}
}
