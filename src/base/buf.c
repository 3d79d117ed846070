/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prsmfs/buf.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
        *b = (struct buf){ .max = max };
}

void buf_done(struct buf *b)
{
        if (!b)
                return;
        free(b->p);
        *b = (struct buf){ .max = b->max };
}

/* Room for extra more bytes: the capacity doubles (amortized appends) unless exact. */
static int grow(struct buf *b, size_t extra, bool exact)
{
        size_t need, cap;
        uint8_t *p;

        if (size_add_overflows(b->len, extra, &need) || need > b->max)
                return -E2BIG;
        if (need <= b->cap)
                return 0;
        cap = exact ? need : b->cap ? b->cap : 64;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > b->max)
                cap = b->max;
        p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
        return grow(b, extra, false);
}

int buf_reserve_exact(struct buf *b, size_t extra)
{
        return grow(b, extra, true);
}

int buf_append(struct buf *b, const void *p, size_t len)
{
        int r;

        if (len == 0)
                return 0;
        r = buf_reserve(b, len);
        if (r < 0)
                return r;
        memcpy(b->p + b->len, p, len);
        b->len += len;
        return 0;
}

int buf_append_byte(struct buf *b, uint8_t byte)
{
        return buf_append(b, &byte, 1);
}

uint8_t *buf_steal(struct buf *b, size_t *ret_len)
{
        uint8_t *p = b->p;

        if (ret_len)
                *ret_len = b->len;
        *b = (struct buf){ .max = b->max };
        return p;
}
