/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Control-socket messages as a client sends them: the input is written to one end of a unix
 * stream socket pair and that end shut for writing, then control_serve_one (what every
 * connection's thread runs: line framing, the 64 KiB bound, JSON parsing, command dispatch,
 * error replies) serves the other end. The reply must be nothing (no whole line came) or
 * exactly one line holding a JSON object whose "ok" is a boolean, with "error" a string when
 * it is false. The handlers here take arguments the way the daemon's do (typed getters,
 * -EINVAL with or without a message of their own); the daemon's handlers need a mount, and
 * the paths and CIDs they take go through decoders with targets of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmd_status(json_t *request, json_t **reply, void *userdata)
{
        (void)request;
        (void)userdata;
        *reply = json_pack("{s:s}", "state", "ok");
        return *reply ? 0 : -ENOMEM;
}

static int cmd_link(json_t *request, json_t **reply, void *userdata)
{
        const char *cid = json_string_value(json_object_get(request, "cid"));
        const char *path = json_string_value(json_object_get(request, "path"));

        (void)userdata;
        if (!cid || !path || path[0] != '/')
                return -EINVAL;
        *reply = json_pack("{s:s, s:s}", "cid", cid, "path", path);
        return *reply ? 0 : -ENOMEM;
}

static int cmd_prefetch_status(json_t *request, json_t **reply, void *userdata)
{
        json_t *id = json_object_get(request, "id");

        (void)userdata;
        if (!json_is_integer(id) || json_integer_value(id) <= 0) {
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error", "no such prefetch job");
                return -ENOENT;
        }
        *reply = json_pack("{s:I}", "id", json_integer_value(id));
        return *reply ? 0 : -ENOMEM;
}

static const struct control_command commands[] = {
        { "status", cmd_status },
        { "link", cmd_link },
        { "prefetch_status", cmd_prefetch_status },
};

static void check_reply(const char *p, size_t len)
{
        json_t *j, *ok;

        if (len == 0)
                return;
        if (p[len - 1] != '\n' || memchr(p, '\n', len - 1))
                abort();
        j = json_loadb(p, len - 1, 0, NULL);
        ok = json_object_get(j, "ok");
        if (!json_is_object(j) || !json_is_boolean(ok) ||
            (json_is_false(ok) && !json_is_string(json_object_get(j, "error"))))
                abort();
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char reply[1 << 17];
        size_t done = 0, got = 0;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 0;
        /* the input must fit the socket's buffer: the server reads only after it is written */
        (void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
        while (done < size) {
                ssize_t n = write(sv[0], data + done, size - done);

                if (n <= 0)
                        break;
                done += (size_t)n;
        }
        (void)shutdown(sv[0], SHUT_WR);
        control_serve_one(commands, sizeof(commands) / sizeof(commands[0]), NULL, sv[1]);
        close(sv[1]);
        (void)fcntl(sv[0], F_SETFL, 0);
        while (got < sizeof(reply)) {
                ssize_t n = read(sv[0], reply + got, sizeof(reply) - got);

                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        close(sv[0]);
        check_reply(reply, got);
        return 0;
}
