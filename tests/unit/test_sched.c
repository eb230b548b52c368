/* test_sched.c — the continuous-batching engine on the CPU backend (and, for
 * (a), (c) and (d) with stories260K, on the Vulkan backend when a device exists:
 * lavapipe in CI), with
 * stories260K (a tiny real model) when present and a synthetic tiny q8_0 model
 * from spillway-mkmodel, each test run on both (and the batching, preemption,
 * prefix-cache and hidden-state tests on a synthetic gemma3 too):
 *   (a) concurrent greedy requests give exactly their solo outputs (with a small
 *       token budget, so prefill chunks and decodes share steps);
 *   (b) a storm of submits and cancels from 4 threads: every request gets
 *       exactly one final event, and no KV block stays in use;
 *   (c) a KV cache too small for the load forces preemption, and outputs still
 *       equal the solo ones (with and without the prefix cache);
 *   (d) a shared system prompt hits the prefix cache, outputs unchanged;
 *   (e) stop strings: never emitted, text before them delivered, partial
 *       matches held back and released;
 *   (f) max_tokens -> length; over-long prompts -> SW_E_RANGE; a full queue ->
 *       SW_E_BUSY; cancel semantics; freeing an engine with work in flight;
 *   (g) the prompt's final hidden states (last token and mean) equal a direct
 *       sw_model_forward of the prompt alone, batched and chunked, through
 *       preemption, with the prefix cache on; delivered once, before the
 *       first token; no_generate ends after the prefill;
 *   (h) sampling from the device summary of the logits = from whole rows.
 * Plus the block manager's reference counting and LRU eviction on its own. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block_manager.h"
#include "cpu_backend.h"
#include "engine.h"
#include "json_grammar.h"
#include "model.h"

/* ---- fixtures --------------------------------------------------------------- */

static sw_backend *g_be;
static const char *g_backend = "cpu"; /* backend of the group being run */
static sw_model *g_m;
static const char *g_path;
static int32_t g_vocab;
static int32_t g_bos;

static int group_setup(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_backend_config bc = {.name = g_backend, .n_threads = 2, .device = -1};
    if (sw_backend_create(&bc, &g_be, &err) != SW_OK) {
        fprintf(stderr, "%s backend: %s\n", g_backend, err.msg);
        return -1;
    }
    sw_model_params mp = {0};
    if (sw_model_load(g_path, g_be, &mp, &g_m, &err) != SW_OK) {
        fprintf(stderr, "load %s: %s\n", g_path, err.msg);
        sw_backend_free(g_be);
        g_be = NULL;
        return -1;
    }
    g_vocab = (int32_t)sw_model_config_get(g_m)->n_vocab;
    const sw_tokenizer *t = sw_model_tokenizer(g_m);
    g_bos = t ? sw_tokenizer_bos(t) : -1;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    sw_model_free(g_m);
    sw_backend_free(g_be);
    g_m = NULL;
    g_be = NULL;
    return 0;
}

/* ---- collecting events ------------------------------------------------------- */

enum { MAX_GEN = 256 };

typedef struct result {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t tokens[MAX_GEN];
    int n_tokens;
    char text[16384];      /* all text, token and final events */
    size_t len;
    size_t cum[MAX_GEN];   /* text length after each token event */
    int n_final, n_after_final;
    sw_finish_reason reason;
    sw_usage usage;
    char message[256];
    char final_text[1024];
    bool bad_token_event;  /* a token event with a finish reason, etc. */
    bool bad_logprob;      /* logprob > 0, entropy < 0, or top list unsorted */
    bool top1_not_chosen;  /* the sampled id is not the most likely one */
    int min_n_top, max_n_top;
    double t_queued, t_first, t_finished;
    uint64_t info_hash;    /* of every token event's sw_token_info, bytewise */
    struct result *watch;  /* another request to sample at this one's first token */
    int watch_at_first;    /* watch->n_tokens then */
    int n_hidden;          /* SW_EVENT_HIDDEN events */
    int tokens_before_hidden;
    float *h_last, *h_mean; /* [n_embd] copies of the hidden event's vectors */
} result;

static void result_init(result *r) {
    memset(r, 0, sizeof *r);
    r->min_n_top = SW_MAX_TOP_LOGPROBS + 1;
    r->max_n_top = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void result_destroy(result *r) {
    free(r->h_last);
    free(r->h_mean);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void append_text(result *r, const char *t, size_t n) {
    if (r->len + n >= sizeof r->text) n = sizeof r->text - 1 - r->len;
    memcpy(r->text + r->len, t, n);
    r->len += n;
    r->text[r->len] = '\0';
}

static float *copy_vec(const float *v, int32_t n) {
    if (!v) return NULL;
    float *c = malloc((size_t)n * sizeof *c);
    if (c) memcpy(c, v, (size_t)n * sizeof *c);
    return c;
}

static void on_event(void *user, const sw_event *ev) {
    result *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n_final > 0) r->n_after_final++;
    if (strlen(ev->text) != ev->text_len) r->bad_token_event = true;
    if (ev->type == SW_EVENT_HIDDEN) {
        if (ev->text_len != 0 || ev->finish != SW_FINISH_NONE) r->bad_token_event = true;
        if (r->n_hidden++ == 0) {
            r->tokens_before_hidden = r->n_tokens;
            r->h_last = copy_vec(ev->hidden_last, ev->n_embd);
            r->h_mean = copy_vec(ev->hidden_mean, ev->n_embd);
        }
    } else if (ev->type == SW_EVENT_TOKEN) {
        if (ev->finish != SW_FINISH_NONE) r->bad_token_event = true;
        append_text(r, ev->text, ev->text_len);
        const sw_token_info *ti = &ev->token;
        if (!(ti->logprob <= 0.0f) || !(ti->entropy >= 0.0f)) r->bad_logprob = true;
        for (int k = 1; k < ti->n_top; k++)
            if (ti->top_logprobs[k] > ti->top_logprobs[k - 1]) r->bad_logprob = true;
        if (ti->n_top > 0 && ti->top_ids[0] != ti->id) r->top1_not_chosen = true;
        const unsigned char *tb = (const unsigned char *)ti;
        for (size_t k = 0; k < sizeof *ti; k++) r->info_hash = (r->info_hash ^ tb[k]) * 0x100000001b3ull;
        r->min_n_top = SW_MIN(r->min_n_top, ti->n_top);
        r->max_n_top = SW_MAX(r->max_n_top, ti->n_top);
        if (r->n_tokens == 0 && r->watch) {
            /* lock order: this result, then the watched one (only here) */
            pthread_mutex_lock(&r->watch->mu);
            r->watch_at_first = r->watch->n_tokens;
            pthread_mutex_unlock(&r->watch->mu);
        }
        if (r->n_tokens < MAX_GEN) {
            r->cum[r->n_tokens] = r->len;
            r->tokens[r->n_tokens++] = ev->token.id;
        }
    } else {
        append_text(r, ev->text, ev->text_len);
        snprintf(r->final_text, sizeof r->final_text, "%s", ev->text);
        r->n_final++;
        r->reason = ev->finish;
        r->usage = ev->usage;
        snprintf(r->message, sizeof r->message, "%s", ev->message);
        r->t_queued = ev->t_queued;
        r->t_first = ev->t_first_token;
        r->t_finished = ev->t_finished;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Wait for the final event (generous: ASan builds are slow). */
static bool wait_final(result *r, double timeout_s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)timeout_s;
    pthread_mutex_lock(&r->mu);
    while (r->n_final == 0)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) break;
    bool ok = r->n_final > 0;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* ---- requests ---------------------------------------------------------------- */

typedef struct prompt {
    int32_t ids[512];
    int32_t n;
} prompt;

/* A prompt of n tokens: BOS (when the model has one) then ordinary ids drawn
 * from a generator seeded by seed (local state: the storm calls this from
 * several threads). */
static void make_prompt(prompt *p, int32_t n, uint64_t seed) {
    uint64_t rng = seed * 2654435761u + 7;
    p->n = 0;
    if (g_bos >= 0) p->ids[p->n++] = g_bos;
    while (p->n < n) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        p->ids[p->n++] = 3 + (int32_t)((uint32_t)(rng >> 33) % (uint32_t)(g_vocab - 3));
    }
}

static sw_request greedy_request(const prompt *p, int32_t max_tokens, result *r) {
    sw_request q;
    memset(&q, 0, sizeof q);
    q.prompt = p->ids;
    q.n_prompt = p->n;
    sw_sampler_params_default(&q.sampling);
    q.sampling.temperature = 0.0f;
    q.sampling.repeat_penalty = 1.0f;
    q.sampling.repeat_last_n = 0;
    q.max_tokens = max_tokens;
    q.ignore_eos = true; /* fixed lengths make the comparisons complete */
    q.on_event = on_event;
    q.user = r;
    return q;
}

static sw_engine *make_engine(const sw_engine_params *p) {
    sw_engine *e = NULL;
    sw_err err = {{0}};
    sw_status st = sw_engine_create(g_m, p, &e, &err);
    if (st != SW_OK) fprintf(stderr, "engine: %s\n", err.msg);
    assert_int_equal(st, SW_OK);
    return e;
}

static void check_idle(sw_engine *e) {
    sw_engine_stats s;
    /* Final events are queued before the bookkeeping settles only in the
     * sense that delivery is asynchronous; the counts are exact already. */
    sw_engine_stats_get(e, &s);
    assert_int_equal(s.running, 0);
    assert_int_equal(s.waiting, 0);
    assert_int_equal(s.kv_blocks_used, 0);
    sw_err err = {{0}};
    sw_status st = sw_engine_check(e, &err);
    if (st != SW_OK) fprintf(stderr, "engine check: %s\n", err.msg);
    assert_int_equal(st, SW_OK);
}

/* Solo reference outputs: one request at a time on a fresh default engine. */
static void run_solo(const prompt *ps, int n, int32_t max_tokens, result *out, bool prefix_cache) {
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.no_prefix_cache = !prefix_cache;
    sw_engine *e = make_engine(&p);
    for (int i = 0; i < n; i++) {
        result_init(&out[i]);
        sw_request q = greedy_request(&ps[i], max_tokens, &out[i]);
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&out[i], 300));
        assert_int_equal(out[i].reason, SW_FINISH_LENGTH);
        assert_int_equal(out[i].n_tokens, max_tokens);
    }
    check_idle(e);
    sw_engine_free(e);
}

static void assert_same_output(const result *a, const result *b, int i) {
    if (a->n_tokens != b->n_tokens || memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens)) {
        fprintf(stderr, "request %d differs:\n solo:", i);
        for (int k = 0; k < a->n_tokens; k++) fprintf(stderr, " %d", a->tokens[k]);
        fprintf(stderr, "\n got: ");
        for (int k = 0; k < b->n_tokens; k++) fprintf(stderr, " %d", b->tokens[k]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(a->n_tokens, b->n_tokens);
    assert_memory_equal(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens);
    assert_string_equal(a->text, b->text);
}

/* Submit all prompts at once to e, wait, compare with the references. */
static void run_concurrent_and_compare(sw_engine *e, const prompt *ps, int n, int32_t max_tokens,
                                       const result *ref) {
    result *got = calloc((size_t)n, sizeof *got);
    assert_non_null(got);
    for (int i = 0; i < n; i++) {
        result_init(&got[i]);
        sw_request q = greedy_request(&ps[i], max_tokens, &got[i]);
        sw_err err = {{0}};
        sw_status st = sw_engine_submit(e, &q, NULL, &err);
        if (st != SW_OK) fprintf(stderr, "submit: %s\n", err.msg);
        assert_int_equal(st, SW_OK);
    }
    for (int i = 0; i < n; i++) {
        assert_true(wait_final(&got[i], 300));
        assert_int_equal(got[i].n_final, 1);
        assert_int_equal(got[i].reason, SW_FINISH_LENGTH);
        assert_int_equal(got[i].usage.completion_tokens, max_tokens);
        assert_int_equal(got[i].usage.prompt_tokens, ps[i].n);
        assert_same_output(&ref[i], &got[i], i);
    }
    for (int i = 0; i < n; i++) result_destroy(&got[i]);
    free(got);
}

/* ---- (a) concurrency equals solo ------------------------------------------------ */

static void test_concurrent_equals_solo(void **state) {
    (void)state;
    enum { N = 8, GEN = 24 };
    prompt ps[N];
    for (int i = 0; i < N; i++) make_prompt(&ps[i], 5 + 9 * i, 100 + (uint64_t)i);
    result ref[N];
    run_solo(ps, N, GEN, ref, false);

    sw_engine_params p;
    sw_engine_params_default(&p);
    p.max_batch_tokens = 16; /* long prompts prefill over several steps, beside decodes */
    p.no_prefix_cache = true;
    sw_engine *e = make_engine(&p);
    run_concurrent_and_compare(e, ps, N, GEN, ref);
    sw_engine_stats s;
    sw_engine_stats_get(e, &s);
    assert_int_equal(s.preempted, 0);
    assert_true(s.steps > 0);
    assert_int_equal(s.total_gen_tokens, (uint64_t)N * GEN);
    uint64_t n_prompt = 0;
    for (int i = 0; i < N; i++) n_prompt += (uint64_t)ps[i].n;
    assert_int_equal(s.total_prompt_tokens, n_prompt); /* no cache, no recompute */
    assert_true(s.gen_tok_s > 0.0);
    assert_int_equal(s.requests_finished, N);
    check_idle(e);
    sw_engine_free(e);
    for (int i = 0; i < N; i++) result_destroy(&ref[i]);
}

/* A long prompt is prefilled in chunks beside a running stream, which keeps
 * getting a token every step instead of waiting for the whole prefill. */
static void test_chunked_prefill_keeps_streams(void **state) {
    (void)state;
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.max_batch_tokens = 16;
    sw_engine *e = make_engine(&p);
    prompt pa, pb;
    make_prompt(&pa, 8, 61);
    make_prompt(&pb, 400, 62);
    result a, b;
    result_init(&a);
    result_init(&b);
    uint64_t id_a;
    sw_request qa = greedy_request(&pa, 100, &a);
    assert_int_equal(sw_engine_submit(e, &qa, &id_a, NULL), SW_OK);
    /* wait until A streams */
    for (int i = 0; i < 30000; i++) {
        pthread_mutex_lock(&a.mu);
        int n = a.n_tokens;
        pthread_mutex_unlock(&a.mu);
        if (n >= 2) break;
        usleep(100);
    }
    pthread_mutex_lock(&a.mu);
    int a_before = a.n_tokens;
    pthread_mutex_unlock(&a.mu);
    assert_true(a_before >= 2);
    b.watch = &a;
    sw_request qb = greedy_request(&pb, 2, &b);
    assert_int_equal(sw_engine_submit(e, &qb, NULL, NULL), SW_OK);
    assert_true(wait_final(&b, 300));
    assert_int_equal(b.reason, SW_FINISH_LENGTH);
    /* 400 prompt tokens at <= 15 per step (A's decode takes one slot) is at
     * least 27 steps, each of which also decoded A (A stops at 100 tokens). */
    fprintf(stderr, "chunked prefill: A went from %d to %d tokens during B's prefill\n", a_before,
            b.watch_at_first);
    assert_true(b.watch_at_first - a_before >= SW_MIN(26, 100 - a_before));
    sw_engine_cancel(e, id_a);
    assert_true(wait_final(&a, 300));
    check_idle(e);
    sw_engine_free(e);
    result_destroy(&a);
    result_destroy(&b);
}

/* ---- (b) submit/cancel storm ------------------------------------------------------ */

enum { STORM_THREADS = 4, STORM_PER_THREAD = 30 };

typedef struct storm_thread {
    sw_engine *e;
    int index;
    result res[STORM_PER_THREAD];
    bool submitted[STORM_PER_THREAD];
    uint64_t ids[STORM_PER_THREAD];
    int n_busy;
    sw_status unexpected; /* cmocka asserts only work on the main thread */
    char unexpected_msg[SW_ERR_LEN];
} storm_thread;

static uint64_t g_storm_max_id;
static pthread_mutex_t g_storm_mu = PTHREAD_MUTEX_INITIALIZER;

static void *storm_main(void *arg) {
    storm_thread *t = arg;
    uint64_t rng = 0x1234567ull + (uint64_t)t->index * 977;
    for (int i = 0; i < STORM_PER_THREAD; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(rng >> 33);
        prompt p;
        make_prompt(&p, 1 + (int32_t)(r % 60), rng);
        result_init(&t->res[i]);
        sw_request q = greedy_request(&p, 1 + (int32_t)((r >> 8) % 20), &t->res[i]);
        if (r & 1) { /* sampled, not greedy: different paths through the sampler */
            q.sampling.temperature = 0.9f;
            q.sampling.seed = rng;
            q.n_top_logprobs = 3;
        }
        q.ignore_eos = (r >> 3) & 1;
        const char *stops[] = {"e", "the"};
        if ((r >> 4) % 4 == 0) {
            q.stop_strings = stops;
            q.n_stop_strings = 2;
        }
        sw_err err = {{0}};
        sw_status st = sw_engine_submit(t->e, &q, &t->ids[i], &err);
        /* A full queue is a valid answer; retry (the engine drains it) so
         * that every planned request takes part, whatever the machine's speed. */
        for (int retry = 0; st == SW_E_BUSY && retry < 6000; retry++) {
            t->n_busy++;
            usleep(5000);
            st = sw_engine_submit(t->e, &q, &t->ids[i], &err);
        }
        if (st != SW_OK) {
            t->unexpected = st;
            memcpy(t->unexpected_msg, err.msg, sizeof err.msg);
            continue;
        }
        t->submitted[i] = true;
        pthread_mutex_lock(&g_storm_mu);
        if (t->ids[i] > g_storm_max_id) g_storm_max_id = t->ids[i];
        uint64_t max_id = g_storm_max_id;
        pthread_mutex_unlock(&g_storm_mu);
        switch ((r >> 12) % 6) {
        case 0: /* cancel at once (likely still waiting) */
            sw_engine_cancel(t->e, t->ids[i]);
            break;
        case 1: /* cancel mid-flight */
            usleep((r >> 16) % 3000);
            sw_engine_cancel(t->e, t->ids[i]);
            break;
        case 2: /* cancel someone else's (maybe finished: NOT_FOUND is fine) */
            sw_engine_cancel(t->e, 1 + ((uint64_t)r % max_id));
            break;
        default:
            break;
        }
        if ((r >> 20) % 4 == 0) usleep(500);
    }
    return NULL;
}

static void test_submit_cancel_storm(void **state) {
    (void)state;
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 8;
    p.kv_n_blocks = 24; /* 192 tokens for up to 6 x 80: tight enough to preempt */
    p.n_ctx = 128;
    p.max_batch_tokens = 48;
    p.max_running = 6;
    p.max_queued = 12;
    sw_engine *e = make_engine(&p);
    g_storm_max_id = 1;
    storm_thread *ts = calloc(STORM_THREADS, sizeof *ts);
    assert_non_null(ts);
    pthread_t th[STORM_THREADS];
    for (int k = 0; k < STORM_THREADS; k++) {
        ts[k].e = e;
        ts[k].index = k;
        assert_int_equal(pthread_create(&th[k], NULL, storm_main, &ts[k]), 0);
    }
    for (int k = 0; k < STORM_THREADS; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < STORM_THREADS; k++) {
        if (ts[k].unexpected != SW_OK) fprintf(stderr, "storm submit: %s\n", ts[k].unexpected_msg);
        assert_int_equal(ts[k].unexpected, SW_OK);
    }
    int n_sub = 0, n_cancelled = 0, n_done = 0, n_busy = 0;
    for (int k = 0; k < STORM_THREADS; k++) n_busy += ts[k].n_busy;
    for (int k = 0; k < STORM_THREADS; k++)
        for (int i = 0; i < STORM_PER_THREAD; i++) {
            result *r = &ts[k].res[i];
            if (!ts[k].submitted[i]) continue;
            n_sub++;
            assert_true(wait_final(r, 300));
        }
    /* Every final event is in; give late (wrong) extra events a moment to show. */
    usleep(20000);
    for (int k = 0; k < STORM_THREADS; k++)
        for (int i = 0; i < STORM_PER_THREAD; i++) {
            result *r = &ts[k].res[i];
            if (ts[k].submitted[i]) {
                pthread_mutex_lock(&r->mu);
                assert_int_equal(r->n_final, 1);
                assert_int_equal(r->n_after_final, 0);
                assert_false(r->bad_token_event);
                assert_false(r->bad_logprob);
                assert_true(r->reason == SW_FINISH_STOP || r->reason == SW_FINISH_LENGTH ||
                            r->reason == SW_FINISH_CANCELLED);
                if (r->reason == SW_FINISH_CANCELLED) n_cancelled++;
                else n_done++;
                /* A stop token is counted but has no token event. */
                int extra = r->usage.completion_tokens - r->n_tokens;
                assert_true(extra == 0 || (extra == 1 && r->reason == SW_FINISH_STOP));
                pthread_mutex_unlock(&r->mu);
            }
            result_destroy(r);
        }
    sw_engine_stats st;
    sw_engine_stats_get(e, &st);
    fprintf(stderr, "storm: %d submitted, %d finished, %d cancelled, %d busy, %llu preemptions\n",
            n_sub, n_done, n_cancelled, n_busy, (unsigned long long)st.preempted);
    assert_int_equal(n_sub, STORM_THREADS * STORM_PER_THREAD);
    assert_true(n_cancelled > 0);
    assert_true(n_done > 0);
    check_idle(e);
    sw_engine_free(e);
    free(ts);
}

/* ---- (c) preemption ---------------------------------------------------------------- */

static void preemption_case(bool prefix_cache) {
    enum { N = 6, GEN = 40 };
    prompt ps[N];
    for (int i = 0; i < N; i++) make_prompt(&ps[i], 12 + 3 * i, 300 + (uint64_t)i);
    result ref[N];
    run_solo(ps, N, GEN, ref, false);

    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 8;
    p.kv_n_blocks = 16;  /* 128 tokens for 6 requests of up to 67 tokens each */
    p.n_ctx = 128;
    p.max_batch_tokens = 32;
    p.no_prefix_cache = !prefix_cache;
    sw_engine *e = make_engine(&p);
    run_concurrent_and_compare(e, ps, N, GEN, ref);
    sw_engine_stats s;
    sw_engine_stats_get(e, &s);
    fprintf(stderr, "preemption (prefix cache %s): %llu preemptions, %llu steps, %llu prompt tokens\n",
            prefix_cache ? "on" : "off", (unsigned long long)s.preempted,
            (unsigned long long)s.steps, (unsigned long long)s.total_prompt_tokens);
    assert_true(s.preempted > 0);
    check_idle(e);
    sw_engine_free(e);
    for (int i = 0; i < N; i++) result_destroy(&ref[i]);
}

static void test_preemption_equals_solo(void **state) {
    (void)state;
    preemption_case(false);
    preemption_case(true);
}

/* ---- (d) prefix cache ------------------------------------------------------------ */

static void test_prefix_cache(void **state) {
    (void)state;
    enum { N = 6, GEN = 16, SYS = 40 };
    prompt sys;
    make_prompt(&sys, SYS, 4242);
    prompt ps[N];
    for (int i = 0; i < N; i++) {
        prompt suffix;
        make_prompt(&suffix, 6 + i, 500 + (uint64_t)i);
        ps[i] = sys;
        /* skip the suffix's BOS */
        for (int k = g_bos >= 0 ? 1 : 0; k < suffix.n; k++) ps[i].ids[ps[i].n++] = suffix.ids[k];
    }
    result ref[N];
    run_solo(ps, N, GEN, ref, false);

    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 16;
    sw_engine *e = make_engine(&p);
    /* The first request fills the cache ... */
    run_concurrent_and_compare(e, ps, 1, GEN, ref);
    sw_engine_stats s0;
    sw_engine_stats_get(e, &s0);
    assert_int_equal(s0.prefix_hits, 0);
    assert_true(s0.kv_blocks_cached >= SYS / 16);
    /* ... the others share its system prompt blocks. */
    result *got = calloc(N, sizeof *got);
    assert_non_null(got);
    for (int i = 1; i < N; i++) {
        result_init(&got[i]);
        sw_request q = greedy_request(&ps[i], GEN, &got[i]);
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    }
    for (int i = 1; i < N; i++) {
        assert_true(wait_final(&got[i], 300));
        assert_same_output(&ref[i], &got[i], i);
        assert_int_equal(got[i].usage.cached_prompt_tokens, (SYS / 16) * 16);
        result_destroy(&got[i]);
    }
    free(got);
    sw_engine_stats s;
    sw_engine_stats_get(e, &s);
    fprintf(stderr, "prefix cache: %llu hits, %llu misses, rate %.2f\n",
            (unsigned long long)s.prefix_hits, (unsigned long long)s.prefix_misses,
            s.prefix_hit_rate);
    assert_true(s.prefix_hits >= (uint64_t)(N - 1) * (SYS / 16));
    assert_true(s.prefix_hit_rate > 0.0);
    /* cached tokens were not computed again */
    uint64_t expect_prompt = 0;
    for (int i = 0; i < N; i++) expect_prompt += (uint64_t)ps[i].n;
    expect_prompt -= (uint64_t)(N - 1) * (SYS / 16) * 16;
    assert_int_equal(s.total_prompt_tokens, expect_prompt);
    /* The same prompt again: all its full blocks but the last token's come back. */
    result again;
    result_init(&again);
    sw_request q = greedy_request(&ps[0], GEN, &again);
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&again, 300));
    assert_same_output(&ref[0], &again, 0);
    assert_int_equal(again.usage.cached_prompt_tokens, ((ps[0].n - 1) / 16) * 16);
    result_destroy(&again);
    /* A prompt that ends on a block boundary, again: its cached last block is
     * copied and only the last token computed (one prompt token), twice, the
     * output unchanged; the copies stay private (the cache keeps one block per
     * prefix) and are freed. */
    prompt whole;
    make_prompt(&whole, 48, 777);
    assert_int_equal(whole.n % 16, 0);
    result wref;
    run_solo(&whole, 1, GEN, &wref, false);
    for (int k = 0; k < 3; k++) {
        sw_engine_stats before, after;
        sw_engine_stats_get(e, &before);
        result_init(&again);
        q = greedy_request(&whole, GEN, &again);
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&again, 300));
        assert_same_output(&wref, &again, 0);
        sw_engine_stats_get(e, &after);
        assert_int_equal(again.usage.cached_prompt_tokens, k == 0 ? 0 : whole.n - 1);
        assert_int_equal(after.total_prompt_tokens - before.total_prompt_tokens,
                         k == 0 ? whole.n : 1);
        result_destroy(&again);
    }
    result_destroy(&wref);
    check_idle(e);
    sw_engine_free(e);
    for (int i = 0; i < N; i++) result_destroy(&ref[i]);
}

/* A burst of one prompt, submitted at once (from the first token callback of
 * another request, so that all of it waits when the scheduler plans its next
 * step): the first computes the prompt, the others wait that step for its
 * blocks and then compute only their last token -- one prefill for the
 * burst, not one each -- with outputs unchanged. */
typedef struct burst {
    result r; /* the trigger request's own */
    sw_engine *e;
    const prompt *p;
    result *out;
    int n;
    bool fired;
} burst;

static void on_event_burst(void *user, const sw_event *ev) {
    burst *b = user;
    on_event(&b->r, ev);
    if (ev->type != SW_EVENT_TOKEN || b->fired) return;
    b->fired = true;
    for (int i = 0; i < b->n; i++) {
        sw_request q = greedy_request(b->p, 8, &b->out[i]);
        if (sw_engine_submit(b->e, &q, NULL, NULL) != SW_OK) b->out[i].n_final = -1;
    }
}

static void test_burst_shares_prefix(void **state) {
    (void)state;
    enum { N = 6 };
    prompt trig, same;
    make_prompt(&trig, 20, 31337);
    make_prompt(&same, 48, 4711);
    result ref;
    run_solo(&same, 1, 8, &ref, false);
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 16;
    sw_engine *e = make_engine(&p);
    result out[N];
    for (int i = 0; i < N; i++) result_init(&out[i]);
    burst b = {.e = e, .p = &same, .out = out, .n = N};
    result_init(&b.r);
    sw_engine_stats before, after;
    sw_engine_stats_get(e, &before);
    sw_request q = greedy_request(&trig, 4, &b.r);
    q.on_event = on_event_burst;
    q.user = &b;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&b.r, 300));
    for (int i = 0; i < N; i++) {
        assert_true(wait_final(&out[i], 300));
        assert_same_output(&ref, &out[i], i);
        assert_int_equal(out[i].usage.cached_prompt_tokens, i == 0 ? 0 : same.n - 1);
    }
    sw_engine_stats_get(e, &after);
    assert_int_equal(after.total_prompt_tokens - before.total_prompt_tokens,
                     trig.n + same.n + (N - 1));
    for (int i = 0; i < N; i++) result_destroy(&out[i]);
    result_destroy(&b.r);
    result_destroy(&ref);
    check_idle(e);
    sw_engine_free(e);
}

/* ---- (e) stop strings ------------------------------------------------------------- */

static bool utf8_boundary(const char *t, size_t i) {
    return ((unsigned char)t[i] & 0xC0) != 0x80;
}

static void run_with_stops(sw_engine *e, const prompt *p, int32_t gen, const char **stops, int n,
                           result *r) {
    result_init(r);
    sw_request q = greedy_request(p, gen, r);
    q.stop_strings = stops;
    q.n_stop_strings = n;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(r, 300));
}

static void test_stop_strings(void **state) {
    (void)state;
    enum { GEN = 48 };
    sw_engine *e = make_engine(NULL);
    prompt p;
    make_prompt(&p, 8, 777);
    result full;
    run_with_stops(e, &p, GEN, NULL, 0, &full);
    assert_int_equal(full.reason, SW_FINISH_LENGTH);
    fprintf(stderr, "stop test text: \"%s\"\n", full.text);
    assert_true(full.len >= 16); /* the model must produce text to test with */
    /* A token boundary near the middle with some text on both sides. */
    int j = full.n_tokens / 2;
    while (j < full.n_tokens - 2 &&
           (full.cum[j] < 4 || full.cum[j] + 4 > full.len || !utf8_boundary(full.text, full.cum[j] - 2) ||
            !utf8_boundary(full.text, full.cum[j] - 3) || !utf8_boundary(full.text, full.cum[j] + 3) ||
            full.cum[j + 1] == full.cum[j]))
        j++;
    assert_true(j < full.n_tokens - 2);
    size_t cut = full.cum[j];

    /* 1. A stop string spanning tokens j and j+1: output ends right before its
     *    first occurrence, and nothing of it is ever emitted. */
    char stop1[16];
    snprintf(stop1, sizeof stop1, "%.*s", 5, full.text + cut - 2);
    const char *stops1[] = {stop1};
    result r1;
    run_with_stops(e, &p, GEN, stops1, 1, &r1);
    size_t first = (size_t)(strstr(full.text, stop1) - full.text);
    assert_int_equal(r1.reason, SW_FINISH_STOP);
    assert_string_equal(r1.message, stop1);
    assert_int_equal(r1.len, first);
    assert_memory_equal(r1.text, full.text, first);
    assert_null(strstr(r1.text, stop1));
    assert_int_equal(r1.n_final, 1);
    /* generation stops at the token that completes the stop string, and the
     * tokens up to it are the unconstrained run's */
    int k_end = 0;
    while (full.cum[k_end] < first + strlen(stop1)) k_end++;
    assert_int_equal(r1.n_tokens, k_end + 1);
    assert_memory_equal(r1.tokens, full.tokens, sizeof(int32_t) * (size_t)r1.n_tokens);

    /* 2. A stop string whose first 3 bytes end exactly at token j but which
     *    never completes: those 3 bytes are held back at token j, released
     *    later, and the whole text arrives. */
    char stop2[16];
    snprintf(stop2, sizeof stop2, "%.*s\x01", 3, full.text + cut - 3);
    const char *stops2[] = {stop2};
    result r2;
    run_with_stops(e, &p, GEN, stops2, 1, &r2);
    assert_int_equal(r2.reason, SW_FINISH_LENGTH);
    assert_string_equal(r2.text, full.text);
    assert_int_equal(r2.cum[j], cut - 3);
    for (int k = 0; k < r2.n_tokens; k++) assert_true(r2.cum[k] <= full.cum[k]);

    /* 3. Held back at the very end: released in the final event. */
    char stop3[32];
    size_t tail = full.len - 2;
    while (tail > 0 && !utf8_boundary(full.text, tail)) tail--;
    snprintf(stop3, sizeof stop3, "%.8s\x01", full.text + tail);
    const char *stops3[] = {stop3};
    result r3;
    run_with_stops(e, &p, GEN, stops3, 1, &r3);
    assert_int_equal(r3.reason, SW_FINISH_LENGTH);
    assert_string_equal(r3.text, full.text);
    assert_string_equal(r3.final_text, full.text + tail);

    result_destroy(&full);
    result_destroy(&r1);
    result_destroy(&r2);
    result_destroy(&r3);
    check_idle(e);
    sw_engine_free(e);
}

/* The default KV cache holds max_running full-length sequences, so that many
 * requests run at once without preempting each other (it used to hold 4, and
 * 64 concurrent clients then spent most of their time preempted). */
static void test_default_kv_holds_max_running(void **state) {
    (void)state;
    const int32_t ctx = 72, bs = 16; /* 72 tokens -> 5 blocks of 16 */
    int32_t running[] = {1, 3, 24};
    for (size_t i = 0; i < sizeof running / sizeof *running; i++) {
        sw_engine_params p;
        sw_engine_params_default(&p);
        p.n_ctx = ctx;
        p.kv_block_size = bs;
        p.max_running = running[i];
        sw_engine *e = make_engine(&p);
        sw_engine_stats st;
        sw_engine_stats_get(e, &st);
        assert_int_equal(st.kv_block_size, bs);
        assert_int_equal(st.kv_blocks_total, running[i] * ((ctx + bs - 1) / bs));
        sw_engine_free(e);
    }
}

/* ---- (f) limits, errors, cancel ---------------------------------------------------- */

/* ---- JSON mode ------------------------------------------------------------------ */

/* The id whose piece is exactly s, or -1. */
static int32_t piece_id(const char *s) {
    const sw_tokenizer *t = sw_model_tokenizer(g_m);
    for (int32_t i = 0; t && i < g_vocab; i++) {
        size_t n;
        const char *p = sw_token_piece(t, i, &n);
        if (p && n == strlen(s) && !memcmp(p, s, n)) return i;
    }
    return -1;
}

static void test_json_mode(void **state) {
    (void)state;
    const sw_tokenizer *t = sw_model_tokenizer(g_m);
    if (!t) {
        printf("json mode: this model has no tokenizer\n");
        return;
    }
    sw_engine_params p;
    sw_engine_params_default(&p);
    sw_engine *e = make_engine(&p);
    /* whether the vocabulary can start a JSON object at all */
    sw_json_state js0;
    sw_json_init(&js0);
    bool can_open = false;
    for (int32_t i = 0; i < g_vocab && !can_open; i++) {
        size_t n;
        const char *pc = sw_token_piece(t, i, &n);
        sw_json_state c = js0;
        can_open = n > 0 && sw_json_feed(&c, pc, n);
    }
    /* greedy and sampled runs, some concurrent: every output is a prefix of a
     * JSON object, and a stop means the object is complete */
    enum { N = 4 };
    prompt pr[N];
    result r[N];
    for (int i = 0; i < N; i++) {
        make_prompt(&pr[i], 6 + 3 * i, 40 + (uint64_t)i);
        result_init(&r[i]);
        sw_request q = greedy_request(&pr[i], 40, &r[i]);
        q.json_object = true;
        q.ignore_eos = false;
        if (i % 2) {
            q.sampling.temperature = 1.0f;
            q.sampling.seed = 7 + (uint64_t)i;
        }
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    }
    for (int i = 0; i < N; i++) {
        assert_true(wait_final(&r[i], 300));
        if (!can_open) { /* a vocabulary without '{' (and whitespace before it) */
            assert_int_equal(r[i].reason, SW_FINISH_ERROR);
            assert_non_null(strstr(r[i].message, "JSON mode"));
            continue;
        }
        if (r[i].reason != SW_FINISH_STOP && r[i].reason != SW_FINISH_LENGTH)
            fail_msg("json run %d: reason %d (%s)", i, r[i].reason, r[i].message);
        sw_json_state js = js0;
        if (!sw_json_feed(&js, r[i].text, r[i].len))
            fail_msg("json run %d: output is not a JSON prefix: '%s'", i, r[i].text);
        assert_int_equal(sw_json_done(&js), r[i].reason == SW_FINISH_STOP);
        assert_true(r[i].n_tokens >= 1);
        result_destroy(&r[i]);
    }
    /* greedy tries the unmasked choice first and masks only when it does not
     * fit; temperature 1 with top_k 1 always masks and takes the best valid
     * token: the two must agree token for token */
    for (int i = 0; can_open && i < 2; i++) {
        result a, b;
        result_init(&a);
        result_init(&b);
        sw_request qa = greedy_request(&pr[i], 40, &a), qb = greedy_request(&pr[i], 40, &b);
        qa.json_object = qb.json_object = true;
        qa.ignore_eos = qb.ignore_eos = false;
        qb.sampling.temperature = 1.0f;
        qb.sampling.top_k = 1;
        assert_int_equal(sw_engine_submit(e, &qa, NULL, NULL), SW_OK);
        assert_int_equal(sw_engine_submit(e, &qb, NULL, NULL), SW_OK);
        assert_true(wait_final(&a, 300));
        assert_true(wait_final(&b, 300));
        assert_int_equal(a.n_tokens, b.n_tokens);
        assert_memory_equal(a.tokens, b.tokens, (size_t)a.n_tokens * sizeof a.tokens[0]);
        assert_int_equal(a.reason, b.reason);
        result_destroy(&a);
        result_destroy(&b);
    }
    /* forcing the close: with '}' boosted, the object closes at the first
     * chance and the request stops right there (no end-of-generation token
     * is needed) */
    int32_t open = piece_id("{"), close = piece_id("}");
    if (open >= 0 && close >= 0) {
        sw_logit_bias b[2] = {{close, 100.0f}, {open, 50.0f}};
        result rf;
        result_init(&rf);
        sw_request q = greedy_request(&pr[0], 40, &rf);
        q.json_object = true;
        q.ignore_eos = true; /* the JSON end finishes the request regardless */
        q.sampling.logit_bias = b;
        q.sampling.n_logit_bias = 2;
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&rf, 300));
        assert_int_equal(rf.reason, SW_FINISH_STOP);
        assert_string_equal(rf.text, "{}");
        assert_int_equal(rf.n_tokens, 2);
        assert_int_equal(rf.tokens[0], open);
        assert_int_equal(rf.tokens[1], close);
        result_destroy(&rf);
    } else {
        printf("json mode: no '{' and '}' pieces in this vocabulary; forced close not run\n");
    }
    check_idle(e);
    sw_engine_free(e);
}

static void test_limits_and_errors(void **state) {
    (void)state;
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.n_ctx = 64;
    p.max_running = 1;
    p.max_queued = 3;
    sw_engine *e = make_engine(&p);
    assert_int_equal(sw_engine_n_ctx(e), 64);
    prompt pr;
    make_prompt(&pr, 10, 1);

    /* max_tokens -> length, exactly that many tokens; every token event
     * carries its logprob, entropy and the requested alternatives */
    result r;
    result_init(&r);
    sw_request q = greedy_request(&pr, 7, &r);
    q.n_top_logprobs = 5;
    double t_before = sw_time_s();
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r, 300));
    assert_int_equal(r.reason, SW_FINISH_LENGTH);
    assert_int_equal(r.n_tokens, 7);
    assert_int_equal(r.usage.completion_tokens, 7);
    assert_int_equal(r.usage.prompt_tokens, 10);
    assert_int_equal(r.usage.cached_prompt_tokens, 0);
    assert_false(r.bad_logprob);
    assert_false(r.top1_not_chosen); /* greedy takes the most likely token */
    assert_int_equal(r.min_n_top, 5);
    assert_int_equal(r.max_n_top, 5);
    assert_true(t_before <= r.t_queued && r.t_queued <= r.t_first && r.t_first <= r.t_finished);
    assert_true(r.t_finished <= sw_time_s());
    result_destroy(&r);

    /* max_tokens <= 0: until the context is full */
    result_init(&r);
    q = greedy_request(&pr, 0, &r);
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r, 300));
    assert_int_equal(r.reason, SW_FINISH_LENGTH);
    assert_int_equal(r.usage.completion_tokens, 64 - 10);
    result_destroy(&r);

    /* context rules */
    sw_err err = {{0}};
    prompt longp;
    make_prompt(&longp, 64, 2);
    result dummy;
    result_init(&dummy);
    q = greedy_request(&longp, 1, &dummy);
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "64"));
    q = greedy_request(&pr, 55, &dummy);
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "max_tokens"));
    q = greedy_request(&pr, 54, &dummy); /* exactly fits */
    uint64_t fit_id = 0;
    assert_int_equal(sw_engine_submit(e, &q, &fit_id, &err), SW_OK);
    assert_true(fit_id > 0);
    assert_true(wait_final(&dummy, 300));
    assert_int_equal(dummy.reason, SW_FINISH_LENGTH);
    result_destroy(&dummy);
    result_init(&dummy);
    q = greedy_request(&pr, 5, &dummy);
    q.n_prompt = 0;
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
    q = greedy_request(&pr, 5, &dummy);
    int32_t bad[2] = {0, g_vocab};
    q.prompt = bad;
    q.n_prompt = 2;
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
    q = greedy_request(&pr, 5, &dummy);
    q.on_event = NULL;
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
    q = greedy_request(&pr, 5, &dummy);
    q.n_top_logprobs = SW_MAX_TOP_LOGPROBS + 1;
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
    result_destroy(&dummy);

    /* queue full: one runs (max_running 1), three wait, the next is refused */
    enum { NQ = 8 };
    result qr[NQ];
    uint64_t ids[NQ];
    int n_ok = 0, n_busy = 0;
    for (int i = 0; i < NQ; i++) {
        result_init(&qr[i]);
        q = greedy_request(&pr, 50, &qr[i]);
        sw_status st = sw_engine_submit(e, &q, &ids[i], &err);
        if (st == SW_OK) n_ok++;
        else {
            assert_int_equal(st, SW_E_BUSY);
            assert_int_equal(ids[i], 0);
            n_busy++;
        }
    }
    assert_true(n_busy > 0);
    assert_true(n_ok >= 3);
    sw_engine_stats s;
    sw_engine_stats_get(e, &s);
    assert_true(s.waiting <= 3);
    assert_int_equal(s.max_queued, 3);
    assert_int_equal(s.max_running, 1);
    assert_int_equal(s.n_ctx, 64);
    /* cancel everything: each gets one final event, reason cancelled unless it
     * already finished; a second cancel is NOT_FOUND */
    for (int i = 0; i < NQ; i++) {
        if (ids[i] == 0) continue;
        sw_status st = sw_engine_cancel(e, ids[i]);
        assert_true(st == SW_OK || st == SW_E_NOT_FOUND);
        assert_true(wait_final(&qr[i], 300));
        if (st == SW_OK) assert_int_equal(qr[i].reason, SW_FINISH_CANCELLED);
        assert_int_equal(sw_engine_cancel(e, ids[i]), SW_E_NOT_FOUND);
    }
    for (int i = 0; i < NQ; i++) {
        if (ids[i]) assert_int_equal(qr[i].n_final, 1);
        result_destroy(&qr[i]);
    }
    assert_int_equal(sw_engine_cancel(e, 999999), SW_E_NOT_FOUND);
    check_idle(e);
    sw_engine_free(e);
}

/* Freeing an engine with requests running and queued cancels them all, each
 * with one final event delivered before sw_engine_free returns. */
static void test_free_with_work_in_flight(void **state) {
    (void)state;
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.max_running = 2;
    sw_engine *e = make_engine(&p);
    enum { N = 6 };
    result r[N];
    prompt pr;
    make_prompt(&pr, 20, 9);
    for (int i = 0; i < N; i++) {
        result_init(&r[i]);
        sw_request q = greedy_request(&pr, 200, &r[i]);
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    }
    usleep(2000);
    sw_engine_free(e);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].n_final, 1);
        assert_true(r[i].reason == SW_FINISH_CANCELLED || r[i].reason == SW_FINISH_LENGTH);
        result_destroy(&r[i]);
    }
}

/* Seeded sampling survives preemption too: the sampler state travels with the
 * sequence, so a preempted run draws the same tokens as an undisturbed one. */
static void test_seeded_sampling_through_preemption(void **state) {
    (void)state;
    enum { N = 4, GEN = 40 };
    prompt ps[N];
    for (int i = 0; i < N; i++) make_prompt(&ps[i], 20 + i, 900 + (uint64_t)i);
    result ref[N], got[N];
    sw_engine *solo = make_engine(NULL);
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 8;
    p.kv_n_blocks = 12;
    p.n_ctx = 96;
    p.max_batch_tokens = 24;
    sw_engine *tight = make_engine(&p);
    for (int i = 0; i < N; i++) {
        result_init(&ref[i]);
        sw_request q = greedy_request(&ps[i], GEN, &ref[i]);
        q.sampling.temperature = 1.0f;
        q.sampling.top_k = 0;
        q.sampling.top_p = 1.0f;
        q.sampling.min_p = 0.0f;
        q.sampling.seed = 1000 + (uint64_t)i;
        assert_int_equal(sw_engine_submit(solo, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&ref[i], 300));
    }
    for (int i = 0; i < N; i++) {
        result_init(&got[i]);
        sw_request q = greedy_request(&ps[i], GEN, &got[i]);
        q.sampling.temperature = 1.0f;
        q.sampling.top_k = 0;
        q.sampling.top_p = 1.0f;
        q.sampling.min_p = 0.0f;
        q.sampling.seed = 1000 + (uint64_t)i;
        assert_int_equal(sw_engine_submit(tight, &q, NULL, NULL), SW_OK);
    }
    for (int i = 0; i < N; i++) {
        assert_true(wait_final(&got[i], 300));
        assert_same_output(&ref[i], &got[i], i);
    }
    sw_engine_stats s;
    sw_engine_stats_get(tight, &s);
    assert_true(s.preempted > 0);
    check_idle(tight);
    sw_engine_free(tight);
    sw_engine_free(solo);
    for (int i = 0; i < N; i++) {
        result_destroy(&ref[i]);
        result_destroy(&got[i]);
    }
}

/* Sampling from the device summary of the logits (the default) gives the very
 * token events (ids, logprobs, entropies, top logprobs, bit for bit) that
 * sampling from whole rows gives, with several requests sharing each step; and
 * the summary does decide the draws it can. */
static void test_summary_sampling_equals_full(void **state) {
    (void)state;
    enum { N = 4, GEN = 24 };
    prompt ps[N];
    for (int i = 0; i < N; i++) make_prompt(&ps[i], 6 + 3 * i, 700 + (uint64_t)i);
    result r[2][N];
    sw_engine_stats st[2];
    for (int full = 0; full < 2; full++) {
        sw_engine_params p;
        sw_engine_params_default(&p);
        p.full_logits = full;
        sw_engine *e = make_engine(&p);
        for (int i = 0; i < N; i++) {
            result_init(&r[full][i]);
            sw_request q = greedy_request(&ps[i], GEN, &r[full][i]);
            q.n_top_logprobs = 3;
            q.sampling.seed = 50 + (uint64_t)i;
            if (i == 1) q.sampling.temperature = 0.8f; /* defaults: top_k 40, top_p, min_p */
            if (i == 2) {
                q.sampling.temperature = 1.0f;
                q.sampling.top_k = 0;
                q.sampling.min_p = 0.0f;
                q.sampling.top_p = 0.9f;
            }
            if (i == 3) {
                q.sampling.temperature = 0.7f;
                q.sampling.top_k = 8;
                q.sampling.repeat_penalty = 1.2f;
                q.sampling.repeat_last_n = 16;
                q.sampling.presence_penalty = 0.3f;
            }
            assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        }
        for (int i = 0; i < N; i++) assert_true(wait_final(&r[full][i], 300));
        sw_engine_stats_get(e, &st[full]);
        check_idle(e);
        sw_engine_free(e);
    }
    for (int i = 0; i < N; i++) {
        assert_same_output(&r[1][i], &r[0][i], i);
        if (r[0][i].info_hash != r[1][i].info_hash)
            fail_msg("request %d: token events differ between summary and full-row sampling", i);
        result_destroy(&r[0][i]);
        result_destroy(&r[1][i]);
    }
    assert_int_equal(st[1].sampled_from_summary, 0);
    assert_int_equal(st[1].sampled_from_full, N * GEN);
    assert_int_equal(st[0].sampled_from_summary + st[0].sampled_from_full, N * GEN);
    assert_true(st[0].sampled_from_summary >= (uint64_t)(N - 1) * GEN);
}

/* ---- block manager ---------------------------------------------------------------- */

/* ---- (g) hidden states of the prompt ---------------------------------------------- */

/* The reference: the prompt alone through sw_model_forward on a fresh cache,
 * in one step, every token's hidden state; last row and mean (double sums).
 * Runs only while no engine exists (the model's forward scratch is shared). */
/* The direct forward's last-position state and mean over positions [b, e). */
static void ref_hidden_span(const prompt *p, int32_t b0, int32_t e0, float *last, float *mean);
static void ref_hidden(const prompt *p, float *last, float *mean) {
    ref_hidden_span(p, 0, p->n, last, mean);
}

static void ref_hidden_span(const prompt *p, int32_t b0, int32_t e0, float *last, float *mean) {
    int32_t E = (int32_t)sw_model_config_get(g_m)->n_embd;
    sw_err err = {{0}};
    sw_kv_cache *kv = NULL;
    sw_kv_params kp = {.block_size = 16, .n_blocks = (p->n + 15) / 16, .type = SW_TYPE_F16};
    assert_int_equal(sw_kv_cache_create(g_m, &kp, &kv, &err), SW_OK);
    int32_t blocks[32], pos[512], ss[2] = {0, p->n};
    for (int32_t i = 0; i < kp.n_blocks; i++) blocks[i] = sw_kv_alloc_block(kv);
    for (int32_t i = 0; i < p->n; i++) pos[i] = i;
    const int32_t *tables[1] = {blocks};
    float *logits = malloc((size_t)g_vocab * sizeof *logits);
    float *h = malloc((size_t)p->n * (size_t)E * sizeof *h);
    assert_true(logits && h);
    sw_batch b = {.n_tokens = p->n, .tokens = p->ids, .pos = pos, .n_seqs = 1, .seq_start = ss,
                  .block_tables = tables, .n_blocks = &kp.n_blocks, .hidden = h};
    if (sw_model_forward(g_m, kv, &b, logits, &err) != SW_OK) fail_msg("forward: %s", err.msg);
    for (int32_t i = 0; i < E; i++) {
        double acc = 0;
        for (int32_t t = b0; t < e0; t++) acc += h[(size_t)t * E + i];
        mean[i] = (float)(acc / (e0 - b0));
        last[i] = h[(size_t)(p->n - 1) * E + i];
    }
    free(logits);
    free(h);
    sw_kv_cache_free(kv);
}

/* max |got - want| / max |want| must be tiny: batching and chunking change
 * which kernels run, not the math. On the CPU the per-token results do not
 * depend on the batch; GPU matmuls tile by batch size, which reorders float
 * sums (~1e-4 seen on lavapipe). */
static void assert_close_vec(const float *got, const float *want, const char *what, int i) {
    int32_t E = (int32_t)sw_model_config_get(g_m)->n_embd;
    assert_non_null(got);
    double mx = 0, d = 0;
    for (int32_t k = 0; k < E; k++) {
        mx = fmax(mx, fabs(want[k]));
        d = fmax(d, fabs((double)got[k] - want[k]));
    }
    double tol = strcmp(g_backend, "cpu") ? 1e-3 : 1e-4;
    if (!(mx > 0 && d / mx <= tol)) fail_msg("request %d: %s differs by %g (of %g)", i, what, d, mx);
}

typedef struct hid_ref {
    float last[1024], mean[1024];
} hid_ref;

static void hidden_case(const prompt *ps, int n, const hid_ref *want, const result *solo,
                        const sw_engine_params *p, int32_t gen, bool expect_preempt) {
    sw_engine *e = make_engine(p);
    result *got = calloc((size_t)n, sizeof *got);
    assert_non_null(got);
    for (int i = 0; i < n; i++) {
        result_init(&got[i]);
        sw_request q = greedy_request(&ps[i], gen, &got[i]);
        q.hidden = i % 3 == 1 ? SW_HIDDEN_MEAN : SW_HIDDEN_LAST | SW_HIDDEN_MEAN;
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    }
    for (int i = 0; i < n; i++) {
        assert_true(wait_final(&got[i], 300));
        assert_int_equal(got[i].n_hidden, 1);
        assert_int_equal(got[i].tokens_before_hidden, 0);
        assert_false(got[i].bad_token_event);
        assert_same_output(&solo[i], &got[i], i);
        assert_close_vec(got[i].h_mean, want[i].mean, "mean", i);
        if (i % 3 == 1) assert_null(got[i].h_last);
        else assert_close_vec(got[i].h_last, want[i].last, "last", i);
    }
    sw_engine_stats s;
    sw_engine_stats_get(e, &s);
    fprintf(stderr, "hidden states: %llu steps, %llu preemptions\n", (unsigned long long)s.steps,
            (unsigned long long)s.preempted);
    if (expect_preempt) assert_true(s.preempted > 0);
    check_idle(e);
    sw_engine_free(e);
    for (int i = 0; i < n; i++) result_destroy(&got[i]);
    free(got);
}

static void test_hidden_states(void **state) {
    (void)state;
    enum { N = 6, GEN = 20 };
    if (sw_model_config_get(g_m)->n_embd > 1024) skip();
    prompt ps[N];
    hid_ref *want = calloc(N, sizeof *want);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        make_prompt(&ps[i], 3 + 11 * i, 700 + (uint64_t)i);
        ref_hidden(&ps[i], want[i].last, want[i].mean);
    }
    result solo[N];
    run_solo(ps, N, GEN, solo, false);
    /* batched, prefill in chunks of up to 24 tokens mixed with decodes */
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 8;
    p.max_batch_tokens = 24;
    hidden_case(ps, N, want, solo, &p, GEN, false);
    /* a cache too small for all: preemption and recompute, prefix cache on */
    p.kv_n_blocks = 12;
    p.n_ctx = 96;
    hidden_case(ps, N, want, solo, &p, GEN, true);
    for (int i = 0; i < N; i++) result_destroy(&solo[i]);
    free(want);
}

static void test_hidden_prefix_cache_and_no_generate(void **state) {
    (void)state;
    enum { SYS = 48 };
    if (sw_model_config_get(g_m)->n_embd > 1024) skip();
    prompt sys, ps[3];
    make_prompt(&sys, SYS, 4343);
    for (int i = 0; i < 3; i++) {
        prompt suffix;
        make_prompt(&suffix, 5 + i, 800 + (uint64_t)i);
        ps[i] = sys;
        for (int k = g_bos >= 0 ? 1 : 0; k < suffix.n; k++) ps[i].ids[ps[i].n++] = suffix.ids[k];
    }
    hid_ref *want = calloc(3, sizeof *want);
    assert_non_null(want);
    for (int i = 0; i < 3; i++) ref_hidden(&ps[i], want[i].last, want[i].mean);

    sw_engine_params p;
    sw_engine_params_default(&p);
    p.kv_block_size = 16;
    sw_engine *e = make_engine(&p);
    result r[4];
    for (int i = 0; i < 4; i++) result_init(&r[i]);
    /* ps[0] fills the prefix cache */
    sw_request q = greedy_request(&ps[0], 4, &r[0]);
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r[0], 300));
    assert_int_equal(r[0].n_hidden, 0); /* not asked */
    /* the last-token state reuses the cached blocks and is still exact */
    q = greedy_request(&ps[1], 4, &r[1]);
    q.hidden = SW_HIDDEN_LAST;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r[1], 300));
    assert_int_equal(r[1].usage.cached_prompt_tokens, (SYS / 16) * 16);
    assert_close_vec(r[1].h_last, want[1].last, "last (prefix cache)", 1);
    assert_null(r[1].h_mean);
    /* the mean computes every position, and with no_generate no token comes */
    q = greedy_request(&ps[2], 4, &r[2]);
    q.hidden = SW_HIDDEN_MEAN | SW_HIDDEN_LAST;
    q.no_generate = true;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r[2], 300));
    assert_int_equal(r[2].usage.cached_prompt_tokens, 0);
    assert_int_equal(r[2].n_hidden, 1);
    assert_int_equal(r[2].n_tokens, 0);
    assert_int_equal(r[2].len, 0);
    assert_int_equal(r[2].reason, SW_FINISH_LENGTH);
    assert_int_equal(r[2].usage.completion_tokens, 0);
    assert_int_equal(r[2].usage.prompt_tokens, ps[2].n);
    assert_close_vec(r[2].h_mean, want[2].mean, "mean (prefix cache on)", 2);
    assert_close_vec(r[2].h_last, want[2].last, "last", 2);
    /* one whole cached block as the prompt: the last-block copy skips all but
     * its last token, so the mean takes the block's sum (recorded by ps[2]'s
     * prefill, the first mean request) and stays exact */
    prompt one = sys;
    one.n = 16;
    hid_ref *w1 = calloc(1, sizeof *w1);
    assert_non_null(w1);
    ref_hidden(&one, w1->last, w1->mean);
    result r1;
    result_init(&r1);
    q = greedy_request(&one, 4, &r1);
    q.hidden = SW_HIDDEN_MEAN;
    q.no_generate = true;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r1, 300));
    assert_int_equal(r1.usage.cached_prompt_tokens, 15);
    assert_close_vec(r1.h_mean, w1->mean, "mean of one cached block", 2);
    result_destroy(&r1);
    free(w1);
    /* from the first mean request on, prefills record their prompt blocks'
     * hidden-state sums: a mean request takes cached blocks after all and
     * stays exact -- blocks summed by a mean request (ps[1] after ps[2]) */
    {
        result m[5];
        for (int i = 0; i < 5; i++) result_init(&m[i]);
        q = greedy_request(&ps[1], 4, &m[0]);
        q.hidden = SW_HIDDEN_MEAN | SW_HIDDEN_LAST;
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&m[0], 300));
        assert_int_equal(m[0].usage.cached_prompt_tokens, (SYS / 16) * 16);
        assert_close_vec(m[0].h_mean, want[1].mean, "mean (cached block sums)", 1);
        assert_close_vec(m[0].h_last, want[1].last, "last (cached block sums)", 1);
        assert_same_output(&r[1], &m[0], 1);
        /* ... by a request that asked for no hidden states */
        prompt other;
        hid_ref *w2 = calloc(1, sizeof *w2);
        assert_non_null(w2);
        make_prompt(&other, 41, 4545);
        ref_hidden(&other, w2->last, w2->mean);
        q = greedy_request(&other, 2, &m[1]);
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&m[1], 300));
        q = greedy_request(&other, 2, &m[2]);
        q.hidden = SW_HIDDEN_MEAN;
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
        assert_true(wait_final(&m[2], 300));
        assert_int_equal(m[2].usage.cached_prompt_tokens, 32);
        assert_close_vec(m[2].h_mean, w2->mean, "mean (sums of a no-hidden request)", 2);
        /* a prompt that ends on a block boundary: its last block's K/V is
         * copied and only the last token computed, its positions summed once */
        make_prompt(&other, 32, 4646);
        ref_hidden(&other, w2->last, w2->mean);
        for (int k = 3; k < 5; k++) {
            q = greedy_request(&other, 2, &m[k]);
            q.hidden = SW_HIDDEN_MEAN | SW_HIDDEN_LAST;
            assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
            assert_true(wait_final(&m[k], 300));
            assert_int_equal(m[k].usage.cached_prompt_tokens, k == 3 ? 0 : 31);
            assert_close_vec(m[k].h_mean, w2->mean, "mean (last block copied)", k);
            assert_close_vec(m[k].h_last, w2->last, "last (last block copied)", k);
        }
        free(w2);
        for (int i = 0; i < 5; i++) result_destroy(&m[i]);
    }
    /* no_generate without hidden states: just the final event */
    q = greedy_request(&ps[0], 0, &r[3]);
    q.no_generate = true;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(&r[3], 300));
    assert_int_equal(r[3].n_hidden + r[3].n_tokens, 0);
    assert_int_equal(r[3].n_final, 1);
    /* unknown flags */
    q.hidden = 4;
    sw_err err = {{0}};
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "hidden"));
    check_idle(e);
    sw_engine_free(e);
    for (int i = 0; i < 4; i++) result_destroy(&r[i]);
    free(want);
}

/* SW_HIDDEN_MEAN over a span [hidden_begin, hidden_end) (the router's query
 * mean) equals the mean of the direct forward's per-position states over that
 * span: computed whole, with cached prefix blocks outside the span taken
 * without their states, with a span starting mid-block (that block is
 * computed), with a whole cached block's recorded sum inside the span, and
 * with the prefix cache off. */
static void span_request(sw_engine *e, const prompt *p, int32_t b0, int32_t e0, result *r) {
    result_init(r);
    sw_request q = greedy_request(p, 2, r);
    q.hidden = SW_HIDDEN_MEAN | SW_HIDDEN_LAST;
    q.hidden_begin = b0;
    q.hidden_end = e0;
    assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
    assert_true(wait_final(r, 300));
    assert_int_equal(r->n_hidden, 1);
}

static void test_hidden_span(void **state) {
    (void)state;
    enum { SYS = 48, NP = 4 };
    if (sw_model_config_get(g_m)->n_embd > 1024) skip();
    prompt sys, ps[NP];
    make_prompt(&sys, SYS, 5151);
    for (int i = 0; i < NP; i++) {
        prompt suffix;
        make_prompt(&suffix, 14 + i, 900 + (uint64_t)i);
        ps[i] = sys;
        for (int k = g_bos >= 0 ? 1 : 0; k < suffix.n; k++) ps[i].ids[ps[i].n++] = suffix.ids[k];
        if (ps[i].n % 16 == 0) ps[i].ids[ps[i].n++] = 5; /* no last-block copy here */
    }
    /* spans: in the suffix (after 3 whole blocks), from mid-block 2 to
     * before the last token, and exactly block 1 */
    const int32_t spans[NP][2] = {{SYS + 1, ps[0].n}, {SYS + 2, ps[1].n - 1}, {40, ps[2].n - 2},
                                  {16, 32}};
    hid_ref *want = calloc(NP, sizeof *want);
    assert_non_null(want);
    for (int i = 0; i < NP; i++) ref_hidden_span(&ps[i], spans[i][0], spans[i][1], want[i].last, want[i].mean);
    for (int cache = 0; cache < 2; cache++) {
        sw_engine_params p;
        sw_engine_params_default(&p);
        p.kv_block_size = 16;
        p.no_prefix_cache = !cache;
        sw_engine *e = make_engine(&p);
        result r[NP + 1], warm;
        /* ps[0] cold */
        span_request(e, &ps[0], spans[0][0], spans[0][1], &r[0]);
        assert_int_equal(r[0].usage.cached_prompt_tokens, 0);
        for (int i = 1; i < NP; i++) {
            /* ps[i]'s whole prompt cached first by a request without hidden states */
            result_init(&warm);
            sw_request q = greedy_request(&ps[i], 1, &warm);
            assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_OK);
            assert_true(wait_final(&warm, 300));
            result_destroy(&warm);
            span_request(e, &ps[i], spans[i][0], spans[i][1], &r[i]);
        }
        for (int i = 0; i < NP; i++) {
            assert_close_vec(r[i].h_mean, want[i].mean, cache ? "span mean (prefix cache)" : "span mean", i);
            assert_close_vec(r[i].h_last, want[i].last, "last", i);
        }
        if (cache) {
            /* blocks wholly before the span come from the cache */
            assert_int_equal(r[1].usage.cached_prompt_tokens, SYS);
            /* the span starts in block 2: it is computed, blocks 0-1 are cached */
            assert_int_equal(r[2].usage.cached_prompt_tokens, 32);
            /* block 1 inside the span: its sum was recorded (hsum on since ps[0]);
             * every other whole block lies outside it */
            assert_int_equal(r[3].usage.cached_prompt_tokens, (ps[3].n - 1) / 16 * 16);
        } else {
            for (int i = 0; i < NP; i++) assert_int_equal(r[i].usage.cached_prompt_tokens, 0);
        }
        /* bad spans */
        static const int32_t bad[][2] = {{5, 5}, {-1, 3}, {0, 1000}, {7, 3}};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            sw_request q = greedy_request(&ps[0], 1, &r[NP]);
            q.hidden = SW_HIDDEN_MEAN;
            q.hidden_begin = bad[k][0];
            q.hidden_end = bad[k][1];
            sw_err err = {{0}};
            assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_E_INVALID_ARG);
            assert_non_null(strstr(err.msg, "span"));
        }
        sw_request q = greedy_request(&ps[0], 1, &r[NP]);
        q.hidden = SW_HIDDEN_LAST; /* a span without the mean */
        q.hidden_begin = 1;
        q.hidden_end = 3;
        assert_int_equal(sw_engine_submit(e, &q, NULL, NULL), SW_E_INVALID_ARG);
        check_idle(e);
        sw_engine_free(e);
        for (int i = 0; i < NP; i++) result_destroy(&r[i]);
    }
    free(want);
}

static void test_block_manager(void **state) {
    (void)state;
    sw_kv_params kp = {.block_size = 4, .n_blocks = 6, .type = SW_TYPE_F16};
    sw_kv_cache *kv;
    assert_int_equal(sw_kv_cache_create(g_m, &kp, &kv, NULL), SW_OK);
    sw_block_manager *bm;
    assert_int_equal(sw_bm_create(kv, true, &bm, NULL), SW_OK);
    int32_t toks[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    int32_t b[6];
    uint64_t h[3];
    for (int i = 0; i < 3; i++) b[i] = sw_bm_alloc(bm);
    h[0] = sw_bm_hash_block(SW_BM_HASH_ROOT, toks, 4);
    h[1] = sw_bm_hash_block(h[0], toks + 4, 4);
    h[2] = sw_bm_hash_block(h[1], toks + 8, 4);
    /* the chain hash depends on the whole prefix, not just the block */
    assert_true(sw_bm_hash_block(SW_BM_HASH_ROOT, toks + 4, 4) != h[1]);
    for (int i = 0; i < 3; i++) sw_bm_register(bm, b[i], h[i], toks + 4 * i);
    assert_int_equal(sw_bm_n_used(bm), 3);
    /* a second user of the first two blocks */
    int32_t m[4];
    uint64_t mh[4];
    int32_t other[8] = {1, 2, 3, 4, 5, 6, 7, 99};
    assert_int_equal(sw_bm_match_prefix(bm, other, 2, m, mh), 1);
    assert_int_equal(m[0], b[0]);
    assert_int_equal(sw_bm_match_prefix(bm, toks, 3, m + 1, mh + 1), 3);
    assert_int_equal(sw_bm_n_used(bm), 3);
    sw_bm_release_table(bm, b, 3);
    assert_int_equal(sw_bm_n_used(bm), 3); /* still referenced by the matches */
    sw_bm_release(bm, m[0]);
    sw_bm_release_table(bm, m + 1, 3);
    assert_int_equal(sw_bm_n_used(bm), 0);
    assert_int_equal(sw_bm_n_evictable(bm), 3);
    assert_int_equal(sw_bm_n_available(bm), 6);
    assert_int_equal(sw_bm_check(bm, NULL), SW_OK);
    /* exhaust the free list: the tail block (released first) is evicted first */
    for (int i = 0; i < 3; i++) assert_true((b[3 + i] = sw_bm_alloc(bm)) >= 0);
    int32_t ev = sw_bm_alloc(bm);
    assert_int_equal(ev, b[2]);
    assert_int_equal(sw_bm_match_prefix(bm, toks, 3, m, mh), 2);
    assert_int_equal(sw_bm_alloc(bm), -1); /* b0, b1 referenced again: nothing left */
    sw_bm_release_table(bm, m, 2);
    sw_bm_release_table(bm, b + 3, 3);
    sw_bm_release(bm, ev);
    assert_int_equal(sw_bm_n_used(bm), 0);
    assert_int_equal(sw_bm_check(bm, NULL), SW_OK);
    sw_bm_free(bm);
    assert_int_equal(sw_kv_n_free(kv), 6);
    sw_kv_cache_free(kv);
}

/* ---- main ------------------------------------------------------------------------- */

static const struct CMUnitTest k_tests[] = {
    cmocka_unit_test(test_block_manager),
    cmocka_unit_test(test_concurrent_equals_solo),
    cmocka_unit_test(test_chunked_prefill_keeps_streams),
    cmocka_unit_test(test_submit_cancel_storm),
    cmocka_unit_test(test_preemption_equals_solo),
    cmocka_unit_test(test_seeded_sampling_through_preemption),
    cmocka_unit_test(test_summary_sampling_equals_full),
    cmocka_unit_test(test_prefix_cache),
    cmocka_unit_test(test_burst_shares_prefix),
    cmocka_unit_test(test_stop_strings),
    cmocka_unit_test(test_json_mode),
    cmocka_unit_test(test_limits_and_errors),
    cmocka_unit_test(test_default_kv_holds_max_running),
    cmocka_unit_test(test_free_with_work_in_flight),
    cmocka_unit_test(test_hidden_states),
    cmocka_unit_test(test_hidden_prefix_cache_and_no_generate),
    cmocka_unit_test(test_hidden_span),
};

/* The engine over a GPU backend: the tests whose outputs must not depend on
 * batching, preemption or prefix sharing (Vulkan runs on lavapipe in CI). */
static const struct CMUnitTest k_tests_gpu[] = {
    cmocka_unit_test(test_concurrent_equals_solo),
    cmocka_unit_test(test_preemption_equals_solo),
    cmocka_unit_test(test_prefix_cache),
    cmocka_unit_test(test_hidden_states),
};

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
}

/* Make a synthetic q8_0 model of this mkmodel shape; NULL (and why) if we
 * cannot. */
static const char *synthetic_model(const char *shape, char *buf, size_t cap) {
    const char *bin = getenv("SW_BIN_DIR"), *tmp = getenv("SW_TMP_DIR");
    if (!bin || !tmp) {
        printf("synthetic model: SW_BIN_DIR / SW_TMP_DIR not set\n");
        return NULL;
    }
    char tool[1024], cmd[3072];
    snprintf(tool, sizeof tool, "%s/spillway-mkmodel", bin);
    if (!file_exists(tool)) {
        printf("synthetic model: %s not built\n", tool);
        return NULL;
    }
    snprintf(buf, cap, "%s/sched_%s_q8_0.gguf", tmp, shape);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' --shape %s --type q8_0 > /dev/null", tool, buf, shape);
    if (system(cmd) != 0 || !file_exists(buf)) {
        printf("synthetic model: '%s' failed\n", cmd);
        return NULL;
    }
    return buf;
}

int main(void) {
    int failed = 0, groups = 0;
    char stories[1024], synth[1024];
    const char *shared = getenv("SW_SHARED_DIR");
    snprintf(stories, sizeof stories, "%s/models/stories260K.gguf", shared ? shared : "/work/shared");
    if (file_exists(stories)) {
        g_path = stories;
        failed += cmocka_run_group_tests_name("sched_stories260K", k_tests, group_setup, group_teardown);
        groups++;
    } else {
        printf("stories260K: %s not found\n", stories);
    }
    if (synthetic_model("tiny", synth, sizeof synth)) {
        g_path = synth;
        failed += cmocka_run_group_tests_name("sched_synthetic_tiny_q8_0", k_tests, group_setup,
                                              group_teardown);
        groups++;
    }
    /* gemma3's forward pass (sliding-window layers) under batching,
     * preemption and the prefix cache */
    char gemma[1024];
    if (synthetic_model("gemma3-tiny", gemma, sizeof gemma)) {
        g_path = gemma;
        failed += cmocka_run_group_tests_name("sched_synthetic_gemma3_tiny_q8_0", k_tests_gpu,
                                              group_setup, group_teardown);
        groups++;
    }
    if (file_exists(stories)) {
        /* Vulkan when built and a device exists (lavapipe on CI). */
        sw_backend_config bc = {.name = "vulkan", .device = -1};
        sw_backend *probe = NULL;
        sw_err err = {{0}};
        if (sw_backend_create(&bc, &probe, &err) == SW_OK) {
            sw_backend_free(probe);
            g_path = stories;
            g_backend = "vulkan";
            failed += cmocka_run_group_tests_name("sched_stories260K_vulkan", k_tests_gpu,
                                                  group_setup, group_teardown);
            g_backend = "cpu";
            groups++;
        } else {
            printf("vulkan group skipped: %s\n", err.msg);
        }
    }
    if (groups == 0) {
        printf("SKIP: no model to test the engine with (neither stories260K nor spillway-mkmodel)\n");
        return 77;
    }
    return failed;
}
