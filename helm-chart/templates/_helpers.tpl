{{- /*
  Helpers of the jupyterhub-workshop chart.

  The hub reads only the jupyterhub subchart's values, and those are static: a template cannot
  change them. So the few names the hub's pod refers to (the hub configuration ConfigMap, the
  accounts Secret, the database Secret, the settings Secret, the service port) are written once,
  in `jupyterhub:` of values.yaml, and the templates here *read* them from there, so each name
  has one source. `workshop.checks` fails the render, with a message saying what to change,
  when the two halves would not meet.
*/}}

{{- /* Common labels; pass (dict "root" $ "component" "hub") */}}
{{- define "workshop.labels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* The jupyterhub subchart's hub values (a map, possibly empty) */}}
{{- define "workshop.hubValues" -}}
{{- $jh := .Values.jupyterhub | default dict }}
{{- $jh.hub | default dict | toYaml }}
{{- end }}

{{- /* The list entry named (index . 1) in the list (index . 0), as YAML; "" when absent */}}
{{- define "workshop.findNamed" -}}
{{- $name := index . 1 }}
{{- range (index . 0 | default list) }}
{{- if and (kindIs "map" .) (eq (toString .name) $name) }}
{{- toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Name of the Secret holding the accounts file: the hub's `workshop-accounts` volume */}}
{{- define "workshop.accountsSecretName" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $volume := include "workshop.findNamed" (list $hub.extraVolumes "workshop-accounts") | fromYaml }}
{{- dig "secret" "secretName" "" $volume }}
{{- end }}

{{- /* Where the hub finds accounts.yaml: the `workshop-accounts` volume mount */}}
{{- define "workshop.accountsFile" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $mount := include "workshop.findNamed" (list $hub.extraVolumeMounts "workshop-accounts") | fromYaml }}
{{- with $mount.mountPath }}{{ trimSuffix "/" . }}/accounts.yaml{{ end }}
{{- end }}

{{- /* Name of the ConfigMap holding the hub configuration: the `workshop-hub-config` volume */}}
{{- define "workshop.hubConfigName" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $volume := include "workshop.findNamed" (list $hub.extraVolumes "workshop-hub-config") | fromYaml }}
{{- dig "configMap" "name" "" $volume }}
{{- end }}

{{- /* Name of the Secret holding the usage database URL: hub.extraEnv.WORKSHOP_DB_URL */}}
{{- define "workshop.databaseSecretName" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $env := $hub.extraEnv | default dict }}
{{- $entry := dict }}
{{- if kindIs "map" $env }}
{{- $entry = get $env "WORKSHOP_DB_URL" | default dict }}
{{- else }}
{{- $entry = include "workshop.findNamed" (list $env "WORKSHOP_DB_URL") | fromYaml }}
{{- end }}
{{- if kindIs "map" $entry }}
{{- dig "valueFrom" "secretKeyRef" "name" "" $entry }}
{{- end }}
{{- end }}

{{- /* Key of the database URL in that Secret */}}
{{- define "workshop.databaseSecretKey" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $env := $hub.extraEnv | default dict }}
{{- $entry := dict }}
{{- if kindIs "map" $env }}
{{- $entry = get $env "WORKSHOP_DB_URL" | default dict }}
{{- else }}
{{- $entry = include "workshop.findNamed" (list $env "WORKSHOP_DB_URL") | fromYaml }}
{{- end }}
{{- if kindIs "map" $entry }}
{{- dig "valueFrom" "secretKeyRef" "key" "url" $entry }}
{{- end }}
{{- end }}

{{- /* The workshop service's port: hub.service.extraPorts entry `workshop` */}}
{{- define "workshop.servicePort" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $port := include "workshop.findNamed" (list (dig "service" "extraPorts" list $hub) "workshop") | fromYaml }}
{{- with $port.port }}{{ int . }}{{ end }}
{{- end }}

{{- /* Whether a usage database URL is given (inline or in a Secret) */}}
{{- define "workshop.databaseFromSecret" -}}
{{- $db := .Values.workshop.service.database }}
{{- if or $db.url $db.existingSecret }}true{{ end }}
{{- end }}

{{- /* The README ConfigMap (not referenced by the hub pod, so the chart names it) */}}
{{- define "workshop.readmeName" -}}
workshop-readme
{{- end }}

{{- /* Labels that select z2jh's hub pod (its matchLabels) */}}
{{- define "workshop.hubSelector" -}}
{{- $jh := .Values.jupyterhub | default dict -}}
component: hub
app: {{ $jh.nameOverride | default "jupyterhub" }}
release: {{ .Release.Name | quote }}
{{- end }}

{{- /*
  What the hub receives as custom.workshop: the workshop settings without the contents that
  have their own Secrets, plus `wiring`, the names and paths resolved from `jupyterhub:`.
*/}}
{{- define "workshop.hubSettings" -}}
{{- $ws := deepCopy .Values.workshop }}
{{- $_ := unset $ws.accounts "file" }}
{{- $_ := unset $ws.service.database "url" }}
{{- $_ := unset $ws.readme "content" }}
{{- $_ := unset $ws "grafanaDashboard" }}
{{- $_ := unset $ws "archive" }}
{{- $wiring := dict
      "accountsFile" (include "workshop.accountsFile" .)
      "readmeConfigMap" (ternary (include "workshop.readmeName" .) "" (.Values.workshop.readme.enabled | default false))
      "readmeKey" "README.md"
      "servicePort" (include "workshop.servicePort" . | int)
      "databaseFromSecret" (eq (include "workshop.databaseFromSecret" .) "true")
      "databaseSecret" (include "workshop.databaseSecretName" .)
      "sqliteUrl" "sqlite:////srv/jupyterhub/workshop-usage.sqlite"
      "prewarmDeployment" (ternary (include "workshop.prewarmName" .) "" (dig "prewarm" "enabled" false .Values.workshop | default false))
}}
{{- $_ := set $ws "wiring" $wiring }}
{{- dict "custom" (dict "workshop" $ws) | toYaml }}
{{- end }}

{{- /*
  Checks that `workshop:` and `jupyterhub:` meet (names and ports in both halves), which a JSON
  schema cannot express. Each failure says which value to change. Single settings are checked
  by values.schema.json and by the package's own parsers in the hub, nowhere else.
*/}}
{{- define "workshop.checks" -}}
{{- $jh := .Values.jupyterhub | default dict }}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $ws := .Values.workshop }}

{{- $storageType := dig "singleuser" "storage" "type" "none" $jh }}
{{- if ne $storageType "none" }}
{{- fail (printf "jupyterhub.singleuser.storage.type is %q: it must be \"none\", because the workshop spawner mounts homes itself (set workshop.storage instead); otherwise every server gets two home volumes" $storageType) }}
{{- end }}

{{- if dig "cull" "enabled" false $jh }}
{{- fail "jupyterhub.cull.enabled must be false: the workshop service culls servers (workshop.cull), with night windows and opt-outs; two cullers would fight" }}
{{- end }}

{{- if not $hub.existingSecret }}
{{- fail "jupyterhub.hub.existingSecret must name the Secret this chart writes the workshop settings to (default workshop-hub-settings): the hub reads only the jupyterhub subchart's values" }}
{{- end }}

{{- if not (include "workshop.hubConfigName" .) }}
{{- fail "jupyterhub.hub.extraVolumes needs the volume `workshop-hub-config` (a configMap with a name): it carries the hub configuration that applies the workshop settings" }}
{{- end }}
{{- $configMount := include "workshop.findNamed" (list $hub.extraVolumeMounts "workshop-hub-config") | fromYaml }}
{{- if not (hasPrefix "/usr/local/etc/jupyterhub/jupyterhub_config.d/" ($configMount.mountPath | default "")) }}
{{- fail "jupyterhub.hub.extraVolumeMounts needs `workshop-hub-config` mounted at /usr/local/etc/jupyterhub/jupyterhub_config.d/workshop.py (subPath workshop_config.py), where z2jh loads extra hub configuration" }}
{{- end }}

{{- $accountsSecret := include "workshop.accountsSecretName" . }}
{{- if not $accountsSecret }}
{{- fail "jupyterhub.hub.extraVolumes needs the volume `workshop-accounts` (a secret with a secretName): the hub's accounts file" }}
{{- end }}
{{- if not (include "workshop.accountsFile" .) }}
{{- fail "jupyterhub.hub.extraVolumeMounts needs `workshop-accounts` mounted as a directory (e.g. /etc/workshop/accounts)" }}
{{- end }}
{{- with $ws.accounts.existingSecret }}
{{- if ne . $accountsSecret }}
{{- fail (printf "workshop.accounts.existingSecret is %q but the hub mounts the Secret %q (jupyterhub.hub.extraVolumes, volume workshop-accounts): name your Secret %q, or set that volume's secretName to %q" . $accountsSecret $accountsSecret .) }}
{{- end }}
{{- end }}

{{- $port := include "workshop.servicePort" . }}
{{- if not $port }}
{{- fail "jupyterhub.hub.service.extraPorts needs an entry named `workshop` with the workshop service's port (e.g. 10101): the proxy reaches the service through the hub Service" }}
{{- end }}
{{- if ne (toString (dig "networkPolicy" "enabled" true $hub)) "false" }}
{{- $allowed := false }}
{{- range (dig "networkPolicy" "ingress" list $hub) }}
{{- range (.ports | default list) }}
{{- if eq (toString .port) $port }}{{ $allowed = true }}{{ end }}
{{- end }}
{{- end }}
{{- if not $allowed }}
{{- fail (printf "jupyterhub.hub.networkPolicy.ingress has no rule for port %s: the proxy could not reach the workshop service and its Services-menu link would fail" $port) }}
{{- end }}
{{- end }}

{{- $db := $ws.service.database }}
{{- if $db.existingSecret }}
{{- $dbSecret := include "workshop.databaseSecretName" . }}
{{- if ne $db.existingSecret $dbSecret }}
{{- fail (printf "workshop.service.database.existingSecret is %q but the hub reads WORKSHOP_DB_URL from the Secret %q (jupyterhub.hub.extraEnv.WORKSHOP_DB_URL): name your Secret %q, or change that reference" $db.existingSecret $dbSecret $dbSecret) }}
{{- end }}
{{- end }}
{{- if and $db.url (not (include "workshop.databaseSecretName" .)) }}
{{- fail "workshop.service.database.url needs jupyterhub.hub.extraEnv.WORKSHOP_DB_URL (valueFrom.secretKeyRef) to bring it to the hub" }}
{{- end }}
{{- $hubDb := dig "db" "type" "sqlite-pvc" $hub }}
{{- if and (ne $hubDb "sqlite-pvc") (not (or $db.url $db.existingSecret)) }}
{{- fail (printf "jupyterhub.hub.db.type is %q, so the hub has no persistent /srv/jupyterhub for the workshop service's SQLite usage records: set workshop.service.database (url or existingSecret)" $hubDb) }}
{{- end }}

{{- include "workshop.checkHubCommand" . }}
{{- include "workshop.checkPostStart" . }}
{{- include "workshop.checkPrewarm" . }}
{{- end }}

{{- /*
  The hub must load z2jh's jupyterhub_config.py: it is what loads the workshop configuration
  from jupyterhub_config.d/, so without it the hub starts with neither z2jh's settings nor the
  workshop's (no card logins, no workshop spawner or service). The check reads the command
  line Kubernetes will run: hub.command (else the image's `tini --`), then hub.args (else
  z2jh's default). A shell given -c runs only the string after it (plus its positional
  arguments where that string says "$@"), so the config flag must be in that string. The last
  config flag wins, as in jupyterhub.
*/}}
{{- define "workshop.checkHubCommand" -}}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $config := "/usr/local/etc/jupyterhub/jupyterhub_config.py" }}
{{- $argv := list }}
{{- range concat ($hub.command | default (list "tini" "--")) ($hub.args | default (list "jupyterhub" "--config" $config)) }}
{{- $argv = append $argv (toString .) }}
{{- end }}
{{- $shellAt := -1 }}
{{- $scriptAt := -1 }}
{{- $inOptions := false }}
{{- range $i, $arg := $argv }}
{{- if $inOptions }}
{{- if and (hasPrefix "-" $arg) (not (hasPrefix "--" $arg)) }}
{{- if and (contains "c" $arg) (lt $scriptAt 0) }}{{ $scriptAt = add1 $i }}{{ end }}
{{- else }}
{{- $inOptions = false }}
{{- end }}
{{- else if and (lt $shellAt 0) (has (base $arg) (list "sh" "bash" "dash" "ash" "zsh" "ksh")) }}
{{- $shellAt = $i }}
{{- $inOptions = true }}
{{- end }}
{{- end }}
{{- $text := join " " $argv }}
{{- $where := "" }}
{{- if ge $scriptAt 0 }}
{{- $script := "" }}
{{- if lt $scriptAt (len $argv) }}{{ $script = index $argv $scriptAt }}{{ end }}
{{- $text = $script }}
{{- if and (regexMatch "\\$(@|\\{@\\}|\\*)" $script) (lt (add1 $scriptAt) (len $argv)) }}
{{- $text = printf "%s %s" $script (join " " (slice $argv (add $scriptAt 2))) }}
{{- end }}
{{- $where = printf " (the shell %s runs only the string after -c: %s)" (index $argv $shellAt) (toJson $script) }}
{{- end }}
{{- $flag := "(^|\\s)(--config|-f|--JupyterHub\\.config_file)(=|\\s+)" }}
{{- $found := regexFindAll (printf "%s[^\\s;&|]+" $flag) $text -1 }}
{{- $loaded := "" }}
{{- with $found }}
{{- $loaded = regexReplaceAll (printf "^%s" $flag) (last .) "" | trimAll "\"'" }}
{{- end }}
{{- if ne $loaded $config }}
{{- $problem := printf "it loads %s instead" $loaded }}
{{- if not $loaded }}
{{- $problem = "it passes jupyterhub no --config, so jupyterhub reads ./jupyterhub_config.py in /srv/jupyterhub instead" }}
{{- end }}
{{- fail (printf "jupyterhub.hub.command and jupyterhub.hub.args would start the hub as %s%s: %s of z2jh's %s, which loads the workshop configuration from jupyterhub_config.d/ — without it the hub runs with none of the workshop. Keep --config %s in the jupyterhub command line (for a shell wrapper, inside the string after -c), or leave hub.command and hub.args unset and add settings with jupyterhub.hub.extraConfig" (toJson $argv) $where $problem $config $config) }}
{{- end }}
{{- end }}

{{- /*
  Kubernetes runs one postStart handler per container. The workshop spawner's runs the home
  setup, then the operator's exec command (its failure logged, not fatal); any other kind of
  handler cannot run beside it. The spawner refuses it at spawn; the chart refuses the values
  it can see, before anyone's server fails.
*/}}
{{- define "workshop.checkPostStart" -}}
{{- $jh := .Values.jupyterhub | default dict }}
{{- $hub := include "workshop.hubValues" . | fromYaml }}
{{- $sources := list (list "jupyterhub.singleuser.lifecycleHooks" (dig "singleuser" "lifecycleHooks" dict $jh)) }}
{{- range list "KubeSpawner" "WorkshopKubeSpawner" }}
{{- $sources = append $sources (list (printf "jupyterhub.hub.config.%s.lifecycle_hooks" .) (dig "config" . "lifecycle_hooks" dict $hub)) }}
{{- end }}
{{- range $sources }}
{{- $name := index . 0 }}
{{- $hooks := index . 1 | default dict }}
{{- if kindIs "map" $hooks }}
{{- range $key := list "postStart" "post_start" }}
{{- $hook := get $hooks $key }}
{{- if $hook }}
{{- $command := list }}
{{- $ok := and (kindIs "map" $hook) (eq (keys $hook | join ",") "exec") }}
{{- if $ok }}
{{- $exec := get $hook "exec" }}
{{- $ok = and (kindIs "map" $exec) (kindIs "slice" (get $exec "command")) }}
{{- if $ok }}{{ $command = get $exec "command" }}{{ end }}
{{- end }}
{{- range $command }}{{ if not (kindIs "string" .) }}{{ $ok = false }}{{ end }}{{ end }}
{{- if or (not $ok) (not $command) }}
{{- fail (printf "%s.%s is %s: the workshop spawner's postStart hook runs the home setup and then an exec command of yours (a failure of it is logged, not fatal), so give %s.%s.exec.command as a list [program, args...]; an httpGet, tcpSocket or sleep handler cannot run beside it" $name $key (toJson $hook) $name $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /*
  Pre-warm (workshop.prewarm): node-sized placeholder pods in the Deployment the workshop
  service scales, at a priority below user pods', scheduled where user pods go. z2jh's names
  (the hub's service account, the user scheduler) come from z2jh's own name templates, which
  it lets a parent chart call; its values are read from .Values.jupyterhub, where Helm has
  merged them with z2jh's defaults.
*/}}

{{- /* The placeholder Deployment; the service gets its name as wiring.prewarmDeployment */}}
{{- define "workshop.prewarmName" -}}
workshop-prewarm
{{- end }}

{{- /* The placeholders' PriorityClass: cluster-scoped, so named after namespace and release */}}
{{- define "workshop.prewarmPriorityClassName" -}}
{{- printf "%s-%s-prewarm" .Release.Namespace .Release.Name }}
{{- end }}

{{- /* z2jh's hub ServiceAccount (the identity of the hub pod, and of the service inside it) */}}
{{- define "workshop.hubServiceAccount" -}}
{{- $account := dig "hub" "serviceAccount" dict (.Values.jupyterhub | default dict) }}
{{- if $account.create }}
{{- $account.name | default (printf "%shub" (include "jupyterhub.fullname.dash" .)) }}
{{- else }}
{{- $account.name | default "default" }}
{{- end }}
{{- end }}

{{- /* User pods' priority: z2jh's default-priority class with podPriority.enabled, else none (0) */}}
{{- define "workshop.userPodPriority" -}}
{{- $podPriority := dig "scheduling" "podPriority" dict (.Values.jupyterhub | default dict) }}
{{- if $podPriority.enabled }}{{ int64 ($podPriority.defaultPriority | default 0) }}{{ else }}0{{ end }}
{{- end }}

{{- /*
  A placeholder's requests, as JSON: a whole node's users, workshop.service.usersPerNode x
  jupyterhub.singleuser.cpu.guarantee and .memory.guarantee (KubeSpawner reads memory as bytes
  or a number with K, M, G, T, powers of 1024, and truncates to whole bytes); {"problems": [...]}
  naming what is missing or unreadable.
*/}}
{{- define "workshop.prewarmRequests" -}}
{{- $jh := .Values.jupyterhub | default dict }}
{{- $users := int64 (dig "service" "usersPerNode" 0 .Values.workshop | default 0) }}
{{- $cpu := dig "singleuser" "cpu" "guarantee" "" $jh }}
{{- $memory := dig "singleuser" "memory" "guarantee" "" $jh }}
{{- $problems := list }}
{{- if lt $users 1 }}
{{- $problems = append $problems "workshop.service.usersPerNode is 0: set how many users' guarantees fit on one node (`jupyterhub-workshop plan` prints it)" }}
{{- end }}
{{- $milliPerUser := 0 }}
{{- if and (or (kindIs "float64" $cpu) (kindIs "int64" $cpu) (kindIs "int" $cpu)) (gt (float64 $cpu) 0.0) }}
{{- $milliPerUser = ceil (round (mulf $cpu 1000) 3) | int64 }}
{{- else if or (kindIs "invalid" $cpu) (and (kindIs "string" $cpu) (not $cpu)) }}
{{- $problems = append $problems "jupyterhub.singleuser.cpu.guarantee is not set: set the cores each user is guaranteed, e.g. 1.75" }}
{{- else }}
{{- $problems = append $problems (printf "jupyterhub.singleuser.cpu.guarantee is %s: it must be more than 0 cores" (toJson $cpu)) }}
{{- end }}
{{- $bytesPerUser := 0 }}
{{- $units := dict "K" 1024 "M" 1048576 "G" 1073741824 "T" 1099511627776 }}
{{- if and (or (kindIs "float64" $memory) (kindIs "int64" $memory) (kindIs "int" $memory)) (gt (float64 $memory) 0.0) }}
{{- $bytesPerUser = floor $memory | int64 }}
{{- else if and (kindIs "string" $memory) (regexMatch "^[0-9]+(\\.[0-9]+)?[KMGT]$" $memory) }}
{{- $bytesPerUser = floor (mulf (regexFind "^[0-9.]+" $memory) (get $units (trimPrefix (regexFind "^[0-9.]+" $memory) $memory))) | int64 }}
{{- end }}
{{- if or (kindIs "invalid" $memory) (and (kindIs "string" $memory) (not $memory)) }}
{{- $problems = append $problems "jupyterhub.singleuser.memory.guarantee is not set: set the memory each user is guaranteed, e.g. 7G" }}
{{- else if lt $bytesPerUser 1 }}
{{- $problems = append $problems (printf "jupyterhub.singleuser.memory.guarantee is %s: give bytes or a number with K, M, G or T (KubeSpawner's units, powers of 1024), e.g. 7G" (toJson $memory)) }}
{{- end }}
{{- if $problems }}
{{- dict "problems" $problems | toJson }}
{{- else }}
{{- $milli := mul $users $milliPerUser }}
{{- $bytes := mul $users $bytesPerUser }}
{{- $cpuText := ternary (printf "%d" (div $milli 1000)) (printf "%dm" $milli) (eq (mod $milli 1000) 0) }}
{{- $memoryText := printf "%d" $bytes }}
{{- range list (list 1099511627776 "Ti") (list 1073741824 "Gi") (list 1048576 "Mi") (list 1024 "Ki") }}
{{- if and (eq $memoryText (printf "%d" $bytes)) (eq (mod $bytes (index . 0)) 0) }}
{{- $memoryText = printf "%d%s" (div $bytes (index . 0)) (index . 1) }}
{{- end }}
{{- end }}
{{- dict "cpu" $cpuText "memory" $memoryText | toJson }}
{{- end }}
{{- end }}

{{- /*
  The affinity z2jh gives user pods (what KubeSpawner receives from its jupyterhub_config.py):
  singleuser.extraNodeAffinity, then the node-purpose term of
  scheduling.userPods.nodeAffinity.matchNodePurpose (require or prefer), and
  singleuser.extraPodAffinity and extraPodAntiAffinity. As YAML; "" when there is none.
*/}}
{{- define "workshop.userAffinity" -}}
{{- $jh := .Values.jupyterhub | default dict }}
{{- $purpose := dig "scheduling" "userPods" "nodeAffinity" "matchNodePurpose" "" $jh }}
{{- $userNodes := dict "matchExpressions" (list (dict "key" "hub.jupyter.org/node-purpose" "operator" "In" "values" (list "user"))) }}
{{- $required := dig "singleuser" "extraNodeAffinity" "required" list $jh | default list }}
{{- $preferred := dig "singleuser" "extraNodeAffinity" "preferred" list $jh | default list }}
{{- if eq $purpose "require" }}{{ $required = append $required $userNodes }}{{ end }}
{{- if eq $purpose "prefer" }}{{ $preferred = append $preferred (dict "weight" 100 "preference" $userNodes) }}{{ end }}
{{- $affinity := dict }}
{{- $nodeAffinity := dict }}
{{- with $required }}{{ $_ := set $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution" (dict "nodeSelectorTerms" .) }}{{ end }}
{{- with $preferred }}{{ $_ := set $nodeAffinity "preferredDuringSchedulingIgnoredDuringExecution" . }}{{ end }}
{{- with $nodeAffinity }}{{ $_ := set $affinity "nodeAffinity" . }}{{ end }}
{{- range $kind, $key := dict "podAffinity" "extraPodAffinity" "podAntiAffinity" "extraPodAntiAffinity" }}
{{- $terms := dict }}
{{- with dig "singleuser" $key "required" list $jh }}{{ $_ := set $terms "requiredDuringSchedulingIgnoredDuringExecution" . }}{{ end }}
{{- with dig "singleuser" $key "preferred" list $jh }}{{ $_ := set $terms "preferredDuringSchedulingIgnoredDuringExecution" . }}{{ end }}
{{- with $terms }}{{ $_ := set $affinity $kind . }}{{ end }}
{{- end }}
{{- with $affinity }}{{ toYaml . }}{{ end }}
{{- end }}

{{- /*
  Pre-warm needs what it is built from, and a user's pod must outrank every placeholder: a
  placeholder at the user pods' priority or above would not be preempted, and the user would
  wait for a new node beside a warm one.
*/}}
{{- define "workshop.checkPrewarm" -}}
{{- $ws := .Values.workshop }}
{{- $jh := .Values.jupyterhub | default dict }}
{{- $prewarm := $ws.prewarm | default dict }}
{{- if $prewarm.enabled }}
{{- if not (dig "schedule" "sessions" list $ws) }}
{{- fail "workshop.prewarm.enabled is true but workshop.schedule has no sessions: the workshop service keeps nodes warm before each session of the schedule. Give workshop.schedule (timeZone, sessions), or set workshop.prewarm.enabled to false" }}
{{- end }}
{{- $requests := include "workshop.prewarmRequests" . | fromJson }}
{{- with $requests.problems }}
{{- fail (printf "workshop.prewarm.enabled is true, and each placeholder reserves a whole node's users, workshop.service.usersPerNode x the guarantees in jupyterhub.singleuser: %s" (join "; " .)) }}
{{- end }}
{{- $priority := int64 $prewarm.priority }}
{{- $userPriority := int64 (include "workshop.userPodPriority" .) }}
{{- if ge $priority $userPriority }}
{{- $source := "jupyterhub.scheduling.podPriority.enabled is false, so user pods have no priority class: 0" }}
{{- if dig "scheduling" "podPriority" "enabled" false $jh }}
{{- $source = printf "jupyterhub.scheduling.podPriority.defaultPriority, with podPriority.enabled: %d" $userPriority }}
{{- end }}
{{- fail (printf "workshop.prewarm.priority is %d, not below the user pods' priority (%s): a user's pod must outrank the placeholders to preempt them at once, or it waits for a new node beside a warm one. Set workshop.prewarm.priority below %d (and at or above your cluster autoscaler's expendable-pods priority cutoff, -10 by default and on GKE)" $priority $source $userPriority) }}
{{- end }}
{{- end }}
{{- end }}

{{- /*
  The archive Job (workshop.archive): the claims it mounts, as {"claims": [...], "static": bool,
  "homes": DIR, "problems": [...]}. Dynamic homes: workshop.archive.claims, else every home
  claim (KubeSpawner's label component=singleuser-storage) Helm's lookup finds in the namespace
  (none under `helm template`: the Job then refuses, naming the claims it did not get). Static
  homes: the one claim, its per-user directories under the part of subPath before {username}.
*/}}
{{- define "workshop.archivePlan" -}}
{{- $ws := .Values.workshop }}
{{- $archive := $ws.archive | default dict }}
{{- $type := dig "storage" "type" "dynamic" $ws }}
{{- $problems := list }}
{{- if and $archive.pvcName $archive.url }}
{{- $problems = append $problems "give workshop.archive.pvcName or workshop.archive.url, not both: one place holds the archives and their manifest" }}
{{- else if not (or $archive.pvcName $archive.url) }}
{{- $problems = append $problems "workshop.archive.enabled needs a destination: workshop.archive.pvcName (an existing claim) or workshop.archive.url (s3://bucket/prefix)" }}
{{- end }}
{{- if and $archive.endpointUrl (not $archive.url) }}
{{- $problems = append $problems "workshop.archive.endpointUrl is for an S3 destination: give workshop.archive.url too" }}
{{- end }}
{{- $claims := list }}
{{- $homes := "/homes" }}
{{- if eq $type "none" }}
{{- $problems = append $problems "workshop.storage.type is none: homes are the containers' own disks, gone when servers stop; there is nothing to archive" }}
{{- else if eq $type "static" }}
{{- $subPath := dig "storage" "static" "subPath" "{username}" $ws }}
{{- $prefix := trimSuffix "{username}" $subPath }}
{{- if or (not (hasSuffix "{username}" $subPath)) (and $prefix (not (hasSuffix "/" $prefix))) (contains "{" $prefix) }}
{{- $problems = append $problems (printf "workshop.storage.static.subPath is %q: the archive Job finds homes as the directories of one folder, so it must end in /{username} (or be {username})" $subPath) }}
{{- end }}
{{- $claims = list (dig "storage" "static" "pvcName" "" $ws) }}
{{- $homes = printf "/homes/%s/%s" (index $claims 0) $prefix | trimSuffix "/" }}
{{- else }}
{{- $claims = $archive.claims | default list }}
{{- if not $claims }}
{{- $found := lookup "v1" "PersistentVolumeClaim" .Release.Namespace "" }}
{{- range ($found.items | default list) }}
{{- if eq (dig "metadata" "labels" "component" "" .) "singleuser-storage" }}
{{- $claims = append $claims .metadata.name }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if has $archive.pvcName $claims }}
{{- $problems = append $problems (printf "workshop.archive.pvcName %q is also a home claim: archive to a claim of its own" $archive.pvcName) }}
{{- end }}
{{- dict "claims" (sortAlpha $claims) "static" (eq $type "static") "homes" $homes "problems" $problems | toJson }}
{{- end }}
