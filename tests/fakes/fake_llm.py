#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# FAKE: stands in for the real LLM providers, which cannot be reached here.
#
# One process serves every provider wire format of /work/shared/docs/PROVIDERS.md, chosen by
# the path's tail, under any first path segment (the "route", so several providers of one
# format can live side by side):
#   POST /<route>/.../chat/completions                    OpenAI, Mistral, Groq, compatible
#   POST /<route>/v1/messages                             Anthropic Messages
#   POST /<route>/v1beta/models/<model>:generateContent   Gemini
#   POST /<route>/api/chat                                Ollama
# e.g. base URLs http://127.0.0.1:P/openai/v1, http://127.0.0.1:P/anthropic,
# http://127.0.0.1:P/gemini/v1beta, http://127.0.0.1:P/ollama.
#
# Control:
#   POST /_script  {"route": "openai", "queue": [behaviour, ...]}  appends to that route's queue
#                  {"reset": true}                                 clears queues and the log
#   GET  /_requests[?route=R]  {"requests": [{route, format, path, headers, body, ts}]}
# A behaviour is {"do": WHAT, ...}; WHAT is one of
#   answer {fields:{...}, tokens:{prompt, completion}}  a valid four-field answer
#   raw {content}          the model's content text as given (wrong schema, prose)
#   wrong_schema           a JSON answer with the wrong fields
#   envelope               valid JSON of the wrong envelope shape
#   rate_limit {retry_after, reset}  429, the provider's own retryable shape
#   status {code}          500/503/529 with the provider's error body
#   quota {variant}        quota exhausted, the provider's own non-retryable shape
#   refusal, length        a refusal / a truncated answer (finish length, MAX_TOKENS, ...)
#   html {code}            an HTML page instead of JSON
#   hang {seconds}         no answer for that long
#   drip {interval}        a valid answer, one byte per interval
#   cut                    Content-Length promises more than is sent, then the socket closes
#   huge {size, chunked}   a body of size bytes (default 10 MB), with or without Content-Length
#   auth {code}            401 (Gemini: 403 PERMISSION_DENIED)
#   bad_request {message}  400 with the message (e.g. naming an unsupported parameter)
# With an empty queue the answer is fixed code that prints "healed" in the asked runtime.
import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
QUEUES = {}
LOG = []

HEALED = {
    "python": 'print("healed")\n',
    "node": 'console.log("healed");\n',
    "bash": "echo healed\n",
}


def default_fields(text):
    runtime = "python"
    for r in ("node", "bash"):
        if "runtime: " + r in text:
            runtime = r
    return {
        "consensus_code": HEALED[runtime],
        "architect_notes": "fake architect: the structure is fine",
        "bug_hunter_notes": "fake bug hunter: replaced the failing statement",
        "consensus_reasoning": "fake consensus: print the expected output",
    }


def fmt_of(path):
    if path.endswith("/chat/completions"):
        return "openai"
    if path.endswith("/v1/messages"):
        return "anthropic"
    if ":generateContent" in path:
        return "gemini"
    if path.endswith("/api/chat"):
        return "ollama"
    return None


def error_body(fmt, code, etype, message, extra=None):
    if fmt == "anthropic":
        return {"type": "error", "error": {"type": etype, "message": message},
                "request_id": "req_fake"}
    if fmt == "gemini":
        status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED",
                  500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "UNKNOWN")
        e = {"code": code, "message": message, "status": status}
        if extra:
            e["details"] = extra
        return {"error": e}
    if fmt == "ollama":
        return {"error": message}
    return {"error": {"message": message, "type": etype, "param": None, "code": extra or etype}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm/1"

    def setup(self):
        super().setup()
        # Headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK would add 40 ms to every answer on a reused connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def send_json(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/_requests":
            route = parse_qs(u.query).get("route", [None])[0]
            with LOCK:
                reqs = [r for r in LOG if route is None or r["route"] == route]
            self.send_json(200, {"requests": reqs})
            return
        if u.path == "/_health":
            self.send_json(200, {"ok": True})
            return
        self.send_json(404, {"error": "not found"})

    def do_POST(self):
        u = urlparse(self.path)
        raw = self.read_body()
        if u.path == "/_script":
            cmd = json.loads(raw or b"{}")
            with LOCK:
                if cmd.get("reset"):
                    QUEUES.clear()
                    LOG.clear()
                if "route" in cmd:
                    QUEUES.setdefault(cmd["route"], []).extend(cmd.get("queue", []))
            self.send_json(200, {"ok": True})
            return
        fmt = fmt_of(u.path)
        parts = u.path.strip("/").split("/")
        route = parts[0] if parts else ""
        if fmt is None:
            self.send_json(404, {"error": {"message": "no such endpoint " + u.path}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        model = body.get("model") if isinstance(body, dict) else None
        if fmt == "gemini":
            model = u.path.rsplit("/", 1)[-1].split(":")[0]
        with LOCK:
            LOG.append({"route": route, "format": fmt, "path": u.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "ts": time.time()})
            q = QUEUES.get(route)
            beh = q.pop(0) if q else {"do": "answer"}
        self.behave(fmt, body, raw, model or "fake-model", beh)

    # ---- answers ----

    def answer(self, fmt, req, raw, model, text, tokens, finish="stop", refusal=None,
               as_tool=None):
        p = tokens.get("prompt", len(raw) // 4)
        c = tokens.get("completion", len(text or "") // 4)
        if fmt == "anthropic":
            stop = {"stop": "end_turn", "length": "max_tokens", "refusal": "refusal"}[finish]
            content = [] if finish == "refusal" else [{"type": "text", "text": text}]
            tools = req.get("tools") if isinstance(req, dict) else None
            if tools and finish == "stop" and as_tool is not None:
                content = [{"type": "tool_use", "id": "toolu_fake", "name": tools[0]["name"],
                            "input": as_tool}]
                stop = "tool_use"
            return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": content, "stop_reason": stop, "stop_sequence": None,
                    "usage": {"input_tokens": p, "output_tokens": c}}
        if fmt == "gemini":
            fr = {"stop": "STOP", "length": "MAX_TOKENS", "refusal": "SAFETY"}[finish]
            cand = {"finishReason": fr, "index": 0}
            if finish != "refusal":
                cand["content"] = {"parts": [{"text": text}], "role": "model"}
            return {"candidates": [cand], "modelVersion": model,
                    "usageMetadata": {"promptTokenCount": p, "candidatesTokenCount": c,
                                      "totalTokenCount": p + c}}
        if fmt == "ollama":
            if finish == "refusal":
                text = "I can't help with that."
            return {"model": model, "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": text}, "done": True,
                    "done_reason": "length" if finish == "length" else "stop",
                    "prompt_eval_count": p, "eval_count": c}
        msg = {"role": "assistant", "content": text, "refusal": None}
        if finish == "refusal":
            msg = {"role": "assistant", "content": None,
                   "refusal": "I'm sorry, I cannot help with that request."}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": msg,
                             "finish_reason": "length" if finish == "length" else "stop"}],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}

    def behave(self, fmt, req, raw, model, beh):
        what = beh.get("do", "answer")
        tokens = beh.get("tokens", {})
        text_in = raw.decode("utf-8", "replace")
        if what == "answer":
            fields = dict(default_fields(text_in))
            fields.update(beh.get("fields", {}))
            self.send_json(200, self.answer(fmt, req, raw, model, json.dumps(fields), tokens,
                                            as_tool=fields))
        elif what in ("raw", "wrong_schema"):
            content = beh.get("content", json.dumps({"code": "print(1)", "notes": "x"}))
            try:
                as_tool = json.loads(content)
            except ValueError:
                as_tool = {"text": content}
            self.send_json(200, self.answer(fmt, req, raw, model, content, tokens,
                                            as_tool=as_tool))
        elif what == "envelope":
            self.send_json(200, {"result": "ok", "unexpected": [1, 2, 3]})
        elif what == "refusal":
            self.send_json(200, self.answer(fmt, req, raw, model, "", tokens, finish="refusal"))
        elif what == "length":
            full = json.dumps(default_fields(text_in))
            self.send_json(200, self.answer(fmt, req, raw, model, full[: len(full) // 2], tokens,
                                            finish="length"))
        elif what == "rate_limit":
            ra = str(beh.get("retry_after", 1))
            hdr = {"retry-after": ra}
            if fmt == "anthropic":
                self.send_json(429, error_body(fmt, 429, "rate_limit_error",
                                               "Number of request tokens has exceeded your "
                                               "per-minute rate limit"), hdr)
            elif fmt == "gemini":
                details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/"
                                            "generate_content_free_tier_requests",
                                            "quotaId": "GenerateRequestsPerMinutePerProject"
                                            "PerModel-FreeTier"}]},
                           {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": ra + "s"}]
                self.send_json(429, error_body(fmt, 429, "", "You exceeded your current quota, "
                                               "please check your plan and billing details.",
                                               details))
            elif fmt == "ollama":
                self.send_json(429, error_body(fmt, 429, "", "too many requests"), hdr)
            else:
                hdr["x-ratelimit-reset-requests"] = beh.get("reset", ra + "s")
                hdr["x-ratelimit-reset-tokens"] = beh.get("reset", ra + "s")
                self.send_json(429, error_body(fmt, 429, "requests",
                                               "Rate limit reached for requests",
                                               "rate_limit_exceeded"), hdr)
        elif what == "status":
            code = int(beh.get("code", 503))
            if fmt == "anthropic":
                et = {529: "overloaded_error", 500: "api_error"}.get(code, "api_error")
                self.send_json(code, error_body(fmt, code, et, "Overloaded"))
            else:
                self.send_json(code, error_body(fmt, code, "server_error",
                                                "The server is overloaded or not ready yet."))
        elif what == "quota":
            if fmt == "anthropic":
                if beh.get("variant") == "spend":
                    self.send_json(429, error_body(fmt, 429, "rate_limit_error",
                                                   "This request would exceed your account's "
                                                   "monthly spend limit. Please try again "
                                                   "later."), {"retry-after": "3600"})
                else:
                    self.send_json(400, error_body(fmt, 400, "invalid_request_error",
                                                   "You have reached your specified API usage "
                                                   "limits. You will regain access on "
                                                   "2026-09-01 at 00:00 UTC."))
            elif fmt == "gemini":
                details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/"
                                            "generate_content_free_tier_requests",
                                            "quotaId": "GenerateRequestsPerDayPerProject"
                                            "PerModel-FreeTier", "quotaValue": "50"}]},
                           {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "37s"}]
                self.send_json(429, error_body(fmt, 429, "", "You exceeded your current quota, "
                                               "please check your plan and billing details.",
                                               details))
            elif fmt == "ollama":
                self.send_json(503, error_body(fmt, 503, "", "server busy, please try again. "
                                               "maximum pending requests exceeded"))
            else:
                self.send_json(429, error_body(fmt, 429, "insufficient_quota",
                                               "You exceeded your current quota, please check "
                                               "your plan and billing details.",
                                               "insufficient_quota"))
        elif what == "html":
            data = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            self.send_response(int(beh.get("code", 200)))
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif what == "hang":
            time.sleep(float(beh.get("seconds", 30)))
            self.close_connection = True
            try:
                self.send_json(200, self.answer(fmt, req, raw, model,
                                                json.dumps(default_fields(text_in)), tokens))
            except OSError:
                pass
        elif what == "drip":
            data = json.dumps(self.answer(fmt, req, raw, model,
                                          json.dumps(default_fields(text_in)), tokens)).encode()
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(float(beh.get("interval", 0.2)))
            except OSError:
                pass
        elif what == "cut":
            data = json.dumps(self.answer(fmt, req, raw, model,
                                          json.dumps(default_fields(text_in)), tokens)).encode()
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) + 500))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
        elif what == "huge":
            size = int(beh.get("size", 10 * 1024 * 1024))
            chunked = bool(beh.get("chunked", False))
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b'{"pad":"' + b"x" * 65536
            sent = 0
            try:
                while sent < size:
                    piece = block[: min(len(block), size - sent)]
                    if chunked:
                        self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    else:
                        self.wfile.write(piece)
                    sent += len(piece)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            with LOCK:
                LOG[-1]["huge_sent"] = sent
        elif what == "auth":
            if fmt == "gemini":
                self.send_json(403, error_body(fmt, 403, "", "Method doesn't allow unregistered "
                                               "callers. Please use an API key."))
            else:
                code = int(beh.get("code", 401))
                self.send_json(code, error_body(fmt, code, "authentication_error",
                                                "invalid x-api-key" if fmt == "anthropic"
                                                else "Incorrect API key provided",
                                                "invalid_api_key"))
        elif what == "bad_request":
            self.send_json(400, error_body(fmt, 400, "invalid_request_error",
                                           beh.get("message", "bad request")))
        else:
            self.send_json(500, {"error": "fake: unknown behaviour " + str(what)})


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
