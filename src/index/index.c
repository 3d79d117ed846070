/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SQLite index. One connection, serialised by a mutex (SQLite itself is in its
 * "multi-thread" mode); statements are prepared once and reset after use. Transactions are
 * short and never span anything but SQLite calls (lessons: JuiceFS "database is locked").
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction survives a crash of the
 * daemon (the promise for closed files); after power loss the last commits may be lost,
 * which is why fsync() on a file waits for its upload and pin (design.md §4), not for this.
 *
 * Schema (version 2):
 *   inodes(ino, mode, uid, gid, nlink, size, atime/mtime/ctime ns, state, cid, target, flags)
 *   dentries(id, parent, name, ino)   id is the readdir cookie: stable under inserts/deletes
 *   xattrs(ino, name, value)
 * Migrations run in order from PRAGMA user_version; a database newer than this code is
 * refused rather than guessed at.
 */
#define LOG_MODULE "index"
#include "prsmfs/index.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "prsmfs/log.h"

enum stmt_id {
        STMT_GETATTR,
        STMT_LOOKUP,
        STMT_READDIR,
        STMT_READLINK,
        STMT_INSERT_INODE,
        STMT_INSERT_DENTRY,
        STMT_NLINK_INC,
        STMT_TOTALS,
        STMT_XATTR_GET,
        STMT_XATTR_LIST,
        STMT_GET_STATE,
        STMT_SET_CLEAN,
        STMT_SET_SIZE,
        _STMT_MAX,
};

#define INODE_COLS                                                               \
        "i.ino, i.mode, i.uid, i.gid, i.nlink, i.size, i.atime_ns, i.mtime_ns, " \
        "i.ctime_ns, i.state, i.cid, i.flags"

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_GETATTR] = "SELECT " INODE_COLS " FROM inodes i WHERE i.ino = ?1",
        [STMT_LOOKUP] = "SELECT " INODE_COLS " FROM dentries d JOIN inodes i ON i.ino = d.ino "
                        "WHERE d.parent = ?1 AND d.name = ?2",
        [STMT_READDIR] = "SELECT " INODE_COLS ", d.name, d.id FROM dentries d "
                         "JOIN inodes i ON i.ino = d.ino "
                         "WHERE d.parent = ?1 AND d.id > ?2 AND (i.flags & 2) = 0 "
                         "ORDER BY d.id LIMIT 256",
        [STMT_READLINK] = "SELECT target FROM inodes WHERE ino = ?1",
        [STMT_INSERT_INODE] = "INSERT INTO inodes(mode, uid, gid, nlink, size, atime_ns, "
                              "mtime_ns, ctime_ns, state, cid, target, flags) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11)",
        [STMT_INSERT_DENTRY] = "INSERT INTO dentries(parent, name, ino) VALUES (?1, ?2, ?3)",
        [STMT_NLINK_INC] = "UPDATE inodes SET nlink = nlink + ?2, mtime_ns = ?3, ctime_ns = ?3 "
                           "WHERE ino = ?1",
        [STMT_TOTALS] = "SELECT count(*), coalesce(sum(size), 0) FROM inodes",
        [STMT_XATTR_GET] = "SELECT value FROM xattrs WHERE ino = ?1 AND name = ?2",
        [STMT_XATTR_LIST] = "SELECT name FROM xattrs WHERE ino = ?1 ORDER BY name",
        [STMT_GET_STATE] = "SELECT state FROM inodes WHERE ino = ?1",
        [STMT_SET_CLEAN] = "UPDATE inodes SET state = 0, nlink = nlink + ?2 WHERE ino = ?1",
        [STMT_SET_SIZE] = "UPDATE inodes SET size = ?2 WHERE ino = ?1",
};

static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE inodes ("
        "  ino INTEGER PRIMARY KEY,"
        "  mode INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL DEFAULT 0,"
        "  gid INTEGER NOT NULL DEFAULT 0,"
        "  nlink INTEGER NOT NULL DEFAULT 1,"
        "  size INTEGER NOT NULL DEFAULT 0,"
        "  atime_ns INTEGER NOT NULL DEFAULT 0,"
        "  mtime_ns INTEGER NOT NULL DEFAULT 0,"
        "  ctime_ns INTEGER NOT NULL DEFAULT 0,"
        "  state INTEGER NOT NULL DEFAULT 0,"
        "  cid BLOB,"
        "  target BLOB);"
        "CREATE TABLE dentries ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  parent INTEGER NOT NULL REFERENCES inodes(ino),"
        "  name BLOB NOT NULL,"
        "  ino INTEGER NOT NULL REFERENCES inodes(ino),"
        "  UNIQUE (parent, name));"
        "CREATE INDEX dentries_by_ino ON dentries(ino);"
        "CREATE INDEX dentries_by_parent_id ON dentries(parent, id);"
        "CREATE TABLE xattrs ("
        "  ino INTEGER NOT NULL REFERENCES inodes(ino),"
        "  name TEXT NOT NULL,"
        "  value BLOB NOT NULL,"
        "  PRIMARY KEY (ino, name)) WITHOUT ROWID;",
        /* 1 -> 2: immutable and hidden inodes (the .ipfs/ tree) */
        "ALTER TABLE inodes ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;",
};

struct index {
        pthread_mutex_t lock;        /* guards db and every statement */
        sqlite3 *db;                 /* lock */
        sqlite3_stmt *st[_STMT_MAX]; /* lock */
};

static int errno_from_sqlite(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int exec(struct index *idx, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(idx->db, sql, NULL, NULL, &msg);

        if (rc != SQLITE_OK) {
                log_error("SQL failed: %s", msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return errno_from_sqlite(rc);
        }
        return 0;
}

static int migrate(struct index *idx)
{
        sqlite3_stmt *st = NULL;
        int version, r;
        char sql[256];

        if (sqlite3_prepare_v2(idx->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (version < 0)
                return -EIO;
        if (version > INDEX_SCHEMA_VERSION) {
                log_error("index schema version %d is newer than this prsmfs (%d), refusing",
                          version, INDEX_SCHEMA_VERSION);
                return -EPROTO;
        }
        for (int v = version; v < INDEX_SCHEMA_VERSION; v++) {
                r = exec(idx, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                r = exec(idx, migrations[v]);
                (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
                if (r >= 0)
                        r = exec(idx, sql);
                if (r >= 0 && v == 0) {
                        /* the root directory, owned by root, 0755 */
                        int64_t t = now_ns();

                        (void)snprintf(sql, sizeof(sql),
                                       "INSERT INTO inodes(ino, mode, nlink, atime_ns, "
                                       "mtime_ns, ctime_ns) VALUES (%d, %d, 2, %lld, %lld, "
                                       "%lld)",
                                       INDEX_ROOT_INO, S_IFDIR | 0755, (long long)t, (long long)t,
                                       (long long)t);
                        r = exec(idx, sql);
                }
                if (r < 0) {
                        (void)exec(idx, "ROLLBACK"); /* the error above is what matters */
                        return r;
                }
                r = exec(idx, "COMMIT");
                if (r < 0)
                        return r;
                log_debug("index migrated to schema version %d", v + 1);
        }
        return 0;
}

int index_open(const char *path, struct index **ret)
{
        struct index *idx;
        int rc, r;

        idx = calloc(1, sizeof(*idx));
        if (!idx)
                return -ENOMEM;
        pthread_mutex_init(&idx->lock, NULL);
        rc = sqlite3_open_v2(path, &idx->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK) {
                r = errno_from_sqlite(rc);
                log_error("cannot open index %s: %s", path,
                          idx->db ? sqlite3_errmsg(idx->db) : sqlite3_errstr(rc));
                goto fail;
        }
        sqlite3_busy_timeout(idx->db, 5000);
        r = exec(idx, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                      "PRAGMA foreign_keys = ON;");
        if (r < 0)
                goto fail;
        r = migrate(idx);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < _STMT_MAX; i++) {
                rc = sqlite3_prepare_v3(idx->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &idx->st[i], NULL);
                if (rc != SQLITE_OK) {
                        log_error("cannot prepare statement %zu: %s", i, sqlite3_errmsg(idx->db));
                        r = errno_from_sqlite(rc);
                        goto fail;
                }
        }
        *ret = idx;
        return 0;
fail:
        index_free(idx);
        return r;
}

void index_free(struct index *idx)
{
        if (!idx)
                return;
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(idx->st[i]);
        if (idx->db)
                sqlite3_close(idx->db);
        pthread_mutex_destroy(&idx->lock);
        free(idx);
}

/* Takes the statement for use under the lock; reset + clear bindings when done. */
static sqlite3_stmt *stmt_begin(struct index *idx, enum stmt_id id)
{
        pthread_mutex_lock(&idx->lock);
        return idx->st[id];
}

static void stmt_end(struct index *idx, sqlite3_stmt *st)
{
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        pthread_mutex_unlock(&idx->lock);
}

static void row_to_attr(sqlite3_stmt *st, struct index_attr *a)
{
        const void *cid = sqlite3_column_blob(st, 10);
        int cid_len = sqlite3_column_bytes(st, 10);

        *a = (struct index_attr){
                .ino = (uint64_t)sqlite3_column_int64(st, 0),
                .mode = (uint32_t)sqlite3_column_int64(st, 1),
                .uid = (uint32_t)sqlite3_column_int64(st, 2),
                .gid = (uint32_t)sqlite3_column_int64(st, 3),
                .nlink = (uint32_t)sqlite3_column_int64(st, 4),
                .size = (uint64_t)sqlite3_column_int64(st, 5),
                .atime_ns = sqlite3_column_int64(st, 6),
                .mtime_ns = sqlite3_column_int64(st, 7),
                .ctime_ns = sqlite3_column_int64(st, 8),
                .state = (uint32_t)sqlite3_column_int64(st, 9),
                .flags = (uint32_t)sqlite3_column_int64(st, 11),
        };
        /* the CID was validated when stored; a row that no longer parses is reported as
         * having no CID rather than trusted */
        if (cid && cid_len > 0 && cid_from_bytes(cid, (size_t)cid_len, &a->cid) >= 0)
                a->has_cid = true;
}

int index_getattr(struct index *idx, uint64_t ino, struct index_attr *ret)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_GETATTR);
        int rc, r = -ENOENT;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                row_to_attr(st, ret);
                r = 0;
        } else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r;
}

int index_lookup(struct index *idx, uint64_t parent, const char *name, struct index_attr *ret)
{
        size_t len = strlen(name);
        sqlite3_stmt *st;
        int rc, r = -ENOENT;

        if (len > INDEX_NAME_MAX)
                return -ENAMETOOLONG;
        st = stmt_begin(idx, STMT_LOOKUP);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        sqlite3_bind_blob(st, 2, name, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                row_to_attr(st, ret);
                r = 0;
        } else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r;
}

int index_readdir(struct index *idx, uint64_t dir, uint64_t after, index_dirent_fn fn,
                  void *userdata)
{
        /* Rows are copied out in batches so that fn never runs under the lock. */
        struct row {
                struct index_attr attr;
                uint64_t cookie;
                char name[INDEX_NAME_MAX + 1];
        } * rows;
        size_t n;
        int rc, r = 0;

        rows = calloc(256, sizeof(*rows));
        if (!rows)
                return -ENOMEM;
        for (;;) {
                sqlite3_stmt *st = stmt_begin(idx, STMT_READDIR);

                n = 0;
                sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 256) {
                        const void *name = sqlite3_column_blob(st, 12);
                        int len = sqlite3_column_bytes(st, 12);

                        if (len <= 0 || len > INDEX_NAME_MAX)
                                continue; /* names are validated on insert */
                        row_to_attr(st, &rows[n].attr);
                        memcpy(rows[n].name, name, (size_t)len);
                        rows[n].name[len] = '\0';
                        rows[n].cookie = (uint64_t)sqlite3_column_int64(st, 13);
                        after = rows[n].cookie;
                        n++;
                }
                if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        r = errno_from_sqlite(rc);
                stmt_end(idx, st);
                if (r < 0 || n == 0)
                        break;
                for (size_t i = 0; i < n; i++) {
                        r = fn(rows[i].name, &rows[i].attr, rows[i].cookie, userdata);
                        if (r != 0)
                                goto out;
                }
                if (n < 256)
                        break;
        }
out:
        free(rows);
        return r < 0 ? r : 0;
}

int index_readlink(struct index *idx, uint64_t ino, char *buf, size_t size)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_READLINK);
        int rc, r = -ENOENT;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                const void *p = sqlite3_column_blob(st, 0);
                size_t len = (size_t)sqlite3_column_bytes(st, 0);

                if (len + 1 > size)
                        r = -ENAMETOOLONG;
                else {
                        if (len)
                                memcpy(buf, p, len);
                        buf[len] = '\0';
                        r = 0;
                }
        } else if (rc == SQLITE_ROW)
                r = -EINVAL;
        else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r;
}

bool index_name_ok(const char *name)
{
        size_t len = strlen(name);

        return len > 0 && len <= INDEX_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") != 0 &&
               strcmp(name, "..") != 0;
}

/* Runs a prepared statement that returns no row, then resets it. */
static int step_done(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE ? 0 : rc;
}

/* Inserts an inode and its entry; under the lock, inside a transaction. -EEXIST when the
 * name is taken, -ENOENT when parent does not exist. */
static int insert_node_locked(struct index *idx, uint64_t parent, const char *name,
                              const struct index_new_node *n, int64_t now, uint64_t *ret_ino)
{
        sqlite3_stmt *st = idx->st[STMT_INSERT_INODE];
        uint64_t ino;
        int rc;

        sqlite3_bind_int64(st, 1, n->mode);
        sqlite3_bind_int64(st, 2, n->uid);
        sqlite3_bind_int64(st, 3, n->gid);
        sqlite3_bind_int64(st, 4, S_ISDIR(n->mode) ? 2 : 1);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)n->size);
        sqlite3_bind_int64(st, 6, n->mtime_ns ? n->mtime_ns : now);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int64(st, 8, n->state);
        if (n->cid)
                sqlite3_bind_blob(st, 9, n->cid->bin, n->cid->len, SQLITE_STATIC);
        if (n->target)
                sqlite3_bind_blob(st, 10, n->target, (int)strlen(n->target), SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, n->flags);
        rc = step_done(st);
        if (rc != 0)
                return errno_from_sqlite(rc);
        ino = (uint64_t)sqlite3_last_insert_rowid(idx->db);

        st = idx->st[STMT_INSERT_DENTRY];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)ino);
        rc = step_done(st);
        if (rc != 0)
                /* UNIQUE(parent, name) -> -EEXIST; a missing parent -> foreign key */
                return (rc & 0xff) == SQLITE_CONSTRAINT && sqlite3_extended_errcode(idx->db) ==
                                                                   SQLITE_CONSTRAINT_FOREIGNKEY
                               ? -ENOENT
                               : errno_from_sqlite(rc);
        *ret_ino = ino;
        return 0;
}

int index_mknode(struct index *idx, uint64_t parent, const char *name,
                 const struct index_new_node *n, struct index_attr *ret)
{
        sqlite3_stmt *st;
        int64_t now = now_ns();
        uint64_t ino = 0;
        int rc, r;

        if (!index_name_ok(name))
                return -EINVAL;
        pthread_mutex_lock(&idx->lock);
        r = exec(idx, "BEGIN IMMEDIATE");
        if (r < 0)
                goto unlock;
        r = insert_node_locked(idx, parent, name, n, now, &ino);
        if (r < 0)
                goto rollback;
        /* the parent's mtime changes; a new subdirectory adds a link ("..") to it */
        st = idx->st[STMT_NLINK_INC];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        sqlite3_bind_int64(st, 2, S_ISDIR(n->mode) ? 1 : 0);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(st);
        if (rc != 0) {
                r = errno_from_sqlite(rc);
                goto rollback;
        }
        r = exec(idx, "COMMIT");
        if (r < 0)
                goto rollback;
        pthread_mutex_unlock(&idx->lock);
        return ret ? index_getattr(idx, ino, ret) : 0;
rollback:
        (void)exec(idx, "ROLLBACK"); /* the first error is the one reported */
unlock:
        pthread_mutex_unlock(&idx->lock);
        return r;
}

int index_expand(struct index *idx, uint64_t dir, const struct index_child *children, size_t n,
                 size_t *ret_added, size_t *ret_skipped)
{
        size_t added = 0, skipped = 0, subdirs = 0;
        int64_t now = now_ns();
        sqlite3_stmt *st;
        int rc, r;

        pthread_mutex_lock(&idx->lock);
        r = exec(idx, "BEGIN IMMEDIATE");
        if (r < 0)
                goto unlock;
        st = idx->st[STMT_GET_STATE];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW    ? (sqlite3_column_int64(st, 0) == INDEX_STATE_LAZY ? 1 : 0)
            : rc == SQLITE_DONE ? -ENOENT
                                : errno_from_sqlite(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (r <= 0)
                goto rollback; /* gone, or expanded by someone else: nothing to do */
        for (size_t i = 0; i < n; i++) {
                uint64_t ino;

                if (!index_name_ok(children[i].name)) {
                        skipped++;
                        continue;
                }
                r = insert_node_locked(idx, dir, children[i].name, &children[i].n, now, &ino);
                if (r == -EEXIST) {
                        skipped++;
                        continue;
                }
                if (r < 0)
                        goto rollback;
                added++;
                if (S_ISDIR(children[i].n.mode))
                        subdirs++;
        }
        st = idx->st[STMT_SET_CLEAN];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)subdirs);
        rc = step_done(st);
        if (rc != 0) {
                r = errno_from_sqlite(rc);
                goto rollback;
        }
        r = exec(idx, "COMMIT");
        if (r < 0)
                goto rollback;
        pthread_mutex_unlock(&idx->lock);
        if (ret_added)
                *ret_added = added;
        if (ret_skipped)
                *ret_skipped = skipped;
        return 0;
rollback:
        (void)exec(idx, "ROLLBACK");
unlock:
        pthread_mutex_unlock(&idx->lock);
        if (r == 0) {
                if (ret_added)
                        *ret_added = 0;
                if (ret_skipped)
                        *ret_skipped = 0;
        }
        return r;
}

int index_set_size(struct index *idx, uint64_t ino, uint64_t size)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_SET_SIZE);
        int rc;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
        rc = sqlite3_step(st);
        stmt_end(idx, st);
        return rc == SQLITE_DONE ? 0 : errno_from_sqlite(rc);
}

int index_totals(struct index *idx, uint64_t *ret_inodes, uint64_t *ret_bytes)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_TOTALS);
        int rc, r = -EIO;

        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret_inodes = (uint64_t)sqlite3_column_int64(st, 0);
                *ret_bytes = (uint64_t)sqlite3_column_int64(st, 1);
                r = 0;
        } else
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r;
}

int index_xattr_get(struct index *idx, uint64_t ino, const char *name, void *value, size_t size)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_XATTR_GET);
        int rc, r = -ENODATA;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                size_t len = (size_t)sqlite3_column_bytes(st, 0);

                if (size && len > size)
                        r = -ERANGE;
                else {
                        if (size && len)
                                memcpy(value, sqlite3_column_blob(st, 0), len);
                        r = (int)len;
                }
        } else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r;
}

int index_xattr_list(struct index *idx, uint64_t ino, char *list, size_t size)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_XATTR_LIST);
        size_t total = 0;
        int rc, r = 0;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *name = (const char *)sqlite3_column_text(st, 0);
                size_t len = strlen(name) + 1;

                if (size) {
                        if (total + len > size) {
                                r = -ERANGE;
                                break;
                        }
                        memcpy(list + total, name, len);
                }
                total += len;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r < 0 ? r : (int)total;
}

int index_check(struct index *idx)
{
        sqlite3_stmt *st = NULL;
        int r = -EBADMSG;

        pthread_mutex_lock(&idx->lock);
        if (sqlite3_prepare_v2(idx->db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW &&
            strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0)
                r = 0;
        sqlite3_finalize(st);
        pthread_mutex_unlock(&idx->lock);
        return r;
}
