{{/* Chart name. */}}
{{- define "spawngate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "spawngate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "spawngate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; pass (dict "ctx" $ "component" "api"). */}}
{{- define "spawngate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spawngate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "spawngate.labels" -}}
helm.sh/chart: {{ include "spawngate.chart" .ctx }}
{{ include "spawngate.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: spawngate
{{- end -}}

{{- define "spawngate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "spawngate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "spawngate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Name of the Secret holding tokens and URLs. */}}
{{- define "spawngate.secretName" -}}
{{- default (include "spawngate.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Workload namespaces as a JSON list (default: the release namespace). */}}
{{- define "spawngate.workloadNamespaces" -}}
{{- if .Values.workloads.namespaces -}}
{{- toJson (uniq .Values.workloads.namespaces) -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{- define "spawngate.publicUrl" -}}
{{- default (printf "http://%s.%s.svc:%v" (include "spawngate.fullname" .) .Release.Namespace .Values.service.port) .Values.publicUrl -}}
{{- end -}}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "spawngate.validate" -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.postgresql.enabled) (not .Values.secrets.databaseUrl) -}}
{{- fail "spawngate: set secrets.databaseUrl (e.g. RDS), secrets.existingSecret, or postgresql.enabled=true (trial only)" -}}
{{- end -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.redis.enabled) (not .Values.secrets.redisUrl) -}}
{{- fail "spawngate: set secrets.redisUrl (e.g. ElastiCache), secrets.existingSecret, or redis.enabled=true (trial only)" -}}
{{- end -}}
{{- if and (dig "oidc" "introspection" false .Values.config) (not .Values.secrets.existingSecret) (not .Values.secrets.oidcClientSecret) -}}
{{- fail "spawngate: config.oidc.introspection needs secrets.oidcClientSecret (or key oidc-client-secret in secrets.existingSecret)" -}}
{{- end -}}
{{- if and .Values.homes.enabled (not .Values.homes.existingClaim) -}}
{{- fail "spawngate: homes.enabled needs homes.existingClaim (the EFS PersistentVolumeClaim)" -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by API, worker and migration containers. */}}
{{- define "spawngate.env" -}}
- name: SPAWNGATE_CONFIG
  value: /etc/spawngate/spawngate.yaml
{{ include "spawngate.envCommon" . }}
{{- end -}}

{{/* Environment without SPAWNGATE_CONFIG (the migration Job runs before the ConfigMap exists). */}}
{{- define "spawngate.envCommon" -}}
- name: SPAWNGATE_PORT
  value: {{ .Values.service.port | quote }}
- name: SPAWNGATE_BIND
  value: "0.0.0.0"
- name: SPAWNGATE_PUBLIC_URL
  value: {{ include "spawngate.publicUrl" . | quote }}
- name: SPAWNGATE_BACKEND
  value: {{ .Values.backend | quote }}
- name: SPAWNGATE_KUBERNETES_NAMESPACE
  value: {{ first (include "spawngate.workloadNamespaces" . | fromYamlArray) | quote }}
- name: SPAWNGATE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SPAWNGATE_START_TIMEOUT
  value: {{ .Values.startTimeout | quote }}
- name: SPAWNGATE_HOME_ROOT
  value: {{ .Values.homeRoot | quote }}
- name: SPAWNGATE_SHARED_KERNELS
  value: {{ .Values.sharedKernels | quote }}
- name: SPAWNGATE_DATA_DIR
  value: /var/lib/spawngate
- name: SPAWNGATE_WORKER_CONCURRENCY
  value: {{ .Values.worker.concurrency | quote }}
{{- range $k := keys .Values.extraEnv | sortAlpha }}
- name: {{ $k }}
  value: {{ index $.Values.extraEnv $k | toString | quote }}
{{- end }}
{{- range $pair := list (list "SPAWNGATE_HUB_TOKEN" "hub-token") (list "SPAWNGATE_ADMIN_TOKEN" "admin-token") (list "SPAWNGATE_SECRET_KEY" "secret-key") (list "SPAWNGATE_DATABASE_URL" "database-url") (list "SPAWNGATE_REDIS_URL" "redis-url") }}
- name: {{ index $pair 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "spawngate.secretName" $ }}
      key: {{ index $pair 1 }}
{{- end }}
{{- if dig "oidc" "introspection" false .Values.config }}
- name: SPAWNGATE_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "spawngate.secretName" . }}
      key: oidc-client-secret
{{- end }}
{{- end -}}

{{/* Volumes and mounts of spawngate containers: config, writable data/tmp (read-only root), homes. */}}
{{- define "spawngate.volumes" -}}
- name: config
  configMap:
    name: {{ include "spawngate.fullname" . }}
{{ include "spawngate.scratchVolumes" . }}
{{- if .Values.homes.enabled }}
- name: homes
  persistentVolumeClaim:
    claimName: {{ .Values.homes.existingClaim }}
    readOnly: {{ .Values.homes.readOnly }}
{{- end }}
{{- end -}}

{{- define "spawngate.scratchVolumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "spawngate.volumeMounts" -}}
- name: config
  mountPath: /etc/spawngate
  readOnly: true
{{ include "spawngate.scratchMounts" . }}
{{- if .Values.homes.enabled }}
- name: homes
  mountPath: {{ .Values.homeRoot }}
  readOnly: {{ .Values.homes.readOnly }}
{{- end }}
{{- end -}}

{{- define "spawngate.scratchMounts" -}}
- name: data
  mountPath: /var/lib/spawngate
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Pod selector (as YAML) matching the spawngate API and worker pods of this release. */}}
{{- define "spawngate.servicePodSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ include "spawngate.name" . }}
  app.kubernetes.io/instance: {{ .Release.Name }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: [api, worker]
{{- end -}}
