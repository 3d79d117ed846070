/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Follow mounts over a store without a network (blocks put in its cache): the root shows the
 * followed tree (lookups, its whole listing in the index before the switch), a switch moves
 * every name at once, the same root again is no switch, a root that is a file is refused and
 * the old one stays, and a restart shows the last root before any resolve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"

static int put_block(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct fixture *f = ud;

        return cache_block_put(f->cache, cid, block, len);
}

static struct cid file_of(struct fixture *f, const char *data, uint64_t *ret_tsize)
{
        struct unixfs_params p;
        struct unixfs_builder *b;
        struct cid c;

        unixfs_params_profile(UNIXFS_PROFILE_DEFAULT, &p);
        assert_int_equal(unixfs_builder_new(&p, put_block, f, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, strlen(data)), 0);
        assert_int_equal(unixfs_builder_finish(b, &c, NULL, ret_tsize), 0);
        unixfs_builder_free(b);
        return c;
}

/* A directory of files named names[0..n) (each holding its name), its blocks in the cache. */
static struct cid dir_of(struct fixture *f, const char *const *names, size_t n)
{
        struct unixfs_dirent e[8];
        struct unixfs_dir_params dp;
        uint64_t tsize;
        struct cid root;

        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++) {
                e[i] = (struct unixfs_dirent){ .name = names[i], .name_len = strlen(names[i]) };
                e[i].cid = file_of(f, names[i], &e[i].tsize);
        }
        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        assert_int_equal(unixfs_dir_build(&dp, e, n, put_block, f, &root, &tsize), 0);
        return root;
}

static bool shows(struct fixture *f, const char *name)
{
        struct index_attr a;
        int r = fs_tree_lookup(f->fs, INDEX_ROOT_INO, name, &a);

        assert_true(r == 0 || r == -ENOENT);
        if (r == 0)
                assert_true(a.flags & INDEX_FLAG_RO); /* immutable, as all of .ipfs/ */
        return r == 0;
}

static int count_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        (void)name, (void)a, (void)cookie;
        ++*(size_t *)ud;
        return 0;
}

/* Entries the followed directory has in the index now (all of them: it was expanded). */
static size_t listed(struct fixture *f)
{
        size_t n = 0;

        assert_int_equal(index_readdir(f->idx, fs_follow_dir(f->fs), 0, count_cb, &n), 0);
        return n;
}

static void test_follow__switches__every_name_moves_at_once(void **state)
{
        static const char *const v1[] = { "a", "shared" }, *const v2[] = { "shared", "c", "d" };
        struct fixture *f = *state;
        struct cid r1 = dir_of(f, v1, 2), r2 = dir_of(f, v2, 3), shown;
        struct index_attr ipfs;
        uint64_t when;
        char err[256];

        fs_follow_enable(f->fs);
        assert_false(fs_follow_root(f->fs, &shown, &when));
        assert_false(shows(f, "a")); /* nothing before the first root */
        assert_int_equal(fs_follow_switch(f->fs, &r1, err, sizeof(err)), 1);
        assert_true(shows(f, "a") && shows(f, "shared") && !shows(f, "c"));
        assert_int_equal(listed(f), 2);
        /* .ipfs stays the mount's own */
        assert_int_equal(fs_tree_lookup(f->fs, INDEX_ROOT_INO, ".ipfs", &ipfs), 0);
        assert_int_equal(ipfs.ino, f->fs->ipfs_ino);

        assert_int_equal(fs_follow_switch(f->fs, &r2, err, sizeof(err)), 1);
        assert_true(!shows(f, "a") && shows(f, "shared") && shows(f, "c") && shows(f, "d"));
        assert_int_equal(listed(f), 3);
        assert_true(fs_follow_root(f->fs, &shown, &when));
        assert_true(cid_equal(&shown, &r2));
        assert_true(when > 0);
        assert_int_equal(fs_follow_switch(f->fs, &r2, err, sizeof(err)), 0); /* no change */
}

static void test_follow__file_root__refused_old_root_stays(void **state)
{
        static const char *const v1[] = { "a" };
        struct fixture *f = *state;
        struct cid r1 = dir_of(f, v1, 1), file, shown;
        uint64_t tsize, when;
        char err[256], s[CID_MAX_STR];

        file = file_of(f, "not a tree", &tsize);
        fs_follow_enable(f->fs);
        assert_int_equal(fs_follow_switch(f->fs, &r1, err, sizeof(err)), 1);
        assert_int_equal(fs_follow_switch(f->fs, &file, err, sizeof(err)), -ENOTDIR);
        assert_non_null(strstr(err, "not a directory"));
        assert_non_null(strstr(err, cid_to_string(&file, s)));
        assert_true(fs_follow_root(f->fs, &shown, &when));
        assert_true(cid_equal(&shown, &r1));
        assert_true(shows(f, "a"));
        assert_int_equal(f->fs->st.follow_rejected, 1);
        assert_int_equal(f->fs->st.follow_switches, 1);
}

static void test_follow__restart__last_root_without_a_resolve(void **state)
{
        static const char *const v1[] = { "a" }, *const v2[] = { "b" };
        struct fixture *f = *state;
        struct cid r1 = dir_of(f, v1, 1), r2 = dir_of(f, v2, 1), shown;
        uint64_t when;
        char err[256];

        fs_follow_enable(f->fs);
        assert_int_equal(fs_follow_restore(f->fs), 0); /* none recorded yet */
        assert_int_equal(fs_follow_switch(f->fs, &r1, err, sizeof(err)), 1);
        assert_int_equal(fs_follow_switch(f->fs, &r2, err, sizeof(err)), 1);
        fixture_restart(f);
        fs_follow_enable(f->fs);
        assert_int_equal(fs_follow_restore(f->fs), 1);
        assert_true(fs_follow_root(f->fs, &shown, &when));
        assert_true(cid_equal(&shown, &r2));
        assert_int_equal(when, 0); /* restored, not switched to */
        assert_true(shows(f, "b") && !shows(f, "a"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_follow__switches__every_name_moves_at_once,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_follow__file_root__refused_old_root_stays,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_follow__restart__last_root_without_a_resolve,
                                                fixture_setup, fixture_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
