/* fuzz_embed.c — libFuzzer target for the server's /v1/embeddings request
 * parser and response writer (tools/server/embed_parse.c), over a fake
 * embedding source (bytes are tokens, a 300-token vocabulary, at most 64
 * tokens an input, 3 dimensions); the input is the body. An accepted request must have 1..2048
 * inputs of 1..64 tokens inside the vocabulary, and its response must be
 * JSON with one embedding per input (floats, or base64 of 12 bytes); a
 * rejected one must carry a 4xx naming a param. Seeds: corpus/embed/. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "json_check.h"

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) __builtin_trap();                                                        \
    } while (0)

static bool fake_tokenize(const srv_embedder *em, const char *text, int32_t **ids, size_t *n,
                          srv_error *e) {
    size_t len = strlen(text);
    *ids = malloc((len ? len : 1) * sizeof **ids);
    if (!*ids) return srv_json_nomem(e);
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i] % em->n_vocab;
    *n = len;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    srv_embedder em = {.model = "fake", .dim = 3, .n_vocab = 300, .max_tokens = 64,
                       .tokenize = fake_tokenize};
    srv_error e;
    memset(&e, 0, sizeof e);
    cJSON *root = srv_json_parse_object((const char *)data, size, &e);
    if (!root) {
        CHECK(e.status == 400 && e.msg[0]);
        return 0;
    }
    srv_embed_req r;
    if (!srv_embed_parse(root, &em, &r, &e)) {
        CHECK(e.status >= 400 && e.status < 600 && e.msg[0]);
        CHECK(e.status != 400 || e.param[0]);
        CHECK(r.in == NULL && r.n == 0);
        cJSON_Delete(root);
        return 0;
    }
    CHECK(r.n >= 1 && r.n <= 2048 && r.in);
    size_t tokens = 0;
    for (size_t i = 0; i < r.n; i++) {
        CHECK(r.in[i].n >= 1 && r.in[i].n <= 64 && r.in[i].ids);
        for (size_t k = 0; k < r.in[i].n; k++) CHECK(r.in[i].ids[k] >= 0 && r.in[i].ids[k] < 300);
        tokens += r.in[i].n;
    }
    float *out = malloc(r.n * 3 * sizeof *out);
    CHECK(out);
    for (size_t i = 0; i < r.n * 3; i++) out[i] = (float)i * 0.25f - 1.0f;
    char *json = srv_embed_json(&em, &r, out, tokens);
    cJSON *resp = json ? cJSON_Parse(json) : NULL;
    CHECK(cJSON_IsObject(resp));
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(resp, "data");
    CHECK((size_t)cJSON_GetArraySize(arr) == r.n);
    cJSON *first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "embedding");
    if (r.base64) CHECK(cJSON_IsString(first) && strlen(first->valuestring) == 16);
    else CHECK(cJSON_GetArraySize(first) == 3);
    cJSON_Delete(resp);
    free(json);
    free(out);
    srv_embed_req_free(&r);
    cJSON_Delete(root);
    return 0;
}
