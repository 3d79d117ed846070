/* SPDX-License-Identifier: GPL-2.0-or-later */
/* IPNS through a scripted transport: publish on the node that has the key (key/list), key/gen
 * only when asked, failover past a dead node, errors named per node; resolve with nocache,
 * again without it when a node refuses the flag, failover, and answers that are no root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/cid.h"
#include "prsmfs/net.h"

#include "fake_net.h"

#define MS      1000000ull
#define N_NODES 2
#define ROOT    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
#define ID      "12D3KooWSWe8KEvT6nMhVkgcswWAiVNrQYFLK3Ufic7Q5Ynn3NK5"

struct fnode {
        bool dead;
        bool has_key;         /* key/list names "k" */
        bool refuses_nocache; /* js-ipfs --offline: nocache is an error */
        const char *path;     /* what name/resolve answers (NULL: "could not resolve name") */
        unsigned lists, gens, publishes, resolves;
};

struct fake {
        struct fake_net net;
        struct fnode n[N_NODES];
};

static int fake_http(void *t, const struct net_http_request *req, struct buf *body,
                     struct net_http_response *res)
{
        struct fake *f = t;
        struct fnode *n;
        char json[512];

        *res = (struct net_http_response){ .status = 200 };
        assert_true(strncmp(req->url, "http://n", 8) == 0);
        n = &f->n[req->url[8] - '1'];
        if (n->dead)
                return -ECONNREFUSED;
        if (strstr(req->url, "/api/v0/key/list")) {
                n->lists++;
                return fake_net_answer(body, n->has_key ? "{\"Keys\":[{\"Name\":\"self\",\"Id\":"
                                                          "\"12D3KooWself\"},{\"Name\":\"k\","
                                                          "\"Id\":\"" ID "\"}]}"
                                                        : "{\"Keys\":[{\"Name\":\"self\",\"Id\":"
                                                          "\"12D3KooWself\"}]}");
        }
        if (strstr(req->url, "/api/v0/key/gen?")) {
                assert_non_null(strstr(req->url, "arg=k&type=ed25519"));
                n->gens++;
                n->has_key = true;
                return fake_net_answer(body, "{\"Name\":\"k\",\"Id\":\"" ID "\"}");
        }
        if (strstr(req->url, "/api/v0/name/publish?")) {
                assert_non_null(strstr(req->url, "arg=/ipfs/" ROOT "&key=k&allow-offline=true"));
                n->publishes++;
                if (!n->has_key) {
                        res->status = 500;
                        return fake_net_answer(body, "{\"Message\":\"no key by the given name "
                                                     "was found\",\"Code\":0,\"Type\":\"error\"}");
                }
                return fake_net_answer(body, "{\"Name\":\"" ID "\",\"Value\":\"/ipfs/" ROOT "\"}");
        }
        if (strstr(req->url, "/api/v0/name/resolve?")) {
                assert_non_null(strstr(req->url, "arg=/ipns/" ID "&recursive=true"));
                n->resolves++;
                if (n->refuses_nocache && strstr(req->url, "nocache=true")) {
                        res->status = 500;
                        return fake_net_answer(body, "{\"Message\":\"cannot specify both offline "
                                                     "and nocache\",\"Code\":0,\"Type\":"
                                                     "\"error\"}");
                }
                if (!n->path) {
                        res->status = 500;
                        return fake_net_answer(body, "{\"Message\":\"could not resolve name\","
                                                     "\"Code\":0,\"Type\":\"error\"}");
                }
                (void)snprintf(json, sizeof(json), "{\"Path\":\"%s\"}", n->path);
                return fake_net_answer(body, json);
        }
        fail_msg("unexpected request %s", req->url);
        return -EIO;
}

static struct net_pool *make_pool(struct fake *f)
{
        static const struct net_node_config nodes[N_NODES] = {
                { .kind = NET_NODE_RPC, .url = "http://n1" },
                { .kind = NET_NODE_RPC, .url = "http://n2" },
        };
        const struct net_config cfg = { .nodes = nodes,
                                        .n_nodes = N_NODES,
                                        .timeout_ms = 10000,
                                        .stall_timeout_ms = 500,
                                        .retry_base_delay_ms = 100,
                                        .retry_max_delay_ms = 2000,
                                        .retry_max_attempts = 3 };
        struct net_pool *p;

        fake_net_init(&f->net, fake_http, f, 0x1234567);
        fake_net_advance(&f->net, 1000 * MS);
        assert_int_equal(net_pool_new_with_transport(&cfg, &f->net.ops, &f->net, &p), 0);
        return p;
}

static uint64_t deadline(struct fake *f)
{
        return fake_net_now(&f->net) + 10000 * MS;
}

static struct cid root(void)
{
        struct cid c;

        assert_int_equal(cid_parse(ROOT, strlen(ROOT), &c), 0);
        return c;
}

static void test_publish__key_on_second_node__published_there(void **state)
{
        struct fake f = { .n[1].has_key = true };
        struct net_pool *p = make_pool(&f);
        struct net_ipns_published pub;
        struct cid r = root();
        char err[512];

        (void)state;
        assert_int_equal(net_ipns_publish(p, "k", &r, false, deadline(&f), &pub, err, sizeof(err)),
                         0);
        assert_string_equal(pub.name, ID);
        assert_string_equal(pub.node, "http://n2");
        assert_false(pub.is_key_created);
        assert_string_equal(err, "");
        assert_int_equal(f.n[0].publishes, 0);
        assert_int_equal(f.n[1].publishes, 1);
        assert_int_equal(f.n[0].gens + f.n[1].gens, 0);
        net_pool_free(p);
}

static void test_publish__no_node_has_key__enokey_unless_create(void **state)
{
        struct fake f = { 0 };
        struct net_pool *p = make_pool(&f);
        struct net_ipns_published pub;
        struct cid r = root();
        char err[512];

        (void)state;
        assert_int_equal(net_ipns_publish(p, "k", &r, false, deadline(&f), &pub, err, sizeof(err)),
                         -ENOKEY);
        assert_int_equal(f.n[0].lists, 1);
        assert_int_equal(f.n[1].lists, 1);
        assert_int_equal(f.n[0].gens + f.n[1].gens + f.n[0].publishes + f.n[1].publishes, 0);
        assert_int_equal(net_ipns_publish(p, "k", &r, true, deadline(&f), &pub, err, sizeof(err)),
                         0);
        assert_true(pub.is_key_created);
        assert_int_equal(f.n[0].gens + f.n[1].gens, 1);
        assert_int_equal(f.n[0].publishes + f.n[1].publishes, 1);
        assert_string_equal(pub.name, ID);
        net_pool_free(p);
}

static void test_publish__dead_node__next_one_and_all_dead_named(void **state)
{
        struct fake f = { .n[0].dead = true, .n[1].has_key = true };
        struct net_pool *p = make_pool(&f);
        struct net_ipns_published pub;
        struct cid r = root();
        char err[512];

        (void)state;
        assert_int_equal(net_ipns_publish(p, "k", &r, false, deadline(&f), &pub, err, sizeof(err)),
                         0);
        assert_string_equal(pub.node, "http://n2");
        f.n[1].dead = true;
        assert_int_equal(net_ipns_publish(p, "k", &r, true, deadline(&f), &pub, err, sizeof(err)),
                         -EHOSTUNREACH);
        assert_non_null(strstr(err, "http://n2"));
        assert_int_equal(
                net_ipns_publish(p, "bad key", &r, true, deadline(&f), &pub, err, sizeof(err)),
                -EINVAL);
        net_pool_free(p);
}

static void test_resolve__nocache_refused__asked_again_without(void **state)
{
        struct fake f = { .n[0].refuses_nocache = true, .n[0].path = "/ipfs/" ROOT };
        struct net_pool *p = make_pool(&f);
        struct cid got, want = root();
        char err[512];

        (void)state;
        assert_int_equal(net_ipns_resolve(p, ID, deadline(&f), &got, err, sizeof(err)), 0);
        assert_true(cid_equal(&got, &want));
        assert_int_equal(f.n[0].resolves, 2);
        assert_int_equal(f.n[1].resolves, 0);
        net_pool_free(p);
}

static void test_resolve__failover_and_bad_answers__named(void **state)
{
        struct fake f = { .n[0].dead = true, .n[1].path = "/ipfs/" ROOT };
        struct net_pool *p = make_pool(&f);
        struct cid got, want = root();
        char err[512];

        (void)state;
        assert_int_equal(net_ipns_resolve(p, ID, deadline(&f), &got, err, sizeof(err)), 0);
        assert_true(cid_equal(&got, &want));
        /* a path inside a tree, then no record at all: refused, the answer named */
        f.n[1].path = "/ipfs/" ROOT "/sub";
        assert_int_equal(net_ipns_resolve(p, ID, deadline(&f), &got, err, sizeof(err)), -EREMOTEIO);
        assert_non_null(strstr(err, "/sub"));
        f.n[1].path = NULL;
        assert_int_equal(net_ipns_resolve(p, ID, deadline(&f), &got, err, sizeof(err)), -EREMOTEIO);
        assert_non_null(strstr(err, "could not resolve name"));
        f.n[1].dead = true;
        assert_int_equal(net_ipns_resolve(p, ID, deadline(&f), &got, err, sizeof(err)),
                         -EHOSTUNREACH);
        net_pool_free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_publish__key_on_second_node__published_there),
                cmocka_unit_test(test_publish__no_node_has_key__enokey_unless_create),
                cmocka_unit_test(test_publish__dead_node__next_one_and_all_dead_named),
                cmocka_unit_test(test_resolve__nocache_refused__asked_again_without),
                cmocka_unit_test(test_resolve__failover_and_bad_answers__named),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
