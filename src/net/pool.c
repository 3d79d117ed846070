/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Node health: pure logic, no I/O, no clock of its own (unit-tested through a fake clock).
 *
 *   up --fail--> suspect --fail--> down --probe ok--> up
 *   any --bad block--> down            (a lying node is never trusted for the next request)
 *   any --wrong content type--> disabled --probe answered correctly--> up
 *   any --429--> same state, skipped until Retry-After (or a backoff) has passed
 *   any --ok--> up
 *   any --request deadline passed--> same state (the request ran out of time, not the node)
 * A down or disabled node is probed after an exponential backoff with jitter that grows with
 * each failed probe, up to retry_max_delay: one odd answer never takes a node out for good.
 * A stall is a failure only when the pool gave up on it (net.c: when another node could serve).
 */
#include <string.h>

#include "transport.h"

uint64_t net_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt, uint64_t rnd)
{
        uint64_t d = base_ms;

        for (unsigned i = 0; i < attempt && d < max_ms; i++)
                d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
        if (d > max_ms)
                d = max_ms;
        if (d < 2)
                return d;
        return d / 2 + rnd % (d - d / 2 + 1);
}

static void go_out(struct net_health *h, const struct net_health_params *p,
                   enum net_node_state state, uint64_t now_ns, uint64_t rnd)
{
        unsigned n = h->failures > 2 ? h->failures - 2 : 0;

        h->state = state;
        h->next_probe_ns = now_ns + net_backoff_ms(p->base_ms, p->max_ms, n, rnd) * 1000000;
}

static void go_down(struct net_health *h, const struct net_health_params *p, uint64_t now_ns,
                    uint64_t rnd)
{
        go_out(h, p, NET_STATE_DOWN, now_ns, rnd);
}

void net_health_report(struct net_health *h, const struct net_health_params *p, enum net_outcome o,
                       uint64_t latency_ms, uint64_t retry_after_ms, uint64_t now_ns, uint64_t rnd)
{
        if (h->state == NET_STATE_DISABLED)
                return;
        switch (o) {
        case NET_OK:
                h->state = NET_STATE_UP;
                h->failures = 0;
                h->latency_ms = h->latency_ms == 0 ? (double)latency_ms
                                                   : 0.8 * h->latency_ms + 0.2 * latency_ms;
                if (h->latency_ms < 0.001)
                        h->latency_ms = 0.001; /* known, even if tiny */
                break;
        case NET_FAIL:
        case NET_TIMEOUT:
                h->failures++;
                if (h->state == NET_STATE_UP)
                        h->state = NET_STATE_SUSPECT;
                else if (h->state == NET_STATE_SUSPECT)
                        go_down(h, p, now_ns, rnd);
                break;
        case NET_BAD_BLOCK:
                h->failures++;
                go_down(h, p, now_ns, rnd);
                break;
        case NET_THROTTLED:
                h->throttled_until_ns =
                        now_ns +
                        (retry_after_ms ? retry_after_ms
                                        : net_backoff_ms(p->base_ms, p->max_ms, h->failures, rnd)) *
                                1000000;
                break;
        case NET_NOT_FOUND:
        case NET_DEADLINE:
                break;
        case NET_UNUSABLE:
                h->failures++;
                go_out(h, p, NET_STATE_DISABLED, now_ns, rnd);
                break;
        }
}

void net_health_probed(struct net_health *h, const struct net_health_params *p, enum net_outcome o,
                       uint64_t now_ns, uint64_t rnd)
{
        bool out = h->state == NET_STATE_DOWN || h->state == NET_STATE_DISABLED;

        switch (o) {
        case NET_OK:
                if (out) {
                        h->state = NET_STATE_UP;
                        h->failures = 0;
                }
                return;
        case NET_UNUSABLE:
                h->failures++;
                go_out(h, p, NET_STATE_DISABLED, now_ns, rnd);
                return;
        case NET_DEADLINE:
        case NET_NOT_FOUND:
        case NET_THROTTLED:
                if (!out)
                        return; /* answered, if not as hoped: no reason to stop using it */
                break;
        default:
                break;
        }
        h->failures++;
        /* a disabled node stays disabled until a probe gets a correct answer */
        go_out(h, p, h->state == NET_STATE_DISABLED ? NET_STATE_DISABLED : NET_STATE_DOWN, now_ns,
               rnd);
}

int net_health_choose(const struct net_health *h, size_t n, const bool *skip, uint64_t now_ns)
{
        int best = -1;

        for (size_t i = 0; i < n; i++) {
                const struct net_health *c = &h[i];

                if ((skip && skip[i]) || c->state == NET_STATE_DOWN ||
                    c->state == NET_STATE_DISABLED || c->throttled_until_ns > now_ns)
                        continue;
                if (best < 0) {
                        best = (int)i;
                        continue;
                }
                if (c->state != h[best].state) {
                        if (c->state == NET_STATE_UP)
                                best = (int)i;
                        continue;
                }
                if (c->latency_ms < h[best].latency_ms)
                        best = (int)i;
        }
        return best;
}

uint32_t net_latency_p95(const uint32_t *samples, size_t n)
{
        uint32_t v[64];
        size_t k;

        if (n == 0)
                return 0;
        n = MIN(n, ELEMENTSOF(v));
        memcpy(v, samples, n * sizeof(*v));
        for (size_t i = 1; i < n; i++) /* insertion sort: n is tiny */
                for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        uint32_t t = v[j];

                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
        k = (n * 95 + 99) / 100; /* nearest rank: ceil(0.95 n) */
        return v[k - 1];
}
