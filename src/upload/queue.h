/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to upload: the bounded block queue between the builder (one producer) and the put
 * threads (consumers). It holds at most cap block copies; a consumer keeps the block it
 * popped until it releases it, and the queue counts those bytes too, so that "held" is every
 * block copy of one attempt. The first error (abort) sticks: every waiter wakes and every
 * later call returns it, so one failed put stops the producer and the other consumers.
 */
#pragma once

#include <pthread.h>

#include "prsmfs/base.h"
#include "prsmfs/cid.h"

struct net_run;

struct upload_block {
        struct cid cid;
        struct net_run *run; /* owned, or NULL: a run of leaves (cid and data unused, len = the
                                leaves' bytes) instead of one block */
        size_t len;
        uint8_t data[]; /* len bytes (none for a run) */
};

struct upload_queue {
        pthread_mutex_t lock;
        pthread_cond_t not_full, not_empty;
        struct upload_block **ring;           /* cap slots */
        size_t cap, head, n;                  /* lock */
        size_t n_waiting;                     /* lock: consumers blocked in pop */
        bool is_closed;                       /* lock: no more pushes */
        int error;                            /* lock: first abort error, sticky */
        size_t held_bytes;                    /* lock: queued + popped, not yet released */
        size_t max_bytes;                     /* 0 = none; else push waits while another item
                                                 is held and held_bytes would pass it */
        size_t peak_bytes;                    /* lock */
        uint64_t *mem_bytes, *mem_peak_bytes; /* optional shared counters (atomic) */
};

_wur_ int upload_queue_init(struct upload_queue *q, size_t cap);
/* Frees what is still queued. No thread may be using the queue. */
void upload_queue_done(struct upload_queue *q);

/* A new block copy (cid, len bytes of data), or NULL. */
struct upload_block *upload_block_new(const struct cid *cid, const void *data, size_t len);
/* A queue item for a run; takes ownership of run on success (else it stays the caller's). */
struct upload_block *upload_block_new_run(struct net_run *run);
/* Frees a block or a run that never entered a queue (or was popped and is not counted). */
void upload_block_free(struct upload_block *b);

/* Takes ownership of b on success (0); waits while full. The sticky error if aborted (b
 * stays the caller's), -EINVAL if closed. */
_wur_ int upload_queue_push(struct upload_queue *q, struct upload_block *b);
/* 1 with the oldest block (the caller owns it; release it with upload_queue_release), 0 when
 * closed and empty, the sticky error if aborted. Waits while empty. */
_wur_ int upload_queue_pop(struct upload_queue *q, struct upload_block **ret);
/* Frees a popped block and stops counting its bytes. */
void upload_queue_release(struct upload_queue *q, struct upload_block *b);
/* The producer is done: consumers drain what is queued, then pop answers 0. */
void upload_queue_close(struct upload_queue *q);
/* Stops everything: the first error sticks (error < 0). */
void upload_queue_abort(struct upload_queue *q, int error);
/* The sticky error, or 0. */
int upload_queue_error(struct upload_queue *q);
/* Queued items no waiting consumer is about to take (n - consumers blocked in pop, or 0). */
size_t upload_queue_unclaimed(struct upload_queue *q);
