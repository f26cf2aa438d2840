package kubelet

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// unsupported lists every pod-spec feature this node agent does not
// implement, each naming the field, so the pod fails loudly instead of
// running differently from a real node.
//
// Accepted but not enforced (they only restrict, so a pod that works here
// works on a real node): resources requests/limits (no cgroups),
// seccompProfile RuntimeDefault/Unconfined, imagePullPolicy and
// imagePullSecrets (nothing is pulled), terminationMessagePath/Policy, and
// enableServiceLinks (only the kubernetes Service's variables are set).
func unsupported(pod *v1.Pod) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	s := &pod.Spec
	if s.HostNetwork {
		add("spec.hostNetwork")
	}
	if s.HostPID {
		add("spec.hostPID")
	}
	if s.HostIPC {
		add("spec.hostIPC")
	}
	if s.HostUsers != nil && !*s.HostUsers {
		add("spec.hostUsers=false (user namespaces)")
	}
	if s.ShareProcessNamespace != nil && *s.ShareProcessNamespace {
		add("spec.shareProcessNamespace")
	}
	if len(s.EphemeralContainers) > 0 {
		add("spec.ephemeralContainers")
	}
	if s.RuntimeClassName != nil {
		add("spec.runtimeClassName %q", *s.RuntimeClassName)
	}
	if s.OS != nil && s.OS.Name != v1.Linux {
		add("spec.os.name %q", s.OS.Name)
	}
	if s.DNSPolicy == v1.DNSNone && s.DNSConfig == nil {
		add("spec.dnsPolicy None without spec.dnsConfig")
	}
	if s.ActiveDeadlineSeconds != nil {
		add("spec.activeDeadlineSeconds")
	}
	if len(s.ResourceClaims) > 0 {
		add("spec.resourceClaims")
	}
	if sc := s.SecurityContext; sc != nil {
		if sc.SELinuxOptions != nil {
			add("spec.securityContext.seLinuxOptions")
		}
		if len(sc.Sysctls) > 0 {
			add("spec.securityContext.sysctls")
		}
		if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type != v1.AppArmorProfileTypeUnconfined {
			add("spec.securityContext.appArmorProfile %s", sc.AppArmorProfile.Type)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == v1.SeccompProfileTypeLocalhost {
			add("spec.securityContext.seccompProfile Localhost")
		}
		if sc.WindowsOptions != nil {
			add("spec.securityContext.windowsOptions")
		}
	}
	for i := range s.Volumes {
		if why := unsupportedVolume(&s.Volumes[i]); why != "" {
			add("spec.volumes[%s]: %s", s.Volumes[i].Name, why)
		}
	}
	for i := range s.InitContainers {
		c := &s.InitContainers[i]
		out = append(out, unsupportedContainer("spec.initContainers["+c.Name+"]", c, pod, !isSidecar(c))...)
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		out = append(out, unsupportedContainer("spec.containers["+c.Name+"]", c, pod, false)...)
		if c.RestartPolicy != nil {
			add("spec.containers[%s].restartPolicy (per-container restart rules)", c.Name)
		}
	}
	return out
}

func unsupportedVolume(v *v1.Volume) string {
	vs := &v.VolumeSource
	switch {
	case vs.EmptyDir != nil, vs.ConfigMap != nil, vs.Secret != nil, vs.DownwardAPI != nil, vs.PersistentVolumeClaim != nil:
		return ""
	case vs.Projected != nil:
		for _, src := range vs.Projected.Sources {
			switch {
			case src.ServiceAccountToken != nil, src.ConfigMap != nil, src.Secret != nil, src.DownwardAPI != nil:
			case src.ClusterTrustBundle != nil:
				return "projected clusterTrustBundle source"
			case src.PodCertificate != nil:
				return "projected podCertificate source"
			default:
				return "projected source of an unknown type"
			}
		}
		return ""
	}
	// Name the type through the JSON field that is set.
	kinds := map[string]bool{
		"hostPath": vs.HostPath != nil, "ephemeral": vs.Ephemeral != nil, "csi": vs.CSI != nil, "nfs": vs.NFS != nil,
		"image": vs.Image != nil, "iscsi": vs.ISCSI != nil, "gitRepo": vs.GitRepo != nil, "fc": vs.FC != nil,
	}
	for k, set := range kinds {
		if set {
			return "volume type " + k + " (supported: emptyDir, configMap, secret, downwardAPI, projected, persistentVolumeClaim)"
		}
	}
	return "volume type not supported (supported: emptyDir, configMap, secret, downwardAPI, projected, persistentVolumeClaim)"
}

func unsupportedContainer(field string, c *v1.Container, pod *v1.Pod, regularInit bool) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, field+"."+fmt.Sprintf(format, a...)) }
	for _, p := range []struct {
		name string
		p    *v1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
		if p.p == nil {
			continue
		}
		if p.p.GRPC != nil {
			add("%s.grpc", p.name)
		}
		if p.p.Exec == nil && p.p.HTTPGet == nil && p.p.TCPSocket == nil && p.p.GRPC == nil {
			add("%s has no handler", p.name)
		}
	}
	if c.Lifecycle != nil {
		if c.Lifecycle.PostStart != nil {
			add("lifecycle.postStart")
		}
		if h := c.Lifecycle.PreStop; h != nil && h.Exec == nil && h.HTTPGet == nil && h.Sleep == nil {
			add("lifecycle.preStop handler type (supported: exec, httpGet, sleep)")
		}
		if c.Lifecycle.StopSignal != nil {
			add("lifecycle.stopSignal")
		}
	}
	if c.Stdin || c.TTY {
		add("stdin/tty")
	}
	if len(c.VolumeDevices) > 0 {
		add("volumeDevices")
	}
	if len(c.Resources.Claims) > 0 {
		add("resources.claims")
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			add("ports[%d].hostPort", p.ContainerPort)
		}
	}
	for _, m := range c.VolumeMounts {
		if m.SubPathExpr != "" {
			add("volumeMounts[%s].subPathExpr", m.Name)
		}
		if m.MountPropagation != nil && *m.MountPropagation != v1.MountPropagationNone {
			add("volumeMounts[%s].mountPropagation %s", m.Name, *m.MountPropagation)
		}
		if m.RecursiveReadOnly != nil && *m.RecursiveReadOnly == v1.RecursiveReadOnlyEnabled {
			add("volumeMounts[%s].recursiveReadOnly Enabled", m.Name)
		}
		if !strings.HasPrefix(m.MountPath, "/") {
			add("volumeMounts[%s].mountPath %q is not absolute", m.Name, m.MountPath)
		}
		found := false
		for _, v := range pod.Spec.Volumes {
			found = found || v.Name == m.Name
		}
		if !found {
			add("volumeMounts[%s]: no such volume", m.Name)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.Privileged != nil && *sc.Privileged {
			add("securityContext.privileged")
		}
		if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
			add("securityContext.capabilities.add")
		}
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				if d != "ALL" {
					add("securityContext.capabilities.drop %s (only ALL is supported)", d)
				}
			}
		}
		if sc.SELinuxOptions != nil {
			add("securityContext.seLinuxOptions")
		}
		if sc.ProcMount != nil && *sc.ProcMount == v1.UnmaskedProcMount {
			add("securityContext.procMount Unmasked")
		}
		if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type != v1.AppArmorProfileTypeUnconfined {
			add("securityContext.appArmorProfile %s", sc.AppArmorProfile.Type)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == v1.SeccompProfileTypeLocalhost {
			add("securityContext.seccompProfile Localhost")
		}
		if sc.WindowsOptions != nil {
			add("securityContext.windowsOptions")
		}
	}
	if regularInit && (c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil) {
		add("probes on a non-sidecar init container")
	}
	return out
}
