// Package metrics owns the agent's Prometheus series: one registry per
// agent (no global state), the series both modes set, and the /metrics
// handler. What a series means is said in its help text.
package metrics
