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
