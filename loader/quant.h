/* quant.h — tensor element types and their GGUF block layouts (bit-exact with
 * ggml), the reference dequantizers (the truth every kernel is tested against),
 * and round-to-nearest quantizers. Type ids are ggml's numbering, as stored in
 * GGUF tensor infos. */
#ifndef SW_QUANT_H
#define SW_QUANT_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_type {
    SW_TYPE_F32 = 0,
    SW_TYPE_F16 = 1,
    SW_TYPE_Q4_0 = 2,
    SW_TYPE_Q4_1 = 3,
    SW_TYPE_Q5_0 = 6,
    SW_TYPE_Q5_1 = 7,
    SW_TYPE_Q8_0 = 8,
    SW_TYPE_Q8_1 = 9,
    SW_TYPE_Q2_K = 10,
    SW_TYPE_Q3_K = 11,
    SW_TYPE_Q4_K = 12,
    SW_TYPE_Q5_K = 13,
    SW_TYPE_Q6_K = 14,
    SW_TYPE_Q8_K = 15,
    SW_TYPE_IQ2_XXS = 16,
    SW_TYPE_IQ2_XS = 17,
    SW_TYPE_IQ3_XXS = 18,
    SW_TYPE_IQ1_S = 19,
    SW_TYPE_IQ4_NL = 20,
    SW_TYPE_IQ3_S = 21,
    SW_TYPE_IQ2_S = 22,
    SW_TYPE_IQ4_XS = 23,
    SW_TYPE_I8 = 24,
    SW_TYPE_I16 = 25,
    SW_TYPE_I32 = 26,
    SW_TYPE_I64 = 27,
    SW_TYPE_F64 = 28,
    SW_TYPE_IQ1_M = 29,
    SW_TYPE_BF16 = 30,
    SW_TYPE_TQ1_0 = 34,
    SW_TYPE_TQ2_0 = 35,
    SW_TYPE_MXFP4 = 39,
    SW_TYPE_NVFP4 = 40,
    SW_TYPE_Q1_0 = 41,
    SW_TYPE_Q2_0 = 42,
    SW_TYPE_COUNT = 43 /* one past the largest id we know */
} sw_type;

#define SW_QK4_0 32
#define SW_QK4_1 32
#define SW_QK5_0 32
#define SW_QK5_1 32
#define SW_QK8_0 32
#define SW_QK8_1 32
#define SW_QK_K 256
#define SW_K_SCALE_SIZE 12

/* Block layouts, byte-for-byte as in GGUF files. f16 fields are raw uint16_t. */
typedef struct { uint16_t d; uint8_t qs[SW_QK4_0 / 2]; } sw_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[SW_QK4_1 / 2]; } sw_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[SW_QK5_0 / 2]; } sw_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[SW_QK5_1 / 2]; } sw_block_q5_1;
typedef struct { uint16_t d; int8_t qs[SW_QK8_0]; } sw_block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[SW_QK8_1]; } sw_block_q8_1;
typedef struct {
    uint8_t scales[SW_QK_K / 16]; /* 4-bit scale | 4-bit min per 16 */
    uint8_t qs[SW_QK_K / 4];      /* 2-bit quants */
    uint16_t d, dmin;
} sw_block_q2_K;
typedef struct {
    uint8_t hmask[SW_QK_K / 8]; /* high bit */
    uint8_t qs[SW_QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];         /* 6-bit scales, packed */
    uint16_t d;
} sw_block_q3_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[SW_K_SCALE_SIZE]; /* 6-bit scales and mins, packed */
    uint8_t qs[SW_QK_K / 2];
} sw_block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[SW_K_SCALE_SIZE];
    uint8_t qh[SW_QK_K / 8];
    uint8_t qs[SW_QK_K / 2];
} sw_block_q5_K;
typedef struct {
    uint8_t ql[SW_QK_K / 2];
    uint8_t qh[SW_QK_K / 4];
    int8_t scales[SW_QK_K / 16];
    uint16_t d;
} sw_block_q6_K;
typedef struct {
    float d;
    int8_t qs[SW_QK_K];
    int16_t bsums[SW_QK_K / 16];
} sw_block_q8_K;

typedef struct sw_type_traits {
    const char *name;     /* "q4_0", "f16", ... as ggml names them */
    int64_t blck_size;    /* elements per block (1 for plain types) */
    size_t type_size;     /* bytes per block */
    bool can_dequantize;  /* sw_dequantize_row supports it */
    bool can_quantize;    /* sw_quantize_row supports it */
} sw_type_traits;

/* Traits of a type id as read from a file; NULL for an id ggml never defined
 * (or removed, such as 4, 5, 31-33, 36-38). */
const sw_type_traits *sw_type_get(uint32_t type);
const char *sw_type_name(uint32_t type); /* "unknown" for bad ids */
/* Parse "q4_0", "Q4_K", "f16", "bf16" ... (case-insensitive). Also accepts
 * "q4_k_m"/"q4_k_s" style names as their base type. */
sw_status sw_type_from_name(const char *name, sw_type *out, sw_err *err);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or
 * the type is unknown. */
size_t sw_row_size(sw_type type, int64_t n);

/* Reference dequantize n elements (n % blck_size == 0) into f32.
 * Both: src/dst borrowed, any alignment for the block side; n == 0 is a no-op.
 * Errors: SW_E_UNSUPPORTED for a type without a (de)quantizer (message names
 * the type and n), SW_E_INVALID_ARG for a bad n or a NULL buffer. */
sw_status sw_dequantize_row(sw_type type, const void *src, float *dst, int64_t n, sw_err *err);
/* Round-to-nearest quantize n elements (n % blck_size == 0). */
sw_status sw_quantize_row(sw_type type, const float *src, void *dst, int64_t n, sw_err *err);

/* Scalar conversions, IEEE-exact (round to nearest even). */
float sw_f16_to_f32(uint16_t h);
uint16_t sw_f32_to_f16(float f);
float sw_bf16_to_f32(uint16_t h);
uint16_t sw_f32_to_bf16(float f);

/* Per-type row kernels behind sw_dequantize_row / sw_quantize_row, for callers
 * that have already validated the type and n (n >= 0, n % blck_size == 0) and
 * want no dispatch or checks, e.g. load-time repacking. src/dst are borrowed;
 * block pointers need no particular alignment (blocks are copied out with
 * memcpy). Float pointers must be float-aligned. Non-finite inputs to the
 * quantizers give defined but meaningless blocks (no UB, no crash). */
void sw_dequantize_f16(const void *src, float *dst, int64_t n);
void sw_dequantize_bf16(const void *src, float *dst, int64_t n);
void sw_dequantize_q4_0(const void *src, float *dst, int64_t n);
void sw_dequantize_q4_1(const void *src, float *dst, int64_t n);
void sw_dequantize_q5_0(const void *src, float *dst, int64_t n);
void sw_dequantize_q5_1(const void *src, float *dst, int64_t n);
void sw_dequantize_q8_0(const void *src, float *dst, int64_t n);
void sw_dequantize_q2_K(const void *src, float *dst, int64_t n);
void sw_dequantize_q3_K(const void *src, float *dst, int64_t n);
void sw_dequantize_q4_K(const void *src, float *dst, int64_t n);
void sw_dequantize_q5_K(const void *src, float *dst, int64_t n);
void sw_dequantize_q6_K(const void *src, float *dst, int64_t n);

void sw_quantize_f16(const float *src, void *dst, int64_t n);
void sw_quantize_bf16(const float *src, void *dst, int64_t n);
void sw_quantize_q4_0(const float *src, void *dst, int64_t n);
void sw_quantize_q4_1(const float *src, void *dst, int64_t n);
void sw_quantize_q5_0(const float *src, void *dst, int64_t n);
void sw_quantize_q5_1(const float *src, void *dst, int64_t n);
void sw_quantize_q8_0(const float *src, void *dst, int64_t n);
void sw_quantize_q2_K(const float *src, void *dst, int64_t n);
void sw_quantize_q3_K(const float *src, void *dst, int64_t n);
void sw_quantize_q4_K(const float *src, void *dst, int64_t n);
void sw_quantize_q5_K(const float *src, void *dst, int64_t n);
void sw_quantize_q6_K(const float *src, void *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
