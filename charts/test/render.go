package charttest

import (
	"fmt"
	"log/slog"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

// KubeVersion stands for the cluster, as `helm template --kube-version`
// does: the e2e cluster's. Without it Helm assumes v1.20, below the
// chart's kubeVersion (native sidecars, admissionregistration/v1 policies).
const KubeVersion = "v1.34.4"

func parsedKubeVersion() *common.KubeVersion {
	v, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		panic(err) // a constant
	}
	return v
}

// Render renders the chart in dir like `helm template RELEASE DIR
// --namespace NAMESPACE --kube-version KubeVersion -f values`, with the
// Helm v4 SDK and no cluster, and returns the manifest (hooks are refused:
// the chart has none, and they would escape the comparison).
func Render(dir, release, namespace string, values map[string]any) (string, error) {
	return renderChart(dir, release, namespace, values, false)
}

// renderChart is Render, optionally without values.schema.json (helm's
// --skip-schema-validation), to test the templates' own checks.
func renderChart(dir, release, namespace string, values map[string]any, skipSchema bool) (string, error) {
	chrt, err := loader.Load(dir)
	if err != nil {
		return "", fmt.Errorf("load the chart %s: %w", dir, err)
	}
	install := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = release
	install.Namespace = namespace
	install.Replace = true // no release storage to check names against
	install.KubeVersion = parsedKubeVersion()
	install.SkipSchemaValidation = skipSchema
	if values == nil {
		values = map[string]any{}
	}
	r, err := install.Run(chrt, values)
	if err != nil {
		return "", fmt.Errorf("render the chart %s as release %s: %w", dir, release, err)
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return "", fmt.Errorf("install returned a %T, not a *release/v1.Release", r)
	}
	if len(rel.Hooks) > 0 {
		return "", fmt.Errorf("the chart %s has %d hooks, which Render does not output", dir, len(rel.Hooks))
	}
	return rel.Manifest, nil
}
