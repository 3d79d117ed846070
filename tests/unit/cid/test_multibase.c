/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/cid.h"

/* multiformats/multibase tests/basic.csv and leading_zero.csv (ipfs.md §2) */
static const struct {
        const char *enc;
        bool zero; /* input has a leading 0x00 */
} decodes[] = {
        { "bpfsxgidnmfxgsibb", false },     { "BPFSXGIDNMFXGSIBB", false },
        { "z7paNL19xttacUY", false },       { "f796573206d616e692021", false },
        { "F796573206D616E692021", false }, { "k2lcpzo5yikidynfl", false },
        { "K2LCPZO5YIKIDYNFL", false },     { "meWVzIG1hbmkgIQ", false },
        { "ueWVzIG1hbmkgIQ", false },       { "MeWVzIG1hbmkgIQ==", false },
        { "bab4wk4zanvqw42jaee", true },    { "z17paNL19xttacUY", true },
        { "k02lcpzo5yikidynfl", true },
};

static void test_decode__basic_csv__yes_mani(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(decodes) / sizeof(decodes[0]); i++) {
                uint8_t out[32];
                size_t n = 0;
                size_t off = decodes[i].zero ? 1 : 0;

                assert_int_equal(cid_multibase_decode(decodes[i].enc, strlen(decodes[i].enc), out,
                                                      sizeof(out), &n),
                                 0);
                assert_int_equal(n, 10 + off);
                if (off)
                        assert_int_equal(out[0], 0);
                assert_memory_equal(out + off, "yes mani !", 10);
        }
}

static void test_encode__each_base__matches_csv(void **state)
{
        static const struct {
                enum cid_base base;
                const char *plain, *zero;
        } enc[] = {
                { CID_BASE_BASE32, "bpfsxgidnmfxgsibb", "bab4wk4zanvqw42jaee" },
                { CID_BASE_BASE58BTC, "z7paNL19xttacUY", "z17paNL19xttacUY" },
                { CID_BASE_BASE16, "f796573206d616e692021", "f00796573206d616e692021" },
                { CID_BASE_BASE36, "k2lcpzo5yikidynfl", "k02lcpzo5yikidynfl" },
        };
        const uint8_t zero_input[] = "\0yes mani !";
        char out[64];
        size_t n;

        (void)state;
        for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
                assert_int_equal(cid_multibase_encode(enc[i].base, (const uint8_t *)"yes mani !",
                                                      10, out, sizeof(out), &n),
                                 0);
                assert_string_equal(out, enc[i].plain);
                assert_int_equal(n, strlen(enc[i].plain));
                assert_int_equal(
                        cid_multibase_encode(enc[i].base, zero_input, 11, out, sizeof(out), &n), 0);
                assert_string_equal(out, enc[i].zero);
                /* too small an output buffer is an error, never an overflow */
                assert_int_equal(cid_multibase_encode(enc[i].base, zero_input, 11, out, 5, &n),
                                 -E2BIG);
        }
}

static void test_base36__rfc_examples(void **state)
{
        static const struct {
                const uint8_t in[3];
                size_t len;
                const char *out;
        } v[] = { { { 0, 1 }, 2, "k01" }, { { 0, 0, 0xff }, 3, "k0073" }, { { 1, 0 }, 2, "k74" } };
        char out[16];
        uint8_t back[8];
        size_t n;

        (void)state;
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(
                        cid_multibase_encode(CID_BASE_BASE36, v[i].in, v[i].len, out, 16, &n), 0);
                assert_string_equal(out, v[i].out);
                assert_int_equal(cid_multibase_decode(out, n, back, sizeof(back), &n), 0);
                assert_int_equal(n, v[i].len);
                assert_memory_equal(back, v[i].in, n);
        }
}

static void test_decode__bad_input__refused(void **state)
{
        static const char *bad[] = { "b1",    "z0OIl", "fzz", "f0", "bpfsxgidnmfxgsibA",
                                     "Bpfsx", "m====", "kK",  "" };
        uint8_t out[64];
        size_t n;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_true(cid_multibase_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n) < 0);
        assert_int_equal(cid_multibase_decode("Qmabc", 5, out, sizeof(out), &n), -EOPNOTSUPP);
        assert_int_equal(cid_multibase_decode("bpfsxgidnmfxgsibb", 17, out, 4, &n), -E2BIG);
        assert_int_equal(cid_multibase_decode("z7paNL19xttacUY", 15, out, 4, &n), -E2BIG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decode__basic_csv__yes_mani),
                cmocka_unit_test(test_encode__each_base__matches_csv),
                cmocka_unit_test(test_base36__rfc_examples),
                cmocka_unit_test(test_decode__bad_input__refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
