/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "prsmfs/metrics.h"

static char *text_of(struct buf *b)
{
        char *s = malloc(b->len + 1);

        assert_non_null(s);
        memcpy(s, b->p, b->len);
        s[b->len] = '\0';
        return s;
}

static void test_histogram__observations__cumulative_buckets_sum_count(void **state)
{
        struct metrics_histogram h = METRICS_HISTOGRAM_INIT(metrics_duration_buckets);
        struct buf b;
        char *s;

        (void)state;
        metrics_histogram_observe(&h, 50000);           /* 50 us: first bucket */
        metrics_histogram_observe(&h, 3000000);         /* 3 ms: le 0.005 */
        metrics_histogram_observe(&h, 120000000000ull); /* 2 min: +Inf only */
        assert_int_equal(metrics_histogram_count(&h), 3);
        buf_init(&b, 1 << 20);
        assert_int_equal(metrics_write_histogram(&b, "x_seconds", "op=\"get\"", &h), 0);
        s = text_of(&b);
        assert_non_null(strstr(s, "x_seconds_bucket{op=\"get\",le=\"0.0001\"} 1\n"));
        assert_non_null(strstr(s, "x_seconds_bucket{op=\"get\",le=\"0.0025\"} 1\n"));
        assert_non_null(strstr(s, "x_seconds_bucket{op=\"get\",le=\"0.005\"} 2\n"));
        assert_non_null(strstr(s, "x_seconds_bucket{op=\"get\",le=\"60\"} 2\n"));
        assert_non_null(strstr(s, "x_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"));
        assert_non_null(strstr(s, "x_seconds_count{op=\"get\"} 3\n"));
        assert_non_null(strstr(s, "x_seconds_sum{op=\"get\"} 120.00305"));
        free(s);
        buf_done(&b);
}

static void test_histogram__no_labels__plain_sum(void **state)
{
        struct metrics_histogram h = METRICS_HISTOGRAM_INIT(metrics_size_buckets);
        struct buf b;
        char *s;

        (void)state;
        metrics_histogram_observe(&h, 1 << 20);
        buf_init(&b, 1 << 20);
        assert_int_equal(metrics_write_histogram(&b, "sz_bytes", NULL, &h), 0);
        s = text_of(&b);
        assert_non_null(strstr(s, "sz_bytes_bucket{le=\"1048576\"} 1\n"));
        assert_non_null(strstr(s, "sz_bytes_bucket{le=\"262144\"} 0\n"));
        assert_non_null(strstr(s, "sz_bytes_sum 1048576\n"));
        assert_non_null(strstr(s, "sz_bytes_count 1\n"));
        free(s);
        buf_done(&b);
}

static void test_ops__outcomes__counted_by_status(void **state)
{
        struct metrics_op_counts c;
        struct buf b;
        char *s;

        (void)state;
        metrics_op_done(METRICS_OP_PIN, 0, metrics_now_ns());
        metrics_op_done(METRICS_OP_PIN, -EHOSTUNREACH, metrics_now_ns());
        metrics_op_done(METRICS_OP_PIN, -EHOSTUNREACH, metrics_now_ns());
        metrics_op_done(METRICS_OP_PIN, -ECANCELED, metrics_now_ns());
        metrics_op_get_counts(METRICS_OP_PIN, &c);
        assert_int_equal(c.success, 1);
        assert_int_equal(c.error, 2);
        assert_int_equal(c.cancelled, 1);
        metrics_content_size(5000);
        buf_init(&b, 1 << 20);
        assert_int_equal(metrics_write_ipfs_ops(&b), 0);
        s = text_of(&b);
        assert_non_null(strstr(s, "# TYPE ipfs_operations_total counter\n"));
        assert_non_null(strstr(s, "ipfs_operations_total{op=\"pin\",status=\"error\"} 2\n"));
        assert_non_null(strstr(s, "ipfs_operation_duration_seconds_count{op=\"pin\"} 4\n"));
        assert_non_null(strstr(s, "ipfs_content_size_bytes_bucket{le=\"16384\"} 1\n"));
        free(s);
        buf_done(&b);
}

static void test_label_escape__quotes_backslashes_newlines__escaped(void **state)
{
        char out[64];

        (void)state;
        metrics_label_escape("a\"b\\c\nd", out, sizeof(out));
        assert_string_equal(out, "a\\\"b\\\\c\\nd");
        metrics_label_escape("abcdefghij", out, 6); /* cut, never overrun */
        assert_true(strlen(out) < 6);
}

static void test_parse_listen__forms__parsed_or_einval(void **state)
{
        struct sockaddr_storage sa;
        unsigned len;
        bool lo;

        (void)state;
        assert_int_equal(metrics_parse_listen("127.0.0.1:9464", &sa, &len, &lo), 0);
        assert_true(lo);
        assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9464);
        assert_int_equal(metrics_parse_listen("localhost:1", &sa, &len, &lo), 0);
        assert_true(lo);
        assert_int_equal(metrics_parse_listen("[::1]:9464", &sa, &len, &lo), 0);
        assert_true(lo);
        assert_int_equal(sa.ss_family, AF_INET6);
        assert_int_equal(metrics_parse_listen("0.0.0.0:9464", &sa, &len, &lo), 0);
        assert_false(lo);
        assert_int_equal(metrics_parse_listen("127.0.0.1", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("127.0.0.1:", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("127.0.0.1:65536", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("127.0.0.1:12a", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("::1:9464", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("example.org:80", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("[::1]9464", &sa, &len, &lo), -EINVAL);
        assert_int_equal(metrics_parse_listen("", &sa, &len, &lo), -EINVAL);
}

static void test_gzip__text__inflates_back(void **state)
{
        char in[4096], back[8192];
        struct buf z;
        z_stream s = { 0 };

        (void)state;
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (char)('a' + i % 7);
        buf_init(&z, 1 << 20);
        assert_int_equal(metrics_gzip(in, sizeof(in), &z), 0);
        assert_true(z.len > 18 && z.len < sizeof(in));
        assert_int_equal(z.p[0], 0x1f); /* gzip magic */
        assert_int_equal(z.p[1], 0x8b);
        assert_int_equal(inflateInit2(&s, 15 + 16), Z_OK);
        s.next_in = z.p;
        s.avail_in = (uInt)z.len;
        s.next_out = (Bytef *)back;
        s.avail_out = sizeof(back);
        assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
        assert_int_equal(s.total_out, sizeof(in));
        assert_memory_equal(back, in, sizeof(in));
        inflateEnd(&s);
        buf_done(&z);
}

static int render_fixed(struct buf *b, void *userdata)
{
        (void)userdata;
        return metrics_printf(b, "up 1\n");
}

static int health_fixed(struct buf *b, void *userdata)
{
        (void)userdata;
        return metrics_printf(b, "{}\n") < 0 ? -ENOMEM : 503;
}

static void test_server__port_taken__eaddrinuse(void **state)
{
        struct metrics_server_config cfg = { .listen = "127.0.0.1:0",
                                             .render = render_fixed,
                                             .health = health_fixed };
        struct metrics_server *a = NULL, *b = NULL;
        char listen[32];

        (void)state;
        assert_int_equal(metrics_server_start(&cfg, &a), 0);
        assert_true(metrics_server_port(a) > 0);
        (void)snprintf(listen, sizeof(listen), "127.0.0.1:%u", metrics_server_port(a));
        cfg.listen = listen;
        assert_int_equal(metrics_server_start(&cfg, &b), -EADDRINUSE);
        cfg.listen = "nonsense";
        assert_int_equal(metrics_server_start(&cfg, &b), -EINVAL);
        metrics_server_stop(a);
        metrics_server_stop(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_histogram__observations__cumulative_buckets_sum_count),
                cmocka_unit_test(test_histogram__no_labels__plain_sum),
                cmocka_unit_test(test_ops__outcomes__counted_by_status),
                cmocka_unit_test(test_label_escape__quotes_backslashes_newlines__escaped),
                cmocka_unit_test(test_parse_listen__forms__parsed_or_einval),
                cmocka_unit_test(test_gzip__text__inflates_back),
                cmocka_unit_test(test_server__port_taken__eaddrinuse),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
