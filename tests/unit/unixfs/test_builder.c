/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The balanced builder against every file vector of ipfs.md §16.1-16.3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vectors.h"

static struct unixfs_params params(unsigned v, bool raw, size_t chunk, size_t links)
{
        return (struct unixfs_params){
                .cid_version = v, .raw_leaves = raw, .chunk_size = chunk, .max_links = links
        };
}

static void check_bytes(const struct unixfs_params *p, const char *data, size_t len,
                        const char *want)
{
        struct unixfs_builder *b;
        size_t blocks = 0;
        char s[CID_MAX_STR];
        struct cid root;

        assert_int_equal(unixfs_builder_new(p, count_block, &blocks, &b), 0);
        /* fed in odd pieces: chunking must not depend on write sizes */
        for (size_t i = 0; i < len; i += 3)
                assert_int_equal(unixfs_builder_write(b, data + i, len - i < 3 ? len - i : 3), 0);
        assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
        assert_string_equal(cid_to_string(&root, s), want);
        unixfs_builder_free(b);
}

static void test_small__spec_vectors(void **state)
{
        struct unixfs_params legacy, v1;

        (void)state;
        unixfs_params_profile(UNIXFS_PROFILE_LEGACY, &legacy);
        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &v1);
        check_bytes(&legacy, "", 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        check_bytes(&v1, "", 0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        check_bytes(&legacy, "hello world", 11, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD");
        check_bytes(&v1, "hello world", 11,
                    "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
        {
                struct unixfs_params p = params(1, false, 262144, 174);

                check_bytes(&p, "hello world", 11,
                            "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa");
        }
        check_bytes(&legacy, "hello world\n", 12, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
        check_bytes(&legacy, "Hello Worlds!\n", 14,
                    "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH");
        check_bytes(&legacy, "IPFS\n", 5, "QmdFyxZXsFiP4csgfM5uPu99AvFiKH62CSPDw5TP92nr7w");
        {
                struct unixfs_params p = params(1, false, 262144, 174);

                check_bytes(&p, "Hello from IPFS Gateway Checker\n", 32,
                            "bafybeifx7yeb55armcsxwwitkymga5xf53dxiarykms3ygqic223w5sk3m");
        }
}

static void check_stream(struct unixfs_params p, uint64_t total, const char *seed, const char *want)
{
        char s[CID_MAX_STR];
        uint64_t tsize;

        build_stream(&p, total, seed, s, &tsize);
        if (strcmp(s, want) != 0)
                fail_msg("%llu bytes (seed %s): got %s, want %s", (unsigned long long)total,
                         seed ? seed : "zeros", s, want);
}

static void test_zeros__spec_vectors(void **state)
{
        (void)state;
        check_stream(params(0, false, 262144, 174), 262144, NULL,
                     "QmRk1rduJvo5DfEYAaLobS2za9tDszk35hzaNSDCJ74DA7");
        check_stream(params(0, false, 262144, 174), 1 << 20, NULL,
                     "QmVkbauSDEaMP4Tkq6Epm9uW75mWm136n81YH8fGtfwdHU");
        check_stream(params(1, true, 262144, 174), 1 << 20, NULL,
                     "bafybeiggzq4ryi7hscq5hzvzcnk4urnxt3asp37dhgvnjilf7exskximla");
        check_stream(params(0, true, 262144, 174), 1 << 20, NULL,
                     "Qmbig3qCRjdufAtQptiZ9F34poRoRJywcyxH7BmmCce4YF");
        check_stream(params(1, true, 1 << 20, 1024), 1 << 20, NULL,
                     "bafkreibq4fevl27rgurgnxbp7adh42aqiyd6ouflxhj3gzmcxcxzbh6lla");
        check_stream(params(1, false, 1 << 20, 174), 1 << 20, NULL,
                     "bafybeids7spn7r37szbnm2xm3jhg7invbu6tiq7bjt7nqmaibfddwynkdq");
        check_stream(params(0, false, 262144, 174), 10 << 20, NULL,
                     "QmaJ6kN9fW3TKpVkpf1NuW7cjhHjNp5Jwr3cQuHzsoZWkJ");
        check_stream(params(0, false, 262144, 174), 100 << 20, NULL,
                     "Qmca3PNFKuZnYkiVv1FpcV1AfDUm4qCSHoYjPTBqDAsyk8");
}

static void test_profiles__ipip499_vectors(void **state)
{
        struct unixfs_params legacy, v1;

        (void)state;
        unixfs_params_profile(UNIXFS_PROFILE_LEGACY, &legacy);
        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &v1);
        check_stream(legacy, 262144, "chunk-v0-seed",
                     "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE");
        check_stream(legacy, 262145, "chunk-v0-seed",
                     "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ");
        check_stream(legacy, 174ull * 262144, "v0-seed",
                     "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2");
        check_stream(legacy, 174ull * 262144 + 1, "v0-seed",
                     "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW");
        check_stream(v1, 1048576, "chunk-v1-seed",
                     "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta");
        check_stream(v1, 1048577, "chunk-v1-seed",
                     "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64");
        check_stream(params(0, false, 262144, 1024), 1024ull * 262144, "hello world",
                     "QmbBftNHWmjSWKLC49dMVrfnY8pjrJYntiAXirFJ7oJrNk");
}

static void test_profiles__1gib_v1_2025_vectors(void **state)
{
        struct unixfs_params v1;

        (void)state;
        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &v1);
        check_stream(v1, 1024ull << 20, "v1-2025-seed",
                     "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm");
        check_stream(v1, (1024ull << 20) + 1, "v1-2025-seed",
                     "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe");
}

static void test_params__out_of_range__refused(void **state)
{
        struct unixfs_params p = params(1, true, 0, 174);
        struct unixfs_builder *b = NULL;

        (void)state;
        assert_int_equal(unixfs_builder_new(&p, count_block, NULL, &b), -EINVAL);
        p = params(2, true, 1024, 174);
        assert_int_equal(unixfs_builder_new(&p, count_block, NULL, &b), -EINVAL);
        p = params(0, false, 4 << 20, 174);
        assert_int_equal(unixfs_builder_new(&p, count_block, NULL, &b), -EINVAL);
        p = params(0, false, 1024, 1);
        assert_int_equal(unixfs_builder_new(&p, count_block, NULL, &b), -EINVAL);
        assert_null(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_small__spec_vectors),
                cmocka_unit_test(test_zeros__spec_vectors),
                cmocka_unit_test(test_profiles__ipip499_vectors),
                cmocka_unit_test(test_profiles__1gib_v1_2025_vectors),
                cmocka_unit_test(test_params__out_of_range__refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
