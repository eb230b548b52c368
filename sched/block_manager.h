/* block_manager.h — reference-counted KV blocks over the cache's free list,
 * and the prefix cache: full blocks keyed by a chain hash of the whole token
 * prefix up to and including the block, shared between sequences, kept after
 * their last user lets go and evicted least-recently-released first when the
 * free list runs dry.
 *
 * Not thread-safe: the engine calls it under its own lock. Only full blocks
 * are ever registered, and a registered block is never written again (a
 * sequence's writes go to positions past its registered blocks), so sharing
 * needs no copy-on-write. */
#ifndef SW_BLOCK_MANAGER_H
#define SW_BLOCK_MANAGER_H

#include "model.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_block_manager sw_block_manager;

/* kv is borrowed and must outlive the manager. prefix_cache false: released
 * blocks go straight back to the free list and lookups always miss. */
sw_status sw_bm_create(sw_kv_cache *kv, bool prefix_cache, sw_block_manager **out, sw_err *err);
/* Returns the cached (unreferenced) blocks to the KV free list. Blocks still
 * referenced are the caller's bug; they are returned too, with a warning. */
void sw_bm_free(sw_block_manager *bm);

/* A fresh block with reference count 1, evicting the least recently released
 * cached block when the free list is empty; -1 when nothing is left. */
int32_t sw_bm_alloc(sw_block_manager *bm);
/* Drop one reference; at zero a registered block becomes evictable (most
 * recent), an unregistered one goes back to the free list. */
void sw_bm_release(sw_block_manager *bm, int32_t block);
/* Release a sequence's block table, last block first, so that the tail of a
 * prefix is evicted before its head (a head without its tail is still useful,
 * a tail without its head never is). */
void sw_bm_release_table(sw_block_manager *bm, const int32_t *blocks, int32_t n);

/* Blocks an allocation could get right now: free + evictable. */
int32_t sw_bm_n_available(const sw_block_manager *bm);
int32_t sw_bm_n_used(const sw_block_manager *bm);      /* referenced blocks */
int32_t sw_bm_n_evictable(const sw_block_manager *bm); /* cached, unreferenced */
int32_t sw_bm_block_size(const sw_block_manager *bm);

/* Chain hash of one full block: parent is the previous block's hash (use
 * SW_BM_HASH_ROOT for block 0); tokens are the block's block_size ids. */
#define SW_BM_HASH_ROOT 0x9e3779b97f4a7c15ull
uint64_t sw_bm_hash_block(uint64_t parent, const int32_t *tokens, int32_t n);

/* Walk the prefix cache along tokens[0 .. n_blocks * block_size): for each
 * block in turn, look up its chain hash (checking the stored tokens, so a hash
 * collision cannot hand out a wrong block) and stop at the first miss. Matched
 * blocks get one more reference each and are written to blocks[] with their
 * hashes to hashes[]. Returns the number matched. Counts nothing: a caller
 * that may give the blocks back and retry later counts with
 * sw_bm_note_lookup once the lookup is used. */
int32_t sw_bm_match_prefix(sw_block_manager *bm, const int32_t *tokens, int32_t n_blocks,
                           int32_t *blocks, uint64_t *hashes);
/* One step of sw_bm_match_prefix: the block holding the prefix whose chain
 * hash is parent followed by the block_size ids at tokens. On a hit it gets
 * one more reference, *hash its chain hash, and it is returned; -1 on a miss. */
int32_t sw_bm_match_next(sw_block_manager *bm, uint64_t parent, const int32_t *tokens,
                         uint64_t *hash);
/* Record that block (referenced, full, its KV computed) holds the prefix with
 * this chain hash. No-op when the prefix cache is off, the block is already
 * registered, or another block already holds this hash. */
void sw_bm_register(sw_block_manager *bm, int32_t block, uint64_t hash, const int32_t *tokens);

/* Add matched hits and n_blocks - matched misses to the counters. */
void sw_bm_note_lookup(sw_block_manager *bm, int32_t matched, int32_t n_blocks);
void sw_bm_counters(const sw_block_manager *bm, uint64_t *hits, uint64_t *misses);

/* Check every internal invariant (reference counts vs. the LRU list, hash
 * chains, counts vs. the KV free list). For tests. */
sw_status sw_bm_check(const sw_block_manager *bm, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
