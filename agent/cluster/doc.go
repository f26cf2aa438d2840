// Package cluster owns cluster mode (Redis Cluster): init writes the
// redis.conf include and rewrites nodes.conf with its own and every peer's
// current address; the run loop meets peers at their current addresses,
// and the coordinator (the Lease holder) creates the cluster, places
// replicas on other Kubernetes nodes, handles scale-out and scale-in and
// moves slots; readiness checks every node's view, and preStop fails a
// master over to its replica.
package cluster
