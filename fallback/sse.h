/* sse.h — incremental parser for Server-Sent Events (text/event-stream), the
 * wire format of both cloud providers' streaming APIs. Bytes are fed as they
 * arrive from the network, split anywhere (inside a line, between CR and LF,
 * inside a UTF-8 sequence); complete events are handed to a callback.
 *
 * Follows the WHATWG event-stream rules (LF, CR or CRLF line ends; "data" lines
 * joined with '\n'; one optional space after the colon; ':' comment lines; a
 * leading BOM), but is stricter where the rules are lenient, because a provider
 * that sends something else is broken and we want a clean error rather than a
 * silently wrong answer: a field other than event/data/id/retry, a NUL byte, an
 * event larger than the configured limit, or a stream that ends in the middle
 * of an event are SW_E_FORMAT. */
#ifndef SW_SSE_H
#define SW_SSE_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_sse_event {
    const char *event; /* "event:" value, "" when absent (the spec's "message") */
    const char *data;  /* data lines joined with '\n', NUL-terminated */
    size_t data_len;
    const char *id;    /* last "id:" value seen on the stream, "" when none */
} sw_sse_event;

/* Called once per complete event (an event with no data lines is not
 * dispatched, per the spec). All pointers are borrowed for the duration of the
 * call. A non-SW_OK return stops parsing and is returned by sw_sse_feed (the
 * callback fills err). */
typedef sw_status (*sw_sse_fn)(void *user, const sw_sse_event *ev, sw_err *err);

typedef struct sw_sse_parser sw_sse_parser;

/* max_event_bytes bounds one event's buffered size (0: 8 MiB), so that a
 * provider streaming garbage without blank lines cannot grow memory forever. */
sw_status sw_sse_create(size_t max_event_bytes, sw_sse_parser **out, sw_err *err);
void sw_sse_free(sw_sse_parser *p); /* NULL is a no-op */

/* Feed n bytes (borrowed). Calls fn for every event completed by these bytes.
 * After an error the parser stays failed: further feeds return the same status. */
sw_status sw_sse_feed(sw_sse_parser *p, const char *buf, size_t n, sw_sse_fn fn, void *user,
                      sw_err *err);

/* End of stream. SW_E_FORMAT when a partial event (a field line without the
 * blank line that dispatches it) is pending; an unterminated last line counts
 * as partial. SW_OK when the stream ended between events. */
sw_status sw_sse_finish(sw_sse_parser *p, sw_err *err);

/* Events dispatched so far (for diagnostics and tests). */
uint64_t sw_sse_count(const sw_sse_parser *p);

#ifdef __cplusplus
}
#endif
#endif
