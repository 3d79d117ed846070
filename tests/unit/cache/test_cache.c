/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/cache.h"

struct fixture {
        char dir[64];
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        (void)snprintf(f->dir, sizeof(f->dir), "/tmp/prsmfs-cache-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[160];

        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void make_block(unsigned seed, size_t len, uint8_t *buf, struct cid *cid)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(seed * 31 + i * 7);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, buf, len, cid), 0);
}

static void test_put__then_pread__same_bytes_and_survives_reopen(void **state)
{
        struct fixture *f = *state;
        static uint8_t data[100000], back[100000];
        struct cache_stats st;
        struct cache *c;
        struct cid cid, v0;

        make_block(1, sizeof(data), data, &cid);
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, true, &c), 0);
        assert_int_equal(cache_block_pread(c, &cid, back, 10, 0), -ENOENT);
        assert_int_equal(cache_block_put(c, &cid, data, sizeof(data)), 0);
        assert_int_equal(cache_block_pread(c, &cid, back, sizeof(back), 0), sizeof(data));
        assert_memory_equal(back, data, sizeof(data));
        assert_int_equal(cache_block_pread(c, &cid, back, 100, 99950), 50);
        assert_memory_equal(back, data + 99950, 50);
        assert_int_equal(cache_block_size(c, &cid), sizeof(data));
        cache_get_stats(c, &st);
        assert_int_equal(st.hits, 2);
        assert_int_equal(st.misses, 1);
        cache_free(c);

        /* a restart finds it; the same multihash under another CID version finds it too */
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, true, &c), 0);
        cache_get_stats(c, &st);
        assert_int_equal(st.bytes, sizeof(data));
        assert_int_equal(
                cid_make(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, cid_digest(&cid).p, 32, &v0), 0);
        assert_int_equal(cache_block_pread(c, &v0, back, 16, 0), 16);
        assert_memory_equal(back, data, 16);
        cache_free(c);
}

/* The path of a cached block's file (from its open fd). */
static void block_file(struct cache *c, const struct cid *cid, char *path, size_t size)
{
        char link[64];
        uint64_t len;
        ssize_t n;
        int fd = cache_block_open(c, cid, &len);

        assert_true(fd >= 0);
        (void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, path, size - 1);
        assert_true(n > 0);
        path[n] = '\0';
        close(fd);
}

static void write_file(const char *path, const char *text)
{
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        assert_true(fputs(text, fp) >= 0);
        assert_int_equal(fclose(fp), 0);
}

static void test_verify__flipped_byte_and_junk__dropped_others_kept(void **state)
{
        struct fixture *f = *state;
        static uint8_t a[50000], b[30000], back[16];
        struct cache_verify_result res;
        struct cache_stats st;
        char path[512];
        struct cache *c;
        struct cid ca, cb;
        FILE *fp;

        make_block(5, sizeof(a), a, &ca);
        make_block(6, sizeof(b), b, &cb);
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, true, &c), 0);
        assert_int_equal(cache_block_put(c, &ca, a, sizeof(a)), 0);
        assert_int_equal(cache_block_put(c, &cb, b, sizeof(b)), 0);
        assert_int_equal(cache_verify(c, &res), 0);
        assert_int_equal(res.checked, 2);
        assert_int_equal(res.dropped, 0);
        assert_int_equal(res.verified_bytes, sizeof(a) + sizeof(b));

        /* a bit flipped on disk, and a file whose name is no multihash */
        block_file(c, &ca, path, sizeof(path));
        fp = fopen(path, "r+");
        assert_non_null(fp);
        assert_int_equal(fseek(fp, 1000, SEEK_SET), 0);
        assert_int_equal(fputc(a[1000] ^ 0x10, fp), a[1000] ^ 0x10);
        assert_int_equal(fclose(fp), 0);
        (void)snprintf(path, sizeof(path), "%s/blocks/00", f->dir);
        (void)mkdir(path, 0700); /* may exist */
        (void)snprintf(path, sizeof(path), "%s/blocks/00/bnotamultihash", f->dir);
        write_file(path, "junk");

        assert_int_equal(cache_verify(c, &res), 0);
        assert_int_equal(res.checked, 3);
        assert_int_equal(res.dropped, 2);
        assert_int_equal(res.dropped_bytes, sizeof(a) + 4);
        assert_int_equal(res.verified_bytes, sizeof(b));
        assert_int_equal(cache_block_pread(c, &ca, back, sizeof(back), 0), -ENOENT);
        assert_int_equal(cache_block_pread(c, &cb, back, sizeof(back), 0), sizeof(back));
        assert_memory_equal(back, b, sizeof(back));
        assert_int_equal(access(path, F_OK), -1);
        cache_free(c);
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, true, &c), 0); /* what a scan finds */
        cache_get_stats(c, &st);
        assert_int_equal(st.bytes, sizeof(b));
        cache_free(c);
}

static void test_put__wrong_bytes__refused_and_nothing_stored(void **state)
{
        struct fixture *f = *state;
        uint8_t data[4096], back[16];
        struct cache *c;
        struct cid cid;

        make_block(2, sizeof(data), data, &cid);
        data[100] ^= 1;
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, true, &c), 0);
        assert_int_equal(cache_block_put(c, &cid, data, sizeof(data)), -EILSEQ);
        assert_int_equal(cache_block_pread(c, &cid, back, sizeof(back), 0), -ENOENT);
        cache_free(c);
}

static void test_put__over_cap__least_recently_used_evicted(void **state)
{
        struct fixture *f = *state;
        static uint8_t data[10][65536];
        struct cid cids[10];
        struct cache *c;
        uint8_t b;

        /* 10 blocks of 64 KiB into a 400 KiB cache */
        assert_int_equal(cache_open(f->dir, 400 * 1024, 0, true, &c), 0);
        for (unsigned i = 0; i < 10; i++) {
                make_block(10 + i, sizeof(data[i]), data[i], &cids[i]);
                assert_int_equal(cache_block_put(c, &cids[i], data[i], sizeof(data[i])), 0);
                usleep(2000); /* distinct atimes */
        }
        /* the newest block is always kept, the oldest is gone, the total is under the cap */
        assert_int_equal(cache_block_pread(c, &cids[9], &b, 1, 0), 1);
        assert_int_equal(cache_block_pread(c, &cids[0], &b, 1, 0), -ENOENT);
        assert_true(cache_evict(c, 400 * 1024) >= 0);
        {
                struct cache_stats st;

                cache_get_stats(c, &st);
                assert_true(st.bytes <= 400 * 1024);
                assert_true(st.evictions >= 4);
        }
        cache_free(c);
}

/* What is on disk, summed by a walk of <dir>/blocks/<xx>/ */
static uint64_t disk_bytes(const char *dir)
{
        char path[256];
        uint64_t total = 0;

        for (unsigned x = 0; x < 256; x++) {
                DIR *d;
                struct dirent *e;

                (void)snprintf(path, sizeof(path), "%s/blocks/%02x", dir, x);
                d = opendir(path);
                if (!d)
                        continue;
                while ((e = readdir(d))) {
                        char p[512];
                        struct stat st;

                        (void)snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
                        if (e->d_name[0] != '.' && stat(p, &st) == 0)
                                total += (uint64_t)st.st_size;
                }
                closedir(d);
        }
        return total;
}

#define PUTTERS    4
#define PER_PUTTER 64
#define BLOCK      (64 * 1024)

struct putter {
        struct cache *c;
        unsigned first;
};

static void *putter_main(void *arg)
{
        struct putter *p = arg;
        uint8_t *buf = malloc(BLOCK);
        struct cid cid;

        assert_non_null(buf);
        for (unsigned i = 0; i < PER_PUTTER; i++) {
                make_block(p->first + i, BLOCK, buf, &cid);
                assert_int_equal(cache_block_put(p->c, &cid, buf, BLOCK), 0);
        }
        free(buf);
        return NULL;
}

/* Puts from many threads at once, each crossing the cap: blocks renamed in while another
 * thread's eviction lists the directory must still be counted, or the cache outgrows its
 * cap unnoticed (a mount's cache once ended 256 KiB over it). */
static void test_put__many_threads_over_cap__estimate_never_below_disk_and_cap_holds(void **state)
{
        struct fixture *f = *state;
        struct putter p[PUTTERS];
        pthread_t t[PUTTERS];
        struct cache_stats st;
        struct cache *c;
        uint64_t cap = 1024 * 1024, disk;

        for (int round = 0; round < 6; round++) {
                assert_int_equal(cache_open(f->dir, cap, 0, true, &c), 0);
                for (unsigned i = 0; i < PUTTERS; i++) {
                        p[i] = (struct putter){ .c = c,
                                                .first = 1000 * (round + 1) + i * PER_PUTTER };
                        assert_int_equal(pthread_create(&t[i], NULL, putter_main, &p[i]), 0);
                }
                for (unsigned i = 0; i < PUTTERS; i++)
                        assert_int_equal(pthread_join(t[i], NULL), 0);
                cache_get_stats(c, &st);
                disk = disk_bytes(f->dir);
                assert_true(disk <= cap);
                assert_true(st.bytes >= disk);
                cache_free(c);
        }
}

static void test_disabled__every_lookup_misses(void **state)
{
        struct fixture *f = *state;
        uint8_t data[100], b;
        struct cache *c;
        struct cid cid;

        make_block(3, sizeof(data), data, &cid);
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, false, &c), 0);
        assert_int_equal(cache_block_put(c, &cid, data, sizeof(data)), 0);
        assert_int_equal(cache_block_pread(c, &cid, &b, 1, 0), -ENOENT);
        cache_free(c);
}

/* Unused blocks older than the TTL go while the cache stays open, under its cap: the
 * sweeper does it, nothing else would. */
static void test_ttl__sweeper__expired_block_evicted_while_open(void **state)
{
        struct fixture *f = *state;
        uint8_t data[100], b;
        struct cache *c;
        struct cid cid;
        int r = 0;

        make_block(4, sizeof(data), data, &cid);
        assert_int_equal(cache_open(f->dir, 1 << 30, 1000, true, &c), 0);
        assert_int_equal(cache_block_put(c, &cid, data, sizeof(data)), 0);
        usleep(1200 * 1000);
        /* past its TTL, but no sweeper yet and no pressure: still there */
        assert_int_equal(cache_block_pread(c, &cid, &b, 1, 0), 1);
        assert_int_equal(cache_start_sweeper(c), 0);
        for (int i = 0; i < 100; i++) { /* sweeps every second: gone within a few */
                r = (int)cache_block_pread(c, &cid, &b, 1, 0);
                if (r == -ENOENT)
                        break;
                usleep(100 * 1000);
        }
        assert_int_equal(r, -ENOENT);
        cache_free(c); /* stops and joins the sweeper */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_put__then_pread__same_bytes_and_survives_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_put__wrong_bytes__refused_and_nothing_stored,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_put__over_cap__least_recently_used_evicted,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_ttl__sweeper__expired_block_evicted_while_open,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_verify__flipped_byte_and_junk__dropped_others_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_put__many_threads_over_cap__estimate_never_below_disk_and_cap_holds,
                        setup, teardown),
                cmocka_unit_test_setup_teardown(test_disabled__every_lookup_misses, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
