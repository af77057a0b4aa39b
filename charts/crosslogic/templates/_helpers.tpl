{{/* Names */}}
{{- define "crosslogic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crosslogic.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "crosslogic.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "crosslogic.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", e.g. crosslogic-gateway */}}
{{- define "crosslogic.componentName" -}}
{{- printf "%s-%s" (include "crosslogic.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The operator's leader Lease and the gateway pods live in the release namespace. */}}
{{- define "crosslogic.systemNamespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/*
The gateway-config Secrets live in a namespace of their own ("<release namespace>-gateway-config"
unless gateway.config.namespace says otherwise), so the gateway's Role can read them and no other
Secret: the release namespace also holds the Stripe keys, database credentials and admin tokens.
*/}}
{{- define "crosslogic.gatewayConfigNamespace" -}}
{{- .Values.gateway.config.namespace | default (printf "%s-gateway-config" .Release.Namespace) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crosslogic.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "crosslogic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: crosslogic
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: dict "root" $ "component" "gateway" */}}
{{- define "crosslogic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crosslogic.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "crosslogic.componentLabels" -}}
{{ include "crosslogic.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* image reference: dict "root" $ "image" .Values.gateway.image */}}
{{- define "crosslogic.image" -}}
{{- $registry := .image.registry | default .root.Values.image.registry -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if .image.digest -}}
{{- printf "%s%s@%s" (ternary "" (printf "%s/" $registry) (empty $registry)) .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s%s:%s" (ternary "" (printf "%s/" $registry) (empty $registry)) .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context shared by every pod of the chart. */}}
{{- define "crosslogic.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context shared by every container of the chart. */}}
{{- define "crosslogic.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Secret holding the Redis URL, and its key. */}}
{{- define "crosslogic.redisSecretName" -}}
{{- if .Values.redis.bundled.enabled -}}{{ include "crosslogic.componentName" (dict "root" . "component" "redis") }}{{- else -}}{{ .Values.redis.existingSecret.name }}{{- end -}}
{{- end -}}
{{- define "crosslogic.redisSecretKey" -}}
{{- if .Values.redis.bundled.enabled -}}url{{- else -}}{{ .Values.redis.existingSecret.key }}{{- end -}}
{{- end -}}

{{/* Secret holding the PostgreSQL URL, and its key. */}}
{{- define "crosslogic.postgresqlSecretName" -}}
{{- if .Values.postgresql.bundled.enabled -}}{{ include "crosslogic.componentName" (dict "root" . "component" "postgresql") }}{{- else -}}{{ .Values.postgresql.existingSecret.name }}{{- end -}}
{{- end -}}
{{- define "crosslogic.postgresqlSecretKey" -}}
{{- if .Values.postgresql.bundled.enabled -}}url{{- else -}}{{ .Values.postgresql.existingSecret.key }}{{- end -}}
{{- end -}}

{{/* True when the external Redis/PostgreSQL servers are signed by a private CA the chart must trust. */}}
{{- define "crosslogic.hasExternalCA" -}}
{{- if and .Values.externalCA.secretName (or .Values.redis.tls.enabled .Values.postgresql.tls.enabled) -}}true{{- end -}}
{{- end -}}

{{/*
Environment for a component that talks to Redis and/or PostgreSQL: dict "root" $ "redis" bool "postgresql" bool.
TLS: the URL in the Secret carries the scheme (rediss://) and may carry sslmode; the chart adds
PGSSLMODE (node-postgres uses it when the URL names no sslmode) and trusts a private CA through
NODE_EXTRA_CA_CERTS, which Node.js adds to the default trust store used by ioredis and node-postgres.
*/}}
{{- define "crosslogic.dataEnv" -}}
{{- $v := .root.Values -}}
{{- if .redis }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "crosslogic.redisSecretName" .root }}
      key: {{ include "crosslogic.redisSecretKey" .root }}
{{- end }}
{{- if .postgresql }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "crosslogic.postgresqlSecretName" .root }}
      key: {{ include "crosslogic.postgresqlSecretKey" .root }}
{{- if $v.postgresql.tls.enabled }}
- name: PGSSLMODE
  value: {{ $v.postgresql.tls.sslmode | quote }}
{{- end }}
{{- end }}
{{- if include "crosslogic.hasExternalCA" .root }}
- name: NODE_EXTRA_CA_CERTS
  value: /etc/crosslogic/external-ca/ca.crt
{{- end }}
{{- end -}}

{{/* Volume and mount for the external services' CA bundle (render only when hasExternalCA). */}}
{{- define "crosslogic.caVolume" -}}
- name: external-ca
  secret:
    secretName: {{ .Values.externalCA.secretName }}
    items: [{key: {{ .Values.externalCA.key | quote }}, path: ca.crt}]
{{- end -}}
{{- define "crosslogic.caMount" -}}
- name: external-ca
  mountPath: /etc/crosslogic/external-ca
  readOnly: true
{{- end -}}
