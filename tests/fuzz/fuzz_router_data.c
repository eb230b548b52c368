/* fuzz_router_data.c — spillway-router's labelled-data parser (JSON lines):
 * any bytes either parse into items whose fields are consistent or give an
 * error naming a line, never a crash or a leak. Every need mode is tried. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int need = NEED_NONE; need <= NEED_REFERENCE; need++) {
        FILE *f = fmemopen((void *)data, size, "r");
        if (!f) return 0;
        dataset d;
        sw_err err;
        if (data_read(f, "fuzz", (need_field)need, &d, &err) == SW_OK) {
            for (int32_t i = 0; i < d.n; i++) {
                const item *it = &d.items[i];
                if (!it->query || (!it->msgs && !it->prompt)) abort();
                if (need == NEED_LABEL && !it->has_local_ok) abort();
                if (need == NEED_REFERENCE && !it->reference) abort();
                (void)strlen(it->query);
            }
            data_free(&d);
        } else if (!strstr(err.msg, "fuzz")) {
            abort(); /* errors name the file */
        }
        fclose(f);
    }
    return 0;
}
