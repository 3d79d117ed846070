/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writers (writer.c) without FUSE requests: renames while a writer is open, appends over a
 * staged or uploaded base and what fs_wfile_read returns meanwhile, one writer shared by
 * every open of an inode, a write the staging disk stops part-way, and fs_staged_open_attr
 * following the index when the generation it was given is gone.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/io.h"

#include "harness.h"

/* The bytes of the staging file the fake uploader was handed as submission i. */
static void expect_submitted(struct fixture *f, size_t i, const char *s)
{
        size_t len = strlen(s);
        char buf[256];
        int fd;

        assert_true(i < f->n_submits && len < sizeof(buf));
        fd = open(f->submits[i].path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(io_pread_full(fd, buf, sizeof(buf), 0), (ssize_t)len);
        assert_memory_equal(buf, s, len);
        close(fd);
}

static void test_rename__writer_open__flush_lands_under_new_name(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "a"), b;
        struct wfile *wf = NULL;
        struct cid c;

        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        fixture_write(f, wf, "hello", 0);
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "a", INDEX_ROOT_INO, "b", 0, NULL),
                         0);
        fixture_write(f, wf, ", world", 5); /* a write after the rename is the same file's */
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        assert_int_equal(fixture_lookup(f, "a").ino, 0);
        b = fixture_lookup(f, "b");
        assert_int_equal(b.ino, a.ino);
        assert_int_equal(b.size, 12);
        assert_int_equal(b.state, INDEX_STATE_DIRTY);
        assert_int_equal(b.staged, fs_wfile_gen(wf));
        assert_int_equal(f->n_submits, 1);
        assert_int_equal(f->submits[0].ino, a.ino);
        expect_submitted(f, 0, "hello, world");
        fs_wfile_close(f->fs, wf);

        /* renamed again while the upload runs: the commit follows the inode */
        assert_int_equal(index_rename(f->idx, INDEX_ROOT_INO, "b", INDEX_ROOT_INO, "c", 0, NULL),
                         0);
        c = fixture_upload(f, 0);
        assert_int_equal(fixture_lookup(f, "c").ino, a.ino);
        fixture_expect_committed(f, a.ino, &c, 12);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_rename__over_file_being_written__name_keeps_renamed_content(void **state)
{
        struct fixture *f = *state;
        struct index_attr src = fixture_mkfile(f, INDEX_ROOT_INO, "src");
        struct index_attr dst = fixture_mkfile(f, INDEX_ROOT_INO, "dst");
        struct index_attr replaced = { 0 }, now;
        struct wfile *ws = NULL, *wd = NULL, *wr = NULL;

        assert_int_equal(fs_wfile_open(f->fs, &src, false, &ws), 0);
        assert_int_equal(fs_wfile_open(f->fs, &dst, false, &wd), 0);
        fixture_write(f, ws, "from src", 0);
        fixture_write(f, wd, "the old dst", 0);
        assert_int_equal(
                index_rename(f->idx, INDEX_ROOT_INO, "src", INDEX_ROOT_INO, "dst", 0, &replaced),
                0);
        assert_int_equal(replaced.ino, dst.ino);
        /* the replaced file's writer flushes after the rename: into its own inode only */
        assert_int_equal(fs_wfile_flush(f->fs, wd), 0);
        assert_int_equal(fs_wfile_flush(f->fs, ws), 0);
        now = fixture_lookup(f, "dst");
        assert_int_equal(now.ino, src.ino);
        assert_int_equal(now.size, 8);
        assert_int_equal(now.staged, fs_wfile_gen(ws));
        now = fixture_attr(f, dst.ino);
        assert_int_equal(now.nlink, 0);
        assert_int_equal(now.size, 11);
        assert_int_equal(now.staged, fs_wfile_gen(wd));
        fs_wfile_close(f->fs, wd);
        fs_wfile_close(f->fs, ws);

        /* both uploads land; the name reads the renamed content back through the store */
        (void)fixture_upload(f, 1);
        (void)fixture_upload(f, 0);
        assert_int_equal(fixture_staging_files(f), 0);
        assert_int_equal(index_drop_orphans(f->idx, dst.ino), 0);
        assert_int_equal(index_getattr(f->idx, dst.ino, &now), -ENOENT);
        now = fixture_lookup(f, "dst");
        fixture_expect_committed(f, now.ino, NULL, 8);
        assert_int_equal(fs_wfile_open(f->fs, &now, false, &wr), 0);
        fixture_expect(f, wr, "from src");
        fs_wfile_close(f->fs, wr);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_append__staged_base__read_returns_base_and_appended(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "log");
        uint64_t gen1 = fixture_stage(f, a.ino, "base-content", 0, NULL);
        struct wfile *wf = NULL, *again = NULL;
        char buf[32];

        a = fixture_attr(f, a.ino);
        assert_int_equal(a.staged, gen1);
        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        assert_int_not_equal(fs_wfile_gen(wf), gen1);
        fixture_expect(f, wf, "base-content"); /* from the staged base, nothing written yet */
        fixture_write(f, wf, "+tail", 12);
        fixture_expect(f, wf, "base-content+tail");
        assert_int_equal(fs_wfile_read(f->fs, wf, buf, 4, 10), 4); /* across base and tail */
        assert_memory_equal(buf, "nt+t", 4);
        assert_int_equal(fs_wfile_read(f->fs, wf, buf, sizeof(buf), 17), 0);
        fs_wfile_attr(wf, &a);
        assert_int_equal(a.size, 17);
        assert_int_equal(a.state, INDEX_STATE_DIRTY);

        /* a second open shares the writer: its writes are the first one's */
        a = fixture_attr(f, a.ino);
        assert_int_equal(fs_wfile_open(f->fs, &a, false, &again), 0);
        assert_ptr_equal(again, wf);
        fixture_write(f, again, "!", 17);
        fs_wfile_close(f->fs, again);
        fixture_expect(f, wf, "base-content+tail!");
        assert_ptr_equal(fs_wfile_get(f->fs, a.ino), wf);
        fs_wfile_close(f->fs, wf); /* the reference fs_wfile_get took */

        /* the flush fills the unwritten range from the base: the upload takes all of it */
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        assert_int_equal(f->n_submits, 2);
        expect_submitted(f, 1, "base-content+tail!");
        fs_wfile_close(f->fs, wf);
        assert_null(fs_wfile_get(f->fs, a.ino));
        (void)fixture_upload(f, 1);
        assert_int_equal(fixture_attr(f, a.ino).size, 18);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_append__uploaded_base__read_through_store(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "log");
        struct wfile *wf = NULL;

        (void)fixture_stage(f, a.ino, "uploaded", 0, NULL);
        (void)fixture_upload(f, 0);
        a = fixture_attr(f, a.ino);
        assert_true(a.has_cid);
        assert_int_equal(a.staged, 0);
        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        fixture_write(f, wf, " then appended", 8);
        fixture_expect(f, wf, "uploaded then appended");
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        expect_submitted(f, 1, "uploaded then appended");
        fs_wfile_close(f->fs, wf);
        (void)fixture_upload(f, 1);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_open__trunc_over_staged_base__empty_then_new_content(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "t");
        uint64_t gen1 = fixture_stage(f, a.ino, "old old old", 0, NULL);
        struct wfile *wf = NULL;

        a = fixture_attr(f, a.ino);
        assert_int_equal(fs_wfile_open(f->fs, &a, true, &wf), 0);
        fixture_expect(f, wf, "");
        fixture_write(f, wf, "new", 0);
        fixture_expect(f, wf, "new");
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        expect_submitted(f, 1, "new");
        fs_wfile_close(f->fs, wf);
        a = fixture_attr(f, a.ino);
        assert_int_equal(a.size, 3);
        assert_int_not_equal(a.staged, gen1);
        /* gen1's upload is moot but still runs (test_trunc.c): when it lands, nothing
         * commits and its file goes */
        if (fixture_is_staged(f, a.ino, gen1))
                (void)fixture_upload(f, 0);
        (void)fixture_upload(f, 1);
        fixture_expect_committed(f, a.ino, NULL, 3);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_write__staging_disk_stops__short_write_of_what_it_took(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "big");
        struct rlimit old, lim;
        struct wfile *wf = NULL;
        char buf[100], back[128];
        ssize_t n, n2;

        memset(buf, 'x', sizeof(buf));
        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        /* a file size limit is a staging disk that fills at byte 60 (EFBIG for ENOSPC) */
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 60;
        assert_true(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        n = fs_wfile_write(f->fs, wf, buf, sizeof(buf), 0);
        n2 = fs_wfile_write(f->fs, wf, buf, 10, 60);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        assert_int_equal(n, 60);
        assert_int_equal(n2, -EFBIG);
        fs_wfile_attr(wf, &a);
        assert_int_equal(a.size, 60); /* no byte past what the disk took */
        assert_int_equal(fs_wfile_read(f->fs, wf, back, sizeof(back), 0), 60);
        assert_memory_equal(back, buf, 60);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        assert_int_equal(fixture_attr(f, a.ino).size, 60);
        fs_wfile_close(f->fs, wf);
        (void)fixture_upload(f, 0);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_staged_open_attr__generation_gone__follows_index(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "s"), old;
        uint64_t gen2;
        char buf[8];
        int fd;

        (void)fixture_stage(f, a.ino, "v1", 0, NULL);
        old = fixture_attr(f, a.ino);
        gen2 = fixture_stage(f, a.ino, "v2", 0, NULL);
        assert_false(fixture_is_staged(f, a.ino, old.staged)); /* replaced */
        /* a reader that read the attributes before the second flush gets the newer content */
        a = old;
        fd = fs_staged_open_attr(f->fs, &a);
        assert_true(fd >= 0);
        assert_int_equal(a.staged, gen2);
        assert_int_equal(io_pread_full(fd, buf, sizeof(buf), 0), 2);
        assert_memory_equal(buf, "v2", 2);
        close(fd);
        /* after the upload it is told to open the CID instead */
        (void)fixture_upload(f, 1);
        fd = fs_staged_open_attr(f->fs, &a);
        assert_int_equal(fd, -ESTALE);
        assert_true(a.has_cid);
        assert_int_equal(a.staged, 0);
        assert_int_equal(fixture_staging_files(f), 0);
}

/* An O_TRUNC open (cp overwriting a file) replaces a staged generation not uploaded yet:
 * the flush cancels its upload and removes its staging file, as for a replaced base. */
static void test_open_trunc__staged_generation__cancelled_and_removed_at_flush(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "t");
        uint64_t gen1 = fixture_stage(f, a.ino, "a large old content", 0, NULL);
        struct wfile *wf = NULL;
        bool cancelled, removed;

        a = fixture_attr(f, a.ino);
        assert_int_equal(fs_wfile_open(f->fs, &a, true, &wf), 0);
        fixture_write(f, wf, "new", 0);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        fs_wfile_close(f->fs, wf);
        cancelled = f->n_cancels == 1 && f->cancels[0] == gen1;
        removed = !fixture_is_staged(f, a.ino, gen1);
        if (!removed)
                (void)fixture_upload(f, 0);
        (void)fixture_upload(f, 1);
        assert_true(cancelled);
        assert_true(removed);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_open_trunc__staged_generation__cancelled_and_removed_at_flush,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_rename__writer_open__flush_lands_under_new_name, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_rename__over_file_being_written__name_keeps_renamed_content,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_append__staged_base__read_returns_base_and_appended, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_append__uploaded_base__read_through_store,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_open__trunc_over_staged_base__empty_then_new_content, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_write__staging_disk_stops__short_write_of_what_it_took, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_staged_open_attr__generation_gone__follows_index, fixture_setup,
                        fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
