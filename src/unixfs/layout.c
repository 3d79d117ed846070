/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File layout: the flat list of leaves of a UnixFS file with their byte offsets, built once
 * per file so that a read maps to leaves by binary search instead of re-walking the DAG
 * (Kubo's old mount re-walked per read: kubo#2166).
 *
 * Works for any UnixFS file shape (balanced, trickle, uneven depths, Data.Data prefixes in
 * inner nodes, raw or dag-pb leaves, identity CIDs), and trusts nothing: blocksizes must add
 * up to filesize, every fetched child's real size must equal its blocksize, depth is bounded
 * (which also ends cycles), and the total leaf count is bounded.
 *
 * Raw leaves are not fetched: their size is the parent's blocksize, and whoever reads one
 * checks the block's length against it. dag-pb children are fetched, because only their
 * bytes say whether they are leaves or subtrees (legacy-profile files: the read path will
 * make those lazy).
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

struct walk {
        unixfs_fetch_fn fetch;
        void *userdata;
        struct unixfs_layout *l;
        size_t cap;
};

static int add_leaf(struct walk *w, const struct cid *cid, uint64_t offset, uint64_t size,
                    size_t data_off)
{
        struct unixfs_layout *l = w->l;

        if (size == 0)
                return 0; /* nothing to read there */
        if (data_off > UINT32_MAX)
                return -EBADMSG;
        if (l->n_leaves == w->cap) {
                struct unixfs_leaf *nl;

                if (w->cap >= UNIXFS_MAX_LEAVES)
                        return -E2BIG;
                w->cap = w->cap ? w->cap * 2 : 64;
                nl = reallocarray(l->leaves, w->cap, sizeof(*nl));
                if (!nl)
                        return -ENOMEM;
                l->leaves = nl;
        }
        l->leaves[l->n_leaves++] = (struct unixfs_leaf){
                .offset = offset, .size = size, .cid = *cid, .data_off = (uint32_t)data_off
        };
        return 0;
}

static int get_block(struct walk *w, const struct cid *cid, uint8_t **ret, size_t *ret_len)
{
        if (cid_is_identity(cid)) {
                struct bytes_view d = cid_digest(cid);

                *ret = malloc(d.len ? d.len : 1);
                if (!*ret)
                        return -ENOMEM;
                memcpy(*ret, d.p, d.len);
                *ret_len = d.len;
                return 0;
        }
        return w->fetch(cid, ret, ret_len, w->userdata);
}

/* Walks the node at cid, whose content starts at offset; *ret_size = its file bytes. */
static int walk_node(struct walk *w, const struct cid *cid, uint64_t offset, unsigned depth,
                     uint64_t *ret_size)
{
        struct unixfs_node n;
        uint8_t *block = NULL;
        size_t len = 0;
        uint64_t pos;
        int r;

        if (depth > UNIXFS_MAX_DEPTH)
                return -EBADMSG;
        r = get_block(w, cid, &block, &len);
        if (r < 0)
                return r;
        r = unixfs_node_decode(cid, block, len, &n);
        if (r < 0)
                goto out;
        if (n.is_raw) {
                r = add_leaf(w, cid, offset, len, 0);
                *ret_size = len;
                goto done;
        }
        if (n.fs.type != UNIXFS_FILE && n.fs.type != UNIXFS_RAW) {
                r = -EISDIR; /* not a file */
                goto done;
        }
        pos = offset;
        if (n.fs.has_data && n.fs.data.len) {
                r = add_leaf(w, cid, pos, n.fs.data.len, (size_t)(n.fs.data.p - block));
                if (r < 0)
                        goto done;
                pos += n.fs.data.len;
        }
        for (size_t i = 0; i < n.pb.n_links; i++) {
                const struct cid *cc = &n.pb.links[i].cid;
                uint64_t child = 0;

                if (cc->codec == CID_CODEC_RAW && !cid_is_identity(cc)) {
                        /* a raw child is a leaf whose size the parent states: no fetch (the
                         * reader checks the block's length against it when it reads it) */
                        child = n.fs.blocksizes[i];
                        if (child > CID_MAX_BLOCK) {
                                r = -EBADMSG;
                                goto done;
                        }
                        r = add_leaf(w, cc, pos, child, 0);
                } else
                        r = walk_node(w, cc, pos, depth + 1, &child);
                if (r < 0)
                        goto done;
                if (child != n.fs.blocksizes[i]) {
                        r = -EBADMSG; /* the DAG lies about its sizes */
                        goto done;
                }
                if (__builtin_add_overflow(pos, child, &pos)) {
                        r = -EBADMSG;
                        goto done;
                }
        }
        /* filesize must agree with what is really there (absent means 0 only for empty) */
        if ((n.fs.has_filesize ? n.fs.filesize : 0) != pos - offset) {
                r = -EBADMSG;
                goto done;
        }
        *ret_size = pos - offset;
done:
        unixfs_node_done(&n);
out:
        free(block);
        return r;
}

int unixfs_layout_build(const struct cid *root, unixfs_fetch_fn fetch, void *userdata,
                        struct unixfs_layout *ret)
{
        struct unixfs_layout l = { 0 };
        struct walk w = { .fetch = fetch, .userdata = userdata, .l = &l };
        uint64_t size = 0;
        int r;

        r = walk_node(&w, root, 0, 0, &size);
        if (r < 0) {
                free(l.leaves);
                return r;
        }
        l.size = size;
        *ret = l;
        return 0;
}

void unixfs_layout_done(struct unixfs_layout *l)
{
        if (!l)
                return;
        free(l->leaves);
        *l = (struct unixfs_layout){ 0 };
}

size_t unixfs_layout_find(const struct unixfs_layout *l, uint64_t off)
{
        size_t lo = 0, hi = l->n_leaves;

        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;

                if (l->leaves[mid].offset <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}
