/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The bounded block queue: a full queue holds the producer back, close drains, an abort
 * sticks (first error wins) and wakes everyone, and held bytes count popped blocks until
 * they are released. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"

static struct upload_block *blk(size_t len)
{
        static const uint8_t data[64];
        struct cid c;

        assert_int_equal(cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, data, len, &c), 0);
        return upload_block_new(&c, data, len);
}

struct pusher {
        struct upload_queue *q;
        int n, pushed, r;
};

static void *push_n(void *arg)
{
        struct pusher *p = arg;

        for (int i = 0; i < p->n; i++) {
                struct upload_block *b = blk(10);

                p->r = upload_queue_push(p->q, b);
                if (p->r < 0) {
                        free(b);
                        break;
                }
                __atomic_add_fetch(&p->pushed, 1, __ATOMIC_SEQ_CST);
        }
        return NULL;
}

static void test_queue__full__producer_waits_for_a_pop(void **state)
{
        struct upload_queue q;
        struct pusher p = { .q = &q, .n = 3 };
        struct upload_block *b;
        pthread_t t;

        (void)state;
        assert_int_equal(upload_queue_init(&q, 2), 0);
        assert_int_equal(pthread_create(&t, NULL, push_n, &p), 0);
        while (__atomic_load_n(&p.pushed, __ATOMIC_SEQ_CST) < 2)
                usleep(1000);
        usleep(50000);
        assert_int_equal(__atomic_load_n(&p.pushed, __ATOMIC_SEQ_CST), 2); /* the third waits */
        assert_int_equal(upload_queue_pop(&q, &b), 1);
        upload_queue_release(&q, b);
        pthread_join(t, NULL);
        assert_int_equal(p.pushed, 3);
        assert_int_equal(p.r, 0);
        upload_queue_done(&q);
}

static void test_queue__closed__drains_then_ends(void **state)
{
        struct upload_queue q;
        struct upload_block *b;

        (void)state;
        assert_int_equal(upload_queue_init(&q, 4), 0);
        assert_int_equal(upload_queue_push(&q, blk(1)), 0);
        assert_int_equal(upload_queue_push(&q, blk(2)), 0);
        upload_queue_close(&q);
        b = blk(3);
        assert_int_equal(upload_queue_push(&q, b), -EINVAL);
        free(b);
        assert_int_equal(upload_queue_pop(&q, &b), 1);
        assert_int_equal(b->len, 1); /* FIFO */
        upload_queue_release(&q, b);
        assert_int_equal(upload_queue_pop(&q, &b), 1);
        assert_int_equal(b->len, 2);
        upload_queue_release(&q, b);
        assert_int_equal(upload_queue_pop(&q, &b), 0);
        assert_int_equal(upload_queue_error(&q), 0);
        upload_queue_done(&q);
}

static void test_queue__abort__first_error_sticks_and_wakes_producer(void **state)
{
        struct upload_queue q;
        struct pusher p = { .q = &q, .n = 5 };
        struct upload_block *b;
        pthread_t t;

        (void)state;
        assert_int_equal(upload_queue_init(&q, 1), 0);
        assert_int_equal(pthread_create(&t, NULL, push_n, &p), 0);
        while (__atomic_load_n(&p.pushed, __ATOMIC_SEQ_CST) < 1)
                usleep(1000);
        upload_queue_abort(&q, -ENOTCONN);
        upload_queue_abort(&q, -ECANCELED);
        pthread_join(t, NULL);
        assert_int_equal(p.r, -ENOTCONN);
        assert_int_equal(p.pushed, 1);
        assert_int_equal(upload_queue_pop(&q, &b), -ENOTCONN);
        assert_int_equal(upload_queue_error(&q), -ENOTCONN);
        upload_queue_done(&q); /* frees the queued block */
}

static void test_queue__held_bytes__count_popped_until_released(void **state)
{
        uint64_t mem = 0, peak = 0;
        struct upload_queue q;
        struct upload_block *a, *b;
        size_t one = sizeof(struct upload_block) + 10;

        (void)state;
        assert_int_equal(upload_queue_init(&q, 2), 0);
        q.mem_bytes = &mem;
        q.mem_peak_bytes = &peak;
        assert_int_equal(upload_queue_push(&q, blk(10)), 0);
        assert_int_equal(upload_queue_push(&q, blk(10)), 0);
        assert_int_equal(upload_queue_pop(&q, &a), 1);
        assert_int_equal(upload_queue_pop(&q, &b), 1);
        assert_int_equal(q.held_bytes, 2 * one);
        assert_int_equal(mem, 2 * one);
        upload_queue_release(&q, a);
        assert_int_equal(mem, one);
        assert_int_equal(upload_queue_push(&q, blk(10)), 0);
        upload_queue_release(&q, b);
        assert_int_equal(q.peak_bytes, 2 * one);
        assert_int_equal(peak, 2 * one);
        upload_queue_done(&q);
        assert_int_equal(mem, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_queue__full__producer_waits_for_a_pop),
                cmocka_unit_test(test_queue__closed__drains_then_ends),
                cmocka_unit_test(test_queue__abort__first_error_sticks_and_wakes_producer),
                cmocka_unit_test(test_queue__held_bytes__count_popped_until_released),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
