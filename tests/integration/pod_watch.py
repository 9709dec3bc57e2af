#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Test helper (not a fake): watches the controller's pods through the real API server and
records, event by event, the largest number of non-terminal pods that existed at once, and the
creation order of pods (namespace/name) as the watch delivered them. Writes a JSON report to
--out on SIGTERM: {"max_running": N, "created": [...], "events": N}."""
import argparse
import json
import os
import signal
import ssl
import sys
import http.client
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cluster-dir", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cfg = open(os.path.join(a.cluster_dir, "kubeconfig")).read()
    server = [l.split("server:")[1].strip() for l in cfg.splitlines() if "server:" in l][0]
    u = urllib.parse.urlparse(server)
    pki = os.path.join(a.cluster_dir, "pki")
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
    state = {"max_running": 0, "created": [], "events": 0}
    running = set()
    seen = set()

    def dump(*_):
        with open(a.out, "w") as f:
            json.dump(state, f)
        sys.exit(0)

    signal.signal(signal.SIGTERM, dump)
    sel = urllib.parse.quote("app.kubernetes.io/managed-by=aitask-operator")
    c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    c.request("GET", f"/api/v1/pods?watch=1&labelSelector={sel}&timeoutSeconds=3600")
    r = c.getresponse()
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            pod = ev["object"]
            key = pod["metadata"]["namespace"] + "/" + pod["metadata"]["name"]
            phase = pod.get("status", {}).get("phase", "Pending")
            state["events"] += 1
            if key not in seen and ev["type"] == "ADDED":
                seen.add(key)
                state["created"].append(key)
            if ev["type"] == "DELETED" or phase in ("Succeeded", "Failed") or \
                    pod["metadata"].get("deletionTimestamp"):
                running.discard(key)
            else:
                running.add(key)
            state["max_running"] = max(state["max_running"], len(running))
    dump()


if __name__ == "__main__":
    main()
