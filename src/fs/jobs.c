/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Job queues: requests a FUSE worker could not answer from the index, memory and disk go to
 * a queue whose threads may wait for the network (fuse_adapter.c). A worker never waits for
 * a block, so with every queue thread blocked on a hung node, stat and ls of what the index
 * holds still answer at once.
 *
 * A job is run once, by a queue thread, or by fs_jobq_stop with `stopping` set (it then
 * answers its request with an error and fetches nothing). Its run function frees it.
 */
#define LOG_MODULE "fs"
#include <stdlib.h>
#include <string.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

_Thread_local bool fs_no_fetch;
_Thread_local uint64_t fs_request_start_ns;

void fs_jobq_init(struct fs_jobq *q, const char *name)
{
        *q = (struct fs_jobq){ .name = name };
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
}

static void *jobq_thread(void *arg)
{
        struct fs_jobq *q = arg;

        pthread_mutex_lock(&q->lock);
        for (;;) {
                struct fs_job *j = q->head;

                if (!j) {
                        if (q->stop)
                                break;
                        pthread_cond_wait(&q->cond, &q->lock);
                        continue;
                }
                q->head = j->next;
                if (!q->head)
                        q->tail = NULL;
                q->running++;
                pthread_mutex_unlock(&q->lock);
                fs_request_start_ns = j->queued_ns; /* run frees j */
                j->run(j, false);
                fs_request_start_ns = 0;
                pthread_mutex_lock(&q->lock);
                q->running--;
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

void fs_jobq_start(struct fs_jobq *q, size_t n_threads)
{
        if (q->n_threads)
                return;
        if (n_threads > FS_JOBQ_MAX_THREADS)
                n_threads = FS_JOBQ_MAX_THREADS;
        q->stop = false;
        for (size_t i = 0; i < n_threads; i++) {
                int r = -pthread_create(&q->threads[i], NULL, jobq_thread, q);

                if (r < 0) {
                        /* with none, FUSE workers do the jobs themselves */
                        log_error("cannot start the %s threads (%zu of %zu): %s", q->name,
                                  q->n_threads, n_threads, strerror(-r));
                        return;
                }
                q->n_threads++;
        }
}

void fs_jobq_push(struct fs_jobq *q, struct fs_job *j)
{
        bool stopping;

        pthread_mutex_lock(&q->lock);
        if (q->stop || !q->n_threads) {
                /* stopped: answered at once; never started (no threads): run here */
                stopping = q->stop;
                pthread_mutex_unlock(&q->lock);
                j->run(j, stopping);
                return;
        }
        j->next = NULL;
        j->queued_ns = net_now_ns();
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
        q->queued++;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
}

void fs_jobq_stop(struct fs_jobq *q)
{
        struct fs_job *j;

        pthread_mutex_lock(&q->lock);
        q->stop = true;
        pthread_cond_broadcast(&q->cond);
        j = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        /* what no thread took is answered now; the threads end after their current job
         * (the network shut down first makes those quick) */
        while (j) {
                struct fs_job *next = j->next;

                j->run(j, true);
                j = next;
        }
        for (size_t i = 0; i < q->n_threads; i++)
                pthread_join(q->threads[i], NULL);
        q->n_threads = 0;
}

void fs_jobq_done(struct fs_jobq *q)
{
        fs_jobq_stop(q);
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
}

int fs_block_get(struct fs *fs, const struct cid *cid, uint64_t deadline_ns, struct net_block **ret)
{
        int r;

        if (!fs_no_fetch)
                return store_get(fs->store, cid, deadline_ns, ret);
        r = store_peek(fs->store, cid, ret);
        return r == -ENOENT ? -EWOULDBLOCK : r;
}
