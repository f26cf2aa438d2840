// Package sentinel owns sentinel mode (one master, replicas, a Sentinel in
// every pod): init decides the role and writes the redis.conf include and
// sentinel.conf; the run loop observes Redis, the Sentinels, the peers and
// the Lease, decides with pure functions (decide.go) and acts (exec.go):
// the cold-start election, following Sentinel, the role labels, the write
// fence, Sentinel membership on scale, and the preStop switchover. It also
// holds the Lease store and the go-redis adapters of the Redis and Sentinel
// calls it declares.
package sentinel
