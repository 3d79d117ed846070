/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multibase: a one-character prefix naming the base, then the encoded bytes. Two families:
 * RFC 4648 bit-packing bases (base16, base32, base64, base64url; no padding except the
 * explicitly padded 'M'/'U') and big-number bases (base58btc, base36), where each leading
 * zero byte is one leading zero digit. Decoders never write past out_cap and accept only the
 * canonical form, so decode followed by encode gives back the input: left-over bits must be
 * zero, impossible lengths are refused, lower-case prefixes take lower-case digits only and
 * upper-case prefixes ('B', 'F', 'K') upper-case only. Encoders write the lower-case forms.
 * Work is bounded by the output capacity (big-number decoding is quadratic in it).
 */
#include <string.h>

#include "prsmfs/cid.h"

static const char b32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b58_alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char b36_lower[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_lower[] = "0123456789abcdef";

/* The digit value of ch, or -1. Alphabets are lower-case; upper-case bases fold to them. */
static int digit_of(const char *alpha, size_t base, char ch, bool upper)
{
        const char *hit;

        if (upper) {
                if (ch >= 'a' && ch <= 'z')
                        return -1;
                if (ch >= 'A' && ch <= 'Z')
                        ch = (char)(ch - 'A' + 'a');
        }
        hit = memchr(alpha, ch, base);
        return hit ? (int)(hit - alpha) : -1;
}

/*
 * RFC 4648 bit-packing bases (base16, base32, base64). '=' is a bad character unless pad is
 * set (base64 only), and then it must fill exactly the last 4-character quantum (§4).
 */
static int decode_bits(const char *s, size_t slen, const char *alpha, unsigned bits, bool upper,
                       bool pad, uint8_t *out, size_t cap, size_t *ret_len)
{
        uint32_t acc = 0;
        unsigned nbits = 0;
        size_t n = 0;

        if (pad) {
                size_t npad = 0;

                while (slen > 0 && s[slen - 1] == '=') {
                        slen--;
                        npad++;
                }
                if (npad != (4 - slen % 4) % 4)
                        return -EBADMSG;
        }
        for (size_t i = 0; i < slen; i++) {
                int d = digit_of(alpha, 1u << bits, s[i], upper);

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
static int decode_bignum(const char *s, size_t slen, const char *alpha, unsigned base, bool upper,
                         uint8_t *out, size_t cap, size_t *ret_len)
{
        size_t zeros = 0, n = 0;

        /*
         * Bounds the work before any arithmetic: zero digits are a byte each and k other
         * digits need more than (k - 1) * log256(b) > (k - 1) / 2 bytes, for b >= 36.
         */
        if (slen / 2 > cap + 1)
                return -E2BIG;
        while (zeros < slen && s[zeros] == alpha[0])
                zeros++;
        /* out[cap - n .. cap) holds the big-endian value being built */
        for (size_t i = zeros; i < slen; i++) {
                int d = digit_of(alpha, base, s[i], upper);
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
        if (n)
                memmove(out + zeros, out + cap - n, n);
        if (zeros)
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
        const char *p;
        size_t n;

        if (slen == 0)
                return -EBADMSG;
        p = s + 1;
        n = slen - 1;
        switch (s[0]) {
        case 'b':
        case 'B':
                return decode_bits(p, n, b32_lower, 5, s[0] == 'B', false, out, out_cap, ret_len);
        case 'z':
                return decode_bignum(p, n, b58_alpha, 58, false, out, out_cap, ret_len);
        case 'f':
        case 'F':
                return decode_bits(p, n, hex_lower, 4, s[0] == 'F', false, out, out_cap, ret_len);
        case 'k':
        case 'K':
                return decode_bignum(p, n, b36_lower, 36, s[0] == 'K', out, out_cap, ret_len);
        case 'm':
        case 'M':
                return decode_bits(p, n, b64_std, 6, false, s[0] == 'M', out, out_cap, ret_len);
        case 'u':
        case 'U':
                return decode_bits(p, n, b64_url, 6, false, s[0] == 'U', out, out_cap, ret_len);
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
