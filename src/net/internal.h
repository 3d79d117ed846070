/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to net: the pool's state, shared by the read side (net.c) and the write side
 * (put.c). Lock order: pool->lock, then a put session's lock; neither is held across a
 * transport call, hashing or logging.
 */
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <jansson.h>

#include "prsmfs/log.h"

#include "transport.h"

#define MAX_AUTH                  512
#define NET_LAT_SAMPLES           32
#define NET_STATE_LOG_INTERVAL_NS (60ull * 1000000000ull)
#define NET_STATE_LOG_BURST       5
#define NET_FIRST_BYTE_DEFAULT_MS 5000

struct node {
        enum net_node_kind kind;
        char *url;                        /* base, no trailing slash */
        char *auth;                       /* "Authorization: ..." header, or NULL */
        struct net_health h;              /* pool->lock */
        struct net_node_stats st;         /* pool->lock */
        uint32_t lat_us[NET_LAT_SAMPLES]; /* pool->lock: recent whole-block times (ring) */
        unsigned n_lat, lat_next;         /* pool->lock */
        uint64_t add_from;                /* atomic: the smallest raw block this node refused on
                                             block/put with 413 (its body cap); 0 = none */
        /* the probe thread's probe of this node (net.c), so that one slow probe holds up no
         * other node's */
        pthread_t probe_thread;
        bool probe_check;               /* what it checks: the check at start */
        bool probe_running;             /* pool->lock */
        bool probe_joinable;            /* the probe thread only */
        struct log_ratelimit state_log; /* its state-change lines (net.c) */
        /* live node lists (net_pool_set_nodes): a removed node's slot is retired (never chosen
         * again) and reused for a new node only once no one holds it (users == 0, no probe
         * running), so its url and auth stay valid for every fetch, session or pin using it */
        bool retired;   /* pool->lock */
        unsigned users; /* pool->lock: holders (net_node_hold) */
};

/* bucket.c: requests_per_minute and burst_size of a pinning service (a token bucket) */
struct net_bucket {
        pthread_mutex_t lock;
        uint64_t interval_ns; /* between requests; 0: no limit */
        unsigned burst;       /* requests that may go at once, >= 1 */
        uint64_t tat;         /* lock: the theoretical arrival time of the next request */
};
void net_bucket_init(struct net_bucket *b, unsigned per_minute, unsigned burst);
void net_bucket_done(struct net_bucket *b);
/* The time (>= now) at which one more request may go, taken; -ETIMEDOUT (nothing taken)
 * when that is after deadline. */
_wur_ int net_bucket_take(struct net_bucket *b, uint64_t now_ns, uint64_t deadline_ns,
                          uint64_t *ret_when_ns);

struct service {
        char *url;               /* base, no trailing slash */
        char *auth;              /* "Authorization: Bearer ..." header, or NULL */
        struct net_bucket *rate; /* owned: requests_per_minute, burst_size */
};

struct inflight {
        struct cid cid;
        unsigned users;          /* pool->lock */
        bool done;               /* pool->lock */
        int result;              /* pool->lock */
        struct net_block *block; /* pool->lock; owned reference */
        pthread_cond_t cond;
        struct inflight *next; /* pool->lock */
        /* the threads working on the fetch: the owner, then its hedging legs while they run
         * (pool->lock; 0: none) */
        pid_t tids[3];
        bool owner_is_background, is_boosted; /* pool->lock */
};

struct net_pool {
        const struct net_transport_ops *ops;
        void *t;
        struct net_engine *engine; /* owned when we made it */
        struct node nodes[NET_MAX_NODES];
        size_t n_nodes;        /* slots in use, retired ones too; grows under lock (atomic store),
                                  read unlocked with net_pool_slots */
        struct net_config cfg; /* timeout_ms, stall_timeout_ms, first_byte_timeout_ms: atomic
                                  (net_pool_set_timeouts); the rest immutable after new */
        struct net_health_params hp;
        pthread_mutex_t lock;
        struct inflight *inflight; /* lock */
        size_t size_hint;          /* atomic: the last block's size, for receive buffers (net.c) */
        uint64_t fetches, dedup_hits, failures; /* lock */
        uint64_t hedges, hedge_wins;            /* lock */
        uint64_t puts, put_bytes, put_skips;    /* lock */
        uint64_t pins, pin_failures;            /* lock */
        uint64_t unpins, unpin_failures;        /* lock */
        struct service *services;               /* pinning services; immutable after new */
        size_t n_services;
        struct service *cluster; /* IPFS Cluster REST API (cluster.c), NULL: none; immutable */
        unsigned replication_min, replication_max; /* for the cluster; 0: its default */
        bool stop;                                 /* lock */
        pthread_cond_t stop_cond;                  /* signalled on stop */
        pthread_t prober;
        bool prober_started;
};

/* Fills a zeroed slot from nc: URL (trailing slashes dropped), kind, auth header (the file is
 * read now); -EINVAL, -EPERM (auth file readable by others), -ENOMEM. net_node_done frees. */
_wur_ int net_node_init(struct node *n, const struct net_node_config *nc);
void net_node_done(struct node *n);
/* Slots to look at (n_nodes), for readers outside pool->lock. */
size_t net_pool_slots(struct net_pool *p);
/* Under pool->lock: node k's health as a chooser must see it (a retired node as disabled, so
 * that net_health_choose never picks it). */
void net_node_snap(const struct net_pool *p, size_t k, struct net_health *ret);
/* Takes a hold on node i (its url and auth stay valid until net_node_release): false when it
 * was retired meanwhile (choose again). */
_wur_ bool net_node_hold(struct net_pool *p, size_t i);
void net_node_release(struct net_pool *p, size_t i);
/* A live-changeable setting of p->cfg, read without the lock. */
#define NET_CFG(p, field) __atomic_load_n(&(p)->cfg.field, __ATOMIC_RELAXED)

/* ---- shared by put.c and cluster.c ---- */
struct buf;
/* Formats a URL into out; -E2BIG when it does not fit. */
_printf_(3, 4) int net_make_url(char *out, size_t cap, const char *fmt, ...);
/* An empty POST to url on node i (its auth added; answer of at most 64 KiB): 0 with *res, or
 * the transport's -errno. */
_wur_ int net_node_http(struct net_pool *p, size_t i, const char *url, uint64_t stall_ns,
                        uint64_t deadline_ns, struct buf *out, struct net_http_response *res);
/* The best usable RPC node not in tried, marked tried and held (net_node_release after use);
 * -1 when none is left. */
int net_rpc_next(struct net_pool *p, bool *tried);
/* 1..256 unreserved URL characters (A-Z a-z 0-9 - . _ ~): safe in a path or query. */
bool net_is_url_safe(const char *s);
/* Counts a pin (0) or a failed one for the stats. */
void net_count_pin(struct net_pool *p, int r);
/* One request to an HTTP API with sv's auth: GET, POST with json_body (may be "" for an empty
 * POST), or method ("DELETE"); the answer in out (at most 64 KiB). Transport errors. */
_wur_ int net_service_http(struct net_pool *p, const struct service *sv, const char *method,
                           const char *url, const char *json_body, uint64_t deadline_ns,
                           struct buf *out, struct net_http_response *res);
/* IPFS Cluster (cluster.c): pins root with the pool's replication factors and waits until
 * replication_min peers (at least 1) report it pinned; removes its pin. 0, -EREMOTEIO (refused,
 * a peer's pin_error), -EBADMSG (an answer not as the API documents), -ETIMEDOUT. */
_wur_ int net_cluster_pin(struct net_pool *p, const char *rootstr, uint64_t deadline_ns);
_wur_ int net_cluster_unpin(struct net_pool *p, const char *rootstr, uint64_t deadline_ns);
_wur_ int net_cluster_init(struct net_pool *p, const struct net_config *cfg);
void net_cluster_free(struct net_pool *p);

/*
 * ---- answer judges: what an RPC node, pinning service or cluster answered ----
 * Pure functions of the answer's body (or its parsed JSON object; NULL allowed), called by
 * the request code in put.c, cluster.c and ipns.c and fuzzed as they are
 * (tests/fuzz/fuzz_rpc_answers.c). Strings they write are NUL-terminated within their cap.
 */
#define NET_PIN_ID_SIZE 260 /* a pinning service's requestid, NUL included */
/* A JSON object answer (new reference), or NULL when the body is not one. */
json_t *net_json_answer(const struct buf *b);
/* The node refused the request itself (it is alive): a 400, or a 500 with an RPC error. */
bool net_is_rpc_refusal(const struct net_http_response *res, const struct buf *body);
/* A refusal that says the node holds no recursive pin of the argument. */
bool net_is_not_pinned(const struct net_http_response *res, const struct buf *body);
/* block/stat: the answer names cid (in any base or version) with Size len. */
bool net_stat_answer_has(const struct buf *body, const struct cid *cid, size_t len);
/* block/put: the answer's Key names cid; key gets that Key (cut to key_cap, "" when none) for
 * the log either way. */
bool net_put_answer_names(const struct buf *body, const struct cid *cid, char *key, size_t key_cap);
/* add (NDJSON): its last object's Hash names want. */
bool net_add_answer_names(const struct buf *body, const struct cid *want);
/* pin/add and pin/rm: one of the answer's "Pins" names root. */
bool net_pins_answer_names(const struct buf *body, const struct cid *root);
/* Pinning Service API: a PinStatus's status and requestid (URL-safe), each within its cap;
 * -EBADMSG for anything else. */
_wur_ int net_pin_status(const struct buf *body, char *ret_status, size_t status_cap, char *ret_id,
                         size_t id_cap);
/* Pinning Service API: the requestids of a PinResults answer (the first max of them, each
 * URL-safe), 0 with their number; -EBADMSG for anything else. */
_wur_ int net_pin_results(const struct buf *body, char (*ret_ids)[NET_PIN_ID_SIZE], size_t max,
                          size_t *ret_n);
/* IPFS Cluster: its own words for a refusal ({"code", "message"}), or "no message", for the
 * log. */
void net_cluster_message(const struct buf *body, char *out, size_t cap);
/* IPFS Cluster: of a GlobalPinInfo answer's peers, those allocated rootstr (not "remote"),
 * those that pinned it and those that failed it (the last failure's words in why); -EBADMSG
 * for an answer that is not one (or names another CID). */
_wur_ int net_cluster_count_peers(const struct buf *body, const char *rootstr, unsigned *ret_pinned,
                                  unsigned *ret_failed, unsigned *ret_allocated, char *why,
                                  size_t why_cap);
/* The "Message" of an RPC error answer, or NULL. Borrowed from j. */
const char *net_rpc_message(json_t *j);
/* key/list: 1 with the IPNS name (URL-safe, shorter than id_size) of the last key named key in
 * ret_id, 0 when there is none. */
_wur_ int net_key_list_find(json_t *j, const char *key, char *ret_id, size_t id_size);
/* key/gen: 0 with the new key's IPNS name (URL-safe, shorter than id_size) in ret_id, or
 * -EBADMSG. */
_wur_ int net_key_gen_id(json_t *j, char *ret_id, size_t id_size);
/* name/publish: the answer's Value is "/ipfs/<rootstr>"; *value is that Value (borrowed from
 * j) or NULL, either way, for the log. */
bool net_publish_confirms(json_t *j, const char *rootstr, const char **value);
/* name/resolve: the CID of a "/ipfs/<cid>" Path into ret; -EBADMSG for anything else (a path
 * inside). *path is the Path (borrowed from j) or NULL, either way, for the log. */
_wur_ int net_resolve_answer(json_t *j, struct cid *ret, const char **path);

/* Updates node i's health and counters after a request (pool->lock taken inside). */
void net_pool_report(struct net_pool *p, size_t i, enum net_outcome o, uint64_t latency_ms,
                     uint64_t retry_after_ms, size_t bytes);
/* Reads "bearer:TOKEN" / "basic:user:pass" from a file only its owner may read and returns
 * the "Authorization: ..." header in *ret (new string). -EPERM for a group/world-readable file. */
_wur_ int net_auth_read(const char *path, char **ret);
/* The CLOCK_REALTIME time wait_ns from now, for pthread_cond_timedwait. */
void net_timespec_in(uint64_t wait_ns, struct timespec *ret);
