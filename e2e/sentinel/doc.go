// Package sentinel runs issue #4's end-to-end tests of sentinel mode on the
// local cluster (e2e/localkube): the unchanged manifests/overlays/sentinel-3
// deployed into a fresh namespace per test, then a cold bootstrap, a graceful
// delete of the master under a writer, a SIGKILL of the master, a full
// restart with the newest data on one pod, a partition, an API server outage
// and repeated restarts, each judged on roles, the Lease, the role labels and
// every acknowledged write (e2e/workload); the graceful delete also on an
// install of charts/redis-ha-agent (chart_test.go). Writable means a probe write to
// the pod's own redis-server was accepted; the agent's view is not asked.
//
// The package is test-only apart from this file: everything runs under
// TestMain with localkube.RunTests.
package sentinel
