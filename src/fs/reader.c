/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Open files for reading. One reader per (inode, CID), shared by every handle on it: the
 * file's layout (which leaf holds which bytes, decoded once and resolved lazily as reads
 * reach pending subtrees; lessons: never re-walk the DAG per read) and its readahead streams.
 *
 * Readahead is the daemon's own (the kernel caps FUSE readahead at the bdi's read_ahead_kb):
 * streams are detected by offset, not by handle, so several processes reading one file, or a
 * page-faulting mmap, each look sequential to their stream. A read near a stream's head
 * extends it and doubles its window (FS_RA_INIT up to FS_RA_MAX); a read elsewhere starts a
 * new stream with no readahead, unless it is at offset 0 (a file read from the start usually
 * goes on). The window's blocks are queued in the store, which fetches them in parallel; the
 * window is topped up when less than half of it is left ahead of the reader.
 *
 * Lock order: fs->files_lock, then rf->lock. No network I/O under either.
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prsmfs/io.h"
#include "prsmfs/log.h"

#include "fs_internal.h"

#define RA_MAX_CIDS  256 /* blocks queued by one read */
#define RF_FAILS     4   /* recent read failures kept per file */
#define RF_FAIL_HOLD (1000ull * 1000 * 1000)

/* failed reads: at most 10 lines a minute for the process */
static struct log_ratelimit read_fail_log = LOG_RATELIMIT_INIT(60ull * 1000000000ull, 10);

struct stream {
        uint64_t head;     /* end of the last read */
        uint64_t window;   /* 0: no readahead (random access) */
        uint64_t ra_until; /* queued up to here */
        uint64_t used;     /* tick of last use; 0 = free slot */
};

/* A read that failed waiting for the network: [off, end) from at_ns on. */
struct read_fail {
        uint64_t off, end, at_ns; /* at_ns 0: free */
        int error;
};

struct rfile {
        uint64_t ino;
        struct cid root;
        bool has_root;
        unsigned refs;      /* fs->files_lock */
        struct rfile *next; /* fs->files_lock */

        pthread_mutex_t lock;
        struct unixfs_layout layout;          /* lock */
        size_t stored_n, stored_pending;      /* lock: the layout as the index has it */
        struct stream streams[FS_RA_STREAMS]; /* lock */
        uint64_t tick;                        /* lock */
        struct read_fail fails[RF_FAILS];     /* lock; a ring */
        unsigned next_fail;                   /* lock */
        struct prsm_counter *acct;            /* the access ledger's counter of root, may be NULL */
        struct fs_pview *pv; /* owned: PRSM content shown decoded (prsmfile.c), else NULL */
};

static void rfile_free(struct rfile *rf)
{
        if (!rf)
                return;
        unixfs_layout_done(&rf->layout);
        fs_pview_free(rf->pv);
        pthread_mutex_destroy(&rf->lock);
        free(rf);
}

static bool same_file(const struct rfile *rf, const struct index_attr *a)
{
        return rf->ino == a->ino && rf->has_root == a->has_cid &&
               (!a->has_cid || cid_equal(&rf->root, &a->cid));
}

int fs_layout_load(struct fs *fs, const struct cid *root, struct unixfs_layout *ret)
{
        uint8_t *data = NULL;
        size_t len = 0;
        int r;

        r = index_layout_get(fs->idx, root, &data, &len);
        if (r < 0)
                return r;
        r = unixfs_layout_decode(data, len, ret);
        free(data);
        if (r < 0) {
                char s[CID_MAX_STR];

                log_warning("stored layout of %s is damaged (%s); reading it anew",
                            cid_to_string(root, s), strerror(-r));
        }
        return r;
}

/*
 * Keeps the layout in the index when it has more than the root to say and has changed since
 * it was loaded or stored: once at the last close of the file, so reads never wait for it.
 * A layout is a cache of verified blocks' contents; failing to store it only costs a refetch.
 */
static void layout_store(struct fs *fs, struct rfile *rf)
{
        const struct unixfs_layout *l = &rf->layout;
        uint8_t *data = NULL;
        size_t len = 0;
        int r;

        if (!rf->has_root || l->n_leaves <= 1 ||
            (l->n_leaves == rf->stored_n && l->n_pending == rf->stored_pending))
                return;
        r = unixfs_layout_encode(l, &data, &len);
        if (r >= 0)
                r = index_layout_put(fs->idx, &rf->root, data, len);
        free(data);
        if (r < 0)
                log_debug("cannot store the layout of file %" PRIu64 ": %s", rf->ino, strerror(-r));
        else
                __atomic_add_fetch(&fs->st.layouts_stored, 1, __ATOMIC_RELAXED);
}

static int rfile_new(struct fs *fs, const struct index_attr *a, struct rfile **ret)
{
        struct net_block *b = NULL;
        struct rfile *rf;
        int r;

        rf = calloc(1, sizeof(*rf));
        if (!rf)
                return -ENOMEM;
        pthread_mutex_init(&rf->lock, NULL);
        rf->ino = a->ino;
        rf->refs = 1;
        if (!a->has_cid) {
                *ret = rf; /* a file with no content yet: empty */
                return 0;
        }
        rf->root = a->cid;
        rf->has_root = true;
        /* only content outside .ipfs/ is in the ledger: .ipfs/CID names no creator's file */
        if (!(a->flags & INDEX_FLAG_RO))
                rf->acct = prsm_counter_get(fs->prsm, &a->cid);
        if (!fs->store) {
                r = -EHOSTUNREACH;
                goto fail;
        }
        if (a->flags & INDEX_FLAG_PRSM) {
                r = fs_pview_open(fs, a, &rf->pv); /* its parts are opened as they are read */
                if (r < 0)
                        goto fail;
                *ret = rf;
                return 0;
        }
        if (fs_layout_load(fs, &a->cid, &rf->layout) == 0) {
                rf->stored_n = rf->layout.n_leaves;
                rf->stored_pending = rf->layout.n_pending;
                __atomic_add_fetch(&fs->st.layouts_loaded, 1, __ATOMIC_RELAXED);
                goto check_size;
        }
        r = fs_block_get(fs, &a->cid, fs_deadline(fs), &b);
        if (r < 0)
                goto fail;
        r = unixfs_layout_open(&a->cid, b->data, b->len, &rf->layout);
        net_block_unref(b);
        if (r < 0) {
                char s[CID_MAX_STR];

                log_warning("file %" PRIu64 ": %s is not a readable UnixFS file: %s", a->ino,
                            cid_to_string(&a->cid, s), strerror(-r));
                goto fail;
        }
check_size:
        if (rf->layout.size != a->size && a->ino == 0 && a->size != UINT64_MAX) {
                r = -EBADMSG; /* a part of PRSM content: its size is the manifest's */
                goto fail;
        }
        if (rf->layout.size != a->size) {
                /* the size came from a hint (a link's Tsize); the root block is the truth */
                log_info("file %" PRIu64 ": size %" PRIu64 " corrected to %" PRIu64, a->ino,
                         a->size, rf->layout.size);
                r = index_set_size(fs->idx, a->ino, rf->layout.size);
                if (r < 0)
                        log_warning("file %" PRIu64 ": cannot store its size: %s", a->ino,
                                    strerror(-r));
        }
        *ret = rf;
        return 0;
fail:
        rfile_free(rf);
        return r;
}

int fs_rfile_open(struct fs *fs, const struct index_attr *a, struct rfile **ret)
{
        struct rfile *rf, *mine = NULL;
        int r;

        pthread_mutex_lock(&fs->files_lock);
        for (rf = fs->files; rf; rf = rf->next)
                if (same_file(rf, a)) {
                        rf->refs++;
                        pthread_mutex_unlock(&fs->files_lock);
                        *ret = rf;
                        return 0;
                }
        pthread_mutex_unlock(&fs->files_lock);

        r = rfile_new(fs, a, &mine); /* network I/O: outside the lock */
        if (r < 0)
                return r;
        pthread_mutex_lock(&fs->files_lock);
        for (rf = fs->files; rf; rf = rf->next)
                if (same_file(rf, a)) {
                        rf->refs++; /* another open won the race */
                        break;
                }
        if (!rf) {
                rf = mine;
                mine = NULL;
                rf->next = fs->files;
                fs->files = rf;
        }
        pthread_mutex_unlock(&fs->files_lock);
        rfile_free(mine);
        *ret = rf;
        return 0;
}

int fs_rfile_open_part(struct fs *fs, const struct cid *cid, uint64_t size, struct rfile **ret)
{
        /* not shared, not in the ledger (RO), no inode whose size it could correct (ino 0) */
        struct index_attr a = {
                .has_cid = true, .cid = *cid, .size = size, .flags = INDEX_FLAG_RO
        };

        return rfile_new(fs, &a, ret);
}

void fs_rfile_free_part(struct rfile *rf)
{
        rfile_free(rf);
}

void fs_rfile_ref(struct fs *fs, struct rfile *rf)
{
        pthread_mutex_lock(&fs->files_lock);
        rf->refs++;
        pthread_mutex_unlock(&fs->files_lock);
}

struct rfile *fs_rfile_next(struct rfile *rf)
{
        return rf->next;
}

void fs_rfile_count_open(struct rfile *rf)
{
        prsm_counter_open(rf->acct);
}

uint64_t fs_rfile_ino(const struct rfile *rf)
{
        return rf->ino;
}

void fs_rfile_close(struct fs *fs, struct rfile *rf)
{
        struct rfile **pp;

        if (!rf)
                return;
        pthread_mutex_lock(&fs->files_lock);
        if (--rf->refs > 0) {
                pthread_mutex_unlock(&fs->files_lock);
                return;
        }
        for (pp = &fs->files; *pp; pp = &(*pp)->next)
                if (*pp == rf) {
                        *pp = rf->next;
                        break;
                }
        pthread_mutex_unlock(&fs->files_lock);
        fs_prefetch_closed(fs, rf->ino); /* its prefetch_on_open job, if any, stops */
        layout_store(fs, rf);            /* the last user is gone: no lock needed */
        rfile_free(rf);
}

/* The stream a read at [off, end) belongs to, made anew when none is near. Under rf->lock. */
static struct stream *stream_for(struct rfile *rf, uint64_t off, uint64_t end)
{
        struct stream *s, *lru = &rf->streams[0];

        rf->tick++;
        for (size_t i = 0; i < FS_RA_STREAMS; i++) {
                s = &rf->streams[i];
                if (s->used && off + FS_RA_NEAR >= s->head && off <= s->head + FS_RA_NEAR) {
                        s->head = MAX(s->head, end);
                        s->window = MIN(s->window ? s->window * 2 : FS_RA_INIT, FS_RA_MAX);
                        s->used = rf->tick;
                        return s;
                }
                if (s->used < lru->used)
                        lru = s;
        }
        *lru = (struct stream){
                .head = end,
                .window = off == 0 ? FS_RA_INIT : 0,
                .ra_until = end,
                .used = rf->tick,
        };
        return lru;
}

static void ra_queue(struct fs *fs, struct rfile *rf, uint64_t off, uint64_t end)
{
        struct cid cids[RA_MAX_CIDS];
        struct unixfs_layout *l = &rf->layout;
        size_t n = 0, i;
        uint64_t from, to;
        struct stream *s;

        if (!fs->store)
                return;
        pthread_mutex_lock(&rf->lock);
        s = stream_for(rf, off, end);
        if (s->window == 0 || (s->ra_until > end && s->ra_until - end >= s->window / 2))
                goto unlock;
        from = MAX(s->ra_until, end);
        to = MIN(end + s->window, l->size);
        if (from >= to)
                goto unlock;
        i = unixfs_layout_find(l, from);
        while (i < l->n_leaves && l->leaves[i].offset < to && n < RA_MAX_CIDS) {
                struct unixfs_leaf *lf = &l->leaves[i];
                struct net_block *b = NULL;

                if (lf->is_pending && lf->size > CID_MAX_BLOCK) {
                        /* an inner node: its leaves are known once its block is here */
                        if (store_peek(fs->store, &lf->cid, &b) == 0) {
                                int r = unixfs_layout_resolve(l, i, b->data, b->len);

                                net_block_unref(b);
                                if (r >= 0)
                                        continue; /* look again at what replaced it */
                                break;            /* the read that reaches it will report */
                        }
                        cids[n++] = lf->cid;
                        to = lf->offset; /* go on from here once it has come */
                        break;
                }
                /* a leaf, or a pending block small enough to be one: reads resolve it */
                cids[n++] = lf->cid;
                i++;
        }
        if (i < l->n_leaves && l->leaves[i].offset < to)
                to = l->leaves[i].offset; /* stopped early: go on from there next time */
        s->ra_until = MAX(s->ra_until, to);
unlock:
        pthread_mutex_unlock(&rf->lock);
        if (n)
                __atomic_add_fetch(&fs->st.readahead_blocks,
                                   store_prefetch(fs->store, cids, n, fs_deadline(fs)),
                                   __ATOMIC_RELAXED);
}

void fs_segs_free(struct fs_seg *segs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                net_block_unref(segs[i].block);
                if (segs[i].fd >= 0)
                        close(segs[i].fd);
        }
        free(segs);
}

int fs_seg_copy(const struct fs_seg *seg, void *dst)
{
        if (seg->fd < 0) {
                memcpy(dst, seg->p, seg->len);
                return 0;
        }
        return io_pread_exact(seg->fd, dst, seg->len, seg->fd_off);
}

/* Where the leaf's bytes sit in its cached block file of `size` bytes (the layout checked
 * them against the verified block when it resolved the leaf; a raw leaf must be whole). */
static int leaf_in_file(const struct unixfs_leaf *lf, uint64_t size)
{
        if (lf->cid.codec == CID_CODEC_RAW)
                return size == lf->size && lf->data_off == 0 ? 0 : -EBADMSG;
        return lf->data_off + lf->size <= size ? 0 : -EBADMSG;
}

/* Resolves the pending piece at pos with its block (local: only from memory or disk, else
 * -EWOULDBLOCK). */
static int resolve_at(struct fs *fs, struct rfile *rf, uint64_t pos, const struct cid *cid,
                      uint64_t deadline_ns, bool local)
{
        struct net_block *b = NULL;
        size_t i;
        int r;

        if (local) {
                r = store_peek(fs->store, cid, &b);
                if (r == -ENOENT)
                        r = -EWOULDBLOCK;
        } else
                r = store_get(fs->store, cid, deadline_ns, &b);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rf->lock);
        i = unixfs_layout_find(&rf->layout, pos);
        if (rf->layout.leaves[i].is_pending && cid_equal(&rf->layout.leaves[i].cid, cid))
                r = unixfs_layout_resolve(&rf->layout, i, b->data, b->len);
        pthread_mutex_unlock(&rf->lock);
        net_block_unref(b);
        return r < 0 ? r : 0;
}

#define READ_PREFETCH_MAX 64 /* leaves of one read fetched together */

/* The leaves of [off, end) after the first, fetched together rather than one after another
 * when the read waits for them (the store skips those cached in memory or in flight). */
static void prefetch_read(struct fs *fs, struct rfile *rf, uint64_t off, uint64_t end,
                          uint64_t deadline_ns)
{
        struct cid cids[READ_PREFETCH_MAX];
        size_t n = 0, i;

        pthread_mutex_lock(&rf->lock);
        i = unixfs_layout_find(&rf->layout, off) + 1;
        for (;
             i < rf->layout.n_leaves && rf->layout.leaves[i].offset < end && n < READ_PREFETCH_MAX;
             i++)
                if (!rf->layout.leaves[i].is_pending)
                        cids[n++] = rf->layout.leaves[i].cid;
        pthread_mutex_unlock(&rf->lock);
        if (n)
                (void)store_prefetch(fs->store, cids, n, deadline_ns);
}

/*
 * Recent failures. When a read fails at its deadline, the kernel retries each page of it at
 * once with a new request (a failed readahead is read again page by page), and the reader
 * waits for both: with the retry given a timeout of its own, one pread of the faults
 * campaign waited 19.5 s with `timeout` 10 s (reliability finding 10). So a request that
 * came no later than RF_FAIL_HOLD after a failure of the same range, and finds the block
 * neither in memory nor on disk, fails at once with that failure's error. Came: its start
 * (fs_request_start_ns), not when a thread took it, as the retry may wait in the job queue.
 */
static void note_failure(struct rfile *rf, uint64_t off, uint64_t end, int error)
{
        pthread_mutex_lock(&rf->lock);
        rf->fails[rf->next_fail] =
                (struct read_fail){ .off = off, .end = end, .at_ns = net_now_ns(), .error = error };
        rf->next_fail = (rf->next_fail + 1) % RF_FAILS;
        pthread_mutex_unlock(&rf->lock);
}

static int recent_failure(struct rfile *rf, uint64_t pos)
{
        uint64_t start = fs_request_start_ns ? fs_request_start_ns : net_now_ns();
        int r = 0;

        pthread_mutex_lock(&rf->lock);
        for (unsigned i = 0; i < RF_FAILS && r == 0; i++) {
                const struct read_fail *f = &rf->fails[i];

                if (f->at_ns && start <= f->at_ns + RF_FAIL_HOLD && f->off <= pos && pos < f->end)
                        r = f->error;
        }
        pthread_mutex_unlock(&rf->lock);
        return r;
}

/* The block of lf as a ref, from memory, disk or (unless local) the network. A failure of
 * the network fetch is noted for the range [pos, end); one repeated from a note is not (a
 * reader retrying faster than RF_FAIL_HOLD would otherwise never fetch again). */
static int leaf_ref(struct fs *fs, struct rfile *rf, const struct unixfs_leaf *lf, uint64_t pos,
                    uint64_t end, bool local, uint64_t deadline_ns, struct store_ref *ret)
{
        int r = store_get_ref_local(fs->store, &lf->cid, ret);

        if (r != -EWOULDBLOCK || local)
                return r;
        r = recent_failure(rf, pos);
        if (r < 0)
                return r;
        r = store_get_ref(fs->store, &lf->cid, deadline_ns, ret);
        if (r < 0 && r != -ENOMEM && r != -ECANCELED)
                note_failure(rf, pos, end, r);
        return r;
}

/*
 * One deadline for the whole request (the config's timeout from its start), however many
 * blocks it needs: a trickling node cannot stretch one read() to a timeout per block.
 */
int fs_rfile_read(struct fs *fs, struct rfile *rf, uint64_t off, size_t size, unsigned flags,
                  struct fs_seg **ret_segs, size_t *ret_n)
{
        bool local = flags & FS_READ_LOCAL || fs_no_fetch;
        uint64_t deadline_ns = fs_deadline(fs);
        struct fs_seg *segs = NULL;
        size_t n = 0, cap = 0;
        uint64_t fsize, end, pos;
        int r = 0;

        pthread_mutex_lock(&rf->lock);
        fsize = rf->pv ? fs_pview_size(rf->pv) : rf->layout.size;
        pthread_mutex_unlock(&rf->lock);
        *ret_segs = NULL;
        *ret_n = 0;
        if (off >= fsize || size == 0)
                return 0;
        if (!fs->store)
                return -EHOSTUNREACH;
        end = fsize - off < size ? fsize : off + size;
        if (rf->pv) {
                r = fs_pview_read(fs, rf->pv, off, end, flags, ret_segs, ret_n);
                if (r >= 0) {
                        __atomic_add_fetch(&fs->st.reads, 1, __ATOMIC_RELAXED);
                        __atomic_add_fetch(&fs->st.read_bytes, end - off, __ATOMIC_RELAXED);
                        prsm_counter_bytes(rf->acct, end - off);
                } else if (r != -EWOULDBLOCK)
                        __atomic_add_fetch(&fs->st.read_errors, 1, __ATOMIC_RELAXED);
                return r;
        }
        end = fsize - off < size ? fsize : off + size;
        if (!(flags & FS_READ_NO_RA))
                ra_queue(fs, rf, off, end);
        if (!local)
                prefetch_read(fs, rf, off, end, deadline_ns);
        for (pos = off; pos < end;) {
                struct unixfs_leaf lf;
                struct store_ref ref;
                struct net_block *b = NULL;
                struct bytes_view v;
                uint64_t skip, take;

                pthread_mutex_lock(&rf->lock);
                lf = rf->layout.leaves[unixfs_layout_find(&rf->layout, pos)];
                pthread_mutex_unlock(&rf->lock);
                if (lf.is_pending) {
                        r = resolve_at(fs, rf, pos, &lf.cid, deadline_ns, local);
                        if (r < 0)
                                break;
                        continue;
                }
                r = leaf_ref(fs, rf, &lf, pos, end, local, deadline_ns, &ref);
                if (r < 0)
                        break;
                skip = pos - lf.offset;
                if (ref.fd >= 0) {
                        r = leaf_in_file(&lf, ref.size);
                        take = MIN(end - pos, lf.size - skip);
                } else {
                        b = ref.block;
                        r = unixfs_leaf_slice(&lf, b->data, b->len, &v);
                        if (r >= 0 && skip >= v.len)
                                r = -EBADMSG;
                        take = r < 0 ? 0 : MIN(end - pos, (uint64_t)v.len - skip);
                }
                if (r < 0 || pos < lf.offset) {
                        store_ref_done(&ref);
                        r = r < 0 ? r : -EBADMSG;
                        break;
                }
                if (n == cap) {
                        size_t c = cap ? cap * 2 : 4;
                        struct fs_seg *p = reallocarray(segs, c, sizeof(*p));

                        if (!p) {
                                store_ref_done(&ref);
                                r = -ENOMEM;
                                break;
                        }
                        segs = p;
                        cap = c;
                }
                if (ref.fd >= 0)
                        segs[n++] = (struct fs_seg){ .fd = ref.fd,
                                                     .fd_off = lf.data_off + skip,
                                                     .len = (size_t)take };
                else
                        segs[n++] = (struct fs_seg){
                                .block = b, .p = v.p + skip, .len = (size_t)take, .fd = -1
                        };
                pos += take;
        }
        if (r == -EWOULDBLOCK) {
                fs_segs_free(segs, n);
                return r; /* the caller reads again where it may wait */
        }
        if (r < 0) {
                char s[CID_MAX_STR];
                unsigned dropped;

                fs_segs_free(segs, n);
                /* a file read while no node answers fails every 128 KiB: a few lines say so */
                if (log_ratelimit_ok(&read_fail_log, net_now_ns(), &dropped)) {
                        char more[64] = "";

                        if (dropped)
                                (void)snprintf(more, sizeof(more),
                                               " (%u earlier failures not logged)", dropped);
                        log_warning("read of file %" PRIu64 " (%s) at %" PRIu64 " failed: %s%s",
                                    rf->ino, cid_to_string(&rf->root, s), off, strerror(-r), more);
                }
                __atomic_add_fetch(&fs->st.read_errors, 1, __ATOMIC_RELAXED);
                return r;
        }
        __atomic_add_fetch(&fs->st.reads, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&fs->st.read_bytes, end - off, __ATOMIC_RELAXED);
        prsm_counter_bytes(rf->acct, end - off);
        *ret_segs = segs;
        *ret_n = n;
        return 0;
}
