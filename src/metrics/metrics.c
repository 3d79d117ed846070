/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Histograms, the IPFS operation counters and the Prometheus text format. An observation is
 * a bucket search over at most 20 bounds and two relaxed atomic adds: cheap enough for every
 * FUSE request and every block. Buckets are stored per bucket and summed into Prometheus's
 * cumulative form only when rendered, so observers never touch more than one bucket.
 */
#include "prsmfs/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

static const uint64_t duration_bounds[] = {
        100000ull,     250000ull,     500000ull,     1000000ull,     2500000ull,     5000000ull,
        10000000ull,   25000000ull,   50000000ull,   100000000ull,   250000000ull,   500000000ull,
        1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull,
};
const struct metrics_buckets metrics_duration_buckets = { .bounds = duration_bounds,
                                                          .n = ELEMENTSOF(duration_bounds),
                                                          .scale = 1e9 };

static const uint64_t size_bounds[] = {
        1ull << 10, 4ull << 10,  16ull << 10, 64ull << 10,  256ull << 10, 1ull << 20, 2ull << 20,
        4ull << 20, 16ull << 20, 64ull << 20, 256ull << 20, 1ull << 30,   4ull << 30,
};
const struct metrics_buckets metrics_size_buckets = { .bounds = size_bounds,
                                                      .n = ELEMENTSOF(size_bounds),
                                                      .scale = 1 };

_Static_assert(ELEMENTSOF(duration_bounds) <= METRICS_MAX_BUCKETS, "too many buckets");
_Static_assert(ELEMENTSOF(size_bounds) <= METRICS_MAX_BUCKETS, "too many buckets");

uint64_t metrics_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void metrics_histogram_observe(struct metrics_histogram *h, uint64_t value)
{
        size_t i = 0;

        while (i < h->b->n && value > h->b->bounds[i])
                i++;
        __atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&h->sum, value, __ATOMIC_RELAXED);
}

uint64_t metrics_histogram_count(const struct metrics_histogram *h)
{
        uint64_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(h->counts); i++)
                n += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
        return n;
}

/* ---- IPFS operations ---- */

static const char *const op_names[_METRICS_OP_MAX] = {
        [METRICS_OP_GET] = "get",
        [METRICS_OP_PUT] = "put",
        [METRICS_OP_PIN] = "pin",
        [METRICS_OP_UNPIN] = "unpin",
};

static struct metrics_op_counts op_counts[_METRICS_OP_MAX]; /* atomic */
static struct metrics_histogram op_durations[_METRICS_OP_MAX] = {
        [METRICS_OP_GET] = METRICS_HISTOGRAM_INIT(metrics_duration_buckets),
        [METRICS_OP_PUT] = METRICS_HISTOGRAM_INIT(metrics_duration_buckets),
        [METRICS_OP_PIN] = METRICS_HISTOGRAM_INIT(metrics_duration_buckets),
        [METRICS_OP_UNPIN] = METRICS_HISTOGRAM_INIT(metrics_duration_buckets),
};
static struct metrics_histogram content_sizes = METRICS_HISTOGRAM_INIT(metrics_size_buckets);

const char *metrics_op_name(enum metrics_op op)
{
        return op < _METRICS_OP_MAX ? op_names[op] : "unknown";
}

void metrics_op_done(enum metrics_op op, int r, uint64_t start_ns)
{
        uint64_t now = metrics_now_ns();
        uint64_t *c;

        if (op >= _METRICS_OP_MAX)
                return;
        c = r >= 0            ? &op_counts[op].success
            : r == -ECANCELED ? &op_counts[op].cancelled
                              : &op_counts[op].error;
        __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
        metrics_histogram_observe(&op_durations[op], now > start_ns ? now - start_ns : 0);
}

void metrics_content_size(uint64_t bytes)
{
        metrics_histogram_observe(&content_sizes, bytes);
}

void metrics_op_get_counts(enum metrics_op op, struct metrics_op_counts *ret)
{
        *ret = (struct metrics_op_counts){ 0 };
        if (op >= _METRICS_OP_MAX)
                return;
        ret->success = __atomic_load_n(&op_counts[op].success, __ATOMIC_RELAXED);
        ret->error = __atomic_load_n(&op_counts[op].error, __ATOMIC_RELAXED);
        ret->cancelled = __atomic_load_n(&op_counts[op].cancelled, __ATOMIC_RELAXED);
}

/* ---- text format ---- */

int metrics_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        int n, r;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        r = buf_reserve(b, (size_t)n + 1);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

void metrics_label_escape(const char *value, char *out, size_t size)
{
        size_t o = 0;

        if (size == 0)
                return;
        for (const char *c = value; *c && o + 3 < size; c++) {
                if (*c == '\\' || *c == '"') {
                        out[o++] = '\\';
                        out[o++] = *c;
                } else if (*c == '\n') {
                        out[o++] = '\\';
                        out[o++] = 'n';
                } else
                        out[o++] = *c;
        }
        out[o] = '\0';
}

int metrics_write_family(struct buf *b, const char *name, const char *type, const char *help)
{
        return metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int metrics_write_value(struct buf *b, const char *name, const char *labels, double value)
{
        if (labels && *labels)
                return metrics_printf(b, "%s{%s} %.15g\n", name, labels, value);
        return metrics_printf(b, "%s %.15g\n", name, value);
}

int metrics_write_u64(struct buf *b, const char *name, const char *labels, uint64_t value)
{
        if (labels && *labels)
                return metrics_printf(b, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
        return metrics_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

int metrics_write_histogram(struct buf *b, const char *name, const char *labels,
                            const struct metrics_histogram *h)
{
        const char *sep = labels && *labels ? "," : "";
        const char *l = labels ? labels : "";
        uint64_t cum = 0;
        int r = 0;

        for (size_t i = 0; i <= h->b->n && r >= 0; i++) {
                cum += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
                if (i < h->b->n)
                        r = metrics_printf(b, "%s_bucket{%s%sle=\"%.9g\"} %llu\n", name, l, sep,
                                           (double)h->b->bounds[i] / h->b->scale,
                                           (unsigned long long)cum);
                else
                        r = metrics_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, l, sep,
                                           (unsigned long long)cum);
        }
        if (r >= 0)
                r = metrics_printf(b, "%s_sum%s%s%s %.15g\n%s_count%s%s%s %llu\n", name,
                                   *l ? "{" : "", l, *l ? "}" : "",
                                   (double)__atomic_load_n(&h->sum, __ATOMIC_RELAXED) / h->b->scale,
                                   name, *l ? "{" : "", l, *l ? "}" : "", (unsigned long long)cum);
        return r;
}

int metrics_write_ipfs_ops(struct buf *b)
{
        char labels[64];
        int r;

        r = metrics_write_family(b, "ipfs_operations_total", "counter",
                                 "IPFS operations by the node pool, by outcome");
        for (size_t op = 0; op < _METRICS_OP_MAX && r >= 0; op++) {
                struct metrics_op_counts c;

                metrics_op_get_counts((enum metrics_op)op, &c);
                (void)snprintf(labels, sizeof(labels), "op=\"%s\",status=\"success\"",
                               op_names[op]);
                r = metrics_write_u64(b, "ipfs_operations_total", labels, c.success);
                (void)snprintf(labels, sizeof(labels), "op=\"%s\",status=\"error\"", op_names[op]);
                if (r >= 0)
                        r = metrics_write_u64(b, "ipfs_operations_total", labels, c.error);
                (void)snprintf(labels, sizeof(labels), "op=\"%s\",status=\"cancelled\"",
                               op_names[op]);
                if (r >= 0)
                        r = metrics_write_u64(b, "ipfs_operations_total", labels, c.cancelled);
        }
        if (r >= 0)
                r = metrics_write_family(b, "ipfs_operation_duration_seconds", "histogram",
                                         "Duration of IPFS operations, all attempts and nodes");
        for (size_t op = 0; op < _METRICS_OP_MAX && r >= 0; op++) {
                (void)snprintf(labels, sizeof(labels), "op=\"%s\"", op_names[op]);
                r = metrics_write_histogram(b, "ipfs_operation_duration_seconds", labels,
                                            &op_durations[op]);
        }
        if (r >= 0)
                r = metrics_write_family(b, "ipfs_content_size_bytes", "histogram",
                                         "Sizes of the blocks fetched and uploaded");
        if (r >= 0)
                r = metrics_write_histogram(b, "ipfs_content_size_bytes", NULL, &content_sizes);
        return r;
}

/* ---- gzip ---- */

int metrics_gzip(const void *in, size_t len, struct buf *out)
{
        z_stream z = { 0 };
        uLong bound;
        int r;

        buf_clear(out);
        if (len > UINT32_MAX / 2)
                return -E2BIG; /* zlib counts in uInt */
        /* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
                return -ENOMEM;
        bound = deflateBound(&z, (uLong)len) + 32; /* + gzip header and trailer */
        r = buf_reserve_exact(out, bound);
        if (r < 0)
                goto out;
        z.next_in = (Bytef *)(uintptr_t)in;
        z.avail_in = (uInt)len;
        z.next_out = out->p;
        z.avail_out = (uInt)(out->cap - out->len);
        r = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -EIO;
        if (r == 0)
                out->len = z.total_out;
out:
        deflateEnd(&z);
        return r;
}
