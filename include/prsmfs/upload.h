/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The uploader: from a closed file's staging data to a pinned root CID.
 *
 * A job reads its file in chunk-size pieces into the UnixFS builder (same root CID as the
 * node's `add` with the same settings); every block the builder emits is copied into a
 * bounded queue that up to `parallel` put threads drain into one put session (one write node), so
 * memory stays near (queue_blocks + parallel + 1) blocks whatever the file size. While the
 * write node takes runs (net_put_takes_runs: a js-ipfs node, after its first 413), full raw
 * leaves are gathered into runs of run_bytes that go up as one request each; all runs of a
 * job (gathered, queued, being sent) then hold at most run_mem_bytes. When the
 * write node fails (-ENOTCONN) the attempt stops, the session is freed and the job starts
 * again from the first byte on a resumed session bound to another node: the file is hashed
 * again, but only the blocks that node lacks travel. After the last block the root is
 * pinned (when pin is set) on `replicas` nodes. Every block that reached the node also goes
 * into the local block cache (a full cache disk is not an error).
 *
 * Jobs never fail for good: any error but a cancel (every node down, a node dying, a pin
 * that fails, even a read error) is logged and the job is retried after a backoff that
 * doubles from retry_base_ms to retry_max_ms (a lost write node is retried at once on the
 * next node, three times in a row before backing off). done() is called exactly once per
 * job: with error 0 once the root is pinned (or uploaded, without pin), or with -ECANCELED;
 * either way is_pinned says whether a pin of the root landed (a cancel may come after it).
 *
 * Threads: `jobs` runner threads, up to `parallel` put threads per running attempt (started
 * as blocks wait for one: a one-block file gets one), and one thread that calls every done()
 * (so done() calls never overlap and never run in the caller of upload_submit/upload_cancel:
 * done() may take the caller's locks).
 *
 * Thread-safety: every function may be called from any thread except from inside done()
 * (which must not call upload_free). Lock order: upload->lock, then a queue's lock; neither
 * is held across the network, file I/O, the cache or done().
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/cid.h"
#include "prsmfs/unixfs.h"

struct net_pool;
struct cache;
struct config;

#define UPLOAD_MAX_PARALLEL 64
#define UPLOAD_MAX_JOBS     16
/* measured against js-ipfs 0.66 (docs/benchmarks.md, write path): 8 MiB runs, two in
 * flight (the node's one JS thread is the bottleneck; more did not help) */
#define UPLOAD_RUN_BYTES     (8u << 20)
#define UPLOAD_RUN_MEM_BYTES (24u << 20)

struct upload_config {
        struct net_pool *net;        /* borrowed; must outlive the uploader */
        struct cache *cache;         /* borrowed, may be NULL */
        struct unixfs_params params; /* chunker/DAG settings (profile + max_chunk_size) */
        unsigned parallel;           /* block puts in flight per job, 1..64 (parallel_uploads) */
        unsigned jobs;               /* jobs running at once, 1..16 */
        unsigned replicas;           /* pin on this many nodes (>= 1 when pin) */
        bool pin;                    /* automatic_pinning */
        uint64_t timeout_ms;         /* per network operation (one block put, one pin), > 0;
                                        live (upload_set_timeout): read it with UPLOAD_TIMEOUT_MS */
        uint64_t retry_base_ms, retry_max_ms; /* backoff between whole-job retries, 1 <= b <= m */
        unsigned queue_blocks;   /* blocks waiting for a put thread, per job; 0 = parallel */
        size_t run_bytes;        /* full raw leaves per run (one request, net_put_run) while the
                                    write node takes runs; 0 = UPLOAD_RUN_BYTES; < 2 leaves: none */
        size_t run_mem_bytes;    /* all runs of a job: the one being gathered, those queued and
                                    being sent (run_mem / run - 1, at least 1); 0 =
                                    UPLOAD_RUN_MEM_BYTES */
        bool early;              /* upload_early puts ranges of files still being written
                                    (upload_while_writing) */
        bool cache_large_writes; /* full leaves uploaded go to the cache too; else only
                                    smaller blocks (small files, tails, parents) */
};

/* Fills ret from the daemon's config: profile and max_chunk_size, parallel_uploads, replicas,
 * automatic_pinning, timeout, retry delays; jobs = 2. -EINVAL if the chunk size is out of
 * range for the profile. net and cache are borrowed. */
_wur_ int upload_config_from(const struct config *c, struct net_pool *net, struct cache *cache,
                             struct upload_config *ret);

#define UPLOAD_TIMEOUT_MS(cfg) __atomic_load_n(&(cfg)->timeout_ms, __ATOMIC_RELAXED)

struct upload_result {
        uint64_t id;
        int error;         /* 0 or -ECANCELED */
        struct cid root;   /* valid when error == 0 or is_pinned */
        bool is_pinned;    /* root was pinned (cfg.pin), also when a cancel came after the pin */
        uint64_t size;     /* file bytes; valid when error == 0 */
        unsigned attempts; /* attempts made (1 when nothing failed) */
        uint64_t blocks;   /* blocks in the DAG (of the last attempt) */
        uint64_t sent, skipped;           /* blocks transferred / found on the node, all attempts */
        uint64_t last_sent, last_skipped; /* the same, last attempt only */
        char node[128];                   /* the last attempt's write node ("" if none) */
};

/* r is valid for the call only. Called from the uploader's notifier thread. */
typedef void (*upload_done_fn)(const struct upload_result *r, void *userdata);

struct upload_stats {
        uint64_t jobs_submitted, jobs_done, jobs_cancelled;
        uint64_t attempts_failed, jobs_retried; /* failed attempts; attempts after a failure */
        uint64_t jobs_queued, jobs_running;     /* now */
        uint64_t blocks_sent, blocks_skipped, bytes_sent; /* block bytes transferred */
        uint64_t bytes_read;                              /* file bytes read (every attempt) */
        uint64_t pins;                                    /* roots pinned */
        uint64_t mem_bytes, mem_peak_bytes; /* block copies held in queues and put threads */
        uint64_t put_threads; /* put threads started (as blocks wait for one), all attempts */
        uint64_t early_ranges, early_dropped; /* ranges queued by upload_early; not put */
        uint64_t early_skipped;               /* ranges whose leaves were on the node */
        uint64_t early_blocks;                /* leaves put early */
        uint64_t early_used;                  /* job leaves not sent: put early on its node */
        uint64_t early_lost; /* attempts that found such leaves gone before the pin (GC) */
        uint64_t jobs_urged; /* moved ahead of the queue or out of a backoff (upload_urge) */
};

struct upload;

/* -EINVAL for a config out of range (see the fields), -ENOMEM, or a thread error. */
_wur_ int upload_new(const struct upload_config *cfg, struct upload **ret);

/*
 * Queues a job: the file at path (copied; a staging file the module opens and reads at each
 * attempt, never changes or deletes) is chunked, built into a DAG, uploaded and pinned;
 * done(userdata) is called once from the notifier thread, with 0 when pinned or -ECANCELED
 * (upload_cancel, upload_free). id is the caller's; -EEXIST if a job with this id is still
 * known (not yet delivered to done()), -EINVAL for a NULL path or done.
 */
_wur_ int upload_submit(struct upload *u, uint64_t id, const char *path, upload_done_fn done,
                        void *userdata);

/*
 * Cancels a queued or running job (the file was replaced or unlinked). 0: its done() gets
 * -ECANCELED (a queued job's at once, a running job's once its current network operation
 * returns, at most timeout_ms). -ENOENT if the id is unknown or the job already finished
 * (done() has or will get its own result).
 */
_wur_ int upload_cancel(struct upload *u, uint64_t id);

/*
 * Synchronous, in the caller's thread (plus put threads): the same pipeline on an open fd,
 * read with pread from offset 0 (the fd's offset is not used), one attempt on a fresh
 * session, pinned when cfg.pin. Returns 0 with the root and file size, or the attempt's
 * error (-ENOTCONN when the write node failed, -EHOSTUNREACH when no node is usable or the
 * pin did not reach `replicas` nodes, -ETIMEDOUT, -EIO, ...). No retries.
 */
_wur_ int upload_fd(struct upload *u, int fd, struct cid *ret_root, uint64_t *ret_size);

/*
 * Already-built blocks (directory nodes for `prsmctl publish`): source is called once and
 * calls emit(cid, block, len, emit_userdata) for each block, children before parents (the
 * signature and order unixfs_dir_build's emit uses, so source can simply call it), and
 * returns 0 or -errno (emit's error if emit failed: stop then). emit copies the block; it
 * blocks while the queue is full. After source returned 0, *pin_root is read (so source may
 * fill it) and pinned on `replicas` nodes; pin_root NULL: no pin. Synchronous, one attempt,
 * errors as upload_fd.
 */
typedef int (*upload_source_fn)(unixfs_emit_fn emit, void *emit_userdata, void *userdata);
_wur_ int upload_blocks(struct upload *u, upload_source_fn source, void *userdata,
                        const struct cid *pin_root);

/*
 * Pins root again (a root whose blocks the nodes hold; an unpin may have removed its pin) on
 * `replicas` nodes and every pinning service, whatever cfg.pin says: net_pool_pin. And the
 * other way: removes the pins prsmfs made of root from every node and service,
 * net_pool_unpin. Synchronous, one attempt; errors as net's (-EHOSTUNREACH, -ETIMEDOUT,
 * -ECANCELED).
 */
_wur_ int upload_pin(struct upload *u, const struct cid *root);
_wur_ int upload_unpin(struct upload *u, const struct cid *root);

/*
 * Early puts (cfg.early): [off, off + len) of the file at path, being written and not yet
 * submitted, is complete; its leaves may go to a write node now, so that the job submitted
 * at close finds them there (early.h). off and len are multiples of upload_early_unit (0:
 * early puts do not apply). Best effort: -EINVAL, -ENOBUFS (queue full), -ENOMEM change
 * nothing but the speed.
 */
size_t upload_early_unit(struct upload *u);
_wur_ int upload_early(struct upload *u, const char *path, uint64_t off, uint64_t len);

void upload_get_stats(struct upload *u, struct upload_stats *ret);
/* Live reload: the timeout of every later network operation (0 is taken as 1 ms). */
void upload_set_timeout(struct upload *u, uint64_t timeout_ms);

/* One job not yet finished, as upload_list sees it. */
struct upload_job_info {
        uint64_t id;
        bool is_running;          /* an attempt runs (or waits to retry); else queued */
        unsigned failed_attempts; /* of those, failed (each is retried after a backoff) */
        int last_error;           /* the last failure's -errno, 0 = none */
        uint64_t retry_in_ms;     /* waiting to retry: in this long (0: not waiting) */
        char path[256];           /* the staging file (cut) */
        char node[128];           /* the last failed attempt's write node, "" = none */
};
/* The jobs not finished, newest first: *ret (new, the caller frees it; NULL when none) and
 * its length. -ENOMEM. */
_wur_ int upload_list(struct upload *u, struct upload_job_info **ret, size_t *ret_n);
/* Ends the backoff wait of job id (of every waiting job when is_all): it retries now. Returns
 * how many jobs were waiting so. */
int upload_retry(struct upload *u, uint64_t id, bool is_all);
/* Someone waits for job id (an fsync): a queued job moves to the head of the queue and, when
 * no runner is free, a runner whose job is in its backoff wait gives that job back to the
 * queue and takes this one; a job in its backoff wait retries now. An urged job never gives
 * its runner away. Returns 1 when it did either, 0 when the job runs already, was urged
 * already or is unknown (finished). */
int upload_urge(struct upload *u, uint64_t id);

/* Cancels everything (queued and running jobs get -ECANCELED), waits for running attempts to
 * stop (at most one network operation each; net_pool_shutdown first makes it immediate),
 * delivers every pending done(), joins the threads and frees. NULL-safe. */
void upload_free(struct upload *u);
