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
    float *wbuf; /* [n_vocab] scratch: exp(logit - max) of the raw logits */
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
    s->wbuf = malloc((size_t)n_vocab * sizeof *s->wbuf);
    s->p.logit_bias = NULL;
    if (p->n_logit_bias > 0 && (s->bias = malloc((size_t)p->n_logit_bias * sizeof *s->bias))) {
        memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
        s->p.logit_bias = s->bias;
    }
    if (p->repeat_last_n != 0) {
        s->hist_cap = p->repeat_last_n > 0 ? (size_t)p->repeat_last_n : 256;
        s->hist = malloc(s->hist_cap * sizeof *s->hist);
    }
    if (!s->counts || !s->cands || !s->wbuf || (p->repeat_last_n != 0 && !s->hist) ||
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
    free(s->wbuf);
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

/* ---- exp ------------------------------------------------------------------------ */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* exp(x) for x <= 0, within ~2 ulp of the true value. Our own rather than libm's
 * so that (a) the loops over a 128k vocabulary vectorise (no calls, no branches)
 * and (b) weights, hence sampled tokens, are bit-identical on every IEEE-754
 * platform. x < -86 (and -inf) gives exactly 0: such a token weighs < 1e-37 of
 * the most likely one. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a
 * degree-7 Taylor polynomial (truncation < 1e-8 relative) scaled by 2^n. */
static inline float exp_neg(float x) {
    /* The clamp is done on the bit pattern: for x <= 0 (sign set), "x < -86" is
     * "bits(x) > bits(-86)" as unsigned, -inf included. Float compares would keep
     * GCC from vectorising under its default -ftrapping-math. */
    const uint32_t lim = 0xC2AC0000u; /* bits of -86.0f */
    const float magic = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
    uint32_t xb = f2u(x);
    uint32_t under = xb > lim && (xb >> 31) ? 0xFFFFFFFFu : 0u;
    float xc = u2f((xb & ~under) | (lim & under));
    float t = xc * 1.44269504f + magic;
    float n = t - magic;
    int32_t ni = (int32_t)(f2u(t) - f2u(magic));
    float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return u2f((f2u(p) + ((uint32_t)ni << 23)) & ~under);
}

/* ---- raw distribution statistics --------------------------------------------- */

/* log Z, entropy and top-n of softmax(logits). Logits must be finite or -inf.
 * w[n] is scratch. */
static sw_status raw_stats(const float *logits, int32_t n, int32_t n_top, float *w,
                           sw_token_info *out, double *log_z, sw_err *err) {
    float m = -INFINITY;
    bool bad = false;
    for (int32_t i = 0; i < n; i++) {
        float l = logits[i];
        bad |= (l != l) | (l == INFINITY);
        m = l > m ? l : m;
    }
    if (bad) {
        for (int32_t i = 0; i < n; i++)
            if (isnan(logits[i]) || logits[i] == INFINITY)
                return sw_err_set(err, SW_E_INVALID_ARG, "sampler: logit[%d] is %s", (int)i,
                                  isnan(logits[i]) ? "NaN" : "+inf");
    }
    if (m == -INFINITY)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "sampler: all %d logits are -inf; nothing can be sampled", (int)n);
    /* exp in float (~2 ulp), accumulation in double: log Z and H come out good to
     * ~1e-7 relative even for 128k terms. Zero-weight (masked) tokens are skipped
     * so that 0 * -inf does not poison the entropy sum. */
    for (int32_t i = 0; i < n; i++) w[i] = exp_neg(logits[i] - m);
    double sum = 0.0, sum_el = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (w[i] == 0.0f) continue;
        sum += (double)w[i];
        sum_el += (double)w[i] * (double)(logits[i] - m);
    }
    double lz_rel = log(sum);
    *log_z = (double)m + lz_rel;
    /* H = -sum p log p = log S - (sum e*d)/S, with d = l - m */
    double h = lz_rel - sum_el / sum;
    out->entropy = (float)(h > 0.0 ? h : 0.0);

    /* top-n: a small insertion-sorted list; most logits fail the first compare */
    cand top[SW_MAX_TOP_LOGPROBS];
    int32_t k = n_top < n ? n_top : n, have = 0;
    for (int32_t i = 0; i < n && k > 0; i++) {
        /* ids rise with i, so an equal logit never beats the current k-th */
        if (have == k && logits[i] <= top[k - 1].logit) continue;
        cand c = {i, logits[i]};
        int32_t j = have < k ? have++ : k - 1;
        while (j > 0 && before(&c, &top[j - 1])) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = c;
    }
    out->n_top = k;
    for (int32_t j = 0; j < k; j++) {
        out->top_ids[j] = top[j].id;
        out->top_logprobs[j] = (float)((double)top[j].logit - *log_z);
    }
    return SW_OK;
}

/* ---- pipeline stages --------------------------------------------------------- */

/* Copy logits into candidates (-inf where allow says no) with the logit bias
 * added (as llama.cpp, before the penalties; a ban is -inf and stays so), then
 * apply the penalties to tokens seen in the window. */
static void fill_penalised(const sw_sampler *s, const float *logits, const uint8_t *allow) {
    const sw_sampler_params *p = &s->p;
    for (int32_t i = 0; i < s->n_vocab; i++)
        s->cands[i] = (cand){i, logits[i]};
    if (allow)
        for (int32_t i = 0; i < s->n_vocab; i++)
            if (!allow[i]) s->cands[i].logit = -INFINITY;
    for (int32_t k = 0; k < p->n_logit_bias; k++) {
        const sw_logit_bias *b = &p->logit_bias[k];
        float *l = &s->cands[b->id].logit;
        *l = b->bias <= SW_LOGIT_BIAS_BAN ? -INFINITY : *l + b->bias;
    }
    bool pen = s->hist_len > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
                                   p->frequency_penalty != 0.0f);
    if (!pen) return;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        int32_t cnt = s->counts[i];
        if (cnt <= 0) continue;
        float l = s->cands[i].logit;
        /* llama.cpp: shrink the logit towards "less likely" whatever its sign */
        if (l > 0.0f) l /= p->repeat_penalty;
        else if (l < 0.0f) l *= p->repeat_penalty;
        /* OpenAI: subtract presence once and frequency per occurrence */
        l -= (float)cnt * p->frequency_penalty + p->presence_penalty;
        s->cands[i].logit = l;
    }
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
    for (size_t i = 0; i < n; i++) z += (double)exp_neg(c[i].logit - m);
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
        cum += (double)exp_neg(c[done].logit - m);
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
    for (size_t i = 0; i < n; i++) z += (double)exp_neg((c[i].logit - m) * inv_t);
    double u = rng_uniform(s->rng) * z, cum = 0.0;
    int32_t last_ok = c[0].id;
    for (size_t i = 0; i < n; i++) {
        double w = (double)exp_neg((c[i].logit - m) * inv_t);
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
    sw_status st = raw_stats(logits, s->n_vocab, p->n_top_logprobs, s->wbuf, out, &log_z, err);
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
