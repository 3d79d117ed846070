/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fs_publish over the fake uploader: a directory's root is the one unixfs_dir_build makes of
 * its files' CIDs, the root is pinned, and a file whose upload is pending is waited for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "prsmfs/net.h"

#include "harness.h"

#define MS 1000000ull

static int ignore_block(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        (void)cid, (void)block, (void)len, (void)ud;
        return 0;
}

static void test_publish__directory__root_of_its_files_cids_pinned(void **state)
{
        struct fixture *f = *state;
        struct index_new_node dir = { .mode = S_IFDIR | 0755 };
        struct unixfs_dirent e[2] = { { .name = "a", .name_len = 1 },
                                      { .name = "b", .name_len = 1 } };
        struct unixfs_dir_params dp;
        struct index_attr d, a, b;
        struct cid root, want;
        uint64_t tsize;
        struct fs_publish_opts opts = { 0 };
        struct fs_publish_result res;

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "d", &dir, &d), 0);
        a = fixture_mkfile(f, d.ino, "a");
        b = fixture_mkfile(f, d.ino, "b");
        (void)fixture_stage(f, a.ino, "content of a", 0, NULL);
        (void)fixture_stage(f, b.ino, "and of b", 0, NULL);
        e[0].cid = fixture_upload(f, 0);
        e[0].tsize = 12;
        e[1].cid = fixture_upload(f, 1);
        e[1].tsize = 8;

        assert_int_equal(fs_publish(f->fs, "d", &opts, net_now_ns() + 5000 * MS, &res), 0);
        assert_int_equal(res.n_skipped_total, 0);
        root = res.root;
        fs_publish_result_done(&res);
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        assert_int_equal(unixfs_dir_build(&dp, e, 2, ignore_block, NULL, &want, &tsize), 0);
        assert_true(cid_equal(&root, &want));
        assert_int_equal(f->pins, 1);
        assert_true(cid_equal(&f->pinned, &root));
        assert_int_equal(f->n_put, 1); /* the directory node; the files were uploaded */
        assert_true(cid_equal(&f->put[0], &root));

        /* new content of a file: a new root */
        (void)fixture_stage(f, a.ino, "CONTENT", 0, NULL);
        e[0].cid = fixture_upload(f, 2);
        assert_int_equal(fs_publish(f->fs, "d", &opts, net_now_ns() + 5000 * MS, &res), 0);
        root = res.root;
        fs_publish_result_done(&res);
        assert_false(cid_equal(&root, &want));
        assert_int_equal(unixfs_dir_build(&dp, e, 2, ignore_block, NULL, &want, &tsize), 0);
        assert_true(cid_equal(&root, &want));
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_publish__upload_pending__waits_until_deadline(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "pending");
        uint64_t t0 = net_now_ns();
        struct fs_publish_opts opts = { 0 };
        struct fs_publish_result res;
        struct cid root;

        (void)fixture_stage(f, a.ino, "not uploaded yet", 0, NULL);
        assert_int_equal(fs_publish(f->fs, "pending", &opts, t0 + 150 * MS, &res), -ETIMEDOUT);
        assert_true(net_now_ns() - t0 >= 150 * MS);
        assert_int_equal(f->pins, 0);
        (void)fixture_upload(f, 0);
        assert_int_equal(fs_publish(f->fs, "pending", &opts, net_now_ns() + 5000 * MS, &res), 0);
        root = res.root;
        fs_publish_result_done(&res);
        a = fixture_attr(f, a.ino);
        assert_true(a.has_cid && cid_equal(&root, &a.cid));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_publish__directory__root_of_its_files_cids_pinned, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_publish__upload_pending__waits_until_deadline,
                                                fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
