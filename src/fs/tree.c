/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tree: grafting IPFS content into the index. Linking a CID fetches its root block only
 * (a file's data is never downloaded to link it): a file gets its size from the root, a
 * directory is stored "lazy" and expanded on its first lookup or readdir, a symlink gets its
 * target. Expansion lists the directory (HAMT shards fetched as needed), learns each child's
 * type and size from the child's root block (raw children need no fetch: a raw block is a
 * file, its size is the link's Tsize, checked when the file is opened), and inserts every
 * child in one transaction, so a listing is never half there. Child blocks are prefetched in
 * batches, so a cold directory costs a few round trips, not one per entry.
 *
 * Names in linked directories come from outside: an empty name, one with '/' or NUL, "." or
 * "..", or one over 255 bytes is skipped and logged, never handed to the kernel; a duplicate
 * name keeps its first entry.
 *
 * .ipfs/: a hidden, read-only directory at the root; looking up a CID in it links that CID
 * there (read-only, kept in the index), so .ipfs/<cid>/sub/path resolves any content.
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

uint64_t fs_deadline(const struct fs *fs)
{
        return net_now_ns() + fs->cfg->timeout_ms * 1000000ull;
}

static int fetch_cb(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *userdata)
{
        struct fs *fs = userdata;
        struct net_block *b = NULL;
        uint8_t *copy;
        int r;

        if (!fs->store)
                return -ENOENT;
        r = store_get(fs->store, cid, fs_deadline(fs), &b);
        if (r < 0)
                return r;
        copy = malloc(b->len ? b->len : 1);
        if (!copy) {
                net_block_unref(b);
                return -ENOMEM;
        }
        memcpy(copy, b->data, b->len);
        *ret = copy;
        *ret_len = b->len;
        net_block_unref(b);
        return 0;
}

static uint32_t default_perm(uint32_t type, uint32_t flags)
{
        uint32_t perm = type == S_IFDIR ? 0755 : type == S_IFLNK ? 0777 : 0644;

        return flags & INDEX_FLAG_RO && type != S_IFLNK ? perm & ~0222u : perm;
}

/*
 * What an index node for cid looks like, from its root block (NULL for a raw block whose
 * size the caller knows: size_hint). *ret_target is a malloc'ed symlink target.
 */
static int describe(const struct cid *cid, const struct net_block *b, uint64_t size_hint,
                    uint32_t flags, struct index_new_node *n, char **ret_target)
{
        struct unixfs_node node;
        uint32_t type;
        int r;

        *ret_target = NULL;
        n->flags = flags;
        if (cid->codec == CID_CODEC_RAW) {
                n->mode = S_IFREG | default_perm(S_IFREG, flags);
                n->size = b ? b->len : size_hint;
                return 0;
        }
        if (cid->codec != CID_CODEC_DAG_PB)
                return -EOPNOTSUPP; /* dag-cbor and friends are not files */
        r = unixfs_node_decode(cid, b->data, b->len, &node);
        if (r < 0)
                return r;
        switch (node.fs.type) {
        case UNIXFS_FILE:
        case UNIXFS_RAW: {
                struct unixfs_layout l;

                type = S_IFREG;
                r = unixfs_layout_open(cid, b->data, b->len, &l);
                if (r < 0)
                        goto out;
                n->size = l.size;
                unixfs_layout_done(&l);
                break;
        }
        case UNIXFS_DIRECTORY:
        case UNIXFS_HAMT_SHARD:
                type = S_IFDIR;
                n->state = INDEX_STATE_LAZY;
                break;
        case UNIXFS_SYMLINK:
                type = S_IFLNK;
                if (!node.fs.has_data || node.fs.data.len == 0 ||
                    node.fs.data.len > FS_SYMLINK_MAX ||
                    memchr(node.fs.data.p, '\0', node.fs.data.len)) {
                        r = -EBADMSG;
                        goto out;
                }
                *ret_target = strndup((const char *)node.fs.data.p, node.fs.data.len);
                if (!*ret_target) {
                        r = -ENOMEM;
                        goto out;
                }
                n->target = *ret_target;
                n->size = node.fs.data.len;
                break;
        default:
                r = -EBADMSG;
                goto out;
        }
        n->mode = type | (node.fs.has_mode && type != S_IFLNK
                                  ? node.fs.mode & 07777 & (flags & INDEX_FLAG_RO ? ~0222u : ~0u)
                                  : default_perm(type, flags));
        if (node.fs.has_mtime) { /* UnixFS: mtime, any int64 seconds; nanos < 1e9 */
                n->has_mtime = true;
                n->mtime = (struct timespec){ .tv_sec = (time_t)node.fs.mtime_sec,
                                              .tv_nsec = (long)node.fs.mtime_nsec };
        }
        r = 0;
out:
        unixfs_node_done(&node);
        return r;
}

int fs_tree_link(struct fs *fs, const struct cid *cid, uint64_t parent, const char *name,
                 uint32_t flags, uint32_t uid, uint32_t gid, struct index_attr *ret)
{
        struct index_new_node n = { .uid = uid, .gid = gid, .cid = cid };
        struct net_block *b = NULL;
        char *target = NULL;
        int r;

        if (!fs->store)
                return -EHOSTUNREACH;
        r = store_get(fs->store, cid, fs_deadline(fs), &b);
        if (r < 0)
                return r;
        r = describe(cid, b, 0, flags, &n, &target);
        net_block_unref(b);
        if (r < 0)
                return r;
        r = index_mknode(fs->idx, parent, name, &n, ret);
        free(target);
        if (r >= 0)
                __atomic_add_fetch(&fs->st.links, 1, __ATOMIC_RELAXED);
        return r;
}

struct listing {
        struct index_child *kids;
        size_t n, cap;
        size_t bad_names;
        uint64_t dir_ino;
};

static int list_cb(const struct unixfs_dirent *e, void *userdata)
{
        struct listing *ls = userdata;
        struct index_child *k;

        /* a NUL inside the name shows as a shorter string */
        if (e->name_len != strlen(e->name) || !index_name_ok(e->name)) {
                ls->bad_names++;
                log_warning("directory %" PRIu64 ": skipping an entry with an invalid name "
                            "(%zu bytes)",
                            ls->dir_ino, e->name_len);
                return 0;
        }
        if (ls->n == ls->cap) {
                size_t cap = ls->cap ? ls->cap * 2 : 64;
                struct index_child *p = reallocarray(ls->kids, cap, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                ls->kids = p;
                ls->cap = cap;
        }
        k = &ls->kids[ls->n];
        *k = (struct index_child){ .name = strdup(e->name) };
        if (!k->name)
                return -ENOMEM;
        k->n.size = e->tsize; /* a hint until the child is described */
        ls->n++;
        return 0;
}

static void listing_done(struct listing *ls, struct cid *cids, char **targets)
{
        for (size_t i = 0; i < ls->n; i++) {
                free((char *)ls->kids[i].name);
                if (targets)
                        free(targets[i]);
        }
        free(ls->kids);
        free(cids);
        free(targets);
}

struct collect {
        struct listing ls;
        struct cid *cids;
        size_t cids_cap;
};

static int collect_cb(const struct unixfs_dirent *e, void *userdata)
{
        struct collect *c = userdata;
        size_t before = c->ls.n;
        int r;

        r = list_cb(e, &c->ls);
        if (r < 0 || c->ls.n == before)
                return r;
        if (c->ls.n > c->cids_cap) {
                size_t cap = c->ls.cap;
                struct cid *p = reallocarray(c->cids, cap, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                c->cids = p;
                c->cids_cap = cap;
        }
        c->cids[c->ls.n - 1] = e->cid;
        return 0;
}

/* Describes children [from, to): prefetches their root blocks, then reads them in order. */
static int describe_batch(struct fs *fs, struct collect *c, char **targets, uint32_t flags,
                          uint32_t uid, uint32_t gid, size_t from, size_t to)
{
        uint64_t deadline = fs_deadline(fs);
        struct cid fetch[FS_EXPAND_BATCH];
        size_t nf = 0;
        int r;

        for (size_t i = from; i < to; i++)
                if (c->cids[i].codec != CID_CODEC_RAW && !cid_is_identity(&c->cids[i]))
                        fetch[nf++] = c->cids[i];
        (void)store_prefetch(fs->store, fetch, nf, deadline);
        for (size_t i = from; i < to; i++) {
                struct index_child *k = &c->ls.kids[i];
                struct net_block *b = NULL;
                uint64_t hint = k->n.size;

                k->n = (struct index_new_node){ .uid = uid, .gid = gid, .cid = &c->cids[i] };
                if (c->cids[i].codec != CID_CODEC_RAW || cid_is_identity(&c->cids[i])) {
                        r = store_get(fs->store, &c->cids[i], deadline, &b);
                        if (r < 0)
                                return r;
                }
                r = describe(&c->cids[i], b, hint, flags, &k->n, &targets[i]);
                net_block_unref(b);
                if (r == -EOPNOTSUPP || r == -EBADMSG) {
                        /* one broken child must not hide its siblings: it becomes invisible */
                        log_warning("skipping entry '%s': %s", k->name, strerror(-r));
                        ((char *)k->name)[0] = '\0'; /* index_expand skips empty names */
                        continue;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int fs_tree_expand(struct fs *fs, const struct index_attr *dir)
{
        struct collect c = { 0 };
        struct index_attr now;
        char **targets = NULL;
        size_t added = 0, skipped = 0;
        int r;

        if (dir->state != INDEX_STATE_LAZY)
                return 0;
        if (!dir->has_cid || !fs->store)
                return -EIO;
        pthread_mutex_lock(&fs->expand_lock);
        /* someone may have expanded it while we waited */
        r = index_getattr(fs->idx, dir->ino, &now);
        if (r < 0 || now.state != INDEX_STATE_LAZY)
                goto unlock;
        c.ls.dir_ino = dir->ino;
        r = unixfs_dir_list(&dir->cid, fetch_cb, fs, collect_cb, &c);
        if (r < 0)
                goto out;
        targets = calloc(c.ls.n ? c.ls.n : 1, sizeof(*targets));
        if (!targets) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < c.ls.n; i += FS_EXPAND_BATCH) {
                r = describe_batch(fs, &c, targets, dir->flags, dir->uid, dir->gid, i,
                                   MIN(c.ls.n, i + FS_EXPAND_BATCH));
                if (r < 0)
                        goto out;
        }
        r = index_expand(fs->idx, dir->ino, c.ls.kids, c.ls.n, true, &added, &skipped);
        if (r < 0)
                goto out;
        skipped += c.ls.bad_names;
        __atomic_add_fetch(&fs->st.expansions, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&fs->st.entries_skipped, skipped, __ATOMIC_RELAXED);
        log_debug("expanded directory %" PRIu64 ": %zu entries, %zu skipped", dir->ino, added,
                  skipped);
out:
        if (r < 0) {
                char s[CID_MAX_STR];

                log_warning("cannot list directory %s: %s", cid_to_string(&dir->cid, s),
                            strerror(-r));
        }
        listing_done(&c.ls, c.cids, targets);
unlock:
        pthread_mutex_unlock(&fs->expand_lock);
        return r;
}

int fs_tree_lookup(struct fs *fs, uint64_t parent, const char *name, struct index_attr *ret)
{
        struct index_attr dir;
        struct cid cid;
        int r;

        r = index_lookup(fs->idx, parent, name, ret);
        if (r != -ENOENT)
                return r;
        r = index_getattr(fs->idx, parent, &dir);
        if (r < 0)
                return r;
        if (!S_ISDIR(dir.mode))
                return -ENOTDIR;
        if (dir.state == INDEX_STATE_LAZY) {
                r = fs_tree_expand(fs, &dir);
                if (r < 0)
                        return r;
                return index_lookup(fs->idx, parent, name, ret);
        }
        if (parent != fs->ipfs_ino || cid_parse(name, strlen(name), &cid) < 0)
                return -ENOENT;
        r = fs_tree_link(fs, &cid, parent, name, INDEX_FLAG_RO, 0, 0, ret);
        if (r == -EEXIST) /* another thread linked it first */
                return index_lookup(fs->idx, parent, name, ret);
        if (r == -EOPNOTSUPP || r == -EBADMSG)
                return -ENOENT; /* not UnixFS: nothing a path can show */
        return r;
}

int fs_resolve_path(struct fs *fs, const char *path, struct index_attr *ret)
{
        char *copy = strdup(path), *save = NULL, *part;
        int r;

        if (!copy)
                return -ENOMEM;
        r = index_getattr(fs->idx, INDEX_ROOT_INO, ret);
        for (part = strtok_r(copy, "/", &save); part && r >= 0; part = strtok_r(NULL, "/", &save)) {
                if (!S_ISDIR(ret->mode))
                        r = -ENOTDIR;
                else
                        r = fs_tree_lookup(fs, ret->ino, part, ret);
        }
        free(copy);
        return r;
}
