/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block cache on local disk.
 *
 * Layout: <dir>/blocks/<xx>/<key> where key is the base32 multibase form of the block's
 * multihash (so the same bytes named by a CIDv0 or a CIDv1, raw or dag-pb, share one file,
 * as in Kubo's blockstore) and xx the hex of the digest's last byte. New blocks are written
 * to <dir>/tmp and renamed into place: a reader, in this mount or another, sees a whole
 * block or none. After a power loss a renamed block is whole on ext4's default data=ordered
 * (data reaches the disk before the rename commits); callers also check the size they expect.
 *
 * Accounting: `bytes` is this process's estimate (scanned at open, updated on put/evict);
 * other mounts sharing the directory make it drift, so eviction rescans the directory and
 * works from what is really there. Eviction holds an exclusive flock on <dir>/lock so two
 * mounts do not evict at once.
 */
#define LOG_MODULE "cache"
#include "prsmfs/cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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

#define KEY_MAX          (CID_MAX_STR)
#define ATIME_REFRESH_NS (60ull * 1000000000)

struct cache {
        char *dir;
        int blocks_fd; /* <dir>/blocks, O_PATH|O_DIRECTORY */
        int tmp_fd;    /* <dir>/tmp */
        int lock_fd;   /* <dir>/lock, flock'ed while evicting */
        uint64_t max_bytes;
        uint64_t ttl_ms;
        bool enabled;
        pthread_mutex_t evict_lock; /* one eviction at a time in this process */
        /* the TTL sweeper (cache_start_sweeper) */
        pthread_t sweeper;
        bool has_sweeper;
        pthread_mutex_t sweep_lock;
        pthread_cond_t sweep_cond; /* CLOCK_MONOTONIC */
        bool stop;                 /* sweep_lock */
        /* statistics: atomics */
        uint64_t bytes, hits, misses, puts, put_errors, evictions;
        uint64_t pending; /* atomic: bytes of blocks written to tmp, about to be renamed in */
        uint64_t added;   /* atomic: bytes renamed in since open, never decreases */
        uint64_t tmp_seq; /* atomic */
};

static void stat_add(uint64_t *p, uint64_t v)
{
        __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

/* key + relative path "xx/key" of a block */
static int block_path(const struct cid *cid, char *path, size_t size)
{
        struct bytes_view d = cid_digest(cid);
        size_t mh_off, key_len;
        char key[KEY_MAX];
        int r;

        /* the multihash starts with varint(code) varint(len) right before the digest */
        mh_off = d.p - cid->bin - cid_varint_len(cid->mh_code) - cid_varint_len(cid->digest_len);
        r = cid_multibase_encode(CID_BASE_BASE32, cid->bin + mh_off, cid->len - mh_off, key,
                                 sizeof(key), &key_len);
        if (r < 0)
                return r;
        if ((size_t)snprintf(path, size, "%02x/%s", d.len ? d.p[d.len - 1] : 0, key) >= size)
                return -ENAMETOOLONG;
        return 0;
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_subdir(int parent, const char *name, int *ret)
{
        int fd;

        if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

/* Calls fn for every block file ("xx/key" path and its stat); stops when fn returns < 0. */
typedef int (*block_fn)(const char *path, const struct stat *st, void *userdata);

static int walk_blocks(struct cache *c, block_fn fn, void *userdata)
{
        char sub[3], path[KEY_MAX + 4];

        for (unsigned i = 0; i < 256; i++) {
                _cleanup_close_ int fd = -1;
                struct dirent *de;
                struct stat st;
                int r = 0;
                DIR *d;

                (void)snprintf(sub, sizeof(sub), "%02x", i);
                fd = openat(c->blocks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                d = fdopendir(TAKE_FD(fd));
                if (!d)
                        continue;
                while (r >= 0 && (de = readdir(d))) {
                        if (de->d_name[0] == '.' ||
                            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(st.st_mode))
                                continue;
                        (void)snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
                        r = fn(path, &st, userdata);
                }
                closedir(d);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_size(const char *path, const struct stat *st, void *userdata)
{
        (void)path;
        *(uint64_t *)userdata += (uint64_t)st->st_size;
        return 0;
}

/* Adds up the sizes of what is cached. */
static uint64_t scan_total(struct cache *c)
{
        uint64_t total = 0;

        (void)walk_blocks(c, add_size, &total); /* add_size never fails */
        return total;
}

static void clean_tmp(struct cache *c)
{
        _cleanup_close_ int fd = fcntl(c->tmp_fd, F_DUPFD_CLOEXEC, 3);
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(TAKE_FD(fd));
        if (!d)
                return;
        /* Other mounts may be writing here: only remove what is clearly abandoned. */
        while ((de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] != '.' &&
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    st.st_mtime + 3600 < time(NULL))
                        (void)unlinkat(dirfd(d), de->d_name, 0); /* best effort */
        }
        closedir(d);
}

int cache_open(const char *dir, uint64_t max_bytes, uint64_t ttl_ms, bool enabled,
               struct cache **ret)
{
        _cleanup_close_ int dfd = -1;
        struct cache *c;
        char sub[3];
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->blocks_fd = c->tmp_fd = c->lock_fd = -1;
        c->max_bytes = max_bytes;
        c->ttl_ms = ttl_ms;
        c->enabled = enabled;
        pthread_mutex_init(&c->evict_lock, NULL);
        pthread_mutex_init(&c->sweep_lock, NULL);
        {
                pthread_condattr_t ca;

                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&c->sweep_cond, &ca);
                pthread_condattr_destroy(&ca);
        }
        c->dir = strdup(dir);
        if (!c->dir) {
                r = -ENOMEM;
                goto fail;
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                goto fail;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                goto fail;
        }
        r = open_subdir(dfd, "blocks", &c->blocks_fd);
        if (r >= 0)
                r = open_subdir(dfd, "tmp", &c->tmp_fd);
        if (r < 0)
                goto fail;
        c->lock_fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (c->lock_fd < 0) {
                r = -errno;
                goto fail;
        }
        for (unsigned i = 0; i < 256; i++) {
                (void)snprintf(sub, sizeof(sub), "%02x", i);
                if (mkdirat(c->blocks_fd, sub, 0700) < 0 && errno != EEXIST) {
                        r = -errno;
                        goto fail;
                }
        }
        clean_tmp(c);
        c->bytes = scan_total(c);
        *ret = c;
        if (c->enabled && (c->bytes > c->max_bytes || c->ttl_ms))
                (void)cache_evict(c, c->max_bytes); /* also applies the TTL */
        return 0;
fail:
        log_debug_errno(r, "cannot open cache %s", dir);
        cache_free(c);
        return r;
}

void cache_free(struct cache *c)
{
        if (!c)
                return;
        if (c->has_sweeper) {
                pthread_mutex_lock(&c->sweep_lock);
                c->stop = true;
                pthread_cond_signal(&c->sweep_cond);
                pthread_mutex_unlock(&c->sweep_lock);
                pthread_join(c->sweeper, NULL);
        }
        pthread_cond_destroy(&c->sweep_cond);
        pthread_mutex_destroy(&c->sweep_lock);
        if (c->blocks_fd >= 0)
                close(c->blocks_fd);
        if (c->tmp_fd >= 0)
                close(c->tmp_fd);
        if (c->lock_fd >= 0)
                close(c->lock_fd);
        pthread_mutex_destroy(&c->evict_lock);
        free(c->dir);
        free(c);
}

static void touch_if_old(int fd, const struct stat *st)
{
        int64_t atime = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
        struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };

        if (now_ns() - atime > (int64_t)ATIME_REFRESH_NS)
                (void)futimens(fd, ts); /* LRU hint only */
}

int cache_block_open(struct cache *c, const struct cid *cid, uint64_t *ret_size)
{
        _cleanup_close_ int fd = -1;
        char path[KEY_MAX + 4];
        struct stat st;
        int r;

        if (!c->enabled) {
                stat_add(&c->misses, 1);
                return -ENOENT;
        }
        r = block_path(cid, path, sizeof(path));
        if (r < 0)
                return r;
        fd = openat(c->blocks_fd, path, O_RDONLY | O_CLOEXEC | O_NOATIME);
        if (fd < 0 && errno == EPERM)
                fd = openat(c->blocks_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        stat_add(&c->misses, 1);
                return -errno;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        touch_if_old(fd, &st);
        stat_add(&c->hits, 1);
        if (ret_size)
                *ret_size = (uint64_t)st.st_size;
        return TAKE_FD(fd);
}

ssize_t cache_block_pread(struct cache *c, const struct cid *cid, void *buf, size_t len,
                          uint64_t off)
{
        _cleanup_close_ int fd = -1;

        fd = cache_block_open(c, cid, NULL);
        if (fd < 0)
                return fd;
        return io_pread_full(fd, buf, len, off);
}

/* The block's stat and its path in blocks_fd (KEY_MAX + 4 bytes). */
static int block_stat(struct cache *c, const struct cid *cid, char *path, struct stat *st)
{
        int r;

        if (!c->enabled)
                return -ENOENT;
        r = block_path(cid, path, KEY_MAX + 4);
        if (r < 0)
                return r;
        return fstatat(c->blocks_fd, path, st, 0) < 0 ? -errno : 0;
}

int64_t cache_block_size(struct cache *c, const struct cid *cid)
{
        char path[KEY_MAX + 4];
        struct stat st;
        int r = block_stat(c, cid, path, &st);

        return r < 0 ? r : st.st_size;
}

int cache_block_remove(struct cache *c, const struct cid *cid)
{
        char path[KEY_MAX + 4];
        struct stat st;
        int r;

        /* under the eviction lock: the size accounting stays what an eviction would do */
        pthread_mutex_lock(&c->evict_lock);
        r = block_stat(c, cid, path, &st);
        if (r >= 0 && unlinkat(c->blocks_fd, path, 0) < 0)
                r = -errno;
        if (r >= 0) {
                uint64_t cur = __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);

                __atomic_store_n(&c->bytes,
                                 cur > (uint64_t)st.st_size ? cur - (uint64_t)st.st_size : 0,
                                 __ATOMIC_RELAXED);
                stat_add(&c->evictions, 1);
        }
        pthread_mutex_unlock(&c->evict_lock);
        return r;
}

/* Moves a written block into place: 0, or 1 when a whole copy got there first (two puts of
 * one block at once must not both count its bytes), or -errno. */
static int rename_in(struct cache *c, const char *tmp, const char *path, size_t len)
{
        struct stat st;

        if (renameat2(c->tmp_fd, tmp, c->blocks_fd, path, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno == EEXIST) {
                if (fstatat(c->blocks_fd, path, &st, 0) == 0 && (size_t)st.st_size == len)
                        return 1;
        } else if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* a short leftover, or a file system without RENAME_NOREPLACE: replace */
        if (renameat(c->tmp_fd, tmp, c->blocks_fd, path) < 0)
                return -errno;
        return 0;
}

static int put(struct cache *c, const struct cid *cid, const void *data, size_t len, bool verify)
{
        _cleanup_close_ int fd = -1;
        char path[KEY_MAX + 4], tmp[64];
        struct stat st;
        int r;

        if (!c->enabled)
                return 0;
        if (verify) {
                r = cid_verify(cid, data, len);
                if (r < 0)
                        return r;
        }
        r = block_path(cid, path, sizeof(path));
        if (r < 0)
                return r;
        if (fstatat(c->blocks_fd, path, &st, 0) == 0 && (size_t)st.st_size == len)
                return 0; /* already there (another file or another mount put it) */
        (void)snprintf(tmp, sizeof(tmp), "%d.%llu", (int)getpid(),
                       (unsigned long long)__atomic_add_fetch(&c->tmp_seq, 1, __ATOMIC_RELAXED));
        fd = openat(c->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }
        r = io_write_all(fd, data, len);
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0) {
                /* room is made before the block goes in, so the cap holds at every moment,
                 * not only once the put that crossed it has evicted */
                stat_add(&c->pending, len);
                if (__atomic_load_n(&c->bytes, __ATOMIC_RELAXED) +
                            __atomic_load_n(&c->pending, __ATOMIC_RELAXED) >
                    c->max_bytes)
                        (void)cache_evict(c, c->max_bytes - c->max_bytes / 10);
                r = rename_in(c, tmp, path, len);
                if (r == 0) {
                        stat_add(&c->bytes, len);
                        stat_add(&c->added, len);
                }
                __atomic_sub_fetch(&c->pending, len, __ATOMIC_RELAXED);
        }
        if (r < 0) {
                (void)unlinkat(c->tmp_fd, tmp, 0); /* leave nothing half-written behind */
                goto fail;
        }
        if (r > 0) {
                (void)unlinkat(c->tmp_fd, tmp, 0);
                return 0; /* another put of the same block won the race: counted once */
        }
        stat_add(&c->puts, 1);
        return 0;
fail:
        stat_add(&c->put_errors, 1);
        return r;
}

int cache_block_put(struct cache *c, const struct cid *cid, const void *data, size_t len)
{
        return put(c, cid, data, len, true);
}

int cache_block_put_verified(struct cache *c, const struct cid *cid, const void *data, size_t len)
{
        return put(c, cid, data, len, false);
}

struct victim {
        int64_t atime_ns;
        uint64_t size;
        char path[KEY_MAX + 4];
};

static int victim_cmp(const void *a, const void *b)
{
        const struct victim *x = a, *y = b;

        return (x->atime_ns > y->atime_ns) - (x->atime_ns < y->atime_ns);
}

struct victims {
        struct victim *v;
        size_t n, cap;
        uint64_t total;
};

static int add_victim(const char *path, const struct stat *st, void *userdata)
{
        struct victims *vs = userdata;

        if (vs->n == vs->cap) {
                size_t cap = vs->cap ? vs->cap * 2 : 1024;
                struct victim *nv = reallocarray(vs->v, cap, sizeof(*nv));

                if (!nv)
                        return -ENOMEM;
                vs->v = nv;
                vs->cap = cap;
        }
        vs->v[vs->n] = (struct victim){
                .atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec,
                .size = (uint64_t)st->st_size,
        };
        (void)snprintf(vs->v[vs->n].path, sizeof(vs->v[vs->n].path), "%s", path);
        vs->total += (uint64_t)st->st_size;
        vs->n++;
        return 0;
}

int64_t cache_evict(struct cache *c, uint64_t target)
{
        struct victims vs = { 0 };
        uint64_t freed = 0, added0, pending;
        int64_t now = now_ns(),
                ttl_ns = (int64_t)MIN(c->ttl_ms, (uint64_t)INT64_MAX / 2000000) * 1000000;
        int r;

        pthread_mutex_lock(&c->evict_lock);
        if (flock(c->lock_fd, LOCK_EX) < 0) {
                pthread_mutex_unlock(&c->evict_lock);
                return -errno;
        }
        /* Blocks renamed in while the directory is listed may or may not be seen: the new
         * estimate counts them all (too high is only an early rescan; too low would let the
         * cache grow past its cap unnoticed). Blocks about to be renamed in need room too. */
        added0 = __atomic_load_n(&c->added, __ATOMIC_RELAXED);
        pending = __atomic_load_n(&c->pending, __ATOMIC_RELAXED);
        /* if the listing runs out of memory, evict from the part that was listed */
        r = walk_blocks(c, add_victim, &vs);
        if (vs.n)
                qsort(vs.v, vs.n, sizeof(*vs.v), victim_cmp);
        for (size_t i = 0; i < vs.n; i++) {
                bool expired = c->ttl_ms && now - vs.v[i].atime_ns > ttl_ns;

                if (vs.total - freed + pending <= target && !expired)
                        break;
                if (unlinkat(c->blocks_fd, vs.v[i].path, 0) == 0) {
                        freed += vs.v[i].size;
                        stat_add(&c->evictions, 1);
                }
        }
        if (r >= 0)
                __atomic_store_n(&c->bytes,
                                 vs.total - freed + __atomic_load_n(&c->added, __ATOMIC_RELAXED) -
                                         added0,
                                 __ATOMIC_RELAXED);
        (void)flock(c->lock_fd, LOCK_UN);
        pthread_mutex_unlock(&c->evict_lock);
        free(vs.v);
        return (int64_t)freed;
}

/* ---- verify: every cached block hashed again against its name ---- */

struct verify_ctx {
        struct cache *c;
        uint8_t *buf; /* CID_MAX_BLOCK + 1 bytes */
        struct cache_verify_result res;
};

/* c->bytes less n, not below 0 (it is an estimate, which other mounts make drift). */
static void stat_sub_bytes(struct cache *c, uint64_t n)
{
        uint64_t cur = __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);

        while (!__atomic_compare_exchange_n(&c->bytes, &cur, cur > n ? cur - n : 0, true,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
}

/* The CID (v1, raw) a block file's key names: the key is its multihash in base32. */
static int key_cid(const char *key, struct cid *ret)
{
        uint8_t bin[CID_MAX_BIN];
        size_t len = 0, n;
        int r;

        n = cid_varint_write(1, bin);
        n += cid_varint_write(0x55, bin + n); /* raw: the codec does not change the hash */
        r = cid_multibase_decode(key, strlen(key), bin + n, sizeof(bin) - n, &len);
        if (r < 0)
                return r;
        return cid_from_bytes(bin, n + len, ret);
}

static int verify_one(const char *path, const struct stat *st, void *userdata)
{
        struct verify_ctx *v = userdata;
        const char *key = strchr(path, '/');
        _cleanup_close_ int fd = -1;
        struct cid cid;
        ssize_t n = 0;
        int r;

        v->res.checked++;
        r = key ? key_cid(key + 1, &cid) : -EBADMSG;
        if (r >= 0 && (uint64_t)st->st_size > CID_MAX_BLOCK)
                r = -EILSEQ; /* no block we store is that big */
        if (r >= 0) {
                fd = openat(v->c->blocks_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        v->res.vanished++; /* evicted meanwhile (another mount?) */
                        return 0;
                }
                n = io_pread_full(fd, v->buf, CID_MAX_BLOCK + 1, 0);
                r = n < 0 ? (int)n : cid_verify(&cid, v->buf, (size_t)n);
        }
        if (r == -EOPNOTSUPP) { /* a hash function we cannot compute: left alone */
                v->res.skipped++;
                return 0;
        }
        if (r == -EIO || r == -ENOMEM)
                return r;
        if (r < 0) { /* bytes that do not match their name, or a name that is no multihash */
                log_debug("cached block %s is corrupt (%s), dropping it", path, strerror(-r));
                if (unlinkat(v->c->blocks_fd, path, 0) == 0) {
                        v->res.dropped++;
                        v->res.dropped_bytes += (uint64_t)st->st_size;
                        stat_sub_bytes(v->c, (uint64_t)st->st_size);
                }
                return 0;
        }
        v->res.verified_bytes += (uint64_t)n;
        return 0;
}

int cache_verify(struct cache *c, struct cache_verify_result *ret)
{
        struct verify_ctx v = { .c = c };
        int r;

        v.buf = malloc(CID_MAX_BLOCK + 1);
        if (!v.buf)
                return -ENOMEM;
        r = walk_blocks(c, verify_one, &v);
        free(v.buf);
        if (r < 0)
                return r;
        *ret = v.res;
        return 0;
}

void cache_get_stats(struct cache *c, struct cache_stats *ret)
{
        *ret = (struct cache_stats){
                .hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED),
                .misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED),
                .puts = __atomic_load_n(&c->puts, __ATOMIC_RELAXED),
                .put_errors = __atomic_load_n(&c->put_errors, __ATOMIC_RELAXED),
                .evictions = __atomic_load_n(&c->evictions, __ATOMIC_RELAXED),
                .bytes = __atomic_load_n(&c->bytes, __ATOMIC_RELAXED),
        };
}

/*
 * cache_ttl is a promise about blocks nobody uses, so it cannot wait for the next start or
 * for the cap: a thread applies it every quarter of the TTL (at least every second, at most
 * every hour), with the same rescan and lock as any eviction.
 */
#define SWEEP_MIN_MS 1000ull
#define SWEEP_MAX_MS (3600ull * 1000)

static void *sweeper_thread(void *arg)
{
        struct cache *c = arg;
        uint64_t every_ms = MAX(MIN(c->ttl_ms / 4, SWEEP_MAX_MS), SWEEP_MIN_MS);
        struct timespec at;

        clock_gettime(CLOCK_MONOTONIC, &at);
        pthread_mutex_lock(&c->sweep_lock);
        while (!c->stop) {
                at.tv_sec += (time_t)(every_ms / 1000);
                at.tv_nsec += (long)(every_ms % 1000) * 1000000;
                if (at.tv_nsec >= 1000000000) {
                        at.tv_sec++;
                        at.tv_nsec -= 1000000000;
                }
                while (!c->stop &&
                       pthread_cond_timedwait(&c->sweep_cond, &c->sweep_lock, &at) != ETIMEDOUT)
                        ;
                if (c->stop)
                        break;
                pthread_mutex_unlock(&c->sweep_lock);
                if (cache_evict(c, c->max_bytes) < 0)
                        log_debug("TTL sweep of the cache failed");
                pthread_mutex_lock(&c->sweep_lock);
        }
        pthread_mutex_unlock(&c->sweep_lock);
        return NULL;
}

int cache_start_sweeper(struct cache *c)
{
        int r;

        if (!c->enabled || c->ttl_ms == 0 || c->has_sweeper)
                return 0;
        r = pthread_create(&c->sweeper, NULL, sweeper_thread, c);
        if (r != 0)
                return -r;
        c->has_sweeper = true;
        return 0;
}
