#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Helm chart against the real kube-apiserver: lint and schema refusals, server-side dry runs,
# a real `helm install` (every object checked), the CRD copy, least-privilege RBAC probed with
# `kubectl auth can-i`, and the proof that the RBAC is enough: the controller binary, run outside
# the cluster with a token of the chart's ServiceAccount and the chart's rendered config, drives
# crd/samples/hello-python.yaml to Succeeded (pods played by the fake kubelet), in both the
# cluster-wide (ClusterRole) and the one-namespace (Role) modes.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

chart=$AIT_SOURCE_DIR/charts/aitask-operator
rand() { head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
rel=chart-$(rand)      # cluster-wide release
rel2=chartns-$(rand)   # release scoped to one namespace
RELEASES=()

chart_cleanup() {
    local r
    for r in "${RELEASES[@]}"; do
        helm uninstall "${r#*/}" -n "${r%%/*}" --wait=false >/dev/null 2>&1 || true
    done
    t_cleanup
}
trap chart_cleanup EXIT

relns=$(new_namespace chart-rel)
relns2=$(new_namespace chart-rel2)
userns=$(new_namespace chart-user)
watchns=$(new_namespace chart-watch)
kubectl label namespace "$relns" "$relns2" pod-security.kubernetes.io/warn=restricted \
    pod-security.kubernetes.io/warn-version=latest >/dev/null
full=$rel-aitask-operator
full2=$rel2-aitask-operator
sa="system:serviceaccount:$relns:$full"
sa2="system:serviceaccount:$relns2:$full2"

# ---------------------------------------------------------------- lint and the values schema
check "helm lint --strict passes" helm lint --strict "$chart"
refused() { # --set VALUE, expected schema path: helm lint and helm template both refuse it
    local out
    out=$(helm lint "$chart" --set "$1" 2>&1) && return 1
    grep -q "don't meet the specifications of the schema" <<<"$out" || return 1
    grep -q "at '$2'" <<<"$out" || { echo "$out" | head -5; return 1; }
    ! helm template x "$chart" --set "$1" >/dev/null 2>&1
}
check "schema refuses replicaCount=0" refused replicaCount=0 /replicaCount
check "schema refuses an unknown top-level key" refused surprise=1 ""
check "schema refuses a bad pullPolicy" refused image.pullPolicy=Sometimes /image/pullPolicy
check "schema refuses an invalid watchNamespace" refused watchNamespace=Bad_NS /watchNamespace
check "schema refuses root sandbox pods (runAsUser 0)" \
    refused config.defaults.runAsUser=0 /config/defaults/runAsUser
check "schema refuses an unknown provider type" \
    refused 'config.providers[0].name=x,config.providers[0].type=bogus' /config/providers/0/type
check "schema refuses a provider with both apiKeyFile and vaultPath" \
    refused 'config.providers[0].name=x,config.providers[0].type=openai,config.providers[0].apiKeyFile=/k,config.providers[0].vaultPath=a/b' \
    /config/providers/0
check "schema refuses a malformed memory quantity" refused resources.limits.memory=lots \
    /resources/limits/memory
check "schema refuses 2 replicas without leader election" \
    refused replicaCount=2,leaderElection.enabled=false /leaderElection/enabled
check "schema refuses an audit endpoint without a key file" \
    refused config.audit.etcdEndpoint=https://etcd:2379 /config/audit/keyFile
check "a good non-default value set is accepted" \
    helm lint --strict "$chart" --set replicaCount=1,leaderElection.enabled=false,watchNamespace=team-a,config.budgets.dailyUSD=25.00

# ---------------------------------------------------------------- rendering and dry runs
helm template "$rel" "$chart" -n "$relns" >"$T_TMP/default.yaml"
check "default render is accepted by the API server (--dry-run=server)" \
    kubectl apply --dry-run=server -f "$T_TMP/default.yaml"
helm template "$rel2" "$chart" -n "$relns2" --set watchNamespace="$watchns" >"$T_TMP/scoped.yaml"
check "watchNamespace render is accepted by the API server (--dry-run=server)" \
    kubectl apply --dry-run=server -f "$T_TMP/scoped.yaml"
kinds() { python3 -c 'import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print(" ".join(sorted(d["kind"] + "/" + d["metadata"].get("namespace", "-") for d in docs)))' "$1"; }
check "watchNamespace: a Role in the watched namespace, no controller ClusterRole" \
    test "$(kinds "$T_TMP/scoped.yaml")" = "ClusterRole/- ClusterRole/- ConfigMap/$relns2 ConfigMap/$relns2 Deployment/$relns2 PodDisruptionBudget/$relns2 Role/$relns2 Role/$watchns RoleBinding/$relns2 RoleBinding/$watchns Service/$relns2 ServiceAccount/$relns2"

# Monitoring on: the Prometheus Operator CRDs are not in this cluster, so the built-in kinds go
# through --dry-run=client and the ServiceMonitor/PrometheusRule are checked as objects here.
helm template "$rel" "$chart" -n "$relns" --set monitoring.serviceMonitor.enabled=true \
    --set monitoring.prometheusRule.enabled=true >"$T_TMP/mon.yaml"
python3 - "$T_TMP/mon.yaml" "$T_TMP" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
mon = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
core = [d for d in docs if d not in mon]
yaml.safe_dump_all(core, open(sys.argv[2] + "/mon-core.yaml", "w"))
yaml.safe_dump_all(mon, open(sys.argv[2] + "/mon-crs.yaml", "w"))
PY
check "monitoring render: built-in kinds pass kubectl apply --dry-run=client" \
    kubectl apply --dry-run=client -f "$T_TMP/mon-core.yaml"
check "monitoring render: ServiceMonitor and PrometheusRule parse as Kubernetes objects (kubectl --local)" \
    test "$(kubectl label --local -f "$T_TMP/mon-crs.yaml" checked=true -o name | sort | tr '\n' ' ')" = \
    "prometheusrule.monitoring.coreos.com/$full servicemonitor.monitoring.coreos.com/$full "
monitoring_ok() {
    python3 - "$T_TMP/mon.yaml" "$chart/files/prometheus-rules.yaml" "$T_TMP/rules.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {d["kind"]: d for d in docs}
sm, pr, svc = by["ServiceMonitor"], by["PrometheusRule"], by["Service"]
assert sm["apiVersion"] == pr["apiVersion"] == "monitoring.coreos.com/v1"
sel = sm["spec"]["selector"]["matchLabels"]
assert all(svc["metadata"]["labels"].get(k) == v for k, v in sel.items()), "selector misses Service"
ports = [p["name"] for p in svc["spec"]["ports"]]
assert [e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"] and "metrics" in ports
assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
assert sm["spec"]["namespaceSelector"]["matchNames"] == [svc["metadata"]["namespace"]]
assert "aitask" in svc["metadata"]["name"], "rules select jobs named *aitask*"
want = yaml.safe_load(open(sys.argv[2]))["groups"]
assert pr["spec"]["groups"] == want, "PrometheusRule groups differ from files/prometheus-rules.yaml"
assert len(want) > 0
yaml.safe_dump({"groups": pr["spec"]["groups"]}, open(sys.argv[3], "w"))
PY
}
check "ServiceMonitor selects the metrics Service port; PrometheusRule holds the rule file's groups" \
    monitoring_ok
check "the PrometheusRule's groups pass promtool check rules" promtool check rules "$T_TMP/rules.yaml"
check "without the flags no ServiceMonitor or PrometheusRule is rendered" \
    test "$(grep -c 'monitoring.coreos.com' "$T_TMP/default.yaml")" = 0

# ---------------------------------------------------------------- the CRD copy
check "crds/ equals crd/ (hack/crd-check.sh)" bash "$AIT_SOURCE_DIR/hack/crd-check.sh"

# ---------------------------------------------------------------- helm install
check "helm install (cluster-wide) succeeds" helm install "$rel" "$chart" -n "$relns"
RELEASES+=("$relns/$rel")
check "helm install (watchNamespace) succeeds" helm install "$rel2" "$chart" -n "$relns2" \
    --set watchNamespace="$watchns" --set rbac.aggregateToDefaultRoles=false \
    --set replicaCount=1 --set leaderElection.enabled=true
RELEASES+=("$relns2/$rel2")
check "helm status: deployed" test "$(helm status "$rel" -n "$relns" -o json | jq -r .info.status)" = deployed
check "the AITask CRD is established" \
    wait_crd aitasks.aitask.dev Established 30
for obj in "serviceaccount/$full" "configmap/$full-config" "configmap/$full-dashboard" \
    "deployment/$full" "service/$full-metrics" "poddisruptionbudget/$full" "role/$full-leader-election" \
    "rolebinding/$full-leader-election"; do
    check "installed: $obj in $relns" kubectl get -n "$relns" "$obj"
done
for obj in "clusterrole/$full-controller" "clusterrolebinding/$full-controller" \
    "clusterrole/$full-edit" "clusterrole/$full-view"; do
    check "installed: $obj" kubectl get "$obj"
done
check "installed (scoped): role and rolebinding in the watched namespace" \
    kubectl get -n "$watchns" "role/$full2-controller" "rolebinding/$full2-controller"
check "installed (scoped): no controller ClusterRole; one replica, so no PodDisruptionBudget" \
    test "$(kubectl get clusterrole "$full2-controller" -o name 2>/dev/null)$(kubectl get pdb -n "$relns2" -o name)" = ""
dep=$(kubectl get deployment -n "$relns" "$full" -o json)
# The pod template under "restricted" enforcement: a Pod made from it is admitted (dry run).
python3 - "$T_TMP/default.yaml" >"$T_TMP/pod.yaml" <<'PY'
import sys, yaml
dep = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment")
t = dep["spec"]["template"]
print(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "chart-template-probe", "labels": t["metadata"]["labels"]},
                      "spec": t["spec"]}))
PY
check "the controller's pod template is admitted in a restricted namespace" \
    kubectl apply --dry-run=server -n "$relns" -f "$T_TMP/pod.yaml"

check "the Deployment's 2 pods are created and admitted under restricted enforcement" \
    wait_for 30 test "$(kubectl get pods -n "$relns" -l app.kubernetes.io/instance="$rel" -o name | wc -l)" = 2
check "deployment: 2 replicas, --leader-elect=true, Lease in the release namespace" \
    test "$(jq -r '[.spec.replicas, (.spec.template.spec.containers[0].args|index("--leader-elect=true")!=null), (.spec.template.spec.containers[0].args|index("--leader-election-namespace='"$relns"'")!=null)]|join(",")' <<<"$dep")" = "2,true,true"
check "deployment: runAsNonRoot, user 65532, seccomp RuntimeDefault" \
    test "$(jq -r '.spec.template.spec.securityContext|[.runAsNonRoot,.runAsUser,.seccompProfile.type]|join(",")' <<<"$dep")" = "true,65532,RuntimeDefault"
check "deployment: read-only root, no privilege escalation, all capabilities dropped" \
    test "$(jq -r '.spec.template.spec.containers[0].securityContext|[.readOnlyRootFilesystem,.allowPrivilegeEscalation,(.capabilities.drop|join("+"))]|join(",")' <<<"$dep")" = "true,false,ALL"
check "deployment: liveness /healthz, readiness /readyz, resources, POD_NAME from the downward API" \
    test "$(jq -r '.spec.template.spec.containers[0]|[.livenessProbe.httpGet.path,.readinessProbe.httpGet.path,(.resources.limits.memory!=null),(.env[]|select(.name=="POD_NAME").valueFrom.fieldRef.fieldPath)]|join(",")' <<<"$dep")" = "/healthz,/readyz,true,metadata.name"
check "deployment: config mounted at /etc/aitask/config.yaml and passed with --config" \
    test "$(jq -r '.spec.template.spec.containers[0]|[(.volumeMounts[]|select(.name=="config").mountPath),(.args|index("--config=/etc/aitask/config.yaml")!=null)]|join(",")' <<<"$dep")" = "/etc/aitask/config.yaml,true"
check "dashboard ConfigMap: label grafana_dashboard=1 and the dashboard JSON" \
    test "$(kubectl get cm -n "$relns" "$full-dashboard" -o json | jq -r '.metadata.labels.grafana_dashboard + "," + (.data["aitask-operator.json"]|fromjson|.uid)')" = \
    "1,$(jq -r .uid "$chart/files/dashboard.json")"
check "no object of the release carries a Secret's value (no Secret rendered)" \
    test "$(helm get manifest "$rel" -n "$relns" | grep -c '^kind: Secret')" = 0

# ---------------------------------------------------------------- least privilege
can() { [[ $(kubectl auth can-i "$@" 2>/dev/null) == yes ]]; }
cannot() { [[ $(kubectl auth can-i "$@" 2>/dev/null) == no ]]; }
check "SA may create pods in a user namespace" can create pods -n "$userns" --as "$sa"
check "SA may update aitasks/status" can update aitasks.aitask.dev --subresource=status -n "$userns" --as "$sa"
check "SA may watch aitasks cluster-wide" can watch aitasks.aitask.dev --all-namespaces --as "$sa"
check "SA may create, get and delete (ephemeral) secrets" \
    eval 'can create secrets -n "$userns" --as "$sa" && can get secrets -n "$userns" --as "$sa" && can delete secrets -n "$userns" --as "$sa"'
check "SA may create leases in the release namespace" can create leases.coordination.k8s.io -n "$relns" --as "$sa"
check "SA may NOT list secrets cluster-wide" cannot list secrets --all-namespaces --as "$sa"
check "SA may NOT list secrets in a namespace" cannot list secrets -n "$userns" --as "$sa"
check "SA may NOT watch secrets" cannot watch secrets -n "$userns" --as "$sa"
check "SA may NOT delete nodes" cannot delete nodes --as "$sa"
check "SA may NOT create leases in another namespace" cannot create leases.coordination.k8s.io -n "$userns" --as "$sa"
check "SA may NOT create clusterroles" cannot create clusterroles.rbac.authorization.k8s.io --as "$sa"
check "SA may NOT delete aitasks" cannot delete aitasks.aitask.dev -n "$userns" --as "$sa"
check "SA may NOT create serviceaccount tokens" cannot create serviceaccounts --subresource=token -n "$userns" --as "$sa"
check "SA may NOT update pods" cannot update pods -n "$userns" --as "$sa"
check "scoped SA may create pods in the watched namespace" can create pods -n "$watchns" --as "$sa2"
check "scoped SA may NOT create pods in another namespace" cannot create pods -n "$userns" --as "$sa2"
check "scoped SA may NOT list aitasks cluster-wide" cannot list aitasks.aitask.dev --all-namespaces --as "$sa2"
check "scoped SA may create leases only in its release namespace" \
    eval 'can create leases.coordination.k8s.io -n "$relns2" --as "$sa2" && cannot create leases.coordination.k8s.io -n "$relns" --as "$sa2"'
kubectl create rolebinding chart-edit -n "$userns" --clusterrole=edit --user=chart-user >/dev/null
check "aggregated ClusterRole: the built-in edit role now covers AITasks" \
    wait_for 20 can create aitasks.aitask.dev -n "$userns" --as chart-user

# ---------------------------------------------------------------- the controller with the SA's token
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
sa_kubeconfig() { # RELNS SA-NAME FILE
    local token
    token=$(kubectl create token "$2" -n "$1" --duration=1h) || return 1
    cat >"$3" <<KC
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "$server", certificate-authority: "$AIT_CLUSTER_DIR/pki/ca.crt"}
users:
- name: u
  user: {token: "$token"}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
KC
    chmod 600 "$3"
}
run_sample() { # NAME RELNS RELEASE-FULLNAME TASK-NS: controller with the SA's token, sample to Succeeded
    local name=$1 rns=$2 fn=$3 tns=$4
    sa_kubeconfig "$rns" "$fn" "$T_TMP/$name.kubeconfig" || return 1
    kubectl get cm -n "$rns" "$fn-config" -o jsonpath='{.data.config\.yaml}' >"$T_TMP/$name.config.yaml"
    [[ -s $T_TMP/$name.config.yaml ]] || return 1
    POD_NAME=$name-pod "$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$T_TMP/$name.kubeconfig" \
        --config "$T_TMP/$name.config.yaml" --namespace "$tns" --leader-elect=true \
        --leader-election-namespace "$rns" --metrics-bind-address 127.0.0.1:0 \
        --health-probe-bind-address 127.0.0.1:0 -v 2 >>"$T_TMP/$name.log" 2>&1 &
    T_PIDS+=($!)
    start_kubelet "$tns"
    kubectl apply -n "$tns" -f "$AIT_SOURCE_DIR/crd/samples/hello-python.yaml" >/dev/null
}
# The cluster-wide release's controller is scoped with --namespace so it cannot touch the tasks of
# tests running beside this one; its RBAC is still the ClusterRole.
run_sample wide "$relns" "$full" "$userns"
run_sample scoped "$relns2" "$full2" "$watchns"
check "cluster-wide RBAC: hello-python reaches Succeeded" \
    kubectl wait -n "$userns" --for=condition=Succeeded aitask/hello-python --timeout=90s
check "namespace RBAC: hello-python reaches Succeeded" \
    kubectl wait -n "$watchns" --for=condition=Succeeded aitask/hello-python --timeout=90s
check "the output is the program's" \
    eval '[[ $(jp "$userns" hello-python "{.status.result.output}") == "hello from AITask on Python "* ]]'
check "the controller held the Lease in the release namespace as its POD_NAME" \
    eval '[[ $(kubectl get lease -n "$relns" aitask-operator-leader -o jsonpath="{.spec.holderIdentity}") == wide-pod_* ]]'
check "the scoped controller held its own Lease" \
    eval '[[ $(kubectl get lease -n "$relns2" aitask-operator-leader -o jsonpath="{.spec.holderIdentity}") == scoped-pod_* ]]'
check "the API server's audit log shows the pod created by the chart's ServiceAccount" \
    test "$(jq -c --arg ns "$userns" --arg u "$sa" 'select(.verb=="create" and .objectRef.resource=="pods" and .objectRef.namespace==$ns and .user.username==$u and .responseStatus.code==201)' "$AIT_CLUSTER_DIR/audit.log" 2>/dev/null | wc -l)" -ge 1
check "Events were written with the SA's token" \
    wait_for 20 test "$(kubectl get events.events.k8s.io -n "$userns" -o json | jq '[.items[]|select(.reason=="Succeeded")]|length')" -ge 1
check "no 'forbidden' in the controller logs" \
    eval '! grep -qi forbidden "$T_TMP/wide.log" "$T_TMP/scoped.log"'
if ((T_FAIL > 0)); then
    echo "--- controller log (cluster-wide), last lines:"
    tail -20 "$T_TMP/wide.log"
    echo "--- controller log (scoped), last lines:"
    tail -20 "$T_TMP/scoped.log"
fi

# ---------------------------------------------------------------- uninstall
for p in "${T_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
check "helm uninstall removes the cluster-wide release" helm uninstall "$rel" -n "$relns" --wait
check "helm uninstall removes the scoped release" helm uninstall "$rel2" -n "$relns2" --wait
RELEASES=()
check "uninstall removed the ClusterRole and ClusterRoleBinding" \
    test "$(kubectl get clusterrole,clusterrolebinding -o name | grep -c -- "$full-")" = 0
check "uninstall kept the CRD (Helm never deletes crds/)" kubectl get crd aitasks.aitask.dev

t_finish
