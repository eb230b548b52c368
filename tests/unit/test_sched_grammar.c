/* test_sched_grammar.c — grammar-constrained generation through the engine,
 * on stories260K (when ../shared has it), a synthetic model from
 * spillway-mkmodel, and SmolLM2-135M-Instruct (when scripts/fetch-model.sh has
 * it; skipped with its reason otherwise). Schemas whose every sentence is
 * short force each request to end on its own within max_tokens, so every run
 * must finish with reason stop, and its text must validate against the schema
 * (tests/unit/support/schema_check.c, an independent validator). Greedy and
 * sampled requests run concurrently; greedy must equal "temperature 1, top-k
 * 1" (which always takes the masked path) token for token; a GBNF grammar's
 * outputs must be sentences of it; the engine counts its grammar work. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "spillway.h"
#include "schema_check.h"
#include "sw_test.h"

static sw_backend *g_be;
static sw_model *g_m;
static const char *g_path;
static int32_t g_max_tokens = 200;
static int g_n_schemas = 4, g_n_sampled = 2; /* smaller for the real model */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1 /* a real model runs ~10x slower: keep its group small */
#else
#define SANITIZED 0
#endif

static int group_setup(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_backend_config bc = {.name = "cpu", .n_threads = 2, .device = -1};
    if (sw_backend_create(&bc, &g_be, &err) != SW_OK) return -1;
    sw_model_params mp = {0};
    if (sw_model_load(g_path, g_be, &mp, &g_m, &err) != SW_OK) {
        fprintf(stderr, "load %s: %s\n", g_path, err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    sw_model_free(g_m);
    sw_backend_free(g_be);
    return 0;
}

typedef struct run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t tokens[1024];
    int n_tokens;
    char text[8192];
    size_t len;
    bool done;
    sw_finish_reason reason;
    char message[256];
} run;

static void on_event(void *user, const sw_event *ev) {
    run *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->len + ev->text_len < sizeof r->text) {
        memcpy(r->text + r->len, ev->text, ev->text_len);
        r->len += ev->text_len;
        r->text[r->len] = '\0';
    }
    if (ev->type == SW_EVENT_TOKEN && r->n_tokens < 1024) r->tokens[r->n_tokens++] = ev->token.id;
    if (ev->type == SW_EVENT_FINAL) {
        r->done = true;
        r->reason = ev->finish;
        snprintf(r->message, sizeof r->message, "%s", ev->message);
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void run_init(run *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void run_wait(run *r) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 600;
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) break;
    bool done = r->done;
    pthread_mutex_unlock(&r->mu);
    if (!done) fail_msg("request did not finish");
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static int32_t *prompt_ids(const char *text, int32_t *n) {
    const sw_tokenizer *t = sw_model_tokenizer(g_m);
    int32_t *ids;
    size_t k;
    assert_int_equal(sw_tokenize(t, text, strlen(text), sw_tokenizer_add_bos(t), false, &ids, &k, NULL), SW_OK);
    *n = (int32_t)k;
    return ids;
}

static sw_request request(const int32_t *ids, int32_t n, sw_grammar *g, run *r, float temp, uint64_t seed) {
    sw_request q;
    memset(&q, 0, sizeof q);
    q.prompt = ids;
    q.n_prompt = n;
    sw_sampler_params_default(&q.sampling);
    q.sampling.temperature = temp;
    q.sampling.seed = seed;
    q.max_tokens = g_max_tokens;
    q.grammar = g;
    q.on_event = on_event;
    q.user = r;
    return q;
}

/* Every sentence of these is at most ~200 bytes (bounded strings, arrays,
 * numbers, 20 whitespace bytes per gap at most, few gaps). */
static const char *const k_schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":6},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120}},"
    "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
    "{\"type\":\"array\",\"items\":{\"enum\":[\"red\",\"green\",\"blue\"]},\"minItems\":1,\"maxItems\":3}",
    "{\"anyOf\":[{\"type\":\"boolean\"},{\"type\":\"number\",\"exclusiveMinimum\":-1,\"maximum\":1},{\"type\":\"string\",\"pattern\":\"^[a-z]{1,5}$\"}]}",
    "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"},\"when\":{\"type\":\"string\",\"format\":\"date\"}},\"required\":[\"when\"],\"additionalProperties\":false}",
};

static void check_schema_runs(const char *prompt_text, int n_sampled) {
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.n_ctx = 512;
    sw_engine *e;
    sw_err err;
    assert_int_equal(sw_engine_create(g_m, &p, &e, &err), SW_OK);
    int32_t n;
    int32_t *ids = prompt_ids(prompt_text, &n);
    for (int s = 0; s < g_n_schemas; s++) {
        sw_grammar *g;
        assert_int_equal(sw_grammar_from_json_schema(k_schemas[s], strlen(k_schemas[s]), &g, &err), SW_OK);
        int nr = 2 + n_sampled;
        run *r = calloc((size_t)nr, sizeof *r);
        for (int i = 0; i < nr; i++) {
            run_init(&r[i]);
            /* 0: greedy; 1: temperature 1 top-k 1 (the masked path); 2..: sampled */
            sw_request q = request(ids, n, g, &r[i], i == 0 ? 0.0f : 1.0f, 100 + (uint64_t)i);
            if (i == 1) q.sampling.top_k = 1;
            if (i >= 2) q.sampling.top_p = 0.9f;
            assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_OK);
        }
        sw_grammar_free(g); /* the engine holds its own references */
        cJSON *schema = cJSON_Parse(k_schemas[s]);
        for (int i = 0; i < nr; i++) {
            run_wait(&r[i]);
            if (r[i].reason != SW_FINISH_STOP)
                fail_msg("%s: schema %d run %d ended with %s (%s) after '%s'", g_path, s, i,
                         sw_finish_reason_str(r[i].reason), r[i].message, r[i].text);
            cJSON *doc = cJSON_Parse(r[i].text);
            char why[256];
            if (!doc || !sw_test_schema_valid(schema, doc, why, sizeof why))
                fail_msg("%s: schema %d run %d: '%s' does not validate: %s", g_path, s, i, r[i].text,
                         doc ? why : "not JSON");
            cJSON_Delete(doc);
        }
        assert_int_equal(r[0].n_tokens, r[1].n_tokens);
        assert_memory_equal(r[0].tokens, r[1].tokens, (size_t)r[0].n_tokens * sizeof r[0].tokens[0]);
        cJSON_Delete(schema);
        free(r);
    }
    sw_engine_stats st;
    sw_engine_stats_get(e, &st);
    assert_true(st.grammar_tokens > 0);
    assert_true(st.grammar_masks <= st.grammar_tokens);
    printf("%s: %llu constrained tokens, %llu needed the full mask, %.1f ms of grammar work\n", g_path,
           (unsigned long long)st.grammar_tokens, (unsigned long long)st.grammar_masks, st.grammar_seconds * 1e3);
    free(ids);
    sw_engine_free(e);
}

static void test_schema_outputs_validate(void **state) {
    (void)state;
    check_schema_runs("Answer in JSON. Once upon a time", g_n_sampled);
}

static void test_gbnf_outputs(void **state) {
    (void)state;
    static const char k_gbnf[] = "root ::= \"(\" item (\",\" item){0,2} \")\"\nitem ::= [0-9]{1,2} | \"x\" root\n";
    sw_grammar *g;
    sw_err err;
    assert_int_equal(sw_grammar_from_gbnf(k_gbnf, strlen(k_gbnf), &g, &err), SW_OK);
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.n_ctx = 512;
    sw_engine *e;
    assert_int_equal(sw_engine_create(g_m, &p, &e, &err), SW_OK);
    int32_t n;
    int32_t *ids = prompt_ids("Lists:", &n);
    run r[3];
    for (int i = 0; i < 3; i++) {
        run_init(&r[i]);
        sw_request q = request(ids, n, g, &r[i], i ? 1.0f : 0.0f, 9 + (uint64_t)i);
        /* nesting through "x" root could go on: a length end is fine here */
        q.max_tokens = 64;
        assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_OK);
    }
    for (int i = 0; i < 3; i++) {
        run_wait(&r[i]);
        sw_gmatch *m;
        assert_int_equal(sw_gmatch_create(g, &m, NULL), SW_OK);
        if (!sw_gmatch_feed(m, r[i].text, r[i].len)) fail_msg("output '%s' is not a prefix of the grammar", r[i].text);
        if (r[i].reason == SW_FINISH_STOP) assert_true(sw_gmatch_accepting(m));
        else assert_int_equal(r[i].reason, SW_FINISH_LENGTH);
        sw_gmatch_free(m);
    }
    /* a grammar and JSON mode together is a caller error */
    run bad;
    run_init(&bad);
    sw_request q = request(ids, n, g, &bad, 0.0f, 1);
    q.json_object = true;
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
    free(ids);
    sw_grammar_free(g);
    sw_engine_free(e);
}

/* Whether s[0..n) is valid UTF-8. */
static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = sw_utf8_decode(s + i, n - i, &cp);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

/* Generation that ends in the middle of a character (max tokens over a
 * grammar of Armenian text, which byte-level and byte-fallback vocabularies
 * spell in single-byte tokens) still hands out valid UTF-8 only: the cut
 * character's bytes become U+FFFD, never a bare lead byte. */
static void test_cut_character_is_replaced(void **state) {
    (void)state;
    static const char k_word[] = "\xD5\x80\xD5\xA1\xD5\xB5\xD5\xA5\xD6\x80\xD5\xA5\xD5\xB6"; /* Հայերեն */
    static const char k_gbnf[] = "root ::= \"\xD5\x80\xD5\xA1\xD5\xB5\xD5\xA5\xD6\x80\xD5\xA5\xD5\xB6\"\n";
    sw_grammar *g;
    sw_err err;
    assert_int_equal(sw_grammar_from_gbnf(k_gbnf, strlen(k_gbnf), &g, &err), SW_OK);
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.n_ctx = 256;
    sw_engine *e;
    assert_int_equal(sw_engine_create(g_m, &p, &e, &err), SW_OK);
    int32_t n;
    int32_t *ids = prompt_ids("Armenian:", &n);
    enum { K = 8 };
    run r[K];
    for (int i = 0; i < K; i++) {
        run_init(&r[i]);
        sw_request q = request(ids, n, g, &r[i], 0.0f, 1);
        q.max_tokens = i + 1;
        assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_OK);
    }
    int cut = 0, ran = 0;
    for (int i = 0; i < K; i++) {
        run_wait(&r[i]);
        if (r[i].reason == SW_FINISH_ERROR) { /* no token of this vocabulary starts the word */
            printf("cut character: max_tokens %d: %s\n", i + 1, r[i].message);
            continue;
        }
        ran++;
        if (!valid_utf8(r[i].text, r[i].len))
            fail_msg("max_tokens %d: output of %zu bytes is not valid UTF-8", i + 1, r[i].len);
        /* whole characters of the word, then at most one U+FFFD per byte of a cut one */
        size_t whole = 0;
        while (whole < r[i].len && whole < sizeof k_word - 1 && r[i].text[whole] == k_word[whole]) whole++;
        whole -= whole % 2; /* every character of the word has 2 bytes */
        size_t rest = r[i].len - whole;
        for (size_t j = whole; j < r[i].len; j += 3)
            assert_memory_equal(r[i].text + j, "\xEF\xBF\xBD", 3);
        assert_true(rest == 0 || rest == 3);
        if (rest) cut++;
        if (r[i].reason == SW_FINISH_STOP) assert_string_equal(r[i].text, k_word);
    }
    printf("cut character: %d of %d runs ended inside a character\n", cut, ran);
    /* the vocabularies tested here (byte-level BPE, SPM byte fallback, the
     * synthetic one) all spell the word in byte tokens: the cut must happen */
    assert_true(ran > 0 && cut > 0);
    free(ids);
    sw_grammar_free(g);
    sw_engine_free(e);
}

static const struct CMUnitTest k_tests[] = {
    cmocka_unit_test(test_schema_outputs_validate),
    cmocka_unit_test(test_gbnf_outputs),
    cmocka_unit_test(test_cut_character_is_replaced),
};

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
}

int main(void) {
    int failed = 0, groups = 0;
    char stories[1024], synth[1024], smol[1024], why[512];
    const char *shared = getenv("SW_SHARED_DIR");
    snprintf(stories, sizeof stories, "%s/models/stories260K.gguf", shared ? shared : "/work/shared");
    if (file_exists(stories)) {
        g_path = stories;
        failed += cmocka_run_group_tests_name("grammar_stories260K", k_tests, group_setup, group_teardown);
        groups++;
    } else {
        printf("stories260K: %s not found\n", stories);
    }
    const char *bin = getenv("SW_BIN_DIR"), *tmp = getenv("SW_TMP_DIR");
    if (bin && tmp) {
        char cmd[3072];
        snprintf(synth, sizeof synth, "%s/grammar_tiny_q8_0.gguf", tmp);
        snprintf(cmd, sizeof cmd, "'%s/spillway-mkmodel' -o '%s' --shape tiny --type q8_0 > /dev/null", bin, synth);
        if (system(cmd) == 0 && file_exists(synth)) {
            g_path = synth;
            failed += cmocka_run_group_tests_name("grammar_synthetic_tiny", k_tests, group_setup, group_teardown);
            groups++;
        } else {
            printf("synthetic model: '%s' failed\n", cmd);
        }
    }
    if (sw_test_real_model("smollm2", smol, sizeof smol, why, sizeof why)) {
        g_path = smol;
        g_max_tokens = SANITIZED ? 96 : 160;
        g_n_schemas = SANITIZED ? 2 : 4;
        g_n_sampled = SANITIZED ? 0 : 1;
        failed += cmocka_run_group_tests_name("grammar_smollm2", k_tests, group_setup, group_teardown);
        groups++;
    } else {
        printf("SmolLM2 group skipped: %s\n", why);
    }
    if (groups == 0) {
        printf("SKIP: no model to run the engine with\n");
        return 77;
    }
    return failed;
}
