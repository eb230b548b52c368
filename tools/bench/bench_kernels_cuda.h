/* bench_kernels_cuda.h — `spillway-bench kernels --backend cuda`: the CUDA
 * backend's kernel microbenchmarks (see bench_kernels_cuda.c). Call it from
 * sw_bench_kernels_main when --backend is cuda; in a build without CUDA it
 * prints why and returns 2. */
#ifndef SW_BENCH_KERNELS_CUDA_H
#define SW_BENCH_KERNELS_CUDA_H

/* argv as sw_bench_kernels_main gets it (argv[0] may be the subcommand). */
int sw_bench_kernels_cuda(int argc, char **argv);

#endif
