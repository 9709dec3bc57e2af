#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the AITask CRD: crd/aitask.dev_aitasks.yaml parses as YAML, is a single
# apiextensions.k8s.io/v1 CustomResourceDefinition with the names SPEC.md §2 fixes, has a
# description on every schema property, and the Helm chart's copy (when the chart ships one) is
# byte-identical. Exits non-zero on any difference.
#
#   hack/crd-check.sh            check
#   hack/crd-check.sh --sync     copy crd/ into the chart first (only when the chart has crds/)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$top/crd/aitask.dev_aitasks.yaml
chart_dir=$top/charts/aitask-operator
chart_crd=$chart_dir/crds/aitask.dev_aitasks.yaml

if [[ ${1:-} == --sync ]]; then
    if [[ -d $chart_dir/crds ]]; then cp "$src" "$chart_crd"; fi
elif [[ -n ${1:-} ]]; then
    echo "usage: $0 [--sync]" >&2
    exit 2
fi

[[ -f $src ]] || { echo "crd-check: $src is missing" >&2; exit 1; }

python3 - "$src" <<'PY'
import sys
import yaml

path = sys.argv[1]
try:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
except yaml.YAMLError as e:
    sys.exit(f"crd-check: {path} is not valid YAML: {e}")
if len(docs) != 1:
    sys.exit(f"crd-check: {path} must hold exactly one document, has {len(docs)}")
crd = docs[0]
errors = []

def expect(what, got, want):
    if got != want:
        errors.append(f"{what} is {got!r}, want {want!r}")

expect("apiVersion", crd.get("apiVersion"), "apiextensions.k8s.io/v1")
expect("kind", crd.get("kind"), "CustomResourceDefinition")
expect("metadata.name", (crd.get("metadata") or {}).get("name"), "aitasks.aitask.dev")
spec = crd.get("spec") or {}
expect("spec.group", spec.get("group"), "aitask.dev")
expect("spec.scope", spec.get("scope"), "Namespaced")
names = spec.get("names") or {}
for key, want in (("kind", "AITask"), ("listKind", "AITaskList"), ("plural", "aitasks"),
                  ("singular", "aitask"), ("shortNames", ["ait"]), ("categories", ["ai"])):
    expect(f"spec.names.{key}", names.get(key), want)
versions = spec.get("versions") or []
expect("version names", [v.get("name") for v in versions], ["v1alpha1"])
for v in versions:
    expect("v1alpha1 served", v.get("served"), True)
    expect("v1alpha1 storage", v.get("storage"), True)
    expect("v1alpha1 status subresource", (v.get("subresources") or {}).get("status"), {})
    expect("printer columns", [c.get("name") for c in v.get("additionalPrinterColumns") or []],
           ["Phase", "Attempts", "Cost", "Age"])
    schema = (v.get("schema") or {}).get("openAPIV3Schema") or {}

    def walk(node, where):
        for name, child in (node.get("properties") or {}).items():
            here = f"{where}.{name}"
            if where == "" and name == "metadata":
                continue
            if not str(child.get("description", "")).strip():
                errors.append(f"schema property {here[1:]} has no description")
            walk(child, here)
        if isinstance(node.get("items"), dict):
            walk(node["items"], where + "[]")

    walk(schema, "")
    props = schema.get("properties") or {}
    for field in ("spec", "status"):
        if field not in props:
            errors.append(f"schema has no {field}")

if errors:
    for e in errors:
        print(f"crd-check: {path}: {e}", file=sys.stderr)
    sys.exit(1)
PY

if [[ -f $chart_crd ]]; then
    if ! cmp -s "$src" "$chart_crd"; then
        echo "crd-check: $chart_crd differs from crd/aitask.dev_aitasks.yaml" >&2
        diff -u "$src" "$chart_crd" | head -40 >&2 || true
        echo "crd-check: run hack/crd-check.sh --sync (crd/ is the source of truth)" >&2
        exit 1
    fi
    echo "crd-check: CRD valid; chart copy identical"
elif [[ -d $chart_dir/crds ]]; then
    echo "crd-check: $chart_dir/crds exists but has no aitask.dev_aitasks.yaml" >&2
    exit 1
else
    echo "crd-check: CRD valid (no chart CRD copy yet)"
fi
