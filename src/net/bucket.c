/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rate limit of requests to a pinning service (requests_per_minute, burst_size): a token
 * bucket kept as its theoretical arrival time (GCRA), so that it is one number and exact in
 * integers: a request may go at `tat - (burst - 1) * interval`, and each one taken moves tat
 * on by one interval. Up to burst requests go at once after a quiet spell; after that one
 * every interval. Pure (the caller's clock); the caller sleeps until the time it is given.
 */
#include <errno.h>

#include "internal.h"

void net_bucket_init(struct net_bucket *b, unsigned per_minute, unsigned burst)
{
        *b = (struct net_bucket){
                .interval_ns = per_minute ? 60ull * 1000000000ull / per_minute : 0,
                .burst = burst ? burst : 1,
        };
        pthread_mutex_init(&b->lock, NULL);
}

void net_bucket_done(struct net_bucket *b)
{
        pthread_mutex_destroy(&b->lock);
}

int net_bucket_take(struct net_bucket *b, uint64_t now_ns, uint64_t deadline_ns,
                    uint64_t *ret_when_ns)
{
        uint64_t tat, window, when;
        int r = 0;

        if (!b->interval_ns) {
                *ret_when_ns = now_ns; /* no limit */
                return 0;
        }
        window = (uint64_t)(b->burst - 1) * b->interval_ns;
        pthread_mutex_lock(&b->lock);
        tat = b->tat > now_ns ? b->tat : now_ns;
        when = tat - now_ns > window ? tat - window : now_ns;
        if (when > deadline_ns)
                r = -ETIMEDOUT; /* not taken: it could not be used in time */
        else
                b->tat = tat + b->interval_ns;
        pthread_mutex_unlock(&b->lock);
        if (r >= 0)
                *ret_when_ns = when;
        return r;
}
