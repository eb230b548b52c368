/* fuzz_json_grammar.c — libFuzzer target for the JSON-object recognizer
 * (runtime/json_grammar.c). Byte 0 seeds the chunk sizes; the rest is the
 * output being checked. For every input:
 *   - byte-by-byte and chunked feeding agree on the accepted prefix length,
 *     on done-ness and on the state at every chunk boundary;
 *   - sw_json_mask agrees with feeding, for pieces cut from the input, both
 *     for a small vocabulary and for one large enough for its table path;
 *   - the accepted prefix is viable: a greedy completion driven by the
 *     recognizer reaches a finished object within a bounded number of bytes
 *     (so no accepted state is a dead end), and cJSON, an independent parser,
 *     reads that completed document as exactly one object;
 *   - so, in particular, an input accepted whole and done is a JSON object to
 *     cJSON too. (cJSON is more lenient than RFC 8259 in places, so the check
 *     runs in this direction only.) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_grammar.h"

static volatile uint64_t g_sink;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

/* Bytes tried in order to complete a prefix: each state has one that makes
 * progress towards closing the document (see complete()). */
static const uint8_t k_completion[] = {'"', '}', ']', ':', '0', '\\', 'u',  'D',  'C', 'r',
                                       'e', 'a', 'l', 's', 'n', '{',  0x80, 0x90, 0xA0};

/* Extend doc[0, *len) (accepted, state *s) to a finished object, greedily;
 * false when no candidate byte continues it or it takes too long. */
static bool complete(sw_json_state *s, uint8_t *doc, size_t *len, size_t cap) {
    while (!sw_json_done(s)) {
        if (*len >= cap) return false;
        size_t k = 0;
        for (; k < sizeof k_completion; k++) {
            sw_json_state t = *s;
            if (sw_json_feed(&t, (const char *)&k_completion[k], 1)) {
                *s = t;
                break;
            }
        }
        if (k == sizeof k_completion) return false;
        doc[(*len)++] = k_completion[k];
    }
    return true;
}

/* cJSON reads doc[0, len) (no NUL inside) as exactly one object. */
static bool cjson_object(const uint8_t *doc, size_t len) {
    char *z = malloc(len + 1);
    if (!z) return true; /* nothing to check without memory */
    memcpy(z, doc, len);
    z[len] = 0;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(z, len + 1, &end, 1);
    bool ok = j && cJSON_IsObject(j) && end == z + len;
    cJSON_Delete(j);
    free(z);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint32_t seed = data[0] | 1u;
    const uint8_t *body = data + 1;
    size_t len = size - 1;

    /* byte by byte: st[k] is the state after k accepted bytes */
    sw_json_state *st = malloc((len + 1) * sizeof *st);
    if (!st) return 0;
    sw_json_init(&st[0]);
    size_t accepted = 0;
    while (accepted < len) {
        st[accepted + 1] = st[accepted];
        bool ok = sw_json_feed(&st[accepted + 1], (const char *)body + accepted, 1);
        CHECK(!ok || !sw_json_done(&st[accepted])); /* nothing after the end */
        if (!ok) break;
        accepted++;
    }

    /* chunked: same prefix, same states at chunk boundaries */
    sw_json_state s;
    sw_json_init(&s);
    size_t off = 0, chunked = len;
    while (off < len) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (size_t)((seed >> 16) % 17) + 1;
        if (n > len - off) n = len - off;
        sw_json_state t = s;
        if (!sw_json_feed(&t, (const char *)body + off, n)) {
            /* find the refused byte within the chunk */
            size_t k = 0;
            while (k < n && sw_json_feed(&s, (const char *)body + off + k, 1))
                k++;
            CHECK(k < n);
            chunked = off + k;
            break;
        }
        s = t;
        off += n;
        CHECK(off <= accepted);
        CHECK(memcmp(&s, &st[off], sizeof s) == 0);
        CHECK(sw_json_done(&s) == sw_json_done(&st[off]));
    }
    CHECK(chunked == accepted);

    /* mask: a piece cut from the input is allowed iff feeding gets through it */
    {
        enum { NP = 8 };
        const char *pieces[NP];
        uint32_t lens[NP];
        uint8_t allow[NP];
        size_t at = accepted > 4 ? accepted - 4 : 0;
        for (int i = 0; i < NP; i++) {
            pieces[i] = (const char *)body + at;
            lens[i] = (uint32_t)((size_t)i < len - at ? i : len - at);
        }
        int32_t got = sw_json_mask(&st[at], pieces, lens, NP, allow), want_count = 0;
        for (int i = 0; i < NP; i++) {
            bool want = lens[i] > 0 && !sw_json_done(&st[at]) && at + lens[i] <= accepted;
            CHECK(allow[i] == want);
            want_count += want;
        }
        CHECK(got == want_count);
    }

    /* a large mask (the path with a first-byte table) agrees with feeding each
     * piece alone: 520 windows of the input, from a state part way in */
    if ((data[0] & 0xC0) == 0xC0 && len > 0) {
        enum { NL = 520 };
        static const char *lpieces[NL];
        static uint32_t llens[NL];
        static uint8_t lallow[NL];
        const sw_json_state *from = &st[accepted / 2];
        int32_t want_count = 0;
        for (int i = 0; i < NL; i++) {
            size_t start = ((size_t)i * 7) % len, m = (size_t)i % 9;
            if (m > len - start) m = len - start;
            lpieces[i] = m ? (const char *)body + start : NULL;
            llens[i] = (uint32_t)m;
        }
        int32_t got = sw_json_mask(from, lpieces, llens, NL, lallow);
        for (int i = 0; i < NL; i++) {
            sw_json_state t = *from;
            bool want =
                llens[i] > 0 && !sw_json_done(from) && sw_json_feed(&t, lpieces[i], llens[i]);
            CHECK(lallow[i] == want);
            want_count += want;
        }
        CHECK(got == want_count);
    }

    /* viability: the accepted prefix completes to an object cJSON can read */
    size_t cap = accepted + 4096;
    uint8_t *doc = malloc(cap);
    if (doc) {
        memcpy(doc, body, accepted);
        size_t dlen = accepted;
        sw_json_state c = st[accepted];
        CHECK(complete(&c, doc, &dlen, cap));
        CHECK(cjson_object(doc, dlen));
        if (accepted == len && sw_json_done(&st[len])) CHECK(dlen == len);
        g_sink += dlen;
        free(doc);
    }
    free(st);
    return 0;
}
