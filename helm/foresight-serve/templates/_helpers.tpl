{{- define "foresight.name" -}}{{ .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "foresight.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "foresight.labels" -}}
app.kubernetes.io/name: {{ include "foresight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "foresight.selector" -}}
app.kubernetes.io/name: {{ include "foresight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "foresight.secretName" -}}{{ .Values.secret.existingSecret | default (printf "%s-secrets" (include "foresight.fullname" .)) }}{{- end -}}
{{- define "foresight.routerSelector" -}}
app.kubernetes.io/name: {{ include "foresight.name" . }}-router
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "foresight.redisUrl" -}}
{{- if .Values.redis.url }}{{ .Values.redis.url }}{{- else if .Values.redis.enabled }}redis://{{ include "foresight.fullname" . }}-redis:6379/0{{- end }}
{{- end -}}
