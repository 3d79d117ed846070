/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Prometheus metrics: lock-free histograms and counters, the text exposition format, and the
 * HTTP endpoint (/metrics, /health) that serves what its owner renders.
 *
 * Counters that live elsewhere (fs, store, cache, net, upload stats) stay there: the owner of
 * the endpoint reads them with their getters at scrape time and writes them with the
 * metrics_write_* helpers. This module holds only what has no other home: the duration and
 * size histograms, and the outcome counters of IPFS operations (process-wide, because every
 * node pool of a process feeds the same series).
 *
 * Thread-safety: observations are relaxed atomics (no lock on the read path); rendering may
 * run concurrently with them and sees each bucket at some recent value.
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/buf.h"

/* Bucket upper bounds, in the histogram's unit (ns or bytes); +Inf is implicit. */
#define METRICS_MAX_BUCKETS 20

struct metrics_buckets {
        const uint64_t *bounds;
        size_t n;
        double scale; /* rendered value = raw / scale (1e9: ns as seconds) */
};

/* 100 us .. 60 s, as seconds */
extern const struct metrics_buckets metrics_duration_buckets;
/* 1 KiB .. 4 GiB, as bytes */
extern const struct metrics_buckets metrics_size_buckets;

struct metrics_histogram {
        const struct metrics_buckets *b;
        uint64_t counts[METRICS_MAX_BUCKETS + 1]; /* atomic; per bucket, not cumulative */
        uint64_t sum;                             /* atomic; raw units */
};

#define METRICS_HISTOGRAM_INIT(buckets) \
        {                               \
                .b = &(buckets)         \
        }

void metrics_histogram_observe(struct metrics_histogram *h, uint64_t value);
/* Observations so far. */
uint64_t metrics_histogram_count(const struct metrics_histogram *h);

/* IPFS operations as the node pool runs them (ipfs_operations_total and friends). */
enum metrics_op {
        METRICS_OP_GET,   /* a verified block fetch (net_block_get) */
        METRICS_OP_PUT,   /* a block or run upload (net_put_block, net_put_run) */
        METRICS_OP_PIN,   /* net_put_pin, net_pool_pin */
        METRICS_OP_UNPIN, /* net_pool_unpin */
        _METRICS_OP_MAX,
};

const char *metrics_op_name(enum metrics_op op);
/* Counts one operation that started at start_ns (CLOCK_MONOTONIC) and ended with r: success
 * (>= 0), cancelled (-ECANCELED, a shutdown) or error; observes its duration. */
void metrics_op_done(enum metrics_op op, int r, uint64_t start_ns);
/* The size of a block that was fetched or uploaded (ipfs_content_size_bytes). */
void metrics_content_size(uint64_t bytes);
/* CLOCK_MONOTONIC in ns. */
uint64_t metrics_now_ns(void);

struct metrics_op_counts {
        uint64_t success, error, cancelled;
};
void metrics_op_get_counts(enum metrics_op op, struct metrics_op_counts *ret);

/*
 * Text exposition (format 0.0.4). Each returns 0 or -ENOMEM/-E2BIG from the buffer. labels
 * is a ready label list without braces ("node=\"x\"") or NULL; metrics_label_escape makes a
 * label value safe (backslash, quote, line break).
 */
_wur_ int metrics_write_family(struct buf *b, const char *name, const char *type, const char *help);
_wur_ int metrics_write_value(struct buf *b, const char *name, const char *labels, double value);
_wur_ int metrics_write_u64(struct buf *b, const char *name, const char *labels, uint64_t value);
/* _bucket, _sum and _count lines of h (the family header is the caller's). */
_wur_ int metrics_write_histogram(struct buf *b, const char *name, const char *labels,
                                  const struct metrics_histogram *h);
/* The process-wide IPFS series: ipfs_operations_total, ipfs_operation_duration_seconds,
 * ipfs_content_size_bytes (families included). */
_wur_ int metrics_write_ipfs_ops(struct buf *b);
/* Writes value escaped into out (size bytes, NUL-terminated, cut if needed). */
void metrics_label_escape(const char *value, char *out, size_t size);
/* printf into b; -E2BIG/-ENOMEM. */
_printf_(2, 3) _wur_ int metrics_printf(struct buf *b, const char *fmt, ...);

/* Gzip (RFC 1952) of in into out (reset first). 0, -ENOMEM, -E2BIG or -EIO. */
_wur_ int metrics_gzip(const void *in, size_t len, struct buf *out);

/*
 * The HTTP endpoint. A listen address is "HOST:PORT" with a numeric IPv4 host,
 * "[IPv6]:PORT", or "localhost:PORT"; metrics_parse_listen says -EINVAL otherwise and, when
 * the address is not loopback, sets *ret_is_loopback false (the caller decides).
 */
_wur_ int metrics_parse_listen(const char *listen, void *ret_sockaddr, unsigned *ret_len,
                               bool *ret_is_loopback);

/* Renders /metrics into b (0 or -errno: 500). */
typedef int (*metrics_render_fn)(struct buf *b, void *userdata);
/* Renders /health into b and returns the HTTP status (200, 503), or -errno (500). Must not
 * wait on anything slow: /health answers within 100 ms whatever the nodes do. */
typedef int (*metrics_health_fn)(struct buf *b, void *userdata);

struct metrics_server_config {
        const char *listen; /* borrowed for the call */
        metrics_render_fn render;
        metrics_health_fn health;
        void *userdata; /* passed to both; must outlive the server */
};

struct metrics_server;

/* Binds and starts serving (threads: one per connection, at most 16 connections).
 * -EADDRINUSE (or another bind error) when the address cannot be bound, -EINVAL for a bad
 * address; nothing is logged: the caller says what it does about it. */
_wur_ int metrics_server_start(const struct metrics_server_config *cfg,
                               struct metrics_server **ret);
/* The port it listens on (useful with port 0). */
unsigned metrics_server_port(const struct metrics_server *s);
/* Stops serving (in-flight answers finish) and frees. NULL-safe. */
void metrics_server_stop(struct metrics_server *s);
