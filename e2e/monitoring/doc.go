// Package monitoring checks manifests/components/monitoring, the
// PodMonitor, PrometheusRule and Grafana dashboard a Prometheus user adds
// to a build of either base, without a cluster (no TestMain; the local
// cluster has no prometheus-operator CRDs to apply them to):
//   - the component builds on both bases, and its objects decode strictly
//     into prometheus-operator's API types (promcheck build);
//   - the PodMonitor selects exactly the StatefulSet's pods and scrapes the
//     agent's port, with the labels the alerts group by;
//   - the rules pass `promtool check rules`, and `promtool test rules` runs
//     testdata/rules_test.yaml, which has a firing and a quiet case for
//     every alert (checked);
//   - every series a rule or a dashboard panel names is one a real agent
//     exports (its own registry, promcheck series) or `up`, and README.md's
//     metrics table lists exactly the agent's series;
//   - README.md's snippets that enable the component and leave out its
//     rules and dashboard build as it says;
//   - redis_exporter (the image e2e/images builds from its Go module, for
//     manifests/components/redis-exporter) run with the environment the
//     component gives it against real redis-server processes: redis_up 1
//     with the password file the agent writes, a password change picked
//     up by GET /-/reload (its liveness probe), TLS with the pod-name
//     check, and the dashboard's redis_* series against what it serves.
//     redis-server, redis-cli and valkey-server come from the host.
//
// promtool (github.com/prometheus/prometheus/cmd/promtool) is built by
// e2e/hack/build-promtool.sh into the e2e cache ($REDIS_HA_E2E_CACHE, else
// $XDG_CACHE_HOME or ~/.cache, then redis-ha-agent-e2e) on first use; make
// test runs the script in its first phase. promcheck/ is a module of its own: the
// operator's types and Prometheus' parser need k8s.io v0.37, and the e2e
// module stays on v0.34.4.
package monitoring
