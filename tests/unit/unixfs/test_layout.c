/* SPDX-License-Identifier: GPL-2.0-or-later */
/* File layouts (eager and lazy) over builder output, spec and hand-built uneven DAGs, hostile
 * DAGs; a few whole-node decodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vectors.h"

struct store {
        struct cid cids[4096];
        uint8_t *blocks[4096];
        size_t lens[4096];
        size_t n;
};

static int store_put(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        struct store *s = ud;

        assert_true(s->n < 4096);
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

static void store_clear(struct store *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->blocks[i]);
        s->n = 0;
}

static const uint8_t *block_of(struct store *s, const struct cid *cid)
{
        for (size_t i = 0; i < s->n; i++)
                if (cid_equal(&s->cids[i], cid))
                        return s->blocks[i];
        return NULL;
}

/* Build data with p, lay it out, and read every byte back through the leaves. */
static void roundtrip(const struct unixfs_params *p, const uint8_t *data, size_t len)
{
        static struct store s;
        struct unixfs_builder *b;
        struct unixfs_layout l;
        struct cid root;
        uint64_t next = 0;

        assert_int_equal(unixfs_builder_new(p, store_put, &s, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, len), 0);
        assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), 0);
        assert_int_equal(l.size, len);
        for (size_t i = 0; i < l.n_leaves; i++) {
                const struct unixfs_leaf *lf = &l.leaves[i];
                const uint8_t *blk = block_of(&s, &lf->cid);

                assert_non_null(blk);
                assert_int_equal(lf->offset, next);
                assert_memory_equal(blk + lf->data_off, data + lf->offset, lf->size);
                assert_int_equal(unixfs_layout_find(&l, lf->offset), i);
                assert_int_equal(unixfs_layout_find(&l, lf->offset + lf->size - 1), i);
                next += lf->size;
        }
        assert_int_equal(next, len);
        unixfs_layout_done(&l);
        store_clear(&s);
}

static void test_layout__builder_shapes__bytes_back(void **state)
{
        static uint8_t data[200000];
        struct unixfs_params p = {
                .cid_version = 0, .raw_leaves = false, .chunk_size = 1000, .max_links = 4
        };
        struct chacha cc;

        (void)state;
        chacha_init(&cc, "layout");
        chacha_fill(&cc, data, sizeof(data));
        chacha_done(&cc);
        roundtrip(&p, data, 50 * 1000 + 17); /* depth 4, dag-pb leaves */
        p.raw_leaves = true;
        p.cid_version = 1;
        roundtrip(&p, data, 64 * 1000); /* exactly full at depth 3 */
        roundtrip(&p, data, 1);         /* single raw block */
        p.max_links = 174;
        roundtrip(&p, data, 0); /* empty */
        p.raw_leaves = false;
        roundtrip(&p, data, 999); /* single dag-pb leaf: data inline */
}

static void test_layout__identity_root__no_fetch(void **state)
{
        struct unixfs_layout l;
        struct cid id;

        (void)state;
        assert_int_equal(cid_make(1, CID_CODEC_RAW, CID_MH_IDENTITY, (const uint8_t *)"hi", 2, &id),
                         0);
        assert_int_equal(unixfs_layout_build(&id, NULL, NULL, &l), 0);
        assert_int_equal(l.size, 2);
        assert_int_equal(l.n_leaves, 1);
        unixfs_layout_done(&l);
}

static unsigned fetches;

static int counting_get(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        fetches++;
        return store_get(cid, ret, ret_len, ud);
}

/* A parent whose blocksizes lie about a (fetched) dag-pb child must be refused; a raw child
 * is taken at its parent's word without a fetch (the reader checks its length). */
static void test_layout__lying_blocksizes__ebadmsg_raw_not_fetched(void **state)
{
        static struct store s;
        static const uint8_t leaf[] = { 0x0a, 0x0b, 0x08, 0x02, 0x12, 0x05, 'h',
                                        'e',  'l',  'l',  'o',  0x18, 0x05 };
        struct unixfs_pb_link link = { .has_name = true, .has_tsize = true, .tsize = sizeof(leaf) };
        uint64_t sizes[1] = { 6 };
        struct unixfs_data d = { .type = UNIXFS_FILE,
                                 .has_filesize = true,
                                 .filesize = 6,
                                 .blocksizes = sizes,
                                 .n_blocksizes = 1 };
        struct unixfs_pb_node n = { .links = &link, .n_links = 1, .has_data = true };
        struct buf db, bb;
        struct unixfs_layout l;
        struct cid root;

        (void)state;
        assert_int_equal(
                cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, leaf, sizeof(leaf), &link.cid),
                0);
        assert_int_equal(store_put(&link.cid, leaf, sizeof(leaf), &s), 0);
        buf_init(&db, 1024);
        buf_init(&bb, 1024);
        assert_int_equal(unixfs_data_encode(&d, &db), 0);
        n.data = buf_view(&db);
        assert_int_equal(unixfs_pb_encode(&n, &bb), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len, &root), 0);
        assert_int_equal(store_put(&root, bb.p, bb.len, &s), 0);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        store_clear(&s);
        /* a missing block is reported as such */
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -ENOENT);

        /* raw children: only the root is fetched */
        {
                struct unixfs_params p = {
                        .cid_version = 1, .raw_leaves = true, .chunk_size = 100, .max_links = 174
                };
                struct unixfs_builder *b;
                uint8_t data[1000] = { 0 };

                assert_int_equal(unixfs_builder_new(&p, store_put, &s, &b), 0);
                assert_int_equal(unixfs_builder_write(b, data, sizeof(data)), 0);
                assert_int_equal(unixfs_builder_finish(b, &root, NULL, NULL), 0);
                unixfs_builder_free(b);
                fetches = 0;
                assert_int_equal(unixfs_layout_build(&root, counting_get, &s, &l), 0);
                assert_int_equal(fetches, 1);
                assert_int_equal(l.n_leaves, 10);
                unixfs_layout_done(&l);
                store_clear(&s);
        }
        buf_done(&db);
        buf_done(&bb);
}

static void test_node__symlink_and_invalid_blocks(void **state)
{
        static const uint8_t symlink[] = { 0x0a, 0x07, 0x08, 0x04, 0x12, 0x03, 'f', 'o', 'o' };
        static const struct {
                const uint8_t *p;
                size_t len;
        } bad[] = {
                { (const uint8_t *)"\x0a\x00", 2 },                     /* empty Data */
                { (const uint8_t *)"\x0a\x05\x00\x01\x02\x03\x04", 7 }, /* garbage UnixFS */
                { (const uint8_t *)"", 0 },                             /* no Data at all */
                { (const uint8_t *)"\x0a\x02\x08\x09", 4 },             /* unknown type */
                { (const uint8_t *)"\x0a\x04\x08\x02\x18", 5 },         /* truncated */
                { (const uint8_t *)"\x1a\x00", 2 },                     /* unknown field */
        };
        char out[CID_MAX_STR];
        struct unixfs_node n;
        struct cid c;
        struct buf b;

        (void)state;
        assert_int_equal(
                cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, symlink, sizeof(symlink), &c), 0);
        assert_string_equal(cid_to_string(&c, out),
                            "QmTB8BaCJdCH5H3k7GrxJsxgDNmNYGGR71C58ERkivXoj5");
        assert_int_equal(unixfs_node_decode(&c, symlink, sizeof(symlink), &n), 0);
        assert_int_equal(n.fs.type, UNIXFS_SYMLINK);
        assert_int_equal(n.fs.data.len, 3);
        assert_memory_equal(n.fs.data.p, "foo", 3);
        /* canonical re-encoding is byte-identical */
        buf_init(&b, 64);
        assert_int_equal(unixfs_pb_encode(&n.pb, &b), 0);
        assert_int_equal(b.len, sizeof(symlink));
        assert_memory_equal(b.p, symlink, sizeof(symlink));
        buf_done(&b);
        unixfs_node_done(&n);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_true(unixfs_node_decode(&c, bad[i].p, bad[i].len, &n) < 0);
}

static void test_data__mtime_mode__round_trip(void **state)
{
        struct unixfs_data d = { .type = UNIXFS_FILE,
                                 .has_mode = true,
                                 .mode = 0100644,
                                 .has_mtime = true,
                                 .mtime_sec = -5,
                                 .mtime_nsec = 7 },
                           back;
        struct buf b;

        (void)state;
        buf_init(&b, 128);
        assert_int_equal(unixfs_data_encode(&d, &b), 0);
        assert_int_equal(unixfs_data_decode(b.p, b.len, &back), 0);
        assert_int_equal(back.mode, 0100644);
        assert_int_equal(back.mtime_sec, -5);
        assert_int_equal(back.mtime_nsec, 7);
        unixfs_data_done(&back);
        buf_done(&b);
        /* a present fractional 0 is invalid */
        assert_int_equal(unixfs_data_decode((const uint8_t *)"\x08\x02\x42\x07\x08\x01\x15"
                                                             "\x00\x00\x00\x00",
                                            11, &back),
                         -EBADMSG);
}

/* A dag-pb File/Raw node by hand: optional Data.Data prefix, children with blocksizes. */
static void put_node(struct store *s, enum unixfs_type type, const char *prefix,
                     const struct cid *kids, const uint64_t *bs, size_t n, int64_t filesize,
                     unsigned version, struct cid *ret)
{
        struct unixfs_pb_link links[16];
        uint64_t sizes[16], total = prefix ? strlen(prefix) : 0;
        struct unixfs_data d = { .type = type,
                                 .data = { (const uint8_t *)prefix, prefix ? strlen(prefix) : 0 },
                                 .has_data = prefix != NULL,
                                 .has_filesize = true,
                                 .blocksizes = sizes,
                                 .n_blocksizes = n };
        struct unixfs_pb_node node = { .links = links, .n_links = n, .has_data = true };
        struct buf db, bb;

        assert_true(n <= 16);
        for (size_t i = 0; i < n; i++) {
                links[i] = (struct unixfs_pb_link){
                        .cid = kids[i], .has_name = true, .tsize = bs[i], .has_tsize = true
                };
                sizes[i] = bs[i];
                total += bs[i];
        }
        d.filesize = filesize >= 0 ? (uint64_t)filesize : total;
        buf_init(&db, CID_MAX_BLOCK);
        buf_init(&bb, CID_MAX_BLOCK);
        assert_int_equal(unixfs_data_encode(&d, &db), 0);
        node.data = buf_view(&db);
        assert_int_equal(unixfs_pb_encode(&node, &bb), 0);
        assert_int_equal(cid_compute(version, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len, ret),
                         0);
        assert_int_equal(store_put(ret, bb.p, bb.len, s), 0);
        buf_done(&db);
        buf_done(&bb);
}

static void put_raw(struct store *s, const char *bytes, struct cid *ret)
{
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, bytes, strlen(bytes), ret),
                         0);
        assert_int_equal(store_put(ret, (const uint8_t *)bytes, strlen(bytes), s), 0);
}

/* Reads [0, size) through the layout the way the read path does: find, fetch (keeping the
 * last block, as a cache would), resolve pending pieces with it, slice. Counts fetches. */
static void read_all(struct store *s, struct unixfs_layout *l, char *out)
{
        struct cid have = { 0 };
        uint8_t *blk = NULL;
        size_t len = 0;

        for (uint64_t off = 0; off < l->size;) {
                size_t i = unixfs_layout_find(l, off);
                const struct unixfs_leaf *lf = &l->leaves[i];
                struct bytes_view v;

                assert_true(lf->offset <= off && off < lf->offset + lf->size);
                if (!cid_is_identity(&lf->cid) && !cid_equal(&have, &lf->cid)) {
                        free(blk);
                        assert_int_equal(counting_get(&lf->cid, &blk, &len, s), 0);
                        have = lf->cid;
                }
                if (lf->is_pending) {
                        assert_true(unixfs_layout_resolve(l, i, blk, len) >= 0);
                        continue;
                }
                assert_int_equal(unixfs_leaf_slice(lf, blk, len, &v), 0);
                memcpy(out + lf->offset, v.p, v.len);
                off = lf->offset + lf->size;
        }
        free(blk);
}

/* ipfs.md §16.4 multiblock.txt: five raw leaves under a 245-byte CIDv1 root */
static void test_layout__multiblock_txt__spec_vector(void **state)
{
        static const char *leaves[] = {
                "bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm",
                "bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq",
                "bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue",
                "bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe",
                "bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm",
        };
        static const uint64_t bs[5] = { 256, 256, 256, 256, 2 };
        static struct store s;
        struct cid kids[5], root;
        struct unixfs_layout l;
        char out[CID_MAX_STR];

        (void)state;
        for (size_t i = 0; i < 5; i++)
                assert_int_equal(cid_parse(leaves[i], strlen(leaves[i]), &kids[i]), 0);
        put_node(&s, UNIXFS_FILE, NULL, kids, bs, 5, -1, 1, &root);
        assert_string_equal(cid_to_string(&root, out),
                            "bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa");
        assert_int_equal(s.lens[0], 245); /* Tsize 1271 = 245 + 1026 */
        fetches = 0;
        assert_int_equal(unixfs_layout_build(&root, counting_get, &s, &l), 0);
        assert_int_equal(fetches, 1);
        assert_int_equal(l.size, 1026);
        assert_int_equal(l.n_leaves, 5);
        assert_int_equal(l.n_pending, 0);
        for (size_t i = 0; i < 5; i++) {
                assert_true(cid_equal(&l.leaves[i].cid, &kids[i]));
                assert_int_equal(l.leaves[i].offset, 256 * i);
                assert_int_equal(l.leaves[i].size, bs[i]);
                assert_int_equal(l.leaves[i].depth, 1);
        }
        assert_int_equal(unixfs_layout_find(&l, 0), 0);
        assert_int_equal(unixfs_layout_find(&l, 255), 0);
        assert_int_equal(unixfs_layout_find(&l, 256), 1);
        assert_int_equal(unixfs_layout_find(&l, 1023), 3);
        assert_int_equal(unixfs_layout_find(&l, 1025), 4);
        {
                /* a raw leaf whose block is not exactly its blocksize is refused on read */
                struct bytes_view v;
                static const uint8_t two[2] = "ab", three[3] = "abc";

                assert_int_equal(unixfs_leaf_slice(&l.leaves[4], two, 2, &v), 0);
                assert_int_equal(v.len, 2);
                assert_int_equal(unixfs_leaf_slice(&l.leaves[4], three, 3, &v), -EBADMSG);
        }
        unixfs_layout_done(&l);
        store_clear(&s);
}

/*
 * A trickle-like DAG with everything a reader meets: Data.Data prefixes in inner nodes, TRaw
 * (type 0) dag-pb leaves, raw leaves, an identity child, leaves at depths 1 to 3:
 *   root "AB" -> [TRaw "cd", raw "efg", inner "h" -> [TRaw "ij", inner -> [raw "k"]],
 *                 identity raw "lm"]                                  = "ABcdefghijklm"
 */
static void build_uneven(struct store *s, struct cid *root)
{
        struct cid k[4], a, b, c, d, id;
        uint64_t bs[4];

        put_node(s, UNIXFS_RAW, "cd", NULL, NULL, 0, -1, 0, &a);
        put_raw(s, "efg", &b);
        put_raw(s, "k", &c);
        put_node(s, UNIXFS_FILE, NULL, &c, (uint64_t[]){ 1 }, 1, -1, 1, &d);
        put_node(s, UNIXFS_RAW, "ij", NULL, NULL, 0, -1, 0, &k[0]);
        k[1] = d;
        put_node(s, UNIXFS_FILE, "h", k, (uint64_t[]){ 2, 1 }, 2, -1, 0, &c);
        assert_int_equal(cid_make(1, CID_CODEC_RAW, CID_MH_IDENTITY, (const uint8_t *)"lm", 2, &id),
                         0);
        k[0] = a;
        k[1] = b;
        k[2] = c;
        k[3] = id;
        bs[0] = 2;
        bs[1] = 3;
        bs[2] = 4;
        bs[3] = 2;
        put_node(s, UNIXFS_FILE, "AB", k, bs, 4, -1, 0, root);
}

static void test_layout__uneven_trickle_dag__eager_and_lazy(void **state)
{
        static const char want[] = "ABcdefghijklm";
        static struct store s;
        struct unixfs_layout l;
        char out[sizeof(want)] = { 0 };
        struct cid root;
        uint8_t *blk = NULL;
        size_t len = 0;

        (void)state;
        build_uneven(&s, &root);
        fetches = 0;
        assert_int_equal(unixfs_layout_build(&root, counting_get, &s, &l), 0);
        assert_int_equal(fetches, 5); /* root, TRaw "cd", inner "h", TRaw "ij", inner */
        assert_int_equal(l.size, 13);
        assert_int_equal(l.n_pending, 0);
        assert_int_equal(l.n_leaves, 7); /* AB cd efg h ij k lm */
        assert_int_equal(l.leaves[5].depth, 3);
        read_all(&s, &l, out);
        assert_string_equal(out, want);
        unixfs_layout_done(&l);

        /* lazily: only the root up front; pieces resolved as the reads reach them */
        assert_int_equal(store_get(&root, &blk, &len, &s), 0);
        assert_int_equal(unixfs_layout_open(&root, blk, len, &l), 0);
        free(blk);
        assert_int_equal(l.size, 13);
        assert_int_equal(l.n_leaves, 5); /* AB, cd?, efg, h-subtree?, lm */
        assert_int_equal(l.n_pending, 2);
        assert_true(l.leaves[1].is_pending && l.leaves[3].is_pending);
        assert_int_equal(unixfs_layout_resolve(&l, 0, NULL, 0), -EINVAL);
        memset(out, 0, sizeof(out));
        fetches = 0;
        read_all(&s, &l, out);
        assert_string_equal(out, want);
        assert_int_equal(l.n_pending, 0);
        assert_int_equal(l.n_leaves, 7);
        assert_int_equal(fetches, 7); /* each block once, the read's own leaves included */
        unixfs_layout_done(&l);
        store_clear(&s);
}

static void assert_same_layout(const struct unixfs_layout *a, const struct unixfs_layout *b)
{
        assert_int_equal(a->size, b->size);
        assert_int_equal(a->n_leaves, b->n_leaves);
        assert_int_equal(a->n_pending, b->n_pending);
        for (size_t i = 0; i < a->n_leaves; i++) {
                const struct unixfs_leaf *x = &a->leaves[i], *y = &b->leaves[i];

                assert_int_equal(x->offset, y->offset);
                assert_int_equal(x->size, y->size);
                assert_true(cid_equal(&x->cid, &y->cid));
                assert_int_equal(x->data_off, y->data_off);
                assert_int_equal(x->depth, y->depth);
                assert_int_equal(x->is_pending, y->is_pending);
        }
}

/* A stored layout comes back equal, lazy (pending pieces still resolve) or eager; any damage
 * to the bytes is refused, never decoded into other offsets. */
static void test_layout__encode_decode__round_trip_damage_refused(void **state)
{
        static const char want[] = "ABcdefghijklm";
        static struct store s;
        struct unixfs_layout l, back;
        char out[sizeof(want)] = { 0 };
        struct cid root;
        uint8_t *blk = NULL, *enc, *bad;
        size_t len = 0, enc_len;

        (void)state;
        build_uneven(&s, &root);
        assert_int_equal(store_get(&root, &blk, &len, &s), 0);
        assert_int_equal(unixfs_layout_open(&root, blk, len, &l), 0);
        free(blk);
        assert_int_equal(unixfs_layout_encode(&l, &enc, &enc_len), 0);
        assert_int_equal(unixfs_layout_decode(enc, enc_len, &back), 0);
        assert_same_layout(&l, &back);
        read_all(&s, &back, out); /* resolves the two pending pieces of the decoded layout */
        assert_string_equal(out, want);
        free(enc);

        /* the resolved (eager) layout, with dag-pb leaves' data_off and depth 3 */
        assert_int_equal(unixfs_layout_encode(&back, &enc, &enc_len), 0);
        unixfs_layout_done(&l);
        assert_int_equal(unixfs_layout_decode(enc, enc_len, &l), 0);
        assert_same_layout(&back, &l);
        assert_int_equal(l.n_pending, 0);
        unixfs_layout_done(&l);
        unixfs_layout_done(&back);

        /* every truncation, one extra byte, and single-byte damage where it matters */
        for (size_t n = 0; n < enc_len; n++)
                assert_int_equal(unixfs_layout_decode(enc, n, &l), -EBADMSG);
        bad = malloc(enc_len + 1);
        assert_non_null(bad);
        memcpy(bad, enc, enc_len);
        bad[enc_len] = 0;
        assert_int_equal(unixfs_layout_decode(bad, enc_len + 1, &l), -EBADMSG);
        bad[0] = 'X'; /* magic */
        assert_int_equal(unixfs_layout_decode(bad, enc_len, &l), -EBADMSG);
        memcpy(bad, enc, enc_len);
        bad[4]++; /* file size no longer the sum of the pieces */
        assert_int_equal(unixfs_layout_decode(bad, enc_len, &l), -EBADMSG);
        memcpy(bad, enc, enc_len);
        bad[12] = 0xff; /* piece count */
        bad[15] = 0x7f;
        assert_int_equal(unixfs_layout_decode(bad, enc_len, &l), -EBADMSG);
        memcpy(bad, enc, enc_len);
        bad[16]++; /* first piece one byte longer */
        assert_int_equal(unixfs_layout_decode(bad, enc_len, &l), -EBADMSG);
        memcpy(bad, enc, enc_len);
        bad[16 + 13] = 2; /* pending flag */
        assert_int_equal(unixfs_layout_decode(bad, enc_len, &l), -EBADMSG);
        memcpy(bad, enc, enc_len);
        bad[16 + 14] = 0; /* CID length */
        assert_int_equal(unixfs_layout_decode(bad, enc_len, &l), -EBADMSG);
        free(bad);
        free(enc);

        /* a raw leaf with its data anywhere but at 0 is not a layout the resolver makes */
        l = (struct unixfs_layout){ 0 };
        assert_int_equal(unixfs_layout_open(&root, s.blocks[s.n - 1], s.lens[s.n - 1], &l), 0);
        for (size_t i = 0; i < l.n_leaves; i++)
                if (l.leaves[i].cid.codec == CID_CODEC_RAW)
                        l.leaves[i].data_off = 1;
        assert_int_equal(unixfs_layout_encode(&l, &enc, &enc_len), 0);
        assert_int_equal(unixfs_layout_decode(enc, enc_len, &back), -EBADMSG);
        free(enc);
        unixfs_layout_done(&l);
        store_clear(&s);
}

/* Serves one block for every CID: a DAG that contains itself, as far as sizes go. */
static const uint8_t *loop_block;
static size_t loop_len;

static int loop_get(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *ud)
{
        (void)cid;
        (void)ud;
        fetches++;
        *ret = malloc(loop_len);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, loop_block, loop_len);
        *ret_len = loop_len;
        return 0;
}

static void test_layout__hostile_dags__refused(void **state)
{
        static struct store s;
        struct cid leaf, big[2], root, dir;
        struct unixfs_layout l;
        uint8_t *blk = NULL;
        size_t len = 0;
        int r;

        (void)state;
        /* a cycle (node -> itself, sizes consistent): ended by the depth limit */
        put_node(&s, UNIXFS_RAW, "x", NULL, NULL, 0, -1, 0, &leaf);
        put_node(&s, UNIXFS_FILE, NULL, &leaf, (uint64_t[]){ 1 }, 1, -1, 0, &root);
        loop_block = s.blocks[1];
        loop_len = s.lens[1];
        fetches = 0;
        assert_int_equal(unixfs_layout_build(&root, loop_get, NULL, &l), -EBADMSG);
        assert_int_equal(fetches, UNIXFS_MAX_DEPTH + 2); /* root, then depths 1..65 */

        /* blocksizes that overflow 64 bits, or do not add up to filesize */
        put_raw(&s, "y", &big[0]);
        big[1] = big[0];
        put_node(&s, UNIXFS_FILE, NULL, big, (uint64_t[]){ UINT64_MAX, 2 }, 2, 1, 1, &root);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        put_node(&s, UNIXFS_FILE, NULL, big, (uint64_t[]){ 1, 1 }, 2, 3, 1, &root);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        /* a raw leaf claimed larger than any block */
        put_node(&s, UNIXFS_FILE, NULL, big, (uint64_t[]){ CID_MAX_BLOCK + 1 }, 1, -1, 1, &root);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        /* a dag-pb child holding other than its blocksize: lazy resolve refuses, unchanged */
        put_node(&s, UNIXFS_FILE, NULL, &leaf, (uint64_t[]){ 5 }, 1, -1, 1, &root);
        assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        assert_int_equal(store_get(&root, &blk, &len, &s), 0);
        assert_int_equal(unixfs_layout_open(&root, blk, len, &l), 0);
        free(blk);
        assert_int_equal(l.n_pending, 1);
        assert_int_equal(store_get(&leaf, &blk, &len, &s), 0);
        assert_int_equal(unixfs_layout_resolve(&l, 0, blk, len), -EBADMSG);
        free(blk);
        assert_int_equal(l.n_leaves, 1);
        assert_true(l.leaves[0].is_pending);
        assert_int_equal(l.leaves[0].size, 5);
        unixfs_layout_done(&l);

        /* a directory is not a file; nor may one sit inside a file */
        {
                static const uint8_t d[] = { 0x0a, 0x02, 0x08, 0x01 };

                assert_int_equal(
                        cid_compute(0, CID_CODEC_DAG_PB, CID_MH_SHA2_256, d, sizeof(d), &dir), 0);
                assert_int_equal(store_put(&dir, d, sizeof(d), &s), 0);
                assert_int_equal(unixfs_layout_build(&dir, store_get, &s, &l), -EISDIR);
                put_node(&s, UNIXFS_FILE, NULL, &dir, (uint64_t[]){ 1 }, 1, -1, 0, &root);
                assert_int_equal(unixfs_layout_build(&root, store_get, &s, &l), -EBADMSG);
        }
        /* a child in a codec that is not UnixFS */
        {
                struct cid cbor;

                assert_int_equal(
                        cid_compute(1, CID_CODEC_DAG_CBOR, CID_MH_SHA2_256, "\xa0", 1, &cbor), 0);
                put_node(&s, UNIXFS_FILE, NULL, &cbor, (uint64_t[]){ 1 }, 1, -1, 1, &root);
                r = unixfs_layout_build(&root, store_get, &s, &l);
                assert_int_equal(r, -EBADMSG);
        }
        /* an empty subtree contributes no piece (and needs no fetch) */
        put_node(&s, UNIXFS_FILE, NULL, &leaf, (uint64_t[]){ 0 }, 1, 0, 1, &root);
        fetches = 0;
        assert_int_equal(unixfs_layout_build(&root, counting_get, &s, &l), 0);
        assert_int_equal(fetches, 1);
        assert_int_equal(l.n_leaves, 0);
        assert_int_equal(l.size, 0);
        unixfs_layout_done(&l);
        store_clear(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_layout__builder_shapes__bytes_back),
                cmocka_unit_test(test_layout__identity_root__no_fetch),
                cmocka_unit_test(test_layout__lying_blocksizes__ebadmsg_raw_not_fetched),
                cmocka_unit_test(test_layout__multiblock_txt__spec_vector),
                cmocka_unit_test(test_layout__uneven_trickle_dag__eager_and_lazy),
                cmocka_unit_test(test_layout__encode_decode__round_trip_damage_refused),
                cmocka_unit_test(test_layout__hostile_dags__refused),
                cmocka_unit_test(test_node__symlink_and_invalid_blocks),
                cmocka_unit_test(test_data__mtime_mode__round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
