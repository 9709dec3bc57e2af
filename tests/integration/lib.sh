# SPDX-License-Identifier: Apache-2.0
# Helpers for the bash integration tests: a unique restricted namespace, the controller and the
# fake kubelet started and stopped by PID, waits with timeouts, and a pass/fail tally that ends
# with the "N passed, M failed" line. Sourced by tests/integration/test_*.sh.
set -uo pipefail
: "${AIT_SOURCE_DIR:?}" "${AIT_BUILD_DIR:?}" "${AIT_CLUSTER_DIR:?}" "${KUBECONFIG:?}"
# shellcheck source=hack/lib.sh
. "$AIT_SOURCE_DIR/hack/lib.sh"

T_PASS=0
T_FAIL=0
T_PIDS=()
T_NAMESPACES=()
T_TMP=$(mktemp -d)

pass() { T_PASS=$((T_PASS + 1)); echo "ok   - $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $*"; }
check() { # description command...
    local d=$1
    shift
    if "$@"; then pass "$d"; else fail "$d"; fi
}

t_cleanup() {
    local p
    for p in "${T_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${T_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [[ -n ${T_ETCD_DIR:-} ]]; then
        bash "$AIT_SOURCE_DIR/hack/etcd.sh" stop --dir "$T_ETCD_DIR" >/dev/null 2>&1 || true
    fi
    local ns
    for ns in "${T_NAMESPACES[@]}"; do
        kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    done
    if [[ -n ${AIT_KEEP_TMP:-} ]]; then echo "kept $T_TMP"; else rm -rf "$T_TMP"; fi
}

t_finish() {
    echo "$T_PASS passed, $T_FAIL failed"
    ((T_FAIL == 0))
}

# new_namespace PREFIX: creates a unique namespace with Pod Security "restricted" enforced.
new_namespace() {
    local ns
    ns="$1-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    kubectl create namespace "$ns" >/dev/null
    kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted \
        pod-security.kubernetes.io/enforce-version=latest >/dev/null
    T_NAMESPACES+=("$ns")
    echo "$ns"
}

install_crd() {
    kubectl apply --server-side --force-conflicts -f "$AIT_SOURCE_DIR/crd/aitask.dev_aitasks.yaml" >/dev/null &&
        wait_crd aitasks.aitask.dev Established 60
}

# start_controller NAME NS [extra flags...]: starts the controller scoped to NS; sets LAST_PID
# and writes its log to $T_TMP/NAME.log. Extra env (AIT_FAILPOINTS...) may prefix the call.
start_controller() {
    local name=$1 ns=$2
    shift 2
    "$AIT_BUILD_DIR/aitask-controller" --kubeconfig "$KUBECONFIG" --namespace "$ns" \
        --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 -v 2 "$@" \
        >>"$T_TMP/$name.log" 2>&1 &
    LAST_PID=$!
    T_PIDS+=("$LAST_PID")
}

start_kubelet() { # NS [mode]
    python3 "$AIT_SOURCE_DIR/tests/fakes/fake_kubelet.py" --cluster-dir "$AIT_CLUSTER_DIR" \
        --namespace "$1" --mode "${2:-run}" >>"$T_TMP/kubelet-$1.log" 2>&1 &
    KUBELET_PID=$!
    T_PIDS+=("$KUBELET_PID")
}

# wait_for SECONDS command...: polls every 0.2 s until the command succeeds.
wait_for() {
    local secs=$1
    shift
    local end=$((SECONDS + secs))
    while ((SECONDS < end)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}

phase_is() { # NS NAME PHASE
    [[ $(kubectl get aitask -n "$1" "$2" -o jsonpath='{.status.phase}' 2>/dev/null) == "$3" ]]
}

jp() { # NS NAME JSONPATH
    kubectl get aitask -n "$1" "$2" -o jsonpath="$3" 2>/dev/null
}

# patch_pod_terminated NS POD EXIT REASON MESSAGE: plays the kubelet for one pod.
patch_pod_terminated() {
    local ns=$1 pod=$2 code=$3 reason=$4 msg=$5 phase=Failed now
    ((code == 0)) && phase=Succeeded
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    kubectl patch pod -n "$ns" "$pod" --subresource=status --type=merge -p "$(jq -n \
        --arg phase "$phase" --argjson code "$code" --arg reason "$reason" --arg msg "$msg" \
        --arg now "$now" '{status:{phase:$phase,containerStatuses:[{name:"main",image:"x",
        imageID:"",ready:false,restartCount:0,state:{terminated:{exitCode:$code,reason:$reason,
        message:$msg,startedAt:$now,finishedAt:$now}}}]}}')" >/dev/null
}

trap t_cleanup EXIT

# start_fake_llm: starts the fake providers; sets LLM_URL (http://127.0.0.1:PORT).
start_fake_llm() {
    python3 "$AIT_SOURCE_DIR/tests/fakes/fake_llm.py" --port-file "$T_TMP/llm.port" \
        >>"$T_TMP/llm.log" 2>&1 &
    T_PIDS+=($!)
    wait_for 20 test -s "$T_TMP/llm.port" || return 1
    LLM_URL="http://127.0.0.1:$(cat "$T_TMP/llm.port")"
}

llm_script() { # JSON body for /_script
    curl -sf -X POST -H 'Content-Type: application/json' -d "$1" "$LLM_URL/_script" >/dev/null
}

# start_audit_etcd: a second real etcd for the audit log; sets ETCD_URL and AUDIT_KEY (a file).
start_audit_etcd() {
    ETCD_URL=$(bash "$AIT_SOURCE_DIR/hack/etcd.sh" start --dir "$T_TMP/etcd") || return 1
    T_ETCD_DIR=$T_TMP/etcd
    AUDIT_KEY=$T_TMP/audit.key
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$AUDIT_KEY"
}
stop_audit_etcd() { bash "$AIT_SOURCE_DIR/hack/etcd.sh" stop --dir "$T_TMP/etcd" >/dev/null; }

# wait_jp SECONDS NS NAME JSONPATH EXPECTED: polls the AITask until the JSONPath reads EXPECTED.
wait_jp() {
    local secs=$1 ns=$2 name=$3 path=$4 want=$5
    local end=$((SECONDS + secs))
    while ((SECONDS < end)); do
        [[ $(jp "$ns" "$name" "$path") == "$want" ]] && return 0
        sleep 0.2
    done
    echo "    (wanted '$want', got '$(jp "$ns" "$name" "$path")')"
    return 1
}
