/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/cid.h"

/* ipfs.md §1 and §16.5 */
static const struct {
        uint64_t v;
        const char *enc;
        size_t len;
} vectors[] = {
        { 1, "\x01", 1 },       { 127, "\x7f", 1 },
        { 128, "\x80\x01", 2 }, { 255, "\xff\x01", 2 },
        { 300, "\xac\x02", 2 }, { 16384, "\x80\x80\x01", 3 },
        { 0, "\x00", 1 },       { (1ull << 63) - 1, "\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 9 },
};

static void test_varint__vectors__round_trip(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                uint8_t out[10];
                struct cursor c;
                uint64_t v;

                assert_int_equal(cid_varint_write(vectors[i].v, out), vectors[i].len);
                assert_memory_equal(out, vectors[i].enc, vectors[i].len);
                assert_int_equal(cid_varint_len(vectors[i].v), vectors[i].len);
                cursor_init(&c, vectors[i].enc, vectors[i].len);
                assert_int_equal(cid_varint_read(&c, &v), 0);
                assert_int_equal(v, vectors[i].v);
                assert_true(cursor_eof(&c));
        }
}

static void test_varint__malformed__rejected_cursor_unmoved(void **state)
{
        static const struct {
                const char *p;
                size_t len;
        } bad[] = {
                { "\x81\x00", 2 },                                  /* not minimal */
                { "\x80\x00", 2 },                                  /* not minimal */
                { "\x80", 1 },                                      /* truncated */
                { "", 0 },                                          /* empty */
                { "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 }, /* over 9 bytes */
        };

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct cursor c;
                uint64_t v = 42;

                cursor_init(&c, bad[i].p, bad[i].len);
                assert_int_equal(cid_varint_read(&c, &v), -EBADMSG);
                assert_int_equal(c.pos, 0);
                assert_int_equal(v, 42);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_varint__vectors__round_trip),
                cmocka_unit_test(test_varint__malformed__rejected_cursor_unmoved),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
