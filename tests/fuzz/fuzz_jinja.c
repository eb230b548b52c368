/* fuzz_jinja.c — libFuzzer target for the Jinja interpreter (loader/jinja*.c)
 * and the chat-template layer over it. The input is a template, optionally
 * followed by a NUL byte and a JSON object of variables (read like Python's
 * json). For every input:
 *   - parsing either succeeds or fails with SW_E_FORMAT and a message;
 *   - a parsed template renders under tight bounds (steps, memory, output,
 *     depth) to text or to an error with a message, never hanging or crashing,
 *     with fixed chat variables and then with the input's own variables;
 *   - the text is NUL-terminated at the reported length;
 *   - rendering twice gives the same result (renders keep no state between
 *     them; templates that read the clock through strftime_now are exempt).
 * Seeds (tests/fuzz/corpus/jinja/) are small templates using each construct. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "jinja.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static const char k_messages[] =
    "[{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"Hi \\u00e9 <b>\"},"
    " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\","
    " \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, \"x\"]}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"42\"}]";
static const char k_tools[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters\":"
    " {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}, \"required\": [\"a\"]}}}]";

static void check_render(const sw_jinja_tmpl *t, const sw_jinja_vars *v, const sw_jinja_limits *lim,
                         bool clock) {
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    sw_err ea = {{0}}, eb = {{0}};
    sw_status sa = sw_jinja_render(t, v, lim, &a, &na, &ea);
    sw_status sb = sw_jinja_render(t, v, lim, &b, &nb, &eb);
    CHECK(clock || sa == sb);
    if (sa == SW_OK) CHECK(a && a[na] == '\0' && na <= lim->max_output);
    if (sb == SW_OK) CHECK(b && b[nb] == '\0');
    if (clock) {
        /* nothing more to compare */
    } else if (sa == SW_OK) {
        CHECK(a && b && na == nb && memcmp(a, b, na) == 0);
        CHECK(na <= lim->max_output);
    } else {
        CHECK(!a && !b && ea.msg[0] != '\0');
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    size_t src_len = size;
    const char *vars = NULL;
    size_t vars_len = 0;
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        src_len = (size_t)(nul - data);
        vars = (const char *)nul + 1;
        vars_len = size - src_len - 1;
    }
    sw_jinja_tmpl *t = NULL;
    sw_err err = {{0}};
    sw_status st = sw_jinja_parse(src, src_len, &t, &err);
    if (st != SW_OK) {
        CHECK(st == SW_E_FORMAT && !t && err.msg[0] != '\0');
        return 0;
    }
    sw_jinja_limits lim = {.max_steps = 200000, .max_memory = 16u << 20, .max_output = 1u << 20,
                           .max_depth = 32};
    sw_jinja_vars *v = NULL;
    CHECK(sw_jinja_vars_create(&v, NULL) == SW_OK);
    CHECK(sw_jinja_vars_set_json(v, "messages", k_messages, sizeof k_messages - 1, NULL) == SW_OK);
    CHECK(sw_jinja_vars_set_json(v, "tools", k_tools, sizeof k_tools - 1, NULL) == SW_OK);
    CHECK(sw_jinja_vars_set_bool(v, "add_generation_prompt", true, NULL) == SW_OK);
    CHECK(sw_jinja_vars_set_str(v, "bos_token", "<s>", NULL) == SW_OK);
    CHECK(sw_jinja_vars_set_str(v, "eos_token", "</s>", NULL) == SW_OK);
    bool clock = memmem(src, src_len, "strftime_now", 12) != NULL;
    check_render(t, v, &lim, clock);
    if (vars) {
        /* the input's own variables: bad JSON is a clean error */
        sw_status vs = sw_jinja_vars_update_json(v, vars, vars_len, NULL, &err);
        CHECK(vs == SW_OK || err.msg[0] != '\0');
        if (vs == SW_OK) check_render(t, v, &lim, clock);
    }
    sw_jinja_vars_free(v);
    sw_jinja_free(t);
    return 0;
}
