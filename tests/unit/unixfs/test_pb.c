/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Protobuf varints, dag-pb decode strictness and canonical encoding, UnixFS Data fields and
 * per-type validation (ipfs.md §7, §8, §13.2, §16.1, §16.4 invalid examples). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vectors.h"

#define B(s) (const uint8_t *)(s), sizeof(s) - 1

static void test_varint__vectors_and_limits(void **state)
{
        static const struct {
                uint64_t v;
                const char *enc;
                size_t len;
        } vec[] = {
                { 1, "\x01", 1 },
                { 127, "\x7f", 1 },
                { 128, "\x80\x01", 2 },
                { 255, "\xff\x01", 2 },
                { 300, "\xac\x02", 2 },
                { 16384, "\x80\x80\x01", 3 },
                { UINT64_MAX, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 },
        };
        struct cursor c;
        uint8_t out[10];
        uint64_t v;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(vec); i++) {
                assert_int_equal(unixfs_pb_varint_write(vec[i].v, out), vec[i].len);
                assert_memory_equal(out, vec[i].enc, vec[i].len);
                cursor_init(&c, vec[i].enc, vec[i].len);
                assert_int_equal(unixfs_pb_varint_read(&c, &v), 0);
                assert_true(v == vec[i].v);
                assert_int_equal(c.pos, vec[i].len);
        }
        /* protobuf allows non-minimal encodings */
        cursor_init(&c, "\x81\x00", 2);
        assert_int_equal(unixfs_pb_varint_read(&c, &v), 0);
        assert_int_equal(v, 1);
        /* beyond 64 bits, 11 bytes, truncated: refused, cursor unmoved */
        cursor_init(&c, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
        assert_int_equal(unixfs_pb_varint_read(&c, &v), -EBADMSG);
        cursor_init(&c, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11);
        assert_int_equal(unixfs_pb_varint_read(&c, &v), -EBADMSG);
        cursor_init(&c, "\x80\x80", 2);
        assert_int_equal(unixfs_pb_varint_read(&c, &v), -EBADMSG);
        assert_int_equal(c.pos, 0);
}

/* §7.2: a zero-length block is a valid dag-pb node, but not UnixFS */
static void test_dagpb__zero_length_block(void **state)
{
        struct unixfs_pb_node n;
        struct unixfs_node u;
        char s[CID_MAX_STR];
        struct cid c0, c1;

        (void)state;
        assert_int_equal(unixfs_pb_decode((const uint8_t *)"", 0, &n), 0);
        assert_int_equal(n.n_links, 0);
        assert_false(n.has_data);
        unixfs_pb_node_done(&n);
        assert_int_equal(cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "", 0, &c0), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "", 0, &c1), 0);
        assert_string_equal(cid_to_string(&c0, s),
                            "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n");
        assert_string_equal(cid_to_string(&c1, s),
                            "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        assert_int_equal(unixfs_node_decode(&c1, (const uint8_t *)"", 0, &u), -EBADMSG);
}

/* A 38-byte link to QmdfTb... (the empty block's CIDv0) with the given tail after Hash. */
static size_t make_link(uint8_t *out, const char *name, bool tsize_first)
{
        struct cid c;
        size_t n = 0, nl = name ? strlen(name) : 0;
        uint8_t body[128];
        size_t bl = 0;

        assert_int_equal(cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "", 0, &c), 0);
        if (tsize_first) {
                body[bl++] = 0x18;
                body[bl++] = 0x05;
        }
        body[bl++] = 0x0a;
        body[bl++] = c.len;
        memcpy(body + bl, c.bin, c.len);
        bl += c.len;
        if (name) {
                body[bl++] = 0x12;
                body[bl++] = (uint8_t)nl;
                memcpy(body + bl, name, nl);
                bl += nl;
        }
        if (!tsize_first) {
                body[bl++] = 0x18;
                body[bl++] = 0x05;
        }
        out[n++] = 0x12;
        out[n++] = (uint8_t)bl;
        memcpy(out + n, body, bl);
        return n + bl;
}

static void test_dagpb__strict_fields__refused(void **state)
{
        uint8_t blk[512];
        struct unixfs_pb_node n;
        size_t len;

        (void)state;
        /* well-formed: link (Hash, Name, Tsize) then Data */
        len = make_link(blk, "a", false);
        memcpy(blk + len, "\x0a\x02\x08\x01", 4);
        assert_int_equal(unixfs_pb_decode(blk, len + 4, &n), 0);
        assert_int_equal(n.n_links, 1);
        assert_true(n.links[0].has_name && n.links[0].has_tsize);
        assert_int_equal(n.links[0].tsize, 5);
        assert_memory_equal(n.links[0].name.p, "a", 1);
        unixfs_pb_node_done(&n);
        /* Tsize before Hash inside a link */
        len = make_link(blk, NULL, true);
        assert_int_equal(unixfs_pb_decode(blk, len, &n), -EBADMSG);
        /* duplicate Data */
        assert_int_equal(unixfs_pb_decode(B("\x0a\x00\x0a\x00"), &n), -EBADMSG);
        /* unknown node field, wrong wire type for Data, truncated Data */
        assert_int_equal(unixfs_pb_decode(B("\x1a\x00"), &n), -EBADMSG);
        assert_int_equal(unixfs_pb_decode(B("\x08\x01"), &n), -EBADMSG);
        assert_int_equal(unixfs_pb_decode(B("\x0a\x05\x01"), &n), -EBADMSG);
        /* link without Hash; Hash that is not a CID; duplicate Hash */
        assert_int_equal(unixfs_pb_decode(B("\x12\x02\x18\x01"), &n), -EBADMSG);
        assert_int_equal(unixfs_pb_decode(B("\x12\x04\x0a\x02\x12\x00"), &n), -EBADMSG);
        len = make_link(blk, NULL, false);
        blk[1] += 4; /* the link claims two more fields: a second (bad) Hash */
        memcpy(blk + len, "\x0a\x02\x00\x00", 4);
        assert_int_equal(unixfs_pb_decode(blk, len + 4, &n), -EBADMSG);
        /* missing Name reads as absent, empty Name as present and empty */
        len = make_link(blk, NULL, false);
        assert_int_equal(unixfs_pb_decode(blk, len, &n), 0);
        assert_false(n.links[0].has_name);
        unixfs_pb_node_done(&n);
        len = make_link(blk, "", false);
        assert_int_equal(unixfs_pb_decode(blk, len, &n), 0);
        assert_true(n.links[0].has_name);
        assert_int_equal(n.links[0].name.len, 0);
        unixfs_pb_node_done(&n);
}

/* §7.3: Data before Links is accepted; encoding is canonical (Links first), order kept */
static void test_dagpb__data_before_links__accepted_reencoded_canonical(void **state)
{
        uint8_t blk[512], canon[512];
        struct unixfs_pb_node n;
        struct buf b;
        size_t l1, l2;

        (void)state;
        memcpy(blk, "\x0a\x02\x08\x01", 4);
        l1 = make_link(blk + 4, "b", false);
        l2 = make_link(blk + 4 + l1, "a", false);
        assert_int_equal(unixfs_pb_decode(blk, 4 + l1 + l2, &n), 0);
        assert_int_equal(n.n_links, 2);
        assert_memory_equal(n.links[0].name.p, "b", 1); /* never re-sorted on decode */
        buf_init(&b, 1024);
        assert_int_equal(unixfs_pb_encode(&n, &b), 0);
        memcpy(canon, blk + 4, l1 + l2);
        memcpy(canon + l1 + l2, "\x0a\x02\x08\x01", 4);
        assert_int_equal(b.len, 4 + l1 + l2);
        assert_memory_equal(b.p, canon, b.len);
        buf_done(&b);
        unixfs_pb_node_done(&n);
}

/* Link count is bounded before any per-link allocation grows without limit. */
static void test_dagpb__link_limit__e2big(void **state)
{
        /* smallest valid link: Hash = identity raw CIDv1 of nothing (01 55 00 00) */
        static const uint8_t link[] = { 0x12, 0x06, 0x0a, 0x04, 0x01, 0x55, 0x00, 0x00 };
        size_t n = UNIXFS_MAX_LINKS + 1;
        uint8_t *blk = malloc(n * sizeof(link));
        struct unixfs_pb_node node;

        (void)state;
        assert_non_null(blk);
        for (size_t i = 0; i < n; i++)
                memcpy(blk + i * sizeof(link), link, sizeof(link));
        assert_int_equal(unixfs_pb_decode(blk, (n - 1) * sizeof(link), &node), 0);
        assert_int_equal(node.n_links, UNIXFS_MAX_LINKS);
        unixfs_pb_node_done(&node);
        assert_int_equal(unixfs_pb_decode(blk, n * sizeof(link), &node), -E2BIG);
        free(blk);
        /* and a block over 2 MiB is refused outright */
        assert_int_equal(unixfs_pb_decode(NULL, CID_MAX_BLOCK + 1, &node), -E2BIG);
}

static void encode_data(const struct unixfs_data *d, struct buf *b)
{
        struct unixfs_pb_node n = { .has_data = true };
        struct buf db;

        buf_init(&db, 1024);
        assert_int_equal(unixfs_data_encode(d, &db), 0);
        n.data = buf_view(&db);
        buf_init(b, 4096);
        assert_int_equal(unixfs_pb_encode(&n, b), 0);
        buf_done(&db);
}

/* §13.2 and §13.6 byte layouts, §16.1 CIDs */
static void test_unixfs__canonical_blocks__spec_bytes(void **state)
{
        struct unixfs_data leaf = { .type = UNIXFS_FILE,
                                    .data = { (const uint8_t *)"hello world\n", 12 },
                                    .has_data = true,
                                    .filesize = 12,
                                    .has_filesize = true },
                           empty = { .type = UNIXFS_FILE, .has_filesize = true },
                           dir = { .type = UNIXFS_DIRECTORY };
        char s[CID_MAX_STR];
        struct cid c;
        struct buf b;

        (void)state;
        encode_data(&leaf, &b);
        assert_int_equal(b.len, 20);
        assert_memory_equal(b.p, "\x0a\x12\x08\x02\x12\x0chello world\n\x18\x0c", 20);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, b.p, b.len, &c), 0);
        assert_string_equal(cid_to_string(&c, s),
                            "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby");
        buf_done(&b);
        encode_data(&empty, &b);
        assert_int_equal(b.len, 6);
        assert_memory_equal(b.p, "\x0a\x04\x08\x02\x18\x00", 6);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, b.p, b.len, &c), 0);
        assert_string_equal(cid_to_string(&c, s),
                            "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y");
        buf_done(&b);
        encode_data(&dir, &b);
        assert_int_equal(b.len, 4);
        assert_memory_equal(b.p, "\x0a\x02\x08\x01", 4);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, b.p, b.len, &c), 0);
        assert_string_equal(cid_to_string(&c, s),
                            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354");
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_IDENTITY, b.p, b.len, &c), 0);
        assert_string_equal(cid_to_string(&c, s), "bafyaabakaieac");
        buf_done(&b);
}

static int decode_as(const uint8_t *p, size_t len)
{
        struct unixfs_node n;
        struct cid c;
        int r;

        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, p, len, &c), 0);
        r = unixfs_node_decode(&c, p, len, &n);
        if (r >= 0)
                unixfs_node_done(&n);
        return r;
}

/* §8.2, §10.2 validation per type; §16.4 invalid examples */
static void test_unixfs__per_type_validation(void **state)
{
        uint8_t blk[256];
        size_t len;

        (void)state;
        /* §16.4: empty Data, garbage UnixFS, links without Data */
        assert_int_equal(decode_as(B("\x0a\x00")), -EBADMSG);
        assert_int_equal(decode_as(B("\x0a\x05\x00\x01\x02\x03\x04")), -EBADMSG);
        len = make_link(blk, "", false);
        assert_int_equal(decode_as(blk, len), -EBADMSG);
        /* HAMT: fanout 256 and hashType 0x22 fine; the rest refused */
        assert_int_equal(decode_as(B("\x0a\x09\x08\x05\x12\x00\x28\x22\x30\x80\x02")), 0);
        assert_int_equal(decode_as(B("\x0a\x09\x08\x05\x12\x00\x28\x23\x30\x80\x02")), -EBADMSG);
        assert_int_equal(decode_as(B("\x0a\x09\x08\x05\x12\x00\x28\x22\x30\xff\x01")), -EBADMSG);
        assert_int_equal(decode_as(B("\x0a\x09\x08\x05\x12\x00\x28\x22\x30\x80\x10")), -EBADMSG);
        assert_int_equal(decode_as(B("\x0a\x08\x08\x05\x12\x00\x28\x22\x30\x04")), -EBADMSG);
        assert_int_equal(decode_as(B("\x0a\x06\x08\x05\x12\x00\x28\x22")), -EBADMSG);
        /* File: one blocksize per link; children unnamed */
        len = make_link(blk, "", false);
        memcpy(blk + len, "\x0a\x06\x08\x02\x18\x05\x20\x05", 8);
        assert_int_equal(decode_as(blk, len + 8), 0);
        assert_int_equal(decode_as(blk, len + 6 - 2), -EBADMSG); /* cut: not a message */
        memcpy(blk + len, "\x0a\x04\x08\x02\x18\x05", 6);
        assert_int_equal(decode_as(blk, len + 6), -EBADMSG); /* no blocksizes */
        len = make_link(blk, "x", false);
        memcpy(blk + len, "\x0a\x06\x08\x02\x18\x05\x20\x05", 8);
        assert_int_equal(decode_as(blk, len + 8), -EBADMSG); /* named chunk */
        /* Symlink without links only; Metadata (reserved) refused; Directory with entries */
        assert_int_equal(decode_as(B("\x0a\x07\x08\x04\x12\x03"
                                     "foo")),
                         0);
        len = make_link(blk, "x", false);
        memcpy(blk + len,
               "\x0a\x07\x08\x04\x12\x03"
               "foo",
               9);
        assert_int_equal(decode_as(blk, len + 9), -EBADMSG);
        assert_int_equal(decode_as(B("\x0a\x02\x08\x03")), -EBADMSG);
        memcpy(blk + len, "\x0a\x02\x08\x01", 4);
        assert_int_equal(decode_as(blk, len + 4), 0);
        /* a raw-codec block is whatever bytes it holds; other codecs are not UnixFS */
        {
                struct unixfs_node n;
                struct cid c;

                assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "\x0a\x00", 2, &c),
                                 0);
                assert_int_equal(unixfs_node_decode(&c, B("\x0a\x00"), &n), 0);
                assert_true(n.is_raw);
                assert_int_equal(n.raw.len, 2);
                unixfs_node_done(&n);
                assert_int_equal(cid_compute(1, CID_CODEC_DAG_CBOR, CID_MH_SHA2_256, "\xa0", 1, &c),
                                 0);
                assert_int_equal(unixfs_node_decode(&c, B("\xa0"), &n), -EOPNOTSUPP);
        }
}

static void test_unixfs__all_fields__round_trip(void **state)
{
        uint64_t bs[3] = { 1, 1ull << 40, 0 };
        struct unixfs_data d = { .type = UNIXFS_FILE,
                                 .data = { (const uint8_t *)"abc", 3 },
                                 .has_data = true,
                                 .filesize = (1ull << 40) + 4,
                                 .has_filesize = true,
                                 .blocksizes = bs,
                                 .n_blocksizes = 3,
                                 .hash_type = 0x22,
                                 .has_hash_type = true,
                                 .fanout = 256,
                                 .has_fanout = true,
                                 .mode = 0107777,
                                 .has_mode = true,
                                 .mtime_sec = INT64_MIN,
                                 .has_mtime = true,
                                 .mtime_nsec = 999999999 },
                           back;
        struct buf b, b2;

        (void)state;
        buf_init(&b, 256);
        buf_init(&b2, 256);
        assert_int_equal(unixfs_data_encode(&d, &b), 0);
        /* field-number order; blocksizes unpacked (one 0x20 key each) */
        assert_memory_equal(b.p,
                            "\x08\x02\x12\x03"
                            "abc\x18",
                            7);
        assert_int_equal(unixfs_data_decode(b.p, b.len, &back), 0);
        assert_int_equal(back.type, UNIXFS_FILE);
        assert_int_equal(back.data.len, 3);
        assert_true(back.filesize == d.filesize);
        assert_int_equal(back.n_blocksizes, 3);
        assert_true(back.blocksizes[1] == bs[1]);
        assert_int_equal(back.hash_type, 0x22);
        assert_int_equal(back.fanout, 256);
        assert_int_equal(back.mode, 0107777);
        assert_true(back.mtime_sec == INT64_MIN);
        assert_int_equal(back.mtime_nsec, 999999999);
        assert_int_equal(unixfs_data_encode(&back, &b2), 0);
        assert_int_equal(b2.len, b.len);
        assert_memory_equal(b2.p, b.p, b.len);
        unixfs_data_done(&back);
        buf_done(&b);
        buf_done(&b2);
}

/* mtime: seconds int64 as 10-byte two's complement, nanos fixed32 LE in [1, 999999999] */
static void test_unixfs__mtime__encoding_and_validation(void **state)
{
        struct unixfs_data d = { .type = UNIXFS_FILE, .has_mtime = true, .mtime_sec = -5 }, back;
        struct buf b;

        (void)state;
        buf_init(&b, 64);
        assert_int_equal(unixfs_data_encode(&d, &b), 0);
        assert_int_equal(b.len, 2 + 2 + 11);
        assert_memory_equal(b.p, "\x08\x02\x42\x0b\x08\xfb\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                            15);
        buf_clear(&b);
        d.mtime_sec = 1700000000;
        d.mtime_nsec = 0x01020304;
        assert_int_equal(unixfs_data_encode(&d, &b), 0);
        assert_memory_equal(b.p + b.len - 5, "\x15\x04\x03\x02\x01", 5);
        assert_int_equal(unixfs_data_decode(b.p, b.len, &back), 0);
        assert_true(back.has_mtime);
        assert_int_equal(back.mtime_sec, 1700000000);
        assert_int_equal(back.mtime_nsec, 0x01020304);
        unixfs_data_done(&back);
        buf_done(&b);
        /* a present 0 nanos, a second's worth, no seconds, a duplicate mtime: invalid */
        assert_int_equal(
                unixfs_data_decode(B("\x08\x02\x42\x07\x08\x01\x15\x00\x00\x00\x00"), &back),
                -EBADMSG);
        assert_int_equal(
                unixfs_data_decode(B("\x08\x02\x42\x07\x08\x01\x15\x00\xca\x9a\x3b"), &back),
                -EBADMSG);
        assert_int_equal(unixfs_data_decode(B("\x08\x02\x42\x05\x15\x01\x00\x00\x00"), &back),
                         -EBADMSG);
        assert_int_equal(unixfs_data_decode(B("\x08\x02\x42\x02\x08\x01\x42\x02\x08\x01"), &back),
                         -EBADMSG);
        /* mode is a uint32; Type is required and known */
        assert_int_equal(unixfs_data_decode(B("\x08\x02\x38\x80\x80\x80\x80\x10"), &back),
                         -EBADMSG);
        assert_int_equal(unixfs_data_decode(B("\x18\x00"), &back), -EBADMSG);
        assert_int_equal(unixfs_data_decode(B("\x08\x06"), &back), -EBADMSG);
        assert_int_equal(unixfs_data_decode(B("\x08\x02\x08\x02"), &back), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_varint__vectors_and_limits),
                cmocka_unit_test(test_dagpb__zero_length_block),
                cmocka_unit_test(test_dagpb__strict_fields__refused),
                cmocka_unit_test(test_dagpb__data_before_links__accepted_reencoded_canonical),
                cmocka_unit_test(test_dagpb__link_limit__e2big),
                cmocka_unit_test(test_unixfs__canonical_blocks__spec_bytes),
                cmocka_unit_test(test_unixfs__per_type_validation),
                cmocka_unit_test(test_unixfs__all_fields__round_trip),
                cmocka_unit_test(test_unixfs__mtime__encoding_and_validation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
