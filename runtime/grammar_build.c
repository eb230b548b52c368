/* grammar_build.c — the grammar builder (sw_gb) and its compilation into an
 * sw_grammar (see grammar_internal.h).
 *
 * sw_gb_finish, in order:
 *   1. rules that are regular (only terminals, no recursion through them) and
 *      small become expressions and are inlined where they are used; runs of
 *      terminals in an alternative merge into one, so that most of a JSON
 *      document's syntax (punctuation, keys, whitespace, strings, numbers)
 *      lives in a few large DFAs and the stack only moves at real nesting;
 *   2. each terminal becomes a DFA without dead states; an empty one is a
 *      terminal that matches nothing;
 *   3. alternatives that cannot produce a finite string are dropped (a rule
 *      left with none is gone too); a root that matches nothing is an error;
 *   4. left recursion (through nullable prefixes too) is an error, so the
 *      matcher's closure always terminates;
 *   5. every position gets need (stack frames above it that the cheapest way
 *      to finish its rule takes) and minlen (bytes the shortest way takes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

typedef struct gb_alt {
    sw_gelem *e;
    int32_t n;
} gb_alt;

typedef struct gb_rule {
    const char *name;
    gb_alt *alts;
    int32_t n_alts, cap_alts;
} gb_rule;

struct sw_gb {
    sw_arena *a;
    gb_rule *rules;
    int32_t n_rules, cap_rules;
    int64_t n_elems;
    bool nomem, over;
    char over_msg[128];
};

sw_gb *sw_gb_create(sw_arena *a) {
    sw_gb *b = calloc(1, sizeof *b);
    if (b) b->a = a;
    return b;
}

void sw_gb_free(sw_gb *b) {
    if (!b) return;
    for (int32_t r = 0; r < b->n_rules; r++) free(b->rules[r].alts);
    free(b->rules);
    free(b);
}

sw_arena *sw_gb_arena(sw_gb *b) {
    return b->a;
}

int32_t sw_gb_n_rules(const sw_gb *b) {
    return b->n_rules;
}

const char *sw_gb_rule_name(const sw_gb *b, int32_t rule) {
    return rule >= 0 && rule < b->n_rules ? b->rules[rule].name : "?";
}

int32_t sw_gb_rule(sw_gb *b, const char *name) {
    if (b->nomem || b->over) return -1;
    if (b->n_rules >= SW_GRAMMAR_MAX_RULES) {
        b->over = true;
        snprintf(b->over_msg, sizeof b->over_msg, "more than %d rules", SW_GRAMMAR_MAX_RULES);
        return -1;
    }
    if (b->n_rules == b->cap_rules) {
        int32_t c = b->cap_rules ? 2 * b->cap_rules : 64;
        gb_rule *r = realloc(b->rules, (size_t)c * sizeof *r);
        if (!r) {
            b->nomem = true;
            return -1;
        }
        b->rules = r;
        b->cap_rules = c;
    }
    gb_rule *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    r->name = sw_arena_strndup(b->a, name, strlen(name));
    if (!r->name) {
        b->nomem = true;
        return -1;
    }
    return b->n_rules++;
}

bool sw_gb_alt(sw_gb *b, int32_t rule, const sw_gelem *elems, int32_t n) {
    if (b->nomem || b->over || rule < 0 || rule >= b->n_rules) return false;
    for (int32_t i = 0; i < n; i++)
        if ((elems[i].kind == SW_GE_TERM && !elems[i].rx) ||
            (elems[i].kind == SW_GE_REF && (elems[i].rule < 0 || elems[i].rule >= b->n_rules))) {
            b->nomem = true; /* a NULL expression: the arena failed */
            return false;
        }
    if (b->n_elems + n + 1 > SW_GRAMMAR_MAX_ELEMS) {
        b->over = true;
        snprintf(b->over_msg, sizeof b->over_msg, "more than %d grammar elements",
                 SW_GRAMMAR_MAX_ELEMS);
        return false;
    }
    gb_rule *r = &b->rules[rule];
    if (r->n_alts == r->cap_alts) {
        int32_t c = r->cap_alts ? 2 * r->cap_alts : 2;
        gb_alt *a = realloc(r->alts, (size_t)c * sizeof *a);
        if (!a) {
            b->nomem = true;
            return false;
        }
        r->alts = a;
        r->cap_alts = c;
    }
    sw_gelem *e = sw_arena_alloc(b->a, (size_t)(n ? n : 1) * sizeof *e);
    if (!e) {
        b->nomem = true;
        return false;
    }
    if (n) memcpy(e, elems, (size_t)n * sizeof *e);
    r->alts[r->n_alts].e = e;
    r->alts[r->n_alts].n = n;
    r->n_alts++;
    b->n_elems += n + 1;
    return true;
}

bool sw_gb_alt1(sw_gb *b, int32_t rule, sw_gelem e) {
    return sw_gb_alt(b, rule, &e, 1);
}

bool sw_gb_failed(const sw_gb *b, sw_err *err) {
    if (b->nomem || sw_arena_failed(b->a)) {
        sw_err_set(err, SW_E_NOMEM, "grammar: out of memory (or over %u MiB) while compiling",
                   SW_GRAMMAR_MAX_ARENA >> 20);
        return true;
    }
    if (b->over) {
        sw_err_set(err, SW_E_RANGE, "grammar: too large: %s", b->over_msg);
        return true;
    }
    return false;
}

/* ---- 1. inlining ------------------------------------------------------------ */

enum { V_NEW = 0, V_ACTIVE, V_DONE };

typedef struct inl {
    sw_gb *b;
    uint8_t *visit;
    sw_rx **rx; /* [n_rules]: the rule as an expression, or NULL (stays a rule) */
} inl;

/* Decide, callees first, which rules become expressions. Iterative DFS so a
 * long chain of rules cannot exhaust the C stack. */
static bool inline_rules(inl *c, int32_t root) {
    sw_gb *b = c->b;
    int32_t *stack = malloc((size_t)b->n_rules * 2 * sizeof *stack);
    bool *cyclic = calloc((size_t)b->n_rules, sizeof *cyclic);
    if (!stack || !cyclic) {
        free(stack);
        free(cyclic);
        return false;
    }
    int32_t sp = 0;
    stack[sp++] = root;
    stack[sp++] = 0; /* next alternative/element index, flattened */
    c->visit[root] = V_ACTIVE;
    while (sp > 0) {
        int32_t r = stack[sp - 2];
        int32_t k = stack[sp - 1];
        gb_rule *R = &b->rules[r];
        /* walk every element of every alternative in order: k counts them */
        int32_t ai = 0, ei = k;
        while (ai < R->n_alts && ei >= R->alts[ai].n) ei -= R->alts[ai++].n;
        if (ai < R->n_alts) {
            stack[sp - 1] = k + 1;
            sw_gelem *e = &R->alts[ai].e[ei];
            if (e->kind != SW_GE_REF) continue;
            int32_t s = e->rule;
            if (c->visit[s] == V_ACTIVE) {
                /* a cycle: every rule on it stays a rule */
                for (int32_t i = sp - 2; i >= 0; i -= 2) {
                    cyclic[stack[i]] = true;
                    if (stack[i] == s) break;
                }
            } else if (c->visit[s] == V_NEW) {
                c->visit[s] = V_ACTIVE;
                stack[sp++] = s;
                stack[sp++] = 0;
            }
            continue;
        }
        /* all callees done: can r be one expression? */
        sp -= 2;
        c->visit[r] = V_DONE;
        if (cyclic[r] || R->n_alts == 0) continue;
        sw_rx **alts = sw_arena_alloc(b->a, (size_t)R->n_alts * sizeof *alts);
        if (!alts) break;
        bool regular = true;
        int64_t w = 0;
        for (int32_t i = 0; i < R->n_alts && regular; i++) {
            gb_alt *A = &R->alts[i];
            sw_rx **parts = sw_arena_alloc(b->a, (size_t)(A->n ? A->n : 1) * sizeof *parts);
            if (!parts) break;
            for (int32_t j = 0; j < A->n && regular; j++) {
                sw_gelem *e = &A->e[j];
                if (e->kind == SW_GE_TERM) parts[j] = e->rx;
                else if (c->rx[e->rule]) parts[j] = c->rx[e->rule];
                else regular = false;
            }
            if (!regular) break;
            alts[i] = sw_rx_cat(b->a, parts, A->n);
            w += sw_rx_weight(alts[i]);
            if (w > SW_GRAMMAR_INLINE_WEIGHT) regular = false;
        }
        if (regular) c->rx[r] = sw_rx_alt(b->a, alts, R->n_alts);
    }
    free(stack);
    free(cyclic);
    return !sw_arena_failed(b->a);
}

/* ---- 2. terminals, merged, as DFAs ---------------------------------------------- */

typedef struct wgram {
    /* kept rules in new numbering */
    int32_t n_rules;
    int32_t *old_of;      /* [n_rules]: builder rule */
    int32_t *alt_off;     /* [n_rules + 1] into alts */
    int32_t *alt_elem;    /* [n_alts + 1]: element range of each alternative */
    int32_t n_alts, cap_alts;
    uint8_t *kind;        /* [n_elems]: SW_GK_TERM / SW_GK_REF */
    int32_t *arg;
    int32_t n_elems, cap_elems;
    uint8_t *alt_dead;    /* [n_alts] */
    sw_dfa *terms;
    int32_t n_terms, cap_terms;
    int64_t total_states;
} wgram;

static void wgram_free(wgram *w) {
    free(w->old_of);
    free(w->alt_off);
    free(w->alt_elem);
    free(w->kind);
    free(w->arg);
    free(w->alt_dead);
    if (w->terms)
        for (int32_t i = 0; i < w->n_terms; i++) sw_dfa_free(&w->terms[i]);
    free(w->terms);
}

static bool grow(void **p, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool w_push(wgram *w, uint8_t kind, int32_t arg) {
    int32_t c1 = w->cap_elems, c2 = w->cap_elems;
    if (!grow((void **)&w->kind, &c1, w->n_elems + 1, 1)) return false;
    if (!grow((void **)&w->arg, &c2, w->n_elems + 1, sizeof *w->arg)) return false;
    w->cap_elems = c1 < c2 ? c1 : c2;
    w->kind[w->n_elems] = kind;
    w->arg[w->n_elems] = arg;
    w->n_elems++;
    return true;
}

/* Build the DFA of a merged terminal; *term is its id, -1 when it matches
 * nothing, -2 when it matches only the empty string. */
static sw_status w_term(wgram *w, const sw_rx *x, const char *kind, const char *rule,
                        int32_t *term, sw_err *err) {
    char what[160];
    snprintf(what, sizeof what, "%s rule '%s'", kind, rule);
    if (!grow((void **)&w->terms, &w->cap_terms, w->n_terms + 1, sizeof *w->terms))
        return sw_err_set(err, SW_E_NOMEM, "grammar: out of memory");
    sw_dfa *d = &w->terms[w->n_terms];
    sw_status st = sw_dfa_build(x, SW_GRAMMAR_MAX_DFA_STATES, d, what, err);
    if (st != SW_OK) return st;
    if (d->n_states == 0) {
        *term = -1;
        return SW_OK;
    }
    if (d->n_states == 1 && d->accept[0] && !d->has_out[0]) {
        sw_dfa_free(d);
        *term = -2;
        return SW_OK;
    }
    w->total_states += d->n_states;
    if (w->total_states > SW_GRAMMAR_MAX_TOTAL_DFA_STATES) {
        w->n_terms++;
        return sw_err_set(err, SW_E_RANGE,
                          "%s is too complex: its automata need over %d states in all", kind,
                          SW_GRAMMAR_MAX_TOTAL_DFA_STATES);
    }
    *term = w->n_terms++;
    return SW_OK;
}

/* Keep the rules reachable from root through non-inlined references, number
 * them, and rewrite their alternatives with merged terminals. */
static sw_status w_build(sw_gb *b, inl *c, int32_t root, const char *kind, wgram *w, sw_err *err) {
    int32_t *new_of = malloc((size_t)b->n_rules * sizeof *new_of);
    w->old_of = malloc((size_t)b->n_rules * sizeof *w->old_of);
    sw_rx **pend = NULL;
    int32_t cap_pend = 0;
    sw_status st = SW_OK;
    if (!new_of || !w->old_of) goto nomem;
    for (int32_t r = 0; r < b->n_rules; r++) new_of[r] = -1;
    new_of[root] = 0;
    w->old_of[0] = root;
    w->n_rules = 1;
    for (int32_t i = 0; i < w->n_rules; i++) {
        gb_rule *R = &b->rules[w->old_of[i]];
        if (i == 0 && c->rx[root]) continue; /* the root as one terminal */
        for (int32_t a = 0; a < R->n_alts; a++)
            for (int32_t j = 0; j < R->alts[a].n; j++) {
                sw_gelem *e = &R->alts[a].e[j];
                if (e->kind == SW_GE_REF && !c->rx[e->rule] && new_of[e->rule] < 0) {
                    new_of[e->rule] = w->n_rules;
                    w->old_of[w->n_rules++] = e->rule;
                }
            }
    }
    w->alt_off = malloc(((size_t)w->n_rules + 1) * sizeof *w->alt_off);
    if (!w->alt_off) goto nomem;
    for (int32_t i = 0; i < w->n_rules; i++) {
        int32_t old = w->old_of[i];
        gb_rule *R = &b->rules[old];
        w->alt_off[i] = w->n_alts;
        gb_alt root_alt;
        sw_gelem root_e;
        int32_t n_alts = R->n_alts;
        gb_alt *alts = R->alts;
        if (i == 0 && c->rx[root]) {
            root_e = sw_ge_term(c->rx[root]);
            root_alt.e = &root_e;
            root_alt.n = 1;
            alts = &root_alt;
            n_alts = 1;
        }
        for (int32_t a = 0; a < n_alts; a++) {
            if (!grow((void **)&w->alt_elem, &w->cap_alts, w->n_alts + 2, sizeof *w->alt_elem))
                goto nomem;
            w->alt_elem[w->n_alts] = w->n_elems;
            bool dead = false;
            int32_t n_pend = 0;
            int64_t pend_w = 0;
            for (int32_t j = 0; j <= alts[a].n && !dead; j++) {
                sw_gelem *e = j < alts[a].n ? &alts[a].e[j] : NULL;
                sw_rx *x = NULL;
                if (e && e->kind == SW_GE_TERM) x = e->rx;
                else if (e && c->rx[e->rule]) x = c->rx[e->rule];
                int64_t xw = x ? sw_rx_weight(x) : 0;
                /* flush the pending run before a rule, at the end, or when it
                 * would grow too large */
                if (n_pend > 0 && (!x || pend_w + xw > SW_GRAMMAR_INLINE_WEIGHT)) {
                    sw_rx *m = sw_rx_cat(b->a, pend, n_pend);
                    if (!m) goto nomem;
                    int32_t t = -1;
                    if ((st = w_term(w, m, kind, R->name, &t, err)) != SW_OK) goto done;
                    if (t == -1) dead = true;
                    else if (t >= 0 && !w_push(w, SW_GK_TERM, t)) goto nomem;
                    n_pend = 0;
                    pend_w = 0;
                }
                if (dead || !e) break;
                if (x) {
                    if (!grow((void **)&pend, &cap_pend, n_pend + 1, sizeof *pend)) goto nomem;
                    pend[n_pend++] = x;
                    pend_w += xw;
                } else if (!w_push(w, SW_GK_REF, new_of[e->rule])) {
                    goto nomem;
                }
            }
            if (dead) {
                w->n_elems = w->alt_elem[w->n_alts]; /* an alternative that matches nothing */
                continue;
            }
            w->n_alts++;
        }
    }
    w->alt_off[w->n_rules] = w->n_alts;
    if (!grow((void **)&w->alt_elem, &w->cap_alts, w->n_alts + 1, sizeof *w->alt_elem)) goto nomem;
    w->alt_elem[w->n_alts] = w->n_elems;
    w->alt_dead = calloc((size_t)(w->n_alts ? w->n_alts : 1), 1);
    if (!w->alt_dead) goto nomem;
    goto done;
nomem:
    st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory compiling the %s", kind);
done:
    free(new_of);
    free(pend);
    return st;
}

/* ---- 3-5. analysis ------------------------------------------------------------ */

/* Productive rules (some alternative of only productive references); marks
 * the alternatives that use an unproductive one dead. */
static void w_productive(wgram *w, uint8_t *prod) {
    bool changed = true;
    while (changed) {
        changed = false;
        for (int32_t r = 0; r < w->n_rules; r++) {
            if (prod[r]) continue;
            for (int32_t a = w->alt_off[r]; a < w->alt_off[r + 1] && !prod[r]; a++) {
                bool ok = true;
                for (int32_t e = w->alt_elem[a]; e < w->alt_elem[a + 1] && ok; e++)
                    if (w->kind[e] == SW_GK_REF && !prod[w->arg[e]]) ok = false;
                if (ok) prod[r] = changed = true;
            }
        }
    }
    for (int32_t r = 0; r < w->n_rules; r++)
        for (int32_t a = w->alt_off[r]; a < w->alt_off[r + 1]; a++)
            for (int32_t e = w->alt_elem[a]; e < w->alt_elem[a + 1]; e++)
                if (w->kind[e] == SW_GK_REF && !prod[w->arg[e]]) w->alt_dead[a] = 1;
}

static bool w_nullable_elem(const wgram *w, const uint8_t *nul, int32_t e) {
    return w->kind[e] == SW_GK_TERM ? w->terms[w->arg[e]].accept[0] : nul[w->arg[e]];
}

static void w_nullable(const wgram *w, uint8_t *nul) {
    bool changed = true;
    while (changed) {
        changed = false;
        for (int32_t r = 0; r < w->n_rules; r++) {
            if (nul[r]) continue;
            for (int32_t a = w->alt_off[r]; a < w->alt_off[r + 1] && !nul[r]; a++) {
                if (w->alt_dead[a]) continue;
                bool ok = true;
                for (int32_t e = w->alt_elem[a]; e < w->alt_elem[a + 1] && ok; e++)
                    ok = w_nullable_elem(w, nul, e);
                if (ok) nul[r] = changed = true;
            }
        }
    }
}

/* Left recursion: a rule that can reach itself through references each
 * preceded, in its alternative, by nullable elements only. Iterative DFS over
 * those "left" references (precomputed per rule, CSR). */
static sw_status w_left_recursion(const wgram *w, const uint8_t *nul, sw_gb *b, const char *kind,
                                  sw_err *err) {
    int32_t n = w->n_rules;
    uint8_t *visit = calloc((size_t)n, 1);
    int32_t *stack = malloc((size_t)n * 2 * sizeof *stack);
    int32_t *off = calloc((size_t)n + 1, sizeof *off);
    int32_t *to = malloc((size_t)(w->n_elems ? w->n_elems : 1) * sizeof *to);
    sw_status st = SW_OK;
    if (!visit || !stack || !off || !to) {
        st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory");
        goto done;
    }
    int32_t m = 0;
    for (int32_t r = 0; r < n; r++) {
        off[r] = m;
        for (int32_t a = w->alt_off[r]; a < w->alt_off[r + 1]; a++) {
            if (w->alt_dead[a]) continue;
            for (int32_t e = w->alt_elem[a]; e < w->alt_elem[a + 1]; e++) {
                if (w->kind[e] == SW_GK_REF) to[m++] = w->arg[e];
                if (!w_nullable_elem(w, nul, e)) break;
            }
        }
    }
    off[n] = m;
    for (int32_t start = 0; start < n && st == SW_OK; start++) {
        if (visit[start]) continue;
        int32_t sp = 0;
        stack[sp++] = start;
        stack[sp++] = off[start];
        visit[start] = V_ACTIVE;
        while (sp > 0) {
            int32_t r = stack[sp - 2], cur = stack[sp - 1];
            if (cur >= off[r + 1]) {
                visit[r] = V_DONE;
                sp -= 2;
                continue;
            }
            stack[sp - 1] = cur + 1;
            int32_t s2 = to[cur];
            if (visit[s2] == V_ACTIVE) {
                st = sw_err_set(err, SW_E_UNSUPPORTED,
                                "%s: rule '%s' is left-recursive (it can reach itself before "
                                "reading any input), which is not supported",
                                kind, b->rules[w->old_of[s2]].name);
                break;
            }
            if (visit[s2] == V_NEW) {
                visit[s2] = V_ACTIVE;
                stack[sp++] = s2;
                stack[sp++] = off[s2];
            }
        }
    }
done:
    free(visit);
    free(stack);
    free(off);
    free(to);
    return st;
}

#define NEED_INF (SW_GRAMMAR_MAX_DEPTH + 1)
#define LEN_INF (INT64_MAX / 4)
#define FIXPOINT_MAX_ROUNDS 1000

/* need and minlen of every position, from the per-rule minima (fixpoint,
 * callees first; values only decrease, so a capped run leaves upper bounds,
 * which refuse a little more near the depth limit but never accept a dead
 * prefix). */
static void g_costs(sw_grammar *g) {
    int32_t *minneed = malloc((size_t)g->n_rules * sizeof *minneed);
    int64_t *minlen = malloc((size_t)g->n_rules * sizeof *minlen);
    if (!minneed || !minlen) {
        /* out of memory: the most conservative answer */
        for (int32_t e = 0; e < g->n_elems; e++) g->need[e] = 0, g->minlen[e] = 0;
        free(minneed);
        free(minlen);
        return;
    }
    for (int32_t r = 0; r < g->n_rules; r++) minneed[r] = NEED_INF, minlen[r] = LEN_INF;
    bool changed = true;
    for (int round = 0; changed && round < FIXPOINT_MAX_ROUNDS; round++) {
        changed = false;
        for (int32_t r = g->n_rules - 1; r >= 0; r--) {
            int32_t best_need = NEED_INF;
            int64_t best_len = LEN_INF;
            for (int32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
                int32_t e = g->alt_start[a];
                int32_t end = e;
                while (g->ekind[end] != SW_GK_END) end++;
                int32_t nd = 0;
                int64_t ml = 0;
                for (int32_t k = end - 1; k >= e; k--) {
                    if (g->ekind[k] == SW_GK_TERM) {
                        ml += g->terms[g->earg[k]].dist[0];
                    } else {
                        int32_t s = g->earg[k];
                        nd = k == end - 1 ? minneed[s] : SW_MAX(1 + minneed[s], nd);
                        if (nd > NEED_INF) nd = NEED_INF;
                        ml += minlen[s];
                    }
                    if (ml > LEN_INF) ml = LEN_INF;
                }
                if (nd < best_need) best_need = nd;
                if (ml < best_len) best_len = ml;
            }
            if (best_need < minneed[r]) minneed[r] = best_need, changed = true;
            if (best_len < minlen[r]) minlen[r] = best_len, changed = true;
        }
    }
    for (int32_t a = 0; a < g->rule_alt[g->n_rules]; a++) {
        int32_t e = g->alt_start[a];
        int32_t end = e;
        while (g->ekind[end] != SW_GK_END) end++;
        g->need[end] = 0;
        g->minlen[end] = 0;
        for (int32_t k = end - 1; k >= e; k--) {
            if (g->ekind[k] == SW_GK_TERM) {
                g->need[k] = g->need[k + 1];
                g->minlen[k] = g->minlen[k + 1] + g->terms[g->earg[k]].dist[0];
            } else {
                int32_t s = g->earg[k];
                int32_t nd = k == end - 1 ? minneed[s] : SW_MAX(1 + minneed[s], g->need[k + 1]);
                g->need[k] = nd > NEED_INF ? NEED_INF : nd;
                int64_t ml = g->minlen[k + 1] + minlen[s];
                g->minlen[k] = ml > LEN_INF ? LEN_INF : ml;
            }
        }
    }
    free(minneed);
    free(minlen);
}

static void grammar_destroy(sw_grammar *g) {
    if (!g) return;
    free(g->rule_alt);
    free(g->alt_start);
    free(g->ekind);
    free(g->earg);
    free(g->need);
    free(g->minlen);
    if (g->terms)
        for (int32_t i = 0; i < g->n_terms; i++) sw_dfa_free(&g->terms[i]);
    free(g->terms);
    if (g->rule_names)
        for (int32_t r = 0; r < g->n_rules; r++) free(g->rule_names[r]);
    free(g->rule_names);
    sw_gmask_cache_free(g->cache);
    free(g);
}

sw_grammar *sw_grammar_retain(sw_grammar *g) {
    if (g) __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void sw_grammar_free(sw_grammar *g) {
    if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) grammar_destroy(g);
}

/* The live alternatives of w as an sw_grammar (w's terminals move into it). */
static sw_status g_flatten(wgram *w, sw_gb *b, sw_grammar **out, sw_err *err) {
    sw_grammar *g = calloc(1, sizeof *g);
    if (!g) return sw_err_set(err, SW_E_NOMEM, "grammar: out of memory");
    g->refs = 1;
    g->n_rules = w->n_rules;
    int32_t n_alts = 0, n_elems = 0;
    for (int32_t a = 0; a < w->n_alts; a++)
        if (!w->alt_dead[a]) n_alts++, n_elems += w->alt_elem[a + 1] - w->alt_elem[a] + 1;
    g->n_elems = n_elems;
    g->rule_alt = malloc(((size_t)g->n_rules + 1) * sizeof *g->rule_alt);
    g->alt_start = malloc(((size_t)n_alts + 1) * sizeof *g->alt_start);
    g->ekind = malloc((size_t)(n_elems ? n_elems : 1));
    g->earg = malloc((size_t)(n_elems ? n_elems : 1) * sizeof *g->earg);
    g->need = malloc((size_t)(n_elems ? n_elems : 1) * sizeof *g->need);
    g->minlen = malloc((size_t)(n_elems ? n_elems : 1) * sizeof *g->minlen);
    g->rule_names = calloc((size_t)g->n_rules, sizeof *g->rule_names);
    g->cache = sw_gmask_cache_create();
    if (!g->rule_alt || !g->alt_start || !g->ekind || !g->earg || !g->need || !g->minlen ||
        !g->rule_names || !g->cache) {
        grammar_destroy(g);
        return sw_err_set(err, SW_E_NOMEM, "grammar: out of memory");
    }
    int32_t ai = 0, ei = 0;
    for (int32_t r = 0; r < w->n_rules; r++) {
        g->rule_alt[r] = ai;
        g->rule_names[r] = strdup(b->rules[w->old_of[r]].name);
        if (!g->rule_names[r]) {
            grammar_destroy(g);
            return sw_err_set(err, SW_E_NOMEM, "grammar: out of memory");
        }
        for (int32_t a = w->alt_off[r]; a < w->alt_off[r + 1]; a++) {
            if (w->alt_dead[a]) continue;
            g->alt_start[ai++] = ei;
            for (int32_t e = w->alt_elem[a]; e < w->alt_elem[a + 1]; e++) {
                g->ekind[ei] = w->kind[e];
                g->earg[ei++] = w->arg[e];
            }
            g->ekind[ei] = SW_GK_END;
            g->earg[ei++] = r;
        }
    }
    g->rule_alt[w->n_rules] = ai;
    g->alt_start[ai] = ei;
    g->terms = w->terms;
    g->n_terms = w->n_terms;
    g->n_dfa_states = (int32_t)w->total_states;
    w->terms = NULL;
    w->n_terms = 0;
    g->root = 0;
    g_costs(g);
    *out = g;
    return SW_OK;
}

sw_status sw_gb_finish(sw_gb *b, int32_t root, const char *kind, sw_grammar **out, sw_err *err) {
    *out = NULL;
    if (sw_gb_failed(b, err)) return b->over ? SW_E_RANGE : SW_E_NOMEM;
    if (root < 0 || root >= b->n_rules) return sw_err_set(err, SW_E_INVALID_ARG, "%s: no root rule", kind);
    inl c = {b, calloc((size_t)b->n_rules, 1), calloc((size_t)b->n_rules, sizeof(sw_rx *))};
    wgram w = {0};
    uint8_t *prod = NULL, *nul = NULL;
    sw_status st = SW_OK;
    if (!c.visit || !c.rx || !inline_rules(&c, root)) {
        st = sw_err_set(err, SW_E_NOMEM, "%s: out of memory", kind);
        goto done;
    }
    if ((st = w_build(b, &c, root, kind, &w, err)) != SW_OK) goto done;
    prod = calloc((size_t)w.n_rules, 1);
    nul = calloc((size_t)w.n_rules, 1);
    if (!prod || !nul) {
        st = sw_err_set(err, SW_E_NOMEM, "%s: out of memory", kind);
        goto done;
    }
    w_productive(&w, prod);
    if (!prod[0]) {
        /* name a rule that can never end, if one other than the root */
        const char *culprit = NULL;
        for (int32_t r = 1; r < w.n_rules && !culprit; r++)
            if (!prod[r]) culprit = b->rules[w.old_of[r]].name;
        if (culprit)
            st = sw_err_set(err, SW_E_INVALID_ARG,
                            "%s: matches nothing: no finite output satisfies it ('%s' can never end)",
                            kind, culprit);
        else
            st = sw_err_set(err, SW_E_INVALID_ARG,
                            "%s: matches nothing: no finite output satisfies its root rule '%s'", kind,
                            b->rules[root].name);
        goto done;
    }
    w_nullable(&w, nul);
    if ((st = w_left_recursion(&w, nul, b, kind, err)) != SW_OK) goto done;
    if ((st = g_flatten(&w, b, out, err)) != SW_OK) goto done;
    int32_t root_need = NEED_INF;
    for (int32_t a = (*out)->rule_alt[0]; a < (*out)->rule_alt[1]; a++)
        root_need = SW_MIN(root_need, (*out)->need[(*out)->alt_start[a]]);
    if (1 + root_need > SW_GRAMMAR_MAX_DEPTH) {
        sw_grammar_free(*out);
        *out = NULL;
        st = sw_err_set(err, SW_E_RANGE,
                        "%s: every output needs more than %d levels of nesting", kind,
                        SW_GRAMMAR_MAX_DEPTH);
    }
done:
    free(c.visit);
    free(c.rx);
    free(prod);
    free(nul);
    wgram_free(&w);
    return st;
}
