/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "prsmfs/parse.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_u64(const char *s, uint64_t *ret)
{
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret)
{
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = { { "", 0 },   { "K", 10 },   { "KiB", 10 }, { "M", 20 },  { "MiB", 20 },
                      { "G", 30 }, { "GiB", 30 }, { "T", 40 },   { "TiB", 40 } };
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcasecmp(end, units[i].suffix) == 0) {
                        if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
                                return -ERANGE;
                        *ret = (uint64_t)v << units[i].shift;
                        return 0;
                }
        return -EINVAL;
}

int parse_duration_ms(const char *s, uint64_t *ret)
{
        double v, scale = 1000.0;
        char *end;

        if (!s || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno == ERANGE || !isfinite(v))
                return -ERANGE;
        if (strcmp(end, "ms") == 0)
                scale = 1.0;
        else if (*end != '\0' && strcmp(end, "s") != 0)
                return -EINVAL;
        v *= scale;
        if (v < 0 || v > 1e15)
                return -ERANGE;
        *ret = (uint64_t)llround(v);
        return 0;
}

int parse_fail(char *err, size_t err_size, const char *fmt, ...)
{
        va_list ap;

        if (err && err_size) {
                va_start(ap, fmt);
                (void)vsnprintf(err, err_size, fmt, ap); /* truncation is acceptable */
                va_end(ap);
        }
        return -EINVAL;
}
