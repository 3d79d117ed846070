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

/* Closes the fixture's index, runs sql on its file with plain SQLite, and checks that opening
 * it again fails with error. */
static void reopen_after_sql(struct fixture *f, const char *sql, int error)
{
        struct index *idx = NULL;
        sqlite3 *db;

        index_free(f->idx);
        f->idx = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(index_open(f->path, &idx), error);
        assert_null(idx);
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

static void test_instance__random_hex__kept_across_reopen_distinct_per_index(void **state)
{
        struct fixture *f = *state;
        char first[INDEX_INSTANCE_LEN + 1], other_path[128];
        struct index *other = NULL;
        const char *id = index_instance(f->idx);

        assert_int_equal(strlen(id), INDEX_INSTANCE_LEN);
        assert_int_equal(strspn(id, "0123456789abcdef"), INDEX_INSTANCE_LEN);
        memcpy(first, id, sizeof(first));
        index_free(f->idx);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        assert_string_equal(index_instance(f->idx), first);
        (void)snprintf(other_path, sizeof(other_path), "%s/other.sqlite", f->dir);
        assert_int_equal(index_open(other_path, &other), 0);
        assert_string_not_equal(index_instance(other), first);
        index_free(other);
}

static void test_instance__damaged__index_refused(void **state)
{
        /* it becomes a directory name: anything but 32 lowercase hex digits is refused */
        reopen_after_sql(*state, "UPDATE meta SET value = '../../etc' WHERE key = 'instance'",
                         -EBADMSG);
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

/* FIFOs, sockets and device nodes: inodes with their type in mode, and rdev (schema 6). */
static void test_mknode__special_files__mode_and_rdev_persisted(void **state)
{
        struct fixture *f = *state;
        struct index_new_node fifo = { .mode = S_IFIFO | 0640 };
        struct index_new_node sock = { .mode = S_IFSOCK | 0755 };
        struct index_new_node chr = { .mode = S_IFCHR | 0666, .rdev = 0x103 };
        struct index_new_node blk = { .mode = S_IFBLK | 0660, .rdev = 0x11170103 };
        struct index_attr a;

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "fifo", &fifo, NULL), 0);
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "sock", &sock, NULL), 0);
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "chr", &chr, NULL), 0);
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "blk", &blk, NULL), 0);
        index_free(f->idx);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "fifo", &a), 0);
        assert_int_equal(a.mode, S_IFIFO | 0640);
        assert_int_equal(a.rdev, 0);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "sock", &a), 0);
        assert_int_equal(a.mode, S_IFSOCK | 0755);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "chr", &a), 0);
        assert_int_equal(a.mode, S_IFCHR | 0666);
        assert_int_equal(a.rdev, 0x103);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "blk", &a), 0);
        assert_int_equal(a.mode, S_IFBLK | 0660);
        assert_int_equal(a.rdev, 0x11170103);
        assert_int_equal(a.nlink, 1);
        assert_int_equal(a.size, 0);
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
        reopen_after_sql(*state, "PRAGMA user_version = 99", -EPROTO);
}

/* Replaces the fixture's index by a version 1 database as the first release wrote it (root
 * and one file, "old", with inode 2), plus the rows sql adds, and opens (migrates) it. */
static void open_schema_1(struct fixture *f, const char *sql)
{
        sqlite3 *db;

        index_free(f->idx);
        f->idx = NULL;
        assert_int_equal(unlink(f->path), 0);
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(db,
                             "CREATE TABLE inodes (ino INTEGER PRIMARY KEY, mode INTEGER NOT NULL,"
                             " uid INTEGER NOT NULL DEFAULT 0, gid INTEGER NOT NULL DEFAULT 0,"
                             " nlink INTEGER NOT NULL DEFAULT 1, size INTEGER NOT NULL DEFAULT 0,"
                             " atime_ns INTEGER NOT NULL DEFAULT 0,"
                             " mtime_ns INTEGER NOT NULL DEFAULT 0,"
                             " ctime_ns INTEGER NOT NULL DEFAULT 0,"
                             " state INTEGER NOT NULL DEFAULT 0, cid BLOB, target BLOB);"
                             "CREATE TABLE dentries (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " parent INTEGER NOT NULL, name BLOB NOT NULL,"
                             " ino INTEGER NOT NULL, UNIQUE (parent, name));"
                             "CREATE TABLE xattrs (ino INTEGER NOT NULL, name TEXT NOT NULL,"
                             " value BLOB NOT NULL, PRIMARY KEY (ino, name)) WITHOUT ROWID;"
                             "INSERT INTO inodes(ino, mode, nlink) VALUES (1, 16877, 2);"
                             "INSERT INTO inodes(ino, mode, size) VALUES (2, 33188, 42);"
                             "INSERT INTO dentries(parent, name, ino) VALUES (1, X'6f6c64', 2);"
                             "PRAGMA user_version = 1;",
                             NULL, NULL, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(index_open(f->path, &f->idx), 0);
}

static void test_open__schema_1__migrated_keeping_rows(void **state)
{
        struct fixture *f = *state;
        struct index_attr a;

        open_schema_1(f, "");
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "old", &a), 0);
        assert_int_equal(a.size, 42);
        assert_int_equal(a.flags, 0);
        assert_int_equal(a.rdev, 0);
        assert_int_equal(strlen(index_instance(f->idx)), INDEX_INSTANCE_LEN);
        assert_int_equal(index_check(f->idx), 0);
}

static void assert_ts(struct timespec ts, int64_t sec, long nsec)
{
        assert_int_equal(ts.tv_sec, sec);
        assert_int_equal(ts.tv_nsec, nsec);
}

/* Schema 5 splits the int64 ns times into seconds and nanoseconds by floor division. */
static void test_open__schema_4_times_in_ns__split_exactly(void **state)
{
        struct fixture *f = *state;
        struct index_attr a;

        open_schema_1(f, "UPDATE inodes SET atime_ns = -1, mtime_ns = -315619200000000001,"
                         " ctime_ns = 1500000000987654321 WHERE ino = 2;"
                         "INSERT INTO inodes(ino, mode, atime_ns, mtime_ns, ctime_ns)"
                         " VALUES (3, 33188, -9223372036854775807 - 1, 9223372036854775807,"
                         " -1000000000);"
                         "INSERT INTO dentries(parent, name, ino) VALUES (1, X'6564676573', 3);");
        assert_int_equal(index_getattr(f->idx, 2, &a), 0);
        assert_ts(a.atime, -1, 999999999);
        assert_ts(a.mtime, -315619201, 999999999);
        assert_ts(a.ctime, 1500000000, 987654321);
        assert_int_equal(index_getattr(f->idx, 3, &a), 0);
        assert_ts(a.atime, -9223372037, 145224192);
        assert_ts(a.mtime, 9223372036, 854775807);
        assert_ts(a.ctime, -1, 0);
        assert_int_equal(index_check(f->idx), 0);
}

static int count_cb(const char *name, const struct index_attr *attr, uint64_t cookie, void *ud)
{
        (void)name;
        (void)attr;
        (void)cookie;
        (*(size_t *)ud)++;
        return 0;
}

static void test_expand__lazy_dir__children_once_bad_names_skipped(void **state)
{
        struct fixture *f = *state;
        struct index_new_node dir = { .mode = S_IFDIR | 0755, .state = INDEX_STATE_LAZY };
        struct index_child kids[] = {
                { "a", { .mode = S_IFREG | 0644, .size = 7 } },
                { "sub", { .mode = S_IFDIR | 0755, .state = INDEX_STATE_LAZY } },
                { "", { .mode = S_IFREG | 0644 } },
                { "..", { .mode = S_IFREG | 0644 } },
                { "x/y", { .mode = S_IFREG | 0644 } },
                { "a", { .mode = S_IFREG | 0644, .size = 9 } }, /* duplicate */
                { "link", { .mode = S_IFLNK | 0777, .target = "a" } },
        };
        struct index_attr d, a;
        size_t added, skipped, n = 0;
        char buf[16];

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "lazy", &dir, &d), 0);
        assert_int_equal(d.state, INDEX_STATE_LAZY);
        assert_int_equal(
                index_expand(f->idx, d.ino, kids, ELEMENTSOF(kids), true, &added, &skipped), 0);
        assert_int_equal(added, 3);
        assert_int_equal(skipped, 4);
        assert_int_equal(index_getattr(f->idx, d.ino, &d), 0);
        assert_int_equal(d.state, INDEX_STATE_CLEAN);
        assert_int_equal(d.nlink, 3); /* ".", its entry, and sub's ".." */
        assert_int_equal(index_lookup(f->idx, d.ino, "a", &a), 0);
        assert_int_equal(a.size, 7); /* the first of the duplicates wins */
        assert_int_equal(index_lookup(f->idx, d.ino, "link", &a), 0);
        assert_int_equal(index_readlink(f->idx, a.ino, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "a");
        /* a second expansion (another thread came second) changes nothing */
        assert_int_equal(index_expand(f->idx, d.ino, kids, 2, true, &added, &skipped), 0);
        assert_int_equal(added, 0);
        assert_int_equal(index_readdir(f->idx, d.ino, 0, count_cb, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(index_expand(f->idx, 999, kids, 1, true, NULL, NULL), -ENOENT);
        assert_int_equal(index_set_size(f->idx, a.ino, 5), 0);
        assert_int_equal(index_getattr(f->idx, a.ino, &a), 0);
        assert_int_equal(a.size, 5);
}

static struct cid test_cid(const char *s)
{
        struct cid c;

        assert_int_equal(cid_parse(s, strlen(s), &c), 0);
        return c;
}

#define CID_A "bafkreidzqhw5lnhqyaeuksa3ywsabjgzd5yooewvjnvayj6sxqufkyjxzi"
#define CID_B "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"

/* Batches of a listing: the directory stays lazy (times and CIDs above it untouched) until
 * the last one; a name a lookup linked before is skipped without leaving an inode behind. */
static void test_expand__batches_and_looked_up_names__once_no_orphans(void **state)
{
        struct fixture *f = *state;
        struct cid dc = test_cid(CID_B), fc = test_cid(CID_A);
        struct index_new_node top = { .mode = S_IFDIR | 0755 };
        struct index_new_node dir = { .mode = S_IFDIR | 0755,
                                      .state = INDEX_STATE_LAZY,
                                      .cid = &dc };
        struct index_child one[] = {
                { "b", { .mode = S_IFDIR | 0755, .cid = &dc, .state = INDEX_STATE_LAZY } }
        };
        struct index_child first[] = {
                { "a", { .mode = S_IFREG | 0644, .cid = &fc } },
                { "b", { .mode = S_IFDIR | 0755, .cid = &dc, .state = INDEX_STATE_LAZY } },
        };
        struct index_child last[] = {
                { "c", { .mode = S_IFDIR | 0755, .cid = &dc, .state = INDEX_STATE_LAZY } }
        };
        struct index_attr t, d, a;
        uint64_t inodes, inodes_after, bytes;
        size_t added, skipped, n = 0;

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "top", &top, &t), 0);
        assert_int_equal(index_set_dir_cid(f->idx, t.ino, &dc, index_tree_changes(f->idx)), 0);
        assert_int_equal(index_mknode(f->idx, t.ino, "lazy", &dir, &d), 0);
        assert_int_equal(index_set_dir_cid(f->idx, t.ino, &dc, index_tree_changes(f->idx)), 0);
        /* a lookup links "b" */
        assert_int_equal(index_expand(f->idx, d.ino, one, 1, false, &added, NULL), 0);
        assert_int_equal(added, 1);
        assert_int_equal(index_totals(f->idx, &inodes, &bytes), 0);
        assert_int_equal(index_expand(f->idx, d.ino, first, 2, false, &added, &skipped), 0);
        assert_int_equal(added, 1);
        assert_int_equal(skipped, 1);
        assert_int_equal(index_totals(f->idx, &inodes_after, &bytes), 0);
        assert_int_equal(inodes_after, inodes + 1); /* no inode for the skipped "b" */
        assert_int_equal(index_getattr(f->idx, d.ino, &a), 0);
        assert_int_equal(a.state, INDEX_STATE_LAZY);
        assert_int_equal(a.nlink, 3);
        assert_int_equal(a.mtime.tv_sec, d.mtime.tv_sec);
        assert_int_equal(a.mtime.tv_nsec, d.mtime.tv_nsec);
        assert_int_equal(index_expand(f->idx, d.ino, last, 1, true, &added, &skipped), 0);
        assert_int_equal(index_getattr(f->idx, d.ino, &a), 0);
        assert_int_equal(a.state, INDEX_STATE_CLEAN);
        assert_int_equal(a.nlink, 4);
        assert_true(a.has_cid && cid_equal(&a.cid, &dc)); /* unchanged: its content */
        assert_int_equal(index_getattr(f->idx, t.ino, &a), 0);
        assert_true(a.has_cid); /* listing is no change */
        assert_int_equal(index_readdir(f->idx, d.ino, 0, count_cb, &n), 0);
        assert_int_equal(n, 3);
}

/* A change below an entry a lookup linked into a lazy directory: the directory keeps the CID
 * that lists the rest but is marked changed; listed to its end, it has no CID any more. */
static void test_expand__change_below_lazy_dir__marked_then_cid_dropped(void **state)
{
        struct fixture *f = *state;
        struct cid dc = test_cid(CID_B);
        struct index_new_node dir = { .mode = S_IFDIR | 0755,
                                      .state = INDEX_STATE_LAZY,
                                      .cid = &dc };
        struct index_new_node file = { .mode = S_IFREG | 0644 };
        struct index_child sub[] = { { "sub", { .mode = S_IFDIR | 0755, .cid = &dc } } };
        struct index_attr d, s, a;

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "lazy", &dir, &d), 0);
        assert_int_equal(index_expand(f->idx, d.ino, sub, 1, false, NULL, NULL), 0);
        assert_int_equal(index_lookup(f->idx, d.ino, "sub", &s), 0);
        assert_int_equal(index_mknode(f->idx, s.ino, "new", &file, NULL), 0);
        assert_int_equal(index_getattr(f->idx, s.ino, &a), 0);
        assert_false(a.has_cid);
        assert_int_equal(index_getattr(f->idx, d.ino, &a), 0);
        assert_true(a.has_cid && cid_equal(&a.cid, &dc));
        assert_int_equal(a.state, INDEX_STATE_LAZY);
        assert_true(a.flags & INDEX_FLAG_CHANGED);
        assert_int_equal(index_expand(f->idx, d.ino, NULL, 0, true, NULL, NULL), 0);
        assert_int_equal(index_getattr(f->idx, d.ino, &a), 0);
        assert_false(a.has_cid);
        assert_false(a.flags & INDEX_FLAG_CHANGED);
        assert_int_equal(a.state, INDEX_STATE_CLEAN);
}

/* An entry listed without a type takes one when its block comes; a directory links its
 * parent; a second resolve (another thread) changes nothing. */
static void test_resolve__typeless_entry__gets_type_once(void **state)
{
        struct fixture *f = *state;
        struct cid dc = test_cid(CID_B), fc = test_cid(CID_A);
        struct index_new_node dir = { .mode = S_IFDIR | 0755,
                                      .state = INDEX_STATE_LAZY,
                                      .cid = &dc };
        struct index_child kids[] = {
                { "x", { .mode = 0644, .size = 77, .cid = &dc } },
                { "y", { .mode = 0644, .size = 5, .cid = &fc } },
                { "z", { .mode = 0644, .size = 9, .cid = &fc } },
        };
        struct index_new_node as_dir = { .mode = S_IFDIR | 0755, .state = INDEX_STATE_LAZY };
        struct index_new_node as_link = { .mode = S_IFLNK | 0777, .size = 1, .target = "x" };
        struct index_new_node as_file = { .mode = S_IFREG | 0644,
                                          .size = 3,
                                          .has_mtime = true,
                                          .mtime = { .tv_sec = 1000, .tv_nsec = 5 } };
        struct index_attr d, a;
        char buf[8];

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "lazy", &dir, &d), 0);
        assert_int_equal(index_expand(f->idx, d.ino, kids, 3, true, NULL, NULL), 0);
        assert_int_equal(index_lookup(f->idx, d.ino, "x", &a), 0);
        assert_int_equal(a.mode & S_IFMT, 0);
        assert_int_equal(a.size, 77);
        assert_int_equal(index_resolve(f->idx, a.ino, &as_dir, &a), 0);
        assert_true(S_ISDIR(a.mode));
        assert_int_equal(a.state, INDEX_STATE_LAZY);
        assert_int_equal(a.nlink, 2);
        assert_int_equal(index_getattr(f->idx, d.ino, &d), 0);
        assert_int_equal(d.nlink, 3);
        assert_int_equal(index_resolve(f->idx, a.ino, &as_file, &a), 0); /* already a dir */
        assert_true(S_ISDIR(a.mode));
        assert_int_equal(index_getattr(f->idx, d.ino, &d), 0);
        assert_int_equal(d.nlink, 3);
        assert_int_equal(index_lookup(f->idx, d.ino, "y", &a), 0);
        assert_int_equal(index_resolve(f->idx, a.ino, &as_link, &a), 0);
        assert_true(S_ISLNK(a.mode));
        assert_int_equal(index_readlink(f->idx, a.ino, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "x");
        assert_int_equal(index_lookup(f->idx, d.ino, "z", &a), 0);
        assert_int_equal(index_resolve(f->idx, a.ino, &as_file, &a), 0);
        assert_true(S_ISREG(a.mode));
        assert_int_equal(a.size, 3);
        assert_int_equal(a.mtime.tv_sec, 1000);
        assert_int_equal(a.mtime.tv_nsec, 5);
        assert_int_equal(
                index_resolve(f->idx, a.ino, &(struct index_new_node){ .mode = 0644 }, NULL),
                -EINVAL);
}

static void test_readdir__hidden_entry__found_by_lookup_only(void **state)
{
        struct fixture *f = *state;
        struct index_new_node h = { .mode = S_IFDIR | 0555,
                                    .flags = INDEX_FLAG_HIDDEN | INDEX_FLAG_RO };
        struct index_new_node v = { .mode = S_IFREG | 0644 };
        struct index_attr a;
        size_t n = 0;

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, ".ipfs", &h, NULL), 0);
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "visible", &v, NULL), 0);
        assert_int_equal(index_readdir(f->idx, INDEX_ROOT_INO, 0, count_cb, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, ".ipfs", &a), 0);
        assert_int_equal(a.flags, INDEX_FLAG_HIDDEN | INDEX_FLAG_RO);
}

static uint64_t mk(struct fixture *f, uint64_t parent, const char *name, uint32_t mode)
{
        struct index_new_node n = { .mode = mode, .size = 3 };
        struct index_attr a;

        assert_int_equal(index_mknode(f->idx, parent, name, &n, &a), 0);
        return a.ino;
}

static void test_unlink_rmdir__posix_errors_and_orphans(void **state)
{
        struct fixture *f = *state;
        uint64_t d = mk(f, INDEX_ROOT_INO, "d", S_IFDIR | 0755);
        uint64_t file = mk(f, d, "file", S_IFREG | 0644);
        struct index_new_node lazy = { .mode = S_IFDIR | 0755, .state = INDEX_STATE_LAZY };
        struct index_attr a;

        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "lazy", &lazy, NULL), 0);
        assert_int_equal(index_unlink(f->idx, INDEX_ROOT_INO, "nope", false, NULL), -ENOENT);
        assert_int_equal(index_unlink(f->idx, INDEX_ROOT_INO, "d", false, NULL), -EISDIR);
        assert_int_equal(index_unlink(f->idx, d, "file", true, NULL), -ENOTDIR);
        assert_int_equal(index_unlink(f->idx, INDEX_ROOT_INO, "d", true, NULL), -ENOTEMPTY);
        assert_int_equal(index_unlink(f->idx, INDEX_ROOT_INO, "lazy", true, NULL), -ENOTEMPTY);
        assert_int_equal(index_unlink(f->idx, d, "file", false, &a), 0);
        assert_int_equal(a.nlink, 0); /* still there for open handles */
        assert_int_equal(index_getattr(f->idx, file, &a), 0);
        assert_int_equal(index_unlink(f->idx, INDEX_ROOT_INO, "d", true, &a), 0);
        assert_int_equal(index_getattr(f->idx, INDEX_ROOT_INO, &a), 0);
        assert_int_equal(a.nlink, 3); /* ".", its entry, "lazy"'s ".." */
        assert_int_equal(index_drop_orphans(f->idx, 0), 0);
        assert_int_equal(index_getattr(f->idx, file, &a), -ENOENT);
        assert_int_equal(index_getattr(f->idx, d, &a), -ENOENT);
        assert_int_equal(index_check(f->idx), 0);
}

static void test_rename__replace_move_and_refusals(void **state)
{
        struct fixture *f = *state;
        uint64_t a1 = mk(f, INDEX_ROOT_INO, "a", S_IFREG | 0644);
        uint64_t b1 = mk(f, INDEX_ROOT_INO, "b", S_IFREG | 0644);
        uint64_t d1 = mk(f, INDEX_ROOT_INO, "d1", S_IFDIR | 0755);
        uint64_t d2 = mk(f, INDEX_ROOT_INO, "d2", S_IFDIR | 0755);
        struct index_attr x, rep;

        (void)mk(f, d2, "inside", S_IFREG | 0644);
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "a", INDEX_ROOT_INO, "b",
                                      INDEX_RENAME_NOREPLACE, NULL),
                         -EEXIST);
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "a", INDEX_ROOT_INO, "d1", 0, NULL),
                         -EISDIR);
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "d1", INDEX_ROOT_INO, "b", 0, NULL),
                         -ENOTDIR);
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "d1", INDEX_ROOT_INO, "d2", 0, NULL),
                         -ENOTEMPTY);
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "a", INDEX_ROOT_INO, "a", 4, NULL),
                         -EINVAL); /* RENAME_EXCHANGE */
        /* rsync's temp file over the target: the old inode is replaced */
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "a", INDEX_ROOT_INO, "b", 0, &rep),
                         0);
        assert_int_equal(rep.ino, b1);
        assert_int_equal(rep.nlink, 0);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "b", &x), 0);
        assert_int_equal(x.ino, a1);
        assert_int_equal(index_lookup(f->idx, INDEX_ROOT_INO, "a", &x), -ENOENT);
        /* a directory moved into another: link counts follow */
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "d1", d2, "moved", 0, &rep), 0);
        assert_int_equal(rep.ino, 0);
        assert_int_equal(index_getattr(f->idx, d2, &x), 0);
        assert_int_equal(x.nlink, 3);
        assert_int_equal(index_getattr(f->idx, INDEX_ROOT_INO, &x), 0);
        assert_int_equal(x.nlink, 3); /* ".", entry, d2 */
        assert_int_equal(index_lookup(f->idx, d2, "moved", &x), 0);
        assert_int_equal(x.ino, d1);
        assert_int_equal(index_check(f->idx), 0);
}

static void test_link_setattr_xattrs(void **state)
{
        struct fixture *f = *state;
        uint64_t a1 = mk(f, INDEX_ROOT_INO, "a", S_IFREG | 0644);
        uint64_t d = mk(f, INDEX_ROOT_INO, "d", S_IFDIR | 0755);
        struct index_setattr s = { .set = INDEX_SET_MODE | INDEX_SET_UID | INDEX_SET_MTIME,
                                   .mode = 0600 | S_IFDIR,
                                   .uid = 1000,
                                   .mtime = { 1234567890, 123456789 } };
        struct index_attr x;
        char buf[16];

        assert_int_equal(index_link(f->idx, a1, d, "hard", &x), 0);
        assert_int_equal(x.nlink, 2);
        assert_int_equal(index_link(f->idx, d, INDEX_ROOT_INO, "dirlink", NULL), -EPERM);
        assert_int_equal(index_link(f->idx, a1, d, "hard", NULL), -EEXIST);
        assert_int_equal(index_setattr(f->idx, a1, &s, &x), 0);
        assert_true(S_ISREG(x.mode)); /* the type bits stay */
        assert_int_equal(x.mode & 07777, 0600);
        assert_int_equal(x.uid, 1000);
        assert_ts(x.mtime, 1234567890, 123456789);
        assert_int_equal(index_setattr(f->idx, 9999, &s, NULL), -ENOENT);
        assert_int_equal(index_xattr_set(f->idx, a1, "user.k", "v1", 2, INDEX_XATTR_REPLACE),
                         -ENODATA);
        assert_int_equal(index_xattr_set(f->idx, a1, "user.k", "v1", 2, INDEX_XATTR_CREATE), 0);
        assert_int_equal(index_xattr_set(f->idx, a1, "user.k", "v2", 2, INDEX_XATTR_CREATE),
                         -EEXIST);
        assert_int_equal(index_xattr_set(f->idx, a1, "user.k", "value", 5, 0), 0);
        assert_int_equal(index_xattr_get(f->idx, a1, "user.k", buf, sizeof(buf)), 5);
        assert_memory_equal(buf, "value", 5);
        assert_int_equal(index_xattr_set(f->idx, a1, "user.empty", "", 0, 0), 0);
        assert_int_equal(index_xattr_get(f->idx, a1, "user.empty", buf, sizeof(buf)), 0);
        assert_int_equal(index_xattr_remove(f->idx, a1, "user.k"), 0);
        assert_int_equal(index_xattr_remove(f->idx, a1, "user.k"), -ENODATA);
        assert_int_equal(index_xattr_get(f->idx, a1, "user.k", buf, sizeof(buf)), -ENODATA);
}

/* Times a user may set: any seconds a timespec holds, nanoseconds in [0, 1e9). */
static void test_setattr__times_past_the_int64_ns_range__kept_exactly(void **state)
{
        struct fixture *f = *state;
        uint64_t ino = mk(f, INDEX_ROOT_INO, "t", S_IFREG | 0644);
        struct index_setattr s = {
                .set = INDEX_SET_ATIME | INDEX_SET_MTIME | INDEX_SET_CTIME,
                .atime = { .tv_sec = -315619200, .tv_nsec = 1 },          /* 1960 */
                .mtime = { .tv_sec = 13569465600, .tv_nsec = 999999999 }, /* 2400 */
                .ctime = { .tv_sec = INT64_MAX, .tv_nsec = 0 },
        };
        struct timespec t = { .tv_sec = INT64_MIN, .tv_nsec = 5 };
        struct index_attr a;

        assert_int_equal(index_setattr(f->idx, ino, &s, &a), 0);
        assert_ts(a.atime, -315619200, 1);
        assert_ts(a.mtime, 13569465600, 999999999);
        assert_ts(a.ctime, INT64_MAX, 0);
        assert_int_equal(index_stage(f->idx, ino, 1, 0, &t, &t), 0);
        index_free(f->idx);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        assert_int_equal(index_getattr(f->idx, ino, &a), 0);
        assert_ts(a.atime, -315619200, 1);
        assert_ts(a.mtime, INT64_MIN, 5);
        s.mtime.tv_nsec = 1000000000;
        assert_int_equal(index_setattr(f->idx, ino, &s, NULL), -EINVAL);
        s.mtime.tv_nsec = -1;
        assert_int_equal(index_setattr(f->idx, ino, &s, NULL), -EINVAL);
        t.tv_nsec = 1000000000;
        assert_int_equal(index_stage(f->idx, ino, 2, 0, &t, &t), -EINVAL);
}

static int job_cb(const struct index_job *j, void *ud)
{
        struct index_job *out = ud;
        size_t i = 0;

        while (out[i].ino)
                i++;
        out[i] = *j; /* the caller's array has a zeroed slot past the last job */
        return 0;
}

static void test_stage__job_then_commit_only_the_current_generation(void **state)
{
        struct fixture *f = *state;
        uint64_t ino = mk(f, INDEX_ROOT_INO, "w", S_IFREG | 0644);
        uint64_t other = mk(f, INDEX_ROOT_INO, "w2", S_IFREG | 0644);
        struct index_job jobs[4] = { 0 };
        struct timespec t1 = { 1, 1000 }, t2 = { 2, 0 }, t3 = { 3, 0 }, t2100 = { 4102444800, 5 };
        struct index_attr a;
        struct cid c1, c2;

        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "one", 3, &c1), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "two!", 4, &c2), 0);
        assert_int_equal(index_stage(f->idx, ino, 7, 3, &t1, &t1), 0);
        assert_int_equal(index_getattr(f->idx, ino, &a), 0);
        assert_int_equal(a.state, INDEX_STATE_DIRTY);
        assert_int_equal(a.staged, 7);
        assert_int_equal(a.size, 3);
        assert_ts(a.mtime, 1, 1000);
        assert_true(a.ctime.tv_sec > 1); /* its creation, later than the content's change */
        /* closed again before the upload finished: generation 8 replaces the job */
        assert_int_equal(index_stage(f->idx, ino, 8, 4, &t2, &t2100), 0);
        assert_int_equal(index_getattr(f->idx, ino, &a), 0);
        assert_ts(a.ctime, 4102444800, 5);
        assert_int_equal(index_stage(f->idx, other, 9, 5, &t3, &t3), 0);
        assert_int_equal(index_jobs(f->idx, job_cb, jobs), 0);
        assert_int_equal(jobs[0].gen, 8); /* oldest first, one job per inode */
        assert_int_equal(jobs[1].gen, 9);
        assert_int_equal(jobs[2].ino, 0);
        /* generation 7's upload lands late: it changes nothing */
        assert_int_equal(index_commit_upload(f->idx, ino, 7, &c1, 3, 0), 0);
        assert_int_equal(index_getattr(f->idx, ino, &a), 0);
        assert_false(a.has_cid);
        assert_int_equal(index_commit_upload(f->idx, ino, 8, &c2, 4, 0), 1);
        assert_int_equal(index_getattr(f->idx, ino, &a), 0);
        assert_true(a.has_cid && cid_equal(&a.cid, &c2));
        assert_int_equal(a.state, INDEX_STATE_CLEAN);
        assert_int_equal(a.staged, 0);
        memset(jobs, 0, sizeof(jobs));
        assert_int_equal(index_jobs(f->idx, job_cb, jobs), 0);
        assert_int_equal(jobs[0].ino, other);
        assert_int_equal(jobs[1].ino, 0);
        assert_int_equal(index_stage(f->idx, 9999, 1, 1, &t1, &t1), -ENOENT);
        /* prsmctl uploads forget: the job goes, the staged content stays */
        assert_int_equal(index_job_forget(f->idx, 8), -ENOENT); /* committed above */
        assert_int_equal(index_job_forget(f->idx, 9), 0);
        assert_int_equal(index_job_forget(f->idx, 9), -ENOENT);
        memset(jobs, 0, sizeof(jobs));
        assert_int_equal(index_jobs(f->idx, job_cb, jobs), 0);
        assert_int_equal(jobs[0].ino, 0);
        assert_int_equal(index_getattr(f->idx, other, &a), 0);
        assert_int_equal(a.staged, 9);
        assert_int_equal(a.state, INDEX_STATE_DIRTY);
}

/* Layouts are kept by root CID until no inode refers to that CID (pruned at open). */
static void test_layouts__put_get_replace_pruned_when_unreferenced(void **state)
{
        struct fixture *f = *state;
        uint64_t ino = mk(f, INDEX_ROOT_INO, "big", S_IFREG | 0644);
        struct timespec t = { 1000, 0 };
        struct cid used, gone;
        uint8_t *p = NULL;
        size_t len = 0;

        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "root", 4, &used), 0);
        assert_int_equal(cid_compute(1, CID_CODEC_DAG_PB, CID_MH_SHA2_256, "old", 3, &gone), 0);
        assert_int_equal(index_stage(f->idx, ino, 1, 10, &t, &t), 0);
        assert_int_equal(index_commit_upload(f->idx, ino, 1, &used, 10, 0), 1);
        assert_int_equal(index_layout_get(f->idx, &used, &p, &len), -ENOENT);
        assert_int_equal(index_layout_put(f->idx, &used, (const uint8_t *)"v1", 2), 0);
        assert_int_equal(index_layout_put(f->idx, &used, (const uint8_t *)"v2!", 3), 0);
        assert_int_equal(index_layout_put(f->idx, &gone, (const uint8_t *)"x", 1), 0);
        assert_int_equal(index_layout_get(f->idx, &used, &p, &len), 0);
        assert_int_equal(len, 3);
        assert_memory_equal(p, "v2!", 3);
        free(p);
        assert_int_equal(index_layout_get(f->idx, &gone, &p, &len), 0);
        free(p);

        index_free(f->idx);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        assert_int_equal(index_layout_get(f->idx, &gone, &p, &len), -ENOENT);
        assert_int_equal(index_layout_get(f->idx, &used, &p, &len), 0);
        assert_int_equal(len, 3);
        free(p);
        assert_int_equal(index_check(f->idx), 0);
}

/* ---- pins (schema 8) ---- */

static struct cid mkcid(const char *seed)
{
        struct cid c;

        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, seed, strlen(seed), &c), 0);
        return c;
}

/* A file whose upload of content c committed (pinned by prsmfs when pinned). */
static uint64_t mk_uploaded(struct fixture *f, const char *name, const struct cid *c, bool pinned)
{
        static uint64_t gen = 100;
        struct timespec t = { 1000, 0 };
        uint64_t ino = mk(f, INDEX_ROOT_INO, name, S_IFREG | 0644);

        gen++;
        assert_int_equal(index_stage(f->idx, ino, gen, 3, &t, &t), 0);
        assert_int_equal(
                index_commit_upload(f->idx, ino, gen, c, 3, pinned ? INDEX_COMMIT_PINNED : 0), 1);
        return ino;
}

static void rewrite(struct fixture *f, uint64_t ino, const struct cid *c)
{
        static uint64_t gen = 1000;
        struct timespec t = { 2000, 0 };

        gen++;
        assert_int_equal(index_stage(f->idx, ino, gen, 3, &t, &t), 0);
        assert_int_equal(index_commit_upload(f->idx, ino, gen, c, 3, INDEX_COMMIT_PINNED), 1);
}

static void rm(struct fixture *f, const char *name)
{
        struct index_attr a;

        assert_int_equal(index_unlink(f->idx, INDEX_ROOT_INO, name, false, &a), 0);
        assert_int_equal(index_drop_orphans(f->idx, a.ino), 0);
}

static void assert_counts(struct fixture *f, uint64_t held, uint64_t owed)
{
        uint64_t h = 99, o = 99;

        assert_int_equal(index_pin_counts(f->idx, &h, &o), 0);
        assert_int_equal(h, held);
        assert_int_equal(o, owed);
}

/* A root stays pinned while any inode has it (identical files dedup to one CID, hard links
 * are one inode); the last reference going owes its unpin, once; linked content and .ipfs/
 * entries are never prsmfs's pins. */
static void test_pins__references__unpin_owed_when_the_last_goes(void **state)
{
        struct fixture *f = *state;
        struct cid c1 = mkcid("one"), c2 = mkcid("two"), c3 = mkcid("linked"), owed[4];
        struct index_new_node ro = { .mode = S_IFREG | 0444, .flags = INDEX_FLAG_RO, .cid = &c2 };
        struct index_new_node lnk = { .mode = S_IFREG | 0644, .cid = &c3 };
        struct index_attr a;
        uint64_t ia;

        ia = mk_uploaded(f, "a", &c1, true);
        (void)mk_uploaded(f, "b", &c1, true); /* the same bytes */
        assert_counts(f, 1, 0);
        rewrite(f, ia, &c2);
        assert_counts(f, 2, 0); /* b still has c1 */
        rm(f, "b");
        assert_counts(f, 1, 1);
        assert_int_equal(index_pins_owed(f->idx, owed, 4), 1);
        assert_true(cid_equal(&owed[0], &c1));
        assert_int_equal(index_pin_claim(f->idx, &c1), INDEX_PIN_UNPIN);
        assert_counts(f, 1, 1); /* sent, not yet confirmed */
        assert_int_equal(index_pin_done(f->idx, &c1, INDEX_PIN_UNPIN), 1);
        assert_counts(f, 1, 0);
        assert_int_equal(index_pins_owed(f->idx, owed, 4), 0);

        /* a hard link keeps c2; a read-only .ipfs/ entry of it does not */
        assert_int_equal(index_link(f->idx, ia, INDEX_ROOT_INO, "a2", &a), 0);
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "ro", &ro, NULL), 0);
        rm(f, "a");
        assert_counts(f, 1, 0);
        rm(f, "a2");
        assert_counts(f, 0, 1);

        /* linked content that prsmfs never pinned is never owed */
        assert_int_equal(index_mknode(f->idx, INDEX_ROOT_INO, "l", &lnk, NULL), 0);
        rm(f, "l");
        assert_counts(f, 0, 1);
        (void)mk_uploaded(f, "nopin", &c3, false); /* automatic_pinning off: not ours */
        rm(f, "nopin");
        assert_counts(f, 0, 1);
        assert_int_equal(index_check(f->idx), 0);
}

/* The same bytes uploaded again around an unpin: before it is sent the pin is simply held;
 * once it may have reached the node (SENT, or GONE) the root is pinned again. */
static void test_pins__pinned_again_around_an_unpin__held_or_repinned(void **state)
{
        struct fixture *f = *state;
        struct cid c = mkcid("same"), d = mkcid("gone");

        (void)mk_uploaded(f, "a", &c, true);
        rm(f, "a");
        assert_counts(f, 0, 1);
        (void)mk_uploaded(f, "b", &c, true); /* owed, not sent: held again */
        assert_counts(f, 1, 0);
        assert_int_equal(index_pin_claim(f->idx, &c), INDEX_PIN_NOTHING);

        rm(f, "b");
        assert_int_equal(index_pin_claim(f->idx, &c), INDEX_PIN_UNPIN);
        (void)mk_uploaded(f, "c", &c, true); /* its pin may land before that unpin */
        assert_int_equal(index_pin_done(f->idx, &c, INDEX_PIN_UNPIN), 0);
        assert_counts(f, 0, 1);
        assert_int_equal(index_pin_claim(f->idx, &c), INDEX_PIN_REPIN);
        assert_int_equal(index_pin_done(f->idx, &c, INDEX_PIN_REPIN), 1);
        assert_counts(f, 1, 0);

        (void)mk_uploaded(f, "d", &d, true);
        rm(f, "d");
        assert_int_equal(index_pin_claim(f->idx, &d), INDEX_PIN_UNPIN);
        assert_int_equal(index_pin_done(f->idx, &d, INDEX_PIN_UNPIN), 1);
        (void)mk_uploaded(f, "d2", &d, true); /* GONE: pinned again */
        assert_int_equal(index_pin_claim(f->idx, &d), INDEX_PIN_REPIN);
        rm(f, "d2"); /* and dropped while that pin was out: unpin again */
        assert_int_equal(index_pin_done(f->idx, &d, INDEX_PIN_REPIN), 0);
        assert_int_equal(index_pin_claim(f->idx, &d), INDEX_PIN_UNPIN);
        assert_int_equal(index_pin_done(f->idx, &d, INDEX_PIN_UNPIN), 1);
        assert_counts(f, 1, 0);
}

/* An upload whose commit no longer applies (newer content, or the inode went), or that was
 * cancelled after its pin, leaves a root nothing refers to: owed at once. Owed unpins are
 * kept across a reopen. */
static void test_pins__commit_too_late_or_cancelled__owed_at_once_and_kept(void **state)
{
        struct fixture *f = *state;
        uint64_t ino = mk(f, INDEX_ROOT_INO, "w", S_IFREG | 0644);
        struct timespec t = { 1, 0 };
        struct cid late = mkcid("late"), cancelled = mkcid("cancelled"), owed[4];

        assert_int_equal(index_stage(f->idx, ino, 7, 3, &t, &t), 0);
        assert_int_equal(index_stage(f->idx, ino, 8, 4, &t, &t), 0);
        assert_int_equal(index_commit_upload(f->idx, ino, 7, &late, 3, INDEX_COMMIT_PINNED), 0);
        assert_int_equal(index_pin_add(f->idx, &cancelled, 0), 0);
        assert_counts(f, 0, 2);
        index_free(f->idx);
        assert_int_equal(index_open(f->path, &f->idx), 0);
        assert_int_equal(index_pins_owed(f->idx, owed, 4), 2);
        assert_int_equal(index_pins_owed(f->idx, owed, 1), 1);
}

/* A published root stays pinned with no file left until unpublished; a root that is also a
 * file's content stays while the file does. */
static void test_pins__published__held_until_unpublished(void **state)
{
        struct fixture *f = *state;
        struct cid tree = mkcid("tree"), file = mkcid("file"), other = mkcid("other");

        assert_int_equal(index_pin_add(f->idx, &tree, INDEX_PIN_PUBLISHED), 0);
        (void)mk_uploaded(f, "f", &file, true);
        assert_int_equal(index_pin_add(f->idx, &file, INDEX_PIN_PUBLISHED), 0);
        rm(f, "f");
        assert_counts(f, 2, 0);
        assert_int_equal(index_pin_unpublish(f->idx, &tree), 1);
        assert_int_equal(index_pin_unpublish(f->idx, &tree), -ENOENT);
        assert_int_equal(index_pin_unpublish(f->idx, &other), -ENOENT);
        assert_counts(f, 1, 1);
        (void)mk_uploaded(f, "g", &file, true);
        assert_int_equal(index_pin_unpublish(f->idx, &file), 0); /* g still has it */
        assert_counts(f, 1, 1);
        rm(f, "g");
        assert_counts(f, 0, 2);
}

/* Schema 7 databases get the table; roots committed before it are not known to be ours and
 * stay pinned. */
static void test_open__schema_1_with_a_cid__old_roots_never_owed(void **state)
{
        struct fixture *f = *state;
        struct cid c = mkcid("old");
        char sql[2 * CID_MAX_BIN + 64], hex[2 * CID_MAX_BIN + 1];

        for (size_t i = 0; i < c.len; i++)
                (void)snprintf(hex + 2 * i, 3, "%02x", c.bin[i]);
        (void)snprintf(sql, sizeof(sql), "UPDATE inodes SET cid = X'%s' WHERE ino = 2", hex);
        open_schema_1(f, sql);
        rm(f, "old");
        assert_counts(f, 0, 0);
        assert_int_equal(index_check(f->idx), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open__fresh__root_directory, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_instance__random_hex__kept_across_reopen_distinct_per_index, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_instance__damaged__index_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_mknode__lookup_and_reopen__persisted, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_mknode__special_files__mode_and_rdev_persisted,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_readdir__resume_from_cookie__every_entry_once,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_open__newer_schema__refused, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_open__schema_1_with_a_cid__old_roots_never_owed, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_pins__references__unpin_owed_when_the_last_goes, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_pins__pinned_again_around_an_unpin__held_or_repinned, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_pins__commit_too_late_or_cancelled__owed_at_once_and_kept, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_pins__published__held_until_unpublished, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_open__schema_1__migrated_keeping_rows, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_open__schema_4_times_in_ns__split_exactly,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_setattr__times_past_the_int64_ns_range__kept_exactly, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_expand__lazy_dir__children_once_bad_names_skipped, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_expand__batches_and_looked_up_names__once_no_orphans, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_expand__change_below_lazy_dir__marked_then_cid_dropped, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_resolve__typeless_entry__gets_type_once, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_readdir__hidden_entry__found_by_lookup_only,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_unlink_rmdir__posix_errors_and_orphans, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_rename__replace_move_and_refusals, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_link_setattr_xattrs, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_layouts__put_get_replace_pruned_when_unreferenced, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_stage__job_then_commit_only_the_current_generation, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
