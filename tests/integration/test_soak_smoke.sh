#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke of the soak under faults (tests/soak/soak.sh): 30 tasks created at 1/s on the soak's own
# control plane, audit etcd, OpenBao and FAKE providers, with every fault of the full soak (API
# server restart, etcd restart, OpenBao restart, the controller SIGKILLed twice) landing while
# they run. Asserts what must hold at any size: every task ends, no pod is created twice, every
# audit chain verifies; the success share only loosely (the full soak prints the real figure).
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

out=$T_TMP/soak.out
AIT_BUILD_DIR=$AIT_BUILD_DIR AIT_SOAK_TIMEOUT=400 timeout 600 \
    bash "$AIT_SOURCE_DIR/tests/soak/soak.sh" --tasks 30 --rate 1 >"$out" 2>&1
echo "    soak exit status $?"
sed -n '/^soak:/,$p' "$out" | sed 's/^/    /'
figure() { grep '^FIGURES soak ' "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

check "the soak printed its figures" grep -q '^FIGURES soak ' "$out"
check "every fault was injected (apiserver, kill1, etcd, vault, kill2)" test "$(figure faults)" = 5
check "all 30 tasks were created despite the API server restart" test "$(figure created)" = 30
check "every task ended (Succeeded or Failed)" test "$(figure ended)" = 30
check "no pod was created twice (API server audit log)" test "$(figure dups)" = 0
check "every task's audit chain verifies" test "$(figure bad_chains)" = 0
check "at least 27 of 30 tasks succeeded" test "$(figure succeeded)" -ge 27
t_finish
