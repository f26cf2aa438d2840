// Package workflows checks the CI and release workflows in .github/workflows
// with actionlint (and, through it, shellcheck on every run: script), and
// that they run what the Makefile and the manifests say they run.
package workflows

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"sigs.k8s.io/yaml"
)

const dir = "../../.github/workflows"

func files(t *testing.T) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(fs) == 0 {
		t.Fatalf("no workflows under %s (%v)", dir, err)
	}
	return fs
}

// linter is actionlint with shellcheck, which it runs on every run: script.
func linter(t *testing.T) (*actionlint.Linter, string) {
	t.Helper()
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatal("shellcheck is not installed: actionlint checks every run: script with it; `make deps` installs it (apt-get install shellcheck)")
	}
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{Shellcheck: sc})
	if err != nil {
		t.Fatal(err)
	}
	return l, sc
}

func TestActionlint(t *testing.T) {
	l, sc := linter(t)
	fs := files(t)
	errs, err := l.LintFiles(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
	t.Logf("actionlint (with %s) checked %d workflows: %d findings", sc, len(fs), len(errs))
}

// TestActionlintCatches: the linter run above does find a broken
// workflow (an unknown job key, a shell mistake), so a clean result means
// something.
func TestActionlintCatches(t *testing.T) {
	l, _ := linter(t)
	bad := "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    timeout: 5\n    steps:\n      - run: echo $UNQUOTED_${{ github.ref }}\n"
	errs, err := l.Lint("bad.yml", []byte(bad), nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range errs {
		kinds[e.Kind] = true
	}
	if !kinds["syntax-check"] || !kinds["shellcheck"] && !kinds["expression"] {
		t.Errorf("actionlint on a broken workflow found %v; want a syntax-check finding and a shellcheck or expression one", kinds)
	}
}

type workflow struct {
	Permissions map[string]string
	Jobs        map[string]struct {
		Permissions map[string]string
		Steps       []struct {
			Uses string
			Run  string
		}
	}
}

func load(t *testing.T, name string) workflow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

func runs(w workflow) string {
	var b strings.Builder
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			b.WriteString(s.Run + "\n")
		}
	}
	return b.String()
}

// TestCIRunsWhatMakeTestRuns: every phase of `make test` (the Makefile's
// test recipe) is a step of the CI workflow, so the two cannot drift.
func TestCIRunsWhatMakeTestRuns(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^test:\n((?:\t.*\n)+)`).FindSubmatch(mk)
	if recipe == nil {
		t.Fatal("no test: recipe in the Makefile")
	}
	var phases []string
	for _, m := range regexp.MustCompile(`\$\(SUBMAKE\)(?: -\S+)* ([a-z0-9 -]+)`).FindAllSubmatch(recipe[1], -1) {
		phases = append(phases, strings.Fields(string(m[1]))...)
	}
	if len(phases) < 4 {
		t.Fatalf("found the phases %v in make test's recipe; the test expects $(SUBMAKE) lines", phases)
	}
	w := load(t, "ci.yml")
	if w.Permissions["contents"] != "read" || len(w.Permissions) != 1 {
		t.Errorf("ci.yml permissions %v, want only contents: read", w.Permissions)
	}
	all := runs(w)
	for _, p := range phases {
		if p == "k8s" || p == "engine-roots" || p == "monitoring-tools" || p == "deps" && strings.Contains(all, "make deps") {
			continue // prerequisites of unit and e2e, which make builds itself
		}
		if !regexp.MustCompile(`make [^\n]*\b` + regexp.QuoteMeta(p) + `\b`).MatchString(all) {
			t.Errorf("make test runs %q but no step of ci.yml does", p)
		}
	}
}

func TestReleaseSignsAndDescribes(t *testing.T) {
	w := load(t, "release.yml")
	if w.Permissions["contents"] != "read" || len(w.Permissions) != 1 {
		t.Errorf("release.yml top-level permissions %v, want only contents: read (the job asks for more)", w.Permissions)
	}
	job, ok := w.Jobs["image"]
	if !ok {
		t.Fatal("release.yml has no image job")
	}
	if job.Permissions["id-token"] != "write" || job.Permissions["packages"] != "write" {
		t.Errorf("image job permissions %v: keyless signing needs id-token: write, the push packages: write", job.Permissions)
	}
	all := runs(w)
	for _, want := range []string{"make image", "skopeo copy --all", "cosign sign --yes", "cosign attest", "GITHUB_REF_NAME"} {
		if !strings.Contains(all, want) {
			t.Errorf("release.yml runs no %q", want)
		}
	}
	var sbom bool
	for _, s := range job.Steps {
		sbom = sbom || strings.HasPrefix(s.Uses, "anchore/sbom-action@")
	}
	if !sbom {
		t.Error("release.yml makes no SBOM (anchore/sbom-action)")
	}
	// The tag check reads the file the agent's image tag comes from.
	mf, err := os.ReadFile("../../manifests/base/sentinel/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^ +image: ghcr\.io/redis-ha-agent/redis-ha-agent:v[0-9.]+$`).Match(mf) {
		t.Error("manifests/base/sentinel/statefulset.yaml no longer names ghcr.io/redis-ha-agent/redis-ha-agent:vX.Y.Z, which release.yml checks against the tag")
	}
}
