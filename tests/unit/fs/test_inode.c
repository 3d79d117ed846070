/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The inode table (inode.c): lookup and open counts, an entry gone only when both are 0,
 * growth past the first bucket array, and the content sequence a flush bumps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"

static void test_ref__lookups_and_opens__gone_only_when_both_zero(void **state)
{
        struct fixture *f = *state;
        struct fs *fs = f->fs;

        assert_false(fs_inode_in_use(fs, 42));
        assert_int_equal(fs_inode_ref(fs, 42, 2, 0), 0);
        assert_int_equal(fs_inode_ref(fs, 42, 0, 1), 0);
        assert_true(fs_inode_in_use(fs, 42));
        assert_false(fs_inode_unref(fs, 42, 1, 0));
        assert_false(fs_inode_unref(fs, 42, 1, 0)); /* no lookups left, one handle */
        assert_true(fs_inode_in_use(fs, 42));
        assert_true(fs_inode_unref(fs, 42, 0, 1));
        assert_false(fs_inode_in_use(fs, 42));
        assert_int_equal(fs->inodes.n, 0);

        /* the other order, and a FORGET of more than was counted (clamped, not wrapped) */
        assert_int_equal(fs_inode_ref(fs, 42, 1, 2), 0);
        assert_false(fs_inode_unref(fs, 42, 0, 1));
        assert_false(fs_inode_unref(fs, 42, 5, 0));
        assert_true(fs_inode_in_use(fs, 42));
        assert_true(fs_inode_unref(fs, 42, 0, 1));
        assert_false(fs_inode_in_use(fs, 42));
        /* what nothing holds is unused */
        assert_true(fs_inode_unref(fs, 43, 1, 1));
}

static void test_ref__many_inodes__table_grows_and_all_found(void **state)
{
        struct fixture *f = *state;
        struct fs *fs = f->fs;
        const uint64_t n = 5000; /* several doublings of the first 1024 buckets */

        for (uint64_t ino = 2; ino < n + 2; ino++)
                assert_int_equal(fs_inode_ref(fs, ino, ino % 3 + 1, ino % 2), 0);
        assert_int_equal(fs->inodes.n, n);
        assert_true(fs->inodes.n_buckets >= n);
        for (uint64_t ino = 2; ino < n + 2; ino++) {
                assert_true(fs_inode_in_use(fs, ino));
                fs_inode_changed(fs, ino);
                if (ino % 7 == 0)
                        fs_inode_changed(fs, ino);
        }
        assert_false(fs_inode_in_use(fs, n + 2));
        for (uint64_t ino = 2; ino < n + 2; ino++)
                assert_int_equal(fs_inode_seq(fs, ino), ino % 7 == 0 ? 2 : 1);
        /* drop the lookups first: only the inodes with no handle go */
        for (uint64_t ino = 2; ino < n + 2; ino++)
                assert_int_equal(fs_inode_unref(fs, ino, ino % 3 + 1, 0), ino % 2 == 0);
        assert_int_equal(fs->inodes.n, n / 2);
        for (uint64_t ino = 2; ino < n + 2; ino++)
                assert_int_equal(fs_inode_in_use(fs, ino), ino % 2 == 1);
        for (uint64_t ino = 3; ino < n + 2; ino += 2)
                assert_true(fs_inode_unref(fs, ino, 0, 1));
        assert_int_equal(fs->inodes.n, 0);
}

static void test_seq__changed__counts_only_while_held(void **state)
{
        struct fixture *f = *state;
        struct fs *fs = f->fs;

        fs_inode_changed(fs, 7); /* nobody holds it: nothing to tell */
        assert_int_equal(fs_inode_seq(fs, 7), 0);
        assert_int_equal(fs_inode_ref(fs, 7, 1, 0), 0);
        assert_int_equal(fs_inode_seq(fs, 7), 0);
        fs_inode_changed(fs, 7);
        fs_inode_changed(fs, 7);
        assert_int_equal(fs_inode_seq(fs, 7), 2);
        /* a new reference keeps the sequence; a forgotten inode starts again */
        assert_int_equal(fs_inode_ref(fs, 7, 0, 1), 0);
        assert_int_equal(fs_inode_seq(fs, 7), 2);
        assert_true(fs_inode_unref(fs, 7, 1, 1));
        assert_int_equal(fs_inode_seq(fs, 7), 0);
}

static void test_seq__flush__bumped_once_per_new_content(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        struct wfile *wf = NULL;

        assert_int_equal(fs_inode_ref(f->fs, a.ino, 1, 1), 0);
        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        fixture_write(f, wf, "one", 0);
        assert_int_equal(fs_inode_seq(f->fs, a.ino), 0); /* a write alone is no new content */
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        assert_int_equal(fs_inode_seq(f->fs, a.ino), 1);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0); /* nothing new */
        assert_int_equal(fs_inode_seq(f->fs, a.ino), 1);
        fixture_write(f, wf, "two", 3);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        assert_int_equal(fs_inode_seq(f->fs, a.ino), 2);
        fs_wfile_close(f->fs, wf);
        assert_true(fs_inode_unref(f->fs, a.ino, 1, 1));
        (void)fixture_upload(f, 1); /* the first generation was cancelled by the second */
        assert_int_equal(fixture_staging_files(f), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_ref__lookups_and_opens__gone_only_when_both_zero, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_ref__many_inodes__table_grows_and_all_found,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_seq__changed__counts_only_while_held,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_seq__flush__bumped_once_per_new_content,
                                                fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
