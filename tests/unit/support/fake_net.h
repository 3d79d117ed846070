/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unit tests' transport under the node pool (net's private seam, transport.h): a clock,
 * either a fake one (read and written atomically; sleeps move it) or the real monotonic one,
 * a fixed "random" number, and HTTP answered by the test's script. For the script: a wait on
 * the fake clock as the engine waits for a slow answer, and a gate that holds requests until
 * the test opens it. Also the pieces the scripted Kubo RPC nodes of several tests share: JSON
 * answers, multipart bodies, arg= CIDs and the root js-ipfs's add gives.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "prsmfs/buf.h"
#include "prsmfs/cid.h"
#include "prsmfs/unixfs.h"

#include "transport.h"

/* Answers one request (the test's part of net_transport_ops.http). */
typedef int (*fake_net_http_fn)(void *userdata, const struct net_http_request *req,
                                struct buf *body, struct net_http_response *res);

struct fake_net {
        /* pass &ops and the fake_net itself to net_pool_new_with_transport */
        struct net_transport_ops ops;
        fake_net_http_fn http;
        void *userdata;
        uint64_t rnd; /* what ops.random returns */
        /* the clock: set before fake_net_init or after, never reset by it */
        bool is_real_time;     /* net_now_ns(), and sleeps sleep; else now_ns */
        uint64_t now_ns;       /* the fake clock (atomic: use fake_net_now/_advance) */
        uint64_t max_sleep_ns; /* real time: the longest single sleep (0: no limit) */
        unsigned stall_asks;   /* on_stall calls fake_net_wait made (atomic) */
};

/* Fills in n's ops (no probe thread: tests drive probes) and script; leaves the clock. */
void fake_net_init(struct fake_net *n, fake_net_http_fn http, void *userdata, uint64_t rnd);
/* A pool of one RPC node ("http://n:1") answered by n: timeout 10 s, stall 0.5 s, one
 * attempt, no hedging (a store's fetches through a scripted node). */
struct net_pool;
void fake_net_pool_one_node(struct fake_net *n, struct net_pool **ret);
uint64_t fake_net_now(struct fake_net *n);
/* Moves the fake clock on by ns. */
void fake_net_advance(struct fake_net *n, uint64_t ns);
/*
 * Waits on the fake clock for an answer that comes wait_ns after the request (UINT64_MAX:
 * never), as the engine does: each time the stall limit (req's first_byte_ns, else stall_ns)
 * passes it asks req->on_stall whether to give up (counted in stall_asks). 0 when the answer
 * came, -ETIMEDOUT when on_stall gave up or req's deadline passed (the clock then stands at
 * the deadline).
 */
int fake_net_wait(struct fake_net *n, const struct net_http_request *req, uint64_t wait_ns);

/* Holds the requests that pass it while closed (an in-flight de-duplication test's one fetch,
 * in real time). Set is_closed before fake_net_gate_init or after; init leaves it. */
struct fake_net_gate {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool is_closed;
        bool is_reached; /* a request waited at it */
};

void fake_net_gate_init(struct fake_net_gate *g);
void fake_net_gate_destroy(struct fake_net_gate *g);
/* The script's part: returns once the gate is open. */
void fake_net_gate_pass(struct fake_net_gate *g);
/* Waits until a request waits at the gate and pool p counts fetches requests (the rest
 * waiting on that one), then opens the gate. */
void fake_net_gate_open_when(struct fake_net_gate *g, struct net_pool *p, uint64_t fetches);

/* Thread tid's nice value, or -100 when it cannot be read (the thread has ended). */
int fake_net_nice_of(pid_t tid);

/* Appends the string s to body (a JSON answer). */
int fake_net_answer(struct buf *body, const char *s);
/* The file part of a multipart/form-data request body (checked: one part, the boundary its
 * Content-Type names); its length, and *ret where it starts. */
size_t fake_net_form_data(const struct net_http_request *req, const char **ret);
/* The CID the query's arg= names. */
bool fake_net_arg_cid(const char *url, struct cid *ret);
/* The root a node's add gives data with params p (what a test's file should upload as). */
void fake_net_add_root(const struct unixfs_params *p, const void *data, size_t len,
                       struct cid *ret);
/* The root js-ipfs's add gives data: raw CIDv1 leaves of chunk bytes, 174 links a node. */
void fake_net_js_add_root(const void *data, size_t len, size_t chunk, struct cid *ret);
