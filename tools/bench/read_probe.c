/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Read patterns for tools/bench/read-bench.sh that cat cannot make, timed in-process
 * (CLOCK_MONOTONIC) and printed as one line "COUNT SECONDS" (COUNT: reads, page faults, or
 * bytes for mmap-seq). Offsets come from a fixed xorshift seed, so two runs (cold, warm, another
 * file system) touch the same pages.
 *
 *   read-probe rand FILE N [SEED]       N preads of 4 KiB at random 4 KiB-aligned offsets
 *   read-probe mmap-seq FILE            mmap the file, touch one byte per page in order
 *   read-probe mmap-rand FILE N [SEED]  mmap the file, touch N random pages
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/parse.h"

#define PAGE 4096u

static uint64_t rng_state;

static uint64_t rng_next(void)
{
        uint64_t x = rng_state;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return rng_state = x;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
        fprintf(stderr, "usage: read-probe rand|mmap-rand FILE N [SEED]\n"
                        "       read-probe mmap-seq FILE\n");
        return 2;
}

int main(int argc, char *argv[])
{
        const char *mode, *path;
        unsigned long n = 0;
        uint64_t pages, sum = 0, count = 0, count_arg = 0;
        unsigned char buf[PAGE];
        struct stat st;
        double t0, t1;
        int fd;

        if (argc < 3)
                return usage();
        mode = argv[1];
        path = argv[2];
        if (strcmp(mode, "mmap-seq") != 0) {
                if (argc < 4)
                        return usage();
                if (parse_u64(argv[3], &count_arg) < 0)
                        return usage();
                n = count_arg;
        }
        rng_state = 88172645463325252ull;
        if (argc > 4 && parse_u64(argv[4], &rng_state) < 0)
                return usage();
        if (rng_state == 0)
                rng_state = 1;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                perror(path);
                return 1;
        }
        pages = (uint64_t)st.st_size / PAGE;
        if (pages == 0) {
                fprintf(stderr, "%s: smaller than a page\n", path);
                return 1;
        }
        if (strcmp(mode, "rand") == 0) {
                t0 = now_s();
                for (unsigned long i = 0; i < n; i++) {
                        off_t off = (off_t)(rng_next() % pages) * PAGE;

                        if (pread(fd, buf, PAGE, off) != (ssize_t)PAGE) {
                                perror("pread");
                                return 1;
                        }
                        sum += buf[i % PAGE];
                }
                t1 = now_s();
                count = n;
        } else if (strcmp(mode, "mmap-seq") == 0 || strcmp(mode, "mmap-rand") == 0) {
                const volatile unsigned char *p =
                        mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

                if (p == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
                t0 = now_s();
                if (mode[5] == 's') {
                        for (uint64_t i = 0; i < (uint64_t)st.st_size; i += PAGE)
                                sum += p[i];
                        count = (uint64_t)st.st_size;
                } else {
                        for (unsigned long i = 0; i < n; i++)
                                sum += p[(rng_next() % pages) * PAGE + i % PAGE];
                        count = n;
                }
                t1 = now_s();
                munmap((void *)p, (size_t)st.st_size);
        } else {
                return usage();
        }
        close(fd);
        printf("%llu %.6f\n", (unsigned long long)count, t1 - t0);
        fprintf(stderr, "checksum %llu\n", (unsigned long long)sum);
        return 0;
}
