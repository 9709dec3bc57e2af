#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke of the benchmarks (tests/bench, SPEC.md §9) with tiny counts against the shared test
# cluster: each benchmark runs, measures real objects and prints its FIGURES line. No timing is
# asserted (benchmarks measure; hack/bench.sh runs them at full size on their own cluster).
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

install_crd || { fail "CRD installed"; t_finish; exit 1; }

# Compile the benchmarks against the test build's library, like hack/bench.sh does.
cflags=(-O1 -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes
    -Wmissing-prototypes -Wvla -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
    -I"$AIT_SOURCE_DIR/src" -I"$AIT_BUILD_DIR/gen")
if grep -q '^AIT_SANITIZE:BOOL=ON' "$AIT_BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
    cflags+=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
fi
# shellcheck disable=SC2207
libs=($(pkg-config --libs libcurl json-c yaml-0.1 libmicrohttpd) -lssl -lcrypto -lpthread -lm)
cc "${cflags[@]}" -c "$AIT_SOURCE_DIR/tests/bench/benchlib.c" -o "$T_TMP/benchlib.o" ||
    { fail "benchlib compiles"; t_finish; exit 1; }
for b in latency throughput memory startup cpu; do
    cc "${cflags[@]}" "$AIT_SOURCE_DIR/tests/bench/bench_$b.c" "$T_TMP/benchlib.o" \
        "$AIT_BUILD_DIR/libait.a" "${libs[@]}" -o "$T_TMP/bench_$b" &
done
wait
prefix="smoke$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')-"
export AIT_CONTROLLER=$AIT_BUILD_DIR/aitask-controller AIT_BENCH_OUT=$T_TMP
export AIT_BENCH_NS_PREFIX=$prefix

run_bench() { # NAME ARGS...: runs bench_NAME, keeps its output in $T_TMP/NAME.out
    local b=$1
    shift
    [[ -x $T_TMP/bench_$b ]] || return 1
    timeout 60 "$T_TMP/bench_$b" "$@" >"$T_TMP/$b.out" 2>"$T_TMP/$b.err"
}
figure() { # NAME KEY: the value of KEY=... on the FIGURES line of NAME's output
    grep "^FIGURES $1 " "$T_TMP/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
positive() { # VALUE...: true when every value is a number > 0
    local v
    (($#)) || return 1
    for v in "$@"; do awk -v v="$v" 'BEGIN{exit !(v ~ /^[0-9.]+$/ && v+0 > 0)}' || return 1; done
}
show() { sed 's/^/    /' "$T_TMP/$1.out"; tail -5 "$T_TMP/$1.err" | sed 's/^/    stderr: /'; }

run_bench latency --rate 20 --duration 2 --drain 20 --creators 2
check "latency: ran and printed its figures" grep -q '^FIGURES latency p50_ms=' "$T_TMP/latency.out"
check "latency: measured the pods of all 40 tasks" test "$(figure latency n)/$(figure latency missing)" = "40/0"
check "latency: p50 is a measured positive duration" positive "$(figure latency p50_ms)"
show latency

run_bench throughput --count 20 --timeout 40 --creators 2
check "throughput: ran and printed its figures" grep -q '^FIGURES throughput ' "$T_TMP/throughput.out"
check "throughput: the controller and the bare client each made all 20 pods" \
    test "$(figure throughput controller_pods)/$(figure throughput bare_pods)" = "20/20/20/20"
check "throughput: both rates are positive" \
    positive "$(figure throughput controller_pods_per_s)" "$(figure throughput bare_pods_per_s)"
show throughput

run_bench memory --count 20 --creators 2
check "memory: ran and printed its figures" grep -q '^FIGURES memory idle_kib=' "$T_TMP/memory.out"
check "memory: RSS read at every level" \
    positive "$(figure memory idle_kib)" "$(figure memory rss_20_kib)"
show memory

run_bench startup --count 20 --runs 1 --creators 2
check "startup: ran and printed its figures" grep -q '^FIGURES startup ' "$T_TMP/startup.out"
check "startup: ready time measured with 20 tasks" positive "$(figure startup tasks_20_median_ms)"
show startup

run_bench cpu --count 10 --creators 2
check "cpu: ran and printed its figures" grep -q '^FIGURES cpu ' "$T_TMP/cpu.out"
check "cpu: reconciles counted and CPU per 1000 reconciles measured" \
    positive "$(figure cpu reconciles)" "$(figure cpu cpu_s_per_1000_reconciles)"
succeeded_cpu_tasks() {
    kubectl get aitasks -A -o json | jq --arg p "${prefix}bench-cpu-" \
        '[.items[]|select((.metadata.namespace|startswith($p)) and .status.phase=="Succeeded")]|length'
}
check "cpu: the 10 tasks ran to completion (Succeeded, through the fake kubelet)" \
    test "$(succeeded_cpu_tasks)" = 10
show cpu

for ns in $(kubectl get namespaces -o name | sed -n "s|^namespace/\($prefix.*\)|\1|p"); do
    T_NAMESPACES+=("$ns")
done
t_finish
