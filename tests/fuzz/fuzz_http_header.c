/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP answer header lines as curl hands them to the engine (net_header_parse): the input as
 * one line, then split after each '\n' into lines fed in order against one state, as the lines
 * of one answer (or of a 100 Continue and its answer) arrive. Whatever comes, the body size
 * stays "not given" (-1) or a size, a Retry-After stays below one day, and the Content-Type is
 * NUL-terminated inside its array. Aborts on a violated invariant.
 */
#include <stdlib.h>
#include <string.h>

#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int64_t content_length, const struct net_http_response *res)
{
        if (content_length < -1 || res->retry_after_ms >= 86400000 ||
            memchr(res->content_type, '\0', sizeof(res->content_type)) == NULL)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data;
        struct net_http_response res = { 0 };
        int64_t content_length = -1;
        size_t pos = 0;

        net_header_parse(p, size, &content_length, &res);
        check(content_length, &res);
        res = (struct net_http_response){ 0 };
        content_length = -1;
        while (pos < size) {
                const char *nl = memchr(p + pos, '\n', size - pos);
                size_t len = nl ? (size_t)(nl - (p + pos)) + 1 : size - pos;

                net_header_parse(p + pos, len, &content_length, &res);
                check(content_length, &res);
                pos += len;
        }
        return 0;
}
