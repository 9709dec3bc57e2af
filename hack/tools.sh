#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the real servers and tools the tests need (kube-apiserver, kubectl, etcd, helm, kwok,
# OpenBao) from their Go modules, through the small wrapper modules in hack/tools/. Binaries go
# to a cache outside the repository, keyed by tool and version, so a second run only checks them.
#
#   hack/tools.sh [all|kube|etcd|helm|kwok|bao|otelcol]   build what is missing (default: all)
#   hack/tools.sh bindir                         print the folder holding every binary
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
. "$here/lib.sh"

build_tool() { # name version module-dir package binary [ldflags]
    local name=$1 version=$2 dir=$3 pkg=$4 bin=$5 ldflags=${6:-}
    local out="$AIT_TOOLS_CACHE/$name-$version"
    # The stamp records the go.mod hash too, so editing a wrapper module rebuilds it.
    local stamp; stamp="$(sha256sum "$here/tools/$dir/go.mod" | cut -c1-16)"
    if [[ -x "$out/$bin" && "$(cat "$out/.stamp-$bin" 2>/dev/null)" == "$stamp" ]]; then
        ln -sf "$out/$bin" "$AIT_BIN/$bin"
        return 0
    fi
    mkdir -p "$out"
    local t0=$SECONDS
    ait_log "building $bin $version (cold builds of kube-apiserver take ~10-20 min on 2 cores)"
    (cd "$here/tools/$dir" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$bin.tmp" "$pkg")
    mv "$out/$bin.tmp" "$out/$bin"
    echo "$stamp" >"$out/.stamp-$bin"
    ln -sf "$out/$bin" "$AIT_BIN/$bin"
    ait_log "built $bin in $((SECONDS - t0)) s"
}

kube_ldflags() {
    local v=$AIT_KUBE_VERSION minor
    minor=${v#1.}; minor=${minor%%.*}
    echo "-X k8s.io/component-base/version.gitVersion=v$v -X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=v$v -X k8s.io/client-go/pkg/version.gitMajor=1 \
-X k8s.io/client-go/pkg/version.gitMinor=$minor"
}

build_kube() {
    build_tool kube "$AIT_KUBE_VERSION" kube k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$(kube_ldflags)"
    build_tool kube "$AIT_KUBE_VERSION" kube k8s.io/kubernetes/cmd/kube-controller-manager \
        kube-controller-manager "$(kube_ldflags)"
    build_tool kube "$AIT_KUBE_VERSION" kube k8s.io/kubernetes/cmd/kubectl kubectl "$(kube_ldflags)"
}
build_etcd() { build_tool etcd "$AIT_ETCD_VERSION" etcd go.etcd.io/etcd/server/v3 etcd; }
build_helm() {
    build_tool helm "$AIT_HELM_VERSION" helm helm.sh/helm/v3/cmd/helm helm \
        "-X helm.sh/helm/v3/internal/version.version=v$AIT_HELM_VERSION"
}
build_kwok() { build_tool kwok "$AIT_KWOK_VERSION" kwok sigs.k8s.io/kwok/cmd/kwok kwok; }
build_bao() {
    if [[ -f "$here/tools/bao/go.mod" ]]; then
        build_tool bao "$AIT_BAO_VERSION" bao github.com/openbao/openbao bao \
            "-X github.com/openbao/openbao/version.fullVersion=$AIT_BAO_VERSION"
    fi
}

build_otelcol() { build_tool otelcol "$AIT_OTELCOL_VERSION" otelcol . otelcol; }

mkdir -p "$AIT_BIN"
if [[ ${1:-all} != bindir ]]; then
    if ! command -v go >/dev/null 2>&1; then
        echo "tools.sh: the Go toolchain (>= 1.24) is needed to build the test servers; install it" \
            "at /usr/local/go (Debian's golang package is too old for Kubernetes 1.34)" >&2
        exit 1
    fi
fi
case "${1:-all}" in
    bindir) echo "$AIT_BIN" ;;
    kube) build_kube ;;
    etcd) build_etcd ;;
    helm) build_helm ;;
    kwok) build_kwok ;;
    bao) build_bao ;;
    otelcol) build_otelcol ;;
    all) build_etcd; build_kube; build_helm; build_bao; build_otelcol ;;
    *) echo "usage: $0 [all|kube|etcd|helm|kwok|bao|bindir]" >&2; exit 2 ;;
esac
