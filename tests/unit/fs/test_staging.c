/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who owns a staging file (writer.c): a newer generation cancels and removes the one it
 * replaces, an old generation's upload never commits over a newer one, a generation whose
 * upload lands while a writer holds it goes at that writer's close, a generation never
 * flushed goes at close, jobs are re-submitted when an uploader is set, a restart sweeps
 * what the index does not name, and nothing is left once every upload is done.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void test_flush__newer_generation__older_cancelled_and_removed(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        struct wfile *wf = NULL;
        uint64_t gen1, gen2;

        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        fixture_write(f, wf, "first", 0);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        gen1 = fs_wfile_gen(wf);
        assert_true(fixture_is_staged(f, a.ino, gen1));
        assert_int_equal(f->n_submits, 1);
        assert_int_equal(f->submits[0].id, gen1);
        /* a write after the flush starts a new generation over the flushed one */
        fixture_write(f, wf, "FIRST", 0);
        gen2 = fs_wfile_gen(wf);
        assert_true(gen2 > gen1);
        assert_true(fixture_is_staged(f, a.ino, gen1));
        assert_int_equal(f->n_cancels, 0);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        assert_int_equal(f->n_cancels, 1);
        assert_int_equal(f->cancels[0], gen1);
        assert_false(fixture_is_staged(f, a.ino, gen1));
        assert_true(fixture_is_staged(f, a.ino, gen2));
        assert_int_equal(f->n_submits, 2);
        assert_int_equal(f->submits[1].id, gen2);
        assert_int_equal(fixture_attr(f, a.ino).staged, gen2);
        fs_wfile_close(f->fs, wf);
        assert_int_equal(fixture_staging_files(f), 1);
        (void)fixture_upload(f, 1);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_upload_done__old_generation__no_commit_over_newer(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f"), now;
        uint64_t gen1 = fixture_stage(f, a.ino, "one", 0, NULL);
        uint64_t gen2 = fixture_stage(f, a.ino, "two and more", 0, NULL);
        struct cid stale, c;

        assert_int_equal(f->n_cancels, 1);
        /* the cancel lost the race: the old generation's upload finishes anyway */
        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "one", 3, &stale), 0);
        fs_upload_done(f->fs, gen1, a.ino, 0, &stale, 3, true);
        now = fixture_attr(f, a.ino);
        assert_int_equal(now.staged, gen2);
        assert_int_equal(now.state, INDEX_STATE_DIRTY);
        assert_int_equal(now.size, 12);
        assert_false(now.has_cid);
        assert_true(fixture_is_staged(f, a.ino, gen2));
        /* a cancelled upload changes nothing either */
        fs_upload_done(f->fs, gen2, a.ino, -ECANCELED, NULL, 0, false);
        assert_int_equal(fixture_attr(f, a.ino).staged, gen2);
        assert_true(fixture_is_staged(f, a.ino, gen2));
        c = fixture_upload(f, fixture_submit_of(f, gen2));
        fixture_expect_committed(f, a.ino, &c, 12);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_upload_done__while_writer_holds_gen__removed_at_close(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        struct wfile *wf = NULL;
        uint64_t gen;

        gen = fixture_stage(f, a.ino, "held", 0, &wf);
        (void)fixture_upload(f, 0);
        fixture_expect_committed(f, a.ino, NULL, 4);
        /* committed, but the writer's next write takes it as its base: kept until close */
        assert_true(fixture_is_staged(f, a.ino, gen));
        fixture_expect(f, wf, "held");
        fs_wfile_close(f->fs, wf);
        assert_false(fixture_is_staged(f, a.ino, gen));
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_upload_done__gen_is_writers_base__read_then_removed_at_close(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        struct wfile *wf = NULL;
        uint64_t gen1, gen2;
        struct cid c;

        gen1 = fixture_stage(f, a.ino, "base", 0, &wf);
        fixture_write(f, wf, "+more", 4); /* gen2 over gen1 */
        gen2 = fs_wfile_gen(wf);
        c = fixture_upload(f, 0);
        fixture_expect_committed(f, a.ino, &c, 4);
        assert_true(fixture_is_staged(f, a.ino, gen1)); /* the writer reads its base there */
        fixture_expect(f, wf, "base+more");
        /* closed without a flush: gen2 is nobody's, and gen1's upload has landed */
        fs_wfile_close(f->fs, wf);
        assert_false(fixture_is_staged(f, a.ino, gen2));
        assert_false(fixture_is_staged(f, a.ino, gen1));
        assert_int_equal(fixture_attr(f, a.ino).size, 4);
        assert_int_equal(f->n_submits, 1);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_close__never_flushed__staging_removed_index_untouched(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f"), now;
        struct wfile *wf = NULL;
        uint64_t gen;

        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        gen = fs_wfile_gen(wf);
        fixture_write(f, wf, "never flushed", 0);
        assert_true(fixture_is_staged(f, a.ino, gen));
        fs_wfile_close(f->fs, wf);
        assert_false(fixture_is_staged(f, a.ino, gen));
        now = fixture_attr(f, a.ino);
        assert_int_equal(now.size, 0);
        assert_int_equal(now.staged, 0);
        assert_int_equal(f->n_submits, 0);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_set_uploader__jobs_in_index__resubmitted(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        uint64_t gen;

        fixture_set_uploader(f, false);
        gen = fixture_stage(f, a.ino, "waits for an uploader", 0, NULL);
        assert_int_equal(f->n_submits, 0);
        assert_true(fixture_is_staged(f, a.ino, gen)); /* closed: durable, readable */
        fixture_set_uploader(f, true);
        assert_int_equal(f->n_submits, 1);
        assert_int_equal(f->submits[0].id, gen);
        assert_int_equal(f->submits[0].ino, a.ino);
        (void)fixture_upload(f, 0);
        fixture_expect_committed(f, a.ino, NULL, 21);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_restart__unnamed_staging_files__swept_named_kept(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        uint64_t gen = fixture_stage(f, a.ino, "pending", 0, NULL);
        struct fs *other = NULL;
        char name[64];
        int fd;

        /* a writer that never closed before a crash left this one */
        (void)snprintf(name, sizeof(name), "%" PRIu64 ".%" PRIu64, a.ino, gen + 1000);
        fd = openat(f->fs->staging_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(fixture_staging_files(f), 2);
        /* the staging directory is locked while this fs has it */
        assert_int_equal(fs_new(f->idx, &f->cfg, f->store, &other), -EBUSY);
        assert_null(other);
        f->n_submits = 0;
        fixture_restart(f);
        assert_int_equal(fixture_staging_files(f), 1);
        assert_true(fixture_is_staged(f, a.ino, gen));
        assert_int_equal(f->n_submits, 1); /* the job is resumed */
        assert_int_equal(f->submits[0].id, gen);
        (void)fixture_upload(f, 0);
        assert_int_equal(fixture_staging_files(f), 0);
}

static void test_uploads__all_done_in_any_order__staging_empty(void **state)
{
        struct fixture *f = *state;
        struct wfile *open_wf[3] = { NULL };
        struct index_attr a[3];
        char name[8];

        for (int i = 0; i < 3; i++) {
                (void)snprintf(name, sizeof(name), "f%d", i);
                a[i] = fixture_mkfile(f, INDEX_ROOT_INO, name);
                (void)fixture_stage(f, a[i].ino, "generation one", 0, NULL);
                (void)fixture_stage(f, a[i].ino, "generation two", 0, &open_wf[i]);
        }
        /* f0's writer goes on writing; f1's closes; f2's stays open over its upload */
        fixture_write(f, open_wf[0], "three", 0);
        assert_int_equal(fs_wfile_flush(f->fs, open_wf[0]), 0);
        fs_wfile_close(f->fs, open_wf[1]);
        for (size_t i = f->n_submits; i-- > 0;)
                if (fixture_is_staged(f, f->submits[i].ino, f->submits[i].id))
                        (void)fixture_upload(f, i);    /* newest first: the old ones are moot */
        assert_int_equal(fixture_staging_files(f), 2); /* f0's and f2's: their writers hold them */
        fs_wfile_close(f->fs, open_wf[2]);
        fs_wfile_close(f->fs, open_wf[0]);
        assert_int_equal(fixture_staging_files(f), 0);
        for (int i = 0; i < 3; i++)
                fixture_expect_committed(f, a[i].ino, NULL, 14);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_flush__newer_generation__older_cancelled_and_removed, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_done__old_generation__no_commit_over_newer, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_done__while_writer_holds_gen__removed_at_close, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_upload_done__gen_is_writers_base__read_then_removed_at_close,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_close__never_flushed__staging_removed_index_untouched, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_set_uploader__jobs_in_index__resubmitted,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_restart__unnamed_staging_files__swept_named_kept, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_uploads__all_done_in_any_order__staging_empty,
                                                fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
