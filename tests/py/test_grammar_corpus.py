"""JSON Schema compilation against Python's jsonschema (the reference
validator, formats checked), without a model: for a corpus of schemas (hand
written ones covering every supported keyword, and Pydantic models as
openai's parse() sends them), spillway-grammar draws random sentences of the
compiled grammar; every one must validate. Mutated sentences that the grammar
still calls complete must validate too. Unsupported schemas must fail to
compile with a message naming the keyword.

Environment: SW_BIN_DIR (spillway-grammar), SW_TMP_DIR."""
import datetime
import enum
import json
import os
import random
import subprocess
import sys
import uuid
from typing import Dict, List, Literal, Optional, Tuple, Union

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import run, server_bin, tmp_dir  # noqa: E402

import jsonschema  # noqa: E402
import pydantic  # noqa: E402
from openai.lib._pydantic import to_strict_json_schema  # noqa: E402

SCHEMAS = [
    {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}, "name": {"type": "string", "minLength": 1,
                                                                                      "maxLength": 20},
                                      "email": {"type": "string", "format": "email"}, "active": {"type": "boolean"}},
     "required": ["id", "name"], "additionalProperties": False},
    {"type": "array", "items": {"type": "number", "minimum": -1e3, "exclusiveMaximum": 1e3}, "minItems": 2, "maxItems": 5},
    {"type": "array", "prefixItems": [{"type": "string", "format": "date"}, {"type": "integer"}, {"type": "null"}],
     "items": {"type": "boolean"}, "maxItems": 5},
    {"type": "string", "pattern": "^(\\+\\d{1,3} )?\\(?\\d{3}\\)?[ -]?\\d{3}-\\d{4}$"},
    {"type": "string", "pattern": "^[A-Z]{2}\\d{2}[A-Z0-9]{4,10}$", "minLength": 8, "maxLength": 12},
    {"type": "string", "pattern": "cat|dog", "maxLength": 15},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "time"},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "ipv4"},
    {"type": "string", "format": "hostname"},
    {"type": "string", "format": "uri"},
    {"type": "number", "exclusiveMinimum": 0, "maximum": 0.001},
    {"type": "number", "minimum": -273.15},
    {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
    {"type": "integer", "exclusiveMaximum": 0},
    {"type": "number", "minimum": 5, "exclusiveMinimum": True},  # draft-04 form
    {"enum": ["a\"b", "c\\d", "é", "\u0001", 3, 2.5, None, True, {"k": [1, {"x": None}]}]},
    {"const": [1, "two", {"three": 3}]},
    {"type": ["array", "string", "null"], "items": {"type": "integer"}, "maxItems": 3, "maxLength": 4},
    {"anyOf": [{"type": "integer", "maximum": 0}, {"type": "string", "maxLength": 3},
               {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}]},
    {"oneOf": [{"type": "object", "properties": {"type": {"const": "circle"}, "r": {"type": "number", "minimum": 0}},
                "required": ["type", "r"], "additionalProperties": False},
               {"type": "object", "properties": {"type": {"const": "rect"}, "w": {"type": "number"}, "h": {"type": "number"}},
                "required": ["type", "w", "h"], "additionalProperties": False}]},
    {"$defs": {"node": {"type": "object", "properties": {"value": {"type": "string", "maxLength": 5},
                                                         "children": {"type": "array", "items": {"$ref": "#/$defs/node"},
                                                                      "maxItems": 3}},
                        "required": ["value"], "additionalProperties": False}}, "$ref": "#/$defs/node"},
    {"definitions": {"pos": {"type": "integer", "minimum": 0}}, "type": "object",
     "properties": {"a": {"$ref": "#/definitions/pos"}, "b": {"$ref": "#/definitions/pos"}}, "required": ["a"]},
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
    {"type": "object", "properties": {"fixed": {"const": 1}},
     "required": ["fixed", "extra"], "additionalProperties": {"type": "boolean"}},
    {"type": "object", "properties": {"note": {"type": "string", "description": "free", "examples": ["x"],
                                               "title": "Note", "default": "", "deprecated": False}},
     "unevaluatedProperties": False, "$comment": "annotations only"},
    {"items": {"type": "integer"}, "maxItems": 2},  # no type: array keywords make an array
    {},
    {"type": "object"},
    {"$ref": "#/$defs/t", "$defs": {"t": {"allOf": [{"type": "string", "enum": ["x", "y"]}]}}},
]


class Color(str, enum.Enum):
    red = "red"
    green = "green"


class Address(pydantic.BaseModel):
    street: str = pydantic.Field(max_length=30)
    zip: str = pydantic.Field(pattern=r"^\d{5}$")


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0, le=130)
    email: Optional[str] = None
    tags: List[str] = []
    color: Color
    home: Address
    others: List[Address] = pydantic.Field(max_length=2)
    born: datetime.date
    seen: datetime.datetime
    key: uuid.UUID
    score: float = pydantic.Field(gt=0, lt=1)
    kind: Literal["a", "b"]
    point: Tuple[int, int]
    extra: Dict[str, int]
    either: Union[int, str]


class Tree(pydantic.BaseModel):
    label: str = pydantic.Field(max_length=4)
    kids: List["Tree"] = pydantic.Field(max_length=2)


PYDANTIC = [Person, Tree]

UNSUPPORTED = [
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
    ({"type": "object", "minProperties": 1}, "minProperties"),
    ({"type": "string", "format": "ipv6"}, "ipv6"),
    ({"not": {"type": "null"}}, "not"),
    ({"if": {"type": "string"}, "then": {"minLength": 1}}, "if"),
    ({"type": "string", "pattern": "(?=x)x"}, "lookaround"),
    ({"type": "object", "dependentRequired": {"a": ["b"]}}, "dependentRequired"),
]


def grammar_tool():
    return os.path.join(os.path.dirname(server_bin()), "spillway-grammar")


def write(schema, i):
    path = os.path.join(tmp_dir(), f"corpus-{os.getpid()}-{i}.json")
    with open(path, "w") as f:
        json.dump(schema, f)
    return path


def samples(path, n, seed):
    r = subprocess.run([grammar_tool(), "--schema", path, "--sample", str(n), "--seed", str(seed), "--max-bytes", "160"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [json.loads(line).encode("latin-1") for line in r.stdout.splitlines()]


def check(path, texts):
    lines = "".join(json.dumps(t.decode("latin-1")) + "\n" for t in texts)
    r = subprocess.run([grammar_tool(), "--schema", path, "--check"], input=lines, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def validator(schema):
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def must_validate(v, raw, what):
    text = raw.decode("utf-8")
    inst = json.loads(text)
    errs = list(v.iter_errors(inst))
    assert not errs, f"{what}: {text!r} does not validate: {errs[0].message}"


def corpus_test(schemas):
    def test():
        rng = random.Random(5)
        total = 0
        for i, schema in enumerate(schemas):
            path = write(schema, i)
            v = validator(schema)
            docs = samples(path, 25, 100 + i)
            assert all(r == "complete" for r in check(path, docs)), f"schema {i}: a sample is not complete"
            for d in docs:
                must_validate(v, d, f"schema {i}")
            # mutations: whatever the grammar still calls complete validates
            muts = []
            for d in docs[:10]:
                for _ in range(6):
                    b = bytearray(d)
                    if not b:
                        continue
                    k = rng.randrange(len(b))
                    op = rng.randrange(3)
                    if op == 0:
                        b[k] = rng.choice(b'0123456789"{}[],:-. eE\\atnfrulx')
                    elif op == 1:
                        del b[k]
                    else:
                        b.insert(k, rng.choice(b'0123456789" ,'))
                    muts.append(bytes(b))
            for m, verdict in zip(muts, check(path, muts)):
                if verdict == "complete":
                    must_validate(v, m, f"schema {i} mutation")
            total += len(docs)
        print(f"  {total} sentences of {len(schemas)} schemas validate")
    return test


def test_unsupported():
    for i, (schema, says) in enumerate(UNSUPPORTED):
        r = subprocess.run([grammar_tool(), "--schema", write(schema, 1000 + i)], capture_output=True, text=True)
        assert r.returncode == 2 and says in r.stderr, (schema, r.returncode, r.stderr)


def main():
    if not os.access(grammar_tool(), os.X_OK):
        print(f"SKIP: no {grammar_tool()}")
        sys.exit(77)
    pyd = [to_strict_json_schema(m) for m in PYDANTIC] + [m.model_json_schema() for m in PYDANTIC]
    run([("hand_written_schemas", corpus_test(SCHEMAS)), ("pydantic_schemas", corpus_test(pyd)),
         ("unsupported", test_unsupported)])


if __name__ == "__main__":
    main()
