/* test_fallback_cloud.c — the cloud client end to end against
 * tests/py/fake_provider.py on 127.0.0.1 (started here, stopped at the end):
 * both wire formats streaming and not, and every misbehaviour the fake can
 * play: timeout, slow and byte-split streams, 429 + Retry-After then success,
 * 500, 529, malformed SSE, non-JSON data, truncated stream, mid-stream error
 * event, connection reset, connection refused; the circuit breaker opening and
 * recovering; the key never appearing in errors; and a private request that
 * never reaches the provider (zero hits). Skips (77) when no Python is found. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "router.h"

#define KEY "sk-test-SECRET-0123456789abcdef"
#define KEY_ENV "SW_TEST_FALLBACK_KEY"

static pid_t g_pid = -1;
static int g_stdin_fd = -1;
static int g_port;
static char g_base[128];

/* ---- the fake provider process ---------------------------------------------------- */

static int start_fake(void) {
    const char *src = getenv("SW_SOURCE_DIR");
    char script[1024], python[1024];
    snprintf(script, sizeof script, "%s/tests/py/fake_provider.py", src && src[0] ? src : ".");
    snprintf(python, sizeof python, "%s/.venv/bin/python", src && src[0] ? src : ".");
    if (access(script, R_OK) != 0) {
        printf("SKIP: %s not found (set SW_SOURCE_DIR)\n", script);
        return 77;
    }
    if (access(python, X_OK) != 0) snprintf(python, sizeof python, "/usr/bin/python3");
    if (access(python, X_OK) != 0) {
        printf("SKIP: no Python (.venv/bin/python or /usr/bin/python3) to run the fake provider\n");
        return 77;
    }
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return 1;
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(python, python, script, "--port", "0", "--key", KEY, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    g_pid = pid;
    g_stdin_fd = in[1]; /* closing it (or our death) stops the fake */
    char line[64] = "";
    size_t used = 0;
    struct pollfd pf = {out[0], POLLIN, 0};
    while (used < sizeof line - 1 && !strchr(line, '\n')) {
        if (poll(&pf, 1, 15000) <= 0) break;
        ssize_t r = read(out[0], line + used, sizeof line - 1 - used);
        if (r <= 0) break;
        used += (size_t)r;
        line[used] = '\0';
    }
    close(out[0]);
    if (sscanf(line, "READY %d", &g_port) != 1) {
        fprintf(stderr, "fake provider did not start: '%s'\n", line);
        return 1;
    }
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", g_port);
    return 0;
}

static void stop_fake(void) {
    if (g_pid <= 0) return;
    close(g_stdin_fd);
    kill(g_pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* up to 5 s, then force */
        if (waitpid(g_pid, NULL, WNOHANG) == g_pid) {
            g_pid = -1;
            return;
        }
        usleep(50000);
    }
    kill(g_pid, SIGKILL);
    waitpid(g_pid, NULL, 0);
    g_pid = -1;
}

typedef struct membuf {
    char buf[65536];
    size_t len;
} membuf;

static size_t mem_write(char *p, size_t s, size_t n, void *u) {
    membuf *m = u;
    size_t len = s * n, room = sizeof m->buf - 1 - m->len;
    if (len > room) len = room;
    memcpy(m->buf + m->len, p, len);
    m->len += len;
    m->buf[m->len] = '\0';
    return s * n;
}

/* Control call to the fake; returns the parsed JSON answer (caller frees). */
static cJSON *control(const char *path, const char *json) {
    CURL *h = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", g_base, path);
    membuf *m = calloc(1, sizeof *m);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, m);
    if (json) curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) fail_msg("control %s: %s", path, curl_easy_strerror(cc));
    cJSON *j = cJSON_Parse(m->buf);
    free(m);
    return j;
}

static void script(const char *json) {
    cJSON_Delete(control("/_reset", "{}"));
    cJSON_Delete(control("/_control", json));
}

static int hits(void) {
    cJSON *s = control("/_stats", NULL);
    int n = cJSON_GetObjectItem(s, "hits")->valueint;
    cJSON_Delete(s);
    return n;
}

/* ---- the client under test ----------------------------------------------------------- */

static double g_slept;
static int g_sleeps;
static double g_now;
static bool g_fake_clock;
static void rec_sleep(void *u, double s) {
    (void)u;
    g_slept += s;
    g_sleeps++;
    g_now += s;
}
static double zero_jitter(void *u) {
    (void)u;
    return 0.0;
}
static double test_clock(void *u) {
    (void)u;
    return g_fake_clock ? g_now : sw_time_s();
}

static sw_cloud *make_cloud(sw_provider prov, const char *base, double timeout_s) {
    sw_cloud_params p;
    sw_cloud_params_default(&p);
    p.provider = prov;
    char url[160];
    snprintf(url, sizeof url, "%s%s", base, prov == SW_PROVIDER_OPENAI ? "/v1" : "");
    p.base_url = url;
    p.model = prov == SW_PROVIDER_OPENAI ? "gpt-fake" : "claude-fake";
    p.key_env = KEY_ENV;
    p.connect_timeout_s = 2;
    p.timeout_s = timeout_s;
    p.idle_timeout_s = 5;
    p.retry.max_attempts = 3;
    p.retry.base_delay_s = 0.1;
    p.retry.budget_s = 20;
    p.breaker_failures = 3;
    p.breaker_cooldown_s = 30;
    sw_cloud_hooks hooks = {test_clock, rec_sleep, zero_jitter, NULL};
    sw_cloud *c = NULL;
    sw_err err = {{0}};
    if (sw_cloud_create(&p, &hooks, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    g_slept = 0;
    g_sleeps = 0;
    return c;
}

static cJSON *chat_req(const char *user_text, int max_tokens) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "model", "local-model");
    if (max_tokens > 0) cJSON_AddNumberToObject(r, "max_tokens", max_tokens);
    cJSON *m = cJSON_AddArrayToObject(r, "messages");
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "role", "system");
    cJSON_AddStringToObject(s, "content", "You are terse.");
    cJSON_AddItemToArray(m, s);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "role", "user");
    cJSON_AddStringToObject(u, "content", user_text);
    cJSON_AddItemToArray(m, u);
    cJSON_AddNumberToObject(r, "temperature", 0.5);
    return r;
}

typedef struct sink {
    char text[4096];
    int chunks, content_chunks, usage_chunks;
    char finish[32];
    double t_first, t_last;
    int cancel_after; /* > 0: return SW_E_CANCELLED at this content chunk */
} sink;

static sw_status on_chunk(void *user, const sw_cloud_chunk *c, sw_err *err) {
    sink *s = user;
    s->chunks++;
    char *js = cJSON_PrintUnformatted(c->json);
    assert_non_null(strstr(js, "\"object\":\"chat.completion.chunk\""));
    free(js);
    if (c->content && c->content[0]) {
        s->content_chunks++;
        strncat(s->text, c->content, sizeof s->text - strlen(s->text) - 1);
        if (!s->t_first) s->t_first = sw_time_s();
        s->t_last = sw_time_s();
        if (s->cancel_after && s->content_chunks >= s->cancel_after)
            return sw_err_set(err, SW_E_CANCELLED, "client went away");
    }
    if (c->finish_reason) snprintf(s->finish, sizeof s->finish, "%s", c->finish_reason);
    if (c->is_usage) s->usage_chunks++;
    return SW_OK;
}

static const char *content_of(const cJSON *resp) {
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "choices"), 0);
    return cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content")->valuestring;
}

static void assert_no_key(const char *s) {
    if (strstr(s, KEY) || strstr(s, "SECRET-01")) fail_msg("key leaked: %s", s);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_both_formats(void **state) {
    (void)state;
    for (int prov = 0; prov < 2; prov++) {
        sw_cloud *c = make_cloud((sw_provider)prov, g_base, 10);
        script("{\"default\":\"ok\"}");
        cJSON *req = chat_req("hello world", 0);
        sw_cloud_result res;
        sw_err err = {{0}};
        /* non-streaming */
        sw_status st = sw_cloud_chat(c, req, NULL, NULL, &res, &err);
        if (st != SW_OK) fail_msg("%s: %s", sw_provider_str(prov), err.msg);
        assert_string_equal(content_of(res.response), "fake reply: hello world");
        assert_string_equal(res.finish_reason, "stop");
        assert_int_equal(res.completion_tokens, 4);
        assert_true(res.prompt_tokens > 0);
        assert_int_equal(res.attempts, 1);
        assert_int_equal(res.http_status, 200);
        assert_string_equal(res.provider_request_id, "req_fake_1");
        sw_cloud_result_clear(&res);
        /* what the provider received */
        cJSON *stats = control("/_stats", NULL);
        cJSON *body = cJSON_GetObjectItem(cJSON_GetObjectItem(stats, "last"), "body");
        assert_string_equal(cJSON_GetObjectItem(body, "model")->valuestring,
                            prov == SW_PROVIDER_OPENAI ? "gpt-fake" : "claude-fake");
        if (prov == SW_PROVIDER_ANTHROPIC)
            assert_string_equal(cJSON_GetObjectItem(body, "system")->valuestring, "You are terse.");
        cJSON_Delete(stats);
        /* streaming, normal and one byte per write */
        const char *modes[] = {"{\"default\":\"ok\"}", "{\"default\":\"split\"}"};
        for (int m = 0; m < 2; m++) {
            script(modes[m]);
            sink s;
            memset(&s, 0, sizeof s);
            st = sw_cloud_chat(c, req, on_chunk, &s, &res, &err);
            if (st != SW_OK) fail_msg("%s stream %d: %s", sw_provider_str(prov), m, err.msg);
            assert_string_equal(s.text, "fake reply: hello world");
            assert_string_equal(s.finish, "stop");
            assert_int_equal(s.usage_chunks, 1);
            assert_int_equal(res.completion_tokens, 4);
            assert_true(res.streamed);
            assert_true(res.ttft_s > 0);
            sw_cloud_result_clear(&res);
        }
        /* max_tokens -> finish "length" */
        cJSON *short_req = chat_req("one two three four five six", 3);
        script("{\"default\":\"ok\"}");
        sink s;
        memset(&s, 0, sizeof s);
        assert_int_equal(sw_cloud_chat(c, short_req, on_chunk, &s, &res, &err), SW_OK);
        assert_string_equal(s.finish, "length");
        sw_cloud_result_clear(&res);
        cJSON_Delete(short_req);
        cJSON_Delete(req);
        sw_cloud_free(c);
    }
}

static void test_retry_after_then_success(void **state) {
    (void)state;
    for (int prov = 0; prov < 2; prov++) {
        sw_cloud *c = make_cloud((sw_provider)prov, g_base, 10);
        script("{\"script\":[\"429\"],\"retry_after\":\"2\"}");
        cJSON *req = chat_req("retry me", 0);
        sw_cloud_result res;
        sw_err err = {{0}};
        sink s;
        memset(&s, 0, sizeof s);
        sw_status st = sw_cloud_chat(c, req, on_chunk, &s, &res, &err);
        if (st != SW_OK) fail_msg("%s", err.msg);
        assert_int_equal(res.attempts, 2);
        assert_int_equal(g_sleeps, 1);
        assert_true(g_slept == 2.0); /* Retry-After honoured exactly */
        assert_string_equal(s.text, "fake reply: retry me");
        assert_int_equal(hits(), 2);
        sw_cloud_result_clear(&res);
        /* an HTTP date works too */
        script("{\"script\":[\"529\", \"ok\"]}");
        g_slept = 0;
        assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_OK);
        assert_int_equal(res.attempts, 2);
        assert_true(g_slept > 0); /* backoff without Retry-After */
        sw_cloud_result_clear(&res);
        cJSON_Delete(req);
        sw_cloud_free(c);
    }
}

typedef struct fail_case {
    const char *script;
    sw_status st;
    int client_status;
    int attempts;
    bool stream;
} fail_case;

static void test_failures(void **state) {
    (void)state;
    static const fail_case cases[] = {
        {"{\"default\":\"500\"}", SW_E_BACKEND, 502, 3, false},
        {"{\"default\":\"529\"}", SW_E_BUSY, 503, 3, true},
        {"{\"default\":\"429\",\"retry_after\":\"100\"}", SW_E_BUSY, 503, 1, false}, /* over the budget */
        /* malformed answers are deterministic: not retried */
        {"{\"default\":\"malformed\"}", SW_E_FORMAT, 502, 1, true},
        {"{\"default\":\"badjson\"}", SW_E_FORMAT, 502, 1, true},
        {"{\"default\":\"badjson\"}", SW_E_FORMAT, 502, 1, false},
        {"{\"default\":\"reset\"}", SW_E_IO, 502, 3, true},
        {"{\"default\":\"echo_key\"}", SW_E_BACKEND, 502, 1, false},
        {"{\"default\":\"error_event\"}", SW_E_BACKEND, 502, 3, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int prov = 0; prov < 2; prov++) {
            if (strstr(cases[i].script, "error_event") && prov == SW_PROVIDER_OPENAI) continue;
            sw_cloud *c = make_cloud((sw_provider)prov, g_base, 10);
            script(cases[i].script);
            cJSON *req = chat_req("x", 0);
            sw_cloud_result res;
            sw_err err = {{0}};
            sink s;
            memset(&s, 0, sizeof s);
            sw_status st = sw_cloud_chat(c, req, cases[i].stream ? on_chunk : NULL, &s, &res, &err);
            if (st != cases[i].st || res.client_status != cases[i].client_status ||
                res.attempts != cases[i].attempts)
                fail_msg("%s %s: got %s/%d/%d attempts (%s)", sw_provider_str(prov), cases[i].script,
                         sw_status_str(st), res.client_status, res.attempts, err.msg);
            assert_true(err.msg[0]);
            assert_non_null(strstr(err.msg, sw_provider_str(prov)));
            assert_no_key(err.msg);
            char *ej = sw_cloud_error_json(&res, st, &err);
            assert_non_null(strstr(ej, "\"error\""));
            assert_no_key(ej);
            free(ej);
            assert_int_equal(s.content_chunks, 0);
            sw_cloud_result_clear(&res);
            cJSON_Delete(req);
            sw_cloud_free(c);
        }
    }
}

static void test_truncated_and_cancel(void **state) {
    (void)state;
    for (int prov = 0; prov < 2; prov++) {
        sw_cloud *c = make_cloud((sw_provider)prov, g_base, 10);
        cJSON *req = chat_req("a b c d", 0);
        sw_cloud_result res;
        sw_err err = {{0}};
        /* cut after content was delivered: no retry (the client already has text) */
        script("{\"default\":\"truncated\"}");
        sink s;
        memset(&s, 0, sizeof s);
        assert_int_equal(sw_cloud_chat(c, req, on_chunk, &s, &res, &err), SW_E_FORMAT);
        assert_true(res.streamed);
        assert_int_equal(res.attempts, 1);
        assert_non_null(strstr(err.msg, "end marker"));
        sw_cloud_result_clear(&res);
        /* the consumer cancels */
        script("{\"default\":\"ok\"}");
        memset(&s, 0, sizeof s);
        s.cancel_after = 1;
        assert_int_equal(sw_cloud_chat(c, req, on_chunk, &s, &res, &err), SW_E_CANCELLED);
        assert_int_equal(res.attempts, 1);
        sw_breaker_info bi;
        sw_breaker_info_get(sw_cloud_breaker(c), &bi);
        assert_int_equal(bi.consecutive_failures, 0); /* a cancel is not the provider's fault */
        sw_cloud_result_clear(&res);
        cJSON_Delete(req);
        sw_cloud_free(c);
    }
}

static void test_timeouts_and_slow(void **state) {
    (void)state;
    sw_cloud *c = make_cloud(SW_PROVIDER_ANTHROPIC, g_base, 1.0);
    cJSON *req = chat_req("one two three four", 0);
    sw_cloud_result res;
    sw_err err = {{0}};
    /* no answer at all: fails at the 1 s timeout, not retried */
    script("{\"default\":\"timeout\",\"delay\":20}");
    double t0 = sw_time_s();
    assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_E_IO);
    double took = sw_time_s() - t0;
    assert_true(took >= 0.9 && took < 5);
    assert_int_equal(res.client_status, 504);
    assert_string_equal(res.error_type, "timeout");
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(err.msg, "timed out"));
    sw_cloud_result_clear(&res);
    sw_cloud_free(c);
    /* a slow stream inside the timeout arrives progressively */
    c = make_cloud(SW_PROVIDER_ANTHROPIC, g_base, 10);
    script("{\"default\":\"slow\",\"delay\":0.15}");
    sink s;
    memset(&s, 0, sizeof s);
    assert_int_equal(sw_cloud_chat(c, req, on_chunk, &s, &res, &err), SW_OK);
    assert_string_equal(s.text, "fake reply: one two three four");
    assert_true(s.t_last - s.t_first > 0.4); /* 6 words, 0.15 s apart: not one burst */
    sw_cloud_result_clear(&res);
    sw_cloud_free(c);
    /* a slow stream past the total timeout fails, after the first chunks */
    c = make_cloud(SW_PROVIDER_ANTHROPIC, g_base, 0.5);
    memset(&s, 0, sizeof s);
    assert_int_equal(sw_cloud_chat(c, req, on_chunk, &s, &res, &err), SW_E_IO);
    assert_true(res.streamed);
    sw_cloud_result_clear(&res);
    sw_cloud_free(c);
    cJSON_Delete(req);
}

static void test_refused(void **state) {
    (void)state;
    /* a loopback port with nothing listening: bind, read the port, close */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", ntohs(a.sin_port));
    sw_cloud *c = make_cloud(SW_PROVIDER_OPENAI, base, 5);
    cJSON *req = chat_req("x", 0);
    sw_cloud_result res;
    sw_err err = {{0}};
    assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_E_IO);
    assert_int_equal(res.attempts, 3);
    assert_int_equal(res.client_status, 502);
    assert_int_equal(res.http_status, 0);
    assert_no_key(err.msg);
    sw_cloud_result_clear(&res);
    cJSON_Delete(req);
    sw_cloud_free(c);
}

static void test_breaker_opens_and_recovers(void **state) {
    (void)state;
    g_fake_clock = true;
    g_now = 1000;
    sw_cloud *c = make_cloud(SW_PROVIDER_ANTHROPIC, g_base, 10);
    cJSON *req = chat_req("x", 0);
    sw_cloud_result res;
    sw_err err = {{0}};
    /* one call = 3 failed attempts = threshold 3: the breaker opens */
    script("{\"default\":\"500\"}");
    assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_E_BACKEND);
    sw_cloud_result_clear(&res);
    sw_breaker_info bi;
    sw_breaker_info_get(sw_cloud_breaker(c), &bi);
    assert_int_equal(bi.state, SW_BREAKER_OPEN);
    assert_false(sw_cloud_available(c));
    int before = hits();
    assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_E_BUSY);
    assert_int_equal(res.client_status, 503);
    assert_non_null(strstr(err.msg, "circuit breaker"));
    assert_int_equal(hits(), before); /* refused without touching the provider */
    sw_cloud_result_clear(&res);
    /* after the cool-down one probe goes through; success closes */
    g_now += 31;
    assert_true(sw_cloud_available(c));
    script("{\"default\":\"ok\"}");
    assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_OK);
    sw_cloud_result_clear(&res);
    sw_breaker_info_get(sw_cloud_breaker(c), &bi);
    assert_int_equal(bi.state, SW_BREAKER_CLOSED);
    cJSON_Delete(req);
    sw_cloud_free(c);
    g_fake_clock = false;
}

static void test_private_never_leaves(void **state) {
    (void)state;
    sw_cloud *c = make_cloud(SW_PROVIDER_ANTHROPIC, g_base, 10);
    sw_router *r = NULL;
    sw_err err = {{0}};
    sw_router_policy pol;
    sw_router_policy_default(&pol);
    pol.default_route = SW_PREF_CLOUD; /* everything that may go out, goes out */
    assert_int_equal(sw_router_create(&pol, sw_cloud_available, c, &r, &err), SW_OK);
    script("{\"default\":\"ok\"}");
    static const char *const bodies[] = {
        "{\"spillway\":{\"private\":true},\"messages\":[{\"role\":\"user\",\"content\":\"secret plan\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"my IBAN is DE89 3704 0044 0532 0130 00\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"reach me at ann@example.org\"}]}",
        "{\"spillway\":{\"private\":true,\"route\":\"cloud\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    };
    int served_cloud = 0;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        cJSON *b = cJSON_Parse(bodies[i]);
        sw_route_request q;
        memset(&q, 0, sizeof q);
        assert_int_equal(sw_route_parse_extension(b, &q, &err), SW_OK);
        q.messages = cJSON_GetObjectItem(b, "messages");
        q.prompt_tokens = 10;
        q.local_n_ctx = 4096;
        sw_route_decision d;
        assert_int_equal(sw_router_decide(r, &q, &d, &err), SW_OK);
        assert_int_not_equal(d.route, SW_ROUTE_CLOUD);
        if (d.route == SW_ROUTE_CLOUD) { /* what a server would do; must never happen */
            sw_cloud_result res;
            sw_cloud_chat(c, b, NULL, NULL, &res, &err);
            sw_cloud_result_clear(&res);
            served_cloud++;
        }
        cJSON_Delete(b);
    }
    assert_int_equal(served_cloud, 0);
    assert_int_equal(hits(), 0); /* the provider never saw any of them */
    /* and a plain request does go out (the check above is not vacuous) */
    cJSON *b = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}]}");
    sw_route_request q;
    memset(&q, 0, sizeof q);
    q.messages = cJSON_GetObjectItem(b, "messages");
    q.prompt_tokens = 10;
    q.local_n_ctx = 4096;
    sw_route_decision d;
    assert_int_equal(sw_router_decide(r, &q, &d, &err), SW_OK);
    assert_int_equal(d.route, SW_ROUTE_CLOUD);
    sw_cloud_result res;
    assert_int_equal(sw_cloud_chat(c, b, NULL, NULL, &res, &err), SW_OK);
    sw_cloud_result_clear(&res);
    assert_int_equal(hits(), 1);
    cJSON_Delete(b);
    sw_router_free(r);
    sw_cloud_free(c);
}

static void test_missing_key(void **state) {
    (void)state;
    sw_cloud_params p;
    sw_cloud_params_default(&p);
    p.model = "m";
    p.base_url = g_base;
    p.key_env = "SW_TEST_FALLBACK_NO_SUCH_KEY";
    unsetenv(p.key_env);
    sw_cloud *c = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_cloud_create(&p, NULL, &c, &err), SW_OK);
    assert_false(sw_cloud_available(c));
    cJSON *req = chat_req("x", 0);
    sw_cloud_result res;
    assert_int_equal(sw_cloud_chat(c, req, NULL, NULL, &res, &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "SW_TEST_FALLBACK_NO_SUCH_KEY"));
    assert_int_equal(res.client_status, 503);
    cJSON_Delete(req);
    sw_cloud_free(c);
    p.base_url = "ftp://example.com";
    assert_int_equal(sw_cloud_create(&p, NULL, &c, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "cloud.url"));
    p.base_url = NULL;
    p.model = NULL;
    assert_int_equal(sw_cloud_create(&p, NULL, &c, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "cloud.model"));
}

int main(void) {
    setenv(KEY_ENV, KEY, 1);
    signal(SIGPIPE, SIG_IGN);
    int rc = start_fake();
    if (rc != 0) {
        stop_fake();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_formats),
        cmocka_unit_test(test_retry_after_then_success),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_truncated_and_cancel),
        cmocka_unit_test(test_timeouts_and_slow),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_breaker_opens_and_recovers),
        cmocka_unit_test(test_private_never_leaves),
        cmocka_unit_test(test_missing_key),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_fake();
    return rc;
}
