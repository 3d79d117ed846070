/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unsigned varints (multiformats): LEB128, minimal, at most 9 bytes (63 bits).
 */
#include <string.h>

#include "prsmfs/cid.h"

/* ---- varint ---- */

int cid_varint_read(struct cursor *c, uint64_t *ret)
{
        uint64_t v = 0;
        size_t i;

        for (i = 0; i < VARINT_MAX_BYTES; i++) {
                uint8_t b;

                if (c->pos + i >= c->len)
                        return -EBADMSG;
                b = c->p[c->pos + i];
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        if (b == 0 && i > 0)
                                return -EBADMSG; /* not minimal */
                        c->pos += i + 1;
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

size_t cid_varint_write(uint64_t v, uint8_t out[10])
{
        size_t n = 0;

        do {
                out[n] = (uint8_t)(v & 0x7f);
                v >>= 7;
                if (v)
                        out[n] |= 0x80;
                n++;
        } while (v);
        return n;
}

size_t cid_varint_len(uint64_t v)
{
        size_t n = 1;

        while (v >>= 7)
                n++;
        return n;
}
