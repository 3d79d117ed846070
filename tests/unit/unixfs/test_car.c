/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CAR v1 (ipfs.md §11.4): writer, reader, streaming resume, truncation and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vectors.h"

static void make_car(struct buf *b, struct cid *root, struct cid *a)
{
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "aaa", 3, a), 0);
        assert_int_equal(
                cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "\x0a\x02\x08\x01", 4, root), 0);
        buf_init(b, 4096);
        assert_int_equal(unixfs_car_write_header(root, b), 0);
        assert_int_equal(unixfs_car_write_block(root, (const uint8_t *)"\x0a\x02\x08\x01", 4, b),
                         0);
        assert_int_equal(unixfs_car_write_block(a, (const uint8_t *)"aaa", 3, b), 0);
}

static void test_car__write_read__round_trip(void **state)
{
        struct unixfs_car_reader rd;
        struct bytes_view blk;
        struct cid root, a, got;
        struct buf b;

        (void)state;
        make_car(&b, &root, &a);
        /* §11.4 header layout: a2 65 "roots" 81 d8 2a 58 <len> 00 <cid> 67 "version" 01 */
        assert_int_equal(b.p[0], 22 + root.len);
        assert_memory_equal(b.p + 1, "\xa2\x65roots\x81\xd8\x2a\x58", 11);
        assert_int_equal(b.p[12], root.len + 1);
        assert_int_equal(b.p[13], 0x00);
        assert_memory_equal(b.p + 14 + root.len, "\x67version\x01", 9);
        assert_int_equal(unixfs_car_init(&rd, b.p, b.len), 0);
        assert_int_equal(rd.n_roots, 1);
        assert_true(cid_equal(&rd.roots[0], &root));
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
        assert_true(cid_equal(&got, &root));
        assert_int_equal(cid_verify(&got, blk.p, blk.len), 0);
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
        assert_true(cid_equal(&got, &a));
        assert_int_equal(blk.len, 3);
        assert_int_equal(cid_verify(&got, blk.p, blk.len), 0);
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 0);
        assert_int_equal(unixfs_car_consumed(&rd), b.len);
        buf_done(&b);
}

/* Every cut point: truncated (-EAGAIN) unless it falls between sections, never malformed; and
 * the same CAR fed one byte at a time through the resume API yields both sections. */
static void test_car__streaming__resume_and_truncation(void **state)
{
        struct unixfs_car_reader rd;
        struct bytes_view blk;
        struct cid root, a, got;
        size_t sections, hdr, sec1;
        struct buf b;
        int r;

        (void)state;
        make_car(&b, &root, &a);
        hdr = 1 + b.p[0];
        sec1 = hdr + 1 + b.p[hdr];
        for (size_t cut = 1; cut < b.len; cut++) {
                sections = 0;
                r = unixfs_car_init(&rd, b.p, cut);
                if (r == 0)
                        while ((r = unixfs_car_next(&rd, &got, &blk)) == 1)
                                sections++;
                /* a cut between sections looks like a clean end; anywhere else, truncated */
                assert_int_equal(r, cut == hdr || cut == sec1 ? 0 : -EAGAIN);
                assert_int_equal(sections, cut < sec1 ? 0 : 1);
        }

        sections = 0;
        r = unixfs_car_init(&rd, b.p, 1);
        assert_int_equal(r, -EAGAIN);
        for (size_t have = 1;;) {
                r = unixfs_car_next(&rd, &got, &blk);
                if (r == 1) {
                        assert_true(cid_equal(&got, sections ? &a : &root));
                        assert_int_equal(cid_verify(&got, blk.p, blk.len), 0);
                        sections++;
                        continue;
                }
                assert_true(r == 0 || r == -EAGAIN);
                if (have == b.len) {
                        assert_int_equal(r, 0);
                        break;
                }
                {
                        size_t base = (size_t)rd.offset + unixfs_car_consumed(&rd);

                        have++;
                        unixfs_car_feed(&rd, b.p + base, have - base);
                }
        }
        assert_int_equal(sections, 2);
        assert_int_equal(rd.n_roots, 1);
        buf_done(&b);
}

static void test_car__malformed__refused(void **state)
{
        static const uint8_t v2[] = { 0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02 };
        static const uint8_t nover[] = { 0x08, 0xa1, 0x65, 'r', 'o', 'o', 't', 's', 0x80 };
        static const uint8_t noroots[] = {
                0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01
        };
        static const uint8_t twice[] = { 0x13, 0xa2, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n',
                                         0x01, 0x67, 'v',  'e', 'r', 's', 'i', 'o', 'n', 0x01 };
        static const uint8_t empty_roots[] = { 0x11, 0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80,
                                               0x67, 'v',  'e',  'r', 's', 'i', 'o', 'n', 0x01 };
        struct unixfs_car_reader rd;
        struct bytes_view blk;
        struct cid root, a, got;
        uint8_t copy[4096];
        struct buf b;

        (void)state;
        assert_int_equal(unixfs_car_init(&rd, v2, sizeof(v2)), -EOPNOTSUPP);
        assert_int_equal(unixfs_car_init(&rd, nover, sizeof(nover)), -EBADMSG);
        assert_int_equal(unixfs_car_init(&rd, noroots, sizeof(noroots)), -EBADMSG);
        assert_int_equal(unixfs_car_init(&rd, twice, sizeof(twice)), -EBADMSG);
        assert_int_equal(unixfs_car_init(&rd, empty_roots, sizeof(empty_roots)), 0);
        assert_int_equal(rd.n_roots, 0);
        assert_int_equal(unixfs_car_next(&rd, &got, &blk), 0);
        assert_int_equal(unixfs_car_init(&rd, (const uint8_t *)"\x05hello", 6), -EBADMSG);
        assert_int_equal(unixfs_car_init(&rd, (const uint8_t *)"\x00", 1), -EBADMSG);
        /* header longer than we accept; non-minimal varint (not mistaken for truncation) */
        assert_int_equal(unixfs_car_init(&rd, (const uint8_t *)"\x81\x40", 2), -EBADMSG);
        assert_int_equal(unixfs_car_init(&rd, (const uint8_t *)"\x81\x00", 2), -EBADMSG);

        make_car(&b, &root, &a);
        assert_true(b.len < sizeof(copy));
        memcpy(copy, b.p, b.len);
        {
                size_t hdr = 1 + b.p[0], sec2;

                assert_int_equal(unixfs_car_init(&rd, copy, b.len), 0);
                assert_int_equal(unixfs_car_consumed(&rd), hdr);
                sec2 = hdr + 1 + copy[hdr];
                /* second section: a zero length, then a CID that does not parse */
                copy[sec2] = 0;
                assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
                assert_int_equal(unixfs_car_next(&rd, &got, &blk), -EBADMSG);
                assert_int_equal(unixfs_car_consumed(&rd), sec2); /* stays at the bad section */
                memcpy(copy, b.p, b.len);
                copy[sec2 + 1] = 0x07; /* CID version 7 */
                assert_int_equal(unixfs_car_init(&rd, copy, b.len), 0);
                assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
                assert_int_equal(unixfs_car_next(&rd, &got, &blk), -EBADMSG);
                /* a section claiming more than a block may be */
                memcpy(copy, b.p, b.len);
                memcpy(copy + sec2, "\x80\x80\x81\x01", 4);
                assert_int_equal(unixfs_car_init(&rd, copy, b.len), 0);
                assert_int_equal(unixfs_car_next(&rd, &got, &blk), 1);
                assert_int_equal(unixfs_car_next(&rd, &got, &blk), -EBADMSG);
        }
        buf_done(&b);
}

/* More roots than the reader keeps: all parsed, the first UNIXFS_CAR_MAX_ROOTS kept. */
static void test_car__many_roots__first_kept(void **state)
{
        uint8_t h[1024];
        struct unixfs_car_reader rd;
        struct cid c[6];
        size_t n = 0;

        (void)state;
        n = 2; /* a two-byte length, patched below */
        h[n++] = 0xa2;
        h[n++] = 0x65;
        memcpy(h + n, "roots", 5);
        n += 5;
        h[n++] = 0x86;
        for (int i = 0; i < 6; i++) {
                assert_int_equal(
                        cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, &i, sizeof(i), &c[i]), 0);
                h[n++] = 0xd8;
                h[n++] = 0x2a;
                h[n++] = 0x58;
                h[n++] = (uint8_t)(c[i].len + 1);
                h[n++] = 0;
                memcpy(h + n, c[i].bin, c[i].len);
                n += c[i].len;
        }
        h[n++] = 0x67;
        memcpy(h + n, "version", 7);
        n += 7;
        h[n++] = 0x01;
        assert_true(n - 2 >= 0x80 && n - 2 < 0x4000);
        h[0] = (uint8_t)(0x80 | ((n - 2) & 0x7f));
        h[1] = (uint8_t)((n - 2) >> 7);
        assert_int_equal(unixfs_car_init(&rd, h, n), 0);
        assert_int_equal(rd.n_roots, UNIXFS_CAR_MAX_ROOTS);
        for (size_t i = 0; i < UNIXFS_CAR_MAX_ROOTS; i++)
                assert_true(cid_equal(&rd.roots[i], &c[i]));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_car__write_read__round_trip),
                cmocka_unit_test(test_car__streaming__resume_and_truncation),
                cmocka_unit_test(test_car__malformed__refused),
                cmocka_unit_test(test_car__many_roots__first_kept),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
