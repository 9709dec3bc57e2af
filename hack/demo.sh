#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on a local control plane, from a fresh Debian machine: installs the packages,
# builds the real servers (cached) and the controller, starts the control plane, the audit etcd,
# the fake LLM providers and the fake kubelet (named fakes: no LLM or container runtime can be
# reached here), installs the CRD, runs the controller, applies the samples and shows them.
# Stops everything it started (by PID) on Ctrl-C, or at once with --once.
#
#   hack/demo.sh           run, show, and keep running until Ctrl-C
#   hack/demo.sh --once    run, show, then stop everything
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
# shellcheck source=hack/lib.sh
. hack/lib.sh
once=0
[[ ${1:-} == --once ]] && once=1

bash hack/deps.sh
bash hack/tools.sh all
cmake -S . -B build -G Ninja >/dev/null
ninja -C build -j2 aitask-controller aitaskctl >/dev/null

dir=$AIT_CACHE/demo
mkdir -p "$dir"
pids=()
cleanup() {
    trap - EXIT INT TERM
    ait_log "stopping the demo"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bash hack/cluster.sh down --dir "$dir/cluster" --name demo >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

bash hack/cluster.sh down --dir "$dir/cluster" --name demo >/dev/null 2>&1 || true
eval "$(bash hack/cluster.sh up --dir "$dir/cluster" --name demo)"
kubectl apply --server-side -f crd/aitask.dev_aitasks.yaml >/dev/null
kubectl wait --for=condition=Established crd/aitasks.aitask.dev --timeout=60s >/dev/null
kubectl create namespace demo >/dev/null
kubectl label namespace demo pod-security.kubernetes.io/enforce=restricted >/dev/null
# The bash sample asks for gVisor; a real cluster would have the runsc handler installed.
kubectl apply -f - >/dev/null <<'RC'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
RC

cat >"$dir/config.yaml" <<CFG
# Controller config for the demo (see README "Configuration").
defaults:
  timeoutSeconds: 120
CFG

./build/aitask-controller --kubeconfig "$KUBECONFIG" --config "$dir/config.yaml" \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
    >"$dir/controller.log" 2>&1 &
pids+=($!)
python3 tests/fakes/fake_kubelet.py --cluster-dir "$dir/cluster" --namespace demo \
    >"$dir/kubelet.log" 2>&1 &
pids+=($!)

kubectl apply -n demo -f crd/samples/ >/dev/null
ait_log "samples applied; waiting for them to finish"
for _ in $(seq 1 120); do
    left=$(kubectl get aitasks -n demo -o json |
        jq '[.items[]|select(.status.phase!="Succeeded" and .status.phase!="Failed")]|length')
    [[ $left == 0 ]] && break
    sleep 0.5
done
echo
kubectl get aitasks -n demo
echo
echo "Attempts of demo/hello-python:"
kubectl get aitask -n demo hello-python -o json | jq '.status.attempts'
echo
echo "Controller log:   $dir/controller.log"
echo "KUBECONFIG:       $KUBECONFIG"
if ((once)); then exit 0; fi
echo "Running; press Ctrl-C to stop everything."
while sleep 3600; do :; done
