#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Source checks (curl's checksrc in spirit): bans unsafe C functions, requires the SPDX line, and
# checks formatting with clang-format when it is installed. Exits non-zero on any finding.
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 2
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null | grep -v '^build')
fail=0
banned='\b(sprintf|vsprintf|strcpy|strcat|gets|strtok|atoi|atol)[[:space:]]*\('
for f in "${files[@]}"; do
    [[ -f $f ]] || continue
    if grep -nE "$banned" "$f" | grep -v 'checksrc: allow'; then
        echo "checksrc: $f uses a banned function (use snprintf, ait_buf, strtol)" >&2
        fail=1
    fi
    if ! head -2 "$f" | grep -q 'SPDX-License-Identifier'; then
        echo "checksrc: $f lacks the SPDX line" >&2
        fail=1
    fi
    if grep -nE '^[[:space:]]*//' "$f" >/dev/null; then
        echo "checksrc: $f uses // comments (only /* */)" >&2
        grep -nE '^[[:space:]]*//' "$f" | head -3 >&2
        fail=1
    fi
done
if command -v clang-format >/dev/null 2>&1; then
    if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/checksrc-format.$$; then
        head -40 /tmp/checksrc-format.$$ >&2
        echo "checksrc: formatting differs from .clang-format (run: clang-format -i FILE)" >&2
        fail=1
    fi
    rm -f /tmp/checksrc-format.$$
fi
if ((fail == 0)); then echo "checksrc: ${#files[@]} files clean"; fi
exit $fail
