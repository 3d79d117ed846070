/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl prefetch: starts a warm-up job in the daemon and polls its progress until it ends
 * (the daemon runs it on its own threads: the control socket is held for one short request
 * at a time). On a terminal a progress bar with bytes, rate and ETA is redrawn in place; when
 * stdout is not a terminal a plain line is printed every second; --json prints only the final
 * status object. The exit status is 1 when any block could not be fetched (each failed file
 * is named on stderr), 0 otherwise.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prsmctl.h"

#define POLL_MS        200
#define PLAIN_EVERY_MS 1000

static uint64_t num(json_t *o, const char *key)
{
        json_int_t v = json_integer_value(json_object_get(o, key));

        return v > 0 ? (uint64_t)v : 0;
}

static void human(uint64_t bytes, char *buf, size_t size)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double)bytes;
        size_t u = 0;

        while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024;
                u++;
        }
        (void)snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "12.0 MiB / 64.0 MiB (18%), 3/5 files, 45.1 MiB/s, ETA 1s" */
static void progress_text(json_t *st, char *buf, size_t size)
{
        uint64_t total = num(st, "bytes_total"), done = num(st, "bytes_done");
        uint64_t fetched = num(st, "bytes_fetched"), ms = num(st, "elapsed_ms");
        double rate = ms ? (double)fetched * 1000.0 / (double)ms : 0;
        char d[32], t[32], r[32], eta[32];

        human(done, d, sizeof(d));
        human(total, t, sizeof(t));
        human((uint64_t)rate, r, sizeof(r));
        if (json_is_true(json_object_get(st, "done")))
                (void)snprintf(eta, sizeof(eta), "done");
        else if (rate > 0 && total >= done)
                (void)snprintf(eta, sizeof(eta), "ETA %.0fs", (double)(total - done) / rate);
        else
                (void)snprintf(eta, sizeof(eta), "ETA --");
        (void)snprintf(buf, size, "%s / %s (%u%%), %llu/%llu files%s, %s/s, %s", d, t,
                       total ? (unsigned)(done * 100 / total) : 100,
                       (unsigned long long)num(st, "files_done"),
                       (unsigned long long)num(st, "files"),
                       json_is_true(json_object_get(st, "walking")) ? "+" : "", r, eta);
}

static void draw_bar(json_t *st)
{
        uint64_t total = num(st, "bytes_total"), done = num(st, "bytes_done");
        unsigned width = 30, filled = total ? (unsigned)(done * width / total) : width;
        char bar[64], text[256];

        for (unsigned i = 0; i < width; i++)
                bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        progress_text(st, text, sizeof(text));
        printf("\r\033[K[%s] %s", bar, text);
        fflush(stdout);
}

static void print_summary(json_t *st, const char *mode)
{
        char c[32], t[32], f[32];
        uint64_t total = num(st, "bytes_total"), cached = num(st, "bytes_cached");
        double secs = (double)num(st, "elapsed_ms") / 1000.0;

        human(cached, c, sizeof(c));
        human(total, t, sizeof(t));
        human(num(st, "bytes_fetched"), f, sizeof(f));
        if (strcmp(mode, "check") == 0)
                printf("cached: %s of %s (%u%%), %llu of %llu blocks, %llu files\n", c, t,
                       total ? (unsigned)(cached * 100 / total) : 100,
                       (unsigned long long)num(st, "blocks_cached"),
                       (unsigned long long)num(st, "blocks_total"),
                       (unsigned long long)num(st, "files"));
        else if (strcmp(mode, "evict") == 0)
                printf("evicted: %llu blocks of %llu files (%s of %s were cached)\n",
                       (unsigned long long)num(st, "blocks_evicted"),
                       (unsigned long long)num(st, "files"), c, t);
        else
                printf("prefetched: %llu files, %s: %s fetched, %s already cached, in %.1f s\n",
                       (unsigned long long)num(st, "files"), t, f, c, secs);
}

/* The paths as the daemon takes them, from the mount root; finds the socket unless given. */
static json_t *paths_json(char *sock, size_t sock_size, int n, char **paths)
{
        json_t *list = json_array();
        bool given = sock[0] != '\0';
        char first[PATH_MAX] = "";

        for (int i = 0; list && i < n; i++) {
                char real[PATH_MAX], root[PATH_MAX], s[PATH_MAX];

                if (given) {
                        (void)json_array_append_new(list, json_string(paths[i]));
                        continue;
                }
                if (!realpath(paths[i], real)) {
                        fprintf(stderr, "prsmctl: prefetch: %s: %m\n", paths[i]);
                        goto fail;
                }
                if (find_socket_root(real, s, sizeof(s), root) < 0)
                        goto fail;
                if (first[0] && strcmp(first, s) != 0) {
                        fprintf(stderr, "prsmctl: prefetch: %s is in another mount\n", paths[i]);
                        goto fail;
                }
                (void)snprintf(first, sizeof(first), "%s", s);
                (void)json_array_append_new(list, json_string(real + strlen(root)));
        }
        if (!given)
                (void)snprintf(sock, sock_size, "%s", first);
        if (list && json_array_size(list) == (size_t)n)
                return list;
fail:
        json_decref(list);
        return NULL;
}

int prsmctl_prefetch(char *sock, size_t sock_size, int n, char **paths, bool json, const char *mode)
{
        bool tty = !json && isatty(STDOUT_FILENO);
        json_t *list, *req, *reply, *st = NULL;
        uint64_t last_plain = now_ms();
        json_int_t id;
        int ret = 1;

        if (n <= 0) {
                fprintf(stderr, "prsmctl: prefetch: no PATH given\n");
                return 2;
        }
        list = paths_json(sock, sock_size, n, paths);
        if (!list)
                return 1;
        req = json_pack("{s:s, s:o, s:s}", "cmd", "prefetch", "paths", list, "mode", mode);
        reply = req ? call(sock, req) : NULL;
        json_decref(req);
        if (!reply)
                return 1;
        if (!json_is_true(json_object_get(reply, "ok"))) {
                fprintf(stderr, "prsmctl: prefetch: %s\n",
                        json_string_value(json_object_get(reply, "error")));
                json_decref(reply);
                return 1;
        }
        id = json_integer_value(json_object_get(reply, "id"));
        json_decref(reply);
        for (;;) {
                req = json_pack("{s:s, s:I}", "cmd", "prefetch_status", "id", id);
                json_decref(st);
                st = req ? call(sock, req) : NULL;
                json_decref(req);
                if (!st || !json_is_true(json_object_get(st, "ok"))) {
                        if (st)
                                fprintf(stderr, "prsmctl: prefetch: %s\n",
                                        json_string_value(json_object_get(st, "error")));
                        goto out;
                }
                if (tty)
                        draw_bar(st);
                else if (!json && now_ms() - last_plain >= PLAIN_EVERY_MS &&
                         !json_is_true(json_object_get(st, "done"))) {
                        char text[256];

                        progress_text(st, text, sizeof(text));
                        printf("prefetch: %s\n", text);
                        fflush(stdout);
                        last_plain = now_ms();
                }
                if (json_is_true(json_object_get(st, "done")))
                        break;
                (void)usleep(POLL_MS * 1000);
        }
        if (tty)
                putchar('\n');
        if (json) {
                json_object_del(st, "ok");
                json_dumpf(st, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                fputc('\n', stdout);
        } else
                print_summary(st, mode);
        {
                json_t *errors = json_object_get(st, "errors"), *e;
                uint64_t count = num(st, "errors_count");
                size_t i;

                json_array_foreach(errors, i, e)
                        fprintf(stderr, "prsmctl: prefetch: %s: %s\n",
                                json_string_value(json_object_get(e, "path")),
                                json_string_value(json_object_get(e, "error")));
                if (count > json_array_size(errors))
                        fprintf(stderr, "prsmctl: prefetch: and %llu more files failed\n",
                                (unsigned long long)(count - json_array_size(errors)));
                ret = count ? 1 : 0;
        }
out:
        json_decref(st);
        return ret;
}
