/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * UnixFS directories: basic (Type 1) and HAMT-sharded (Type 5), read and built exactly as
 * boxo does (ipfs.md §10): murmur3-x64-64 of the name, one byte of the hash per level
 * (fanout 256), link names "XX" + entry name for entries and "XX" for sub-shards, bitfield
 * big-endian with leading zero bytes trimmed, canonical shape independent of insertion order.
 * Kubo shards a directory when its size estimate is strictly greater than 256 KiB: the
 * 'links' estimate (Σ name + binary CID lengths) for the legacy profile, the exact size of
 * the basic directory block for unixfs-v1-2025.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

/* ---- murmur3 x64_128, seed 0, first word (spaolacci/murmur3 Sum64) ---- */

static uint64_t rotl64(uint64_t x, int r)
{
        return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53ULL;
        k ^= k >> 33;
        return k;
}

static uint64_t load64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

uint64_t unixfs_murmur3_64(const void *data, size_t len)
{
        const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
        const uint8_t *p = data, *tail;
        uint64_t h1 = 0, h2 = 0, k1 = 0, k2 = 0;
        size_t nblocks = len / 16, rem;

        for (size_t i = 0; i < nblocks; i++) {
                k1 = load64(p + i * 16);
                k2 = load64(p + i * 16 + 8);
                k1 *= c1;
                k1 = rotl64(k1, 31);
                k1 *= c2;
                h1 ^= k1;
                h1 = rotl64(h1, 27);
                h1 += h2;
                h1 = h1 * 5 + 0x52dce729;
                k2 *= c2;
                k2 = rotl64(k2, 33);
                k2 *= c1;
                h2 ^= k2;
                h2 = rotl64(h2, 31);
                h2 += h1;
                h2 = h2 * 5 + 0x38495ab5;
        }
        tail = p + nblocks * 16;
        rem = len & 15;
        k1 = k2 = 0;
        for (size_t i = rem; i > 8; i--)
                k2 ^= (uint64_t)tail[i - 1] << (8 * (i - 9));
        if (rem > 8) {
                k2 *= c2;
                k2 = rotl64(k2, 33);
                k2 *= c1;
                h2 ^= k2;
        }
        for (size_t i = MIN(rem, (size_t)8); i > 0; i--)
                k1 ^= (uint64_t)tail[i - 1] << (8 * (i - 1));
        if (rem > 0) {
                k1 *= c1;
                k1 = rotl64(k1, 31);
                k1 *= c2;
                h1 ^= k1;
        }
        h1 ^= (uint64_t)len;
        h2 ^= (uint64_t)len;
        h1 += h2;
        h2 += h1;
        h1 = fmix64(h1);
        h2 = fmix64(h2);
        h1 += h2;
        return h1;
}

/* byte `depth` of the big-endian hash: the bucket at that level (fanout 256) */
static unsigned bucket_of(uint64_t h, unsigned depth)
{
        return (unsigned)(h >> (56 - 8 * depth)) & 0xff;
}

static const char hexdig[] = "0123456789ABCDEF";

/* ---- build ---- */

void unixfs_dir_params_profile(enum unixfs_profile p, struct unixfs_dir_params *ret)
{
        *ret = (struct unixfs_dir_params){ .cid_version = p == UNIXFS_PROFILE_LEGACY ? 0 : 1,
                                           .block_estimate = p != UNIXFS_PROFILE_LEGACY };
}

struct bentry {
        struct unixfs_dirent e;
        uint64_t hash;
};

struct dbuild {
        const struct unixfs_dir_params *p;
        unixfs_emit_fn emit;
        void *userdata;
};

static int name_cmp(const void *a, const void *b)
{
        const struct unixfs_dirent *x = a, *y = b;
        size_t n = MIN(x->name_len, y->name_len);
        int r = memcmp(x->name, y->name, n);

        if (r)
                return r;
        return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int emit_node(struct dbuild *d, struct unixfs_pb_link *links, size_t n,
                     const struct unixfs_data *fs, struct cid *ret, uint64_t *ret_tsize)
{
        struct buf data, block;
        struct unixfs_pb_node node;
        uint64_t tsize = 0;
        int r;

        buf_init(&data, CID_MAX_BLOCK);
        buf_init(&block, 64u << 20); /* a basic directory may be large before sharding */
        r = unixfs_data_encode(fs, &data);
        if (r >= 0) {
                node = (struct unixfs_pb_node){
                        .links = links, .n_links = n, .data = buf_view(&data), .has_data = true
                };
                r = unixfs_pb_encode(&node, &block);
        }
        for (size_t i = 0; r >= 0 && i < n; i++)
                tsize += links[i].tsize;
        if (r >= 0)
                r = cid_compute(d->p->cid_version, CID_CODEC_DAG_PB, CID_MH_SHA2_256, block.p,
                                block.len, ret);
        if (r >= 0)
                r = d->emit(ret, block.p, block.len, d->userdata);
        if (r >= 0)
                *ret_tsize = tsize + block.len;
        buf_done(&data);
        buf_done(&block);
        return r;
}

/* meta goes to the root shard only (depth 0), as boxo's Shard.SetStat */
static int build_shard(struct dbuild *d, struct bentry *e, size_t n, unsigned depth,
                       const struct unixfs_meta *meta, struct cid *ret, uint64_t *ret_tsize)
{
        struct unixfs_data fs = { .type = UNIXFS_HAMT_SHARD,
                                  .has_data = true,
                                  .hash_type = 0x22,
                                  .has_hash_type = true,
                                  .fanout = UNIXFS_HAMT_FANOUT,
                                  .has_fanout = true };
        struct unixfs_pb_link *links;
        uint8_t bits[UNIXFS_HAMT_FANOUT / 8] = { 0 };
        char(*names)[2 + 256];
        size_t nl = 0, first;
        int r = 0;

        if (depth >= 8)
                return -E2BIG; /* sharded directory too deep: 8 hash bytes */
        links = calloc(MIN(n, (size_t)UNIXFS_HAMT_FANOUT), sizeof(*links));
        names = calloc(MIN(n, (size_t)UNIXFS_HAMT_FANOUT), sizeof(*names));
        if (!links || !names) {
                r = -ENOMEM;
                goto out;
        }
        /* entries are sorted by bucket at this depth (caller), group them */
        for (size_t i = 0; i < n && r >= 0; i = first) {
                unsigned b = bucket_of(e[i].hash, depth);
                size_t cnt;

                first = i;
                while (first < n && bucket_of(e[first].hash, depth) == b)
                        first++;
                cnt = first - i;
                bits[sizeof(bits) - 1 - b / 8] |= (uint8_t)(1u << (b % 8));
                names[nl][0] = hexdig[b >> 4];
                names[nl][1] = hexdig[b & 15];
                if (cnt == 1) {
                        if (e[i].e.name_len > 255) {
                                r = -ENAMETOOLONG;
                                break;
                        }
                        memcpy(names[nl] + 2, e[i].e.name, e[i].e.name_len);
                        links[nl] = (struct unixfs_pb_link){ .cid = e[i].e.cid,
                                                             .name = { .p = (uint8_t *)names[nl],
                                                                       .len = 2 + e[i].e.name_len },
                                                             .has_name = true,
                                                             .tsize = e[i].e.tsize,
                                                             .has_tsize = true };
                } else {
                        struct cid sub;
                        uint64_t sub_tsize;

                        r = build_shard(d, e + i, cnt, depth + 1, NULL, &sub, &sub_tsize);
                        links[nl] = (struct unixfs_pb_link){ .cid = sub,
                                                             .name = { .p = (uint8_t *)names[nl],
                                                                       .len = 2 },
                                                             .has_name = true,
                                                             .tsize = sub_tsize,
                                                             .has_tsize = true };
                }
                nl++;
        }
        if (r >= 0) {
                size_t skip = 0;

                while (skip < sizeof(bits) && bits[skip] == 0)
                        skip++;
                fs.data = (struct bytes_view){ .p = bits + skip, .len = sizeof(bits) - skip };
                unixfs_data_set_meta(&fs, meta);
                r = emit_node(d, links, nl, &fs, ret, ret_tsize);
        }
out:
        free(links);
        free(names);
        return r;
}

static int hash_cmp(const void *a, const void *b)
{
        const struct bentry *x = a, *y = b;

        /* full-hash order groups every level's buckets at once; names break ties */
        if (x->hash != y->hash)
                return x->hash < y->hash ? -1 : 1;
        return name_cmp(&x->e, &y->e);
}

int unixfs_dir_build(const struct unixfs_dir_params *p, struct unixfs_dirent *entries, size_t n,
                     unixfs_emit_fn emit, void *userdata, struct cid *ret_root, uint64_t *ret_tsize)
{
        return unixfs_dir_build_meta(p, NULL, entries, n, emit, userdata, ret_root, ret_tsize);
}

int unixfs_dir_build_meta(const struct unixfs_dir_params *p, const struct unixfs_meta *meta,
                          struct unixfs_dirent *entries, size_t n, unixfs_emit_fn emit,
                          void *userdata, struct cid *ret_root, uint64_t *ret_tsize)
{
        struct dbuild d = { .p = p, .emit = emit, .userdata = userdata };
        struct unixfs_data dirdata = { .type = UNIXFS_DIRECTORY };
        struct unixfs_pb_link *links = NULL;
        struct bentry *be = NULL;
        uint64_t estimate, data_len;
        bool shard;
        int r = 0;

        /* the basic directory's Data (0a 02 08 01 without meta): the 'block' estimate is the
         * exact size of that block, metadata included (boxo dataFieldSerializedSize) */
        unixfs_data_set_meta(&dirdata, meta);
        data_len = 2 + (dirdata.has_mode ? 1 + cid_varint_len(dirdata.mode) : 0);
        if (dirdata.has_mtime) {
                uint64_t m =
                        1 +
                        (dirdata.mtime_sec < 0 ? 10 : cid_varint_len((uint64_t)dirdata.mtime_sec));

                if (dirdata.mtime_nsec)
                        m += 5;
                data_len += 1 + cid_varint_len(m) + m;
        }
        estimate = 1 + cid_varint_len(data_len) + data_len;
        if (n)
                qsort(entries, n, sizeof(*entries), name_cmp);
        for (size_t i = 0; i < n; i++) {
                if (i && name_cmp(&entries[i - 1], &entries[i]) == 0)
                        return -EEXIST;
                if (p->block_estimate) {
                        size_t l = 1 + cid_varint_len(entries[i].cid.len) + entries[i].cid.len + 1 +
                                   cid_varint_len(entries[i].name_len) + entries[i].name_len + 1 +
                                   cid_varint_len(entries[i].tsize);

                        estimate += 1 + cid_varint_len(l) + l;
                } else
                        estimate += entries[i].name_len + entries[i].cid.len;
        }
        if (!p->block_estimate) /* 'links': Σ name + CID lengths, nothing else */
                estimate -= 1 + cid_varint_len(data_len) + data_len;
        shard = estimate > UNIXFS_HAMT_THRESHOLD || (p->max_links && n > p->max_links);
        if (!shard) {
                links = calloc(n ? n : 1, sizeof(*links));
                if (!links)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        links[i] = (struct unixfs_pb_link){
                                .cid = entries[i].cid,
                                .name = { .p = (const uint8_t *)entries[i].name,
                                          .len = entries[i].name_len },
                                .has_name = true,
                                .tsize = entries[i].tsize,
                                .has_tsize = true
                        };
                r = emit_node(&d, links, n, &dirdata, ret_root, ret_tsize);
                free(links);
                return r;
        }
        be = calloc(n, sizeof(*be));
        if (!be)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                be[i] = (struct bentry){ .e = entries[i],
                                         .hash = unixfs_murmur3_64(entries[i].name,
                                                                   entries[i].name_len) };
        qsort(be, n, sizeof(*be), hash_cmp);
        r = build_shard(&d, be, n, 0, meta, ret_root, ret_tsize);
        free(be);
        return r;
}

/* ---- read ---- */

/*
 * A walk is resumable: each level of the HAMT keeps its decoded shard and the position of the
 * next link, so entries come out one at a time with one block per level in memory, and a
 * failed fetch leaves the position where it was (the next call tries that shard again).
 * Bytes that cannot be a directory (a malformed shard, a sub-shard that is no shard, a walk
 * over its budget) stop the walk for good: every later call returns the same error.
 */
struct frame {
        uint8_t *block; /* owned; n borrows it */
        struct unixfs_node n;
        size_t pos; /* next link */
};

struct unixfs_dir_iter {
        struct cid root;
        bool is_hamt, is_done;
        int error;       /* sticky: the directory is malformed or over budget */
        uint64_t fanout; /* of the root shard: the same throughout */
        size_t depth;    /* frames in use; 0 before the root is loaded */
        struct frame fr[UNIXFS_HAMT_MAX_LEVELS];
        uint64_t shards, entries, bytes; /* walked so far: repeated sub-shard CIDs cannot make a
                                            walk visit 256^8 blocks */
        uint64_t max_shards, max_entries, max_bytes;
        char *name; /* the last entry's name, NUL-terminated */
        size_t name_cap;
};

/* A verified copy of cid's block (identity CIDs from their digest). */
static int load_block(const struct cid *cid, unixfs_fetch_fn fetch, void *fetch_ud, uint8_t **ret,
                      size_t *ret_len)
{
        struct bytes_view v;

        if (!cid_is_identity(cid))
                return fetch(cid, ret, ret_len, fetch_ud);
        v = cid_digest(cid);
        *ret = malloc(v.len ? v.len : 1);
        if (!*ret)
                return -ENOMEM;
        if (v.len)
                memcpy(*ret, v.p, v.len);
        *ret_len = v.len;
        return 0;
}

static bool hex_prefix(const struct bytes_view *name, unsigned *ret)
{
        unsigned v = 0;

        if (name->len < 2)
                return false;
        for (int i = 0; i < 2; i++) {
                const char *p = memchr(hexdig, name->p[i], 16);

                if (!p || !name->p[i])
                        return false;
                v = v * 16 + (unsigned)(p - hexdig);
        }
        *ret = v;
        return true;
}

int unixfs_dir_iter_new(const struct cid *dir, struct unixfs_dir_iter **ret)
{
        struct unixfs_dir_iter *it = calloc(1, sizeof(*it));

        if (!it)
                return -ENOMEM;
        it->root = *dir;
        it->max_shards = UNIXFS_MAX_SHARDS;
        it->max_entries = UNIXFS_MAX_DIR_ENTRIES;
        it->max_bytes = UNIXFS_MAX_DIR_BYTES;
        *ret = it;
        return 0;
}

void unixfs_dir_iter_set_limits(struct unixfs_dir_iter *it, uint64_t max_shards,
                                uint64_t max_entries, uint64_t max_bytes)
{
        it->max_shards = max_shards;
        it->max_entries = max_entries;
        it->max_bytes = max_bytes;
}

static void pop(struct unixfs_dir_iter *it)
{
        struct frame *f = &it->fr[--it->depth];

        unixfs_node_done(&f->n);
        free(f->block);
        *f = (struct frame){ 0 };
}

void unixfs_dir_iter_free(struct unixfs_dir_iter *it)
{
        if (!it)
                return;
        while (it->depth)
                pop(it);
        free(it->name);
        free(it);
}

static int stop(struct unixfs_dir_iter *it, int error)
{
        it->error = error;
        return error;
}

/* Loads the block of cid as level it->depth: the root (a directory of either kind) or a
 * sub-shard. A fetch error leaves the walk as it was; anything else wrong stops it. */
static int push(struct unixfs_dir_iter *it, const struct cid *cid, unixfs_fetch_fn fetch,
                void *fetch_ud)
{
        struct frame f = { 0 };
        size_t level = it->depth, len;
        int r;

        if (level >= UNIXFS_HAMT_MAX_LEVELS)
                return stop(it, -EBADMSG); /* one hash byte per level: 8 levels */
        if (level > 0 && it->shards >= it->max_shards)
                return stop(it, -E2BIG);
        r = load_block(cid, fetch, fetch_ud, &f.block, &len);
        if (r < 0)
                return r;
        it->bytes += len;
        if (it->bytes > it->max_bytes) {
                free(f.block);
                return stop(it, -E2BIG);
        }
        r = unixfs_node_decode(cid, f.block, len, &f.n);
        if (r < 0) {
                free(f.block);
                return stop(it, r);
        }
        if (level == 0 && !f.n.is_raw && f.n.fs.type == UNIXFS_DIRECTORY)
                it->is_hamt = false;
        else if (level == 0 && !f.n.is_raw && f.n.fs.type == UNIXFS_HAMT_SHARD) {
                it->is_hamt = true;
                it->fanout = f.n.fs.fanout;
        } else if (level == 0)
                r = -ENOTDIR;
        else if (f.n.is_raw || f.n.fs.type != UNIXFS_HAMT_SHARD)
                r = -EBADMSG; /* a sub-shard link must lead to a shard */
        /* only fanout 256 is produced by Kubo, and the same fanout throughout */
        if (r >= 0 && it->is_hamt &&
            (f.n.fs.fanout != it->fanout || it->fanout != UNIXFS_HAMT_FANOUT))
                r = -EBADMSG;
        if (r < 0) {
                unixfs_node_done(&f.n);
                free(f.block);
                return stop(it, r);
        }
        if (level > 0)
                it->shards++;
        it->fr[level] = f;
        it->depth++;
        return 0;
}

static int emit(struct unixfs_dir_iter *it, const uint8_t *name, size_t len,
                const struct unixfs_pb_link *l, struct unixfs_dirent *ret)
{
        if (++it->entries > it->max_entries)
                return stop(it, -E2BIG);
        if (len + 1 > it->name_cap) {
                char *p = realloc(it->name, len + 1);

                if (!p)
                        return -ENOMEM;
                it->name = p;
                it->name_cap = len + 1;
        }
        if (len)
                memcpy(it->name, name, len); /* an empty name may come with no bytes at all */
        it->name[len] = '\0';
        *ret = (struct unixfs_dirent){
                .name = it->name, .name_len = len, .cid = l->cid, .tsize = l->tsize
        };
        return 1;
}

int unixfs_dir_iter_next(struct unixfs_dir_iter *it, unixfs_fetch_fn fetch, void *fetch_ud,
                         struct unixfs_dirent *ret)
{
        int r;

        if (it->error)
                return it->error;
        if (it->is_done)
                return 0;
        if (it->depth == 0) {
                r = push(it, &it->root, fetch, fetch_ud);
                if (r < 0)
                        return r;
        }
        for (;;) {
                struct frame *f = &it->fr[it->depth - 1];
                const struct unixfs_pb_link *l;
                unsigned b;

                if (f->pos == f->n.pb.n_links) {
                        pop(it);
                        if (it->depth > 0)
                                continue;
                        it->is_done = true;
                        return 0;
                }
                l = &f->n.pb.links[f->pos];
                if (!it->is_hamt) {
                        f->pos++;
                        return emit(it, l->name.p, l->name.len, l, ret);
                }
                if (!hex_prefix(&l->name, &b))
                        return stop(it, -EBADMSG);
                if (l->name.len > 2) {
                        f->pos++;
                        return emit(it, l->name.p + 2, l->name.len - 2, l, ret);
                }
                r = push(it, &l->cid, fetch, fetch_ud);
                if (r < 0)
                        return r;
                f->pos++; /* f is still the parent's frame: frames do not move */
        }
}

size_t unixfs_dir_iter_upcoming(const struct unixfs_dir_iter *it, struct cid *ret, size_t max)
{
        size_t n = 0;

        if (!it->is_hamt || it->error)
                return 0;
        for (size_t d = it->depth; d-- > 0 && n < max;) {
                const struct frame *f = &it->fr[d];

                for (size_t i = f->pos; i < f->n.pb.n_links && n < max; i++)
                        if (f->n.pb.links[i].name.len == 2 &&
                            !cid_is_identity(&f->n.pb.links[i].cid))
                                ret[n++] = f->n.pb.links[i].cid;
        }
        return n;
}

uint64_t unixfs_dir_iter_shards(const struct unixfs_dir_iter *it)
{
        return it->shards;
}

int unixfs_dir_list(const struct cid *dir, unixfs_fetch_fn fetch, void *fetch_ud,
                    unixfs_dirent_fn fn, void *userdata)
{
        struct unixfs_dir_iter *it;
        struct unixfs_dirent e;
        int r;

        r = unixfs_dir_iter_new(dir, &it);
        if (r < 0)
                return r;
        while ((r = unixfs_dir_iter_next(it, fetch, fetch_ud, &e)) > 0) {
                r = fn(&e, userdata);
                if (r < 0)
                        break;
        }
        unixfs_dir_iter_free(it);
        return r;
}

int unixfs_dir_lookup(const struct cid *dir, const char *name, unixfs_fetch_fn fetch,
                      void *fetch_ud, struct cid *ret_cid, uint64_t *ret_tsize)
{
        size_t len = strlen(name);
        uint64_t h = unixfs_murmur3_64(name, len);
        struct cid cur = *dir;
        int r;

        for (unsigned depth = 0;; depth++) {
                struct unixfs_node n;
                uint8_t *block = NULL;
                size_t block_len;
                bool descend = false;

                r = load_block(&cur, fetch, fetch_ud, &block, &block_len);
                if (r < 0)
                        return r;
                r = unixfs_node_decode(&cur, block, block_len, &n);
                if (r < 0) {
                        free(block);
                        return r;
                }
                r = -ENOENT;
                if (depth > 0 && (n.is_raw || n.fs.type != UNIXFS_HAMT_SHARD))
                        r = -EBADMSG; /* a sub-shard link must lead to a shard */
                else if (n.is_raw)
                        r = -ENOTDIR;
                else if (n.fs.type == UNIXFS_DIRECTORY) {
                        for (size_t i = 0; i < n.pb.n_links; i++) {
                                const struct unixfs_pb_link *l = &n.pb.links[i];

                                if (l->name.len == len && memcmp(l->name.p, name, len) == 0) {
                                        *ret_cid = l->cid;
                                        *ret_tsize = l->tsize;
                                        r = 0;
                                        break; /* first one wins on duplicates */
                                }
                        }
                } else if (n.fs.type == UNIXFS_HAMT_SHARD) {
                        unsigned want = bucket_of(h, depth), b;

                        /* one hash byte per level: 8 levels, fanout 256 (all Kubo makes) */
                        if (depth >= UNIXFS_HAMT_MAX_LEVELS || n.fs.fanout != UNIXFS_HAMT_FANOUT)
                                r = -EBADMSG;
                        for (size_t i = 0; r != -EBADMSG && i < n.pb.n_links; i++) {
                                const struct unixfs_pb_link *l = &n.pb.links[i];

                                if (!hex_prefix(&l->name, &b) || b != want)
                                        continue;
                                if (l->name.len == 2) {
                                        cur = l->cid;
                                        descend = true;
                                } else if (l->name.len - 2 == len &&
                                           memcmp(l->name.p + 2, name, len) == 0) {
                                        *ret_cid = l->cid;
                                        *ret_tsize = l->tsize;
                                        r = 0;
                                }
                                break;
                        }
                } else
                        r = -ENOTDIR;
                unixfs_node_done(&n);
                free(block);
                if (!descend)
                        return r;
        }
}
