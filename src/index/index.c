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
 * Schema (version 9):
 *   inodes(ino, mode, uid, gid, nlink, size, state, cid, target, flags, staged,
 *          atime/mtime/ctime as _sec and _nsec, rdev)
 *          staged: generation of the staging file holding the content, 0 = none
 *          times: seconds since the epoch (any int64) and nanoseconds in [0, 1e9), so that
 *          every time a user can set round-trips (int64 ns ended in 2262)
 *          rdev: a device node's st_rdev (schema 7); FIFOs, sockets and devices are inodes
 *          with their type in mode and no content
 *          state LAZY (a linked directory): its entries come in batches and by single
 *          lookups, so a lazy directory may have some; flags & 4 (INDEX_FLAG_CHANGED): one
 *          changed below such an entry. mode without type bits: an entry listed before its
 *          root block came (index.h). These are values of existing columns that an older
 *          prsmfs reads as an unexpanded directory, an entry that answers EIO and a
 *          directory CID that may be stale: no schema version of their own.
 *   jobs(ino, gen, size, created_ns)   uploads owed: one per inode, its latest closed content
 *   dentries(id, parent, name, ino)   id is the readdir cookie: stable under inserts/deletes
 *   xattrs(ino, name, value)
 *   layouts(cid, data)   decoded file layouts (unixfs_layout_encode) by root CID, so that a
 *                        reopen of a big file needs neither its root nor its inner blocks;
 *                        rows no inode refers to are dropped when the index is opened
 *   pins(cid, published, state, unpinned_sec)   roots prsmfs pinned itself (schema 8), so
 *                      that it unpins those and only those (never content a user linked);
 *                      state and its transitions: index.h, "pins"; the triggers
 *                      pins_unref_delete and pins_unref_update owe the unpin of a root in the
 *                      very transaction that drops its last reference, whatever drops it
 *                      (a commit, an inode dropped, the start-up sweep)
 *   meta(key, value)   'instance': 32 lowercase hex digits (128 random bits from getrandom),
 *                      made once with the table and never changed: the index's own name for
 *                      what is not content-addressed and lives outside state_dir (staging
 *                      files sit in cache_dir/staging/<instance>/, and a cache_dir may be
 *                      shared by several daemons)
 *   provenance(seq, path, cid, record)   PRSM provenance records (schema 9), one signed JSON
 *                      record each (docs/prsm.md), appended by the prsm module's writer in
 *                      batches; path and cid are copies of the record's fields for lookups
 *   ledger(batch, cid, time_sec, opens, bytes)   PRSM access ledger (schema 9): one row per
 *                      CID per flush of the in-memory counters; (batch, cid) is unique, so a
 *                      batch written twice counts once
 *   prsm_formats(cid, layout)   PRSM shard manifests and JSON wrappers linked as decoded
 *                      files (schema 10): the layout (prsm_layout_encode's JSON) by the linked
 *                      CID, for the inodes whose flags have INDEX_FLAG_PRSM
 * Migrations run in order from PRAGMA user_version; a database newer than this code is
 * refused rather than guessed at.
 */
#define LOG_MODULE "index"
#include "prsmfs/index.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
        STMT_NLINK_ADD,
        STMT_HAS_ENTRY,
        STMT_SET_SIZE,
        STMT_LAYOUT_GET,
        STMT_LAYOUT_PUT,
        STMT_DIRS_CHANGED,
        _STMT_MAX,
};

#define INODE_COLS                                                                          \
        "i.ino, i.mode, i.uid, i.gid, i.nlink, i.size, i.state, i.cid, i.flags, i.staged, " \
        "i.atime_sec, i.atime_nsec, i.mtime_sec, i.mtime_nsec, i.ctime_sec, i.ctime_nsec, " \
        "i.rdev"

/* Columns of INODE_COLS (row_to_attr); a query's own columns follow them. */
enum inode_col {
        COL_INO,
        COL_MODE,
        COL_UID,
        COL_GID,
        COL_NLINK,
        COL_SIZE,
        COL_STATE,
        COL_CID,
        COL_FLAGS,
        COL_STAGED,
        COL_ATIME, /* _sec, then _nsec */
        COL_MTIME = COL_ATIME + 2,
        COL_CTIME = COL_MTIME + 2,
        COL_RDEV = COL_CTIME + 2,
        _COL_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_GETATTR] = "SELECT " INODE_COLS " FROM inodes i WHERE i.ino = ?1",
        [STMT_LOOKUP] = "SELECT " INODE_COLS " FROM dentries d JOIN inodes i ON i.ino = d.ino "
                        "WHERE d.parent = ?1 AND d.name = ?2",
        [STMT_READDIR] = "SELECT " INODE_COLS ", d.name, d.id FROM dentries d "
                         "JOIN inodes i ON i.ino = d.ino "
                         "WHERE d.parent = ?1 AND d.id > ?2 AND (i.flags & 2) = 0 "
                         "ORDER BY d.id LIMIT 256",
        [STMT_READLINK] = "SELECT target FROM inodes WHERE ino = ?1",
        [STMT_INSERT_INODE] = "INSERT INTO inodes(mode, uid, gid, nlink, size, state, cid, "
                              "target, flags, atime_sec, atime_nsec, mtime_sec, mtime_nsec, "
                              "ctime_sec, ctime_nsec, rdev) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10, ?11, "
                              "?12, ?13, ?14)",
        [STMT_INSERT_DENTRY] = "INSERT INTO dentries(parent, name, ino) VALUES (?1, ?2, ?3)",
        [STMT_NLINK_INC] = "UPDATE inodes SET nlink = nlink + ?2, mtime_sec = ?3, "
                           "mtime_nsec = ?4, ctime_sec = ?3, ctime_nsec = ?4 WHERE ino = ?1",
        [STMT_TOTALS] = "SELECT count(*), coalesce(sum(size), 0) FROM inodes",
        [STMT_XATTR_GET] = "SELECT value FROM xattrs WHERE ino = ?1 AND name = ?2",
        [STMT_XATTR_LIST] = "SELECT name FROM xattrs WHERE ino = ?1 ORDER BY name",
        [STMT_GET_STATE] = "SELECT state FROM inodes WHERE ino = ?1",
        /* the last batch of a listing: a directory changed below while it was lazy has no
         * CID any more (its CID only listed it) */
        [STMT_SET_CLEAN] = "UPDATE inodes SET state = 0, nlink = nlink + ?2, "
                           "cid = CASE WHEN flags & 4 THEN NULL ELSE cid END, flags = flags & ~4 "
                           "WHERE ino = ?1",
        [STMT_NLINK_ADD] = "UPDATE inodes SET nlink = nlink + ?2 WHERE ino = ?1",
        [STMT_HAS_ENTRY] = "SELECT 1 FROM dentries WHERE parent = ?1 AND name = ?2",
        [STMT_SET_SIZE] = "UPDATE inodes SET size = ?2 WHERE ino = ?1",
        [STMT_LAYOUT_GET] = "SELECT data FROM layouts WHERE cid = ?1",
        /* the directories above ino (and ino, if one) no longer have the CID they had; not
         * through .ipfs (immutable). A lazy one keeps its CID, which still lists the entries
         * not in the index yet, and is marked changed (a change below an entry linked by a
         * lookup) */
        [STMT_DIRS_CHANGED] = "WITH RECURSIVE up(ino) AS ("
                              "  SELECT ino FROM inodes WHERE ino = ?1 AND (flags & 1) = 0"
                              "  UNION SELECT d.parent FROM dentries d JOIN up ON d.ino = up.ino)"
                              " UPDATE inodes SET"
                              "  cid = CASE WHEN state = 1 THEN cid END,"
                              "  flags = CASE WHEN state = 1 THEN flags | 4 ELSE flags END"
                              " WHERE ino IN up AND (mode & 61440) = 16384 AND cid IS NOT NULL"
                              " AND (state != 1 OR (flags & 4) = 0)",
        [STMT_LAYOUT_PUT] = "INSERT OR REPLACE INTO layouts(cid, data) VALUES (?1, ?2)",
};

/* A root is referenced while it is a published root or an inode outside .ipfs/ (whose
 * entries name any CID and are no part of the namespace) has it as its content. */
#define PIN_REFERENCED_SQL(c) \
        "(published != 0 OR EXISTS (SELECT 1 FROM inodes WHERE cid = " c " AND (flags & 1) = 0))"
/* The unpin of root c is owed if it is held and nothing refers to it any more. */
#define PIN_UNREF_SQL(c) \
        "UPDATE pins SET state = 1 WHERE cid = " c " AND state = 0 AND NOT " PIN_REFERENCED_SQL(c)

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
        /* 2 -> 3: written files waiting for their upload (write path) */
        "ALTER TABLE inodes ADD COLUMN staged INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE jobs ("
        "  ino INTEGER PRIMARY KEY REFERENCES inodes(ino),"
        "  gen INTEGER NOT NULL,"
        "  size INTEGER NOT NULL,"
        "  created_ns INTEGER NOT NULL);",
        /* 3 -> 4: file layouts (read path) */
        "CREATE TABLE layouts ("
        "  cid BLOB PRIMARY KEY,"
        "  data BLOB NOT NULL) WITHOUT ROWID;",
        /* 4 -> 5: the instance id (add_instance) */
        "CREATE TABLE meta ("
        "  key TEXT PRIMARY KEY,"
        "  value TEXT NOT NULL) WITHOUT ROWID;",
        /* 5 -> 6: times as seconds + nanoseconds (before 1677 and after 2262 too); the old
         * int64 ns split by floor division (-1 ns is -1 s + 999999999 ns), without overflow */
        "ALTER TABLE inodes ADD COLUMN atime_sec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE inodes ADD COLUMN atime_nsec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE inodes ADD COLUMN mtime_sec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE inodes ADD COLUMN mtime_nsec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE inodes ADD COLUMN ctime_sec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE inodes ADD COLUMN ctime_nsec INTEGER NOT NULL DEFAULT 0;"
        "UPDATE inodes SET"
        "  atime_sec = atime_ns / 1000000000 - (atime_ns % 1000000000 < 0),"
        "  atime_nsec = atime_ns % 1000000000 + 1000000000 * (atime_ns % 1000000000 < 0),"
        "  mtime_sec = mtime_ns / 1000000000 - (mtime_ns % 1000000000 < 0),"
        "  mtime_nsec = mtime_ns % 1000000000 + 1000000000 * (mtime_ns % 1000000000 < 0),"
        "  ctime_sec = ctime_ns / 1000000000 - (ctime_ns % 1000000000 < 0),"
        "  ctime_nsec = ctime_ns % 1000000000 + 1000000000 * (ctime_ns % 1000000000 < 0);"
        "ALTER TABLE inodes DROP COLUMN atime_ns;"
        "ALTER TABLE inodes DROP COLUMN mtime_ns;"
        "ALTER TABLE inodes DROP COLUMN ctime_ns;",
        /* 6 -> 7: device numbers of device nodes (FIFOs, sockets, devices made by rsync -a) */
        "ALTER TABLE inodes ADD COLUMN rdev INTEGER NOT NULL DEFAULT 0;",
        /* 7 -> 8: pins follow the namespace. Roots pinned before this schema are not known
         * to be prsmfs's own (a linked CID looks the same in inodes): they stay pinned. */
        "CREATE TABLE pins ("
        "  cid BLOB PRIMARY KEY,"
        "  published INTEGER NOT NULL DEFAULT 0,"
        "  state INTEGER NOT NULL DEFAULT 0,"
        "  unpinned_sec INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
        "CREATE INDEX pins_by_state ON pins(state);"
        "CREATE INDEX inodes_by_cid ON inodes(cid) WHERE cid IS NOT NULL;"
        "CREATE TRIGGER pins_unref_delete AFTER DELETE ON inodes WHEN OLD.cid IS NOT NULL "
        "BEGIN " PIN_UNREF_SQL(
                "OLD.cid") "; END;"
                           "CREATE TRIGGER pins_unref_update AFTER UPDATE OF cid ON inodes "
                           "WHEN OLD.cid IS NOT NULL AND OLD.cid IS NOT NEW.cid "
                           "BEGIN " PIN_UNREF_SQL("OLD.cid") "; END;",
        /* 8 -> 9: PRSM provenance records and the access ledger */
        "CREATE TABLE provenance ("
        "  seq INTEGER PRIMARY KEY,"
        "  path BLOB NOT NULL,"
        "  cid BLOB,"
        "  record TEXT NOT NULL);"
        "CREATE INDEX provenance_by_path ON provenance(path);"
        "CREATE INDEX provenance_by_cid ON provenance(cid) WHERE cid IS NOT NULL;"
        "CREATE TABLE ledger ("
        "  batch INTEGER NOT NULL,"
        "  cid BLOB NOT NULL,"
        "  time_sec INTEGER NOT NULL,"
        "  opens INTEGER NOT NULL,"
        "  bytes INTEGER NOT NULL,"
        "  PRIMARY KEY (batch, cid)) WITHOUT ROWID;"
        "CREATE INDEX ledger_by_time ON ledger(time_sec);",
        /* 9 -> 10: PRSM content formats linked as decoded files (inodes with
         * INDEX_FLAG_PRSM): their layout by the linked CID */
        "CREATE TABLE prsm_formats ("
        "  cid BLOB PRIMARY KEY,"
        "  layout TEXT NOT NULL) WITHOUT ROWID;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == INDEX_SCHEMA_VERSION,
               "one migration per schema version");

/* Slots for the statements q() prepares once and keeps: about 60 distinct texts run through
 * it; a text that finds no slot is prepared for its one use (as every text was before). */
#define KEPT_SLOTS 128

struct index {
        pthread_mutex_t lock;                  /* guards db and every statement */
        sqlite3 *db;                           /* lock */
        sqlite3_stmt *st[_STMT_MAX];           /* lock */
        sqlite3_stmt *kept[KEPT_SLOTS];        /* lock: q()'s statements, by SQL text */
        char instance[INDEX_INSTANCE_LEN + 1]; /* set at open, constant after */
        uint64_t tree_changes;                 /* lock: changes of content under any dir */
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

static struct timespec now_ts(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return ts;
}

static bool ts_ok(const struct timespec *ts)
{
        return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

/* A time from columns col (seconds) and col + 1 (nanoseconds); a row whose nanoseconds are
 * out of range (not written by this code) reads as the whole second. */
static struct timespec column_ts(sqlite3_stmt *st, int col)
{
        struct timespec ts = { .tv_sec = (time_t)sqlite3_column_int64(st, col),
                               .tv_nsec = (long)sqlite3_column_int64(st, col + 1) };

        if (!ts_ok(&ts))
                ts.tv_nsec = 0;
        return ts;
}

static void bind_ts(sqlite3_stmt *st, int param, const struct timespec *ts)
{
        sqlite3_bind_int64(st, param, (sqlite3_int64)ts->tv_sec);
        sqlite3_bind_int64(st, param + 1, (sqlite3_int64)ts->tv_nsec);
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

/* The instance id of a new schema 5 from getrandom, not from SQLite's PRNG (a forked process
 * would share that with its parent). */
static int add_instance(struct index *idx)
{
        uint8_t bits[INDEX_INSTANCE_LEN / 2];
        char hex[INDEX_INSTANCE_LEN + 1], sql[128];
        ssize_t n;

        do
                n = getrandom(bits, sizeof(bits), 0);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(bits))
                return n < 0 ? -errno : -EIO;
        for (size_t i = 0; i < sizeof(bits); i++)
                (void)snprintf(hex + 2 * i, 3, "%02x", bits[i]);
        (void)snprintf(sql, sizeof(sql), "INSERT INTO meta(key, value) VALUES ('instance', '%s')",
                       hex);
        return exec(idx, sql);
}

/* Bytes from disk that become a directory name: exactly INDEX_INSTANCE_LEN lowercase hex
 * digits, or the index is refused. */
static int load_instance(struct index *idx)
{
        sqlite3_stmt *st = NULL;
        const char *v;
        int r = -EBADMSG;

        if (sqlite3_prepare_v2(idx->db, "SELECT value FROM meta WHERE key = 'instance'", -1, &st,
                               NULL) != SQLITE_OK)
                return -EIO;
        if (sqlite3_step(st) == SQLITE_ROW && (v = (const char *)sqlite3_column_text(st, 0)) &&
            strlen(v) == INDEX_INSTANCE_LEN &&
            strspn(v, "0123456789abcdef") == INDEX_INSTANCE_LEN) {
                memcpy(idx->instance, v, INDEX_INSTANCE_LEN + 1);
                r = 0;
        }
        sqlite3_finalize(st);
        if (r < 0)
                log_error("the index has no valid instance id (table meta)");
        return r;
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
                if (r >= 0 && v == 4)
                        r = add_instance(idx);
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
        if (r >= 0)
                r = load_instance(idx);
        if (r < 0)
                goto fail;
        r = exec(idx, "DELETE FROM layouts WHERE cid NOT IN "
                      "(SELECT cid FROM inodes WHERE cid IS NOT NULL)");
        if (r >= 0)
                r = index_pins_prune(idx);
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
        for (size_t i = 0; i < KEPT_SLOTS; i++)
                sqlite3_finalize(idx->kept[i]);
        if (idx->db)
                sqlite3_close(idx->db);
        pthread_mutex_destroy(&idx->lock);
        free(idx);
}

const char *index_instance(const struct index *idx)
{
        return idx->instance;
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
        const void *cid = sqlite3_column_blob(st, COL_CID);
        int cid_len = sqlite3_column_bytes(st, COL_CID);

        *a = (struct index_attr){
                .ino = (uint64_t)sqlite3_column_int64(st, COL_INO),
                .mode = (uint32_t)sqlite3_column_int64(st, COL_MODE),
                .uid = (uint32_t)sqlite3_column_int64(st, COL_UID),
                .gid = (uint32_t)sqlite3_column_int64(st, COL_GID),
                .nlink = (uint32_t)sqlite3_column_int64(st, COL_NLINK),
                .size = (uint64_t)sqlite3_column_int64(st, COL_SIZE),
                .atime = column_ts(st, COL_ATIME),
                .mtime = column_ts(st, COL_MTIME),
                .ctime = column_ts(st, COL_CTIME),
                .state = (uint32_t)sqlite3_column_int64(st, COL_STATE),
                .flags = (uint32_t)sqlite3_column_int64(st, COL_FLAGS),
                .staged = (uint64_t)sqlite3_column_int64(st, COL_STAGED),
                .rdev = (uint64_t)sqlite3_column_int64(st, COL_RDEV),
        };
        /* the CID was validated when stored; a row that no longer parses is reported as
         * having no CID rather than trusted */
        if (cid && cid_len > 0 && cid_from_bytes(cid, (size_t)cid_len, &a->cid) >= 0)
                a->has_cid = true;
}

/* The attributes of ino under the lock. */
static int getattr_locked(struct index *idx, uint64_t ino, struct index_attr *ret)
{
        sqlite3_stmt *st = idx->st[STMT_GETATTR];
        int rc, r = -ENOENT;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                row_to_attr(st, ret);
                r = 0;
        } else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

int index_getattr(struct index *idx, uint64_t ino, struct index_attr *ret)
{
        int r;

        pthread_mutex_lock(&idx->lock);
        r = getattr_locked(idx, ino, ret);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

/* The entry parent/name under the lock: its inode's attributes. */
static int lookup_locked(struct index *idx, uint64_t parent, const char *name,
                         struct index_attr *ret)
{
        sqlite3_stmt *st = idx->st[STMT_LOOKUP];
        int rc, r = -ENOENT;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                row_to_attr(st, ret);
                r = 0;
        } else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

int index_lookup(struct index *idx, uint64_t parent, const char *name, struct index_attr *ret)
{
        int r;

        if (strlen(name) > INDEX_NAME_MAX)
                return -ENAMETOOLONG;
        pthread_mutex_lock(&idx->lock);
        r = lookup_locked(idx, parent, name, ret);
        pthread_mutex_unlock(&idx->lock);
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
                        const void *name = sqlite3_column_blob(st, _COL_MAX);
                        int len = sqlite3_column_bytes(st, _COL_MAX);

                        if (len <= 0 || len > INDEX_NAME_MAX)
                                continue; /* names are validated on insert */
                        row_to_attr(st, &rows[n].attr);
                        memcpy(rows[n].name, name, (size_t)len);
                        rows[n].name[len] = '\0';
                        rows[n].cookie = (uint64_t)sqlite3_column_int64(st, _COL_MAX + 1);
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

/*
 * The content under the directories above ino changed (an entry made, removed or renamed,
 * a file's content staged or committed): their CIDs, from a link or a publish, no longer
 * name it, so they go (user.prsm.cid never shows a stale root). Under the lock.
 */
static int dirs_changed_locked(struct index *idx, uint64_t ino)
{
        sqlite3_stmt *st = idx->st[STMT_DIRS_CHANGED];
        int rc;

        idx->tree_changes++;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
        rc = step_done(st);
        return rc != 0 ? errno_from_sqlite(rc) : 0;
}

/* Inserts an inode and its entry; under the lock, inside a transaction. -EEXIST when the
 * name is taken, -ENOENT when parent does not exist. */
static int insert_node_locked(struct index *idx, uint64_t parent, const char *name,
                              const struct index_new_node *n, const struct timespec *now,
                              uint64_t *ret_ino)
{
        sqlite3_stmt *st = idx->st[STMT_INSERT_INODE];
        uint64_t ino;
        int rc;

        sqlite3_bind_int64(st, 1, n->mode);
        sqlite3_bind_int64(st, 2, n->uid);
        sqlite3_bind_int64(st, 3, n->gid);
        sqlite3_bind_int64(st, 4, S_ISDIR(n->mode) ? 2 : 1);
        if (n->has_mtime && !ts_ok(&n->mtime))
                return -EINVAL;
        sqlite3_bind_int64(st, 5, (sqlite3_int64)n->size);
        sqlite3_bind_int64(st, 6, n->state);
        if (n->cid)
                sqlite3_bind_blob(st, 7, n->cid->bin, n->cid->len, SQLITE_STATIC);
        if (n->target)
                sqlite3_bind_blob(st, 8, n->target, (int)strlen(n->target), SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, n->flags);
        bind_ts(st, 10, n->has_mtime ? &n->mtime : now); /* atime and mtime */
        bind_ts(st, 12, now);
        sqlite3_bind_int64(st, 14, (sqlite3_int64)n->rdev);
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

static int in_transaction(struct index *idx, int (*fn)(struct index *idx, void *ud), void *ud);
static int in_transaction_attr(struct index *idx, int (*fn)(struct index *idx, void *ud), void *ud,
                               const uint64_t *ino, struct index_attr *ret);
static int q(struct index *idx, int64_t *ret, int *changes, const char *sql, const char *spec, ...);

struct mknode_args {
        uint64_t parent;
        const char *name;
        const struct index_new_node *n;
        uint64_t ino;
};

static int do_mknode(struct index *idx, void *ud)
{
        struct mknode_args *a = ud;
        struct timespec now = now_ts();
        sqlite3_stmt *st;
        int rc, r;

        r = insert_node_locked(idx, a->parent, a->name, a->n, &now, &a->ino);
        if (r < 0)
                return r;
        /* the parent's mtime changes; a new subdirectory adds a link ("..") to it */
        st = idx->st[STMT_NLINK_INC];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)a->parent);
        sqlite3_bind_int64(st, 2, S_ISDIR(a->n->mode) ? 1 : 0);
        bind_ts(st, 3, &now);
        rc = step_done(st);
        return rc != 0 ? errno_from_sqlite(rc) : dirs_changed_locked(idx, a->parent);
}

int index_mknode(struct index *idx, uint64_t parent, const char *name,
                 const struct index_new_node *n, struct index_attr *ret)
{
        struct mknode_args a = { .parent = parent, .name = name, .n = n };
        int r;

        if (!index_name_ok(name))
                return -EINVAL;
        r = in_transaction(idx, do_mknode, &a);
        if (r < 0)
                return r;
        return ret ? index_getattr(idx, a.ino, ret) : 0;
}

struct expand_args {
        uint64_t dir;
        const struct index_child *children;
        size_t n, added, skipped;
        bool is_last;
};

/* Whether parent has an entry called name, under the lock. */
static int has_entry_locked(struct index *idx, uint64_t parent, const char *name)
{
        sqlite3_stmt *st = idx->st[STMT_HAS_ENTRY];
        int rc;

        sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
        sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : errno_from_sqlite(rc);
}

static int do_expand(struct index *idx, void *ud)
{
        struct expand_args *a = ud;
        struct timespec now = now_ts();
        size_t subdirs = 0;
        sqlite3_stmt *st;
        int rc, r;

        st = idx->st[STMT_GET_STATE];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)a->dir);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW    ? (sqlite3_column_int64(st, 0) == INDEX_STATE_LAZY ? 1 : 0)
            : rc == SQLITE_DONE ? -ENOENT
                                : errno_from_sqlite(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (r <= 0)
                return r; /* gone, or expanded by someone else: nothing to do */
        for (size_t i = 0; i < a->n; i++) {
                const struct index_child *c = &a->children[i];
                uint64_t ino;

                /* taken: a duplicate name, or linked by a lookup before (checked first: a
                 * failed insert would leave its inode behind) */
                r = index_name_ok(c->name) ? has_entry_locked(idx, a->dir, c->name) : 1;
                if (r < 0)
                        return r;
                if (r > 0) {
                        a->skipped++;
                        continue;
                }
                r = insert_node_locked(idx, a->dir, c->name, &c->n, &now, &ino);
                if (r < 0)
                        return r;
                a->added++;
                if (S_ISDIR(c->n.mode))
                        subdirs++;
        }
        st = idx->st[a->is_last ? STMT_SET_CLEAN : STMT_NLINK_ADD];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)a->dir);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)subdirs);
        rc = step_done(st);
        return rc != 0 ? errno_from_sqlite(rc) : 0;
}

int index_expand(struct index *idx, uint64_t dir, const struct index_child *children, size_t n,
                 bool is_last, size_t *ret_added, size_t *ret_skipped)
{
        struct expand_args a = { .dir = dir, .children = children, .n = n, .is_last = is_last };
        int r;

        r = in_transaction(idx, do_expand, &a);
        if (r < 0)
                return r;
        if (ret_added)
                *ret_added = a.added;
        if (ret_skipped)
                *ret_skipped = a.skipped;
        return 0;
}

struct resolve_args {
        uint64_t ino;
        const struct index_new_node *n;
};

static int do_resolve(struct index *idx, void *ud)
{
        struct resolve_args *a = ud;
        const struct index_new_node *n = a->n;
        bool dir = S_ISDIR(n->mode);
        int changes = 0, r;

        if (n->has_mtime && !ts_ok(&n->mtime))
                return -EINVAL;
        r = q(idx, NULL, &changes,
              "UPDATE inodes SET mode = ?2, size = ?3, state = ?4, nlink = ?5 "
              "WHERE ino = ?1 AND (mode & 61440) = 0",
              "iiiii", (int64_t)a->ino, (int64_t)n->mode, (int64_t)n->size, (int64_t)n->state,
              (int64_t)(dir ? 2 : 1));
        if (r < 0 || changes == 0)
                return r; /* resolved by another thread first: its answer stands */
        if (n->target)
                r = q(idx, NULL, NULL, "UPDATE inodes SET target = ?2 WHERE ino = ?1", "is",
                      (int64_t)a->ino, n->target);
        if (r >= 0 && n->has_mtime)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET atime_sec = ?2, atime_nsec = ?3, mtime_sec = ?2, "
                      "mtime_nsec = ?3 WHERE ino = ?1",
                      "it", (int64_t)a->ino, &n->mtime);
        /* a subdirectory's ".." links its parent */
        if (r >= 0 && dir)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET nlink = nlink + 1 WHERE ino IN "
                      "(SELECT parent FROM dentries WHERE ino = ?1)",
                      "i", (int64_t)a->ino);
        return r;
}

int index_resolve(struct index *idx, uint64_t ino, const struct index_new_node *n,
                  struct index_attr *ret)
{
        struct resolve_args a = { .ino = ino, .n = n };

        if ((n->mode & S_IFMT) == 0)
                return -EINVAL;
        return in_transaction_attr(idx, do_resolve, &a, &a.ino, ret);
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

int index_layout_get(struct index *idx, const struct cid *cid, uint8_t **ret, size_t *ret_len)
{
        sqlite3_stmt *st = stmt_begin(idx, STMT_LAYOUT_GET);
        int rc, r = -ENOENT;

        sqlite3_bind_blob(st, 1, cid->bin, cid->len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                size_t len = (size_t)sqlite3_column_bytes(st, 0);
                uint8_t *p = malloc(len ? len : 1);

                r = -ENOMEM;
                if (p) {
                        if (len)
                                memcpy(p, sqlite3_column_blob(st, 0), len);
                        *ret = p;
                        *ret_len = len;
                        r = 0;
                }
        } else if (rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        stmt_end(idx, st);
        return r;
}

int index_layout_put(struct index *idx, const struct cid *cid, const uint8_t *data, size_t len)
{
        sqlite3_stmt *st;
        int rc;

        if (len > INT_MAX)
                return -E2BIG;
        st = stmt_begin(idx, STMT_LAYOUT_PUT);
        sqlite3_bind_blob(st, 1, cid->bin, cid->len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, len ? (const void *)data : "", (int)len, SQLITE_STATIC);
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

/* ---- namespace changes (write path) ---- */

/*
 * The statement for sql in *ret, prepared once and kept (parsing was a sixth of the daemon's
 * CPU time in an rsync of small files): the slot comes from the text's address (q()'s texts
 * are literals) and is taken only when the kept statement's own text is sql. *once is true
 * for a statement prepared for this use only (every slot taken), to be finalized after it.
 * Returns 0 or -errno (logged). The caller holds the lock.
 */
static int kept_stmt(struct index *idx, const char *sql, sqlite3_stmt **ret, bool *once)
{
        size_t h = (size_t)(((uintptr_t)sql >> 3) % KEPT_SLOTS);
        sqlite3_stmt **slot = NULL;
        int rc;

        for (size_t k = 0; k < KEPT_SLOTS && !slot; k++) {
                sqlite3_stmt **s = &idx->kept[(h + k) % KEPT_SLOTS];

                if (*s && strcmp(sqlite3_sql(*s), sql) == 0) {
                        *ret = *s;
                        *once = false;
                        return 0;
                }
                if (!*s)
                        slot = s;
        }
        *ret = NULL;
        *once = !slot;
        rc = slot ? sqlite3_prepare_v3(idx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL)
                  : sqlite3_prepare_v2(idx->db, sql, -1, ret, NULL);
        if (rc != SQLITE_OK) {
                log_error("cannot prepare '%s': %s", sql, sqlite3_errmsg(idx->db));
                sqlite3_finalize(*ret);
                *ret = NULL;
                return errno_from_sqlite(rc);
        }
        if (slot)
                *slot = *ret;
        return 0;
}

/* Done with a statement from kept_stmt: reset (no read transaction stays open) and its
 * bindings cleared (they point into the caller's memory). */
static void kept_done(sqlite3_stmt *st, bool once)
{
        if (once) {
                sqlite3_finalize(st);
                return;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
}

/*
 * Runs one statement under the lock: spec names the arguments, 'i' an int64_t, 's' a
 * NUL-terminated string bound as a blob (names, as dentries store them), 'x' one bound as
 * text (xattr names), 'b' a pointer and a size_t (a blob), 't' a const struct timespec *
 * bound as two parameters (?n seconds, ?n+1 nanoseconds). With ret non-NULL the first column
 * of the first row goes there (-ENOENT without a row). Returns 0 or -errno; *changes (when
 * asked) is the number of rows changed.
 */
static int q(struct index *idx, int64_t *ret, int *changes, const char *sql, const char *spec, ...)
{
        sqlite3_stmt *st;
        va_list ap;
        bool once;
        int rc, r, i = 1;

        r = kept_stmt(idx, sql, &st, &once);
        if (r < 0)
                return r;
        va_start(ap, spec);
        for (const char *p = spec; *p; p++, i++) {
                if (*p == 'i')
                        sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
                else if (*p == 's') {
                        const char *s = va_arg(ap, const char *);

                        sqlite3_bind_blob(st, i, s, (int)strlen(s), SQLITE_STATIC);
                } else if (*p == 'x')
                        sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
                else if (*p == 't')
                        bind_ts(st, i++, va_arg(ap, const struct timespec *));
                else {
                        const void *b = va_arg(ap, const void *);
                        size_t len = va_arg(ap, size_t);

                        sqlite3_bind_blob(st, i, len ? b : "", (int)len, SQLITE_STATIC);
                }
        }
        va_end(ap);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                if (ret)
                        *ret = sqlite3_column_int64(st, 0);
                r = 0;
        } else if (rc == SQLITE_DONE)
                r = ret ? -ENOENT : 0;
        else
                r = errno_from_sqlite(rc);
        if (changes)
                *changes = sqlite3_changes(idx->db);
        kept_done(st, once);
        return r;
}

/* BEGIN, COMMIT or ROLLBACK by a kept statement (exec() would parse it each time); a
 * failure is logged as exec() logs it. */
static int txn(struct index *idx, const char *sql)
{
        int r = q(idx, NULL, NULL, sql, "");

        if (r < 0)
                log_error("SQL failed: %s: %s", sql, sqlite3_errmsg(idx->db));
        return r;
}

/* -ENOTEMPTY when dir has entries, or is a linked directory not listed yet. */
static int check_empty_locked(struct index *idx, const struct index_attr *dir)
{
        int64_t n = 0;
        int r;

        if (dir->state == INDEX_STATE_LAZY)
                return -ENOTEMPTY;
        r = q(idx, &n, NULL, "SELECT count(*) FROM dentries WHERE parent = ?1", "i",
              (int64_t)dir->ino);
        return r < 0 ? r : n > 0 ? -ENOTEMPTY : 0;
}

/* Drops the entry parent/name of inode a (a directory takes its ".." link along). */
static int drop_entry_locked(struct index *idx, uint64_t parent, const char *name,
                             const struct index_attr *a, const struct timespec *now)
{
        bool dir = S_ISDIR(a->mode);
        int r;

        r = q(idx, NULL, NULL, "DELETE FROM dentries WHERE parent = ?1 AND name = ?2", "is",
              (int64_t)parent, name);
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET nlink = max(nlink - ?2, 0), ctime_sec = ?3, "
                      "ctime_nsec = ?4 WHERE ino = ?1",
                      "iit", (int64_t)a->ino, (int64_t)(dir ? 2 : 1), now);
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET nlink = nlink - ?2, mtime_sec = ?3, mtime_nsec = ?4, "
                      "ctime_sec = ?3, ctime_nsec = ?4 WHERE ino = ?1",
                      "iit", (int64_t)parent, (int64_t)(dir ? 1 : 0), now);
        return r < 0 ? r : dirs_changed_locked(idx, parent);
}

/*
 * Runs fn inside one write transaction under the lock and, when ret is not NULL, reads the
 * attributes of *ino (which fn may set) as that transaction leaves them. Read after the
 * transaction instead, a concurrent change (the last release of an unlinked file dropping
 * its inode) made a successful unlink answer ENOENT.
 */
static int in_transaction_attr(struct index *idx, int (*fn)(struct index *idx, void *ud), void *ud,
                               const uint64_t *ino, struct index_attr *ret)
{
        int r;

        pthread_mutex_lock(&idx->lock);
        r = txn(idx, "BEGIN IMMEDIATE");
        if (r >= 0) {
                r = fn(idx, ud);
                if (r >= 0 && ret)
                        r = getattr_locked(idx, *ino, ret);
                if (r >= 0) {
                        int c = txn(idx, "COMMIT");

                        if (c < 0)
                                r = c;
                }
                if (r < 0)
                        (void)txn(idx, "ROLLBACK"); /* the first error is the one reported */
        }
        pthread_mutex_unlock(&idx->lock);
        return r;
}

static int in_transaction(struct index *idx, int (*fn)(struct index *idx, void *ud), void *ud)
{
        return in_transaction_attr(idx, fn, ud, NULL, NULL);
}

struct unlink_args {
        uint64_t parent;
        const char *name;
        bool dir;
        struct index_attr victim;
};

static int do_unlink(struct index *idx, void *ud)
{
        struct unlink_args *u = ud;
        int r;

        r = lookup_locked(idx, u->parent, u->name, &u->victim);
        if (r < 0)
                return r;
        if (u->dir && !S_ISDIR(u->victim.mode))
                return -ENOTDIR;
        if (!u->dir && S_ISDIR(u->victim.mode))
                return -EISDIR;
        if (u->dir) {
                r = check_empty_locked(idx, &u->victim);
                if (r < 0)
                        return r;
        }
        struct timespec now = now_ts();

        return drop_entry_locked(idx, u->parent, u->name, &u->victim, &now);
}

int index_unlink(struct index *idx, uint64_t parent, const char *name, bool dir,
                 struct index_attr *ret)
{
        struct unlink_args u = { .parent = parent, .name = name, .dir = dir };

        return in_transaction_attr(idx, do_unlink, &u, &u.victim.ino, ret);
}

struct rename_args {
        uint64_t parent, newparent;
        const char *name, *newname;
        unsigned flags;
        struct index_attr src, dst;
        bool replaced;
};

static int do_rename(struct index *idx, void *ud)
{
        struct rename_args *a = ud;
        struct timespec now = now_ts();
        bool dir;
        int r;

        r = lookup_locked(idx, a->parent, a->name, &a->src);
        if (r < 0)
                return r;
        dir = S_ISDIR(a->src.mode);
        r = lookup_locked(idx, a->newparent, a->newname, &a->dst);
        if (r >= 0) {
                if (a->flags & INDEX_RENAME_NOREPLACE)
                        return -EEXIST;
                if (a->dst.ino == a->src.ino)
                        return 0; /* two links to one inode: POSIX says do nothing */
                if (dir && !S_ISDIR(a->dst.mode))
                        return -ENOTDIR;
                if (!dir && S_ISDIR(a->dst.mode))
                        return -EISDIR;
                if (dir) {
                        r = check_empty_locked(idx, &a->dst);
                        if (r < 0)
                                return r;
                }
                r = drop_entry_locked(idx, a->newparent, a->newname, &a->dst, &now);
                if (r >= 0) /* as it is left (see in_transaction_attr) */
                        r = getattr_locked(idx, a->dst.ino, &a->dst);
                if (r < 0)
                        return r;
                a->replaced = true;
        } else if (r != -ENOENT)
                return r;
        r = q(idx, NULL, NULL,
              "UPDATE dentries SET parent = ?3, name = ?4 WHERE parent = ?1 AND name = ?2", "isis",
              (int64_t)a->parent, a->name, (int64_t)a->newparent, a->newname);
        if (r >= 0 && dir && a->parent != a->newparent)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET nlink = nlink + (CASE ino WHEN ?1 THEN -1 ELSE 1 END) "
                      "WHERE ino IN (?1, ?2)",
                      "ii", (int64_t)a->parent, (int64_t)a->newparent);
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET mtime_sec = ?3, mtime_nsec = ?4, ctime_sec = ?3, "
                      "ctime_nsec = ?4 WHERE ino IN (?1, ?2)",
                      "iit", (int64_t)a->parent, (int64_t)a->newparent, &now);
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET ctime_sec = ?2, ctime_nsec = ?3 WHERE ino = ?1", "it",
                      (int64_t)a->src.ino, &now);
        if (r >= 0)
                r = dirs_changed_locked(idx, a->parent);
        if (r >= 0 && a->newparent != a->parent)
                r = dirs_changed_locked(idx, a->newparent);
        return r;
}

int index_rename(struct index *idx, uint64_t parent, const char *name, uint64_t newparent,
                 const char *newname, unsigned flags, struct index_attr *ret_replaced)
{
        struct rename_args a = {
                .parent = parent,
                .name = name,
                .newparent = newparent,
                .newname = newname,
                .flags = flags,
        };
        int r;

        if (flags & ~INDEX_RENAME_NOREPLACE)
                return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
        if (!index_name_ok(newname))
                return -EINVAL;
        r = in_transaction(idx, do_rename, &a);
        if (r < 0)
                return r;
        if (ret_replaced) {
                ret_replaced->ino = 0;
                if (a.replaced)
                        *ret_replaced = a.dst;
        }
        return 0;
}

struct link_args {
        uint64_t ino, newparent;
        const char *newname;
};

static int do_link(struct index *idx, void *ud)
{
        struct link_args *a = ud;
        struct timespec now = now_ts();
        int r;

        r = q(idx, NULL, NULL, "INSERT INTO dentries(parent, name, ino) VALUES (?1, ?2, ?3)", "isi",
              (int64_t)a->newparent, a->newname, (int64_t)a->ino);
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET nlink = nlink + 1, ctime_sec = ?2, ctime_nsec = ?3 "
                      "WHERE ino = ?1",
                      "it", (int64_t)a->ino, &now);
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET mtime_sec = ?2, mtime_nsec = ?3, ctime_sec = ?2, "
                      "ctime_nsec = ?3 WHERE ino = ?1",
                      "it", (int64_t)a->newparent, &now);
        return r < 0 ? r : dirs_changed_locked(idx, a->newparent);
}

int index_link(struct index *idx, uint64_t ino, uint64_t newparent, const char *newname,
               struct index_attr *ret)
{
        struct link_args a = { .ino = ino, .newparent = newparent, .newname = newname };
        struct index_attr cur;
        int r;

        if (!index_name_ok(newname))
                return -EINVAL;
        r = index_getattr(idx, ino, &cur);
        if (r < 0)
                return r;
        if (S_ISDIR(cur.mode))
                return -EPERM;
        return in_transaction_attr(idx, do_link, &a, &a.ino, ret);
}

struct setattr_args {
        uint64_t ino;
        const struct index_setattr *s;
};

static int do_setattr(struct index *idx, void *ud)
{
        struct setattr_args *a = ud;
        const struct index_setattr *s = a->s;
        struct timespec now = now_ts();
        int64_t ino = (int64_t)a->ino;
        int changes = 0, r = 0;

        r = q(idx, NULL, &changes,
              "UPDATE inodes SET ctime_sec = ?2, ctime_nsec = ?3 WHERE ino = ?1", "it", ino,
              s->set & INDEX_SET_CTIME ? &s->ctime : &now);
        if (r >= 0 && changes == 0)
                return -ENOENT;
        if (r >= 0 && s->set & INDEX_SET_MODE)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET mode = (mode & ~4095) | (?2 & 4095) WHERE ino = ?1", "ii",
                      ino, (int64_t)s->mode);
        if (r >= 0 && s->set & INDEX_SET_UID)
                r = q(idx, NULL, NULL, "UPDATE inodes SET uid = ?2 WHERE ino = ?1", "ii", ino,
                      (int64_t)s->uid);
        if (r >= 0 && s->set & INDEX_SET_GID)
                r = q(idx, NULL, NULL, "UPDATE inodes SET gid = ?2 WHERE ino = ?1", "ii", ino,
                      (int64_t)s->gid);
        if (r >= 0 && s->set & INDEX_SET_SIZE)
                r = q(idx, NULL, NULL, "UPDATE inodes SET size = ?2 WHERE ino = ?1", "ii", ino,
                      (int64_t)s->size);
        if (r >= 0 && s->set & INDEX_SET_ATIME)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET atime_sec = ?2, atime_nsec = ?3 WHERE ino = ?1", "it", ino,
                      &s->atime);
        if (r >= 0 && s->set & INDEX_SET_MTIME)
                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET mtime_sec = ?2, mtime_nsec = ?3 WHERE ino = ?1", "it", ino,
                      &s->mtime);
        return r;
}

int index_setattr(struct index *idx, uint64_t ino, const struct index_setattr *s,
                  struct index_attr *ret)
{
        struct setattr_args a = { .ino = ino, .s = s };

        if ((s->set & INDEX_SET_ATIME && !ts_ok(&s->atime)) ||
            (s->set & INDEX_SET_MTIME && !ts_ok(&s->mtime)) ||
            (s->set & INDEX_SET_CTIME && !ts_ok(&s->ctime)))
                return -EINVAL;
        return in_transaction_attr(idx, do_setattr, &a, &a.ino, ret);
}

struct xattr_args {
        uint64_t ino;
        const char *name;
        const void *value;
        size_t size;
        int flags;
};

static int do_xattr_set(struct index *idx, void *ud)
{
        struct xattr_args *a = ud;
        int changes = 0, r;

        if (a->flags & INDEX_XATTR_REPLACE) {
                r = q(idx, NULL, &changes,
                      "UPDATE xattrs SET value = ?3 WHERE ino = ?1 AND name = ?2", "ixb",
                      (int64_t)a->ino, a->name, a->value, a->size);
                if (r >= 0 && changes == 0)
                        r = -ENODATA;
        } else
                r = q(idx, NULL, NULL,
                      a->flags & INDEX_XATTR_CREATE
                              ? "INSERT INTO xattrs(ino, name, value) VALUES (?1, ?2, ?3)"
                              : "INSERT OR REPLACE INTO xattrs(ino, name, value) "
                                "VALUES (?1, ?2, ?3)",
                      "ixb", (int64_t)a->ino, a->name, a->value, a->size);
        if (r >= 0) {
                struct timespec now = now_ts();

                r = q(idx, NULL, NULL,
                      "UPDATE inodes SET ctime_sec = ?2, ctime_nsec = ?3 WHERE ino = ?1", "it",
                      (int64_t)a->ino, &now);
        }
        return r;
}

int index_xattr_set(struct index *idx, uint64_t ino, const char *name, const void *value,
                    size_t size, int flags)
{
        struct xattr_args a = {
                .ino = ino, .name = name, .value = value, .size = size, .flags = flags
        };

        return in_transaction(idx, do_xattr_set, &a);
}

static int do_xattr_remove(struct index *idx, void *ud)
{
        struct xattr_args *a = ud;
        int changes = 0, r;

        r = q(idx, NULL, &changes, "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2", "ix",
              (int64_t)a->ino, a->name);
        return r >= 0 && changes == 0 ? -ENODATA : r;
}

int index_xattr_remove(struct index *idx, uint64_t ino, const char *name)
{
        struct xattr_args a = { .ino = ino, .name = name };

        return in_transaction(idx, do_xattr_remove, &a);
}

static int do_drop_orphans(struct index *idx, void *ud)
{
        int64_t *only = ud;
        int r;

        if (*only) {
                r = q(idx, NULL, NULL,
                      "DELETE FROM xattrs WHERE ino = ?1 AND "
                      "(SELECT nlink FROM inodes WHERE ino = ?1) <= 0",
                      "i", *only);
                if (r >= 0)
                        r = q(idx, NULL, NULL,
                              "DELETE FROM jobs WHERE ino = ?1 AND "
                              "(SELECT nlink FROM inodes WHERE ino = ?1) <= 0",
                              "i", *only);
                if (r >= 0)
                        r = q(idx, NULL, NULL, "DELETE FROM inodes WHERE ino = ?1 AND nlink <= 0",
                              "i", *only);
                return r;
        }
        r = q(idx, NULL, NULL,
              "DELETE FROM xattrs WHERE ino IN (SELECT ino FROM inodes WHERE nlink <= 0)", "");
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "DELETE FROM jobs WHERE ino IN (SELECT ino FROM inodes WHERE nlink <= 0)",
                      "");
        if (r >= 0)
                r = q(idx, NULL, NULL, "DELETE FROM inodes WHERE nlink <= 0", "");
        return r;
}

int index_drop_orphans(struct index *idx, uint64_t ino)
{
        int64_t only = (int64_t)ino;

        return in_transaction(idx, do_drop_orphans, &only);
}

/* ---- pins (see index.h for the states) ---- */

/* Records a pin prsmfs made of cid; under the lock, inside a transaction. */
static int pin_add_locked(struct index *idx, const struct cid *cid, unsigned flags)
{
        int r;

        /* OWED: not sent yet, simply held again; SENT or GONE: an unpin may have landed after
         * this pin, so the worker decides (pins again, or unpins again if unreferenced) */
        r = q(idx, NULL, NULL,
              "INSERT INTO pins(cid, published, state) VALUES (?1, ?2, 0) "
              "ON CONFLICT(cid) DO UPDATE SET published = max(published, excluded.published), "
              "state = CASE state WHEN 1 THEN 0 WHEN 3 THEN 2 ELSE state END",
              "bi", cid->bin, (size_t)cid->len, (int64_t)(flags & INDEX_PIN_PUBLISHED ? 1 : 0));
        if (r >= 0)
                r = q(idx, NULL, NULL, PIN_UNREF_SQL("?1"), "b", cid->bin, (size_t)cid->len);
        return r;
}

struct pin_args {
        const struct cid *cid;
        unsigned flags;
        int result;
};

static int do_pin_add(struct index *idx, void *ud)
{
        struct pin_args *a = ud;

        return pin_add_locked(idx, a->cid, a->flags);
}

int index_pin_add(struct index *idx, const struct cid *cid, unsigned flags)
{
        struct pin_args a = { .cid = cid, .flags = flags };

        return in_transaction(idx, do_pin_add, &a);
}

/* The state of cid's row and whether it is referenced (-ENOENT: no row); under the lock. */
static int pin_get_locked(struct index *idx, const struct cid *cid, int64_t *ret_state,
                          bool *ret_referenced)
{
        int64_t v = 0;
        int r;

        /* state * 2 + referenced, in one read */
        r = q(idx, &v, NULL,
              "SELECT state * 2 + " PIN_REFERENCED_SQL("pins.cid") " FROM pins WHERE cid = ?1", "b",
              cid->bin, (size_t)cid->len);
        if (r < 0)
                return r;
        *ret_state = v / 2;
        *ret_referenced = v % 2;
        return 0;
}

static int do_pin_unpublish(struct index *idx, void *ud)
{
        struct pin_args *a = ud;
        int64_t state;
        bool referenced;
        int changes = 0, r;

        r = q(idx, NULL, &changes, "UPDATE pins SET published = 0 WHERE cid = ?1 AND published",
              "b", a->cid->bin, (size_t)a->cid->len);
        if (r >= 0 && changes == 0)
                return -ENOENT;
        if (r >= 0)
                r = q(idx, NULL, NULL, PIN_UNREF_SQL("?1"), "b", a->cid->bin, (size_t)a->cid->len);
        if (r >= 0)
                r = pin_get_locked(idx, a->cid, &state, &referenced);
        if (r >= 0)
                a->result = referenced ? 0 : 1;
        return r;
}

int index_pin_unpublish(struct index *idx, const struct cid *cid)
{
        struct pin_args a = { .cid = cid };
        int r;

        r = in_transaction(idx, do_pin_unpublish, &a);
        return r < 0 ? r : a.result;
}

int index_pins_owed(struct index *idx, struct cid *ret, size_t max)
{
        sqlite3_stmt *st;
        size_t n = 0;
        bool once;
        int rc = SQLITE_DONE, r;

        pthread_mutex_lock(&idx->lock);
        r = kept_stmt(idx, "SELECT cid FROM pins WHERE state IN (1, 2) LIMIT ?1", &st, &once);
        if (r >= 0) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64)MIN(max, (size_t)INT32_MAX));
                while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        const void *b = sqlite3_column_blob(st, 0);
                        int len = sqlite3_column_bytes(st, 0);

                        /* bytes from disk: a row that no longer parses is skipped */
                        if (b && len > 0 && cid_from_bytes(b, (size_t)len, &ret[n]) >= 0)
                                n++;
                }
                if (n < max && rc != SQLITE_DONE)
                        r = errno_from_sqlite(rc);
                kept_done(st, once);
        }
        pthread_mutex_unlock(&idx->lock);
        return r < 0 ? r : (int)n;
}

static int do_pin_claim(struct index *idx, void *ud)
{
        struct pin_args *a = ud;
        int64_t state;
        bool referenced;
        int r;

        a->result = INDEX_PIN_NOTHING;
        r = pin_get_locked(idx, a->cid, &state, &referenced);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (state == INDEX_PIN_OWED && referenced)
                return q(idx, NULL, NULL, "UPDATE pins SET state = 0 WHERE cid = ?1", "b",
                         a->cid->bin, (size_t)a->cid->len);
        if (state == INDEX_PIN_OWED)
                r = q(idx, NULL, NULL, "UPDATE pins SET state = 2 WHERE cid = ?1", "b", a->cid->bin,
                      (size_t)a->cid->len);
        if (r >= 0 && (state == INDEX_PIN_OWED || state == INDEX_PIN_SENT))
                a->result = referenced ? INDEX_PIN_REPIN : INDEX_PIN_UNPIN;
        return r;
}

int index_pin_claim(struct index *idx, const struct cid *cid)
{
        struct pin_args a = { .cid = cid };
        int r;

        r = in_transaction(idx, do_pin_claim, &a);
        return r < 0 ? r : a.result;
}

static int do_pin_done(struct index *idx, void *ud)
{
        struct pin_args *a = ud;
        struct timespec now = now_ts();
        int64_t state;
        bool referenced;
        int r;

        a->result = 0;
        r = pin_get_locked(idx, a->cid, &state, &referenced);
        if (r == -ENOENT)
                return 0;
        if (r < 0 || state != INDEX_PIN_SENT)
                return r;
        if (a->flags == INDEX_PIN_UNPIN && !referenced)
                r = q(idx, NULL, NULL,
                      "UPDATE pins SET state = 3, unpinned_sec = ?2 WHERE cid = ?1", "bi",
                      a->cid->bin, (size_t)a->cid->len, (int64_t)now.tv_sec);
        else if (a->flags == INDEX_PIN_REPIN && referenced)
                r = q(idx, NULL, NULL, "UPDATE pins SET state = 0 WHERE cid = ?1", "b", a->cid->bin,
                      (size_t)a->cid->len);
        else
                return 0; /* the references changed meanwhile: claim it again */
        if (r >= 0)
                a->result = 1;
        return r;
}

int index_pin_done(struct index *idx, const struct cid *cid, enum index_pin_action action)
{
        struct pin_args a = { .cid = cid, .flags = action };
        int r;

        r = in_transaction(idx, do_pin_done, &a);
        return r < 0 ? r : a.result;
}

int index_pin_counts(struct index *idx, uint64_t *ret_held, uint64_t *ret_owed)
{
        int64_t held = 0, owed = 0;
        int r;

        pthread_mutex_lock(&idx->lock);
        r = q(idx, &held, NULL, "SELECT count(*) FROM pins WHERE state = 0", "");
        if (r >= 0)
                r = q(idx, &owed, NULL, "SELECT count(*) FROM pins WHERE state IN (1, 2)", "");
        pthread_mutex_unlock(&idx->lock);
        if (r < 0)
                return r;
        *ret_held = (uint64_t)held;
        *ret_owed = (uint64_t)owed;
        return 0;
}

int index_pins_prune(struct index *idx)
{
        struct timespec now = now_ts();
        int r;

        pthread_mutex_lock(&idx->lock);
        r = q(idx, NULL, NULL, "DELETE FROM pins WHERE state = 3 AND unpinned_sec < ?1", "i",
              (int64_t)now.tv_sec - INDEX_PIN_GONE_KEEP_SEC);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

/* ---- staged content and upload jobs ---- */

struct staged_args {
        uint64_t ino, gen, size;
        const struct timespec *mtime, *ctime;
        const struct cid *cid;
        unsigned flags; /* INDEX_COMMIT_* */
        bool applied;
};

static int do_stage(struct index *idx, void *ud)
{
        struct staged_args *a = ud;
        int changes = 0, r;

        /* (SET expressions all read the row as it was) */
        r = q(idx, NULL, &changes,
              "UPDATE inodes SET size = ?2, state = ?3, staged = ?4, mtime_sec = ?5, "
              "mtime_nsec = ?6, "
              "ctime_sec = iif((ctime_sec, ctime_nsec) < (?7, ?8), ?7, ctime_sec), "
              "ctime_nsec = iif((ctime_sec, ctime_nsec) < (?7, ?8), ?8, ctime_nsec) "
              "WHERE ino = ?1",
              "iiiitt", (int64_t)a->ino, (int64_t)a->size, (int64_t)INDEX_STATE_DIRTY,
              (int64_t)a->gen, a->mtime, a->ctime);
        if (r >= 0 && changes == 0)
                return -ENOENT;
        if (r >= 0)
                r = dirs_changed_locked(idx, a->ino);
        /* created_ns only orders the jobs: the clock's int64 ns */
        if (r >= 0)
                r = q(idx, NULL, NULL,
                      "INSERT OR REPLACE INTO jobs(ino, gen, size, created_ns) "
                      "VALUES (?1, ?2, ?3, ?4)",
                      "iiii", (int64_t)a->ino, (int64_t)a->gen, (int64_t)a->size, now_ns());
        return r;
}

int index_stage(struct index *idx, uint64_t ino, uint64_t gen, uint64_t size,
                const struct timespec *mtime, const struct timespec *ctime)
{
        struct staged_args a = {
                .ino = ino, .gen = gen, .size = size, .mtime = mtime, .ctime = ctime
        };

        if (!ts_ok(mtime) || !ts_ok(ctime))
                return -EINVAL;
        return in_transaction(idx, do_stage, &a);
}

static int do_commit_upload(struct index *idx, void *ud)
{
        struct staged_args *a = ud;
        int changes = 0, r;

        /* only the content still staged: a newer generation may have replaced it */
        r = q(idx, NULL, &changes,
              "UPDATE inodes SET cid = ?3, size = ?4, state = ?5, staged = 0 "
              "WHERE ino = ?1 AND staged = ?2",
              "iibii", (int64_t)a->ino, (int64_t)a->gen, a->cid->bin, (size_t)a->cid->len,
              (int64_t)a->size, (int64_t)INDEX_STATE_CLEAN);
        if (r < 0)
                return r;
        a->applied = changes > 0;
        if (a->applied)
                r = dirs_changed_locked(idx, a->ino);
        if (r >= 0)
                r = q(idx, NULL, NULL, "DELETE FROM jobs WHERE ino = ?1 AND gen = ?2", "ii",
                      (int64_t)a->ino, (int64_t)a->gen);
        if (r >= 0 && a->flags & INDEX_COMMIT_PINNED)
                r = pin_add_locked(idx, a->cid, 0);
        return r;
}

int index_commit_upload(struct index *idx, uint64_t ino, uint64_t gen, const struct cid *cid,
                        uint64_t size, unsigned flags)
{
        struct staged_args a = { .ino = ino, .gen = gen, .size = size, .cid = cid, .flags = flags };
        int r;

        r = in_transaction(idx, do_commit_upload, &a);
        return r < 0 ? r : a.applied ? 1 : 0;
}

uint64_t index_tree_changes(struct index *idx)
{
        uint64_t n;

        pthread_mutex_lock(&idx->lock);
        n = idx->tree_changes;
        pthread_mutex_unlock(&idx->lock);
        return n;
}

struct dir_cid_args {
        uint64_t ino, since;
        const struct cid *cid;
};

static int do_set_dir_cid(struct index *idx, void *ud)
{
        struct dir_cid_args *a = ud;

        if (idx->tree_changes != a->since)
                return 0; /* changed while it was built: the CID is of older content */
        return q(idx, NULL, NULL,
                 "UPDATE inodes SET cid = ?2 WHERE ino = ?1 AND (mode & 61440) = 16384 "
                 "AND state != 1",
                 "ib", (int64_t)a->ino, a->cid->bin, (size_t)a->cid->len);
}

int index_set_dir_cid(struct index *idx, uint64_t ino, const struct cid *cid, uint64_t since)
{
        struct dir_cid_args a = { .ino = ino, .since = since, .cid = cid };

        return in_transaction(idx, do_set_dir_cid, &a);
}

/* Room for element n in *array of *cap elements of size bytes (doubling from 16). */
static int grow_array(void **array, size_t *cap, size_t n, size_t size)
{
        size_t c = *cap ? *cap * 2 : 16;
        void *p;

        if (n < *cap)
                return 0;
        p = reallocarray(*array, c, size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *cap = c;
        return 0;
}

int index_jobs(struct index *idx, index_job_fn fn, void *userdata)
{
        struct index_job *jobs = NULL;
        size_t n = 0, cap = 0;
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        pthread_mutex_lock(&idx->lock);
        rc = sqlite3_prepare_v2(idx->db, "SELECT ino, gen, size FROM jobs ORDER BY created_ns", -1,
                                &st, NULL);
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
                rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        break;
                r = grow_array((void **)&jobs, &cap, n, sizeof(*jobs));
                if (r < 0)
                        break;
                jobs[n++] = (struct index_job){
                        .ino = (uint64_t)sqlite3_column_int64(st, 0),
                        .gen = (uint64_t)sqlite3_column_int64(st, 1),
                        .size = (uint64_t)sqlite3_column_int64(st, 2),
                };
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&idx->lock);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = fn(&jobs[i], userdata);
        free(jobs);
        return r;
}

/* ---- prsmctl uploads forget ---- */

struct job_forget_args {
        uint64_t gen;
        int changes;
};

static int do_job_forget(struct index *idx, void *ud)
{
        struct job_forget_args *a = ud;

        return q(idx, NULL, &a->changes, "DELETE FROM jobs WHERE gen = ?1", "i", (int64_t)a->gen);
}

int index_job_forget(struct index *idx, uint64_t gen)
{
        struct job_forget_args a = { .gen = gen };
        int r = in_transaction(idx, do_job_forget, &a);

        return r < 0 ? r : a.changes > 0 ? 0 : -ENOENT;
}

/* ---- model loading: O(1) copies and names for prefetch_on_open ---- */

static int do_set_content(struct index *idx, void *ud)
{
        struct staged_args *a = ud;
        int changes = 0, r;

        /* a regular file outside .ipfs/ only; its staged content and job are replaced (the
         * pins triggers owe the old root's unpin if this was its last reference) */
        r = q(idx, NULL, &changes,
              "UPDATE inodes SET cid = ?2, size = ?3, state = ?4, staged = 0, mtime_sec = ?5, "
              "mtime_nsec = ?6, ctime_sec = ?7, ctime_nsec = ?8 "
              "WHERE ino = ?1 AND (mode & 61440) = 32768 AND (flags & 1) = 0",
              "ibiitt", (int64_t)a->ino, a->cid->bin, (size_t)a->cid->len, (int64_t)a->size,
              (int64_t)INDEX_STATE_CLEAN, a->mtime, a->ctime);
        if (r >= 0 && changes == 0)
                return -ENOENT;
        if (r >= 0)
                r = dirs_changed_locked(idx, a->ino);
        if (r >= 0)
                r = q(idx, NULL, NULL, "DELETE FROM jobs WHERE ino = ?1", "i", (int64_t)a->ino);
        return r;
}

int index_set_content(struct index *idx, uint64_t ino, const struct cid *cid, uint64_t size,
                      const struct timespec *mtime, const struct timespec *ctime)
{
        struct staged_args a = {
                .ino = ino, .size = size, .cid = cid, .mtime = mtime, .ctime = ctime
        };

        if (!ts_ok(mtime) || !ts_ok(ctime) || size > INT64_MAX)
                return -EINVAL;
        return in_transaction(idx, do_set_content, &a);
}

int index_name_of(struct index *idx, uint64_t ino, char *buf, size_t size)
{
        sqlite3_stmt *st;
        bool once;
        int rc, r;

        pthread_mutex_lock(&idx->lock);
        r = kept_stmt(idx, "SELECT name FROM dentries WHERE ino = ?1 LIMIT 1", &st, &once);
        if (r < 0) {
                pthread_mutex_unlock(&idx->lock);
                return r;
        }
        sqlite3_bind_int64(st, 1, (int64_t)ino);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const void *p = sqlite3_column_blob(st, 0);
                int len = sqlite3_column_bytes(st, 0);

                if (len < 0 || (size_t)len >= size)
                        r = -ENAMETOOLONG;
                else {
                        if (len)
                                memcpy(buf, p, (size_t)len);
                        buf[len] = '\0';
                }
        } else
                r = rc == SQLITE_DONE ? -ENOENT : errno_from_sqlite(rc);
        kept_done(st, once);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

/* ---- PRSM provenance records and access ledger (schema 9) ---- */

struct prov_append_args {
        const struct index_prov_row *rows;
        size_t n;
};

static int do_prov_append(struct index *idx, void *ud)
{
        struct prov_append_args *a = ud;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < a->n; i++) {
                const struct index_prov_row *row = &a->rows[i];

                if (row->cid)
                        r = q(idx, NULL, NULL,
                              "INSERT INTO provenance(seq, path, cid, record) "
                              "VALUES (?1, ?2, ?3, ?4)",
                              "isbx", (int64_t)row->seq, row->path, row->cid->bin,
                              (size_t)row->cid->len, row->record);
                else
                        r = q(idx, NULL, NULL,
                              "INSERT INTO provenance(seq, path, record) VALUES (?1, ?2, ?3)",
                              "isx", (int64_t)row->seq, row->path, row->record);
        }
        return r;
}

int index_prov_append(struct index *idx, const struct index_prov_row *rows, size_t n)
{
        struct prov_append_args a = { .rows = rows, .n = n };

        return n ? in_transaction(idx, do_prov_append, &a) : 0;
}

/* Runs a one-row query whose first column is a seq and second a record text. */
static int prov_row(struct index *idx, sqlite3_stmt *st, uint64_t *ret_seq, char **ret_record)
{
        const unsigned char *text;
        int rc = sqlite3_step(st);
        char *copy;

        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        (void)idx;
        text = sqlite3_column_text(st, 1);
        copy = strdup(text ? (const char *)text : "");
        if (!copy)
                return -ENOMEM;
        if (ret_seq)
                *ret_seq = (uint64_t)sqlite3_column_int64(st, 0);
        *ret_record = copy;
        return 0;
}

int index_prov_last(struct index *idx, uint64_t *ret_seq, char **ret_record)
{
        sqlite3_stmt *st = NULL;
        int r;

        pthread_mutex_lock(&idx->lock);
        if (sqlite3_prepare_v2(idx->db,
                               "SELECT seq, record FROM provenance ORDER BY seq DESC LIMIT 1", -1,
                               &st, NULL) != SQLITE_OK)
                r = -EIO;
        else
                r = prov_row(idx, st, ret_seq, ret_record);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

int index_prov_latest(struct index *idx, const struct cid *cid, const char *path, char **ret_record)
{
        sqlite3_stmt *st;
        bool once;
        int r;

        pthread_mutex_lock(&idx->lock);
        r = kept_stmt(idx,
                      "SELECT seq, record FROM provenance WHERE cid = ?1 OR path = ?2 "
                      "ORDER BY seq DESC LIMIT 1",
                      &st, &once);
        if (r >= 0) {
                if (cid)
                        sqlite3_bind_blob(st, 1, cid->bin, (int)cid->len, SQLITE_STATIC);
                if (path)
                        sqlite3_bind_blob(st, 2, path, (int)strlen(path), SQLITE_STATIC);
                r = prov_row(idx, st, NULL, ret_record);
                kept_done(st, once);
        }
        pthread_mutex_unlock(&idx->lock);
        return r;
}

int index_prov_list(struct index *idx, uint64_t after, size_t max, index_prov_fn fn, void *userdata)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0, n = 0;

        if (max > INT_MAX)
                max = INT_MAX;
        pthread_mutex_lock(&idx->lock);
        rc = sqlite3_prepare_v2(idx->db,
                                "SELECT seq, record FROM provenance WHERE seq > ?1 ORDER BY seq "
                                "LIMIT ?2",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, (int64_t)MIN(after, (uint64_t)INT64_MAX));
                sqlite3_bind_int64(st, 2, (int64_t)max);
        }
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
                const unsigned char *text;

                rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        break;
                text = sqlite3_column_text(st, 1);
                r = fn((uint64_t)sqlite3_column_int64(st, 0), text ? (const char *)text : "",
                       userdata);
                if (r < 0)
                        break;
                n++;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&idx->lock);
        return r < 0 ? r : n;
}

int index_prov_replace(struct index *idx, uint64_t seq, const char *record)
{
        int changes = 0, r;

        pthread_mutex_lock(&idx->lock);
        r = q(idx, NULL, &changes, "UPDATE provenance SET record = ?2 WHERE seq = ?1", "ix",
              (int64_t)seq, record);
        pthread_mutex_unlock(&idx->lock);
        return r < 0 ? r : changes ? 0 : -ENOENT;
}

struct ledger_add_args {
        uint64_t batch;
        int64_t time_sec;
        const struct index_access *rows;
        size_t n;
};

static int do_ledger_add(struct index *idx, void *ud)
{
        struct ledger_add_args *a = ud;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < a->n; i++)
                r = q(idx, NULL, NULL,
                      "INSERT OR IGNORE INTO ledger(batch, cid, time_sec, opens, bytes) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
                      "ibiii", (int64_t)a->batch, a->rows[i].cid.bin, (size_t)a->rows[i].cid.len,
                      a->time_sec, (int64_t)MIN(a->rows[i].opens, (uint64_t)INT64_MAX),
                      (int64_t)MIN(a->rows[i].bytes, (uint64_t)INT64_MAX));
        return r;
}

int index_ledger_add(struct index *idx, uint64_t batch, int64_t time_sec,
                     const struct index_access *rows, size_t n)
{
        struct ledger_add_args a = {
                .batch = MIN(batch, (uint64_t)INT64_MAX), .time_sec = time_sec, .rows = rows, .n = n
        };

        return n ? in_transaction(idx, do_ledger_add, &a) : 0;
}

int index_ledger_sum(struct index *idx, int64_t since_sec, struct index_access **ret, size_t *ret_n)
{
        struct index_access *rows = NULL;
        size_t n = 0, cap = 0;
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        pthread_mutex_lock(&idx->lock);
        rc = sqlite3_prepare_v2(idx->db,
                                "SELECT cid, sum(opens), sum(bytes) FROM ledger "
                                "WHERE time_sec >= ?1 GROUP BY cid ORDER BY cid",
                                -1, &st, NULL);
        if (rc == SQLITE_OK)
                sqlite3_bind_int64(st, 1, since_sec);
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
                rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        break;
                r = grow_array((void **)&rows, &cap, n, sizeof(*rows));
                if (r < 0)
                        break;
                rows[n] = (struct index_access){
                        .opens = (uint64_t)sqlite3_column_int64(st, 1),
                        .bytes = (uint64_t)sqlite3_column_int64(st, 2),
                };
                if (cid_from_bytes(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                                   &rows[n].cid) >= 0)
                        n++; /* a row that is no CID is not anyone's access */
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = errno_from_sqlite(rc);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&idx->lock);
        if (r < 0) {
                free(rows);
                return r;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

int index_path(struct index *idx, uint64_t ino, char *buf, size_t size)
{
        sqlite3_stmt *st;
        size_t at = size; /* the path is built from its end */
        unsigned depth = 0;
        bool once;
        int r;

        if (size < 2)
                return -ENAMETOOLONG;
        buf[--at] = '\0';
        pthread_mutex_lock(&idx->lock);
        r = kept_stmt(idx, "SELECT parent, name FROM dentries WHERE ino = ?1 ORDER BY id LIMIT 1",
                      &st, &once);
        if (r < 0) {
                pthread_mutex_unlock(&idx->lock);
                return r;
        }
        while (ino != INDEX_ROOT_INO) {
                const void *name;
                size_t len;
                int rc;

                if (++depth > 4096) { /* a cycle would be corruption */
                        r = -EBADMSG;
                        break;
                }
                sqlite3_bind_int64(st, 1, (int64_t)ino);
                rc = sqlite3_step(st);
                if (rc != SQLITE_ROW) {
                        r = rc == SQLITE_DONE ? -ENOENT : errno_from_sqlite(rc);
                        break;
                }
                name = sqlite3_column_blob(st, 1);
                len = (size_t)sqlite3_column_bytes(st, 1);
                if (len + 1 > at) {
                        r = -ENAMETOOLONG;
                        break;
                }
                at -= len;
                memcpy(buf + at, name, len);
                buf[--at] = '/';
                ino = (uint64_t)sqlite3_column_int64(st, 0);
                sqlite3_reset(st);
        }
        kept_done(st, once);
        pthread_mutex_unlock(&idx->lock);
        if (r < 0)
                return r;
        if (at == size - 1) /* the root */
                buf[--at] = '/';
        memmove(buf, buf + at, size - at);
        return 0;
}

/* ---- PRSM content formats (schema 10) ---- */

int index_prsm_format_put(struct index *idx, const struct cid *cid, const char *layout)
{
        int r;

        pthread_mutex_lock(&idx->lock);
        r = q(idx, NULL, NULL, "INSERT OR REPLACE INTO prsm_formats(cid, layout) VALUES (?1, ?2)",
              "bx", cid->bin, (size_t)cid->len, layout);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

/* The first column of the row st (prepared with rc, its parameters bound) steps to, as a new
 * string in *ret; -ENOENT without a row. Finalizes st; under idx->lock. */
static int text_row_locked(sqlite3_stmt *st, int rc, char **ret)
{
        int r;

        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const unsigned char *text = sqlite3_column_text(st, 0);

                *ret = strdup(text ? (const char *)text : "");
                r = *ret ? 0 : -ENOMEM;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : errno_from_sqlite(rc);
        sqlite3_finalize(st);
        return r;
}

int index_prsm_format_get(struct index *idx, const struct cid *cid, char **ret)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        pthread_mutex_lock(&idx->lock);
        rc = sqlite3_prepare_v2(idx->db, "SELECT layout FROM prsm_formats WHERE cid = ?1", -1, &st,
                                NULL);
        if (rc == SQLITE_OK)
                sqlite3_bind_blob(st, 1, cid->bin, cid->len, SQLITE_STATIC);
        r = text_row_locked(st, rc, ret);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

/* ---- settings kept with the namespace (table meta, schema 5) ---- */

int index_meta_set(struct index *idx, const char *key, const char *value)
{
        int r;

        if (strcmp(key, "instance") == 0)
                return -EPERM; /* names this index's staging directory: never changed */
        pthread_mutex_lock(&idx->lock);
        if (value)
                r = q(idx, NULL, NULL, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
                      "xx", key, value);
        else
                r = q(idx, NULL, NULL, "DELETE FROM meta WHERE key = ?1", "x", key);
        pthread_mutex_unlock(&idx->lock);
        return r;
}

int index_meta_get(struct index *idx, const char *key, char **ret)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        pthread_mutex_lock(&idx->lock);
        rc = sqlite3_prepare_v2(idx->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK)
                sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        r = text_row_locked(st, rc, ret);
        pthread_mutex_unlock(&idx->lock);
        return r;
}
