/* store/store_int.h - what store.c, sqlite.c, pg.c and migrations.c share: the driver
 * vtable (curl vtls style), the connection struct and the bound-parameter type. Only
 * files in store/ include this header.
 *
 * SQL text is written once, in PostgreSQL's placeholder style ($1..$N); the SQLite driver
 * rewrites it to ?1..?N when it prepares a statement. Every statement is run with bound
 * parameters; the only SQL built at run time is assembled from fixed fragments. */
#ifndef WEIR_STORE_STORE_INT_H
#define WEIR_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_err;
struct store;

enum store__ptype {
    SP_NULL = 0,
    SP_TEXT,
    SP_INT
};

/* One bound parameter. `s` is borrowed for the length of the call. */
struct store__param {
    enum store__ptype type;
    const char *s;
    int64_t i;
};

/* A result being read row by row. Backend-specific; freed with drv->cur_free. */
struct store__cur;

struct store__drv {
    const char *name; /* "sqlite" or "postgresql" */
    /* Connects `st` to `url` (already known to be this backend's). Fills st->db. */
    int (*open)(struct store *st, const char *url, struct weir_err *err);
    /* Closes the connection and frees st->db. NULL-safe for st->db. */
    void (*close)(struct store *st);
    /* Runs one statement with `np` parameters. If `cur` is non-NULL it receives a cursor
     * positioned before the first row (free it before running the next statement);
     * `changes` (may be NULL) gets the number of rows inserted/updated/deleted. */
    int (*query)(struct store *st, const char *sql, const struct store__param *p, int np,
                 struct store__cur **cur, int64_t *changes, struct weir_err *err);
    /* 1 when a row is ready, 0 at the end, negative WEIR_E* on failure. */
    int (*next)(struct store__cur *c, struct weir_err *err);
    /* Column `i` of the current row: text (NULL for SQL NULL; valid until next/free). */
    const char *(*col_text)(struct store__cur *c, int i);
    int64_t (*col_int)(struct store__cur *c, int i); /* 0 for NULL */
    bool (*col_null)(struct store__cur *c, int i);
    void (*cur_free)(struct store__cur *c); /* NULL-safe */
    /* Runs a script of several statements without parameters (migrations). */
    int (*script)(struct store *st, const char *sql, struct weir_err *err);
    /* Opens a write transaction (SQLite: BEGIN IMMEDIATE). */
    int (*begin)(struct store *st, struct weir_err *err);
    int (*commit)(struct store *st, struct weir_err *err);
    void (*rollback)(struct store *st);
    /* Serialises migrations across processes; called inside the migration transaction. */
    int (*migrate_lock)(struct store *st, struct weir_err *err);
    /* Whether table `name` exists (in the current schema). */
    int (*has_table)(struct store *st, const char *name, bool *exists, struct weir_err *err);
};

struct store {
    const struct store__drv *drv;
    void *db;       /* the backend's connection state */
    char *url_safe; /* the URL with any password replaced by "***", for messages */
    int depth;      /* store_begin nesting level; 0 when the caller opened none */
    bool in_tx;     /* a transaction is open (the caller's or an operation's own) */
};

extern const struct store__drv store__sqlite_drv;
extern const struct store__drv store__pg_drv;

/* Migrations: version `v` (1..store_schema_latest()) as one SQL script for `backend`
 * ("sqlite" or "postgresql"). NULL if out of range. */
const char *store__migration_sql(const char *backend, int v);
int store__migration_count(void);

/* Copies `url` with the password (userinfo and ?password=) replaced by "***". */
char *store__url_redact(const char *url);

/* FNV-1a 64-bit hash of a C string (statement-cache keys, DAG doc version hashes). */
uint64_t store__fnv1a(const char *s);

#endif
