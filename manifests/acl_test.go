package manifests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestACLComponent: with components/acl both agent containers get the
// password file and the ACL user flags (Sentinel's user in sentinel mode
// only, as the agent refuses it in cluster mode), the password Secret is
// mounted into the agent containers only, and builds without it set none
// of the user flags.
func TestACLComponent(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		for _, c := range spec.InitContainers {
			if c.Name != "agent-init" && c.Name != "agent" {
				continue
			}
			got := map[string]string{}
			for _, e := range c.Env {
				switch e.Name {
				case "REDIS_HA_AGENT_USER", "REDIS_HA_REPLICATION_USER", "REDIS_HA_SENTINEL_AUTH_USER", "REDIS_HA_DISABLE_DEFAULT_USER", "REDIS_HA_PASSWORD_FILE":
					got[e.Name] = e.Value
				}
			}
			want := map[string]string{}
			switch {
			case l.acl:
				want = map[string]string{
					"REDIS_HA_PASSWORD_FILE":        "/etc/redis-ha/auth/password",
					"REDIS_HA_AGENT_USER":           "redis-ha-agent",
					"REDIS_HA_REPLICATION_USER":     "redis-ha-replication",
					"REDIS_HA_DISABLE_DEFAULT_USER": "true",
				}
				if l.mode == "sentinel" {
					want["REDIS_HA_SENTINEL_AUTH_USER"] = "redis-ha-sentinel"
				}
			case l.production:
				want = map[string]string{"REDIS_HA_PASSWORD_FILE": "/etc/redis-ha/auth/password"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: auth variables (-want +got):\n%s", c.Name, diff)
			}
		}
		if !l.acl {
			return
		}
		for _, c := range allContainers(spec) {
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.Name == "auth" {
					mounted = true
				}
			}
			agent := c.Name == "agent-init" || c.Name == "agent"
			if mounted != agent {
				t.Errorf("container %s mounts the password Secret: %t, want %t (agent containers only)", c.Name, mounted, agent)
			}
		}
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == "auth" {
				vol = &spec.Volumes[i]
			}
		}
		if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "redis-auth" || len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Key != "password" {
			t.Errorf("no Secret volume auth of redis-auth's key password: %+v", vol)
		}
	})
}
