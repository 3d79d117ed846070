/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multibase decoding of arbitrary strings. Decoders are canonical, so whatever decodes must
 * come back unchanged from the encoder of its base (case-folded for 'B', 'F', 'K'), and the
 * bytes must survive encode -> decode in every base we encode. Bare base58 (CIDv0 strings)
 * is held to the same rule. Any mismatch aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/cid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* base16 of the largest output plus prefix and NUL */
#define OUT_MAX 512
#define STR_MAX (2 * OUT_MAX + 2)

static int base_of(char prefix)
{
        switch (prefix) {
        case 'b':
        case 'B':
                return CID_BASE_BASE32;
        case 'z':
                return CID_BASE_BASE58BTC;
        case 'f':
        case 'F':
                return CID_BASE_BASE16;
        case 'k':
        case 'K':
                return CID_BASE_BASE36;
        default:
                return -1; /* base64 variants: decode only */
        }
}

/* enc is the encoder's lower-case output; an upper-case input is compared folded. */
static bool same_text(const char *enc, const uint8_t *in, size_t n, bool upper)
{
        for (size_t i = 0; i < n; i++) {
                char y = (char)in[i];

                if (upper && y >= 'A' && y <= 'Z')
                        y = (char)(y - 'A' + 'a');
                if (enc[i] != y)
                        return false;
        }
        return true;
}

static void all_bases(const uint8_t *p, size_t n)
{
        static char s[STR_MAX];
        static uint8_t back[OUT_MAX];

        for (int b = 0; b < _CID_BASE_MAX; b++) {
                size_t slen, m;

                if (cid_multibase_encode((enum cid_base)b, p, n, s, sizeof(s), &slen) < 0 ||
                    slen != strlen(s) ||
                    cid_multibase_decode(s, slen, back, sizeof(back), &m) < 0 || m != n ||
                    (n && memcmp(back, p, n) != 0))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t out[OUT_MAX];
        static char s[STR_MAX];
        size_t n, m;
        int base;

        if (cid_base58_decode((const char *)data, size, out, sizeof(out), &n) >= 0) {
                if (cid_base58_encode(out, n, s, sizeof(s), &m) < 0 || m != size ||
                    memcmp(s, data, size) != 0)
                        abort();
        }
        if (cid_multibase_decode((const char *)data, size, out, sizeof(out), &n) < 0)
                return 0;
        all_bases(out, n);
        base = base_of((char)data[0]);
        if (base < 0)
                return 0;
        if (cid_multibase_encode((enum cid_base)base, out, n, s, sizeof(s), &m) < 0 || m != size ||
            !same_text(s + 1, data + 1, size - 1, data[0] >= 'A' && data[0] <= 'Z'))
                abort();
        return 0;
}
