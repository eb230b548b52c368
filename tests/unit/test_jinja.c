/* test_jinja.c — the Jinja interpreter's C API: statuses and messages of syntax
 * and runtime errors, raise_exception, the variables API (Python's json: 1 and
 * 1.0 stay apart), the render bounds (steps, memory, output, depth) on hostile
 * templates, and renders from several threads sharing one template.
 * Output equality with Python's jinja2 is tested in tests/py/test_jinja.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static sw_status render(const char *src, const char *vars_json, const sw_jinja_limits *lim,
                        char **out, sw_err *err) {
    sw_jinja_tmpl *t = NULL;
    sw_status st = sw_jinja_parse(src, strlen(src), &t, err);
    if (st != SW_OK) return st;
    sw_jinja_vars *v = NULL;
    assert_int_equal(sw_jinja_vars_create(&v, NULL), SW_OK);
    if (vars_json) assert_int_equal(sw_jinja_vars_update_json(v, vars_json, strlen(vars_json), NULL, err), SW_OK);
    st = sw_jinja_render(t, v, lim, out, NULL, err);
    sw_jinja_vars_free(v);
    sw_jinja_free(t);
    return st;
}

static void expect(const char *src, const char *vars, const char *want) {
    char *out = NULL;
    sw_err err = {{0}};
    sw_status st = render(src, vars, NULL, &out, &err);
    if (st != SW_OK) fail_msg("%s: %s", src, err.msg);
    if (strcmp(out, want)) fail_msg("%s:\n got [%s]\nwant [%s]", src, out, want);
    free(out);
}

static void expect_error(const char *src, const char *vars, const sw_jinja_limits *lim,
                         sw_status want, const char *needle) {
    char *out = (char *)"sentinel";
    sw_err err = {{0}};
    sw_status st = render(src, vars, lim, &out, &err);
    if (st != want) fail_msg("%s: status %d (%s), want %d", src, st, err.msg, want);
    assert_null(out);
    if (needle && !strstr(err.msg, needle)) fail_msg("%s: message '%s' lacks '%s'", src, err.msg, needle);
}

static void test_basics(void **state) {
    (void)state;
    expect("", NULL, "");
    expect("plain text\n", NULL, "plain text"); /* the final newline goes, as in jinja2 */
    expect("{{ a }}-{{ b }}", "{\"a\": 1, \"b\": 1.0}", "1-1.0");
    expect("{{ x }}|{{ x is defined }}", NULL, "|False");
    expect("{% for m in messages %}{{ loop.index }}:{{ m.role }};{% endfor %}",
           "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\"}]}", "1:user;2:assistant;");
    expect("{{ big }} {{ [0.1, 1e-7, 1e16, -0.0] }}", "{\"big\": 9007199254740993}",
           "9007199254740993 [0.1, 1e-07, 1e+16, -0.0]");
}

static void test_syntax_errors(void **state) {
    (void)state;
    static const struct {
        const char *src, *needle;
    } bad[] = {
        {"{% if true %}", "Unexpected end of template"},
        {"{{ 1 + }}", "line 1"},
        {"a\nb\n{% endfor %}", "line 3"},
        {"{{ x | no_such_filter }}", "No filter named 'no_such_filter'"},
        {"{% do x %}", "unknown tag 'do'"},
        {"{# unterminated", "Missing end of comment tag"},
        {"{% break %}", "outside loop"},
        {"{{ 'unterminated }}", "unexpected char"},
        {"{% set 1 = 2 %}", "can't assign"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sw_jinja_tmpl *t = (sw_jinja_tmpl *)&bad;
        sw_err err = {{0}};
        sw_status st = sw_jinja_parse(bad[i].src, strlen(bad[i].src), &t, &err);
        if (st != SW_E_FORMAT) fail_msg("%s: status %d (%s)", bad[i].src, st, err.msg);
        assert_null(t);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("%s: '%s' lacks '%s'", bad[i].src, err.msg, bad[i].needle);
    }
    /* inside an if, an unknown filter only fails when it runs (jinja2 >= 3.0) */
    expect("{% if false %}{{ x | no_such_filter }}{% endif %}ok", NULL, "ok");
    expect_error("{% if true %}{{ x | no_such_filter }}{% endif %}", NULL, NULL, SW_E_INVALID_ARG,
                 "No filter named 'no_such_filter'");
}

static void test_runtime_errors(void **state) {
    (void)state;
    /* raise_exception: the template's own message, nothing added */
    expect_error("{{ raise_exception('Only user and assistant roles are supported!') }}", NULL, NULL,
                 SW_E_INVALID_ARG, NULL);
    char *out = NULL;
    sw_err err = {{0}};
    assert_int_equal(render("{{ raise_exception('roles must alternate') }}", NULL, NULL, &out, &err),
                     SW_E_INVALID_ARG);
    assert_string_equal(err.msg, "roles must alternate");
    expect_error("{{ x.y }}", NULL, NULL, SW_E_INVALID_ARG, "'x' is undefined");
    expect_error("{{ d.a.b }}", "{\"d\": {}}", NULL, SW_E_INVALID_ARG, "has no attribute 'a'");
    expect_error("{{ 'a' + 1 }}", NULL, NULL, SW_E_INVALID_ARG, "TypeError");
    expect_error("{{ l.append(1) }}", "{\"l\": []}", NULL, SW_E_INVALID_ARG, "SecurityError");
    expect_error("{{ 1 / 0 }}", NULL, NULL, SW_E_INVALID_ARG, "ZeroDivisionError");
    expect_error("{% include 'x' %}", NULL, NULL, SW_E_INVALID_ARG, "loader");
    /* an unsafe attribute is Undefined: printing it is fine, calling it is not */
    expect("[{{ l.append }}][{{ l.pop is defined }}]", "{\"l\": []}", "[][False]");
}

static void test_vars_api(void **state) {
    (void)state;
    sw_jinja_tmpl *t = NULL;
    const char *src = "{{ n }} {{ f }} {{ s }} {{ b }} {{ z }} {{ j }} {{ k }}";
    assert_int_equal(sw_jinja_parse(src, strlen(src), &t, NULL), SW_OK);
    sw_jinja_vars *v = NULL;
    assert_int_equal(sw_jinja_vars_create(&v, NULL), SW_OK);
    assert_int_equal(sw_jinja_vars_set_json(v, "n", "1", 1, NULL), SW_OK);
    assert_int_equal(sw_jinja_vars_set_json(v, "f", "1.0", 3, NULL), SW_OK);
    assert_int_equal(sw_jinja_vars_set_str(v, "s", "text", NULL), SW_OK);
    assert_int_equal(sw_jinja_vars_set_bool(v, "b", true, NULL), SW_OK);
    assert_int_equal(sw_jinja_vars_set_none(v, "z", NULL), SW_OK);
    cJSON *j = cJSON_Parse("{\"a\": [1, 2.5, \"x\", null]}");
    assert_int_equal(sw_jinja_vars_set_cjson(v, "j", j, NULL), SW_OK);
    cJSON_Delete(j);
    assert_true(sw_jinja_vars_has(v, "j"));
    assert_false(sw_jinja_vars_has(v, "k"));
    char *out = NULL;
    assert_int_equal(sw_jinja_render(t, v, NULL, &out, NULL, NULL), SW_OK);
    assert_string_equal(out, "1 1.0 text True None {'a': [1, 2.5, 'x', None]} ");
    free(out);
    /* keyword arguments given twice are refused, as Python refuses them */
    static const char *const refuse[] = {"messages", NULL};
    sw_err err = {{0}};
    assert_int_equal(sw_jinja_vars_update_json(v, "{\"messages\": 1}", 15, refuse, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'messages'"));
    assert_int_equal(sw_jinja_vars_update_json(v, "{\"k\": 7}", 8, refuse, NULL), SW_OK);
    assert_int_equal(sw_jinja_render(t, v, NULL, &out, NULL, NULL), SW_OK);
    assert_non_null(strstr(out, " 7"));
    free(out);
    /* bad JSON names the variable and the position */
    assert_int_equal(sw_jinja_vars_set_json(v, "m", "[1, 2", 5, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "'m'"));
    assert_non_null(strstr(err.msg, "column"));
    sw_jinja_vars_free(v);
    sw_jinja_free(t);
}

/* Every hostile template ends in an error (a bound), never a hang or crash. */
static void test_bounds(void **state) {
    (void)state;
    sw_jinja_limits lim = {.max_steps = 2000000, .max_memory = 32u << 20, .max_output = 1u << 20,
                           .max_depth = 64};
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                 NULL, &lim, SW_E_RANGE, NULL);
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}",
                 NULL, &lim, SW_E_RANGE, NULL);
    expect_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}",
                 NULL, &lim, SW_E_RANGE, "memory");
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, &lim, SW_E_RANGE,
                 "recursion");
    expect_error("{{ 'x' * 10 ** 12 }}", NULL, &lim, SW_E_RANGE, "memory");
    expect_error("{{ 'abc' * 1000000 }}", NULL, &lim, SW_E_RANGE, "output");
    expect_error("{{ range(1000000) }}", NULL, &lim, SW_E_RANGE, "MAX_RANGE");
    /* nesting is bounded when parsing */
    char *deep = malloc(20000), *d = deep;
    d += sprintf(d, "{{ ");
    for (int i = 0; i < 5000; i++) *d++ = '[';
    for (int i = 0; i < 5000; i++) *d++ = ']';
    sprintf(d, " }}");
    sw_jinja_tmpl *t = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_jinja_parse(deep, strlen(deep), &t, &err), SW_E_FORMAT);
    free(deep);
    /* a long left-nested chain is bounded by the AST height */
    size_t terms = 50000;
    char *chain = malloc(terms * 4 + 16), *w = chain;
    w += sprintf(w, "{{ 1");
    for (size_t i = 0; i < terms; i++) w += sprintf(w, " + 1");
    sprintf(w, " }}");
    assert_int_equal(sw_jinja_parse(chain, strlen(chain), &t, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    free(chain);
}

/* One template, one vars, many threads: a render keeps its state to itself. */
typedef struct thr {
    const sw_jinja_tmpl *t;
    const sw_jinja_vars *v;
    char *out;
} thr;

static void *thread_render(void *p) {
    thr *a = p;
    for (int i = 0; i < 50; i++) {
        free(a->out);
        a->out = NULL;
        if (sw_jinja_render(a->t, a->v, NULL, &a->out, NULL, NULL) != SW_OK) break;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    const char *src = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                      "{{ m.content | upper }}{% endfor %}{{ ns.n }}{% set j = joiner('+') %}"
                      "{% for i in range(3) %}{{ j() }}{{ i }}{% endfor %}";
    sw_jinja_tmpl *t = NULL;
    assert_int_equal(sw_jinja_parse(src, strlen(src), &t, NULL), SW_OK);
    sw_jinja_vars *v = NULL;
    assert_int_equal(sw_jinja_vars_create(&v, NULL), SW_OK);
    const char *m = "[{\"content\": \"a\"}, {\"content\": \"b\"}]";
    assert_int_equal(sw_jinja_vars_set_json(v, "messages", m, strlen(m), NULL), SW_OK);
    pthread_t th[4];
    thr args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr){t, v, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, thread_render, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_non_null(args[i].out);
        assert_string_equal(args[i].out, "AB20+1+2");
        free(args[i].out);
    }
    sw_jinja_vars_free(v);
    sw_jinja_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_runtime_errors), cmocka_unit_test(test_vars_api),
        cmocka_unit_test(test_bounds),        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
