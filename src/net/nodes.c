/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live node lists and timeouts (a config reload).
 *
 * Node slots never move: a fetch, a put session, a pin or a probe names its node by slot
 * index and reads the slot's url and auth without the pool lock. So a node removed by a
 * reload is not freed: its slot is retired (choosers see it as disabled and never pick it
 * again; the prober leaves it alone) and whoever still uses it finishes with it (a fetch's
 * attempt, a put session bound to it until the session ends). Users are counted
 * (net_node_hold/net_node_release, under the pool lock); a retired slot is reused for a new
 * node only once it has no user and no probe running, and only then are its strings freed.
 * A slot's url therefore never changes under a holder: no use-after-free, whatever the order
 * of reloads and fetches.
 *
 * A new node starts down with its probe due at once: it is used as soon as it answers a probe
 * (within ~0.1 s), not before, so a wrong URL in a reload fails no read.
 *
 * Lock order: pool->lock only; auth files are read before it is taken.
 */
#define LOG_MODULE "net"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/log.h"

#include "internal.h"

size_t net_pool_slots(struct net_pool *p)
{
        return __atomic_load_n(&p->n_nodes, __ATOMIC_ACQUIRE);
}

void net_node_snap(const struct net_pool *p, size_t k, struct net_health *ret)
{
        *ret = p->nodes[k].h;
        if (p->nodes[k].retired)
                ret->state = NET_STATE_DISABLED;
}

bool net_node_hold(struct net_pool *p, size_t i)
{
        bool ok;

        pthread_mutex_lock(&p->lock);
        ok = i < p->n_nodes && !p->nodes[i].retired;
        if (ok)
                p->nodes[i].users++;
        pthread_mutex_unlock(&p->lock);
        return ok;
}

void net_node_release(struct net_pool *p, size_t i)
{
        pthread_mutex_lock(&p->lock);
        assert(p->nodes[i].users > 0);
        p->nodes[i].users--;
        pthread_mutex_unlock(&p->lock);
}

static void node_strings_free(struct node *n)
{
        free(n->url);
        if (n->auth)
                explicit_bzero(n->auth, strlen(n->auth));
        free(n->auth);
        n->url = NULL;
        n->auth = NULL;
}

/* The base URL without trailing slashes, in *ret (new string). */
static int node_url(const char *url, char **ret)
{
        size_t len = strlen(url);

        while (len > 0 && url[len - 1] == '/')
                len--;
        if (len == 0 || len > NET_MAX_URL) {
                log_error("node URL of %zu bytes: not 1..%d", len, NET_MAX_URL);
                return -EINVAL;
        }
        *ret = strndup(url, len);
        return *ret ? 0 : -ENOMEM;
}

int net_node_init(struct node *n, const struct net_node_config *nc)
{
        int r;

        r = node_url(nc->url, &n->url);
        if (r < 0)
                return r;
        n->kind = nc->kind;
        n->state_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(NET_STATE_LOG_INTERVAL_NS,
                                                                NET_STATE_LOG_BURST);
        if (nc->auth_file) {
                r = net_auth_read(nc->auth_file, &n->auth);
                if (r < 0)
                        return r;
        }
        (void)snprintf(n->st.url, sizeof(n->st.url), "%s", n->url);
        n->st.kind = n->kind;
        return 0;
}

void net_node_done(struct node *n)
{
        node_strings_free(n);
}

/* Whether live slot n is the node nc asks for (same kind, URL and auth). */
static bool node_is(const struct node *n, const struct node *want)
{
        return n->kind == want->kind && strcmp(n->url, want->url) == 0 &&
               ((!n->auth && !want->auth) ||
                (n->auth && want->auth && !strcmp(n->auth, want->auth)));
}

int net_pool_set_nodes(struct net_pool *p, const struct net_node_config *nodes, size_t n,
                       unsigned *ret_added, unsigned *ret_removed)
{
        struct node fresh[NET_MAX_NODES] = { 0 };
        bool keep[NET_MAX_NODES] = { 0 }, is_new[NET_MAX_NODES] = { 0 };
        size_t reuse[NET_MAX_NODES], n_reuse = 0, n_slots, n_new = 0;
        unsigned added = 0, removed = 0;
        int r = 0;

        if (n == 0 || n > NET_MAX_NODES)
                return -EINVAL;
        /* everything that can fail (URLs, auth files) before the pool changes */
        for (size_t i = 0; i < n; i++) {
                r = net_node_init(&fresh[i], &nodes[i]);
                if (r < 0)
                        goto out;
        }
        pthread_mutex_lock(&p->lock);
        n_slots = p->n_nodes;
        for (size_t i = 0; i < n; i++) {
                is_new[i] = true;
                for (size_t k = 0; k < n_slots && is_new[i]; k++)
                        if (!p->nodes[k].retired && !keep[k] && node_is(&p->nodes[k], &fresh[i])) {
                                keep[k] = true;
                                is_new[i] = false;
                        }
                n_new += is_new[i];
        }
        /* a slot for each new node: a retired one no one uses any more, else a fresh one at
         * the end; a slot this call retires is not reused by it (its users may still run) */
        for (size_t k = 0; k < n_slots; k++)
                if (p->nodes[k].retired && p->nodes[k].users == 0 && !p->nodes[k].probe_running)
                        reuse[n_reuse++] = k;
        if (n_new > n_reuse && n_slots + (n_new - n_reuse) > NET_MAX_NODES) {
                pthread_mutex_unlock(&p->lock);
                log_error("reload: no free node slot (%d at most; removed nodes still in use "
                          "take one until they are done): the node list stays",
                          NET_MAX_NODES);
                r = -E2BIG;
                goto out;
        }
        for (size_t k = 0; k < n_slots; k++)
                if (!p->nodes[k].retired && !keep[k]) {
                        p->nodes[k].retired = true;
                        removed++;
                }
        for (size_t i = 0, j = 0; i < n; i++) {
                struct node *nd, *f = &fresh[i];
                size_t at;

                if (!is_new[i])
                        continue;
                at = j < n_reuse ? reuse[j++] : p->n_nodes;
                nd = &p->nodes[at];
                /* field by field: probe_thread and probe_joinable belong to the prober (it
                 * joins the old node's finished probe before it starts the next one) */
                node_strings_free(nd);
                nd->kind = f->kind;
                nd->url = TAKE_PTR(f->url);
                nd->auth = TAKE_PTR(f->auth);
                nd->h = (struct net_health){ 0 };
                nd->st = f->st;
                nd->n_lat = nd->lat_next = 0;
                nd->add_from = 0;
                nd->state_log = f->state_log;
                nd->retired = false;
                nd->users = 0;
                /* down, probe due now: in use once it answers */
                nd->h.state = NET_STATE_DOWN;
                nd->h.next_probe_ns = 0;
                if (at == p->n_nodes)
                        __atomic_store_n(&p->n_nodes, p->n_nodes + 1, __ATOMIC_RELEASE);
                added++;
        }
        pthread_cond_broadcast(&p->stop_cond); /* the prober looks now */
        pthread_mutex_unlock(&p->lock);
        *ret_added = added;
        *ret_removed = removed;
out:
        for (size_t i = 0; i < n; i++)
                node_strings_free(&fresh[i]);
        return r;
}

void net_pool_set_timeouts(struct net_pool *p, uint64_t timeout_ms, uint64_t stall_timeout_ms,
                           uint64_t first_byte_timeout_ms)
{
        __atomic_store_n(&p->cfg.timeout_ms, timeout_ms, __ATOMIC_RELAXED);
        __atomic_store_n(&p->cfg.stall_timeout_ms, stall_timeout_ms, __ATOMIC_RELAXED);
        __atomic_store_n(&p->cfg.first_byte_timeout_ms,
                         first_byte_timeout_ms ? first_byte_timeout_ms : NET_FIRST_BYTE_DEFAULT_MS,
                         __ATOMIC_RELAXED);
}
