/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prsmfs/io.h"

#include <errno.h>
#include <unistd.h>

ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

int io_pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
        ssize_t n = io_pread_full(fd, buf, len, off);

        if (n < 0)
                return (int)n;
        return (size_t)n == len ? 0 : -EIO;
}

/* off < 0: write at the file offset */
static int write_all_at(int fd, const void *buf, size_t len, int64_t off)
{
        size_t done = 0;

        while (done < len) {
                const char *p = (const char *)buf + done;
                ssize_t n = off < 0 ? write(fd, p, len - done)
                                    : pwrite(fd, p, len - done, (off_t)off + (off_t)done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                done += (size_t)n;
        }
        return 0;
}

ssize_t io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
        size_t done = 0;

        if (off > INT64_MAX || len > INT64_MAX - off)
                return -EINVAL; /* the end would not fit an off_t */
        while (done < len) {
                ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 && done > 0)
                        break; /* what was written counts: the caller reports a short write */
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

int io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
        if (off > INT64_MAX || len > INT64_MAX - off)
                return -EINVAL; /* the end would not fit an off_t */
        return write_all_at(fd, buf, len, (int64_t)off);
}

int io_write_all(int fd, const void *buf, size_t len)
{
        return write_all_at(fd, buf, len, -1);
}
