/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The store without a network: identity blocks, disk and memory hits, the memory cap, and
 * prefetch bookkeeping; and over a node pool with a scripted transport, that readers waiting
 * on one fetch write its block to the cache once. Fetches through real nodes are tested in
 * tests/integration/test_read_path.py. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/store.h"

#include "fake_net.h"

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

/* A node behind a scripted transport in real time: one block, and the first fetch held until
 * released. */
struct fake_node {
        struct fake_net net;
        struct fake_net_gate gate;
        unsigned calls;
        const uint8_t *data;
        size_t len;
};

static int fake_http(void *t, const struct net_http_request *req, struct buf *body,
                     struct net_http_response *res)
{
        struct fake_node *n = t;

        *res = (struct net_http_response){ .status = 200 };
        __atomic_add_fetch(&n->calls, 1, __ATOMIC_SEQ_CST);
        fake_net_gate_pass(&n->gate);
        if (n->len > req->max_body)
                return -E2BIG;
        return buf_append(body, n->data, n->len);
}

struct reader {
        struct store *s;
        const struct cid *cid;
        int r;
};

static void *reader_thread(void *arg)
{
        struct reader *rd = arg;
        struct net_block *b = NULL;

        rd->r = store_get(rd->s, rd->cid, net_now_ns() + 10000000000ull, &b);
        net_block_unref(b);
        return NULL;
}

/* Eight readers of one block that is not cached yet share one fetch, and the block is written
 * to the cache once (before, each waiter wrote it: a disk write each, and the cache counted
 * its bytes again, evicting early). */
static void test_get__waiters_on_one_fetch__cached_once(void **state)
{
        struct fixture *f = *state;
        struct fake_node fn = { .net = { .is_real_time = true }, .gate = { .is_closed = true } };
        struct reader rd[8];
        pthread_t th[8];
        struct net_pool *p;
        struct store_stats st;
        struct cache_stats cs;
        struct store *s;
        uint8_t *data = malloc(300000);
        struct cid cid;

        assert_non_null(data);
        for (size_t i = 0; i < 300000; i++)
                data[i] = (uint8_t)(i * 13);
        fn.data = data;
        fn.len = 300000;
        fake_net_init(&fn.net, fake_http, &fn, 1);
        fake_net_gate_init(&fn.gate);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, data, 300000, &cid), 0);
        fake_net_pool_one_node(&fn.net, &p);
        assert_int_equal(
                store_new(
                        &(struct store_config){ .cache = f->cache, .net = p, .mem_bytes = 1 << 20 },
                        &s),
                0);
        for (int i = 0; i < 8; i++) {
                rd[i] = (struct reader){ .s = s, .cid = &cid };
                assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &rd[i]), 0);
        }
        /* once all eight wait on the one fetch in the transport */
        fake_net_gate_open_when(&fn.gate, p, 8);
        for (int i = 0; i < 8; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(rd[i].r, 0);
        }
        assert_int_equal(fn.calls, 1);
        store_get_stats(s, &st);
        assert_int_equal(st.fetches, 8);
        assert_int_equal(st.cache_puts, 1);
        cache_get_stats(f->cache, &cs);
        assert_int_equal(cs.puts, 1);
        assert_int_equal(cs.bytes, 300000);
        store_free(s);
        net_pool_free(p);
        fake_net_gate_destroy(&fn.gate);
        free(data);
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
                cmocka_unit_test_setup_teardown(test_get__waiters_on_one_fetch__cached_once, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
