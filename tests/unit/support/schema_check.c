/* schema_check.c — a small JSON Schema validator written independently of
 * the grammar compiler (runtime/json_schema.c), as the reference its outputs
 * are checked against in C tests and fuzzers: it reads the instance as a
 * value (cJSON) and the keywords by their meaning, with PCRE2 for patterns.
 * It covers the keywords json_schema.h supports (and fails closed on any
 * other constraining keyword). Numbers compare as doubles, as Python's
 * jsonschema does for floats. */
#include "schema_check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ck {
    const cJSON *root;
    char *why;
    size_t why_len;
    int depth;
} ck;

static bool no(ck *c, const char *what, const char *detail) {
    if (c->why && c->why_len) snprintf(c->why, c->why_len, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return false;
}

static const cJSON *get(const cJSON *s, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(s, k);
}

static const cJSON *resolve(const cJSON *root, const char *ref) {
    if (ref[0] != '#') return NULL;
    const cJSON *cur = root;
    const char *p = ref + 1;
    while (*p == '/' && cur) {
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof seg) {
            if (p[0] == '~' && p[1] == '0') seg[n++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1') seg[n++] = '/', p += 2;
            else seg[n++] = *p++;
        }
        seg[n] = '\0';
        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(seg)) : get(cur, seg);
    }
    return *p ? NULL : cur;
}

static size_t utf8_len(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static bool is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

static bool type_ok(const cJSON *v, const char *t) {
    if (!strcmp(t, "null")) return cJSON_IsNull(v);
    if (!strcmp(t, "boolean")) return cJSON_IsBool(v);
    if (!strcmp(t, "object")) return cJSON_IsObject(v);
    if (!strcmp(t, "array")) return cJSON_IsArray(v);
    if (!strcmp(t, "string")) return cJSON_IsString(v);
    if (!strcmp(t, "number")) return cJSON_IsNumber(v);
    if (!strcmp(t, "integer")) return is_int(v);
    return false;
}

static bool regex_search(const char *pat, const char *s) {
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_ALT_BSUX, &errcode, &erroff, NULL);
    if (!re) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

static int days_in(int y, int m) {
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

static bool digits(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static bool date_ok(const char *s) {
    if (strlen(s) < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
        return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= days_in(y, m);
}

static bool time_ok(const char *s) {
    if (!digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' || !digits(s + 6, 2)) return false;
    if (atoi(s) > 23 || atoi(s + 3) > 59 || atoi(s + 6) > 59) return false;
    const char *p = s + 8;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'Z' || *p == 'z') return p[1] == '\0';
    if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) && p[6] == '\0')
        return atoi(p + 1) <= 23 && atoi(p + 4) <= 59;
    return false;
}

/* HH:MM:SS alone (no offset) */
static bool time_ok_plain(const char *s) {
    return digits(s, 2) && s[2] == ':' && digits(s + 3, 2) && s[5] == ':' && digits(s + 6, 2) && atoi(s) <= 23 &&
           atoi(s + 3) <= 59 && atoi(s + 6) <= 59;
}

static bool format_ok(const char *f, const char *s) {
    if (!strcmp(f, "date")) return strlen(s) == 10 && date_ok(s);
    if (!strcmp(f, "time")) return time_ok(s) || (strlen(s) == 8 && time_ok_plain(s));
    if (!strcmp(f, "date-time")) return strlen(s) > 11 && date_ok(s) && (s[10] == 'T' || s[10] == 't') && time_ok(s + 11);
    if (!strcmp(f, "uuid")) {
        if (strlen(s) != 36) return false;
        for (int i = 0; i < 36; i++) {
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            char c = s[i];
            bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            if (dash ? c != '-' : !hex) return false;
        }
        return true;
    }
    if (!strcmp(f, "email")) {
        const char *at = strchr(s, '@');
        return at && at != s && at[1] && !strchr(at + 1, '@') && strchr(at + 1, '.');
    }
    if (!strcmp(f, "ipv4")) {
        int parts = 0;
        const char *p = s;
        while (parts < 4) {
            if (*p < '0' || *p > '9') return false;
            int v = 0, nd = 0;
            const char *start = p;
            while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0'), nd++;
            if (nd > 3 || v > 255 || (nd > 1 && *start == '0')) return false;
            parts++;
            if (parts < 4 && *p++ != '.') return false;
        }
        return *p == '\0';
    }
    if (!strcmp(f, "hostname")) {
        size_t n = strlen(s);
        if (n == 0 || n > 253) return false;
        const char *p = s;
        while (*p) {
            const char *q = p;
            while (*q && *q != '.') q++;
            size_t l = (size_t)(q - p);
            if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-') return false;
            for (const char *r = p; r < q; r++)
                if (!((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') || (*r >= '0' && *r <= '9') || *r == '-'))
                    return false;
            p = *q ? q + 1 : q;
            if (*q && !*p) return false;
        }
        return true;
    }
    if (!strcmp(f, "uri")) {
        const char *colon = strchr(s, ':');
        if (!colon || colon == s) return false;
        for (const char *p = s; p < colon; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (p > s && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '.' || *p == '-'))))
                return false;
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p <= ' ') return false;
        return true;
    }
    return false;
}

static bool valid(ck *c, const cJSON *v, const cJSON *s);

static int count_valid(ck *c, const cJSON *v, const cJSON *list) {
    int n = 0;
    char *why = c->why;
    c->why = NULL; /* branch failures are expected */
    for (const cJSON *x = list ? list->child : NULL; x; x = x->next) n += valid(c, v, x);
    c->why = why;
    return n;
}

static bool valid_object(ck *c, const cJSON *v, const cJSON *s) {
    const cJSON *props = get(s, "properties"), *req = get(s, "required");
    const cJSON *ap = get(s, "additionalProperties");
    if (!ap) ap = get(s, "unevaluatedProperties");
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
        if (!get(v, r->valuestring)) return no(c, "required property missing", r->valuestring);
    for (const cJSON *m = v->child; m; m = m->next) {
        const cJSON *ps = props ? get(props, m->string) : NULL;
        if (ps) {
            if (!valid(c, m, ps)) return false;
        } else if (ap && !valid(c, m, ap)) {
            return no(c, "additional property not allowed", m->string);
        }
    }
    return true;
}

static bool valid_array(ck *c, const cJSON *v, const cJSON *s) {
    const cJSON *items = get(s, "items"), *prefix = get(s, "prefixItems"), *add = get(s, "additionalItems");
    if (cJSON_IsArray(items)) {
        prefix = items;
        items = add;
    }
    int n = cJSON_GetArraySize(v), k = cJSON_GetArraySize(prefix);
    const cJSON *mn = get(s, "minItems"), *mx = get(s, "maxItems"), *un = get(s, "uniqueItems");
    if (mn && n < mn->valuedouble) return no(c, "too few items", NULL);
    if (mx && n > mx->valuedouble) return no(c, "too many items", NULL);
    int i = 0;
    for (const cJSON *x = v->child; x; x = x->next, i++) {
        const cJSON *is = i < k ? cJSON_GetArrayItem(prefix, i) : items;
        if (is && !valid(c, x, is)) return false;
    }
    if (cJSON_IsTrue(un))
        for (const cJSON *x = v->child; x; x = x->next)
            for (const cJSON *y = x->next; y; y = y->next)
                if (cJSON_Compare(x, y, true)) return no(c, "items not unique", NULL);
    return true;
}

static bool num_bound(const cJSON *s, const char *k, const char *ek, double d, bool lower) {
    const cJSON *b = get(s, k), *e = get(s, ek);
    if (b && cJSON_IsNumber(b)) {
        bool strict = cJSON_IsTrue(e);
        if (lower ? (strict ? !(d > b->valuedouble) : !(d >= b->valuedouble))
                  : (strict ? !(d < b->valuedouble) : !(d <= b->valuedouble)))
            return false;
    }
    if (e && cJSON_IsNumber(e) && (lower ? !(d > e->valuedouble) : !(d < e->valuedouble))) return false;
    return true;
}

static bool valid(ck *c, const cJSON *v, const cJSON *s) {
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s) ? true : no(c, "schema false", NULL);
    if (!cJSON_IsObject(s)) return no(c, "schema is not an object", NULL);
    if (++c->depth > 200) {
        c->depth--;
        return no(c, "too deep", NULL);
    }
    bool ok = false;
    static const char *const k_known[] = {
        "type", "enum", "const", "properties", "required", "additionalProperties", "unevaluatedProperties",
        "items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "minLength",
        "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "anyOf", "oneOf", "allOf", "$ref", "title", "description", "default", "examples", "example",
        "$comment", "deprecated", "readOnly", "writeOnly", "$schema", "$id", "$anchor", "$defs",
        "definitions", "contentMediaType", "contentEncoding", "contentSchema", "discriminator",
        "nullable", NULL};
    for (const cJSON *k = s->child; k; k = k->next) {
        bool known = !strncmp(k->string, "x-", 2);
        for (int i = 0; !known && k_known[i]; i++) known = !strcmp(k->string, k_known[i]);
        if (!known) {
            no(c, "unknown keyword", k->string);
            goto out;
        }
    }
    const cJSON *ref = get(s, "$ref");
    if (ref) {
        const cJSON *t = resolve(c->root, ref->valuestring);
        if (!t || !valid(c, v, t)) {
            if (!t) no(c, "unresolved $ref", ref->valuestring);
            goto out;
        }
    }
    const cJSON *t = get(s, "type");
    if (t) {
        bool any = false;
        if (cJSON_IsString(t)) any = type_ok(v, t->valuestring);
        for (const cJSON *x = cJSON_IsArray(t) ? t->child : NULL; x; x = x->next) any |= type_ok(v, x->valuestring);
        if (!any) {
            no(c, "wrong type", NULL);
            goto out;
        }
    }
    const cJSON *en = get(s, "enum"), *co = get(s, "const");
    if (co && !cJSON_Compare(v, co, true)) {
        no(c, "not the const", NULL);
        goto out;
    }
    if (en) {
        bool in = false;
        for (const cJSON *x = en->child; x && !in; x = x->next) in = cJSON_Compare(v, x, true);
        if (!in) {
            no(c, "not in the enum", NULL);
            goto out;
        }
    }
    if (get(s, "anyOf") && count_valid(c, v, get(s, "anyOf")) == 0) {
        no(c, "no anyOf branch matches", NULL);
        goto out;
    }
    if (get(s, "oneOf") && count_valid(c, v, get(s, "oneOf")) != 1) {
        no(c, "not exactly one oneOf branch matches", NULL);
        goto out;
    }
    const cJSON *all = get(s, "allOf");
    for (const cJSON *x = all ? all->child : NULL; x; x = x->next)
        if (!valid(c, v, x)) goto out;
    if (cJSON_IsObject(v) && !valid_object(c, v, s)) goto out;
    if (cJSON_IsArray(v) && !valid_array(c, v, s)) goto out;
    if (cJSON_IsString(v)) {
        size_t n = utf8_len(v->valuestring);
        const cJSON *mn = get(s, "minLength"), *mx = get(s, "maxLength"), *pat = get(s, "pattern");
        const cJSON *fmt = get(s, "format");
        if ((mn && n < mn->valuedouble) || (mx && n > mx->valuedouble)) {
            no(c, "string length", v->valuestring);
            goto out;
        }
        if (pat && !regex_search(pat->valuestring, v->valuestring)) {
            no(c, "pattern does not match", v->valuestring);
            goto out;
        }
        if (fmt && !format_ok(fmt->valuestring, v->valuestring)) {
            no(c, "format", v->valuestring);
            goto out;
        }
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!num_bound(s, "minimum", "exclusiveMinimum", d, true) ||
            !num_bound(s, "maximum", "exclusiveMaximum", d, false)) {
            no(c, "number out of bounds", NULL);
            goto out;
        }
    }
    ok = true;
out:
    c->depth--;
    return ok;
}

bool sw_test_schema_valid(const cJSON *schema, const cJSON *instance, char *why, size_t why_len) {
    ck c = {schema, why, why_len, 0};
    if (why && why_len) why[0] = '\0';
    return valid(&c, instance, schema);
}
