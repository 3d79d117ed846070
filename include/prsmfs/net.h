/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The node pool: verified block fetches from several IPFS nodes (Kubo RPC) and trustless
 * gateways, with health states, backoff, failover and in-flight de-duplication.
 *
 * Nothing leaves this module unverified: a block handed upward hashed to its CID. A node that
 * errs or lies is demoted and the request moves to another node; down and disabled nodes are
 * probed back with exponential backoff and jitter.
 *
 * Slow is not dead. A node that stalls (no byte for stall_timeout once its answer started, or
 * no answer started within first_byte_timeout) is left for another usable node when there is
 * one; when there is none, the request keeps waiting for it until the request's own deadline,
 * and the node is not demoted for that. A request that runs out of its deadline is no fault of
 * the node either.
 *
 * Thread-safety: every function may be called from any thread. Blocking calls take an
 * absolute deadline (CLOCK_MONOTONIC ns) and never wait past it.
 */
#pragma once

#include "prsmfs/base.h"
#include "prsmfs/cid.h"

#define NET_MAX_NODES 32
/* The longest node URL (without the paths appended to it); config.c rejects longer ones. */
#define NET_MAX_URL 512

enum net_node_kind {
        NET_NODE_RPC,     /* Kubo RPC: read, write, pin */
        NET_NODE_GATEWAY, /* trustless gateway: read only */
        _NET_NODE_KIND_MAX,
};

enum net_node_state {
        NET_STATE_UP,
        NET_STATE_SUSPECT,  /* one failure: used only when no node is up */
        NET_STATE_DOWN,     /* not used until a probe succeeds */
        NET_STATE_DISABLED, /* answered as no trustless gateway does (wrong Content-Type): not
                               used until a probe is answered correctly (probed like down) */
        _NET_STATE_MAX,
};

struct net_node_config {
        enum net_node_kind kind;
        const char *url;       /* borrowed for the call; "http://127.0.0.1:5001" */
        const char *auth_file; /* may be NULL; "bearer:TOKEN" or "basic:user:pass" */
};

/* An IPFS Pinning Service API endpoint (https://ipfs.github.io/pinning-services-api-spec/). */
struct net_pinning_service_config {
        const char *url;       /* borrowed for the call; base URL, "/pins" is appended */
        const char *auth_file; /* may be NULL; "bearer:TOKEN" (the spec's auth) */
};

struct net_config {
        const struct net_node_config *nodes;
        size_t n_nodes;
        const struct net_pinning_service_config *pinning_services; /* may be NULL */
        size_t n_pinning_services;
        uint64_t timeout_ms;            /* whole request, all attempts */
        uint64_t stall_timeout_ms;      /* no byte for this long once an answer started: stalled */
        uint64_t first_byte_timeout_ms; /* no answer started after this long: stalled; 0 = 5 s */
        uint64_t retry_base_delay_ms;
        uint64_t retry_max_delay_ms;
        unsigned retry_max_attempts;   /* attempts per node within one request */
        unsigned connection_pool_size; /* all nodes together; 0 = 16 */
        unsigned connections_per_node; /* 0 = max(2, connection_pool_size / 2) */
        unsigned parallel_uploads;     /* block/put requests in flight per put session; 0 = 5 */
        uint64_t has_timeout_ms;       /* block/stat of a block a node may not have; 0 = 250 */
        bool is_hedging_disabled;      /* hedging: see net_block_get */
        const char *ca_bundle;         /* may be NULL: the system's CAs; TLS is always verified */
        bool is_checking_nodes;        /* probe every node once at start (in the background) and
                                          log one warning line per node that cannot serve */
        unsigned pin_requests_per_minute; /* per pinning service, every request; 0: no limit */
        unsigned pin_burst_size;          /* requests that may go at once (0 = 1) */
        /* IPFS Cluster REST API: every pin also goes there (POST /pins/{cid}), unpins too */
        const char *cluster_api;       /* may be NULL: none; "http://host:9094" */
        const char *cluster_auth_file; /* may be NULL; "basic:user:pass" or "bearer:TOKEN" */
        unsigned replication_min, replication_max; /* 0: the cluster's default */
};

/* A verified block; refcounted, immutable. */
struct net_block {
        uint8_t *data;
        size_t len;
        struct cid cid;
        int refs;    /* atomic */
        bool stored; /* atomic: see net_block_claim */
};

struct net_block *net_block_ref(struct net_block *b);
void net_block_unref(struct net_block *b);
/* True for exactly one caller per block object: several readers that waited on one fetch get
 * the same block, and only the one this returns true for writes it to the cache. */
bool net_block_claim(struct net_block *b);

struct net_node_stats {
        char url[NET_MAX_URL + 1];
        enum net_node_kind kind;
        enum net_node_state state;
        double latency_ms; /* EWMA of time to a whole block */
        uint64_t requests, errors, timeouts, bad_blocks, throttled, bytes;
};

struct net_stats {
        uint64_t fetches, dedup_hits, failures;
        uint64_t hedges, hedge_wins;         /* second requests sent; of those, answered first */
        uint64_t puts, put_bytes, put_skips; /* blocks sent, their bytes, blocks already there */
        uint64_t pins, pin_failures;         /* confirmed pins (node or service), failed ones */
        uint64_t unpins, unpin_failures;     /* net_pool_unpin calls that held, that did not */
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
 * Concurrent calls for the same CID share one fetch. Hedging (unless is_hedging_disabled):
 * when the chosen node has not answered after its p95 latency (of its last 32 blocks), the
 * request also goes to the next best up node; the first verified answer wins and the other
 * transfer is cancelled. -ETIMEDOUT when the deadline passed,
 * -EHOSTUNREACH when every node failed, -ECANCELED on shutdown.
 */
_wur_ int net_block_get(struct net_pool *p, const struct cid *cid, uint64_t deadline_ns,
                        struct net_block **ret);

/*
 * Withdrawal: while flag (an atomic int, may be NULL) is set for this thread, its
 * net_block_get calls end within 100 ms of the flag becoming non-zero, with -ECANCELED (a
 * FUSE INTERRUPT: the caller is gone). A fetch other callers share goes on for them. The
 * caller clears it (NULL) before the flag's memory goes.
 */
void net_set_abort(const int *flag);

void net_pool_get_stats(struct net_pool *p, struct net_stats *ret);

/*
 * Live reload: makes nodes (n >= 1, RPC and gateways together) the pool's node list. Nodes
 * already in the pool (same kind, URL and auth) keep their health; new ones start down and are
 * used once they answer a probe (within ~0.1 s); removed ones are never chosen again, while a
 * fetch, put session or pin that uses one finishes with it (see src/net/nodes.c). Every URL
 * and auth file is checked first: on any error nothing changes. -EINVAL (bad URL), -EPERM or
 * -ENOENT (auth file), -E2BIG (no free slot: NET_MAX_NODES, removed nodes still in use count),
 * -ENOMEM. *ret_added and *ret_removed count the changes (on success).
 */
_wur_ int net_pool_set_nodes(struct net_pool *p, const struct net_node_config *nodes, size_t n,
                             unsigned *ret_added, unsigned *ret_removed);
/* Live reload: the request timeout (probes), stall and first-byte timeouts of later attempts
 * (0 first_byte: 5 s). */
void net_pool_set_timeouts(struct net_pool *p, uint64_t timeout_ms, uint64_t stall_timeout_ms,
                           uint64_t first_byte_timeout_ms);

/*
 * ---- uploads ----
 *
 * A put session binds to one write node (an RPC node chosen like reads: best up node), so
 * that every block of one DAG lands on the same node and the root can be pinned there.
 * Sessions are thread-safe: several upload workers call net_put_block on one session at once
 * (at most parallel_uploads requests run at a time; the others wait their turn).
 *
 * Contract with the uploader when the write node fails (refused, reset, 5xx, stall, an
 * attempt past its deadline, a wrong CID in its answer): net_put_block/net_put_pin return
 * -ENOTCONN and the session is dead (every later call returns -ENOTCONN at once). The node
 * is demoted in the pool, so the caller frees the session, calls net_put_begin(resume=true),
 * which binds another node, and sends the whole DAG again: a resumed session asks the node
 * (block/stat) before each block and transfers only the blocks the node is missing.
 */
struct net_put;

/* Binds a session to the best usable RPC node. resume: check before each put whether the
 * node already has the block. -EHOSTUNREACH when no RPC node is usable, -ENOMEM. The session
 * borrows the pool: free it before net_pool_free. */
_wur_ int net_put_begin(struct net_pool *p, bool resume, struct net_put **ret);

/*
 * Uploads one block: verifies that data hashes to cid before anything is sent (-EILSEQ
 * otherwise), skips it if the session resumes and the node has it, else block/put and checks
 * the CID the node answers. 1 when the node already had the block, 0 when sent. -ENOTCONN
 * (see above), -ETIMEDOUT when the deadline passed before a request could start,
 * -EOPNOTSUPP for a codec or hash block/put cannot make, -ECANCELED on shutdown. Borrows
 * cid and data for the call; identity CIDs need no upload (1).
 */
_wur_ int net_put_block(struct net_put *put, const struct cid *cid, const void *data, size_t len,
                        uint64_t deadline_ns);

/*
 * Pins root recursively on the bound node, then on other usable RPC nodes until `replicas`
 * nodes confirmed (they fetch the DAG over bitswap), then on every configured pinning
 * service (create, then poll until pinned or failed), then on the IPFS Cluster if one is
 * configured (POST /pins/{cid} with replication-min/max, then GET /pins/{cid} until
 * replication_min peers, at least one, report it pinned). 0 only when `replicas` nodes and every
 * service confirmed; -ENOTCONN when the bound node failed (resume elsewhere), -EHOSTUNREACH
 * when fewer nodes or not every service confirmed, -ETIMEDOUT at the deadline.
 */
_wur_ int net_put_pin(struct net_put *put, const struct cid *root, unsigned replicas,
                      uint64_t deadline_ns);

/*
 * Pins root as net_put_pin does after its bound node, without a session: on the best usable
 * RPC nodes until `replicas` (>= 1) confirmed, then on every pinning service. For a root whose
 * blocks are already on the nodes (a pin an unpin may have removed). Errors as net_put_pin's,
 * without -ENOTCONN.
 */
_wur_ int net_pool_pin(struct net_pool *p, const struct cid *root, unsigned replicas,
                       uint64_t deadline_ns);

/*
 * Removes the recursive pin of root from every RPC node (pin/rm; a node that holds no such
 * pin, or pins it only indirectly, counts as done; a down node is not asked and counts as a
 * failure until a probe brings it back) and, on every pinning service, each pin
 * net_put_pin made of it (named "prsmfs <root>"). 0 only when every node and service said so;
 * -EHOSTUNREACH when one could not be asked or refused, -ETIMEDOUT at the deadline,
 * -ECANCELED on shutdown. Idempotent: call it again after any failure.
 */
_wur_ int net_pool_unpin(struct net_pool *p, const struct cid *root, uint64_t deadline_ns);

/*
 * Runs: consecutive raw leaves (CIDv1 raw, sha2-256, all leaf_len bytes) that go to the node
 * as one `add` of their concatenated bytes (chunker=size-<leaf_len>, raw leaves, CIDv1,
 * pin=false) instead of one request per leaf. Only once the session's node refused a leaf
 * that big on block/put (413: js-ipfs caps RPC bodies at 1 MiB, and its per-request cost,
 * ~80 ms, dominates leaf-by-leaf uploads); a node that takes block/put (Kubo) keeps getting
 * block/put, so its path is unchanged. The node's answer is checked against the File node
 * over our own leaf CIDs (unixfs_file_root_of_leaves): at most NET_RUN_MAX_LEAVES leaves,
 * the links per node of js-ipfs's and Kubo's add. A run is one multipart body that holds the
 * leaves once (no copy when sent); one owner, not thread-safe.
 */
#define NET_RUN_MAX_LEAVES 174
struct net_run;
/* -EINVAL for a leaf size over CID_MAX_BLOCK or max_leaves not in 1..NET_RUN_MAX_LEAVES. */
_wur_ int net_run_new(size_t leaf_len, size_t max_leaves, struct net_run **ret);
void net_run_free(struct net_run *run);
/* Copies a leaf in: -EINVAL when cid is not CIDv1 raw sha2-256 or len != leaf_len, -E2BIG
 * when full. The bytes are checked against cid by net_put_run, before anything is sent. */
_wur_ int net_run_add(struct net_run *run, const struct cid *cid, const void *data, size_t len);
/* Empties a run for reuse (its buffer stays); whether it was made for these sizes. */
void net_run_clear(struct net_run *run);
bool net_run_fits(const struct net_run *run, size_t leaf_len, size_t max_leaves);
size_t net_run_count(const struct net_run *run);
size_t net_run_bytes(const struct net_run *run); /* of the leaves */
/* Leaf i (< count): its bytes, and its CID in *ret_cid; both valid until net_run_free. */
const uint8_t *net_run_leaf(const struct net_run *run, size_t i, const struct cid **ret_cid);
/* Whether leaves of leaf_len bytes go up in runs on this session now (see above); a caller
 * that gathers runs only then keeps Kubo's leaves flowing one by one. */
bool net_put_takes_runs(struct net_put *put, size_t leaf_len);
/*
 * Uploads a run as net_put_block would each leaf, in one request slot: every leaf is checked
 * against its CID first (-EILSEQ, nothing sent); a resumed session asks for each leaf and
 * sends only the missing ones; one add when the node lacks all of them and takes runs, and
 * leaf by leaf (logged) when the node refuses that add or names another root than ours. The
 * number of leaves the node already had (>= 0), or net_put_block's errors. Borrows run.
 */
_wur_ int net_put_run(struct net_put *put, struct net_run *run, uint64_t deadline_ns);

/* Whether the bound node holds the block (block/stat, never fetched from the network):
 * 1, 0, or -ENOTCONN when it did not answer (the session is dead then). */
_wur_ int net_put_has(struct net_put *put, const struct cid *cid, size_t len, uint64_t deadline_ns);

/* The bound node's URL (for logs and tests); valid until net_put_free. */
const char *net_put_node_url(const struct net_put *put);

/* Frees a session; no call on it may be running. NULL-safe. */
void net_put_free(struct net_put *put);

/*
 * ---- IPNS (src/net/ipns.c) ----
 * Keys live on the RPC nodes; nodes are asked in order of health, a node that does not answer
 * is reported and the next one asked. err (err_size bytes, may be 0) gets a sentence naming
 * each node's answer when the call fails ("" on success).
 */
#define NET_IPNS_NAME_MAX 255
struct net_ipns_published {
        char name[NET_IPNS_NAME_MAX + 1]; /* the key's IPNS name (its Id): /ipns/<name> */
        char node[NET_MAX_URL + 1];       /* the node that published */
        bool is_key_created;              /* key/gen made the key (create_key) */
};
/*
 * name/publish of /ipfs/<root> under key (1..255 of A-Z a-z 0-9 - . _ ~) on the first node
 * whose key/list has it; without one, with create_key, key/gen (ed25519) on the healthiest
 * node that answered. -ENOKEY: no node has the key (and !create_key); -EHOSTUNREACH: no node
 * answered; -EREMOTEIO: a node refused (its message in err); -EBADMSG: it confirmed something
 * else; -EINVAL: a bad key name; -ETIMEDOUT, -ECANCELED.
 */
_wur_ int net_ipns_publish(struct net_pool *p, const char *key, const struct cid *root,
                           bool create_key, uint64_t deadline_ns, struct net_ipns_published *ret,
                           char *err, size_t err_size);
/* name/resolve of /ipns/<name> (recursive, nocache) to the root CID it names now: -EREMOTEIO
 * when nodes answered but none with a root (refused, unknown name), -EBADMSG folded into it
 * for a path that is not /ipfs/<cid>; -EHOSTUNREACH when none answered; -EINVAL for a name
 * with characters a URL cannot carry. */
_wur_ int net_ipns_resolve(struct net_pool *p, const char *name, uint64_t deadline_ns,
                           struct cid *ret, char *err, size_t err_size);

/* Monotonic clock in ns (the one deadlines are measured on). */
uint64_t net_now_ns(void);
