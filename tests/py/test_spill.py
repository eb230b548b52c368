"""Cloud spill-over end to end: spillway-server with --cloud-url pointing at
tests/py/fake_provider.py (Anthropic wire format) on a loopback port, and a
second spillway-server as an OpenAI-compatible "cloud".

Checks: overflow goes to the cloud before any local compute (no local prompt
tokens), streaming and not; private (body, header, key policy) and PII
requests never reach the provider (zero hits) and overflow -> 400
context_length_exceeded; the confidence monitor passes a confident answer and
escalates a low-confidence one (held text never leaks); a failing cloud is
answered locally (cloud_failed), the breaker opens (requests skip the cloud
without a hit) and recovers after the cool-down; explicit route cloud with the
cloud down -> 502/503; queue-full spill under concurrency; the ledger file,
/v1/usage and /metrics agree; the provider key never appears in logs or
answers; bad policy files are refused at startup.

Environment as tests/py/test_server.py (SW_SERVER_BIN for the ASan build)."""
import json
import os
import select
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import (Server, client, find_model, metric, post_json, request, run,  # noqa: E402
                         server_bin, sse_events, tmp_dir)

KEY = "sk-fake-SECRET-0123456789abcdef"
KEY_ENV = "SW_TEST_SPILL_KEY"
CLOUD_MODEL = "fake-claude-1"
EMAIL = "Please write to jane.doe@example.com about it."


class Fake:
    """tests/py/fake_provider.py on 127.0.0.1; stopped by stop()."""

    def __init__(self):
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "fake_provider.py"), "--port", "0", "--key", KEY],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if r else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"fake provider did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def control(self, **cfg):
        st, _, body = request(self.port, "POST", "/_control", cfg)
        assert st == 200, body

    def reset(self):
        st, _, body = request(self.port, "POST", "/_reset", {})
        assert st == 200, body

    def stats(self):
        st, _, body = request(self.port, "GET", "/_stats")
        assert st == 200, body
        return json.loads(body)

    def hits(self):
        return self.stats()["hits"]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def write_json(name, obj):
    path = os.path.join(tmp_dir(), f"spill-{os.getpid()}-{name}")
    with open(path, "w") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f)
    return path


def cloud_server(model, fake, rc, *extra, ctx=128):
    """A spillway-server spilling to the fake (flags for provider, URL, model
    and key variable; the rest from the policy file rc)."""
    return Server(model, "--ctx", str(ctx), "--cloud-provider", "anthropic", "--cloud-url",
                  fake.url, "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                  "--route-config", write_json("rc.json", rc), *extra, env={KEY_ENV: KEY})


def route_of(headers):
    return headers.get("x-spillway-route")


def chat_body(text, **kw):
    return dict({"messages": [{"role": "user", "content": text}], "temperature": 0}, **kw)


def wait_for(cond, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def usage(port, headers=None):
    st, _, body = request(port, "GET", "/v1/usage", headers=headers)
    assert st == 200, body
    return json.loads(body)


def metric_series(port, name):
    """{labels string: value} for a labelled metric."""
    st, _, data = request(port, "GET", "/metrics")
    assert st == 200
    out = {}
    for line in data.decode().splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name):].rsplit(" ", 1)
            out[labels] = float(value)
    return out


# ---------------------------------------------------------------------------
# suite A: auto routing against the fake (Anthropic wire format)

class SuiteA:
    def __init__(self, model, fake, stories):
        self.fake = fake
        self.model = model
        self.stories = stories
        self.ledger = os.path.join(tmp_dir(), f"spill-{os.getpid()}-ledger.jsonl")
        if os.path.exists(self.ledger):
            os.unlink(self.ledger)
        # A commented policy file (the documented example style); the cloud's
        # URL, model and key variable come from the flags.
        rc = """{
          // a small probe window so that short answers are judged
          "monitor": {"probe_tokens": 8, "min_mean_logprob": -2.0},
          "keys": {"sk-private-team": {"private": true},
                   "sk-local-only": {"local_only": true}},
          "prices": {"fake-claude*": {"input": 3.0, "output": 15.0}},
          /* no retries: every request is one provider hit */
          "cloud": {"max_attempts": 1, "breaker_failures": 1000},
          "ledger": "%s"
        }""" % self.ledger
        self.srv = cloud_server(model, fake, rc)
        self.port = self.srv.port
        self.c = client(self.srv)

    def test_overflow_to_cloud(self):
        self.fake.reset()
        before = metric(self.port, "spillway_prompt_tokens_total")
        raw = self.c.chat.completions.with_raw_response.create(
            model=local_name(), messages=[{"role": "user", "content": "Tell me about the sea"}],
            max_tokens=200, temperature=0)
        assert raw.headers["x-spillway-route"] == "cloud; reason=overflow", raw.headers
        r = raw.parse()
        assert r.choices[0].message.content == "fake reply: Tell me about the sea", r
        assert r.id.startswith("chatcmpl-") and r.model == CLOUD_MODEL, r
        assert r.usage.completion_tokens > 0
        sp = r.model_extra["spillway"]
        assert sp["route"] == "cloud" and sp["reason"] == "overflow", sp
        assert "max_tokens > local context 128" in sp["message"], sp
        assert sp["cloud"]["provider"] == "anthropic" and sp["cloud"]["model"] == CLOUD_MODEL
        # streaming, with usage
        chunks = list(self.c.chat.completions.create(
            model=local_name(), messages=[{"role": "user", "content": "Tell me about the sea"}],
            max_tokens=200, temperature=0, stream=True, stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
        assert chunks[0].model_extra["spillway"]["reason"] == "overflow", chunks[0]
        assert all("spillway" not in (ch.model_extra or {}) for ch in chunks[1:])
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == "fake reply: Tell me about the sea", text
        assert len({ch.id for ch in chunks}) == 1 and len({ch.model for ch in chunks}) == 1
        fin = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        assert len(fin) == 1 and fin[0].choices[0].finish_reason == "stop"
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
        # completions overflow: the prompt goes out as one user message
        st, h, body = request(self.port, "POST", "/v1/completions",
                              {"prompt": "Once upon a time", "max_tokens": 200})
        body = json.loads(body)
        assert st == 200 and route_of(h) == "cloud; reason=overflow", (st, h, body)
        assert body["choices"][0]["text"] == "fake reply: Once upon a time", body
        assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
        stats = self.fake.stats()
        assert stats["hits"] == 3, stats
        sent = stats["last"]["body"]
        assert sent["model"] == CLOUD_MODEL and "spillway" not in sent, sent
        assert sent["max_tokens"] == 200 and stats["last"]["headers"]["x-api-key"] == "present"
        # no local compute for any of them
        assert metric(self.port, "spillway_prompt_tokens_total") == before

    def test_private_never_leaves(self):
        self.fake.reset()
        over = chat_body("Tell me about the sea", max_tokens=200)
        cases = [("body", dict(over, spillway={"private": True}), {}, "private"),
                 ("header", over, {"X-Spillway-Private": "1"}, "private"),
                 ("key", over, {"Authorization": "Bearer sk-private-team"}, "private"),
                 ("local_only key", over, {"Authorization": "Bearer sk-local-only"}, "policy_local"),
                 ("email", chat_body(EMAIL, max_tokens=200), {}, "pii")]
        for what, body, hdr, reason in cases:
            st, h, data = request(self.port, "POST", "/v1/chat/completions", body, hdr)
            err = json.loads(data)
            assert st == 400, (what, st, data)
            assert err["error"]["code"] == "context_length_exceeded", (what, err)
            assert err["error"]["param"] == "max_tokens", (what, err)
            assert route_of(h) == f"reject; reason={reason}", (what, h)
            assert "jane.doe" not in data.decode(), what  # messages never quote request text
        # asking for the cloud explicitly is a conflict, not a leak
        for what, body, hdr, reason in [
                ("private", chat_body("hi", spillway={"route": "cloud", "private": True}), {},
                 "private"),
                ("email", chat_body(EMAIL, spillway={"route": "cloud"}), {}, "pii"),
                ("local_only", chat_body("hi", spillway={"route": "cloud"}),
                 {"Authorization": "Bearer sk-local-only"}, "policy_local")]:
            st, h, data = request(self.port, "POST", "/v1/chat/completions", body, hdr)
            err = json.loads(data)
            assert st == 400 and err["error"]["code"] == "route_conflict", (what, st, err)
            assert err["error"]["param"] == "spillway.route", err
            assert route_of(h) == f"reject; reason={reason}", (what, h)
        # fitting requests stay local, with the reason said
        for body, hdr, reason in [(chat_body("hi", max_tokens=4, spillway={"private": True}), {},
                                   "private"),
                                  (chat_body("hi", max_tokens=4), {"X-Spillway-Private": "yes"},
                                   "private"),
                                  (chat_body(EMAIL, max_tokens=4), {}, "pii")]:
            st, h, data = request(self.port, "POST", "/v1/chat/completions", body, hdr)
            r = json.loads(data)
            assert st == 200 and route_of(h) == f"local; reason={reason}", (st, h, r)
            assert r["spillway"]["route"] == "local" and r["spillway"]["reason"] == reason
            assert "monitor" not in r["spillway"], r["spillway"]  # no escalation possible
        # PII in a completions prompt
        st, h, data = request(self.port, "POST", "/v1/completions",
                              {"prompt": EMAIL, "max_tokens": 200})
        assert st == 400 and route_of(h) == "reject; reason=pii", (st, h, data)
        assert self.fake.hits() == 0, self.fake.stats()

    def test_explicit_routes(self):
        self.fake.reset()
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", max_tokens=8, spillway={"route": "cloud"}))
        r = json.loads(data)
        assert st == 200 and route_of(h) == "cloud; reason=explicit_cloud", (st, h, r)
        assert r["choices"][0]["message"]["content"] == "fake reply: Sing"
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", max_tokens=200, spillway={"route": "local"}))
        err = json.loads(data)
        assert st == 400 and err["error"]["code"] == "context_length_exceeded", err
        assert route_of(h) == "reject; reason=explicit_local", h
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", max_tokens=4, spillway={"route": "local"}))
        assert st == 200 and route_of(h) == "local; reason=explicit_local", (st, h)
        for bad, param in [({"route": "moon"}, "spillway.route"),
                           ({"private": "yes"}, "spillway.private"),
                           ({"colour": 1}, "spillway.colour"), ("cloud", "spillway")]:
            st, h, data = request(self.port, "POST", "/v1/chat/completions",
                                  chat_body("Sing", spillway=bad))
            err = json.loads(data)
            assert st == 400 and err["error"]["param"] == param, (bad, st, err)
        assert self.fake.hits() == 1

    def test_model_names(self):
        # /v1/models lists the local model and the cloud model; naming the
        # cloud model asks for the cloud route, within the privacy rules
        self.fake.reset()
        st, _, data = request(self.port, "GET", "/v1/models")
        ms = json.loads(data)["data"]
        assert st == 200 and len(ms) == 2, ms
        assert ms[0]["meta"]["route"] == "local" and ms[0]["owned_by"] == "spillway", ms
        assert ms[1]["id"] == CLOUD_MODEL and ms[1]["owned_by"] == "anthropic", ms
        assert ms[1]["meta"] == {"route": "cloud", "provider": "anthropic"}, ms
        st, _, data = request(self.port, "GET", "/v1/models/" + CLOUD_MODEL)
        assert st == 200 and json.loads(data)["id"] == CLOUD_MODEL, data
        assert [m.id for m in self.c.models.list().data] == [ms[0]["id"], CLOUD_MODEL]

        raw = self.c.chat.completions.with_raw_response.create(
            model=CLOUD_MODEL, messages=[{"role": "user", "content": "Sing"}], max_tokens=8)
        r = raw.parse()
        assert route_of(raw.headers) == "cloud; reason=explicit_cloud", raw.headers
        assert r.model == CLOUD_MODEL and r.choices[0].message.content == "fake reply: Sing", r
        assert self.fake.hits() == 1
        # the local model's name keeps the default routing (short: local)
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", max_tokens=4, model=ms[0]["id"]))
        assert st == 200 and route_of(h) == "local; reason=default", (st, h, data)
        # the cloud model's name never overrides privacy or PII
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", max_tokens=4, model=CLOUD_MODEL,
                                        spillway={"private": True}))
        err = json.loads(data)["error"]
        assert st == 400 and err["code"] == "route_conflict", (st, err)
        assert route_of(h) == "reject; reason=private", h
        st, h, data = request(self.port, "POST", "/v1/completions",
                              {"model": CLOUD_MODEL, "prompt": EMAIL, "max_tokens": 4})
        assert st == 400 and route_of(h) == "reject; reason=pii", (st, h, data)
        # ... and contradicting an explicit local route is an error
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", model=CLOUD_MODEL, spillway={"route": "local"}))
        err = json.loads(data)["error"]
        assert st == 400 and err["code"] == "route_conflict" and err["param"] == "model", err
        # an unknown name takes the automatic route (here: local), and the
        # answer names who answered (--strict-model-names: test_compat.py)
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("Sing", model="gpt-nope", max_tokens=4))
        assert st == 200 and route_of(h) == "local; reason=default", (st, h, data)
        assert json.loads(data)["model"] == ms[0]["id"], data
        assert self.fake.hits() == 1, self.fake.stats()

    def test_monitor_pass_and_escalate(self):
        if not self.stories:
            print("(skipped: the thresholds are tuned to stories260K's confidence)")
            return
        self.fake.reset()
        conf = {"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}
        st, h, data = request(self.port, "POST", "/v1/completions", conf)
        r = json.loads(data)
        assert st == 200 and route_of(h) == "local; reason=default", (st, h, r)
        mon = r["spillway"]["monitor"]
        assert mon["verdict"] == "pass" and mon["tokens"] == 8, mon
        assert mon["mean_logprob"] > -2.0 and mon["thresholds"]["min_mean_logprob"] == -2.0
        assert mon["thresholds"]["probe_tokens"] == 8
        assert r["choices"][0]["text"].startswith(", there was a little girl named Lily"), r
        # streaming: the held window comes out intact and in order
        st, events, raw = sse_events(self.port, "/v1/completions", dict(conf, stream=True))
        assert st == 200 and events[-1] == "[DONE]", raw[-300:]
        assert events[0]["spillway"]["monitor"]["verdict"] == "pass", events[0]
        text = "".join(e["choices"][0]["text"] for e in events[:-1])
        assert text == r["choices"][0]["text"], (text, r)
        # chat with logprobs: the held tokens keep their logprobs
        st, events, raw = sse_events(self.port, "/v1/chat/completions",
                                     chat_body("Once upon a time", max_tokens=12, stream=True,
                                               logprobs=True))
        assert st == 200 and events[0]["spillway"]["route"] == "local", events[0]
        n_lp = sum(len(e["choices"][0]["logprobs"]["content"]) for e in events[1:-1]
                   if e.get("choices") and e["choices"][0].get("logprobs"))
        assert n_lp >= 8, (n_lp, raw[-500:])
        assert self.fake.hits() == 0
        # low confidence: sampling far from the model's choices (raw logprobs
        # judge the sampled tokens) -> the local answer is dropped unseen
        cancelled = metric_series(self.port, "spillway_generations_total").get(
            '{reason="cancelled"}', 0)
        # (max_tokens well past the window, so that the cancel lands mid-answer)
        wild = {"prompt": "Once upon a time", "max_tokens": 120, "temperature": 2.0, "top_k": 0,
                "top_p": 1.0, "min_p": 0.0, "seed": 1234}
        st, h, data = request(self.port, "POST", "/v1/completions", wild)
        r = json.loads(data)
        assert st == 200 and route_of(h) == "cloud; reason=low_confidence", (st, h, r)
        mon = r["spillway"]["monitor"]
        assert mon["verdict"] == "escalate" and mon["failed_check"], mon
        assert r["choices"][0]["text"] == "fake reply: Once upon a time", r
        st, events, raw = sse_events(self.port, "/v1/completions", dict(wild, stream=True))
        assert st == 200 and events[0]["spillway"]["reason"] == "low_confidence", raw[:400]
        text = "".join(e["choices"][0]["text"] for e in events[:-1])
        assert text == "fake reply: Once upon a time", text  # nothing local leaked
        assert self.fake.hits() == 2
        # the abandoned local generations were cancelled, not left running (the
        # stream's local answer runs on, held, until the cloud's first text,
        # so that a failing cloud loses nothing: it may have ended by then)
        wait_for(lambda: metric(self.port, "spillway_requests_running") == 0, "no running requests")
        now = metric_series(self.port, "spillway_generations_total").get('{reason="cancelled"}', 0)
        assert now >= cancelled + 1, (cancelled, now)
        # the same wild request with personal data is kept local
        st, h, data = request(self.port, "POST", "/v1/completions",
                              dict(wild, prompt=EMAIL, max_tokens=24))
        assert st == 200 and route_of(h) == "local; reason=pii", (st, h, data)
        assert self.fake.hits() == 2

    def test_monitor_stream_opens_at_once(self):
        """A stream under the probe window sends its opening event at once
        (route local, "probing": true; header "...; probing") and holds back
        only the window's text; the final route comes in a later event (the
        first one after the verdict, and the closing one). Escalated, the same
        stream goes on with the cloud's answer and no local text."""
        if not self.stories:
            print("(skipped: the thresholds are tuned to stories260K's confidence)")
            return
        self.fake.reset()
        # (the context is 128 tokens: the chat prompt and 64 fit)
        wild = {"max_tokens": 64, "temperature": 2.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                "seed": 1234, "stream": True}
        calm = {"max_tokens": 24, "temperature": 0, "stream": True}
        for body, want in ((chat_body("Once upon a time", **calm), "local"),
                           (chat_body("Once upon a time", **wild), "cloud")):
            st, h, data = request(self.port, "POST", "/v1/chat/completions", body)
            assert st == 200 and route_of(h) == "local; reason=default; probing", (st, h)
            events = [json.loads(b[6:]) for b in data.decode().split("\n\n")
                      if b.startswith("data: {")]
            assert data.decode().rstrip().endswith("data: [DONE]"), data[-200:]
            first = events[0]
            assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}, first
            assert first["spillway"]["route"] == "local" and first["spillway"]["probing"], first
            assert "monitor" not in first["spillway"], first  # no verdict yet
            decided = [e["spillway"] for e in events[1:] if "spillway" in e]
            assert len(decided) >= 1 and all(d == decided[-1] for d in decided), decided
            final = decided[-1]
            assert final["route"] == want and "probing" not in final, final
            assert "finish_reason" in events[-1]["choices"][0] and "spillway" in events[-1]
            text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
            if want == "cloud":
                assert final["reason"] == "low_confidence", final
                assert final["monitor"]["verdict"] == "escalate", final
                assert text == "fake reply: Once upon a time", text  # no local text
                assert events[-1]["model"] == CLOUD_MODEL, events[-1]
            else:
                assert final["monitor"]["verdict"] == "pass", final
                whole = json.loads(request(self.port, "POST", "/v1/chat/completions",
                                           dict(body, stream=False))[2])
                assert text == whole["choices"][0]["message"]["content"], (text, whole)
        # the escalation's cloud call fails before any text: the held local
        # answer goes out after all, whole (reason cloud_failed)
        self.fake.control(script=["500"])
        body = chat_body("Once upon a time", **wild)
        st, h, data = request(self.port, "POST", "/v1/chat/completions", body)
        events = [json.loads(b[6:]) for b in data.decode().split("\n\n") if b.startswith("data: {")]
        final = [e["spillway"] for e in events if "spillway" in e][-1]
        assert st == 200 and final["route"] == "local" and final["reason"] == "cloud_failed", final
        assert "HTTP 500" in final["cloud_error"]["message"], final
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
        local = json.loads(request(self.port, "POST", "/v1/chat/completions",
                                   dict(body, stream=False, spillway={"route": "local"}))[2])
        assert text == local["choices"][0]["message"]["content"] and text, (text, local)
        assert self.fake.hits() == 2, self.fake.stats()
        # Anthropic (temperature <= 1 there: a policy that distrusts every
        # answer): message_start says probing; the final spillway rides on the
        # first content_block_start and on message_delta
        srv = cloud_server(self.model, self.fake, {"monitor": {
            "probe_tokens": 4, "min_tokens": 2, "min_mean_logprob": 0}}, ctx=256)
        try:
            body = {"model": "x", "max_tokens": 32, "stream": True,
                    "messages": [{"role": "user", "content": "Once upon a time"}]}
            st, h, data = request(srv.port, "POST", "/v1/messages", body)
        finally:
            srv.stop()
        assert st == 200 and route_of(h) == "local; reason=default; probing", (st, h, data)
        evs = []
        for block in data.decode().split("\n\n"):
            if block.strip():
                name, payload = block.split("\n", 1)
                evs.append((name[len("event: "):], json.loads(payload[len("data: "):])))
        names = [n for n, _ in evs]
        assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"], names
        assert names[1] == "content_block_start", names
        start = evs[0][1]["message"]
        assert start["spillway"]["probing"] and start["spillway"]["route"] == "local", start
        for n, e in (evs[1], evs[-2]):
            assert e["spillway"]["route"] == "cloud" and "probing" not in e["spillway"], (n, e)
        assert evs[-2][1]["usage"]["output_tokens"] > 0, evs[-2]
        text = "".join(e["delta"]["text"] for n, e in evs if n == "content_block_delta")
        assert text == "fake reply: Once upon a time", text
        assert self.fake.hits() == 3

    def test_key_never_shown(self):
        self.fake.reset()
        self.fake.control(script=["echo_key"])
        st, h, data = request(self.port, "POST", "/v1/chat/completions",
                              chat_body("hi", max_tokens=4, spillway={"route": "cloud"}))
        assert st == 502, (st, data)
        assert KEY not in data.decode() and KEY[:12] not in data.decode(), data
        err = json.loads(data)["error"]
        assert err["type"] == "upstream_error" and err["message"], err
        assert KEY not in self.srv.logs()

    def test_ledger_usage_metrics(self):
        # runs last (sorted): every request so far is in the ledger
        def lines():
            with open(self.ledger) as f:
                return [json.loads(x) for x in f if x.strip()]
        wait_for(lambda: usage(self.port)["requests"]["total"] == len(lines()), "ledger settles")
        time.sleep(0.3)
        ls = lines()
        u = usage(self.port)
        assert u["object"] == "spillway.usage" and u["reference_model"] == CLOUD_MODEL, u
        assert u["requests"]["total"] == len(ls) > 10, (u, len(ls))
        keys = ["time", "request_id", "route", "reason", "model", "tokens_in", "tokens_out",
                "latency_ms", "cost_usd", "savings_usd", "status", "redacted", "redacted_kinds"]
        for x in ls:
            assert list(x) == keys, x
        for route in ("local", "cloud", "reject"):
            mine = [x for x in ls if x["route"] == route]
            assert u["requests"][route] == len(mine), (route, u, len(mine))
            for reason in {x["reason"] for x in mine}:
                n = sum(1 for x in mine if x["reason"] == reason)
                assert u["reasons"][route][reason] == n, (route, reason, u["reasons"])
        cloud = [x for x in ls if x["route"] == "cloud" and x["status"] == "ok"]
        assert cloud and all(x["model"] == CLOUD_MODEL and x["cost_usd"] > 0 for x in cloud)
        assert all(x["tokens_out"] > 0 for x in cloud)
        for x in cloud:
            want = (x["tokens_in"] * 3.0 + x["tokens_out"] * 15.0) / 1e6
            assert abs(x["cost_usd"] - want) < 1e-9, x
        local = [x for x in ls if x["route"] == "local" and x["status"] == "ok"]
        assert local and all(x["savings_usd"] > 0 and x["cost_usd"] == 0 for x in local)
        assert all(x["status"] == "error" for x in ls if x["route"] == "reject")
        assert abs(u["cost_usd"] - sum(x["cost_usd"] for x in ls)) < 1e-6, u
        assert abs(u["savings_usd"] - sum(x["savings_usd"] for x in ls)) < 1e-6, u
        assert u["tokens"]["cloud"]["output"] == sum(x["tokens_out"] for x in ls
                                                     if x["route"] == "cloud")
        ids = [x["request_id"] for x in ls]
        assert len(set(ids)) == len(ids), "one line per request"
        # the same totals in /metrics
        series = metric_series(self.port, "spillway_route_requests_total")
        for route in ("local", "cloud", "reject"):
            total = sum(v for k, v in series.items() if f'route="{route}"' in k)
            assert total == u["requests"][route], (route, series, u)
        cost = metric(self.port, "spillway_cloud_cost_usd_total")
        assert abs(cost - u["cost_usd"]) < 1e-6, (cost, u)
        assert KEY not in self.srv.logs()


# ---------------------------------------------------------------------------
# suite B: a failing cloud, the breaker, explicit cloud errors

def test_cloud_down(model, fake):
    rc = {"default_route": "cloud",  # every request tries the cloud (reason policy_cloud)
          "monitor": {"enabled": False},
          "cloud": {"max_attempts": 1, "breaker_failures": 2, "breaker_cooldown_s": 2}}
    srv = cloud_server(model, fake, rc)
    try:
        p = srv.port
        fake.reset()
        fake.control(default="500")
        st, h, data = request(p, "POST", "/v1/chat/completions", chat_body("hi", max_tokens=6))
        r = json.loads(data)
        assert st == 200 and route_of(h) == "local; reason=cloud_failed", (st, h, r)
        sp = r["spillway"]
        assert sp["cloud_error"]["status"] == 502 and sp["cloud_error"]["type"], sp
        assert r["model"] == local_name() and r["usage"]["completion_tokens"] > 0
        fake.control(default="reset")  # the connection is cut: the same outcome
        st, events, raw = sse_events(p, "/v1/chat/completions",
                                     chat_body("hi", max_tokens=6, stream=True))
        assert st == 200 and events[0]["spillway"]["reason"] == "cloud_failed", raw[:400]
        assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1]), raw[-300:]
        assert fake.hits() == 2
        # two failures: the breaker is open; the cloud is skipped without a hit
        t0 = time.time()
        st, h, data = request(p, "POST", "/v1/chat/completions", chat_body("hi", max_tokens=4))
        assert st == 200 and route_of(h) == "local; reason=cloud_unavailable", (st, h, data)
        assert time.time() - t0 < 1.5
        st, h, data = request(p, "POST", "/v1/chat/completions",
                              chat_body("hi", max_tokens=4, spillway={"route": "cloud"}))
        err = json.loads(data)["error"]
        assert st == 503 and err["code"] == "cloud_unavailable", (st, err)
        assert route_of(h) == "reject; reason=cloud_unavailable" and h.get("retry-after"), h
        st, h, data = request(p, "POST", "/v1/chat/completions", chat_body("hi", max_tokens=500))
        err = json.loads(data)["error"]
        assert st == 400 and err["code"] == "context_length_exceeded", (st, err)
        assert route_of(h) == "reject; reason=cloud_unavailable", h
        assert fake.hits() == 2
        # after the cool-down one probe goes through; success closes the breaker
        fake.control(default="ok")
        time.sleep(2.3)
        for _ in range(2):
            st, h, data = request(p, "POST", "/v1/chat/completions", chat_body("hi", max_tokens=4))
            assert st == 200 and route_of(h) == "cloud; reason=policy_cloud", (st, h, data)
            assert json.loads(data)["choices"][0]["message"]["content"] == "fake reply: hi"
        assert fake.hits() == 4
        # explicit cloud, or overflow, with the provider failing: its error, no local answer
        fake.control(default="500")
        st, h, data = request(p, "POST", "/v1/chat/completions",
                              chat_body("hi", max_tokens=4, spillway={"route": "cloud"}))
        err = json.loads(data)["error"]
        assert st == 502 and err["type"] == "upstream_error", (st, err)
        assert route_of(h) == "cloud; reason=explicit_cloud", h
        fake.control(default="429", retry_after="7")
        st, h, data = request(p, "POST", "/v1/chat/completions",
                              chat_body("hi", max_tokens=500, stream=True))
        err = json.loads(data)["error"]
        assert st == 503 and err["type"] == "rate_limited", (st, err)
        assert route_of(h) == "cloud; reason=overflow" and h.get("retry-after") == "7", h
        assert fake.hits() == 6
    finally:
        assert srv.stop() == 0


# ---------------------------------------------------------------------------
# suite C: the local queue spills over

def test_queue_full(model, fake):
    rc = {"queue_threshold": 1, "monitor": {"enabled": False}}
    srv = cloud_server(model, fake, rc, "--parallel", "1", ctx=512)
    try:
        p = srv.port
        fake.reset()
        long = {"max_tokens": 400, "temperature": 0, "ignore_eos": True}
        # Blockers with personal data: they stay local however long the
        # queue gets, and keep it non-empty while the batch arrives.
        blockers = [None] * 6

        def blocker(i):
            st, h, data = request(p, "POST", "/v1/completions", dict(long, prompt=EMAIL),
                                  timeout=180)
            blockers[i] = (st, route_of(h))

        bt = [threading.Thread(target=blocker, args=(i,)) for i in range(6)]
        for t in bt:
            t.start()
        wait_for(lambda: (metric(p, "spillway_requests_waiting") or 0) >= 1, "a waiting request")
        n = 6
        results = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            body = dict(long, prompt="Once upon a time")
            if i == n - 1:
                body["spillway"] = {"private": True}
            barrier.wait(10)
            st, h, data = request(p, "POST", "/v1/completions", body, timeout=180)
            results[i] = (st, route_of(h), json.loads(data))

        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts + bt:
            t.join(240)
        assert all(b == (200, "local; reason=pii") for b in blockers), blockers
        assert all(r is not None and r[0] == 200 for r in results), results
        routes = [r[1] for r in results]
        assert routes[-1] == "local; reason=private", routes
        assert routes[:-1].count("cloud; reason=queue_full") >= 3, routes
        n_cloud = sum(1 for r in routes if r.startswith("cloud"))
        assert fake.hits() == n_cloud, (fake.stats(), routes)
        for st, route, body in results:
            if route.startswith("cloud"):
                assert body["choices"][0]["text"] == "fake reply: Once upon a time", body
                assert body["spillway"]["reason"] == "queue_full"
                assert "local queue" in body["spillway"]["message"], body["spillway"]
            else:
                assert body["usage"]["completion_tokens"] == 400, body["usage"]
    finally:
        assert srv.stop() == 0


# ---------------------------------------------------------------------------
# a second spillway-server as an OpenAI-compatible cloud

def test_two_servers(model, fake):
    del fake
    big_key = "sk-big-0123456789"
    big = Server(model, "--ctx", "512", "--api-key", big_key)
    small = None
    try:
        small = Server(model, "--ctx", "64", "--cloud-provider", "openai", "--cloud-url",
                       big.base + "/v1", "--cloud-model", local_name(), "--cloud-key-env",
                       KEY_ENV, "--route-config", write_json("rc2.json",
                                                             {"monitor": {"enabled": False}}),
                       env={KEY_ENV: big_key})
        msgs = [{"role": "user", "content": "Once upon a time"}]
        direct = client(big, big_key).chat.completions.create(
            model=local_name(), messages=msgs, max_tokens=100, temperature=0)
        c = client(small)
        before = metric(small.port, "spillway_prompt_tokens_total")
        raw = c.chat.completions.with_raw_response.create(
            model=local_name(), messages=msgs, max_tokens=100, temperature=0)
        assert raw.headers["x-spillway-route"] == "cloud; reason=overflow", raw.headers
        r = raw.parse()
        assert r.choices[0].message.content == direct.choices[0].message.content, (r, direct)
        assert r.usage.completion_tokens == direct.usage.completion_tokens
        assert r.usage.prompt_tokens == direct.usage.prompt_tokens
        assert r.model_extra["spillway"]["cloud"]["provider"] == "openai"
        chunks = list(c.chat.completions.create(
            model=local_name(), messages=msgs, max_tokens=100, temperature=0, stream=True,
            stream_options={"include_usage": True}))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == direct.choices[0].message.content, (text, direct)
        assert chunks[-1].usage.completion_tokens == direct.usage.completion_tokens
        assert chunks[0].model_extra["spillway"]["reason"] == "overflow"
        assert metric(small.port, "spillway_prompt_tokens_total") == before
        # the big server served them: its ledger says local
        wait_for(lambda: usage(big.port, {"Authorization": "Bearer " + big_key})["requests"]
                 ["local"] == 3, "big server's ledger")
        wait_for(lambda: usage(small.port)["requests"]["cloud"] == 2, "small server's ledger")
        # a fitting request stays on the small server
        st, h, _ = request(small.port, "POST", "/v1/chat/completions",
                           chat_body("Hi", max_tokens=4))
        assert st == 200 and route_of(h) == "local; reason=default", h
        # JSON mode goes with a spilled request: the cloud answers in JSON too
        fmt = {"type": "json_object"}
        jd = client(big, big_key).chat.completions.create(
            model=local_name(), messages=msgs, max_tokens=100, temperature=0,
            response_format=fmt)
        js = c.chat.completions.create(model=local_name(), messages=msgs, max_tokens=100,
                                       temperature=0, response_format=fmt)
        assert jd.choices[0].message.content.lstrip().startswith("{"), jd
        assert js.choices[0].message.content == jd.choices[0].message.content, (js, jd)
    finally:
        if small:
            assert small.stop() == 0
        assert big.stop() == 0


# ---------------------------------------------------------------------------
# startup: bad policy files and flags

def test_bad_config(model, fake):
    b = server_bin()
    cases = [("unknown key", {"monitor": {"probe_tokenz": 4}}, "monitor.probe_tokenz"),
             ("wrong type", {"queue_threshold": "many"}, "queue_threshold"),
             ("bad provider", {"cloud": {"provider": "acme", "model": "x"}}, "cloud.provider"),
             ("bad pii", {"pii": ["email", "dna"]}, "pii[1]"),
             ("key policy", {"keys": {"sk-secret-value": {"privte": True}}}, "keys[0].privte"),
             ("not json", "{ nope", "not valid JSON")]
    for what, rc, needle in cases:
        path = write_json("bad.json", rc)
        r = subprocess.run([b, "-m", model, "--port", "0", "--route-config", path],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (what, r.returncode, r.stderr)
        assert needle in r.stderr, (what, r.stderr)
        assert "sk-secret-value" not in r.stderr, r.stderr
    for args in (["--route-config", "/nonexistent/rc.json"],
                 ["--cloud-url", fake.url],  # a cloud without a model
                 ["--cloud-provider", "acme"], ["--cloud-url", "ftp://x"]):
        r = subprocess.run([b, "-m", model, "--port", "0", *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args


def test_doc_example(model, fake):
    """The policy file documented in docs/fallback.md loads as written
    (comments and all); with its key variable unset the cloud is never tried."""
    del fake
    src = os.environ.get("SW_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(src, "docs", "fallback.md")) as f:
        doc = f.read()
    block = doc[doc.index("## Policy file"):]
    block = block[block.index("```json") + len("```json"):]
    block = block[:block.index("```")]
    ledger = os.path.join(tmp_dir(), f"spill-{os.getpid()}-doc-ledger.jsonl")
    block = block.replace("/var/lib/spillway/ledger.jsonl", ledger)
    srv = Server(model, "--route-config", write_json("doc.json", block),
                 "--cloud-key-env", "SW_TEST_SPILL_UNSET_VARIABLE")
    try:
        assert "NOT SET" in srv.logs(), srv.logs()
        u = usage(srv.port)
        assert u["reference_model"] == "claude-sonnet-4-5", u
        st, h, data = request(srv.port, "POST", "/v1/chat/completions",
                              chat_body("Hi", max_tokens=4))
        assert st == 200 and route_of(h) == "local; reason=default", (st, h, data)
        st, h, data = request(srv.port, "POST", "/v1/chat/completions",
                              chat_body("Hi", max_tokens=4),
                              {"Authorization": "Bearer sk-hr-team"})
        assert st == 200 and route_of(h) == "local; reason=private", (st, h, data)
        st, h, data = request(srv.port, "POST", "/v1/chat/completions",
                              chat_body("Hi", max_tokens=4, spillway={"route": "cloud"}))
        assert st == 503 and route_of(h) == "reject; reason=cloud_unavailable", (st, h, data)
        wait_for(lambda: os.path.exists(ledger) and len(open(ledger).readlines()) == 3,
                 "three ledger lines")
    finally:
        assert srv.stop() == 0


_MODEL = None


def local_name():
    """What the served model is called: its file name without .gguf (stories260K,
    or the synthetic model's name when ../shared is absent)."""
    return os.path.splitext(os.path.basename(_MODEL))[0]


def main():
    global _MODEL
    model, stories = find_model()
    _MODEL = model
    print(f"model: {model}; server: {server_bin()}")
    fake = Fake()
    suite = None
    try:
        suite = SuiteA(model, fake, stories)
        names = sorted(n for n in dir(suite) if n.startswith("test_"))
        # the ledger check last: it accounts for every request before it
        names.sort(key=lambda n: n == "test_ledger_usage_metrics")
        tests = [(n, getattr(suite, n)) for n in names]
        tests += [("test_cloud_down", lambda: test_cloud_down(model, fake)),
                  ("test_queue_full", lambda: test_queue_full(model, fake)),
                  ("test_two_servers", lambda: test_two_servers(model, fake)),
                  ("test_bad_config", lambda: test_bad_config(model, fake)),
                  ("test_doc_example", lambda: test_doc_example(model, fake))]
        only = os.environ.get("SW_TEST_ONLY")
        if only:
            tests = [t for t in tests if only in t[0]]
        run(tests)
    finally:
        rc = suite.srv.stop() if suite else 0
        fake.stop()
        if rc != 0:
            print(f"server exited with {rc}:\n{suite.srv.logs()}")
            sys.exit(1)


if __name__ == "__main__":
    main()
