/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prsmfs/thread.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

static __thread bool is_background;

void thread_name(const char *name)
{
        char n[16];
        size_t i;

        for (i = 0; i + 1 < sizeof(n) && name[i]; i++)
                n[i] = name[i];
        n[i] = '\0';
        (void)pthread_setname_np(pthread_self(), n);
}

pid_t thread_id(void)
{
        return gettid();
}

/* The process's nice value: the main thread's, which never goes to the background. */
static int process_nice(void)
{
        int v;

        errno = 0;
        v = getpriority(PRIO_PROCESS, (id_t)getpid());
        return errno ? 0 : v;
}

int thread_background_nice(void)
{
        int v = process_nice() + THREAD_BACKGROUND_NICE;

        return v > 19 ? 19 : v;
}

void thread_background(void)
{
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), thread_background_nice());
        is_background = true;
}

bool thread_is_background(void)
{
        return is_background;
}

int thread_foreground(pid_t tid)
{
        return setpriority(PRIO_PROCESS, (id_t)tid, process_nice()) < 0 ? -errno : 0;
}
