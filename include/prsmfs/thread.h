/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Threads: a name that top -H, ps -L and perf show, and a lower CPU priority for speculative
 * work (warm-up fetches made ahead of any reader), so that it runs on the cores the reading
 * process leaves free instead of taking turns with it.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* How much nicer than the process a background thread runs (capped at 19). */
#define THREAD_BACKGROUND_NICE 10

/* Names the calling thread (at most 15 bytes are kept). */
void thread_name(const char *name);

/* The calling thread's kernel id. */
pid_t thread_id(void);

/* The calling thread runs at the process's nice + THREAD_BACKGROUND_NICE from now on (again
 * after a thread_foreground). Raising one's own nice needs no privilege; failures are ignored
 * (the thread then just runs at the process's priority). */
void thread_background(void);

/* The nice value background threads run at. */
int thread_background_nice(void);

/* Whether the calling thread made itself background. */
bool thread_is_background(void);

/* Back to the process's priority for thread tid, a background thread of this process that
 * somebody in the foreground now waits for. Lowering a nice value needs CAP_SYS_NICE (or
 * RLIMIT_NICE); returns 0 or -errno, and the caller goes on waiting either way. */
int thread_foreground(pid_t tid);
