// Package agent decides and acts: it observes redis-server, redis-sentinel and
// the Kubernetes API, turns what it sees into decisions with pure functions,
// and carries them out (roles, the Lease, pod labels, Events, probes).
package agent
