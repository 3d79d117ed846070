/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to net: the seam between the pool's logic and HTTP. The real transport is the curl
 * multi engine (engine.c); unit tests script replies and time through a fake one.
 */
#pragma once

#include "prsmfs/buf.h"
#include "prsmfs/net.h"

struct net_http_request {
        const char *url;
        bool post;                  /* POST (Kubo RPC), else GET */
        const char *method;         /* "DELETE" (Pinning Service API); NULL: as post says */
        const void *body;           /* POST body, borrowed until the call returns; may be NULL */
        size_t body_len;            /* (its Content-Type goes in headers) */
        const char *const *headers; /* NULL-terminated, may be NULL */
        uint64_t stall_ns;          /* stalled when no byte moves (either way) for this long */
        uint64_t first_byte_ns;     /* stalled when the answer has not started this long after
                                       the request went out; 0 = stall_ns */
        /* Called (on the transport's thread) when the transfer stalled: true gives it up
         * (-ETIMEDOUT), false keeps waiting and asks again after another such period. NULL:
         * give up. Must not call the transport or block. */
        bool (*on_stall)(void *ud);
        void *stall_ud;
        uint64_t deadline_ns; /* absolute, monotonic */
        size_t max_body;      /* abort a larger answer */
        size_t size_hint;     /* the body's likely size when no Content-Length says; 0 = none */
        const int *cancel;    /* may be NULL; non-zero (atomic) aborts with -ECANCELED */
        const int *abort;     /* the same for the caller's withdrawal (net_set_abort) */
};

struct net_http_response {
        long status;
        char content_type[96];
        uint64_t retry_after_ms; /* 0 when absent */
        char error[256];         /* the transport's words for a failure (for logs), or "" */
};

struct net_transport_ops {
        /* Performs one request; 0 with *res filled (any status), or -errno for transport
         * failures (-ETIMEDOUT stall or deadline, -ECONNREFUSED, -EHOSTUNREACH for a host name
         * that does not resolve, -ECONNRESET, -E2BIG, ...). The body buffer is sized from
         * the answer's Content-Length (up to max_body) or size_hint before it fills. */
        int (*http)(void *t, const struct net_http_request *req, struct buf *body,
                    struct net_http_response *res);
        uint64_t (*now_ns)(void *t);
        /* Sleeps until ns (or returns early on shutdown). */
        void (*sleep_until)(void *t, uint64_t ns);
        /* A random number for jitter. */
        uint64_t (*random)(void *t);
        bool no_probe_thread; /* tests drive probes by hand */
        bool no_threads;      /* no helper threads either (no hedging): fake clocks */
};

/* Real transport: a curl multi engine thread. */
struct net_engine;
_wur_ int net_engine_new(const struct net_config *cfg, struct net_engine **ret);
/* Completes everything in flight and every later request with -ECANCELED; does not free. */
void net_engine_shutdown(struct net_engine *e);
void net_engine_free(struct net_engine *e);
extern const struct net_transport_ops net_engine_ops;
/* One header line of an answer as curl hands it over (p[0..len), "\r\n" included, not
 * NUL-terminated): "HTTP/" (a new answer) resets *content_length to -1; Content-Length sets it
 * (0..INT64_MAX, else unchanged); Content-Type fills res->content_type (NUL-terminated, cut to
 * fit); Retry-After in delta-seconds below one day sets res->retry_after_ms. Anything else is
 * ignored. Pure: the engine's header callback, and fuzzed (tests/fuzz/fuzz_http_header.c). */
void net_header_parse(const char *p, size_t len, int64_t *content_length,
                      struct net_http_response *res);

/* Pool over any transport (the engine, or a test's fake). t is borrowed. */
_wur_ int net_pool_new_with_transport(const struct net_config *cfg,
                                      const struct net_transport_ops *ops, void *t,
                                      struct net_pool **ret);
/* Probes every down or disabled node whose time has come, and returns when they answered (the
 * probe thread does the same every 50 ms without waiting; tests call this by hand). */
void net_pool_probe_due(struct net_pool *p);
/* Probes every node once, at the same time, and logs one warning line for each that cannot
 * serve (with the reason); those are down or disabled afterwards. The probe thread does this
 * at start when is_checking_nodes. */
void net_pool_check_nodes(struct net_pool *p);

/* ---- pure health logic (pool.c) ---- */
enum net_outcome {
        NET_OK,
        NET_FAIL,      /* error, reset, 5xx: the node may be dying */
        NET_TIMEOUT,   /* stalled or too slow */
        NET_BAD_BLOCK, /* bytes that do not hash to the CID: a lying node */
        NET_THROTTLED, /* 429 */
        NET_NOT_FOUND, /* the node does not have it: not its fault */
        NET_UNUSABLE,  /* wrong content type: this gateway is not trustless */
        NET_DEADLINE,  /* the request's own deadline passed: not the node's fault */
};

struct net_health {
        enum net_node_state state;
        unsigned failures;      /* consecutive */
        double latency_ms;      /* EWMA, 0 = unknown */
        uint64_t next_probe_ns; /* when down or disabled */
        uint64_t throttled_until_ns;
};

struct net_health_params {
        uint64_t base_ms, max_ms;
};

/* Exponential backoff with jitter: a value in [d/2, d], d = min(max, base * 2^attempt). */
uint64_t net_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt, uint64_t rnd);
void net_health_report(struct net_health *h, const struct net_health_params *p, enum net_outcome o,
                       uint64_t latency_ms, uint64_t retry_after_ms, uint64_t now_ns, uint64_t rnd);
/* A probe's outcome: NET_OK brings a down or disabled node back up; NET_UNUSABLE disables it;
 * anything else takes (or keeps) it down, each failed probe backing off further. */
void net_health_probed(struct net_health *h, const struct net_health_params *p, enum net_outcome o,
                       uint64_t now_ns, uint64_t rnd);
/* Best usable node: up before suspect, then lowest latency (unknown first), then index.
 * skip[i] true excludes node i. -1 when none is usable now. */
int net_health_choose(const struct net_health *h, size_t n, const bool *skip, uint64_t now_ns);
/* The 95th percentile of n latency samples (n <= 64), 0 when n == 0. */
uint32_t net_latency_p95(const uint32_t *samples, size_t n);
