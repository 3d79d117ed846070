/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HTTP endpoint: libmicrohttpd with one thread per connection (at most 16), so that a slow
 * scrape (the index's totals are an SQLite query) never delays /health. The listening socket
 * is bound here, not by libmicrohttpd, so that a port another mount already holds is reported
 * as -EADDRINUSE to the caller, who keeps mounting without metrics.
 *
 * GET and HEAD of /metrics (Prometheus text, gzip when the scraper accepts it) and /health
 * (JSON, 200 or 503); 404 for other paths, 405 for other methods.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "prsmfs/metrics.h"

#define MAX_CONNECTIONS   16
#define CONN_TIMEOUT_S    10
#define MAX_ANSWER        (64u << 20)
#define METRICS_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_server {
        struct MHD_Daemon *mhd;
        int fd;
        unsigned port;
        metrics_render_fn render;
        metrics_health_fn health;
        void *userdata;
};

int metrics_parse_listen(const char *listen, void *ret_sockaddr, unsigned *ret_len,
                         bool *ret_is_loopback)
{
        char host[64];
        const char *colon, *h;
        size_t hlen;
        uint64_t port = 0;

        if (!listen || !*listen)
                return -EINVAL;
        if (listen[0] == '[') {
                const char *end = strchr(listen, ']');

                if (!end || end[1] != ':')
                        return -EINVAL;
                h = listen + 1;
                hlen = (size_t)(end - h);
                colon = end + 1;
        } else {
                colon = strrchr(listen, ':');
                if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
                        return -EINVAL; /* IPv6 needs brackets */
                h = listen;
                hlen = (size_t)(colon - listen);
        }
        if (hlen == 0 || hlen >= sizeof(host) || !colon[1] || strlen(colon + 1) > 5 ||
            colon[1 + strspn(colon + 1, "0123456789")] != '\0')
                return -EINVAL;
        for (const char *c = colon + 1; *c; c++)
                port = port * 10 + (uint64_t)(*c - '0');
        if (port > 65535)
                return -EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        if (strcmp(host, "localhost") == 0)
                memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
        if (listen[0] == '[') {
                struct sockaddr_in6 *a = ret_sockaddr;

                *a = (struct sockaddr_in6){ .sin6_family = AF_INET6,
                                            .sin6_port = htons((uint16_t)port) };
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
                *ret_is_loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        } else {
                struct sockaddr_in *a = ret_sockaddr;

                *a = (struct sockaddr_in){ .sin_family = AF_INET,
                                           .sin_port = htons((uint16_t)port) };
                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
                *ret_is_loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        }
        return 0;
}

/* Whether an Accept-Encoding value lists gzip without q=0. */
static bool accepts_gzip(const char *v)
{
        while (v && *v) {
                size_t n;

                v += strspn(v, " \t,");
                n = strcspn(v, ",");
                if (n >= 4 && strncasecmp(v, "gzip", 4) == 0 &&
                    (n == 4 || v[4] == ';' || v[4] == ' ')) {
                        const char *q = memchr(v, '=', n);

                        return !(q && q - v >= 2 && (q[-1] == 'q' || q[-1] == 'Q') &&
                                 strspn(q + 1, "0.") >= n - (size_t)(q + 1 - v));
                }
                v += n;
        }
        return false;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
                              struct buf *body, bool gzip)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;
        uint8_t *p;
        size_t len;

        p = buf_steal(body, &len);
        resp = MHD_create_response_from_buffer(len, p ? p : (uint8_t *)"",
                                               p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                free(p);
                return MHD_NO;
        }
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (gzip)
                (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result plain(struct MHD_Connection *conn, unsigned status, const char *text)
{
        struct buf b;

        buf_init(&b, 4096);
        if (buf_append(&b, text, strlen(text)) < 0) {
                buf_done(&b);
                return MHD_NO;
        }
        return answer(conn, status, "text/plain; charset=utf-8", &b, false);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
        struct metrics_server *s = cls;
        enum MHD_Result ret;
        struct buf b, z;
        int r;

        (void)version;
        (void)upload_data;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return plain(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        if (!*req_cls) { /* the headers are in; answer on the next call, as MHD wants */
                *req_cls = s;
                return MHD_YES;
        }
        if (*upload_data_size)
                return plain(conn, MHD_HTTP_BAD_REQUEST, "no body expected\n");
        buf_init(&b, MAX_ANSWER);
        if (strcmp(url, "/health") == 0) {
                r = s->health(&b, s->userdata);
                if (r < 0) {
                        buf_done(&b);
                        return plain(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render\n");
                }
                return answer(conn, (unsigned)r, "application/json", &b, false);
        }
        if (strcmp(url, "/metrics") != 0) {
                buf_done(&b);
                return plain(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /health\n");
        }
        r = s->render(&b, s->userdata);
        if (r < 0) {
                buf_done(&b);
                return plain(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render\n");
        }
        if (!accepts_gzip(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_ACCEPT_ENCODING)))
                return answer(conn, MHD_HTTP_OK, METRICS_TEXT_TYPE, &b, false);
        buf_init(&z, MAX_ANSWER);
        r = metrics_gzip(b.p, b.len, &z);
        if (r < 0) { /* the plain text still answers */
                buf_done(&z);
                return answer(conn, MHD_HTTP_OK, METRICS_TEXT_TYPE, &b, false);
        }
        buf_done(&b);
        ret = answer(conn, MHD_HTTP_OK, METRICS_TEXT_TYPE, &z, true);
        return ret;
}

int metrics_server_start(const struct metrics_server_config *cfg, struct metrics_server **ret)
{
        struct sockaddr_storage sa;
        socklen_t salen;
        unsigned len = 0;
        bool loopback;
        struct metrics_server *s;
        int one = 1, r;

        r = metrics_parse_listen(cfg->listen, &sa, &len, &loopback);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct metrics_server){
                .fd = -1, .render = cfg->render, .health = cfg->health, .userdata = cfg->userdata
        };
        s->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(s->fd, (struct sockaddr *)&sa, len) < 0 || listen(s->fd, 16) < 0) {
                r = -errno;
                goto fail;
        }
        salen = sizeof(sa);
        if (getsockname(s->fd, (struct sockaddr *)&sa, &salen) < 0) {
                r = -errno;
                goto fail;
        }
        s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
        s->mhd = MHD_start_daemon(
                MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                        (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S, MHD_OPTION_END);
        if (!s->mhd) {
                r = -EIO;
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        if (s->fd >= 0)
                close(s->fd);
        free(s);
        return r;
}

unsigned metrics_server_port(const struct metrics_server *s)
{
        return s->port;
}

void metrics_server_stop(struct metrics_server *s)
{
        if (!s)
                return;
        MHD_stop_daemon(s->mhd); /* joins its threads; the socket is ours to close */
        close(s->fd);
        free(s);
}
