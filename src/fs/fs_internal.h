/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to fs: the file system's state shared by the FUSE adapter, the tree (linking and
 * lazy expansion of IPFS directories) and the reader (open files and readahead).
 */
#pragma once

#include <pthread.h>

#include "prsmfs/fs.h"
#include "prsmfs/prsm.h"
#include "prsmfs/store.h"
#include "prsmfs/unixfs.h"

#define FS_IPFS_NAME        ".ipfs"
#define FS_RA_STREAMS       8             /* sequential streams tracked per open file */
#define FS_RA_INIT          (4ull << 20)  /* first readahead window of a stream */
#define FS_RA_MAX           (32ull << 20) /* largest window */
#define FS_RA_NEAR          (2ull << 20)  /* a read this close to a stream's head is its */
#define FS_LIST_BATCH       256           /* entries a readdir adds to a lazy directory at a time */
#define FS_EXPAND_BATCH     1024 /* ... a listing of the whole directory: blocks fetched at once */
#define FS_LISTINGS_MAX     64   /* walks of lazy directories kept between batches */
#define FS_SHARD_PREFETCH   64   /* HAMT shards fetched ahead of a walk */
#define FS_SYMLINK_MAX      4095
#define FS_READ_THREADS     32 /* reads waiting for blocks at once, beyond FUSE's workers */
#define FS_MAX_BACKGROUND   (4 * FS_READ_THREADS) /* readahead requests the kernel sends at once */
#define FS_META_THREADS     8 /* other requests waiting for blocks (lookups, listings, opens) */
#define FS_JOBQ_MAX_THREADS FS_READ_THREADS

struct rfile;
struct wfile;
struct fs_inode;
struct fs_listing;
struct pf_job;

/* pins.c: the pin worker */
struct fs_pins {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* CLOCK_MONOTONIC: a kick, or stop */
        bool is_kicked;      /* lock: something may be owed */
        bool stop;           /* lock */
        pthread_t thread;
        bool has_thread; /* set and cleared by the thread that starts and stops it */
};

/* inode.c: what the kernel and the handles hold of each inode (a hash table) */
struct fs_inodes {
        pthread_mutex_t lock;
        struct fs_inode **buckets;
        size_t n_buckets, n;
};

/* jobs.c: a request handed from a FUSE worker to a thread that may wait for the network */
struct fs_job {
        struct fs_job *next;
        uint64_t queued_ns; /* when it was queued: its deadline counts from then */
        /* answers the request (with an error and no fetch when stopping) and frees the job */
        void (*run)(struct fs_job *j, bool stopping);
};

struct fs_jobq {
        const char *name;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct fs_job *head, *tail; /* lock */
        bool stop;                  /* lock */
        uint64_t queued;            /* lock: jobs ever queued */
        size_t running;             /* lock: jobs being run */
        pthread_t threads[FS_JOBQ_MAX_THREADS];
        size_t n_threads;
};

/* follow.c: the tree a follow mount shows */
struct fs_follow {
        bool is_on;            /* set before the session serves, then read-only */
        uint64_t dir_ino;      /* atomic: .ipfs/<root>, the directory the root shows; 0: none */
        pthread_mutex_t lock;  /* guards the three below; never held across I/O */
        struct cid root;       /* lock: dir_ino's CID */
        bool has_root;         /* lock */
        uint64_t switched_sec; /* lock: CLOCK_REALTIME of the last switch (0: before any) */
};

struct fs {
        struct index *idx;        /* borrowed */
        const struct config *cfg; /* borrowed */
        struct store *store;      /* borrowed, may be NULL (metadata only) */
        struct fuse_session *se;  /* borrowed, for cache invalidation; may be NULL */
        char *control_path;       /* owned, may be NULL */
        uint64_t ipfs_ino;        /* the hidden .ipfs/ directory */

        /* tree.c: walks of lazy directories between batches (struct fs_listing), one batch
         * at a time per directory */
        pthread_mutex_t lists_lock;
        pthread_cond_t lists_cond; /* a batch ended (lists_lock) */
        struct fs_listing *lists;  /* lists_lock */
        size_t n_lists;            /* lists_lock */
        uint64_t lists_clock;      /* lists_lock */

        pthread_mutex_t files_lock; /* guards files, wfiles, handles */
        struct rfile *files;        /* open files, shared by their handles */
        struct handle *handles;     /* every handle the kernel holds (fuse_adapter.c) */
        struct wfile *wfiles;       /* files open for writing (or read while staged) */
        pthread_cond_t commit_cond; /* an upload committed (files_lock) */
        uint64_t committing[4];     /* files_lock: inodes whose commit is between its index
                                       transaction and its staging file's removal (0 = free) */
        unsigned committing_other;  /* files_lock: such commits beyond the four */

        int staging_fd;        /* cache_dir/staging/<instance>, flock'ed; -1: writes are off */
        char *staging_dir;     /* owned: its path, NULL when writes are off */
        uint64_t next_gen;     /* atomic: staging file generations */
        struct fs_uploader up; /* how closed files reach the uploader */

        struct fs_inodes inodes; /* lookups, open handles, content changes */

        /* fuse_adapter.c: requests that must fetch, done by these threads (not FUSE workers):
         * reads, and everything else (lookups, listings, opens, flushes of changed content) */
        struct fs_jobq readq, metaq;
        struct fs_pins pins; /* unpins owed (pins.c) */

        /* waiters.c: requests answered when an upload commits (files_lock) */
        struct fs_waiter *waiters;
        uint64_t waiters_seq;        /* files_lock: waiters filed so far */
        pthread_cond_t waiters_cond; /* CLOCK_MONOTONIC: a waiter added, or stop */
        pthread_t waiters_thread;    /* answers waiters whose deadline passed */
        bool waiters_started, waiters_stopped;

        /* prefetch.c: warm-up jobs */
        pthread_mutex_t pf_lock;
        struct pf_job *pf_jobs; /* pf_lock */
        uint64_t pf_next_id;    /* pf_lock */
        bool pf_stopped;        /* pf_lock */

        struct fs_follow follow; /* follow mounts (follow.c) */

        struct fs_stats st; /* atomics */
        struct prsm *prsm;  /* borrowed, may be NULL: provenance and ledger (prov.c) */
};

/* ---- prov.c: provenance records of content operations ---- */
/* An upload of ino committed root (before: its attributes before the commit); fd: its staged
 * bytes, taken (hashed by the record writer), or -1. */
void fs_prov_commit(struct fs *fs, uint64_t ino, const struct index_attr *before,
                    const struct cid *root, uint64_t size, int fd);
/* The entry oldparent/oldname became parent/name (a rename) or went (delete: parent 0); a is
 * the inode's attributes. */
void fs_prov_entry(struct fs *fs, uint64_t oldparent, const char *oldname, uint64_t parent,
                   const char *name, const struct index_attr *a);
/* user.prsm.provenance (the latest record of ino, JSON) and user.prsm.creator, malloc'd;
 * -ENODATA when there is none. */
_wur_ int fs_prov_xattr(struct fs *fs, uint64_t ino, bool creator, char **ret, size_t *ret_len);

/* ---- jobs.c ---- */
/*
 * Set on a FUSE worker while it tries a request: blocks come from memory and disk only, and
 * one that must be fetched is -EWOULDBLOCK, before the request changed anything; the worker
 * then queues it for a thread that may wait (fuse_adapter.c).
 */
extern _Thread_local bool fs_no_fetch;
/* Set on a job thread while it runs a queued request: when the request came (0: now), so
 * that its wait in the queue counts against its timeout (fs_deadline). */
extern _Thread_local uint64_t fs_request_start_ns;
/* store_get, or store_peek with -EWOULDBLOCK for a miss under fs_no_fetch. */
_wur_ int fs_block_get(struct fs *fs, const struct cid *cid, uint64_t deadline_ns,
                       struct net_block **ret);
void fs_jobq_init(struct fs_jobq *q, const char *name);
/* Starts up to n_threads threads (fewer, logged, when the system has no more). */
void fs_jobq_start(struct fs_jobq *q, size_t n_threads);
/* Queues j; run at once when the queue has no threads (stopping if it was stopped). */
void fs_jobq_push(struct fs_jobq *q, struct fs_job *j);
/* Answers what is queued (stopping) and joins the threads after their current jobs. */
void fs_jobq_stop(struct fs_jobq *q);
void fs_jobq_done(struct fs_jobq *q);

/* ---- waiters.c ---- */
struct fs_waiter;
/* The condvar, in fs_new; the deadline thread, in the process that serves (after
 * daemonizing: threads do not survive a fork). */
void fs_waiters_init(struct fs *fs);
_wur_ int fs_waiters_start(struct fs *fs);
/* Answers every waiting request (EIO), files no more and joins the deadline thread (its late
 * answers are given before this returns: the session may go after it). */
void fs_waiters_stop(struct fs *fs);
void fs_waiters_done(struct fs *fs);
/* Answers req once the content staged as gen on ino is committed or replaced (0), when
 * fsync_timeout passes (EIO), at an interrupt (EINTR) or at stop (EIO). */
void fs_reply_when_committed(struct fs *fs, fuse_req_t req, uint64_t ino, uint64_t gen);
/* ino's staged content changed (a commit, a newer flush): answers its waiters that are done. */
void fs_waiters_wake(struct fs *fs, uint64_t ino);

/* ---- inode.c ---- */
void fs_inodes_init(struct fs_inodes *t);
void fs_inodes_done(struct fs_inodes *t);
/* Adds nlookup kernel references and nopen handles to ino. */
_wur_ int fs_inode_ref(struct fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen);
/* Takes them back; true when nothing holds ino any more (then an unlinked ino may go). */
bool fs_inode_unref(struct fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen);
/* Whether the kernel or a handle holds ino. */
bool fs_inode_in_use(struct fs *fs, uint64_t ino);
/* The content sequence of ino (0 when nothing holds it), and its bump at a change. */
uint64_t fs_inode_seq(struct fs *fs, uint64_t ino);
void fs_inode_changed(struct fs *fs, uint64_t ino);

/* ---- writer.c ---- */
/*
 * A file open for writing, shared by all handles on its inode: a staging file (generation
 * gen, cache_dir/staging/<instance>/<ino>.<gen>) holding the written ranges, and a base (the
 * old CID, or the previous generation's complete staging file) for the rest.
 */
_wur_ int fs_wfile_open(struct fs *fs, const struct index_attr *a, bool trunc, struct wfile **ret);
/* The writer of ino if one is open (a new reference), else NULL. */
struct wfile *fs_wfile_get(struct fs *fs, uint64_t ino);
void fs_wfile_close(struct fs *fs, struct wfile *wf);
/* Returns the bytes written: fewer than len when the staging disk stopped it part-way. */
_wur_ ssize_t fs_wfile_write(struct fs *fs, struct wfile *wf, const void *buf, size_t len,
                             uint64_t off);
/* Reads into buf (size bytes at most); returns the bytes read (short only at the end). */
_wur_ ssize_t fs_wfile_read(struct fs *fs, struct wfile *wf, void *buf, size_t size, uint64_t off);
_wur_ int fs_wfile_truncate(struct fs *fs, struct wfile *wf, uint64_t size);
/* Makes what was written durable (staging data synced, job in the index) and hands the job
 * to the uploader; what close() waits for. */
_wur_ int fs_wfile_flush(struct fs *fs, struct wfile *wf);
/* Size, mtime and (when later than the index's) ctime as the writer sees them; state DIRTY
 * when it holds unflushed writes. */
void fs_wfile_attr(struct wfile *wf, struct index_attr *a);
/* utimensat while open (cp -a sets times before close): the close keeps them. */
void fs_wfile_set_mtime(struct wfile *wf, const struct timespec *mtime);
/* Whether a commit of ino is between its index transaction and its staging file's removal
 * (files_lock held). */
bool fs_is_committing(const struct fs *fs, uint64_t ino);
/* Waits until the content staged as gen on ino is uploaded and pinned (or replaced); for
 * threads that may wait (publish), never a FUSE worker (fs_reply_when_committed). */
_wur_ int fs_wait_committed(struct fs *fs, uint64_t ino, uint64_t gen, uint64_t deadline_ns);
uint64_t fs_wfile_gen(struct wfile *wf);
/* copy_file_range into wf from src's clean content (see writer.c): *ret_n bytes copied by
 * linking src's CID; -EOPNOTSUPP when only a byte copy will do (the kernel does it then). */
_wur_ int fs_wfile_copy_link(struct fs *fs, struct wfile *wf, const struct index_attr *src,
                             uint64_t off_in, uint64_t off_out, uint64_t len, uint64_t *ret_n);

/* Makes and opens this index's staging directory, cache_dir/staging/<instance> (0700), and
 * locks it: -errno when it cannot be made (prsmfs does not mount then), -EBUSY when another
 * daemon holds it. */
_wur_ int fs_staging_open(struct fs *fs);
/* Moves this index's staging files of the old layout into its own directory and deletes the
 * ones there that the index does not name (writers that never closed). */
_wur_ int fs_writer_start(struct fs *fs);
/* Opens a staged file's content for reading: an fd the caller closes. */
_wur_ int fs_staged_open(struct fs *fs, uint64_t ino, uint64_t gen);
/* The same for the staged content *a names, read again from the index if its upload
 * committed meanwhile (which removes the staging file): -ESTALE when the content is now
 * a->cid, which the caller opens instead. */
_wur_ int fs_staged_open_attr(struct fs *fs, struct index_attr *a);

/* ---- pins.c ---- */
void fs_pins_init(struct fs *fs);
/* Starts the worker once the uploader can pin and unpin (a no-op otherwise). */
_wur_ int fs_pins_start(struct fs *fs);
/* Something may be owed: a commit, an inode dropped, a publish or unpin. Never blocks long
 * (any thread, FUSE workers too). */
void fs_pins_kick(struct fs *fs);
/* fs_pins_stop, then frees what fs_pins_init made. */
void fs_pins_done(struct fs *fs);

/* ---- follow.c ---- */
/* The directory the mount root shows (.ipfs/<root>), 0 when none yet; for follow mounts. */
uint64_t fs_follow_dir(struct fs *fs);

/* ---- tree.c ---- */
/* Deadline for one metadata or data operation: the config's timeout from now, or from when
 * the request came when a job thread runs it (fs_request_start_ns). */
uint64_t fs_deadline(const struct fs *fs);
void fs_listings_init(struct fs *fs);
void fs_listings_done(struct fs *fs);
/* Makes sure all of a lazily linked directory's entries are in the index (no-op otherwise). */
_wur_ int fs_tree_expand(struct fs *fs, const struct index_attr *dir);
/* Adds the next batch of a lazy directory's entries to the index: 0 when none are left (or
 * dir is not lazy), 1 when some may be, -errno (the walk is tried again at the next call). */
_wur_ int fs_tree_list_more(struct fs *fs, const struct index_attr *dir);
/* Gives *a its type if it was listed without one (tree.c), updating *a; -EIO while its block
 * does not come. */
_wur_ int fs_tree_resolve(struct fs *fs, struct index_attr *a);
/* Links cid as parent/name (flags: INDEX_FLAG_RO for .ipfs/). */
_wur_ int fs_tree_link(struct fs *fs, const struct cid *cid, uint64_t parent, const char *name,
                       uint32_t flags, uint32_t uid, uint32_t gid, struct index_attr *ret);
/* The inode at path from the mount root ("" or "/" = the root), expanding lazy directories on
 * the way. */
_wur_ int fs_resolve_path(struct fs *fs, const char *path, struct index_attr *ret);
/* The same, and the permission bits every directory on the way has (*ret_through: the AND of
 * their modes; 07777 for the root itself). */
_wur_ int fs_resolve_path_through(struct fs *fs, const char *path, struct index_attr *ret,
                                  uint32_t *ret_through);
/* Looks name up in parent (in a lazy one: from the blocks on the name's path), resolving CIDs
 * in .ipfs/ and entries listed without a type. -ENOENT when absent. */
_wur_ int fs_tree_lookup(struct fs *fs, uint64_t parent, const char *name, struct index_attr *ret);

/* ---- reader.c ---- */
/* A piece of a read's answer: len bytes at p, kept alive by the block reference, or len
 * bytes at fd_off in a cached block file (fd >= 0, owned: sent by the kernel, no copy here). */
struct fs_seg {
        struct net_block *block; /* owned reference */
        const uint8_t *p;
        size_t len;
        int fd;
        uint64_t fd_off;
};
/* Copies a segment's bytes to dst (seg->len bytes). */
_wur_ int fs_seg_copy(const struct fs_seg *seg, void *dst);

/* Opens (or shares) the reader of a file: its root block is fetched here. */
_wur_ int fs_rfile_open(struct fs *fs, const struct index_attr *a, struct rfile **ret);
/* Another reference to an open reader (fs_rfile_close takes it back). */
void fs_rfile_ref(struct fs *fs, struct rfile *rf);
void fs_rfile_close(struct fs *fs, struct rfile *rf);
/* For walking fs->files under fs->files_lock. */
struct rfile *fs_rfile_next(struct rfile *rf);
uint64_t fs_rfile_ino(const struct rfile *rf);
/* An open of rf's content, for the access ledger (atomic). */
void fs_rfile_count_open(struct rfile *rf);
/*
 * Reads [off, off+size) clipped at the end of the file into segments (a growing array the
 * caller frees with fs_segs_free). Every byte is from a verified block; an error means no
 * byte is returned (a short read would be taken for the end of the file).
 */
enum {
        FS_READ_LOCAL = 1 << 0, /* memory and disk only: -EWOULDBLOCK if a block must be fetched */
        FS_READ_NO_RA = 1 << 1, /* readahead was queued for this read already (its local try) */
};
_wur_ int fs_rfile_read(struct fs *fs, struct rfile *rf, uint64_t off, size_t size, unsigned flags,
                        struct fs_seg **ret_segs, size_t *ret_n);
void fs_segs_free(struct fs_seg *segs, size_t n);
/* A reader of the UnixFS file cid of size bytes (a part of PRSM content: -EBADMSG when its
 * root says another size; UINT64_MAX: any), shared with no one and counted in no ledger;
 * fs_rfile_free_part. */
_wur_ int fs_rfile_open_part(struct fs *fs, const struct cid *cid, uint64_t size,
                             struct rfile **ret);
void fs_rfile_free_part(struct rfile *rf);

/* ---- prsmfile.c: PRSM shard manifests and JSON wrappers shown decoded ---- */
struct fs_pview;
/* The view of a (flags INDEX_FLAG_PRSM): its layout from the index. No fetch. */
_wur_ int fs_pview_open(struct fs *fs, const struct index_attr *a, struct fs_pview **ret);
void fs_pview_free(struct fs_pview *pv);
uint64_t fs_pview_size(const struct fs_pview *pv);
/* Reads [off, end) (end <= size) as fs_rfile_read does: every part touched has had its sha256
 * checked first (-EILSEQ when it does not match: EIO, never wrong bytes). */
_wur_ int fs_pview_read(struct fs *fs, struct fs_pview *pv, uint64_t off, uint64_t end,
                        unsigned flags, struct fs_seg **ret_segs, size_t *ret_n);
/* user.prsm.format and user.prsm.meta[.KEY] of ino: -ENODATA when it is no PRSM content. */
_wur_ int fs_pview_xattr(struct fs *fs, uint64_t ino, const char *name, char **ret,
                         size_t *ret_len);
/* The parent directory and name of a new entry at path (from the mount root), checked as
 * prsmctl link needs: the name valid, the parent a writable directory (fuse_adapter.c).
 * *ret_name points into *ret_copy, which the caller frees. */
_wur_ int fs_link_parent(struct fs *fs, const char *path, uint64_t *ret_parent, char **ret_copy,
                         const char **ret_name);
/* The layout the index keeps for root; -ENOENT (or another error: not used) otherwise. */
_wur_ int fs_layout_load(struct fs *fs, const struct cid *root, struct unixfs_layout *ret);

/* ---- prefetch.c ---- */
void fs_prefetch_init(struct fs *fs);
/* prefetch_on_open: a whole-file job in the background when a's name and size match the
 * config. Never blocks (a FUSE worker calls it at open). */
void fs_prefetch_on_open(struct fs *fs, const struct index_attr *a);
/* The last reader of ino closed: its prefetch_on_open job stops. */
void fs_prefetch_closed(struct fs *fs, uint64_t ino);
/* Cancels every job, waits for them and starts no more (at the end of the session). */
void fs_prefetch_stop(struct fs *fs);
/* fs_prefetch_stop, then frees what fs_prefetch_init made. */
void fs_prefetch_done(struct fs *fs);

/* ---- tensors.c ---- */
struct formats_table;
/* The tensor table of a (a clean file with a CID) from its header: -ENOMSG when it is no
 * model format we parse, -EBADMSG/-E2BIG for a wrong or hostile header, -EWOULDBLOCK under
 * fs_no_fetch when a header block is not local. */
_wur_ int fs_tensors_load(struct fs *fs, const struct index_attr *a, struct formats_table *ret);

/* ---- policy.c: allowed_mime_types ---- */
#define FS_SNIFF_LEN 4096 /* bytes of a file its type is told from */
/* The MIME type of a file of size bytes whose first n (<= FS_SNIFF_LEN) bytes are p. Static. */
const char *fs_sniff_mime(const uint8_t *p, size_t n, uint64_t size);
/* Whether the comma-separated list (exact types, a type followed by a '*' subtype, or a '*'
 * alone) allows mime. */
bool fs_mime_allowed(const char *list, const char *mime);
/* 0 when allowed_mime_types is off or lets the staged content (fd, size bytes) of ino be
 * uploaded; -EPERM (logged) when not. Reads the head of fd. */
_wur_ int fs_policy_check(struct fs *fs, int fd, uint64_t size, uint64_t ino);
