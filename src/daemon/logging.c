/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libfuse logs to stderr by default, which is /dev/null once fuse_daemonize ran: its
 * messages (a failed mount, a bad option, an unmount by fusermount3) go through log_internalv
 * instead, under the module name "fuse", with their level mapped to ours.
 */
#include "logging.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <fuse_log.h>

#include "prsmfs/log.h"

/* libfuse writes some messages in pieces ("unknown option(s): `", "-o ", "x'\n"): they are
 * gathered per thread until the line ends, then logged as one line. */
static __thread char pending[1024];
static __thread size_t pending_len;

static void fuse_log_bridge(enum fuse_log_level level, const char *fmt, va_list ap)
{
        enum log_level l = level <= FUSE_LOG_ERR       ? LOG_LEVEL_ERROR
                           : level == FUSE_LOG_WARNING ? LOG_LEVEL_WARNING
                           : level == FUSE_LOG_NOTICE  ? LOG_LEVEL_NOTICE
                           : level == FUSE_LOG_INFO    ? LOG_LEVEL_INFO
                                                       : LOG_LEVEL_DEBUG;
        int n;

        n = vsnprintf(pending + pending_len, sizeof(pending) - pending_len, fmt, ap);
        if (n > 0)
                pending_len = MIN(pending_len + (size_t)n, sizeof(pending) - 1);
        if (pending_len > 0 && pending[pending_len - 1] != '\n' &&
            pending_len < sizeof(pending) - 1)
                return; /* more to come */
        if (log_get_level() >= l)
                (void)log_internal(l, 0, "fuse", "%s",
                                   pending + (strncmp(pending, "fuse: ", 6) == 0 ? 6 : 0));
        pending_len = 0;
        pending[0] = '\0';
}

void logging_route_fuse(void)
{
        fuse_set_log_func(fuse_log_bridge);
}
