// cuda_mmq.cuh — the int8 tensor-core matmul for 9..128 rows of activations
// (prefill chunks, batches of 9..128 decoding sequences) on the quantized
// blocks as they are: no f16 copy of the weights. Shared by the kernel
// (cuda_mmq.cu) and its host self-test (cuda_quant_selftest.cu), which runs
// every tile function here on the host, with an emulation of the mma
// instruction written from the PTX ISA's fragment layouts.
//
// A thread block computes out[n0 .. n0 + 64, t0 .. t0 + BT) = W x for 64
// weight rows and BT = 8 NF tokens; four warps, warp w owns rows
// n0 + 16 w .. + 15 and all BT tokens (NF fragments of 8 tokens). The K
// dimension goes one 32-element group at a time:
//   1. 64 threads unpack one row's group each (swcu_q<T>::unpack32) into the
//      shared tile sw: 32 int8 (8 words), integer scales per 16, dA, mB;
//      BT threads copy one token's 32 int8 activations into sx with their
//      scale dx and the integer sums of each 16;
//   2. per 16-element half h, each warp runs mma.m16n8k16.s32.s8.s8.s32 per
//      fragment (exact integer dot products of 16 elements), then folds
//      acc += dx (dA sc_h c + mB_h xs_h) in float.
// Every integer is exact (|sc_h c| <= 127 * 16 * 127 * 127 < 2^31); the float
// rounding is a few operations per group, as in the mat-vec: the error bound
// of test_cuda_ops (against the host-quantized activations) holds for both.
//
// Assumes: K a multiple of 32 (of the block size), the activations quantized
// by swcu_quantize_q8 (16-byte aligned rows of K int8, one {d, d sum} per 32),
// sm_80 or newer (mma.m16n8k16 with s8 inputs).
#ifndef SW_CUDA_MMQ_CUH
#define SW_CUDA_MMQ_CUH

#include "cuda_quant.cuh"

#define MMQ_ROWS 64   // weight rows per block (4 warps x 16)
#define MMQ_THREADS 128
#define MMQ_STRIDE 12 // words per row of a shared tile: 8 used; 12 spreads the fragment
                      // loads of a warp over all 32 banks

// ---- mma.m16n8k16 (s8) fragment layout, PTX ISA "Matrix Fragments for
// mma.m16n8k16 with integer type": g = lane / 4, t = lane % 4.
// A (16 x 16, row-major): register r (0, 1) holds row g + 8 r, k = 4 t .. 4 t + 3.
// B (16 x 8, column-major): its one register holds column g, k = 4 t .. 4 t + 3.
// C (16 x 8): register i (0..3) holds row g + 8 (i / 2), column 2 t + i % 2.
SWCU_HD int swcu_mma_a_row(int lane, int r) { return lane / 4 + 8 * r; }
SWCU_HD int swcu_mma_k_word(int lane) { return lane % 4; }
SWCU_HD int swcu_mma_b_col(int lane) { return lane / 4; }
SWCU_HD int swcu_mma_c_row(int lane, int i) { return lane / 4 + 8 * (i / 2); }
SWCU_HD int swcu_mma_c_col(int lane, int i) { return 2 * (lane % 4) + i % 2; }

// One group of the weight tile: row `row` of the block.
struct swcu_mmq_w {
    int q[MMQ_ROWS][MMQ_STRIDE]; // 32 int8 as 8 words
    int sc[MMQ_ROWS][2];
    float dA[MMQ_ROWS];
    float mB[MMQ_ROWS][2];
};

// One group of the activation tile, token `tok` of the block.
template <int BT> struct swcu_mmq_x {
    int q[BT][MMQ_STRIDE];
    float dx[BT];
    int xs[BT][2]; // sum of the int8 of each 16
};

// Step 1 for a weight row: unpack group g of row `rw` (nullptr: a row past N,
// zeros) into tile row `row`.
template <int TYPE>
SWCU_HD void swcu_mmq_load_w(swcu_mmq_w &tw, int row, const uint8_t *rw, int g) {
    typedef swcu_q<TYPE> Q;
    if (!rw) {
        for (int i = 0; i < 8; i++) tw.q[row][i] = 0;
        tw.sc[row][0] = tw.sc[row][1] = 0;
        tw.dA[row] = 0.0f;
        tw.mB[row][0] = tw.mB[row][1] = 0.0f;
        return;
    }
    const int per = Q::QK / 32; // groups per block
    int8_t q[32];
    Q::unpack32(rw + (uint64_t)(g / per) * Q::BYTES, g % per, q, tw.sc[row], &tw.dA[row],
                tw.mB[row]);
    for (int i = 0; i < 8; i++) {
        int w;
        memcpy(&w, q + 4 * i, 4);
        tw.q[row][i] = w;
    }
}

// Step 1 for a token: group g of token `tok`'s activations (xq_t = its row of
// K int8, xds_t its {d, d sum} per group; nullptr: a token past T, zeros).
template <int BT>
SWCU_HD void swcu_mmq_load_x(swcu_mmq_x<BT> &tx, int tok, const int8_t *xq_t,
                             const float2 *xds_t, int g) {
    if (!xq_t) {
        for (int i = 0; i < 8; i++) tx.q[tok][i] = 0;
        tx.dx[tok] = 0.0f;
        tx.xs[tok][0] = tx.xs[tok][1] = 0;
        return;
    }
    int v[8];
    swcu_ld_group(xq_t + 32 * g, v);
    int s0 = 0, s1 = 0;
    for (int i = 0; i < 4; i++) {
        s0 = swcu_dp4a(v[i], 0x01010101, s0);
        s1 = swcu_dp4a(v[i + 4], 0x01010101, s1);
    }
    for (int i = 0; i < 8; i++) tx.q[tok][i] = v[i];
    tx.dx[tok] = xds_t[g].x;
    tx.xs[tok][0] = s0;
    tx.xs[tok][1] = s1;
}

// Step 2, the fragments of one lane: half h of the group, warp w's rows, the
// 8 tokens of fragment f.
SWCU_HD void swcu_mmq_frag_a(const swcu_mmq_w &tw, int w, int lane, int h, int a[2]) {
    for (int r = 0; r < 2; r++)
        a[r] = tw.q[16 * w + swcu_mma_a_row(lane, r)][4 * h + swcu_mma_k_word(lane)];
}
template <int BT>
SWCU_HD int swcu_mmq_frag_b(const swcu_mmq_x<BT> &tx, int f, int lane, int h) {
    return tx.q[8 * f + swcu_mma_b_col(lane)][4 * h + swcu_mma_k_word(lane)];
}

// Step 2, the fold of one lane's integer results c[4] of half h, fragment f,
// into its float accumulators acc[4].
template <int BT>
SWCU_HD void swcu_mmq_fold(const swcu_mmq_w &tw, const swcu_mmq_x<BT> &tx, int w, int lane,
                           int h, int f, const int c[4], float acc[4]) {
    for (int i = 0; i < 4; i++) {
        const int row = 16 * w + swcu_mma_c_row(lane, i), tok = 8 * f + swcu_mma_c_col(lane, i);
        const float v = tw.dA[row] * (float)(tw.sc[row][h] * c[i]) +
                        tw.mB[row][h] * (float)tx.xs[tok][h];
        acc[i] += tx.dx[tok] * v;
    }
}

#endif
