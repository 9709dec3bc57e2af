#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""FAKE kubelet: stands in for the node agent, which cannot run here (no container runtime).

It watches the sandbox pods the controller creates (label app.kubernetes.io/managed-by=
aitask-operator) in the given namespaces and plays a kubelet's part of the protocol through the
real kube-apiserver: it sets the pod Running (status.phase, containerStatuses[].state.running),
then Succeeded or Failed with a terminated container state (exitCode, reason, message = the tail
of the output, as terminationMessagePolicy FallbackToLogsOnError would give, finishedAt), and
honours activeDeadlineSeconds with phase Failed / reason DeadlineExceeded.

What the "container" does depends on --mode:
  run      runs the pod's program from its code ConfigMap with the local interpreter (python3,
           node, bash) in a scratch folder, with a timeout; only for the project's own samples
           and tests, never for untrusted code: there is no sandbox here.
  succeed  exits 0 with output "ok" without running anything.
  fail     exits 1 with output "fake failure".
A pod annotated aitask.dev/fake-outcome (set by tests) overrides the mode:
  "exit:N:REASON:MESSAGE" or "deadline".

Talks HTTPS to the API server with the cluster's admin client certificate (hack/cluster.sh).
"""
import argparse
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

RUNTIMES = {"main.py": ["python3", "-u"], "main.js": ["node"], "main.sh": ["bash"]}


class Api:
    def __init__(self, cluster_dir):
        cfg = open(os.path.join(cluster_dir, "kubeconfig")).read()
        server = [l.split("server:")[1].strip() for l in cfg.splitlines() if "server:" in l][0]
        u = urllib.parse.urlparse(server)
        self.host, self.port = u.hostname, u.port
        pki = os.path.join(cluster_dir, "pki")
        self.ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
            self.local.conn = c
        return c

    def req(self, method, path, body=None, ctype="application/json"):
        # Like a kubelet, ride out an API server restart (~5-10 s) instead of losing the update.
        for attempt in range(40):
            c = self._conn()
            try:
                headers = {"Accept": "application/json"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = ctype
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (OSError, http.client.HTTPException):
                self.local.conn = None
                time.sleep(0.5)
        return 0, None


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Kubelet:
    def __init__(self, api, namespaces, mode, parallel):
        self.api, self.namespaces, self.mode = api, namespaces, mode
        self.pool = ThreadPoolExecutor(max_workers=parallel)
        self.seen = set()
        self.lock = threading.Lock()
        self.stop = False

    def patch_status(self, ns, name, status):
        path = f"/api/v1/namespaces/{ns}/pods/{name}/status"
        code, body = self.api.req("PATCH", path, {"status": status},
                                  "application/merge-patch+json")
        if code not in (200, 404):
            print(f"fake-kubelet: status patch of {ns}/{name}: HTTP {code} {body}",
                  file=sys.stderr, flush=True)

    def container_status(self, pod, state):
        c = pod["spec"]["containers"][0]
        return [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                 "restartCount": 0, "started": "running" in state, "state": state}]

    def run_code(self, pod, ns):
        vol = [v for v in pod["spec"].get("volumes", []) if "configMap" in v]
        if not vol:
            return 1, "Error", "fake-kubelet: no code volume"
        cm_name = vol[0]["configMap"]["name"]
        code, cm = self.api.req("GET", f"/api/v1/namespaces/{ns}/configmaps/{cm_name}")
        if code != 200:
            return 1, "Error", f"fake-kubelet: configmap {cm_name}: HTTP {code}"
        (fname, src), = list(cm.get("data", {}).items())[:1] or [("main", "")]
        interp = RUNTIMES.get(fname)
        if interp is None or shutil.which(interp[0]) is None:
            return 127, "Error", f"fake-kubelet: no local interpreter for {fname}"
        work = tempfile.mkdtemp(prefix="fake-kubelet-")
        try:
            path = os.path.join(work, fname)
            with open(path, "w") as f:
                f.write(src)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work,
                   "PYTHONDONTWRITEBYTECODE": "1"}
            for e in pod["spec"]["containers"][0].get("env", []):
                if "value" in e:
                    env[e["name"]] = e["value"]
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    # As the kubelet does: read the Secret and decode the key.
                    c, sec = self.api.req("GET", f"/api/v1/namespaces/{ns}/secrets/{ref['name']}")
                    if c != 200 or ref["key"] not in sec.get("data", {}):
                        return 1, "CreateContainerConfigError", \
                            f"fake-kubelet: secret {ref['name']} key {ref['key']}: HTTP {c}"
                    env[e["name"]] = base64.b64decode(sec["data"][ref["key"]]).decode()
            cmd = pod["spec"]["containers"][0]["command"]
            args = cmd[cmd.index(f"/code/{fname}") + 1:] if f"/code/{fname}" in cmd else []
            deadline = pod["spec"].get("activeDeadlineSeconds", 300)
            try:
                p = subprocess.run(interp + [path] + args, cwd=work, env=env, timeout=deadline,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            except subprocess.TimeoutExpired:
                return None, "DeadlineExceeded", ""
            out = p.stdout.decode("utf-8", "replace")[-4096:]
            return p.returncode, ("Completed" if p.returncode == 0 else "Error"), out
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def handle(self, pod):
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        try:
            started = now()
            self.patch_status(ns, name, {
                "phase": "Running", "startTime": started,
                "containerStatuses": self.container_status(pod, {"running": {"startedAt": started}})})
            if getattr(self, "hold", 0) > 0:
                time.sleep(self.hold)
            outcome = pod["metadata"].get("annotations", {}).get("aitask.dev/fake-outcome")
            if outcome == "deadline":
                code, reason, msg = None, "DeadlineExceeded", ""
            elif outcome and outcome.startswith("exit:"):
                _, c, reason, msg = (outcome.split(":", 3) + ["", ""])[:4]
                code = int(c)
            elif self.mode == "succeed":
                code, reason, msg = 0, "Completed", "ok\n"
            elif self.mode == "fail":
                code, reason, msg = 1, "Error", "fake failure\n"
            else:
                code, reason, msg = self.run_code(pod, ns)
            fin = now()
            if code is None:
                self.patch_status(ns, name, {
                    "phase": "Failed", "reason": "DeadlineExceeded",
                    "message": "Pod was active on the node longer than the specified deadline"})
                return
            term = {"exitCode": code, "reason": reason, "message": msg,
                    "startedAt": started, "finishedAt": fin}
            self.patch_status(ns, name, {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": self.container_status(pod, {"terminated": term})})
        except Exception as e:  # a fake must never die silently mid-test
            print(f"fake-kubelet: {ns}/{name}: {e!r}", file=sys.stderr, flush=True)

    def poll(self):
        sel = urllib.parse.quote("app.kubernetes.io/managed-by=aitask-operator")
        for ns in self.namespaces:
            base = f"/api/v1/namespaces/{ns}/pods" if ns else "/api/v1/pods"
            code, lst = self.api.req("GET", f"{base}?labelSelector={sel}")
            if code != 200:
                continue
            for pod in lst.get("items", []):
                uid = pod["metadata"]["uid"]
                phase = pod.get("status", {}).get("phase", "Pending")
                if uid in self.seen or phase != "Pending" or pod["metadata"].get("deletionTimestamp"):
                    continue
                self.seen.add(uid)
                self.pool.submit(self.handle, pod)

    def loop(self, interval):
        while not self.stop:
            self.poll()
            time.sleep(interval)
        self.pool.shutdown(wait=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster-dir", default=os.environ.get("AIT_CLUSTER_DIR"))
    ap.add_argument("--namespace", action="append", default=[],
                    help="namespace to serve (repeatable; default: all)")
    ap.add_argument("--mode", choices=["run", "succeed", "fail"], default="run")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds a container 'runs' before its outcome (succeed/fail modes)")
    a = ap.parse_args()
    if not a.cluster_dir:
        ap.error("--cluster-dir or AIT_CLUSTER_DIR is required")
    k = Kubelet(Api(a.cluster_dir), a.namespace or [""], a.mode, a.parallel)
    k.hold = a.hold
    signal.signal(signal.SIGTERM, lambda *_: setattr(k, "stop", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(k, "stop", True))
    k.loop(a.interval)


if __name__ == "__main__":
    main()
