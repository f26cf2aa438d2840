package kubelet

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestUnsupported(t *testing.T) {
	base := func() *v1.Pod {
		return &v1.Pod{Spec: v1.PodSpec{
			Volumes:    []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
			Containers: []v1.Container{{Name: "redis", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
		}}
	}
	if u := unsupported(base()); len(u) != 0 {
		t.Fatalf("supported pod reported unsupported: %v", u)
	}
	tests := map[string]struct {
		mutate func(*v1.Pod)
		want   string
	}{
		"hostNetwork": {func(p *v1.Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork"},
		"hostPath": {func(p *v1.Pod) {
			p.Spec.Volumes[0].VolumeSource = v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/x"}}
		}, "spec.volumes[data]: volume type hostPath"},
		"grpc probe": {func(p *v1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: 1}}}
		}, "spec.containers[redis].livenessProbe.grpc"},
		"postStart": {func(p *v1.Pod) {
			p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{}}}
		}, "spec.containers[redis].lifecycle.postStart"},
		"privileged": {func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(true)}
		}, "spec.containers[redis].securityContext.privileged"},
		"ephemeral": {func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{}}
		}, "spec.ephemeralContainers"},
		"subPathExpr": {func(p *v1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPathExpr = "$(X)" }, "volumeMounts[data].subPathExpr"},
		"cap drop one": {func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Capabilities: &v1.Capabilities{Drop: []v1.Capability{"NET_RAW"}}}
		}, "capabilities.drop NET_RAW"},
		"projected bundle": {func(p *v1.Pod) {
			p.Spec.Volumes[0].VolumeSource = v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{}}}}}
		}, "projected clusterTrustBundle"},
	}
	for name, tc := range tests {
		p := base()
		tc.mutate(p)
		got := strings.Join(unsupported(p), "; ")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: unsupported = %q, want it to name %q", name, got, tc.want)
		}
	}
}
