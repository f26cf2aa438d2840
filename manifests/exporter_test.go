package manifests

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	exporterContainer = "redis-exporter"
	exporterPort      = 9121
	// exporterPasswordEnv is the agent's variable for the file it writes,
	// REDIS_PASSWORD_FILE the exporter's for the file it reads.
	exporterPasswordEnv = "REDIS_HA_EXPORTER_PASSWORD_FILE"
)

// exporterBuilds are components/redis-exporter added to every overlay of
// either mode and engine (and components/redis-exporter-tls to the TLS
// ones), as a user adds them, in a temporary kustomization.
func exporterBuilds(t *testing.T) map[string]layout {
	t.Helper()
	out := map[string]layout{}
	for dir, l := range layouts() {
		if !strings.HasPrefix(dir, "overlays/") || l.init != "init" || l.exporter {
			continue
		}
		l.exporter = true
		out[dir] = l
	}
	return out
}

func buildWithExporter(t *testing.T, overlay string, tls bool) *built {
	t.Helper()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(here, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	comps := []string{rel("components/redis-exporter")}
	if tls {
		comps = append(comps, rel("components/redis-exporter-tls"))
	}
	src := "resources: [" + rel(overlay) + "]\ncomponents: [" + strings.Join(comps, ", ") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomize(t, dir)
}

// TestRedisExporterComponent: on every build that has the exporter (the
// production overlay, and every other overlay with the component added)
// it is the container after the server, scrapes the pod's own server on
// the agent's --redis-port (over TLS, verifying the pod's name against the
// CA, with components/tls), reads the password file the agent containers
// write into a shared in-memory volume and nothing else secret, serves
// 9121 under the port name the PodMonitor scrapes, and has resources.
func TestRedisExporterComponent(t *testing.T) {
	check := func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		ex := findContainer(spec.Containers, exporterContainer)
		if !l.exporter {
			if ex != nil {
				t.Errorf("container %s in a build without components/redis-exporter", exporterContainer)
			}
			return
		}
		if ex == nil {
			t.Fatalf("no container %s", exporterContainer)
		}
		if len(spec.Containers) != 2 || spec.Containers[0].Name != "redis" || spec.Containers[1].Name != exporterContainer {
			t.Errorf("containers %v, want [redis %s]: the server stays first (kubectl's default container)", names(spec.Containers), exporterContainer)
		}
		env := map[string]corev1.EnvVar{}
		order := map[string]int{}
		for i, e := range ex.Env {
			env[e.Name], order[e.Name] = e, i
		}
		redisPort := "6379"
		for _, p := range spec.Containers[0].Ports {
			if p.Name == "redis" {
				redisPort = strconv.Itoa(int(p.ContainerPort))
			}
		}
		scheme := "redis"
		if l.tls {
			scheme = "rediss"
		}
		if got, want := env["REDIS_ADDR"].Value, scheme+"://localhost:"+redisPort; got != want {
			t.Errorf("REDIS_ADDR = %q, want %q", got, want)
		}
		if env["REDIS_EXPORTER_DISABLE_SCRAPE_ENDPOINT"].Value != "true" {
			t.Errorf("the /scrape endpoint is on: it would dial any address a caller names")
		}
		for name := range env {
			if name == "REDIS_PASSWORD" || name == "REDIS_USER" || strings.HasPrefix(name, "REDIS_EXPORTER_BASIC_AUTH") {
				t.Errorf("the exporter gets %s in its environment", name)
			}
		}
		pwFile := env["REDIS_PASSWORD_FILE"].Value
		vol := mountOf(ex, pwFile)
		if vol == nil || !vol.ReadOnly {
			t.Fatalf("REDIS_PASSWORD_FILE %q is not on a read-only mount of the exporter (%v)", pwFile, ex.VolumeMounts)
		}
		for _, name := range []string{"agent-init", "agent"} {
			a := findContainer(spec.InitContainers, name)
			if a == nil {
				t.Fatalf("no %s container to write the exporter's password file", name)
			}
			got := ""
			for _, e := range a.Env {
				if e.Name == exporterPasswordEnv {
					got = e.Value
				}
			}
			m := mountOf(a, got)
			if got != pwFile || m == nil || m.Name != vol.Name || m.ReadOnly {
				t.Errorf("%s: %s = %q on mount %v, want %q on a writable mount of volume %s", name, exporterPasswordEnv, got, m, pwFile, vol.Name)
			}
		}
		for _, v := range spec.Volumes {
			if v.Name == vol.Name && (v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory) {
				t.Errorf("volume %s holding the exporter's password is not an in-memory emptyDir: %+v", v.Name, v.VolumeSource)
			}
		}
		if len(ex.Ports) != 1 || ex.Ports[0].Name != exporterContainer || ex.Ports[0].ContainerPort != exporterPort {
			t.Errorf("ports %+v, want one named %s on %d (the PodMonitor's second endpoint)", ex.Ports, exporterContainer, exporterPort)
		}
		if p := ex.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/-/reload" || p.HTTPGet.Port.IntValue() != exporterPort {
			t.Errorf("livenessProbe %+v, want GET /-/reload on %d (re-reads the password file)", p, exporterPort)
		}
		for _, r := range []corev1.ResourceList{ex.Resources.Requests, ex.Resources.Limits} {
			if r.Cpu().IsZero() || r.Memory().IsZero() {
				t.Errorf("resources %+v: want cpu and memory requests and limits", ex.Resources)
			}
		}
		tlsVars := []string{"REDIS_EXPORTER_TLS_CA_CERT_FILE", "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE", "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE", "REDIS_EXPORTER_TLS_SERVER_NAME"}
		if !l.tls {
			for _, v := range tlsVars {
				if _, ok := env[v]; ok {
					t.Errorf("%s set without components/tls", v)
				}
			}
			return
		}
		for v, key := range map[string]string{tlsVars[0]: "ca.crt", tlsVars[1]: "tls.crt", tlsVars[2]: "tls.key"} {
			f := env[v].Value
			m := mountOf(ex, f)
			if m == nil || path.Base(f) != key || !m.ReadOnly {
				t.Errorf("%s = %q is not %s on a read-only mount (%v)", v, f, key, ex.VolumeMounts)
				continue
			}
			for _, vol := range spec.Volumes {
				if vol.Name == m.Name && (vol.Secret == nil || !isTLSSecret(vol.Secret)) {
					t.Errorf("%s is on volume %s, not the TLS Secret", v, m.Name)
				}
			}
		}
		want := "$(POD_NAME)." + b.sts.Spec.ServiceName + ".$(POD_NAMESPACE).svc.cluster.local"
		if got := env[tlsVars[3]].Value; got != want {
			t.Errorf("%s = %q, want %q (the pod's name, which the certificate covers)", tlsVars[3], got, want)
		}
		for _, v := range []string{"POD_NAME", "POD_NAMESPACE"} {
			if e, ok := env[v]; !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || order[v] > order[tlsVars[3]] {
				t.Errorf("%s is not a downward-API variable listed before %s, which refers to it", v, tlsVars[3])
			}
		}
	}
	forEachBuild(t, check)
	for dir, l := range exporterBuilds(t) {
		t.Run(dir+"+redis-exporter", func(t *testing.T) {
			b := buildWithExporter(t, dir, l.tls)
			check(t, b, l)
			checkPolicies(t, b, l.mode)
		})
	}
}

// mountOf is the mount of c that holds file.
func mountOf(c *corev1.Container, file string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if file != "" && path.Dir(file) == m.MountPath {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func names(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

// TestRedisExporterTLSNeedsTheExporter: components/redis-exporter-tls
// alone fails the build instead of adding half a container.
func TestRedisExporterTLSNeedsTheExporter(t *testing.T) {
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, _ := filepath.Rel(dir, filepath.Join(here, "overlays/sentinel-3-tls"))
	c, _ := filepath.Rel(dir, filepath.Join(here, "components/redis-exporter-tls"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: ["+o+"]\ncomponents: ["+c+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kustomizeErr(dir); err == nil || !strings.Contains(err.Error(), "test") {
		t.Errorf("build of redis-exporter-tls without redis-exporter: err = %v, want the JSON patch test to fail", err)
	}
}

func kustomizeErr(dir string) (any, error) {
	return krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
}
