/* test_json_grammar.c — the JSON-object recognizer used for constrained
 * decoding: tables of valid documents (every prefix viable, byte by byte and in
 * random chunks alike, done only at the end, nothing accepted after it), tables
 * of invalid documents with the exact index of the first refused byte, the
 * exact set of next bytes in chosen states, the depth/whitespace/number limits,
 * sw_json_mask on a small vocabulary, and random documents from a generator
 * checked against cJSON (an independent parser). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_grammar.h"
#include "sw_test.h"

/* ---- helpers ---------------------------------------------------------------- */

static sw_test_rng rng = {2024}; /* shared LCG: tests/unit/support/sw_test.c */

static uint32_t rand_below(uint32_t n) {
    return (uint32_t)(sw_test_urand(&rng) * n);
}

/* State after feeding a whole C string (which must be accepted). */
static sw_json_state state_after(const char *prefix) {
    sw_json_state s;
    sw_json_init(&s);
    if (!sw_json_feed(&s, prefix, strlen(prefix))) fail_msg("prefix refused: %s", prefix);
    return s;
}

/* Does byte c continue state s? */
static bool accepts_byte(const sw_json_state *s, uint8_t c) {
    sw_json_state t = *s;
    char b = (char)c;
    return sw_json_feed(&t, &b, 1);
}

/* Bytes that would complete nothing: tried after a finished document. */
static const char k_after_end[] = " \t\n\r}],:\"{[0atn";

/* A valid document: every prefix viable byte by byte and in random chunks
 * (with identical states at chunk ends), done exactly at the end, and no byte
 * accepted after it. */
static void check_valid(const char *doc, size_t len) {
    sw_json_state *st = malloc((len + 1) * sizeof *st);
    assert_non_null(st);
    sw_json_init(&st[0]);
    assert_false(sw_json_done(&st[0]));
    for (size_t i = 0; i < len; i++) {
        st[i + 1] = st[i];
        if (!sw_json_feed(&st[i + 1], doc + i, 1))
            fail_msg("byte %zu (0x%02x) refused in valid document: %.*s", i, (uint8_t)doc[i],
                     (int)len, doc);
        if (i + 1 < len && sw_json_done(&st[i + 1]))
            fail_msg("done after %zu of %zu bytes: %.*s", i + 1, len, (int)len, doc);
    }
    if (!sw_json_done(&st[len])) fail_msg("not done at the end: %.*s", (int)len, doc);

    for (int round = 0; round < 8; round++) {
        sw_json_state s;
        sw_json_init(&s);
        size_t off = 0;
        while (off < len) {
            size_t k = round == 0 ? len : 1 + rand_below(round < 4 ? 4 : 12);
            if (k > len - off) k = len - off;
            assert_true(sw_json_feed(&s, doc + off, k));
            off += k;
            assert_int_equal(sw_json_done(&s), sw_json_done(&st[off]));
            assert_memory_equal(&s, &st[off], sizeof s);
        }
    }
    for (size_t j = 0; j < sizeof k_after_end - 1; j++)
        if (accepts_byte(&st[len], (uint8_t)k_after_end[j]))
            fail_msg("byte '%c' accepted after the end of %.*s", k_after_end[j], (int)len, doc);
    sw_json_state t = st[len];
    assert_true(sw_json_feed(&t, "", 0)); /* feeding nothing is always fine */
    free(st);
}

/* An invalid document: bytes [0, bad) accepted, byte bad refused, whatever the
 * chunking. */
static void check_invalid(const char *doc, size_t len, size_t bad) {
    assert_true(bad < len);
    sw_json_state s;
    sw_json_init(&s);
    for (size_t i = 0; i < bad; i++)
        if (!sw_json_feed(&s, doc + i, 1))
            fail_msg("byte %zu refused, expected the first refusal at %zu: %.*s", i, bad, (int)len,
                     doc);
    if (sw_json_feed(&s, doc + bad, 1))
        fail_msg("byte %zu (0x%02x) accepted: %.*s", bad, (uint8_t)doc[bad], (int)len, doc);
    sw_json_init(&s);
    assert_true(sw_json_feed(&s, doc, bad));
    assert_false(sw_json_feed(&s, doc + bad, len - bad));
    sw_json_init(&s);
    assert_false(sw_json_feed(&s, doc, len));
}

/* ---- valid documents ---------------------------------------------------------- */

#define DOC(s)                                                                                     \
    { s, sizeof(s) - 1 }
typedef struct {
    const char *doc;
    size_t len;
} valid_doc;

static const valid_doc k_valid[] = {
    DOC("{}"),
    DOC(" \t\r\n{}"),
    DOC("{\"a\":1}"),
    DOC("{\"\":\"\"}"),
    DOC("{\"a\":[]}"),
    DOC("{\"a\":{}}"),
    DOC("{\"a\":[[]]}"),
    DOC("{\"a\":{\"b\":[1,[2,{\"c\":null}],[]]},\"d\":true,\"e\":false}"),
    DOC("{\"a\":[true,false,null,\"x\",{},[],0]}"),
    /* every escape, in a value and in a key */
    DOC("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"),
    DOC("{\"k\\n\\u0041\":0}"),
    /* \u escapes, both cases, and surrogate pairs */
    DOC("{\"u\":"
        "\"\\u0041\\u00e9\\uFFFF\\uD83D\\uDE00\\ud800\\udfff\\uDBFF\\uDC00\\uD7FF\\uE000\"}"),
    DOC("{\"u\":\"\\u0000\\uaBcD\"}"),
    /* raw UTF-8 of 2, 3 and 4 bytes, including the edge cases of each lead byte */
    DOC("{\"x\":\"\xC3\xA9 \xC2\x80 \xDF\xBF \xE2\x82\xAC \xE0\xA0\x80 \xED\x9F\xBF \xEE\x80\x80 "
        "\xEF\xBF\xBF \xF0\x9F\x98\x80 \xF0\x90\x80\x80 \xF3\xBF\xBF\xBF \xF4\x8F\xBF\xBF\"}"),
    DOC("{\"\xE2\x82\xAC\":\"\xF0\x9F\x98\x80\"}"),
    /* numbers */
    DOC("{\"n\":[-0,0.5e-10,1E+2,123,0,-12.5,1e5,0E0,-0.0e-0,9007199254740993,0.0,10e010]}"),
    DOC("{\"a\":-1}"),
    DOC("{\"a\":1.25,\"b\":2e9}"),
    DOC("{\"a\":1 ,\"b\":2\n}"),
    DOC("{\"a\":[1]}"),
    DOC("{\"a\":[0 ,1\t]}"),
    /* structural bytes inside strings */
    DOC("{\"a\":\"}],:{[ tru 1\"}"),
    /* whitespace wherever it may go */
    DOC(" { \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] , \"d\" : \"x\" , \"e\" : true \n}"),
    DOC("\r\n{\r\n\t\"a\"\t:\r\n[\n]\n,\n\"b\"\n:\nnull\n}"),
    DOC("{ }"),
    DOC("{\"a\":[ ]}"),
};

static void test_valid_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_valid / sizeof k_valid[0]; i++)
        check_valid(k_valid[i].doc, k_valid[i].len);
}

/* ---- invalid documents -------------------------------------------------------- */

typedef struct {
    const char *doc;
    size_t len;
    size_t bad; /* index of the first byte that must be refused */
} invalid_doc;

#define BAD(s, i)                                                                                  \
    { s, sizeof(s) - 1, i }
static const invalid_doc k_invalid[] = {
    /* trailing commas, misplaced commas */
    BAD("{\"a\":1,}", 7),
    BAD("{\"a\":[1,]}", 8),
    BAD("{,}", 1),
    BAD("{\"a\":[,1]}", 6),
    BAD("{\"a\":1,,\"b\":2}", 7),
    /* numbers */
    BAD("{\"a\":01}", 6),
    BAD("{\"a\":-01}", 7),
    BAD("{\"a\":1.}", 7),
    BAD("{\"a\":.5}", 5),
    BAD("{\"a\":-}", 6),
    BAD("{\"a\":-a}", 6),
    BAD("{\"a\":+1}", 5),
    BAD("{\"a\":1e}", 7),
    BAD("{\"a\":1e+}", 8),
    BAD("{\"a\":1E+-1}", 8),
    BAD("{\"a\":1.5.2}", 8),
    BAD("{\"a\":1e5.1}", 8),
    BAD("{\"a\":1ee}", 7),
    BAD("{\"a\":1 2}", 7),
    BAD("{\"a\":0x10}", 6),
    /* escapes */
    BAD("{\"a\":\"\\x\"}", 7),
    BAD("{\"a\":\"\\U0041\"}", 7),
    BAD("{\"a\":\"\\u12G4\"}", 10),
    BAD("{\"a\":\"\\u12\"}", 10),
    /* lone low surrogate: refused as soon as \uDC..\uDF is certain */
    BAD("{\"a\":\"\\uDC00\"}", 9),
    BAD("{\"a\":\"\\udfff\"}", 9),
    /* high surrogate not followed by \u + low surrogate */
    BAD("{\"a\":\"\\uD800\\u0041\"}", 14),
    BAD("{\"a\":\"\\uD800\\uD800\"}", 15),
    BAD("{\"a\":\"\\uDBFF\\uDB00\"}", 15),
    BAD("{\"a\":\"\\uD800x\"}", 12),
    BAD("{\"a\":\"\\uD800\"}", 12),
    BAD("{\"a\":\"\\uD800\\n\"}", 13),
    BAD("{\"a\":\"\\uD83D\\uDE0G\"}", 17),
    /* raw control bytes in strings (including in keys) */
    BAD("{\"a\":\"x\ty\"}", 7),
    BAD("{\"a\":\"\x01\"}", 6),
    BAD("{\"a\":\"\x1f\"}", 6),
    BAD("{\"a\n\":1}", 3),
    BAD("{\"a\":\"\0\"}", 6),
    /* bad UTF-8 */
    BAD("{\"a\":\"\xC0\x80\"}", 6),
    BAD("{\"a\":\"\xC1\xBF\"}", 6),
    BAD("{\"a\":\"\xED\xA0\x80\"}", 7),
    BAD("{\"a\":\"\xE0\x80\x80\"}", 7),
    BAD("{\"a\":\"\xE0\x9F\xBF\"}", 7),
    BAD("{\"a\":\"\xF0\x80\x80\x80\"}", 7),
    BAD("{\"a\":\"\xF0\x8F\xBF\xBF\"}", 7),
    BAD("{\"a\":\"\xF4\x90\x80\x80\"}", 7),
    BAD("{\"a\":\"\xF5\x80\x80\x80\"}", 6),
    BAD("{\"a\":\"\xFF\"}", 6),
    BAD("{\"a\":\"\x80\"}", 6),
    BAD("{\"a\":\"\xBF\"}", 6),
    BAD("{\"a\":\"\xE2\x82\"}", 8),
    BAD("{\"a\":\"\xC3\"}", 7),
    BAD("{\"a\":\"\xF0\x9F\x98\"}", 9),
    BAD("{\"a\":\"\xC3\xA9\xA9\"}", 8),
    BAD("{\"a\":\"\xE2\x82\xAC\x41\xAC\"}", 10),
    /* top level is an object and nothing else */
    BAD("[]", 0),
    BAD("\"a\"", 0),
    BAD("1", 0),
    BAD("  1", 2),
    BAD("true", 0),
    BAD("}", 0),
    BAD("\xEF\xBB\xBF{}", 0), /* no byte-order mark */
    BAD("{}}", 2),
    BAD("{} ", 2),
    BAD("{}\n", 2),
    BAD("{}{}", 2),
    /* keys and colons */
    BAD("{a:1}", 1),
    BAD("{1:1}", 1),
    BAD("{\"a\" 1}", 5),
    BAD("{\"a\"}", 4),
    BAD("{\"a\"::1}", 5),
    BAD("{\"a\":1:}", 6),
    BAD("{\"a\":}", 5),
    BAD("{\"a\":\"b\" \"c\"}", 9),
    BAD("{\"a\":[1:2]}", 7),
    /* literals */
    BAD("{\"a\":tru}", 8),
    BAD("{\"a\":trUe}", 7),
    BAD("{\"a\":nul,}", 8),
    BAD("{\"a\":falsey}", 10),
    BAD("{\"a\":True}", 5),
    BAD("{\"a\":nil}", 6),
    /* closers */
    BAD("{\"a\":1]", 6),
    BAD("{\"a\":[1}", 7),
    BAD("{]", 1),
    BAD("{\"a\":[}", 6),
    /* NUL bytes */
    BAD("{\0}", 1),
    BAD("\0{}", 0),
};

static void test_invalid_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_invalid / sizeof k_invalid[0]; i++)
        check_invalid(k_invalid[i].doc, k_invalid[i].len, k_invalid[i].bad);
}

/* ---- limits ------------------------------------------------------------------- */

static void test_depth(void **state) {
    (void)state;
    char doc[512];
    /* 64 levels: the object and 63 arrays; one more of either kind is refused */
    int len = snprintf(doc, sizeof doc, "{\"a\":");
    for (int i = 0; i < 63; i++)
        doc[len++] = '[';
    sw_json_state s;
    sw_json_init(&s);
    assert_true(sw_json_feed(&s, doc, (size_t)len));
    assert_false(accepts_byte(&s, '['));
    assert_false(accepts_byte(&s, '{'));
    assert_true(accepts_byte(&s, ']'));
    assert_true(accepts_byte(&s, '"'));
    memcpy(doc + len, "[]", 2);
    check_invalid(doc, (size_t)len + 2, (size_t)len);
    for (int i = 0; i < 63; i++)
        doc[len++] = ']';
    doc[len++] = '}';
    check_valid(doc, (size_t)len);

    /* 64 nested objects, then 65 */
    len = 0;
    for (int i = 0; i < 64; i++)
        len += snprintf(doc + len, sizeof doc - (size_t)len, "{\"k\":");
    len -= 5; /* the innermost object is empty */
    doc[len++] = '{';
    size_t open = (size_t)len;
    for (int i = 0; i < 64; i++)
        doc[len++] = '}';
    check_valid(doc, (size_t)len);
    memcpy(doc + open, "\"k\":{}", 6);
    check_invalid(doc, open + 6, open + 4);

    /* a closed container frees its level again */
    len = snprintf(doc, sizeof doc, "{\"a\":");
    for (int i = 0; i < 63; i++)
        doc[len++] = '[';
    for (int i = 0; i < 63; i++)
        doc[len++] = ']';
    len += snprintf(doc + len, sizeof doc - (size_t)len, ",\"b\":");
    for (int i = 0; i < 63; i++)
        doc[len++] = '[';
    for (int i = 0; i < 63; i++)
        doc[len++] = ']';
    doc[len++] = '}';
    check_valid(doc, (size_t)len);
}

static void test_whitespace_limit(void **state) {
    (void)state;
    char doc[512];
    /* 32 in a row anywhere between tokens is fine; the count restarts after a token */
    int len = 0;
    const char *parts[] = {"{", "\"a\"", ":", "[", "1", ",", "2", "]", "}"};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        for (int i = 0; i < SW_JSON_MAX_WS; i++)
            doc[len++] = " \t\n\r"[i % 4];
        len += snprintf(doc + len, sizeof doc - (size_t)len, "%s", parts[p]);
    }
    check_valid(doc, (size_t)len);

    /* the 33rd is refused: at the start, between tokens, after a number */
    const char *prefixes[] = {"", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":[", "{\"a\":[1,"};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        len = snprintf(doc, sizeof doc, "%s", prefixes[p]);
        size_t start = (size_t)len;
        for (int i = 0; i < SW_JSON_MAX_WS + 1; i++)
            doc[len++] = i & 1 ? '\n' : ' ';
        check_invalid(doc, (size_t)len, start + SW_JSON_MAX_WS);
    }

    /* spaces inside strings are content, not counted */
    len = snprintf(doc, sizeof doc, "{\"a\":\"");
    for (int i = 0; i < 100; i++)
        doc[len++] = ' ';
    len += snprintf(doc + len, sizeof doc - (size_t)len, "\"}");
    check_valid(doc, (size_t)len);
}

static void test_number_limit(void **state) {
    (void)state;
    char doc[256];
    /* SW_JSON_MAX_NUM digits are fine, one more is refused */
    int len = snprintf(doc, sizeof doc, "{\"a\":");
    size_t start = (size_t)len;
    for (int i = 0; i < SW_JSON_MAX_NUM; i++)
        doc[len++] = (char)('1' + i % 9);
    doc[len++] = '}';
    check_valid(doc, (size_t)len);
    doc[len - 1] = '0';
    doc[len++] = '}';
    check_invalid(doc, (size_t)len, start + SW_JSON_MAX_NUM);

    /* a byte that would fill the limit while still needing a digit is refused
     * at once: "-ddd." with the '.' as byte SW_JSON_MAX_NUM */
    const char *needs_digit[] = {".", "e", "E+"};
    for (size_t k = 0; k < 3; k++) {
        len = snprintf(doc, sizeof doc, "{\"a\":-");
        size_t tail = strlen(needs_digit[k]);
        while ((size_t)len - start < SW_JSON_MAX_NUM - tail && (size_t)len < sizeof doc - 8)
            doc[len++] = '7';
        len += snprintf(doc + len, sizeof doc - (size_t)len, "%s5}", needs_digit[k]);
        /* the last byte of needs_digit[k] is byte SW_JSON_MAX_NUM */
        check_invalid(doc, (size_t)len, start + SW_JSON_MAX_NUM - 1);
        /* one digit shorter, it fits exactly */
        memmove(doc + start + 1, doc + start + 2, (size_t)len - start - 2);
        check_valid(doc, (size_t)len - 1);
    }
}

/* ---- exact next-byte sets ----------------------------------------------------- */

/* Every byte in allowed[] (n of them) continues prefix, and no other byte does. */
static void check_next(const char *prefix, const char *allowed, size_t n) {
    sw_json_state s = state_after(prefix);
    uint8_t want[256] = {0};
    for (size_t i = 0; i < n; i++)
        want[(uint8_t)allowed[i]] = 1;
    for (int c = 0; c < 256; c++)
        if (accepts_byte(&s, (uint8_t)c) != want[c])
            fail_msg("after %s: byte 0x%02x %s", prefix, c,
                     want[c] ? "refused, expected accepted" : "accepted, expected refused");
}
#define NEXT(prefix, allowed) check_next(prefix, allowed, sizeof(allowed) - 1)

static void test_next_bytes(void **state) {
    (void)state;
    NEXT("", " \t\n\r{");
    NEXT("{", " \t\n\r\"}");
    NEXT("{\"a\"", " \t\n\r:");
    NEXT("{\"a\":", " \t\n\r{[\"-0123456789tfn");
    NEXT("{\"a\":[", " \t\n\r{[\"-0123456789tfn]");
    NEXT("{\"a\":[1,", " \t\n\r{[\"-0123456789tfn");
    NEXT("{\"a\":1,", " \t\n\r\"");
    NEXT("{\"a\":[1", " \t\n\r,]0123456789.eE");
    NEXT("{\"a\":0", " \t\n\r,}.eE");
    NEXT("{\"a\":-", "0123456789");
    NEXT("{\"a\":-0", " \t\n\r,}.eE");
    NEXT("{\"a\":1.", "0123456789");
    NEXT("{\"a\":1.5", " \t\n\r,}0123456789eE");
    NEXT("{\"a\":1e", "+-0123456789");
    NEXT("{\"a\":1e-", "0123456789");
    NEXT("{\"a\":1e-5", " \t\n\r,}0123456789");
    NEXT("{\"a\":t", "r");
    NEXT("{\"a\":fals", "e");
    NEXT("{\"a\":null", " \t\n\r,}");
    NEXT("{\"a\":\"\\", "\"\\/bfnrtu");
    NEXT("{\"a\":\"\\u", "0123456789abcdefABCDEF");
    NEXT("{\"a\":\"\\uD", "0123456789abAB"); /* not C..F: that is a low surrogate */
    NEXT("{\"a\":\"\\ud8", "0123456789abcdefABCDEF");
    NEXT("{\"a\":\"\\uD800", "\\");
    NEXT("{\"a\":\"\\uD800\\", "u");
    NEXT("{\"a\":\"\\uD800\\u", "Dd");
    NEXT("{\"a\":\"\\uD800\\uD", "CDEFcdef");
    NEXT("{\"a\":\"\\uD800\\uDc", "0123456789abcdefABCDEF");
    NEXT("{}", "");

    /* inside a string: 0x20..0x7F and the UTF-8 lead bytes C2..F4 */
    char buf[256];
    size_t n = 0;
    for (int c = 0x20; c < 0x80; c++)
        buf[n++] = (char)c;
    for (int c = 0xC2; c <= 0xF4; c++)
        buf[n++] = (char)c;
    check_next("{\"", buf, n);
    check_next("{\"a\":\"x", buf, n);
    check_next("{\"a\":\"\\n", buf, n);
    check_next("{\"a\":\"\\u00e9", buf, n);
    check_next("{\"a\":\"\\uD83D\\uDE00", buf, n);
    check_next("{\"a\":\"\xE2\x82\xAC", buf, n);

    /* continuation bytes, by lead byte */
    static const struct {
        const char *prefix;
        int lo, hi;
    } k_cont[] = {
        {"{\"a\":\"\xC2", 0x80, 0xBF},     {"{\"a\":\"\xE0", 0xA0, 0xBF},
        {"{\"a\":\"\xE1", 0x80, 0xBF},     {"{\"a\":\"\xED", 0x80, 0x9F},
        {"{\"a\":\"\xEF", 0x80, 0xBF},     {"{\"a\":\"\xF0", 0x90, 0xBF},
        {"{\"a\":\"\xF3", 0x80, 0xBF},     {"{\"a\":\"\xF4", 0x80, 0x8F},
        {"{\"a\":\"\xE0\xA0", 0x80, 0xBF}, {"{\"a\":\"\xED\x80", 0x80, 0xBF},
        {"{\"a\":\"\xF4\x80", 0x80, 0xBF}, {"{\"a\":\"\xF0\x90\x80", 0x80, 0xBF},
    };
    for (size_t k = 0; k < sizeof k_cont / sizeof k_cont[0]; k++) {
        n = 0;
        for (int c = k_cont[k].lo; c <= k_cont[k].hi; c++)
            buf[n++] = (char)c;
        check_next(k_cont[k].prefix, buf, n);
    }
}

/* ---- sw_json_mask ------------------------------------------------------------- */

static const char *const k_pieces[] = {"{", "}", "\"",   "a",   "\": ", "1", ",",
                                       " ", "",  "\n\n", "{\"", "}}",   "]"};
#define N_PIECES ((int32_t)(sizeof k_pieces / sizeof k_pieces[0]))

static void check_mask(const char *prefix, const char *want) {
    sw_json_state s = state_after(prefix);
    uint32_t lens[N_PIECES];
    for (int32_t i = 0; i < N_PIECES; i++)
        lens[i] = (uint32_t)strlen(k_pieces[i]);
    uint8_t allow[N_PIECES];
    memset(allow, 0xAA, sizeof allow);
    sw_json_state before = s;
    int32_t got = sw_json_mask(&s, k_pieces, lens, N_PIECES, allow);
    assert_memory_equal(&s, &before, sizeof s); /* the state is not touched */
    int32_t count = 0;
    for (int32_t i = 0; i < N_PIECES; i++) {
        uint8_t w = (uint8_t)(want[i] == '1');
        if (allow[i] != w)
            fail_msg("after %s: piece %d (\"%s\") allow=%d, expected %d", prefix, i, k_pieces[i],
                     allow[i], w);
        count += w;
    }
    assert_int_equal(got, count);
}

static void test_mask(void **state) {
    (void)state;
    /* one digit per piece, in the order of k_pieces:
     * {  }  "  a  ":_  1  ,  _  (empty)  \n\n  {"  }}  ]     (_ is a space) */
    check_mask("", "1000000101100");
    check_mask("{", "0110100101000");       /* "\": " opens a key */
    check_mask("{\"", "1111111100111");     /* inside a key */
    check_mask("{\"a\":", "1010110101100"); /* a value */
    check_mask("{\"a\":1", "0100011101000");
    check_mask("{\"a\":[", "1010110101101");
    check_mask("{\"a\":[\"x\"", "0000001101001");
    check_mask("{\"a\":{}", "0100001101000");
    check_mask("{\"a\":{\"b\":1", "0100011101010");
    check_mask("{\"a\":t", "0000000000000");
    check_mask("{\"a\"", "0000000101000");
    check_mask("{\"a", "1111111100111");
    check_mask("{}", "0000000000000"); /* done: everything refused */

    /* 31 spaces: one more fits, two do not */
    char prefix[64];
    int len = snprintf(prefix, sizeof prefix, "{");
    for (int i = 0; i < SW_JSON_MAX_WS - 1; i++)
        prefix[len++] = ' ';
    prefix[len] = 0;
    check_mask(prefix, "0110100100000");

    /* n = 0, and a NULL pointer for an empty piece */
    sw_json_state s = state_after("{");
    uint8_t allow[2] = {7, 7};
    assert_int_equal(sw_json_mask(&s, k_pieces, NULL, 0, allow), 0);
    assert_int_equal(allow[0], 7);
    const char *const pieces[2] = {NULL, "}"};
    const uint32_t lens[2] = {0, 1};
    assert_int_equal(sw_json_mask(&s, pieces, lens, 2, allow), 1);
    assert_int_equal(allow[0], 0);
    assert_int_equal(allow[1], 1);
}

/* A vocabulary large enough for sw_json_mask's first-byte table: its answers
 * equal feeding each piece alone, in every state along several documents. */
static void test_mask_large(void **state) {
    (void)state;
    enum { NV = 3000 };
    static const char k_alpha[] =
        "{}[]\",: \n\t\\u0-1.eE+tfrunlsaDdC9\xC3\xA9\xE2\x82\xAC\xF0\x9F\x80\xED";
    static char store[NV * 8];
    static const char *pieces[NV];
    static uint32_t lens[NV];
    static uint8_t allow[NV];
    for (int i = 0; i < NV; i++) {
        lens[i] = rand_below(9); /* 0..8; empty pieces get NULL */
        pieces[i] = lens[i] ? store + i * 8 : NULL;
        for (uint32_t j = 0; j < lens[i]; j++)
            store[i * 8 + j] = k_alpha[rand_below(sizeof k_alpha - 1)];
    }
    static const char *const docs[] = {
        "{\"a\":[1,-2.5e+3,{\"b\":\"x\\u00e9\\uD83D\\uDE00\xC3\xA9\"}],\"c\":true , \"d\":null}",
        " {\"\xE2\x82\xAC\":[[],{}],\"e\":\"\\n\",\"f\":false}",
    };
    for (size_t d = 0; d < 2; d++) {
        sw_json_state s;
        sw_json_init(&s);
        for (size_t k = 0; k <= strlen(docs[d]); k++) {
            int32_t got = sw_json_mask(&s, pieces, lens, NV, allow), want_count = 0;
            for (int i = 0; i < NV; i++) {
                sw_json_state t = s;
                uint8_t want =
                    lens[i] > 0 && !sw_json_done(&s) && sw_json_feed(&t, pieces[i], lens[i]);
                if (allow[i] != want)
                    fail_msg("doc %zu after %zu bytes: piece \"%.*s\" allow=%d, expected %d", d, k,
                             (int)lens[i], pieces[i], allow[i], want);
                want_count += want;
            }
            assert_int_equal(got, want_count);
            if (docs[d][k]) assert_true(sw_json_feed(&s, docs[d] + k, 1));
        }
        assert_true(sw_json_done(&s));
    }
}

/* ---- random documents --------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} gbuf;

static void put(gbuf *b, const char *s, size_t n) {
    if (b->n + n > b->cap) fail_msg("generator buffer full");
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put_str(gbuf *b, const char *s) {
    put(b, s, strlen(s));
}

static void gen_ws(gbuf *b) {
    uint32_t k = rand_below(6);
    if (k > 3) return;
    for (uint32_t i = 0; i < k; i++)
        put(b, &" \t\n\r"[rand_below(4)], 1);
}

/* A random code point (no surrogates) as UTF-8. */
static void gen_utf8(gbuf *b) {
    static const uint32_t lo[] = {0x80, 0x800, 0xE000, 0x10000};
    static const uint32_t hi[] = {0x7FF, 0xD7FF, 0xFFFF, 0x10FFFF};
    uint32_t k = rand_below(4), cp = lo[k] + rand_below(hi[k] - lo[k] + 1);
    char u[4];
    size_t n;
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63));
        u[2] = (char)(0x80 | (cp & 63)), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63));
        u[2] = (char)(0x80 | (cp >> 6 & 63)), u[3] = (char)(0x80 | (cp & 63)), n = 4;
    }
    put(b, u, n);
}

static void gen_string(gbuf *b) {
    static const char *const esc[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"};
    put_str(b, "\"");
    uint32_t n = rand_below(8);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = rand_below(10);
        char tmp[16];
        if (k < 4) {
            char c = (char)(0x20 + rand_below(95));
            if (c == '"' || c == '\\') c = 'q';
            put(b, &c, 1);
        } else if (k < 6) {
            put_str(b, esc[rand_below(8)]);
        } else if (k == 6) {
            uint32_t u = rand_below(0x10000);
            if (u >= 0xD800 && u <= 0xDFFF) u = 0x20AC;
            snprintf(tmp, sizeof tmp, rand_below(2) ? "\\u%04x" : "\\u%04X", u);
            put_str(b, tmp);
        } else if (k == 7) {
            snprintf(tmp, sizeof tmp, "\\u%04X\\u%04x", 0xD800 + rand_below(0x400),
                     0xDC00 + rand_below(0x400));
            put_str(b, tmp);
        } else {
            gen_utf8(b);
        }
    }
    put_str(b, "\"");
}

static void gen_number(gbuf *b) {
    char tmp[64];
    size_t n = 0;
    if (rand_below(3) == 0) tmp[n++] = '-';
    if (rand_below(4) == 0) {
        tmp[n++] = '0';
    } else {
        tmp[n++] = (char)('1' + rand_below(9));
        for (uint32_t i = rand_below(6); i > 0; i--)
            tmp[n++] = (char)('0' + rand_below(10));
    }
    if (rand_below(2)) {
        tmp[n++] = '.';
        for (uint32_t i = 1 + rand_below(5); i > 0; i--)
            tmp[n++] = (char)('0' + rand_below(10));
    }
    if (rand_below(2)) {
        tmp[n++] = "eE"[rand_below(2)];
        uint32_t s = rand_below(3);
        if (s) tmp[n++] = s == 1 ? '+' : '-';
        for (uint32_t i = 1 + rand_below(3); i > 0; i--)
            tmp[n++] = (char)('0' + rand_below(10));
    }
    put(b, tmp, n);
}

static void gen_value(gbuf *b, int depth);

static void gen_container(gbuf *b, int depth, bool object) {
    put_str(b, object ? "{" : "[");
    gen_ws(b);
    uint32_t n = rand_below(depth > 4 ? 1 : 5);
    for (uint32_t i = 0; i < n; i++) {
        if (i) {
            gen_ws(b);
            put_str(b, ",");
            gen_ws(b);
        }
        if (object) {
            gen_string(b);
            gen_ws(b);
            put_str(b, ":");
            gen_ws(b);
        }
        gen_value(b, depth + 1);
    }
    gen_ws(b);
    put_str(b, object ? "}" : "]");
}

static void gen_value(gbuf *b, int depth) {
    static const char *const lit[] = {"true", "false", "null"};
    switch (rand_below(6)) {
    case 0:
        gen_container(b, depth, true);
        break;
    case 1:
        gen_container(b, depth, false);
        break;
    case 2:
        gen_string(b);
        break;
    case 3:
        gen_number(b);
        break;
    case 4:
        put_str(b, lit[rand_below(3)]);
        break;
    default:
        gen_number(b);
        break;
    }
}

/* cJSON reads doc[0, len) as exactly one object. */
static bool cjson_object(const char *doc, size_t len) {
    char *z = malloc(len + 1);
    assert_non_null(z);
    memcpy(z, doc, len);
    z[len] = 0;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(z, len + 1, &end, 1);
    bool ok = j && cJSON_IsObject(j) && end == z + len;
    cJSON_Delete(j);
    free(z);
    return ok;
}

static void test_random_documents(void **state) {
    (void)state;
    static char mem[1 << 16], doc[(1 << 16) + 1];
    for (int iter = 0; iter < 400; iter++) {
        gbuf b = {mem, 0, sizeof mem};
        gen_ws(&b);
        gen_container(&b, 0, true);
        check_valid(b.p, b.n);
        if (!cjson_object(b.p, b.n)) fail_msg("cJSON refuses %.*s", (int)b.n, b.p);

        /* one-byte mutations: whatever we accept as complete, cJSON reads too */
        for (int m = 0; m < 20; m++) {
            memcpy(doc, b.p, b.n);
            size_t n = b.n, at = rand_below((uint32_t)n);
            static const char k_bytes[] = "{}[]\",:\\ u0e.-+Dtn\x80\xC3";
            char c = k_bytes[rand_below(sizeof k_bytes - 1)];
            switch (rand_below(3)) {
            case 0:
                doc[at] = c;
                break;
            case 1:
                memmove(doc + at + 1, doc + at, n - at), doc[at] = c, n++;
                break;
            default:
                memmove(doc + at, doc + at + 1, n - at - 1), n--;
                break;
            }
            sw_json_state s;
            sw_json_init(&s);
            if (sw_json_feed(&s, doc, n) && sw_json_done(&s) && !cjson_object(doc, n))
                fail_msg("accepted but cJSON refuses %.*s", (int)n, doc);
        }
    }
}

static void test_state_size(void **state) {
    (void)state;
    assert_true(sizeof(sw_json_state) <= 64);
    assert_true(sizeof(sw_json_state) <= 48);
    /* a copy is a snapshot: feeding the copy leaves the original as it was */
    sw_json_state a = state_after("{\"a\":[1,");
    sw_json_state b = a;
    assert_true(sw_json_feed(&b, "2]}", 3));
    assert_true(sw_json_done(&b));
    assert_false(sw_json_done(&a));
    assert_true(sw_json_feed(&a, "{}]}", 4));
    assert_true(sw_json_done(&a));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_whitespace_limit),
        cmocka_unit_test(test_number_limit),
        cmocka_unit_test(test_next_bytes),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_large),
        cmocka_unit_test(test_random_documents),
        cmocka_unit_test(test_state_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
