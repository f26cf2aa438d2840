{{/*
The StatefulSet's name, which every other object's name derives from. The
Role pins the Lease and the StatefulSet by this name, and the pod guard
derives it from the ServiceAccount's name (<name>-ha-agent), so it is never
truncated silently.
*/}}
{{- define "redis-ha-agent.fullname" -}}
{{- $name := default .Release.Name .Values.fullnameOverride -}}
{{- if gt (len $name) 52 -}}
{{- fail (printf "the StatefulSet name %q (release name or fullnameOverride) has %d characters; at most 52 are allowed, because its pods' controller-revision-hash label adds 11: use a shorter release name or set fullnameOverride" $name (len $name)) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "redis-ha-agent.mode" -}}
{{- if not (has .Values.mode (list "sentinel" "cluster")) -}}
{{- fail (printf "mode %q is not sentinel or cluster" (toString .Values.mode)) -}}
{{- end -}}
{{- .Values.mode -}}
{{- end -}}

{{- define "redis-ha-agent.engine" -}}
{{- if not (has .Values.engine (list "redis" "valkey")) -}}
{{- fail (printf "engine %q is not redis or valkey" (toString .Values.engine)) -}}
{{- end -}}
{{- .Values.engine -}}
{{- end -}}

{{/* replicas: empty means 3 (sentinel) or 6 (cluster); 0 stays 0. */}}
{{- define "redis-ha-agent.replicas" -}}
{{- if kindIs "invalid" .Values.replicas -}}
{{- ternary 6 3 (eq (include "redis-ha-agent.mode" .) "cluster") -}}
{{- else -}}
{{- .Values.replicas | int -}}
{{- end -}}
{{- end -}}

{{/* The Pods' selector: what the Services, the PDB and the NetworkPolicies select. */}}
{{- define "redis-ha-agent.selectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/name: {{ include "redis-ha-agent.fullname" . }}
{{- end -}}

{{/* Labels Helm adds to every object's metadata (not to selectors or pods). */}}
{{- define "redis-ha-agent.chartLabels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "redis-ha-agent.labels" -}}
{{ include "redis-ha-agent.selectorLabels" . }}
{{ include "redis-ha-agent.chartLabels" . }}
{{- end -}}

{{- define "redis-ha-agent.serviceAccountName" -}}
{{- include "redis-ha-agent.fullname" . }}-ha-agent
{{- end -}}

{{- define "redis-ha-agent.headlessService" -}}
{{- include "redis-ha-agent.fullname" . }}-headless
{{- end -}}

{{- define "redis-ha-agent.configMapName" -}}
{{- include "redis-ha-agent.fullname" . }}-config
{{- end -}}

{{- define "redis-ha-agent.agentImage" -}}
{{- printf "%s:%s" .Values.image.agent.repository .Values.image.agent.tag -}}
{{- end -}}

{{- define "redis-ha-agent.serverImage" -}}
{{- $repo := .Values.image.redis.repository -}}
{{- $tag := .Values.image.redis.tag -}}
{{- if eq (include "redis-ha-agent.engine" .) "valkey" -}}
{{- printf "%s:%s" ($repo | default "valkey/valkey") ($tag | default "8.1.1") -}}
{{- else -}}
{{- printf "%s:%s" ($repo | default "redis") ($tag | default "7.0.15") -}}
{{- end -}}
{{- end -}}

{{/* redis-server or valkey-server (and -sentinel): Valkey 8 reads the same files. */}}
{{- define "redis-ha-agent.serverProgram" -}}
{{- include "redis-ha-agent.engine" . }}-server
{{- end -}}

{{- define "redis-ha-agent.sentinelProgram" -}}
{{- include "redis-ha-agent.engine" . }}-sentinel
{{- end -}}

{{/* The restricted Pod Security Standard, on every container. */}}
{{- define "redis-ha-agent.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Environment of both agent containers. Passwords and keys come only as file
paths (Secret volumes), never as values.
*/}}
{{- define "redis-ha-agent.agentEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: REDIS_HA_AVAILABILITY_ZONE
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['topology.kubernetes.io/zone']
- name: REDIS_HA_MODE
  value: {{ include "redis-ha-agent.mode" . }}
- name: REDIS_HA_HEADLESS_SERVICE
  value: {{ include "redis-ha-agent.headlessService" . }}
{{- if eq .Values.mode "cluster" }}
- name: REDIS_HA_CLUSTER_REPLICAS
  value: {{ .Values.cluster.replicasPerMaster | int | quote }}
{{- end }}
- name: REDIS_HA_HTTP_ADDR
  value: ":8080"
# Must stay below terminationGracePeriodSeconds.
- name: REDIS_HA_SWITCHOVER_TIMEOUT
  value: 30s
{{- if eq .Values.mode "sentinel" }}
{{- with .Values.sentinel.quorum }}
- name: REDIS_HA_QUORUM
  value: {{ . | int | quote }}
{{- end }}
{{- with .Values.sentinel.downAfter }}
- name: REDIS_HA_DOWN_AFTER
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.auth.existingSecret }}
- name: REDIS_HA_PASSWORD_FILE
  value: /etc/redis-ha/auth/password
{{- end }}
{{- with .Values.auth.acl }}
{{- if .enabled }}
{{- if not $.Values.auth.existingSecret }}
{{- fail "auth.acl.enabled needs auth.existingSecret: the users the agent defines log in with that password" }}
{{- end }}
- name: REDIS_HA_AGENT_USER
  value: {{ .agentUser | quote }}
- name: REDIS_HA_REPLICATION_USER
  value: {{ .replicationUser | quote }}
{{- if .disableDefaultUser }}
- name: REDIS_HA_DISABLE_DEFAULT_USER
  value: "true"
{{- end }}
{{- if eq $.Values.mode "sentinel" }}
- name: REDIS_HA_SENTINEL_AUTH_USER
  value: {{ .sentinelUser | quote }}
{{- end }}
{{- if .usersKey }}
- name: REDIS_HA_ACL_FILE
  value: /etc/redis-ha/auth/users.acl
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: REDIS_HA_TLS_CERT_FILE
  value: /etc/redis-ha/tls/tls.crt
- name: REDIS_HA_TLS_KEY_FILE
  value: /etc/redis-ha/tls/tls.key
- name: REDIS_HA_TLS_CA_FILE
  value: /etc/redis-ha/tls/ca.crt
{{- end }}
{{- if .Values.externalAccess.enabled }}
# External access: announce the node address (or the given domain) and
# this pod's NodePorts (base + ordinal).
- name: REDIS_HA_EXTERNAL_HOST
{{- with .Values.externalAccess.service.domain }}
  value: {{ . | quote }}
{{- else }}
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end }}
- name: REDIS_HA_EXTERNAL_REDIS_PORT
  value: {{ .Values.externalAccess.service.nodePorts.redis | int | quote }}
- name: REDIS_HA_EXTERNAL_SENTINEL_PORT
  value: {{ .Values.externalAccess.service.nodePorts.sentinel | int | quote }}
{{- end }}
{{- if .Values.metrics.exporter.enabled }}
# The agent writes redis_exporter's password file (JSON) from its own.
- name: REDIS_HA_EXPORTER_PASSWORD_FILE
  value: /etc/redis-exporter/auth/passwords.json
{{- end }}
{{- with .Values.agent.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "redis-ha-agent.tlsMount" -}}
- name: tls
  mountPath: /etc/redis-ha/tls
  readOnly: true
{{- end -}}

{{- define "redis-ha-agent.agentMounts" -}}
- name: data
  mountPath: /data
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- if .Values.auth.existingSecret }}
- name: auth
  mountPath: /etc/redis-ha/auth
  readOnly: true
{{- end }}
{{- if .Values.tls.enabled }}
{{ include "redis-ha-agent.tlsMount" . }}
{{- end }}
{{- if .Values.metrics.exporter.enabled }}
- name: redis-exporter-auth
  mountPath: /etc/redis-exporter/auth
{{- end }}
{{- end -}}
