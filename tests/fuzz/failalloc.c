/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Allocation-failure runs of the fuzz targets: `fuzz-failalloc-<t> N FILE` runs FILE through
 * LLVMFuzzerTestOneInput once with the Nth allocation made by project code (malloc, calloc,
 * realloc, reallocarray, strdup, strndup, wrapped at link time with -Wl,--wrap=...) failing
 * as if memory were exhausted, and every other allocation going to the real allocator (ASan's,
 * so a leak or a bad access on the error path is reported as usual). Exit status: 0 when the
 * input ran through with fewer than N allocations (N is past the last one: the driver stops),
 * 3 when the Nth allocation failed and the target returned, 2 on a usage or I/O error.
 * tools/reliability/fuzz.py drives N = 1, 2, ... over sampled corpus inputs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prsmfs/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_reallocarray(void *p, size_t n, size_t m);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static unsigned long fail_at; /* 0: never (while the input is read) */
static unsigned long calls;
static int failed;

/* true when this allocation is the one to fail */
static int fail_now(void)
{
        if (!fail_at)
                return 0;
        if (++calls != fail_at)
                return 0;
        failed = 1;
        errno = ENOMEM;
        return 1;
}

void *__wrap_malloc(size_t n)
{
        return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
        return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
        return fail_now() ? NULL : __real_realloc(p, n);
}

void *__wrap_reallocarray(void *p, size_t n, size_t m)
{
        return fail_now() ? NULL : __real_reallocarray(p, n, m);
}

char *__wrap_strdup(const char *s)
{
        return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
        return fail_now() ? NULL : __real_strndup(s, n);
}

int main(int argc, char *argv[])
{
        uint64_t nth;
        uint8_t *buf;
        FILE *f;
        long len;

        if (argc != 3) {
                fprintf(stderr, "usage: %s N FILE (fail the Nth allocation)\n", argv[0]);
                return 2;
        }
        if (parse_u64(argv[1], &nth) < 0 || nth == 0) {
                fprintf(stderr, "%s: N must be a positive integer, not '%s'\n", argv[0], argv[1]);
                return 2;
        }
        f = fopen(argv[2], "rbe");
        if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
            fseek(f, 0, SEEK_SET) != 0) {
                perror(argv[2]);
                if (f)
                        fclose(f);
                return 2;
        }
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                perror(argv[2]);
                free(buf);
                fclose(f);
                return 2;
        }
        fclose(f);
        fail_at = nth; /* armed only around the target: the input's buffer is not counted */
        (void)LLVMFuzzerTestOneInput(buf, (size_t)len);
        fail_at = 0;
        free(buf);
        return failed ? 3 : 0;
}
