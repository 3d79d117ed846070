/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Model loading without FUSE requests: prefetch jobs over a deep file DAG whose blocks are in
 * the cache (check counts them all, evict drops them all, a fetch without a network names the
 * file it could not fetch), and copies by reference (fs_wfile_copy_link): a whole copy links
 * the CID, a range or a non-empty destination is refused, the rest of a copy answered in
 * parts is there already, and a write afterwards changes only the destination.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_net.h"
#include "harness.h"

#define DATA_LEN 50000 /* 1 KiB leaves, 4 links per node: a DAG four levels deep */

static int put_block(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct fixture *f = ud;

        return cache_block_put(f->cache, cid, block, len);
}

static char data[DATA_LEN];

/* A deep legacy-profile file (dag-pb leaves: every piece starts pending) linked as name;
 * its blocks are in the cache. */
static struct index_attr link_deep(struct fixture *f, const char *name)
{
        struct unixfs_params p;
        struct unixfs_builder *b;
        struct index_attr a;
        struct cid c;

        for (size_t i = 0; i < DATA_LEN; i++)
                data[i] = (char)('a' + (i * 7 + i / 13) % 26);
        unixfs_params_profile(UNIXFS_PROFILE_LEGACY, &p);
        p.chunk_size = 1024;
        p.max_links = 4;
        assert_int_equal(unixfs_builder_new(&p, put_block, f, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, DATA_LEN), 0);
        assert_int_equal(unixfs_builder_finish(b, &c, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_int_equal(fs_tree_link(f->fs, &c, INDEX_ROOT_INO, name, 0, 0, 0, &a), 0);
        assert_int_equal(a.size, DATA_LEN);
        return a;
}

/* Runs a job over path to its end and returns its final status. */
static struct fs_prefetch_status run(struct fixture *f, const char *path,
                                     enum fs_prefetch_mode mode)
{
        const char *paths[] = { path };
        struct fs_prefetch_status st;
        uint64_t id = 0;

        assert_int_equal(fs_prefetch_start(f->fs, paths, 1, mode, &id), 0);
        for (int i = 0; i < 2000; i++) {
                assert_int_equal(fs_prefetch_status(f->fs, id, &st), 0);
                if (st.is_done)
                        break;
                fs_prefetch_status_done(&st);
                nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
        }
        assert_true(st.is_done);
        assert_int_equal(fs_prefetch_forget(f->fs, id), 0);
        assert_int_equal(fs_prefetch_status(f->fs, id, &(struct fs_prefetch_status){ 0 }), -ENOENT);
        return st;
}

static void test_prefetch__deep_dag_cached__check_counts_all__evict_drops_all(void **state)
{
        struct fixture *f = *state;
        struct fs_prefetch_status st;

        (void)link_deep(f, "deep");
        st = run(f, "deep", FS_PREFETCH_CHECK);
        assert_int_equal(st.files, 1);
        assert_int_equal(st.bytes_total, DATA_LEN);
        assert_int_equal(st.bytes_cached, DATA_LEN);
        assert_int_equal(st.bytes_done, DATA_LEN);
        assert_true(st.blocks_total > DATA_LEN / 1024); /* the leaves and the inner nodes */
        assert_int_equal(st.blocks_cached, st.blocks_total);
        assert_int_equal(st.n_errors_total, 0);
        fs_prefetch_status_done(&st);

        st = run(f, "/deep/", FS_PREFETCH_EVICT); /* a path from the root, as prsmctl sends */
        assert_int_equal(st.blocks_evicted, st.blocks_total);
        assert_int_equal(st.n_errors_total, 0);
        fs_prefetch_status_done(&st);

        st = run(f, "deep", FS_PREFETCH_CHECK);
        assert_int_equal(st.bytes_total, DATA_LEN);
        assert_int_equal(st.bytes_cached, 0);
        fs_prefetch_status_done(&st);

        /* no network: the fetch fails, naming the file */
        st = run(f, "deep", FS_PREFETCH_FETCH);
        assert_int_equal(st.n_errors_total, 1);
        assert_string_equal(st.errors[0].path, "deep");
        fs_prefetch_status_done(&st);

        st = run(f, "nothing/here", FS_PREFETCH_CHECK);
        assert_int_equal(st.n_errors_total, 1);
        assert_int_equal(st.errors[0].error, -ENOENT);
        fs_prefetch_status_done(&st);
}

static void test_copy_link__whole_file__same_cid__ranges_refused__independent(void **state)
{
        struct fixture *f = *state;
        struct index_attr src = link_deep(f, "src"), dst = fixture_mkfile(f, INDEX_ROOT_INO, "dst");
        struct wfile *wf = NULL;
        struct index_attr a;
        char buf[64];
        uint64_t n = 0;

        assert_int_equal(fs_wfile_open(f->fs, &dst, true, &wf), 0);
        /* a range, or a length short of the source: bytes only */
        assert_int_equal(fs_wfile_copy_link(f->fs, wf, &src, 10, 0, DATA_LEN, &n), -EOPNOTSUPP);
        assert_int_equal(fs_wfile_copy_link(f->fs, wf, &src, 0, 0, DATA_LEN - 1, &n), -EOPNOTSUPP);
        assert_int_equal(fs_wfile_copy_link(f->fs, wf, &src, 0, 0, SIZE_MAX, &n), 0);
        assert_int_equal(n, DATA_LEN);
        a = fixture_attr(f, dst.ino);
        assert_true(a.has_cid && cid_equal(&a.cid, &src.cid));
        assert_int_equal(a.size, DATA_LEN);
        assert_int_equal(a.state, INDEX_STATE_CLEAN);
        assert_int_equal(a.staged, 0);
        /* the rest of a copy answered in parts: already there */
        assert_int_equal(fs_wfile_copy_link(f->fs, wf, &src, 4096, 4096, 100, &n), 0);
        assert_int_equal(n, 100);
        assert_int_equal(fs_wfile_read(f->fs, wf, buf, sizeof(buf), 30000), sizeof(buf));
        assert_memory_equal(buf, data + 30000, sizeof(buf));
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0); /* nothing staged, nothing uploaded */
        assert_int_equal(f->n_submits, 0);
        fs_wfile_close(f->fs, wf);

        /* a write to the copy stages the copy only */
        (void)fixture_stage(f, dst.ino, "XY", 3, NULL);
        assert_int_equal(f->n_submits, 1);
        assert_int_equal(f->submits[0].ino, dst.ino);
        a = fixture_attr(f, src.ino);
        assert_true(cid_equal(&a.cid, &src.cid) && a.state == INDEX_STATE_CLEAN);

        /* a destination with content: bytes only */
        a = fixture_attr(f, dst.ino);
        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        assert_int_equal(fs_wfile_copy_link(f->fs, wf, &src, 0, 0, DATA_LEN, &n), -EOPNOTSUPP);
        fs_wfile_close(f->fs, wf);
}

/* Blocks held back from the cache: a file whose leaves are not there. */
struct held {
        struct fixture *f;
        size_t n;
};

static int hold_leaves(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct held *h = ud;

        if (cid->codec != CID_CODEC_RAW) /* the root goes in: the file can be opened */
                return cache_block_put(h->f->cache, cid, block, len);
        h->n++;
        return 0;
}

/* A node that answers every request with a 500, counting them. */
struct failing_node {
        struct fake_net net;
        unsigned calls; /* atomic */
};

static int failing_http(void *userdata, const struct net_http_request *req, struct buf *body,
                        struct net_http_response *res)
{
        struct failing_node *n = userdata;

        (void)req;
        (void)body;
        __atomic_add_fetch(&n->calls, 1, __ATOMIC_SEQ_CST);
        res->status = 500;
        return 0;
}

static int read_start(struct fixture *f, struct rfile *rf)
{
        struct fs_seg *segs = NULL;
        size_t n = 0;
        int r = fs_rfile_read(f->fs, rf, 0, 100, FS_READ_NO_RA, &segs, &n);

        fs_segs_free(segs, n);
        return r;
}

/* Faults campaign, finding 10: a read that fails waiting for a block is retried by the
 * kernel page by page at once, and a retry that waited in the job queue got a whole timeout
 * of its own (the store's hold of a failed block counts from when a thread asks). A request
 * that came within a second of the failure of its range fails at once, without asking a
 * node, also when a thread takes it later; a request that comes later asks again. */
static void test_read__failed_range__retry_that_came_within_a_second_fails_at_once(void **state)
{
        struct fixture *f = *state;
        struct failing_node fn = { .net = { .is_real_time = true } };
        struct held h = { .f = f };
        struct unixfs_params p;
        struct unixfs_builder *b;
        struct index_attr a;
        struct rfile *rf = NULL;
        struct net_pool *pool;
        struct store *s;
        uint64_t failed_at;
        unsigned asked;
        struct cid c;

        fake_net_init(&fn.net, failing_http, &fn, 1);
        fake_net_pool_one_node(&fn.net, &pool);
        assert_int_equal(store_new(&(struct store_config){ .cache = f->cache,
                                                           .net = pool,
                                                           .mem_bytes = 1 << 20 },
                                   &s),
                         0);
        f->fs->store = s; /* the fixture's has no network */
        for (size_t i = 0; i < 3000; i++)
                data[i] = (char)('a' + i % 26);
        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &p);
        p.chunk_size = 1024;
        assert_int_equal(unixfs_builder_new(&p, hold_leaves, &h, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, 3000), 0);
        assert_int_equal(unixfs_builder_finish(b, &c, NULL, NULL), 0);
        unixfs_builder_free(b);
        assert_int_equal(h.n, 3);
        assert_int_equal(fs_tree_link(f->fs, &c, INDEX_ROOT_INO, "held", 0, 0, 0, &a), 0);
        assert_int_equal(fs_rfile_open(f->fs, &a, &rf), 0);

        assert_true(read_start(f, rf) < 0);
        failed_at = net_now_ns();
        asked = __atomic_load_n(&fn.calls, __ATOMIC_SEQ_CST);
        assert_true(asked >= 1);
        /* the kernel's retry, at once: fails without asking */
        assert_true(read_start(f, rf) < 0);
        assert_int_equal(__atomic_load_n(&fn.calls, __ATOMIC_SEQ_CST), asked);
        /* a retry that came then, taken by a thread 1.2 s later: fails without asking
         * (before: the store's hold was over, and it waited for the node again) */
        fs_request_start_ns = failed_at;
        nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 200000000 }, NULL);
        assert_true(read_start(f, rf) < 0);
        assert_int_equal(__atomic_load_n(&fn.calls, __ATOMIC_SEQ_CST), asked);
        /* a request that comes now asks again */
        fs_request_start_ns = 0;
        assert_true(read_start(f, rf) < 0);
        assert_true(__atomic_load_n(&fn.calls, __ATOMIC_SEQ_CST) > asked);
        fs_rfile_close(f->fs, rf);
        f->fs->store = f->store;
        net_pool_shutdown(pool);
        store_free(s);
        net_pool_free(pool);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_prefetch__deep_dag_cached__check_counts_all__evict_drops_all,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_copy_link__whole_file__same_cid__ranges_refused__independent,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_read__failed_range__retry_that_came_within_a_second_fails_at_once,
                        fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
