/* grammar.c — the matcher and the vocabulary mask (see grammar.h).
 *
 * State: a set of heads. A head is a parse inside a terminal: the position of
 * the terminal in its alternative (pos), the terminal DFA's state (q), and the
 * frame to return to when the alternative ends (parent: a node, or -1 for the
 * bottom). Nodes are hash-consed (pos, parent) pairs, so equal stacks are one
 * node and the heads of a state share their lower frames. A reference in tail
 * position keeps no frame (right recursion runs in constant depth).
 *
 * A byte moves every head whose DFA takes it; a head whose DFA accepts then
 * also ends its terminal: the closure walks on to the next element, entering
 * referenced rules (one new head per alternative's first terminal) and
 * returning through END elements to the parent frames, until every path sits
 * in a terminal or has finished the root (accepting). Depth: a node records the
 * deepest frame its cheapest completion needs (mx); heads and nodes whose mx
 * would pass SW_GRAMMAR_MAX_DEPTH are not made, so every state left can finish.
 *
 * Masks (sw_gmatch_mask): the tokens a head allows are those whose bytes its
 * terminal's DFA reads from q without leaving the terminal (context-free: any
 * such token is allowed, since DFA states are live and the terminal's end
 * always has a way on), plus tokens that end the terminal part-way and go on
 * in what follows. The first set is a bitmap cached per (terminal, q); the
 * cache entry also lists the trie nodes where the terminal can end with bytes
 * left over ("exits"), and only those subtrees are walked with the state the
 * end of the terminal leads to. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

typedef struct gm_head {
    int32_t pos, q, parent;
} gm_head;

typedef struct gm_node {
    int32_t pos, parent, depth, mx;
    int64_t clen; /* fewest bytes to finish this frame and all below it */
} gm_node;

/* generation-stamped hash set of (a, b, c) triples */
typedef struct vset_slot {
    uint32_t gen;
    int32_t a, b, c;
} vset_slot;

struct sw_gmatch {
    sw_grammar *g;
    gm_node *nodes;
    int32_t n_nodes, cap_nodes, live_after_gc;
    int32_t *ht; /* node ids, -1 empty */
    uint32_t ht_mask;
    gm_head *cur;
    int32_t n_cur, cap_cur;
    bool accepting;
    /* scratch */
    gm_head *scr;
    int32_t cap_scr;
    int32_t *work;
    int32_t cap_work;
    vset_slot *vs;
    uint32_t vs_mask, vs_gen;
    int32_t vs_count;
    uint64_t *bits; /* mask bitmap */
    int32_t n_bits_words;
    int32_t *soff; /* [trie depth + 2]: state offsets while walking */
    int32_t cap_soff;
    const char *error;
};

/* ---- vocabulary trie -------------------------------------------------------- */

/* Trie nodes in preorder, one struct each so a walk reads one cache line. */
typedef struct gv_node {
    int32_t end;     /* index after the subtree */
    int32_t tok_off; /* the node's tokens: toks[tok_off .. next node's tok_off) */
    uint16_t depth;  /* 1 = a child of the root */
    uint8_t byte;
} gv_node;

struct sw_gvocab {
    int32_t n_vocab, n_nodes, max_depth;
    gv_node *nd; /* [n_nodes + 1]; the last is a sentinel holding the token count */
    int32_t *toks;
};

static const char *const *g_sort_pieces;
static const uint32_t *g_sort_lens;

static int cmp_piece(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    uint32_t la = g_sort_lens[a], lb = g_sort_lens[b];
    int c = memcmp(g_sort_pieces[a], g_sort_pieces[b], la < lb ? la : lb);
    if (c) return c;
    if (la != lb) return la < lb ? -1 : 1;
    return (a > b) - (a < b);
}

void sw_gvocab_free(sw_gvocab *v) {
    if (!v) return;
    free(v->nd);
    free(v->toks);
    free(v);
}

int32_t sw_gvocab_n(const sw_gvocab *v) {
    return v ? v->n_vocab : 0;
}

sw_status sw_gvocab_create(const char *const *pieces, const uint32_t *lens, int32_t n_vocab,
                           sw_gvocab **out, sw_err *err) {
    static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
    *out = NULL;
    if (n_vocab < 0) return sw_err_set(err, SW_E_INVALID_ARG, "grammar vocabulary: negative size");
    sw_gvocab *v = calloc(1, sizeof *v);
    int32_t *ids = malloc((size_t)(n_vocab ? n_vocab : 1) * sizeof *ids);
    size_t total = 0;
    int32_t n_ids = 0;
    if (!v || !ids) goto nomem;
    v->n_vocab = n_vocab;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (lens[i] == 0) continue;
        if (lens[i] > 65535) {
            free(ids);
            sw_gvocab_free(v);
            return sw_err_set(err, SW_E_INVALID_ARG, "grammar vocabulary: token %d is %u bytes long",
                              i, lens[i]);
        }
        ids[n_ids++] = i;
        total += lens[i];
    }
    pthread_mutex_lock(&sort_mu); /* qsort has no context argument in C11 */
    g_sort_pieces = pieces;
    g_sort_lens = lens;
    qsort(ids, (size_t)n_ids, sizeof *ids, cmp_piece);
    pthread_mutex_unlock(&sort_mu);
    size_t cap = total + 1;
    v->nd = calloc(cap + 1, sizeof *v->nd);
    v->toks = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *v->toks);
    int32_t *stack = malloc((size_t)65537 * sizeof *stack);
    int32_t *node_of = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *node_of);
    if (!v->nd || !v->toks || !stack || !node_of) {
        free(stack);
        free(node_of);
        goto nomem;
    }
    int32_t sp = 0; /* stack[0..sp): the node at each depth of the previous piece */
    int32_t n = 0;
    const uint8_t *prev = NULL;
    uint32_t prev_len = 0;
    for (int32_t k = 0; k < n_ids; k++) {
        int32_t id = ids[k];
        const uint8_t *p = (const uint8_t *)pieces[id];
        uint32_t len = lens[id];
        uint32_t lcp = 0;
        while (prev && lcp < len && lcp < prev_len && p[lcp] == prev[lcp]) lcp++;
        while ((uint32_t)sp > lcp) v->nd[stack[--sp]].end = n;
        for (uint32_t d = lcp; d < len; d++) {
            v->nd[n].byte = p[d];
            v->nd[n].depth = (uint16_t)(d + 1);
            stack[sp++] = n++;
        }
        v->toks[k] = id;
        node_of[k] = stack[sp - 1]; /* non-decreasing: pieces are in trie preorder */
        if ((int32_t)len > v->max_depth) v->max_depth = (int32_t)len;
        prev = p;
        prev_len = len;
    }
    while (sp > 0) v->nd[stack[--sp]].end = n;
    v->n_nodes = n;
    for (int32_t i = 0, k = 0; i <= n; i++) {
        while (k < n_ids && node_of[k] < i) k++;
        v->nd[i].tok_off = k;
    }
    free(stack);
    free(node_of);
    free(ids);
    *out = v;
    return SW_OK;
nomem:
    free(ids);
    sw_gvocab_free(v);
    return sw_err_set(err, SW_E_NOMEM, "grammar vocabulary: out of memory for %d tokens", n_vocab);
}

/* ---- mask cache --------------------------------------------------------------- */

/* Per (terminal, DFA state): the tokens read wholly inside the terminal, and
 * the trie nodes (-1: the root) after which the terminal may end with bytes of
 * the token left. */
typedef struct mc_entry {
    int32_t term, q;
    uint64_t *inside; /* [words] */
    int32_t *exits;
    int32_t n_exits;
} mc_entry;

/* Most bytes one grammar's cache may hold; past it the cache starts over. */
#define MASK_CACHE_MAX_BYTES (64u << 20)

struct sw_gmask_cache {
    pthread_mutex_t mu;
    const sw_gvocab *vocab; /* the entries are for this vocabulary */
    mc_entry **slots;
    uint32_t mask;
    int32_t count;
    size_t bytes;
    uint64_t hits, misses;
    int32_t *qstack; /* [max trie depth + 1] scratch for filling an entry */
    int32_t cap_qstack;
};

sw_gmask_cache *sw_gmask_cache_create(void) {
    sw_gmask_cache *c = calloc(1, sizeof *c);
    if (c) pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void cache_clear(sw_gmask_cache *c) {
    if (c->slots)
        for (uint32_t i = 0; i <= c->mask; i++)
            if (c->slots[i]) {
                free(c->slots[i]->inside);
                free(c->slots[i]->exits);
                free(c->slots[i]);
            }
    free(c->slots);
    c->slots = NULL;
    c->mask = 0;
    c->count = 0;
    c->bytes = 0;
}

void sw_gmask_cache_free(sw_gmask_cache *c) {
    if (!c) return;
    cache_clear(c);
    free(c->qstack);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static uint32_t hash3(int32_t a, int32_t b, int32_t c) {
    uint64_t h = (uint64_t)(uint32_t)a * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)(uint32_t)b * 0xC2B2AE3D27D4EB4Full;
    h ^= (uint64_t)(uint32_t)c * 0x165667B19E3779F9ull;
    h ^= h >> 31;
    h *= 0xD6E8FEB86659FD93ull;
    return (uint32_t)(h ^ (h >> 32));
}

static bool cache_insert(sw_gmask_cache *c, mc_entry *e) {
    if ((uint32_t)(c->count + 1) * 2 > c->mask + 1 || !c->slots) {
        uint32_t nm = c->slots ? 2 * (c->mask + 1) - 1 : 255;
        mc_entry **ns = calloc((size_t)nm + 1, sizeof *ns);
        if (!ns) return false;
        if (c->slots)
            for (uint32_t i = 0; i <= c->mask; i++)
                if (c->slots[i]) {
                    uint32_t j = hash3(c->slots[i]->term, c->slots[i]->q, 0) & nm;
                    while (ns[j]) j = (j + 1) & nm;
                    ns[j] = c->slots[i];
                }
        free(c->slots);
        c->slots = ns;
        c->mask = nm;
    }
    uint32_t j = hash3(e->term, e->q, 0) & c->mask;
    while (c->slots[j]) j = (j + 1) & c->mask;
    c->slots[j] = e;
    c->count++;
    return true;
}

/* The entry for (term, q), computed on a miss. Caller holds c->mu. */
static mc_entry *cache_get(sw_gmask_cache *c, const sw_grammar *g, const sw_gvocab *v, int32_t term,
                           int32_t q) {
    if (c->vocab != v) {
        cache_clear(c);
        c->vocab = v;
    }
    if (c->slots) {
        uint32_t j = hash3(term, q, 0) & c->mask;
        while (c->slots[j]) {
            if (c->slots[j]->term == term && c->slots[j]->q == q) {
                c->hits++;
                return c->slots[j];
            }
            j = (j + 1) & c->mask;
        }
    }
    c->misses++;
    if (c->bytes > MASK_CACHE_MAX_BYTES) cache_clear(c);
    int32_t words = (v->n_vocab + 63) / 64;
    mc_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->term = term;
    e->q = q;
    e->inside = calloc((size_t)(words ? words : 1), sizeof *e->inside);
    if (c->cap_qstack < v->max_depth + 1) {
        int32_t *qs = realloc(c->qstack, ((size_t)v->max_depth + 1) * sizeof *qs);
        if (!qs) goto fail;
        c->qstack = qs;
        c->cap_qstack = v->max_depth + 1;
    }
    if (!e->inside) goto fail;
    const sw_dfa *d = &g->terms[term];
    int32_t cap_exits = 0;
    if (d->accept[q]) {
        cap_exits = 16;
        e->exits = malloc((size_t)cap_exits * sizeof *e->exits);
        if (!e->exits) goto fail;
        e->exits[e->n_exits++] = -1;
    }
    int32_t *qs = c->qstack;
    qs[0] = q;
    for (int32_t i = 0; i < v->n_nodes;) {
        const gv_node *nd = &v->nd[i];
        int32_t k = nd->depth;
        int32_t q2 = sw_dfa_step(d, qs[k - 1], nd->byte);
        if (q2 < 0) {
            i = nd->end;
            continue;
        }
        qs[k] = q2;
        for (int32_t t = nd->tok_off; t < nd[1].tok_off; t++) {
            int32_t id = v->toks[t];
            e->inside[id >> 6] |= 1ull << (id & 63);
        }
        if (d->accept[q2] && nd->end > i + 1) {
            if (e->n_exits == cap_exits) {
                cap_exits = cap_exits ? 2 * cap_exits : 16;
                int32_t *x = realloc(e->exits, (size_t)cap_exits * sizeof *x);
                if (!x) goto fail;
                e->exits = x;
            }
            e->exits[e->n_exits++] = i;
        }
        i++;
    }
    if (!cache_insert(c, e)) goto fail;
    c->bytes += sizeof *e + (size_t)words * 8 + (size_t)cap_exits * 4;
    return e;
fail:
    free(e->inside);
    free(e->exits);
    free(e);
    return NULL;
}

/* ---- matcher: nodes, sets, steps ------------------------------------------------ */

static void vs_begin(sw_gmatch *m) {
    if (++m->vs_gen == 0) { /* wrapped: clear the stamps */
        if (m->vs) memset(m->vs, 0, ((size_t)m->vs_mask + 1) * sizeof *m->vs);
        m->vs_gen = 1;
    }
    m->vs_count = 0;
}

/* Insert (a, b, c); true if it was new, false if present or on failure (*oom). */
static bool vs_insert(sw_gmatch *m, int32_t a, int32_t b, int32_t c, bool *oom) {
    if (!m->vs || (uint32_t)(m->vs_count + 1) * 2 > m->vs_mask + 1) {
        uint32_t nm = m->vs ? 2 * (m->vs_mask + 1) - 1 : 1023;
        vset_slot *ns = calloc((size_t)nm + 1, sizeof *ns);
        if (!ns) {
            *oom = true;
            return false;
        }
        if (m->vs)
            for (uint32_t i = 0; i <= m->vs_mask; i++)
                if (m->vs[i].gen == m->vs_gen) {
                    vset_slot *s = &m->vs[i];
                    uint32_t j = hash3(s->a, s->b, s->c) & nm;
                    while (ns[j].gen == m->vs_gen) j = (j + 1) & nm;
                    ns[j] = *s;
                }
        free(m->vs);
        m->vs = ns;
        m->vs_mask = nm;
    }
    uint32_t j = hash3(a, b, c) & m->vs_mask;
    while (m->vs[j].gen == m->vs_gen) {
        if (m->vs[j].a == a && m->vs[j].b == b && m->vs[j].c == c) return false;
        j = (j + 1) & m->vs_mask;
    }
    m->vs[j].gen = m->vs_gen;
    m->vs[j].a = a;
    m->vs[j].b = b;
    m->vs[j].c = c;
    m->vs_count++;
    return true;
}

static bool ht_rebuild(sw_gmatch *m, uint32_t nmask) {
    int32_t *ht = malloc(((size_t)nmask + 1) * sizeof *ht);
    if (!ht) return false;
    for (uint32_t i = 0; i <= nmask; i++) ht[i] = -1;
    for (int32_t id = 0; id < m->n_nodes; id++) {
        uint32_t j = hash3(m->nodes[id].pos, m->nodes[id].parent, 1) & nmask;
        while (ht[j] >= 0) j = (j + 1) & nmask;
        ht[j] = id;
    }
    free(m->ht);
    m->ht = ht;
    m->ht_mask = nmask;
    return true;
}

/* The node (pos, parent); -2 when it would pass the depth limit, -3 when out
 * of memory. */
static int32_t node_get(sw_gmatch *m, int32_t pos, int32_t parent) {
    const sw_grammar *g = m->g;
    uint32_t j = hash3(pos, parent, 1) & m->ht_mask;
    while (m->ht[j] >= 0) {
        const gm_node *n = &m->nodes[m->ht[j]];
        if (n->pos == pos && n->parent == parent) return m->ht[j];
        j = (j + 1) & m->ht_mask;
    }
    int32_t pd = parent >= 0 ? m->nodes[parent].depth : 0;
    int32_t pmx = parent >= 0 ? m->nodes[parent].mx : 0;
    int32_t mx = SW_MAX(pmx, pd + 1 + g->need[pos]);
    if (mx > SW_GRAMMAR_MAX_DEPTH) return -2;
    if (m->n_nodes == m->cap_nodes) {
        int32_t c = m->cap_nodes * 2;
        gm_node *nn = realloc(m->nodes, (size_t)c * sizeof *nn);
        if (!nn) return -3;
        m->nodes = nn;
        m->cap_nodes = c;
    }
    if ((uint32_t)(m->n_nodes + 1) * 2 > m->ht_mask + 1) {
        if (!ht_rebuild(m, 2 * (m->ht_mask + 1) - 1)) return -3;
        j = hash3(pos, parent, 1) & m->ht_mask;
        while (m->ht[j] >= 0) j = (j + 1) & m->ht_mask;
    }
    gm_node *n = &m->nodes[m->n_nodes];
    n->pos = pos;
    n->parent = parent;
    n->depth = pd + 1;
    n->mx = mx;
    int64_t below = parent >= 0 ? m->nodes[parent].clen : 0;
    n->clen = g->minlen[pos] + below;
    m->ht[j] = m->n_nodes;
    return m->n_nodes++;
}

static bool scr_reserve(sw_gmatch *m, int32_t need) {
    if (need <= m->cap_scr) return true;
    int32_t c = m->cap_scr ? m->cap_scr : 256;
    while (c < need) c *= 2;
    gm_head *p = realloc(m->scr, (size_t)c * sizeof *p);
    if (!p) return false;
    m->scr = p;
    m->cap_scr = c;
    return true;
}

typedef struct step_out {
    int32_t off, n; /* heads written at m->scr[off..off+n) */
    bool accepting;
    bool failed;   /* over SW_GRAMMAR_MAX_HEADS or out of memory */
    bool too_many; /* over SW_GRAMMAR_MAX_HEADS */
} step_out;

static void add_head(sw_gmatch *m, step_out *o, int32_t pos, int32_t q, int32_t parent) {
    bool oom = false;
    if (!vs_insert(m, pos, q, parent, &oom)) {
        if (oom) o->failed = true;
        return;
    }
    if (o->n >= SW_GRAMMAR_MAX_HEADS || !scr_reserve(m, o->off + o->n + 1)) {
        o->failed = true;
        o->too_many = o->n >= SW_GRAMMAR_MAX_HEADS;
        return;
    }
    gm_head *h = &m->scr[o->off + o->n++];
    h->pos = pos;
    h->q = q;
    h->parent = parent;
}

static bool work_push(sw_gmatch *m, int32_t *sp, int32_t pos, int32_t parent) {
    if (*sp + 2 > m->cap_work) {
        int32_t c = m->cap_work ? 2 * m->cap_work : 256;
        int32_t *w = realloc(m->work, (size_t)c * sizeof *w);
        if (!w) return false;
        m->work = w;
        m->cap_work = c;
    }
    m->work[(*sp)++] = pos;
    m->work[(*sp)++] = parent;
    return true;
}

/* Everything reachable from "at element pos, returning to parent" without
 * reading a byte: heads into o, accepting when the root can end. */
static void closure(sw_gmatch *m, step_out *o, int32_t pos0, int32_t parent0) {
    const sw_grammar *g = m->g;
    int32_t sp = 0;
    if (!work_push(m, &sp, pos0, parent0)) {
        o->failed = true;
        return;
    }
    while (sp > 0 && !o->failed) {
        int32_t parent = m->work[--sp];
        int32_t pos = m->work[--sp];
        bool oom = false;
        /* tag -1 keeps closure keys apart from head keys (q >= 0) */
        if (!vs_insert(m, pos, -1, parent, &oom)) {
            if (oom) o->failed = true;
            continue;
        }
        switch (g->ekind[pos]) {
        case SW_GK_END:
            if (parent < 0) o->accepting = true;
            else if (!work_push(m, &sp, m->nodes[parent].pos, m->nodes[parent].parent))
                o->failed = true;
            break;
        case SW_GK_TERM: {
            int32_t pd = parent >= 0 ? m->nodes[parent].depth : 0;
            int32_t pmx = parent >= 0 ? m->nodes[parent].mx : 0;
            if (SW_MAX(pmx, pd + 1 + g->need[pos]) > SW_GRAMMAR_MAX_DEPTH) break;
            const sw_dfa *d = &g->terms[g->earg[pos]];
            if (d->has_out[0]) add_head(m, o, pos, 0, parent);
            if (d->accept[0] && !work_push(m, &sp, pos + 1, parent)) o->failed = true;
            break;
        }
        default: { /* SW_GK_REF */
            int32_t r = g->earg[pos];
            int32_t ret = parent;
            if (g->ekind[pos + 1] != SW_GK_END) {
                ret = node_get(m, pos + 1, parent);
                if (ret == -3) o->failed = true;
                if (ret < 0) break;
            }
            for (int32_t a = g->rule_alt[r + 1] - 1; a >= g->rule_alt[r]; a--)
                if (!work_push(m, &sp, g->alt_start[a], ret)) o->failed = true;
            break;
        }
        }
    }
}

/* Read byte c from the heads at scr[in_off..in_off+in_n) into new heads at
 * out_off (after the input). */
static step_out step(sw_gmatch *m, int32_t in_off, int32_t in_n, uint8_t c, int32_t out_off) {
    const sw_grammar *g = m->g;
    step_out o = {out_off, 0, false, false, false};
    vs_begin(m);
    for (int32_t i = 0; i < in_n && !o.failed; i++) {
        gm_head h = m->scr[in_off + i]; /* copy: scr may move */
        const sw_dfa *d = &g->terms[g->earg[h.pos]];
        int32_t q2 = sw_dfa_step(d, h.q, c);
        if (q2 < 0) continue;
        if (d->has_out[q2]) add_head(m, &o, h.pos, q2, h.parent);
        if (d->accept[q2]) closure(m, &o, h.pos + 1, h.parent);
    }
    return o;
}

/* ---- matcher: public ---------------------------------------------------------- */

static const char k_oom_start[] = "out of memory starting the grammar";
static const char k_wide_start[] =
    "the grammar is too ambiguous: its start holds more live parses than the matcher's limit";

/* The state before any byte; false (m->error set) when it cannot be held. */
static bool load_initial(sw_gmatch *m) {
    const sw_grammar *g = m->g;
    step_out o = {0, 0, false, false, false};
    vs_begin(m);
    for (int32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1] && !o.failed; a++)
        closure(m, &o, g->alt_start[a], -1);
    if (o.failed) {
        m->error = o.too_many ? k_wide_start : k_oom_start;
        return false;
    }
    if (m->cap_cur < o.n) {
        gm_head *c = realloc(m->cur, (size_t)o.n * sizeof *c);
        if (!c) {
            m->error = k_oom_start;
            return false;
        }
        m->cur = c;
        m->cap_cur = o.n;
    }
    if (o.n) memcpy(m->cur, m->scr, (size_t)o.n * sizeof *m->cur); /* "root ::=" has none */
    m->n_cur = o.n;
    m->accepting = o.accepting;
    return true;
}

void sw_gmatch_free(sw_gmatch *m) {
    if (!m) return;
    sw_grammar_free(m->g);
    free(m->nodes);
    free(m->ht);
    free(m->cur);
    free(m->scr);
    free(m->work);
    free(m->vs);
    free(m->bits);
    free(m->soff);
    free(m);
}

void sw_gmatch_reset(sw_gmatch *m) {
    m->n_nodes = 0;
    m->live_after_gc = 0;
    for (uint32_t i = 0; i <= m->ht_mask; i++) m->ht[i] = -1;
    m->error = NULL;
    if (!load_initial(m)) {
        m->n_cur = 0;
        m->accepting = false;
    }
}

sw_status sw_gmatch_create(sw_grammar *g, sw_gmatch **out, sw_err *err) {
    *out = NULL;
    if (!g) return sw_err_set(err, SW_E_INVALID_ARG, "grammar matcher: no grammar");
    sw_gmatch *m = calloc(1, sizeof *m);
    if (!m) return sw_err_set(err, SW_E_NOMEM, "grammar matcher: out of memory");
    m->g = sw_grammar_retain(g);
    m->cap_nodes = 256;
    m->nodes = malloc((size_t)m->cap_nodes * sizeof *m->nodes);
    m->ht_mask = 1023;
    m->ht = malloc(((size_t)m->ht_mask + 1) * sizeof *m->ht);
    if (!m->nodes || !m->ht) {
        sw_gmatch_free(m);
        return sw_err_set(err, SW_E_NOMEM, "grammar matcher: out of memory");
    }
    sw_gmatch_reset(m);
    if (m->error) {
        /* too wide a start is the grammar's fault (the caller's input), not memory */
        bool wide = m->error == k_wide_start;
        sw_gmatch_free(m);
        if (wide)
            return sw_err_set(err, SW_E_INVALID_ARG, "grammar matcher: %s (%d)", k_wide_start,
                              SW_GRAMMAR_MAX_HEADS);
        return sw_err_set(err, SW_E_NOMEM, "grammar matcher: %s", k_oom_start);
    }
    *out = m;
    return SW_OK;
}

/* Drop the nodes no head can reach any more (they pile up from closures that
 * were tried and not taken). Renumbers the live ones. */
static void gc_nodes(sw_gmatch *m) {
    if (m->n_nodes < 4096 || m->n_nodes < 2 * m->live_after_gc) return;
    int32_t *map = malloc((size_t)m->n_nodes * sizeof *map);
    if (!map) return;
    for (int32_t i = 0; i < m->n_nodes; i++) map[i] = -1;
    for (int32_t i = 0; i < m->n_cur; i++)
        for (int32_t p = m->cur[i].parent; p >= 0 && map[p] < 0; p = m->nodes[p].parent) map[p] = 0;
    /* parents were made before their children, so ids stay in order */
    int32_t k = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        if (map[i] < 0) continue;
        map[i] = k;
        gm_node n = m->nodes[i];
        if (n.parent >= 0) n.parent = map[n.parent];
        m->nodes[k++] = n;
    }
    for (int32_t i = 0; i < m->n_cur; i++)
        if (m->cur[i].parent >= 0) m->cur[i].parent = map[m->cur[i].parent];
    free(map);
    m->n_nodes = k;
    m->live_after_gc = k;
    uint32_t mask = 1023;
    while ((uint32_t)k * 2 > mask + 1) mask = mask * 2 + 1;
    if (!ht_rebuild(m, mask)) m->error = "out of memory collecting grammar nodes";
}

/* Run n bytes from the current state; on success the result is at
 * scr[*off..*off+*nh) with *acc. */
static bool run(sw_gmatch *m, const uint8_t *b, size_t n, int32_t *off, int32_t *nh, bool *acc) {
    if (!scr_reserve(m, m->n_cur + 1)) return false;
    if (m->n_cur) memcpy(m->scr, m->cur, (size_t)m->n_cur * sizeof *m->cur); /* cur may be NULL */
    int32_t in_off = 0, in_n = m->n_cur;
    bool accepting = m->accepting;
    for (size_t i = 0; i < n; i++) {
        if (in_n == 0) return false;
        /* alternate between two regions: [0, half) and [half, ...) would need a
         * bound; instead write after the input and move the result down */
        step_out o = step(m, in_off, in_n, b[i], in_off + in_n);
        if (o.failed) {
            m->error = "the grammar is too ambiguous here (too many live parses) or memory ran out";
            return false;
        }
        if (o.n == 0 && !o.accepting) return false;
        memmove(m->scr, m->scr + o.off, (size_t)o.n * sizeof *m->scr);
        in_off = 0;
        in_n = o.n;
        accepting = o.accepting;
    }
    *off = in_off;
    *nh = in_n;
    *acc = accepting;
    return true;
}

bool sw_gmatch_try(sw_gmatch *m, const char *bytes, size_t n) {
    if (n == 0) return true;
    int32_t off, nh;
    bool acc;
    return run(m, (const uint8_t *)bytes, n, &off, &nh, &acc);
}

bool sw_gmatch_feed(sw_gmatch *m, const char *bytes, size_t n) {
    if (n == 0) return true;
    int32_t off, nh;
    bool acc;
    if (!run(m, (const uint8_t *)bytes, n, &off, &nh, &acc)) return false;
    if (m->cap_cur < nh) {
        gm_head *c = realloc(m->cur, (size_t)nh * sizeof *c);
        if (!c) {
            m->error = "out of memory";
            return false;
        }
        m->cur = c;
        m->cap_cur = nh;
    }
    memcpy(m->cur, m->scr + off, (size_t)nh * sizeof *m->cur);
    m->n_cur = nh;
    m->accepting = acc;
    gc_nodes(m);
    return true;
}

bool sw_gmatch_accepting(const sw_gmatch *m) {
    return m->accepting;
}

bool sw_gmatch_can_continue(const sw_gmatch *m) {
    return m->n_cur > 0;
}

const char *sw_gmatch_error(const sw_gmatch *m) {
    return m->error;
}

int64_t sw_gmatch_min_completion(sw_gmatch *m) {
    if (m->accepting) return 0;
    int64_t best = -1;
    const sw_grammar *g = m->g;
    for (int32_t i = 0; i < m->n_cur; i++) {
        const gm_head *h = &m->cur[i];
        int64_t len = g->terms[g->earg[h->pos]].dist[h->q] + g->minlen[h->pos + 1] +
                      (h->parent >= 0 ? m->nodes[h->parent].clen : 0);
        if (best < 0 || len < best) best = len;
    }
    return best;
}

/* ---- masks ---------------------------------------------------------------------- */

static void set_tokens(const sw_gvocab *v, uint64_t *bits, int32_t node) {
    for (int32_t t = v->nd[node].tok_off; t < v->nd[node + 1].tok_off; t++) {
        int32_t id = v->toks[t];
        bits[id >> 6] |= 1ull << (id & 63);
    }
}

/* Walk the trie below node x (-1: the whole trie) with the state at
 * scr[off..off+n) standing at x; allow every token whose bytes keep some
 * parse alive. */
static bool walk(sw_gmatch *m, const sw_gvocab *v, int32_t x, int32_t off, int32_t n, uint64_t *bits) {
    int32_t base_depth = x >= 0 ? v->nd[x].depth : 0;
    int32_t first = x + 1, last = x >= 0 ? v->nd[x].end : v->n_nodes;
    int32_t need = v->max_depth - base_depth + 2;
    if (m->cap_soff < need) {
        int32_t *s = realloc(m->soff, (size_t)need * 2 * sizeof *s);
        if (!s) return false;
        m->soff = s;
        m->cap_soff = need;
    }
    /* soff[2k], soff[2k+1]: offset and count of the state at relative depth k */
    m->soff[0] = off;
    m->soff[1] = n;
    for (int32_t i = first; i < last;) {
        int32_t k = v->nd[i].depth - base_depth;
        int32_t in_off = m->soff[2 * (k - 1)], in_n = m->soff[2 * (k - 1) + 1];
        step_out o = step(m, in_off, in_n, v->nd[i].byte, in_off + in_n);
        if (o.failed || (o.n == 0 && !o.accepting)) {
            i = v->nd[i].end;
            continue;
        }
        set_tokens(v, bits, i);
        if (o.n == 0) { /* finished: nothing may follow */
            i = v->nd[i].end;
            continue;
        }
        m->soff[2 * k] = o.off;
        m->soff[2 * k + 1] = o.n;
        i++;
    }
    return true;
}

int32_t sw_gmatch_mask(sw_gmatch *m, const sw_gvocab *v, uint8_t *allow) {
    const sw_grammar *g = m->g;
    int32_t words = (v->n_vocab + 63) / 64;
    if (m->n_bits_words < words) {
        uint64_t *b = realloc(m->bits, (size_t)words * sizeof *b);
        if (!b) return -1;
        m->bits = b;
        m->n_bits_words = words;
    }
    memset(m->bits, 0, (size_t)words * sizeof *m->bits);
    sw_gmask_cache *c = g->cache;
    pthread_mutex_lock(&c->mu);
    bool ok = true;
    for (int32_t i = 0; i < m->n_cur && ok; i++) {
        gm_head h = m->cur[i];
        mc_entry *e = cache_get(c, g, v, g->earg[h.pos], h.q);
        if (!e) {
            ok = false;
            break;
        }
        for (int32_t w = 0; w < words; w++) m->bits[w] |= e->inside[w];
        if (e->n_exits == 0) continue;
        /* the state after the terminal ends here */
        vs_begin(m);
        step_out o = {0, 0, false, false, false};
        closure(m, &o, h.pos + 1, h.parent);
        if (o.failed) {
            ok = false;
            break;
        }
        if (o.n == 0) continue; /* only the end of the output: no byte may follow */
        for (int32_t k = 0; k < e->n_exits && ok; k++) ok = walk(m, v, e->exits[k], 0, o.n, m->bits);
    }
    pthread_mutex_unlock(&c->mu);
    if (!ok) return -1;
    int32_t count = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        uint8_t a = (uint8_t)(m->bits[id >> 6] >> (id & 63) & 1);
        allow[id] = a;
        count += a;
    }
    return count;
}

void sw_grammar_get_info(const sw_grammar *g, sw_grammar_info *out) {
    memset(out, 0, sizeof *out);
    out->n_rules = g->n_rules;
    out->n_elems = g->n_elems;
    out->n_terms = g->n_terms;
    out->n_dfa_states = g->n_dfa_states;
    pthread_mutex_lock(&g->cache->mu);
    out->cache_bytes = g->cache->bytes;
    out->cache_hits = g->cache->hits;
    out->cache_misses = g->cache->misses;
    pthread_mutex_unlock(&g->cache->mu);
}

static int64_t heads_min_completion(const sw_gmatch *m, const gm_head *h, int32_t n, bool accepting) {
    if (accepting) return 0;
    const sw_grammar *g = m->g;
    int64_t best = -1;
    for (int32_t i = 0; i < n; i++) {
        int64_t len = g->terms[g->earg[h[i].pos]].dist[h[i].q] + g->minlen[h[i].pos + 1] +
                      (h[i].parent >= 0 ? m->nodes[h[i].parent].clen : 0);
        if (best < 0 || len < best) best = len;
    }
    return best;
}

int64_t sw_gmatch_min_completion_after(sw_gmatch *m, const char *bytes, size_t n) {
    int32_t off = 0, nh = m->n_cur;
    bool acc = m->accepting;
    if (n == 0) return heads_min_completion(m, m->cur, m->n_cur, m->accepting);
    if (!run(m, (const uint8_t *)bytes, n, &off, &nh, &acc)) return -1;
    return heads_min_completion(m, m->scr + off, nh, acc);
}

static uint64_t sample_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

sw_status sw_grammar_sample(sw_grammar *g, uint64_t seed, size_t max_bytes, char **out, size_t *len,
                            sw_err *err) {
    *out = NULL;
    *len = 0;
    sw_gmatch *m;
    sw_status st = sw_gmatch_create(g, &m, err);
    if (st != SW_OK) return st;
    uint64_t rng = seed;
    size_t budget = max_bytes ? sample_rng(&rng) % (max_bytes + 1) : 0;
    size_t cap = 64, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        sw_gmatch_free(m);
        return sw_err_set(err, SW_E_NOMEM, "grammar sample: out of memory");
    }
    for (;;) {
        if (sw_gmatch_accepting(m) &&
            (!sw_gmatch_can_continue(m) || sample_rng(&rng) % 100 < (n >= budget ? 100u : 25u)))
            break;
        if (n >= 4 * max_bytes + 16) {
            st = sw_err_set(err, SW_E_RANGE, "grammar sample: no end within %zu bytes", n);
            break;
        }
        /* the bytes that may come next, with weights */
        uint32_t weight[256], total = 0;
        int64_t best = -1;
        int32_t n_best = 0;
        uint8_t best_b[256];
        for (int c = 0; c < 256; c++) {
            char b = (char)c;
            weight[c] = 0;
            if (!sw_gmatch_try(m, &b, 1)) continue;
            if (n >= budget) {
                int64_t mc = sw_gmatch_min_completion_after(m, &b, 1);
                if (mc >= 0 && (best < 0 || mc < best)) best = mc, n_best = 0;
                if (mc >= 0 && mc == best) best_b[n_best++] = (uint8_t)c;
                continue;
            }
            weight[c] = (c >= 0x20 && c < 0x7F) ? 40 : (c >= 0x80 ? 2 : 4);
            total += weight[c];
        }
        int chosen = -1;
        if (n >= budget) {
            if (n_best > 0) chosen = best_b[sample_rng(&rng) % (uint64_t)n_best];
        } else if (total > 0) {
            uint32_t r = (uint32_t)(sample_rng(&rng) % total);
            for (int c = 0; c < 256; c++) {
                if (r < weight[c]) {
                    chosen = c;
                    break;
                }
                r -= weight[c];
            }
        }
        if (chosen < 0) {
            if (sw_gmatch_accepting(m)) break;
            st = sw_err_set(err, SW_E_INTERNAL, "grammar sample: no byte continues a viable prefix");
            break;
        }
        char b = (char)chosen;
        if (!sw_gmatch_feed(m, &b, 1)) {
            st = sw_err_set(err, SW_E_INTERNAL, "grammar sample: a tried byte was refused");
            break;
        }
        if (n + 2 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                st = sw_err_set(err, SW_E_NOMEM, "grammar sample: out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        buf[n++] = b;
    }
    sw_gmatch_free(m);
    if (st != SW_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SW_OK;
}
