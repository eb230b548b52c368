/* weights.c — deterministic synthetic weights for spillway-mkmodel.
 *
 * Every row of every tensor has its own PRNG state, derived from (seed, tensor
 * name, row index) by splitmix64, so that any tensor (or row) can be generated
 * on its own, in any order, and the same flags always give the same bytes.
 * Rows are generated, converted to the target type and handed to the GGUF
 * writer one at a time: memory use is one row, whatever the model size.
 *
 * The "normal" values are Irwin-Hall sums of four 16-bit uniforms, rescaled to
 * unit variance: one 64-bit random number per value, bounded at +-3.46 sigma.
 * That is plenty for synthetic weights and an order of magnitude cheaper than
 * Box-Muller, which matters for the 8B preset (8e9 values). */
#include "mkmodel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t mk_stream_id(uint64_t seed, const char *name) {
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a of the name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001B3ull;
    }
    uint64_t s = seed ^ h;
    return splitmix64(&s);
}

static void gauss_row(uint64_t stream, int64_t r, float scale, int64_t n, float *out) {
    uint64_t s = stream ^ ((uint64_t)r * 0xD1B54A32D192ED03ull);
    s = splitmix64(&s);
    /* sum of 4 U(0,1) has mean 2 and variance 4/12; sqrt(3) restores unit variance */
    const float k = scale * 1.7320508f / 65536.0f;
    for (int64_t i = 0; i < n; i++) {
        uint64_t x = splitmix64(&s);
        uint32_t sum = (uint32_t)(x & 0xFFFF) + (uint32_t)((x >> 16) & 0xFFFF) +
                       (uint32_t)((x >> 32) & 0xFFFF) + (uint32_t)(x >> 48);
        out[i] = ((float)sum - 131070.0f) * k; /* 4 * 65535 / 2 centres it */
    }
}

void mk_gen_row(const mk_tensor *t, int64_t r, float *out, float *tmp) {
    const int64_t n = t->ne[0];
    switch (t->kind) {
    case MK_CONST:
        for (int64_t i = 0; i < n; i++)
            out[i] = t->scale;
        return;
    case MK_TABLE:
        memcpy(out, t->table, (size_t)n * sizeof(float));
        return;
    case MK_NORM:
        gauss_row(t->stream, r, t->scale, n, out);
        for (int64_t i = 0; i < n; i++)
            out[i] += 1.0f;
        return;
    case MK_GAUSS:
        break;
    }
    gauss_row(t->stream, r, t->scale, n, out);
    const mk_bigram *b = t->bigram;
    if (b && r < b->n_vocab && b->pos_of[r] >= 0) {
        /* every t with (a*t + 1) mod m == j, i.e. t == a_inv * (j - 1) (mod m) */
        int64_t j = b->pos_of[r];
        int64_t t0 =
            (int64_t)((uint64_t)((j - 1 + b->m) % b->m) * (uint64_t)b->a_inv % (uint64_t)b->m);
        float *other = tmp;
        for (int64_t tok = t0; tok < b->n_vocab; tok += b->m) {
            gauss_row(b->embd_stream, tok, 1.0f, n, other);
            for (int64_t i = 0; i < n; i++)
                out[i] += b->scale * other[i];
        }
    }
}

sw_status mk_convert_row(sw_type type, const float *src, void *dst, int64_t n, sw_err *err) {
    switch (type) {
    case SW_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return SW_OK;
    case SW_TYPE_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = sw_f32_to_f16(src[i]);
        return SW_OK;
    }
    case SW_TYPE_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = sw_f32_to_bf16(src[i]);
        return SW_OK;
    }
    default:
        return sw_quantize_row(type, src, dst, n, err);
    }
}

void mk_scratch_free(mk_scratch *s) {
    if (!s) return;
    free(s->row);
    free(s->row2);
    free(s->qrow);
    memset(s, 0, sizeof *s);
}

sw_status mk_scratch_reserve(mk_scratch *s, int64_t n, size_t qbytes, sw_err *err) {
    size_t need = (size_t)n * sizeof(float);
    if (need > s->row_cap) {
        float *p = realloc(s->row, need);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "row buffer of %zu bytes", need);
        s->row = p;
        p = realloc(s->row2, need);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "row buffer of %zu bytes", need);
        s->row2 = p;
        s->row_cap = need;
    }
    if (qbytes > s->qrow_cap) {
        uint8_t *p = realloc(s->qrow, qbytes);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "row buffer of %zu bytes", qbytes);
        s->qrow = p;
        s->qrow_cap = qbytes;
    }
    return SW_OK;
}

/* Produce row r of t in its output type into dst (t->row_bytes bytes). */
static sw_status make_row(const mk_tensor *t, mk_scratch *sc, int64_t r, void *dst, sw_err *err) {
    mk_gen_row(t, r, sc->row, sc->row2);
    sw_status st = mk_convert_row(t->type, sc->row, dst, t->ne[0], err);
    if (st != SW_OK) return sw_err_wrap(err, st, "%s: row %lld", t->name, (long long)r);
    return SW_OK;
}

/* A worker's share of whole rows [r0, r1), written at out (row r0). */
typedef struct mk_job {
    const mk_tensor *t;
    mk_scratch *sc;
    int64_t r0, r1;
    uint8_t *out;
    sw_status st;
    sw_err err;
} mk_job;

static void *mk_job_run(void *arg) {
    mk_job *j = arg;
    j->st = SW_OK;
    for (int64_t r = j->r0; r < j->r1 && j->st == SW_OK; r++)
        j->st = make_row(j->t, j->sc, r, j->out + (size_t)(r - j->r0) * j->t->row_bytes, &j->err);
    return NULL;
}

/* Rows [r0, r0 + n) into out, spread over the tensor's workers. The rows are
 * independent (own PRNG streams), so the bytes do not depend on the split. */
static sw_status make_rows(mk_tensor *t, int64_t r0, int64_t n, uint8_t *out, sw_err *err) {
    int nt = t->n_threads > 1 && n >= 2 * (int64_t)t->n_threads ? t->n_threads : 1;
    mk_job jobs[MK_MAX_THREADS];
    pthread_t tid[MK_MAX_THREADS];
    bool started[MK_MAX_THREADS] = {false};
    for (int i = 0; i < nt; i++) {
        int64_t a = r0 + n * i / nt, b = r0 + n * (i + 1) / nt;
        jobs[i] = (mk_job){.t = t,
                           .sc = &t->scratch[i],
                           .r0 = a,
                           .r1 = b,
                           .out = out + (size_t)(a - r0) * t->row_bytes};
        jobs[i].err.msg[0] = '\0';
        sw_status st = mk_scratch_reserve(jobs[i].sc, t->ne[0], t->row_bytes, err);
        if (st != SW_OK) return st; /* nothing started yet */
    }
    for (int i = 1; i < nt; i++)
        started[i] = pthread_create(&tid[i], NULL, mk_job_run, &jobs[i]) == 0;
    mk_job_run(&jobs[0]);
    for (int i = 1; i < nt; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            mk_job_run(&jobs[i]); /* could not start a thread: do its share here */
    }
    for (int i = 0; i < nt; i++) {
        if (jobs[i].st != SW_OK) {
            if (err) *err = jobs[i].err;
            return jobs[i].st;
        }
    }
    return SW_OK;
}

sw_status mk_fill(void *ctx, void *dst, size_t nbytes, sw_err *err) {
    mk_tensor *t = ctx;
    uint8_t *out = dst;
    const int64_t n_rows = t->n_dims > 1 ? t->ne[1] : 1;
    const uint64_t total = (uint64_t)t->row_bytes * (uint64_t)n_rows;
    if (t->pos == 0) t->t_start = sw_time_s();
    if (t->pos == 0 && t->verbose) {
        fprintf(stderr, "[%3d/%d] %-28s %-5s [%lld", t->index, t->count, t->name,
                sw_type_name(t->type), (long long)t->ne[0]);
        if (t->n_dims > 1) fprintf(stderr, ", %lld", (long long)t->ne[1]);
        fprintf(stderr, "] %.2f MiB\n", (double)total / (1024.0 * 1024.0));
    }
    if (t->pos + nbytes > total)
        return sw_err_set(err, SW_E_INTERNAL,
                          "%s: writer asked for %zu bytes at offset %llu of %llu", t->name, nbytes,
                          (unsigned long long)t->pos, (unsigned long long)total);
    sw_status st = mk_scratch_reserve(&t->scratch[0], t->ne[0], t->row_bytes, err);
    if (st != SW_OK) return st;
    while (nbytes > 0) {
        int64_t r = (int64_t)(t->pos / t->row_bytes);
        size_t off = (size_t)(t->pos % t->row_bytes);
        size_t n;
        if (off == 0 && nbytes >= t->row_bytes) {
            /* whole rows: convert straight into the writer's buffer */
            int64_t rows = (int64_t)(nbytes / t->row_bytes);
            n = (size_t)rows * t->row_bytes;
            if ((st = make_rows(t, r, rows, out, err)) != SW_OK) return st;
        } else {
            /* the writer split a row: build it aside and copy the part asked for */
            n = SW_MIN(t->row_bytes - off, nbytes);
            if ((st = make_row(t, &t->scratch[0], r, t->scratch[0].qrow, err)) != SW_OK) return st;
            memcpy(out, t->scratch[0].qrow + off, n);
        }
        out += n;
        nbytes -= n;
        t->pos += n;
    }
    return SW_OK;
}

/* ---- bigram structure of output.weight ---- */

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Inverse of a modulo m (gcd(a, m) == 1), by the extended Euclidean algorithm. */
static int64_t inv_mod(int64_t a, int64_t m) {
    int64_t r0 = m, r1 = a % m, s0 = 0, s1 = 1;
    while (r1) {
        int64_t q = r0 / r1, t;
        t = r0 - q * r1, r0 = r1, r1 = t;
        t = s0 - q * s1, s0 = s1, s1 = t;
    }
    return ((s0 % m) + m) % m;
}

sw_status mk_bigram_init(mk_bigram *b, const bool *is_target, int64_t n_vocab, float scale,
                         uint64_t embd_stream, sw_err *err) {
    memset(b, 0, sizeof *b);
    b->targets = malloc((size_t)n_vocab * sizeof *b->targets);
    b->pos_of = malloc((size_t)n_vocab * sizeof *b->pos_of);
    if (!b->targets || !b->pos_of) {
        mk_bigram_free(b);
        return sw_err_set(err, SW_E_NOMEM, "bigram tables for %lld tokens", (long long)n_vocab);
    }
    for (int64_t v = 0; v < n_vocab; v++) {
        b->pos_of[v] = -1;
        if (is_target[v]) {
            b->pos_of[v] = (int32_t)b->m;
            b->targets[b->m++] = (int32_t)v;
        }
    }
    if (b->m == 0) {
        mk_bigram_free(b);
        return sw_err_set(err, SW_E_INVALID_ARG, "vocabulary has no ordinary tokens");
    }
    b->scale = scale;
    b->embd_stream = embd_stream;
    b->n_vocab = n_vocab;
    /* a large prime-ish multiplier scatters neighbouring ids; bump until coprime */
    b->a = 7919 % b->m;
    if (b->a == 0) b->a = 1;
    while (gcd64(b->a, b->m) != 1)
        b->a++;
    b->a_inv = inv_mod(b->a, b->m);
    return SW_OK;
}

void mk_bigram_free(mk_bigram *b) {
    if (!b) return;
    free(b->targets);
    free(b->pos_of);
    b->targets = NULL;
    b->pos_of = NULL;
}

int64_t mk_bigram_next(const mk_bigram *b, int64_t t) {
    return b->targets[(int64_t)(((uint64_t)b->a * (uint64_t)t + 1) % (uint64_t)b->m)];
}
