/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block store. Three places, in order: an in-memory LRU of whole verified blocks (a FUSE
 * read of 128 KiB from a 1 MiB block must not re-read the block from disk eight times), the
 * on-disk cache (a hit is loaded whole into memory), and the node pool (a fetched block is
 * written to the cache without a second hash: the pool verified it).
 *
 * Prefetch: a FIFO of CIDs served by `workers` threads, each doing what store_get does and
 * dropping its reference, so that the block waits in memory (and on disk) for its reader.
 * Requests for blocks already in memory, already queued or being fetched are not queued again;
 * the queue is bounded and a request past its deadline is dropped unread. Concurrent fetches
 * of one CID (a reader and a worker) share one network fetch in the pool, and the block they
 * all get is written to the cache once, by whichever claims it first (net_block_claim): each
 * writing it would cost a disk write per waiter and count its bytes again in the cache.
 *
 * Recent failures: a block whose fetch failed (every node tried until the deadline) fails again
 * at once for FAIL_HOLD_NS. The kernel retries a failed readahead page by page, and without
 * this each retry would wait out the whole timeout again before the reader sees EIO.
 *
 * Lock order: s->lock only, never held across cache I/O, the network or hashing.
 */
#define LOG_MODULE "store"
#include "prsmfs/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prsmfs/log.h"
#include "prsmfs/thread.h"

struct entry {
        struct net_block *block;   /* owned reference */
        struct entry *hnext;       /* hash chain */
        struct entry *prev, *next; /* LRU: head = most recent */
        bool is_prefetched;        /* put here by a prefetch worker and not read since */
};

/* Set while a prefetch worker fetches, so that its blocks are marked: a later read that finds
 * one counts as a readahead hit (/metrics). */
static __thread bool in_prefetch;

#define FAIL_HOLD_NS 1000000000ull
#define FAIL_SLOTS   64

struct failure {
        struct cid cid;
        int error;
        uint64_t at_ns; /* 0 = free */
};

struct job {
        struct cid cid;
        uint64_t deadline_ns;
        struct job *next;
};

struct worker {
        struct store *s;
        pthread_t thread;
        bool busy;      /* s->lock */
        struct cid cid; /* s->lock; what it is fetching while busy */
};

struct store {
        struct store_config cfg;
        pthread_mutex_t lock;
        pthread_cond_t cond;               /* a job was queued, or stop */
        struct entry **buckets;            /* lock */
        size_t n_buckets;                  /* power of two */
        struct entry *lru_head, *lru_tail; /* lock */
        uint64_t mem_bytes, mem_blocks;    /* lock */
        struct job *q_head, *q_tail;       /* lock */
        size_t q_len;                      /* lock */
        bool stop;                         /* lock */
        struct worker *workers;
        size_t n_workers;                 /* started */
        struct store_stats st;            /* lock (mem_* filled on read) */
        struct failure fails[FAIL_SLOTS]; /* lock; a ring */
        size_t next_fail;                 /* lock */
};

/* under lock: the error of a recent failed fetch of cid, or 0 */
static int recent_failure(struct store *s, const struct cid *cid, uint64_t now)
{
        for (size_t i = 0; i < FAIL_SLOTS; i++) {
                struct failure *f = &s->fails[i];

                if (f->at_ns && now - f->at_ns < FAIL_HOLD_NS && cid_same_multihash(&f->cid, cid))
                        return f->error;
        }
        return 0;
}

static uint64_t cid_hash(const struct cid *c)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a over the binary CID */

        for (size_t i = 0; i < c->len; i++)
                h = (h ^ c->bin[i]) * 1099511628211ull;
        return h;
}

static struct entry **bucket_of(struct store *s, const struct cid *c)
{
        return &s->buckets[cid_hash(c) & (s->n_buckets - 1)];
}

/* under lock */
static struct entry *mem_find(struct store *s, const struct cid *c)
{
        for (struct entry *e = *bucket_of(s, c); e; e = e->hnext)
                if (cid_same_multihash(&e->block->cid, c))
                        return e;
        return NULL;
}

static void lru_unlink(struct store *s, struct entry *e)
{
        if (e->prev)
                e->prev->next = e->next;
        else
                s->lru_head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                s->lru_tail = e->prev;
        e->prev = e->next = NULL;
}

static void lru_push(struct store *s, struct entry *e)
{
        e->prev = NULL;
        e->next = s->lru_head;
        if (s->lru_head)
                s->lru_head->prev = e;
        s->lru_head = e;
        if (!s->lru_tail)
                s->lru_tail = e;
}

static void mem_remove(struct store *s, struct entry *e)
{
        struct entry **pp;

        for (pp = bucket_of(s, &e->block->cid); *pp != e; pp = &(*pp)->hnext)
                ;
        *pp = e->hnext;
        lru_unlink(s, e);
        s->mem_bytes -= e->block->len;
        s->mem_blocks--;
        net_block_unref(e->block);
        free(e);
}

/* Keeps a reference to b in memory, evicting the least recently used blocks past the cap.
 * Under lock. Out of memory only means the block is not kept. */
static void mem_insert(struct store *s, struct net_block *b)
{
        struct entry *e = mem_find(s, &b->cid);

        if (e) {
                lru_unlink(s, e);
                lru_push(s, e);
                return;
        }
        if (b->len > s->cfg.mem_bytes)
                return;
        e = calloc(1, sizeof(*e));
        if (!e)
                return;
        e->block = net_block_ref(b);
        e->is_prefetched = in_prefetch;
        e->hnext = *bucket_of(s, &b->cid);
        *bucket_of(s, &b->cid) = e;
        lru_push(s, e);
        s->mem_bytes += b->len;
        s->mem_blocks++;
        while (s->mem_bytes > s->cfg.mem_bytes && s->lru_tail && s->lru_tail != e)
                mem_remove(s, s->lru_tail);
}

static struct net_block *mem_get(struct store *s, const struct cid *cid)
{
        struct net_block *b = NULL;
        struct entry *e;

        pthread_mutex_lock(&s->lock);
        e = mem_find(s, cid);
        if (e) {
                lru_unlink(s, e);
                lru_push(s, e);
                b = net_block_ref(e->block);
                s->st.mem_hits++;
                if (e->is_prefetched && !in_prefetch) {
                        e->is_prefetched = false;
                        s->st.prefetch_hits++;
                }
        }
        pthread_mutex_unlock(&s->lock);
        return b;
}

static int block_new(const struct cid *cid, size_t len, struct net_block **ret)
{
        struct net_block *b = calloc(1, sizeof(*b));

        if (!b)
                return -ENOMEM;
        b->data = malloc(len ? len : 1);
        if (!b->data) {
                free(b);
                return -ENOMEM;
        }
        b->len = len;
        b->cid = *cid;
        b->refs = 1;
        *ret = b;
        return 0;
}

/* The block from memory or disk, or -ENOENT. */
static int get_local(struct store *s, const struct cid *cid, struct net_block **ret)
{
        struct net_block *b;
        int64_t size;
        ssize_t n;
        int r;

        if (cid_is_identity(cid)) {
                struct bytes_view d = cid_digest(cid);

                r = block_new(cid, d.len, &b);
                if (r < 0)
                        return r;
                if (d.len)
                        memcpy(b->data, d.p, d.len);
                *ret = b;
                return 0;
        }
        b = mem_get(s, cid);
        if (b) {
                *ret = b;
                return 0;
        }
        if (!s->cfg.cache)
                return -ENOENT;
        size = cache_block_size(s->cfg.cache, cid);
        if (size < 0 || size > CID_MAX_BLOCK)
                return -ENOENT;
        r = block_new(cid, (size_t)size, &b);
        if (r < 0)
                return r;
        n = cache_block_pread(s->cfg.cache, cid, b->data, (size_t)size, 0);
        if (n != size) {
                /* evicted between the two calls, or an I/O error: not there */
                net_block_unref(b);
                return -ENOENT;
        }
        pthread_mutex_lock(&s->lock);
        s->st.disk_hits++;
        mem_insert(s, b);
        pthread_mutex_unlock(&s->lock);
        *ret = b;
        return 0;
}

int store_peek(struct store *s, const struct cid *cid, struct net_block **ret)
{
        return get_local(s, cid, ret);
}

int store_get(struct store *s, const struct cid *cid, uint64_t deadline_ns, struct net_block **ret)
{
        char cidstr[CID_MAX_STR];
        struct net_block *b;
        int r;

        r = get_local(s, cid, ret);
        if (r != -ENOENT)
                return r;
        if (!s->cfg.net)
                return -ENOENT;
        pthread_mutex_lock(&s->lock);
        r = recent_failure(s, cid, net_now_ns());
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        r = net_block_get(s->cfg.net, cid, deadline_ns, &b);
        pthread_mutex_lock(&s->lock);
        if (r < 0) {
                s->st.fetch_errors++;
                if (r != -ECANCELED && r != -ENOMEM) {
                        s->fails[s->next_fail] =
                                (struct failure){ .cid = *cid, .error = r, .at_ns = net_now_ns() };
                        s->next_fail = (s->next_fail + 1) % FAIL_SLOTS;
                }
        } else
                s->st.fetches++;
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        /* in memory first: a reader arriving while the block is written to disk finds it */
        pthread_mutex_lock(&s->lock);
        mem_insert(s, b);
        pthread_mutex_unlock(&s->lock);
        if (s->cfg.cache && net_block_claim(b)) {
                int p = cache_block_put_verified(s->cfg.cache, cid, b->data, b->len);

                pthread_mutex_lock(&s->lock);
                s->st.cache_puts++;
                pthread_mutex_unlock(&s->lock);
                if (p < 0) {
                        /* a full disk is not the reader's problem: serve from memory */
                        pthread_mutex_lock(&s->lock);
                        s->st.cache_put_errors++;
                        pthread_mutex_unlock(&s->lock);
                        log_debug("cannot cache block %s: %s", cid_to_string(cid, cidstr),
                                  strerror(-p));
                }
        }
        *ret = b;
        return 0;
}

/* The block from memory or disk as a ref; -ENOENT when it is in neither. */
static int get_ref_local(struct store *s, const struct cid *cid, struct store_ref *ret)
{
        *ret = (struct store_ref){ .fd = -1 };
        if (cid_is_identity(cid))
                return get_local(s, cid, &ret->block);
        ret->block = mem_get(s, cid);
        if (ret->block)
                return 0;
        if (s->cfg.cache) {
                int fd = cache_block_open(s->cfg.cache, cid, &ret->size);

                if (fd >= 0) {
                        pthread_mutex_lock(&s->lock);
                        s->st.disk_hits++;
                        pthread_mutex_unlock(&s->lock);
                        ret->fd = fd;
                        return 0;
                }
        }
        return -ENOENT;
}

int store_get_ref_local(struct store *s, const struct cid *cid, struct store_ref *ret)
{
        int r = get_ref_local(s, cid, ret);

        return r == -ENOENT ? -EWOULDBLOCK : r;
}

int store_get_ref(struct store *s, const struct cid *cid, uint64_t deadline_ns,
                  struct store_ref *ret)
{
        int r = get_ref_local(s, cid, ret);

        if (r != -ENOENT)
                return r;
        *ret = (struct store_ref){ .fd = -1 };
        return store_get(s, cid, deadline_ns, &ret->block);
}

void store_ref_done(struct store_ref *ref)
{
        net_block_unref(ref->block);
        if (ref->fd >= 0)
                close(ref->fd);
        *ref = (struct store_ref){ .fd = -1 };
}

/* A prefetch of a block on disk: the kernel reads it into the page cache, where a read by fd
 * finds it; it is not loaded into memory. True when the block is on disk. */
static bool advise_on_disk(struct store *s, const struct cid *cid)
{
        int fd;

        if (!s->cfg.cache)
                return false;
        fd = cache_block_open(s->cfg.cache, cid, NULL);
        if (fd < 0)
                return false;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
        close(fd);
        return true;
}

/* under lock: queued or being fetched by a worker */
static bool pending(struct store *s, const struct cid *cid)
{
        for (struct job *j = s->q_head; j; j = j->next)
                if (cid_same_multihash(&j->cid, cid))
                        return true;
        for (size_t i = 0; i < s->n_workers; i++)
                if (s->workers[i].busy && cid_same_multihash(&s->workers[i].cid, cid))
                        return true;
        return false;
}

size_t store_prefetch(struct store *s, const struct cid *cids, size_t n, uint64_t deadline_ns)
{
        size_t queued = 0;

        if (s->n_workers == 0)
                return 0;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < n && !s->stop; i++) {
                struct job *j;

                if (cid_is_identity(&cids[i]) || mem_find(s, &cids[i]) || pending(s, &cids[i]))
                        continue;
                if (s->q_len >= s->cfg.max_queue) {
                        s->st.prefetch_drops++;
                        continue;
                }
                j = calloc(1, sizeof(*j));
                if (!j) {
                        s->st.prefetch_drops++;
                        continue;
                }
                j->cid = cids[i];
                j->deadline_ns = deadline_ns;
                if (s->q_tail)
                        s->q_tail->next = j;
                else
                        s->q_head = j;
                s->q_tail = j;
                s->q_len++;
                s->st.prefetches++;
                queued++;
        }
        if (queued)
                pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return queued;
}

static void *worker_thread(void *arg)
{
        struct worker *w = arg;
        struct store *s = w->s;

        thread_name("prsmfs-readahd");
        pthread_mutex_lock(&s->lock);
        for (;;) {
                struct net_block *b = NULL;
                struct job *j;
                int r;

                while (!s->stop && !s->q_head)
                        pthread_cond_wait(&s->cond, &s->lock);
                if (s->stop)
                        break;
                j = s->q_head;
                s->q_head = j->next;
                if (!s->q_head)
                        s->q_tail = NULL;
                s->q_len--;
                w->busy = true;
                w->cid = j->cid;
                pthread_mutex_unlock(&s->lock);

                if (net_now_ns() < j->deadline_ns && !advise_on_disk(s, &j->cid)) {
                        in_prefetch = true;
                        r = store_get(s, &j->cid, j->deadline_ns, &b);
                        in_prefetch = false;
                        if (r < 0 && r != -ECANCELED)
                                log_debug("prefetch failed: %s", strerror(-r));
                        net_block_unref(b);
                }
                free(j);
                pthread_mutex_lock(&s->lock);
                w->busy = false;
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int store_new(const struct store_config *cfg, struct store **ret)
{
        struct store *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cfg = *cfg;
        if (s->cfg.max_queue == 0)
                s->cfg.max_queue = 1024;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        s->n_buckets = 4096;
        s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
        if (!s->buckets) {
                r = -ENOMEM;
                goto fail;
        }
        if (cfg->workers) {
                s->workers = calloc(cfg->workers, sizeof(*s->workers));
                if (!s->workers) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        for (unsigned i = 0; i < cfg->workers; i++) {
                s->workers[i].s = s;
                r = -pthread_create(&s->workers[i].thread, NULL, worker_thread, &s->workers[i]);
                if (r < 0)
                        goto fail;
                s->n_workers++;
        }
        *ret = s;
        return 0;
fail:
        store_free(s);
        return r;
}

void store_free(struct store *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < s->n_workers; i++)
                pthread_join(s->workers[i].thread, NULL);
        while (s->q_head) {
                struct job *j = s->q_head;

                s->q_head = j->next;
                free(j);
        }
        while (s->lru_head)
                mem_remove(s, s->lru_head);
        free(s->buckets);
        free(s->workers);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

bool store_is_cached(struct store *s, const struct cid *cid)
{
        bool in_mem;

        if (cid_is_identity(cid))
                return true;
        if (s->cfg.cache)
                return cache_block_size(s->cfg.cache, cid) >= 0;
        pthread_mutex_lock(&s->lock);
        in_mem = mem_find(s, cid) != NULL;
        pthread_mutex_unlock(&s->lock);
        return in_mem;
}

int store_evict(struct store *s, const struct cid *cid)
{
        struct entry *e;
        int r;

        if (cid_is_identity(cid))
                return 0;
        pthread_mutex_lock(&s->lock);
        e = mem_find(s, cid);
        if (e)
                mem_remove(s, e);
        pthread_mutex_unlock(&s->lock);
        if (!s->cfg.cache)
                return 0;
        r = cache_block_remove(s->cfg.cache, cid);
        return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

void store_get_stats(struct store *s, struct store_stats *ret)
{
        pthread_mutex_lock(&s->lock);
        *ret = s->st;
        ret->mem_bytes = s->mem_bytes;
        ret->mem_blocks = s->mem_blocks;
        pthread_mutex_unlock(&s->lock);
}
