package main

import (
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// build runs kustomize on dir and checks the objects a Prometheus user
// applies: a misspelt or misplaced field fails here instead of being
// pruned by the API server (the CRDs keep unknown fields out silently).
// Other kinds (the StatefulSet, Services, RBAC) pass through: the
// manifests package decodes them.
func build(dir string, out io.Writer) error {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	for i, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return fmt.Errorf("%s: %s/%s as YAML: %w", dir, r.GetKind(), r.GetName(), err)
		}
		var obj any
		switch r.GetKind() {
		case "PodMonitor":
			obj = &monitoringv1.PodMonitor{}
		case "PrometheusRule":
			obj = &monitoringv1.PrometheusRule{}
		case "ServiceMonitor":
			obj = &monitoringv1.ServiceMonitor{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		}
		if obj != nil {
			if err := yaml.UnmarshalStrict(y, obj); err != nil {
				return fmt.Errorf("%s: %s/%s does not decode strictly into its API type: %w", dir, r.GetKind(), r.GetName(), err)
			}
			if g := r.GetApiVersion(); r.GetKind() != "ConfigMap" && g != monitoringv1.SchemeGroupVersion.String() {
				return fmt.Errorf("%s: %s/%s has apiVersion %q, want %q", dir, r.GetKind(), r.GetName(), g, monitoringv1.SchemeGroupVersion)
			}
		}
		if i > 0 {
			fmt.Fprintln(out, "---")
		}
		if _, err := out.Write(y); err != nil {
			return err
		}
	}
	return nil
}
