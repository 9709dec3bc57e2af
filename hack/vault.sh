#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real OpenBao (the open-source Vault) server for development and tests, on a free loopback
# port with TLS (its own CA under DIR/pki) and file storage under DIR/data, so a stop and a start
# keep every secret, policy, auth method and token (unlike `bao server -dev`, which is in memory
# and plain HTTP). The first start initialises it (one unseal key), unseals it and mounts KV v2 at
# secret/; later starts unseal it again. The unseal key and root token stay in DIR (mode 600).
#
#   hack/vault.sh start    --dir DIR [--sealed]  start (or report) the server; prints the env
#   hack/vault.sh env      --dir DIR             print `export BAO_ADDR=... BAO_CACERT=...` lines
#   hack/vault.sh stop     --dir DIR             stop it by the PID in DIR/bao.pid (data is kept)
#   hack/vault.sh unseal   --dir DIR             unseal a server started with --sealed
#   hack/vault.sh k8s-auth --dir DIR --namespace NS --sa SA --role ROLE [--read GLOB]...
#                          [--ttl 1h] [--max-ttl 24h]
#       With KUBECONFIG set: enable auth/kubernetes against that kube-apiserver (its host and CA
#       from the kubeconfig; a reviewer service account NS/bao-token-reviewer bound to
#       system:auth-delegator, whose TokenRequest token is the token_reviewer_jwt), write a policy
#       ROLE granting read on each GLOB (e.g. secret/data/app/*) and a role ROLE bound to NS/SA.
#
# Files in DIR: port, pki/ca.crt (the CA to verify with), root-token, init.json, bao.log.
# The binary is `bao` from ~/.cache/aitask-operator/bin (hack/tools.sh bao builds it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
. "$here/lib.sh"

cmd=${1:-}
shift || true
dir="" ns="" sa="" role="" ttl=1h max_ttl=24h sealed=0
reads=()
while (($#)); do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        --namespace) ns=$2; shift 2 ;;
        --sa) sa=$2; shift 2 ;;
        --role) role=$2; shift 2 ;;
        --read) reads+=("$2"); shift 2 ;;
        --ttl) ttl=$2; shift 2 ;;
        --max-ttl) max_ttl=$2; shift 2 ;;
        --sealed) sealed=1; shift ;;
        *) echo "vault.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z $dir || -z $cmd ]]; then
    echo "usage: hack/vault.sh start|env|stop|unseal|k8s-auth --dir DIR [options]" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)


addr() { echo "https://127.0.0.1:$(cat "$dir/port")"; }

# bao CLI against this server with the root token (the CLI reads BAO_TOKEN).
bao_root() {
    BAO_ADDR=$(addr) BAO_CACERT=$dir/pki/ca.crt BAO_TOKEN=$(cat "$dir/root-token") \
        "$AIT_BIN/bao" "$@"
}

# health_code: the HTTP status of sys/health (200 active, 501 uninitialised, 503 sealed, 000 down).
health_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$dir/pki/ca.crt" \
        "$(addr)/v1/sys/health" 2>/dev/null || true
}

gen_certs() {
    local d=$dir/pki
    mkdir -p "$d"
    [[ -f $d/server.crt ]] && return 0
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=aitask-bao-ca" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=127.0.0.1" 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out server.crt -days 3650 -extfile server.ext 2>/dev/null
        rm -f ./*.csr ./*.srl
        chmod 600 ./*.key
    )
}

print_env() {
    echo "export BAO_ADDR=$(addr)"
    echo "export BAO_CACERT=$dir/pki/ca.crt"
    echo "# root token: $dir/root-token"
}

wait_health() { # wanted codes (regex); 20 s at most
    local i code
    for ((i = 0; i < 200; i++)); do
        code=$(health_code)
        if [[ $code =~ ^($1)$ ]]; then return 0; fi
        pid_alive "$dir/bao.pid" || break
        sleep 0.1
    done
    echo "vault.sh: bao did not answer health ($1; last $code); log:" >&2
    tail -20 "$dir/bao.log" >&2
    return 1
}

unseal() {
    local key
    key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["unseal_keys_b64"][0])' \
        "$dir/init.json")
    BAO_ADDR=$(addr) BAO_CACERT=$dir/pki/ca.crt "$AIT_BIN/bao" operator unseal "$key" >/dev/null
    wait_health 200
}

start() {
    if pid_alive "$dir/bao.pid"; then
        print_env
        return 0
    fi
    if [[ ! -x $AIT_BIN/bao ]]; then
        echo "vault.sh: $AIT_BIN/bao is missing (run: bash hack/tools.sh bao)" >&2
        return 1
    fi
    gen_certs
    [[ -f $dir/port ]] || free_port >"$dir/port"
    local port; port=$(cat "$dir/port")
    mkdir -p "$dir/data"
    cat >"$dir/bao.hcl" <<HCL
storage "file" {
  path = "$dir/data"
}
listener "tcp" {
  address       = "127.0.0.1:$port"
  tls_cert_file = "$dir/pki/server.crt"
  tls_key_file  = "$dir/pki/server.key"
}
api_addr      = "https://127.0.0.1:$port"
log_level     = "warn"
HCL
    "$AIT_BIN/bao" server -config="$dir/bao.hcl" >>"$dir/bao.log" 2>&1 &
    echo $! >"$dir/bao.pid"
    wait_health '200|501|503|429|472|473'
    local fresh=0
    if [[ ! -f $dir/init.json ]]; then
        (umask 077 && BAO_ADDR=$(addr) BAO_CACERT=$dir/pki/ca.crt "$AIT_BIN/bao" operator init \
            -key-shares=1 -key-threshold=1 -format=json >"$dir/init.json.tmp")
        mv "$dir/init.json.tmp" "$dir/init.json"
        (umask 077 && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_token"])' \
            "$dir/init.json" >"$dir/root-token")
        fresh=1
    fi
    if ((sealed)); then
        if ((fresh)); then
            echo "vault.sh: --sealed needs an initialised server (start once without it)" >&2
            return 1
        fi
        wait_health 503
    else
        unseal
        if ((fresh)); then
            bao_root secrets enable -path=secret -version=2 kv >/dev/null
        fi
    fi
    print_env
}

stop() { stop_pid "$dir/bao.pid"; }

k8s_auth() {
    if [[ -z $ns || -z $sa || -z $role || -z ${KUBECONFIG:-} ]]; then
        echo "vault.sh k8s-auth: needs KUBECONFIG, --namespace, --sa and --role" >&2
        return 2
    fi
    local kc=(kubectl --kubeconfig "$KUBECONFIG")
    local host ca cafile
    host=$("${kc[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
    cafile=$("${kc[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
    if [[ -n $cafile ]]; then
        ca=$(cat "$cafile")
    else
        ca=$("${kc[@]}" config view --minify --raw \
            -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d)
    fi
    "${kc[@]}" create serviceaccount bao-token-reviewer -n "$ns" --dry-run=client -o yaml |
        "${kc[@]}" apply -f - >/dev/null
    "${kc[@]}" create clusterrolebinding "bao-token-reviewer-$ns" --clusterrole=system:auth-delegator \
        --serviceaccount="$ns:bao-token-reviewer" --dry-run=client -o yaml |
        "${kc[@]}" apply -f - >/dev/null
    local reviewer
    reviewer=$("${kc[@]}" create token bao-token-reviewer -n "$ns" --duration=24h)
    # Idempotent: a second call (another role) finds the method enabled. The list can miss it
    # under load, so "already in use" from enable counts as success too.
    local out
    if ! bao_root auth list -format=json 2>/dev/null | grep -q '"kubernetes/"'; then
        if ! out=$(bao_root auth enable kubernetes 2>&1) && ! grep -q 'path is already in use' <<<"$out"; then
            echo "$out" >&2
            return 1
        fi
    fi
    printf '%s\n' "$ca" >"$dir/kube-ca.crt"
    printf '%s' "$reviewer" | bao_root write auth/kubernetes/config kubernetes_host="$host" \
        kubernetes_ca_cert=@"$dir/kube-ca.crt" token_reviewer_jwt=- disable_local_ca_jwt=true \
        >/dev/null
    local policy="" g
    for g in "${reads[@]}"; do
        policy+="path \"$g\" { capabilities = [\"read\"] }"$'\n'
    done
    [[ -n $policy ]] || policy='# no paths'$'\n'
    printf '%s' "$policy" | bao_root policy write "$role" - >/dev/null
    bao_root write "auth/kubernetes/role/$role" bound_service_account_names="$sa" \
        bound_service_account_namespaces="$ns" token_policies="$role" token_ttl="$ttl" \
        token_max_ttl="$max_ttl" >/dev/null
}

case $cmd in
    start) start ;;
    env) print_env ;;
    stop) stop ;;
    unseal) unseal ;;
    k8s-auth) k8s_auth ;;
    *) echo "vault.sh: unknown command $cmd" >&2; exit 2 ;;
esac
