"""Tool calling through spillway-server, with the official openai and
anthropic clients.

Local model (a tiny one, and SmolLM2-135M-Instruct when scripts/fetch-model.sh
has it): tool_choice "required" and a named function give tool_calls whose
arguments validate against the tool's parameters schema (jsonschema), with
finish_reason tool_calls; "none" gives no tool_calls; "auto" gives text or
valid calls; streaming sends tool_calls deltas exactly as OpenAI does (first
part: index, id, type, name and "" arguments; then index and argument
pieces); a tool-result round in the history is answered; the Anthropic
endpoint's tool_use blocks (and input_json_delta stream) come from the same
core; bad tools, tool messages and choices are 400s naming the field.

Spill-over: with "tools": "cloud" in the route config, a request with tools
goes to the cloud (reason policy_cloud) and tools, the tool choice, earlier
calls and tool results reach an Anthropic provider translated; a request
without tools stays local."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import (Server, assert_error, find_model, post_json, request, run,  # noqa: E402
                         sse_events)

import jsonschema  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "maxLength": 12},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
CALC = {"type": "object",
        "properties": {"a": {"type": "integer", "minimum": -99, "maximum": 99},
                       "b": {"type": "integer", "minimum": -99, "maximum": 99},
                       "op": {"enum": ["+", "-", "*"]}},
        "required": ["a", "b", "op"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "calc", "description": "Integer arithmetic",
                                           "parameters": CALC}},
         {"type": "function", "function": {"name": "now", "description": "The current time"}}]
SCHEMAS = {"get_weather": WEATHER, "calc": CALC,
           "now": {"type": "object", "properties": {}, "additionalProperties": False}}
ASK = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]


def check_calls(calls, allowed=None):
    assert calls, "no tool calls"
    for c in calls:
        name, args = c["function"]["name"], c["function"]["arguments"]
        assert c["type"] == "function" and c["id"].startswith("call_"), c
        assert name in (allowed or SCHEMAS), name
        try:
            inst = json.loads(args)
        except ValueError as e:
            raise AssertionError(f"{name}: arguments are not JSON ({e}): {args!r}")
        errs = list(jsonschema.Draft202012Validator(SCHEMAS[name]).iter_errors(inst))
        assert not errs, f"{name}: {args!r} does not validate: {errs[0].message}"


MAX_TOKENS = 200  # a tiny model needs more: every character is a token


def chat(port, **kw):
    body = {"messages": ASK, "tools": TOOLS, "max_tokens": MAX_TOKENS, "seed": 5}
    body.update(kw)
    st, r = post_json(port, "/v1/chat/completions", body, timeout=300)
    assert st == 200, r
    return r["choices"][0]


class Local:
    def __init__(self, srv, real):
        self.srv, self.port, self.real = srv, srv.port, real

    def test_required(self):
        for parallel in (False, True):
            c = chat(self.port, tool_choice="required", parallel_tool_calls=parallel)
            calls = c["message"].get("tool_calls")
            if c["finish_reason"] == "length" and parallel:
                # the model went on calling; only complete calls are reported
                check_calls(calls)
                continue
            assert c["finish_reason"] == "tool_calls", c
            check_calls(calls)
            if not parallel:
                assert len(calls) == 1, calls
            assert c["message"]["content"] is None, c

    def test_named(self):
        for name in ("get_weather", "calc", "now"):
            c = chat(self.port, tool_choice={"type": "function", "function": {"name": name}})
            assert c["finish_reason"] == "tool_calls", c
            calls = c["message"]["tool_calls"]
            assert len(calls) == 1 and calls[0]["function"]["name"] == name, calls
            check_calls(calls)

    def test_none(self):
        c = chat(self.port, tool_choice="none")
        assert not c["message"].get("tool_calls"), c
        assert c["finish_reason"] in ("stop", "length"), c

    def test_auto(self):
        c = chat(self.port, tool_choice="auto")
        calls = c["message"].get("tool_calls")
        if calls:
            check_calls(calls)
            assert "<tool_call>" not in (c["message"]["content"] or ""), c
        else:
            assert c["finish_reason"] in ("stop", "length"), c

    def test_stream_openai_client(self):
        import openai
        cl = openai.OpenAI(base_url=self.srv.base + "/v1", api_key="none", max_retries=0, timeout=300)
        model = cl.models.list().data[0].id
        stream = cl.chat.completions.create(model=model, messages=ASK, tools=TOOLS, max_tokens=MAX_TOKENS,
                                            tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                            stream=True)
        calls, finish, first = {}, None, {}
        for chunk in stream:
            if not chunk.choices:
                continue
            d = chunk.choices[0].delta
            for tc in d.tool_calls or []:
                if tc.index not in calls:  # the first part: id, type, name, "" arguments
                    assert tc.id and tc.type == "function" and tc.function.name, tc
                    assert tc.function.arguments == "", tc
                    first[tc.index] = tc
                    calls[tc.index] = {"id": tc.id, "type": "function",
                                       "function": {"name": tc.function.name, "arguments": ""}}
                else:  # later parts: the index and a piece of the arguments
                    assert tc.id is None and tc.function.name is None, tc
                    calls[tc.index]["function"]["arguments"] += tc.function.arguments
            assert not d.content, d
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls", finish
        assert list(calls) == [0], calls
        check_calls(list(calls.values()), ["get_weather"])
        # the same stream, raw: no content key on tool-call chunks
        st, events, raw = sse_events(self.port, "/v1/chat/completions",
                                     {"messages": ASK, "tools": TOOLS, "tool_choice": "required", "stream": True,
                                      "parallel_tool_calls": False, "max_tokens": MAX_TOKENS, "seed": 2},
                                     timeout=300)
        assert st == 200 and events[-1] == "[DONE]", raw
        for e in events[1:-1]:
            if e["choices"] and "tool_calls" in e["choices"][0]["delta"]:
                assert "content" not in e["choices"][0]["delta"], e

    def test_tool_result_round(self):
        msgs = ASK + [
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees and sunny"}]
        c = chat(self.port, messages=msgs, tool_choice="none", max_tokens=40)
        assert c["finish_reason"] in ("stop", "length") and not c["message"].get("tool_calls"), c
        c = chat(self.port, messages=msgs, tool_choice="auto")
        if c["message"].get("tool_calls"):
            check_calls(c["message"]["tool_calls"])

    def test_anthropic(self):
        import anthropic
        cl = anthropic.Anthropic(base_url=self.srv.base, api_key="none", max_retries=0, timeout=300)
        tools = [{"name": "get_weather", "description": "weather", "input_schema": WEATHER}]
        m = cl.messages.create(model="local", max_tokens=MAX_TOKENS, messages=ASK, tools=tools,
                               tool_choice={"type": "tool", "name": "get_weather"})
        assert m.stop_reason == "tool_use", m
        uses = [b for b in m.content if b.type == "tool_use"]
        assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].id.startswith("toolu_"), m
        assert not list(jsonschema.Draft202012Validator(WEATHER).iter_errors(uses[0].input)), uses[0].input
        with cl.messages.stream(model="local", max_tokens=MAX_TOKENS, messages=ASK, tools=tools,
                                tool_choice={"type": "any"}) as s:
            final = s.get_final_message()
        uses = [b for b in final.content if b.type == "tool_use"]
        assert uses and final.stop_reason in ("tool_use", "max_tokens"), final
        # cut by max_tokens, the last call streamed so far is unfinished
        for u in uses if final.stop_reason == "tool_use" else uses[:-1]:
            assert not list(jsonschema.Draft202012Validator(WEATHER).iter_errors(u.input)), u.input

    def test_errors(self):
        bad_tool = [{"type": "function", "function": {"name": "bad name!"}}]
        cases = [
            ({"tools": bad_tool}, "tools[0].function.name"),
            ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
            ({"tools": TOOLS + TOOLS[:1]}, "tools"),
            ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
            ({"tool_choice": "always"}, "tool_choice"),
            ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
                "type": "object", "properties": {"x": {"type": "string", "pattern": "(a)\\1"}}}}}],
              "tool_choice": "required"}, "tools"),
            ({"tool_choice": "required", "response_format": {"type": "json_object"}}, "response_format"),
            ({"messages": ASK + [{"role": "tool", "tool_call_id": "x", "content": "1"}]}, "messages[1].tool_call_id"),
            ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "messages[0].tool_calls"),
            ({"functions": [{"name": "f"}]}, "functions"),
        ]
        for extra, param in cases:
            body = {"messages": ASK, "tools": TOOLS, "max_tokens": 4}
            body.update(extra)
            st, r = post_json(self.port, "/v1/chat/completions", body)
            assert_error(st, r, 400, param=param, what=json.dumps(extra)[:200])
        st, r = post_json(self.port, "/v1/completions", {"prompt": "x", "tools": TOOLS})
        assert_error(st, r, 400, param="tools", what="completions + tools")

    def tests(self):
        t = [("required", self.test_required), ("named", self.test_named), ("none", self.test_none),
             ("auto", self.test_auto), ("stream_openai_client", self.test_stream_openai_client),
             ("tool_result_round", self.test_tool_result_round), ("anthropic", self.test_anthropic),
             ("errors", self.test_errors)]

        def budget(f):
            def run_it():
                # a tiny model spells everything a character at a time
                global MAX_TOKENS
                MAX_TOKENS = 200 if self.real else 900
                f()
            return run_it
        return [(n, budget(f)) for n, f in t]


def spill_tests(model):
    """tools -> cloud through the Anthropic fake provider (tests/py/fake_provider.py)."""
    from test_spill import CLOUD_MODEL, Fake, cloud_server

    def test():
        fake = Fake()
        srv = None
        try:
            srv = cloud_server(model, fake, {"tools": "cloud", "monitor": {"enabled": False}}, ctx=4096)
            msgs = ASK + [
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "call_1", "type": "function",
                                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"},
                {"role": "user", "content": "And in Oslo?"}]
            st, h, body = request(srv.port, "POST", "/v1/chat/completions",
                                  {"messages": msgs, "tools": TOOLS, "tool_choice": "required", "max_tokens": 50})
            r = json.loads(body)
            assert st == 200, r
            assert h.get("x-spillway-route") == "cloud; reason=policy_cloud", h
            c = r["choices"][0]
            assert c["finish_reason"] == "tool_calls" and c["message"]["tool_calls"], c
            sent = json.loads(fake.stats()["last"]["body"]) if isinstance(fake.stats()["last"]["body"], str) \
                else fake.stats()["last"]["body"]
            assert sent["model"] == CLOUD_MODEL
            assert [t["name"] for t in sent["tools"]] == ["get_weather", "calc", "now"], sent["tools"]
            assert sent["tools"][0]["input_schema"] == WEATHER, sent["tools"][0]
            assert sent["tool_choice"]["type"] == "any", sent["tool_choice"]
            kinds = [b.get("type") for m in sent["messages"] if isinstance(m["content"], list) for b in m["content"]]
            assert "tool_use" in kinds and "tool_result" in kinds, sent["messages"]
            # no tools, or tool_choice none: local
            st, h, body = request(srv.port, "POST", "/v1/chat/completions", {"messages": ASK, "max_tokens": 4})
            assert st == 200 and h.get("x-spillway-route", "").startswith("local"), (st, h, body)
            st, h, body = request(srv.port, "POST", "/v1/chat/completions",
                                  {"messages": ASK, "tools": TOOLS, "tool_choice": "none", "max_tokens": 4})
            assert st == 200 and h.get("x-spillway-route", "").startswith("local"), (st, h, body)
        finally:
            if srv:
                srv.stop()
            fake.stop()
    return [("spill:tools_to_cloud", test)]


def smollm2():
    r = subprocess.run([os.path.join(ROOT, "scripts", "fetch-model.sh"), "smollm2"], capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout.strip(), None
    return None, (r.stderr.strip() or f"fetch-model.sh exited {r.returncode}")


def main():
    tiny, _ = find_model()
    groups = [("tiny", tiny, False)]
    path, why = smollm2()
    if path and os.environ.get("ASAN_OPTIONS"):
        # under the sanitizers a real model runs ~10x slower; the tiny group
        # covers the same code
        print("SmolLM2 group skipped: sanitizer build (ASAN_OPTIONS set)")
    elif path:
        groups.append(("smollm2", path, True))
    else:
        print(f"SmolLM2 group skipped: {why}")
    servers, tests = [], []
    try:
        for name, model, real in groups:
            srv = Server(model, "--threads", "2", "--ctx", "4096")
            servers.append(srv)
            tests += [(f"{name}:{n}", f) for n, f in Local(srv, real).tests()]
        tests += spill_tests(tiny)
        run(tests)
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
