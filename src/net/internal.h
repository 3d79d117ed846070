/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to net: the pool's state, shared by the read side (net.c) and the write side
 * (put.c). Lock order: pool->lock, then a put session's lock; neither is held across a
 * transport call, hashing or logging.
 */
#pragma once

#include <pthread.h>

#include "prsmfs/log.h"

#include "transport.h"

#define MAX_AUTH        512
#define NET_LAT_SAMPLES 32

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
};

struct net_pool {
        const struct net_transport_ops *ops;
        void *t;
        struct net_engine *engine; /* owned when we made it */
        struct node nodes[NET_MAX_NODES];
        size_t n_nodes;
        struct net_config cfg;
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
        bool stop;                /* lock */
        pthread_cond_t stop_cond; /* signalled on stop */
        pthread_t prober;
        bool prober_started;
};

/* Updates node i's health and counters after a request (pool->lock taken inside). */
void net_pool_report(struct net_pool *p, size_t i, enum net_outcome o, uint64_t latency_ms,
                     uint64_t retry_after_ms, size_t bytes);
/* Reads "bearer:TOKEN" / "basic:user:pass" from a file only its owner may read and returns
 * the "Authorization: ..." header in *ret (new string). -EPERM for a group/world-readable file. */
_wur_ int net_auth_read(const char *path, char **ret);
/* The CLOCK_REALTIME time wait_ns from now, for pthread_cond_timedwait. */
void net_timespec_in(uint64_t wait_ns, struct timespec *ret);
