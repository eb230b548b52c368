/* redact.c — typed placeholders for detected PII, and restoring them in the
 * cloud's answer, whole or streamed (redact.h). */
#include "redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_stb_ds.h"
#include "sw_strbuf.h"

/* Placeholder names, in the order of the kind bits (pii.h). */
static const struct {
    sw_pii_kind kind;
    const char *name;
} k_kinds[] = {
    {SW_PII_EMAIL, "EMAIL"}, {SW_PII_PHONE, "PHONE"}, {SW_PII_CARD, "CARD"},
    {SW_PII_IBAN, "IBAN"},   {SW_PII_SSN, "SSN"},
};
#define N_KINDS (sizeof k_kinds / sizeof k_kinds[0])
/* "[EMAIL_" + at most 9 digits + "]" fits with room to spare. */
#define PH_CAP 24
#define MAX_DIGITS 9

typedef struct entry {
    int kind;          /* index into k_kinds */
    char *value;       /* the original bytes; owned, wiped on free */
    size_t len;
    char ph[PH_CAP];   /* its placeholder, NUL-terminated */
    size_t ph_len;
} entry;

struct sw_redactor {
    const sw_pii *pii;
    entry *entries;                           /* stb_ds array, in issue order */
    struct { char *key; int value; } *by_value;  /* value -> entry index */
    struct { uint64_t key; int value; } *by_ph;  /* (kind, number) -> entry index; -1: reserved */
    uint32_t last[N_KINDS];                   /* highest number issued per kind */
    size_t spans;
    unsigned kinds;
};

struct sw_restore_stream {
    const sw_redactor *r;
    char hold[PH_CAP];  /* a proper prefix of an issued placeholder */
    size_t n_hold;
};

static uint64_t ph_key(int kind, uint32_t num) { return ((uint64_t)(unsigned)kind << 32) | num; }

sw_status sw_redactor_create(const sw_pii *pii, sw_redactor **out, sw_err *err) {
    if (!out || !pii) return sw_err_set(err, SW_E_INVALID_ARG, "sw_redactor_create: NULL argument");
    *out = NULL;
    sw_redactor *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(err, SW_E_NOMEM, "sw_redactor_create: out of memory");
    r->pii = pii;
    sh_new_strdup(r->by_value);
    *out = r;
    return SW_OK;
}

static void wipe(void *p, size_t n) {
    if (p && n) explicit_bzero(p, n);
}

void sw_redactor_free(sw_redactor *r) {
    if (!r) return;
    for (ptrdiff_t i = 0; i < arrlen(r->entries); i++) {
        wipe(r->entries[i].value, r->entries[i].len);
        free(r->entries[i].value);
    }
    arrfree(r->entries);
    for (ptrdiff_t i = 0; i < shlen(r->by_value); i++)
        wipe(r->by_value[i].key, strlen(r->by_value[i].key));
    shfree(r->by_value);
    hmfree(r->by_ph);
    free(r);
}

size_t sw_redactor_spans(const sw_redactor *r) { return r ? r->spans : 0; }
size_t sw_redactor_values(const sw_redactor *r) { return r ? (size_t)arrlen(r->entries) : 0; }
unsigned sw_redactor_kinds(const sw_redactor *r) { return r ? r->kinds : 0; }

/* ---- placeholder shape -------------------------------------------------------------- */

typedef enum { SHAPE_NO = 0, SHAPE_FULL, SHAPE_PARTIAL } shape;

/* Does s[0..n) (s[0] == '[') start with "[KIND_N]"? FULL: *len, *kind and
 * *num are set. PARTIAL: all n bytes could still become one (by shape only;
 * sw_restore_feed asks the issued placeholders). */
static shape parse_shape(const char *s, size_t n, size_t *len, int *kind, uint32_t *num) {
    size_t i = 1;
    while (i < n && s[i] >= 'A' && s[i] <= 'Z') i++;
    size_t name_len = i - 1;
    int k = -1;
    for (size_t j = 0; j < N_KINDS && k < 0; j++)
        if (strlen(k_kinds[j].name) == name_len && !memcmp(s + 1, k_kinds[j].name, name_len))
            k = (int)j;
    if (i == n) return SHAPE_PARTIAL;
    if (k < 0 || s[i] != '_') return SHAPE_NO;
    i++;
    size_t d0 = i;
    uint32_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - d0 < MAX_DIGITS) {
        if (i == d0 && s[i] == '0') return SHAPE_NO;
        v = v * 10 + (uint32_t)(s[i] - '0');
        i++;
    }
    if (i == n) return SHAPE_PARTIAL;
    if (i == d0 || s[i] != ']') return SHAPE_NO;
    *len = i + 1;
    *kind = k;
    *num = v;
    return SHAPE_FULL;
}

/* The issued entry whose placeholder starts s (s[0] == '['), or -1. */
static int issued_at(const sw_redactor *r, const char *s, size_t n, size_t *len) {
    int kind;
    uint32_t num;
    if (parse_shape(s, n, len, &kind, &num) != SHAPE_FULL) return -1;
    ptrdiff_t i = hmgeti(((sw_redactor *)r)->by_ph, ph_key(kind, num));
    return i < 0 ? -1 : r->by_ph[i].value;
}

/* Is s[0..n) a proper prefix of an issued placeholder? */
static bool issued_prefix(const sw_redactor *r, const char *s, size_t n) {
    for (ptrdiff_t i = 0; i < arrlen(r->entries); i++)
        if (n < r->entries[i].ph_len && !memcmp(r->entries[i].ph, s, n)) return true;
    return false;
}

sw_status sw_redactor_reserve(sw_redactor *r, const char *text, size_t len, sw_err *err) {
    if (!r || (!text && len)) return sw_err_set(err, SW_E_INVALID_ARG, "sw_redactor_reserve: NULL argument");
    for (const char *p = text, *end = text + len; p && p < end; p++) {
        p = memchr(p, '[', (size_t)(end - p));
        if (!p) break;
        size_t l;
        int kind;
        uint32_t num;
        if (parse_shape(p, (size_t)(end - p), &l, &kind, &num) != SHAPE_FULL) continue;
        if (hmgeti(r->by_ph, ph_key(kind, num)) < 0) {
            hmput(r->by_ph, ph_key(kind, num), -1);
            if (hmgeti(r->by_ph, ph_key(kind, num)) < 0)
                return sw_err_set(err, SW_E_NOMEM, "redaction: out of memory");
        }
    }
    return SW_OK;
}

/* ---- redaction ------------------------------------------------------------------------- */

static int kind_index(sw_pii_kind k) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (k_kinds[i].kind == k) return (int)i;
    return -1;
}

/* The entry for value[len] of kind k: the one it already has, or a new one
 * with the next free number of its kind. -1 when out of memory. */
static int entry_for(sw_redactor *r, int k, const char *value, size_t len) {
    char stack[256];
    char *key = len < sizeof stack ? stack : malloc(len + 1);
    if (!key) return -1;
    memcpy(key, value, len);
    key[len] = '\0';
    int idx = -1;
    ptrdiff_t at = shgeti(r->by_value, key);
    if (at >= 0) {
        idx = r->by_value[at].value;
        goto done;
    }
    uint32_t num = r->last[k] + 1;
    while (hmgeti(r->by_ph, ph_key(k, num)) >= 0) num++; /* skip reserved literals */
    entry e = {.kind = k, .len = len, .value = malloc(len + 1)};
    if (!e.value || num > 999999999u) {
        free(e.value);
        goto done;
    }
    memcpy(e.value, value, len);
    e.value[len] = '\0';
    e.ph_len = (size_t)snprintf(e.ph, sizeof e.ph, "[%s_%u]", k_kinds[k].name, num);
    int new_idx = (int)arrlen(r->entries);
    arrput(r->entries, e);
    shput(r->by_value, key, new_idx);
    hmput(r->by_ph, ph_key(k, num), new_idx);
    if (arrlen(r->entries) != new_idx + 1 || shgeti(r->by_value, key) < 0 ||
        hmgeti(r->by_ph, ph_key(k, num)) < 0)
        goto done; /* stb_ds ran out of memory */
    r->last[k] = num;
    idx = new_idx;
done:
    wipe(key, len);
    if (key != stack) free(key);
    return idx;
}

/* Hand the buffer out as *out (an empty string when nothing was added); on
 * failure wipe what it held (it may be private text). */
static sw_status ob_take(sw_strbuf *b, char **out, size_t *out_len, sw_err *err, const char *what) {
    size_t n = b->len;
    if (b->oom) {
        sw_strbuf_wipe(b);
        return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
    }
    *out = sw_strbuf_take(b);
    if (!*out) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
    if (out_len) *out_len = n;
    return SW_OK;
}

static sw_status redact_span_list(sw_redactor *r, const char *text, size_t len,
                                  const sw_pii_match *m, size_t n, char **out, size_t *out_len,
                                  sw_err *err) {
    sw_strbuf b = {0};
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        int k = kind_index(m[i].kind);
        int e = k < 0 ? -1 : entry_for(r, k, text + m[i].offset, m[i].len);
        if (e < 0) {
            b.oom = true;
            break;
        }
        sw_strbuf_add(&b, text + at, m[i].offset - at);
        sw_strbuf_add(&b, r->entries[e].ph, r->entries[e].ph_len);
        at = m[i].offset + m[i].len;
        r->spans++;
        r->kinds |= (unsigned)m[i].kind;
    }
    sw_strbuf_add(&b, text + at, len - at);
    return ob_take(&b, out, out_len, err, "redaction");
}

sw_status sw_redact_text(sw_redactor *r, const char *text, size_t len, char **out,
                         size_t *out_len, sw_err *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !out || (!text && len)) return sw_err_set(err, SW_E_INVALID_ARG, "sw_redact_text: NULL argument");
    sw_status st = sw_redactor_reserve(r, text, len, err);
    if (st != SW_OK) return st;
    sw_pii_match *m = NULL;
    size_t n = 0;
    if ((st = sw_pii_find_all(r->pii, text, len, &m, &n, err)) != SW_OK) return st;
    st = redact_span_list(r, text ? text : "", len, m, n, out, out_len, err);
    free(m);
    return st;
}

/* ---- chat bodies ------------------------------------------------------------------------- */

static sw_status each_part(const cJSON *content, sw_chat_text_fn fn, void *user, sw_err *err) {
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(t)) continue;
        sw_status st = fn(user, t, err);
        if (st != SW_OK) return st;
    }
    return SW_OK;
}

sw_status sw_chat_texts_each(const cJSON *messages, sw_chat_text_fn fn, void *user, sw_err *err) {
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        sw_status st = SW_OK;
        if (cJSON_IsString(content)) st = fn(user, content, err);
        else if (cJSON_IsArray(content)) st = each_part(content, fn, user, err);
        if (st != SW_OK) return st;
        const cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(call, "function");
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
            if (cJSON_IsString(args) && (st = fn(user, args, err)) != SW_OK) return st;
        }
    }
    return SW_OK;
}

/* "stop": a string or an array of strings. */
static sw_status each_stop(const cJSON *body, sw_chat_text_fn fn, void *user, sw_err *err) {
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (cJSON_IsString(stop)) return fn(user, stop, err);
    if (!cJSON_IsArray(stop)) return SW_OK;
    const cJSON *s;
    cJSON_ArrayForEach(s, stop) {
        if (!cJSON_IsString(s)) continue;
        sw_status st = fn(user, s, err);
        if (st != SW_OK) return st;
    }
    return SW_OK;
}

static sw_status reserve_item(void *user, const cJSON *item, sw_err *err) {
    return sw_redactor_reserve(user, item->valuestring, strlen(item->valuestring), err);
}

static sw_status redact_item(void *user, const cJSON *item, sw_err *err) {
    sw_redactor *r = user;
    const char *text = item->valuestring;
    size_t len = strlen(text);
    sw_pii_match *m = NULL;
    size_t n = 0;
    sw_status st = sw_pii_find_all(r->pii, text, len, &m, &n, err);
    if (st != SW_OK || n == 0) {
        free(m);
        return st;
    }
    char *red = NULL;
    st = redact_span_list(r, text, len, m, n, &red, NULL, err);
    free(m);
    if (st != SW_OK) return st;
    /* The body belongs to the caller, who handed it over to be changed. */
    if (!cJSON_SetValuestring((cJSON *)item, red))
        st = sw_err_set(err, SW_E_NOMEM, "redaction: out of memory");
    free(red);
    return st;
}

sw_status sw_redact_chat_body(sw_redactor *r, cJSON *body, sw_err *err) {
    if (!r || !body) return sw_err_set(err, SW_E_INVALID_ARG, "sw_redact_chat_body: NULL argument");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    /* Reserve the literals of every text before issuing anything, so that a
     * placeholder issued for the first message cannot be one a later message
     * already spells out. */
    sw_status st = sw_chat_texts_each(msgs, reserve_item, r, err);
    if (st == SW_OK) st = each_stop(body, reserve_item, r, err);
    if (st == SW_OK) st = sw_chat_texts_each(msgs, redact_item, r, err);
    if (st == SW_OK) st = each_stop(body, redact_item, r, err);
    return st;
}

/* ---- restoring ------------------------------------------------------------------------------- */

/* Copy text to b with every issued placeholder replaced by its value. When
 * hold is given, a tail that is a proper prefix of an issued placeholder is
 * not copied: its offset goes to *hold (else *hold = len). */
static void restore_into(const sw_redactor *r, const char *text, size_t len, sw_strbuf *b,
                         size_t *hold) {
    size_t i = 0;
    if (hold) *hold = len;
    while (i < len) {
        const char *lb = memchr(text + i, '[', len - i);
        if (!lb) {
            sw_strbuf_add(b, text + i, len - i);
            return;
        }
        size_t j = (size_t)(lb - text);
        sw_strbuf_add(b, text + i, j - i);
        size_t plen = 0;
        int e = issued_at(r, text + j, len - j, &plen);
        if (e >= 0) {
            sw_strbuf_add(b, r->entries[e].value, r->entries[e].len);
            i = j + plen;
            continue;
        }
        if (hold && issued_prefix(r, text + j, len - j)) {
            *hold = j; /* a placeholder has no second '[': nothing after j is free */
            return;
        }
        sw_strbuf_add(b, "[", 1);
        i = j + 1;
    }
}

sw_status sw_restore_text(const sw_redactor *r, const char *text, size_t len, char **out,
                          size_t *out_len, sw_err *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !out || (!text && len)) return sw_err_set(err, SW_E_INVALID_ARG, "sw_restore_text: NULL argument");
    sw_strbuf b = {0};
    restore_into(r, text, len, &b, NULL);
    return ob_take(&b, out, out_len, err, "restoring placeholders");
}

static sw_status restore_item(const sw_redactor *r, cJSON *item, sw_err *err) {
    if (!cJSON_IsString(item)) return SW_OK;
    char *back = NULL;
    sw_status st = sw_restore_text(r, item->valuestring, strlen(item->valuestring), &back, NULL, err);
    if (st == SW_OK && !cJSON_SetValuestring(item, back))
        st = sw_err_set(err, SW_E_NOMEM, "restoring placeholders: out of memory");
    free(back);
    return st;
}

sw_status sw_restore_chat_response(const sw_redactor *r, cJSON *response, sw_err *err) {
    if (!r || !response) return sw_err_set(err, SW_E_INVALID_ARG, "sw_restore_chat_response: NULL argument");
    cJSON *choice;
    cJSON_ArrayForEach(choice, cJSON_GetObjectItemCaseSensitive(response, "choices")) {
        cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
        sw_status st = restore_item(r, cJSON_GetObjectItemCaseSensitive(msg, "content"), err);
        if (st != SW_OK) return st;
        cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) {
            cJSON *f = cJSON_GetObjectItemCaseSensitive(call, "function");
            st = restore_item(r, cJSON_GetObjectItemCaseSensitive(f, "arguments"), err);
            if (st != SW_OK) return st;
        }
    }
    return SW_OK;
}

sw_status sw_restore_stream_create(const sw_redactor *r, sw_restore_stream **out, sw_err *err) {
    if (!r || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_restore_stream_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return sw_err_set(err, SW_E_NOMEM, "sw_restore_stream_create: out of memory");
    (*out)->r = r;
    return SW_OK;
}

void sw_restore_stream_free(sw_restore_stream *s) {
    if (!s) return;
    wipe(s, sizeof *s);
    free(s);
}

size_t sw_restore_held(const sw_restore_stream *s) { return s ? s->n_hold : 0; }

sw_status sw_restore_feed(sw_restore_stream *s, const char *chunk, size_t len, char **out,
                          size_t *out_len, sw_err *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!s || !out || (!chunk && len)) return sw_err_set(err, SW_E_INVALID_ARG, "sw_restore_feed: NULL argument");
    /* The held prefix joins the new chunk; copying it is cheap (< PH_CAP). */
    char stack[512];
    size_t n = s->n_hold + len;
    char *joined = n <= sizeof stack ? stack : malloc(n);
    if (!joined) return sw_err_set(err, SW_E_NOMEM, "restoring placeholders: out of memory");
    memcpy(joined, s->hold, s->n_hold);
    if (len) memcpy(joined + s->n_hold, chunk, len);
    sw_strbuf b = {0};
    size_t hold = n;
    restore_into(s->r, joined, n, &b, &hold);
    s->n_hold = n - hold; /* < PH_CAP: it is a proper prefix of a placeholder */
    memcpy(s->hold, joined + hold, s->n_hold);
    wipe(joined, n);
    if (joined != stack) free(joined);
    return ob_take(&b, out, out_len, err, "restoring placeholders");
}

sw_status sw_restore_finish(sw_restore_stream *s, char **out, size_t *out_len, sw_err *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!s || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_restore_finish: NULL argument");
    sw_strbuf b = {0};
    sw_strbuf_add(&b, s->hold, s->n_hold);
    wipe(s->hold, sizeof s->hold);
    s->n_hold = 0;
    return ob_take(&b, out, out_len, err, "restoring placeholders");
}
