/* stop.c — the stop-string matcher (see stop.h). The held-back buffer only
 * ever holds the longest suffix of the text that is a proper prefix of some
 * stop string, so it stays shorter than the longest stop string plus one
 * piece, and the quadratic suffix scan below is over a few dozen bytes. */
#include "stop.h"

#include <stdlib.h>
#include <string.h>

struct sw_stop {
    char **strs;      /* owned copies of the non-empty stop strings */
    size_t *lens;
    int32_t *index;   /* position of strs[i] in the caller's array */
    int32_t n;
    char *hold;       /* held-back text (not NUL-terminated) */
    size_t hold_len, hold_cap;
    char *out;        /* text released by the last call, NUL-terminated */
    size_t out_cap;
    bool done;
};

sw_status sw_stop_create(const char *const *strs, int32_t n, sw_stop **out, sw_err *err) {
    *out = NULL;
    if (n < 0 || (n > 0 && !strs))
        return sw_err_set(err, SW_E_INVALID_ARG, "stop strings: bad list (%d entries)", n);
    sw_stop *s = calloc(1, sizeof *s);
    if (!s) return sw_err_set(err, SW_E_NOMEM, "out of memory for stop strings");
    if (n > 0) {
        s->strs = calloc((size_t)n, sizeof *s->strs);
        s->lens = calloc((size_t)n, sizeof *s->lens);
        s->index = calloc((size_t)n, sizeof *s->index);
        if (!s->strs || !s->lens || !s->index) goto nomem;
    }
    for (int32_t i = 0; i < n; i++) {
        if (!strs[i]) {
            sw_stop_free(s);
            return sw_err_set(err, SW_E_INVALID_ARG, "stop string %d is NULL", i);
        }
        size_t len = strlen(strs[i]);
        if (len == 0) continue;
        if (!(s->strs[s->n] = strdup(strs[i]))) goto nomem;
        s->lens[s->n] = len;
        s->index[s->n] = i;
        s->n++;
    }
    *out = s;
    return SW_OK;
nomem:
    sw_stop_free(s);
    return sw_err_set(err, SW_E_NOMEM, "out of memory for stop strings");
}

void sw_stop_free(sw_stop *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n; i++) free(s->strs[i]);
    free(s->strs);
    free(s->lens);
    free(s->index);
    free(s->hold);
    free(s->out);
    free(s);
}

static bool reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *p = realloc(*buf, c);
    if (!p) return false;
    *buf = p;
    *cap = c;
    return true;
}

/* Move the first n held bytes to the output buffer. */
static bool release(sw_stop *s, size_t n, const char **emit, size_t *emit_len) {
    if (!reserve(&s->out, &s->out_cap, n + 1)) return false;
    if (n) { /* hold is NULL until the first byte is held */
        memcpy(s->out, s->hold, n);
        memmove(s->hold, s->hold + n, s->hold_len - n);
    }
    s->out[n] = '\0';
    s->hold_len -= n;
    *emit = s->out;
    *emit_len = n;
    return true;
}

/* Earliest occurrence of any stop string in the held text; ties go to the
 * longer string (it is the one the text spells out in full). */
static int32_t find_match(const sw_stop *s, size_t *at) {
    int32_t best = -1;
    for (int32_t i = 0; i < s->n; i++) {
        const char *p = memmem(s->hold, s->hold_len, s->strs[i], s->lens[i]);
        if (!p) continue;
        size_t pos = (size_t)(p - s->hold);
        if (best < 0 || pos < *at || (pos == *at && s->lens[i] > s->lens[best])) {
            best = i;
            *at = pos;
        }
    }
    return best;
}

/* Length of the longest suffix of the held text that is a proper prefix of
 * some stop string: those bytes may still become a stop string. */
static size_t partial_suffix(const sw_stop *s) {
    size_t keep = 0;
    for (int32_t i = 0; i < s->n; i++) {
        size_t k = SW_MIN(s->lens[i] - 1, s->hold_len);
        for (; k > keep; k--)
            if (!memcmp(s->hold + s->hold_len - k, s->strs[i], k)) break;
        if (k > keep) keep = k;
    }
    return keep;
}

int32_t sw_stop_push(sw_stop *s, const char *text, size_t len, const char **emit,
                     size_t *emit_len) {
    *emit = "";
    *emit_len = 0;
    if (s->done) return -1;
    if (!reserve(&s->hold, &s->hold_cap, s->hold_len + len)) return -2;
    if (len) memcpy(s->hold + s->hold_len, text, len);
    s->hold_len += len;
    size_t at = 0;
    int32_t m = find_match(s, &at);
    if (m >= 0) {
        if (!release(s, at, emit, emit_len)) return -2;
        s->hold_len = 0;
        s->done = true;
        return s->index[m];
    }
    if (!release(s, s->hold_len - partial_suffix(s), emit, emit_len)) return -2;
    return -1;
}

void sw_stop_flush(sw_stop *s, const char **emit, size_t *emit_len) {
    *emit = "";
    *emit_len = 0;
    if (s->done || s->hold_len == 0) return;
    if (!release(s, s->hold_len, emit, emit_len)) s->hold_len = 0;
}

size_t sw_stop_held(const sw_stop *s) { return s->hold_len; }

const char *sw_stop_string(const sw_stop *s, int32_t i) {
    for (int32_t k = 0; k < s->n; k++)
        if (s->index[k] == i) return s->strs[k];
    return "";
}
