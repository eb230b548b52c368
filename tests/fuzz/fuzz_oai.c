/* fuzz_oai.c — libFuzzer target for the server's OpenAI request parser
 * (tools/server/oai_parse.c) and the error writer: the first byte picks chat or
 * completions and the vocabulary size; the rest is the request body. An
 * accepted request must satisfy the invariants the handlers rely on (exactly
 * one completions prompt form, token ids inside the vocabulary, at most
 * OAI_MAX_STOP stop strings); a rejected one must carry a 4xx status and a
 * message that serializes. Seeds: corpus/oai/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

static volatile uint64_t g_sink;

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) __builtin_trap();                                                        \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool chat = data[0] & 1;
    int32_t n_vocab = (data[0] & 2) ? 512 : 151936;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    srv_request r;
    srv_error e;
    memset(&e, 0, sizeof e);
    srv_wire wire = chat ? SRV_WIRE_OAI_CHAT : SRV_WIRE_OAI_COMPLETIONS;
    if (!oai_parse_request(body, len, wire, n_vocab, &r, &e)) {
        CHECK(e.status >= 400 && e.status < 600);
        CHECK(e.type && memchr(e.msg, 0, sizeof e.msg) != NULL && e.msg[0]);
        char *s = oai_error_json(&e);
        CHECK(s != NULL);
        g_sink += strlen(s);
        free(s);
        return 0;
    }
    CHECK(r.wire == wire && r.raw != NULL);
    if (chat) {
        CHECK(r.n_msgs > 0 && r.msgs);
        for (size_t i = 0; i < r.n_msgs; i++) {
            CHECK(r.msgs[i].role && (r.msgs[i].n_blocks == 0 || r.msgs[i].blocks));
            g_sink += strlen(r.msgs[i].role);
            for (size_t j = 0; j < r.msgs[i].n_blocks; j++) {
                CHECK(r.msgs[i].blocks[j].type == SRV_BLOCK_TEXT && r.msgs[i].blocks[j].text);
                g_sink += strlen(r.msgs[i].blocks[j].text);
            }
        }
        /* what the router's detectors scan */
        const char **texts = NULL;
        size_t n = 0;
        CHECK(srv_request_texts(&r, &texts, &n));
        for (size_t i = 0; i < n; i++) g_sink += strlen(texts[i]);
        free(texts);
    } else {
        CHECK((r.prompt != NULL) != (r.prompt_ids != NULL || r.n_prompt_ids > 0));
        for (size_t i = 0; i < r.n_prompt_ids; i++)
            CHECK(r.prompt_ids[i] >= 0 && r.prompt_ids[i] < n_vocab);
        if (r.prompt) g_sink += strlen(r.prompt);
    }
    CHECK(r.n_stop >= 0 && r.n_stop <= OAI_MAX_STOP);
    for (int i = 0; i < r.n_stop; i++) CHECK(r.stop[i] && r.stop[i][0]);
    CHECK(r.max_tokens >= 0);
    CHECK(r.sp.n_logit_bias >= 0 && r.sp.n_logit_bias <= SW_MAX_LOGIT_BIAS);
    CHECK(r.sp.n_logit_bias == 0 || r.sp.logit_bias == r.logit_bias);
    for (int32_t i = 0; i < r.sp.n_logit_bias; i++)
        CHECK(r.logit_bias[i].id >= 0 && r.logit_bias[i].id < n_vocab &&
              r.logit_bias[i].bias >= -100.0f && r.logit_bias[i].bias <= 100.0f);
    CHECK(r.top_logprobs >= 0 && r.top_logprobs <= SW_MAX_TOP_LOGPROBS);
    if (r.model) g_sink += strlen(r.model);
    srv_request_free(&r);
    CHECK(r.raw == NULL && r.msgs == NULL);
    return 0;
}
