/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>

#include "prsmfs/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct unixfs_car_reader rd;
        struct bytes_view blk;
        struct cid cid;
        size_t n = 0;
        int r;

        if (unixfs_car_init(&rd, data, size) < 0)
                return 0;
        while ((r = unixfs_car_next(&rd, &cid, &blk)) == 1) {
                if (blk.p < data || blk.p + blk.len > data + size)
                        abort(); /* sections stay inside the input */
                int v = cid_verify(&cid, blk.p, blk.len);

                (void)v; /* any answer is fine: verification must not fault */
                if (++n > size)
                        abort(); /* every section consumes bytes: no endless loop */
        }
        return 0;
}
