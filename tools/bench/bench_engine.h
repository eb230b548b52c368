/* bench_engine.h — spillway-bench engine: serving throughput and latency of
 * the continuous-batching engine (sched/engine.h) under N concurrent requests. */
#ifndef SW_BENCH_ENGINE_H
#define SW_BENCH_ENGINE_H

/* spillway-bench engine -m FILE [--concurrency 1,4,16,64] [--prompt 128]
 *   [--gen 128] [--threads N] [--backend cpu] [--batch-tokens N]
 *   [--block-size N] [--kv-memory BYTES] [--json]
 * argv is shifted past "bench"; argv[0] may be the subcommand name itself.
 * Returns a process exit code: 0 ok, 1 runtime error, 2 bad command line. */
int sw_bench_engine_main(int argc, char **argv);

#endif
