package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// layout is what a kustomization directory is expected to produce.
type layout struct {
	sts      string // StatefulSet name
	mode     string // agent mode: sentinel or cluster
	replicas int32
	// init is the agent's init-container subcommand: "init" (full init) or
	// "nodesconf rewrite" (the update-node.sh drop-in).
	init    string
	sidecar bool // the `run` native sidecar, probes and preStop, RBAC
	// services: the base's Services (headless, role-selecting) and PDB.
	services   bool
	production bool
	// engine is "valkey" for the builds with components/valkey; "" is
	// Redis. It names the server and Sentinel programs.
	engine string
	// tls: components/tls is on (the Secret redis-tls mounted into the
	// servers and the agent, the agent's TLS flags set).
	tls bool
	// netpol: components/networkpolicy is on (ingress policies for peers,
	// labelled clients and Prometheus).
	netpol bool
	// external: components/external-access is on (a NodePort Service per
	// pod, the agent's external-address flags set).
	external bool
	// exporter: components/redis-exporter is on (a redis_exporter
	// container beside the server).
	exporter bool
	// acl: components/acl is on (the password Secret mounted into the
	// agent containers, the ACL user flags set).
	acl bool
}

// layouts lists every kustomization that can be built (components are built
// through the overlays that include them). A new directory must be added
// here, which is checked.
func layouts() map[string]layout {
	return map[string]layout{
		"base/sentinel":                    {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true},
		"base/cluster":                     {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "init", sidecar: true, services: true},
		"overlays/sentinel-3":              {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true, netpol: true},
		"overlays/cluster-6":               {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "init", sidecar: true, services: true, netpol: true},
		"overlays/sentinel-3-valkey":       {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true, engine: "valkey", netpol: true},
		"overlays/cluster-6-valkey":        {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "init", sidecar: true, services: true, engine: "valkey", netpol: true},
		"overlays/sentinel-3-tls":          {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true, tls: true, netpol: true},
		"overlays/cluster-6-tls":           {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "init", sidecar: true, services: true, tls: true, netpol: true},
		"overlays/sentinel-3-external":     {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true, netpol: true, external: true},
		"overlays/sentinel-3-acl":          {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true, netpol: true, acl: true},
		"overlays/cluster-6-acl":           {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "init", sidecar: true, services: true, netpol: true, acl: true},
		"overlays/production":              {sts: "redis", mode: "sentinel", replicas: 3, init: "init", sidecar: true, services: true, production: true, netpol: true, exporter: true},
		"overlays/seed002-with-agent-init": {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "nodesconf rewrite"},
		"overlays/seed002-with-agent":      {sts: "redis-cluster", mode: "cluster", replicas: 6, init: "nodesconf rewrite", sidecar: true},
	}
}

// built is the decoded output of one kustomization.
type built struct {
	dir             string
	sts             *appsv1.StatefulSet
	configMaps      map[string]*corev1.ConfigMap
	services        map[string]*corev1.Service
	serviceAccounts map[string]*corev1.ServiceAccount
	roles           map[string]*rbacv1.Role
	roleBindings    map[string]*rbacv1.RoleBinding
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies map[string]*networkingv1.NetworkPolicy
	// policies and policyBindings: the pod guard (components/pod-guard).
	policies       map[string]*admissionv1.ValidatingAdmissionPolicy
	policyBindings map[string]*admissionv1.ValidatingAdmissionPolicyBinding
}

// kustomize builds dir (relative to this package) and decodes every object
// strictly into its API type, so a misspelt or misplaced field fails here
// instead of being dropped by the API server.
func kustomize(t *testing.T, dir string) *built {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b := &built{
		dir:             dir,
		configMaps:      map[string]*corev1.ConfigMap{},
		services:        map[string]*corev1.Service{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		roles:           map[string]*rbacv1.Role{},
		roleBindings:    map[string]*rbacv1.RoleBinding{},
		networkPolicies: map[string]*networkingv1.NetworkPolicy{},
		policies:        map[string]*admissionv1.ValidatingAdmissionPolicy{},
		policyBindings:  map[string]*admissionv1.ValidatingAdmissionPolicyBinding{},
	}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s/%s as YAML: %v", dir, r.GetKind(), r.GetName(), err)
		}
		var obj any
		switch r.GetKind() {
		case "StatefulSet":
			if b.sts != nil {
				t.Fatalf("%s: more than one StatefulSet (%s, %s); the RBAC component needs exactly one", dir, b.sts.Name, r.GetName())
			}
			b.sts = &appsv1.StatefulSet{}
			obj = b.sts
		case "ConfigMap":
			o := &corev1.ConfigMap{}
			b.configMaps[r.GetName()], obj = o, o
		case "Service":
			o := &corev1.Service{}
			b.services[r.GetName()], obj = o, o
		case "ServiceAccount":
			o := &corev1.ServiceAccount{}
			b.serviceAccounts[r.GetName()], obj = o, o
		case "Role":
			o := &rbacv1.Role{}
			b.roles[r.GetName()], obj = o, o
		case "RoleBinding":
			o := &rbacv1.RoleBinding{}
			b.roleBindings[r.GetName()], obj = o, o
		case "ValidatingAdmissionPolicy":
			o := &admissionv1.ValidatingAdmissionPolicy{}
			b.policies[r.GetName()], obj = o, o
		case "ValidatingAdmissionPolicyBinding":
			o := &admissionv1.ValidatingAdmissionPolicyBinding{}
			b.policyBindings[r.GetName()], obj = o, o
		case "PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			b.pdbs, obj = append(b.pdbs, o), o
		case "NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			b.networkPolicies[r.GetName()], obj = o, o
		default:
			t.Fatalf("%s: unexpected kind %s (%s): add it to the decoder and its checks", dir, r.GetKind(), r.GetName())
		}
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			t.Fatalf("%s: %s/%s does not decode strictly into its API type: %v", dir, r.GetKind(), r.GetName(), err)
		}
	}
	if b.sts == nil {
		t.Fatalf("%s: no StatefulSet in the build", dir)
	}
	return b
}

// forEachBuild runs fn as a subtest for every layout.
func forEachBuild(t *testing.T, fn func(t *testing.T, b *built, l layout)) {
	t.Helper()
	dirs := make([]string, 0, len(layouts()))
	for d := range layouts() {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		t.Run(d, func(t *testing.T) {
			fn(t, kustomize(t, d), layouts()[d])
		})
	}
}

// kustomizationDirs finds every directory below root with a kustomization
// file, split into buildable kustomizations and components.
func kustomizationDirs(t *testing.T) (builds, components []string) {
	t.Helper()
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch d.Name() {
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
		default:
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(src, &k); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if k.Kind == "Component" {
			components = append(components, filepath.Dir(p))
		} else {
			builds = append(builds, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return builds, components
}

// builtElsewhere are kustomizations outside manifests/ that include a
// component no overlay here can: components/monitoring's kinds need
// prometheus-operator's CRDs, which the e2e cluster (which applies every
// kustomization under manifests/) lacks, and its objects need
// prometheus-operator's Go types, which e2e/monitoring checks them against.
var builtElsewhere = []string{"../e2e/monitoring/testdata/sentinel", "../e2e/monitoring/testdata/cluster"}

// TestEveryKustomizationIsChecked makes sure no overlay escapes the checks
// and every component is used by some build.
func TestEveryKustomizationIsChecked(t *testing.T) {
	builds, components := kustomizationDirs(t)
	want := layouts()
	for _, d := range builds {
		if _, ok := want[d]; !ok {
			t.Errorf("kustomization %s is not in layouts() in build_test.go: add it with what it must produce", d)
		}
		delete(want, d)
	}
	for d := range want {
		t.Errorf("layouts() lists %s but there is no kustomization there", d)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	var refs strings.Builder
	for _, d := range append(append(builds, components...), builtElsewhere...) {
		src, err := os.ReadFile(filepath.Join(d, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k struct{ Components []string }
		if err := yaml.Unmarshal(src, &k); err != nil {
			t.Fatalf("%s/kustomization.yaml: %v", d, err)
		}
		for _, c := range k.Components {
			// Relative to this directory, also for the builds outside it
			// (whose paths come back in through ../manifests).
			abs, err := filepath.Abs(filepath.Join(d, c))
			if err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(here, abs)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&refs, rel)
		}
	}
	for _, c := range components {
		if !strings.Contains(refs.String(), c+"\n") {
			t.Errorf("component %s is included by no kustomization, so nothing builds or checks it", c)
		}
	}
}

func TestBuildShape(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		if b.sts.Name != l.sts {
			t.Errorf("StatefulSet is %q, want %q", b.sts.Name, l.sts)
		}
		if got := b.sts.Spec.Replicas; got == nil || *got != l.replicas {
			t.Errorf("StatefulSet %s replicas = %v, want %d", b.sts.Name, got, l.replicas)
		}
		// The agent's readiness keeps every pod not ready until the agents
		// agree (sentinel cold start) or the cluster exists; OrderedReady
		// would never create the pods they wait for.
		if l.sidecar && b.sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("StatefulSet %s podManagementPolicy = %q, want Parallel", b.sts.Name, b.sts.Spec.PodManagementPolicy)
		}
		for _, vct := range b.sts.Spec.VolumeClaimTemplates {
			if vct.Spec.StorageClassName != nil {
				t.Errorf("volumeClaimTemplate %s pins storageClassName %q: leave it out so the cluster's default class is used", vct.Name, *vct.Spec.StorageClassName)
			}
		}
	})
}
