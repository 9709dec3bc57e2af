#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prometheus scraping the controller: Debian's real prometheus (hack/prometheus.sh) scrapes the
# real controller every second under a job named like the chart's ("aitask" in it) with the
# chart's real rule file loaded; tasks run to completion with the fake kubelet, then the values
# are read back through Prometheus' HTTP API and a live scrape passes `promtool check metrics`.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

RULES=$AIT_SOURCE_DIR/charts/aitask-operator/files/prometheus-rules.yaml
PROM_DIR=$T_TMP/prom
p_cleanup() {
    bash "$AIT_SOURCE_DIR/hack/prometheus.sh" stop --dir "$PROM_DIR" >/dev/null 2>&1 || true
    t_cleanup
}
trap p_cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# q PROMQL: prints the first sample's value of an instant query ("" when the result is empty).
q() {
    curl -sf --get "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1" |
        jq -r '.data.result[0].value[1] // empty'
}
q_is() { [[ $(q "$1") == "$2" ]]; }     # PROMQL VALUE
q_gt0() { awk -v v="$(q "$1")" 'BEGIN { exit !(v != "" && v + 0 > 0) }'; }
wait_q() { # SECONDS PROMQL VALUE: polls the query until it reads VALUE
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
        q_is "$2" "$3" && return 0
        sleep 0.5
    done
    echo "    ($2: wanted '$3', got '$(q "$2")')"
    return 1
}

install_crd || { fail "CRD installed"; t_finish; exit 1; }
ns=$(new_namespace prom)
mport=$(free_port)
"$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$KUBECONFIG" --namespace "$ns" \
    --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address 127.0.0.1:0 -v 2 \
    >>"$T_TMP/controller.log" 2>&1 &
T_PIDS+=($!)
start_kubelet "$ns"
check "the controller serves /metrics on 127.0.0.1:$mport" \
    wait_for 30 curl -sf "http://127.0.0.1:$mport/metrics"

mkdir -p "$PROM_DIR"
cat >"$PROM_DIR/prometheus.yml" <<CFG
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$RULES"]
scrape_configs:
  - job_name: aitask-operator-controller
    static_configs: [{targets: ["127.0.0.1:$mport"]}]
CFG
if ! env=$(bash "$AIT_SOURCE_DIR/hack/prometheus.sh" start --dir "$PROM_DIR"); then
    fail "prometheus started"
    t_finish
    exit 1
fi
eval "$env"
pass "prometheus started at $PROMETHEUS_URL"

check "the controller target is up under the aitask job" \
    wait_q 20 'up{job=~".*aitask.*"}' 1
rules=$(curl -sf "$PROMETHEUS_URL/api/v1/rules")
check "the chart's rule file is loaded ($(jq '[.data.groups[].rules[]] | length' <<<"$rules") rules)" \
    test "$(jq '[.data.groups[].rules[]] | length' <<<"$rules")" -ge 30
check "every rule of the chart evaluates without error" \
    wait_for 10 bash -c "curl -sf '$PROMETHEUS_URL/api/v1/rules' |
        jq -e '[.data.groups[].rules[] | select(.health != \"ok\")] | length == 0' >/dev/null"

# ---- before any task: the outcome series exist at 0 so that rate() sees their first increase
curl -sf "http://127.0.0.1:$mport/metrics" >"$T_TMP/scrape0.txt"
for series in 'aitask_tasks_total{outcome="succeeded"}' 'aitask_tasks_total{outcome="failed"}' \
    'aitask_attempts_total{outcome="succeeded"}' 'aitask_attempts_total{outcome="failed"}'; do
    check "before any task $series is exported at 0" grep -qxF "$series 0" "$T_TMP/scrape0.txt"
done

# ---- three tasks that succeed and one that fails without healing (maxAttempts 1)
for i in 1 2 3; do
    cat <<Y
apiVersion: aitask.dev/v1alpha1
kind: AITask
metadata: {name: ok-$i, namespace: $ns}
spec: {runtime: python, code: "print('ok $i')"}
---
Y
done >"$T_TMP/tasks.yaml"
cat >>"$T_TMP/tasks.yaml" <<Y
apiVersion: aitask.dev/v1alpha1
kind: AITask
metadata: {name: bad, namespace: $ns}
spec:
  runtime: python
  code: "raise SystemExit(3)"
  healing: {maxAttempts: 1}
Y
kubectl apply -f "$T_TMP/tasks.yaml" >/dev/null
for i in 1 2 3; do
    check "task ok-$i Succeeded" wait_for 60 phase_is "$ns" "ok-$i" Succeeded
done
check "task bad Failed" wait_for 60 phase_is "$ns" bad Failed

# ---- what Prometheus scraped
check 'aitask_tasks_total{outcome="succeeded"} == 3' \
    wait_q 15 'sum(aitask_tasks_total{job=~".*aitask.*",outcome="succeeded"})' 3
check 'aitask_tasks_total{outcome="failed"} == 1' \
    wait_q 15 'sum(aitask_tasks_total{job=~".*aitask.*",outcome="failed"})' 1
check 'aitask_tasks_total has no other outcome' \
    q_is 'sum(aitask_tasks_total{job=~".*aitask.*",outcome!~"succeeded|failed"}) or vector(0)' 0
check 'aitask_attempts_total{outcome="succeeded"} == 3' \
    wait_q 15 'sum(aitask_attempts_total{job=~".*aitask.*",outcome="succeeded"})' 3
check 'aitask_attempts_total{outcome="failed"} == 1' \
    wait_q 15 'sum(aitask_attempts_total{job=~".*aitask.*",outcome="failed"})' 1
check 'aitask_task_duration_seconds_count == 4' \
    wait_q 15 'sum(aitask_task_duration_seconds_count{job=~".*aitask.*"})' 4
check 'aitask_queue_wait_seconds_count == 4 (every task got a first pod)' \
    wait_q 15 'sum(aitask_queue_wait_seconds_count{job=~".*aitask.*"})' 4
check 'aitask_queue_depth is back to 0' \
    wait_q 15 'sum(aitask_queue_depth{job=~".*aitask.*"})' 0
for m in controller_runtime_reconcile_total workqueue_adds_total rest_client_requests_total \
    process_resident_memory_bytes; do
    check "$m > 0" q_gt0 "sum($m{job=~\".*aitask.*\"})"
done
check 'a reconcile succeeded (controller_runtime_reconcile_total{result="success"} > 0)' \
    q_gt0 'sum(controller_runtime_reconcile_total{job=~".*aitask.*",result="success"})'
# 1 failed of 4 finished: the chart's task-success error ratio must read 0.25. rate() only sees
# increments after a series' first sample, so this needs every outcome exported at 0 from the
# start (checked above), as client_golang users do by touching each known label value.
check 'the chart recording rule aitask:slo_task_success_errors:ratio_rate1h reads 1/4 = 0.25' \
    wait_for 15 bash -c "v=\$(curl -sf --get '$PROMETHEUS_URL/api/v1/query' \
        --data-urlencode 'query=aitask:slo_task_success_errors:ratio_rate1h' |
        jq -r '.data.result[0].value[1] // empty'); awk -v v=\"\$v\" 'BEGIN { exit !(v != \"\" && v > 0.24 && v < 0.26) }'"
echo "    aitask:slo_task_success_errors:ratio_rate1h = '$(q 'aitask:slo_task_success_errors:ratio_rate1h')'"

# ---- the exposition format itself
curl -sf "http://127.0.0.1:$mport/metrics" >"$T_TMP/scrape.txt"
check "promtool check metrics passes on a live scrape ($(grep -vc '^#' "$T_TMP/scrape.txt") samples)" \
    promtool check metrics <"$T_TMP/scrape.txt"
check "... and promtool does reject a malformed counter (the check can fail)" \
    bash -c "! printf '# HELP foo x\n# TYPE foo counter\nfoo 1\n' | promtool check metrics >/dev/null 2>&1"
check "Prometheus reports no scrape errors for the target" \
    bash -c "curl -sf '$PROMETHEUS_URL/api/v1/targets' |
        jq -e '.data.activeTargets | length == 1 and .[0].health == \"up\" and .[0].lastError == \"\"' >/dev/null"

t_finish
