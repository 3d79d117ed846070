/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Requests that wait for an upload (fsync, and flush with sync_upload) keep their fuse_req_t
 * here instead of blocking a FUSE worker: the handler files the request and returns; the
 * completion path (a commit or a newer flush of the inode, fs_waiters_wake) answers it, or
 * the deadline thread does when fsync_timeout passes (EIO: the data is durable on local disk
 * and its upload stays queued), or a FUSE INTERRUPT does (EINTR: the caller was killed or
 * got a signal), or the end of the session does. Whoever takes a waiter off the list answers
 * it, exactly once; the interrupt callback finds its waiter by request, never through a
 * pointer that may be gone.
 *
 * The index is read outside files_lock, and the waiters stay on the list meanwhile: a wake
 * notes the filing sequence, reads the index once, then answers the inode's waiters filed
 * before its read whose generation is no longer staged. Waiters filed after the read are
 * not judged by it (their flush may be newer than what it saw), and a wake that runs
 * while another reads still finds every waiter on the list (once, a wake took them off to
 * read and put them back after, and a commit's wake in between found none: that fsync
 * waited out fsync_timeout and failed although its content was pinned).
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

struct fs_waiter {
        struct fs_waiter *prev, *next; /* fs->waiters, under files_lock */
        fuse_req_t req;
        uint64_t ino, gen, deadline_ns;
        uint64_t seq; /* fs->waiters_seq when filed */
};

static void waiter_answer(struct fs_waiter *w, int error)
{
        (void)fuse_reply_err(w->req, error);
        free(w);
}

void fs_waiters_wake(struct fs *fs, uint64_t ino)
{
        struct fs_waiter *done = NULL, *w, *next;
        struct index_attr a;
        uint64_t before;
        bool any = false;
        int r;

        pthread_mutex_lock(&fs->files_lock);
        before = fs->waiters_seq;
        for (w = fs->waiters; w && !any; w = w->next)
                any = w->ino == ino;
        pthread_mutex_unlock(&fs->files_lock);
        if (!any)
                return;
        r = index_getattr(fs->idx, ino, &a);
        pthread_mutex_lock(&fs->files_lock);
        /* a commit whose staging file is not removed yet wakes them itself when it is */
        if (!fs_is_committing(fs, ino) && (r == -ENOENT || r >= 0))
                for (w = fs->waiters; w; w = next) {
                        next = w->next;
                        /* committed, or replaced by newer content */
                        if (w->ino == ino && w->seq < before &&
                            (r == -ENOENT || a.staged != w->gen)) {
                                LIST_REMOVE(fs->waiters, w);
                                LIST_PREPEND(done, w);
                        }
                }
        pthread_mutex_unlock(&fs->files_lock);
        for (w = done; w; w = next) {
                next = w->next;
                waiter_answer(w, 0);
        }
}

/* Set while this thread registers the callback: libfuse calls it from within the
 * registration when the INTERRUPT came first, holding the request's lock (no reply there). */
static _Thread_local bool registering;
static _Thread_local bool register_interrupted;

static void interrupted(fuse_req_t req, void *data)
{
        struct fs *fs = data;
        struct fs_waiter *w;

        if (registering) {
                register_interrupted = true;
                return;
        }
        pthread_mutex_lock(&fs->files_lock);
        for (w = fs->waiters; w && w->req != req; w = w->next)
                ;
        if (w)
                LIST_REMOVE(fs->waiters, w);
        pthread_mutex_unlock(&fs->files_lock);
        if (w) {
                log_info("inode %" PRIu64 ": wait for its upload interrupted; it stays queued",
                         w->ino);
                waiter_answer(w, EINTR);
        }
}

void fs_reply_when_committed(struct fs *fs, fuse_req_t req, uint64_t ino, uint64_t gen)
{
        struct fs_waiter *w = calloc(1, sizeof(*w));

        if (!w) {
                (void)fuse_reply_err(req, ENOMEM);
                return;
        }
        *w = (struct fs_waiter){ .req = req,
                                 .ino = ino,
                                 .gen = gen,
                                 .deadline_ns =
                                         net_now_ns() + __atomic_load_n(&fs->cfg->fsync_timeout_ms,
                                                                        __ATOMIC_RELAXED) *
                                                                1000000ull };
        /* The callback first: once the waiter is on the list, another thread may answer it
         * and the request is gone. An INTERRUPT before the filing is seen under files_lock
         * (a callback that found no waiter then is left with nothing to do). */
        registering = true;
        register_interrupted = false;
        fuse_req_interrupt_func(req, interrupted, fs);
        registering = false;
        pthread_mutex_lock(&fs->files_lock);
        if (fs->waiters_stopped || register_interrupted || fuse_req_interrupted(req)) {
                bool stopped = fs->waiters_stopped;

                pthread_mutex_unlock(&fs->files_lock);
                fuse_req_interrupt_func(req, NULL, NULL); /* waits for a running callback */
                waiter_answer(w, stopped ? EIO : EINTR);
                return;
        }
        w->seq = fs->waiters_seq++;
        LIST_PREPEND(fs->waiters, w);
        pthread_cond_signal(&fs->waiters_cond); /* perhaps the earliest deadline now */
        pthread_mutex_unlock(&fs->files_lock);
        /* a commit between the caller's look at the index and the filing is not missed */
        fs_waiters_wake(fs, ino);
}

static void *deadline_thread(void *arg)
{
        struct fs *fs = arg;

        pthread_mutex_lock(&fs->files_lock);
        while (!fs->waiters_stopped) {
                uint64_t now = net_now_ns(), next = now + 1000000000ull;
                struct fs_waiter *w, *after, *late = NULL;
                struct timespec ts;

                for (w = fs->waiters; w; w = after) {
                        after = w->next;
                        if (w->deadline_ns <= now) {
                                LIST_REMOVE(fs->waiters, w);
                                LIST_PREPEND(late, w);
                        } else
                                next = MIN(next, w->deadline_ns);
                }
                if (late) {
                        pthread_mutex_unlock(&fs->files_lock);
                        for (w = late; w; w = after) {
                                after = w->next;
                                log_warning("inode %" PRIu64 ": not pinned within fsync_timeout "
                                            "(%" PRIu64 " s): EIO; the data is on local disk "
                                            "and its upload stays queued",
                                            w->ino,
                                            __atomic_load_n(&fs->cfg->fsync_timeout_ms,
                                                            __ATOMIC_RELAXED) /
                                                    1000);
                                waiter_answer(w, EIO);
                        }
                        pthread_mutex_lock(&fs->files_lock);
                        continue;
                }
                ts = (struct timespec){ .tv_sec = (time_t)(next / 1000000000ull),
                                        .tv_nsec = (long)(next % 1000000000ull) };
                (void)pthread_cond_timedwait(&fs->waiters_cond, &fs->files_lock, &ts);
        }
        pthread_mutex_unlock(&fs->files_lock);
        return NULL;
}

void fs_waiters_init(struct fs *fs)
{
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* net_now_ns's clock */
        pthread_cond_init(&fs->waiters_cond, &ca);
        pthread_condattr_destroy(&ca);
}

int fs_waiters_start(struct fs *fs)
{
        int r;

        if (fs->waiters_started)
                return 0;
        r = -pthread_create(&fs->waiters_thread, NULL, deadline_thread, fs);
        if (r < 0)
                return r;
        fs->waiters_started = true;
        return 0;
}

void fs_waiters_stop(struct fs *fs)
{
        struct fs_waiter *taken, *w, *next;
        bool join;
        unsigned n = 0;

        pthread_mutex_lock(&fs->files_lock);
        fs->waiters_stopped = true;
        taken = fs->waiters; /* all of them: only their next links are followed below */
        fs->waiters = NULL;
        pthread_cond_signal(&fs->waiters_cond);
        join = fs->waiters_started;
        fs->waiters_started = false;
        pthread_mutex_unlock(&fs->files_lock);
        /* the deadline thread may be answering late ones: done before the session can go */
        if (join)
                pthread_join(fs->waiters_thread, NULL);
        for (w = taken; w; w = next) {
                next = w->next;
                waiter_answer(w, EIO);
                n++;
        }
        if (n)
                log_notice("%u fsync(s) answered EIO at shutdown: their uploads resume at the "
                           "next start",
                           n);
}

void fs_stop_waits(struct fs *fs)
{
        fs_waiters_stop(fs);
}

void fs_waiters_done(struct fs *fs)
{
        fs_waiters_stop(fs);
        pthread_cond_destroy(&fs->waiters_cond);
}
