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
