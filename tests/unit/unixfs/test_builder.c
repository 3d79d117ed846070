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

/* §16.1 rows for raw leaves, CIDv1 dag-pb leaves and base32-printed CIDv0 roots */
static void test_small__cid_forms__spec_vectors(void **state)
{
        struct unixfs_params legacy, v1 = params(1, true, 262144, 174),
                                     v1pb = params(1, false, 262144, 174),
                                     v0raw = params(0, true, 262144, 174);
        struct unixfs_builder *b;
        char s[CID_MAX_STR];
        size_t blocks = 0;
        struct cid root, v1root;

        (void)state;
        unixfs_params_profile(UNIXFS_PROFILE_LEGACY, &legacy);
        check_bytes(&v1pb, "", 0, "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y");
        check_bytes(&v0raw, "", 0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        check_bytes(&v1, "hello world\n", 12,
                    "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4");
        check_bytes(&v1pb, "hello world\n", 12,
                    "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby");
        check_bytes(&v1, "test", 4, "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba");
        check_bytes(&v1, "hello application/vnd.ipld.car\n", 31,
                    "bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm");
        /* "test" in base16 as well */
        assert_int_equal(unixfs_builder_new(&v1, count_block, &blocks, &b), 0);
        assert_int_equal(unixfs_builder_write(b, "test", 4), 0);
        assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_true(cid_format(&root, CID_BASE_BASE16, s, sizeof(s)) > 0);
        assert_string_equal(s,
                            "f015512209f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f"
                            "00a08");
        /* a default (v0) import printed in base32 is its CIDv1 form */
        assert_int_equal(unixfs_builder_new(&legacy, count_block, &blocks, &b), 0);
        assert_int_equal(unixfs_builder_write(b, "base32 test\n", 12), 0);
        assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_int_equal(cid_to_v1(&root, &v1root), 0);
        assert_string_equal(cid_to_string(&v1root, s),
                            "bafybeibyosqxljd2eptb4ebbtvk7pb4aoxzqa6ttdsflty6rsslz5y6i34");
}

/* Records every emitted block, to check the upload order and the tree's shape. */
struct emitted {
        struct cid cids[512];
        uint8_t *blocks[512];
        size_t lens[512];
        size_t n;
        uint64_t bytes;
};

static int record_block(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        struct emitted *e = ud;
        struct unixfs_node node;

        assert_true(e->n < 512);
        /* children before parents: every link points at a block already emitted */
        assert_int_equal(unixfs_node_decode(cid, p, len, &node), 0);
        for (size_t i = 0; !node.is_raw && i < node.pb.n_links; i++) {
                bool seen = false;

                for (size_t k = 0; k < e->n && !seen; k++)
                        seen = cid_equal(&e->cids[k], &node.pb.links[i].cid);
                assert_true(seen);
                assert_true(node.pb.links[i].has_name && node.pb.links[i].name.len == 0);
        }
        unixfs_node_done(&node);
        e->cids[e->n] = *cid;
        e->blocks[e->n] = malloc(len ? len : 1);
        assert_non_null(e->blocks[e->n]);
        memcpy(e->blocks[e->n], p, len);
        e->lens[e->n++] = len;
        e->bytes += len;
        return 0;
}

static size_t n_links_of(struct emitted *e, const struct cid *cid)
{
        for (size_t k = 0; k < e->n; k++)
                if (cid_equal(&e->cids[k], cid)) {
                        struct unixfs_node node;
                        size_t n;

                        assert_int_equal(unixfs_node_decode(cid, e->blocks[k], e->lens[k], &node),
                                         0);
                        n = node.pb.n_links;
                        unixfs_node_done(&node);
                        return n;
                }
        fail();
        return 0;
}

/* §13.4: 175 chunks with 174 links make a root [174-leaf node, 1-leaf node]; blocks come out
 * leaves first, parents after children; Tsize is the bytes of every block in the tree. */
static void test_balanced__175_chunks__boxo_shape_and_upload_order(void **state)
{
        struct unixfs_params p = params(0, false, 1000, 174);
        static uint8_t data[175 * 1000];
        struct unixfs_builder *b;
        struct emitted *e = calloc(1, sizeof(*e));
        struct unixfs_node root_n;
        struct cid root;
        uint64_t size, tsize;

        (void)state;
        assert_non_null(e);
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 7 + i / 1000); /* no two chunks alike */
        assert_int_equal(unixfs_builder_new(&p, record_block, e, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, sizeof(data)), 0);
        assert_int_equal(unixfs_builder_finish(b, &root, &size, &tsize), 0);
        unixfs_builder_free(b);
        assert_int_equal(size, sizeof(data));
        assert_int_equal(e->n, 175 + 2 + 1);
        assert_true(cid_equal(&e->cids[e->n - 1], &root)); /* the root comes last */
        assert_int_equal(tsize, e->bytes);
        assert_int_equal(unixfs_node_decode(&root, e->blocks[e->n - 1], e->lens[e->n - 1], &root_n),
                         0);
        assert_int_equal(root_n.pb.n_links, 2);
        assert_int_equal(n_links_of(e, &root_n.pb.links[0].cid), 174);
        assert_int_equal(n_links_of(e, &root_n.pb.links[1].cid), 1);
        assert_int_equal(root_n.fs.blocksizes[0], 174000);
        assert_int_equal(root_n.fs.blocksizes[1], 1000);
        assert_int_equal(root_n.fs.filesize, sizeof(data));
        unixfs_node_done(&root_n);
        for (size_t k = 0; k < e->n; k++)
                free(e->blocks[k]);
        free(e);
}

/* Chunking never depends on how the bytes arrive: odd write sizes give the same root. */
static void test_builder__write_sizes__same_root(void **state)
{
        static const size_t pieces[] = { 1, 16383, 16384, 16385, 3, 100000, 7, 65536 };
        struct unixfs_params p = params(1, true, 16384, 174);
        static uint8_t data[3 * 1000 * 1000 + 11];
        struct unixfs_builder *b;
        struct cid one, many;
        struct chacha cc;
        size_t blocks = 0;

        (void)state;
        chacha_init(&cc, "write-sizes");
        chacha_fill(&cc, data, sizeof(data));
        chacha_done(&cc);
        assert_int_equal(unixfs_builder_new(&p, count_block, &blocks, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, sizeof(data)), 0);
        assert_int_equal(unixfs_builder_finish(b, &one, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_int_equal(unixfs_builder_new(&p, count_block, &blocks, &b), 0);
        for (size_t off = 0, k = 0; off < sizeof(data); k++) {
                size_t n = MIN(pieces[k % ELEMENTSOF(pieces)], sizeof(data) - off);

                assert_int_equal(unixfs_builder_write(b, data + off, n), 0);
                assert_int_equal(unixfs_builder_write(b, data, 0), 0); /* empty writes are fine */
                off += n;
        }
        assert_int_equal(unixfs_builder_finish(b, &many, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_true(cid_equal(&one, &many));
}

/* An emit callback's error stops the build and sticks. */
static int fail_third(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        (void)cid;
        (void)p;
        (void)len;
        return ++*(size_t *)ud == 3 ? -ENOSPC : 0;
}

static void test_builder__emit_error__sticky(void **state)
{
        struct unixfs_params p = params(1, true, 16384, 174);
        static uint8_t data[16384 * 5];
        struct unixfs_builder *b;
        size_t calls = 0;
        struct cid root;

        (void)state;
        assert_int_equal(unixfs_builder_new(&p, fail_third, &calls, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, sizeof(data)), -ENOSPC);
        assert_int_equal(unixfs_builder_write(b, data, 1), -ENOSPC);
        assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), -ENOSPC);
        unixfs_builder_free(b);
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

struct leaf_list {
        struct cid cids[174];
        size_t n;
};

static int collect_leaf(const struct cid *cid, const uint8_t *block, size_t len, void *userdata)
{
        struct leaf_list *l = userdata;

        (void)block;
        (void)len;
        if (cid->codec == CID_CODEC_RAW && l->n < 174)
                l->cids[l->n++] = *cid;
        return 0;
}

/* A run of equal raw leaves in one node is the root the builder (and js-ipfs's add, 174 links)
 * makes of the same bytes: 1 (the leaf itself), 2, 173 and 174 chunks; v0 and v1. */
static void test_root_of_leaves__equals_builder(void **state)
{
        static const size_t counts[] = { 1, 2, 173, 174 };
        const size_t chunk = 64;
        uint8_t data[174 * 64];

        (void)state;
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 131 + i / 7);
        for (unsigned v = 0; v <= 1; v++)
                for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
                        struct unixfs_params p = params(v, true, chunk, 174);
                        struct leaf_list l = { .n = 0 };
                        struct unixfs_builder *b;
                        struct cid want, got;

                        assert_int_equal(unixfs_builder_new(&p, collect_leaf, &l, &b), 0);
                        assert_int_equal(unixfs_builder_write(b, data, counts[k] * chunk), 0);
                        assert_int_equal(unixfs_builder_finish(b, &want, NULL, NULL), 0);
                        unixfs_builder_free(b);
                        assert_int_equal(l.n, counts[k]);
                        assert_int_equal(unixfs_file_root_of_leaves(l.cids, l.n, chunk, v, &got),
                                         0);
                        assert_true(cid_equal(&got, &want));
                        /* another leaf size names another root */
                        if (l.n > 1) {
                                assert_int_equal(
                                        unixfs_file_root_of_leaves(l.cids, l.n, chunk + 1, v, &got),
                                        0);
                                assert_false(cid_equal(&got, &want));
                        }
                }
        assert_int_equal(unixfs_file_root_of_leaves(NULL, 0, chunk, 1, &(struct cid){ 0 }),
                         -EINVAL);
}

/* Builds data into e; returns the root's index in e (the last block emitted). */
static size_t build_into(const struct unixfs_params *p, const char *data, struct emitted *e,
                         struct cid *ret_root)
{
        struct unixfs_builder *b;

        assert_int_equal(unixfs_builder_new(p, record_block, e, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, strlen(data)), 0);
        assert_int_equal(unixfs_builder_finish(b, ret_root, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_true(cid_equal(&e->cids[e->n - 1], ret_root));
        return e->n - 1;
}

static void check_meta(const struct cid *root, const uint8_t *block, size_t len,
                       const struct unixfs_meta *m, unsigned v, const char *want,
                       uint64_t want_tsize)
{
        struct buf out;
        char s[CID_MAX_STR];
        struct cid got;
        uint64_t tsize = 0;

        buf_init(&out, CID_MAX_BLOCK);
        assert_int_equal(unixfs_file_set_meta(root, block, len, m, v, &out, &got, &tsize), 0);
        assert_string_equal(cid_to_string(&got, s), want);
        assert_int_equal(tsize, want_tsize);
        buf_done(&out);
}

/* Kubo test/sharness/t0047-add-mode-mtime.sh (`add --preserve-mode/--preserve-mtime`, legacy
 * profile, empty file) from its dag-pb leaf and from a raw empty block; js-ipfs 0.66 `add`
 * (cid-version 1, raw leaves, mode 0755, mtime 1604320482.000054321) of one raw leaf, of
 * three raw leaves (chunker size-4: the root alone gets the fields) and of an empty file. */
static void test_set_meta__kubo_and_js_ipfs__vectors(void **state)
{
        static const uint8_t empty_leaf[] = { 0x0a, 0x04, 0x08, 0x02, 0x18, 0x00 };
        const struct unixfs_meta mode = { .mode = 0640, .has_mode = true };
        const struct unixfs_meta mtime = { .mtime_sec = 1604320482, .has_mtime = true };
        const struct unixfs_meta both = {
                .mode = 0640, .has_mode = true, .mtime_sec = 1604320482, .has_mtime = true
        };
        const struct unixfs_meta nsecs = { .mtime_sec = 1603539720,
                                           .mtime_nsec = 54321,
                                           .has_mtime = true };
        const struct unixfs_meta js = { .mode = 0755,
                                        .has_mode = true,
                                        .mtime_sec = 1604320482,
                                        .mtime_nsec = 54321,
                                        .has_mtime = true };
        struct unixfs_params v1 = params(1, true, 262144, 174);
        struct emitted *e = calloc(1, sizeof(*e));
        struct cid leaf, raw_empty, root;
        size_t k;

        (void)state;
        assert_non_null(e);
        assert_int_equal(cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, empty_leaf,
                                     sizeof(empty_leaf), &leaf),
                         0);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "", 0, &raw_empty), 0);
        check_meta(&leaf, empty_leaf, sizeof(empty_leaf), &mode, 0,
                   "QmQLgxypSNGNFTuUPGCecq6dDEjb6hNB5xSyVmP3cEuNtq", 9);
        check_meta(&leaf, empty_leaf, sizeof(empty_leaf), &mtime, 0,
                   "QmQ6kErEW8kztQFV8vbwNU8E4dmtGsYpRiboiLxUEwibvj", 14);
        check_meta(&leaf, empty_leaf, sizeof(empty_leaf), &both, 0,
                   "QmYkvboLsvLFcSYmqVJRxvBdYRQLroLv9kELf3LRiCqBri", 17);
        check_meta(&leaf, empty_leaf, sizeof(empty_leaf), &nsecs, 0,
                   "QmaKH8H5rXBUBCX4vdxi7ktGQEL7wejV7L9rX2qpZjwncz", 19);
        check_meta(&raw_empty, (const uint8_t *)"", 0, &both, 0,
                   "QmYkvboLsvLFcSYmqVJRxvBdYRQLroLv9kELf3LRiCqBri", 17);
        check_meta(&raw_empty, (const uint8_t *)"", 0, &js, 1,
                   "bafybeigxgo4dj463kiiop4poabmxdf7yhj74w4vkde2f24qz4ndvedcydy", 22);
        k = build_into(&v1, "hello world\n", e, &root);
        check_meta(&root, e->blocks[k], e->lens[k], &js, 1,
                   "bafybeicnv6q2v5efefhrwx6ntiurdkfqwxor7b45jzqespdyfichxcm5c4", 36);
        v1.chunk_size = 4;
        k = build_into(&v1, "abcdefghij", e, &root);
        check_meta(&root, e->blocks[k], e->lens[k], &js, 1,
                   "bafybeicaqowda2vfzjhdfjreflnvyewd53nw27ihxzvlfycl44cgnueumy", 170);
        /* fields already there are replaced, or dropped when meta has none */
        {
                struct buf out;
                struct cid with;
                uint64_t tsize;

                buf_init(&out, CID_MAX_BLOCK);
                assert_int_equal(unixfs_file_set_meta(&leaf, empty_leaf, sizeof(empty_leaf), &js, 0,
                                                      &out, &with, &tsize),
                                 0);
                check_meta(&with, out.p, out.len, &mode, 0,
                           "QmQLgxypSNGNFTuUPGCecq6dDEjb6hNB5xSyVmP3cEuNtq", 9);
                check_meta(&with, out.p, out.len, NULL, 0,
                           "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", 6);
                buf_done(&out);
        }
        for (k = 0; k < e->n; k++)
                free(e->blocks[k]);
        free(e);
}

/* Only file roots take metadata; a too-big result is refused, not made. */
static void test_set_meta__not_a_file_or_too_big__refused(void **state)
{
        static const uint8_t dir[] = { 0x0a, 0x02, 0x08, 0x01 };
        const struct unixfs_meta m = { .mode = 0755, .has_mode = true };
        uint8_t *big = calloc(1, CID_MAX_BLOCK);
        struct cid c, got;
        struct buf out;
        uint64_t tsize;

        (void)state;
        assert_non_null(big);
        buf_init(&out, 2 * CID_MAX_BLOCK);
        assert_int_equal(cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, dir, sizeof(dir), &c),
                         0);
        assert_int_equal(unixfs_file_set_meta(&c, dir, sizeof(dir), &m, 0, &out, &got, &tsize),
                         -EBADMSG);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, big, CID_MAX_BLOCK, &c), 0);
        assert_int_equal(unixfs_file_set_meta(&c, big, CID_MAX_BLOCK, &m, 1, &out, &got, &tsize),
                         -E2BIG);
        buf_done(&out);
        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_small__spec_vectors),
                cmocka_unit_test(test_small__cid_forms__spec_vectors),
                cmocka_unit_test(test_balanced__175_chunks__boxo_shape_and_upload_order),
                cmocka_unit_test(test_builder__write_sizes__same_root),
                cmocka_unit_test(test_builder__emit_error__sticky),
                cmocka_unit_test(test_zeros__spec_vectors),
                cmocka_unit_test(test_profiles__ipip499_vectors),
                cmocka_unit_test(test_profiles__1gib_v1_2025_vectors),
                cmocka_unit_test(test_params__out_of_range__refused),
                cmocka_unit_test(test_root_of_leaves__equals_builder),
                cmocka_unit_test(test_set_meta__kubo_and_js_ipfs__vectors),
                cmocka_unit_test(test_set_meta__not_a_file_or_too_big__refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
