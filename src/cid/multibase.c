/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multibase: RFC 4648 bit-packing bases (base16, base32, base64) and big-number bases
 * (base58btc, base36). Decoders never write past out_cap and refuse non-canonical input
 * (left-over bits that are not zero).
 */
#include <string.h>

#include "prsmfs/cid.h"

/* ---- multibase ---- */

static const char b32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b58_alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char b36_lower[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_lower[] = "0123456789abcdef";

static int digit_of(const char *alpha, size_t base, char ch, bool fold_case)
{
        for (size_t i = 0; i < base; i++) {
                char a = alpha[i];

                if (a == ch || (fold_case && a >= 'a' && a <= 'z' && a - 'a' + 'A' == ch))
                        return (int)i;
        }
        return -1;
}

/* RFC 4648 bit-packing bases (base16, base32, base64); padding rejected unless allowed. */
static int decode_bits(const char *s, size_t slen, const char *alpha, unsigned bits, bool fold_case,
                       bool allow_pad, uint8_t *out, size_t cap, size_t *ret_len)
{
        uint32_t acc = 0;
        unsigned nbits = 0;
        size_t n = 0;

        if (allow_pad)
                while (slen > 0 && s[slen - 1] == '=')
                        slen--;
        for (size_t i = 0; i < slen; i++) {
                int d = digit_of(alpha, 1u << bits, s[i], fold_case);

                if (d < 0)
                        return -EBADMSG;
                acc = (acc << bits) | (uint32_t)d;
                nbits += bits;
                if (nbits >= 8) {
                        nbits -= 8;
                        if (n >= cap)
                                return -E2BIG;
                        out[n++] = (uint8_t)(acc >> nbits);
                        acc &= (1u << nbits) - 1;
                }
        }
        /* leftover bits must be fewer than one symbol and all zero (canonical) */
        if (nbits >= bits || acc != 0)
                return -EBADMSG;
        *ret_len = n;
        return 0;
}

static int encode_bits(const uint8_t *p, size_t len, const char *alpha, unsigned bits, char *out,
                       size_t cap, size_t *ret_len)
{
        uint32_t acc = 0;
        unsigned nbits = 0;
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                acc = (acc << 8) | p[i];
                nbits += 8;
                while (nbits >= bits) {
                        nbits -= bits;
                        if (n + 1 >= cap)
                                return -E2BIG;
                        out[n++] = alpha[(acc >> nbits) & ((1u << bits) - 1)];
                }
                acc &= (1u << nbits) - 1;
        }
        if (nbits) {
                if (n + 1 >= cap)
                        return -E2BIG;
                out[n++] = alpha[(acc << (bits - nbits)) & ((1u << bits) - 1)];
        }
        out[n] = '\0';
        *ret_len = n;
        return 0;
}

/* Big-number bases (base58btc, base36): each leading zero byte is one leading zero digit. */
static int decode_bignum(const char *s, size_t slen, const char *alpha, unsigned base,
                         bool fold_case, uint8_t *out, size_t cap, size_t *ret_len)
{
        size_t zeros = 0, n = 0;

        /* a base-b string of k digits needs at least k*log256(b) > k/2 bytes */
        if (slen > 2 * cap + 2)
                return -E2BIG;
        while (zeros < slen && s[zeros] == alpha[0])
                zeros++;
        /* out[cap - n .. cap) holds the big-endian value being built */
        for (size_t i = zeros; i < slen; i++) {
                int d = digit_of(alpha, base, s[i], fold_case);
                uint32_t carry;

                if (d < 0)
                        return -EBADMSG;
                carry = (uint32_t)d;
                for (size_t j = 0; j < n; j++) {
                        carry += (uint32_t)out[cap - 1 - j] * base;
                        out[cap - 1 - j] = (uint8_t)carry;
                        carry >>= 8;
                }
                while (carry) {
                        if (n >= cap)
                                return -E2BIG;
                        out[cap - 1 - n++] = (uint8_t)carry;
                        carry >>= 8;
                }
        }
        if (zeros + n > cap)
                return -E2BIG;
        memmove(out + zeros, out + cap - n, n);
        memset(out, 0, zeros);
        *ret_len = zeros + n;
        return 0;
}

static int encode_bignum(const uint8_t *p, size_t len, const char *alpha, unsigned base, char *out,
                         size_t cap, size_t *ret_len)
{
        size_t zeros = 0, n = 0;

        while (zeros < len && p[zeros] == 0)
                zeros++;
        /* digits are built little-endian in out[zeros..], then reversed */
        for (size_t i = zeros; i < len; i++) {
                uint32_t carry = p[i];

                for (size_t j = 0; j < n; j++) {
                        carry += (uint32_t)(uint8_t)out[zeros + j] << 8;
                        out[zeros + j] = (char)(carry % base);
                        carry /= base;
                }
                while (carry) {
                        if (zeros + n + 1 >= cap)
                                return -E2BIG;
                        out[zeros + n++] = (char)(carry % base);
                        carry /= base;
                }
        }
        if (zeros + n + 1 > cap)
                return -E2BIG;
        for (size_t i = 0; i < zeros; i++)
                out[i] = alpha[0];
        for (size_t i = 0; i < n / 2; i++) {
                char t = out[zeros + i];

                out[zeros + i] = out[zeros + n - 1 - i];
                out[zeros + n - 1 - i] = t;
        }
        for (size_t i = 0; i < n; i++)
                out[zeros + i] = alpha[(uint8_t)out[zeros + i]];
        out[zeros + n] = '\0';
        *ret_len = zeros + n;
        return 0;
}

int cid_base58_decode(const char *s, size_t slen, uint8_t *out, size_t out_cap, size_t *ret_len)
{
        return decode_bignum(s, slen, b58_alpha, 58, false, out, out_cap, ret_len);
}

int cid_base58_encode(const uint8_t *p, size_t len, char *out, size_t out_cap, size_t *ret_len)
{
        return encode_bignum(p, len, b58_alpha, 58, out, out_cap, ret_len);
}

int cid_multibase_decode(const char *s, size_t slen, uint8_t *out, size_t out_cap, size_t *ret_len)
{
        if (slen == 0)
                return -EBADMSG;
        switch (s[0]) {
        case 'b':
                return decode_bits(s + 1, slen - 1, b32_lower, 5, false, false, out, out_cap,
                                   ret_len);
        case 'B':
                /* upper-case alphabet: fold to the lower one */
                for (size_t i = 1; i < slen; i++)
                        if (s[i] >= 'a' && s[i] <= 'z')
                                return -EBADMSG;
                return decode_bits(s + 1, slen - 1, b32_lower, 5, true, false, out, out_cap,
                                   ret_len);
        case 'z':
                return decode_bignum(s + 1, slen - 1, b58_alpha, 58, false, out, out_cap, ret_len);
        case 'f':
                return decode_bits(s + 1, slen - 1, hex_lower, 4, false, false, out, out_cap,
                                   ret_len);
        case 'F':
                for (size_t i = 1; i < slen; i++)
                        if (s[i] >= 'a' && s[i] <= 'f')
                                return -EBADMSG;
                return decode_bits(s + 1, slen - 1, hex_lower, 4, true, false, out, out_cap,
                                   ret_len);
        case 'k':
                return decode_bignum(s + 1, slen - 1, b36_lower, 36, false, out, out_cap, ret_len);
        case 'K':
                for (size_t i = 1; i < slen; i++)
                        if (s[i] >= 'a' && s[i] <= 'z')
                                return -EBADMSG;
                return decode_bignum(s + 1, slen - 1, b36_lower, 36, true, out, out_cap, ret_len);
        case 'm':
                return decode_bits(s + 1, slen - 1, b64_std, 6, false, false, out, out_cap,
                                   ret_len);
        case 'M':
                return decode_bits(s + 1, slen - 1, b64_std, 6, false, true, out, out_cap, ret_len);
        case 'u':
                return decode_bits(s + 1, slen - 1, b64_url, 6, false, false, out, out_cap,
                                   ret_len);
        case 'U':
                return decode_bits(s + 1, slen - 1, b64_url, 6, false, true, out, out_cap, ret_len);
        default:
                return -EOPNOTSUPP;
        }
}

int cid_multibase_encode(enum cid_base base, const uint8_t *p, size_t len, char *out,
                         size_t out_cap, size_t *ret_len)
{
        static const char prefix[_CID_BASE_MAX] = {
                [CID_BASE_BASE32] = 'b',
                [CID_BASE_BASE58BTC] = 'z',
                [CID_BASE_BASE16] = 'f',
                [CID_BASE_BASE36] = 'k',
        };
        size_t n;
        int r;

        if ((unsigned)base >= _CID_BASE_MAX)
                return -EINVAL;
        if (out_cap < 2)
                return -E2BIG;
        out[0] = prefix[base];
        switch (base) {
        case CID_BASE_BASE32:
                r = encode_bits(p, len, b32_lower, 5, out + 1, out_cap - 1, &n);
                break;
        case CID_BASE_BASE58BTC:
                r = encode_bignum(p, len, b58_alpha, 58, out + 1, out_cap - 1, &n);
                break;
        case CID_BASE_BASE16:
                r = encode_bits(p, len, hex_lower, 4, out + 1, out_cap - 1, &n);
                break;
        case CID_BASE_BASE36:
                r = encode_bignum(p, len, b36_lower, 36, out + 1, out_cap - 1, &n);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        *ret_len = n + 1;
        return 0;
}
