/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PRSM's content formats, as its Python client writes them (prsm/core/ipfs_sharding.py and
 * the model/dataset packages of its IPFS client), decoded into a layout of verified parts:
 *
 * - a shard manifest: {"original_size", "original_hash", "shard_size", "shards": [{"index",
 *   "cid", "size", "hash"}], ...}; the file is the shards' contents in index order, each a
 *   UnixFS file of its own with the sha256 `hash`;
 * - a JSON wrapper: {"model_data": HEX, "metadata": {..., "data_hash"}} or {"data": HEX,
 *   "provenance" (or "metadata"): {..., "data_hash"}}; the file is the decoded hex. The hex
 *   is never copied out of the wrapper: its place in the wrapper's bytes (two per byte, no
 *   escapes) is kept, so reads decode the wrapper's blocks in place.
 *
 * Pure: no I/O. The input is hostile (fuzz_prsm_formats): every member is checked for type
 * and range, shard indexes must be 0..n-1, sizes must add up to original_size, and a wrapper's
 * hex string must be found exactly once in the raw bytes. What it does not do: fetch or hash
 * anything (src/fs/prsmfile.c does, as the file is read).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prsmfs/prsm.h"

static int fail(char *err, size_t err_size, const char *fmt, ...) _printf_(3, 4);

static int fail(char *err, size_t err_size, const char *fmt, ...)
{
        va_list ap;

        if (err && err_size) {
                va_start(ap, fmt);
                (void)vsnprintf(err, err_size, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static bool is_hex_digit(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_val(unsigned char c)
{
        return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* s is prefix followed by exactly n hex digits */
static bool is_hex_after(const char *s, const char *prefix, size_t n)
{
        size_t len = strlen(s), plen = strlen(prefix);

        if (len != plen + n || strncmp(s, prefix, plen) != 0)
                return false;
        for (size_t i = plen; i < len; i++)
                if (!is_hex_digit((unsigned char)s[i]))
                        return false;
        return true;
}

const char *prsm_cid_placeholder(const char *s)
{
        if (is_hex_after(s, "Qm", 44))
                return "Qm";
        if (is_hex_after(s, "bafybeig", 50))
                return "bafybeig";
        return NULL;
}

int prsm_hex_decode(const uint8_t *hex, size_t n_bytes, uint8_t *ret)
{
        for (size_t i = 0; i < n_bytes; i++) {
                unsigned char a = hex[2 * i], b = hex[2 * i + 1];

                if (!is_hex_digit(a) || !is_hex_digit(b))
                        return -EBADMSG;
                ret[i] = (uint8_t)(hex_val(a) << 4 | hex_val(b));
        }
        return 0;
}

/* A sha256 as 64 hex digits (either case). */
static int sha256_arg(json_t *j, uint8_t ret[32])
{
        const char *s = json_string_value(j);

        if (!s || json_string_length(j) != 64)
                return -EBADMSG;
        return prsm_hex_decode((const uint8_t *)s, 32, ret);
}

/* A non-negative integer member (Python writes ints; a float is refused). */
static int uint_arg(json_t *j, uint64_t *ret)
{
        if (!json_is_integer(j) || json_integer_value(j) < 0)
                return -EBADMSG;
        *ret = (uint64_t)json_integer_value(j);
        return 0;
}

void prsm_layout_done(struct prsm_layout *l)
{
        if (!l)
                return;
        free(l->parts);
        free(l->meta);
        *l = (struct prsm_layout){ 0 };
}

/* The members other than skip (and, for a manifest, "shards") as a compact JSON object. */
static int meta_of(json_t *obj, const char *skip, char **ret)
{
        json_t *copy = json_deep_copy(obj);
        char *s;

        if (!copy)
                return -ENOMEM;
        if (skip)
                (void)json_object_del(copy, skip); /* absent is fine */
        s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(copy);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int parse_manifest(json_t *root, struct prsm_layout *l, char *err, size_t err_size)
{
        json_t *shards = json_object_get(root, "shards");
        uint64_t shard_size, total = 0;
        size_t n = json_array_size(shards);
        int r;

        l->kind = PRSM_FORMAT_MANIFEST;
        if (uint_arg(json_object_get(root, "original_size"), &l->size) < 0)
                return fail(err, err_size, "original_size is not a non-negative integer");
        if (uint_arg(json_object_get(root, "shard_size"), &shard_size) < 0 || shard_size == 0)
                return fail(err, err_size, "shard_size is not a positive integer");
        if (sha256_arg(json_object_get(root, "original_hash"), l->whole_sha256) < 0)
                return fail(err, err_size, "original_hash is not 64 hex digits");
        l->has_whole = true;
        if (!json_is_array(shards) || n == 0)
                return fail(err, err_size, "shards is not a non-empty array");
        if (n > PRSM_SHARDS_MAX)
                return fail(err, err_size, "%zu shards, more than %u", n, PRSM_SHARDS_MAX);
        l->parts = calloc(n, sizeof(*l->parts));
        if (!l->parts)
                return -ENOMEM;
        l->n_parts = n;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(shards, i);
                const char *cid = json_string_value(json_object_get(s, "cid"));
                struct prsm_part p = { 0 };
                uint64_t index;

                if (!json_is_object(s) || uint_arg(json_object_get(s, "index"), &index) < 0 ||
                    index >= n)
                        return fail(err, err_size, "shard %zu: index missing or not in 0..%zu", i,
                                    n - 1);
                if (l->parts[index].size || l->parts[index].cid.len)
                        return fail(err, err_size, "shard index %" PRIu64 " appears twice", index);
                if (!cid || prsm_cid_placeholder(cid) || cid_parse(cid, strlen(cid), &p.cid) < 0)
                        return fail(err, err_size, "shard %" PRIu64 ": '%.80s' is not a CID", index,
                                    cid ? cid : "");
                if (uint_arg(json_object_get(s, "size"), &p.size) < 0 || p.size == 0 ||
                    p.size > shard_size)
                        return fail(err, err_size,
                                    "shard %" PRIu64 ": size is not in 1..shard_size", index);
                if (sha256_arg(json_object_get(s, "hash"), p.sha256) < 0)
                        return fail(err, err_size, "shard %" PRIu64 ": hash is not 64 hex digits",
                                    index);
                l->parts[index] = p;
        }
        for (size_t i = 0; i < n; i++) {
                l->parts[i].offset = total;
                if (l->parts[i].size > UINT64_MAX - total)
                        return fail(err, err_size, "shard sizes overflow");
                total += l->parts[i].size;
        }
        if (total != l->size)
                return fail(err, err_size,
                            "shard sizes add up to %" PRIu64 ", not original_size %" PRIu64, total,
                            l->size);
        r = meta_of(root, "shards", &l->meta);
        return r;
}

/*
 * Where the hex value of member key starts in the raw bytes: the one place where "key",
 * optional whitespace, ':', whitespace and '"' are followed by exactly the value's bytes and
 * a closing '"'. Hex digits need no escapes, so jansson's decoded value is the raw text.
 */
static int find_hex(const uint8_t *p, size_t len, const char *key, const char *val, size_t vlen,
                    uint64_t *ret)
{
        size_t klen = strlen(key), found = 0;
        uint64_t at = 0;

        for (size_t i = 0; i + klen + 2 <= len; i++) {
                size_t j;

                if (p[i] != '"' || memcmp(p + i + 1, key, klen) != 0 || p[i + klen + 1] != '"')
                        continue;
                j = i + klen + 2;
                while (j < len && (p[j] == ' ' || p[j] == '\t' || p[j] == '\n' || p[j] == '\r'))
                        j++;
                if (j >= len || p[j++] != ':')
                        continue;
                while (j < len && (p[j] == ' ' || p[j] == '\t' || p[j] == '\n' || p[j] == '\r'))
                        j++;
                if (j >= len || p[j++] != '"' || len - j < vlen + 1 ||
                    memcmp(p + j, val, vlen) != 0 || p[j + vlen] != '"')
                        continue;
                at = j;
                found++;
        }
        if (found != 1)
                return -EBADMSG;
        *ret = at;
        return 0;
}

static int parse_wrapper(const uint8_t *raw, size_t len, json_t *root, const char *key,
                         json_t *meta, struct prsm_layout *l, char *err, size_t err_size)
{
        json_t *hex = json_object_get(root, key);
        const char *s = json_string_value(hex);
        size_t n = json_string_length(hex);
        struct prsm_part *part;

        l->kind = PRSM_FORMAT_WRAPPER;
        l->is_hex = true;
        if (n % 2)
                return fail(err, err_size, "%s has an odd number of hex digits", key);
        for (size_t i = 0; i < n; i++)
                if (!is_hex_digit((unsigned char)s[i]))
                        return fail(err, err_size, "%s is not hex (at character %zu)", key, i);
        l->size = n / 2;
        part = calloc(1, sizeof(*part));
        if (!part)
                return -ENOMEM;
        l->parts = part;
        l->n_parts = 1;
        part->size = l->size;
        if (sha256_arg(json_object_get(meta, "data_hash"), part->sha256) < 0)
                return fail(err, err_size, "data_hash is not 64 hex digits");
        if (find_hex(raw, len, key, s, n, &part->src_off) < 0)
                return fail(err, err_size, "cannot place %s in the wrapper's bytes", key);
        return meta_of(meta, NULL, &l->meta);
}

int prsm_format_parse(const uint8_t *p, size_t len, const struct cid *self, struct prsm_layout *ret,
                      char *err, size_t err_size)
{
        struct prsm_layout l = { 0 };
        json_error_t jerr;
        json_t *root, *meta = NULL;
        const char *key = NULL;
        int r;

        if (err && err_size)
                err[0] = '\0';
        if (len > PRSM_FORMAT_JSON_MAX)
                return -ENOMSG;
        root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(root)) {
                json_decref(root);
                return -ENOMSG;
        }
        if (json_object_get(root, "original_size") && json_object_get(root, "original_hash") &&
            json_object_get(root, "shard_size") && json_object_get(root, "shards")) {
                r = parse_manifest(root, &l, err, err_size);
                goto out;
        }
        /* PRSM's client: models are model_data + metadata, datasets data + provenance */
        if (json_is_string(json_object_get(root, "model_data"))) {
                key = "model_data";
                meta = json_object_get(root, "metadata");
        } else if (json_is_string(json_object_get(root, "data"))) {
                key = "data";
                meta = json_object_get(root, "provenance");
                if (!json_is_object(meta))
                        meta = json_object_get(root, "metadata");
        }
        if (!key || !json_is_object(meta) || !json_object_get(meta, "data_hash")) {
                r = -ENOMSG;
                goto out;
        }
        r = parse_wrapper(p, len, root, key, meta, &l, err, err_size);
        if (r >= 0)
                l.parts[0].cid = *self; /* the hex is read from the wrapper itself */
out:
        json_decref(root);
        if (r < 0) {
                prsm_layout_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* ---- the layout as the index keeps it ---- */

static void hex_of(const uint8_t *p, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

int prsm_layout_encode(const struct prsm_layout *l, char **ret)
{
        json_t *o, *parts, *meta;
        char h[65], c[CID_MAX_STR];
        char *s;

        meta = json_loads(l->meta ? l->meta : "{}", 0, NULL);
        parts = json_array();
        o = json_pack("{s:i, s:s, s:I, s:b, s:o, s:o}", "v", 1, "kind",
                      l->kind == PRSM_FORMAT_MANIFEST ? "manifest" : "wrapper", "size",
                      (json_int_t)l->size, "hex", l->is_hex, "parts", parts ? parts : json_null(),
                      "meta", meta ? meta : json_null());
        if (!o || !parts || !meta) {
                json_decref(o);
                return -ENOMEM;
        }
        if (l->has_whole) {
                hex_of(l->whole_sha256, 32, h);
                if (json_object_set_new(o, "sha256", json_string(h)) < 0)
                        goto nomem;
        }
        for (size_t i = 0; i < l->n_parts; i++) {
                const struct prsm_part *pt = &l->parts[i];

                hex_of(pt->sha256, 32, h);
                if (json_array_append_new(
                            parts, json_pack("[s, I, I, s]", cid_to_string(&pt->cid, c),
                                             (json_int_t)pt->size, (json_int_t)pt->src_off, h)) < 0)
                        goto nomem;
        }
        s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
nomem:
        json_decref(o);
        return -ENOMEM;
}

int prsm_layout_decode(const char *s, struct prsm_layout *ret)
{
        struct prsm_layout l = { 0 };
        json_t *o = json_loads(s, 0, NULL), *parts = json_object_get(o, "parts");
        const char *kind = json_string_value(json_object_get(o, "kind"));
        uint64_t total = 0;
        int r = -EBADMSG;

        if (!kind || !json_is_array(parts) || json_array_size(parts) == 0 ||
            json_array_size(parts) > PRSM_SHARDS_MAX ||
            uint_arg(json_object_get(o, "size"), &l.size) < 0)
                goto out;
        l.kind = strcmp(kind, "manifest") == 0 ? PRSM_FORMAT_MANIFEST : PRSM_FORMAT_WRAPPER;
        l.is_hex = json_is_true(json_object_get(o, "hex"));
        if (json_object_get(o, "sha256")) {
                if (sha256_arg(json_object_get(o, "sha256"), l.whole_sha256) < 0)
                        goto out;
                l.has_whole = true;
        }
        l.n_parts = json_array_size(parts);
        l.parts = calloc(l.n_parts, sizeof(*l.parts));
        if (!l.parts) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < l.n_parts; i++) {
                json_t *a = json_array_get(parts, i);
                const char *cid = json_string_value(json_array_get(a, 0));
                struct prsm_part *pt = &l.parts[i];

                if (!cid || cid_parse(cid, strlen(cid), &pt->cid) < 0 ||
                    uint_arg(json_array_get(a, 1), &pt->size) < 0 ||
                    uint_arg(json_array_get(a, 2), &pt->src_off) < 0 ||
                    sha256_arg(json_array_get(a, 3), pt->sha256) < 0 ||
                    pt->size > UINT64_MAX - total ||
                    (l.is_hex &&
                     (pt->size > UINT64_MAX / 2 || pt->src_off > UINT64_MAX - 2 * pt->size)))
                        goto out;
                pt->offset = total;
                total += pt->size;
        }
        if (total != l.size || !json_is_object(json_object_get(o, "meta")))
                goto out;
        l.meta = json_dumps(json_object_get(o, "meta"), JSON_COMPACT | JSON_SORT_KEYS);
        r = l.meta ? 0 : -ENOMEM;
out:
        json_decref(o);
        if (r < 0) {
                prsm_layout_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

size_t prsm_layout_find(const struct prsm_layout *l, uint64_t off)
{
        size_t lo = 0, hi = l->n_parts;

        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;

                if (l->parts[mid].offset <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

int prsm_layout_meta(const struct prsm_layout *l, const char *key, char **ret, size_t *ret_len)
{
        json_t *o = json_loads(l->meta ? l->meta : "{}", 0, NULL), *v;
        char *s = NULL;
        int r = 0;

        if (!o)
                return -ENOMEM;
        v = key ? json_object_get(o, key) : o;
        if (!v)
                r = -ENODATA;
        else if (json_is_string(v))
                s = strdup(json_string_value(v));
        else
                s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (r >= 0 && !s)
                r = -ENOMEM;
        json_decref(o);
        if (r < 0)
                return r;
        *ret = s;
        *ret_len = strlen(s);
        return 0;
}
