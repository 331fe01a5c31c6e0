{{/* The chart's name, at most 63 characters. */}}
{{- define "raftnet-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the release name when it already holds the chart's name
(`raftnet-operator`), else RELEASE-raftnet-operator; at most 63 characters.
*/}}
{{- define "raftnet-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels that select the operator's pod. */}}
{{- define "raftnet-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "raftnet-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object of the chart. */}}
{{- define "raftnet-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "raftnet-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: raftnet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "raftnet-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "raftnet-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image. */}}
{{- define "raftnet-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* The default node image (RAFTNET_NODE_IMAGE). */}}
{{- define "raftnet-operator.nodeImage" -}}
{{- printf "%s:%s" .Values.nodeImage.repository (.Values.nodeImage.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
What the operator uses, and no more: the same rules as deploy/operator.yaml's ClusterRole
(a test keeps them equal; the operator's rbac_check test keeps that file complete).
*/}}
{{- define "raftnet-operator.rules" -}}
# Its own resources: watched, children made, status written.
- apiGroups: ["raftnet.dev"]
  resources: ["networks", "channels", "orderers", "peers"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["raftnet.dev"]
  resources: ["networks/status", "channels/status", "orderers/status", "peers/status"]
  verbs: ["get", "patch"]
# What a node runs as. Nothing is deleted by the operator: children go with their owners.
- apiGroups: [""]
  resources: ["secrets", "configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
