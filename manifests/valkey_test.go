package manifests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestValkeyComponent: an overlay with components/valkey builds the same
// objects as the Redis overlay it includes, except for the server and
// Sentinel containers' image (valkey/valkey:8.1.1, pinned, IfNotPresent)
// and their program (valkey-server, valkey-sentinel; the arguments stay).
func TestValkeyComponent(t *testing.T) {
	const image = "valkey/valkey:8.1.1"
	cases := map[string]struct {
		redis   string
		changed map[string]string // container name -> program it must run
	}{
		"overlays/sentinel-3-valkey": {redis: "overlays/sentinel-3", changed: map[string]string{"redis": "valkey-server", "sentinel": "valkey-sentinel"}},
		"overlays/cluster-6-valkey":  {redis: "overlays/cluster-6", changed: map[string]string{"redis": "valkey-server"}},
	}
	for dir, tc := range cases {
		t.Run(dir, func(t *testing.T) {
			v, r := kustomize(t, dir), kustomize(t, tc.redis)
			seen := map[string]bool{}
			for _, c := range allContainers(&v.sts.Spec.Template.Spec) {
				program, ok := tc.changed[c.Name]
				if !ok {
					continue
				}
				seen[c.Name] = true
				if c.Image != image || c.ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("container %s: image %s, pull policy %s; want %s, IfNotPresent", c.Name, c.Image, c.ImagePullPolicy, image)
				}
				if len(c.Command) == 0 || c.Command[0] != program {
					t.Errorf("container %s: command %v, want %s first", c.Name, c.Command, program)
				}
			}
			for name := range tc.changed {
				if !seen[name] {
					t.Errorf("no container %s in the build", name)
				}
			}
			// Undo exactly those changes: what is left must be the Redis build.
			for _, c := range allContainers(&v.sts.Spec.Template.Spec) {
				if _, ok := tc.changed[c.Name]; !ok {
					continue
				}
				for _, rc := range allContainers(&r.sts.Spec.Template.Spec) {
					if rc.Name == c.Name && len(c.Command) > 0 && len(rc.Command) > 0 {
						c.Image, c.Command[0] = rc.Image, rc.Command[0]
					}
				}
			}
			if diff := cmp.Diff(r.sts, v.sts); diff != "" {
				t.Errorf("StatefulSet differs beyond image and program (-%s +%s):\n%s", tc.redis, dir, diff)
			}
			if diff := cmp.Diff(r.configMaps, v.configMaps); diff != "" {
				t.Errorf("ConfigMaps differ (-%s +%s):\n%s", tc.redis, dir, diff)
			}
			if diff := cmp.Diff(r.services, v.services); diff != "" {
				t.Errorf("Services differ (-%s +%s):\n%s", tc.redis, dir, diff)
			}
		})
	}
}
