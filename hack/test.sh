#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: installs what a fresh Debian machine lacks, builds the real servers the tests
# need (cached outside the repository), then builds and runs every test twice: a normal build and
# an AddressSanitizer + UndefinedBehaviorSanitizer build, each with unit, lint, fuzz-corpus and
# integration tests against a real local control plane; finally the libFuzzer targets run
# briefly under clang. Exits non-zero on any failure.
#
#   hack/test.sh            everything
#   hack/test.sh quick      normal build, unit + lint + fuzz corpus only (no cluster)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
# shellcheck source=hack/lib.sh
. hack/lib.sh

mode=${1:-all}
jobs=${AIT_JOBS:-2}
fuzz_seconds=${AIT_FUZZ_SECONDS:-10}
total_pass=0
total_fail=0
failed_stages=()

bash hack/deps.sh
if [[ $mode != quick ]]; then
    bash hack/tools.sh all
fi

run_ctest() { # name builddir [ctest args...]
    local name=$1 dir=$2
    shift 2
    local log=$dir/ctest.log rc=0
    ait_log "stage $name: ctest $*"
    ctest --test-dir "$dir" --output-on-failure --timeout 900 -j "$jobs" "$@" 2>&1 | tee "$log" || rc=$?
    local line passed failed
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$log" | tail -1 || true)
    if [[ -n $line ]]; then
        failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
        total=$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<<"$line")
        passed=$((total - failed))
        total_pass=$((total_pass + passed))
        total_fail=$((total_fail + failed))
    fi
    if ((rc != 0)); then failed_stages+=("$name"); fi
}

configure_build() { # dir [cmake args...]
    local dir=$1
    shift
    cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
    ninja -C "$dir" -j "$jobs"
}

if [[ $mode == quick ]]; then
    configure_build build -DAIT_INTEGRATION=OFF
    run_ctest quick build -LE integration
else
    configure_build build -DAIT_INTEGRATION=ON -DAIT_SANITIZE=OFF -DAIT_FUZZ=OFF
    run_ctest normal build
    # valgrind on the unit tests (STYLE.md): memory errors and definite leaks fail the stage.
    ait_log "stage valgrind: unit tests under memcheck"
    for t in build/test_*; do
        [[ -x $t ]] || continue
        if (cd build && AIT_SOURCE_DIR=$top AIT_BUILD_DIR=$top/build timeout 600 valgrind -q \
            --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite "./$(basename "$t")") >"$t.valgrind.log" 2>&1; then
            total_pass=$((total_pass + 1))
        else
            total_fail=$((total_fail + 1))
            failed_stages+=("valgrind:$(basename "$t")")
            tail -40 "$t.valgrind.log"
        fi
    done
    # Integration tests run against the sanitizer build too; ASan's leak checker runs at exit.
    configure_build build-asan -DAIT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DAIT_INTEGRATION=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest sanitizers build-asan
    # libFuzzer targets, briefly: each runs for AIT_FUZZ_SECONDS from its seed corpus.
    cmake -S . -B build-fuzz -G Ninja -DAIT_FUZZ=ON -DAIT_INTEGRATION=OFF \
        -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DAIT_SANITIZE=ON >/dev/null
    fuzz_targets=()
    for src in tests/fuzz/fuzz_*.c; do fuzz_targets+=("$(basename "$src" .c)"); done
    ninja -C build-fuzz -j "$jobs" "${fuzz_targets[@]}"
    for f in build-fuzz/fuzz_*; do
        [[ -x $f ]] || continue
        name=$(basename "$f")
        corpus=tests/fuzz/corpus/${name#fuzz_}
        work=$(mktemp -d)
        cp -r "$corpus"/. "$work"/ 2>/dev/null || true
        ait_log "fuzz $name for ${fuzz_seconds}s"
        if "$f" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1 "$work" \
            >"build-fuzz/$name.log" 2>&1; then
            total_pass=$((total_pass + 1))
            grep -E 'stat::number_of_executed_units' "build-fuzz/$name.log" || true
        else
            total_fail=$((total_fail + 1))
            failed_stages+=("$name")
            tail -40 "build-fuzz/$name.log"
        fi
        rm -rf "$work"
    done
fi

if ((${#failed_stages[@]} > 0)); then
    echo "failed stages: ${failed_stages[*]}"
fi
echo "$total_pass passed, $total_fail failed"
((${#failed_stages[@]} == 0 && total_fail == 0))
