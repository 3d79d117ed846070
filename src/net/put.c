/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The write side of the pool: put sessions (block/put to one bound RPC node), recursive pins
 * on that node and on replicas, and the IPFS Pinning Service API.
 *
 * Why a session binds one node. A DAG is pinnable only where all its blocks are, so the blocks
 * of one upload go to one node; if that node fails, the caller starts over on another node
 * with resume=true and re-sends the DAG, and block/stat makes "re-send" cost only the blocks
 * the new node is missing. The failed session is dead (sticky -ENOTCONN), so every upload
 * worker on it stops at once instead of each discovering the dead node by its own timeout.
 *
 * Nothing is uploaded under a wrong name: a block is hashed against its CID before it is
 * sent, and the CID the node answers (in whatever base and version it prints) must name the
 * same codec and multihash. A node that answers another CID is not trusted with the rest.
 *
 * Spellings. js-ipfs takes block/put's codec as `format=`, Kubo as `cid-codec=` (`format`
 * is its deprecated spelling, and Kubo refuses both at once for anything but raw). A session
 * starts by sending both; if the node refuses the request itself (a 400, or a 500 carrying an
 * RPC error message), it falls back to Kubo's spelling, then to js-ipfs's, and keeps the one
 * that worked.
 *
 * block/stat must not make a node fetch the block from the network: Kubo gets offline=true;
 * js-ipfs has no such switch and gets timeout= (has_timeout_ms), after which it answers an
 * error, read as "missing".
 *
 * Runs (net_put_run). js-ipfs caps RPC bodies at 1 MiB, so a full 1 MiB leaf cannot go
 * through block/put (413) and goes through add; and every request costs the node ~80 ms
 * whatever its size, which made leaf-by-leaf uploads half as fast as the node's own add.
 * So, once a session saw that 413, consecutive full leaves go up as one add of their
 * concatenated bytes with the same chunker: the node stores exactly those raw leaves plus one
 * File node over them, and names that node, which we compute from our own leaf CIDs (at most
 * 174 leaves: the links per node of js-ipfs's and Kubo's add). Anything else (another root,
 * a refusal) sends that run leaf by leaf, each leaf checked on its own, and ends runs for the
 * session; a failing node kills the session as for blocks. The File node is an unpinned
 * extra block on the node, a few KiB per run. Nodes without the cap (Kubo) never see a
 * run: block/put suits them, and that path stays the one tested against them. Other blocks
 * the cap refuses (dag-pb nodes over 1 MiB, which add would not make byte for byte) go up as
 * a one-block CAR through dag/import, which has no cap.
 *
 * Unpins (net_pool_unpin) go to every RPC node, not only to those that confirmed the pin:
 * which replicas took a pin is not recorded anywhere, and a node that holds no recursive pin
 * of the root answers "not pinned" (Kubo: "not pinned or pinned indirectly"), which counts as
 * done; so an unpin can simply be sent again after any failure. There is no pin/update:
 * js-ipfs has no such command (its RPC has pin/add, pin/rm and pin/ls), and the caller never
 * wants the old pin dropped in the same step that pins the new root (the index must switch
 * in between, see fs/pins.c). On a pinning service only the pins named "prsmfs <cid>" (the
 * name pin_on_service gives) are deleted, never someone else's pin of the same CID.
 *
 * Lock order: pool->lock, then put->lock; neither is held across a transport call.
 */
#define LOG_MODULE "net"
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prsmfs/log.h"
#include "prsmfs/metrics.h"
#include "prsmfs/unixfs.h"

#include "internal.h"

#define MS             1000000ull
#define MAX_URL        2048
#define MAX_RPC_ANSWER (64 * 1024)
#define N_SPELLINGS    3

struct net_put {
        struct net_pool *p;
        size_t node;          /* bound node, immutable */
        pthread_mutex_t lock; /* running, spelling */
        pthread_cond_t cond;  /* a slot was freed or the session died */
        unsigned running;     /* lock: block/put requests in flight */
        unsigned max_running; /* immutable */
        unsigned spelling;    /* lock: index into spellings */
        int is_checking;      /* atomic: block/stat before each put */
        int is_dead;          /* atomic: sticky -ENOTCONN */
        uint64_t add_from;    /* atomic: raw blocks this big go up by add (the node's body
                                 limit refused one on block/put); 0 = none yet */
        int is_run_refused;   /* atomic: an add of a run named another root or was refused:
                                 runs go leaf by leaf for the rest of the session */
};

/* A run of equal raw leaves in one multipart body: FORM_HEAD_LEN bytes for the part's head,
 * the leaves back to back, room for FORM_TAIL_LEN bytes. Invariant: n <= max_leaves. */
struct net_run {
        size_t leaf_len, max_leaves, n;
        struct cid *cids; /* max_leaves */
        uint8_t *form;
};

_printf_(3, 4) int net_make_url(char *out, size_t cap, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(out, cap, fmt, ap);
        va_end(ap);
        return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

/* block/put's query in spelling sp: 0 both, 1 Kubo's, 2 js-ipfs's */
static int put_query(unsigned sp, const char *codec, unsigned version, char *out, size_t cap)
{
        switch (sp) {
        case 0:
                return net_make_url(out, cap,
                                    "format=%s&cid-codec=%s&mhtype=sha2-256&mhlen=32&version=%u",
                                    codec, codec, version);
        case 1:
                return net_make_url(out, cap, "cid-codec=%s&mhtype=sha2-256&mhlen=32", codec);
        default:
                return net_make_url(out, cap, "format=%s&mhtype=sha2-256&mhlen=32&version=%u",
                                    codec, version);
        }
}

/* One request to node i (auth added); 0 with *res, or the transport's -errno. */
static int node_http(struct net_pool *p, size_t i, const char *url, const void *body,
                     size_t body_len, const char *content_type, uint64_t stall_ns,
                     uint64_t deadline_ns, struct buf *out, struct net_http_response *res)
{
        const char *headers[3] = { 0 };
        size_t h = 0;

        if (content_type)
                headers[h++] = content_type;
        if (p->nodes[i].auth)
                headers[h++] = p->nodes[i].auth;
        return p->ops->http(p->t,
                            &(struct net_http_request){ .url = url,
                                                        .post = true,
                                                        .body = body,
                                                        .body_len = body_len,
                                                        .headers = headers,
                                                        .stall_ns = stall_ns,
                                                        .deadline_ns = deadline_ns,
                                                        .max_body = MAX_RPC_ANSWER },
                            out, res);
}

int net_node_http(struct net_pool *p, size_t i, const char *url, uint64_t stall_ns,
                  uint64_t deadline_ns, struct buf *out, struct net_http_response *res)
{
        return node_http(p, i, url, NULL, 0, NULL, stall_ns, deadline_ns, out, res);
}

/* Parses a JSON object answer; NULL when it is not one. */
json_t *net_json_answer(const struct buf *b)
{
        json_t *j =
                json_loadb(b->p ? (const char *)b->p : "", b->len, JSON_REJECT_DUPLICATES, NULL);

        if (j && !json_is_object(j)) {
                json_decref(j);
                return NULL;
        }
        return j;
}

/* True when s (a node's way of printing a CID) names the same block as want. */
static bool same_cid(const char *s, const struct cid *want)
{
        struct cid got, a, b;

        if (!s || cid_parse(s, strlen(s), &got) < 0)
                return false;
        if (cid_to_v1(&got, &a) < 0 || cid_to_v1(want, &b) < 0)
                return false;
        return cid_equal(&a, &b);
}

bool net_is_rpc_refusal(const struct net_http_response *res, const struct buf *body)
{
        if (res->status == 400)
                return true;
        return res->status == 500 && body->len > 0 && body->p &&
               memmem(body->p, body->len, "\"Message\"", 9) != NULL;
}

static void put_kill(struct net_put *put, const char *why, const char *cidstr)
{
        if (__atomic_exchange_n(&put->is_dead, 1, __ATOMIC_ACQ_REL) == 0)
                log_warning("write node %s failed on %s: %s; the upload must resume elsewhere",
                            put->p->nodes[put->node].url, cidstr, why);
        pthread_mutex_lock(&put->lock);
        pthread_cond_broadcast(&put->cond);
        pthread_mutex_unlock(&put->lock);
}

static enum net_outcome outcome_of(int r)
{
        return r == -ETIMEDOUT ? NET_TIMEOUT : NET_FAIL;
}

/* The node failed a put: no answer (r < 0) or a failing node's answer (*res). It is demoted
 * and the session dies; -ENOTCONN. */
static int put_node_failed(struct net_put *put, int r, const struct net_http_response *res,
                           const char *cidstr)
{
        char why[48];

        if (r < 0) {
                net_pool_report(put->p, put->node, outcome_of(r), 0, 0, 0);
                (void)snprintf(why, sizeof(why), "%s", strerror(-r));
        } else {
                net_pool_report(put->p, put->node, res->status == 429 ? NET_THROTTLED : NET_FAIL, 0,
                                res->retry_after_ms, 0);
                (void)snprintf(why, sizeof(why), "HTTP %ld", res->status);
        }
        put_kill(put, why, cidstr);
        return -ENOTCONN;
}

int net_put_begin(struct net_pool *p, bool resume, struct net_put **ret)
{
        struct net_health snap[NET_MAX_NODES];
        bool skip[NET_MAX_NODES];
        struct net_put *put;
        size_t n;
        int i;

        do {
                pthread_mutex_lock(&p->lock);
                n = p->n_nodes;
                for (size_t k = 0; k < n; k++) {
                        net_node_snap(p, k, &snap[k]);
                        skip[k] = p->nodes[k].kind != NET_NODE_RPC;
                }
                pthread_mutex_unlock(&p->lock);
                i = net_health_choose(snap, n, skip, p->ops->now_ns(p->t));
                if (i < 0)
                        return -EHOSTUNREACH;
        } while (!net_node_hold(p, (size_t)i)); /* removed by a reload meanwhile */
        put = calloc(1, sizeof(*put));
        if (!put) {
                net_node_release(p, (size_t)i);
                return -ENOMEM;
        }
        put->p = p;
        put->node = (size_t)i;
        put->max_running = p->cfg.parallel_uploads ? p->cfg.parallel_uploads : 5;
        put->is_checking = resume;
        /* a node that refused a leaf this big on block/put before will again: its sessions
         * start with add (and runs) for such leaves instead of paying a wasted upload and a
         * 413 for each of the first parallel_uploads leaves */
        put->add_from = __atomic_load_n(&p->nodes[i].add_from, __ATOMIC_RELAXED);
        pthread_mutex_init(&put->lock, NULL);
        pthread_cond_init(&put->cond, NULL);
        log_debug("put session bound to %s%s", p->nodes[i].url, resume ? " (resuming)" : "");
        *ret = put;
        return 0;
}

void net_put_free(struct net_put *put)
{
        if (!put)
                return;
        net_node_release(put->p, put->node); /* held since net_put_begin */
        pthread_cond_destroy(&put->cond);
        pthread_mutex_destroy(&put->lock);
        free(put);
}

const char *net_put_node_url(const struct net_put *put)
{
        return put->p->nodes[put->node].url;
}

static const char *codec_name(uint64_t codec)
{
        switch (codec) {
        case CID_CODEC_RAW:
                return "raw";
        case CID_CODEC_DAG_PB:
                return "dag-pb";
        case CID_CODEC_DAG_CBOR:
                return "dag-cbor";
        default:
                return NULL;
        }
}

/* Waits for one of the session's request slots. */
static int slot_take(struct net_put *put, uint64_t deadline_ns)
{
        int r = 0;

        pthread_mutex_lock(&put->lock);
        while (put->running >= put->max_running) {
                struct timespec ts;
                uint64_t now = put->p->ops->now_ns(put->p->t), wait;

                if (__atomic_load_n(&put->is_dead, __ATOMIC_ACQUIRE)) {
                        r = -ENOTCONN;
                        goto out;
                }
                if (now >= deadline_ns) {
                        r = -ETIMEDOUT;
                        goto out;
                }
                /* bounded waits: a fake clock in tests does not move by itself */
                wait = MIN(deadline_ns - now, 50 * MS);
                net_timespec_in(wait, &ts);
                (void)pthread_cond_timedwait(&put->cond, &put->lock, &ts);
        }
        put->running++;
out:
        pthread_mutex_unlock(&put->lock);
        return r;
}

static void slot_give(struct net_put *put)
{
        pthread_mutex_lock(&put->lock);
        put->running--;
        pthread_cond_signal(&put->cond);
        pthread_mutex_unlock(&put->lock);
}

bool net_stat_answer_has(const struct buf *body, const struct cid *cid, size_t len)
{
        json_t *j = net_json_answer(body);
        json_t *size = j ? json_object_get(j, "Size") : NULL;
        bool has = j && same_cid(json_string_value(json_object_get(j, "Key")), cid) &&
                   json_is_integer(size) && json_integer_value(size) == (json_int_t)len;

        json_decref(j);
        return has;
}

/* 1 when the bound node has the block, 0 when not (any answer but a matching one), or
 * -ENOTCONN when the node did not answer. */
static int node_has(struct net_put *put, const struct cid *cid, const char *cidstr, size_t len,
                    uint64_t deadline_ns)
{
        struct net_pool *p = put->p;
        uint64_t has_ms = p->cfg.has_timeout_ms ? p->cfg.has_timeout_ms : 250;
        uint64_t stall_ns = (has_ms + NET_CFG(p, stall_timeout_ms)) * MS;
        uint64_t now = p->ops->now_ns(p->t), t0 = now;
        struct net_http_response res;
        char url[MAX_URL];
        struct buf body;
        int r;

        r = net_make_url(url, sizeof(url),
                         "%s/api/v0/block/stat?arg=%s&offline=true&timeout=%" PRIu64 "ms",
                         p->nodes[put->node].url, cidstr, has_ms);
        if (r < 0)
                return r;
        buf_init(&body, MAX_RPC_ANSWER);
        r = node_http(p, put->node, url, NULL, 0, NULL, stall_ns,
                      MIN(deadline_ns, now + 2 * stall_ns), &body, &res);
        if (r == -ECANCELED || r == -ENOMEM || r == -E2BIG)
                goto out;
        if (r < 0) {
                net_pool_report(p, put->node, outcome_of(r), 0, 0, 0);
                put_kill(put, "block/stat got no answer", cidstr);
                r = -ENOTCONN;
                goto out;
        }
        r = 0;
        if (res.status == 200) {
                r = net_stat_answer_has(&body, cid, len);
                net_pool_report(p, put->node, NET_OK, (p->ops->now_ns(p->t) - t0) / MS, 0, 0);
        }
        if (r == 1) {
                pthread_mutex_lock(&p->lock);
                p->put_skips++;
                pthread_mutex_unlock(&p->lock);
        }
out:
        buf_done(&body);
        return r;
}

int net_put_has(struct net_put *put, const struct cid *cid, size_t len, uint64_t deadline_ns)
{
        char cidstr[CID_MAX_STR];

        if (__atomic_load_n(&put->is_dead, __ATOMIC_RELAXED))
                return -ENOTCONN;
        return node_has(put, cid, cid_to_string(cid, cidstr), len, deadline_ns);
}

/* POSTs a multipart form to the bound node; puts allow twice the stall time (the node
 * stores and hashes before it answers). */
static int post_form(struct net_put *put, const char *url, const struct buf *form,
                     const char *ctype, uint64_t deadline_ns, struct buf *body,
                     struct net_http_response *res)
{
        buf_clear(body);
        return node_http(put->p, put->node, url, form->p, form->len, ctype,
                         NET_CFG(put->p, stall_timeout_ms) * 2 * MS, deadline_ns, body, res);
}

/* Blocks the bound node stored (one request): its health and the counters. */
static void put_counted(struct net_put *put, uint64_t t0, size_t len, size_t n_blocks)
{
        struct net_pool *p = put->p;

        net_pool_report(p, put->node, NET_OK, (p->ops->now_ns(p->t) - t0) / MS, 0, len);
        pthread_mutex_lock(&p->lock);
        p->puts += n_blocks;
        p->put_bytes += len;
        pthread_mutex_unlock(&p->lock);
}

/* A multipart/form-data body with one file part; the boundary never occurs in data. */
static const char form_disposition[] =
        "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"block\""
        "\r\nContent-Type: application/octet-stream\r\n\r\n";
#define BOUNDARY_LEN  39 /* "prsmfs-" and 32 hex digits */
#define FORM_HEAD_LEN (2 + BOUNDARY_LEN + sizeof(form_disposition) - 1)
#define FORM_TAIL_LEN (4 + BOUNDARY_LEN + 4)

/* A boundary that does not occur in data, and the Content-Type header that names it. */
static int form_boundary(struct net_pool *p, const void *data, size_t len,
                         char boundary[BOUNDARY_LEN + 1], char *ctype, size_t ctype_cap)
{
        do
                (void)snprintf(boundary, BOUNDARY_LEN + 1, "prsmfs-%016" PRIx64 "%016" PRIx64,
                               p->ops->random(p->t), p->ops->random(p->t));
        while (len && memmem(data, len, boundary, BOUNDARY_LEN));
        return net_make_url(ctype, ctype_cap, "Content-Type: multipart/form-data; boundary=%s",
                            boundary);
}

/* The part's head (FORM_HEAD_LEN bytes) and the closing delimiter (FORM_TAIL_LEN bytes). */
static void form_head(const char *boundary, uint8_t *out)
{
        memcpy(out, "--", 2);
        memcpy(out + 2, boundary, BOUNDARY_LEN);
        memcpy(out + 2 + BOUNDARY_LEN, form_disposition, sizeof(form_disposition) - 1);
}

static void form_tail(const char *boundary, uint8_t *out)
{
        memcpy(out, "\r\n--", 4);
        memcpy(out + 4, boundary, BOUNDARY_LEN);
        memcpy(out + 4 + BOUNDARY_LEN, "--\r\n", 4);
}

static int multipart(struct net_pool *p, const void *data, size_t len, struct buf *out, char *ctype,
                     size_t ctype_cap)
{
        uint8_t head[FORM_HEAD_LEN], tail[FORM_TAIL_LEN];
        char boundary[BOUNDARY_LEN + 1];
        int r;

        r = form_boundary(p, data, len, boundary, ctype, ctype_cap);
        if (r >= 0)
                r = buf_reserve(out, len + sizeof(head) + sizeof(tail));
        if (r < 0)
                return r;
        form_head(boundary, head);
        form_tail(boundary, tail);
        r = buf_append(out, head, sizeof(head));
        if (r >= 0 && len)
                r = buf_append(out, data, len);
        if (r >= 0)
                r = buf_append(out, tail, sizeof(tail));
        return r;
}

/* add's URL for raw CIDv1 leaves of leaf_len bytes, stored but not pinned */
static int add_url(const struct net_put *put, size_t leaf_len, char *out, size_t cap)
{
        return net_make_url(out, cap,
                            "%s/api/v0/add?cid-version=1&raw-leaves=true&pin=false&"
                            "chunker=size-%zu&hash=sha2-256",
                            put->p->nodes[put->node].url, leaf_len);
}

/* add answers NDJSON: its last object names the file (the root) */
bool net_add_answer_names(const struct buf *body, const struct cid *want)
{
        const char *last = body->len ? memrchr(body->p, '{', body->len) : NULL;
        json_t *j = last ? json_loadb(last, body->len - (size_t)((const uint8_t *)last - body->p),
                                      JSON_DISABLE_EOF_CHECK, NULL)
                         : NULL;
        bool ok = same_cid(j ? json_string_value(json_object_get(j, "Hash")) : NULL, want);

        json_decref(j);
        return ok;
}

/*
 * A raw CIDv1 block through `add` as one raw chunk, which makes exactly that block: js-ipfs
 * caps an RPC body at 1 MiB, so a full 1 MiB leaf does not fit block/put, while add streams.
 * The CID the node names must be ours. 0, or -ENOTCONN (session dead), -ECANCELED, -ENOMEM.
 */
static int put_by_add(struct net_put *put, const struct cid *cid, const char *cidstr,
                      const struct buf *form, const char *ctype, size_t len, uint64_t deadline_ns,
                      struct buf *body)
{
        struct net_pool *p = put->p;
        uint64_t t0 = p->ops->now_ns(p->t);
        struct net_http_response res;
        char url[MAX_URL];
        int r;

        r = add_url(put, len, url, sizeof(url));
        if (r < 0)
                return r;
        r = post_form(put, url, form, ctype, deadline_ns, body, &res);
        if (r == -ECANCELED || r == -ENOMEM)
                return r;
        if (r >= 0 && res.status == 200 && net_add_answer_names(body, cid)) {
                put_counted(put, t0, len, 1);
                return 0;
        }
        put_kill(put, "add of a block too big for block/put failed", cidstr);
        return -ENOTCONN;
}

/*
 * Any other block the node's body limit refused (a dag-pb node over 1 MiB: a file's one leaf
 * with its mode and mtime in it): a CARv1 of that block alone through dag/import with
 * pin-roots=false, which js-ipfs takes at any size, then block/stat to see the node has it.
 * 0, or -ENOTCONN (session dead), -ECANCELED, -ENOMEM.
 */
static int put_by_import(struct net_put *put, const struct cid *cid, const char *cidstr,
                         const void *data, size_t len, uint64_t deadline_ns, struct buf *body)
{
        struct net_pool *p = put->p;
        uint64_t t0 = p->ops->now_ns(p->t);
        struct net_http_response res;
        char url[MAX_URL], ctype[96];
        struct buf car, form;
        int r;

        buf_init(&car, len + 512);
        buf_init(&form, len + 1024);
        r = net_make_url(url, sizeof(url), "%s/api/v0/dag/import?pin-roots=false",
                         p->nodes[put->node].url);
        if (r >= 0)
                r = unixfs_car_write_header(cid, &car);
        if (r >= 0)
                r = unixfs_car_write_block(cid, data, len, &car);
        if (r >= 0)
                r = multipart(p, car.p, car.len, &form, ctype, sizeof(ctype));
        if (r < 0)
                goto out;
        r = post_form(put, url, &form, ctype, deadline_ns, body, &res);
        if (r == -ECANCELED || r == -ENOMEM)
                goto out;
        if (r >= 0 && res.status == 200) {
                r = node_has(put, cid, cidstr, len, deadline_ns);
                if (r == 1) {
                        put_counted(put, t0, len, 1);
                        r = 0;
                        goto out;
                }
                if (r == -ENOTCONN || r == -ECANCELED || r == -ENOMEM)
                        goto out;
        }
        put_kill(put, "dag/import of a block too big for block/put failed", cidstr);
        r = -ENOTCONN;
out:
        buf_done(&car);
        buf_done(&form);
        return r;
}

bool net_put_answer_names(const struct buf *body, const struct cid *cid, char *key, size_t key_cap)
{
        json_t *j = net_json_answer(body);
        const char *k = j ? json_string_value(json_object_get(j, "Key")) : NULL;
        bool ok = same_cid(k, cid);

        (void)snprintf(key, key_cap, "%s", k ? k : "");
        json_decref(j);
        return ok;
}

static int send_block(struct net_put *put, const struct cid *cid, const char *cidstr,
                      const char *codec, const void *data, size_t len, uint64_t deadline_ns)
{
        struct net_pool *p = put->p;
        unsigned max_tries =
                (p->cfg.retry_max_attempts ? p->cfg.retry_max_attempts : 1) + N_SPELLINGS - 1;
        struct buf form, body;
        uint64_t add_from;
        char ctype[96];
        int r;

        buf_init(&form, len + 512);
        buf_init(&body, MAX_RPC_ANSWER);
        r = multipart(p, data, len, &form, ctype, sizeof(ctype));
        if (r < 0)
                goto out;
        add_from = __atomic_load_n(&put->add_from, __ATOMIC_RELAXED);
        if (add_from && len >= add_from && cid->codec == CID_CODEC_RAW && cid->version == 1) {
                r = put_by_add(put, cid, cidstr, &form, ctype, len, deadline_ns, &body);
                goto out;
        }
        for (unsigned tries = 0;; tries++) {
                struct net_http_response res;
                char url[MAX_URL], query[160];
                uint64_t t0 = p->ops->now_ns(p->t);
                unsigned sp;

                if (__atomic_load_n(&put->is_dead, __ATOMIC_ACQUIRE)) {
                        r = -ENOTCONN;
                        goto out;
                }
                if (t0 >= deadline_ns) {
                        r = tries ? -ENOTCONN : -ETIMEDOUT;
                        if (tries)
                                put_kill(put, "deadline passed", cidstr);
                        goto out;
                }
                pthread_mutex_lock(&put->lock);
                sp = put->spelling;
                pthread_mutex_unlock(&put->lock);
                r = put_query(sp, codec, cid->version, query, sizeof(query));
                if (r < 0)
                        goto out;
                r = net_make_url(url, sizeof(url), "%s/api/v0/block/put?%s",
                                 p->nodes[put->node].url, query);
                if (r < 0)
                        goto out;
                r = post_form(put, url, &form, ctype, deadline_ns, &body, &res);
                if (r == -ECANCELED || r == -ENOMEM)
                        goto out;
                if (r < 0) {
                        r = put_node_failed(put, r, NULL, cidstr);
                        goto out;
                }
                if (res.status == 200) {
                        char key[256];

                        if (!net_put_answer_names(&body, cid, key, sizeof(key))) {
                                log_warning("write node %s stored %s under %s, not trusting it "
                                            "with more",
                                            p->nodes[put->node].url, cidstr, key[0] ? key : "?");
                                net_pool_report(p, put->node, NET_BAD_BLOCK, 0, 0, 0);
                                put_kill(put, "answered a wrong CID", cidstr);
                                r = -ENOTCONN;
                                goto out;
                        }
                        put_counted(put, t0, len, 1);
                        r = 0;
                        goto out;
                }
                if (res.status == 413 && cid->codec == CID_CODEC_RAW && cid->version == 1) {
                        /* remembered: blocks this big skip block/put on this session */
                        uint64_t cur = __atomic_load_n(&put->add_from, __ATOMIC_RELAXED);

                        if (!cur || len < cur) {
                                __atomic_store_n(&put->add_from, (uint64_t)len, __ATOMIC_RELAXED);
                                /* and for the node's next sessions (see net_put_begin) */
                                __atomic_store_n(&p->nodes[put->node].add_from, (uint64_t)len,
                                                 __ATOMIC_RELAXED);
                        }
                        r = put_by_add(put, cid, cidstr, &form, ctype, len, deadline_ns, &body);
                        goto out;
                }
                if (res.status == 413) {
                        r = put_by_import(put, cid, cidstr, data, len, deadline_ns, &body);
                        goto out;
                }
                if (res.status == 429 && tries + 1 < max_tries) {
                        uint64_t wake = p->ops->now_ns(p->t) +
                                        (res.retry_after_ms ? res.retry_after_ms
                                                            : p->cfg.retry_base_delay_ms) *
                                                MS;

                        net_pool_report(p, put->node, NET_THROTTLED, 0, res.retry_after_ms, 0);
                        p->ops->sleep_until(p->t, MIN(wake, deadline_ns));
                        continue;
                }
                if (net_is_rpc_refusal(&res, &body) && tries + 1 < max_tries) {
                        pthread_mutex_lock(&put->lock);
                        if (put->spelling == sp && sp + 1 < N_SPELLINGS) {
                                put->spelling = sp + 1;
                                sp = N_SPELLINGS; /* a new spelling to try */
                        } else if (put->spelling != sp)
                                sp = N_SPELLINGS; /* another worker moved on: try its choice */
                        pthread_mutex_unlock(&put->lock);
                        if (sp == N_SPELLINGS) {
                                log_debug("write node %s refused block/put (HTTP %ld), trying "
                                          "another parameter spelling",
                                          p->nodes[put->node].url, res.status);
                                continue;
                        }
                }
                r = put_node_failed(put, 0, &res, cidstr);
                goto out;
        }
out:
        buf_done(&form);
        buf_done(&body);
        return r;
}

static int put_block(struct net_put *put, const struct cid *cid, const void *data, size_t len,
                     uint64_t deadline_ns)
{
        char cidstr[CID_MAX_STR];
        const char *codec;
        int r;

        if (__atomic_load_n(&put->is_dead, __ATOMIC_ACQUIRE))
                return -ENOTCONN;
        r = cid_verify(cid, len ? data : "", len);
        if (r < 0)
                return r; /* never upload bytes under a CID they do not hash to */
        if (cid_is_identity(cid))
                return 1; /* the CID carries the bytes */
        codec = codec_name(cid->codec);
        if (!codec || cid->mh_code != CID_MH_SHA2_256 || cid->digest_len != 32)
                return -EOPNOTSUPP;
        (void)cid_to_string(cid, cidstr);
        r = slot_take(put, deadline_ns);
        if (r < 0)
                return r;
        if (__atomic_load_n(&put->is_checking, __ATOMIC_ACQUIRE))
                r = node_has(put, cid, cidstr, len, deadline_ns);
        if (r == 0)
                r = send_block(put, cid, cidstr, codec, data, len, deadline_ns);
        if (r < 0 && r != -ENOTCONN && r != -ECANCELED)
                __atomic_store_n(&put->is_checking, 1, __ATOMIC_RELEASE);
        slot_give(put);
        return r;
}

int net_put_block(struct net_put *put, const struct cid *cid, const void *data, size_t len,
                  uint64_t deadline_ns)
{
        uint64_t start = metrics_now_ns();
        int r = put_block(put, cid, data, len, deadline_ns);

        metrics_op_done(METRICS_OP_PUT, r, start);
        if (r >= 0)
                metrics_content_size(len);
        return r;
}

/* ---- runs of leaves through one add ---- */

int net_run_new(size_t leaf_len, size_t max_leaves, struct net_run **ret)
{
        struct net_run *run;
        size_t bytes;

        if (leaf_len == 0 || leaf_len > CID_MAX_BLOCK || max_leaves == 0 ||
            max_leaves > NET_RUN_MAX_LEAVES)
                return -EINVAL;
        bytes = FORM_HEAD_LEN + leaf_len * max_leaves + FORM_TAIL_LEN; /* <= 174 * 2 MiB */
        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->leaf_len = leaf_len;
        run->max_leaves = max_leaves;
        run->cids = calloc(max_leaves, sizeof(*run->cids));
        run->form = malloc(bytes);
        if (!run->cids || !run->form) {
                net_run_free(run);
                return -ENOMEM;
        }
        *ret = run;
        return 0;
}

void net_run_free(struct net_run *run)
{
        if (!run)
                return;
        free(run->cids);
        free(run->form);
        free(run);
}

static uint8_t *run_leaf(const struct net_run *run, size_t i)
{
        return run->form + FORM_HEAD_LEN + i * run->leaf_len;
}

int net_run_add(struct net_run *run, const struct cid *cid, const void *data, size_t len)
{
        if (cid->version != 1 || cid->codec != CID_CODEC_RAW || cid->mh_code != CID_MH_SHA2_256 ||
            cid->digest_len != 32 || len != run->leaf_len)
                return -EINVAL; /* what add with these settings makes, and nothing else */
        if (run->n == run->max_leaves)
                return -E2BIG;
        run->cids[run->n] = *cid;
        memcpy(run_leaf(run, run->n), data, len);
        run->n++;
        return 0;
}

void net_run_clear(struct net_run *run)
{
        run->n = 0;
}

bool net_run_fits(const struct net_run *run, size_t leaf_len, size_t max_leaves)
{
        return run->leaf_len == leaf_len && run->max_leaves == max_leaves;
}

size_t net_run_count(const struct net_run *run)
{
        return run->n;
}

size_t net_run_bytes(const struct net_run *run)
{
        return run->n * run->leaf_len;
}

const uint8_t *net_run_leaf(const struct net_run *run, size_t i, const struct cid **ret_cid)
{
        *ret_cid = &run->cids[i];
        return run_leaf(run, i);
}

bool net_put_takes_runs(struct net_put *put, size_t leaf_len)
{
        uint64_t add_from = __atomic_load_n(&put->add_from, __ATOMIC_RELAXED);

        return add_from && leaf_len >= add_from &&
               !__atomic_load_n(&put->is_run_refused, __ATOMIC_RELAXED);
}

/*
 * One add of the whole run, checked without trusting the node: add with these settings
 * stores the leaves and one File node over them, and answers that node's CID, which we
 * compute from our own leaf CIDs. 0 when it matches; 1 when the node refused the add or
 * named another root (the caller sends the leaves one by one, each checked on its own, and
 * later runs of the session go leaf by leaf too); -ENOTCONN when the node failed (session
 * dead).
 */
static int send_run(struct net_put *put, struct net_run *run, uint64_t deadline_ns)
{
        struct net_pool *p = put->p;
        uint64_t t0 = p->ops->now_ns(p->t);
        size_t data_len = net_run_bytes(run);
        char boundary[BOUNDARY_LEN + 1], ctype[96], url[MAX_URL], rootstr[CID_MAX_STR];
        struct net_http_response res;
        struct cid want;
        struct buf body;
        int r;

        r = unixfs_file_root_of_leaves(run->cids, run->n, run->leaf_len, 1, &want);
        if (r < 0)
                return r;
        (void)cid_to_string(&want, rootstr);
        r = form_boundary(p, run_leaf(run, 0), data_len, boundary, ctype, sizeof(ctype));
        if (r >= 0)
                r = add_url(put, run->leaf_len, url, sizeof(url));
        if (r < 0)
                return r;
        form_head(boundary, run->form);
        form_tail(boundary, run_leaf(run, run->n));
        buf_init(&body, MAX_RPC_ANSWER);
        /* the node may still be hashing what the socket buffered when our last byte left:
         * twice the stall time plus 100 ms per MiB before the answer counts as a stall */
        r = node_http(p, put->node, url, run->form, FORM_HEAD_LEN + data_len + FORM_TAIL_LEN, ctype,
                      (NET_CFG(p, stall_timeout_ms) * 2 + (data_len >> 20) * 100) * MS, deadline_ns,
                      &body, &res);
        if (r == -ECANCELED || r == -ENOMEM)
                goto out;
        if (r < 0) {
                r = put_node_failed(put, r, NULL, rootstr);
                goto out;
        }
        if (res.status == 200 && net_add_answer_names(&body, &want)) {
                put_counted(put, t0, data_len, run->n);
                r = 0;
                goto out;
        }
        if (res.status >= 500 && !net_is_rpc_refusal(&res, &body)) {
                r = put_node_failed(put, 0, &res, rootstr);
                goto out;
        }
        __atomic_store_n(&put->is_run_refused, 1, __ATOMIC_RELAXED);
        if (res.status == 200)
                log_warning("write node %s named another root than %s for a run of %zu leaves "
                            "of %zu bytes; sending them and later runs leaf by leaf",
                            p->nodes[put->node].url, rootstr, run->n, run->leaf_len);
        else
                log_warning("write node %s refused the add of a run of %zu leaves (root %s): "
                            "HTTP %ld; sending them and later runs leaf by leaf",
                            p->nodes[put->node].url, run->n, rootstr, res.status);
        r = 1;
out:
        buf_done(&body);
        return r;
}

static int put_run(struct net_put *put, struct net_run *run, uint64_t deadline_ns)
{
        bool has[NET_RUN_MAX_LEAVES] = { false };
        size_t n_has = 0;
        int r;

        if (__atomic_load_n(&put->is_dead, __ATOMIC_ACQUIRE))
                return -ENOTCONN;
        if (run->n == 0)
                return 0;
        for (size_t i = 0; i < run->n; i++) {
                r = cid_verify(&run->cids[i], run_leaf(run, i), run->leaf_len);
                if (r < 0)
                        return r; /* never upload bytes under a CID they do not hash to */
        }
        r = slot_take(put, deadline_ns);
        if (r < 0)
                return r;
        for (size_t i = 0; i < run->n && __atomic_load_n(&put->is_checking, __ATOMIC_ACQUIRE);
             i++) {
                char cidstr[CID_MAX_STR];

                r = node_has(put, &run->cids[i], cid_to_string(&run->cids[i], cidstr),
                             run->leaf_len, deadline_ns);
                if (r < 0)
                        goto out;
                has[i] = r == 1;
                n_has += has[i];
        }
        /* a run only when the node lacks all of it: resuming sends nothing twice */
        r = n_has == 0 && net_put_takes_runs(put, run->leaf_len) ? send_run(put, run, deadline_ns)
                                                                 : 1;
        if (r == 1) { /* leaf by leaf, each checked on its own */
                r = 0;
                for (size_t i = 0; i < run->n && r >= 0; i++) {
                        char cidstr[CID_MAX_STR];

                        if (!has[i])
                                r = send_block(put, &run->cids[i],
                                               cid_to_string(&run->cids[i], cidstr), "raw",
                                               run_leaf(run, i), run->leaf_len, deadline_ns);
                }
        }
        if (r >= 0)
                r = (int)n_has;
out:
        if (r < 0 && r != -ENOTCONN && r != -ECANCELED)
                __atomic_store_n(&put->is_checking, 1, __ATOMIC_RELEASE);
        slot_give(put);
        return r;
}

/* one operation per run; each of its leaves a content size */
int net_put_run(struct net_put *put, struct net_run *run, uint64_t deadline_ns)
{
        uint64_t start = metrics_now_ns();
        int r = put_run(put, run, deadline_ns);

        metrics_op_done(METRICS_OP_PUT, r, start);
        for (size_t i = 0; r >= 0 && i < run->n; i++)
                metrics_content_size(run->leaf_len);
        return r;
}

/* ---- pins ---- */

void net_count_pin(struct net_pool *p, int r)
{
        pthread_mutex_lock(&p->lock);
        if (r == 0)
                p->pins++;
        else
                p->pin_failures++;
        pthread_mutex_unlock(&p->lock);
}

/* Kubo says "not pinned or pinned indirectly", js-ipfs "<cid> is not pinned" and "is pinned
 * indirectly under". An empty 400 says nothing, and its buffer may never have been allocated
 * (memmem must not see NULL). */
bool net_is_not_pinned(const struct net_http_response *res, const struct buf *body)
{
        return net_is_rpc_refusal(res, body) && body->len > 0 &&
               (memmem(body->p, body->len, "not pinned", 10) ||
                memmem(body->p, body->len, "pinned indirectly", 17));
}

bool net_pins_answer_names(const struct buf *body, const struct cid *root)
{
        json_t *j = net_json_answer(body), *v;
        bool ok = false;
        size_t k;

        json_array_foreach(json_object_get(j, "Pins"), k, v)
        {
                if (same_cid(json_string_value(v), root))
                        ok = true;
        }
        json_decref(j);
        return ok;
}

/*
 * pin/<verb> (add or rm) of root, recursively, on node i: 0 when the node's "Pins" answer
 * names root, else -errno: -ENOENT when the node said it holds no such pin, -ENOTCONN no
 * answer or a failing node's, -EBADMSG refused or confirmed something else.
 */
static int pin_rpc(struct net_pool *p, size_t i, const char *verb, const struct cid *root,
                   const char *rootstr, uint64_t deadline_ns)
{
        const char *what = strcmp(verb, "add") == 0 ? "pinning" : "unpinning";
        uint64_t now = p->ops->now_ns(p->t);
        struct net_http_response res;
        char url[MAX_URL];
        struct buf body;
        int r;

        if (now >= deadline_ns)
                return -ETIMEDOUT;
        r = net_make_url(url, sizeof(url), "%s/api/v0/pin/%s?arg=%s&recursive=true",
                         p->nodes[i].url, verb, rootstr);
        if (r < 0)
                return r;
        buf_init(&body, MAX_RPC_ANSWER);
        /* a pin answers only when the whole DAG is there: no stall clock, only the deadline
         */
        r = node_http(p, i, url, NULL, 0, NULL, deadline_ns - now, deadline_ns, &body, &res);
        if (r < 0) {
                if (r != -ECANCELED && r != -ENOMEM)
                        net_pool_report(p, i, outcome_of(r), 0, 0, 0);
                log_warning_errno(r, "%s %s on %s failed", what, rootstr, p->nodes[i].url);
                r = r == -ECANCELED || r == -ENOMEM ? r : r == -ETIMEDOUT ? -ETIMEDOUT : -ENOTCONN;
                goto out;
        }
        if (net_is_not_pinned(&res, &body)) {
                r = -ENOENT;
                goto out;
        }
        if (res.status != 200 || !net_pins_answer_names(&body, root)) {
                log_warning("%s %s on %s failed: HTTP %ld%s", what, rootstr, p->nodes[i].url,
                            res.status, res.status == 200 ? " without confirming it" : "");
                if (res.status >= 500 && !net_is_rpc_refusal(&res, &body))
                        net_pool_report(p, i, NET_FAIL, 0, 0, 0);
                r = res.status >= 500 && !net_is_rpc_refusal(&res, &body) ? -ENOTCONN : -EBADMSG;
                goto out;
        }
        net_pool_report(p, i, NET_OK, (p->ops->now_ns(p->t) - now) / MS, 0, 0);
        r = 0;
out:
        buf_done(&body);
        return r;
}

/* pin/add on node i: 0 confirmed, else -errno (-ENOTCONN: no answer, -EBADMSG: refused or
 * confirmed something else). */
static int pin_on_node(struct net_pool *p, size_t i, const struct cid *root, const char *rootstr,
                       uint64_t deadline_ns)
{
        int r = pin_rpc(p, i, "add", root, rootstr, deadline_ns);

        if (r == -ENOENT)
                r = -EBADMSG; /* "not pinned" is no answer to a pin */
        net_count_pin(p, r);
        return r;
}

/* requestids go into a URL path: only unreserved characters */
static bool is_url_safe(const char *s)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 256)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || strchr("-._~", s[i])))
                        return false;
        return true;
}

bool net_is_url_safe(const char *s)
{
        return is_url_safe(s);
}

/* One request to a pinning service: GET, POST with json_body, or method (DELETE). */
int net_service_http(struct net_pool *p, const struct service *sv, const char *method,
                     const char *url, const char *json_body, uint64_t deadline_ns, struct buf *out,
                     struct net_http_response *res)
{
        const char *headers[4] = { 0 };
        uint64_t now = p->ops->now_ns(p->t), when;
        size_t h = 0;
        int r;

        if (now >= deadline_ns)
                return -ETIMEDOUT;
        /* a pinning service's rate limit: wait for a token (never past the deadline); the
         * IPFS Cluster API has none (sv->rate NULL: it is the admin's own cluster) */
        when = now;
        r = sv->rate ? net_bucket_take(sv->rate, now, deadline_ns, &when) : 0;
        if (r < 0)
                return r;
        if (when > now) {
                p->ops->sleep_until(p->t, when);
                now = p->ops->now_ns(p->t);
                if (now < when)
                        return -ECANCELED; /* woken early: shutdown */
        }
        headers[h++] = "Accept: application/json";
        if (json_body)
                headers[h++] = "Content-Type: application/json";
        if (sv->auth)
                headers[h++] = sv->auth;
        buf_clear(out);
        return p->ops->http(
                p->t,
                &(struct net_http_request){ .url = url,
                                            .post = json_body != NULL ||
                                                    (method && !strcmp(method, "POST")),
                                            .method = method,
                                            .body = json_body,
                                            .body_len = json_body ? strlen(json_body) : 0,
                                            .headers = headers,
                                            .stall_ns = MAX(deadline_ns - now, 1),
                                            .deadline_ns = deadline_ns,
                                            .max_body = MAX_RPC_ANSWER },
                out, res);
}

int net_pin_status(const struct buf *body, char *ret_status, size_t status_cap, char *ret_id,
                   size_t id_cap)
{
        json_t *j = net_json_answer(body);
        const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
        const char *id = j ? json_string_value(json_object_get(j, "requestid")) : NULL;
        int r = -EBADMSG;

        if (st && is_url_safe(id) && strlen(st) < status_cap && strlen(id) < id_cap) {
                (void)snprintf(ret_status, status_cap, "%s", st);
                (void)snprintf(ret_id, id_cap, "%s", id);
                r = 0;
        }
        json_decref(j);
        return r;
}

/* Create a pin on one service and poll it until pinned (0), failed (-EREMOTEIO), or the
 * deadline (-ETIMEDOUT); -EBADMSG for answers that are not the API's. */
static int pin_on_service(struct net_pool *p, const struct service *sv, const char *rootstr,
                          uint64_t deadline_ns)
{
        char url[MAX_URL], status[32], id[NET_PIN_ID_SIZE], req[2 * CID_MAX_STR + 64];
        struct net_http_response res;
        uint64_t poll_ms = 100;
        struct buf body;
        int r;

        (void)snprintf(req, sizeof(req), "{\"cid\":\"%s\",\"name\":\"prsmfs %s\"}", rootstr,
                       rootstr);
        r = net_make_url(url, sizeof(url), "%s/pins", sv->url);
        if (r < 0)
                return r;
        buf_init(&body, MAX_RPC_ANSWER);
        r = net_service_http(p, sv, NULL, url, req, deadline_ns, &body, &res);
        if (r < 0)
                goto out;
        if (res.status != 200 && res.status != 201 && res.status != 202) {
                log_warning("pinning service %s refused to pin %s: HTTP %ld", sv->url, rootstr,
                            res.status);
                r = -EREMOTEIO;
                goto out;
        }
        for (;;) {
                uint64_t wake;

                r = net_pin_status(&body, status, sizeof(status), id, sizeof(id));
                if (r < 0)
                        goto out;
                if (strcmp(status, "pinned") == 0) {
                        r = 0;
                        goto out;
                }
                if (strcmp(status, "queued") != 0 && strcmp(status, "pinning") != 0) {
                        log_warning("pinning service %s: pin of %s is %s", sv->url, rootstr,
                                    status);
                        r = strcmp(status, "failed") == 0 ? -EREMOTEIO : -EBADMSG;
                        goto out;
                }
                wake = p->ops->now_ns(p->t) + poll_ms * MS;
                if (wake >= deadline_ns) {
                        r = -ETIMEDOUT;
                        goto out;
                }
                p->ops->sleep_until(p->t, wake);
                poll_ms = MIN(poll_ms * 2, 1000);
                r = net_make_url(url, sizeof(url), "%s/pins/%s", sv->url, id);
                if (r < 0)
                        goto out;
                r = net_service_http(p, sv, NULL, url, NULL, deadline_ns, &body, &res);
                if (r < 0)
                        goto out;
                if (res.status != 200) {
                        r = -EREMOTEIO;
                        goto out;
                }
        }
out:
        if (r < 0)
                log_warning_errno(r, "pinning %s on service %s failed", rootstr, sv->url);
        buf_done(&body);
        net_count_pin(p, r);
        return r;
}

int net_rpc_next(struct net_pool *p, bool *tried)
{
        for (;;) {
                struct net_health snap[NET_MAX_NODES];
                bool skip[NET_MAX_NODES];
                size_t n;
                int i;

                pthread_mutex_lock(&p->lock);
                n = p->n_nodes;
                for (size_t k = 0; k < n; k++) {
                        net_node_snap(p, k, &snap[k]);
                        skip[k] = tried[k] || p->nodes[k].kind != NET_NODE_RPC;
                }
                pthread_mutex_unlock(&p->lock);
                i = net_health_choose(snap, n, skip, p->ops->now_ns(p->t));
                if (i < 0)
                        return -1;
                tried[i] = true;
                if (net_node_hold(p, (size_t)i))
                        return i;
                /* removed by a reload meanwhile: choose again */
        }
}

/*
 * After `confirmed` nodes (those in tried) hold the pin: pins root on further usable RPC nodes
 * until `replicas` confirmed, then on every pinning service. 0 only when all of that held.
 */
static int pin_more(struct net_pool *p, const struct cid *root, const char *rootstr, bool *tried,
                    unsigned confirmed, unsigned replicas, uint64_t deadline_ns)
{
        int r, result = 0;

        while (confirmed < replicas) {
                int i = net_rpc_next(p, tried);

                if (i < 0)
                        break;
                r = pin_on_node(p, (size_t)i, root, rootstr, deadline_ns);
                net_node_release(p, (size_t)i);
                if (r == -ECANCELED || r == -ENOMEM || r == -ETIMEDOUT)
                        return r;
                if (r == 0)
                        confirmed++;
        }
        if (confirmed < replicas) {
                log_warning("%s is pinned on %u of %u nodes", rootstr, confirmed, replicas);
                result = -EHOSTUNREACH;
        }
        for (size_t k = 0; k < p->n_services; k++) {
                r = pin_on_service(p, &p->services[k], rootstr, deadline_ns);
                if (r == -ECANCELED || r == -ENOMEM || r == -ETIMEDOUT)
                        return r;
                if (r < 0)
                        result = -EHOSTUNREACH;
        }
        if (p->cluster) {
                r = net_cluster_pin(p, rootstr, deadline_ns);
                if (r == -ECANCELED || r == -ENOMEM || r == -ETIMEDOUT)
                        return r;
                if (r < 0)
                        result = -EHOSTUNREACH;
        }
        return result;
}

static int put_pin(struct net_put *put, const struct cid *root, unsigned replicas,
                   uint64_t deadline_ns)
{
        struct net_pool *p = put->p;
        bool tried[NET_MAX_NODES] = { 0 };
        char rootstr[CID_MAX_STR];
        int r;

        if (__atomic_load_n(&put->is_dead, __ATOMIC_ACQUIRE))
                return -ENOTCONN;
        (void)cid_to_string(root, rootstr);
        r = pin_on_node(p, put->node, root, rootstr, deadline_ns);
        if (r == -ENOTCONN)
                put_kill(put, "pin/add got no answer", rootstr);
        if (r < 0)
                return r;
        tried[put->node] = true;
        return pin_more(p, root, rootstr, tried, 1, replicas, deadline_ns);
}

int net_put_pin(struct net_put *put, const struct cid *root, unsigned replicas,
                uint64_t deadline_ns)
{
        uint64_t start = metrics_now_ns();
        int r = put_pin(put, root, replicas, deadline_ns);

        metrics_op_done(METRICS_OP_PIN, r, start);
        return r;
}

static int pool_pin(struct net_pool *p, const struct cid *root, unsigned replicas,
                    uint64_t deadline_ns)
{
        bool tried[NET_MAX_NODES] = { 0 };
        char rootstr[CID_MAX_STR];

        (void)cid_to_string(root, rootstr);
        return pin_more(p, root, rootstr, tried, 0, MAX(replicas, 1u), deadline_ns);
}

int net_pool_pin(struct net_pool *p, const struct cid *root, unsigned replicas,
                 uint64_t deadline_ns)
{
        uint64_t start = metrics_now_ns();
        int r = pool_pin(p, root, replicas, deadline_ns);

        metrics_op_done(METRICS_OP_PIN, r, start);
        return r;
}

/* ---- unpins ---- */

/* pin/rm on node i: 0 when the node holds no recursive pin of root any more (removed now, or
 * never there: another replica, or an earlier unpin that landed), else -errno. */
static int unpin_on_node(struct net_pool *p, size_t i, const struct cid *root, const char *rootstr,
                         uint64_t deadline_ns)
{
        int r = pin_rpc(p, i, "rm", root, rootstr, deadline_ns);

        return r == -ENOENT ? 0 : r;
}

int net_pin_results(const struct buf *body, char (*ret_ids)[NET_PIN_ID_SIZE], size_t max,
                    size_t *ret_n)
{
        json_t *j = net_json_answer(body), *results, *v;
        size_t k, n = 0;
        int r = -EBADMSG;

        results = j ? json_object_get(j, "results") : NULL;
        if (json_is_array(results)) {
                r = 0;
                json_array_foreach(results, k, v)
                {
                        const char *id = json_string_value(json_object_get(v, "requestid"));

                        if (!is_url_safe(id) || strlen(id) >= sizeof(ret_ids[0])) {
                                r = -EBADMSG;
                                break;
                        }
                        if (n < max)
                                (void)snprintf(ret_ids[n++], sizeof(ret_ids[0]), "%s", id);
                }
        }
        json_decref(j);
        if (r >= 0)
                *ret_n = n;
        return r;
}

#define UNPIN_BATCH 16 /* requestids deleted per listing */

/* Deletes the pins of root that pin_on_service made on one service (named "prsmfs <root>", in
 * any status), listing again until none is left: 0, or -errno. */
static int unpin_on_service(struct net_pool *p, const struct service *sv, const char *rootstr,
                            uint64_t deadline_ns)
{
        char url[MAX_URL], ids[UNPIN_BATCH][NET_PIN_ID_SIZE];
        struct net_http_response res;
        struct buf body;
        size_t n = 0;
        int r;

        buf_init(&body, MAX_RPC_ANSWER);
        for (unsigned round = 0; round < 64; round++) {
                r = net_make_url(url, sizeof(url),
                                 "%s/pins?cid=%s&name=prsmfs%%20%s&match=exact&"
                                 "status=queued,pinning,pinned,failed&limit=%d",
                                 sv->url, rootstr, rootstr, UNPIN_BATCH);
                if (r >= 0)
                        r = net_service_http(p, sv, NULL, url, NULL, deadline_ns, &body, &res);
                if (r >= 0 && res.status != 200)
                        r = -EREMOTEIO;
                if (r >= 0)
                        r = net_pin_results(&body, ids, UNPIN_BATCH, &n);
                if (r < 0 || n == 0)
                        goto out;
                for (size_t k = 0; k < n; k++) {
                        r = net_make_url(url, sizeof(url), "%s/pins/%s", sv->url, ids[k]);
                        if (r >= 0)
                                r = net_service_http(p, sv, "DELETE", url, NULL, deadline_ns, &body,
                                                     &res);
                        /* 404: deleted meanwhile (by an earlier unpin that got no answer) */
                        if (r >= 0 && res.status != 200 && res.status != 202 && res.status != 204 &&
                            res.status != 404)
                                r = -EREMOTEIO;
                        if (r < 0)
                                goto out;
                }
        }
        r = -EREMOTEIO; /* a service that keeps listing what it deleted */
out:
        if (r < 0)
                log_warning_errno(r, "unpinning %s on service %s failed", rootstr, sv->url);
        buf_done(&body);
        return r;
}

static int pool_unpin(struct net_pool *p, const struct cid *root, uint64_t deadline_ns)
{
        char rootstr[CID_MAX_STR];
        int r, result = 0;

        (void)cid_to_string(root, rootstr);
        for (size_t i = 0; i < net_pool_slots(p); i++) {
                bool is_down;

                /* a node a reload removed is no longer ours to ask */
                if (!net_node_hold(p, i))
                        continue;
                if (p->nodes[i].kind != NET_NODE_RPC) {
                        net_node_release(p, i);
                        continue;
                }
                pthread_mutex_lock(&p->lock);
                is_down = p->nodes[i].h.state == NET_STATE_DOWN;
                pthread_mutex_unlock(&p->lock);
                /* not asked until its probe brings it back: a node that stalls would spend
                 * the deadline of every unpin, and the nodes after it would never be asked */
                r = is_down ? -EHOSTUNREACH : unpin_on_node(p, i, root, rootstr, deadline_ns);
                net_node_release(p, i);
                if (r == -ECANCELED || r == -ENOMEM)
                        return r;
                if (r < 0 && result != -ETIMEDOUT)
                        result = r == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
        }
        for (size_t k = 0; k < p->n_services; k++) {
                r = unpin_on_service(p, &p->services[k], rootstr, deadline_ns);
                if (r == -ECANCELED || r == -ENOMEM)
                        return r;
                if (r < 0 && result != -ETIMEDOUT)
                        result = r == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
        }
        if (p->cluster) {
                r = net_cluster_unpin(p, rootstr, deadline_ns);
                if (r == -ECANCELED || r == -ENOMEM)
                        return r;
                if (r < 0 && result != -ETIMEDOUT)
                        result = r == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
        }
        pthread_mutex_lock(&p->lock);
        if (result == 0)
                p->unpins++;
        else
                p->unpin_failures++;
        pthread_mutex_unlock(&p->lock);
        return result;
}

int net_pool_unpin(struct net_pool *p, const struct cid *root, uint64_t deadline_ns)
{
        uint64_t start = metrics_now_ns();
        int r = pool_unpin(p, root, deadline_ns);

        metrics_op_done(METRICS_OP_UNPIN, r, start);
        return r;
}
