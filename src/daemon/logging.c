/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libfuse logs to stderr by default, which is /dev/null once fuse_daemonize ran: its
 * messages (a failed mount, a bad option, an unmount by fusermount3) go through log_internalv
 * instead, under the module name "fuse", with their level mapped to ours.
 */
#include "logging.h"

#include <stdarg.h>

#include <fuse_log.h>

#include "prsmfs/log.h"

static void fuse_log_bridge(enum fuse_log_level level, const char *fmt, va_list ap)
{
        enum log_level l = level <= FUSE_LOG_ERR       ? LOG_LEVEL_ERROR
                           : level == FUSE_LOG_WARNING ? LOG_LEVEL_WARNING
                           : level == FUSE_LOG_NOTICE  ? LOG_LEVEL_NOTICE
                           : level == FUSE_LOG_INFO    ? LOG_LEVEL_INFO
                                                       : LOG_LEVEL_DEBUG;

        if (log_get_level() >= l)
                (void)log_internalv(l, 0, "fuse", fmt, ap);
}

void logging_route_fuse(void)
{
        fuse_set_log_func(fuse_log_bridge);
}
