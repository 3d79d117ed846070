/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The follow thread of a follow mount (-o follow=/ipns/NAME): resolves the name through the
 * RPC nodes every follow_interval and has the fs switch to each new root (src/fs/follow.c).
 * A /ipfs/CID (or bare CID) follow is one switch, tried again each interval until it holds.
 */
#pragma once

#include <pthread.h>

#include <jansson.h>

#include "prsmfs/config.h"
#include "prsmfs/fs.h"
#include "prsmfs/net.h"

struct daemon_follow {
        struct fs *fs;                    /* borrowed */
        struct net_pool *net;             /* borrowed */
        char name[NET_IPNS_NAME_MAX + 1]; /* the IPNS name (after /ipns/), "" for a CID */
        struct cid fixed;                 /* the CID when name is "" */
        uint64_t interval_ns, timeout_ns;
        pthread_t thread;
        bool is_started;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* CLOCK_MONOTONIC: stop */
        bool stop;           /* lock */
        /* lock: what status shows */
        uint64_t last_resolve_sec; /* CLOCK_REALTIME of the last resolve that ended (0: none) */
        bool has_error;
        char error[512]; /* the last resolve's or switch's failure, "" after a success */
        uint64_t resolves, failures;
};

/* Starts following cfg->follow (already validated) after fs_follow_enable and
 * fs_follow_restore; borrows fs and net until daemon_follow_stop. */
_wur_ int daemon_follow_start(struct daemon_follow *f, const struct config *cfg, struct fs *fs,
                              struct net_pool *net);
/* Stops and joins the thread (after net_pool_shutdown: a resolve in flight ends at once).
 * NULL-safe, and a no-op when it never started. */
void daemon_follow_stop(struct daemon_follow *f);
/* status's "follow" object: name, interval, root, switched, last_resolve, last_error,
 * resolves, failures, switches, rejected (new reference, NULL on ENOMEM). */
json_t *daemon_follow_json(struct daemon_follow *f, const struct config *cfg);
