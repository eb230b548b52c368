#!/usr/bin/env python3
"""Tool calling in each model family's own syntax, through its chat template.

For every template (ours in tests/jinja/templates, built-in ones, and when
$SW_JINJA_TEMPLATES names llama.cpp's models/templates, the real Qwen 2.5,
Hermes 3, Llama 3.1, Mistral Nemo, Mistral Small 3.2 and Devstral ones) a
server runs a small model with --chat-template-file and:
  - a request with tools and a history holding a tool call and its result
    gets the prompt Python's jinja2 renders from the same OpenAI-shaped
    request (same token count) -- the template renders tools and results;
  - tool_choice "required" gives tool_calls in that family's syntax, read back
    into calls whose arguments validate (jsonschema), finish_reason
    tool_calls; sent back as history with a result, the template accepts the
    ids (Mistral's want 9 letters and digits);
  - streamed through the official openai client, the deltas join into the
    same kind of call;
  - a call cut by max_tokens ends with finish_reason "length" and no broken
    call: none reported, and what was streamed of it is announced only as a
    call (never as content text).
Mistral's markers are control tokens in its vocabularies: with a vocabulary
where [TOOL_CALLS] and [ARGS] are control tokens (built here from llama's SPM
test vocabulary) and logit_bias pushing the model to them, the answer uses
the tokens themselves (logprobs show them) and is read into calls.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import Server, client, find_model, post_json, request, run, server_bin, skip, tmp_dir  # noqa: E402
from test_tools import ASK, SCHEMAS, TOOLS  # noqa: E402

import jinja_ref  # noqa: E402
import jsonschema  # noqa: E402

MAX_TOKENS = 900  # a tiny model: every character is a token, whitespace may run on
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
OWN = os.path.join(SRC, "tests", "jinja", "templates")

# (label, template path or builtin name, expected syntax)
FAMILIES = [
    ("hermes", os.path.join(OWN, "tools-xml.jinja"), "hermes"),
    ("mistral-list", os.path.join(OWN, "mistral-list.jinja"), "mistral-list"),
    ("mistral-args", os.path.join(OWN, "mistral-args.jinja"), "mistral-args"),
    ("builtin llama3 (generic prompt)", "llama3", "llama3"),
    ("builtin chatml (generic prompt)", "chatml", "hermes"),
]
REAL = [
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "hermes"),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "hermes"),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3"),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral-list"),
    ("Mistral-Small-3.2-24B-Instruct-2506.jinja", "mistral-args"),
    ("unsloth-mistral-Devstral-Small-2507.jinja", "mistral-args"),
]
MARKERS = {"hermes": "<tool_call>", "mistral-list": "[TOOL_CALLS][", "mistral-args": "[TOOL_CALLS]",
           "llama3": "{"}
NINE = re.compile(r"^[A-Za-z0-9]{9}$")


def template_args(t):
    return ["--chat-template-file", t] if os.path.sep in t else ["--chat-template", t]


def template_source(t):
    if os.path.sep in t:
        return open(t, encoding="utf-8").read()
    tool = os.path.join(os.path.dirname(server_bin()), "spillway-template")
    return subprocess.run([tool, "--chat-template", t, "--print-source"], capture_output=True, text=True,
                          check=True).stdout


def n_ctx(port):
    st, _, body = request(port, "GET", "/v1/models")
    assert st == 200, body
    return json.loads(body)["data"][0]["meta"]["n_ctx"]


def check_call(c, syntax):
    name, args = c["function"]["name"], c["function"]["arguments"]
    assert c["type"] == "function" and name in SCHEMAS, c
    if syntax.startswith("mistral"):
        assert NINE.match(c["id"]), c["id"]
    else:
        assert c["id"].startswith("call_"), c["id"]
    jsonschema.validate(json.loads(args), SCHEMAS[name])


def history(syntax):
    cid = "abcDEF123" if syntax.startswith("mistral") else "call_1"
    return [{"role": "system", "content": "Be brief."}] + ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
        {"role": "tool", "tool_call_id": cid, "content": "sunny, 21 C"}]


def family_tests(model, label, tmpl, syntax, native):
    srv = Server(model, *template_args(tmpl))
    try:
        port = srv.port
        src = template_source(tmpl)

        def prompt_of_history():
            msgs = history(syntax)
            st, body = post_json(port, "/v1/chat/completions", {"messages": msgs, "tools": TOOLS, "max_tokens": 1})
            assert st == 200, body
            if not native:
                return
            adapted = json.loads(json.dumps(msgs))
            adapted[2]["content"] = ""
            adapted[2]["tool_calls"][0]["function"]["arguments"] = {"city": "Paris", "unit": "celsius"}
            adapted[3]["name"] = "get_weather"
            # a tool without parameters gets the empty object schema (OpenAI's meaning)
            tools = json.loads(json.dumps(TOOLS))
            tools[2]["function"]["parameters"] = {"type": "object", "properties": {}}
            ok, want = jinja_ref.render(src, {"messages": adapted, "tools": tools, "documents": None,
                                              "add_generation_prompt": True, "bos_token": "<s>",
                                              "eos_token": "</s>"})
            assert ok, want
            assert "get_weather" in want and "sunny, 21 C" in want and "Integer arithmetic" in want, want
            st, tk = post_json(port, "/tokenize", {"content": want})
            n = body["usage"]["prompt_tokens"]
            assert n in (len(tk["tokens"]), len(tk["tokens"]) + 1), (n, len(tk["tokens"]), want)

        # what the context leaves after this prompt (a long tool prompt and a 2k context)
        st, body = post_json(port, "/v1/chat/completions", {"messages": ASK, "tools": TOOLS, "max_tokens": 1})
        assert st == 200, body
        room = min(MAX_TOKENS, n_ctx(port) - body["usage"]["prompt_tokens"])

        def required():
            st, body = post_json(port, "/v1/chat/completions", {
                "messages": ASK, "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False,
                "max_tokens": room, "seed": 3})
            assert st == 200, body
            ch = body["choices"][0]
            assert ch["finish_reason"] == "tool_calls", ch
            calls = ch["message"]["tool_calls"]
            assert len(calls) == 1, calls
            check_call(calls[0], syntax)
            # the calls and a result go back through the template
            msgs = ASK + [{"role": "assistant", "content": None, "tool_calls": calls},
                          {"role": "tool", "tool_call_id": calls[0]["id"], "content": "done"}]
            st, body = post_json(port, "/v1/chat/completions", {"messages": msgs, "tools": TOOLS, "max_tokens": 2})
            assert st == 200, body

        def stream_openai():
            cl = client(srv)
            stream = cl.chat.completions.create(model="local", messages=ASK, tools=TOOLS, tool_choice="required",
                                                parallel_tool_calls=False, max_tokens=room, seed=4, stream=True)
            calls, finish, text = {}, None, ""
            for chunk in stream:
                ch = chunk.choices[0]
                text += ch.delta.content or ""
                for d in ch.delta.tool_calls or []:
                    c = calls.setdefault(d.index, {"id": None, "type": "function",
                                                   "function": {"name": None, "arguments": ""}})
                    if d.id:
                        c["id"], c["function"]["name"] = d.id, d.function.name
                    c["function"]["arguments"] += d.function.arguments or ""
                finish = ch.finish_reason or finish
            assert finish == "tool_calls" and not text and len(calls) == 1, (finish, text, calls)
            check_call(calls[0], syntax)

        def cut_by_length():
            # a call cut inside its arguments: finish "length", no call reported,
            # and nothing of it leaks into content
            for n in (3, 6, 9):
                st, body = post_json(port, "/v1/chat/completions", {
                    "messages": ASK, "tools": TOOLS, "tool_choice": {"type": "function",
                                                                     "function": {"name": "get_weather"}},
                    "max_tokens": n, "seed": 3})
                assert st == 200, body
                ch = body["choices"][0]
                assert ch["finish_reason"] == "length", ch
                assert not ch["message"].get("tool_calls"), ch
                assert not ch["message"]["content"], ch
                marker = MARKERS[syntax]
                assert marker not in (ch["message"]["content"] or ""), ch
            # streamed: what was sent of the call (its name, argument pieces)
            # and finish "length", never text
            cl = client(srv)
            for n in (6, 24):
                stream = cl.chat.completions.create(
                    model="local", messages=ASK, tools=TOOLS, max_tokens=n, seed=3, stream=True,
                    tool_choice={"type": "function", "function": {"name": "get_weather"}})
                finish, text, args = None, "", ""
                for chunk in stream:
                    ch = chunk.choices[0]
                    text += ch.delta.content or ""
                    for d in ch.delta.tool_calls or []:
                        assert d.index == 0 and (not d.id or d.function.name == "get_weather"), d
                        args += d.function.arguments or ""
                    finish = ch.finish_reason or finish
                assert finish == "length" and not text, (finish, text)
                assert not args or args.startswith("{"), args

        run([(f"{label}: prompt with a tool round", prompt_of_history),
             (f"{label}: required", required),
             (f"{label}: stream (openai client)", stream_openai),
             (f"{label}: cut by max_tokens", cut_by_length)])
    finally:
        assert srv.stop() == 0, srv.logs()


def mistral_vocab_model():
    """A tiny model (8k context) over llama's SPM vocabulary with [TOOL_CALLS]
    and [ARGS] as control tokens (ids 4 and 5, two byte tokens given up)."""
    import gguf
    shared = os.environ.get("SW_SHARED_DIR", os.path.join(SRC, "..", "shared"))
    src = os.path.join(shared, "models", "vocab", "ggml-vocab-llama-spm.gguf")
    if not os.path.exists(src):
        print(f"skip: Mistral control tokens: {src} is absent")
        return None, None
    r = gguf.GGUFReader(src)

    def field(k):
        return r.fields[k].contents()
    toks = field("tokenizer.ggml.tokens")
    types = field("tokenizer.ggml.token_type")
    ids = {"[TOOL_CALLS]": 4, "[ARGS]": 5}
    for t, i in ids.items():
        toks[i], types[i] = t, int(gguf.TokenType.CONTROL)
    d = tempfile.mkdtemp(dir=tmp_dir())
    vocab = os.path.join(d, "mistral-vocab.gguf")
    w = gguf.GGUFWriter(vocab, "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(field("tokenizer.ggml.scores"))
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = os.path.join(d, "mistral-tiny.gguf")
    mk = os.path.join(os.path.dirname(server_bin()), "spillway-mkmodel")
    p = subprocess.run([mk, "-o", out, "--shape", "tiny", "--type", "q8_0", "--ctx", "8192", "--vocab-from", vocab],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out, ids


def mistral_token_tests(model, ids):
    for tmpl in ("mistral-list.jinja", "mistral-args.jinja"):
        srv = Server(model, "--chat-template-file", os.path.join(OWN, tmpl))
        try:
            def tokens_used():
                bias = {str(i): 100 for i in ids.values()}
                st, body = post_json(srv.port, "/v1/chat/completions", {
                    "messages": ASK, "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False,
                    "max_tokens": MAX_TOKENS, "seed": 3, "logit_bias": bias, "logprobs": True})
                assert st == 200, body
                ch = body["choices"][0]
                toks = [t["token"] for t in ch["logprobs"]["content"]]
                assert toks[0] == "[TOOL_CALLS]", toks[:8]
                if tmpl == "mistral-args.jinja":
                    assert "[ARGS]" in toks, toks
                assert ch["finish_reason"] == "tool_calls", ch
                calls = ch["message"]["tool_calls"]
                assert len(calls) == 1 and not ch["message"]["content"], ch
                check_call(calls[0], "mistral")
            run([(f"{tmpl}: the control tokens themselves", tokens_used)])
        finally:
            assert srv.stop() == 0, srv.logs()


def main():
    # one tiny model for every family (a long tool prompt fits its 8k context)
    model, ids = mistral_vocab_model()
    if not model:
        model, _ = find_model()
    families = list(FAMILIES)
    ext = os.environ.get("SW_JINJA_TEMPLATES")
    if ext and os.path.isdir(ext):
        families += [(f, os.path.join(ext, f), s) for f, s in REAL if os.path.exists(os.path.join(ext, f))]
    else:
        print("note: SW_JINJA_TEMPLATES is not set: only our own and built-in templates "
              "(set it to llama.cpp's models/templates for the real ones)")
    for label, tmpl, syntax in families:
        native = os.path.sep in tmpl
        family_tests(model, label, tmpl, syntax, native)
    if ids:
        mistral_token_tests(model, ids)


if __name__ == "__main__":
    if not os.access(server_bin(), os.X_OK):
        skip("spillway-server is not built")
    main()
