#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Distributed tracing end to end: the controller exports OTLP/HTTP JSON to a real OpenTelemetry
# Collector (hack/otelcol.sh, file exporter); a task healed after a provider failure must show
# the tree reconcile -> attempt 1 -> heal -> provider 1 (error) + provider 2 (ok), and attempt 2,
# in one trace whose id is in the attempt's status, its audit entries and the log lines.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

install_crd || { fail "CRD installed"; t_finish; exit 1; }
bash "$AIT_SOURCE_DIR/hack/tools.sh" otelcol >/dev/null || { fail "collector built"; t_finish; exit 1; }
O=$T_TMP/otel
eval "$(bash "$AIT_SOURCE_DIR/hack/otelcol.sh" start --dir "$O" | grep OTEL_EXPORTER_OTLP_ENDPOINT | sed 's/^/export /; s/^export export/export/')"
trap 'bash "$AIT_SOURCE_DIR/hack/otelcol.sh" stop --dir "$O" >/dev/null 2>&1; t_cleanup' EXIT
check "collector running (endpoint ${OTEL_EXPORTER_OTLP_ENDPOINT:-none})" test -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
start_fake_llm || { fail "fake LLM started"; t_finish; exit 1; }
start_audit_etcd || { fail "audit etcd started"; t_finish; exit 1; }
cat >"$T_TMP/config.yaml" <<CFG
providers:
- {name: first, type: openai, baseURL: "$LLM_URL/first/v1", model: m1, timeoutMs: 3000}
- {name: second, type: gemini, baseURL: "$LLM_URL/second/v1beta", model: m2, timeoutMs: 3000}
audit: {etcdEndpoint: "$ETCD_URL", keyFile: "$AUDIT_KEY"}
CFG
ns=$(new_namespace trace)
export OTEL_SERVICE_NAME=aitask-controller-test OTEL_BSP_SCHEDULE_DELAY=200
start_controller tr "$ns" --config "$T_TMP/config.yaml" -v 2
ctrl=$LAST_PID
start_kubelet "$ns"
llm_script '{"route":"first","queue":[{"do":"status","code":500}]}'
sed "s/name: heal-python/name: traced\n  namespace: $ns/" "$AIT_SOURCE_DIR/crd/samples/heal-python.yaml" |
    kubectl apply -f - >/dev/null
check "the task is healed" wait_jp 90 "$ns" traced '{.status.phase}' Succeeded
tid=$(jp "$ns" traced '{.status.attempts[0].traceID}')
check "attempts carry a trace id ($tid), the same for both" \
    test -n "$tid" -a "$tid" = "$(jp "$ns" traced '{.status.attempts[1].traceID}')"
kill -TERM "$ctrl"; wait "$ctrl" 2>/dev/null   # flushes the span queue
sleep 2
S=$O/spans.json
spans() { jq -c --arg t "$tid" '.resourceSpans[]?.scopeSpans[]?.spans[]? | select(.traceId==$t)' "$S"; }
spans >"$T_TMP/tree.json"
count=$(wc -l <"$T_TMP/tree.json")
check "the collector received the task's spans ($count)" test "$count" -ge 6
id_of() { jq -r --arg n "$1" 'select(.name==$n)|.spanId' "$T_TMP/tree.json" | head -1; }
parent_of() { jq -r --arg n "$1" 'select(.name==$n)|.parentSpanId // ""' "$T_TMP/tree.json" | head -1; }
a1=$(id_of "attempt 1"); heal=$(id_of heal); a2=$(id_of "attempt 2")
check "attempt 1 is a child of a reconcile span" \
    test "$(jq -r --arg p "$(parent_of "attempt 1")" 'select(.spanId==$p)|.name' "$T_TMP/tree.json")" = reconcile
check "heal is a child of attempt 1" test -n "$a1" -a "$(parent_of heal)" = "$a1"
check "provider first failed under heal (error status)" \
    test "$(jq -r --arg h "$heal" 'select(.name=="provider first" and .parentSpanId==$h)|.status.code' "$T_TMP/tree.json" | head -1)" = 2
check "provider second answered under heal, after first (a failover sibling)" \
    test -n "$(jq -r --arg h "$heal" 'select(.name=="provider second" and .parentSpanId==$h and (.status.code // 0) != 2)|.spanId' "$T_TMP/tree.json")"
check "attempt 2 exists in the same trace" test -n "$a2"
check "Kubernetes API requests appear as client spans (kind 3)" \
    test -n "$(jq -r 'select(.name|startswith("kube "))|select(.kind==3)|.spanId' "$T_TMP/tree.json" | head -1)"
check "the service name comes from OTEL_SERVICE_NAME" \
    grep -q 'aitask-controller-test' "$S"
check "the traceparent header reached the providers with this trace id" \
    bash -c "curl -sf '$LLM_URL/_requests' | jq -r '.requests[].headers.traceparent // .requests[].headers.Traceparent // empty' | grep -q '$tid'"
check "log lines inside the reconcile carry traceID" \
    grep -q "\"traceID\":\"$tid\"" "$T_TMP/tr.log"
"$AIT_BUILD_DIR/aitaskctl" audit show "$ns/traced" --kubeconfig "$KUBECONFIG" \
    --etcd-endpoint "$ETCD_URL" -o json >"$T_TMP/audit.json" 2>&1
check "audit entries carry the same trace id" \
    test "$(jq --arg t "$tid" '[.. | objects | select(.traceID? == $t)] | length' "$T_TMP/audit.json")" -ge 4

t_finish
