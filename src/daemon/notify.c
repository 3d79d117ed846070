/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watchdog thread pings at half the interval systemd asked for. It proves that the
 * process runs and is not deadlocked on the daemon's startup or shutdown paths; a stuck FUSE
 * worker is the kernel's and the node pool's business (deadlines), not the watchdog's.
 */
#define LOG_MODULE "daemon"
#include "notify.h"

#include <pthread.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "prsmfs/log.h"

struct notify {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t interval_us;
        bool stop; /* lock */
};

static void *watchdog_thread(void *arg)
{
        struct notify *n = arg;
        struct timespec ts;

        pthread_mutex_lock(&n->lock);
        while (!n->stop) {
                (void)sd_notify(0, "WATCHDOG=1");
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += (time_t)(n->interval_us / 2 / 1000000);
                ts.tv_nsec += (long)(n->interval_us / 2 % 1000000 * 1000);
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                while (!n->stop && pthread_cond_timedwait(&n->cond, &n->lock, &ts) == 0)
                        ;
        }
        pthread_mutex_unlock(&n->lock);
        return NULL;
}

struct notify *notify_ready(const char *mountpoint)
{
        struct notify *n;
        pthread_condattr_t ca;
        uint64_t usec = 0;
        int r;

        r = sd_notifyf(0, "READY=1\nSTATUS=serving %s", mountpoint);
        if (r < 0)
                log_warning_errno(r, "cannot tell systemd the mount is ready, ignoring");
        if (r <= 0 || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
                return NULL;
        n = calloc(1, sizeof(*n));
        if (!n) {
                log_warning("out of memory: no watchdog pings, ignoring");
                return NULL;
        }
        n->interval_us = usec;
        pthread_mutex_init(&n->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&n->cond, &ca);
        pthread_condattr_destroy(&ca);
        r = -pthread_create(&n->thread, NULL, watchdog_thread, n);
        if (r < 0) {
                log_warning_errno(r, "cannot start the watchdog thread, ignoring");
                pthread_cond_destroy(&n->cond);
                pthread_mutex_destroy(&n->lock);
                free(n);
                return NULL;
        }
        log_info("systemd watchdog: pinging every %llu ms", (unsigned long long)(usec / 2000));
        return n;
}

void notify_stopping(struct notify *n)
{
        if (n) { /* no ping after STOPPING=1 */
                pthread_mutex_lock(&n->lock);
                n->stop = true;
                pthread_cond_signal(&n->cond);
                pthread_mutex_unlock(&n->lock);
                pthread_join(n->thread, NULL);
                pthread_cond_destroy(&n->cond);
                pthread_mutex_destroy(&n->lock);
                free(n);
        }
        (void)sd_notify(0, "STOPPING=1"); /* nothing to do when it fails */
}
