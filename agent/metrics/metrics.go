package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the agent's Prometheus series. They live in their own registry
// (no global state) and are served on /metrics next to Go and process metrics.
type Metrics struct {
	reg *prometheus.Registry

	Role                 *prometheus.GaugeVec // role="master|replica|fenced|unknown", 1 for the current one
	MasterOfRecord       prometheus.Gauge
	LeaseHolder          prometheus.Gauge
	LeaseTransitions     prometheus.Counter
	Failovers            prometheus.Counter
	LastFailoverDuration prometheus.Gauge
	Switchovers          *prometheus.CounterVec // result="completed|failed|skipped"
	SwitchoverDuration   prometheus.Histogram
	ReplicationLag       prometheus.Gauge
	Fenced               prometheus.Gauge
	ReconcilePasses      prometheus.Counter
	ReconcileErrors      prometheus.Counter
	ClusterState         prometheus.Gauge
	NodesMet             prometheus.Counter
	TLSCertNotAfter      prometheus.Gauge
	TLSFilesRefused      prometheus.Counter
	// EngineInfo is 1 for the engine and version the local redis-server
	// last reported; no series before it answered (SetEngine).
	EngineInfo *prometheus.GaugeVec
}

// Roles the Role gauge knows; SetRole zeroes the others.
var metricRoles = []string{"master", "replica", "fenced", "unknown"}

// New registers every series. version is the agent's build version.
func New(version, mode string) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.Role = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "redis_ha_agent_role", Help: "1 for this pod's current role (master, replica, fenced, unknown), 0 for the others."}, []string{"role"})
	m.MasterOfRecord = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_master_of_record", Help: "1 while this pod is the master of record (Lease holder that Sentinel agrees with)."})
	m.LeaseHolder = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_lease_holder", Help: "1 while this pod holds the StatefulSet's Lease."})
	m.LeaseTransitions = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_ha_agent_lease_transitions_total", Help: "Lease holder changes this agent observed."})
	m.Failovers = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_ha_agent_failovers_total", Help: "Unplanned failovers (master changes not started by this agent) observed."})
	m.LastFailoverDuration = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_last_failover_duration_seconds", Help: "Set on the pod a Sentinel failover (not started by this agent) made master: seconds from the loss of the old master, dated by this pod's agent while it was a replica (master_link_down_since_seconds read by the first pass that saw its master link down, else the last pass that saw it up), to this pod holding the Lease and carrying the master label."})
	m.Switchovers = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redis_ha_agent_switchovers_total", Help: "Planned switchovers (preStop) by result."}, []string{"result"})
	m.SwitchoverDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "redis_ha_agent_switchover_duration_seconds", Help: "Duration of planned switchovers from pause to new master.", Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30}})
	m.ReplicationLag = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_replication_lag_bytes", Help: "On a replica, the master's master_repl_offset (read right after the replica's own) minus the replica's master_repl_offset, in bytes, as of the last reconcile pass; 0 on a master; -1 while unknown (master link down or master not answering)."})
	m.Fenced = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_fenced", Help: "1 while this pod's Redis refuses writes because it cannot prove it is the master."})
	m.ReconcilePasses = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_ha_agent_reconcile_passes_total", Help: "Reconcile passes run."})
	m.ReconcileErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_ha_agent_reconcile_errors_total", Help: "Reconcile passes that ended in an error."})
	m.ClusterState = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_cluster_state_ok", Help: "1 while this node reports cluster_state:ok (cluster mode)."})
	m.NodesMet = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_ha_agent_cluster_nodes_met_total", Help: "CLUSTER MEETs sent to peers the cluster did not see connected (cluster mode)."})
	m.TLSCertNotAfter = prometheus.NewGauge(prometheus.GaugeOpts{Name: "redis_ha_agent_tls_cert_not_after_timestamp_seconds", Help: "Expiry (Unix time) of the certificate in use from --tls-cert-file; 0 with TLS off. Alert well before it: a renewal that never came, or one refused (redis_ha_agent_tls_files_refused_total)."})
	m.TLSFilesRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_ha_agent_tls_files_refused_total", Help: "Re-reads of changed TLS files that failed the checks (the previous files stay in use; the log says why)."})
	m.EngineInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "redis_ha_agent_engine_info", Help: "Always 1; labels carry the engine the local redis-server reports (redis or valkey, from INFO server_name) and that engine's own version (valkey_version or redis_version, never Valkey's fixed redis_version). No series until it has answered."}, []string{"engine", "version"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "redis_ha_agent_build_info", Help: "Always 1; labels carry the agent's version, Go version and mode."}, []string{"version", "goversion", "mode"})
	build.WithLabelValues(version, runtime.Version(), mode).Set(1)
	for _, c := range []prometheus.Collector{m.Role, m.MasterOfRecord, m.LeaseHolder, m.LeaseTransitions, m.Failovers, m.LastFailoverDuration, m.Switchovers, m.SwitchoverDuration, m.ReplicationLag, m.Fenced, m.ReconcilePasses, m.ReconcileErrors, m.ClusterState, m.NodesMet, m.TLSCertNotAfter, m.TLSFilesRefused, m.EngineInfo, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, r := range []string{"completed", "failed", "skipped"} {
		m.Switchovers.WithLabelValues(r)
	}
	m.SetRole("unknown")
	return m
}

// SetRole sets the role gauge to 1 for role and 0 for every other role.
func (m *Metrics) SetRole(role string) {
	for _, r := range metricRoles {
		v := 0.0
		if r == role {
			v = 1
		}
		m.Role.WithLabelValues(r).Set(v)
	}
}

// SetEngine leaves exactly one engine series, for engine and version: after
// an image change the old engine's series must not linger beside the new one.
func (m *Metrics) SetEngine(engine, version string) {
	m.EngineInfo.Reset()
	m.EngineInfo.WithLabelValues(engine, version).Set(1)
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
