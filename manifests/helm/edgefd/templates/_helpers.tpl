{{/* The image of every component: repository@digest, else repository:tag (appVersion). */}}
{{- define "edgefd.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Where every component reads the chart's rules (the ConfigMap "edgefd.rules"). */}}
{{- define "edgefd.rulesDir" -}}/etc/edgefd/rules{{- end -}}
{{- define "edgefd.rules" -}}{{ .Release.Name }}-rules{{- end -}}

{{/* The rules volume and its mount, the same in every DaemonSet. */}}
{{- define "edgefd.rulesVolume" -}}
- name: rules
  configMap:
    name: {{ include "edgefd.rules" . }}
{{- end -}}
{{- define "edgefd.rulesMount" -}}
- {name: rules, mountPath: {{ include "edgefd.rulesDir" . }}, readOnly: true}
{{- end -}}

{{/* What a component's pod spec places: nodeSelector, affinity, tolerations, priority. */}}
{{- define "edgefd.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A component's probes and resources, from its values. */}}
{{- define "edgefd.probesAndResources" -}}
{{- with .livenessProbe }}
livenessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .readinessProbe }}
readinessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A file of manifests/ (linked into files/) in the release's namespace, the documents whose
kind matches `kinds` (a regular expression) only. */}}
{{- define "edgefd.manifestDocs" -}}
{{- $root := index . 0 -}}
{{- $text := $root.Files.Get (index . 1) | replace "edgefd-system" $root.Release.Namespace -}}
{{- range $doc := splitList "\n---\n" $text }}
{{- if regexMatch (printf "(?m)^kind: (%s)$" (index $ 2)) $doc }}
---
{{ $doc | trim }}
{{- end }}
{{- end }}
{{- end -}}
