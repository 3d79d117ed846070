/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netfetch: reads through the node pool, for component tests and benchmarks.
 *   netfetch [--rpc URL]... [--gateway URL]... [--timeout MS] [--stall MS] [--first-byte MS]
 *            [--parallel N]
 *            [--log FILE] [--repeat N] [--out FILE] [--auth FILE (of the node before it)]
 *            [--ca-bundle FILE] [--pool-size N] [--per-node N] (--file ROOT | CID...)
 * --file ROOT walks the UnixFS file under ROOT and writes its bytes in order; CIDs are
 * fetched as blocks (verified) and written one after the other. --log writes one line per
 * block completion "monotonic_ns index" so a test can measure stalls; a final JSON line on
 * stderr gives the pool's statistics. Exit status 0 only if every block arrived.
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

struct job {
        struct net_pool *pool;
        const struct cid *cids;
        const uint32_t *offs; /* data offset per block (file mode) */
        const uint64_t *sizes;
        size_t n;
        size_t next;               /* lock */
        struct net_block **blocks; /* lock */
        int error;                 /* lock */
        uint64_t timeout_ns;
        FILE *log;
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

static void *worker(void *arg)
{
        struct job *j = arg;

        for (;;) {
                struct net_block *b = NULL;
                size_t i;
                int r;

                pthread_mutex_lock(&j->lock);
                i = j->next++;
                pthread_mutex_unlock(&j->lock);
                if (i >= j->n)
                        return NULL;
                r = net_block_get(j->pool, &j->cids[i], net_now_ns() + j->timeout_ns, &b);
                pthread_mutex_lock(&j->lock);
                if (r < 0 && !j->error)
                        j->error = r;
                j->blocks[i] = b;
                if (j->log)
                        fprintf(j->log, "%" PRIu64 " %zu\n", net_now_ns(), i);
                pthread_cond_broadcast(&j->cond);
                pthread_mutex_unlock(&j->lock);
        }
}

static int fetch_for_layout(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        struct job *j = ud;
        struct net_block *b;
        int r = net_block_get(j->pool, cid, net_now_ns() + j->timeout_ns, &b);

        if (r < 0)
                return r;
        *ret = malloc(b->len ? b->len : 1);
        if (!*ret) {
                net_block_unref(b);
                return -ENOMEM;
        }
        memcpy(*ret, b->data, b->len);
        *ret_len = b->len;
        net_block_unref(b);
        return 0;
}

int main(int argc, char *argv[])
{
        static const struct option opts[] = {
                { "rpc", required_argument, NULL, 'r' },
                { "gateway", required_argument, NULL, 'g' },
                { "timeout", required_argument, NULL, 't' },
                { "stall", required_argument, NULL, 's' },
                { "first-byte", required_argument, NULL, 'B' },
                { "parallel", required_argument, NULL, 'p' },
                { "log", required_argument, NULL, 'l' },
                { "out", required_argument, NULL, 'o' },
                { "file", required_argument, NULL, 'f' },
                { "repeat", required_argument, NULL, 'n' },
                { "auth", required_argument, NULL, 'a' },
                { "ca-bundle", required_argument, NULL, 'C' },
                { "pool-size", required_argument, NULL, 'P' },
                { "per-node", required_argument, NULL, 'N' },
                { 0 },
        };
        struct net_node_config nodes[NET_MAX_NODES];
        struct net_config cfg = { .timeout_ms = 30000,
                                  .stall_timeout_ms = 500,
                                  .retry_base_delay_ms = 50,
                                  .retry_max_delay_ms = 2000,
                                  .retry_max_attempts = 3,
                                  .connection_pool_size = 16 };
        struct job j = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        const char *file_root = NULL, *out_path = NULL;
        uint64_t v, parallel = 8, repeat = 1;
        struct unixfs_layout layout = { 0 };
        struct cid *cids = NULL;
        uint32_t *offs = NULL;
        uint64_t *sizes = NULL;
        pthread_t th[64];
        struct net_stats st;
        size_t n = 0;
        FILE *out = stdout;
        int c, r, ret = 1;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                case 'g':
                        if (cfg.n_nodes >= NET_MAX_NODES)
                                return 2;
                        nodes[cfg.n_nodes++] = (struct net_node_config){
                                .kind = c == 'r' ? NET_NODE_RPC : NET_NODE_GATEWAY, .url = optarg
                        };
                        break;
                case 'a':
                        if (cfg.n_nodes == 0)
                                return 2;
                        nodes[cfg.n_nodes - 1].auth_file = optarg;
                        break;
                case 'C':
                        cfg.ca_bundle = optarg;
                        break;
                case 't':
                case 's':
                case 'B':
                case 'p':
                case 'n':
                case 'P':
                case 'N':
                        if (parse_u64(optarg, &v) < 0 || v > UINT32_MAX)
                                return 2;
                        if (c == 'P')
                                cfg.connection_pool_size = (unsigned)v;
                        else if (c == 'N')
                                cfg.connections_per_node = (unsigned)v;
                        else if (c == 't')
                                cfg.timeout_ms = v;
                        else if (c == 's')
                                cfg.stall_timeout_ms = v;
                        else if (c == 'B')
                                cfg.first_byte_timeout_ms = v;
                        else if (c == 'n')
                                repeat = v;
                        else
                                parallel = v < 1 ? 1 : v > 64 ? 64 : v;
                        break;
                case 'l':
                        j.log = fopen(optarg, "we");
                        if (!j.log)
                                return 2;
                        setvbuf(j.log, NULL, _IOLBF, 0);
                        break;
                case 'o':
                        out_path = optarg;
                        break;
                case 'f':
                        file_root = optarg;
                        break;
                default:
                        return 2;
                }
        }
        cfg.nodes = nodes;
        j.timeout_ns = cfg.timeout_ms * 1000000ull;
        r = net_pool_new(&cfg, &j.pool);
        if (r < 0) {
                fprintf(stderr, "netfetch: %s\n", strerror(-r));
                return 1;
        }
        if (out_path) {
                out = fopen(out_path, "we");
                if (!out)
                        goto done;
        }
        if (file_root) {
                struct cid root;

                r = cid_parse(file_root, strlen(file_root), &root);
                if (r >= 0)
                        r = unixfs_layout_build(&root, fetch_for_layout, &j, &layout);
                if (r < 0) {
                        fprintf(stderr, "netfetch: layout of %s: %s\n", file_root, strerror(-r));
                        goto done;
                }
                n = layout.n_leaves;
                cids = calloc(n ? n : 1, sizeof(*cids));
                offs = calloc(n ? n : 1, sizeof(*offs));
                sizes = calloc(n ? n : 1, sizeof(*sizes));
                if (!cids || !offs || !sizes)
                        goto done;
                for (size_t i = 0; i < n; i++) {
                        cids[i] = layout.leaves[i].cid;
                        offs[i] = layout.leaves[i].data_off;
                        sizes[i] = layout.leaves[i].size;
                }
        } else {
                n = (size_t)(argc - optind);
                cids = calloc(n ? n : 1, sizeof(*cids));
                if (!cids)
                        goto done;
                for (size_t i = 0; i < n; i++)
                        if (cid_parse(argv[optind + i], strlen(argv[optind + i]), &cids[i]) < 0) {
                                fprintf(stderr, "netfetch: bad CID %s\n", argv[optind + i]);
                                goto done;
                        }
        }
        j.cids = cids;
        j.offs = offs;
        j.sizes = sizes;
        j.n = n;
        j.blocks = calloc(n ? n : 1, sizeof(*j.blocks));
        if (!j.blocks)
                goto done;
        for (uint64_t rep = 0; rep < repeat; rep++) {
                size_t written = 0;

                j.next = 0;
                for (uint64_t t = 0; t < parallel; t++)
                        if (pthread_create(&th[t], NULL, worker, &j) != 0)
                                goto done;
                /* write in order as blocks arrive */
                pthread_mutex_lock(&j.lock);
                while (written < n) {
                        while (!j.blocks[written] && !j.error)
                                pthread_cond_wait(&j.cond, &j.lock);
                        if (!j.blocks[written])
                                break;
                        {
                                struct net_block *b = j.blocks[written];
                                size_t off = offs ? offs[written] : 0;
                                size_t len = sizes ? sizes[written] : b->len;

                                pthread_mutex_unlock(&j.lock);
                                if (off + len > b->len ||
                                    (rep + 1 == repeat &&
                                     fwrite(b->data + off, 1, len, out) != len))
                                        j.error = -EIO;
                                pthread_mutex_lock(&j.lock);
                                net_block_unref(b);
                                j.blocks[written] = NULL;
                        }
                        written++;
                }
                pthread_mutex_unlock(&j.lock);
                for (uint64_t t = 0; t < parallel; t++)
                        pthread_join(th[t], NULL);
                for (size_t i = 0; i < n; i++) {
                        net_block_unref(j.blocks[i]);
                        j.blocks[i] = NULL;
                }
                if (j.error)
                        break;
        }
        if (j.error)
                fprintf(stderr, "netfetch: %s\n", strerror(-j.error));
        else
                ret = 0;
done:
        net_pool_get_stats(j.pool, &st);
        net_pool_free(j.pool); /* no more log lines from its threads past this point */
        fflush(stderr);
        fprintf(stderr,
                "{\"fetches\": %" PRIu64 ", \"dedup_hits\": %" PRIu64 ", \"failures\": %" PRIu64
                ", \"nodes\": [",
                st.fetches, st.dedup_hits, st.failures);
        for (size_t i = 0; i < st.n_nodes; i++)
                fprintf(stderr,
                        "%s{\"url\": \"%s\", \"state\": %d, \"requests\": %" PRIu64
                        ", \"errors\": %" PRIu64 ", \"timeouts\": %" PRIu64
                        ", \"bad_blocks\": %" PRIu64 ", \"bytes\": %" PRIu64 "}",
                        i ? ", " : "", st.nodes[i].url, st.nodes[i].state, st.nodes[i].requests,
                        st.nodes[i].errors, st.nodes[i].timeouts, st.nodes[i].bad_blocks,
                        st.nodes[i].bytes);
        fprintf(stderr, "]}\n");
        if (out && out != stdout && fclose(out) != 0)
                ret = 1;
        unixfs_layout_done(&layout);
        free(cids);
        free(offs);
        free(sizes);
        free(j.blocks);
        if (j.log)
                fclose(j.log);
        return ret;
}
