"""The built-in web page in a real browser: headless Chromium (Debian's
package) driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
no extra Python package, no port).

Checks: / and its files are served from the binary with a strict
Content-Security-Policy and reference nothing outside the server; the page
loads with no console error, no exception and no CSP violation; it renders
its charts from the server's own data (SVG bars in the requests chart, the
reasons chart naming the server's reasons) and shows the request count that
/v1/usage reports; the chat box streams an answer (several chunks) and shows
its route and reason; a hostile model name is shown as text; with --api-key
the page asks for the key (it is not in anything the server sends), works
once given it, and still logs no error. A screenshot of each run is kept in
the build folder (test-output/web*.png).

Skips (77) with the reason when Chromium is not installed or cannot start.
Environment as tests/py/test_server.py."""
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, find_model, post_json, request, run, server_bin, skip, tmp_dir  # noqa: E402


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    """Headless Chromium speaking CDP over fds 3 (in) and 4 (out)."""

    def __init__(self, exe):
        self.profile = tempfile.mkdtemp(prefix="sw-chromium-", dir=tmp_dir())
        r3, self.w3 = os.pipe()
        self.r4, w4 = os.pipe()

        def child_fds():
            os.dup2(r3, 3)
            os.dup2(w4, 4)
        self.err = open(os.path.join(self.profile, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--window-size=1280,1500", "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.err)
        os.close(r3)
        os.close(w4)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.w3, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def recv(self, timeout):
        end = time.time() + timeout
        while b"\0" not in self.buf:
            left = end - time.time()
            r, _, _ = select.select([self.r4], [], [], max(0.0, left))
            if not r:
                raise TimeoutError("no message from Chromium")
            data = os.read(self.r4, 1 << 16)
            if not data:
                raise EOFError("Chromium closed its pipe")
            self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=30):
        i = self.send(method, params, session)
        while True:
            m = self.recv(timeout)
            if m.get("id") == i:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def pump(self, seconds):
        """Collect events for a while."""
        end = time.time() + seconds
        while time.time() < end:
            try:
                m = self.recv(max(0.01, end - time.time()))
            except TimeoutError:
                return
            if "method" in m:
                self.events.append(m)

    def open(self, url):
        tid = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": tid, "flatten": True},
                                 session=False)["sessionId"]
        for d in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(d)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 1500, "deviceScaleFactor": 1, "mobile": False})
        self.events.clear()
        self.call("Page.navigate", {"url": url})

    def eval(self, expr, timeout=30):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page exception in {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, what, timeout=30):
        end = time.time() + timeout
        guarded = f"(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()"
        while time.time() < end:
            if self.eval(guarded):
                return
            self.pump(0.1)
        raise AssertionError(f"timed out waiting for {what} ({expr})")

    def problems(self):
        """Console errors, uncaught exceptions and CSP/network errors so far."""
        self.pump(0.2)
        out = []
        for m in self.events:
            p = m.get("params", {})
            if m["method"] == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails"))[:400])
            elif m["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + json.dumps(p.get("args"))[:400])
            elif m["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append("log: " + p["entry"].get("text", "")[:400])
        return out

    def screenshot(self, path):
        png = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.w3, self.r4):
            try:
                os.close(fd)
            except OSError:
                pass
        self.err.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def start_browser():
    exe = chromium_path()
    if not exe:
        skip("Chromium is not installed (scripts/install-deps.sh --test installs Debian's chromium)")
    try:
        b = Browser(exe)
        b.call("Browser.getVersion", session=False, timeout=60)
        return b
    except Exception as e:  # noqa: BLE001 -- any failure to start is a reason to skip
        skip(f"Chromium cannot run here: {e}")


def browser_and_server(model, *args):
    """Chromium first (a skip must not leave a server behind), then the server."""
    b = start_browser()
    try:
        return b, Server(model, *args)
    except BaseException:
        b.close()
        raise


def out_dir():
    bin_dir = os.environ.get("SW_BIN_DIR") or os.path.dirname(server_bin())
    return os.path.join(os.path.dirname(os.path.abspath(bin_dir)), "test-output")


HOSTILE = '<img src=x onerror="document.title=1">M&amp;'


def test_assets(port):
    """What the server sends: CSP on every file, nothing from elsewhere, no
    markup built from strings."""
    st, h, body = request(port, "GET", "/")
    assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
    csp = h.get("content-security-policy", "")
    for d in ("default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"):
        assert d in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert h.get("x-content-type-options") == "nosniff"
    html = body.decode()
    files = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/web/app.js" in files and "/web/style.css" in files, files
    for f in files:
        assert f.startswith("/web/") or f == "data:,", f"external reference {f}"
    assert "<script>" not in html and "style=" not in html, "inline script or style"
    for f in ("/web/app.js", "/web/style.css"):
        st, h, data = request(port, "GET", f)
        assert st == 200 and "content-security-policy" in h, (f, st)
        src = data.decode()
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                    "new Function", "https://", "//cdn", "@import"):
            assert bad not in src, f"{f} contains {bad}"
    assert request(port, "GET", "/web/nope.js")[0] == 404
    assert request(port, "GET", "/web/../metrics")[0] in (404, 400)
    st, _, data = request(port, "GET", "/web/auth.json")
    assert st == 200 and json.loads(data) == {"api_key_required": False}


def test_page(model):
    b, srv = browser_and_server(model, "--model-alias", HOSTILE)
    try:
        port = srv.port
        test_assets(port)
        # some traffic first, so the charts have data: local answers, and a
        # rejected one (over the context, no cloud)
        for i in range(3):
            st, r = post_json(port, "/v1/chat/completions",
                              {"messages": [{"role": "user", "content": f"Hi {i}"}], "max_tokens": 4})
            assert st == 200, r
        st, r = post_json(port, "/v1/chat/completions",
                          {"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000})
        assert st == 400, r
        b.open(f"http://127.0.0.1:{port}/")
        b.wait("document.body.dataset.ready === '1'", "the first refresh")
        # the request count is the server's
        b.wait("document.querySelector('#chart-requests rect') !== null", "bars in the requests chart")
        u = json.loads(request(port, "GET", "/v1/usage")[2])
        assert u["requests"]["total"] == 4, u
        b.wait(f"document.getElementById('total-requests').textContent === '{u['requests']['total']}'",
               "the request count of /v1/usage")
        reasons = b.eval("[...document.querySelectorAll('#chart-reasons text')].map(t => t.textContent)")
        assert "local · default" in reasons and "reject · cloud_unavailable" in reasons, reasons
        for chart in ("requests", "tokens"):  # split local / rejected (no cloud here)
            for cls in ("local-fill", "reject-fill"):
                assert b.eval(f"document.querySelectorAll('#chart-{chart} rect.{cls}').length") > 0, (chart, cls)
        assert b.eval("document.querySelectorAll('#chart-money polyline').length") == 2
        assert b.eval("document.getElementById('breakeven-text').textContent.length") > 0
        # the hostile model name is text, not markup
        assert b.eval("document.getElementById('model').textContent").startswith(HOSTILE)
        assert b.eval("document.querySelectorAll('img').length") == 0
        # chat: a streamed answer with its route
        b.eval("document.getElementById('prompt').value = 'Once upon a time'; "
               "document.getElementById('opt-max').value = '24'; "
               "document.getElementById('chat-form').requestSubmit(); true")
        b.wait("document.querySelector('.msg.assistant[data-done]') !== null", "the chat answer", 60)
        chunks = int(b.eval("document.querySelector('.msg.assistant').dataset.chunks"))
        answer = b.eval("document.querySelector('.msg.assistant .body').textContent")
        meta = b.eval("document.querySelector('.msg.assistant .meta').textContent")
        assert chunks > 1 and answer, (chunks, answer)
        assert meta.startswith("local · default"), meta
        # the chat shows up in the count
        b.wait(f"document.getElementById('total-requests').textContent === '{u['requests']['total'] + 1}'",
               "the count after the chat")
        shot = os.path.join(out_dir(), "web.png")
        assert b.screenshot(shot) > 10000, shot
        print(f"screenshot: {shot}")
        probs = b.problems()
        assert not probs, "\n".join(probs)
    finally:
        b.close()
        assert srv.stop() == 0


def test_api_key(model):
    key = "sk-web-SECRET-4242"
    b, srv = browser_and_server(model, "--api-key", key)
    try:
        port = srv.port
        for path in ("/", "/web/app.js", "/web/style.css", "/web/auth.json"):
            st, h, data = request(port, "GET", path)
            assert st == 200 and key.encode() not in data and key not in json.dumps(h), path
        assert json.loads(request(port, "GET", "/web/auth.json")[2]) == {"api_key_required": True}
        b.open(f"http://127.0.0.1:{port}/")
        b.wait("!document.getElementById('key-form').hidden", "the key form")
        assert b.eval("document.getElementById('total-requests').textContent") == "–"
        b.eval(f"document.getElementById('key').value = '{key}'; "
               "document.getElementById('key-form').requestSubmit(); true")
        b.wait("document.body.dataset.ready === '1'", "data with the key")
        b.eval("document.getElementById('prompt').value = 'Hello'; "
               "document.getElementById('chat-form').requestSubmit(); true")
        b.wait("document.querySelector('.msg.assistant[data-done]') !== null", "the chat answer", 60)
        b.wait("document.getElementById('total-requests').textContent === '1'", "one request counted")
        assert b.eval("document.getElementById('key').value") == ""  # not left in the form
        b.screenshot(os.path.join(out_dir(), "web-key.png"))
        probs = b.problems()
        assert not probs, "\n".join(probs)
    finally:
        b.close()
        assert srv.stop() == 0


def main():
    model, _ = find_model()
    print(f"model: {model}; server: {server_bin()}")
    run([("test_page", lambda: test_page(model)), ("test_api_key", lambda: test_api_key(model))])


if __name__ == "__main__":
    main()
