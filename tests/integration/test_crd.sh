#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The AITask CRD against the real kube-apiserver: it installs and becomes Established, every
# sample is accepted and created, every manifest in crd_invalid/ is rejected with the schema's
# message for that case, defaults are filled, spec is immutable while status stays writable
# through the status subresource, `kubectl explain` and the printer columns work.
# Needs KUBECONFIG and AIT_SOURCE_DIR; works in its own namespace, which it deletes at the end.
# The CRD itself is left installed: other tests share it, and applying it is idempotent.
set -uo pipefail
: "${AIT_SOURCE_DIR:?AIT_SOURCE_DIR must point at the source tree}"
: "${KUBECONFIG:?KUBECONFIG must point at a running cluster}"
# shellcheck source=hack/lib.sh
. "$AIT_SOURCE_DIR/hack/lib.sh"

crd=$AIT_SOURCE_DIR/crd/aitask.dev_aitasks.yaml
samples=$AIT_SOURCE_DIR/crd/samples
invalid=$AIT_SOURCE_DIR/tests/integration/crd_invalid
ns=crd-test-$$-$RANDOM
tmp=$(mktemp -d)
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    [[ -z ${2:-} ]] || printf '       %s\n' "$2" | head -20
}
# check NAME COMMAND...: passes when the command succeeds.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
# expect_eq NAME WANT GOT
expect_eq() {
    if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}
# expect_reject NAME FRAGMENT COMMAND...: the command must fail and its output contain FRAGMENT.
expect_reject() {
    local name=$1 frag=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    if ((rc == 0)); then
        fail "$name: accepted but must be rejected" "$out"
    elif ! grep -qF -- "$frag" <<<"$out"; then
        fail "$name: rejected without '$frag'" "$out"
    else
        pass "$name"
    fi
}
k() { kubectl -n "$ns" "$@"; }
# manifest NAME SPEC-YAML: an AITask manifest on stdout (SPEC-YAML indented by two spaces).
manifest() {
    printf 'apiVersion: aitask.dev/v1alpha1\nkind: AITask\nmetadata:\n  name: %s\nspec:\n%s\n' "$1" "$2"
}

cleanup() {
    kubectl delete namespace "$ns" --wait=false --ignore-not-found >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- install -----------------------------------------------------------------------------------
check "CRD server-side applied" kubectl apply --server-side --force-conflicts \
    --field-manager=aitask-tests -f "$crd"
check "CRD Established" wait_crd aitasks.aitask.dev Established 60
check "CRD NamesAccepted" wait_crd aitasks.aitask.dev NamesAccepted 60
check "CRD re-apply is idempotent" kubectl apply --server-side --force-conflicts \
    --field-manager=aitask-tests -f "$crd"
expect_eq "CRD names" "AITask AITaskList aitasks aitask ait ai Namespaced" \
    "$(kubectl get crd aitasks.aitask.dev -o jsonpath='{.spec.names.kind} {.spec.names.listKind} {.spec.names.plural} {.spec.names.singular} {.spec.names.shortNames[*]} {.spec.names.categories[*]} {.spec.scope}')"
check "hack/crd-check.sh (schema names, descriptions, chart copy)" bash "$AIT_SOURCE_DIR/hack/crd-check.sh"
check "namespace $ns created" kubectl create namespace "$ns"

# --- samples -------------------------------------------------------------------------------------
nsamples=0
for f in "$samples"/*.yaml; do
    b=$(basename "$f")
    nsamples=$((nsamples + 1))
    check "sample $b accepted by server dry-run" k apply --dry-run=server -f "$f"
    check "sample $b created" k create -f "$f"
done
((nsamples >= 6)) && pass "at least 6 samples ($nsamples)" || fail "only $nsamples samples"
for s in hello-python heal-python secrets-python prompt-only hello-node hello-bash; do
    check "sample $s exists" k get aitask "$s"
done
expect_eq "secrets sample kept its secretRefs" "API_TOKEN secret/demo/weather token" \
    "$(k get aitask secrets-python -o jsonpath='{.spec.secretRefs[0].env} {.spec.secretRefs[0].vaultPath} {.spec.secretRefs[0].key}')"

# --- invalid manifests ---------------------------------------------------------------------------
ninvalid=0
for f in "$invalid"/*.yaml; do
    b=$(basename "$f")
    frag=$(sed -n 's/^# expect: //p' "$f")
    if [[ -z $frag ]]; then fail "$b has no '# expect:' line"; continue; fi
    ninvalid=$((ninvalid + 1))
    expect_reject "invalid $b rejected" "$frag" k create -f "$f"
done
((ninvalid >= 12)) && pass "at least 12 invalid manifests ($ninvalid)" ||
    fail "only $ninvalid invalid manifests"

# valueFrom is refused by a CEL rule, so even a client that skips field validation cannot
# smuggle it in (unknown fields would merely be pruned there).
expect_reject "env valueFrom rejected without client field validation" \
    "spec.env[].valueFrom is not supported" \
    k create --validate=false -f "$invalid/env-valuefrom.yaml"

# Code over 256 KiB (generated here rather than stored).
python3 - "$tmp" <<'PY'
import json, sys
for name, size in (("code-max", 262144), ("code-too-large", 262145)):
    doc = {"apiVersion": "aitask.dev/v1alpha1", "kind": "AITask",
           "metadata": {"name": name},
           "spec": {"runtime": "python", "code": "#" * (size - 9) + "\nprint(1)"}}
    assert len(doc["spec"]["code"]) == size
    with open(f"{sys.argv[1]}/{name}.json", "w") as f:
        json.dump(doc, f)
PY
expect_reject "code of 256 KiB + 1 rejected" "spec.code: Too long" k create -f "$tmp/code-too-large.json"
check "code of exactly 256 KiB accepted" k create -f "$tmp/code-max.json"

# --- valid edge cases ----------------------------------------------------------------------------
check "image+command without runtime accepted" k create -f - < <(manifest custom-image \
    '  image: docker.io/library/python:3.12-alpine
  command: ["python3", "-I", "main.py"]
  code: print(1)')
check "bounds accepted (1 attempt, 1 s, temperature 0, quantities)" k create -f - < <(manifest edge-low \
    '  runtime: bash
  code: "true"
  timeoutSeconds: 1
  healing: {maxAttempts: 1, backoffSeconds: 0, temperature: 0}
  resources: {requests: {cpu: 1, memory: 64Mi}, limits: {cpu: 1500m, memory: "1e9"}}
  budget: {maxCostUSD: "0.000001"}')
check "bounds accepted (10 attempts, 1 day, temperature 1, 8 providers)" k create -f - < <(manifest edge-high \
    '  runtime: node
  prompt: print the date
  timeoutSeconds: 86400
  healing:
    maxAttempts: 10
    backoffSeconds: 3600
    temperature: 1
    providers: [openai, anthropic, gemini, mistral, groq, ollama, local-llm, backup.llm]
  sandbox: {runtimeClassName: kata.io, networkAccess: true}')

# --- defaults -------------------------------------------------------------------------------------
check "minimal task created" k create -f - < <(manifest minimal '  runtime: python
  code: print("hi")')
expect_eq "defaults filled (timeout maxAttempts backoff temperature networkAccess)" \
    "300 3 5 0.2 false" \
    "$(k get aitask minimal -o jsonpath='{.spec.timeoutSeconds} {.spec.healing.maxAttempts} {.spec.healing.backoffSeconds} {.spec.healing.temperature} {.spec.sandbox.networkAccess}')"
expect_eq "given values kept, missing nested defaults filled" "60 3 5" \
    "$(k get aitask hello-python -o jsonpath='{.spec.timeoutSeconds} {.spec.healing.maxAttempts} {.spec.healing.backoffSeconds}')"

# --- immutability and status ----------------------------------------------------------------------
expect_reject "spec patch refused" "spec is immutable; delete and re-create the AITask" \
    k patch aitask minimal --type merge -p '{"spec":{"timeoutSeconds":30}}'
expect_reject "spec patch of a nested default refused" "spec is immutable" \
    k patch aitask minimal --type merge -p '{"spec":{"healing":{"maxAttempts":5}}}'
expect_eq "spec unchanged after refused patches" "300 3" \
    "$(k get aitask minimal -o jsonpath='{.spec.timeoutSeconds} {.spec.healing.maxAttempts}')"
check "metadata stays mutable (label)" k label aitask minimal team=qa
gen_before=$(k get aitask minimal -o jsonpath='{.metadata.generation}')
check "status patched through the status subresource" k patch aitask minimal \
    --subresource=status --type merge -p '{"status":{"phase":"Running","attemptCount":1,"costUSD":"0.0123","observedGeneration":1,"conditions":[{"type":"Healing","status":"False","reason":"NotNeeded","message":"first run","lastTransitionTime":"2025-01-01T00:00:00Z"}],"attempts":[{"index":1,"podName":"minimal-a1","codeSHA256":"3b4d0f1b0c7a0b3c6f2e3d0c1b9a8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7","startTime":"2025-01-01T00:00:00Z","traceID":"4bf92f3577b34da6a3ce929d0e0e4736"}],"audit":{"head":"0000000000000000000000000000000000000000000000000000000000000000","entries":1},"queue":{"position":0,"reason":"WorkersBusy"}}}'
expect_eq "status read back" "Running 1 0.0123 minimal-a1 1" \
    "$(k get aitask minimal -o jsonpath='{.status.phase} {.status.attemptCount} {.status.costUSD} {.status.attempts[0].podName} {.status.audit.entries}')"
expect_eq "status write did not bump generation" "$gen_before" \
    "$(k get aitask minimal -o jsonpath='{.metadata.generation}')"
expect_reject "status with an unknown phase refused" 'Unsupported value: "Done"' \
    k patch aitask minimal --subresource=status --type merge -p '{"status":{"phase":"Done"}}'
expect_reject "status message over 1 KiB refused" "Too long" \
    k patch aitask minimal --subresource=status --type merge \
    -p "{\"status\":{\"attempts\":[{\"index\":1,\"message\":\"$(printf 'x%.0s' {1..1025})\"}]}}"
k patch aitask minimal --type merge -p '{"status":{"phase":"Failed"}}' >/dev/null 2>&1
expect_eq "status ignored on the main resource" "Running" \
    "$(k get aitask minimal -o jsonpath='{.status.phase}')"

# --- kubectl explain and get ----------------------------------------------------------------------
# The OpenAPI document of a new CRD is published shortly after it is Established: retry a little.
for ((i = 0; i < 50; i++)); do
    out=$(kubectl explain aitask.spec.healing 2>&1) && grep -qF maxAttempts <<<"$out" && break
    sleep 0.2
done
for want in "How failed runs are healed" "maxAttempts" "Total number of runs including the first" \
    "backoffSeconds" "providers" "failover order" "temperature"; do
    if grep -qF -- "$want" <<<"$out"; then pass "explain aitask.spec.healing shows '$want'"; else
        fail "explain aitask.spec.healing lacks '$want'" "$out"
    fi
done
out=$(kubectl explain aitask.status.attempts.heal 2>&1)
grep -qF "architectNotes" <<<"$out" && grep -qF "Architect's notes" <<<"$out" &&
    pass "explain aitask.status.attempts.heal documented" ||
    fail "explain aitask.status.attempts.heal" "$out"
out=$(k get ait 2>&1)
hdr=$(head -1 <<<"$out" | tr -s ' ')
expect_eq "kubectl get ait columns" "NAME PHASE ATTEMPTS COST AGE" "$hdr"
expect_eq "kubectl get ait row of the patched task" "minimal Running 1 0.0123" \
    "$(awk '$1 == "minimal" {print $1, $2, $3, $4}' <<<"$out")"
rows=$(k get ai -o name 2>&1 | grep -c '^aitask.aitask.dev/')
((rows >= 10)) && pass "category 'ai' lists the tasks ($rows)" || fail "kubectl get ai" "$rows"

echo "$passed passed, $failed failed"
((failed == 0))
