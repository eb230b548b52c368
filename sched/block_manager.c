/* block_manager.c — reference counts on KV blocks and the prefix cache (see
 * block_manager.h). Cached blocks stay allocated in the KV free list's eyes;
 * this file decides when they really go back. All arrays are indexed by block
 * id, so every operation is O(1) except hashing and the invariant check. */
#include "block_manager.h"

#include <stdlib.h>
#include <string.h>

struct sw_block_manager {
    sw_kv_cache *kv;      /* borrowed */
    bool prefix_cache;
    int32_t n_blocks;
    int32_t block_size;
    int32_t *refcnt;      /* [n_blocks] */
    int32_t n_used;       /* blocks with refcnt > 0 */
    /* Prefix cache: a block is "registered" when it is reachable by hash. */
    bool *registered;     /* [n_blocks] */
    uint64_t *hash;       /* [n_blocks] chain hash of a registered block */
    int32_t *tokens;      /* [n_blocks * block_size] ids of a registered block */
    int32_t *bucket;      /* [n_buckets] first block of the chain, -1 none */
    int32_t *hnext;       /* [n_blocks] next block in the bucket chain */
    uint32_t bucket_mask; /* n_buckets - 1 (a power of two) */
    /* Evictable = registered with refcnt 0, in release order (head = oldest). */
    int32_t *lru_prev, *lru_next;
    int32_t lru_head, lru_tail;
    int32_t n_evictable;
    uint64_t hits, misses;
};

sw_status sw_bm_create(sw_kv_cache *kv, bool prefix_cache, sw_block_manager **out, sw_err *err) {
    *out = NULL;
    if (!kv) return sw_err_set(err, SW_E_INVALID_ARG, "sw_bm_create: NULL KV cache");
    sw_block_manager *bm = calloc(1, sizeof *bm);
    if (!bm) return sw_err_set(err, SW_E_NOMEM, "out of memory for the block manager");
    bm->kv = kv;
    bm->prefix_cache = prefix_cache;
    bm->n_blocks = sw_kv_n_blocks(kv);
    bm->block_size = sw_kv_block_size(kv);
    size_t nb = (size_t)bm->n_blocks;
    /* Twice as many buckets as blocks keeps chains short; the table never
     * holds more entries than there are blocks. */
    uint32_t n_buckets = 1;
    while (n_buckets < 2 * nb && n_buckets < (1u << 30)) n_buckets <<= 1;
    bm->bucket_mask = n_buckets - 1;
    bm->refcnt = calloc(nb, sizeof *bm->refcnt);
    bm->registered = calloc(nb, sizeof *bm->registered);
    bm->hash = calloc(nb, sizeof *bm->hash);
    bm->hnext = malloc(nb * sizeof *bm->hnext);
    bm->lru_prev = malloc(nb * sizeof *bm->lru_prev);
    bm->lru_next = malloc(nb * sizeof *bm->lru_next);
    bm->bucket = malloc((size_t)n_buckets * sizeof *bm->bucket);
    if (prefix_cache) bm->tokens = malloc(nb * (size_t)bm->block_size * sizeof *bm->tokens);
    if (!bm->refcnt || !bm->registered || !bm->hash || !bm->hnext || !bm->lru_prev ||
        !bm->lru_next || !bm->bucket || (prefix_cache && !bm->tokens)) {
        sw_bm_free(bm);
        return sw_err_set(err, SW_E_NOMEM, "out of memory for the block manager (%d blocks)",
                          bm->n_blocks);
    }
    for (size_t i = 0; i < nb; i++) bm->hnext[i] = bm->lru_prev[i] = bm->lru_next[i] = -1;
    for (uint32_t i = 0; i < n_buckets; i++) bm->bucket[i] = -1;
    bm->lru_head = bm->lru_tail = -1;
    *out = bm;
    return SW_OK;
}

void sw_bm_free(sw_block_manager *bm) {
    if (!bm) return;
    if (bm->refcnt) {
        if (bm->n_used > 0)
            sw_log(SW_LOG_WARN, "block manager: %d blocks still referenced at free", bm->n_used);
        for (int32_t b = 0; b < bm->n_blocks; b++)
            if (bm->refcnt[b] > 0 || (bm->registered && bm->registered[b]))
                sw_kv_free_block(bm->kv, b);
    }
    free(bm->refcnt);
    free(bm->registered);
    free(bm->hash);
    free(bm->tokens);
    free(bm->bucket);
    free(bm->hnext);
    free(bm->lru_prev);
    free(bm->lru_next);
    free(bm);
}

/* ---- LRU of evictable blocks ---- */

static void lru_push_tail(sw_block_manager *bm, int32_t b) {
    bm->lru_prev[b] = bm->lru_tail;
    bm->lru_next[b] = -1;
    if (bm->lru_tail >= 0) bm->lru_next[bm->lru_tail] = b;
    else bm->lru_head = b;
    bm->lru_tail = b;
    bm->n_evictable++;
}

static void lru_remove(sw_block_manager *bm, int32_t b) {
    int32_t p = bm->lru_prev[b], n = bm->lru_next[b];
    if (p >= 0) bm->lru_next[p] = n;
    else bm->lru_head = n;
    if (n >= 0) bm->lru_prev[n] = p;
    else bm->lru_tail = p;
    bm->lru_prev[b] = bm->lru_next[b] = -1;
    bm->n_evictable--;
}

/* ---- hash table ---- */

static uint32_t bucket_of(const sw_block_manager *bm, uint64_t h) {
    return (uint32_t)(h ^ (h >> 32)) & bm->bucket_mask;
}

static int32_t table_find(const sw_block_manager *bm, uint64_t h, const int32_t *tokens) {
    size_t bs = (size_t)bm->block_size;
    for (int32_t b = bm->bucket[bucket_of(bm, h)]; b >= 0; b = bm->hnext[b])
        if (bm->hash[b] == h && !memcmp(bm->tokens + (size_t)b * bs, tokens, bs * sizeof *tokens))
            return b;
    return -1;
}

static void table_remove(sw_block_manager *bm, int32_t b) {
    int32_t *link = &bm->bucket[bucket_of(bm, bm->hash[b])];
    while (*link >= 0 && *link != b) link = &bm->hnext[*link];
    if (*link == b) *link = bm->hnext[b];
    bm->hnext[b] = -1;
    bm->registered[b] = false;
}

uint64_t sw_bm_hash_block(uint64_t parent, const int32_t *tokens, int32_t n) {
    /* FNV-1a over the ids seeded with the parent's hash, then a splitmix64
     * finalizer so that nearby prefixes land in unrelated buckets. */
    uint64_t h = parent ^ 0xcbf29ce484222325ull;
    for (int32_t i = 0; i < n; i++) {
        h ^= (uint32_t)tokens[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* ---- blocks ---- */

int32_t sw_bm_alloc(sw_block_manager *bm) {
    int32_t b = sw_kv_alloc_block(bm->kv);
    if (b < 0) {
        b = bm->lru_head;
        if (b < 0) return -1;
        lru_remove(bm, b);
        table_remove(bm, b);
    }
    bm->refcnt[b] = 1;
    bm->n_used++;
    return b;
}

void sw_bm_release(sw_block_manager *bm, int32_t b) {
    if (b < 0 || b >= bm->n_blocks || bm->refcnt[b] <= 0) {
        sw_log(SW_LOG_WARN, "block manager: ignoring release of block %d (not referenced)", b);
        return;
    }
    if (--bm->refcnt[b] > 0) return;
    bm->n_used--;
    if (bm->registered[b]) lru_push_tail(bm, b);
    else sw_kv_free_block(bm->kv, b);
}

void sw_bm_release_table(sw_block_manager *bm, const int32_t *blocks, int32_t n) {
    for (int32_t i = n - 1; i >= 0; i--) sw_bm_release(bm, blocks[i]);
}

int32_t sw_bm_n_available(const sw_block_manager *bm) {
    return sw_kv_n_free(bm->kv) + bm->n_evictable;
}
int32_t sw_bm_n_used(const sw_block_manager *bm) { return bm->n_used; }
int32_t sw_bm_n_evictable(const sw_block_manager *bm) { return bm->n_evictable; }
int32_t sw_bm_block_size(const sw_block_manager *bm) { return bm->block_size; }

/* ---- prefix cache ---- */

int32_t sw_bm_match_next(sw_block_manager *bm, uint64_t parent, const int32_t *tokens,
                         uint64_t *hash) {
    if (!bm->prefix_cache) return -1;
    uint64_t h = sw_bm_hash_block(parent, tokens, bm->block_size);
    int32_t b = table_find(bm, h, tokens);
    if (b < 0) return -1;
    if (bm->refcnt[b] == 0) {
        lru_remove(bm, b);
        bm->n_used++;
    }
    bm->refcnt[b]++;
    *hash = h;
    return b;
}

int32_t sw_bm_match_prefix(sw_block_manager *bm, const int32_t *tokens, int32_t n_blocks,
                           int32_t *blocks, uint64_t *hashes) {
    int32_t bs = bm->block_size, matched = 0;
    for (; matched < n_blocks; matched++) {
        uint64_t parent = matched ? hashes[matched - 1] : SW_BM_HASH_ROOT;
        int32_t b = sw_bm_match_next(bm, parent, tokens + (size_t)matched * (size_t)bs,
                                     &hashes[matched]);
        if (b < 0) break;
        blocks[matched] = b;
    }
    return matched;
}

void sw_bm_register(sw_block_manager *bm, int32_t b, uint64_t h, const int32_t *tokens) {
    if (!bm->prefix_cache || b < 0 || b >= bm->n_blocks || bm->registered[b]) return;
    if (bm->refcnt[b] <= 0) {
        sw_log(SW_LOG_WARN, "block manager: not registering unreferenced block %d", b);
        return;
    }
    /* Two sequences that prefilled the same prefix side by side each hold a
     * copy; the first one registered wins and the other stays private. */
    if (table_find(bm, h, tokens) >= 0) return;
    size_t bs = (size_t)bm->block_size;
    memcpy(bm->tokens + (size_t)b * bs, tokens, bs * sizeof *tokens);
    bm->hash[b] = h;
    uint32_t k = bucket_of(bm, h);
    bm->hnext[b] = bm->bucket[k];
    bm->bucket[k] = b;
    bm->registered[b] = true;
}

void sw_bm_note_lookup(sw_block_manager *bm, int32_t matched, int32_t n_blocks) {
    bm->hits += (uint64_t)SW_MAX(matched, 0);
    bm->misses += (uint64_t)SW_MAX(n_blocks - matched, 0);
}

void sw_bm_counters(const sw_block_manager *bm, uint64_t *hits, uint64_t *misses) {
    if (hits) *hits = bm->hits;
    if (misses) *misses = bm->misses;
}

sw_status sw_bm_check(const sw_block_manager *bm, sw_err *err) {
    int32_t used = 0, evictable = 0, registered = 0;
    for (int32_t b = 0; b < bm->n_blocks; b++) {
        if (bm->refcnt[b] < 0)
            return sw_err_set(err, SW_E_INTERNAL, "block %d: refcount %d", b, bm->refcnt[b]);
        if (bm->refcnt[b] > 0) used++;
        if (bm->registered[b]) registered++;
        if (bm->registered[b] && bm->refcnt[b] == 0) evictable++;
        if (!bm->registered[b] && (bm->lru_prev[b] >= 0 || bm->lru_next[b] >= 0))
            return sw_err_set(err, SW_E_INTERNAL, "block %d: in the LRU but not registered", b);
    }
    int32_t in_lru = 0;
    for (int32_t b = bm->lru_head; b >= 0; b = bm->lru_next[b]) {
        if (bm->refcnt[b] != 0 || !bm->registered[b])
            return sw_err_set(err, SW_E_INTERNAL, "LRU holds block %d (refcount %d, registered %d)",
                              b, bm->refcnt[b], (int)bm->registered[b]);
        if (++in_lru > bm->n_blocks)
            return sw_err_set(err, SW_E_INTERNAL, "LRU list has a cycle");
    }
    int32_t in_table = 0;
    for (uint32_t k = 0; k <= bm->bucket_mask; k++)
        for (int32_t b = bm->bucket[k]; b >= 0; b = bm->hnext[b]) {
            if (!bm->registered[b] || bucket_of(bm, bm->hash[b]) != k)
                return sw_err_set(err, SW_E_INTERNAL, "hash table: block %d misplaced", b);
            if (++in_table > bm->n_blocks)
                return sw_err_set(err, SW_E_INTERNAL, "hash table has a cycle");
        }
    if (used != bm->n_used || evictable != bm->n_evictable || evictable != in_lru ||
        registered != in_table)
        return sw_err_set(err, SW_E_INTERNAL,
                          "counts: used %d/%d, evictable %d/%d/%d, registered %d/%d", used,
                          bm->n_used, evictable, bm->n_evictable, in_lru, registered, in_table);
    /* Every block is exactly one of: free in the KV cache, referenced, evictable. */
    if (sw_kv_n_free(bm->kv) + used + evictable != bm->n_blocks)
        return sw_err_set(err, SW_E_INTERNAL, "free %d + used %d + evictable %d != %d blocks",
                          sw_kv_n_free(bm->kv), used, evictable, bm->n_blocks);
    return SW_OK;
}
