/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fake_net.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/base.h"
#include "prsmfs/net.h"

static uint64_t fake_now(void *t)
{
        struct fake_net *n = t;

        return n->is_real_time ? net_now_ns() : __atomic_load_n(&n->now_ns, __ATOMIC_SEQ_CST);
}

static void fake_sleep_until(void *t, uint64_t ns)
{
        struct fake_net *n = t;
        uint64_t now = fake_now(n), wait;

        if (ns <= now)
                return;
        if (!n->is_real_time) {
                /* concurrent sleepers: the clock only moves forward */
                while (now < ns && !__atomic_compare_exchange_n(&n->now_ns, &now, ns, false,
                                                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                        ;
                return;
        }
        wait = ns - now;
        if (n->max_sleep_ns && wait > n->max_sleep_ns)
                wait = n->max_sleep_ns;
        usleep((useconds_t)(wait / 1000));
}

static uint64_t fake_random(void *t)
{
        return ((struct fake_net *)t)->rnd;
}

static int fake_http(void *t, const struct net_http_request *req, struct buf *body,
                     struct net_http_response *res)
{
        struct fake_net *n = t;

        return n->http(n->userdata, req, body, res);
}

void fake_net_init(struct fake_net *n, fake_net_http_fn http, void *userdata, uint64_t rnd)
{
        n->ops = (struct net_transport_ops){ .http = fake_http,
                                             .now_ns = fake_now,
                                             .sleep_until = fake_sleep_until,
                                             .random = fake_random,
                                             .no_probe_thread = true };
        n->http = http;
        n->userdata = userdata;
        n->rnd = rnd;
}

uint64_t fake_net_now(struct fake_net *n)
{
        return fake_now(n);
}

void fake_net_advance(struct fake_net *n, uint64_t ns)
{
        __atomic_add_fetch(&n->now_ns, ns, __ATOMIC_SEQ_CST);
}

void fake_net_pool_one_node(struct fake_net *n, struct net_pool **ret)
{
        static const struct net_node_config node = { .kind = NET_NODE_RPC, .url = "http://n:1" };

        assert_int_equal(
                net_pool_new_with_transport(&(struct net_config){ .nodes = &node,
                                                                  .n_nodes = 1,
                                                                  .timeout_ms = 10000,
                                                                  .stall_timeout_ms = 500,
                                                                  .retry_max_attempts = 1,
                                                                  .is_hedging_disabled = true },
                                            &n->ops, n, ret),
                0);
}

int fake_net_wait(struct fake_net *n, const struct net_http_request *req, uint64_t wait_ns)
{
        uint64_t limit = req->first_byte_ns ? req->first_byte_ns : req->stall_ns, waited = 0;

        assert_false(n->is_real_time);
        assert_true(limit > 0);
        for (;;) {
                uint64_t now = fake_now(n), step = MIN(limit, wait_ns - waited);

                if (now + step >= req->deadline_ns) {
                        if (wait_ns - waited <= req->deadline_ns - now) {
                                fake_net_advance(n, wait_ns - waited);
                                return 0;
                        }
                        fake_sleep_until(n, req->deadline_ns);
                        return -ETIMEDOUT;
                }
                fake_net_advance(n, step);
                waited += step;
                if (waited >= wait_ns)
                        return 0;
                __atomic_add_fetch(&n->stall_asks, 1, __ATOMIC_SEQ_CST);
                if (!req->on_stall || req->on_stall(req->stall_ud))
                        return -ETIMEDOUT;
        }
}

void fake_net_gate_init(struct fake_net_gate *g)
{
        assert_int_equal(pthread_mutex_init(&g->lock, NULL), 0);
        assert_int_equal(pthread_cond_init(&g->cond, NULL), 0);
}

void fake_net_gate_destroy(struct fake_net_gate *g)
{
        pthread_mutex_destroy(&g->lock);
        pthread_cond_destroy(&g->cond);
}

void fake_net_gate_pass(struct fake_net_gate *g)
{
        pthread_mutex_lock(&g->lock);
        if (g->is_closed) {
                g->is_reached = true;
                pthread_cond_broadcast(&g->cond);
                while (g->is_closed)
                        pthread_cond_wait(&g->cond, &g->lock);
        }
        pthread_mutex_unlock(&g->lock);
}

void fake_net_gate_open_when(struct fake_net_gate *g, struct net_pool *p, uint64_t fetches)
{
        struct net_stats st;

        pthread_mutex_lock(&g->lock);
        while (!g->is_reached)
                pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
        for (;;) {
                net_pool_get_stats(p, &st);
                if (st.fetches == fetches)
                        break;
                usleep(1000);
        }
        pthread_mutex_lock(&g->lock);
        g->is_closed = false;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
}

int fake_net_answer(struct buf *body, const char *s)
{
        return buf_append(body, s, strlen(s));
}

size_t fake_net_form_data(const struct net_http_request *req, const char **ret)
{
        const char *ct = NULL, *bnd, *data, *end;
        char marker[80];

        for (const char *const *h = req->headers; h && *h; h++)
                if (strncmp(*h, "Content-Type: multipart/form-data; boundary=", 44) == 0)
                        ct = *h;
        assert_non_null(ct);
        bnd = ct + 44;
        assert_true(req->body_len > strlen(bnd) + 2);
        assert_memory_equal(req->body, "--", 2);
        assert_memory_equal((const char *)req->body + 2, bnd, strlen(bnd));
        data = memmem(req->body, req->body_len, "\r\n\r\n", 4);
        assert_non_null(data);
        data += 4;
        assert_true((size_t)snprintf(marker, sizeof(marker), "\r\n--%s--\r\n", bnd) <
                    sizeof(marker));
        end = (const char *)req->body + req->body_len - strlen(marker);
        assert_memory_equal(end, marker, strlen(marker));
        *ret = data;
        return (size_t)(end - data);
}

bool fake_net_arg_cid(const char *url, struct cid *ret)
{
        const char *a = strstr(url, "arg=");

        return a && cid_parse(a + 4, strcspn(a + 4, "&"), ret) >= 0;
}

static int ignore_block(const struct cid *cid, const uint8_t *block, size_t len, void *userdata)
{
        (void)cid, (void)block, (void)len, (void)userdata;
        return 0;
}

void fake_net_add_root(const struct unixfs_params *p, const void *data, size_t len, struct cid *ret)
{
        struct unixfs_builder *b = NULL;

        assert_int_equal(unixfs_builder_new(p, ignore_block, NULL, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, len), 0);
        assert_int_equal(unixfs_builder_finish(b, ret, NULL, NULL), 0);
        unixfs_builder_free(b);
}

void fake_net_js_add_root(const void *data, size_t len, size_t chunk, struct cid *ret)
{
        const struct unixfs_params p = {
                .cid_version = 1, .raw_leaves = true, .chunk_size = chunk, .max_links = 174
        };

        fake_net_add_root(&p, data, len, ret);
}

int fake_net_nice_of(pid_t tid)
{
        int v;

        errno = 0;
        v = getpriority(PRIO_PROCESS, (id_t)tid);
        return errno ? -100 : v;
}
