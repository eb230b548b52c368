/* sw_test_model.h — whole-model checks shared by the GPU backends' model tests
 * (test_vulkan_model.c, test_cuda_model.c): greedy decoding of several
 * sequences batched in one forward, stories260K and its llama.cpp reference
 * continuation, synthetic models from spillway-mkmodel, and the normalized
 * error between two logit arrays. */
#ifndef SW_TEST_MODEL_H
#define SW_TEST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* "Once upon a time" (ids 1 403 407 261 378) and llama.cpp's 48-token greedy
 * continuation on stories260K (shared/reference/stories260K-greedy.json). */
extern const int32_t sw_test_stories_prompt[5];
extern const int32_t sw_test_stories_ref[48];

/* The path of stories260K under SW_SHARED_DIR; false (printing why, for a
 * skip) when the variable is unset or the file absent. */
bool sw_test_stories_path(char *out, size_t cap);

/* Make a synthetic `--shape SHAPE --type TYPE` model named after `tag` in
 * SW_TMP_DIR; false (printing why) when spillway-mkmodel is not built. A
 * failing spillway-mkmodel fails the test. */
bool sw_test_synthetic_model(const char *tag, const char *shape, const char *type, char *path,
                             size_t cap);

/* n_vocab of the model at path (loaded on be, then freed). */
int64_t sw_test_model_vocab(sw_backend *be, const char *path);

/* Greedy decoding of S <= 8 sequences batched together on be: the first step
 * prefills them all (prompt i = prompts[i][0..lens[i])), then one token each
 * per step, n_gen tokens per sequence into out[i * n_gen + j]. first_logits
 * (optional, S * n_vocab) receives the prefill step's logits. A KV cache of 64
 * blocks of 8 tokens of kv_type; fails the test on any error. */
void sw_test_greedy_batch(sw_backend *be, const char *path, sw_type kv_type,
                          const int32_t *const *prompts, const int32_t *lens, int32_t S,
                          int32_t n_gen, int32_t *out, float *first_logits);

/* Three prompts for batched tests: lengths 1, 9 and 17 (straddling a KV block
 * of 8, one a single token), ids from a fixed generator in 3..202. */
typedef struct sw_test_prompts {
    int32_t lens[3];
    int32_t ids[3][17];
    const int32_t *p[3]; /* p[i] = ids[i] */
} sw_test_prompts;
void sw_test_prompts_make(sw_test_prompts *tp);

/* sqrt(sum (a - b)^2 / sum a^2) over n values. */
double sw_test_nerr(const float *a, const float *b, size_t n);

#endif
