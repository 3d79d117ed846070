/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Early puts (see early.h).
 *
 * Ranges wait in a FIFO of at most MAX_QUEUED (a writer faster than the node leaves the
 * rest to the job). EARLY_THREADS threads each take a range, read its leaves into their own
 * run (allocated once: no fresh memory per range), hash them, and put the run on a session of
 * their own; a js-ipfs node takes runs from its second session on (its 413 cap is remembered
 * by the pool), before that and on Kubo the leaves go one by one. Two threads because two
 * requests in flight is what a js-ipfs node digests fastest (docs/bench-notes.md).
 *
 * The stored table is direct-mapped by the leaf's digest: a collision overwrites, which only
 * costs a re-send. Entries carry the node (a hash of its URL) and expire after STORED_TTL.
 *
 * Lock order: e->lock only; never held across file I/O or the network.
 */
#define LOG_MODULE "upload"
#include "early.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/io.h"
#include "prsmfs/log.h"
#include "prsmfs/net.h"

#define EARLY_THREADS 2
#define MAX_QUEUED    1024                     /* ranges (8 GiB of 8 MiB runs) */
#define STORED_SLOTS  32768                    /* ~1.5 MiB, allocated with the first range */
#define STORED_TTL_NS (600ull * 1000000000ull) /* a node's GC may run; keep hints short-lived */

struct range {
        struct range *next;
        uint64_t off, len;
        char path[];
};

enum slot_state {
        SLOT_EMPTY,
        SLOT_PENDING, /* an early put of the leaf is on its way (when_ns: since) */
        SLOT_STORED,  /* the node answered (when_ns: then) */
};

struct stored {
        uint64_t node, when_ns;
        uint8_t state; /* enum slot_state */
        uint8_t digest[32];
};

struct early {
        const struct upload_config *cfg;
        struct upload_stats *st;
        size_t leaves; /* per range */
        pthread_mutex_t lock;
        pthread_cond_t cond;       /* a range was queued, or stop */
        pthread_cond_t settled;    /* monotonic: a pending slot was stored or emptied */
        struct range *head, *tail; /* lock */
        size_t n_queued;           /* lock */
        bool stop;                 /* lock */
        pthread_t threads[EARLY_THREADS];
        unsigned n_threads;    /* lock */
        struct stored *stored; /* lock; STORED_SLOTS, or NULL before the first range */
};

#define STAT_ADD(e, field, v) __atomic_add_fetch(&(e)->st->field, (v), __ATOMIC_RELAXED)

static uint64_t node_key(const char *url)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */

        for (; *url; url++)
                h = (h ^ (uint8_t)*url) * 1099511628211ull;
        return h | 1;
}

static bool is_leaf_cid(const struct cid *cid)
{
        return cid->version == 1 && cid->codec == CID_CODEC_RAW &&
               cid->mh_code == CID_MH_SHA2_256 && cid->digest_len == 32;
}

/* under lock */
static struct stored *slot_of(struct early *e, const struct cid *cid)
{
        uint64_t h;

        memcpy(&h, cid->bin + cid->digest_off, sizeof(h)); /* a digest: already uniform */
        return &e->stored[h % STORED_SLOTS];
}

/* under lock */
static bool slot_holds(const struct stored *s, uint64_t node, const struct cid *cid)
{
        return s->state != SLOT_EMPTY && s->node == node &&
               memcmp(s->digest, cid->bin + cid->digest_off, 32) == 0;
}

/* under lock: the slot of cids[i] if it is being put now, by anyone, and not for too long */
static const struct stored *pending_slot(struct early *e, uint64_t node, const struct cid *cid,
                                         uint64_t now)
{
        const struct stored *s;

        if (!is_leaf_cid(cid))
                return NULL;
        s = slot_of(e, cid);
        if (!slot_holds(s, node, cid) || s->state != SLOT_PENDING ||
            now - s->when_ns >= UPLOAD_TIMEOUT_MS(e->cfg) * 1000000ull)
                return NULL;
        return s;
}

/*
 * Check and mark in one step, so that a job and an early put never send the same leaf at
 * once: wait (holding no claim) while any leaf is being put on this node, then claim all
 * the leaves not stored there recently. Waits end with that put or at its deadline.
 */
size_t early_claim(struct early *e, const char *node_url, const struct cid *const *cids, size_t n,
                   bool *claimed, struct early_oldest *ret_oldest)
{
        struct early_oldest oldest = { .i = n, .when_ns = UINT64_MAX };
        uint64_t node = node_key(node_url), now;
        size_t n_claimed = 0;

        pthread_mutex_lock(&e->lock);
        for (size_t i = 0; e->stored && i < n;) {
                const struct stored *s = pending_slot(e, node, cids[i], net_now_ns());
                uint64_t until;
                struct timespec ts;

                if (!s) {
                        i++;
                        continue;
                }
                until = s->when_ns + UPLOAD_TIMEOUT_MS(e->cfg) * 1000000ull;
                ts.tv_sec = (time_t)(until / 1000000000ull);
                ts.tv_nsec = (long)(until % 1000000000ull);
                (void)pthread_cond_timedwait(&e->settled, &e->lock, &ts);
                i = 0; /* a leaf checked before may be pending now */
        }
        now = net_now_ns();
        for (size_t i = 0; i < n; i++) {
                struct stored *s = e->stored && is_leaf_cid(cids[i]) ? slot_of(e, cids[i]) : NULL;

                claimed[i] = !s || !slot_holds(s, node, cids[i]) || s->state != SLOT_STORED ||
                             now - s->when_ns >= STORED_TTL_NS;
                if (claimed[i] && s) {
                        s->node = node;
                        s->when_ns = now;
                        s->state = SLOT_PENDING;
                        memcpy(s->digest, cids[i]->bin + cids[i]->digest_off, 32);
                } else if (!claimed[i] && s->when_ns < oldest.when_ns)
                        oldest = (struct early_oldest){ .i = i, .when_ns = s->when_ns };
                n_claimed += claimed[i];
        }
        pthread_mutex_unlock(&e->lock);
        if (ret_oldest)
                *ret_oldest = oldest;
        return n_claimed;
}

void early_settle(struct early *e, const char *node_url, const struct cid *const *cids, size_t n,
                  const bool *claimed, bool ok)
{
        uint64_t node = node_key(node_url), now = net_now_ns();
        bool changed = false;

        pthread_mutex_lock(&e->lock);
        for (size_t i = 0; e->stored && i < n; i++) {
                struct stored *s;

                if (!claimed[i] || !is_leaf_cid(cids[i]))
                        continue;
                s = slot_of(e, cids[i]);
                if (!slot_holds(s, node, cids[i]) || s->state != SLOT_PENDING)
                        continue; /* forgotten or taken by another leaf since */
                s->state = ok ? SLOT_STORED : SLOT_EMPTY;
                s->when_ns = now;
                changed = true;
        }
        if (changed)
                pthread_cond_broadcast(&e->settled);
        pthread_mutex_unlock(&e->lock);
}

/* The CIDs of a run's leaves, for claims. */
static void run_cids(const struct net_run *run, const struct cid **cids)
{
        for (size_t i = 0; i < net_run_count(run); i++)
                (void)net_run_leaf(run, i, &cids[i]);
}

void early_forget(struct early *e)
{
        pthread_mutex_lock(&e->lock);
        if (e->stored)
                memset(e->stored, 0, STORED_SLOTS * sizeof(*e->stored));
        pthread_cond_broadcast(&e->settled);
        pthread_mutex_unlock(&e->lock);
}

/* Reads leaf i of the range into buf and adds it to run. */
static int read_leaf(int fd, uint64_t off, size_t len, uint8_t *buf, struct net_run *run)
{
        struct cid cid;
        int r;

        r = io_pread_exact(fd, buf, len, off); /* short: truncated since, the job sees it */
        if (r >= 0)
                r = cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, buf, len, &cid);
        if (r >= 0)
                r = net_run_add(run, &cid, buf, len);
        return r;
}

/* One range: read, hash, put (best effort: any failure leaves it to the job). */
static void put_range(struct early *e, const struct range *rg, struct net_run **runp, uint8_t *buf)
{
        const struct cid *cids[NET_RUN_MAX_LEAVES];
        bool claimed[NET_RUN_MAX_LEAVES];
        size_t chunk = e->cfg->params.chunk_size, n;
        _cleanup_close_ int fd = -1;
        struct net_put *put = NULL;
        struct net_run *run = *runp;
        const char *node;
        uint64_t deadline;
        int r = 0;

        if (!run) {
                r = net_run_new(chunk, e->leaves, runp);
                if (r < 0)
                        return;
                run = *runp;
        }
        net_run_clear(run);
        fd = open(rg->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return; /* closed, uploaded and removed already */
        for (uint64_t off = rg->off; off < rg->off + rg->len && r >= 0; off += chunk)
                r = read_leaf(fd, off, chunk, buf, run);
        if (r < 0)
                goto out;
        n = net_run_count(run);
        r = net_put_begin(e->cfg->net, false, &put);
        if (r < 0)
                goto out;
        node = net_put_node_url(put);
        run_cids(run, cids);
        if (early_claim(e, node, cids, n, claimed, NULL) == 0) {
                STAT_ADD(e, early_skipped, 1); /* the same bytes are on the node already */
                goto out;
        }
        deadline = net_now_ns() + UPLOAD_TIMEOUT_MS(e->cfg) * 1000000ull; /* for the whole range */
        if (net_put_takes_runs(put, chunk))
                r = net_put_run(put, run, deadline);
        else
                for (size_t i = 0; i < n && r >= 0; i++) {
                        const struct cid *cid;
                        const uint8_t *leaf = net_run_leaf(run, i, &cid);

                        r = __atomic_load_n(&e->stop, __ATOMIC_RELAXED)
                                    ? -ECANCELED
                                    : net_put_block(put, cid, leaf, chunk, deadline);
                }
        early_settle(e, node, cids, n, claimed, r >= 0);
        if (r < 0) {
                log_debug_errno(r, "early put of %s at %" PRIu64 " failed; its job sends it",
                                rg->path, rg->off);
                goto out;
        }
        STAT_ADD(e, early_blocks, n);
out:
        net_put_free(put);
}

static void *early_thread(void *arg)
{
        struct early *e = arg;
        struct net_run *run = NULL;
        uint8_t *buf = malloc(e->cfg->params.chunk_size);

        pthread_mutex_lock(&e->lock);
        for (;;) {
                struct range *rg;

                while (!e->stop && !e->head)
                        pthread_cond_wait(&e->cond, &e->lock);
                if (e->stop)
                        break;
                rg = e->head;
                e->head = rg->next;
                if (!e->head)
                        e->tail = NULL;
                e->n_queued--;
                pthread_mutex_unlock(&e->lock);
                if (buf)
                        put_range(e, rg, &run, buf);
                free(rg);
                pthread_mutex_lock(&e->lock);
        }
        pthread_mutex_unlock(&e->lock);
        net_run_free(run);
        free(buf);
        return NULL;
}

int early_new(const struct upload_config *cfg, struct upload_stats *st, struct early **ret)
{
        size_t run_bytes = cfg->run_bytes ? cfg->run_bytes : UPLOAD_RUN_BYTES;
        struct early *e = calloc(1, sizeof(*e));
        pthread_condattr_t ca;

        if (!e)
                return -ENOMEM;
        e->cfg = cfg;
        e->st = st;
        if (cfg->params.cid_version == 1 && cfg->params.raw_leaves)
                e->leaves = MIN(run_bytes / cfg->params.chunk_size, (size_t)NET_RUN_MAX_LEAVES);
        if (e->leaves < 2)
                e->leaves = 0;
        pthread_mutex_init(&e->lock, NULL);
        pthread_cond_init(&e->cond, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&e->settled, &ca);
        pthread_condattr_destroy(&ca);
        *ret = e;
        return 0;
}

size_t early_unit(const struct early *e)
{
        return e->leaves * e->cfg->params.chunk_size;
}

/* under lock: the stored table and the threads, with the first range */
static int start_locked(struct early *e)
{
        if (!e->stored) {
                e->stored = calloc(STORED_SLOTS, sizeof(*e->stored));
                if (!e->stored)
                        return -ENOMEM;
        }
        while (e->n_threads < EARLY_THREADS) {
                int r = -pthread_create(&e->threads[e->n_threads], NULL, early_thread, e);

                if (r < 0)
                        return e->n_threads > 0 ? 0 : r;
                e->n_threads++;
        }
        return 0;
}

int early_add(struct early *e, const char *path, uint64_t off, uint64_t len)
{
        size_t unit = early_unit(e), plen = strlen(path);
        int r;

        if (unit == 0 || len == 0 || off % unit || len % unit)
                return -EINVAL;
        pthread_mutex_lock(&e->lock);
        r = e->stop ? -ECANCELED : start_locked(e);
        for (uint64_t o = off; r >= 0 && o < off + len; o += unit) {
                struct range *rg;

                if (e->n_queued >= MAX_QUEUED) {
                        STAT_ADD(e, early_dropped, 1);
                        r = -ENOBUFS;
                        break;
                }
                rg = malloc(sizeof(*rg) + plen + 1);
                if (!rg) {
                        r = -ENOMEM;
                        break;
                }
                *rg = (struct range){ .off = o, .len = unit };
                memcpy(rg->path, path, plen + 1);
                if (e->tail)
                        e->tail->next = rg;
                else
                        e->head = rg;
                e->tail = rg;
                e->n_queued++;
                STAT_ADD(e, early_ranges, 1);
                pthread_cond_signal(&e->cond);
        }
        pthread_mutex_unlock(&e->lock);
        return r;
}

void early_drop(struct early *e, const char *path)
{
        struct range **pp, *dead = NULL;

        pthread_mutex_lock(&e->lock);
        e->tail = NULL;
        for (pp = &e->head; *pp;) {
                struct range *rg = *pp;

                if (strcmp(rg->path, path) == 0) {
                        *pp = rg->next;
                        rg->next = dead;
                        dead = rg;
                        e->n_queued--;
                        STAT_ADD(e, early_dropped, 1);
                } else {
                        e->tail = rg;
                        pp = &rg->next;
                }
        }
        pthread_mutex_unlock(&e->lock);
        while (dead) {
                struct range *next = dead->next;

                free(dead);
                dead = next;
        }
}

void early_free(struct early *e)
{
        if (!e)
                return;
        pthread_mutex_lock(&e->lock);
        __atomic_store_n(&e->stop, true, __ATOMIC_RELAXED); /* read between leaves too */
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
        for (unsigned i = 0; i < e->n_threads; i++)
                pthread_join(e->threads[i], NULL);
        while (e->head) {
                struct range *next = e->head->next;

                free(e->head);
                e->head = next;
        }
        free(e->stored);
        pthread_cond_destroy(&e->settled);
        pthread_cond_destroy(&e->cond);
        pthread_mutex_destroy(&e->lock);
        free(e);
}
