package manifests

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// serviceAccountMountPath is where client-go's in-cluster config looks for
// the token, CA and namespace.
const serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// allContainers is every container of the pod, init containers first.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// isAgent tells the agent's containers by their image: the only containers
// that get the API token, the password and the agent's flags.
func isAgent(c *corev1.Container) bool { return strings.Contains(c.Image, "redis-ha-agent") }

// TestPodSecurity checks the restricted Pod Security Standard's container
// settings on every container, with pod-level values counted where
// Kubernetes inherits them.
func TestPodSecurity(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		psc := spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("pod uses host namespaces (hostNetwork %v, hostPID %v, hostIPC %v)", spec.HostNetwork, spec.HostPID, spec.HostIPC)
		}
		if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
			t.Errorf("pod securityContext.runAsUser is 0 (root)")
		}
		if len(psc.Sysctls) > 0 || psc.SELinuxOptions != nil {
			t.Errorf("pod securityContext sets sysctls or SELinux options")
		}
		// The restricted standard's volume types: no hostPath, no node access.
		for _, v := range spec.Volumes {
			vs := v.VolumeSource
			if vs.ConfigMap == nil && vs.Secret == nil && vs.Projected == nil && vs.DownwardAPI == nil &&
				vs.EmptyDir == nil && vs.PersistentVolumeClaim == nil && vs.Ephemeral == nil && vs.CSI == nil {
				t.Errorf("volume %s has a type the restricted Pod Security Standard forbids", v.Name)
			}
		}
		for _, c := range allContainers(spec) {
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					t.Errorf("container %s uses hostPort %d", c.Name, p.HostPort)
				}
			}
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("container %s has no securityContext", c.Name)
				continue
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = psc.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				t.Errorf("container %s: runAsNonRoot is not true (container or pod)", c.Name)
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				t.Errorf("container %s: runAsUser 0 (root)", c.Name)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("container %s is privileged", c.Name)
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("container %s: capabilities.drop is not [ALL]: %+v", c.Name, sc.Capabilities)
			} else if len(sc.Capabilities.Add) > 0 {
				t.Errorf("container %s adds capabilities %v", c.Name, sc.Capabilities.Add)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("container %s: seccompProfile is not RuntimeDefault (container or pod): %+v", c.Name, seccomp)
			}
		}
	})
}

// TestServiceAccountToken checks that no token is automounted and that the
// projected token volume reaches the agent containers only.
func TestServiceAccountToken(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("pod automountServiceAccountToken is not false: the token would reach redis-server too")
		}
		for _, sa := range b.serviceAccounts {
			if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				t.Errorf("ServiceAccount %s automountServiceAccountToken is not false", sa.Name)
			}
		}
		tokenVolumes := map[string]*corev1.ProjectedVolumeSource{}
		for i, v := range spec.Volumes {
			if v.Secret != nil && strings.Contains(v.Secret.SecretName, "token") {
				t.Errorf("volume %s mounts Secret %s: use the projected, expiring token instead", v.Name, v.Secret.SecretName)
			}
			if p := v.Projected; p != nil {
				for _, s := range p.Sources {
					if s.ServiceAccountToken != nil {
						tokenVolumes[v.Name] = spec.Volumes[i].Projected
					}
				}
			}
		}
		needsAPI := l.sidecar || l.init == "init"
		if !needsAPI && len(tokenVolumes) > 0 {
			t.Errorf("no agent container here talks to the API, yet volumes %v project a token", keys(tokenVolumes))
		}
		for name, p := range tokenVolumes {
			checkKubeAPIAccess(t, name, p)
		}
		for _, c := range allContainers(spec) {
			var tokenMount *corev1.VolumeMount
			for i, m := range c.VolumeMounts {
				if _, ok := tokenVolumes[m.Name]; ok {
					tokenMount = &c.VolumeMounts[i]
				}
			}
			switch {
			case tokenMount != nil && !isAgent(c):
				t.Errorf("container %s (image %s) mounts the token volume %s: only the agent may", c.Name, c.Image, tokenMount.Name)
			case needsAPI && isAgent(c) && tokenMount == nil && !(c.Name == "agent-init" && l.init != "init"):
				t.Errorf("agent container %s does not mount a projected token volume at %s", c.Name, serviceAccountMountPath)
			case tokenMount != nil && (tokenMount.MountPath != serviceAccountMountPath || !tokenMount.ReadOnly):
				t.Errorf("container %s mounts the token at %s (readOnly %v), want %s read-only", c.Name, tokenMount.MountPath, tokenMount.ReadOnly, serviceAccountMountPath)
			}
		}
	})
}

// checkKubeAPIAccess compares a projected volume with the kube-api-access
// volume the API server injects: token, cluster CA and namespace.
func checkKubeAPIAccess(t *testing.T, name string, p *corev1.ProjectedVolumeSource) {
	t.Helper()
	var token, ca, ns bool
	for _, s := range p.Sources {
		switch {
		case s.ServiceAccountToken != nil:
			token = s.ServiceAccountToken.Path == "token" && s.ServiceAccountToken.Audience == ""
		case s.ConfigMap != nil:
			ca = s.ConfigMap.Name == "kube-root-ca.crt" && len(s.ConfigMap.Items) == 1 &&
				s.ConfigMap.Items[0].Key == "ca.crt" && s.ConfigMap.Items[0].Path == "ca.crt"
		case s.DownwardAPI != nil:
			ns = len(s.DownwardAPI.Items) == 1 && s.DownwardAPI.Items[0].Path == "namespace" &&
				s.DownwardAPI.Items[0].FieldRef != nil && s.DownwardAPI.Items[0].FieldRef.FieldPath == "metadata.namespace"
		}
	}
	if !token || !ca || !ns {
		t.Errorf("projected volume %s differs from kube-api-access: token (path token, API server audience) %v, kube-root-ca.crt ca.crt %v, namespace %v", name, token, ca, ns)
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
