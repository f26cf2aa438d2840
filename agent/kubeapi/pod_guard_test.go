package kubeapi_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// podGuardOverlay is the shipped layout whose RBAC and pod guard the test
// applies: StatefulSet redis, ServiceAccount redis-ha-agent.
const podGuardOverlay = "../../manifests/overlays/sentinel-3"

// podGuardPolicy names the ValidatingAdmissionPolicy of
// manifests/components/pod-guard; the API server puts it in every denial.
const podGuardPolicy = "redis-ha-agent-pod-guard"

// podGuardLabel is the agent's default --role-label, the one label the
// policy lets the agent change.
const podGuardLabel = "redis-ha-agent/role"

// TestPodGuard: on a real kube-apiserver, with the Role, RoleBinding,
// ServiceAccount, ValidatingAdmissionPolicy and binding exactly as
// sentinel-3 builds them, the agent's token may set and remove the role
// label on pods of its own StatefulSet (through the agent's own patch,
// kubeapi.SetPodLabel), and every other change the Role's `patch` on pods
// would allow is refused with the policy's message. No nodes: the pods stay
// Pending.
func TestPodGuard(t *testing.T) {
	rc, _ := proctest.StartAPIServer(t)
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "default"
	applyPodGuardBuild(t, ctx, admin, ns)

	own := createStatefulSetPod(t, ctx, admin, ns, "redis", "redis-0")
	other := createStatefulSetPod(t, ctx, admin, ns, "other", "other-0")
	// A pod with a name of the agent's StatefulSet but no owner.
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "redis-9", Labels: map[string]string{"app": "redis"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: "redis:7.0"}}}}
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, bare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "redis-ha-agent", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for the agent's ServiceAccount %s/redis-ha-agent: %v", ns, err)
	}
	ac := rest.AnonymousClientConfig(rc)
	ac.BearerToken = tr.Status.Token
	agentKube, err := kubeapi.New(ac)
	if err != nil {
		t.Fatal(err)
	}
	pods := agentKube.CoreV1().Pods(ns)

	// RBAC and the policy take effect once the API server's informers have
	// them: a dry-run image patch is first refused by RBAC (or allowed),
	// then refused by the policy. (No controller-manager type-checks the
	// policy here: each validation's case below evaluates its expression
	// and its message, and a broken one fails its case.)
	imagePatch := []byte(`{"spec":{"containers":[{"name":"redis","image":"redis:6.0"}]}}`)
	if err := proctest.Until(ctx, 30*time.Second, func() error {
		_, err := pods.Patch(ctx, own, types.StrategicMergePatchType, imagePatch, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), podGuardPolicy) {
			return fmt.Errorf("dry-run image patch of %s by the agent: err = %v, want a denial by %s", own, err, podGuardPolicy)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	const user = "system:serviceaccount:default:redis-ha-agent"
	cases := map[string]struct {
		reason string
		do     func() error
		// want is "" for an allowed change, else a part of the denial.
		want string
		// label is the role label own carries after an allowed change
		// ("" for none).
		label string
	}{
		"set": {
			reason: "the elected master labels itself",
			do:     func() error { return kubeapi.SetPodLabel(ctx, agentKube, ns, own, podGuardLabel, "master") },
			label:  "master",
		},
		"relabel": {
			reason: "a new master relabels the old one",
			do:     func() error { return kubeapi.SetPodLabel(ctx, agentKube, ns, own, podGuardLabel, "replica") },
			label:  "replica",
		},
		"remove": {
			reason: "the agent removes the label",
			do:     func() error { return kubeapi.SetPodLabel(ctx, agentKube, ns, own, podGuardLabel, "") },
		},
		"image": {
			reason: "the Role's patch would let a stolen token run any image in the pod",
			do: func() error {
				_, err := pods.Patch(ctx, own, types.StrategicMergePatchType, imagePatch, metav1.PatchOptions{})
				return err
			},
			want: user + " may change only the label redis-ha-agent/role of pod redis-0, not its spec",
		},
		"other label": {
			reason: "another label moves the pod into or out of some Service",
			do: func() error {
				_, err := pods.Patch(ctx, own, types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"evil"}}}`), metav1.PatchOptions{})
				return err
			},
			want: "not the labels app",
		},
		"role label value": {
			reason: "only master and replica mean something to the Services",
			do:     func() error { return kubeapi.SetPodLabel(ctx, agentKube, ns, own, podGuardLabel, "leader") },
			want:   `only to master or replica (or remove it), not to "leader"`,
		},
		"annotation": {
			reason: "annotations steer other controllers",
			do: func() error {
				_, err := pods.Patch(ctx, own, types.MergePatchType, []byte(`{"metadata":{"annotations":{"x.example/y":"z"}}}`), metav1.PatchOptions{})
				return err
			},
			want: "not the annotations x.example/y",
		},
		"finalizer": {
			reason: "a finalizer would keep the pod from ever being deleted",
			do: func() error {
				_, err := pods.Patch(ctx, own, types.MergePatchType, []byte(`{"metadata":{"finalizers":["x.example/hold"]}}`), metav1.PatchOptions{})
				return err
			},
			want: "not its finalizers",
		},
		"owner": {
			reason: "removing the owner would orphan the pod from its StatefulSet",
			do: func() error {
				_, err := pods.Patch(ctx, own, types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/ownerReferences"}]`), metav1.PatchOptions{})
				return err
			},
			want: "not its ownerReferences",
		},
		"other StatefulSet": {
			reason: "the Role's patch covers every pod of the namespace",
			do:     func() error { return kubeapi.SetPodLabel(ctx, agentKube, ns, other, podGuardLabel, "master") },
			want:   user + " may patch only pods of StatefulSet redis (its ServiceAccount's name without -ha-agent); pod other-0 is not owned by it",
		},
		"name alone": {
			reason: "a pod named like the StatefulSet's but not owned by it",
			do:     func() error { return kubeapi.SetPodLabel(ctx, agentKube, ns, bare.Name, podGuardLabel, "master") },
			want:   "pod redis-9 is not owned by it",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before, err := admin.CoreV1().Pods(ns).Get(ctx, own, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.do()
			after, err2 := admin.CoreV1().Pods(ns).Get(ctx, own, metav1.GetOptions{})
			if err2 != nil {
				t.Fatal(err2)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%s: refused: %v", tc.reason, err)
				}
				if got, ok := after.Labels[podGuardLabel]; got != tc.label || ok != (tc.label != "") {
					t.Errorf("%s: pod %s label %s = %q (present %v), want %q", tc.reason, own, podGuardLabel, got, ok, tc.label)
				}
				return
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), podGuardPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: err = %v; want 403 from %s saying %q", tc.reason, err, podGuardPolicy, tc.want)
			}
			t.Logf("%s: refused: %v", tc.reason, err)
			if after.ResourceVersion != before.ResourceVersion {
				t.Errorf("%s: refused, yet pod %s changed (resourceVersion %s -> %s)", tc.reason, own, before.ResourceVersion, after.ResourceVersion)
			}
		})
	}

	// The policy binds the agents' ServiceAccounts only: an admin still
	// changes what it likes.
	if _, err := admin.CoreV1().Pods(ns).Patch(ctx, other, types.StrategicMergePatchType, imagePatch, metav1.PatchOptions{}); err != nil {
		t.Errorf("admin image patch of %s: %v; the policy must not match other users", other, err)
	}
}

// applyPodGuardBuild creates, from `kubectl kustomize` of the overlay,
// the agent's ServiceAccount, Role and RoleBinding in ns and the pod
// guard's policy and binding. It fails if the overlay lacks any of them.
func applyPodGuardBuild(t *testing.T, ctx context.Context, admin kubernetes.Interface, ns string) {
	t.Helper()
	bin, err := proctest.K8sBinDir()
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), "kustomize", podGuardOverlay)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v: %s", podGuardOverlay, err, stderr.String())
	}
	seen := map[string]int{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(&out))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode an object of kubectl kustomize %s: %v", podGuardOverlay, err)
		}
		seen[gvk.Kind]++
		if err := createBuilt(ctx, admin, ns, obj); err != nil {
			t.Fatalf("create %s from %s: %v", gvk.Kind, podGuardOverlay, err)
		}
	}
	for _, k := range []string{"ServiceAccount", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		if seen[k] != 1 {
			t.Fatalf("kubectl kustomize %s built %d %s, want 1 (built: %v)", podGuardOverlay, seen[k], k, seen)
		}
	}
}

// createBuilt creates the kinds the test needs and skips the rest (the
// StatefulSet would need a controller-manager to do anything).
func createBuilt(ctx context.Context, admin kubernetes.Interface, ns string, obj runtime.Object) error {
	var err error
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		_, err = admin.CoreV1().ServiceAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.Role:
		_, err = admin.RbacV1().Roles(ns).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.RoleBinding:
		_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, o, metav1.CreateOptions{})
	case *admissionv1.ValidatingAdmissionPolicy:
		_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, o, metav1.CreateOptions{})
	case *admissionv1.ValidatingAdmissionPolicyBinding:
		_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, o, metav1.CreateOptions{})
	}
	return err
}

// createStatefulSetPod creates StatefulSet sts (no controller-manager runs,
// so it stays without pods) and a pod it owns, as its controller would.
func createStatefulSetPod(t *testing.T, ctx context.Context, admin kubernetes.Interface, ns, sts, pod string) string {
	t.Helper()
	labels := map[string]string{"app": sts}
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "redis", Image: "redis:7.0"}}}
	s, err := admin.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: sts},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, ServiceName: sts,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	controller := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: s.Name, UID: s.UID, Controller: &controller, BlockOwnerDeletion: &controller}}},
		Spec: spec}
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pod
}
