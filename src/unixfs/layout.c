/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File layout: the flat list of pieces of a UnixFS file with their byte offsets, built once
 * per file so that a read maps to leaves by binary search instead of re-walking the DAG
 * (Kubo's old mount re-walked per read: kubo#2166).
 *
 * Works for any UnixFS file shape (balanced, trickle, uneven depths, Data.Data prefixes in
 * inner nodes, raw or dag-pb leaves, identity CIDs), and trusts nothing: blocksizes must add
 * up to filesize, every resolved child must hold exactly its parent's blocksize, depth is
 * bounded (which also ends cycles) and the number of pieces is bounded.
 *
 * One operation does all the work: expand() turns a verified block into the pieces it stands
 * for (its own Data.Data, raw children taken at their parent's word, identity children
 * expanded in place, dag-pb children left pending). The eager build and the lazy open/resolve
 * are that operation applied at the root and at pending pieces. Pieces are resolved front to
 * back by the eager build, so the tail moved by each splice is only the unresolved frontier
 * (a few pending siblings per level), never the resolved part of the file.
 *
 * Raw leaves are not fetched: the reader checks the block's length against the piece's size
 * (unixfs_leaf_slice). dag-pb children must be seen to know whether they are leaves; the lazy
 * form lets the read path fetch each one once, as the block it needs anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

struct vec {
        struct unixfs_leaf *p;
        size_t n, cap;
        size_t room; /* most pieces this expansion may add */
};

static int vec_push(struct vec *v, const struct unixfs_leaf *lf)
{
        if (lf->size == 0)
                return 0; /* no bytes there: nothing to read, nothing to resolve */
        if (v->n >= v->room)
                return -E2BIG;
        if (v->n == v->cap) {
                struct unixfs_leaf *np;
                size_t cap = v->cap ? v->cap * 2 : 16;

                np = reallocarray(v->p, cap, sizeof(*np));
                if (!np)
                        return -ENOMEM;
                v->p = np;
                v->cap = cap;
        }
        v->p[v->n++] = *lf;
        return 0;
}

/* Pieces of the node at cid (content starting at offset) appended to v; *ret_size = its
 * file bytes. A non-file node is -EISDIR (the caller decides what that means). */
static int expand(struct vec *v, const struct cid *cid, const uint8_t *block, size_t len,
                  uint64_t offset, unsigned depth, uint64_t *ret_size)
{
        struct unixfs_node n;
        uint64_t pos = offset;
        int r;

        if (depth > UNIXFS_MAX_DEPTH)
                return -EBADMSG;
        if (cid_is_identity(cid)) {
                struct bytes_view d = cid_digest(cid);

                block = d.p;
                len = d.len;
        }
        r = unixfs_node_decode(cid, block, len, &n);
        if (r < 0)
                return r == -EOPNOTSUPP ? -EBADMSG : r;
        if (n.is_raw) {
                r = vec_push(v,
                             &(struct unixfs_leaf){
                                     .offset = offset, .size = len, .cid = *cid, .depth = depth });
                *ret_size = len;
                goto done;
        }
        if (n.fs.type != UNIXFS_FILE && n.fs.type != UNIXFS_RAW) {
                r = -EISDIR;
                goto done;
        }
        if (n.fs.has_data && n.fs.data.len) {
                r = vec_push(v, &(struct unixfs_leaf){ .offset = pos,
                                                       .size = n.fs.data.len,
                                                       .cid = *cid,
                                                       .data_off = (uint32_t)(n.fs.data.p - block),
                                                       .depth = depth });
                if (r < 0)
                        goto done;
                pos += n.fs.data.len;
        }
        for (size_t i = 0; i < n.pb.n_links; i++) {
                const struct cid *cc = &n.pb.links[i].cid;
                uint64_t bs = n.fs.blocksizes[i], child;

                r = -EBADMSG;
                if (cid_is_identity(cc)) {
                        r = expand(v, cc, NULL, 0, pos, depth + 1, &child);
                        if (r == -EISDIR || (r >= 0 && child != bs))
                                r = -EBADMSG; /* a file's child is file bytes, as many as said */
                } else if (cc->codec == CID_CODEC_RAW && bs <= CID_MAX_BLOCK)
                        r = vec_push(v, &(struct unixfs_leaf){ .offset = pos,
                                                               .size = bs,
                                                               .cid = *cc,
                                                               .depth = (uint8_t)(depth + 1) });
                else if (cc->codec == CID_CODEC_DAG_PB)
                        r = vec_push(v, &(struct unixfs_leaf){ .offset = pos,
                                                               .size = bs,
                                                               .cid = *cc,
                                                               .depth = (uint8_t)(depth + 1),
                                                               .is_pending = true });
                if (r < 0)
                        goto done;
                if (__builtin_add_overflow(pos, bs, &pos)) {
                        r = -EBADMSG;
                        goto done;
                }
        }
        /* filesize must agree with what is really there (absent reads as 0) */
        if ((n.fs.has_filesize ? n.fs.filesize : 0) != pos - offset) {
                r = -EBADMSG;
                goto done;
        }
        *ret_size = pos - offset;
        r = 0;
done:
        unixfs_node_done(&n);
        return r;
}

/* Replaces `replace` pieces at i by v's pieces (v's storage is consumed). */
static int splice(struct unixfs_layout *l, size_t i, size_t replace, struct vec *v)
{
        size_t n = l->n_leaves - replace + v->n, pending = 0;

        if (n > l->cap) {
                size_t cap = MAX(n, l->cap * 2);
                struct unixfs_leaf *np;

                cap = MIN(cap, (size_t)UNIXFS_MAX_LEAVES);
                np = reallocarray(l->leaves, cap, sizeof(*np));
                if (!np)
                        return -ENOMEM;
                l->leaves = np;
                l->cap = cap;
        }
        for (size_t k = 0; k < replace; k++)
                pending += l->leaves[i + k].is_pending;
        if (l->n_leaves > i + replace) /* (an empty layout may have no array at all) */
                memmove(l->leaves + i + v->n, l->leaves + i + replace,
                        (l->n_leaves - i - replace) * sizeof(*l->leaves));
        if (v->n)
                memcpy(l->leaves + i, v->p, v->n * sizeof(*v->p));
        l->n_pending -= pending;
        for (size_t k = 0; k < v->n; k++)
                l->n_pending += v->p[k].is_pending;
        l->n_leaves = n;
        return 0;
}

int unixfs_layout_open(const struct cid *root, const uint8_t *block, size_t len,
                       struct unixfs_layout *ret)
{
        struct unixfs_layout l = { 0 };
        struct vec v = { .room = UNIXFS_MAX_LEAVES };
        uint64_t size = 0;
        int r;

        r = expand(&v, root, block, len, 0, 0, &size);
        if (r >= 0)
                r = splice(&l, 0, 0, &v);
        free(v.p);
        if (r < 0) {
                free(l.leaves);
                return r;
        }
        l.size = size;
        *ret = l;
        return 0;
}

int unixfs_layout_resolve(struct unixfs_layout *l, size_t i, const uint8_t *block, size_t len)
{
        struct unixfs_leaf lf;
        struct vec v = { 0 };
        uint64_t size = 0;
        int r;

        if (i >= l->n_leaves || !l->leaves[i].is_pending)
                return -EINVAL;
        lf = l->leaves[i];
        v.room = UNIXFS_MAX_LEAVES - (l->n_leaves - 1);
        r = expand(&v, &lf.cid, block, len, lf.offset, lf.depth, &size);
        if (r == -EISDIR || (r >= 0 && size != lf.size))
                r = -EBADMSG; /* not file bytes, or not as many as the parent says */
        if (r >= 0)
                r = splice(l, i, 1, &v);
        free(v.p);
        return r < 0 ? r : (int)v.n; /* v.n <= UNIXFS_MAX_LEAVES */
}

static int get_block(const struct cid *cid, unixfs_fetch_fn fetch, void *userdata, uint8_t **ret,
                     size_t *ret_len)
{
        if (cid_is_identity(cid)) {
                *ret = NULL; /* expand() reads the digest */
                *ret_len = 0;
                return 0;
        }
        return fetch(cid, ret, ret_len, userdata);
}

int unixfs_layout_build(const struct cid *root, unixfs_fetch_fn fetch, void *userdata,
                        struct unixfs_layout *ret)
{
        struct unixfs_layout l = { 0 };
        uint8_t *block = NULL;
        size_t len = 0;
        int r;

        r = get_block(root, fetch, userdata, &block, &len);
        if (r < 0)
                return r;
        r = unixfs_layout_open(root, block, len, &l);
        free(block);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n_leaves && r >= 0;) {
                struct cid c;

                if (!l.leaves[i].is_pending) {
                        i++;
                        continue;
                }
                c = l.leaves[i].cid; /* the array moves on resolve */
                block = NULL;
                r = get_block(&c, fetch, userdata, &block, &len);
                if (r >= 0)
                        r = unixfs_layout_resolve(&l, i, block, len);
                free(block);
        }
        if (r < 0) {
                unixfs_layout_done(&l);
                return r;
        }
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

int unixfs_leaf_slice(const struct unixfs_leaf *lf, const uint8_t *block, size_t len,
                      struct bytes_view *ret)
{
        if (lf->is_pending)
                return -EINVAL;
        if (cid_is_identity(&lf->cid)) {
                struct bytes_view d = cid_digest(&lf->cid);

                block = d.p;
                len = d.len;
        }
        /* a raw leaf is exactly its parent's blocksize; a dag-pb piece lies inside its block */
        if ((lf->cid.codec == CID_CODEC_RAW && len != lf->size) || lf->data_off > len ||
            lf->size > len - lf->data_off)
                return -EBADMSG;
        *ret = (struct bytes_view){ .p = block + lf->data_off, .len = (size_t)lf->size };
        return 0;
}

/*
 * Stored form (the index keeps layouts so that a reopen needs no inner block): "PLY1",
 * the file size and the piece count, then per piece its size, data_off, depth, pending flag
 * and binary CID; integers little-endian. Offsets are not stored: pieces are contiguous.
 * The decoder checks everything the resolver guarantees, so a damaged row is refused, never
 * read with wrong offsets.
 */
#define LAYOUT_MAGIC    "PLY1"
#define LAYOUT_HEAD     (4 + 8 + 4)
#define LAYOUT_PIECE(c) (8 + 4 + 1 + 1 + 1 + (size_t)(c)->len)

static uint8_t *put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
        for (unsigned i = 0; i < bytes; i++)
                *p++ = (uint8_t)(v >> (8 * i));
        return p;
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < bytes; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

int unixfs_layout_encode(const struct unixfs_layout *l, uint8_t **ret, size_t *ret_len)
{
        size_t len = LAYOUT_HEAD;
        uint8_t *buf, *p;

        for (size_t i = 0; i < l->n_leaves; i++)
                len += LAYOUT_PIECE(&l->leaves[i].cid);
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, LAYOUT_MAGIC, 4);
        p = put_le(buf + 4, l->size, 8);
        p = put_le(p, l->n_leaves, 4);
        for (size_t i = 0; i < l->n_leaves; i++) {
                const struct unixfs_leaf *lf = &l->leaves[i];

                p = put_le(p, lf->size, 8);
                p = put_le(p, lf->data_off, 4);
                *p++ = lf->depth;
                *p++ = lf->is_pending;
                *p++ = lf->cid.len;
                memcpy(p, lf->cid.bin, lf->cid.len);
                p += lf->cid.len;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int unixfs_layout_decode(const uint8_t *p, size_t len, struct unixfs_layout *ret)
{
        struct unixfs_layout l = { 0 };
        const uint8_t *end = p + len;
        uint64_t n, off = 0;
        int r = -EBADMSG;

        if (len < LAYOUT_HEAD || memcmp(p, LAYOUT_MAGIC, 4) != 0)
                return -EBADMSG;
        l.size = get_le(p + 4, 8);
        n = get_le(p + 12, 4);
        p += LAYOUT_HEAD;
        /* every piece takes at least 16 bytes: n is bounded by the input before allocating */
        if (n > UNIXFS_MAX_LEAVES || n > (size_t)(end - p) / 16)
                return -EBADMSG;
        if (n) {
                l.leaves = calloc(n, sizeof(*l.leaves));
                if (!l.leaves)
                        return -ENOMEM;
        }
        l.cap = n;
        for (; l.n_leaves < n; l.n_leaves++) {
                struct unixfs_leaf *lf = &l.leaves[l.n_leaves];
                size_t cl;

                if (end - p < 15)
                        goto fail;
                lf->offset = off;
                lf->size = get_le(p, 8);
                lf->data_off = (uint32_t)get_le(p + 8, 4);
                lf->depth = p[12];
                lf->is_pending = p[13] != 0;
                cl = p[14];
                p += 15;
                if (p[-2] > 1 || (size_t)(end - p) < cl || lf->size == 0 ||
                    lf->size > l.size - off || cid_from_bytes(p, cl, &lf->cid) < 0)
                        goto fail;
                p += cl;
                /* what the resolver guarantees: raw leaves whole, nothing inside a pending piece */
                if ((lf->cid.codec == CID_CODEC_RAW || lf->is_pending) && lf->data_off != 0)
                        goto fail;
                if (lf->cid.codec != CID_CODEC_RAW && lf->cid.codec != CID_CODEC_DAG_PB &&
                    !cid_is_identity(&lf->cid))
                        goto fail;
                l.n_pending += lf->is_pending;
                off += lf->size;
        }
        if (p != end || off != l.size)
                goto fail;
        *ret = l;
        return 0;
fail:
        free(l.leaves);
        return r;
}
