#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Work admission against a real API server: maxRunning checked continuously by a watcher of
# every pod event, the start rate, fair queueing across namespaces, and the limit surviving a
# controller restart. Runs on its own control plane, since its controller watches every
# namespace.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

own=$T_TMP/cluster
bash "$AIT_SOURCE_DIR/hack/cluster.sh" up --dir "$own" --name "adm$$" >/dev/null || {
    fail "own control plane started"; t_finish; exit 1; }
trap 'bash "$AIT_SOURCE_DIR/hack/cluster.sh" down --dir "$own" >/dev/null 2>&1; t_cleanup' EXIT
export KUBECONFIG=$own/kubeconfig AIT_CLUSTER_DIR=$own
install_crd || { fail "CRD installed"; t_finish; exit 1; }

tasks() { # NS PREFIX COUNT
    for i in $(seq 1 "$3"); do
        printf -- '---\napiVersion: aitask.dev/v1alpha1\nkind: AITask\nmetadata: {name: %s-%03d, namespace: %s}\nspec: {runtime: python, code: "print(1)"}\n' "$2" "$i" "$1"
    done | kubectl apply -f - >/dev/null
}
succeeded() { # NS COUNT
    [[ $(kubectl get aitask -n "$1" -o json | jq '[.items[]|select(.status.phase=="Succeeded")]|length') == "$2" ]]
}
watch_pods() {
    python3 "$AIT_SOURCE_DIR/tests/integration/pod_watch.py" --cluster-dir "$own" --out "$1" &
    WATCH_PID=$!
    T_PIDS+=("$WATCH_PID")
    sleep 1
}
stop_watch() { kill -TERM "$WATCH_PID"; wait "$WATCH_PID" 2>/dev/null; }

# ---- 200 tasks, maxRunning 10; the controller is SIGKILLed once while the queue is full
printf 'limits: {maxRunning: 10, startsPerMinute: 100000}\n' >"$T_TMP/c1.yaml"
ns=$(new_namespace adm-limit)
watch_pods "$T_TMP/w1.json"
python3 "$AIT_SOURCE_DIR/tests/fakes/fake_kubelet.py" --cluster-dir "$own" --namespace "$ns" \
    --mode succeed --hold 2 --parallel 16 >>"$T_TMP/kubelet1.log" 2>&1 &
T_PIDS+=($!)
tasks "$ns" t 200
"$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$KUBECONFIG" --config "$T_TMP/c1.yaml" \
    --metrics-bind-address 0 --health-probe-bind-address 0 >>"$T_TMP/ctrl1.log" 2>&1 &
ctrl=$!
T_PIDS+=("$ctrl")
queued_count() {
    kubectl get aitask -n "$ns" -o json | jq '[.items[]|select((.status.conditions // [])|map(select(.type=="Queued" and .status=="True"))|length>0)]|length'
}
wait_for 60 bash -c "[[ \$(kubectl get pods -n $ns -o name | wc -l) -ge 20 ]]"
wait_for 60 bash -c "[[ \$(kubectl get aitask -n $ns -o json | jq '[.items[]|select(.status.queue.position != null)]|length') -ge 100 ]]"
echo "    ($(kubectl get pods -n "$ns" -o name | wc -l) pods when the controller was killed)"
kill -KILL "$ctrl"
queued=$(queued_count)
check "while the queue is full, waiting tasks show Queued=True ($queued)" test "$queued" -gt 0
sample=$(kubectl get aitask -n "$ns" -o json | jq -r '[.items[]|select(.status.queue.position != null)][0]|"\(.status.queue.position) \(.status.conditions[]|select(.type=="Queued")|.message)"')
echo "    e.g. $sample"
check "the Queued message names the position and the limit" grep -q "maxRunning=10" <<<"$sample"
"$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$KUBECONFIG" --config "$T_TMP/c1.yaml" \
    --metrics-bind-address 0 --health-probe-bind-address 0 >>"$T_TMP/ctrl1.log" 2>&1 &
ctrl=$!
T_PIDS+=("$ctrl")
check "after a restart all 200 tasks succeed" wait_for 240 succeeded "$ns" 200
stop_watch
max=$(jq .max_running "$T_TMP/w1.json")
check "never more than 10 sandbox pods running at once, across the restart (max seen $max over $(jq .events "$T_TMP/w1.json") events)" \
    test "$max" -le 10
check "the limit was actually reached" test "$max" -eq 10
kill -TERM "$ctrl"; wait "$ctrl" 2>/dev/null

# ---- fairness: 60 tasks in a big namespace, then 5 in a small one, maxRunning 5
printf 'limits: {maxRunning: 5, startsPerMinute: 100000}\n' >"$T_TMP/c2.yaml"
big=$(new_namespace adm-big)
small=$(new_namespace adm-small)
watch_pods "$T_TMP/w2.json"
python3 "$AIT_SOURCE_DIR/tests/fakes/fake_kubelet.py" --cluster-dir "$own" --namespace "$big" \
    --namespace "$small" --mode succeed --hold 1 --parallel 16 >>"$T_TMP/kubelet2.log" 2>&1 &
T_PIDS+=($!)
tasks "$big" b 60
sleep 1
tasks "$small" s 5
"$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$KUBECONFIG" --config "$T_TMP/c2.yaml" \
    --metrics-bind-address 0 --health-probe-bind-address 0 >>"$T_TMP/ctrl2.log" 2>&1 &
ctrl=$!
T_PIDS+=("$ctrl")
wait_for 120 succeeded "$small" 5
stop_watch
starts() { jq -r '.created[]' "$T_TMP/w2.json" | grep -E "^($big|$small)/"; }
order=$(starts | grep -n "^$small/" | cut -d: -f1 | tr '\n' ' ')
echo "    the small namespace's pods were started at positions: $order"
last=$(starts | grep -n "^$small/" | tail -1 | cut -d: -f1)
check "the small namespace's 5 tasks start within the first 20 of 65 starts, not after the backlog" \
    test "${last:-999}" -le 20
kill -TERM "$ctrl"; wait "$ctrl" 2>/dev/null
# The big namespace's backlog would take the next controller's start tokens: remove it.
kubectl delete aitask -n "$big" --all --wait=false >/dev/null

# ---- the start rate: startsPerMinute 20 with room for 100 running
printf 'limits: {maxRunning: 100, startsPerMinute: 20}\n' >"$T_TMP/c3.yaml"
ns3=$(new_namespace adm-rate)
tasks "$ns3" r 40
"$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$KUBECONFIG" --config "$T_TMP/c3.yaml" \
    --metrics-bind-address 0 --health-probe-bind-address 0 >>"$T_TMP/ctrl3.log" 2>&1 &
ctrl=$!
T_PIDS+=("$ctrl")
sleep 20
pods=$(kubectl get pods -n "$ns3" -o name | wc -l)
check "startsPerMinute 20: $pods pods started in the first 20 s (at most 20)" test "$pods" -le 20
check "... and the bucket's burst was used ($pods > 0)" test "$pods" -gt 0
reason=$(kubectl get aitask -n "$ns3" -o json | jq -r '[.items[]|.status.conditions // []|.[]|select(.type=="Queued" and .status=="True")|.reason]|unique|join(",")')
check "waiting tasks are held by the StartRate limit" test "$reason" = StartRate

t_finish
