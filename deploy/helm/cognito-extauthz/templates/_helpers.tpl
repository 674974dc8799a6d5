{{/*
Names. The objects are named after the release (helm install extauthz ...
makes Service extauthz, ConfigMap extauthz-policy), as k8s/overlays/shared
names them; fullnameOverride replaces the release name.
*/}}
{{- define "extauthz.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "extauthz.name" -}}
{{- default "extauthz" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "extauthz.serviceAccountName" -}}
{{- default (include "extauthz.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "extauthz.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "extauthz.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{- define "extauthz.revocationConfigMap" -}}
{{- default (printf "%s-revocation" (include "extauthz.fullname" .)) .Values.revocation.file.existingConfigMap -}}
{{- end -}}

{{- define "extauthz.tlsSecret" -}}
{{- if .Values.grpc.tls.certManager.enabled -}}
{{- printf "%s-server-tls" (include "extauthz.fullname" .) -}}
{{- else -}}
{{- required "grpc.tls.existingSecret: name the Secret holding tls.crt, tls.key and ca.crt, or turn on grpc.tls.certManager" .Values.grpc.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The gRPC address gateways dial: the Service's cluster DNS name. */}}
{{- define "extauthz.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "extauthz.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "extauthz.httpServiceHost" -}}
{{- printf "%s-http.%s.svc.%s" (include "extauthz.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "extauthz.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "extauthz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "extauthz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "extauthz.labels" -}}
{{ include "extauthz.selectorLabels" . }}
app.kubernetes.io/part-of: cognito-extauthz
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Checks across values that the schema cannot express; each fails the
install with what to change.
*/}}
{{- define "extauthz.validate" -}}
{{- $budget := add .Values.preStopSleepSeconds (trimSuffix "s" .Values.shutdownGrace | int) -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $budget) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + shutdownGrace (%v s): the kubelet would kill in-flight checks" .Values.terminationGracePeriodSeconds $budget) -}}
{{- end -}}
{{- if and (not .Values.policy.existingConfigMap) (eq (trim .Values.policy.content) "") -}}
{{- fail "policy: set policy.content (--set-file policy.content=policy.yaml) or policy.existingConfigMap" -}}
{{- end -}}
{{- if and .Values.revocation.file.enabled (not .Values.policy.existingConfigMap) (not (regexMatch "(?m)^revocation:" .Values.policy.content)) -}}
{{- fail "revocation.file.enabled: the policy has no top-level revocation: block naming the file (revocation: {file: revoked.txt})" -}}
{{- end -}}
{{- if and .Values.revocation.file.enabled (not .Values.revocation.file.existingConfigMap) (eq (trim .Values.revocation.file.content) "") -}}
{{- fail "revocation.file.enabled: set revocation.file.content or revocation.file.existingConfigMap" -}}
{{- end -}}
{{- if and .Values.revocation.redis.enabled (not .Values.revocation.redis.passwordSecret.name) -}}
{{- fail "revocation.redis.enabled: name the Secret holding the Redis password in revocation.redis.passwordSecret.name" -}}
{{- end -}}
{{- if and .Values.revocation.redis.enabled .Values.networkPolicy.egress.enabled (not .Values.revocation.redis.peers) -}}
{{- fail "networkPolicy.egress.enabled with revocation.redis: list the Redis server's NetworkPolicy peers in revocation.redis.peers" -}}
{{- end -}}
{{- if and .Values.grpc.tls.clientAuth (not .Values.grpc.tls.enabled) -}}
{{- fail "grpc.tls.clientAuth needs grpc.tls.enabled" -}}
{{- end -}}
{{- if and .Values.httpAuthz.enabled .Values.httpAuthz.tls.enabled (not .Values.grpc.tls.enabled) -}}
{{- fail "httpAuthz.tls.enabled serves the gRPC port's certificate: it needs grpc.tls.enabled (or set httpAuthz.tls.enabled=false)" -}}
{{- end -}}
{{- if and .Values.httpAuthz.tls.clientAuth (not .Values.httpAuthz.tls.enabled) -}}
{{- fail "httpAuthz.tls.clientAuth needs httpAuthz.tls.enabled" -}}
{{- end -}}
{{- end -}}
