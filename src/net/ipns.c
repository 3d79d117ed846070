/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IPNS through the RPC nodes: publishing a root under a key that lives on a node
 * (key/list, key/gen, name/publish) and resolving a name to its current root
 * (name/resolve). prsmfs holds no IPNS keys and signs no records itself: the node that has
 * the key does, as `ipfs name publish` would.
 *
 * Nodes are asked in order of health, as reads choose them; one that does not answer is
 * reported to the pool (it goes suspect, then down) and the next is asked. A refusal (an RPC
 * error answer) is the node's word, not its failure. Nothing here holds a lock across a
 * request. A resolve asks with nocache=true (the record as the network has it now, not the
 * node's cached answer); a node that refuses the flag (js-ipfs started offline) is asked
 * again without it.
 */
#define LOG_MODULE "net"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prsmfs/buf.h"
#include "prsmfs/log.h"

#include "internal.h"

#define MS             1000000ull
#define MAX_URL        2048
#define MAX_RPC_ANSWER (64 * 1024)
#define IPNS_TTL       "60s" /* the record's cache hint: a follower's node asks again after it */

/* Appends "; "-separated text to err (cut when full). */
_printf_(3, 4) static void err_add(char *err, size_t err_size, const char *fmt, ...)
{
        size_t n = err ? strnlen(err, err_size) : 0;
        va_list ap;

        if (!err || n + 3 >= err_size)
                return;
        if (n) {
                memcpy(err + n, "; ", 3);
                n += 2;
        }
        va_start(ap, fmt);
        (void)vsnprintf(err + n, err_size - n, fmt, ap);
        va_end(ap);
}

const char *net_rpc_message(json_t *j)
{
        return json_string_value(json_object_get(j, "Message"));
}

/*
 * One RPC call (an empty POST) on node i: 0 with the JSON object answer in *ret (a new
 * reference) when the node answered 200 with one; -EREMOTEIO when it refused (its message
 * in err), -ENOTCONN when it did not answer or answered as a failing node does (reported to
 * the pool), -ETIMEDOUT, -ECANCELED, -ENOMEM.
 */
static int rpc_call(struct net_pool *p, size_t i, const char *url, uint64_t deadline_ns,
                    json_t **ret, char *err, size_t err_size)
{
        uint64_t now = p->ops->now_ns(p->t);
        struct net_http_response res = { 0 };
        struct buf body;
        json_t *j = NULL;
        int r;

        if (now >= deadline_ns)
                return -ETIMEDOUT;
        buf_init(&body, MAX_RPC_ANSWER);
        /* name/publish waits for the record to be put: no stall clock, only the deadline */
        r = net_node_http(p, i, url, deadline_ns - now, deadline_ns, &body, &res);
        if (r < 0) {
                if (r != -ECANCELED && r != -ENOMEM && r != -ETIMEDOUT)
                        net_pool_report(p, i, NET_FAIL, 0, 0, 0);
                err_add(err, err_size, "%s: %s", p->nodes[i].url, strerror(-r));
                r = r == -ECANCELED || r == -ENOMEM || r == -ETIMEDOUT ? r : -ENOTCONN;
                goto out;
        }
        j = net_json_answer(&body);
        if (res.status == 200 && j) {
                net_pool_report(p, i, NET_OK, (p->ops->now_ns(p->t) - now) / MS, 0, 0);
                *ret = j;
                j = NULL;
                r = 0;
        } else if ((res.status == 400 || res.status == 500) && net_rpc_message(j)) {
                err_add(err, err_size, "%s: %.300s", p->nodes[i].url, net_rpc_message(j));
                r = -EREMOTEIO;
        } else {
                if (res.status >= 500 || res.status == 200)
                        net_pool_report(p, i, NET_FAIL, 0, 0, 0);
                err_add(err, err_size, "%s: HTTP %ld%s", p->nodes[i].url, res.status,
                        res.status == 200 ? " without a JSON answer" : "");
                r = res.status >= 500 || res.status == 200 ? -ENOTCONN : -EREMOTEIO;
        }
out:
        json_decref(j);
        buf_done(&body);
        return r;
}

int net_key_list_find(json_t *j, const char *key, char *ret_id, size_t id_size)
{
        json_t *v;
        size_t k;
        int r = 0;

        json_array_foreach(json_object_get(j, "Keys"), k, v)
        {
                const char *name = json_string_value(json_object_get(v, "Name"));
                const char *id = json_string_value(json_object_get(v, "Id"));

                if (name && id && strcmp(name, key) == 0 && net_is_url_safe(id) &&
                    strlen(id) < id_size) {
                        (void)snprintf(ret_id, id_size, "%s", id);
                        r = 1;
                }
        }
        return r;
}

/* key/list on node i: 1 with the key's IPNS name in ret_id when the node has key, 0 when not,
 * or rpc_call's errors. */
static int node_has_key(struct net_pool *p, size_t i, const char *key, uint64_t deadline_ns,
                        char *ret_id, size_t id_size, char *err, size_t err_size)
{
        char url[MAX_URL];
        json_t *j = NULL;
        int r;

        r = net_make_url(url, sizeof(url), "%s/api/v0/key/list", p->nodes[i].url);
        if (r >= 0)
                r = rpc_call(p, i, url, deadline_ns, &j, err, err_size);
        if (r < 0)
                return r;
        r = net_key_list_find(j, key, ret_id, id_size);
        json_decref(j);
        return r;
}

int net_key_gen_id(json_t *j, char *ret_id, size_t id_size)
{
        const char *id = json_string_value(json_object_get(j, "Id"));

        if (!id || !net_is_url_safe(id) || strlen(id) >= id_size)
                return -EBADMSG;
        (void)snprintf(ret_id, id_size, "%s", id);
        return 0;
}

/* key/gen (ed25519) on node i: 0 with the new key's IPNS name in ret_id, or -errno. */
static int node_make_key(struct net_pool *p, size_t i, const char *key, uint64_t deadline_ns,
                         char *ret_id, size_t id_size, char *err, size_t err_size)
{
        char url[MAX_URL];
        json_t *j = NULL;
        int r;

        r = net_make_url(url, sizeof(url), "%s/api/v0/key/gen?arg=%s&type=ed25519", p->nodes[i].url,
                         key);
        if (r >= 0)
                r = rpc_call(p, i, url, deadline_ns, &j, err, err_size);
        if (r < 0)
                return r;
        r = net_key_gen_id(j, ret_id, id_size);
        if (r >= 0)
                log_notice("made IPNS key '%s' (%s) on %s", key, ret_id, p->nodes[i].url);
        else
                err_add(err, err_size, "%s: key/gen answered without a usable Id", p->nodes[i].url);
        json_decref(j);
        return r;
}

bool net_publish_confirms(json_t *j, const char *rootstr, const char **value)
{
        const char *v = json_string_value(json_object_get(j, "Value"));

        *value = v;
        return v && strncmp(v, "/ipfs/", 6) == 0 && strcmp(v + 6, rootstr) == 0;
}

/* name/publish of root under key on node i: 0 when the node confirmed /ipfs/<root>. */
static int node_publish(struct net_pool *p, size_t i, const char *key, const char *rootstr,
                        uint64_t deadline_ns, char *err, size_t err_size)
{
        char url[MAX_URL];
        json_t *j = NULL;
        const char *v;
        int r;

        /* allow-offline: a node without peers (js-ipfs refuses then); Kubo takes it too */
        r = net_make_url(url, sizeof(url),
                         "%s/api/v0/name/publish?arg=/ipfs/%s&key=%s&allow-offline=true&ttl=%s",
                         p->nodes[i].url, rootstr, key, IPNS_TTL);
        if (r >= 0)
                r = rpc_call(p, i, url, deadline_ns, &j, err, err_size);
        if (r < 0)
                return r;
        if (!net_publish_confirms(j, rootstr, &v)) {
                err_add(err, err_size, "%s: name/publish confirmed '%.200s', not /ipfs/%s",
                        p->nodes[i].url, v ? v : "nothing", rootstr);
                r = -EBADMSG;
        }
        json_decref(j);
        return r;
}

int net_ipns_publish(struct net_pool *p, const char *key, const struct cid *root, bool create_key,
                     uint64_t deadline_ns, struct net_ipns_published *ret, char *err,
                     size_t err_size)
{
        bool tried[NET_MAX_NODES] = { 0 };
        char rootstr[CID_MAX_STR], id[NET_IPNS_NAME_MAX + 1];
        int r, first = -1, answered = 0, holder = -1, i;

        *ret = (struct net_ipns_published){ 0 };
        if (err_size)
                err[0] = '\0';
        if (!net_is_url_safe(key) || strlen(key) > NET_IPNS_NAME_MAX) {
                err_add(err, err_size, "not a key name: 1..255 letters, digits, '-', '.', '_'");
                return -EINVAL;
        }
        (void)cid_to_string(root, rootstr);
        /* the first node that has the key publishes */
        while ((i = net_rpc_next(p, tried)) >= 0) {
                r = node_has_key(p, (size_t)i, key, deadline_ns, id, sizeof(id), err, err_size);
                if (r >= 0) {
                        answered++;
                        if (first < 0)
                                first = i;
                }
                if (r == 1) {
                        holder = i;
                        break;
                }
                net_node_release(p, (size_t)i);
                if (r == -ECANCELED || r == -ENOMEM || r == -ETIMEDOUT)
                        return r;
        }
        if (holder < 0 && answered == 0) {
                if (!err[0])
                        err_add(err, err_size, "every RPC node is down");
                return -EHOSTUNREACH;
        }
        if (holder < 0 && !create_key)
                return -ENOKEY;
        if (holder < 0) {
                /* the healthiest node that answered makes it (it may have gone down since) */
                if (!net_node_hold(p, (size_t)first))
                        return -EHOSTUNREACH;
                holder = first;
                r = node_make_key(p, (size_t)holder, key, deadline_ns, id, sizeof(id), err,
                                  err_size);
                if (r < 0) {
                        net_node_release(p, (size_t)holder);
                        return r == -ENOTCONN ? -EHOSTUNREACH : r;
                }
                ret->is_key_created = true;
        }
        r = node_publish(p, (size_t)holder, key, rootstr, deadline_ns, err, err_size);
        if (r >= 0) {
                (void)snprintf(ret->name, sizeof(ret->name), "%s", id);
                (void)snprintf(ret->node, sizeof(ret->node), "%s", p->nodes[holder].url);
                err[0] = '\0';
                log_notice("published %s as /ipns/%s (key '%s' on %s)", rootstr, id, key,
                           p->nodes[holder].url);
        }
        net_node_release(p, (size_t)holder);
        return r == -ENOTCONN ? -EHOSTUNREACH : r;
}

int net_resolve_answer(json_t *j, struct cid *ret, const char **path)
{
        const char *s = json_string_value(json_object_get(j, "Path"));

        *path = s;
        if (!s || strncmp(s, "/ipfs/", 6) != 0)
                return -EBADMSG;
        s += 6;
        return cid_parse(s, strlen(s), ret) < 0 ? -EBADMSG : 0;
}

int net_ipns_resolve(struct net_pool *p, const char *name, uint64_t deadline_ns, struct cid *ret,
                     char *err, size_t err_size)
{
        bool tried[NET_MAX_NODES] = { 0 };
        int r = -EHOSTUNREACH, i;
        bool refused = false;

        if (err_size)
                err[0] = '\0';
        if (!net_is_url_safe(name)) {
                err_add(err, err_size, "not an IPNS name");
                return -EINVAL;
        }
        while ((i = net_rpc_next(p, tried)) >= 0) {
                char url[MAX_URL];
                json_t *j = NULL;

                for (int nocache = 1; nocache >= 0; nocache--) {
                        r = net_make_url(url, sizeof(url),
                                         "%s/api/v0/name/resolve?arg=/ipns/%s&recursive=true%s",
                                         p->nodes[i].url, name, nocache ? "&nocache=true" : "");
                        if (r >= 0)
                                r = rpc_call(p, (size_t)i, url, deadline_ns, &j, err, err_size);
                        /* an offline js-ipfs refuses nocache: ask for its own answer */
                        if (r != -EREMOTEIO)
                                break;
                }
                if (r >= 0) {
                        const char *path;

                        r = net_resolve_answer(j, ret, &path);
                        if (r < 0)
                                err_add(err, err_size, "%s: /ipns/%s resolved to '%.200s'",
                                        p->nodes[i].url, name, path ? path : "nothing");
                        json_decref(j);
                }
                net_node_release(p, (size_t)i);
                if (r >= 0) {
                        err[0] = '\0';
                        return 0;
                }
                refused = refused || r == -EREMOTEIO || r == -EBADMSG;
                if (r == -ECANCELED || r == -ENOMEM || r == -ETIMEDOUT)
                        return r;
        }
        if (!err[0])
                err_add(err, err_size, "every RPC node is down");
        return refused ? -EREMOTEIO : -EHOSTUNREACH;
}
