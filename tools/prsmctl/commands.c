/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl's commands, one function each (the table is in prsmctl.c). Each parses its own argv
 * with ctl_getopt, finds the daemon from a path in the mount, sends one request and prints
 * the reply: JSON with --json (or when stdout is not a terminal, for status, uploads and
 * stats), words and tables otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/parse.h"

#include "prsmctl.h"

#define MAX_OPERANDS 4

/* Options and operands of a command with no options of its own (or the given ones, whose
 * values go to on_opt). Fills ops (up to max); returns 0, or the exit status (2) after the
 * usage line. */
static int operands(struct ctl *ctl, int argc, char **argv, const char **ops, int min, int max,
                    int *ret_n)
{
        int n = 0, c;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, NULL)) != -1) {
                if (c != CTL_OPERAND || n >= max)
                        return ctl_usage(argv[0]);
                ops[n++] = optarg;
        }
        if (n < min)
                return ctl_usage(argv[0]);
        *ret_n = n;
        return 0;
}

/* A command whose only operand is [PATH]: sends {"cmd": cmd} to the daemon there. Returns
 * the reply, or NULL with the exit status in *ret_status. */
static json_t *path_request(struct ctl *ctl, int argc, char **argv, const char *cmd,
                            int *ret_status)
{
        const char *ops[1] = { "." };
        json_t *r;
        int n;

        *ret_status = operands(ctl, argc, argv, ops, 0, 1, &n);
        if (*ret_status)
                return NULL;
        *ret_status = 1;
        if (ctl_find(ctl, ops[0]) < 0)
                return NULL;
        r = ctl_request(ctl, json_pack("{s:s}", "cmd", cmd));
        if (r)
                *ret_status = 0;
        return r;
}

static json_int_t jint(json_t *o, const char *path)
{
        char key[64];
        const char *dot;

        while ((dot = strchr(path, '.'))) {
                (void)snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
                o = json_object_get(o, key);
                path = dot + 1;
        }
        return json_integer_value(json_object_get(o, path));
}

static const char *jstr(json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "-";
}

/* "1.5 GiB" */
static const char *human_bytes(double b, char *buf, size_t size)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        size_t u = 0;

        while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
                b /= 1024;
                u++;
        }
        (void)snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", b, units[u]);
        return buf;
}

/* ---- status ---- */

/* A follow mount's line: the name, the root shown, the last resolve and its error. */
static void print_follow(json_t *f)
{
        const char *root = json_string_value(json_object_get(f, "root"));
        const char *err = json_string_value(json_object_get(f, "last_error"));
        time_t last = (time_t)jint(f, "last_resolve");
        char when[64] = "never";
        struct tm tm;

        if (!json_is_object(f))
                return;
        if (last && localtime_r(&last, &tm))
                (void)strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        printf("follow    %s every %.1f s: root %s; last resolve %s%s%s\n", jstr(f, "name"),
               json_real_value(json_object_get(f, "interval")), root ? root : "(none yet)", when,
               err ? ", failed: " : "", err ? err : "");
}

static void print_status(json_t *r)
{
        json_t *stats = json_object_get(r, "stats"), *cache = json_object_get(r, "cache");
        json_t *up = json_object_get(r, "uploads"), *pins = json_object_get(stats, "pins");
        json_t *nodes = json_object_get(stats, "nodes"), *n;
        json_int_t hits = jint(cache, "hits"), misses = jint(cache, "misses");
        char a[32], b[32];
        size_t i;

        printf("prsmfs %s on %s\n", jstr(r, "version"), jstr(r, "mountpoint"));
        printf("state     %s\n", jstr(r, "state_dir"));
        printf("tree      %" JSON_INTEGER_FORMAT " inodes, %s\n", jint(r, "inodes"),
               human_bytes((double)jint(r, "bytes"), a, sizeof(a)));
        printf("nodes     %-40s %-9s %10s %9s %7s\n", "URL", "STATE", "LATENCY", "REQUESTS",
               "ERRORS");
        json_array_foreach(nodes, i, n)
        {
                printf("          %-40s %-9s %7.1f ms %9" JSON_INTEGER_FORMAT
                       " %7" JSON_INTEGER_FORMAT "\n",
                       jstr(n, "url"), jstr(n, "state_name"),
                       json_real_value(json_object_get(n, "latency_ms")), jint(n, "requests"),
                       jint(n, "errors"));
        }
        if (json_is_object(cache))
                printf("cache     %s of %s in %s%s; %" JSON_INTEGER_FORMAT
                       " hits, %" JSON_INTEGER_FORMAT " misses (%.0f%% hits), %" JSON_INTEGER_FORMAT
                       " evictions\n",
                       human_bytes((double)jint(cache, "bytes"), a, sizeof(a)),
                       human_bytes((double)jint(cache, "max_bytes"), b, sizeof(b)),
                       jstr(cache, "dir"),
                       json_is_true(json_object_get(cache, "enabled")) ? "" : " (disabled)", hits,
                       misses, hits + misses ? 100.0 * (double)hits / (double)(hits + misses) : 0.0,
                       jint(cache, "evictions"));
        if (json_is_object(up))
                printf("uploads   %" JSON_INTEGER_FORMAT " pending, %" JSON_INTEGER_FORMAT
                       " running, %" JSON_INTEGER_FORMAT " failed (retrying)\n",
                       jint(up, "pending"), jint(up, "running"), jint(up, "failed"));
        if (json_is_object(pins))
                printf("pins      %" JSON_INTEGER_FORMAT " held, %" JSON_INTEGER_FORMAT
                       " unpins owed, %" JSON_INTEGER_FORMAT " failures\n",
                       jint(pins, "held"), jint(pins, "owed"), jint(pins, "failures"));
        print_follow(json_object_get(r, "follow"));
}

int ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
{
        int ret;
        json_t *r = path_request(ctl, argc, argv, "status", &ret);

        if (!r)
                return ret;
        if (ctl_is_json(ctl))
                ctl_print_json(r);
        else
                print_status(r);
        json_decref(r);
        return 0;
}

/* ---- uploads ---- */

static void print_uploads(json_t *r)
{
        json_t *list = json_object_get(r, "uploads"), *e;
        size_t i;

        if (!json_array_size(list)) {
                printf("no uploads pending\n");
                return;
        }
        printf("%-8s %-8s %6s %9s %-28s %-24s %s\n", "ID", "STATE", "FAILED", "RETRY-IN", "NODE",
               "REASON", "STAGING FILE");
        json_array_foreach(list, i, e)
        {
                char retry[32] = "-";

                if (jint(e, "retry_in_ms"))
                        (void)snprintf(retry, sizeof(retry), "%.1f s",
                                       (double)jint(e, "retry_in_ms") / 1000);
                printf("%-8" JSON_INTEGER_FORMAT " %-8s %6" JSON_INTEGER_FORMAT
                       " %9s %-28s %-24s %s\n",
                       jint(e, "id"), jstr(e, "state"), jint(e, "failed_attempts"), retry,
                       *jstr(e, "node") ? jstr(e, "node") : "-", jstr(e, "reason"),
                       jstr(e, "path"));
        }
}

/* "uploads [PATH]", "uploads retry [ID] [PATH]" or "uploads forget ID [PATH]" */
int ctl_cmd_uploads(struct ctl *ctl, int argc, char **argv)
{
        const char *ops[3] = { NULL }, *sub = NULL, *path = ".";
        json_t *req, *r;
        int n = 0, ret = operands(ctl, argc, argv, ops, 0, 3, &n);
        uint64_t id = 0;

        if (ret)
                return ret;
        if (n > 0 && (!strcmp(ops[0], "retry") || !strcmp(ops[0], "forget")))
                sub = ops[0];
        if (!sub && n > 1)
                return ctl_usage(argv[0]);
        if (!sub && n == 1)
                path = ops[0];
        if (sub && n >= 2 && !(ops[1][0] >= '0' && ops[1][0] <= '9')) {
                if (n == 3)
                        return ctl_usage(argv[0]);
                path = ops[1]; /* "retry PATH": every waiting upload */
                ops[1] = NULL;
        } else if (n == 3)
                path = ops[2];
        if (sub && ops[1] && (parse_u64(ops[1], &id) < 0 || id == 0 || id > INT64_MAX)) {
                fprintf(stderr, "prsmctl: uploads %s: not an upload id: '%s'\n", sub, ops[1]);
                return 2;
        }
        if (sub && !strcmp(sub, "forget") && !ops[1])
                return ctl_usage(argv[0]);
        if (!sub)
                req = json_pack("{s:s}", "cmd", "uploads");
        else if (!strcmp(sub, "forget"))
                req = json_pack("{s:s, s:I}", "cmd", "uploads_forget", "id", (json_int_t)id);
        else
                req = ops[1] ? json_pack("{s:s, s:I}", "cmd", "uploads_retry", "id", (json_int_t)id)
                             : json_pack("{s:s}", "cmd", "uploads_retry");
        if (ctl_find(ctl, path) < 0) {
                json_decref(req);
                return 1;
        }
        r = ctl_request(ctl, req);
        if (!r)
                return 1;
        if (ctl_is_json(ctl))
                ctl_print_json(r);
        else if (!sub)
                print_uploads(r);
        else if (!strcmp(sub, "retry"))
                printf("%" JSON_INTEGER_FORMAT " upload(s) retrying now\n", jint(r, "retried"));
        else
                printf("upload %" PRIu64 " forgotten: its file keeps its content on this machine "
                       "only, until it is written again\n",
                       id);
        json_decref(r);
        return 0;
}

/* ---- stats ---- */

struct sample {
        json_int_t reads, read_bytes, fetches, hits, misses, puts, put_bytes, failures;
        json_int_t pending, running, failed;
};

static int sample(struct ctl *ctl, struct sample *s)
{
        json_t *r = ctl_request(ctl, json_pack("{s:s}", "cmd", "status"));
        json_t *st;

        if (!r)
                return -1;
        st = json_object_get(r, "stats");
        *s = (struct sample){
                .reads = jint(st, "fs.reads"),
                .read_bytes = jint(st, "fs.read_bytes"),
                .fetches = jint(st, "net.fetches"),
                .hits = jint(st, "store.mem_hits") + jint(st, "store.disk_hits"),
                .misses = jint(st, "store.fetches"),
                .puts = jint(st, "net.puts"),
                .put_bytes = jint(st, "net.put_bytes"),
                .failures = jint(st, "net.failures"),
                .pending = jint(r, "uploads.pending"),
                .running = jint(r, "uploads.running"),
                .failed = jint(r, "uploads.failed"),
        };
        json_decref(r);
        return 0;
}

int ctl_cmd_stats(struct ctl *ctl, int argc, char **argv)
{
        static const struct option opts[] = {
                { "count", required_argument, NULL, 'c' },
                { "interval", required_argument, NULL, 'i' },
                { 0 },
        };
        const char *path = ".";
        uint64_t count = 0, interval_ms = 1000; /* count 0: until interrupted */
        struct sample prev, cur;
        int c;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == 'c') {
                        if (parse_u64(optarg, &count) < 0 || count < 1) {
                                fprintf(stderr, "prsmctl: stats: --count: not a count: '%s'\n",
                                        optarg);
                                return 2;
                        }
                } else if (c == 'i') {
                        if (parse_duration_ms(optarg, &interval_ms) < 0 || interval_ms < 100 ||
                            interval_ms > 3600 * 1000) {
                                fprintf(stderr,
                                        "prsmctl: stats: --interval: not 0.1..3600 seconds: "
                                        "'%s'\n",
                                        optarg);
                                return 2;
                        }
                } else if (c == CTL_OPERAND && !strcmp(path, "."))
                        path = optarg;
                else
                        return ctl_usage(argv[0]);
        }
        if (ctl_find(ctl, path) < 0 || sample(ctl, &prev) < 0)
                return 1;
        if (!ctl_is_json(ctl))
                printf("%8s %10s %8s %7s %8s %10s %8s %7s %7s %6s\n", "reads/s", "read/s",
                       "fetch/s", "hit%", "puts/s", "sent/s", "errors/s", "pending", "running",
                       "failed");
        for (uint64_t i = 0; !count || i < count; i++) {
                struct timespec ts = { .tv_sec = (time_t)(interval_ms / 1000),
                                       .tv_nsec = (long)(interval_ms % 1000) * 1000000L };
                double interval = (double)interval_ms / 1000;
                json_int_t h, m;
                char a[32], b[32];

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                if (sample(ctl, &cur) < 0)
                        return 1;
                h = cur.hits - prev.hits;
                m = cur.misses - prev.misses;
                if (ctl_is_json(ctl)) {
                        json_t *o = json_pack(
                                "{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I}", "reads",
                                (double)(cur.reads - prev.reads) / interval, "read_bytes",
                                (double)(cur.read_bytes - prev.read_bytes) / interval, "fetches",
                                (double)(cur.fetches - prev.fetches) / interval, "hit_ratio",
                                h + m ? (double)h / (double)(h + m) : 0.0, "puts",
                                (double)(cur.puts - prev.puts) / interval, "put_bytes",
                                (double)(cur.put_bytes - prev.put_bytes) / interval, "errors",
                                (double)(cur.failures - prev.failures) / interval,
                                "uploads_pending", cur.pending, "uploads_running", cur.running,
                                "uploads_failed", cur.failed);

                        if (o)
                                json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
                        json_decref(o);
                        fputc('\n', stdout);
                } else
                        printf("%8.1f %10s %8.1f %6.0f%% %8.1f %10s %8.1f %7" JSON_INTEGER_FORMAT
                               " %7" JSON_INTEGER_FORMAT " %6" JSON_INTEGER_FORMAT "\n",
                               (double)(cur.reads - prev.reads) / interval,
                               human_bytes((double)(cur.read_bytes - prev.read_bytes) / interval, a,
                                           sizeof(a)),
                               (double)(cur.fetches - prev.fetches) / interval,
                               h + m ? 100.0 * (double)h / (double)(h + m) : 0.0,
                               (double)(cur.puts - prev.puts) / interval,
                               human_bytes((double)(cur.put_bytes - prev.put_bytes) / interval, b,
                                           sizeof(b)),
                               (double)(cur.failures - prev.failures) / interval, cur.pending,
                               cur.running, cur.failed);
                fflush(stdout);
                prev = cur;
        }
        return 0;
}

/* ---- cache ---- */

int ctl_cmd_cache(struct ctl *ctl, int argc, char **argv)
{
        static const struct option opts[] = {
                { "target", required_argument, NULL, 't' },
                { 0 },
        };
        const char *sub = NULL, *path = ".";
        uint64_t target = 0;
        bool has_target = false;
        json_t *req, *r, *cache;
        int c;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == 't' && parse_size(optarg, &target) == 0 && target <= INT64_MAX) {
                        has_target = true;
                        continue;
                }
                if (c == 't') {
                        fprintf(stderr, "prsmctl: cache gc: --target: not a size: '%s'\n", optarg);
                        return 2;
                }
                if (c != CTL_OPERAND)
                        return ctl_usage(argv[0]);
                if (!sub)
                        sub = optarg;
                else if (!strcmp(path, "."))
                        path = optarg;
                else
                        return ctl_usage(argv[0]);
        }
        if (!sub ||
            (strcmp(sub, "stats") != 0 && strcmp(sub, "gc") != 0 && strcmp(sub, "verify") != 0) ||
            (has_target && strcmp(sub, "gc") != 0))
                return ctl_usage(argv[0]);
        if (ctl_find(ctl, path) < 0)
                return 1;
        if (!strcmp(sub, "stats"))
                req = json_pack("{s:s}", "cmd", "status");
        else if (!strcmp(sub, "verify"))
                req = json_pack("{s:s}", "cmd", "cache_verify");
        else if (has_target)
                req = json_pack("{s:s, s:I}", "cmd", "cache_gc", "target", (json_int_t)target);
        else
                req = json_pack("{s:s}", "cmd", "cache_gc");
        /* verify reads all of the cache: as long as it takes, unless --timeout */
        r = !strcmp(sub, "verify") && ctl->timeout_ms < 0 ? ctl_request_timeout(ctl, req, 0)
                                                          : ctl_request(ctl, req);
        if (!r)
                return 1;
        cache = !strcmp(sub, "stats") ? json_object_get(r, "cache") : r;
        if (ctl_is_json(ctl))
                ctl_print_json(cache);
        else if (!strcmp(sub, "stats")) {
                char a[32], b[32];

                printf("%s of %s in %s%s\nhits %" JSON_INTEGER_FORMAT
                       " misses %" JSON_INTEGER_FORMAT " evictions %" JSON_INTEGER_FORMAT
                       " put errors %" JSON_INTEGER_FORMAT "\n",
                       human_bytes((double)jint(cache, "bytes"), a, sizeof(a)),
                       human_bytes((double)jint(cache, "max_bytes"), b, sizeof(b)),
                       jstr(cache, "dir"),
                       json_is_true(json_object_get(cache, "enabled")) ? "" : " (disabled)",
                       jint(cache, "hits"), jint(cache, "misses"), jint(cache, "evictions"),
                       jint(cache, "put_errors"));
        } else if (!strcmp(sub, "verify")) {
                char a[32], b[32];

                printf("%" JSON_INTEGER_FORMAT " blocks checked (%s good); %" JSON_INTEGER_FORMAT
                       " corrupt dropped (%s)%s\n",
                       jint(r, "checked"),
                       human_bytes((double)jint(r, "verified_bytes"), a, sizeof(a)),
                       jint(r, "dropped"),
                       human_bytes((double)jint(r, "dropped_bytes"), b, sizeof(b)),
                       jint(r, "skipped") ? "; some use a hash prsmfs cannot check" : "");
        } else {
                char a[32], b[32];

                printf("evicted %" JSON_INTEGER_FORMAT " blocks (%s); %s cached\n",
                       jint(r, "evicted"),
                       human_bytes((double)jint(r, "freed_bytes"), a, sizeof(a)),
                       human_bytes((double)jint(r, "bytes"), b, sizeof(b)));
        }
        json_decref(r);
        return 0;
}

/* ---- ls --cid (from the mount itself: each entry's user.prsm.cid) ---- */

/* One entry: into list (JSON), or printed when list is NULL. */

static int print_entry(json_t *list, const char *dir, const char *name)
{
        char path[PATH_MAX], cid[256];
        ssize_t n;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return -ENAMETOOLONG;
        n = lgetxattr(path, "user.prsm.cid", cid, sizeof(cid) - 1);
        if (n < 0 && errno != ENODATA)
                return -errno;
        cid[n < 0 ? 0 : n] = '\0'; /* ENODATA: not uploaded yet */
        if (list)
                return json_array_append_new(list, json_pack("{s:s, s:s?}", "name", name, "cid",
                                                             n < 0 ? NULL : cid)) < 0
                               ? -ENOMEM
                               : 0;
        printf("%-62s %s\n", n < 0 ? "(not uploaded yet)" : cid, name);
        return 0;
}

static int not_dots(const struct dirent *de)
{
        return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

int ctl_cmd_ls(struct ctl *ctl, int argc, char **argv)
{
        static const struct option opts[] = {
                { "cid", no_argument, NULL, 'C' },
                { 0 },
        };
        const char *path = NULL;
        char root[PATH_MAX];
        bool cid = false;
        json_t *list = NULL;
        struct dirent **names = NULL;
        struct stat st;
        int c, n = 0, r = 0;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == 'C')
                        cid = true;
                else if (c == CTL_OPERAND && !path)
                        path = optarg;
                else
                        return ctl_usage(argv[0]);
        }
        if (!cid) {
                fprintf(stderr, "prsmctl: ls: only --cid listings are supported (ls(1) does the "
                                "rest)\n");
                return ctl_usage(argv[0]);
        }
        if (!path)
                path = ".";
        if (ctl_find_root(ctl, path, root) < 0)
                return 1;
        if (stat(path, &st) < 0) {
                fprintf(stderr, "prsmctl: ls: %s: %s\n", path, strerror(errno));
                return 1;
        }
        list = ctl_is_json(ctl) ? json_array() : NULL;
        if (!list && ctl_is_json(ctl))
                return 1;
        if (!S_ISDIR(st.st_mode)) {
                const char *slash = strrchr(path, '/');
                char dir[PATH_MAX];

                (void)snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1,
                               slash ? path : ".");
                r = print_entry(list, dir, slash ? slash + 1 : path);
        } else {
                n = scandir(path, &names, not_dots, alphasort);
                if (n < 0)
                        r = -errno;
                for (int i = 0; r >= 0 && i < n; i++)
                        r = print_entry(list, path, names[i]->d_name);
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
        }
        if (r < 0)
                fprintf(stderr, "prsmctl: ls: %s: %s\n", path, strerror(-r));
        else if (list)
                ctl_print_json(list);
        json_decref(list);
        return r < 0 ? 1 : 0;
}

/* ---- pin, unpin ---- */

static int cid_cmd(struct ctl *ctl, int argc, char **argv)
{
        const char *ops[2] = { NULL, "." };
        json_t *r;
        int n, ret = operands(ctl, argc, argv, ops, 1, 2, &n);

        if (ret)
                return ret;
        if (ctl_find(ctl, ops[1]) < 0)
                return 1;
        r = ctl_request(ctl, json_pack("{s:s, s:s}", "cmd", argv[0], "cid", ops[0]));
        if (!r)
                return 1;
        if (ctl_is_json(ctl))
                ctl_print_json(r);
        else if (!strcmp(argv[0], "pin"))
                printf("pinned %s\n", ops[0]);
        else
                printf("%s %s\n",
                       json_is_true(json_object_get(r, "still_referenced"))
                               ? "no longer a published root (files still have it as their "
                                 "content: it stays pinned while they do):"
                               : "unpinning",
                       ops[0]);
        json_decref(r);
        return 0;
}

int ctl_cmd_pin(struct ctl *ctl, int argc, char **argv)
{
        return cid_cmd(ctl, argc, argv);
}

int ctl_cmd_unpin(struct ctl *ctl, int argc, char **argv)
{
        return cid_cmd(ctl, argc, argv);
}

/* ---- check ---- */

int ctl_cmd_check(struct ctl *ctl, int argc, char **argv)
{
        int ret;
        json_t *r = path_request(ctl, argc, argv, "check", &ret);

        if (!r)
                return ret;
        ctl_print_json(r);
        json_decref(r);
        return 0;
}

/* ---- reload ---- */

static void print_names(const char *what, json_t *list)
{
        json_t *e;
        size_t i;

        if (!json_array_size(list))
                return;
        printf("%s:", what);
        json_array_foreach(list, i, e)
        {
                printf(" %s", json_string_value(e));
        }
        putchar('\n');
}

int ctl_cmd_reload(struct ctl *ctl, int argc, char **argv)
{
        int ret;
        json_t *r = path_request(ctl, argc, argv, "reload", &ret);

        if (!r)
                return ret;
        if (ctl_is_json(ctl))
                ctl_print_json(r);
        else {
                printf("config read again\n");
                print_names("applied", json_object_get(r, "applied"));
                print_names("changed, needs a remount (left as it was)",
                            json_object_get(r, "needs_restart"));
        }
        json_decref(r);
        return 0;
}

/* ---- fsck ---- */

int ctl_cmd_fsck(struct ctl *ctl, int argc, char **argv)
{
        static const struct option opts[] = {
                { "repair", no_argument, NULL, 'r' },
                { 0 },
        };
        const char *path = NULL;
        bool repair = false;
        json_t *r, *st;
        char a[32];
        int c, bad;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == 'r')
                        repair = true;
                else if (c == CTL_OPERAND && !path)
                        path = optarg;
                else
                        return ctl_usage(argv[0]);
        }
        if (ctl_find(ctl, path ? path : ".") < 0)
                return 1;
        r = ctl_request_timeout(ctl, json_pack("{s:s, s:b}", "cmd", "fsck", "repair", repair),
                                ctl->timeout_ms < 0 ? 0 : ctl->timeout_ms);
        if (!r)
                return 1;
        st = json_object_get(r, "staging");
        /* what is still wrong after this run: exit status 1, as fsck(8) reports */
        bad = strcmp(jstr(r, "index"), "ok") != 0 || jint(st, "missing") > 0 ||
              jint(st, "orphans") > jint(st, "removed");
        if (ctl_is_json(ctl))
                ctl_print_json(r);
        else
                printf("index %s\nstaging: %" JSON_INTEGER_FORMAT " staged, %" JSON_INTEGER_FORMAT
                       " open, %" JSON_INTEGER_FORMAT " recent (left alone), %" JSON_INTEGER_FORMAT
                       " named by nothing (%s, %" JSON_INTEGER_FORMAT
                       " removed), %" JSON_INTEGER_FORMAT " uploads whose staging file is gone%s\n",
                       jstr(r, "index"), jint(st, "staged"), jint(st, "open"), jint(st, "young"),
                       jint(st, "orphans"),
                       human_bytes((double)jint(st, "orphan_bytes"), a, sizeof(a)),
                       jint(st, "removed"), jint(st, "missing"),
                       jint(st, "missing") ? " (see the daemon's log for their inodes)" : "");
        json_decref(r);
        return bad ? 1 : 0;
}
