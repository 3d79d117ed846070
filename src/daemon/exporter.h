/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /metrics and /health of a mount: what the fs, store, cache, node pool, uploader and index
 * count, read with their getters at scrape time and written in Prometheus's text format.
 */
#pragma once

#include "prsmfs/base.h"

struct fs;
struct store;
struct cache;
struct net_pool;
struct upload;
struct index;
struct prsm;
struct daemon_follow;

/* All borrowed; each must outlive the exporter. */
struct exporter_sources {
        struct fs *fs;
        struct store *store;
        struct cache *cache;
        struct net_pool *net;
        struct upload *upload;
        struct index *idx;
        const char *index_path;       /* its file's size is prsmfs_index_file_bytes */
        struct prsm *prsm;            /* may be NULL: provenance records and the access ledger */
        struct daemon_follow *follow; /* may be NULL: not a follow mount */
};

struct exporter;

/* Serves on listen ("HOST:PORT"). Errors as metrics_server_start's; logs nothing. */
_wur_ int exporter_start(const char *listen, const struct exporter_sources *src,
                         struct exporter **ret);
void exporter_stop(struct exporter *e);

/* exporter_start for the daemon: NULL without an address; when the address cannot be bound
 * (another mount on this host has the port), one warning naming it, and the mount goes on
 * without an endpoint. */
struct exporter *exporter_start_or_warn(const char *listen, const struct exporter_sources *src);
