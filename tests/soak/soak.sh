#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Soak under faults (not part of the pass/fail test run: it prints figures). On its own control
# plane: N AITasks (30 % of them fail their first run with a fixable error and must be healed),
# the two FAKE providers failing ~20 % of requests at random (5xx, 429, hang, garbage), and,
# while the tasks run, the API server restarted once, the audit etcd restarted once, OpenBao
# restarted once (provider keys come from it) and the controller SIGKILLed twice. Prints the
# share of tasks that end Succeeded, duplicate pods (from the API server's audit log), audit
# chains that fail `aitaskctl audit verify`, the controller's RSS at start and end, and the p95
# of aitask_provider_failover_seconds.
#
#   bash tests/soak/soak.sh [--tasks N] [--rate R]   (default 1000 tasks created at 10/s; the faults
#                                                   land at 1/6 .. 5/6 of the creation window)
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
. hack/lib.sh
tasks=1000
rate=10
while (($#)); do
    case $1 in
        --tasks) tasks=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        *) echo "usage: $0 [--tasks N] [--rate TASKS_PER_SECOND]" >&2; exit 2 ;;
    esac
done
build=${AIT_BUILD_DIR:-$top/build}
[[ -x $build/aitask-controller ]] || { cmake -S . -B "$build" -G Ninja >/dev/null && ninja -C "$build" aitask-controller aitaskctl >/dev/null; }
dir=$(mktemp -d /tmp/aitask-soak.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    bash hack/vault.sh stop --dir "$dir/vault" >/dev/null 2>&1
    bash hack/etcd.sh stop --dir "$dir/etcd" >/dev/null 2>&1
    bash hack/cluster.sh down --dir "$dir/cluster" >/dev/null 2>&1
    [[ -n ${AIT_SOAK_KEEP:-} ]] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
eval "$(bash hack/cluster.sh up --dir "$dir/cluster" --name "soak$$")"
kubectl apply --server-side -f crd/aitask.dev_aitasks.yaml >/dev/null
wait_crd aitasks.aitask.dev Established 60
kubectl create namespace soak >/dev/null
kubectl label namespace soak pod-security.kubernetes.io/enforce=restricted >/dev/null
kubectl create namespace aitask-system >/dev/null
kubectl create serviceaccount -n aitask-system aitask >/dev/null
etcd_url=$(bash hack/etcd.sh start --dir "$dir/etcd")
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/audit.key"
bash hack/vault.sh start --dir "$dir/vault" >/dev/null
eval "$(bash hack/vault.sh env --dir "$dir/vault")"
export BAO_TOKEN
BAO_TOKEN=$(cat "$dir/vault/root-token")
bash hack/vault.sh k8s-auth --dir "$dir/vault" --namespace aitask-system --sa aitask --role aitask \
    --read 'secret/data/llm/*' >/dev/null
kubectl create token -n aitask-system aitask --duration=24h >"$dir/jwt"
bao kv put -mount=secret llm/key apiKey=soak-key >/dev/null
python3 tests/fakes/fake_llm.py --port-file "$dir/llm.port" >"$dir/llm.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -s $dir/llm.port ]] && break; sleep 0.1; done
llm="http://127.0.0.1:$(cat "$dir/llm.port")"
# ~20 % of each provider's requests fail at random; the rest get the default (healing) answer.
for route in p1 p2; do
    python3 - "$tasks" "$route" >"$dir/script-$route.json" <<'PY'
import json, random, sys
n, route = int(sys.argv[1]), sys.argv[2]
random.seed(route)
bad = [{"do": "status", "code": 503}, {"do": "rate_limit", "retry_after": 1},
       {"do": "hang", "seconds": 4}, {"do": "raw", "content": "not json at all"}]
q = [random.choice(bad) if random.random() < 0.2 else {"do": "answer"} for _ in range(2 * n)]
print(json.dumps({"route": route, "queue": q}))
PY
    curl -sf -X POST -H 'Content-Type: application/json' -d @"$dir/script-$route.json" "$llm/_script" >/dev/null
done
cat >"$dir/config.yaml" <<CFG
providers:
- {name: p1, type: openai, baseURL: "$llm/p1/v1", model: m1, vaultPath: secret/llm/key, timeoutMs: 3000,
   priceInputPerMTok: "0.10", priceOutputPerMTok: "0.20"}
- {name: p2, type: openai, baseURL: "$llm/p2/v1", model: m2, vaultPath: secret/llm/key, timeoutMs: 3000,
   priceInputPerMTok: "0.10", priceOutputPerMTok: "0.20"}
healing: {circuitCooldownMs: 2000}
vault: {address: "$BAO_ADDR", caFile: "$BAO_CACERT", role: aitask, jwtFile: "$dir/jwt", mount: secret}
audit: {etcdEndpoint: "$etcd_url", keyFile: "$dir/audit.key"}
limits: {maxRunning: 50, startsPerMinute: 100000, healConcurrency: 8}
CFG
start_ctrl() {
    "$build/aitask-controller" --kubeconfig "$KUBECONFIG" --config "$dir/config.yaml" \
        --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address 0 >>"$dir/controller.log" 2>&1 &
    ctrl=$!
    pids+=("$ctrl")
}
rss() { awk '/VmRSS/{print $2}' "/proc/$ctrl/status" 2>/dev/null || echo 0; }
mport=$(free_port)
start_ctrl
python3 tests/fakes/fake_kubelet.py --cluster-dir "$dir/cluster" --namespace soak --parallel 8 \
    >"$dir/kubelet.log" 2>&1 &
pids+=($!)
sleep 2
rss_start=$(rss)
mkdir -p "$dir/tasks"
for i in $(seq 1 "$tasks"); do
    if ((i % 10 < 3)); then code='raise SystemExit(1)  # fixable'; else code="print($i)"; fi
    printf -- '---\napiVersion: aitask.dev/v1alpha1\nkind: AITask\nmetadata: {name: s%04d, namespace: soak}\nspec:\n  runtime: python\n  code: "%s"\n  healing: {maxAttempts: 3, backoffSeconds: 0}\n' "$i" "$code" \
        >>"$dir/tasks/$(printf %04d $(((i - 1) / 25))).yaml"
done
t0=$SECONDS
# Created in the background at --rate tasks/s, 25 at a time, so the faults land while tasks are
# being created and run; a chunk that meets the API server restart is applied again.
(
    for f in "$dir"/tasks/*.yaml; do
        until kubectl apply -f "$f" >/dev/null 2>>"$dir/apply-errors.log"; do sleep 1; done
        sleep "$(python3 -c "print(25 / $rate)")"
    done
) &
pids+=($!)
done_count() {
    kubectl get aitask -n soak -o json | jq '[.items[]|select(.status.phase=="Succeeded" or .status.phase=="Failed")]|length'
}
# The failover histogram lives in the controller's memory: scrape it before each SIGKILL and at the
# end, and add up what each run of the controller saw.
scrape() { curl -sf --max-time 5 "http://127.0.0.1:$mport/metrics" | grep '^aitask_provider_failover_seconds_bucket' >"$dir/failover.$1" || true; }
faults=(apiserver kill1 etcd vault kill2)
window=$((tasks / rate))
next=0
last_d=-1
last_change=$SECONDS
rss_log=("run 1 start ${rss_start} KiB")
while ((SECONDS - t0 < ${AIT_SOAK_TIMEOUT:-1800})); do
    d=$(done_count 2>/dev/null) || d=$last_d
    [[ -n $d ]] || d=$last_d
    if ((d != last_d)); then last_d=$d last_change=$SECONDS; fi
    if ((SECONDS - last_change > 300)); then
        echo "[$((SECONDS - t0)) s] no task ended in 300 s ($d/$tasks done): stopping"
        break
    fi
    # Fault k at (k+1)/6 of the creation window.
    if ((next < ${#faults[@]} && (SECONDS - t0) * (${#faults[@]} + 1) >= window * (next + 1))); then
        f=${faults[$next]}
        echo "[$((SECONDS - t0)) s] $d/$tasks done: fault $f"
        case $f in
            apiserver) bash hack/cluster.sh restart-apiserver --dir "$dir/cluster" >/dev/null ;;
            etcd) bash hack/etcd.sh stop --dir "$dir/etcd" >/dev/null; sleep 3
                bash hack/etcd.sh start --dir "$dir/etcd" >/dev/null ;;
            vault) bash hack/vault.sh stop --dir "$dir/vault" >/dev/null; sleep 3
                bash hack/vault.sh start --dir "$dir/vault" >/dev/null ;;
            kill*)
                scrape "$f"
                rss_log+=("before $f $(rss) KiB")
                kill -KILL "$ctrl"; wait "$ctrl" 2>/dev/null; start_ctrl
                sleep 2
                rss_log+=("after $f $(rss) KiB") ;;
        esac
        next=$((next + 1))
    fi
    ((d >= tasks && next >= ${#faults[@]})) && break
    sleep 1
done
sleep 3
rss_end=$(rss)
rss_log+=("end ${rss_end} KiB")
scrape end
json=$(kubectl get aitask -n soak -o json)
ok=$(jq '[.items[]|select(.status.phase=="Succeeded")]|length' <<<"$json")
ended=$(jq '[.items[]|select(.status.phase=="Succeeded" or .status.phase=="Failed")]|length' <<<"$json")
dups=$(jq -c 'select(.verb=="create" and .objectRef.resource=="pods" and .objectRef.namespace=="soak" and .responseStatus.code==201)|.objectRef.name' "$dir/cluster/audit.log" | sort | uniq -d | wc -l)
bad=0
for name in $(jq -r '.items[].metadata.name' <<<"$json"); do
    "$build/aitaskctl" audit verify "soak/$name" --kubeconfig "$KUBECONFIG" --etcd-endpoint "$etcd_url" \
        --key "$dir/audit.key" >/dev/null 2>&1 || bad=$((bad + 1))
done
p95=$(cat "$dir"/failover.* | python3 -c '
import sys, collections
b = collections.Counter()
for l in sys.stdin:
    le = l.split("le=\"")[1].split("\"")[0]
    b[float("inf") if le == "+Inf" else float(le)] += float(l.split()[-1])
les = sorted(b)
tot = b[les[-1]] if les else 0
# As PromQL histogram_quantile(0.95, ...): linear within the bucket that holds the 95th.
q, prev_le, prev_c = None, 0.0, 0.0
for le in les:
    if tot and b[le] >= 0.95 * tot:
        q = le if le == float("inf") else prev_le + (le - prev_le) * (0.95 * tot - prev_c) / max(b[le] - prev_c, 1e-9)
        break
    prev_le, prev_c = le, b[le]
print((f"{q:.2f} s" if q is not None else "no failovers") + f" (of {int(tot)} failovers; histogram_quantile estimate)")')
failed_reasons=$(jq -r '[.items[]|select(.status.phase=="Failed")|.status.conditions[]|select(.type=="Succeeded")|.reason]|group_by(.)|map("\(.[0]) \(length)")|join(", ")' <<<"$json")
echo
echo "soak: $tasks tasks at $rate/s, 30 % failing first, providers failing ~20 %, faults injected: ${faults[*]:0:$next}"
echo "  succeeded:        $ok / $tasks ($(python3 -c "print(round(100*$ok/$tasks,2))") %)   target >= 99 %"
echo "  failed:           $((ended - ok)) ${failed_reasons:+($failed_reasons)}; not ended: $((tasks - ended))"
echo "  duplicate pods:   $dups   target 0"
echo "  chains failing verify: $bad   target 0"
echo "  controller RSS:   $(IFS=';'; echo "${rss_log[*]}")"
echo "  failover p95:     $p95   target < 5 s"
echo "  wall time:        $((SECONDS - t0)) s"
echo "FIGURES soak tasks=$tasks created=$(jq '.items|length' <<<"$json") ended=$ended succeeded=$ok dups=$dups bad_chains=$bad faults=$next"
