"""spillway-server end to end: starts the server on a loopback port with
stories260K (or a synthetic model) and drives it with the official openai
client and raw HTTP: chat and completions, streaming and not, usage, logprobs,
stop strings, determinism, 16 concurrent streams, auth, a long list of
malformed and hostile requests (each must get the right status and an
OpenAI-shaped error, and the server must keep serving), client disconnects
(the engine must cancel), 429, 503 while loading, and a clean SIGTERM.

Environment: SW_BIN_DIR (or SW_SERVER_BIN for another build, e.g. ASan),
SW_SHARED_DIR, SW_TMP_DIR. The helpers above the tests are imported by
test_server_hf.py too."""
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
import urllib.request

SKIP = 77


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def server_bin():
    """SW_SERVER_BIN (e.g. an ASan build) wins over $SW_BIN_DIR."""
    b = os.environ.get("SW_SERVER_BIN")
    if not b:
        bin_dir = os.environ.get("SW_BIN_DIR")
        if not bin_dir:
            here = os.path.dirname(os.path.abspath(__file__))
            bin_dir = os.path.join(here, "..", "..", "build", "bin")
        b = os.path.join(bin_dir, "spillway-server")
    if not os.access(b, os.X_OK):
        skip(f"no spillway-server binary at {b} (build it, or set SW_BIN_DIR / SW_SERVER_BIN)")
    return b


def tmp_dir():
    d = os.environ.get("SW_TMP_DIR") or "/tmp"
    os.makedirs(d, exist_ok=True)
    return d


def find_model():
    """(path, is_stories): stories260K when present, else a synthetic model."""
    shared = os.environ.get("SW_SHARED_DIR", "/work/shared")
    p = os.path.join(shared, "models", "stories260K.gguf")
    if os.path.exists(p):
        return p, True
    mk = os.path.join(os.path.dirname(server_bin()), "spillway-mkmodel")
    out = os.path.join(tmp_dir(), "server-test-tiny.gguf")
    if os.access(mk, os.X_OK):
        args = [mk, "-o", out, "--shape", "tiny", "--type", "q8_0"]
        vocab = os.path.join(shared, "models", "vocab", "ggml-vocab-phi-3.gguf")
        if os.path.exists(vocab):
            args += ["--vocab-from", vocab]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(out):
            return out, False
        print(f"spillway-mkmodel failed: {r.stderr.strip()}")
    skip("no test model: stories260K.gguf is absent and spillway-mkmodel could not make one")


class Server:
    """A spillway-server on 127.0.0.1 with --port 0; always stopped by stop()."""

    def __init__(self, model, *extra, env=None, wait_ready=True, timeout=60):
        self.args = [server_bin(), *(["-m", model] if model else []), "--port", "0",
                     "--host", "127.0.0.1", *extra]
        e = dict(os.environ)
        e.setdefault("SW_LOG", "warn")
        if env:
            e.update(env)
        self.log_path = os.path.join(tmp_dir(), f"server-{os.getpid()}-{time.time_ns()}.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log,
                                     env=e, text=True)
        self.port = None
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
                if r:
                    line = self.proc.stdout.readline()
                    if not line:
                        break
                    if "listening on http://" in line:
                        self.port = int(line.strip().rsplit(":", 1)[1])
                        break
                if self.proc.poll() is not None:
                    break
            if self.port is None:
                raise RuntimeError(f"server did not start: {self.logs()}")
            self.base = f"http://127.0.0.1:{self.port}"
            if wait_ready:
                self.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, deadline=None):
        deadline = deadline or time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.logs()}")
            try:
                st, _, _ = request(self.port, "GET", "/health")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server not ready in time")

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop the server; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode

    def alive(self):
        return self.proc.poll() is None


def request(port, method, path, body=None, headers=None, timeout=60):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def raw_exchange(port, payload, half_close=True, timeout=10, done=None):
    """Send raw bytes on a fresh connection, then (half_close) end the
    sending side; returns what comes back until the server closes, the
    timeout, or done(data) says the answer is whole."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(payload)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before we finish
        data = b""
        while not (done and done(data)):
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def post_json(port, path, obj, headers=None, timeout=60):
    st, h, data = request(port, "POST", path, obj, headers, timeout)
    try:
        return st, json.loads(data)
    except ValueError:
        raise AssertionError(f"{path}: status {st}, body is not JSON: {data[:300]!r}")


def sse_events(port, path, obj, headers=None, timeout=60):
    """POST a streaming request; returns (status, [decoded event payloads], raw)."""
    st, h, data = request(port, "POST", path, obj, headers, timeout)
    text = data.decode()
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), f"bad SSE block {block[:200]!r}"
        payload = block[len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return st, events, text


def assert_error(status, body, want_status, param=None, code=None, what=""):
    assert status == want_status, f"{what}: status {status}, want {want_status}: {body}"
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"{what}: {body}"
    e = body["error"]
    for k in ("message", "type", "param", "code"):
        assert k in e, f"{what}: error has no '{k}': {e}"
    assert isinstance(e["message"], str) and e["message"], f"{what}: empty message"
    assert isinstance(e["type"], str) and e["type"], f"{what}: empty type"
    if param is not None:
        assert e["param"] == param, f"{what}: param {e['param']!r}, want {param!r}"
    if code is not None:
        assert e["code"] == code, f"{what}: code {e['code']!r}, want {code!r}"


def metric(port, name, headers=None):
    """Value of an unlabelled metric from /metrics (None if absent)."""
    st, _, data = request(port, "GET", "/metrics", headers=headers)
    assert st == 200, st
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def run(tests):
    """Run (name, fn) pairs; print a summary; exit 1 on any failure."""
    failed = []
    for name, fn in tests:
        t0 = time.time()
        try:
            fn()
            print(f"ok   {name} ({time.time() - t0:.2f} s)", flush=True)
        except Exception:
            failed.append(name)
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"{len(tests) - len(failed)}/{len(tests)} passed")
    if failed:
        print("failed: " + ", ".join(failed))
        sys.exit(1)


def run_suite(suite, more, cleanup=None):
    """Run suite's test_ methods (sorted), then the (name, fn) pairs in more,
    only those whose name contains $SW_TEST_ONLY when set; then stop the
    suite's server (suite.srv) and call cleanup. Exit 1 when the server did
    not exit cleanly."""
    try:
        tests = [(n, getattr(suite, n)) for n in sorted(dir(suite)) if n.startswith("test_")]
        tests += more
        only = os.environ.get("SW_TEST_ONLY")
        run([t for t in tests if not only or only in t[0]])
    finally:
        rc = suite.srv.stop()
        if cleanup:
            cleanup()
        if rc != 0:
            print(f"server exited with {rc}:\n{suite.srv.logs()}")
            sys.exit(1)


# ---------------------------------------------------------------------------
# the tests

import socket  # noqa: E402
import threading  # noqa: E402

LILY = ", there was a little girl named Lily"


def client(srv, key="none"):
    import openai
    return openai.OpenAI(base_url=srv.base + "/v1", api_key=key, max_retries=0, timeout=120)


class Suite:
    def __init__(self, model, is_stories):
        self.model = model
        self.stories = is_stories
        self.srv = Server(model)
        self.port = self.srv.port
        self.model_id = os.path.basename(model)[:-5]

    # -- basic endpoints --

    def test_health_models(self):
        st, _, body = request(self.port, "GET", "/health")
        assert st == 200 and json.loads(body) == {"status": "ok"}, (st, body)
        st, models = post_json_get(self.port, "/v1/models")
        assert st == 200 and models["object"] == "list", models
        assert models["data"][0]["id"] == self.model_id and models["data"][0]["object"] == "model"
        ids = [m.id for m in client(self.srv).models.list()]
        assert ids == [self.model_id], ids
        m = client(self.srv).models.retrieve(self.model_id)
        assert m.id == self.model_id
        # any name is served (on the automatic route); 404s are --strict-model-names'
        st, _, data = request(self.port, "GET", "/v1/models/nope")
        assert st == 200 and json.loads(data)["meta"]["route"] == "auto", data

    def test_completion_greedy(self):
        c = client(self.srv)
        r1 = c.completions.create(model=self.model_id, prompt="Once upon a time", max_tokens=24,
                                  temperature=0)
        r2 = c.completions.create(model=self.model_id, prompt="Once upon a time", max_tokens=24,
                                  temperature=0)
        assert r1.choices[0].text == r2.choices[0].text, (r1, r2)
        assert r1.id.startswith("cmpl-") and r1.object == "text_completion"
        assert r1.model == self.model_id and r1.system_fingerprint
        assert r1.choices[0].finish_reason in ("length", "stop")
        assert r1.usage.prompt_tokens > 0 and r1.usage.completion_tokens > 0
        assert r1.usage.total_tokens == r1.usage.prompt_tokens + r1.usage.completion_tokens
        if self.stories:
            assert r1.choices[0].text.startswith(LILY), r1.choices[0].text
            assert r1.choices[0].finish_reason == "length"
            assert r1.usage.completion_tokens == 24
        # the file name (with and without .gguf) also names the model
        for name in (os.path.basename(self.model), self.model_id):
            st, body = post_json(self.port, "/v1/completions",
                                 {"model": name, "prompt": "Once", "max_tokens": 2})
            assert st == 200, body

    def test_chat(self):
        c = client(self.srv)
        r = c.chat.completions.create(model=self.model_id, max_tokens=16, temperature=0,
                                      messages=[{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "Tell a story."}])
        assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
        ch = r.choices[0]
        assert ch.index == 0 and ch.message.role == "assistant"
        assert isinstance(ch.message.content, str)
        assert ch.finish_reason in ("stop", "length")
        assert r.usage.completion_tokens <= 16 and r.usage.prompt_tokens > 5
        # greedy twice: identical
        r2 = c.chat.completions.create(model=self.model_id, max_tokens=16, temperature=0,
                                       messages=[{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "Tell a story."}])
        assert r2.choices[0].message.content == ch.message.content
        # content as a list of text parts; the developer role
        r3 = c.chat.completions.create(
            model=self.model_id, max_completion_tokens=4,
            messages=[{"role": "developer", "content": "x"},
                      {"role": "user", "content": [{"type": "text", "text": "Tell"},
                                                   {"type": "text", "text": "a story."}]}])
        assert r3.usage.completion_tokens <= 4
        # an empty list of parts is the empty string (fuzz_oai found it unterminated)
        empty = [c.chat.completions.create(
            model=self.model_id, max_tokens=2, temperature=0,
            messages=[{"role": "system", "content": "s"}, {"role": "user", "content": content}])
            for content in ([], "")]
        assert empty[0].usage.prompt_tokens == empty[1].usage.prompt_tokens
        assert empty[0].choices[0].message.content == empty[1].choices[0].message.content

    def test_stream_chat_matches(self):
        c = client(self.srv)
        msgs = [{"role": "user", "content": "Once upon a time"}]
        whole = c.chat.completions.create(model=self.model_id, messages=msgs, max_tokens=20,
                                          temperature=0)
        chunks = list(c.chat.completions.create(model=self.model_id, messages=msgs,
                                                max_tokens=20, temperature=0, stream=True,
                                                stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == whole.choices[0].message.content, (text, whole.choices[0].message.content)
        fin = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        assert len(fin) == 1 and fin[0].choices[0].finish_reason == whole.choices[0].finish_reason
        last = chunks[-1]
        assert last.choices == [] and last.usage is not None, last
        assert last.usage.completion_tokens == whole.usage.completion_tokens
        assert last.usage.prompt_tokens == whole.usage.prompt_tokens
        assert all(ch.usage is None for ch in chunks[:-1])
        assert len({ch.id for ch in chunks}) == 1

    def test_stream_completion_raw(self):
        st, events, raw = sse_events(self.port, "/v1/completions",
                                     {"prompt": "Once upon a time", "max_tokens": 12,
                                      "temperature": 0, "stream": True})
        assert st == 200, raw
        assert events[-1] == "[DONE]" and raw.endswith("data: [DONE]\n\n"), raw[-200:]
        body = events[:-1]
        assert all(e["object"] == "text_completion" for e in body)
        text = "".join(e["choices"][0]["text"] for e in body)
        assert body[-1]["choices"][0]["finish_reason"] == "length"
        st, whole = post_json(self.port, "/v1/completions",
                              {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0})
        assert text == whole["choices"][0]["text"], (text, whole)
        # without include_usage: no usage key in chunks
        assert all("usage" not in e for e in body)
        # streaming headers
        _, h, _ = request(self.port, "POST", "/v1/completions",
                          {"prompt": "a", "max_tokens": 1, "stream": True})
        assert h["content-type"].startswith("text/event-stream"), h

    def test_logprobs_chat(self):
        c = client(self.srv)
        r = c.chat.completions.create(model=self.model_id, max_tokens=8, temperature=0,
                                      logprobs=True, top_logprobs=3,
                                      messages=[{"role": "user", "content": "Once upon a time"}])
        lp = r.choices[0].logprobs.content
        assert 1 <= len(lp) <= r.usage.completion_tokens, (len(lp), r.usage)
        for e in lp:
            assert isinstance(e.token, str) and e.logprob <= 0 and isinstance(e.bytes, list)
            assert len(e.top_logprobs) == 3
            tops = [t.logprob for t in e.top_logprobs]
            assert tops == sorted(tops, reverse=True)
            # greedy: the chosen token is the most likely one
            assert abs(e.logprob - tops[0]) < 1e-4, (e.logprob, tops)
            raw = bytes(e.bytes)
            try:
                assert raw.decode("utf-8") == e.token, (raw, e.token)
            except UnicodeDecodeError:
                assert "\ufffd" in e.token, (raw, e.token)  # half a character
        # streaming logprobs arrive per chunk
        chunks = list(c.chat.completions.create(
            model=self.model_id, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2,
            stream=True, messages=[{"role": "user", "content": "Once upon a time"}]))
        n = sum(len(ch.choices[0].logprobs.content) for ch in chunks
                if ch.choices and ch.choices[0].logprobs)
        assert n >= 1

    def test_logprobs_completion(self):
        st, r = post_json(self.port, "/v1/completions",
                          {"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0,
                           "logprobs": 2})
        assert st == 200, r
        lp = r["choices"][0]["logprobs"]
        n = len(lp["tokens"])
        assert n == r["usage"]["completion_tokens"] and n > 0, (lp, r["usage"])
        assert len(lp["token_logprobs"]) == n and len(lp["top_logprobs"]) == n
        assert len(lp["text_offset"]) == n and lp["text_offset"] == sorted(lp["text_offset"])
        assert all(len(d) <= 2 and len(d) >= 1 for d in lp["top_logprobs"])
        if self.stories:
            assert "".join(lp["tokens"]).replace("\u2581", " ").strip().startswith(",")

    def test_logit_bias(self):
        st, t = post_json(self.port, "/tokenize", {"content": "Once upon a time"})
        assert st == 200 and len(set(t["tokens"])) >= 2, t
        x, y = t["tokens"][0], next(i for i in t["tokens"] if i != t["tokens"][0])

        def run(bias, n=3):
            st, r = post_json(self.port, "/v1/completions",
                              {"prompt": "Once upon a time", "max_tokens": n, "temperature": 0,
                               "logprobs": 1, "logit_bias": bias})
            assert st == 200, r
            return r["choices"][0]

        def piece(i):  # the token's text (/detokenize strips a leading space)
            st, d = post_json(self.port, "/detokenize", {"tokens": [i]})
            assert st == 200, d
            return d["content"].strip()

        def first(r):
            return r["logprobs"]["tokens"][0].strip()

        # +100 makes a token win every step; the reported logprobs stay those of
        # the model's own distribution (the bias is not in them)
        forced = run({str(x): 100})
        toks = forced["logprobs"]["tokens"]
        assert len(toks) == 3 and len(set(toks)) == 1 and first(forced) == piece(x), forced
        assert all(lp < -1e-3 for lp in forced["logprobs"]["token_logprobs"]), forced
        # the bias is added to the logit: with the model's own log-probabilities
        # lx, ly of x and y at the first step (read while forcing each), x wins
        # when its bias exceeds y's by more than ly - lx, y otherwise (0.5 margin)
        lx = forced["logprobs"]["token_logprobs"][0]
        ly = run({str(y): 100}, 1)["logprobs"]["token_logprobs"][0]
        gap = ly - lx
        assert abs(gap) < 40, (lx, ly)
        for d, want in ((gap + 0.5, x), (gap - 0.5, y)):
            r = run({str(x): 50, str(y): round(50 - d, 4)}, 1)
            assert first(r) == piece(want), (lx, ly, d, r)
        # an empty object is no bias at all
        st, plain = post_json(self.port, "/v1/completions",
                              {"prompt": "Once upon a time", "max_tokens": 3, "temperature": 0})
        assert run({}, 3)["text"] == plain["choices"][0]["text"]

    def test_json_mode(self):
        # every answer is a prefix of a JSON object, and a stop is a whole one
        for i, path in enumerate(("/v1/chat/completions", "/v1/completions")):
            body = {"max_tokens": 48, "temperature": 0.8, "seed": 3 + i,
                    "response_format": {"type": "json_object"}}
            if "chat" in path:
                body["messages"] = [{"role": "user", "content": "Reply in JSON."}]
            else:
                body["prompt"] = "Once upon a time"
            st, r = post_json(self.port, path, body)
            assert st == 200, r
            ch = r["choices"][0]
            text = ch["message"]["content"] if "chat" in path else ch["text"]
            assert text.lstrip().startswith("{"), text
            if ch["finish_reason"] == "stop":
                assert isinstance(json.loads(text), dict), text
            else:
                assert ch["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 48
        # with '}' pushed up, the object closes at once and the answer stops there
        st, t = post_json(self.port, "/tokenize", {"content": "{}"})
        ids = [i for i in t["tokens"]]
        pieces = {}
        for i in ids:
            st, d = post_json(self.port, "/detokenize", {"tokens": [i]})
            pieces[d["content"].strip()] = i
        if "{" in pieces and "}" in pieces:
            st, r = post_json(self.port, "/v1/completions",
                              {"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0,
                               "response_format": {"type": "json_object"},
                               "logit_bias": {str(pieces["{"]): 50, str(pieces["}"]): 100}})
            assert st == 200, r
            assert r["choices"][0]["text"].strip() == "{}", r
            assert r["choices"][0]["finish_reason"] == "stop", r
        # streaming gives the same text as the whole answer
        body = {"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}
        fmt = {"response_format": {"type": "json_object"}}
        st, whole = post_json(self.port, "/v1/completions", dict(body, **fmt))
        c = client(self.srv)
        chunks = list(c.completions.create(model=self.model_id, stream=True, extra_body=fmt,
                                           **body))
        assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == \
            whole["choices"][0]["text"]

    def test_stop(self):
        if not self.stories:
            return
        for stop in ("Lily", ["girl", "Lily"], ["xyz", "little"]):
            st, r = post_json(self.port, "/v1/completions",
                              {"prompt": "Once upon a time", "max_tokens": 30,
                               "temperature": 0, "stop": stop})
            assert st == 200, r
            want = {"Lily": ", there was a little girl named ",
                    "girl": ", there was a little ", "little": ", there was a "}
            first = stop if isinstance(stop, str) else \
                min((s for s in stop if s in want), key=lambda s: len(want[s]))
            assert r["choices"][0]["text"] == want[first], (stop, r["choices"][0])
            assert r["choices"][0]["finish_reason"] == "stop"
        # streaming never leaks a stop string
        st, events, raw = sse_events(self.port, "/v1/completions",
                                     {"prompt": "Once upon a time", "max_tokens": 30,
                                      "temperature": 0, "stop": "Lily", "stream": True})
        text = "".join(e["choices"][0]["text"] for e in events[:-1])
        assert text == ", there was a little girl named ", text
        assert events[-2]["choices"][0]["finish_reason"] == "stop"

    def test_seed_and_sampling(self):
        body = {"prompt": "Once upon a time", "max_tokens": 16, "temperature": 1.0, "seed": 42,
                "top_p": 0.9, "top_k": 20, "min_p": 0.01, "presence_penalty": 0.5,
                "frequency_penalty": 0.2, "repetition_penalty": 1.1}
        st, a = post_json(self.port, "/v1/completions", body)
        st2, b = post_json(self.port, "/v1/completions", body)
        assert st == 200 and st2 == 200, (a, b)
        assert a["choices"][0]["text"] == b["choices"][0]["text"]

    def test_max_tokens_length(self):
        st, r = post_json(self.port, "/v1/chat/completions",
                          {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3,
                           "ignore_eos": True})
        assert st == 200 and r["usage"]["completion_tokens"] == 3, r
        assert r["choices"][0]["finish_reason"] == "length"

    def test_concurrent_streams(self):
        c = client(self.srv)
        prompts = ["Once upon a time", "One day", "Lily and Tom", "The cat"]
        expect = {}
        for p in prompts:
            r = c.completions.create(model=self.model_id, prompt=p, max_tokens=24, temperature=0)
            expect[p] = r.choices[0].text
        results, errors = {}, []

        def worker(i):
            try:
                p = prompts[i % len(prompts)]
                cl = client(self.srv)
                s = cl.completions.create(model=self.model_id, prompt=p, max_tokens=24,
                                          temperature=0, stream=True,
                                          stream_options={"include_usage": True})
                chunks = list(s)
                results[i] = ("".join(ch.choices[0].text for ch in chunks if ch.choices),
                              chunks[-1].usage)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not errors, errors
        assert len(results) == 16
        for i, (text, usage) in results.items():
            assert text == expect[prompts[i % len(prompts)]], (i, text)
            assert usage is not None and usage.completion_tokens >= 1

    def test_tokenize(self):
        st, r = post_json(self.port, "/tokenize", {"content": "Once upon a time"})
        assert st == 200 and all(isinstance(t, int) for t in r["tokens"]), r
        st, r2 = post_json(self.port, "/tokenize", {"content": "Once upon a time",
                                                    "add_special": True})
        assert st == 200 and len(r2["tokens"]) >= len(r["tokens"])
        st, d = post_json(self.port, "/detokenize", {"tokens": r["tokens"]})
        assert st == 200 and d["content"].strip() == "Once upon a time", d
        # a prompt given as token ids gives the same answer as the text
        st, a = post_json(self.port, "/v1/completions",
                          {"prompt": r2["tokens"], "max_tokens": 8, "temperature": 0})
        st2, b = post_json(self.port, "/v1/completions",
                           {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0})
        assert a["choices"][0]["text"] == b["choices"][0]["text"], (a, b)
        st, e = post_json(self.port, "/v1/completions",
                          {"prompt": "Once upon", "max_tokens": 3, "temperature": 0,
                           "echo": True})
        assert st == 200 and e["choices"][0]["text"].startswith("Once upon"), e

    def test_metrics(self):
        st, _, data = request(self.port, "GET", "/metrics")
        assert st == 200
        text = data.decode()
        for name in ("spillway_requests_total", "spillway_prompt_tokens_total",
                     "spillway_generation_tokens_total",
                     "spillway_time_to_first_token_seconds_bucket",
                     "spillway_inter_token_latency_seconds_bucket", "spillway_requests_waiting",
                     "spillway_requests_running", "spillway_kv_blocks_used",
                     "spillway_kv_blocks_total", "spillway_prefix_cache_hit_rate",
                     "spillway_preemptions_total"):
            assert name in text, name
        assert 'spillway_requests_total{endpoint="/v1/completions",status="200"}' in text

    # -- errors --

    def test_malformed(self):
        p = self.port
        chat = "/v1/chat/completions"
        cmpl = "/v1/completions"
        msgs = [{"role": "user", "content": "hi"}]

        def c(**kw):
            d = {"messages": msgs, "max_tokens": 2}
            d.update(kw)
            return json.dumps(d)

        def k(**kw):
            d = {"prompt": "hi", "max_tokens": 2}
            d.update(kw)
            return json.dumps(d)

        deep = "[" * 5000 + "]" * 5000
        cases = [
            # (name, method, path, body, headers, status, param, code)
            ("invalid json", "POST", chat, "{", None, 400, None, "invalid_json"),
            ("empty body", "POST", chat, "", None, 400, None, None),
            ("array body", "POST", chat, "[]", None, 400, None, None),
            ("string body", "POST", chat, '"hi"', None, 400, None, None),
            ("number body", "POST", cmpl, "42", None, 400, None, None),
            ("trailing garbage", "POST", chat, c() + " xx", None, 400, None, None),
            ("messages missing", "POST", chat, '{"max_tokens": 2}', None, 400, "messages", None),
            ("messages not a list", "POST", chat, c(messages="hi"), None, 400, "messages",
             None),
            ("messages empty", "POST", chat, c(messages=[]), None, 400, "messages", None),
            ("message not object", "POST", chat, c(messages=["hi"]), None, 400, "messages[0]",
             None),
            ("role missing", "POST", chat, c(messages=[{"content": "x"}]), None, 400,
             "messages[0].role", None),
            ("unknown role", "POST", chat, c(messages=[{"role": "wizard", "content": "x"}]),
             None, 400, "messages[0].role", None),
            ("role not string", "POST", chat, c(messages=[{"role": 7, "content": "x"}]), None,
             400, "messages[0].role", None),
            ("content int", "POST", chat, c(messages=[{"role": "user", "content": 5}]), None,
             400, "messages[0].content", None),
            ("content missing", "POST", chat, c(messages=[{"role": "user"}]), None, 400,
             "messages[0].content", None),
            ("image part", "POST", chat,
             c(messages=[{"role": "user", "content": [{"type": "image_url",
                                                       "image_url": {"url": "x"}}]}]),
             None, 400, "messages[0].content[0].type", None),
            ("tool message answering no call", "POST", chat,
             c(messages=[{"role": "tool", "tool_call_id": "call_1", "content": "x"}]), None, 400,
             "messages[0].tool_call_id", None),
            ("function role", "POST", chat, c(messages=[{"role": "function", "content": "x"}]),
             None, 400, "messages[0].role", None),
            ("negative max_tokens", "POST", chat, c(max_tokens=-5), None, 400, "max_tokens",
             None),
            ("zero max_tokens", "POST", chat, c(max_tokens=0), None, 400, "max_tokens", None),
            ("string max_tokens", "POST", chat, c(max_tokens="10"), None, 400, "max_tokens",
             None),
            ("fractional max_tokens", "POST", chat, c(max_tokens=1.5), None, 400, "max_tokens",
             None),
            ("huge max_tokens", "POST", chat,
             c().replace('"max_tokens": 2', '"max_tokens": 99999999999999999999999'), None,
             400, "max_tokens", None),
            ("1e400 max_tokens", "POST", cmpl,
             k().replace('"max_tokens": 2', '"max_tokens": 1e400'), None, 400, None, None),
            ("temperature -1", "POST", chat, c(temperature=-1), None, 400, "temperature", None),
            ("temperature 3", "POST", chat, c(temperature=3), None, 400, "temperature", None),
            ("temperature string", "POST", chat, c(temperature="hot"), None, 400,
             "temperature", None),
            ("top_p 1.5", "POST", chat, c(top_p=1.5), None, 400, "top_p", None),
            ("top_k string", "POST", cmpl, k(top_k="x"), None, 400, "top_k", None),
            ("min_p -0.1", "POST", cmpl, k(min_p=-0.1), None, 400, "min_p", None),
            ("n=2", "POST", chat, c(n=2), None, 400, "n", None),
            ("n=0", "POST", cmpl, k(n=0), None, 400, "n", None),
            ("top_logprobs 99", "POST", chat, c(logprobs=True, top_logprobs=99), None, 400,
             "top_logprobs", None),
            ("top_logprobs w/o logprobs", "POST", chat, c(top_logprobs=2), None, 400,
             "top_logprobs", None),
            ("logprobs string", "POST", chat, c(logprobs="yes"), None, 400, "logprobs", None),
            ("stream string", "POST", chat, c(stream="true"), None, 400, "stream", None),
            ("5 stops", "POST", chat, c(stop=["a", "b", "c", "d", "e"]), None, 400, "stop",
             None),
            ("stop ints", "POST", chat, c(stop=[1, 2]), None, 400, "stop[0]", None),
            ("stream_options w/o stream", "POST", chat,
             c(stream_options={"include_usage": True}), None, 400, "stream_options", None),
            ("presence_penalty 5", "POST", chat, c(presence_penalty=5), None, 400,
             "presence_penalty", None),
            ("repetition_penalty 0", "POST", cmpl, k(repetition_penalty=0), None, 400,
             "repetition_penalty", None),
            ("seed string", "POST", chat, c(seed="abc"), None, 400, "seed", None),
            ("seed 1e30", "POST", chat, c(seed=1e30), None, 400, "seed", None),
            ("model int", "POST", chat, c(model=3), None, 400, "model", None),
            ("tool without a function", "POST", chat, c(tools=[{"type": "function"}]),
             None, 400, "tools[0].function", None),
            ("logit_bias not an id", "POST", chat, c(logit_bias={"abc": 10}), None, 400,
             "logit_bias", None),
            ("logit_bias signed id", "POST", chat, c(logit_bias={"+5": 10}), None, 400,
             "logit_bias", None),
            ("logit_bias id past vocab", "POST", chat, c(logit_bias={"99999999": 1}), None, 400,
             "logit_bias", None),
            ("logit_bias 101", "POST", chat, c(logit_bias={"5": 101}), None, 400, "logit_bias",
             None),
            ("logit_bias string", "POST", chat, c(logit_bias={"5": "x"}), None, 400,
             "logit_bias", None),
            ("logit_bias list", "POST", chat, c(logit_bias=[5]), None, 400, "logit_bias", None),
            ("json schema keyword we cannot enforce", "POST", chat,
             c(response_format={"type": "json_schema",
                                "json_schema": {"name": "x", "schema": {"type": "array", "contains": {}}}}),
             None, 400, "response_format", None),
            ("response_format type", "POST", chat, c(response_format={"type": "xml"}), None, 400,
             "response_format.type", None),
            ("response_format string", "POST", chat, c(response_format="json"), None, 400,
             "response_format", None),
            ("raw NUL byte", "POST", chat, c()[:-1] + ',"x":"a\x00b"}', None, 400, None, None),
            ("invalid utf-8", "POST", chat,
             c().encode()[:-1] + b',"x":"\xff\xfe\xc0\xaf"}', None, 400, None, None),
            ("deep nesting", "POST", chat, c()[:-1] + ',"x":' + deep + "}", None, 400, None,
             None),
            ("2 MB body", "POST", chat,
             c()[:-1] + ',"pad":"' + "x" * (2 << 20) + '"}', None, 413, None, None),
            ("multipart content-type", "POST", chat, c(),
             {"Content-Type": "multipart/form-data; boundary=x"}, 415, None, None),
            ("GET on chat", "GET", chat, None, None, 405, None, None),
            ("GET on completions", "GET", cmpl, None, None, 405, None, None),
            ("POST on models", "POST", "/v1/models", "{}", None, 405, None, None),
            ("PUT on health", "PUT", "/health", "", None, 405, None, None),
            ("DELETE on chat", "DELETE", chat, None, None, 405, None, None),
            ("unknown path", "POST", "/v1/foo", "{}", None, 404, None, None),
            ("unknown path 2", "GET", "/../../etc/passwd", None, None, 404, None, None),
            ("prompt missing", "POST", cmpl, '{"max_tokens": 2}', None, 400, "prompt", None),
            ("prompt int", "POST", cmpl, k(prompt=5), None, 400, "prompt", None),
            ("prompt batch", "POST", cmpl, k(prompt=["a", "b"]), None, 400, "prompt", None),
            ("prompt empty list", "POST", cmpl, k(prompt=[]), None, 400, "prompt", None),
            ("token id out of range", "POST", cmpl, k(prompt=[1, 99999999]), None, 400,
             "prompt[1]", None),
            ("negative token id", "POST", cmpl, k(prompt=[-1]), None, 400, "prompt[0]", None),
            ("completions logprobs 99", "POST", cmpl, k(logprobs=99), None, 400, "logprobs",
             None),
            ("completions logprobs bool", "POST", cmpl, k(logprobs=True), None, 400,
             "logprobs", None),
            ("suffix", "POST", cmpl, k(suffix="end"), None, 400, "suffix", None),
            ("echo + logprobs", "POST", cmpl, k(echo=True, logprobs=1), None, 400, "echo",
             None),
            ("best_of 3", "POST", cmpl, k(best_of=3), None, 400, "best_of", None),
            ("context exceeded (prompt)", "POST", cmpl,
             k(prompt=[1] + [300] * 5000, max_tokens=None), None, 400, "prompt",
             "context_length_exceeded"),
            ("context exceeded (max_tokens)", "POST", chat, c(max_tokens=10_000_000), None, 400,
             "max_tokens", "context_length_exceeded"),
            ("tokenize no content", "POST", "/tokenize", "{}", None, 400, "content", None),
            ("tokenize content int", "POST", "/tokenize", '{"content": 5}', None, 400,
             "content", None),
            ("detokenize bad ids", "POST", "/detokenize", '{"tokens": [1, "x"]}', None, 400,
             "tokens", None),
            ("detokenize huge id", "POST", "/detokenize", '{"tokens": [1e20]}', None, 400,
             "tokens", None),
            ("detokenize not list", "POST", "/detokenize", '{"tokens": 5}', None, 400,
             "tokens", None),
        ]
        assert len(cases) >= 40
        failures = []
        for name, method, path, body, headers, want, param, code in cases:
            try:
                st, h, data = request(p, method, path, body, headers)
                try:
                    obj = json.loads(data)
                except ValueError:
                    raise AssertionError(f"body is not JSON: {data[:200]!r}")
                assert_error(st, obj, want, param, code, name)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{name}: {e}")
        assert not failures, "\n".join(failures)
        # 405 names the allowed method
        _, h, _ = request(p, "GET", chat)
        assert h.get("allow") == "POST, OPTIONS", h
        self.check_still_serving()

    def test_hostile_raw(self):
        """Requests no HTTP client library would send: libmicrohttpd answers
        some of these itself (not in OpenAI's shape), so only the status and
        the server's survival are checked."""
        p = self.port
        raw_cases = [
            (b"GARBAGE\r\n\r\n", (400, 501, 505)),
            (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
             (400, 413)),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
             (400, 413, 431)),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
             (200, 400)),
            (b"\x00\x01\x02\xff\xfe garbage bytes\r\n\r\n", (400, 501, 505)),
            (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             b"\r\nzz\r\n", (400,)),
        ]
        for raw, ok in raw_cases:
            data = raw_exchange(p, raw)
            if data:
                status = int(data.split(b" ", 2)[1])
                assert status in ok, (raw[:60], data[:200])
        # unicode garbage in a valid request is served
        weird = "\u202e\u0000x\U0001F600\ufffd\u200b" + "é" * 50 + "\\ud800"
        st, r = post_json(p, "/v1/chat/completions",
                          {"messages": [{"role": "user", "content": weird}], "max_tokens": 3})
        assert st == 200, r
        st, r = post_json(p, "/v1/completions", {"prompt": "\U0001F600" * 30, "max_tokens": 3})
        assert st == 200, r
        self.check_still_serving()

    def check_still_serving(self):
        assert self.srv.alive(), self.srv.logs()
        st, _, _ = request(self.port, "GET", "/health")
        assert st == 200
        st, r = post_json(self.port, "/v1/completions",
                          {"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0})
        assert st == 200 and r["usage"]["completion_tokens"] == 4, r

    def test_disconnect_cancels(self):
        # a server of its own whose engine sleeps 10 ms per token: no stream can end
        # on its own before the client hangs up, on an idle or a sanitizer build alike
        srv = Server(self.model, env={"SW_SERVER_TEST_TOKEN_DELAY": "0.01"})
        try:
            self._disconnect_cancels(srv.port)
        finally:
            assert srv.stop() == 0
        self.check_still_serving()

    def _disconnect_cancels(self, p):
        cancelled0 = cancelled_count(p)
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": long_tokens(p),
                           "stream": True,
                           "ignore_eos": True, "temperature": 0.8}).encode()
        socks = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", p), timeout=30)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                      b"\r\n\r\n" + body)
            got = b""
            while got.count(b"data: ") < 3:
                chunk = s.recv(4096)
                assert chunk, "stream ended early"
                got += chunk
            socks.append(s)
        assert metric(p, "spillway_requests_running") >= 1
        for s in socks:
            s.close()
        # the engine drops a sequence before its final event reaches the metrics
        # (on the scheduler thread, after the lock): wait for the count too
        deadline = time.time() + 15
        while time.time() < deadline:
            if metric(p, "spillway_requests_running") == 0 and \
                    metric(p, "spillway_requests_waiting") == 0 and \
                    cancelled_count(p) >= cancelled0 + 3:
                break
            time.sleep(0.05)
        assert metric(p, "spillway_requests_running") == 0, "engine still running after close"
        assert cancelled_count(p) >= cancelled0 + 3, (cancelled_count(p), cancelled0)

    def test_disconnect_nonstream(self):
        p = self.port
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": long_tokens(p),
                           "ignore_eos": True}).encode()
        s = socket.create_connection(("127.0.0.1", p), timeout=30)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  str(len(body)).encode() + b"\r\n\r\n" + body)
        deadline = time.time() + 10
        while time.time() < deadline and metric(p, "spillway_requests_running") < 1:
            time.sleep(0.01)
        s.close()
        deadline = time.time() + 15
        while time.time() < deadline and metric(p, "spillway_requests_running") != 0:
            time.sleep(0.05)
        assert metric(p, "spillway_requests_running") == 0


def post_json_get(port, path):
    st, _, data = request(port, "GET", path)
    return st, json.loads(data)


def long_tokens(port):
    """max_tokens for a request that runs as long as the context allows."""
    st, _, data = request(port, "GET", "/v1/models")
    return json.loads(data)["data"][0]["meta"]["n_ctx"] - 40


def cancelled_count(port):
    st, _, data = request(port, "GET", "/metrics")
    for line in data.decode().splitlines():
        if line.startswith('spillway_generations_total{reason="cancelled"}'):
            return float(line.split()[1])
    return 0.0


# -- tests that need their own server -----------------------------------------

def test_auth(model):
    keyfile = os.path.join(tmp_dir(), f"keys-{os.getpid()}.txt")
    with open(keyfile, "w") as f:
        f.write("# keys\nkey-from-file\n\n")
    srv = Server(model, "--api-key", "sekrit", "--api-key-file", keyfile)
    try:
        p = srv.port
        body = {"prompt": "Once", "max_tokens": 2}
        st, r = post_json(p, "/v1/completions", body)
        assert_error(st, r, 401, code="invalid_api_key", what="no key")
        st, r = post_json(p, "/v1/completions", body, {"Authorization": "Bearer wrong"})
        assert_error(st, r, 401, what="wrong key")
        st, r = post_json(p, "/v1/completions", body, {"Authorization": "sekrit"})
        assert_error(st, r, 401, what="no Bearer")
        st, r = post_json(p, "/v1/completions", body, {"Authorization": "Bearer sekri"})
        assert_error(st, r, 401, what="key prefix")
        for key in ("sekrit", "key-from-file"):
            st, r = post_json(p, "/v1/completions", body, {"Authorization": f"Bearer {key}"})
            assert st == 200, r
        st, _, data = request(p, "GET", "/health")
        assert st == 200, data
        st, _, _ = request(p, "GET", "/v1/models")
        assert st == 401
        st, _, _ = request(p, "GET", "/metrics")
        assert st == 401
        import openai
        bad = client(srv, "wrong")
        try:
            bad.models.list()
            raise AssertionError("wrong key accepted")
        except openai.AuthenticationError:
            pass
        ok = client(srv, "sekrit")
        r = ok.completions.create(model=ok.models.list().data[0].id, prompt="Once",
                                  max_tokens=2)
        assert r.usage.completion_tokens == 2
    finally:
        assert srv.stop() == 0
        os.unlink(keyfile)


def test_busy_429(model):
    # 20 ms per token: the running request outlasts the checks on an idle machine too
    srv = Server(model, "--parallel", "1", "--max-queue", "1", "--threads", "1",
                 env={"SW_SERVER_TEST_TOKEN_DELAY": "0.02"})
    try:
        p = srv.port
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": long_tokens(p),
                           "stream": True,
                           "ignore_eos": True}).encode()
        socks = []
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", p), timeout=30)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                      str(len(body)).encode() + b"\r\n\r\n" + body)
            socks.append(s)
            if i == 0:  # running: its first token has arrived
                got = b""
                while b"data: " not in got:
                    chunk = s.recv(4096)
                    assert chunk
                    got += chunk
            else:  # queued behind it
                deadline = time.time() + 10
                while time.time() < deadline and metric(p, "spillway_requests_waiting") < 1:
                    time.sleep(0.002)
        st, r = post_json(p, "/v1/completions", {"prompt": "Once", "max_tokens": 2})
        assert_error(st, r, 429, code="queue_full", what="queue full")
        _, h, _ = request(p, "POST", "/v1/completions", {"prompt": "Once", "max_tokens": 2})
        assert h.get("retry-after"), h
        import openai
        try:
            client(srv).completions.create(model=os.path.basename(model), prompt="x",
                                           max_tokens=1)
            raise AssertionError("no 429 while the queue is full")
        except openai.RateLimitError:
            pass
        for s in socks:
            s.close()
        # both cancelled: the queued one may be admitted (or still wait) until its
        # disconnect is seen, so wait for the queue too, not just the running slot
        deadline = time.time() + 15
        while time.time() < deadline and (metric(p, "spillway_requests_running") != 0 or
                                          metric(p, "spillway_requests_waiting") != 0):
            time.sleep(0.05)
        st, r = post_json(p, "/v1/completions", {"prompt": "Once", "max_tokens": 2})
        assert st == 200, r
    finally:
        assert srv.stop() == 0


def test_loading_503(model):
    srv = Server(model, env={"SW_SERVER_TEST_LOAD_DELAY": "1.5"}, wait_ready=False)
    try:
        st, _, data = request(srv.port, "GET", "/health")
        assert st == 503, (st, data)
        body = json.loads(data)
        assert body["status"] == "loading model" and body["error"]["code"] == "model_loading"
        st, r = post_json(srv.port, "/v1/completions", {"prompt": "x", "max_tokens": 1})
        assert_error(st, r, 503, code="model_loading", what="loading")
        st, _, data = request(srv.port, "GET", "/metrics")
        assert st == 200 and b"spillway_model_loaded 0" in data
        srv.wait_ready()
        st, _, _ = request(srv.port, "GET", "/health")
        assert st == 200
    finally:
        assert srv.stop() == 0


def test_sigterm_midstream(model):
    srv = Server(model, "--threads", "1")
    try:
        p = srv.port
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": long_tokens(p),
                           "stream": True,
                           "ignore_eos": True}).encode()
        s = socket.create_connection(("127.0.0.1", p), timeout=30)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while got.count(b"data: ") < 3:
            chunk = s.recv(4096)
            assert chunk
            got += chunk
        # a non-streaming request in flight too
        result = {}

        def nonstream():
            result["r"] = request(p, "POST", "/v1/completions",
                                  {"prompt": "Once", "max_tokens": long_tokens(p),
                                   "ignore_eos": True})
        t = threading.Thread(target=nonstream)
        t.start()
        deadline = time.time() + 10
        while time.time() < deadline and metric(p, "spillway_requests_running") < 2:
            time.sleep(0.01)
        t0 = time.time()
        srv.proc.send_signal(signal.SIGTERM)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        t.join(20)
        rc = srv.proc.wait(20)
        assert rc == 0, (rc, srv.logs())
        assert time.time() - t0 < 10
        text = got.decode(errors="replace")
        # the stream ends with an error event and [DONE], not a silent cut
        assert '"error"' in text and "shutting" in text, text[-500:]
        assert text.rstrip().endswith("data: [DONE]") or text.rstrip().endswith("0"), text[-200:]
        st, _, data = result["r"]
        assert st == 503 and b"shutting_down" in data, (st, data)
        assert "stopped" in srv.logs()
    finally:
        srv.stop()


def test_mutations(model):
    """Seeded random mutations of valid requests: every answer is JSON
    (or SSE for a successful stream) with an expected status, and the
    server survives all of them. Its own server has a small context, so a
    mutation that drops max_tokens still ends quickly."""
    srv = Server(model, "--ctx", "128")
    try:
        import random
        rnd = random.Random(1234)
        values = [None, True, False, 0, -1, 1, 2.5, -1e308, 1e308, 2**63, -2**63, "", "x" * 300,
                  "\u0000", "\ud83d", [], [1], ["a"], [[1, 2]], {}, {"a": 1}, [None],
                  [{"role": "user", "content": "hi"}], {"include_usage": "yes"}]
        keys = ["model", "messages", "prompt", "max_tokens", "max_completion_tokens",
                "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stream",
                "stream_options", "logprobs", "top_logprobs", "n", "presence_penalty",
                "frequency_penalty", "repetition_penalty", "echo", "ignore_eos", "best_of",
                "logit_bias", "tools", "response_format", "suffix", "user"]
        base_chat = {"messages": [{"role": "user", "content": "Once upon a time"}],
                     "max_tokens": 4}
        base_cmpl = {"prompt": "Once upon a time", "max_tokens": 4}
        statuses = {}
        for i in range(300):
            chat = rnd.random() < 0.5
            body = json.loads(json.dumps(base_chat if chat else base_cmpl))
            for _ in range(rnd.randint(1, 4)):
                op = rnd.random()
                k = rnd.choice(keys)
                if op < 0.7:
                    body[k] = rnd.choice(values)
                elif body:
                    body.pop(rnd.choice(list(body)), None)
            if isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 64:
                body["max_tokens"] = 64
            if "max_completion_tokens" in body and isinstance(body["max_completion_tokens"], int) \
                    and body["max_completion_tokens"] > 64:
                body["max_completion_tokens"] = 64
            path = "/v1/chat/completions" if chat else "/v1/completions"
            st, h, data = request(srv.port, "POST", path, json.dumps(body).encode(),
                                  {"Content-Type": "application/json"})
            statuses[st] = statuses.get(st, 0) + 1
            assert st in (200, 400, 404), (st, body, data[:300])
            if st == 200 and h.get("content-type", "").startswith("text/event-stream"):
                assert data.endswith(b"data: [DONE]\n\n"), (body, data[-200:])
            else:
                obj = json.loads(data)
                if st != 200:
                    assert_error(st, obj, st, what=json.dumps(body)[:200])
        assert statuses.get(200, 0) > 10 and statuses.get(400, 0) > 10, statuses
        assert srv.alive()
        st, r = post_json(srv.port, "/v1/completions", {"prompt": "Once", "max_tokens": 2})
        assert st == 200, r
    finally:
        assert srv.stop() == 0


def test_timeout(model, suite_port):
    # A deadline well under what a long request takes on this machine, so the
    # test does not depend on how fast the model runs here: a tenth of the
    # fastest of three warm runs (a cold first run would overstate it).
    took = []
    for _ in range(3):
        t0 = time.time()
        st, _ = post_json(suite_port, "/v1/completions",
                          {"prompt": "Once upon a time", "max_tokens": long_tokens(suite_port),
                           "ignore_eos": True})
        took.append(time.time() - t0)
        assert st == 200
    srv = Server(model, "--timeout", f"{max(min(took) / 10, 0.001):.4f}")
    try:
        p = srv.port
        body = {"prompt": "Once upon a time", "max_tokens": long_tokens(p), "ignore_eos": True}
        st, r = post_json(p, "/v1/completions", body)
        assert_error(st, r, 504, code="request_timeout", what="timeout")
        st, events, raw = sse_events(p, "/v1/completions", dict(body, stream=True))
        assert st == 200 and events[-1] == "[DONE]", raw[-300:]
        assert events[-2]["error"]["code"] == "request_timeout", events[-2]
        st, r = post_json(p, "/v1/completions", {"prompt": "Once", "max_tokens": 2})
        assert st == 200, r
        deadline = time.time() + 10
        while time.time() < deadline and metric(p, "spillway_requests_running") != 0:
            time.sleep(0.05)
        assert metric(p, "spillway_requests_running") == 0
    finally:
        assert srv.stop() == 0


def test_bad_flags():
    b = server_bin()
    for args in (["--port", "99999"], ["-m"], ["--kv-memory", "lots"], ["--bogus"],
                 ["--chat-template", "nope", "-m", "x.gguf"], []):
        r = subprocess.run([b, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
    r = subprocess.run([b, "-m", "/nonexistent.gguf", "--port", "0"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "nonexistent" in r.stderr, r.stderr
    r = subprocess.run([b, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--api-key" in r.stdout


def main():
    model, stories = find_model()
    print(f"model: {model}; server: {server_bin()}")
    suite = Suite(model, stories)
    try:
        tests = [(n, getattr(suite, n)) for n in dir(suite) if n.startswith("test_")]
        # the disconnect tests last: they leave cancelled requests behind
        tests.sort(key=lambda t: (t[0].startswith("test_disconnect"), t[0]))
        tests += [("test_auth", lambda: test_auth(model)),
                  ("test_busy_429", lambda: test_busy_429(model)),
                  ("test_loading_503", lambda: test_loading_503(model)),
                  ("test_sigterm_midstream", lambda: test_sigterm_midstream(model)),
                  ("test_timeout", lambda: test_timeout(model, suite.port)),
                  ("test_mutations", lambda: test_mutations(model)),
                  ("test_bad_flags", test_bad_flags)]
        only = os.environ.get("SW_TEST_ONLY")
        if only:
            tests = [t for t in tests if only in t[0]]
        run(tests)
    finally:
        rc = suite.srv.stop()
        if rc != 0:
            print(f"server exited with {rc}:\n{suite.srv.logs()}")
            sys.exit(1)


if __name__ == "__main__":
    main()
