package manifests

import (
	"path"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// tlsFiles are the agent's TLS variables and the Secret key each names.
var tlsFiles = map[string]string{
	"REDIS_HA_TLS_CERT_FILE": "tls.crt",
	"REDIS_HA_TLS_KEY_FILE":  "tls.key",
	"REDIS_HA_TLS_CA_FILE":   "ca.crt",
}

// isTLSSecret: a Secret volume carrying only the cert-manager keys, which
// redis-server and Sentinel may mount (they read their key themselves).
func isTLSSecret(s *corev1.SecretVolumeSource) bool {
	if len(s.Items) == 0 {
		return false
	}
	for _, it := range s.Items {
		if !slices.Contains([]string{"tls.crt", "tls.key", "ca.crt"}, it.Key) {
			return false
		}
	}
	return true
}

// TestTLSComponent: with components/tls, the agent containers point their
// TLS variables at files in a read-only mount of the Secret redis-tls that
// redis-server and Sentinel mount at the same path (the agent writes those
// paths into their configs); nothing else differs from the overlay without
// it, in either mode, so the probes and preStop are the same HTTP calls to
// the agent.
func TestTLSComponent(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if s := spec.Volumes[i].Secret; s != nil && isTLSSecret(s) {
				vol = &spec.Volumes[i]
			}
		}
		if !l.tls {
			if vol != nil {
				t.Errorf("TLS Secret volume %s in a build without components/tls", vol.Name)
			}
			return
		}
		if vol == nil || vol.Secret.SecretName != "redis-tls" || len(vol.Secret.Items) != 3 {
			t.Fatalf("no Secret volume of redis-tls with tls.crt, tls.key and ca.crt: %+v", vol)
		}
		dir := ""
		for _, c := range allContainers(spec) {
			var mount *corev1.VolumeMount
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].Name == vol.Name {
					mount = &c.VolumeMounts[i]
				}
			}
			if mount == nil || !mount.ReadOnly {
				t.Errorf("container %s does not mount %s read-only", c.Name, vol.Name)
				continue
			}
			if dir != "" && mount.MountPath != dir {
				t.Errorf("container %s mounts the TLS Secret at %s, others at %s: the servers read the paths the agent writes", c.Name, mount.MountPath, dir)
			}
			dir = mount.MountPath
			if !isAgent(c) {
				continue
			}
			for env, key := range tlsFiles {
				got := ""
				for _, e := range c.Env {
					if e.Name == env {
						got = e.Value
					}
				}
				if want := path.Join(dir, key); got != want {
					t.Errorf("agent container %s: %s=%q, want %s", c.Name, env, got, want)
				}
			}
		}
	})
	for tlsDir, plainDir := range map[string]string{"overlays/sentinel-3-tls": "overlays/sentinel-3", "overlays/cluster-6-tls": "overlays/cluster-6"} {
		t.Run("OnlyTLSDiffers/"+tlsDir, func(t *testing.T) { onlyTLSDiffers(t, tlsDir, plainDir) })
	}
}

func onlyTLSDiffers(t *testing.T, tlsDir, plainDir string) {
	{
		withTLS, plain := kustomize(t, tlsDir), kustomize(t, plainDir)
		spec := &withTLS.sts.Spec.Template.Spec
		spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "tls" })
		for _, c := range allContainers(spec) {
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "tls" })
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { _, ok := tlsFiles[e.Name]; return ok })
		}
		if diff := cmp.Diff(plain.sts, withTLS.sts); diff != "" {
			t.Errorf("%s differs from %s beyond the TLS volume, mounts and variables (-plain +tls):\n%s", tlsDir, plainDir, diff)
		}
		if diff := cmp.Diff(plain.services, withTLS.services); diff != "" {
			t.Errorf("Services differ (-plain +tls):\n%s", diff)
		}
	}
}
