package images

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDockerfileAgrees checks that the image this package builds for the e2e
// cluster is the one ../../Dockerfile describes for releases: same build
// command, binary path, entrypoint and user, and a final stage with no shell
// (which the builder's own image test checks for its image). The Dockerfile
// parsing is repeated from manifests/image_test.go because the two modules
// can't share test code.
func TestDockerfileAgrees(t *testing.T) {
	df := readDockerfile(t, "../../Dockerfile")

	if df.goBuild == "" || df.copySrc == "" {
		t.Fatalf("Dockerfile: no `RUN ... go build` line or no `COPY --from=<stage> <binary> <dest>` (got %q, %q)", df.goBuild, df.copySrc)
	}
	env, args := agentGoBuild("${VERSION}", df.copySrc)
	want := strings.Join(env, " ") + " " + shellJoin(args)
	if df.goBuild != want {
		t.Errorf("Dockerfile builds the agent with\n  %s\nbut e2e/images (agentGoBuild) with\n  %s\nkeep them the same", df.goBuild, want)
	}
	if df.binary != agentBinary {
		t.Errorf("Dockerfile copies the binary to %s, e2e/images to %s", df.binary, agentBinary)
	}
	if diff := cmp.Diff([]string{agentBinary}, df.entrypoint); diff != "" {
		t.Errorf("Dockerfile ENTRYPOINT differs from e2e/images' [%s] (-builder +Dockerfile):\n%s", agentBinary, diff)
	}
	if df.user != agentUser {
		t.Errorf("Dockerfile USER %q, e2e/images %q", df.user, agentUser)
	}
	// The builder's base stands in for distroless/static:nonroot; if the
	// Dockerfile moves to another base, the builder's base must follow.
	if final := df.froms[len(df.froms)-1]; !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("Dockerfile's final stage is FROM %s; e2e/images builds a distroless/static:nonroot look-alike (nonrootBase): change one to match the other", final)
	}
}

type dockerfile struct {
	froms      []string
	goBuild    string
	copySrc    string
	binary     string
	user       string
	entrypoint []string
}

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
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
	var d dockerfile
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
			if f := strings.Fields(rest); len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
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
	if len(d.froms) == 0 {
		t.Fatalf("%s has no FROM", path)
	}
	return d
}
