/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared helpers for the unixfs tests: Kubo's deterministic test data and a builder run. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "prsmfs/hash.h"
#include "prsmfs/unixfs.h"

/* Kubo test/cli/testutils/random_deterministic.go: ChaCha20 keystream, key = SHA-256(seed),
 * zero nonce, counter 0 (OpenSSL's 16-byte IV = LE counter || nonce). */
struct chacha {
        EVP_CIPHER_CTX *ctx;
};

static inline void chacha_init(struct chacha *s, const char *seed)
{
        uint8_t key[32], iv[16] = { 0 };

        hash_sha256(seed, strlen(seed), key);
        s->ctx = EVP_CIPHER_CTX_new();
        if (!s->ctx || EVP_EncryptInit_ex(s->ctx, EVP_chacha20(), NULL, key, iv) != 1)
                abort();
}

static inline void chacha_fill(struct chacha *s, uint8_t *out, size_t len)
{
        int n = 0;

        memset(out, 0, len);
        if (EVP_EncryptUpdate(s->ctx, out, &n, out, (int)len) != 1 || (size_t)n != len)
                abort();
}

static inline void chacha_done(struct chacha *s)
{
        EVP_CIPHER_CTX_free(s->ctx);
}

static inline int count_block(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        size_t *n = ud;

        (void)cid;
        (void)p;
        (void)len;
        (*n)++;
        return 0;
}

/* Builds `total` bytes produced by gen (NULL: zeros) and returns the root CID string. */
static inline void build_stream(const struct unixfs_params *p, uint64_t total, const char *seed,
                                char out[CID_MAX_STR], uint64_t *ret_tsize)
{
        struct unixfs_builder *b;
        struct chacha s;
        uint8_t *buf = malloc(1 << 20);
        size_t blocks = 0;
        struct cid root;
        uint64_t size;

        if (!buf || unixfs_builder_new(p, count_block, &blocks, &b) < 0)
                abort();
        if (seed)
                chacha_init(&s, seed);
        else
                memset(buf, 0, 1 << 20);
        for (uint64_t done = 0; done < total;) {
                size_t n = total - done > (1 << 20) ? (1 << 20) : (size_t)(total - done);

                if (seed)
                        chacha_fill(&s, buf, n);
                if (unixfs_builder_write(b, buf, n) < 0)
                        abort();
                done += n;
        }
        if (unixfs_builder_finish(b, &root, &size, ret_tsize) < 0 || size != total)
                abort();
        (void)cid_to_string(&root, out);
        unixfs_builder_free(b);
        if (seed)
                chacha_done(&s);
        free(buf);
}
