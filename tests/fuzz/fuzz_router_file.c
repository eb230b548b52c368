/* fuzz_router_file.c — the learned router's file parser (sw_rtr_load_memory):
 * any bytes either load into a router that scores in [0, 1] or give an error,
 * never a crash or a leak. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sw_rtr *r = NULL;
    sw_err err;
    if (sw_rtr_load_memory((const char *)data, size, "fuzz", &r, &err) != SW_OK) return 0;
    const sw_rtr_spec *s = sw_rtr_spec_get(r);
    if (s->n_embd <= 4096) {
        float *h = calloc((size_t)s->n_embd + 1, sizeof *h);
        if (h) {
            for (int32_t i = 0; i < s->n_embd; i++) h[i] = (float)(i % 7) - 3.0f;
            sw_rtr_input in = {h, h, s->n_embd, "What is 2 + 2?", 12};
            double p = -1;
            if (sw_rtr_score(r, &in, &p, NULL, &err) == SW_OK && !(p >= 0 && p <= 1) && !isnan(p))
                abort();
            free(h);
        }
    }
    sw_rtr_free(r);
    return 0;
}
