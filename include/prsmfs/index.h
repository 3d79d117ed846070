/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metadata index: one SQLite database (WAL) mapping inodes to their attributes and
 * CIDs, and directories to their entries. Every metadata answer the file system gives comes
 * from here; nothing in this module touches the network.
 *
 * Thread-safety: an index may be used from any thread; calls are serialised internally.
 * Inode numbers are SQLite rowids; the root directory is INDEX_ROOT_INO.
 */
#pragma once

#include <time.h>

#include "prsmfs/base.h"
#include "prsmfs/cid.h"

#define INDEX_ROOT_INO       1
#define INDEX_SCHEMA_VERSION 10
#define INDEX_NAME_MAX       255
#define INDEX_INSTANCE_LEN   32 /* hex digits of an index's instance id */

enum index_state {
        INDEX_STATE_CLEAN = 0, /* content is cid (or empty) */
        INDEX_STATE_LAZY = 1,  /* a linked directory not listed yet: the entries its cid lists
                                  are in the index only if a lookup or a listing batch put
                                  them there */
        INDEX_STATE_DIRTY = 2, /* local changes not yet uploaded */
};

/* Inode flags (schema 2). */
enum {
        INDEX_FLAG_RO = 1 << 0,      /* immutable content (the .ipfs/ tree): no writes, long
                                        kernel cache timeouts */
        INDEX_FLAG_HIDDEN = 1 << 1,  /* not listed by readdir, found by lookup (.ipfs) */
        INDEX_FLAG_CHANGED = 1 << 2, /* a lazy directory whose content changed below an entry
                                        a lookup linked: its cid still lists the rest, but is
                                        no longer its content; dropped when it is listed */
        INDEX_FLAG_PRSM = 1 << 3,    /* a PRSM shard manifest or JSON wrapper (cid) shown as
                                        the file it describes: read-only, its layout in
                                        index_prsm_format_get (schema 10) */
};

/*
 * An entry of a linked directory whose root block could not be fetched when the directory
 * was listed has no type yet: mode holds permission bits only ((mode & S_IFMT) == 0), cid is
 * the entry's, size the link's Tsize. index_resolve gives it its type once the block comes.
 */

/*
 * File times are struct timespec (seconds and nanoseconds of CLOCK_REALTIME), not int64
 * nanoseconds: those span only 1677-2262, and a time a user sets (touch -d 2400-01-01, an
 * archive from 1960) must read back as it was set. tv_nsec is always in [0, 1e9).
 */
struct index_attr {
        uint64_t ino;
        uint32_t mode; /* st_mode, type bits included */
        uint32_t uid, gid;
        uint32_t nlink;
        uint64_t size;
        uint64_t rdev; /* st_rdev of a device node (schema 6), else 0 */
        struct timespec atime, mtime, ctime;
        uint32_t state;  /* enum index_state */
        uint32_t flags;  /* INDEX_FLAG_* */
        uint64_t staged; /* generation of the staging file holding the content, 0 = none */
        bool has_cid;
        struct cid cid;
};

struct index;

/* Opens (creating and migrating as needed) the database at path. */
_wur_ int index_open(const char *path, struct index **ret);
void index_free(struct index *idx);
/* This index's instance id: INDEX_INSTANCE_LEN lowercase hex digits, random, made when the
 * index was created (or migrated to schema 5) and never changed. Names what belongs to this
 * index outside state_dir (its staging directory). Valid until index_free. */
const char *index_instance(const struct index *idx);

/* -ENOENT when the inode does not exist. */
_wur_ int index_getattr(struct index *idx, uint64_t ino, struct index_attr *ret);
/* -ENOENT when parent has no entry called name. */
_wur_ int index_lookup(struct index *idx, uint64_t parent, const char *name,
                       struct index_attr *ret);

/*
 * Calls fn for each entry of dir after the cookie `after` (0 = from the start), in a stable
 * order; each entry's cookie is passed to fn so the caller can resume. fn returns 0 to go on,
 * > 0 to stop (the entry was not consumed), < 0 to abort with that error.
 */
typedef int (*index_dirent_fn)(const char *name, const struct index_attr *attr, uint64_t cookie,
                               void *userdata);
_wur_ int index_readdir(struct index *idx, uint64_t dir, uint64_t after, index_dirent_fn fn,
                        void *userdata);

/* Symlink target into buf (NUL-terminated); -ENAMETOOLONG if it does not fit. */
_wur_ int index_readlink(struct index *idx, uint64_t ino, char *buf, size_t size);

/* Creates an inode and its entry in parent in one transaction; -EEXIST if name is taken. */
struct index_new_node {
        uint32_t mode;
        uint32_t uid, gid;
        uint64_t size;
        bool has_mtime; /* else mtime (and atime) are the creation time */
        struct timespec mtime;
        uint32_t state;
        uint32_t flags;
        const struct cid *cid; /* may be NULL */
        const char *target;    /* symlinks only */
        uint64_t rdev;         /* device nodes only */
};
_wur_ int index_mknode(struct index *idx, uint64_t parent, const char *name,
                       const struct index_new_node *n, struct index_attr *ret);

/*
 * Fills a lazily linked directory, one batch of its entries per call: in one transaction,
 * creates every child (an entry whose name is invalid or taken, by a duplicate or an earlier
 * lookup, is skipped and counted in *ret_skipped) and adds the subdirectories' links to dir;
 * the last batch (is_last) also marks it INDEX_STATE_CLEAN. Neither dir's times nor the CIDs
 * above it change: the entries were its content all along. When dir is no longer lazy
 * (someone listed it first) nothing is inserted and 0 is returned. Both counters optional.
 */
struct index_child {
        const char *name;
        struct index_new_node n;
};
_wur_ int index_expand(struct index *idx, uint64_t dir, const struct index_child *children,
                       size_t n, bool is_last, size_t *ret_added, size_t *ret_skipped);
/* Gives an inode without a type (see above) what its root block says: n's mode (with its
 * type), size, state, target and mtime; a directory links its parent. An inode that has a type
 * by now is left as it is. *ret (optional) is the inode afterwards. */
_wur_ int index_resolve(struct index *idx, uint64_t ino, const struct index_new_node *n,
                        struct index_attr *ret);

/* Sets a file's size (a linked file whose real size its root block told). */
_wur_ int index_set_size(struct index *idx, uint64_t ino, uint64_t size);
/* The stored layout of the file with root cid (malloc'd into *ret; -ENOENT: none), and
 * storing one (replacing the old). The bytes are unixfs_layout_encode's; the index does not
 * look inside. */
_wur_ int index_layout_get(struct index *idx, const struct cid *cid, uint8_t **ret,
                           size_t *ret_len);
_wur_ int index_layout_put(struct index *idx, const struct cid *cid, const uint8_t *data,
                           size_t len);

/* True when name may be a directory entry: 1..255 bytes, no '/', not "." or "..". */
bool index_name_ok(const char *name);

/* ---- namespace changes (write path); each is one transaction ---- */

/* Removes the entry parent/name (dir: rmdir semantics, the directory must be empty: a lazy
 * one counts as not empty). The inode stays, with its link count lowered, until
 * index_drop_orphans: an open file may still be read. *ret is the inode after the change. */
_wur_ int index_unlink(struct index *idx, uint64_t parent, const char *name, bool dir,
                       struct index_attr *ret);

#define INDEX_RENAME_NOREPLACE 1u /* RENAME_NOREPLACE */
/* rename(2) in one transaction: replaces a target file, or an empty target directory;
 * -ENOTDIR/-EISDIR/-ENOTEMPTY/-EEXIST as POSIX says; -EINVAL for flags other than NOREPLACE.
 * ret_replaced->ino is the replaced inode (its link count lowered) or 0. */
_wur_ int index_rename(struct index *idx, uint64_t parent, const char *name, uint64_t newparent,
                       const char *newname, unsigned flags, struct index_attr *ret_replaced);
/* A hard link newparent/newname to ino (not a directory: -EPERM). */
_wur_ int index_link(struct index *idx, uint64_t ino, uint64_t newparent, const char *newname,
                     struct index_attr *ret);

enum {
        INDEX_SET_MODE = 1 << 0, /* permission bits only; the type stays */
        INDEX_SET_UID = 1 << 1,
        INDEX_SET_GID = 1 << 2,
        INDEX_SET_SIZE = 1 << 3,
        INDEX_SET_ATIME = 1 << 4,
        INDEX_SET_MTIME = 1 << 5,
        INDEX_SET_CTIME = 1 << 6, /* else ctime becomes now */
};
/* -EINVAL for a time whose tv_nsec is not in [0, 1e9). */
struct index_setattr {
        unsigned set; /* INDEX_SET_* */
        uint32_t mode, uid, gid;
        uint64_t size;
        struct timespec atime, mtime, ctime;
};
_wur_ int index_setattr(struct index *idx, uint64_t ino, const struct index_setattr *s,
                        struct index_attr *ret);

#define INDEX_XATTR_CREATE  1 /* XATTR_CREATE: -EEXIST if present */
#define INDEX_XATTR_REPLACE 2 /* XATTR_REPLACE: -ENODATA if absent */
_wur_ int index_xattr_set(struct index *idx, uint64_t ino, const char *name, const void *value,
                          size_t size, int flags);
/* -ENODATA when absent. */
_wur_ int index_xattr_remove(struct index *idx, uint64_t ino, const char *name);
/* Deletes inodes no entry links to any more (ino 0: all of them, at start-up). */
_wur_ int index_drop_orphans(struct index *idx, uint64_t ino);
/* A counter of content changes under directories (entries made, removed, renamed; files
 * staged or committed): each clears the CIDs of the directories above the change. */
uint64_t index_tree_changes(struct index *idx);
/* Records cid as the content of directory ino (a publish built it), unless the tree changed
 * since index_tree_changes returned since. */
_wur_ int index_set_dir_cid(struct index *idx, uint64_t ino, const struct cid *cid, uint64_t since);

/* ---- staged content and upload jobs (write path) ---- */
/*
 * A closed file's content is in staging file `gen`: in one transaction the inode takes its
 * size and mtime, state DIRTY and staged = gen, and an upload job (ino, gen) replaces any
 * older one; its ctime becomes ctime (the last change to the content) unless it is later
 * already (a chmod since). After this returns the close is durable.
 */
_wur_ int index_stage(struct index *idx, uint64_t ino, uint64_t gen, uint64_t size,
                      const struct timespec *mtime, const struct timespec *ctime);
/* The upload of (ino, gen) is pinned as cid: if gen is still the inode's staged content it
 * becomes CLEAN with that CID (1), else nothing changes but the job row goes (0). With
 * INDEX_COMMIT_PINNED (prsmfs pinned cid) the root is recorded as by index_pin_add in the
 * same transaction, and the old content's unpin is owed if this was its last reference. */
#define INDEX_COMMIT_PINNED 1u
_wur_ int index_commit_upload(struct index *idx, uint64_t ino, uint64_t gen, const struct cid *cid,
                              uint64_t size, unsigned flags);
struct index_job {
        uint64_t ino, gen, size;
};
typedef int (*index_job_fn)(const struct index_job *job, void *userdata);
/* Calls fn for every upload job, oldest first (not under the lock). */
_wur_ int index_jobs(struct index *idx, index_job_fn fn, void *userdata);
/* prsmctl uploads forget: drops the upload job of generation gen (generations are unique);
 * its inode keeps its staged content, which is not uploaded unless written again. -ENOENT
 * when there is no such job. */
_wur_ int index_job_forget(struct index *idx, uint64_t gen);

/* ---- pins (schema 8) ---- */
/*
 * The roots prsmfs pinned itself: uploaded files' roots and published trees' roots. A root is
 * referenced while an inode outside .ipfs/ has it as its content (hard links are one inode;
 * identical files are several inodes with one CID) or it is a published root (until
 * index_pin_unpublish). When its last reference goes, in the same transaction (an upload's
 * commit replacing it, an inode dropped), its unpin becomes owed; content prsmfs did not pin
 * (linked CIDs, roots pinned before schema 8) is never in this table and never unpinned.
 *
 *   HELD --last reference gone--> OWED --index_pin_claim--> SENT --unpinned--> GONE
 *   OWED --referenced again--> HELD          SENT --referenced, pinned again--> HELD
 *
 * SENT: an unpin may have reached the nodes; while nothing refers to the root it is unpinned
 * (again), once something does it is pinned again. A root pinned again while SENT or GONE
 * (an upload of the same bytes whose pin may have landed before that unpin) goes to SENT.
 * GONE rows are kept INDEX_PIN_GONE_KEEP_SEC for that, then pruned.
 */
enum index_pin_state {
        INDEX_PIN_HELD = 0,
        INDEX_PIN_OWED = 1,
        INDEX_PIN_SENT = 2,
        INDEX_PIN_GONE = 3,
};
#define INDEX_PIN_GONE_KEEP_SEC (24 * 3600)
#define INDEX_PIN_PUBLISHED     1u /* index_pin_add: a published root (prsmctl publish) */

/* Records that prsmfs pinned cid (after the pin, never before); owed at once when nothing
 * refers to it (an upload cancelled after its pin, or committed too late to apply). */
_wur_ int index_pin_add(struct index *idx, const struct cid *cid, unsigned flags);
/* cid is no longer a published root (prsmctl unpin): -ENOENT when it was none; 1 when its
 * unpin is owed now, 0 when files still have it as their content (it stays while they do). */
_wur_ int index_pin_unpublish(struct index *idx, const struct cid *cid);
/* Up to max roots whose unpin or re-pin is owed (OWED or SENT), into ret; their number. */
_wur_ int index_pins_owed(struct index *idx, struct cid *ret, size_t max);

enum index_pin_action {
        INDEX_PIN_NOTHING = 0, /* settled (referenced again, or not owed any more) */
        INDEX_PIN_UNPIN = 1,   /* unpin it everywhere, then index_pin_done */
        INDEX_PIN_REPIN = 2,   /* pin it again (replicas), then index_pin_done */
};
/* Before the network: what cid needs now (an OWED root becomes SENT, durably, before its
 * unpin is sent). Returns an enum index_pin_action or -errno. */
_wur_ int index_pin_claim(struct index *idx, const struct cid *cid);
/* After action succeeded: SENT becomes GONE (unpinned, nothing refers to it) or HELD (pinned
 * again, referenced); if the references changed meanwhile it stays SENT for another claim.
 * Returns 1 when settled, 0 when it stays owed. */
_wur_ int index_pin_done(struct index *idx, const struct cid *cid, enum index_pin_action action);
/* Numbers of roots held and owed (OWED or SENT). */
_wur_ int index_pin_counts(struct index *idx, uint64_t *ret_held, uint64_t *ret_owed);
/* Drops GONE rows older than INDEX_PIN_GONE_KEEP_SEC (done at open too). */
_wur_ int index_pins_prune(struct index *idx);

/* ---- model loading ---- */
/* A copy by reference (copy_file_range of a whole file): regular file ino now has cid as its
 * content (size bytes, state CLEAN, times mtime/ctime), in one transaction that drops its
 * staged content's upload job; directories above lose their CIDs, the old root's unpin is
 * owed if this was its last reference. -ENOENT: no such regular file outside .ipfs/. */
_wur_ int index_set_content(struct index *idx, uint64_t ino, const struct cid *cid, uint64_t size,
                            const struct timespec *mtime, const struct timespec *ctime);
/* One name of ino (any of its hard links) into buf; -ENOENT when it has none. */
_wur_ int index_name_of(struct index *idx, uint64_t ino, char *buf, size_t size);

/* ---- PRSM provenance records and access ledger (schema 9) ---- */
/*
 * The index stores records as the prsm module hands them (signed JSON text) and never looks
 * inside; path and cid are the record's own, copied for lookups.
 */
struct index_prov_row {
        uint64_t seq;          /* the record's sequence number (unique, increasing) */
        const char *path;      /* from the mount root, "/a/b" */
        const struct cid *cid; /* the content's after the operation, may be NULL */
        const char *record;
};
/* Appends n records in one transaction (all or none). */
_wur_ int index_prov_append(struct index *idx, const struct index_prov_row *rows, size_t n);
/* The record with the highest seq (malloc'd into *ret_record); -ENOENT when there is none. */
_wur_ int index_prov_last(struct index *idx, uint64_t *ret_seq, char **ret_record);
/* The latest record whose cid is cid, or whose path is path (either may be NULL); -ENOENT. */
_wur_ int index_prov_latest(struct index *idx, const struct cid *cid, const char *path,
                            char **ret_record);
/* Calls fn for up to max records with seq > after, in seq order, under the index's lock: fn
 * must not call the index. Returns the number of records passed to fn, or fn's error. */
typedef int (*index_prov_fn)(uint64_t seq, const char *record, void *userdata);
_wur_ int index_prov_list(struct index *idx, uint64_t after, size_t max, index_prov_fn fn,
                          void *userdata);
/* Overwrites the stored text of record seq (tests and repairs only: it breaks the record's
 * signature); -ENOENT when there is none. */
_wur_ int index_prov_replace(struct index *idx, uint64_t seq, const char *record);

struct index_access {
        struct cid cid;
        uint64_t opens, bytes;
};
/* Adds one flush of the access counters, batch being unique per flush: in one transaction,
 * and a (batch, cid) already stored is not added again. */
_wur_ int index_ledger_add(struct index *idx, uint64_t batch, int64_t time_sec,
                           const struct index_access *rows, size_t n);
/* Sums of the ledger per CID over the rows flushed at or after since_sec, into a malloc'd
 * array (*ret, *ret_n). */
_wur_ int index_ledger_sum(struct index *idx, int64_t since_sec, struct index_access **ret,
                           size_t *ret_n);
/* A path of ino from the root ("/" for the root, "/a/b"; a hard-linked file: one of its
 * names), NUL-terminated in buf; -ENOENT when ino is linked nowhere, -ENAMETOOLONG. */
_wur_ int index_path(struct index *idx, uint64_t ino, char *buf, size_t size);

/* Totals for statfs. */
_wur_ int index_totals(struct index *idx, uint64_t *ret_inodes, uint64_t *ret_bytes);

/* Extended attributes stored in the index (user.*). get: -ENODATA when absent; returns the
 * value length, copying at most size bytes (size 0: just the length). */
_wur_ int index_xattr_get(struct index *idx, uint64_t ino, const char *name, void *value,
                          size_t size);
/* NUL-separated names into list; returns the total length (size 0: just the length). */
_wur_ int index_xattr_list(struct index *idx, uint64_t ino, char *list, size_t size);

/* Runs PRAGMA integrity_check; 0 when "ok", -EBADMSG otherwise. */
_wur_ int index_check(struct index *idx);

/* ---- PRSM content formats (schema 10) ---- */
/* The layout (prsm_layout_encode's text) of the PRSM content cid, stored and read back (a new
 * string in *ret; -ENOENT: none). */
_wur_ int index_prsm_format_put(struct index *idx, const struct cid *cid, const char *layout);
_wur_ int index_prsm_format_get(struct index *idx, const struct cid *cid, char **ret);

/* ---- settings kept with the namespace (table meta) ---- */
/* Sets key to value (NULL: removes it); -EPERM for "instance", which never changes. */
_wur_ int index_meta_set(struct index *idx, const char *key, const char *value);
/* The value of key (a new string in *ret); -ENOENT when it is not set. */
_wur_ int index_meta_get(struct index *idx, const char *key, char **ret);
