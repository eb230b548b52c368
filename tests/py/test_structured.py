"""Structured output through spillway-server: response_format json_schema on
/v1/chat/completions and /v1/completions (whole and streamed), llama.cpp's
json_schema and grammar fields, the official openai client's
beta.chat.completions.parse(response_format=PydanticModel), and the 400s for
schemas and grammars that cannot be honoured (each naming the field and the
feature).

Every answer that ends on its own (finish_reason "stop") must validate against
its schema with Python's jsonschema (the reference validator, formats
checked); an answer cut by max_tokens must still be a prefix the grammar
accepts (checked with spillway-grammar --check). The schemas are bounded where
a tiny model is used, so its answers do end on their own.

Runs on stories260K (or a synthetic model) and on SmolLM2-135M-Instruct when
scripts/fetch-model.sh can provide it (skipped with its reason otherwise)."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import (Server, assert_error, find_model, post_json, run, server_bin,  # noqa: E402
                         sse_events)

import jsonschema  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")

# Bounded schemas: every sentence is short, so even a random model stops.
BOUNDED = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                      "age": {"type": "integer", "minimum": 0, "maximum": 120}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 3},
    {"anyOf": [{"type": "boolean"}, {"type": "null"},
               {"type": "number", "exclusiveMinimum": -2.5, "maximum": 7}]},
    {"type": "string", "pattern": "^[A-Z][a-z]{1,6}-\\d{2}$"},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date"},
                                      "id": {"type": "string", "format": "uuid"},
                                      "ok": {"type": "boolean"}},
     "required": ["when", "id"], "additionalProperties": False},
    {"$defs": {"leaf": {"type": "object", "properties": {"v": {"type": "integer", "minimum": -9, "maximum": 9}},
                        "required": ["v"], "additionalProperties": False}},
     "type": "array", "prefixItems": [{"$ref": "#/$defs/leaf"}, {"const": "end"}], "items": False},
    {"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer", "minimum": 0, "maximum": 9}},
                "required": ["kind", "x"], "additionalProperties": False},
               {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "boolean"}},
                "required": ["kind", "y"], "additionalProperties": False}]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 4},
                                               "maxItems": 2}},
     "required": ["tags"], "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 5}},
]

# Unbounded, realistic schemas for a real model (it stops when done).
REALISTIC = [
    {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"},
                                      "population": {"type": "integer", "minimum": 0}},
     "required": ["city", "country", "population"], "additionalProperties": False},
    {"type": "object", "properties": {"title": {"type": "string", "maxLength": 40},
                                      "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
                                      "genres": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
     "required": ["title", "year", "genres"], "additionalProperties": False},
]


def validate(schema, text, what):
    try:
        inst = json.loads(text)
    except ValueError as e:
        raise AssertionError(f"{what}: not JSON ({e}): {text!r}")
    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errs = list(v.iter_errors(inst))
    assert not errs, f"{what}: {text!r} does not validate: {errs[0].message}"


def grammar_check(schema, text):
    """spillway-grammar --check on text: complete, prefix or refused."""
    tool = os.path.join(os.path.dirname(server_bin()), "spillway-grammar")
    path = os.path.join(os.environ.get("SW_TMP_DIR", "/tmp"), f"structured-{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(schema, f)
    line = json.dumps(text.encode().decode("latin-1"))
    r = subprocess.run([tool, "--schema", path, "--check"], input=line + "\n", capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def check_answer(schema, text, finish, what):
    if finish == "stop":
        validate(schema, text, what)
    else:
        assert finish == "length", f"{what}: finish_reason {finish}"
        assert grammar_check(schema, text) in ("prefix", "complete"), f"{what}: {text!r}"


def rf(schema):
    return {"type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": schema}}


class Suite:
    def __init__(self, srv, schemas, max_tokens, real):
        self.srv, self.port, self.schemas, self.max_tokens = srv, srv.port, schemas, max_tokens
        self.real = real  # a trained model (the richer parse test)
        self.stops = 0

    def chat(self, schema, **extra):
        body = {"messages": [{"role": "user", "content": "Answer with JSON only."}],
                "max_tokens": self.max_tokens, "response_format": rf(schema), "temperature": 0.7,
                "seed": 7}
        body.update(extra)
        return post_json(self.port, "/v1/chat/completions", body, timeout=300)

    def test_chat_schemas(self):
        for i, schema in enumerate(self.schemas):
            st, r = self.chat(schema)
            assert st == 200, r
            c = r["choices"][0]
            check_answer(schema, c["message"]["content"], c["finish_reason"], f"chat schema {i}")
            self.stops += c["finish_reason"] == "stop"
        # most answers end on their own, so the validation above is exercised
        assert self.stops * 2 >= len(self.schemas), f"only {self.stops} of {len(self.schemas)} stopped"

    def test_greedy_schemas(self):
        for i, schema in enumerate(self.schemas[:3]):
            st, r = self.chat(schema, temperature=0)
            assert st == 200, r
            c = r["choices"][0]
            check_answer(schema, c["message"]["content"], c["finish_reason"], f"greedy schema {i}")
            self.stops += c["finish_reason"] == "stop"

    def test_completions(self):
        schema = self.schemas[0]
        for field in ("response_format", "json_schema"):
            body = {"prompt": "JSON:", "max_tokens": self.max_tokens, "seed": 3}
            body[field] = rf(schema) if field == "response_format" else schema
            st, r = post_json(self.port, "/v1/completions", body, timeout=300)
            assert st == 200, r
            c = r["choices"][0]
            check_answer(schema, c["text"], c["finish_reason"], f"completions {field}")
        # llama.cpp's json_object with a schema inside
        st, r = self.chat(None, response_format={"type": "json_object", "schema": schema})
        assert st == 200, r
        c = r["choices"][0]
        check_answer(schema, c["message"]["content"], c["finish_reason"], "json_object + schema")

    def test_grammar_field(self):
        gbnf = 'root ::= "- " item ("\\n- " item){0,2}\nitem ::= [a-z]{1,8}\n'
        for path, body in (("/v1/completions", {"prompt": "A list:"}),
                           ("/v1/chat/completions", {"messages": [{"role": "user", "content": "A list"}]})):
            body.update({"grammar": gbnf, "max_tokens": 64, "seed": 1})
            st, r = post_json(self.port, path, body, timeout=300)
            assert st == 200, r
            c = r["choices"][0]
            text = c.get("text", c.get("message", {}).get("content"))
            lines = text.split("\n")
            if c["finish_reason"] == "stop":
                assert 1 <= len(lines) <= 3 and all(l.startswith("- ") and l[2:].isalpha() and l[2:].islower()
                                                    and len(l) <= 10 for l in lines), text

    def test_stream(self):
        schema = self.schemas[1]
        body = {"messages": [{"role": "user", "content": "Colors as JSON."}], "max_tokens": self.max_tokens,
                "response_format": rf(schema), "stream": True, "seed": 11}
        st, events, raw = sse_events(self.port, "/v1/chat/completions", body, timeout=300)
        assert st == 200, raw
        assert events[-1] == "[DONE]"
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e.get("choices"))
        finish = [e["choices"][0]["finish_reason"] for e in events[:-1] if e.get("choices")][-1]
        check_answer(schema, text, finish, "stream")

    def test_pydantic_parse(self):
        import openai
        import pydantic
        from typing import List, Literal, Optional

        class Pet(pydantic.BaseModel):
            kind: Literal["cat", "dog"]
            legs: int = pydantic.Field(ge=0, le=4)

        class Owner(pydantic.BaseModel):
            name: str = pydantic.Field(max_length=8)
            nickname: Optional[str] = pydantic.Field(max_length=5)
            pets: List[Pet] = pydantic.Field(max_length=2)

        class Small(pydantic.BaseModel):  # short enough that a tiny model must finish
            name: str = pydantic.Field(max_length=6)
            age: int = pydantic.Field(ge=0, le=99)
            nick: Optional[str] = pydantic.Field(max_length=3)

        c = openai.OpenAI(base_url=self.srv.base + "/v1", api_key="none", max_retries=0, timeout=300)
        model = c.models.list().data[0].id
        for cls, mt in ((Small, 330), (Owner, self.max_tokens)):
            if cls is Owner and not self.real:
                continue
            r = c.beta.chat.completions.parse(model=model, response_format=cls, max_tokens=mt,
                                              messages=[{"role": "user", "content": "Fill in the JSON."}])
            ch = r.choices[0]
            assert ch.finish_reason == "stop", ch
            assert isinstance(ch.message.parsed, cls), ch.message
            validate(cls.model_json_schema(), ch.message.content, cls.__name__)

    def test_errors(self):
        cases = [
            ({"response_format": rf({"type": "array", "contains": {}})}, "response_format", "'contains'"),
            ({"response_format": rf({"type": "string", "pattern": "(a)\\1"})}, "response_format", "backreferences"),
            ({"response_format": rf({"type": "integer", "multipleOf": 2})}, "response_format", "multipleOf"),
            ({"json_schema": {"$ref": "#/$defs/nope"}}, "json_schema", "does not resolve"),
            ({"grammar": "root ::= undefined-rule\n"}, "grammar", "not defined"),
            ({"grammar": "root ::= root \"a\" | \"b\"\n"}, "grammar", "left-recursive"),
            ({"grammar": "root ::= \"a\"", "json_schema": {}}, "grammar", "one output constraint"),
            ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "required"),
            ({"response_format": {"type": "json_schema", "json_schema": {"schema": 3}}},
             "response_format.json_schema.schema", None),
            ({"json_schema": "x"}, "json_schema", None),
            ({"grammar": 5}, "grammar", None),
        ]
        for extra, param, says in cases:
            body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 4}
            body.update(extra)
            st, r = post_json(self.port, "/v1/chat/completions", body)
            assert_error(st, r, 400, param=param, what=json.dumps(extra))
            if says:
                assert says in r["error"]["message"], (says, r)
        # the server keeps serving
        st, r = self.chat(self.schemas[0])
        assert st == 200, r

    def test_anthropic_format(self):
        schema = self.schemas[0]
        body = {"model": "local", "max_tokens": self.max_tokens, "messages": [{"role": "user", "content": "JSON"}],
                "output_config": {"format": {"type": "json_schema", "schema": schema}}}
        st, r = post_json(self.port, "/v1/messages", body, timeout=300)
        assert st == 200, r
        text = "".join(b["text"] for b in r["content"] if b["type"] == "text")
        check_answer(schema, text, "stop" if r["stop_reason"] == "end_turn" else "length", "anthropic format")
        body["output_config"]["format"]["schema"] = {"type": "array", "contains": {}}
        st, r = post_json(self.port, "/v1/messages", body)
        assert st == 400 and r["type"] == "error" and "'contains'" in r["error"]["message"], r

    def tests(self):
        return [("anthropic_format", self.test_anthropic_format), ("chat_schemas", self.test_chat_schemas), ("greedy_schemas", self.test_greedy_schemas),
                ("completions", self.test_completions), ("grammar_field", self.test_grammar_field),
                ("stream", self.test_stream), ("pydantic_parse", self.test_pydantic_parse),
                ("errors", self.test_errors)]


def smollm2():
    r = subprocess.run([os.path.join(ROOT, "scripts", "fetch-model.sh"), "smollm2"], capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout.strip(), None
    return None, (r.stderr.strip() or f"fetch-model.sh exited {r.returncode}")


def main():
    tiny, _ = find_model()
    groups = [("tiny", tiny, BOUNDED, 200, False)]
    path, why = smollm2()
    # under the sanitizers (scripts/test.sh sets ASAN_OPTIONS) a real model
    # runs ~10x slower: fewer schemas and tokens there
    asan = bool(os.environ.get("ASAN_OPTIONS"))
    if path:
        groups.append(("smollm2", path, (BOUNDED[:1] if asan else BOUNDED[:3]) + REALISTIC[:1 if asan else 2],
                       96 if asan else 160, True))
    else:
        print(f"SmolLM2 group skipped: {why}")
    all_tests = []
    servers = []
    try:
        for name, model, schemas, mt, real in groups:
            srv = Server(model, "--threads", "2", "--parallel", "4")
            servers.append(srv)
            s = Suite(srv, schemas, mt, real)
            all_tests += [(f"{name}:{n}", f) for n, f in s.tests()]
        run(all_tests)
    finally:
        for srv in servers:
            srv.stop()


if __name__ == "__main__":
    main()
