/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netput: uploads a file through the node pool the way the uploader does, for component
 * tests and benchmarks.
 *   netput [--rpc URL [--auth FILE]]... [--pin-service URL [--auth FILE]]... [--parallel N]
 *          [--replicas N] [--chunk BYTES] [--legacy] [--timeout MS] [--stall MS]
 *          [--has-timeout MS] [--log FILE] [--no-pin] FILE
 * Builds the file's DAG with the UnixFS builder (same CIDs as `add`), puts every block with
 * N workers on one session, and on -ENOTCONN starts a resumed session on another node and
 * sends the DAG again (only what that node lacks travels); then pins the root. --log writes
 * "monotonic_ns session index result" per block. Prints one JSON line on stdout: root, block
 * count, and per session the node, blocks sent and skipped; exit status 0 only if every
 * block landed and the pin was confirmed.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prsmfs/net.h"
#include "prsmfs/parse.h"
#include "prsmfs/unixfs.h"

#define MAX_SESSIONS 8

struct block {
        struct cid cid;
        uint8_t *data;
        size_t len;
};

struct dag {
        struct block *b;
        size_t n, cap;
};

struct job {
        const struct dag *dag;
        struct net_put *put;
        size_t next;            /* lock */
        int error;              /* lock: first error */
        unsigned sent, skipped; /* lock */
        unsigned session;
        uint64_t timeout_ns;
        FILE *log;
        pthread_mutex_t lock;
};

static int collect(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct dag *d = ud;

        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 64;
                struct block *nb = reallocarray(d->b, cap, sizeof(*nb));

                if (!nb)
                        return -ENOMEM;
                d->b = nb;
                d->cap = cap;
        }
        d->b[d->n] = (struct block){ .cid = *cid, .len = len, .data = malloc(len ? len : 1) };
        if (!d->b[d->n].data)
                return -ENOMEM;
        memcpy(d->b[d->n].data, block, len);
        d->n++;
        return 0;
}

static int build(const struct unixfs_params *p, const char *path, struct dag *d, struct cid *root)
{
        static uint8_t buf[1 << 20];
        struct unixfs_builder *b = NULL;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = unixfs_builder_new(p, collect, d, &b);
        while (r >= 0) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0)
                        r = -errno;
                else if (n == 0) {
                        r = unixfs_builder_finish(b, root, NULL, NULL);
                        break;
                } else
                        r = unixfs_builder_write(b, buf, (size_t)n);
        }
        if (b)
                unixfs_builder_free(b);
        close(fd);
        return r;
}

static void *worker(void *arg)
{
        struct job *j = arg;

        for (;;) {
                const struct block *b;
                size_t i;
                int r;

                pthread_mutex_lock(&j->lock);
                i = j->next++;
                r = j->error;
                pthread_mutex_unlock(&j->lock);
                if (i >= j->dag->n || r < 0)
                        return NULL;
                b = &j->dag->b[i];
                r = net_put_block(j->put, &b->cid, b->data, b->len, net_now_ns() + j->timeout_ns);
                pthread_mutex_lock(&j->lock);
                if (r < 0 && !j->error)
                        j->error = r;
                if (r == 0)
                        j->sent++;
                else if (r == 1)
                        j->skipped++;
                if (j->log)
                        fprintf(j->log, "%" PRIu64 " %u %zu %d\n", net_now_ns(), j->session, i, r);
                pthread_mutex_unlock(&j->lock);
        }
}

int main(int argc, char *argv[])
{
        static const struct option opts[] = {
                { "rpc", required_argument, NULL, 'r' },
                { "pin-service", required_argument, NULL, 'S' },
                { "auth", required_argument, NULL, 'a' },
                { "parallel", required_argument, NULL, 'p' },
                { "replicas", required_argument, NULL, 'R' },
                { "chunk", required_argument, NULL, 'c' },
                { "legacy", no_argument, NULL, 'L' },
                { "timeout", required_argument, NULL, 't' },
                { "stall", required_argument, NULL, 's' },
                { "has-timeout", required_argument, NULL, 'H' },
                { "log", required_argument, NULL, 'l' },
                { "no-pin", no_argument, NULL, 'N' },
                { 0 },
        };
        struct net_node_config nodes[NET_MAX_NODES];
        struct net_pinning_service_config services[NET_MAX_NODES];
        struct net_config cfg = { .timeout_ms = 60000,
                                  .stall_timeout_ms = 1000,
                                  .retry_base_delay_ms = 50,
                                  .retry_max_delay_ms = 2000,
                                  .retry_max_attempts = 3,
                                  .connection_pool_size = 16,
                                  .parallel_uploads = 5 };
        struct job j = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct unixfs_params up;
        uint64_t v, parallel = 5, replicas = 1, chunk = 0;
        bool legacy = false, pin = true, last_is_service = false;
        struct net_pool *pool = NULL;
        struct dag dag = { 0 };
        struct net_stats st;
        char rootstr[CID_MAX_STR];
        struct cid root;
        pthread_t th[64];
        unsigned session = 0;
        int c, r, pin_r = 0, ret = 1;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        if (cfg.n_nodes >= NET_MAX_NODES)
                                return 2;
                        nodes[cfg.n_nodes++] =
                                (struct net_node_config){ .kind = NET_NODE_RPC, .url = optarg };
                        last_is_service = false;
                        break;
                case 'S':
                        if (cfg.n_pinning_services >= NET_MAX_NODES)
                                return 2;
                        services[cfg.n_pinning_services++] =
                                (struct net_pinning_service_config){ .url = optarg };
                        last_is_service = true;
                        break;
                case 'a':
                        if (last_is_service && cfg.n_pinning_services)
                                services[cfg.n_pinning_services - 1].auth_file = optarg;
                        else if (!last_is_service && cfg.n_nodes)
                                nodes[cfg.n_nodes - 1].auth_file = optarg;
                        else
                                return 2;
                        break;
                case 'L':
                        legacy = true;
                        break;
                case 'N':
                        pin = false;
                        break;
                case 'l':
                        j.log = fopen(optarg, "we");
                        if (!j.log)
                                return 2;
                        setvbuf(j.log, NULL, _IOLBF, 0);
                        break;
                default:
                        if (c == '?' || parse_u64(optarg, &v) < 0)
                                return 2;
                        if (c == 'p')
                                parallel = v < 1 ? 1 : v > 64 ? 64 : v;
                        else if (c == 'R')
                                replicas = v;
                        else if (c == 'c')
                                chunk = v;
                        else if (c == 't')
                                cfg.timeout_ms = v;
                        else if (c == 's')
                                cfg.stall_timeout_ms = v;
                        else if (c == 'H')
                                cfg.has_timeout_ms = v;
                        break;
                }
        }
        if (optind + 1 != argc)
                return 2;
        cfg.nodes = nodes;
        cfg.pinning_services = services;
        cfg.parallel_uploads = (unsigned)parallel;
        j.timeout_ns = cfg.timeout_ms * 1000000ull;
        unixfs_params_profile(legacy ? UNIXFS_PROFILE_LEGACY : UNIXFS_PROFILE_DEFAULT, &up);
        if (chunk)
                up.chunk_size = chunk;
        r = build(&up, argv[optind], &dag, &root);
        if (r < 0) {
                fprintf(stderr, "netput: building the DAG of %s: %s\n", argv[optind], strerror(-r));
                goto done;
        }
        r = net_pool_new(&cfg, &pool);
        if (r < 0) {
                fprintf(stderr, "netput: %s\n", strerror(-r));
                goto done;
        }
        j.dag = &dag;
        printf("{\"root\": \"%s\", \"blocks\": %zu, \"sessions\": [", cid_to_string(&root, rootstr),
               dag.n);
        for (session = 0; session < MAX_SESSIONS; session++) {
                uint64_t t;

                r = net_put_begin(pool, session > 0, &j.put);
                if (r < 0) {
                        fprintf(stderr, "netput: no write node: %s\n", strerror(-r));
                        break;
                }
                j.next = 0;
                j.error = 0;
                j.sent = j.skipped = 0;
                j.session = session;
                for (t = 0; t < parallel; t++)
                        if (pthread_create(&th[t], NULL, worker, &j) != 0)
                                break;
                for (uint64_t k = 0; k < t; k++)
                        pthread_join(th[k], NULL);
                r = t == parallel ? j.error : -EAGAIN;
                if (r >= 0 && pin)
                        r = pin_r = net_put_pin(j.put, &root, (unsigned)replicas,
                                                net_now_ns() + j.timeout_ns);
                printf("%s{\"node\": \"%s\", \"sent\": %u, \"skipped\": %u, \"result\": %d}",
                       session ? ", " : "", net_put_node_url(j.put), j.sent, j.skipped, r);
                net_put_free(j.put);
                j.put = NULL;
                if (r != -ENOTCONN)
                        break;
        }
        net_pool_get_stats(pool, &st);
        printf("], \"puts\": %" PRIu64 ", \"put_bytes\": %" PRIu64 ", \"put_skips\": %" PRIu64
               ", \"pins\": %" PRIu64 ", \"pin_failures\": %" PRIu64 "}\n",
               st.puts, st.put_bytes, st.put_skips, st.pins, st.pin_failures);
        if (r < 0)
                fprintf(stderr, "netput: %s%s\n", pin_r < 0 ? "pin: " : "", strerror(-r));
        else
                ret = 0;
done:
        net_pool_free(pool);
        for (size_t i = 0; i < dag.n; i++)
                free(dag.b[i].data);
        free(dag.b);
        if (j.log)
                fclose(j.log);
        return ret;
}
