/* bench_grammar.h — spillway-bench grammar: the cost of grammar-constrained
 * decoding (runtime/grammar.h) next to the model's own decode step. */
#ifndef SW_BENCH_GRAMMAR_H
#define SW_BENCH_GRAMMAR_H

/* spillway-bench grammar -m FILE [--schema FILE]... [--gbnf FILE]... [-n 64]
 *   [--prompt TEXT] [--threads N] [--reps 3] [--json]
 * Returns a process exit code: 0 ok, 1 runtime error, 2 bad command line. */
int sw_bench_grammar_main(int argc, char **argv);

#endif
