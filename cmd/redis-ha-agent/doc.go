// Command redis-ha-agent makes Redis highly available on Kubernetes without an
// operator. It runs as an initContainer (init) and as a native sidecar (run)
// in every pod of a plain StatefulSet.
//
// This package only wires: it parses the command line (kong; every flag has
// an environment variable), builds the logger and the signal context, and
// hands over to package agent (init, run), to cluster.NodesConfRewrite
// (nodesconf rewrite) and to package sentinelconf (sentinelconf render).
// status reads the pods and each agent's /status for a table.
package main
