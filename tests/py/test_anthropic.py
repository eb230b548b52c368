"""The Anthropic Messages API of spillway-server, driven by the official
`anthropic` SDK and raw HTTP: create, stream (the exact event sequence, and
streamed text equal to the whole answer at temperature 0), count_tokens,
system prompts, stop sequences, a prefilled assistant turn, errors in
Anthropic's shape for bad bodies (each 4xx, the server keeps serving), auth
with x-api-key and Bearer, and, against tests/py/fake_provider.py: overflow
spilled to an Anthropic cloud (the body passed through with its blocks and
tools; answer, tool use and stop sequence back intact, streamed and not) and
to an OpenAI-compatible one (translated both ways, tool calls included).

Environment as tests/py/test_server.py (SW_SERVER_BIN for the ASan build)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, find_model, request, run_suite, server_bin  # noqa: E402
from test_spill import CLOUD_MODEL, KEY, KEY_ENV, Fake, write_json  # noqa: E402

MSGS = [{"role": "user", "content": "Once upon a time"}]


def anthropic_client(srv, key="none", **kw):
    import anthropic
    return anthropic.Anthropic(base_url=srv.base, api_key=key, max_retries=0, timeout=120, **kw)


def events_of(raw):
    """[(event name, data object)] of an SSE body."""
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name, (name, data)
        out.append((name, data))
    return out


def assert_anthropic_error(st, body, want, etype=None, what=""):
    assert st == want, f"{what}: status {st}, want {want}: {body[:300]!r}"
    obj = json.loads(body)
    assert obj.get("type") == "error" and isinstance(obj.get("error"), dict), f"{what}: {obj}"
    e = obj["error"]
    assert isinstance(e.get("message"), str) and e["message"], f"{what}: {obj}"
    if etype:
        assert e.get("type") == etype, f"{what}: type {e.get('type')!r}, want {etype!r}"
    return e


class Suite:
    def __init__(self, model):
        self.srv = Server(model)
        self.port = self.srv.port
        self.c = anthropic_client(self.srv)
        self.model = os.path.basename(model)[:-5]

    def create(self, **kw):
        args = dict(model=self.model, max_tokens=24, messages=MSGS,
                    extra_body={"temperature": 0})
        args.update(kw)
        return self.c.messages.create(**args)

    def alive(self):
        st, _, _ = request(self.port, "GET", "/health")
        assert st == 200 and self.srv.alive()

    def test_create(self):
        raw = self.c.messages.with_raw_response.create(
            model=self.model, max_tokens=24, messages=MSGS, extra_body={"temperature": 0})
        assert raw.headers["x-spillway-route"] == "local; reason=default", raw.headers
        m = raw.parse()
        assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant", m
        assert m.model == self.model, m
        assert len(m.content) == 1 and m.content[0].type == "text" and m.content[0].text, m
        assert m.stop_reason in ("end_turn", "max_tokens") and m.stop_sequence is None, m
        assert m.usage.input_tokens > 0 and 0 < m.usage.output_tokens <= 24, m.usage
        assert m.model_extra["spillway"]["route"] == "local", m.model_extra
        # max_tokens ends it: stop_reason says so
        m = self.create(max_tokens=3)
        assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3, m

    def test_stream_matches(self):
        whole = self.create(max_tokens=40)
        with self.c.messages.stream(model=self.model, max_tokens=40, messages=MSGS,
                                    extra_body={"temperature": 0}) as st:
            text = "".join(st.text_stream)
            final = st.get_final_message()
        assert text == whole.content[0].text, (text, whole.content[0].text)
        assert final.content[0].text == text and final.stop_reason == whole.stop_reason
        assert final.usage.output_tokens == whole.usage.output_tokens, (final.usage, whole.usage)
        assert final.usage.input_tokens == whole.usage.input_tokens

    def test_stream_event_sequence(self):
        st, h, raw = request(self.port, "POST", "/v1/messages",
                             {"model": self.model, "max_tokens": 8, "messages": MSGS,
                              "stream": True, "temperature": 0})
        assert st == 200 and h["content-type"].startswith("text/event-stream"), (st, h)
        ev = events_of(raw)
        names = [n for n, _ in ev]
        assert names[:3] == ["message_start", "content_block_start", "ping"], names
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"], names
        assert set(names[3:-3]) == {"content_block_delta"}, names
        start = ev[0][1]["message"]
        assert start["id"].startswith("msg_") and start["content"] == [] and \
            start["stop_reason"] is None and start["usage"]["input_tokens"] > 0, start
        assert start["spillway"]["route"] == "local", start
        assert ev[1][1] == {"type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}}, ev[1]
        for _, d in ev[3:-3]:
            assert d["index"] == 0 and d["delta"]["type"] == "text_delta", d
        delta = ev[-2][1]
        assert delta["delta"]["stop_reason"] == "max_tokens" and delta["usage"]["output_tokens"] == 8

    def test_count_tokens(self):
        n = self.c.messages.count_tokens(model=self.model, messages=MSGS).input_tokens
        assert n == self.create(max_tokens=1).usage.input_tokens, n
        sys_str = self.c.messages.count_tokens(model=self.model, messages=MSGS,
                                               system="You are kind.").input_tokens
        sys_blocks = self.c.messages.count_tokens(
            model=self.model, messages=MSGS, system=[{"type": "text", "text": "You are kind."}])
        assert sys_str > n and sys_blocks.input_tokens == sys_str, (n, sys_str, sys_blocks)
        m = self.create(max_tokens=1, system=[{"type": "text", "text": "You are kind."}])
        assert m.usage.input_tokens == sys_str, m.usage

    def test_stop_sequence(self):
        text = self.create(max_tokens=40).content[0].text
        words = text.split()
        assert len(words) >= 3, text
        stop = words[2]
        m = self.create(max_tokens=40, stop_sequences=["zzzq-never", stop])
        assert m.stop_reason == "stop_sequence" and m.stop_sequence == stop, m
        assert m.content[0].text == text[:text.index(stop)], (m.content[0].text, text)
        with self.c.messages.stream(model=self.model, max_tokens=40, messages=MSGS,
                                    stop_sequences=[stop], extra_body={"temperature": 0}) as st:
            streamed = "".join(st.text_stream)
            final = st.get_final_message()
        assert streamed == m.content[0].text and final.stop_sequence == stop, (streamed, final)

    def test_prefill(self):
        text = self.create(max_tokens=30).content[0].text
        cut = text.index(" ", 1)  # up to the first word (a token boundary)
        m = self.create(max_tokens=30, messages=MSGS + [
            {"role": "assistant", "content": text[:cut]}])
        assert (text[:cut] + m.content[0].text)[:len(text) - 8] == text[:len(text) - 8], \
            (text, text[:cut], m.content[0].text)

    def test_blocks_and_history(self):
        # text blocks, a multi-turn conversation, a tool_result answering its
        # tool_use (tool_choice none: tools ride along, no call is asked for)
        tools = [{"name": "get_weather", "description": "weather by city",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
        msgs = [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                     "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "text", "text": "And so?"}]}]
        m = self.create(messages=msgs, tools=tools, tool_choice={"type": "none"}, max_tokens=4)
        assert m.content[0].type == "text" and m.usage.output_tokens == 4, m
        # local tool use (tool choice "tool"): one tool_use block whose input
        # follows the input_schema (tests/py/test_tools.py checks it in depth)
        m = self.create(messages=msgs, tools=tools, tool_choice={"type": "tool", "name": "get_weather"},
                        max_tokens=600)
        if m.stop_reason == "tool_use":
            uses = [b for b in m.content if b.type == "tool_use"]
            assert len(uses) == 1 and uses[0].name == "get_weather", m
            assert isinstance(uses[0].input, dict), m
        else:
            assert m.stop_reason == "max_tokens", m

    def test_bad_bodies(self):
        p = self.port
        good = {"model": self.model, "max_tokens": 4, "messages": MSGS}

        def b(**kw):
            d = dict(good)
            d.update(kw)
            return json.dumps({k: v for k, v in d.items() if v is not None})

        tool = {"name": "f", "input_schema": {"type": "object"}}
        cases = [
            ("missing max_tokens", b(max_tokens=None), "max_tokens"),
            ("max_tokens 0", b(max_tokens=0), "max_tokens"),
            ("max_tokens string", b(max_tokens="9"), "max_tokens"),
            ("messages missing", b(messages=None), "messages"),
            ("messages empty", b(messages=[]), "messages"),
            ("system role", b(messages=[{"role": "system", "content": "x"}]), "role"),
            ("content missing", b(messages=[{"role": "user"}]), "content"),
            ("content int", b(messages=[{"role": "user", "content": 3}]), "content"),
            ("image block", b(messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "AAAA"}}]}]), "image"),
            ("unknown block", b(messages=[{"role": "user", "content": [{"type": "video"}]}]),
             "video"),
            ("text block without text", b(messages=[{"role": "user", "content": [
                {"type": "text"}]}]), "text"),
            ("tool_result without tool_use", b(messages=[{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_x", "content": "hi"}]}]),
             "tool_use"),
            ("tool_result for another id", b(messages=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f",
                                                   "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b"}]}],
                tools=[tool]), "tool_use"),
            ("tool_use from the user", b(messages=[{"role": "user", "content": [
                {"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]), "tool_use"),
            ("tool_use input string", b(messages=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f",
                                                   "input": "x"}]}]), "input"),
            ("temperature 2", b(temperature=2), "temperature"),
            ("top_k -1", b(top_k=-1), "top_k"),
            ("stop_sequences string", b(stop_sequences="x"), "stop_sequences"),
            ("system int", b(system=5), "system"),
            ("system image block", b(system=[{"type": "image"}]), "system"),
            ("tools not list", b(tools={}), "tools"),
            ("tool without schema", b(tools=[{"name": "f"}]), "input_schema"),
            ("tool schema not object type", b(tools=[{"name": "f", "input_schema": {
                "type": "string"}}]), "input_schema"),
            ("tool bad name", b(tools=[{"name": "a b", "input_schema": {"type": "object"}}]),
             "name"),
            ("duplicate tools", b(tools=[tool, tool]), "unique"),
            ("tool_choice unknown tool", b(tools=[tool], tool_choice={"type": "tool",
                                                                        "name": "g"}), "name"),
            ("tool_choice any without tools", b(tool_choice={"type": "any"}), "tool_choice"),
            ("tool_choice bad type", b(tools=[tool], tool_choice={"type": "maybe"}), "maybe"),
            ("thinking", b(thinking={"type": "enabled", "budget_tokens": 1024}), "thinking"),
            ("metadata string", b(metadata="x"), "metadata"),
            ("stream string", b(stream="yes"), "stream"),
            ("not json", "{", None),
            ("array body", "[]", None),
            ("deep nesting", b()[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}", None),
        ]
        failures = []
        for name, body, word in cases:
            try:
                st, _, data = request(p, "POST", "/v1/messages", body)
                e = assert_anthropic_error(st, data, 400, "invalid_request_error", name)
                if word:
                    assert word in e["message"], f"{name}: {word!r} not in {e['message']!r}"
            except Exception as ex:  # noqa: BLE001
                failures.append(f"{name}: {ex}")
        # other statuses keep the shape
        st, _, data = request(p, "POST", "/v1/messages",
                              b()[:-1] + ', "pad": "' + "x" * (2 << 20) + '"}')
        try:
            assert_anthropic_error(st, data, 413, "request_too_large", "oversize")
        except Exception as ex:  # noqa: BLE001
            failures.append(f"oversize: {ex}")
        st, _, data = request(p, "GET", "/v1/messages")
        try:
            assert_anthropic_error(st, data, 405, "invalid_request_error", "GET")
        except Exception as ex:  # noqa: BLE001
            failures.append(f"GET: {ex}")
        st, _, data = request(p, "POST", "/v1/messages", b(max_tokens=10_000_000))
        try:
            assert_anthropic_error(st, data, 400, "invalid_request_error", "context")
        except Exception as ex:  # noqa: BLE001
            failures.append(f"context: {ex}")
        assert not failures, "\n".join(failures)
        # and the SDK raises its own error class with the body
        import anthropic
        try:
            self.c.messages.create(model=self.model, max_tokens=4,
                                   messages=[{"role": "user", "content": [{"type": "video"}]}])
            raise AssertionError("no error")
        except anthropic.BadRequestError as e:
            assert e.status_code == 400 and e.body["error"]["type"] == "invalid_request_error"
        self.alive()


def test_auth(model):
    import anthropic
    srv = Server(model, "--api-key", "sk-ant-good")
    try:
        hdrs = {"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04"}
        ok = anthropic_client(srv, "sk-ant-good", default_headers=hdrs)  # x-api-key
        m = ok.messages.create(model=os.path.basename(model)[:-5], max_tokens=2, messages=MSGS)
        assert m.usage.output_tokens == 2
        st, _, body = request(srv.port, "POST", "/v1/messages",
                              {"model": os.path.basename(model)[:-5], "max_tokens": 2,
                               "messages": MSGS},
                              {"Authorization": "Bearer sk-ant-good"})
        assert st == 200, body
        try:
            anthropic_client(srv, "sk-ant-bad").messages.create(model="m", max_tokens=2,
                                                               messages=MSGS)
            raise AssertionError("a bad key was accepted")
        except anthropic.AuthenticationError as e:
            assert e.status_code == 401 and e.body["error"]["type"] == "authentication_error"
        for hdr in ({"x-api-key": "nope"}, {"Authorization": "Bearer nope"}, {}):
            st, _, body = request(srv.port, "POST", "/v1/messages/count_tokens",
                                  {"messages": MSGS}, hdr)
            assert_anthropic_error(st, body, 401, "authentication_error", f"count_tokens {hdr}")
    finally:
        assert srv.stop() == 0


def test_cloud_anthropic(model, fake):
    """Overflow on /v1/messages spills to an Anthropic provider: the client's
    body goes out as it is (blocks, tools), the answer comes back intact."""
    import anthropic
    fake.reset()
    rc = write_json("anth-rc.json", {"monitor": {"enabled": False}, "cloud": {"max_attempts": 1}})
    srv = Server(model, "--ctx", "128", "--cloud-provider", "anthropic", "--cloud-url", fake.url,
                 "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV, "--route-config", rc,
                 env={KEY_ENV: KEY})
    try:
        c = anthropic_client(srv)
        system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
        msgs = [{"role": "user", "content": [{"type": "text", "text": "Tell me about the sea"}]}]
        raw = c.messages.with_raw_response.create(model="stories260K", max_tokens=200,
                                                  system=system, messages=msgs)
        assert raw.headers["x-spillway-route"] == "cloud; reason=overflow", raw.headers
        m = raw.parse()
        assert m.content[0].text == "fake reply: Tell me about the sea", m
        assert m.model == CLOUD_MODEL and m.id.startswith("msg_") and m.stop_reason == "end_turn"
        assert m.model_extra["spillway"]["cloud"]["provider"] == "anthropic", m.model_extra
        sent = fake.stats()["last"]["body"]
        assert sent["system"] == system and sent["messages"] == msgs, sent  # passed through
        assert sent["model"] == CLOUD_MODEL and sent["max_tokens"] == 200 and "stream" not in sent
        # streamed, with a stop sequence
        with c.messages.stream(model="stories260K", max_tokens=200, messages=msgs,
                               stop_sequences=["the sea"]) as st:
            text = "".join(st.text_stream)
            final = st.get_final_message()
        assert text == "fake reply: Tell me about " and final.stop_reason == "stop_sequence" \
            and final.stop_sequence == "the sea", (text, final)
        assert fake.stats()["last"]["body"]["stream"] is True
        # forced tool use, whole and streamed: tools and tool_choice pass through
        tools = [{"name": "search", "description": "search the web",
                  "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]
        m = c.messages.create(model="stories260K", max_tokens=200, messages=msgs, tools=tools,
                              tool_choice={"type": "tool", "name": "search"})
        assert m.stop_reason == "tool_use" and m.content[0].type == "tool_use", m
        assert m.content[0].id == "toolu_fake01" and m.content[0].name == "search"
        assert m.content[0].input == {"query": "Tell me about the sea"}, m.content[0]
        sent = fake.stats()["last"]["body"]
        assert sent["tools"] == tools and sent["tool_choice"] == {"type": "tool", "name": "search"}
        with c.messages.stream(model="stories260K", max_tokens=200, messages=msgs, tools=tools,
                               tool_choice={"type": "any"}) as st:
            final = st.get_final_message()
        assert final.stop_reason == "tool_use" and final.content[0].type == "tool_use", final
        assert final.content[0].input == {"query": "Tell me about the sea"}, final
        # the tool's result goes back out in its blocks
        follow = msgs + [{"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                            for b in m.content]},
                         {"role": "user", "content": [{"type": "tool_result",
                                                       "tool_use_id": "toolu_fake01",
                                                       "content": "it is wet"}]}]
        m2 = c.messages.create(model="stories260K", max_tokens=200, messages=follow, tools=tools)
        assert m2.content[0].text == "fake reply: tool said it is wet", m2
        # a provider failure on an overflow is an Anthropic-shaped error
        fake.control(script=["529"])
        try:
            c.messages.create(model="stories260K", max_tokens=200, messages=msgs)
            raise AssertionError("no error")
        except anthropic.APIStatusError as e:
            assert e.status_code >= 500 and e.body["type"] == "error", e.body
        fake.control(script=[])
    finally:
        assert srv.stop() == 0


def test_cloud_openai(model, fake):
    """Overflow on /v1/messages to an OpenAI-compatible provider: translated
    there and back, tool calls included."""
    fake.reset()
    rc = write_json("anth-rc2.json", {"monitor": {"enabled": False}, "cloud": {"max_attempts": 1}})
    srv = Server(model, "--ctx", "128", "--cloud-provider", "openai", "--cloud-url",
                 fake.url + "/v1", "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                 "--route-config", rc, env={KEY_ENV: KEY})
    try:
        c = anthropic_client(srv)
        msgs = [{"role": "user", "content": "Tell me about the sea"}]
        m = c.messages.create(model="stories260K", max_tokens=200, system="Be brief.",
                              messages=msgs)
        assert m.content[0].text == "fake reply: Tell me about the sea", m
        sent = fake.stats()["last"]["body"]
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}, sent
        assert sent["messages"][1] == {"role": "user", "content": "Tell me about the sea"}
        tools = [{"name": "search", "input_schema": {"type": "object"}}]
        m = c.messages.create(model="stories260K", max_tokens=200, messages=msgs, tools=tools,
                              tool_choice={"type": "any"})
        assert m.stop_reason == "tool_use" and m.content[0].type == "tool_use", m
        assert m.content[0].id == "call_fake01" and m.content[0].input == {
            "query": "Tell me about the sea"}, m.content[0]
        sent = fake.stats()["last"]["body"]
        assert sent["tool_choice"] == "required" and \
            sent["tools"][0]["function"]["name"] == "search", sent
        with c.messages.stream(model="stories260K", max_tokens=200, messages=msgs, tools=tools,
                               tool_choice={"type": "tool", "name": "search"}) as st:
            final = st.get_final_message()
        assert final.content[0].type == "tool_use" and final.content[0].input == {
            "query": "Tell me about the sea"}, final
        follow = msgs + [{"role": "assistant", "content": [
                             {"type": "tool_use", "id": "call_fake01", "name": "search",
                              "input": {"query": "sea"}}]},
                         {"role": "user", "content": [{"type": "tool_result",
                                                       "tool_use_id": "call_fake01",
                                                       "content": "it is wet"}]}]
        m2 = c.messages.create(model="stories260K", max_tokens=200, messages=follow, tools=tools)
        assert m2.content[0].text == "fake reply: tool said it is wet", m2
        sent = fake.stats()["last"]["body"]["messages"]
        assert sent[1]["tool_calls"][0]["function"] == {"name": "search",
                                                        "arguments": '{"query":"sea"}'}, sent
        assert sent[2] == {"role": "tool", "tool_call_id": "call_fake01",
                           "content": "it is wet"}, sent
    finally:
        assert srv.stop() == 0


def test_cloud_redaction(model, fake):
    """With the PII action "redact", an Anthropic request spilled to an
    Anthropic provider leaves with placeholders in every text (system blocks,
    text blocks, tool inputs and results), and the answer comes back with the
    values: text whole and streamed (also in 3-character deltas), and tool
    inputs."""
    from test_privacy import assert_nothing_left
    fake.reset()
    email, card = "jane.doe@example.com", "4111 1111 1111 1111"
    rc = write_json("anth-red.json", {"pii": {"action": "redact"}, "monitor": {"enabled": False},
                                      "cloud": {"max_attempts": 1}})
    srv = Server(model, "--ctx", "128", "--cloud-provider", "anthropic", "--cloud-url", fake.url,
                 "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV, "--route-config", rc,
                 env={KEY_ENV: KEY})
    try:
        c = anthropic_client(srv)
        tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
        msgs = [{"role": "user", "content": [{"type": "text", "text": "Who is " + email + "?"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                                                   "name": "lookup", "input": {"who": email}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                              "content": "card " + card},
                                             {"type": "text", "text": "Mail " + email}]}]
        system = [{"type": "text", "text": "Owner: " + email}]
        want = "fake reply: " + " | ".join([
            "Owner: " + email, "Who is " + email + "?", json.dumps({"who": email}),
            "card " + card, "Mail " + email])
        for mode in ("echo_all", "echo_all+tiny"):
            fake.reset()
            fake.control(default=mode)
            m = c.messages.create(model="stories260K", max_tokens=200, system=system, messages=msgs,
                                  tools=tools)
            assert m.content[0].text == want, (mode, m.content[0].text)
            assert m.model_extra["spillway"]["redacted"]["spans"] >= 4, m.model_extra
            with c.messages.stream(model="stories260K", max_tokens=200, system=system, messages=msgs,
                                   tools=tools) as st:
                text = "".join(st.text_stream)
            assert text == want, (mode, text)
            bodies = assert_nothing_left(fake, [email, card])
            sent = json.loads(bodies[-1])
            assert "[EMAIL_1]" in sent["system"][0]["text"], sent
            assert sent["messages"][1]["content"][0]["input"] == {"who": "[EMAIL_1]"}, sent
        # a forced tool call's input comes back with the value
        fake.reset()
        fake.control(default="ok")
        m = c.messages.create(model="stories260K", max_tokens=200, messages=msgs[:1], tools=tools,
                              tool_choice={"type": "any"})
        assert m.content[0].input == {"query": "Who is " + email + "?"}, m.content[0]
        with c.messages.stream(model="stories260K", max_tokens=200, messages=msgs[:1], tools=tools,
                               tool_choice={"type": "any"}) as st:
            final = st.get_final_message()
        assert final.content[0].input == {"query": "Who is " + email + "?"}, final.content[0]
        assert_nothing_left(fake, [email])
    finally:
        fake.control(default="ok")
        assert srv.stop() == 0


def main():
    model, _ = find_model()
    print(f"model: {model}; server: {server_bin()}")
    suite = Suite(model)
    fake = Fake()
    run_suite(suite, [
        ("test_auth", lambda: test_auth(model)),
        ("test_cloud_anthropic", lambda: test_cloud_anthropic(model, fake)),
        ("test_cloud_openai", lambda: test_cloud_openai(model, fake)),
        ("test_cloud_redaction", lambda: test_cloud_redaction(model, fake)),
    ], fake.stop)


if __name__ == "__main__":
    main()
