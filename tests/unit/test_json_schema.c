/* test_json_schema.c — the JSON Schema compiler (runtime/json_schema*.c):
 * accept/refuse tables, random sentences of a schema corpus checked against
 * an independent validator (tests/unit/support/schema_check.c), numeric
 * bounds checked exhaustively over a grid of numbers, the errors that name
 * unsupported keywords, and hostile schemas (deep and self-referencing $ref,
 * huge enums, nested unions, huge counts, exploding patterns) that must end
 * in a clear error or a working grammar, fast. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "grammar.h"
#include "json_schema.h"
#include "schema_check.h"

static sw_grammar *compile(const char *schema) {
    sw_grammar *g;
    sw_err err = {{0}};
    if (sw_grammar_from_json_schema(schema, strlen(schema), &g, &err) != SW_OK)
        fail_msg("schema did not compile: %s\n%s", err.msg, schema);
    return g;
}

/* 0 refused, 1 viable prefix, 2 complete */
static int judge(sw_grammar *g, const char *s) {
    sw_gmatch *m;
    assert_int_equal(sw_gmatch_create(g, &m, NULL), SW_OK);
    int r = !sw_gmatch_feed(m, s, strlen(s)) ? 0 : sw_gmatch_accepting(m) ? 2 : 1;
    sw_gmatch_free(m);
    return r;
}

static bool ref_valid(const char *schema, const char *doc, char *why, size_t n) {
    cJSON *s = cJSON_Parse(schema), *d = cJSON_Parse(doc);
    if (!s) fail_msg("bad test schema %s", schema);
    bool ok = d && sw_test_schema_valid(s, d, why, n);
    if (!d) snprintf(why, n, "not JSON");
    cJSON_Delete(s);
    cJSON_Delete(d);
    return ok;
}

/* ---- tables ------------------------------------------------------------------- */

typedef struct scase {
    const char *schema;
    const char *complete[6]; /* accepted as whole documents (and valid) */
    const char *refused[8];  /* refused or never complete */
} scase;

static const scase k_cases[] = {
    {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},"
     "\"required\":[\"name\"],\"additionalProperties\":false}",
     {"{\"name\":\"x\"}", "{\"name\": \"x\", \"age\": 3}", " {\"name\":\"\\u00e9\\ud83d\\ude00\"}"},
     {"{}", "{\"age\":3}", "{\"name\":\"x\",\"other\":1}", "{\"name\":1}", "{\"name\":\"x\",\"age\":1.5}",
      "{\"name\":\"\\ud800\"}", "{\"name\":\"x\"} "}},
    {"{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":3}",
     {"[true,false]", "[ true , false , true ]"},
     {"[]", "[true]", "[true,true,true,true]", "[1,2]"}},
    {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
     {"\"ab\"", "\"\\nA\\\"\"", "\"\xc3\xa9\xe4\xb8\xad\""},
     {"\"a\"", "\"abcd\"", "\"\\u0041\"", "ab"}},
    {"{\"type\":\"string\",\"pattern\":\"^[a-c]+@\\\\d$\"}", {"\"ab@1\""}, {"\"ab@\"", "\"d@1\"", "\"ab@12\""}},
    {"{\"type\":\"integer\",\"minimum\":-5,\"exclusiveMaximum\":10}", {"-5", "0", "9"}, {"-6", "10", "1.0", "-0", "05"}},
    {"{\"type\":\"number\",\"exclusiveMinimum\":0.5,\"maximum\":1.25}", {"0.51", "1.25", "1", "1.2500"}, {"0.5", "0.50", "1.26", "2", "1e0"}},
    {"{\"enum\":[\"a\",2,null,[1]]}", {"\"a\"", "2", "null", "[1]"}, {"\"b\"", "3", "[2]", "true"}},
    {"{\"const\":{\"k\":[1,\"x\"]}}", {"{\"k\":[1,\"x\"]}"}, {"{\"k\":[1]}", "{}"}},
    {"{\"type\":[\"null\",\"boolean\"]}", {"null", "true", "false"}, {"0", "\"\"", "nul"}},
    {"{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"t\":{\"const\":\"a\"}},\"required\":[\"t\"]},"
     "{\"type\":\"object\",\"properties\":{\"t\":{\"const\":\"b\"},\"n\":{\"type\":\"integer\"}},\"required\":[\"t\",\"n\"]}]}",
     {"{\"t\":\"a\"}", "{\"t\":\"b\",\"n\":1}"},
     {"{\"t\":\"c\"}", "{\"t\":\"b\"}"}},
    {"{\"$defs\":{\"list\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
     "\"next\":{\"$ref\":\"#/$defs/list\"}},\"required\":[\"v\",\"next\"],\"additionalProperties\":false}]}},\"$ref\":\"#/$defs/list\"}",
     {"null", "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}"},
     {"{\"v\":1}", "{\"v\":1,\"next\":{}}"}},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":{\"type\":\"string\"}}",
     {"{}", "{\"a\":1,\"b\":\"x\"}", "{\"zz\":\"y\",\"q\":\"\"}"},
     {"{\"a\":\"x\"}", "{\"b\":1}", "{\"a\":1,\"a\":\"x\"}"}},
    {"{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}],\"items\":false,\"minItems\":1}",
     {"[1]", "[1,\"a\"]"},
     {"[]", "[\"a\"]", "[1,\"a\",2]"}},
    {"{\"type\":\"string\",\"format\":\"date\"}", {"\"2024-02-28\"", "\"1999-12-31\""}, {"\"2024-02-30\"", "\"2024-13-01\"", "\"24-01-01\""}},
    {"{\"type\":\"object\",\"required\":[\"x\"],\"additionalProperties\":false}", {NULL}, {"{}", "{\"x\":1}"}},
};

static void test_tables(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_cases / sizeof *k_cases; i++) {
        const scase *c = &k_cases[i];
        sw_grammar *g = NULL;
        sw_err err;
        sw_status st = sw_grammar_from_json_schema(c->schema, strlen(c->schema), &g, &err);
        if (st != SW_OK) {
            /* an unsatisfiable schema: an error, and no accepted documents listed */
            if (c->complete[0]) fail_msg("schema %zu: %s", i, err.msg);
            continue;
        }
        char why[256];
        for (int k = 0; k < 6 && c->complete[k]; k++) {
            if (judge(g, c->complete[k]) != 2) fail_msg("schema %zu: should accept %s", i, c->complete[k]);
            if (!ref_valid(c->schema, c->complete[k], why, sizeof why))
                fail_msg("schema %zu: test document %s is invalid: %s", i, c->complete[k], why);
        }
        for (int k = 0; k < 8 && c->refused[k]; k++)
            if (judge(g, c->refused[k]) == 2) fail_msg("schema %zu: should not accept %s", i, c->refused[k]);
        sw_grammar_free(g);
    }
}

/* ---- random sentences vs the reference validator ----------------------------- */

static const char *const k_corpus[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},\"maxItems\":3}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
    "{\"type\":\"string\",\"pattern\":\"^[A-Z][a-z]{1,8}( [A-Z][a-z]{1,8})?$\"}",
    "{\"type\":\"string\",\"pattern\":\"x[^\\\"\\\\\\\\]+y\",\"maxLength\":10}",
    "{\"type\":\"string\",\"pattern\":\"^\\\\S+\\\\s\\\\W\\\\D\\\\w$\"}",
    "{\"type\":\"number\",\"minimum\":-1.5,\"maximum\":2.25}",
    "{\"type\":\"number\",\"exclusiveMinimum\":-0.001,\"exclusiveMaximum\":0.001}",
    "{\"type\":\"number\",\"minimum\":1e-7}",
    "{\"type\":\"number\",\"maximum\":-12345.678}",
    "{\"type\":\"integer\",\"exclusiveMinimum\":-3,\"maximum\":1000000000}",
    "{\"type\":\"integer\",\"minimum\":7.5}",
    "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":2},\"minItems\":2}",
    "{\"anyOf\":[{\"type\":\"string\",\"format\":\"email\"},{\"type\":\"string\",\"format\":\"uuid\"},{\"type\":\"integer\",\"minimum\":5}]}",
    "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"integer\"},{\"type\":\"array\",\"items\":{\"type\":\"null\"}}]}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"},\"b\":{\"type\":\"null\"},\"c\":{\"type\":\"number\"}}}",
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"}},\"required\":[\"id\"],\"additionalProperties\":{\"type\":\"integer\",\"minimum\":0}}",
    "{\"$defs\":{\"t\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/t\"},\"maxItems\":2}},"
    "\"required\":[\"v\"],\"additionalProperties\":false}},\"$ref\":\"#/$defs/t\"}",
    "{\"definitions\":{\"c\":{\"enum\":[\"red\",\"green\"]}},\"type\":\"object\",\"properties\":{\"c\":{\"$ref\":\"#/definitions/c\"},"
    "\"d\":{\"allOf\":[{\"$ref\":\"#/definitions/c\"}],\"description\":\"x\"}},\"required\":[\"c\",\"d\"]}",
    "{\"type\":\"array\",\"items\":[{\"type\":\"string\",\"format\":\"date-time\"},{\"type\":\"string\",\"format\":\"time\"}],\"additionalItems\":{\"type\":\"string\",\"format\":\"ipv4\"}}",
    "{\"type\":\"string\",\"format\":\"hostname\"}",
    "{\"type\":\"string\",\"format\":\"uri\"}",
    "{\"type\":[\"string\",\"number\",\"null\"],\"minLength\":1,\"maximum\":3}",
    "{\"minLength\":3,\"pattern\":\"q\"}",
    "{}",
    "true",
    "{\"type\":\"object\"}",
    "{\"type\":\"object\",\"properties\":{\"k\":{\"const\":\"v\"}},\"required\":[\"k\",\"extra\"]}",
    "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\",\"title\":\"X\",\"default\":\"d\",\"examples\":[\"e\"]}},\"unevaluatedProperties\":false,\"x-vendor\":1}",
};

static void test_corpus_samples(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_corpus / sizeof *k_corpus; i++) {
        sw_grammar *g = compile(k_corpus[i]);
        for (int k = 0; k < 40; k++) {
            char *doc, why[256];
            size_t len;
            sw_err err;
            if (sw_grammar_sample(g, 100 * i + (size_t)k, 60, &doc, &len, &err) != SW_OK) fail_msg("%s", err.msg);
            if (!ref_valid(k_corpus[i], doc, why, sizeof why))
                fail_msg("schema %zu: generated %s, which does not validate: %s", i, doc, why);
            free(doc);
        }
        sw_grammar_free(g);
    }
}

/* ---- numbers over a grid ---------------------------------------------------------- */

static void test_number_bounds_grid(void **state) {
    (void)state;
    static const char *const bounds[] = {
        "\"minimum\":-1.25,\"maximum\":2.5", "\"exclusiveMinimum\":-1.25,\"exclusiveMaximum\":2.5",
        "\"minimum\":0", "\"exclusiveMinimum\":0", "\"maximum\":0", "\"exclusiveMaximum\":0",
        "\"minimum\":0.1,\"exclusiveMaximum\":0.3", "\"minimum\":-0.05", "\"exclusiveMaximum\":-1",
        "\"minimum\":1,\"exclusiveMinimum\":true", "\"minimum\":-10,\"maximum\":-10", "\"minimum\":3,\"maximum\":2",
        "\"exclusiveMinimum\":2.999,\"exclusiveMaximum\":3.001",
    };
    for (int integer = 0; integer < 2; integer++)
        for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
            char schema[256];
            snprintf(schema, sizeof schema, "{\"type\":\"%s\",%s}", integer ? "integer" : "number", bounds[b]);
            sw_grammar *g = NULL;
            sw_err err;
            if (sw_grammar_from_json_schema(schema, strlen(schema), &g, &err) != SW_OK) {
                /* only an empty range may fail */
                if (!strstr(err.msg, "matches nothing")) fail_msg("%s: %s", schema, err.msg);
                g = NULL;
            }
            /* every canonical decimal in [-12, 12] with up to 3 fraction digits */
            int accepted = 0;
            for (int v = -12000; v <= 12000; v++) {
                for (int fd = 0; fd <= 3; fd++) {
                    if (fd > 0 && v % 10 == 0 && fd == 3) continue;
                    char num[32];
                    int whole = abs(v) / 1000, frac = abs(v) % 1000;
                    if (fd == 0) {
                        if (frac) continue;
                        snprintf(num, sizeof num, "%s%d", v < 0 ? "-" : "", whole);
                    } else {
                        int div = fd == 1 ? 100 : fd == 2 ? 10 : 1;
                        if (frac % div) continue;
                        snprintf(num, sizeof num, "%s%d.%0*d", v < 0 ? "-" : "", whole, fd, frac / div);
                    }
                    if (!strcmp(num, "-0")) continue;
                    char why[128];
                    bool valid = ref_valid(schema, num, why, sizeof why);
                    bool is_int = fd == 0;
                    bool in_shape = !integer || is_int;
                    if (!g) {
                        if (valid && in_shape) fail_msg("%s was refused but %s is valid", schema, num);
                        continue;
                    }
                    int j = judge(g, num);
                    if (j == 2 && !valid) fail_msg("%s accepts %s", schema, num);
                    if (valid && in_shape && j != 2) fail_msg("%s refuses %s", schema, num);
                    accepted += j == 2;
                }
            }
            assert_true(accepted > 0 || !g);
            sw_grammar_free(g);
        }
}

/* ---- errors ------------------------------------------------------------------------ */

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *schema, *says;
    } bad[] = {
        {"{\"type\":\"string\",\"contentEncoding\":\"x\",\"not\":{}}", "'not' is not supported"},
        {"{\"type\":\"object\",\"patternProperties\":{}}", "'patternProperties' is not supported"},
        {"{\"type\":\"integer\",\"multipleOf\":3}", "'multipleOf' is not supported"},
        {"{\"properties\":{\"a\":{\"type\":\"array\",\"contains\":{}}}}", "#/properties/a: keyword 'contains'"},
        {"{\"type\":\"array\",\"uniqueItems\":true}", "uniqueItems"},
        {"{\"type\":\"string\",\"format\":\"ipv6\"}", "format 'ipv6' is not supported"},
        {"{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "backreferences"},
        {"{\"$ref\":\"http://x/y\"}", "only local refs"},
        {"{\"$ref\":\"#/$defs/missing\"}", "does not resolve"},
        {"{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}", "'$ref #/$defs/a' can never end"},
        {"{\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}},\"$ref\":\"#/$defs/a\"}", "left-recursive"},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "oneOf branches 0 and 1"},
        {"{\"anyOf\":[{\"type\":\"string\"}],\"type\":\"string\"}", "anyOf together with 'type'"},
        {"{\"allOf\":[{\"type\":\"string\"},{\"minLength\":2}]}", "allOf with more than one"},
        {"{\"$ref\":\"#/$defs/a\",\"minLength\":3,\"$defs\":{\"a\":{}}}", "$ref together with 'minLength'"},
        {"{\"enum\":[\"a\"],\"maxLength\":3}", "enum/const together with 'maxLength'"},
        {"{\"type\":\"strin\"}", "type must be one of"},
        {"{\"type\":\"integer\",\"minimum\":1e300}", "bounds beyond"},
        {"{\"type\":\"string\",\"minLength\":100000}", "minLength 100000 is over"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"maxItems\":30,\"items\":{\"type\":\"string\",\"maxLength\":2000}}}}", "too complex"},
        {"{\"type\":\"integer\",\"maximum\":9007199254740993,\"minimum\":9007199254740000}", "2^53"},
        {"[1,2]", "must be an object or a boolean"},
        {"{\"type\":\"object\",\"properties\":{\"a\":false},\"required\":[\"a\"]}", "matches nothing"},
        {"false", "matches nothing"},
        {"{\"type\":\"string\",\"pattern\":\"^(a|b)*a(a|b){16}$\"}", "too complex"},
        {"{\"type\":", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sw_grammar *g = NULL;
        sw_err err = {{0}};
        sw_status st = sw_grammar_from_json_schema(bad[i].schema, strlen(bad[i].schema), &g, &err);
        if (st == SW_OK) fail_msg("accepted: %s", bad[i].schema);
        assert_null(g);
        if (!strstr(err.msg, bad[i].says)) fail_msg("%s: message '%s' lacks '%s'", bad[i].schema, err.msg, bad[i].says);
    }
}

/* ---- hostile schemas ----------------------------------------------------------------- */

static char *big_schema(int kind, int n) {
    size_t cap = (size_t)n * 128 + 256, k = 0;
    char *s = malloc(cap);
    switch (kind) {
    case 0: /* a chain of $refs n deep */
        k += (size_t)snprintf(s + k, cap - k, "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
        for (int i = 0; i < n; i++)
            k += (size_t)snprintf(s + k, cap - k, "%s\"d%d\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/d%d\"},\"maxItems\":1}",
                                  i ? "," : "", i, i + 1);
        k += (size_t)snprintf(s + k, cap - k, ",\"d%d\":{\"type\":\"integer\"}}}", n);
        break;
    case 1: /* a huge enum */
        k += (size_t)snprintf(s + k, cap - k, "{\"enum\":[");
        for (int i = 0; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "%s\"value number %d\"", i ? "," : "", i * 7919);
        k += (size_t)snprintf(s + k, cap - k, "]}");
        break;
    default: /* anyOf nested n deep */
        for (int i = 0; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "{\"anyOf\":[{\"type\":\"integer\"},");
        k += (size_t)snprintf(s + k, cap - k, "{\"type\":\"string\"}");
        for (int i = 0; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "]}");
        break;
    }
    return s;
}

static void test_hostile(void **state) {
    (void)state;
    static const struct {
        int kind, n;
        bool ok;
    } cases[] = {{0, 100, true}, {0, 2000, false}, {1, 5000, true}, {1, 50000, false}, {2, 100, true}, {2, 300, false}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *s = big_schema(cases[i].kind, cases[i].n);
        sw_grammar *g = NULL;
        sw_err err = {{0}};
        double t0 = sw_time_s();
        sw_status st = sw_grammar_from_json_schema(s, strlen(s), &g, &err);
        double dt = sw_time_s() - t0;
        printf("hostile kind %d n %d: %s in %.0f ms%s%s\n", cases[i].kind, cases[i].n, st == SW_OK ? "compiled" : "refused",
               dt * 1e3, st == SW_OK ? "" : ": ", st == SW_OK ? "" : err.msg);
        assert_int_equal(st == SW_OK, cases[i].ok);
        if (g) {
            char *doc, why[256];
            size_t len;
            assert_int_equal(sw_grammar_sample(g, 5, 300, &doc, &len, &err), SW_OK);
            if (!ref_valid(s, doc, why, sizeof why)) fail_msg("hostile %zu: %s invalid: %s", i, doc, why);
            free(doc);
            sw_grammar_free(g);
        }
        free(s);
    }
    /* counted strings: maxLength past the limit is clamped (a subset), so it compiles */
    sw_grammar *g = compile("{\"type\":\"string\",\"maxLength\":1000000}");
    sw_grammar_free(g);
}

/* ---- tool-call grammars ---------------------------------------------------------------- */

/* Split a Hermes-syntax sentence into its text and calls; each call's
 * arguments must validate against its tool's schema. Returns the count. */
static int check_hermes(const char *doc, cJSON *const *schemas, const char *const *names, int n_tools,
                        bool text_allowed, int max_calls) {
    const char *open = "<tool_call>\n", *close = "\n</tool_call>";
    const char *p = strstr(doc, open);
    if (!text_allowed) assert_true(p == doc);
    int calls = 0;
    while (p) {
        p += strlen(open);
        const char *end = strstr(p, close);
        assert_non_null(end);
        char *obj = strndup(p, (size_t)(end - p));
        cJSON *j = cJSON_Parse(obj);
        if (!cJSON_IsObject(j)) fail_msg("call is not an object: %s", obj);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
        assert_true(cJSON_IsString(name) && cJSON_IsObject(args));
        int t = 0;
        while (t < n_tools && strcmp(names[t], name->valuestring)) t++;
        assert_true(t < n_tools);
        char why[256];
        if (!sw_test_schema_valid(schemas[t], args, why, sizeof why)) fail_msg("%s: %s", obj, why);
        cJSON_Delete(j);
        free(obj);
        calls++;
        p = end + strlen(close);
        if (*p) {
            assert_int_equal(*p, '\n'); /* the separator, then the next call */
            assert_true(!strncmp(p + 1, open, strlen(open)));
            p = p + 1;
        } else {
            p = NULL;
        }
    }
    if (max_calls) assert_true(calls <= max_calls);
    return calls;
}

static void test_tool_calls(void **state) {
    (void)state;
    cJSON *schemas[2] = {
        cJSON_Parse("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":8},"
                    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7}},\"required\":[\"city\"],\"additionalProperties\":false}"),
        cJSON_Parse("{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}")};
    const char *names[2] = {"get_weather", "now"};
    sw_tool_def defs[2] = {{names[0], schemas[0]}, {names[1], NULL}};
    for (int mode = 0; mode < 4; mode++) {
        sw_tool_call_syntax syn = {"<tool_call>\n", "\n</tool_call>", "\n", NULL, NULL, "name", "arguments", mode & 1,
                                   mode & 2 ? 1 : 0, NULL};
        sw_grammar *g;
        sw_err err;
        assert_int_equal(sw_grammar_tool_calls(&syn, defs, 2, &g, &err), SW_OK);
        int with_calls = 0;
        for (int k = 0; k < 30; k++) {
            char *doc;
            size_t len;
            assert_int_equal(sw_grammar_sample(g, 77 * mode + (uint64_t)k, 120, &doc, &len, &err), SW_OK);
            with_calls += check_hermes(doc, schemas, names, 2, syn.text_before, syn.max_calls) > 0;
            free(doc);
        }
        if (!syn.text_before) assert_int_equal(with_calls, 30);
        /* text that contains the marker is not text: it must be a call */
        if (syn.text_before) assert_int_equal(judge(g, "see <tool_call>\n{\"name\": \"nope\""), 0);
        assert_int_equal(judge(g, "<tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</tool_call>"), 2);
        assert_int_equal(judge(g, "<tool_call>\n{\"name\":\"now\",\"arguments\":{\"x\":1}}"), 0);
        sw_grammar_free(g);
    }
    /* Llama 3: a bare object, one call, "parameters"; with text allowed, text
     * may not open with '{' */
    sw_tool_call_syntax l3 = {NULL, NULL, NULL, NULL, NULL, "name", "parameters", true, 1, NULL};
    sw_grammar *g;
    sw_err err;
    assert_int_equal(sw_grammar_tool_calls(&l3, defs, 2, &g, &err), SW_OK);
    assert_int_equal(judge(g, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"), 2);
    assert_int_equal(judge(g, "Hello {\"name\""), 2);
    assert_int_equal(judge(g, "{\"name\": \"get_weather\", \"parameters\": {\"town\": \"Oslo\"}}"), 0);
    sw_grammar_free(g);
    /* Mistral v3: one list of calls after [TOOL_CALLS] */
    sw_tool_call_syntax ml = {NULL, NULL, ", ", "[TOOL_CALLS][", "]", "name", "arguments", true, 0, NULL};
    assert_int_equal(sw_grammar_tool_calls(&ml, defs, 2, &g, &err), SW_OK);
    assert_int_equal(judge(g, "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}, "
                              "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}]"), 2);
    assert_int_equal(judge(g, "Sure.[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}]"), 2);
    assert_int_equal(judge(g, "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}"), 1);
    assert_int_equal(judge(g, "[TOOL_CALLS][{\"name\": \"then\""), 0);
    assert_int_equal(judge(g, "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}]["), 0);
    sw_grammar_free(g);
    /* Mistral's later form: [TOOL_CALLS]name[ARGS]{...} per call, the name bare */
    sw_tool_call_syntax ma = {"[TOOL_CALLS]", NULL, NULL, NULL, NULL, "name", "arguments", true, 0, "[ARGS]"};
    assert_int_equal(sw_grammar_tool_calls(&ma, defs, 2, &g, &err), SW_OK);
    assert_int_equal(judge(g, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Oslo\", \"days\": 3}[TOOL_CALLS]now[ARGS]{}"), 2);
    assert_int_equal(judge(g, "Text first.[TOOL_CALLS]now[ARGS]{}"), 2);
    assert_int_equal(judge(g, "[TOOL_CALLS]get_weather[ARGS]{\"days\": 3}"), 0);
    assert_int_equal(judge(g, "[TOOL_CALLS]nope"), 0);
    assert_int_equal(judge(g, "[TOOL_CALLS]\"now\"[ARGS]{}"), 0);
    assert_int_equal(judge(g, "[TOOL_CALLS]now[ARGS]"), 1);
    sw_grammar_free(g);
    /* a tool whose schema we cannot enforce names it */
    cJSON *badp = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"x\":{\"not\":{}}}}");
    sw_tool_def bad = {"f", badp};
    assert_int_not_equal(sw_grammar_tool_calls(&l3, &bad, 1, &g, &err), SW_OK);
    assert_non_null(strstr(err.msg, "#/tools/0/properties/x"));
    cJSON_Delete(badp);
    cJSON_Delete(schemas[0]);
    cJSON_Delete(schemas[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),  cmocka_unit_test(test_corpus_samples), cmocka_unit_test(test_number_bounds_grid),
        cmocka_unit_test(test_errors),  cmocka_unit_test(test_hostile),        cmocka_unit_test(test_tool_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
