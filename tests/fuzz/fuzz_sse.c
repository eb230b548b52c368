/* fuzz_sse.c — libFuzzer target for the cloud response stream: the SSE parser
 * (fallback/sse.c) fed in chunks of fuzzer-chosen sizes, each event translated
 * by the provider's wire format (fallback/cloud_wire.c) into OpenAI chunks.
 * Byte 0 picks the provider and the event size limit, byte 1 seeds the chunk
 * sizes; the rest is the response body. Whatever the split, the parser must
 * dispatch the same events (checked against a one-shot parse). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloud_wire.h"
#include "sse.h"

static volatile uint64_t g_sink;

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) __builtin_trap();                                                        \
    } while (0)

static sw_status on_chunk(void *user, const sw_cloud_chunk *c, sw_err *err) {
    (void)user;
    (void)err;
    g_sink += (uint64_t)(uintptr_t)c;
    return SW_OK;
}

typedef struct {
    uint64_t hash, n;
    sw_wire_stream ws;
} run_state;

static sw_status on_event(void *user, const sw_sse_event *ev, sw_err *err) {
    run_state *st = user;
    CHECK(ev->event && ev->data && ev->id && strlen(ev->data) <= ev->data_len);
    for (size_t i = 0; i < ev->data_len; i++) st->hash = st->hash * 1099511628211ull + (uint8_t)ev->data[i];
    st->n++;
    return sw_wire_stream_event(&st->ws, ev, err);
}

/* Parse body split at the sizes drawn from seed (0: one piece); returns the
 * final status and fills st. */
static sw_status parse(const char *body, size_t len, sw_provider prov, size_t max_ev,
                       uint32_t seed, run_state *st) {
    memset(st, 0, sizeof *st);
    sw_wire_stream_init(&st->ws, prov, on_chunk, NULL);
    sw_sse_parser *p = NULL;
    sw_err err;
    sw_status s = sw_sse_create(max_ev, &p, &err);
    if (s != SW_OK) return s;
    size_t off = 0;
    while (off < len && s == SW_OK) {
        size_t n = len - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            n = SW_MIN(n, (size_t)((seed >> 16) % 17) + 1);
        }
        s = sw_sse_feed(p, body + off, n, on_event, st, &err);
        off += n;
    }
    if (s == SW_OK) s = sw_sse_finish(p, &err);
    if (s == SW_OK) s = sw_wire_stream_end(&st->ws, &err);
    g_sink += strlen(err.msg) * (s != SW_OK);
    sw_sse_free(p);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    sw_provider prov = (data[0] & 1) ? SW_PROVIDER_OPENAI : SW_PROVIDER_ANTHROPIC;
    size_t max_ev = (data[0] & 2) ? 64 : 0;
    uint32_t seed = data[1] | 1u;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    run_state a, b;
    sw_status sa = parse(body, len, prov, max_ev, 0, &a);
    sw_status sb = parse(body, len, prov, max_ev, seed, &b);
    /* chunking never changes what is dispatched or the verdict */
    CHECK(sa == sb && a.n == b.n && a.hash == b.hash && a.ws.chunks == b.ws.chunks);
    return 0;
}
