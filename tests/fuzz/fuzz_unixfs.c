/* SPDX-License-Identifier: GPL-2.0-or-later */
/* UnixFS Data and whole nodes (dag-pb + Data, validated per type), plus a file layout and a
 * directory listing over a block that names itself or unknown children (bounded walks). */
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
                uint64_t pos = 0;

                for (size_t i = 0; i < l.n_leaves; i++) {
                        if (l.leaves[i].offset != pos)
                                abort();
                        pos += l.leaves[i].size;
                }
                if (pos != l.size)
                        abort();
                unixfs_layout_done(&l);
        }
        r = unixfs_dir_list(&o.cid, fetch_self, &o, count, &entries);
        r = unixfs_dir_lookup(&o.cid, "a", fetch_self, &o, &found, &tsize);
        (void)r; /* any answer is fine: they must just terminate without faults */
        return 0;
}
