/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dag-pb decoder: whatever decodes re-encodes canonically to something that decodes to the
 * same links (CID, name and its presence, Tsize and its presence) and data, and that canonical
 * form is a fixed point (encoding it again gives the same bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool view_eq(struct bytes_view a, struct bytes_view b)
{
        return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool same_node(const struct unixfs_pb_node *n, const struct unixfs_pb_node *m)
{
        if (m->n_links != n->n_links || m->has_data != n->has_data ||
            (n->has_data && !view_eq(n->data, m->data)))
                return false;
        for (size_t i = 0; i < n->n_links; i++) {
                const struct unixfs_pb_link *a = &n->links[i], *b = &m->links[i];

                if (!cid_equal(&a->cid, &b->cid) || a->has_name != b->has_name ||
                    !view_eq(a->name, b->name) || a->has_tsize != b->has_tsize ||
                    a->tsize != b->tsize)
                        return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct unixfs_pb_node n, m;
        struct buf b, b2;

        if (unixfs_pb_decode(data, size, &n) < 0)
                return 0;
        buf_init(&b, 4 * CID_MAX_BLOCK);
        buf_init(&b2, 4 * CID_MAX_BLOCK);
        if (unixfs_pb_encode(&n, &b) < 0 || b.len > size || unixfs_pb_decode(b.p, b.len, &m) < 0 ||
            !same_node(&n, &m))
                abort(); /* canonical form is never longer: varints shrink, nothing is added */
        if (unixfs_pb_encode(&m, &b2) < 0 || !view_eq(buf_view(&b), buf_view(&b2)))
                abort();
        unixfs_pb_node_done(&m);
        unixfs_pb_node_done(&n);
        buf_done(&b);
        buf_done(&b2);
        return 0;
}
