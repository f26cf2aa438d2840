package manifests

import (
	"context"
	"testing"
	"time"
)

// TestEveryKustomizationAppliesDryRun: every base and overlay under
// manifests/ builds with `kubectl kustomize` and every object it produces
// is accepted by the local cluster's API server (server-side apply, dry
// run: admission, schema validation, defaulting) in a fresh namespace.
// The overlays that include components/networkpolicy must carry its three
// policies, so the component's objects are among those validated. (The
// local nodes' CNI does not enforce NetworkPolicy: this validates the
// objects, it does not test what they block.)
func TestEveryKustomizationAppliesDryRun(t *testing.T) {
	dirs := kustomizations(t)
	// The layouts issue #6 names must be among them: a walk that finds
	// nothing (wrong path) must not pass.
	for _, want := range []string{"base/sentinel", "base/cluster", "overlays/sentinel-3", "overlays/cluster-6", "overlays/production", "overlays/seed002-with-agent-init", "overlays/seed002-with-agent"} {
		if !contains(dirs, want) {
			t.Fatalf("kustomization %s not found under %s (found %v)", want, manifestsDir, dirs)
		}
	}
	withPolicies := map[string]bool{"overlays/sentinel-3": true, "overlays/cluster-6": true, "overlays/production": true}
	a := newApplier(t)
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			objs := kustomize(t, ctx, manifestsDir+"/"+dir)
			if withPolicies[dir] {
				sts := find(t, objs, "StatefulSet", "").GetName()
				for _, suffix := range []string{"-peers", "-clients", "-metrics"} {
					find(t, objs, "NetworkPolicy", sts+suffix)
				}
			}
			ns := newNamespace(t, ctx, "dryrun")
			if err := a.apply(ctx, ns, objs, true); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetKind()+"/"+o.GetName())
			}
			t.Logf("%s: %d objects accepted in %s: %v", dir, len(objs), time.Since(start).Round(time.Millisecond), kinds)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDryRunRejectsInvalidObjects shows the dry run can fail: the same
// build with a misspelt field and with an invalid value is refused.
func TestDryRunRejectsInvalidObjects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := newNamespace(t, ctx, "dryrun-invalid")
	a := newApplier(t)
	for name, mutate := range map[string]func(o map[string]any){
		"unknown field": func(o map[string]any) { o["spec"].(map[string]any)["replicaz"] = int64(3) },
		"invalid value": func(o map[string]any) { o["spec"].(map[string]any)["replicas"] = int64(-1) },
	} {
		objs := kustomize(t, ctx, manifestsDir+"/overlays/sentinel-3")
		mutate(find(t, objs, "StatefulSet", "redis").Object)
		if err := a.apply(ctx, ns, objs, true); err == nil {
			t.Errorf("%s: dry run accepted a broken StatefulSet", name)
		} else {
			t.Logf("%s: refused as expected: %v", name, err)
		}
	}
}
