package manifests

import (
	"path"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestProductionOverlay checks what production adds: the password as a file
// for the agent only, resources, spreading and scrape annotations.
func TestProductionOverlay(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		secretVolumes, tlsVolumes := map[string]bool{}, map[string]bool{}
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				secretVolumes[v.Name] = true
				tlsVolumes[v.Name] = isTLSSecret(v.Secret)
			}
		}
		// Everywhere: no secret in env or argv.
		for _, c := range allContainers(spec) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("container %s takes %s from a Secret into its environment: mount it as a file", c.Name, e.Name)
				}
				up := strings.ToUpper(e.Name)
				if (strings.Contains(up, "PASS") || strings.Contains(up, "SECRET")) && !strings.HasSuffix(up, "_FILE") {
					t.Errorf("container %s sets %s in its environment: pass a file path instead", c.Name, e.Name)
				}
			}
			for _, a := range append(append([]string{}, c.Command...), c.Args...) {
				la := strings.ToLower(a)
				if (strings.Contains(la, "pass") || strings.Contains(la, "auth")) && !strings.HasPrefix(la, "--password-file") {
					t.Errorf("container %s has %q in its command line, where every process can read it", c.Name, a)
				}
			}
			for _, m := range c.VolumeMounts {
				// The TLS key is the exception: redis-server and
				// Sentinel read their certificate files themselves.
				if secretVolumes[m.Name] && !tlsVolumes[m.Name] && !isAgent(c) {
					t.Errorf("container %s mounts Secret volume %s: only the agent reads the password", c.Name, m.Name)
				}
			}
		}
		if !l.production {
			return
		}
		for _, c := range allContainers(spec) {
			r := c.Resources
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := r.Requests[name]; !ok {
					t.Errorf("container %s has no %s request", c.Name, name)
				}
				if _, ok := r.Limits[name]; !ok {
					t.Errorf("container %s has no %s limit", c.Name, name)
				}
			}
			if !isAgent(c) {
				continue
			}
			pwFile := ""
			for _, e := range c.Env {
				if e.Name == "REDIS_HA_PASSWORD_FILE" {
					pwFile = e.Value
				}
			}
			if pwFile == "" {
				t.Errorf("agent container %s has no REDIS_HA_PASSWORD_FILE", c.Name)
				continue
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				mounted = mounted || (secretVolumes[m.Name] && m.ReadOnly && path.Dir(pwFile) == m.MountPath)
			}
			if !mounted {
				t.Errorf("agent container %s: REDIS_HA_PASSWORD_FILE %s is not in a read-only Secret mount", c.Name, pwFile)
			}
		}
		checkMaxmemory(t, b)
		var host bool
		for _, tsc := range spec.TopologySpreadConstraints {
			if tsc.TopologyKey == "kubernetes.io/hostname" && tsc.WhenUnsatisfiable == corev1.DoNotSchedule && tsc.MaxSkew == 1 &&
				tsc.LabelSelector != nil && selects(tsc.LabelSelector.MatchLabels, b.sts.Spec.Template.Labels, "") {
				host = true
			}
		}
		if !host {
			t.Errorf("no topologySpreadConstraint spreads the pods over kubernetes.io/hostname (maxSkew 1, DoNotSchedule)")
		}
		ann := b.sts.Spec.Template.Annotations
		sidecar := findContainer(spec.InitContainers, "agent")
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || sidecar == nil ||
			len(sidecar.Ports) == 0 || ann["prometheus.io/port"] != strconv.Itoa(int(sidecar.Ports[0].ContainerPort)) {
			t.Errorf("scrape annotations %v do not point at the agent's /metrics port", ann)
		}
	})
}

// checkMaxmemory makes Redis stop growing before the kernel kills it.
func checkMaxmemory(t *testing.T, b *built) {
	t.Helper()
	redis := findContainer(b.sts.Spec.Template.Spec.Containers, "redis")
	limit, ok := redis.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return
	}
	cm := mountedConfigMap(t, b, redis, "/etc/redis")
	mm := strings.ToLower(redisConf(cm.Data["redis.conf"])["maxmemory"])
	// Redis units: mb = 1024*1024 (as are gb, kb).
	q, err := resource.ParseQuantity(strings.NewReplacer("gb", "Gi", "mb", "Mi", "kb", "Ki").Replace(mm))
	if mm == "" || err != nil {
		t.Errorf("redis.conf maxmemory %q: set it below the memory limit %s", mm, limit.String())
		return
	}
	if q.Cmp(limit) >= 0 || float64(q.Value()) > 0.8*float64(limit.Value()) {
		t.Errorf("redis.conf maxmemory %s is above 80%% of the memory limit %s: a fork for AOF rewrite or replica sync would be OOM-killed", mm, limit.String())
	}
}
