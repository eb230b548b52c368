/* req.c — the internal request's bookkeeping (req.h): building and freeing
 * it, the texts a detector scans, errors, ids, and the writer of each wire
 * format. */
#include "req.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void srv_error_set(srv_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...) {
    if (!e) return;
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* ---- building and freeing ------------------------------------------------------------ */

static void block_free(srv_block *b) {
    free(b->text);
    free(b->id);
    free(b->name);
    free(b->input);
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    cJSON_Delete(r->raw);
    free(r->model);
    free(r->system);
    for (size_t i = 0; i < r->n_msgs; i++) {
        for (size_t j = 0; j < r->msgs[i].n_blocks; j++) block_free(&r->msgs[i].blocks[j]);
        free(r->msgs[i].blocks);
        free(r->msgs[i].role);
    }
    free(r->msgs);
    for (size_t i = 0; i < r->n_tools; i++) {
        free(r->tools[i].name);
        free(r->tools[i].description);
        cJSON_Delete(r->tools[i].parameters);
    }
    free(r->tools);
    free(r->tool_name);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->logit_bias);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    cJSON_Delete(r->format.schema);
    free(r->format.name);
    free(r->format.grammar);
    free(r->hints.api_key);
    memset(r, 0, sizeof *r);
}

/* Make room for a zeroed slot n in an array of n elements of size sz. These
 * arrays only ever grow one element at a time, so their capacity is
 * implicit: the smallest power of two >= n. Doubling keeps n appends O(n)
 * (a realloc per element made a 20,000-part message take 43 s under ASan). */
static void *grow(void *arr, size_t n, size_t sz) {
    char *p = arr;
    if ((n & (n - 1)) == 0) { /* 0 or a power of two: full */
        p = realloc(arr, (n ? 2 * n : 1) * sz);
        if (!p) return NULL;
    }
    memset(p + n * sz, 0, sz);
    return p;
}

srv_msg *srv_request_add_msg(srv_request *r, const char *role) {
    char *rs = strdup(role);
    srv_msg *m = rs ? grow(r->msgs, r->n_msgs, sizeof *m) : NULL;
    if (!m) {
        free(rs);
        return NULL;
    }
    r->msgs = m;
    m = &r->msgs[r->n_msgs++];
    m->role = rs;
    return m;
}

srv_block *srv_msg_add_block(srv_msg *m, srv_block_type type) {
    srv_block *b = grow(m->blocks, m->n_blocks, sizeof *b);
    if (!b) return NULL;
    m->blocks = b;
    b = &m->blocks[m->n_blocks++];
    b->type = type;
    return b;
}

bool srv_request_add_stop(srv_request *r, const char *s) {
    char *d = strdup(s);
    char **p = d ? realloc(r->stop, (size_t)(r->n_stop + 1) * sizeof *p) : NULL;
    if (!p) {
        free(d);
        return false;
    }
    r->stop = p;
    r->stop[r->n_stop++] = d;
    return true;
}

bool srv_request_texts(const srv_request *r, const char ***out, size_t *n) {
    size_t cap = 2;
    for (size_t i = 0; i < r->n_msgs; i++) cap += 2 * r->msgs[i].n_blocks;
    const char **t = malloc(cap * sizeof *t);
    if (!t) return false;
    size_t k = 0;
    if (r->system) t[k++] = r->system;
    if (r->prompt) t[k++] = r->prompt;
    for (size_t i = 0; i < r->n_msgs; i++) {
        for (size_t j = 0; j < r->msgs[i].n_blocks; j++) {
            const srv_block *b = &r->msgs[i].blocks[j];
            if (b->text) t[k++] = b->text;
            if (b->input) t[k++] = b->input;
        }
    }
    *out = t;
    *n = k;
    return true;
}

srv_finish srv_finish_parse(const char *s) {
    if (!s) return SRV_FINISH_STOP;
    if (!strcmp(s, "length")) return SRV_FINISH_LENGTH;
    if (!strcmp(s, "tool_calls")) return SRV_FINISH_TOOL_CALLS;
    if (!strcmp(s, "content_filter")) return SRV_FINISH_CONTENT_FILTER;
    return SRV_FINISH_STOP;
}

const srv_writer *srv_writer_for(srv_wire w) {
    switch (w) {
    case SRV_WIRE_OAI_COMPLETIONS: return &oai_cmpl_writer;
    case SRV_WIRE_ANTHROPIC: return &anthropic_writer;
    default: return &oai_chat_writer;
    }
}

/* ---- ids -------------------------------------------------------------------------- */

uint64_t srv_random_u64(void) {
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v) return v;
    /* No entropy yet (very early boot): a counter mixed with the clock is
     * still unique per process, which is all ids and default seeds need. */
    static atomic_uint_fast64_t ctr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48);
    z += 0x9E3779B97F4A7C15ull * (atomic_fetch_add(&ctr, 1) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void srv_make_id(char *buf, size_t cap, const char *prefix) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = (size_t)snprintf(buf, cap, "%s", prefix);
    uint64_t r = 0;
    for (int i = 0; i < 24 && n + 1 < cap; i++) {
        if (i % 8 == 0) r = srv_random_u64();
        buf[n++] = alnum[r % 62];
        r /= 62;
    }
    if (n < cap) buf[n] = '\0';
}
