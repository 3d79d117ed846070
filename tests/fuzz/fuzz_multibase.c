/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/cid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t out[512];
        char back[2 * sizeof(out) + 8];
        size_t n, m;
        int base = -1;

        if (cid_multibase_decode((const char *)data, size, out, sizeof(out), &n) < 0)
                return 0;
        switch (data[0]) {
        case 'b':
                base = CID_BASE_BASE32;
                break;
        case 'z':
                base = CID_BASE_BASE58BTC;
                break;
        case 'f':
                base = CID_BASE_BASE16;
                break;
        case 'k':
                base = CID_BASE_BASE36;
                break;
        default:
                return 0;
        }
        /* canonical decoders: re-encoding gives back the input */
        if (cid_multibase_encode((enum cid_base)base, out, n, back, sizeof(back), &m) < 0 ||
            m != size || memcmp(back, data, size) != 0)
                abort();
        return 0;
}
