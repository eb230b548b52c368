/* fuzz_route_config.c — libFuzzer target for the --route-config loader
 * (fallback/config.c: JSON with comments, strict field checks): parse the input
 * over a fresh config, then over the result again (a second document layered
 * on the first, as the server does with flags), and free. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sw_route_config c;
    sw_route_config_init(&c);
    sw_err err;
    size_t half = size / 2;
    for (int pass = 0; pass < 2; pass++) {
        const char *p = (const char *)data + (pass ? half : 0);
        size_t n = pass ? size - half : size;
        if (sw_route_config_parse(&c, p, n, "fuzz", &err) != SW_OK) {
            g_sink += strlen(err.msg);
            break;
        }
        sw_route_config_sync(&c);
    }
    sw_route_config_free(&c);
    return 0;
}
