/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prsmfs/base.h"

int cursor_get_bytes(struct cursor *c, size_t n, struct bytes_view *ret)
{
        if (n > cursor_left(c))
                return -EBADMSG;
        *ret = (struct bytes_view){ .p = c->p + c->pos, .len = n };
        c->pos += n;
        return 0;
}

int cursor_get_u8(struct cursor *c, uint8_t *ret)
{
        if (cursor_eof(c))
                return -EBADMSG;
        *ret = c->p[c->pos++];
        return 0;
}
