/* fuzz_ppl_kl.c — libFuzzer target for the KL-divergence base file reader of
 * spillway-perplexity (tools/perplexity/ppl.c): the input is read as a file
 * (header, then rows for its vocabulary until the data ends or a row is
 * refused), every accepted row is compared with a fixed logit row, and the
 * result must be finite and non-negative up to rounding. The first byte picks
 * whether the input is taken as is or behind a valid header (so that the row
 * reader gets most of the inputs). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"

static volatile uint64_t g_sink;

static void run(const uint8_t *data, size_t size) {
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return;
    sw_err err;
    ppl_kl_header h;
    if (ppl_kl_read_header(f, "fuzz", &h, &err) != SW_OK) {
        g_sink += strlen(err.msg);
        fclose(f);
        return;
    }
    float *l = malloc(sizeof(float) * h.n_vocab);
    if (!l) goto done;
    for (uint32_t i = 0; i < h.n_vocab; i++) l[i] = (float)((i * 2654435761u) % 1000u) / 100.0f;
    double lse = ppl_row_lse(l, h.n_vocab, NULL);
    ppl_kl_row row = {0};
    ppl_kl_acc acc = {0};
    for (int n = 0; n < 64 && ppl_kl_read_row(f, "fuzz", h.n_vocab, &row, &err) == SW_OK; n++) {
        ppl_kl_compare(&acc, &row, l, lse, 0);
        /* KL of a partition: >= 0 up to float rounding of the stored values */
        if (!(acc.kl > -1e-3 * (double)acc.count) || isnan(acc.kl)) abort();
    }
    g_sink += (uint64_t)acc.count;
    ppl_kl_row_free(&row);
    free(l);
done:
    free(h.tokens);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) {
        run(data + 1, size - 1);
        return 0;
    }
    /* a valid header for a vocabulary of 2..257 and 1 chunk of 4 tokens */
    uint32_t nv = 2 + (data[0] >> 1);
    uint8_t hdr[24 + 16];
    memcpy(hdr, PPL_KL_MAGIC, 8);
    uint32_t v[4] = {PPL_KL_VERSION, nv, 4, 1};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++) hdr[8 + 4 * i + b] = (uint8_t)(v[i] >> (8 * b));
    memset(hdr + 24, 0, 16); /* four token ids 0 */
    uint8_t *buf = malloc(sizeof hdr + size - 1);
    if (!buf) return 0;
    memcpy(buf, hdr, sizeof hdr);
    memcpy(buf + sizeof hdr, data + 1, size - 1);
    run(buf, sizeof hdr + size - 1);
    free(buf);
    return 0;
}
