/* run.c — load the model, and run items through the engine the way
 * spillway-server would: same chat template, same BOS rule, greedy. */
#include "rtool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_status runner_open(runner *r, const char *model_path, int32_t threads, sw_err *err) {
    memset(r, 0, sizeof *r);
    sw_backend_config bc = {.name = "cpu", .n_threads = threads, .device = -1};
    sw_status st = sw_backend_create(&bc, &r->be, err);
    if (st != SW_OK) return st;
    if ((st = sw_model_load(model_path, r->be, NULL, &r->model, err)) != SW_OK) goto fail;
    if (!sw_model_tokenizer(r->model)) {
        st = sw_err_set(err, SW_E_UNSUPPORTED, "%s: the model has no tokenizer", model_path);
        goto fail;
    }
    sw_rtr_model_id(sw_model_gguf(r->model), r->model_name, sizeof r->model_name, r->model_id);
    /* the server's rule: the model's template, else chatml */
    sw_err terr;
    if (sw_chat_template_gguf(sw_model_gguf(r->model), NULL, &r->chat, &terr) != SW_OK &&
        (st = sw_chat_template_builtin("chatml", &r->chat, err)) != SW_OK)
        goto fail;
    sw_engine_params ep;
    sw_engine_params_default(&ep);
    ep.max_running = 32;
    ep.n_ctx = 4096;
    if ((st = sw_engine_create(r->model, &ep, &r->engine, err)) != SW_OK) goto fail;
    return SW_OK;
fail:
    runner_close(r);
    return st;
}

void runner_close(runner *r) {
    sw_engine_free(r->engine);
    sw_chat_template_free(r->chat);
    sw_model_free(r->model);
    sw_backend_free(r->be);
    memset(r, 0, sizeof *r);
}

/* The prompt's tokens, as spillway-server makes them (tools/server/prompt.c). */
static sw_status item_tokens(runner *r, item *it, sw_err *err) {
    const sw_tokenizer *tok = sw_model_tokenizer(r->model);
    int32_t bos = sw_tokenizer_bos(tok), eos = sw_tokenizer_eos(tok);
    bool add_bos = sw_tokenizer_add_bos(tok) && bos >= 0;
    char *text = NULL;
    const char *src = it->prompt;
    if (it->msgs) {
        const char *bos_s = bos >= 0 ? sw_tokenizer_token_text(tok, bos) : "";
        sw_chat_input in = {.messages = it->msgs, .add_generation_prompt = true, .openai = true,
                            .bos_token = bos >= 0 ? bos_s : NULL,
                            .eos_token = eos >= 0 ? sw_tokenizer_token_text(tok, eos) : NULL};
        sw_status st = sw_chat_render_template(r->chat, &in, &text, NULL, err);
        if (st != SW_OK) return st;
        if (add_bos && bos_s && *bos_s && !strncmp(text, bos_s, strlen(bos_s))) add_bos = false;
        src = text;
    }
    size_t n = 0;
    sw_status st = sw_tokenize(tok, src, strlen(src), add_bos, true, &it->ids, &n, err);
    it->n_ids = (int32_t)n;
    free(text);
    return st;
}

sw_status runner_prompt_id(runner *r, char id[17], char **probe, sw_err *err) {
    static char line[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"" SW_RTR_PROBE_TEXT
                         "\"}],\"local_ok\":true}\n";
    *probe = NULL;
    FILE *f = fmemopen(line, sizeof line - 1, "r");
    if (!f) return sw_err_set(err, SW_E_NOMEM, "out of memory for the rendering probe");
    dataset d;
    sw_status st = data_read(f, "(rendering probe)", NEED_LABEL, &d, err);
    fclose(f);
    if (st != SW_OK) return st;
    item *it = &d.items[0];
    if ((st = item_tokens(r, it, err)) == SW_OK) {
        sw_rtr_prompt_id(it->ids, (size_t)it->n_ids, id);
        st = sw_detokenize(sw_model_tokenizer(r->model), it->ids, (size_t)it->n_ids, true, probe,
                           err);
    }
    data_free(&d);
    return st;
}

typedef struct run_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t done;
} run_ctx;

typedef struct job {
    run_ctx *ctx;
    item *it;
    size_t len, cap;   /* answer text */
    int32_t cap_gen;
    bool oom;
} job;

static void append(job *j, const char *t, size_t n) {
    if (j->len + n + 1 > j->cap) {
        size_t nc = SW_MAX(2 * j->cap, j->len + n + 64);
        char *p = realloc(j->it->answer, nc);
        if (!p) {
            j->oom = true;
            return;
        }
        j->it->answer = p;
        j->cap = nc;
    }
    memcpy(j->it->answer + j->len, t, n);
    j->len += n;
    j->it->answer[j->len] = '\0';
}

static float *copy_vec(const float *v, int32_t n) {
    if (!v) return NULL;
    float *c = malloc((size_t)n * sizeof *c);
    if (c) memcpy(c, v, (size_t)n * sizeof *c);
    return c;
}

static void on_event(void *user, const sw_event *ev) {
    job *j = user;
    item *it = j->it;
    if (ev->type == SW_EVENT_HIDDEN) {
        it->n_embd = ev->n_embd;
        it->h_last = copy_vec(ev->hidden_last, ev->n_embd);
        it->h_mean = copy_vec(ev->hidden_mean, ev->n_embd);
        if ((ev->hidden_last && !it->h_last) || (ev->hidden_mean && !it->h_mean)) j->oom = true;
        return;
    }
    append(j, ev->text, ev->text_len);
    if (ev->type == SW_EVENT_TOKEN) {
        if (it->n_gen == j->cap_gen) {
            int32_t nc = j->cap_gen ? 2 * j->cap_gen : 64;
            int32_t *ni = realloc(it->gen_ids, (size_t)nc * sizeof *ni);
            if (ni) it->gen_ids = ni;
            float *nl = realloc(it->gen_lp, (size_t)nc * sizeof *nl);
            if (nl) it->gen_lp = nl;
            if (!ni || !nl) {
                j->oom = true;
                return;
            }
            j->cap_gen = nc;
        }
        it->gen_ids[it->n_gen] = ev->token.id;
        it->gen_lp[it->n_gen++] = ev->token.logprob;
        return;
    }
    if (ev->finish == SW_FINISH_ERROR || ev->finish == SW_FINISH_CANCELLED)
        snprintf(it->run_error, sizeof it->run_error, "%s: %s", sw_finish_reason_str(ev->finish),
                 ev->message);
    else if (j->oom)
        snprintf(it->run_error, sizeof it->run_error, "out of memory");
    else
        it->ran = true;
    if (!it->answer) append(j, "", 0);
    pthread_mutex_lock(&j->ctx->mu);
    j->ctx->done++;
    pthread_cond_signal(&j->ctx->cv);
    pthread_mutex_unlock(&j->ctx->mu);
}

sw_rtr_input item_input(const item *it) {
    sw_rtr_input in = {.hidden_last = it->h_last, .hidden_mean = it->h_mean,
                       .n_embd = it->n_embd, .text = it->query, .n_prompt_tokens = it->n_ids};
    return in;
}

enum { IN_FLIGHT = 64 };

sw_status runner_run(runner *r, dataset *d, const run_params *p, sw_err *err) {
    run_ctx ctx = {.done = 0};
    pthread_mutex_init(&ctx.mu, NULL);
    pthread_cond_init(&ctx.cv, NULL);
    job *jobs = calloc((size_t)d->n, sizeof *jobs);
    if (!jobs) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    int32_t submitted = 0, expected = 0, n_ctx = sw_engine_n_ctx(r->engine);
    double t0 = sw_time_s();
    sw_status st = SW_OK;
    for (int32_t i = 0; i < d->n; i++) {
        item *it = &d->items[i];
        sw_err ierr = {{0}};
        if (item_tokens(r, it, &ierr) != SW_OK) {
            snprintf(it->run_error, sizeof it->run_error, "%s", ierr.msg);
            continue;
        }
        if (it->n_ids + SW_MAX(p->max_tokens, 1) > n_ctx) {
            snprintf(it->run_error, sizeof it->run_error, "%d prompt tokens: too long",
                     it->n_ids);
            continue;
        }
        /* keep at most IN_FLIGHT requests in the engine */
        pthread_mutex_lock(&ctx.mu);
        while (submitted - ctx.done >= IN_FLIGHT) pthread_cond_wait(&ctx.cv, &ctx.mu);
        pthread_mutex_unlock(&ctx.mu);
        jobs[i] = (job){.ctx = &ctx, .it = it};
        sw_request q;
        memset(&q, 0, sizeof q);
        q.prompt = it->ids;
        q.n_prompt = it->n_ids;
        sw_sampler_params_default(&q.sampling);
        q.sampling.temperature = 0.0f;
        q.max_tokens = p->max_tokens;
        q.no_generate = p->max_tokens == 0;
        q.hidden = sw_rtr_engine_hidden(p->hidden);
        if (p->hidden & SW_RTR_HIDDEN_QUERY) { /* the mean over the query's tokens */
            int32_t span[2];
            sw_rtr_query_span(sw_model_tokenizer(r->model), it->ids, it->n_ids, it->query, span);
            q.hidden_begin = span[0];
            q.hidden_end = span[1];
        }
        q.on_event = on_event;
        q.user = &jobs[i];
        if ((st = sw_engine_submit(r->engine, &q, NULL, err)) != SW_OK) break;
        submitted++;
        expected++;
        if (!p->quiet && (submitted % 50 == 0))
            fprintf(stderr, "\r%d/%d items submitted (%.0f s)", submitted, d->n,
                    sw_time_s() - t0);
    }
    pthread_mutex_lock(&ctx.mu);
    while (ctx.done < expected) pthread_cond_wait(&ctx.cv, &ctx.mu);
    pthread_mutex_unlock(&ctx.mu);
    if (!p->quiet) fprintf(stderr, "\r%d items ran in %.1f s            \n", expected, sw_time_s() - t0);
    pthread_cond_destroy(&ctx.cv);
    pthread_mutex_destroy(&ctx.mu);
    free(jobs);
    return st;
}
