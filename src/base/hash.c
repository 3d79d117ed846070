/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prsmfs/hash.h"

#include <stdlib.h>

#include <openssl/evp.h>

struct hash_sha256_ctx {
        EVP_MD_CTX *md;
};

void hash_sha256(const void *p, size_t len, uint8_t ret[HASH_SHA256_LEN])
{
        unsigned int n = HASH_SHA256_LEN;

        /* EVP_Digest dispatches to the SHA-NI/AVX2 code paths of OpenSSL 3. */
        if (EVP_Digest(p, len, ret, &n, EVP_sha256(), NULL) != 1)
                abort(); /* cannot fail for SHA-256 with valid arguments */
}

int hash_sha256_new(struct hash_sha256_ctx **ret)
{
        struct hash_sha256_ctx *h = malloc(sizeof(*h));

        if (!h)
                return -ENOMEM;
        h->md = EVP_MD_CTX_new();
        if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
                hash_sha256_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

void hash_sha256_update(struct hash_sha256_ctx *h, const void *p, size_t len)
{
        if (EVP_DigestUpdate(h->md, p, len) != 1)
                abort(); /* only fails on programming errors */
}

void hash_sha256_final(struct hash_sha256_ctx *h, uint8_t ret[HASH_SHA256_LEN])
{
        unsigned int n = HASH_SHA256_LEN;

        if (EVP_DigestFinal_ex(h->md, ret, &n) != 1)
                abort(); /* only fails on programming errors */
}

void hash_sha256_free(struct hash_sha256_ctx *h)
{
        if (!h)
                return;
        EVP_MD_CTX_free(h->md);
        free(h);
}
