#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs, idempotently, every Debian package the build, the tests and the tools need.
# Packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

pkgs=(
    # build
    build-essential cmake ninja-build pkg-config clang lld
    libcurl4-openssl-dev libjson-c-dev libyaml-dev libssl-dev libmicrohttpd-dev
    # tests, fuzzing, analysis
    libcmocka-dev libclang-rt-14-dev valgrind clang-format clang-tidy
    # scripts and the local control plane
    curl jq openssl ca-certificates procps iproute2 python3
    # observability (real Prometheus, promtool, Alertmanager)
    prometheus prometheus-alertmanager
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps Prometheus from pulling in node exporters and web assets' deps.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian prometheus package starts a system service; the tests start their own on free
# ports, so stop the packaged ones where a service manager exists.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now prometheus prometheus-alertmanager prometheus-node-exporter \
        >/dev/null 2>&1 || true
fi
