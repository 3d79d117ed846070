/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hashing + DAG building throughput: feeds N MiB of pseudo-random data (generated once into a
 * 64 MiB buffer, reused) through the balanced builder of each profile, hashing every block,
 * and reports MB/s of input. Also reports bare SHA-256 over the same bytes as the ceiling.
 *   bench-builder [MiB]      (default 1024)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prsmfs/hash.h"
#include "prsmfs/parse.h"
#include "prsmfs/unixfs.h"

#define POOL (64u << 20)

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_block(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        (void)cid;
        (void)p;
        *(uint64_t *)ud += len;
        return 0;
}

static double run(const char *name, const struct unixfs_params *p, const uint8_t *pool,
                  uint64_t total)
{
        struct unixfs_builder *b;
        uint64_t emitted = 0, tsize;
        char out[CID_MAX_STR];
        struct cid root;
        double t0, dt;

        if (unixfs_builder_new(p, count_block, &emitted, &b) < 0)
                abort();
        t0 = now_s();
        for (uint64_t done = 0; done < total; done += 1 << 20)
                if (unixfs_builder_write(b, pool + done % POOL, 1 << 20) < 0)
                        abort();
        if (unixfs_builder_finish(b, &root, NULL, &tsize) < 0)
                abort();
        dt = now_s() - t0;
        unixfs_builder_free(b);
        printf("%-28s %8.1f MB/s  (%.2f s, %llu MiB in, %llu bytes of blocks, root %s)\n", name,
               (double)total / dt / 1e6, dt, (unsigned long long)(total >> 20),
               (unsigned long long)emitted, cid_to_string(&root, out));
        return dt;
}

int main(int argc, char *argv[])
{
        struct unixfs_params legacy, def;
        uint64_t mib = 1024, x = 88172645463325252ull;
        uint8_t *pool, d[32];
        double t0, dt;

        if (argc > 1 && (parse_u64(argv[1], &mib) < 0 || mib == 0)) {
                fprintf(stderr, "usage: %s [MiB]\n", argv[0]);
                return 2;
        }
        pool = malloc(POOL);
        if (!pool)
                return 1;
        for (size_t i = 0; i < POOL; i += 8) {
                x ^= x << 13; /* xorshift64: incompressible, fast to make */
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(pool + i, &x, 8);
        }
        t0 = now_s();
        for (uint64_t done = 0; done < mib << 20; done += 1 << 20)
                hash_sha256(pool + done % POOL, 1 << 20, d);
        dt = now_s() - t0;
        printf("%-28s %8.1f MB/s  (%.2f s)\n", "sha256 alone (ceiling)",
               (double)(mib << 20) / dt / 1e6, dt);
        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &def);
        unixfs_params_profile(UNIXFS_PROFILE_LEGACY, &legacy);
        run("default (v1, raw, 1 MiB)", &def, pool, mib << 20);
        run("legacy (v0, dag-pb, 256 KiB)", &legacy, pool, mib << 20);
        free(pool);
        return 0;
}
