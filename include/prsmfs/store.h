/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block store: get(cid) = a recently used block from memory, else the on-disk cache,
 * else a verified fetch through the node pool, which is then written to the cache. Readers
 * above see only whole, verified blocks. Background workers fetch ahead (readahead, directory
 * listings) into the same places, so a later get finds the block without waiting.
 *
 * A full or failing cache disk is not an error for readers: the block is served from memory
 * and counted (put errors). The store knows nothing about paths or files.
 *
 * Thread-safety: every function may be called from any thread.
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/cache.h"
#include "prsmfs/cid.h"
#include "prsmfs/net.h"

struct store_config {
        struct cache *cache;  /* borrowed; may be NULL: no disk cache */
        struct net_pool *net; /* borrowed; may be NULL: misses are -ENOENT */
        unsigned workers;     /* background fetchers; 0 = no prefetching */
        uint64_t mem_bytes;   /* cap of the in-memory block LRU */
        size_t max_queue;     /* prefetch requests waiting; more are dropped */
};

struct store_stats {
        uint64_t mem_hits, disk_hits, fetches, fetch_errors;
        uint64_t prefetches, prefetch_drops, cache_puts, cache_put_errors; /* puts: blocks the
                                                                        store wrote to the cache */
        uint64_t mem_bytes, mem_blocks;
        uint64_t prefetch_hits; /* reads served by a block a prefetch worker fetched */
};

struct store;

_wur_ int store_new(const struct store_config *cfg, struct store **ret);
/* Stops the workers (their fetches are abandoned: call net_pool_shutdown first to make that
 * quick) and frees. NULL-safe. */
void store_free(struct store *s);

/*
 * The verified block for cid (a new reference; net_block_unref it). Identity CIDs are
 * answered from the CID itself. -ENOENT when there is no pool and the block is not local,
 * otherwise net_block_get's errors (-ETIMEDOUT, -EHOSTUNREACH, -ECANCELED).
 */
_wur_ int store_get(struct store *s, const struct cid *cid, uint64_t deadline_ns,
                    struct net_block **ret);
/*
 * A block to read from without loading it: in memory (block, a reference) or in the on-disk
 * cache (fd, opened for the caller, who closes it; size its length), else fetched like
 * store_get (block). Exactly one of block and fd >= 0 is set on success.
 */
struct store_ref {
        struct net_block *block;
        int fd;
        uint64_t size;
};
_wur_ int store_get_ref(struct store *s, const struct cid *cid, uint64_t deadline_ns,
                        struct store_ref *ret);
void store_ref_done(struct store_ref *ref);
/* store_get_ref without the network: -EWOULDBLOCK when the block is neither in memory nor on
 * disk (the caller fetches it where waiting is allowed). */
_wur_ int store_get_ref_local(struct store *s, const struct cid *cid, struct store_ref *ret);

/* The same without the network: -ENOENT unless the block is in memory or on disk. */
_wur_ int store_peek(struct store *s, const struct cid *cid, struct net_block **ret);
/*
 * Queues background fetches of the blocks not already in memory (in order; each fetch gives
 * up at deadline_ns); a block already on disk is only read ahead into the page cache. Returns how
 * many were queued; the rest were present, already queued, or dropped because the queue is full.
 */
size_t store_prefetch(struct store *s, const struct cid *cids, size_t n, uint64_t deadline_ns);

/* Whether the block is on disk (or, without a disk cache, in memory): what prsmctl prefetch
 * --check counts as cached. Never the network. */
bool store_is_cached(struct store *s, const struct cid *cid);
/* Drops the block from memory and from the disk cache: 1 when it was on disk, 0 when not,
 * -errno. A reader holding it keeps its reference or fd. */
_wur_ int store_evict(struct store *s, const struct cid *cid);

void store_get_stats(struct store *s, struct store_stats *ret);
