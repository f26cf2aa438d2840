// Package agent owns the agent's two entry points and the one dispatch by
// --mode: Init (the initContainer) and Run (the sidecar) build what both
// modes share (password and TLS files, API clients, Events, metrics, the
// HTTP server) and hand over to package sentinel or package cluster. A
// failure is also published as a Warning Event on the pod.
//
// Below it: sentinel and cluster are the two modes and never import each
// other; sidecar, config, secrets, redisx, atomicfile, kubeapi, httpserver
// and metrics are what both use; proctest is the test harness.
package agent
