/* sampler.c — token sampling from a logit vector.
 *
 * Pipeline, in llama.cpp's order:
 *   penalties (repetition, presence, frequency over the last repeat_last_n tokens)
 *   -> top-k -> top-p -> min-p -> temperature -> draw from the seeded RNG.
 * temperature <= 0 is greedy: the argmax of the penalised logits, ties to the lowest id.
 *
 * Every comparison between candidates uses one total order (logit descending, then
 * id ascending), so the kept sets and the draw do not depend on how the selection
 * algorithm happens to visit elements: same seed + same inputs -> same token.
 *
 * The reported logprob/entropy/top-n describe the RAW model distribution
 * (log_softmax of the logits as given), which is what the confidence monitor and
 * OpenAI's logprobs mean, independent of the sampling settings.
 *
 * Cost for a 128k vocabulary: two O(V) passes (raw statistics, penalised copy) plus
 * an O(V) quickselect for top-k; a full sort happens only for top-p without top-k,
 * and then incrementally (only as many of the best tokens as the nucleus needs). */
#include "sampler.h"

#include "logits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct sw_sampler {
    sw_sampler_params p;
    int32_t n_vocab;
    uint64_t rng[4]; /* xoshiro256** state */

    /* Penalty history: a ring of the last repeat_last_n accepted tokens (a growing
     * array when repeat_last_n == -1) and per-token counts inside that window. */
    int32_t *hist;
    size_t hist_cap, hist_head, hist_len;
    int32_t *counts; /* [n_vocab] */

    sw_logit_bias *bias; /* own copy of p.logit_bias (p.logit_bias points here) */
    cand *cands; /* [n_vocab] scratch, reused by every sample call */
};

/* ---- RNG: xoshiro256** seeded through splitmix64 (public-domain algorithms by
 * Blackman & Vigna); pure integer arithmetic, so identical on every platform. ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---- params ------------------------------------------------------------------ */

void sw_sampler_params_default(sw_sampler_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->seed = 0;
    p->n_top_logprobs = 0;
}

static sw_status check_params(const sw_sampler_params *p, int32_t n_vocab, sw_err *err) {
    if (n_vocab <= 0)
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: n_vocab %d must be > 0", (int)n_vocab);
    if (isnan(p->temperature))
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: temperature is NaN");
    if (!(p->top_p >= 0.0f))
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: top_p %g must be >= 0 (>= 1: off)",
                          (double)p->top_p);
    if (isnan(p->min_p) || p->min_p > 1.0f)
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: min_p %g must be <= 1 (<= 0: off)",
                          (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "sampler: repeat_penalty %g must be finite and > 0 (1: off)",
                          (double)p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "sampler: repeat_last_n %d must be >= -1 (-1: whole history, 0: off)",
                          (int)p->repeat_last_n);
    if (!isfinite(p->presence_penalty))
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: presence_penalty %g is not finite",
                          (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: frequency_penalty %g is not finite",
                          (double)p->frequency_penalty);
    if (p->n_top_logprobs < 0 || p->n_top_logprobs > SW_MAX_TOP_LOGPROBS)
        return sw_err_set(err, SW_E_INVALID_ARG, "sampler: n_top_logprobs %d must be in 0..%d",
                          (int)p->n_top_logprobs, SW_MAX_TOP_LOGPROBS);
    if (p->n_logit_bias < 0 || p->n_logit_bias > SW_MAX_LOGIT_BIAS ||
        (p->n_logit_bias > 0 && !p->logit_bias))
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "sampler: n_logit_bias %d must be in 0..%d, with the entries given",
                          (int)p->n_logit_bias, SW_MAX_LOGIT_BIAS);
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const sw_logit_bias *b = &p->logit_bias[i];
        if (b->id < 0 || b->id >= n_vocab)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "sampler: logit_bias token id %d is outside the vocabulary (0..%d)",
                              (int)b->id, (int)n_vocab - 1);
        if (!(b->bias >= -100.0f && b->bias <= 100.0f))
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "sampler: logit_bias of token %d is %g; must be in [-100, 100]",
                              (int)b->id, (double)b->bias);
    }
    return SW_OK;
}

/* ---- create / free / history ------------------------------------------------- */

sw_status sw_sampler_create(const sw_sampler_params *p, int32_t n_vocab, sw_sampler **out,
                            sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_sampler_create: out is NULL");
    *out = NULL;
    if (!p) return sw_err_set(err, SW_E_INVALID_ARG, "sw_sampler_create: params is NULL");
    sw_status st = check_params(p, n_vocab, err);
    if (st != SW_OK) return st;

    sw_sampler *s = calloc(1, sizeof *s);
    if (!s) return sw_err_set(err, SW_E_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->p.logit_bias = NULL;
    if (p->n_logit_bias > 0 && (s->bias = malloc((size_t)p->n_logit_bias * sizeof *s->bias))) {
        memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
        s->p.logit_bias = s->bias;
    }
    if (p->repeat_last_n != 0) {
        s->hist_cap = p->repeat_last_n > 0 ? (size_t)p->repeat_last_n : 256;
        s->hist = malloc(s->hist_cap * sizeof *s->hist);
    }
    if (!s->counts || !s->cands || (p->repeat_last_n != 0 && !s->hist) ||
        (p->n_logit_bias > 0 && !s->bias)) {
        sw_sampler_free(s);
        return sw_err_set(err, SW_E_NOMEM, "sampler: out of memory for n_vocab %d",
                          (int)n_vocab);
    }
    rng_seed(s->rng, p->seed);
    *out = s;
    return SW_OK;
}

void sw_sampler_free(sw_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->counts);
    free(s->cands);
    free(s->bias);
    free(s);
}

void sw_sampler_reset(sw_sampler *s) {
    if (!s) return;
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->hist_head = s->hist_len = 0;
    rng_seed(s->rng, s->p.seed);
}

/* Unbounded history (repeat_last_n == -1): double the ring, unrolled oldest-first.
 * Returns false on OOM, in which case the caller evicts as for a fixed window:
 * sw_sampler_accept returns void, so degrading beats losing the new token. */
static bool hist_grow(sw_sampler *s) {
    if (s->hist_cap > SIZE_MAX / 2 / sizeof *s->hist) return false;
    size_t ncap = s->hist_cap * 2;
    int32_t *nh = malloc(ncap * sizeof *nh);
    if (!nh) return false;
    for (size_t i = 0; i < s->hist_len; i++) nh[i] = s->hist[(s->hist_head + i) % s->hist_cap];
    free(s->hist);
    s->hist = nh;
    s->hist_cap = ncap;
    s->hist_head = 0;
    return true;
}

/* Ids outside [0, n_vocab) cannot be penalised and are ignored. */
void sw_sampler_accept(sw_sampler *s, int32_t id) {
    if (!s || !s->hist || id < 0 || id >= s->n_vocab) return;
    if (s->hist_len == s->hist_cap && !(s->p.repeat_last_n < 0 && hist_grow(s))) {
        s->counts[s->hist[s->hist_head]]--; /* evict the oldest */
        s->hist_head = (s->hist_head + 1) % s->hist_cap;
        s->hist_len--;
    }
    s->hist[(s->hist_head + s->hist_len) % s->hist_cap] = id;
    s->hist_len++;
    s->counts[id]++;
}

/* ---- candidate ordering and selection -------------------------------------- */

/* The total order used everywhere: a before b when its logit is larger, or equal
 * with a smaller id. */
static inline bool before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static inline void swap_c(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Small k: one pass keeping the best k seen in a heap whose root is the worst of
 * them; almost every token is rejected by a single compare against the root, so
 * this is O(n) in practice and O(n log k) at worst. Leaves the k best in c[0..k). */
static void heap_sift(cand *h, size_t k, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && before(&h[w], &h[l])) w = l; /* the root holds the LAST in order */
        if (r < k && before(&h[w], &h[r])) w = r;
        if (w == i) return;
        swap_c(&h[i], &h[w]);
        i = w;
    }
}

static void select_top_heap(cand *c, size_t n, size_t k) {
    for (size_t i = k / 2; i-- > 0;) heap_sift(c, k, i);
    for (size_t i = k; i < n; i++) {
        if (!before(&c[i], &c[0])) continue;
        swap_c(&c[0], &c[i]);
        heap_sift(c, k, 0);
    }
}

/* Rearrange c[0..n) so that the k first elements (in the total order) occupy
 * c[0..k), unordered. Quickselect with median-of-three; after too many rounds it
 * falls back to sorting the remaining range, bounding the worst case at O(n log n). */
static void select_top(cand *c, size_t n, size_t k) {
    if (k == 0 || k >= n) return;
    if (k <= 256) {
        select_top_heap(c, n, k);
        return;
    }
    size_t lo = 0, hi = n; /* the k-th boundary lies in [lo, hi) */
    int budget = 2 * 64;
    while (hi - lo > 16) {
        if (budget-- == 0) break;
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (before(&c[mid], &c[lo])) swap_c(&c[mid], &c[lo]);
        if (before(&c[last], &c[lo])) swap_c(&c[last], &c[lo]);
        if (before(&c[last], &c[mid])) swap_c(&c[last], &c[mid]);
        /* median now at mid: move it to last-1 as the pivot (lo <= it <= last) */
        swap_c(&c[mid], &c[last]);
        cand piv = c[last];
        size_t store = lo;
        for (size_t i = lo; i < last; i++)
            if (before(&c[i], &piv)) swap_c(&c[i], &c[store++]);
        swap_c(&c[store], &c[last]);
        /* c[lo..store) before pivot, c[store] pivot, c(store..hi) after */
        if (store == k || store + 1 == k) return;
        if (store > k) hi = store;
        else lo = store + 1;
    }
    qsort(c + lo, hi - lo, sizeof *c, cmp_cand);
}

/* ---- raw distribution statistics --------------------------------------------- */

/* Entropy and top-n of the raw distribution into out, from a row's statistics
 * and its best tokens (ids[0..n_top), raw logits tl[0..n_top)). */
static void fill_raw(const sw_logits_stats *st, const int32_t *ids, const float *tl, int32_t n_top,
                     sw_token_info *out) {
    out->entropy = st->entropy;
    out->n_top = n_top;
    for (int32_t j = 0; j < n_top; j++) {
        out->top_ids[j] = ids[j];
        out->top_logprobs[j] = (float)((double)tl[j] - st->log_z);
    }
}

/* log Z, entropy and top-n of softmax(logits) (runtime/logits.c, which the
 * backends' host summary shares). Logits must be finite or -inf. */
static sw_status raw_stats(const float *logits, int32_t n, int32_t n_top, sw_token_info *out,
                           double *log_z, sw_err *err) {
    sw_logits_stats st;
    int32_t ids[SW_MAX_TOP_LOGPROBS];
    float tl[SW_MAX_TOP_LOGPROBS];
    int32_t k = n_top < n ? n_top : n;
    sw_logits_row_stats(logits, n, k, &st, ids, tl);
    if (st.n_nan > 0 || st.max == INFINITY) {
        for (int32_t i = 0; i < n; i++)
            if (isnan(logits[i]) || logits[i] == INFINITY)
                return sw_err_set(err, SW_E_INVALID_ARG, "sampler: logit[%d] is %s", (int)i,
                                  isnan(logits[i]) ? "NaN" : "+inf");
    }
    if (st.max == -INFINITY)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "sampler: all %d logits are -inf; nothing can be sampled", (int)n);
    *log_z = st.log_z;
    fill_raw(&st, ids, tl, k, out);
    return SW_OK;
}

/* ---- pipeline stages --------------------------------------------------------- */

/* Whether the penalties change any logit this draw. */
static bool penalties_on(const sw_sampler *s) {
    const sw_sampler_params *p = &s->p;
    return s->hist_len > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
                               p->frequency_penalty != 0.0f);
}

/* The penalties of a token seen cnt > 0 times in the window. */
static inline float penalise(const sw_sampler_params *p, float l, int32_t cnt) {
    /* llama.cpp: shrink the logit towards "less likely" whatever its sign */
    if (l > 0.0f) l /= p->repeat_penalty;
    else if (l < 0.0f) l *= p->repeat_penalty;
    /* OpenAI: subtract presence once and frequency per occurrence */
    return l - ((float)cnt * p->frequency_penalty + p->presence_penalty);
}

/* The logit bias of one entry, added in list order (a ban is -inf and stays so). */
static inline float bias_one(const sw_logit_bias *b, float l) {
    return b->bias <= SW_LOGIT_BIAS_BAN ? -INFINITY : l + b->bias;
}

/* Copy logits into candidates (-inf where allow says no) with the logit bias
 * added (as llama.cpp, before the penalties), then apply the penalties to
 * tokens seen in the window. */
static void fill_penalised(const sw_sampler *s, const float *logits, const uint8_t *allow) {
    const sw_sampler_params *p = &s->p;
    for (int32_t i = 0; i < s->n_vocab; i++)
        s->cands[i] = (cand){i, logits[i]};
    if (allow)
        for (int32_t i = 0; i < s->n_vocab; i++)
            if (!allow[i]) s->cands[i].logit = -INFINITY;
    for (int32_t k = 0; k < p->n_logit_bias; k++) {
        const sw_logit_bias *b = &p->logit_bias[k];
        s->cands[b->id].logit = bias_one(b, s->cands[b->id].logit);
    }
    if (!penalties_on(s)) return;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (s->counts[i] > 0) s->cands[i].logit = penalise(p, s->cands[i].logit, s->counts[i]);
}

/* Keep the smallest prefix (in the total order) whose probability reaches top_p,
 * at least one token. Sorts only as much of c as needed: the best `done` are
 * sorted, more are selected and sorted in growing chunks. Returns the new size
 * and leaves c[0..ret) sorted. */
static size_t apply_top_p(cand *c, size_t n, size_t sorted, double top_p) {
    /* softmax denominator of the current candidates (temperature 1, as llama.cpp) */
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    if (m == -INFINITY) return n; /* penalties overflowed everything: nothing to rank */
    double z = 0.0;
    for (size_t i = 0; i < n; i++) z += (double)sw_exp_neg(c[i].logit - m);
    double target = top_p * z, cum = 0.0;
    size_t done = 0, chunk = 256;
    for (;;) {
        if (done == sorted) { /* extend the sorted prefix */
            size_t want = sorted + chunk < n ? sorted + chunk : n;
            select_top(c + sorted, n - sorted, want - sorted);
            qsort(c + sorted, want - sorted, sizeof *c, cmp_cand);
            sorted = want;
            chunk *= 4;
        }
        cum += (double)sw_exp_neg(c[done].logit - m);
        done++;
        if (cum >= target || done == n) return done;
    }
}

/* Keep tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p); stable. */
static size_t apply_min_p(cand *c, size_t n, double min_p) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    if (m == -INFINITY) return n;
    double thr = (double)m + log(min_p);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if ((double)c[i].logit >= thr) c[w++] = c[i];
    return w ? w : 1; /* unreachable in practice: the max always passes */
}

/* Draw from softmax(logit / temp) over c[0..n). */
static int32_t draw(sw_sampler *s, const cand *c, size_t n, double temp) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    if (m == -INFINITY) return c[0].id; /* every weight is 0: no distribution to draw from */
    float inv_t = (float)(1.0 / temp);
    double z = 0.0;
    for (size_t i = 0; i < n; i++) z += (double)sw_exp_neg((c[i].logit - m) * inv_t);
    double u = rng_uniform(s->rng) * z, cum = 0.0;
    int32_t last_ok = c[0].id;
    for (size_t i = 0; i < n; i++) {
        double w = (double)sw_exp_neg((c[i].logit - m) * inv_t);
        if (w > 0.0) last_ok = c[i].id;
        cum += w;
        if (u < cum) return c[i].id;
    }
    return last_ok; /* rounding pushed u past the total: take the last live candidate */
}

sw_status sw_sampler_sample(sw_sampler *s, const float *logits, sw_token_info *out, sw_err *err) {
    return sw_sampler_sample_masked(s, logits, NULL, out, err);
}

/* The candidates left after top-k, top-p and min-p (sorted when any ran), or
 * the argmax alone when greedy. Returns how many, at the front of c. */
static size_t truncate_cands(const sw_sampler_params *p, cand *c, size_t n) {
    if (p->temperature <= 0.0f) {
        size_t best = 0; /* strict '>' over rising ids: ties keep the lowest id */
        for (size_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        c[0] = c[best];
        return 1;
    }
    size_t sorted = 0;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        select_top(c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        qsort(c, n, sizeof *c, cmp_cand);
        sorted = n;
    }
    if (p->top_p < 1.0f) n = apply_top_p(c, n, sorted, (double)p->top_p);
    if (p->min_p > 0.0f) n = apply_min_p(c, n, (double)p->min_p);
    return n;
}

/* truncate_first: truncate over the whole vocabulary, then keep the allowed
 * candidates (if none is left, fall back to masking first). */
static sw_status sample_impl(sw_sampler *s, const float *logits, const uint8_t *allow,
                             bool truncate_first, sw_token_info *out, sw_err *err) {
    if (!s || !logits || !out)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_sampler_sample: NULL argument");
    const sw_sampler_params *p = &s->p;
    memset(out, 0, sizeof *out);
    double log_z = 0.0;
    sw_status st = raw_stats(logits, s->n_vocab, p->n_top_logprobs, out, &log_z, err);
    if (st != SW_OK) return st;
    cand *c = s->cands;
    int32_t id = -1;
    if (truncate_first && allow) {
        fill_penalised(s, logits, NULL);
        size_t n = truncate_cands(p, c, (size_t)s->n_vocab), k = 0;
        for (size_t i = 0; i < n; i++)
            if (allow[c[i].id] && c[i].logit != -INFINITY) c[k++] = c[i];
        if (k > 0) id = p->temperature <= 0.0f ? c[0].id : draw(s, c, k, (double)p->temperature);
    }
    if (id < 0) {
        fill_penalised(s, logits, allow);
        size_t n = (size_t)s->n_vocab;
        if (allow || p->n_logit_bias > 0) {
            /* a mask or bans may leave nothing: say so rather than pick a dead token */
            size_t live = 0;
            while (live < n && c[live].logit == -INFINITY) live++;
            if (live == n)
                return sw_err_set(err, SW_E_INVALID_ARG,
                                  "sampler: no token is left to sample (every one is masked or "
                                  "banned)");
        }
        n = truncate_cands(p, c, n);
        id = p->temperature <= 0.0f ? c[0].id : draw(s, c, n, (double)p->temperature);
    }
    out->id = id;
    out->logprob = (logits[id] == -INFINITY) ? -INFINITY : (float)((double)logits[id] - log_z);
    return SW_OK;
}

sw_status sw_sampler_sample_masked(sw_sampler *s, const float *logits, const uint8_t *allow,
                                   sw_token_info *out, sw_err *err) {
    return sample_impl(s, logits, allow, false, out, err);
}

sw_status sw_sampler_sample_allowed(sw_sampler *s, const float *logits, const uint8_t *allow,
                                    sw_token_info *out, sw_err *err) {
    return sample_impl(s, logits, allow, true, out, err);
}

/* ---- sampling from a logits summary -------------------------------------------- */

/* Whether the bias or the penalties could raise some token's logit: then a
 * token outside any top-k summary could win, and only the full row decides. */
static bool may_raise(const sw_sampler *s) {
    const sw_sampler_params *p = &s->p;
    if (p->repeat_last_n != 0 && (p->repeat_penalty < 1.0f || p->presence_penalty < 0.0f ||
                                  p->frequency_penalty < 0.0f))
        return true;
    for (int32_t i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].bias > 0.0f) return true;
    return false;
}

static bool top_k_on(const sw_sampler *s) {
    return s->p.top_k > 0 && s->p.top_k < s->n_vocab;
}

/* Whether bias or penalties change any logit of the next draw. */
static bool transforms_on(const sw_sampler *s) {
    return s->p.n_logit_bias > 0 || penalties_on(s);
}

bool sw_sampler_needs_full_logits(const sw_sampler *s) {
    if (!s) return true;
    const sw_sampler_params *p = &s->p;
    if (may_raise(s)) return true;
    if (p->temperature <= 0.0f) return false;
    if (top_k_on(s)) return p->top_k > SW_SAMPLER_SUMMARY_MAX_K - SW_SAMPLER_SUMMARY_SLACK;
    /* no top-k: the nucleus / min-p cut needs the untransformed normaliser, and
     * a plain temperature draw weighs every token */
    return transforms_on(s) || (p->top_p >= 1.0f && p->min_p <= 0.0f);
}

int32_t sw_sampler_summary_k(const sw_sampler *s) {
    const sw_sampler_params *p = &s->p;
    int32_t k = SW_MAX(p->n_top_logprobs, 1);
    if (p->temperature > 0.0f) k = SW_MAX(k, top_k_on(s) ? p->top_k : SW_SAMPLER_SUMMARY_NUCLEUS);
    if (transforms_on(s)) k += SW_SAMPLER_SUMMARY_SLACK;
    return SW_MIN(k, SW_SAMPLER_SUMMARY_MAX_K);
}

static int cmp_id(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

/* The candidates after top-p / min-p without top-k (untransformed logits,
 * c sorted in the total order, every token outside them at or below `bound`),
 * as sample_masked would leave them; 0 when the summary cannot tell. */
static size_t cut_untruncated(const sw_sampler *s, const sw_logits_stats *st, cand *c, size_t k,
                              bool all, float bound) {
    const sw_sampler_params *p = &s->p;
    size_t n = k;
    bool sorted = true;
    if (p->top_p < 1.0f) {
        /* apply_top_p over the whole vocabulary: its normaliser is sum_exp,
         * summed in the same order from the same terms */
        double target = (double)p->top_p * st->sum_exp, cum = 0.0;
        size_t done = 0;
        for (;;) {
            if (done == k) return 0; /* the nucleus reaches past the summary */
            cum += (double)sw_exp_neg(c[done].logit - st->max);
            done++;
            if (cum >= target || (all && done == k)) break;
        }
        n = done;
    } else if (p->min_p > 0.0f) {
        /* min-p over the whole vocabulary keeps index order */
        double thr = (double)st->max + log((double)p->min_p);
        if (!all && !((double)bound < thr)) return 0;
        sorted = false;
    }
    if (p->min_p > 0.0f) n = apply_min_p(c, n, (double)p->min_p);
    if (!sorted) qsort(c, n, sizeof *c, cmp_id);
    return n;
}

sw_status sw_sampler_sample_summary(sw_sampler *s, const sw_logits_stats *st,
                                    const int32_t *ids, const float *logits, int32_t k,
                                    sw_token_info *out, sw_err *err) {
    if (!s || !st || !out || k < 1 || !ids || !logits)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_sampler_sample_summary: bad argument");
    const sw_sampler_params *p = &s->p;
#define UNDECIDED() \
    sw_err_set(err, SW_E_RANGE, "sampler: the %d-token summary cannot decide this draw", (int)k)
    /* a NaN or +inf row, or an all -inf one: the full row gives the error */
    if (st->n_nan > 0 || !isfinite(st->max) || may_raise(s)) return UNDECIDED();
    const bool all = k >= s->n_vocab;
    if (all) k = s->n_vocab;
    if (k < SW_MIN(p->n_top_logprobs, s->n_vocab)) return UNDECIDED();
    /* every token outside the summary has a raw logit <= bound, hence (no
     * transformation raises one) a transformed logit <= bound too; one equal
     * to it has a larger id than the last candidate (the total order) */
    const float bound = all ? -INFINITY : logits[k - 1];
#define BEATS_OUTSIDE(x) \
    (all || (x).logit > bound || ((x).logit == bound && (x).id <= ids[k - 1]))
    cand *c = s->cands;
    for (int32_t i = 0; i < k; i++) c[i] = (cand){ids[i], logits[i]};
    const bool tr = transforms_on(s);
    if (tr) {
        for (int32_t b = 0; b < p->n_logit_bias; b++)
            for (int32_t i = 0; i < k; i++)
                if (c[i].id == p->logit_bias[b].id) c[i].logit = bias_one(&p->logit_bias[b], c[i].logit);
        if (penalties_on(s))
            for (int32_t i = 0; i < k; i++)
                if (s->counts[c[i].id] > 0) c[i].logit = penalise(p, c[i].logit, s->counts[c[i].id]);
    }
    size_t n;
    if (p->temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < (size_t)k; i++)
            if (before(&c[i], &c[best])) best = i;
        if (c[best].logit == -INFINITY || !BEATS_OUTSIDE(c[best])) return UNDECIDED();
        c[0] = c[best];
        n = 1;
    } else if (top_k_on(s)) {
        if (tr) qsort(c, (size_t)k, sizeof *c, cmp_cand);
        size_t tk = (size_t)p->top_k;
        if (tk > (size_t)k || c[tk - 1].logit == -INFINITY || !BEATS_OUTSIDE(c[tk - 1]))
            return UNDECIDED();
        n = tk;
        if (p->top_p < 1.0f) n = apply_top_p(c, n, n, (double)p->top_p);
        if (p->min_p > 0.0f) n = apply_min_p(c, n, (double)p->min_p);
    } else {
        if (tr || (p->top_p >= 1.0f && p->min_p <= 0.0f)) return UNDECIDED();
        if (!(n = cut_untruncated(s, st, c, (size_t)k, all, bound))) return UNDECIDED();
    }
#undef UNDECIDED
#undef BEATS_OUTSIDE
    memset(out, 0, sizeof *out);
    fill_raw(st, ids, logits, SW_MIN(p->n_top_logprobs, s->n_vocab), out);
    int32_t id = n == 1 && p->temperature <= 0.0f ? c[0].id : draw(s, c, n, (double)p->temperature);
    float raw = -INFINITY;
    for (int32_t i = 0; i < k; i++)
        if (ids[i] == id) raw = logits[i];
    out->id = id;
    out->logprob = raw == -INFINITY ? -INFINITY : (float)((double)raw - st->log_z);
    return SW_OK;
}
