/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/config.h"

static char err[512];

static int load_text(struct config *c, const char *text)
{
        char path[] = "/tmp/prsmfs-config-XXXXXX";
        int fd = mkstemp(path), r;
        FILE *f;

        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        err[0] = '\0';
        r = config_load_file(c, path, err, sizeof(err));
        unlink(path);
        return r;
}

static void test_defaults__local_node__valid(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
        assert_int_equal(c.n_rpc_nodes, 1);
        assert_string_equal(c.rpc_nodes[0].url, "http://127.0.0.1:5001");
        assert_string_equal(c.gateway_nodes[0].url, "http://127.0.0.1:8080");
        assert_int_equal(c.parallel_uploads, 5);
        assert_int_equal(c.max_chunk_size, 1024 * 1024);
        config_done(&c);
}

static void test_load__all_types__applied(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, "{\"timeout\": 2.5, \"max_cache_size\": \"2G\", "
                                       "\"content_cache_enabled\": false, "
                                       "\"rpc_nodes\": [\"http://a:1\", {\"url\": \"https://b\", "
                                       "\"auth_file\": \"/etc/tok\"}], \"profile\": \"legacy\", "
                                       "\"parallel_downloads\": 32, \"state_dir\": \"/x\"}"),
                         0);
        assert_int_equal(c.timeout_ms, 2500);
        assert_int_equal(c.max_cache_size, 2ull << 30);
        assert_false(c.content_cache_enabled);
        assert_int_equal(c.n_rpc_nodes, 2);
        assert_string_equal(c.rpc_nodes[1].url, "https://b");
        assert_string_equal(c.rpc_nodes[1].auth_file, "/etc/tok");
        assert_null(c.rpc_nodes[0].auth_file);
        assert_int_equal(c.profile, CONFIG_PROFILE_LEGACY);
        assert_int_equal(c.parallel_downloads, 32);
        assert_string_equal(c.state_dir, "/x");
        config_done(&c);
}

static void expect_load_error(const char *text, const char *needle)
{
        struct config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, text), -EINVAL);
        if (!strstr(err, needle))
                fail_msg("error '%s' does not contain '%s'", err, needle);
        assert_non_null(strstr(err, "config file /tmp/prsmfs-config-"));
        config_done(&c);
}

static void test_load__bad_input__names_key_and_file(void **state)
{
        (void)state;
        expect_load_error("{\"nope\": 1}", "key 'nope': unknown key");
        expect_load_error("{\"timeout\": \"x\"}", "key 'timeout': expected a number");
        expect_load_error("{\"timeout\": -1}", "key 'timeout': must not be negative");
        expect_load_error("{\"timeout\": 0.01}", "key 'timeout': 0.010 s is out of range");
        expect_load_error("{\"retry_max_attempts\": 1.5}",
                          "'retry_max_attempts': expected an integer");
        expect_load_error("{\"parallel_uploads\": 100000}", "'parallel_uploads': 100000 is out");
        expect_load_error("{\"max_cache_size\": \"lots\"}",
                          "'max_cache_size': 'lots' is not a valid size");
        expect_load_error("{\"automatic_pinning\": \"yes\"}", "expected true or false");
        expect_load_error("{\"gateway_nodes\": \"http://x\"}", "expected an array");
        expect_load_error("{\"gateway_nodes\": [{\"url\": \"http://x\", \"tls\": 1}]}",
                          "'gateway_nodes[0]': unknown or mistyped field 'tls'");
        expect_load_error("{\"rpc_nodes\": [7]}", "'rpc_nodes[0]': expected a URL string");
        expect_load_error("{\"timeout\": 1, \"timeout\": 2}", "duplicate");
        expect_load_error("{", "config file");
}

/* Node URLs are checked whole at start: each bad one is refused with the key, its index and
 * the reason, never accepted to be cut short or fail at the first request. */
static void test_load__bad_node_urls__refused_naming_key(void **state)
{
        char text[1024], url[600];
        struct config c;

        (void)state;
        expect_load_error("{\"rpc_nodes\": [\"http://a b:5001\"]}",
                          "'rpc_nodes[0]': 'http://a b:5001' contains a space");
        expect_load_error("{\"gateway_nodes\": [\"http://ok:1\", \"http://a:8080\\r\\n\"]}",
                          "'gateway_nodes[1]': 'http://a:8080\\x0d\\x0a' contains a line break");
        expect_load_error("{\"rpc_nodes\": [\"http://a:5001\\u0001\"]}",
                          "contains a control character");
        expect_load_error("{\"rpc_nodes\": [\"http://a:5001\\u007f\"]}",
                          "contains a control character");
        expect_load_error("{\"rpc_nodes\": [\"http://\\u00e4:5001\"]}",
                          "'http://\\xc3\\xa4:5001' contains a non-ASCII byte");
        expect_load_error("{\"rpc_nodes\": [\"http://a:5001?x=1\"]}", "query or fragment");
        expect_load_error("{\"rpc_nodes\": [\"http://\"]}", "has no host");
        expect_load_error("{\"rpc_nodes\": [\"https:///x\"]}", "has no host");
        expect_load_error("{\"rpc_nodes\": [\"ftp://a\"]}", "not an http:// or https:// URL");
        expect_load_error("{\"pinning_services\": [{\"url\": \"https://p s\"}]}",
                          "'pinning_services[0]': 'https://p s' contains a space");
        /* a Kubo RPC URL with /api/v0: prsmfs appends it, so every request would 404 */
        expect_load_error("{\"rpc_nodes\": [\"http://a:5001/api/v0\"]}",
                          "'rpc_nodes[0]': 'http://a:5001/api/v0' ends in /api/v0");
        expect_load_error("{\"rpc_nodes\": [\"http://a:5001/api/v0/\"]}", "ends in /api/v0");
        /* over-long: refused (the message quotes only its start), the longest allowed taken */
        memset(url, 'a', sizeof(url));
        memcpy(url, "http://", 7);
        url[CONFIG_MAX_URL + 1] = '\0';
        (void)snprintf(text, sizeof(text), "{\"gateway_nodes\": [\"%s\"]}", url);
        expect_load_error(text, "'gateway_nodes[0]': 'http://aaa");
        assert_non_null(strstr(err, "is 513 bytes long, more than 512"));
        url[CONFIG_MAX_URL] = '\0';
        (void)snprintf(text, sizeof(text), "{\"gateway_nodes\": [\"%s\"]}", url);
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, text), 0);
        assert_string_equal(c.gateway_nodes[0].url, url);
        /* a path is fine; so is /api/v0 on a gateway (not ours to judge) */
        assert_int_equal(load_text(&c, "{\"rpc_nodes\": [\"https://user@h:5001/prefix/\"], "
                                       "\"gateway_nodes\": [\"http://g/api/v0\"]}"),
                         0);
        assert_int_equal(c.n_rpc_nodes, 1);
        /* and the same checks for -o */
        assert_int_equal(
                config_set_option(&c, "rpc_nodes", "http://a|http://b c", err, sizeof(err)),
                -EINVAL);
        assert_non_null(strstr(err, "option -o 'rpc_nodes': 'http://b c' contains a space"));
        assert_int_equal(
                config_set_option(&c, "rpc_nodes", "http://h:5001/api/v0", err, sizeof(err)),
                -EINVAL);
        assert_non_null(strstr(err, "ends in /api/v0"));
        config_done(&c);
}

static void test_load__first_byte_timeout__default_and_set(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(c.first_byte_timeout_ms, 5000);
        assert_int_equal(load_text(&c, "{\"first_byte_timeout\": 2.5}"), 0);
        assert_int_equal(c.first_byte_timeout_ms, 2500);
        expect_load_error("{\"first_byte_timeout\": 0}", "'first_byte_timeout': 0.000 s is out");
        config_done(&c);
}

static void test_option__overrides__parsed_or_refused(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_set_option(&c, "timeout", "250ms", err, sizeof(err)), 0);
        assert_int_equal(c.timeout_ms, 250);
        assert_int_equal(config_set_option(&c, "max_cache_size", "512M", err, sizeof(err)), 0);
        assert_int_equal(c.max_cache_size, 512ull << 20);
        assert_int_equal(
                config_set_option(&c, "gateway_nodes", "http://a|http://b", err, sizeof(err)), 0);
        assert_int_equal(c.n_gateway_nodes, 2);
        assert_string_equal(c.gateway_nodes[1].url, "http://b");
        assert_int_equal(config_set_option(&c, "sync_upload", "on", err, sizeof(err)), 0);
        assert_true(c.sync_upload);
        assert_false(c.publish_preserve_mode || c.publish_preserve_mtime); /* CIDs as add's */
        assert_int_equal(config_set_option(&c, "publish_preserve_mode", "on", err, sizeof(err)), 0);
        assert_int_equal(config_set_option(&c, "publish_preserve_mtime", "true", err, sizeof(err)),
                         0);
        assert_true(c.publish_preserve_mode && c.publish_preserve_mtime);
        assert_int_equal(config_set_option(&c, "timeout", "soon", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "option -o 'timeout'"));
        assert_int_equal(config_set_option(&c, "bogus", "1", err, sizeof(err)), -EINVAL);
        assert_int_equal(config_set_option(&c, "timeout", NULL, err, sizeof(err)), -EINVAL);
        assert_int_equal(config_set_option(&c, "max_cache_size", "99999999999T", err, sizeof(err)),
                         -EINVAL);
        assert_true(config_is_key("parallel_downloads"));
        assert_false(config_is_key("allow_other"));
        config_done(&c);
}

static void test_validate__inconsistent__refused(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        c.retry_base_delay_ms = 5000;
        c.retry_max_delay_ms = 1000;
        assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "retry_base_delay"));
        c.retry_base_delay_ms = 100;
        c.replicas = 3;
        assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "replicas"));
        c.replicas = 1;
        c.integrity_verification = false; /* it would do nothing: refused */
        assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "integrity_verification"));
        config_done(&c);
}

static void test_follow__names_and_interval__checked(void **state)
{
        static const char *const good[] = {
                "/ipns/12D3KooWSWe8KEvT6nMhVkgcswWAiVNrQYFLK3Ufic7Q5Ynn3NK5",
                "/ipns/models.example.org",
                "/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
                "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        };
        static const char *const bad[][2] = {
                { "/ipns/", "is no IPNS name" },
                { "/ipns/a b", "is no IPNS name" },
                { "/ipns/x?y=1", "is no IPNS name" },
                { "/ipfs/notacid", "must be /ipns/NAME, /ipfs/CID or a CID" },
                { "bafynot", "must be /ipns/NAME, /ipfs/CID or a CID" },
        };
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_null(c.follow);
        assert_int_equal(c.follow_interval_ms, 30000);
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                assert_int_equal(config_set_option(&c, "follow", good[i], err, sizeof(err)), 0);
                if (config_validate(&c, err, sizeof(err)) != 0)
                        fail_msg("'%s' refused: %s", good[i], err);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(config_set_option(&c, "follow", bad[i][0], err, sizeof(err)), 0);
                assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
                if (!strstr(err, bad[i][1]) || !strstr(err, "'follow'"))
                        fail_msg("'%s': error '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        }
        assert_int_equal(config_set_option(&c, "follow_interval", "2.5", err, sizeof(err)), 0);
        assert_int_equal(c.follow_interval_ms, 2500);
        assert_int_equal(config_set_option(&c, "follow_interval", "0.5", err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "follow_interval"));
        config_done(&c);
}

static void test_changed_keys__reload__names_what_differs(void **state)
{
        struct config a, b;
        const char *names[8];

        (void)state;
        assert_int_equal(config_init_defaults(&a), 0);
        assert_int_equal(config_init_defaults(&b), 0);
        assert_int_equal(config_changed_keys(&a, &b, names, 8), 0);
        assert_int_equal(config_set_option(&b, "timeout", "12", err, sizeof(err)), 0);
        assert_int_equal(config_set_option(&b, "log_level", "debug", err, sizeof(err)), 0);
        assert_int_equal(
                config_set_option(&b, "gateway_nodes", "http://127.0.0.1:9999", err, sizeof(err)),
                0);
        assert_int_equal(config_set_option(&b, "control_group", "adm", err, sizeof(err)), 0);
        assert_int_equal(config_changed_keys(&a, &b, names, 8), 4);
        assert_string_equal(names[0], "timeout");
        assert_string_equal(names[1], "gateway_nodes");
        assert_string_equal(names[2], "log_level");
        assert_string_equal(names[3], "control_group");
        assert_int_equal(config_changed_keys(&a, &b, names, 1), 1); /* at most max */
        config_done(&a);
        config_done(&b);
}

static void test_metrics_listen__default_off_and_bad__as_documented(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_string_equal(c.metrics_listen, "127.0.0.1:9464");
        assert_int_equal(config_set_option(&c, "metrics_listen", "[::1]:9100", err, sizeof(err)),
                         0);
        assert_string_equal(c.metrics_listen, "[::1]:9100");
        assert_int_equal(config_set_option(&c, "metrics_listen", "off", err, sizeof(err)), 0);
        assert_null(c.metrics_listen);
        assert_int_equal(load_text(&c, "{\"metrics_listen\": \"127.0.0.1:9500\"}"), 0);
        assert_string_equal(c.metrics_listen, "127.0.0.1:9500");
        assert_int_equal(load_text(&c, "{\"metrics_listen\": \"\"}"), 0);
        assert_null(c.metrics_listen);
        assert_int_equal(config_set_option(&c, "metrics_listen", "9464", err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "'metrics_listen': expected HOST:PORT"));
        assert_int_equal(load_text(&c, "{\"metrics_listen\": 9464}"), -EINVAL);
        assert_non_null(strstr(err, "expected a string"));
        config_done(&c);
}

static void test_load__prsm_keys__royalty_range_checked(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(c.royalty_rate_milli, 10); /* PRSM's 0.01 FTNS per access */
        assert_null(c.creator_id);
        assert_int_equal(load_text(&c, "{\"royalty_rate\": 0.05, \"creator_id\": \"alice\", "
                                       "\"identity_key\": \"/k.pem\"}"),
                         0);
        assert_int_equal(c.royalty_rate_milli, 50);
        assert_string_equal(c.creator_id, "alice");
        assert_string_equal(c.identity_key, "/k.pem");
        assert_int_equal(load_text(&c, "{\"royalty_rate\": 0.1}"), 0);
        assert_int_equal(c.royalty_rate_milli, 100);
        assert_int_equal(load_text(&c, "{\"royalty_rate\": 0.2}"), -EINVAL);
        assert_non_null(strstr(err, "'royalty_rate': 0.2 is out of range [0.001, 0.100]"));
        assert_int_equal(load_text(&c, "{\"royalty_rate\": 0.0005}"), -EINVAL);
        assert_non_null(strstr(err, "'royalty_rate'"));
        assert_int_equal(load_text(&c, "{\"royalty_rate\": \"0.01\"}"), -EINVAL);
        assert_int_equal(config_set_option(&c, "royalty_rate", "0.001", err, sizeof(err)), 0);
        assert_int_equal(c.royalty_rate_milli, 1);
        assert_int_equal(config_set_option(&c, "royalty_rate", "0", err, sizeof(err)), -EINVAL);
        assert_int_equal(config_set_option(&c, "royalty_rate", "1e-2", err, sizeof(err)), -EINVAL);
        assert_int_equal(c.royalty_rate_milli, 1);
        config_done(&c);
}

static void test_load__policy_keys__mime_list_and_rate_checked(void **state)
{
        struct config c;

        (void)state;
        assert_int_equal(config_init_defaults(&c), 0);
        assert_null(c.allowed_mime_types); /* off by default */
        assert_int_equal(c.requests_per_minute, 0);
        assert_int_equal(c.burst_size, 10);
        assert_int_equal(load_text(&c, "{\"allowed_mime_types\": [\"application/json\", "
                                       "\"text/*\"], \"requests_per_minute\": 30, "
                                       "\"burst_size\": 2}"),
                         0);
        assert_string_equal(c.allowed_mime_types, "application/json,text/*");
        assert_int_equal(c.requests_per_minute, 30);
        assert_int_equal(c.burst_size, 2);
        assert_int_equal(load_text(&c, "{\"allowed_mime_types\": [\"Text/Plain\"]}"), -EINVAL);
        assert_non_null(strstr(err, "'allowed_mime_types': 'Text/Plain' is not a MIME type"));
        assert_int_equal(load_text(&c, "{\"allowed_mime_types\": [\"a/*b\"]}"), -EINVAL);
        assert_int_equal(load_text(&c, "{\"allowed_mime_types\": [\"image\"]}"), -EINVAL);
        assert_int_equal(load_text(&c, "{\"allowed_mime_types\": [1]}"), -EINVAL);
        assert_non_null(strstr(err, "item 0"));
        assert_int_equal(load_text(&c, "{\"burst_size\": 0}"), -EINVAL);
        assert_int_equal(
                config_set_option(&c, "allowed_mime_types", "image/png,*", err, sizeof(err)), 0);
        assert_string_equal(c.allowed_mime_types, "image/png,*");
        assert_int_equal(config_set_option(&c, "allowed_mime_types", "off", err, sizeof(err)), 0);
        assert_null(c.allowed_mime_types);
        config_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults__local_node__valid),
                cmocka_unit_test(test_metrics_listen__default_off_and_bad__as_documented),
                cmocka_unit_test(test_load__all_types__applied),
                cmocka_unit_test(test_load__bad_input__names_key_and_file),
                cmocka_unit_test(test_load__bad_node_urls__refused_naming_key),
                cmocka_unit_test(test_load__first_byte_timeout__default_and_set),
                cmocka_unit_test(test_option__overrides__parsed_or_refused),
                cmocka_unit_test(test_validate__inconsistent__refused),
                cmocka_unit_test(test_load__prsm_keys__royalty_range_checked),
                cmocka_unit_test(test_load__policy_keys__mime_list_and_rate_checked),
                cmocka_unit_test(test_changed_keys__reload__names_what_differs),
                cmocka_unit_test(test_follow__names_and_interval__checked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
