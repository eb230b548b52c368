/* bench.h — spillway-bench subcommands. main.c dispatches on argv[1]; each
 * subcommand lives in its own file and gets argv shifted past the subcommand. */
#ifndef SW_BENCH_H
#define SW_BENCH_H

/* spillway-bench kernels [--backend cpu] [--op matmul|...] [--type q4_0,...]
 *                        [--shape KxNxT] [--threads N] [--json] */
int sw_bench_kernels_main(int argc, char **argv);
/* spillway-bench model -m FILE -p 128 -n 64 [--backend cpu] [--threads N] [--json] */
int sw_bench_model_main(int argc, char **argv);

#endif
