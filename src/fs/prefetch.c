/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Warm-up jobs (prsmctl prefetch, and prefetch_on_open): every block of some files, fetched
 * into the disk cache in parallel (FETCH), counted against what is cached (CHECK) or dropped
 * from the cache (EVICT).
 *
 * A job runs on its own threads, never on a FUSE worker or the control thread: a walker that
 * resolves the paths (directories recursively, lazy ones listed on the way), opens each
 * file's layout (the one the index keeps, else from the root block) and queues its pieces,
 * and `workers` fetchers that take pieces off the queue. A piece still pending (a dag-pb
 * block that may be a leaf or a subtree) is resolved by the fetcher that gets its block; a
 * subtree's children are queued in turn. Bytes in flight are bounded by the number of
 * fetchers (one block each); the queue the walker fills is bounded by PF_QUEUE_MAX (the
 * fetchers' own additions, a subtree's children, are never refused: they must not wait for
 * themselves). The control thread only starts a job and reads its counters.
 *
 * Priority: a job's threads run niced (thread_background), a job being work done ahead of any
 * reader: a reader busy with the CPU itself (hashing, decoding what it reads) keeps its core
 * and the job gets the rest, where at the same priority its bursts of hashing took turns with
 * the reader (a cold `cat | sha256sum` of 1 GiB on 2 cores: sha256sum held off its core 0.63 s,
 * 0.42 s niced; docs/bench-notes.md). A reader that waits for a block the job is fetching
 * un-nices that fetch (net.c, de-duplication).
 *
 * A file's pieces are counted in file bytes: when every piece is done, bytes_done is the
 * file's size. A file staged locally (written, not uploaded yet) or empty counts as cached.
 * A fetched file's resolved layout is stored in the index, so a later open needs no inner
 * block.
 *
 * Cancel: a flag the threads check between blocks; a fetch in flight ends at its deadline
 * or at once at shutdown (net_pool_shutdown). Finished jobs are kept for their status until
 * read (fs_prefetch_forget) or until PF_DONE_KEEP newer ones finished.
 *
 * Lock order: fs->pf_lock, then file->lock, then job->lock; none is held across the network or
 * SQLite, and the walker waits for room in the queue holding job->lock only.
 */
#define LOG_MODULE "fs"
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prsmfs/log.h"
#include "prsmfs/thread.h"

#include "formats.h"
#include "fs_internal.h"

#define PF_QUEUE_MAX   4096 /* pieces queued by the walker before it waits */
#define PF_DONE_KEEP   16   /* finished jobs kept for their status */
#define PF_WORKERS_MAX 32
#define PF_OPEN_MAX    4 /* prefetch_on_open jobs at once */
#define PF_JOBS_MAX    8 /* prsmctl prefetch jobs at once (each has its threads) */
#define PF_DEPTH_MAX   256

struct pf_file {
        struct pf_job *job;
        char *path; /* owned */
        uint64_t ino;
        struct cid root;
        pthread_mutex_t lock;
        struct unixfs_layout layout; /* lock */
        unsigned refs;               /* job->lock: pieces queued or in work, + the walker */
        int error;                   /* job->lock: the first failure */
};

struct pf_item {
        struct pf_item *next;
        struct pf_file *f;
        uint64_t off; /* of the piece in the file */
        uint64_t size;
        struct cid cid;
        bool is_pending;
};

struct pf_job {
        struct pf_job *next; /* fs->pf_lock */
        struct fs *fs;
        uint64_t id;
        enum fs_prefetch_mode mode;
        uint64_t ino_opened; /* prefetch_on_open: the file; else 0 */
        char **paths;        /* owned */
        size_t n_paths;
        uint64_t started_ns, ended_ns;
        pthread_t walker;
        bool has_walker;

        pthread_mutex_t lock;
        pthread_cond_t cond;                   /* lock: queue changed, or cancel */
        struct pf_item *q_head, *q_tail;       /* lock */
        size_t q_len, busy;                    /* lock */
        bool walk_done, is_cancelled, is_done; /* lock */
        struct fs_prefetch_status st;          /* lock (errors: owned) */
};

static const char *const mode_names[_FS_PREFETCH_MODE_MAX] = {
        [FS_PREFETCH_FETCH] = "fetch",
        [FS_PREFETCH_CHECK] = "check",
        [FS_PREFETCH_EVICT] = "evict",
};

const char *fs_prefetch_mode_name(enum fs_prefetch_mode m)
{
        return m < _FS_PREFETCH_MODE_MAX ? mode_names[m] : "?";
}

void fs_prefetch_init(struct fs *fs)
{
        pthread_mutex_init(&fs->pf_lock, NULL);
}

/* Records the first error of f (and of the job's list) under job->lock. */
static void note_error(struct pf_job *j, const char *path, int error)
{
        struct fs_prefetch_status *st = &j->st;

        st->n_errors_total++;
        if (st->n_errors < FS_PREFETCH_ERRORS_MAX) {
                char *p = strdup(path);

                if (p) {
                        st->errors[st->n_errors].path = p;
                        st->errors[st->n_errors].error = error;
                        st->n_errors++;
                }
        }
}

static void file_fail(struct pf_file *f, int error)
{
        pthread_mutex_lock(&f->job->lock);
        if (!f->error) {
                f->error = error;
                note_error(f->job, f->path, error);
        }
        pthread_mutex_unlock(&f->job->lock);
}

/* Stores a complete layout (fetch mode) and frees the file: its last piece is done. */
static void file_finish(struct pf_file *f)
{
        struct fs *fs = f->job->fs;
        uint8_t *data = NULL;
        size_t len = 0;

        if (f->job->mode == FS_PREFETCH_FETCH && !f->error && f->layout.n_pending == 0 &&
            f->layout.n_leaves > 1 && unixfs_layout_encode(&f->layout, &data, &len) >= 0) {
                if (index_layout_put(fs->idx, &f->root, data, len) < 0)
                        log_debug("cannot store the layout of %s, ignoring", f->path);
                free(data);
        }
        pthread_mutex_lock(&f->job->lock);
        f->job->st.files_done++;
        pthread_mutex_unlock(&f->job->lock);
        unixfs_layout_done(&f->layout);
        pthread_mutex_destroy(&f->lock);
        free(f->path);
        free(f);
}

static void file_unref(struct pf_file *f)
{
        unsigned left;

        pthread_mutex_lock(&f->job->lock);
        left = --f->refs;
        pthread_mutex_unlock(&f->job->lock);
        if (left == 0)
                file_finish(f);
}

/* Queues piece lf of f (job->lock held); never waits: a fetcher adds a subtree's children. */
static int queue_piece(struct pf_job *j, struct pf_file *f, const struct unixfs_leaf *lf)
{
        struct pf_item *it = calloc(1, sizeof(*it));

        if (!it)
                return -ENOMEM;
        *it = (struct pf_item){
                .f = f,
                .off = lf->offset,
                .size = lf->size,
                .cid = lf->cid,
                .is_pending = lf->is_pending,
        };
        f->refs++;
        if (j->q_tail)
                j->q_tail->next = it;
        else
                j->q_head = it;
        j->q_tail = it;
        j->q_len++;
        j->st.blocks_total++;
        pthread_cond_broadcast(&j->cond);
        return 0;
}

/* Queues the pieces of f from pos up to the one holding end - 1, in file order, waiting for
 * room; returns where the next piece starts (or an error). By offset, without f->lock while
 * it waits: fetchers resolve (and split) only pieces already queued, which lie before pos, so
 * the piece starting at pos is still the one the layout was opened with. */
static int64_t queue_range(struct pf_job *j, struct pf_file *f, uint64_t pos, uint64_t end)
{
        uint64_t size = MIN(f->layout.size, end);
        int r = 0;

        while (pos < size && r >= 0) {
                struct unixfs_leaf lf;

                pthread_mutex_lock(&f->lock);
                lf = f->layout.leaves[unixfs_layout_find(&f->layout, pos)];
                pthread_mutex_unlock(&f->lock);
                if (lf.offset != pos || lf.size == 0)
                        return -EBADMSG; /* cannot happen (see above) */
                pthread_mutex_lock(&j->lock);
                while (j->q_len >= PF_QUEUE_MAX && !j->is_cancelled)
                        pthread_cond_wait(&j->cond, &j->lock);
                r = j->is_cancelled ? -ECANCELED : queue_piece(j, f, &lf);
                pthread_mutex_unlock(&j->lock);
                pos += lf.size;
        }
        return r < 0 ? r : (int64_t)pos;
}

/*
 * A model file opened with prefetch_on_open: the walker reads its header here (so the
 * header's blocks come before any tensor's), then queues the pieces tensor by tensor in
 * offset order, the order loaders that sort by offset (and mmap readers walking the file)
 * consume them, then whatever the tensors do not cover. A header that is wrong or hostile
 * is used for nothing: the file is queued as any other. Offsets of a table are inside the
 * file and sorted (formats.h), so the ranges only move forward.
 */
static int queue_file(struct pf_job *j, struct pf_file *f, const struct index_attr *a)
{
        struct formats_table t = { 0 };
        int64_t pos = 0;
        int r = -ENOMSG;

        if (j->ino_opened && j->mode == FS_PREFETCH_FETCH)
                r = fs_tensors_load(j->fs, a, &t);
        if (r == 0) {
                __atomic_add_fetch(&j->fs->st.prefetches_by_tensors, 1, __ATOMIC_RELAXED);
                pos = queue_range(j, f, 0, t.data_start);
                for (size_t i = 0; i < t.n && pos >= 0; i++)
                        if (t.tensors[i].end > (uint64_t)pos)
                                pos = queue_range(j, f, (uint64_t)pos, t.tensors[i].end);
        } else if (r != -ENOMSG && r != -ECANCELED) {
                log_debug("Ignoring the tensor header of '%s': %s, prefetching it in file order",
                          f->path, strerror(-r));
        }
        formats_table_done(&t);
        if (pos >= 0)
                pos = queue_range(j, f, (uint64_t)pos, UINT64_MAX);
        return pos < 0 ? (int)pos : 0;
}

static void count(struct pf_job *j, uint64_t *field, uint64_t n)
{
        pthread_mutex_lock(&j->lock);
        *field += n;
        pthread_mutex_unlock(&j->lock);
}

/* A pending piece's block is here: replaces the piece by what it holds and queues a
 * subtree's children. Returns 1 when it was a leaf (its bytes are done), 0 for a subtree. */
static int resolve_piece(struct pf_job *j, struct pf_item *it, const struct net_block *b)
{
        struct pf_file *f = it->f;
        size_t i;
        int n, r = 0;

        pthread_mutex_lock(&f->lock);
        i = unixfs_layout_find(&f->layout, it->off);
        if (!f->layout.leaves[i].is_pending || !cid_equal(&f->layout.leaves[i].cid, &it->cid) ||
            f->layout.leaves[i].offset != it->off) {
                pthread_mutex_unlock(&f->lock);
                return -EBADMSG; /* cannot happen: each piece is queued once */
        }
        n = unixfs_layout_resolve(&f->layout, i, b->data, b->len);
        if (n < 0)
                r = n;
        else if (n == 1 && !f->layout.leaves[i].is_pending &&
                 cid_equal(&f->layout.leaves[i].cid, &it->cid))
                r = 1; /* the block was the leaf */
        else {
                /* an inner node: its children are the file's pieces now */
                pthread_mutex_lock(&j->lock);
                for (size_t k = i; k < i + (size_t)n && r >= 0; k++)
                        r = queue_piece(j, f, &f->layout.leaves[k]);
                pthread_mutex_unlock(&j->lock);
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

/* Counts a piece's block: r < 0 failed, 0 an inner node (its leaves count the bytes), 1 a
 * leaf; found cached or (fetch mode) fetched. */
static void piece_done(struct pf_job *j, const struct pf_item *it, int r, bool cached)
{
        uint64_t bytes = r > 0 ? it->size : 0;

        if (r < 0) {
                count(j, &j->st.blocks_failed, 1);
                file_fail(it->f, r);
                return;
        }
        if (!cached && j->mode != FS_PREFETCH_FETCH && it->is_pending)
                return; /* not here, and nobody knows what it holds: not counted */
        pthread_mutex_lock(&j->lock);
        j->st.blocks_done++;
        j->st.bytes_done += bytes;
        if (cached) {
                j->st.blocks_cached++;
                j->st.bytes_cached += bytes;
        } else if (j->mode == FS_PREFETCH_FETCH) {
                j->st.blocks_fetched++;
                j->st.bytes_fetched += bytes;
        }
        pthread_mutex_unlock(&j->lock);
}

static void work_fetch(struct pf_job *j, struct pf_item *it)
{
        struct fs *fs = j->fs;
        bool cached = store_is_cached(fs->store, &it->cid);
        struct net_block *b = NULL;
        int r = 0;

        if (!cached || it->is_pending)
                r = store_get(fs->store, &it->cid, fs_deadline(fs), &b);
        if (r >= 0 && it->is_pending)
                r = resolve_piece(j, it, b);
        else if (r >= 0)
                r = 1;
        net_block_unref(b);
        piece_done(j, it, r, cached);
}

/* check and evict: never the network. A pending piece not on disk is an unknown subtree:
 * its bytes are not cached, its blocks not counted. */
static void work_local(struct pf_job *j, struct pf_item *it)
{
        struct fs *fs = j->fs;
        bool cached = store_is_cached(fs->store, &it->cid);
        struct net_block *b = NULL;
        int r = 1;

        if (cached && it->is_pending && store_peek(fs->store, &it->cid, &b) >= 0) {
                r = resolve_piece(j, it, b);
                net_block_unref(b);
        }
        if (r >= 0 && j->mode == FS_PREFETCH_EVICT && cached &&
            store_evict(fs->store, &it->cid) > 0)
                count(j, &j->st.blocks_evicted, 1);
        piece_done(j, it, r, cached);
}

static void *worker_thread(void *arg)
{
        struct pf_job *j = arg;

        thread_name("prsmfs-prefetch");
        pthread_mutex_lock(&j->lock);
        for (;;) {
                struct pf_item *it;

                while (!j->is_cancelled && !j->q_head && !(j->walk_done && j->busy == 0))
                        pthread_cond_wait(&j->cond, &j->lock);
                if (j->is_cancelled || !j->q_head)
                        break; /* cancelled, or nothing queued nor coming */
                it = j->q_head;
                j->q_head = it->next;
                if (!j->q_head)
                        j->q_tail = NULL;
                j->q_len--;
                j->busy++;
                pthread_cond_broadcast(&j->cond); /* room for the walker */
                pthread_mutex_unlock(&j->lock);

                thread_background(); /* again: a reader that waited for a fetch raised it */
                if (j->mode == FS_PREFETCH_FETCH)
                        work_fetch(j, it);
                else
                        work_local(j, it);
                file_unref(it->f);
                free(it);

                pthread_mutex_lock(&j->lock);
                j->busy--;
                pthread_cond_broadcast(&j->cond); /* maybe the end */
        }
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
        return NULL;
}

/* The layout of a's content: the index's, else from the root block. Fetch mode fetches the
 * root in any case (the cache then holds every block of the file); the others only look. */
static int file_layout(struct pf_job *j, const struct index_attr *a, struct unixfs_layout *ret)
{
        struct fs *fs = j->fs;
        struct net_block *b = NULL;
        int r;

        if (j->mode == FS_PREFETCH_FETCH)
                r = store_get(fs->store, &a->cid, fs_deadline(fs), &b);
        else
                r = store_peek(fs->store, &a->cid, &b) < 0 ? -ENOENT : 0;
        if (fs_layout_load(fs, &a->cid, ret) == 0) {
                net_block_unref(b);
                return j->mode == FS_PREFETCH_FETCH ? r : 0; /* (check, evict: known anyway) */
        }
        if (r < 0)
                return r;
        r = unixfs_layout_open(&a->cid, b->data, b->len, ret);
        net_block_unref(b);
        return r;
}

static void walk_file(struct pf_job *j, const struct index_attr *a, const char *path)
{
        struct fs *fs = j->fs;
        struct pf_file *f;
        bool root_cached;
        int r;

        pthread_mutex_lock(&j->lock);
        j->st.files++;
        j->st.bytes_total += a->size;
        if (a->staged || !a->has_cid) {
                /* staged locally (or empty, no content at all): nothing to fetch */
                j->st.files_done++;
                j->st.bytes_done += a->size;
                j->st.bytes_cached += a->size;
                pthread_mutex_unlock(&j->lock);
                return;
        }
        pthread_mutex_unlock(&j->lock);
        f = calloc(1, sizeof(*f));
        if (!f || !(f->path = strdup(path))) {
                free(f);
                pthread_mutex_lock(&j->lock);
                note_error(j, path, -ENOMEM);
                pthread_mutex_unlock(&j->lock);
                return;
        }
        f->job = j;
        f->ino = a->ino;
        f->root = a->cid;
        f->refs = 1;
        pthread_mutex_init(&f->lock, NULL);
        root_cached = store_is_cached(fs->store, &a->cid);
        r = file_layout(j, a, &f->layout);
        if (r == -ENOENT && j->mode != FS_PREFETCH_FETCH) {
                file_unref(f); /* nothing of it is known locally: nothing cached */
                return;
        }
        if (r < 0) {
                file_fail(f, r);
                file_unref(f);
                return;
        }
        if (j->mode == FS_PREFETCH_EVICT && root_cached && store_evict(fs->store, &a->cid) > 0)
                count(j, &j->st.blocks_evicted, 1);
        pthread_mutex_lock(&j->lock);
        j->st.blocks_total++;
        j->st.blocks_done++;
        if (root_cached)
                j->st.blocks_cached++;
        else if (j->mode == FS_PREFETCH_FETCH)
                j->st.blocks_fetched++;
        if (f->layout.n_leaves == 1 && cid_equal(&f->layout.leaves[0].cid, &a->cid)) {
                /* the root is the only piece: done with it */
                j->st.bytes_done += a->size;
                if (root_cached)
                        j->st.bytes_cached += a->size;
                else if (j->mode == FS_PREFETCH_FETCH)
                        j->st.bytes_fetched += a->size;
                pthread_mutex_unlock(&j->lock);
                file_unref(f);
                return;
        }
        pthread_mutex_unlock(&j->lock);
        r = queue_file(j, f, a);
        if (r < 0 && r != -ECANCELED)
                file_fail(f, r);
        file_unref(f);
}

struct pf_entries {
        char **names;
        size_t n, cap;
};

static int collect_name(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct pf_entries *es = ud;
        char *copy;

        (void)a;
        (void)cookie;
        if (es->n == es->cap) {
                size_t cap = es->cap ? es->cap * 2 : 64;
                char **p = reallocarray(es->names, cap, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                es->names = p;
                es->cap = cap;
        }
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        es->names[es->n++] = copy;
        return 0;
}

/* A flag of j read under its lock. */
static bool job_flag(struct pf_job *j, const bool *flag)
{
        bool v;

        pthread_mutex_lock(&j->lock);
        v = *flag;
        pthread_mutex_unlock(&j->lock);
        return v;
}

static bool cancelled(struct pf_job *j)
{
        return job_flag(j, &j->is_cancelled);
}

static void walk(struct pf_job *j, struct index_attr *a, const char *path, unsigned depth);

static void walk_dir(struct pf_job *j, const struct index_attr *a, const char *path, unsigned depth)
{
        struct pf_entries es = { 0 };
        int r;

        r = fs_tree_expand(j->fs, a);
        if (r >= 0)
                r = index_readdir(j->fs->idx, a->ino, 0, collect_name, &es);
        if (r < 0) {
                pthread_mutex_lock(&j->lock);
                note_error(j, path, r);
                pthread_mutex_unlock(&j->lock);
        }
        for (size_t i = 0; i < es.n; i++) {
                size_t len = strlen(path) + strlen(es.names[i]) + 2;
                char *sub = malloc(len);
                struct index_attr c;

                if (sub && !cancelled(j)) {
                        (void)snprintf(sub, len, "%s%s%s", path, *path ? "/" : "", es.names[i]);
                        r = fs_tree_lookup(j->fs, a->ino, es.names[i], &c);
                        if (r >= 0)
                                walk(j, &c, sub, depth + 1);
                        else if (r != -ENOENT) { /* removed meanwhile: nothing to do */
                                pthread_mutex_lock(&j->lock);
                                note_error(j, sub, r);
                                pthread_mutex_unlock(&j->lock);
                        }
                }
                free(sub);
                free(es.names[i]);
        }
        free(es.names);
}

static void walk(struct pf_job *j, struct index_attr *a, const char *path, unsigned depth)
{
        if (depth > PF_DEPTH_MAX) {
                pthread_mutex_lock(&j->lock);
                note_error(j, path, -ELOOP);
                pthread_mutex_unlock(&j->lock);
                return;
        }
        if (S_ISDIR(a->mode))
                walk_dir(j, a, path, depth);
        else if (S_ISREG(a->mode))
                walk_file(j, a, path);
        /* symlinks and special files hold no blocks to fetch */
}

static void *walker_thread(void *arg)
{
        struct pf_job *j = arg;
        struct fs *fs = j->fs;
        pthread_t workers[PF_WORKERS_MAX];
        size_t n_workers = 0;
        unsigned want = MIN(MAX(fs->cfg->parallel_downloads, 1u), PF_WORKERS_MAX);

        thread_name("prsmfs-pf-walk");
        thread_background(); /* and the fetchers it starts (a new thread inherits its nice) */
        if (j->ino_opened)
                want = MIN(want, 4u); /* a background job beside the reads */
        for (size_t i = 0; i < want; i++)
                if (pthread_create(&workers[n_workers], NULL, worker_thread, j) == 0)
                        n_workers++;
        if (n_workers == 0) {
                pthread_mutex_lock(&j->lock);
                note_error(j, j->n_paths ? j->paths[0] : "", -EAGAIN);
                j->is_cancelled = true;
                pthread_mutex_unlock(&j->lock);
        }
        for (size_t i = 0; i < j->n_paths && !cancelled(j); i++) {
                struct index_attr a;
                int r;

                if (j->ino_opened)
                        r = index_getattr(fs->idx, j->ino_opened, &a);
                else
                        r = fs_resolve_path(fs, j->paths[i], &a);
                if (r >= 0)
                        walk(j, &a, j->paths[i], 0);
                else {
                        pthread_mutex_lock(&j->lock);
                        note_error(j, j->paths[i], r);
                        pthread_mutex_unlock(&j->lock);
                }
        }
        pthread_mutex_lock(&j->lock);
        j->walk_done = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
        for (size_t i = 0; i < n_workers; i++)
                pthread_join(workers[i], NULL);
        /* cancelled: what is still queued is dropped */
        pthread_mutex_lock(&j->lock);
        while (j->q_head) {
                struct pf_item *it = j->q_head;

                j->q_head = it->next;
                j->q_len--;
                pthread_mutex_unlock(&j->lock);
                file_unref(it->f);
                free(it);
                pthread_mutex_lock(&j->lock);
        }
        j->q_tail = NULL;
        j->ended_ns = net_now_ns();
        j->is_done = true;
        pthread_mutex_unlock(&j->lock);
        if (j->ino_opened)
                log_debug("prefetch on open of inode %" PRIu64 " %s", j->ino_opened,
                          j->is_cancelled ? "cancelled" : "done");
        return NULL;
}

static void job_cancel(struct pf_job *j)
{
        pthread_mutex_lock(&j->lock);
        j->is_cancelled = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
}

static void job_free(struct pf_job *j)
{
        if (!j)
                return;
        if (j->has_walker)
                pthread_join(j->walker, NULL);
        for (size_t i = 0; i < j->n_paths; i++)
                free(j->paths[i]);
        free(j->paths);
        for (size_t i = 0; i < j->st.n_errors; i++)
                free(j->st.errors[i].path);
        pthread_cond_destroy(&j->cond);
        pthread_mutex_destroy(&j->lock);
        free(j);
}

static bool job_done(struct pf_job *j)
{
        return job_flag(j, &j->is_done);
}

/* Takes the finished jobs out of the list beyond the PF_DONE_KEEP newest (and every finished
 * prefetch_on_open job): the caller frees them (joins: finished, so at once) outside pf_lock. */
static struct pf_job *reap_locked(struct fs *fs)
{
        struct pf_job **pp = &fs->pf_jobs, *out = NULL;
        size_t kept = 0;

        while (*pp) {
                struct pf_job *j = *pp;

                if (job_done(j) && (j->ino_opened || ++kept > PF_DONE_KEEP)) {
                        *pp = j->next;
                        j->next = out;
                        out = j;
                } else
                        pp = &j->next;
        }
        return out;
}

static void free_list(struct pf_job *j)
{
        while (j) {
                struct pf_job *next = j->next;

                job_free(j);
                j = next;
        }
}

/* prsmctl prefetch jobs still running (pf_lock held). */
static size_t running_locked(struct fs *fs)
{
        size_t n = 0;

        for (struct pf_job *j = fs->pf_jobs; j; j = j->next)
                n += !j->ino_opened && !job_done(j);
        return n;
}

/* Takes paths (n of them) on success; on failure they stay the caller's. */
static int job_start(struct fs *fs, char **paths, size_t n, enum fs_prefetch_mode mode,
                     uint64_t ino_opened, uint64_t *ret_id)
{
        struct pf_job *j, *reaped = NULL;
        uint64_t id = 0;
        int r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (struct pf_job){ .fs = fs,
                              .mode = mode,
                              .ino_opened = ino_opened,
                              .started_ns = net_now_ns(),
                              .st.mode = mode };
        pthread_mutex_init(&j->lock, NULL);
        pthread_cond_init(&j->cond, NULL);
        pthread_mutex_lock(&fs->pf_lock);
        if (fs->pf_stopped)
                r = -ECANCELED;
        else if (!ino_opened && running_locked(fs) >= PF_JOBS_MAX)
                r = -EBUSY;
        else {
                j->paths = paths;
                j->n_paths = n;
                j->id = j->st.id = id = fs->pf_next_id + 1;
                r = -pthread_create(&j->walker, NULL, walker_thread, j);
        }
        if (r >= 0) {
                fs->pf_next_id = id;
                j->has_walker = true;
                j->next = fs->pf_jobs;
                fs->pf_jobs = j;
                reaped = reap_locked(fs);
                j = NULL;
        }
        pthread_mutex_unlock(&fs->pf_lock);
        if (j) {
                j->paths = NULL; /* the caller's still */
                j->n_paths = 0;
                job_free(j);
        }
        free_list(reaped);
        if (r >= 0 && ret_id)
                *ret_id = id;
        return r;
}

int fs_prefetch_start(struct fs *fs, const char *const *paths, size_t n, enum fs_prefetch_mode mode,
                      uint64_t *ret_id)
{
        char **copy;
        size_t i;
        int r;

        if (n == 0 || mode >= _FS_PREFETCH_MODE_MAX)
                return -EINVAL;
        if (!fs->store)
                return -EHOSTUNREACH;
        copy = calloc(n, sizeof(*copy));
        if (!copy)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                const char *p = paths[i];

                while (*p == '/')
                        p++; /* from the mount root */
                copy[i] = strdup(p);
                if (!copy[i])
                        break;
                for (size_t len = strlen(copy[i]); len && copy[i][len - 1] == '/'; len--)
                        copy[i][len - 1] = '\0';
        }
        r = i < n ? -ENOMEM : job_start(fs, copy, n, mode, 0, ret_id);
        if (r < 0) {
                for (size_t k = 0; k < n; k++)
                        free(copy[k]);
                free(copy);
        }
        return r;
}

static struct pf_job *find_locked(struct fs *fs, uint64_t id)
{
        for (struct pf_job *j = fs->pf_jobs; j; j = j->next)
                if (j->id == id && !j->ino_opened)
                        return j;
        return NULL;
}

int fs_prefetch_status(struct fs *fs, uint64_t id, struct fs_prefetch_status *ret)
{
        struct pf_job *j;
        int r = 0;

        *ret = (struct fs_prefetch_status){ 0 };
        pthread_mutex_lock(&fs->pf_lock);
        j = find_locked(fs, id);
        if (!j) {
                pthread_mutex_unlock(&fs->pf_lock);
                return -ENOENT;
        }
        pthread_mutex_lock(&j->lock);
        *ret = j->st;
        ret->is_done = j->is_done;
        ret->is_walking = !j->walk_done;
        ret->elapsed_ns = (j->is_done ? j->ended_ns : net_now_ns()) - j->started_ns;
        for (size_t i = 0; i < ret->n_errors; i++) {
                ret->errors[i].path = strdup(j->st.errors[i].path);
                if (!ret->errors[i].path)
                        r = -ENOMEM;
        }
        pthread_mutex_unlock(&j->lock);
        pthread_mutex_unlock(&fs->pf_lock);
        if (r < 0)
                fs_prefetch_status_done(ret);
        return r;
}

void fs_prefetch_status_done(struct fs_prefetch_status *st)
{
        for (size_t i = 0; i < st->n_errors; i++)
                free(st->errors[i].path);
        st->n_errors = 0;
}

int fs_prefetch_forget(struct fs *fs, uint64_t id)
{
        struct pf_job **pp, *j = NULL;

        pthread_mutex_lock(&fs->pf_lock);
        for (pp = &fs->pf_jobs; *pp; pp = &(*pp)->next)
                if ((*pp)->id == id && !(*pp)->ino_opened) {
                        j = *pp;
                        break;
                }
        if (j) {
                job_cancel(j); /* a job forgotten while it runs stops */
                *pp = j->next;
        }
        pthread_mutex_unlock(&fs->pf_lock);
        job_free(j); /* joins: a running one ends at its next block */
        return j ? 0 : -ENOENT;
}

/* prefetch_on_open: comma-separated globs matched against the file's name ("*" = all). */
static bool name_matches(const char *globs, const char *name)
{
        const char *p = globs;

        while (*p) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                char pat[256];

                while (len && *p == ' ') {
                        p++;
                        len--;
                }
                if (len && len < sizeof(pat)) {
                        memcpy(pat, p, len);
                        pat[len] = '\0';
                        if (fnmatch(pat, name, 0) == 0)
                                return true;
                }
                if (!comma)
                        break;
                p = comma + 1;
        }
        return false;
}

void fs_prefetch_on_open(struct fs *fs, const struct index_attr *a)
{
        const char *globs = fs->cfg->prefetch_on_open;
        char name[INDEX_NAME_MAX + 1];
        struct pf_job *j;
        unsigned running = 0;
        char **paths;

        /* PRSM content's CID is its manifest: its shards are fetched (and checked) as read */
        if (!globs || !*globs || strcmp(globs, "off") == 0 || !fs->store || !a->has_cid ||
            a->staged || a->size < fs->cfg->prefetch_on_open_min_size || a->size == 0 ||
            a->flags & INDEX_FLAG_PRSM)
                return;
        if (index_name_of(fs->idx, a->ino, name, sizeof(name)) < 0 || !name_matches(globs, name))
                return;
        pthread_mutex_lock(&fs->pf_lock);
        for (j = fs->pf_jobs; j; j = j->next) {
                if (!j->ino_opened || job_done(j))
                        continue;
                running++;
                if (j->ino_opened == a->ino)
                        break;
        }
        pthread_mutex_unlock(&fs->pf_lock);
        if (j || running >= PF_OPEN_MAX)
                return; /* one at a time per file; a few files at a time */
        paths = calloc(1, sizeof(*paths));
        if (!paths || !(paths[0] = strdup(name))) {
                free(paths);
                return;
        }
        if (job_start(fs, paths, 1, FS_PREFETCH_FETCH, a->ino, NULL) < 0) {
                free(paths[0]);
                free(paths);
                return;
        }
        __atomic_add_fetch(&fs->st.prefetches_on_open, 1, __ATOMIC_RELAXED);
}

void fs_prefetch_closed(struct fs *fs, uint64_t ino)
{
        pthread_mutex_lock(&fs->pf_lock);
        for (struct pf_job *j = fs->pf_jobs; j; j = j->next)
                if (j->ino_opened == ino)
                        job_cancel(j);
        pthread_mutex_unlock(&fs->pf_lock);
}

void fs_prefetch_stop(struct fs *fs)
{
        struct pf_job *list;

        pthread_mutex_lock(&fs->pf_lock);
        fs->pf_stopped = true;
        list = fs->pf_jobs;
        fs->pf_jobs = NULL;
        for (struct pf_job *j = list; j; j = j->next)
                job_cancel(j);
        pthread_mutex_unlock(&fs->pf_lock);
        free_list(list);
}

void fs_prefetch_done(struct fs *fs)
{
        fs_prefetch_stop(fs);
        pthread_mutex_destroy(&fs->pf_lock);
}
