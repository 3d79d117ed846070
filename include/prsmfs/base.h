/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Base vocabulary shared by every module: attribute macros, borrowed byte views and the
 * bounds-checked cursor that every decoder of outside bytes reads through. A cursor only
 * advances when a read succeeds, so a failed decode leaves it where the bad field starts.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define _wur_          __attribute__((warn_unused_result))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define PRSMFS_API     __attribute__((visibility("default")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

/*
 * Intrusive doubly linked lists, as systemd's LIST_*: items with prev and next members, a
 * head pointer. LIST_REMOVE of an item never added (both NULL, not the head) does nothing.
 */
#define LIST_PREPEND(head, item)                     \
        do {                                         \
                (item)->prev = NULL;                 \
                (item)->next = (head);               \
                if ((item)->next)                    \
                        (item)->next->prev = (item); \
                (head) = (item);                     \
        } while (0)
#define LIST_REMOVE(head, item)                            \
        do {                                               \
                if ((item)->prev)                          \
                        (item)->prev->next = (item)->next; \
                else if ((head) == (item))                 \
                        (head) = (item)->next;             \
                if ((item)->next)                          \
                        (item)->next->prev = (item)->prev; \
                (item)->prev = (item)->next = NULL;        \
        } while (0)

/* A borrowed run of bytes; valid as long as whatever it points into. */
struct bytes_view {
        const uint8_t *p;
        size_t len;
};

/* Bounds-checked reader over borrowed bytes. */
struct cursor {
        const uint8_t *p;
        size_t len;
        size_t pos;
};

static inline void cursor_init(struct cursor *c, const void *p, size_t len)
{
        c->p = p;
        c->len = len;
        c->pos = 0;
}

static inline size_t cursor_left(const struct cursor *c)
{
        return c->len - c->pos;
}

static inline bool cursor_eof(const struct cursor *c)
{
        return c->pos >= c->len;
}

/* -EBADMSG when fewer than n bytes are left; ret borrows from the cursor's bytes. */
_wur_ int cursor_get_bytes(struct cursor *c, size_t n, struct bytes_view *ret);
_wur_ int cursor_get_u8(struct cursor *c, uint8_t *ret);

/* Raises *p to v if v is larger, atomically (a peak that concurrent updates must not lower). */
static inline void atomic_max_u64(uint64_t *p, uint64_t v)
{
        uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

        while (v > cur &&
               !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
}

/* 1 if a + b overflows, else stores the sum (overflow-checked size arithmetic). */
static inline bool size_add_overflows(size_t a, size_t b, size_t *ret)
{
        return __builtin_add_overflow(a, b, ret);
}
