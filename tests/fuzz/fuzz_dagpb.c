/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct unixfs_pb_node n, m;
        struct buf b;

        if (unixfs_pb_decode(data, size, &n) < 0)
                return 0;
        buf_init(&b, 4 * CID_MAX_BLOCK);
        /* decode -> encode -> decode keeps every link and the data */
        if (unixfs_pb_encode(&n, &b) < 0 || unixfs_pb_decode(b.p, b.len, &m) < 0 ||
            m.n_links != n.n_links || m.has_data != n.has_data ||
            (n.has_data && (m.data.len != n.data.len ||
                            (n.data.len && memcmp(m.data.p, n.data.p, n.data.len) != 0))))
                abort();
        for (size_t i = 0; i < n.n_links; i++)
                if (!cid_equal(&n.links[i].cid, &m.links[i].cid) ||
                    n.links[i].tsize != m.links[i].tsize ||
                    n.links[i].name.len != m.links[i].name.len)
                        abort();
        unixfs_pb_node_done(&m);
        unixfs_pb_node_done(&n);
        buf_done(&b);
        return 0;
}
