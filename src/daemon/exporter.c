/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The series of /metrics (docs/operations.md lists them) and the /health answer. Counters
 * are the modules' own, read through their stats getters: nothing here counts twice. Only
 * ipfs_error_rate is derived: the share of failed IPFS operations over about the last
 * minute, from snapshots taken at scrapes (at most one per 10 s, kept 2 minutes), since the
 * start when no scrape is older than 10 s.
 *
 * /health reads the node states (the pool's lock is never held across I/O) and the upload
 * queue's length (the uploader's lock likewise), and nothing else: no SQLite, no network, so
 * it answers at once while every node hangs.
 *
 * Node URLs are labels with any user:password removed (log_redact_urls).
 */
#define LOG_MODULE "daemon"
#include "exporter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "prsmfs/cache.h"
#include "prsmfs/fs.h"
#include "prsmfs/index.h"
#include "prsmfs/log.h"
#include "prsmfs/metrics.h"
#include "prsmfs/net.h"
#include "prsmfs/prsm.h"
#include "prsmfs/store.h"
#include "prsmfs/upload.h"

#include "follow.h"
#include "fuse_timing.h"

#define RATE_SLOTS      12
#define RATE_SPACING_NS (10ull * 1000000000ull)
#define RATE_WINDOW_NS  (60ull * 1000000000ull)

struct rate_sample {
        uint64_t at_ns, ops, errors;
};

struct exporter {
        struct exporter_sources src;
        struct metrics_server *server;
        pthread_mutex_t lock;                   /* the samples; never held across I/O */
        struct rate_sample samples[RATE_SLOTS]; /* lock; ring, at_ns 0 = empty */
        size_t next;                            /* lock */
};

static const char *const state_names[_NET_STATE_MAX] = {
        [NET_STATE_UP] = "up",
        [NET_STATE_SUSPECT] = "suspect",
        [NET_STATE_DOWN] = "down",
        [NET_STATE_DISABLED] = "disabled",
};

/* The node's URL without credentials, escaped for a label value. */
static void node_label(const struct net_node_stats *n, char *out, size_t size)
{
        char url[NET_MAX_URL + 1];

        (void)snprintf(url, sizeof(url), "%s", n->url);
        log_redact_urls(url);
        metrics_label_escape(url, out, size);
}

/* Failed / all IPFS operations since the baseline sample (see the top). */
static double error_rate(struct exporter *e)
{
        uint64_t now = metrics_now_ns(), ops = 0, errors = 0;
        struct rate_sample base = { 0 }, *last;
        double rate;

        for (size_t op = 0; op < _METRICS_OP_MAX; op++) {
                struct metrics_op_counts c;

                metrics_op_get_counts((enum metrics_op)op, &c);
                ops += c.success + c.error;
                errors += c.error;
        }
        pthread_mutex_lock(&e->lock);
        for (size_t i = 0; i < RATE_SLOTS; i++) {
                const struct rate_sample *s = &e->samples[i];

                /* the oldest sample within the window */
                if (s->at_ns && now - s->at_ns <= RATE_WINDOW_NS &&
                    (!base.at_ns || s->at_ns < base.at_ns))
                        base = *s;
        }
        last = &e->samples[(e->next + RATE_SLOTS - 1) % RATE_SLOTS];
        if (!last->at_ns || now - last->at_ns >= RATE_SPACING_NS) {
                e->samples[e->next] =
                        (struct rate_sample){ .at_ns = now, .ops = ops, .errors = errors };
                e->next = (e->next + 1) % RATE_SLOTS;
        }
        pthread_mutex_unlock(&e->lock);
        if (base.at_ns && now - base.at_ns < RATE_SPACING_NS)
                base = (struct rate_sample){ 0 }; /* too recent to say much: since the start */
        rate = ops > base.ops ? (double)(errors - base.errors) / (double)(ops - base.ops) : 0.0;
        return rate;
}

#define W(call)                     \
        do {                        \
                if (r >= 0)         \
                        r = (call); \
        } while (0)

static int render_nodes(struct buf *b, const struct net_stats *ns)
{
        char node[3 * NET_MAX_URL], labels[4 * NET_MAX_URL];
        int r = 0;

        W(metrics_write_family(b, "ipfs_node_health", "gauge",
                               "1 when the node is up (used first), 0 when suspect, down or "
                               "disabled"));
        for (size_t i = 0; i < ns->n_nodes; i++) {
                node_label(&ns->nodes[i], node, sizeof(node));
                (void)snprintf(labels, sizeof(labels), "node=\"%s\",kind=\"%s\"", node,
                               ns->nodes[i].kind == NET_NODE_RPC ? "rpc" : "gateway");
                W(metrics_write_u64(b, "ipfs_node_health", labels,
                                    ns->nodes[i].state == NET_STATE_UP));
        }
        W(metrics_write_family(b, "prsmfs_node_state", "gauge",
                               "1 for the state a node is in, 0 for the others"));
        for (size_t i = 0; i < ns->n_nodes; i++) {
                node_label(&ns->nodes[i], node, sizeof(node));
                for (size_t k = 0; k < _NET_STATE_MAX; k++) {
                        (void)snprintf(labels, sizeof(labels), "node=\"%s\",state=\"%s\"", node,
                                       state_names[k]);
                        W(metrics_write_u64(b, "prsmfs_node_state", labels,
                                            ns->nodes[i].state == k));
                }
        }
        W(metrics_write_family(b, "prsmfs_node_latency_seconds", "gauge",
                               "Moving average of a node's time to a whole block"));
        for (size_t i = 0; i < ns->n_nodes; i++) {
                node_label(&ns->nodes[i], node, sizeof(node));
                (void)snprintf(labels, sizeof(labels), "node=\"%s\"", node);
                W(metrics_write_value(b, "prsmfs_node_latency_seconds", labels,
                                      ns->nodes[i].latency_ms / 1000.0));
        }
        W(metrics_write_family(b, "prsmfs_node_requests_total", "counter",
                               "Requests sent to a node"));
        for (size_t i = 0; i < ns->n_nodes; i++) {
                node_label(&ns->nodes[i], node, sizeof(node));
                (void)snprintf(labels, sizeof(labels), "node=\"%s\"", node);
                W(metrics_write_u64(b, "prsmfs_node_requests_total", labels,
                                    ns->nodes[i].requests));
        }
        W(metrics_write_family(b, "prsmfs_node_failures_total", "counter",
                               "Requests to a node that failed, by reason"));
        for (size_t i = 0; i < ns->n_nodes; i++) {
                const struct net_node_stats *n = &ns->nodes[i];
                const struct {
                        const char *name;
                        uint64_t v;
                } reasons[] = {
                        { "error", n->errors },
                        { "timeout", n->timeouts },
                        { "bad_block", n->bad_blocks },
                        { "throttled", n->throttled },
                };

                node_label(n, node, sizeof(node));
                for (size_t k = 0; k < ELEMENTSOF(reasons); k++) {
                        (void)snprintf(labels, sizeof(labels), "node=\"%s\",reason=\"%s\"", node,
                                       reasons[k].name);
                        W(metrics_write_u64(b, "prsmfs_node_failures_total", labels, reasons[k].v));
                }
        }
        return r;
}

struct counter {
        const char *name, *type, *help, *labels;
        uint64_t value;
};

static int render_counters(struct buf *b, const struct counter *c, size_t n)
{
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                /* consecutive entries of one name share its header */
                if (i == 0 || strcmp(c[i].name, c[i - 1].name) != 0)
                        W(metrics_write_family(b, c[i].name, c[i].type, c[i].help));
                W(metrics_write_u64(b, c[i].name, c[i].labels, c[i].value));
        }
        return r;
}

/* A follow mount: resolves, their failures, switches, roots refused, the shown root's age. */
static int render_follow(struct buf *b, struct daemon_follow *f, const struct fs_stats *fst)
{
        uint64_t resolves, failures, switched = 0, now = (uint64_t)time(NULL);
        struct cid root;
        bool has_root;
        int r = 0;

        pthread_mutex_lock(&f->lock);
        resolves = f->resolves;
        failures = f->failures;
        pthread_mutex_unlock(&f->lock);
        has_root = fs_follow_root(f->fs, &root, &switched);
        const struct counter counters[] = {
                { "prsmfs_follow_resolves_total", "counter",
                  "Rounds of the follow mount's resolve (IPNS name/resolve, then the switch)", NULL,
                  resolves },
                { "prsmfs_follow_failures_total", "counter",
                  "Rounds that failed (no node resolved the name, or its root was refused)", NULL,
                  failures },
                { "prsmfs_follow_switches_total", "counter", "Roots the follow mount switched to",
                  NULL, fst->follow_switches },
                { "prsmfs_follow_rejected_total", "counter",
                  "Resolved roots refused (not a UnixFS directory, or not fetched)", NULL,
                  fst->follow_rejected },
        };
        W(render_counters(b, counters, ELEMENTSOF(counters)));
        W(metrics_write_family(b, "prsmfs_follow_root_age_seconds", "gauge",
                               "Seconds since the follow mount switched to the root it shows (-1: "
                               "none shown, or shown since the start)"));
        W(metrics_write_value(b, "prsmfs_follow_root_age_seconds", NULL,
                              has_root && switched && now >= switched ? (double)(now - switched)
                                                                      : -1.0));
        return r;
}

static int render(struct buf *b, void *userdata)
{
        struct exporter *e = userdata;
        const struct exporter_sources *s = &e->src;
        struct store_stats ss = { 0 };
        struct cache_stats cs = { 0 };
        struct upload_stats us = { 0 };
        struct fs_stats fst = { 0 };
        struct prsm_stats ps = { 0 };
        uint64_t in = 0, held = 0, owed = 0, inodes = 0, bytes = 0, file_bytes = 0;
        struct net_stats *ns;
        struct stat st;
        int r = 0;

        ns = calloc(1, sizeof(*ns));
        if (!ns)
                return -ENOMEM;
        if (s->net)
                net_pool_get_stats(s->net, ns);
        if (s->store)
                store_get_stats(s->store, &ss);
        if (s->cache)
                cache_get_stats(s->cache, &cs);
        if (s->upload)
                upload_get_stats(s->upload, &us);
        if (s->fs)
                fs_get_stats(s->fs, &fst);
        if (s->prsm)
                prsm_get_stats(s->prsm, &ps);
        /* SQLite, but on the endpoint's own thread: no FUSE worker waits for it */
        if (s->idx && (index_pin_counts(s->idx, &held, &owed) < 0 ||
                       index_totals(s->idx, &inodes, &bytes) < 0))
                log_debug("cannot read the index's totals for /metrics, ignoring");
        if (s->index_path && stat(s->index_path, &st) == 0)
                file_bytes = (uint64_t)st.st_size;
        for (size_t i = 0; i < ns->n_nodes; i++)
                in += ns->nodes[i].bytes;

        W(render_nodes(b, ns));
        W(metrics_write_ipfs_ops(b));
        W(metrics_write_family(b, "ipfs_error_rate", "gauge",
                               "Share of IPFS operations that failed over about the last minute"));
        W(metrics_write_value(b, "ipfs_error_rate", NULL, error_rate(e)));
        const struct counter counters[] = {
                { "ipfs_cache_hits_total", "counter", "Blocks served from the memory or disk cache",
                  NULL, ss.mem_hits + ss.disk_hits },
                { "ipfs_cache_misses_total", "counter", "Blocks fetched from the network", NULL,
                  ss.fetches + ss.fetch_errors },
                { "ipfs_bandwidth_usage", "counter", "Block bytes received and sent",
                  "direction=\"in\"", in },
                { "ipfs_bandwidth_usage", "counter", NULL, "direction=\"out\"", ns->put_bytes },
                { "prsmfs_store_hits_total", "counter", "Cache hits by tier", "tier=\"memory\"",
                  ss.mem_hits },
                { "prsmfs_store_hits_total", "counter", NULL, "tier=\"disk\"", ss.disk_hits },
                { "prsmfs_readahead_blocks_total", "counter", "Blocks queued by readahead", NULL,
                  fst.readahead_blocks },
                { "prsmfs_readahead_hits_total", "counter",
                  "Reads served by a block readahead fetched", NULL, ss.prefetch_hits },
                { "prsmfs_cache_bytes", "gauge", "Bytes in the on-disk block cache", NULL,
                  cs.bytes },
                { "prsmfs_cache_evictions_total", "counter", "Blocks evicted from the disk cache",
                  NULL, cs.evictions },
                { "prsmfs_cache_put_errors_total", "counter",
                  "Blocks the disk cache could not store (full disk, I/O errors)", NULL,
                  cs.put_errors },
                { "prsmfs_memory_cache_bytes", "gauge", "Bytes of blocks held in memory", NULL,
                  ss.mem_bytes },
                { "prsmfs_reads_total", "counter", "FUSE reads answered", NULL, fst.reads },
                { "prsmfs_read_bytes_total", "counter", "Bytes returned by FUSE reads", NULL,
                  fst.read_bytes },
                { "prsmfs_read_errors_total", "counter", "FUSE reads that failed", NULL,
                  fst.read_errors },
                { "prsmfs_upload_queue_depth", "gauge",
                  "Upload jobs queued or running (files closed but not yet pinned)", NULL,
                  us.jobs_queued + us.jobs_running },
                { "prsmfs_uploads_total", "counter", "Upload jobs by outcome", "status=\"done\"",
                  us.jobs_done },
                { "prsmfs_uploads_total", "counter", NULL, "status=\"cancelled\"",
                  us.jobs_cancelled },
                { "prsmfs_uploads_failed_total", "counter",
                  "Upload attempts that failed (each is retried)", NULL, us.attempts_failed },
                { "prsmfs_uploads_urged_total", "counter",
                  "Uploads an fsync moved ahead of the queue or out of a retry backoff", NULL,
                  us.jobs_urged },
                { "prsmfs_pins_pending", "gauge",
                  "Pins owed: roots of queued uploads (pin), unpins not yet sent (unpin)",
                  "op=\"pin\"", us.jobs_queued + us.jobs_running },
                { "prsmfs_pins_pending", "gauge", NULL, "op=\"unpin\"", owed },
                { "prsmfs_pins_held", "gauge", "Published roots prsmfs keeps pinned", NULL, held },
                { "prsmfs_pin_failures_total", "counter",
                  "Pins that failed: of uploads (upload), of the pin worker (pin_worker)",
                  "source=\"upload\"", ns->pin_failures },
                { "prsmfs_pin_failures_total", "counter", NULL, "source=\"pin_worker\"",
                  fst.pin_failures },
                { "prsmfs_index_inodes", "gauge", "Inodes in the index", NULL, inodes },
                { "prsmfs_index_content_bytes", "gauge", "Bytes of the files in the index", NULL,
                  bytes },
                { "prsmfs_index_file_bytes", "gauge", "Size of the index database file", NULL,
                  file_bytes },
                { "prsmfs_provenance_records_total", "counter",
                  "PRSM provenance records written to the index (docs/prsm.md)", NULL,
                  ps.records_written },
                { "prsmfs_provenance_record_errors_total", "counter",
                  "PRSM provenance events dropped or not written", NULL, ps.record_errors },
                { "prsmfs_ledger_accesses_total", "counter",
                  "Opens written to the PRSM access ledger", NULL, ps.accesses_ledgered },
                { "prsmfs_ledger_flushes_total", "counter",
                  "Batches of access counts written to the ledger", NULL, ps.ledger_flushes },
                { "prsmfs_prsm_parts_verified_total", "counter",
                  "Shards and wrapped data of PRSM content whose sha256 matched", "result=\"ok\"",
                  fst.prsm_parts_ok },
                { "prsmfs_prsm_parts_verified_total", "counter", NULL, "result=\"mismatch\"",
                  fst.prsm_parts_bad },
        };
        W(render_counters(b, counters, ELEMENTSOF(counters)));
        if (s->follow)
                W(render_follow(b, s->follow, &fst));
        W(fuse_timing_render(b));
        free(ns);
        return r;
}

/* healthy: every node up; degraded: some node up or suspect; unhealthy: none usable. */
static int health(struct buf *b, void *userdata)
{
        struct exporter *e = userdata;
        struct upload_stats us = { 0 };
        size_t up = 0, usable = 0;
        const char *status;
        json_t *o = NULL, *details;
        struct net_stats *ns;
        char *text = NULL;
        int r = -ENOMEM;

        ns = calloc(1, sizeof(*ns));
        if (!ns)
                return -ENOMEM;
        if (e->src.net)
                net_pool_get_stats(e->src.net, ns);
        if (e->src.upload)
                upload_get_stats(e->src.upload, &us);
        details = json_array();
        for (size_t i = 0; details && i < ns->n_nodes; i++) {
                const struct net_node_stats *n = &ns->nodes[i];
                char url[NET_MAX_URL + 1];

                up += n->state == NET_STATE_UP;
                usable += n->state == NET_STATE_UP || n->state == NET_STATE_SUSPECT;
                (void)snprintf(url, sizeof(url), "%s", n->url);
                log_redact_urls(url);
                if (json_array_append_new(details,
                                          json_pack("{s:s, s:s, s:s, s:f}", "url", url, "kind",
                                                    n->kind == NET_NODE_RPC ? "rpc" : "gateway",
                                                    "state", state_names[n->state], "latency_ms",
                                                    n->latency_ms)) < 0)
                        goto out;
        }
        status = up == ns->n_nodes && up ? "healthy" : usable ? "degraded" : "unhealthy";
        o = json_pack("{s:s, s:{s:I, s:I, s:I}, s:o, s:I, s:{s:I, s:I}}", "status", status, "nodes",
                      "total", (json_int_t)ns->n_nodes, "healthy", (json_int_t)up, "unhealthy",
                      (json_int_t)(ns->n_nodes - up), "details", details, "upload_backlog",
                      (json_int_t)(us.jobs_queued + us.jobs_running), "uploads", "queued",
                      (json_int_t)us.jobs_queued, "running", (json_int_t)us.jobs_running);
        details = NULL; /* o owns it, or json_pack freed it */
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!text || buf_append(b, text, strlen(text)) < 0 || buf_append_byte(b, '\n') < 0)
                goto out;
        r = strcmp(status, "unhealthy") == 0 ? 503 : 200;
out:
        free(text);
        json_decref(o);
        json_decref(details);
        free(ns);
        return r;
}

int exporter_start(const char *listen, const struct exporter_sources *src, struct exporter **ret)
{
        struct exporter *e = calloc(1, sizeof(*e));
        int r;

        if (!e)
                return -ENOMEM;
        e->src = *src;
        pthread_mutex_init(&e->lock, NULL);
        r = metrics_server_start(
                &(struct metrics_server_config){
                        .listen = listen, .render = render, .health = health, .userdata = e },
                &e->server);
        if (r < 0) {
                pthread_mutex_destroy(&e->lock);
                free(e);
                return r;
        }
        *ret = e;
        return 0;
}

void exporter_stop(struct exporter *e)
{
        if (!e)
                return;
        metrics_server_stop(e->server);
        pthread_mutex_destroy(&e->lock);
        free(e);
}

struct exporter *exporter_start_or_warn(const char *listen, const struct exporter_sources *src)
{
        struct exporter *e = NULL;
        int r;

        if (!listen)
                return NULL;
        r = exporter_start(listen, src, &e);
        if (r == -EADDRINUSE)
                log_warning("metrics: %s is in use (another prsmfs mount?): no /metrics or "
                            "/health for this mount; give each mount its own metrics_listen",
                            listen);
        else if (r < 0)
                log_warning_errno(r, "metrics: cannot serve /metrics and /health on %s, ignoring",
                                  listen);
        else
                log_info("metrics: /metrics and /health on %s", listen);
        return r < 0 ? NULL : e;
}
