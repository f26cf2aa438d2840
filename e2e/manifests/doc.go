// Package manifests proves issue #6 end to end on the local cluster
// (e2e/localkube): every kustomization under manifests/ builds and applies
// with a server-side dry run; the Role in manifests/components/rbac is exact
// (each rule, removed on its own, makes a named agent step fail with an error
// naming the permission); and seed 002's StatefulSet with the agent-init
// component survives deleting all its pods at once, measured beside the
// seed's own update-node.sh.
//
// The package holds only tests; this file exists so that it has a doc.
package manifests
