/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The judges of what RPC nodes (Kubo, js-ipfs), pinning services and IPFS Cluster answer
 * (src/net/internal.h), fed hostile bodies: the first byte chooses the judge (mod N_JUDGES;
 * its next bits the HTTP status where one matters), the rest is the body. The judges look for
 * one fixed CID, the empty UnixFS directory (4 bytes), as bafybei... (the root string) or
 * Qm...; IPNS key "prsmfs". A judge's "yes" must hold on a second look at the body (the CID it
 * names has our codec and multihash; ids are URL-safe), every string it writes is
 * NUL-terminated within its cap, a cap never changes a decision, and counts add up. Aborts on a
 * violated invariant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prsmfs/buf.h"
#include "prsmfs/cid.h"

#include "internal.h"

#define ROOT     "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
#define ROOT_LEN 4 /* 0a 02 08 01 */
#define KEY      "prsmfs"
#define URL_SAFE "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"

enum judge {
        J_STAT,
        J_PUT,
        J_ADD,
        J_PINS,
        J_REFUSAL,
        J_PIN_STATUS,
        J_PIN_RESULTS,
        J_CLUSTER_MESSAGE,
        J_CLUSTER_PEERS,
        J_RPC_MESSAGE,
        J_KEY_LIST,
        J_KEY_GEN,
        J_PUBLISH,
        J_RESOLVE,
        N_JUDGES
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok)
{
        if (!ok)
                abort();
}

static bool is_terminated(const char *s, size_t cap)
{
        return memchr(s, '\0', cap) != NULL;
}

static bool is_id(const char *s)
{
        size_t n = strlen(s);

        return n > 0 && n <= 256 && strspn(s, URL_SAFE) == n;
}

/* the second look: s is a CID with want's codec and multihash */
static bool names(const char *s, const struct cid *want)
{
        struct cid got;

        return s && cid_parse(s, strlen(s), &got) >= 0 && got.codec == want->codec &&
               cid_same_multihash(&got, want);
}

static const char *member(json_t *j, const char *key)
{
        return json_string_value(json_object_get(j, key));
}

/* add: one of the last 16 objects of the NDJSON names want */
static bool add_names(const struct buf *b, const struct cid *want)
{
        size_t end = b->len;

        for (int k = 0; k < 16 && end; k++) {
                const uint8_t *o = memrchr(b->p, '{', end);
                json_t *j;
                bool ok;

                if (!o)
                        break;
                j = json_loadb((const char *)o, b->len - (size_t)(o - b->p), JSON_DISABLE_EOF_CHECK,
                               NULL);
                ok = names(member(j, "Hash"), want);
                json_decref(j);
                if (ok)
                        return true;
                end = (size_t)(o - b->p);
        }
        return false;
}

/* pin/add, pin/rm: one of the Pins names want */
static bool pins_name(const struct buf *b, const struct cid *want)
{
        json_t *j = net_json_answer(b), *v;
        bool found = false;
        size_t k;

        json_array_foreach(json_object_get(j, "Pins"), k, v)
        {
                found = found || names(json_string_value(v), want);
        }
        json_decref(j);
        return found;
}

static void judge_put(const struct buf *b, const struct cid *want)
{
        char key[256], small[8];
        json_t *j = net_json_answer(b);
        bool ok = net_put_answer_names(b, want, key, sizeof(key));
        const char *k = member(j, "Key");

        must(is_terminated(key, sizeof(key)));
        must(net_put_answer_names(b, want, small, sizeof(small)) == ok);
        must(is_terminated(small, sizeof(small)));
        must(!ok || names(k, want));
        must(!k || strlen(k) >= sizeof(key) || strcmp(k, key) == 0);
        json_decref(j);
}

static void judge_refusal(const struct buf *b, long status)
{
        struct net_http_response res = { .status = status };
        bool refusal = net_is_rpc_refusal(&res, b);

        must(!net_is_not_pinned(&res, b) || refusal);
        must(refusal == (status == 400) ||
             (status == 500 && b->len && memmem(b->p, b->len, "\"Message\"", 9)));
}

static void judge_pin_status(const struct buf *b)
{
        char status[32], id[NET_PIN_ID_SIZE], s_small[4], id_small[8];
        int r = net_pin_status(b, status, sizeof(status), id, sizeof(id));

        must(r == 0 || r == -EBADMSG);
        if (r == 0)
                must(is_terminated(status, sizeof(status)) && is_terminated(id, sizeof(id)) &&
                     is_id(id));
        if (net_pin_status(b, s_small, sizeof(s_small), id_small, sizeof(id_small)) == 0)
                must(r == 0 && strcmp(s_small, status) == 0 && strcmp(id_small, id) == 0);
}

static void judge_pin_results(const struct buf *b)
{
        char ids[4][NET_PIN_ID_SIZE];
        size_t n = 99;
        int r;

        memset(ids, 0xff, sizeof(ids));
        r = net_pin_results(b, ids, 4, &n);
        must(r == 0 || r == -EBADMSG);
        must(r < 0 ? n == 99 : n <= 4);
        for (size_t i = 0; r == 0 && i < n; i++)
                must(is_terminated(ids[i], sizeof(ids[i])) && is_id(ids[i]));
}

static void judge_cluster(const struct buf *b, const char *rootstr)
{
        unsigned pinned = 0, failed = 0, allocated = 0;
        char why[256] = "", out[256], small[8];
        json_t *j = net_json_answer(b);
        const char *cid = member(j, "cid");
        int r;

        net_cluster_message(b, out, sizeof(out));
        net_cluster_message(b, small, sizeof(small));
        must(is_terminated(out, sizeof(out)) && is_terminated(small, sizeof(small)));
        r = net_cluster_count_peers(b, rootstr, &pinned, &failed, &allocated, why, sizeof(why));
        must(r == 0 || r == -EBADMSG);
        must(r < 0 || (pinned + failed <= allocated && (!cid || strcmp(cid, rootstr) == 0)));
        must(is_terminated(why, sizeof(why)));
        json_decref(j);
}

static void judge_key_list(json_t *j)
{
        char id[NET_IPNS_NAME_MAX + 1] = "", small[8] = "";
        int r = net_key_list_find(j, KEY, id, sizeof(id));
        bool found = false;
        json_t *v;
        size_t k;

        must(r == 0 || r == 1);
        if (net_key_list_find(j, KEY, small, sizeof(small)) == 1)
                must(r == 1);
        if (r == 0)
                return;
        must(is_terminated(id, sizeof(id)) && is_id(id));
        json_array_foreach(json_object_get(j, "Keys"), k, v)
        {
                const char *name = member(v, "Name"), *vid = member(v, "Id");

                found = found || (name && vid && !strcmp(name, KEY) && !strcmp(vid, id));
        }
        must(found);
}

static void judge_key_gen(json_t *j)
{
        char id[NET_IPNS_NAME_MAX + 1];
        int r = net_key_gen_id(j, id, sizeof(id));

        must(r == 0 || r == -EBADMSG);
        must(r < 0 || (is_terminated(id, sizeof(id)) && is_id(id) && !strcmp(id, member(j, "Id"))));
}

static void judge_publish(json_t *j, const char *rootstr)
{
        char want[CID_MAX_STR + 8];
        const char *v = "?";

        (void)snprintf(want, sizeof(want), "/ipfs/%s", rootstr);
        if (net_publish_confirms(j, rootstr, &v))
                must(v && strcmp(v, want) == 0);
        must(v == member(j, "Value"));
}

static void judge_resolve(json_t *j)
{
        char s[CID_MAX_STR];
        const char *path = "?";
        struct cid c, back;
        int r = net_resolve_answer(j, &c, &path);

        must(path == member(j, "Path"));
        must(r == 0 || r == -EBADMSG);
        if (r < 0)
                return;
        must(strncmp(path, "/ipfs/", 6) == 0);
        (void)cid_to_string(&c, s);
        must(cid_parse(s, strlen(s), &back) >= 0 && cid_equal(&c, &back));
}

static void judge_json(enum judge which, const struct buf *b, const char *rootstr)
{
        json_t *j = net_json_answer(b);
        const char *m;

        switch (which) {
        case J_RPC_MESSAGE:
                m = net_rpc_message(j);
                must(!m || (j && strlen(m) < b->len));
                break;
        case J_KEY_LIST:
                judge_key_list(j);
                break;
        case J_KEY_GEN:
                judge_key_gen(j);
                break;
        case J_PUBLISH:
                judge_publish(j, rootstr);
                break;
        default:
                judge_resolve(j);
                break;
        }
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const long statuses[] = { 400, 500, 200, 404 };
        char rootstr[CID_MAX_STR];
        enum judge which;
        struct cid want;
        struct buf b;
        json_t *j;

        if (size == 0 || cid_parse(ROOT, strlen(ROOT), &want) < 0)
                return 0;
        (void)cid_to_string(&want, rootstr);
        which = (enum judge)(data[0] % N_JUDGES);
        buf_init(&b, size);
        if (size > 1 && buf_append(&b, data + 1, size - 1) < 0)
                goto out; /* out of memory (allocation-failure runs) */
        switch (which) {
        case J_STAT:
                j = net_json_answer(&b);
                must(!net_stat_answer_has(&b, &want, ROOT_LEN) ||
                     (names(member(j, "Key"), &want) &&
                      json_integer_value(json_object_get(j, "Size")) == ROOT_LEN));
                json_decref(j);
                break;
        case J_PUT:
                judge_put(&b, &want);
                break;
        case J_ADD:
                must(!net_add_answer_names(&b, &want) || add_names(&b, &want));
                break;
        case J_PINS:
                must(!net_pins_answer_names(&b, &want) || pins_name(&b, &want));
                break;
        case J_REFUSAL:
                judge_refusal(&b, statuses[(data[0] / N_JUDGES) % 4]);
                break;
        case J_PIN_STATUS:
                judge_pin_status(&b);
                break;
        case J_PIN_RESULTS:
                judge_pin_results(&b);
                break;
        case J_CLUSTER_MESSAGE:
        case J_CLUSTER_PEERS:
                judge_cluster(&b, rootstr);
                break;
        default:
                judge_json(which, &b, rootstr);
                break;
        }
out:
        buf_done(&b);
        return 0;
}
