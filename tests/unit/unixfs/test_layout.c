/* SPDX-License-Identifier: GPL-2.0-or-later */
/* File layouts over builder output, hostile DAGs, dag-pb/UnixFS edge cases, CAR v1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vectors.h"

struct store {
        struct cid cids[4096];
        uint8_t *blocks[4096];
        size_t lens[4096];
        size_t n;
};

static int store_put(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        struct store *s = ud;

        assert_true(s->n < 4096);
        s->cids[s->n] = *cid;
        s->blocks[s->n] = malloc(len ? len : 1);
        assert_non_null(s->blocks[s->n]);
        memcpy(s->blocks[s->n], p, len);
        s->lens[s->n++] = len;
        return 0;
}

static int store_get(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        struct store *s = ud;

        for (size_t i = 0; i < s->n; i++)
                if (cid_equal(&s->cids[i], cid)) {
                        *ret = malloc(s->lens[i] ? s->lens[i] : 1);
                        if (!*ret)
                                return -ENOMEM;
                        memcpy(*ret, s->blocks[i], s->lens[i]);
                        *ret_len = s->lens[i];
                        return 0;
                }
        return -ENOENT;
}

static void store_clear(struct store *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->blocks[i]);
        s->n = 0;
}

static const uint8_t *block_of(struct store *s, const struct cid *cid)
{
        for (size_t i = 0; i < s->n; i++)
                if (cid_equal(&s->cids[i], cid))
                        return s->blocks[i];
        return NULL;
}

/* Build data with p, lay it out, and read every byte back through the leaves. */
static void roundtrip(const struct unixfs_params *p, const uint8_t *data, size_t len)
{
        static struct store s;
        struct unixfs_builder *b;
        struct unixfs_layout l;
        struct cid root;
        uint64_t next = 0;

        assert_int_equal(unixfs_builder_new(p, store_put, &s, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, len), 0);
        assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), 0);
        assert_int_equal(l.size, len);
        for (size_t i = 0; i < l.n_leaves; i++) {
                const struct unixfs_leaf *lf = &l.leaves[i];
                const uint8_t *blk = block_of(&s, &lf->cid);

                assert_non_null(blk);
                assert_int_equal(lf->offset, next);
                assert_memory_equal(blk + lf->data_off, data + lf->offset, lf->size);
                assert_int_equal(unixfs_layout_find(&l, lf->offset), i);
                assert_int_equal(unixfs_layout_find(&l, lf->offset + lf->size - 1), i);
                next += lf->size;
        }
        assert_int_equal(next, len);
        unixfs_layout_done(&l);
        store_clear(&s);
}

static void test_layout__builder_shapes__bytes_back(void **state)
{
        static uint8_t data[200000];
        struct unixfs_params p = {
                .cid_version = 0, .raw_leaves = false, .chunk_size = 1000, .max_links = 4
        };
        struct chacha cc;

        (void)state;
        chacha_init(&cc, "layout");
        chacha_fill(&cc, data, sizeof(data));
        chacha_done(&cc);
        roundtrip(&p, data, 50 * 1000 + 17); /* depth 4, dag-pb leaves */
        p.raw_leaves = true;
        p.cid_version = 1;
        roundtrip(&p, data, 64 * 1000); /* exactly full at depth 3 */
        roundtrip(&p, data, 1);         /* single raw block */
        p.max_links = 174;
        roundtrip(&p, data, 0); /* empty */
        p.raw_leaves = false;
        roundtrip(&p, data, 999); /* single dag-pb leaf: data inline */
}

static void test_layout__identity_root__no_fetch(void **state)
{
        struct unixfs_layout l;
        struct cid id;

        (void)state;
        assert_int_equal(cid_make(1, CID_CODEC_RAW, CID_MH_IDENTITY, (const uint8_t *)"hi", 2, &id),
                         0);
        assert_int_equal(unixfs_layout_build(&id, NULL, NULL, &l), 0);
        assert_int_equal(l.size, 2);
        assert_int_equal(l.n_leaves, 1);
        unixfs_layout_done(&l);
}

static unsigned fetches;

static int counting_get(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        fetches++;
        return store_get(cid, ret, ret_len, ud);
}

/* A parent whose blocksizes lie about a (fetched) dag-pb child must be refused; a raw child
 * is taken at its parent's word without a fetch (the reader checks its length). */
static void test_layout__lying_blocksizes__ebadmsg_raw_not_fetched(void **state)
{
        static struct store s;
        static const uint8_t leaf[] = { 0x0a, 0x0b, 0x08, 0x02, 0x12, 0x05, 'h',
                                        'e',  'l',  'l',  'o',  0x18, 0x05 };
        struct unixfs_pb_link link = { .has_name = true, .has_tsize = true, .tsize = sizeof(leaf) };
        uint64_t sizes[1] = { 6 };
        struct unixfs_data d = { .type = UNIXFS_FILE,
                                 .has_filesize = true,
                                 .filesize = 6,
                                 .blocksizes = sizes,
                                 .n_blocksizes = 1 };
        struct unixfs_pb_node n = { .links = &link, .n_links = 1, .has_data = true };
        struct buf db, bb;
        struct unixfs_layout l;
        struct cid root;

        (void)state;
        assert_int_equal(
                cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, leaf, sizeof(leaf), &link.cid),
                0);
        assert_int_equal(store_put(&link.cid, leaf, sizeof(leaf), &s), 0);
        buf_init(&db, 1024);
        buf_init(&bb, 1024);
        assert_int_equal(unixfs_data_encode(&d, &db), 0);
        n.data = buf_view(&db);
        assert_int_equal(unixfs_pb_encode(&n, &bb), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len, &root), 0);
        assert_int_equal(store_put(&root, bb.p, bb.len, &s), 0);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        store_clear(&s);
        /* a missing block is reported as such */
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -ENOENT);

        /* raw children: only the root is fetched */
        {
                struct unixfs_params p = {
                        .cid_version = 1, .raw_leaves = true, .chunk_size = 100, .max_links = 174
                };
                struct unixfs_builder *b;
                uint8_t data[1000] = { 0 };

                assert_int_equal(unixfs_builder_new(&p, store_put, &s, &b), 0);
                assert_int_equal(unixfs_builder_write(b, data, sizeof(data)), 0);
                assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
                unixfs_builder_free(b);
                fetches = 0;
                assert_int_equal(unixfs_layout_build(&root, counting_get, &s, &l), 0);
                assert_int_equal(fetches, 1);
                assert_int_equal(l.n_leaves, 10);
                unixfs_layout_done(&l);
                store_clear(&s);
        }
        buf_done(&db);
        buf_done(&bb);
}

static void test_node__symlink_and_invalid_blocks(void **state)
{
        static const uint8_t symlink[] = { 0x0a, 0x07, 0x08, 0x04, 0x12, 0x03, 'f', 'o', 'o' };
        static const struct {
                const uint8_t *p;
                size_t len;
        } bad[] = {
                { (const uint8_t *)"\x0a\x00", 2 },                     /* empty Data */
                { (const uint8_t *)"\x0a\x05\x00\x01\x02\x03\x04", 7 }, /* garbage UnixFS */
                { (const uint8_t *)"", 0 },                             /* no Data at all */
                { (const uint8_t *)"\x0a\x02\x08\x09", 4 },             /* unknown type */
                { (const uint8_t *)"\x0a\x04\x08\x02\x18", 5 },         /* truncated */
                { (const uint8_t *)"\x1a\x00", 2 },                     /* unknown field */
        };
        char out[CID_MAX_STR];
        struct unixfs_node n;
        struct cid c;
        struct buf b;

        (void)state;
        assert_int_equal(
                cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, symlink, sizeof(symlink), &c), 0);
        assert_string_equal(cid_to_string(&c, out),
                            "QmTB8BaCJdCH5H3k7GrxJsxgDNmNYGGR71C58ERkivXoj5");
        assert_int_equal(unixfs_node_decode(&c, symlink, sizeof(symlink), &n), 0);
        assert_int_equal(n.fs.type, UNIXFS_SYMLINK);
        assert_int_equal(n.fs.data.len, 3);
        assert_memory_equal(n.fs.data.p, "foo", 3);
        /* canonical re-encoding is byte-identical */
        buf_init(&b, 64);
        assert_int_equal(unixfs_pb_encode(&n.pb, &b), 0);
        assert_int_equal(b.len, sizeof(symlink));
        assert_memory_equal(b.p, symlink, sizeof(symlink));
        buf_done(&b);
        unixfs_node_done(&n);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_true(unixfs_node_decode(&c, bad[i].p, bad[i].len, &n) < 0);
}

static void test_data__mtime_mode__round_trip(void **state)
{
        struct unixfs_data d = { .type = UNIXFS_FILE,
                                 .has_mode = true,
                                 .mode = 0100644,
                                 .has_mtime = true,
                                 .mtime_sec = -5,
                                 .mtime_nsec = 7 },
                           back;
        struct buf b;

        (void)state;
        buf_init(&b, 128);
        assert_int_equal(unixfs_data_encode(&d, &b), 0);
        assert_int_equal(unixfs_data_decode(b.p, b.len, &back), 0);
        assert_int_equal(back.mode, 0100644);
        assert_int_equal(back.mtime_sec, -5);
        assert_int_equal(back.mtime_nsec, 7);
        unixfs_data_done(&back);
        buf_done(&b);
        /* a present fractional 0 is invalid */
        assert_int_equal(unixfs_data_decode((const uint8_t *)"\x08\x02\x42\x07\x08\x01\x15"
                                                             "\x00\x00\x00\x00",
                                            11, &back),
                         -EBADMSG);
}

static void test_car__write_read__and_truncation(void **state)
{
        struct unixfs_car_reader rd;
        struct bytes_view blk;
        struct cid root, a, got;
        struct buf b;

        (void)state;
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "aaa", 3, &a), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "root", 4, &root), 0);
        buf_init(&b, 4096);
        assert_int_equal(unixfs_car_write_header(&root, &b), 0);
        assert_int_equal(unixfs_car_write_block(&root, (const uint8_t *)"root", 4, &b), 0);
        assert_int_equal(unixfs_car_write_block(&a, (const uint8_t *)"aaa", 3, &b), 0);
        assert_int_equal(unixfs_car_init(&rd, b.p, b.len), 0);
        assert_int_equal(rd.n_roots, 1);
        assert_true(cid_equal(&rd.roots[0], &root));
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
        assert_true(cid_equal(&got, &root));
        assert_int_equal(cid_verify(&got, blk.p, blk.len), 0);
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
        assert_true(cid_equal(&got, &a));
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 0);
        /* cut inside the last section: truncated, not a clean end */
        assert_int_equal(unixfs_car_init(&rd, b.p, b.len - 1), 0);
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), -EAGAIN);
        /* cut inside the header */
        assert_int_equal(unixfs_car_init(&rd, b.p, 10), -EAGAIN);
        /* not a CAR */
        assert_int_equal(unixfs_car_init(&rd, (const uint8_t *)"\x05hello", 6), -EBADMSG);
        buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_layout__builder_shapes__bytes_back),
                cmocka_unit_test(test_layout__identity_root__no_fetch),
                cmocka_unit_test(test_layout__lying_blocksizes__ebadmsg_raw_not_fetched),
                cmocka_unit_test(test_node__symlink_and_invalid_blocks),
                cmocka_unit_test(test_data__mtime_mode__round_trip),
                cmocka_unit_test(test_car__write_read__and_truncation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
