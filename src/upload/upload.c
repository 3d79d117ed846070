/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The uploader (see upload.h for the contract).
 *
 * One attempt: bind a put session (net_put_begin), run a source in the calling thread that
 * feeds a bounded queue (queue.c; a file through the UnixFS builder, or a caller's prebuilt
 * blocks) drained by put threads (up to `parallel`, started as blocks wait for one), close
 * the queue, join the threads, pin the root, free the session. Any put error aborts the
 * queue, which stops the builder (its emit fails) and the other put threads; the attempt
 * returns that error. A job is a loop of attempts (runner threads) with a backoff wait
 * between them; done() results go through one notifier thread. A runner in a backoff wait
 * gives its job back to the queue when an urged job (an fsync waits for it) finds no runner
 * free: failing jobs must not keep a waited-for one from running.
 *
 * Why re-hash instead of remembering which blocks landed: the builder is cheap next to the
 * network (hundreds of MB/s), and a resumed session asks the new node for each block anyway,
 * so keeping a per-job block list (unbounded for big files) would buy nothing.
 *
 * Lock order: u->lock, then an attempt queue's lock. u->lock is never held across the
 * network, file I/O, the cache or done(). Counters in u->st are atomics.
 */
#define LOG_MODULE "upload"
#include "prsmfs/upload.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/cache.h"
#include "prsmfs/config.h"
#include "prsmfs/log.h"
#include "prsmfs/net.h"

#include "early.h"
#include "queue.h"

#define MS                1000000ull
#define IMMEDIATE_RESUMES 3           /* -ENOTCONN resumes in a row before backing off */
#define MIN_READ          (64 * 1024) /* read at least this much per pread */
#define PIN_NS_PER_MIB    (100 * MS)  /* pin deadline: replicas fetch the DAG over bitswap */
#define SPARE_RUNS        4           /* run buffers kept for reuse (8 MiB each by default) */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

struct attempt {
        struct upload *u;
        struct net_put *put;
        struct upload_queue q;
        uint64_t timeout_ns;
        pthread_t threads[UPLOAD_MAX_PARALLEL]; /* producer only: put threads started */
        unsigned n_threads;
        size_t run_leaves;      /* leaves per run, >= 2; 0 = no runs */
        struct net_run *run;    /* producer only: the run being gathered, owned */
        uint64_t blocks, bytes; /* emitted (producer only) */
        uint64_t sent, skipped; /* atomic */
        /* the job's staging path (NULL for other attempts): its queued early ranges go on until
         * the attempt sends a block of its own, which drops them once (early_dropped), so the
         * node keeps busy while the job reads and hashes what the early puts stored */
        const char *early_path;
        bool early_dropped; /* atomic */
        /* of the leaves not sent because the early table says the node stored them, the one
         * stored longest ago: checked on the node before the pin (a GC may have run) */
        pthread_mutex_t early_lock;
        struct cid early_cid; /* early_lock */
        size_t early_len;     /* early_lock; 0 = no leaf skipped */
        uint64_t early_ns;    /* early_lock: when it was stored */
};

struct job {
        uint64_t id;
        char *path;
        upload_done_fn done;
        void *userdata;
        enum job_state state;     /* u->lock */
        bool is_cancelled;        /* u->lock */
        struct attempt *running;  /* u->lock: the attempt in progress (cancel aborts it) */
        struct upload_result res; /* the runner's while running, then the notifier's */
        struct job *prev, *next;  /* u->lock: list of known jobs (not yet delivered) */
        struct job *qnext;        /* u->lock: in the queued or the done FIFO */
        int last_error;           /* u->lock: the last failed attempt's error, 0 = none */
        unsigned failed_attempts; /* u->lock: attempts that failed */
        uint64_t retry_at_ns;     /* u->lock: in a backoff wait until then (0: not waiting) */
        bool is_retry_now;        /* u->lock: upload_retry ended the backoff wait */
        bool is_urged;            /* u->lock: an fsync waits for it (it never yields) */
        char last_node[128];      /* u->lock: the last failed attempt's write node */
        /* the runner's, kept when the job yields its runner in a backoff wait */
        uint64_t delay_ms; /* the next backoff (0: the first) */
        bool resume;       /* the next attempt asks the node which blocks it has */
};

struct fifo {
        struct job *head, *tail;
};

struct upload {
        struct upload_config cfg;
        pthread_mutex_t lock;
        pthread_cond_t cond;          /* monotonic: a job was queued, cancel, stop */
        pthread_cond_t done_cond;     /* a result is ready, or the runners are gone */
        struct job *known;            /* lock */
        struct fifo queued;           /* lock */
        struct fifo finished;         /* lock: results waiting for the notifier */
        uint64_t n_queued, n_running; /* lock */
        uint64_t n_urged;             /* lock: queued jobs with is_urged */
        uint64_t n_yielding;          /* lock: runners giving their job back to the queue */
        bool stop;                    /* lock */
        bool runners_gone;            /* lock */
        pthread_t *runners;
        unsigned n_runners;
        pthread_t notifier;
        bool has_notifier;
        struct upload_stats st; /* atomics (jobs_queued/running filled on read) */
        struct early *early;
        pthread_mutex_t spare_lock;
        struct net_run *spare[SPARE_RUNS]; /* spare_lock: emptied runs for the next ones */
        unsigned n_spare;                  /* spare_lock */
};

#define STAT_ADD(u, field, v) __atomic_add_fetch(&(u)->st.field, (v), __ATOMIC_RELAXED)

static void fifo_push(struct fifo *f, struct job *j)
{
        j->qnext = NULL;
        if (f->tail)
                f->tail->qnext = j;
        else
                f->head = j;
        f->tail = j;
}

static void fifo_push_front(struct fifo *f, struct job *j)
{
        j->qnext = f->head;
        f->head = j;
        if (!f->tail)
                f->tail = j;
}

static struct job *fifo_pop(struct fifo *f)
{
        struct job *j = f->head;

        if (j) {
                f->head = j->qnext;
                if (!f->head)
                        f->tail = NULL;
                j->qnext = NULL;
        }
        return j;
}

static void fifo_remove(struct fifo *f, struct job *j)
{
        struct job *prev = NULL;

        for (struct job *k = f->head; k; prev = k, k = k->qnext) {
                if (k != j)
                        continue;
                if (prev)
                        prev->qnext = k->qnext;
                else
                        f->head = k->qnext;
                if (f->tail == k)
                        f->tail = prev;
                k->qnext = NULL;
                return;
        }
}

static void job_free(struct job *j)
{
        if (!j)
                return;
        free(j->path);
        free(j);
}

/* under lock */
static struct job *job_find(struct upload *u, uint64_t id)
{
        for (struct job *j = u->known; j; j = j->next)
                if (j->id == id)
                        return j;
        return NULL;
}

/* under lock */
static void job_unlink(struct upload *u, struct job *j)
{
        LIST_REMOVE(u->known, j);
}

/* under lock: the job's result is final; hand it to the notifier */
static void job_finish(struct upload *u, struct job *j, int error)
{
        j->state = JOB_FINISHED;
        j->res.error = error;
        fifo_push(&u->finished, j);
        pthread_cond_signal(&u->done_cond);
}

/* ---- one attempt ---- */

/* A run of leaf_len leaves from the spares (a buffer already faulted in), or a new one. */
static int run_get(struct upload *u, size_t leaf_len, size_t max_leaves, struct net_run **ret)
{
        struct net_run *run = NULL;

        pthread_mutex_lock(&u->spare_lock);
        if (u->n_spare > 0)
                run = u->spare[--u->n_spare];
        pthread_mutex_unlock(&u->spare_lock);
        if (run && net_run_fits(run, leaf_len, max_leaves)) {
                net_run_clear(run);
                *ret = run;
                return 0;
        }
        net_run_free(run);
        return net_run_new(leaf_len, max_leaves, ret);
}

static void run_put_back(struct upload *u, struct net_run *run)
{
        if (!run)
                return;
        pthread_mutex_lock(&u->spare_lock);
        if (u->n_spare < SPARE_RUNS) {
                u->spare[u->n_spare++] = run;
                run = NULL;
        }
        pthread_mutex_unlock(&u->spare_lock);
        net_run_free(run);
}

static void cache_put(struct upload *u, const struct cid *cid, const uint8_t *data, size_t len)
{
        int r;

        if (!u->cfg.cache)
                return;
        /* net_put_block/net_put_run verified the bytes; a full cache disk is no error */
        r = cache_block_put_verified(u->cfg.cache, cid, data, len);
        if (r < 0 && r != -ENOSPC)
                log_debug_errno(r, "caching an uploaded block failed");
}

/* One queue item (a block or a run) to the node: 0, or the put's error. */
static int put_item(struct attempt *a, struct upload_block *b)
{
        struct upload *u = a->u;
        uint64_t deadline = net_now_ns() + a->timeout_ns;
        size_t n = b->run ? net_run_count(b->run) : 1, skipped;
        const struct cid *cids[NET_RUN_MAX_LEAVES];
        bool claimed[NET_RUN_MAX_LEAVES];
        const char *node = net_put_node_url(a->put);
        struct early_oldest old;
        int r;

        for (size_t i = 0; i < n; i++)
                if (b->run)
                        (void)net_run_leaf(b->run, i, &cids[i]);
                else
                        cids[i] = &b->cid;
        if (early_claim(u->early, node, cids, n, claimed, &old) == 0) {
                STAT_ADD(u, early_used, n); /* put early (or by a job) on this node */
                r = b->run ? (int)n : 1;    /* as if the node said it had them */
                pthread_mutex_lock(&a->early_lock);
                if (old.i < n && (!a->early_len || old.when_ns < a->early_ns)) {
                        a->early_cid = *cids[old.i];
                        a->early_len = b->len / n; /* a run's leaves are all one size */
                        a->early_ns = old.when_ns;
                }
                pthread_mutex_unlock(&a->early_lock);
        } else {
                if (a->early_path &&
                    !__atomic_exchange_n(&a->early_dropped, true, __ATOMIC_RELAXED))
                        early_drop(u->early, a->early_path);
                r = b->run ? net_put_run(a->put, b->run, deadline)
                           : net_put_block(a->put, &b->cid, b->data, b->len, deadline);
                early_settle(u->early, node, cids, n, claimed, r >= 0);
        }
        if (r < 0)
                return r;
        skipped = b->run ? (size_t)r : (size_t)(r == 1);
        __atomic_add_fetch(&a->sent, n - skipped, __ATOMIC_RELAXED);
        __atomic_add_fetch(&a->skipped, skipped, __ATOMIC_RELAXED);
        STAT_ADD(u, blocks_sent, n - skipped);
        STAT_ADD(u, blocks_skipped, skipped);
        STAT_ADD(u, bytes_sent, b->len / n * (n - skipped));
        if (!b->run && (u->cfg.cache_large_writes || b->len < u->cfg.params.chunk_size))
                cache_put(u, &b->cid, b->data, b->len);
        for (size_t i = 0; b->run && u->cfg.cache_large_writes && i < n; i++) {
                const struct cid *cid;
                const uint8_t *leaf = net_run_leaf(b->run, i, &cid);

                cache_put(u, cid, leaf, b->len / n);
        }
        return 0;
}

static void *put_thread(void *arg)
{
        struct attempt *a = arg;

        for (;;) {
                struct upload_block *b = NULL;
                int r = upload_queue_pop(&a->q, &b);

                if (r <= 0)
                        break;
                r = put_item(a, b);
                run_put_back(a->u, b->run);
                b->run = NULL;
                upload_queue_release(&a->q, b);
                if (r < 0) {
                        upload_queue_abort(&a->q, r);
                        break;
                }
        }
        return NULL;
}

/*
 * Put threads start as items wait for one, up to `parallel`: a one-block file gets one
 * thread, not `parallel` of them (thread creation was 8% of the daemon's CPU for small
 * files, docs/bench-notes.md). Only the first thread's failure to start is an error.
 */
static int spawn_put_thread(struct attempt *a)
{
        int e;

        if (a->n_threads == a->u->cfg.parallel ||
            (a->n_threads > 0 && upload_queue_unclaimed(&a->q) == 0))
                return 0;
        e = pthread_create(&a->threads[a->n_threads], NULL, put_thread, a);
        if (e != 0) {
                if (a->n_threads > 0)
                        return 0; /* the threads running drain the queue, ignoring */
                return log_error_errno(-e, "no upload thread could be started");
        }
        a->n_threads++;
        STAT_ADD(a->u, put_threads, 1);
        return 0;
}

static int push_item(struct attempt *a, struct upload_block *b)
{
        int r;

        if (!b)
                return -ENOMEM;
        r = upload_queue_push(&a->q, b);
        if (r < 0) {
                upload_block_free(b);
                return r;
        }
        return spawn_put_thread(a);
}

/* Hands the run being gathered (if any) to the put threads. */
static int run_flush(struct attempt *a)
{
        struct upload_block *b;
        int r;

        if (!a->run)
                return 0;
        b = upload_block_new_run(a->run);
        if (!b)
                return -ENOMEM; /* the run stays a->run: freed with the attempt */
        a->run = NULL;
        r = push_item(a, b);
        return r;
}

/* Full raw leaves go into runs while the write node takes them (net_put_takes_runs: a
 * js-ipfs node after its first 413); a Kubo node keeps getting them one by one. */
static bool is_run_leaf(struct attempt *a, const struct cid *cid, size_t len)
{
        return a->run_leaves && cid->version == 1 && cid->codec == CID_CODEC_RAW &&
               len == a->u->cfg.params.chunk_size && net_put_takes_runs(a->put, len);
}

/* the source's emit: copy the block into the queue, or into the run being gathered (waits
 * while the queue is full) */
static int emit_block(const struct cid *cid, const uint8_t *block, size_t len, void *userdata)
{
        struct attempt *a = userdata;
        int r;

        r = upload_queue_error(&a->q);
        if (r < 0)
                return r;
        if (is_run_leaf(a, cid, len)) {
                if (!a->run) {
                        r = run_get(a->u, len, a->run_leaves, &a->run);
                        if (r < 0)
                                return r;
                }
                r = net_run_add(a->run, cid, block, len);
                if (r >= 0 && net_run_count(a->run) == a->run_leaves)
                        r = run_flush(a);
        } else {
                /* a parent or a short leaf: the run before it goes first */
                r = run_flush(a);
                if (r >= 0)
                        r = push_item(a, upload_block_new(cid, block, len));
        }
        if (r < 0)
                return r;
        a->blocks++;
        a->bytes += len;
        return 0;
}

/* Runs source into the bound session with up to `parallel` put threads (started as blocks
 * wait for them); the first error, or 0. */
static int pipeline_run(struct attempt *a, upload_source_fn source, void *source_ud)
{
        int r;

        r = source(emit_block, a, source_ud);
        if (r >= 0)
                r = run_flush(a);
        if (r < 0)
                upload_queue_abort(&a->q, r);
        else
                upload_queue_close(&a->q);
        for (unsigned k = 0; k < a->n_threads; k++)
                pthread_join(a->threads[k], NULL);
        if (r >= 0)
                r = upload_queue_error(&a->q);
        return r;
}

/* under u->lock: is the attempt for j (NULL for the synchronous calls) to stop? */
static bool should_stop(struct upload *u, const struct job *j)
{
        return j && (u->stop || j->is_cancelled);
}

/*
 * Runs: run_bytes of full leaves per request, and run_mem_bytes for all runs of the job: the
 * one being gathered plus those queued or being sent (mem / run - 1 of them, at least one).
 * The queue's byte bound never goes below what cap blocks queued and one per put thread
 * take, so leaf-by-leaf uploads keep their parallelism.
 */
static void run_setup(struct upload *u, size_t cap, struct attempt *a)
{
        size_t chunk = u->cfg.params.chunk_size, item = sizeof(struct upload_block);
        size_t leaves = (u->cfg.run_bytes ? u->cfg.run_bytes : UPLOAD_RUN_BYTES) / chunk;
        size_t mem = u->cfg.run_mem_bytes ? u->cfg.run_mem_bytes : UPLOAD_RUN_MEM_BYTES;
        size_t run, held;

        a->run_leaves = leaves >= 2 ? MIN(leaves, (size_t)NET_RUN_MAX_LEAVES) : 0;
        run = a->run_leaves * chunk;
        held = a->run_leaves ? MAX(mem / run, (size_t)2) - 1 : 0;
        a->q.max_bytes = MAX(held * (run + item), (cap + u->cfg.parallel) * (chunk + item));
}

struct attempt_report {
        uint64_t blocks, sent, skipped;
        uint64_t put_ns, pin_ns; /* time in the pipeline; in the pin (and the check before) */
        bool early_lost; /* the node no longer had leaves put early: send everything again */
        bool is_pinned;  /* the pin landed (the attempt may still fail: a cancel after it) */
        char node[128];
};

/*
 * Before the pin: do the leaves this attempt took from the early table still sit on the node?
 * A node's GC between the early put and now drops them, and a js-ipfs pin would then wait for
 * them over bitswap until its deadline. A GC drops every unpinned block stored before it, so
 * one check of the leaf stored longest ago tells; -ESTALE when it is gone (*lost set: the job
 * sends everything again at once). Any answer but that block counts as gone: a resend costs
 * time, a pin that waits for a missing block costs its whole deadline.
 */
static int check_early_leaves(struct attempt *a, bool *lost)
{
        int r;

        if (!a->early_len)
                return 0;
        r = net_put_has(a->put, &a->early_cid, a->early_len, net_now_ns() + a->timeout_ns);
        if (r == 0) {
                STAT_ADD(a->u, early_lost, 1);
                *lost = true;
                return -ESTALE;
        }
        return r < 0 ? r : 0;
}

/*
 * One attempt: a session (resumed or not), the pipeline, the pin of *pin_root (read after
 * the source returned; NULL: no pin). j (may be NULL) is published for cancels.
 */
static int attempt_run(struct upload *u, struct job *j, bool resume, upload_source_fn source,
                       void *source_ud, const struct cid *pin_root, struct attempt_report *rep)
{
        struct attempt a = { .u = u,
                             .timeout_ns = UPLOAD_TIMEOUT_MS(&u->cfg) * MS,
                             .early_path = j ? j->path : NULL,
                             .early_lock = PTHREAD_MUTEX_INITIALIZER };
        size_t cap = u->cfg.queue_blocks ? u->cfg.queue_blocks : u->cfg.parallel;
        bool has_queue = false;
        uint64_t t0;
        int r;

        *rep = (struct attempt_report){ 0 };
        r = net_put_begin(u->cfg.net, resume, &a.put);
        if (r < 0)
                goto out; /* nothing started: a.put is NULL */
        (void)snprintf(rep->node, sizeof(rep->node), "%s", net_put_node_url(a.put));
        r = upload_queue_init(&a.q, cap);
        if (r < 0)
                goto out;
        has_queue = true;
        a.q.mem_bytes = &u->st.mem_bytes;
        a.q.mem_peak_bytes = &u->st.mem_peak_bytes;
        run_setup(u, cap, &a);
        pthread_mutex_lock(&u->lock);
        if (should_stop(u, j))
                upload_queue_abort(&a.q, -ECANCELED);
        if (j)
                j->running = &a;
        pthread_mutex_unlock(&u->lock);

        t0 = net_now_ns();
        r = pipeline_run(&a, source, source_ud);
        rep->put_ns = net_now_ns() - t0;
        if (r >= 0 && u->cfg.pin && pin_root) {
                uint64_t mib = a.bytes >> 20;

                t0 = net_now_ns();
                r = upload_queue_error(&a.q); /* cancelled after the last block? */
                if (r >= 0)
                        r = check_early_leaves(&a, &rep->early_lost);
                if (r >= 0)
                        r = net_put_pin(a.put, pin_root, u->cfg.replicas,
                                        net_now_ns() + a.timeout_ns + mib * PIN_NS_PER_MIB);
                if (r >= 0) {
                        STAT_ADD(u, pins, 1);
                        rep->is_pinned = true;
                }
                rep->pin_ns = net_now_ns() - t0;
        }
        if (r >= 0)
                r = upload_queue_error(&a.q);
out:
        if (j) {
                pthread_mutex_lock(&u->lock);
                j->running = NULL;
                pthread_mutex_unlock(&u->lock);
        }
        if (has_queue)
                upload_queue_done(&a.q);
        pthread_mutex_destroy(&a.early_lock);
        net_run_free(a.run);
        rep->blocks = a.blocks;
        rep->sent = a.sent;
        rep->skipped = a.skipped;
        net_put_free(a.put);
        return r;
}

/* ---- sources ---- */

struct file_source {
        struct upload *u;
        int fd;
        struct cid root;
        uint64_t size;
};

/* Reads the whole file (pread from 0) through the builder. */
static int read_file(unixfs_emit_fn emit, void *emit_ud, void *userdata)
{
        struct file_source *fs = userdata;
        struct upload *u = fs->u;
        size_t piece = MAX(u->cfg.params.chunk_size, (size_t)MIN_READ);
        struct unixfs_builder *b = NULL;
        uint8_t *buf = malloc(piece);
        uint64_t off = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        r = unixfs_builder_new(&u->cfg.params, emit, emit_ud, &b);
        while (r >= 0) {
                ssize_t n = pread(fs->fd, buf, piece, (off_t)off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0) {
                        r = unixfs_builder_finish(b, &fs->root, &fs->size, NULL);
                        break;
                }
                STAT_ADD(u, bytes_read, (uint64_t)n);
                off += (uint64_t)n;
                r = unixfs_builder_write(b, buf, (size_t)n);
        }
        unixfs_builder_free(b);
        free(buf);
        return r;
}

/* ---- jobs ---- */

/*
 * An urged job is queued and no runner is free for it (u->lock held): a runner whose job is
 * in its backoff wait gives that job back to the queue, else an fsync would wait for the
 * failing jobs ahead of it to succeed (finding 6 of docs/reliability.md). Runners already
 * giving theirs back count as free.
 */
static bool should_yield(const struct upload *u, const struct job *j)
{
        uint64_t free_runners = u->n_runners - u->n_running + u->n_yielding;

        return !j->is_urged && u->n_urged > free_runners;
}

enum backoff { BACKOFF_DONE, BACKOFF_STOP, BACKOFF_YIELD };

/* Sleeps delay_ms unless the job is cancelled or the uploader stops (BACKOFF_STOP), or an
 * urged job needs the runner (BACKOFF_YIELD, counted in n_yielding). */
static enum backoff backoff_wait(struct upload *u, struct job *j, uint64_t delay_ms)
{
        enum backoff b = BACKOFF_DONE;
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(delay_ms / 1000);
        ts.tv_nsec += (long)(delay_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&u->lock);
        j->retry_at_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        while (!should_stop(u, j) && !j->is_retry_now && !should_yield(u, j))
                if (pthread_cond_timedwait(&u->cond, &u->lock, &ts) == ETIMEDOUT)
                        break;
        if (should_stop(u, j))
                b = BACKOFF_STOP;
        else if (!j->is_retry_now && should_yield(u, j)) {
                b = BACKOFF_YIELD;
                u->n_yielding++;
        }
        j->retry_at_ns = 0;
        j->is_retry_now = false;
        pthread_mutex_unlock(&u->lock);
        return b;
}

static bool is_stopped(struct upload *u, struct job *j)
{
        bool stop;

        pthread_mutex_lock(&u->lock);
        stop = should_stop(u, j);
        pthread_mutex_unlock(&u->lock);
        return stop;
}

#define JOB_YIELDED 1

/* Attempts until pinned (0) or cancelled (-ECANCELED), or JOB_YIELDED: the job gave its runner
 * to an urged one in a backoff wait and goes on where it was when a runner takes it again
 * (its next attempt at once); fills j->res. */
static int job_run(struct upload *u, struct job *j)
{
        uint64_t delay_ms = j->delay_ms ? j->delay_ms : u->cfg.retry_base_ms;
        unsigned immediate = 0;
        bool resume = j->resume;

        for (unsigned attempt = j->res.attempts + 1;; attempt++) {
                enum backoff b;

                struct file_source fs = { .u = u, .fd = -1 };
                struct attempt_report rep = { 0 };
                int r;

                if (is_stopped(u, j))
                        return -ECANCELED;
                if (attempt > 1)
                        STAT_ADD(u, jobs_retried, 1);
                j->res.attempts = attempt;
                fs.fd = open(j->path, O_RDONLY | O_CLOEXEC);
                if (fs.fd < 0)
                        r = -errno;
                else {
                        r = attempt_run(u, j, resume, read_file, &fs, &fs.root, &rep);
                        close(fs.fd);
                }
                j->res.sent += rep.sent;
                j->res.skipped += rep.skipped;
                j->res.last_sent = rep.sent;
                j->res.last_skipped = rep.skipped;
                j->res.blocks = rep.blocks;
                if (rep.is_pinned) { /* even if a cancel fails the attempt after it */
                        j->res.is_pinned = true;
                        j->res.root = fs.root;
                }
                if (rep.node[0])
                        memcpy(j->res.node, rep.node, sizeof(j->res.node));
                if (r >= 0) {
                        j->res.root = fs.root;
                        j->res.size = fs.size;
                        log_debug("upload %" PRIu64 " (%s): %" PRIu64 " bytes, %" PRIu64
                                  " blocks (%" PRIu64 " sent, %" PRIu64 " skipped) in %" PRIu64
                                  " ms, pin %" PRIu64 " ms, on %s",
                                  j->id, j->path, fs.size, rep.blocks, rep.sent, rep.skipped,
                                  (uint64_t)(rep.put_ns / MS), (uint64_t)(rep.pin_ns / MS),
                                  rep.node);
                        return 0;
                }
                if (is_stopped(u, j))
                        return -ECANCELED;
                STAT_ADD(u, attempts_failed, 1);
                early_forget(u->early); /* the retry asks the node */
                /* whatever failed, the next node may have some blocks; but after a GC the
                 * node lacks what it was asked for, and asking per block costs more than
                 * sending */
                resume = !rep.early_lost;
                if (rep.early_lost && immediate < IMMEDIATE_RESUMES) {
                        immediate++;
                        log_notice("upload %" PRIu64 " (%s): write node %s lost blocks put "
                                   "before the close (a garbage collection?); sending them again",
                                   j->id, j->path, rep.node);
                        continue;
                }
                if (r == -ENOTCONN && immediate < IMMEDIATE_RESUMES) {
                        immediate++;
                        log_warning("upload %" PRIu64 " (%s): write node %s failed after %" PRIu64
                                    " blocks; resuming on another node",
                                    j->id, j->path, rep.node, rep.sent + rep.skipped);
                        continue;
                }
                immediate = 0;
                pthread_mutex_lock(&u->lock);
                j->last_error = r;
                j->failed_attempts++;
                memcpy(j->last_node, rep.node, sizeof(j->last_node));
                pthread_mutex_unlock(&u->lock);
                log_warning_errno(r,
                                  "upload %" PRIu64 " (%s): attempt %u failed (%s): retrying in "
                                  "%" PRIu64 " ms",
                                  j->id, j->path, attempt, rep.node[0] ? rep.node : "no node",
                                  delay_ms);
                b = backoff_wait(u, j, delay_ms);
                if (b == BACKOFF_STOP)
                        return -ECANCELED;
                delay_ms = MIN(delay_ms * 2, u->cfg.retry_max_ms);
                if (b == BACKOFF_YIELD) {
                        log_debug("upload %" PRIu64 " (%s): gives its runner to an fsync'ed "
                                  "upload and waits in the queue",
                                  j->id, j->path);
                        j->delay_ms = delay_ms;
                        j->resume = resume;
                        return JOB_YIELDED;
                }
        }
}

static void *runner_thread(void *arg)
{
        struct upload *u = arg;

        pthread_mutex_lock(&u->lock);
        for (;;) {
                struct job *j;
                int r;

                while (!u->stop && !u->queued.head)
                        pthread_cond_wait(&u->cond, &u->lock);
                if (u->stop)
                        break;
                j = fifo_pop(&u->queued);
                u->n_queued--;
                u->n_urged -= j->is_urged;
                u->n_running++;
                j->state = JOB_RUNNING;
                pthread_mutex_unlock(&u->lock);

                r = job_run(u, j);
                if (r == JOB_YIELDED) {
                        pthread_mutex_lock(&u->lock);
                        u->n_yielding--;
                        u->n_running--;
                        j->state = JOB_QUEUED;
                        fifo_push(&u->queued, j);
                        u->n_queued++;
                        continue; /* takes the urged job */
                }
                early_drop(u->early, j->path); /* what its attempts left queued (cancel, error) */

                pthread_mutex_lock(&u->lock);
                u->n_running--;
                /* a cancel that returned 0 promises -ECANCELED, even if the pin just landed
                 * (done() still learns of that pin: res.is_pinned) */
                job_finish(u, j, r < 0 || j->is_cancelled ? -ECANCELED : 0);
        }
        pthread_mutex_unlock(&u->lock);
        return NULL;
}

static void *notifier_thread(void *arg)
{
        struct upload *u = arg;

        pthread_mutex_lock(&u->lock);
        for (;;) {
                struct job *j;

                while (!u->finished.head && !u->runners_gone)
                        pthread_cond_wait(&u->done_cond, &u->lock);
                j = fifo_pop(&u->finished);
                if (!j)
                        break; /* runners gone and nothing left */
                job_unlink(u, j);
                if (j->res.error == 0)
                        STAT_ADD(u, jobs_done, 1);
                else
                        STAT_ADD(u, jobs_cancelled, 1);
                pthread_mutex_unlock(&u->lock);
                j->done(&j->res, j->userdata);
                job_free(j);
                pthread_mutex_lock(&u->lock);
        }
        pthread_mutex_unlock(&u->lock);
        return NULL;
}

/* ---- public ---- */

static int config_check(const struct upload_config *c)
{
        if (!c->net || c->parallel < 1 || c->parallel > UPLOAD_MAX_PARALLEL || c->jobs < 1 ||
            c->jobs > UPLOAD_MAX_JOBS || (c->pin && c->replicas < 1) || c->timeout_ms == 0 ||
            c->retry_base_ms == 0 || c->retry_base_ms > c->retry_max_ms)
                return -EINVAL;
        return unixfs_params_check(&c->params);
}

int upload_config_from(const struct config *c, struct net_pool *net, struct cache *cache,
                       struct upload_config *ret)
{
        struct upload_config uc = {
                .net = net,
                .cache = cache,
                .parallel = MIN(MAX(c->parallel_uploads, 1u), (unsigned)UPLOAD_MAX_PARALLEL),
                .jobs = 2,
                .replicas = MAX(c->replicas, 1u),
                .pin = c->automatic_pinning,
                .timeout_ms = MAX(c->timeout_ms, (uint64_t)1),
                .retry_base_ms = MAX(c->retry_base_delay_ms, (uint64_t)1),
                .retry_max_ms =
                        MAX(c->retry_max_delay_ms, MAX(c->retry_base_delay_ms, (uint64_t)1)),
                .early = c->upload_while_writing,
                .cache_large_writes = c->cache_large_writes,
        };
        bool legacy = c->profile == CONFIG_PROFILE_LEGACY;

        unixfs_params_profile(legacy ? UNIXFS_PROFILE_LEGACY : UNIXFS_PROFILE_DEFAULT, &uc.params);
        /* max_chunk_size defaults to 1 MiB; the legacy profile keeps its own 256 KiB unless the
         * setting says something else (the config cannot tell an explicit 1 MiB apart) */
        if (c->max_chunk_size && !(legacy && c->max_chunk_size == 1024 * 1024))
                uc.params.chunk_size = (size_t)c->max_chunk_size;
        if (unixfs_params_check(&uc.params) < 0)
                return -EINVAL;
        *ret = uc;
        return 0;
}

int upload_new(const struct upload_config *cfg, struct upload **ret)
{
        pthread_condattr_t ca;
        struct upload *u;
        int r;

        r = config_check(cfg);
        if (r < 0)
                return r;
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->cfg = *cfg;
        pthread_mutex_init(&u->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&u->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_cond_init(&u->done_cond, NULL);
        pthread_mutex_init(&u->spare_lock, NULL);
        r = early_new(&u->cfg, &u->st, &u->early);
        if (r < 0)
                goto fail;
        u->runners = calloc(cfg->jobs, sizeof(*u->runners));
        if (!u->runners) {
                r = -ENOMEM;
                goto fail;
        }
        r = -pthread_create(&u->notifier, NULL, notifier_thread, u);
        if (r < 0)
                goto fail;
        u->has_notifier = true;
        for (; u->n_runners < cfg->jobs; u->n_runners++) {
                r = -pthread_create(&u->runners[u->n_runners], NULL, runner_thread, u);
                if (r < 0)
                        goto fail;
        }
        *ret = u;
        return 0;
fail:
        upload_free(u);
        return r;
}

int upload_submit(struct upload *u, uint64_t id, const char *path, upload_done_fn done,
                  void *userdata)
{
        struct job *j;
        int r = 0;

        if (!path || !done)
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->path = strdup(path);
        if (!j->path) {
                free(j);
                return -ENOMEM;
        }
        j->id = id;
        j->done = done;
        j->userdata = userdata;
        j->res.id = id;
        pthread_mutex_lock(&u->lock);
        if (u->stop)
                r = -ECANCELED;
        else if (job_find(u, id))
                r = -EEXIST;
        else {
                LIST_PREPEND(u->known, j);
                fifo_push(&u->queued, j);
                u->n_queued++;
                STAT_ADD(u, jobs_submitted, 1);
                pthread_cond_broadcast(&u->cond);
        }
        pthread_mutex_unlock(&u->lock);
        if (r < 0)
                job_free(j);
        return r;
}

int upload_cancel(struct upload *u, uint64_t id)
{
        struct job *j;
        int r = 0;

        pthread_mutex_lock(&u->lock);
        j = job_find(u, id);
        if (!j || j->state == JOB_FINISHED || j->is_cancelled)
                r = -ENOENT;
        else if (j->state == JOB_QUEUED) {
                fifo_remove(&u->queued, j);
                u->n_queued--;
                u->n_urged -= j->is_urged;
                j->is_cancelled = true;
                early_drop(u->early, j->path);
                job_finish(u, j, -ECANCELED);
        } else {
                j->is_cancelled = true;
                if (j->running)
                        upload_queue_abort(&j->running->q, -ECANCELED);
                pthread_cond_broadcast(&u->cond); /* a runner in its backoff wait */
        }
        pthread_mutex_unlock(&u->lock);
        return r;
}

int upload_fd(struct upload *u, int fd, struct cid *ret_root, uint64_t *ret_size)
{
        struct file_source fs = { .u = u, .fd = fd };
        struct attempt_report rep;
        int r;

        r = attempt_run(u, NULL, false, read_file, &fs, &fs.root, &rep);
        if (r < 0)
                return r;
        if (ret_root)
                *ret_root = fs.root;
        if (ret_size)
                *ret_size = fs.size;
        return 0;
}

int upload_blocks(struct upload *u, upload_source_fn source, void *userdata,
                  const struct cid *pin_root)
{
        struct attempt_report rep;

        if (!source)
                return -EINVAL;
        return attempt_run(u, NULL, false, source, userdata, pin_root, &rep);
}

/* a pin again walks a DAG the nodes hold; its size is not known here */
#define REPIN_MIN_MS 60000ull

int upload_pin(struct upload *u, const struct cid *root)
{
        uint64_t ms = MAX(UPLOAD_TIMEOUT_MS(&u->cfg) * 10, REPIN_MIN_MS);

        return net_pool_pin(u->cfg.net, root, u->cfg.replicas, net_now_ns() + ms * MS);
}

int upload_unpin(struct upload *u, const struct cid *root)
{
        return net_pool_unpin(u->cfg.net, root, net_now_ns() + UPLOAD_TIMEOUT_MS(&u->cfg) * MS);
}

size_t upload_early_unit(struct upload *u)
{
        return u->cfg.early ? early_unit(u->early) : 0;
}

int upload_early(struct upload *u, const char *path, uint64_t off, uint64_t len)
{
        if (!path || !u->cfg.early)
                return -EINVAL;
        return early_add(u->early, path, off, len);
}

_Static_assert(sizeof(struct upload_stats) % sizeof(uint64_t) == 0, "counters only");

int upload_list(struct upload *u, struct upload_job_info **ret, size_t *ret_n)
{
        struct upload_job_info *v = NULL;
        struct timespec now;
        size_t n = 0, cap = 0;
        uint64_t now_ns;
        int r = 0;

        clock_gettime(CLOCK_MONOTONIC, &now);
        now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
        pthread_mutex_lock(&u->lock);
        for (struct job *j = u->known; j; j = j->next)
                cap++;
        v = cap ? calloc(cap, sizeof(*v)) : NULL;
        if (cap && !v)
                r = -ENOMEM;
        for (struct job *j = u->known; v && j && n < cap; j = j->next) {
                struct upload_job_info *e = &v[n];

                if (j->state == JOB_FINISHED)
                        continue;
                *e = (struct upload_job_info){ .id = j->id,
                                               .is_running = j->state == JOB_RUNNING,
                                               .failed_attempts = j->failed_attempts,
                                               .last_error = j->last_error };
                if (j->retry_at_ns)
                        e->retry_in_ms = j->retry_at_ns > now_ns
                                                 ? (j->retry_at_ns - now_ns) / 1000000 + 1
                                                 : 1;
                (void)snprintf(e->path, sizeof(e->path), "%s", j->path);
                (void)snprintf(e->node, sizeof(e->node), "%s", j->last_node);
                n++;
        }
        pthread_mutex_unlock(&u->lock);
        if (r < 0)
                return r;
        *ret = v;
        *ret_n = n;
        return 0;
}

int upload_retry(struct upload *u, uint64_t id, bool is_all)
{
        int n = 0;

        pthread_mutex_lock(&u->lock);
        for (struct job *j = u->known; j; j = j->next)
                if (j->retry_at_ns && (is_all || j->id == id)) {
                        j->is_retry_now = true;
                        n++;
                }
        if (n)
                pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        return n;
}

int upload_urge(struct upload *u, uint64_t id)
{
        struct job *j;
        int n;

        pthread_mutex_lock(&u->lock);
        j = job_find(u, id);
        n = j && j->state == JOB_QUEUED && !j->is_urged;
        if (n) {
                /* waited for: ahead of the closes nobody waits for (lessons: an fsync behind
                 * a backlog it did not make waits out its fsync_timeout), and a runner in a
                 * backoff wait gives its job back if no runner is free (should_yield) */
                fifo_remove(&u->queued, j);
                fifo_push_front(&u->queued, j);
                j->is_urged = true;
                u->n_urged++;
                pthread_cond_broadcast(&u->cond);
        } else if (j && j->state == JOB_RUNNING) {
                j->is_urged = true; /* never gives its runner away */
        }
        pthread_mutex_unlock(&u->lock);
        if (!n)
                n = upload_retry(u, id, false); /* one in its backoff wait: now */
        if (n)
                STAT_ADD(u, jobs_urged, 1);
        return n;
}

void upload_get_stats(struct upload *u, struct upload_stats *ret)
{
        uint64_t *dst = (uint64_t *)ret;
        const uint64_t *src = (const uint64_t *)&u->st;

        for (size_t i = 0; i < sizeof(*ret) / sizeof(uint64_t); i++)
                dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        pthread_mutex_lock(&u->lock);
        ret->jobs_queued = u->n_queued;
        ret->jobs_running = u->n_running;
        pthread_mutex_unlock(&u->lock);
}

void upload_free(struct upload *u)
{
        struct job *j;

        if (!u)
                return;
        pthread_mutex_lock(&u->lock);
        u->stop = true;
        while ((j = fifo_pop(&u->queued))) {
                u->n_queued--;
                job_finish(u, j, -ECANCELED);
        }
        for (j = u->known; j; j = j->next)
                if (j->state == JOB_RUNNING && j->running)
                        upload_queue_abort(&j->running->q, -ECANCELED);
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        for (unsigned i = 0; i < u->n_runners; i++)
                pthread_join(u->runners[i], NULL);
        pthread_mutex_lock(&u->lock);
        u->runners_gone = true;
        pthread_cond_broadcast(&u->done_cond);
        pthread_mutex_unlock(&u->lock);
        if (u->has_notifier)
                pthread_join(u->notifier, NULL);
        early_free(u->early);
        for (unsigned i = 0; i < u->n_spare; i++)
                net_run_free(u->spare[i]);
        pthread_mutex_destroy(&u->spare_lock);
        free(u->runners);
        pthread_cond_destroy(&u->done_cond);
        pthread_cond_destroy(&u->cond);
        pthread_mutex_destroy(&u->lock);
        free(u);
}

void upload_set_timeout(struct upload *u, uint64_t timeout_ms)
{
        /* read with UPLOAD_TIMEOUT_MS by the runners, the early putters and repins */
        __atomic_store_n(&u->cfg.timeout_ms, MAX(timeout_ms, (uint64_t)1), __ATOMIC_RELAXED);
}
