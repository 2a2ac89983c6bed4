{{- define "prism.fullname" -}}
{{- printf "%s-prism" .Release.Name | trunc 57 | trimSuffix "-" -}}
{{- end -}}

{{- define "prism.labels" -}}
app.kubernetes.io/name: prism
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "prism.selector" -}}
app.kubernetes.io/name: prism
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "prism.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end -}}

{{- define "prism.tlsSecret" -}}
{{- required "tls.secretName is required when tls.enabled (a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt)" .Values.tls.secretName -}}
{{- end -}}

{{/* Server TLS flags shared by admin and proxy (src/cli/tls-flags.ts serverTlsFlags). */}}
{{- define "prism.serverTlsArgs" -}}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/prism/tls/tls.crt
- --tls-key=/etc/prism/tls/tls.key
{{- if .Values.tls.requireClientCert }}
- --tls-client-ca=/etc/prism/tls/ca.crt
{{- end }}
{{- else }}
- --no-tls
{{- end }}
{{- end -}}

{{- define "prism.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/* prometheus.io annotations: the HTTP status port serves /metrics (TLS when tls.enabled). */}}
{{- define "prism.scrapeAnnotations" -}}
{{- if .root.Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
prometheus.io/scheme: {{ include "prism.scheme" .root | lower | quote }}
{{- end }}
{{- end -}}

{{- define "prism.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "prism.probes" -}}
livenessProbe:
  httpGet: { path: /healthz, port: http, scheme: {{ include "prism.scheme" . }} }
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: http, scheme: {{ include "prism.scheme" . }} }
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
startupProbe:
  httpGet: { path: /healthz, port: http, scheme: {{ include "prism.scheme" . }} }
  periodSeconds: 2
  failureThreshold: 30
{{- end -}}
