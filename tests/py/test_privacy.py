"""Privacy-preserving spill-over end to end, and the ledger of every request.

spillway-server spills to tests/py/fake_provider.py, which records every
request body it receives, byte for byte. With the PII action "redact":
e-mail addresses, phone numbers, card numbers, IBANs and SSNs never reach
the fake (checked raw, JSON-decoded, and with separators removed), every
one comes back in the client's answer, whole and streamed (also when the
cloud streams 3 characters per delta, so placeholders arrive cut), in chat
and completions, from system and user messages; the "spillway" object, the
ledger lines and /v1/usage count the redacted spans, never the values; the
server log never shows them. Private requests and local-only keys never
leave, redaction or not; "refuse" answers 400 pii_detected; a key's action
wins over the request's. A server without any cloud counts its local
requests in /v1/usage and prices their savings at the policy's
reference_price, and /v1/usage?bucket= returns the time series.

Environment as tests/py/test_server.py (SW_SERVER_BIN for the ASan build)."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, find_model, request, run, server_bin, sse_events  # noqa: E402
from test_spill import CLOUD_MODEL, KEY, KEY_ENV, Fake, chat_body, route_of, usage, wait_for, \
    write_json  # noqa: E402

# Every kind, in more than one spelling. None of them may leave the server.
VALUES = {
    "email": ["jane.doe@example.com", "bob+ops@mail.example.org"],
    "phone": ["(415) 555-2671", "+44 20 7946 0958"],
    "card": ["4111 1111 1111 1111", "5555555555554444"],
    "iban": ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"],
    "ssn": ["123-45-6789"],
}
ALL = [v for vs in VALUES.values() for v in vs]
TEXT = ("Customer jane.doe@example.com (cc bob+ops@mail.example.org) called from (415) 555-2671 "
        "and +44 20 7946 0958. Cards 4111 1111 1111 1111 and 5555555555554444; IBANs "
        "GB82 WEST 1234 5698 7654 32 / DE89370400440532013000; SSN 123-45-6789. "
        "Write again to jane.doe@example.com.")
SYSTEM = "The account owner is jane.doe@example.com with card 4111 1111 1111 1111."


def squash(s):
    return re.sub(r"[\s\-().+/]", "", s)


def assert_nothing_left(fake, values=ALL):
    """No value in anything the fake received: raw, JSON-decoded, or with the
    separators of phone/card/IBAN spellings removed."""
    st, _, data = request(fake.port, "GET", "/_received")
    assert st == 200, data
    bodies = json.loads(data)["bodies"]
    for b in bodies:
        decoded = json.dumps(json.loads(b), ensure_ascii=False)
        for v in values:
            for hay in (b, decoded):
                assert v not in hay, f"{v!r} reached the cloud: {hay[:400]}"
            if len(squash(v)) >= 10:
                assert squash(v) not in squash(decoded), f"{v!r} reached the cloud (squashed)"
    return bodies


def answer_text(r):
    return r["choices"][0]["message"]["content"]


def stream_text(events):
    return "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in events if e != "[DONE]" and e.get("choices"))


class Suite:
    def __init__(self, model, fake):
        self.fake = fake
        self.ledger = os.path.join(os.environ.get("SW_TMP_DIR") or "/tmp",
                                   f"privacy-{os.getpid()}-ledger.jsonl")
        if os.path.exists(self.ledger):
            os.unlink(self.ledger)
        rc = {"pii": {"action": "redact"},
              "keys": {"sk-private": {"private": True}, "sk-local": {"local_only": True},
                       "sk-careful": {"pii": "local"}, "sk-strict": {"pii": "refuse"}},
              "monitor": {"enabled": False},
              "cloud": {"max_attempts": 1},
              "prices": {"fake-claude*": {"input": 3.0, "output": 15.0}},
              "ledger": self.ledger}
        # SW_LOG=debug: the log says what was redacted (counts, kinds), and
        # must never show a value
        self.srv = Server(model, "--ctx", "128", "--cloud-provider", "anthropic", "--cloud-url",
                          fake.url, "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                          "--route-config", write_json("privacy.json", rc),
                          env={KEY_ENV: KEY, "SW_LOG": "debug"})
        self.port = self.srv.port

    def chat(self, body, headers=None):
        st, h, data = request(self.port, "POST", "/v1/chat/completions", body, headers)
        return st, h, json.loads(data)

    def test_whole_and_streamed(self):
        self.fake.reset()
        # overflow: too long for the local context (128), so it must spill
        body = chat_body(TEXT, max_tokens=200)
        st, h, r = self.chat(body)
        assert st == 200 and route_of(h) == "cloud; reason=overflow", (st, h, r)
        assert answer_text(r) == "fake reply: " + TEXT, answer_text(r)
        sp = r["spillway"]
        assert sp["redacted"]["spans"] == 10, sp
        assert sorted(sp["redacted"]["kinds"]) == sorted(VALUES), sp
        assert "personal data redacted" in sp["message"], sp
        assert not any(v in json.dumps(sp) for v in ALL), sp
        bodies = assert_nothing_left(self.fake)
        sent = json.loads(bodies[-1])["messages"][-1]["content"]
        assert "[EMAIL_1]" in sent and "[CARD_2]" in sent and "[SSN_1]" in sent, sent
        assert sent.count("[EMAIL_1]") == 2, sent  # the same value, the same placeholder
        # streamed: words, then 3-character deltas that cut placeholders
        for mode in ("ok", "tiny"):
            self.fake.reset()
            self.fake.control(default=mode)
            st, events, raw = sse_events(self.port, "/v1/chat/completions", dict(body, stream=True))
            assert st == 200, raw[:300]
            assert stream_text(events) == "fake reply: " + TEXT, (mode, stream_text(events))
            assert events[0]["spillway"]["redacted"]["spans"] == 10, events[0]
            assert "[EMAIL" not in raw and "[CARD" not in raw, raw  # no placeholder escapes
            assert_nothing_left(self.fake)
        self.fake.control(default="ok")

    def test_system_and_completions(self):
        self.fake.reset()
        self.fake.control(default="echo_all+tiny")
        body = {"messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": [{"type": "text", "text": TEXT}]}],
                "max_tokens": 200, "temperature": 0}
        want = "fake reply: " + SYSTEM + " | " + TEXT
        st, h, r = self.chat(body)
        assert st == 200 and answer_text(r) == want, (st, r)
        st, events, raw = sse_events(self.port, "/v1/chat/completions", dict(body, stream=True))
        assert st == 200 and stream_text(events) == want, stream_text(events)
        self.fake.control(default="ok")
        # completions: the prompt goes out as one (redacted) user message
        st, h, data = request(self.port, "POST", "/v1/completions", {"prompt": TEXT, "max_tokens": 200})
        r = json.loads(data)
        assert st == 200 and route_of(h) == "cloud; reason=overflow", (st, h, r)
        assert r["choices"][0]["text"] == "fake reply: " + TEXT, r
        st, events, raw = sse_events(self.port, "/v1/completions",
                                     {"prompt": TEXT, "max_tokens": 200, "stream": True})
        assert st == 200
        assert "".join(e["choices"][0]["text"] for e in events
                       if e != "[DONE]" and e.get("choices")) == "fake reply: " + TEXT
        assert self.fake.hits() == 4
        assert_nothing_left(self.fake)

    def test_fitting_request_stays_local(self):
        # redact only matters when the request leaves: a short one is local
        self.fake.reset()
        st, h, r = self.chat(chat_body("Mail jane.doe@example.com", max_tokens=4))
        assert st == 200 and route_of(h) == "local; reason=default", (st, h, r)
        assert "redacted" not in r["spillway"], r
        # ... unless it asks for the cloud
        st, h, r = self.chat(chat_body("Mail jane.doe@example.com", max_tokens=8,
                                       spillway={"route": "cloud"}))
        assert st == 200 and route_of(h) == "cloud; reason=explicit_cloud", (st, h, r)
        assert answer_text(r) == "fake reply: Mail jane.doe@example.com", r
        assert_nothing_left(self.fake)

    def test_private_never_leaves(self):
        self.fake.reset()
        over = chat_body(TEXT, max_tokens=200)
        for what, body, hdr, reason in [
                ("body", dict(over, spillway={"private": True, "pii": "redact"}), {}, "private"),
                ("header", over, {"X-Spillway-Private": "1"}, "private"),
                ("key", over, {"Authorization": "Bearer sk-private"}, "private"),
                ("local_only key", over, {"Authorization": "Bearer sk-local"}, "policy_local"),
                ("key pii local", dict(over, spillway={"pii": "redact"}),
                 {"Authorization": "Bearer sk-careful"}, "pii"),
                ("request pii local", dict(over, spillway={"pii": "local"}), {}, "pii")]:
            st, h, r = self.chat(body, hdr)
            assert st == 400 and r["error"]["code"] == "context_length_exceeded", (what, st, r)
            assert route_of(h) == f"reject; reason={reason}", (what, h)
        # refuse: by key, or by the request
        for body, hdr in [(chat_body(TEXT, max_tokens=4), {"Authorization": "Bearer sk-strict"}),
                          (chat_body(TEXT, max_tokens=4, spillway={"pii": "refuse"}), {})]:
            st, h, r = self.chat(body, hdr)
            assert st == 400 and r["error"]["code"] == "pii_detected", (st, r)
            assert route_of(h) == "reject; reason=pii", h
            assert not any(v in json.dumps(r) for v in ALL), r
        st, h, r = self.chat(chat_body("hi", spillway={"pii": "maybe"}))
        assert st == 400 and r["error"]["param"] == "spillway.pii", r
        assert self.fake.hits() == 0, self.fake.stats()

    def test_ledger_and_log(self):
        # runs last: every request before it is in the ledger
        def lines():
            with open(self.ledger) as f:
                return [json.loads(x) for x in f if x.strip()]
        # One consistent snapshot: the usage totals the same before and after
        # reading the ledger, and equal to its line count (a streamed request
        # of an earlier test may still be recording while this one starts).
        snap = {}

        def settled():
            u0 = usage(self.port)
            ls = lines()
            u = usage(self.port)
            snap.update(ls=ls, u=u)
            return u0["requests"]["total"] == u["requests"]["total"] == len(ls)
        wait_for(settled, "ledger settles")
        ls, u = snap["ls"], snap["u"]
        red = [x for x in ls if x["redacted"]]
        assert red and all(x["route"] == "cloud" for x in red), ls
        assert u["redacted"]["requests"] == len(red), u
        assert u["redacted"]["spans"] == sum(x["redacted"] for x in ls), u
        assert {k for x in red for k in x["redacted_kinds"].split(",")} == set(VALUES), red
        with open(self.ledger) as f:
            raw = f.read()
        self.srv.log.flush()
        with open(self.srv.log_path) as f:
            log = f.read()
        assert "span(s) of personal data redacted" in log, log[-2000:]
        for v in ALL:
            assert v not in raw, f"{v!r} in the ledger"
            assert v not in log, f"{v!r} in the server log"
        assert KEY not in log


def test_escalation(model, fake):
    """A redact request answered locally first: when the monitor distrusts the
    local answer, the escalated cloud call is redacted too."""
    fake.reset()
    rc = {"pii": {"action": "redact"},
          # min_mean_logprob 0: every answer of min_tokens tokens escalates
          "monitor": {"probe_tokens": 4, "min_tokens": 2, "min_mean_logprob": 0},
          "cloud": {"max_attempts": 1}}
    srv = Server(model, "--ctx", "512", "--cloud-provider", "anthropic", "--cloud-url", fake.url,
                 "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                 "--route-config", write_json("privacy-esc.json", rc), env={KEY_ENV: KEY})
    try:
        body = chat_body(TEXT, max_tokens=16)
        st, h, data = request(srv.port, "POST", "/v1/chat/completions", body)
        r = json.loads(data)
        assert st == 200 and route_of(h) == "cloud; reason=low_confidence", (st, h, r)
        assert answer_text(r).startswith("fake reply: Customer jane.doe@example.com"), r
        assert r["spillway"]["redacted"]["spans"] == 10, r["spillway"]
        st, events, raw = sse_events(srv.port, "/v1/chat/completions", dict(body, stream=True))
        assert st == 200 and stream_text(events).startswith("fake reply: Customer jane.doe@"), raw[:300]
        assert fake.hits() == 2
        assert_nothing_left(fake)
    finally:
        assert srv.stop() == 0


def test_no_cloud(model):
    """No cloud at all: every request is counted, savings at reference_price,
    and the time series has them."""
    rc = {"reference_price": {"model": "gpt-4o", "input": 2.5, "output": 10.0}}
    srv = Server(model, "--route-config", write_json("nocloud.json", rc))
    try:
        for i in range(5):
            st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                                  chat_body(f"Hello {i}", max_tokens=4))
            assert st == 200, data
        wait_for(lambda: usage(srv.port)["requests"]["total"] == 5, "five requests counted")
        u = usage(srv.port)
        assert u["requests"]["local"] == 5 and u["reasons"]["local"]["default"] == 5, u
        assert u["reference_model"] == "gpt-4o" and u["savings_usd"] > 0, u
        toks = u["tokens"]["local"]
        want = (toks["input"] * 2.5 + toks["output"] * 10.0) / 1e6
        assert abs(u["savings_usd"] - want) < 1e-9, (u, want)
        for bucket, width in (("minute", 60), ("hour", 3600), ("day", 86400)):
            st, _, data = request(srv.port, "GET", f"/v1/usage?bucket={bucket}&n=3")
            s = json.loads(data)
            assert st == 200 and s["series"]["bucket"] == bucket, (st, s)
            assert s["series"]["bucket_s"] == width
            assert s["series"]["end"] - s["series"]["start"] == 3 * width, s["series"]
            pts = s["series"]["points"]
            assert sum(p["requests"]["local"] for p in pts) == 5, pts
            assert abs(sum(p["savings_usd"] for p in pts) - u["savings_usd"]) < 1e-9
            assert all(s["series"]["start"] <= p["t"] < s["series"]["end"] for p in pts)
        st, _, data = request(srv.port, "GET", "/v1/usage?bucket=minute")
        assert st == 200 and json.loads(data)["series"]["end"] - json.loads(data)["series"]["start"] == 3600
        for q, param in (("bucket=week", "bucket"), ("bucket=hour&n=0", "n"),
                         ("bucket=day&n=401", "n"), ("bucket=day&n=3x", "n"), ("n=3", "n")):
            st, _, data = request(srv.port, "GET", "/v1/usage?" + q)
            e = json.loads(data)
            assert st == 400 and e["error"]["param"] == param, (q, st, e)
        # private requests count too (reason private)
        st, _, _ = request(srv.port, "POST", "/v1/chat/completions",
                           chat_body("hi", max_tokens=2), {"X-Spillway-Private": "1"})
        assert st == 200
        wait_for(lambda: usage(srv.port)["requests"]["total"] == 6, "six requests counted")
    finally:
        assert srv.stop() == 0


def main():
    model, _ = find_model()
    print(f"model: {model}; server: {server_bin()}")
    fake = Fake()
    suite = None
    try:
        suite = Suite(model, fake)
        names = sorted(n for n in dir(suite) if n.startswith("test_"))
        names.sort(key=lambda n: n == "test_ledger_and_log")
        tests = [(n, getattr(suite, n)) for n in names]
        tests.append(("test_escalation", lambda: test_escalation(model, fake)))
        tests.append(("test_no_cloud", lambda: test_no_cloud(model)))
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
