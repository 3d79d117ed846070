/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File layouts as the index stores them (unixfs_layout_encode's bytes in the files table,
 * read back by src/fs/reader.c): whatever decodes must be a consistent layout (contiguous
 * non-empty pieces from 0 adding up to the size, pending counted, nothing inside a raw or
 * pending block), encode back to exactly the input (the format has one spelling), and find
 * the piece holding any offset. Aborts on a mismatch.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_find(const struct unixfs_layout *l, uint64_t off)
{
        size_t i;

        if (off >= l->size)
                return;
        i = unixfs_layout_find(l, off);
        if (i >= l->n_leaves || l->leaves[i].offset > off ||
            off - l->leaves[i].offset >= l->leaves[i].size)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct unixfs_layout l;
        uint64_t pos = 0;
        size_t pending = 0, enc_len;
        uint8_t *enc;

        if (unixfs_layout_decode(data, size, &l) < 0)
                return 0;
        for (size_t i = 0; i < l.n_leaves; i++) {
                const struct unixfs_leaf *lf = &l.leaves[i];

                if (lf->offset != pos || lf->size == 0 || lf->size > l.size - pos)
                        abort();
                if ((lf->is_pending || lf->cid.codec == CID_CODEC_RAW) && lf->data_off != 0)
                        abort();
                pos += lf->size;
                pending += lf->is_pending;
        }
        if (pos != l.size || pending != l.n_pending)
                abort();
        check_find(&l, 0);
        check_find(&l, l.size / 2);
        check_find(&l, l.size - 1);
        if (l.n_leaves)
                check_find(&l, l.leaves[l.n_leaves / 2].offset);
        if (unixfs_layout_encode(&l, &enc, &enc_len) == 0) {
                if (enc_len != size || memcmp(enc, data, size) != 0)
                        abort();
                free(enc);
        }
        unixfs_layout_done(&l);
        return 0;
}
