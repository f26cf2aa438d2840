package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	// promtoolVersion is e2e/hack/build-promtool.sh's default, named in
	// error messages.
	promtoolVersion = "v0.316.0"
	promtoolPkg     = "github.com/prometheus/prometheus/cmd/promtool"
	repoRoot        = "../.."
	componentDir    = repoRoot + "/manifests/components/monitoring"
)

// cacheDir is the e2e cache root, as e2e/hack/build-k8s.sh and e2e/images
// find it.
func cacheDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("REDIS_HA_E2E_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for promtool: set REDIS_HA_E2E_CACHE or XDG_CACHE_HOME (%v)", err)
	}
	return filepath.Join(d, "redis-ha-agent-e2e")
}

// promtool returns the path of promtool, built into the e2e cache by
// e2e/hack/build-promtool.sh (the script make test runs in its first
// phase) if it is not there yet (minutes: the module's dependency tree
// is large; README.md "Monitoring" has the measured time).
func promtool(t *testing.T) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(repoRoot, "e2e", "hack", "build-promtool.sh"), cacheDir(t))
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("e2e/hack/build-promtool.sh: %v\n%s\npromtool checks and tests the alert rules; the script builds it with `go install %s@%s` (Go toolchain and module proxy needed): fix the error above, or run the script by hand", err, errOut.String(), promtoolPkg, promtoolVersion)
	}
	if errOut.Len() > 0 {
		t.Logf("build-promtool.sh (%s): %s", time.Since(start).Round(time.Second), strings.TrimSpace(errOut.String()))
	}
	bin := strings.TrimSpace(out.String())
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("e2e/hack/build-promtool.sh printed %q, which is not a file: %v", bin, err)
	}
	return bin
}

// promcheckBin is the helper, built once per test binary.
var promcheckBin struct {
	once      sync.Once
	path, err string
}

// promcheck returns the helper program in ./promcheck (its own module),
// built into the e2e cache (go build relinks only when a source changed).
func promcheck(t *testing.T) string {
	t.Helper()
	cache := cacheDir(t)
	promcheckBin.once.Do(func() {
		bin := filepath.Join(cache, "monitoring", "promcheck")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = "promcheck"
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			promcheckBin.err = fmt.Sprintf("build e2e/monitoring/promcheck: %v\n%s\nthe checks run this helper, built with the go command (the Go toolchain on PATH, the module proxy for its modules); `cd e2e/monitoring/promcheck && go build .` shows the same error", err, out)
			return
		}
		promcheckBin.path = bin
	})
	if promcheckBin.err != "" {
		t.Fatal(promcheckBin.err)
	}
	return promcheckBin.path
}

// run runs a program and returns its stdout; a failure ends the test with
// its stderr.
func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.Bytes()
}

// object is one decoded object of a build.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string {
	m, _ := o["metadata"].(map[string]any)
	s, _ := m["name"].(string)
	return s
}

// build builds a kustomization with promcheck (which decodes the
// monitoring objects strictly) and returns its objects.
func build(t *testing.T, pc, dir string) []object {
	t.Helper()
	var objs []object
	for _, doc := range strings.Split(string(run(t, nil, pc, "build", dir)), "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("decode the build of %s: %v", dir, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// find returns the one object of kind (and name, if not empty) in objs.
func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	var got []object
	for _, o := range objs {
		if o.kind() == kind && (name == "" || o.name() == name) {
			got = append(got, o)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %s %q in the build, got %d", kind, name, len(got))
	}
	return got[0]
}

// exported is the set of series names an agent serves, plus `up`, which
// Prometheus writes for every target.
func exported(t *testing.T, pc string) map[string]bool {
	t.Helper()
	var names []string
	if err := json.Unmarshal(run(t, nil, pc, "series"), &names); err != nil {
		t.Fatalf("decode promcheck series: %v", err)
	}
	set := map[string]bool{"up": true}
	for _, n := range names {
		set[n] = true
	}
	// The check is only as good as this list: it must hold the agent's
	// own series, not only Go's.
	for _, want := range []string{"redis_ha_agent_role", "redis_ha_agent_switchover_duration_seconds_bucket", "redis_ha_agent_engine_info"} {
		if !set[want] {
			t.Fatalf("promcheck series lists no %s: %v", want, names)
		}
	}
	return set
}

// unexported returns, for each expression, the series it names that the
// agent does not export ("" when all are exported).
func unexported(t *testing.T, pc string, known map[string]bool, exprs []string) []string {
	t.Helper()
	in, err := json.Marshal(exprs)
	if err != nil {
		t.Fatal(err)
	}
	var names [][]string
	if err := json.Unmarshal(run(t, in, pc, "names"), &names); err != nil {
		t.Fatalf("decode promcheck names: %v", err)
	}
	if len(names) != len(exprs) {
		t.Fatalf("promcheck names answered %d lists for %d expressions", len(names), len(exprs))
	}
	res := make([]string, len(exprs))
	for i, ns := range names {
		if len(ns) == 0 {
			t.Errorf("expression %q names no series", exprs[i])
		}
		var bad []string
		for _, n := range ns {
			if !known[n] {
				bad = append(bad, n)
			}
		}
		if len(bad) > 0 {
			res[i] = fmt.Sprintf("%q names %v, which neither the agent nor redis_exporter exports", exprs[i], bad)
		}
	}
	return res
}
