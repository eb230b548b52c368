/* sw_strbuf.h — a growable, always NUL-terminated byte string for building
 * text (JSON lines, Prometheus text, rewritten prompts). An allocation
 * failure makes it sticky-failed: later appends do nothing, and the owner
 * checks `oom` once at the end instead of after every call. */
#ifndef SW_STRBUF_H
#define SW_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_strbuf {
    char *p;      /* NUL-terminated once anything was added; owned */
    size_t len, cap;
    bool oom;
} sw_strbuf;      /* zero-initialise: {0} is an empty buffer */

void sw_strbuf_add(sw_strbuf *b, const void *data, size_t len);
void sw_strbuf_printf(sw_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Zero the bytes (for buffers that held private text), then free. */
void sw_strbuf_wipe(sw_strbuf *b);
void sw_strbuf_free(sw_strbuf *b);
/* The string (caller frees; "" when nothing was added), or NULL after an
 * allocation failure (the buffer is freed then). The buffer is empty after. */
char *sw_strbuf_take(sw_strbuf *b);

#ifdef __cplusplus
}
#endif
#endif
