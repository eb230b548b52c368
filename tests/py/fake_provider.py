#!/usr/bin/env python3
"""A fake cloud provider for Spillway's fallback tests, on 127.0.0.1 only.

Speaks both wire formats, streaming and not:
  POST /v1/messages           Anthropic Messages API (x-api-key, anthropic-version)
  POST /v1/chat/completions   OpenAI chat completions (Authorization: Bearer)
It validates what a real provider validates (auth header, version header,
Anthropic's required max_tokens, roles, no "system" role inside messages) and
answers "fake reply: <last user text>", split into one SSE event per word.
A request whose tool_choice forces a tool (Anthropic any/tool, OpenAI
required/function) is answered with one call of that tool (the first one for
any/required) with input {"query": <last user text>}; a tool's result in the
last user turn is answered "fake reply: tool said <result>". Anthropic
stop_sequences cut the answer at the first one that occurs in it.

Control (JSON over HTTP, same port):
  POST /_control {"script": ["429", "ok"], "default": "ok", "retry_after": "1",
                  "delay": 0.2, "status_body": "..."}
       Each provider request consumes the next mode of the script, then the
       default. Modes:
         ok          a normal answer
         timeout     accept, read the request, answer nothing for `delay` s (default 30)
         slow        stream with `delay` s between events (non-stream: wait, then answer)
         split       stream one byte per write (exercises the client's SSE parser)
         429         HTTP 429 with Retry-After: `retry_after` (seconds or HTTP date)
         500         HTTP 500 (api_error)
         529         HTTP 529 (overloaded_error)
         malformed   HTTP 200, text/event-stream, garbage that is not SSE
         badjson     HTTP 200, SSE whose data is not JSON (non-stream: body not JSON)
         truncated   stream stops after the first text delta (no message_stop / [DONE])
         error_event Anthropic: an "error" event (overloaded_error) before any content
         reset       close the connection with a TCP RST before answering
         echo_key    HTTP 401 whose message quotes the received key (a leak test)
         echo_all    answer with every text of the request (system, each message's
                     content, tool call arguments) joined by " | ", not just the last
                     user text
         tiny        stream the answer in deltas of 3 characters (placeholders and
                     UTF-8 sequences get cut); combine with '+': "echo_all+tiny"
  GET  /_stats   {"hits": N, "by_path": {...}, "modes": [...], "last": {path, headers
                  (auth headers replaced by "present"/"absent"), body}}
  GET  /_received {"bodies": [every provider request body, as received, as text]}
                  (a recorder for privacy tests: what left the server, byte for byte)
  POST /_reset   zero the counters, clear the script and the recording
Hits count provider requests only (control calls are not counted), so a test
can assert that a private request reached the provider zero times.

Usage: fake_provider.py [--port 0] [--key KEY]. Prints "READY <port>" on
stdout once listening; exits on SIGTERM/SIGINT or when stdin closes (so a
crashed test never leaves it behind).
"""
import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE_LOCK = threading.Lock()
STOP = threading.Event()


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.hits = 0
        self.by_path = {}
        self.modes = []
        self.script = []
        self.default = "ok"
        self.retry_after = "1"
        self.delay = None
        self.last = None
        self.received = []


STATE = State()
KEY = "test-key"


def next_mode(path, headers, body, raw=b""):
    with STATE_LOCK:
        STATE.received.append(raw.decode("utf-8", "replace"))
        STATE.hits += 1
        STATE.by_path[path] = STATE.by_path.get(path, 0) + 1
        mode = STATE.script.pop(0) if STATE.script else STATE.default
        STATE.modes.append(mode)
        hdrs = {k.lower(): v for k, v in headers.items()}
        for secret in ("x-api-key", "authorization"):
            hdrs[secret] = "present" if secret in hdrs else "absent"
        STATE.last = {"path": path, "headers": hdrs, "body": body}
        return mode, STATE.retry_after, STATE.delay


def sleep_interruptible(seconds):
    end = time.monotonic() + seconds
    while not STOP.is_set() and time.monotonic() < end:
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1"

    def log_message(self, fmt, *args):  # quiet: tests read stdout/stderr
        pass

    # ---- plumbing ----
    def read_body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake_%d" % STATE.hits)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_stream(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_fake_%d" % STATE.hits)
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        if not data:
            return
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reset_connection(self):
        s = self.connection
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        self.close_connection = True

    # ---- control ----
    def do_GET(self):
        if self.path == "/_stats":
            with STATE_LOCK:
                self.send_json(200, {"hits": STATE.hits, "by_path": STATE.by_path,
                                     "modes": STATE.modes, "last": STATE.last})
        elif self.path == "/_received":
            with STATE_LOCK:
                self.send_json(200, {"bodies": list(STATE.received)})
        else:
            self.send_json(404, {"error": {"type": "not_found_error", "message": "no such path"}})

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_reset":
            with STATE_LOCK:
                STATE.reset()
            return self.send_json(200, {"ok": True})
        if self.path == "/_control":
            cfg = json.loads(raw or b"{}")
            with STATE_LOCK:
                STATE.script = list(cfg.get("script", []))
                STATE.default = cfg.get("default", "ok")
                STATE.retry_after = str(cfg.get("retry_after", "1"))
                STATE.delay = cfg.get("delay")
            return self.send_json(200, {"ok": True})
        if self.path in ("/v1/messages", "/v1/chat/completions"):
            try:
                return self.provider("anthropic" if self.path == "/v1/messages" else "openai", raw)
            except (BrokenPipeError, ConnectionResetError):
                # the client gave up (timeout test, cancelled stream): expected
                self.close_connection = True
                return None
        self.send_json(404, {"error": {"type": "not_found_error", "message": "no such path"}})

    # ---- the provider ----
    def provider(self, kind, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        mode, retry_after, delay = next_mode(self.path, self.headers, body, raw)
        flags = set(mode.split("+")[1:])
        mode = mode.split("+")[0]
        if mode in ("echo_all", "tiny"):
            flags.add(mode)
            mode = "ok"
        anth = kind == "anthropic"

        if mode == "reset":
            return self.reset_connection()
        if mode == "timeout":
            sleep_interruptible(delay if delay is not None else 30)
            return self.reset_connection()
        if mode == "echo_key":
            got = self.headers.get("x-api-key") or self.headers.get("authorization", "")
            return self.error(401, "authentication_error", "invalid x-api-key: %s" % got, anth)

        # what a real provider checks
        if anth:
            if self.headers.get("x-api-key") != KEY:
                return self.error(401, "authentication_error", "invalid x-api-key", anth)
            if self.headers.get("anthropic-version") != "2023-06-01":
                return self.error(400, "invalid_request_error", "anthropic-version header required", anth)
        elif self.headers.get("authorization") != "Bearer " + KEY:
            return self.error(401, "invalid_request_error", "Incorrect API key provided", anth)
        if not (self.headers.get("content-type") or "").startswith("application/json"):
            return self.error(400, "invalid_request_error", "content-type must be application/json", anth)
        problem = validate(body, anth)
        if problem:
            return self.error(400, "invalid_request_error", problem, anth)

        if mode in ("429", "500", "529"):
            status = int(mode)
            etype = {"429": "rate_limit_error", "500": "api_error", "529": "overloaded_error"}[mode]
            extra = {"retry-after": retry_after} if status == 429 else None
            return self.error(status, etype, "fake %s" % etype, anth, extra)

        call = forced_tool(body, anth)
        if call:
            return self.tool_answer(anth, body, call, mode)
        text = "fake reply: " + (all_text(body) if "echo_all" in flags else last_user_text(body))
        stop_seq = None
        for seq in (body.get("stop_sequences") or []) if anth else []:
            at = text.find(seq)
            if at >= 0 and (stop_seq is None or at < text.find(stop_seq)):
                stop_seq = seq
        if stop_seq is not None:
            text = text[:text.find(stop_seq)]
        if "tiny" in flags:
            words = [text[i:i + 3] for i in range(0, len(text), 3)]
        else:
            words = text.split(" ")
            words = [w + (" " if i + 1 < len(words) else "") for i, w in enumerate(words)]
        limit = body.get("max_tokens") if anth else (body.get("max_completion_tokens") or body.get("max_tokens"))
        finish = "stop"
        if isinstance(limit, int) and limit < len(words):
            words, finish = words[:limit], "length"
        in_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        in_tokens += len(str(body.get("system", "")).split())

        if not body.get("stream"):
            if mode == "slow":
                sleep_interruptible(delay or 0.5)
            if mode == "badjson":
                data = b"this is not json"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            ans = full_answer(anth, body, "".join(words), finish, in_tokens, len(words))
            if anth and stop_seq is not None:
                ans["stop_reason"], ans["stop_sequence"] = "stop_sequence", stop_seq
            return self.send_json(200, ans)

        self.start_stream()
        if mode == "malformed":
            self.chunk("this is not an event stream\n\n")
            return self.end_stream()
        if mode == "badjson":
            self.chunk("data: {not json\n\n")
            return self.end_stream()
        if mode == "error_event" and anth:
            self.chunk(sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                 "message": "Overloaded"}}))
            return self.end_stream()
        events = stream_events(anth, body, words, finish, in_tokens, stop_seq)
        for i, ev in enumerate(events):
            if mode == "truncated" and i >= (4 if anth else 2):
                break
            if mode == "split":
                for b in ev.encode():
                    self.chunk(bytes([b]))
            else:
                self.chunk(ev)
            if mode == "slow":
                sleep_interruptible(delay or 0.2)
        self.end_stream()

    def tool_answer(self, anth, body, call, mode):
        """One forced tool call, whole or streamed (arguments in two pieces)."""
        name, args = call
        arg_text = json.dumps(args)
        half = len(arg_text) // 2
        model = body["model"]
        if anth:
            if not body.get("stream"):
                return self.send_json(200, {
                    "id": "msg_fake02", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "tool_use", "id": "toolu_fake01", "name": name, "input": args}],
                    "stop_reason": "tool_use", "stop_sequence": None,
                    "usage": {"input_tokens": 7, "output_tokens": 5}})
            evs = [sse("message_start", {"type": "message_start", "message": {
                       "id": "msg_fake02", "type": "message", "role": "assistant", "model": model,
                       "content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": 7, "output_tokens": 1}}}),
                   sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                       "type": "tool_use", "id": "toolu_fake01", "name": name, "input": {}}}),
                   sse("ping", {"type": "ping"})]
            for piece in (arg_text[:half], arg_text[half:]):
                evs.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                    "type": "input_json_delta", "partial_json": piece}}))
            evs += [sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    sse("message_delta", {"type": "message_delta", "delta": {
                        "stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 5}}),
                    sse("message_stop", {"type": "message_stop"})]
        else:
            tc = {"id": "call_fake01", "type": "function", "function": {"name": name, "arguments": arg_text}}
            if not body.get("stream"):
                return self.send_json(200, {
                    "id": "chatcmpl-fake02", "object": "chat.completion", "created": int(time.time()),
                    "model": model, "choices": [{"index": 0, "message": {
                        "role": "assistant", "content": None, "tool_calls": [tc]},
                        "logprobs": None, "finish_reason": "tool_calls"}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}})
            base = {"id": "chatcmpl-fake02", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": model}

            def ch(delta, fin=None):
                return "data: " + json.dumps(dict(base, choices=[{"index": 0, "delta": delta,
                                                                  "finish_reason": fin}])) + "\n\n"
            evs = [ch({"role": "assistant", "content": None, "tool_calls": [
                       {"index": 0, "id": "call_fake01", "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                   ch({"tool_calls": [{"index": 0, "function": {"arguments": arg_text[:half]}}]}),
                   ch({"tool_calls": [{"index": 0, "function": {"arguments": arg_text[half:]}}]}),
                   ch({}, "tool_calls"), "data: [DONE]\n\n"]
        self.start_stream()
        for ev in evs:
            self.chunk(ev)
        self.end_stream()

    def error(self, status, etype, message, anth, extra=None):
        if anth:
            obj = {"type": "error", "error": {"type": etype, "message": message}}
        else:
            obj = {"error": {"message": message, "type": etype, "param": None, "code": None}}
        self.send_json(status, obj, extra)


def validate(body, anth):
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: field required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages: field required"
    roles = ("user", "assistant") if anth else ("system", "developer", "user", "assistant", "tool")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in roles:
            return "messages.%d.role: unexpected role %r" % (i, m.get("role") if isinstance(m, dict) else m)
        if anth and not isinstance(m.get("content"), (str, list)):
            return "messages.%d.content: field required" % i
    if anth:
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return "max_tokens: field required"
        for i in range(1, len(msgs)):
            if msgs[i]["role"] == msgs[i - 1]["role"]:
                return "messages: roles must alternate"
        t = body.get("temperature")
        if t is not None and not 0 <= t <= 1:
            return "temperature: must be in [0, 1]"
        if "stop" in body:
            return "stop: extra inputs are not permitted (use stop_sequences)"
    return None


def block_text(c):
    """The text of a content: a string, or blocks (a tool result says so)."""
    if not isinstance(c, list):
        return str(c)
    out = []
    for p in c:
        if not isinstance(p, dict):
            continue
        if p.get("type") == "tool_result":
            out.append("tool said " + block_text(p.get("content", "")))
        else:
            out.append(p.get("text", ""))
    return "".join(out)


def last_user_text(body):
    msgs = body["messages"]
    if msgs and msgs[-1].get("role") == "tool":  # OpenAI: the tools' answers end the list
        return "tool said " + block_text(msgs[-1].get("content", ""))
    for m in reversed(msgs):
        if m.get("role") == "user":
            return block_text(m.get("content"))
    return ""


def content_text(c):
    if isinstance(c, list):
        return "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return str(c) if c is not None else ""


def all_text(body):
    """Every text of a request: system, each message's content, tool call
    arguments (OpenAI) / tool_use inputs (Anthropic)."""
    out = []
    if isinstance(body.get("system"), (str, list)):
        out.append(content_text(body["system"]))
    for m in body["messages"]:
        c = m.get("content")
        if isinstance(c, list):
            for p in c:
                if isinstance(p, dict) and p.get("type") == "tool_use":
                    out.append(json.dumps(p.get("input")))
                elif isinstance(p, dict) and p.get("type") == "tool_result":
                    out.append(content_text(p.get("content")))
        t = content_text(c)
        if t:
            out.append(t)
        for call in m.get("tool_calls") or []:
            out.append(str((call.get("function") or {}).get("arguments", "")))
    return " | ".join(out)


def forced_tool(body, anth):
    """(name, input) when tool_choice forces a call, else None."""
    tools, tc = body.get("tools") or [], body.get("tool_choice")
    if not tools or not tc:
        return None
    names = [t["name"] if anth else t["function"]["name"] for t in tools]
    if anth:
        kind = tc.get("type")
        name = tc.get("name") if kind == "tool" else names[0] if kind == "any" else None
    elif tc == "required":
        name = names[0]
    else:
        name = tc.get("function", {}).get("name") if isinstance(tc, dict) else None
    return (name, {"query": last_user_text(body)}) if name else None


def full_answer(anth, body, text, finish, in_tokens, out_tokens):
    if anth:
        return {"id": "msg_fake01", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn" if finish == "stop" else "max_tokens", "stop_sequence": None,
                "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens}}
    return {"id": "chatcmpl-fake01", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": in_tokens, "completion_tokens": out_tokens,
                      "total_tokens": in_tokens + out_tokens}}


def sse(event, obj):
    head = "event: %s\n" % event if event else ""
    return head + "data: " + json.dumps(obj) + "\n\n"


def stream_events(anth, body, words, finish, in_tokens, stop_seq=None):
    if anth:
        evs = [sse("message_start", {"type": "message_start", "message": {
                   "id": "msg_fake01", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": in_tokens, "output_tokens": 1}}}),
               sse("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
               sse("ping", {"type": "ping"})]
        for w in words:
            evs.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": w}}))
        evs.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        reason = "end_turn" if finish == "stop" else "max_tokens"
        evs.append(sse("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": "stop_sequence" if stop_seq is not None else reason,
            "stop_sequence": stop_seq},
            "usage": {"output_tokens": len(words)}}))
        evs.append(sse("message_stop", {"type": "message_stop"}))
        return evs
    base = {"id": "chatcmpl-fake01", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fp_fake"}

    def ch(delta, fin=None):
        return dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}])
    evs = [": keep-alive comment\r\n\r\n", "data: " + json.dumps(ch({"role": "assistant", "content": ""})) + "\r\n\r\n"]
    for w in words:
        evs.append("data: " + json.dumps(ch({"content": w})) + "\n\n")
    evs.append("data: " + json.dumps(ch({}, finish)) + "\n\n")
    if (body.get("stream_options") or {}).get("include_usage"):
        evs.append("data: " + json.dumps(dict(base, choices=[], usage={
            "prompt_tokens": in_tokens, "completion_tokens": len(words),
            "total_tokens": in_tokens + len(words)})) + "\n\n")
    evs.append("data: [DONE]\n\n")
    return evs


def main():
    global KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", default="test-key")
    args = ap.parse_args()
    KEY = args.key
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True

    def stop(*_):
        STOP.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_stdin():  # parent gone -> stdin EOF -> stop
        try:
            while sys.stdin.read(1):
                pass
        except Exception:
            pass
        stop()
    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY %d" % srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()


if __name__ == "__main__":
    main()
