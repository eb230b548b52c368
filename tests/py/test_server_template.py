"""spillway-server and chat templates: the model's own template (SmolLM2's adds a
default system prompt, so a 21-token chatml prompt is 42 tokens), POST
/apply-template (llama.cpp's shape) compared with Python's jinja2, a template
that raises giving a 400 with its message (OpenAI and Anthropic shapes),
--chat-template-file, --system-prompt, chat_template_kwargs, and Anthropic tool_use /
tool_result blocks reaching the template as OpenAI tool_calls / tool messages.

Environment: as test_server.py (SW_BIN_DIR / SW_SERVER_BIN, SW_SHARED_DIR,
SW_TMP_DIR)."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import jinja_ref  # noqa: E402
from test_server import (Server, assert_error, find_model, post_json, run, server_bin,  # noqa: E402
                         tmp_dir)

SRC = os.environ.get("SW_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))

# prints what the template receives, so the server's message conversion is visible
ECHO = ("{% for m in messages %}[{{ m.role }}|{{ m.content }}"
        "{% if m.tool_calls is defined %}|calls={{ m.tool_calls | tojson }}{% endif %}"
        "{% if m.tool_call_id is defined %}|id={{ m.tool_call_id }}|name={{ m.name }}{% endif %}]"
        "{% endfor %}{% if tools %}tools={{ tools | map(attribute='function.name') | list }}{% endif %}"
        "{% if enable_thinking is defined %}thinking={{ enable_thinking }}{% endif %}"
        "{% if add_generation_prompt %}<gen>{% endif %}")
RAISES = ("{% for m in messages %}{% if m.role == 'system' %}"
          "{{ raise_exception('System messages are not supported by this template.') }}"
          "{% endif %}{{ m.content }}{% endfor %}")


def write(name, text):
    path = os.path.join(tmp_dir(), "%s-%d.jinja" % (name, os.getpid()))
    with open(path, "w") as f:
        f.write(text)
    return path


def served(srv):
    from test_server import request
    st, _, data = request(srv.port, "GET", "/v1/models")
    return json.loads(data)["data"][0]["id"]


def test_echo_template(model):
    srv = Server(model, "--chat-template-file", write("echo", ECHO))
    try:
        # /apply-template: the body's messages as they are (OpenAI-adapted)
        st, body = post_json(srv.port, "/apply-template", {
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": None,
                          "tool_calls": [{"id": "c1", "type": "function",
                                          "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "42"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "chat_template_kwargs": {"enable_thinking": False}})
        assert st == 200, body
        assert body["prompt"] == ('[user|hi][assistant||calls=[{"id": "c1", "type": "function", '
                                  '"function": {"name": "f", "arguments": {"x": 1}}}]]'
                                  "[tool|42|id=c1|name=f]tools=['f']thinking=False<gen>"), body
        st, body = post_json(srv.port, "/apply-template", {"messages": [{"role": "user", "content": "x"}],
                                                           "add_generation_prompt": False})
        assert st == 200 and body["prompt"] == "[user|x]", body
        for bad, param in (({}, "messages"), ({"messages": "x"}, "messages"),
                           ({"messages": [], "tools": {}}, "tools"),
                           ({"messages": [], "add_generation_prompt": "yes"}, "add_generation_prompt")):
            st, body = post_json(srv.port, "/apply-template", bad)
            assert_error(st, body, 400, param=param, what="apply-template %s" % bad)
        # Anthropic tool_use / tool_result blocks become OpenAI tool_calls / tool messages
        st, body = post_json(srv.port, "/v1/messages/count_tokens", {
            "model": served(srv), "system": "S", "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Let me check."},
                                                  {"type": "tool_use", "id": "t1", "name": "get_weather",
                                                   "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                                             {"type": "text", "text": "thanks"}]}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]})
        assert st == 200, body
        want = ('[system|S][user|weather?][assistant|Let me check.|calls=[{"id": "t1", "type": "function", '
                '"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]]'
                "[tool|sunny|id=t1|name=get_weather][user|thanks]tools=['get_weather']<gen>")
        st2, tk = post_json(srv.port, "/tokenize", {"content": want})
        assert st2 == 200 and body["input_tokens"] in (len(tk["tokens"]), len(tk["tokens"]) + 1), (body, tk)
        # the same conversation through a generation request renders the same way: check
        # the text with a completion-free request (max_tokens 1) and the prompt size
        st, body = post_json(srv.port, "/v1/chat/completions", {
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "max_tokens": 1, "chat_template_kwargs": {"enable_thinking": True}})
        assert st == 200, body
        st2, tk = post_json(srv.port, "/tokenize", {"content": "[system|S][user|hi]thinking=True<gen>"})
        assert st2 == 200
        assert body["usage"]["prompt_tokens"] in (len(tk["tokens"]), len(tk["tokens"]) + 1), (body, tk)
    finally:
        assert srv.stop() == 0, srv.logs()


def test_raising_template(model):
    srv = Server(model, "--chat-template-file", write("raises", RAISES))
    try:
        msg = "System messages are not supported by this template."
        st, body = post_json(srv.port, "/v1/chat/completions", {
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "max_tokens": 4})
        assert_error(st, body, 400, param="messages", what="raising template (chat)")
        assert msg in body["error"]["message"], body
        st, body = post_json(srv.port, "/apply-template", {"messages": [{"role": "system", "content": "S"}]})
        assert_error(st, body, 400, what="raising template (apply-template)")
        assert msg in body["error"]["message"], body
        st, body = post_json(srv.port, "/v1/messages", {"model": served(srv), "max_tokens": 4, "system": "S",
                                                        "messages": [{"role": "user", "content": "hi"}]})
        assert st == 400 and body["type"] == "error" and msg in body["error"]["message"], body
        # without a system message it renders and generates
        st, body = post_json(srv.port, "/v1/chat/completions", {
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert st == 200, body
    finally:
        assert srv.stop() == 0, srv.logs()


def test_template_flags(model):
    b = server_bin()
    bad = write("bad", "{% if %}")
    for args, needle in ((["--chat-template-file", "/nonexistent/t.jinja"], "/nonexistent/t.jinja"),
                         (["--chat-template-file", bad], "line 1"),
                         (["--chat-template", "chatml", "--chat-template-file", bad], "not both"),
                         (["--chat-template", "nope"], "--chat-template")):
        r = subprocess.run([b, "-m", model, "--port", "0", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and needle in r.stderr, (args, r.returncode, r.stderr)


def test_named_tool_use(model):
    """A GGUF with tokenizer.chat_template and tokenizer.chat_template.tool_use: a
    request with tools renders with tool_use, as transformers picks it."""
    out = os.path.join(tmp_dir(), "named-templates-%d.gguf" % os.getpid())
    templates = [{"name": "default", "template": "DEFAULT{% for m in messages %}|{{ m.content }}{% endfor %}"},
                 {"name": "tool_use", "template": "TOOLS{{ tools | map(attribute='function.name') | list }}"
                                                  "{% for m in messages %}|{{ m.content }}{% endfor %}"}]
    r = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", model, out,
                        "--chat-template", json.dumps(templates), "--force"], capture_output=True, text=True)
    assert r.returncode == 0 and os.path.exists(out), r.stderr[-500:]
    try:
        tool = os.path.join(os.path.dirname(server_bin()), "spillway-template")
        p = subprocess.run([tool, "--model", out, "--name", "tool_use", "--messages", "[{\"content\": \"x\"}]",
                            "--tools", "[{\"function\": {\"name\": \"f\"}}]"], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout == "TOOLS['f']|x", (p.stdout, p.stderr)
        srv = Server(out)
        try:
            msgs = [{"role": "user", "content": "hi"}]
            st, body = post_json(srv.port, "/apply-template", {"messages": msgs})
            assert st == 200 and body["prompt"] == "DEFAULT|hi", body
            st, body = post_json(srv.port, "/apply-template", {
                "messages": msgs, "tools": [{"type": "function", "function": {"name": "g"}}]})
            assert st == 200 and body["prompt"] == "TOOLS['g']|hi", body
        finally:
            assert srv.stop() == 0, srv.logs()
    finally:
        os.unlink(out)


def test_native_tools(model):
    """A template that renders tools itself gets them, and the history's tool
    calls and results as OpenAI tool_calls / tool messages: the prompt is what
    Python's jinja2 renders from the same OpenAI-shaped request."""
    tmpl = os.path.join(SRC, "tests", "jinja", "templates", "tools-xml.jinja")
    src = open(tmpl, encoding="utf-8").read()
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
                                                "parameters": {"type": "object", "properties":
                                                               {"city": {"type": "string"}},
                                                               "required": ["city"]}}}]
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    srv = Server(model, "--chat-template-file", tmpl)
    try:
        st, body = post_json(srv.port, "/v1/chat/completions", {"messages": msgs, "tools": tools,
                                                                 "max_tokens": 1})
        assert st == 200, body
        adapted = json.loads(json.dumps(msgs))
        adapted[2]["tool_calls"][0]["function"]["arguments"] = {"city": "Paris"}
        adapted[3]["name"] = "get_weather"
        ok, want = jinja_ref.render(src, {"messages": adapted, "tools": tools, "documents": None,
                                          "add_generation_prompt": True})
        assert ok and "get_weather" in want and "<tool_response>" in want, want
        st2, tk = post_json(srv.port, "/tokenize", {"content": want})
        n = body["usage"]["prompt_tokens"]
        assert n in (len(tk["tokens"]), len(tk["tokens"]) + 1), (n, len(tk["tokens"]), want)
    finally:
        assert srv.stop() == 0, srv.logs()


def smollm2():
    r = subprocess.run(["bash", os.path.join(SRC, "scripts", "fetch-model.sh"), "smollm2"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP (SmolLM2 part): %s" % (r.stderr or r.stdout).strip()[-300:])
        return None
    return r.stdout.strip().splitlines()[-1]


def test_smollm2_own_template():
    path = smollm2()
    if not path:
        return
    poem = "Hi there, can you help me write a short poem?"
    srv = Server(path, "--backend", "cpu")
    try:
        st, body = post_json(srv.port, "/v1/chat/completions",
                             {"messages": [{"role": "user", "content": poem}], "max_tokens": 1})
        assert st == 200 and body["usage"]["prompt_tokens"] == 42, body
        # /apply-template is exactly what Python's jinja2 renders from the GGUF's template
        tool = os.path.join(os.path.dirname(server_bin()), "spillway-template")
        src = subprocess.run([tool, "--model", path, "--print-source"], capture_output=True,
                             text=True, check=True).stdout
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": poem},
                {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "Go."}]
        for m in (msgs, msgs[1:]):
            st, body = post_json(srv.port, "/apply-template", {"messages": m})
            ok, want = jinja_ref.render(src, {"messages": m, "tools": None, "documents": None,
                                              "add_generation_prompt": True,
                                              "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})
            assert ok and st == 200 and body["prompt"] == want, (body, want)
    finally:
        assert srv.stop() == 0, srv.logs()
    srv = Server(path, "--backend", "cpu", "--chat-template", "chatml")
    try:
        st, body = post_json(srv.port, "/v1/chat/completions",
                             {"messages": [{"role": "user", "content": poem}], "max_tokens": 1})
        assert st == 200 and body["usage"]["prompt_tokens"] == 21, body
    finally:
        assert srv.stop() == 0, srv.logs()


def test_system_prompt(model):
    """--system-prompt is the system message of local chats that bring none; a chat
    with its own (OpenAI message or Anthropic system) keeps it; /apply-template
    shows the template alone."""
    srv = Server(model, "--chat-template-file", write("echo", ECHO), "--system-prompt", "Be brief.")
    try:
        def prompt_tokens(path, body, usage_key):
            st, b = post_json(srv.port, path, body)
            assert st == 200, b
            return b["usage"][usage_key] if "usage" in b else b[usage_key]

        def tokens(text):
            st, tk = post_json(srv.port, "/tokenize", {"content": text})
            assert st == 200, tk
            return len(tk["tokens"])

        cases = [
            ({"messages": [{"role": "user", "content": "hi"}]}, "[system|Be brief.][user|hi]<gen>"),
            ({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]},
             "[system|S][user|hi]<gen>"),
            ({"messages": [{"role": "developer", "content": "D"}, {"role": "user", "content": "hi"}]},
             "[system|D][user|hi]<gen>"),
        ]
        for body, want in cases:
            n = prompt_tokens("/v1/chat/completions", dict(body, max_tokens=1), "prompt_tokens")
            assert n in (tokens(want), tokens(want) + 1), (body, n, want)
        n = prompt_tokens("/v1/messages/count_tokens",
                          {"model": served(srv), "messages": [{"role": "user", "content": "hi"}]},
                          "input_tokens")
        assert n in (tokens(cases[0][1]), tokens(cases[0][1]) + 1), n
        n = prompt_tokens("/v1/messages/count_tokens",
                          {"model": served(srv), "system": "S", "messages": [{"role": "user", "content": "hi"}]},
                          "input_tokens")
        assert n in (tokens(cases[1][1]), tokens(cases[1][1]) + 1), n
        st, body = post_json(srv.port, "/apply-template", {"messages": [{"role": "user", "content": "hi"}]})
        assert st == 200 and body["prompt"] == "[user|hi]<gen>", body
    finally:
        assert srv.stop() == 0, srv.logs()


def main():
    model, _ = find_model()
    print("model: %s; server: %s" % (model, server_bin()))
    run([("test_echo_template", lambda: test_echo_template(model)),
         ("test_raising_template", lambda: test_raising_template(model)),
         ("test_template_flags", lambda: test_template_flags(model)),
         ("test_system_prompt", lambda: test_system_prompt(model)),
         ("test_named_tool_use", lambda: test_named_tool_use(model)),
         ("test_native_tools", lambda: test_native_tools(model)),
         ("test_smollm2_own_template", test_smollm2_own_template)])


if __name__ == "__main__":
    main()
