#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the chart's monitoring files (needs no cluster; ignores the fixture's env but
# AIT_SOURCE_DIR/AIT_BUILD_DIR): `promtool check rules` and `promtool test rules` on
# charts/aitask-operator/files/prometheus-rules.yaml and tests/rules/*.yaml; the dashboard is
# valid JSON with a ${datasource} variable used by every panel; and every metric name in a
# dashboard or rule expression is one src/metrics declares (or a recording rule of the file).
# The name check runs on known-bad input first, to prove it can fail.
set -euo pipefail
src=${AIT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
rules=$src/charts/aitask-operator/files/prometheus-rules.yaml
dash=$src/charts/aitask-operator/files/dashboard.json
fail=0
err() {
    echo "test_rules: $*" >&2
    fail=1
}
for tool in promtool jq; do
    command -v "$tool" >/dev/null || {
        echo "test_rules: $tool is required (Debian: prometheus, jq)" >&2
        exit 1
    }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Rules load and their unit tests pass.
promtool check rules "$rules" || err "promtool check rules failed"
(cd "$src/tests/rules" && promtool test rules ./*.yaml) || err "promtool test rules failed"

# 2. Every alert has a severity and summary/description/runbook annotations.
if command -v yq >/dev/null; then
    yq -r '.groups[].rules[] | select(.alert) |
        select((.labels.severity // "") == "" or (.annotations.summary // "") == "" or
               (.annotations.description // "") == "" or (.annotations.runbook // "") == "")
        | .alert' "$rules" >"$work/bad-alerts"
    if [[ -s $work/bad-alerts ]]; then
        err "alerts without severity or summary/description/runbook: $(tr '\n' ' ' <"$work/bad-alerts")"
    fi
    for a in AITaskAPILatencyBudgetBurn AITaskTaskSuccessBudgetBurn AITaskQueueWaitBudgetBurn \
        AITaskProviderFailoverBudgetBurn AITaskControllerDown AITaskCircuitOpen \
        AITaskBudgetNearlyExhausted AITaskProviderKeyTooOld; do
        yq -e --arg a "$a" '[.groups[].rules[] | select(.alert == $a)] | length == 1' "$rules" \
            >/dev/null || err "alert $a missing"
    done
    yq -r '.groups[].rules[].expr' "$rules" >"$work/rule-exprs"
else
    python3 -c 'import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        print(r["expr"])' "$rules" >"$work/rule-exprs"
fi

# 3. The dashboard is valid JSON, Grafana-shaped, with a ${datasource} variable used everywhere.
jq -e . "$dash" >/dev/null || err "dashboard.json is not valid JSON"
jq -e '.title and .uid and (.schemaVersion | type == "number") and (.panels | length > 10)' \
    "$dash" >/dev/null || err "dashboard.json lacks title/uid/schemaVersion/panels"
jq -e '[.templating.list[] | select(.name == "datasource" and .type == "datasource" and
        .query == "prometheus")] | length == 1' "$dash" >/dev/null ||
    err "dashboard.json has no prometheus \${datasource} variable"
jq -r '.panels[] | select(.type != "row") |
       select(.datasource.uid != "${datasource}" or
              ([.targets[] | select(.datasource.uid != "${datasource}")] | length > 0)) | .title' \
    "$dash" >"$work/bad-ds"
[[ -s $work/bad-ds ]] && err "panels not on \${datasource}: $(tr '\n' ';' <"$work/bad-ds")"
jq -r '.panels[] | select(.type != "row") | .id' "$dash" | sort | uniq -d >"$work/dup-ids"
[[ -s $work/dup-ids ]] && err "duplicate panel ids: $(tr '\n' ' ' <"$work/dup-ids")"
jq -r '.. | objects | .expr? // empty' "$dash" >"$work/panel-exprs"
for want in aitask_tasks_total aitask_queue_wait_seconds controller_runtime_reconcile_total \
    aitask_heals_total aitask_provider_failover_seconds aitask_llm_cost_usd_total \
    aitask_budget_used_ratio aitask_provider_circuit_open process_resident_memory_bytes \
    process_cpu_seconds_total workqueue_depth aitask_task_duration_seconds; do
    grep -q "$want" "$work/panel-exprs" || err "no dashboard panel shows $want"
done
{
    cat "$work/panel-exprs"
    # label_values(metric, label): only the metric is a metric name.
    jq -r '.templating.list[] | .definition? // empty' "$dash" |
        sed -E 's/label_values\(([^,)]*)(,[^)]*)?\)/\1/'
} >"$work/dash-exprs"

# 4. Names src/metrics declares: string literals of the standard families and process metrics.
# Histograms (type H in std.c's table) may also appear with _bucket/_sum/_count.
prefix='(aitask|controller_runtime|workqueue|rest_client|leader_election|process)_[a-z0-9_]*'
grep -ohE "\"$prefix\"" "$src/src/metrics/std.c" "$src/src/metrics/process.c" | tr -d '"' |
    sort -u >"$work/declared"
tr '\n' ' ' <"$src/src/metrics/std.c" | grep -oE "H, +\"$prefix\"" | grep -oE "$prefix" |
    sort -u >"$work/histograms"
[[ $(wc -l <"$work/declared") -ge 30 ]] || err "found only $(wc -l <"$work/declared") declared names"
[[ $(wc -l <"$work/histograms") -ge 6 ]] || err "found only $(wc -l <"$work/histograms") histograms"
# When the unit test has run in this build folder, its list of what the registry really holds
# must equal what was read from the source.
if [[ -n ${AIT_BUILD_DIR:-} && -f $AIT_BUILD_DIR/metrics-declared.txt ]]; then
    awk '{print $1}' "$AIT_BUILD_DIR/metrics-declared.txt" | sort -u >"$work/registry"
    diff "$work/declared" "$work/registry" >&2 || err "declared names differ from the registry"
    awk '$2 == "histogram" {print $1}' "$AIT_BUILD_DIR/metrics-declared.txt" | sort -u |
        diff "$work/histograms" - >&2 || err "histogram names differ from the registry"
fi
grep -oE '^ *- record: [^ ]+' "$rules" | awk '{print $3}' | sort -u >"$work/records"

# Prints each metric name an expression file uses, one per line: strings, label matchers,
# ranges and grouping clauses are removed; identifiers followed by "(" are functions.
metric_names() {
    sed -E -e 's/"([^"\\]|\\.)*"//g' -e "s/'[^']*'//g" -e 's/`[^`]*`//g' \
        -e 's/\{[^}]*\}//g' -e 's/\[[^]]*\]//g' \
        -e 's/\b(by|without|on|ignoring|group_left|group_right) *\([^)]*\)//g' "$1" |
        grep -oE '[A-Za-z_:][A-Za-z0-9_:]*[[:space:]]*\(?' |
        grep -vE '\($' | tr -d ' \t' |
        grep -vxE 'and|or|unless|bool|offset|by|without|on|ignoring|group_left|group_right' || true
}
# check_names FILE ALLOWED_EXTRA: prints unknown names; returns non-zero when there are any.
check_names() {
    local file=$1 extra=$2 bad=0 n base
    while read -r n; do
        [[ -z $n ]] && continue
        grep -qxF "$n" "$work/declared" "$work/records" && continue
        [[ -n $extra && $n == "$extra" ]] && continue
        base=${n%_bucket}
        base=${base%_sum}
        base=${base%_count}
        if [[ $base != "$n" ]] && grep -qxF "$base" "$work/histograms"; then
            continue
        fi
        echo "  unknown metric: $n" >&2
        bad=1
    done < <(metric_names "$file" | sort -u)
    return $bad
}
# The check must be able to fail: an undeclared name, a suffix on a gauge, and a typo.
printf '%s\n' 'sum(rate(aitask_nonexistent_total{job=~"$job"}[5m]))' >"$work/neg1"
printf '%s\n' 'aitask_queue_depth_bucket{le="1"}' >"$work/neg2"
printf '%s\n' 'histogram_quantile(0.9, sum by (le) (rate(aitask_queue_wait_second_bucket[5m])))' \
    >"$work/neg3"
printf '%s\n' 'histogram_quantile(0.9, sum by (le) (rate(aitask_queue_wait_seconds_bucket{le="30"}[5m]))) / on (job) group_left sum(aitask:slo_failover_errors:ratio_rate5m) and time() > 1' \
    >"$work/pos1"
for neg in neg1 neg2 neg3; do
    if check_names "$work/$neg" "" 2>/dev/null; then
        err "self-test: the name check accepted $(cat "$work/$neg")"
    fi
done
check_names "$work/pos1" "" || err "self-test: the name check rejected valid names"

check_names "$work/dash-exprs" "" || err "dashboard uses metrics that src/metrics does not declare"
check_names "$work/rule-exprs" "up" || err "rules use metrics that src/metrics does not declare"

if ((fail)); then
    echo "test_rules: FAILED" >&2
    exit 1
fi
echo "test_rules: rules, rule tests, dashboard and metric names OK"
