/* stop.h — stop strings over a stream of text pieces. Text that could still be
 * the start of a stop string is held back; when a stop string appears, the
 * text before it is released and the stop string and everything after it are
 * dropped. So a client never sees any part of a stop string, and sees every
 * byte before it exactly once. Pieces are assumed to be complete UTF-8 (the
 * streaming detokenizer's output); a held-back suffix then always starts on a
 * character boundary, because it equals the start of a stop string. */
#ifndef SW_STOP_H
#define SW_STOP_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_stop sw_stop;

/* strs[0..n) are copied; empty strings are ignored. n == 0 gives a matcher
 * that passes text straight through. */
sw_status sw_stop_create(const char *const *strs, int32_t n, sw_stop **out, sw_err *err);
void sw_stop_free(sw_stop *s);

/* Feed len bytes. *emit / *emit_len receive the text that is now safe to
 * deliver (an internal NUL-terminated buffer valid until the next call; may be
 * empty). Returns the index (into the original strs) of the stop string that
 * matched, or -1. After a match the matcher is finished: further input is
 * ignored and emits nothing. SW_E_NOMEM is reported as -2 (nothing emitted). */
int32_t sw_stop_push(sw_stop *s, const char *text, size_t len, const char **emit,
                     size_t *emit_len);
/* The held-back text, released at the end of generation (no stop matched).
 * Same buffer rules as sw_stop_push. */
void sw_stop_flush(sw_stop *s, const char **emit, size_t *emit_len);
/* The stop string with caller index i (as returned by sw_stop_push), or "". */
const char *sw_stop_string(const sw_stop *s, int32_t i);
/* Bytes currently held back. */
size_t sw_stop_held(const sw_stop *s);

#ifdef __cplusplus
}
#endif
#endif
