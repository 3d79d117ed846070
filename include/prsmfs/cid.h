/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multiformats: unsigned varint, multibase, multihash and CIDs (v0 and v1).
 * Pure code, no I/O, no allocation. A struct cid holds the binary CID inline, so it can be
 * copied by value, compared with memcmp on (len, bytes) and used as a map key.
 * Limits (Kubo's): digests of 20..128 bytes for hashing functions, identity digests <= 128,
 * and only the hash functions of boxo's verifcid allow list (sha2-384, for one, is refused).
 */
#pragma once

#include "prsmfs/base.h"

/* Binary CIDv1: version(1) codec(<=9) mh-code(<=9) mh-len(<=2) digest(<=128). */
#define CID_MAX_BIN 160
/* Longest string we ever format: base16 of CID_MAX_BIN plus prefix and NUL. */
#define CID_MAX_STR      (2 * CID_MAX_BIN + 2)
#define CID_MAX_DIGEST   128
#define CID_MIN_DIGEST   20
#define CID_MAX_BLOCK    (2u * 1024 * 1024) /* largest block we fetch or produce */
#define VARINT_MAX_BYTES 9                  /* multiformats varints: 63 bits */

enum cid_codec {
        CID_CODEC_RAW = 0x55,
        CID_CODEC_DAG_PB = 0x70,
        CID_CODEC_DAG_CBOR = 0x71,
        CID_CODEC_LIBP2P_KEY = 0x72,
};

enum cid_mh {
        CID_MH_IDENTITY = 0x00,
        CID_MH_SHA1 = 0x11,
        CID_MH_SHA2_256 = 0x12,
        CID_MH_SHA2_512 = 0x13,
        CID_MH_SHA3_512 = 0x14,
        CID_MH_SHA3_256 = 0x16,
        CID_MH_KECCAK_256 = 0x1b,
        CID_MH_BLAKE3 = 0x1e,
        CID_MH_SHA2_384 = 0x20,
        CID_MH_MURMUR3_X64_64 = 0x22,
        CID_MH_BLAKE2B_256 = 0xb220,
        CID_MH_BLAKE2B_512 = 0xb240,
};

enum cid_base {
        CID_BASE_BASE32,    /* 'b', lowercase, no padding: the CIDv1 default */
        CID_BASE_BASE58BTC, /* 'z' */
        CID_BASE_BASE16,    /* 'f' */
        CID_BASE_BASE36,    /* 'k' */
        _CID_BASE_MAX,
};

struct cid {
        uint8_t version;    /* 0 or 1 */
        uint8_t len;        /* bytes used in bin */
        uint8_t digest_off; /* offset of the digest in bin */
        uint8_t digest_len;
        uint64_t codec; /* CID_CODEC_DAG_PB for v0 */
        uint64_t mh_code;
        uint8_t bin[CID_MAX_BIN]; /* the binary CID (for v0: the 34-byte multihash) */
};

/* ---- varint (multiformats: minimal, at most 9 bytes) ---- */
/* -EBADMSG on truncation, non-minimal encoding or more than 9 bytes. */
_wur_ int cid_varint_read(struct cursor *c, uint64_t *ret);
/* Writes at most VARINT_MAX_BYTES (+1 for values >= 2^63) bytes; returns the length. */
size_t cid_varint_write(uint64_t v, uint8_t out[10]);
size_t cid_varint_len(uint64_t v);

/* ---- multibase ---- */
/*
 * Decodes a prefixed multibase string ('b','B','z','f','F','k','K','m','u' at least).
 * Writes at most out_cap bytes; -E2BIG if the result would not fit, -EBADMSG on a bad
 * character or length, -EOPNOTSUPP on an unknown prefix.
 */
_wur_ int cid_multibase_decode(const char *s, size_t slen, uint8_t *out, size_t out_cap,
                               size_t *ret_len);
/* Encodes with the base's prefix and a trailing NUL; -E2BIG if out_cap is too small. */
_wur_ int cid_multibase_encode(enum cid_base base, const uint8_t *p, size_t len, char *out,
                               size_t out_cap, size_t *ret_len);
/* Bare base58btc (no prefix), as used by CIDv0 strings. Same errors as above. */
_wur_ int cid_base58_decode(const char *s, size_t slen, uint8_t *out, size_t out_cap,
                            size_t *ret_len);
_wur_ int cid_base58_encode(const uint8_t *p, size_t len, char *out, size_t out_cap,
                            size_t *ret_len);

/* ---- CIDs ---- */
/* Parses a whole binary CID (exactly len bytes). -EBADMSG malformed, -EOPNOTSUPP for a
 * hash function off the allow list or a reserved CID version (2, 3), -E2BIG for a digest
 * length outside the limits (too short or too long). */
_wur_ int cid_from_bytes(const void *p, size_t len, struct cid *ret);
/* Parses a binary CID embedded in a stream (CAR sections, dag-pb links) and advances. */
_wur_ int cid_read(struct cursor *c, struct cid *ret);
/* Parses a CID string: bare "Qm…" CIDv0 or any supported multibase CIDv1. */
_wur_ int cid_parse(const char *s, size_t slen, struct cid *ret);
/* Formats v0 as bare base58btc, v1 in the given base. Returns length (without NUL). */
_wur_ int cid_format(const struct cid *c, enum cid_base base, char *out, size_t out_cap);
/* Default string form: v0 "Qm…", v1 base32 "b…". buf must hold CID_MAX_STR. */
const char *cid_to_string(const struct cid *c, char buf[CID_MAX_STR]);

/* Builds a CID from parts; -EINVAL for v0 with anything but dag-pb + sha2-256/32, a version
 * over 1, a code >= 2^63 or digest_len > CID_MAX_DIGEST; otherwise cid_from_bytes' errors. */
_wur_ int cid_make(unsigned version, uint64_t codec, uint64_t mh_code, const uint8_t *digest,
                   size_t digest_len, struct cid *ret);
/* Hashes data with sha2-256 (or embeds it for CID_MH_IDENTITY) into a CID. -EOPNOTSUPP for
 * other hash functions, -E2BIG for identity data over CID_MAX_DIGEST. */
_wur_ int cid_compute(unsigned version, uint64_t codec, uint64_t mh_code, const void *data,
                      size_t len, struct cid *ret);

bool cid_equal(const struct cid *a, const struct cid *b);
/* Same multihash (what Kubo's blockstore keys on), whatever the version and codec. */
bool cid_same_multihash(const struct cid *a, const struct cid *b);
int cid_compare(const struct cid *a, const struct cid *b); /* total order on binary form */
_wur_ int cid_to_v1(const struct cid *c, struct cid *ret);
/* -EINVAL unless dag-pb + sha2-256/32. */
_wur_ int cid_to_v0(const struct cid *c, struct cid *ret);
static inline struct bytes_view cid_digest(const struct cid *c)
{
        return (struct bytes_view){ .p = c->bin + c->digest_off, .len = c->digest_len };
}
static inline bool cid_is_identity(const struct cid *c)
{
        return c->mh_code == CID_MH_IDENTITY;
}

/* ---- block verification ---- */
/*
 * 0 when data hashes to c's multihash (identity: data equals the digest). Computes sha2-256
 * (also truncated digests, as go-multihash allows) and dbl-sha2-256. -EILSEQ on a mismatch,
 * -EOPNOTSUPP for a hash we cannot compute, -E2BIG for data > CID_MAX_BLOCK.
 */
_wur_ int cid_verify(const struct cid *c, const void *data, size_t len);
