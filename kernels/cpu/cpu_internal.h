/* cpu_internal.h — shared between the CPU backend's source files only: the
 * backend and buffer structs, the op entry points each file implements, the
 * activation block formats of the integer matmul, and the kernel tables.
 *
 * Everything here that is inline is `static inline`: this header is included
 * by cpu_*_avx2.c too, and a non-static inline could let the linker pick an
 * AVX2-compiled copy for callers on CPUs without AVX2. */
#ifndef SW_CPU_INTERNAL_H
#define SW_CPU_INTERNAL_H

#include <math.h>
#include <string.h>

#include "backend.h"
#include "cpu_backend.h"
#include "threadpool.h"

/* A weight stored in the packed layout of cpu_pack.c. */
typedef struct {
    size_t off, size; /* byte range in its buffer */
    sw_type type;     /* a type sw_cpu_pack_type accepts */
    int64_t K;        /* row length */
    int64_t Np;       /* rows [0, Np) are packed in groups of R; the rest are plain */
    int R;            /* rows per group: 8 (AVX2, AVX-VNNI) or 16 (AVX-512) */
    size_t row_bytes;
} sw_cpu_packed;

struct sw_buffer {
    void *data; /* 64-byte aligned host memory, owned */
    size_t size;
    sw_buf_usage usage;
    sw_cpu_packed *packed; /* [n_packed], sorted by off, owned */
    int n_packed, cap_packed;
};

struct sw_cpu_kernels;

typedef struct sw_cpu_backend {
    sw_backend base; /* must be first */
    sw_threadpool *pool;
    const struct sw_cpu_kernels *k; /* the kernel set (cpu_kernels.c) */
    bool simd;                      /* isa >= AVX2: the AVX2 helpers may run */
    /* per-call scratch (quantized activations, attention rows), grown on demand;
     * a backend is driven by one thread at a time, so one scratch suffices */
    void *scratch;
    size_t scratch_size;
} sw_cpu_backend;

/* Grow the scratch to at least n bytes (64-byte aligned); returns NULL on OOM. */
void *sw_cpu_scratch(sw_cpu_backend *be, size_t n);

/* Host address of a CPU tensor's first element, and of the start of row
 * (i1, i2, i3). */
static inline uint8_t *sw_cpu_ptr(const sw_tensor *t) {
    return (uint8_t *)t->buf->data + t->offset;
}
static inline uint8_t *sw_cpu_row(const sw_tensor *t, int64_t i1, int64_t i2, int64_t i3) {
    return sw_cpu_ptr(t) + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3];
}

/* ---- scalar conversions (exact, round to nearest even) ----
 * Local copies so the hot loops inline them; loader/quant.c has the public ones. */
static inline float sw_cpu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t ex = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (ex == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (ex == 0) {
        float f = (float)man * 0x1p-24f; /* zero or subnormal: exact */
        return sign ? -f : f;
    } else {
        bits = sign | ((ex + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t sw_cpu_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) { /* below 2^-14: f16 subnormal, units of 2^-24 */
        float v;
        memcpy(&v, &ax, 4);
        return (uint16_t)(sign | (uint16_t)nearbyintf(v * 0x1p24f));
    }
    uint32_t h = ((((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu));
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* carry into exponent is right */
    return (uint16_t)(sign | h);
}

/* f16 -> f32 through a 64K-entry table (256 KiB), for the scalar kernels'
 * inner loops where the branchy conversion above would dominate. Filled once
 * by sw_cpu_init_tables (called by sw_backend_cpu_create). */
extern float sw_cpu_f16_table[65536];
void sw_cpu_init_tables(void);
static inline float sw_cpu_f16_lut(uint16_t h) {
    return sw_cpu_f16_table[h];
}

static inline float sw_cpu_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- matmul kernels ----
 * Activations are quantized once per call to 8 bits: blocks of 32 with an f32
 * scale and the scaled sum (for the 32-element weight types), or sw_block_q8_K
 * (256 with 16-element sums, for the K-quants). */
typedef struct {
    float d;        /* scale: x ~= d * qs */
    float s;        /* d * sum(qs), for the weight types with an offset m */
    int32_t sum;    /* sum(qs); times -o for the VNNI kernels of a weight type with an
                       offset o (cpu_matmul.c, sw_cpu_kernels.q8_offset_sum) */
    int8_t qs[32];
} sw_cpu_q8;

/* Dot products of one weight row (k elements, in its GGUF type) with nc <= 4
 * activation columns: column c starts at x + c * x_stride bytes (F32 rows for
 * float weights, sw_cpu_q8 or sw_block_q8_K blocks otherwise); res[c] gets the
 * result. */
#define SW_CPU_MAX_COLS 4
typedef void (*sw_cpu_dot_fn)(int64_t k, const void *w, const void *x, size_t x_stride, int nc,
                              float *res);

typedef enum { SW_CPU_ACT_F32 = 0, SW_CPU_ACT_Q8 = 1, SW_CPU_ACT_Q8K = 2 } sw_cpu_act;

/* Activation format the kernels for weight type t take, and whether t is a
 * matmul weight type at all. */
bool sw_cpu_matmul_type(sw_type t, sw_cpu_act *act);
/* Plain-row kernel tables: NULL when the type has no kernel in that set.
 * Each set's functions may only run on a CPU that has its ISA. */
sw_cpu_dot_fn sw_cpu_dot_scalar(sw_type t);
sw_cpu_dot_fn sw_cpu_dot_avx2(sw_type t);
sw_cpu_dot_fn sw_cpu_dot_avxvnni(sw_type t);
sw_cpu_dot_fn sw_cpu_dot_avx512(sw_type t);

/* Quantize n (multiple of 32 / 256) floats to the activation blocks. */
void sw_cpu_quantize_q8(const float *x, sw_cpu_q8 *y, int64_t n);
void sw_cpu_quantize_q8_K(const float *x, sw_block_q8_K *y, int64_t n);
/* The same, bit for bit, with AVX2 (cpu_vec_dot_avx2.c) and AVX-512
 * (cpu_quant_avx512.c). */
void sw_cpu_quantize_q8_avx2(const float *x, sw_cpu_q8 *y, int64_t n);
void sw_cpu_quantize_q8_K_avx2(const float *x, sw_block_q8_K *y, int64_t n);
void sw_cpu_quantize_q8_avx512(const float *x, sw_cpu_q8 *y, int64_t n);
void sw_cpu_quantize_q8_K_avx512(const float *x, sw_block_q8_K *y, int64_t n);

/* AVX2 helpers for attention (cpu_vec_dot_avx2.c). */
float sw_cpu_dot_f32_avx2(const float *a, const float *b, int64_t n);
float sw_cpu_dot_f32_f16_avx2(const float *a, const uint16_t *b, int64_t n);
void sw_cpu_axpy_f32_avx2(float *y, float a, const float *x, int64_t n); /* y += a x */
void sw_cpu_axpy_f16_avx2(float *y, float a, const uint16_t *x, int64_t n);
void sw_cpu_scale_f32_avx2(float *y, float a, int64_t n);
/* One query row against keys k0..n_keys-1 of kv head kvh (the causal
 * context, cut to a sliding window when k0 > 0), found through the block
 * table; acc: hd floats of scratch. The AVX2 one needs hd % 8 == 0
 * (cpu_attention_avx2.c), the AVX-512 one hd % 16 == 0
 * (cpu_attention_avx512.c). */
typedef void (*sw_cpu_attend_fn)(const float *q, float *out, float *acc, int64_t hd, float scale,
                                 int64_t k0, int64_t n_keys, const int32_t *table,
                                 const sw_tensor *kc, const sw_tensor *vc, int64_t kvh);
void sw_cpu_attend_avx2(const float *q, float *out, float *acc, int64_t hd, float scale,
                        int64_t k0, int64_t n_keys, const int32_t *table, const sw_tensor *kc,
                        const sw_tensor *vc, int64_t kvh);
void sw_cpu_attend_avx512(const float *q, float *out, float *acc, int64_t hd, float scale,
                          int64_t k0, int64_t n_keys, const int32_t *table, const sw_tensor *kc,
                          const sw_tensor *vc, int64_t kvh);

/* ---- packed weights (cpu_pack.c: the layout and the table of packed
 * types; the kernels are in cpu_pack_avx2.c for F32 and the 32-element block
 * types, cpu_pack_k_avx2.c for the K-quants, and cpu_pack_vnni.h, built as
 * cpu_pack_avx512.c (16 rows, zmm) and cpu_pack_avxvnni.c (8 rows, ymm)) ---- */
bool sw_cpu_pack_type(sw_type t);
sw_status sw_cpu_upload_weight(sw_backend *be, const sw_tensor *dst, const void *src, sw_err *err);
/* The packed range holding byte off of buf, or NULL. */
const sw_cpu_packed *sw_cpu_pack_find(const sw_buffer *buf, size_t off);
/* Drop the packed ranges overlapping [off, off + n) (a plain upload over them). */
void sw_cpu_pack_forget(sw_buffer *buf, size_t off, size_t n);
/* Plain bytes of packed row r (< Np) of e, whose first byte is at base. */
void sw_cpu_pack_unpack_row(const sw_cpu_packed *e, const uint8_t *base, int64_t r, uint8_t *dst);
/* R packed rows (one group at w) times nc <= the set's pack_cols activation
 * columns (in the weight type's activation format: F32 rows, sw_cpu_q8 or
 * sw_block_q8_K blocks; column c at x + c * xs): res[c * R + r]. */
#define SW_CPU_PK_MAX_COLS 8
typedef void (*sw_cpu_pack_fn)(int64_t k, const uint8_t *w, const void *x, size_t xs, int nc,
                               float *res);
#define SW_CPU_PACK_KERNEL(name)                                                                   \
    void name(int64_t k, const uint8_t *w, const void *x, size_t xs, int nc, float *res)
/* The packed kernel of type t in each set, NULL for a type it does not pack. */
sw_cpu_pack_fn sw_cpu_pack_kernel_avx2(sw_type t);
sw_cpu_pack_fn sw_cpu_pack_kernel_avxvnni(sw_type t);
sw_cpu_pack_fn sw_cpu_pack_kernel_avx512(sw_type t);
SW_CPU_PACK_KERNEL(sw_cpu_pk_f32);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q4_0);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q4_1);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q5_0);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q5_1);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q8_0);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q4_K);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q5_K);
SW_CPU_PACK_KERNEL(sw_cpu_pk_q6_K);
/* Byte offsets inside a packed unit (R rows x one block) are R times these
 * (cpu_pack.c describes the layouts). */
enum {
    SW_PK_K4_SCALES = 4,  /* Q4_K, Q5_K: Ls, Lm, H after the R d and R dmin */
    SW_PK_K4_QS = 16,     /* Q4_K, Q5_K: 32 qs vectors */
    SW_PK_Q5K_QH = 144,   /* Q5_K: 8 vectors of 5th bits */
    SW_PK_Q6K_SCALES = 2, /* Q6_K: 8 x 2R bytes of scales after the R d */
    SW_PK_Q6K_Q = 18,     /* Q6_K: 16 x (2 ql vectors, 1 qh vector) */
};

/* ---- rows of the small ops (cpu_ops.c: scalar; cpu_ops_avx2.c, cpu_ops_avx512.c) ---- */
/* y = silu(g) u */
typedef void (*sw_cpu_swiglu_fn)(const float *g, const float *u, float *y, int64_t n);
void sw_cpu_swiglu_row(const float *g, const float *u, float *y, int64_t n);
void sw_cpu_swiglu_row_avx2(const float *g, const float *u, float *y, int64_t n);
void sw_cpu_swiglu_row_avx512(const float *g, const float *u, float *y, int64_t n);
/* y = gelu(g) u, GELU in its tanh form (same row type as swiglu) */
void sw_cpu_geglu_row(const float *g, const float *u, float *y, int64_t n);
void sw_cpu_geglu_row_avx2(const float *g, const float *u, float *y, int64_t n);
void sw_cpu_geglu_row_avx512(const float *g, const float *u, float *y, int64_t n);
/* GELU, tanh form, as g sigmoid(2v) with v = sqrt(2/pi) (g + 0.044715 g^3):
 * the same function as g/2 (1 + tanh(v)) without its cancellation for
 * negative g; for g -> -inf expf overflows to inf and the result is -0. */
static inline float sw_cpu_gelu_tanh(float g) {
    const float v = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return g / (1.0f + expf(-2.0f * v));
}
/* y = f16(x), rounded to nearest even */
typedef void (*sw_cpu_to_f16_fn)(const float *x, uint16_t *y, int64_t n);
void sw_cpu_to_f16_row(const float *x, uint16_t *y, int64_t n);
void sw_cpu_to_f16_row_avx2(const float *x, uint16_t *y, int64_t n);
/* y = x / rms(x) * w, the sum of squares in double */
typedef void (*sw_cpu_rms_fn)(const float *x, const float *w, float *y, int64_t n, float eps);
void sw_cpu_rms_row(const float *x, const float *w, float *y, int64_t n, float eps);
void sw_cpu_rms_row_avx2(const float *x, const float *w, float *y, int64_t n, float eps);
/* 1 / sqrt(ss / n + eps) from the sum of squares, as every rms row rounds it */
static inline float sw_cpu_rms_scale(double ss, int64_t n, float eps) {
    return (float)(1.0 / sqrt(ss / (double)n + (double)eps));
}

/* ---- kernel sets (cpu_kernels.c) ---- */
typedef struct sw_cpu_kernels {
    sw_cpu_isa isa;
    int pack_rows; /* R of the packed layout; 0: weights stay plain */
    int pack_cols; /* column tile of the packed kernels, <= SW_CPU_PK_MAX_COLS */
    sw_cpu_dot_fn (*dot)(sw_type t);
    sw_cpu_pack_fn (*pack)(sw_type t); /* NULL when pack_rows is 0 */
    void (*quantize_q8)(const float *x, sw_cpu_q8 *y, int64_t n);
    void (*quantize_q8_K)(const float *x, sw_block_q8_K *y, int64_t n);
    sw_cpu_attend_fn attend; /* NULL: the generic loop of cpu_attention.c */
    int attend_hd;           /* attend needs head_dim % attend_hd == 0 */
    sw_cpu_swiglu_fn swiglu;
    sw_cpu_swiglu_fn geglu;
    sw_cpu_to_f16_fn to_f16;
    sw_cpu_rms_fn rms;
    /* the packed kernels take sw_cpu_q8.sum as -o sum(qs) for the weight
     * types with an offset o (Q4_0 8, Q5_0 16, Q8_0 128 as w + 128): the
     * integer sum then starts from it at no cost */
    bool q8_offset_sum;
} sw_cpu_kernels;
const sw_cpu_kernels *sw_cpu_kernels_get(sw_cpu_isa isa);

/* ---- op entry points (arguments already validated by the sw_be_* wrappers) ---- */
sw_status sw_cpu_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                          sw_tensor *out, sw_err *err);
sw_status sw_cpu_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                          sw_tensor *out, sw_err *err);
sw_status sw_cpu_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                        const sw_tensor *bias, sw_tensor *out, sw_err *err);
sw_status sw_cpu_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos, const sw_rope_params *p,
                      sw_err *err);
sw_status sw_cpu_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                          sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                          sw_err *err);
sw_status sw_cpu_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                           const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                           sw_err *err);
sw_status sw_cpu_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                        sw_err *err);
sw_status sw_cpu_layer_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                            const sw_tensor *b, float eps, sw_tensor *out, sw_err *err);
sw_status sw_cpu_gelu(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err);
sw_status sw_cpu_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                     sw_err *err);
sw_status sw_cpu_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                       sw_err *err);
sw_status sw_cpu_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err);
sw_status sw_cpu_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                         sw_err *err);

sw_status sw_cpu_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h,
                              const sw_tensor *w, float eps, sw_tensor *out, sw_err *err);
sw_status sw_cpu_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                               const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                               sw_tensor *v_cache, const sw_tensor *slots, sw_err *err);


/* Both dot-product files (scalar cpu_vec_dot.c, cpu_vec_dot_avx2.c) name their
 * kernels dot_<type>; this is their common type -> kernel lookup. */
#define SW_CPU_DOT_LOOKUP(t)                                                                       \
    switch (t) {                                                                                   \
    case SW_TYPE_F32: return dot_f32;                                                              \
    case SW_TYPE_F16: return dot_f16;                                                              \
    case SW_TYPE_BF16: return dot_bf16;                                                            \
    case SW_TYPE_Q4_0: return dot_q4_0;                                                            \
    case SW_TYPE_Q4_1: return dot_q4_1;                                                            \
    case SW_TYPE_Q5_0: return dot_q5_0;                                                            \
    case SW_TYPE_Q5_1: return dot_q5_1;                                                            \
    case SW_TYPE_Q8_0: return dot_q8_0;                                                            \
    case SW_TYPE_Q2_K: return dot_q2_K;                                                            \
    case SW_TYPE_Q3_K: return dot_q3_K;                                                            \
    case SW_TYPE_Q4_K: return dot_q4_K;                                                            \
    case SW_TYPE_Q5_K: return dot_q5_K;                                                            \
    case SW_TYPE_Q6_K: return dot_q6_K;                                                            \
    default: return NULL;                                                                          \
    }


/* A kernel name##_nc(k, w, x, xs, res, nc) is written for a compile-time token
 * count nc in 1..4; this makes the run-time entry point that dispatches on nc
 * (so the compiler unrolls each variant). W is the weight pointer type. */
#define SW_CPU_INSTANTIATE_NC(name, W)                                                             \
    static void name(int64_t k, W w, const void *x, size_t xs, int nc, float *res) {               \
        switch (nc) {                                                                              \
        case 1: name##_nc(k, w, x, xs, res, 1); break;                                             \
        case 2: name##_nc(k, w, x, xs, res, 2); break;                                             \
        case 3: name##_nc(k, w, x, xs, res, 3); break;                                             \
        default: name##_nc(k, w, x, xs, res, 4); break;                                            \
        }                                                                                          \
    }

#endif
