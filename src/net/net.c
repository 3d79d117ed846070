/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pool: verified block fetches across nodes.
 *
 * Failover. A request tries the best usable node (net_health_choose); on an error, a 5xx, a
 * 429 or a block that does not hash to its CID, that node's health is updated and the request
 * moves on at once to the next best node. Each attempt on the same node waits a backoff first
 * and allows it twice the stall time of the previous one, so a slow-but-alive set of nodes
 * still answers before the request's deadline. Fetching a block is idempotent, so moving a
 * request is always safe.
 *
 * Stalls. A stall is a reason to move, not a failure in itself: when an attempt stalls (no
 * answer started within first_byte_timeout, or no byte for stall_timeout once it started),
 * the engine asks stall_gives_up whether another node could take the request now. Only then
 * is the attempt given up (and the node demoted); with no other node the transfer runs on
 * until the request's deadline, keeping what it received, so a single slow or trickling node
 * serves every read it can within `timeout` and is never marked down for being slow. An
 * attempt ended by the request's deadline is no fault of the node (NET_DEADLINE).
 *
 * Probes. Down and disabled nodes are probed with backoff by the probe thread (a trustless
 * gateway must answer the empty block bafkqaaa as application/vnd.ipld.raw; an RPC node
 * /api/v0/version); a node that answers is back in use. With is_checking_nodes every node is
 * probed once at start, all at once, and each that cannot serve is named in one warning line
 * with the reason (refused, unresolvable, wrong URL, not trustless) and taken out of use until
 * a probe succeeds, instead of failing the first reads.
 *
 * De-duplication. Concurrent requests for one CID share a single fetch: the first caller
 * (the owner) runs the attempts; the others wait on the in-flight entry until the owner
 * publishes a verified block or an error. A waiter whose own deadline passes leaves with
 * -ETIMEDOUT; the entry lives until its last user drops it.
 *
 * Verification happens in the owner's thread (not the engine's), so hashing runs in parallel
 * across readers while the engine thread only moves bytes. An owner may be a background
 * thread (a warm-up fetcher, niced: thread.h); a foreground caller that comes to wait for its
 * fetch gives it the process's priority back for the rest of it (when the daemon may: root),
 * so a reader never waits behind a niced thread for long.
 *
 * Lock order: pool->lock only; never held across a transport call, hashing or logging.
 */
#define LOG_MODULE "net"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prsmfs/log.h"
#include "prsmfs/metrics.h"
#include "prsmfs/thread.h"

#include "internal.h"

void net_timespec_in(uint64_t wait_ns, struct timespec *ret)
{
        /* condition variables wait on CLOCK_REALTIME: convert a monotonic wait */
        clock_gettime(CLOCK_REALTIME, ret);
        ret->tv_sec += (time_t)(wait_ns / 1000000000u);
        ret->tv_nsec += (long)(wait_ns % 1000000000u);
        if (ret->tv_nsec >= 1000000000) {
                ret->tv_sec++;
                ret->tv_nsec -= 1000000000;
        }
}

struct net_block *net_block_ref(struct net_block *b)
{
        if (b)
                __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
        return b;
}

bool net_block_claim(struct net_block *b)
{
        return !__atomic_exchange_n(&b->stored, true, __ATOMIC_ACQ_REL);
}

void net_block_unref(struct net_block *b)
{
        if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
                free(b->data);
                free(b);
        }
}

/* Reads "bearer:TOKEN" / "basic:user:pass" from a file only its owner, the daemon's user,
 * can read. */
int net_auth_read(const char *path, char **ret)
{
        char buf[MAX_AUTH], hdr[MAX_AUTH + 300];
        struct stat st;
        ssize_t n;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "cannot open auth file %s", path);
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "cannot stat auth file %s", path);
        }
        if (st.st_mode & 0077) {
                close(fd);
                log_error("auth file %s is accessible by group or others (mode %04o): refusing "
                          "it; chmod 600 it",
                          path, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        if (st.st_uid != geteuid()) {
                close(fd);
                log_error("auth file %s is owned by uid %u, not by this prsmfs (uid %u): refusing "
                          "it; chown it to the daemon's user",
                          path, (unsigned)st.st_uid, (unsigned)geteuid());
                return -EPERM;
        }
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return log_error_errno(n < 0 ? -errno : -EINVAL, "cannot read auth file %s", path);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strncmp(buf, "basic:", 6) == 0) {
                /* Kubo: basic:user:pass -> base64(user:pass) */
                static const char b64[] =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                const uint8_t *s = (const uint8_t *)buf + 6;
                size_t len = strlen((const char *)s), o = 0;
                char enc[MAX_AUTH / 3 * 4 + 8];

                for (size_t i = 0; i < len; i += 3) {
                        uint32_t v = (uint32_t)s[i] << 16;

                        if (i + 1 < len)
                                v |= (uint32_t)s[i + 1] << 8;
                        if (i + 2 < len)
                                v |= s[i + 2];
                        enc[o++] = b64[(v >> 18) & 63];
                        enc[o++] = b64[(v >> 12) & 63];
                        enc[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
                        enc[o++] = i + 2 < len ? b64[v & 63] : '=';
                }
                enc[o] = '\0';
                (void)snprintf(hdr, sizeof(hdr), "Authorization: Basic %s", enc);
        } else
                (void)snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s",
                               strncmp(buf, "bearer:", 7) == 0 ? buf + 7 : buf);
        *ret = strdup(hdr);
        if (!*ret)
                r = -ENOMEM;
        explicit_bzero(buf, sizeof(buf));
        explicit_bzero(hdr, sizeof(hdr));
        return r;
}

static void *prober_thread(void *arg);

int net_pool_new_with_transport(const struct net_config *cfg, const struct net_transport_ops *ops,
                                void *t, struct net_pool **ret)
{
        struct net_pool *p;
        int r = 0;

        if (cfg->n_nodes == 0 || cfg->n_nodes > NET_MAX_NODES)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->ops = ops;
        p->t = t;
        p->cfg = *cfg;
        p->cfg.nodes = NULL; /* borrowed pointers are not kept */
        p->cfg.pinning_services = NULL;
        p->cfg.ca_bundle = NULL;
        if (!p->cfg.first_byte_timeout_ms)
                p->cfg.first_byte_timeout_ms = NET_FIRST_BYTE_DEFAULT_MS;
        p->hp = (struct net_health_params){ .base_ms = cfg->retry_base_delay_ms,
                                            .max_ms = cfg->retry_max_delay_ms };
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->stop_cond, NULL);
        for (size_t i = 0; i < cfg->n_nodes; i++) {
                r = net_node_init(&p->nodes[i], &cfg->nodes[i]);
                p->n_nodes++; /* half-built: freed by net_pool_free */
                if (r < 0)
                        goto fail;
        }
        if (cfg->n_pinning_services > NET_MAX_NODES) {
                r = -EINVAL;
                goto fail;
        }
        if (cfg->n_pinning_services) {
                p->services = calloc(cfg->n_pinning_services, sizeof(*p->services));
                if (!p->services) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        for (size_t i = 0; i < cfg->n_pinning_services; i++) {
                const struct net_pinning_service_config *sc = &cfg->pinning_services[i];
                struct service *sv = &p->services[i];
                size_t len = strlen(sc->url);

                while (len > 0 && sc->url[len - 1] == '/')
                        len--;
                if (len > NET_MAX_URL) {
                        log_error("pinning service URL of %zu bytes: longer than %d", len,
                                  NET_MAX_URL);
                        r = -EINVAL;
                        goto fail;
                }
                sv->rate = malloc(sizeof(*sv->rate));
                if (sv->rate)
                        net_bucket_init(sv->rate, cfg->pin_requests_per_minute,
                                        cfg->pin_burst_size);
                sv->url = strndup(sc->url, len);
                p->n_services++; /* freed from here on, whatever of it was made */
                if (!sv->url || !sv->rate) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (sc->auth_file) {
                        r = net_auth_read(sc->auth_file, &sv->auth);
                        if (r < 0)
                                goto fail;
                }
        }
        r = net_cluster_init(p, cfg);
        if (r < 0) {
                log_error_errno(r, "cannot set up the IPFS Cluster API %s", cfg->cluster_api);
                goto fail;
        }
        if (!ops->no_probe_thread) {
                r = -pthread_create(&p->prober, NULL, prober_thread, p);
                if (r < 0)
                        goto fail;
                p->prober_started = true;
        }
        *ret = p;
        return 0;
fail:
        net_pool_free(p);
        return r;
}

int net_pool_new(const struct net_config *cfg, struct net_pool **ret)
{
        struct net_engine *e;
        struct net_pool *p;
        int r;

        r = net_engine_new(cfg, &e);
        if (r < 0)
                return r;
        r = net_pool_new_with_transport(cfg, &net_engine_ops, e, &p);
        if (r < 0) {
                net_engine_free(e);
                return r;
        }
        p->engine = e;
        *ret = p;
        return 0;
}

void net_pool_shutdown(struct net_pool *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->stop_cond);
        pthread_mutex_unlock(&p->lock);
        if (p->engine)
                net_engine_shutdown(p->engine);
}

void net_pool_free(struct net_pool *p)
{
        if (!p)
                return;
        net_pool_shutdown(p);
        if (p->prober_started)
                pthread_join(p->prober, NULL);
        /* the engine completes anything still in flight with -ECANCELED */
        net_engine_free(p->engine);
        for (size_t i = 0; i < p->n_nodes; i++)
                net_node_done(&p->nodes[i]);
        for (size_t i = 0; i < p->n_services; i++) {
                free(p->services[i].url);
                if (p->services[i].rate)
                        net_bucket_done(p->services[i].rate);
                free(p->services[i].rate);
                if (p->services[i].auth)
                        explicit_bzero(p->services[i].auth, strlen(p->services[i].auth));
                free(p->services[i].auth);
        }
        free(p->services);
        net_cluster_free(p);
        pthread_cond_destroy(&p->stop_cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

/*
 * One line per change of a node's state, and at most STATE_LOG_BURST a minute per node: a
 * node that flaps between up and suspect under load would otherwise log a line per request.
 * The line after a quiet window says how many changes it left out.
 */
static void log_state_change(struct node *n, enum net_node_state before, enum net_node_state after,
                             const char *how)
{
        static const char *const names[_NET_STATE_MAX] = {
                [NET_STATE_UP] = "up",
                [NET_STATE_SUSPECT] = "suspect",
                [NET_STATE_DOWN] = "down",
                [NET_STATE_DISABLED] = "disabled",
        };
        unsigned dropped;
        char more[64] = "";

        if (before == after || !log_ratelimit_ok(&n->state_log, net_now_ns(), &dropped))
                return;
        if (dropped)
                (void)snprintf(more, sizeof(more), " (%u earlier changes not logged)", dropped);
        if (after == NET_STATE_UP)
                log_notice("node %s is up again%s%s", n->url, how ? how : "", more);
        else
                log_warning("node %s is now %s (was %s)%s", n->url, names[after], names[before],
                            more);
}

void net_pool_report(struct net_pool *p, size_t i, enum net_outcome o, uint64_t latency_ms,
                     uint64_t retry_after_ms, size_t bytes)
{
        uint64_t now = p->ops->now_ns(p->t), rnd = p->ops->random(p->t);
        struct node *n = &p->nodes[i];
        enum net_node_state before, after;

        pthread_mutex_lock(&p->lock);
        before = n->h.state;
        net_health_report(&n->h, &p->hp, o, latency_ms, retry_after_ms, now, rnd);
        n->st.requests++;
        n->st.bytes += bytes;
        if (o == NET_FAIL || o == NET_NOT_FOUND)
                n->st.errors++;
        else if (o == NET_TIMEOUT || o == NET_DEADLINE)
                n->st.timeouts++;
        else if (o == NET_BAD_BLOCK)
                n->st.bad_blocks++;
        else if (o == NET_THROTTLED)
                n->st.throttled++;
        after = n->h.state;
        pthread_mutex_unlock(&p->lock);
        /* (a node disabled: attempt() said why, with the CID) */
        if (after == NET_STATE_DOWN || after == NET_STATE_SUSPECT || after == NET_STATE_UP)
                log_state_change(n, before, after, NULL);
}

static bool content_type_is(const char *ct, const char *want)
{
        size_t n = strlen(want);

        return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void record_latency(struct net_pool *p, size_t i, uint64_t ns)
{
        struct node *n = &p->nodes[i];

        pthread_mutex_lock(&p->lock);
        n->lat_us[n->lat_next] = (uint32_t)MIN(ns / 1000, UINT32_MAX);
        n->lat_next = (n->lat_next + 1) % NET_LAT_SAMPLES;
        if (n->n_lat < NET_LAT_SAMPLES)
                n->n_lat++;
        pthread_mutex_unlock(&p->lock);
}

/* What one attempt may take, and the nodes its request may still move to. */
struct try_limits {
        uint64_t stall_ns, first_byte_ns, deadline_ns;
        const bool *skip; /* nodes the request may not try any more */
        const int *abort; /* the caller's withdrawal (net_set_abort), may be NULL */
};

/* This thread's withdrawal flag (net_set_abort): its fetches and waits end with -ECANCELED
 * once it is set. */
static _Thread_local const int *net_abort;

void net_set_abort(const int *flag)
{
        net_abort = flag;
}

static bool is_aborted(const int *flag)
{
        return flag && __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* Called by the engine when an attempt at `node` stalled (see the top of the file). */
struct stall_ctx {
        struct net_pool *p;
        size_t node;
        bool skip[NET_MAX_NODES];
        size_t n_skip; /* slots skip covers */
};

static bool stall_gives_up(void *ud)
{
        struct stall_ctx *c = ud;
        struct net_pool *p = c->p;
        struct net_health snap[NET_MAX_NODES];
        uint64_t now = p->ops->now_ns(p->t);
        bool stop;

        size_t n;

        pthread_mutex_lock(&p->lock);
        stop = p->stop;
        n = MIN(p->n_nodes, c->n_skip); /* a node added since the attempt began: not counted */
        for (size_t k = 0; k < n; k++)
                net_node_snap(p, k, &snap[k]);
        pthread_mutex_unlock(&p->lock);
        return stop || net_health_choose(snap, n, c->skip, now) >= 0;
}

/* Hands a verified body over as a block, giving back what a size hint over-allocated. */
static int block_from_body(const struct cid *cid, struct buf *body, struct net_block **ret)
{
        struct net_block *b = calloc(1, sizeof(*b));
        size_t cap = body->cap, len;

        if (!b)
                return -ENOMEM;
        b->cid = *cid;
        b->refs = 1;
        b->data = buf_steal(body, &len);
        b->len = len;
        if (b->data && cap - len > 4096 && cap - len > len / 8) {
                uint8_t *q = realloc(b->data, len ? len : 1);

                if (q) /* else keep the larger buffer */
                        b->data = q;
        }
        if (!b->data) {
                b->data = malloc(1);
                if (!b->data) {
                        free(b);
                        return -ENOMEM;
                }
        }
        *ret = b;
        return 0;
}

/* One attempt at node i. 0 and *ret on a verified block, else the outcome in *ret_o. */
static int attempt(struct net_pool *p, size_t i, const struct cid *cid, const char *cidstr,
                   const struct try_limits *lim, const int *cancel, struct net_block **ret,
                   enum net_outcome *ret_o, uint64_t *ret_retry_after)
{
        struct node *n = &p->nodes[i];
        const char *headers[3] = { 0 };
        struct net_http_response res = { 0 };
        struct stall_ctx sc = { .p = p, .node = i };
        char url[1024];
        struct buf body;
        uint64_t t0 = p->ops->now_ns(p->t);
        size_t h = 0;
        int r;

        sc.n_skip = net_pool_slots(p);
        for (size_t k = 0; k < sc.n_skip; k++)
                sc.skip[k] = k == i || (lim->skip && lim->skip[k]);
        if (n->kind == NET_NODE_RPC)
                (void)snprintf(url, sizeof(url), "%s/api/v0/block/get?arg=%s", n->url, cidstr);
        else {
                (void)snprintf(url, sizeof(url), "%s/ipfs/%s?format=raw", n->url, cidstr);
                headers[h++] = "Accept: application/vnd.ipld.raw";
        }
        if (n->auth)
                headers[h++] = n->auth;
        buf_init(&body, CID_MAX_BLOCK);
        r = p->ops->http(p->t,
                         &(struct net_http_request){
                                 .url = url,
                                 .post = n->kind == NET_NODE_RPC,
                                 .headers = headers,
                                 .stall_ns = lim->stall_ns,
                                 .first_byte_ns = lim->first_byte_ns,
                                 .on_stall = stall_gives_up,
                                 .stall_ud = &sc,
                                 .deadline_ns = lim->deadline_ns,
                                 .max_body = CID_MAX_BLOCK,
                                 .size_hint = __atomic_load_n(&p->size_hint, __ATOMIC_RELAXED),
                                 .cancel = cancel,
                                 .abort = lim->abort },
                         &body, &res);
        *ret_retry_after = 0;
        if (r == -ECANCELED && is_aborted(lim->abort)) {
                buf_done(&body);
                return -ECANCELED; /* withdrawn by the caller: no fault of the node */
        }
        if (r == -ECANCELED && cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE)) {
                buf_done(&body);
                return 2; /* lost a hedging race: no fault of the node */
        }
        if (r < 0) {
                *ret_o = r == -ETIMEDOUT ? NET_TIMEOUT : NET_FAIL;
                if (r == -ETIMEDOUT && p->ops->now_ns(p->t) >= lim->deadline_ns)
                        *ret_o = NET_DEADLINE;
                if (r == -E2BIG)
                        *ret_o = NET_BAD_BLOCK; /* larger than any block: lying */
                log_debug_errno(r, "fetching %s from %s failed", cidstr, n->url);
                goto fail;
        }
        if (res.status == 429) {
                *ret_o = NET_THROTTLED;
                *ret_retry_after = res.retry_after_ms;
                goto fail;
        }
        if (res.status == 404 || res.status == 410 || res.status == 451) {
                *ret_o = NET_NOT_FOUND;
                goto fail;
        }
        if (res.status != 200) {
                *ret_o = NET_FAIL;
                log_debug("fetching %s from %s: HTTP %ld", cidstr, n->url, res.status);
                goto fail;
        }
        if (n->kind == NET_NODE_GATEWAY &&
            !content_type_is(res.content_type, "application/vnd.ipld.raw")) {
                bool was_disabled;

                /* js-ipfs's gateway, for one, answers file bytes: not a trustless gateway */
                *ret_o = NET_UNUSABLE;
                pthread_mutex_lock(&p->lock);
                was_disabled = n->h.state == NET_STATE_DISABLED;
                pthread_mutex_unlock(&p->lock);
                if (!was_disabled)
                        log_warning("node %s answered %s as '%s', not application/vnd.ipld.raw: "
                                    "not a trustless gateway, disabled until a probe gets a raw "
                                    "block",
                                    n->url, cidstr, res.content_type);
                goto fail;
        }
        r = cid_verify(cid, body.p ? body.p : (const uint8_t *)"", body.len);
        if (r < 0) {
                *ret_o = r == -EILSEQ || r == -E2BIG ? NET_BAD_BLOCK : NET_FAIL;
                log_warning("node %s sent bytes that do not match %s, fetching elsewhere", n->url,
                            cidstr);
                goto fail;
        }
        r = block_from_body(cid, &body, ret);
        if (r < 0) {
                buf_done(&body);
                return r;
        }
        __atomic_store_n(&p->size_hint, (*ret)->len, __ATOMIC_RELAXED);
        metrics_content_size((*ret)->len);
        record_latency(p, i, p->ops->now_ns(p->t) - t0);
        net_pool_report(p, i, NET_OK, (p->ops->now_ns(p->t) - t0) / 1000000, 0, (*ret)->len);
        return 0;
fail:
        buf_done(&body);
        return 1;
}

/* The in-flight entry whose fetch this thread runs as its owner (for hedging's legs) */
static __thread struct inflight *owning;

/* One attempt in a hedging race, run on its own thread. */
struct leg {
        struct race *race;
        size_t node;
        int r; /* attempt()'s */
        enum net_outcome o;
        uint64_t retry_after;
        struct net_block *b;
        bool done; /* race->lock */
        pthread_t thread;
};

struct race {
        struct net_pool *p;
        struct inflight *f; /* the fetch this race runs for, NULL if none */
        const struct cid *cid;
        const char *cidstr;
        struct try_limits lim;
        int cancel; /* atomic: set by the first verified answer */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct leg legs[2];
};

/* A leg of a background owner's fetch inherited its nice: it is un-niced with the owner
 * (boost), so it says which thread it is while it runs. */
static void leg_register(struct race *rc, struct leg *l, bool on)
{
        if (!rc->f)
                return;
        pthread_mutex_lock(&rc->p->lock);
        rc->f->tids[1 + (l - rc->legs)] = on ? thread_id() : 0;
        if (on && rc->f->is_boosted)
                (void)thread_foreground(thread_id());
        pthread_mutex_unlock(&rc->p->lock);
}

static void *leg_thread(void *arg)
{
        struct leg *l = arg;
        struct race *rc = l->race;

        leg_register(rc, l, true);
        l->r = attempt(rc->p, l->node, rc->cid, rc->cidstr, &rc->lim, &rc->cancel, &l->b, &l->o,
                       &l->retry_after);
        leg_register(rc, l, false);
        if (l->r == 0)
                __atomic_store_n(&rc->cancel, 1, __ATOMIC_RELEASE); /* the other one lost */
        pthread_mutex_lock(&rc->lock);
        l->done = true;
        pthread_cond_broadcast(&rc->cond);
        pthread_mutex_unlock(&rc->lock);
        return NULL;
}

/* Waits until leg k is done or the real-time wait_ns passed (UINT64_MAX: no limit) or, with
 * any, until either leg has a verified block. */
static void race_wait(struct race *rc, uint64_t until_ns, bool second)
{
        pthread_mutex_lock(&rc->lock);
        for (;;) {
                bool a = rc->legs[0].done, b = second && rc->legs[1].done;
                struct timespec ts;
                uint64_t now = net_now_ns();

                if ((a && (!second || b || rc->legs[0].r == 0)) || (b && rc->legs[1].r == 0))
                        break;
                if (!second && now >= until_ns)
                        break;
                net_timespec_in(second ? 50000000u : until_ns - now, &ts);
                (void)pthread_cond_timedwait(&rc->cond, &rc->lock, &ts);
        }
        pthread_mutex_unlock(&rc->lock);
}

/*
 * Hedging: the request goes to node i; if no verified answer came after i's p95 latency, the
 * same request goes to node j too and the first verified answer wins; the loser's transfer is
 * cancelled (the engine aborts it within one poll). Like failover this is safe because a
 * fetch is idempotent and verified. Returns as attempt() does for node i; a failure of the
 * hedge on j is reported here, and *ret_hedged says whether j was asked.
 */
static int hedged_attempt(struct net_pool *p, size_t i, size_t j, uint64_t delay_ns,
                          const struct cid *cid, const char *cidstr, const struct try_limits *lim,
                          struct net_block **ret, enum net_outcome *ret_o,
                          uint64_t *ret_retry_after, bool *ret_hedged)
{
        struct race *rc = calloc(1, sizeof(*rc));
        bool hedged = false;
        int r;

        *ret_hedged = false;
        if (!rc)
                return -ENOMEM;
        *rc = (struct race){ .p = p,
                             .f = owning,
                             .cid = cid,
                             .cidstr = cidstr,
                             .lim = *lim,
                             .legs = { { .race = rc, .node = i }, { .race = rc, .node = j } } };
        pthread_mutex_init(&rc->lock, NULL);
        pthread_cond_init(&rc->cond, NULL);
        if (pthread_create(&rc->legs[0].thread, NULL, leg_thread, &rc->legs[0]) != 0) {
                r = attempt(p, i, cid, cidstr, lim, NULL, ret, ret_o, ret_retry_after);
                goto out;
        }
        race_wait(rc, net_now_ns() + delay_ns, false);
        pthread_mutex_lock(&rc->lock);
        hedged = !rc->legs[0].done && net_now_ns() < lim->deadline_ns;
        pthread_mutex_unlock(&rc->lock);
        if (hedged && pthread_create(&rc->legs[1].thread, NULL, leg_thread, &rc->legs[1]) != 0)
                hedged = false;
        if (hedged) {
                pthread_mutex_lock(&p->lock);
                p->hedges++;
                pthread_mutex_unlock(&p->lock);
                race_wait(rc, UINT64_MAX, true);
                /* a winner cancelled the other leg; let both finish before looking */
                pthread_join(rc->legs[1].thread, NULL);
        }
        pthread_join(rc->legs[0].thread, NULL);
        r = rc->legs[0].r;
        *ret_o = rc->legs[0].o;
        *ret_retry_after = rc->legs[0].retry_after;
        if (r == 0) {
                *ret = rc->legs[0].b;
                rc->legs[0].b = NULL;
        } else if (hedged && rc->legs[1].r == 0) {
                *ret = rc->legs[1].b;
                rc->legs[1].b = NULL;
                pthread_mutex_lock(&p->lock);
                p->hedge_wins++;
                pthread_mutex_unlock(&p->lock);
                r = 0;
        }
        if (hedged && rc->legs[1].r == 1)
                net_pool_report(p, j, rc->legs[1].o, 0, rc->legs[1].retry_after, 0);
        net_block_unref(rc->legs[0].b);
        net_block_unref(rc->legs[1].b);
out:
        *ret_hedged = hedged;
        pthread_cond_destroy(&rc->cond);
        pthread_mutex_destroy(&rc->lock);
        free(rc);
        return r;
}

/* Whether to hedge an attempt on node i, and after how long: node i has a p95 to go by and
 * another node j may be tried (then held: net_node_release it). */
static bool hedge_plan(struct net_pool *p, size_t i, const bool *skip, uint64_t now, size_t *ret_j,
                       uint64_t *ret_delay_ns)
{
        struct net_health snap[NET_MAX_NODES];
        bool sk[NET_MAX_NODES];
        uint32_t p95;
        size_t n;
        int j;

        if (p->cfg.is_hedging_disabled || p->ops->no_threads)
                return false;
        pthread_mutex_lock(&p->lock);
        n = p->n_nodes;
        for (size_t k = 0; k < n; k++) {
                net_node_snap(p, k, &snap[k]);
                sk[k] = skip[k] || k == i;
        }
        p95 = p->nodes[i].n_lat >= 5 ? net_latency_p95(p->nodes[i].lat_us, p->nodes[i].n_lat) : 0;
        pthread_mutex_unlock(&p->lock);
        if (!p95)
                return false;
        j = net_health_choose(snap, n, sk, now);
        /* a hedge on a suspect node only adds load; the caller releases j */
        if (j < 0 || snap[j].state != NET_STATE_UP || !net_node_hold(p, (size_t)j))
                return false;
        *ret_j = (size_t)j;
        *ret_delay_ns = (uint64_t)p95 * 1000;
        return true;
}

static int fetch(struct net_pool *p, const struct cid *cid, uint64_t deadline_ns,
                 struct net_block **ret)
{
        unsigned tries[NET_MAX_NODES] = { 0 };
        bool skip[NET_MAX_NODES] = { 0 };
        unsigned max_tries = p->cfg.retry_max_attempts ? p->cfg.retry_max_attempts : 1;
        char cidstr[CID_MAX_STR];
        int last = -EHOSTUNREACH;

        (void)cid_to_string(cid, cidstr);
        for (;;) {
                uint64_t now = p->ops->now_ns(p->t), retry_after, delay;
                struct try_limits lim = { .deadline_ns = deadline_ns,
                                          .skip = skip,
                                          .abort = net_abort };
                struct net_health snap[NET_MAX_NODES];
                size_t j;
                enum net_outcome o;
                bool waitable = false;
                size_t n;
                int i, r;

                if (now >= deadline_ns)
                        return -ETIMEDOUT;
                if (is_aborted(net_abort))
                        return -ECANCELED;
                pthread_mutex_lock(&p->lock);
                if (p->stop) {
                        pthread_mutex_unlock(&p->lock);
                        return -ECANCELED;
                }
                n = p->n_nodes;
                for (size_t k = 0; k < n; k++) {
                        net_node_snap(p, k, &snap[k]);
                        skip[k] = tries[k] >= max_tries;
                        /* a node we may still try, once it is probed back or un-throttled */
                        if (!skip[k] && snap[k].state != NET_STATE_DISABLED)
                                waitable = true;
                }
                pthread_mutex_unlock(&p->lock);
                i = net_health_choose(snap, n, skip, now);
                if (i < 0) {
                        uint64_t wake = now + 50000000; /* re-check in 50 ms */

                        if (!waitable)
                                return last;
                        p->ops->sleep_until(p->t, wake < deadline_ns ? wake : deadline_ns);
                        continue;
                }
                if (!net_node_hold(p, (size_t)i))
                        continue; /* removed by a reload meanwhile: choose again */
                if (tries[i] > 0) {
                        uint64_t b = net_backoff_ms(p->hp.base_ms, p->hp.max_ms, tries[i] - 1,
                                                    p->ops->random(p->t)) *
                                     1000000;

                        p->ops->sleep_until(p->t, now + b < deadline_ns ? now + b : deadline_ns);
                }
                lim.stall_ns = NET_CFG(p, stall_timeout_ms) * 1000000ull << MIN(tries[i], 6u);
                lim.first_byte_ns = NET_CFG(p, first_byte_timeout_ms) * 1000000ull
                                    << MIN(tries[i], 6u);
                if (tries[i] == 0 && hedge_plan(p, (size_t)i, skip, now, &j, &delay)) {
                        bool hedged;

                        tries[i]++;
                        r = hedged_attempt(p, (size_t)i, j, delay, cid, cidstr, &lim, ret, &o,
                                           &retry_after, &hedged);
                        net_node_release(p, j);
                        if (hedged)
                                tries[j]++;
                } else {
                        tries[i]++;
                        r = attempt(p, (size_t)i, cid, cidstr, &lim, NULL, ret, &o, &retry_after);
                }
                if (r == 1)
                        net_pool_report(p, (size_t)i, o, 0, retry_after, 0);
                net_node_release(p, (size_t)i);
                if (r <= 0)
                        return r; /* a verified block, or an out-of-memory */
                if (r == 2)
                        continue; /* cancelled: cannot happen without a race, and no fault */
                if (o == NET_DEADLINE)
                        return -ETIMEDOUT;
                last = o == NET_NOT_FOUND ? -ENOENT : -EHOSTUNREACH;
        }
}

static int block_get_once(struct net_pool *p, const struct cid *cid, uint64_t deadline_ns,
                          struct net_block **ret)
{
        struct inflight *f, **pp;
        bool owner = false;
        int r;

        pthread_mutex_lock(&p->lock);
        p->fetches++;
        for (f = p->inflight; f; f = f->next)
                if (cid_same_multihash(&f->cid, cid) && !f->done)
                        break;
        if (f) {
                p->dedup_hits++;
                if (f->owner_is_background && !f->is_boosted && !thread_is_background()) {
                        /* under the lock: the owner is still in its fetch (and a leg in its
                         * attempt), so each tid is still that thread's */
                        f->is_boosted = true;
                        for (size_t k = 0; k < ELEMENTSOF(f->tids); k++)
                                if (f->tids[k])
                                        (void)thread_foreground(f->tids[k]);
                }
        } else {
                f = calloc(1, sizeof(*f));
                if (!f) {
                        pthread_mutex_unlock(&p->lock);
                        return -ENOMEM;
                }
                f->cid = *cid;
                f->tids[0] = thread_id();
                f->owner_is_background = thread_is_background();
                pthread_cond_init(&f->cond, NULL);
                f->next = p->inflight;
                p->inflight = f;
                owner = true;
        }
        f->users++;
        pthread_mutex_unlock(&p->lock);

        if (owner) {
                struct net_block *b = NULL;

                owning = f;
                r = fetch(p, cid, deadline_ns, &b);
                owning = NULL;
                pthread_mutex_lock(&p->lock);
                f->result = r;
                f->block = b;
                f->done = true;
                if (r < 0)
                        p->failures++;
                pthread_cond_broadcast(&f->cond);
        } else {
                pthread_mutex_lock(&p->lock);
                while (!f->done) {
                        struct timespec ts;
                        uint64_t now = p->ops->now_ns(p->t), wait;

                        if (now >= deadline_ns || is_aborted(net_abort))
                                break;
                        /* a withdrawal is seen within 100 ms */
                        wait = MIN(deadline_ns - now, 100000000ull);
                        net_timespec_in(wait, &ts);
                        (void)pthread_cond_timedwait(&f->cond, &p->lock, &ts);
                }
        }
        if (!f->done)
                r = is_aborted(net_abort) ? -ECANCELED : -ETIMEDOUT;
        else if (f->result < 0)
                r = f->result;
        else {
                *ret = net_block_ref(f->block);
                r = 0;
        }
        if (--f->users == 0 && f->done) {
                for (pp = &p->inflight; *pp; pp = &(*pp)->next)
                        if (*pp == f) {
                                *pp = f->next;
                                break;
                        }
                net_block_unref(f->block);
                pthread_cond_destroy(&f->cond);
                free(f);
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

/* One fetch per block at a time, shared by every caller that wants it; a caller whose fetch
 * another one withdrew (net_set_abort) fetches it itself. */
static int block_get(struct net_pool *p, const struct cid *cid, uint64_t deadline_ns,
                     struct net_block **ret)
{
        for (;;) {
                int r = block_get_once(p, cid, deadline_ns, ret);
                bool stop;

                if (r != -ECANCELED || is_aborted(net_abort))
                        return r;
                pthread_mutex_lock(&p->lock);
                stop = p->stop;
                pthread_mutex_unlock(&p->lock);
                if (stop)
                        return r;
        }
}

/* block_get, counted and timed for /metrics (every caller, also those that joined a fetch) */
int net_block_get(struct net_pool *p, const struct cid *cid, uint64_t deadline_ns,
                  struct net_block **ret)
{
        uint64_t start = metrics_now_ns();
        int r = block_get(p, cid, deadline_ns, ret);

        metrics_op_done(METRICS_OP_GET, r, start);
        return r;
}

/* ---- probes ---- */

/* Words for a failed request, for the log: the cause, then the transport's own words. */
static void describe_failure(int r, const struct net_http_response *res, uint64_t waited_ms,
                             char *why, size_t size)
{
        const char *what;

        switch (r) {
        case -ECONNREFUSED:
                what = "connection refused";
                break;
        case -EHOSTUNREACH:
                what = "host name does not resolve";
                break;
        case -ETIMEDOUT:
                (void)snprintf(why, size, "no answer within %.1f s", waited_ms / 1000.0);
                return;
        case -EACCES:
                what = "TLS handshake or certificate check failed";
                break;
        case -ECONNRESET:
                what = "connection reset";
                break;
        default:
                what = strerror(-r);
                break;
        }
        if (res->error[0])
                (void)snprintf(why, size, "%s (%s)", what, res->error);
        else
                (void)snprintf(why, size, "%s", what);
}

/*
 * One probe of node i: an RPC node must answer POST /api/v0/version with its version, a
 * gateway GET /ipfs/bafkqaaa (the empty identity block) as a raw block. NET_OK, NET_UNUSABLE
 * (a gateway that answers, but not as a trustless gateway does), NET_TIMEOUT or NET_FAIL with
 * the reason in why. A probe asks whether the node is alive, not whether it is quick: it may
 * take up to `timeout` to start answering (a node that answers blocks slowly must not be held
 * down by probes that give up sooner than reads would).
 */
static enum net_outcome probe(struct net_pool *p, size_t i, char *why, size_t why_size)
{
        struct node *n = &p->nodes[i];
        const char *headers[3] = { 0 };
        const char *path;
        struct net_http_response res = { 0 };
        char url[1024];
        struct buf body;
        uint64_t now = p->ops->now_ns(p->t), wait = MAX(NET_CFG(p, timeout_ms), 1u) * 1000000ull;
        enum net_outcome o = NET_OK;
        size_t h = 0;
        int r;

        if (n->kind == NET_NODE_RPC)
                path = "/api/v0/version";
        else {
                path = "/ipfs/bafkqaaa?format=raw";
                headers[h++] = "Accept: application/vnd.ipld.raw";
        }
        if (n->auth)
                headers[h++] = n->auth;
        (void)snprintf(url, sizeof(url), "%s%s", n->url, path);
        buf_init(&body, 64 * 1024);
        r = p->ops->http(
                p->t,
                &(struct net_http_request){ .url = url,
                                            .post = n->kind == NET_NODE_RPC,
                                            .headers = headers,
                                            .stall_ns = NET_CFG(p, stall_timeout_ms) * 4000000ull,
                                            .first_byte_ns = wait,
                                            .deadline_ns = now + wait,
                                            .max_body = 64 * 1024 },
                &body, &res);
        if (r < 0) {
                describe_failure(r, &res, wait / 1000000, why, why_size);
                o = r == -ETIMEDOUT ? NET_TIMEOUT : NET_FAIL;
        } else if (res.status != 200) {
                (void)snprintf(why, why_size, "HTTP %ld for %s %s (%s)", res.status,
                               n->kind == NET_NODE_RPC ? "POST" : "GET", path,
                               n->kind == NET_NODE_RPC
                                       ? "is this the address of a Kubo RPC API, without /api/v0?"
                                       : "is this the address of a trustless gateway?");
                o = NET_FAIL;
        } else if (n->kind == NET_NODE_GATEWAY &&
                   !content_type_is(res.content_type, "application/vnd.ipld.raw")) {
                (void)snprintf(why, why_size,
                               "not a trustless gateway: it answers a raw-block request with "
                               "Content-Type '%s', not application/vnd.ipld.raw",
                               res.content_type);
                o = NET_UNUSABLE;
        } else if (n->kind == NET_NODE_GATEWAY && body.len != 0) {
                (void)snprintf(why, why_size,
                               "not a trustless gateway: it answers the empty block bafkqaaa with "
                               "%zu bytes",
                               body.len);
                o = NET_UNUSABLE;
        } else if (n->kind == NET_NODE_RPC &&
                   !memmem(body.p ? body.p : (const uint8_t *)"", body.len, "\"Version\"", 9)) {
                (void)snprintf(why, why_size,
                               "POST %s answered without a version: not a Kubo RPC API", path);
                o = NET_FAIL;
        }
        buf_done(&body);
        return o;
}

static bool stopping(struct net_pool *p)
{
        bool stop;

        pthread_mutex_lock(&p->lock);
        stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        return stop;
}

static const char *kind_name(enum net_node_kind k)
{
        return k == NET_NODE_RPC ? "rpc" : "gateway";
}

/* Probes node i and applies the outcome; `check`: the check at start (one line per node). */
static void probe_node(struct net_pool *p, size_t i, bool check)
{
        struct node *n = &p->nodes[i];
        enum net_node_state before, after;
        enum net_outcome o;
        char why[512] = "";

        o = probe(p, i, why, sizeof(why));
        if (stopping(p))
                return; /* cancelled by the shutdown: says nothing about the node */
        pthread_mutex_lock(&p->lock);
        before = n->h.state;
        net_health_probed(&n->h, &p->hp, o, p->ops->now_ns(p->t), p->ops->random(p->t));
        after = n->h.state;
        pthread_mutex_unlock(&p->lock);
        if (check && o != NET_OK)
                log_warning("node %s (%s): %s; not used until it answers a probe", n->url,
                            kind_name(n->kind), why);
        else if (check)
                log_info("node %s (%s) answers", n->url, kind_name(n->kind));
        else if (o == NET_OK && before != after)
                log_state_change(n, before, after, ": answers probes again, back in use");
        else if (o != NET_OK)
                log_debug("probe of node %s failed: %s", n->url, why);
}

struct probe_arg {
        struct net_pool *p;
        size_t node;
};

static void *probe_thread(void *arg)
{
        struct probe_arg *a = arg;
        struct net_pool *p = a->p;
        size_t i = a->node;

        free(a);
        probe_node(p, i, p->nodes[i].probe_check);
        pthread_mutex_lock(&p->lock);
        p->nodes[i].probe_running = false;
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* Starts a probe of node i on a thread of its own (probe_running is set); one caller at a
 * time. Where no thread can be made (or the transport wants none), probes here and now. */
static void probe_start(struct net_pool *p, size_t i, bool check)
{
        struct node *n = &p->nodes[i];
        struct probe_arg *a;

        if (n->probe_joinable) {
                pthread_join(n->probe_thread, NULL); /* done: probe_running was false */
                n->probe_joinable = false;
        }
        n->probe_check = check;
        a = p->ops->no_threads ? NULL : malloc(sizeof(*a));
        if (a) {
                *a = (struct probe_arg){ .p = p, .node = i };
                if (pthread_create(&n->probe_thread, NULL, probe_thread, a) == 0) {
                        n->probe_joinable = true;
                        return;
                }
                free(a);
        }
        probe_node(p, i, check);
        pthread_mutex_lock(&p->lock);
        n->probe_running = false;
        pthread_mutex_unlock(&p->lock);
}

/* Nodes to probe now: all (check) or those down or disabled whose time has come; none whose
 * probe still runs. Marks them running. */
static size_t probe_pick(struct net_pool *p, bool check, size_t *idx)
{
        uint64_t now = p->ops->now_ns(p->t);
        size_t n = 0;

        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < p->n_nodes; i++) {
                struct node *nd = &p->nodes[i];

                if (nd->retired || nd->probe_running ||
                    (!check &&
                     !((nd->h.state == NET_STATE_DOWN || nd->h.state == NET_STATE_DISABLED) &&
                       nd->h.next_probe_ns <= now)))
                        continue;
                nd->probe_running = true;
                idx[n++] = i;
        }
        pthread_mutex_unlock(&p->lock);
        return n;
}

/* For tests, which drive probes by hand: the picked nodes probed at once, and waited for. */
static void probe_now(struct net_pool *p, bool check)
{
        size_t idx[NET_MAX_NODES], n = probe_pick(p, check, idx);

        for (size_t k = 0; k < n; k++)
                probe_start(p, idx[k], check);
        for (size_t k = 0; k < n; k++) {
                struct node *nd = &p->nodes[idx[k]];

                if (nd->probe_joinable) {
                        pthread_join(nd->probe_thread, NULL);
                        nd->probe_joinable = false;
                }
        }
}

void net_pool_check_nodes(struct net_pool *p)
{
        probe_now(p, true);
}

void net_pool_probe_due(struct net_pool *p)
{
        probe_now(p, false);
}

/* Probes run on threads of their own, so that a node that takes `timeout` to answer a probe
 * delays no other node's. */
static void *prober_thread(void *arg)
{
        struct net_pool *p = arg;
        bool check = p->cfg.is_checking_nodes;

        pthread_mutex_lock(&p->lock);
        while (!p->stop) {
                size_t idx[NET_MAX_NODES], n;
                struct timespec ts;

                pthread_mutex_unlock(&p->lock);
                n = probe_pick(p, check, idx);
                for (size_t k = 0; k < n; k++)
                        probe_start(p, idx[k], check);
                check = false;
                pthread_mutex_lock(&p->lock);
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 50000000; /* 50 ms: a node back up is used within 0.1 s */
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                if (!p->stop)
                        (void)pthread_cond_timedwait(&p->stop_cond, &p->lock, &ts);
        }
        pthread_mutex_unlock(&p->lock);
        /* the engine cancels what they wait for */
        for (size_t i = 0; i < net_pool_slots(p); i++)
                if (p->nodes[i].probe_joinable) {
                        pthread_join(p->nodes[i].probe_thread, NULL);
                        p->nodes[i].probe_joinable = false;
                }
        return NULL;
}

void net_pool_get_stats(struct net_pool *p, struct net_stats *ret)
{
        pthread_mutex_lock(&p->lock);
        *ret = (struct net_stats){ .fetches = p->fetches,
                                   .dedup_hits = p->dedup_hits,
                                   .failures = p->failures,
                                   .hedges = p->hedges,
                                   .hedge_wins = p->hedge_wins,
                                   .puts = p->puts,
                                   .put_bytes = p->put_bytes,
                                   .put_skips = p->put_skips,
                                   .pins = p->pins,
                                   .pin_failures = p->pin_failures,
                                   .unpins = p->unpins,
                                   .unpin_failures = p->unpin_failures,
                                   .n_nodes = 0 };
        for (size_t i = 0; i < p->n_nodes; i++) {
                struct net_node_stats *st = &ret->nodes[ret->n_nodes];

                if (p->nodes[i].retired)
                        continue; /* removed by a reload */
                *st = p->nodes[i].st;
                st->state = p->nodes[i].h.state;
                st->latency_ms = p->nodes[i].h.latency_ms;
                ret->n_nodes++;
        }
        pthread_mutex_unlock(&p->lock);
}
