/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One line per message on stderr: "prsmfs[pid]: <level> <module>: text[: strerror]".
 * The level is a process-wide atomic so that hot paths pay one load when disabled.
 */
#include "prsmfs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int level = LOG_LEVEL_NOTICE;

static const char *const level_names[_LOG_LEVEL_MAX] = {
        [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
        [LOG_LEVEL_INFO] = "info",   [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level l)
{
        __atomic_store_n(&level, (int)l, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
        return (enum log_level)__atomic_load_n(&level, __ATOMIC_RELAXED);
}

int log_level_from_string(const char *s, enum log_level *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0) {
                        *ret = (enum log_level)i;
                        return 0;
                }
        return -EINVAL;
}

int log_internal(enum log_level l, int err, const char *module, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* truncation of a log line is fine */
        va_end(ap);
        if (err != 0)
                fprintf(stderr, "prsmfs[%d]: %s %s: %s: %s\n", (int)getpid(), level_names[l],
                        module, msg, strerror(err < 0 ? -err : err));
        else
                fprintf(stderr, "prsmfs[%d]: %s %s: %s\n", (int)getpid(), level_names[l], module,
                        msg);
        return err;
}
