/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/io.h"

static int memfd_with(const char *text)
{
        int fd = memfd_create("test-io", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(io_pwrite_all(fd, text, strlen(text), 0), 0);
        return fd;
}

static void test_pread__past_the_end__full_counts_short_exact_eio(void **state)
{
        char buf[16] = { 0 };
        int fd = memfd_with("0123456789");

        (void)state;
        assert_int_equal(io_pread_full(fd, buf, sizeof(buf), 4), 6);
        assert_memory_equal(buf, "456789", 6);
        assert_int_equal(io_pread_full(fd, buf, sizeof(buf), 10), 0);
        assert_int_equal(io_pread_exact(fd, buf, 7, 4), -EIO);
        assert_int_equal(io_pread_exact(fd, buf, 6, 4), 0);
        assert_int_equal(io_pread_exact(fd, buf, 0, 99), 0);
        close(fd);
        assert_int_equal(io_pread_full(fd, buf, 1, 0), -EBADF);
        assert_int_equal(io_pread_exact(fd, buf, 1, 0), -EBADF);
}

static void test_pwrite__at_offset__hole_then_bytes_bad_offset_einval(void **state)
{
        char buf[8];
        int fd = memfd_with("ab");

        (void)state;
        assert_int_equal(io_pwrite_all(fd, "xy", 2, 5), 0);
        assert_int_equal(io_pread_exact(fd, buf, 7, 0), 0);
        assert_memory_equal(buf, "ab\0\0\0xy", 7);
        assert_int_equal(io_pwrite_all(fd, "z", 1, (uint64_t)INT64_MAX + 1), -EINVAL);
        close(fd);
}

struct drain {
        int fd;
        size_t got;
        uint8_t *p;
};

static void *drain_thread(void *arg)
{
        struct drain *d = arg;

        for (;;) { /* small reads: the writer waits on a full pipe many times over */
                ssize_t n = read(d->fd, d->p + d->got, 4096);

                if (n <= 0)
                        return NULL;
                d->got += (size_t)n;
        }
}

static void test_write_all__into_a_small_pipe__every_byte_in_order(void **state)
{
        size_t len = 1 << 20;
        uint8_t *src = malloc(len);
        struct drain d = { .p = malloc(len + 4096) };
        pthread_t t;
        int p[2];

        (void)state;
        assert_non_null(src);
        assert_non_null(d.p);
        for (size_t i = 0; i < len; i++)
                src[i] = (uint8_t)(i * 7 + i / 251);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        d.fd = p[0];
        assert_int_equal(pthread_create(&t, NULL, drain_thread, &d), 0);
        assert_int_equal(io_write_all(p[1], src, len), 0);
        close(p[1]);
        pthread_join(t, NULL);
        close(p[0]);
        assert_int_equal(d.got, len);
        assert_memory_equal(d.p, src, len);
        assert_int_equal(io_write_all(p[1], src, 1), -EBADF); /* closed */
        free(src);
        free(d.p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pread__past_the_end__full_counts_short_exact_eio),
                cmocka_unit_test(test_pwrite__at_offset__hole_then_bytes_bad_offset_einval),
                cmocka_unit_test(test_write_all__into_a_small_pipe__every_byte_in_order),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
