/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Streaming balanced DAG builder with Kubo/boxo parity (ipfs.md §13.4).
 *
 * boxo builds the tree top-down: root = leaf 1; then repeatedly a new root whose first child
 * is the old root, filled to max_links with full subtrees of the old depth. The result is the
 * unique tree in which every leaf sits at the same depth D (the smallest with
 * max_links^D >= chunks), every node is full except the last one of each level, and the last
 * subtree keeps full depth even when it holds one chunk.
 *
 * Streaming equivalent: level[k] holds the links of the node being filled at height k+1. A
 * new link at a full level first closes that level's node into one link one level up; at the
 * end every level is closed bottom-up and the single link left at the top is the root. Memory
 * is one chunk plus max_links links per level.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

struct link {
        struct cid cid;
        uint64_t tsize;    /* cumulative DAG size */
        uint64_t filesize; /* file bytes below */
};

struct level {
        struct link *links; /* max_links capacity */
        size_t n;
};

struct unixfs_builder {
        struct unixfs_params p;
        unixfs_emit_fn emit;
        void *userdata;
        uint8_t *chunk; /* chunk_size */
        size_t chunk_len;
        struct level levels[UNIXFS_MAX_DEPTH];
        size_t n_levels;
        uint64_t size;
        struct buf block, data;
        uint64_t *sizes; /* max_links scratch for blocksizes */
        int error;       /* sticky */
};

void unixfs_params_profile(enum unixfs_profile p, struct unixfs_params *ret)
{
        if (p == UNIXFS_PROFILE_LEGACY)
                *ret = (struct unixfs_params){ .cid_version = 0,
                                               .raw_leaves = false,
                                               .chunk_size = 256 * 1024,
                                               .max_links = 174 };
        else
                *ret = (struct unixfs_params){ .cid_version = 1,
                                               .raw_leaves = true,
                                               .chunk_size = 1024 * 1024,
                                               .max_links = 1024 };
}

int unixfs_params_check(const struct unixfs_params *p)
{
        if (p->cid_version > 1 || p->chunk_size < 1 || p->chunk_size > 4 * 1024 * 1024 ||
            p->max_links < 2 || p->max_links > UNIXFS_MAX_LINKS)
                return -EINVAL;
        /* a dag-pb leaf carries a few bytes of framing: it must stay a valid block */
        if (!p->raw_leaves && p->chunk_size > CID_MAX_BLOCK - 256)
                return -EINVAL;
        if (p->raw_leaves && p->chunk_size > CID_MAX_BLOCK)
                return -EINVAL;
        return 0;
}

int unixfs_builder_new(const struct unixfs_params *p, unixfs_emit_fn emit, void *userdata,
                       struct unixfs_builder **ret)
{
        struct unixfs_builder *b;
        int r = unixfs_params_check(p);

        if (r < 0)
                return r;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->p = *p;
        b->emit = emit;
        b->userdata = userdata;
        buf_init(&b->block, CID_MAX_BLOCK);
        buf_init(&b->data, CID_MAX_BLOCK);
        b->chunk = malloc(p->chunk_size);
        b->sizes = calloc(p->max_links, sizeof(*b->sizes));
        if (!b->chunk || !b->sizes) {
                unixfs_builder_free(b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

void unixfs_builder_free(struct unixfs_builder *b)
{
        if (!b)
                return;
        for (size_t i = 0; i < UNIXFS_MAX_DEPTH; i++)
                free(b->levels[i].links);
        buf_done(&b->block);
        buf_done(&b->data);
        free(b->chunk);
        free(b->sizes);
        free(b);
}

static int emit_block(struct unixfs_builder *b, uint64_t codec, const uint8_t *p, size_t len,
                      struct cid *ret)
{
        unsigned version = codec == CID_CODEC_RAW ? 1 : b->p.cid_version;
        int r;

        if (len > CID_MAX_BLOCK)
                return -E2BIG;
        /* an empty block (empty file, raw leaves) is "" for the callback, never NULL */
        if (!p)
                p = (const uint8_t *)"";
        r = cid_compute(version, codec, CID_MH_SHA2_256, p, len, ret);
        if (r < 0)
                return r;
        return b->emit(ret, p, len, b->userdata);
}

/* Adds a link at height index k (0 = links to leaves), closing full nodes upward. */
static int push_link(struct unixfs_builder *b, size_t k, const struct link *l);

/* A File node over n children (Kubo's and js-ipfs's encoding: links named "" with their
 * Tsize; Data with filesize and blocksizes), written to block; data is scratch. */
static int file_node_encode(const struct unixfs_pb_link *links, uint64_t *filesizes, size_t n,
                            struct buf *data, struct buf *block)
{
        struct unixfs_data d = { .type = UNIXFS_FILE,
                                 .has_filesize = true,
                                 .blocksizes = filesizes,
                                 .n_blocksizes = n };
        int r;

        for (size_t i = 0; i < n; i++)
                d.filesize += filesizes[i];
        buf_clear(data);
        r = unixfs_data_encode(&d, data);
        if (r < 0)
                return r;
        buf_clear(block);
        return unixfs_pb_encode(&(struct unixfs_pb_node){ .links = (struct unixfs_pb_link *)links,
                                                          .n_links = n,
                                                          .data = buf_view(data),
                                                          .has_data = true },
                                block);
}

static int close_level(struct unixfs_builder *b, size_t k, struct link *ret)
{
        struct level *lv = &b->levels[k];
        struct unixfs_pb_link *pl;
        uint64_t tsize = 0, filesize = 0;
        int r;

        pl = calloc(lv->n, sizeof(*pl));
        if (!pl)
                return -ENOMEM;
        for (size_t i = 0; i < lv->n; i++) {
                pl[i] = (struct unixfs_pb_link){ .cid = lv->links[i].cid,
                                                 .has_name = true,
                                                 .tsize = lv->links[i].tsize,
                                                 .has_tsize = true };
                b->sizes[i] = lv->links[i].filesize;
                filesize += lv->links[i].filesize;
                tsize += lv->links[i].tsize;
        }
        r = file_node_encode(pl, b->sizes, lv->n, &b->data, &b->block);
        free(pl);
        if (r < 0)
                return r;
        ret->filesize = filesize;
        ret->tsize = tsize + b->block.len;
        r = emit_block(b, CID_CODEC_DAG_PB, b->block.p, b->block.len, &ret->cid);
        lv->n = 0;
        return r;
}

int unixfs_file_root_of_leaves(const struct cid *leaves, size_t n, size_t leaf_len,
                               unsigned cid_version, struct cid *ret)
{
        struct unixfs_pb_link *pl = NULL;
        uint64_t *sizes = NULL;
        struct buf data, block;
        int r = -ENOMEM;

        if (n == 0 || n > UNIXFS_MAX_LINKS || cid_version > 1)
                return -EINVAL;
        if (n == 1) {
                *ret = leaves[0]; /* one chunk: the leaf is the file */
                return 0;
        }
        buf_init(&data, CID_MAX_BLOCK);
        buf_init(&block, CID_MAX_BLOCK);
        pl = calloc(n, sizeof(*pl));
        sizes = calloc(n, sizeof(*sizes));
        if (!pl || !sizes)
                goto out;
        for (size_t i = 0; i < n; i++) {
                pl[i] = (struct unixfs_pb_link){
                        .cid = leaves[i], .has_name = true, .tsize = leaf_len, .has_tsize = true
                };
                sizes[i] = leaf_len;
        }
        r = file_node_encode(pl, sizes, n, &data, &block);
        if (r >= 0)
                r = cid_compute(cid_version, CID_CODEC_DAG_PB, CID_MH_SHA2_256, block.p, block.len,
                                ret);
out:
        free(pl);
        free(sizes);
        buf_done(&data);
        buf_done(&block);
        return r;
}

int unixfs_file_set_meta(const struct cid *root, const uint8_t *block, size_t len,
                         const struct unixfs_meta *meta, unsigned cid_version,
                         struct buf *ret_block, struct cid *ret_cid, uint64_t *ret_tsize)
{
        struct unixfs_pb_node pb = { .has_data = true };
        uint64_t tsize = 0;
        struct unixfs_node n;
        struct unixfs_data d;
        struct buf data;
        int r;

        if (cid_version > 1)
                return -EINVAL;
        r = unixfs_node_decode(root, block, len, &n);
        if (r < 0)
                return r;
        if (n.is_raw)
                /* boxo FilePBDataWithStat: the bytes (none when empty) and their size */
                d = (struct unixfs_data){ .type = UNIXFS_FILE,
                                          .data = n.raw,
                                          .has_data = n.raw.len > 0,
                                          .filesize = n.raw.len,
                                          .has_filesize = true };
        else if (n.fs.type == UNIXFS_FILE || n.fs.type == UNIXFS_RAW) {
                d = n.fs; /* borrows n's blocksizes and data */
                pb.links = n.pb.links;
                pb.n_links = n.pb.n_links;
                for (size_t i = 0; i < pb.n_links; i++)
                        tsize += pb.links[i].tsize;
        } else {
                unixfs_node_done(&n);
                return -EBADMSG;
        }
        unixfs_data_set_meta(&d, meta);
        buf_init(&data, CID_MAX_BLOCK);
        buf_clear(ret_block);
        r = unixfs_data_encode(&d, &data);
        if (r >= 0) {
                pb.data = buf_view(&data);
                r = unixfs_pb_encode(&pb, ret_block);
        }
        if (r >= 0 && ret_block->len > CID_MAX_BLOCK)
                r = -E2BIG;
        if (r >= 0)
                r = cid_compute(cid_version, CID_CODEC_DAG_PB, CID_MH_SHA2_256, ret_block->p,
                                ret_block->len, ret_cid);
        if (r >= 0)
                *ret_tsize = tsize + ret_block->len;
        buf_done(&data);
        unixfs_node_done(&n);
        return r;
}

static int push_link(struct unixfs_builder *b, size_t k, const struct link *l)
{
        struct level *lv;
        int r;

        if (k >= UNIXFS_MAX_DEPTH)
                return -E2BIG;
        lv = &b->levels[k];
        if (!lv->links) {
                lv->links = calloc(b->p.max_links, sizeof(*lv->links));
                if (!lv->links)
                        return -ENOMEM;
        }
        if (k + 1 > b->n_levels)
                b->n_levels = k + 1;
        if (lv->n == b->p.max_links) {
                struct link up;

                r = close_level(b, k, &up);
                if (r >= 0)
                        r = push_link(b, k + 1, &up);
                if (r < 0)
                        return r;
        }
        lv->links[lv->n++] = *l;
        return 0;
}

/* Emits one chunk as a leaf (from the chunk buffer, or straight from the caller's bytes). */
static int flush_leaf(struct unixfs_builder *b, const uint8_t *chunk, size_t chunk_len)
{
        struct link l = { .filesize = chunk_len };
        int r;

        buf_clear(&b->block);
        if (b->p.raw_leaves) {
                /* the chunk is the block: hashed and emitted in place, no copy */
                r = emit_block(b, CID_CODEC_RAW, chunk_len ? chunk : NULL, chunk_len, &l.cid);
                l.tsize = chunk_len;
        } else {
                struct unixfs_data d = { .type = UNIXFS_FILE,
                                         .data = { .p = chunk, .len = chunk_len },
                                         .has_data = chunk_len > 0,
                                         .filesize = chunk_len,
                                         .has_filesize = true };
                struct unixfs_pb_node node = { .has_data = true };

                buf_clear(&b->data);
                r = unixfs_data_encode(&d, &b->data);
                if (r >= 0) {
                        node.data = buf_view(&b->data);
                        r = unixfs_pb_encode(&node, &b->block);
                }
                if (r >= 0)
                        r = emit_block(b, CID_CODEC_DAG_PB, b->block.p, b->block.len, &l.cid);
                l.tsize = b->block.len;
        }
        if (r < 0)
                return r;
        return push_link(b, 0, &l);
}

static int flush_chunk(struct unixfs_builder *b)
{
        int r = flush_leaf(b, b->chunk, b->chunk_len);

        b->chunk_len = 0;
        return r;
}

int unixfs_builder_write(struct unixfs_builder *b, const void *p, size_t len)
{
        const uint8_t *src = p;

        if (b->error)
                return b->error;
        while (len > 0) {
                size_t n;

                /* whole chunks with more bytes after them go out without a copy */
                if (b->chunk_len == 0 && len > b->p.chunk_size) {
                        b->error = flush_leaf(b, src, b->p.chunk_size);
                        if (b->error)
                                return b->error;
                        b->size += b->p.chunk_size;
                        src += b->p.chunk_size;
                        len -= b->p.chunk_size;
                        continue;
                }
                n = MIN(len, b->p.chunk_size - b->chunk_len);

                /* a full chunk is flushed only when more bytes follow: never an empty chunk */
                if (n == 0) {
                        b->error = flush_chunk(b);
                        if (b->error)
                                return b->error;
                        continue;
                }
                memcpy(b->chunk + b->chunk_len, src, n);
                b->chunk_len += n;
                b->size += n;
                src += n;
                len -= n;
        }
        return 0;
}

int unixfs_builder_finish(struct unixfs_builder *b, struct cid *ret_root, uint64_t *ret_size,
                          uint64_t *ret_tsize)
{
        struct link top;
        int r;

        if (b->error)
                return b->error;
        /* the last (or only, or empty) chunk */
        r = flush_chunk(b);
        for (size_t k = 0; r >= 0; k++) {
                struct level *lv = &b->levels[k];

                if (k + 1 == b->n_levels && lv->n == 1) {
                        top = lv->links[0]; /* a single link at the top is the root */
                        break;
                }
                r = close_level(b, k, &top);
                if (r >= 0)
                        r = push_link(b, k + 1, &top);
        }
        if (r < 0) {
                b->error = r;
                return r;
        }
        *ret_root = top.cid;
        if (ret_size)
                *ret_size = b->size;
        if (ret_tsize)
                *ret_tsize = top.tsize;
        return 0;
}
