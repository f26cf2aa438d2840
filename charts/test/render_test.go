package charttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	// chartDir and manifestsDir as seen from this package.
	chartDir     = "../redis-ha-agent"
	manifestsDir = "../../manifests"
	// namespace the chart is rendered for; the kustomize builds set none.
	namespace = "redis-ns"
)

// object is one decoded Kubernetes object, as JSON-compatible maps.
type object = map[string]any

// render renders the chart like `helm template <release> charts/redis-ha-agent
// --namespace redis-ns -f values`, with the Helm v4 SDK and no cluster.
func render(t *testing.T, release string, values map[string]any) []object {
	t.Helper()
	objs, err := renderErr(release, values)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("the chart rendered no objects for release %s", release)
	}
	return objs
}

// kustomize builds dir with the kustomize library (the same one
// manifests/build_test.go uses, which also decodes every object strictly).
func kustomize(t *testing.T, dir string) []object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: as YAML: %v", dir, err)
	}
	objs, err := decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("kustomize build %s: decode: %v", dir, err)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize build %s built no objects", dir)
	}
	return objs
}

// decode reads a multi-document YAML stream into maps, each document
// through sigs.k8s.io/yaml (YAML to JSON), so numbers, octal modes and
// quoted strings come out the same whichever tool printed them.
func decode(r io.Reader) ([]object, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var objs []object
	for i, doc := range splitYAML(string(src)) {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		if len(o) == 0 {
			continue
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// splitYAML splits on document separators (a line that is exactly "---").
func splitYAML(s string) []string {
	var docs []string
	var cur strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.String())
}

// clusterScoped kinds carry no namespace.
var clusterScoped = map[string]bool{
	"ValidatingAdmissionPolicy":        true,
	"ValidatingAdmissionPolicyBinding": true,
}

// chartVersion is the chart's version as helm.sh/chart carries it.
func chartVersion(t *testing.T) string {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart %s: %v", chartDir, err)
	}
	return chrt.Metadata.Name + "-" + chrt.Metadata.Version
}

// normalizeChart removes what only Helm adds, after checking it is what
// it should be: the labels helm.sh/chart and app.kubernetes.io/managed-by
// on every object, metadata.namespace (the release's) on namespaced ones,
// and the pod template's checksum/config annotation, which must be the
// SHA-256 of the rendered redis.conf (it is what rolls the pods when the
// config changes, as kustomize's hashed ConfigMap name does).
func normalizeChart(t *testing.T, objs []object) {
	t.Helper()
	wantChart := chartVersion(t)
	var confs []string
	for _, o := range objs {
		if conf, ok := dig(o, "data", "redis.conf").(string); ok && kind(o) == "ConfigMap" {
			confs = append(confs, conf)
		}
	}
	for _, o := range objs {
		id := objID(o)
		md := o["metadata"].(map[string]any)
		labels, _ := md["labels"].(map[string]any)
		if got := labels["helm.sh/chart"]; got != wantChart {
			t.Errorf("%s: label helm.sh/chart = %v, want %s", id, got, wantChart)
		}
		if got := labels["app.kubernetes.io/managed-by"]; got != "Helm" {
			t.Errorf("%s: label app.kubernetes.io/managed-by = %v, want Helm", id, got)
		}
		delete(labels, "helm.sh/chart")
		delete(labels, "app.kubernetes.io/managed-by")
		if len(labels) == 0 {
			delete(md, "labels")
		}
		ns, hasNS := md["namespace"]
		switch {
		case clusterScoped[kind(o)] && hasNS:
			t.Errorf("%s: cluster-scoped, but has namespace %v", id, ns)
		case !clusterScoped[kind(o)] && ns != namespace:
			t.Errorf("%s: namespace = %v, want the release's %s", id, ns, namespace)
		}
		delete(md, "namespace")
		if kind(o) != "StatefulSet" {
			continue
		}
		tmd := dig(o, "spec", "template", "metadata").(map[string]any)
		ann, _ := tmd["annotations"].(map[string]any)
		sum, _ := ann["checksum/config"].(string)
		if len(confs) != 1 {
			t.Fatalf("%s: the chart rendered %d ConfigMaps with a redis.conf, want 1", id, len(confs))
		}
		if want := sha256.Sum256([]byte(confs[0])); sum != hex.EncodeToString(want[:]) {
			t.Errorf("%s: pod annotation checksum/config = %q, want the SHA-256 of the ConfigMap's redis.conf, %x", id, sum, want)
		}
		delete(ann, "checksum/config")
		if len(ann) == 0 {
			delete(tmd, "annotations")
		}
	}
}

// normalizeKustomize drops the content hash kustomize's configMapGenerator
// appends to the redis.conf ConfigMap's name (and to the StatefulSet's
// reference to it); the chart names it <name>-config and rolls the pods
// with checksum/config. Other ConfigMaps (the monitoring component's
// dashboard) are generated without a hash and left as they are.
func normalizeKustomize(t *testing.T, objs []object) {
	t.Helper()
	renamed := map[string]string{}
	for _, o := range objs {
		if _, ok := dig(o, "data", "redis.conf").(string); !ok || kind(o) != "ConfigMap" {
			continue
		}
		md := o["metadata"].(map[string]any)
		name := md["name"].(string)
		i := strings.LastIndexByte(name, '-')
		if i < 0 || len(name)-i-1 != 10 {
			t.Fatalf("ConfigMap %s: no kustomize content hash (-<10 characters>) at the end of its name", name)
		}
		renamed[name] = name[:i]
		md["name"] = name[:i]
	}
	for _, o := range objs {
		if kind(o) != "StatefulSet" {
			continue
		}
		for _, v := range list(o, "spec", "template", "spec", "volumes") {
			cm, ok := v.(map[string]any)["configMap"].(map[string]any)
			if !ok {
				continue
			}
			if n, ok := renamed[cm["name"].(string)]; ok {
				cm["name"] = n
			}
		}
	}
}

// normalizeOrder sorts the lists whose order Kubernetes ignores, so that
// where a kustomize patch inserts an entry does not count: env by name
// (only while no value refers to another variable with $(...), where order
// matters), volumeMounts by mountPath, volumes by name.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func normalizeOrder(t *testing.T, objs []object) {
	t.Helper()
	for _, o := range objs {
		if kind(o) != "StatefulSet" {
			continue
		}
		spec := dig(o, "spec", "template", "spec").(map[string]any)
		sortBy(spec, "volumes", "name")
		for _, key := range []string{"initContainers", "containers"} {
			for _, c := range list(spec, key) {
				c := c.(map[string]any)
				// A $(VAR) reference resolves only to a variable listed
				// before it: checked here, on each side, before sorting.
				defined := map[string]bool{}
				for _, e := range list(c, "env") {
					e := e.(map[string]any)
					v, _ := e["value"].(string)
					for _, m := range envRef.FindAllStringSubmatch(v, -1) {
						if !defined[m[1]] {
							t.Fatalf("%s: container %s: env %v refers to %s, which is not listed before it", objID(o), c["name"], e, m[1])
						}
					}
					defined[fmt.Sprint(e["name"])] = true
				}
				sortBy(c, "env", "name")
				sortBy(c, "volumeMounts", "mountPath")
			}
		}
	}
}

func sortBy(m map[string]any, key, field string) {
	l, ok := m[key].([]any)
	if !ok {
		return
	}
	sort.SliceStable(l, func(i, j int) bool {
		return fmt.Sprint(l[i].(map[string]any)[field]) < fmt.Sprint(l[j].(map[string]any)[field])
	})
}

// byID indexes objects by kind and name; a duplicate is an error.
func byID(t *testing.T, side string, objs []object) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, o := range objs {
		id := objID(o)
		if _, dup := m[id]; dup {
			t.Fatalf("%s: %s twice", side, id)
		}
		m[id] = o
	}
	return m
}

func objID(o object) string {
	return fmt.Sprintf("%s/%s", kind(o), str(o, "metadata", "name"))
}

func kind(o object) string { s, _ := o["kind"].(string); return s }

func dig(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

func str(o any, path ...string) string { s, _ := dig(o, path...).(string); return s }

func list(o any, path ...string) []any { l, _ := dig(o, path...).([]any); return l }

func ids(m map[string]object) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// rel is the path from dir to target, for kustomization files written
// outside the repository that refer to its bases and components.
func rel(t *testing.T, dir, target string) string {
	t.Helper()
	abs, err := filepath.Abs(target)
	if err != nil {
		t.Fatal(err)
	}
	r, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// renderErr renders the chart for the tests' namespace and decodes it.
func renderErr(release string, values map[string]any) ([]object, error) {
	return renderSchema(release, values, false)
}

func renderSchema(release string, values map[string]any, skipSchema bool) ([]object, error) {
	manifest, err := renderChart(chartDir, release, namespace, values, skipSchema)
	if err != nil {
		return nil, err
	}
	return decode(strings.NewReader(manifest))
}
