/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a reload (SIGHUP, prsmctl reload) may change in a running mount, and how. The live
 * keys: log_level, rpc_nodes and gateway_nodes (the node pool's list: see net_pool_set_nodes),
 * timeout, stall_timeout, first_byte_timeout and fsync_timeout. Every other key that changed
 * is named ("needs a remount") and left as it was.
 */
#pragma once

#include <jansson.h>

#include "prsmfs/config.h"
#include "prsmfs/net.h"

struct upload;

/* The pool's node list from a config: RPC nodes first, then gateways; the count. Borrows cfg's
 * strings (valid while cfg is). */
size_t daemon_net_nodes(const struct config *cfg, struct net_node_config nodes[NET_MAX_NODES]);

struct reload_target {
        struct config *cfg;    /* the running config: live keys are updated in it */
        struct net_pool *net;  /* borrowed */
        struct upload *upload; /* borrowed, may be NULL */
};

/*
 * Applies next (a config read and validated as at the start) to the running mount: the live
 * keys that changed are applied and appended to applied, the others to remount (and logged).
 * The node list is the only step that can fail (a bad URL, an auth file): then nothing is
 * applied, -errno, and a one-line reason goes to err. Takes next's node lists (it is still
 * freed by config_done). One caller at a time.
 */
_wur_ int daemon_reload_apply(const struct reload_target *t, struct config *next, json_t *applied,
                              json_t *remount, char *err, size_t err_size);
