#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A second, real etcd for the audit trail and the spend ledger (SPEC.md §6 and §8), separate from
# the one behind kube-apiserver: one member on free loopback ports, data under DIR.
#
#   hack/etcd.sh start --dir DIR   start it; prints its client endpoint (http://127.0.0.1:PORT)
#                                  on stdout. Starting again with the same DIR while it runs just
#                                  prints the endpoint; after a stop it restarts on the same port
#                                  with the same data.
#   hack/etcd.sh stop  --dir DIR   stop it by the PID recorded in DIR/etcd.pid (data is kept)
#
# The binary is `etcd` from ~/.cache/aitask-operator/bin (hack/tools.sh etcd builds it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
. "$here/lib.sh"

cmd=${1:-}
shift || true
dir=""
while (($#)); do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        *) echo "etcd.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z $dir || -z $cmd ]]; then
    echo "usage: hack/etcd.sh start|stop --dir DIR" >&2
    exit 2
fi


start() {
    mkdir -p "$dir"
    if pid_alive "$dir/etcd.pid"; then
        echo "http://127.0.0.1:$(cat "$dir/client.port")"
        return 0
    fi
    if [[ ! -x $AIT_BIN/etcd ]]; then
        echo "etcd.sh: $AIT_BIN/etcd is missing (run: bash hack/tools.sh etcd)" >&2
        return 1
    fi
    local cport pport
    [[ -f $dir/client.port ]] || free_port >"$dir/client.port"
    [[ -f $dir/peer.port ]] || free_port >"$dir/peer.port"
    cport=$(cat "$dir/client.port")
    pport=$(cat "$dir/peer.port")
    mkdir -p "$dir/data"
    "$AIT_BIN/etcd" --name audit --data-dir "$dir/data" \
        --listen-client-urls "http://127.0.0.1:$cport" \
        --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "audit=http://127.0.0.1:$pport" \
        --unsafe-no-fsync --log-level warn \
        >>"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    local i
    for ((i = 0; i < 150; i++)); do
        if curl -sf "http://127.0.0.1:$cport/health" >/dev/null 2>&1; then
            echo "http://127.0.0.1:$cport"
            return 0
        fi
        pid_alive "$dir/etcd.pid" || break
        sleep 0.1
    done
    echo "etcd.sh: etcd did not become healthy; log:" >&2
    tail -20 "$dir/etcd.log" >&2
    stop
    return 1
}

stop() { stop_pid "$dir/etcd.pid"; }

case $cmd in
    start) start ;;
    stop) stop ;;
    *) echo "etcd.sh: unknown command $cmd (start|stop)" >&2; exit 2 ;;
esac
