#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real OpenTelemetry Collector for development and tests (built from its Go modules by
# `hack/tools.sh otelcol`, see hack/tools/otelcol): the OTLP/HTTP receiver on a free loopback
# port, every received span written by the file exporter to DIR/spans.json (one OTLP/JSON
# ExportTraceServiceRequest per line), the collector's own metrics off so nothing else listens.
#
#   hack/otelcol.sh start --dir DIR   start (or report) it; prints OTEL_EXPORTER_OTLP_ENDPOINT
#   hack/otelcol.sh env   --dir DIR   print `export OTEL_EXPORTER_OTLP_ENDPOINT=...`
#   hack/otelcol.sh stop  --dir DIR   stop it by the PID in DIR/otelcol.pid
#
# Files in DIR: port, config.yaml, otelcol.pid, otelcol.log, spans.json.
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
        *) echo "otelcol.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z $dir || -z $cmd ]]; then
    echo "usage: hack/otelcol.sh start|env|stop --dir DIR" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

endpoint() { echo "http://127.0.0.1:$(cat "$dir/port")"; }
print_env() { echo "export OTEL_EXPORTER_OTLP_ENDPOINT=$(endpoint)"; }

# The receiver answers an empty export request with 200 once its pipeline is running.
ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
        -H 'Content-Type: application/json' --data '{}' "$(endpoint)/v1/traces" 2>/dev/null) == 200 ]]
}

start() {
    if pid_alive "$dir/otelcol.pid"; then
        print_env
        return 0
    fi
    local bin=$AIT_BIN/otelcol
    if [[ ! -x $bin ]]; then
        echo "otelcol.sh: $bin is missing (run: bash hack/tools.sh otelcol)" >&2
        return 1
    fi
    local port i
    port=$(free_port)
    echo "$port" >"$dir/port"
    cat >"$dir/config.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$port
exporters:
  file:
    path: $dir/spans.json
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
YAML
    : >"$dir/spans.json"
    "$bin" --config "file:$dir/config.yaml" >>"$dir/otelcol.log" 2>&1 &
    echo $! >"$dir/otelcol.pid"
    for ((i = 0; i < 200; i++)); do
        if ready; then
            print_env
            return 0
        fi
        pid_alive "$dir/otelcol.pid" || break
        sleep 0.1
    done
    echo "otelcol.sh: the collector did not become ready; log:" >&2
    tail -20 "$dir/otelcol.log" >&2
    stop
    return 1
}

stop() { stop_pid "$dir/otelcol.pid"; }

case $cmd in
    start) start ;;
    env) print_env ;;
    stop) stop ;;
    *) echo "otelcol.sh: unknown command $cmd" >&2; exit 2 ;;
esac
