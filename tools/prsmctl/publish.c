/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl publish and link: the two commands that name a path in the mount for the daemon
 * (sent relative to the mount root).
 *
 * publish runs in the daemon (it builds the DAG, uploads what the nodes lack and pins the
 * root); prsmctl waits without a deadline unless --timeout is given, and on a terminal shows
 * what has been sent so far, read once a second from `status` on a second connection (the
 * daemon serves several at once). --no-wait returns once the request is sent: the daemon
 * carries on and logs the root CID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prsmctl.h"

/* Options of publish: -1 = not given (the daemon's config decides). */
struct publish_opts {
        int preserve_mode, preserve_mtime;
        bool include_private, no_wait;
        const char *ipns_key; /* --ipns KEY: also under KEY's IPNS name */
        bool create_key;      /* --create-key: make KEY on a node if none has it */
};

/* What a reason token of a publish reply (fs_publish_skipped) names. */
static const char *kind_name(const char *reason)
{
        static const char *const names[][2] = {
                { "fifo", "a FIFO" },
                { "socket", "a socket" },
                { "char-device", "a character device" },
                { "block-device", "a block device" },
        };

        for (size_t i = 0; reason && i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(reason, names[i][0]) == 0)
                        return names[i][1];
        return reason ? reason : "?";
}

/* The human form of a publish reply: the CID on stdout, what was left out on stderr. */
static void print_publish(json_t *reply)
{
        json_t *list = json_object_get(reply, "skipped"), *e;
        json_int_t total = json_integer_value(json_object_get(reply, "skipped_count"));
        bool any_private = false;
        size_t i;

        printf("%s\n", json_string_value(json_object_get(reply, "cid")));
        if (json_object_get(reply, "ipns_name"))
                printf("%s\n", json_string_value(json_object_get(reply, "ipns_name")));
        json_array_foreach(list, i, e)
        {
                const char *reason = json_string_value(json_object_get(e, "reason"));
                const char *mode = json_string_value(json_object_get(e, "mode"));
                const char *path = json_string_value(json_object_get(e, "path"));

                if (reason && strcmp(reason, "private") == 0) {
                        any_private = true;
                        fprintf(stderr, "prsmctl: publish: left out '%s': private (mode %s)\n",
                                path, mode);
                } else
                        fprintf(stderr, "prsmctl: publish: left out '%s': %s has no UnixFS form\n",
                                path, kind_name(reason));
        }
        if (total > (json_int_t)json_array_size(list))
                fprintf(stderr, "prsmctl: publish: and %lld more left out (see the daemon's log)\n",
                        (long long)(total - (json_int_t)json_array_size(list)));
        if (any_private)
                fprintf(stderr, "prsmctl: publish: private entries are not readable by others in "
                                "the mount; --include-private publishes them too\n");
}

struct progress {
        json_int_t puts0, bytes0;
        bool has_base, has_printed;
        time_t start;
};

static bool sent_now(struct ctl *ctl, json_int_t *puts, json_int_t *bytes)
{
        json_t *req = json_pack("{s:s}", "cmd", "status");
        json_t *r = req ? ctl_call_opts(ctl, req, 5000, NULL, NULL, false) : NULL;
        json_t *net = json_object_get(json_object_get(r, "stats"), "net");

        json_decref(req);

        *puts = json_integer_value(json_object_get(net, "puts"));
        *bytes = json_integer_value(json_object_get(net, "put_bytes"));
        json_decref(r);
        return net != NULL;
}

static void tick(struct ctl *ctl, void *userdata)
{
        struct progress *p = userdata;
        json_int_t puts, bytes;

        if (!sent_now(ctl, &puts, &bytes) || !p->has_base)
                return;
        fprintf(stderr, "\rpublishing: %lld blocks sent (%.1f MiB), %lld s ",
                (long long)(puts - p->puts0), (double)(bytes - p->bytes0) / (1 << 20),
                (long long)(time(NULL) - p->start));
        p->has_printed = true;
}

/* "prsmctl publish [PATH]": the path of an existing file or directory from the mount root. */
static json_t *publish_request(struct ctl *ctl, const char *path, const struct publish_opts *o)
{
        char real[PATH_MAX], root[PATH_MAX];
        json_t *req;

        if (ctl->sock[0])
                req = json_pack("{s:s, s:s}", "cmd", "publish", "path", path);
        else if (!realpath(path, real)) {
                fprintf(stderr, "prsmctl: publish: %s: %m\n", path);
                return NULL;
        } else if (ctl_find_root(ctl, real, root) < 0)
                return NULL;
        else
                req = json_pack("{s:s, s:s}", "cmd", "publish", "path", real + strlen(root));
        if (req && o->preserve_mode >= 0)
                json_object_set_new(req, "preserve_mode", json_boolean(o->preserve_mode));
        if (req && o->preserve_mtime >= 0)
                json_object_set_new(req, "preserve_mtime", json_boolean(o->preserve_mtime));
        if (req && o->include_private)
                json_object_set_new(req, "include_private", json_true());
        if (req && o->ipns_key &&
            json_object_set_new(req, "ipns_key", json_string(o->ipns_key)) < 0) {
                json_decref(req);
                req = NULL;
        }
        if (req && o->create_key)
                json_object_set_new(req, "create_key", json_true());
        return req;
}

int ctl_cmd_publish(struct ctl *ctl, int argc, char **argv)
{
        enum { O_PM = 256, O_NPM, O_PT, O_NPT, O_IP, O_NW, O_IPNS, O_CK };
        static const struct option opts[] = {
                { "preserve-mode", no_argument, NULL, O_PM },
                { "no-preserve-mode", no_argument, NULL, O_NPM },
                { "preserve-mtime", no_argument, NULL, O_PT },
                { "no-preserve-mtime", no_argument, NULL, O_NPT },
                { "include-private", no_argument, NULL, O_IP },
                { "no-wait", no_argument, NULL, O_NW },
                { "ipns", required_argument, NULL, O_IPNS },
                { "create-key", no_argument, NULL, O_CK },
                { 0 },
        };
        struct publish_opts po = { .preserve_mode = -1, .preserve_mtime = -1 };
        struct progress prog = { .start = time(NULL) };
        bool show = !ctl->json && ctl->is_stderr_tty;
        const char *path = NULL;
        json_t *req, *r;
        int c, ret = 1;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == O_PM || c == O_NPM)
                        po.preserve_mode = c == O_PM;
                else if (c == O_PT || c == O_NPT)
                        po.preserve_mtime = c == O_PT;
                else if (c == O_IP)
                        po.include_private = true;
                else if (c == O_NW)
                        po.no_wait = true;
                else if (c == O_IPNS)
                        po.ipns_key = optarg;
                else if (c == O_CK)
                        po.create_key = true;
                else if (c == CTL_OPERAND && !path)
                        path = optarg;
                else
                        return ctl_usage(argv[0]);
        }
        if (po.create_key && !po.ipns_key) {
                fprintf(stderr, "prsmctl: publish: --create-key goes with --ipns KEY\n");
                return 2;
        }
        req = publish_request(ctl, path ? path : ".", &po);
        if (!req)
                return 1;
        if (show && !po.no_wait)
                prog.has_base = sent_now(ctl, &prog.puts0, &prog.bytes0);
        r = ctl_call_opts(ctl, req, ctl->timeout_ms < 0 ? 0 : ctl->timeout_ms, show ? tick : NULL,
                          &prog, po.no_wait);
        json_decref(req);
        if (prog.has_printed)
                fputc('\n', stderr);
        if (!r)
                return 1;
        if (po.no_wait) {
                if (ctl->json)
                        ctl_print_json(r);
                else
                        fprintf(stderr, "prsmctl: publish: runs in the daemon; its log names the "
                                        "root CID when it is pinned\n");
                ret = 0;
        } else if (!json_is_true(json_object_get(r, "ok")))
                fprintf(stderr, "prsmctl: %s\n", json_string_value(json_object_get(r, "error")));
        else {
                if (ctl->json)
                        ctl_print_json(r);
                else
                        print_publish(r);
                ret = 0;
        }
        json_decref(r);
        return ret;
}

/* "prsmctl link CID PATH": PATH's parent must be a directory in the mount; the daemon is sent
 * the path from the mount root. With -s, PATH is taken relative to the mount root. */
int ctl_cmd_link(struct ctl *ctl, int argc, char **argv)
{
        char dir[PATH_MAX], real[PATH_MAX], root[PATH_MAX], rel[2 * PATH_MAX];
        static const struct option opts[] = {
                { "creator", required_argument, NULL, 'C' },
                { "format", required_argument, NULL, 'F' },
                { 0 },
        };
        const char *ops[2] = { NULL, NULL }, *slash, *name, *path, *creator = NULL;
        const char *format = NULL;
        json_t *r, *req;
        int n = 0, c;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == 'C')
                        creator = optarg;
                else if (c == 'F' && (strcmp(optarg, "auto") == 0 || strcmp(optarg, "prsm") == 0 ||
                                      strcmp(optarg, "raw") == 0))
                        format = optarg;
                else if (c == 'F') {
                        fprintf(stderr, "prsmctl: link: --format is auto, prsm or raw, not '%s'\n",
                                optarg);
                        return 2;
                } else if (c != CTL_OPERAND || n >= 2)
                        return ctl_usage(argv[0]);
                else
                        ops[n++] = optarg;
        }
        if (n != 2)
                return ctl_usage(argv[0]);
        path = ops[1];
        slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
        if (ctl->sock[0])
                (void)snprintf(rel, sizeof(rel), "%s", path);
        else {
                if (!*name) {
                        fprintf(stderr, "prsmctl: link: %s names no entry\n", path);
                        return 1;
                }
                (void)snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 1,
                               slash ? path : ".");
                if (!realpath(dir, real)) {
                        fprintf(stderr, "prsmctl: link: %s: %m\n", dir);
                        return 1;
                }
                if (ctl_find_root(ctl, real, root) < 0)
                        return 1;
                (void)snprintf(rel, sizeof(rel), "%s/%s", real + strlen(root), name);
        }
        req = json_pack("{s:s, s:s, s:s}", "cmd", "link", "cid", ops[0], "path", rel);
        /* the content's creator, for its records and the ledger (docs/prsm.md) */
        if (req && creator && json_object_set_new(req, "creator", json_string(creator)) < 0) {
                json_decref(req);
                req = NULL;
        }
        /* PRSM shard manifests and JSON wrappers are shown decoded unless raw (docs/prsm.md) */
        if (req && format && json_object_set_new(req, "format", json_string(format)) < 0) {
                json_decref(req);
                req = NULL;
        }
        r = ctl_request(ctl, req);
        if (!r)
                return 1;
        ctl_print_json(r);
        json_decref(r);
        return 0;
}
