{{/* Names, labels, images and the checks that fail rendering with a clear message. */}}

{{- define "rca.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rca.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rca.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rca.labels" -}}
helm.sh/chart: {{ include "rca.chart" . }}
app.kubernetes.io/name: {{ include "rca.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rca-platform
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api") */}}
{{- define "rca.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rca.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rca.componentLabels" -}}
{{ include "rca.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rca.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rca.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is set: (dict "image" .Values.image "default" "0.1.0") */}}
{{- define "rca.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (toString (default .default .image.tag)) }}
{{- end }}
{{- end }}

{{- define "rca.image" -}}
{{- include "rca.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) }}
{{- end }}

{{- define "rca.apiServiceName" -}}
{{- printf "%s-api" (include "rca.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The URL Grafana uses to reach the API. */}}
{{- define "rca.apiUrl" -}}
{{- if .Values.grafana.apiUrl }}
{{- .Values.grafana.apiUrl | trimSuffix "/" }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "rca.apiServiceName" .) .Release.Namespace (int .Values.api.service.port) }}
{{- end }}
{{- end }}

{{- define "rca.tokenSecretName" -}}
{{- default (printf "%s-api-token" (include "rca.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "rca.databaseSecretName" -}}
{{- default (printf "%s-database" (include "rca.fullname" .)) .Values.store.postgresql.existingSecret }}
{{- end }}

{{- define "rca.sqliteClaimName" -}}
{{- default (printf "%s-incidents" (include "rca.fullname" .)) .Values.store.sqlite.persistence.existingClaim }}
{{- end }}

{{/* Environment shared by the API and ingest containers. */}}
{{- define "rca.kafkaEnv" -}}
- name: RCA_KAFKA_BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: RCA_METRICS_TOPIC
  value: {{ .Values.kafka.topic | quote }}
- name: RCA_DLQ_TOPIC
  value: {{ .Values.kafka.dlqTopic | quote }}
- name: RCA_INGEST_GROUP
  value: {{ .Values.kafka.consumerGroup | quote }}
- name: RCA_KAFKA_SESSION_TIMEOUT_MS
  value: {{ .Values.kafka.sessionTimeoutMs | int64 | quote }}
- name: RCA_KAFKA_MAX_POLL_INTERVAL_MS
  value: {{ .Values.kafka.maxPollIntervalMs | int64 | quote }}
# The root filesystem is read-only: caches go to the /tmp emptyDir.
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
- name: HOME
  value: /tmp
{{- end }}

{{/* The incident store URL: a file path on the volume (SQLite) or a URL from a Secret. */}}
{{- define "rca.databaseEnv" -}}
{{- if eq .Values.store.type "postgresql" }}
- name: RCA_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "rca.databaseSecretName" . }}
      key: {{ .Values.store.postgresql.existingSecretKey }}
{{- else }}
- name: RCA_DATABASE_URL
  value: {{ .Values.store.sqlite.path | quote }}
{{- end }}
{{- end }}

{{- define "rca.tokenEnv" -}}
- name: RCA_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "rca.tokenSecretName" . }}
      key: {{ .Values.auth.existingSecretKey }}
{{- end }}

{{/* Every check that must fail rendering, in one place; included by every workload template. */}}
{{- define "rca.validate" -}}
{{- $store := .Values.store.type }}
{{- if not (has $store (list "sqlite" "postgresql")) }}
{{- fail (printf "store.type must be \"sqlite\" or \"postgresql\", not %q" $store) }}
{{- end }}
{{- if eq $store "sqlite" }}
{{- if gt (int .Values.api.replicas) 1 }}
{{- fail (printf "api.replicas=%d needs a server database: SQLite allows one API replica. Set store.type=postgresql with store.postgresql.url (or existingSecret), or api.replicas=1." (int .Values.api.replicas)) }}
{{- end }}
{{- if .Values.api.autoscaling.enabled }}
{{- fail "api.autoscaling.enabled needs a server database: SQLite allows one API replica. Set store.type=postgresql with store.postgresql.url (or existingSecret)." }}
{{- end }}
{{- end }}
{{- if and (eq $store "postgresql") (not .Values.store.postgresql.url) (not .Values.store.postgresql.existingSecret) }}
{{- fail "store.type=postgresql needs store.postgresql.url or store.postgresql.existingSecret" }}
{{- end }}
{{- if and .Values.ingest.enabled (gt (int .Values.ingest.replicas) (int .Values.kafka.partitions)) }}
{{- fail (printf "ingest.replicas=%d exceeds kafka.partitions=%d: a consumer group gives each partition to one member, so the extra workers would sit idle. Lower ingest.replicas or add partitions." (int .Values.ingest.replicas) (int .Values.kafka.partitions)) }}
{{- end }}
{{- if lt (int .Values.kafka.partitions) 1 }}
{{- fail "kafka.partitions must be at least 1" }}
{{- end }}
{{- if not .Values.kafka.bootstrap }}
{{- fail "kafka.bootstrap is required: the bootstrap servers of an existing Kafka cluster" }}
{{- end }}
{{- if and .Values.api.autoscaling.enabled (lt (int .Values.api.autoscaling.minReplicas) 1) }}
{{- fail "api.autoscaling.minReplicas must be at least 1" }}
{{- end }}
{{- end }}

{{/* Volumes for the writable paths of a read-only root filesystem. */}}
{{- define "rca.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{/* OTEL_RESOURCE_ATTRIBUTES of the Collector: the node plus collector.resourceAttributes. */}}
{{- define "rca.resourceAttributes" -}}
{{- $attrs := list "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- range $k, $v := .Values.collector.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
{{- join "," $attrs }}
{{- end }}

{{/* GOMEMLIMIT at 80% of the memory limit (the Go runtime then collects before the OOM killer). */}}
{{- define "rca.goMemLimit" -}}
{{- $limit := toString (dig "limits" "memory" "512Mi" .) }}
{{- if hasSuffix "Gi" $limit }}
{{- printf "%dMiB" (div (mul (trimSuffix "Gi" $limit | int) 1024 80) 100) }}
{{- else if hasSuffix "Mi" $limit }}
{{- printf "%dMiB" (div (mul (trimSuffix "Mi" $limit | int) 80) 100) }}
{{- else }}
{{- fail (printf "collector.resources.limits.memory must be in Mi or Gi, not %q" $limit) }}
{{- end }}
{{- end }}
