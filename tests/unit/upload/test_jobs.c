/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Upload jobs against the real node pool over a scripted transport (one fake Kubo RPC node
 * that hashes what it receives): config validation, a job's root and blocks, the bound on
 * block copies in memory, retries until a failing node recovers (done() once), cancel of a
 * queued and of a running job, upload_free cancelling everything, and prebuilt blocks.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/cache.h"
#include "prsmfs/config.h"
#include "prsmfs/upload.h"

#include "fake_net.h"

#define MAX_STORED 1024
#define MAX_IDS    8
#define CHUNK      (16 * 1024)

struct fake {
        struct fake_net net; /* in real time */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool is_gate_closed;     /* block/put waits (until its deadline) while set */
        bool is_pin_gate_closed; /* pin/add waits while set (pin_waiting counts them) */
        unsigned pin_waiting;
        bool is_dead;       /* every request is refused */
        unsigned fail_puts; /* the next n block/puts answer 503 */
        unsigned put_delay_us;
        unsigned puts, waiting, pins;
        /* js-ipfs's body cap: block/put of a CHUNK-byte leaf answers 413; add takes runs,
         * add_lies: an add of several chunks stores nothing and names another root */
        bool js_cap, add_lies;
        unsigned adds, run_adds, run_leaves;
        struct cid stored[MAX_STORED];
        size_t stored_len[MAX_STORED];
        size_t n_stored;
        struct cid pinned;
        /* pin_needs: a pin/add while fewer blocks are stored fails, as a js-ipfs pin that
         * waits for them over bitswap would at its deadline; counted in pins_incomplete */
        size_t pin_needs;
        unsigned pins_incomplete;
};

static struct fake F;

struct done_log {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned calls[MAX_IDS];
        struct upload_result res[MAX_IDS];
        pthread_t thread[MAX_IDS];
        unsigned total;
        uint64_t order[MAX_IDS];
};

static struct done_log D;

static int find_stored(const struct cid *c)
{
        for (size_t i = 0; i < F.n_stored; i++)
                if (cid_same_multihash(&F.stored[i], c))
                        return (int)i;
        return -1;
}

static void store(const struct cid *got, size_t len)
{
        pthread_mutex_lock(&F.lock);
        if (find_stored(got) < 0) {
                assert_true(F.n_stored < MAX_STORED);
                F.stored[F.n_stored] = *got;
                F.stored_len[F.n_stored++] = len;
        }
        pthread_mutex_unlock(&F.lock);
}

static int do_put(const struct net_http_request *req, struct buf *body,
                  struct net_http_response *res)
{
        char key[CID_MAX_STR], json[CID_MAX_STR + 64];
        const char *data;
        size_t len = fake_net_form_data(req, &data);
        struct cid got;

        if (F.js_cap && len >= CHUNK) {
                res->status = 413;
                return fake_net_answer(body, "{\"statusCode\":413}");
        }
        assert_int_equal(
                cid_compute(1, strstr(req->url, "format=raw") ? CID_CODEC_RAW : CID_CODEC_DAG_PB,
                            CID_MH_SHA2_256, data, len, &got),
                0);
        pthread_mutex_lock(&F.lock);
        F.puts++;
        pthread_mutex_unlock(&F.lock);
        store(&got, len);
        (void)snprintf(json, sizeof(json), "{\"Key\":\"%s\",\"Size\":%zu}",
                       cid_to_string(&got, key), len);
        return fake_net_answer(body, json);
}

/* js-ipfs's add of size-CHUNK raw CIDv1 leaves: 174 links per node, the root last */
static int do_add(const struct net_http_request *req, struct buf *body)
{
        char key[CID_MAX_STR], json[CID_MAX_STR + 64];
        const char *data;
        size_t len = fake_net_form_data(req, &data), chunks = (len + CHUNK - 1) / CHUNK;
        struct cid root;
        bool lie;

        assert_non_null(strstr(req->url, "chunker=size-16384&"));
        assert_non_null(strstr(req->url, "pin=false"));
        pthread_mutex_lock(&F.lock);
        F.adds++;
        if (chunks > 1) {
                F.run_adds++;
                F.run_leaves += (unsigned)chunks;
        }
        lie = F.add_lies && chunks > 1;
        pthread_mutex_unlock(&F.lock);
        fake_net_js_add_root(data, len, CHUNK, &root);
        for (size_t off = 0; off < len && !lie; off += CHUNK) {
                struct cid leaf;

                assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, data + off,
                                             MIN((size_t)CHUNK, len - off), &leaf),
                                 0);
                store(&leaf, MIN((size_t)CHUNK, len - off));
        }
        if (lie)
                root = F.stored[0];
        (void)snprintf(json, sizeof(json), "{\"Name\":\"f\",\"Hash\":\"%s\"}\n",
                       cid_to_string(&root, key));
        return fake_net_answer(body, json);
}

/* 0 to go on, 1 when the put must fail with 503, -ETIMEDOUT at the deadline */
static int put_gate(const struct net_http_request *req)
{
        int r = 0;

        pthread_mutex_lock(&F.lock);
        F.waiting++;
        pthread_cond_broadcast(&F.cond);
        while (F.is_gate_closed && net_now_ns() < req->deadline_ns) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 10000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                (void)pthread_cond_timedwait(&F.cond, &F.lock, &ts);
        }
        if (F.is_gate_closed)
                r = -ETIMEDOUT;
        else if (F.fail_puts) {
                F.fail_puts--;
                r = 1;
        }
        F.waiting--;
        pthread_mutex_unlock(&F.lock);
        if (F.put_delay_us)
                usleep(F.put_delay_us);
        return r;
}

static int fake_http(void *t, const struct net_http_request *req, struct buf *body,
                     struct net_http_response *res)
{
        char json[2 * CID_MAX_STR + 64], key[CID_MAX_STR];
        struct cid c;
        bool dead;
        int r, i;

        (void)t;
        *res = (struct net_http_response){ .status = 200 };
        pthread_mutex_lock(&F.lock);
        dead = F.is_dead;
        pthread_mutex_unlock(&F.lock);
        if (dead)
                return -ECONNREFUSED;
        if (strstr(req->url, "/api/v0/version"))
                return fake_net_answer(body, "{\"Version\":\"fake\"}");
        if (strstr(req->url, "/api/v0/block/put?")) {
                r = put_gate(req);
                if (r < 0)
                        return r;
                if (r == 1) {
                        res->status = 503;
                        return 0;
                }
                return do_put(req, body, res);
        }
        if (strstr(req->url, "/api/v0/add?"))
                return do_add(req, body);
        assert_true(fake_net_arg_cid(req->url, &c));
        if (strstr(req->url, "/api/v0/block/stat?")) {
                pthread_mutex_lock(&F.lock);
                i = find_stored(&c);
                if (i >= 0)
                        (void)snprintf(json, sizeof(json), "{\"Key\":\"%s\",\"Size\":%zu}",
                                       cid_to_string(&c, key), F.stored_len[i]);
                pthread_mutex_unlock(&F.lock);
                if (i >= 0)
                        return fake_net_answer(body, json);
                res->status = 500;
                return fake_net_answer(body, "{\"Message\":\"not found\",\"Type\":\"error\"}");
        }
        assert_non_null(strstr(req->url, "/api/v0/pin/add?"));
        pthread_mutex_lock(&F.lock);
        F.pin_waiting++;
        pthread_cond_broadcast(&F.cond);
        while (F.is_pin_gate_closed)
                pthread_cond_wait(&F.cond, &F.lock);
        F.pin_waiting--;
        if (F.n_stored < F.pin_needs) {
                F.pins_incomplete++;
                pthread_mutex_unlock(&F.lock);
                res->status = 500;
                return fake_net_answer(body, "{\"Message\":\"context deadline exceeded\"}");
        }
        F.pins++;
        F.pinned = c;
        pthread_mutex_unlock(&F.lock);
        (void)snprintf(json, sizeof(json), "{\"Pins\":[\"%s\"]}", cid_to_string(&c, key));
        return fake_net_answer(body, json);
}

static struct net_pool *pool;
static char dir[] = "/tmp/test-upload-XXXXXX";

static int setup(void **state)
{
        static const struct net_node_config nodes[] = { { .kind = NET_NODE_RPC,
                                                          .url = "http://n1" } };
        struct net_config cfg = { .nodes = nodes,
                                  .n_nodes = 1,
                                  .timeout_ms = 5000,
                                  .stall_timeout_ms = 1000,
                                  .retry_base_delay_ms = 5,
                                  .retry_max_delay_ms = 20,
                                  .retry_max_attempts = 1,
                                  .parallel_uploads = 4 };

        (void)state;
        pthread_mutex_destroy(&F.lock);
        pthread_cond_destroy(&F.cond);
        pthread_mutex_destroy(&D.lock);
        pthread_cond_destroy(&D.cond);
        memset(&F, 0, sizeof(F));
        memset(&D, 0, sizeof(D));
        pthread_mutex_init(&F.lock, NULL);
        pthread_cond_init(&F.cond, NULL);
        pthread_mutex_init(&D.lock, NULL);
        pthread_cond_init(&D.cond, NULL);
        fake_net_init(&F.net, fake_http, NULL, 0x5eed);
        F.net.ops.no_probe_thread = false;
        F.net.is_real_time = true;
        F.net.max_sleep_ns = 1000000000; /* a sleeper sees upload_free within a second */
        return net_pool_new_with_transport(&cfg, &F.net.ops, &F.net, &pool);
}

static int teardown(void **state)
{
        (void)state;
        net_pool_free(pool);
        pool = NULL;
        return 0;
}

static struct upload_config config(void)
{
        struct upload_config c = { .net = pool,
                                   .parallel = 3,
                                   .jobs = 1,
                                   .replicas = 1,
                                   .pin = true,
                                   .timeout_ms = 2000,
                                   .retry_base_ms = 5,
                                   .retry_max_ms = 40 };

        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &c.params);
        c.params.chunk_size = CHUNK;
        return c;
}

static void on_done(const struct upload_result *r, void *userdata)
{
        (void)userdata;
        assert_true(r->id < MAX_IDS);
        pthread_mutex_lock(&D.lock);
        D.res[r->id] = *r;
        D.thread[r->id] = pthread_self();
        D.order[D.total++] = r->id;
        D.calls[r->id]++;
        pthread_cond_broadcast(&D.cond);
        pthread_mutex_unlock(&D.lock);
}

static void wait_done(unsigned n)
{
        pthread_mutex_lock(&D.lock);
        while (D.total < n)
                pthread_cond_wait(&D.cond, &D.lock);
        pthread_mutex_unlock(&D.lock);
}

static void wait_put_waiting(void)
{
        pthread_mutex_lock(&F.lock);
        while (F.waiting == 0)
                pthread_cond_wait(&F.cond, &F.lock);
        pthread_mutex_unlock(&F.lock);
}

static void set_gate(bool closed)
{
        pthread_mutex_lock(&F.lock);
        F.is_gate_closed = closed;
        pthread_cond_broadcast(&F.cond);
        pthread_mutex_unlock(&F.lock);
}

/* A file of n pseudo-random bytes; its path in path (PATH_MAX), its root in *root. */
static void make_file(size_t n, unsigned seed, char *path, struct cid *root)
{
        struct unixfs_params p;
        uint8_t *data = malloc(n ? n : 1);
        uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
        int fd;

        assert_non_null(data);
        for (size_t i = 0; i < n; i++) { /* xorshift64: no two chunks alike */
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data[i] = (uint8_t)(x >> 32);
        }
        (void)snprintf(path, 4096, "%s/f%u", dir, seed);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t)n);
        close(fd);
        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &p);
        p.chunk_size = CHUNK;
        fake_net_add_root(&p, data, n, root);
        free(data);
}

/* Runs one job (id 1) on path to its done(), waits linger_us for a second done(), and
 * returns the stats. */
static void run_job(const struct upload_config *c, const char *path, unsigned linger_us,
                    struct upload_stats *ret)
{
        struct upload *u;

        assert_int_equal(upload_new(c, &u), 0);
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        wait_done(1);
        if (linger_us)
                usleep(linger_us);
        upload_get_stats(u, ret);
        upload_free(u);
        assert_int_equal(D.calls[1], 1);
}

static void test_upload_new__bad_config__einval(void **state)
{
        struct upload_config good = config(), c;
        struct upload *u = NULL;

        (void)state;
        c = good, c.net = NULL;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.parallel = 0;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.parallel = UPLOAD_MAX_PARALLEL + 1;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.jobs = 0;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.replicas = 0;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.timeout_ms = 0;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.retry_base_ms = 0;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.retry_base_ms = 100, c.retry_max_ms = 50;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        c = good, c.params.chunk_size = 0;
        assert_int_equal(upload_new(&c, &u), -EINVAL);
        assert_null(u);
        c = good, c.pin = false, c.replicas = 0; /* replicas only matter with pin */
        assert_int_equal(upload_new(&c, &u), 0);
        upload_free(u);
}

static void test_upload_config_from__profiles__chunk_and_cid_version(void **state)
{
        struct upload_config uc;
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(upload_config_from(&c, pool, NULL, &uc), 0);
        assert_int_equal(uc.params.chunk_size, 1024 * 1024);
        assert_int_equal(uc.params.cid_version, 1);
        assert_int_equal(uc.parallel, 5);
        assert_true(uc.pin == c.automatic_pinning);
        c.profile = CONFIG_PROFILE_LEGACY;
        assert_int_equal(upload_config_from(&c, pool, NULL, &uc), 0);
        assert_int_equal(uc.params.chunk_size, 256 * 1024);
        assert_int_equal(uc.params.cid_version, 0);
        c.max_chunk_size = 512 * 1024;
        assert_int_equal(upload_config_from(&c, pool, NULL, &uc), 0);
        assert_int_equal(uc.params.chunk_size, 512 * 1024);
        c.profile = CONFIG_PROFILE_DEFAULT;
        c.max_chunk_size = 2 * 1024 * 1024;
        assert_int_equal(upload_config_from(&c, pool, NULL, &uc), 0);
        assert_int_equal(uc.params.chunk_size, 2 * 1024 * 1024);
        /* the config takes up to 4 MiB, but no block may exceed 2 MiB (bitswap's limit) */
        c.max_chunk_size = 4 * 1024 * 1024;
        assert_int_equal(upload_config_from(&c, pool, NULL, &uc), -EINVAL);
        config_done(&c);
}

/* The raw leaf CID of len bytes of the file at path from off. */
static void leaf_cid(const char *path, size_t off, size_t len, struct cid *ret)
{
        uint8_t buf[CHUNK];
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0 && len <= sizeof(buf));
        assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
        close(fd);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, buf, len, ret), 0);
}

/* One job on a new file (size, seed) with a new cache dir/name (returned, to free). */
static struct cache *job_with_cache(struct upload_config *c, size_t size, unsigned seed,
                                    const char *name, char *path, struct cid *root,
                                    struct upload_stats *st)
{
        struct cache *cache;
        char cdir[4200];

        make_file(size, seed, path, root);
        (void)snprintf(cdir, sizeof(cdir), "%s/%s", dir, name);
        assert_int_equal(cache_open(cdir, 1 << 26, 0, true, &cache), 0);
        c->cache = cache;
        run_job(c, path, 0, st);
        assert_int_equal(D.res[1].error, 0);
        return cache;
}

static void test_job__file__root_pinned_blocks_stored_and_cached(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct cid root, leaf;
        char path[4096];
        struct cache *cache = job_with_cache(&c, 10 * CHUNK + 5, 1, "cache", path, &root, &st);

        (void)state;
        assert_true(cid_equal(&D.res[1].root, &root));
        assert_int_equal(D.res[1].size, 10 * CHUNK + 5);
        assert_int_equal(D.res[1].blocks, 12); /* 11 leaves + root */
        assert_int_equal(D.res[1].sent, 12);
        assert_int_equal(D.res[1].attempts, 1);
        assert_false(pthread_equal(D.thread[1], pthread_self()));
        assert_int_equal(F.n_stored, 12);
        assert_int_equal(F.pins, 1);
        assert_true(cid_equal(&F.pinned, &root));
        assert_true(D.res[1].is_pinned);
        assert_true(find_stored(&root) >= 0);
        /* cached: blocks under a chunk (the root, the 5-byte leaf); not the full leaves */
        assert_true(cache_block_size(cache, &root) > 0);
        leaf_cid(path, 10 * CHUNK, 5, &leaf);
        assert_int_equal(cache_block_size(cache, &leaf), 5);
        leaf_cid(path, 0, CHUNK, &leaf);
        assert_true(cache_block_size(cache, &leaf) < 0);
        assert_int_equal(st.jobs_done, 1);
        assert_int_equal(st.blocks_sent, 12);
        assert_int_equal(st.bytes_read, 10 * CHUNK + 5);
        assert_int_equal(st.pins, 1);
        cache_free(cache);
}

/* cache_large_writes: the full leaves go to the cache too */
static void test_job__cache_large_writes__full_leaves_cached(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct cid root, leaf;
        struct cache *cache;
        char path[4096];

        (void)state;
        c.cache_large_writes = true;
        cache = job_with_cache(&c, 3 * CHUNK, 14, "cache-large", path, &root, &st);
        for (unsigned i = 0; i < 3; i++) {
                leaf_cid(path, i * CHUNK, CHUNK, &leaf);
                assert_int_equal(cache_block_size(cache, &leaf), CHUNK);
        }
        cache_free(cache);
}

static void test_job__big_file__block_copies_stay_bounded(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(300 * CHUNK, 2, path, &root); /* 4.7 MiB */
        c.parallel = 2;
        c.queue_blocks = 2;
        F.put_delay_us = 300; /* the network is slower than the builder */
        run_job(&c, path, 0, &st);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&D.res[1].root, &root));
        assert_true(st.mem_peak_bytes >= CHUNK);
        /* queue (2) + one block per put thread (2) */
        assert_true(st.mem_peak_bytes <= 4 * (CHUNK + sizeof(struct cid) + 64));
        assert_int_equal(st.mem_bytes, 0);
}

/* A js-ipfs-like node: after the first 413, full leaves go up 8 to a request; runs queued
 * and in flight stay within run_mem_bytes; the root is ours and pinned. */
static void test_job__js_node__leaves_in_runs_memory_bounded(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(300 * CHUNK + 9, 3, path, &root);
        F.js_cap = true;
        c.run_bytes = 8 * CHUNK;
        c.run_mem_bytes = 16 * CHUNK;
        F.put_delay_us = 300;
        run_job(&c, path, 0, &st);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&D.res[1].root, &root));
        assert_true(cid_equal(&F.pinned, &root));
        assert_int_equal(D.res[1].blocks, 302); /* 301 leaves + root */
        assert_int_equal(D.res[1].sent, 302);
        assert_int_equal(F.n_stored, 302);
        /* the leaves before the 413 was learned went one by one; most went in runs of 8 */
        assert_true(F.run_adds >= 30);
        assert_true(F.run_leaves >= 8 * 30);
        assert_true(F.run_leaves <= 8 * F.run_adds && F.run_leaves > 8 * (F.run_adds - 1));
        assert_int_equal(st.blocks_sent, 302);
        assert_true(st.bytes_sent > 300 * CHUNK + 9 && st.bytes_sent < 300 * CHUNK + 9 + 32768);
        /* 16 chunks for runs: one run held besides the one being gathered (not counted) */
        assert_true(st.mem_peak_bytes <= 8 * CHUNK + 256);
        assert_int_equal(st.mem_bytes, 0);
}

/* A node whose add of a run names another root (and stores nothing): the leaves go one by
 * one, no second run is tried, and the right root is pinned. */
static void test_job__add_names_another_root__leaf_by_leaf_right_root_pinned(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(100 * CHUNK, 4, path, &root);
        F.js_cap = true;
        F.add_lies = true;
        c.run_bytes = 8 * CHUNK;
        run_job(&c, path, 0, &st);
        assert_int_equal(D.res[1].error, 0);
        assert_int_equal(D.res[1].attempts, 1);
        assert_true(cid_equal(&F.pinned, &root));
        /* runs already in flight when the first answer came back fall back too; no later one */
        assert_true(F.run_adds >= 1 && F.run_adds <= c.parallel);
        assert_int_equal(F.n_stored, 101);
        assert_int_equal(st.blocks_sent, 101);
        assert_int_equal(F.adds, F.run_adds + 100); /* each leaf once on its own */
}

/* Put threads start as blocks wait for them: one for a one-block file, at most `parallel`. */
static void test_job__put_threads__one_for_a_small_file_at_most_parallel(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(100, 5, path, &root);
        run_job(&c, path, 0, &st);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&F.pinned, &root));
        assert_int_equal(st.put_threads, 1);
        pthread_mutex_lock(&D.lock); /* a second job with id 1 */
        memset(D.calls, 0, sizeof(D.calls));
        D.total = 0;
        pthread_mutex_unlock(&D.lock);
        make_file(200 * CHUNK, 6, path, &root);
        F.put_delay_us = 300; /* the network is slower than the builder: blocks wait */
        run_job(&c, path, 0, &st);
        assert_true(cid_equal(&D.res[1].root, &root));
        assert_true(st.put_threads >= 2 && st.put_threads <= c.parallel);
}

static void test_job__failing_node__retried_until_pinned_done_once(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(6 * CHUNK, 3, path, &root);
        F.fail_puts = 5;
        run_job(&c, path, 100000, &st); /* a second done() would show */
        assert_int_equal(D.res[1].error, 0);
        assert_true(D.res[1].attempts >= 2);
        assert_true(cid_equal(&F.pinned, &root));
        assert_int_equal(F.n_stored, 7);
        assert_true(st.attempts_failed >= 1);
        assert_int_equal(st.jobs_retried, st.attempts_failed);
        /* resumed attempts skip what the node already has */
        assert_int_equal(D.res[1].last_sent + D.res[1].last_skipped, 7);
}

static void *revive_later(void *arg)
{
        (void)arg;
        usleep(300000);
        pthread_mutex_lock(&F.lock);
        F.is_dead = false;
        pthread_mutex_unlock(&F.lock);
        return NULL;
}

static void test_job__every_node_down__completes_when_one_returns(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char path[4096];
        struct cid root;
        pthread_t t;

        (void)state;
        make_file(3 * CHUNK, 4, path, &root);
        F.is_dead = true;
        assert_int_equal(pthread_create(&t, NULL, revive_later, NULL), 0);
        run_job(&c, path, 100000, &st);
        pthread_join(t, NULL);
        assert_int_equal(D.res[1].error, 0);
        assert_true(st.attempts_failed >= 3);
        assert_true(cid_equal(&F.pinned, &root));
}

static void test_cancel__queued_then_running__ecanceled_once_each(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        char p1[4096], p2[4096];
        struct cid r1, r2;
        struct upload *u;

        (void)state;
        make_file(8 * CHUNK, 5, p1, &r1);
        make_file(CHUNK, 6, p2, &r2);
        set_gate(true);
        assert_int_equal(upload_new(&c, &u), 0); /* one runner */
        assert_int_equal(upload_submit(u, 1, p1, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 2, p2, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 1, p2, on_done, NULL), -EEXIST);
        wait_put_waiting(); /* job 1 runs (its puts wait at the gate); job 2 is queued */
        assert_int_equal(upload_cancel(u, 2), 0);
        wait_done(1); /* delivered while job 1 still runs */
        assert_int_equal(D.order[0], 2);
        assert_int_equal(D.res[2].error, -ECANCELED);
        assert_false(pthread_equal(D.thread[2], pthread_self()));
        assert_int_equal(upload_cancel(u, 2), -ENOENT);
        assert_int_equal(upload_cancel(u, 99), -ENOENT);
        assert_int_equal(upload_cancel(u, 1), 0);
        assert_int_equal(upload_cancel(u, 1), -ENOENT);
        set_gate(false);
        wait_done(2);
        usleep(50000);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.calls[1], 1);
        assert_int_equal(D.calls[2], 1);
        assert_int_equal(D.res[1].error, -ECANCELED);
        assert_int_equal(F.pins, 0);
        assert_int_equal(st.jobs_cancelled, 2);
        assert_int_equal(st.jobs_done, 0);
        /* the id can be used again once its done() was delivered */
}

/* A cancel that comes while the root's pin is in flight: done() gets -ECANCELED, and learns
 * that the pin landed (someone must unpin that root: nothing will refer to it). */
static void test_cancel__during_the_pin__ecanceled_with_the_pinned_root(void **state)
{
        struct upload_config c = config();
        struct upload *u;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(3 * CHUNK, 7, path, &root);
        pthread_mutex_lock(&F.lock);
        F.is_pin_gate_closed = true;
        pthread_mutex_unlock(&F.lock);
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        pthread_mutex_lock(&F.lock);
        while (F.pin_waiting == 0)
                pthread_cond_wait(&F.cond, &F.lock);
        pthread_mutex_unlock(&F.lock);
        assert_int_equal(upload_cancel(u, 1), 0);
        pthread_mutex_lock(&F.lock);
        F.is_pin_gate_closed = false;
        pthread_cond_broadcast(&F.cond);
        pthread_mutex_unlock(&F.lock);
        wait_done(1);
        upload_free(u);
        assert_int_equal(D.res[1].error, -ECANCELED);
        assert_true(D.res[1].is_pinned);
        assert_true(cid_equal(&D.res[1].root, &root));
        assert_int_equal(F.pins, 1);
}

static void *open_gate_later(void *arg)
{
        (void)arg;
        usleep(100000);
        set_gate(false);
        return NULL;
}

static void test_upload_free__queued_and_running__all_ecanceled(void **state)
{
        struct upload_config c = config();
        char p1[4096], p2[4096], p3[4096];
        struct cid r;
        struct upload *u;
        pthread_t t;

        (void)state;
        make_file(8 * CHUNK, 7, p1, &r);
        make_file(2 * CHUNK, 8, p2, &r);
        make_file(3 * CHUNK, 9, p3, &r);
        set_gate(true);
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_submit(u, 1, p1, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 2, p2, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 3, p3, on_done, NULL), 0);
        wait_put_waiting();
        assert_int_equal(pthread_create(&t, NULL, open_gate_later, NULL), 0);
        upload_free(u);
        pthread_join(t, NULL);
        assert_int_equal(D.total, 3);
        for (int i = 1; i <= 3; i++) {
                assert_int_equal(D.calls[i], 1);
                assert_int_equal(D.res[i].error, -ECANCELED);
        }
        assert_int_equal(F.pins, 0);
}

/* Finding 6 of docs/reliability.md: an fsync waited behind every close queued before it */
static void test_upload_urge__queued_job__runs_before_older_queued_ones(void **state)
{
        struct upload_config c = config(); /* one runner */
        char p1[4096], p2[4096], p3[4096], p4[4096];
        struct upload_stats st;
        struct cid r;
        struct upload *u;

        (void)state;
        make_file(2 * CHUNK, 11, p1, &r);
        make_file(2 * CHUNK, 12, p2, &r);
        make_file(2 * CHUNK, 13, p3, &r);
        make_file(2 * CHUNK, 14, p4, &r);
        set_gate(true);
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_submit(u, 1, p1, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 2, p2, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 3, p3, on_done, NULL), 0);
        assert_int_equal(upload_submit(u, 4, p4, on_done, NULL), 0);
        wait_put_waiting(); /* job 1 runs; 2, 3 and 4 wait in that order */
        assert_int_equal(upload_urge(u, 4), 1);
        assert_int_equal(upload_urge(u, 4), 0); /* at the head already */
        assert_int_equal(upload_urge(u, 1), 0); /* running */
        assert_int_equal(upload_urge(u, 99), 0);
        set_gate(false);
        wait_done(4);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.order[0], 1);
        assert_int_equal(D.order[1], 4);
        assert_int_equal(D.order[2], 2);
        assert_int_equal(D.order[3], 3);
        for (int i = 1; i <= 4; i++)
                assert_int_equal(D.res[i].error, 0);
        assert_int_equal(st.jobs_urged, 1);
}

/* true when n results came within seconds */
static bool wait_done_within(unsigned n, int seconds)
{
        struct timespec ts;
        bool ok;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += seconds;
        pthread_mutex_lock(&D.lock);
        while (D.total < n)
                if (pthread_cond_timedwait(&D.cond, &D.lock, &ts) == ETIMEDOUT)
                        break;
        ok = D.total >= n;
        pthread_mutex_unlock(&D.lock);
        return ok;
}

/* Finding 6 again: the only runner retried a failing job (backoff waits in between) and an
 * urged one behind it never ran; the failing one now gives its runner back in its wait */
static void test_upload_urge__runner_in_backoff__gives_its_runner_to_the_urged_job(void **state)
{
        struct upload_config c = config(); /* one runner */
        char missing[4096], p2[4096];
        struct upload_stats st;
        struct cid r;
        struct upload *u;

        (void)state;
        c.retry_base_ms = 1000;
        c.retry_max_ms = 60 * 1000;
        (void)snprintf(missing, sizeof(missing), "%s/never-made", dir);
        make_file(2 * CHUNK, 21, p2, &r);
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_submit(u, 1, missing, on_done, NULL), 0); /* fails every time */
        assert_int_equal(upload_submit(u, 2, p2, on_done, NULL), 0);
        assert_int_equal(upload_urge(u, 2), 1);
        assert_true(wait_done_within(1, 20)); /* before: never, the runner kept job 1 */
        assert_int_equal(D.order[0], 2);
        assert_int_equal(D.res[2].error, 0);
        assert_true(cid_equal(&D.res[2].root, &r));
        assert_int_equal(D.calls[1], 0); /* still retrying, from where it was */
        assert_int_equal(upload_cancel(u, 1), 0);
        wait_done(2);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.res[1].error, -ECANCELED);
        assert_int_equal(st.jobs_urged, 1);
}

struct blocks_src {
        struct cid root;
        int fail;
};

static int three_blocks(unixfs_emit_fn emit, void *emit_ud, void *userdata)
{
        struct blocks_src *s = userdata;
        static const char *const data[] = { "alpha", "beta", "gamma" };

        for (int i = 0; i < 3; i++) {
                struct cid c;
                int r;

                assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, data[i],
                                             strlen(data[i]), &c),
                                 0);
                r = emit(&c, (const uint8_t *)data[i], strlen(data[i]), emit_ud);
                if (r < 0)
                        return r;
                s->root = c;
        }
        return s->fail;
}

static void test_upload_blocks__source_blocks__stored_and_root_pinned(void **state)
{
        struct upload_config c = config();
        struct blocks_src s = { 0 };
        struct upload *u;

        (void)state;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_blocks(u, three_blocks, &s, &s.root), 0);
        assert_int_equal(F.n_stored, 3);
        assert_int_equal(F.pins, 1);
        assert_true(cid_equal(&F.pinned, &s.root));
        s.fail = -EIO; /* a failing source: its error, nothing pinned */
        assert_int_equal(upload_blocks(u, three_blocks, &s, &s.root), -EIO);
        assert_int_equal(F.pins, 1);
        upload_free(u);
}

static void test_upload_fd__file__root_and_size(void **state)
{
        struct upload_config c = config();
        struct upload *u;
        char path[4096];
        struct cid root, got;
        uint64_t size;
        int fd;

        (void)state;
        make_file(0, 10, path, &root);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        c.pin = false;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_fd(u, fd, &got, &size), 0);
        close(fd);
        upload_free(u);
        assert_true(cid_equal(&got, &root));
        assert_int_equal(size, 0);
        assert_int_equal(F.pins, 0);
        assert_int_equal(F.n_stored, 1); /* the empty leaf */
}

/* Polls the stats until the counter at offset field reaches n (2 s at most). */
static void wait_stat(struct upload *u, size_t field, uint64_t n, struct upload_stats *st)
{
        const uint64_t *v = (const uint64_t *)((const char *)st + field);

        for (int i = 0; i < 2000; i++) {
                upload_get_stats(u, st);
                if (*v >= n)
                        return;
                usleep(1000);
        }
        fail_msg("stat at %zu: %" PRIu64 " of %" PRIu64, field, *v, n);
}

#define wait_early(u, n, st) wait_stat(u, offsetof(struct upload_stats, early_blocks), n, st)

/* Early puts of a file's completed ranges: the job finds those leaves on its node and sends
 * only the tail and the root; once a js-ipfs node's cap is known, ranges go up as runs. */
static void early_then_job(bool js)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct upload *u;
        char path[4096];
        struct cid root;
        unsigned puts_before;

        make_file(32 * CHUNK + 5, 11, path, &root);
        F.js_cap = js;
        c.run_bytes = 8 * CHUNK;
        c.early = true;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early_unit(u), 8 * CHUNK);
        assert_int_equal(upload_early(u, path, 0, 32 * CHUNK), 0);
        wait_early(u, 32, &st);
        assert_int_equal(st.early_ranges, 4);
        assert_int_equal(F.n_stored, 32);
        puts_before = F.puts + F.adds;
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        wait_done(1);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&D.res[1].root, &root));
        assert_true(cid_equal(&F.pinned, &root));
        assert_int_equal(D.res[1].blocks, 34); /* 33 leaves + root */
        assert_int_equal(D.res[1].sent, 2);    /* the short leaf and the root */
        assert_int_equal(D.res[1].skipped, 32);
        assert_int_equal(st.early_used, 32);
        assert_int_equal(F.puts + F.adds - puts_before, 2);
        assert_int_equal(F.n_stored, 34);
        /* the ranges started before the 413 was learned (one per early thread at most) went
         * leaf by leaf, the others as runs */
        if (js)
                assert_true(F.run_adds >= 2 && F.run_adds <= 3);
}

static void test_early__ranges_put_before_the_job__job_sends_only_the_rest(void **state)
{
        (void)state;
        early_then_job(false);
}

static void test_early__js_node__ranges_as_runs__job_sends_only_the_rest(void **state)
{
        (void)state;
        early_then_job(true);
}

/* An uploader with early puts (runs of 8 chunks) and a file of n chunks and 5 bytes whose n
 * chunks it has put early. */
static struct upload *early_file(size_t n, unsigned seed, char *path, struct cid *root)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct upload *u;

        make_file(n * CHUNK + 5, seed, path, root);
        c.run_bytes = 8 * CHUNK;
        c.early = true;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early(u, path, 0, n * CHUNK), 0);
        wait_early(u, n, &st);
        return u;
}

/* The node's GC dropped the early-put leaves before the close: the job checks them before it
 * pins, finds them gone and sends them again at once; no pin ever waits for missing blocks. */
static void test_early__leaves_garbage_collected__job_resends_before_the_pin(void **state)
{
        struct upload_stats st;
        char path[4096];
        struct cid root;
        struct upload *u = early_file(32, 12, path, &root);

        (void)state;
        pthread_mutex_lock(&F.lock);
        F.n_stored = 0; /* repo gc */
        F.pin_needs = 34;
        pthread_mutex_unlock(&F.lock);
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        wait_done(1);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&F.pinned, &root));
        assert_int_equal(F.pins_incomplete, 0);
        assert_int_equal(F.n_stored, 34);
        assert_int_equal(st.early_lost, 1);
        assert_int_equal(D.res[1].attempts, 2);
}

/* The same bytes uploaded twice within the table's lifetime (cp a b): the second job skips
 * every leaf, the short tail too, and its check before the pin asks for one of them with its
 * own size, so the node's answer matches and nothing is sent again. */
static void test_early__same_bytes_twice__second_job_checks_and_pins_once(void **state)
{
        struct upload_stats st;
        char path[4096];
        struct cid root;
        struct upload *u = early_file(16, 13, path, &root);

        (void)state;
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        wait_done(1);
        assert_int_equal(upload_submit(u, 2, path, on_done, NULL), 0);
        wait_done(2);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.res[2].error, 0);
        assert_int_equal(D.res[2].attempts, 1);
        assert_int_equal(D.res[2].sent, 1); /* the root (not a leaf: never in the table) */
        assert_int_equal(st.early_lost, 0);
        assert_int_equal(F.pins_incomplete, 0);
        assert_true(cid_equal(&F.pinned, &root));
}

/* The file changed after its early puts: no stored leaf matches, the job sends them all and
 * pins the root of what the file holds now. */
static void test_early__file_rewritten_after__job_sends_new_leaves(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct upload *u;
        char path[4096], path2[4096];
        struct cid root, root2;

        (void)state;
        make_file(16 * CHUNK, 12, path, &root);
        c.run_bytes = 8 * CHUNK;
        c.early = true;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early(u, path, 0, 16 * CHUNK), 0);
        wait_early(u, 16, &st);
        make_file(16 * CHUNK, 13, path2, &root2);
        assert_int_equal(rename(path2, path), 0);
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        wait_done(1);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&D.res[1].root, &root2));
        assert_true(cid_equal(&F.pinned, &root2));
        assert_int_equal(D.res[1].sent, 17);
        assert_int_equal(st.early_used, 0);
}

/* Once a job put a file's leaves, early ranges of the same bytes are not sent again: the
 * job's puts are recorded in the same table (claims). */
static void test_early__after_the_job__ranges_not_sent_again(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct upload *u;
        char path[4096], missing[4200];
        struct cid root;
        unsigned puts;

        (void)state;
        make_file(16 * CHUNK, 15, path, &root);
        c.run_bytes = 8 * CHUNK;
        c.early = true;
        assert_int_equal(upload_new(&c, &u), 0);
        (void)snprintf(missing, sizeof(missing), "%s/missing", dir);
        assert_int_equal(upload_early(u, missing, 0, 8 * CHUNK), 0); /* starts the table */
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        wait_done(1);
        assert_int_equal(D.res[1].sent, 17);
        puts = F.puts + F.adds;
        assert_int_equal(upload_early(u, path, 0, 16 * CHUNK), 0);
        /* both ranges taken and found stored */
        wait_stat(u, offsetof(struct upload_stats, early_skipped), 2, &st);
        upload_free(u);
        assert_int_equal(st.early_skipped, 2);
        assert_int_equal(F.puts + F.adds, puts);
        assert_int_equal(st.early_blocks, 0);
}

/* At close, the file's queued early ranges go on while its job reads and skips what the early
 * puts stored (so the node keeps busy); they are dropped once the job sends a block itself,
 * and no leaf is sent twice. */
static void test_early__queued_ranges_go_on_until_the_job_sends(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct upload *u;
        char path[4096];
        struct cid root;

        (void)state;
        make_file(40 * CHUNK, 16, path, &root);
        c.run_bytes = 8 * CHUNK;
        c.early = true;
        c.parallel = 1; /* the job's items in order: it waits at range 2 */
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early(u, path, 0, 16 * CHUNK), 0);
        wait_early(u, 16, &st);
        set_gate(true);
        assert_int_equal(upload_early(u, path, 16 * CHUNK, 24 * CHUNK), 0);
        pthread_mutex_lock(&F.lock);
        while (F.waiting < 2) /* both early threads at the gate: ranges 2 and 3; 4 queued */
                pthread_cond_wait(&F.cond, &F.lock);
        pthread_mutex_unlock(&F.lock);
        assert_int_equal(upload_submit(u, 1, path, on_done, NULL), 0);
        usleep(50000);
        upload_get_stats(u, &st);
        assert_int_equal(st.early_dropped, 0); /* range 4 still queued */
        set_gate(false);
        wait_done(1);
        upload_get_stats(u, &st);
        upload_free(u);
        assert_int_equal(D.res[1].error, 0);
        assert_true(cid_equal(&F.pinned, &root));
        assert_int_equal(D.res[1].sent + D.res[1].skipped, 41);
        assert_int_equal(F.puts, 41); /* 40 leaves and the root, each once */
        assert_int_equal(st.early_blocks + D.res[1].sent, 41);
}

/* Ranges must be whole units; nothing applies when early puts are off or leaves are dag-pb;
 * a missing file is no error (its range is just not put). */
static void test_early__bad_ranges_and_off__einval_missing_file_ignored(void **state)
{
        struct upload_config c = config();
        struct upload_stats st;
        struct upload *u;
        char path[4096];

        (void)state;
        c.run_bytes = 8 * CHUNK;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early_unit(u), 0);
        assert_int_equal(upload_early(u, "/x", 0, 8 * CHUNK), -EINVAL);
        upload_free(u);
        c.early = true;
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early(u, "/x", 1, 8 * CHUNK), -EINVAL);
        assert_int_equal(upload_early(u, "/x", 0, 8 * CHUNK + 1), -EINVAL);
        assert_int_equal(upload_early(u, "/x", 0, 0), -EINVAL);
        (void)snprintf(path, sizeof(path), "%s/missing", dir);
        assert_int_equal(upload_early(u, path, 8 * CHUNK, 8 * CHUNK), 0);
        usleep(20000);
        upload_get_stats(u, &st);
        assert_int_equal(st.early_ranges, 1);
        assert_int_equal(st.early_blocks, 0);
        upload_free(u);
        assert_int_equal(F.puts + F.adds, 0);
        unixfs_params_profile(UNIXFS_PROFILE_LEGACY, &c.params);
        assert_int_equal(upload_new(&c, &u), 0);
        assert_int_equal(upload_early_unit(u), 0);
        upload_free(u);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_upload_new__bad_config__einval, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_config_from__profiles__chunk_and_cid_version, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_job__file__root_pinned_blocks_stored_and_cached, setup, teardown),
                cmocka_unit_test_setup_teardown(test_job__cache_large_writes__full_leaves_cached,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_job__js_node__leaves_in_runs_memory_bounded,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_job__add_names_another_root__leaf_by_leaf_right_root_pinned, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_job__put_threads__one_for_a_small_file_at_most_parallel, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_job__big_file__block_copies_stay_bounded,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_job__failing_node__retried_until_pinned_done_once, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_job__every_node_down__completes_when_one_returns, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_cancel__queued_then_running__ecanceled_once_each, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_cancel__during_the_pin__ecanceled_with_the_pinned_root, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_urge__queued_job__runs_before_older_queued_ones, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_urge__runner_in_backoff__gives_its_runner_to_the_urged_job,
                        setup, teardown),
                cmocka_unit_test_setup_teardown(test_upload_free__queued_and_running__all_ecanceled,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_blocks__source_blocks__stored_and_root_pinned, setup, teardown),
                cmocka_unit_test_setup_teardown(test_upload_fd__file__root_and_size, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_early__ranges_put_before_the_job__job_sends_only_the_rest, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_early__js_node__ranges_as_runs__job_sends_only_the_rest, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_early__file_rewritten_after__job_sends_new_leaves, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_early__bad_ranges_and_off__einval_missing_file_ignored, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_early__after_the_job__ranges_not_sent_again,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_early__queued_ranges_go_on_until_the_job_sends,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_early__leaves_garbage_collected__job_resends_before_the_pin, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_early__same_bytes_twice__second_job_checks_and_pins_once, setup,
                        teardown),
        };
        char cmd[64];
        int r;

        if (!mkdtemp(dir))
                return 1;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        (void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)!system(cmd); /* the files and the cache of this run */
        return r;
}
