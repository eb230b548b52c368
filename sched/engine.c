/* engine.c — the continuous-batching engine (see engine.h): request intake,
 * the scheduler thread, step planning (decodes, chunked prefill, admission,
 * preemption by recompute), sampling, stop handling and event delivery.
 *
 * Locking: one mutex (mu) guards the queues, every sequence's KV state
 * (tokens, blocks, n_computed, state), the block manager, the KV free list,
 * the outbox and the counters. The scheduler thread drops it for the forward
 * pass, for sampling and for running callbacks. Objects that only the
 * scheduler thread touches (each sequence's sampler, detokenizer and stop
 * matcher, and the step scratch) need no lock. A sequence struct is freed
 * only by the scheduler thread, after its final event was delivered, so a
 * step in flight may keep pointers to sequences that get cancelled meanwhile;
 * it finds them in state SEQ_DONE afterwards and skips them.
 *
 * Cancel releases blocks while a forward pass may still be writing into them.
 * That is safe: the pass uses copies of the block tables, blocks are only
 * handed out again by the planner (which runs after the pass on the same
 * thread), and the pass only writes positions past a sequence's registered
 * (shared) blocks. */
#include "engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block_manager.h"
#include "grammar.h"
#include "json_grammar.h"
#include "stop.h"

typedef enum { SEQ_WAITING = 0, SEQ_RUNNING, SEQ_DONE } seq_state;

/* One pending callback. Token events are malloc'd with their text; a
 * sequence's final event is embedded in the sequence so that finishing can
 * never fail for lack of memory. */
typedef struct ev_node {
    struct ev_node *next;
    sw_event ev;
    sw_event_fn fn;
    void *user;
    char *text;          /* owned by a final event (malloc'd), else points into the node */
    struct seq *to_free; /* set on final events: free after delivery */
} ev_node;

typedef struct seq {
    uint64_t id;
    seq_state state;
    /* The request, fixed at submit. */
    int32_t n_prompt;
    int32_t limit; /* finish with reason length once n_tokens reaches this */
    int32_t *stop_ids;
    int32_t n_stop_ids;
    int32_t text_ids[SW_MAX_TEXT_IDS], n_text_ids; /* control tokens written as text */
    bool ignore_eos;
    bool json;            /* output constrained to one JSON object (js below) */
    bool greedy;          /* temperature <= 0 */
    unsigned hidden;      /* SW_HIDDEN_* wanted */
    bool no_generate;     /* end after the prefill */
    sw_event_fn on_event;
    void *user;
    double t_queued, t_first;
    /* Scheduler thread only. */
    sw_sampler *sampler;
    sw_detok *detok; /* NULL when the model has no tokenizer */
    sw_stop *stop;
    sw_json_state js;     /* the output so far, when json */
    /* Hidden states of the prompt (scheduler thread, under the lock). */
    bool hidden_sent;     /* the SW_EVENT_HIDDEN is queued */
    int32_t hid_summed;   /* positions [0, hid_summed) are accounted for in hid_sum */
    double *hid_sum;      /* [n_embd] when SW_HIDDEN_MEAN: the sum over the span */
    int32_t hid_begin, hid_end; /* the mean's span of prompt positions */
    /* The sum of the block being computed, for the engine's block sums (see
     * record_block_sums): positions [block start, blk_next) so far. */
    double *blk_acc;      /* [n_embd], allocated at the first use */
    int32_t blk_next;     /* the position blk_acc expects next; -1: none */
    float *hid_last;      /* [n_embd] when SW_HIDDEN_LAST */
    sw_gmatch *gm;        /* the output so far under the request's grammar, or NULL */
    /* Under the engine lock. */
    int32_t *tokens; /* prompt then generated; the last one is not computed yet while decoding */
    int32_t n_tokens, cap_tokens;
    int32_t n_computed;  /* positions [0, n_computed) have their KV in the cache */
    int32_t *blocks;     /* block table */
    uint64_t *hashes;    /* chain hashes of the full computed blocks */
    int32_t n_blocks, n_hashes, cap_blocks;
    int32_t n_cached_prompt;
    bool admitted_once;
    uint64_t preempted_at; /* plan number of the last preemption */
    ev_node final;
    char message[SW_ERR_LEN];
} seq;

typedef struct plan_entry {
    seq *s;
    int32_t n_tok;      /* tokens computed this step, from s->n_computed on */
    bool sample;        /* the chunk reaches the last token: sample after it */
    bool prefill;       /* counts as prompt processing in the stats */
} plan_entry;

enum { RATE_BUCKETS = 10 }; /* seconds of history behind the tok/s figures */

struct sw_engine {
    sw_model *model;         /* borrowed */
    const sw_tokenizer *tok; /* borrowed from the model; may be NULL */
    sw_kv_cache *kv;         /* owned */
    sw_block_manager *bm;    /* owned */
    int32_t n_vocab, n_embd, n_ctx, block_size, budget, max_running, max_queued;
    /* An encoder (bert) attends non-causally, so each prompt is computed
     * whole in one step and no KV block is shared (a block's K/V depends on
     * the tokens after it); an embed-only model takes only no_generate
     * requests. */
    bool causal, embed_only;
    bool prefix_cache;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_started, stopping;

    /* Queues, both sorted by id (= arrival order). */
    seq **waiting;
    int32_t n_waiting, cap_waiting;
    seq **running; /* [max_running] */
    int32_t n_running;
    ev_node *out_head, *out_tail;
    uint64_t next_id;

    /* Counters. */
    uint64_t n_preempted, n_steps, n_plans, total_prompt, total_gen, n_finished;
    struct { int64_t sec; uint64_t prompt, gen; } rate[RATE_BUCKETS];
    double t_start;

    /* Step scratch (scheduler thread). */
    plan_entry *plan; /* [max_running] */
    int32_t n_plan, plan_budget;
    /* Chain hashes of the full blocks this plan's chunks complete (see
     * wait_for_planned); [cap_plan_hashes], NULL when the prefix cache is off. */
    uint64_t *plan_hashes;
    int32_t n_plan_hashes, cap_plan_hashes;
    int32_t *b_tokens, *b_pos;   /* [budget] */
    int32_t *b_seq_start;        /* [max_running + 1] */
    int32_t *b_nblocks;          /* [max_running] */
    const int32_t **b_tables;    /* [max_running] */
    int32_t *b_table_data;
    size_t cap_table_data;
    float *hidden;               /* [budget * n_embd], from the first request that wants it */
    bool step_hidden;            /* this step computes hidden (into e->hidden) */
    /* Hidden-state sums of prompt blocks, keyed by the block's chain hash
     * (direct-mapped, [n_hsum] slots; key 0 = empty): a request asking for the
     * mean takes a cached block's positions from here instead of computing
     * them. Allocated by the first SW_HIDDEN_MEAN request when the prefix
     * cache is on; from then on every prefill records its prompt blocks. */
    uint64_t *hsum_key;
    double *hsum;                /* [n_hsum * n_embd] */
    int32_t n_hsum;
    /* Logits of a step (plan_logits decides per row): whole rows
     * (downloaded into host memory the backend transfers fastest), or a
     * summary made on the device for samplers that can draw from one. */
    float *logits;               /* [max_running * n_vocab], sw_be_host_alloc */
    uint8_t *full_rows;          /* [max_running]: the row comes whole */
    sw_logits_stats *sum_stats;  /* [max_running] */
    int32_t *sum_ids;            /* [max_running * SW_SAMPLER_SUMMARY_MAX_K] */
    float *sum_logits;           /* [max_running * SW_SAMPLER_SUMMARY_MAX_K] */
    int32_t sum_k;               /* candidates per summarized row this step */
    bool always_full;            /* params.full_logits */
    uint64_t step_from_summary, step_from_full; /* this step's draws (scheduler thread) */
    uint64_t n_from_summary, n_from_full;       /* all draws (under mu) */
    sw_token_info *sampled;      /* [max_running] */
    sw_status *sample_st;        /* [max_running] */
    sw_err sample_err;
    /* Constrained decoding (JSON mode): every token's bytes, and the mask of
     * the tokens that may come next; built at the first JSON request. */
    const char **pieces;         /* [n_vocab], views into the tokenizer */
    uint32_t *piece_len;         /* [n_vocab] */
    uint8_t *allow;              /* [n_vocab] */
    sw_gvocab *gvocab;           /* token trie for grammar masks; built at the first grammar request */
    int32_t *eog_ids;            /* the end-of-generation tokens, with gvocab */
    int32_t n_eog;
    /* grammar cost: this step's (scheduler thread), and the totals (under mu) */
    uint64_t step_g_tokens, step_g_masks, g_tokens, g_masks;
    double step_g_seconds, g_seconds;
};

const char *sw_finish_reason_str(sw_finish_reason r) {
    switch (r) {
    case SW_FINISH_NONE: return "none";
    case SW_FINISH_STOP: return "stop";
    case SW_FINISH_LENGTH: return "length";
    case SW_FINISH_CANCELLED: return "cancelled";
    case SW_FINISH_ERROR: return "error";
    }
    return "unknown";
}

void sw_engine_params_default(sw_engine_params *p) {
    memset(p, 0, sizeof *p);
    p->kv_block_size = 16;
    p->max_batch_tokens = 512;
    p->max_running = 64;
    p->max_queued = 1024;
}

/* ---- sequences ---------------------------------------------------------- */

static void seq_free(seq *s) {
    if (!s) return;
    sw_sampler_free(s->sampler);
    sw_detok_free(s->detok);
    sw_stop_free(s->stop);
    sw_gmatch_free(s->gm);
    free(s->final.text);
    free(s->tokens);
    free(s->blocks);
    free(s->hashes);
    free(s->stop_ids);
    free(s->hid_sum);
    free(s->blk_acc);
    free(s->hid_last);
    free(s);
}

static int32_t blocks_for(const sw_engine *e, int64_t n_pos) {
    return (int32_t)((n_pos + e->block_size - 1) / e->block_size);
}

static sw_status check_request(const sw_engine *e, const sw_request *r, sw_err *err) {
    if (!r) return sw_err_set(err, SW_E_INVALID_ARG, "submit: NULL request");
    if (!r->on_event) return sw_err_set(err, SW_E_INVALID_ARG, "submit: request has no on_event callback");
    if (r->n_prompt < 1 || !r->prompt)
        return sw_err_set(err, SW_E_INVALID_ARG, "submit: empty prompt (%d tokens)", r->n_prompt);
    for (int32_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->n_vocab)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "submit: prompt token %d has id %d, outside the vocabulary (%d)", i,
                              r->prompt[i], e->n_vocab);
    if (r->n_top_logprobs < 0 || r->n_top_logprobs > SW_MAX_TOP_LOGPROBS)
        return sw_err_set(err, SW_E_INVALID_ARG, "submit: n_top_logprobs %d must be 0..%d",
                          r->n_top_logprobs, SW_MAX_TOP_LOGPROBS);
    if (r->n_text_ids < 0 || r->n_text_ids > SW_MAX_TEXT_IDS)
        return sw_err_set(err, SW_E_INVALID_ARG, "submit: n_text_ids is %d, not 0..%d", (int)r->n_text_ids,
                          SW_MAX_TEXT_IDS);
    for (int32_t i = 0; i < r->n_text_ids; i++)
        if (r->text_ids[i] < 0 || r->text_ids[i] >= e->n_vocab)
            return sw_err_set(err, SW_E_INVALID_ARG, "submit: text_ids[%d] is %d, outside the vocabulary", (int)i,
                              (int)r->text_ids[i]);
    if (r->n_stop_ids < 0 || (r->n_stop_ids > 0 && !r->stop_ids))
        return sw_err_set(err, SW_E_INVALID_ARG, "submit: bad stop token list (%d ids)",
                          r->n_stop_ids);
    if (e->embed_only && !r->no_generate)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "submit: this is an embedding model: it cannot generate (set "
                          "no_generate)");
    if (r->no_generate && r->n_prompt > e->n_ctx)
        return sw_err_set(err, SW_E_RANGE, "prompt has %d tokens but the context is %d tokens",
                          r->n_prompt, e->n_ctx);
    if (!r->no_generate && r->n_prompt >= e->n_ctx)
        return sw_err_set(err, SW_E_RANGE,
                          "prompt has %d tokens but the context is %d tokens; it must leave room "
                          "for at least one generated token",
                          r->n_prompt, e->n_ctx);
    if (!e->causal && r->n_prompt > e->budget)
        return sw_err_set(err, SW_E_RANGE,
                          "prompt has %d tokens but this model computes each input whole in one "
                          "step of at most %d tokens",
                          r->n_prompt, e->budget);
    if (r->hidden & ~(SW_HIDDEN_LAST | SW_HIDDEN_MEAN))
        return sw_err_set(err, SW_E_INVALID_ARG, "submit: unknown hidden-state flags 0x%x",
                          r->hidden);
    if ((r->hidden_begin || r->hidden_end) &&
        (!(r->hidden & SW_HIDDEN_MEAN) || r->hidden_begin < 0 ||
         r->hidden_begin >= r->hidden_end || r->hidden_end > r->n_prompt))
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "submit: hidden-state span [%d, %d) is not a non-empty span of the "
                          "%d-token prompt with SW_HIDDEN_MEAN",
                          r->hidden_begin, r->hidden_end, r->n_prompt);
    if ((r->json_object || r->grammar) && !e->tok)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "submit: constrained output needs the model's tokenizer, and this model "
                          "has none");
    if (r->json_object && r->grammar)
        return sw_err_set(err, SW_E_INVALID_ARG, "submit: both JSON mode and a grammar given");
    if (r->max_tokens > 0 && (int64_t)r->n_prompt + r->max_tokens > e->n_ctx)
        return sw_err_set(err, SW_E_RANGE,
                          "prompt (%d tokens) + max_tokens (%d) = %lld exceeds the context length "
                          "(%d tokens)",
                          r->n_prompt, r->max_tokens, (long long)r->n_prompt + r->max_tokens,
                          e->n_ctx);
    return SW_OK;
}

/* Build a sequence from a validated request; everything is copied. */
static sw_status seq_create(sw_engine *e, const sw_request *r, seq **out, sw_err *err) {
    *out = NULL;
    seq *s = calloc(1, sizeof *s);
    if (!s) return sw_err_set(err, SW_E_NOMEM, "submit: out of memory");
    s->n_prompt = r->n_prompt;
    s->limit = r->max_tokens > 0 ? r->n_prompt + r->max_tokens : e->n_ctx;
    s->ignore_eos = r->ignore_eos;
    s->json = r->json_object;
    s->greedy = r->sampling.temperature <= 0.0f;
    s->hidden = r->hidden;
    s->no_generate = r->no_generate;
    s->blk_next = -1;
    s->hid_begin = r->hidden_end ? r->hidden_begin : 0;
    s->hid_end = r->hidden_end ? r->hidden_end : r->n_prompt;
    if (s->hidden & SW_HIDDEN_MEAN) s->hid_sum = calloc((size_t)e->n_embd, sizeof *s->hid_sum);
    if (s->hidden & SW_HIDDEN_LAST) s->hid_last = calloc((size_t)e->n_embd, sizeof *s->hid_last);
    sw_json_init(&s->js);
    s->on_event = r->on_event;
    s->user = r->user;
    /* Room for the prompt and a first stretch of output; grows by doubling. */
    s->cap_tokens = SW_MIN(s->limit, r->n_prompt + 64);
    s->tokens = malloc((size_t)s->cap_tokens * sizeof *s->tokens);
    s->cap_blocks = blocks_for(e, s->limit);
    s->blocks = malloc((size_t)s->cap_blocks * sizeof *s->blocks);
    s->hashes = malloc((size_t)s->cap_blocks * sizeof *s->hashes);
    if (r->n_stop_ids > 0) s->stop_ids = malloc((size_t)r->n_stop_ids * sizeof *s->stop_ids);
    sw_status st = SW_E_NOMEM;
    if (!s->tokens || !s->blocks || !s->hashes || (r->n_stop_ids > 0 && !s->stop_ids) ||
        ((s->hidden & SW_HIDDEN_MEAN) && !s->hid_sum) ||
        ((s->hidden & SW_HIDDEN_LAST) && !s->hid_last)) {
        sw_err_set(err, st, "submit: out of memory for a %d-token request", s->limit);
        goto fail;
    }
    memcpy(s->tokens, r->prompt, (size_t)r->n_prompt * sizeof *s->tokens);
    s->n_tokens = r->n_prompt;
    if (r->n_stop_ids > 0) memcpy(s->stop_ids, r->stop_ids, (size_t)r->n_stop_ids * sizeof *s->stop_ids);
    s->n_stop_ids = r->n_stop_ids;
    memcpy(s->text_ids, r->text_ids, sizeof s->text_ids);
    s->n_text_ids = r->n_text_ids;

    sw_sampler_params sp = r->sampling;
    sp.n_top_logprobs = r->n_top_logprobs;
    if ((st = sw_sampler_create(&sp, e->n_vocab, &s->sampler, err)) != SW_OK) {
        sw_err_wrap(err, st, "submit");
        goto fail;
    }
    /* Penalties look at the prompt too. */
    for (int32_t i = 0; i < r->n_prompt; i++) sw_sampler_accept(s->sampler, r->prompt[i]);
    /* under a grammar the grammar decides where the output ends: no stop strings */
    if ((st = sw_stop_create(r->grammar ? NULL : r->stop_strings, r->grammar ? 0 : r->n_stop_strings,
                             &s->stop, err)) != SW_OK) {
        sw_err_wrap(err, st, "submit");
        goto fail;
    }
    if (e->tok && !(s->detok = sw_detok_create(e->tok, false))) {
        st = sw_err_set(err, SW_E_NOMEM, "submit: out of memory for the detokenizer");
        goto fail;
    }
    if (r->grammar && (st = sw_gmatch_create(r->grammar, &s->gm, err)) != SW_OK) {
        sw_err_wrap(err, st, "submit");
        goto fail;
    }
    s->t_queued = sw_time_s();
    *out = s;
    return SW_OK;
fail:
    seq_free(s);
    return st;
}

/* ---- queues (under the lock) -------------------------------------------- */

static void list_remove(seq **list, int32_t *n, const seq *s) {
    for (int32_t i = 0; i < *n; i++)
        if (list[i] == s) {
            memmove(list + i, list + i + 1, (size_t)(*n - i - 1) * sizeof *list);
            (*n)--;
            return;
        }
}

/* Insert keeping the list sorted by id; the caller guarantees room. */
static void list_insert_sorted(seq **list, int32_t *n, seq *s) {
    int32_t i = *n;
    while (i > 0 && list[i - 1]->id > s->id) i--;
    memmove(list + i + 1, list + i, (size_t)(*n - i) * sizeof *list);
    list[i] = s;
    (*n)++;
}

static bool waiting_reserve(sw_engine *e, int32_t extra) {
    if (e->n_waiting + extra <= e->cap_waiting) return true;
    int32_t cap = e->cap_waiting ? e->cap_waiting : 64;
    while (cap < e->n_waiting + extra) cap *= 2;
    seq **w = realloc(e->waiting, (size_t)cap * sizeof *w);
    if (!w) return false;
    e->waiting = w;
    e->cap_waiting = cap;
    return true;
}

static seq *find_seq(sw_engine *e, uint64_t id) {
    for (int32_t i = 0; i < e->n_running; i++)
        if (e->running[i]->id == id) return e->running[i];
    for (int32_t i = 0; i < e->n_waiting; i++)
        if (e->waiting[i]->id == id) return e->waiting[i];
    return NULL;
}

static void outbox_push(sw_engine *e, ev_node *n) {
    n->next = NULL;
    if (e->out_tail) e->out_tail->next = n;
    else e->out_head = n;
    e->out_tail = n;
}

static void fill_common(const seq *s, sw_event *ev) {
    ev->id = s->id;
    ev->t_queued = s->t_queued;
    ev->t_first_token = s->t_first;
    ev->message = "";
}

static void release_blocks(sw_engine *e, seq *s) {
    sw_bm_release_table(e->bm, s->blocks, s->n_blocks);
    s->n_blocks = s->n_hashes = 0;
    s->n_computed = 0;
}

/* End a waiting or running sequence: free its blocks, take it off its queue
 * and queue its final event. text (may be NULL) is taken. */
static void finish_seq(sw_engine *e, seq *s, sw_finish_reason why, const char *msg, char *text) {
    if (s->state == SEQ_DONE) { /* cannot happen; never queue two final events */
        free(text);
        return;
    }
    if (s->state == SEQ_RUNNING) list_remove(e->running, &e->n_running, s);
    else list_remove(e->waiting, &e->n_waiting, s);
    release_blocks(e, s);
    s->state = SEQ_DONE;
    snprintf(s->message, sizeof s->message, "%s", msg ? msg : "");
    ev_node *n = &s->final;
    memset(n, 0, sizeof *n);
    fill_common(s, &n->ev);
    n->ev.type = SW_EVENT_FINAL;
    n->ev.finish = why;
    n->ev.message = s->message;
    n->ev.usage.prompt_tokens = s->n_prompt;
    n->ev.usage.completion_tokens = s->n_tokens - s->n_prompt;
    n->ev.usage.cached_prompt_tokens = s->n_cached_prompt;
    n->ev.t_finished = sw_time_s();
    n->text = text;
    n->ev.text = text ? text : "";
    n->ev.text_len = text ? strlen(text) : 0;
    n->fn = s->on_event;
    n->user = s->user;
    n->to_free = s;
    outbox_push(e, n);
    e->n_finished++;
}

/* Recompute preemption: drop the KV, keep the tokens (prompt + generated) and
 * the sampler/detokenizer state, and requeue in arrival order. On resume the
 * whole sequence is prefilled again (full blocks may come back from the
 * prefix cache) and generation continues where it stopped. */
static void preempt(sw_engine *e, seq *v) {
    for (int32_t i = 0; i < e->n_plan; i++)
        if (e->plan[i].s == v) {
            e->plan_budget += e->plan[i].n_tok;
            memmove(e->plan + i, e->plan + i + 1, (size_t)(e->n_plan - i - 1) * sizeof *e->plan);
            e->n_plan--;
            break;
        }
    sw_log(SW_LOG_DEBUG, "engine: preempting request %llu (%d tokens, %d blocks)",
           (unsigned long long)v->id, v->n_tokens, v->n_blocks);
    release_blocks(e, v);
    list_remove(e->running, &e->n_running, v);
    list_insert_sorted(e->waiting, &e->n_waiting, v); /* room reserved at admission */
    v->state = SEQ_WAITING;
    v->preempted_at = e->n_plans;
    e->n_preempted++;
}

/* ---- planning (under the lock) ------------------------------------------ */

/* Grow s's block table to cover positions [0, n_pos). When the cache is full
 * and may_preempt, preempt running sequences younger than s (the youngest
 * first). Returns the number of positions covered afterwards. */
static int32_t grow_blocks(sw_engine *e, seq *s, int32_t n_pos, bool may_preempt) {
    int32_t want = SW_MIN(blocks_for(e, n_pos), s->cap_blocks);
    while (s->n_blocks < want) {
        int32_t b = sw_bm_alloc(e->bm);
        if (b < 0) {
            seq *v = e->n_running > 0 ? e->running[e->n_running - 1] : NULL;
            if (!may_preempt || !v || v->id <= s->id) break;
            preempt(e, v);
            continue;
        }
        s->blocks[s->n_blocks++] = b;
    }
    return s->n_blocks * e->block_size;
}

/* Note the chain hashes of the full blocks that n_tok tokens of s from
 * s->n_computed on complete (the parent of the first is known: every
 * computed full block of s is hashed). */
static void note_planned_blocks(sw_engine *e, const seq *s, int32_t n_tok) {
    int32_t bs = e->block_size, i0 = s->n_computed / bs, i1 = (s->n_computed + n_tok) / bs;
    if (!e->plan_hashes || i0 > s->n_hashes) return;
    uint64_t h = i0 ? s->hashes[i0 - 1] : SW_BM_HASH_ROOT;
    for (int32_t i = i0; i < i1 && e->n_plan_hashes < e->cap_plan_hashes; i++) {
        h = sw_bm_hash_block(h, s->tokens + (size_t)i * (size_t)bs, bs);
        e->plan_hashes[e->n_plan_hashes++] = h;
    }
}

/* The cached hidden-state sum of the prompt block with chain hash h, or NULL. */
static const double *hsum_find(const sw_engine *e, uint64_t h) {
    if (!e->hsum || !h) return NULL;
    int32_t slot = (int32_t)(h % (uint64_t)e->n_hsum);
    return e->hsum_key[slot] == h ? e->hsum + (size_t)slot * (size_t)e->n_embd : NULL;
}

static bool mean_pending(const seq *s) {
    return (s->hidden & SW_HIDDEN_MEAN) && !s->hidden_sent;
}

/* Block i of s lies wholly outside the mean's span (its states are not
 * needed), or wholly inside it (a cached block sum can stand for them). */
static bool block_outside_span(const sw_engine *e, const seq *s, int32_t i) {
    return (i + 1) * e->block_size <= s->hid_begin || i * e->block_size >= s->hid_end;
}
static bool block_inside_span(const sw_engine *e, const seq *s, int32_t i) {
    return i * e->block_size >= s->hid_begin && (i + 1) * e->block_size <= s->hid_end;
}

/* The cached sum that block i of s (chain hash h) contributes to s's mean:
 * *sum NULL and true when it contributes nothing (outside the span); false
 * when its positions must be computed (part in the span, or not cached). */
static bool block_sum(const sw_engine *e, const seq *s, int32_t i, uint64_t h, const double **sum) {
    *sum = NULL;
    if (block_outside_span(e, s, i)) return true;
    return block_inside_span(e, s, i) && (*sum = hsum_find(e, h)) != NULL;
}

/* How many of s's first n_lookup blocks a request that still sums its mean
 * may take from the prefix cache: those already in its sum, those outside
 * its span, and those inside it whose hidden-state sum is cached. */
static int32_t summable_blocks(const sw_engine *e, const seq *s, int32_t n_lookup) {
    int32_t bs = e->block_size, done = s->hid_summed / bs;
    if (s->hid_summed % bs) return SW_MIN(done, n_lookup);
    uint64_t h = SW_BM_HASH_ROOT;
    const double *sum;
    for (int32_t i = 0; i < n_lookup; i++) {
        h = sw_bm_hash_block(h, s->tokens + (size_t)i * (size_t)bs, bs);
        if (i >= done && !block_sum(e, s, i, h, &sum)) return i;
    }
    return n_lookup;
}

/* Add the cached sums of s's blocks [hid_summed / bs, n) (matched, so their
 * hashes are in s->hashes; summable_blocks checked them) to s's mean. */
static void take_cached_sums(const sw_engine *e, seq *s, int32_t n) {
    const size_t ne = (size_t)e->n_embd;
    for (int32_t i = s->hid_summed / e->block_size; i < n; i++) {
        const double *v;
        if (!block_sum(e, s, i, s->hashes[i], &v)) return; /* cannot happen: checked under the same lock */
        for (size_t k = 0; v && k < ne; k++) s->hid_sum[k] += v[k];
        s->hid_summed = (i + 1) * e->block_size;
    }
}

/* Whether the first block s still has to compute (s's lookup done) is one
 * that a chunk of this step completes: then s waits one step and takes it
 * from the prefix cache instead of computing the same prefix twice in one
 * step -- a burst of requests with one system prompt, or one prompt sent
 * many times at once, costs one prefill of the shared blocks. A request that
 * sums its mean hidden state waits too once block sums are recorded (the
 * block's sum comes with it); before that it computes every position. */
static bool wait_for_planned(const sw_engine *e, const seq *s) {
    int32_t bs = e->block_size, m = s->n_blocks;
    if (!e->n_plan_hashes || s->n_computed != m * bs || (int64_t)(m + 1) * bs > s->n_tokens ||
        m > s->n_hashes || (mean_pending(s) && !e->hsum))
        return false;
    uint64_t h = sw_bm_hash_block(m ? s->hashes[m - 1] : SW_BM_HASH_ROOT,
                                  s->tokens + (size_t)m * (size_t)bs, bs);
    for (int32_t i = 0; i < e->n_plan_hashes; i++)
        if (e->plan_hashes[i] == h) return true;
    return false;
}

static void plan_add(sw_engine *e, seq *s, int32_t n_tok) {
    note_planned_blocks(e, s, n_tok);
    plan_entry *p = &e->plan[e->n_plan++];
    p->s = s;
    p->n_tok = n_tok;
    p->sample = s->n_computed + n_tok == s->n_tokens;
    p->prefill = n_tok > 1 || s->n_computed < s->n_prompt;
    e->plan_budget -= n_tok;
}

/* The prefix cache holds whole blocks, and the last token must always be
 * computed (its logits are needed), so a prompt that ends on a block boundary
 * would recompute its whole last block. When that block is cached (the same
 * prompt came before: retries, regenerations, a benchmark's repeats), copy its
 * K/V into a fresh block of s's own instead -- the cached one is never written
 * -- and compute only the last token: that token's step is then a decode step,
 * not a block_size-token prefill. */
static void reuse_last_block(sw_engine *e, seq *s) {
    int32_t bs = e->block_size, nb = s->n_blocks;
    if (s->n_tokens != (nb + 1) * bs || nb + 1 > s->cap_blocks) return;
    uint64_t parent = nb ? s->hashes[nb - 1] : SW_BM_HASH_ROOT, h;
    int32_t src = sw_bm_match_next(e->bm, parent, s->tokens + (size_t)nb * (size_t)bs, &h);
    if (src < 0) return;
    const double *sum = NULL;
    if (mean_pending(s) && (s->hid_summed != nb * bs || !block_sum(e, s, nb, h, &sum))) {
        sw_bm_release(e->bm, src); /* its positions are not in the mean: compute them */
        return;
    }
    int32_t dst = sw_bm_alloc(e->bm); /* src is referenced: it cannot be evicted for this */
    sw_err err = {{0}};
    if (dst >= 0 && sw_kv_copy_block(e->kv, src, dst, &err) == SW_OK) {
        s->blocks[s->n_blocks++] = dst; /* private: registering it later is a no-op */
        s->n_computed = s->n_tokens - 1;
        if (mean_pending(s)) { /* the last token is computed again, but summed from here */
            for (int32_t k = 0; sum && k < e->n_embd; k++) s->hid_sum[k] += sum[k];
            s->hid_summed = s->n_tokens;
        }
    } else if (dst >= 0) {
        sw_log(SW_LOG_WARN, "engine: %s; computing the block again", err.msg);
        sw_bm_release(e->bm, dst);
    }
    sw_bm_release(e->bm, src);
}

/* Try to admit waiting request i (in arrival order). Returns 1 when admitted,
 * 0 when it waits a step for a block this step computes (the next may go),
 * -1 when it has to wait for KV blocks (so do the ones behind it). */
static int admit(sw_engine *e, int32_t i) {
    seq *s = e->waiting[i];
    int32_t matched = 0, n_lookup = 0;
    if (s->n_blocks == 0) {
        /* Reuse cached full blocks, but always leave the last token to compute
         * so that the step yields logits for it. */
        n_lookup = (s->n_tokens - 1) / e->block_size;
        /* The mean needs every position of its span: reuse only blocks whose
         * positions are already in the sum, outside the span, or whose sum is
         * cached. */
        if (mean_pending(s)) n_lookup = summable_blocks(e, s, n_lookup);
        matched = sw_bm_match_prefix(e->bm, s->tokens, n_lookup, s->blocks, s->hashes);
        s->n_blocks = s->n_hashes = matched;
        if (mean_pending(s)) take_cached_sums(e, s, matched);
        s->n_computed = matched * e->block_size;
        /* (for a mean still summing: only with the block's sum cached) */
        if (matched == n_lookup) reuse_last_block(e, s);
    }
    if (wait_for_planned(e, s)) {
        release_blocks(e, s);
        return 0;
    }
    int32_t chunk = SW_MIN(s->n_tokens - s->n_computed, e->plan_budget);
    /* non-causal: the whole prompt in this step, or wait for the next */
    if (!e->causal && chunk < s->n_tokens - s->n_computed) {
        release_blocks(e, s);
        return false;
    }
    int32_t need = blocks_for(e, s->n_computed + chunk) - s->n_blocks;
    /* Leave one block of headroom per running sequence: admitting into the
     * last free blocks would only get the newcomer preempted by the next
     * decode that crosses a block boundary, wasting its prefill. */
    int32_t avail = sw_bm_n_available(e->bm) - e->n_running;
    if (need > avail) {
        /* Alone, a sequence always fits eventually (n_ctx <= capacity), so
         * take a smaller chunk rather than wait forever; with others running,
         * wait for blocks instead of starting something that would only be
         * preempted again. */
        if (e->causal && e->n_running == 0 && e->n_plan == 0 && s->n_blocks + avail > 0)
            chunk = (s->n_blocks + avail) * e->block_size - s->n_computed;
        if (!e->causal || e->n_running > 0 || e->n_plan > 0 || chunk <= 0) {
            release_blocks(e, s);
            return -1;
        }
    }
    /* waiting_reserve keeps room for every running sequence to be requeued by
     * a preemption, so preempt never needs to allocate. */
    if (!waiting_reserve(e, e->n_running + 1)) {
        release_blocks(e, s);
        return -1;
    }
    sw_bm_note_lookup(e->bm, matched, n_lookup);
    if (!s->admitted_once) {
        s->n_cached_prompt = SW_MIN(s->n_computed, s->n_prompt);
        s->admitted_once = true;
    }
    list_remove(e->waiting, &e->n_waiting, s);
    list_insert_sorted(e->running, &e->n_running, s);
    s->state = SEQ_RUNNING;
    grow_blocks(e, s, s->n_computed + chunk, false);
    plan_add(e, s, chunk);
    return 1;
}

/* Decide what the next step computes: every running decode (one token each,
 * oldest first), then prefill chunks of running sequences, then new
 * admissions in arrival order, all within the token budget. */
static void plan_step(sw_engine *e) {
    e->n_plan = 0;
    e->n_plan_hashes = 0;
    e->plan_budget = e->budget;
    e->n_plans++;
    /* Decodes first, so that running streams never stall behind a prefill.
     * A preemption only removes sequences younger than the one being served,
     * i.e. later in the list, so the index walk stays valid. */
    for (int32_t i = 0; i < e->n_running && e->plan_budget > 0; i++) {
        seq *s = e->running[i];
        if (s->n_tokens - s->n_computed != 1) continue;
        if (grow_blocks(e, s, s->n_computed + 1, true) < s->n_computed + 1) continue; /* stalls */
        plan_add(e, s, 1);
    }
    for (int32_t i = 0; i < e->n_running && e->plan_budget > 0; i++) {
        seq *s = e->running[i];
        int32_t rem = s->n_tokens - s->n_computed;
        if (rem <= 1) continue;
        int32_t chunk = SW_MIN(rem, e->plan_budget);
        /* Take the free blocks first and preempt only when not even one more
         * token fits: a long prefill should not evict a row of younger
         * streams just to go faster. */
        int32_t covered = grow_blocks(e, s, s->n_computed + chunk, false);
        if (covered <= s->n_computed) covered = grow_blocks(e, s, s->n_computed + 1, true);
        chunk = SW_MIN(chunk, covered - s->n_computed);
        if (chunk > 0) plan_add(e, s, chunk);
    }
    for (int32_t i = 0; i < e->n_waiting && e->plan_budget > 0 && e->n_running < e->max_running;) {
        if (e->waiting[i]->preempted_at == e->n_plans) break; /* not back in the same step */
        int r = admit(e, i);
        if (r < 0) break;
        if (r == 0) i++; /* admitted ones leave the list; a waiting one keeps its place */
    }
}

/* Flatten the plan into the batch arrays; block tables are copied so that a
 * concurrent cancel may release the sequence's blocks. */
static sw_status build_batch(sw_engine *e, sw_batch *b, sw_err *err) {
    size_t n_tab = 0;
    for (int32_t k = 0; k < e->n_plan; k++) n_tab += (size_t)e->plan[k].s->n_blocks;
    if (n_tab > e->cap_table_data) {
        size_t cap = SW_MAX(n_tab, 2 * e->cap_table_data);
        int32_t *p = realloc(e->b_table_data, cap * sizeof *p);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "engine: out of memory for block tables");
        e->b_table_data = p;
        e->cap_table_data = cap;
    }
    int32_t t = 0;
    size_t off = 0;
    for (int32_t k = 0; k < e->n_plan; k++) {
        const plan_entry *p = &e->plan[k];
        const seq *s = p->s;
        e->b_seq_start[k] = t;
        for (int32_t j = 0; j < p->n_tok; j++, t++) {
            e->b_tokens[t] = s->tokens[s->n_computed + j];
            e->b_pos[t] = s->n_computed + j;
        }
        memcpy(e->b_table_data + off, s->blocks, (size_t)s->n_blocks * sizeof *s->blocks);
        e->b_tables[k] = e->b_table_data + off;
        e->b_nblocks[k] = s->n_blocks;
        off += (size_t)s->n_blocks;
    }
    e->b_seq_start[e->n_plan] = t;
    e->step_hidden = false;
    for (int32_t k = 0; k < e->n_plan; k++) {
        const seq *s = e->plan[k].s;
        if ((s->hidden && !s->hidden_sent) || (e->hsum && s->n_computed < s->n_prompt))
            e->step_hidden = true;
    }
    memset(b, 0, sizeof *b);
    b->hidden = e->step_hidden ? e->hidden : NULL;
    b->n_tokens = t;
    b->tokens = e->b_tokens;
    b->pos = e->b_pos;
    b->n_seqs = e->n_plan;
    b->seq_start = e->b_seq_start;
    b->block_tables = e->b_tables;
    b->n_blocks = e->b_nblocks;
    /* tables as wide as the longest sequence can grow: the same step shapes
     * as long as the batch's makeup stays (sw_be_stats signatures) */
    b->block_table_cap = blocks_for(e, e->n_ctx);
    return SW_OK;
}

/* ---- applying a step's results (under the lock) -------------------------- */

static void rate_add(sw_engine *e, uint64_t prompt, uint64_t gen) {
    int64_t sec = (int64_t)sw_time_s();
    int k = (int)(sec % RATE_BUCKETS);
    if (e->rate[k].sec != sec) {
        e->rate[k].sec = sec;
        e->rate[k].prompt = e->rate[k].gen = 0;
    }
    e->rate[k].prompt += prompt;
    e->rate[k].gen += gen;
    e->total_prompt += prompt;
    e->total_gen += gen;
}

/* Hash every newly completed block and offer it to the prefix cache. */
static void register_blocks(sw_engine *e, seq *s) {
    int32_t bs = e->block_size, full = SW_MIN(s->n_computed / bs, s->n_blocks);
    while (s->n_hashes < full) {
        int32_t i = s->n_hashes;
        const int32_t *t = s->tokens + (size_t)i * (size_t)bs;
        uint64_t h = sw_bm_hash_block(i ? s->hashes[i - 1] : SW_BM_HASH_ROOT, t, bs);
        s->hashes[s->n_hashes++] = h;
        sw_bm_register(e->bm, s->blocks[i], h, t);
    }
}

static bool is_stop_id(const seq *s, int32_t id) {
    for (int32_t i = 0; i < s->n_stop_ids; i++)
        if (s->stop_ids[i] == id) return true;
    return false;
}

/* The text still held back at the end of generation: the detokenizer's
 * incomplete bytes run through the stop matcher, then whatever it holds. */
static char *flush_text(seq *s) {
    const char *a = "", *b = "";
    size_t na = 0, nb = 0;
    char *out = NULL;
    const char *tail = s->detok ? sw_detok_flush(s->detok) : "";
    int32_t m = sw_stop_push(s->stop, tail, strlen(tail), &a, &na);
    /* a lives in the matcher's buffer until the next call: copy it first. */
    char *first = na ? strndup(a, na) : NULL;
    if (na && !first) return NULL;
    if (m < 0) sw_stop_flush(s->stop, &b, &nb);
    if (na + nb > 0 && (out = malloc(na + nb + 1))) {
        if (na) memcpy(out, first, na);
        if (nb) memcpy(out + na, b, nb);
        out[na + nb] = '\0';
    }
    free(first);
    return out;
}

static bool append_token(seq *s, int32_t id) {
    if (s->n_tokens == s->cap_tokens) {
        int32_t cap = SW_MIN(s->limit, 2 * s->cap_tokens);
        if (cap <= s->cap_tokens) return false;
        int32_t *p = realloc(s->tokens, (size_t)cap * sizeof *p);
        if (!p) return false;
        s->tokens = p;
        s->cap_tokens = cap;
    }
    s->tokens[s->n_tokens++] = id;
    return true;
}

/* Whether id is one of the control tokens s writes as their text. */
static bool is_text_id(const seq *s, int32_t id) {
    for (int32_t i = 0; i < s->n_text_ids; i++)
        if (s->text_ids[i] == id) return true;
    return false;
}

/* The bytes token id adds to s's output, as the grammar sees them. */
static const char *seq_piece(const sw_engine *e, const seq *s, int32_t id, uint32_t *n) {
    if (is_text_id(s, id)) {
        const char *t = sw_tokenizer_token_text(e->tok, id);
        *n = (uint32_t)strlen(t);
        return t;
    }
    *n = e->piece_len[id];
    return e->pieces[id];
}

/* A token was sampled for s: record it, stream it, and finish s if it ends
 * the generation. */
static void handle_token(sw_engine *e, seq *s, const sw_token_info *ti) {
    int32_t id = ti->id;
    if (!append_token(s, id)) {
        finish_seq(e, s, SW_FINISH_ERROR, "out of memory growing the token list", NULL);
        return;
    }
    if (s->t_first == 0) s->t_first = sw_time_s();
    bool eog = !s->ignore_eos && e->tok && sw_tokenizer_is_eog(e->tok, id);
    if (s->json && !sw_json_feed(&s->js, e->pieces[id], e->piece_len[id])) {
        /* the mask allowed only tokens that pass: this is a bug, not input */
        finish_seq(e, s, SW_FINISH_ERROR, "JSON mode: a sampled token broke the JSON", NULL);
        return;
    }
    if (s->gm) {
        /* an end token only when the output is complete (the mask saw to it);
         * any other token must continue the grammar */
        uint32_t np;
        const char *gp = seq_piece(e, s, id, &np);
        if (eog || is_stop_id(s, id)) {
            if (!sw_gmatch_accepting(s->gm)) {
                finish_seq(e, s, SW_FINISH_ERROR, "grammar: an end token before the output was complete", NULL);
                return;
            }
        } else if (!sw_gmatch_feed(s->gm, gp, np)) {
            const char *why = sw_gmatch_error(s->gm);
            finish_seq(e, s, SW_FINISH_ERROR, why ? why : "grammar: a sampled token broke the grammar", NULL);
            return;
        }
    }
    if (eog || is_stop_id(s, id)) {
        finish_seq(e, s, SW_FINISH_STOP, "", flush_text(s));
        return;
    }
    const char *piece = s->detok ? sw_detok_push(s->detok, id) : "";
    char *joined = NULL;
    if (s->detok && is_text_id(s, id)) { /* bytes held back, then the token's text */
        const char *held = sw_detok_flush(s->detok), *t = sw_tokenizer_token_text(e->tok, id);
        size_t nh = strlen(held), nt = strlen(t);
        if (!(joined = malloc(nh + nt + 1))) {
            finish_seq(e, s, SW_FINISH_ERROR, "out of memory for a token's text", NULL);
            return;
        }
        memcpy(joined, held, nh);
        memcpy(joined + nh, t, nt + 1);
        piece = joined;
    }
    const char *emit;
    size_t n_emit;
    int32_t m = sw_stop_push(s->stop, piece, strlen(piece), &emit, &n_emit);
    ev_node *n = m == -2 ? NULL : malloc(sizeof *n + n_emit + 1);
    if (!n) {
        free(joined);
        finish_seq(e, s, SW_FINISH_ERROR,
                   m == -2 ? "out of memory in the stop-string matcher" : "out of memory queueing a token event",
                   NULL);
        return;
    }
    memset(n, 0, sizeof *n);
    n->text = (char *)(n + 1);
    memcpy(n->text, emit, n_emit);
    free(joined);
    n->text[n_emit] = '\0';
    fill_common(s, &n->ev);
    n->ev.type = SW_EVENT_TOKEN;
    n->ev.text = n->text;
    n->ev.text_len = n_emit;
    n->ev.token = *ti;
    n->fn = s->on_event;
    n->user = s->user;
    n->text = NULL; /* part of the node, not separately owned */
    outbox_push(e, n);
    if (m >= 0) finish_seq(e, s, SW_FINISH_STOP, sw_stop_string(s->stop, m), NULL);
    else if (s->json && sw_json_done(&s->js)) finish_seq(e, s, SW_FINISH_STOP, "", flush_text(s));
    else if (s->gm && sw_gmatch_accepting(s->gm) && !sw_gmatch_can_continue(s->gm))
        finish_seq(e, s, SW_FINISH_STOP, "", flush_text(s));
    else if (s->n_tokens >= s->limit) finish_seq(e, s, SW_FINISH_LENGTH, "", flush_text(s));
}

/* Record the hidden-state sums of the prompt blocks s completes in this step
 * (batch rows from row0, positions from pos0), keyed by their chain hashes
 * (register_blocks made them), for later mean requests (hsum_find). Only a
 * block whose every position this sequence computed in order counts. */
static void record_block_sums(sw_engine *e, seq *s, int32_t row0, int32_t pos0, int32_t n_tok) {
    const size_t ne = (size_t)e->n_embd;
    int32_t bs = e->block_size, end = SW_MIN(pos0 + n_tok, s->n_prompt);
    if (!e->hsum || pos0 >= end) return;
    if (!s->blk_acc && !(s->blk_acc = malloc(ne * sizeof *s->blk_acc))) return; /* just not cached */
    for (int32_t pos = pos0; pos < end; pos++) {
        if (pos % bs == 0) {
            memset(s->blk_acc, 0, ne * sizeof *s->blk_acc);
            s->blk_next = pos;
        }
        if (pos != s->blk_next) {
            s->blk_next = -1;
            continue;
        }
        const float *h = e->hidden + (size_t)(row0 + pos - pos0) * ne;
        for (size_t i = 0; i < ne; i++) s->blk_acc[i] += h[i];
        s->blk_next = pos + 1;
        int32_t b = pos / bs;
        if (pos % bs == bs - 1 && b < s->n_hashes && s->hashes[b]) {
            int32_t slot = (int32_t)(s->hashes[b] % (uint64_t)e->n_hsum);
            e->hsum_key[slot] = s->hashes[b];
            memcpy(e->hsum + (size_t)slot * ne, s->blk_acc, ne * sizeof *s->blk_acc);
        }
    }
}

/* Take the hidden states of s's prompt positions in this step's chunk (batch
 * rows from row0, positions from pos0) and, once the prompt is complete, queue
 * the SW_EVENT_HIDDEN. Returns false when out of memory (s is then finished). */
static bool take_hidden(sw_engine *e, seq *s, int32_t row0, int32_t pos0, int32_t n_tok) {
    const size_t ne = (size_t)e->n_embd;
    int32_t end = SW_MIN(pos0 + n_tok, s->n_prompt);
    if (s->hid_sum)
        for (int32_t pos = SW_MAX(pos0, s->hid_summed); pos < end; pos++) {
            const float *h = e->hidden + (size_t)(row0 + pos - pos0) * ne;
            if (pos >= s->hid_begin && pos < s->hid_end)
                for (size_t i = 0; i < ne; i++) s->hid_sum[i] += h[i];
            s->hid_summed = pos + 1;
        }
    if (s->hid_last && pos0 <= s->n_prompt - 1 && s->n_prompt - 1 < pos0 + n_tok)
        memcpy(s->hid_last, e->hidden + (size_t)(row0 + s->n_prompt - 1 - pos0) * ne,
               ne * sizeof(float));
    if (end < s->n_prompt) return true;
    s->hidden_sent = true;
    size_t nv = (s->hid_last ? ne : 0) + (s->hid_sum ? ne : 0);
    ev_node *n = malloc(sizeof *n + nv * sizeof(float));
    if (!n) {
        finish_seq(e, s, SW_FINISH_ERROR, "out of memory queueing the hidden-state event", NULL);
        return false;
    }
    memset(n, 0, sizeof *n);
    float *v = (float *)(n + 1);
    fill_common(s, &n->ev);
    n->ev.type = SW_EVENT_HIDDEN;
    n->ev.text = "";
    n->ev.n_embd = e->n_embd;
    if (s->hid_last) {
        memcpy(v, s->hid_last, ne * sizeof(float));
        n->ev.hidden_last = v;
        v += ne;
    }
    if (s->hid_sum) {
        for (size_t i = 0; i < ne; i++) v[i] = (float)(s->hid_sum[i] / (s->hid_end - s->hid_begin));
        n->ev.hidden_mean = v;
    }
    n->fn = s->on_event;
    n->user = s->user;
    outbox_push(e, n);
    return true;
}

static void apply_step(sw_engine *e) {
    uint64_t prompt = 0, gen = 0;
    for (int32_t k = 0; k < e->n_plan; k++) {
        const plan_entry *p = &e->plan[k];
        seq *s = p->s;
        if (s->state != SEQ_RUNNING) continue; /* cancelled during the pass */
        if (p->prefill) prompt += (uint64_t)p->n_tok;
        int32_t pos0 = s->n_computed;
        s->n_computed += p->n_tok;
        register_blocks(e, s);
        if (e->step_hidden) record_block_sums(e, s, e->b_seq_start[k], pos0, p->n_tok);
        if (s->hidden && !s->hidden_sent && e->step_hidden &&
            !take_hidden(e, s, e->b_seq_start[k], pos0, p->n_tok))
            continue;
        if (s->no_generate && s->n_computed >= s->n_prompt) {
            finish_seq(e, s, SW_FINISH_LENGTH, "", NULL);
            continue;
        }
        if (!p->sample) continue;
        gen++;
        if (e->sample_st[k] != SW_OK) {
            finish_seq(e, s, SW_FINISH_ERROR, e->sample_err.msg, NULL);
            continue;
        }
        handle_token(e, s, &e->sampled[k]);
    }
    rate_add(e, prompt, gen);
    e->g_tokens += e->step_g_tokens;
    e->g_masks += e->step_g_masks;
    e->g_seconds += e->step_g_seconds;
    e->step_g_tokens = e->step_g_masks = 0;
    e->step_g_seconds = 0;
    e->n_from_summary += e->step_from_summary;
    e->n_from_full += e->step_from_full;
    e->step_from_summary = e->step_from_full = 0;
}

static void fail_step(sw_engine *e, const sw_err *err) {
    sw_log(SW_LOG_ERROR, "engine: forward pass failed: %s", err->msg);
    for (int32_t k = 0; k < e->n_plan; k++) {
        seq *s = e->plan[k].s;
        if (s->state == SEQ_RUNNING) finish_seq(e, s, SW_FINISH_ERROR, err->msg, NULL);
    }
}

/* ---- the scheduler thread ----------------------------------------------- */

static void deliver(ev_node *n) {
    while (n) {
        ev_node *next = n->next;
        n->fn(n->user, &n->ev);
        if (n->to_free) seq_free(n->to_free); /* the final node lives in the seq */
        else free(n);
        n = next;
    }
}

/* The JSON-mode tables, once per engine (scheduler thread). */
static sw_status json_tables(sw_engine *e, sw_err *err) {
    if (e->allow) return SW_OK;
    size_t n = (size_t)e->n_vocab;
    e->pieces = malloc(n * sizeof *e->pieces);
    e->piece_len = malloc(n * sizeof *e->piece_len);
    e->allow = malloc(n);
    if (!e->pieces || !e->piece_len || !e->allow) {
        free(e->pieces), free(e->piece_len), free(e->allow);
        e->pieces = NULL, e->piece_len = NULL, e->allow = NULL;
        return sw_err_set(err, SW_E_NOMEM, "out of memory for the JSON-mode token tables");
    }
    for (int32_t i = 0; i < e->n_vocab; i++) {
        size_t len = 0;
        const char *p = sw_token_piece(e->tok, i, &len);
        e->pieces[i] = p ? p : "";
        e->piece_len[i] = (uint32_t)len;
    }
    return SW_OK;
}

/* The grammar tables (token trie, end tokens), once per engine (scheduler thread). */
static sw_status grammar_tables(sw_engine *e, sw_err *err) {
    sw_status st = json_tables(e, err);
    if (st != SW_OK || e->gvocab) return st;
    e->eog_ids = malloc((size_t)e->n_vocab * sizeof *e->eog_ids);
    if (!e->eog_ids) return sw_err_set(err, SW_E_NOMEM, "out of memory for the grammar tables");
    e->n_eog = 0;
    for (int32_t i = 0; i < e->n_vocab; i++)
        if (sw_tokenizer_is_eog(e->tok, i)) e->eog_ids[e->n_eog++] = i;
    return sw_gvocab_create(e->pieces, e->piece_len, e->n_vocab, &e->gvocab, err);
}

/* Token id ends the output of s (end of generation, or one of its stop ids). */
static bool is_end_token(const sw_engine *e, const seq *s, int32_t id) {
    return (!s->ignore_eos && sw_tokenizer_is_eog(e->tok, id)) || is_stop_id(s, id);
}

/* Sample for a sequence under a grammar. Draw as if unconstrained and keep the
 * token when the grammar allows it (one matcher step); only otherwise build
 * the vocabulary mask and draw again from the allowed tokens. With
 * sw_sampler_sample_allowed this rejection sampling is exact, and for greedy
 * the first draw is the best allowed token whenever it is allowed at all.
 * End tokens are allowed once the output is complete. */
static sw_status sample_grammar(sw_engine *e, seq *s, const float *row, sw_token_info *ti, sw_err *err) {
    sw_status st = grammar_tables(e, err);
    if (st != SW_OK) return st;
    e->step_g_tokens++;
    bool acc = sw_gmatch_accepting(s->gm);
    if ((st = sw_sampler_sample(s->sampler, row, ti, err)) != SW_OK) return st;
    double t0 = sw_time_s(); /* the grammar's own cost starts here: the draw above is sampling's */
    int32_t id = ti->id;
    uint32_t np;
    const char *gp = seq_piece(e, s, id, &np);
    bool ok = is_end_token(e, s, id) ? acc : np > 0 && sw_gmatch_try(s->gm, gp, np);
    if (!ok) {
        e->step_g_masks++;
        int32_t n = sw_gmatch_mask(s->gm, e->gvocab, e->allow);
        if (n < 0)
            st = sw_err_set(err, SW_E_NOMEM, "grammar: %s",
                            sw_gmatch_error(s->gm) ? sw_gmatch_error(s->gm) : "out of memory for the mask");
        if (st == SW_OK && acc) {
            for (int32_t i = 0; i < e->n_eog; i++)
                if (!s->ignore_eos) n += !e->allow[e->eog_ids[i]], e->allow[e->eog_ids[i]] = 1;
            for (int32_t i = 0; i < s->n_stop_ids; i++)
                n += !e->allow[s->stop_ids[i]], e->allow[s->stop_ids[i]] = 1;
        }
        for (int32_t i = 0; st == SW_OK && i < s->n_text_ids; i++) { /* not in the trie: empty pieces */
            int32_t t = s->text_ids[i];
            const char *tp = seq_piece(e, s, t, &np);
            if (!e->allow[t] && np > 0 && sw_gmatch_try(s->gm, tp, np)) n++, e->allow[t] = 1;
        }
        if (st == SW_OK && n == 0)
            st = sw_err_set(err, SW_E_UNSUPPORTED,
                            "grammar: no token of this vocabulary can continue the output");
        if (st == SW_OK) st = sw_sampler_sample_allowed(s->sampler, row, e->allow, ti, err);
    }
    e->step_g_seconds += sw_time_s() - t0;
    return st;
}

/* Whether the next draw of s needs its whole row of logits rather than a
 * device summary: constrained decoding masks the vocabulary (JSON mode, and
 * any grammar mask), and some sampler settings (sw_sampler_needs_full_logits). */
static bool needs_full_logits(const sw_engine *e, const seq *s) {
    return e->always_full || s->json || s->gm || sw_sampler_needs_full_logits(s->sampler);
}

/* Before the forward (scheduler thread): which rows come whole, and how many
 * candidates the summarized ones carry. Rows that sample nothing (a prefill
 * chunk short of the prompt's end) take the cheap summary. */
static void plan_logits(sw_engine *e, sw_logits_out *o) {
    int32_t k = 1;
    for (int32_t r = 0; r < e->n_plan; r++) {
        const plan_entry *p = &e->plan[r];
        const bool draws = p->sample && !p->s->no_generate;
        e->full_rows[r] = draws && needs_full_logits(e, p->s);
        if (draws && !e->full_rows[r]) k = SW_MAX(k, sw_sampler_summary_k(p->s->sampler));
    }
    e->sum_k = SW_MIN(k, e->n_vocab);
    *o = (sw_logits_out){.full_rows = e->full_rows, .full = e->logits, .k = e->sum_k,
                         .stats = e->sum_stats, .top_ids = e->sum_ids,
                         .top_logits = e->sum_logits};
}

/* Draw row k's token from its summary; false when the summary does not decide
 * the draw (the row is then downloaded whole into e->logits). */
static bool sample_from_summary(sw_engine *e, int32_t k) {
    const plan_entry *p = &e->plan[k];
    size_t at = (size_t)k * (size_t)e->sum_k;
    sw_status st = sw_sampler_sample_summary(p->s->sampler, &e->sum_stats[k], e->sum_ids + at,
                                             e->sum_logits + at, e->sum_k, &e->sampled[k],
                                             &e->sample_err);
    if (st == SW_OK) {
        sw_sampler_accept(p->s->sampler, e->sampled[k].id);
        e->step_from_summary++;
        return true;
    }
    e->sample_st[k] = sw_model_last_logits(e->model, k, 1, e->logits + (size_t)k * (size_t)e->n_vocab,
                                           &e->sample_err);
    return false;
}

static void sample_plan(sw_engine *e) {
    for (int32_t k = 0; k < e->n_plan; k++) {
        const plan_entry *p = &e->plan[k];
        e->sample_st[k] = SW_OK;
        if (!p->sample || p->s->no_generate) continue;
        if (!e->full_rows[k] && (sample_from_summary(e, k) || e->sample_st[k] != SW_OK)) continue;
        e->step_from_full++;
        const float *row = e->logits + (size_t)k * (size_t)e->n_vocab;
        const uint8_t *allow = NULL;
        if (p->s->gm) {
            e->sample_st[k] = sample_grammar(e, p->s, row, &e->sampled[k], &e->sample_err);
            if (e->sample_st[k] == SW_OK) sw_sampler_accept(p->s->sampler, e->sampled[k].id);
            continue;
        }
        if (p->s->json) {
            /* only tokens that keep the output a prefix of a JSON object */
            if ((e->sample_st[k] = json_tables(e, &e->sample_err)) != SW_OK) continue;
            if (p->s->greedy) {
                /* Greedy: when the unmasked choice continues the JSON it is also
                 * the masked one (the best valid token), so the pass over the
                 * vocabulary is needed only when it does not. Greedy sampling
                 * changes no sampler state, so trying it first is free of side
                 * effects. */
                sw_token_info *ti = &e->sampled[k];
                if (sw_sampler_sample(p->s->sampler, row, ti, &e->sample_err) == SW_OK) {
                    sw_json_state c = p->s->js;
                    if (e->piece_len[ti->id] > 0 &&
                        sw_json_feed(&c, e->pieces[ti->id], e->piece_len[ti->id])) {
                        sw_sampler_accept(p->s->sampler, ti->id);
                        continue;
                    }
                }
            }
            if (sw_json_mask(&p->s->js, e->pieces, e->piece_len, e->n_vocab, e->allow) == 0) {
                e->sample_st[k] = sw_err_set(&e->sample_err, SW_E_UNSUPPORTED,
                                             "JSON mode: no token of this vocabulary can "
                                             "continue the JSON text");
                continue;
            }
            allow = e->allow;
        }
        e->sample_st[k] =
            sw_sampler_sample_masked(p->s->sampler, row, allow, &e->sampled[k], &e->sample_err);
        if (e->sample_st[k] == SW_OK) sw_sampler_accept(p->s->sampler, e->sampled[k].id);
    }
}

static void *sched_main(void *arg) {
    sw_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (e->out_head) {
            ev_node *n = e->out_head;
            e->out_head = e->out_tail = NULL;
            pthread_mutex_unlock(&e->mu);
            deliver(n);
            pthread_mutex_lock(&e->mu);
            continue;
        }
        if (e->stopping) break;
        if (e->n_running == 0 && e->n_waiting == 0) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        plan_step(e);
        if (e->n_plan == 0) {
            /* Should not happen (the oldest sequence can always progress);
             * wait for a change rather than spin. */
            sw_log(SW_LOG_WARN, "engine: nothing schedulable (%d running, %d waiting)",
                   e->n_running, e->n_waiting);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            continue;
        }
        sw_batch b;
        sw_logits_out lo;
        sw_err err = {{0}};
        sw_status st = build_batch(e, &b, &err);
        /* logits only when a sequence samples after this step */
        bool want_logits = false;
        for (int32_t k = 0; k < e->n_plan; k++)
            if (e->plan[k].sample && !e->plan[k].s->no_generate) want_logits = true;
        pthread_mutex_unlock(&e->mu);
        if (st == SW_OK) {
            plan_logits(e, &lo);
            st = sw_model_forward_out(e->model, e->kv, &b, want_logits ? &lo : NULL, &err);
        }
        if (st == SW_OK) sample_plan(e);
        pthread_mutex_lock(&e->mu);
        e->n_steps++;
        if (st == SW_OK) apply_step(e);
        else fail_step(e, &err);
    }
    /* Shutting down: every request still here ends as cancelled. */
    while (e->n_running > 0) finish_seq(e, e->running[0], SW_FINISH_CANCELLED, "engine shut down", NULL);
    while (e->n_waiting > 0) finish_seq(e, e->waiting[0], SW_FINISH_CANCELLED, "engine shut down", NULL);
    ev_node *n = e->out_head;
    e->out_head = e->out_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    deliver(n);
    return NULL;
}

/* ---- public API ----------------------------------------------------------- */

/* KV blocks to create when the caller gave neither a count nor a budget:
 * room for max_running full-length sequences (so --parallel N sequences can
 * all run without preempting each other), within a memory budget: half the
 * device's free memory when the backend reports it, but at most
 * SW_ENGINE_DEFAULT_KV_BYTES on the CPU (host RAM is shared with everything
 * else, and the cache is zeroed, i.e. committed, at creation) or when the
 * backend cannot tell; never less than one full-length sequence. */
static int32_t default_kv_blocks(sw_model *m, int32_t n_ctx, int32_t bs, int32_t max_running,
                                 bool f32) {
    const sw_model_config *c = sw_model_config_get(m);
    sw_backend *be = sw_model_backend(m);
    int64_t one_seq = ((int64_t)n_ctx + bs - 1) / bs;
    int64_t blocks = (int64_t)SW_MAX(max_running, 1) * one_seq;
    uint64_t per_block = 2ull * (uint64_t)c->n_layer * (uint64_t)c->head_dim *
                         (uint64_t)c->n_head_kv * (uint64_t)bs * (f32 ? 4u : 2u);
    size_t free_b = 0, total_b = 0;
    sw_err err;
    uint64_t budget = SW_ENGINE_DEFAULT_KV_BYTES;
    if (sw_be_mem_info(be, &free_b, &total_b, &err) == SW_OK && free_b > 0) {
        budget = free_b / 2;
        if (!strcmp(sw_backend_name(be), "cpu")) budget = SW_MIN(budget, SW_ENGINE_DEFAULT_KV_BYTES);
    }
    if (per_block > 0) blocks = SW_MIN(blocks, (int64_t)(budget / per_block));
    blocks = SW_MAX(blocks, one_seq);
    return (int32_t)SW_MIN(blocks, (int64_t)INT32_MAX);
}

sw_status sw_engine_create(sw_model *m, const sw_engine_params *params, sw_engine **out,
                           sw_err *err) {
    *out = NULL;
    if (!m) return sw_err_set(err, SW_E_INVALID_ARG, "sw_engine_create: NULL model");
    sw_engine_params p;
    sw_engine_params_default(&p);
    if (params) {
        p = *params;
        if (p.kv_block_size <= 0) p.kv_block_size = 16;
        if (p.max_batch_tokens <= 0) p.max_batch_tokens = 512;
        if (p.max_running <= 0) p.max_running = 64;
        if (p.max_queued <= 0) p.max_queued = 1024;
    }
    const sw_model_config *c = sw_model_config_get(m);
    /* Long-context models (128k) would default to a KV cache of many GiB;
     * a caller that wants more than SW_ENGINE_DEFAULT_CTX asks for it. */
    int64_t n_ctx = p.n_ctx > 0 ? SW_MIN((int64_t)p.n_ctx, c->n_ctx_train)
                                : SW_MIN((int64_t)SW_ENGINE_DEFAULT_CTX, c->n_ctx_train);
    if (n_ctx < 2)
        return sw_err_set(err, SW_E_RANGE, "engine: context of %lld tokens is too small",
                          (long long)n_ctx);

    sw_engine *e = calloc(1, sizeof *e);
    if (!e) return sw_err_set(err, SW_E_NOMEM, "out of memory for the engine");
    e->model = m;
    e->tok = sw_model_tokenizer(m);
    e->n_vocab = (int32_t)c->n_vocab;
    e->n_embd = (int32_t)c->n_embd;
    e->causal = c->causal;
    e->embed_only = c->embed_only;
    e->budget = p.max_batch_tokens;
    e->max_running = SW_MIN(p.max_running, p.max_batch_tokens);
    e->max_queued = p.max_queued;
    e->next_id = 1;
    e->t_start = sw_time_s();
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);

    sw_kv_params kp = {0};
    kp.block_size = p.kv_block_size;
    kp.type = p.kv_f32 ? SW_TYPE_F32 : SW_TYPE_F16;
    if (p.kv_n_blocks > 0) kp.n_blocks = p.kv_n_blocks;
    else if (p.kv_memory_bytes > 0) kp.max_bytes = p.kv_memory_bytes;
    else
        kp.n_blocks = default_kv_blocks(m, (int32_t)n_ctx, p.kv_block_size, e->max_running,
                                        p.kv_f32);
    sw_status st = sw_kv_cache_create(m, &kp, &e->kv, err);
    if (st != SW_OK) {
        sw_err_wrap(err, st, "engine");
        goto fail;
    }
    e->block_size = sw_kv_block_size(e->kv);
    int64_t capacity = (int64_t)sw_kv_n_blocks(e->kv) * e->block_size;
    if (n_ctx > capacity) {
        sw_log(SW_LOG_WARN,
               "engine: context %lld exceeds the KV cache (%lld tokens); limiting each sequence "
               "to %lld tokens",
               (long long)n_ctx, (long long)capacity, (long long)capacity);
        n_ctx = capacity;
        if (n_ctx < 2) {
            st = sw_err_set(err, SW_E_RANGE, "engine: KV cache of %lld tokens is too small",
                            (long long)capacity);
            goto fail;
        }
    }
    e->n_ctx = (int32_t)n_ctx;
    bool prefix = !p.no_prefix_cache && e->causal;
    if ((st = sw_bm_create(e->kv, prefix, &e->bm, err)) != SW_OK) goto fail;
    e->prefix_cache = prefix;

    size_t mr = (size_t)e->max_running;
    e->running = calloc(mr, sizeof *e->running);
    e->plan = calloc(mr, sizeof *e->plan);
    e->b_tokens = malloc((size_t)e->budget * sizeof *e->b_tokens);
    e->b_pos = malloc((size_t)e->budget * sizeof *e->b_pos);
    if (!p.no_prefix_cache) { /* a step completes at most budget / bs + one per sequence */
        e->cap_plan_hashes = e->budget / e->block_size + e->max_running + 1;
        e->plan_hashes = malloc((size_t)e->cap_plan_hashes * sizeof *e->plan_hashes);
        if (!e->plan_hashes) e->cap_plan_hashes = 0; /* no deferral then; nothing breaks */
    }
    e->b_seq_start = malloc((mr + 1) * sizeof *e->b_seq_start);
    e->b_nblocks = malloc(mr * sizeof *e->b_nblocks);
    e->b_tables = malloc(mr * sizeof *e->b_tables);
    if (!e->embed_only)
        e->logits =
            sw_be_host_alloc(sw_model_backend(m), mr * (size_t)e->n_vocab * sizeof *e->logits);
    e->full_rows = malloc(mr);
    e->sum_stats = malloc(mr * sizeof *e->sum_stats);
    e->sum_ids = malloc(mr * SW_SAMPLER_SUMMARY_MAX_K * sizeof *e->sum_ids);
    e->sum_logits = malloc(mr * SW_SAMPLER_SUMMARY_MAX_K * sizeof *e->sum_logits);
    e->always_full = p.full_logits;
    e->sampled = malloc(mr * sizeof *e->sampled);
    e->sample_st = malloc(mr * sizeof *e->sample_st);
    if (!e->running || !e->plan || !e->b_tokens || !e->b_pos || !e->b_seq_start ||
        !e->b_nblocks || !e->b_tables || (!e->logits && !e->embed_only) || !e->full_rows ||
        !e->sum_stats || !e->sum_ids || !e->sum_logits || !e->sampled || !e->sample_st ||
        !waiting_reserve(e, 64)) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory for the engine's step buffers");
        goto fail;
    }
    if (pthread_create(&e->thread, NULL, sched_main, e) != 0) {
        st = sw_err_set(err, SW_E_INTERNAL, "engine: cannot start the scheduler thread");
        goto fail;
    }
    e->thread_started = true;
    sw_log(SW_LOG_INFO,
           "engine: KV %d blocks x %d tokens = %lld tokens (%.1f MiB), n_ctx %d, %d tokens/step, "
           "%d running max, %d queued max, prefix cache %s",
           sw_kv_n_blocks(e->kv), e->block_size, (long long)capacity,
           (double)sw_kv_bytes(e->kv) / (1 << 20), e->n_ctx, e->budget, e->max_running,
           e->max_queued, prefix ? "on" : "off");
    *out = e;
    return SW_OK;
fail:
    sw_engine_free(e);
    return st;
}

void sw_engine_free(sw_engine *e) {
    if (!e) return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stopping = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    sw_bm_free(e->bm);
    sw_kv_cache_free(e->kv);
    free(e->waiting);
    free(e->running);
    free(e->plan);
    free(e->b_tokens);
    free(e->b_pos);
    free(e->plan_hashes);
    free(e->b_seq_start);
    free(e->b_nblocks);
    free(e->b_tables);
    free(e->b_table_data);
    sw_be_host_free(sw_model_backend(e->model), e->logits);
    free(e->hidden);
    free(e->hsum_key);
    free(e->hsum);
    free(e->full_rows);
    free(e->sum_stats);
    free(e->sum_ids);
    free(e->sum_logits);
    free(e->sampled);
    free(e->sample_st);
    free(e->pieces);
    free(e->piece_len);
    free(e->allow);
    sw_gvocab_free(e->gvocab);
    free(e->eog_ids);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* The block-sum table: one slot per KV block (under the lock). */
static bool hsum_alloc(sw_engine *e) {
    int32_t n = sw_kv_n_blocks(e->kv);
    e->hsum_key = calloc((size_t)n, sizeof *e->hsum_key);
    e->hsum = malloc((size_t)n * (size_t)e->n_embd * sizeof *e->hsum);
    if (!e->hsum_key || !e->hsum) {
        free(e->hsum_key);
        free(e->hsum);
        e->hsum_key = NULL;
        e->hsum = NULL;
        return false;
    }
    e->n_hsum = n;
    return true;
}

sw_status sw_engine_submit(sw_engine *e, const sw_request *req, uint64_t *id, sw_err *err) {
    if (id) *id = 0;
    if (!e) return sw_err_set(err, SW_E_INVALID_ARG, "submit: NULL engine");
    sw_status st = check_request(e, req, err);
    if (st != SW_OK) return st;
    seq *s;
    if ((st = seq_create(e, req, &s, err)) != SW_OK) return st;
    pthread_mutex_lock(&e->mu);
    if (e->stopping) {
        st = sw_err_set(err, SW_E_CANCELLED, "submit: the engine is shutting down");
    } else if (e->n_waiting >= e->max_queued) {
        st = sw_err_set(err, SW_E_BUSY, "submit: %d requests already queued (limit %d)",
                        e->n_waiting, e->max_queued);
    } else if (!waiting_reserve(e, e->n_running + 1)) {
        st = sw_err_set(err, SW_E_NOMEM, "submit: out of memory for the queue");
    } else if (req->hidden && !e->hidden &&
               !(e->hidden = malloc((size_t)e->budget * (size_t)e->n_embd * sizeof *e->hidden))) {
        st = sw_err_set(err, SW_E_NOMEM, "submit: out of memory for the hidden-state buffer");
    } else if ((req->hidden & SW_HIDDEN_MEAN) && !e->hsum && e->prefix_cache &&
               !hsum_alloc(e)) {
        st = sw_err_set(err, SW_E_NOMEM, "submit: out of memory for the hidden-state block sums");
    } else {
        s->id = e->next_id++;
        s->state = SEQ_WAITING;
        e->waiting[e->n_waiting++] = s; /* ids grow, so the list stays sorted */
        if (id) *id = s->id;
        pthread_cond_signal(&e->cv);
        s = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    seq_free(s);
    return st;
}

sw_status sw_engine_cancel(sw_engine *e, uint64_t id) {
    if (!e) return SW_E_INVALID_ARG;
    pthread_mutex_lock(&e->mu);
    seq *s = find_seq(e, id);
    if (s) {
        finish_seq(e, s, SW_FINISH_CANCELLED, "", NULL);
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return s ? SW_OK : SW_E_NOT_FOUND;
}

int32_t sw_engine_n_ctx(const sw_engine *e) { return e->n_ctx; }

void sw_engine_stats_get(sw_engine *e, sw_engine_stats *o) {
    memset(o, 0, sizeof *o);
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    o->running = e->n_running;
    o->waiting = e->n_waiting;
    o->preempted = e->n_preempted;
    o->kv_blocks_used = sw_bm_n_used(e->bm);
    o->kv_blocks_cached = sw_bm_n_evictable(e->bm);
    o->kv_blocks_total = sw_kv_n_blocks(e->kv);
    o->kv_block_size = e->block_size;
    o->n_ctx = e->n_ctx;
    o->max_running = e->max_running;
    o->max_queued = e->max_queued;
    sw_bm_counters(e->bm, &o->prefix_hits, &o->prefix_misses);
    if (o->prefix_hits + o->prefix_misses > 0)
        o->prefix_hit_rate = (double)o->prefix_hits / (double)(o->prefix_hits + o->prefix_misses);
    double now = sw_time_s();
    int64_t sec = (int64_t)now;
    uint64_t pr = 0, gn = 0;
    for (int k = 0; k < RATE_BUCKETS; k++)
        if (e->rate[k].sec > sec - RATE_BUCKETS && e->rate[k].sec <= sec) {
            pr += e->rate[k].prompt;
            gn += e->rate[k].gen;
        }
    /* The window covers the last RATE_BUCKETS - 1 whole seconds plus the
     * current partial one, or less when the engine is younger than that. */
    double span = SW_MIN(now - (double)(sec - (RATE_BUCKETS - 1)), now - e->t_start);
    if (span > 1e-3) {
        o->prompt_tok_s = (double)pr / span;
        o->gen_tok_s = (double)gn / span;
    }
    o->total_prompt_tokens = e->total_prompt;
    o->total_gen_tokens = e->total_gen;
    o->steps = e->n_steps;
    o->grammar_tokens = e->g_tokens;
    o->grammar_masks = e->g_masks;
    o->grammar_seconds = e->g_seconds;
    o->sampled_from_summary = e->n_from_summary;
    o->sampled_from_full = e->n_from_full;
    o->requests_finished = e->n_finished;
    pthread_mutex_unlock(&e->mu);
}

sw_status sw_engine_check(sw_engine *e, sw_err *err) {
    pthread_mutex_lock(&e->mu);
    sw_status st = sw_bm_check(e->bm, err);
    pthread_mutex_unlock(&e->mu);
    return st;
}
