// Command promcheck does the parts of e2e/monitoring's checks that need
// modules the e2e module cannot import: prometheus-operator's API types and
// Prometheus' PromQL parser both require k8s.io v0.37, and e2e stays on
// the v0.34.4 of the cluster it builds. It is its own module, built by the
// tests (go build in this directory) and run as a program:
//
//	promcheck build DIR   kustomize DIR, decode every monitoring.coreos.com
//	                      object strictly into prometheus-operator's types
//	                      and every ConfigMap into corev1's; print the build
//	                      as YAML
//	promcheck series      the series a fresh agent exports (its own
//	                      registry, agent/metrics), as a JSON list
//	promcheck names       read a JSON list of PromQL expressions on stdin,
//	                      print for each the metric names it selects
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "promcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	switch {
	case len(args) == 2 && args[0] == "build":
		return build(args[1], stdout)
	case len(args) == 1 && args[0] == "series":
		return series(stdout)
	case len(args) == 1 && args[0] == "names":
		return names(stdin, stdout)
	}
	return fmt.Errorf("usage: promcheck build DIR | series | names (got %q)", args)
}
