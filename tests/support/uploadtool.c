/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uploadtool: drives the upload module against real nodes, for integration tests and
 * benchmarks.
 *   uploadtool [--rpc URL]... [--parallel N] [--jobs N] [--replicas N] [--chunk BYTES]
 *              [--legacy] [--no-pin] [--timeout MS] [--retry-base MS] [--retry-max MS]
 *              [--queue N] [--cache DIR] [--progress FILE] [--cancel ID] [--cancel-after ID:N]
 *              [--linger MS] [--run-bytes N] [--run-mem N] [--cache-large-writes] [--fd]
 *              FILE...
 * Default: each FILE is submitted as job 1, 2, ... with upload_submit; the tool waits until
 * every job's done() came, and prints one JSON line per done() call, then one line with the
 * module's stats and how many times done() was called per job. --cancel ID cancels job ID
 * right after every job was submitted (it is still queued when --jobs 1 and it is not the
 * first); --cancel-after ID:N cancels job ID once N blocks were sent. --linger waits that
 * long after the last done() (a second done() would show). --progress writes the stats
 * ("sent skipped failed retried read") every 20 ms. --fd: one FILE through upload_fd
 * instead (prints one JSON line with root, size, error and stats). --dir: FILE is a flat
 * directory of regular files (`prsmctl publish` in small): each file goes through upload_fd,
 * then the directory node through upload_blocks, pinned (one JSON line with its root). Exit
 * --run-bytes/--run-mem: upload_config's run_bytes and run_mem_bytes; --cache-large-writes:
 * its cache_large_writes (full leaves into --cache too). Exit
 * status 0 when every job ended as expected (pinned, or cancelled when asked).
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/cache.h"
#include "prsmfs/net.h"
#include "prsmfs/parse.h"
#include "prsmfs/upload.h"

#define MAX_FILES 64

struct state {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned calls[MAX_FILES + 1]; /* done() calls per id */
        unsigned finished;
        int errors[MAX_FILES + 1];
};

static struct state st = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void on_done(const struct upload_result *r, void *userdata)
{
        char root[CID_MAX_STR] = "";

        (void)userdata;
        if (r->error == 0)
                (void)cid_to_string(&r->root, root);
        pthread_mutex_lock(&st.lock);
        printf("{\"id\": %" PRIu64 ", \"error\": %d, \"root\": \"%s\", \"size\": %" PRIu64
               ", \"attempts\": %u, \"blocks\": %" PRIu64 ", \"sent\": %" PRIu64
               ", \"skipped\": %" PRIu64 ", \"last_sent\": %" PRIu64 ", \"last_skipped\": %" PRIu64
               ", \"node\": \"%s\"}\n",
               r->id, r->error, root, r->size, r->attempts, r->blocks, r->sent, r->skipped,
               r->last_sent, r->last_skipped, r->node);
        fflush(stdout);
        if (r->id <= MAX_FILES) {
                st.calls[r->id]++;
                st.errors[r->id] = r->error;
        }
        st.finished++;
        pthread_cond_broadcast(&st.cond);
        pthread_mutex_unlock(&st.lock);
}

static void print_stats(struct upload *u)
{
        struct upload_stats s;

        upload_get_stats(u, &s);
        printf("\"stats\": {\"jobs_submitted\": %" PRIu64 ", \"jobs_done\": %" PRIu64
               ", \"jobs_cancelled\": %" PRIu64 ", \"attempts_failed\": %" PRIu64
               ", \"jobs_retried\": %" PRIu64 ", \"blocks_sent\": %" PRIu64
               ", \"blocks_skipped\": %" PRIu64 ", \"bytes_sent\": %" PRIu64
               ", \"bytes_read\": %" PRIu64 ", \"pins\": %" PRIu64 ", \"mem_peak_bytes\": %" PRIu64
               "}",
               s.jobs_submitted, s.jobs_done, s.jobs_cancelled, s.attempts_failed, s.jobs_retried,
               s.blocks_sent, s.blocks_skipped, s.bytes_sent, s.bytes_read, s.pins,
               s.mem_peak_bytes);
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0)
                ;
}

static void write_progress(struct upload *u, const char *path)
{
        struct upload_stats s;
        char tmp[4096];
        FILE *f;

        upload_get_stats(u, &s);
        (void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "we");
        if (!f)
                return;
        fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s.blocks_sent,
                s.blocks_skipped, s.attempts_failed, s.jobs_retried, s.bytes_read);
        fclose(f);
        (void)rename(tmp, path);
}

static int run_fd(struct upload *u, const char *path)
{
        char root[CID_MAX_STR] = "";
        struct cid c;
        uint64_t size = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = upload_fd(u, fd, &c, &size);
        close(fd);
        if (r == 0)
                (void)cid_to_string(&c, root);
        printf("{\"error\": %d, \"root\": \"%s\", \"size\": %" PRIu64 ", ", r, root, size);
        print_stats(u);
        printf("}\n");
        return r;
}

static int ignore_block(const struct cid *cid, const uint8_t *block, size_t len, void *userdata)
{
        (void)cid, (void)block, (void)len, (void)userdata;
        return 0;
}

/* The cumulative DAG size (Tsize) of a file, from a local build with the same settings. */
static int file_tsize(const struct unixfs_params *p, int fd, uint64_t *ret)
{
        struct unixfs_builder *b = NULL;
        static uint8_t buf[1 << 16];
        uint64_t off = 0;
        ssize_t n;
        int r;

        r = unixfs_builder_new(p, ignore_block, NULL, &b);
        while (r >= 0 && (n = pread(fd, buf, sizeof(buf), (off_t)off)) > 0) {
                off += (uint64_t)n;
                r = unixfs_builder_write(b, buf, (size_t)n);
        }
        if (r >= 0)
                r = unixfs_builder_finish(b, &(struct cid){ 0 }, NULL, ret);
        unixfs_builder_free(b);
        return r;
}

struct dir_source {
        struct unixfs_dir_params dp;
        struct unixfs_dirent *e;
        size_t n;
        struct cid root;
};

static int dir_blocks(unixfs_emit_fn emit, void *emit_ud, void *userdata)
{
        struct dir_source *d = userdata;
        uint64_t tsize;

        return unixfs_dir_build(&d->dp, d->e, d->n, emit, emit_ud, &d->root, &tsize);
}

static int run_dir(struct upload *u, const struct unixfs_params *p, bool legacy, const char *path)
{
        struct dir_source d = { 0 };
        char root[CID_MAX_STR] = "", *names[MAX_FILES];
        struct dirent *de;
        DIR *dir;
        int r = 0;

        unixfs_dir_params_profile(legacy ? UNIXFS_PROFILE_LEGACY : UNIXFS_PROFILE_DEFAULT, &d.dp);
        d.e = calloc(MAX_FILES, sizeof(*d.e));
        dir = opendir(path);
        if (!dir)
                r = -errno;
        else if (!d.e)
                r = -ENOMEM;
        while (r >= 0 && dir && (de = readdir(dir)) && d.n < MAX_FILES) {
                int fd;

                if (de->d_name[0] == '.')
                        continue;
                fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        break;
                }
                r = upload_fd(u, fd, &d.e[d.n].cid, &(uint64_t){ 0 });
                if (r >= 0)
                        r = file_tsize(p, fd, &d.e[d.n].tsize);
                close(fd);
                names[d.n] = strdup(de->d_name);
                d.e[d.n].name = names[d.n];
                d.e[d.n].name_len = strlen(de->d_name);
                d.n++;
        }
        if (r >= 0)
                r = upload_blocks(u, dir_blocks, &d, &d.root);
        if (r >= 0)
                (void)cid_to_string(&d.root, root);
        printf("{\"error\": %d, \"root\": \"%s\", \"entries\": %zu, ", r, root, d.n);
        print_stats(u);
        printf("}\n");
        for (size_t i = 0; i < d.n; i++)
                free(names[i]);
        free(d.e);
        if (dir)
                closedir(dir);
        return r;
}

int main(int argc, char *argv[])
{
        static const struct option opts[] = {
                { "rpc", required_argument, NULL, 'r' },
                { "parallel", required_argument, NULL, 'p' },
                { "jobs", required_argument, NULL, 'j' },
                { "replicas", required_argument, NULL, 'R' },
                { "chunk", required_argument, NULL, 'c' },
                { "legacy", no_argument, NULL, 'L' },
                { "no-pin", no_argument, NULL, 'N' },
                { "timeout", required_argument, NULL, 't' },
                { "retry-base", required_argument, NULL, 'b' },
                { "retry-max", required_argument, NULL, 'm' },
                { "queue", required_argument, NULL, 'q' },
                { "cache", required_argument, NULL, 'C' },
                { "progress", required_argument, NULL, 'P' },
                { "cancel", required_argument, NULL, 'x' },
                { "cancel-after", required_argument, NULL, 'X' },
                { "linger", required_argument, NULL, 'l' },
                { "fd", no_argument, NULL, 'F' },
                { "dir", no_argument, NULL, 'D' },
                { "run-bytes", required_argument, NULL, 'B' },
                { "run-mem", required_argument, NULL, 'M' },
                { "cache-large-writes", no_argument, NULL, 'W' },
                { 0 },
        };
        struct net_node_config nodes[NET_MAX_NODES];
        struct net_config ncfg = { .timeout_ms = 60000,
                                   .stall_timeout_ms = 2000,
                                   .retry_base_delay_ms = 50,
                                   .retry_max_delay_ms = 1000,
                                   .retry_max_attempts = 3,
                                   .connection_pool_size = 16 };
        struct upload_config ucfg = { .parallel = 5,
                                      .jobs = 2,
                                      .replicas = 1,
                                      .pin = true,
                                      .timeout_ms = 60000,
                                      .retry_base_ms = 100,
                                      .retry_max_ms = 2000 };
        const char *progress = NULL, *cache_dir = NULL;
        uint64_t v, chunk = 0, cancel_id = 0, cancel_after_id = 0, cancel_after_n = 0, linger = 0;
        bool legacy = false, use_fd = false, use_dir = false, cancel_after_done = false;
        struct net_pool *pool = NULL;
        struct cache *cache = NULL;
        struct upload *u = NULL;
        unsigned n_files;
        int c, r, ret = 1;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        if (ncfg.n_nodes >= NET_MAX_NODES)
                                return 2;
                        nodes[ncfg.n_nodes++] =
                                (struct net_node_config){ .kind = NET_NODE_RPC, .url = optarg };
                        break;
                case 'L':
                        legacy = true;
                        break;
                case 'N':
                        ucfg.pin = false;
                        break;
                case 'F':
                        use_fd = true;
                        break;
                case 'D':
                        use_dir = true;
                        break;
                case 'C':
                        cache_dir = optarg;
                        break;
                case 'P':
                        progress = optarg;
                        break;
                case 'W':
                        ucfg.cache_large_writes = true;
                        break;
                case 'X': {
                        char *colon = strchr(optarg, ':');

                        if (!colon || parse_u64(colon + 1, &cancel_after_n) < 0)
                                return 2;
                        *colon = '\0';
                        if (parse_u64(optarg, &cancel_after_id) < 0)
                                return 2;
                        break;
                }
                default:
                        if (c == '?' || parse_u64(optarg, &v) < 0)
                                return 2;
                        if (c == 'p')
                                ucfg.parallel = (unsigned)v;
                        else if (c == 'j')
                                ucfg.jobs = (unsigned)v;
                        else if (c == 'R')
                                ucfg.replicas = (unsigned)v;
                        else if (c == 'c')
                                chunk = v;
                        else if (c == 't')
                                ucfg.timeout_ms = ncfg.timeout_ms = v;
                        else if (c == 'b')
                                ucfg.retry_base_ms = v;
                        else if (c == 'm')
                                ucfg.retry_max_ms = v;
                        else if (c == 'q')
                                ucfg.queue_blocks = (unsigned)v;
                        else if (c == 'x')
                                cancel_id = v;
                        else if (c == 'l')
                                linger = v;
                        else if (c == 'B')
                                ucfg.run_bytes = (size_t)v;
                        else if (c == 'M')
                                ucfg.run_mem_bytes = (size_t)v;
                        break;
                }
        }
        n_files = (unsigned)(argc - optind);
        if (n_files < 1 || n_files > MAX_FILES || ((use_fd || use_dir) && n_files != 1))
                return 2;
        ncfg.nodes = nodes;
        ncfg.parallel_uploads = ucfg.parallel;
        unixfs_params_profile(legacy ? UNIXFS_PROFILE_LEGACY : UNIXFS_PROFILE_DEFAULT,
                              &ucfg.params);
        if (chunk)
                ucfg.params.chunk_size = chunk;
        r = net_pool_new(&ncfg, &pool);
        if (r < 0)
                goto fail;
        if (cache_dir) {
                r = cache_open(cache_dir, 1ull << 34, 0, true, &cache);
                if (r < 0)
                        goto fail;
        }
        ucfg.net = pool;
        ucfg.cache = cache;
        r = upload_new(&ucfg, &u);
        if (r < 0)
                goto fail;
        if (use_dir) {
                r = run_dir(u, &ucfg.params, legacy, argv[optind]);
                ret = r == 0 ? 0 : 1;
                goto out;
        }
        if (use_fd) {
                r = run_fd(u, argv[optind]);
                ret = r == 0 ? 0 : 1;
                goto out;
        }
        for (unsigned i = 0; i < n_files; i++) {
                r = upload_submit(u, i + 1, argv[optind + i], on_done, NULL);
                if (r < 0)
                        goto fail;
        }
        if (cancel_id) {
                r = upload_cancel(u, cancel_id);
                fprintf(stderr, "uploadtool: cancel %" PRIu64 ": %d\n", cancel_id, r);
                if (r < 0)
                        goto fail;
        }
        pthread_mutex_lock(&st.lock);
        while (st.finished < n_files) {
                pthread_mutex_unlock(&st.lock);
                if (progress)
                        write_progress(u, progress);
                if (cancel_after_id && !cancel_after_done) {
                        struct upload_stats s;

                        upload_get_stats(u, &s);
                        if (s.blocks_sent >= cancel_after_n) {
                                r = upload_cancel(u, cancel_after_id);
                                fprintf(stderr,
                                        "uploadtool: cancel %" PRIu64 " after %" PRIu64
                                        " blocks: %d\n",
                                        cancel_after_id, s.blocks_sent, r);
                                cancel_after_done = true;
                        }
                }
                sleep_ms(20);
                pthread_mutex_lock(&st.lock);
        }
        pthread_mutex_unlock(&st.lock);
        if (progress)
                write_progress(u, progress);
        if (linger)
                sleep_ms((unsigned)linger);
        ret = 0;
        pthread_mutex_lock(&st.lock);
        printf("{");
        print_stats(u);
        printf(", \"done_calls\": {");
        for (unsigned i = 1; i <= n_files; i++) {
                bool want_cancel = i == cancel_id || i == cancel_after_id;

                printf("%s\"%u\": %u", i > 1 ? ", " : "", i, st.calls[i]);
                if (st.calls[i] != 1 || (st.errors[i] != 0 && !want_cancel))
                        ret = 1;
        }
        printf("}}\n");
        pthread_mutex_unlock(&st.lock);
        goto out;
fail:
        fprintf(stderr, "uploadtool: %s\n", strerror(-r));
out:
        upload_free(u);
        cache_free(cache);
        net_pool_free(pool);
        return ret;
}
