package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifestsDir is the repository's manifests/ seen from this package.
const manifestsDir = "../../manifests"

// kustomize builds dir with `kubectl kustomize`, exactly what a user runs
// before `kubectl apply -k`, and decodes the output.
func kustomize(t *testing.T, ctx context.Context, dir string) []*unstructured.Unstructured {
	t.Helper()
	// The kubectl built with the control plane (e2e/hack/build-k8s.sh), so
	// a machine without one on PATH checks the manifests all the same.
	kubectl, err := exec.LookPath(cluster.KubectlPath())
	if err != nil {
		t.Fatalf("kubectl not found in the control plane's bin dir or on PATH (%v): the manifests are checked with `kubectl kustomize`; run e2e/hack/build-k8s.sh", err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v: %s", dir, err, strings.TrimSpace(errOut.String()))
	}
	objs, err := decodeObjects(&out)
	if err != nil {
		t.Fatalf("decode the output of kubectl kustomize %s: %v", dir, err)
	}
	if len(objs) == 0 {
		t.Fatalf("kubectl kustomize %s built no objects", dir)
	}
	return objs
}

// decodeObjects reads a multi-document YAML stream.
func decodeObjects(r io.Reader) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
}

// readObjects decodes a plain YAML file (no kustomization).
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := decodeObjects(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return objs
}

// kustomizations lists every directory under manifests/ whose
// kustomization.yaml is a Kustomization (bases and overlays), relative to
// manifests/. Components are built through the overlays that include them.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(manifestsDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal(b, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if head.Kind == "" || head.Kind == "Kustomization" {
			rel, err := filepath.Rel(manifestsDir, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", manifestsDir, err)
	}
	sort.Strings(dirs)
	return dirs
}

// find returns the one object of kind (and name, if not empty).
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var got []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			got = append(got, o)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %s %q in the build, found %d", kind, name, len(got))
	}
	return got[0]
}
