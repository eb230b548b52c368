/* fuzz_gguf.c — libFuzzer target for the GGUF reader: open the input from memory
 * and touch everything an accepted file exposes (every KV through every getter,
 * array elements up to a bound, every tensor's first and last data byte), so that
 * a validation gap shows up as an ASan/UBSan report; then run the loaders that
 * read an accepted file (model config + tensor checks, tokenizer with a short
 * round trip, chat template detection). Seeds: corpus/gguf/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <stdlib.h>

#include "chat.h"
#include "gguf.h"
#include "model_config.h"
#include "tokenizer.h"

#define MAX_ELEMS 256 /* per array: enough to cover every code path, keeps runs fast */

static volatile uint64_t g_sink;

static void touch(const void *p, size_t n) {
    if (!n) return;
    const volatile uint8_t *b = p;
    g_sink += b[0] + b[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sw_gguf *g = NULL;
    sw_err err;
    if (sw_gguf_open_memory(data, size, "fuzz", &g, &err) != SW_OK) {
        g_sink += strlen(err.msg);
        return 0;
    }
    g_sink += sw_gguf_version(g) + sw_gguf_alignment(g) + sw_gguf_data_offset(g) +
              sw_gguf_file_size(g) + strlen(sw_gguf_path(g));
    for (int64_t i = -1; i <= sw_gguf_n_kv(g); i++) { /* out-of-range indices too */
        int64_t iv;
        uint64_t uv;
        double dv;
        bool bv;
        const char *s;
        size_t len;
        const void *raw;
        uint64_t n;
        const char *key = sw_gguf_kv_key(g, i);
        if (key) g_sink += (uint64_t)sw_gguf_find_key(g, key);
        g_sink += (uint64_t)sw_gguf_kv_type(g, i) + (uint64_t)sw_gguf_kv_arr_type(g, i);
        if (sw_gguf_kv_int(g, i, &iv, &err) == SW_OK) g_sink += (uint64_t)iv;
        if (sw_gguf_kv_uint(g, i, &uv, &err) == SW_OK) g_sink += uv;
        if (sw_gguf_kv_float(g, i, &dv, &err) == SW_OK) g_sink += (uint64_t)(dv == dv);
        if (sw_gguf_kv_bool(g, i, &bv, &err) == SW_OK) g_sink += bv;
        if (sw_gguf_kv_str(g, i, &s, &len, &err) == SW_OK) touch(s, len + 1);
        if (sw_gguf_kv_arr_data(g, i, &raw, &n, &err) == SW_OK && n) touch(raw, 1);
        n = sw_gguf_kv_arr_n(g, i);
        for (uint64_t j = 0; j < n && j < MAX_ELEMS; j++) {
            if (sw_gguf_arr_int(g, i, j, &iv, &err) == SW_OK) g_sink += (uint64_t)iv;
            if (sw_gguf_arr_float(g, i, j, &dv, &err) == SW_OK) g_sink += (uint64_t)(dv == dv);
            if (sw_gguf_arr_str(g, i, j, &s, &len, &err) == SW_OK) touch(s, len);
        }
        if (n) { /* the last element, past the bound */
            if (sw_gguf_arr_str(g, i, n - 1, &s, &len, &err) == SW_OK) touch(s, len);
            if (sw_gguf_arr_int(g, i, n - 1, &iv, &err) == SW_OK) g_sink += (uint64_t)iv;
            if (sw_gguf_arr_float(g, i, n - 1, &dv, &err) == SW_OK) g_sink += (uint64_t)(dv == dv);
        }
        (void)sw_gguf_arr_int(g, i, n, &iv, &err); /* one past the end */
        if (key) {
            (void)sw_gguf_get_int(g, key, &iv, &err);
            (void)sw_gguf_get_float(g, key, &dv, &err);
            (void)sw_gguf_get_bool(g, key, &bv, &err);
            (void)sw_gguf_get_str(g, key, &s, &err);
        }
    }
    for (int64_t i = -1; i <= sw_gguf_n_tensors(g); i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        if (!t) continue;
        g_sink += (uint64_t)(sw_gguf_find_tensor(g, t->name) == t);
        g_sink += t->n_dims + (uint64_t)t->ne[0] + (uint64_t)t->type + t->offset;
        touch(t->data, (size_t)t->nbytes);
    }
    /* the loaders that read an accepted file's metadata */
    sw_model_config cfg;
    if (sw_model_config_load(g, &cfg, &err) == SW_OK) {
        g_sink += (uint64_t)cfg.n_layer + (uint64_t)cfg.n_ctx_train;
        if (sw_model_config_check_tensors(g, &cfg, &err) != SW_OK) g_sink += strlen(err.msg);
    } else {
        g_sink += strlen(err.msg);
    }
    sw_tokenizer *tok = NULL;
    if (sw_tokenizer_create(g, &tok, &err) == SW_OK) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        static const char text[] = "Hello <s> world \xc3\xa9 123";
        if (sw_tokenize(tok, text, sizeof text - 1, true, true, &ids, &n_ids, &err) == SW_OK) {
            char *out = NULL;
            if (sw_detokenize(tok, ids, n_ids, true, &out, &err) == SW_OK) g_sink += strlen(out);
            free(out);
            free(ids);
        }
        sw_tokenizer_free(tok);
    }
    /* a chat template in the file is parsed (and rendered, bounded) */
    sw_chat_template *t = NULL;
    if (sw_chat_template_gguf(g, NULL, &t, &err) == SW_OK) {
        sw_jinja_limits lim = {.max_steps = 100000, .max_memory = 8u << 20, .max_output = 1u << 20};
        static const char msgs[] = "[{\"role\": \"user\", \"content\": \"hi\"}]";
        sw_chat_input in = {.messages_json = msgs, .messages_json_len = sizeof msgs - 1,
                            .add_generation_prompt = true, .limits = &lim};
        char *out = NULL;
        if (sw_chat_render_template(t, &in, &out, NULL, &err) == SW_OK) g_sink += strlen(out);
        free(out);
        sw_chat_template_free(t);
    }
    sw_gguf_free(g);
    return 0;
}
