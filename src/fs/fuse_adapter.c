/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE low-level adapter. Metadata answers come from the index; a lazily linked directory is
 * expanded (tree.c) on its first lookup or readdir, and reads go through the reader
 * (reader.c) and the store. Lookup counts: inode numbers are persistent index rowids, so
 * forget needs no bookkeeping until unlink can free an inode that the kernel still
 * references (write path).
 *
 * Kernel caching: content under .ipfs/ is immutable, so its entries and attributes are
 * cached for a year and its pages kept (FOPEN_KEEP_CACHE), like Kubo's /ipfs. Elsewhere
 * entries and attributes live one second (changes through the control socket, like a link,
 * also invalidate the entry at once); a file's pages are kept across opens while its CID is
 * the same, since a CID's bytes never change.
 */
#define LOG_MODULE "fs"
#include <fcntl.h>
#include <inttypes.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/log.h"

#include "formats.h"
#include "fs_internal.h"

#define FS_BLKSIZE        (1024 * 1024) /* st_blksize: cp, dd, rsync use 1 MiB buffers */
#define FS_ATTR_TIMEOUT_S 1.0
#define FS_IMMUTABLE_S    (365.0 * 86400) /* .ipfs/: a CID's content never changes */
#define XATTR_CID         "user.prsm.cid"
#define XATTR_PROVENANCE  "user.prsm.provenance" /* the latest record (docs/prsm.md) */
#define XATTR_CREATOR     "user.prsm.creator"
#define XATTR_CONTROL     "user.prsm.control" /* root only: prsmctl finds the socket here */
#define XATTR_TENSORS     "user.prsm.tensors" /* safetensors/GGUF: the tensor table (JSON) */
#define XATTR_PRSM_FORMAT "user.prsm.format"  /* PRSM content: shard-manifest, json-wrapper */
#define XATTR_PRSM_META   "user.prsm.meta"    /* ... its metadata; user.prsm.meta.KEY a member */

int fs_new(struct index *idx, const struct config *cfg, struct store *store, struct fs **ret)
{
        struct index_new_node ipfs = { .mode = S_IFDIR | 0555,
                                       .flags = INDEX_FLAG_RO | INDEX_FLAG_HIDDEN };
        struct index_attr a;
        struct fs *fs;
        int r;

        fs = calloc(1, sizeof(*fs));
        if (!fs)
                return -ENOMEM;
        fs->idx = idx;
        fs->cfg = cfg;
        fs->store = store;
        fs_listings_init(fs);
        pthread_mutex_init(&fs->files_lock, NULL);
        fs_inodes_init(&fs->inodes);
        {
                pthread_condattr_t ca; /* net_now_ns's clock, as every timed wait */

                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&fs->commit_cond, &ca);
                pthread_condattr_destroy(&ca);
        }
        fs_pins_init(fs);
        fs_waiters_init(fs);
        fs_prefetch_init(fs);
        fs_jobq_init(&fs->readq, "reader");
        fs_jobq_init(&fs->metaq, "metadata");
        fs->staging_fd = -1;
        r = fs_staging_open(fs);
        if (r >= 0)
                r = index_lookup(idx, INDEX_ROOT_INO, FS_IPFS_NAME, &a);
        if (r >= 0 && (a.flags & (INDEX_FLAG_RO | INDEX_FLAG_HIDDEN)) !=
                              (INDEX_FLAG_RO | INDEX_FLAG_HIDDEN)) {
                /* a directory made in place of .ipfs by an older prsmfs that let it be
                 * renamed away: never served as .ipfs (its files are not verified content) */
                char name[64];

                (void)snprintf(name, sizeof(name), ".ipfs.replaced-%" PRIu64, a.ino);
                log_warning("/.ipfs in the index is not the daemon's: moved to /%s", name);
                r = index_rename(idx, INDEX_ROOT_INO, FS_IPFS_NAME, INDEX_ROOT_INO, name,
                                 INDEX_RENAME_NOREPLACE, NULL);
                if (r >= 0)
                        r = -ENOENT;
        }
        if (r == -ENOENT)
                r = index_mknode(idx, INDEX_ROOT_INO, FS_IPFS_NAME, &ipfs, &a);
        if (r < 0) {
                fs_free(fs);
                return r;
        }
        fs->ipfs_ino = a.ino;
        /* files unlinked while open when the daemon last stopped */
        r = index_drop_orphans(idx, 0);
        if (r < 0)
                log_warning("cannot drop unlinked inodes: %s", strerror(-r));
        r = fs_writer_start(fs);
        if (r < 0) {
                fs_free(fs);
                return r;
        }
        *ret = fs;
        return 0;
}

void fs_free(struct fs *fs)
{
        if (!fs)
                return;
        fs_prefetch_stop(fs); /* its threads read the index and the tree */
        fs_pins_done(fs);
        fs_listings_done(fs);
        fs_follow_done(fs);
        /* their threads and stops take files_lock */
        fs_waiters_done(fs);
        fs_jobq_done(&fs->readq);
        fs_jobq_done(&fs->metaq);
        pthread_mutex_destroy(&fs->files_lock);
        pthread_cond_destroy(&fs->commit_cond);
        fs_inodes_done(&fs->inodes);
        if (fs->staging_fd >= 0)
                close(fs->staging_fd);
        free(fs->staging_dir);
        free(fs->control_path);
        fs_prefetch_done(fs);
        free(fs);
}

void fs_set_session(struct fs *fs, struct fuse_session *se)
{
        fs->se = se;
}

void fs_set_store(struct fs *fs, struct store *store)
{
        int r;

        fs->store = store;
        /* the threads of the process that serves: after daemonizing */
        r = fs_waiters_start(fs);
        if (r < 0)
                log_error("cannot start the fsync deadline thread: %s; fsync waits for its pin "
                          "without a bound",
                          strerror(-r));
        fs_jobq_start(&fs->readq, FS_READ_THREADS);
        fs_jobq_start(&fs->metaq, FS_META_THREADS);
}

void fs_get_stats(struct fs *fs, struct fs_stats *ret)
{
        uint64_t *dst = (uint64_t *)ret, *src = (uint64_t *)&fs->st;

        for (size_t i = 0; i < sizeof(*ret) / sizeof(uint64_t); i++)
                dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int fs_set_control_path(struct fs *fs, const char *path)
{
        char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        free(fs->control_path);
        fs->control_path = p;
        return 0;
}

int fs_errno_for_reply(int r)
{
        switch (r) {
        case -EBADMSG:
        case -EILSEQ:
        case -EPROTO:
                return EIO;
        case -ECANCELED:
                return EINTR;
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
                return EIO;
        default:
                return r < 0 ? -r : EIO;
        }
}

/*
 * A request a FUSE INTERRUPT may answer (EINTR) while its worker still waits (a read from the
 * network): a process killed in a direct read (O_DIRECT: no page cache, so its wait is not
 * killable) leaves at once instead of staying in D state until the fetch ends. Whoever sets
 * `answered` first replies; the worker never touches the request after losing, and
 * unregisters the callback (which waits for a running one) before freeing after winning.
 * The fetch itself goes on to its deadline and fills the cache.
 */
struct interruptible {
        int answered; /* atomic */
};

/* The guard being armed on this thread: libfuse calls the callback from within the arming
 * when the INTERRUPT came first, holding the request's lock, which a reply would free. */
static _Thread_local struct interruptible *arming;
static _Thread_local bool arm_interrupted;

static void interrupt_answer(fuse_req_t req, void *data)
{
        struct interruptible *g = data;

        if (g == arming) {
                arm_interrupted = true; /* answered by interruptible_arm, after libfuse's lock */
                return;
        }
        if (__atomic_exchange_n(&g->answered, 1, __ATOMIC_ACQ_REL) == 0)
                (void)fuse_reply_err(req, EINTR); /* g is the worker's to free now */
}

/* NULL (not interruptible) when out of memory. An INTERRUPT that came already is answered
 * here (g->answered set: the caller's take returns false). */
static struct interruptible *interruptible_arm(fuse_req_t req)
{
        struct interruptible *g = calloc(1, sizeof(*g));

        if (!g)
                return NULL;
        arming = g;
        arm_interrupted = false;
        fuse_req_interrupt_func(req, interrupt_answer, g);
        arming = NULL;
        if (arm_interrupted) {
                __atomic_store_n(&g->answered, 1, __ATOMIC_RELEASE);
                fuse_req_interrupt_func(req, NULL, NULL);
                (void)fuse_reply_err(req, EINTR);
        }
        return g;
}

/* True when the caller is to reply (the interrupt did not). */
static bool interruptible_take(fuse_req_t req, struct interruptible *g)
{
        if (!g)
                return true;
        if (__atomic_exchange_n(&g->answered, 1, __ATOMIC_ACQ_REL) != 0) {
                free(g); /* the callback replied and never looks at g again */
                return false;
        }
        fuse_req_interrupt_func(req, NULL, NULL); /* waits for a callback that is running */
        free(g);
        return true;
}

/* A metadata job's interrupt guard while it runs (meta_job_run): its reply takes it first.
 * An interrupt's answer frees the request: until the reply takes the guard, the job may not
 * touch the request, so it gets its fs from job_fs (req_fs). */
static _Thread_local struct interruptible *reply_guard;
static _Thread_local struct fs *job_fs;

static struct fs *req_fs(fuse_req_t req)
{
        return job_fs ? job_fs : fuse_req_userdata(req);
}

/* Whether this thread is to answer req: yes, but in a job whose request an interrupt
 * answered already (then nothing may be sent). */
static bool reply_take(fuse_req_t req)
{
        struct interruptible *g = reply_guard;

        reply_guard = NULL;
        net_set_abort(NULL); /* g goes */
        return interruptible_take(req, g);
}

static void reply_err(fuse_req_t req, int r)
{
        if (reply_take(req))
                (void)fuse_reply_err(req, r >= 0 ? 0 : fs_errno_for_reply(r));
}

static void attr_to_stat(const struct index_attr *a, struct stat *st)
{
        *st = (struct stat){
                .st_ino = a->ino,
                .st_mode = a->mode,
                .st_nlink = a->nlink,
                .st_uid = a->uid,
                .st_gid = a->gid,
                .st_size = (off_t)a->size,
                .st_rdev = (dev_t)a->rdev,
                .st_blksize = FS_BLKSIZE,
                .st_blocks = (blkcnt_t)((a->size + 511) / 512),
                .st_atim = a->atime,
                .st_mtim = a->mtime,
                .st_ctim = a->ctime,
        };
}

static double attr_timeout(const struct index_attr *a)
{
        return a->flags & INDEX_FLAG_RO ? FS_IMMUTABLE_S : FS_ATTR_TIMEOUT_S;
}

/*
 * An open file: the inode's writer (shared by every handle on it, so that reads see writes
 * whatever handle made them), or a view of the content as it was last closed: a reader of
 * clean content (by CID) or the staged content of a closed file whose upload is pending.
 * Every handle sees the inode's current content, as on a local file system: a view reads
 * through the writer while one is open, and is replaced when newer content was flushed
 * (seq, see inode.c).
 */
struct handle {
        struct handle *prev, *next; /* fs->handles, under fs->files_lock */
        uint64_t ino;
        struct wfile *wf;
        bool writes;
        /* the view: read under the read lock, replaced under the write lock */
        pthread_rwlock_t view_lock;
        struct rfile *rf;
        int staged_fd;
        uint64_t seq; /* fs_inode_seq when the view was opened */
        /* the open file's one, and one per read in flight: an interrupted read is answered
         * EINTR while its reader thread still uses the handle, and RELEASE may come then */
        unsigned refs;
};

static struct handle *handle_of(struct fuse_file_info *fi)
{
        return (struct handle *)(uintptr_t)fi->fh;
}

/* While a writer is open, size and times are the writer's (the index has the last close). */
static void overlay_writer(struct fs *fs, struct index_attr *a)
{
        struct wfile *wf;

        if (!S_ISREG(a->mode) || !(wf = fs_wfile_get(fs, a->ino)))
                return;
        fs_wfile_attr(wf, a);
        fs_wfile_close(fs, wf);
}

static void attr_to_entry(const struct index_attr *a, struct fuse_entry_param *e)
{
        *e = (struct fuse_entry_param){
                .ino = a->ino,
                .generation = 1,
                .attr_timeout = attr_timeout(a),
                .entry_timeout = attr_timeout(a),
        };
        attr_to_stat(a, &e->attr);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        (void)userdata;
        /* 1 MiB requests (max_pages = 256, Linux >= 4.20): fewer round trips per byte */
        conn->max_write = 1024 * 1024;
        conn->max_readahead = 1024 * 1024;
        /* readahead goes as background requests, of which the kernel sends max_background
         * at once (12 by default) and queues the rest, where a reader of a slow node's file
         * waited past the timeout (findings 9 and 10): more than the reader threads take,
         * so that the requests wait in their queue, which counts the wait against each
         * request's timeout (fs_deadline), rather than in the kernel's, which the daemon
         * cannot see (with as many as the threads, one read still waited 19.5 s for 10) */
        conn->max_background = FS_MAX_BACKGROUND;
        conn->congestion_threshold = FS_MAX_BACKGROUND * 3 / 4;
        if (conn->capable & FUSE_CAP_READDIRPLUS)
                conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
        if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
                conn->want |= FUSE_CAP_PARALLEL_DIROPS;
        /* replies from cached block files move by splice, without a copy in the daemon */
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        /* O_DIRECT reads as ordinary requests: the kernel sends an INTERRUPT for those when
         * the reader gets a signal (async ones it waits out uninterruptibly, so a killed
         * reader of a hung node stayed in D state); requests are 1 MiB anyway */
        conn->want &= ~FUSE_CAP_ASYNC_DIO;
}

static void reply_entry_as(fuse_req_t req, int r, const struct index_attr *a, double entry_timeout);

/* Replies with the entry of *a (r >= 0) or the error r; the kernel's reference to the inode
 * is counted (inode.c). */
static void reply_entry(fuse_req_t req, int r, const struct index_attr *a)
{
        reply_entry_as(req, r, a, r >= 0 ? attr_timeout(a) : 0);
}

/* reply_entry of an entry the kernel may keep entry_timeout seconds. */
static void reply_entry_timed(fuse_req_t req, const struct index_attr *a, double entry_timeout)
{
        reply_entry_as(req, 0, a, entry_timeout);
}

static void reply_entry_as(fuse_req_t req, int r, const struct index_attr *a, double entry_timeout)
{
        struct fs *fs = req_fs(req);
        struct fuse_entry_param e;
        struct index_attr shown;

        if (!reply_take(req))
                return;
        if (r >= 0)
                r = fs_inode_ref(fs, a->ino, 1, 0);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* the kernel takes these attributes (link(2) of a file open for writing, ...): its
         * writer's size and times, not the index's */
        shown = *a;
        overlay_writer(fs, &shown);
        attr_to_entry(&shown, &e);
        e.entry_timeout = entry_timeout;
        if (fuse_reply_entry(req, &e) < 0) /* interrupted: the kernel took no reference */
                (void)fs_inode_unref(fs, a->ino, 1, 0);
}

/* A FUSE worker's try needs a block from the network (fs_no_fetch): nothing was replied or
 * changed, a job thread does it (meta_job). */
static bool deferred(int r)
{
        return r == -EWOULDBLOCK && fs_no_fetch;
}

/* Whether ino is a follow mount's root, whose entries change at each switch (follow.c). */
static bool is_follow_root(struct fs *fs, uint64_t ino)
{
        return ino == INDEX_ROOT_INO && fs_is_following(fs);
}

static bool do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fs *fs = req_fs(req);
        struct fuse_entry_param e;
        struct index_attr a;
        int r;

        r = fs_tree_lookup(fs, parent, name, &a);
        if (deferred(r))
                return false;
        if (r >= 0)
                overlay_writer(fs, &a);
        if (r >= 0 && is_follow_root(fs, parent) && strcmp(name, FS_IPFS_NAME) != 0) {
                reply_entry_timed(req, &a, FS_ATTR_TIMEOUT_S);
                return true;
        }
        if (r == -ENOENT) {
                /* a negative entry the kernel may cache briefly */
                e = (struct fuse_entry_param){ .ino = 0, .entry_timeout = FS_ATTR_TIMEOUT_S };
                if (reply_take(req))
                        (void)fuse_reply_entry(req, &e);
                return true;
        }
        reply_entry(req, r, &a);
        return true;
}

static bool do_getattr(fuse_req_t req, fuse_ino_t ino)
{
        struct fs *fs = req_fs(req);
        struct index_attr a;
        struct stat st;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r >= 0 && is_follow_root(fs, ino) && fs_follow_dir(fs)) {
                /* the followed tree's directory, as the root (its times, its mode) */
                r = index_getattr(fs->idx, fs_follow_dir(fs), &a);
                a.ino = INDEX_ROOT_INO;
                a.flags &= ~INDEX_FLAG_RO; /* it changes at a switch: short timeouts */
        }
        if (r >= 0)
                r = fs_tree_resolve(fs, &a);
        if (deferred(r))
                return false;
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        overlay_writer(fs, &a);
        attr_to_stat(&a, &st);
        if (reply_take(req))
                (void)fuse_reply_attr(req, &st, attr_timeout(&a));
        return true;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        if (!S_ISDIR(a.mode)) {
                reply_err(req, -ENOTDIR);
                return;
        }
        /* a follow mount's root: the listing reads the tree shown now to its end (follow.c) */
        fi->fh = is_follow_root(fs, ino) ? fs_follow_dir(fs) : 0;
        /*
         * An immutable tree (.ipfs/CID, a follow mount's trees): the kernel keeps each whole
         * listing (FOPEN_CACHE_DIR, kept across opendirs by keep_cache), as it keeps their
         * entries and attributes. Not a mutable directory's: a listing from the kernel brings
         * no attributes, so `ls -l` or rsync would then look up every entry whose one-second
         * timeout ran out, one round trip each, where READDIRPLUS hands out a batch (measured:
         * `find` 6x faster, `ls -lR` 5x slower; docs/bench-notes.md). .ipfs/ itself is marked
         * read-only but a lookup adds to it; the mount root (a follow mount's too) never is.
         */
        fi->cache_readdir = a.flags & INDEX_FLAG_RO && ino != fs->ipfs_ino;
        fi->keep_cache = fi->cache_readdir;
        (void)fuse_reply_open(req, fi);
}

struct dirbuf {
        fuse_req_t req;
        char *p;
        size_t size, used;
        bool plus;
        bool is_full;
        bool is_follow_root; /* a follow mount's root: short entry timeouts */
        uint64_t cookie;     /* of the last entry added */
        uint64_t *refs;      /* readdirplus: the entries' references taken for the kernel */
        size_t n_refs, cap_refs;
};

/* Gives back the references of a readdirplus answer the kernel did not get. */
static void dirbuf_unref(struct dirbuf *d)
{
        struct fs *fs = req_fs(d->req);

        for (size_t i = 0; i < d->n_refs; i++)
                (void)fs_inode_unref(fs, d->refs[i], 1, 0);
        d->n_refs = 0;
}

static int dirbuf_add(struct dirbuf *d, const char *name, const struct index_attr *a,
                      off_t next_off)
{
        size_t left = d->size - d->used, n;

        if (d->plus && (a->mode & S_IFMT) == 0) {
                /* listed without a type (tree.c): no attributes, so the kernel looks it up
                 * when it is used (nodeid 0: "no entry data", not a negative entry) */
                struct fuse_entry_param e = { .attr = { .st_ino = a->ino } };

                n = fuse_add_direntry_plus(d->req, d->p + d->used, left, name, &e, next_off);
        } else if (d->plus) {
                struct fs *fs = req_fs(d->req);
                bool counted = strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
                struct index_attr shown = *a;
                struct fuse_entry_param e;

                /* the kernel takes these attributes as it takes getattr's: a file open for
                 * writing shows its writer's size and times, not the index's */
                overlay_writer(fs, &shown);
                attr_to_entry(&shown, &e);
                if (d->is_follow_root) /* they change at a switch (follow.c) */
                        e.entry_timeout = FS_ATTR_TIMEOUT_S;
                n = fuse_add_direntry_plus(d->req, d->p + d->used, left, name, &e, next_off);
                /* the kernel takes a reference to every entry but . and .. */
                if (n <= left && counted) {
                        if (d->n_refs == d->cap_refs) {
                                size_t cap = d->cap_refs ? 2 * d->cap_refs : 64;
                                uint64_t *p = reallocarray(d->refs, cap, sizeof(*p));

                                if (!p)
                                        return 1; /* not counted: not sent */
                                d->refs = p;
                                d->cap_refs = cap;
                        }
                        if (fs_inode_ref(fs, a->ino, 1, 0) < 0)
                                return 1;
                        d->refs[d->n_refs++] = a->ino;
                }
        } else {
                struct stat st = { .st_ino = a->ino, .st_mode = a->mode };

                n = fuse_add_direntry(d->req, d->p + d->used, left, name, &st, next_off);
        }
        if (n > left) {
                d->is_full = true;
                return 1; /* full: the entry is not consumed */
        }
        d->used += n;
        return 0;
}

/* readdir offsets: 1 = after ".", 2 = after "..", cookie + 2 = after that entry */
static int dirent_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct dirbuf *d = ud;
        int r = dirbuf_add(d, name, a, (off_t)(cookie + 2));

        if (r == 0)
                d->cookie = cookie;
        return r;
}

/* fh: what opendir recorded (a follow mount's root: the tree its listing reads) */
static bool do_readdir(fuse_req_t req, fuse_ino_t ino, uint64_t fh, size_t size, off_t off,
                       bool plus)
{
        struct fs *fs = req_fs(req);
        struct dirbuf d = { .req = req, .size = size, .plus = plus };
        struct index_attr self, root;
        bool is_empty = false;
        int r;

        r = index_getattr(fs->idx, ino, &self);
        if (r >= 0 && is_follow_root(fs, ino)) {
                /* entries of the tree this listing started on, with short entry timeouts;
                 * none before the first root */
                root = self;
                d.is_follow_root = true;
                if (!fh)
                        is_empty = true;
                else
                        r = index_getattr(fs->idx, fh, &self);
                ino = fh ? fh : ino;
        }
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        /* a lazy directory's listing may fetch its next batch: a job thread lists it */
        if (fs_no_fetch && self.state == INDEX_STATE_LAZY)
                return false;
        d.p = malloc(size);
        if (!d.p) {
                reply_err(req, -ENOMEM);
                return true;
        }
        if (off < 1 && dirbuf_add(&d, ".", d.is_follow_root ? &root : &self, 1) > 0)
                goto reply;
        if (off < 2) {
                /* ".." of the root points at itself; the kernel fills in the real parent */
                if (dirbuf_add(&d, "..", d.is_follow_root ? &root : &self, 2) > 0)
                        goto reply;
                off = 2;
        }
        if (is_empty)
                goto reply;
        /* a lazy directory gets entries a batch at a time until the buffer is full: entries
         * added later have larger cookies, so each is listed once */
        d.cookie = (uint64_t)off - 2;
        for (;;) {
                r = index_readdir(fs->idx, ino, d.cookie, dirent_cb, &d);
                if (r < 0 || d.is_full || self.state != INDEX_STATE_LAZY)
                        break;
                r = fs_tree_list_more(fs, &self);
                if (r >= 0)
                        r = index_getattr(fs->idx, ino, &self);
                if (r < 0)
                        break;
        }
        if (r < 0 && d.used == 0) {
                free(d.p);
                free(d.refs);
                reply_err(req, r);
                return true;
        }
reply:
        /* interrupted (EINTR answered, or the kernel gave up): it took no reference */
        if (!reply_take(req) || fuse_reply_buf(req, d.p, d.used) < 0)
                dirbuf_unref(&d);
        free(d.p);
        free(d.refs);
        return true;
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        (void)fi;
        (void)fuse_reply_err(req, 0);
}

/*
 * df: the space of the staging file system (cache_dir), which is where writes go and what
 * runs out first (ENOSPC); the IPFS nodes' capacity is unknown. Files: those in the index,
 * and the staging file system's free inodes.
 */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct fs *fs = fuse_req_userdata(req);
        uint64_t inodes = 0, bytes = 0;
        struct statvfs local, sv;
        int r;

        (void)ino;
        r = index_totals(fs->idx, &inodes, &bytes);
        if (r >= 0 && fstatvfs(fs->staging_fd, &local) < 0)
                r = -errno;
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        sv = (struct statvfs){
                .f_bsize = FS_BLKSIZE,
                .f_frsize = local.f_frsize,
                .f_blocks = local.f_blocks,
                .f_bfree = local.f_bfree,
                .f_bavail = local.f_bavail,
                .f_files = inodes + local.f_ffree,
                .f_ffree = local.f_ffree,
                .f_favail = local.f_favail,
                .f_namemax = INDEX_NAME_MAX,
                .f_flag = fs_is_following(fs) ? ST_RDONLY : 0,
        };
        (void)fuse_reply_statfs(req, &sv);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct fs *fs = fuse_req_userdata(req);
        char target[4096];
        int r;

        r = index_readlink(fs->idx, ino, target, sizeof(target));
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        (void)fuse_reply_readlink(req, target);
}

static void reply_xattr(fuse_req_t req, const void *value, size_t len, size_t size)
{
        if (size == 0)
                (void)fuse_reply_xattr(req, len);
        else if (len > size)
                reply_err(req, -ERANGE);
        else
                (void)fuse_reply_buf(req, value, len);
}

/* user.* and trusted.* are stored; user.prsm.* is ours; other namespaces are not supported. */
static int xattr_name_ok(const char *name)
{
        if (strncmp(name, "user.prsm.", 10) == 0)
                return -EPERM;
        if (strncmp(name, "user.", 5) != 0 && strncmp(name, "trusted.", 8) != 0)
                return -EOPNOTSUPP;
        return 0;
}

/* trusted.* is for privileged callers only: the others neither see nor set it (like the
 * kernel's own file systems). */
static bool xattr_hidden_from(fuse_req_t req, const char *name)
{
        return strncmp(name, "trusted.", 8) == 0 && fuse_req_ctx(req)->uid != 0;
}

static void getxattr_tensors(fuse_req_t req, fuse_ino_t ino, size_t size);

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        char cid[CID_MAX_STR];
        void *buf = NULL;
        int r;

        if (strcmp(name, XATTR_CID) == 0) {
                r = index_getattr(fs->idx, ino, &a);
                if (r < 0) {
                        reply_err(req, r);
                        return;
                }
                overlay_writer(fs, &a);
                /* content whose upload is pending has no CID yet (not the old one's), nor
                 * has a lazy directory changed below (its CID only lists it) */
                if (!a.has_cid || a.staged || a.state == INDEX_STATE_DIRTY ||
                    (a.flags & INDEX_FLAG_CHANGED)) {
                        reply_err(req, -ENODATA);
                        return;
                }
                (void)cid_to_string(&a.cid, cid);
                reply_xattr(req, cid, strlen(cid), size);
                return;
        }
        if (strcmp(name, XATTR_PROVENANCE) == 0 || strcmp(name, XATTR_CREATOR) == 0 ||
            strcmp(name, XATTR_PRSM_FORMAT) == 0 ||
            strncmp(name, XATTR_PRSM_META, strlen(XATTR_PRSM_META)) == 0) {
                size_t len = 0;

                /* computed from the index: records, or PRSM content's layout */
                r = strncmp(name, XATTR_PRSM_META, strlen(XATTR_PRSM_META)) == 0 ||
                                    strcmp(name, XATTR_PRSM_FORMAT) == 0
                            ? fs_pview_xattr(fs, ino, name, (char **)&buf, &len)
                            : fs_prov_xattr(fs, ino, strcmp(name, XATTR_CREATOR) == 0,
                                            (char **)&buf, &len);
                if (r < 0)
                        reply_err(req, r);
                else
                        reply_xattr(req, buf, len, size);
                free(buf);
                return;
        }
        if (strcmp(name, XATTR_CONTROL) == 0) {
                if (ino != INDEX_ROOT_INO || !fs->control_path)
                        reply_err(req, -ENODATA);
                else
                        reply_xattr(req, fs->control_path, strlen(fs->control_path), size);
                return;
        }
        if (strcmp(name, XATTR_TENSORS) == 0) {
                getxattr_tensors(req, ino, size); /* reads the header: may need a job thread */
                return;
        }
        /* ls -l asks for security.selinux and system.posix_acl_access of every entry. These
         * namespaces cannot be stored (setxattr refuses them), so the answer is EOPNOTSUPP,
         * as from any file system without them: ls then marks the whole device as having
         * neither and stops asking (ENODATA would cost two round trips per entry). */
        if (xattr_name_ok(name) == -EOPNOTSUPP) {
                reply_err(req, -EOPNOTSUPP);
                return;
        }
        if (xattr_hidden_from(req, name)) {
                reply_err(req, -ENODATA);
                return;
        }
        if (size) {
                buf = malloc(size);
                if (!buf) {
                        reply_err(req, -ENOMEM);
                        return;
                }
        }
        r = index_xattr_get(fs->idx, ino, name, buf, size);
        if (r < 0)
                reply_err(req, r);
        else
                reply_xattr(req, buf, (size_t)r, size);
        free(buf);
}

/*
 * The stored names only: the synthetic user.prsm.* attributes stay readable by name
 * (getfattr -n user.prsm.cid) but are not listed, so that rsync -X and cp -a do not copy
 * them as if they were user data (a stale CID on a local file) or try to remove them.
 */
static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        struct fs *fs = fuse_req_userdata(req);
        size_t total, kept = 0;
        char *buf;
        int r;

        r = index_xattr_list(fs->idx, ino, NULL, 0);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        total = (size_t)r;
        buf = malloc(total + 1);
        if (!buf) {
                reply_err(req, -ENOMEM);
                return;
        }
        r = index_xattr_list(fs->idx, ino, buf, total + 1);
        if (r >= 0) {
                total = MIN((size_t)r, total); /* names added meanwhile are not listed */
                for (size_t at = 0; at < total;) {
                        size_t len = strnlen(buf + at, total - at) + 1;

                        if (!xattr_hidden_from(req, buf + at)) {
                                memmove(buf + kept, buf + at, len);
                                kept += len;
                        }
                        at += len;
                }
        }
        if (r < 0)
                reply_err(req, r);
        else if (size == 0)
                (void)fuse_reply_xattr(req, kept);
        else if (kept > size)
                reply_err(req, -ERANGE);
        else
                (void)fuse_reply_buf(req, buf, kept);
        free(buf);
}

/* A directory that may get a new entry: not in .ipfs/, and expanded if it was linked.
 * *ret (optional) is its attributes. */
static int writable_dir(struct fs *fs, uint64_t ino, struct index_attr *ret)
{
        struct index_attr a;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r < 0)
                return r;
        if (!S_ISDIR(a.mode))
                return -ENOTDIR;
        if (a.flags & INDEX_FLAG_RO || fs_is_following(fs)) /* a follow mount: all of it */
                return -EROFS;
        r = fs_tree_expand(fs, &a);
        if (r >= 0 && ret)
                *ret = a;
        return r;
}

/*
 * Creates parent/name as n (type, permissions after the umask, content), owned by the
 * caller. In a setgid directory the new entry takes the directory's group instead of the
 * caller's, and a new subdirectory the setgid bit too (POSIX leaves it to the file system;
 * Linux file systems all do this, and shared project directories rely on it). Whether a
 * new file keeps a setgid bit of its own is decided by the kernel before the request.
 */
static int make_entry(fuse_req_t req, fuse_ino_t parent, const char *name, struct index_new_node *n,
                      struct index_attr *ret)
{
        struct fs *fs = fuse_req_userdata(req);
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        struct index_attr dir;
        int r;

        r = strlen(name) > INDEX_NAME_MAX ? -ENAMETOOLONG : writable_dir(fs, parent, &dir);
        if (r < 0)
                return r;
        n->uid = ctx->uid;
        n->gid = ctx->gid;
        if (dir.mode & S_ISGID) {
                n->gid = dir.gid;
                if (S_ISDIR(n->mode))
                        n->mode |= S_ISGID;
        }
        return index_mknode(fs->idx, parent, name, n, ret);
}

static bool do_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
        struct index_new_node n = {
                .mode = S_IFLNK | 0777,
                .size = strlen(target),
                .target = target,
        };
        struct index_attr a;
        int r;

        r = strlen(target) > FS_SYMLINK_MAX ? -ENAMETOOLONG : make_entry(req, parent, name, &n, &a);
        if (deferred(r))
                return false;
        reply_entry(req, r, &a);
        return true;
}

static bool do_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        int r;

        r = writable_dir(fs, parent, NULL);
        if (deferred(r))
                return false;
        if (r >= 0)
                r = index_getattr(fs->idx, ino, &a);
        if (r >= 0 && a.flags & INDEX_FLAG_RO)
                r = -EROFS;
        if (r >= 0)
                r = index_link(fs->idx, ino, parent, name, &a);
        reply_entry(req, r, &a);
        return true;
}

/* An inode no entry names any more goes, unless the kernel or a handle still holds it (then
 * its last forget or release, or the next start, takes it). */
static void drop_if_orphan(struct fs *fs, const struct index_attr *a)
{
        int r;

        if (a->ino == 0 || a->nlink > 0 || fs_inode_in_use(fs, a->ino))
                return;
        r = index_drop_orphans(fs->idx, a->ino);
        if (r < 0)
                log_warning("cannot drop unlinked inode %" PRIu64 ": %s", a->ino, strerror(-r));
        else
                fs_pins_kick(fs); /* its content's unpin may be owed now */
}

/* Drops references to ino (the kernel's lookups, open files): an unlinked inode nothing
 * holds any more goes. */
static void inode_unref(struct fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen)
{
        struct index_attr a;

        if (fs_inode_unref(fs, ino, nlookup, nopen) && index_getattr(fs->idx, ino, &a) >= 0)
                drop_if_orphan(fs, &a);
}

static void forget_one(struct fs *fs, uint64_t ino, uint64_t nlookup)
{
        inode_unref(fs, ino, nlookup, 0);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        forget_one(fuse_req_userdata(req), ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        for (size_t i = 0; i < count; i++)
                forget_one(fuse_req_userdata(req), forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* /.ipfs is the daemon's: it cannot be removed, renamed or replaced (a writable directory
 * put in its place would serve files named after CIDs that are not their content). */
static bool is_ipfs_entry(uint64_t parent, const char *name)
{
        return parent == INDEX_ROOT_INO && strcmp(name, FS_IPFS_NAME) == 0;
}

static bool do_unlink(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr victim;
        int r;

        r = is_ipfs_entry(parent, name) ? -EBUSY : writable_dir(fs, parent, NULL);
        if (r >= 0 && dir) {
                /* a linked directory's entries must be known to tell whether it is empty */
                r = fs_tree_lookup(fs, parent, name, &victim);
                if (r >= 0 && S_ISDIR(victim.mode))
                        r = fs_tree_expand(fs, &victim);
        }
        if (deferred(r))
                return false;
        if (r >= 0)
                r = index_unlink(fs->idx, parent, name, dir, &victim);
        if (r >= 0)
                fs_prov_entry(fs, parent, name, 0, NULL, &victim);
        if (r >= 0)
                drop_if_orphan(fs, &victim);
        reply_err(req, r);
        return true;
}

static bool do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr replaced = { 0 }, target;
        int r, t;

        if (flags & ~(unsigned)RENAME_NOREPLACE) {
                reply_err(req, -EINVAL); /* RENAME_EXCHANGE, RENAME_WHITEOUT */
                return true;
        }
        r = strlen(newname) > INDEX_NAME_MAX ? -ENAMETOOLONG
            : is_ipfs_entry(parent, name) || is_ipfs_entry(newparent, newname)
                    ? -EBUSY
                    : writable_dir(fs, parent, NULL);
        if (r >= 0 && newparent != parent)
                r = writable_dir(fs, newparent, NULL);
        /* a linked directory being replaced must be expanded to tell whether it is empty */
        if (r >= 0) {
                t = fs_tree_lookup(fs, newparent, newname, &target);
                if (deferred(t))
                        r = t;
                else if (t >= 0 && S_ISDIR(target.mode))
                        r = fs_tree_expand(fs, &target);
        }
        if (deferred(r))
                return false;
        if (r >= 0)
                r = index_rename(fs->idx, parent, name, newparent, newname,
                                 flags & RENAME_NOREPLACE ? INDEX_RENAME_NOREPLACE : 0, &replaced);
        if (r >= 0 && prsm_has_provenance(fs->prsm) &&
            index_lookup(fs->idx, newparent, newname, &target) >= 0)
                fs_prov_entry(fs, parent, name, newparent, newname, &target);
        if (r >= 0)
                drop_if_orphan(fs, &replaced);
        reply_err(req, r);
        return true;
}

/* truncate(2)/ftruncate(2): through the inode's writer, made durable at once when no handle
 * will flush it later. */
static int truncate_file(struct fs *fs, const struct index_attr *a, struct fuse_file_info *fi,
                         uint64_t size)
{
        struct handle *h = fi ? handle_of(fi) : NULL;
        struct wfile *wf = NULL;
        int r;

        if (S_ISDIR(a->mode))
                return -EISDIR;
        if (!S_ISREG(a->mode))
                return -EINVAL;
        if (h && h->wf && h->writes)
                return fs_wfile_truncate(fs, h->wf, size); /* its close will flush */
        r = fs_wfile_open(fs, a, size == 0, &wf);
        if (r >= 0)
                r = fs_wfile_truncate(fs, wf, size);
        if (r >= 0)
                r = fs_wfile_flush(fs, wf);
        fs_wfile_close(fs, wf);
        return r;
}

static bool do_setattr(fuse_req_t req, fuse_ino_t ino, const struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_setattr s = { 0 };
        struct index_attr a;
        struct timespec now;
        struct stat st;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r >= 0 && a.flags & INDEX_FLAG_RO)
                r = -EROFS;
        /* (a truncate that must fetch the old content is done again by the job: the same
         * size twice is the same file) */
        if (r >= 0 && to_set & FUSE_SET_ATTR_SIZE)
                r = a.flags & INDEX_FLAG_PRSM ? -EROFS
                                              : truncate_file(fs, &a, fi, (uint64_t)attr->st_size);
        if (deferred(r))
                return false;
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        if (to_set & FUSE_SET_ATTR_MODE) {
                s.set |= INDEX_SET_MODE;
                s.mode = attr->st_mode;
        }
        if (to_set & FUSE_SET_ATTR_UID) {
                s.set |= INDEX_SET_UID;
                s.uid = attr->st_uid;
        }
        if (to_set & FUSE_SET_ATTR_GID) {
                s.set |= INDEX_SET_GID;
                s.gid = attr->st_gid;
        }
        /* times as the kernel gives them, whole: any year a timespec holds */
        if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
                s.set |= INDEX_SET_ATIME;
                s.atime = to_set & FUSE_SET_ATTR_ATIME_NOW ? now : attr->st_atim;
        }
        if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
                s.set |= INDEX_SET_MTIME;
                s.mtime = to_set & FUSE_SET_ATTR_MTIME_NOW ? now : attr->st_mtim;
        }
        if (to_set & FUSE_SET_ATTR_CTIME) {
                s.set |= INDEX_SET_CTIME;
                s.ctime = attr->st_ctim;
        }
        r = index_setattr(fs->idx, ino, &s, &a);
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        if (s.set & INDEX_SET_MTIME && S_ISREG(a.mode)) {
                struct wfile *wf = fs_wfile_get(fs, ino);

                if (wf) {
                        fs_wfile_set_mtime(wf, &s.mtime);
                        fs_wfile_close(fs, wf);
                }
        }
        overlay_writer(fs, &a);
        attr_to_stat(&a, &st);
        (void)fuse_reply_attr(req, &st, attr_timeout(&a));
        return true;
}

/* An xattr of ino may be changed: not in .ipfs/, a name we store. */
static int xattr_change_ok(struct fs *fs, uint64_t ino, const char *name)
{
        struct index_attr a;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r >= 0 && a.flags & INDEX_FLAG_RO)
                r = -EROFS;
        return r < 0 ? r : xattr_name_ok(name);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
        struct fs *fs = fuse_req_userdata(req);
        int r;

        r = xattr_hidden_from(req, name) ? -EPERM : xattr_change_ok(fs, ino, name);
        if (r >= 0 && size > XATTR_SIZE_MAX)
                r = -E2BIG;
        if (r >= 0)
                r = index_xattr_set(fs->idx, ino, name, value, size,
                                    (flags & XATTR_CREATE ? INDEX_XATTR_CREATE : 0) |
                                            (flags & XATTR_REPLACE ? INDEX_XATTR_REPLACE : 0));
        reply_err(req, r);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        struct fs *fs = fuse_req_userdata(req);
        int r;

        r = xattr_hidden_from(req, name) ? -EPERM : xattr_change_ok(fs, ino, name);
        if (r >= 0)
                r = index_xattr_remove(fs->idx, ino, name);
        reply_err(req, r);
}

/* A view of a file's content as last closed: by CID, or staged while its upload is pending. */
struct view {
        struct rfile *rf;
        int staged_fd;
};

static void view_close(struct fs *fs, struct view *v)
{
        fs_rfile_close(fs, v->rf);
        if (v->staged_fd >= 0)
                close(v->staged_fd);
        *v = (struct view){ .staged_fd = -1 };
}

/* Opens the view of *a (updated from the index if its upload committed meanwhile). */
static int view_open(struct fs *fs, struct index_attr *a, struct view *ret)
{
        int r;

        *ret = (struct view){ .staged_fd = -1 };
        if (a->staged && (r = fs_staged_open_attr(fs, a)) != -ESTALE) {
                if (r >= 0)
                        ret->staged_fd = r;
                return r;
        }
        return fs_rfile_open(fs, a, &ret->rf); /* (a committed upload: *a is fresh) */
}

static void handle_unref(struct fs *fs, struct handle *h)
{
        struct view v;

        if (!h || __atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        pthread_mutex_lock(&fs->files_lock);
        LIST_REMOVE(fs->handles, h); /* a handle handle_open failed on was never added */
        pthread_mutex_unlock(&fs->files_lock);
        v = (struct view){ .rf = h->rf, .staged_fd = h->staged_fd };
        view_close(fs, &v);
        fs_wfile_close(fs, h->wf);
        pthread_rwlock_destroy(&h->view_lock);
        inode_unref(fs, h->ino, 0, 1); /* unlinked while open: its last handle is gone */
        free(h);
}

static int handle_open(struct fs *fs, struct index_attr *a, int flags, bool created,
                       struct handle **ret)
{
        bool writes = (flags & O_ACCMODE) != O_RDONLY || flags & O_TRUNC;
        struct handle *h;
        struct view v;
        int r = 0;

        if (S_ISDIR(a->mode))
                return -EISDIR;
        if (!S_ISREG(a->mode))
                return -EINVAL;
        if (writes && a->flags & (INDEX_FLAG_RO | INDEX_FLAG_PRSM))
                return -EROFS; /* PRSM content: what its JSON says, not a file to change */
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        r = fs_inode_ref(fs, a->ino, 0, 1);
        if (r < 0) {
                free(h);
                return r;
        }
        h->ino = a->ino;
        h->staged_fd = -1;
        h->writes = writes;
        h->refs = 1;
        pthread_rwlock_init(&h->view_lock, NULL);
        if (writes)
                r = fs_wfile_open(fs, a, created || flags & O_TRUNC, &h->wf);
        else if ((h->wf = fs_wfile_get(fs, a->ino)))
                r = 0; /* read what the writer has */
        else {
                /* the sequence first: content flushed after it is seen at the next read */
                h->seq = fs_inode_seq(fs, a->ino);
                r = index_getattr(fs->idx, a->ino, a);
                if (r >= 0)
                        r = view_open(fs, a, &v);
                if (r >= 0) {
                        h->rf = v.rf;
                        h->staged_fd = v.staged_fd;
                }
        }
        if (r < 0) {
                handle_unref(fs, h);
                return r;
        }
        pthread_mutex_lock(&fs->files_lock);
        LIST_PREPEND(fs->handles, h);
        pthread_mutex_unlock(&fs->files_lock);
        *ret = h;
        return 0;
}

void fs_release_handles(struct fs *fs)
{
        struct handle *h;
        unsigned n = 0;

        if (!fs)
                return;
        fs_prefetch_stop(fs); /* warm-ups end with the session */
        fs_waiters_stop(fs);
        /* their requests use handles: answered before those go */
        fs_jobq_stop(&fs->readq);
        fs_jobq_stop(&fs->metaq);
        for (;;) {
                pthread_mutex_lock(&fs->files_lock);
                h = fs->handles;
                pthread_mutex_unlock(&fs->files_lock);
                if (!h)
                        break;
                h->refs = 1; /* the kernel's: the reads' ended with their queue */
                handle_unref(fs, h);
                n++;
        }
        if (n)
                log_notice("%u file handle(s) the kernel did not release before the session "
                           "ended: freed (writes never closed are not kept)",
                           n);
}

static void reply_open(fuse_req_t req, struct fs *fs, const struct index_attr *a,
                       struct fuse_file_info *fi, struct handle *h, bool created)
{
        int r;

        if (!reply_take(req)) {
                handle_unref(fs, h); /* interrupted: the caller is gone */
                return;
        }
        fi->fh = (uintptr_t)h;
        /* a CID's bytes never change: pages stay valid across opens */
        fi->keep_cache = !h->wf && h->staged_fd < 0 && a->has_cid && a->state == INDEX_STATE_CLEAN;
        if (created) {
                struct fuse_entry_param e;

                r = fs_inode_ref(fs, a->ino, 1, 0); /* the entry */
                if (r < 0) {
                        handle_unref(fs, h);
                        reply_err(req, r);
                        return;
                }
                attr_to_entry(a, &e);
                r = fuse_reply_create(req, &e, fi);
                if (r < 0)
                        (void)fs_inode_unref(fs, a->ino, 1, 0);
        } else
                r = fuse_reply_open(req, fi);
        if (r < 0)
                handle_unref(fs, h); /* interrupted: no release will come */
}

static bool do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = req_fs(req);
        struct handle *h = NULL;
        struct index_attr a;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r >= 0)
                r = handle_open(fs, &a, fi->flags, false, &h);
        if (deferred(r))
                return false; /* its root block (handle_open undid what it did) */
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        if (h->rf) {
                fs_prefetch_on_open(fs, &a); /* in the background, if the config asks */
                fs_rfile_count_open(h->rf);  /* the access ledger's open */
        }
        reply_open(req, fs, &a, fi, h, false);
        return true;
}

/* A new regular file, FIFO, socket or device node (mode has the type) owned by the caller,
 * with the caller's umask. */
static int make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
                     struct index_attr *ret)
{
        struct index_new_node n = {
                .mode = (mode & S_IFMT) | (mode & ~fuse_req_ctx(req)->umask & 07777),
                .rdev = S_ISCHR(mode) || S_ISBLK(mode) ? (uint64_t)rdev : 0,
        };

        return make_entry(req, parent, name, &n, ret);
}

static bool do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct handle *h = NULL;
        struct index_attr a;
        int r;

        r = make_node(req, parent, name, S_IFREG | (mode & 07777), 0, &a);
        if (deferred(r))
                return false; /* the parent's entries (writable_dir): before anything */
        if (r >= 0)
                r = handle_open(fs, &a, fi->flags, true, &h);
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        reply_open(req, fs, &a, fi, h, true);
        return true;
}

static bool do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        struct index_attr a;
        int r;

        /* FIFOs, sockets and device nodes (rsync -a, cp -a) are inodes like the others, kept
         * in the index only: the kernel serves their opens itself (a FIFO's pipe, a bound
         * socket, a device's driver, which the default nodev mount refuses), and publish
         * leaves them out, as UnixFS has no form for them. */
        switch (mode & S_IFMT) {
        case S_IFREG:
        case S_IFIFO:
        case S_IFSOCK:
        case S_IFCHR:
        case S_IFBLK:
                r = make_node(req, parent, name, mode, rdev, &a);
                break;
        default:
                r = -EINVAL; /* mknod(2) of another type */
                break;
        }
        if (deferred(r))
                return false;
        reply_entry(req, r, &a);
        return true;
}

#define READ_MAX_BUFS 64 /* more pieces (tiny leaves) are gathered into one buffer */

/* Sends the pieces as they are: memory from the blocks, ranges of cached block files by fd
 * (spliced by the kernel when it can); no copy in the daemon. */
static void reply_segs(fuse_req_t req, struct fs_seg *segs, size_t n)
{
        struct fuse_bufvec *bv;
        size_t total = 0;
        char *buf;
        int r = 0;

        if (n <= READ_MAX_BUFS) {
                bv = calloc(1, sizeof(*bv) + (n ? n - 1 : 0) * sizeof(bv->buf[0]));
                if (!bv) {
                        reply_err(req, -ENOMEM);
                        return;
                }
                bv->count = n;
                for (size_t i = 0; i < n; i++)
                        bv->buf[i] = segs[i].fd >= 0 ? (struct fuse_buf){
                                .size = segs[i].len,
                                .flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY,
                                .fd = segs[i].fd,
                                .pos = (off_t)segs[i].fd_off,
                        } : (struct fuse_buf){ .size = segs[i].len, .mem = (void *)segs[i].p };
                if (n == 0)
                        bv->count = 1; /* one empty buffer: end of file */
                (void)fuse_reply_data(req, bv, 0);
                free(bv);
                return;
        }
        for (size_t i = 0; i < n; i++)
                total += segs[i].len;
        buf = malloc(total);
        if (!buf) {
                reply_err(req, -ENOMEM);
                return;
        }
        total = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = fs_seg_copy(&segs[i], buf + total);
                total += segs[i].len;
        }
        if (r < 0)
                reply_err(req, r);
        else
                (void)fuse_reply_buf(req, buf, total);
        free(buf);
}

/* Replies got bytes of buf (or the error got < 0) and frees buf. */
static void reply_read(fuse_req_t req, char *buf, ssize_t got)
{
        if (got < 0)
                reply_err(req, (int)got);
        else
                (void)fuse_reply_buf(req, buf, (size_t)got);
        free(buf);
}

/* How a read may wait: a FUSE worker tries memory and disk first (READ_LOCAL); a reader
 * thread then fetches (READ_AFTER_LOCAL: readahead was queued by the try); READ_BLOCKING
 * fetches at once (no reader threads). */
enum read_mode { READ_LOCAL, READ_AFTER_LOCAL, READ_BLOCKING };

/*
 * Reads through v and replies; in READ_LOCAL only from memory and disk: false (no reply,
 * lock released) when a block must be fetched, for a reader thread to do it.
 */
static bool view_read_reply(fuse_req_t req, struct fs *fs, const struct view *v, size_t size,
                            off_t off, pthread_rwlock_t *lock, enum read_mode mode)
{
        bool may_block = mode != READ_LOCAL;
        struct fs_seg *segs = NULL;
        size_t n = 0;
        ssize_t got;
        char *buf;
        int r;

        if (v->rf) {
                struct interruptible *g = may_block ? interruptible_arm(req) : NULL;

                if (g) /* the read's fetches end at the interrupt */
                        net_set_abort(&g->answered);
                r = fs_rfile_read(fs, v->rf, (uint64_t)off, size,
                                  mode == READ_LOCAL         ? FS_READ_LOCAL
                                  : mode == READ_AFTER_LOCAL ? FS_READ_NO_RA
                                                             : 0,
                                  &segs, &n);
                net_set_abort(NULL);
                if (lock)
                        pthread_rwlock_unlock(lock);
                if (r == -EWOULDBLOCK && !may_block)
                        return false;
                if (!interruptible_take(req, g))
                        ; /* answered EINTR already: the caller is gone */
                else if (r < 0)
                        reply_err(req, r);
                else
                        reply_segs(req, segs, n); /* the segments own what they refer to */
                fs_segs_free(segs, n);
                return true;
        }
        buf = malloc(size ? size : 1);
        got = !buf ? -ENOMEM : pread(v->staged_fd, buf, size, off);
        if (got < 0 && buf)
                got = -errno;
        if (lock)
                pthread_rwlock_unlock(lock);
        reply_read(req, buf, got);
        return true;
}

/*
 * A view whose content was replaced since it was opened: opens the current one (which may
 * fetch its root: readers only) and puts it in the handle if no read is using the old one
 * (else this read alone uses it).
 */
static bool read_replaced(fuse_req_t req, struct fs *fs, struct handle *h, size_t size, off_t off,
                          enum read_mode mode)
{
        uint64_t seq = fs_inode_seq(fs, h->ino);
        struct index_attr a;
        struct view v, old;
        int r;

        if (mode == READ_LOCAL)
                return false;
        r = index_getattr(fs->idx, h->ino, &a);
        if (r >= 0)
                r = view_open(fs, &a, &v);
        if (r < 0) {
                reply_err(req, r);
                return true;
        }
        if (pthread_rwlock_trywrlock(&h->view_lock) != 0) {
                (void)view_read_reply(req, fs, &v, size, off, NULL, READ_BLOCKING);
                view_close(fs, &v);
                return true;
        }
        old = (struct view){ .rf = h->rf, .staged_fd = h->staged_fd };
        h->rf = v.rf;
        h->staged_fd = v.staged_fd;
        h->seq = seq;
        pthread_rwlock_unlock(&h->view_lock);
        view_close(fs, &old);
        pthread_rwlock_rdlock(&h->view_lock);
        v = (struct view){ .rf = h->rf, .staged_fd = h->staged_fd };
        return view_read_reply(req, fs, &v, size, off, &h->view_lock, READ_BLOCKING);
}

/* A read; in READ_LOCAL only what needs no fetch: false when nothing was replied. */
static bool do_read(fuse_req_t req, struct fs *fs, struct handle *h, size_t size, off_t off,
                    enum read_mode mode)
{
        struct wfile *wf;
        struct view v;
        ssize_t got;
        char *buf;

        /* a view reads through a writer opened after it */
        wf = h->wf ? NULL : fs_wfile_get(fs, h->ino);
        if (h->wf || wf) {
                buf = malloc(size ? size : 1);
                got = buf ? fs_wfile_read(fs, h->wf ? h->wf : wf, buf, size, (uint64_t)off)
                          : -ENOMEM;
                fs_wfile_close(fs, wf);
                if (got == -EWOULDBLOCK && mode == READ_LOCAL) {
                        free(buf); /* the old content must be fetched: a reader thread */
                        return false;
                }
                reply_read(req, buf, got);
                return true;
        }
        pthread_rwlock_rdlock(&h->view_lock);
        if (h->seq != fs_inode_seq(fs, h->ino)) {
                pthread_rwlock_unlock(&h->view_lock);
                return read_replaced(req, fs, h, size, off, mode);
        }
        v = (struct view){ .rf = h->rf, .staged_fd = h->staged_fd };
        return view_read_reply(req, fs, &v, size, off, &h->view_lock, mode);
}

/*
 * Reads that must fetch are done by reader threads, not FUSE workers: a worker answers what
 * memory and disk hold at once and hands the rest over, so that reads waiting for slow or
 * unreachable nodes never leave the mount without workers for stat and ls. The job holds a
 * reference to the handle: an interrupted read is answered at once, and the kernel may send
 * RELEASE while the reader thread is still on its way out.
 */
struct read_job {
        struct fs_job job;
        fuse_req_t req;
        struct handle *h;
        size_t size;
        off_t off;
};

static void read_job_run(struct fs_job *job, bool stopping)
{
        struct read_job *j = (struct read_job *)job;
        struct fs *fs = fuse_req_userdata(j->req);

        if (stopping)
                reply_err(j->req, -EIO); /* the session is ending */
        else {
                (void)do_read(j->req, fs, j->h, j->size, j->off, READ_AFTER_LOCAL);
                if (fs_request_start_ns) /* set: a queue thread runs this */
                        atomic_max_u64(&fs->st.read_wait_max_ns,
                                       net_now_ns() - fs_request_start_ns);
        }
        handle_unref(fs, j->h); /* after the reply: the read is over */
        free(j);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct handle *h = handle_of(fi);
        struct read_job *j;
        bool done;

        (void)ino;
        if (off < 0) {
                reply_err(req, -EINVAL);
                return;
        }
        __atomic_add_fetch(&h->refs, 1, __ATOMIC_RELAXED); /* until the read is over */
        fs_no_fetch = true;
        done = do_read(req, fs, h, size, off, READ_LOCAL);
        fs_no_fetch = false;
        if (done) {
                handle_unref(fs, h);
                return;
        }
        j = calloc(1, sizeof(*j));
        if (!j) {
                (void)do_read(req, fs, h, size, off, READ_AFTER_LOCAL); /* here, then */
                handle_unref(fs, h);
                return;
        }
        *j = (struct read_job){
                .job.run = read_job_run, .req = req, .h = h, .size = size, .off = off
        };
        fs_jobq_push(&fs->readq, &j->job);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct handle *h = handle_of(fi);
        ssize_t r;

        (void)ino;
        r = off < 0                ? -EINVAL
            : !h->wf || !h->writes ? -EBADF
                                   : fs_wfile_write(fs, h->wf, buf, size, (uint64_t)off);
        if (r < 0)
                reply_err(req, (int)r);
        else
                (void)fuse_reply_write(req, (size_t)r);
}

/*
 * flush (close) makes the content durable on local disk; with sync_upload it is answered
 * once the upload is pinned too (fs_reply_when_committed: no worker waits for it).
 */
static bool do_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct handle *h = handle_of(fi);
        int r = 0;

        /* close() gets this error: the last chance to report one (lessons.md) */
        if (h->wf && h->writes) {
                r = fs_wfile_flush(fs, h->wf);
                if (deferred(r))
                        return false; /* the old content under what was not written */
                if (r >= 0 && fs->cfg->sync_upload && fs->up.submit) {
                        fs_reply_when_committed(fs, req, ino, fs_wfile_gen(h->wf));
                        return true;
                }
        }
        reply_err(req, r);
        return true;
}

/* Answered once the content is uploaded and pinned, or EIO after fsync_timeout (the data is
 * durable on local disk then, its upload queued); no worker waits for it. */
static bool do_fsync(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct handle *h = handle_of(fi);
        struct index_attr a;
        int r = 0;

        if (h->wf && h->writes)
                r = fs_wfile_flush(fs, h->wf);
        if (deferred(r))
                return false;
        if (r >= 0)
                r = index_getattr(fs->idx, ino, &a);
        if (r >= 0 && a.staged && fs->up.submit) { /* no uploader: durable on local disk only */
                fs_reply_when_committed(fs, req, ino, a.staged);
                if (fs->up.urge)
                        fs->up.urge(fs->up.ud, a.staged); /* the job's id is its generation */
                return true;
        }
        reply_err(req, r);
        return true;
}

static bool do_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct handle *h = handle_of(fi);
        int r;

        (void)ino;
        if (h->wf && h->writes) {
                r = fs_wfile_flush(fs, h->wf); /* normally flush did it already */
                if (deferred(r))
                        return false;
                if (r < 0)
                        log_error("inode %" PRIu64 ": changes not kept at release: %s",
                                  (uint64_t)ino, strerror(-r));
        }
        handle_unref(fs, h); /* (a read still in flight may hold it a little longer) */
        (void)fuse_reply_err(req, 0);
        return true;
}

int fs_link_parent(struct fs *fs, const char *path, uint64_t *ret_parent, char **ret_copy,
                   const char **ret_name)
{
        _cleanup_free_ char *copy = strdup(path);
        struct index_attr dir;
        const char *name;
        char *slash;
        int r;

        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        name = slash ? slash + 1 : copy;
        if (slash)
                *slash = '\0';
        if (!index_name_ok(name))
                return -EINVAL;
        r = fs_resolve_path(fs, slash ? copy : "", &dir);
        if (r < 0)
                return r;
        r = writable_dir(fs, dir.ino, NULL);
        if (r < 0)
                return r;
        *ret_parent = dir.ino;
        *ret_name = name;
        *ret_copy = TAKE_PTR(copy);
        return 0;
}

int fs_link_path(struct fs *fs, const char *cidstr, const char *path, uint32_t uid, uint32_t gid,
                 struct index_attr *ret)
{
        _cleanup_free_ char *copy = NULL;
        const char *name;
        uint64_t parent;
        struct cid cid;
        int r;

        if (cid_parse(cidstr, strlen(cidstr), &cid) < 0)
                return -EINVAL;
        r = fs_link_parent(fs, path, &parent, &copy, &name);
        if (r < 0)
                return r;
        r = fs_tree_link(fs, &cid, parent, name, 0, uid, gid, ret);
        if (r < 0)
                return r;
        /* the kernel may hold a negative entry for the name: drop it */
        if (fs->se)
                (void)fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
        return 0;
}

static bool do_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        struct index_new_node n = {
                .mode = S_IFDIR | (mode & ~fuse_req_ctx(req)->umask & 07777),
        };
        struct index_attr a;
        int r;

        r = make_entry(req, parent, name, &n, &a);
        if (deferred(r))
                return false;
        reply_entry(req, r, &a);
        return true;
}

/*
 * Requests other than reads that may need blocks from the network: a FUSE worker tries each
 * with fs_no_fetch (index, memory and disk only); one that would fetch changed nothing and
 * is copied into a job for a metadata thread, which answers it. So with every node hung,
 * what the index and the cache hold is still answered at once, whatever waits.
 */
enum meta_op {
        META_LOOKUP,
        META_GETATTR,
        META_READDIR,
        META_READDIRPLUS,
        META_OPEN,
        META_CREATE,
        META_MKNOD,
        META_MKDIR,
        META_SYMLINK,
        META_LINK,
        META_UNLINK,
        META_RMDIR,
        META_RENAME,
        META_SETATTR,
        META_FLUSH,
        META_FSYNC,
        META_RELEASE,
        META_COPY,    /* copy_file_range: ino to newparent (the destination inode) */
        META_TENSORS, /* getxattr user.prsm.tensors */
};

struct meta_args {
        enum meta_op op;
        fuse_ino_t ino, newparent; /* ino: the inode, or the parent of name */
        const char *name, *newname, *target;
        size_t size;
        off_t off, off_out; /* off_out: copy_file_range's destination offset */
        unsigned flags;
        mode_t mode;
        dev_t rdev;
        struct fuse_file_info fi;
        struct stat attr;
        int to_set;
};

struct meta_job {
        struct fs_job job;
        struct fs *fs;
        fuse_req_t req;
        struct interruptible *g; /* lookups, getattr, opens, listings: what an interrupt
                                    may answer (their replies can be dropped) */
        struct meta_args a;
        char strings[]; /* the names the arguments point to */
};

static bool do_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_ino_t ino_out,
                               off_t off_out, struct fuse_file_info *fi_out, size_t len)
{
        struct fs *fs = req_fs(req);
        struct handle *hout = handle_of(fi_out);
        struct wfile *wf_in;
        struct index_attr a;
        uint64_t n = 0;
        int r;

        if (off_in < 0 || off_out < 0 || ino_in == ino_out) {
                reply_err(req, -EOPNOTSUPP);
                return true;
        }
        if (!hout->wf || !hout->writes) {
                reply_err(req, -EBADF);
                return true;
        }
        /* the source as last closed, unless someone writes it now (then its bytes) */
        wf_in = fs_wfile_get(fs, ino_in);
        if (wf_in) {
                fs_wfile_close(fs, wf_in);
                reply_err(req, -EOPNOTSUPP);
                return true;
        }
        r = index_getattr(fs->idx, ino_in, &a);
        if (r >= 0 && (!S_ISREG(a.mode) || a.staged || a.state != INDEX_STATE_CLEAN))
                r = -EOPNOTSUPP; /* content still staged: the kernel copies its bytes */
        if (r >= 0 && !a.has_cid && a.size == 0) {
                (void)fuse_reply_write(req, 0); /* an empty file: nothing to copy */
                return true;
        }
        if (r >= 0 && off_in == 0 && off_out == 0 && len >= a.size && a.has_cid) {
                /* the copy's reader needs the root block: here, not under the writer's lock */
                struct net_block *b = NULL;

                r = fs_block_get(fs, &a.cid, fs_deadline(fs), &b);
                net_block_unref(b);
        }
        if (r >= 0)
                r = fs_wfile_copy_link(fs, hout->wf, &a, (uint64_t)off_in, (uint64_t)off_out, len,
                                       &n);
        if (deferred(r))
                return false; /* the source's root block: nothing changed yet */
        if (r < 0)
                reply_err(req, r);
        else
                (void)fuse_reply_write(req, (size_t)n);
        return true;
}

/* user.prsm.tensors: the table parsed from the header now (its blocks stay cached); a file
 * that is no such format, or whose header is wrong, has none (ENODATA). */
static bool do_tensors(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        struct fs *fs = req_fs(req);
        struct formats_table t = { 0 };
        struct index_attr a;
        char *json = NULL;
        size_t len = 0;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r >= 0) {
                overlay_writer(fs, &a);
                r = fs_tensors_load(fs, &a, &t);
        }
        if (deferred(r))
                return false;
        if (r == -ENOMSG || r == -EBADMSG || r == -E2BIG) {
                if (r != -ENOMSG)
                        log_debug("Ignoring the tensor header of inode %" PRIu64 ": %s", a.ino,
                                  strerror(-r));
                r = -ENODATA;
        }
        if (r >= 0)
                r = formats_table_json(&t, &json, &len);
        formats_table_done(&t);
        if (r >= 0 && len > XATTR_SIZE_MAX)
                r = -E2BIG; /* more than the kernel passes for any xattr */
        if (r < 0)
                reply_err(req, r);
        else
                reply_xattr(req, json, len, size); /* not interruptible: no guard to take */
        free(json);
        return true;
}

static bool meta_do(fuse_req_t req, struct meta_args *a)
{
        switch (a->op) {
        case META_LOOKUP:
                return do_lookup(req, a->ino, a->name);
        case META_GETATTR:
                return do_getattr(req, a->ino);
        case META_READDIR:
        case META_READDIRPLUS:
                return do_readdir(req, a->ino, a->fi.fh, a->size, a->off,
                                  a->op == META_READDIRPLUS);
        case META_OPEN:
                return do_open(req, a->ino, &a->fi);
        case META_CREATE:
                return do_create(req, a->ino, a->name, a->mode, &a->fi);
        case META_MKNOD:
                return do_mknod(req, a->ino, a->name, a->mode, a->rdev);
        case META_MKDIR:
                return do_mkdir(req, a->ino, a->name, a->mode);
        case META_SYMLINK:
                return do_symlink(req, a->target, a->ino, a->name);
        case META_LINK:
                return do_link(req, a->ino, a->newparent, a->newname);
        case META_UNLINK:
        case META_RMDIR:
                return do_unlink(req, a->ino, a->name, a->op == META_RMDIR);
        case META_RENAME:
                return do_rename(req, a->ino, a->name, a->newparent, a->newname, a->flags);
        case META_SETATTR:
                return do_setattr(req, a->ino, &a->attr, a->to_set, a->fi.fh ? &a->fi : NULL);
        case META_FLUSH:
                return do_flush(req, a->ino, &a->fi);
        case META_FSYNC:
                return do_fsync(req, a->ino, &a->fi);
        case META_RELEASE:
                return do_release(req, a->ino, &a->fi);
        case META_COPY:
                return do_copy_file_range(req, a->ino, a->off, a->newparent, a->off_out, &a->fi,
                                          a->size);
        case META_TENSORS:
                return do_tensors(req, a->ino, a->size);
        }
        reply_err(req, -ENOSYS);
        return true;
}

static void meta_job_run(struct fs_job *job, bool stopping)
{
        struct meta_job *j = (struct meta_job *)job;

        if (j->g && __atomic_load_n(&j->g->answered, __ATOMIC_ACQUIRE)) {
                (void)interruptible_take(j->req, j->g); /* answered EINTR while queued */
                free(j);
                return;
        }
        reply_guard = j->g;
        job_fs = j->fs;
        if (j->g) /* its fetches end at the interrupt */
                net_set_abort(&j->g->answered);
        if (stopping && j->a.op == META_RELEASE) {
                /* nothing fetched: a release owes the kernel only its answer (the handle
                 * goes with the others, fs_release_handles) */
                (void)fuse_reply_err(j->req, 0);
        } else if (stopping)
                reply_err(j->req, -EIO); /* the session is ending */
        else
                (void)meta_do(j->req, &j->a);
        if (reply_guard) /* every reply takes it: a body that did not reply is a bug */
                (void)reply_take(j->req);
        job_fs = NULL;
        free(j);
}

/* Copies s to *pp (advancing it); the copy, or NULL for NULL. */
static const char *meta_copy(char **pp, const char *s)
{
        size_t n;

        if (!s)
                return NULL;
        n = strlen(s) + 1;
        memcpy(*pp, s, n);
        *pp += n;
        return *pp - n;
}

static void meta(fuse_req_t req, struct meta_args *a)
{
        struct fs *fs = fuse_req_userdata(req);
        size_t len = 0;
        struct meta_job *j;
        char *p;
        bool done;

        fs_no_fetch = true;
        done = meta_do(req, a);
        fs_no_fetch = false;
        if (done)
                return;
        for (const char *s2[] = { a->name, a->newname, a->target }, **q = s2; q < s2 + 3; q++)
                len += *q ? strlen(*q) + 1 : 0;
        j = malloc(sizeof(*j) + len);
        if (!j) {
                (void)meta_do(req, a); /* here, then */
                return;
        }
        *j = (struct meta_job){ .job.run = meta_job_run, .fs = fs, .req = req, .a = *a };
        p = j->strings;
        j->a.name = meta_copy(&p, a->name);
        j->a.newname = meta_copy(&p, a->newname);
        j->a.target = meta_copy(&p, a->target);
        if (a->op == META_LOOKUP || a->op == META_GETATTR || a->op == META_OPEN ||
            a->op == META_READDIR || a->op == META_READDIRPLUS)
                j->g = interruptible_arm(req);
        fs_jobq_push(&fs->metaq, &j->job);
}

static void getxattr_tensors(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        meta(req, &(struct meta_args){ .op = META_TENSORS, .ino = ino, .size = size });
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        meta(req, &(struct meta_args){ .op = META_LOOKUP, .ino = parent, .name = name });
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)fi;
        meta(req, &(struct meta_args){ .op = META_GETATTR, .ino = ino });
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        meta(req, &(struct meta_args){
                          .op = META_READDIR, .ino = ino, .size = size, .off = off, .fi = *fi });
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        meta(req,
             &(struct meta_args){
                     .op = META_READDIRPLUS, .ino = ino, .size = size, .off = off, .fi = *fi });
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        meta(req, &(struct meta_args){ .op = META_OPEN, .ino = ino, .fi = *fi });
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        meta(req,
             &(struct meta_args){
                     .op = META_CREATE, .ino = parent, .name = name, .mode = mode, .fi = *fi });
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        meta(req,
             &(struct meta_args){
                     .op = META_MKNOD, .ino = parent, .name = name, .mode = mode, .rdev = rdev });
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        meta(req,
             &(struct meta_args){ .op = META_MKDIR, .ino = parent, .name = name, .mode = mode });
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
        meta(req, &(struct meta_args){
                          .op = META_SYMLINK, .ino = parent, .name = name, .target = target });
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
        meta(req, &(struct meta_args){
                          .op = META_LINK, .ino = ino, .newparent = parent, .newname = name });
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        meta(req, &(struct meta_args){ .op = META_UNLINK, .ino = parent, .name = name });
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        meta(req, &(struct meta_args){ .op = META_RMDIR, .ino = parent, .name = name });
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        meta(req, &(struct meta_args){ .op = META_RENAME,
                                       .ino = parent,
                                       .name = name,
                                       .newparent = newparent,
                                       .newname = newname,
                                       .flags = flags });
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
        struct meta_args a = { .op = META_SETATTR, .ino = ino, .attr = *attr, .to_set = to_set };

        if (fi)
                a.fi = *fi;
        meta(req, &a);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        meta(req, &(struct meta_args){ .op = META_FLUSH, .ino = ino, .fi = *fi });
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        (void)datasync;
        meta(req, &(struct meta_args){ .op = META_FSYNC, .ino = ino, .fi = *fi });
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        meta(req, &(struct meta_args){ .op = META_RELEASE, .ino = ino, .fi = *fi });
}

/*
 * copy_file_range (cp's default since coreutils 9): a whole file copied within the mount is
 * linked, not copied (fs_wfile_copy_link). EOPNOTSUPP (never ENOSYS, which would turn the
 * call off for the whole mount) makes the kernel copy the bytes itself (splice through read
 * and write), so ranges, sources still being written or waiting for their upload, and
 * anything unusual are copied byte-exact the ordinary way. FICLONE (cp --reflink) never
 * reaches a FUSE daemon: the VFS answers it, without remap_file_range, with EOPNOTSUPP.
 * Tried on the FUSE worker; a source whose root block is not cached is linked on a metadata
 * thread, which fetches it first, without the writer's lock.
 */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
        (void)fi_in;
        if (flags != 0) {
                reply_err(req, -EOPNOTSUPP);
                return;
        }
        meta(req, &(struct meta_args){ .op = META_COPY,
                                       .ino = ino_in,
                                       .off = off_in,
                                       .newparent = ino_out,
                                       .off_out = off_out,
                                       .fi = *fi_out,
                                       .size = len });
}

static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .statfs = op_statfs,
        .readlink = op_readlink,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .mkdir = op_mkdir,
        .open = op_open,
        .read = op_read,
        .write = op_write,
        .flush = op_flush,
        .fsync = op_fsync,
        .release = op_release,
        .create = op_create,
        .mknod = op_mknod,
        .symlink = op_symlink,
        .link = op_link,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .rename = op_rename,
        .setattr = op_setattr,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
        .copy_file_range = op_copy_file_range,
};

const struct fuse_lowlevel_ops *fs_lowlevel_ops(void)
{
        return &ops;
}
