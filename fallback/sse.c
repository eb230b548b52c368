/* sse.c — incremental text/event-stream parser (see sse.h for the rules). */
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable byte buffer, always NUL-terminated when len > 0 or after buf_cstr. */
typedef struct sse_buf {
    char *p;
    size_t len, cap;
} sse_buf;

struct sw_sse_parser {
    size_t max_bytes;
    sse_buf line;    /* current, not yet terminated line */
    sse_buf data;    /* data lines of the pending event */
    sse_buf event;   /* event name of the pending event */
    sse_buf id;      /* last event id (persists across events, per the spec) */
    bool after_cr;   /* last byte was CR: a following LF belongs to the same line end */
    bool bom_done;   /* first bytes checked for a UTF-8 BOM */
    int bom_matched; /* BOM bytes seen so far (the BOM itself may arrive split) */
    bool pending;    /* a field line was seen since the last dispatch */
    bool has_data;   /* at least one data line in the pending event */
    uint64_t line_no;
    uint64_t count;
    sw_status failed;
    sw_err fail_err;
};

static bool buf_reserve(sse_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return false;
    b->p = np;
    b->cap = cap;
    return true;
}

static bool buf_append(sse_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return false;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static const char *buf_cstr(sse_buf *b) { return b->len ? b->p : ""; }

sw_status sw_sse_create(size_t max_event_bytes, sw_sse_parser **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_sse_create: out is NULL");
    *out = NULL;
    sw_sse_parser *p = calloc(1, sizeof *p);
    if (!p) return sw_err_set(err, SW_E_NOMEM, "sw_sse_create: out of memory");
    p->max_bytes = max_event_bytes ? max_event_bytes : (size_t)8 << 20;
    *out = p;
    return SW_OK;
}

void sw_sse_free(sw_sse_parser *p) {
    if (!p) return;
    free(p->line.p);
    free(p->data.p);
    free(p->event.p);
    free(p->id.p);
    free(p);
}

uint64_t sw_sse_count(const sw_sse_parser *p) { return p ? p->count : 0; }

/* Record the failure so that the parser stays failed, and return it. */
static sw_status fail(sw_sse_parser *p, sw_err *err, sw_status s, const char *msg) {
    p->failed = s;
    snprintf(p->fail_err.msg, sizeof p->fail_err.msg, "SSE line %llu: %s",
             (unsigned long long)p->line_no, msg);
    return sw_err_set(err, s, "%s", p->fail_err.msg);
}

static sw_status dispatch(sw_sse_parser *p, sw_sse_fn fn, void *user, sw_err *err) {
    sw_status st = SW_OK;
    if (p->has_data) {
        sw_sse_event ev = {buf_cstr(&p->event), buf_cstr(&p->data), p->data.len, buf_cstr(&p->id)};
        p->count++;
        if (fn) st = fn(user, &ev, err);
    }
    p->data.len = 0;
    p->event.len = 0;
    p->pending = false;
    p->has_data = false;
    if (st != SW_OK) {
        /* The callback's own message stays in err; remember it for later feeds. */
        p->failed = st;
        if (err) p->fail_err = *err;
        else snprintf(p->fail_err.msg, sizeof p->fail_err.msg, "SSE callback failed");
    }
    return st;
}

/* One complete line (without its terminator) in p->line. */
static sw_status process_line(sw_sse_parser *p, sw_sse_fn fn, void *user, sw_err *err) {
    p->line_no++;
    const char *s = buf_cstr(&p->line);
    size_t n = p->line.len;
    p->line.len = 0;
    if (n == 0) return dispatch(p, fn, user, err);
    if (s[0] == ':') return SW_OK; /* comment (keep-alive) */
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *val = colon ? colon + 1 : s + n;
    size_t val_len = colon ? n - name_len - 1 : 0;
    if (val_len && val[0] == ' ') {
        val++;
        val_len--;
    }
    p->pending = true;
    if (name_len == 4 && !memcmp(s, "data", 4)) {
        if (p->has_data && !buf_append(&p->data, "\n", 1))
            return fail(p, err, SW_E_NOMEM, "out of memory");
        if (!buf_append(&p->data, val, val_len)) return fail(p, err, SW_E_NOMEM, "out of memory");
        p->has_data = true;
    } else if (name_len == 5 && !memcmp(s, "event", 5)) {
        p->event.len = 0;
        if (!buf_append(&p->event, val, val_len)) return fail(p, err, SW_E_NOMEM, "out of memory");
    } else if (name_len == 2 && !memcmp(s, "id", 2)) {
        p->id.len = 0;
        if (!buf_append(&p->id, val, val_len)) return fail(p, err, SW_E_NOMEM, "out of memory");
    } else if (name_len == 5 && !memcmp(s, "retry", 5)) {
        /* reconnection delay: meaningless for a POST stream; ignored */
    } else {
        char msg[160];
        int shown = (int)SW_MIN(name_len, (size_t)40);
        snprintf(msg, sizeof msg, "unknown field '%.*s%s' (expected data, event, id or retry)",
                 shown, s, name_len > 40 ? "..." : "");
        return fail(p, err, SW_E_FORMAT, msg);
    }
    if (p->data.len + p->event.len > p->max_bytes)
        return fail(p, err, SW_E_FORMAT, "event larger than the limit");
    return SW_OK;
}

sw_status sw_sse_feed(sw_sse_parser *p, const char *buf, size_t n, sw_sse_fn fn, void *user,
                      sw_err *err) {
    if (!p || (!buf && n)) return sw_err_set(err, SW_E_INVALID_ARG, "sw_sse_feed: NULL argument");
    if (p->failed != SW_OK) return sw_err_set(err, p->failed, "%s", p->fail_err.msg);
    size_t i = 0;
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    while (!p->bom_done && i < n) {
        if ((unsigned char)buf[i] == bom[p->bom_matched]) {
            i++;
            if (++p->bom_matched == 3) p->bom_done = true;
            continue;
        }
        /* Not a BOM after all: the bytes swallowed so far belong to the line. */
        p->bom_done = true;
        if (!buf_append(&p->line, (const char *)bom, (size_t)p->bom_matched))
            return fail(p, err, SW_E_NOMEM, "out of memory");
    }
    while (i < n) {
        char c = buf[i];
        if (p->after_cr) {
            p->after_cr = false;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (c == '\r' || c == '\n') {
            p->after_cr = (c == '\r');
            sw_status st = process_line(p, fn, user, err);
            if (st != SW_OK) return st;
            i++;
            continue;
        }
        if (c == '\0') return fail(p, err, SW_E_FORMAT, "NUL byte in the stream");
        /* Copy the run up to the next line end in one go. */
        size_t j = i;
        while (j < n && buf[j] != '\r' && buf[j] != '\n' && buf[j] != '\0') j++;
        if (p->line.len + (j - i) > p->max_bytes)
            return fail(p, err, SW_E_FORMAT, "line longer than the event size limit");
        if (!buf_append(&p->line, buf + i, j - i)) return fail(p, err, SW_E_NOMEM, "out of memory");
        i = j;
    }
    return SW_OK;
}

sw_status sw_sse_finish(sw_sse_parser *p, sw_err *err) {
    if (!p) return sw_err_set(err, SW_E_INVALID_ARG, "sw_sse_finish: parser is NULL");
    if (p->failed != SW_OK) return sw_err_set(err, p->failed, "%s", p->fail_err.msg);
    if (p->line.len > 0 || p->pending || (!p->bom_done && p->bom_matched > 0))
        return fail(p, err, SW_E_FORMAT, "stream ended in the middle of an event");
    return SW_OK;
}
