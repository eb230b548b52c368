/* spillway-bench — dispatches to a subcommand; each one lives in its own file
 * and gets argv shifted past the program name (argv[0] is the subcommand). */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_engine.h"
#include "bench_grammar.h"
#include "bench_route.h"
#include "bench_serve.h"

typedef struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *help;
} subcommand;

static const subcommand k_subcommands[] = {
    {"kernels", sw_bench_kernels_main, "per-op microbenchmarks (GB/s, TFLOP/s vs. peak)"},
    {"model", sw_bench_model_main, "prompt processing (pp) and generation (tg) tok/s of a GGUF"},
    {"engine", sw_bench_engine_main, "continuous-batching engine throughput and latency"},
    {"serve", sw_bench_serve_main, "load test of an OpenAI-compatible server"},
    {"route", sw_bench_route_main, "latency of the routing decision"},
    {"grammar", sw_bench_grammar_main, "grammar-constrained decoding cost vs the decode step"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-bench <subcommand> [options]\n");
    for (size_t i = 0; i < sizeof k_subcommands / sizeof k_subcommands[0]; i++)
        fprintf(f, "  %-8s  %s\n", k_subcommands[i].name, k_subcommands[i].help);
    fprintf(f, "run 'spillway-bench <subcommand> --help' for its options\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_subcommands / sizeof k_subcommands[0]; i++)
        if (!strcmp(argv[1], k_subcommands[i].name)) return k_subcommands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "spillway-bench: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
