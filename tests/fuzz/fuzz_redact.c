/* fuzz_redact.c — libFuzzer target for privacy-preserving spill-over
 * (fallback/redact.c over fallback/pii.c). Byte 0 seeds the chunk sizes of a
 * streamed restore; the rest is text. Checks, for any input:
 *   - restoring the redacted text gives back the input, byte for byte (the
 *     user's own placeholder-shaped literals included);
 *   - restoring it as a stream cut at fuzzer-chosen points gives the same
 *     bytes, and never holds back more than one placeholder's prefix;
 *   - the same text as two messages of a chat body (system + user) redacts
 *     to the same strings with one shared mapping, and restores likewise;
 *   - the cloud echoing arbitrary text (the input itself, unredacted) is
 *     restored without crashing, stream and whole alike. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) __builtin_trap();                                                        \
    } while (0)

static sw_pii *g_pii;

/* Restore text as a stream in chunks drawn from seed; malloc'd result. */
static char *restore_stream(const sw_redactor *r, const char *text, size_t len, uint32_t seed,
                            size_t *out_len) {
    sw_restore_stream *st = NULL;
    sw_err err;
    CHECK(sw_restore_stream_create(r, &st, &err) == SW_OK);
    char *acc = malloc(len * 8 + 64);
    size_t n = 0, off = 0;
    CHECK(acc);
    for (;;) {
        size_t step = len - off;
        seed = seed * 1103515245u + 12345u;
        step = SW_MIN(step, (size_t)((seed >> 16) % 13));
        char *out = NULL;
        size_t ol = 0;
        if (off >= len) CHECK(sw_restore_finish(st, &out, &ol, &err) == SW_OK);
        else CHECK(sw_restore_feed(st, text + off, step, &out, &ol, &err) == SW_OK);
        CHECK(n + ol <= len * 8 + 63);
        memcpy(acc + n, out, ol);
        n += ol;
        free(out);
        CHECK(sw_restore_held(st) < 24);
        if (off >= len) break;
        off += step;
    }
    acc[n] = '\0';
    sw_restore_stream_free(st);
    *out_len = n;
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    if (!g_pii) {
        sw_err err;
        CHECK(sw_pii_create(SW_PII_ALL, &g_pii, &err) == SW_OK);
    }
    uint32_t seed = data[0] | 1u;
    /* JSON strings cannot hold NUL: cut there (the detectors see the same) */
    size_t len = strnlen((const char *)data + 1, size - 1);
    char *text = malloc(len + 1);
    CHECK(text);
    memcpy(text, data + 1, len);
    text[len] = '\0';

    sw_redactor *r = NULL;
    sw_err err;
    CHECK(sw_redactor_create(g_pii, &r, &err) == SW_OK);
    char *red = NULL, *back = NULL, *streamed;
    size_t red_len = 0, back_len = 0, s_len = 0;
    CHECK(sw_redact_text(r, text, len, &red, &red_len, &err) == SW_OK);
    CHECK(sw_restore_text(r, red, red_len, &back, &back_len, &err) == SW_OK);
    CHECK(back_len == len && !memcmp(back, text, len));
    streamed = restore_stream(r, red, red_len, seed, &s_len);
    CHECK(s_len == len && !memcmp(streamed, text, len));
    free(streamed);
    free(back);
    /* the cloud may answer anything: the input, unredacted */
    streamed = restore_stream(r, text, len, seed ^ 0x5a5a, &s_len);
    CHECK(sw_restore_text(r, text, len, &back, &back_len, &err) == SW_OK);
    CHECK(s_len == back_len && !memcmp(streamed, back, s_len));
    free(streamed);
    free(back);

    /* the same text twice in a chat body: one mapping for both */
    cJSON *body = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(body, "messages");
    for (int i = 0; i < 2; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", i ? "user" : "system");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(msgs, m);
    }
    sw_redactor *r2 = NULL;
    CHECK(sw_redactor_create(g_pii, &r2, &err) == SW_OK);
    CHECK(sw_redact_chat_body(r2, body, &err) == SW_OK);
    const char *c0 = cJSON_GetArrayItem(msgs, 0)->child->next->valuestring;
    const char *c1 = cJSON_GetArrayItem(msgs, 1)->child->next->valuestring;
    CHECK(!strcmp(c0, c1));
    CHECK(sw_redactor_spans(r2) == 2 * sw_redactor_spans(r));
    CHECK(sw_restore_text(r2, c1, strlen(c1), &back, &back_len, &err) == SW_OK);
    CHECK(back_len == len && !memcmp(back, text, len));
    free(back);
    cJSON_Delete(body);
    sw_redactor_free(r2);

    free(red);
    sw_redactor_free(r);
    free(text);
    return 0;
}
