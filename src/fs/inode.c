/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the kernel and the open handles hold of each inode, the discipline of libfuse's
 * passthrough_ll: every reply that hands the kernel an entry (lookup, create, mknod, mkdir,
 * symlink, link, each readdirplus entry) adds one lookup, FORGET takes them back, and every
 * open handle counts too. An inode that no entry names (nlink 0) leaves the index only once
 * nothing holds it, so an inode number is never reused while the kernel may still use it:
 * SQLite gives a new inode the largest rowid plus one, which is the number of an inode just
 * dropped when that was the largest (a reused number showed another file's bytes and
 * attributes to a process that still had the old one open).
 *
 * The table also keeps, per inode, a content sequence number that a flush of new content
 * bumps: a handle opened on older content (a reader's view of the last closed version) sees
 * the change at its next read instead of serving what was replaced (a stale, short read made
 * the kernel think the file shrank, and the next O_APPEND write landed over earlier lines).
 *
 * One mutex, held for a hash lookup and never across anything else (a leaf lock).
 */
#define LOG_MODULE "fs"
#include <stdlib.h>

#include "fs_internal.h"

struct fs_inode {
        uint64_t ino;
        uint64_t nlookup; /* references the kernel holds */
        uint64_t nopen;   /* open handles */
        uint64_t seq;     /* bumped when the content changes */
        struct fs_inode *next;
};

static size_t bucket_of(uint64_t ino, size_t n)
{
        ino *= 0x9e3779b97f4a7c15ull; /* rowids are dense: spread them */
        return (size_t)(ino >> 32) & (n - 1);
}

void fs_inodes_init(struct fs_inodes *t)
{
        pthread_mutex_init(&t->lock, NULL);
}

void fs_inodes_done(struct fs_inodes *t)
{
        for (size_t i = 0; i < t->n_buckets; i++)
                for (struct fs_inode *e = t->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e);
                }
        free(t->buckets);
        pthread_mutex_destroy(&t->lock);
}

/* Under t->lock. */
static struct fs_inode **find(struct fs_inodes *t, uint64_t ino)
{
        struct fs_inode **pp;

        if (t->n_buckets == 0)
                return NULL;
        for (pp = &t->buckets[bucket_of(ino, t->n_buckets)]; *pp; pp = &(*pp)->next)
                if ((*pp)->ino == ino)
                        return pp;
        return NULL;
}

/* Doubles the bucket array when the table is fuller than one entry per bucket; a failed
 * allocation keeps the old array (longer chains, still correct). Under t->lock. */
static void grow(struct fs_inodes *t)
{
        size_t n = t->n_buckets ? t->n_buckets * 2 : 1024;
        struct fs_inode **b;

        if (t->n < t->n_buckets)
                return;
        b = calloc(n, sizeof(*b));
        if (!b)
                return;
        for (size_t i = 0; i < t->n_buckets; i++)
                for (struct fs_inode *e = t->buckets[i], *next; e; e = next) {
                        size_t k = bucket_of(e->ino, n);

                        next = e->next;
                        e->next = b[k];
                        b[k] = e;
                }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = n;
}

int fs_inode_ref(struct fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen)
{
        struct fs_inodes *t = &fs->inodes;
        struct fs_inode **pp, *e;
        int r = 0;

        pthread_mutex_lock(&t->lock);
        pp = find(t, ino);
        if (pp)
                e = *pp;
        else {
                grow(t);
                e = t->n_buckets ? calloc(1, sizeof(*e)) : NULL;
                if (!e)
                        r = -ENOMEM;
                else {
                        size_t k = bucket_of(ino, t->n_buckets);

                        e->ino = ino;
                        e->next = t->buckets[k];
                        t->buckets[k] = e;
                        t->n++;
                }
        }
        if (e) {
                e->nlookup += nlookup;
                e->nopen += nopen;
        }
        pthread_mutex_unlock(&t->lock);
        return r;
}

bool fs_inode_unref(struct fs *fs, uint64_t ino, uint64_t nlookup, uint64_t nopen)
{
        struct fs_inodes *t = &fs->inodes;
        struct fs_inode **pp, *e = NULL;
        bool unused = true;

        pthread_mutex_lock(&t->lock);
        pp = find(t, ino);
        if (pp) {
                (*pp)->nlookup -= MIN(nlookup, (*pp)->nlookup);
                (*pp)->nopen -= MIN(nopen, (*pp)->nopen);
                unused = (*pp)->nlookup == 0 && (*pp)->nopen == 0;
                if (unused) {
                        e = *pp;
                        *pp = e->next;
                        t->n--;
                }
        }
        pthread_mutex_unlock(&t->lock);
        free(e);
        return unused;
}

bool fs_inode_in_use(struct fs *fs, uint64_t ino)
{
        struct fs_inodes *t = &fs->inodes;
        bool used;

        pthread_mutex_lock(&t->lock);
        used = find(t, ino) != NULL;
        pthread_mutex_unlock(&t->lock);
        return used;
}

uint64_t fs_inode_seq(struct fs *fs, uint64_t ino)
{
        struct fs_inodes *t = &fs->inodes;
        struct fs_inode **pp;
        uint64_t seq;

        pthread_mutex_lock(&t->lock);
        pp = find(t, ino);
        seq = pp ? (*pp)->seq : 0;
        pthread_mutex_unlock(&t->lock);
        return seq;
}

void fs_inode_changed(struct fs *fs, uint64_t ino)
{
        struct fs_inodes *t = &fs->inodes;
        struct fs_inode **pp;

        pthread_mutex_lock(&t->lock);
        pp = find(t, ino);
        if (pp)
                (*pp)->seq++;
        pthread_mutex_unlock(&t->lock);
        /* The kernel drops its cached attributes and any answer already on its way with the
         * old ones (a listing or lookup that read the index before this change: the kernel
         * discards attributes older than an invalidation), so a reopen after close never sees
         * the previous size. Attributes only (offset < 0): no page is dropped, nothing waits. */
        if (fs->se)
                (void)fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}
