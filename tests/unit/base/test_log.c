/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "prsmfs/log.h"

static void test_redact__credentials_in_urls__replaced(void **state)
{
        char a[] = "node http://user:pa55@host:5001/api failed; also https://tok@gw/x";
        char b[] = "node http://127.0.0.1:5001 is down";
        char c[] = "mail a@b and http://h/p@q stay";

        (void)state;
        log_redact_urls(a);
        assert_string_equal(a, "node http://***@host:5001/api failed; also https://***@gw/x");
        log_redact_urls(b);
        assert_string_equal(b, "node http://127.0.0.1:5001 is down");
        log_redact_urls(c); /* '@' after the host's '/' is a path, not credentials */
        assert_string_equal(c, "mail a@b and http://h/p@q stay");
}

static void test_ratelimit__burst_then_window__counts_suppressed(void **state)
{
        struct log_ratelimit rl = LOG_RATELIMIT_INIT(1000, 2);
        unsigned dropped;

        (void)state;
        assert_true(log_ratelimit_ok(&rl, 10, &dropped));
        assert_true(log_ratelimit_ok(&rl, 20, &dropped));
        assert_false(log_ratelimit_ok(&rl, 30, &dropped));
        assert_false(log_ratelimit_ok(&rl, 40, &dropped));
        assert_int_equal(dropped, 0);
        assert_true(log_ratelimit_ok(&rl, 1010, &dropped)); /* a new window */
        assert_int_equal(dropped, 2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_redact__credentials_in_urls__replaced),
                cmocka_unit_test(test_ratelimit__burst_then_window__counts_suppressed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
