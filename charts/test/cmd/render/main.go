// Command render prints charts/redis-ha-agent rendered as `helm template`
// would, through charttest.Render, so that e2e tests deploy the chart
// without a helm binary:
//
//	go run ./cmd/render --release redis --namespace ns [--values values.yaml]
package main

import (
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	charttest "github.com/redis-ha-agent/redis-ha-agent/charts/test"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	chart := fs.String("chart", "../redis-ha-agent", "chart directory")
	release := fs.String("release", "", "release name (the StatefulSet's name)")
	namespace := fs.String("namespace", "", "release namespace")
	valuesFile := fs.String("values", "", "values YAML file (none: the chart's defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *release == "" || *namespace == "" {
		return fmt.Errorf("--release and --namespace are required")
	}
	values := map[string]any{}
	if *valuesFile != "" {
		src, err := os.ReadFile(*valuesFile)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(src, &values); err != nil {
			return fmt.Errorf("values file %s: %w", *valuesFile, err)
		}
	}
	manifest, err := charttest.Render(*chart, *release, *namespace, values)
	if err != nil {
		return err
	}
	_, err = fmt.Print(manifest)
	return err
}
