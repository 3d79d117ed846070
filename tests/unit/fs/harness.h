/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fs tests' fixture: a real index on a temporary SQLite file, a real store over a
 * temporary block cache (no network), an fs with its staging directory in the same
 * temporary directory, and a fake uploader that records what the fs hands it. Its uploads
 * happen only when a test calls fixture_upload: the node is the test.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prsmfs/cache.h"
#include "prsmfs/config.h"
#include "prsmfs/index.h"
#include "prsmfs/store.h"

#include "fs_internal.h"

#define FIXTURE_MAX_CALLS 64
#define FIXTURE_PATH_MAX  256

struct fixture_submit {
        uint64_t id, ino;
        char path[FIXTURE_PATH_MAX];
};

struct fixture {
        char dir[64];
        struct index *idx;
        struct config cfg;
        struct cache *cache;
        struct store *store;
        struct fs *fs;
        /* the fake uploader's record, in call order */
        struct fixture_submit submits[FIXTURE_MAX_CALLS];
        size_t n_submits;
        uint64_t cancels[FIXTURE_MAX_CALLS];
        size_t n_cancels;
        /* publish: the blocks put_blocks was given (CIDs only) and the root it pinned */
        struct cid put[FIXTURE_MAX_CALLS];
        size_t n_put;
        struct cid pinned;
        unsigned pins;
};

/* cmocka setup/teardown: a fresh fixture per test, the fake uploader already set. The
 * teardown fails the test if a writer is still open. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* Sets the fake uploader (on) or none (off: closed files stay staged, their jobs in the
 * index); setting it re-submits the index's jobs. */
void fixture_set_uploader(struct fixture *f, bool on);
/* Frees the fs and makes a new one on the same index and cache_dir (a daemon restart). */
void fixture_restart(struct fixture *f);

/* A new empty regular file parent/name. */
struct index_attr fixture_mkfile(struct fixture *f, uint64_t parent, const char *name);
/* The index's attributes of ino (which must exist). */
struct index_attr fixture_attr(struct fixture *f, uint64_t ino);
/* The index's attributes of root/name, or ino 0 when there is no such entry. */
struct index_attr fixture_lookup(struct fixture *f, const char *name);

/* That ino's upload landed: CLEAN, nothing staged, size bytes of content c (any CID when
 * c is NULL). */
void fixture_expect_committed(struct fixture *f, uint64_t ino, const struct cid *c, uint64_t size);

/* How many files the instance's staging directory holds, and whether (ino, gen)'s is one. */
size_t fixture_staging_files(struct fixture *f);
bool fixture_is_staged(struct fixture *f, uint64_t ino, uint64_t gen);

/* Writes the string s at off through wf, which must take all of it. */
void fixture_write(struct fixture *f, struct wfile *wf, const char *s, uint64_t off);
/* Reads all of wf and compares it with s. */
void fixture_expect(struct fixture *f, struct wfile *wf, const char *s);
/* Opens wf on the file's current attributes (not truncating), writes s at off, flushes and
 * returns the flushed generation; the writer is closed unless ret_wf takes it. */
uint64_t fixture_stage(struct fixture *f, uint64_t ino, const char *s, uint64_t off,
                       struct wfile **ret_wf);

/* The fake node's upload of submission i: the staging file's bytes as one raw block, put
 * in the block cache, then fs_upload_done. Returns the CID. */
struct cid fixture_upload(struct fixture *f, size_t i);
/* The submission of generation id (its index in submits), failing the test if none. */
size_t fixture_submit_of(struct fixture *f, uint64_t id);
