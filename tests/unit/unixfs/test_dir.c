/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Directories and HAMT sharding against ipfs.md §10 and §16 vectors; listing and lookup
 * through an in-memory block map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vectors.h"

/* in-memory block store (linear: tests are small) */
struct store {
        struct cid *cids;
        uint8_t **blocks;
        size_t *lens;
        size_t n, cap;
};

static int store_put(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        struct store *s = ud;

        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 64;
                s->cids = realloc(s->cids, s->cap * sizeof(*s->cids));
                s->blocks = realloc(s->blocks, s->cap * sizeof(*s->blocks));
                s->lens = realloc(s->lens, s->cap * sizeof(*s->lens));
                assert_non_null(s->cids);
                assert_non_null(s->blocks);
                assert_non_null(s->lens);
        }
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

static void store_free(struct store *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->blocks[i]);
        free(s->cids);
        free(s->blocks);
        free(s->lens);
}

static void file_cid(enum unixfs_profile prof, const char *data, struct cid *ret,
                     uint64_t *ret_tsize, struct store *s)
{
        struct unixfs_params p;
        struct unixfs_builder *b;

        unixfs_params_profile(prof, &p);
        assert_int_equal(unixfs_builder_new(&p, store_put, s, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, strlen(data)), 0);
        assert_int_equal(unixfs_builder_finish(b, ret, NULL, ret_tsize), 0);
        unixfs_builder_free(b);
}

static void test_murmur3__spec_check_values(void **state)
{
        (void)state;
        assert_int_equal(unixfs_murmur3_64("470.txt", 7), 0x006e88df5847e67cULL);
        assert_int_equal(unixfs_murmur3_64("hello.txt", 9), 0xdf19ab11523994d9ULL);
        assert_int_equal(unixfs_murmur3_64("", 0), 0);
        assert_int_equal(unixfs_murmur3_64("742.txt", 7) >> 48, 0x00ff);
}

static void test_basic__wrapped_hello__spec_vector(void **state)
{
        struct unixfs_dir_params dp;
        struct unixfs_dirent e;
        struct store s = { 0 };
        char out[CID_MAX_STR];
        struct cid root, found;
        uint64_t tsize;

        (void)state;
        file_cid(UNIXFS_PROFILE_LEGACY, "hello world\n", &e.cid, &e.tsize, &s);
        e.name = "hello.txt";
        e.name_len = 9;
        unixfs_dir_params_profile(UNIXFS_PROFILE_LEGACY, &dp);
        assert_int_equal(unixfs_dir_build(&dp, &e, 1, store_put, &s, &root, &tsize), 0);
        assert_string_equal(cid_to_string(&root, out),
                            "QmfLiVjH2vujCVP2e75zyzBYmpcjktmDeU1YBz6Ct8BBsc");
        assert_int_equal(tsize, 75);
        assert_int_equal(unixfs_dir_lookup(&root, "hello.txt", store_get, &s, &found, &tsize), 0);
        assert_true(cid_equal(&found, &e.cid));
        assert_int_equal(unixfs_dir_lookup(&root, "nope", store_get, &s, &found, &tsize), -ENOENT);
        store_free(&s);

        /* the same in CIDv1 with a raw leaf */
        memset(&s, 0, sizeof(s));
        file_cid(UNIXFS_PROFILE_DEFAULT, "hello world\n", &e.cid, &e.tsize, &s);
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        assert_int_equal(unixfs_dir_build(&dp, &e, 1, store_put, &s, &root, &tsize), 0);
        assert_string_equal(cid_to_string(&root, out),
                            "bafybeidhkumeonuwkebh2i4fc7o7lguehauradvlk57gzake6ggjsy372a");
        store_free(&s);
}

/* ipfs.md §16.1: {foo = "content\n", bar -> symlink to foo} */
static void test_basic__file_and_symlink__spec_vector(void **state)
{
        static const uint8_t symlink[] = { 0x0a, 0x07, 0x08, 0x04, 0x12, 0x03, 'f', 'o', 'o' };
        struct unixfs_dir_params dp;
        struct unixfs_dirent e[2];
        struct store s = { 0 };
        char out[CID_MAX_STR];
        struct cid root;
        uint64_t tsize;

        (void)state;
        file_cid(UNIXFS_PROFILE_LEGACY, "content\n", &e[0].cid, &e[0].tsize, &s);
        assert_string_equal(cid_to_string(&e[0].cid, out),
                            "Qme2y5HA5kvo2jAx13UsnV5bQJVijiAJCPvaW3JGQWhvJZ");
        e[0].name = "foo";
        e[0].name_len = 3;
        assert_int_equal(cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, symlink, sizeof(symlink),
                                     &e[1].cid),
                         0);
        e[1].tsize = sizeof(symlink);
        e[1].name = "bar";
        e[1].name_len = 3;
        unixfs_dir_params_profile(UNIXFS_PROFILE_LEGACY, &dp);
        assert_int_equal(unixfs_dir_build(&dp, e, 2, store_put, &s, &root, &tsize), 0);
        assert_string_equal(cid_to_string(&root, out),
                            "QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt");
        store_free(&s);
}

static void test_basic__empty_and_duplicates(void **state)
{
        struct unixfs_dir_params dp;
        struct unixfs_dirent e[2];
        struct store s = { 0 };
        char out[CID_MAX_STR];
        struct cid root;
        uint64_t tsize;

        (void)state;
        unixfs_dir_params_profile(UNIXFS_PROFILE_LEGACY, &dp);
        assert_int_equal(unixfs_dir_build(&dp, NULL, 0, store_put, &s, &root, &tsize), 0);
        assert_string_equal(cid_to_string(&root, out),
                            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
        file_cid(UNIXFS_PROFILE_LEGACY, "x", &e[0].cid, &e[0].tsize, &s);
        e[1] = e[0];
        e[0].name = e[1].name = "same";
        e[0].name_len = e[1].name_len = 4;
        assert_int_equal(unixfs_dir_build(&dp, e, 2, store_put, &s, &root, &tsize), -EEXIST);
        store_free(&s);
}

struct listed {
        char **names;
        size_t n;
};

static int collect(const struct unixfs_dirent *e, void *ud)
{
        struct listed *l = ud;

        l->names[l->n] = strdup(e->name);
        assert_non_null(l->names[l->n]);
        l->n++;
        return 0;
}

static int strp_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ipfs.md §16.3: n entries of cid, named from the ChaCha20 stream of the seed (byte % 39 into
 * the alphabet), name_len bytes each but the last; names[i] are malloc'd. */
static void hamt_entries(const char *seed, size_t n, size_t name_len, size_t last_len,
                         const struct cid *cid, uint64_t tsize, char **names,
                         struct unixfs_dirent *e)
{
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz01234567890-_";
        struct chacha cc;

        chacha_init(&cc, seed);
        for (size_t i = 0; i < n; i++) {
                size_t len = i + 1 == n ? last_len : name_len;
                uint8_t raw[64];

                chacha_fill(&cc, raw, len);
                names[i] = calloc(1, len + 1);
                assert_non_null(names[i]);
                for (size_t j = 0; j < len; j++)
                        names[i][j] = alphabet[raw[j] % 39];
                e[i] = (struct unixfs_dirent){
                        .name = names[i], .name_len = len, .cid = *cid, .tsize = tsize
                };
        }
        chacha_done(&cc);
}

static void hamt_case(enum unixfs_profile prof, const char *seed, size_t n, size_t name_len,
                      size_t last_len, const char *want)
{
        struct unixfs_dirent *e = calloc(n, sizeof(*e));
        char **names = calloc(n, sizeof(*names));
        struct listed got = { .names = calloc(n, sizeof(char *)) };
        struct unixfs_dir_params dp;
        struct store s = { 0 };
        char out[CID_MAX_STR];
        struct cid xcid, root, found;
        uint64_t xtsize, tsize;

        assert_non_null(e);
        assert_non_null(names);
        assert_non_null(got.names);
        file_cid(prof, "x", &xcid, &xtsize, &s);
        hamt_entries(seed, n, name_len, last_len, &xcid, xtsize, names, e);
        unixfs_dir_params_profile(prof, &dp);
        assert_int_equal(unixfs_dir_build(&dp, e, n, store_put, &s, &root, &tsize), 0);
        if (strcmp(cid_to_string(&root, out), want) != 0)
                fail_msg("%zu entries from %s: got %s, want %s", n, seed, out, want);
        /* every name listed exactly once, and each found by lookup */
        assert_int_equal(unixfs_dir_list(&root, store_get, &s, collect, &got), 0);
        assert_int_equal(got.n, n);
        qsort(got.names, n, sizeof(char *), strp_cmp);
        qsort(names, n, sizeof(char *), strp_cmp);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(got.names[i], names[i]);
                if (i % 97 == 0) {
                        assert_int_equal(
                                unixfs_dir_lookup(&root, names[i], store_get, &s, &found, &tsize),
                                0);
                        assert_true(cid_equal(&found, &xcid));
                }
                free(got.names[i]);
                free(names[i]);
        }
        assert_int_equal(unixfs_dir_lookup(&root, "not-there", store_get, &s, &found, &tsize),
                         -ENOENT);
        free(got.names);
        free(names);
        free(e);
        store_free(&s);
}

static void test_hamt__legacy_threshold__spec_vectors(void **state)
{
        (void)state;
        hamt_case(UNIXFS_PROFILE_LEGACY, "hamt-unixfs-v0-2015", 4096, 30, 30,
                  "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN");
        hamt_case(UNIXFS_PROFILE_LEGACY, "hamt-unixfs-v0-2015", 4033, 31, 31,
                  "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP");
}

static void test_hamt__v1_2025_threshold__spec_vectors(void **state)
{
        (void)state;
        hamt_case(UNIXFS_PROFILE_DEFAULT, "hamt-unixfs-v1-2025", 4766, 11, 21,
                  "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4");
        hamt_case(UNIXFS_PROFILE_DEFAULT, "hamt-unixfs-v1-2025", 4766, 11, 22,
                  "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu");
}

/* ipfs.md §16.1: `add -r` of {hey = "Hey\n", hello/world = "World\n"}, default (legacy) */
static void test_basic__nested_tree__spec_vector(void **state)
{
        struct unixfs_dir_params dp;
        struct unixfs_dirent top[2], sub;
        struct store s = { 0 };
        char out[CID_MAX_STR];
        struct cid root, got;
        uint64_t tsize;

        (void)state;
        unixfs_dir_params_profile(UNIXFS_PROFILE_LEGACY, &dp);
        file_cid(UNIXFS_PROFILE_LEGACY, "World\n", &sub.cid, &sub.tsize, &s);
        sub.name = "world";
        sub.name_len = 5;
        top[0].name = "hey";
        top[0].name_len = 3;
        file_cid(UNIXFS_PROFILE_LEGACY, "Hey\n", &top[0].cid, &top[0].tsize, &s);
        top[1].name = "hello";
        top[1].name_len = 5;
        assert_int_equal(unixfs_dir_build(&dp, &sub, 1, store_put, &s, &top[1].cid, &top[1].tsize),
                         0);
        assert_int_equal(unixfs_dir_build(&dp, top, 2, store_put, &s, &root, &tsize), 0);
        assert_string_equal(cid_to_string(&root, out),
                            "QmZQWnfcqJ6hNkkPvrY9Q5X39GP3jUnUbAV4AbmbbR3Cb1");
        /* entries were sorted by name bytes: "hello" before "hey" */
        assert_string_equal(top[0].name, "hello");
        assert_int_equal(unixfs_dir_lookup(&root, "hello", store_get, &s, &got, &tsize), 0);
        assert_int_equal(unixfs_dir_lookup(&got, "world", store_get, &s, &got, &tsize), 0);
        assert_true(cid_equal(&got, &sub.cid));
        assert_int_equal(unixfs_dir_lookup(&sub.cid, "x", store_get, &s, &got, &tsize), -ENOTDIR);
        store_free(&s);
}

/* Finds the link named `name` in the block of cid. */
static const struct unixfs_pb_link *find_link(struct store *s, const struct cid *cid,
                                              const char *name, struct unixfs_node *n,
                                              uint8_t **blk)
{
        size_t len = 0;

        assert_int_equal(store_get(cid, blk, &len, s), 0);
        assert_int_equal(unixfs_node_decode(cid, *blk, len, n), 0);
        assert_int_equal(n->fs.type, UNIXFS_HAMT_SHARD);
        for (size_t i = 0; i < n->pb.n_links; i++)
                if (n->pb.links[i].name.len == strlen(name) &&
                    memcmp(n->pb.links[i].name.p, name, strlen(name)) == 0)
                        return &n->pb.links[i];
        return NULL;
}

/* ipfs.md §16.4 / §10.3: 1.txt..1000.txt sharded (here by Kubo's max-links rule): root
 * bucket 00 is a sub-shard holding exactly "6E470.txt" and "FF742.txt"; bitfield trimmed. */
static void test_hamt__fixture_shape__470_and_742(void **state)
{
        struct unixfs_dirent *e = calloc(1000, sizeof(*e));
        char(*names)[16] = calloc(1000, sizeof(*names));
        struct unixfs_dir_params dp;
        const struct unixfs_pb_link *l;
        struct unixfs_node root_n, sub_n;
        struct store s = { 0 };
        uint8_t *b1 = NULL, *b2 = NULL;
        struct cid x, root, got;
        uint64_t xt, tsize;

        (void)state;
        assert_non_null(e);
        assert_non_null(names);
        file_cid(UNIXFS_PROFILE_DEFAULT, "x", &x, &xt, &s);
        for (size_t i = 0; i < 1000; i++) {
                int n = snprintf(names[i], sizeof(names[i]), "%zu.txt", i + 1);

                e[i] = (struct unixfs_dirent){
                        .name = names[i], .name_len = (size_t)n, .cid = x, .tsize = xt
                };
        }
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        assert_int_equal(unixfs_dir_build(&dp, e, 1000, store_put, &s, &root, &tsize), 0);
        assert_int_equal(store_get(&root, &b1, &tsize, &s), 0);
        assert_int_equal(unixfs_node_decode(&root, b1, tsize, &root_n), 0);
        assert_int_equal(root_n.fs.type, UNIXFS_DIRECTORY); /* 43 KB: under the threshold */
        unixfs_node_done(&root_n);
        free(b1);

        dp.max_links = 999;
        assert_int_equal(unixfs_dir_build(&dp, e, 1000, store_put, &s, &root, &tsize), 0);
        l = find_link(&s, &root, "00", &root_n, &b1);
        assert_non_null(l);
        assert_int_equal(root_n.fs.fanout, 256);
        assert_int_equal(root_n.fs.hash_type, 0x22);
        /* bucket 0 is set: the lowest bit of the last bitfield byte */
        assert_true(root_n.fs.data.len >= 1 && root_n.fs.data.len <= 32);
        assert_true(root_n.fs.data.len == 32 || root_n.fs.data.p[0] != 0);
        assert_int_equal(root_n.fs.data.p[root_n.fs.data.len - 1] & 1, 1);
        got = l->cid;
        assert_non_null(find_link(&s, &got, "6E470.txt", &sub_n, &b2));
        assert_int_equal(sub_n.pb.n_links, 2);
        assert_memory_equal(sub_n.pb.links[1].name.p, "FF742.txt", 9);
        /* sub-shard bitfield: buckets 0x6E and 0xFF -> 32 bytes, first byte 0x80 */
        assert_int_equal(sub_n.fs.data.len, 32);
        assert_int_equal(sub_n.fs.data.p[0], 0x80);
        assert_int_equal(sub_n.fs.data.p[31 - 0x6e / 8], 1u << (0x6e % 8));
        unixfs_node_done(&sub_n);
        free(b2);
        unixfs_node_done(&root_n);
        free(b1);
        assert_int_equal(unixfs_dir_lookup(&root, "470.txt", store_get, &s, &got, &tsize), 0);
        assert_true(cid_equal(&got, &x));
        assert_int_equal(unixfs_dir_lookup(&root, "1001.txt", store_get, &s, &got, &tsize),
                         -ENOENT);
        free(names);
        free(e);
        store_free(&s);
}

static int count_entries(const struct unixfs_dirent *e, void *ud)
{
        (void)e;
        (*(size_t *)ud)++;
        return 0;
}

/* A shard whose 256 buckets all hold sub-shard `next` (or, without next, one entry). */
static void put_shard(struct store *s, const struct cid *next, struct cid *ret)
{
        static struct unixfs_pb_link links[256];
        static char names[256][8];
        uint8_t bits[32];
        struct unixfs_data d = { .type = UNIXFS_HAMT_SHARD,
                                 .data = { bits, sizeof(bits) },
                                 .has_data = true,
                                 .hash_type = 0x22,
                                 .has_hash_type = true,
                                 .fanout = 256,
                                 .has_fanout = true };
        struct unixfs_pb_node n = { .links = links, .n_links = next ? 256 : 1, .has_data = true };
        struct buf db, bb;

        memset(bits, 0xff, sizeof(bits));
        for (size_t i = 0; i < n.n_links; i++) {
                int len = snprintf(names[i], sizeof(names[i]), next ? "%02zX" : "%02zXe", i);

                links[i] =
                        (struct unixfs_pb_link){ .cid = next ? *next : *ret,
                                                 .name = { (const uint8_t *)names[i], (size_t)len },
                                                 .has_name = true };
        }
        buf_init(&db, 256);
        buf_init(&bb, 65536);
        assert_int_equal(unixfs_data_encode(&d, &db), 0);
        n.data = buf_view(&db);
        assert_int_equal(unixfs_pb_encode(&n, &bb), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len, ret), 0);
        assert_int_equal(store_put(ret, bb.p, bb.len, s), 0);
        buf_done(&db);
        buf_done(&bb);
}

/* Counts entries until the walk ends: its last return value. */
static int walk_count(const struct cid *root, struct store *s, uint64_t max_shards,
                      uint64_t max_entries, uint64_t max_bytes, size_t *ret_count)
{
        struct unixfs_dir_iter *it;
        struct unixfs_dirent e;
        int r;

        *ret_count = 0;
        assert_int_equal(unixfs_dir_iter_new(root, &it), 0);
        unixfs_dir_iter_set_limits(it, max_shards, max_entries, max_bytes);
        while ((r = unixfs_dir_iter_next(it, store_get, s, &e)) > 0)
                (*ret_count)++;
        /* an end that is no fetch error stays */
        assert_int_equal(unixfs_dir_iter_next(it, store_get, s, &e), r);
        assert_true(unixfs_dir_iter_shards(it) <= max_shards);
        unixfs_dir_iter_free(it);
        return r;
}

/* Four levels of 256 buckets all pointing at the same next shard: 256^3 shard visits and
 * more entries than any directory has, from four small blocks. A walk stops at its budget of
 * shards, entries or bytes (the defaults, UNIXFS_MAX_*, take long: a smaller budget here); a
 * lookup walks one path only. */
static void test_hamt__repeated_subshards__bounded(void **state)
{
        struct store s = { 0 };
        struct cid c, got;
        uint64_t tsize;
        size_t count;

        (void)state;
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "", 0, &c), 0);
        put_shard(&s, NULL, &c);
        for (int level = 0; level < 3; level++) {
                got = c;
                put_shard(&s, &got, &c);
        }
        assert_int_equal(walk_count(&c, &s, 5000, UINT64_MAX, UINT64_MAX, &count), -E2BIG);
        assert_true(count > 0 && count <= 5000);
        assert_int_equal(walk_count(&c, &s, UINT64_MAX, 3000, UINT64_MAX, &count), -E2BIG);
        assert_int_equal(count, 3000);
        assert_int_equal(walk_count(&c, &s, UINT64_MAX, UINT64_MAX, 1 << 20, &count), -E2BIG);
        assert_true(count > 0 && count < 1 << 20);
        /* the lookup descends three times, then finds "e" only if its depth-3 byte is 00 */
        assert_int_equal(unixfs_dir_lookup(&c, "e", store_get, &s, &got, &tsize),
                         ((unixfs_murmur3_64("e", 1) >> 32) & 0xff) == 0 ? 0 : -ENOENT);
        store_free(&s);
}

/* A HAMT of n entries "name-00000".. (one file each): its root. */
static void build_hamt(struct store *s, size_t n, struct cid *ret)
{
        struct unixfs_dirent *e = calloc(n, sizeof(*e));
        char(*names)[16] = calloc(n, sizeof(*names));
        struct unixfs_dir_params dp;
        struct cid x;
        uint64_t xt, tsize;

        assert_non_null(e);
        assert_non_null(names);
        file_cid(UNIXFS_PROFILE_DEFAULT, "x", &x, &xt, s);
        for (size_t i = 0; i < n; i++) {
                (void)snprintf(names[i], sizeof(names[i]), "name-%05zu", i);
                e[i] = (struct unixfs_dirent){
                        .name = names[i], .name_len = strlen(names[i]), .cid = x, .tsize = xt
                };
        }
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        dp.max_links = 16; /* sharded, several levels deep */
        assert_int_equal(unixfs_dir_build(&dp, e, n, store_put, s, ret, &tsize), 0);
        free(names);
        free(e);
}

struct flaky {
        struct store *s;
        unsigned calls, fail_every;
        struct cid asked[64]; /* the first blocks asked for, in order */
        size_t n_asked;
};

static int flaky_get(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        struct flaky *f = ud;

        if (f->fail_every && ++f->calls % f->fail_every == 0)
                return -ETIMEDOUT;
        if (f->n_asked < ELEMENTSOF(f->asked))
                f->asked[f->n_asked++] = *cid;
        return store_get(cid, ret, ret_len, f->s);
}

/* A fetch that fails leaves the walk where it was: retried, every entry comes exactly once. */
static void test_iter__fetch_errors__resumed_every_entry_once(void **state)
{
        enum { N = 3000 };
        struct store s = { 0 };
        struct flaky fl = { .s = &s, .fail_every = 3 };
        struct unixfs_dir_iter *it;
        struct unixfs_dirent e;
        uint8_t *seen = calloc(N, 1);
        size_t count = 0, errors = 0;
        struct cid root;
        int r;

        (void)state;
        assert_non_null(seen);
        build_hamt(&s, N, &root);
        assert_int_equal(unixfs_dir_iter_new(&root, &it), 0);
        while ((r = unixfs_dir_iter_next(it, flaky_get, &fl, &e)) != 0) {
                unsigned i;

                if (r < 0) {
                        assert_int_equal(r, -ETIMEDOUT);
                        errors++;
                        continue;
                }
                assert_int_equal(sscanf(e.name, "name-%05u", &i), 1);
                assert_true(i < N);
                assert_int_equal(seen[i], 0);
                seen[i] = 1;
                count++;
        }
        assert_int_equal(count, N);
        assert_true(errors > 10);
        assert_int_equal(unixfs_dir_iter_next(it, flaky_get, &fl, &e), 0);
        unixfs_dir_iter_free(it);
        free(seen);
        store_free(&s);
}

/* What upcoming() names is what the walk loads next, in that order (with the sub-shards of
 * those in between, which nobody knows before their parents come). */
static void test_iter__upcoming__the_next_shards_in_walk_order(void **state)
{
        struct store s = { 0 };
        struct flaky fl = { .s = &s };
        struct unixfs_dir_iter *it;
        struct unixfs_dirent e;
        struct cid root, next[8];
        size_t n, k = 0;

        (void)state;
        build_hamt(&s, 3000, &root);
        assert_int_equal(unixfs_dir_iter_new(&root, &it), 0);
        assert_int_equal(unixfs_dir_iter_upcoming(it, next, ELEMENTSOF(next)), 0);
        /* down to the first entry: the root and the first shard of each level below */
        assert_int_equal(unixfs_dir_iter_next(it, flaky_get, &fl, &e), 1);
        n = unixfs_dir_iter_upcoming(it, next, ELEMENTSOF(next));
        assert_int_equal(n, ELEMENTSOF(next));
        fl.n_asked = 0;
        while (fl.n_asked < ELEMENTSOF(fl.asked) &&
               unixfs_dir_iter_next(it, flaky_get, &fl, &e) > 0)
                ;
        for (size_t i = 0; i < fl.n_asked && k < n; i++)
                if (cid_equal(&fl.asked[i], &next[k]))
                        k++;
        assert_int_equal(k, n);
        assert_true(cid_equal(&fl.asked[0], &next[0]));
        unixfs_dir_iter_free(it);
        store_free(&s);
}

/* A sub-shard link that leads to a basic directory is a malformed HAMT, not a way in. */
static void test_hamt__subshard_not_a_shard__ebadmsg(void **state)
{
        static const uint8_t bits[1] = { 1 };
        struct unixfs_data d = { .type = UNIXFS_HAMT_SHARD,
                                 .data = { bits, 1 },
                                 .has_data = true,
                                 .hash_type = 0x22,
                                 .has_hash_type = true,
                                 .fanout = 256,
                                 .has_fanout = true };
        struct unixfs_dir_params dp;
        struct unixfs_dirent e;
        struct unixfs_pb_link link = { .has_name = true };
        struct unixfs_pb_node n = { .links = &link, .n_links = 1, .has_data = true };
        struct store s = { 0 };
        char name[3];
        struct cid sub, root, got;
        struct buf db, bb;
        uint64_t tsize;
        size_t count = 0;

        (void)state;
        file_cid(UNIXFS_PROFILE_DEFAULT, "x", &e.cid, &e.tsize, &s);
        e.name = "a";
        e.name_len = 1;
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        assert_int_equal(unixfs_dir_build(&dp, &e, 1, store_put, &s, &sub, &tsize), 0);
        assert_int_equal(
                snprintf(name, sizeof(name), "%02X", (unsigned)(unixfs_murmur3_64("a", 1) >> 56)),
                2);
        link.cid = sub;
        link.name = (struct bytes_view){ (const uint8_t *)name, 2 };
        buf_init(&db, 64);
        buf_init(&bb, 256);
        assert_int_equal(unixfs_data_encode(&d, &db), 0);
        n.data = buf_view(&db);
        assert_int_equal(unixfs_pb_encode(&n, &bb), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len, &root), 0);
        assert_int_equal(store_put(&root, bb.p, bb.len, &s), 0);
        assert_int_equal(unixfs_dir_lookup(&root, "a", store_get, &s, &got, &tsize), -EBADMSG);
        assert_int_equal(unixfs_dir_list(&root, store_get, &s, count_entries, &count), -EBADMSG);
        buf_done(&db);
        buf_done(&bb);
        store_free(&s);
}

/* An empty file with meta, as `add --preserve-*` makes it (legacy profile), into e. */
static void meta_file(struct store *s, uint32_t mode, int64_t mtime, const char *name,
                      struct unixfs_dirent *e)
{
        const struct unixfs_meta m = {
                .mode = mode, .has_mode = true, .mtime_sec = mtime, .has_mtime = true
        };
        struct cid empty;
        struct buf b;

        buf_init(&b, CID_MAX_BLOCK);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "", 0, &empty), 0);
        assert_int_equal(
                unixfs_file_set_meta(&empty, (const uint8_t *)"", 0, &m, 0, &b, &e->cid, &e->tsize),
                0);
        assert_int_equal(store_put(&e->cid, b.p, b.len, s), 0);
        buf_done(&b);
        e->name = name;
        e->name_len = strlen(name);
}

static void meta_dir(struct store *s, uint32_t mode, int64_t mtime, struct unixfs_dirent *kids,
                     size_t n, const char *name, struct unixfs_dirent *e)
{
        const struct unixfs_meta m = {
                .mode = mode, .has_mode = true, .mtime_sec = mtime, .has_mtime = true
        };
        struct unixfs_dir_params dp;

        unixfs_dir_params_profile(UNIXFS_PROFILE_LEGACY, &dp);
        assert_int_equal(unixfs_dir_build_meta(&dp, &m, kids, n, store_put, s, &e->cid, &e->tsize),
                         0);
        e->name = name;
        e->name_len = strlen(name);
}

static void check_cid(const struct cid *c, const char *want)
{
        char out[CID_MAX_STR];

        assert_string_equal(cid_to_string(c, out), want);
}

/* Kubo test/sharness/t0047-add-mode-mtime.sh: `add -qr --preserve-mode --preserve-mtime` of
 * root (0700, T) { dir1 (0755, T+90) {}, dir2 (0755, T+50) { sub1 (0755, T+40) { link1 ->
 * ../sub2/file3 (T+20), sub2 (0755, T+30) { file3 (0644, T+10) } } }, dir3 (0755, T+70)
 * { file2 (0644, T+60) }, file1 (0644, T+80) }, files empty: Kubo keeps 0644 and 0755 (js-ipfs
 * would leave them out), and a symlink gets its mtime but no mode. */
static void test_meta__kubo_t0047_tree__vectors(void **state)
{
        const int64_t t = 1655158632;
        struct unixfs_dirent top[4], d2[1], s1[2], s2[1], d3[1];
        struct unixfs_data ld = { .type = UNIXFS_SYMLINK,
                                  .data = { (const uint8_t *)"../sub2/file3", 13 },
                                  .has_data = true,
                                  .mtime_sec = t + 20,
                                  .has_mtime = true };
        struct unixfs_pb_node ln = { .has_data = true };
        struct store s = { 0 };
        struct cid root;
        struct buf db, bb;

        (void)state;
        meta_file(&s, 0644, t + 10, "file3", &s2[0]);
        check_cid(&s2[0].cid, "Qmeu24TFarJwLzJgMTDYDJTr4BMGnzafoSnfxov1513abW");
        meta_dir(&s, 0755, t + 30, s2, 1, "sub2", &s1[1]);
        check_cid(&s1[1].cid, "Qmf82bbFg2e8HmcqiewutVVw5NoMpiXZD57LpLdC1poBuH");
        buf_init(&db, CID_MAX_BLOCK);
        buf_init(&bb, CID_MAX_BLOCK);
        assert_int_equal(unixfs_data_encode(&ld, &db), 0);
        ln.data = buf_view(&db);
        assert_int_equal(unixfs_pb_encode(&ln, &bb), 0);
        assert_int_equal(
                cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len, &s1[0].cid), 0);
        check_cid(&s1[0].cid, "QmefofUNwC2U3Xp87rB1x8Aws6AdsDuoXR7B9u2RkEZ4dQ");
        s1[0].tsize = bb.len;
        s1[0].name = "link1";
        s1[0].name_len = 5;
        buf_done(&db);
        buf_done(&bb);
        meta_dir(&s, 0755, t + 40, s1, 2, "sub1", &d2[0]);
        check_cid(&d2[0].cid, "QmeQwX5qAX18fcPDxDdkfM6ttuFCZetF5hgeUa6ov8D5oc");
        meta_dir(&s, 0755, t + 50, d2, 1, "dir2", &top[1]);
        meta_file(&s, 0644, t + 60, "file2", &d3[0]);
        meta_dir(&s, 0755, t + 70, d3, 1, "dir3", &top[2]);
        meta_file(&s, 0644, t + 80, "file1", &top[3]);
        meta_dir(&s, 0755, t + 90, NULL, 0, "dir1", &top[0]);
        check_cid(&top[0].cid, "QmVzXqpuQGCAgRwEbGuE9xe8Fidi1HEXaPKsQEFEbPJW9j");
        meta_dir(&s, 0700, t, top, 4, "", &top[0]);
        root = top[0].cid;
        check_cid(&root, "QmSioyvQuXetxg7uo8FswGn9XKKEsisDq1HTMzGyWbw2R6");
        store_free(&s);
}

/* A HAMT keeps meta in its root shard only (boxo Shard.SetStat), and the 'block' estimate
 * counts it: the v1-2025 directory exactly at the threshold shards once it has a mode. */
static void test_meta__hamt__root_shard_only_and_counted(void **state)
{
        const struct unixfs_meta m = { .mode = 0755, .has_mode = true };
        const size_t n = 4766;
        struct unixfs_dirent *e = calloc(n, sizeof(*e));
        char **names = calloc(n, sizeof(*names));
        struct unixfs_dir_params dp;
        struct unixfs_node rn, sn;
        struct store s = { 0 };
        struct cid x, root;
        uint64_t xt, tsize;
        uint8_t *b1 = NULL, *b2 = NULL;
        size_t len = 0;

        (void)state;
        assert_non_null(e);
        assert_non_null(names);
        file_cid(UNIXFS_PROFILE_DEFAULT, "x", &x, &xt, &s);
        hamt_entries("hamt-unixfs-v1-2025", n, 11, 21, &x, xt, names, e);
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        assert_int_equal(unixfs_dir_build(&dp, e, n, store_put, &s, &root, &tsize), 0);
        check_cid(&root, "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4");
        assert_int_equal(unixfs_dir_build_meta(&dp, &m, e, n, store_put, &s, &root, &tsize), 0);
        assert_int_equal(store_get(&root, &b1, &len, &s), 0);
        assert_int_equal(unixfs_node_decode(&root, b1, len, &rn), 0);
        assert_int_equal(rn.fs.type, UNIXFS_HAMT_SHARD);
        assert_true(rn.fs.has_mode && rn.fs.mode == 0755 && !rn.fs.has_mtime);
        for (size_t i = 0; i < rn.pb.n_links; i++) {
                if (rn.pb.links[i].name.len != 2)
                        continue; /* an entry, not a sub-shard */
                assert_int_equal(store_get(&rn.pb.links[i].cid, &b2, &len, &s), 0);
                assert_int_equal(unixfs_node_decode(&rn.pb.links[i].cid, b2, len, &sn), 0);
                assert_int_equal(sn.fs.type, UNIXFS_HAMT_SHARD);
                assert_false(sn.fs.has_mode || sn.fs.has_mtime);
                unixfs_node_done(&sn);
                free(b2);
        }
        unixfs_node_done(&rn);
        free(b1);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        free(e);
        store_free(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_murmur3__spec_check_values),
                cmocka_unit_test(test_basic__wrapped_hello__spec_vector),
                cmocka_unit_test(test_basic__file_and_symlink__spec_vector),
                cmocka_unit_test(test_basic__empty_and_duplicates),
                cmocka_unit_test(test_basic__nested_tree__spec_vector),
                cmocka_unit_test(test_hamt__fixture_shape__470_and_742),
                cmocka_unit_test(test_hamt__repeated_subshards__bounded),
                cmocka_unit_test(test_iter__fetch_errors__resumed_every_entry_once),
                cmocka_unit_test(test_iter__upcoming__the_next_shards_in_walk_order),
                cmocka_unit_test(test_hamt__subshard_not_a_shard__ebadmsg),
                cmocka_unit_test(test_hamt__legacy_threshold__spec_vectors),
                cmocka_unit_test(test_hamt__v1_2025_threshold__spec_vectors),
                cmocka_unit_test(test_meta__kubo_t0047_tree__vectors),
                cmocka_unit_test(test_meta__hamt__root_shard_only_and_counted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
