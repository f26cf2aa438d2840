package manifests

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is what the tests need from ../Dockerfile.
type dockerfile struct {
	froms      []string // image of each stage, in order
	goBuild    string   // the RUN line that builds the binary
	copySrc    string   // final stage: COPY --from=<stage> <copySrc> <binary>
	binary     string
	user       string
	entrypoint []string
}

// parseDockerfile reads the instructions the image depends on. It joins
// continuation lines and skips comments, which is all this Dockerfile uses.
func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d.froms = append(d.froms, strings.Fields(rest)[0])
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.goBuild = rest
			}
		case "COPY":
			f := strings.Fields(rest)
			if len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
				d.copySrc, d.binary = f[1], f[2]
			}
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("Dockerfile ENTRYPOINT %s is not in exec (JSON) form: %v", rest, err)
			}
		}
	}
	return d
}

// agentBinary builds the agent with the Dockerfile's own `go build` line
// (output redirected to a temp dir) and returns its path, so the tests check
// the binary the image would contain.
func agentBinary(t *testing.T, version string) string {
	t.Helper()
	d := parseDockerfile(t)
	if d.goBuild == "" || d.copySrc == "" {
		t.Fatalf("Dockerfile: no `RUN ... go build` line or no `COPY --from=<stage> <binary> <dest>` (got %q, %q)", d.goBuild, d.copySrc)
	}
	if !strings.Contains(d.goBuild, d.copySrc) {
		t.Fatalf("Dockerfile: the go build line %q does not write %s, which the final stage copies", d.goBuild, d.copySrc)
	}
	out := filepath.Join(t.TempDir(), "redis-ha-agent")
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(d.goBuild, d.copySrc, out))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION="+version)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Dockerfile go build line %q: %v\n%s", d.goBuild, err, b)
	}
	return out
}

func TestImage(t *testing.T) {
	d := parseDockerfile(t)
	if len(d.froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a final stage", len(d.froms))
	}
	if final := d.froms[len(d.froms)-1]; !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static*:nonroot (no shell, no libc)", final)
	}
	// The builder's Go must be at least go.mod's go version.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil || d.froms[0] != "golang:"+string(goVersion[1]) && !strings.HasPrefix(d.froms[0], "golang:"+string(goVersion[1])+".") {
		t.Errorf("builder FROM %s does not match go.mod's go %s", d.froms[0], goVersion[1])
	}
	uid, gid, ok := strings.Cut(d.user, ":")
	u, uerr := strconv.Atoi(uid)
	_, gerr := strconv.Atoi(gid)
	if !ok || uerr != nil || gerr != nil || u == 0 {
		t.Errorf("USER %q: want numeric non-root uid:gid, so that runAsNonRoot can verify it", d.user)
	}
	if len(d.entrypoint) != 1 || d.entrypoint[0] != d.binary {
		t.Errorf("ENTRYPOINT %v, want [%q], the path the binary is copied to", d.entrypoint, d.binary)
	}

	const version = "v9.8.7-test"
	bin := agentBinary(t, version)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked and will not run on distroless/static (build with CGO_ENABLED=0)", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(version)) {
		t.Errorf("`redis-ha-agent version` = %q (%v), want it to carry the build's VERSION %s (-X main.Version)", out, err, version)
	}
}

// TestManifestsCallTheImagesBinary checks every agent container's command
// against the path the Dockerfile installs the binary to.
func TestManifestsCallTheImagesBinary(t *testing.T) {
	want := parseDockerfile(t).binary
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		for _, c := range allContainers(&b.sts.Spec.Template.Spec) {
			if !isAgent(c) {
				continue
			}
			if len(c.Command) == 0 || c.Command[0] != want {
				t.Errorf("container %s command %v, want it to start with %s (Dockerfile)", c.Name, c.Command, want)
			}
		}
	})
}

// TestDockerignoreKeepsSources makes sure the build context keeps every
// directory the binary is compiled from.
func TestDockerignoreKeepsSources(t *testing.T) {
	src, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "../cmd/redis-ha-agent").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	for _, pat := range strings.Split(string(src), "\n") {
		pat = strings.TrimSpace(pat)
		if pat == "" || strings.HasPrefix(pat, "#") || strings.ContainsAny(pat, "*?[!") {
			continue
		}
		for _, n := range needed {
			if n == pat || strings.HasPrefix(n, pat+"/") {
				t.Errorf(".dockerignore excludes %s, which the binary is built from (%s)", pat, n)
			}
		}
	}
}
