/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/buf.h"
#include "prsmfs/hash.h"

static void test_buf__append_past_max__e2big(void **state)
{
        struct buf b;

        (void)state;
        buf_init(&b, 10);
        assert_int_equal(buf_append(&b, "0123456789", 10), 0);
        assert_int_equal(buf_append_byte(&b, 'x'), -E2BIG);
        assert_int_equal(b.len, 10);
        assert_memory_equal(b.p, "0123456789", 10);
        buf_done(&b);
}

/* A size known up front is allocated once and exactly: appending it needs no realloc. */
static void test_buf__reserve_exact__one_allocation_of_that_size(void **state)
{
        static const uint8_t chunk[1000] = { 1 };
        struct buf b;
        uint8_t *p;

        (void)state;
        buf_init(&b, 1 << 20);
        assert_int_equal(buf_reserve_exact(&b, 100000), 0);
        assert_int_equal(b.cap, 100000);
        p = b.p;
        for (int i = 0; i < 100; i++)
                assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
        assert_ptr_equal(b.p, p);
        assert_int_equal(b.cap, 100000);
        assert_int_equal(buf_reserve_exact(&b, 0), 0);
        assert_int_equal(buf_reserve_exact(&b, (1 << 20) - 100000 + 1), -E2BIG);
        assert_int_equal(b.cap, 100000);
        buf_done(&b);
}

static void test_cursor__short_read__leaves_position(void **state)
{
        struct cursor c;
        struct bytes_view v;
        uint8_t u;

        (void)state;
        cursor_init(&c, "abc", 3);
        assert_int_equal(cursor_get_u8(&c, &u), 0);
        assert_int_equal(u, 'a');
        assert_int_equal(cursor_get_bytes(&c, 3, &v), -EBADMSG);
        assert_int_equal(c.pos, 1);
        assert_int_equal(cursor_get_bytes(&c, 2, &v), 0);
        assert_memory_equal(v.p, "bc", 2);
        assert_true(cursor_eof(&c));
}

static void test_hash__sha256_incremental__matches_oneshot(void **state)
{
        static const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                         0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                         0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                         0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
        struct hash_sha256_ctx *h;
        uint8_t d1[32], d2[32];

        (void)state;
        hash_sha256("abc", 3, d1);
        assert_memory_equal(d1, abc, 32);
        assert_int_equal(hash_sha256_new(&h), 0);
        hash_sha256_update(h, "a", 1);
        hash_sha256_update(h, "bc", 2);
        hash_sha256_final(h, d2);
        hash_sha256_free(h);
        assert_memory_equal(d2, abc, 32);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_buf__append_past_max__e2big),
                cmocka_unit_test(test_buf__reserve_exact__one_allocation_of_that_size),
                cmocka_unit_test(test_cursor__short_read__leaves_position),
                cmocka_unit_test(test_hash__sha256_incremental__matches_oneshot),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
