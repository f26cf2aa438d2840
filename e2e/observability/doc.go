// Package observability proves on the local cluster what an operator of
// redis-ha-agent sees: after a failover the new master's /metrics shows the
// transition, the Events API holds each decision with its reason, and
// `redis-ha-agent status -o json` matches what Redis itself reports on every
// pod — in sentinel mode and in cluster mode. The tests are the package's
// only content; helpers shared with `make demo` live in e2e/demo.
package observability
