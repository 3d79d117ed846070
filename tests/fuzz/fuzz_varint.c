/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/cid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cursor c;
        uint64_t v;
        uint8_t out[10];

        cursor_init(&c, data, size);
        while (cid_varint_read(&c, &v) >= 0) {
                size_t n = cid_varint_write(v, out);

                /* minimal encodings only: writing back gives the same bytes */
                if (n != cid_varint_len(v) || memcmp(out, c.p + c.pos - n, n) != 0)
                        abort();
        }
        return 0;
}
