/* jinja_parse.c — tokens to an AST, following jinja2's Parser rule for rule
 * (precedence, tuples, filters and tests, subscripts and slices, call
 * arguments, every statement tag) plus what the environment adds: break and
 * continue (loopcontrols) and transformers' {% generation %}.
 *
 * jinja2 checks filter and test names when it compiles, except inside an if
 * statement or an inline if, where an unknown name fails only when run; the
 * parser keeps that distinction ("soft" context). The AST's height is capped
 * so that the evaluator's recursion stays bounded. */
#include "jinja_stb.h"
#include <stdio.h>
#include <string.h>

#include "jinja_impl.h"

#define MAX_AST_DEPTH 400
#define MAX_PARSE_NEST 200

typedef struct parser {
    sw_jinja_tmpl *t;
    const jtok *tk;
    size_t n, i;
    sw_err *err;
    bool failed;
    bool soft;       /* inside an if statement / inline if of the current frame */
    int loops;       /* enclosing for bodies within the current function */
    int nest;        /* recursion guard */
    jnode **pending; /* unknown filters/tests outside a soft frame (so far) */
    jnode **all;     /* every node made: their arrays go to the arena at the end */
} parser;

static const jtok *cur(parser *P) { return &P->tk[P->i]; }
static const jtok *peek(parser *P) { return &P->tk[P->i + 1 < P->n ? P->i + 1 : P->i]; }
static void adv(parser *P) {
    if (P->i + 1 < P->n) P->i++;
}

static bool tok_is(const jtok *t, int type, const char *s) {
    if (t->type != type) return false;
    if (!s) return true;
    size_t k = strlen(s);
    return t->n == k && memcmp(t->s, s, k) == 0;
}
static bool is_op(parser *P, const char *s) { return tok_is(cur(P), T_OP, s); }
static bool is_name(parser *P, const char *s) { return tok_is(cur(P), T_NAME, s); }

static void describe(const jtok *t, char *buf, size_t cap) {
    switch (t->type) {
    case T_EOF: snprintf(buf, cap, "end of template"); break;
    case T_DATA: snprintf(buf, cap, "template data / text"); break;
    case T_VAR_BEGIN: snprintf(buf, cap, "begin of print statement"); break;
    case T_VAR_END: snprintf(buf, cap, "end of print statement"); break;
    case T_BLOCK_BEGIN: snprintf(buf, cap, "begin of statement block"); break;
    case T_BLOCK_END: snprintf(buf, cap, "end of statement block"); break;
    case T_STRING: snprintf(buf, cap, "string"); break;
    case T_INT: snprintf(buf, cap, "integer"); break;
    case T_FLOAT: snprintf(buf, cap, "float"); break;
    default: snprintf(buf, cap, "%.*s", (int)(t->n > 60 ? 60 : t->n), t->s); break;
    }
}

static void *pfail(parser *P, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void *pfail(parser *P, const char *fmt, ...) {
    if (P->failed) return NULL;
    P->failed = true;
    char m[SW_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    sw_err_set(P->err, SW_E_FORMAT, "template syntax error, line %d: %s", cur(P)->line, m);
    return NULL;
}

static void *unexpected(parser *P) {
    char d[80];
    describe(cur(P), d, sizeof d);
    return pfail(P, "unexpected '%s'", d);
}

static bool expect_op(parser *P, const char *s) {
    if (P->failed) return false;
    if (!is_op(P, s)) {
        char d[80];
        describe(cur(P), d, sizeof d);
        pfail(P, "expected token '%s', got '%s'", s, d);
        return false;
    }
    adv(P);
    return true;
}

static bool expect_type(parser *P, int type, const char *what) {
    if (P->failed) return false;
    if (cur(P)->type != type) {
        char d[80];
        describe(cur(P), d, sizeof d);
        pfail(P, "expected token '%s', got '%s'", what, d);
        return false;
    }
    adv(P);
    return true;
}

static bool expect_name(parser *P, const char *s) {
    if (P->failed) return false;
    if (!is_name(P, s)) {
        char d[80];
        describe(cur(P), d, sizeof d);
        pfail(P, "expected token '%s', got '%s'", s, d);
        return false;
    }
    adv(P);
    return true;
}

static jnode *mk(parser *P, int kind, int line) {
    if (P->failed) return NULL;
    jnode *n = ja_alloc(&P->t->arena, sizeof *n);
    if (!n) return pfail(P, "out of memory");
    n->kind = (uint8_t)kind;
    n->line = line;
    n->fid = -1;
    arrput(P->all, n);
    return n;
}

static uint16_t list_depth(jnode **l) {
    uint16_t d = 0;
    for (size_t i = 0; i < (size_t)arrlen(l); i++)
        if (l[i] && l[i]->depth > d) d = l[i]->depth;
    return d;
}

/* A node is complete: check the height of its subtree. */
static jnode *fin(parser *P, jnode *n) {
    if (!n || P->failed) return NULL;
    jnode *kids[4] = {n->a, n->b, n->c, n->d};
    uint16_t d = 0;
    for (int k = 0; k < 4; k++)
        if (kids[k] && kids[k]->depth > d) d = kids[k]->depth;
    jnode **lists[3] = {n->list, n->list2, n->list3};
    for (int k = 0; k < 3; k++) {
        uint16_t ld = lists[k] ? list_depth(lists[k]) : 0;
        if (ld > d) d = ld;
    }
    if (d + 1 > MAX_AST_DEPTH)
        return pfail(P, "template nested too deeply (more than %d levels)", MAX_AST_DEPTH);
    n->depth = (uint16_t)(d + 1);
    return n;
}

static jname tok_name(const jtok *t) {
    jname r = {t->s, t->n};
    return r;
}

static bool enter(parser *P) {
    if (++P->nest > MAX_PARSE_NEST) {
        pfail(P, "template nested too deeply (more than %d levels)", MAX_PARSE_NEST);
        return false;
    }
    return true;
}
static void leave(parser *P) { P->nest--; }

static jnode *parse_expression(parser *P, bool with_condexpr);
static jnode *parse_tuple(parser *P, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens, bool with_namespace);
static jnode *parse_primary(parser *P, bool with_namespace);
static jnode *parse_postfix(parser *P, jnode *node);
static jnode *parse_filter_expr(parser *P, jnode *node);
static jnode *parse_filter(parser *P, jnode *node, bool start_inline);
static jnode **parse_statements(parser *P, const char *const *ends, bool drop_needle);

/* ---- expressions ------------------------------------------------------------------ */

static jnode *parse_condexpr(parser *P);
static jnode *parse_or(parser *P);
static void mark_soft(jnode *n);

static jnode *parse_expression(parser *P, bool with_condexpr) {
    if (!enter(P)) return NULL;
    jnode *r = with_condexpr ? parse_condexpr(P) : parse_or(P);
    leave(P);
    return r;
}

static jnode *parse_condexpr(parser *P) {
    bool was_soft = P->soft;
    int line = cur(P)->line;
    /* the whole inline if compiles in a soft frame, its first operand included,
     * but jinja2 only knows it is one after parsing that operand: filters in it
     * were already checked. */
    jnode *e1 = parse_or(P);
    while (!P->failed && is_name(P, "if")) {
        adv(P);
        P->soft = true;
        mark_soft(e1);
        jnode *n = mk(P, N_CONDEXPR, line);
        if (!n) break;
        n->b = e1;
        n->a = parse_or(P);
        if (is_name(P, "else")) {
            adv(P);
            n->c = parse_condexpr(P);
        }
        P->soft = was_soft;
        e1 = fin(P, n);
        line = cur(P)->line;
    }
    P->soft = was_soft;
    return e1;
}

static jnode *parse_and(parser *P);
static jnode *parse_not(parser *P);
static jnode *parse_compare(parser *P);
static jnode *parse_math1(parser *P);
static jnode *parse_concat(parser *P);
static jnode *parse_math2(parser *P);
static jnode *parse_pow(parser *P);
static jnode *parse_unary(parser *P, bool with_filter);

static jnode *bin(parser *P, int kind, int op, jnode *l, jnode *r, int line) {
    jnode *n = mk(P, kind, line);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = l;
    n->b = r;
    return fin(P, n);
}

/* The operator the current token spells for a left-associative level, 0 if none. */
typedef int (*op_at_fn)(parser *P);

/* operand (op operand)*, folded to the left, as jinja2 builds And, Or, Add ... */
static jnode *left_chain(parser *P, jnode *(*operand)(parser *), op_at_fn op_at, int kind) {
    int line = cur(P)->line;
    jnode *l = operand(P);
    int op;
    while (!P->failed && (op = op_at(P)) != 0) {
        adv(P);
        jnode *r = operand(P);
        l = bin(P, kind, op == -1 ? 0 : op, l, r, line);
        line = cur(P)->line;
    }
    return l;
}

static int or_at(parser *P) { return is_name(P, "or") ? -1 : 0; }
static int and_at(parser *P) { return is_name(P, "and") ? -1 : 0; }
static int add_at(parser *P) { return is_op(P, "+") ? OP_ADD : is_op(P, "-") ? OP_SUB : 0; }
static int mul_at(parser *P) {
    return is_op(P, "*") ? OP_MUL : is_op(P, "/") ? OP_DIV : is_op(P, "//") ? OP_FLOORDIV
           : is_op(P, "%") ? OP_MOD : 0;
}
static int pow_at(parser *P) { return is_op(P, "**") ? OP_POW : 0; }

static jnode *parse_or(parser *P) { return left_chain(P, parse_and, or_at, N_OR); }
static jnode *parse_and(parser *P) { return left_chain(P, parse_not, and_at, N_AND); }

static jnode *parse_not(parser *P) {
    if (is_name(P, "not")) {
        int line = cur(P)->line;
        adv(P);
        if (!enter(P)) return NULL;
        jnode *n = mk(P, N_NOT, line);
        if (n) n->a = parse_not(P);
        leave(P);
        return fin(P, n);
    }
    return parse_compare(P);
}

static int compare_op(parser *P) {
    const jtok *t = cur(P);
    if (t->type != T_OP) return 0;
    if (tok_is(t, T_OP, "==")) return OP_EQ;
    if (tok_is(t, T_OP, "!=")) return OP_NE;
    if (tok_is(t, T_OP, "<")) return OP_LT;
    if (tok_is(t, T_OP, "<=")) return OP_LTEQ;
    if (tok_is(t, T_OP, ">")) return OP_GT;
    if (tok_is(t, T_OP, ">=")) return OP_GTEQ;
    return 0;
}

static jnode *parse_compare(parser *P) {
    int line = cur(P)->line;
    jnode *expr = parse_math1(P);
    jnode **ops = NULL;
    while (!P->failed) {
        int op = compare_op(P);
        if (op) {
            adv(P);
        } else if (is_name(P, "in")) {
            adv(P);
            op = OP_IN;
        } else if (is_name(P, "not") && tok_is(peek(P), T_NAME, "in")) {
            adv(P);
            adv(P);
            op = OP_NOTIN;
        } else {
            break;
        }
        jnode *o = mk(P, N_OPERAND, cur(P)->line);
        if (!o) break;
        o->op = (uint8_t)op;
        o->a = parse_math1(P);
        arrput(ops, fin(P, o));
        line = cur(P)->line;
    }
    if (!ops) return expr;
    jnode *n = mk(P, N_COMPARE, line);
    if (!n) {
        arrfree(ops);
        return NULL;
    }
    n->a = expr;
    n->list = ops;
    return fin(P, n);
}

static jnode *parse_math1(parser *P) { return left_chain(P, parse_concat, add_at, N_BINOP); }

static jnode *parse_concat(parser *P) {
    int line = cur(P)->line;
    jnode *first = parse_math2(P);
    if (P->failed || !is_op(P, "~")) return first;
    jnode *n = mk(P, N_CONCAT, line);
    if (!n) return NULL;
    arrput(n->list, first);
    while (!P->failed && is_op(P, "~")) {
        adv(P);
        arrput(n->list, parse_math2(P));
    }
    return fin(P, n);
}

static jnode *unary_with_filter(parser *P) { return parse_unary(P, true); }
static jnode *parse_pow(parser *P) { return left_chain(P, unary_with_filter, pow_at, N_BINOP); }
static jnode *parse_math2(parser *P) { return left_chain(P, parse_pow, mul_at, N_BINOP); }

static jnode *parse_unary(parser *P, bool with_filter) {
    if (!enter(P)) return NULL;
    int line = cur(P)->line;
    jnode *node;
    if (is_op(P, "-") || is_op(P, "+")) {
        int kind = is_op(P, "-") ? N_NEG : N_POS;
        adv(P);
        node = mk(P, kind, line);
        if (node) node->a = parse_unary(P, false);
        node = fin(P, node);
    } else {
        node = parse_primary(P, false);
    }
    node = parse_postfix(P, node);
    if (with_filter) node = parse_filter_expr(P, node);
    leave(P);
    return node;
}

static jnode *parse_list(parser *P) {
    jnode *n = mk(P, N_LIST, cur(P)->line);
    if (!n || !expect_op(P, "[")) return NULL;
    while (!P->failed && !is_op(P, "]")) {
        if (arrlen(n->list) && !expect_op(P, ",")) break;
        if (is_op(P, "]")) break;
        arrput(n->list, parse_expression(P, true));
    }
    expect_op(P, "]");
    return fin(P, n);
}

static jnode *parse_dict(parser *P) {
    jnode *n = mk(P, N_DICT, cur(P)->line);
    if (!n || !expect_op(P, "{")) return NULL;
    while (!P->failed && !is_op(P, "}")) {
        if (arrlen(n->list) && !expect_op(P, ",")) break;
        if (is_op(P, "}")) break;
        jnode *pair = mk(P, N_PAIR, cur(P)->line);
        if (!pair) break;
        pair->a = parse_expression(P, true);
        if (!expect_op(P, ":")) break;
        pair->b = parse_expression(P, true);
        arrput(n->list, fin(P, pair));
    }
    expect_op(P, "}");
    return fin(P, n);
}

static jnode *const_node(parser *P, jv v, int line) {
    jnode *n = mk(P, N_CONST, line);
    if (n) n->value = v;
    return fin(P, n);
}

static jnode *parse_primary(parser *P, bool with_namespace) {
    if (P->failed) return NULL;
    const jtok *t = cur(P);
    int line = t->line;
    if (t->type == T_NAME) {
        adv(P);
        if (tok_is(t, T_NAME, "true") || tok_is(t, T_NAME, "True")) return const_node(P, jv_bool(true), line);
        if (tok_is(t, T_NAME, "false") || tok_is(t, T_NAME, "False")) return const_node(P, jv_bool(false), line);
        if (tok_is(t, T_NAME, "none") || tok_is(t, T_NAME, "None")) return const_node(P, jv_none(), line);
        if (with_namespace && is_op(P, ".")) {
            adv(P);
            const jtok *attr = cur(P);
            if (!expect_type(P, T_NAME, "name")) return NULL;
            jnode *n = mk(P, N_NSREF, line);
            if (!n) return NULL;
            n->name = tok_name(t);
            n->attr = tok_name(attr);
            return fin(P, n);
        }
        jnode *n = mk(P, N_NAME, line);
        if (n) n->name = tok_name(t);
        return fin(P, n);
    }
    if (t->type == T_STRING) {
        /* adjacent string literals concatenate */
        size_t total = 0, k = P->i;
        while (k < P->n && P->tk[k].type == T_STRING) total += P->tk[k++].n;
        char *buf = ja_alloc(&P->t->arena, total + 1);
        if (!buf) return pfail(P, "out of memory");
        size_t off = 0;
        while (cur(P)->type == T_STRING) {
            memcpy(buf + off, cur(P)->s, cur(P)->n);
            off += cur(P)->n;
            adv(P);
        }
        jstr *s = jstr_new(&P->t->arena, buf, total);
        if (!s) return pfail(P, "out of memory");
        return const_node(P, jv_from_jstr(s, false), line);
    }
    if (t->type == T_INT || t->type == T_FLOAT) {
        adv(P);
        return const_node(P, t->type == T_INT ? jv_int(t->i) : jv_float(t->f), line);
    }
    if (tok_is(t, T_OP, "(")) {
        adv(P);
        jnode *n = parse_tuple(P, false, true, NULL, true, false);
        expect_op(P, ")");
        return P->failed ? NULL : n;
    }
    if (tok_is(t, T_OP, "[")) return parse_list(P);
    if (tok_is(t, T_OP, "{")) return parse_dict(P);
    return unexpected(P);
}

/* Is the current token the end of a tuple? */
static bool tuple_end(parser *P, const char *extra_end) {
    const jtok *t = cur(P);
    if (t->type == T_VAR_END || t->type == T_BLOCK_END || tok_is(t, T_OP, ")")) return true;
    return extra_end && tok_is(t, T_NAME, extra_end);
}

static jnode *parse_tuple(parser *P, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens, bool with_namespace) {
    if (!enter(P)) return NULL;
    int line = cur(P)->line;
    jnode **args = NULL;
    bool is_tuple = false;
    while (!P->failed) {
        if (arrlen(args) && !expect_op(P, ",")) break;
        if (tuple_end(P, extra_end)) break;
        jnode *e = simplified ? parse_primary(P, with_namespace)
                              : parse_expression(P, with_condexpr);
        arrput(args, e);
        if (is_op(P, ","))
            is_tuple = true;
        else
            break;
        line = cur(P)->line;
    }
    leave(P);
    if (P->failed) {
        arrfree(args);
        return NULL;
    }
    if (!is_tuple) {
        if (arrlen(args)) {
            jnode *r = args[0];
            arrfree(args);
            return r;
        }
        if (!explicit_parens) {
            char d[80];
            describe(cur(P), d, sizeof d);
            return pfail(P, "Expected an expression, got '%s'", d);
        }
    }
    jnode *n = mk(P, N_TUPLE, line);
    if (!n) {
        arrfree(args);
        return NULL;
    }
    n->list = args;
    return fin(P, n);
}

/* ( args, name=value, *dyn, **dynkw ) into n->list, n->names/n->list2, n->c, n->d */
static bool parse_call_args(parser *P, jnode *n) {
    int line = cur(P)->line;
    if (!expect_op(P, "(")) return false;
    bool require_comma = false;
#define ENSURE(cond)                                                                      \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            P->failed = false;                                                            \
            pfail(P, "invalid syntax for function call expression (line %d)", line);      \
            return false;                                                                 \
        }                                                                                 \
    } while (0)
    while (!P->failed && !is_op(P, ")")) {
        if (require_comma) {
            if (!expect_op(P, ",")) return false;
            if (is_op(P, ")")) break;
        }
        if (is_op(P, "*")) {
            ENSURE(!n->c && !n->d);
            adv(P);
            n->c = parse_expression(P, true);
        } else if (is_op(P, "**")) {
            ENSURE(!n->d);
            adv(P);
            n->d = parse_expression(P, true);
        } else if (cur(P)->type == T_NAME && tok_is(peek(P), T_OP, "=")) {
            ENSURE(!n->d);
            jname key = tok_name(cur(P));
            adv(P);
            adv(P);
            arrput(n->names, key);
            arrput(n->list2, parse_expression(P, true));
        } else {
            ENSURE(!n->c && !n->d && !arrlen(n->list2));
            arrput(n->list, parse_expression(P, true));
        }
        require_comma = true;
    }
#undef ENSURE
    return expect_op(P, ")");
}

static jnode *parse_call(parser *P, jnode *callee) {
    jnode *n = mk(P, N_CALL, cur(P)->line);
    if (!n) return NULL;
    n->a = callee;
    if (!parse_call_args(P, n)) return NULL;
    return fin(P, n);
}

static jnode *parse_subscribed(parser *P) {
    int line = cur(P)->line;
    jnode *args[3] = {0};
    if (is_op(P, ":")) {
        adv(P);
    } else {
        jnode *node = parse_expression(P, true);
        if (P->failed || !is_op(P, ":")) return node;
        adv(P);
        args[0] = node;
    }
    if (!is_op(P, ":") && !is_op(P, "]") && !is_op(P, ",")) args[1] = parse_expression(P, true);
    if (is_op(P, ":")) {
        adv(P);
        if (!is_op(P, "]") && !is_op(P, ",")) args[2] = parse_expression(P, true);
    }
    jnode *n = mk(P, N_SLICE, line);
    if (!n) return NULL;
    n->a = args[0];
    n->b = args[1];
    n->c = args[2];
    return fin(P, n);
}

static jnode *parse_subscript(parser *P, jnode *node) {
    const jtok *t = cur(P);
    int line = t->line;
    adv(P);
    if (tok_is(t, T_OP, ".")) {
        const jtok *a = cur(P);
        adv(P);
        if (a->type == T_NAME) {
            jnode *n = mk(P, N_GETATTR, line);
            if (!n) return NULL;
            n->a = node;
            n->name = tok_name(a);
            return fin(P, n);
        }
        if (a->type != T_INT) return pfail(P, "expected name or number");
        jnode *n = mk(P, N_GETITEM, line);
        if (!n) return NULL;
        n->a = node;
        n->b = const_node(P, jv_int(a->i), a->line);
        return fin(P, n);
    }
    /* '[' */
    jnode **args = NULL;
    while (!P->failed && !is_op(P, "]")) {
        if (arrlen(args) && !expect_op(P, ",")) break;
        arrput(args, parse_subscribed(P));
    }
    expect_op(P, "]");
    if (P->failed) {
        arrfree(args);
        return NULL;
    }
    jnode *n = mk(P, N_GETITEM, line);
    if (!n) {
        arrfree(args);
        return NULL;
    }
    n->a = node;
    if (arrlen(args) == 1) {
        n->b = args[0];
        arrfree(args);
    } else {
        jnode *tup = mk(P, N_TUPLE, line);
        if (!tup) {
            arrfree(args);
            return NULL;
        }
        tup->list = args;
        n->b = fin(P, tup);
    }
    return fin(P, n);
}

static jnode *parse_postfix(parser *P, jnode *node) {
    while (!P->failed) {
        if (is_op(P, ".") || is_op(P, "["))
            node = parse_subscript(P, node);
        else if (is_op(P, "("))
            node = parse_call(P, node);
        else
            break;
    }
    return node;
}

/* name(.name)* of a filter or test */
static bool dotted_name(parser *P, jname *out) {
    const jtok *t = cur(P);
    if (!expect_type(P, T_NAME, "name")) return false;
    const char *start = t->s;
    const char *end = t->s + t->n;
    while (!P->failed && is_op(P, ".")) {
        adv(P);
        const jtok *u = cur(P);
        if (!expect_type(P, T_NAME, "name")) return false;
        end = u->s + u->n; /* tokens are slices of the source; "a . b" keeps its spaces */
    }
    out->s = start;
    out->n = (size_t)(end - start);
    return true;
}

#define JF_SOFT 0x80

/* An unknown filter or test fails the compile unless it sits in a soft frame;
 * the first operand of an inline if only turns out to be one later, so the
 * verdict waits for the end of the parse. */
static void resolve(parser *P, jnode *n, bool is_filter) {
    n->fid = is_filter ? jf_filter_id(n->name.s, n->name.n) : jf_test_id(n->name.s, n->name.n);
    if (n->fid >= 0) return;
    if (P->soft)
        n->flags |= JF_SOFT;
    else
        arrput(P->pending, n);
}

static void mark_soft(jnode *n) {
    if (!n) return;
    if (n->kind == N_FILTER || n->kind == N_TEST) n->flags |= JF_SOFT;
    jnode *kids[4] = {n->a, n->b, n->c, n->d};
    for (int k = 0; k < 4; k++) mark_soft(kids[k]);
    jnode **lists[3] = {n->list, n->list2, n->list3};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < (size_t)arrlen(lists[k]); i++) mark_soft(lists[k][i]);
}

static jnode *parse_filter(parser *P, jnode *node, bool start_inline) {
    while (!P->failed && (is_op(P, "|") || start_inline)) {
        if (!start_inline) adv(P);
        jnode *n = mk(P, N_FILTER, cur(P)->line);
        if (!n || !dotted_name(P, &n->name)) return NULL;
        n->a = node;
        if (is_op(P, "(") && !parse_call_args(P, n)) return NULL;
        resolve(P, n, true);
        node = fin(P, n);
        start_inline = false;
    }
    return node;
}

static jnode *parse_test(parser *P, jnode *node) {
    int line = cur(P)->line;
    adv(P); /* is */
    bool negated = false;
    if (is_name(P, "not")) {
        adv(P);
        negated = true;
    }
    jnode *n = mk(P, N_TEST, line);
    if (!n || !dotted_name(P, &n->name)) return NULL;
    n->a = node;
    const jtok *t = cur(P);
    if (is_op(P, "(")) {
        if (!parse_call_args(P, n)) return NULL;
    } else if ((t->type == T_NAME || t->type == T_STRING || t->type == T_INT ||
                t->type == T_FLOAT || tok_is(t, T_OP, "[") || tok_is(t, T_OP, "{")) &&
               !tok_is(t, T_NAME, "else") && !tok_is(t, T_NAME, "or") &&
               !tok_is(t, T_NAME, "and")) {
        if (tok_is(t, T_NAME, "is")) return pfail(P, "You cannot chain multiple tests with is");
        jnode *arg = parse_postfix(P, parse_primary(P, false));
        arrput(n->list, arg);
    }
    resolve(P, n, false);
    n = fin(P, n);
    if (negated) {
        jnode *no = mk(P, N_NOT, line);
        if (!no) return NULL;
        no->a = n;
        n = fin(P, no);
    }
    return n;
}

static jnode *parse_filter_expr(parser *P, jnode *node) {
    while (!P->failed) {
        if (is_op(P, "|"))
            node = parse_filter(P, node, false);
        else if (is_name(P, "is"))
            node = parse_test(P, node);
        else if (is_op(P, "("))
            node = parse_call(P, node);
        else
            break;
    }
    return node;
}

/* ---- assignment targets ------------------------------------------------------------ */

static bool can_assign(const jnode *n) {
    if (!n) return false;
    if (n->kind == N_NAME || n->kind == N_NSREF) return true;
    if (n->kind == N_TUPLE) {
        for (size_t i = 0; i < (size_t)arrlen(n->list); i++)
            if (!can_assign(n->list[i]) || n->list[i]->kind == N_NSREF) return false;
        return true;
    }
    return false;
}

static jnode *parse_assign_target(parser *P, bool name_only, const char *extra_end,
                                  bool with_namespace) {
    jnode *target;
    if (name_only) {
        const jtok *t = cur(P);
        if (!expect_type(P, T_NAME, "name")) return NULL;
        target = mk(P, N_NAME, t->line);
        if (target) target->name = tok_name(t);
        target = fin(P, target);
    } else {
        target = parse_tuple(P, true, true, extra_end, false, with_namespace);
    }
    if (P->failed) return NULL;
    if (!can_assign(target)) {
        const char *what = target->kind == N_CONST ? "const" : "expression";
        return pfail(P, "can't assign to '%s'", what);
    }
    return target;
}

/* ---- statements ---------------------------------------------------------------------- */

static jnode *parse_statement(parser *P);

static bool at_end_tag(parser *P, const char *const *ends) {
    for (size_t k = 0; ends[k]; k++)
        if (is_name(P, ends[k])) return true;
    return false;
}

/* Body of a statement up to one of ends (the end tag stays current unless
 * drop_needle). */
static jnode **subparse(parser *P, const char *const *ends) {
    jnode **body = NULL;
    while (!P->failed) {
        const jtok *t = cur(P);
        if (t->type == T_EOF) break;
        if (t->type == T_DATA) {
            jnode *n = mk(P, N_DATA, t->line);
            jstr *s = n ? jstr_new(&P->t->arena, t->s, t->n) : NULL;
            if (!s) {
                pfail(P, "out of memory");
                break;
            }
            n->value = jv_from_jstr(s, false);
            arrput(body, fin(P, n));
            adv(P);
        } else if (t->type == T_VAR_BEGIN) {
            adv(P);
            jnode *n = mk(P, N_PRINT, t->line);
            if (!n) break;
            n->a = parse_tuple(P, false, true, NULL, false, false);
            if (!expect_type(P, T_VAR_END, "end of print statement")) break;
            arrput(body, fin(P, n));
        } else if (t->type == T_BLOCK_BEGIN) {
            adv(P);
            if (ends && at_end_tag(P, ends)) return body;
            jnode *n = parse_statement(P);
            if (P->failed) break;
            if (n) arrput(body, n);
            if (!expect_type(P, T_BLOCK_END, "end of statement block")) break;
        } else {
            unexpected(P);
            break;
        }
    }
    if (!P->failed && ends) {
        char want[200] = "";
        for (size_t k = 0; ends[k]; k++) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "%s'%s'", k ? " or " : "", ends[k]);
        }
        pfail(P, "Unexpected end of template. Jinja was looking for the following tags: %s.",
              want);
    }
    if (P->failed) {
        arrfree(body);
        return NULL;
    }
    return body;
}

static jnode **parse_statements(parser *P, const char *const *ends, bool drop_needle) {
    if (is_op(P, ":")) adv(P);
    if (!expect_type(P, T_BLOCK_END, "end of statement block")) return NULL;
    jnode **body = subparse(P, ends);
    if (P->failed) return NULL;
    if (drop_needle) adv(P);
    return body; /* tracked by the node that owns it (fin) */
}

/* Does a subtree create a macro or caller (something that keeps its scope)? */
static bool defines_closure_node(const jnode *n) {
    if (!n) return false;
    if (n->kind == N_MACRO || n->kind == N_CALLBLOCK) return true;
    const jnode *kids[4] = {n->a, n->b, n->c, n->d};
    for (int k = 0; k < 4; k++)
        if (defines_closure_node(kids[k])) return true;
    jnode **lists[3] = {n->list, n->list2, n->list3};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < (size_t)arrlen(lists[k]); i++)
            if (defines_closure_node(lists[k][i])) return true;
    return false;
}

static bool defines_closure(jnode **body) {
    for (size_t i = 0; i < (size_t)arrlen(body); i++)
        if (defines_closure_node(body[i])) return true;
    return false;
}

static jnode *parse_for(parser *P) {
    jnode *n = mk(P, N_FOR, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    bool soft = P->soft;
    P->soft = false;
    n->a = parse_assign_target(P, false, "in", false);
    if (!expect_name(P, "in")) return NULL;
    P->soft = soft; /* the iterable compiles in the outer frame */
    n->b = parse_tuple(P, false, false, "recursive", false, false);
    P->soft = false;
    if (is_name(P, "if")) {
        adv(P);
        n->c = parse_expression(P, true);
    }
    if (is_name(P, "recursive")) {
        adv(P);
        n->flags |= JF_RECURSIVE;
    }
    static const char *const ends1[] = {"endfor", "else", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    int loops = P->loops;
    if (n->flags & JF_RECURSIVE) P->loops = 0;
    P->loops++;
    n->list = parse_statements(P, ends1, false);
    P->loops = loops;
    if (P->failed) return NULL;
    if (!defines_closure(n->list) && !(n->c && defines_closure_node(n->c)))
        n->flags |= JF_NOCLOSURE;
    if (is_name(P, "endfor")) {
        adv(P);
    } else {
        adv(P);
        n->list2 = parse_statements(P, ends2, true);
    }
    P->soft = soft;
    return fin(P, n);
}

static jnode *parse_if(parser *P) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const ends2[] = {"endif", NULL};
    bool soft = P->soft;
    P->soft = true;
    jnode *root = mk(P, N_IF, cur(P)->line);
    if (!root) return NULL;
    adv(P);
    jnode *node = root;
    jnode **chain = NULL; /* elif nodes, finished innermost first */
    for (;;) {
        node->a = parse_tuple(P, false, false, NULL, false, false);
        node->list = parse_statements(P, ends, false);
        if (P->failed) break;
        const jtok *t = cur(P);
        adv(P);
        if (tok_is(t, T_NAME, "elif")) {
            jnode *e = mk(P, N_IF, cur(P)->line);
            if (!e) break;
            arrput(chain, node);
            arrput(node->list2, e);
            node = e;
            continue;
        }
        if (tok_is(t, T_NAME, "else")) node->list2 = parse_statements(P, ends2, true);
        break;
    }
    if (P->failed) {
        arrfree(chain);
        return NULL;
    }
    /* close the chain from the innermost elif outwards so heights add up */
    fin(P, node);
    for (ptrdiff_t k = arrlen(chain) - 1; k >= 0; k--) fin(P, chain[k]);
    arrfree(chain);
    P->soft = soft;
    return P->failed ? NULL : root;
}

/* (a, b=default, ...) */
static bool parse_signature(parser *P, jnode *n) {
    if (!expect_op(P, "(")) return false;
    while (!P->failed && !is_op(P, ")")) {
        if (arrlen(n->names) && !expect_op(P, ",")) return false;
        const jtok *t = cur(P);
        if (!expect_type(P, T_NAME, "name")) return false;
        arrput(n->names, tok_name(t));
        if (is_op(P, "=")) {
            adv(P);
            arrput(n->list2, parse_expression(P, true));
        } else if (arrlen(n->list2)) {
            pfail(P, "non-default argument follows default argument");
            return false;
        }
    }
    return expect_op(P, ")");
}

/* Does the body refer to caller / varargs / kwargs? (jinja2's find_undeclared) */
static void scan_special(const jnode *n, uint8_t *flags) {
    if (!n) return;
    if (n->kind == N_NAME) {
        if (n->name.n == 6 && !memcmp(n->name.s, "caller", 6)) *flags |= JF_CALLER;
        if (n->name.n == 7 && !memcmp(n->name.s, "varargs", 7)) *flags |= JF_VARARGS;
        if (n->name.n == 6 && !memcmp(n->name.s, "kwargs", 6)) *flags |= JF_KWARGS;
    }
    const jnode *kids[4] = {n->a, n->b, n->c, n->d};
    for (int k = 0; k < 4; k++) scan_special(kids[k], flags);
    jnode **lists[3] = {n->list, n->list2, n->list3};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < (size_t)arrlen(lists[k]); i++) scan_special(lists[k][i], flags);
}

static void macro_flags(jnode *n) {
    uint8_t f = 0;
    for (size_t i = 0; i < (size_t)arrlen(n->list); i++) scan_special(n->list[i], &f);
    /* a parameter of that name is an ordinary argument */
    for (size_t i = 0; i < (size_t)arrlen(n->names); i++) {
        if (n->names[i].n == 6 && !memcmp(n->names[i].s, "caller", 6)) f &= (uint8_t)~JF_CALLER;
        if (n->names[i].n == 7 && !memcmp(n->names[i].s, "varargs", 7)) f &= (uint8_t)~JF_VARARGS;
        if (n->names[i].n == 6 && !memcmp(n->names[i].s, "kwargs", 6)) f &= (uint8_t)~JF_KWARGS;
    }
    n->flags = f;
}

/* A function body (macro, caller): its own frame, no enclosing loop. */
static jnode **function_body(parser *P, const char *end) {
    const char *ends[] = {end, NULL};
    bool soft = P->soft;
    int loops = P->loops;
    P->soft = false;
    P->loops = 0;
    jnode **body = parse_statements(P, ends, true);
    P->soft = soft;
    P->loops = loops;
    return body;
}

static jnode *parse_macro(parser *P) {
    jnode *n = mk(P, N_MACRO, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    const jtok *t = cur(P);
    if (!expect_type(P, T_NAME, "name")) return NULL;
    n->name = tok_name(t);
    bool soft = P->soft;
    P->soft = false;
    if (!parse_signature(P, n)) return NULL;
    P->soft = soft;
    n->list = function_body(P, "endmacro");
    if (P->failed) return NULL;
    macro_flags(n);
    return fin(P, n);
}

static jnode *parse_call_block(parser *P) {
    jnode *n = mk(P, N_CALLBLOCK, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    if (is_op(P, "(")) {
        bool soft = P->soft;
        P->soft = false;
        if (!parse_signature(P, n)) return NULL;
        P->soft = soft;
    }
    n->a = parse_expression(P, true);
    if (P->failed) return NULL;
    if (!n->a || n->a->kind != N_CALL) return pfail(P, "expected call");
    n->list = function_body(P, "endcall");
    if (P->failed) return NULL;
    macro_flags(n);
    return fin(P, n);
}

static jnode *parse_set(parser *P) {
    int line = cur(P)->line;
    adv(P);
    jnode *target = parse_assign_target(P, false, NULL, true);
    if (P->failed) return NULL;
    if (is_op(P, "=")) {
        adv(P);
        jnode *n = mk(P, N_SET, line);
        if (!n) return NULL;
        n->a = target;
        n->b = parse_tuple(P, false, true, NULL, false, false);
        return fin(P, n);
    }
    jnode *n = mk(P, N_SETBLOCK, line);
    if (!n) return NULL;
    n->a = target;
    bool soft = P->soft;
    P->soft = false;
    n->b = parse_filter(P, NULL, false);
    static const char *const ends[] = {"endset", NULL};
    n->list = parse_statements(P, ends, true);
    P->soft = soft;
    return fin(P, n);
}

static jnode *parse_filter_block(parser *P) {
    jnode *n = mk(P, N_FILTERBLOCK, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    bool soft = P->soft;
    P->soft = false;
    n->b = parse_filter(P, NULL, true);
    static const char *const ends[] = {"endfilter", NULL};
    n->list = parse_statements(P, ends, true);
    P->soft = soft;
    return fin(P, n);
}

static jnode *parse_with(parser *P) {
    jnode *n = mk(P, N_WITH, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    while (!P->failed && cur(P)->type != T_BLOCK_END) {
        if (arrlen(n->list2) && !expect_op(P, ",")) return NULL;
        jnode *target = parse_assign_target(P, false, NULL, false);
        if (P->failed) return NULL;
        if (target->kind == N_NSREF) return pfail(P, "can't assign to 'nsref'");
        arrput(n->list2, target);
        if (!expect_op(P, "=")) return NULL;
        arrput(n->list3, parse_expression(P, true));
    }
    static const char *const ends[] = {"endwith", NULL};
    bool soft = P->soft;
    P->soft = false;
    n->list = parse_statements(P, ends, true);
    P->soft = soft;
    return fin(P, n);
}

static jnode *parse_print(parser *P) {
    jnode *n = mk(P, N_PRINT, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    n->flags = 1; /* {% print a, b %}: write each expression of list */
    while (!P->failed && cur(P)->type != T_BLOCK_END) {
        if (arrlen(n->list) && !expect_op(P, ",")) return NULL;
        arrput(n->list, parse_expression(P, true));
    }
    return fin(P, n);
}

/* Tags we parse but refuse when run: jinja2 would need a template loader
 * (include, import, from, extends) or autoescaping / blocks that chat
 * templates do not use. */
static jnode *refused(parser *P, const char *tag, const char *msg, const char *end) {
    jnode *n = mk(P, N_RAISE, cur(P)->line);
    if (!n) return NULL;
    adv(P);
    n->name.s = msg;
    n->name.n = strlen(msg);
    (void)tag;
    if (end) { /* block-like: skip to the end tag, keeping the body's syntax checked */
        if (!strcmp(end, "endblock") && cur(P)->type == T_NAME) adv(P);
        else if (strcmp(end, "endblock")) parse_expression(P, true);
        while (!P->failed && cur(P)->type != T_BLOCK_END) adv(P);
        const char *ends[] = {end, NULL};
        n->list = parse_statements(P, ends, true);
        if (!P->failed && cur(P)->type == T_NAME) adv(P); /* {% endblock name %} */
    } else {
        while (!P->failed && cur(P)->type != T_BLOCK_END && cur(P)->type != T_EOF) adv(P);
    }
    return fin(P, n);
}

static jnode *parse_statement(parser *P) {
    const jtok *t = cur(P);
    if (t->type != T_NAME) return pfail(P, "tag name expected");
    if (!enter(P)) return NULL;
    jnode *r = NULL;
    if (tok_is(t, T_NAME, "for")) r = parse_for(P);
    else if (tok_is(t, T_NAME, "if")) r = parse_if(P);
    else if (tok_is(t, T_NAME, "set")) r = parse_set(P);
    else if (tok_is(t, T_NAME, "macro")) r = parse_macro(P);
    else if (tok_is(t, T_NAME, "call")) r = parse_call_block(P);
    else if (tok_is(t, T_NAME, "filter")) r = parse_filter_block(P);
    else if (tok_is(t, T_NAME, "with")) r = parse_with(P);
    else if (tok_is(t, T_NAME, "print")) r = parse_print(P);
    else if (tok_is(t, T_NAME, "break") || tok_is(t, T_NAME, "continue")) {
        bool brk = tok_is(t, T_NAME, "break");
        if (P->loops <= 0) {
            leave(P);
            return pfail(P, "'%s' outside loop", brk ? "break" : "continue");
        }
        r = fin(P, mk(P, brk ? N_BREAK : N_CONTINUE, t->line));
        adv(P);
    } else if (tok_is(t, T_NAME, "generation")) {
        /* transformers' AssistantTracker: a call block that renders its body */
        jnode *n = mk(P, N_GENERATION, t->line);
        if (n) {
            adv(P);
            n->list = function_body(P, "endgeneration");
        }
        r = fin(P, n);
    } else if (tok_is(t, T_NAME, "include") || tok_is(t, T_NAME, "import") ||
               tok_is(t, T_NAME, "from") || tok_is(t, T_NAME, "extends")) {
        r = refused(P, "include", "no loader for this environment specified", NULL);
    } else if (tok_is(t, T_NAME, "block")) {
        r = refused(P, "block", "{% block %} is not supported in chat templates", "endblock");
    } else if (tok_is(t, T_NAME, "autoescape")) {
        r = refused(P, "autoescape", "{% autoescape %} is not supported in chat templates",
                    "endautoescape");
    } else {
        r = pfail(P, "Encountered unknown tag '%.*s'.", (int)(t->n > 60 ? 60 : t->n), t->s);
    }
    leave(P);
    return r;
}

sw_status jparse(sw_jinja_tmpl *t, const jtok *toks, size_t ntoks, sw_err *err) {
    parser P = {.t = t, .tk = toks, .n = ntoks, .err = err};
    jnode **body = subparse(&P, NULL);
    for (size_t i = 0; !P.failed && i < (size_t)arrlen(P.pending); i++) {
        jnode *n = P.pending[i];
        if (n->flags & JF_SOFT) continue;
        sw_err_set(err, SW_E_FORMAT, "template syntax error, line %d: No %s named '%.*s'.",
                   n->line, n->kind == N_FILTER ? "filter" : "test", (int)n->name.n, n->name.s);
        P.failed = true;
    }
    arrfree(P.pending);
    /* each node owns its arrays (attached or not to a finished tree) */
    for (size_t i = 0; i < (size_t)arrlen(P.all); i++) {
        jnode *n = P.all[i];
        ja_track_array(&t->arena, n->list);
        ja_track_array(&t->arena, n->list2);
        ja_track_array(&t->arena, n->list3);
        ja_track_array(&t->arena, n->names);
    }
    arrfree(P.all);
    ja_track_array(&t->arena, body);
    if (P.failed) return SW_E_FORMAT;
    t->body = body;
    return SW_OK;
}
