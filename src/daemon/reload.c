/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live reload. The fallible step first (the node list: URLs and auth files are checked before
 * the pool changes), then the rest, which cannot fail, so a refused reload changes nothing.
 * Timeouts are stored atomically in the running config, the pool and the uploader, whose
 * threads load them when a request starts: a read already waiting keeps the deadline it
 * began with, the next one has the new one. The running config's node lists are swapped with
 * next's here, under the caller's one-reload-at-a-time lock: nothing else reads them after
 * the start (the pool keeps its own copies).
 */
#define LOG_MODULE "daemon"
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "prsmfs/log.h"
#include "prsmfs/upload.h"

size_t daemon_net_nodes(const struct config *cfg, struct net_node_config nodes[NET_MAX_NODES])
{
        size_t n = 0;

        for (size_t i = 0; i < cfg->n_rpc_nodes && n < NET_MAX_NODES; i++)
                nodes[n++] = (struct net_node_config){ .kind = NET_NODE_RPC,
                                                       .url = cfg->rpc_nodes[i].url,
                                                       .auth_file = cfg->rpc_nodes[i].auth_file };
        for (size_t i = 0; i < cfg->n_gateway_nodes && n < NET_MAX_NODES; i++)
                nodes[n++] = (struct net_node_config){
                        .kind = NET_NODE_GATEWAY,
                        .url = cfg->gateway_nodes[i].url,
                        .auth_file = cfg->gateway_nodes[i].auth_file,
                };
        return n;
}

static const char *const live_keys[] = {
        "log_level",     "rpc_nodes",          "gateway_nodes", "timeout",
        "stall_timeout", "first_byte_timeout", "fsync_timeout",
};

static bool is_live(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(live_keys); i++)
                if (strcmp(key, live_keys[i]) == 0)
                        return true;
        return false;
}

static bool has(const char *const *keys, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i], key) == 0)
                        return true;
        return false;
}

static void swap_nodes(struct config_node *a, size_t *n_a, struct config_node *b, size_t *n_b)
{
        size_t n = *n_a;

        for (size_t i = 0; i < CONFIG_MAX_NODES; i++) {
                struct config_node t = a[i];

                a[i] = b[i];
                b[i] = t;
        }
        *n_a = *n_b;
        *n_b = n;
}

static void store_ms(uint64_t *field, uint64_t v)
{
        __atomic_store_n(field, v, __ATOMIC_RELAXED);
}

int daemon_reload_apply(const struct reload_target *t, struct config *next, json_t *applied,
                        json_t *remount, char *err, size_t err_size)
{
        static const char *const level_names[] = { "error", "warning", "notice", "info", "debug" };
        const char *changed[128];
        struct config *cur = t->cfg;
        size_t n;
        int r;

        n = config_changed_keys(cur, next, changed, ELEMENTSOF(changed));
        if (has(changed, n, "rpc_nodes") || has(changed, n, "gateway_nodes")) {
                struct net_node_config nodes[NET_MAX_NODES];
                size_t n_nodes = daemon_net_nodes(next, nodes);
                unsigned added = 0, removed = 0;

                r = net_pool_set_nodes(t->net, nodes, n_nodes, &added, &removed);
                if (r < 0) {
                        (void)snprintf(err, err_size,
                                       "the new node list cannot be used: %s (a bad URL, an auth "
                                       "file that cannot be read or is readable by others, or "
                                       "more than %d nodes)",
                                       strerror(-r), NET_MAX_NODES);
                        return r;
                }
                log_notice("reload: node list now %zu node(s): %u added (used once they answer "
                           "a probe), %u removed",
                           n_nodes, added, removed);
                swap_nodes(cur->rpc_nodes, &cur->n_rpc_nodes, next->rpc_nodes, &next->n_rpc_nodes);
                swap_nodes(cur->gateway_nodes, &cur->n_gateway_nodes, next->gateway_nodes,
                           &next->n_gateway_nodes);
        }
        if (cur->timeout_ms != next->timeout_ms ||
            cur->stall_timeout_ms != next->stall_timeout_ms ||
            cur->first_byte_timeout_ms != next->first_byte_timeout_ms) {
                store_ms(&cur->timeout_ms, next->timeout_ms);
                store_ms(&cur->stall_timeout_ms, next->stall_timeout_ms);
                store_ms(&cur->first_byte_timeout_ms, next->first_byte_timeout_ms);
                net_pool_set_timeouts(t->net, next->timeout_ms, next->stall_timeout_ms,
                                      next->first_byte_timeout_ms);
                if (t->upload)
                        upload_set_timeout(t->upload, next->timeout_ms);
                log_notice("reload: timeout %.3g s, stall_timeout %.3g s, first_byte_timeout "
                           "%.3g s from now on",
                           next->timeout_ms / 1000.0, next->stall_timeout_ms / 1000.0,
                           next->first_byte_timeout_ms / 1000.0);
        }
        if (cur->fsync_timeout_ms != next->fsync_timeout_ms) {
                store_ms(&cur->fsync_timeout_ms, next->fsync_timeout_ms);
                log_notice("reload: fsync_timeout %.3g s from now on",
                           next->fsync_timeout_ms / 1000.0);
        }
        if ((int)log_get_level() != next->log_level) {
                log_notice("reload: log_level %s from now on",
                           (unsigned)next->log_level < ELEMENTSOF(level_names)
                                   ? level_names[next->log_level]
                                   : "?");
                log_set_level((enum log_level)next->log_level);
                cur->log_level = next->log_level;
                (void)json_array_append_new(applied, json_string("log_level"));
        }
        for (size_t i = 0; i < n; i++) {
                if (strcmp(changed[i], "log_level") == 0)
                        continue; /* above: it may differ from the level set by hand */
                if (is_live(changed[i])) {
                        (void)json_array_append_new(applied, json_string(changed[i]));
                        continue;
                }
                (void)json_array_append_new(remount, json_string(changed[i]));
                log_warning("reload: '%s' changed: needs a remount, left as it was", changed[i]);
        }
        log_notice("reload: config read again (%zu key(s) changed)", n);
        return 0;
}
