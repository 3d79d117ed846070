/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Lazy directories over a store without a network (blocks put in its cache): a lookup links
 * one entry, listings come in batches with each name once (also across a restart and with
 * threads at it), and an entry whose block is missing is listed without a type until it
 * comes. */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define N_BIG 3000

static int put_block(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct fixture *f = ud;

        return cache_block_put(f->cache, cid, block, len);
}

static int drop_block(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        (void)cid, (void)block, (void)len, (void)ud;
        return 0;
}

/* A file of data in profile prof; its blocks go to the cache unless is_missing. */
static struct cid file_of(struct fixture *f, enum unixfs_profile prof, const char *data,
                          bool is_missing, uint64_t *ret_tsize)
{
        struct unixfs_params p;
        struct unixfs_builder *b;
        struct cid c;

        unixfs_params_profile(prof, &p);
        assert_int_equal(unixfs_builder_new(&p, is_missing ? drop_block : put_block, f, &b), 0);
        assert_int_equal(unixfs_builder_write(b, data, strlen(data)), 0);
        assert_int_equal(unixfs_builder_finish(b, &c, NULL, ret_tsize), 0);
        unixfs_builder_free(b);
        return c;
}

/* A directory of the n entries e (sharded above 16 entries) linked as root/name. */
static struct index_attr link_dir(struct fixture *f, const char *name, struct unixfs_dirent *e,
                                  size_t n)
{
        struct unixfs_dir_params dp;
        struct index_attr d;
        struct cid root;
        uint64_t tsize;

        unixfs_dir_params_profile(UNIXFS_PROFILE_DEFAULT, &dp);
        dp.max_links = 16;
        assert_int_equal(unixfs_dir_build(&dp, e, n, put_block, f, &root, &tsize), 0);
        assert_int_equal(fs_tree_link(f->fs, &root, INDEX_ROOT_INO, name, 0, 0, 0, &d), 0);
        assert_int_equal(d.state, INDEX_STATE_LAZY);
        return d;
}

static char big_names[N_BIG][16];

/* A HAMT of N_BIG raw-leaf files "name-00000".. linked as root/name. */
static struct index_attr link_big(struct fixture *f, const char *name)
{
        struct unixfs_dirent *e = calloc(N_BIG, sizeof(*e));
        struct index_attr d;
        uint64_t tsize;
        struct cid x;

        assert_non_null(e);
        x = file_of(f, UNIXFS_PROFILE_DEFAULT, "x", false, &tsize);
        for (size_t i = 0; i < N_BIG; i++) {
                (void)snprintf(big_names[i], sizeof(big_names[i]), "name-%05zu", i);
                e[i] = (struct unixfs_dirent){ .name = big_names[i],
                                               .name_len = strlen(big_names[i]),
                                               .cid = x,
                                               .tsize = tsize };
        }
        d = link_dir(f, name, e, N_BIG);
        free(e);
        return d;
}

struct seen {
        uint8_t hits[N_BIG];
        size_t n, dups, typeless;
};

static int seen_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct seen *s = ud;
        unsigned i;

        (void)cookie;
        if ((a->mode & S_IFMT) == 0)
                s->typeless++;
        if (sscanf(name, "name-%05u", &i) == 1 && i < N_BIG && s->hits[i]++)
                s->dups++;
        s->n++;
        return 0;
}

static struct seen listed(struct fixture *f, uint64_t ino)
{
        struct seen s = { 0 };

        assert_int_equal(index_readdir(f->idx, ino, 0, seen_cb, &s), 0);
        return s;
}

static void test_tree__hamt_lookup_links_one__listing_adds_the_rest_once(void **state)
{
        struct fixture *f = *state;
        struct index_attr d = link_big(f, "big"), a;
        struct seen s;
        size_t batches = 0;
        int r;

        assert_int_equal(fs_tree_lookup(f->fs, d.ino, "name-01234", &a), 0);
        assert_true(S_ISREG(a.mode));
        assert_int_equal(a.size, 1);
        assert_int_equal(fs_tree_lookup(f->fs, d.ino, "name-99999", &a), -ENOENT);
        assert_int_equal(listed(f, d.ino).n, 1);
        d = fixture_attr(f, d.ino);
        assert_int_equal(d.state, INDEX_STATE_LAZY);
        while ((r = fs_tree_list_more(f->fs, &d)) > 0) {
                batches++;
                d = fixture_attr(f, d.ino);
        }
        assert_int_equal(r, 0);
        assert_true(batches >= N_BIG / FS_LIST_BATCH);
        s = listed(f, d.ino);
        assert_int_equal(s.n, N_BIG);
        assert_int_equal(s.dups, 0);
        d = fixture_attr(f, d.ino);
        assert_int_equal(d.state, INDEX_STATE_CLEAN);
        assert_int_equal(fs_tree_list_more(f->fs, &d), 0);
}

static void test_tree__restart_mid_listing__the_rest_added_once(void **state)
{
        struct fixture *f = *state;
        struct index_attr d = link_big(f, "big");
        struct seen s;

        assert_int_equal(fs_tree_list_more(f->fs, &d), 1);
        assert_int_equal(fs_tree_list_more(f->fs, &d), 1);
        s = listed(f, d.ino);
        assert_true(s.n > 0 && s.n < N_BIG);
        fixture_restart(f);
        d = fixture_attr(f, d.ino);
        assert_int_equal(d.state, INDEX_STATE_LAZY);
        assert_int_equal(fs_tree_expand(f->fs, &d), 0);
        s = listed(f, d.ino);
        assert_int_equal(s.n, N_BIG);
        assert_int_equal(s.dups, 0);
        assert_int_equal(f->fs->st.entries_skipped, 0);
}

static void test_tree__missing_block__entry_typeless_until_it_comes(void **state)
{
        struct fixture *f = *state;
        struct unixfs_dirent e[3] = { { .name = "a", .name_len = 1 },
                                      { .name = "late", .name_len = 4 },
                                      { .name = "z", .name_len = 1 } };
        struct index_attr d, a;
        struct seen s;
        int r;

        e[0].cid = file_of(f, UNIXFS_PROFILE_DEFAULT, "raw leaf", false, &e[0].tsize);
        /* dag-pb files: their type is in their blocks, one of which is missing */
        e[1].cid = file_of(f, UNIXFS_PROFILE_LEGACY, "late", true, &e[1].tsize);
        e[2].cid = file_of(f, UNIXFS_PROFILE_LEGACY, "zz", false, &e[2].tsize);
        d = link_dir(f, "d", e, 3);
        assert_int_equal(fs_tree_expand(f->fs, &d), 0);
        s = listed(f, d.ino);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.typeless, 1);
        assert_int_equal(fs_tree_lookup(f->fs, d.ino, "a", &a), 0);
        assert_int_equal(a.size, 8);
        assert_int_equal(fs_tree_lookup(f->fs, d.ino, "z", &a), 0);
        assert_true(S_ISREG(a.mode));
        assert_int_equal(a.size, 2);
        r = fs_tree_lookup(f->fs, d.ino, "late", &a);
        assert_true(r < 0 && r != -ENOENT);
        assert_int_equal(fs_errno_for_reply(r), EIO);
        /* its block comes */
        assert_int_equal(file_of(f, UNIXFS_PROFILE_LEGACY, "late", false, NULL).len, e[1].cid.len);
        assert_int_equal(fs_tree_lookup(f->fs, d.ino, "late", &a), 0);
        assert_true(S_ISREG(a.mode));
        assert_int_equal(a.size, 4);
        assert_int_equal(listed(f, d.ino).typeless, 0);
}

struct worker {
        struct fixture *f;
        uint64_t ino;
        bool is_lookup;
        int r;
};

static void *work(void *ud)
{
        struct worker *w = ud;
        struct index_attr d = fixture_attr(w->f, w->ino), a;

        w->r = 0;
        if (!w->is_lookup) {
                w->r = fs_tree_expand(w->f->fs, &d);
                return NULL;
        }
        for (size_t i = 0; i < N_BIG && w->r == 0; i += 7)
                w->r = fs_tree_lookup(w->f->fs, w->ino, big_names[i], &a);
        return NULL;
}

/* Listings of two directories, lookups in both and a readdir-like reader, all at once: each
 * name once, both complete. */
static void test_tree__threads_list_and_look_up__each_name_once(void **state)
{
        struct fixture *f = *state;
        struct index_attr d1 = link_big(f, "one"), d2 = link_big(f, "two");
        struct worker w[6] = {
                { f, d1.ino, false, 0 }, { f, d2.ino, false, 0 }, { f, d1.ino, true, 0 },
                { f, d2.ino, true, 0 },  { f, d1.ino, false, 0 }, { f, d2.ino, true, 0 },
        };
        pthread_t t[6];

        for (size_t i = 0; i < 6; i++)
                assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
        for (size_t i = 0; i < 6; i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(w[i].r, 0);
        }
        d2 = fixture_attr(f, d2.ino);
        assert_int_equal(fs_tree_expand(f->fs, &d2), 0);
        for (size_t k = 0; k < 2; k++) {
                uint64_t ino = k ? d2.ino : d1.ino;
                struct seen s = listed(f, ino);

                assert_int_equal(s.n, N_BIG);
                assert_int_equal(s.dups, 0);
                assert_int_equal(fixture_attr(f, ino).state, INDEX_STATE_CLEAN);
        }
}

struct timed_job {
        struct fs_job job;
        struct fs *fs;
        sem_t *hold; /* NULL: records its deadline */
        uint64_t deadline;
        sem_t done;
};

static void timed_job_run(struct fs_job *job, bool stopping)
{
        struct timed_job *j = (struct timed_job *)job;

        (void)stopping;
        if (j->hold)
                sem_wait(j->hold);
        else
                j->deadline = fs_deadline(j->fs);
        sem_post(&j->done);
}

/* Faults campaign, finding 9: a request that waited in a job queue behind busy threads got
 * the whole timeout again when a thread took it; its wait now counts. */
static void test_fs_deadline__queued_request__counts_from_when_it_was_queued(void **state)
{
        struct fixture *f = *state;
        struct timed_job busy = { .job.run = timed_job_run, .fs = f->fs };
        struct timed_job late = { .job.run = timed_job_run, .fs = f->fs };
        uint64_t timeout_ns = 10ull * 1000 * 1000 * 1000, pushed, now;
        struct fs_jobq q;
        sem_t hold;

        f->cfg.timeout_ms = 10 * 1000;
        now = net_now_ns();
        assert_true(fs_deadline(f->fs) >= now + timeout_ns); /* not in a job: from now */
        assert_int_equal(sem_init(&hold, 0, 0), 0);
        assert_int_equal(sem_init(&busy.done, 0, 0), 0);
        assert_int_equal(sem_init(&late.done, 0, 0), 0);
        busy.hold = &hold;
        fs_jobq_init(&q, "test");
        fs_jobq_start(&q, 1);
        fs_jobq_push(&q, &busy.job); /* the only thread is busy */
        fs_jobq_push(&q, &late.job);
        pushed = net_now_ns();
        usleep(400 * 1000);
        sem_post(&hold);
        sem_wait(&busy.done);
        sem_wait(&late.done);
        fs_jobq_done(&q);
        /* before: 400 ms later than this */
        assert_true(late.deadline <= pushed + timeout_ns);
        assert_true(late.deadline + 400ull * 1000 * 1000 > pushed + timeout_ns);
        sem_destroy(&hold);
        sem_destroy(&busy.done);
        sem_destroy(&late.done);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_fs_deadline__queued_request__counts_from_when_it_was_queued,
                        fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_tree__hamt_lookup_links_one__listing_adds_the_rest_once, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_tree__restart_mid_listing__the_rest_added_once,
                                                fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_tree__missing_block__entry_typeless_until_it_comes, fixture_setup,
                        fixture_teardown),
                cmocka_unit_test_setup_teardown(test_tree__threads_list_and_look_up__each_name_once,
                                                fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
