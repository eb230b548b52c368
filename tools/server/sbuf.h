/* sbuf.h — a growable byte buffer for building responses. On allocation
 * failure the buffer goes into a sticky failed state (oom) and later appends
 * are no-ops, so callers check once at the end. */
#ifndef SW_SERVER_SBUF_H
#define SW_SERVER_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sbuf {
    char *p; /* NUL-terminated when non-NULL; owned */
    size_t n, cap;
    bool oom;
} sbuf;

/* Make room for extra more bytes (plus the NUL); false after oom. */
bool sbuf_reserve(sbuf *b, size_t extra);
void sbuf_add(sbuf *b, const void *data, size_t len);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sbuf_free(sbuf *b);
/* Take the string out of the buffer (caller frees; "" when nothing was
 * added); NULL after oom. The buffer is empty afterwards. */
char *sbuf_take(sbuf *b);

#endif
