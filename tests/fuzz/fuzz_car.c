/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CAR v1 reader: the whole input at once, then the same input fed in small pieces the way a
 * streaming HTTP body arrives. Both must see the same sections (same bytes of the input) and
 * end the same way; sections stay inside the input; every section consumes bytes.
 */
#include <stdlib.h>

#include "prsmfs/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SECTIONS 4096

struct section {
        struct cid cid;
        struct bytes_view blk;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct section whole[MAX_SECTIONS];
        struct unixfs_car_reader rd;
        struct bytes_view blk;
        struct cid cid;
        size_t n = 0, k = 0, have, step;
        int r, end;

        /* all at once */
        r = unixfs_car_init(&rd, data, size);
        if (r == 0)
                while ((r = unixfs_car_next(&rd, &cid, &blk)) == 1) {
                        if (blk.p < data || blk.p + blk.len > data + size)
                                abort(); /* sections stay inside the input */
                        if (n == MAX_SECTIONS || n > size)
                                return 0; /* every section consumes bytes: n <= size */
                        int v = cid_verify(&cid, blk.p, blk.len);

                        (void)v; /* any answer is fine: verification must not fault */
                        whole[n++] = (struct section){ .cid = cid, .blk = blk };
                }
        end = r;

        /* in pieces of 1..64 bytes, keeping only the unconsumed tail each time */
        step = 1 + (size ? data[size - 1] % 64 : 0);
        have = MIN(step, size);
        r = unixfs_car_init(&rd, data, have);
        if (r == 0)
                r = unixfs_car_next(&rd, &cid, &blk);
        for (;;) {
                if ((r == -EAGAIN || r == 0) && have < size) {
                        size_t base = (size_t)rd.offset + unixfs_car_consumed(&rd);

                        have = MIN(have + step, size);
                        unixfs_car_feed(&rd, data + base, have - base);
                } else if (r == 1) {
                        if (k >= n || !cid_equal(&cid, &whole[k].cid) || blk.p != whole[k].blk.p ||
                            blk.len != whole[k].blk.len)
                                abort();
                        k++;
                } else
                        break;
                r = unixfs_car_next(&rd, &cid, &blk);
        }
        if (r != end || k != n)
                abort();
        return 0;
}
