/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Requests waiting for a commit (waiters.c: fsync) without FUSE: the few libfuse calls the
 * waiters make are wrapped (-Wl,--wrap, see meson.build) to record the answers, and the
 * index read of a wake is wrapped too, so that a test can hold one wake between its read
 * and its decision while a commit and its own wake run: the interleaving that once left an
 * fsync unanswered until fsync_timeout although its content was committed and pinned.
 */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* ---- wrapped: answers recorded, the index read of one thread gated -------------------- */

#define FAKE_REQ ((fuse_req_t)(uintptr_t)0x5eed)

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static int answers, last_error;

static bool reply_gate_armed;
static sem_t reply_reached, reply_open;

int __wrap_fuse_reply_err(fuse_req_t req, int err);
int __wrap_fuse_reply_err(fuse_req_t req, int err)
{
        if (req != FAKE_REQ)
                return 0;
        if (__atomic_exchange_n(&reply_gate_armed, false, __ATOMIC_ACQ_REL)) {
                sem_post(&reply_reached); /* an answer in progress */
                sem_wait(&reply_open);
        }
        pthread_mutex_lock(&rec_lock);
        answers++;
        last_error = err;
        pthread_mutex_unlock(&rec_lock);
        return 0;
}

void __wrap_fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data);
void __wrap_fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data)
{
        (void)req;
        (void)func;
        (void)data;
}

int __wrap_fuse_req_interrupted(fuse_req_t req);
int __wrap_fuse_req_interrupted(fuse_req_t req)
{
        (void)req;
        return 0;
}

static bool gate_armed;
static pthread_t gate_thread;
static sem_t gate_reached, gate_open;

int __real_index_getattr(struct index *idx, uint64_t ino, struct index_attr *ret);
int __wrap_index_getattr(struct index *idx, uint64_t ino, struct index_attr *ret);
int __wrap_index_getattr(struct index *idx, uint64_t ino, struct index_attr *ret)
{
        int r = __real_index_getattr(idx, ino, ret);

        if (__atomic_load_n(&gate_armed, __ATOMIC_ACQUIRE) &&
            pthread_equal(pthread_self(), gate_thread)) {
                __atomic_store_n(&gate_armed, false, __ATOMIC_RELEASE);
                sem_post(&gate_reached); /* read done, decision not taken yet */
                sem_wait(&gate_open);
        }
        return r;
}

/* ---- tests ---------------------------------------------------------------------------- */

struct filing {
        struct fs *fs;
        uint64_t ino, gen;
};

static void *file_fsync(void *arg)
{
        struct filing *w = arg;

        gate_thread = pthread_self();
        __atomic_store_n(&gate_armed, true, __ATOMIC_RELEASE);
        /* files the waiter, then wakes it once itself (a commit just before the filing) */
        fs_reply_when_committed(w->fs, FAKE_REQ, w->ino, w->gen);
        return NULL;
}

/* The fsync's own wake has read the index (still staged) when the upload commits and the
 * commit's wake runs: that wake must answer the fsync, whatever the first one decides
 * after its stale read. */
static void test_commit_wake_during_fsync_wake__fsync_answered_once_with_success(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "f");
        struct filing w = { .fs = f->fs, .ino = a.ino };
        int n, err;
        pthread_t t;

        w.gen = fixture_stage(f, a.ino, "fsynced", 0, NULL);
        assert_int_equal(fixture_attr(f, a.ino).staged, w.gen);
        answers = 0;
        assert_int_equal(sem_init(&gate_reached, 0, 0), 0);
        assert_int_equal(sem_init(&gate_open, 0, 0), 0);
        assert_int_equal(pthread_create(&t, NULL, file_fsync, &w), 0);
        sem_wait(&gate_reached);
        /* the fsync's wake saw it staged; now the upload lands, and the commit wakes */
        (void)fixture_upload(f, fixture_submit_of(f, w.gen));
        fixture_expect_committed(f, a.ino, NULL, strlen("fsynced"));
        sem_post(&gate_open);
        assert_int_equal(pthread_join(t, NULL), 0);
        pthread_mutex_lock(&rec_lock);
        n = answers;
        err = last_error;
        pthread_mutex_unlock(&rec_lock);
        assert_int_equal(n, 1);
        assert_int_equal(err, 0);
        sem_destroy(&gate_reached);
        sem_destroy(&gate_open);
}

/* A waiter filed after a wake read the index is not judged by that read: its content
 * (newer than what the read saw) is not committed, so it waits. */
static void test_wake_with_older_read__later_waiter_kept_until_its_commit(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "g");
        uint64_t gen1, gen2;

        gen1 = fixture_stage(f, a.ino, "one", 0, NULL);
        answers = 0;
        fs_reply_when_committed(f->fs, FAKE_REQ, a.ino, gen1);
        assert_int_equal(answers, 0);
        gen2 = fixture_stage(f, a.ino, "two", 0, NULL); /* replaces gen1: its fsync is done */
        assert_int_not_equal(gen1, gen2);
        assert_int_equal(answers, 1);
        fs_reply_when_committed(f->fs, FAKE_REQ, a.ino, gen2);
        fs_waiters_wake(f->fs, a.ino);
        assert_int_equal(answers, 1); /* gen2 still staged */
        (void)fixture_upload(f, fixture_submit_of(f, gen2));
        assert_int_equal(answers, 2);
        assert_int_equal(last_error, 0);
}

static bool stop_returned;

static void *stop_waits(void *arg)
{
        fs_stop_waits(arg);
        __atomic_store_n(&stop_returned, true, __ATOMIC_RELEASE);
        return NULL;
}

/* Review of the shutdown path: the deadline thread answered late fsyncs outside the lock
 * while the shutdown went on (joined only in fs_free, after the session was destroyed); now
 * fs_stop_waits returns only once such answers are given. */
static void test_stop_waits__deadline_thread_answering__returns_after_the_answer(void **state)
{
        struct fixture *f = *state;
        struct index_attr a = fixture_mkfile(f, INDEX_ROOT_INO, "late");
        uint64_t gen = fixture_stage(f, a.ino, "never uploaded", 0, NULL);
        bool early;
        pthread_t t;

        fs_set_store(f->fs, f->store); /* starts the deadline thread, as the daemon does */
        answers = 0;
        assert_int_equal(sem_init(&reply_reached, 0, 0), 0);
        assert_int_equal(sem_init(&reply_open, 0, 0), 0);
        __atomic_store_n(&f->cfg.fsync_timeout_ms, 50, __ATOMIC_RELAXED);
        __atomic_store_n(&reply_gate_armed, true, __ATOMIC_RELEASE);
        fs_reply_when_committed(f->fs, FAKE_REQ, a.ino, gen);
        sem_wait(&reply_reached); /* the deadline thread is answering it EIO */
        assert_int_equal(pthread_create(&t, NULL, stop_waits, f->fs), 0);
        usleep(300 * 1000);
        early = __atomic_load_n(&stop_returned, __ATOMIC_ACQUIRE);
        sem_post(&reply_open);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_false(early); /* before: it had returned with the answer still being given */
        assert_true(stop_returned);
        assert_int_equal(answers, 1);
        assert_int_equal(last_error, EIO);
        sem_destroy(&reply_reached);
        sem_destroy(&reply_open);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_commit_wake_during_fsync_wake__fsync_answered_once_with_success,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_wake_with_older_read__later_waiter_kept_until_its_commit,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_stop_waits__deadline_thread_answering__returns_after_the_answer,
                        fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
