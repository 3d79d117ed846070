/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The bounded block queue of one upload attempt (see queue.h). */
#include "queue.h"

#include <stdlib.h>
#include <string.h>

#include "prsmfs/net.h"

int upload_queue_init(struct upload_queue *q, size_t cap)
{
        if (cap == 0)
                return -EINVAL;
        *q = (struct upload_queue){ .cap = cap };
        q->ring = calloc(cap, sizeof(*q->ring));
        if (!q->ring)
                return -ENOMEM;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->not_full, NULL);
        pthread_cond_init(&q->not_empty, NULL);
        return 0;
}

static void account(struct upload_queue *q, size_t add, size_t sub)
{
        q->held_bytes = q->held_bytes + add - sub;
        q->peak_bytes = MAX(q->peak_bytes, q->held_bytes);
        if (q->mem_bytes) {
                uint64_t now = __atomic_add_fetch(q->mem_bytes, (uint64_t)add - (uint64_t)sub,
                                                  __ATOMIC_RELAXED);

                atomic_max_u64(q->mem_peak_bytes, now);
        }
}

void upload_queue_done(struct upload_queue *q)
{
        if (!q->ring)
                return;
        while (q->n) {
                struct upload_block *b = q->ring[q->head];

                q->head = (q->head + 1) % q->cap;
                q->n--;
                account(q, 0, sizeof(*b) + b->len);
                upload_block_free(b);
        }
        free(q->ring);
        q->ring = NULL;
        pthread_cond_destroy(&q->not_empty);
        pthread_cond_destroy(&q->not_full);
        pthread_mutex_destroy(&q->lock);
}

struct upload_block *upload_block_new(const struct cid *cid, const void *data, size_t len)
{
        struct upload_block *b;
        size_t sz;

        if (size_add_overflows(sizeof(*b), len, &sz))
                return NULL;
        b = malloc(sz);
        if (!b)
                return NULL;
        b->cid = *cid;
        b->run = NULL;
        b->len = len;
        if (len)
                memcpy(b->data, data, len);
        return b;
}

struct upload_block *upload_block_new_run(struct net_run *run)
{
        struct upload_block *b = calloc(1, sizeof(*b));

        if (!b)
                return NULL;
        b->run = run;
        b->len = net_run_bytes(run);
        return b;
}

void upload_block_free(struct upload_block *b)
{
        if (!b)
                return;
        net_run_free(b->run);
        free(b);
}

/* under lock: no room for size more bytes (items or bytes) */
static bool is_full(const struct upload_queue *q, size_t size)
{
        return q->n == q->cap ||
               (q->max_bytes && q->held_bytes > 0 && q->held_bytes + size > q->max_bytes);
}

int upload_queue_push(struct upload_queue *q, struct upload_block *b)
{
        int r = 0;

        pthread_mutex_lock(&q->lock);
        while (!q->error && !q->is_closed && is_full(q, sizeof(*b) + b->len))
                pthread_cond_wait(&q->not_full, &q->lock);
        if (q->error)
                r = q->error;
        else if (q->is_closed)
                r = -EINVAL;
        else {
                q->ring[(q->head + q->n) % q->cap] = b;
                q->n++;
                account(q, sizeof(*b) + b->len, 0);
                pthread_cond_signal(&q->not_empty);
        }
        pthread_mutex_unlock(&q->lock);
        return r;
}

int upload_queue_pop(struct upload_queue *q, struct upload_block **ret)
{
        int r;

        pthread_mutex_lock(&q->lock);
        while (!q->error && !q->is_closed && q->n == 0) {
                q->n_waiting++;
                pthread_cond_wait(&q->not_empty, &q->lock);
                q->n_waiting--;
        }
        if (q->error)
                r = q->error;
        else if (q->n == 0)
                r = 0; /* closed and drained */
        else {
                *ret = q->ring[q->head];
                q->head = (q->head + 1) % q->cap;
                q->n--;
                pthread_cond_signal(&q->not_full);
                r = 1;
        }
        pthread_mutex_unlock(&q->lock);
        return r;
}

void upload_queue_release(struct upload_queue *q, struct upload_block *b)
{
        if (!b)
                return;
        pthread_mutex_lock(&q->lock);
        account(q, 0, sizeof(*b) + b->len);
        if (q->max_bytes)
                pthread_cond_signal(&q->not_full); /* bytes, not only a slot, were freed */
        pthread_mutex_unlock(&q->lock);
        upload_block_free(b);
}

void upload_queue_close(struct upload_queue *q)
{
        pthread_mutex_lock(&q->lock);
        q->is_closed = true;
        pthread_cond_broadcast(&q->not_empty);
        pthread_cond_broadcast(&q->not_full);
        pthread_mutex_unlock(&q->lock);
}

void upload_queue_abort(struct upload_queue *q, int error)
{
        pthread_mutex_lock(&q->lock);
        if (!q->error)
                q->error = error < 0 ? error : -ECANCELED;
        pthread_cond_broadcast(&q->not_empty);
        pthread_cond_broadcast(&q->not_full);
        pthread_mutex_unlock(&q->lock);
}

int upload_queue_error(struct upload_queue *q)
{
        int r;

        pthread_mutex_lock(&q->lock);
        r = q->error;
        pthread_mutex_unlock(&q->lock);
        return r;
}

size_t upload_queue_unclaimed(struct upload_queue *q)
{
        size_t r;

        pthread_mutex_lock(&q->lock);
        r = q->n > q->n_waiting ? q->n - q->n_waiting : 0;
        pthread_mutex_unlock(&q->lock);
        return r;
}
