/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CIDv0/v1: parse (binary, in a stream, or as a string), format, compare, convert, build, and
 * verify a block against its CID. A struct cid keeps the canonical binary form inline; the
 * other fields are views of it, so equality and order are those of the bytes.
 *
 * What is accepted is what Kubo accepts (boxo verifcid): the allow-listed hash functions, a
 * digest of 20..128 bytes (identity: 0..128), minimal varints, version 1 only after the bare
 * sha2-256 multihash that is a CIDv0. A CIDv0 is exactly `12 20` + 32 bytes and is written as
 * bare base58btc; wrapped in a multibase it is refused (spec: there is no "CIDv18"). Anything
 * else is -EBADMSG, a hash function off the list is -EOPNOTSUPP and a digest length outside
 * the limits is -E2BIG. Verification computes sha2-256 (also truncated to 20..31 bytes, as
 * go-multihash allows) and dbl-sha2-256 with base's hash_sha256 and compares identity digests
 * with the data; other allowed functions parse but do not verify (-EOPNOTSUPP).
 * No allocation, no I/O, no logging: every function is safe from any thread.
 */
#include "prsmfs/cid.h"

#include <string.h>

#include "prsmfs/hash.h"

#define MH_SHA3_384     0x15
#define MH_SHA3_224     0x17
#define MH_SHAKE_256    0x19
#define MH_KECCAK_224   0x1a
#define MH_KECCAK_384   0x1c
#define MH_KECCAK_512   0x1d
#define MH_DBL_SHA2_256 0x56
/* blake2b-8 .. blake2b-512 and blake2s-8 .. blake2s-256: the code's low byte is bytes. */
#define MH_BLAKE2B_MIN 0xb201
#define MH_BLAKE2S_MIN 0xb241
#define MH_BLAKE2S_MAX 0xb260

/* boxo verifcid's allow list: the hash functions Kubo stores and serves blocks for. */
static bool mh_allowed(uint64_t code)
{
        switch (code) {
        case CID_MH_IDENTITY:
        case CID_MH_SHA1: /* "not really secure but still useful" (git interop) */
        case CID_MH_SHA2_256:
        case CID_MH_SHA2_512:
        case MH_SHA3_224:
        case CID_MH_SHA3_256:
        case MH_SHA3_384:
        case CID_MH_SHA3_512:
        case MH_SHAKE_256:
        case MH_DBL_SHA2_256:
        case MH_KECCAK_224:
        case CID_MH_KECCAK_256:
        case MH_KECCAK_384:
        case MH_KECCAK_512:
        case CID_MH_BLAKE3:
                return true;
        default:
                /* blake2b/blake2s with at least 160 bits of output */
                return (code >= MH_BLAKE2B_MIN + 19 && code <= CID_MH_BLAKE2B_512) ||
                       (code >= MH_BLAKE2S_MIN + 19 && code <= MH_BLAKE2S_MAX);
        }
}

/* Parses the multihash at c into ret's mh fields (bin/len already hold the prefix). */
static int read_multihash(struct cursor *c, struct cid *ret)
{
        size_t start = c->pos;
        uint64_t code, dlen;
        struct bytes_view d;
        int r;

        r = cid_varint_read(c, &code);
        if (r < 0)
                return r;
        r = cid_varint_read(c, &dlen);
        if (r < 0)
                return r;
        if (!mh_allowed(code))
                return -EOPNOTSUPP; /* sha2-384, murmur3 (not a content hash), unknown */
        if (dlen > CID_MAX_DIGEST || (code != CID_MH_IDENTITY && dlen < CID_MIN_DIGEST))
                return -E2BIG;
        r = cursor_get_bytes(c, (size_t)dlen, &d);
        if (r < 0)
                return r;
        if (ret->len + (c->pos - start) > CID_MAX_BIN)
                return -E2BIG;
        memcpy(ret->bin + ret->len, c->p + start, c->pos - start);
        ret->digest_off = (uint8_t)(ret->len + (d.p - (c->p + start)));
        ret->len = (uint8_t)(ret->len + (c->pos - start));
        ret->digest_len = (uint8_t)dlen;
        ret->mh_code = code;
        return 0;
}

int cid_read(struct cursor *c, struct cid *ret)
{
        struct cursor save = *c;
        struct cid cid = { 0 };
        uint64_t version, codec;
        int r;

        if (cursor_left(c) >= 2 && c->p[c->pos] == 0x12 && c->p[c->pos + 1] == 0x20) {
                /* CIDv0: a bare sha2-256 multihash */
                cid.version = 0;
                cid.codec = CID_CODEC_DAG_PB;
                r = read_multihash(c, &cid);
                if (r < 0)
                        goto fail;
                *ret = cid;
                return 0;
        }
        r = cid_varint_read(c, &version);
        if (r < 0)
                goto fail;
        if (version != 1) {
                r = version == 2 || version == 3 ? -EOPNOTSUPP : -EBADMSG;
                goto fail;
        }
        r = cid_varint_read(c, &codec);
        if (r < 0)
                goto fail;
        cid.version = 1;
        cid.codec = codec;
        cid.len = (uint8_t)(c->pos - save.pos);
        memcpy(cid.bin, save.p + save.pos, cid.len);
        r = read_multihash(c, &cid);
        if (r < 0)
                goto fail;
        *ret = cid;
        return 0;
fail:
        *c = save;
        return r;
}

int cid_from_bytes(const void *p, size_t len, struct cid *ret)
{
        struct cursor c;
        struct cid cid;
        int r;

        cursor_init(&c, p, len);
        r = cid_read(&c, &cid);
        if (r < 0)
                return r;
        if (!cursor_eof(&c))
                return -EBADMSG;
        *ret = cid;
        return 0;
}

int cid_parse(const char *s, size_t slen, struct cid *ret)
{
        uint8_t bin[CID_MAX_BIN]; /* the bound of struct cid: anything longer is no CID */
        size_t len;
        int r;

        if (slen == 46 && s[0] == 'Q' && s[1] == 'm') {
                r = cid_base58_decode(s, slen, bin, sizeof(bin), &len);
                if (r < 0)
                        return r == -E2BIG ? -EBADMSG : r;
                if (len != 34 || bin[0] != 0x12 || bin[1] != 0x20)
                        return -EBADMSG;
                return cid_from_bytes(bin, len, ret);
        }
        /* 'Q' and '1' are reserved, never multibase prefixes: bare base58 gone wrong */
        if (slen == 0 || s[0] == 'Q' || s[0] == '1')
                return -EBADMSG;
        r = cid_multibase_decode(s, slen, bin, sizeof(bin), &len);
        if (r < 0)
                return r == -E2BIG ? -EBADMSG : r;
        if (len == 0 || bin[0] == 0x12)
                return -EBADMSG; /* a CIDv0 must not be multibase-wrapped */
        return cid_from_bytes(bin, len, ret);
}

int cid_format(const struct cid *c, enum cid_base base, char *out, size_t out_cap)
{
        size_t n;
        int r;

        if (c->version == 0)
                r = cid_base58_encode(c->bin, c->len, out, out_cap, &n);
        else
                r = cid_multibase_encode(base, c->bin, c->len, out, out_cap, &n);
        return r < 0 ? r : (int)n;
}

const char *cid_to_string(const struct cid *c, char buf[CID_MAX_STR])
{
        if (cid_format(c, CID_BASE_BASE32, buf, CID_MAX_STR) < 0)
                buf[0] = '\0'; /* cannot happen: CID_MAX_STR fits every base */
        return buf;
}

int cid_make(unsigned version, uint64_t codec, uint64_t mh_code, const uint8_t *digest,
             size_t digest_len, struct cid *ret)
{
        uint8_t bin[CID_MAX_BIN];
        size_t n = 0;

        /* varints carry 63 bits; bigger codes would not read back */
        if (version > 1 || digest_len > CID_MAX_DIGEST || codec >> 63 || mh_code >> 63)
                return -EINVAL;
        if (version == 0 &&
            (codec != CID_CODEC_DAG_PB || mh_code != CID_MH_SHA2_256 || digest_len != 32))
                return -EINVAL;
        if (version == 1) {
                n += cid_varint_write(1, bin + n);
                n += cid_varint_write(codec, bin + n);
        }
        n += cid_varint_write(mh_code, bin + n);
        n += cid_varint_write(digest_len, bin + n);
        if (n + digest_len > sizeof(bin))
                return -E2BIG;
        if (digest_len)
                memcpy(bin + n, digest, digest_len);
        return cid_from_bytes(bin, n + digest_len, ret);
}

int cid_compute(unsigned version, uint64_t codec, uint64_t mh_code, const void *data, size_t len,
                struct cid *ret)
{
        uint8_t d[HASH_SHA256_LEN];

        if (mh_code == CID_MH_IDENTITY)
                return len > CID_MAX_DIGEST ? -E2BIG
                                            : cid_make(version, codec, mh_code, data, len, ret);
        if (mh_code != CID_MH_SHA2_256)
                return -EOPNOTSUPP;
        hash_sha256(data, len, d);
        return cid_make(version, codec, mh_code, d, sizeof(d), ret);
}

bool cid_equal(const struct cid *a, const struct cid *b)
{
        return a->len == b->len && memcmp(a->bin, b->bin, a->len) == 0;
}

bool cid_same_multihash(const struct cid *a, const struct cid *b)
{
        size_t ha = cid_varint_len(a->mh_code) + cid_varint_len(a->digest_len);
        size_t hb = cid_varint_len(b->mh_code) + cid_varint_len(b->digest_len);

        return a->mh_code == b->mh_code && a->digest_len == b->digest_len &&
               memcmp(a->bin + a->digest_off - ha, b->bin + b->digest_off - hb,
                      ha + a->digest_len) == 0;
}

int cid_compare(const struct cid *a, const struct cid *b)
{
        int r = memcmp(a->bin, b->bin, MIN(a->len, b->len));

        if (r)
                return r < 0 ? -1 : 1;
        return (a->len > b->len) - (a->len < b->len);
}

int cid_to_v1(const struct cid *c, struct cid *ret)
{
        struct bytes_view d = cid_digest(c);

        return cid_make(1, c->codec, c->mh_code, d.p, d.len, ret);
}

int cid_to_v0(const struct cid *c, struct cid *ret)
{
        struct bytes_view d = cid_digest(c);

        return cid_make(0, c->codec, c->mh_code, d.p, d.len, ret);
}

int cid_verify(const struct cid *c, const void *data, size_t len)
{
        struct bytes_view want = cid_digest(c);
        uint8_t d[HASH_SHA256_LEN], once[HASH_SHA256_LEN];

        if (len > CID_MAX_BLOCK)
                return -E2BIG;
        switch (c->mh_code) {
        case CID_MH_IDENTITY:
                if (len != want.len || (len > 0 && memcmp(data, want.p, len) != 0))
                        return -EILSEQ;
                return 0;
        case CID_MH_SHA2_256:
                hash_sha256(data, len, d);
                break;
        case MH_DBL_SHA2_256:
                hash_sha256(data, len, once);
                hash_sha256(once, sizeof(once), d);
                break;
        default:
                return -EOPNOTSUPP;
        }
        /* go-multihash truncates to the requested length; a longer one cannot be sha2-256 */
        if (want.len > sizeof(d))
                return -EOPNOTSUPP;
        return memcmp(d, want.p, want.len) == 0 ? 0 : -EILSEQ;
}
