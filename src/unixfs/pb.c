/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dag-pb and UnixFS Data protobuf codecs.
 *
 * Decoding is strict where go-codec-dagpb is (field order inside links, duplicates, unknown
 * fields, wire types, a link without Hash, a Hash that is not a CID) and lenient where the
 * spec allows (Data before Links: the block's hash was verified already). Encoding is the
 * canonical form Kubo writes: links first (Hash, Name, Tsize), then Data; UnixFS fields in
 * field-number order, blocksizes unpacked.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/unixfs.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

int unixfs_pb_varint_read(struct cursor *c, uint64_t *ret)
{
        uint64_t v = 0;

        for (size_t i = 0; i < 10; i++) {
                uint8_t b;

                if (c->pos + i >= c->len)
                        return -EBADMSG;
                b = c->p[c->pos + i];
                if (i == 9 && b > 1)
                        return -EBADMSG; /* beyond 64 bits */
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        c->pos += i + 1;
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

size_t unixfs_pb_varint_write(uint64_t v, uint8_t out[10])
{
        size_t n = 0;

        do {
                out[n] = (uint8_t)(v & 0x7f);
                v >>= 7;
                if (v)
                        out[n] |= 0x80;
                n++;
        } while (v);
        return n;
}

static int read_key(struct cursor *c, uint64_t *field, unsigned *wt)
{
        uint64_t key;
        int r = unixfs_pb_varint_read(c, &key);

        if (r < 0)
                return r;
        *field = key >> 3;
        *wt = (unsigned)(key & 7);
        return 0;
}

static int read_len(struct cursor *c, struct bytes_view *ret)
{
        uint64_t len;
        int r = unixfs_pb_varint_read(c, &len);

        if (r < 0)
                return r;
        if (len > cursor_left(c))
                return -EBADMSG;
        return cursor_get_bytes(c, (size_t)len, ret);
}

static int put_varint(struct buf *out, uint64_t v)
{
        uint8_t tmp[10];

        return buf_append(out, tmp, unixfs_pb_varint_write(v, tmp));
}

static int put_key(struct buf *out, unsigned field, unsigned wt)
{
        return put_varint(out, ((uint64_t)field << 3) | wt);
}

static int put_bytes(struct buf *out, unsigned field, const void *p, size_t len)
{
        int r = put_key(out, field, WT_LEN);

        if (r >= 0)
                r = put_varint(out, len);
        if (r >= 0)
                r = buf_append(out, p, len);
        return r;
}

static size_t varint_len(uint64_t v)
{
        size_t n = 1;

        while (v >>= 7)
                n++;
        return n;
}

/* ---- dag-pb ---- */

static int decode_link(struct bytes_view v, struct unixfs_pb_link *l)
{
        struct cursor c;
        uint64_t field, last = 0;
        unsigned wt;
        bool has_hash = false;
        int r;

        cursor_init(&c, v.p, v.len);
        *l = (struct unixfs_pb_link){ 0 };
        while (!cursor_eof(&c)) {
                struct bytes_view b;

                r = read_key(&c, &field, &wt);
                if (r < 0)
                        return r;
                if (field <= last)
                        return -EBADMSG; /* out of order or duplicate */
                last = field;
                if (field == 1 && wt == WT_LEN) {
                        r = read_len(&c, &b);
                        if (r >= 0)
                                r = cid_from_bytes(b.p, b.len, &l->cid);
                        if (r < 0)
                                return -EBADMSG;
                        has_hash = true;
                } else if (field == 2 && wt == WT_LEN) {
                        r = read_len(&c, &l->name);
                        if (r < 0)
                                return r;
                        l->has_name = true;
                } else if (field == 3 && wt == WT_VARINT) {
                        r = unixfs_pb_varint_read(&c, &l->tsize);
                        if (r < 0)
                                return r;
                        l->has_tsize = true;
                } else
                        return -EBADMSG;
        }
        return has_hash ? 0 : -EBADMSG;
}

int unixfs_pb_decode(const uint8_t *p, size_t len, struct unixfs_pb_node *ret)
{
        struct unixfs_pb_node n = { 0 };
        struct cursor c;
        size_t cap = 0;
        int r;

        if (len > CID_MAX_BLOCK)
                return -E2BIG;
        cursor_init(&c, p, len);
        while (!cursor_eof(&c)) {
                struct bytes_view b;
                uint64_t field;
                unsigned wt;

                r = read_key(&c, &field, &wt);
                if (r < 0)
                        goto fail;
                if (wt != WT_LEN || (field != 1 && field != 2)) {
                        r = -EBADMSG;
                        goto fail;
                }
                r = read_len(&c, &b);
                if (r < 0)
                        goto fail;
                if (field == 1) {
                        if (n.has_data) {
                                r = -EBADMSG; /* duplicate Data */
                                goto fail;
                        }
                        n.data = b;
                        n.has_data = true;
                        continue;
                }
                if (n.n_links == cap) {
                        struct unixfs_pb_link *nl;

                        if (cap >= UNIXFS_MAX_LINKS) {
                                r = -E2BIG;
                                goto fail;
                        }
                        cap = cap ? cap * 2 : 8;
                        nl = reallocarray(n.links, cap, sizeof(*nl));
                        if (!nl) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        n.links = nl;
                }
                r = decode_link(b, &n.links[n.n_links]);
                if (r < 0)
                        goto fail;
                n.n_links++;
        }
        *ret = n;
        return 0;
fail:
        free(n.links);
        return r;
}

void unixfs_pb_node_done(struct unixfs_pb_node *n)
{
        if (!n)
                return;
        free(n->links);
        n->links = NULL;
        n->n_links = 0;
}

int unixfs_pb_encode(const struct unixfs_pb_node *n, struct buf *out)
{
        int r = 0;

        for (size_t i = 0; i < n->n_links && r >= 0; i++) {
                const struct unixfs_pb_link *l = &n->links[i];
                size_t inner = 1 + varint_len(l->cid.len) + l->cid.len;

                if (l->has_name)
                        inner += 1 + varint_len(l->name.len) + l->name.len;
                if (l->has_tsize)
                        inner += 1 + varint_len(l->tsize);
                r = put_key(out, 2, WT_LEN);
                if (r >= 0)
                        r = put_varint(out, inner);
                if (r >= 0)
                        r = put_bytes(out, 1, l->cid.bin, l->cid.len);
                if (r >= 0 && l->has_name)
                        r = put_bytes(out, 2, l->name.p, l->name.len);
                if (r >= 0 && l->has_tsize) {
                        r = put_key(out, 3, WT_VARINT);
                        if (r >= 0)
                                r = put_varint(out, l->tsize);
                }
        }
        if (r >= 0 && n->has_data)
                r = put_bytes(out, 1, n->data.p, n->data.len);
        return r;
}

/* ---- UnixFS Data ---- */

int unixfs_data_decode(const uint8_t *p, size_t len, struct unixfs_data *ret)
{
        struct unixfs_data d = { 0 };
        bool has_type = false;
        struct cursor c;
        size_t cap = 0;
        uint64_t v;
        int r;

        cursor_init(&c, p, len);
        while (!cursor_eof(&c)) {
                uint64_t field;
                unsigned wt;

                r = read_key(&c, &field, &wt);
                if (r < 0)
                        goto fail;
                r = -EBADMSG;
                switch (field) {
                case 1:
                        if (wt != WT_VARINT || has_type ||
                            (r = unixfs_pb_varint_read(&c, &v)) < 0 || v > UNIXFS_HAMT_SHARD) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        d.type = (enum unixfs_type)v;
                        has_type = true;
                        break;
                case 2:
                        if (wt != WT_LEN || d.has_data || (r = read_len(&c, &d.data)) < 0)
                                goto fail;
                        d.has_data = true;
                        break;
                case 3:
                        if (wt != WT_VARINT || d.has_filesize ||
                            (r = unixfs_pb_varint_read(&c, &d.filesize)) < 0)
                                goto fail;
                        d.has_filesize = true;
                        break;
                case 4: {
                        uint64_t *nb;

                        if (wt != WT_VARINT || (r = unixfs_pb_varint_read(&c, &v)) < 0)
                                goto fail;
                        if (d.n_blocksizes == cap) {
                                if (cap >= UNIXFS_MAX_LINKS) {
                                        r = -E2BIG;
                                        goto fail;
                                }
                                cap = cap ? cap * 2 : 16;
                                nb = reallocarray(d.blocksizes, cap, sizeof(*nb));
                                if (!nb) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                d.blocksizes = nb;
                        }
                        d.blocksizes[d.n_blocksizes++] = v;
                        break;
                }
                case 5:
                        if (wt != WT_VARINT || d.has_hash_type ||
                            (r = unixfs_pb_varint_read(&c, &d.hash_type)) < 0)
                                goto fail;
                        d.has_hash_type = true;
                        break;
                case 6:
                        if (wt != WT_VARINT || d.has_fanout ||
                            (r = unixfs_pb_varint_read(&c, &d.fanout)) < 0)
                                goto fail;
                        d.has_fanout = true;
                        break;
                case 7:
                        if (wt != WT_VARINT || d.has_mode ||
                            (r = unixfs_pb_varint_read(&c, &v)) < 0 || v > UINT32_MAX) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        d.mode = (uint32_t)v;
                        d.has_mode = true;
                        break;
                case 8: {
                        struct bytes_view m;
                        struct cursor mc;
                        bool has_sec = false;

                        if (wt != WT_LEN || d.has_mtime || (r = read_len(&c, &m)) < 0)
                                goto fail;
                        cursor_init(&mc, m.p, m.len);
                        while (!cursor_eof(&mc)) {
                                uint64_t f;
                                unsigned w;
                                struct bytes_view nv;

                                if (read_key(&mc, &f, &w) < 0) {
                                        r = -EBADMSG;
                                        goto fail;
                                }
                                if (f == 1 && w == WT_VARINT && !has_sec &&
                                    unixfs_pb_varint_read(&mc, &v) >= 0) {
                                        d.mtime_sec = (int64_t)v; /* two's complement */
                                        has_sec = true;
                                } else if (f == 2 && w == WT_I32 && !d.mtime_nsec &&
                                           cursor_get_bytes(&mc, 4, &nv) >= 0) {
                                        d.mtime_nsec = (uint32_t)nv.p[0] | (uint32_t)nv.p[1] << 8 |
                                                       (uint32_t)nv.p[2] << 16 |
                                                       (uint32_t)nv.p[3] << 24;
                                        /* a present 0, or a second or more, is invalid */
                                        if (d.mtime_nsec == 0 || d.mtime_nsec > 999999999) {
                                                r = -EBADMSG;
                                                goto fail;
                                        }
                                } else {
                                        r = -EBADMSG;
                                        goto fail;
                                }
                        }
                        if (!has_sec) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        d.has_mtime = true;
                        break;
                }
                default:
                        goto fail; /* unknown field */
                }
        }
        if (!has_type) {
                r = -EBADMSG;
                goto fail;
        }
        *ret = d;
        return 0;
fail:
        free(d.blocksizes);
        return r;
}

void unixfs_data_done(struct unixfs_data *d)
{
        if (!d)
                return;
        free(d->blocksizes);
        d->blocksizes = NULL;
        d->n_blocksizes = 0;
}

int unixfs_data_encode(const struct unixfs_data *d, struct buf *out)
{
        int r = put_key(out, 1, WT_VARINT);

        if (r >= 0)
                r = put_varint(out, d->type);
        if (r >= 0 && d->has_data)
                r = put_bytes(out, 2, d->data.p, d->data.len);
        if (r >= 0 && d->has_filesize && (r = put_key(out, 3, WT_VARINT)) >= 0)
                r = put_varint(out, d->filesize);
        for (size_t i = 0; r >= 0 && i < d->n_blocksizes; i++)
                if ((r = put_key(out, 4, WT_VARINT)) >= 0)
                        r = put_varint(out, d->blocksizes[i]);
        if (r >= 0 && d->has_hash_type && (r = put_key(out, 5, WT_VARINT)) >= 0)
                r = put_varint(out, d->hash_type);
        if (r >= 0 && d->has_fanout && (r = put_key(out, 6, WT_VARINT)) >= 0)
                r = put_varint(out, d->fanout);
        if (r >= 0 && d->has_mode && (r = put_key(out, 7, WT_VARINT)) >= 0)
                r = put_varint(out, d->mode);
        if (r >= 0 && d->has_mtime) {
                uint8_t m[1 + 10 + 1 + 4];
                size_t n = 0;

                m[n++] = 0x08;
                n += unixfs_pb_varint_write((uint64_t)d->mtime_sec, m + n);
                if (d->mtime_nsec) {
                        m[n++] = 0x15;
                        m[n++] = (uint8_t)d->mtime_nsec;
                        m[n++] = (uint8_t)(d->mtime_nsec >> 8);
                        m[n++] = (uint8_t)(d->mtime_nsec >> 16);
                        m[n++] = (uint8_t)(d->mtime_nsec >> 24);
                }
                r = put_bytes(out, 8, m, n);
        }
        return r;
}

void unixfs_data_set_meta(struct unixfs_data *d, const struct unixfs_meta *meta)
{
        d->has_mode = meta && meta->has_mode;
        d->mode = d->has_mode ? meta->mode : 0;
        d->has_mtime = meta && meta->has_mtime;
        d->mtime_sec = d->has_mtime ? meta->mtime_sec : 0;
        d->mtime_nsec = d->has_mtime ? meta->mtime_nsec : 0;
}

/* ---- node ---- */

static bool fanout_ok(uint64_t f)
{
        return f >= 8 && f <= 1024 && (f & (f - 1)) == 0;
}

int unixfs_node_decode(const struct cid *cid, const uint8_t *block, size_t len,
                       struct unixfs_node *ret)
{
        struct unixfs_node n = { .cid = *cid };
        int r;

        if (cid->codec == CID_CODEC_RAW) {
                n.is_raw = true;
                n.raw = (struct bytes_view){ .p = block, .len = len };
                *ret = n;
                return 0;
        }
        if (cid->codec != CID_CODEC_DAG_PB)
                return -EOPNOTSUPP;
        r = unixfs_pb_decode(block, len, &n.pb);
        if (r < 0)
                return r;
        if (!n.pb.has_data) {
                r = -EBADMSG;
                goto fail;
        }
        r = unixfs_data_decode(n.pb.data.p, n.pb.data.len, &n.fs);
        if (r < 0)
                goto fail;
        r = -EBADMSG;
        switch (n.fs.type) {
        case UNIXFS_FILE:
        case UNIXFS_RAW:
                if (n.fs.n_blocksizes != n.pb.n_links)
                        goto fail;
                for (size_t i = 0; i < n.pb.n_links; i++)
                        if (n.pb.links[i].name.len)
                                goto fail;
                break;
        case UNIXFS_DIRECTORY:
                break;
        case UNIXFS_SYMLINK:
                if (n.pb.n_links)
                        goto fail;
                break;
        case UNIXFS_HAMT_SHARD:
                if (!n.fs.has_fanout || !fanout_ok(n.fs.fanout) || n.fs.hash_type != 0x22 ||
                    n.pb.n_links > n.fs.fanout)
                        goto fail;
                break;
        default:
                goto fail; /* Metadata: reserved */
        }
        *ret = n;
        return 0;
fail:
        unixfs_data_done(&n.fs);
        unixfs_pb_node_done(&n.pb);
        return r;
}

void unixfs_node_done(struct unixfs_node *n)
{
        if (!n)
                return;
        unixfs_data_done(&n->fs);
        unixfs_pb_node_done(&n->pb);
}
