/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writers. Opening a file for writing makes a staging file,
 * cache_dir/staging/<instance>/<ino>.<gen>, that receives the writes; nothing is downloaded
 * up front. The ranges not written yet come from the file's base, the old CID (through the
 * reader) or the previous generation's complete staging file, on demand: when read, and at
 * flush, where the gaps are filled so that the staging file holds the whole content. Written
 * ranges are kept as a sorted list of extents.
 *
 * flush (close) makes the content durable: the staging data is fdatasync'ed, then one index
 * transaction records the inode's size, mtime, state DIRTY, staged = gen and an upload job;
 * then the job goes to the uploader and close returns (write-back). A write after a flush
 * starts a new generation whose base is the flushed one, so the uploader never reads a file
 * that still changes, and a stale upload never commits (index_commit_upload checks the
 * generation). When the upload of the current generation is pinned, the index switches the
 * inode to the new CID and the staging file goes; the old CID's unpin is then owed if no
 * other inode has it, and the pin worker sends it (pins.c).
 *
 * Whose staging files: a cache_dir may be shared by several daemons (one per mount, each
 * with its own state_dir: the shipped systemd unit does this), but staging files are not
 * content-addressed; they belong to one index. So each daemon keeps them in a directory of
 * its own, named by its index's instance id (index_instance), flock'ed while it runs (two
 * indexes with one id, a copied state_dir, would otherwise sweep each other's files), and
 * only ever looks inside that one. Files of the old layout, directly in cache_dir/staging,
 * are moved into it at start when this index names them (an inode's staged generation or
 * an upload job) and left alone otherwise: they may be another daemon's. Generations are
 * unique across daemons in practice (nanoseconds of the clock), so no two indexes name the
 * same old file. An older daemon's sweep of cache_dir/staging cannot remove the directories
 * (it unlinks without AT_REMOVEDIR).
 *
 * Crash: a closed file's staging data and job are in the index: the uploader resumes them
 * at start. A file never closed keeps its last closed content; its staging file is deleted
 * at start (fs_writer_start).
 *
 * Lock order: fs->files_lock, then wf->lock. Network I/O (reading an old CID's ranges) runs
 * under wf->lock only, never under files_lock.
 */
#define LOG_MODULE "fs"
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/io.h"
#include "prsmfs/log.h"

#include "fs_internal.h"

struct extent {
        uint64_t start, end;
};

enum base_kind {
        BASE_NONE,   /* nothing under the written ranges: zeros */
        BASE_CID,    /* the old content by CID, through the reader */
        BASE_STAGED, /* the previous generation's complete staging file */
};

struct wfile {
        uint64_t ino;
        unsigned refs;      /* fs->files_lock */
        struct wfile *next; /* fs->files_lock */

        pthread_mutex_t lock;
        int fd; /* staging file of gen */
        uint64_t gen;
        uint64_t size;
        struct timespec mtime;
        struct timespec ctime; /* of the last change to the content (the index's may be newer) */
        bool dirty;            /* written since the last flush */
        bool submitted;        /* gen was flushed: the next write starts a new generation */
        enum base_kind base;
        struct rfile *base_rf; /* BASE_CID */
        int base_fd;           /* BASE_STAGED */
        uint64_t base_gen;     /* BASE_STAGED */
        uint64_t base_size;    /* base bytes beyond this are not part of the file */
        uint64_t replaced_gen; /* a staged generation O_TRUNC replaced: moot at the flush */
        /* what stat shows, copied at each change: read without wf->lock (fs_wfile_attr) */
        pthread_mutex_t shown_lock;
        struct {
                uint64_t size;
                struct timespec mtime, ctime;
                bool dirty;
                uint64_t gen, base_gen; /* the staging files it uses (base_gen 0: none) */
        } shown;
        struct extent *ext; /* written ranges: sorted, disjoint, not touching */
        size_t n_ext, cap_ext;
        uint64_t early_sent; /* bytes from 0 handed to the uploader's early puts */
        uint64_t kicked;     /* bytes from 0 whose writeback was started */
        uint64_t dropped;    /* bytes from 0 written back and dropped from the page cache */
        int wb_err;          /* a writeback error drop_behind's waits took from fd: fails
                                every flush of gen (fdatasync would not report it again) */
        bool is_linked;      /* the content is `linked` by a copy, unchanged since */
        struct cid linked;
};

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec now_ts(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return ts;
}

static void staging_name(uint64_t ino, uint64_t gen, char *buf, size_t size)
{
        (void)snprintf(buf, size, "%" PRIu64 ".%" PRIu64, ino, gen);
}

/* A staging file's name parsed back: only the form staging_name writes. */
static bool staging_parse(const char *name, uint64_t *ret_ino, uint64_t *ret_gen)
{
        uint64_t ino, gen;
        char canon[64];

        if (sscanf(name, "%" SCNu64 ".%" SCNu64, &ino, &gen) != 2)
                return false;
        staging_name(ino, gen, canon, sizeof(canon));
        if (strcmp(name, canon) != 0)
                return false;
        *ret_ino = ino;
        *ret_gen = gen;
        return true;
}

static int staging_path(struct fs *fs, uint64_t ino, uint64_t gen, char path[PATH_MAX])
{
        char name[64];

        if (!fs->staging_dir)
                return -EROFS;
        staging_name(ino, gen, name, sizeof(name));
        if ((size_t)snprintf(path, PATH_MAX, "%s/%s", fs->staging_dir, name) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* cache_dir/staging: shared by the daemons of a cache_dir, one directory each below it. */
static int staging_root(const struct config *cfg, char path[PATH_MAX])
{
        if ((size_t)snprintf(path, PATH_MAX, "%s/staging", cfg->cache_dir) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

static int make_dir(const char *path)
{
        int r;

        if (mkdir(path, 0700) == 0 || errno == EEXIST)
                return 0;
        r = -errno;
        log_error("cannot make the staging directory %s: %s", path, strerror(-r));
        return r;
}

int fs_staging_open(struct fs *fs)
{
        char root[PATH_MAX], path[PATH_MAX];
        int fd, r;

        if (staging_root(fs->cfg, root) < 0 ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", root, index_instance(fs->idx)) >=
                    sizeof(path)) {
                log_error("cache_dir %s: path too long for the staging directory",
                          fs->cfg->cache_dir);
                return -ENAMETOOLONG;
        }
        /* no mount without one: a mount that takes a create and then fails its write leaves
         * an empty file behind */
        if ((r = make_dir(root)) < 0 || (r = make_dir(path)) < 0)
                return r;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                log_error("cannot open the staging directory %s: %m", path);
                return r;
        }
        /* held as long as fd (until fs_free; fuse_daemonize's child inherits it) */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                if (r == -EWOULDBLOCK) {
                        log_error("staging directory %s is in use by another prsmfs whose index "
                                  "has the same instance id (a copy of this state_dir?)",
                                  path);
                        close(fd);
                        return -EBUSY;
                }
                log_warning("cannot lock %s: %s, ignoring", path, strerror(-r));
        }
        fs->staging_dir = strdup(path);
        if (!fs->staging_dir) {
                close(fd);
                return -ENOMEM;
        }
        fs->staging_fd = fd;
        return 0;
}

/* Queues the upload of ino's staging file of generation gen (the job's id); 0 without an
 * uploader. */
static int submit_upload(struct fs *fs, uint64_t ino, uint64_t gen)
{
        char path[PATH_MAX];
        int r;

        if (!fs->up.submit)
                return 0;
        r = staging_path(fs, ino, gen, path);
        return r < 0 ? r : fs->up.submit(fs->up.ud, gen, ino, path);
}

static void staging_unlink(struct fs *fs, uint64_t ino, uint64_t gen)
{
        char name[64];

        staging_name(ino, gen, name, sizeof(name));
        if (unlinkat(fs->staging_fd, name, 0) < 0 && errno != ENOENT)
                log_warning("cannot remove staging file %s: %m", name);
}

static int staged_open(struct fs *fs, uint64_t ino, uint64_t gen, bool quiet)
{
        char name[64];
        int fd;

        if (fs->staging_fd < 0)
                return -EIO;
        staging_name(ino, gen, name, sizeof(name));
        fd = openat(fs->staging_fd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (quiet && errno == ENOENT)
                        return -ENOENT;
                log_error("staged content of inode %" PRIu64 " is missing (%s): %m", ino, name);
                return -EIO;
        }
        return fd;
}

int fs_staged_open(struct fs *fs, uint64_t ino, uint64_t gen)
{
        return staged_open(fs, ino, gen, false);
}

int fs_staged_open_attr(struct fs *fs, struct index_attr *a)
{
        for (int tries = 0; tries < 3; tries++) {
                uint64_t gen = a->staged;
                int r = staged_open(fs, a->ino, gen, true);

                if (r != -ENOENT)
                        return r;
                /* gone: its upload committed after the caller read *a (the commit removes
                 * the file), or newer content was staged; the index says which */
                r = index_getattr(fs->idx, a->ino, a);
                if (r < 0)
                        return r;
                if (!a->staged)
                        return -ESTALE;
                if (a->staged == gen)
                        break;
        }
        return staged_open(fs, a->ino, a->staged, false);
}

/* ---- extents ---- */

/* Adds [start, end), merging with neighbours. */
static int ext_add(struct wfile *wf, uint64_t start, uint64_t end)
{
        size_t i = 0, j;

        if (start >= end)
                return 0;
        while (i < wf->n_ext && wf->ext[i].end < start)
                i++;
        /* i: first extent that ends at or after start; merge all that touch [start, end) */
        j = i;
        while (j < wf->n_ext && wf->ext[j].start <= end) {
                start = MIN(start, wf->ext[j].start);
                end = MAX(end, wf->ext[j].end);
                j++;
        }
        if (j == i) {
                if (wf->n_ext == wf->cap_ext) {
                        size_t cap = wf->cap_ext ? wf->cap_ext * 2 : 8;
                        struct extent *p = reallocarray(wf->ext, cap, sizeof(*p));

                        if (!p)
                                return -ENOMEM;
                        wf->ext = p;
                        wf->cap_ext = cap;
                }
                memmove(&wf->ext[i + 1], &wf->ext[i], (wf->n_ext - i) * sizeof(*wf->ext));
                wf->n_ext++;
        } else if (j > i + 1) {
                memmove(&wf->ext[i + 1], &wf->ext[j], (wf->n_ext - j) * sizeof(*wf->ext));
                wf->n_ext -= j - i - 1;
        }
        wf->ext[i] = (struct extent){ start, end };
        return 0;
}

/* Forgets everything at or past size. */
static void ext_cut(struct wfile *wf, uint64_t size)
{
        while (wf->n_ext > 0 && wf->ext[wf->n_ext - 1].start >= size)
                wf->n_ext--;
        if (wf->n_ext > 0 && wf->ext[wf->n_ext - 1].end > size)
                wf->ext[wf->n_ext - 1].end = size;
}

/* How many bytes from pos on are written (> 0) or not (< 0, negated), up to limit. */
static int64_t ext_run(const struct wfile *wf, uint64_t pos, uint64_t limit)
{
        for (size_t i = 0; i < wf->n_ext; i++) {
                if (wf->ext[i].end <= pos)
                        continue;
                if (wf->ext[i].start <= pos)
                        return (int64_t)(MIN(wf->ext[i].end, limit) - pos);
                return -(int64_t)(MIN(wf->ext[i].start, limit) - pos);
        }
        return -(int64_t)(limit - pos);
}

/* ---- base ---- */

static void base_drop(struct wfile *wf, struct fs *fs)
{
        if (wf->base == BASE_CID)
                fs_rfile_close(fs, wf->base_rf);
        if (wf->base == BASE_STAGED && wf->base_fd >= 0)
                close(wf->base_fd);
        wf->base = BASE_NONE;
        wf->base_rf = NULL;
        wf->base_fd = -1;
        wf->base_size = 0;
}

/* Reads len base bytes at off (within base_size) into buf. Under wf->lock. */
static int base_read(struct fs *fs, struct wfile *wf, void *buf, size_t len, uint64_t off)
{
        struct fs_seg *segs = NULL;
        size_t n = 0, got = 0;
        int r;

        if (wf->base == BASE_STAGED)
                return io_pread_exact(wf->base_fd, buf, len, off);
        if (wf->base != BASE_CID) {
                memset(buf, 0, len);
                return 0;
        }
        r = fs_rfile_read(fs, wf->base_rf, off, len, 0, &segs, &n); /* fs_no_fetch: local */
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = fs_seg_copy(&segs[i], (char *)buf + got);
                got += segs[i].len;
        }
        fs_segs_free(segs, n);
        return r < 0 ? r : got == len ? 0 : -EIO;
}

#define WARM_CHUNK (8u << 20)

/*
 * Brings the old content's blocks under [off, off+len) into memory and disk before wf->lock
 * is taken for what reads them (base_read), so that the lock is never held across a fetch:
 * a read or flush of wf waits for the network, other users of wf do not. A block evicted
 * in between is fetched under the lock after all (rare, and still bounded by the deadline).
 * Under fs_no_fetch, -EWOULDBLOCK when a block is not there (nothing changed).
 */
static int base_warm(struct fs *fs, struct wfile *wf, uint64_t off, uint64_t len, bool flush)
{
        struct rfile *rf = NULL;
        uint64_t pos = off;
        int r = 0;

        for (;;) {
                uint64_t end, gap = 0;

                pthread_mutex_lock(&wf->lock);
                if (wf->base != BASE_CID || (flush && !wf->dirty) || (rf && rf != wf->base_rf)) {
                        pthread_mutex_unlock(&wf->lock);
                        break;
                }
                end = MIN(wf->size, wf->base_size);
                if (!flush)
                        end = MIN(end, off + len);
                /* the next range nothing was written over: what fill_gaps and reads take
                 * from the old content */
                while (pos < end) {
                        int64_t run = ext_run(wf, pos, end);

                        if (run < 0) {
                                gap = MIN((uint64_t)-run, (uint64_t)WARM_CHUNK);
                                break;
                        }
                        pos += (uint64_t)run;
                }
                if (gap && !rf) {
                        rf = wf->base_rf;
                        fs_rfile_ref(fs, rf);
                }
                pthread_mutex_unlock(&wf->lock);
                if (!gap)
                        break;
                {
                        struct fs_seg *segs = NULL;
                        size_t n = 0;

                        r = fs_rfile_read(fs, rf, pos, (size_t)gap, 0, &segs, &n);
                        fs_segs_free(segs, n);
                }
                if (r < 0)
                        break;
                pos += gap;
        }
        fs_rfile_close(fs, rf);
        return r;
}

/* ---- open and close ---- */

/* Copies what stat shows into wf->shown. Under wf->lock. */
static void show(struct wfile *wf)
{
        pthread_mutex_lock(&wf->shown_lock);
        wf->shown.size = wf->size;
        wf->shown.mtime = wf->mtime;
        wf->shown.ctime = wf->ctime;
        wf->shown.dirty = wf->dirty;
        wf->shown.gen = wf->gen;
        wf->shown.base_gen = wf->base == BASE_STAGED ? wf->base_gen : 0;
        pthread_mutex_unlock(&wf->shown_lock);
}

static void wfile_free(struct fs *fs, struct wfile *wf)
{
        base_drop(wf, fs);
        if (wf->fd >= 0)
                close(wf->fd);
        free(wf->ext);
        pthread_mutex_destroy(&wf->lock);
        pthread_mutex_destroy(&wf->shown_lock);
        free(wf);
}

/* A new, empty staging file generation for wf. */
static int new_generation(struct fs *fs, struct wfile *wf)
{
        char name[64];
        int fd;

        wf->gen = __atomic_add_fetch(&fs->next_gen, 1, __ATOMIC_RELAXED);
        wf->early_sent = wf->kicked = wf->dropped = 0;
        wf->wb_err = 0;
        staging_name(wf->ino, wf->gen, name, sizeof(name));
        fd = openat(fs->staging_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t)wf->size) < 0) {
                int r = -errno;

                close(fd);
                (void)unlinkat(fs->staging_fd, name, 0);
                return r;
        }
        wf->fd = fd;
        return 0;
}

static int wfile_new(struct fs *fs, const struct index_attr *attr, bool trunc, struct wfile **ret)
{
        struct index_attr cur = *attr, *a = &cur;
        struct wfile *wf;
        int r;

        if (fs->staging_fd < 0)
                return -EROFS;
        wf = calloc(1, sizeof(*wf));
        if (!wf)
                return -ENOMEM;
        pthread_mutex_init(&wf->lock, NULL);
        pthread_mutex_init(&wf->shown_lock, NULL);
        wf->ino = a->ino;
        wf->refs = 1;
        wf->fd = wf->base_fd = -1;
        wf->size = trunc ? 0 : a->size;
        wf->mtime = a->mtime;
        wf->ctime = a->ctime;
        wf->dirty = trunc; /* O_TRUNC (or a new file) is a change by itself */
        if (trunc) {       /* POSIX open(): O_TRUNC marks mtime and ctime, whatever the size was */
                wf->mtime = wf->ctime = now_ts();
                wf->replaced_gen = a->staged; /* (not a base: early puts stay on) */
        }
        if (!trunc && a->size > 0) {
                r = a->staged ? fs_staged_open_attr(fs, a) : -ESTALE;
                if (r >= 0) {
                        wf->base = BASE_STAGED;
                        wf->base_fd = r;
                        wf->base_gen = a->staged;
                } else if (r != -ESTALE)
                        goto fail;
                else if (a->has_cid) {
                        r = fs_rfile_open(fs, a, &wf->base_rf);
                        if (r < 0)
                                goto fail;
                        wf->base = BASE_CID;
                }
                wf->base_size = a->size;
        }
        r = new_generation(fs, wf);
        if (r < 0)
                goto fail;
        show(wf);
        *ret = wf;
        return 0;
fail:
        wfile_free(fs, wf);
        return r;
}

struct wfile *fs_wfile_get(struct fs *fs, uint64_t ino)
{
        struct wfile *wf;

        pthread_mutex_lock(&fs->files_lock);
        for (wf = fs->wfiles; wf; wf = wf->next)
                if (wf->ino == ino) {
                        wf->refs++;
                        break;
                }
        pthread_mutex_unlock(&fs->files_lock);
        return wf;
}

int fs_wfile_open(struct fs *fs, const struct index_attr *a, bool trunc, struct wfile **ret)
{
        struct wfile *wf, *mine = NULL;
        int r;

        wf = fs_wfile_get(fs, a->ino);
        if (!wf) {
                r = wfile_new(fs, a, trunc, &mine); /* may read the old root: no files_lock */
                if (r < 0)
                        return r;
                pthread_mutex_lock(&fs->files_lock);
                for (wf = fs->wfiles; wf; wf = wf->next)
                        if (wf->ino == a->ino) {
                                wf->refs++; /* another open won the race */
                                break;
                        }
                if (!wf) {
                        wf = mine;
                        mine = NULL;
                        wf->next = fs->wfiles;
                        fs->wfiles = wf;
                        trunc = false; /* done by wfile_new */
                }
                pthread_mutex_unlock(&fs->files_lock);
                if (mine) {
                        staging_unlink(fs, mine->ino, mine->gen);
                        wfile_free(fs, mine);
                }
        }
        if (trunc) {
                r = fs_wfile_truncate(fs, wf, 0);
                if (r < 0) {
                        fs_wfile_close(fs, wf);
                        return r;
                }
        }
        *ret = wf;
        return 0;
}

void fs_wfile_close(struct fs *fs, struct wfile *wf)
{
        struct wfile **pp;
        struct index_attr a;

        if (!wf)
                return;
        pthread_mutex_lock(&fs->files_lock);
        if (--wf->refs > 0) {
                pthread_mutex_unlock(&fs->files_lock);
                return;
        }
        for (pp = &fs->wfiles; *pp; pp = &(*pp)->next)
                if (*pp == wf) {
                        *pp = wf->next;
                        break;
                }
        pthread_mutex_unlock(&fs->files_lock);
        /* A generation never flushed is nobody's. One flushed whose upload landed (or that
         * newer content replaced) while this writer held it is nobody's either: its commit
         * left it to the writer (fs_upload_done), and so may a base generation. What the
         * index still names as staged stays for its upload. */
        if (!wf->submitted)
                staging_unlink(fs, wf->ino, wf->gen);
        if (wf->submitted || wf->base == BASE_STAGED) {
                bool known = index_getattr(fs->idx, wf->ino, &a) >= 0;

                if (wf->submitted && (!known || a.staged != wf->gen))
                        staging_unlink(fs, wf->ino, wf->gen);
                if (wf->base == BASE_STAGED && (!known || a.staged != wf->base_gen))
                        staging_unlink(fs, wf->ino, wf->base_gen);
        }
        wfile_free(fs, wf);
}

uint64_t fs_wfile_gen(struct wfile *wf)
{
        uint64_t gen;

        pthread_mutex_lock(&wf->lock);
        gen = wf->gen;
        pthread_mutex_unlock(&wf->lock);
        return gen;
}

static bool ts_before(const struct timespec *x, const struct timespec *y)
{
        return x->tv_sec < y->tv_sec || (x->tv_sec == y->tv_sec && x->tv_nsec < y->tv_nsec);
}

/* Not under wf->lock, which a read or a flush may hold while it fetches old content: a stat
 * of a file being appended to never waits for a download. */
void fs_wfile_attr(struct wfile *wf, struct index_attr *a)
{
        pthread_mutex_lock(&wf->shown_lock);
        a->size = wf->shown.size;
        a->mtime = wf->shown.mtime;
        if (ts_before(&a->ctime, &wf->shown.ctime))
                a->ctime = wf->shown.ctime;
        if (wf->shown.dirty)
                a->state = INDEX_STATE_DIRTY;
        pthread_mutex_unlock(&wf->shown_lock);
}

void fs_wfile_set_mtime(struct wfile *wf, const struct timespec *mtime)
{
        pthread_mutex_lock(&wf->lock);
        wf->mtime = *mtime;
        show(wf);
        pthread_mutex_unlock(&wf->lock);
}

/* ---- reads and writes ---- */

/* After a flush, the next change goes to a new generation whose base is the flushed one. */
static int ensure_writable(struct fs *fs, struct wfile *wf)
{
        int fd, r;

        if (!wf->submitted)
                return 0;
        fd = fs_staged_open(fs, wf->ino, wf->gen);
        if (fd < 0)
                return fd;
        base_drop(wf, fs);
        close(wf->fd);
        wf->fd = -1;
        wf->base = BASE_STAGED;
        wf->base_fd = fd;
        wf->base_gen = wf->gen;
        wf->base_size = wf->size;
        wf->n_ext = 0;
        wf->submitted = false;
        r = new_generation(fs, wf);
        show(wf); /* both generations in use from now on (fs_upload_done) */
        if (r < 0)
                log_error("cannot start a new staging generation for inode %" PRIu64 ": %s",
                          wf->ino, strerror(-r));
        return r;
}

#define WRITEBACK_UNIT (8u << 20)
#define DROP_BEHIND    2 /* WRITEBACK_UNITs kept cached behind the writeback front */
#define DROP_MAX       4 /* WRITEBACK_UNITs waited for by one write, at most */

/*
 * The staged prefix from wf->dropped up to DROP_BEHIND units behind the writeback front:
 * waits for its writeback (started a unit or more ago, so mostly done) and drops it from the
 * page cache. A big file written through the mount is otherwise cached twice (the kernel's
 * pages of the FUSE file and of the staging file), and every page of the staging copy is a
 * fresh one: on these machines, filling fresh pages costs several times a write into pages
 * just freed, and it was the largest part of the daemon's CPU time in a 1 GiB cp. The units
 * kept cached are those the early puts are about to read. At most DROP_MAX units per call,
 * so that a write that completes a long prefix at once (its first hole filled last) does not
 * wait, under wf->lock, for the writeback of the whole file.
 *
 * A wait reports a writeback error of the file and consumes it for this fd: the fdatasync
 * at the flush would then return 0 over pages whose writeback failed (the integration test
 * saw the close succeed). So the error is kept in wf->wb_err and fails every flush of this
 * generation.
 */
static void drop_behind(struct wfile *wf)
{
        uint64_t keep = (uint64_t)DROP_BEHIND * WRITEBACK_UNIT;
        uint64_t end;

        if (wf->wb_err || wf->kicked < wf->dropped + keep + WRITEBACK_UNIT)
                return;
        end = MIN(wf->kicked - keep, wf->dropped + (uint64_t)DROP_MAX * WRITEBACK_UNIT);
        if (sync_file_range(wf->fd, (off_t)wf->dropped, (off_t)(end - wf->dropped),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                    SYNC_FILE_RANGE_WAIT_AFTER) < 0) {
                wf->wb_err = -errno;
                log_error("inode %" PRIu64 ": writeback of its staging file failed: %s", wf->ino,
                          strerror(errno));
                return;
        }
        (void)posix_fadvise(wf->fd, (off_t)wf->dropped, (off_t)(end - wf->dropped),
                            POSIX_FADV_DONTNEED);
        wf->dropped = end;
}

/*
 * After a write, for the prefix of the file written from 0 (the way cp, rsync and model
 * writers fill a file): each completed WRITEBACK_UNIT starts its writeback to disk
 * (sync_file_range, no wait), so that the fdatasync at close finds little left to write
 * instead of the whole file, and older units leave the page cache (drop_behind); and, for a
 * file with nothing under it (new, or opened with O_TRUNC), each completed early unit goes
 * to the uploader, which may put those leaves on a node before the close (a hint only: the
 * job checks everything). Under wf->lock.
 */
static void after_write(struct fs *fs, struct wfile *wf)
{
        size_t unit = fs->up.early_unit;
        int64_t prefix = ext_run(wf, 0, wf->size);
        char path[PATH_MAX];
        uint64_t done;

        if (prefix <= 0)
                return;
        done = (uint64_t)prefix / WRITEBACK_UNIT * WRITEBACK_UNIT;
        if (done > wf->kicked) {
                /* best effort: the fdatasync at close is what makes it durable */
                (void)sync_file_range(wf->fd, (off_t)wf->kicked, (off_t)(done - wf->kicked),
                                      SYNC_FILE_RANGE_WRITE);
                wf->kicked = done;
                drop_behind(wf);
        }
        if (!fs->up.early || unit == 0 || wf->base != BASE_NONE)
                return;
        done = (uint64_t)prefix / unit * unit;
        if (done <= wf->early_sent || staging_path(fs, wf->ino, wf->gen, path) < 0)
                return;
        (void)fs->up.early(fs->up.ud, path, wf->early_sent, done - wf->early_sent);
        wf->early_sent = done; /* what did not fit in the uploader's queue goes with the job */
}

ssize_t fs_wfile_write(struct fs *fs, struct wfile *wf, const void *buf, size_t len, uint64_t off)
{
        uint64_t limit = fs->cfg->max_model_size_mb * 1024 * 1024;
        ssize_t n = 0;
        int r;

        if (len == 0)
                return 0;
        if (off > UINT64_MAX - len || (limit && off + len > limit))
                return -EFBIG;
        pthread_mutex_lock(&wf->lock);
        r = ensure_writable(fs, wf);
        /* a write the staging disk stopped part-way (ENOSPC) is a short write of what it
         * took: those bytes are the file's, and no byte past them is */
        if (r >= 0) {
                n = io_pwrite_full(wf->fd, buf, len, off);
                r = n < 0 ? (int)n : 0;
        }
        if (r >= 0)
                r = ext_add(wf, off, off + (uint64_t)n);
        if (r >= 0) {
                wf->is_linked = false;
                wf->size = MAX(wf->size, off + (uint64_t)n);
                wf->mtime = wf->ctime = now_ts();
                wf->dirty = true;
                show(wf);
                after_write(fs, wf);
        }
        pthread_mutex_unlock(&wf->lock);
        return r < 0 ? r : n;
}

ssize_t fs_wfile_read(struct fs *fs, struct wfile *wf, void *buf, size_t size, uint64_t off)
{
        uint64_t end, pos;
        int r;

        r = base_warm(fs, wf, off, size, false);
        if (r < 0)
                return r;
        pthread_mutex_lock(&wf->lock);
        end = off >= wf->size ? off : MIN(wf->size, off + size);
        for (pos = off; pos < end && r >= 0;) {
                int64_t run = ext_run(wf, pos, end);
                uint64_t n = run > 0 ? (uint64_t)run : (uint64_t)-run;
                char *dst = (char *)buf + (pos - off);

                if (run > 0)
                        r = io_pread_exact(wf->fd, dst, n, pos);
                else if (pos >= wf->base_size)
                        memset(dst, 0, n); /* grown by truncate or a write past the end */
                else {
                        uint64_t from_base = MIN(n, wf->base_size - pos);

                        r = base_read(fs, wf, dst, from_base, pos);
                        memset(dst + from_base, 0, n - from_base);
                }
                pos += n;
        }
        pthread_mutex_unlock(&wf->lock);
        return r < 0 ? r : (ssize_t)(end - off);
}

int fs_wfile_truncate(struct fs *fs, struct wfile *wf, uint64_t size)
{
        uint64_t limit = fs->cfg->max_model_size_mb * 1024 * 1024;
        int r;

        if (limit && size > limit)
                return -EFBIG;
        pthread_mutex_lock(&wf->lock);
        r = ensure_writable(fs, wf);
        if (r >= 0 && ftruncate(wf->fd, (off_t)size) < 0)
                r = -errno;
        if (r >= 0) {
                if (size < wf->size) {
                        ext_cut(wf, size);
                        /* may be written anew */
                        wf->early_sent = fs->up.early_unit
                                                 ? MIN(wf->early_sent,
                                                       size / fs->up.early_unit * fs->up.early_unit)
                                                 : 0;
                        wf->kicked = MIN(wf->kicked, size);
                        wf->dropped = MIN(wf->dropped, size);
                        wf->base_size = MIN(wf->base_size, size);
                } else
                        r = ext_add(wf, wf->size, size); /* zeros, not old bytes */
        }
        if (r >= 0) {
                wf->is_linked = false;
                wf->size = size;
                wf->mtime = wf->ctime = now_ts();
                wf->dirty = true;
                show(wf);
        }
        pthread_mutex_unlock(&wf->lock);
        return r;
}

/* ---- flush and upload ---- */

/* Copies the base into every gap of the staging file. Under wf->lock. */
static int fill_gaps(struct fs *fs, struct wfile *wf)
{
        uint64_t end = MIN(wf->size, wf->base_size), pos = 0;
        size_t chunk = 1024 * 1024;
        char *buf = NULL;
        int r = 0;

        while (pos < end && r >= 0) {
                int64_t run = ext_run(wf, pos, end);
                uint64_t n = run > 0 ? (uint64_t)run : (uint64_t)-run;

                if (run < 0) {
                        if (!buf && !(buf = malloc(chunk)))
                                return -ENOMEM;
                        for (uint64_t done = 0; done < n && r >= 0;) {
                                size_t k = (size_t)MIN((uint64_t)chunk, n - done);

                                r = base_read(fs, wf, buf, k, pos + done);
                                if (r >= 0)
                                        r = io_pwrite_all(wf->fd, buf, k, pos + done);
                                done += k;
                        }
                }
                pos += n;
        }
        free(buf);
        if (r >= 0) {
                wf->n_ext = 0;
                r = ext_add(wf, 0, wf->size);
        }
        return r;
}

/* New content replaces the base: the staged generation whose upload is now moot (0: none),
 * and the base dropped. Under wf->lock. */
static uint64_t take_replaced(struct fs *fs, struct wfile *wf)
{
        uint64_t old = wf->base == BASE_STAGED ? wf->base_gen : wf->replaced_gen;

        wf->replaced_gen = 0;
        base_drop(wf, fs);
        return old;
}

/* Cancels the upload of a replaced generation and removes its file (not under wf->lock). */
static void drop_replaced(struct fs *fs, uint64_t ino, uint64_t gen)
{
        if (!gen)
                return;
        if (fs->up.cancel)
                fs->up.cancel(fs->up.ud, gen);
        staging_unlink(fs, ino, gen);
}

int fs_wfile_flush(struct fs *fs, struct wfile *wf)
{
        uint64_t old_base = 0, gen;
        int r;

        r = base_warm(fs, wf, 0, UINT64_MAX, true); /* fill_gaps' reads, outside the lock */
        if (r < 0)
                return r;
        pthread_mutex_lock(&wf->lock);
        if (!wf->dirty) {
                pthread_mutex_unlock(&wf->lock);
                return 0;
        }
        r = wf->wb_err ? wf->wb_err : fill_gaps(fs, wf);
        /* the upload takes the whole staging file: nothing past the size may be in it */
        if (r >= 0 && ftruncate(wf->fd, (off_t)wf->size) < 0)
                r = -errno;
        if (r >= 0 && fdatasync(wf->fd) < 0)
                r = -errno;
        if (r >= 0) /* allowed_mime_types: refused content is never staged for upload */
                r = fs_policy_check(fs, wf->fd, wf->size, wf->ino);
        if (r >= 0)
                r = index_stage(fs->idx, wf->ino, wf->gen, wf->size, &wf->mtime, &wf->ctime);
        if (r < 0) {
                pthread_mutex_unlock(&wf->lock);
                if (r != -EPERM && (r != -EWOULDBLOCK || !fs_no_fetch)) /* else a job retries */
                        log_error("cannot stage inode %" PRIu64 ": %s", wf->ino, strerror(-r));
                return r;
        }
        fs_inode_changed(fs, wf->ino); /* views of the old content read it anew */
        old_base = take_replaced(fs, wf);
        wf->dirty = false;
        show(wf);
        wf->submitted = true;
        gen = wf->gen;
        pthread_mutex_unlock(&wf->lock);
        fs_waiters_wake(fs, wf->ino); /* an fsync of replaced content is done (files_lock:
                                          never under wf->lock) */

        drop_replaced(fs, wf->ino, old_base);
        r = submit_upload(fs, wf->ino, gen);
        if (r < 0) /* durable anyway: the job is resumed at the next start */
                log_error("cannot queue the upload of inode %" PRIu64 ": %s", wf->ino,
                          strerror(-r));
        return 0;
}

/*
 * copy_file_range by reference. A whole-file copy into an empty writer (the way cp copies:
 * the destination created or truncated, then one call from offset 0 for at least the source's
 * size) makes the source's CID the destination's content in one index transaction: no byte
 * is read, staged or uploaded, and both inodes name the same immutable root, so a later write
 * to either goes to its own staging file over that root (copy-on-write by construction). The
 * writer stays open over the CID as its base, as if it had just been opened on it.
 *
 * FUSE answers a copy with a 32-bit count: a copy of more than COPY_REPLY_MAX bytes is
 * answered in parts, the kernel (or cp) asking again for the rest at the same offsets; those
 * calls find the destination still linked to the same root and answer at once.
 *
 * Anything else (a range, a non-empty destination, a source being written or staged) is
 * -EOPNOTSUPP: the kernel then copies the bytes itself through read and write.
 */
#define COPY_REPLY_MAX (UINT32_MAX & ~(uint64_t)4095)

int fs_wfile_copy_link(struct fs *fs, struct wfile *wf, const struct index_attr *src,
                       uint64_t off_in, uint64_t off_out, uint64_t len, uint64_t *ret_n)
{
        struct index_attr base = *src;
        struct rfile *rf = NULL;
        uint64_t old_base = 0;
        struct timespec now;
        int r;

        pthread_mutex_lock(&wf->lock);
        if (wf->is_linked && cid_equal(&wf->linked, &src->cid) && wf->n_ext == 0 &&
            wf->size == src->size && off_in == off_out) {
                /* the rest of a copy answered in parts: those bytes are there already */
                *ret_n =
                        off_in >= src->size ? 0 : MIN(MIN(len, src->size - off_in), COPY_REPLY_MAX);
                pthread_mutex_unlock(&wf->lock);
                return 0;
        }
        /* PRSM content's CID is its JSON, not its bytes: only a byte copy will do */
        if (off_in != 0 || off_out != 0 || len < src->size || wf->size != 0 || wf->n_ext != 0 ||
            wf->submitted || !src->has_cid || src->flags & INDEX_FLAG_PRSM) {
                pthread_mutex_unlock(&wf->lock);
                return -EOPNOTSUPP;
        }
        /* the reader of the new content, as an open would make it (the source's layout is in
         * the index or its root cached: a copy of a file just read fetches nothing) */
        base.ino = wf->ino;
        r = fs_rfile_open(fs, &base, &rf);
        now = now_ts();
        if (r >= 0)
                r = index_set_content(fs->idx, wf->ino, &src->cid, src->size, &now, &now);
        if (r < 0) {
                pthread_mutex_unlock(&wf->lock);
                fs_rfile_close(fs, rf);
                return r == -ENOENT ? -EOPNOTSUPP : r;
        }
        old_base = take_replaced(fs, wf);
        wf->base = BASE_CID;
        wf->base_rf = rf;
        wf->base_size = src->size;
        wf->size = src->size;
        wf->mtime = wf->ctime = now;
        wf->dirty = false; /* the index has it: nothing for a flush to do */
        wf->is_linked = true;
        wf->linked = src->cid;
        show(wf);
        pthread_mutex_unlock(&wf->lock);
        fs_inode_changed(fs, wf->ino); /* views of the old content read it anew */
        fs_waiters_wake(fs, wf->ino);
        drop_replaced(fs, wf->ino, old_base);
        fs_pins_kick(fs); /* the old content's unpin may be owed */
        __atomic_add_fetch(&fs->st.copies_linked, 1, __ATOMIC_RELAXED);
        *ret_n = MIN(src->size, COPY_REPLY_MAX);
        return 0;
}

/* Commits in flight, by inode (files_lock); an overflow counts as "any inode". */
static void commit_track(struct fs *fs, uint64_t ino, bool start)
{
        for (size_t i = 0; i < ELEMENTSOF(fs->committing); i++)
                if (fs->committing[i] == (start ? 0 : ino)) {
                        fs->committing[i] = start ? ino : 0;
                        return;
                }
        if (start)
                fs->committing_other++;
        else
                fs->committing_other--;
}

bool fs_is_committing(const struct fs *fs, uint64_t ino)
{
        for (size_t i = 0; i < ELEMENTSOF(fs->committing); i++)
                if (fs->committing[i] == ino)
                        return true;
        return fs->committing_other > 0;
}

void fs_upload_done(struct fs *fs, uint64_t id, uint64_t ino, int error, const struct cid *root,
                    uint64_t size, bool is_pinned)
{
        struct index_attr before;
        bool in_use = false, has_before = false;
        char path[PATH_MAX];
        int r, fd = -1;

        if (error < 0) {
                /* cancelled: the job stays in the index if it is still owed; a pin that
                 * landed first belongs to nothing, and its unpin is owed at once */
                if (is_pinned) {
                        r = index_pin_add(fs->idx, root, 0);
                        if (r < 0)
                                log_warning("cannot record the pin of inode %" PRIu64
                                            "'s cancelled upload: %s; it stays pinned",
                                            ino, strerror(-r));
                        fs_pins_kick(fs);
                }
                return;
        }
        if (prsm_has_provenance(fs->prsm)) {
                /* the record's old CID, and its sha256 from the staged bytes: the fd keeps
                 * them after the staging file goes (hashed by the record writer, not here) */
                has_before = index_getattr(fs->idx, ino, &before) >= 0;
                if (staging_path(fs, ino, id, path) >= 0)
                        fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        /* waiters (fsync) see the commit only once the staging file is gone too */
        pthread_mutex_lock(&fs->files_lock);
        commit_track(fs, ino, true);
        pthread_mutex_unlock(&fs->files_lock);
        r = index_commit_upload(fs->idx, ino, id, root, size, is_pinned ? INDEX_COMMIT_PINNED : 0);
        if (r < 0)
                log_error("cannot commit the upload of inode %" PRIu64 ": %s", ino, strerror(-r));
        else
                fs_pins_kick(fs); /* the old content's unpin may be owed now */
        if (r == 1)               /* applied: this content is the file's now */
                fs_prov_commit(fs, ino, has_before ? &before : NULL, root, size, TAKE_FD(fd));
        if (fd >= 0)
                close(fd);
        pthread_mutex_lock(&fs->files_lock);
        for (struct wfile *wf = fs->wfiles; r >= 0 && wf && !in_use; wf = wf->next)
                if (wf->ino == ino) {
                        /* not wf->lock: a read may hold it while it fetches old content,
                         * and every open and read waits for files_lock meanwhile */
                        pthread_mutex_lock(&wf->shown_lock);
                        in_use = wf->shown.base_gen == id || wf->shown.gen == id;
                        pthread_mutex_unlock(&wf->shown_lock);
                }
        if (r >= 0 && !in_use)
                staging_unlink(fs, ino, id);
        commit_track(fs, ino, false);
        pthread_cond_broadcast(&fs->commit_cond);
        pthread_mutex_unlock(&fs->files_lock);
        fs_waiters_wake(fs, ino);
        if (r >= 0)
                __atomic_add_fetch(&fs->st.uploads_committed, 1, __ATOMIC_RELAXED);
}

int fs_wait_committed(struct fs *fs, uint64_t ino, uint64_t gen, uint64_t deadline_ns)
{
        struct index_attr a;
        int r;

        for (;;) {
                uint64_t now = net_now_ns(), until;
                struct timespec ts;
                bool committing;

                r = index_getattr(fs->idx, ino, &a); /* not under files_lock: SQLite I/O */
                pthread_mutex_lock(&fs->files_lock);
                committing = fs_is_committing(fs, ino);
                if (r < 0 || (a.staged != gen && !committing)) {
                        pthread_mutex_unlock(&fs->files_lock);
                        break; /* committed (staging file freed), or replaced by newer content */
                }
                if (now >= deadline_ns) {
                        pthread_mutex_unlock(&fs->files_lock);
                        r = -ETIMEDOUT;
                        break;
                }
                until = now + MIN(deadline_ns - now, 100000000ull); /* re-check every 100 ms */
                ts = (struct timespec){ .tv_sec = (time_t)(until / 1000000000ull),
                                        .tv_nsec = (long)(until % 1000000000ull) };
                (void)pthread_cond_timedwait(&fs->commit_cond, &fs->files_lock, &ts);
                pthread_mutex_unlock(&fs->files_lock);
        }
        return r < 0 ? r : 0;
}

struct resume {
        struct fs *fs;
        unsigned n;
};

static int resume_job(const struct index_job *j, void *userdata)
{
        struct resume *rs = userdata;
        int r;

        if (!rs->fs->up.submit)
                return 0;
        r = submit_upload(rs->fs, j->ino, j->gen);
        if (r < 0)
                log_error("cannot resume the upload of inode %" PRIu64 ": %s", j->ino,
                          strerror(-r));
        else
                rs->n++;
        return 0;
}

/* The upload jobs of the index, sorted by (ino, gen): with the inodes' staged generations,
 * what names a staging file as this index's. */
struct jobs {
        struct index_job *v;
        size_t n, cap;
};

static int collect_job(const struct index_job *j, void *userdata)
{
        struct jobs *js = userdata;

        if (js->n == js->cap) {
                size_t cap = js->cap ? js->cap * 2 : 64;
                struct index_job *p = reallocarray(js->v, cap, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                js->v = p;
                js->cap = cap;
        }
        js->v[js->n++] = *j;
        return 0;
}

static int job_cmp(const void *a, const void *b)
{
        const struct index_job *x = a, *y = b;

        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* 1 when this index names staging file (ino, gen), 0 when it does not, < 0 when the index
 * cannot tell (then the file is kept). */
static int is_named(struct fs *fs, const struct jobs *js, uint64_t ino, uint64_t gen)
{
        struct index_job key = { .ino = ino, .gen = gen };
        struct index_attr a;
        int r;

        if (js->n && bsearch(&key, js->v, js->n, sizeof(*js->v), job_cmp))
                return 1;
        r = index_getattr(fs->idx, ino, &a);
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : a.staged == gen;
}

/*
 * Walks the staging files of directory dfd. In this index's own directory (adopt false),
 * the files it does not name are deleted: writers that never closed. In cache_dir/staging,
 * where older versions kept every daemon's files together (adopt true), the files it names
 * move into its own directory and the others stay: they may be another daemon's. Returns
 * how many files were moved; *ret_foreign (optional) is how many were left.
 */
static unsigned staging_scan(struct fs *fs, int dfd, const struct jobs *js, bool adopt,
                             unsigned *ret_foreign)
{
        unsigned moved = 0, foreign = 0;
        struct dirent *de;
        DIR *d;
        int fd;

        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        while ((de = readdir(d))) {
                uint64_t ino = 0, gen = 0;
                bool parsed;
                int r;

                if (de->d_name[0] == '.')
                        continue;
                parsed = staging_parse(de->d_name, &ino, &gen);
                if (adopt && (!parsed || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)))
                        continue; /* the other daemons' directories, or not a staging file */
                r = parsed ? is_named(fs, js, ino, gen) : 0;
                if (r < 0) {
                        log_warning("cannot tell whose staging file %s is: %s, keeping it",
                                    de->d_name, strerror(-r));
                } else if (!adopt && r == 0) {
                        log_info("removing staging file %s of a file never closed", de->d_name);
                        (void)unlinkat(dfd, de->d_name, 0);
                } else if (adopt && r == 0) {
                        foreign++;
                } else if (adopt && renameat(dfd, de->d_name, fs->staging_fd, de->d_name) < 0) {
                        log_error("cannot move staging file %s of inode %" PRIu64
                                  " into %s: %m, its content cannot be read",
                                  de->d_name, ino, fs->staging_dir);
                } else if (adopt) {
                        moved++;
                }
        }
        closedir(d);
        if (ret_foreign)
                *ret_foreign = foreign;
        return moved;
}

/* Moves this index's staging files of the old layout (directly in cache_dir/staging) into its
 * own directory. */
static void adopt_old_layout(struct fs *fs, const struct jobs *js)
{
        unsigned moved, foreign = 0;
        char root[PATH_MAX];
        int fd;

        if (staging_root(fs->cfg, root) < 0)
                return;
        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        moved = staging_scan(fs, fd, js, true, &foreign);
        close(fd);
        if (moved)
                log_notice("moved %u staging files of the old layout from %s into %s", moved, root,
                           fs->staging_dir);
        if (foreign)
                log_info("%u staging files in %s are not this index's (another prsmfs's?), "
                         "leaving them",
                         foreign, root);
}

int fs_writer_start(struct fs *fs)
{
        struct jobs js = { 0 };
        uint64_t max = 0;
        int r;

        if (fs->staging_fd < 0)
                return 0;
        r = index_jobs(fs->idx, collect_job, &js);
        if (r < 0)
                goto out;
        if (js.n)
                qsort(js.v, js.n, sizeof(*js.v), job_cmp);
        adopt_old_layout(fs, &js);
        (void)staging_scan(fs, fs->staging_fd, &js, false, NULL);
        for (size_t i = 0; i < js.n; i++)
                max = MAX(max, js.v[i].gen);
        /* generations stay unique across restarts: above every staged one and the clock */
        fs->next_gen = MAX(max, (uint64_t)now_ns());
out:
        free(js.v);
        return r;
}

int fs_set_uploader(struct fs *fs, const struct fs_uploader *up)
{
        struct resume rs = { .fs = fs };
        int r, p;

        fs->up = *up;
        r = index_jobs(fs->idx, resume_job, &rs);
        if (rs.n)
                log_info("resumed %u uploads", rs.n);
        p = fs_pins_start(fs); /* what the last run left owed, too */
        return r < 0 ? r : p;
}

/* ---- fsck: the index's staged content against the staging directory ---- */

/* An unnamed staging file written to less than this ago may belong to a writer still setting
 * up (the file is made before the writer is in fs->wfiles, and making it may read the old
 * content): it is reported, never removed. */
#define FSCK_MIN_AGE_SEC 600

/* True when a file open for writing uses staging file (ino, gen). */
static bool is_open_gen(struct fs *fs, uint64_t ino, uint64_t gen)
{
        bool used = false;

        pthread_mutex_lock(&fs->files_lock);
        for (struct wfile *wf = fs->wfiles; wf && !used; wf = wf->next) {
                if (wf->ino != ino)
                        continue;
                pthread_mutex_lock(&wf->shown_lock);
                used = wf->shown.gen == gen || wf->shown.base_gen == gen;
                pthread_mutex_unlock(&wf->shown_lock);
        }
        pthread_mutex_unlock(&fs->files_lock);
        return used;
}

/* Jobs whose staged content has no staging file any more (its upload can never succeed). */
static void fsck_jobs(struct fs *fs, const struct jobs *js, struct fs_fsck_result *res)
{
        for (size_t i = 0; i < js->n; i++) {
                const struct index_job *j = &js->v[i];
                struct index_attr a;
                struct stat st;
                char name[64];

                staging_name(j->ino, j->gen, name, sizeof(name));
                if (fstatat(fs->staging_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
                        continue;
                /* an upload that committed meanwhile removed it: the index no longer names it */
                if (index_getattr(fs->idx, j->ino, &a) < 0 || a.staged != j->gen)
                        continue;
                log_error("fsck: inode %" PRIu64 ": its staged content (staging file %s) is "
                          "gone; its upload cannot succeed",
                          j->ino, name);
                res->missing++;
        }
}

int fs_fsck(struct fs *fs, bool repair, struct fs_fsck_result *ret)
{
        struct fs_fsck_result res = { 0 };
        struct jobs js = { 0 };
        time_t now = time(NULL);
        struct dirent *de;
        DIR *d;
        int fd, r;

        if (fs->staging_fd < 0)
                return -EROFS;
        r = index_jobs(fs->idx, collect_job, &js);
        if (r < 0)
                goto out;
        if (js.n)
                qsort(js.v, js.n, sizeof(*js.v), job_cmp);
        fsck_jobs(fs, &js, &res);
        fd = openat(fs->staging_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                goto out;
        }
        while ((de = readdir(d))) {
                uint64_t ino = 0, gen = 0;
                bool parsed;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                parsed = staging_parse(de->d_name, &ino, &gen);
                r = parsed ? is_named(fs, &js, ino, gen) : 0;
                if (r < 0) {
                        res.unknown++; /* the index cannot tell: kept */
                        continue;
                }
                if (r > 0) {
                        res.staged++;
                        continue;
                }
                if (parsed && is_open_gen(fs, ino, gen)) {
                        res.open++;
                        continue;
                }
                if (now - st.st_mtime < FSCK_MIN_AGE_SEC) {
                        res.young++;
                        continue;
                }
                res.orphans++;
                res.orphan_bytes += (uint64_t)st.st_size;
                if (!repair || !S_ISREG(st.st_mode))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
                        log_notice("fsck: removed staging file %s, which nothing names",
                                   de->d_name);
                        res.removed++;
                } else
                        log_warning("fsck: cannot remove staging file %s: %m", de->d_name);
        }
        closedir(d);
        r = 0;
        *ret = res;
out:
        free(js.v);
        return r;
}
