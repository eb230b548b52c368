/* fuzz_json_schema.c — libFuzzer target for the JSON Schema compiler
 * (runtime/json_schema*.c, runtime/grammar*.c). The input is a schema. It
 * must compile or fail with a message, within the caps (no crash, bounded
 * time and memory). When it compiles, random sentences must be JSON that the
 * independent validator (tests/unit/support/schema_check.c) accepts, and must
 * pass the matcher invariants of grammar_checks.h. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "grammar_checks.h"
#include "json_schema.h"
#include "schema_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sw_grammar *g = NULL;
    sw_err err = {{0}};
    sw_status st = sw_grammar_from_json_schema((const char *)data, size, &g, &err);
    if (st != SW_OK) {
        CHECK(!g && err.msg[0]);
        return 0;
    }
    cJSON *schema = cJSON_ParseWithLength((const char *)data, size);
    CHECK(schema);
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;
    for (int k = 0; k < 3; k++) {
        char *s;
        size_t n;
        if (sw_grammar_sample(g, seed + (uint32_t)k, 48, &s, &n, &err) != SW_OK) {
            /* only an output that cannot end within the sampling bound */
            CHECK(strstr(err.msg, "no end within"));
            continue;
        }
        cJSON *doc = cJSON_ParseWithLength(s, n);
        CHECK(doc);
        char why[256];
        CHECK(sw_test_schema_valid(schema, doc, why, sizeof why));
        cJSON_Delete(doc);
        if (k == 0) fz_check_sentence(g, s, n, n ? (seed >> 8) % (n + 1) : 0, seed);
        free(s);
    }
    cJSON_Delete(schema);
    sw_grammar_free(g);
    return 0;
}
