// Package demo is `make demo`: a scripted, narrated run that brings up the
// local cluster, deploys both HA modes from manifests/ exactly as a user
// would, injects the faults people fear (deleting the master, SIGKILLing
// it, killing a Redis Cluster master) and prints what happened with
// timings. Every step is also a check: the run fails when a key goes
// missing, the master label does not move, or a mode does not recover.
//
// The same steps serve the e2e tests: Env abstracts over an in-process
// localkube.Cluster (tests) and the background daemon the demo starts (so
// `--keep` can leave the cluster running after the demo exits).
package demo
