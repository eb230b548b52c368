/* quant_traits.c — the table of ggml type ids: names, block sizes and bytes per
 * block, for every id a GGUF file may carry (so the reader can validate and
 * size tensors of types we cannot compute with), plus name parsing. */
#include "quant.h"

#include <ctype.h>
#include <string.h>

/* can_dequantize / can_quantize are filled for the types quant.c implements. */
static const sw_type_traits k_traits[SW_TYPE_COUNT] = {
    [SW_TYPE_F32] = {"f32", 1, 4, true, true},
    [SW_TYPE_F16] = {"f16", 1, 2, true, true},
    [SW_TYPE_Q4_0] = {"q4_0", SW_QK4_0, sizeof(sw_block_q4_0), true, true},
    [SW_TYPE_Q4_1] = {"q4_1", SW_QK4_1, sizeof(sw_block_q4_1), true, true},
    [SW_TYPE_Q5_0] = {"q5_0", SW_QK5_0, sizeof(sw_block_q5_0), true, true},
    [SW_TYPE_Q5_1] = {"q5_1", SW_QK5_1, sizeof(sw_block_q5_1), true, true},
    [SW_TYPE_Q8_0] = {"q8_0", SW_QK8_0, sizeof(sw_block_q8_0), true, true},
    [SW_TYPE_Q8_1] = {"q8_1", SW_QK8_1, sizeof(sw_block_q8_1), false, false},
    [SW_TYPE_Q2_K] = {"q2_K", SW_QK_K, sizeof(sw_block_q2_K), true, true},
    [SW_TYPE_Q3_K] = {"q3_K", SW_QK_K, sizeof(sw_block_q3_K), true, true},
    [SW_TYPE_Q4_K] = {"q4_K", SW_QK_K, sizeof(sw_block_q4_K), true, true},
    [SW_TYPE_Q5_K] = {"q5_K", SW_QK_K, sizeof(sw_block_q5_K), true, true},
    [SW_TYPE_Q6_K] = {"q6_K", SW_QK_K, sizeof(sw_block_q6_K), true, true},
    [SW_TYPE_Q8_K] = {"q8_K", SW_QK_K, sizeof(sw_block_q8_K), false, false},
    /* i-quants and others: sizes per ggml, not computable here */
    [SW_TYPE_IQ2_XXS] = {"iq2_xxs", SW_QK_K, 2 + SW_QK_K / 8 * 2, false, false},
    [SW_TYPE_IQ2_XS] = {"iq2_xs", SW_QK_K, 2 + SW_QK_K / 8 * 2 + SW_QK_K / 32, false, false},
    [SW_TYPE_IQ3_XXS] = {"iq3_xxs", SW_QK_K, 2 + 3 * (SW_QK_K / 8), false, false},
    [SW_TYPE_IQ1_S] = {"iq1_s", SW_QK_K, 2 + SW_QK_K / 8 + SW_QK_K / 16, false, false},
    [SW_TYPE_IQ4_NL] = {"iq4_nl", 32, 2 + 16, false, false},
    [SW_TYPE_IQ3_S] = {"iq3_s", SW_QK_K, 2 + SW_QK_K / 4 + SW_QK_K / 8 + SW_QK_K / 32 + 4,
                       false, false},
    [SW_TYPE_IQ2_S] = {"iq2_s", SW_QK_K, 2 + SW_QK_K / 4 + SW_QK_K / 16, false, false},
    [SW_TYPE_IQ4_XS] = {"iq4_xs", SW_QK_K, 2 + 2 + SW_QK_K / 64 + SW_QK_K / 2, false, false},
    [SW_TYPE_I8] = {"i8", 1, 1, false, false},
    [SW_TYPE_I16] = {"i16", 1, 2, false, false},
    [SW_TYPE_I32] = {"i32", 1, 4, false, false},
    [SW_TYPE_I64] = {"i64", 1, 8, false, false},
    [SW_TYPE_F64] = {"f64", 1, 8, false, false},
    [SW_TYPE_IQ1_M] = {"iq1_m", SW_QK_K, SW_QK_K / 8 + SW_QK_K / 16 + SW_QK_K / 32, false, false},
    [SW_TYPE_BF16] = {"bf16", 1, 2, true, true},
    [SW_TYPE_TQ1_0] = {"tq1_0", SW_QK_K, 2 + 4 * 13, false, false},
    [SW_TYPE_TQ2_0] = {"tq2_0", SW_QK_K, 2 + 64, false, false},
    [SW_TYPE_MXFP4] = {"mxfp4", 32, 1 + 16, false, false},
    [SW_TYPE_NVFP4] = {"nvfp4", 64, 4 * (1 + 8), false, false},
    [SW_TYPE_Q1_0] = {"q1_0", 128, 2 + 16, false, false},
    [SW_TYPE_Q2_0] = {"q2_0", 64, 2 + 16, false, false},
};

const sw_type_traits *sw_type_get(uint32_t type) {
    if (type >= SW_TYPE_COUNT || k_traits[type].name == NULL) return NULL;
    return &k_traits[type];
}

const char *sw_type_name(uint32_t type) {
    const sw_type_traits *t = sw_type_get(type);
    return t ? t->name : "unknown";
}

size_t sw_row_size(sw_type type, int64_t n) {
    const sw_type_traits *t = sw_type_get((uint32_t)type);
    if (!t || n < 0 || n % t->blck_size != 0) return 0;
    return (size_t)(n / t->blck_size) * t->type_size;
}

sw_status sw_type_from_name(const char *name, sw_type *out, sw_err *err) {
    char buf[32];
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= sizeof buf)
        return sw_err_set(err, SW_E_INVALID_ARG, "unknown tensor type '%s'", name ? name : "");
    for (size_t i = 0; i <= n; i++) buf[i] = (char)tolower((unsigned char)name[i]);
    /* llama.cpp file-type names such as q4_k_m / q3_k_l map to their base type */
    if (n > 4 && buf[n - 2] == '_' && (buf[n - 1] == 'm' || buf[n - 1] == 's' || buf[n - 1] == 'l') &&
        buf[n - 3] == 'k')
        buf[n - 2] = '\0';
    for (uint32_t i = 0; i < SW_TYPE_COUNT; i++) {
        const sw_type_traits *t = sw_type_get(i);
        if (!t) continue;
        char lname[32];
        size_t k = strlen(t->name);
        for (size_t j = 0; j <= k; j++) lname[j] = (char)tolower((unsigned char)t->name[j]);
        if (!strcmp(lname, buf)) {
            *out = (sw_type)i;
            return SW_OK;
        }
    }
    return sw_err_set(err, SW_E_INVALID_ARG,
                      "unknown tensor type '%s' (expected f32, f16, bf16, q4_0, q4_1, q5_0, "
                      "q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k)",
                      name);
}
