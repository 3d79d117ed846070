/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "prsmfs/index.h"

struct fixture {
        char dir[64];
        char path[96];
        struct index *idx;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        (void)snprintf(f->dir, sizeof(f->dir), "/tmp/prsmfs-index-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void)snprintf(f->path, sizeof(f->path), "%s/index.sqlite", f->dir);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[160];

        index_free(f->idx);
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void test_open__fresh__root_directory(void **state)
{
        struct fixture *f = *state;
        struct index_attr a;

        assert_int_equal(index_getattr(f->idx, INDEX_ROOT_INO, &a), 0);
        assert_true(S_ISDIR(a.mode));
        assert_int_equal(a.nlink, 2);
        assert_false(a.has_cid);
        assert_int_equal(index_getattr(f->idx, 999, &a), -ENOENT);
        assert_int_equal(index_check(f->idx), 0);
}

static void test_mknode__lookup_and_reopen__persisted(void **state)
{
        struct fixture *f = *state;
        struct index_new_node dir = { .mode = S_IFDIR | 0750, .uid = 7, .gid = 8 };
        struct index_new_node lnk = { .mode = S_IFLNK | 0777, .target = "../t" };
        struct index_attr a, b, root;
        char target[16];

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "d", &dir, &a), 0);
        assert_int_equal(a.uid, 7);
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "d", &dir, NULL), -EEXIST);
        assert_int_equal(index_mknode(f->idx, 12345, "x", &dir, NULL), -ENOENT);
        assert_int_equal(index_mknode(f->idx, a.ino, "l", &lnk, &b), 0);
        assert_int_equal(index_mknode(f->idx, a.ino, "a/b", &lnk, NULL), -EINVAL);
        assert_int_equal(index_mknode(f->idx, a.ino, "..", &lnk, NULL), -EINVAL);
        assert_int_equal(index_mknode(f->idx, a.ino, "", &lnk, NULL), -EINVAL);
        assert_int_equal(index_getattr(f->idx, INDEX_ROOT_INO, &root), 0);
        assert_int_equal(root.nlink, 3);

        index_free(f->idx);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "d", &b), 0);
        assert_int_equal(b.ino, a.ino);
        assert_int_equal(b.mode, S_IFDIR | 0750);
        assert_int_equal(index_lookup(f->idx, a.ino, "l", &b), 0);
        assert_int_equal(index_readlink(f->idx, b.ino, target, sizeof(target)), 0);
        assert_string_equal(target, "../t");
        assert_int_equal(index_readlink(f->idx, b.ino, target, 3), -ENAMETOOLONG);
        assert_int_equal(index_lookup(f->idx, a.ino, "missing", &b), -ENOENT);
}

struct collect {
        unsigned n;
        uint64_t last_cookie;
        unsigned stop_after;
};

static int collect_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct collect *c = ud;
        char want[16];

        assert_true(S_ISDIR(a->mode));
        if (c->stop_after && c->n == c->stop_after)
                return 1;
        /* entries come back in creation order, each exactly once */
        (void)snprintf(want, sizeof(want), "e%05u", c->n);
        assert_string_equal(name, want);
        assert_true(cookie > c->last_cookie);
        c->last_cookie = cookie;
        c->n++;
        return 0;
}

static void test_readdir__resume_from_cookie__every_entry_once(void **state)
{
        struct fixture *f = *state;
        struct index_new_node d = { .mode = S_IFDIR | 0755 };
        struct collect c = { .stop_after = 300 };
        char name[16];

        for (unsigned i = 0; i < 1000; i++) {
                (void)snprintf(name, sizeof(name), "e%05u", i);
                assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, name, &d, NULL), 0);
        }
        assert_int_equal(index_readdir(f->idx, INDEX_ROOT_INO, 0, collect_cb, &c), 0);
        assert_int_equal(c.n, 300);
        c.stop_after = 0;
        assert_int_equal(index_readdir(f->idx, INDEX_ROOT_INO, c.last_cookie, collect_cb, &c), 0);
        assert_int_equal(c.n, 1000);
}

static void test_open__newer_schema__refused(void **state)
{
        struct fixture *f = *state;
        struct index *idx = NULL;
        sqlite3 *db;

        index_free(f->idx);
        f->idx = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(index_open(f->path, &idx), -EPROTO);
        assert_null(idx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open__fresh__root_directory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mknode__lookup_and_reopen__persisted, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_readdir__resume_from_cookie__every_entry_once,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_open__newer_schema__refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
