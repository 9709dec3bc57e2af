#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# NOT a fake of a product: the alert receiver that test_alerts.sh owns. Alertmanager's
# webhook_configs POST their notifications here (the Alertmanager webhook payload, version "4":
# {receiver, status, alerts: [{status, labels, annotations, startsAt, ...}], groupLabels, ...});
# this server only records them so the test can read what was delivered.
#
#   POST /<anything>   records {path, ts, body} (body parsed as JSON; 400 if it is not JSON)
#   GET  /_received    {"notifications": [recorded, in arrival order]}
#
# Listens on 127.0.0.1 on a free port and writes the port to --port-file once it accepts.
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
RECEIVED = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            self.reply(400, {"error": "body is not JSON"})
            return
        with LOCK:
            RECEIVED.append({"path": self.path, "ts": time.time(), "body": body})
        self.reply(200, {})

    def do_GET(self):
        if self.path.split("?")[0] != "/_received":
            self.reply(404, {"error": "not found"})
            return
        with LOCK:
            snapshot = list(RECEIVED)
        self.reply(200, {"notifications": snapshot})

    def log_message(self, fmt, *args):
        print("webhook: " + (fmt % args), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
