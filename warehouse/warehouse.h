/* warehouse/warehouse.h - the bundled columnar warehouse engine: a database is a folder of
 * schemas and tables stored as immutable compressed column parts; SQL (PostgreSQL dialect,
 * parsed by libpg_query) runs through vectorized operators. The one public header. */
#ifndef WEIR_WAREHOUSE_WAREHOUSE_H
#define WEIR_WAREHOUSE_WAREHOUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_err;

/* An open database. Opaque. One thread at a time per handle. Any number of handles, in any
 * number of processes, may use one folder: statements lock it (readers shared, writers and
 * transactions exclusive; see wh_set_lock_timeout). */
struct wh_db;
/* The rows of one statement. Opaque; owned by the caller, freed with wh_result_free. */
struct wh_result;

/* Logical column types (PostgreSQL names in wh_type_name). Values are stable. */
enum wh_type {
    WH_T_UNKNOWN = 0, /* a NULL literal or an untyped string literal */
    WH_T_BOOL = 1,
    WH_T_INT2 = 2,
    WH_T_INT4 = 3,
    WH_T_INT8 = 4,
    WH_T_FLOAT4 = 5,
    WH_T_FLOAT8 = 6,
    WH_T_NUMERIC = 7, /* numeric(p,s): a scaled int64 (p <= 18) */
    WH_T_TEXT = 8,
    WH_T_DATE = 9,      /* days since 1970-01-01 */
    WH_T_TS = 10,       /* timestamp: microseconds since 1970-01-01 00:00:00 */
    WH_T_TSTZ = 11,     /* timestamptz: microseconds since the epoch, UTC */
    WH_T_INTERVAL = 12, /* in expressions and results only (not storable in tables) */
};

/* Opens (creating if needed) the database folder `dir`. On success stores a new handle in
 * `*out` (free with wh_close) and returns 0. On failure returns a negative WEIR_E* code and
 * fills `err`: WEIR_EIO for file system errors, WEIR_EINVAL for a folder that is not a weir
 * warehouse, and a catalog whose manifests fail their checks. Leftovers of interrupted
 * writes (temporary files, unpublished parts) are removed. Never waits: when another process
 * holds the database lock, the catalog is read (and checked) by the first statement. */
int wh_open(const char *dir, struct wh_db **out, struct weir_err *err);

/* Closes the database. NULL-safe. */
void wh_close(struct wh_db *db);

/* Sets the per-query memory limit in bytes (0: the default, 1 GiB). A query that needs more
 * fails with WEIR_ETOOBIG and changes nothing. */
void wh_set_mem_limit(struct wh_db *db, size_t bytes);

/* Sets how many threads one query may use (0 or less: the number of online cores, the
 * default; at most 256). `SET threads = n` (or `SET threads TO DEFAULT`) does the same from
 * SQL. Results never depend on it. wh_threads returns the current value. */
void wh_set_threads(struct wh_db *db, int threads);
int wh_threads(const struct wh_db *db);

/* Sets how long a statement waits for another process (or handle) to release the database
 * lock, in milliseconds: 0 waits forever, a negative value restores the default (30 s).
 * `SET lock_timeout = ms | '30s'` does the same from SQL. A statement that waits longer
 * fails with WEIR_EUNAVAIL ("database is locked by another process"). wh_lock_timeout
 * returns the current value. See docs/warehouse.md, "Concurrency". */
void wh_set_lock_timeout(struct wh_db *db, int64_t ms);
int64_t wh_lock_timeout(const struct wh_db *db);

/* Runs one or more `;`-separated statements in `sql`. Each statement is atomic: its effect
 * is published completely or not at all. If `out` is not NULL it receives the result of the
 * last statement (free with wh_result_free); statements without rows give a result with
 * zero columns and wh_result_affected set. Stops at the first failing statement and returns
 * its negative WEIR_E* code with `err` filled (message names the construct; err->loc holds
 * "LINE:COL" of the offending SQL where known); earlier statements stay applied.
 * WEIR_EINVAL: bad or unsupported SQL, type errors; WEIR_ENOTFOUND: unknown table/column;
 * WEIR_ECONFLICT: already exists; WEIR_ETOOBIG: memory limit; WEIR_EIO: storage error;
 * WEIR_EUNAVAIL: the lock timeout passed while another process held the database. */
int wh_exec(struct wh_db *db, const char *sql, struct wh_result **out, struct weir_err *err);

/* Called by wh_exec_each once per statement with its result (borrowed: valid only during
 * the call) and the statement's wall time in seconds. Return 0 to go on, nonzero to stop. */
typedef int (*wh_each_fn)(struct wh_result *r, double seconds, void *arg);

/* Like wh_exec, but hands every statement's result to `fn` (which may be NULL). */
int wh_exec_each(struct wh_db *db, const char *sql, wh_each_fn fn, void *arg, struct weir_err *err);

/* Result access. `col` and `row` must be in range. Text values are borrowed from the result
 * and live until wh_result_free. */
size_t wh_result_ncols(const struct wh_result *r);
size_t wh_result_nrows(const struct wh_result *r);
const char *wh_result_colname(const struct wh_result *r, size_t col);
enum wh_type wh_result_coltype(const struct wh_result *r, size_t col);
/* For numeric columns, the scale (digits after the point); 0 otherwise. */
int wh_result_colscale(const struct wh_result *r, size_t col);
/* Rows inserted/copied/deleted by a statement without result rows; 0 otherwise. */
uint64_t wh_result_affected(const struct wh_result *r);
/* The command tag of the statement ("SELECT", "INSERT", "CREATE TABLE", ...). */
const char *wh_result_tag(const struct wh_result *r);
bool wh_result_isnull(const struct wh_result *r, size_t row, size_t col);
/* Integer-backed types (bool, ints, numeric scaled, date days, timestamp micros; for an
 * interval, its time part in microseconds). */
int64_t wh_result_int(const struct wh_result *r, size_t row, size_t col);
/* An interval's month and day parts (PostgreSQL keeps months, days and time apart). */
void wh_result_interval(const struct wh_result *r, size_t row, size_t col, int32_t *months,
                        int32_t *days);
/* Any numeric type as a double. */
double wh_result_double(const struct wh_result *r, size_t row, size_t col);
/* Text columns only (borrowed). */
const char *wh_result_str(const struct wh_result *r, size_t row, size_t col);
/* Formats any value as PostgreSQL's text output does ("t"/"f", "2024-01-02 03:04:05",
 * numeric with its scale, shortest round-trip doubles); NULL gives "" and returns false.
 * Writes at most `len` bytes including the NUL; returns true if not NULL. */
bool wh_result_text(const struct wh_result *r, size_t row, size_t col, char *buf, size_t len);
void wh_result_free(struct wh_result *r);

/* The PostgreSQL name of a type ("integer", "numeric", "timestamp with time zone"). */
const char *wh_type_name(enum wh_type t);

/* Table listing for shells (\dt, \d). wh_tables returns a result with columns schema, name,
 * rows (tables only, sorted); wh_describe one with columns column, type, nullable for table
 * `name` ("t" or "s.t"; WEIR_ENOTFOUND if missing). Free with wh_result_free. */
int wh_tables(struct wh_db *db, struct wh_result **out, struct weir_err *err);
int wh_describe(struct wh_db *db, const char *name, struct wh_result **out, struct weir_err *err);

#endif
