/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pool's request logic through a scripted transport and a fake clock: failover, hash
 * mismatches, throttling, all nodes down, recovery by probes, in-flight de-duplication. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_net.h"

#define MS 1000000ull

enum behaviour { GOOD, REFUSE, STALL, WRONG, THROTTLE, NOT_FOUND, HTML };

struct fake {
        struct fake_net net; /* a fake clock unless net.is_real_time */
        enum behaviour node[2];
        unsigned calls[2], probes[2];
        bool probe_ok[2];
        /* de-dup test: the first fetch blocks until released */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool hold, held;
};

static const uint8_t block[] = "a block of data";
static struct cid block_cid;

/* Answers like a server would, honouring the request's body cap as the engine does. */
static int reply(const struct net_http_request *req, struct buf *body, const void *p, size_t len)
{
        if (len > req->max_body)
                return -E2BIG;
        return buf_append(body, p, len);
}

static int fake_http(void *t, const struct net_http_request *req, struct buf *body,
                     struct net_http_response *res)
{
        struct fake *f = t;
        int node = strstr(req->url, ":1/") ? 0 : 1;
        bool is_probe = strstr(req->url, "/version") != NULL;

        *res = (struct net_http_response){ .status = 200 };
        if (is_probe) {
                f->probes[node]++;
                return f->probe_ok[node] ? reply(req, body, "{\"Version\":\"0.1\"}", 17)
                                         : -ECONNREFUSED;
        }
        __atomic_add_fetch(&f->calls[node], 1, __ATOMIC_SEQ_CST);
        assert_non_null(strstr(req->url, "/api/v0/block/get?arg="));
        assert_true(req->post);
        pthread_mutex_lock(&f->lock);
        if (f->hold) {
                f->held = true;
                pthread_cond_broadcast(&f->cond);
                while (f->hold)
                        pthread_cond_wait(&f->cond, &f->lock);
        }
        pthread_mutex_unlock(&f->lock);
        switch (f->node[node]) {
        case GOOD:
                return reply(req, body, block, sizeof(block));
        case REFUSE:
                return -ECONNREFUSED;
        case STALL:
                if (!f->net.is_real_time)
                        fake_net_advance(&f->net, req->stall_ns);
                return -ETIMEDOUT;
        case WRONG:
                return reply(req, body, "lies", 4);
        case THROTTLE:
                res->status = 429;
                res->retry_after_ms = 3000;
                return 0;
        case NOT_FOUND:
                res->status = 404;
                return 0;
        case HTML:
                res->status = 500;
                return 0;
        }
        return -EIO;
}

static struct net_pool *make_pool(struct fake *f)
{
        static const struct net_node_config nodes[2] = {
                { .kind = NET_NODE_RPC, .url = "http://node:1" },
                { .kind = NET_NODE_RPC, .url = "http://node:2" },
        };
        const struct net_config cfg = { .nodes = nodes,
                                        .n_nodes = 2,
                                        .timeout_ms = 10000,
                                        .stall_timeout_ms = 500,
                                        .retry_base_delay_ms = 100,
                                        .retry_max_delay_ms = 2000,
                                        .retry_max_attempts = 3 };
        struct net_pool *p;

        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->cond, NULL);
        fake_net_init(&f->net, fake_http, f, 12345);
        fake_net_advance(&f->net, 1000 * MS);
        assert_int_equal(net_pool_new_with_transport(&cfg, &f->net.ops, &f->net, &p), 0);
        return p;
}

static void free_pool(struct fake *f, struct net_pool *p)
{
        net_pool_free(p);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
}

static int get(struct fake *f, struct net_pool *p, struct net_block **b)
{
        return net_block_get(p, &block_cid, fake_net_now(&f->net) + 10000 * MS, b);
}

static void test_get__first_node_refuses__served_by_second(void **state)
{
        struct fake f = { .node = { REFUSE, GOOD } };
        struct net_pool *p = make_pool(&f);
        struct net_stats st;
        struct net_block *b = NULL;

        (void)state;
        assert_int_equal(get(&f, p, &b), 0);
        assert_int_equal(b->len, sizeof(block));
        assert_memory_equal(b->data, block, sizeof(block));
        net_block_unref(b);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_SUSPECT);
        assert_int_equal(st.nodes[1].state, NET_STATE_UP);
        /* the next request goes to the healthy node first */
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        assert_int_equal(f.calls[0], 1);
        assert_int_equal(f.calls[1], 2);
        free_pool(&f, p);
}

static void test_get__wrong_bytes__never_returned_node_down(void **state)
{
        struct fake f = { .node = { WRONG, GOOD } };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;
        struct net_stats st;

        (void)state;
        for (int i = 0; i < 100; i++) {
                /* the liar is probed back each time, lies again, and is caught again */
                f.probe_ok[0] = true;
                net_pool_probe_due(p);
                fake_net_advance(&f.net, 10000 * MS);
                net_pool_probe_due(p);
                assert_int_equal(get(&f, p, &b), 0);
                assert_memory_equal(b->data, block, sizeof(block));
                net_block_unref(b);
        }
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_DOWN);
        assert_int_equal(st.nodes[0].bad_blocks, f.calls[0]);
        assert_true(f.calls[0] >= 99);
        free_pool(&f, p);
}

static void test_get__both_wrong__error_not_bytes(void **state)
{
        struct fake f = { .node = { WRONG, WRONG } };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;

        int r;

        (void)state;
        /* both liars are down after one try each; the request waits for a probe to bring
         * one back until its deadline, then fails: an error, never the wrong bytes */
        r = get(&f, p, &b);
        assert_true(r == -EHOSTUNREACH || r == -ETIMEDOUT);
        assert_null(b);
        free_pool(&f, p);
}

static void test_get__all_down__fails_within_deadline(void **state)
{
        struct fake f = { .node = { STALL, REFUSE } };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;
        uint64_t t0 = fake_net_now(&f.net);
        int r;

        (void)state;
        r = get(&f, p, &b);
        assert_true(r == -EHOSTUNREACH || r == -ETIMEDOUT);
        assert_true(fake_net_now(&f.net) - t0 <= 10000 * MS);
        /* nodes come back: probes put them in use, reads resume */
        f.node[0] = f.node[1] = GOOD;
        f.probe_ok[0] = f.probe_ok[1] = true;
        fake_net_advance(&f.net, 60000 * MS);
        net_pool_probe_due(p);
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        free_pool(&f, p);
}

static void test_get__stall__next_attempt_waits_longer(void **state)
{
        struct fake f = { .node = { STALL, STALL } };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;
        uint64_t t0 = fake_net_now(&f.net);

        (void)state;
        /* 0.5 s then 1 s then ... per node, never past the 10 s deadline */
        assert_true(get(&f, p, &b) < 0);
        assert_true(fake_net_now(&f.net) - t0 <= 10000 * MS);
        assert_true(f.calls[0] + f.calls[1] >= 3);
        free_pool(&f, p);
}

static void test_get__throttled__other_node_until_retry_after(void **state)
{
        struct fake f = { .node = { THROTTLE, GOOD } };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;
        struct net_stats st;

        (void)state;
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].throttled, 1);
        assert_int_equal(st.nodes[0].state, NET_STATE_UP);
        /* only node 0 left, throttled for 3 s: the request waits for it, then succeeds */
        f.node[0] = GOOD;
        f.node[1] = REFUSE;
        net_pool_get_stats(p, &st);
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        free_pool(&f, p);
}

static void test_get__not_found_everywhere__enoent(void **state)
{
        struct fake f = { .node = { NOT_FOUND, NOT_FOUND } };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;
        struct net_stats st;

        (void)state;
        assert_int_equal(get(&f, p, &b), -ENOENT);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_UP); /* not having a block is no fault */
        free_pool(&f, p);
}

struct getter {
        struct fake *f;
        struct net_pool *p;
        int r;
};

static void *getter_thread(void *arg)
{
        struct getter *g = arg;
        struct net_block *b = NULL;

        g->r = net_block_get(g->p, &block_cid, net_now_ns() + 5000 * MS, &b);
        if (g->r == 0 && (b->len != sizeof(block) || memcmp(b->data, block, b->len) != 0))
                g->r = -EILSEQ;
        net_block_unref(b);
        return NULL;
}

static void test_get__concurrent_same_cid__one_fetch(void **state)
{
        struct fake f = { .node = { GOOD, GOOD }, .net.is_real_time = true, .hold = true };
        struct net_pool *p = make_pool(&f);
        struct getter g[8];
        pthread_t th[8];
        struct net_stats st;

        (void)state;
        for (int i = 0; i < 8; i++) {
                g[i] = (struct getter){ .f = &f, .p = p };
                assert_int_equal(pthread_create(&th[i], NULL, getter_thread, &g[i]), 0);
        }
        /* wait until the one fetch is in the transport and everyone else has queued up */
        pthread_mutex_lock(&f.lock);
        while (!f.held)
                pthread_cond_wait(&f.cond, &f.lock);
        pthread_mutex_unlock(&f.lock);
        for (;;) {
                net_pool_get_stats(p, &st);
                if (st.fetches == 8)
                        break;
                usleep(1000);
        }
        pthread_mutex_lock(&f.lock);
        f.hold = false;
        pthread_cond_broadcast(&f.cond);
        pthread_mutex_unlock(&f.lock);
        for (int i = 0; i < 8; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(g[i].r, 0);
        }
        assert_int_equal(f.calls[0] + f.calls[1], 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.dedup_hits, 7);
        free_pool(&f, p);
}

static int setup(void **state)
{
        (void)state;
        return cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, block, sizeof(block), &block_cid);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_get__first_node_refuses__served_by_second),
                cmocka_unit_test(test_get__wrong_bytes__never_returned_node_down),
                cmocka_unit_test(test_get__both_wrong__error_not_bytes),
                cmocka_unit_test(test_get__all_down__fails_within_deadline),
                cmocka_unit_test(test_get__stall__next_attempt_waits_longer),
                cmocka_unit_test(test_get__throttled__other_node_until_retry_after),
                cmocka_unit_test(test_get__not_found_everywhere__enoent),
                cmocka_unit_test(test_get__concurrent_same_cid__one_fetch),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
