{{/* Names: <release>-flts, or the release name when it already contains "flts". 63 chars max. */}}
{{- define "flts.fullname" -}}
{{- if contains "flts" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-flts" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flts.labels" -}}
app.kubernetes.io/name: flts
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "name" $name). */}}
{{- define "flts.selectorLabels" -}}
app.kubernetes.io/name: flts
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "flts.secretName" -}}
{{- if .Values.secrets.create -}}
{{- include "flts.fullname" . -}}
{{- else -}}
{{- required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "flts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
