/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE low-level adapter. Every handler answers from the index; none touches the network.
 * Lookup counts: inode numbers are persistent index rowids, so forget needs no bookkeeping
 * until unlink can free an inode that the kernel still references (write path).
 *
 * Attribute and entry timeouts: local directories can change through this mount only, and
 * the kernel learns of those changes from our own replies, so one second is a safe default;
 * content addressed by a CID (immutable) will get long timeouts with the read path.
 */
#define LOG_MODULE "fs"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "prsmfs/fs.h"
#include "prsmfs/log.h"

#define FS_BLKSIZE        (1024 * 1024) /* st_blksize: cp, dd, rsync use 1 MiB buffers */
#define FS_ATTR_TIMEOUT_S 1.0
#define XATTR_CID         "user.prsm.cid"
#define XATTR_CONTROL     "user.prsm.control" /* root only: prsmctl finds the socket here */

struct fs {
        struct index *idx;        /* borrowed */
        const struct config *cfg; /* borrowed */
        char *control_path;       /* owned, may be NULL */
};

int fs_new(struct index *idx, const struct config *cfg, struct fs **ret)
{
        struct fs *fs = calloc(1, sizeof(*fs));

        if (!fs)
                return -ENOMEM;
        fs->idx = idx;
        fs->cfg = cfg;
        *ret = fs;
        return 0;
}

void fs_free(struct fs *fs)
{
        if (!fs)
                return;
        free(fs->control_path);
        free(fs);
}

int fs_set_control_path(struct fs *fs, const char *path)
{
        char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        free(fs->control_path);
        fs->control_path = p;
        return 0;
}

int fs_errno_for_reply(int r)
{
        switch (r) {
        case -EBADMSG:
        case -EILSEQ:
        case -EPROTO:
                return EIO;
        case -ECANCELED:
                return EINTR;
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
                return EIO;
        default:
                return r < 0 ? -r : EIO;
        }
}

static void reply_err(fuse_req_t req, int r)
{
        (void)fuse_reply_err(req, fs_errno_for_reply(r));
}

static struct timespec ns_to_ts(int64_t ns)
{
        if (ns < 0)
                ns = 0;
        return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

static void attr_to_stat(const struct index_attr *a, struct stat *st)
{
        *st = (struct stat){
                .st_ino = a->ino,
                .st_mode = a->mode,
                .st_nlink = a->nlink,
                .st_uid = a->uid,
                .st_gid = a->gid,
                .st_size = (off_t)a->size,
                .st_blksize = FS_BLKSIZE,
                .st_blocks = (blkcnt_t)((a->size + 511) / 512),
                .st_atim = ns_to_ts(a->atime_ns),
                .st_mtim = ns_to_ts(a->mtime_ns),
                .st_ctim = ns_to_ts(a->ctime_ns),
        };
}

static void attr_to_entry(const struct index_attr *a, struct fuse_entry_param *e)
{
        *e = (struct fuse_entry_param){
                .ino = a->ino,
                .generation = 1,
                .attr_timeout = FS_ATTR_TIMEOUT_S,
                .entry_timeout = FS_ATTR_TIMEOUT_S,
        };
        attr_to_stat(a, &e->attr);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        (void)userdata;
        /* 1 MiB requests (max_pages = 256, Linux >= 4.20): fewer round trips per byte */
        conn->max_write = 1024 * 1024;
        conn->max_readahead = 1024 * 1024;
        if (conn->capable & FUSE_CAP_READDIRPLUS)
                conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
        if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
                conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fs *fs = fuse_req_userdata(req);
        struct fuse_entry_param e;
        struct index_attr a;
        int r;

        r = index_lookup(fs->idx, parent, name, &a);
        if (r == -ENOENT) {
                /* a negative entry the kernel may cache briefly */
                e = (struct fuse_entry_param){ .ino = 0, .entry_timeout = FS_ATTR_TIMEOUT_S };
                (void)fuse_reply_entry(req, &e);
                return;
        }
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        attr_to_entry(&a, &e);
        (void)fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        struct stat st;
        int r;

        (void)fi;
        r = index_getattr(fs->idx, ino, &a);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        attr_to_stat(&a, &st);
        (void)fuse_reply_attr(req, &st, FS_ATTR_TIMEOUT_S);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        if (!S_ISDIR(a.mode)) {
                reply_err(req, -ENOTDIR);
                return;
        }
        fi->cache_readdir = 0;
        (void)fuse_reply_open(req, fi);
}

struct dirbuf {
        fuse_req_t req;
        char *p;
        size_t size, used;
        bool plus;
};

static int dirbuf_add(struct dirbuf *d, const char *name, const struct index_attr *a,
                      off_t next_off)
{
        size_t left = d->size - d->used, n;

        if (d->plus) {
                struct fuse_entry_param e;

                attr_to_entry(a, &e);
                n = fuse_add_direntry_plus(d->req, d->p + d->used, left, name, &e, next_off);
        } else {
                struct stat st = { .st_ino = a->ino, .st_mode = a->mode };

                n = fuse_add_direntry(d->req, d->p + d->used, left, name, &st, next_off);
        }
        if (n > left)
                return 1; /* full: the entry is not consumed */
        d->used += n;
        return 0;
}

/* readdir offsets: 1 = after ".", 2 = after "..", cookie + 2 = after that entry */
static int dirent_cb(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        return dirbuf_add(ud, name, a, (off_t)(cookie + 2));
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
        struct fs *fs = fuse_req_userdata(req);
        struct dirbuf d = { .req = req, .size = size, .plus = plus };
        struct index_attr self;
        int r;

        r = index_getattr(fs->idx, ino, &self);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        d.p = malloc(size);
        if (!d.p) {
                reply_err(req, -ENOMEM);
                return;
        }
        if (off < 1 && dirbuf_add(&d, ".", &self, 1) > 0)
                goto reply;
        if (off < 2) {
                /* ".." of the root points at itself; the kernel fills in the real parent */
                if (dirbuf_add(&d, "..", &self, 2) > 0)
                        goto reply;
                off = 2;
        }
        r = index_readdir(fs->idx, ino, (uint64_t)off - 2, dirent_cb, &d);
        if (r < 0 && d.used == 0) {
                free(d.p);
                reply_err(req, r);
                return;
        }
reply:
        (void)fuse_reply_buf(req, d.p, d.used);
        free(d.p);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        (void)fi;
        do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        (void)fi;
        do_readdir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        (void)fi;
        (void)fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct fs *fs = fuse_req_userdata(req);
        uint64_t inodes = 0, bytes = 0, blocks, used;
        struct statvfs sv;
        int r;

        (void)ino;
        r = index_totals(fs->idx, &inodes, &bytes);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* Capacity is what IPFS nodes hold, which we cannot know; report the local cache
         * cap (or what is stored, if larger) so that df and free-space checks behave. */
        used = (bytes + 4095) / 4096;
        blocks = MAX(fs->cfg->max_cache_size / 4096, used);
        sv = (struct statvfs){
                .f_bsize = FS_BLKSIZE,
                .f_frsize = 4096,
                .f_blocks = blocks,
                .f_bfree = blocks - used,
                .f_bavail = blocks - used,
                .f_files = inodes + (1u << 20),
                .f_ffree = 1u << 20,
                .f_favail = 1u << 20,
                .f_namemax = INDEX_NAME_MAX,
        };
        (void)fuse_reply_statfs(req, &sv);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct fs *fs = fuse_req_userdata(req);
        char target[4096];
        int r;

        r = index_readlink(fs->idx, ino, target, sizeof(target));
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        (void)fuse_reply_readlink(req, target);
}

static void reply_xattr(fuse_req_t req, const void *value, size_t len, size_t size)
{
        if (size == 0)
                (void)fuse_reply_xattr(req, len);
        else if (len > size)
                reply_err(req, -ERANGE);
        else
                (void)fuse_reply_buf(req, value, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        char cid[CID_MAX_STR];
        void *buf = NULL;
        int r;

        if (strcmp(name, XATTR_CID) == 0) {
                r = index_getattr(fs->idx, ino, &a);
                if (r < 0) {
                        reply_err(req, r);
                        return;
                }
                if (!a.has_cid) {
                        reply_err(req, -ENODATA);
                        return;
                }
                (void)cid_to_string(&a.cid, cid);
                reply_xattr(req, cid, strlen(cid), size);
                return;
        }
        if (strcmp(name, XATTR_CONTROL) == 0) {
                if (ino != INDEX_ROOT_INO || !fs->control_path)
                        reply_err(req, -ENODATA);
                else
                        reply_xattr(req, fs->control_path, strlen(fs->control_path), size);
                return;
        }
        if (size) {
                buf = malloc(size);
                if (!buf) {
                        reply_err(req, -ENOMEM);
                        return;
                }
        }
        r = index_xattr_get(fs->idx, ino, name, buf, size);
        if (r < 0)
                reply_err(req, r);
        else
                reply_xattr(req, buf, (size_t)r, size);
        free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        struct fs *fs = fuse_req_userdata(req);
        struct index_attr a;
        size_t extra, total;
        char *buf;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        extra = a.has_cid ? sizeof(XATTR_CID) : 0;
        r = index_xattr_list(fs->idx, ino, NULL, 0);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        total = (size_t)r + extra;
        if (size == 0) {
                (void)fuse_reply_xattr(req, total);
                return;
        }
        if (total > size) {
                reply_err(req, -ERANGE);
                return;
        }
        buf = malloc(total + 1);
        if (!buf) {
                reply_err(req, -ENOMEM);
                return;
        }
        memcpy(buf, XATTR_CID, extra);
        r = index_xattr_list(fs->idx, ino, buf + extra, total - extra + 1);
        if (r < 0)
                reply_err(req, r);
        else
                (void)fuse_reply_buf(req, buf, extra + (size_t)r);
        free(buf);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        struct fs *fs = fuse_req_userdata(req);
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        struct fuse_entry_param e;
        struct index_new_node n = {
                .mode = S_IFDIR | (mode & ~ctx->umask & 07777),
                .uid = ctx->uid,
                .gid = ctx->gid,
        };
        struct index_attr a;
        int r;

        if (strlen(name) > INDEX_NAME_MAX) {
                reply_err(req, -ENAMETOOLONG);
                return;
        }
        r = index_mknode(fs->idx, parent, name, &n, &a);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        attr_to_entry(&a, &e);
        (void)fuse_reply_entry(req, &e);
}

static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .lookup = op_lookup,
        .getattr = op_getattr,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .statfs = op_statfs,
        .readlink = op_readlink,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .mkdir = op_mkdir,
};

const struct fuse_lowlevel_ops *fs_lowlevel_ops(void)
{
        return &ops;
}
