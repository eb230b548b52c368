/* bench_serve.h — spillway-bench serve: load-test an OpenAI-compatible server
 * (spillway-server, llama-server, vLLM) with concurrent streaming requests. */
#ifndef SW_BENCH_SERVE_H
#define SW_BENCH_SERVE_H

/* spillway-bench serve --url URL [--concurrency 1,8,64] [--requests N]
 *                      [--prompt-tokens P] [--max-tokens M] [--model NAME]
 *                      [--api-key KEY] [--json]
 * argv[0] is "serve". Returns 0 when every request succeeded, 1 when some
 * failed, 2 for a bad command line. */
int sw_bench_serve_main(int argc, char **argv);

#endif
