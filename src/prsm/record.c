/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Signed JSON records. What is signed is the canonical encoding: the object without its "sig"
 * member, dumped by jansson with JSON_COMPACT | JSON_SORT_KEYS (no whitespace, members sorted
 * by key bytes, UTF-8 as is, '/' not escaped). Records hold only strings, integers, null and
 * objects of those, so there is no float formatting to disagree on; docs/prsm.md has the
 * rules a verifier in another language follows.
 */
#define LOG_MODULE "prsm"
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prsmfs/hash.h"
#include "prsmfs/prsm.h"

#include "prsm_internal.h"

#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)
#define RECORD_MAX  (1024 * 1024)

void prsm_hex(const uint8_t *p, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * len] = '\0';
}

int prsm_unhex(const char *s, uint8_t *out, size_t len)
{
        if (strlen(s) != 2 * len)
                return -EINVAL;
        for (size_t i = 0; i < 2 * len; i++) {
                char c = s[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

                if (d < 0)
                        return -EINVAL;
                out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | d : d << 4);
        }
        return 0;
}

static json_t *load_object(const char *json)
{
        json_t *o;

        if (!json || strlen(json) > RECORD_MAX)
                return NULL;
        o = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
        if (o && !json_is_object(o)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* The canonical encoding of o without "sig" (o is not changed). */
static char *canonical_of(json_t *o)
{
        json_t *copy = json_copy(o); /* shallow: only the top-level member goes */
        char *s;

        if (!copy)
                return NULL;
        (void)json_object_del(copy, "sig"); /* absent is fine */
        s = json_dumps(copy, CANON_FLAGS);
        json_decref(copy);
        return s;
}

int prsm_canonical(const char *json, char **ret)
{
        json_t *o = load_object(json);
        char *s;

        if (!o)
                return -EBADMSG;
        s = canonical_of(o);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int prsm_record_sign(const struct prsm_identity *id, const char *json, char **ret)
{
        uint8_t sig[PRSM_SIG_LEN];
        char sig_hex[2 * PRSM_SIG_LEN + 1];
        json_t *o = load_object(json);
        char *canon = NULL, *out = NULL;
        int r = -ENOMEM;

        if (!o)
                return -EBADMSG;
        if (json_object_set_new(o, "key", json_string(prsm_identity_key_id(id))) < 0)
                goto out;
        canon = canonical_of(o);
        if (!canon)
                goto out;
        r = prsm_identity_sign(id, canon, strlen(canon), sig);
        if (r < 0)
                goto out;
        prsm_hex(sig, sizeof(sig), sig_hex);
        r = -ENOMEM;
        if (json_object_set_new(o, "sig", json_string(sig_hex)) < 0)
                goto out;
        out = json_dumps(o, CANON_FLAGS);
        if (!out)
                goto out;
        *ret = out;
        r = 0;
out:
        free(canon);
        json_decref(o);
        return r;
}

int prsm_record_verify(const char *record, const char *key_id)
{
        uint8_t sig[PRSM_SIG_LEN];
        json_t *o = load_object(record);
        const char *key, *sig_hex;
        char *canon = NULL;
        int r;

        if (!o)
                return -EBADMSG;
        key = json_string_value(json_object_get(o, "key"));
        sig_hex = json_string_value(json_object_get(o, "sig"));
        r = -EKEYREJECTED;
        if (!key || !sig_hex || prsm_unhex(sig_hex, sig, sizeof(sig)) < 0 ||
            (key_id && strcmp(key, key_id) != 0))
                goto out;
        canon = canonical_of(o);
        r = canon ? prsm_verify(key, canon, strlen(canon), sig) : -ENOMEM;
        if (r == -EINVAL)
                r = -EKEYREJECTED; /* a key that is no key signed nothing */
out:
        free(canon);
        json_decref(o);
        return r;
}

int prsm_record_hash(const char *record, char ret[PRSM_HASH_HEX])
{
        uint8_t digest[HASH_SHA256_LEN];
        json_t *o = load_object(record);
        char *s;

        if (!o)
                return -EBADMSG;
        s = json_dumps(o, CANON_FLAGS); /* with its signature */
        json_decref(o);
        if (!s)
                return -ENOMEM;
        hash_sha256(s, strlen(s), digest);
        free(s);
        prsm_hex(digest, sizeof(digest), ret);
        return 0;
}
