#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on a local control plane, from a fresh Debian machine: installs the packages,
# builds the real servers (cached) and the controller, then starts
#   - a real control plane (etcd, kube-apiserver with RBAC and Pod Security, controller manager),
#   - a second real etcd for the audit trail and the spend ledger,
#   - a real OpenBao (Vault) seeded with the demo secret and a provider key, Kubernetes auth,
#   - a real Prometheus scraping the controller with the chart's SLO rules,
#   - FAKE LLM providers (tests/fakes/fake_llm.py; no provider is reachable from here) and a
#     FAKE kubelet (tests/fakes/fake_kubelet.py; no container runtime here) that runs the
#     samples with the local interpreters,
#   - the controller, with the chart's RBAC: it runs on a token of its own ServiceAccount,
# applies the samples and shows the result. Ctrl-C stops everything it started (by PID).
#
#   hack/demo.sh           run, show, and keep running until Ctrl-C
#   hack/demo.sh --once    run, show, then stop everything
#
# To use a real provider instead of the fake, put its entry in the config written below, e.g.
#   - {name: openai, type: openai, model: gpt-4o-mini, vaultPath: secret/llm/openai,
#      priceInputPerMTok: "0.15", priceOutputPerMTok: "0.60"}
# with the key stored in Vault: bao kv put -mount=secret llm/openai apiKey=sk-...
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
rm -rf "$dir"
mkdir -p "$dir"
pids=()
cleanup() {
    trap - EXIT INT TERM
    ait_log "stopping the demo"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bash hack/prometheus.sh stop --dir "$dir/prometheus" >/dev/null 2>&1 || true
    bash hack/vault.sh stop --dir "$dir/vault" >/dev/null 2>&1 || true
    bash hack/etcd.sh stop --dir "$dir/etcd" >/dev/null 2>&1 || true
    bash hack/cluster.sh down --dir "$dir/cluster" --name demo >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

ait_log "starting the control plane"
eval "$(bash hack/cluster.sh up --dir "$dir/cluster" --name demo)"
kubectl apply --server-side -f crd/aitask.dev_aitasks.yaml >/dev/null
wait_crd aitasks.aitask.dev Established 60
kubectl create namespace demo >/dev/null
kubectl label namespace demo pod-security.kubernetes.io/enforce=restricted >/dev/null
kubectl apply -f - >/dev/null <<'RC'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
RC

ait_log "installing the chart's RBAC and ServiceAccount (helm template)"
kubectl create namespace aitask-system >/dev/null
helm template aitask charts/aitask-operator --namespace aitask-system --skip-crds \
    --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml \
    --show-only templates/leader-election-rbac.yaml | kubectl apply -n aitask-system -f - >/dev/null
sa=$(kubectl get serviceaccount -n aitask-system -o jsonpath='{.items[?(@.metadata.name!="default")].metadata.name}' | awk '{print $1}')
token=$(kubectl create token -n aitask-system "$sa" --duration=24h)
server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
cat >"$dir/controller.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "$server", certificate-authority: "$dir/cluster/pki/ca.crt"}}]
users: [{name: controller, user: {token: "$token"}}]
contexts: [{name: demo, context: {cluster: demo, user: controller, namespace: aitask-system}}]
current-context: demo
KC
chmod 600 "$dir/controller.kubeconfig"

ait_log "starting the audit etcd, OpenBao and the fake LLM providers"
etcd_url=$(bash hack/etcd.sh start --dir "$dir/etcd")
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/audit.key"
chmod 600 "$dir/audit.key"
bash hack/vault.sh start --dir "$dir/vault" >/dev/null
eval "$(bash hack/vault.sh env --dir "$dir/vault")"
export BAO_TOKEN
BAO_TOKEN=$(cat "$dir/vault/root-token")
bash hack/vault.sh k8s-auth --dir "$dir/vault" --namespace aitask-system --sa "$sa" --role aitask \
    --read 'secret/data/demo/*' --read 'secret/data/llm/*' >/dev/null
kubectl create token -n aitask-system "$sa" --duration=24h >"$dir/vault.jwt"
bao kv put -mount=secret demo/weather token="demo-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
bao kv put -mount=secret llm/fake apiKey="fake-key-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
python3 tests/fakes/fake_llm.py --port-file "$dir/llm.port" >"$dir/llm.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -s $dir/llm.port ]] && break; sleep 0.1; done
llm="http://127.0.0.1:$(cat "$dir/llm.port")"

cat >"$dir/config.yaml" <<CFG
# Controller config of the demo (README "Configuration"). "fake-*" are local FAKE providers.
defaults: {timeoutSeconds: 120}
providers:
- {name: fake-openai, type: openai, baseURL: "$llm/openai/v1", model: gpt-4o-mini,
   vaultPath: secret/llm/fake, priceInputPerMTok: "0.15", priceOutputPerMTok: "0.60"}
- {name: fake-anthropic, type: anthropic, baseURL: "$llm/anthropic", model: claude-sonnet,
   vaultPath: secret/llm/fake, priceInputPerMTok: "3.00", priceOutputPerMTok: "15.00"}
vault: {address: "$BAO_ADDR", caFile: "$BAO_CACERT", role: aitask, jwtFile: "$dir/vault.jwt", mount: secret}
audit: {etcdEndpoint: "$etcd_url", keyFile: "$dir/audit.key"}
budgets: {dailyUSD: "5.00", monthlyUSD: "50.00"}
CFG

metrics_port=$(free_port)
./build/aitask-controller --kubeconfig "$dir/controller.kubeconfig" --config "$dir/config.yaml" \
    --leader-elect --leader-election-namespace aitask-system \
    --metrics-bind-address "127.0.0.1:$metrics_port" --health-probe-bind-address 127.0.0.1:0 \
    >"$dir/controller.log" 2>&1 &
pids+=($!)
python3 tests/fakes/fake_kubelet.py --cluster-dir "$dir/cluster" --namespace demo \
    >"$dir/kubelet.log" 2>&1 &
pids+=($!)

mkdir -p "$dir/prometheus"
cp charts/aitask-operator/files/prometheus-rules.yaml "$dir/prometheus/rules.yaml"
cat >"$dir/prometheus/prometheus.yml" <<PROM
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [rules.yaml]
scrape_configs:
- job_name: aitask-operator
  static_configs: [{targets: ["127.0.0.1:$metrics_port"]}]
PROM
prom=$(bash hack/prometheus.sh start --dir "$dir/prometheus" | sed -n 's/^PROMETHEUS_URL=//p')

ait_log "applying the samples"
kubectl apply -n demo -f crd/samples/ >/dev/null
for _ in $(seq 1 240); do
    left=$(kubectl get aitasks -n demo -o json |
        jq '[.items[]|select(.status.phase!="Succeeded" and .status.phase!="Failed")]|length')
    [[ $left == 0 ]] && break
    sleep 0.5
done
# Wait until Prometheus has scraped the outcome of every sample.
for _ in $(seq 1 60); do
    n=$(curl -s "$prom/api/v1/query?query=sum(aitask_tasks_total)" | jq -r '.data.result[0].value[1] // 0')
    [[ $n == 6 ]] && break
    sleep 0.5
done
echo
kubectl get aitasks -n demo
echo
echo "Attempts of demo/heal-python (healed by an LLM provider):"
kubectl get aitask -n demo heal-python -o json | jq '.status.attempts | map(del(.message)) '
echo
echo "Chain of custody of demo/heal-python:"
./build/aitaskctl audit verify demo/heal-python --kubeconfig "$KUBECONFIG" \
    --etcd-endpoint "$etcd_url" --key "$dir/audit.key" || true
echo
echo "Prometheus: $prom   (e.g. $prom/graph?g0.expr=aitask_tasks_total)"
curl -s "$prom/api/v1/query?query=aitask_tasks_total" |
    jq -r '.data.result[] | "  aitask_tasks_total{outcome=\"\(.metric.outcome)\"} = \(.value[1])"'
echo
echo "KUBECONFIG=$KUBECONFIG   logs: $dir/*.log"
if ((once)); then exit 0; fi
echo "Running; press Ctrl-C to stop everything."
while sleep 3600; do :; done
