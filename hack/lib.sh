# SPDX-License-Identifier: Apache-2.0
# Shared settings for the hack/ scripts: tool versions and the cache outside the repository.
# Sourced, never run.
AIT_KUBE_VERSION=${AIT_KUBE_VERSION:-1.34.2}
AIT_ETCD_VERSION=${AIT_ETCD_VERSION:-3.6.4}
AIT_HELM_VERSION=${AIT_HELM_VERSION:-3.19.0}
AIT_KWOK_VERSION=${AIT_KWOK_VERSION:-0.7.0}
AIT_BAO_VERSION=${AIT_BAO_VERSION:-2.4.0}
AIT_OTELCOL_VERSION=${AIT_OTELCOL_VERSION:-0.165.0}
AIT_CACHE=${AIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aitask-operator}
AIT_TOOLS_CACHE=$AIT_CACHE/tools
AIT_BIN=$AIT_CACHE/bin
export AIT_CACHE AIT_TOOLS_CACHE AIT_BIN
export PATH="$AIT_BIN:/usr/local/go/bin:$PATH"

ait_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# free_port: prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# pid_alive PIDFILE: true when the process recorded there still runs.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid PIDFILE: TERM, wait up to 10 s, then KILL; only the PID recorded there, never by name.
stop_pid() {
    local f=$1 pid i
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

# wait_crd NAME CONDITION [SECONDS]: waits until the CRD reports CONDITION=True. `kubectl wait`
# errors out ("<nil> is of the type <nil>") when it reads the CRD before the API server has set
# any condition, so this polls instead.
wait_crd() {
    local name=$1 cond=$2 secs=${3:-60} i v
    for ((i = 0; i < secs * 5; i++)); do
        v=$(kubectl get "crd/$name" -o "jsonpath={.status.conditions[?(@.type==\"$cond\")].status}" 2>/dev/null) || v=
        [[ $v == True ]] && return 0
        sleep 0.2
    done
    echo "crd/$name: condition $cond not True after ${secs}s" >&2
    return 1
}
