/* kv_cache.c — the paged KV cache: per layer one K and one V tensor of
 * [head_dim, n_head_kv, block_size, n_blocks] in a device buffer, and a free
 * list of block indices shared by all layers (block b of every layer belongs
 * to the same sequence). Which blocks a sequence owns is the caller's business
 * (the scheduler's block tables); this file only hands blocks out. */
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

#include "quant.h"

struct sw_kv_cache {
    const sw_model *model; /* borrowed: the model the cache was sized for */
    sw_backend *be;        /* borrowed */
    int32_t block_size;
    int32_t n_blocks;
    sw_type type;
    uint64_t bytes;        /* K + V over all layers */
    int64_t n_layer;
    sw_buffer **bufs;      /* owned: [n_layer], K then V of that layer */
    sw_tensor *k;          /* [n_layer] */
    sw_tensor *v;          /* [n_layer] */
    int32_t *free_list;    /* stack of free block ids, top at n_free - 1 */
    int32_t n_free;
    bool *in_use;          /* [n_blocks], catches double frees */
};

/* Zero a fresh cache: attention never reads unwritten slots, but a kernel that
 * loads a whole block and masks afterwards must not meet NaN garbage. */
static sw_status zero_buffer(sw_backend *be, sw_buffer *buf, size_t size, sw_err *err) {
    enum { CHUNK = 1 << 20 };
    void *host = sw_be_host_ptr(be, buf);
    if (host) {
        memset(host, 0, size);
        return SW_OK;
    }
    void *zeros = calloc(1, CHUNK);
    if (!zeros) return sw_err_set(err, SW_E_NOMEM, "out of memory clearing the KV cache");
    sw_status st = SW_OK;
    for (size_t off = 0; off < size && st == SW_OK; off += CHUNK)
        st = sw_be_upload(be, buf, off, zeros, SW_MIN((size_t)CHUNK, size - off), err);
    free(zeros);
    return st;
}

sw_status sw_kv_cache_create(sw_model *m, const sw_kv_params *p, sw_kv_cache **out, sw_err *err) {
    *out = NULL;
    if (!m || !p) return sw_err_set(err, SW_E_INVALID_ARG, "sw_kv_cache_create: NULL argument");
    const sw_model_config *c = &m->cfg;
    sw_type type = p->type;
    if (type != SW_TYPE_F16 && type != SW_TYPE_F32)
        return sw_err_set(err, SW_E_UNSUPPORTED, "KV cache type %s: only f16 and f32 are supported",
                          sw_type_name(type));
    int32_t bs = p->block_size > 0 ? p->block_size : 16;
    size_t elt = type == SW_TYPE_F16 ? 2 : 4;
    /* Bytes of one block of K (or V) in one layer. */
    uint64_t block_layer = (uint64_t)c->head_dim * (uint64_t)c->n_head_kv * (uint64_t)bs * elt;
    uint64_t per_block = 2 * (uint64_t)c->n_layer * block_layer;
    int64_t n_blocks = p->n_blocks;
    if (n_blocks <= 0) {
        if (p->max_bytes == 0)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "KV cache: give n_blocks or max_bytes (both are 0)");
        n_blocks = (int64_t)(p->max_bytes / per_block);
        if (n_blocks < 1)
            return sw_err_set(err, SW_E_RANGE,
                              "KV cache: max_bytes %llu is less than one block (%llu bytes)",
                              (unsigned long long)p->max_bytes, (unsigned long long)per_block);
    }
    uint64_t layer_bytes;
    if (n_blocks > INT32_MAX || !sw_mul_u64(block_layer, (uint64_t)n_blocks, &layer_bytes) ||
        layer_bytes > SIZE_MAX / 2)
        return sw_err_set(err, SW_E_RANGE, "KV cache: %lld blocks of %d tokens is too large",
                          (long long)n_blocks, bs);

    sw_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return sw_err_set(err, SW_E_NOMEM, "out of memory for the KV cache");
    kv->model = m;
    kv->be = m->be;
    kv->block_size = bs;
    kv->n_blocks = (int32_t)n_blocks;
    kv->type = type;
    kv->n_layer = c->n_layer;
    kv->bytes = per_block * (uint64_t)n_blocks;
    kv->bufs = calloc((size_t)c->n_layer, sizeof *kv->bufs);
    kv->k = calloc((size_t)c->n_layer, sizeof *kv->k);
    kv->v = calloc((size_t)c->n_layer, sizeof *kv->v);
    kv->free_list = malloc((size_t)n_blocks * sizeof *kv->free_list);
    kv->in_use = calloc((size_t)n_blocks, sizeof *kv->in_use);
    sw_status st = SW_OK;
    if (!kv->bufs || !kv->k || !kv->v || !kv->free_list || !kv->in_use) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory for the KV cache");
        goto fail;
    }
    /* V sits after K in the same buffer, at an aligned offset. */
    size_t v_off = sw_align_up((size_t)layer_bytes, SW_TENSOR_ALIGN);
    for (int64_t l = 0; l < c->n_layer; l++) {
        st = sw_be_buf_alloc(m->be, v_off + (size_t)layer_bytes, SW_BUF_KV, &kv->bufs[l], err);
        if (st != SW_OK) {
            sw_err_wrap(err, st, "KV cache layer %lld (%zu bytes)", (long long)l,
                        v_off + (size_t)layer_bytes);
            goto fail;
        }
        if ((st = zero_buffer(m->be, kv->bufs[l], v_off + (size_t)layer_bytes, err)) != SW_OK)
            goto fail;
        kv->k[l] = sw_tensor_make(kv->bufs[l], 0, type, c->head_dim, c->n_head_kv, bs, n_blocks);
        kv->v[l] = sw_tensor_make(kv->bufs[l], v_off, type, c->head_dim, c->n_head_kv, bs, n_blocks);
    }
    /* Hand out low block ids first (pop from the top). */
    for (int32_t i = 0; i < kv->n_blocks; i++) kv->free_list[i] = kv->n_blocks - 1 - i;
    kv->n_free = kv->n_blocks;
    sw_log(SW_LOG_INFO, "KV cache: %d blocks of %d tokens = %lld tokens, %s, %.1f MiB",
           kv->n_blocks, bs, (long long)kv->n_blocks * bs, sw_type_name(type),
           (double)kv->bytes / (1 << 20));
    *out = kv;
    return SW_OK;
fail:
    sw_kv_cache_free(kv);
    return st;
}

void sw_kv_cache_free(sw_kv_cache *kv) {
    if (!kv) return;
    for (int64_t l = 0; kv->bufs && l < kv->n_layer; l++)
        if (kv->bufs[l]) sw_be_buf_free(kv->be, kv->bufs[l]);
    free(kv->bufs);
    free(kv->k);
    free(kv->v);
    free(kv->free_list);
    free(kv->in_use);
    free(kv);
}

int32_t sw_kv_block_size(const sw_kv_cache *kv) { return kv->block_size; }
int32_t sw_kv_n_blocks(const sw_kv_cache *kv) { return kv->n_blocks; }
int32_t sw_kv_n_free(const sw_kv_cache *kv) { return kv->n_free; }
uint64_t sw_kv_bytes(const sw_kv_cache *kv) { return kv->bytes; }

int32_t sw_kv_alloc_block(sw_kv_cache *kv) {
    if (kv->n_free == 0) return -1;
    int32_t b = kv->free_list[--kv->n_free];
    kv->in_use[b] = true;
    return b;
}

void sw_kv_free_block(sw_kv_cache *kv, int32_t block) {
    if (block < 0 || block >= kv->n_blocks || !kv->in_use[block]) {
        /* A caller bug, but not one worth corrupting the free list over. */
        sw_log(SW_LOG_WARN, "KV cache: ignoring free of block %d (%s)", block,
               block < 0 || block >= kv->n_blocks ? "out of range" : "not allocated");
        return;
    }
    kv->in_use[block] = false;
    kv->free_list[kv->n_free++] = block;
}

/* One block of one layer's K or V is contiguous (the block index is the
 * outermost dimension): a host copy where the buffer is host memory, a round
 * trip through host memory otherwise. */
static sw_status copy_block_bytes(sw_kv_cache *kv, const sw_tensor *t, int32_t src, int32_t dst,
                                  void *tmp, sw_err *err) {
    size_t n = t->nb[3], so = t->offset + (size_t)src * n, d = t->offset + (size_t)dst * n;
    uint8_t *host = sw_be_host_ptr(kv->be, t->buf);
    if (host) {
        memcpy(host + d, host + so, n);
        return SW_OK;
    }
    sw_status st = sw_be_download(kv->be, t->buf, so, tmp, n, err);
    return st == SW_OK ? sw_be_upload(kv->be, t->buf, d, tmp, n, err) : st;
}

sw_status sw_kv_copy_block(sw_kv_cache *kv, int32_t src, int32_t dst, sw_err *err) {
    if (src < 0 || src >= kv->n_blocks || dst < 0 || dst >= kv->n_blocks || src == dst ||
        !kv->in_use[src] || !kv->in_use[dst])
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "KV cache: cannot copy block %d to %d (of %d; both must be allocated)",
                          src, dst, kv->n_blocks);
    void *tmp = NULL;
    if (!sw_be_host_ptr(kv->be, kv->bufs[0]) && !(tmp = malloc(kv->k[0].nb[3])))
        return sw_err_set(err, SW_E_NOMEM, "KV cache: out of memory copying a block");
    sw_status st = SW_OK;
    for (int64_t l = 0; l < kv->n_layer && st == SW_OK; l++) {
        st = copy_block_bytes(kv, &kv->k[l], src, dst, tmp, err);
        if (st == SW_OK) st = copy_block_bytes(kv, &kv->v[l], src, dst, tmp, err);
    }
    free(tmp);
    return st;
}

sw_tensor *sw_kv_layer_k(sw_kv_cache *kv, int64_t layer) { return &kv->k[layer]; }
sw_tensor *sw_kv_layer_v(sw_kv_cache *kv, int64_t layer) { return &kv->v[layer]; }
const sw_model *sw_kv_model(const sw_kv_cache *kv) { return kv->model; }
