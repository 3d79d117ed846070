/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "prsmfs/io.h"
#include "prsmfs/log.h"

static int fake_submit(void *ud, uint64_t id, uint64_t ino, const char *path)
{
        struct fixture *f = ud;
        struct fixture_submit *s;

        assert_true(f->n_submits < FIXTURE_MAX_CALLS);
        s = &f->submits[f->n_submits++];
        s->id = id;
        s->ino = ino;
        assert_true((size_t)snprintf(s->path, sizeof(s->path), "%s", path) < sizeof(s->path));
        return 0;
}

static void fake_cancel(void *ud, uint64_t id)
{
        struct fixture *f = ud;

        assert_true(f->n_cancels < FIXTURE_MAX_CALLS);
        f->cancels[f->n_cancels++] = id;
}

/* The node keeps what it is given (in the cache, where the store finds it). */
static int keep_block(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct fixture *f = ud;

        assert_true(f->n_put < FIXTURE_MAX_CALLS);
        f->put[f->n_put++] = *cid;
        return cache_block_put(f->cache, cid, block, len);
}

static int fake_put_blocks(void *ud, fs_block_source_fn source, void *source_ud,
                           const struct cid *pin_root)
{
        struct fixture *f = ud;
        int r = source(keep_block, f, source_ud);

        if (r >= 0) {
                f->pinned = *pin_root;
                f->pins++;
        }
        return r;
}

void fixture_set_uploader(struct fixture *f, bool on)
{
        struct fs_uploader up = {
                .submit = fake_submit, .cancel = fake_cancel, .put_blocks = fake_put_blocks, .ud = f
        };

        assert_int_equal(fs_set_uploader(f->fs, on ? &up : &(struct fs_uploader){ 0 }), 0);
}

void fixture_restart(struct fixture *f)
{
        assert_null(f->fs->wfiles);
        fs_free(f->fs);
        f->fs = NULL;
        assert_int_equal(fs_new(f->idx, &f->cfg, f->store, &f->fs), 0);
        fixture_set_uploader(f, true);
}

int fixture_setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct store_config scfg = { .mem_bytes = 1 << 20 };
        char path[128];

        assert_non_null(f);
        log_set_level(LOG_LEVEL_WARNING);
        (void)snprintf(f->dir, sizeof(f->dir), "/tmp/prsmfs-fs-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void)snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
        assert_int_equal(index_open(path, &f->idx), 0);
        (void)snprintf(path, sizeof(path), "%s/blocks", f->dir);
        assert_int_equal(cache_open(path, 1 << 30, 0, true, &f->cache), 0);
        scfg.cache = f->cache;
        assert_int_equal(store_new(&scfg, &f->store), 0);
        assert_int_equal(config_init_defaults(&f->cfg), 0);
        free(f->cfg.cache_dir);
        f->cfg.cache_dir = strdup(f->dir);
        assert_non_null(f->cfg.cache_dir);
        assert_int_equal(fs_new(f->idx, &f->cfg, f->store, &f->fs), 0);
        fixture_set_uploader(f, true);
        *state = f;
        return 0;
}

int fixture_teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[160];
        bool writers_left = f->fs->wfiles != NULL;

        fs_free(f->fs);
        store_free(f->store);
        cache_free(f->cache);
        index_free(f->idx);
        config_done(&f->cfg);
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        assert_false(writers_left);
        return 0;
}

struct index_attr fixture_mkfile(struct fixture *f, uint64_t parent, const char *name)
{
        struct index_new_node n = { .mode = S_IFREG | 0644 };
        struct index_attr a;

        assert_int_equal(index_mknode(f->idx, parent, name, &n, &a), 0);
        return a;
}

struct index_attr fixture_attr(struct fixture *f, uint64_t ino)
{
        struct index_attr a;

        assert_int_equal(index_getattr(f->idx, ino, &a), 0);
        return a;
}

struct index_attr fixture_lookup(struct fixture *f, const char *name)
{
        struct index_attr a = { 0 };
        int r = index_lookup(f->idx, INDEX_ROOT_INO, name, &a);

        if (r == -ENOENT)
                return (struct index_attr){ 0 };
        assert_int_equal(r, 0);
        return a;
}

void fixture_expect_committed(struct fixture *f, uint64_t ino, const struct cid *c, uint64_t size)
{
        struct index_attr a = fixture_attr(f, ino);

        assert_int_equal(a.state, INDEX_STATE_CLEAN);
        assert_int_equal(a.staged, 0);
        assert_int_equal(a.size, size);
        assert_true(a.has_cid);
        if (c)
                assert_true(cid_equal(&a.cid, c));
}

size_t fixture_staging_files(struct fixture *f)
{
        DIR *d = opendir(f->fs->staging_dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

bool fixture_is_staged(struct fixture *f, uint64_t ino, uint64_t gen)
{
        char name[64];

        (void)snprintf(name, sizeof(name), "%" PRIu64 ".%" PRIu64, ino, gen);
        return faccessat(f->fs->staging_fd, name, F_OK, 0) == 0;
}

void fixture_write(struct fixture *f, struct wfile *wf, const char *s, uint64_t off)
{
        assert_int_equal(fs_wfile_write(f->fs, wf, s, strlen(s), off), (ssize_t)strlen(s));
}

void fixture_expect(struct fixture *f, struct wfile *wf, const char *s)
{
        size_t len = strlen(s);
        char *buf = malloc(len + 16);

        assert_non_null(buf);
        /* asks for more than there is: the answer stops at the writer's size */
        assert_int_equal(fs_wfile_read(f->fs, wf, buf, len + 16, 0), (ssize_t)len);
        assert_memory_equal(buf, s, len);
        free(buf);
}

uint64_t fixture_stage(struct fixture *f, uint64_t ino, const char *s, uint64_t off,
                       struct wfile **ret_wf)
{
        struct index_attr a = fixture_attr(f, ino);
        struct wfile *wf = NULL;
        uint64_t gen;

        assert_int_equal(fs_wfile_open(f->fs, &a, false, &wf), 0);
        fixture_write(f, wf, s, off);
        assert_int_equal(fs_wfile_flush(f->fs, wf), 0);
        gen = fs_wfile_gen(wf);
        if (ret_wf)
                *ret_wf = wf;
        else
                fs_wfile_close(f->fs, wf);
        return gen;
}

struct cid fixture_upload(struct fixture *f, size_t i)
{
        const struct fixture_submit *s = &f->submits[i];
        struct stat st;
        uint8_t *data;
        struct cid c;
        int fd;

        assert_true(i < f->n_submits);
        fd = open(s->path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        data = malloc((size_t)st.st_size + 1);
        assert_non_null(data);
        assert_int_equal(io_pread_exact(fd, data, (size_t)st.st_size, 0), 0);
        close(fd);
        assert_int_equal(
                cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, data, (size_t)st.st_size, &c), 0);
        assert_int_equal(cache_block_put(f->cache, &c, data, (size_t)st.st_size), 0);
        free(data);
        fs_upload_done(f->fs, s->id, s->ino, 0, &c, (uint64_t)st.st_size, true);
        return c;
}

size_t fixture_submit_of(struct fixture *f, uint64_t id)
{
        for (size_t i = 0; i < f->n_submits; i++)
                if (f->submits[i].id == id)
                        return i;
        fail_msg("generation %" PRIu64 " was never submitted", id);
        return 0;
}
