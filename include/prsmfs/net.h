/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The node pool: verified block fetches from several IPFS nodes (Kubo RPC) and trustless
 * gateways, with health states, backoff, failover and in-flight de-duplication.
 *
 * Nothing leaves this module unverified: a block handed upward hashed to its CID. A node that
 * errs, stalls or lies is demoted and the request moves to another node; down nodes are
 * probed back with exponential backoff and jitter.
 *
 * Thread-safety: every function may be called from any thread. Blocking calls take an
 * absolute deadline (CLOCK_MONOTONIC ns) and never wait past it.
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/cid.h"

#define NET_MAX_NODES 32

enum net_node_kind {
        NET_NODE_RPC,     /* Kubo RPC: read, write, pin */
        NET_NODE_GATEWAY, /* trustless gateway: read only */
        _NET_NODE_KIND_MAX,
};

enum net_node_state {
        NET_STATE_UP,
        NET_STATE_SUSPECT,  /* one failure: used only when no node is up */
        NET_STATE_DOWN,     /* not used until a probe succeeds */
        NET_STATE_DISABLED, /* cannot serve blocks at all (e.g. a non-trustless gateway) */
        _NET_STATE_MAX,
};

struct net_node_config {
        enum net_node_kind kind;
        const char *url;       /* borrowed for the call; "http://127.0.0.1:5001" */
        const char *auth_file; /* may be NULL; "bearer:TOKEN" or "basic:user:pass" */
};

struct net_config {
        const struct net_node_config *nodes;
        size_t n_nodes;
        uint64_t timeout_ms;       /* whole request, all attempts */
        uint64_t stall_timeout_ms; /* no byte for this long: the node is stalled */
        uint64_t retry_base_delay_ms;
        uint64_t retry_max_delay_ms;
        unsigned retry_max_attempts; /* attempts per node within one request */
        unsigned connection_pool_size;
        const char *ca_bundle; /* may be NULL */
};

/* A verified block; refcounted, immutable. */
struct net_block {
        uint8_t *data;
        size_t len;
        struct cid cid;
        int refs; /* atomic */
};

struct net_block *net_block_ref(struct net_block *b);
void net_block_unref(struct net_block *b);

struct net_node_stats {
        char url[128];
        enum net_node_kind kind;
        enum net_node_state state;
        double latency_ms; /* EWMA of time to a whole block */
        uint64_t requests, errors, timeouts, bad_blocks, throttled, bytes;
};

struct net_stats {
        uint64_t fetches, dedup_hits, failures;
        size_t n_nodes;
        struct net_node_stats nodes[NET_MAX_NODES];
};

struct net_pool;

_wur_ int net_pool_new(const struct net_config *cfg, struct net_pool **ret);
/* Makes every fetch in flight, and every later one, end at once with -ECANCELED, so that
 * threads blocked in the pool can be joined; the pool stays valid until net_pool_free. */
void net_pool_shutdown(struct net_pool *p);
/* Cancels what is in flight (callers get -ECANCELED) and frees. NULL-safe. */
void net_pool_free(struct net_pool *p);

/*
 * Fetches and verifies a block, trying nodes in order of health and latency until deadline.
 * Concurrent calls for the same CID share one fetch. -ETIMEDOUT when the deadline passed,
 * -EHOSTUNREACH when every node failed, -ECANCELED on shutdown.
 */
_wur_ int net_block_get(struct net_pool *p, const struct cid *cid, uint64_t deadline_ns,
                        struct net_block **ret);

void net_pool_get_stats(struct net_pool *p, struct net_stats *ret);

/* Monotonic clock in ns (the one deadlines are measured on). */
uint64_t net_now_ns(void);
