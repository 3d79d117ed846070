/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pins follow the namespace: the pin worker, one background thread that sends the unpins the
 * index owes (and the re-pins of roots an unpin raced with), never on a FUSE thread and never
 * holding a lock across the network.
 *
 * Order, so that a crash leaves an extra pin and never a missing one: the upload pins the new
 * root before its commit; the commit switches the inode to it and, in the same transaction,
 * owes the old root's unpin if that was its last reference (index.h, "pins"); only then does
 * this worker unpin it. A root that is owed is marked SENT in the index before its unpin goes
 * out, so an unpin cut short by a crash or a failure is sent again (at the next start, or
 * after a backoff that doubles from retry_base_delay to retry_max_delay), and an upload of
 * the same bytes that pinned the root while its unpin was out makes the worker pin it again.
 *
 * The worker runs when kicked (a commit, an inode dropped, prsmctl unpin or publish, the
 * start) and, after a failure, when its backoff is over (kicks do not cut that short: a node
 * that is down is not asked once per unlink). A pass stops at its first failure: the next
 * owed root would most likely fail the same way.
 *
 * Lock: pins.lock guards is_kicked and stop only; the index and the uploader's pin and unpin
 * are called without it.
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

#define PINS_BATCH    64 /* owed roots read from the index at once */
#define PINS_PRUNE_NS (3600ull * 1000000000ull)

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool is_stopping(struct fs *fs)
{
        bool stop;

        pthread_mutex_lock(&fs->pins.lock);
        stop = fs->pins.stop;
        pthread_mutex_unlock(&fs->pins.lock);
        return stop;
}

/* Claims one owed root, unpins or re-pins it, and records that: 0, or the failure. */
static int settle(struct fs *fs, const struct cid *cid)
{
        char s[CID_MAX_STR];
        int action, r;

        action = index_pin_claim(fs->idx, cid);
        if (action <= 0)
                return action;
        (void)cid_to_string(cid, s);
        r = action == INDEX_PIN_UNPIN ? fs->up.unpin(fs->up.ud, cid) : fs->up.pin(fs->up.ud, cid);
        if (r == -ECANCELED)
                return r; /* shutdown: sent again at the next start */
        if (r < 0) {
                __atomic_add_fetch(&fs->st.pin_failures, 1, __ATOMIC_RELAXED);
                log_warning("cannot %s %s: %s; retrying later",
                            action == INDEX_PIN_UNPIN ? "unpin" : "pin again", s, strerror(-r));
                return r;
        }
        if (action == INDEX_PIN_UNPIN)
                __atomic_add_fetch(&fs->st.unpins, 1, __ATOMIC_RELAXED);
        else
                __atomic_add_fetch(&fs->st.repins, 1, __ATOMIC_RELAXED);
        log_debug("%s %s", action == INDEX_PIN_UNPIN ? "unpinned" : "pinned again", s);
        r = index_pin_done(fs->idx, cid, action);
        return r < 0 ? r : 0; /* not settled (references changed): the next batch has it */
}

/* Settles owed roots until none is left (0) or one fails. */
static int pass(struct fs *fs)
{
        struct cid batch[PINS_BATCH];
        int n, r;

        for (;;) {
                n = index_pins_owed(fs->idx, batch, PINS_BATCH);
                if (n <= 0)
                        return n;
                for (int i = 0; i < n; i++) {
                        if (is_stopping(fs))
                                return -ECANCELED;
                        r = settle(fs, &batch[i]);
                        if (r < 0)
                                return r;
                }
        }
}

/* Waits for a kick, or for retry_ns (monotonic, 0: none) to pass; false when stopping. */
static bool wait_for_work(struct fs *fs, uint64_t retry_ns)
{
        struct fs_pins *pp = &fs->pins;
        bool go;

        pthread_mutex_lock(&pp->lock);
        for (;;) {
                uint64_t now = mono_ns();

                if (pp->stop || (retry_ns && now >= retry_ns) || (!retry_ns && pp->is_kicked))
                        break;
                if (retry_ns) {
                        struct timespec ts = { .tv_sec = (time_t)(retry_ns / 1000000000ull),
                                               .tv_nsec = (long)(retry_ns % 1000000000ull) };

                        (void)pthread_cond_timedwait(&pp->cond, &pp->lock, &ts);
                } else
                        pthread_cond_wait(&pp->cond, &pp->lock);
        }
        go = !pp->stop;
        pp->is_kicked = false;
        pthread_mutex_unlock(&pp->lock);
        return go;
}

static void *pins_thread(void *arg)
{
        struct fs *fs = arg;
        uint64_t delay_ms = 0, retry_ns = 0, prune_ns = mono_ns() + PINS_PRUNE_NS;
        int r;

        while (wait_for_work(fs, retry_ns)) {
                r = pass(fs);
                if (r < 0 && r != -ECANCELED) {
                        delay_ms = delay_ms ? MIN(delay_ms * 2, fs->cfg->retry_max_delay_ms)
                                            : MAX(fs->cfg->retry_base_delay_ms, (uint64_t)1);
                        retry_ns = mono_ns() + delay_ms * 1000000ull;
                } else
                        delay_ms = retry_ns = 0;
                if (mono_ns() >= prune_ns) {
                        r = index_pins_prune(fs->idx);
                        if (r < 0)
                                log_debug("cannot prune unpinned roots: %s", strerror(-r));
                        prune_ns = mono_ns() + PINS_PRUNE_NS;
                }
        }
        return NULL;
}

void fs_pins_init(struct fs *fs)
{
        pthread_condattr_t ca;

        pthread_mutex_init(&fs->pins.lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&fs->pins.cond, &ca);
        pthread_condattr_destroy(&ca);
}

int fs_pins_start(struct fs *fs)
{
        int e;

        if (!fs->up.pin || !fs->up.unpin || fs->pins.has_thread)
                return 0;
        fs->pins.is_kicked = true; /* what the last run left owed */
        e = pthread_create(&fs->pins.thread, NULL, pins_thread, fs);
        if (e != 0)
                return -e;
        fs->pins.has_thread = true;
        return 0;
}

void fs_pins_kick(struct fs *fs)
{
        pthread_mutex_lock(&fs->pins.lock);
        fs->pins.is_kicked = true;
        pthread_cond_signal(&fs->pins.cond);
        pthread_mutex_unlock(&fs->pins.lock);
}

void fs_pins_stop(struct fs *fs)
{
        if (!fs || !fs->pins.has_thread)
                return;
        pthread_mutex_lock(&fs->pins.lock);
        fs->pins.stop = true;
        pthread_cond_signal(&fs->pins.cond);
        pthread_mutex_unlock(&fs->pins.lock);
        pthread_join(fs->pins.thread, NULL);
        fs->pins.has_thread = false;
}

void fs_pins_done(struct fs *fs)
{
        fs_pins_stop(fs);
        pthread_cond_destroy(&fs->pins.cond);
        pthread_mutex_destroy(&fs->pins.lock);
}

int fs_unpin(struct fs *fs, const char *cidstr)
{
        struct cid cid;
        int r;

        r = cid_parse(cidstr, strlen(cidstr), &cid);
        if (r < 0)
                return -EINVAL;
        r = index_pin_unpublish(fs->idx, &cid);
        if (r >= 0)
                fs_pins_kick(fs);
        return r;
}
