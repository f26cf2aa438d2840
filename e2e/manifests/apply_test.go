package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// fieldManager is the server-side apply manager of everything these tests
// apply.
const fieldManager = "e2e-manifests"

// applier applies built objects with server-side apply, the way
// `kubectl apply --server-side` does, into one namespace.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply server-side applies every object into ns; dryRun asks the API
// server to run admission, validation and defaulting without persisting.
func (a *applier) apply(ctx context.Context, ns string, objs []*unstructured.Unstructured, dryRun bool) error {
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: no API resource for it on this API server: %w", gvk, o.GetName(), err)
		}
		ri := a.dyn.Resource(m.Resource)
		var rc dynamic.ResourceInterface = ri
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			o = o.DeepCopy()
			o.SetNamespace(ns)
			rc = ri.Namespace(ns)
		}
		if _, err := rc.Apply(ctx, o.GetName(), o, opts); err != nil {
			return fmt.Errorf("server-side apply (dry run %v) of %s %s into namespace %s: %w", dryRun, gvk.Kind, o.GetName(), ns, err)
		}
	}
	return nil
}

// newNamespace creates a namespace named prefix-<random> and deletes it
// when the test ends. It waits for the namespace's default ServiceAccount
// and kube-root-ca.crt, which pods need, as on any cluster.
func newNamespace(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	cs := cluster.Clientset
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s-*: %v", prefix, err)
	}
	name := ns.Name
	t.Cleanup(func() { deleteNamespace(t, name) })
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err1 := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		_, err2 := cs.CoreV1().ConfigMaps(name).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err1 == nil && err2 == nil, nil
	}); err != nil {
		t.Fatalf("namespace %s: default ServiceAccount and kube-root-ca.crt not created within 30s: %v", name, err)
	}
	return name
}

// deleteNamespace deletes ns and waits (bounded) until it is gone, so the
// next case starts on an idle machine and pods of one case never overlap
// another's. Pods are deleted with no grace: their preStop hooks would
// only slow the cleanup.
func deleteNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := cluster.Clientset
	zero := int64(0)
	// Orphan: the StatefulSet controller must not recreate the pods, and
	// the garbage collector must not delete them with their 60s grace.
	orphan := metav1.DeletePropagationOrphan
	_ = cs.AppsV1().StatefulSets(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &orphan}, metav1.ListOptions{})
	_ = cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", ns, err)
		return
	}
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Errorf("namespace %s still exists 2 minutes after deletion: %v", ns, err)
	}
}

// toJSON is for messages.
func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
