/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pinning-service rate limit (requests_per_minute, burst_size): a token bucket on a fake
 * clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "internal.h"

#define SEC 1000000000ull

static void test_bucket__burst_then_one_per_interval(void **state)
{
        struct net_bucket b;
        uint64_t when = 0, t0 = 1000 * SEC;

        (void)state;
        net_bucket_init(&b, 60, 3); /* one a second, three at once */
        for (int i = 0; i < 3; i++) {
                assert_int_equal(net_bucket_take(&b, t0, UINT64_MAX, &when), 0);
                assert_int_equal(when, t0); /* the burst goes at once */
        }
        assert_int_equal(net_bucket_take(&b, t0, UINT64_MAX, &when), 0);
        assert_int_equal(when, t0 + 1 * SEC); /* then one per interval */
        assert_int_equal(net_bucket_take(&b, t0, UINT64_MAX, &when), 0);
        assert_int_equal(when, t0 + 2 * SEC);
        /* after a quiet spell the burst is back, never more than burst */
        t0 += 100 * SEC;
        for (int i = 0; i < 3; i++) {
                assert_int_equal(net_bucket_take(&b, t0, UINT64_MAX, &when), 0);
                assert_int_equal(when, t0);
        }
        assert_int_equal(net_bucket_take(&b, t0, UINT64_MAX, &when), 0);
        assert_int_equal(when, t0 + SEC);
        net_bucket_done(&b);
}

static void test_bucket__past_deadline__etimedout_nothing_taken(void **state)
{
        struct net_bucket b;
        uint64_t when = 0, t0 = 50 * SEC;

        (void)state;
        net_bucket_init(&b, 2, 1); /* one every 30 s */
        assert_int_equal(net_bucket_take(&b, t0, t0, &when), 0);
        assert_int_equal(net_bucket_take(&b, t0, t0 + 10 * SEC, &when), -ETIMEDOUT);
        /* the refused request took nothing: the next one still goes at +30 s */
        assert_int_equal(net_bucket_take(&b, t0, UINT64_MAX, &when), 0);
        assert_int_equal(when, t0 + 30 * SEC);
        net_bucket_done(&b);
}

static void test_bucket__off__always_now(void **state)
{
        struct net_bucket b;
        uint64_t when = 0;

        (void)state;
        net_bucket_init(&b, 0, 0);
        for (int i = 0; i < 1000; i++) {
                assert_int_equal(net_bucket_take(&b, 7, 7, &when), 0);
                assert_int_equal(when, 7);
        }
        net_bucket_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bucket__burst_then_one_per_interval),
                cmocka_unit_test(test_bucket__past_deadline__etimedout_nothing_taken),
                cmocka_unit_test(test_bucket__off__always_now),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
