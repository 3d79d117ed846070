/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmfs configuration: one JSON file (jansson) plus "-o key=value" overrides, validated
 * with messages that name the key and where it came from. Nothing is guessed: an unknown
 * key, a wrong type or an out-of-range value is an error, never a silent default.
 * Keys follow the seed settings (design.md §5) plus the daemon's own (nodes, paths).
 */
#pragma once

#include "prsmfs/base.h"

#define CONFIG_MAX_NODES 32
/* The longest node URL accepted (net's NET_MAX_URL: node URLs are never truncated). */
#define CONFIG_MAX_URL 512

enum config_profile {
        CONFIG_PROFILE_DEFAULT, /* CIDv1, raw leaves, 1 MiB chunks, 1024 links */
        CONFIG_PROFILE_LEGACY,  /* CIDv0, dag-pb leaves, 256 KiB chunks, 174 links */
        _CONFIG_PROFILE_MAX,
};

struct config_node {
        char *url;       /* owned; "http://127.0.0.1:5001" */
        char *auth_file; /* owned, may be NULL: file holding "bearer:TOKEN" or "basic:u:p" */
};

struct config {
        /* seed settings */
        uint64_t timeout_ms;
        uint64_t max_chunk_size;
        unsigned retry_max_attempts;
        uint64_t retry_base_delay_ms;
        uint64_t retry_max_delay_ms;
        unsigned connection_pool_size;
        bool content_cache_enabled;
        uint64_t max_cache_size;
        uint64_t cache_ttl_ms;
        bool provenance_tracking;
        bool access_rewards;
        uint64_t max_model_size_mb; /* 0 = no limit */
        bool integrity_verification;
        bool automatic_pinning;
        unsigned parallel_uploads;
        unsigned parallel_downloads;
        /* nodes */
        struct config_node rpc_nodes[CONFIG_MAX_NODES];
        size_t n_rpc_nodes;
        struct config_node gateway_nodes[CONFIG_MAX_NODES];
        size_t n_gateway_nodes;
        struct config_node pinning_services[CONFIG_MAX_NODES];
        size_t n_pinning_services;
        unsigned replicas;
        /* daemon */
        enum config_profile profile;
        char *state_dir; /* owned: index database lives here */
        char *cache_dir; /* owned: block cache and staging files */
        char *ca_bundle; /* owned, may be NULL: CA file for https nodes */
        bool sync_upload;
        uint64_t fsync_timeout_ms;   /* how long fsync (or a sync_upload close) waits for the pin */
        bool upload_while_writing;   /* put runs of a file still being written */
        bool cache_large_writes;     /* keep uploaded full leaves in the block cache */
        bool publish_preserve_mode;  /* prsmctl publish stores modes unless told not to */
        bool publish_preserve_mtime; /* and mtimes */
        uint64_t stall_timeout_ms;   /* no byte once an answer started: try another node */
        uint64_t first_byte_timeout_ms; /* no answer started: try another node */
        int log_level;                  /* enum log_level */
        char *control_group;            /* owned, may be NULL: control socket 0660 for this group */
        char *metrics_listen;           /* owned, NULL: no metrics endpoint; "127.0.0.1:9464" */
        /* model loading: whole-file prefetch at open of files matching these globs */
        char *prefetch_on_open;             /* owned: comma-separated globs, or "off" */
        uint64_t prefetch_on_open_min_size; /* smaller files never */
        /* PRSM (docs/prsm.md) */
        char *identity_key;           /* owned, may be NULL: state_dir/identity.key */
        char *creator_id;             /* owned, may be NULL: derived from the public key */
        uint64_t royalty_rate_milli;  /* FTNS per access, in thousandths (1..100) */
        char *allowed_mime_types;     /* owned, NULL: off; comma-separated MIME types */
        unsigned requests_per_minute; /* to each pinning service; 0: no limit */
        unsigned burst_size;          /* ... of which this many may go at once */
        /* IPFS Cluster REST API (docs/scale-out.md) */
        char *cluster_api;        /* owned, may be NULL: "http://host:9094" */
        char *cluster_auth_file;  /* owned, may be NULL: "basic:u:p" or "bearer:T", mode 0600 */
        unsigned replication_min; /* 0: the cluster's default */
        unsigned replication_max; /* 0: the cluster's default */
        /* a read-only mount of a published tree that moves with its IPNS name (docs/scale-out.md)
         */
        char *follow;                /* owned, NULL: none; "/ipns/NAME", "/ipfs/CID" or a CID */
        uint64_t follow_interval_ms; /* between two resolves of follow's name */
};

#define CONFIG_FOLLOW_INTERVAL_MIN_MS 1000
#define CONFIG_FOLLOW_NAME_MAX        255 /* bytes of an IPNS name after /ipns/ */

/* Model files loaders read whole: the formats whose loaders mmap or read every tensor. */
#define CONFIG_PREFETCH_ON_OPEN_DEFAULT "*.safetensors,*.gguf,*.bin,*.pt,*.pth,*.ckpt"

/* Fills c with the built-in defaults (local node at 127.0.0.1:5001, gateway :8080). */
_wur_ int config_init_defaults(struct config *c);
/* Frees what c owns; c may be half-built. */
void config_done(struct config *c);

/*
 * Loads a JSON config file over c. On failure returns -errno and writes a one-line reason
 * naming the file and the key into err (err_size bytes, NUL-terminated).
 */
_wur_ int config_load_file(struct config *c, const char *path, char *err, size_t err_size);
/* The same from len bytes of JSON text, named name in messages (the fuzz target's way in). */
_wur_ int config_load_json(struct config *c, const char *text, size_t len, const char *name,
                           char *err, size_t err_size);
/* Applies one "key=value" override (from -o). Same error reporting, naming the option. */
_wur_ int config_set_option(struct config *c, const char *key, const char *value, char *err,
                            size_t err_size);
/* True when key names a config setting (so that -o parsing can tell ours from libfuse's). */
bool config_is_key(const char *key);
/* Cross-field checks (retry_base_delay <= retry_max_delay, at least one node, ...). */
_wur_ int config_validate(const struct config *c, char *err, size_t err_size);
/* The names (static strings) of the keys whose values differ between a and b, at most max of
 * them into ret; returns how many (a reload tells what changed). */
size_t config_changed_keys(const struct config *a, const struct config *b, const char **ret,
                           size_t max);
/* Prints the keys, their types and defaults (for --help). */
void config_print_help(void *file);
