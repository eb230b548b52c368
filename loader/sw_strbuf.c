/* sw_strbuf.c — growable strings (sw_strbuf.h). */
#include "sw_strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for extra more bytes and the NUL. */
static bool reserve(sw_strbuf *b, size_t extra) {
    if (b->oom) return false;
    if (extra > (size_t)-1 / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

void sw_strbuf_add(sw_strbuf *b, const void *data, size_t len) {
    if (!reserve(b, len)) return;
    if (len) memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void sw_strbuf_printf(sw_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sw_strbuf_wipe(sw_strbuf *b) {
    if (b->p) explicit_bzero(b->p, b->cap);
    sw_strbuf_free(b);
}

void sw_strbuf_free(sw_strbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *sw_strbuf_take(sw_strbuf *b) {
    sw_strbuf_add(b, "", 0);
    char *s = b->oom ? NULL : b->p;
    if (!s) free(b->p);
    memset(b, 0, sizeof *b);
    return s;
}
