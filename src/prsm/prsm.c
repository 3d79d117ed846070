/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Provenance records and the access ledger, written by one thread.
 *
 * Records: prsm_note copies an event onto a queue (lock held for a pointer swap, no I/O) and
 * wakes the writer. The writer alone builds, signs and chains records, so the chain needs no
 * lock: seq and parent (the hex sha256 of the previous record) live in the thread. A batch is
 * appended in one index transaction; when that fails the batch goes back to the head of the
 * queue with seq and parent as they were, and is tried again at the next pass. Events are
 * noted after the change they describe committed, so no record is ever for something that
 * did not happen; a crash between the two loses the records still queued (at most one flush
 * interval's, see docs/prsm.md).
 *
 * Ledger: a hash table of counters, one per CID read since start. A counter is found (or made)
 * under counters_lock at open; reads only add to its atomics. The writer takes every
 * counter's counts with an atomic exchange, writes them as one batch (a new batch id, one
 * transaction) and adds them back if that failed: a count is either in the index once or
 * still in memory, never both, so nothing is counted twice after a crash, and a crash loses
 * only the counts since the last flush.
 *
 * Lock order: lock and counters_lock are never held together, nor across index calls.
 */
#define LOG_MODULE "prsm"
#include "prsmfs/prsm.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/hash.h"
#include "prsmfs/index.h"
#include "prsmfs/log.h"

#include "prsm_internal.h"

#define COUNTER_BUCKETS 4096
#define MAX_COUNTERS    (1u << 20)  /* distinct CIDs counted per run; more are not counted */
#define MAX_QUEUED      (64 * 1024) /* events beyond this are dropped (and logged) */
#define HASH_CHUNK      (256 * 1024)
#define HASH_INLINE_MAX (1024 * 1024) /* smaller files are hashed when noted (page cache) */
#define MAX_HELD_FDS    256           /* bigger ones wait for the writer with their fd open */

struct pending {
        struct pending *next;
        enum prsm_op op;
        char *path, *old_path, *creator;
        bool has_old_cid, has_cid, has_sha256;
        struct cid old_cid, cid;
        uint64_t size;
        uint8_t sha256[32];
        int fd;
        int64_t time_ns;
};

struct prsm_counter {
        struct prsm_counter *next; /* counters_lock */
        struct cid cid;
        uint64_t opens, bytes; /* atomic */
};

struct prsm {
        struct index *idx;
        const struct prsm_identity *id;
        char *creator_id;
        bool provenance, ledger;
        uint64_t flush_ms;

        pthread_mutex_t lock;
        pthread_cond_t cond;              /* work queued, a flush asked, stop (lock) */
        pthread_cond_t flushed;           /* a pass ended (lock) */
        struct pending *head, **tail;     /* lock */
        size_t n_queued;                  /* lock */
        uint64_t flush_asked, flush_done; /* lock */
        int flush_result;                 /* lock: the last pass's */
        bool stop;                        /* lock */
        pthread_t thread;
        bool started;

        /* the writer's */
        uint64_t seq;
        char parent[PRSM_HASH_HEX];
        bool has_parent;

        pthread_mutex_t counters_lock;
        struct prsm_counter *buckets[COUNTER_BUCKETS]; /* counters_lock */
        size_t n_counters;                             /* counters_lock */
        bool counters_full;                            /* counters_lock */

        struct prsm_stats st; /* atomics */
        unsigned held_fds;    /* atomic: fds of queued events */
};

static const char *const op_names[_PRSM_OP_MAX] = {
        [PRSM_OP_CREATE] = "create", [PRSM_OP_MODIFY] = "modify", [PRSM_OP_LINK] = "link",
        [PRSM_OP_RENAME] = "rename", [PRSM_OP_DELETE] = "delete", [PRSM_OP_PUBLISH] = "publish",
};

const char *prsm_op_name(enum prsm_op op)
{
        return op < _PRSM_OP_MAX ? op_names[op] : "?";
}

static int64_t realtime_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pending_free(struct pending *e)
{
        if (!e)
                return;
        free(e->path);
        free(e->old_path);
        free(e->creator);
        if (e->fd >= 0)
                close(e->fd);
        free(e);
}

/* ---- building a record ---- */

/* Records signed in this pass, not in the index yet. */
struct batch {
        struct index_prov_row *rows;
        char **texts;
        size_t n;
};

int prsm_path_text(const char *p, char **ret)
{
        size_t len = strlen(p), o = 0;
        json_t *j = json_stringn(p, len); /* NULL when p is not UTF-8 */
        char *esc;

        if (j) {
                json_decref(j);
                esc = strdup(p);
        } else if (len > (SIZE_MAX - 1) / 4)
                return -E2BIG;
        else if ((esc = malloc(len * 4 + 1))) {
                for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
                        if (*c < 0x80)
                                esc[o++] = (char)*c;
                        else
                                o += (size_t)snprintf(esc + o, 5, "\\x%02x", *c);
                }
                esc[o] = '\0';
        }
        if (!esc)
                return -ENOMEM;
        *ret = esc;
        return 0;
}

static json_t *json_path(const char *p)
{
        char *s = NULL;
        json_t *j = prsm_path_text(p, &s) >= 0 ? json_string(s) : NULL;

        free(s);
        return j;
}

static json_t *json_cid(bool has, const struct cid *c)
{
        char s[CID_MAX_STR];

        return has ? json_string(cid_to_string(c, s)) : json_null();
}

/* The sha256 of the bytes of e->fd, when they are e->size bytes; closes it. */
static void hash_fd(struct pending *e)
{
        struct hash_sha256_ctx *ctx = NULL;
        uint64_t off = 0;
        uint8_t *buf = malloc(HASH_CHUNK);

        if (buf && hash_sha256_new(&ctx) >= 0) {
                for (;;) {
                        ssize_t n = pread(e->fd, buf, HASH_CHUNK, (off_t)off);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        hash_sha256_update(ctx, buf, (size_t)n);
                        off += (uint64_t)n;
                }
                if (off == e->size) {
                        hash_sha256_final(ctx, e->sha256);
                        e->has_sha256 = true;
                }
        }
        hash_sha256_free(ctx);
        free(buf);
        close(e->fd);
        e->fd = -1;
}

static char *creator_of(const char *record)
{
        json_t *o = json_loads(record, 0, NULL);
        const char *c = json_string_value(json_object_get(o, "creator"));
        char *ret = c ? strdup(c) : NULL;

        json_decref(o);
        return ret;
}

/* The creator the latest record of the content's CID gives (a link: only by CID; else by the
 * path before the change too), in this batch or the index, malloc'd; NULL if none. */
static char *creator_from_records(struct prsm *p, const struct batch *b, const struct pending *e)
{
        const struct cid *cid = e->has_cid ? &e->cid : e->has_old_cid ? &e->old_cid : NULL;
        const char *path = e->op == PRSM_OP_LINK ? NULL : e->old_path ? e->old_path : e->path;
        char *rec = NULL, *ret;

        for (size_t i = b->n; i-- > 0;) {
                const struct index_prov_row *row = &b->rows[i];

                if ((cid && row->cid && cid_equal(cid, row->cid)) ||
                    (path && strcmp(path, row->path) == 0))
                        return creator_of(row->record);
        }
        if (!cid && !path)
                return NULL;
        if (index_prov_latest(p->idx, cid, path, &rec) < 0)
                return NULL;
        ret = creator_of(rec);
        free(rec);
        return ret;
}

/* The unsigned record of e as the writer's seq and parent stand. */
static char *record_json(struct prsm *p, const struct batch *b, struct pending *e)
{
        char sha[2 * 32 + 1];
        _cleanup_free_ char *found = NULL;
        const char *creator = e->creator;
        json_t *o;
        char *s;

        if (!creator && (e->op == PRSM_OP_CREATE || e->op == PRSM_OP_MODIFY))
                creator = p->creator_id;
        if (!creator) {
                found = creator_from_records(p, b, e);
                creator = found ? found : e->op == PRSM_OP_LINK ? "unknown" : p->creator_id;
        }
        if (e->fd >= 0) {
                hash_fd(e);
                __atomic_sub_fetch(&p->held_fds, 1, __ATOMIC_RELAXED);
        }
        if (e->has_sha256)
                prsm_hex(e->sha256, sizeof(e->sha256), sha);
        o = json_pack("{s:i, s:I, s:s, s:o, s:o, s:o, s:I, s:o, s:s, s:s, s:I, s:o}", "v", 1, "seq",
                      (json_int_t)p->seq + 1, "op", prsm_op_name(e->op), "path", json_path(e->path),
                      "old_cid", json_cid(e->has_old_cid, &e->old_cid), "cid",
                      json_cid(e->has_cid, &e->cid), "size", (json_int_t)e->size, "sha256",
                      e->has_sha256 ? json_string(sha) : json_null(), "creator", creator, "signer",
                      p->creator_id, "time_ns", (json_int_t)e->time_ns, "parent",
                      p->has_parent ? json_string(p->parent) : json_null());
        if (o && e->old_path && json_object_set_new(o, "old_path", json_path(e->old_path)) < 0)
                json_object_clear(o);
        s = o && json_object_size(o) ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        return s;
}

/* ---- the writer ---- */

static void batch_done(struct batch *b)
{
        for (size_t i = 0; i < b->n; i++)
                free(b->texts[i]);
        free(b->rows);
        free(b->texts);
        *b = (struct batch){ 0 };
}

/* Signs and appends the events of list; 0, or -errno with seq and parent as they were. */
static int write_records(struct prsm *p, struct pending *list, size_t n)
{
        uint64_t seq0 = p->seq;
        char parent0[PRSM_HASH_HEX];
        bool has_parent0 = p->has_parent;
        struct batch b = { 0 };
        int r = 0;

        memcpy(parent0, p->parent, sizeof(parent0));
        b.rows = calloc(n, sizeof(*b.rows));
        b.texts = calloc(n, sizeof(*b.texts));
        if (!b.rows || !b.texts)
                r = -ENOMEM;
        for (struct pending *e = list; r >= 0 && e; e = e->next) {
                _cleanup_free_ char *json = record_json(p, &b, e);
                char *signed_text = NULL;

                r = json ? prsm_record_sign(p->id, json, &signed_text) : -ENOMEM;
                if (r >= 0)
                        r = prsm_record_hash(signed_text, p->parent);
                if (r < 0) {
                        free(signed_text);
                        break;
                }
                p->has_parent = true;
                p->seq++;
                b.texts[b.n] = signed_text;
                b.rows[b.n] = (struct index_prov_row){ .seq = p->seq,
                                                       .path = e->path,
                                                       .cid = e->has_cid ? &e->cid : NULL,
                                                       .record = signed_text };
                b.n++;
        }
        if (r >= 0)
                r = index_prov_append(p->idx, b.rows, b.n);
        if (r < 0) {
                p->seq = seq0;
                p->has_parent = has_parent0;
                memcpy(p->parent, parent0, sizeof(parent0));
        } else
                __atomic_add_fetch(&p->st.records_written, b.n, __ATOMIC_RELAXED);
        batch_done(&b);
        return r;
}

static int flush_counters(struct prsm *p)
{
        struct index_access *rows = NULL;
        struct prsm_counter **taken = NULL;
        size_t n = 0, cap;
        uint64_t opens = 0;
        int r = 0;

        pthread_mutex_lock(&p->counters_lock);
        cap = p->n_counters;
        if (cap) {
                rows = calloc(cap, sizeof(*rows));
                taken = calloc(cap, sizeof(*taken));
        }
        for (size_t b = 0; rows && taken && b < COUNTER_BUCKETS; b++)
                for (struct prsm_counter *c = p->buckets[b]; c; c = c->next) {
                        uint64_t o = __atomic_exchange_n(&c->opens, 0, __ATOMIC_ACQ_REL);
                        uint64_t by = __atomic_exchange_n(&c->bytes, 0, __ATOMIC_ACQ_REL);

                        if (!o && !by)
                                continue;
                        rows[n] = (struct index_access){ .cid = c->cid, .opens = o, .bytes = by };
                        taken[n++] = c;
                        opens += o;
                }
        pthread_mutex_unlock(&p->counters_lock);
        if (cap && (!rows || !taken))
                r = -ENOMEM; /* nothing taken: counted at the next pass */
        else if (n) {
                int64_t now = realtime_ns();

                /* the batch id: this flush's time, unique per flush of this index */
                r = index_ledger_add(p->idx, (uint64_t)now, now / 1000000000, rows, n);
                if (r < 0) {
                        /* not written: the counts go back, to be written once, later */
                        for (size_t i = 0; i < n; i++) {
                                __atomic_add_fetch(&taken[i]->opens, rows[i].opens,
                                                   __ATOMIC_RELAXED);
                                __atomic_add_fetch(&taken[i]->bytes, rows[i].bytes,
                                                   __ATOMIC_RELAXED);
                        }
                } else {
                        __atomic_add_fetch(&p->st.accesses_ledgered, opens, __ATOMIC_RELAXED);
                        __atomic_add_fetch(&p->st.ledger_flushes, 1, __ATOMIC_RELAXED);
                }
        }
        free(rows);
        free(taken);
        return r;
}

/* One pass: the queued records, then the counters. */
static int writer_pass(struct prsm *p)
{
        struct pending *list, *e;
        size_t n;
        int r = 0, c;

        pthread_mutex_lock(&p->lock);
        list = p->head;
        n = p->n_queued;
        p->head = NULL;
        p->tail = &p->head;
        p->n_queued = 0;
        pthread_mutex_unlock(&p->lock);
        if (list) {
                r = write_records(p, list, n);
                if (r < 0) {
                        struct pending **end = &list;

                        log_warning("cannot write %zu provenance record(s): %s; retrying", n,
                                    strerror(-r));
                        __atomic_add_fetch(&p->st.record_errors, 1, __ATOMIC_RELAXED);
                        /* back to the head, in order, before what came meanwhile */
                        while (*end)
                                end = &(*end)->next;
                        pthread_mutex_lock(&p->lock);
                        *end = p->head;
                        if (!p->head)
                                p->tail = end;
                        p->head = list;
                        p->n_queued += n;
                        pthread_mutex_unlock(&p->lock);
                        list = NULL;
                }
        }
        while ((e = list)) {
                list = e->next;
                pending_free(e);
        }
        c = p->ledger ? flush_counters(p) : 0;
        if (c < 0)
                log_warning("cannot write the access ledger: %s; the counts are kept",
                            strerror(-c));
        return r < 0 ? r : c;
}

static void *writer_thread(void *arg)
{
        struct prsm *p = arg;
        bool stop = false;

        while (!stop) {
                uint64_t asked;
                struct timespec ts;
                int r;

                pthread_mutex_lock(&p->lock);
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += (time_t)(p->flush_ms / 1000);
                ts.tv_nsec += (long)(p->flush_ms % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                while (!p->stop && p->flush_asked == p->flush_done && p->n_queued < 256 &&
                       pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
                        ;
                stop = p->stop;
                asked = p->flush_asked;
                pthread_mutex_unlock(&p->lock);
                r = writer_pass(p);
                pthread_mutex_lock(&p->lock);
                p->flush_result = r;
                p->flush_done = asked;
                pthread_cond_broadcast(&p->flushed);
                pthread_mutex_unlock(&p->lock);
        }
        return NULL;
}

/* ---- the interface ---- */

int prsm_new(const struct prsm_config *c, struct prsm **ret)
{
        pthread_condattr_t ca;
        struct prsm *p;
        char *last = NULL;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (struct prsm){ .idx = c->idx,
                            .id = c->id,
                            .creator_id = strdup(c->creator_id),
                            .provenance = c->provenance,
                            .ledger = c->ledger,
                            .flush_ms = c->flush_ms ? c->flush_ms : 1000 };
        p->tail = &p->head;
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->counters_lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_cond_init(&p->flushed, NULL);
        if (!p->creator_id) {
                prsm_free(p);
                return -ENOMEM;
        }
        /* the chain goes on from the last record stored, whoever wrote it */
        r = index_prov_last(p->idx, &p->seq, &last);
        if (r >= 0) {
                r = prsm_record_hash(last, p->parent);
                p->has_parent = r >= 0;
                if (r < 0)
                        log_warning("the last provenance record (%" PRIu64 ") is not JSON: the "
                                    "chain goes on without a parent",
                                    p->seq);
                r = 0;
        } else if (r == -ENOENT)
                r = 0;
        free(last);
        if (r >= 0)
                r = -pthread_create(&p->thread, NULL, writer_thread, p);
        if (r < 0) {
                prsm_free(p);
                return r;
        }
        p->started = true;
        *ret = p;
        return 0;
}

void prsm_free(struct prsm *p)
{
        struct pending *e;

        if (!p)
                return;
        if (p->started) {
                pthread_mutex_lock(&p->lock);
                p->stop = true;
                pthread_cond_signal(&p->cond);
                pthread_mutex_unlock(&p->lock);
                pthread_join(p->thread, NULL);
        }
        if (p->n_queued)
                log_error("%zu provenance record(s) could not be written", p->n_queued);
        while ((e = p->head)) {
                p->head = e->next;
                pending_free(e);
        }
        for (size_t b = 0; b < COUNTER_BUCKETS; b++)
                while (p->buckets[b]) {
                        struct prsm_counter *c = p->buckets[b];

                        p->buckets[b] = c->next;
                        free(c);
                }
        pthread_cond_destroy(&p->cond);
        pthread_cond_destroy(&p->flushed);
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->counters_lock);
        free(p->creator_id);
        free(p);
}

const char *prsm_creator_id(const struct prsm *p)
{
        return p->creator_id;
}

bool prsm_has_provenance(const struct prsm *p)
{
        return p && p->provenance;
}

void prsm_get_stats(struct prsm *p, struct prsm_stats *ret)
{
        ret->records_written = __atomic_load_n(&p->st.records_written, __ATOMIC_RELAXED);
        ret->record_errors = __atomic_load_n(&p->st.record_errors, __ATOMIC_RELAXED);
        ret->accesses_ledgered = __atomic_load_n(&p->st.accesses_ledgered, __ATOMIC_RELAXED);
        ret->ledger_flushes = __atomic_load_n(&p->st.ledger_flushes, __ATOMIC_RELAXED);
}

static int dup_opt(const char *s, char **ret)
{
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

void prsm_note(struct prsm *p, const struct prsm_event *e)
{
        struct pending *q;
        bool dropped = false;

        if (!p || !p->provenance || !e->path) {
                if (e->fd >= 0)
                        close(e->fd);
                return;
        }
        q = calloc(1, sizeof(*q));
        if (!q || dup_opt(e->path, &q->path) < 0 || dup_opt(e->old_path, &q->old_path) < 0 ||
            dup_opt(e->creator, &q->creator) < 0) {
                if (q)
                        q->fd = -1;
                pending_free(q);
                if (e->fd >= 0)
                        close(e->fd);
                log_error("out of memory: the provenance record of %s is lost", e->path);
                return;
        }
        q->op = e->op;
        q->has_old_cid = e->old_cid != NULL;
        if (e->old_cid)
                q->old_cid = *e->old_cid;
        q->has_cid = e->cid != NULL;
        if (e->cid)
                q->cid = *e->cid;
        q->size = e->size;
        q->has_sha256 = e->has_sha256;
        memcpy(q->sha256, e->sha256, sizeof(q->sha256));
        q->fd = e->fd;
        if (q->fd >= 0 && q->size <= HASH_INLINE_MAX)
                hash_fd(q); /* cheaper than holding its fd */
        else if (q->fd >= 0 &&
                 __atomic_add_fetch(&p->held_fds, 1, __ATOMIC_RELAXED) > MAX_HELD_FDS) {
                /* the writer is behind: no fd more, the record says sha256 unknown */
                __atomic_sub_fetch(&p->held_fds, 1, __ATOMIC_RELAXED);
                close(q->fd);
                q->fd = -1;
        }
        q->time_ns = realtime_ns();
        pthread_mutex_lock(&p->lock);
        if (p->n_queued >= MAX_QUEUED)
                dropped = true;
        else {
                *p->tail = q;
                p->tail = &q->next;
                if (++p->n_queued == 256)
                        pthread_cond_signal(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        if (dropped) {
                log_error("provenance queue full (the index does not take records): the record "
                          "of %s is lost",
                          e->path);
                if (q->fd >= 0)
                        __atomic_sub_fetch(&p->held_fds, 1, __ATOMIC_RELAXED);
                pending_free(q);
        }
}

int prsm_flush(struct prsm *p)
{
        uint64_t mine;
        int r;

        if (!p)
                return 0;
        pthread_mutex_lock(&p->lock);
        mine = ++p->flush_asked;
        pthread_cond_signal(&p->cond);
        while (p->flush_done < mine && !p->stop)
                pthread_cond_wait(&p->flushed, &p->lock);
        r = p->flush_done >= mine ? p->flush_result : -ECANCELED;
        pthread_mutex_unlock(&p->lock);
        return r;
}

static size_t bucket_of(const struct cid *cid)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */

        for (size_t i = 0; i < cid->len; i++)
                h = (h ^ cid->bin[i]) * 1099511628211ull;
        return (size_t)(h % COUNTER_BUCKETS);
}

struct prsm_counter *prsm_counter_get(struct prsm *p, const struct cid *cid)
{
        struct prsm_counter *c;
        size_t b;

        if (!p || !p->ledger || !cid)
                return NULL;
        b = bucket_of(cid);
        pthread_mutex_lock(&p->counters_lock);
        for (c = p->buckets[b]; c; c = c->next)
                if (cid_equal(&c->cid, cid))
                        break;
        if (!c && p->n_counters < MAX_COUNTERS) {
                c = calloc(1, sizeof(*c));
                if (c) {
                        c->cid = *cid;
                        c->next = p->buckets[b];
                        p->buckets[b] = c;
                        p->n_counters++;
                }
        } else if (!c && !p->counters_full) {
                p->counters_full = true;
                log_warning("access ledger: %u distinct CIDs read since start, more are not "
                            "counted",
                            MAX_COUNTERS);
        }
        pthread_mutex_unlock(&p->counters_lock);
        return c;
}

void prsm_counter_open(struct prsm_counter *c)
{
        if (c)
                __atomic_add_fetch(&c->opens, 1, __ATOMIC_RELAXED);
}

void prsm_counter_bytes(struct prsm_counter *c, uint64_t n)
{
        if (c)
                __atomic_add_fetch(&c->bytes, n, __ATOMIC_RELAXED);
}
