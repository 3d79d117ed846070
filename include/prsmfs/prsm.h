/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PRSM features: the instance's identity (an Ed25519 key), signed provenance records of
 * content operations, and the access ledger that royalties are computed from. The record
 * format, the exact bytes signed and the ledger's guarantees are in docs/prsm.md.
 *
 * Records and ledger counts reach the index from one background thread, in batches: a
 * caller only queues (prsm_note) or adds to atomics (prsm_counter_*), never waits for I/O.
 *
 * Thread-safety: an identity is immutable once made; struct prsm may be used from any thread.
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/cid.h"

struct index;

#define PRSM_KEY_ID_MAX 80 /* "ed25519:" + 64 hex digits + NUL fits */
#define PRSM_SIG_LEN    64
#define PRSM_HASH_HEX   65 /* 64 hex digits + NUL */

/* ---- identity (identity.c) ---- */
struct prsm_identity;

/*
 * Loads the PEM private key at path, or with create makes one there (0600) when there is
 * none. Refuses, with a one-line reason in err, a key file that is group- or world-accessible,
 * owned by another user, not a regular file, or not an Ed25519 key.
 */
_wur_ int prsm_identity_load(const char *path, bool create, char *err, size_t err_size,
                             struct prsm_identity **ret);
void prsm_identity_free(struct prsm_identity *id);
/* "ed25519:" followed by the 64 lowercase hex digits of the raw public key. Valid until free. */
const char *prsm_identity_key_id(const struct prsm_identity *id);
_wur_ int prsm_identity_sign(const struct prsm_identity *id, const void *msg, size_t len,
                             uint8_t ret_sig[PRSM_SIG_LEN]);
/* 0 when sig is key_id's signature of msg; -EKEYREJECTED when not; -EINVAL for a bad key id. */
_wur_ int prsm_verify(const char *key_id, const void *msg, size_t len,
                      const uint8_t sig[PRSM_SIG_LEN]);

/* ---- records (record.c) ---- */
/*
 * The canonical encoding of a JSON object: jansson's JSON_COMPACT | JSON_SORT_KEYS dump of
 * it without its "sig" member. Returns a new string (malloc'd) in *ret; -EBADMSG when json is
 * not one JSON object.
 */
_wur_ int prsm_canonical(const char *json, char **ret);
/* Signs the object json with id: adds "sig" (128 hex digits over prsm_canonical) and returns
 * the signed record's canonical form with its signature, a new string. */
_wur_ int prsm_record_sign(const struct prsm_identity *id, const char *json, char **ret);
/* Checks record's "sig" against its "key" member (and key_id, when not NULL, must be that
 * key): 0, -EKEYREJECTED (bad or missing signature, other key), -EBADMSG (not a record). */
_wur_ int prsm_record_verify(const char *record, const char *key_id);
/* The hex sha256 of a record's canonical form with its signature: what the next record's
 * "parent" holds. */
_wur_ int prsm_record_hash(const char *record, char ret[PRSM_HASH_HEX]);

/* A path as JSON text takes it (names are bytes; JSON strings are UTF-8): p itself when it is
 * UTF-8, else with every byte >= 0x80 as \xNN. A new string in *ret. */
_wur_ int prsm_path_text(const char *p, char **ret);

/* ---- provenance and ledger (prsm.c) ---- */
enum prsm_op {
        PRSM_OP_CREATE,
        PRSM_OP_MODIFY,
        PRSM_OP_LINK,
        PRSM_OP_RENAME,
        PRSM_OP_DELETE,
        PRSM_OP_PUBLISH,
        _PRSM_OP_MAX,
};
const char *prsm_op_name(enum prsm_op op);

struct prsm_config {
        struct index *idx;              /* borrowed */
        const struct prsm_identity *id; /* borrowed */
        const char *creator_id;         /* copied */
        bool provenance;                /* provenance_tracking */
        bool ledger;                    /* access_rewards */
        uint64_t flush_ms;              /* how often queued records and counts are written */
};

struct prsm_stats {
        uint64_t records_written, record_errors, accesses_ledgered, ledger_flushes;
};

struct prsm;

/* Loads the chain's head from the index and starts the writer thread. */
_wur_ int prsm_new(const struct prsm_config *c, struct prsm **ret);
/* Writes what is queued and counted, then stops. NULL-safe. */
void prsm_free(struct prsm *p);
const char *prsm_creator_id(const struct prsm *p);
bool prsm_has_provenance(const struct prsm *p);
void prsm_get_stats(struct prsm *p, struct prsm_stats *ret);

/* One content operation. Strings and CIDs are copied; fd (>= 0) is taken: a file whose bytes
 * the writer hashes for "sha256" (else sha256 is used when has_sha256, or unknown). */
struct prsm_event {
        enum prsm_op op;
        const char *path;          /* from the mount root */
        const char *old_path;      /* a rename's source, else NULL */
        const struct cid *old_cid; /* may be NULL */
        const struct cid *cid;     /* may be NULL */
        uint64_t size;
        bool has_sha256;
        uint8_t sha256[32];
        int fd;
        const char *creator; /* the content's creator; NULL: this instance's for create and
                                modify, else what earlier records say of the CID */
};
/* Queues a record (no I/O). p may be NULL, or have provenance off: then nothing happens. */
void prsm_note(struct prsm *p, const struct prsm_event *e);
/* Writes everything queued and counted so far before it returns (control commands). */
_wur_ int prsm_flush(struct prsm *p);

/* An access counter for one CID, valid until prsm_free; NULL when the ledger is off, p is NULL
 * or memory is short (the access is not counted). Takes a lock: call at open, not per read. */
struct prsm_counter;
struct prsm_counter *prsm_counter_get(struct prsm *p, const struct cid *cid);
/* Atomic adds; c may be NULL. */
void prsm_counter_open(struct prsm_counter *c);
void prsm_counter_bytes(struct prsm_counter *c, uint64_t n);

/* ---- PRSM content formats (formats.c): shard manifests and JSON wrappers ---- */
#define PRSM_FORMAT_JSON_MAX (64u << 20) /* largest manifest or wrapper decoded at link time */
#define PRSM_SHARDS_MAX      65536u      /* PRSM's client makes at most 1000 */

enum prsm_format {
        PRSM_FORMAT_MANIFEST = 1, /* shards reassembled */
        PRSM_FORMAT_WRAPPER = 2,  /* hex model_data / data decoded */
};

/* One piece of the shown file: bytes [offset, offset + size) are the content of the UnixFS
 * file cid (a shard), or for a wrapper 2 * size hex digits at src_off in it; sha256 is theirs
 * (decoded). */
struct prsm_part {
        struct cid cid;
        uint64_t offset, size, src_off;
        uint8_t sha256[32];
};

struct prsm_layout {
        enum prsm_format kind;
        uint64_t size;  /* of the shown file */
        bool is_hex;    /* parts are hex digits (a wrapper) */
        bool has_whole; /* whole_sha256 (a manifest's original_hash) is known */
        uint8_t whole_sha256[32];
        struct prsm_part *parts; /* owned, in file order, contiguous from 0 */
        size_t n_parts;
        char *meta; /* owned: the metadata (compact JSON object) shown as user.prsm.meta.* */
};

/*
 * Decodes PRSM JSON: a shard manifest (original_size, original_hash, shard_size and shards all
 * present) or a JSON wrapper (model_data + metadata, or data + provenance or metadata, with
 * data_hash). -ENOMSG when p is neither (not JSON, or without those members); -EBADMSG, with
 * the reason in err, for one that has them with wrong values. self is the CID of p (a
 * wrapper's part is read from it). *ret is freed with prsm_layout_done.
 */
_wur_ int prsm_format_parse(const uint8_t *p, size_t len, const struct cid *self,
                            struct prsm_layout *ret, char *err, size_t err_size);
void prsm_layout_done(struct prsm_layout *l);
/* The layout as the index keeps it (a JSON text, new string) and back; -EBADMSG for a bad one. */
_wur_ int prsm_layout_encode(const struct prsm_layout *l, char **ret);
_wur_ int prsm_layout_decode(const char *s, struct prsm_layout *ret);
/* The part holding byte off (< l->size). */
size_t prsm_layout_find(const struct prsm_layout *l, uint64_t off);
/* user.prsm.meta.KEY: the metadata member key (a string as is, else compact JSON), or with key
 * NULL the whole object; a new string in *ret. -ENODATA without that member. */
_wur_ int prsm_layout_meta(const struct prsm_layout *l, const char *key, char **ret,
                           size_t *ret_len);
/* 2 * n_bytes hex digits (either case) into n_bytes bytes; -EBADMSG for a non-digit. */
_wur_ int prsm_hex_decode(const uint8_t *hex, size_t n_bytes, uint8_t *ret);
/* "Qm" or "bafybeig" when s is a placeholder CID PRSM's client made up (that prefix followed
 * by 44 or 50 hex digits), else NULL. */
const char *prsm_cid_placeholder(const char *s);
