/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE ceiling of a machine: a trivial in-memory low-level FUSE file system, built with
 * the same libfuse and the same connection settings as prsmfs (1 MiB requests), serving one
 * read-only file "data" of -o size=BYTES from memory. A cold read of it is the most any FUSE
 * daemon can deliver here; a second read with -o keep_cache measures the page-cache ceiling.
 * The whole file is held in memory, as a daemon holding the bytes would: one 1 MiB buffer
 * served at every offset stays in the CPU's caches and gave a ceiling nearly twice as high
 * (4.5 GB/s against 2.5 here), which no daemon serving real data can reach.
 *
 *   fuse-ceiling -f -o size=1073741824[,keep_cache] MOUNTPOINT
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fuse_lowlevel.h>

#define DATA_INO 2

struct ceiling {
        unsigned long long size;
        int keep_cache;
        char *data; /* the file's bytes */
};

static struct ceiling g;

static const struct fuse_opt opts[] = {
        { "size=%llu", offsetof(struct ceiling, size), 0 },
        { "keep_cache", offsetof(struct ceiling, keep_cache), 1 },
        FUSE_OPT_END,
};

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
        memset(st, 0, sizeof(*st));
        st->st_ino = ino;
        if (ino == FUSE_ROOT_ID) {
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
        } else {
                st->st_mode = S_IFREG | 0444;
                st->st_nlink = 1;
                st->st_size = (off_t)g.size;
                st->st_blksize = 1024 * 1024;
        }
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        (void)userdata;
        conn->max_write = 1024 * 1024;
        conn->max_readahead = 1024 * 1024;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e = { .attr_timeout = 3600, .entry_timeout = 3600 };

        if (parent != FUSE_ROOT_ID || strcmp(name, "data") != 0) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        e.ino = DATA_INO;
        fill_stat(DATA_INO, &e.attr);
        fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct stat st;

        (void)fi;
        if (ino != FUSE_ROOT_ID && ino != DATA_INO) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        fill_stat(ino, &st);
        fuse_reply_attr(req, &st, 3600);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        if (ino != DATA_INO) {
                fuse_reply_err(req, EISDIR);
                return;
        }
        fi->keep_cache = g.keep_cache;
        fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        (void)ino;
        (void)fi;
        if ((unsigned long long)off >= g.size) {
                fuse_reply_buf(req, NULL, 0);
                return;
        }
        if (size > g.size - (unsigned long long)off)
                size = (size_t)(g.size - (unsigned long long)off);
        if (size > 1024 * 1024)
                size = 1024 * 1024;
        fuse_reply_buf(req, g.data + off, size);
}

static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .lookup = op_lookup,
        .getattr = op_getattr,
        .open = op_open,
        .read = op_read,
};

int main(int argc, char *argv[])
{
        struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
        struct fuse_cmdline_opts o = { 0 };
        struct fuse_session *se;
        int ret = 1;

        g.size = 1ull << 30;
        if (fuse_opt_parse(&args, &g, opts, NULL) < 0 || fuse_parse_cmdline(&args, &o) != 0 ||
            !o.mountpoint) {
                fprintf(stderr, "usage: %s -f -o size=BYTES[,keep_cache] MOUNTPOINT\n", argv[0]);
                return 1;
        }
        if (g.size > (64ull << 30)) {
                fprintf(stderr, "%s: size above 64 GiB\n", argv[0]);
                return 1;
        }
        g.data = malloc(g.size ? (size_t)g.size : 1);
        if (!g.data) {
                fprintf(stderr, "%s: cannot hold %llu bytes in memory\n", argv[0], g.size);
                return 1;
        }
        for (size_t i = 0; i < g.size; i++) /* every page written: really in memory */
                g.data[i] = (char)(i * 131 + (i >> 20));
        se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
        if (se && fuse_set_signal_handlers(se) == 0) {
                if (fuse_session_mount(se, o.mountpoint) == 0) {
                        if (fuse_daemonize(o.foreground) == 0)
                                ret = fuse_session_loop(se) < 0;
                        fuse_session_unmount(se);
                }
                fuse_remove_signal_handlers(se);
        }
        if (se)
                fuse_session_destroy(se);
        free(o.mountpoint);
        free(g.data);
        fuse_opt_free_args(&args);
        return ret;
}
