#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Debian's real Prometheus and Alertmanager (packages prometheus and prometheus-alertmanager,
# installed by hack/deps.sh) on free loopback ports, for tests and local monitoring of a
# controller started by hand. Configuration comes from a folder the caller fills:
#
#   DIR/prometheus.yml     required. Relative paths in it (rule_files, file_sd_configs) resolve
#                          against DIR. To send alerts to the Alertmanager started here, use
#                            alerting: {alertmanagers: [{file_sd_configs: [{files: [alertmanagers.json]}]}]}
#                          this script writes DIR/alertmanagers.json before Prometheus starts.
#   DIR/alertmanager.yml   optional. When present, Alertmanager starts first (HA gossip off).
#
#   hack/prometheus.sh start --dir DIR   start them; prints PROMETHEUS_URL=http://127.0.0.1:P and,
#                                        with an Alertmanager, ALERTMANAGER_URL=http://127.0.0.1:Q
#                                        (also written to DIR/prometheus.url, DIR/alertmanager.url).
#                                        Waits until both answer /-/ready.
#   hack/prometheus.sh stop  --dir DIR   stop them by the PIDs recorded in DIR/*.pid (TERM, then
#                                        KILL after 10 s); data under DIR is kept.
#
# Logs: DIR/prometheus.log, DIR/alertmanager.log. Binaries: $AIT_PROMETHEUS (default
# /usr/bin/prometheus) and $AIT_ALERTMANAGER (default /usr/bin/prometheus-alertmanager).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
. "$here/lib.sh"

prom_bin=${AIT_PROMETHEUS:-/usr/bin/prometheus}
am_bin=${AIT_ALERTMANAGER:-/usr/bin/prometheus-alertmanager}

cmd=${1:-}
shift || true
dir=""
while (($#)); do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        *) echo "prometheus.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z $dir || -z $cmd ]]; then
    echo "usage: hack/prometheus.sh start|stop --dir DIR" >&2
    exit 2
fi



wait_ready() { # NAME URL PIDFILE LOG
    local i
    for ((i = 0; i < 300; i++)); do
        if curl -sf "$2/-/ready" >/dev/null 2>&1; then return 0; fi
        if ! pid_alive "$3"; then break; fi
        sleep 0.1
    done
    echo "prometheus.sh: $1 did not become ready; log:" >&2
    tail -20 "$4" >&2
    return 1
}

start_alertmanager() {
    local port
    port=$(free_port)
    mkdir -p "$dir/alertmanager-data"
    "$am_bin" --config.file="$dir/alertmanager.yml" --storage.path="$dir/alertmanager-data" \
        --web.listen-address="127.0.0.1:$port" --cluster.listen-address= \
        --log.level=info >>"$dir/alertmanager.log" 2>&1 &
    echo $! >"$dir/alertmanager.pid"
    wait_ready alertmanager "http://127.0.0.1:$port" "$dir/alertmanager.pid" \
        "$dir/alertmanager.log" || return 1
    echo "http://127.0.0.1:$port" >"$dir/alertmanager.url"
    printf '[{"targets": ["127.0.0.1:%s"]}]\n' "$port" >"$dir/alertmanagers.json"
    echo "ALERTMANAGER_URL=http://127.0.0.1:$port"
}

start_prometheus() {
    local port
    port=$(free_port)
    mkdir -p "$dir/prometheus-data"
    "$prom_bin" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus-data" \
        --web.listen-address="127.0.0.1:$port" --log.level=info \
        >>"$dir/prometheus.log" 2>&1 &
    echo $! >"$dir/prometheus.pid"
    wait_ready prometheus "http://127.0.0.1:$port" "$dir/prometheus.pid" "$dir/prometheus.log" ||
        return 1
    echo "http://127.0.0.1:$port" >"$dir/prometheus.url"
    echo "PROMETHEUS_URL=http://127.0.0.1:$port"
}

start() {
    local b
    for b in "$prom_bin" "$am_bin"; do
        if [[ ! -x $b ]]; then
            echo "prometheus.sh: $b is missing (run: bash hack/deps.sh)" >&2
            return 1
        fi
    done
    if [[ ! -f $dir/prometheus.yml ]]; then
        echo "prometheus.sh: $dir/prometheus.yml is missing" >&2
        return 1
    fi
    if pid_alive "$dir/prometheus.pid"; then
        echo "prometheus.sh: already running in $dir (stop it first)" >&2
        return 1
    fi
    # Relative paths in the configs resolve against DIR.
    dir=$(cd "$dir" && pwd)
    if [[ -f $dir/alertmanager.yml ]]; then
        start_alertmanager || { stop; return 1; }
    fi
    start_prometheus || { stop; return 1; }
}

stop() {
    stop_pid "$dir/prometheus.pid"
    stop_pid "$dir/alertmanager.pid"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) echo "prometheus.sh: unknown command $cmd (start|stop)" >&2; exit 2 ;;
esac
