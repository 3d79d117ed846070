/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Node health state machine, backoff and choice of node: pure logic, fake time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "transport.h"

#define MS 1000000ull

static const struct net_health_params hp = { .base_ms = 100, .max_ms = 5000 };

static void test_backoff__each_attempt__within_half_to_full_and_capped(void **state)
{
        (void)state;
        for (unsigned a = 0; a < 20; a++) {
                uint64_t d = 100ull << (a < 10 ? a : 10);

                if (d > 5000)
                        d = 5000;
                for (uint64_t rnd = 0; rnd < 1000; rnd += 7) {
                        uint64_t v = net_backoff_ms(100, 5000, a, rnd * 7919);

                        assert_true(v >= d / 2 && v <= d);
                }
        }
        assert_int_equal(net_backoff_ms(0, 5000, 3, 42), 0);
}

static void test_health__failures__up_suspect_down_probe_back(void **state)
{
        struct net_health h = { 0 };
        uint64_t first_probe;

        (void)state;
        net_health_report(&h, &hp, NET_OK, 10, 0, 0, 1);
        assert_int_equal(h.state, NET_STATE_UP);
        net_health_report(&h, &hp, NET_FAIL, 0, 0, 1000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_SUSPECT);
        net_health_report(&h, &hp, NET_TIMEOUT, 0, 0, 1000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_DOWN);
        assert_true(h.next_probe_ns >= 1050 * MS && h.next_probe_ns <= 1100 * MS);
        first_probe = h.next_probe_ns - 1000 * MS;
        /* failed probes back off further, up to the maximum */
        net_health_probed(&h, &hp, NET_FAIL, 2000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_DOWN);
        assert_true(h.next_probe_ns - 2000 * MS > first_probe);
        for (int i = 0; i < 20; i++)
                net_health_probed(&h, &hp, NET_FAIL, 3000 * MS, 12345);
        assert_true(h.next_probe_ns - 3000 * MS <= 5000 * MS);
        net_health_probed(&h, &hp, NET_OK, 9000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_UP);
        assert_int_equal(h.failures, 0);
}

static void test_health__bad_block__down_at_once(void **state)
{
        struct net_health h = { 0 };

        (void)state;
        net_health_report(&h, &hp, NET_BAD_BLOCK, 0, 0, 0, 1);
        assert_int_equal(h.state, NET_STATE_DOWN);
}

static void test_health__429__skipped_until_retry_after(void **state)
{
        struct net_health h[2] = { 0 };

        (void)state;
        net_health_report(&h[0], &hp, NET_THROTTLED, 0, 2000, 0, 1);
        assert_int_equal(h[0].state, NET_STATE_UP);
        assert_int_equal(net_health_choose(h, 2, NULL, 1000 * MS), 1);
        assert_int_equal(net_health_choose(h, 1, NULL, 1999 * MS), -1);
        assert_int_equal(net_health_choose(h, 1, NULL, 2000 * MS), 0);
}

/* One answer with the wrong content type disables a node, but only until a probe is answered
 * correctly (before, nothing brought it back: the only gateway was lost until a restart). */
static void test_health__unusable__disabled_until_a_good_probe(void **state)
{
        struct net_health h = { 0 };
        uint64_t first;

        (void)state;
        net_health_report(&h, &hp, NET_UNUSABLE, 0, 0, 1000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_DISABLED);
        assert_true(h.next_probe_ns > 1000 * MS && h.next_probe_ns <= 1100 * MS);
        first = h.next_probe_ns - 1000 * MS;
        net_health_report(&h, &hp, NET_OK, 5, 0, 0, 1); /* a late answer changes nothing */
        assert_int_equal(h.state, NET_STATE_DISABLED);
        assert_int_equal(net_health_choose(&h, 1, NULL, 0), -1);
        /* failed probes keep it disabled and back off */
        net_health_probed(&h, &hp, NET_UNUSABLE, 2000 * MS, 1);
        net_health_probed(&h, &hp, NET_FAIL, 3000 * MS, 1);
        net_health_probed(&h, &hp, NET_UNUSABLE, 4000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_DISABLED);
        assert_true(h.next_probe_ns - 4000 * MS > first);
        net_health_probed(&h, &hp, NET_OK, 5000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_UP);
        assert_int_equal(h.failures, 0);
        assert_int_equal(net_health_choose(&h, 1, NULL, 5000 * MS), 0);
}

/* A request that ran out of its own time says nothing about the node; a probe at start that
 * fails takes an up node out of use, one that succeeds leaves it as it was. */
static void test_health__deadline_and_start_probe(void **state)
{
        struct net_health h = { 0 };

        (void)state;
        net_health_report(&h, &hp, NET_DEADLINE, 0, 0, 1000 * MS, 1);
        net_health_report(&h, &hp, NET_DEADLINE, 0, 0, 2000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_UP);
        assert_int_equal(h.failures, 0);
        net_health_probed(&h, &hp, NET_OK, 2000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_UP);
        net_health_probed(&h, &hp, NET_FAIL, 2000 * MS, 1);
        assert_int_equal(h.state, NET_STATE_DOWN);
        assert_true(h.next_probe_ns > 2000 * MS);
}

static void test_choose__up_before_suspect_then_latency(void **state)
{
        struct net_health h[4] = {
                { .state = NET_STATE_SUSPECT, .latency_ms = 1 },
                { .state = NET_STATE_UP, .latency_ms = 50 },
                { .state = NET_STATE_UP, .latency_ms = 20 },
                { .state = NET_STATE_DOWN, .latency_ms = 0.5 },
        };
        bool skip[4] = { false, false, true, false };

        (void)state;
        assert_int_equal(net_health_choose(h, 4, NULL, 0), 2);
        assert_int_equal(net_health_choose(h, 4, skip, 0), 1);
        skip[1] = true;
        assert_int_equal(net_health_choose(h, 4, skip, 0), 0); /* only a suspect is left */
        skip[0] = true;
        assert_int_equal(net_health_choose(h, 4, skip, 0), -1); /* down is never chosen */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff__each_attempt__within_half_to_full_and_capped),
                cmocka_unit_test(test_health__failures__up_suspect_down_probe_back),
                cmocka_unit_test(test_health__bad_block__down_at_once),
                cmocka_unit_test(test_health__429__skipped_until_retry_after),
                cmocka_unit_test(test_health__unusable__disabled_until_a_good_probe),
                cmocka_unit_test(test_health__deadline_and_start_probe),
                cmocka_unit_test(test_choose__up_before_suspect_then_latency),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
