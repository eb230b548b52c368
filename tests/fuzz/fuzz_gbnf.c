/* fuzz_gbnf.c — libFuzzer target for the GBNF parser (runtime/gbnf.c) and the
 * grammar core. The input is grammar text. It must compile or fail with a
 * message (no crash, bounded time and memory); when it compiles, random
 * sentences must pass the matcher invariants of grammar_checks.h: accepted
 * whole, byte-wise and chunked alike, masks equal to trying each token, and
 * every accepted prefix completes in the promised number of bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gbnf.h"
#include "grammar_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sw_grammar *g = NULL;
    sw_err err = {{0}};
    sw_status st = sw_grammar_from_gbnf((const char *)data, size, &g, &err);
    if (st != SW_OK) {
        CHECK(!g && err.msg[0]);
        return 0;
    }
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;
    for (int k = 0; k < 3; k++) {
        char *s;
        size_t n;
        if (sw_grammar_sample(g, seed + (uint32_t)k, 48, &s, &n, &err) != SW_OK) {
            CHECK(strstr(err.msg, "no end within"));
            continue;
        }
        if (k == 0) fz_check_sentence(g, s, n, n ? (seed >> 8) % (n + 1) : 0, seed);
        free(s);
    }
    sw_grammar_free(g);
    return 0;
}
