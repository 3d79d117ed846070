/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dag-pb and UnixFS: decode and canonical encode, file layouts (which leaf holds which
 * bytes), a streaming balanced DAG builder that gives the same CIDs as Kubo/js-ipfs `add`,
 * directories (basic and HAMT-sharded) and CAR v1. Pure code: no I/O; blocks come in and go
 * out through callbacks. Every decoder reads bounded, hostile bytes.
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/buf.h"
#include "prsmfs/cid.h"

#define UNIXFS_MAX_LINKS       65536 /* per dag-pb node: a 2 MiB block holds fewer real links */
#define UNIXFS_MAX_DEPTH       64    /* file trees and HAMTs: a cycle or absurd depth is refused */
#define UNIXFS_MAX_LEAVES      (1u << 22) /* pieces per layout: 4 TiB at 1 MiB leaves, ~0.9 GB */
#define UNIXFS_HAMT_FANOUT     256
#define UNIXFS_HAMT_THRESHOLD  262144
#define UNIXFS_HAMT_MAX_LEVELS 8 /* one byte of the 64-bit name hash per level */
/* What one directory listing may walk: a HAMT whose sub-shard links repeat one CID would
 * otherwise visit 256^8 (cached) blocks. A 20M-entry HAMT (the largest real directories)
 * has about 6M shards and 1.5 GB of shard blocks. */
#define UNIXFS_MAX_SHARDS      (1u << 23)
#define UNIXFS_MAX_DIR_ENTRIES (1u << 25)
#define UNIXFS_MAX_DIR_BYTES   (4ull << 30)

/* ---- protobuf varint (10 bytes, non-minimal allowed) ---- */
/* -EBADMSG when truncated or over 64 bits; the cursor advances only on success. */
_wur_ int unixfs_pb_varint_read(struct cursor *c, uint64_t *ret);
size_t unixfs_pb_varint_write(uint64_t v, uint8_t out[10]);

/* ---- dag-pb ---- */
struct unixfs_pb_link {
        struct cid cid;
        struct bytes_view name; /* borrowed from the block; empty when absent */
        bool has_name;
        uint64_t tsize;
        bool has_tsize;
};

struct unixfs_pb_node {
        struct unixfs_pb_link *links; /* owned array */
        size_t n_links;
        struct bytes_view data; /* borrowed from the block */
        bool has_data;
};

/*
 * Decodes a dag-pb block (ipfs.md §7.3 strictness; Data before Links accepted, links kept in
 * block order). Links' names and data borrow from p; free the link array with
 * unixfs_pb_node_done. -EBADMSG malformed, -E2BIG over CID_MAX_BLOCK bytes or
 * UNIXFS_MAX_LINKS links, -ENOMEM.
 */
_wur_ int unixfs_pb_decode(const uint8_t *p, size_t len, struct unixfs_pb_node *ret);
void unixfs_pb_node_done(struct unixfs_pb_node *n);
/* Canonical encoding (links in the given order: Hash, Name if present, Tsize if present;
 * then Data if present) appended to out. -E2BIG when out would outgrow its maximum. */
_wur_ int unixfs_pb_encode(const struct unixfs_pb_node *n, struct buf *out);

/* ---- UnixFS Data ---- */
enum unixfs_type {
        UNIXFS_RAW = 0,
        UNIXFS_DIRECTORY = 1,
        UNIXFS_FILE = 2,
        UNIXFS_METADATA = 3,
        UNIXFS_SYMLINK = 4,
        UNIXFS_HAMT_SHARD = 5,
};

struct unixfs_data {
        enum unixfs_type type;
        struct bytes_view data; /* borrowed */
        bool has_data;
        uint64_t filesize;
        bool has_filesize;
        uint64_t *blocksizes; /* owned */
        size_t n_blocksizes;
        uint64_t hash_type;
        bool has_hash_type;
        uint64_t fanout;
        bool has_fanout;
        uint32_t mode;
        bool has_mode;
        int64_t mtime_sec;
        bool has_mtime;
        uint32_t mtime_nsec; /* 0 = absent */
};

/* UnixFS 1.5 metadata as Kubo's `add --preserve-mode --preserve-mtime` stores it: mode is the
 * permission bits (07777, stored even when they are 0644 or 0755, as Kubo does; js-ipfs leaves
 * those two out), mtime whole seconds (any int64) plus nanoseconds, stored only when not 0. */
struct unixfs_meta {
        uint32_t mode;
        bool has_mode;
        int64_t mtime_sec;
        uint32_t mtime_nsec; /* < 1e9 */
        bool has_mtime;
};

/* Decodes UnixFS Data (fields in any order). data borrows from p; blocksizes is owned (free
 * with unixfs_data_done). -EBADMSG on a missing or unknown Type, an unknown field, a repeated
 * singular field, mode over 32 bits, mtime without seconds or with nanos 0 or >= 1e9; -E2BIG
 * over UNIXFS_MAX_LINKS blocksizes. Per-type rules are unixfs_node_decode's. */
_wur_ int unixfs_data_decode(const uint8_t *p, size_t len, struct unixfs_data *ret);
void unixfs_data_done(struct unixfs_data *d);
/* Kubo's encoding: fields in field-number order, blocksizes unpacked, mtime seconds as a
 * (10-byte when negative) two's-complement varint, nanos only when non-zero. */
_wur_ int unixfs_data_encode(const struct unixfs_data *d, struct buf *out);
/* Sets d's mode and mtime fields from meta: present as meta says, absent when meta is NULL. */
void unixfs_data_set_meta(struct unixfs_data *d, const struct unixfs_meta *meta);

/* A decoded block: raw codec, or dag-pb with its UnixFS Data validated for its type. */
struct unixfs_node {
        struct cid cid;
        bool is_raw;           /* raw codec (or identity raw): bytes = the whole block */
        struct bytes_view raw; /* raw: the block */
        struct unixfs_pb_node pb;
        struct unixfs_data fs;
};

/* Borrows block for the node's lifetime. -EBADMSG on anything not valid UnixFS (no Data;
 * File/Raw: blocksizes count != links or a named child; Symlink with links; HAMT: fanout not a
 * power of two in 8..1024, hashType not 0x22, more links than fanout; Metadata),
 * -EOPNOTSUPP for codecs other than raw and dag-pb. */
_wur_ int unixfs_node_decode(const struct cid *cid, const uint8_t *block, size_t len,
                             struct unixfs_node *ret);
void unixfs_node_done(struct unixfs_node *n);

/*
 * Block source for walks: returns a malloc'ed, verified copy of the block in *ret (caller
 * frees) or -errno. Identity CIDs are resolved by the walkers themselves.
 */
typedef int (*unixfs_fetch_fn)(const struct cid *cid, uint8_t **ret, size_t *ret_len,
                               void *userdata);

/*
 * The root of a file with meta in it, as Kubo keeps mode and mtime (in the root node only):
 * a dag-pb root gets its Data's mode and mtime replaced (set as meta says, absent otherwise;
 * links and everything else kept); a raw root (one raw leaf, or an empty file) becomes a
 * dag-pb File leaf holding the same bytes, as Kubo's `files chmod` wraps one. The new block
 * (CID version cid_version, sha2-256) is appended to ret_block; *ret_tsize is its cumulative
 * size. Borrows block. -EBADMSG when block is not a UnixFS file root, -E2BIG when the new
 * block would exceed CID_MAX_BLOCK, -EOPNOTSUPP for other codecs.
 */
_wur_ int unixfs_file_set_meta(const struct cid *root, const uint8_t *block, size_t len,
                               const struct unixfs_meta *meta, unsigned cid_version,
                               struct buf *ret_block, struct cid *ret_cid, uint64_t *ret_tsize);

/* ---- file layout ---- */
/*
 * A file's layout is the flat, offset-ordered list of the pieces that hold its bytes, built
 * once per file so that a read of [off, off+len) finds its leaves by binary search instead
 * of re-walking the DAG. It can be built eagerly (unixfs_layout_build: every inner node and
 * every dag-pb leaf fetched through a callback) or lazily (unixfs_layout_open on the root
 * block, then unixfs_layout_resolve on the pending pieces a read actually touches): a dag-pb
 * child is "pending" until its block is seen, because only its bytes say whether it is a leaf
 * or a subtree; raw children are resolved from their parent's blocksizes without a fetch.
 * Sizes are checked all the way: blocksizes must add up to filesize, a resolved child must
 * hold exactly the bytes its parent claims, depth and piece count are bounded (which also
 * ends cycles). A layout is not thread-safe: serialise resolve with readers.
 */
struct unixfs_leaf {
        uint64_t offset;   /* of the piece's first byte in the file */
        uint64_t size;     /* bytes of file content in the piece (never 0) */
        struct cid cid;    /* block holding them (identity CID: the block is its digest) */
        uint32_t data_off; /* where they start inside the block (dag-pb leaf: Data.Data) */
        uint8_t depth;     /* of the block in the DAG, root = 0 */
        bool is_pending;   /* dag-pb block not decoded yet: a leaf or a whole subtree */
};

struct unixfs_layout {
        struct unixfs_leaf *leaves; /* owned, in file order, contiguous offsets from 0 */
        size_t n_leaves;
        size_t n_pending;
        size_t cap;
        uint64_t size; /* of the file */
};

/* Walks the whole file DAG under root, fetching every dag-pb block below it; no piece is left
 * pending. -EISDIR when root is not a file, -EBADMSG on an inconsistent DAG, -E2BIG over the
 * limits, or fetch's error. */
_wur_ int unixfs_layout_build(const struct cid *root, unixfs_fetch_fn fetch, void *userdata,
                              struct unixfs_layout *ret);
/* Lazy layout from the root's verified block (identity CID: block may be NULL); dag-pb
 * children stay pending. Borrows block for the call only. Errors as above. */
_wur_ int unixfs_layout_open(const struct cid *root, const uint8_t *block, size_t len,
                             struct unixfs_layout *ret);
/* Replaces pending piece i by what its verified block holds: itself as a leaf, or its
 * children (raw ones resolved, dag-pb ones pending). Returns the number of pieces now at i..
 * (0 only for an all-empty subtree), -EINVAL if i is not pending, -EBADMSG if the block does
 * not hold exactly the bytes the parent claims; the layout is unchanged on error. */
_wur_ int unixfs_layout_resolve(struct unixfs_layout *l, size_t i, const uint8_t *block,
                                size_t len);
void unixfs_layout_done(struct unixfs_layout *l);
/* The layout as bytes to store (malloc'd into *ret), and back: -EBADMSG when the bytes are not
 * a consistent layout (contiguous pieces adding up to the size, valid CIDs), -ENOMEM. */
_wur_ int unixfs_layout_encode(const struct unixfs_layout *l, uint8_t **ret, size_t *ret_len);
_wur_ int unixfs_layout_decode(const uint8_t *p, size_t len, struct unixfs_layout *ret);
/* Index of the piece holding byte off (off < size; 0 for an empty file), binary search. */
size_t unixfs_layout_find(const struct unixfs_layout *l, uint64_t off);
/* The file bytes of resolved piece lf inside its (verified) block: -EBADMSG when the block
 * does not hold them (a raw leaf must be exactly lf->size bytes), -EINVAL if pending. */
_wur_ int unixfs_leaf_slice(const struct unixfs_leaf *lf, const uint8_t *block, size_t len,
                            struct bytes_view *ret);

/* ---- builder ---- */
struct unixfs_params {
        unsigned cid_version; /* 0 or 1 */
        bool raw_leaves;
        size_t chunk_size; /* 1 .. CID_MAX_BLOCK (dag-pb leaves: 256 bytes less): no block
                              we make may exceed 2 MiB, which Kubo and bitswap refuse */
        size_t max_links;  /* per file node, >= 2 */
};

enum unixfs_profile {
        UNIXFS_PROFILE_DEFAULT, /* unixfs-v1-2025: v1, raw leaves, 1 MiB, 1024 links */
        UNIXFS_PROFILE_LEGACY,  /* unixfs-v0-2015: v0, dag-pb leaves, 256 KiB, 174 links */
};

void unixfs_params_profile(enum unixfs_profile p, struct unixfs_params *ret);
/* -EINVAL for a CID version other than 0/1, a chunk size out of range, max_links < 2. */
_wur_ int unixfs_params_check(const struct unixfs_params *p);

/* Called for each finished block as soon as it is complete, children before parents (the
 * upload order); cid and block are valid for the call only. Return < 0 to abort: the error
 * sticks and every later builder call returns it. */
typedef int (*unixfs_emit_fn)(const struct cid *cid, const uint8_t *block, size_t len,
                              void *userdata);

/*
 * Streaming balanced builder (boxo's layout, §13.4): bytes in any pieces, fixed-size chunks
 * (never an empty one; an empty file is one empty leaf). Memory: one chunk plus max_links
 * links per tree level. Not thread-safe; one builder per file.
 */
struct unixfs_builder;
_wur_ int unixfs_builder_new(const struct unixfs_params *p, unixfs_emit_fn emit, void *userdata,
                             struct unixfs_builder **ret);
/* -E2BIG past UNIXFS_MAX_DEPTH levels, or emit's error. */
_wur_ int unixfs_builder_write(struct unixfs_builder *b, const void *p, size_t len);
/* Flushes everything; *ret_size is the file size, *ret_tsize the cumulative DAG size (what
 * `add` reports as Size; both optional). Call once; then only unixfs_builder_free. */
_wur_ int unixfs_builder_finish(struct unixfs_builder *b, struct cid *ret_root, uint64_t *ret_size,
                                uint64_t *ret_tsize);
void unixfs_builder_free(struct unixfs_builder *b);
/*
 * The root CID of a file made of n (>= 1) raw leaves of leaf_len bytes each in one File node,
 * as the builder (and `add`) makes it when n <= max_links: the leaf itself when n == 1.
 * Borrows leaves (their CIDs are not checked). -EINVAL for n == 0 or an unknown version.
 */
_wur_ int unixfs_file_root_of_leaves(const struct cid *leaves, size_t n, size_t leaf_len,
                                     unsigned cid_version, struct cid *ret);

/* ---- directories ---- */
struct unixfs_dirent {
        const char *name; /* borrowed; NUL-terminated */
        size_t name_len;
        struct cid cid;
        uint64_t tsize;
};

/* Directory profile: which HAMT size estimate, and the CID version of directory nodes. */
struct unixfs_dir_params {
        unsigned cid_version;
        bool block_estimate; /* v1-2025 'block' estimation; false = legacy 'links' */
        size_t max_links;    /* also shard above this many entries (Kubo
                                Import.UnixFSDirectoryMaxLinks); 0 = no limit (both profiles) */
};
void unixfs_dir_params_profile(enum unixfs_profile p, struct unixfs_dir_params *ret);

/*
 * Builds a directory from entries (any order: sorted in place by name bytes; duplicate names
 * -EEXIST), sharded as a HAMT when Kubo would (names over 255 bytes: -ENAMETOOLONG there),
 * emitting every block it makes (sub-shards before their parents; not the entries' blocks).
 * *ret_tsize is the directory's cumulative size (block + Σ entry Tsize).
 */
_wur_ int unixfs_dir_build(const struct unixfs_dir_params *p, struct unixfs_dirent *entries,
                           size_t n, unixfs_emit_fn emit, void *userdata, struct cid *ret_root,
                           uint64_t *ret_tsize);
/* The same with meta (may be NULL) in the directory node, or in the root shard of a HAMT
 * (as boxo: sub-shards carry none); the 'block' size estimate counts it. */
_wur_ int unixfs_dir_build_meta(const struct unixfs_dir_params *p, const struct unixfs_meta *meta,
                                struct unixfs_dirent *entries, size_t n, unixfs_emit_fn emit,
                                void *userdata, struct cid *ret_root, uint64_t *ret_tsize);

/*
 * A resumable walk over a directory's entries (basic, or HAMT: shards fetched as reached, depth
 * first, in link order), holding one block per HAMT level. Not thread-safe.
 */
struct unixfs_dir_iter;
_wur_ int unixfs_dir_iter_new(const struct cid *dir, struct unixfs_dir_iter **ret);
void unixfs_dir_iter_free(struct unixfs_dir_iter *it);
/* Lowers the walk's budget (UNIXFS_MAX_SHARDS, _DIR_ENTRIES, _DIR_BYTES by default). */
void unixfs_dir_iter_set_limits(struct unixfs_dir_iter *it, uint64_t max_shards,
                                uint64_t max_entries, uint64_t max_bytes);
/*
 * The next entry: 1 with *ret set (its name valid until the next call), 0 after the last.
 * fetch's error is returned as it is and the walk stays where it was (call again to retry);
 * -ENOTDIR (dir is no directory), -EBADMSG (malformed HAMT: bad link name, sub-shard that is
 * no shard, other fanout, too deep) and -E2BIG (over budget) end the walk: every later call
 * returns them. Names are unchecked bytes (may be empty, contain '/' or NUL).
 */
_wur_ int unixfs_dir_iter_next(struct unixfs_dir_iter *it, unixfs_fetch_fn fetch, void *fetch_ud,
                               struct unixfs_dirent *ret);
/* Up to max CIDs of the sub-shards the walk will load next, nearest first (to prefetch). */
size_t unixfs_dir_iter_upcoming(const struct unixfs_dir_iter *it, struct cid *ret, size_t max);
/* Sub-shards loaded so far. */
uint64_t unixfs_dir_iter_shards(const struct unixfs_dir_iter *it);

/* Calls fn for every entry of a directory (the walk above, to its end). fn returns < 0 to
 * abort. Entry names are NUL-terminated copies valid for the call only. */
typedef int (*unixfs_dirent_fn)(const struct unixfs_dirent *e, void *userdata);
_wur_ int unixfs_dir_list(const struct cid *dir, unixfs_fetch_fn fetch, void *fetch_ud,
                          unixfs_dirent_fn fn, void *userdata);
/* Looks one name up (HAMT: only the shards on its path). -ENOENT when absent, -ENOTDIR if
 * dir is not a directory, -EBADMSG for a malformed HAMT (bad sub-shard, depth, fanout). */
_wur_ int unixfs_dir_lookup(const struct cid *dir, const char *name, unixfs_fetch_fn fetch,
                            void *fetch_ud, struct cid *ret_cid, uint64_t *ret_tsize);

/* murmur3 x64_128 (seed 0), first 64-bit word, as boxo's HAMT uses it. */
uint64_t unixfs_murmur3_64(const void *p, size_t len);

/* ---- CAR v1 ---- */
/*
 * Reader over borrowed input that may arrive in pieces: when a call returns -EAGAIN, keep the
 * bytes from unixfs_car_consumed() on, append more, and hand them back with unixfs_car_feed();
 * at the true end of input, -EAGAIN means the CAR was truncated. Blocks are not verified here.
 */
#define UNIXFS_CAR_MAX_HEADER 4096
#define UNIXFS_CAR_MAX_ROOTS  4

struct unixfs_car_reader {
        struct cursor c; /* over the current input */
        bool header_done;
        struct cid roots[UNIXFS_CAR_MAX_ROOTS]; /* the first ones listed */
        size_t n_roots;                         /* roots kept (more are checked, not kept) */
        uint64_t offset;                        /* stream offset of the current input */
};

/* Starts a reader on the first bytes and reads the header: 0, -EAGAIN when more bytes are
 * needed (then feed and call unixfs_car_next), -EBADMSG if malformed, -EOPNOTSUPP for CARv2. */
_wur_ int unixfs_car_init(struct unixfs_car_reader *r, const uint8_t *p, size_t len);
/* Replaces the input by p (borrowed until the next feed): the unconsumed bytes, then more. */
void unixfs_car_feed(struct unixfs_car_reader *r, const uint8_t *p, size_t len);
/* Bytes of the current input consumed by the header and whole sections. */
static inline size_t unixfs_car_consumed(const struct unixfs_car_reader *r)
{
        return r->c.pos;
}
/* Next section: 1 with *ret_cid and *ret_block (borrowed from the input) set, 0 at a clean
 * end of the input, -EAGAIN if the input ends inside the header or a section, -EBADMSG if
 * malformed (the reader stays at the bad section). */
_wur_ int unixfs_car_next(struct unixfs_car_reader *r, struct cid *ret_cid,
                          struct bytes_view *ret_block);
/* Writer: header with one root, then sections, appended to out. */
_wur_ int unixfs_car_write_header(const struct cid *root, struct buf *out);
_wur_ int unixfs_car_write_block(const struct cid *cid, const uint8_t *p, size_t len,
                                 struct buf *out);
