{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{/* Names, labels and the rendered controller config shared by the templates. */}}

{{- define "aitask-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: object names start with it (at most 52 characters, so suffixes fit). */}}
{{- define "aitask-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aitask-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aitask-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aitask-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aitask-operator.labels" -}}
helm.sh/chart: {{ include "aitask-operator.chart" . }}
{{ include "aitask-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aitask-operator
{{- end }}

{{- define "aitask-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aitask-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aitask-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the projected Vault token is mounted. */}}
{{- define "aitask-operator.vaultTokenDir" -}}/var/run/secrets/vault{{- end }}

{{/*
The controller config (config.yaml): values.config with empty budgets/audit/vault settings left out,
and vault.jwtFile pointed at the projected token when that is enabled.
*/}}
{{- define "aitask-operator.config" -}}
{{- $c := deepCopy .Values.config }}
{{- $budgets := dict }}
{{- range $k, $v := ($c.budgets | default dict) }}
{{- if $v }}{{- $_ := set $budgets $k $v }}{{- end }}
{{- end }}
{{- $_ := unset $c "budgets" }}
{{- if $budgets }}{{- $_ := set $c "budgets" $budgets }}{{- end }}
{{- $audit := dict }}
{{- range $k, $v := ($c.audit | default dict) }}
{{- if $v }}{{- $_ := set $audit $k $v }}{{- end }}
{{- end }}
{{- $_ := unset $c "audit" }}
{{- if $audit }}{{- $_ := set $c "audit" $audit }}{{- end }}
{{- $vault := dict }}
{{- if and $c.vault $c.vault.address }}
{{- range $k, $v := $c.vault }}
{{- if $v }}{{- $_ := set $vault $k $v }}{{- end }}
{{- end }}
{{- if and .Values.vault.projectedToken.enabled (not $vault.jwtFile) }}
{{- $_ := set $vault "jwtFile" (printf "%s/token" (include "aitask-operator.vaultTokenDir" .)) }}
{{- end }}
{{- end }}
{{- $_ := unset $c "vault" }}
{{- if $vault }}{{- $_ := set $c "vault" $vault }}{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* The controller's API rules (SPEC.md section 3), shared by the ClusterRole and the Role. */}}
{{- define "aitask-operator.controllerRules" -}}
- apiGroups: [aitask.dev]
  resources: [aitasks]
  verbs: [get, list, watch, update, patch]
- apiGroups: [aitask.dev]
  resources: [aitasks/status]
  verbs: [get, update, patch]
- apiGroups: [aitask.dev]
  resources: [aitasks/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [pods, configmaps]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, update]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
