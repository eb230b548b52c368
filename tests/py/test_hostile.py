"""Hostile input, black box: spillway-server and the command-line tools.

One server (stories260K, or a synthetic model; a small context so that any
request that is accepted ends quickly) gets, on every endpoint: bodies that
are not JSON objects, every field of every request replaced by values of
every wrong type and by out-of-range numbers, nested fields likewise
(messages, content parts, tools, tool_choice, response_format, json_schema,
stream_options, Anthropic blocks), edge values of n / logprobs / stop /
max_tokens, schemas and grammars that cannot be compiled, 1 MB strings,
wrong methods and content types, chunked bodies, and clients that hang up
mid-request and mid-stream. Each answer must come in time, be a 4xx (never
a 5xx) in the endpoint's own error shape (OpenAI's error object, or
Anthropic's {"type": "error", "error": {...}} on /v1/messages), or a 200;
and the server must keep serving a normal request afterwards.

spillway-generate, -router, -bench and -perplexity get bad flags and bad
files: each must exit non-zero (not by a signal) with a message, and print
no sanitizer report (run this with SW_BIN_DIR pointing at an ASan build).

Environment: as test_server.py (SW_BIN_DIR / SW_SERVER_BIN, SW_SHARED_DIR,
SW_TMP_DIR); SW_TEST_ONLY runs only the tests whose name contains it;
SW_HOSTILE_TIMES=1 prints how long each big or constrained request took."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import (Server, cancelled_count, find_model, metric,  # noqa: E402
                         raw_exchange, request, run_suite, server_bin, tmp_dir)

CHAT, CMPL, MSGS, COUNT = ("/v1/chat/completions", "/v1/completions", "/v1/messages",
                           "/v1/messages/count_tokens")
EMB, TOK, DETOK, TMPL = "/v1/embeddings", "/tokenize", "/detokenize", "/apply-template"
ANTHROPIC_PATHS = (MSGS, COUNT)
POST_PATHS = (CHAT, CMPL, MSGS, COUNT, EMB, TOK, DETOK, TMPL)
GET_PATHS = ("/v1/models", "/v1/models/x", "/health", "/metrics", "/v1/usage", "/")

USER = [{"role": "user", "content": "Once upon a time"}]
BASE = {
    CHAT: {"messages": USER, "max_tokens": 2},
    CMPL: {"prompt": "Once upon a time", "max_tokens": 2},
    MSGS: {"messages": USER, "max_tokens": 2},
    COUNT: {"messages": USER},
    EMB: {"input": "Once upon a time"},
    TOK: {"content": "Once upon a time"},
    DETOK: {"tokens": [1, 2, 3]},
    TMPL: {"messages": USER},
}

# Values of every JSON type, and numbers at and past every edge; RAW ones are
# spliced into the body as text (not JSON: NaN, Infinity, 1e400 overflows).
WRONG = [None, True, False, 0, -1, 1, 0.5, -0.0, 1e308, -1e308, 2**63, -2**63, 2**31,
         "", "x", "\u0000", "\ud800", [], [None], [1], ["a"], [[]], {}, {"a": 1}, {"type": 5},
         [{"type": "text"}]]
RAW_BAD = ["NaN", "Infinity", "-Infinity", "0x10", "+1", ".5", "-.5", "01", "-01", "00", "1.",
           "1.e5", "1e", "-"]  # not JSON (RFC 8259): 400
RAW_BIG = ["1e400", "-1e400", "1" * 400, "-0", "1E-400"]  # JSON, past a double's range

FIELDS = {
    CHAT: ["model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
           "top_k", "min_p", "seed", "stop", "stream", "stream_options", "logprobs",
           "top_logprobs", "n", "presence_penalty", "frequency_penalty", "repetition_penalty",
           "repeat_penalty", "repeat_last_n", "ignore_eos", "logit_bias", "tools", "tool_choice",
           "parallel_tool_calls", "response_format", "json_schema", "grammar", "functions",
           "function_call", "user", "spillway", "chat_template_kwargs", "best_of", "suffix",
           "prompt"],
    CMPL: ["model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed",
           "stop", "stream", "stream_options", "logprobs", "echo", "n", "best_of", "suffix",
           "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias",
           "response_format", "json_schema", "grammar", "ignore_eos", "tools", "spillway"],
    MSGS: ["model", "messages", "max_tokens", "system", "stop_sequences", "temperature",
           "top_p", "top_k", "metadata", "stream", "tools", "tool_choice", "thinking",
           "output_config", "spillway"],
    COUNT: ["model", "messages", "system", "tools", "tool_choice", "thinking"],
    EMB: ["input", "model", "encoding_format", "dimensions", "user"],
    TOK: ["content", "add_special", "parse_special"],
    DETOK: ["tokens"],
    TMPL: ["messages", "tools", "add_generation_prompt", "chat_template_kwargs"],
}

# Nested fields: a path into the base body (created where missing).
NESTED = {
    CHAT: [("messages", 0), ("messages", 0, "role"), ("messages", 0, "content"),
           ("messages", 0, "content", 0), ("messages", 0, "content", 0, "type"),
           ("messages", 0, "content", 0, "text"), ("messages", 0, "name"),
           ("messages", 1), ("messages", 1, "role"), ("messages", 1, "tool_calls"),
           ("messages", 1, "tool_calls", 0), ("messages", 1, "tool_calls", 0, "id"),
           ("messages", 1, "tool_calls", 0, "function"),
           ("messages", 1, "tool_calls", 0, "function", "name"),
           ("messages", 1, "tool_calls", 0, "function", "arguments"),
           ("tools", 0), ("tools", 0, "type"), ("tools", 0, "function"),
           ("tools", 0, "function", "name"), ("tools", 0, "function", "description"),
           ("tools", 0, "function", "parameters"),
           ("tools", 0, "function", "parameters", "properties"),
           ("tools", 0, "function", "parameters", "required"),
           ("tool_choice", "type"), ("tool_choice", "function"),
           ("tool_choice", "function", "name"),
           ("response_format", "type"), ("response_format", "json_schema"),
           ("response_format", "json_schema", "name"),
           ("response_format", "json_schema", "schema"),
           ("response_format", "json_schema", "strict"),
           ("response_format", "json_schema", "schema", "type"),
           ("response_format", "json_schema", "schema", "properties"),
           ("stream_options", "include_usage"), ("spillway", "route"), ("spillway", "private"),
           ("spillway", "pii"), ("logit_bias", "5")],
    MSGS: [("messages", 0), ("messages", 0, "role"), ("messages", 0, "content"),
           ("messages", 0, "content", 0), ("messages", 0, "content", 0, "type"),
           ("messages", 0, "content", 0, "text"), ("messages", 0, "content", 0, "id"),
           ("messages", 0, "content", 0, "input"), ("messages", 0, "content", 0, "tool_use_id"),
           ("messages", 0, "content", 0, "content"), ("messages", 0, "content", 0, "is_error"),
           ("messages", 0, "content", 0, "cache_control"), ("messages", 1),
           ("system", 0), ("system", 0, "type"), ("system", 0, "text"),
           ("tools", 0), ("tools", 0, "name"), ("tools", 0, "type"), ("tools", 0, "description"),
           ("tools", 0, "input_schema"), ("tools", 0, "input_schema", "type"),
           ("tools", 0, "input_schema", "properties"), ("tool_choice", "type"),
           ("tool_choice", "name"), ("tool_choice", "disable_parallel_tool_use"),
           ("metadata", "user_id"), ("thinking", "type"), ("thinking", "budget_tokens"),
           ("output_config", "format"), ("output_config", "format", "type"),
           ("output_config", "format", "schema"), ("output_config", "effort"),
           ("spillway", "route")],
    EMB: [("input", 0), ("input", 1), ("input", 0, 0)],
    TMPL: [("messages", 0), ("messages", 0, "role"), ("messages", 0, "content"),
           ("tools", 0), ("tools", 0, "function"), ("chat_template_kwargs", "x")],
    DETOK: [("tokens", 0), ("tokens", 2)],
}
NESTED[COUNT] = NESTED[MSGS]
NESTED[CMPL] = [(p, *rest) for p, *rest in NESTED[CHAT]
                if p in ("response_format", "stream_options", "spillway", "logit_bias")] + \
    [("prompt", 0), ("prompt", 1), ("prompt", 0, 0)]


def set_path(body, path, value):
    """body with the value at path; missing containers on the way are created
    (a list index past the end appends)."""
    body = json.loads(json.dumps(body))
    cur = body
    for i, k in enumerate(path):
        last = i == len(path) - 1
        nxt = None if last else ({} if isinstance(path[i + 1], str) else [])
        if isinstance(k, int):
            if not isinstance(cur, list):
                return None  # the container is a scalar here: not a shape to test
            while len(cur) <= k:
                cur.append(nxt if nxt is not None else {})
            if last:
                cur[k] = value
            elif not isinstance(cur[k], (dict, list)):
                cur[k] = nxt
        else:
            if not isinstance(cur, dict):
                return None
            if last:
                cur[k] = value
            elif not isinstance(cur.get(k), (dict, list)):
                cur[k] = nxt
        if not last:
            cur = cur[k]
    return body


class Failures:
    """Collects failures with the request that caused them, so that one run
    reports all of them."""

    def __init__(self):
        self.items = []

    def add(self, what, why):
        self.items.append(f"{what}: {why}")

    def check(self):
        if self.items:
            more = f"\n... and {len(self.items) - 40} more" if len(self.items) > 40 else ""
            raise AssertionError(f"{len(self.items)} failure(s):\n" +
                                 "\n".join(self.items[:40]) + more)


def error_shape(path, obj):
    """None when obj is an error in path's wire shape, else what is wrong."""
    if not isinstance(obj, dict):
        return f"error body is not an object: {obj!r:.200}"
    if path in ANTHROPIC_PATHS:
        e = obj.get("error")
        if obj.get("type") != "error" or not isinstance(e, dict):
            return f"not Anthropic's error shape: {obj!r:.200}"
        if not isinstance(e.get("type"), str) or not e["type"]:
            return f"no error.type: {obj!r:.200}"
    else:
        e = obj.get("error")
        if not isinstance(e, dict):
            return f"not OpenAI's error shape: {obj!r:.200}"
        for k in ("type", "param", "code"):
            if k not in e:
                return f"error has no '{k}': {obj!r:.200}"
    if not isinstance(e.get("message"), str) or not e["message"]:
        return f"empty error message: {obj!r:.200}"
    return None


def check_answer(fails, what, path, st, h, data, ok=(200,), want=None, param=None):
    """The common verdict: want (a status) or any 4xx (or one of ok), never
    5xx; errors in path's shape (naming param when given); a successful
    stream ends with [DONE] (or message_stop)."""
    if want is not None and st != want:
        fails.add(what, f"status {st}, want {want}: {data[:300]!r}")
        return
    if st >= 500 or (st not in ok and not 400 <= st < 500):
        fails.add(what, f"status {st}: {data[:300]!r}")
        return
    if h.get("content-type", "").startswith("text/event-stream"):
        tail = data.rstrip()
        if not (tail.endswith(b"data: [DONE]") or b"message_stop" in tail[-200:]):
            fails.add(what, f"stream does not end cleanly: {data[-300:]!r}")
        if st == 200 and b'"error"' in data and path not in ANTHROPIC_PATHS:
            fails.add(what, f"stream carries an error: {data[-300:]!r}")
        return
    if path not in POST_PATHS and st == 200:
        return  # GET answers: text, HTML or JSON
    try:
        obj = json.loads(data)
    except ValueError:
        fails.add(what, f"status {st}, body is not JSON: {data[:300]!r}")
        return
    if st >= 400:
        bad = error_shape(path, obj)
        if bad:
            fails.add(what, bad)
        elif param is not None:
            got = obj["error"].get("param") if path not in ANTHROPIC_PATHS else None
            msg = obj["error"]["message"]
            if got != param and not (path in ANTHROPIC_PATHS and param in msg):
                fails.add(what, f"param {got!r}, want {param!r}: {msg}")


def send(port, method, path, body, headers=None, timeout=30):
    """request() that reports a timeout or a dropped connection as status 0."""
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    try:
        return request(port, method, path, body, h, timeout)
    except socket.timeout:
        return 0, {}, b"<timed out>"
    except OSError as e:
        return 0, {}, f"<{e!r}>".encode()


class Suite:
    def __init__(self, model):
        self.model = model
        # a small context: an accepted request with no max_tokens still ends quickly
        self.srv = Server(model, "--ctx", "192", "--parallel", "8", "--timeout", "60")
        self.port = self.srv.port

    def n_vocab(self):
        st, _, data = send(self.port, "GET", "/v1/models", None)
        assert st == 200, data
        return json.loads(data)["data"][0]["meta"]["n_vocab"]

    def alive(self, what):
        assert self.srv.alive(), f"server died after {what}: {self.srv.logs()}"
        for path, body in ((CHAT, BASE[CHAT]), (MSGS, BASE[MSGS])):
            st, _, data = send(self.port, "POST", path, json.dumps(body))
            assert st == 200, f"after {what}: {path} answers {st}: {data[:300]!r}"
        logs = self.srv.logs()
        for sig in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            assert sig not in logs, f"after {what}: {logs}"

    # -- bodies -----------------------------------------------------------------

    def test_bodies_not_json_objects(self):
        deep_a = "[" * 100_000 + "]" * 100_000
        deep_o = '{"a":' * 50_000 + "1" + "}" * 50_000
        bodies = {
            "empty": b"", "space": b"   ", "open brace": b"{", "array": b"[]",
            "string": b'"hi"', "number": b"42", "null": b"null", "true": b"true",
            "NaN": b"NaN", "bare word": b"hello", "single quotes": b"{'a': 1}",
            "trailing comma": b'{"a": 1,}', "comment": b'{"a": 1 /* x */}',
            "unterminated string": b'{"a": "x', "bad escape": b'{"a": "\\x41"}',
            "lone surrogate escape": b'{"a": "\\ud800"}', "duplicate keys": b'{"a": 1, "a": 2}',
            "trailing garbage": b'{"a": 1} x', "two objects": b"{}{}",
            "invalid utf-8": b'{"a": "\xff\xfe"}', "overlong utf-8": b'{"a": "\xc0\xaf"}',
            "utf-8 surrogate": b'{"a": "\xed\xa0\x80"}', "truncated utf-8": b'{"a": "\xe2\x82"}',
            "raw NUL": b'{"a": "\x00"}', "NUL after": b"{}\x00", "BOM": b"\xef\xbb\xbf{}",
            "utf-16": '{"a": 1}'.encode("utf-16"), "deep arrays": deep_a.encode(),
            "deep objects": deep_o.encode(), "long number": b'{"a": ' + b"9" * 100_000 + b"}",
            "many keys": ("{" + ",".join(f'"k{i}": {i}' for i in range(50_000)) + "}").encode(),
        }
        fails = Failures()
        for path in POST_PATHS:
            for name, body in bodies.items():
                st, h, data = send(self.port, "POST", path, body)
                # an object with no real field ("duplicate keys", "many keys") is a 400 too
                check_answer(fails, f"{path} {name}", path, st, h, data, ok=())
        fails.check()
        self.alive("non-object bodies")

    def test_wrong_types_every_field(self):
        fails = Failures()
        for path, fields in FIELDS.items():
            for f in fields:
                for v in WRONG:
                    body = dict(BASE[path], **{f: v})
                    st, h, data = send(self.port, "POST", path, json.dumps(body))
                    check_answer(fails, f"{path} {f}={json.dumps(v)[:40]}", path, st, h, data)
                for raw in RAW_BAD + RAW_BIG:
                    body = json.dumps(dict(BASE[path], **{f: "@@"})).replace('"@@"', raw)
                    st, h, data = send(self.port, "POST", path, body)
                    check_answer(fails, f"{path} {f}={raw[:20]}", path, st, h, data,
                                 ok=() if raw in RAW_BAD else (200,))
        fails.check()
        self.alive("wrong types")

    def test_wrong_types_nested(self):
        fails = Failures()
        base = dict(BASE)
        # bodies with tools, a tool call and a schema, so the nested paths exist
        tool = {"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "string"}}}}}
        base[CHAT] = dict(BASE[CHAT], tools=[tool], messages=USER + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}])
        base[MSGS] = dict(BASE[MSGS], tools=[{"name": "f", "input_schema": {"type": "object"}}])
        base[COUNT] = dict(BASE[COUNT], tools=base[MSGS]["tools"])
        for path, paths in NESTED.items():
            for p in paths:
                for v in WRONG:
                    body = set_path(base[path], p, v)
                    if body is None:
                        continue
                    st, h, data = send(self.port, "POST", path, json.dumps(body))
                    what = f"{path} {'.'.join(map(str, p))}={json.dumps(v)[:40]}"
                    check_answer(fails, what, path, st, h, data)
        fails.check()
        self.alive("nested wrong types")

    # -- edge values ---------------------------------------------------------------

    def test_edge_values(self):
        """Values at the edges, with the exact verdict."""
        c, k = BASE[CHAT], BASE[CMPL]
        n_vocab = self.n_vocab()
        cases = [
            # (path, body, want status, param)
            (CHAT, dict(c, n=1), 200, None), (CHAT, dict(c, n=2), 400, "n"),
            (CHAT, dict(c, n=0), 400, "n"), (CHAT, dict(c, n=-1), 400, "n"),
            (CHAT, dict(c, n=1.0), 200, None), (CHAT, dict(c, n=1.5), 400, "n"),
            (CMPL, dict(k, best_of=2), 400, "best_of"),
            (CHAT, dict(c, logprobs=True, top_logprobs=0), 200, None),
            (CHAT, dict(c, logprobs=True, top_logprobs=20), 200, None),
            (CHAT, dict(c, logprobs=True, top_logprobs=21), 400, "top_logprobs"),
            (CHAT, dict(c, logprobs=True, top_logprobs=-1), 400, "top_logprobs"),
            (CHAT, dict(c, logprobs=False, top_logprobs=3), 400, "top_logprobs"),
            (CMPL, dict(k, logprobs=0), 200, None), (CMPL, dict(k, logprobs=20), 200, None),
            (CMPL, dict(k, logprobs=21), 400, "logprobs"),
            (CMPL, dict(k, logprobs=-1), 400, "logprobs"),
            (CHAT, dict(c, stop=""), 200, None), (CHAT, dict(c, stop=[]), 200, None),
            (CHAT, dict(c, stop=["a", "b", "c", "d"]), 200, None),
            (CHAT, dict(c, stop=["a", "b", "c", "d", "e"]), 400, "stop"),
            (CHAT, dict(c, stop=["", ""]), 200, None),
            (CHAT, dict(c, stop=["x" * 100_000]), 200, None),
            (CHAT, dict(c, stop=["\u0000"]), 200, None),
            (CHAT, dict(c, stop=[None]), 400, "stop[0]"),
            (CMPL, dict(k, stop=[["a"]]), 400, "stop[0]"),
            (CHAT, dict(c, max_tokens=1), 200, None), (CHAT, dict(c, max_tokens=0), 400, "max_tokens"),
            (CHAT, dict(c, max_tokens=-1), 400, "max_tokens"),
            (CHAT, dict(c, max_tokens=2**31 - 1), 400, "max_tokens"),
            (CHAT, dict(c, max_tokens=2**31), 400, "max_tokens"),
            (CHAT, dict(c, max_tokens=2**64), 400, "max_tokens"),
            (CHAT, dict(c, max_tokens=None), 200, None),
            (CHAT, dict(c, max_tokens=1, max_completion_tokens=0), 400, "max_completion_tokens"),
            (CMPL, dict(k, max_tokens=-2**63), 400, "max_tokens"),
            (MSGS, dict(BASE[MSGS], max_tokens=0), 400, "max_tokens"),
            (MSGS, {"messages": USER}, 400, "max_tokens"),
            (MSGS, dict(BASE[MSGS], max_tokens=2**31), 400, "max_tokens"),
            (CHAT, dict(c, temperature=0), 200, None), (CHAT, dict(c, temperature=2), 200, None),
            (CHAT, dict(c, temperature=2.0001), 400, "temperature"),
            (MSGS, dict(BASE[MSGS], temperature=1.5), 400, "temperature"),
            (CHAT, dict(c, top_p=0), 200, None), (CHAT, dict(c, top_k=-1), 200, None),
            (CHAT, dict(c, top_k=-2), 400, "top_k"), (CHAT, dict(c, top_k=10**9), 200, None),
            (CHAT, dict(c, repeat_last_n=-1), 200, None),
            (CHAT, dict(c, repeat_last_n=10**9), 200, None),
            (CHAT, dict(c, repetition_penalty=10), 200, None),
            (CHAT, dict(c, seed=-2**53), 200, None), (CHAT, dict(c, seed=2**53 + 2), 400, "seed"),
            (CHAT, dict(c, logit_bias={str(i): -100 for i in range(min(1024, n_vocab) - 1)}),
             200, None),
            (CHAT, dict(c, logit_bias={str(i): 1 for i in range(1025)}), 400, "logit_bias"),
            (CHAT, dict(c, logit_bias={"0x5": 1}), 400, "logit_bias"),
            (CHAT, dict(c, logit_bias={"5 ": 1}), 400, "logit_bias"),
            (CHAT, dict(c, logit_bias={"": 1}), 400, "logit_bias"),
            (CHAT, dict(c, logit_bias={"99999999999999999999": 1}), 400, "logit_bias"),
            (CMPL, dict(k, prompt=[2**31]), 400, "prompt[0]"),
            (CMPL, dict(k, prompt=[1.5]), 400, "prompt[0]"),
            (CMPL, dict(k, prompt=[[1, 2], [3]]), 400, "prompt"),
            (CMPL, dict(k, prompt=[[]]), 400, "prompt[0]"),
            (CMPL, dict(k, prompt=""), 200, None),
            (CMPL, dict(k, echo=True, max_tokens=1), 200, None),
            (EMB, {"input": []}, 400, "input"), (EMB, {"input": [""]}, 400, "input[0]"),
            (EMB, {"input": ""}, 400, "input"), (EMB, {"input": ["a"] * 2049}, 400, "input"),
            (EMB, {"input": [[1, 2], []]}, 400, "input[1]"),
            (EMB, {"input": [1, "a"]}, 400, "input[1]"),
            (EMB, {"input": "a", "encoding_format": "hex"}, 400, "encoding_format"),
            (EMB, {"input": "a", "dimensions": 3}, 400, "dimensions"),
            (EMB, {"input": "a", "encoding_format": "base64"}, 200, None),
            # more inputs than the engine queues (--max-queue 1024): served, not a 429
            # that no retry could get past
            (EMB, {"input": ["hello"] * 2048}, 200, None),
            (EMB, {"input": [[5] * 10] * 2048}, 200, None),
            (DETOK, {"tokens": []}, 200, None), (DETOK, {"tokens": [-1]}, 400, "tokens"),
            (DETOK, {"tokens": [2**31]}, 400, "tokens"),
            (TOK, {"content": ""}, 200, None),
            (TMPL, {"messages": []}, 200, None),
            (TMPL, {"messages": USER, "add_generation_prompt": "yes"}, 400,
             "add_generation_prompt"),
            (CHAT, dict(c, stream=True, stream_options={}), 200, None),
            (CHAT, dict(c, stream=True, stream_options={"include_usage": 1}), 400,
             "stream_options.include_usage"),
            (CHAT, dict(c, stream=True, stream_options=[]), 400, "stream_options"),
            (CHAT, dict(c, stream=False, stream_options={"include_usage": True}), 400,
             "stream_options"),
            (CHAT, dict(c, stream=True, stream_options={"include_usage": True, "x": [1]}), 200,
             None),
        ]
        fails = Failures()
        for path, body, want, param in cases:
            st, h, data = send(self.port, "POST", path, json.dumps(body))
            what = f"{path} {json.dumps(body)[:120]}"
            check_answer(fails, what, path, st, h, data, want=want, param=param)
        fails.check()
        self.alive("edge values")

    def test_tools_and_formats(self):
        """Tools, tool_choice, response_format, json_schema and grammar
        garbage: 400 naming the field, or (for a schema or grammar that is
        valid) a 200; never a 5xx, a hang or a crash."""
        c = BASE[CHAT]
        f = {"type": "function", "function": {"name": "f"}}
        schemas = [
            {"type": "nope"}, {"type": 5}, {"type": ["string", 5]}, {"type": []},
            {"$ref": "#/definitions/missing"}, {"$ref": "#"}, {"$ref": "x"}, {"$ref": 5},
            {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
             "$ref": "#/$defs/a"},
            {"type": "string", "pattern": "("}, {"type": "string", "pattern": "a{99999999}"},
            {"type": "string", "pattern": "[z-a]"}, {"type": "string", "pattern": "\\"},
            {"type": "string", "pattern": 5},
            {"type": "string", "minLength": -1}, {"type": "string", "minLength": 10**12},
            {"type": "string", "maxLength": 10**12}, {"type": "string", "minLength": 5,
                                                      "maxLength": 2},
            {"type": "string", "minLength": "x"}, {"type": "string", "minLength": 1.5},
            {"type": "array", "minItems": 10**9}, {"type": "array", "maxItems": -1},
            {"type": "array", "items": 5}, {"type": "array", "prefixItems": {}},
            {"type": "integer", "minimum": 10, "maximum": 1},
            {"type": "integer", "minimum": "x"}, {"type": "integer", "minimum": 1e308,
                                                  "maximum": 1e308},
            {"type": "integer", "exclusiveMinimum": 1e300}, {"type": "number", "multipleOf": 0},
            {"enum": []}, {"enum": 5}, {"const": {"a": [1, {"b": None}]}},
            {"anyOf": []}, {"oneOf": 5}, {"allOf": [{"type": "string"}, {"type": "integer"}]},
            {"type": "object", "properties": 5}, {"type": "object", "properties": {"a": 5}},
            {"type": "object", "required": ["missing"]}, {"type": "object", "required": 5},
            {"type": "object", "additionalProperties": 5},
            {"type": "object", "properties": {str(i): {"type": "string"} for i in range(100)}},
            {"format": "date-time"}, {"type": "string", "format": "nonsense"},
            True, False, 5, "x", [],
            # deeply nested schemas
            json.loads('{"type":"array","items":' * 300 + '{}' + '}' * 300),
            json.loads('{"anyOf":[' * 300 + '{}' + ']}' * 300),
        ]
        grammars = ["root ::= root", "root ::= ", "root ::=", "", "x ::= \"a\"",
                    "root ::= \"a\" | ", "root ::= [", "root ::= \"\\", "root ::= x",
                    "root ::= (((((", "root ::= \"a\"{0,99999999}", "root ::= [^]*",
                    "root ::= a\na ::= b\nb ::= a", "root ::= \"\" root",
                    "root ::= " + " | ".join(f'"{i}"' for i in range(5000)),
                    "root ::= " + "(" * 2000 + '"a"' + ")" * 2000, 5, ["root"]]
        cases = []
        for s in schemas:
            cases.append((CHAT, dict(c, response_format={"type": "json_schema",
                                                         "json_schema": {"name": "x", "schema": s}})))
            cases.append((CMPL, dict(BASE[CMPL], json_schema=s)))
            cases.append((CHAT, dict(c, tools=[{"type": "function", "function": {
                "name": "f", "parameters": s}}])))
            cases.append((MSGS, dict(BASE[MSGS], tools=[{"name": "f", "input_schema": s}])))
            cases.append((MSGS, dict(BASE[MSGS], output_config={"format": {
                "type": "json_schema", "schema": s}})))
        for g in grammars:
            cases.append((CHAT, dict(c, grammar=g)))
            cases.append((CMPL, dict(BASE[CMPL], grammar=g)))
        cases += [
            (CHAT, dict(c, tools=[])), (CHAT, dict(c, tools=[{}])), (CHAT, dict(c, tools=[f, f])),
            (CHAT, dict(c, tools=[{"type": "function", "function": {"name": "a b"}}])),
            (CHAT, dict(c, tools=[{"type": "function", "function": {"name": "x" * 65}}])),
            (CHAT, dict(c, tools=[{"type": "function", "function": {"name": ""}}])),
            (CHAT, dict(c, tools=[{"type": "code_interpreter"}])),
            (CHAT, dict(c, tools=[f] * 300)),
            (CHAT, dict(c, tools=[{"type": "function", "function": {"name": f"f{i}"}}
                                  for i in range(300)])),
            (CHAT, dict(c, tools=[f], tool_choice="bogus")),
            (CHAT, dict(c, tools=[f], tool_choice={"type": "function"})),
            (CHAT, dict(c, tools=[f], tool_choice={"type": "function",
                                                   "function": {"name": "g"}})),
            (CHAT, dict(c, tool_choice="required")), (CHAT, dict(c, tool_choice="none")),
            (CHAT, dict(c, tools=[f], tool_choice="required", response_format={
                "type": "json_object"})),
            (CHAT, dict(c, tools=[f], tool_choice="required")),
            (CHAT, dict(c, tools=[f], tool_choice={"type": "function", "function": {"name": "f"}})),
            (CHAT, dict(c, response_format={"type": "json_object"}, grammar="root ::= \"a\"")),
            (CHAT, dict(c, response_format={"type": "json_schema"})),
            (CHAT, dict(c, response_format={"type": "json_schema", "json_schema": {}})),
            (CHAT, dict(c, response_format={"type": "json_object", "schema": 5})),
            (CHAT, dict(c, response_format={"type": "text", "json_schema": 5})),
            (CHAT, dict(c, messages=[{"role": "assistant", "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]},
                {"role": "user", "content": "x"}])),
            (CHAT, dict(c, messages=[{"role": "assistant", "tool_calls": []},
                                     {"role": "user", "content": "x"}])),
            (CHAT, dict(c, messages=[{"role": "tool", "content": "x"}])),
            (MSGS, dict(BASE[MSGS], tool_choice={"type": "tool", "name": "g"},
                        tools=[{"name": "f", "input_schema": {"type": "object"}}])),
            (MSGS, dict(BASE[MSGS], tool_choice={"type": "any"})),
            (MSGS, dict(BASE[MSGS], messages=[{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}])),
            (MSGS, dict(BASE[MSGS], messages=[
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                   "input": "not an object"}]},
                {"role": "user", "content": "x"}])),
            (MSGS, dict(BASE[MSGS], messages=[{"role": "user", "content": [
                {"type": "image", "source": {}}]}])),
            (MSGS, dict(BASE[MSGS], thinking={"type": "enabled", "budget_tokens": 1024})),
            (MSGS, dict(BASE[MSGS], messages=[{"role": "assistant", "content": "x"}])),
            (MSGS, dict(BASE[MSGS], messages=[{"role": "system", "content": "x"}])),
        ]
        fails = Failures()
        for path, body in cases:
            t0 = time.time()
            st, h, data = send(self.port, "POST", path, json.dumps(body))
            what = f"{path} {json.dumps(body)[:160]}"
            check_answer(fails, what, path, st, h, data)  # a hang: status 0 after 30 s
            if os.environ.get("SW_HOSTILE_TIMES"):
                print(f"  {time.time() - t0:6.2f} s  {st}  {json.dumps(body)[80:260]}")
        fails.check()
        self.alive("tools and formats")

    def test_megabyte_strings(self):
        """Strings near the 1 MB body limit in every text field, and a body
        just past it (413): in time, 200 or 4xx, in the endpoint's shape."""
        big = "Once upon a time " * 55_000      # ~935 KB of text that tokenizes normally
        odd = "\U0001F600\u202e\ufffd\u200b\u00e9" * 60_000  # multi-byte, unusual
        many = " ".join(["a"] * 400_000)        # many tiny tokens
        cases = []
        for s in (big, odd, many):
            cases += [
                (CHAT, dict(BASE[CHAT], messages=[{"role": "user", "content": s}])),
                (CHAT, dict(BASE[CHAT], messages=[{"role": s, "content": "x"}])),
                (CHAT, dict(BASE[CHAT], model=s)),
                (CHAT, dict(BASE[CHAT], stop=s)),
                (CMPL, dict(BASE[CMPL], prompt=s)),
                (MSGS, dict(BASE[MSGS], system=s)),
                (COUNT, {"messages": [{"role": "user", "content": s}]}),
                (EMB, {"input": s}),
                (TOK, {"content": s}),
                (TMPL, {"messages": [{"role": "user", "content": s}]}),
                (CHAT, dict(BASE[CHAT], grammar='root ::= "' + s[:100_000].replace('"', "") + '"')),
            ]
        cases += [
            (DETOK, {"tokens": [5] * 150_000}),
            (CMPL, dict(BASE[CMPL], prompt=[5] * 150_000)),
            (CHAT, dict(BASE[CHAT], messages=[{"role": "user", "content": "x"}] * 20_000)),
            (CHAT, dict(BASE[CHAT], messages=[{"role": "user", "content": [
                {"type": "text", "text": "x"}] * 20_000}])),
        ]
        fails = Failures()
        for path, body in cases:
            t0 = time.time()
            raw = json.dumps(body, ensure_ascii=False)
            st, h, data = send(self.port, "POST", path, raw.encode(), timeout=60)
            what = f"{path} {raw[:100]}... ({len(raw)} bytes)"
            want = 413 if len(raw.encode()) > (1 << 20) else None
            check_answer(fails, what, path, st, h, data, want=want)  # a hang: status 0
            if os.environ.get("SW_HOSTILE_TIMES"):
                print(f"  {time.time() - t0:6.2f} s  {st}  {what[:90]}")
        fails.check()
        self.alive("megabyte strings")

    # -- HTTP ---------------------------------------------------------------------------

    def test_methods_and_content_types(self):
        fails = Failures()
        for path in POST_PATHS:
            for m in ("GET", "PUT", "DELETE", "PATCH"):
                st, h, data = send(self.port, m, path, None)
                check_answer(fails, f"{m} {path}", path, st, h, data, want=405)
                if st == 405 and h.get("allow") != "POST, OPTIONS":
                    fails.add(f"{m} {path}", f"Allow: {h.get('allow')!r}")
            for ct in ("multipart/form-data; boundary=x", "application/xml", "image/png",
                       "text/html", ";", "application/json\x7f", "x" * 5000):
                st, h, data = send(self.port, "POST", path, json.dumps(BASE[path]),
                                   {"Content-Type": ct})
                check_answer(fails, f"POST {path} as {ct[:30]!r}", path, st, h, data,
                             ok=(200,) if ct == ";" else ())
            for ct in ("application/json; charset=utf-8", "APPLICATION/JSON", "text/plain",
                       "application/vnd.api+json"):
                st, h, data = send(self.port, "POST", path, json.dumps(BASE[path]),
                                   {"Content-Type": ct})
                check_answer(fails, f"POST {path} as {ct}", path, st, h, data, want=200)
        for path in GET_PATHS:
            for m in ("POST", "PUT", "DELETE"):
                st, h, data = send(self.port, m, path, "{}")
                if path == "/health" or path == "/":
                    if st != 405:
                        fails.add(f"{m} {path}", f"status {st}")
                    continue
                check_answer(fails, f"{m} {path}", path, st, h, data, want=405)
            st, h, data = send(self.port, "HEAD", path, None)
            if st != 200 or data:
                fails.add(f"HEAD {path}", f"status {st}, {len(data)} body bytes")
        fails.check()
        self.alive("methods and content types")

    def test_get_garbage(self):
        fails = Failures()
        paths = ["/v1/usage?bucket=week", "/v1/usage?bucket=", "/v1/usage?n=3",
                 "/v1/usage?bucket=minute&n=0", "/v1/usage?bucket=minute&n=-1",
                 "/v1/usage?bucket=minute&n=abc", "/v1/usage?bucket=minute&n=99999999999999",
                 "/v1/usage?bucket=minute&n=1e3", "/v1/usage?bucket=minute&n=",
                 "/v1/usage?bucket=day&n=1&bucket=hour", "/v1/usage?bucket=%00",
                 "/v1/models/%00", "/v1/models/" + "x" * 4000, "/v1/models/%ff%fe",
                 "/v1/models/a/b", "/web/..%2f..%2fetc%2fpasswd", "/web/../../etc/passwd",
                 "/web/", "/web/nope.js", "/web/" + "x" * 4000, "/metrics?x=" + "y" * 4000,
                 "/v1/models?limit=-1", "/%00", "//", "/v1//models", "/v1/chat/completions/x"]
        for p in paths:
            st, h, data = send(self.port, "GET", p, None)
            if st == 0 or st >= 500:
                fails.add(f"GET {p[:80]}", f"status {st}: {data[:200]!r}")
            elif st >= 400:
                try:
                    bad = error_shape("/v1/models", json.loads(data))
                except ValueError:
                    bad = f"body is not JSON: {data[:200]!r}"
                if bad:
                    fails.add(f"GET {p[:80]}", bad)
            elif p.startswith("/web/") and b"root:" in data:
                fails.add(f"GET {p[:80]}", "served a file outside the page")
        fails.check()
        self.alive("GET garbage")

    def raw(self, payload, read=True, timeout=20, half_close=False):
        """Send raw bytes on a fresh connection; the answer (b'' when none).
        half_close: then end the sending side, as a client that gives up."""
        if not read:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            try:
                s.sendall(payload)
            except OSError:
                pass
            s.close()
            return b""
        return raw_exchange(self.port, payload, half_close, timeout,
                            lambda d: b"\r\n\r\n" in d and self._complete(d))

    @staticmethod
    def _complete(data):
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                return len(body) >= int(line.split(b":")[1])
        return body.endswith(b"0\r\n\r\n") or body.endswith(b"data: [DONE]\n\n")

    def test_chunked_bodies(self):
        fails = Failures()
        for path in POST_PATHS:
            body = json.dumps(BASE[path]).encode()
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                              for i in range(0, len(body), 7)) + b"0\r\n\r\n"
            head = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for name, payload, ok in (
                    ("valid", head + chunks, (200,)),
                    ("bad size", head + b"zz\r\n{}\r\n0\r\n\r\n", (400,)),
                    ("size past data", head + b"ffff\r\n{}\r\n0\r\n\r\n", (0, 400)),
                    ("negative size", head + b"-5\r\n{}\r\n0\r\n\r\n", (400,)),
                    ("huge size", head + b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n", (400, 413)),
                    ("no terminator", head + b"2\r\n{}", (0,)),
                    ("over max-body", head + b"".join(b"10000\r\n" + b" " * 0x10000 + b"\r\n"
                                                      for _ in range(20)) + b"0\r\n\r\n",
                     (413,))):
                # a body cut short ends with the client's half-close: the server
                # must then close the connection (or answer) at once, not wait
                data = self.raw(payload, half_close=0 in ok)
                st = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
                if st not in ok:
                    fails.add(f"chunked {name} {path}", f"status {st}: {data[:300]!r}")
                # (malformed chunk framing is answered by libmicrohttpd itself, before
                # any handler: its own 400 page, not JSON)
                elif st >= 400 and name == "over max-body":
                    _, _, b = data.partition(b"\r\n\r\n")
                    if b"error" not in b:
                        fails.add(f"chunked {name} {path}", f"no error body: {data[:300]!r}")
        fails.check()
        self.alive("chunked bodies")

    def test_disconnects(self):
        """Clients that leave mid-request (headers only, half a body) and
        mid-stream (chat, completions, messages) or mid-answer: every
        generation they started is cancelled and nothing stays running."""
        body = json.dumps(BASE[CHAT]).encode()
        for path in POST_PATHS:
            head = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nContent-Length: 1000\r\n\r\n")
            self.raw(head, read=False)
            self.raw(head + body[:10], read=False)
            self.raw(head[:30], read=False)
        # a server of its own at 10 ms per token, so that no stream ends before
        # its client leaves
        srv = Server(self.model, "--ctx", "192", env={"SW_SERVER_TEST_TOKEN_DELAY": "0.01"})
        try:
            p = srv.port
            before = cancelled_count(p)
            long = {"max_tokens": 120, "ignore_eos": True, "stream": True, "temperature": 1}
            left = 0
            for path, extra in ((CHAT, {"messages": USER}), (CMPL, {"prompt": "Once"}),
                                (MSGS, {"messages": USER}), (CMPL, {"prompt": "Once",
                                                                    "stream": False})):
                b = json.dumps(dict(long, **extra)).encode()
                s = socket.create_connection(("127.0.0.1", p), timeout=20)
                s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
                if extra.get("stream", True):
                    got = b""
                    while b"\r\n\r\n" not in got or got.count(b"data: ") < 3:
                        chunk = s.recv(4096)
                        assert chunk, f"{path}: the stream ended early: {got[-300:]!r}"
                        got += chunk
                else:
                    deadline = time.time() + 10
                    while time.time() < deadline and metric(p, "spillway_requests_running") < 1:
                        time.sleep(0.01)
                s.close()
                left += 1
            deadline = time.time() + 30
            while time.time() < deadline and (metric(p, "spillway_requests_running") != 0 or
                                              cancelled_count(p) < before + left):
                time.sleep(0.05)
            assert metric(p, "spillway_requests_running") == 0, "still running"
            assert cancelled_count(p) >= before + left, (cancelled_count(p), before, left)
        finally:
            assert srv.stop() == 0
        self.alive("disconnects")

    def test_headers(self):
        """Odd headers on a normal request: served or refused, never a crash."""
        fails = Failures()
        body = json.dumps(BASE[CHAT])
        for name, hdrs in (
                ("empty bearer", {"Authorization": "Bearer "}),
                ("long bearer", {"Authorization": "Bearer " + "k" * 8000}),
                ("x-api-key empty", {"x-api-key": ""}),
                ("private garbage", {"X-Spillway-Private": "maybe"}),
                ("private long", {"X-Spillway-Private": "1" * 5000}),
                ("origin garbage", {"Origin": "http://localhost:" + "9" * 3000}),
                ("origin no scheme", {"Origin": "localhost"}),
                ("anthropic-version", {"anthropic-version": "\x01"}),
                ("expect", {"Expect": "100-continue"}),
                ("expect garbage", {"Expect": "lots"})):
            st, h, data = send(self.port, "POST", CHAT, body, hdrs)
            check_answer(fails, f"header {name}", CHAT, st, h, data)
        for name, hdrs in (("preflight bad origin", {"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "POST"}),
                           ("preflight long headers", {
                               "Origin": "http://localhost",
                               "Access-Control-Request-Headers": "x" * 5000})):
            st, h, data = send(self.port, "OPTIONS", CHAT, None, hdrs)
            if st not in (204, 403):
                fails.add(name, f"status {st}")
        fails.check()
        self.alive("odd headers")


# -- the command-line tools ----------------------------------------------------------


def bin_path(name):
    return os.path.join(os.path.dirname(server_bin()), name)


def make_bad_files(model):
    d = os.path.join(tmp_dir(), f"hostile-{os.getpid()}")
    os.makedirs(d, exist_ok=True)
    files = {"dir": d, "missing": os.path.join(d, "missing.gguf")}

    def put(name, data):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        files[name] = p

    with open(model, "rb") as f:
        head = f.read(4096)
    put("empty", b"")
    put("text", b"hello world\n" * 100)
    put("magic", b"GGUF")
    put("truncated", head)
    put("badver", head[:4] + b"\xff\xff\xff\x7f" + head[8:])
    put("huge-counts", head[:8] + b"\xff" * 16 + head[24:])
    put("jsonl-garbage", b'{"prompt": "x", "local_ok": true}\nnot json\n{"a"\n')
    put("jsonl-wrong", b'{"prompt": 5, "local_ok": "yes"}\n[1, 2]\n{"messages": "x"}\n')
    put("jsonl-empty-lines", b"\n\n\n")
    put("router-garbage", b"\x00\x01 not a router")
    put("messages-garbage", b'[{"role": 5}]')
    put("messages-notjson", b"[{")
    put("template-bad", b"{% for x in %}")
    put("kl-garbage", b"\x00" * 100)
    return files


def run_tool(fails, argv, timeout=60, want_rc=None, stdin=None):
    """Run a tool expected to fail: exit non-zero by itself (not a signal),
    say something on stderr, no sanitizer report, in time."""
    what = " ".join(os.path.basename(a) if a.startswith("/") else a[:40] for a in argv)
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, input=stdin or b"",
                           env=dict(os.environ, SW_LOG="warn"))
    except subprocess.TimeoutExpired:
        fails.add(what, f"no exit within {timeout} s")
        return
    err = r.stderr.decode(errors="replace")
    if r.returncode < 0 or r.returncode >= 128:
        fails.add(what, f"killed/crashed (rc {r.returncode}): {err[-600:]}")
    elif r.returncode == 0:
        fails.add(what, f"exit 0 on bad input: {err[-300:]}")
    elif want_rc is not None and r.returncode != want_rc:
        fails.add(what, f"exit {r.returncode}, want {want_rc}: {err[-300:]}")
    elif not err.strip():
        fails.add(what, "no message on stderr")
    for sig in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        if sig in err:
            fails.add(what, f"sanitizer: {err[-1500:]}")


def test_tools(model):
    fails = Failures()
    files = make_bad_files(model)
    bad_models = ["missing", "dir", "empty", "text", "magic", "truncated", "badver", "huge-counts"]
    out = os.path.join(files["dir"], "out")

    gen = bin_path("spillway-generate")
    if os.access(gen, os.X_OK):
        for args in (["--bogus"], ["-m"], [], ["-p", "x"], ["-m", model, "-n", "abc"],
                     ["-m", model, "-n", "-5"], ["-m", model, "-n", "99999999999999"],
                     ["-m", model, "--temp", "nan"], ["-m", model, "--temp", "-1"],
                     ["-m", model, "--top-p", "2"], ["-m", model, "--threads", "0"],
                     ["-m", model, "--ctx", "-1"], ["-m", model, "--ctx", "x"],
                     ["-m", model, "--backend", "bogus"], ["-m", model, "--seed", "x"],
                     ["-m", model, "-l", "abc"], ["-m", model, "-l", "5+1000"],
                     ["-m", model, "-l", "99999999+1"], ["-m", model, "--top-logprobs", "999"],
                     ["-m", model, "--chat-template", "nope"],
                     ["-m", model, "--messages", files["missing"]],
                     ["-m", model, "--messages", files["messages-garbage"]],
                     ["-m", model, "--messages", files["messages-notjson"]],
                     ["-m", model, "--messages", files["dir"]],
                     ["-m", model, "--chat-template-file", files["template-bad"], "--chat"],
                     ["-m", model, "--chat-template-file", files["missing"], "--chat"],
                     ["--hf", "not-a-repo-spec"], ["-m", model, "--device", "-5"]):
            run_tool(fails, [gen, *args, *(["-p", "Once"] if "-p" not in args and args and
                                           args[0] == "-m" else [])])
        for name in bad_models:
            run_tool(fails, [gen, "-m", files[name], "-p", "x", "-n", "1"])
    else:
        print(f"SKIP part: no {gen}")

    ppl = bin_path("spillway-perplexity")
    if os.access(ppl, os.X_OK):
        for args in (["--bogus"], [], ["-m", model], ["-m", model, "-f", files["missing"]],
                     ["-m", model, "-f", files["empty"]], ["-m", model, "-f", files["dir"]],
                     ["-m", model, "-f", files["text"], "-c", "0"],
                     ["-m", model, "-f", files["text"], "-c", "-5"],
                     ["-m", model, "-f", files["text"], "-c", "abc"],
                     ["-m", model, "-f", files["text"], "-c", "100000000"],
                     ["-m", model, "-f", files["text"], "--chunks", "-1"],
                     ["-m", model, "-f", files["text"], "--chunks", "x"],
                     ["-m", model, "-f", files["text"], "--threads", "-1"],
                     ["-m", model, "-f", files["text"], "--backend", "nope"],
                     ["-m", model, "-f", files["text"], "--kl-divergence-base", files["missing"],
                      "--kl-divergence"],
                     ["-m", model, "-f", files["text"], "--kl-divergence-base", files["kl-garbage"],
                      "--kl-divergence"],
                     ["-m", model, "-f", files["text"], "--kl-divergence-base", files["text"],
                      "--kl-divergence"],
                     ["-m", model, "-f", files["text"], "--kl-divergence"]):
            run_tool(fails, [ppl, *args])
        for name in bad_models:
            run_tool(fails, [ppl, "-m", files[name], "-f", files["text"]])
    else:
        print(f"SKIP part: no {ppl}")

    rt = bin_path("spillway-router")
    if os.access(rt, os.X_OK):
        for cmd in ("label", "train", "eval"):
            o = ["--out", out] if cmd != "eval" else []
            for args in (["--bogus"], [], ["-m", model], ["-m", model, "--data", files["missing"], *o],
                         ["-m", model, "--data", files["dir"], *o],
                         ["-m", model, "--data", files["empty"], *o],
                         ["-m", model, "--data", files["jsonl-garbage"], *o],
                         ["-m", model, "--data", files["jsonl-wrong"], *o],
                         ["-m", model, "--data", files["jsonl-empty-lines"], *o],
                         ["-m", model, "--data", files["jsonl-garbage"], "--threads", "-3", *o],
                         ["-m", files["truncated"], "--data", files["jsonl-garbage"], *o],
                         ["-m", files["missing"], "--data", files["jsonl-garbage"], *o]):
                run_tool(fails, [rt, cmd, *args])
        run_tool(fails, [rt, "eval", "-m", model, "--data", files["jsonl-garbage"],
                         "--router", files["router-garbage"]])
        run_tool(fails, [rt, "eval", "-m", model, "--data", files["jsonl-garbage"],
                         "--probe-tokens", "-1"])
        run_tool(fails, [rt, "bogus"])
    else:
        print(f"SKIP part: no {rt}")

    bench = bin_path("spillway-bench")
    if os.access(bench, os.X_OK):
        for args in (["bogus"], [], ["model", "--bogus"], ["model", "-m", files["missing"]],
                     ["model", "-m", files["truncated"]], ["model", "-m", model, "-t", "-1"],
                     ["model", "-m", model, "-B", "bogus"], ["kernels", "--type", "bogus"],
                     ["kernels", "--reps", "-1"], ["kernels", "--ctx", "abc"],
                     ["kernels", "--backend", "bogus"], ["kernels", "--bogus"],
                     ["engine", "--bogus"], ["engine", "-m", files["missing"]],
                     ["engine", "-m", files["text"]], ["serve", "--bogus"],
                     ["route", "--bogus"], ["grammar", "--bogus"],
                     ["grammar", "-m", files["missing"]]):
            run_tool(fails, [bench, *args])
    else:
        print(f"SKIP part: no {bench}")

    srv = server_bin()
    keys_missing = files["missing"]
    for args in (["-m", model, "--ctx", "-1"], ["-m", model, "--ctx", "abc"],
                 ["-m", model, "--parallel", "0"], ["-m", model, "--max-queue", "-1"],
                 ["-m", model, "--batch-tokens", "0"], ["-m", model, "--max-body", "lots"],
                 ["-m", model, "--max-body", "-1"], ["-m", model, "--kv-memory", "1Q"],
                 ["-m", model, "--timeout", "-5"], ["-m", model, "--timeout", "nan"],
                 ["-m", model, "--threads", "-2"], ["-m", model, "--port", "-1"],
                 ["-m", model, "--host", "not an address", "--port", "0"],
                 ["-m", model, "--api-key-file", keys_missing],
                 ["-m", model, "--api-key", ""], ["-m", model, "--cors-origin", "nope"],
                 ["-m", model, "--route-config", keys_missing],
                 ["-m", model, "--route-config", files["text"]],
                 ["-m", model, "--route-config", files["jsonl-wrong"]],
                 ["-m", model, "--chat-template-file", files["template-bad"]],
                 ["-m", model, "--chat-template-file", files["dir"]],
                 ["-m", model, "--cloud-provider", "nope"], ["-m", model, "--cloud-url", "x"],
                 ["-m", model, "--backend", "nope"], ["-m", model, "--device", "x"],
                 ["-m", model, "--embedding-model", files["truncated"], "--port", "0"],
                 ["-m", model, "--embedding-model", files["missing"], "--port", "0"],
                 ["--hf", "nonsense"], ["-m", files["truncated"], "--port", "0"],
                 ["-m", files["empty"], "--port", "0"], ["-m", files["dir"], "--port", "0"]):
        run_tool(fails, [srv, *args])

    small = {
        "spillway-tokenize": (["-m", files["missing"], "-p", "x"], ["-m", files["truncated"], "-p", "x"],
                              ["-m", model, "-f", files["missing"]], ["-m", model, "-f", files["dir"]],
                              ["-m", model], ["--bogus"]),
        "spillway-template": (["--template", files["template-bad"], "--messages", "[]"],
                              ["--template", files["missing"], "--messages", "[]"],
                              ["--model", model, "--messages", "[{"],
                              ["--model", model, "--messages", "5"],
                              ["--model", model, "--messages", "[]", "--kwargs", "[1]"],
                              ["--model", files["truncated"], "--messages", "[]"],
                              ["--chat-template", "nope", "--messages", "[]"],
                              ["--model", model, "--messages", "[]", "--max-steps", "-1"],
                              ["--model", model, "--messages", "@" + files["missing"]],
                              ["--bogus"]),
        "spillway-grammar": (["--schema", files["missing"]], ["--schema", files["text"]],
                             ["--schema", files["dir"]], ["--gbnf", files["text"]],
                             ["--gbnf", files["empty"]], ["--schema", files["jsonl-wrong"]],
                             ["--gbnf", files["template-bad"], "--sample", "-1"], ["--bogus"]),
        "spillway-gguf": ([files[n]] for n in bad_models),
        "spillway-quantize": ([files["truncated"], out, "q8_0"], [model, out, "q9_9"],
                              [files["missing"], out, "q8_0"], [model, files["dir"], "q8_0"],
                              ["--threads", "-1", model, out, "q8_0"], []),
    }
    for tool, cases in small.items():
        b = bin_path(tool)
        if not os.access(b, os.X_OK):
            print(f"SKIP part: no {b}")
            continue
        for args in cases:
            run_tool(fails, [b, *args])
    fails.check()


def main():
    model, _ = find_model()
    print(f"model: {model}; server: {server_bin()}")
    run_suite(Suite(model), [("test_tools", lambda: test_tools(model))])


if __name__ == "__main__":
    main()
