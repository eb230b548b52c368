/* test_cuda_quant.c — the CUDA kernels' per-type quant math (cuda_quant.cuh,
 * compiled for the host) against the reference dequantizers: dequantization
 * bit-exact, integer dot products within float rounding of the exact sum over
 * the int8 activation grid, the tensor-core matmul's view of the blocks; and
 * the kernels' schedules run on the host (cuda_kernels_selftest.cu: the int8
 * tensor-core matmul with mma emulated, the decode attention's splits, warps
 * and merges, the 16-byte run loads). Needs no GPU, only a build with
 * SW_CUDA=ON; the kernels themselves are tested on a GPU by test_cuda_ops.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "sw_base.h"

#ifdef SW_HAVE_CUDA
#include "cuda_backend.h"

static void test_quant_selftest(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_status st = sw_cuda_quant_selftest(&err);
    if (st != SW_OK) fail_msg("%s", err.msg);
}

static void test_kernels_selftest(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_status st = sw_cuda_kernels_selftest(&err);
    if (st != SW_OK) fail_msg("%s", err.msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quant_selftest),
        cmocka_unit_test(test_kernels_selftest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

int main(void) {
    printf("skipped: built without CUDA (configure with -DSW_CUDA=ON)\n");
    return 77;
}

#endif
