package manifests

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestExternalAccess: components/external-access adds, for each pod, a
// NodePort Service that selects that pod alone, at the NodePorts the agent
// announces (the environment of both agent containers: base + ordinal),
// with the node address from the downward API; the StatefulSet is
// otherwise the overlay's, and no RBAC is added (the agent reads no
// Service).
func TestExternalAccess(t *testing.T) {
	e, plain := kustomize(t, "overlays/sentinel-3-external"), kustomize(t, "overlays/sentinel-3")
	for _, name := range []string{"agent-init", "agent"} {
		c := containerNamed(&e.sts.Spec.Template.Spec, name)
		if c == nil {
			t.Fatalf("no container %s", name)
		}
		env := map[string]corev1.EnvVar{}
		for _, v := range c.Env {
			env[v.Name] = v
		}
		host := env["REDIS_HA_EXTERNAL_HOST"]
		if host.ValueFrom == nil || host.ValueFrom.FieldRef == nil || host.ValueFrom.FieldRef.FieldPath != "status.hostIP" {
			t.Errorf("container %s: REDIS_HA_EXTERNAL_HOST %+v, want the downward API's status.hostIP", name, host)
		}
		for envName, svcPort := range map[string]string{"REDIS_HA_EXTERNAL_REDIS_PORT": "redis", "REDIS_HA_EXTERNAL_SENTINEL_PORT": "sentinel"} {
			base, err := strconv.Atoi(env[envName].Value)
			if err != nil {
				t.Errorf("container %s: %s %q is not a port", name, envName, env[envName].Value)
				continue
			}
			for i := 0; i < int(*e.sts.Spec.Replicas); i++ {
				svc := e.services[fmt.Sprintf("redis-%d-external", i)]
				if svc == nil {
					t.Fatalf("no Service redis-%d-external", i)
				}
				if got := nodePortOf(svc, svcPort); got != base+i {
					t.Errorf("Service %s port %s: nodePort %d, want %s %d + ordinal %d (what the agent announces)", svc.Name, svcPort, got, envName, base, i)
				}
			}
		}
	}
	podPorts := map[string]int32{}
	for _, c := range allContainers(&e.sts.Spec.Template.Spec) {
		for _, p := range c.Ports {
			podPorts[p.Name] = p.ContainerPort
		}
	}
	for i := 0; i < int(*e.sts.Spec.Replicas); i++ {
		svc := e.services[fmt.Sprintf("redis-%d-external", i)]
		pod := fmt.Sprintf("redis-%d", i)
		if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
			t.Errorf("Service %s: type %s, externalTrafficPolicy %s; want NodePort, Cluster (every node forwards: an address announced from another node still works)", svc.Name, svc.Spec.Type, svc.Spec.ExternalTrafficPolicy)
		}
		if diff := cmp.Diff(map[string]string{"statefulset.kubernetes.io/pod-name": pod}, svc.Spec.Selector); diff != "" {
			t.Errorf("Service %s must select pod %s alone (-want +got):\n%s", svc.Name, pod, diff)
		}
		if !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s: publishNotReadyAddresses false; replicas and Sentinels dial it before the pod is Ready", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type != intstr.String || podPorts[p.TargetPort.StrVal] != p.Port {
				t.Errorf("Service %s port %s: targets %s, want the container port of that name, at the same port (%d)", svc.Name, p.Name, p.TargetPort.String(), p.Port)
			}
		}
	}
	// Only the two agents' environment differs.
	for _, name := range []string{"agent-init", "agent"} {
		c := containerNamed(&e.sts.Spec.Template.Spec, name)
		var kept []corev1.EnvVar
		for _, v := range c.Env {
			switch v.Name {
			case "REDIS_HA_EXTERNAL_HOST", "REDIS_HA_EXTERNAL_REDIS_PORT", "REDIS_HA_EXTERNAL_SENTINEL_PORT":
			default:
				kept = append(kept, v)
			}
		}
		c.Env = kept
	}
	if diff := cmp.Diff(plain.sts, e.sts); diff != "" {
		t.Errorf("StatefulSet differs beyond the agents' external-access environment (-sentinel-3 +sentinel-3-external):\n%s", diff)
	}
	if diff := cmp.Diff(plain.roles, e.roles); diff != "" {
		t.Errorf("Roles differ: external access must need no RBAC (-sentinel-3 +sentinel-3-external):\n%s", diff)
	}
}

func nodePortOf(svc *corev1.Service, name string) int {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return int(p.NodePort)
		}
	}
	return -1
}

func containerNamed(spec *corev1.PodSpec, name string) *corev1.Container {
	for _, c := range allContainers(spec) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
