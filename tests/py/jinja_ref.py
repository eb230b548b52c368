"""Python's jinja2 configured exactly as Hugging Face transformers renders chat
templates (chat_template_utils._compile_jinja_template): an
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the loopcontrols
extension and transformers' AssistantTracker ({% generation %}); tojson as
transformers overrides it; raise_exception and strftime_now as globals. Plus
the conversations the template tests render (cases()).
"""
import datetime
import json

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(Extension):
    """transformers' {% generation %} tag; it renders its body (the index
    tracking transformers adds on top does not change the text)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_generation_support")
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


_compiled = {}


def render(source, variables):
    """(True, text) or (False, "ExceptionType: message"). Templates are compiled
    once per source (jinja2's compile dominates otherwise)."""
    try:
        t = _compiled.get(source)
        if t is None:
            t = _compiled[source] = environment().from_string(source)
        return True, t.render(**variables)
    except Exception as e:  # noqa: BLE001 - any raise counts as "raises"
        return False, "%s: %s" % (type(e).__name__, e)


# ---- conversations -------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "description": "Search the documentation.\nReturns the best matches.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                "filters": {
                    "type": "object",
                    "properties": {"tags": {"type": "array", "items": {"type": "string"}},
                                   "exact": {"type": "boolean"}},
                },
                "score": {"type": "number"},
            },
            "required": ["query"],
        },
    },
}
TOOLS = [WEATHER, SEARCH]

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}}}
CALL2 = {"id": "call_2", "type": "function",
         "function": {"name": "search_docs",
                      "arguments": {"query": "rain \"gear\"", "limit": 3, "filters": {"tags": ["a", "b"], "exact": True},
                                    "score": 0.5}}}


def conversations():
    """(name, messages, tools, extra variables)"""
    sys = {"role": "system", "content": "You are a helpful assistant."}
    u1 = {"role": "user", "content": "Hello!"}
    a1 = {"role": "assistant", "content": "Hi there. How can I help?"}
    u2 = {"role": "user", "content": "What is 2+2?"}
    weather_q = {"role": "user", "content": "What's the weather in Paris?"}
    call_msg = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    result = {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
              "content": "{\"temperature\": 21.5, \"condition\": \"sunny\"}"}
    final = {"role": "assistant", "content": "It is sunny and 21.5 °C in Paris."}
    odd = ("  Ünïcödé ✓ 😀 中文 \"quotes\" 'single' back\\slash\n\ttab {{ not_jinja }} "
           "{% raw %} <|im_start|> & < > \u00a0nbsp\u2028sep  ")
    return [
        ("plain", [u1], None, {}),
        ("system", [sys, u1], None, {}),
        ("multi_turn", [sys, u1, a1, u2], None, {}),
        ("multi_turn_no_system", [u1, a1, u2], None, {}),
        ("assistant_last", [sys, u1, a1], None, {}),
        ("tools", [sys, weather_q], TOOLS, {}),
        ("tools_no_system", [weather_q], [WEATHER], {}),
        ("tool_call", [weather_q, call_msg], TOOLS, {}),
        ("tool_result_round", [sys, weather_q, call_msg, result, final], TOOLS, {}),
        ("tool_result_pending", [weather_q, call_msg, result], TOOLS, {}),
        ("parallel_calls", [weather_q,
                            {"role": "assistant", "content": None, "tool_calls": [CALL, CALL2]},
                            result,
                            {"role": "tool", "tool_call_id": "call_2", "name": "search_docs",
                             "content": "[\"doc1\", \"doc2\"]"}], TOOLS, {}),
        ("odd_content", [{"role": "system", "content": odd}, {"role": "user", "content": odd},
                         {"role": "assistant", "content": odd}, {"role": "user", "content": ""}], None, {}),
        ("empty_strings", [{"role": "user", "content": ""}], None, {}),
        ("none_content", [u1, {"role": "assistant", "content": None}], None, {}),
        ("content_parts", [{"role": "user", "content": [{"type": "text", "text": "Describe this."},
                                                        {"type": "text", "text": "Briefly."}]}], None, {}),
        ("reasoning", [u1, {"role": "assistant", "content": "Four.",
                            "reasoning_content": "2+2 is 4."}, u2], None, {}),
        ("thinking_off", [sys, u1], None, {"enable_thinking": False}),
        ("long", [sys] + [m for i in range(6) for m in (
            {"role": "user", "content": "question %d" % i},
            {"role": "assistant", "content": "answer %d" % i})] + [u2], None, {}),
        ("two_users", [u1, u2], None, {}),
        ("system_only", [sys], None, {}),
        ("no_messages", [], None, {}),
        ("numbers", [{"role": "user", "content": "x"}, {"role": "assistant", "content": "",
                      "tool_calls": [{"id": "c", "type": "function", "function": {
                          "name": "get_weather", "arguments": {"n": 1, "f": 1.0, "e": 1e-7, "big": 12345678901234,
                                                               "neg": -0.0, "list": [1, 2.5, None, True]}}}]}],
         TOOLS, {}),
    ]


def cases():
    """Every conversation with and without a generation prompt, as the full set
    of variables transformers passes to render()."""
    out = []
    for name, messages, tools, extra in conversations():
        for agp in (False, True):
            v = {"messages": messages, "tools": tools, "documents": None,
                 "add_generation_prompt": agp, "bos_token": "<s>", "eos_token": "</s>"}
            v.update(extra)
            out.append(("%s%s" % (name, "+gen" if agp else ""), v))
    return out
