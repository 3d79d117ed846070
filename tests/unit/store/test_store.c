/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The store without a network: identity blocks, disk and memory hits, the memory cap, and
 * prefetch bookkeeping. Fetches through the node pool are tested on real nodes
 * (tests/integration/test_read_path.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/store.h"

struct fixture {
        char dir[64];
        struct cache *cache;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        (void)snprintf(f->dir, sizeof(f->dir), "/tmp/prsmfs-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(cache_open(f->dir, 1 << 30, 0, true, &f->cache), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[160];

        cache_free(f->cache);
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* A raw block of len bytes put in the cache. */
static void cached_block(struct fixture *f, unsigned seed, size_t len, struct cid *cid)
{
        uint8_t *buf = malloc(len);

        assert_non_null(buf);
        for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(seed * 31 + i * 7);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, buf, len, cid), 0);
        assert_int_equal(cache_block_put(f->cache, cid, buf, len), 0);
        free(buf);
}

static void test_get__identity_and_missing_without_network(void **state)
{
        struct fixture *f = *state;
        struct store *s;
        struct net_block *b = NULL;
        struct cid id, absent;
        struct store_stats st;

        assert_int_equal(
                store_new(&(struct store_config){ .cache = f->cache, .mem_bytes = 1 << 20 }, &s),
                0);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_IDENTITY, "hello", 5, &id), 0);
        assert_int_equal(store_get(s, &id, 0, &b), 0);
        assert_int_equal(b->len, 5);
        assert_memory_equal(b->data, "hello", 5);
        net_block_unref(b);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "x", 1, &absent), 0);
        assert_int_equal(store_get(s, &absent, 0, &b), -ENOENT);
        assert_int_equal(store_peek(s, &absent, &b), -ENOENT);
        store_get_stats(s, &st);
        assert_int_equal(st.fetches + st.disk_hits + st.mem_hits, 0);
        store_free(s);
}

static void test_get__disk_hit_then_memory_hit(void **state)
{
        struct fixture *f = *state;
        struct net_block *b1 = NULL, *b2 = NULL;
        struct store_stats st;
        struct store *s;
        struct cid c;

        cached_block(f, 1, 5000, &c);
        assert_int_equal(
                store_new(&(struct store_config){ .cache = f->cache, .mem_bytes = 1 << 20 }, &s),
                0);
        assert_int_equal(store_get(s, &c, 0, &b1), 0);
        assert_int_equal(store_peek(s, &c, &b2), 0);
        assert_ptr_equal(b1, b2); /* one copy in memory, shared */
        assert_int_equal(cid_verify(&c, b1->data, b1->len), 0);
        store_get_stats(s, &st);
        assert_int_equal(st.disk_hits, 1);
        assert_int_equal(st.mem_hits, 1);
        assert_int_equal(st.mem_bytes, 5000);
        net_block_unref(b1);
        net_block_unref(b2);
        store_free(s);
}

static void test_memory__over_cap__least_recent_evicted_disk_still_serves(void **state)
{
        struct fixture *f = *state;
        struct net_block *b = NULL;
        struct store_stats st;
        struct store *s;
        struct cid c[3];

        for (unsigned i = 0; i < 3; i++)
                cached_block(f, i + 10, 1000, &c[i]);
        assert_int_equal(
                store_new(&(struct store_config){ .cache = f->cache, .mem_bytes = 2500 }, &s), 0);
        for (unsigned i = 0; i < 3; i++) {
                assert_int_equal(store_get(s, &c[i], 0, &b), 0);
                net_block_unref(b);
        }
        store_get_stats(s, &st);
        assert_int_equal(st.mem_blocks, 2);
        assert_int_equal(st.mem_bytes, 2000);
        assert_int_equal(store_get(s, &c[0], 0, &b), 0); /* from disk again */
        net_block_unref(b);
        store_get_stats(s, &st);
        assert_int_equal(st.disk_hits, 4);
        assert_int_equal(st.mem_hits, 0);
        store_free(s);
}

static void test_prefetch__skips_present_and_identity__refs_by_fd_or_memory(void **state)
{
        struct fixture *f = *state;
        struct store_ref ref;
        struct net_block *b = NULL;
        struct cid c[6];
        struct store_stats st;
        struct store *s;

        for (unsigned i = 0; i < 5; i++)
                cached_block(f, i + 20, 100, &c[i]);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_IDENTITY, "id", 2, &c[5]), 0);
        /* no workers: nothing is queued at all */
        assert_int_equal(
                store_new(&(struct store_config){ .cache = f->cache, .mem_bytes = 1 << 20 }, &s),
                0);
        assert_int_equal(store_prefetch(s, c, 6, UINT64_MAX), 0);
        store_free(s);

        assert_int_equal(store_new(&(struct store_config){ .cache = f->cache,
                                                           .workers = 2,
                                                           .mem_bytes = 1 << 20,
                                                           .max_queue = 64 },
                                   &s),
                         0);
        assert_int_equal(store_get(s, &c[0], 0, &b), 0); /* in memory: not queued */
        net_block_unref(b);
        assert_int_equal(store_prefetch(s, c, 6, UINT64_MAX), 4);
        store_get_stats(s, &st);
        assert_int_equal(st.prefetches, 4);
        /* blocks on disk are only read ahead into the page cache, not loaded */
        assert_int_equal(store_get_ref(s, &c[0], 0, &ref), 0);
        assert_non_null(ref.block);
        assert_int_equal(ref.fd, -1);
        store_ref_done(&ref);
        assert_int_equal(store_get_ref(s, &c[1], 0, &ref), 0);
        assert_null(ref.block);
        assert_true(ref.fd >= 0);
        assert_int_equal(ref.size, 100);
        store_ref_done(&ref);
        assert_int_equal(store_get_ref(s, &c[5], 0, &ref), 0); /* identity: from the CID */
        assert_int_equal(ref.block->len, 2);
        store_ref_done(&ref);
        store_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_get__identity_and_missing_without_network,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_get__disk_hit_then_memory_hit, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_memory__over_cap__least_recent_evicted_disk_still_serves, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_prefetch__skips_present_and_identity__refs_by_fd_or_memory, setup,
                        teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
