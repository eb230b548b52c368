/* sbuf.c — the growable byte buffer of sbuf.h. */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sbuf_reserve(sbuf *b, size_t extra) {
    if (b->oom) return false;
    if (extra > ((size_t)-1) / 4) {
        b->oom = true;
        return false;
    }
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    p[b->n] = '\0'; /* keep the NUL-terminated invariant from the first allocation on */
    b->p = p;
    b->cap = cap;
    return true;
}

void sbuf_add(sbuf *b, const void *data, size_t len) {
    if (!sbuf_reserve(b, len)) return;
    if (len) memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = '\0';
}

void sbuf_puts(sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }

void sbuf_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        sbuf_add(b, tmp, (size_t)k);
        return;
    }
    if (!sbuf_reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void sbuf_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *sbuf_take(sbuf *b) {
    if (!b->oom && !b->p) sbuf_reserve(b, 0);
    char *p = b->oom ? NULL : b->p;
    if (b->oom) free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}
