/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/cid.h"

/* Every CID string of ipfs.md §16 (and §7.2): parse, then format back identically. */
static const char *const strings[] = {
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
        "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "bafkqaaa",
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
        "bafyaabakaieac",
        "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD",
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
        "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa",
        "bafkrgqbqt3gerhas23vuzrapkdeqf4vu2dwxp3srdj6hvg6nhsug2tgyn6mj3u23yx7utftq3i2ckw2fwdh5qmh"
        "id5qf3t35yvkc5e5ottlw6",
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
        "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby",
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
        "QmfLiVjH2vujCVP2e75zyzBYmpcjktmDeU1YBz6Ct8BBsc",
        "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba",
        "QmVkbauSDEaMP4Tkq6Epm9uW75mWm136n81YH8fGtfwdHU",
        "bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa",
        "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i",
};

static void test_parse__spec_strings__format_round_trip(void **state)
{
        char out[CID_MAX_STR];
        struct cid c, z;
        int n;

        (void)state;
        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
                assert_int_equal(cid_parse(strings[i], strlen(strings[i]), &c), 0);
                assert_string_equal(cid_to_string(&c, out), strings[i]);
                /* js-ipfs prints CIDv1 in base58btc: the same CID */
                n = cid_format(&c, CID_BASE_BASE58BTC, out, sizeof(out));
                assert_true(n > 0);
                assert_int_equal(cid_parse(out, (size_t)n, &z), 0);
                assert_true(cid_equal(&c, &z));
                n = cid_format(&c, CID_BASE_BASE36, out, sizeof(out));
                assert_int_equal(cid_parse(out, (size_t)n, &z), 0);
                assert_true(cid_equal(&c, &z));
        }
}

static void test_convert__v0_v1__spec_pair(void **state)
{
        const char *v0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
        const char *v1 = "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby";
        char out[CID_MAX_STR];
        struct cid a, b, raw;

        (void)state;
        assert_int_equal(cid_parse(v0, strlen(v0), &a), 0);
        assert_int_equal(a.version, 0);
        assert_int_equal(a.codec, CID_CODEC_DAG_PB);
        assert_int_equal(cid_to_v1(&a, &b), 0);
        assert_string_equal(cid_to_string(&b, out), v1);
        assert_true(cid_same_multihash(&a, &b));
        assert_false(cid_equal(&a, &b));
        assert_int_equal(cid_to_v0(&b, &a), 0);
        assert_string_equal(cid_to_string(&a, out), v0);
        /* raw codec cannot become v0 */
        assert_int_equal(cid_parse(strings[2], strlen(strings[2]), &raw), 0);
        assert_int_equal(cid_to_v0(&raw, &a), -EINVAL);
}

static void test_multihash__readme_vector(void **state)
{
        /* sha2-256("multihash") as a multihash = QmYtUc4i... (multihash README) */
        static const uint8_t mh[] = { 0x12, 0x20, 0x9c, 0xbc, 0x07, 0xc3, 0xf9, 0x91, 0x72,
                                      0x58, 0x36, 0xa3, 0xaa, 0x2a, 0x58, 0x1c, 0xa2, 0x02,
                                      0x91, 0x98, 0xaa, 0x42, 0x0b, 0x9d, 0x99, 0xbc, 0x0e,
                                      0x13, 0x1d, 0x9f, 0x3e, 0x2c, 0xbe, 0x47 };
        char out[CID_MAX_STR];
        struct cid c;

        (void)state;
        assert_int_equal(cid_from_bytes(mh, sizeof(mh), &c), 0);
        assert_string_equal(cid_to_string(&c, out),
                            "QmYtUc4iTCbbfVSDNKvtQqrfyezPPnFvE33wFmutw9PBBk");
        assert_int_equal(cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "multihash", 9, &c), 0);
        assert_string_equal(cid_to_string(&c, out),
                            "QmYtUc4iTCbbfVSDNKvtQqrfyezPPnFvE33wFmutw9PBBk");
}

static void test_identity__128_ok_129_refused(void **state)
{
        uint8_t data[129];
        char s[CID_MAX_STR];
        struct cid c;
        int n;

        (void)state;
        memset(data, 'a', sizeof(data));
        assert_int_equal(cid_make(1, CID_CODEC_RAW, CID_MH_IDENTITY, data, 128, &c), 0);
        n = cid_format(&c, CID_BASE_BASE32, s, sizeof(s));
        assert_int_equal(strncmp(s, "bafkqbaab", 9), 0);
        assert_int_equal(cid_parse(s, (size_t)n, &c), 0);
        assert_int_equal(cid_verify(&c, data, 128), 0);
        assert_int_equal(cid_verify(&c, data, 127), -EILSEQ);
        /* a 129-byte identity CID, built by hand: 01 55 00 81 01 <129 bytes> */
        {
                uint8_t bin[4 + 1 + 129] = { 0x01, 0x55, 0x00, 0x81, 0x01 };
                size_t len;

                memcpy(bin + 5, data, 129);
                assert_int_equal(cid_from_bytes(bin, 5 + 129, &c), -E2BIG);
                assert_int_equal(
                        cid_multibase_encode(CID_BASE_BASE32, bin, 5 + 129, s, sizeof(s), &len), 0);
                assert_int_equal(strncmp(s, "bafkqbaib", 9), 0);
                assert_int_equal(cid_parse(s, len, &c), -E2BIG);
        }
        assert_int_equal(cid_make(1, CID_CODEC_RAW, CID_MH_IDENTITY, data, 129, &c), -EINVAL);
}

static void test_verify__hello_world__match_and_flip(void **state)
{
        const char *s = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
        char data[] = "hello world\n";
        struct cid c, e;

        (void)state;
        assert_int_equal(cid_parse(s, strlen(s), &c), 0);
        assert_int_equal(cid_verify(&c, data, 12), 0);
        data[3] ^= 0x01;
        assert_int_equal(cid_verify(&c, data, 12), -EILSEQ);
        assert_int_equal(cid_verify(&c, data, 11), -EILSEQ);
        assert_int_equal(cid_parse("bafkqaaa", 8, &e), 0);
        assert_int_equal(cid_verify(&e, "", 0), 0);
        assert_int_equal(cid_verify(&e, "x", 1), -EILSEQ);
}

static void test_parse__malformed__refused(void **state)
{
        static const char *const bad[] = {
                "",
                "Qm",
                "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQ0",             /* '0' not base58 */
                "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk", /* truncated */
                "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvykuaa", /* trailing */
                "bciqaaaa", /* multibase-wrapped CIDv0 prefix 0x12 */
                "not a cid",
        };
        uint8_t v2[] = { 0x02, 0x55, 0x12, 0x20 };
        uint8_t murmur[] = { 0x01, 0x55, 0x22, 0x08, 1, 2, 3, 4, 5, 6, 7, 8 };
        uint8_t short_digest[] = { 0x01, 0x55, 0x12, 0x04, 1, 2, 3, 4 };
        struct cid c;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_true(cid_parse(bad[i], strlen(bad[i]), &c) < 0);
        assert_true(cid_from_bytes(v2, sizeof(v2), &c) < 0);
        assert_int_equal(cid_from_bytes(murmur, sizeof(murmur), &c), -EOPNOTSUPP);
        assert_int_equal(cid_from_bytes(short_digest, sizeof(short_digest), &c), -E2BIG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse__spec_strings__format_round_trip),
                cmocka_unit_test(test_convert__v0_v1__spec_pair),
                cmocka_unit_test(test_multihash__readme_vector),
                cmocka_unit_test(test_identity__128_ok_129_refused),
                cmocka_unit_test(test_verify__hello_world__match_and_flip),
                cmocka_unit_test(test_parse__malformed__refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
