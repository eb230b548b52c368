"""What existing client code expects of spillway-server beyond chat: any model
name served (the README's example runs as written, unknown names take the
automatic route and the answer names who answered; --strict-model-names
restores the 404; the policy file maps names to routes and /v1/models lists
them), CORS (preflight on every endpoint, localhost origins by default,
--cors-origin, the headers on every response including errors and streams),
and /v1/embeddings with the openai SDK (strings, lists, token ids, base64,
dimensions, usage; a batch equals its inputs one by one; on SmolLM2 similar
sentences are closer than unrelated ones).

Environment as tests/py/test_server.py (SW_SERVER_BIN for the ASan build)."""
import base64
import json
import os
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, client, find_model, post_json, request, run_suite, server_bin  # noqa: E402
from test_spill import CLOUD_MODEL, KEY, KEY_ENV, Fake, write_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def smollm2():
    """The SmolLM2 path, or None with the reason printed (the test skips)."""
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-model.sh"), "smollm2"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP (part): SmolLM2 unavailable: {r.stderr.strip()[-300:]}")
        return None
    return r.stdout.strip()


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


class Suite:
    def __init__(self, model):
        self.srv = Server(model)
        self.port = self.srv.port
        self.c = client(self.srv)
        self.model_id = os.path.basename(model)[:-5]

    # -- model names --

    def test_readme_example(self):
        """The README's Python examples (openai and anthropic), as written
        (only the port differs)."""
        readme = open(os.path.join(ROOT, "README.md")).read()
        blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
                  if "127.0.0.1:8080" in b]
        assert any("OpenAI(" in b and 'model="any"' in b for b in blocks), blocks
        assert any("Anthropic(" in b and 'model="any"' in b for b in blocks), blocks
        for code in blocks:
            code = code.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120)
            assert r.returncode == 0, r.stderr[-2000:]
            assert r.stdout.strip(), "the example printed nothing"

    def test_any_model_name(self):
        for name in ("any", "gpt-3.5-turbo", "gpt-4o", "llama-test-model", "x" * 300):
            raw = self.c.chat.completions.with_raw_response.create(
                model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
            r = raw.parse()
            assert r.model == self.model_id, (name, r.model)  # who answered
            assert raw.headers["x-spillway-route"] == "local; reason=default", raw.headers
        st, body = post_json(self.port, "/v1/completions",
                             {"model": "text-davinci-003", "prompt": "Once", "max_tokens": 2})
        assert st == 200 and body["model"] == self.model_id, body
        st, _, data = request(self.port, "GET", "/v1/models/gpt-4o")
        m = json.loads(data)
        assert st == 200 and m["id"] == "gpt-4o" and m["meta"]["route"] == "auto", m

    # -- CORS --

    def test_cors_preflight(self):
        for path, method in (("/v1/chat/completions", "POST"), ("/v1/messages", "POST"),
                             ("/v1/embeddings", "POST"), ("/v1/models", "GET"),
                             ("/health", "GET"), ("/v1/models/x", "GET")):
            for origin in ("http://localhost:3000", "http://127.0.0.1", "https://[::1]:8443"):
                st, h, body = request(self.port, "OPTIONS", path, headers={
                    "Origin": origin, "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "content-type, authorization"})
                assert st == 204 and body == b"", (path, origin, st, body)
                assert h["access-control-allow-origin"] == origin, (path, h)
                assert method in h["access-control-allow-methods"], h
                assert h["access-control-allow-headers"] == "content-type, authorization", h
        # the same with curl, as a browser would send it
        r = subprocess.run(["curl", "-s", "-i", "-X", "OPTIONS",
                            f"http://127.0.0.1:{self.port}/v1/chat/completions",
                            "-H", "Origin: http://localhost:5173",
                            "-H", "Access-Control-Request-Method: POST",
                            "-H", "Access-Control-Request-Headers: content-type"],
                           capture_output=True, text=True, timeout=30)
        head = r.stdout.lower()
        assert r.returncode == 0 and head.startswith("http/1.1 204"), r.stdout[:500]
        assert "access-control-allow-origin: http://localhost:5173" in head, r.stdout[:800]
        # other origins are not allowed by default; lookalikes neither
        for origin in ("https://evil.example", "http://localhost.evil.example",
                       "http://127.0.0.1.nip.io", "null"):
            st, h, body = request(self.port, "OPTIONS", "/v1/chat/completions",
                                  headers={"Origin": origin,
                                           "Access-Control-Request-Method": "POST"})
            assert st == 403 and "access-control-allow-origin" not in h, (origin, st, h)
            assert json.loads(body)["error"]["code"] == "origin_not_allowed", body

    def test_cors_headers_everywhere(self):
        o = {"Origin": "http://localhost:8000"}
        cases = [("GET", "/v1/models", None, 200), ("GET", "/health", None, 200),
                 ("POST", "/v1/chat/completions", {"messages": "x"}, 400),   # error
                 ("POST", "/v1/messages", {"messages": []}, 400),             # Anthropic error
                 ("GET", "/v1/chat/completions", None, 405),
                 ("POST", "/v1/chat/completions",                            # a stream
                  {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3,
                   "stream": True}, 200)]
        for method, path, body, want in cases:
            st, h, data = request(self.port, method, path, body, o)
            assert st == want, (path, st, data[:200])
            assert h.get("access-control-allow-origin") == "http://localhost:8000", (path, h)
            assert "X-Spillway-Route" in h.get("access-control-expose-headers", "") or \
                path in ("/health", "/v1/models") or st >= 400, (path, h)
        st, h, _ = request(self.port, "GET", "/v1/models", headers={"Origin": "https://evil.example"})
        assert st == 200 and "access-control-allow-origin" not in h, h

    # -- embeddings --

    def test_embeddings_shape(self):
        r = self.c.embeddings.create(model="text-embedding-3-small", input="Once upon a time")
        assert r.object == "list" and len(r.data) == 1 and r.data[0].index == 0, r
        v = r.data[0].embedding
        assert len(v) > 0 and abs(sum(x * x for x in v) - 1) < 1e-4, len(v)
        assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens
        assert r.model == self.model_id, r.model
        texts = ["Once upon a time", "The cat sat", "A big red ball", "Lily went home"]
        batch = self.c.embeddings.create(model="any", input=texts)
        assert [d.index for d in batch.data] == [0, 1, 2, 3], batch
        for i, t in enumerate(texts):
            one = self.c.embeddings.create(model="any", input=t).data[0].embedding
            assert len(one) == len(v)
            assert cos(one, batch.data[i].embedding) > 0.99999, (t, cos(one, batch.data[i].embedding))
        assert batch.usage.prompt_tokens == sum(
            self.c.embeddings.create(model="any", input=t).usage.prompt_tokens for t in texts)
        # token ids: the same vector as the text they tokenize to
        st, _, data = request(self.port, "POST", "/tokenize",
                              {"content": "Once upon a time", "add_special": True})
        ids = json.loads(data)["tokens"]
        by_ids = self.c.embeddings.create(model="any", input=ids).data[0].embedding
        assert cos(by_ids, v) > 0.99999
        two = self.c.embeddings.create(model="any", input=[ids, ids[:2]])
        assert len(two.data) == 2 and cos(two.data[0].embedding, v) > 0.99999
        # base64: little-endian float32, the same numbers
        st, body = post_json(self.port, "/v1/embeddings",
                             {"input": "Once upon a time", "encoding_format": "base64"})
        raw = base64.b64decode(body["data"][0]["embedding"])
        f = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert st == 200 and len(f) == len(v) and max(abs(a - b) for a, b in zip(f, v)) < 1e-6
        # dimensions: its own size only
        st, body = post_json(self.port, "/v1/embeddings",
                             {"input": "x", "dimensions": len(v)})
        assert st == 200, body
        st, body = post_json(self.port, "/v1/embeddings", {"input": "x", "dimensions": 8})
        assert st == 400 and body["error"]["param"] == "dimensions", body

    def test_embeddings_errors(self):
        bad = [({}, "input"), ({"input": ""}, "input"), ({"input": []}, "input"),
               ({"input": [""]}, "input[0]"), ({"input": 5}, "input"),
               ({"input": ["a", 3]}, "input[1]"), ({"input": [1, "a"]}, "input[1]"),
               ({"input": [99999999]}, "input[0]"), ({"input": [[1], []]}, "input[1]"),
               ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
               ({"input": "x", "dimensions": "8"}, "dimensions"),
               ({"input": "x", "model": 5}, "model"),
               ({"input": ["x"] * 2049}, "input"),
               ({"input": "word " * 5000}, "input")]
        for body, param in bad:
            st, r = post_json(self.port, "/v1/embeddings", body)
            assert st == 400 and r["error"]["param"] == param, (body if len(str(body)) < 200 else param, st, r)
        st, _, _ = request(self.port, "GET", "/health")
        assert st == 200


def test_model_routes(model, fake):
    """The policy maps names to routes; /v1/models lists them;
    --strict-model-names refuses the rest."""
    fake.reset()
    rc = write_json("models-rc.json", {
        "monitor": {"enabled": False}, "cloud": {"max_attempts": 1},
        "models": {"gpt-4o": "cloud", "gpt-4o-mini": "local", "*": "auto"}})
    srv = Server(model, "--ctx", "256", "--cloud-provider", "anthropic", "--cloud-url", fake.url,
                 "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV, "--route-config", rc,
                 env={KEY_ENV: KEY})
    try:
        c = client(srv)
        ids = [(m.id, m.model_extra["meta"]["route"]) for m in c.models.list().data]
        local_id = ids[0][0]
        assert ids == [(local_id, "local"), (CLOUD_MODEL, "cloud"), ("gpt-4o", "cloud"),
                       ("gpt-4o-mini", "local")], ids
        msgs = [{"role": "user", "content": "Sing"}]
        raw = c.chat.completions.with_raw_response.create(model="gpt-4o", messages=msgs,
                                                          max_tokens=8)
        assert raw.headers["x-spillway-route"] == "cloud; reason=explicit_cloud", raw.headers
        r = raw.parse()
        assert r.model == CLOUD_MODEL and r.choices[0].message.content == "fake reply: Sing", r
        raw = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs,
                                                          max_tokens=2)
        assert raw.headers["x-spillway-route"] == "local; reason=explicit_local", raw.headers
        assert raw.parse().model == local_id
        raw = c.chat.completions.with_raw_response.create(model="whatever", messages=msgs,
                                                          max_tokens=2)
        assert raw.headers["x-spillway-route"] == "local; reason=default", raw.headers
        # a mapped route and a contradicting spillway.route
        st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                              {"model": "gpt-4o-mini", "messages": msgs,
                               "spillway": {"route": "cloud"}})
        err = json.loads(data)["error"]
        assert st == 400 and err["code"] == "route_conflict" and err["param"] == "model", err
        assert fake.hits() == 1
    finally:
        assert srv.stop() == 0
    bad = write_json("models-bad.json", {"models": {"gpt-4o": "moon"}})
    r = subprocess.run([server_bin(), "-m", model, "--port", "0", "--route-config", bad],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "models.gpt-4o" in r.stderr, r.stderr
    srv = Server(model, "--strict-model-names")
    try:
        c = client(srv)
        local_id = c.models.list().data[0].id
        assert c.chat.completions.create(model=local_id, max_tokens=2, messages=[
            {"role": "user", "content": "Hi"}]).model == local_id
        st, _, data = request(srv.port, "POST", "/v1/chat/completions",
                              {"model": "gpt-nope", "messages": [{"role": "user", "content": "x"}]})
        err = json.loads(data)["error"]
        assert st == 404 and err["code"] == "model_not_found" and local_id in err["message"], err
        st, _, data = request(srv.port, "GET", "/v1/models/gpt-nope")
        assert st == 404, data
        st, _, data = request(srv.port, "POST", "/v1/messages",
                              {"model": "gpt-nope", "max_tokens": 2, "messages": [
                                  {"role": "user", "content": "x"}]})
        assert st == 404 and json.loads(data)["error"]["type"] == "not_found_error", data
    finally:
        assert srv.stop() == 0


def test_cors_origin_flag(model):
    srv = Server(model, "--cors-origin", "https://app.example", "--cors-origin",
                 "http://localhost:9999")
    try:
        for origin, ok in (("https://app.example", True), ("http://localhost:9999", True),
                           ("http://localhost:3000", False), ("https://evil.example", False)):
            st, h, _ = request(srv.port, "OPTIONS", "/v1/embeddings",
                               headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
            assert (st == 204) == ok and (h.get("access-control-allow-origin") == origin) == ok, \
                (origin, st, h)
    finally:
        assert srv.stop() == 0
    srv = Server(model, "--cors-origin", "*", "--api-key", "k")
    try:
        st, h, _ = request(srv.port, "OPTIONS", "/v1/chat/completions",
                           headers={"Origin": "https://anywhere.example",
                                    "Access-Control-Request-Method": "POST"})
        assert st == 204 and h["access-control-allow-origin"] == "*", h  # no key needed
        st, h, _ = request(srv.port, "POST", "/v1/chat/completions", {"messages": []},
                           {"Origin": "https://anywhere.example"})
        assert st == 401 and h["access-control-allow-origin"] == "*", (st, h)
    finally:
        assert srv.stop() == 0
    r = subprocess.run([server_bin(), "-m", model, "--port", "0", "--cors-origin", "evil.example"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--cors-origin" in r.stderr, r.stderr


def test_smollm2_embeddings():
    path = smollm2()
    if not path:
        return
    srv = Server(path, "--ctx", "512")
    try:
        c = client(srv)
        texts = ["The cat sat on the mat.", "A kitten was sitting on the rug.",
                 "The stock market fell sharply today.", "Investors sold shares as prices dropped.",
                 "How do I bake bread at home?", "A recipe for homemade bread."]
        v = [d.embedding for d in c.embeddings.create(model="any", input=texts).data]
        for a, b, x in ((0, 1, 2), (2, 3, 0), (4, 5, 2), (1, 0, 4), (3, 2, 5), (5, 4, 1)):
            assert cos(v[a], v[b]) > cos(v[a], v[x]), (texts[a], texts[b], texts[x],
                                                       cos(v[a], v[b]), cos(v[a], v[x]))
    finally:
        assert srv.stop() == 0


def main():
    model, _ = find_model()
    print(f"model: {model}; server: {server_bin()}")
    suite = Suite(model)
    fake = Fake()
    run_suite(suite, [
        ("test_model_routes", lambda: test_model_routes(model, fake)),
        ("test_cors_origin_flag", lambda: test_cors_origin_flag(model)),
        ("test_smollm2_embeddings", test_smollm2_embeddings),
    ], fake.stop)


if __name__ == "__main__":
    main()
