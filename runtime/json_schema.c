/* json_schema.c — JSON Schema to grammar (see json_schema.h).
 *
 * Every schema node becomes one grammar element: a terminal for what is
 * regular (strings, numbers, literals), a rule for what nests (objects,
 * arrays, unions, references). A $ref target becomes one rule, made before
 * its body so that recursion just refers to it. Objects list their properties
 * in schema order with optional ones skippable: rule T_j is "what may follow
 * once property j is next", so an object costs O(properties) rules. Arrays
 * count their items the same way, with a right-recursive star past the last
 * counted position. Errors name the keyword and its place as a JSON pointer. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "grammar_internal.h"
#include "json_schema.h"

#define SCHEMA_MAX_NEST 256
#define SCHEMA_MAX_POSITIONS 4096 /* counted array items / object properties */
#define SCHEMA_MAX_LITERALS 100000
#define SCHEMA_MAX_LENGTH 2048 /* minLength / maxLength (a DFA counts them) */

/* JSON types, as bits */
enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_INT = 32, T_FRAC = 64, T_ALL = 127 };

typedef struct sc {
    sw_gb *b;
    sw_arena *a;
    const cJSON *root;
    sw_err *err;
    sw_status st;
    int depth;
    struct {
        const cJSON *target;
        int32_t rule;
    } *memo;
    int32_t n_memo, cap_memo;
    sw_dfa **dfas; /* owned; expressions refer to them until the grammar is built */
    int32_t n_dfas, cap_dfas;
    int32_t any_rule;
    sw_rx *ws;
    char path[512];
    size_t path_len;
    int32_t n_literals;
} sc;

static bool sfail(sc *c, sw_status st, const char *fmt, ...) {
    if (c->st != SW_OK) return false;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = sw_err_set(c->err, st, "schema at #%s: %s", c->path, msg);
    return false;
}

static bool oom(sc *c) {
    return sfail(c, SW_E_NOMEM, "out of memory");
}

static size_t path_push(sc *c, const char *seg) {
    size_t old = c->path_len;
    int n = snprintf(c->path + old, sizeof c->path - old, "/%s", seg);
    if (n > 0) c->path_len = SW_MIN(sizeof c->path - 1, old + (size_t)n);
    return old;
}

static size_t path_push_i(sc *c, const char *seg, int i) {
    char b[96];
    snprintf(b, sizeof b, "%s/%d", seg, i);
    return path_push(c, b);
}

static void path_pop(sc *c, size_t old) {
    c->path_len = old;
    c->path[old] = '\0';
}

static sw_dfa *keep_dfa(sc *c) {
    if (c->n_dfas == c->cap_dfas) {
        int32_t n = c->cap_dfas ? 2 * c->cap_dfas : 16;
        sw_dfa **d = realloc(c->dfas, (size_t)n * sizeof *d);
        if (!d) return NULL;
        c->dfas = d;
        c->cap_dfas = n;
    }
    sw_dfa *d = calloc(1, sizeof *d);
    if (d) c->dfas[c->n_dfas++] = d;
    return d;
}

/* A rule whose alternatives are single elements. */
static bool rule_of_elems(sc *c, const char *name, const sw_gelem *e, int32_t n, sw_gelem *out) {
    int32_t r = sw_gb_rule(c->b, name);
    if (r < 0) return oom(c);
    for (int32_t i = 0; i < n; i++)
        if (!sw_gb_alt1(c->b, r, e[i])) return oom(c);
    *out = sw_ge_ref(r);
    return true;
}

/* ---- JSON text pieces ---- */

/* The canonical JSON encoding of a UTF-8 string (with quotes). */
static sw_rx *json_string_lit(sc *c, const char *s) {
    size_t n = strlen(s), k = 0;
    char *buf = malloc(6 * n + 3);
    if (!buf) return NULL;
    buf[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': buf[k++] = '\\', buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\', buf[k++] = '\\'; break;
        case '\b': buf[k++] = '\\', buf[k++] = 'b'; break;
        case '\f': buf[k++] = '\\', buf[k++] = 'f'; break;
        case '\n': buf[k++] = '\\', buf[k++] = 'n'; break;
        case '\r': buf[k++] = '\\', buf[k++] = 'r'; break;
        case '\t': buf[k++] = '\\', buf[k++] = 't'; break;
        default:
            if (ch < 0x20 || ch == 0x7F) k += (size_t)snprintf(buf + k, 7, "\\u%04x", ch);
            else buf[k++] = (char)ch;
        }
    }
    buf[k++] = '"';
    sw_rx *x = sw_rx_lit(c->a, buf, k);
    free(buf);
    return x;
}

static sw_rx *any_json_string(sc *c) {
    return sw_rx_cat3(c->a, sw_rx_str(c->a, "\""), sw_rx_rep(c->a, sw_rx_json_char(c->a), 0, -1),
                      sw_rx_str(c->a, "\""));
}

static sw_rx *punct(sc *c, const char *p) {
    /* ws p ws, or p ws when p starts a value ("{", "[") */
    return sw_rx_cat3(c->a, c->ws, sw_rx_str(c->a, p), c->ws);
}

/* ---- any JSON value ---- */

static bool any_value(sc *c, sw_gelem *out) {
    if (c->any_rule >= 0) {
        *out = sw_ge_ref(c->any_rule);
        return true;
    }
    sw_arena *a = c->a;
    int32_t v = sw_gb_rule(c->b, "any value");
    int32_t obj = sw_gb_rule(c->b, "any object");
    int32_t ot = sw_gb_rule(c->b, "any object members");
    int32_t arr = sw_gb_rule(c->b, "any array");
    int32_t at = sw_gb_rule(c->b, "any array items");
    if (v < 0 || obj < 0 || ot < 0 || arr < 0 || at < 0) return oom(c);
    c->any_rule = v;
    sw_rx *lits = sw_rx_alt(a, (sw_rx *[]){sw_rx_str(a, "true"), sw_rx_str(a, "false"), sw_rx_str(a, "null")}, 3);
    sw_rx *key = sw_rx_cat3(a, any_json_string(c), c->ws, sw_rx_cat2(a, sw_rx_str(a, ":"), c->ws));
    sw_rx *open_o = sw_rx_cat2(a, sw_rx_str(a, "{"), c->ws), *close_o = sw_rx_cat2(a, c->ws, sw_rx_str(a, "}"));
    sw_rx *open_a = sw_rx_cat2(a, sw_rx_str(a, "["), c->ws), *close_a = sw_rx_cat2(a, c->ws, sw_rx_str(a, "]"));
    bool ok = sw_gb_alt1(c->b, v, sw_ge_term(any_json_string(c))) &&
              sw_gb_alt1(c->b, v, sw_ge_term(sw_schema_number_any(a, false))) &&
              sw_gb_alt1(c->b, v, sw_ge_term(lits)) && sw_gb_alt1(c->b, v, sw_ge_ref(obj)) &&
              sw_gb_alt1(c->b, v, sw_ge_ref(arr)) &&
              sw_gb_alt1(c->b, obj, sw_ge_term(sw_rx_cat2(a, open_o, sw_rx_str(a, "}")))) &&
              sw_gb_alt(c->b, obj, (sw_gelem[]){sw_ge_term(sw_rx_cat2(a, open_o, key)), sw_ge_ref(v), sw_ge_ref(ot), sw_ge_term(close_o)}, 4) &&
              sw_gb_alt(c->b, ot, (sw_gelem[]){sw_ge_term(sw_rx_cat2(a, punct(c, ","), key)), sw_ge_ref(v), sw_ge_ref(ot)}, 3) &&
              sw_gb_alt(c->b, ot, NULL, 0) &&
              sw_gb_alt1(c->b, arr, sw_ge_term(sw_rx_cat2(a, open_a, sw_rx_str(a, "]")))) &&
              sw_gb_alt(c->b, arr, (sw_gelem[]){sw_ge_term(open_a), sw_ge_ref(v), sw_ge_ref(at), sw_ge_term(close_a)}, 4) &&
              sw_gb_alt(c->b, at, (sw_gelem[]){sw_ge_term(punct(c, ",")), sw_ge_ref(v), sw_ge_ref(at)}, 3) &&
              sw_gb_alt(c->b, at, NULL, 0);
    if (!ok) return oom(c);
    *out = sw_ge_ref(v);
    return true;
}

/* ---- keyword tables ---- */

static const char *const k_annotations[] = {
    "title", "description", "default", "examples", "example", "$comment", "deprecated",
    "readOnly", "writeOnly", "$schema", "$id", "$anchor", "$defs", "definitions",
    "contentMediaType", "contentEncoding", "contentSchema", "discriminator", "nullable", NULL};

static const char *const k_supported[] = {
    "type", "enum", "const", "properties", "required", "additionalProperties",
    "unevaluatedProperties", "items", "prefixItems", "additionalItems", "minItems", "maxItems",
    "uniqueItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "allOf", "$ref", NULL};

static const char *const k_object_kw[] = {"properties", "required", "additionalProperties", "unevaluatedProperties", NULL};
static const char *const k_array_kw[] = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", NULL};
static const char *const k_string_kw[] = {"minLength", "maxLength", "pattern", "format", NULL};
static const char *const k_number_kw[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};

static bool in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list)) return true;
    return false;
}

static bool is_annotation(const char *k) {
    return in_list(k, k_annotations) || !strncmp(k, "x-", 2);
}

static bool has_any(const cJSON *s, const char *const *kw) {
    for (; *kw; kw++)
        if (cJSON_GetObjectItemCaseSensitive(s, *kw)) return true;
    return false;
}

/* The first key of s that constrains (not an annotation) other than those in except. */
static const char *other_constraint(const cJSON *s, const char *const *except) {
    for (const cJSON *k = s->child; k; k = k->next)
        if (!is_annotation(k->string) && !in_list(k->string, except)) return k->string;
    return NULL;
}

static const cJSON *kw(const cJSON *s, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(s, k);
}

/* ---- $ref ---- */

static const cJSON *resolve(sc *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const cJSON *cur = c->root;
    const char *p = ref + 1;
    if (*p == '\0') return cur;
    if (*p != '/') return NULL;
    while (*p == '/' && cur) {
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof seg) {
            if (p[0] == '~' && p[1] == '0') seg[n++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1') seg[n++] = '/', p += 2;
            else if (p[0] == '%' && p[1] && p[2]) {
                char hex[3] = {p[1], p[2], 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (*end) return NULL;
                seg[n++] = (char)v;
                p += 3;
            } else seg[n++] = *p++;
        }
        if (*p && *p != '/') return NULL; /* segment too long */
        seg[n] = '\0';
        if (cJSON_IsArray(cur)) {
            char *end;
            long i = strtol(seg, &end, 10);
            if (*end || n == 0) return NULL;
            cur = cJSON_GetArrayItem(cur, (int)i);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        } else {
            return NULL;
        }
    }
    return cur;
}

static bool compile(sc *c, const cJSON *s, sw_gelem *out);

static bool compile_ref(sc *c, const char *ref, sw_gelem *out) {
    const cJSON *t = resolve(c, ref);
    if (!t) {
        if (ref[0] != '#') return sfail(c, SW_E_UNSUPPORTED, "$ref '%.200s' is not supported (only local refs: '#' and '#/...')", ref);
        return sfail(c, SW_E_INVALID_ARG, "$ref '%.200s' does not resolve", ref);
    }
    for (int32_t i = 0; i < c->n_memo; i++)
        if (c->memo[i].target == t) {
            *out = sw_ge_ref(c->memo[i].rule);
            return true;
        }
    char name[300];
    snprintf(name, sizeof name, "$ref %.280s", ref);
    int32_t r = sw_gb_rule(c->b, name);
    if (r < 0) return oom(c);
    if (c->n_memo == c->cap_memo) {
        int32_t n = c->cap_memo ? 2 * c->cap_memo : 16;
        void *m = realloc(c->memo, (size_t)n * sizeof *c->memo);
        if (!m) return oom(c);
        c->memo = m;
        c->cap_memo = n;
    }
    c->memo[c->n_memo].target = t;
    c->memo[c->n_memo].rule = r;
    c->n_memo++;
    /* compile the target with its own path in messages */
    char saved[sizeof c->path];
    size_t saved_len = c->path_len;
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%.500s", ref + 1);
    c->path_len = strlen(c->path);
    sw_gelem e;
    bool ok = compile(c, t, &e);
    memcpy(c->path, saved, sizeof saved);
    c->path_len = saved_len;
    if (!ok) return false;
    if (!sw_gb_alt1(c->b, r, e)) return oom(c);
    *out = sw_ge_ref(r);
    return true;
}

/* ---- type sets (for oneOf) ---- */

static int value_types(const cJSON *v) {
    if (cJSON_IsNull(v)) return T_NULL;
    if (cJSON_IsBool(v)) return T_BOOL;
    if (cJSON_IsObject(v)) return T_OBJ;
    if (cJSON_IsArray(v)) return T_ARR;
    if (cJSON_IsString(v)) return T_STR;
    if (cJSON_IsNumber(v)) return v->valuedouble == floor(v->valuedouble) ? T_INT : T_FRAC;
    return 0;
}

static int type_bits(const char *t) {
    if (!strcmp(t, "null")) return T_NULL;
    if (!strcmp(t, "boolean")) return T_BOOL;
    if (!strcmp(t, "object")) return T_OBJ;
    if (!strcmp(t, "array")) return T_ARR;
    if (!strcmp(t, "string")) return T_STR;
    if (!strcmp(t, "integer")) return T_INT;
    if (!strcmp(t, "number")) return T_INT | T_FRAC;
    return -1;
}

/* Types an instance valid against s can have (an over-estimate). */
static int valid_types(sc *c, const cJSON *s, int depth) {
    if (depth > 64) return T_ALL;
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s) ? T_ALL : 0;
    if (!cJSON_IsObject(s)) return T_ALL;
    int t = T_ALL;
    const cJSON *ty = kw(s, "type");
    if (cJSON_IsString(ty) && type_bits(ty->valuestring) > 0) t = type_bits(ty->valuestring);
    if (cJSON_IsArray(ty)) {
        t = 0;
        for (const cJSON *x = ty->child; x; x = x->next)
            if (cJSON_IsString(x) && type_bits(x->valuestring) > 0) t |= type_bits(x->valuestring);
    }
    const cJSON *en = kw(s, "enum"), *co = kw(s, "const");
    if (cJSON_IsArray(en)) {
        int e = 0;
        for (const cJSON *x = en->child; x; x = x->next) e |= value_types(x);
        t &= e;
    }
    if (co) t &= value_types(co);
    const cJSON *ref = kw(s, "$ref");
    if (cJSON_IsString(ref)) {
        const cJSON *r = resolve(c, ref->valuestring);
        if (r) t &= valid_types(c, r, depth + 1);
    }
    const char *unions[2] = {"anyOf", "oneOf"};
    for (int u = 0; u < 2; u++) {
        const cJSON *l = kw(s, unions[u]);
        if (!cJSON_IsArray(l)) continue;
        int e = 0;
        for (const cJSON *x = l->child; x; x = x->next) e |= valid_types(c, x, depth + 1);
        t &= e;
    }
    const cJSON *all = kw(s, "allOf");
    if (cJSON_IsArray(all))
        for (const cJSON *x = all->child; x; x = x->next) t &= valid_types(c, x, depth + 1);
    return t;
}

/* The literal values s allows, if it is an enum/const schema (through $ref). */
static const cJSON *literals(sc *c, const cJSON *s, bool *single, int depth) {
    if (!cJSON_IsObject(s) || depth > 64) return NULL;
    const cJSON *ref = kw(s, "$ref");
    if (cJSON_IsString(ref)) {
        const cJSON *r = resolve(c, ref->valuestring);
        return r ? literals(c, r, single, depth + 1) : NULL;
    }
    const cJSON *co = kw(s, "const");
    if (co) {
        *single = true;
        return co;
    }
    const cJSON *en = kw(s, "enum");
    if (cJSON_IsArray(en)) {
        *single = false;
        return en->child;
    }
    return NULL;
}

static bool literal_sets_disjoint(const cJSON *a, bool sa, const cJSON *b, bool sb) {
    for (const cJSON *x = a; x; x = sa ? NULL : x->next)
        for (const cJSON *y = b; y; y = sb ? NULL : y->next)
            if (cJSON_Compare(x, y, true)) return false;
    return true;
}

static const cJSON *deref(sc *c, const cJSON *s) {
    for (int i = 0; i < 64 && cJSON_IsObject(s); i++) {
        const cJSON *ref = kw(s, "$ref");
        if (!cJSON_IsString(ref)) return s;
        s = resolve(c, ref->valuestring);
    }
    return s;
}

static bool requires(const cJSON *s, const char *name) {
    const cJSON *req = kw(s, "required");
    for (const cJSON *x = req ? req->child : NULL; x; x = x->next)
        if (cJSON_IsString(x) && !strcmp(x->valuestring, name)) return true;
    return false;
}

/* Some property required by a, whose literal values b's schema for it (or b's
 * ban on extra properties) excludes. */
static bool objects_disjoint(sc *c, const cJSON *a, const cJSON *b) {
    a = deref(c, a);
    b = deref(c, b);
    if (!cJSON_IsObject(a) || !cJSON_IsObject(b)) return false;
    const cJSON *pa = kw(a, "properties"), *pb = kw(b, "properties");
    for (const cJSON *p = pa ? pa->child : NULL; p; p = p->next) {
        if (!requires(a, p->string)) continue;
        bool s1 = false, s2 = false;
        const cJSON *la = literals(c, p, &s1, 0);
        const cJSON *qb = pb ? kw(pb, p->string) : NULL;
        if (!qb) {
            const cJSON *ap = kw(b, "additionalProperties");
            if (cJSON_IsFalse(ap)) return true; /* b cannot have it at all */
            continue;
        }
        const cJSON *lb = literals(c, qb, &s2, 0);
        if (la && lb && literal_sets_disjoint(la, s1, lb, s2)) return true;
    }
    return false;
}

static bool branches_disjoint(sc *c, const cJSON *a, const cJSON *b) {
    int common = valid_types(c, a, 0) & valid_types(c, b, 0);
    if (!common) return true;
    bool s1 = false, s2 = false;
    const cJSON *la = literals(c, a, &s1, 0), *lb = literals(c, b, &s2, 0);
    if (la && lb) return literal_sets_disjoint(la, s1, lb, s2);
    if (common == T_OBJ) return objects_disjoint(c, a, b) || objects_disjoint(c, b, a);
    return false;
}

/* ---- strings ---- */

typedef struct fmt_def {
    const char *name, *regex;
} fmt_def;

/* Formats as regexes (over the decoded string), each stricter than the RFC
 * where that keeps it simple: what they match validates with Python's
 * jsonschema format checkers and pydantic. */
static const fmt_def k_formats[] = {
    {"date", "^[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))$"},
    /* HH:MM:SS only: what every reading accepts (jsonschema's FormatChecker
     * applies its draft-3 time check, strptime "%H:%M:%S", to every draft) */
    {"time", "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"},
    {"date-time", "^[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"},
    {"uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
    {"email", "^[a-z0-9]{1,32}([._+-][a-z0-9]{1,32}){0,3}@[a-z0-9]{1,32}(-[a-z0-9]{1,32}){0,2}(\\.[a-z0-9]{1,32}(-[a-z0-9]{1,32}){0,2}){0,3}\\.[a-z]{2,8}$"},
    {"ipv4", "^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"},
    {"hostname", "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?){0,4}$"},
    {"uri", "^https?://[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?){0,4}(/[A-Za-z0-9._~-]{0,32}){0,8}$"},
    {NULL, NULL},
};

/* Parse a regex, encode it for JSON string bodies, and build its DFA. */
static sw_dfa *body_dfa(sc *c, const char *regex, const char *what) {
    sw_rx *x;
    sw_err e2;
    sw_status st = sw_regex_parse(c->a, regex, strlen(regex), &x, &e2);
    if (st != SW_OK) {
        sfail(c, st, "%s", e2.msg);
        return NULL;
    }
    sw_rx *enc = sw_rx_json_encode(c->a, x);
    sw_dfa *d = keep_dfa(c);
    if (!enc || !d) {
        oom(c);
        return NULL;
    }
    if ((st = sw_dfa_build(enc, SW_GRAMMAR_MAX_DFA_STATES, d, what, &e2)) != SW_OK) {
        sfail(c, st, "%s", e2.msg);
        return NULL;
    }
    return d;
}

static bool get_count(sc *c, const cJSON *s, const char *k, int64_t *v, int64_t limit) {
    const cJSON *x = kw(s, k);
    if (!x) return true;
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble))
        return sfail(c, SW_E_INVALID_ARG, "%s must be a non-negative integer", k);
    if (x->valuedouble > (double)limit) {
        /* generating at most the limit keeps to a subset of what validates */
        if (!strncmp(k, "max", 3)) return *v = limit, true;
        return sfail(c, SW_E_UNSUPPORTED, "%s %.0f is over the supported %lld", k, x->valuedouble,
                     (long long)limit);
    }
    *v = (int64_t)x->valuedouble;
    return true;
}

static bool compile_string(sc *c, const cJSON *s, sw_gelem *out) {
    int64_t min = 0, max = -1;
    if (!get_count(c, s, "minLength", &min, SCHEMA_MAX_LENGTH) ||
        !get_count(c, s, "maxLength", &max, SCHEMA_MAX_LENGTH))
        return false;
    const cJSON *pat = kw(s, "pattern"), *fmt = kw(s, "format");
    sw_dfa *body = NULL;
    if (pat) {
        if (!cJSON_IsString(pat)) return sfail(c, SW_E_INVALID_ARG, "pattern must be a string");
        if (!(body = body_dfa(c, pat->valuestring, "pattern"))) return false;
    }
    if (fmt) {
        if (!cJSON_IsString(fmt)) return sfail(c, SW_E_INVALID_ARG, "format must be a string");
        const fmt_def *f = k_formats;
        while (f->name && strcmp(f->name, fmt->valuestring)) f++;
        if (!f->name)
            return sfail(c, SW_E_UNSUPPORTED,
                         "format '%.60s' is not supported (supported: date-time, date, time, uuid, "
                         "email, ipv4, hostname, uri)",
                         fmt->valuestring);
        sw_dfa *fd = body_dfa(c, f->regex, "format");
        if (!fd) return false;
        if (body) {
            sw_dfa *both = keep_dfa(c);
            sw_err e2;
            if (!both) return oom(c);
            sw_status st = sw_dfa_intersect(body, fd, SW_GRAMMAR_MAX_DFA_STATES, both, "pattern and format", &e2);
            if (st != SW_OK) return sfail(c, st, "%s", e2.msg);
            body = both;
        } else {
            body = fd;
        }
    }
    if (max >= 0 && max < min) {
        *out = sw_ge_term(sw_rx_none(c->a));
        return true;
    }
    /* counted characters in their canonical encoding only (a subset of what
     * validates): a third of the DFA states of every encoding, per count */
    sw_rx *unit = sw_rx_json_char(c->a);
    if (min > 0 || max >= 0) {
        /* and each copy a small DFA rather than the expression's NFA */
        sw_dfa *ud = keep_dfa(c);
        sw_err e2;
        if (!ud) return oom(c);
        sw_status st = sw_dfa_build(sw_rx_json_encode(c->a, sw_rx_cprange(c->a, 0, SW_CP_MAX)),
                                    SW_GRAMMAR_MAX_DFA_STATES, ud, "a character", &e2);
        if (st != SW_OK) return sfail(c, st, "%s", e2.msg);
        unit = sw_rx_from_dfa(c->a, ud);
    }
    sw_rx *counted = sw_rx_rep(c->a, unit, (int32_t)min, (int32_t)max);
    sw_rx *content = counted;
    if (body && (min > 0 || max >= 0)) {
        sw_dfa *len = keep_dfa(c), *both = keep_dfa(c);
        sw_err e2;
        if (!len || !both) return oom(c);
        sw_status st = sw_dfa_build(counted, SW_GRAMMAR_MAX_DFA_STATES, len, "minLength/maxLength", &e2);
        if (st == SW_OK)
            st = sw_dfa_intersect(body, len, SW_GRAMMAR_MAX_DFA_STATES, both, "pattern and length", &e2);
        if (st != SW_OK) return sfail(c, st, "%s", e2.msg);
        content = sw_rx_from_dfa(c->a, both);
    } else if (body) {
        content = sw_rx_from_dfa(c->a, body);
    }
    sw_rx *x = sw_rx_cat3(c->a, sw_rx_str(c->a, "\""), content, sw_rx_str(c->a, "\""));
    if (!x) return oom(c);
    *out = sw_ge_term(x);
    return true;
}

/* ---- numbers ---- */

static bool bound(sc *c, const cJSON *s, bool lower, sw_num_bound *b) {
    const char *inc = lower ? "minimum" : "maximum";
    const char *exc = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    const cJSON *vi = kw(s, inc), *ve = kw(s, exc);
    b->set = false;
    if (vi) {
        if (!cJSON_IsNumber(vi)) return sfail(c, SW_E_INVALID_ARG, "%s must be a number", inc);
        b->set = true;
        b->strict = cJSON_IsTrue(ve); /* draft-04: a boolean flag */
        b->v = vi->valuedouble;
    }
    if (ve && !cJSON_IsBool(ve)) {
        if (!cJSON_IsNumber(ve)) return sfail(c, SW_E_INVALID_ARG, "%s must be a number", exc);
        double v = ve->valuedouble;
        /* the tighter of the two */
        if (!b->set || (lower ? v >= b->v : v <= b->v)) {
            b->set = true;
            b->strict = true;
            b->v = v;
        }
    }
    return true;
}

static bool compile_number(sc *c, const cJSON *s, bool integer, sw_gelem *out) {
    sw_num_bound lo, hi;
    if (!bound(c, s, true, &lo) || !bound(c, s, false, &hi)) return false;
    if (!lo.set && !hi.set) {
        *out = sw_ge_term(sw_schema_number_any(c->a, integer));
        return true;
    }
    sw_dfa *d = keep_dfa(c);
    if (!d) return oom(c);
    sw_err e2;
    sw_status st = sw_schema_number_dfa(integer, lo, hi, d, integer ? "integer" : "number", &e2);
    if (st != SW_OK) return sfail(c, st, "%s", e2.msg);
    *out = sw_ge_term(sw_rx_from_dfa(c->a, d));
    return true;
}

/* ---- objects ---- */

typedef struct prop {
    const char *name;
    const cJSON *schema; /* NULL: any value */
    bool required;
} prop;

/* "key" ws : ws */
static sw_rx *key_rx(sc *c, sw_rx *key) {
    return sw_rx_cat3(c->a, key, c->ws, sw_rx_cat2(c->a, sw_rx_str(c->a, ":"), c->ws));
}

/* Keys other than the declared names: canonical encodings not in the set. */
static sw_rx *extra_key(sc *c, const prop *p, int32_t n) {
    sw_rx *any = sw_rx_json_encode(c->a, sw_rx_rep(c->a, sw_rx_cprange(c->a, 0, SW_CP_MAX), 0, -1));
    sw_rx *body = sw_rx_cat3(c->a, sw_rx_str(c->a, "\""), any, sw_rx_str(c->a, "\""));
    if (n == 0) return body;
    sw_rx **names = sw_arena_alloc(c->a, (size_t)n * sizeof *names);
    if (!names) return NULL;
    for (int32_t i = 0; i < n; i++) names[i] = json_string_lit(c, p[i].name);
    sw_dfa *all = keep_dfa(c), *taken = keep_dfa(c), *rest = keep_dfa(c);
    if (!all || !taken || !rest) return NULL;
    sw_err e2;
    sw_status st = sw_dfa_build(body, SW_GRAMMAR_MAX_DFA_STATES, all, "keys", &e2);
    if (st == SW_OK) st = sw_dfa_build(sw_rx_alt(c->a, names, n), SW_GRAMMAR_MAX_DFA_STATES, taken, "keys", &e2);
    if (st == SW_OK) st = sw_dfa_subtract(all, taken, SW_GRAMMAR_MAX_DFA_STATES, rest, "extra keys", &e2);
    if (st != SW_OK) {
        sfail(c, st, "%s", e2.msg);
        return NULL;
    }
    return sw_rx_from_dfa(c->a, rest);
}

static bool compile_object(sc *c, const cJSON *s, sw_gelem *out) {
    const cJSON *props = kw(s, "properties"), *req = kw(s, "required");
    const cJSON *ap = kw(s, "additionalProperties"), *up = kw(s, "unevaluatedProperties");
    if (props && !cJSON_IsObject(props)) return sfail(c, SW_E_INVALID_ARG, "properties must be an object");
    if (req && !cJSON_IsArray(req)) return sfail(c, SW_E_INVALID_ARG, "required must be an array");
    if (ap && !cJSON_IsBool(ap) && !cJSON_IsObject(ap))
        return sfail(c, SW_E_INVALID_ARG, "additionalProperties must be a boolean or a schema");
    if (up && !cJSON_IsFalse(up))
        return sfail(c, SW_E_UNSUPPORTED, "unevaluatedProperties other than false is not supported");
    if (up && !ap) ap = up; /* without applicators beside it, the same as additionalProperties */
    int32_t n_props = cJSON_GetArraySize(props), n_req = cJSON_GetArraySize(req);
    if (n_props + n_req > SCHEMA_MAX_POSITIONS)
        return sfail(c, SW_E_UNSUPPORTED, "more than %d properties", SCHEMA_MAX_POSITIONS);
    prop *p = sw_arena_alloc(c->a, (size_t)(n_props + n_req + 1) * sizeof *p);
    if (!p) return oom(c);
    int32_t n = 0;
    for (const cJSON *x = props ? props->child : NULL; x; x = x->next) {
        p[n].name = x->string;
        p[n].schema = x;
        p[n].required = requires(s, x->string);
        n++;
    }
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
        if (!cJSON_IsString(r)) return sfail(c, SW_E_INVALID_ARG, "required must list strings");
        bool declared = false;
        for (int32_t i = 0; i < n; i++)
            if (!strcmp(p[i].name, r->valuestring)) declared = true;
        if (declared) continue;
        if (cJSON_IsFalse(ap)) { /* required but forbidden: no object validates */
            *out = sw_ge_term(sw_rx_none(c->a));
            return true;
        }
        p[n].name = r->valuestring;
        p[n].schema = cJSON_IsObject(ap) ? ap : NULL;
        p[n].required = true;
        n++;
    }
    /* extra members: with ap's schema, or any when nothing is declared and
     * nothing forbids them */
    bool extras = cJSON_IsObject(ap) || (n == 0 && !cJSON_IsFalse(ap));
    sw_gelem extra_val = {0};
    sw_rx *extra_k = NULL;
    if (extras) {
        size_t old = path_push(c, "additionalProperties");
        bool ok = cJSON_IsObject(ap) ? compile(c, ap, &extra_val) : any_value(c, &extra_val);
        path_pop(c, old);
        if (!ok) return false;
        extra_k = extra_key(c, p, n);
        if (!extra_k) return c->st == SW_OK ? oom(c) : false;
    }
    sw_gelem *val = sw_arena_alloc(c->a, (size_t)(n + 1) * sizeof *val);
    if (!val) return oom(c);
    for (int32_t i = 0; i < n; i++) {
        size_t old = path_push(c, "properties");
        size_t old2 = path_push(c, p[i].name);
        bool ok = p[i].schema ? compile(c, p[i].schema, &val[i]) : any_value(c, &val[i]);
        path_pop(c, old2);
        path_pop(c, old);
        if (!ok) return false;
    }
    sw_arena *a = c->a;
    sw_rx *comma = punct(c, ",");
    /* T[j], j = 0..n: what may follow once members before j are settled */
    int32_t *T = sw_arena_alloc(a, (size_t)(n + 1) * sizeof *T);
    if (!T) return oom(c);
    T[n] = sw_gb_rule(c->b, "object tail");
    if (T[n] < 0) return oom(c);
    if (extras) {
        sw_gelem e[3] = {sw_ge_term(sw_rx_cat2(a, comma, key_rx(c, extra_k))), extra_val, sw_ge_ref(T[n])};
        if (!sw_gb_alt(c->b, T[n], e, 3)) return oom(c);
    }
    if (!sw_gb_alt(c->b, T[n], NULL, 0)) return oom(c);
    for (int32_t j = n - 1; j >= 0; j--) {
        T[j] = sw_gb_rule(c->b, p[j].name);
        if (T[j] < 0) return oom(c);
        sw_gelem e[3] = {sw_ge_term(sw_rx_cat2(a, comma, key_rx(c, json_string_lit(c, p[j].name)))), val[j],
                         sw_ge_ref(T[j + 1])};
        if (!sw_gb_alt(c->b, T[j], e, 3)) return oom(c);
        if (!p[j].required && !sw_gb_alt1(c->b, T[j], sw_ge_ref(T[j + 1]))) return oom(c);
    }
    int32_t o = sw_gb_rule(c->b, "object");
    if (o < 0) return oom(c);
    sw_rx *open = sw_rx_cat2(a, sw_rx_str(a, "{"), c->ws), *close = sw_rx_cat2(a, c->ws, sw_rx_str(a, "}"));
    int32_t j = 0;
    for (; j < n; j++) {
        sw_gelem e[4] = {sw_ge_term(sw_rx_cat2(a, open, key_rx(c, json_string_lit(c, p[j].name)))), val[j],
                         sw_ge_ref(T[j + 1]), sw_ge_term(close)};
        if (!sw_gb_alt(c->b, o, e, 4)) return oom(c);
        if (p[j].required) break;
    }
    if (j == n) { /* every member optional: extras first, or nothing */
        if (extras) {
            sw_gelem e[4] = {sw_ge_term(sw_rx_cat2(a, open, key_rx(c, extra_k))), extra_val, sw_ge_ref(T[n]),
                             sw_ge_term(close)};
            if (!sw_gb_alt(c->b, o, e, 4)) return oom(c);
        }
        if (!sw_gb_alt1(c->b, o, sw_ge_term(sw_rx_cat2(a, open, sw_rx_str(a, "}"))))) return oom(c);
    }
    *out = sw_ge_ref(o);
    return true;
}

/* ---- arrays ---- */

static bool compile_array(sc *c, const cJSON *s, sw_gelem *out) {
    const cJSON *items = kw(s, "items"), *prefix = kw(s, "prefixItems"), *add = kw(s, "additionalItems");
    const cJSON *uniq = kw(s, "uniqueItems");
    int64_t min = 0, max = -1;
    if (!get_count(c, s, "minItems", &min, SCHEMA_MAX_POSITIONS) ||
        !get_count(c, s, "maxItems", &max, SCHEMA_MAX_POSITIONS))
        return false;
    if (cJSON_IsArray(items)) { /* draft-07 tuples */
        if (prefix) return sfail(c, SW_E_INVALID_ARG, "items as an array together with prefixItems");
        prefix = items;
        items = add;
    } else if (add) {
        add = NULL; /* additionalItems without an items array does nothing */
    }
    if (prefix && !cJSON_IsArray(prefix)) return sfail(c, SW_E_INVALID_ARG, "prefixItems must be an array");
    if (items && !cJSON_IsBool(items) && !cJSON_IsObject(items))
        return sfail(c, SW_E_INVALID_ARG, "items must be a schema");
    if (uniq && !cJSON_IsBool(uniq)) return sfail(c, SW_E_INVALID_ARG, "uniqueItems must be a boolean");
    int32_t k = cJSON_GetArraySize(prefix);
    if (k > SCHEMA_MAX_POSITIONS) return sfail(c, SW_E_UNSUPPORTED, "more than %d prefixItems", SCHEMA_MAX_POSITIONS);
    if (cJSON_IsFalse(items)) max = max < 0 ? k : SW_MIN(max, k);
    if (cJSON_IsTrue(uniq) && (max < 0 || max > 1))
        return sfail(c, SW_E_UNSUPPORTED, "uniqueItems true is not supported (unless maxItems <= 1)");
    if (max >= 0 && max < min) {
        *out = sw_ge_term(sw_rx_none(c->a));
        return true;
    }
    /* explicit positions 1..last; past last, a star when unbounded */
    int64_t last = max >= 0 ? max : SW_MAX(SW_MAX(k, min), 1);
    sw_gelem item = {0};
    if (last > k || max < 0) {
        size_t old = path_push(c, "items");
        bool ok = cJSON_IsObject(items) ? compile(c, items, &item) : any_value(c, &item);
        path_pop(c, old);
        if (!ok) return false;
    }
    sw_gelem *e_at = sw_arena_alloc(c->a, (size_t)(last + 2) * sizeof *e_at);
    if (!e_at) return oom(c);
    for (int32_t i = 0; i < last; i++) {
        if (i < k) {
            size_t old = path_push_i(c, "prefixItems", i);
            bool ok = compile(c, cJSON_GetArrayItem(prefix, i), &e_at[i + 1]);
            path_pop(c, old);
            if (!ok) return false;
        } else {
            e_at[i + 1] = item;
        }
    }
    sw_arena *a = c->a;
    sw_rx *comma = punct(c, ",");
    /* rest[i]: the rule for positions i.. (i >= 2); -1 = nothing more */
    int32_t *rest = sw_arena_alloc(a, (size_t)(last + 3) * sizeof *rest);
    if (!rest) return oom(c);
    rest[last + 1] = -1;
    if (max < 0) {
        int32_t star = sw_gb_rule(c->b, "array items");
        if (star < 0) return oom(c);
        sw_gelem e[3] = {sw_ge_term(comma), item, sw_ge_ref(star)};
        if (!sw_gb_alt(c->b, star, e, 3) || !sw_gb_alt(c->b, star, NULL, 0)) return oom(c);
        rest[last + 1] = star;
    }
    for (int64_t i = last; i >= 2; i--) {
        int32_t r = sw_gb_rule(c->b, "array item");
        if (r < 0) return oom(c);
        sw_gelem e[3] = {sw_ge_term(comma), e_at[i], sw_ge_ref(rest[i + 1])};
        if (!sw_gb_alt(c->b, r, e, rest[i + 1] >= 0 ? 3 : 2)) return oom(c);
        if (i > min && !sw_gb_alt(c->b, r, NULL, 0)) return oom(c);
        rest[i] = r;
    }
    int32_t arr = sw_gb_rule(c->b, "array");
    if (arr < 0) return oom(c);
    sw_rx *open = sw_rx_cat2(a, sw_rx_str(a, "["), c->ws), *close = sw_rx_cat2(a, c->ws, sw_rx_str(a, "]"));
    if (min == 0 && !sw_gb_alt1(c->b, arr, sw_ge_term(sw_rx_cat2(a, open, sw_rx_str(a, "]"))))) return oom(c);
    if (last >= 1) {
        sw_gelem e[4] = {sw_ge_term(open), e_at[1], sw_ge_ref(rest[2]), sw_ge_term(close)};
        int32_t ne = 4;
        if (rest[2] < 0) {
            e[2] = e[3];
            ne = 3;
        }
        if (!sw_gb_alt(c->b, arr, e, ne)) return oom(c);
    }
    *out = sw_ge_ref(arr);
    return true;
}

/* ---- literals, unions, types ---- */

static bool compile_literals(sc *c, const cJSON *s, int types, sw_gelem *out) {
    const cJSON *en = kw(s, "enum"), *co = kw(s, "const");
    if (en && !cJSON_IsArray(en)) return sfail(c, SW_E_INVALID_ARG, "enum must be an array");
    if (en && co) return sfail(c, SW_E_UNSUPPORTED, "enum together with const is not supported");
    const char *other = other_constraint(s, (const char *const[]){"enum", "const", "type", NULL});
    if (other) return sfail(c, SW_E_UNSUPPORTED, "enum/const together with '%s' is not supported", other);
    int32_t n = co ? 1 : cJSON_GetArraySize(en);
    c->n_literals += n;
    if (c->n_literals > SCHEMA_MAX_LITERALS)
        return sfail(c, SW_E_RANGE, "more than %d enum values in all", SCHEMA_MAX_LITERALS);
    sw_rx **alts = sw_arena_alloc(c->a, (size_t)(n ? n : 1) * sizeof *alts);
    if (!alts) return oom(c);
    int32_t m = 0;
    for (const cJSON *v = co ? co : en->child; v; v = co ? NULL : v->next) {
        int vt = value_types(v);
        if (!(vt & types)) continue; /* the type keyword rules it out */
        if (cJSON_IsNumber(v) && fabs(v->valuedouble) > 9007199254740992.0 && vt == T_INT)
            return sfail(c, SW_E_UNSUPPORTED, "enum/const integer beyond 2^53 (not exact as a double)");
        if (cJSON_IsString(v)) {
            alts[m++] = json_string_lit(c, v->valuestring);
        } else {
            char *txt = cJSON_PrintUnformatted(v);
            if (!txt) return oom(c);
            alts[m++] = sw_rx_str(c->a, txt);
            cJSON_free(txt);
        }
    }
    *out = sw_ge_term(sw_rx_alt(c->a, alts, m));
    return true;
}

static bool compile_union(sc *c, const cJSON *s, const char *k, sw_gelem *out) {
    const cJSON *l = kw(s, k);
    if (!cJSON_IsArray(l) || !l->child) return sfail(c, SW_E_INVALID_ARG, "%s must be a non-empty array", k);
    const char *other = other_constraint(s, (const char *const[]){k, NULL});
    if (other) return sfail(c, SW_E_UNSUPPORTED, "%s together with '%s' is not supported", k, other);
    int32_t n = cJSON_GetArraySize(l);
    if (!strcmp(k, "oneOf"))
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = i + 1; j < n; j++)
                if (!branches_disjoint(c, cJSON_GetArrayItem(l, i), cJSON_GetArrayItem(l, j)))
                    return sfail(c, SW_E_UNSUPPORTED,
                                 "oneOf branches %d and %d may both match one value; only oneOf with "
                                 "branches that exclude each other (different types, disjoint "
                                 "literals, or a required discriminating property) is supported",
                                 (int)i, (int)j);
    sw_gelem *e = sw_arena_alloc(c->a, (size_t)n * sizeof *e);
    if (!e) return oom(c);
    int32_t i = 0;
    for (const cJSON *x = l->child; x; x = x->next, i++) {
        size_t old = path_push_i(c, k, i);
        bool ok = compile(c, x, &e[i]);
        path_pop(c, old);
        if (!ok) return false;
    }
    return rule_of_elems(c, k, e, n, out);
}

static bool compile_type(sc *c, const cJSON *s, int t, sw_gelem *out) {
    switch (t) {
    case T_NULL: *out = sw_ge_term(sw_rx_str(c->a, "null")); return true;
    case T_BOOL: *out = sw_ge_term(sw_rx_alt2(c->a, sw_rx_str(c->a, "true"), sw_rx_str(c->a, "false"))); return true;
    case T_OBJ: return compile_object(c, s, out);
    case T_ARR: return compile_array(c, s, out);
    case T_STR: return compile_string(c, s, out);
    case T_INT: return compile_number(c, s, true, out);
    default: return compile_number(c, s, false, out);
    }
}

static bool compile(sc *c, const cJSON *s, sw_gelem *out) {
    if (cJSON_IsBool(s)) {
        if (cJSON_IsTrue(s)) return any_value(c, out);
        *out = sw_ge_term(sw_rx_none(c->a));
        return true;
    }
    if (!cJSON_IsObject(s)) return sfail(c, SW_E_INVALID_ARG, "a schema must be an object or a boolean");
    if (++c->depth > SCHEMA_MAX_NEST) return sfail(c, SW_E_RANGE, "schemas nested deeper than %d", SCHEMA_MAX_NEST);
    bool ok = false;
    for (const cJSON *k = s->child; k; k = k->next)
        if (!is_annotation(k->string) && !in_list(k->string, k_supported)) {
            sfail(c, SW_E_UNSUPPORTED, "keyword '%.60s' is not supported", k->string);
            goto done;
        }
    const cJSON *ref = kw(s, "$ref"), *all = kw(s, "allOf");
    if (ref) {
        const char *other = other_constraint(s, (const char *const[]){"$ref", NULL});
        if (!cJSON_IsString(ref)) sfail(c, SW_E_INVALID_ARG, "$ref must be a string");
        else if (other) sfail(c, SW_E_UNSUPPORTED, "$ref together with '%s' is not supported", other);
        else ok = compile_ref(c, ref->valuestring, out);
        goto done;
    }
    if (all) {
        const char *other = other_constraint(s, (const char *const[]){"allOf", NULL});
        if (!cJSON_IsArray(all) || !all->child) sfail(c, SW_E_INVALID_ARG, "allOf must be a non-empty array");
        else if (other) sfail(c, SW_E_UNSUPPORTED, "allOf together with '%s' is not supported", other);
        else if (all->child->next) sfail(c, SW_E_UNSUPPORTED, "allOf with more than one schema is not supported");
        else {
            size_t old = path_push(c, "allOf/0");
            ok = compile(c, all->child, out);
            path_pop(c, old);
        }
        goto done;
    }
    if (kw(s, "anyOf")) {
        ok = compile_union(c, s, "anyOf", out);
        goto done;
    }
    if (kw(s, "oneOf")) {
        ok = compile_union(c, s, "oneOf", out);
        goto done;
    }
    /* the types to generate */
    int types = 0;
    const cJSON *ty = kw(s, "type");
    if (ty) {
        const cJSON *list = cJSON_IsArray(ty) ? ty->child : ty;
        if (!list && cJSON_IsArray(ty)) {
            sfail(c, SW_E_INVALID_ARG, "type must not be an empty list");
            goto done;
        }
        for (const cJSON *x = list; x; x = cJSON_IsArray(ty) ? x->next : NULL) {
            int t = cJSON_IsString(x) ? type_bits(x->valuestring) : -1;
            if (t < 0) {
                sfail(c, SW_E_INVALID_ARG, "type must be one of null, boolean, object, array, string, integer, number");
                goto done;
            }
            types |= t;
        }
    } else if (kw(s, "enum") || kw(s, "const")) {
        types = T_ALL;
    } else {
        if (has_any(s, k_object_kw)) types |= T_OBJ;
        if (has_any(s, k_array_kw)) types |= T_ARR;
        if (has_any(s, k_string_kw)) types |= T_STR;
        if (has_any(s, k_number_kw)) types |= T_INT | T_FRAC;
        if (!types) {
            ok = any_value(c, out);
            goto done;
        }
    }
    if (kw(s, "enum") || kw(s, "const")) {
        ok = compile_literals(c, s, types, out);
        goto done;
    }
    if (types & T_FRAC) types &= ~T_INT; /* number covers integer */
    sw_gelem e[7];
    int32_t n = 0;
    static const int k_order[7] = {T_OBJ, T_ARR, T_STR, T_INT, T_FRAC, T_BOOL, T_NULL};
    for (int i = 0; i < 7; i++)
        if (types & k_order[i]) {
            if (!compile_type(c, s, k_order[i], &e[n])) goto done;
            n++;
        }
    if (n == 1) {
        *out = e[0];
        ok = true;
    } else {
        ok = rule_of_elems(c, "type", e, n, out);
    }
done:
    c->depth--;
    return ok && c->st == SW_OK;
}

/* A compiler over a fresh arena and builder; false (err set) when out of memory. */
static bool sc_open(sc *c, const cJSON *root, sw_err *err) {
    memset(c, 0, sizeof *c);
    c->root = root;
    c->err = err;
    c->any_rule = -1;
    c->a = sw_arena_create();
    c->b = c->a ? sw_gb_create(c->a) : NULL;
    c->ws = c->b ? sw_rx_json_ws(c->a) : NULL;
    if (!c->ws) sw_err_set(err, SW_E_NOMEM, "schema: out of memory");
    return c->ws != NULL;
}

static void sc_close(sc *c) {
    for (int32_t i = 0; i < c->n_dfas; i++) {
        sw_dfa_free(c->dfas[i]);
        free(c->dfas[i]);
    }
    free(c->dfas);
    free(c->memo);
    sw_gb_free(c->b);
    sw_arena_free(c->a);
}

/* The status of a compilation that stopped: the compiler's, the builder's, or
 * out of memory. */
static sw_status sc_status(sc *c) {
    if (c->st != SW_OK) return c->st;
    if (sw_gb_failed(c->b, c->err)) return SW_E_RANGE;
    return sw_err_set(c->err, SW_E_NOMEM, "schema: out of memory");
}

sw_status sw_grammar_from_json_schema_tree(const cJSON *schema, sw_grammar **out, sw_err *err) {
    *out = NULL;
    sc c;
    sw_status st;
    if (!sc_open(&c, schema, err)) {
        st = SW_E_NOMEM;
        goto done;
    }
    int32_t root = sw_gb_rule(c.b, "root");
    sw_gelem e;
    if (root < 0 || !compile(&c, schema, &e)) {
        st = sc_status(&c);
        goto done;
    }
    sw_gelem top[2] = {sw_ge_term(c.ws), e};
    if (!sw_gb_alt(c.b, root, top, 2)) {
        st = sc_status(&c);
        goto done;
    }
    st = sw_gb_finish(c.b, root, "schema", out, err);
done:
    sc_close(&c);
    return st;
}

/* ---- tool calls ------------------------------------------------------------------ */

/* Free text that never contains the marker that opens a call (or, with no
 * marker, that does not open with optional whitespace and '{'): the part of
 * an answer before its calls when the model may also just talk. */
static sw_rx *free_text(sc *c, const sw_tool_call_syntax *syn) {
    sw_arena *a = c->a;
    sw_rx *any = sw_rx_rep(a, sw_rx_cprange(a, 0, SW_CP_MAX), 0, -1);
    const char *mark = syn->list_open && *syn->list_open ? syn->list_open : syn->open;
    sw_rx *bad = mark && *mark ? sw_rx_cat3(a, any, sw_rx_str(a, mark), any)
                               : sw_rx_cat3(a, c->ws, sw_rx_str(a, "{"), any);
    sw_dfa *all = keep_dfa(c), *taken = keep_dfa(c), *rest = keep_dfa(c);
    if (!all || !taken || !rest || !bad) return NULL;
    sw_err e2;
    sw_status st = sw_dfa_build(any, SW_GRAMMAR_MAX_DFA_STATES, all, "free text", &e2);
    if (st == SW_OK) st = sw_dfa_build(bad, SW_GRAMMAR_MAX_DFA_STATES, taken, "free text", &e2);
    if (st == SW_OK) st = sw_dfa_subtract(all, taken, SW_GRAMMAR_MAX_DFA_STATES, rest, "free text", &e2);
    if (st != SW_OK) {
        sfail(c, st, "%s", e2.msg);
        return NULL;
    }
    return sw_rx_from_dfa(a, rest);
}

/* One call: open {"name": "NAME", "args": ARGS} close, an alternative per tool. */
static int32_t call_rule(sc *c, const sw_tool_call_syntax *syn, const sw_tool_def *tools, int32_t n) {
    sw_arena *a = c->a;
    int32_t call = sw_gb_rule(c->b, "tool call");
    if (call < 0) return oom(c), -1;
    cJSON *no_params = cJSON_Parse("{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}");
    if (!no_params) return oom(c), -1;
    for (int32_t i = 0; i < n && c->st == SW_OK; i++) {
        /* each tool's schema is its own document: $refs resolve within it */
        const cJSON *params = tools[i].parameters ? tools[i].parameters : no_params;
        c->root = params;
        c->path_len = 0;
        size_t old = path_push_i(c, "tools", i);
        sw_gelem args;
        bool ok = compile(c, params, &args);
        path_pop(c, old);
        if (!ok) break;
        sw_rx *open = sw_rx_str(a, syn->open ? syn->open : ""), *close = sw_rx_str(a, syn->close ? syn->close : "");
        sw_rx *head, *tail;
        if (syn->args_marker) { /* open NAME marker ARGS close */
            head = sw_rx_cat3(a, open, sw_rx_str(a, tools[i].name), sw_rx_str(a, syn->args_marker));
            tail = close;
        } else {
            head = sw_rx_cat(a, (sw_rx *[]){open, sw_rx_str(a, "{"), c->ws, json_string_lit(c, syn->name_key), c->ws,
                                            sw_rx_str(a, ":"), c->ws, json_string_lit(c, tools[i].name), c->ws,
                                            sw_rx_str(a, ","), c->ws, json_string_lit(c, syn->args_key), c->ws,
                                            sw_rx_str(a, ":"), c->ws},
                             15);
            tail = sw_rx_cat3(a, c->ws, sw_rx_str(a, "}"), close);
        }
        sw_gelem e[3] = {sw_ge_term(head), args, sw_ge_term(tail)};
        if (!sw_gb_alt(c->b, call, e, 3)) oom(c);
    }
    cJSON_Delete(no_params);
    return c->st == SW_OK ? call : -1;
}

sw_status sw_grammar_tool_calls(const sw_tool_call_syntax *syn, const sw_tool_def *tools, int32_t n_tools,
                                sw_grammar **out, sw_err *err) {
    *out = NULL;
    if (!syn || !tools || n_tools < 1 || syn->max_calls < 0 ||
        (!syn->args_marker && (!syn->name_key || !syn->args_key)))
        return sw_err_set(err, SW_E_INVALID_ARG, "tool calls: no tools, or a bad syntax");
    sc c;
    sw_status st;
    if (!sc_open(&c, NULL, err)) {
        st = SW_E_NOMEM;
        goto done;
    }
    sw_arena *a = c.a;
    int32_t call = call_rule(&c, syn, tools, n_tools);
    int32_t more = sw_gb_rule(c.b, "more tool calls"), root = sw_gb_rule(c.b, "root");
    if (call < 0 || more < 0 || root < 0) {
        st = sc_status(&c);
        goto done;
    }
    /* the calls after the first: up to max_calls - 1 (0: any number) */
    sw_rx *sep = sw_rx_str(a, syn->sep ? syn->sep : "");
    bool ok = true;
    if (syn->max_calls == 0) {
        sw_gelem e[3] = {sw_ge_term(sep), sw_ge_ref(call), sw_ge_ref(more)};
        ok = sw_gb_alt(c.b, more, e, 3) && sw_gb_alt(c.b, more, NULL, 0);
    } else if (syn->max_calls == 1) {
        ok = sw_gb_alt(c.b, more, NULL, 0);
    } else {
        /* R_k ::= sep call R_{k+1} | empty, for k = max_calls-1 down to 1; more is R_1 */
        int32_t next = -1;
        for (int32_t k = syn->max_calls - 1; k >= 1 && ok; k--) {
            int32_t r = k == 1 ? more : sw_gb_rule(c.b, "more tool calls");
            sw_gelem e[3] = {sw_ge_term(sep), sw_ge_ref(call), sw_ge_ref(next)};
            ok = r >= 0 && sw_gb_alt(c.b, r, e, next >= 0 ? 3 : 2) && sw_gb_alt(c.b, r, NULL, 0);
            next = r;
        }
    }
    sw_rx *open = sw_rx_str(a, syn->list_open ? syn->list_open : "");
    sw_rx *close = sw_rx_str(a, syn->list_close ? syn->list_close : "");
    sw_gelem body[4] = {sw_ge_term(open), sw_ge_ref(call), sw_ge_ref(more), sw_ge_term(close)};
    if (syn->text_before) {
        sw_rx *text = free_text(&c, syn);
        if (!text) {
            st = sc_status(&c);
            goto done;
        }
        bool marker = (syn->list_open && *syn->list_open) || (syn->open && *syn->open);
        /* with a marker the text may precede the calls; without one, a call
         * is the whole answer */
        body[0] = sw_ge_term(sw_rx_cat2(a, marker ? text : c.ws, open));
        ok = ok && sw_gb_alt1(c.b, root, sw_ge_term(text)) && sw_gb_alt(c.b, root, body, 4);
    } else {
        /* calls only: a marker opens the answer at once; a bare JSON call may
         * follow whitespace */
        bool marker = (syn->list_open && *syn->list_open) || (syn->open && *syn->open);
        body[0] = sw_ge_term(marker ? open : sw_rx_cat2(a, c.ws, open));
        ok = ok && sw_gb_alt(c.b, root, body, 4);
    }
    if (!ok) {
        st = sc_status(&c);
        goto done;
    }
    st = sw_gb_finish(c.b, root, "tool calls", out, err);
done:
    sc_close(&c);
    return st;
}

sw_status sw_grammar_from_json_schema(const char *json, size_t len, sw_grammar **out, sw_err *err) {
    *out = NULL;
    cJSON *s = cJSON_ParseWithLength(json, len);
    if (!s) return sw_err_set(err, SW_E_FORMAT, "schema: not valid JSON (or nested over %d deep)", CJSON_NESTING_LIMIT);
    sw_status st = sw_grammar_from_json_schema_tree(s, out, err);
    cJSON_Delete(s);
    return st;
}
