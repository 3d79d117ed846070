/* SPDX-License-Identifier: GPL-2.0-or-later */
/* allowed_mime_types: the built-in sniffer (src/fs/policy.c) on the heads of common files, and
 * the list matcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "fs_internal.h"

static const char *sniff(const void *p, size_t n)
{
        return fs_sniff_mime(p, n, n);
}

static void test_sniff__known_heads__named(void **state)
{
        static const char st[] = "\x10\0\0\0\0\0\0\0{\"a\":{}}        ";
        static const char st_too_long[] = "\xff\xff\0\0\0\0\0\0{\"a\":1}";

        (void)state;
        assert_string_equal(sniff(st, sizeof(st) - 1), "application/x-safetensors");
        assert_string_equal(sniff(st_too_long, sizeof(st_too_long) - 1),
                            "application/octet-stream"); /* header longer than the file */
        assert_string_equal(sniff("GGUF\3\0\0\0", 8), "application/x-gguf");
        assert_string_equal(sniff("PK\3\4rest", 8), "application/zip");
        assert_string_equal(sniff("\x80\x04\x95", 3), "application/x-python-pickle");
        assert_string_equal(sniff("\x93NUMPY\1\0", 8), "application/x-npy");
        assert_string_equal(sniff("\x89PNG\r\n\x1a\n", 8), "image/png");
        assert_string_equal(sniff("%PDF-1.7", 8), "application/pdf");
        assert_string_equal(sniff("  \n[1, 2]", 9), "application/json");
        assert_string_equal(sniff("h\xc3\xa9llo\n", 7), "text/plain");
        assert_string_equal(sniff("ab\0cd", 5), "application/octet-stream");
        assert_string_equal(sniff("\xff\xfe\xfd", 3), "application/octet-stream");
}

static void test_mime_allowed__patterns__exact_wildcard_star(void **state)
{
        (void)state;
        assert_true(fs_mime_allowed("application/json,text/*", "text/plain"));
        assert_true(fs_mime_allowed("application/json,text/*", "application/json"));
        assert_false(fs_mime_allowed("application/json,text/*", "application/zip"));
        assert_false(fs_mime_allowed("application/jso", "application/json"));
        assert_false(fs_mime_allowed("text/*", "textile/plain"));
        assert_true(fs_mime_allowed("image/png,*", "application/zip"));
        assert_false(fs_mime_allowed("", "text/plain"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sniff__known_heads__named),
                cmocka_unit_test(test_mime_allowed__patterns__exact_wildcard_star),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
