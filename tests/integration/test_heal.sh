#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Healing end to end: the real controller against the real API server, the fake LLM providers
# (tests/fakes/fake_llm.py: no real provider is reachable here), the fake kubelet running the
# programs, and a real second etcd holding the audit chain and the spend ledger.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

install_crd || { fail "CRD installed"; t_finish; exit 1; }
start_fake_llm || { fail "fake LLM started"; t_finish; exit 1; }
start_audit_etcd || { fail "audit etcd started"; t_finish; exit 1; }
echo "test-key-not-a-secret" >"$T_TMP/provider.key"
cat >"$T_TMP/config.yaml" <<CFG
providers:
- {name: primary, type: openai, baseURL: "$LLM_URL/primary/v1", model: gpt-test,
   apiKeyFile: "$T_TMP/provider.key", priceInputPerMTok: "2.50", priceOutputPerMTok: "10.00",
   timeoutMs: 3000}
- {name: secondary, type: anthropic, baseURL: "$LLM_URL/secondary", model: claude-test,
   apiKeyFile: "$T_TMP/provider.key", priceInputPerMTok: "3.00", priceOutputPerMTok: "15.00",
   timeoutMs: 3000}
- {name: dead, type: openai, baseURL: "http://127.0.0.1:1/v1", model: none,
   apiKeyFile: "$T_TMP/provider.key", timeoutMs: 1000}
healing: {defaultProviders: [primary, secondary], circuitCooldownMs: 600000}
audit: {etcdEndpoint: "$ETCD_URL", keyFile: "$AUDIT_KEY"}
budgets: {dailyUSD: "100.00", monthlyUSD: "1000.00"}
CFG
ns=$(new_namespace heal)
start_controller heal "$ns" --config "$T_TMP/config.yaml"
ctrl=$LAST_PID
start_kubelet "$ns"

# ---- a failing program healed by the second provider after the first answers 503
llm_script '{"route":"primary","queue":[{"do":"status","code":503}]}'
sed "s/name: heal-python/name: heal-python\n  namespace: $ns/" "$AIT_SOURCE_DIR/crd/samples/heal-python.yaml" |
    kubectl apply -f - >/dev/null
check "the failing task is healed and succeeds" wait_for 90 phase_is "$ns" heal-python Succeeded
check "two attempts: the first failed with the NameError" \
    test "$(jp "$ns" heal-python '{.status.attemptCount}/{.status.attempts[0].exitCode}')" = "2/1"
grep -q NameError <<<"$(jp "$ns" heal-python '{.status.attempts[0].message}')" &&
    pass "attempt 1's message carries the error" || fail "attempt 1's message carries the error"
check "attempt 2 was healed by the secondary provider" \
    test "$(jp "$ns" heal-python '{.status.attempts[1].heal.provider}/{.status.attempts[1].heal.model}')" = "secondary/claude-test"
check "the failover from primary (HTTP 503) is recorded" \
    test "$(jp "$ns" heal-python '{.status.attempts[1].heal.failovers[0].provider}')" = primary
check "tokens and cost are recorded" \
    test "$(jp "$ns" heal-python '{.status.attempts[1].heal.promptTokens}')" -gt 0
cost=$(jp "$ns" heal-python '{.status.costUSD}')
check "task costUSD is the heal's cost ($cost)" \
    test "$cost" = "$(jp "$ns" heal-python '{.status.attempts[1].heal.costUSD}')"
answer=$(curl -sf "$LLM_URL/_requests?route=secondary" | jq -r '.requests|length')
check "the secondary provider was asked once" test "$answer" = 1
check "attempt 2's ConfigMap holds exactly the healed code" \
    test "$(kubectl get configmap -n "$ns" heal-python-a2 -o jsonpath='{.data.main\.py}')" = 'print("healed")'
check "attempt 2 ran the healed code" \
    test "$(jp "$ns" heal-python '{.status.result.output}')" = healed
check "the prompt sent names the error and the failing code" \
    bash -c "curl -sf '$LLM_URL/_requests?route=secondary' | grep -q totl"
check "status.audit mirrors the chain" \
    test -n "$(jp "$ns" heal-python '{.status.audit.head}')"
verify=$("$AIT_BUILD_DIR/aitaskctl" audit verify "$ns/heal-python" --kubeconfig "$KUBECONFIG" \
    --etcd-endpoint "$ETCD_URL" --key "$AUDIT_KEY" 2>&1)
check "aitaskctl audit verify passes (hashes, links, head and count vs status, decryption)" \
    grep -q '^OK' <<<"$verify"
echo "    $verify"
show=$("$AIT_BUILD_DIR/aitaskctl" audit show "$ns/heal-python" --kubeconfig "$KUBECONFIG" \
    --etcd-endpoint "$ETCD_URL" 2>&1)
for action in attempt.start attempt.finish heal.request heal.response; do
    check "the chain holds $action" grep -q "$action" <<<"$show"
done
check "no provider key in the audit chain, status, events or controller log" bash -c "
    ! grep -rq test-key-not-a-secret '$T_TMP/heal.log' &&
    ! kubectl get aitask,events -n '$ns' -o json | grep -q test-key-not-a-secret &&
    ! '$AIT_BUILD_DIR/aitaskctl' audit show '$ns/heal-python' --kubeconfig '$KUBECONFIG' \
        --etcd-endpoint '$ETCD_URL' --key '$AUDIT_KEY' -o json | grep -q test-key-not-a-secret"

# ---- a prompt-only task: the first code is generated
sed "s/name: prompt-only/name: prompt-only\n  namespace: $ns/" "$AIT_SOURCE_DIR/crd/samples/prompt-only.yaml" |
    kubectl apply -f - >/dev/null
check "a prompt-only task gets generated code and succeeds" wait_for 90 phase_is "$ns" prompt-only Succeeded
check "its first attempt carries the heal summary" \
    test -n "$(jp "$ns" prompt-only '{.status.attempts[0].heal.provider}')"

# ---- all providers down
cat <<Y | kubectl apply -f - >/dev/null
apiVersion: aitask.dev/v1alpha1
kind: AITask
metadata: {name: alldown, namespace: $ns}
spec:
  runtime: python
  code: "raise SystemExit(2)"
  healing: {maxAttempts: 3, backoffSeconds: 0, providers: [dead]}
Y
check "all providers down: Failed with reason ProvidersUnavailable" \
    wait_jp 60 "$ns" alldown '{.status.phase}/{.status.conditions[?(@.type=="Succeeded")].reason}' "Failed/ProvidersUnavailable"
check "no retry storm: the dead provider was asked twice (one re-ask)" \
    test "$(grep 'heal failed' "$T_TMP/heal.log" | grep -c '/alldown"')" -eq 2
check "... and the re-ask waited its 10 s" python3 -c '
import json, sys, datetime
ts = [datetime.datetime.fromisoformat(json.loads(l)["ts"].rstrip("Z"))
      for l in open(sys.argv[1]) if "heal failed" in l and "/alldown\"" in l]
sys.exit(0 if len(ts) == 2 and (ts[1] - ts[0]).total_seconds() >= 9.5 else 1)' "$T_TMP/heal.log"

# ---- a task over its own budget
cat <<Y | kubectl apply -f - >/dev/null
apiVersion: aitask.dev/v1alpha1
kind: AITask
metadata: {name: broke, namespace: $ns}
spec:
  runtime: python
  code: "raise SystemExit(2)"
  healing: {maxAttempts: 3, backoffSeconds: 0}
  budget: {maxCostUSD: "0.000001"}
Y
check "a heal over the task's maxCostUSD ends in BudgetExceeded" \
    wait_jp 60 "$ns" broke '{.status.conditions[?(@.type=="BudgetExceeded")].status}' True
check "... and the task Failed" test "$(jp "$ns" broke '{.status.phase}')" = Failed

# ---- etcd down during a task: the controller holds it, then finishes when etcd is back
stop_audit_etcd
sed "s/name: heal-python/name: heal-later\n  namespace: $ns/" "$AIT_SOURCE_DIR/crd/samples/heal-python.yaml" |
    kubectl apply -f - >/dev/null
check "with etcd down the task waits: AuditReady=False" \
    wait_jp 30 "$ns" heal-later '{.status.conditions[?(@.type=="AuditReady")].status}' False
check "... and no pod started without its audit entry" \
    test -z "$(kubectl get pod -n "$ns" heal-later-a1 -o name 2>/dev/null)"
bash "$AIT_SOURCE_DIR/hack/etcd.sh" start --dir "$T_TMP/etcd" >/dev/null
check "after etcd returns the task completes" wait_for 120 phase_is "$ns" heal-later Succeeded
verify=$("$AIT_BUILD_DIR/aitaskctl" audit verify "$ns/heal-later" --kubeconfig "$KUBECONFIG" \
    --etcd-endpoint "$ETCD_URL" --key "$AUDIT_KEY" 2>&1)
check "its chain is intact" grep -q '^OK' <<<"$verify"

# ---- deletion seals the chain
uid=$(jp "$ns" heal-python '{.metadata.uid}')
kubectl delete aitask -n "$ns" heal-python --wait=true --timeout=60s >/dev/null
check "deleting a task seals its chain (task.sealed)" bash -c "
    '$AIT_BUILD_DIR/aitaskctl' audit show '$ns/heal-python' --uid '$uid' --etcd-endpoint '$ETCD_URL' | grep -q task.sealed"

# ---- the daily budget crossed by concurrent tasks: BudgetExceeded, never overspent by more
# than one reservation
ledger_day() { # micro-dollars spent today (UTC) according to the ledger in etcd
    local key v
    key=$(printf '/aitask/ledger/day/%s/total' "$(date -u +%F)" | base64 -w0)
    v=$(curl -sf -X POST "$ETCD_URL/v3/kv/range" -d "{\"key\":\"$key\"}" | jq -r '.kvs[0].value // empty')
    if [[ -z $v ]]; then echo 0; else base64 -d <<<"$v"; fi
}
kill -TERM "$ctrl"; wait "$ctrl" 2>/dev/null
spent=$(ledger_day)
limit=$((spent + 1500000)) # room for about three of the heals below (~0.46 USD each)
limit_usd=$(python3 -c "print('%.6f' % ($limit/1e6))")
cat >"$T_TMP/budget.yaml" <<CFG
providers:
- {name: pricey, type: openai, baseURL: "$LLM_URL/pricey/v1", model: gpt-gold,
   apiKeyFile: "$T_TMP/provider.key", priceInputPerMTok: "1000.00", priceOutputPerMTok: "1000.00",
   maxCompletionTokens: 100, timeoutMs: 3000}
audit: {etcdEndpoint: "$ETCD_URL", keyFile: "$AUDIT_KEY"}
budgets: {dailyUSD: "$limit_usd", monthlyUSD: "100000.00"}
limits: {maxRunning: 100}
CFG
nb=$(new_namespace budget)
start_controller budget "$nb" --config "$T_TMP/budget.yaml"
start_kubelet "$nb"
for i in 1 2 3 4 5 6 7 8; do
    printf -- '---\napiVersion: aitask.dev/v1alpha1\nkind: AITask\nmetadata: {name: b%d, namespace: %s}\nspec:\n  runtime: python\n  code: "raise SystemExit(%d)"\n  healing: {maxAttempts: 2, backoffSeconds: 0}\n' "$i" "$nb" "$i"
done | kubectl apply -f - >/dev/null
done_all() {
    [[ $(kubectl get aitask -n "$nb" -o json | jq '[.items[]|select(.status.phase=="Succeeded" or .status.phase=="Failed")]|length') == 8 ]]
}
check "8 concurrent tasks against a small daily budget all finish" wait_for 120 done_all
refused=$(kubectl get aitask -n "$nb" -o json | jq '[.items[]|select(.status.conditions // []|map(select(.type=="BudgetExceeded" and .status=="True"))|length>0)]|length')
healed=$(kubectl get aitask -n "$nb" -o json | jq '[.items[]|select(.status.phase=="Succeeded")]|length')
check "some were healed ($healed) and the rest ended BudgetExceeded ($refused)" \
    test "$healed" -ge 1 -a "$refused" -ge 1 -a $((healed + refused)) -eq 8
after=$(ledger_day)
echo "    daily ledger: $spent -> $after micro-USD, limit $limit"
check "the daily total never passed the budget by more than one reservation (0.5 USD)" \
    test "$after" -le $((limit + 500000))

t_finish
