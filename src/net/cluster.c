/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IPFS Cluster REST API (ipfs-cluster api/rest, default port 9094): keeping N copies across
 * many nodes is the cluster's job; we only ask for it and wait until it is done.
 *
 *   POST   /pins/{cid}?replication-min=N&replication-max=M&name=...   200 (Pin) or 202
 *   GET    /pins/{cid}     200: GlobalPinInfo {"cid", "peer_map": {peer: {"status", "error",
 *                          ...}}}; status "pinned", "pinning", "pin_queued", "remote" (a peer
 *                          not allocated), "pin_error", "cluster_error", ...
 *   DELETE /pins/{cid}     200 or 202; 404 when the cluster has no such pin
 *   errors                 4xx/5xx with {"code", "message"}
 *   auth                   HTTP basic (basic_auth_credentials) or "Authorization: Bearer" (JWT)
 *
 * A pin counts as done when replication_min peers (at least one) report "pinned"; a pin every
 * allocated peer failed is a failure; otherwise we poll (0.1 s doubling to 1 s) until the
 * deadline. Any failure is returned to the caller (the uploader keeps the upload pending and
 * retries with backoff): nothing is given up here.
 *
 * The replication factors left at 0 are not sent, so the cluster applies its own defaults
 * (replication_factor_min/max of its service.json).
 */
#define LOG_MODULE "net"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prsmfs/buf.h"
#include "prsmfs/log.h"

#include "internal.h"

#define MS 1000000ull

int net_cluster_init(struct net_pool *p, const struct net_config *cfg)
{
        struct service *c;
        size_t len;
        int r;

        if (!cfg->cluster_api)
                return 0;
        len = strlen(cfg->cluster_api);
        while (len > 0 && cfg->cluster_api[len - 1] == '/')
                len--;
        if (len == 0 || len > NET_MAX_URL)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        p->cluster = c;
        c->url = strndup(cfg->cluster_api, len);
        if (!c->url)
                return -ENOMEM;
        if (cfg->cluster_auth_file) {
                r = net_auth_read(cfg->cluster_auth_file, &c->auth);
                if (r < 0)
                        return r;
        }
        p->replication_min = cfg->replication_min;
        p->replication_max = cfg->replication_max;
        return 0;
}

void net_cluster_free(struct net_pool *p)
{
        struct service *c = p->cluster;

        if (!c)
                return;
        free(c->url);
        if (c->auth)
                explicit_bzero(c->auth, strlen(c->auth));
        free(c->auth);
        free(c);
        p->cluster = NULL;
}

void net_cluster_message(const struct buf *body, char *out, size_t cap)
{
        json_t *j = net_json_answer(body);
        const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;

        (void)snprintf(out, cap, "%s", m ? m : "no message");
        json_decref(j);
}

int net_cluster_count_peers(const struct buf *body, const char *rootstr, unsigned *ret_pinned,
                            unsigned *ret_failed, unsigned *ret_allocated, char *why,
                            size_t why_cap)
{
        json_t *j = net_json_answer(body), *map, *v;
        const char *peer, *cid;
        unsigned pinned = 0, failed = 0, allocated = 0;
        int r = -EBADMSG;

        if (!j)
                goto out;
        cid = json_string_value(json_object_get(j, "cid"));
        map = json_object_get(j, "peer_map");
        if ((cid && strcmp(cid, rootstr) != 0) || !json_is_object(map))
                goto out;
        json_object_foreach(map, peer, v)
        {
                const char *st = json_string_value(json_object_get(v, "status"));
                const char *err = json_string_value(json_object_get(v, "error"));

                if (!st)
                        goto out;
                if (strcmp(st, "remote") == 0)
                        continue; /* not allocated to this peer */
                allocated++;
                if (strcmp(st, "pinned") == 0)
                        pinned++;
                else if (strcmp(st, "pin_error") == 0 || strcmp(st, "cluster_error") == 0 ||
                         strcmp(st, "unexpectedly_unpinned") == 0) {
                        failed++;
                        (void)snprintf(why, why_cap, "peer %.60s: %s%s%.120s", peer, st,
                                       err && *err ? ": " : "", err ? err : "");
                }
        }
        *ret_pinned = pinned;
        *ret_failed = failed;
        *ret_allocated = allocated;
        r = 0;
out:
        json_decref(j);
        return r;
}

static int cluster_pin(struct net_pool *p, const char *rootstr, uint64_t deadline_ns)
{
        const struct service *c = p->cluster;
        unsigned need = MAX(p->replication_min, 1u), pinned = 0, failed = 0, allocated = 0;
        char url[2 * NET_MAX_URL], q[96] = "", why[256] = "";
        struct net_http_response res;
        uint64_t poll_ms = 100;
        struct buf body;
        int r;

        if (p->replication_min)
                (void)snprintf(q + strlen(q), sizeof(q) - strlen(q), "replication-min=%u&",
                               p->replication_min);
        if (p->replication_max)
                (void)snprintf(q + strlen(q), sizeof(q) - strlen(q), "replication-max=%u&",
                               p->replication_max);
        r = net_make_url(url, sizeof(url), "%s/pins/%s?%sname=prsmfs%%20%s", c->url, rootstr, q,
                         rootstr);
        if (r < 0)
                return r;
        buf_init(&body, 64 * 1024);
        r = net_service_http(p, c, "POST", url, NULL, deadline_ns, &body, &res);
        if (r < 0)
                goto out;
        if (res.status != 200 && res.status != 202) {
                net_cluster_message(&body, why, sizeof(why));
                log_warning("IPFS Cluster %s refused to pin %s: HTTP %ld: %s", c->url, rootstr,
                            res.status, why);
                r = -EREMOTEIO;
                goto out;
        }
        r = net_make_url(url, sizeof(url), "%s/pins/%s", c->url, rootstr);
        if (r < 0)
                goto out;
        for (;;) {
                uint64_t wake;

                r = net_service_http(p, c, NULL, url, NULL, deadline_ns, &body, &res);
                if (r < 0)
                        goto out;
                if (res.status != 200) {
                        net_cluster_message(&body, why, sizeof(why));
                        log_warning("IPFS Cluster %s: status of %s: HTTP %ld: %s", c->url, rootstr,
                                    res.status, why);
                        r = -EREMOTEIO;
                        goto out;
                }
                r = net_cluster_count_peers(&body, rootstr, &pinned, &failed, &allocated, why,
                                            sizeof(why));
                if (r < 0)
                        goto out;
                if (pinned >= need)
                        break;
                if (allocated > 0 && failed == allocated) {
                        log_warning("IPFS Cluster %s: every peer failed to pin %s (%s)", c->url,
                                    rootstr, why);
                        r = -EREMOTEIO;
                        goto out;
                }
                wake = p->ops->now_ns(p->t) + poll_ms * MS;
                if (wake >= deadline_ns) {
                        (void)snprintf(why + strlen(why), sizeof(why) - strlen(why),
                                       "%spinned on %u of %u peers", why[0] ? "; " : "", pinned,
                                       need);
                        r = -ETIMEDOUT;
                        goto out;
                }
                p->ops->sleep_until(p->t, wake);
                poll_ms = MIN(poll_ms * 2, 1000);
        }
        log_debug("IPFS Cluster %s: %s pinned on %u peer(s)", c->url, rootstr, pinned);
        r = 0;
out:
        if (r < 0 && r != -EREMOTEIO) /* (a refusal was logged with the cluster's words) */
                log_warning_errno(r, "pinning %s on IPFS Cluster %s failed%s%s", rootstr, c->url,
                                  why[0] ? ": " : "", why);
        buf_done(&body);
        return r;
}

int net_cluster_pin(struct net_pool *p, const char *rootstr, uint64_t deadline_ns)
{
        int r = cluster_pin(p, rootstr, deadline_ns);

        net_count_pin(p, r);
        return r;
}

int net_cluster_unpin(struct net_pool *p, const char *rootstr, uint64_t deadline_ns)
{
        const struct service *c = p->cluster;
        struct net_http_response res;
        char url[2 * NET_MAX_URL], why[256];
        struct buf body;
        int r;

        r = net_make_url(url, sizeof(url), "%s/pins/%s", c->url, rootstr);
        if (r < 0)
                return r;
        buf_init(&body, 64 * 1024);
        r = net_service_http(p, c, "DELETE", url, NULL, deadline_ns, &body, &res);
        /* 404: the cluster holds no such pin (an earlier unpin whose answer was lost) */
        if (r >= 0 && res.status != 200 && res.status != 202 && res.status != 404) {
                net_cluster_message(&body, why, sizeof(why));
                log_warning("IPFS Cluster %s refused to unpin %s: HTTP %ld: %s", c->url, rootstr,
                            res.status, why);
                r = -EREMOTEIO;
        } else if (r < 0)
                log_warning_errno(r, "unpinning %s on IPFS Cluster %s failed", rootstr, c->url);
        buf_done(&body);
        return r < 0 ? r : 0;
}
