/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hedged block requests through a scripted transport in real time: a slow primary is hedged
 * after its p95 and cancelled when the second node answers first; no hedge when disabled or
 * when the primary answers in time; the p95 itself. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/thread.h"

#include "fake_net.h"

#define MS 1000000ull

struct fake {
        struct fake_net net;  /* in real time */
        unsigned delay_ms[2]; /* per node */
        unsigned calls[2], cancelled[2];
        pid_t tid[2]; /* the thread of the last request to each node */
};

static const uint8_t block[] = "a hedged block";
static struct cid block_cid;

/* Serves the block after the node's delay, giving up at once when cancelled (as the engine
 * does within one poll). */
static int fake_http(void *t, const struct net_http_request *req, struct buf *body,
                     struct net_http_response *res)
{
        struct fake *f = t;
        int node = strstr(req->url, "//n1") ? 0 : 1;
        uint64_t until = net_now_ns() + f->delay_ms[node] * MS;

        __atomic_store_n(&f->tid[node], thread_id(), __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&f->calls[node], 1, __ATOMIC_SEQ_CST);
        *res = (struct net_http_response){ .status = 200 };
        while (net_now_ns() < until) {
                if (req->cancel && __atomic_load_n(req->cancel, __ATOMIC_ACQUIRE)) {
                        __atomic_add_fetch(&f->cancelled[node], 1, __ATOMIC_SEQ_CST);
                        return -ECANCELED;
                }
                usleep(500);
        }
        return buf_append(body, block, sizeof(block));
}

static struct net_pool *make_pool(struct fake *f, bool disabled)
{
        static const struct net_node_config nodes[2] = {
                { .kind = NET_NODE_RPC, .url = "http://n1" },
                { .kind = NET_NODE_RPC, .url = "http://n2" },
        };
        const struct net_config cfg = { .nodes = nodes,
                                        .n_nodes = 2,
                                        .timeout_ms = 10000,
                                        .stall_timeout_ms = 2000,
                                        .retry_base_delay_ms = 10,
                                        .retry_max_delay_ms = 100,
                                        .retry_max_attempts = 2,
                                        .is_hedging_disabled = disabled };
        struct net_pool *p;

        fake_net_init(&f->net, fake_http, f, 777);
        f->net.is_real_time = true;
        assert_int_equal(net_pool_new_with_transport(&cfg, &f->net.ops, &f->net, &p), 0);
        return p;
}

static uint64_t get_ms(struct net_pool *p)
{
        struct net_block *b = NULL;
        uint64_t t0 = net_now_ns();

        assert_int_equal(net_block_get(p, &block_cid, net_now_ns() + 10000 * MS, &b), 0);
        assert_int_equal(b->len, sizeof(block));
        assert_memory_equal(b->data, block, sizeof(block));
        net_block_unref(b);
        return (net_now_ns() - t0) / MS;
}

/* Node 1 answers in ~2 ms, node 2 in ~10 ms: node 1 becomes the primary with a p95. */
static void warm_up(struct fake *f, struct net_pool *p)
{
        f->delay_ms[0] = 2;
        f->delay_ms[1] = 10;
        for (int i = 0; i < 12; i++)
                (void)get_ms(p);
        f->calls[0] = f->calls[1] = 0;
}

static void test_hedge__slow_primary__second_node_wins_loser_cancelled(void **state)
{
        struct fake f = { 0 };
        struct net_pool *p = make_pool(&f, false);
        struct net_stats st0, st;
        uint64_t ms;

        (void)state;
        warm_up(&f, p);
        net_pool_get_stats(p, &st0);
        f.cancelled[0] = f.cancelled[1] = 0;
        f.delay_ms[0] = 1500; /* alive but slow: not a failure, just late */
        ms = get_ms(p);
        assert_true(ms < 500);
        assert_int_equal(f.calls[0], 1);
        assert_int_equal(f.calls[1], 1);
        assert_int_equal(f.cancelled[0], 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.hedges - st0.hedges, 1);
        assert_int_equal(st.hedge_wins - st0.hedge_wins, 1);
        assert_int_equal(st.nodes[0].state, NET_STATE_UP); /* losing a race is no fault */
        net_pool_free(p);
}

static void test_hedge__primary_in_time__no_second_request(void **state)
{
        struct fake f = { 0 };
        struct net_pool *p = make_pool(&f, false);
        struct net_stats st0, st;

        (void)state;
        /* a primary whose p95 is ~40 ms, then answers far inside it: scheduling noise on a
         * loaded machine (tens of ms) must not look late */
        f.delay_ms[0] = 40;
        f.delay_ms[1] = 200;
        for (int i = 0; i < 8; i++)
                (void)get_ms(p);
        f.delay_ms[0] = 1;
        f.calls[0] = f.calls[1] = 0;
        net_pool_get_stats(p, &st0);
        for (int i = 0; i < 5; i++)
                (void)get_ms(p);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.hedges - st0.hedges, 0);
        assert_int_equal(f.calls[0], 5);
        assert_int_equal(f.calls[1], 0);
        net_pool_free(p);
}

static void test_hedge__disabled__waits_for_slow_primary(void **state)
{
        struct fake f = { 0 };
        struct net_pool *p = make_pool(&f, true);
        struct net_stats st;

        (void)state;
        warm_up(&f, p);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.hedges, 0);
        f.delay_ms[0] = 300;
        assert_true(get_ms(p) >= 300);
        assert_int_equal(f.calls[1], 0);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.hedges, 0);
        net_pool_free(p);
}

struct bg_get {
        struct net_pool *p;
        bool is_background;
        int r;
};

static void *bg_get_thread(void *arg)
{
        struct bg_get *g = arg;
        struct net_block *b = NULL;

        if (g->is_background)
                thread_background();
        g->r = net_block_get(g->p, &block_cid, net_now_ns() + 10000 * MS, &b);
        net_block_unref(b);
        return NULL;
}

/* A background (niced) thread's fetch is hedged: both legs run niced, inherited; a foreground
 * caller that joins the fetch un-nices the legs too (they verify the block), when it may. */
static void test_hedge__background_fetch_joined__legs_unniced(void **state)
{
        struct fake f = { 0 };
        struct net_pool *p = make_pool(&f, false);
        struct bg_get g[2] = { { .p = p, .is_background = true }, { .p = p } };
        int base = fake_net_nice_of(getpid()), bg = thread_background_nice();
        int before[2], after[2];
        struct net_stats st0, st;
        pthread_t th[2];

        (void)state;
        warm_up(&f, p);
        f.delay_ms[0] = 4000; /* both legs in flight for a while */
        f.delay_ms[1] = 3000;
        assert_int_equal(pthread_create(&th[0], NULL, bg_get_thread, &g[0]), 0);
        while (__atomic_load_n(&f.calls[1], __ATOMIC_SEQ_CST) == 0)
                usleep(1000); /* the hedge started */
        for (int k = 0; k < 2; k++)
                before[k] = fake_net_nice_of(f.tid[k]);
        net_pool_get_stats(p, &st0);
        assert_int_equal(pthread_create(&th[1], NULL, bg_get_thread, &g[1]), 0);
        do { /* it joined the fetch (counted under the pool's lock with the un-nicing) */
                usleep(1000);
                net_pool_get_stats(p, &st);
        } while (st.dedup_hits == st0.dedup_hits);
        for (int k = 0; k < 2; k++)
                after[k] = fake_net_nice_of(f.tid[k]);
        for (int i = 0; i < 2; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(g[i].r, 0);
        }
        for (int k = 0; k < 2; k++) {
                assert_int_equal(before[k], bg);
                assert_int_equal(after[k], geteuid() == 0 ? base : bg);
        }
        net_pool_free(p);
}

static void test_p95__samples__nearest_rank(void **state)
{
        uint32_t s[20] = { 0 };

        (void)state;
        assert_int_equal(net_latency_p95(s, 0), 0);
        for (uint32_t i = 0; i < 20; i++)
                s[i] = 20 - i; /* 20 .. 1, unsorted */
        assert_int_equal(net_latency_p95(s, 20), 19);
        s[3] = 1000;
        assert_int_equal(net_latency_p95(s, 20), 20);
        assert_int_equal(net_latency_p95(s, 1), 20);
}

static int setup(void **state)
{
        (void)state;
        return cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, block, sizeof(block), &block_cid);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hedge__slow_primary__second_node_wins_loser_cancelled),
                cmocka_unit_test(test_hedge__primary_in_time__no_second_request),
                cmocka_unit_test(test_hedge__disabled__waits_for_slow_primary),
                cmocka_unit_test(test_hedge__background_fetch_joined__legs_unniced),
                cmocka_unit_test(test_p95__samples__nearest_rank),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
