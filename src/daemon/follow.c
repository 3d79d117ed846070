/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The follow thread (see follow.h). It is the only caller of fs_follow_switch, so switches
 * never overlap; it holds no lock across a resolve or a switch (the lock guards only what
 * status reads). A failure keeps the root shown and is logged once when it starts or its
 * reason changes, and once when resolving works again.
 */
#define LOG_MODULE "follow"
#include "follow.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "prsmfs/log.h"

#define NS 1000000000ull

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* Waits until deadline (monotonic ns); false when stopping. */
static bool wait_until(struct daemon_follow *f, uint64_t deadline_ns)
{
        struct timespec ts = { .tv_sec = (time_t)(deadline_ns / NS),
                               .tv_nsec = (long)(deadline_ns % NS) };
        bool go;

        pthread_mutex_lock(&f->lock);
        while (!f->stop && mono_ns() < deadline_ns)
                (void)pthread_cond_timedwait(&f->cond, &f->lock, &ts);
        go = !f->stop;
        pthread_mutex_unlock(&f->lock);
        return go;
}

/* Records one round's outcome for status, and logs a change of state. */
static void note(struct daemon_follow *f, int r, const char *err)
{
        bool was, changed;

        pthread_mutex_lock(&f->lock);
        was = f->has_error;
        changed = r < 0 && strcmp(f->error, err) != 0;
        f->last_resolve_sec = (uint64_t)time(NULL);
        f->resolves++;
        f->has_error = r < 0;
        if (r < 0) {
                f->failures++;
                (void)snprintf(f->error, sizeof(f->error), "%s", err);
        } else
                f->error[0] = '\0';
        pthread_mutex_unlock(&f->lock);
        if (r < 0 && (!was || changed))
                log_warning("following %s%s: %s; keeping the root shown",
                            f->name[0] ? "/ipns/" : "", f->name[0] ? f->name : "the CID", err);
        else if (r >= 0 && was)
                log_notice("following /ipns/%s works again", f->name);
}

static void *follow_thread(void *arg)
{
        struct daemon_follow *f = arg;
        char err[512];

        for (;;) {
                uint64_t next = mono_ns() + f->interval_ns;
                struct cid root = f->fixed;
                int r = 0;

                err[0] = '\0';
                if (f->name[0])
                        r = net_ipns_resolve(f->net, f->name, mono_ns() + f->timeout_ns, &root, err,
                                             sizeof(err));
                if (r == -ECANCELED)
                        break;
                if (r < 0 && !err[0])
                        (void)snprintf(err, sizeof(err), "%s", strerror(-r));
                if (r < 0 && strncmp(err, "resolving", 9) != 0) {
                        char tmp[sizeof(err)];

                        (void)snprintf(tmp, sizeof(tmp), "resolving failed: %s", err);
                        memcpy(err, tmp, sizeof(err));
                }
                if (r >= 0)
                        r = fs_follow_switch(f->fs, &root, err, sizeof(err));
                if (r == -ECANCELED) /* shutdown: the network stopped under the switch */
                        break;
                note(f, r, err);
                /* a CID never changes: done once it is shown */
                if (!f->name[0] && r >= 0)
                        break;
                if (!wait_until(f, next))
                        break;
        }
        return NULL;
}

int daemon_follow_start(struct daemon_follow *f, const struct config *cfg, struct fs *fs,
                        struct net_pool *net)
{
        const char *s = cfg->follow;
        pthread_condattr_t ca;
        int r;

        *f = (struct daemon_follow){ .fs = fs,
                                     .net = net,
                                     .interval_ns = cfg->follow_interval_ms * 1000000ull,
                                     .timeout_ns = cfg->timeout_ms * 1000000ull };
        if (strncmp(s, "/ipns/", 6) == 0)
                (void)snprintf(f->name, sizeof(f->name), "%s", s + 6);
        else {
                s += strncmp(s, "/ipfs/", 6) == 0 ? 6 : 0;
                if (cid_parse(s, strlen(s), &f->fixed) < 0)
                        return -EINVAL; /* config_validate said so already */
        }
        pthread_mutex_init(&f->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&f->cond, &ca);
        pthread_condattr_destroy(&ca);
        r = -pthread_create(&f->thread, NULL, follow_thread, f);
        if (r < 0) {
                pthread_cond_destroy(&f->cond);
                pthread_mutex_destroy(&f->lock);
                return r;
        }
        f->is_started = true;
        return 0;
}

void daemon_follow_stop(struct daemon_follow *f)
{
        if (!f || !f->is_started)
                return;
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->thread, NULL);
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->lock);
        f->is_started = false;
}

json_t *daemon_follow_json(struct daemon_follow *f, const struct config *cfg)
{
        uint64_t switched = 0, last = 0, resolves = 0, failures = 0;
        struct fs_stats st = { 0 };
        char root[CID_MAX_STR], error[sizeof(f->error)] = "";
        bool has_root = false;
        struct cid cid;

        if (f->fs && fs_is_following(f->fs)) {
                has_root = fs_follow_root(f->fs, &cid, &switched);
                fs_get_stats(f->fs, &st);
                if (has_root)
                        (void)cid_to_string(&cid, root);
        }
        if (f->is_started) {
                pthread_mutex_lock(&f->lock);
                last = f->last_resolve_sec;
                resolves = f->resolves;
                failures = f->failures;
                memcpy(error, f->error, sizeof(error));
                pthread_mutex_unlock(&f->lock);
        }
        return json_pack("{s:s, s:f, s:s?, s:I, s:I, s:s?, s:I, s:I, s:I, s:I}", "name",
                         cfg->follow, "interval", (double)cfg->follow_interval_ms / 1000.0, "root",
                         has_root ? root : NULL, "switched", (json_int_t)switched, "last_resolve",
                         (json_int_t)last, "last_error", error[0] ? error : NULL, "resolves",
                         (json_int_t)resolves, "failures", (json_int_t)failures, "switches",
                         (json_int_t)st.follow_switches, "rejected",
                         (json_int_t)st.follow_rejected);
}
