/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A handler's time is what a FUSE worker spent on the request. Requests answered later from
 * the completion path (a read that waits for the network, fsync waiting for a pin) count the
 * handler's part only: their network time shows in ipfs_operation_duration_seconds. Counting
 * costs two clock reads and three relaxed atomic adds per request, no lock.
 */
#include "fuse_timing.h"

#include <stdio.h>

#include "prsmfs/metrics.h"

/* op, parameters, arguments */
#define FUSE_TIMED_OPS(X)                                                                          \
        X(lookup, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))                          \
        X(forget, (fuse_req_t r, fuse_ino_t i, uint64_t n), (r, i, n))                             \
        X(forget_multi, (fuse_req_t r, size_t c, struct fuse_forget_data * f), (r, c, f))          \
        X(getattr, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info * f), (r, i, f))             \
        X(setattr, (fuse_req_t r, fuse_ino_t i, struct stat * a, int s, struct fuse_file_info *f), \
          (r, i, a, s, f))                                                                         \
        X(readlink, (fuse_req_t r, fuse_ino_t i), (r, i))                                          \
        X(mknod, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d), (r, p, n, m, d))  \
        X(mkdir, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m), (r, p, n, m))              \
        X(unlink, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))                          \
        X(rmdir, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))                           \
        X(symlink, (fuse_req_t r, const char *l, fuse_ino_t p, const char *n), (r, l, p, n))       \
        X(rename,                                                                                  \
          (fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,               \
           unsigned int f),                                                                        \
          (r, p, n, np, nn, f))                                                                    \
        X(link, (fuse_req_t r, fuse_ino_t i, fuse_ino_t p, const char *n), (r, i, p, n))           \
        X(open, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info * f), (r, i, f))                \
        X(read, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info * f),        \
          (r, i, s, o, f))                                                                         \
        X(write,                                                                                   \
          (fuse_req_t r, fuse_ino_t i, const char *b, size_t s, off_t o,                           \
           struct fuse_file_info *f),                                                              \
          (r, i, b, s, o, f))                                                                      \
        X(flush, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info * f), (r, i, f))               \
        X(release, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info * f), (r, i, f))             \
        X(fsync, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *f), (r, i, d, f))      \
        X(opendir, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info * f), (r, i, f))             \
        X(readdir, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info * f),     \
          (r, i, s, o, f))                                                                         \
        X(readdirplus, (fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info * f), \
          (r, i, s, o, f))                                                                         \
        X(releasedir, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info * f), (r, i, f))          \
        X(statfs, (fuse_req_t r, fuse_ino_t i), (r, i))                                            \
        X(setxattr, (fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t s, int f),   \
          (r, i, n, v, s, f))                                                                      \
        X(getxattr, (fuse_req_t r, fuse_ino_t i, const char *n, size_t s), (r, i, n, s))           \
        X(listxattr, (fuse_req_t r, fuse_ino_t i, size_t s), (r, i, s))                            \
        X(removexattr, (fuse_req_t r, fuse_ino_t i, const char *n), (r, i, n))                     \
        X(create, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *f), \
          (r, p, n, m, f))                                                                         \
        X(copy_file_range,                                                                         \
          (fuse_req_t r, fuse_ino_t ii, off_t oi, struct fuse_file_info * fi, fuse_ino_t io,       \
           off_t oo, struct fuse_file_info * fo, size_t l, int fl),                                \
          (r, ii, oi, fi, io, oo, fo, l, fl))

enum fuse_timed_op {
#define X(name, params, args) OP_##name,
        FUSE_TIMED_OPS(X)
#undef X
                _OP_MAX,
};

static const char *const op_names[_OP_MAX] = {
#define X(name, params, args) [OP_##name] = #name,
        FUSE_TIMED_OPS(X)
#undef X
};

static const struct fuse_lowlevel_ops *inner;
static struct fuse_lowlevel_ops wrapped;
static struct metrics_histogram durations[_OP_MAX];

static void timed(enum fuse_timed_op op, uint64_t start_ns)
{
        uint64_t now = metrics_now_ns();

        metrics_histogram_observe(&durations[op], now - start_ns);
}

#define X(name, params, args)                   \
        static void timed_##name params         \
        {                                       \
                uint64_t t0 = metrics_now_ns(); \
                                                \
                inner->name args;               \
                timed(OP_##name, t0);           \
        }
FUSE_TIMED_OPS(X)
#undef X

const struct fuse_lowlevel_ops *fuse_timing_wrap(const struct fuse_lowlevel_ops *ops)
{
        inner = ops;
        wrapped = *ops;
        for (size_t i = 0; i < _OP_MAX; i++)
                durations[i] =
                        (struct metrics_histogram)METRICS_HISTOGRAM_INIT(metrics_duration_buckets);
#define X(name, params, args) \
        if (ops->name)        \
                wrapped.name = timed_##name;
        FUSE_TIMED_OPS(X)
#undef X
        return &wrapped;
}

int fuse_timing_render(struct buf *b)
{
        char labels[48];
        int r;

        r = metrics_write_family(b, "prsmfs_fuse_operations_total", "counter",
                                 "FUSE requests handled, by operation");
        for (size_t i = 0; i < _OP_MAX && r >= 0; i++) {
                (void)snprintf(labels, sizeof(labels), "op=\"%s\"", op_names[i]);
                r = metrics_write_u64(b, "prsmfs_fuse_operations_total", labels,
                                      metrics_histogram_count(&durations[i]));
        }
        if (r >= 0)
                r = metrics_write_family(b, "prsmfs_fuse_operation_duration_seconds", "histogram",
                                         "Time a FUSE worker spent on a request, by operation");
        for (size_t i = 0; i < _OP_MAX && r >= 0; i++) {
                if (!inner || !metrics_histogram_count(&durations[i]))
                        continue; /* ops never called: no 20 empty buckets each */
                (void)snprintf(labels, sizeof(labels), "op=\"%s\"", op_names[i]);
                r = metrics_write_histogram(b, "prsmfs_fuse_operation_duration_seconds", labels,
                                            &durations[i]);
        }
        return r;
}
