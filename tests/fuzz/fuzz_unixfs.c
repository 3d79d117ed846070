/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * UnixFS Data (decode -> encode -> decode keeps every field) and whole nodes (dag-pb + Data,
 * validated per type); then the input as a file root: the eager layout, and a lazy layout
 * whose pending pieces are resolved with the input again (a hostile self-similar DAG: depth
 * and size checks must hold, offsets stay contiguous); and a directory listing and lookup
 * over it (bounded walks).
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct one {
        const uint8_t *p;
        size_t len;
        struct cid cid;
};

/* Serves the input for its own CID (self-cycles) and fails everything else. */
static int fetch_self(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        struct one *o = ud;

        if (!cid_same_multihash(cid, &o->cid))
                return -ENOENT;
        *ret = malloc(o->len ? o->len : 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, o->p, o->len);
        *ret_len = o->len;
        return 0;
}

static void check_layout(const struct unixfs_layout *l)
{
        uint64_t pos = 0;
        size_t pending = 0;

        for (size_t i = 0; i < l->n_leaves; i++) {
                if (l->leaves[i].offset != pos || l->leaves[i].size == 0 ||
                    l->leaves[i].depth > UNIXFS_MAX_DEPTH + 1)
                        abort();
                pos += l->leaves[i].size;
                pending += l->leaves[i].is_pending;
        }
        if (pos != l->size || pending != l->n_pending)
                abort();
}

/* Resolves up to 64 pending pieces with the input itself: it only fits where its size is the
 * piece's, and the layout must be unchanged when it does not. */
static void lazy_layout(const struct one *o)
{
        struct unixfs_layout l;
        unsigned budget = 64;

        if (unixfs_layout_open(&o->cid, o->p, o->len, &l) < 0)
                return;
        check_layout(&l);
        for (size_t i = 0; i < l.n_leaves && budget; i++) {
                uint64_t size = l.size, n = l.n_leaves;
                int r;

                if (!l.leaves[i].is_pending)
                        continue;
                budget--;
                r = unixfs_layout_resolve(&l, i, o->p, o->len);
                if (r < 0 && (l.size != size || l.n_leaves != n || !l.leaves[i].is_pending))
                        abort();
                check_layout(&l);
                if (r >= 0)
                        i--; /* look at what took its place */
        }
        for (size_t i = 0; i < l.n_leaves; i++) {
                struct bytes_view v;

                if (l.leaves[i].is_pending)
                        continue;
                if (cid_same_multihash(&l.leaves[i].cid, &o->cid) &&
                    (unixfs_leaf_slice(&l.leaves[i], o->p, o->len, &v) < 0 || v.p < o->p ||
                     v.p + v.len > o->p + o->len))
                        abort(); /* a piece of the input must lie inside it */
        }
        unixfs_layout_done(&l);
}

static int count(const struct unixfs_dirent *e, void *ud)
{
        (void)e;
        return ++*(size_t *)ud > 100000 ? -E2BIG : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct unixfs_data d, d2;
        struct unixfs_node n;
        struct unixfs_layout l;
        struct one o = { .p = data, .len = size };
        struct cid found;
        uint64_t tsize;
        size_t entries = 0;
        struct buf b;
        int r;

        if (unixfs_data_decode(data, size, &d) >= 0) {
                buf_init(&b, 2 * CID_MAX_BLOCK);
                if (unixfs_data_encode(&d, &b) < 0 || unixfs_data_decode(b.p, b.len, &d2) < 0 ||
                    d2.type != d.type || d2.filesize != d.filesize ||
                    d2.n_blocksizes != d.n_blocksizes || d2.mode != d.mode ||
                    d2.mtime_sec != d.mtime_sec || d2.mtime_nsec != d.mtime_nsec)
                        abort();
                unixfs_data_done(&d2);
                unixfs_data_done(&d);
                buf_done(&b);
        }
        if (cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, data, size, &o.cid) < 0)
                return 0;
        if (unixfs_node_decode(&o.cid, data, size, &n) < 0)
                return 0;
        unixfs_node_done(&n);
        if (unixfs_layout_build(&o.cid, fetch_self, &o, &l) >= 0) {
                check_layout(&l);
                if (l.n_pending)
                        abort(); /* eager layouts leave nothing pending */
                unixfs_layout_done(&l);
        }
        lazy_layout(&o);
        r = unixfs_dir_list(&o.cid, fetch_self, &o, count, &entries);
        r = unixfs_dir_lookup(&o.cid, "a", fetch_self, &o, &found, &tsize);
        (void)r; /* any answer is fine: they must just terminate without faults */
        return 0;
}
