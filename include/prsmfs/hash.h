/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SHA-256 through OpenSSL; the only place the project touches OpenSSL's digest API. */
#pragma once

#include "prsmfs/base.h"

#define HASH_SHA256_LEN 32

void hash_sha256(const void *p, size_t len, uint8_t ret[HASH_SHA256_LEN]);

/* Incremental form, for data that arrives in pieces. */
struct hash_sha256_ctx;
_wur_ int hash_sha256_new(struct hash_sha256_ctx **ret);
void hash_sha256_update(struct hash_sha256_ctx *ctx, const void *p, size_t len);
void hash_sha256_final(struct hash_sha256_ctx *ctx, uint8_t ret[HASH_SHA256_LEN]);
void hash_sha256_free(struct hash_sha256_ctx *ctx);
