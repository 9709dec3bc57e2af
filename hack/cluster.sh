#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real local Kubernetes control plane for development and tests: etcd, kube-apiserver (RBAC,
# PodSecurity admission, service-account issuer and keys, an audit log of writes) and
# kube-controller-manager (garbage collector, namespace and service-account controllers), all on
# free loopback ports. No kubelet or container runtime exists here: pods are created and
# admitted for real but never run; tests drive their status as a kubelet would.
#
#   hack/cluster.sh up   [--dir DIR] [--name NAME]   start; prints the env to use it
#   hack/cluster.sh env  [--dir DIR] [--name NAME]   print `export KUBECONFIG=...` lines
#   hack/cluster.sh down [--dir DIR] [--name NAME]   stop what `up` started (by PID) and clean up
#   hack/cluster.sh restart-apiserver [--dir DIR]    stop and start kube-apiserver only
#
# Several clusters can run side by side: each has its own folder, ports and processes.
# Extra kube-apiserver flags: AIT_APISERVER_EXTRA_ARGS (word-split).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
. "$here/lib.sh"

cmd=${1:-}
shift || true
name=dev
dir=""
while (($#)); do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
dir=${dir:-$AIT_CACHE/clusters/$name}




gen_certs() {
    local d=$dir/pki
    mkdir -p "$d"
    [[ -f $d/admin.crt ]] && return 0
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=aitask-local-ca" 2>/dev/null
        cat >server.ext <<EXT
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EXT
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=kube-apiserver" 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out server.crt -days 3650 -extfile server.ext 2>/dev/null
        echo "extendedKeyUsage=clientAuth" >client.ext
        openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
            -subj "/O=system:masters/CN=aitask-admin" 2>/dev/null
        openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out admin.crt -days 3650 -extfile client.ext 2>/dev/null
        openssl genrsa -out sa.key 2048 2>/dev/null
        openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        rm -f ./*.csr ./*.srl
        chmod 600 ./*.key
    )
}

write_kubeconfig() {
    cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: https://127.0.0.1:$(cat "$dir/apiserver.port")
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: $name
  context:
    cluster: $name
    user: admin
current-context: $name
KC
    chmod 600 "$dir/kubeconfig"
}

start_etcd() {
    local cport pport
    cport=$(free_port); pport=$(free_port)
    echo "$cport" >"$dir/etcd.port"
    mkdir -p "$dir/etcd-data"
    etcd --name default --data-dir "$dir/etcd-data" \
        --listen-client-urls "http://127.0.0.1:$cport" \
        --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "default=http://127.0.0.1:$pport" \
        --unsafe-no-fsync --log-level warn \
        >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -sf "http://127.0.0.1:$cport/health" >/dev/null 2>&1; then return 0; fi
        pid_alive "$dir/etcd.pid" || break
        sleep 0.1
    done
    echo "cluster.sh: etcd did not become healthy; log:" >&2
    tail -20 "$dir/etcd.log" >&2
    return 1
}

start_apiserver() {
    local port
    if [[ -f $dir/apiserver.port ]]; then port=$(cat "$dir/apiserver.port"); else
        port=$(free_port); echo "$port" >"$dir/apiserver.port"
    fi
    cat >"$dir/audit-policy.yaml" <<'AP'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
# Every write to the objects the controller owns, so tests can count pod creations.
- level: Metadata
  verbs: ["create", "update", "patch", "delete"]
  resources:
  - group: ""
    resources: ["pods", "configmaps", "secrets"]
  - group: "aitask.dev"
    resources: ["aitasks", "aitasks/status"]
- level: None
AP
    # shellcheck disable=SC2086
    kube-apiserver \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
        --etcd-servers="http://127.0.0.1:$(cat "$dir/etcd.port")" \
        --tls-cert-file="$dir/pki/server.crt" --tls-private-key-file="$dir/pki/server.key" \
        --client-ca-file="$dir/pki/ca.crt" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$dir/pki/sa.pub" \
        --service-account-signing-key-file="$dir/pki/sa.key" \
        --api-audiences=https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range=10.0.0.0/24 \
        --authorization-mode=RBAC \
        --enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity,LimitRanger,ResourceQuota,DefaultStorageClass,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
        --allow-privileged=false --profiling=false \
        --audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/audit.log" \
        --audit-log-maxsize=200 \
        --enable-priority-and-fairness=false \
        ${AIT_APISERVER_EXTRA_ARGS:-} \
        >"$dir/apiserver.log" 2>&1 &
    echo $! >"$dir/apiserver.pid"
    local i
    for ((i = 0; i < 600; i++)); do
        if curl -sf --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" \
            --key "$dir/pki/admin.key" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            return 0
        fi
        pid_alive "$dir/apiserver.pid" || break
        sleep 0.1
    done
    echo "cluster.sh: kube-apiserver did not become ready; log:" >&2
    tail -30 "$dir/apiserver.log" >&2
    return 1
}

start_kcm() {
    # Controllers that need a kubelet or cloud are left out; the garbage collector (owner
    # references), namespace and service-account controllers are what the operator relies on.
    kube-controller-manager --kubeconfig="$dir/kubeconfig" \
        --authentication-kubeconfig="$dir/kubeconfig" --authorization-kubeconfig="$dir/kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$(free_port)" \
        --service-account-private-key-file="$dir/pki/sa.key" --root-ca-file="$dir/pki/ca.crt" \
        --leader-elect=false --use-service-account-credentials=false \
        --controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ttl,-bootstrapsigner,-tokencleaner' \
        --concurrent-gc-syncs=10 \
        >"$dir/kcm.log" 2>&1 &
    echo $! >"$dir/kcm.pid"
}

kc() { kubectl --kubeconfig "$dir/kubeconfig" "$@"; }

print_env() {
    echo "export KUBECONFIG=$dir/kubeconfig"
    echo "export AIT_CLUSTER_DIR=$dir"
}

case $cmd in
    up)
        for b in etcd kube-apiserver kube-controller-manager kubectl; do
            command -v "$b" >/dev/null || { echo "cluster.sh: $b not found; run hack/tools.sh first" >&2; exit 1; }
        done
        if pid_alive "$dir/apiserver.pid"; then
            echo "cluster.sh: cluster '$name' already running in $dir" >&2
            print_env; exit 0
        fi
        rm -rf "$dir/etcd-data" "$dir/apiserver.port"
        mkdir -p "$dir"
        t0=$(date +%s.%N)
        gen_certs
        start_etcd
        start_apiserver
        write_kubeconfig
        start_kcm
        # The default namespace's service account proves the controller manager is working.
        for ((i = 0; i < 300; i++)); do
            kc get serviceaccount default -n default >/dev/null 2>&1 && break
            sleep 0.1
        done
        kc get serviceaccount default -n default >/dev/null ||
            { echo "cluster.sh: controller manager did not start; see $dir/kcm.log" >&2; exit 1; }
        ait_log "cluster '$name' up in $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s: $(kc version -o json | jq -r .serverVersion.gitVersion) at https://127.0.0.1:$(cat "$dir/apiserver.port")"
        print_env
        ;;
    env) print_env ;;
    restart-apiserver)
        stop_pid "$dir/apiserver.pid"
        start_apiserver
        ;;
    stop-apiserver) stop_pid "$dir/apiserver.pid" ;;
    start-apiserver) start_apiserver ;;
    down)
        stop_pid "$dir/kcm.pid"
        stop_pid "$dir/apiserver.pid"
        stop_pid "$dir/etcd.pid"
        rm -rf "$dir/etcd-data"
        ;;
    *)
        echo "usage: $0 up|env|down|restart-apiserver [--dir DIR] [--name NAME]" >&2
        exit 2
        ;;
esac
