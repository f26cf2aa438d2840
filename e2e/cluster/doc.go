// Package cluster runs issue #5's end-to-end tests of cluster mode on the
// local cluster (e2e/localkube): the unchanged manifests/overlays/cluster-6
// applied into a fresh namespace per test, then cluster creation with no
// manual step, a master deleted under a writer, every pod deleted at once
// (every IP changes), a scale-out and scale-in, a rolling restart under a
// writer, the coordinator killed during creation and a corrupt nodes.conf,
// each judged on every node's own view (CLUSTER NODES, replication links)
// and on every acknowledged write read back.
//
// The package is test-only apart from this file: everything runs under
// TestMain with localkube.RunTests.
package cluster
