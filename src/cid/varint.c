/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unsigned varints as multiformats uses them (CID versions and codecs, multihash codes and
 * lengths): LEB128, least-significant group first, at most 9 bytes (63 bits) and minimal, so
 * every value has exactly one encoding and a CID's bytes are canonical. Protobuf varints (up
 * to 10 bytes, not required to be minimal) are a different thing and live in unixfs.
 * The reader goes through a bounds-checked cursor and moves it only on success.
 */
#include <string.h>

#include "prsmfs/cid.h"

int cid_varint_read(struct cursor *c, uint64_t *ret)
{
        uint64_t v = 0;

        for (size_t i = 0; i < VARINT_MAX_BYTES; i++) {
                uint8_t b;

                if (c->pos + i >= c->len)
                        return -EBADMSG; /* truncated */
                b = c->p[c->pos + i];
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (b & 0x80)
                        continue;
                /* a last group of 0 after others is padding: only 0 itself is a lone 00 */
                if (b == 0 && i > 0)
                        return -EBADMSG;
                c->pos += i + 1;
                *ret = v;
                return 0;
        }
        return -EBADMSG; /* a 10th byte would be needed: over 63 bits */
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
