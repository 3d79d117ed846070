/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Table-driven configuration. Every key has one entry in `keys` giving its type, range and
 * place in struct config; the JSON loader and the -o parser both go through that table, so
 * a key behaves the same wherever it is set. Errors name the key and the source ("file
 * /etc/prsmfs/config.json: key 'timeout': ...", "option -o timeout: ...").
 *
 * Units: durations are seconds in JSON (a number, fractions allowed) and seconds or "250ms"
 * in -o; sizes are bytes (integer) or strings with K/M/G/T suffixes.
 *
 * Node URLs are checked whole here, once, so that nothing below has to guess: http:// or
 * https://, a host, printable ASCII without spaces, no query or fragment (paths are appended
 * to it), at most CONFIG_MAX_URL bytes. An RPC node's URL that ends in /api/v0 is refused:
 * prsmfs appends /api/v0/... itself, and the doubled path would 404 on every request.
 */
#define LOG_MODULE "config"
#include "prsmfs/config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prsmfs/cid.h"
#include "prsmfs/log.h"
#include "prsmfs/parse.h"

enum key_type {
        KEY_BOOL,
        KEY_UINT,     /* unsigned, stored in `unsigned` */
        KEY_U64,      /* integer stored in uint64_t */
        KEY_SIZE,     /* bytes, uint64_t */
        KEY_DURATION, /* ms, uint64_t */
        KEY_STRING,   /* char *, owned */
        KEY_NODES,    /* struct config_node[CONFIG_MAX_NODES] + count */
        KEY_PROFILE,
        KEY_LOG_LEVEL,
        KEY_LISTEN, /* char *, owned; "" or "off" store NULL (disabled) */
        KEY_MILLI,  /* a decimal with at most 3 fraction digits, stored in thousandths (u64) */
        KEY_MIMES,  /* char *, owned: MIME types, a JSON array or comma-separated; NULL: off */
};

struct key {
        const char *name;
        enum key_type type;
        size_t off;
        size_t count_off; /* KEY_NODES only */
        uint64_t min, max;
        const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define NODES(name, f, help)                                                   \
        {                                                                      \
                name, KEY_NODES, OFF(f), OFF(n_##f), 0, CONFIG_MAX_NODES, help \
        }

static const struct key keys[] = {
        { "timeout", KEY_DURATION, OFF(timeout_ms), 0, 100, 3600 * 1000,
          "seconds a network operation may take before it fails" },
        { "stall_timeout", KEY_DURATION, OFF(stall_timeout_ms), 0, 50, 600 * 1000,
          "seconds without a byte, once a node's answer started, before the request moves to "
          "another node (if there is one)" },
        { "first_byte_timeout", KEY_DURATION, OFF(first_byte_timeout_ms), 0, 50, 3600 * 1000,
          "seconds a node may take to start answering before the request moves to another node "
          "(if there is one)" },
        { "max_chunk_size", KEY_SIZE, OFF(max_chunk_size), 0, 16 * 1024, 4 * 1024 * 1024,
          "chunk size of files written (bytes, 16K..4M)" },
        { "retry_max_attempts", KEY_UINT, OFF(retry_max_attempts), 0, 1, 100,
          "attempts per request across nodes" },
        { "retry_base_delay", KEY_DURATION, OFF(retry_base_delay_ms), 0, 0, 3600 * 1000,
          "first retry/probe backoff (seconds)" },
        { "retry_max_delay", KEY_DURATION, OFF(retry_max_delay_ms), 0, 0, 24 * 3600 * 1000,
          "largest retry/probe backoff (seconds)" },
        { "connection_pool_size", KEY_UINT, OFF(connection_pool_size), 0, 1, 1024,
          "HTTP connections overall (per node: half, at least 2)" },
        { "content_cache_enabled", KEY_BOOL, OFF(content_cache_enabled), 0, 0, 1,
          "keep verified blocks in the on-disk cache" },
        { "max_cache_size", KEY_SIZE, OFF(max_cache_size), 0, 1024 * 1024, UINT64_MAX,
          "on-disk cache cap (bytes or 10G)" },
        { "cache_ttl", KEY_DURATION, OFF(cache_ttl_ms), 0, 0, UINT64_MAX,
          "seconds an unused cached block is kept (0 = until evicted by size)" },
        { "provenance_tracking", KEY_BOOL, OFF(provenance_tracking), 0, 0, 1,
          "record provenance for content operations" },
        { "access_rewards", KEY_BOOL, OFF(access_rewards), 0, 0, 1,
          "record accesses in the FTNS ledger" },
        { "max_model_size_mb", KEY_U64, OFF(max_model_size_mb), 0, 0, UINT64_MAX >> 20,
          "largest file that may be written, MiB (0 = no limit)" },
        { "integrity_verification", KEY_BOOL, OFF(integrity_verification), 0, 0, 1,
          "must be true: every block is verified against its CID (false is refused)" },
        { "automatic_pinning", KEY_BOOL, OFF(automatic_pinning), 0, 0, 1,
          "pin every written file's root" },
        { "parallel_uploads", KEY_UINT, OFF(parallel_uploads), 0, 1, 256,
          "blocks uploaded at once" },
        { "parallel_downloads", KEY_UINT, OFF(parallel_downloads), 0, 1, 256,
          "blocks fetched at once" },
        NODES("rpc_nodes", rpc_nodes, "Kubo RPC nodes: URL strings or {url, auth_file}"),
        NODES("gateway_nodes", gateway_nodes, "trustless gateways (read-only fallbacks)"),
        NODES("pinning_services", pinning_services,
              "IPFS Pinning Service API endpoints {url, auth_file}"),
        { "replicas", KEY_UINT, OFF(replicas), 0, 1, CONFIG_MAX_NODES,
          "nodes each written root is pinned on" },
        { "profile", KEY_PROFILE, OFF(profile), 0, 0, 0,
          "import profile: default (CIDv1, 1 MiB) or legacy (CIDv0, 256 KiB)" },
        { "state_dir", KEY_STRING, OFF(state_dir), 0, 0, 0, "directory of the index" },
        { "cache_dir", KEY_STRING, OFF(cache_dir), 0, 0, 0,
          "directory of the block cache and staging files" },
        { "ca_bundle", KEY_STRING, OFF(ca_bundle), 0, 0, 0, "CA certificates for https nodes" },
        { "sync_upload", KEY_BOOL, OFF(sync_upload), 0, 0, 1,
          "close() waits until the file is uploaded and pinned" },
        { "fsync_timeout", KEY_DURATION, OFF(fsync_timeout_ms), 0, 1000, 24 * 3600 * 1000,
          "seconds fsync (and close with sync_upload) waits for the upload and pin before EIO "
          "(the data stays on local disk, the upload queued)" },
        { "upload_while_writing", KEY_BOOL, OFF(upload_while_writing), 0, 0, 1,
          "start putting a file's leaves on a node while it is still being written" },
        { "cache_large_writes", KEY_BOOL, OFF(cache_large_writes), 0, 0, 1,
          "keep the full leaves of uploaded files in the block cache too" },
        { "publish_preserve_mode", KEY_BOOL, OFF(publish_preserve_mode), 0, 0, 1,
          "prsmctl publish stores modes (UnixFS 1.5; changes CIDs) unless --no-preserve-mode" },
        { "publish_preserve_mtime", KEY_BOOL, OFF(publish_preserve_mtime), 0, 0, 1,
          "prsmctl publish stores mtimes (UnixFS 1.5; changes CIDs) unless --no-preserve-mtime" },
        { "log_level", KEY_LOG_LEVEL, OFF(log_level), 0, 0, 0, "error|warning|notice|info|debug" },
        { "control_group", KEY_STRING, OFF(control_group), 0, 0, 0,
          "group allowed to use prsmctl (control socket 0660); unset: the owner only (0600)" },
        { "metrics_listen", KEY_LISTEN, OFF(metrics_listen), 0, 0, 0,
          "HOST:PORT of /metrics and /health (\"\" or off: none; a non-loopback address "
          "exposes them to the network)" },
        { "prefetch_on_open", KEY_STRING, OFF(prefetch_on_open), 0, 0, 0,
          "opening a file whose name matches one of these comma-separated globs fetches all of "
          "it into the cache in the background (\"off\": never; \"*\": every file)" },
        { "prefetch_on_open_min_size", KEY_SIZE, OFF(prefetch_on_open_min_size), 0, 0, UINT64_MAX,
          "files smaller than this are never prefetched on open (bytes or 64M)" },
        { "identity_key", KEY_STRING, OFF(identity_key), 0, 0, 0,
          "Ed25519 private key (PEM, mode 0600) signing provenance records (default: "
          "state_dir/identity.key, made at first start)" },
        { "creator_id", KEY_STRING, OFF(creator_id), 0, 0, 0,
          "this instance's creator id in records and the ledger (default: ed25519:<public key "
          "in hex>)" },
        { "royalty_rate", KEY_MILLI, OFF(royalty_rate_milli), 0, 1, 100,
          "FTNS owed per access to another creator's content (0.001..0.1)" },
        { "allowed_mime_types", KEY_MIMES, OFF(allowed_mime_types), 0, 0, 0,
          "written files whose content (sniffed) is not one of these MIME types (\"type/sub\", "
          "\"type/*\") are not uploaded: close() fails with EPERM (unset: any)" },
        { "requests_per_minute", KEY_UINT, OFF(requests_per_minute), 0, 0, 1000000,
          "requests to each pinning service per minute (0 = no limit)" },
        { "burst_size", KEY_UINT, OFF(burst_size), 0, 1, 1000000,
          "requests to a pinning service that may go at once under requests_per_minute" },
        /* IPFS Cluster (docs/scale-out.md) */
        { "cluster_api", KEY_STRING, OFF(cluster_api), 0, 0, 0,
          "IPFS Cluster REST API URL (http://host:9094): every pinned root is also pinned "
          "there with replication_min/max, and unpinned there" },
        { "cluster_auth_file", KEY_STRING, OFF(cluster_auth_file), 0, 0, 0,
          "file (mode 0600) holding the cluster API's basic:USER:PASSWORD or bearer:TOKEN" },
        { "replication_min", KEY_UINT, OFF(replication_min), 0, 0, 1024,
          "cluster peers that must pin a root before it counts as pinned (0: the cluster's "
          "default)" },
        { "replication_max", KEY_UINT, OFF(replication_max), 0, 0, 1024,
          "cluster peers a root is pinned on at most (0: the cluster's default)" },
        /* IPNS follow (docs/scale-out.md) */
        { "follow", KEY_STRING, OFF(follow), 0, 0, 0,
          "a read-only mount of the tree /ipns/NAME (resolved every follow_interval), /ipfs/CID "
          "or a CID names; unset: an ordinary mount" },
        { "follow_interval", KEY_DURATION, OFF(follow_interval_ms), 0,
          CONFIG_FOLLOW_INTERVAL_MIN_MS, 24 * 3600 * 1000,
          "seconds between two resolves of follow's IPNS name (1..86400)" },
};

static const char *const profile_names[_CONFIG_PROFILE_MAX] = {
        [CONFIG_PROFILE_DEFAULT] = "default",
        [CONFIG_PROFILE_LEGACY] = "legacy",
};

static const struct key *key_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].name, name) == 0)
                        return &keys[i];
        return NULL;
}

bool config_is_key(const char *name)
{
        return key_find(name) != NULL;
}

static void *field(struct config *c, size_t off)
{
        return (char *)c + off;
}

static void nodes_clear(struct config_node *nodes, size_t *n)
{
        for (size_t i = 0; i < *n; i++) {
                free(nodes[i].url);
                free(nodes[i].auth_file);
                nodes[i] = (struct config_node){ 0 };
        }
        *n = 0;
}

static int set_string(char **dst, const char *v)
{
        char *s = strdup(v);

        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

static int node_add(struct config_node *nodes, size_t *n, const char *url, const char *auth)
{
        struct config_node node = { 0 };

        if (*n >= CONFIG_MAX_NODES)
                return -E2BIG;
        node.url = strdup(url);
        node.auth_file = auth ? strdup(auth) : NULL;
        if (!node.url || (auth && !node.auth_file)) {
                free(node.url);
                free(node.auth_file);
                return -ENOMEM;
        }
        nodes[(*n)++] = node;
        return 0;
}

/* NULL when url is a usable node URL, else why not. rpc: an RPC node's (see the top). */
static const char *url_problem(const char *url, bool rpc)
{
        size_t len = strlen(url), host, end;

        if (strncmp(url, "http://", 7) == 0)
                host = 7;
        else if (strncmp(url, "https://", 8) == 0)
                host = 8;
        else
                return "is not an http:// or https:// URL";
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)url[i];

                if (ch == ' ')
                        return "contains a space";
                if (ch == '\r' || ch == '\n')
                        return "contains a line break";
                if (ch < 0x20 || ch == 0x7f)
                        return "contains a control character";
                if (ch > 0x7e)
                        return "contains a non-ASCII byte (use the punycode or %-encoded form)";
                if (ch == '?' || ch == '#')
                        return "has a query or fragment (paths are appended to the URL)";
        }
        if (url[host] == '\0' || url[host] == '/' || url[host] == ':' || url[host] == '@')
                return "has no host";
        end = len;
        while (end > host && url[end - 1] == '/')
                end--;
        if (rpc && end - host >= 7 && strncmp(url + end - 7, "/api/v0", 7) == 0)
                return "ends in /api/v0, which prsmfs appends itself: give the node's base URL "
                       "(http://host:5001)";
        return NULL;
}

/* url for an error message: at most its first 80 bytes, a byte that is not printable ASCII
 * as \xNN (a line break must not split the message), "..." when cut. */
static void quote_url(const char *url, char *out, size_t size)
{
        size_t o = 0, i;

        for (i = 0; url[i] && i < 80 && o + 5 < size; i++) {
                unsigned char ch = (unsigned char)url[i];

                if (ch < 0x20 || ch > 0x7e)
                        o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
                else
                        out[o++] = (char)ch;
        }
        out[o] = '\0';
        if (url[i] && o + 4 <= size)
                memcpy(out + o, "...", 4);
}

static int check_url(const char *url, bool rpc, const char *where, const char *key, size_t i,
                     bool indexed, char *err, size_t err_size)
{
        size_t len = strlen(url);
        const char *why = len > CONFIG_MAX_URL ? "is too long" : url_problem(url, rpc);
        char what[64], quoted[4 * 80 + 4];

        if (!why)
                return 0;
        if (len > CONFIG_MAX_URL) {
                (void)snprintf(what, sizeof(what), "is %zu bytes long, more than %d", len,
                               CONFIG_MAX_URL);
                why = what;
        }
        quote_url(url, quoted, sizeof(quoted));
        if (indexed)
                return parse_fail(err, err_size, "%s '%s[%zu]': '%s' %s", where, key, i, quoted,
                                  why);
        return parse_fail(err, err_size, "%s '%s': '%s' %s", where, key, quoted, why);
}

/* Stores an already-range-checked number into the key's field. */
static void store_number(struct config *c, const struct key *k, uint64_t v)
{
        if (k->type == KEY_UINT)
                *(unsigned *)field(c, k->off) = (unsigned)v;
        else
                *(uint64_t *)field(c, k->off) = v;
}

static int check_range(const struct key *k, uint64_t v, const char *where, char *err,
                       size_t err_size)
{
        if (v < k->min || v > k->max) {
                if (k->type == KEY_DURATION)
                        return parse_fail(err, err_size,
                                          "%s '%s': %.3f s is out of range [%.3f, %.3f]", where,
                                          k->name, v / 1000.0, k->min / 1000.0, k->max / 1000.0);
                return parse_fail(err, err_size, "%s '%s': %llu is out of range [%llu, %llu]",
                                  where, k->name, (unsigned long long)v, (unsigned long long)k->min,
                                  (unsigned long long)k->max);
        }
        return 0;
}

/* Sets a scalar key from its string form (the -o path, and JSON strings for sizes). */
/* allowed_mime_types: "type/subtype" or "type/" followed by '*' (or "*" alone), comma-separated;
 * "" or "off": unset. Each type is lowercase letters, digits and !#$&^_.+- (RFC 6838's restricted
 * names). */
static int set_mimes(struct config *c, const struct key *k, const char *v, const char *where,
                     char *err, size_t err_size)
{
        char **dst = field(c, k->off);

        if (!*v || strcmp(v, "off") == 0) {
                free(*dst);
                *dst = NULL;
                return 0;
        }
        for (const char *s = v; *s;) {
                size_t len = strcspn(s, ","), slash = strcspn(s, "/");
                bool ok = len > 0 && len <= 127;

                for (size_t i = 0; ok && i < len; i++)
                        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                             strchr("!#$&^_.+-/*", s[i]);
                ok = ok && ((len == 1 && s[0] == '*') ||
                            (slash > 0 && slash < len - 1 &&
                             !memchr(s + slash + 1, '/', len - slash - 1) &&
                             (!memchr(s, '*', len) || (s[len - 1] == '*' && s[len - 2] == '/' &&
                                                       memchr(s, '*', len) == s + len - 1))));
                if (!ok)
                        return parse_fail(err, err_size,
                                          "%s '%s': '%.*s' is not a MIME type (type/subtype, "
                                          "type/* or *, lowercase)",
                                          where, k->name, (int)MIN(len, 80), s);
                s += len + (s[len] == ',');
        }
        return set_string(dst, v);
}

/* The same from a JSON array of strings. */
static int set_mimes_json(struct config *c, const struct key *k, json_t *v, const char *where,
                          char *err, size_t err_size)
{
        size_t i, total = 1;
        json_t *e;
        char *joined;
        int r;

        json_array_foreach(v, i, e)
        {
                if (!json_is_string(e) || strchr(json_string_value(e), ','))
                        return parse_fail(
                                err, err_size,
                                "%s '%s': expected MIME type strings, item %zu is not one", where,
                                k->name, i);
                total += json_string_length(e) + 1;
        }
        joined = calloc(1, total);
        if (!joined)
                return -ENOMEM;
        total = 0;
        json_array_foreach(v, i, e)
        {
                size_t len = json_string_length(e);

                if (i)
                        joined[total++] = ',';
                memcpy(joined + total, json_string_value(e), len);
                total += len;
        }
        r = set_mimes(c, k, joined, where, err, err_size);
        free(joined);
        return r;
}

static int set_from_string(struct config *c, const struct key *k, const char *v, const char *where,
                           char *err, size_t err_size)
{
        uint64_t n = 0;
        bool b;
        int r;

        switch (k->type) {
        case KEY_BOOL:
                if (parse_bool(v, &b) < 0)
                        return parse_fail(err, err_size,
                                          "%s '%s': expected true or false, got '%s'", where,
                                          k->name, v);
                *(bool *)field(c, k->off) = b;
                return 0;
        case KEY_UINT:
        case KEY_U64:
                r = parse_u64(v, &n);
                break;
        case KEY_SIZE:
                r = parse_size(v, &n);
                break;
        case KEY_DURATION:
                r = parse_duration_ms(v, &n);
                break;
        case KEY_STRING:
                if (!*v)
                        return parse_fail(err, err_size, "%s '%s': must not be empty", where,
                                          k->name);
                return set_string(field(c, k->off), v);
        case KEY_PROFILE:
                for (size_t i = 0; i < _CONFIG_PROFILE_MAX; i++)
                        if (strcmp(v, profile_names[i]) == 0) {
                                c->profile = (enum config_profile)i;
                                return 0;
                        }
                return parse_fail(err, err_size, "%s '%s': expected default or legacy, got '%s'",
                                  where, k->name, v);
        case KEY_LOG_LEVEL: {
                enum log_level l;

                if (log_level_from_string(v, &l) < 0)
                        return parse_fail(
                                err, err_size,
                                "%s '%s': expected error, warning, notice, info or debug, "
                                "got '%s'",
                                where, k->name, v);
                c->log_level = (int)l;
                return 0;
        }
        case KEY_LISTEN: {
                char **dst = field(c, k->off);

                if (!*v || strcmp(v, "off") == 0) {
                        free(*dst);
                        *dst = NULL;
                        return 0;
                }
                if (strlen(v) > 80 || !strchr(v, ':') || strpbrk(v, " \t\r\n/"))
                        return parse_fail(err, err_size,
                                          "%s '%s': expected HOST:PORT ([IPv6]:PORT), \"\" or off, "
                                          "got '%.80s'",
                                          where, k->name, v);
                return set_string(dst, v);
        }
        case KEY_MIMES:
                return set_mimes(c, k, v, where, err, err_size);
        case KEY_MILLI: {
                const char *dot = strchr(v, '.');

                if (strspn(v, "0123456789.") != strlen(v) || (dot && strlen(dot + 1) > 3) ||
                    (dot && strchr(dot + 1, '.')) || parse_duration_ms(v, &n) < 0)
                        return parse_fail(err, err_size,
                                          "%s '%s': '%s' is not a decimal in thousandths in range "
                                          "[%.3f, %.3f]",
                                          where, k->name, v, k->min / 1000.0, k->max / 1000.0);
                if (n < k->min || n > k->max)
                        return parse_fail(err, err_size, "%s '%s': %s is out of range [%.3f, %.3f]",
                                          where, k->name, v, k->min / 1000.0, k->max / 1000.0);
                *(uint64_t *)field(c, k->off) = n;
                return 0;
        }
        case KEY_NODES:
        default:
                return parse_fail(err, err_size, "%s '%s': internal: not a scalar", where, k->name);
        }
        if (r < 0)
                return parse_fail(err, err_size, "%s '%s': '%s' is not a valid %s", where, k->name,
                                  v,
                                  k->type == KEY_SIZE       ? "size"
                                  : k->type == KEY_DURATION ? "duration in seconds"
                                                            : "non-negative integer");
        r = check_range(k, n, where, err, err_size);
        if (r < 0)
                return r;
        store_number(c, k, n);
        return 0;
}

static int set_nodes_json(struct config *c, const struct key *k, json_t *v, const char *where,
                          char *err, size_t err_size)
{
        struct config_node *nodes = field(c, k->off);
        size_t *n = field(c, k->count_off);
        size_t i;
        json_t *e;
        int r;

        if (!json_is_array(v))
                return parse_fail(err, err_size, "%s '%s': expected an array of URLs or objects",
                                  where, k->name);
        if (json_array_size(v) > CONFIG_MAX_NODES)
                return parse_fail(err, err_size, "%s '%s': more than %d nodes", where, k->name,
                                  CONFIG_MAX_NODES);
        nodes_clear(nodes, n);
        json_array_foreach(v, i, e)
        {
                const char *url = NULL, *auth = NULL, *name;
                json_t *m;

                if (json_is_string(e))
                        url = json_string_value(e);
                else if (json_is_object(e)) {
                        json_object_foreach(e, name, m)
                        {
                                if (strcmp(name, "url") == 0 && json_is_string(m))
                                        url = json_string_value(m);
                                else if (strcmp(name, "auth_file") == 0 && json_is_string(m))
                                        auth = json_string_value(m);
                                else
                                        return parse_fail(err, err_size,
                                                          "%s '%s[%zu]': unknown or mistyped field "
                                                          "'%s' (expected url, auth_file strings)",
                                                          where, k->name, i, name);
                        }
                }
                if (!url)
                        return parse_fail(err, err_size, "%s '%s[%zu]': expected a URL string",
                                          where, k->name, i);
                r = check_url(url, k->off == OFF(rpc_nodes), where, k->name, i, true, err,
                              err_size);
                if (r < 0)
                        return r;
                r = node_add(nodes, n, url, auth);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int set_nodes_string(struct config *c, const struct key *k, const char *v, const char *where,
                            char *err, size_t err_size)
{
        struct config_node *nodes = field(c, k->off);
        size_t *n = field(c, k->count_off);
        char *copy, *tok, *save = NULL;
        int r = 0;

        copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        nodes_clear(nodes, n);
        /* -o values cannot contain commas (libfuse splits on them): nodes are '|'-separated */
        for (tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
                r = check_url(tok, k->off == OFF(rpc_nodes), where, k->name, 0, false, err,
                              err_size);
                if (r < 0)
                        break;
                r = node_add(nodes, n, tok, NULL);
                if (r < 0) {
                        r = parse_fail(err, err_size, "%s '%s': %s", where, k->name,
                                       r == -E2BIG ? "too many nodes" : "out of memory");
                        break;
                }
        }
        free(copy);
        return r;
}

static int set_json(struct config *c, const struct key *k, json_t *v, const char *where, char *err,
                    size_t err_size)
{
        switch (k->type) {
        case KEY_BOOL:
                if (!json_is_boolean(v))
                        return parse_fail(err, err_size, "%s '%s': expected true or false", where,
                                          k->name);
                *(bool *)field(c, k->off) = json_is_true(v);
                return 0;
        case KEY_UINT:
        case KEY_U64:
        case KEY_SIZE: {
                char tmp[32];

                if (k->type == KEY_SIZE && json_is_string(v))
                        return set_from_string(c, k, json_string_value(v), where, err, err_size);
                if (!json_is_integer(v))
                        return parse_fail(err, err_size, "%s '%s': expected an integer%s", where,
                                          k->name, k->type == KEY_SIZE ? " or a size string" : "");
                if (json_integer_value(v) < 0)
                        return parse_fail(err, err_size, "%s '%s': must not be negative", where,
                                          k->name);
                (void)snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
                return set_from_string(c, k, tmp, where, err, err_size);
        }
        case KEY_DURATION: {
                char tmp[64];

                if (!json_is_number(v))
                        return parse_fail(err, err_size, "%s '%s': expected a number of seconds",
                                          where, k->name);
                if (json_number_value(v) < 0)
                        return parse_fail(err, err_size, "%s '%s': must not be negative", where,
                                          k->name);
                (void)snprintf(tmp, sizeof(tmp), "%.6f", json_number_value(v));
                return set_from_string(c, k, tmp, where, err, err_size);
        }
        case KEY_MIMES:
                if (json_is_array(v))
                        return set_mimes_json(c, k, v, where, err, err_size);
                /* a comma-separated string, as -o gives it */
                __attribute__((fallthrough));
        case KEY_STRING:
        case KEY_PROFILE:
        case KEY_LOG_LEVEL:
        case KEY_LISTEN:
                if (!json_is_string(v))
                        return parse_fail(err, err_size, "%s '%s': expected a string", where,
                                          k->name);
                return set_from_string(c, k, json_string_value(v), where, err, err_size);
        case KEY_NODES:
                return set_nodes_json(c, k, v, where, err, err_size);
        case KEY_MILLI: {
                char tmp[64];

                if (!json_is_number(v))
                        return parse_fail(err, err_size, "%s '%s': expected a number", where,
                                          k->name);
                if (json_number_value(v) < 0 || json_number_value(v) > 1e6)
                        return parse_fail(err, err_size, "%s '%s': %g is out of range [%.3f, %.3f]",
                                          where, k->name, json_number_value(v), k->min / 1000.0,
                                          k->max / 1000.0);
                /* 0.01 is 0.01000000000000000021 as a double: rounded to the thousandth, the
                 * value of a rate written with more digits is refused by the string check */
                (void)snprintf(tmp, sizeof(tmp), "%.6f", json_number_value(v));
                for (size_t e = strlen(tmp); e > 0 && tmp[e - 1] == '0'; e--)
                        tmp[e - 1] = '\0';
                return set_from_string(c, k, tmp, where, err, err_size);
        }
        }
        return -EINVAL;
}

int config_init_defaults(struct config *c)
{
        *c = (struct config){
                .timeout_ms = 30 * 1000,
                .stall_timeout_ms = 500,
                .fsync_timeout_ms = 60 * 1000,
                .first_byte_timeout_ms = 5000,
                .max_chunk_size = 1024 * 1024,
                .retry_max_attempts = 3,
                .retry_base_delay_ms = 100,
                .retry_max_delay_ms = 30 * 1000,
                .connection_pool_size = 16,
                .content_cache_enabled = true,
                .max_cache_size = 10ull << 30,
                .cache_ttl_ms = 7ull * 24 * 3600 * 1000,
                .provenance_tracking = true,
                .access_rewards = false,
                .max_model_size_mb = 0,
                .integrity_verification = true,
                .automatic_pinning = true,
                .upload_while_writing = true,
                .parallel_uploads = 5,
                .parallel_downloads = 8,
                .replicas = 1,
                .profile = CONFIG_PROFILE_DEFAULT,
                .log_level = LOG_LEVEL_NOTICE,
                .prefetch_on_open_min_size = 64ull << 20,
                .royalty_rate_milli = 10, /* PRSM's 0.01 FTNS per access */
                .burst_size = 10,
                .follow_interval_ms = 30 * 1000,
        };
        if (node_add(c->rpc_nodes, &c->n_rpc_nodes, "http://127.0.0.1:5001", NULL) < 0 ||
            node_add(c->gateway_nodes, &c->n_gateway_nodes, "http://127.0.0.1:8080", NULL) < 0 ||
            set_string(&c->state_dir, "/var/lib/prsmfs") < 0 ||
            set_string(&c->cache_dir, "/var/cache/prsmfs") < 0 ||
            set_string(&c->metrics_listen, "127.0.0.1:9464") < 0 ||
            set_string(&c->prefetch_on_open, CONFIG_PREFETCH_ON_OPEN_DEFAULT) < 0) {
                config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void config_done(struct config *c)
{
        if (!c)
                return;
        nodes_clear(c->rpc_nodes, &c->n_rpc_nodes);
        nodes_clear(c->gateway_nodes, &c->n_gateway_nodes);
        nodes_clear(c->pinning_services, &c->n_pinning_services);
        free(c->state_dir);
        free(c->cache_dir);
        free(c->ca_bundle);
        free(c->control_group);
        free(c->metrics_listen);
        free(c->prefetch_on_open);
        free(c->identity_key);
        free(c->creator_id);
        free(c->allowed_mime_types);
        free(c->cluster_api);
        free(c->cluster_auth_file);
        free(c->follow);
        c->cluster_api = c->cluster_auth_file = c->follow = NULL;
        c->state_dir = c->cache_dir = c->ca_bundle = c->control_group = c->metrics_listen =
                c->prefetch_on_open = c->identity_key = c->creator_id = c->allowed_mime_types =
                        NULL;
}

/* Applies a parsed config file (root; NULL when it did not parse, jerr says why), named name
 * in messages, and drops it. */
static int load_root(struct config *c, json_t *root, const json_error_t *jerr, const char *name,
                     char *err, size_t err_size)
{
        char where[PATH_MAX + 16];
        const char *key;
        json_t *v;
        int r = 0;

        if (!root) {
                if (jerr->line < 0 || jerr->position == 0)
                        return parse_fail(err, err_size, "config file %s: %s", name, jerr->text);
                return parse_fail(err, err_size, "config file %s:%d:%d: %s", name, jerr->line,
                                  jerr->column, jerr->text);
        }
        if (!json_is_object(root)) {
                r = parse_fail(err, err_size, "config file %s: top level must be a JSON object",
                               name);
                goto out;
        }
        (void)snprintf(where, sizeof(where), "config file %s: key", name);
        json_object_foreach(root, key, v)
        {
                const struct key *k = key_find(key);

                if (!k) {
                        r = parse_fail(err, err_size, "%s '%s': unknown key", where, key);
                        goto out;
                }
                r = set_json(c, k, v, where, err, err_size);
                if (r < 0)
                        goto out;
        }
out:
        json_decref(root);
        return r;
}

/* Every refusal says why: one that failed for want of memory deep inside (a strdup) left err
 * empty, and the admin read a bare "config:" (fuzzing's allocation-failure stage). err is
 * cleared first by the callers below. */
static int with_reason(int r, const char *what, const char *name, char *err, size_t err_size)
{
        if (r < 0 && err_size && err[0] == '\0')
                (void)parse_fail(err, err_size, "%s %s: %s", what, name, strerror(-r));
        return r;
}

int config_load_file(struct config *c, const char *path, char *err, size_t err_size)
{
        json_error_t jerr;

        if (err_size)
                err[0] = '\0';
        return with_reason(load_root(c, json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), &jerr,
                                     path, err, err_size),
                           "config file", path, err, err_size);
}

int config_load_json(struct config *c, const char *text, size_t len, const char *name, char *err,
                     size_t err_size)
{
        json_error_t jerr;

        if (err_size)
                err[0] = '\0';
        return with_reason(load_root(c, json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), &jerr,
                                     name, err, err_size),
                           "config file", name, err, err_size);
}

static int set_option(struct config *c, const char *name, const char *value, char *err,
                      size_t err_size)
{
        const struct key *k = key_find(name);

        if (!k)
                return parse_fail(err, err_size, "option -o %s: unknown option", name);
        if (!value)
                return parse_fail(err, err_size, "option -o %s: needs a value (-o %s=...)", name,
                                  name);
        if (k->type == KEY_NODES)
                return set_nodes_string(c, k, value, "option -o", err, err_size);
        return set_from_string(c, k, value, "option -o", err, err_size);
}

int config_set_option(struct config *c, const char *name, const char *value, char *err,
                      size_t err_size)
{
        if (err_size)
                err[0] = '\0';
        return with_reason(set_option(c, name, value, err, err_size), "option -o", name, err,
                           err_size);
}

/* The IPFS Cluster keys: a URL to go with the others, min <= max. */
static int config_validate_cluster(const struct config *c, char *err, size_t err_size)
{
        const char *u = c->cluster_api;

        if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                return parse_fail(err, err_size,
                                  "config: 'cluster_api' must be an http:// or https:// URL, not "
                                  "'%s'",
                                  u);
        if (u && strlen(u) > CONFIG_MAX_URL)
                return parse_fail(err, err_size, "config: 'cluster_api' is longer than %d bytes",
                                  CONFIG_MAX_URL);
        if (!u && (c->cluster_auth_file || c->replication_min || c->replication_max))
                return parse_fail(err, err_size,
                                  "config: 'cluster_auth_file', 'replication_min' and "
                                  "'replication_max' need 'cluster_api'");
        if (c->replication_min && c->replication_max && c->replication_min > c->replication_max)
                return parse_fail(err, err_size,
                                  "config: 'replication_min' (%u) exceeds 'replication_max' (%u)",
                                  c->replication_min, c->replication_max);
        return 0;
}

/* follow: "/ipns/NAME" (a peer ID, a CID or a DNSLink domain), "/ipfs/CID" or a bare CID. */
static int config_validate_follow(const struct config *c, char *err, size_t err_size)
{
        const char *f = c->follow, *name;
        struct cid cid;
        size_t n;

        if (!f)
                return 0;
        if (strncmp(f, "/ipns/", 6) == 0) {
                name = f + 6;
                n = strlen(name);
                if (n == 0 || n > CONFIG_FOLLOW_NAME_MAX ||
                    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 ".-_") != n)
                        return parse_fail(err, err_size,
                                          "config: 'follow': '%.300s' is no IPNS name (1..%d "
                                          "letters, digits, '.', '-' or '_' after /ipns/)",
                                          f, CONFIG_FOLLOW_NAME_MAX);
                return 0;
        }
        name = strncmp(f, "/ipfs/", 6) == 0 ? f + 6 : f;
        if (cid_parse(name, strlen(name), &cid) < 0)
                return parse_fail(err, err_size,
                                  "config: 'follow' must be /ipns/NAME, /ipfs/CID or a CID, not "
                                  "'%.300s'",
                                  f);
        return 0;
}

int config_validate(const struct config *c, char *err, size_t err_size)
{
        int r = config_validate_follow(c, err, err_size);

        if (r < 0)
                return r;
        if (c->retry_base_delay_ms > c->retry_max_delay_ms)
                return parse_fail(err, err_size,
                                  "config: 'retry_base_delay' (%.3f s) exceeds 'retry_max_delay' "
                                  "(%.3f s)",
                                  c->retry_base_delay_ms / 1000.0, c->retry_max_delay_ms / 1000.0);
        if (c->stall_timeout_ms > c->timeout_ms)
                return parse_fail(err, err_size, "config: 'stall_timeout' exceeds 'timeout'");
        if (c->n_rpc_nodes + c->n_gateway_nodes == 0)
                return parse_fail(
                        err, err_size,
                        "config: no 'rpc_nodes' and no 'gateway_nodes': nothing to read from");
        if (c->replicas > c->n_rpc_nodes + c->n_pinning_services && c->automatic_pinning)
                return parse_fail(err, err_size,
                                  "config: 'replicas' is %u but only %zu nodes can pin",
                                  c->replicas, c->n_rpc_nodes + c->n_pinning_services);
        if (!c->integrity_verification) /* a key that would do nothing is refused */
                return parse_fail(
                        err, err_size,
                        "config: 'integrity_verification' cannot be false: every block, from "
                        "RPC nodes and gateways alike, is hashed against its CID");
        if (!c->state_dir || c->state_dir[0] != '/')
                return parse_fail(err, err_size, "config: 'state_dir' must be an absolute path");
        if (!c->cache_dir || c->cache_dir[0] != '/')
                return parse_fail(err, err_size, "config: 'cache_dir' must be an absolute path");
        return config_validate_cluster(c, err, err_size);
}

void config_print_help(void *file)
{
        FILE *f = file;

        fprintf(f, "prsmfs settings (JSON config keys, or -o key=value):\n");
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                fprintf(f, "    %-24s %s\n", keys[i].name, keys[i].help);
}

static bool str_eq(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether key k has the same value in a and b. */
static bool key_eq(const struct key *k, const struct config *a, const struct config *b)
{
        const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
        const struct config_node *na, *nb;
        size_t n;

        switch (k->type) {
        case KEY_BOOL:
                return *(const bool *)pa == *(const bool *)pb;
        case KEY_UINT:
                return *(const unsigned *)pa == *(const unsigned *)pb;
        case KEY_U64:
        case KEY_SIZE:
        case KEY_DURATION:
        case KEY_MILLI:
                return *(const uint64_t *)pa == *(const uint64_t *)pb;
        case KEY_STRING:
        case KEY_LISTEN:
        case KEY_MIMES:
                return str_eq(*(char *const *)pa, *(char *const *)pb);
        case KEY_PROFILE:
                return a->profile == b->profile;
        case KEY_LOG_LEVEL:
                return a->log_level == b->log_level;
        case KEY_NODES:
                n = *(const size_t *)((const char *)a + k->count_off);
                if (n != *(const size_t *)((const char *)b + k->count_off))
                        return false;
                na = (const struct config_node *)pa;
                nb = (const struct config_node *)pb;
                for (size_t i = 0; i < n; i++)
                        if (!str_eq(na[i].url, nb[i].url) ||
                            !str_eq(na[i].auth_file, nb[i].auth_file))
                                return false;
                return true;
        }
        return false;
}

size_t config_changed_keys(const struct config *a, const struct config *b, const char **ret,
                           size_t max)
{
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (!key_eq(&keys[i], a, b) && n < max)
                        ret[n++] = keys[i].name;
        return n;
}
