/* cpu_kernels.c — the CPU backend's kernel sets: for each ISA, which
 * functions run the matmul (plain rows and packed groups), the activation
 * quantizers and the attention row loop, and how weights are packed for it.
 * sw_backend_cpu_create picks the set from cpuid (cpu_backend.c); nothing
 * here may be called on a CPU that lacks the set's ISA. */
#include "cpu_internal.h"

/* The AVX2 packed kernels (cpu_pack_avx2.c, cpu_pack_k_avx2.c). */
sw_cpu_pack_fn sw_cpu_pack_kernel_avx2(sw_type t) {
    switch (t) {
    case SW_TYPE_F32: return sw_cpu_pk_f32;
    case SW_TYPE_Q4_0: return sw_cpu_pk_q4_0;
    case SW_TYPE_Q4_1: return sw_cpu_pk_q4_1;
    case SW_TYPE_Q5_0: return sw_cpu_pk_q5_0;
    case SW_TYPE_Q5_1: return sw_cpu_pk_q5_1;
    case SW_TYPE_Q8_0: return sw_cpu_pk_q8_0;
    case SW_TYPE_Q4_K: return sw_cpu_pk_q4_K;
    case SW_TYPE_Q5_K: return sw_cpu_pk_q5_K;
    case SW_TYPE_Q6_K: return sw_cpu_pk_q6_K;
    default: return NULL;
    }
}

static const sw_cpu_kernels k_sets[SW_CPU_ISA_COUNT] = {
    [SW_CPU_ISA_SCALAR] = {.isa = SW_CPU_ISA_SCALAR,
                           .dot = sw_cpu_dot_scalar,
                           .quantize_q8 = sw_cpu_quantize_q8,
                           .quantize_q8_K = sw_cpu_quantize_q8_K,
                           .swiglu = sw_cpu_swiglu_row,
                           .geglu = sw_cpu_geglu_row,
                           .to_f16 = sw_cpu_to_f16_row,
                           .rms = sw_cpu_rms_row},
    [SW_CPU_ISA_AVX2] = {.isa = SW_CPU_ISA_AVX2,
                         .pack_rows = 8,
                         .pack_cols = 4, /* 16 ymm registers */
                         .dot = sw_cpu_dot_avx2,
                         .pack = sw_cpu_pack_kernel_avx2,
                         .quantize_q8 = sw_cpu_quantize_q8_avx2,
                         .quantize_q8_K = sw_cpu_quantize_q8_K_avx2,
                         .attend = sw_cpu_attend_avx2,
                         .attend_hd = 8,
                         .swiglu = sw_cpu_swiglu_row_avx2,
                         .geglu = sw_cpu_geglu_row_avx2,
                         .to_f16 = sw_cpu_to_f16_row_avx2,
                         .rms = sw_cpu_rms_row_avx2},
    /* AVX-VNNI: the AVX2 layout (8 rows in a ymm), VPDPBUSD kernels */
    [SW_CPU_ISA_AVXVNNI] = {.isa = SW_CPU_ISA_AVXVNNI,
                            .pack_rows = 8,
                            .pack_cols = 4,
                            .dot = sw_cpu_dot_avxvnni,
                            .pack = sw_cpu_pack_kernel_avxvnni,
                            .quantize_q8 = sw_cpu_quantize_q8_avx2,
                            .quantize_q8_K = sw_cpu_quantize_q8_K_avx2,
                            .attend = sw_cpu_attend_avx2,
                            .attend_hd = 8,
                            .swiglu = sw_cpu_swiglu_row_avx2,
                            .geglu = sw_cpu_geglu_row_avx2,
                            .to_f16 = sw_cpu_to_f16_row_avx2,
                            .rms = sw_cpu_rms_row_avx2,
                            .q8_offset_sum = true},
    /* AVX-512: 16 rows in a zmm; 32 registers hold more columns */
    [SW_CPU_ISA_AVX512] = {.isa = SW_CPU_ISA_AVX512,
                           .pack_rows = 16,
                           .pack_cols = 8,
                           .dot = sw_cpu_dot_avx512,
                           .pack = sw_cpu_pack_kernel_avx512,
                           .quantize_q8 = sw_cpu_quantize_q8_avx512,
                           .quantize_q8_K = sw_cpu_quantize_q8_K_avx512,
                           .attend = sw_cpu_attend_avx512,
                           .attend_hd = 16,
                           .swiglu = sw_cpu_swiglu_row_avx512,
                           .geglu = sw_cpu_geglu_row_avx512,
                           .to_f16 = sw_cpu_to_f16_row_avx2,
                           .rms = sw_cpu_rms_row_avx2,
                           .q8_offset_sum = true},
};

const sw_cpu_kernels *sw_cpu_kernels_get(sw_cpu_isa isa) {
    return &k_sets[(unsigned)isa < SW_CPU_ISA_COUNT ? isa : SW_CPU_ISA_SCALAR];
}
