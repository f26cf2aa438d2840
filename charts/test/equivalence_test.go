package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// compare renders the chart and builds the kustomization, normalises both
// (normalizeChart, normalizeKustomize, normalizeOrder say what is removed
// or reordered, and check what they remove) and requires the same objects
// with the same content.
func compare(t *testing.T, release string, values map[string]any, kustomizeDir string) {
	t.Helper()
	chartObjs := render(t, release, values)
	kustObjs := kustomize(t, kustomizeDir)
	normalizeChart(t, chartObjs)
	normalizeKustomize(t, kustObjs)
	normalizeOrder(t, chartObjs)
	normalizeOrder(t, kustObjs)
	got, want := byID(t, "chart", chartObjs), byID(t, "kustomize "+kustomizeDir, kustObjs)
	if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
		t.Errorf("objects (-kustomize +chart):\n%s", diff)
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			continue
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("%s differs (-kustomize +chart):\n%s", id, diff)
		}
	}
	if !t.Failed() {
		t.Logf("%d objects equal: %s", len(want), strings.Join(ids(want), ", "))
	}
}

// The repository's overlays against the chart's values that stand for them.
func TestChartMatchesOverlays(t *testing.T) {
	tests := map[string]struct {
		overlay string
		release string
		values  map[string]any
	}{
		"sentinel default": {
			overlay: "overlays/sentinel-3",
			release: "redis",
		},
		"cluster default": {
			overlay: "overlays/cluster-6",
			release: "redis-cluster",
			values:  map[string]any{"mode": "cluster"},
		},
		"sentinel tls": {
			overlay: "overlays/sentinel-3-tls",
			release: "redis",
			values:  map[string]any{"tls": map[string]any{"enabled": true}},
		},
		"cluster tls": {
			overlay: "overlays/cluster-6-tls",
			release: "redis-cluster",
			values:  map[string]any{"mode": "cluster", "tls": map[string]any{"enabled": true}},
		},
		"sentinel external access": {
			overlay: "overlays/sentinel-3-external",
			release: "redis",
			values:  map[string]any{"externalAccess": map[string]any{"enabled": true}},
		},
		"sentinel valkey": {
			overlay: "overlays/sentinel-3-valkey",
			release: "redis",
			values:  map[string]any{"engine": "valkey"},
		},
		"cluster valkey": {
			overlay: "overlays/cluster-6-valkey",
			release: "redis-cluster",
			values:  map[string]any{"mode": "cluster", "engine": "valkey"},
		},
		"sentinel acl": {
			overlay: "overlays/sentinel-3-acl",
			release: "redis",
			values:  map[string]any{"auth": map[string]any{"existingSecret": "redis-auth", "acl": map[string]any{"enabled": true}}},
		},
		"cluster acl": {
			overlay: "overlays/cluster-6-acl",
			release: "redis-cluster",
			values:  map[string]any{"mode": "cluster", "auth": map[string]any{"existingSecret": "redis-auth", "acl": map[string]any{"enabled": true}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			compare(t, tc.release, tc.values, filepath.Join(manifestsDir, tc.overlay))
		})
	}
}

// Non-default values against a kustomization written here over the
// repository's base, with the same settings made the kustomize way
// (replicas, images, strategic merge patches, the components).
func TestChartMatchesCustomKustomization(t *testing.T) {
	for name, tc := range customCases {
		t.Run(name, func(t *testing.T) {
			values := tc.parsedValues(t)
			dir := t.TempDir()
			k := strings.NewReplacer(
				"BASE", rel(t, dir, filepath.Join(manifestsDir, "base")),
				"COMPONENTS", rel(t, dir, filepath.Join(manifestsDir, "components")),
			).Replace(tc.kustomization)
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
				t.Fatal(err)
			}
			compare(t, tc.release, values, dir)
		})
	}
}

type customCase struct {
	release       string
	values        string
	kustomization string // BASE and COMPONENTS stand for the repository's manifests/base and manifests/components
}

func (c customCase) parsedValues(t *testing.T) map[string]any {
	t.Helper()
	var values map[string]any
	if err := yaml.Unmarshal([]byte(c.values), &values); err != nil {
		t.Fatalf("values: %v", err)
	}
	return values
}

// customCases are non-default values and the kustomization that makes the
// same settings; TestLint lints the chart with these values too.
var customCases = map[string]customCase{
	"sentinel: replicas, password, resources, quorum, storage, images, spreading": {
		release: "redis",
		values: `
replicas: 5
auth:
  existingSecret: my-auth
  existingSecretPasswordKey: redis-password
resources:
  requests: {cpu: 500m, memory: 2Gi}
  limits: {cpu: "2", memory: 2Gi}
agent:
  resources:
    requests: {cpu: 50m, memory: 32Mi}
    limits: {cpu: 500m, memory: 64Mi}
  extraEnv:
    - {name: REDIS_HA_MIN_REPLICAS_TO_WRITE, value: "1"}
sentinel:
  quorum: 3
  downAfter: 10s
  resources:
    requests: {cpu: 50m, memory: 32Mi}
persistence:
  size: 8Gi
  storageClass: fast-ssd
image:
  agent: {tag: v0.2.0, pullPolicy: Always}
  redis: {repository: registry.example.com/redis, tag: 7.2.5}
podAnnotations:
  prometheus.io/scrape: "true"
  prometheus.io/port: "8080"
podAntiAffinity: hard
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/sentinel]
components: [COMPONENTS/networkpolicy]
replicas:
  - {name: redis, count: 5}
images:
  - {name: ghcr.io/redis-ha-agent/redis-ha-agent, newTag: v0.2.0}
  - {name: redis, newName: registry.example.com/redis, newTag: 7.2.5}
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: redis
      spec:
        template:
          metadata:
            annotations:
              prometheus.io/scrape: "true"
              prometheus.io/port: "8080"
          spec:
            affinity:
              podAntiAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                  - topologyKey: kubernetes.io/hostname
                    labelSelector:
                      matchLabels:
                        app.kubernetes.io/name: redis
                        app.kubernetes.io/instance: redis
            topologySpreadConstraints:
              - maxSkew: 1
                topologyKey: topology.kubernetes.io/zone
                whenUnsatisfiable: ScheduleAnyway
                labelSelector:
                  matchLabels:
                    app.kubernetes.io/name: redis
                    app.kubernetes.io/instance: redis
            initContainers:
              - name: agent-init
                imagePullPolicy: Always
                env:
                  - {name: REDIS_HA_QUORUM, value: "3"}
                  - {name: REDIS_HA_DOWN_AFTER, value: 10s}
                  - {name: REDIS_HA_PASSWORD_FILE, value: /etc/redis-ha/auth/password}
                  - {name: REDIS_HA_MIN_REPLICAS_TO_WRITE, value: "1"}
                resources:
                  requests: {cpu: 50m, memory: 32Mi}
                  limits: {cpu: 500m, memory: 64Mi}
                volumeMounts:
                  - {name: auth, mountPath: /etc/redis-ha/auth, readOnly: true}
              - name: agent
                imagePullPolicy: Always
                env:
                  - {name: REDIS_HA_QUORUM, value: "3"}
                  - {name: REDIS_HA_DOWN_AFTER, value: 10s}
                  - {name: REDIS_HA_PASSWORD_FILE, value: /etc/redis-ha/auth/password}
                  - {name: REDIS_HA_MIN_REPLICAS_TO_WRITE, value: "1"}
                resources:
                  requests: {cpu: 50m, memory: 32Mi}
                  limits: {cpu: 500m, memory: 64Mi}
                volumeMounts:
                  - {name: auth, mountPath: /etc/redis-ha/auth, readOnly: true}
              - name: sentinel
                resources:
                  requests: {cpu: 50m, memory: 32Mi}
            containers:
              - name: redis
                resources:
                  requests: {cpu: 500m, memory: 2Gi}
                  limits: {cpu: "2", memory: 2Gi}
            volumes:
              - name: auth
                secret:
                  secretName: my-auth
                  defaultMode: 0440
                  items:
                    - {key: redis-password, path: password}
        volumeClaimTemplates:
          - metadata:
              name: data
            spec:
              accessModes: ["ReadWriteOnce"]
              storageClassName: fast-ssd
              resources:
                requests:
                  storage: 8Gi
`,
	},
	"sentinel: monitoring, labels for the Prometheus' selectors": {
		release: "redis",
		values: `
metrics:
  podMonitor:
    enabled: true
    additionalLabels: {release: kube-prometheus-stack}
  prometheusRule:
    enabled: true
    additionalLabels: {release: kube-prometheus-stack, team: storage}
  dashboard:
    enabled: true
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/sentinel]
components: [COMPONENTS/networkpolicy, COMPONENTS/monitoring]
patches:
  - patch: |-
      apiVersion: monitoring.coreos.com/v1
      kind: PodMonitor
      metadata:
        name: redis-agent
        labels: {release: kube-prometheus-stack}
  - patch: |-
      apiVersion: monitoring.coreos.com/v1
      kind: PrometheusRule
      metadata:
        name: redis-ha-agent
        labels: {release: kube-prometheus-stack, team: storage}
`,
	},
	// redis_exporter beside the server, scraped by the PodMonitor's second
	// endpoint, with the password the agent writes for it.
	"sentinel: redis_exporter, password, PodMonitor": {
		release: "redis",
		values: `
auth:
  existingSecret: redis-auth
metrics:
  exporter: {enabled: true}
  podMonitor: {enabled: true}
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/sentinel]
components: [COMPONENTS/networkpolicy, COMPONENTS/redis-exporter, COMPONENTS/monitoring]
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: redis
      spec:
        template:
          spec:
            initContainers:
              - name: agent-init
                env:
                  - {name: REDIS_HA_PASSWORD_FILE, value: /etc/redis-ha/auth/password}
                volumeMounts:
                  - {name: auth, mountPath: /etc/redis-ha/auth, readOnly: true}
              - name: agent
                env:
                  - {name: REDIS_HA_PASSWORD_FILE, value: /etc/redis-ha/auth/password}
                volumeMounts:
                  - {name: auth, mountPath: /etc/redis-ha/auth, readOnly: true}
            volumes:
              - name: auth
                secret:
                  secretName: redis-auth
                  defaultMode: 0440
                  items:
                    - {key: password, path: password}
  - patch: |-
      apiVersion: monitoring.coreos.com/v1
      kind: PrometheusRule
      metadata: {name: redis-ha-agent}
      $patch: delete
  - patch: |-
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: redis-ha-agent-dashboard}
      $patch: delete
`,
	},
	// redis_exporter over TLS on Valkey, from another registry with other
	// resources: components/redis-exporter-tls after tls and the exporter.
	"cluster: redis_exporter over TLS, valkey, exporter image and resources": {
		release: "redis-cluster",
		values: `
mode: cluster
engine: valkey
tls:
  enabled: true
metrics:
  exporter:
    enabled: true
    image: {repository: registry.example.com/redis_exporter, tag: v1.97.0-mirror, pullPolicy: Always}
    resources:
      requests: {cpu: 20m, memory: 48Mi}
      limits: {cpu: 300m, memory: 96Mi}
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/cluster]
components: [COMPONENTS/networkpolicy, COMPONENTS/tls, COMPONENTS/valkey, COMPONENTS/redis-exporter, COMPONENTS/redis-exporter-tls]
images:
  - {name: oliver006/redis_exporter, newName: registry.example.com/redis_exporter, newTag: v1.97.0-mirror}
patches:
  - target: {kind: StatefulSet}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/1/imagePullPolicy
        value: Always
      - op: replace
        path: /spec/template/spec/containers/1/resources
        value:
          requests: {cpu: 20m, memory: 48Mi}
          limits: {cpu: 300m, memory: 96Mi}
`,
	},
	// The PodMonitor alone: the rules and the dashboard left out with the
	// patches README "Monitoring" gives for a further StatefulSet.
	"sentinel: ACL users with application users from the Secret": {
		release: "redis",
		values: `
auth:
  existingSecret: redis-auth
  acl:
    enabled: true
    agentUser: agent
    usersKey: users.acl
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/sentinel]
components: [COMPONENTS/networkpolicy, COMPONENTS/acl]
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: StatefulSet
      metadata: {name: redis}
      spec:
        template:
          spec:
            initContainers:
              - name: agent-init
                env:
                  - {name: REDIS_HA_AGENT_USER, value: agent}
                  - {name: REDIS_HA_ACL_FILE, value: /etc/redis-ha/auth/users.acl}
              - name: agent
                env:
                  - {name: REDIS_HA_AGENT_USER, value: agent}
                  - {name: REDIS_HA_ACL_FILE, value: /etc/redis-ha/auth/users.acl}
            volumes:
              - name: auth
                secret:
                  secretName: redis-auth
                  items:
                    - {key: password, path: password}
                    - {key: users.acl, path: users.acl}
`,
	},
	"cluster: PodMonitor only": {
		release: "redis-cluster",
		values: `
mode: cluster
metrics:
  podMonitor: {enabled: true}
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/cluster]
components: [COMPONENTS/networkpolicy, COMPONENTS/monitoring]
patches:
  - patch: |-
      apiVersion: monitoring.coreos.com/v1
      kind: PrometheusRule
      metadata: {name: redis-ha-agent}
      $patch: delete
  - patch: |-
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: redis-ha-agent-dashboard}
      $patch: delete
`,
	},
	"cluster: replicas, replicas per master, valkey, tls secret, no storage class, soft anti-affinity, no NetworkPolicy": {
		release: "redis-cluster",
		values: `
mode: cluster
replicas: 9
cluster:
  replicasPerMaster: 2
engine: valkey
tls:
  enabled: true
  existingSecret: my-tls
persistence:
  storageClass: "-"
podAntiAffinity: soft
networkPolicy:
  enabled: false
`,
		kustomization: `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [BASE/cluster]
components: [COMPONENTS/tls, COMPONENTS/valkey]
replicas:
  - {name: redis-cluster, count: 9}
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: redis-cluster
      spec:
        template:
          spec:
            affinity:
              podAntiAffinity:
                preferredDuringSchedulingIgnoredDuringExecution:
                  - weight: 100
                    podAffinityTerm:
                      topologyKey: kubernetes.io/hostname
                      labelSelector:
                        matchLabels:
                          app.kubernetes.io/name: redis-cluster
                          app.kubernetes.io/instance: redis-cluster
            initContainers:
              - name: agent-init
                env:
                  - {name: REDIS_HA_CLUSTER_REPLICAS, value: "2"}
              - name: agent
                env:
                  - {name: REDIS_HA_CLUSTER_REPLICAS, value: "2"}
            volumes:
              - name: tls
                secret:
                  secretName: my-tls
        volumeClaimTemplates:
          - metadata:
              name: data
            spec:
              accessModes: ["ReadWriteOnce"]
              storageClassName: ""
              resources:
                requests:
                  storage: 1Gi
`,
	},
}
