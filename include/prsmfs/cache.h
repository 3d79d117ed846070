/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The on-disk block cache: verified blocks stored under their multihash, one file per block,
 * shared by every file that contains the block and safe to share between several mounts on
 * one host (files appear by atomic rename; readers never see a partial block).
 *
 * Every block is hashed against its CID before it is stored; a block read back is trusted
 * (the cache directory is the daemon's own, mode 0700).
 *
 * Size: max_bytes is honoured by evicting the least recently used blocks (atime, refreshed on
 * hits at most once a minute); blocks unused for ttl_ms are evicted too. A full disk is not
 * an error for readers: cache_block_put reports -ENOSPC and the caller serves from memory.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#pragma once

#include <sys/types.h>

#include "prsmfs/base.h"
#include "prsmfs/cid.h"

struct cache;

struct cache_stats {
        uint64_t hits, misses;
        uint64_t puts, put_errors, evictions;
        uint64_t bytes; /* estimate of what the directory holds */
};

/* dir is created if missing. enabled=false makes every lookup a miss and put a no-op. */
_wur_ int cache_open(const char *dir, uint64_t max_bytes, uint64_t ttl_ms, bool enabled,
                     struct cache **ret);
/* Starts the thread that applies the TTL while the cache is open (no-op without a TTL or
 * when disabled). Separate from cache_open because the daemon forks after opening it. */
_wur_ int cache_start_sweeper(struct cache *c);
void cache_free(struct cache *c);

/*
 * Reads len bytes at off of the cached block into buf. Returns the bytes read (short only at
 * the end of the block), -ENOENT when the block is not cached.
 */
_wur_ ssize_t cache_block_pread(struct cache *c, const struct cid *cid, void *buf, size_t len,
                                uint64_t off);
/* An fd (O_RDONLY, the caller closes it) on the cached block and its size; -ENOENT when
 * absent. The file stays readable after an eviction unlinks it. */
_wur_ int cache_block_open(struct cache *c, const struct cid *cid, uint64_t *ret_size);
/* Size of a cached block, -ENOENT when absent. */
_wur_ int64_t cache_block_size(struct cache *c, const struct cid *cid);
/*
 * Verifies data against cid and stores it. 0 on success (or already present), -EILSEQ if the
 * bytes do not match, -ENOSPC on a full disk (nothing is left behind), other -errno on I/O
 * errors. Evicts old blocks when the cache grows past its cap.
 */
_wur_ int cache_block_put(struct cache *c, const struct cid *cid, const void *data, size_t len);
/* The same for a block its caller has just verified (the node pool's blocks): no second hash. */
_wur_ int cache_block_put_verified(struct cache *c, const struct cid *cid, const void *data,
                                   size_t len);
/* Removes one cached block (prsmctl prefetch --evict): 0, -ENOENT when it was not cached. An fd
 * opened on it stays readable. */
_wur_ int cache_block_remove(struct cache *c, const struct cid *cid);
/* Evicts least recently used blocks until at most target bytes remain; returns bytes freed. */
int64_t cache_evict(struct cache *c, uint64_t target);
void cache_get_stats(struct cache *c, struct cache_stats *ret);

struct cache_verify_result {
        uint64_t checked;        /* block files looked at */
        uint64_t verified_bytes; /* bytes that hashed to their name */
        uint64_t dropped;        /* files whose bytes (or name) were wrong: removed */
        uint64_t dropped_bytes;
        uint64_t skipped;  /* hashed by a function we do not compute: left */
        uint64_t vanished; /* removed by an eviction while we looked */
};
/* Reads every cached block, hashes it against the multihash it is stored under and removes
 * the ones that do not match (a disk that flipped bits, a file written by hand). Slow: all of
 * the cache is read. -ENOMEM or -EIO (an unreadable file stops it). */
_wur_ int cache_verify(struct cache *c, struct cache_verify_result *ret);
