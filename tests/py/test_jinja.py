#!/usr/bin/env python3
"""Chat templates rendered by spillway-template compared byte for byte with
Python's jinja2 configured as transformers renders them (tests/py/jinja_ref.py):
every (template x conversation) pair must give the same text, or both raise.

Templates:
  - tests/jinja/templates/*.jinja        ours (always run)
  - the built-in --chat-template texts
  - the templates inside real GGUFs: SmolLM2 (scripts/fetch-model.sh; skipped
    with its reason when unavailable) and the vocab GGUFs in $SW_SHARED_DIR
  - $SW_JINJA_TEMPLATES: a directory of *.jinja files, e.g. llama.cpp's
    models/templates (not committed here); skipped with a note when unset
Conversations: jinja_ref.cases() (plain, system, multi-turn, tools, tool-call
and tool-result rounds, odd content, ...) with and without a generation prompt.
Also: tests/jinja/snippets.txt (one corner of the semantics each), the OpenAI
adaptation (--openai), a model's BOS/EOS (--model), and hostile templates
ending in an error within bounds.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import jinja_ref  # noqa: E402

SRC = os.environ.get("SW_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BIN = os.environ.get("SW_BIN_DIR", os.path.join(SRC, "build", "bin"))
TOOL = os.path.join(BIN, "spillway-template")

failures = []
stats = {"pairs": 0, "rendered": 0, "raised": 0, "templates": 0}


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def first_diff(a, b):
    k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return "at %d: python %r / spillway %r" % (k, a[max(0, k - 40):k + 40], b[max(0, k - 40):k + 40])


def run_cases(tool_args, cases):
    """Render every case with one spillway-template process; a list of (ok, text)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for _, v in cases:
            f.write(json.dumps(v, ensure_ascii=False) + "\n")
        path = f.name
    try:
        p = subprocess.run([TOOL] + tool_args + ["--cases", path], capture_output=True, timeout=300)
    finally:
        os.unlink(path)
    if p.returncode != 0 and not p.stdout:
        # the template did not parse: every case "raises"
        return [(False, p.stderr.decode(errors="replace").strip())] * len(cases)
    lines = [json.loads(ln) for ln in p.stdout.decode().split("\n") if ln]
    if len(lines) != len(cases):
        raise RuntimeError("spillway-template gave %d results for %d cases: %s" %
                           (len(lines), len(cases), p.stderr.decode(errors="replace")))
    return [(r["ok"], r.get("out", r.get("error"))) for r in lines]


def compare_template(label, source, tool_args, cases):
    stats["templates"] += 1
    got = run_cases(tool_args, cases)
    bad = 0
    for (name, v), (cok, cout) in zip(cases, got):
        ok, out = jinja_ref.render(source, v)
        stats["pairs"] += 1
        stats["rendered" if ok else "raised"] += 1
        if ok != cok or (ok and out != cout):
            bad += 1
            if bad <= 3:
                if ok and cok:
                    fail("%s [%s]: output differs %s" % (label, name, first_diff(out, cout)))
                else:
                    fail("%s [%s]: python %s, spillway %s (%s | %s)" %
                         (label, name, "renders" if ok else "raises", "renders" if cok else "raises",
                          (out if not ok else "")[:200], (cout if not cok else "")[:200]))
    if bad > 3:
        fail("%s: %d more differing cases" % (label, bad - 3))


def builtin_names():
    p = subprocess.run([TOOL, "--help"], capture_output=True, text=True)
    line = next(ln for ln in p.stdout.splitlines() if "a built-in template (" in ln)
    return [n.strip() for n in line.split("(", 1)[1].rstrip(")").split(",")]


def gguf_sources():
    """(label, path) of GGUFs with a chat template."""
    out = []
    fetch = os.path.join(SRC, "scripts", "fetch-model.sh")
    for name in ("smollm2", "gemma3"):
        p = subprocess.run(["bash", fetch, name], capture_output=True, text=True)
        if p.returncode != 0:
            print("skip: %s model unavailable: %s" % (name, (p.stderr or p.stdout).strip()[-200:]))
            continue
        path = p.stdout.strip().splitlines()[-1]
        src = subprocess.run([TOOL, "--model", path, "--print-source"], capture_output=True, text=True)
        if src.returncode != 0:
            print("note: %s has no chat template (%s)" % (os.path.basename(path), src.stderr.strip()[-120:]))
            continue
        out.append((os.path.basename(path), path))
    vocab = os.path.join(os.environ.get("SW_SHARED_DIR", os.path.join(SRC, "..", "shared")), "models", "vocab")
    if os.path.isdir(vocab):
        for f in sorted(os.listdir(vocab)):
            if f.endswith(".gguf"):
                out.append((f, os.path.join(vocab, f)))
    return out


def check_templates(cases):
    tdir = os.path.join(SRC, "tests", "jinja", "templates")
    for f in sorted(os.listdir(tdir)):
        if f.endswith(".jinja"):
            path = os.path.join(tdir, f)
            compare_template(f, open(path, encoding="utf-8").read(), ["--template", path], cases)
    for name in builtin_names():
        src = subprocess.run([TOOL, "--chat-template", name, "--print-source"], capture_output=True, text=True).stdout
        compare_template("builtin:" + name, src, ["--chat-template", name], cases)
    for label, path in gguf_sources():
        p = subprocess.run([TOOL, "--model", path, "--print-source"], capture_output=True)
        if p.returncode != 0:
            continue  # a vocab file without a template
        compare_template("gguf:" + label, p.stdout.decode(), ["--model", path], cases)
    ext = os.environ.get("SW_JINJA_TEMPLATES")
    if not ext:
        print("note: SW_JINJA_TEMPLATES is not set; set it to a directory of real templates "
              "(e.g. llama.cpp's models/templates) to compare those too")
    elif not os.path.isdir(ext):
        fail("SW_JINJA_TEMPLATES=%s is not a directory" % ext)
    else:
        n = 0
        for f in sorted(os.listdir(ext)):
            if f.endswith(".jinja"):
                path = os.path.join(ext, f)
                compare_template(f, open(path, encoding="utf-8").read(), ["--template", path], cases)
                n += 1
        print("compared %d templates from %s" % (n, ext))


VARS = {"s": "Hello World", "u": "ünï 😀 ΣΑΣ", "n": 5, "f": 2.5, "l": [3, 1, 2],
        "d": {"b": 2, "a": 1, "c": None},
        "msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                 {"role": "assistant", "content": "A1"}],
        "e": "", "z": 0, "none": None, "t": True, "nested": {"x": {"y": [1, {"z": "deep"}]}},
        "fl": [1.5, 2.0, 1e20, 1e-5, 0.1]}


def check_snippets():
    text = open(os.path.join(SRC, "tests", "jinja", "snippets.txt"), encoding="utf-8").read()
    snippets = [s.strip("\n") for s in text.split("\n===\n")[1:] if s.strip()]
    vpath = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8")
    json.dump(VARS, vpath, ensure_ascii=False)
    vpath.close()
    with tempfile.TemporaryDirectory() as d:
        for i, s in enumerate(snippets):
            path = os.path.join(d, "s%d.jinja" % i)
            with open(path, "w", encoding="utf-8") as f:
                f.write(s)
            ok, out = jinja_ref.render(s, VARS)
            p = subprocess.run([TOOL, "--template", path, "--vars", "@" + vpath.name], capture_output=True)
            cok = p.returncode == 0
            cout = p.stdout.decode() if cok else p.stderr.decode(errors="replace")
            stats["pairs"] += 1
            if ok != cok or (ok and out != cout):
                fail("snippet %r: python %s %r, spillway %s %r" % (s[:120], ok, out[:200], cok, cout[:200]))
    os.unlink(vpath.name)
    print("snippets: %d compared" % len(snippets))


def check_openai():
    """--openai turns tool-call argument strings into objects and null content into ""."""
    src = ("{% for m in messages %}{{ m.role }}:{{ m.content | tojson }}"
           "{% for c in m.tool_calls | default([]) %} {{ c.function.arguments | tojson }}"
           " {{ c.function.arguments is mapping }}{% endfor %}\n{% endfor %}")
    msgs = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\": [1, \"y\"]}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "not json"}}]}]
    with tempfile.NamedTemporaryFile("w", suffix=".jinja", delete=False) as f:
        f.write(src)
    p = subprocess.run([TOOL, "--template", f.name, "--messages", json.dumps(msgs), "--openai"],
                       capture_output=True, text=True)
    os.unlink(f.name)
    adapted = json.loads(json.dumps(msgs))
    adapted[1]["content"] = ""
    adapted[1]["tool_calls"][0]["function"]["arguments"] = {"x": [1, "y"]}
    ok, want = jinja_ref.render(src, {"messages": adapted, "tools": None, "documents": None,
                                      "add_generation_prompt": False})
    if p.returncode != 0 or p.stdout != want:
        fail("--openai: want %r, got %r (%s)" % (want, p.stdout, p.stderr.strip()))
    if "{\"x\": [1, \"y\"]} True" not in p.stdout or "\"not json\" False" not in p.stdout:
        fail("--openai: arguments not adapted: %r" % p.stdout)


def check_hostile():
    """Each ends in an error, within the bounds, in well under a minute."""
    hostile = {
        "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "string doubling": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                           "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "list growth": "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                       "{% set ns.l = ns.l + [i] %}{% endfor %}",
        "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "recursive loop": "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
        "deep parens": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "long chain": "{{ 1" + " + 1" * 100000 + " }}",
        "deep blocks": "{% if true %}" * 3000 + "{% endif %}" * 3000,
        "huge repeat": "{{ 'x' * 10 ** 12 }}",
        "huge range": "{{ range(10 ** 9) | list }}",
        "quadratic scan": "{% set r = range(100000) | list %}{% for a in r %}{{ 'x' in r }}{% endfor %}",
    }
    with tempfile.TemporaryDirectory() as d:
        for name, src in hostile.items():
            path = os.path.join(d, "h.jinja")
            with open(path, "w") as f:
                f.write(src)
            t = time.time()
            p = subprocess.run([TOOL, "--template", path, "--messages", "[]", "--max-memory", str(64 << 20),
                                "--max-steps", "20000000"], capture_output=True, text=True, timeout=120)
            dt = time.time() - t
            if p.returncode != 1 or not p.stderr.strip():
                fail("hostile %s: rc %d, stderr %r" % (name, p.returncode, p.stderr[-200:]))
            elif dt > 30:
                fail("hostile %s took %.1fs" % (name, dt))
            else:
                print("hostile %-15s -> error in %.2fs: %s" % (name, dt, p.stderr.strip()[-100:]))


def main():
    if not os.access(TOOL, os.X_OK):
        print("skip: %s is not built" % TOOL)
        return 77
    cases = jinja_ref.cases()
    check_templates(cases)
    check_snippets()
    check_openai()
    check_hostile()
    print("%d templates, %d pairs compared (%d rendered, %d raised in both), %d failures" %
          (stats["templates"], stats["pairs"], stats["rendered"], stats["raised"], len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
