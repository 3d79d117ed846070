/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pool's request logic through a scripted transport and a fake clock: failover, hash
 * mismatches, throttling, all nodes down, recovery by probes, in-flight de-duplication, slow
 * nodes (stalls) with and without another node to move to, the check of every node at start. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/thread.h"

#include "fake_net.h"

#define MS 1000000ull

/* SLOW answers after slow_ms; STALL never answers; HTML_ONCE answers one block as a web page,
 * then like GOOD; NO_RPC answers 404 (a wrong URL) */
enum behaviour { GOOD, REFUSE, STALL, WRONG, THROTTLE, NOT_FOUND, HTML, SLOW, HTML_ONCE, NO_RPC };

struct fake {
        struct fake_net net; /* a fake clock unless net.is_real_time */
        enum behaviour node[3];
        unsigned calls[3], probes[3];
        bool probe_ok[3];
        bool probe_real[3]; /* the probe answers as the node does for blocks */
        uint64_t slow_ms;
        struct fake_net_gate gate; /* de-dup test: the first fetch blocks until released */
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
        int node = strstr(req->url, ":1/") ? 0 : strstr(req->url, ":2/") ? 1 : 2;
        bool is_probe = strstr(req->url, "/version") || strstr(req->url, "bafkqaaa");
        bool gateway = strstr(req->url, "/ipfs/") != NULL;

        *res = (struct net_http_response){ .status = 200 };
        if (gateway)
                (void)snprintf(res->content_type, sizeof(res->content_type),
                               "application/vnd.ipld.raw");
        if (is_probe && !f->probe_real[node]) {
                f->probes[node]++;
                return f->probe_ok[node] ? reply(req, body, "{\"Version\":\"0.1\"}", 17)
                                         : -ECONNREFUSED;
        }
        if (is_probe) {
                f->probes[node]++;
                switch (f->node[node]) {
                case GOOD:
                        return gateway ? 0 : reply(req, body, "{\"Version\":\"0.1\"}", 17);
                case REFUSE:
                        return -ECONNREFUSED;
                case NO_RPC:
                        res->status = 404;
                        return 0;
                case HTML:
                        (void)snprintf(res->content_type, sizeof(res->content_type), "text/html");
                        return reply(req, body, "<html>", 6);
                default:
                        fail_msg("no probe answer scripted");
                }
        }
        __atomic_add_fetch(&f->calls[node], 1, __ATOMIC_SEQ_CST);
        if (gateway) {
                assert_non_null(strstr(req->url, "?format=raw"));
                assert_false(req->post);
        } else {
                assert_non_null(strstr(req->url, "/api/v0/block/get?arg="));
                assert_true(req->post);
        }
        fake_net_gate_pass(&f->gate);
        switch (f->node[node]) {
        case GOOD:
                return reply(req, body, block, sizeof(block));
        case REFUSE:
                return -ECONNREFUSED;
        case STALL:
                if (!f->net.is_real_time)
                        return fake_net_wait(&f->net, req, UINT64_MAX);
                return -ETIMEDOUT;
        case SLOW: {
                int r = fake_net_wait(&f->net, req, f->slow_ms * MS);

                return r < 0 ? r : reply(req, body, block, sizeof(block));
        }
        case HTML_ONCE:
                f->node[node] = GOOD;
                (void)snprintf(res->content_type, sizeof(res->content_type), "text/html");
                return reply(req, body, "<html>", 6);
        case NO_RPC:
                res->status = 404;
                return 0;
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

static const struct net_node_config rpc_nodes[2] = {
        { .kind = NET_NODE_RPC, .url = "http://node:1" },
        { .kind = NET_NODE_RPC, .url = "http://node:2" },
};

/* A pool over n nodes (their kinds and URLs from nodes, rpc_nodes when NULL). */
static struct net_pool *make_pool_of(struct fake *f, const struct net_node_config *nodes, size_t n)
{
        const struct net_config cfg = { .nodes = nodes ? nodes : rpc_nodes,
                                        .n_nodes = n,
                                        .timeout_ms = 10000,
                                        .stall_timeout_ms = 500,
                                        .first_byte_timeout_ms = 1000,
                                        .retry_base_delay_ms = 100,
                                        .retry_max_delay_ms = 2000,
                                        .retry_max_attempts = 3 };
        struct net_pool *p;

        fake_net_gate_init(&f->gate);
        fake_net_init(&f->net, fake_http, f, 12345);
        fake_net_advance(&f->net, 1000 * MS);
        assert_int_equal(net_pool_new_with_transport(&cfg, &f->net.ops, &f->net, &p), 0);
        return p;
}

static struct net_pool *make_pool(struct fake *f)
{
        return make_pool_of(f, NULL, 2);
}

static void free_pool(struct fake *f, struct net_pool *p)
{
        net_pool_free(p);
        fake_net_gate_destroy(&f->gate);
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
        struct fake f = { .node = { GOOD, GOOD },
                          .net = { .is_real_time = true },
                          .gate = { .is_closed = true } };
        struct net_pool *p = make_pool(&f);
        struct getter g[8];
        pthread_t th[8];
        struct net_stats st;

        (void)state;
        for (int i = 0; i < 8; i++) {
                g[i] = (struct getter){ .f = &f, .p = p };
                assert_int_equal(pthread_create(&th[i], NULL, getter_thread, &g[i]), 0);
        }
        /* once the one fetch is in the transport and everyone else has queued up */
        fake_net_gate_open_when(&f.gate, p, 8);
        for (int i = 0; i < 8; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(g[i].r, 0);
        }
        assert_int_equal(f.calls[0] + f.calls[1], 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.dedup_hits, 7);
        free_pool(&f, p);
}

struct bg_getter {
        struct getter g;
        bool is_background;
        pid_t tid;            /* set before the fetch starts */
        pthread_barrier_t *b; /* passed once tid is set */
};

static void *bg_getter_thread(void *arg)
{
        struct bg_getter *bg = arg;

        if (bg->is_background)
                thread_background();
        bg->tid = thread_id();
        pthread_barrier_wait(bg->b);
        return getter_thread(&bg->g);
}

/* A niced (background) thread owns a fetch that a second caller joins: a foreground caller
 * gives the owner the process's priority back (when it may lower a nice value: root), a
 * background one does not; either way both get the block from the one fetch. */
static void run_boost(bool is_joiner_background)
{
        struct fake f = { .node = { GOOD, GOOD },
                          .net = { .is_real_time = true },
                          .gate = { .is_closed = true } };
        struct net_pool *p = make_pool(&f);
        struct bg_getter g[2];
        pthread_barrier_t b;
        pthread_t th[2];
        struct net_stats st;
        int base = fake_net_nice_of(getpid());
        int bg_nice = thread_background_nice(), owning = 0, joined;

        assert_int_equal(pthread_barrier_init(&b, NULL, 2), 0);
        for (int i = 0; i < 2; i++) {
                g[i] = (struct bg_getter){ .g = { .f = &f, .p = p },
                                           .is_background = i == 0 || is_joiner_background,
                                           .b = &b };
                assert_int_equal(pthread_create(&th[i], NULL, bg_getter_thread, &g[i]), 0);
                pthread_barrier_wait(&b);
                /* the first one's fetch waits at the gate before the second one starts */
                for (;;) {
                        net_pool_get_stats(p, &st);
                        if (st.fetches == (uint64_t)i + 1)
                                break;
                        usleep(1000);
                }
                if (i == 0) {
                        pthread_mutex_lock(&f.gate.lock);
                        while (!f.gate.is_reached)
                                pthread_cond_wait(&f.gate.cond, &f.gate.lock);
                        pthread_mutex_unlock(&f.gate.lock);
                        owning = fake_net_nice_of(g[0].tid);
                }
        }
        /* joined (the count and the un-nicing happen under the pool's lock at once) */
        joined = fake_net_nice_of(g[0].tid);
        fake_net_gate_open_when(&f.gate, p, 2); /* before any assertion: no thread left waiting */
        for (int i = 0; i < 2; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(g[i].g.r, 0);
        }
        assert_int_equal(owning, bg_nice);
        assert_int_equal(joined, !is_joiner_background && geteuid() == 0 ? base : bg_nice);
        assert_int_equal(f.calls[0] + f.calls[1], 1);
        pthread_barrier_destroy(&b);
        free_pool(&f, p);
}

static void test_get__foreground_joins_background_fetch__owner_unniced(void **state)
{
        (void)state;
        run_boost(false);
}

static void test_get__background_joins_background_fetch__owner_stays_niced(void **state)
{
        (void)state;
        run_boost(true);
}

/* The only node takes 3 s to start each answer (first_byte_timeout 1 s, stall_timeout
 * 0.5 s): with nowhere else to go, every request waits for it and gets the block, and the node
 * is never marked down for being slow (before, it was failed and taken down at 0.5 s). */
static void test_get__only_node_slow_to_answer__served_never_down(void **state)
{
        struct fake f = { .node = { SLOW }, .slow_ms = 3000 };
        struct net_pool *p = make_pool_of(&f, NULL, 1);
        struct net_block *b = NULL;
        struct net_stats st;

        (void)state;
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = fake_net_now(&f.net);

                assert_int_equal(get(&f, p, &b), 0);
                assert_memory_equal(b->data, block, sizeof(block));
                net_block_unref(b);
                assert_int_equal(fake_net_now(&f.net) - t0, 3000 * MS);
        }
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_UP);
        assert_int_equal(st.nodes[0].timeouts, 0);
        assert_int_equal(f.calls[0], 3);
        assert_true(f.net.stall_asks >= 3); /* it was asked, and kept waiting */
        free_pool(&f, p);
}

/* The same slow node next to a good one: after first_byte_timeout the request moves on. */
static void test_get__slow_node_and_a_good_one__moves_on_after_first_byte_timeout(void **state)
{
        struct fake f = { .node = { SLOW, GOOD }, .slow_ms = 10000 };
        struct net_pool *p = make_pool(&f);
        struct net_block *b = NULL;
        struct net_stats st;
        uint64_t t0 = fake_net_now(&f.net);

        (void)state;
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        assert_int_equal(fake_net_now(&f.net) - t0, 1000 * MS);
        assert_int_equal(f.calls[0], 1);
        assert_int_equal(f.calls[1], 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_SUSPECT);
        free_pool(&f, p);
}

/* The only node never answers: the request fails at its deadline, not before, and the node is
 * not taken down (the next request asks it at once and gets the block). */
static void test_get__only_node_hangs__fails_at_deadline_node_stays_up(void **state)
{
        struct fake f = { .node = { STALL } };
        struct net_pool *p = make_pool_of(&f, NULL, 1);
        struct net_block *b = NULL;
        struct net_stats st;
        uint64_t t0 = fake_net_now(&f.net);

        (void)state;
        assert_int_equal(get(&f, p, &b), -ETIMEDOUT);
        assert_int_equal(fake_net_now(&f.net) - t0, 10000 * MS);
        assert_int_equal(f.calls[0], 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_UP);
        f.node[0] = GOOD;
        t0 = fake_net_now(&f.net);
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        assert_int_equal(fake_net_now(&f.net), t0);
        free_pool(&f, p);
}

static const struct net_node_config one_gateway[1] = {
        { .kind = NET_NODE_GATEWAY, .url = "http://gw:1" },
};

/* One answer as a web page disables the only gateway; a probe that gets a raw block brings it
 * back (before, nothing probed a disabled node: every read failed until a restart). */
static void test_probe__gateway_answered_html_once__back_after_a_good_probe(void **state)
{
        struct fake f = { .node = { HTML_ONCE }, .probe_real = { true } };
        struct net_pool *p = make_pool_of(&f, one_gateway, 1);
        struct net_block *b = NULL;
        struct net_stats st;

        (void)state;
        assert_int_equal(get(&f, p, &b), -EHOSTUNREACH);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_DISABLED);
        net_pool_probe_due(p); /* not yet: it backs off */
        assert_int_equal(f.probes[0], 0);
        fake_net_advance(&f.net, 10000 * MS);
        net_pool_probe_due(p);
        assert_int_equal(f.probes[0], 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_UP);
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        free_pool(&f, p);
}

/* A gateway that stays non-trustless stays disabled, probed less and less often. */
static void test_probe__gateway_never_trustless__stays_disabled_backing_off(void **state)
{
        struct fake f = { .node = { HTML }, .probe_real = { true } };
        struct net_pool *p = make_pool_of(&f, one_gateway, 1);
        struct net_stats st;

        (void)state;
        net_pool_check_nodes(p);
        for (int i = 0; i < 100; i++) {
                fake_net_advance(&f.net, 100 * MS);
                net_pool_probe_due(p);
        }
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_DISABLED);
        /* 10 s of 100 ms steps: backoff from 0.1 s doubling up to 2 s, not 100 probes */
        assert_true(f.probes[0] >= 5 && f.probes[0] <= 15);
        free_pool(&f, p);
}

/* The check at start: a refused RPC node and a wrong RPC URL are down, a gateway that is not
 * trustless disabled, each probed once; a good node stays up. */
static void test_check_nodes__bad_nodes_out_good_node_in(void **state)
{
        static const struct net_node_config nodes[3] = {
                { .kind = NET_NODE_RPC, .url = "http://node:1" },
                { .kind = NET_NODE_RPC, .url = "http://node:2" },
                { .kind = NET_NODE_GATEWAY, .url = "http://gw:3" },
        };
        struct fake f = { .node = { REFUSE, NO_RPC, HTML }, .probe_real = { true, true, true } };
        struct net_pool *p = make_pool_of(&f, nodes, 3);
        struct net_stats st;

        (void)state;
        net_pool_check_nodes(p);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.nodes[0].state, NET_STATE_DOWN);
        assert_int_equal(st.nodes[1].state, NET_STATE_DOWN);
        assert_int_equal(st.nodes[2].state, NET_STATE_DISABLED);
        assert_int_equal(f.probes[0] + f.probes[1] + f.probes[2], 3);
        free_pool(&f, p);

        f = (struct fake){ .node = { GOOD, GOOD, GOOD }, .probe_real = { true, true, true } };
        p = make_pool_of(&f, nodes, 3);
        net_pool_check_nodes(p);
        net_pool_get_stats(p, &st);
        for (int i = 0; i < 3; i++)
                assert_int_equal(st.nodes[i].state, NET_STATE_UP);
        free_pool(&f, p);
}

/* A reload's node list (net_pool_set_nodes) while a fetch uses a node it removes: the fetch
 * finishes on that node (its URL stays valid: ASan would see a use after free), the node is no
 * longer chosen or listed, and slots of removed nodes are reused once idle (a hundred reloads
 * with new URLs do not run out of the 32 slots). */
static void test_set_nodes__removed_while_fetching__fetch_finishes_node_gone(void **state)
{
        static const struct net_node_config just_2[1] = {
                { .kind = NET_NODE_RPC, .url = "http://node:2" },
        };
        struct fake f = { .node = { GOOD, GOOD, GOOD },
                          .probe_ok = { true, true, true },
                          .net = { .is_real_time = true },
                          .gate = { .is_closed = true } };
        struct net_pool *p = make_pool_of(&f, rpc_nodes, 1);
        struct getter g = { .f = &f, .p = p };
        struct net_stats st;
        struct net_block *b = NULL;
        unsigned added, removed;
        pthread_t th;

        (void)state;
        assert_int_equal(pthread_create(&th, NULL, getter_thread, &g), 0);
        pthread_mutex_lock(&f.gate.lock);
        while (!f.gate.is_reached)
                pthread_cond_wait(&f.gate.cond, &f.gate.lock);
        pthread_mutex_unlock(&f.gate.lock);
        /* node 1 is fetching: replace it by node 2 */
        assert_int_equal(net_pool_set_nodes(p, just_2, 1, &added, &removed), 0);
        assert_int_equal(added, 1);
        assert_int_equal(removed, 1);
        net_pool_get_stats(p, &st);
        assert_int_equal(st.n_nodes, 1);
        assert_string_equal(st.nodes[0].url, "http://node:2");
        assert_int_equal(st.nodes[0].state, NET_STATE_DOWN); /* until its probe */
        /* node 1's slot is still in use: the same list again changes nothing */
        assert_int_equal(net_pool_set_nodes(p, just_2, 1, &added, &removed), 0);
        assert_int_equal(added + removed, 0);
        fake_net_gate_open_when(&f.gate, p, 1);
        pthread_join(th, NULL);
        assert_int_equal(g.r, 0);
        assert_int_equal(f.calls[0], 1);
        net_pool_probe_due(p);
        assert_int_equal(get(&f, p, &b), 0);
        net_block_unref(b);
        assert_int_equal(f.calls[0], 1); /* removed: never asked again */
        assert_int_equal(f.calls[1], 1);

        /* churn: every reload a new URL; idle removed slots are reused */
        for (int i = 0; i < 100; i++) {
                char url[64];
                const struct net_node_config one[1] = { { .kind = NET_NODE_GATEWAY, .url = url } };

                (void)snprintf(url, sizeof(url), "http://gw-%d:3", i);
                assert_int_equal(net_pool_set_nodes(p, one, 1, &added, &removed), 0);
                assert_int_equal(added, 1);
        }
        net_pool_get_stats(p, &st);
        assert_int_equal(st.n_nodes, 1);
        assert_string_equal(st.nodes[0].url, "http://gw-99:3");
        /* a bad list changes nothing */
        {
                const struct net_node_config bad[1] = { { .kind = NET_NODE_RPC, .url = "" } };

                assert_int_equal(net_pool_set_nodes(p, bad, 1, &added, &removed), -EINVAL);
        }
        net_pool_get_stats(p, &st);
        assert_int_equal(st.n_nodes, 1);
        assert_string_equal(st.nodes[0].url, "http://gw-99:3");
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
                cmocka_unit_test(test_get__foreground_joins_background_fetch__owner_unniced),
                cmocka_unit_test(test_get__background_joins_background_fetch__owner_stays_niced),
                cmocka_unit_test(test_get__only_node_slow_to_answer__served_never_down),
                cmocka_unit_test(
                        test_get__slow_node_and_a_good_one__moves_on_after_first_byte_timeout),
                cmocka_unit_test(test_get__only_node_hangs__fails_at_deadline_node_stays_up),
                cmocka_unit_test(test_probe__gateway_answered_html_once__back_after_a_good_probe),
                cmocka_unit_test(test_probe__gateway_never_trustless__stays_disabled_backing_off),
                cmocka_unit_test(test_check_nodes__bad_nodes_out_good_node_in),
                cmocka_unit_test(test_set_nodes__removed_while_fetching__fetch_finishes_node_gone),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
