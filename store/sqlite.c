/* store/sqlite.c - SQLite backend of store.h: one sqlite3 connection per struct store, WAL,
 * synchronous=NORMAL, foreign keys on, a 10 s busy timeout, and a cache of prepared
 * statements keyed by SQL text (so log appends and CAS updates skip the parser).
 *
 * SQL arrives in PostgreSQL's $N placeholder style and is rewritten to ?N once, when the
 * statement is prepared. Write transactions use BEGIN IMMEDIATE: taking the write lock up
 * front lets the busy handler wait for it, where a deferred transaction that later wants
 * to write would fail at once with SQLITE_BUSY under WAL. */
#define LOG_MODULE "store"
#include "store/store_int.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define SL_BUSY_TIMEOUT_MS 10000
/* Power of two; a full cache simply prepares uncached statements. */
#define SL_CACHE_SLOTS 256

struct sl_slot {
    char *key; /* the SQL text as store.c wrote it; NULL when the slot is free */
    uint64_t hash;
    sqlite3_stmt *stmt;
    bool busy; /* a cursor is using it */
};

struct sl_db {
    sqlite3 *h;
    char *path;
    struct sl_slot cache[SL_CACHE_SLOTS];
};

struct store__cur {
    struct sl_db *db;
    sqlite3_stmt *stmt;
    struct sl_slot *slot; /* NULL when the statement is not cached (finalize on free) */
    int pending;          /* result of the step run by query: SQLITE_ROW or SQLITE_DONE */
    bool started;
};

static int sl_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return WEIR_EUNAVAIL;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return WEIR_ENOTFOUND;
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return WEIR_ECONFLICT;
        return WEIR_EINVAL;
    case SQLITE_TOOBIG:
        return WEIR_ETOOBIG;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return WEIR_EINVAL;
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
        return WEIR_EIO;
    default:
        return WEIR_EINTERNAL;
    }
}

static int sl_fail(struct sl_db *db, int rc, struct weir_err *err)
{
    return err_set(err, sl_code(rc), "sqlite database '%s': %s", db->path,
                   db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
}

/* $N -> ?N outside quoted text; the result is as long as the input. */
static char *sl_translate(const char *sql)
{
    char *out = xstrdup(sql);
    char quote = 0;
    for (char *p = out; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            *p = '?';
        }
    }
    return out;
}

static int sl_prepare(struct sl_db *db, const char *sql, sqlite3_stmt **out, struct sl_slot **slot,
                      struct weir_err *err)
{
    uint64_t h = store__fnv1a(sql);
    struct sl_slot *free_slot = NULL;
    *slot = NULL;
    for (size_t i = 0; i < SL_CACHE_SLOTS; i++) {
        struct sl_slot *s = &db->cache[(h + i) & (SL_CACHE_SLOTS - 1)];
        if (!s->key) {
            free_slot = s;
            break;
        }
        if (s->hash == h && strcmp(s->key, sql) == 0) {
            if (s->busy)
                break; /* re-entrant use: prepare a private copy */
            s->busy = true;
            *out = s->stmt;
            *slot = s;
            return 0;
        }
    }
    char *text = sl_translate(sql);
    sqlite3_stmt *stmt = NULL;
    int rc =
        sqlite3_prepare_v3(db->h, text, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, NULL);
    free(text);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return sl_fail(db, rc, err);
    }
    if (free_slot) {
        free_slot->key = xstrdup(sql);
        free_slot->hash = h;
        free_slot->stmt = stmt;
        free_slot->busy = true;
        *slot = free_slot;
    }
    *out = stmt;
    return 0;
}

static void sl_release(struct sl_db *db, sqlite3_stmt *stmt, struct sl_slot *slot)
{
    (void)db;
    if (slot) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        slot->busy = false;
    } else {
        sqlite3_finalize(stmt);
    }
}

static int sl_query(struct store *st, const char *sql, const struct store__param *p, int np,
                    struct store__cur **cur, int64_t *changes, struct weir_err *err)
{
    struct sl_db *db = st->db;
    sqlite3_stmt *stmt = NULL;
    struct sl_slot *slot = NULL;
    int rc = sl_prepare(db, sql, &stmt, &slot, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < np; i++) {
        int brc;
        switch (p[i].type) {
        case SP_TEXT:
            brc = p[i].s ? sqlite3_bind_text(stmt, i + 1, p[i].s, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(stmt, i + 1);
            break;
        case SP_INT:
            brc = sqlite3_bind_int64(stmt, i + 1, p[i].i);
            break;
        default:
            brc = sqlite3_bind_null(stmt, i + 1);
            break;
        }
        if (brc != SQLITE_OK) {
            rc = sl_fail(db, brc, err);
            sl_release(db, stmt, slot);
            return rc;
        }
    }
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        /* sqlite3_step returns the extended code with prepare_v3 statements */
        rc = err_set(err, sl_code(step), "sqlite database '%s': %s", db->path,
                     sqlite3_errmsg(db->h));
        sl_release(db, stmt, slot);
        return rc;
    }
    if (changes)
        *changes = sqlite3_changes64(db->h);
    if (!cur) {
        sl_release(db, stmt, slot);
        return 0;
    }
    struct store__cur *c = xcalloc(1, sizeof(*c));
    c->db = db;
    c->stmt = stmt;
    c->slot = slot;
    c->pending = step;
    *cur = c;
    return 0;
}

static int sl_next(struct store__cur *c, struct weir_err *err)
{
    int rc;
    if (!c->started) {
        c->started = true;
        rc = c->pending;
    } else if (c->pending == SQLITE_DONE) {
        return 0;
    } else {
        rc = sqlite3_step(c->stmt);
    }
    if (rc == SQLITE_ROW)
        return 1;
    c->pending = SQLITE_DONE;
    if (rc == SQLITE_DONE)
        return 0;
    return err_set(err, sl_code(rc), "sqlite database '%s': %s", c->db->path,
                   sqlite3_errmsg(c->db->h));
}

static const char *sl_col_text(struct store__cur *c, int i)
{
    return (const char *)sqlite3_column_text(c->stmt, i);
}

static int64_t sl_col_int(struct store__cur *c, int i)
{
    return sqlite3_column_int64(c->stmt, i);
}

static bool sl_col_null(struct store__cur *c, int i)
{
    return sqlite3_column_type(c->stmt, i) == SQLITE_NULL;
}

static void sl_cur_free(struct store__cur *c)
{
    if (!c)
        return;
    sl_release(c->db, c->stmt, c->slot);
    free(c);
}

static int sl_script(struct store *st, const char *sql, struct weir_err *err)
{
    struct sl_db *db = st->db;
    char *msg = NULL;
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rc = err_set(err, sl_code(sqlite3_extended_errcode(db->h)), "sqlite database '%s': %s",
                     db->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int sl_begin(struct store *st, struct weir_err *err)
{
    return sl_query(st, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, err);
}

static int sl_commit(struct store *st, struct weir_err *err)
{
    struct sl_db *db = st->db;
    int rc = sl_query(st, "COMMIT", NULL, 0, NULL, NULL, err);
    /* A failed COMMIT (busy readers past the timeout, disk full) leaves the transaction
     * open in SQLite; roll it back so the connection is usable again. */
    if (rc < 0 && !sqlite3_get_autocommit(db->h))
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sl_rollback(struct store *st)
{
    struct sl_db *db = st->db;
    if (!sqlite3_get_autocommit(db->h))
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

static int sl_migrate_lock(struct store *st, struct weir_err *err)
{
    /* BEGIN IMMEDIATE already holds the database's one write lock. */
    (void)st;
    (void)err;
    return 0;
}

static int sl_has_table(struct store *st, const char *name, bool *exists, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { { SP_TEXT, name, 0 } };
    int rc = sl_query(st, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", p, 1,
                      &c, NULL, err);
    if (rc < 0 || !c)
        return rc < 0 ? rc : -WEIR_EINTERNAL;
    rc = sl_next(c, err);
    sl_cur_free(c);
    if (rc < 0)
        return rc;
    *exists = rc == 1;
    return 0;
}

static void sl_free_db(struct sl_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < SL_CACHE_SLOTS; i++) {
        if (db->cache[i].key) {
            sqlite3_finalize(db->cache[i].stmt);
            free(db->cache[i].key);
        }
    }
    if (db->h)
        sqlite3_close_v2(db->h);
    free(db->path);
    free(db);
}

static void sl_close(struct store *st)
{
    sl_free_db(st->db);
    st->db = NULL;
}

/* Says why the folder of `path` cannot hold a database, before SQLite's terser
 * "unable to open database file". Returns 0 when it looks usable. */
static int sl_check_dir(const char *path, struct weir_err *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *dir = xstrndup(path, (size_t)(slash - path));
    struct stat sb;
    char eb[128];
    int rc = 0;
    if (stat(dir, &sb) != 0)
        rc = err_set(err, WEIR_EIO, "cannot open sqlite database '%s': directory '%s': %s", path,
                     dir, err_errno(errno, eb, sizeof(eb)));
    else if (!S_ISDIR(sb.st_mode))
        rc = err_set(err, WEIR_EIO, "cannot open sqlite database '%s': '%s' is not a directory",
                     path, dir);
    else if (access(dir, W_OK | X_OK) != 0) /* WAL needs to create files beside the db */
        rc = err_set(err, WEIR_EIO,
                     "cannot open sqlite database '%s': directory '%s' is not "
                     "writable",
                     path, dir);
    free(dir);
    return rc;
}
/* Waits for a lock held by another connection. SQLite's own busy timeout sleeps 1, 2, 5,
 * 10 ms... between tries, which for the short write transactions weir makes (a state
 * change, a few log lines) wastes most of the wait: with the scheduler and two task
 * processes writing, a try's claim took ~5 ms to get in. This waits 20 us, doubling to
 * 1 ms, and gives up after SL_BUSY_TIMEOUT_MS in all. */
static int busy_wait(void *ud, int count)
{
    (void)ud;
    static const int steps_us[] = {20, 40, 80, 160, 320, 640};
    const int nsteps = (int)(sizeof steps_us / sizeof steps_us[0]);
    long long waited_us = 0;
    for (int i = 0; i < count && i < nsteps; i++)
        waited_us += steps_us[i];
    if (count > nsteps)
        waited_us += (long long)(count - nsteps) * 1000;
    if (waited_us >= (long long)SL_BUSY_TIMEOUT_MS * 1000)
        return 0;
    struct timespec ts = {0, (count < nsteps ? steps_us[count] : 1000) * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}


static int sl_open(struct store *st, const char *url, struct weir_err *err)
{
    /* "sqlite:///abs/x.db" leaves "/abs/x.db"; "sqlite://x.db" leaves "x.db". */
    const char *path = url + strlen("sqlite://");
    if (!*path)
        return err_set(err, WEIR_EINVAL, "store url '%s': missing database path", url);
    struct sl_db *db = xcalloc(1, sizeof(*db));
    db->path = xstrdup(path);
    int rc;
    if (strcmp(path, ":memory:") != 0 && (rc = sl_check_dir(path, err)) < 0)
        goto fail;
    int orc = sqlite3_open_v2(
        path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (orc != SQLITE_OK) {
        rc = err_set(err, sl_code(orc), "cannot open sqlite database '%s': %s", path,
                     db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(orc));
        goto fail;
    }
    if (sqlite3_db_readonly(db->h, "main") == 1) {
        rc = err_set(err, WEIR_EIO, "cannot open sqlite database '%s': read-only file", path);
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_handler(db->h, busy_wait, NULL);
    st->db = db;
    /* journal_mode=WAL also proves that the file is a database we can write. */
    static const char *const pragmas[] = {
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    };
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        char *msg = NULL;
        int prc = sqlite3_exec(db->h, pragmas[i], NULL, NULL, &msg);
        /* Switching a new file to WAL needs an exclusive lock; when several connections
         * open it at once, SQLite answers BUSY at once (deadlock avoidance) without
         * asking the busy handler. Wait and retry like the handler would. */
        for (int tries = 0; (prc == SQLITE_BUSY || prc == SQLITE_LOCKED) && busy_wait(NULL, tries);
             tries++) {
            sqlite3_free(msg);
            msg = NULL;
            prc = sqlite3_exec(db->h, pragmas[i], NULL, NULL, &msg);
        }
        if (prc != SQLITE_OK) {
            rc = err_set(err, sl_code(sqlite3_extended_errcode(db->h)),
                         "cannot open sqlite database '%s': %s", path,
                         msg ? msg : sqlite3_errstr(prc));
            sqlite3_free(msg);
            st->db = NULL;
            goto fail;
        }
    }
    return 0;
fail:
    sl_free_db(db);
    return rc;
}

const struct store__drv store__sqlite_drv = {
    .name = "sqlite",
    .open = sl_open,
    .close = sl_close,
    .query = sl_query,
    .next = sl_next,
    .col_text = sl_col_text,
    .col_int = sl_col_int,
    .col_null = sl_col_null,
    .cur_free = sl_cur_free,
    .script = sl_script,
    .begin = sl_begin,
    .commit = sl_commit,
    .rollback = sl_rollback,
    .migrate_lock = sl_migrate_lock,
    .has_table = sl_has_table,
};
