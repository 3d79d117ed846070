/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file system: FUSE low-level operations answered from the index (metadata) and, as
 * the read and write paths land, the store and the uploader. Inode numbers are index rowids.
 */
#pragma once

#include <fuse_lowlevel.h>

#include "prsmfs/base.h"
#include "prsmfs/config.h"
#include "prsmfs/index.h"
#include "prsmfs/store.h"
#include "prsmfs/unixfs.h"

struct fs;

/* Counters (metrics will export them). */
struct fs_stats {
        uint64_t reads, read_bytes, read_errors;
        uint64_t readahead_blocks; /* queued by readahead */
        uint64_t layouts_loaded;   /* file layouts read from the index at open */
        uint64_t layouts_stored;   /* and written to it at the last close */
        uint64_t links, expansions, entries_skipped;
        uint64_t uploads_committed;
        uint64_t unpins, repins, pin_failures;  /* by the pin worker */
        uint64_t prefetches_on_open;            /* jobs prefetch_on_open started */
        uint64_t copies_linked;                 /* copy_file_range answered by a link */
        uint64_t prefetches_by_tensors;         /* prefetch_on_open jobs that parsed a model
                                                   header and queued by its tensor table */
        uint64_t prsm_parts_ok, prsm_parts_bad; /* PRSM shards (wrapped data) whose sha256 was
                                                   checked: matched, did not */
        uint64_t follow_switches;               /* follow: roots switched to */
        uint64_t follow_rejected;               /* ... roots refused (no directory, no fetch) */
        uint64_t read_wait_max_ns; /* the longest a read that had to fetch waited, from when it
                                      came to its answer (FUSE's view; timeout bounds it) */
};

/*
 * The uploader as the fs sees it (the daemon adapts the upload module): submit queues the
 * staged file at path as job id and calls fs_upload_done when it is pinned (or cancelled);
 * cancel drops a job whose content was replaced. Without an uploader, closed files stay
 * staged (readable, durable) until one is set.
 */
/* Calls emit for each block to upload, children first; the upload module's source shape. */
typedef int (*fs_block_source_fn)(unixfs_emit_fn emit, void *emit_userdata, void *userdata);

struct fs_uploader {
        int (*submit)(void *ud, uint64_t id, uint64_t ino, const char *path);
        void (*cancel)(void *ud, uint64_t id);
        /* optional: an fsync waits for job id (it goes ahead of uploads nobody waits for) */
        void (*urge)(void *ud, uint64_t id);
        /* uploads what source emits, then pins *pin_root (read after source returns) */
        int (*put_blocks)(void *ud, fs_block_source_fn source, void *source_ud,
                          const struct cid *pin_root);
        /* optional: [off, off + len) of the staging file at path, a file still being written
         * from its start, is complete (multiples of early_unit; 0: never called) */
        int (*early)(void *ud, const char *path, uint64_t off, uint64_t len);
        size_t early_unit;
        /* optional, both or neither (then no unpin is ever sent): removes the pins prsmfs
         * made of root from every node and service; pins root again (replicas). Called from
         * the fs's pin worker thread only; 0 or -errno */
        int (*unpin)(void *ud, const struct cid *root);
        int (*pin)(void *ud, const struct cid *root);
        void *ud;
};

/* Borrows idx, cfg and store (which may be NULL: metadata only); all must outlive the fs.
 * Creates the hidden .ipfs/ directory at the root if the index has none. */
_wur_ int fs_new(struct index *idx, const struct config *cfg, struct store *store, struct fs **ret);
void fs_free(struct fs *fs);
/* Frees the file handles the kernel never released (a RELEASE still queued when the session
 * ended, or files still open at an unmount): after the session loop, before the store goes.
 * Generations of writers never flushed are dropped, as at a close without one. */
void fs_release_handles(struct fs *fs);
/* Answers every request waiting for an upload (EIO) and lets no new one wait: the first step
 * of a shutdown, with the network's. */
void fs_stop_waits(struct fs *fs);
/* The session, for kernel cache invalidation when the tree changes behind the kernel's back
 * (prsmctl link). */
void fs_set_session(struct fs *fs, struct fuse_session *se);
void fs_get_stats(struct fs *fs, struct fs_stats *ret);
/* Sets the store before the session serves (the daemon makes it after daemonizing). */
void fs_set_store(struct fs *fs, struct store *store);
/* Provenance records and the access ledger (borrowed; NULL: none). Before the session runs. */
struct prsm;
void fs_set_prsm(struct fs *fs, struct prsm *p);
/* Sets the uploader, re-submits the jobs the index holds (after a restart) and starts the pin
 * worker, which sends the unpins the index owes (pins.c). */
_wur_ int fs_set_uploader(struct fs *fs, const struct fs_uploader *up);
/* Stops the pin worker: before the uploader goes (net_pool_shutdown first makes its network
 * call in flight end at once). What it had not sent stays owed in the index. */
void fs_pins_stop(struct fs *fs);
/* Called by the uploader for job id (the staging generation) of ino: error 0 with the root
 * and size, or -ECANCELED; is_pinned: prsmfs pinned root (with error 0, or before a cancel).
 * Commits the CID in the index if the content is still current (the old content's unpin is
 * owed if nothing else has it), then frees the staging file. */
void fs_upload_done(struct fs *fs, uint64_t id, uint64_t ino, int error, const struct cid *root,
                    uint64_t size, bool is_pinned);
/* prsmctl unpin: cid (a string) is no longer a published root. 1 when its unpin is owed now
 * (sent in the background), 0 when files still have it as their content; -ENOENT when it is
 * no root prsmctl publish pinned, -EINVAL for a bad CID. */
_wur_ int fs_unpin(struct fs *fs, const char *cid);

/*
 * Links an existing CID at path (relative to the mount root, "a/b/name"; the parent must
 * exist): a file, a directory (expanded lazily), a HAMT-sharded directory or a symlink. Only
 * the root block is fetched. -EEXIST when the name is taken, -ENOENT/-ENOTDIR for a bad
 * parent, -EINVAL for a bad CID or name, -EROFS inside .ipfs/, -EOPNOTSUPP for content
 * that is not UnixFS.
 */
_wur_ int fs_link_path(struct fs *fs, const char *cid, const char *path, uint32_t uid, uint32_t gid,
                       struct index_attr *ret);
/* What prsmctl link --format makes of a linked file (docs/prsm.md, "Content formats"). */
enum fs_link_format {
        FS_LINK_AUTO, /* a PRSM shard manifest or JSON wrapper up to 16 MiB shown decoded,
                         anything else as it is (PRSM's client detects manifests so too) */
        FS_LINK_PRSM, /* must be PRSM content (up to PRSM_FORMAT_JSON_MAX): else -EBADMSG */
        FS_LINK_RAW,  /* as it is (fs_link_path) */
        _FS_LINK_FORMAT_MAX,
};
/*
 * fs_link_path with format: PRSM content is linked as a read-only file of the size it
 * describes, reassembled or decoded as it is read (src/fs/prsmfile.c). err (a sentence, may be
 * empty) says why PRSM content was refused: -EBADMSG (malformed, or not PRSM with
 * FS_LINK_PRSM), -E2BIG (too large to decode).
 */
_wur_ int fs_link_path_as(struct fs *fs, const char *cid, const char *path,
                          enum fs_link_format format, uint32_t uid, uint32_t gid, char *err,
                          size_t err_size, struct index_attr *ret);
/* Path of the control socket, offered to prsmctl as the root's user.prsm.control xattr. */
_wur_ int fs_set_control_path(struct fs *fs, const char *path);

/* The operation table to pass to fuse_session_new together with the fs as userdata. */
const struct fuse_lowlevel_ops *fs_lowlevel_ops(void);

/* What a publish keeps and leaves out. */
struct fs_publish_opts {
        bool preserve_mode;   /* UnixFS 1.5 mode in directory and file root nodes */
        bool preserve_mtime;  /* and mtime (symlinks too) */
        bool include_private; /* also files and directories others may not read */
};

#define FS_PUBLISH_SKIPPED_MAX 1000 /* entries listed in a result; all are counted */

struct fs_publish_skipped {
        char *path;         /* owned: from the published root ("sub/name") */
        const char *reason; /* static: "private", "fifo", "socket", "char-device",
                               "block-device" */
        uint32_t mode;      /* st_mode, type bits included */
};

struct fs_publish_result {
        struct cid root;
        struct fs_publish_skipped *skipped; /* owned: the first ones left out */
        size_t n_skipped;                   /* entries in skipped */
        size_t n_skipped_total;             /* all left out (more when the list was cut) */
};
void fs_publish_result_done(struct fs_publish_result *r);

/*
 * Builds the UnixFS DAG of the tree at path (relative to the mount root; "" = all of it),
 * waiting for pending uploads of its files until deadline_ns, uploads the new nodes and
 * pins the root: the CID the node's `add -r` gives for the same tree and profile (with
 * opts' --preserve-mode/--preserve-mtime; see publish.c for the one difference). The root
 * stays pinned, whatever happens to the files, until fs_unpin. Left out,
 * with their subtrees, and listed in *ret (which the caller frees with
 * fs_publish_result_done): FIFOs, sockets and device nodes, and unless
 * opts->include_private, files without o+r and directories without o+r or o+x. -EACCES when
 * path itself is private so, or below a directory without o+x; -EOPNOTSUPP for a special file.
 */
_wur_ int fs_publish(struct fs *fs, const char *path, const struct fs_publish_opts *opts,
                     uint64_t deadline_ns, struct fs_publish_result *ret);

/*
 * prsmctl fsck: this mount's staging directory against the index. staged: files the index
 * names (content not yet uploaded); open: files of files open for writing; orphans: files
 * nothing names, older than ten minutes (a writer may be setting up a younger one: young),
 * removed when repair; missing: upload jobs whose staged file is gone (their content is lost
 * and their upload cannot succeed; logged with the inode). -EROFS when writes are off.
 */
struct fs_fsck_result {
        uint64_t staged, open, young, unknown;
        uint64_t orphans, orphan_bytes, removed;
        uint64_t missing;
};
_wur_ int fs_fsck(struct fs *fs, bool repair, struct fs_fsck_result *ret);
/* ---- warm-up (prefetch.c): prsmctl prefetch ---- */
enum fs_prefetch_mode {
        FS_PREFETCH_FETCH, /* every block into the disk cache */
        FS_PREFETCH_CHECK, /* count what is cached, fetch nothing */
        FS_PREFETCH_EVICT, /* drop the blocks from the cache */
        _FS_PREFETCH_MODE_MAX,
};
const char *fs_prefetch_mode_name(enum fs_prefetch_mode m);

#define FS_PREFETCH_ERRORS_MAX 16 /* failed files named in a status; all are counted */

/* A job's progress. Bytes are file bytes (a file's pieces add up to its size); blocks include
 * inner nodes. cached: found in the disk cache (or staged locally); fetched: by this job. */
struct fs_prefetch_status {
        uint64_t id;
        enum fs_prefetch_mode mode;
        bool is_done, is_walking; /* walking: the paths are still being listed */
        uint64_t files, files_done;
        uint64_t bytes_total, bytes_done, bytes_cached, bytes_fetched;
        uint64_t blocks_total, blocks_done, blocks_cached, blocks_fetched, blocks_failed;
        uint64_t blocks_evicted;
        uint64_t elapsed_ns;
        struct {
                char *path; /* owned: from the mount root */
                int error;  /* -errno */
        } errors[FS_PREFETCH_ERRORS_MAX];
        size_t n_errors, n_errors_total;
};

/* Starts a job over paths (from the mount root, files or trees) on threads of its own; returns
 * at once with its id. -EINVAL without paths, -EHOSTUNREACH without a store, -EBUSY when 8
 * jobs run already. */
_wur_ int fs_prefetch_start(struct fs *fs, const char *const *paths, size_t n,
                            enum fs_prefetch_mode mode, uint64_t *ret_id);
/* A job's progress (copied: free it with fs_prefetch_status_done); -ENOENT: no such job. */
_wur_ int fs_prefetch_status(struct fs *fs, uint64_t id, struct fs_prefetch_status *ret);
void fs_prefetch_status_done(struct fs_prefetch_status *st);
/* Drops a job (cancelling it if it still runs; waits for its block in flight). */
_wur_ int fs_prefetch_forget(struct fs *fs, uint64_t id);

/*
 * ---- follow mounts (follow.c; docs/scale-out.md) ----
 * A read-only mount whose root shows the tree of a root CID that changes (an IPNS name's,
 * resolved by the daemon). Switches are atomic for every new lookup and listing; see follow.c.
 */
/* Makes this a follow mount: before the session serves. */
void fs_follow_enable(struct fs *fs);
bool fs_is_following(const struct fs *fs);
/* Shows the root recorded in the index by the last switch, if any (1; 0 when none), without
 * the network: at the start, before the first resolve. */
_wur_ int fs_follow_restore(struct fs *fs);
/* Shows root from now on: its block is fetched and must be a UnixFS directory (else the old
 * root stays: -ENOTDIR, -EBADMSG, or the fetch's error, and err says why); its entries are
 * listed into the index, then the root switches and the kernel's entries of the root are
 * dropped. 1 switched, 0 it was the root already. May wait for the network: never on a FUSE
 * worker. One caller at a time (the daemon's follow thread). */
_wur_ int fs_follow_switch(struct fs *fs, const struct cid *root, char *err, size_t err_size);
/* The root shown (false: none yet) and when it was switched to (CLOCK_REALTIME s, 0: shown
 * since the start, restored). */
bool fs_follow_root(struct fs *fs, struct cid *ret, uint64_t *ret_switched_sec);
void fs_follow_done(struct fs *fs);

/* Maps an internal negative errno to what a syscall may return (positive). */
int fs_errno_for_reply(int r);
