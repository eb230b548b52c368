"""spillway-server --hf: download from a fake Hugging Face hub on loopback.

The fake hub (a ThreadingHTTPServer) serves /OWNER/REPO/resolve/main/FILE with
Range support and the LFS sha256 in X-Linked-ETag, and can be told to cut the
connection mid-file, send a wrong hash, redirect to a "CDN" path, ignore
Range, or answer 404. Checks: SHA-256 of many sizes (padding edge cases)
against hashlib, resume after a cut and from a .part file, the hash check,
the cache, and a full --hf start that then serves."""
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import (Server, find_model, post_json, request, run, server_bin,  # noqa: E402
                         skip, tmp_dir)


class Hub:
    def __init__(self):
        self.files = {}   # "owner/repo/file" -> (bytes, mode)
        self.log = []     # (method, path, range header)
        self.cut_done = set()
        hub = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                hub.log.append(("GET", self.path, self.headers.get("Range")))
                if self.path.startswith("/cdn/"):
                    key = self.path[len("/cdn/"):]
                    data, mode = hub.files[key]
                    # CDNs send their own (MD5-like) ETag, not the sha256
                    return self.send_file(data, mode, key, etag='"d41d8cd98f00b204e98"',
                                          linked=None)
                parts = self.path.split("/resolve/main/")
                if len(parts) != 2:
                    return self.fail(404)
                key = parts[0].lstrip("/") + "/" + parts[1]
                if key not in hub.files:
                    return self.fail(404)
                data, mode = hub.files[key]
                sha = hashlib.sha256(data).hexdigest()
                if mode == "wrong_hash":
                    sha = hashlib.sha256(data + b"x").hexdigest()
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/cdn/" + key)
                    self.send_header("X-Linked-Etag", f'"{sha}"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_file(data, mode, key, etag=f'"{sha}"' if mode != "no_hash" else None,
                               linked=sha if mode != "no_hash" else None)

            def fail(self, code):
                body = b"Entry not found"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def send_file(self, data, mode, key, etag, linked):
                start = 0
                rng = self.headers.get("Range")
                if rng and mode != "ignore_range":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                if linked:
                    self.send_header("X-Linked-Etag", f'"{linked}"')
                self.end_headers()
                if mode == "cut_once" and key not in hub.cut_done:
                    hub.cut_done.add(key)
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def download(hub, spec, cache, *extra):
    env = dict(os.environ)
    env["SPILLWAY_HF_ENDPOINT"] = f"http://127.0.0.1:{hub.port}"
    env.setdefault("SW_LOG", "info")
    env.pop("HF_TOKEN", None)
    return subprocess.run([server_bin(), "--hf", spec, "--cache-dir", cache, "--download-only",
                           *extra], capture_output=True, text=True, env=env, timeout=120)


def main():
    model, stories = find_model()
    with open(model, "rb") as f:
        gguf = f.read()
    base = os.path.join(tmp_dir(), f"hf-test-{os.getpid()}")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    hub = Hub()
    counter = [0]

    def fresh_cache():
        counter[0] += 1
        return os.path.join(base, f"cache{counter[0]}")

    def cached_path(cache, repo, file):
        o, r = repo.split("/")
        return os.path.join(cache, "hf", f"{o}--{r}", file)

    def t_sha256_sizes():
        # sizes around SHA-256's 55/56/64-byte padding boundaries, and big ones
        sizes = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, (1 << 20) + 17]
        for n in sizes:
            data = b"abc" if n == 3 else bytes((i * 7 + n) % 251 for i in range(n))
            hub.files[f"o/sizes/f{n}.bin"] = (data, "ok")
            cache = fresh_cache()
            r = download(hub, f"o/sizes:f{n}.bin", cache)
            assert r.returncode == 0, (n, r.stderr)
            path = r.stdout.strip()
            assert path == cached_path(cache, "o/sizes", f"f{n}.bin"), path
            with open(path, "rb") as f:
                assert f.read() == data
            assert "verified" in r.stderr, r.stderr
        assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf8f01cfea")

    def t_nested_and_redirect():
        hub.files["ggml-org/models/tinyllamas/stories.gguf"] = (gguf, "redirect")
        cache = fresh_cache()
        r = download(hub, "ggml-org/models:tinyllamas/stories.gguf", cache)
        assert r.returncode == 0, r.stderr
        with open(r.stdout.strip(), "rb") as f:
            assert f.read() == gguf
        assert "verified" in r.stderr
        # the owner/repo/file form too, and the cache is used the second time
        n = len(hub.log)
        r = download(hub, "ggml-org/models/tinyllamas/stories.gguf", cache)
        assert r.returncode == 0 and len(hub.log) == n, (r.stderr, hub.log[n:])

    def t_cut_and_resume():
        hub.files["o/cut/m.gguf"] = (gguf, "cut_once")
        cache = fresh_cache()
        n = len(hub.log)
        r = download(hub, "o/cut:m.gguf", cache)
        assert r.returncode == 0, r.stderr
        with open(r.stdout.strip(), "rb") as f:
            assert f.read() == gguf
        reqs = hub.log[n:]
        assert len(reqs) == 2 and reqs[0][2] is None, reqs
        assert reqs[1][2] and reqs[1][2].startswith("bytes=") and \
            int(reqs[1][2][6:].rstrip("-")) > 0, reqs
        assert not os.path.exists(r.stdout.strip() + ".part")

    def t_resume_part_file():
        hub.files["o/part/m.gguf"] = (gguf, "ok")
        cache = fresh_cache()
        dest = cached_path(cache, "o/part", "m.gguf")
        os.makedirs(os.path.dirname(dest))
        k = len(gguf) * 2 // 5
        with open(dest + ".part", "wb") as f:
            f.write(gguf[:k])
        n = len(hub.log)
        r = download(hub, "o/part:m.gguf", cache)
        assert r.returncode == 0, r.stderr
        assert hub.log[n:] == [("GET", "/o/part/resolve/main/m.gguf", f"bytes={k}-")], hub.log[n:]
        with open(dest, "rb") as f:
            assert f.read() == gguf
        assert "resuming" in r.stderr

    def t_ignore_range():
        hub.files["o/norange/m.gguf"] = (gguf, "ignore_range")
        cache = fresh_cache()
        dest = cached_path(cache, "o/norange", "m.gguf")
        os.makedirs(os.path.dirname(dest))
        with open(dest + ".part", "wb") as f:
            f.write(b"garbage that is not a prefix")
        r = download(hub, "o/norange:m.gguf", cache)
        assert r.returncode == 0, r.stderr
        with open(dest, "rb") as f:
            assert f.read() == gguf

    def t_wrong_hash():
        hub.files["o/bad/m.gguf"] = (gguf, "wrong_hash")
        cache = fresh_cache()
        r = download(hub, "o/bad:m.gguf", cache)
        assert r.returncode == 1, r.stderr
        assert "SHA-256 mismatch" in r.stderr, r.stderr
        dest = cached_path(cache, "o/bad", "m.gguf")
        assert not os.path.exists(dest) and not os.path.exists(dest + ".part")

    def t_no_hash():
        hub.files["o/nohash/m.gguf"] = (gguf, "no_hash")
        cache = fresh_cache()
        r = download(hub, "o/nohash:m.gguf", cache)
        assert r.returncode == 0 and "not verified" in r.stderr, r.stderr

    def t_not_found():
        r = download(hub, "o/missing:m.gguf", fresh_cache())
        assert r.returncode == 1 and "404" in r.stderr, r.stderr

    def t_bad_specs():
        for spec in ("noslash", "o/r:../../etc/passwd", "o/r:/abs.gguf", "o/r:", "/r:x.gguf",
                     "o/r:a b.gguf", "o/r/x:y.gguf"):
            r = subprocess.run([server_bin(), "--hf", spec, "--download-only"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 2, (spec, r.returncode, r.stderr)
            assert "--hf" in r.stderr, (spec, r.stderr)

    def t_serve():
        hub.files["ggml-org/models/stories260K.gguf"] = (gguf, "cut_once")
        cache = fresh_cache()
        env = {"SPILLWAY_HF_ENDPOINT": f"http://127.0.0.1:{hub.port}"}
        srv = Server(None, "--hf", "ggml-org/models:stories260K.gguf", "--cache-dir", cache,
                     env=env)
        try:
            st, _, _ = request(srv.port, "GET", "/health")
            assert st == 200
            st, r = post_json(srv.port, "/v1/completions",
                              {"model": "stories260K", "prompt": "Once upon a time",
                               "max_tokens": 8, "temperature": 0})
            assert st == 200, r
            if stories:
                assert r["choices"][0]["text"].startswith(", there was"), r
        finally:
            assert srv.stop() == 0
        assert os.path.exists(cached_path(cache, "ggml-org/models", "stories260K.gguf"))

    def t_generate():
        # spillway-generate shares the downloader: --hf fetches (resuming after a
        # cut) into the cache, then runs; a wrong hash fails cleanly.
        hub.files["ggml-org/models/gen.gguf"] = (gguf, "cut_once")
        cache = fresh_cache()
        env = dict(os.environ, SPILLWAY_HF_ENDPOINT=f"http://127.0.0.1:{hub.port}")
        gen = os.path.join(os.environ.get("SW_BIN_DIR", ""), "spillway-generate")
        r = subprocess.run([gen, "--hf", "ggml-org/models:gen.gguf", "--cache-dir", cache,
                            "-p", "Once upon a time", "-n", "8", "--temp", "0", "--json",
                            "--backend", "cpu"], capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert len(out["gen_ids"]) == 8, out
        if stories:
            assert out["text"].startswith(", there was"), out
        assert os.path.exists(cached_path(cache, "ggml-org/models", "gen.gguf"))
        r = subprocess.run([gen, "--hf", "ggml-org/models:gen.gguf", "-m", model, "-p", "x"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "exactly one" in r.stderr, (r.returncode, r.stderr)

    try:
        run([("sha256_sizes", t_sha256_sizes), ("nested_and_redirect", t_nested_and_redirect),
             ("cut_and_resume", t_cut_and_resume), ("resume_part_file", t_resume_part_file),
             ("ignore_range", t_ignore_range), ("wrong_hash", t_wrong_hash),
             ("no_hash", t_no_hash), ("not_found", t_not_found), ("bad_specs", t_bad_specs),
             ("serve", t_serve), ("generate", t_generate)])
    finally:
        hub.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if not os.access(server_bin(), os.X_OK):
        skip("no spillway-server")
    main()
