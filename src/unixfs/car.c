/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CAR v1 (ipfs.md §11.4): varint(header length) DAG-CBOR header {"roots": [...], "version":
 * 1}, then sections varint(len) CID block. The header is read with a tiny bounded CBOR
 * reader that understands just what a CAR header holds; anything else is -EBADMSG.
 * Sections are only split here; their blocks are verified by whoever consumes them.
 *
 * Streaming: every read either consumes a whole header or section or leaves the cursor where
 * it was, so a caller that keeps the unconsumed tail, appends to it and feeds it back resumes
 * exactly there. Truncated and malformed input are told apart (-EAGAIN vs -EBADMSG).
 */
#include <string.h>

#include "prsmfs/unixfs.h"

/* CBOR: major type and argument */
static int cbor_head(struct cursor *c, unsigned *major, uint64_t *arg)
{
        uint8_t b, n;
        struct bytes_view v;
        int r = cursor_get_u8(c, &b);

        if (r < 0)
                return r;
        *major = b >> 5;
        n = b & 31;
        if (n < 24) {
                *arg = n;
                return 0;
        }
        if (n > 27)
                return -EBADMSG; /* indefinite lengths are not DAG-CBOR */
        r = cursor_get_bytes(c, 1u << (n - 24), &v);
        if (r < 0)
                return r;
        *arg = 0;
        for (size_t i = 0; i < v.len; i++)
                *arg = (*arg << 8) | v.p[i];
        return 0;
}

/* A multiformats varint, telling a truncated one (-EAGAIN: every byte left says "more
 * follows") from a malformed one (-EBADMSG). Advances only on success. */
static int read_varint(struct cursor *c, uint64_t *ret)
{
        size_t left = cursor_left(c);
        int r = cid_varint_read(c, ret);

        if (r >= 0)
                return r;
        if (left >= VARINT_MAX_BYTES)
                return -EBADMSG;
        for (size_t i = 0; i < left; i++)
                if (!(c->p[c->pos + i] & 0x80))
                        return -EBADMSG;
        return -EAGAIN;
}

static int parse_roots(struct unixfs_car_reader *rd, struct cursor *c)
{
        unsigned major;
        uint64_t nroots;

        if (cbor_head(c, &major, &nroots) < 0 || major != 4 || nroots > 1024)
                return -EBADMSG;
        for (uint64_t j = 0; j < nroots; j++) {
                struct bytes_view cb;
                uint64_t tag, blen;
                struct cid cid;

                /* tag 42, bytes: 0x00 (identity multibase) + binary CID */
                if (cbor_head(c, &major, &tag) < 0 || major != 6 || tag != 42 ||
                    cbor_head(c, &major, &blen) < 0 || major != 2 || blen < 2 ||
                    blen > cursor_left(c) || cursor_get_bytes(c, (size_t)blen, &cb) < 0 ||
                    cb.p[0] != 0x00 || cid_from_bytes(cb.p + 1, cb.len - 1, &cid) < 0)
                        return -EBADMSG;
                if (rd->n_roots < ELEMENTSOF(rd->roots))
                        rd->roots[rd->n_roots++] = cid;
        }
        return 0;
}

static int parse_header(struct unixfs_car_reader *rd, struct bytes_view h)
{
        bool have_version = false, have_roots = false;
        uint64_t n, version = 0;
        unsigned major;
        struct cursor c;
        int r;

        cursor_init(&c, h.p, h.len);
        r = cbor_head(&c, &major, &n);
        if (r < 0 || major != 5 || n > 8)
                return -EBADMSG;
        for (uint64_t i = 0; i < n; i++) {
                struct bytes_view key;
                uint64_t len;

                r = cbor_head(&c, &major, &len);
                if (r < 0 || major != 3 || len > 16 || cursor_get_bytes(&c, (size_t)len, &key) < 0)
                        return -EBADMSG;
                if (key.len == 7 && memcmp(key.p, "version", 7) == 0 && !have_version) {
                        r = cbor_head(&c, &major, &version);
                        if (r < 0 || major != 0)
                                return -EBADMSG;
                        have_version = true;
                } else if (key.len == 5 && memcmp(key.p, "roots", 5) == 0 && !have_roots) {
                        r = parse_roots(rd, &c);
                        if (r < 0)
                                return r;
                        have_roots = true;
                } else
                        return -EBADMSG; /* unknown or repeated key */
        }
        if (!cursor_eof(&c) || !have_version)
                return -EBADMSG;
        if (version != 1)
                return version == 2 ? -EOPNOTSUPP : -EBADMSG; /* CARv2 pragma: {version: 2} */
        return have_roots ? 0 : -EBADMSG;
}

static int read_header(struct unixfs_car_reader *rd)
{
        struct cursor save = rd->c;
        struct bytes_view h;
        uint64_t hlen;
        int r;

        r = read_varint(&rd->c, &hlen);
        if (r < 0)
                return r;
        if (hlen == 0 || hlen > UNIXFS_CAR_MAX_HEADER) {
                rd->c = save;
                return -EBADMSG;
        }
        if (hlen > cursor_left(&rd->c)) {
                rd->c = save;
                return -EAGAIN;
        }
        r = cursor_get_bytes(&rd->c, (size_t)hlen, &h);
        if (r >= 0) {
                rd->n_roots = 0;
                r = parse_header(rd, h);
        }
        if (r < 0) {
                rd->c = save;
                return r;
        }
        rd->header_done = true;
        return 0;
}

int unixfs_car_init(struct unixfs_car_reader *rd, const uint8_t *p, size_t len)
{
        *rd = (struct unixfs_car_reader){ 0 };
        cursor_init(&rd->c, p, len);
        return read_header(rd);
}

void unixfs_car_feed(struct unixfs_car_reader *rd, const uint8_t *p, size_t len)
{
        rd->offset += rd->c.pos;
        cursor_init(&rd->c, p, len);
}

int unixfs_car_next(struct unixfs_car_reader *rd, struct cid *ret_cid, struct bytes_view *ret_block)
{
        struct cursor save, sc;
        struct bytes_view sec;
        uint64_t slen;
        struct cid cid;
        int r;

        if (!rd->header_done) {
                r = read_header(rd);
                if (r < 0)
                        return r;
        }
        if (cursor_eof(&rd->c))
                return 0;
        save = rd->c;
        r = read_varint(&rd->c, &slen);
        if (r < 0)
                return r;
        r = -EBADMSG;
        if (slen == 0 || slen > CID_MAX_BLOCK + CID_MAX_BIN)
                goto fail;
        if (slen > cursor_left(&rd->c)) {
                r = -EAGAIN;
                goto fail;
        }
        if (cursor_get_bytes(&rd->c, (size_t)slen, &sec) < 0)
                goto fail;
        cursor_init(&sc, sec.p, sec.len);
        if (cid_read(&sc, &cid) < 0)
                goto fail;
        *ret_cid = cid;
        *ret_block = (struct bytes_view){ .p = sec.p + sc.pos, .len = sec.len - sc.pos };
        return 1;
fail:
        rd->c = save;
        return r;
}

int unixfs_car_write_header(const struct cid *root, struct buf *out)
{
        uint8_t h[64 + CID_MAX_BIN], v[10];
        size_t n = 0;
        int r;

        h[n++] = 0xa2;
        h[n++] = 0x65;
        memcpy(h + n, "roots", 5);
        n += 5;
        h[n++] = 0x81;
        h[n++] = 0xd8;
        h[n++] = 0x2a;
        h[n++] = 0x58;
        h[n++] = (uint8_t)(root->len + 1);
        h[n++] = 0x00;
        memcpy(h + n, root->bin, root->len);
        n += root->len;
        h[n++] = 0x67;
        memcpy(h + n, "version", 7);
        n += 7;
        h[n++] = 0x01;
        r = buf_append(out, v, cid_varint_write(n, v));
        if (r >= 0)
                r = buf_append(out, h, n);
        return r;
}

int unixfs_car_write_block(const struct cid *cid, const uint8_t *p, size_t len, struct buf *out)
{
        uint8_t v[10];
        int r = buf_append(out, v, cid_varint_write(cid->len + len, v));

        if (r >= 0)
                r = buf_append(out, cid->bin, cid->len);
        if (r >= 0)
                r = buf_append(out, p, len);
        return r;
}
