/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Growable byte buffer with a hard maximum (curl's dynbuf idea): every buffer filled from
 * outside data says up front how large it may become, and growth past that is -E2BIG.
 */
#pragma once

#include "prsmfs/base.h"

struct buf {
        uint8_t *p;
        size_t len;
        size_t cap;
        size_t max; /* growth beyond this fails with -E2BIG */
};

void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer may be reused after buf_init. NULL-safe. */
void buf_done(struct buf *b);
static inline void buf_clear(struct buf *b)
{
        b->len = 0;
}
_wur_ int buf_reserve(struct buf *b, size_t extra);
/* Room for exactly extra more bytes (not rounded up): for a size known before the bytes come. */
_wur_ int buf_reserve_exact(struct buf *b, size_t extra);
_wur_ int buf_append(struct buf *b, const void *p, size_t len);
_wur_ int buf_append_byte(struct buf *b, uint8_t byte);
/* Hands the storage to the caller (who frees it); the buffer is left empty. */
uint8_t *buf_steal(struct buf *b, size_t *ret_len);
static inline struct bytes_view buf_view(const struct buf *b)
{
        return (struct bytes_view){ .p = b->p, .len = b->len };
}
