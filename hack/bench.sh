#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one controller benchmark (SPEC.md §9) against its own real local control plane:
#
#   hack/bench.sh latency|throughput|memory|startup|cpu [benchmark options...]
#   hack/bench.sh all                      every benchmark in turn, default options
#
# Builds the library and the controller (RelWithDebInfo) in build-bench/ (AIT_BENCH_BUILD
# overrides), compiles the benchmark with cc against build-bench/libait.a, starts a cluster
# with hack/cluster.sh (its own --dir and --name), installs the CRD, runs the benchmark and stops
# the cluster (by PID, through cluster.sh down) on exit. Benchmarks print figures; the lines
# starting with "FIGURES" are the summary. Options of each are in tests/bench/README.md.
# AIT_BENCH_CONTROLLER=PATH benchmarks another controller binary (e.g. an experimental build);
# AIT_BENCH_KEEP=1 keeps the cluster folder (controller logs, profiles); AIT_BENCH_REBUILD=0
# skips the ninja step.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=hack/lib.sh
. "$here/lib.sh"

name=${1:-}
shift || true
case $name in
    latency | throughput | memory | startup | cpu) ;;
    all)
        for b in latency throughput memory startup cpu; do "$0" "$b" "$@"; done
        exit 0
        ;;
    *)
        echo "usage: $0 latency|throughput|memory|startup|cpu|all [options]" >&2
        exit 2
        ;;
esac

build=${AIT_BENCH_BUILD:-$root/build-bench}
if [[ ! -x $build/aitask-controller || ! -f $build/libait.a || ${AIT_BENCH_REBUILD:-1} == 1 ]]; then
    [[ -f $build/build.ninja ]] ||
        cmake -S "$root" -B "$build" -G Ninja -DAIT_TESTS=OFF >/dev/null
    ninja -C "$build" -j2 aitask-controller ait >/dev/null
fi
bin=$build/bench_$name
# shellcheck disable=SC2046
cc -O2 -g -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
    -I"$root/src" -I"$build/gen" "$root/tests/bench/bench_$name.c" "$root/tests/bench/benchlib.c" \
    "$build/libait.a" $(pkg-config --libs libcurl json-c yaml-0.1 libmicrohttpd) \
    -lssl -lcrypto -lpthread -lm -o "$bin"

dir=$(mktemp -d "${TMPDIR:-/tmp}/ait-bench-$name-XXXXXX")
cname="bench-$name-$$"
cleanup() {
    bash "$here/cluster.sh" down --dir "$dir" --name "$cname" >/dev/null 2>&1 || true
    if [[ ${AIT_BENCH_KEEP:-0} == 1 ]]; then
        ait_log "bench: logs kept in $dir"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
bash "$here/cluster.sh" up --dir "$dir" --name "$cname" >/dev/null
export KUBECONFIG=$dir/kubeconfig AIT_CLUSTER_DIR=$dir AIT_SOURCE_DIR=$root
export AIT_CONTROLLER=${AIT_BENCH_CONTROLLER:-$build/aitask-controller}
kubectl apply --server-side -f "$root/crd/aitask.dev_aitasks.yaml" >/dev/null
wait_crd aitasks.aitask.dev Established 60
ait_log "bench: $name $* (cluster in $dir)"
"$bin" "$@"
