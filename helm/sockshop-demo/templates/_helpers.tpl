{{/* Labels and the checks that fail rendering with a clear message. */}}

{{- define "sockshop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of one Sock Shop service: (dict "ctx" $ "name" "carts") */}}
{{- define "sockshop.labels" -}}
helm.sh/chart: {{ include "sockshop.chart" .ctx }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sock-shop
{{ include "sockshop.selectorLabels" . }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sockshop.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* Go durations as Chaos Mesh and the Collector accept them. */}}
{{- define "sockshop.validate" -}}
{{- $services := .Values.services }}
{{- range $name, $svc := $services }}
{{- range $callee := $svc.calls }}
{{- if not (hasKey $services $callee) }}
{{- fail (printf "services.%s.calls names %q, which is not a service of this chart" $name $callee) }}
{{- end }}
{{- end }}
{{- if not (or $svc.probe.http $svc.probe.tcp) }}
{{- fail (printf "services.%s.probe needs http: PATH or tcp: true" $name) }}
{{- end }}
{{- if not $svc.resources }}
{{- fail (printf "services.%s.resources is required" $name) }}
{{- end }}
{{- end }}
{{- if not (hasKey $services "front-end") }}
{{- fail "services.front-end is required (the load generator and the Collector start there)" }}
{{- end }}
{{- if .Values.chaos.enabled }}
{{- $faults := list "cpu" "memory" "delay" "loss" "pod-failure" }}
{{- range $i, $e := .Values.chaos.experiments }}
{{- if not (has $e.fault $faults) }}
{{- fail (printf "chaos.experiments[%d].fault must be one of %s, not %q" $i (join ", " $faults) (toString $e.fault)) }}
{{- end }}
{{- if not (hasKey $services (toString $e.target)) }}
{{- fail (printf "chaos.experiments[%d].target %q is not a service of this chart" $i (toString $e.target)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
