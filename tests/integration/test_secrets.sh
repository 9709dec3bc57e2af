#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Vault end to end: a real OpenBao (hack/vault.sh: TLS, file storage) with the Kubernetes auth
# method against the real kube-apiserver, the controller resolving secretRefs into an ephemeral
# Secret and reading provider keys from Vault, the audit chain in a real etcd, and the fake
# kubelet (which reads the Secret as a kubelet would) and fake LLM providers.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

install_crd || { fail "CRD installed"; t_finish; exit 1; }
bash "$AIT_SOURCE_DIR/hack/tools.sh" bao >/dev/null || { fail "OpenBao built"; t_finish; exit 1; }
V=$T_TMP/vault
bash "$AIT_SOURCE_DIR/hack/vault.sh" start --dir "$V" >/dev/null || { fail "OpenBao started"; t_finish; exit 1; }
stop_vault() { bash "$AIT_SOURCE_DIR/hack/vault.sh" stop --dir "$V" >/dev/null 2>&1; }
trap 'stop_vault; t_cleanup' EXIT
eval "$(bash "$AIT_SOURCE_DIR/hack/vault.sh" env --dir "$V")"
export BAO_TOKEN
BAO_TOKEN=$(cat "$V/root-token")
start_fake_llm || { fail "fake LLM started"; t_finish; exit 1; }
start_audit_etcd || { fail "audit etcd started"; t_finish; exit 1; }

sys=$(new_namespace aitask-system)
kubectl create serviceaccount -n "$sys" aitask-controller >/dev/null
bash "$AIT_SOURCE_DIR/hack/vault.sh" k8s-auth --dir "$V" --namespace "$sys" --sa aitask-controller \
    --role aitask --read 'secret/data/demo/*' --read 'secret/data/llm/*' --ttl 60s >/dev/null ||
    { fail "Kubernetes auth configured"; t_finish; exit 1; }
kubectl create token -n "$sys" aitask-controller --duration=1h >"$T_TMP/sa.jwt"

# Values that must never show up anywhere but in the sandbox.
WEATHER=weather-token-$RANDOM$RANDOM
KEY1=provider-key-one-$RANDOM$RANDOM
KEY2=provider-key-two-$RANDOM$RANDOM
bao kv put -mount=secret demo/weather token="$WEATHER" >/dev/null
bao kv put -mount=secret llm/primary apiKey="$KEY1" >/dev/null
bao kv put -mount=secret private/x token=nope >/dev/null

cat >"$T_TMP/config.yaml" <<CFG
providers:
- {name: primary, type: openai, baseURL: "$LLM_URL/primary/v1", model: gpt-test,
   vaultPath: secret/llm/primary, priceInputPerMTok: "1.00", priceOutputPerMTok: "2.00", timeoutMs: 3000}
vault: {address: "$BAO_ADDR", caFile: "$BAO_CACERT", role: aitask, jwtFile: "$T_TMP/sa.jwt", mount: secret}
audit: {etcdEndpoint: "$ETCD_URL", keyFile: "$AUDIT_KEY"}
CFG
ns=$(new_namespace secrets)
start_controller sec "$ns" --config "$T_TMP/config.yaml" -v 4
start_kubelet "$ns"

sed "s/name: secrets-python/name: secrets-python\n  namespace: $ns/" \
    "$AIT_SOURCE_DIR/crd/samples/secrets-python.yaml" | kubectl apply -f - >/dev/null
check "a task with secretRefs runs with the Vault value (Kubernetes auth login)" \
    wait_jp 60 "$ns" secrets-python '{.status.phase}' Succeeded
check "the sandbox saw the secret (its length only)" \
    test "$(jp "$ns" secrets-python '{.status.result.output}')" = "got a token of ${#WEATHER} characters for Lisbon"
check "SecretsReady=True" \
    test "$(jp "$ns" secrets-python '{.status.conditions[?(@.type=="SecretsReady")].status}')" = True
check "the ephemeral Secret is deleted when the attempt ends" \
    wait_for 20 test -z "$(kubectl get secret -n "$ns" secrets-python-a1-env -o name 2>/dev/null)"
"$AIT_BUILD_DIR/aitaskctl" audit show "$ns/secrets-python" --kubeconfig "$KUBECONFIG" \
    --etcd-endpoint "$ETCD_URL" -o json >"$T_TMP/show.json" 2>&1
check "the secret access is in the audit chain (secret.read naming the path, never the value)" \
    test "$(jq '[.. | objects | select(.action? == "secret.read" and .details.path? == "secret/demo/weather")] | length' "$T_TMP/show.json")" -ge 1

# ---- a denied path: a clear condition, the task kept queued
cat <<Y | kubectl apply -f - >/dev/null
apiVersion: aitask.dev/v1alpha1
kind: AITask
metadata: {name: denied, namespace: $ns}
spec:
  runtime: python
  code: "print(1)"
  secretRefs: [{env: T, vaultPath: secret/private/x, key: token}]
Y
check "a denied Vault path: SecretsReady=False, reason SecretAccessDenied" \
    wait_jp 30 "$ns" denied '{.status.conditions[?(@.type=="SecretsReady")].reason}' SecretAccessDenied
check "the message names the path" \
    grep -q 'private/x' <<<"$(jp "$ns" denied '{.status.conditions[?(@.type=="SecretsReady")].message}')"
check "no pod for the denied task" test -z "$(kubectl get pod -n "$ns" denied-a1 -o name 2>/dev/null)"

# ---- Vault down: a cached value is still served; an uncached one waits, then recovers
bao kv put -mount=secret demo/outage token="$WEATHER" >/dev/null
stop_vault
sed "s/name: secrets-python/name: from-cache\n  namespace: $ns/" \
    "$AIT_SOURCE_DIR/crd/samples/secrets-python.yaml" | kubectl apply -f - >/dev/null
check "with Vault down, a value read within the cache TTL is still served" \
    wait_jp 60 "$ns" from-cache '{.status.phase}' Succeeded
sed -e "s/name: secrets-python/name: after-outage\n  namespace: $ns/" -e "s#secret/demo/weather#secret/demo/outage#" \
    "$AIT_SOURCE_DIR/crd/samples/secrets-python.yaml" | kubectl apply -f - >/dev/null
check "with Vault down an uncached secret holds the task: SecretsReady=False, VaultUnavailable" \
    wait_jp 30 "$ns" after-outage '{.status.conditions[?(@.type=="SecretsReady")].reason}' VaultUnavailable
check "... and no pod was created" test -z "$(kubectl get pod -n "$ns" after-outage-a1 -o name 2>/dev/null)"
bash "$AIT_SOURCE_DIR/hack/vault.sh" start --dir "$V" >/dev/null
check "after Vault returns the task succeeds" wait_jp 90 "$ns" after-outage '{.status.phase}' Succeeded

# ---- provider key rotated in Vault: the old key is rejected, the heal still succeeds
bao kv put -mount=secret llm/primary apiKey="$KEY2" >/dev/null
llm_script '{"route":"primary","queue":[{"do":"auth","code":401}]}'
cat <<Y | kubectl apply -f - >/dev/null
apiVersion: aitask.dev/v1alpha1
kind: AITask
metadata: {name: rotated, namespace: $ns}
spec:
  runtime: python
  code: "raise SystemExit(3)"
  healing: {maxAttempts: 2, backoffSeconds: 0, providers: [primary]}
Y
check "after the 401 the key is re-read from Vault and the heal succeeds" \
    wait_jp 90 "$ns" rotated '{.status.phase}' Succeeded
auths=$(curl -sf "$LLM_URL/_requests?route=primary" | jq -r '.requests[-2:][].headers.Authorization // .requests[-2:][].headers.authorization')
check "the retried request carried the rotated key" grep -q "$KEY2" <<<"$auths"

port=$(grep -o '"metricsPort":"[0-9]*"' "$T_TMP/sec.log" | head -1 | grep -o '[0-9][0-9]*')
age=$(curl -sf "http://127.0.0.1:$port/metrics" | grep '^aitask_secret_age_seconds{path="secret/llm/primary"}' | awk '{print $2}')
check "aitask_secret_age_seconds is exported for the provider key ($age s)" \
    bash -c "[[ -n '$age' ]] && awk 'BEGIN{exit !($age >= 0 && $age < 600)}'"

# ---- no secret value anywhere it must not be
leak() {
    local v
    for v in "$WEATHER" "$KEY1" "$KEY2"; do
        grep -rqF "$v" "$T_TMP"/sec.log && return 0
        kubectl get aitask,events -n "$ns" -o json | grep -qF "$v" && return 0
        "$AIT_BUILD_DIR/aitaskctl" audit show "$ns/secrets-python" --kubeconfig "$KUBECONFIG" \
            --etcd-endpoint "$ETCD_URL" --key "$AUDIT_KEY" -o json 2>/dev/null | grep -qF "$v" && return 0
        "$AIT_BUILD_DIR/aitaskctl" audit show "$ns/rotated" --kubeconfig "$KUBECONFIG" \
            --etcd-endpoint "$ETCD_URL" --key "$AUDIT_KEY" -o json 2>/dev/null | grep -qF "$v" && return 0
    done
    return 1
}
if leak; then
    fail "no secret value in the controller log (-v 4), statuses, events or audit entries"
else
    pass "no secret value in the controller log (-v 4), statuses, events or audit entries"
fi

t_finish
