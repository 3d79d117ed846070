/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Follow mounts (-o follow=/ipns/NAME): a read-only mount whose root shows a published tree
 * and moves to each new root its name resolves to (the resolving thread is the daemon's; this
 * file owns the tree and the switch).
 *
 * How a switch stays whole ("never half-switched"):
 *  - each root the mount shows is the lazily linked directory .ipfs/<root CID>, an immutable
 *    tree of its own inodes (two roots never share an inode, even for a subtree with the
 *    same CID), so every directory below the root lists one tree's names whatever happens;
 *  - the mount root (INDEX_ROOT_INO) is an alias: lookups in it go to the current tree's
 *    directory (fs_tree_lookup), getattr shows that directory's attributes, and opendir
 *    records which directory its listing reads (fi->fh), so a listing that started on the
 *    old tree ends on it, and a new one starts on the new tree;
 *  - the new root's own entries are all put in the index (expanded) before the switch, which
 *    is one atomic store of the directory's inode; after it the kernel's entries of the
 *    root, old names and new ones (a negative entry of a name the new tree has), are dropped
 *    (notify_inval_entry). Entries in the root are handed to the kernel with the one-second
 *    timeout of mutable directories, not the year of .ipfs/, which bounds a lookup that raced
 *    the switch (it answered from the old tree, whole, just before).
 *  - files opened before keep their content: a handle holds its CID and layout.
 * Old roots stay under .ipfs/ as every CID looked up there does (the kernel may still hold
 * their inodes); the index keeps only what was listed or looked up of them.
 *
 * The current root's CID is kept in the index (meta 'follow_root'), so a restart shows the
 * last root before its first resolve, also when no node answers.
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

#define FOLLOW_META_KEY "follow_root"

void fs_follow_enable(struct fs *fs)
{
        fs->follow.is_on = true;
        pthread_mutex_init(&fs->follow.lock, NULL);
}

bool fs_is_following(const struct fs *fs)
{
        return fs->follow.is_on;
}

uint64_t fs_follow_dir(struct fs *fs)
{
        return __atomic_load_n(&fs->follow.dir_ino, __ATOMIC_ACQUIRE);
}

int fs_follow_restore(struct fs *fs)
{
        struct index_attr a;
        char *s = NULL;
        struct cid cid;
        int r;

        r = index_meta_get(fs->idx, FOLLOW_META_KEY, &s);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (cid_parse(s, strlen(s), &cid) < 0)
                r = -EBADMSG;
        else
                r = index_lookup(fs->idx, fs->ipfs_ino, s, &a);
        if (r >= 0 && !S_ISDIR(a.mode))
                r = -ENOTDIR;
        if (r < 0) {
                log_warning("the last followed root '%s' is not in the index (%s), ignoring", s,
                            strerror(-r));
                free(s);
                return 0;
        }
        pthread_mutex_lock(&fs->follow.lock);
        fs->follow.root = cid;
        fs->follow.has_root = true;
        pthread_mutex_unlock(&fs->follow.lock);
        __atomic_store_n(&fs->follow.dir_ino, a.ino, __ATOMIC_RELEASE);
        log_info("following: showing the last root %s until the name is resolved", s);
        free(s);
        return 1;
}

struct names {
        char **v;
        size_t n, cap;
};

static int name_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct names *ns = ud;

        (void)a;
        (void)cookie;
        if (ns->n == ns->cap) {
                size_t cap = ns->cap ? 2 * ns->cap : 64;
                char **v = reallocarray(ns->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                ns->v = v;
                ns->cap = cap;
        }
        ns->v[ns->n] = strdup(name);
        if (!ns->v[ns->n])
                return -ENOMEM;
        ns->n++;
        return 0;
}

/* Drops the kernel's entries in the mount root for every name dir has in the index (the
 * names it may have handed out). Not on a FUSE worker: the kernel may wait for one. */
static void inval_names(struct fs *fs, uint64_t dir)
{
        struct names ns = { 0 };

        if (!fs->se || !dir)
                return;
        if (index_readdir(fs->idx, dir, 0, name_cb, &ns) < 0)
                log_warning("cannot list the old root to drop the kernel's entries, ignoring");
        for (size_t i = 0; i < ns.n; i++) {
                (void)fuse_lowlevel_notify_inval_entry(fs->se, INDEX_ROOT_INO, ns.v[i],
                                                       strlen(ns.v[i]));
                free(ns.v[i]);
        }
        free(ns.v);
}

/* .ipfs/<root>: looked up, or linked from its root block (which must be a UnixFS directory). */
static int link_root(struct fs *fs, const struct cid *root, const char *s, struct index_attr *ret,
                     char *err, size_t err_size)
{
        int r;

        r = index_lookup(fs->idx, fs->ipfs_ino, s, ret);
        if (r == -ENOENT) {
                r = fs_tree_link(fs, root, fs->ipfs_ino, s, INDEX_FLAG_RO, 0, 0, ret);
                if (r == -EEXIST) /* a lookup in .ipfs/ linked it first */
                        r = index_lookup(fs->idx, fs->ipfs_ino, s, ret);
        }
        if (r == -EOPNOTSUPP || r == -EBADMSG) {
                (void)snprintf(err, err_size, "root %s is not UnixFS", s);
                return -EBADMSG;
        }
        if (r < 0) {
                (void)snprintf(err, err_size, "cannot fetch root %s: %s", s, strerror(-r));
                return r;
        }
        if (!S_ISDIR(ret->mode)) {
                (void)snprintf(err, err_size, "root %s is a %s, not a directory", s,
                               S_ISREG(ret->mode) ? "file" : "symlink or special file");
                return -ENOTDIR;
        }
        return 0;
}

int fs_follow_switch(struct fs *fs, const struct cid *root, char *err, size_t err_size)
{
        char s[CID_MAX_STR];
        struct index_attr a;
        uint64_t old;
        int r;

        err[0] = '\0';
        pthread_mutex_lock(&fs->follow.lock);
        r = fs->follow.has_root && cid_equal(&fs->follow.root, root);
        pthread_mutex_unlock(&fs->follow.lock);
        if (r)
                return 0;
        (void)cid_to_string(root, s);
        r = link_root(fs, root, s, &a, err, err_size);
        /* every entry of the new root in the index before anyone can look for one */
        if (r >= 0) {
                r = fs_tree_expand(fs, &a);
                if (r < 0)
                        (void)snprintf(err, err_size, "cannot list root %s: %s", s, strerror(-r));
        }
        if (r < 0) {
                __atomic_add_fetch(&fs->st.follow_rejected, 1, __ATOMIC_RELAXED);
                return r;
        }
        r = index_meta_set(fs->idx, FOLLOW_META_KEY, s);
        if (r < 0)
                log_warning("cannot record the followed root %s in the index (%s): a restart "
                            "shows the one before until its first resolve",
                            s, strerror(-r));
        pthread_mutex_lock(&fs->follow.lock);
        fs->follow.root = *root;
        fs->follow.has_root = true;
        fs->follow.switched_sec = (uint64_t)time(NULL);
        old = __atomic_exchange_n(&fs->follow.dir_ino, a.ino, __ATOMIC_ACQ_REL);
        pthread_mutex_unlock(&fs->follow.lock);
        __atomic_add_fetch(&fs->st.follow_switches, 1, __ATOMIC_RELAXED);
        if (fs->se)
                (void)fuse_lowlevel_notify_inval_inode(fs->se, INDEX_ROOT_INO, -1, 0);
        inval_names(fs, old);
        inval_names(fs, a.ino);
        log_notice("following: the mount now shows %s", s);
        return 1;
}

bool fs_follow_root(struct fs *fs, struct cid *ret, uint64_t *ret_switched_sec)
{
        bool has;

        pthread_mutex_lock(&fs->follow.lock);
        has = fs->follow.has_root;
        if (has)
                *ret = fs->follow.root;
        *ret_switched_sec = fs->follow.switched_sec;
        pthread_mutex_unlock(&fs->follow.lock);
        return has;
}

void fs_follow_done(struct fs *fs)
{
        if (fs->follow.is_on)
                pthread_mutex_destroy(&fs->follow.lock);
}
