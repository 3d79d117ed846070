/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tree: grafting IPFS content into the index. Linking a CID fetches its root block only
 * (a file's data is never downloaded to link it): a file gets its size from the root, a
 * directory is stored "lazy", a symlink gets its target; a UnixFS 1.5 mode (without setuid,
 * setgid and sticky bits) and mtime in the root block are the node's.
 *
 * A lazy directory is filled from its own blocks, never all at once:
 * - a lookup of one name walks only the HAMT shards on the name's path (a basic directory is
 *   one block) and links that one entry;
 * - readdir adds entries in batches as it goes (FS_LIST_BATCH), so the first names come after
 *   one batch, whatever the directory's size; operations that need every entry (a new entry
 *   in it, rmdir, publish of a changed one) list the rest (fs_tree_expand).
 * A listing is a resumable walk (unixfs_dir_iter: one block per HAMT level in memory, the next
 * shards prefetched) kept between batches, per directory: different directories are listed in
 * parallel, one batch at a time per directory, and no lock is held across the network. Each
 * batch is one index transaction; the last one marks the directory clean. The index keeps
 * every name once (an entry a lookup linked, or that an earlier walk added before a restart,
 * is skipped), and readdir's cookies only grow, so a listing read while it is being filled
 * still shows each name exactly once.
 *
 * An entry's type: a raw block is a file (its size is the link's Tsize, checked when the file
 * is opened); identity CIDs are their own block; a dag-pb entry needs its root block, fetched
 * for the whole batch in parallel, bounded by the request's deadline. An entry whose block
 * does not come is stored without a type (index.h) and listed as DT_UNKNOWN, without
 * attributes in readdirplus; its lookup fetches the block again and answers EIO until it
 * comes, so one unavailable entry never hides its siblings. A block that is not UnixFS makes
 * its entry invisible (logged), as a hostile name does.
 *
 * Names in linked directories come from outside: an empty name, one with '/' or NUL, "." or
 * "..", or one over 255 bytes is skipped and logged, never handed to the kernel; a duplicate
 * name keeps its first entry.
 *
 * .ipfs/: a hidden, read-only directory at the root; looking up a CID in it links that CID
 * there (read-only, kept in the index), so .ipfs/<cid>/sub/path resolves any content.
 *
 * Lock order: lists_lock only, never held across the index, the store or the network.
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
        uint64_t start = fs_request_start_ns ? fs_request_start_ns : net_now_ns();

        /* timeout and fsync_timeout change live (a reload stores them atomically) */
        return start + __atomic_load_n(&fs->cfg->timeout_ms, __ATOMIC_RELAXED) * 1000000ull;
}

struct fetch_ctx {
        struct fs *fs;
        uint64_t deadline_ns;
};

/* A block of a directory's walk. No node has it: the entries it holds are unknown, which is
 * not "no such entry". */
static int fetch_cb(const struct cid *cid, uint8_t **ret, size_t *ret_len, void *userdata)
{
        struct fetch_ctx *fc = userdata;
        struct net_block *b = NULL;
        uint8_t *copy;
        int r;

        r = fs_block_get(fc->fs, cid, fc->deadline_ns, &b);
        if (r < 0)
                return r == -ENOENT ? -EHOSTUNREACH : r;
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
        /* UnixFS 1.5 mode: the permission bits only. Setuid, setgid and sticky from content
         * anyone could have made are dropped: a linked setuid binary must not become one. */
        n->mode = type | (node.fs.has_mode && type != S_IFLNK
                                  ? node.fs.mode & 0777 & (flags & INDEX_FLAG_RO ? ~0222u : ~0u)
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
        r = fs_block_get(fs, cid, fs_deadline(fs), &b);
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

/* ---- listings ---- */

struct fs_listing {
        struct fs_listing *next; /* fs->lists (lists_lock) */
        uint64_t ino;
        struct cid cid;             /* the directory's, which the walk lists */
        struct unixfs_dir_iter *it; /* owned; NULL: the walk starts (again) at the first entry */
        bool is_busy;               /* lists_lock: a thread is adding a batch; only it uses it */
        bool check_taken;           /* entries were in the index when the walk started */
        uint64_t used;              /* lists_lock: LRU stamp */
};

static void listing_free(struct fs_listing *l)
{
        if (!l)
                return;
        unixfs_dir_iter_free(l->it);
        free(l);
}

void fs_listings_init(struct fs *fs)
{
        pthread_mutex_init(&fs->lists_lock, NULL);
        pthread_cond_init(&fs->lists_cond, NULL);
}

void fs_listings_done(struct fs *fs)
{
        while (fs->lists) {
                struct fs_listing *l = fs->lists;

                fs->lists = l->next;
                listing_free(l);
        }
        pthread_cond_destroy(&fs->lists_cond);
        pthread_mutex_destroy(&fs->lists_lock);
}

/* One batch of a listing: the entries the walk gave, and what the index will get. */
struct batch {
        struct index_child *kids;
        struct cid *cids;   /* kids[i].n.cid points here */
        char **targets;     /* symlink targets */
        struct cid *wanted; /* blocks to prefetch */
        size_t n, max;
        size_t bad_names, unknown, broken;
};

static int batch_init(struct batch *b, size_t max)
{
        *b = (struct batch){ .max = max,
                             .kids = calloc(max, sizeof(*b->kids)),
                             .cids = calloc(max, sizeof(*b->cids)),
                             .targets = calloc(max, sizeof(*b->targets)),
                             .wanted = calloc(max, sizeof(*b->wanted)) };
        return b->kids && b->cids && b->targets && b->wanted ? 0 : -ENOMEM;
}

static void batch_done(struct batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                free((char *)b->kids[i].name);
                free(b->targets[i]);
        }
        free(b->kids);
        free(b->cids);
        free(b->targets);
        free(b->wanted);
}

static int first_entry_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        (void)name;
        (void)a;
        (void)cookie;
        *(bool *)ud = true;
        return 1;
}

static int batch_add(struct fs *fs, const struct fs_listing *l, struct batch *b,
                     const struct unixfs_dirent *e)
{
        struct index_attr a;
        char *name;
        int r;

        /* a NUL inside the name shows as a shorter string */
        if (e->name_len != strlen(e->name) || !index_name_ok(e->name)) {
                b->bad_names++;
                log_warning("directory %" PRIu64 ": skipping an entry with an invalid name "
                            "(%zu bytes)",
                            l->ino, e->name_len);
                return 0;
        }
        if (l->check_taken) {
                /* linked by a lookup, or by this walk before a restart: nothing to fetch */
                r = index_lookup(fs->idx, l->ino, e->name, &a);
                if (r != -ENOENT)
                        return r;
        }
        name = strdup(e->name);
        if (!name)
                return -ENOMEM;
        b->cids[b->n] = e->cid;
        b->kids[b->n] = (struct index_child){ .name = name, .n.size = e->tsize };
        b->n++;
        return 0;
}

/* Whether an entry's type needs its root block: dag-pb does (identity CIDs are their own
 * block); a raw block is a file, other codecs are nothing a path can show. */
static bool needs_block(const struct cid *cid)
{
        return cid->codec == CID_CODEC_DAG_PB || cid_is_identity(cid);
}

/* What the entry cid of a directory with these flags is, from its root block. A block that
 * does not come is -EHOSTUNREACH (or the store's error), never -ENOENT. */
static int describe_entry(struct fs *fs, const struct cid *cid, uint64_t tsize, uint32_t flags,
                          uint64_t deadline_ns, struct index_new_node *n, char **ret_target)
{
        struct net_block *b = NULL;
        int r;

        if (needs_block(cid)) {
                r = fs_block_get(fs, cid, deadline_ns, &b);
                if (r < 0)
                        return r == -ENOENT ? -EHOSTUNREACH : r;
        }
        r = describe(cid, b, tsize, flags, n, ret_target);
        net_block_unref(b);
        return r;
}

/* Types and sizes of a batch: the blocks it needs fetched in parallel, then read in order. */
static void describe_batch(struct fs *fs, const struct index_attr *dir, struct batch *b,
                           uint64_t deadline_ns)
{
        size_t nw = 0;

        for (size_t i = 0; i < b->n; i++)
                if (needs_block(&b->cids[i]) && !cid_is_identity(&b->cids[i]))
                        b->wanted[nw++] = b->cids[i];
        (void)store_prefetch(fs->store, b->wanted, nw, deadline_ns);
        for (size_t i = 0; i < b->n; i++) {
                struct index_child *k = &b->kids[i];
                uint64_t tsize = k->n.size;
                int r;

                k->n = (struct index_new_node){ .uid = dir->uid,
                                                .gid = dir->gid,
                                                .cid = &b->cids[i] };
                r = describe_entry(fs, &b->cids[i], tsize, dir->flags, deadline_ns, &k->n,
                                   &b->targets[i]);
                if (r == -EOPNOTSUPP || r == -EBADMSG) {
                        /* one broken entry must not hide its siblings: it becomes invisible */
                        log_warning("directory %" PRIu64 ": skipping entry '%s': %s", dir->ino,
                                    k->name, strerror(-r));
                        ((char *)k->name)[0] = '\0'; /* index_expand skips empty names */
                        b->broken++;
                } else if (r < 0) {
                        /* listed without a type until its block comes (index.h) */
                        k->n = (struct index_new_node){
                                .mode = default_perm(S_IFREG, dir->flags),
                                .uid = dir->uid,
                                .gid = dir->gid,
                                .size = tsize,
                                .flags = dir->flags,
                                .cid = &b->cids[i],
                        };
                        b->unknown++;
                }
        }
}

static void prefetch_shards(struct fs *fs, const struct unixfs_dir_iter *it, uint64_t deadline_ns)
{
        struct cid next[FS_SHARD_PREFETCH];
        size_t n = unixfs_dir_iter_upcoming(it, next, ELEMENTSOF(next));

        (void)store_prefetch(fs->store, next, n, deadline_ns);
}

/*
 * Adds the next batch of up to max entries of dir to the index (l is this thread's). Returns
 * 0 when the directory is complete, 1 when entries may be left, or -errno: the walk's error
 * (kept: a shard that did not come is fetched again at the next call) when it gave nothing.
 */
static int fill_batch(struct fs *fs, const struct index_attr *dir, struct fs_listing *l, size_t max)
{
        struct fetch_ctx fc = { .fs = fs, .deadline_ns = fs_deadline(fs) };
        uint64_t shards = UINT64_MAX;
        size_t added = 0, skipped = 0;
        struct unixfs_dirent e;
        struct batch b;
        int r, walked = 1;

        if (!l->it || !cid_equal(&l->cid, &dir->cid)) {
                bool has_entries = false;

                unixfs_dir_iter_free(l->it);
                l->it = NULL;
                r = index_readdir(fs->idx, dir->ino, 0, first_entry_cb, &has_entries);
                if (r >= 0)
                        r = unixfs_dir_iter_new(&dir->cid, &l->it);
                if (r < 0)
                        return r;
                l->cid = dir->cid;
                l->check_taken = has_entries;
        }
        r = batch_init(&b, max);
        while (r >= 0 && b.n < max) {
                if (unixfs_dir_iter_shards(l->it) != shards) {
                        shards = unixfs_dir_iter_shards(l->it);
                        prefetch_shards(fs, l->it, fc.deadline_ns);
                }
                walked = unixfs_dir_iter_next(l->it, fetch_cb, &fc, &e);
                if (walked <= 0)
                        break;
                r = batch_add(fs, l, &b, &e);
        }
        if (r >= 0) {
                describe_batch(fs, dir, &b, fc.deadline_ns);
                if (b.n || walked == 0)
                        r = index_expand(fs->idx, dir->ino, b.kids, b.n, walked == 0, &added,
                                         &skipped);
        }
        if (r >= 0) {
                skipped += b.bad_names;
                __atomic_add_fetch(&fs->st.entries_skipped, skipped, __ATOMIC_RELAXED);
                if (walked == 0)
                        __atomic_add_fetch(&fs->st.expansions, 1, __ATOMIC_RELAXED);
                if (b.unknown) {
                        char s[CID_MAX_STR];

                        log_warning("directory %s: %zu entries listed without a type: their "
                                    "blocks did not come",
                                    cid_to_string(&dir->cid, s), b.unknown);
                }
                log_debug("directory %" PRIu64 ": %zu entries added, %zu skipped%s", dir->ino,
                          added, skipped, walked == 0 ? ", complete" : "");
        }
        batch_done(&b);
        if (r < 0)
                return r;
        if (walked < 0 && b.n == 0) {
                char s[CID_MAX_STR];

                log_warning("cannot list directory %s: %s", cid_to_string(&dir->cid, s),
                            strerror(-walked));
                return walked;
        }
        return walked == 0 ? 0 : 1;
}

static struct fs_listing *listing_find(struct fs *fs, uint64_t ino)
{
        for (struct fs_listing *l = fs->lists; l; l = l->next)
                if (l->ino == ino)
                        return l;
        return NULL;
}

static void listing_unlink(struct fs *fs, struct fs_listing *l)
{
        for (struct fs_listing **pp = &fs->lists; *pp; pp = &(*pp)->next)
                if (*pp == l) {
                        *pp = l->next;
                        fs->n_lists--;
                        return;
                }
}

/* The least recently used idle listing when there are too many (lists_lock): its walk
 * restarts if its directory is read again. */
static struct fs_listing *listing_evict(struct fs *fs)
{
        struct fs_listing *old = NULL;

        if (fs->n_lists < FS_LISTINGS_MAX)
                return NULL;
        for (struct fs_listing *l = fs->lists; l; l = l->next)
                if (!l->is_busy && (!old || l->used < old->used))
                        old = l;
        if (old)
                listing_unlink(fs, old);
        return old;
}

/*
 * Adds the next batch (up to max entries) of lazy directory dir. Returns 0 when dir is
 * complete, 1 when entries may be left or another thread added a batch meanwhile (read the
 * index again), or -errno.
 */
static int list_more(struct fs *fs, const struct index_attr *dir, size_t max)
{
        struct fs_listing *l, *evicted = NULL;
        int r;

        if (!dir->has_cid || !fs->store)
                return -EIO;
        if (fs_no_fetch)
                return -EWOULDBLOCK; /* a walk's batch is not undone: only where it may wait */
        pthread_mutex_lock(&fs->lists_lock);
        l = listing_find(fs, dir->ino);
        if (l && l->is_busy) {
                /* one batch at a time per directory: wait for the other one's */
                while ((l = listing_find(fs, dir->ino)) && l->is_busy)
                        pthread_cond_wait(&fs->lists_cond, &fs->lists_lock);
                pthread_mutex_unlock(&fs->lists_lock);
                return 1;
        }
        if (!l) {
                l = calloc(1, sizeof(*l));
                if (!l) {
                        pthread_mutex_unlock(&fs->lists_lock);
                        return -ENOMEM;
                }
                l->ino = dir->ino;
                evicted = listing_evict(fs);
                l->next = fs->lists;
                fs->lists = l;
                fs->n_lists++;
        }
        l->is_busy = true;
        l->used = ++fs->lists_clock;
        pthread_mutex_unlock(&fs->lists_lock);
        listing_free(evicted);

        r = fill_batch(fs, dir, l, max);

        pthread_mutex_lock(&fs->lists_lock);
        l->is_busy = false;
        /* done, or a walk that cannot go on (malformed); a fetch error is tried again */
        if (r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOTDIR || r == -ENOMEM)
                listing_unlink(fs, l);
        else
                l = NULL;
        pthread_cond_broadcast(&fs->lists_cond);
        pthread_mutex_unlock(&fs->lists_lock);
        listing_free(l);
        return r;
}

int fs_tree_list_more(struct fs *fs, const struct index_attr *dir)
{
        if (dir->state != INDEX_STATE_LAZY)
                return 0;
        return list_more(fs, dir, FS_LIST_BATCH);
}

int fs_tree_expand(struct fs *fs, const struct index_attr *dir)
{
        struct index_attr now = *dir;
        int r;

        while (now.state == INDEX_STATE_LAZY) {
                r = list_more(fs, &now, FS_EXPAND_BATCH);
                if (r < 0)
                        return r;
                r = index_getattr(fs->idx, dir->ino, &now);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- lookups ---- */

/* Gives an entry listed without a type what its root block says; -EIO while it does not
 * come (the entry exists: not ENOENT). */
int fs_tree_resolve(struct fs *fs, struct index_attr *a)
{
        struct index_new_node n = { .uid = a->uid, .gid = a->gid, .cid = &a->cid };
        char *target = NULL, s[CID_MAX_STR];
        int r;

        if ((a->mode & S_IFMT) != 0)
                return 0;
        if (!a->has_cid || !fs->store)
                return -EIO;
        r = describe_entry(fs, &a->cid, a->size, a->flags, fs_deadline(fs), &n, &target);
        if (r >= 0)
                r = index_resolve(fs->idx, a->ino, &n, a);
        free(target);
        if (r < 0)
                log_debug("entry %" PRIu64 " (%s) has no type yet: %s", a->ino,
                          cid_to_string(&a->cid, s), strerror(-r));
        return r == -EOPNOTSUPP || r == -EBADMSG || r == -EHOSTUNREACH || r == -ETIMEDOUT ? -EIO
                                                                                          : r;
}

/* name in lazy directory dir, from the blocks on its path: that one entry is linked. */
static int lookup_lazy(struct fs *fs, const struct index_attr *dir, const char *name,
                       struct index_attr *ret)
{
        struct fetch_ctx fc = { .fs = fs, .deadline_ns = fs_deadline(fs) };
        struct index_child kid = { .name = name };
        char *target = NULL;
        struct cid cid;
        uint64_t tsize;
        int r;

        if (!dir->has_cid || !fs->store)
                return -EIO;
        r = unixfs_dir_lookup(&dir->cid, name, fetch_cb, &fc, &cid, &tsize);
        if (r < 0)
                return r;
        kid.n = (struct index_new_node){ .uid = dir->uid, .gid = dir->gid, .cid = &cid };
        r = describe_entry(fs, &cid, tsize, dir->flags, fc.deadline_ns, &kid.n, &target);
        if (r == -EOPNOTSUPP || r == -EBADMSG)
                r = -ENOENT; /* invisible, as in a listing */
        if (r >= 0)
                r = index_expand(fs->idx, dir->ino, &kid, 1, false, NULL, NULL);
        free(target);
        return r < 0 ? r : index_lookup(fs->idx, dir->ino, name, ret);
}

int fs_tree_lookup(struct fs *fs, uint64_t parent, const char *name, struct index_attr *ret)
{
        struct index_attr dir;
        struct cid cid;
        int r;

        /* a follow mount's root shows the followed tree (follow.c); .ipfs stays its own */
        if (parent == INDEX_ROOT_INO && fs_is_following(fs) && strcmp(name, FS_IPFS_NAME) != 0) {
                parent = fs_follow_dir(fs);
                if (!parent)
                        return -ENOENT; /* no root resolved yet */
        }
        r = index_lookup(fs->idx, parent, name, ret);
        if (r >= 0)
                return fs_tree_resolve(fs, ret);
        if (r != -ENOENT)
                return r;
        r = index_getattr(fs->idx, parent, &dir);
        if (r < 0)
                return r;
        if (!S_ISDIR(dir.mode))
                return -ENOTDIR;
        if (dir.state == INDEX_STATE_LAZY) {
                r = lookup_lazy(fs, &dir, name, ret);
                return r >= 0 ? fs_tree_resolve(fs, ret) : r;
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

int fs_resolve_path_through(struct fs *fs, const char *path, struct index_attr *ret,
                            uint32_t *ret_through)
{
        char *copy = strdup(path), *save = NULL, *part;
        uint32_t through = 07777;
        int r;

        if (!copy)
                return -ENOMEM;
        r = index_getattr(fs->idx, INDEX_ROOT_INO, ret);
        for (part = strtok_r(copy, "/", &save); part && r >= 0; part = strtok_r(NULL, "/", &save)) {
                if (!S_ISDIR(ret->mode))
                        r = -ENOTDIR;
                else {
                        through &= ret->mode;
                        r = fs_tree_lookup(fs, ret->ino, part, ret);
                }
        }
        free(copy);
        if (r >= 0 && ret_through)
                *ret_through = through;
        return r;
}

int fs_resolve_path(struct fs *fs, const char *path, struct index_attr *ret)
{
        return fs_resolve_path_through(fs, path, ret, NULL);
}
