/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The network engine: one thread owns a CURLM and every easy handle (curl forbids sharing a
 * handle between threads). Callers queue a transfer under a lock, wake the thread with
 * curl_multi_wakeup and wait on the transfer's condition variable; the thread adds it,
 * drives curl_multi_poll/perform, and completes it.
 *
 * Deadlines are the engine's job, with sub-second resolution: every loop (at most 20 ms of
 * poll) checks each transfer's overall deadline and its stall clock, and aborts a transfer
 * past its deadline. curl's own LOW_SPEED_TIME works in whole seconds and could not meet the
 * failover target. The stall clock has two limits: until the first byte of the answer arrives
 * (the node is looking for the block, or busy), first_byte_ns since the transfer got a
 * connection or last sent a byte; once the answer started, stall_ns between bytes. A stalled
 * transfer asks its owner (on_stall) whether to give up: the pool says no when no other node
 * could take the request, and the transfer then runs on until its deadline. A transfer that
 * waits for a free connection (the caps below) has not started: only its deadline runs, so a
 * busy pool is not mistaken for a dead node. "Started" is when curl opens a socket for it or
 * reuses one (PREREQFUNCTION).
 *
 * The body buffer is allocated once, at the size the answer's Content-Length gives (never
 * past max_body: a larger announced body is refused before a byte of it is stored) or else at
 * the caller's size hint, instead of growing from a few bytes by doubling.
 *
 * Connections are kept alive and reused by the multi handle's connection cache, capped in
 * total (connection_pool_size) and per node (connections_per_node, curl counts per
 * host:port). TLS peers and host names are always verified; ca_bundle only adds a CA file.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "prsmfs/parse.h"
#include "prsmfs/thread.h"

#include "transport.h"

#define POLL_MS         20
#define NET_RECV_BUFFER (256 * 1024) /* curl's receive buffer for block-sized bodies */

struct xfer {
        CURL *easy;
        struct curl_slist *headers;
        struct buf *body;
        size_t max_body;
        struct net_http_response *res;
        uint64_t stall_ns, first_byte_ns, deadline_ns; /* immutable once queued */
        uint64_t last_byte_ns;                         /* engine thread once queued */
        bool (*on_stall)(void *ud);
        void *stall_ud;
        size_t size_hint;
        int64_t content_length; /* engine thread: of the answer, -1 = not given */
        curl_off_t sent;        /* upload progress seen so far */
        const int *cancel;
        const int *abort;
        char errbuf[CURL_ERROR_SIZE];
        int result;     /* valid once done */
        bool done;      /* engine->lock */
        bool too_big;   /* engine thread */
        bool started;   /* engine thread: has a connection */
        bool responded; /* engine thread: a byte of the answer arrived */
        bool sized;     /* engine thread: the body buffer was sized */
        pthread_cond_t cond;
        struct xfer *next; /* queue or active list: engine thread / engine->lock */
};

struct net_engine {
        pthread_t thread;
        CURLM *multi;
        pthread_mutex_t lock; /* queue, stop, xfer->done */
        struct xfer *queue;   /* lock */
        bool stop;            /* lock */
        struct xfer *active;  /* engine thread only */
        char *ca_bundle;
        unsigned max_total, max_host;
};

uint64_t net_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int errno_from_curl(CURLcode c)
{
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                return -EACCES;
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        default:
                return -EIO;
        }
}

/* Sizes the body buffer once, before the first body bytes go in: false to refuse the body. */
static bool size_body(struct xfer *x)
{
        size_t want = x->size_hint;
        int r;

        x->sized = true;
        if (x->content_length >= 0) {
                if ((uint64_t)x->content_length > x->max_body) {
                        x->too_big = true; /* announced larger than allowed: not one byte */
                        return false;
                }
                want = (size_t)x->content_length;
        }
        want = MIN(want, x->max_body);
        r = want > x->body->len ? buf_reserve_exact(x->body, want - x->body->len) : 0;
        (void)r; /* out of memory here only means that the buffer grows as it fills */
        return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
        struct xfer *x = ud;
        size_t len = size * n;

        x->last_byte_ns = net_now_ns();
        x->responded = true;
        if (!x->sized && !size_body(x))
                return 0; /* aborts the transfer */
        if (x->body->len + len > x->max_body) {
                x->too_big = true;
                return 0; /* aborts the transfer */
        }
        if (buf_append(x->body, p, len) < 0)
                return 0;
        return len;
}

void net_header_parse(const char *p, size_t len, int64_t *content_length,
                      struct net_http_response *res)
{
        if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
                *content_length = -1; /* a new answer (after a 100 Continue, say) */
        } else if (len > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
                char v[24];
                size_t i = 15, j = 0;
                uint64_t cl;

                while (i < len && (p[i] == ' ' || p[i] == '\t'))
                        i++;
                while (i < len && p[i] >= '0' && p[i] <= '9' && j + 1 < sizeof(v))
                        v[j++] = p[i++];
                v[j] = '\0';
                /* unparsable or absurd: as if not given (the body is still capped) */
                if (j && parse_u64(v, &cl) >= 0 && cl <= INT64_MAX)
                        *content_length = (int64_t)cl;
        } else if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
                size_t i = 13, j = 0;

                while (i < len && (p[i] == ' ' || p[i] == '\t'))
                        i++;
                while (i < len && p[i] != '\r' && p[i] != '\n' && j + 1 < sizeof(res->content_type))
                        res->content_type[j++] = p[i++];
                res->content_type[j] = '\0';
        } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
                char v[32];
                size_t i = 12, j = 0;
                uint64_t s;

                while (i < len && p[i] == ' ')
                        i++;
                while (i < len && p[i] >= '0' && p[i] <= '9' && j + 1 < sizeof(v))
                        v[j++] = p[i++];
                v[j] = '\0';
                /* delta-seconds; an HTTP date is treated as "unknown" (backoff decides) */
                if (j && parse_u64(v, &s) >= 0 && s < 86400)
                        res->retry_after_ms = s * 1000;
        }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
        struct xfer *x = ud;
        size_t len = size * n;

        x->last_byte_ns = net_now_ns();
        x->responded = true;
        net_header_parse(p, len, &x->content_length, x->res);
        return len;
}

/* The transfer has a fresh socket: from now on its stall clock runs. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
        struct xfer *x = ud;

        (void)purpose;
        x->started = true;
        x->last_byte_ns = net_now_ns();
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Called once the connection is ready (new or reused), right before the request goes out. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
        struct xfer *x = ud;

        (void)conn_primary_ip;
        (void)conn_local_ip;
        (void)conn_primary_port;
        (void)conn_local_port;
        if (!x->started) {
                x->started = true;
                x->last_byte_ns = net_now_ns();
        }
        return CURL_PREREQFUNC_OK;
}

/* Bytes going out count as progress for the stall clock (a large block/put). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        struct xfer *x = ud;

        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        if (ulnow != x->sent) {
                x->sent = ulnow;
                x->last_byte_ns = net_now_ns();
        }
        return 0;
}

static void finish(struct net_engine *e, struct xfer *x, int result)
{
        if (x->easy) {
                long status = 0;

                (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
                x->res->status = status;
                if (result < 0 && x->errbuf[0])
                        (void)snprintf(x->res->error, sizeof(x->res->error), "%s", x->errbuf);
                curl_multi_remove_handle(e->multi, x->easy);
                curl_easy_cleanup(x->easy);
                x->easy = NULL;
        }
        pthread_mutex_lock(&e->lock);
        x->result = result;
        x->done = true;
        pthread_cond_signal(&x->cond);
        pthread_mutex_unlock(&e->lock);
}

static void unlink_active(struct net_engine *e, struct xfer *x)
{
        for (struct xfer **pp = &e->active; *pp; pp = &(*pp)->next)
                if (*pp == x) {
                        *pp = x->next;
                        return;
                }
}

static bool stalled(const struct xfer *x, uint64_t now)
{
        uint64_t limit = x->responded || !x->first_byte_ns ? x->stall_ns : x->first_byte_ns;

        return x->started && now - x->last_byte_ns >= limit;
}

/* A stalled transfer: whether its owner gives it up; if not, it is asked again after another
 * stall period (the answer changes as other nodes come and go). */
static bool gives_up(struct xfer *x, uint64_t now)
{
        if (!x->on_stall || x->on_stall(x->stall_ud))
                return true;
        x->last_byte_ns = now;
        return false;
}

static void *engine_thread(void *arg)
{
        struct net_engine *e = arg;

        thread_name("prsmfs-net");
        for (;;) {
                struct xfer *q, *x, *next;
                CURLMsg *msg;
                int running, left;
                uint64_t now;
                bool stop;

                pthread_mutex_lock(&e->lock);
                q = e->queue;
                e->queue = NULL;
                stop = e->stop;
                pthread_mutex_unlock(&e->lock);
                for (x = q; x; x = next) {
                        next = x->next;
                        if (stop || curl_multi_add_handle(e->multi, x->easy) != CURLM_OK) {
                                finish(e, x, stop ? -ECANCELED : -ENOMEM);
                                continue;
                        }
                        x->next = e->active;
                        e->active = x;
                }
                if (stop) {
                        for (x = e->active; x; x = next) {
                                next = x->next;
                                finish(e, x, -ECANCELED);
                        }
                        e->active = NULL;
                        return NULL;
                }
                (void)curl_multi_perform(e->multi, &running);
                while ((msg = curl_multi_info_read(e->multi, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
                        unlink_active(e, x);
                        finish(e, x, x->too_big ? -E2BIG : errno_from_curl(msg->data.result));
                }
                now = net_now_ns();
                for (x = e->active; x; x = next) {
                        next = x->next;
                        if ((x->cancel && __atomic_load_n(x->cancel, __ATOMIC_ACQUIRE)) ||
                            (x->abort && __atomic_load_n(x->abort, __ATOMIC_ACQUIRE))) {
                                unlink_active(e, x);
                                finish(e, x, -ECANCELED);
                        } else if (now >= x->deadline_ns || (stalled(x, now) && gives_up(x, now))) {
                                unlink_active(e, x);
                                finish(e, x, -ETIMEDOUT);
                        }
                }
                (void)curl_multi_poll(e->multi, NULL, 0, POLL_MS, NULL);
        }
}

int net_engine_new(const struct net_config *cfg, struct net_engine **ret)
{
        struct net_engine *e;
        int r;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        pthread_mutex_init(&e->lock, NULL);
        e->max_total = cfg->connection_pool_size ? cfg->connection_pool_size : 16;
        e->max_host =
                cfg->connections_per_node ? cfg->connections_per_node : MAX(2, e->max_total / 2);
        if (e->max_host > e->max_total)
                e->max_host = e->max_total;
        if (cfg->ca_bundle) {
                e->ca_bundle = strdup(cfg->ca_bundle);
                if (!e->ca_bundle) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        e->multi = curl_multi_init();
        if (!e->multi) {
                r = -ENOMEM;
                goto fail;
        }
        curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)e->max_total);
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->max_host);
        /* keep every allowed connection alive in the cache, not curl's default of fewer */
        curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)e->max_total);
        r = -pthread_create(&e->thread, NULL, engine_thread, e);
        if (r < 0)
                goto fail;
        *ret = e;
        return 0;
fail:
        if (e->multi)
                curl_multi_cleanup(e->multi);
        free(e->ca_bundle);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return r;
}

void net_engine_shutdown(struct net_engine *e)
{
        pthread_mutex_lock(&e->lock);
        __atomic_store_n(&e->stop, true, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&e->lock);
        curl_multi_wakeup(e->multi);
}

void net_engine_free(struct net_engine *e)
{
        if (!e)
                return;
        net_engine_shutdown(e);
        pthread_join(e->thread, NULL);
        curl_multi_cleanup(e->multi);
        pthread_mutex_destroy(&e->lock);
        free(e->ca_bundle);
        free(e);
}

static int engine_http(void *t, const struct net_http_request *req, struct buf *body,
                       struct net_http_response *res)
{
        struct net_engine *e = t;
        struct xfer x = { .body = body,
                          .max_body = req->max_body,
                          .res = res,
                          .stall_ns = req->stall_ns,
                          .first_byte_ns = req->first_byte_ns,
                          .on_stall = req->on_stall,
                          .stall_ud = req->stall_ud,
                          .size_hint = req->size_hint,
                          .content_length = -1,
                          .deadline_ns = req->deadline_ns,
                          .cancel = req->cancel,
                          .abort = req->abort };
        uint64_t now = net_now_ns();
        int r;

        *res = (struct net_http_response){ 0 };
        if (now >= req->deadline_ns)
                return -ETIMEDOUT;
        x.last_byte_ns = now;
        x.easy = curl_easy_init();
        if (!x.easy)
                return -ENOMEM;
        for (const char *const *h = req->headers; h && *h; h++) {
                struct curl_slist *n = curl_slist_append(x.headers, *h);

                if (!n) {
                        r = -ENOMEM;
                        goto out;
                }
                x.headers = n;
        }
        {
                /* curl waits for "100 Continue" on POST bodies otherwise */
                struct curl_slist *n = curl_slist_append(x.headers, "Expect:");

                if (!n) {
                        r = -ENOMEM;
                        goto out;
                }
                x.headers = n;
        }
        curl_easy_setopt(x.easy, CURLOPT_URL, req->url);
        curl_easy_setopt(x.easy, CURLOPT_PRIVATE, &x);
        curl_easy_setopt(x.easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x.easy, CURLOPT_ERRORBUFFER, x.errbuf);
        curl_easy_setopt(x.easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(x.easy, CURLOPT_HTTPHEADER, x.headers);
        curl_easy_setopt(x.easy, CURLOPT_WRITEFUNCTION, on_body);
        /* a block's body comes in a few large pieces rather than 64 of curl's default 16 KiB:
         * fewer recv calls, polls and callbacks per block (about an eighth of the daemon's CPU
         * per cold GiB, docs/bench-notes.md) */
        if (req->max_body >= NET_RECV_BUFFER)
                curl_easy_setopt(x.easy, CURLOPT_BUFFERSIZE, (long)NET_RECV_BUFFER);
        curl_easy_setopt(x.easy, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(x.easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(x.easy, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(x.easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(x.easy, CURLOPT_OPENSOCKETDATA, &x);
        curl_easy_setopt(x.easy, CURLOPT_PREREQFUNCTION, on_prereq);
        curl_easy_setopt(x.easy, CURLOPT_PREREQDATA, &x);
        curl_easy_setopt(x.easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(x.easy, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(x.easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(x.easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(x.easy, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(x.easy, CURLOPT_PROTOCOLS_STR, "http,https");
        if (e->ca_bundle)
                curl_easy_setopt(x.easy, CURLOPT_CAINFO, e->ca_bundle);
        if (req->post || req->body) {
                /* curl reads the body from our buffer as it sends (no copy): the caller's
                 * buffer outlives the transfer because this call blocks until it is done */
                curl_easy_setopt(x.easy, CURLOPT_POST, 1L);
                curl_easy_setopt(x.easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
                curl_easy_setopt(x.easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)(req->body ? req->body_len : 0));
        }
        if (req->method)
                curl_easy_setopt(x.easy, CURLOPT_CUSTOMREQUEST, req->method);
        pthread_cond_init(&x.cond, NULL);
        pthread_mutex_lock(&e->lock);
        if (e->stop) {
                pthread_mutex_unlock(&e->lock);
                pthread_cond_destroy(&x.cond);
                r = -ECANCELED;
                goto out;
        }
        x.next = e->queue;
        e->queue = &x;
        pthread_mutex_unlock(&e->lock);
        curl_multi_wakeup(e->multi);
        /* the engine completes every transfer by its deadline, or on shutdown */
        pthread_mutex_lock(&e->lock);
        while (!x.done)
                pthread_cond_wait(&x.cond, &e->lock);
        pthread_mutex_unlock(&e->lock);
        pthread_cond_destroy(&x.cond);
        r = x.result;
out:
        if (x.easy)
                curl_easy_cleanup(x.easy);
        curl_slist_free_all(x.headers);
        return r;
}

static uint64_t engine_now(void *t)
{
        (void)t;
        return net_now_ns();
}

/* Sleeps in slices of at most 50 ms so that a shutdown ends a backoff quickly; an early
 * wake-up just means an earlier retry. */
static void engine_sleep_until(void *t, uint64_t ns)
{
        struct net_engine *e = t;

        for (;;) {
                uint64_t now = net_now_ns(), left;
                struct timespec ts;

                if (ns <= now || __atomic_load_n(&e->stop, __ATOMIC_RELAXED))
                        return;
                left = MIN(ns - now, 50000000ull);
                ts = (struct timespec){ .tv_nsec = (long)left };
                (void)nanosleep(&ts, NULL);
        }
}

static uint64_t engine_random(void *t)
{
        static __thread uint64_t s;

        (void)t;
        if (!s)
                s = net_now_ns() | 1;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
}

const struct net_transport_ops net_engine_ops = {
        .http = engine_http,
        .now_ns = engine_now,
        .sleep_until = engine_sleep_until,
        .random = engine_random,
};
