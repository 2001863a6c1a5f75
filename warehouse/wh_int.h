/* warehouse/wh_int.h - declarations shared between the warehouse's own files: column
 * vectors, relations, the catalog, the per-query context and its error exit. Not for other
 * modules. */
#ifndef WEIR_WAREHOUSE_WH_INT_H
#define WEIR_WAREHOUSE_WH_INT_H

#include <jansson.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "warehouse/warehouse.h"

struct arena;
struct weir_err;
struct wh_pool;

#define WH_GRANULE     8192 /* rows per granule: the unit of compression and pruning */
#define WH_DEFAULT_MEM ((size_t)1 << 30)
#define WH_MAX_COLS    1024
#define WH_MAX_NAME    63
#define WH_US_PER_DAY  86400000000LL
#define WH_MAX_THREADS 256

/* A column of n values. Integer-backed types use `i`, floats `f`, text `s`; `nul[r]` is 1
 * for NULL. All memory belongs to the query arena. */
struct wh_vec {
    uint8_t type;
    int16_t scale; /* numeric only */
    size_t n;
    uint8_t *nul;
    int64_t *i;
    double *f;
    const char **s;
    int64_t *m; /* interval only: wh__iv_pack(months, days); `i` holds the time part (us) */
    /* Text only, optional: a dictionary view of `s`. When `dc` is set, every non-NULL row r
     * has dc[r] < ndict and s[r] equal (as a string) to dict[dc[r]]; entries need not be
     * distinct, and entries no row uses may be NULL. Scans of dictionary-encoded column files
     * and gathers produce it; operators may use it to work once per entry instead of once
     * per row (wh__eval_dict, GROUP BY, hash joins). `s` is always filled too, so code that
     * ignores the dictionary stays correct; code that writes s[] of an existing vector must
     * clear dc. */
    uint32_t *dc;
    const char **dict;
    uint32_t ndict;
};

/* Gathers from a text source of at most this many rows into a larger output index the
 * source as a dictionary (dc = the source row), so joins with small dimensions give
 * dictionary vectors. */
#define WH_DICT_SMALL_SRC 65536

static inline int64_t wh__iv_pack(int32_t months, int32_t days)
{
    return (int64_t)(((uint64_t)(uint32_t)months << 32) | (uint32_t)days);
}
static inline int32_t wh__iv_months(int64_t m)
{
    return (int32_t)(uint32_t)((uint64_t)m >> 32);
}
static inline int32_t wh__iv_days(int64_t m)
{
    return (int32_t)(uint32_t)(uint64_t)m;
}

/* A materialized relation: columns with their qualifier (table alias) and names. */
struct wh_rel {
    int ncols;
    size_t n;
    struct wh_vec **cols;
    const char **names;
    const char **quals;
};

struct wh_coldef {
    char *name;
    uint8_t type;
    int16_t scale;
    int32_t typmod; /* numeric precision or varchar length; -1 when none */
    bool notnull;
};

struct wh_part {
    uint64_t id;
    uint64_t rows;
    uint64_t pkey; /* hash of the part's partition value (0 without PARTITION BY) */
};

struct wh_table {
    char *schema, *name;
    int ncols;
    struct wh_coldef *cols;
    size_t nparts;
    struct wh_part *parts;
    uint64_t next_part;
    char *order_by;     /* sort key: comma-separated column names, or NULL */
    char *partition_by; /* partition expression (SQL text over the columns), or NULL */
};

/* A view: the CREATE VIEW statement's text, parsed again whenever it is used. */
struct wh_view {
    char *schema, *name, *sql;
};

/* A table changed by the open transaction, with its state before the first change. */
struct wh_txn_tab {
    struct wh_table *t;
    struct wh_part *parts;
    size_t nparts;
    uint64_t next_part;
};

struct wh_verified {
    uint64_t dev, ino, size, mtime_ns;
};

/* A decoded dictionary of a WHCOL002 column file, kept between statements (wh_store.c):
 * parts are immutable, so the file identity decides whether it is still valid. */
#define WH_DICT_CACHE       16
#define WH_DICT_CACHE_BYTES ((size_t)256 << 20)
struct wh_dict_cache {
    struct wh_verified id;
    char *blob;       /* the entries' bytes, NUL-terminated (malloc) */
    const char **ent; /* n entries into blob (malloc) */
    uint32_t n;
    size_t bytes;
    uint64_t tick; /* last use */
};
/* Frees every cached dictionary (wh_close). */
void wh__dict_cache_clear(struct wh_db *db);

/* Large query allocations (column vectors, hash tables) come from blocks the database
 * keeps between statements (wh_sql.c), so a query does not pay page faults for fresh
 * memory on every vector. At most WH_BIG_CACHE blocks and WH_BIG_CACHE_BYTES are kept. */
#define WH_BIG_MIN         ((size_t)1 << 20)
#define WH_BIG_CACHE       64
#define WH_BIG_CACHE_BYTES ((size_t)768 << 20)
struct wh_bigblk {
    void *p;
    size_t size;
};

struct wh_db {
    char *dir;
    bool in_txn;
    size_t ntx;
    struct wh_txn_tab *tx;
    size_t nviews;
    struct wh_view **views;
    size_t mem_limit;
    int threads;          /* worker threads for one query (>= 1) */
    struct wh_pool *pool; /* started on first use, rebuilt when `threads` changes */
    /* Column files whose checksum this handle verified, by identity and stat (an
     * open-addressing set; a file changed since has another size or mtime). */
    struct wh_verified *verified;
    size_t nverified, capverified;
    struct wh_dict_cache dcache[WH_DICT_CACHE];
    uint64_t dtick;
    struct wh_bigblk big[WH_BIG_CACHE];
    size_t nbig, bigbytes;
    size_t ntables;
    struct wh_table **tables;
    size_t nschemas;
    char **schemas;
    /* Locking between processes (wh_lock.c): DIR/LOCK, locked shared by a statement that
     * reads and exclusively by one that writes (or by BEGIN until COMMIT/ROLLBACK). */
    int lock_fd;             /* -1 until opened */
    int lock_held;           /* 0, WH_LOCK_SH or WH_LOCK_EX */
    bool loaded;             /* the catalog in memory is the one of generation `gen` */
    uint64_t gen;            /* catalog generation (stored in DIR/LOCK) last loaded */
    int64_t lock_timeout_ms; /* how long a statement waits for the lock; 0: forever */
};

struct wh_cte {
    const char *name;
    struct wh_rel *rel;
    struct wh_cte *next;
};

/* The outer side of a subquery while it is bound or run (wh_expr.c). A column of `rel` that
 * the subquery refers to binds as a constant: NULL while `discover` (the references are
 * recorded in refs), else vals[k] for refs[k] (one row each). */
#define WH_MAX_CORR 16
struct wh_corr {
    const struct wh_rel *rel;
    bool grouped; /* the outer query is grouped: references are not supported */
    bool discover;
    int nref;
    int refs[WH_MAX_CORR];
    struct wh_vec *vals[WH_MAX_CORR];
};

/* One statement's context. Errors anywhere below wh_exec leave through wh__fail, which
 * longjmps back to the statement boundary (PostgreSQL's ereport): all query memory lives in
 * the arena, and non-memory resources are registered with arena_on_reset. */
struct wh_q {
    struct wh_db *db;
    struct arena *a;
    struct weir_err *err;
    const char *sql;
    jmp_buf jb;
    struct wh_cte *ctes;
    const char *stmt_text; /* the current statement alone */
    size_t stmt_len;
    int view_depth;
    struct wh_corr *corr[16]; /* enclosing subqueries' outer sides, innermost last */
    int ncorr;
    int agg_depth;    /* binding an aggregate's arguments: corr[0..agg_depth) are off limits */
    int64_t now;      /* now(): the statement's start, microseconds since the epoch */
    void *amu;        /* pthread_mutex_t guarding the arena while tasks run in parallel, or NULL */
    bool worker;      /* a task's copy of the context: no nested parallelism */
    size_t *big_used; /* bytes of large blocks the statement holds (shared with its tasks) */
    bool no_big;      /* allocate everything from the arena (results outlive the statement) */
};

/* Errors (wh_sql.c). `loc` is a byte offset into the SQL or -1. */
__attribute__((noreturn, format(printf, 4, 5))) void wh__fail(struct wh_q *q, int code, int loc,
                                                              const char *fmt, ...);
void *wh__alloc(struct wh_q *q, size_t n);
/* Frees the database's cached large blocks (wh_close). */
void wh__big_cache_clear(struct wh_db *db);
void *wh__calloc(struct wh_q *q, size_t n, size_t sz);
char *wh__strdup(struct wh_q *q, const char *s);
char *wh__strndup(struct wh_q *q, const char *s, size_t n);
/* Hands a JSON tree (reference stolen) to the query arena, which decrefs it at reset. */
void wh__hold_json(struct wh_q *q, json_t *j);

/* The worker pool (wh_pool.c). A pool of `threads` runs tasks on threads - 1 workers plus
 * the caller. wh__pool_run calls fn(arg, i) for every i < ntasks, in any order and on any of
 * those threads, and returns when all are done; fn must not longjmp. Only one thread may
 * use a pool at a time (the database's owner). */
typedef void (*wh_task_fn)(void *arg, size_t i);
int wh__default_threads(void);
struct wh_pool *wh__pool_new(int threads);
void wh__pool_free(struct wh_pool *p);
int wh__pool_size(const struct wh_pool *p);
void wh__pool_run(struct wh_pool *p, size_t ntasks, wh_task_fn fn, void *arg);
/* The database's pool, started (or resized to db->threads) on demand. */
struct wh_pool *wh__db_pool(struct wh_db *db);
/* Row-range parallelism. fn(sub, arg, chunk, from, to) runs for each of `nchunks` equal
 * row ranges of [0, n) on the pool, with `sub` a copy of q whose allocations are serialized
 * and whose errors (wh__fail) are caught; after all chunks ran, the first failing chunk's
 * error is raised in q. Chunks write only their own slots of shared output. wh__par_chunks
 * picks the number of chunks (1 when n is small, inside a task, or with one thread). */
typedef void (*wh_rows_fn)(struct wh_q *sub, void *arg, size_t chunk, size_t from, size_t to);
size_t wh__par_chunks(struct wh_q *q, size_t n, size_t min_rows);
void wh__par_rows(struct wh_q *q, size_t n, size_t nchunks, wh_rows_fn fn, void *arg);

/* Vectors and relations (wh_types.c). */
struct wh_vec *wh__vec_new(struct wh_q *q, uint8_t type, int16_t scale, size_t n);
/* Copies row rv of v into row ro of o (same physical type), NULL flag included. */
void wh__vec_copy_row(struct wh_vec *o, size_t ro, const struct wh_vec *v, size_t rv);
/* Parses PostgreSQL interval text ("1 year 2 mons 3 days 04:05:06", "-90 minutes",
 * "2 weeks"); false when it is not valid. Each part must fit its field. */
bool wh__parse_interval(const char *s, int32_t *months, int32_t *days, int64_t *us);
void wh__fmt_interval(int32_t months, int32_t days, int64_t us, char *buf, size_t len);
bool wh__type_is_int(uint8_t t);     /* physically int64 */
bool wh__type_is_float(uint8_t t);   /* physically double */
bool wh__type_is_numeric(uint8_t t); /* ints, numeric, floats */
struct wh_vec *wh__vec_gather(struct wh_q *q, const struct wh_vec *v, const uint32_t *idx,
                              size_t n); /* idx[i] == UINT32_MAX gives NULL */
struct wh_rel *wh__rel_new(struct wh_q *q, int ncols, size_t n);
struct wh_rel *wh__rel_gather(struct wh_q *q, const struct wh_rel *r, const uint32_t *idx,
                              size_t n);
/* Casts v to type/scale; text parsing errors fail the query at `loc`. */
struct wh_vec *wh__cast(struct wh_q *q, const struct wh_vec *v, uint8_t type, int16_t scale,
                        int loc);
/* Parses text into one value of `type`; returns false when the text is not valid. */
bool wh__parse_val(const char *s, uint8_t type, int16_t scale, int64_t *iv, double *fv);
/* Formats row r of v into buf (PostgreSQL text output). Returns false for NULL. */
bool wh__fmt_val(const struct wh_vec *v, size_t r, char *buf, size_t len);
int wh__type_from_name(const char *name, int ntypmods, const int *typmods, uint8_t *type,
                       int16_t *scale, int32_t *typmod);
int64_t wh__pow10(int n);
int64_t wh__days_from_civil(int64_t y, unsigned m, unsigned d);
void wh__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* Compares two values of the same physical type (a, b rows); NULLs not handled. */
int wh__cmp_rows(const struct wh_vec *a, size_t ra, const struct wh_vec *b, size_t rb);
uint64_t wh__hash_row(const struct wh_vec *v, size_t r, uint64_t h);

/* Storage and catalog (wh_store.c). wh__db_init creates the folder and its marker (a new
 * database only in an empty folder) or checks the marker. wh__catalog_load replaces the
 * in-memory catalog by the one on disk (on failure the catalog is left empty); with
 * `recover` it first finishes an interrupted COMMIT (TXN.json) and afterwards deletes what
 * no manifest names (unpublished parts, temporary files, dot-named leftovers), which is
 * only safe under the exclusive lock. wh__catalog_clear empties the in-memory catalog. */
int wh__db_init(struct wh_db *db, struct weir_err *err);
int wh__catalog_load(struct wh_db *db, bool recover, struct weir_err *err);
void wh__catalog_clear(struct wh_db *db);
struct wh_table *wh__table_find(struct wh_db *db, const char *schema, const char *name);
bool wh__schema_exists(struct wh_db *db, const char *schema);
void wh__schema_create(struct wh_q *q, const char *schema, bool if_not_exists, int loc);
void wh__schema_drop(struct wh_q *q, const char *schema, bool missing_ok, bool cascade, int loc);
/* Creates a table; `order_by` (column names) and `partition_by` (an expression) may be NULL
 * and must have passed wh__layout_check. */
void wh__table_create(struct wh_q *q, const char *schema, const char *name,
                      const struct wh_coldef *cols, int ncols, const char *order_by,
                      const char *partition_by, int loc);
void wh__table_drop(struct wh_q *q, struct wh_table *t);
/* Writes `rel` (columns already of the table's types) as a new part and publishes it. */
void wh__table_append(struct wh_q *q, struct wh_table *t, const struct wh_rel *rel);
/* Replaces all parts of t by `rel` (may be empty) in one publish (DELETE, TRUNCATE). */
void wh__table_replace(struct wh_q *q, struct wh_table *t, const struct wh_rel *rel);
/* Reads the columns of t for which want[c] is true (others are left NULL) into a relation
 * qualified by `qual`. */
struct wh_rel *wh__table_scan(struct wh_q *q, struct wh_table *t, const bool *want,
                              const char *qual);
void wh__table_free(struct wh_table *t);
/* Transactions (BEGIN ... COMMIT): inside one, DML writes its parts but publishing is
 * deferred; COMMIT publishes every changed table at once through TXN.json (a roll-forward
 * record that wh_open completes after a crash); ROLLBACK restores the tables and deletes
 * the parts written since BEGIN. DDL inside a transaction is refused. */
void wh__txn_commit(struct wh_q *q);
void wh__txn_rollback(struct wh_db *db);
/* Reads the wanted columns for only the given rows (numbered as wh__table_scan numbers
 * them: parts in order), returned in the order listed; only their granules are read. */
struct wh_rel *wh__table_fetch(struct wh_q *q, struct wh_table *t, const bool *want,
                               const char *qual, const uint32_t *rows, size_t n);
/* A granule-pruning predicate `column op value` (op: OP_EQ..OP_GE; the value in the
 * column's physical representation: iv for integer-backed types, fv for floats). */
struct wh_prune {
    int col, op;
    int64_t iv;
    double fv;
};
/* Like wh__table_scan, but skips granules whose min/max rule out any predicate: the result
 * holds a superset of the matching rows (the caller still filters). */
struct wh_rel *wh__table_scan_pruned(struct wh_q *q, struct wh_table *t, const bool *want,
                                     const char *qual, const struct wh_prune *pr, int npr);
/* For `ORDER BY column c [DESC] LIMIT k` over the whole table (c integer-backed): reads the
 * wanted columns of only the granules whose min/max can hold one of the first k rows, and
 * stores in *rowids each result row's number as wh__table_scan numbers them. Returns NULL
 * (nothing read) when the granule statistics do not allow it. */
struct wh_rel *wh__table_scan_topn(struct wh_q *q, struct wh_table *t, const bool *want,
                                   const char *qual, int c, bool desc, bool nulls_first, size_t k,
                                   uint32_t **rowids);
/* For `ORDER BY column c [DESC] [NULLS FIRST|LAST] ... LIMIT k` over the whole table (c
 * integer-backed): stores in *rows (ascending, numbered as wh__table_scan numbers them) every
 * row whose value of c is at least as good as the k-th best one, ties and (NULLS FIRST) NULL
 * rows included: a superset of the first k rows whatever further sort keys say. Reads c only,
 * granule by granule from the best min/max down, and stops at the first granule that cannot
 * reach the k best values read so far. Returns false (maybe after reading) when the
 * statistics do not allow it or the table has fewer than k non-NULL values. */
bool wh__table_topn_rows(struct wh_q *q, struct wh_table *t, int c, bool desc, bool nulls_first,
                         size_t k, uint32_t **rows, size_t *n);
/* Merges small parts into one (all parts when `force`): automatic after inserts once more
 * than 8 small parts exist, and VACUUM / OPTIMIZE TABLE. Crash-safe like an insert. */
void wh__table_optimize(struct wh_q *q, struct wh_table *t, bool force);
/* Publishes new column definitions; with `rel` (columns matching `cols`) the table's rows
 * are replaced by it in the same publish. */
void wh__table_alter(struct wh_q *q, struct wh_table *t, const struct wh_coldef *cols, int ncols,
                     const struct wh_rel *rel);
void wh__table_rename(struct wh_q *q, struct wh_table *t, const char *newname, int loc);
struct wh_view *wh__view_find(struct wh_db *db, const char *schema, const char *name);
/* Creates or (with `replace`) replaces a view; `sql` is its whole CREATE VIEW statement. */
void wh__view_create(struct wh_q *q, const char *schema, const char *name, const char *sql,
                     bool replace, int loc);
void wh__view_drop(struct wh_q *q, struct wh_view *v);
void wh__view_free(struct wh_view *v);

/* Locking between processes (wh_lock.c; design note at the top of that file).
 * wh__lock_open opens DIR/LOCK and, when no other process holds the lock, recovers and
 * loads the catalog at once; otherwise loading waits for the first statement. wh__lock takes
 * the lock (exclusive when `write`), waiting at most db->lock_timeout_ms (WEIR_EUNAVAIL
 * "database is locked by another process" after that), recovers what a writer that died
 * left behind, and reloads the catalog if another handle changed it. A writer's generation
 * is bumped before it changes anything. wh__unlock releases it; `ok` false (the statement
 * failed) makes the next writer run recovery and this handle reload. wh__lock_close releases
 * and closes the file. */
#define WH_LOCK_TIMEOUT_MS 30000
#define WH_LOCK_SH         1
#define WH_LOCK_EX         2
int wh__lock_open(struct wh_db *db, struct weir_err *err);
int wh__lock(struct wh_db *db, bool write, struct weir_err *err);
void wh__unlock(struct wh_db *db, bool ok);
void wh__lock_close(struct wh_db *db);

/* Expressions and queries (wh_exec.c). */
struct wh_rel *wh__select(struct wh_q *q, json_t *select_stmt);
int wh__loc(json_t *node);

/* Expressions (wh_expr.c). */
enum wh_ekind {
    E_COL,
    E_CONST,
    E_CAST,
    E_NEG,
    E_ARITH,
    E_CMP,
    E_DISTINCT,
    E_AND,
    E_OR,
    E_NOT,
    E_NULLTEST,
    E_BOOLTEST,
    E_LIKE,
    E_IN,
    E_COALESCE,
    E_MINMAX,
    E_NULLIF,
    E_CASE,
    E_FUNC,
    E_INSUB,    /* x [NOT] IN (uncorrelated subquery): cval holds the sorted values */
    E_INTERVAL, /* an interval constant: only valid as an operand of date/time +/- */
    E_CORR,     /* correlated subquery: args[0..col) the outer key columns, then (IN) the
                 * left operand; op 0 EXISTS, 1 scalar, 2 IN; run once per distinct key */
};
enum wh_op {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_CONCAT,
};
enum wh_fn {
    F_LOWER,
    F_UPPER,
    F_LENGTH,
    F_SUBSTR,
    F_CONCAT,
    F_REPLACE,
    F_BTRIM,
    F_LTRIM,
    F_RTRIM,
    F_SPLIT_PART,
    F_STRPOS,
    F_LEFT,
    F_RIGHT,
    F_ABS,
    F_ROUND,
    F_FLOOR,
    F_CEIL,
    F_DATE_TRUNC,
    F_EXTRACT,
    F_DATE_PART,
    F_NOW,
    F_JSON_GET,
    F_JSON_GET_TEXT,
    F_JSON_PATH,
    F_JSON_PATH_TEXT,
    F_ADD_INTERVAL,
    F_TS_ADD_IV, /* timestamp + interval (args[1]; e->neg subtracts) */
    F_TS_DIFF,   /* timestamp - timestamp: an interval */
    F_IV_ADD,    /* interval +/- interval (e->neg subtracts) */
    F_IV_MUL,    /* interval * or / number (e->neg divides) */
    F_AGE,
    F_TO_CHAR,
    F_JUSTIFY_DAYS,
    F_JUSTIFY_HOURS,
    F_JUSTIFY_INTERVAL,
};

/* A bound expression: types resolved, columns as indexes into the input relation. */
struct wh_expr {
    int kind, op, fn, loc;
    uint8_t type;
    int16_t scale;
    int nargs;
    struct wh_expr **args;
    int col;
    struct wh_vec *cval; /* E_CONST: one row */
    bool neg, ci;
    int64_t months, us;        /* E_INTERVAL, F_ADD_INTERVAL: the interval (days as 86400 s) */
    int64_t days;              /* E_INTERVAL: the day part (us excludes it) */
    json_t *sub;               /* E_CORR: the subquery's SelectStmt body */
    const struct wh_rel *orel; /* E_CORR: the outer relation the keys index */
};

/* Binding context. `rel` gives the columns; in a grouped query `rel` is the grouped
 * relation, `subst[k]` the parse node of its column k (a GROUP BY key or an aggregate call),
 * `subst_col[k]` the base column a plain key stands for (-1 otherwise), and `base` the
 * relation before grouping, used only to resolve names. `agg_where` names the clause when
 * aggregates are not allowed. */
struct wh_bind {
    const struct wh_rel *rel;
    const struct wh_rel *base;
    json_t **subst;
    int *subst_col;
    int nsubst;
    const char *agg_where;
};

struct wh_expr *wh__bind(struct wh_q *q, struct wh_bind *bc, json_t *node);
struct wh_expr *wh__binop(struct wh_q *q, int code, struct wh_expr *a, struct wh_expr *c, int loc);
struct wh_vec *wh__eval(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel);
/* wh__eval over row chunks on the worker pool, concatenated in order: the same result. */
struct wh_vec *wh__eval_par(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel);
/* A WHERE predicate e that reads one dictionary column of rel only, evaluated once per
 * dictionary entry: stores the selected rows (ascending) in *idx and their number in *m.
 * Returns false, doing nothing, when e does not have that form. */
bool wh__filter_dict(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel,
                     uint32_t **idx, size_t *m);
/* Rows [from, to) of r, sharing its column memory. */
struct wh_rel *wh__rel_slice(struct wh_q *q, const struct wh_rel *r, size_t from, size_t to);
void wh__typename(struct wh_q *q, json_t *tn, uint8_t *type, int16_t *scale, int32_t *typmod);
bool wh__is_agg(json_t *funccall_body);
/* Gives args[0..n) (NULL entries skipped) their common type, casting them; untyped literals
 * alone become text. */
void wh__unify(struct wh_q *q, struct wh_expr **args, int n, int loc, uint8_t *type,
               int16_t *scale);
bool wh__json_eq(json_t *a, json_t *b);
const char *wh__node_type(json_t *node);
json_t *wh__node_body(json_t *node);
const char *wh__sval(json_t *str_node);

/* Statements (wh_sql.c). Converts `v` to column `cd`'s type and checks its constraints
 * (NOT NULL, numeric precision, varchar length). */
struct wh_vec *wh__conform(struct wh_q *q, const struct wh_vec *v, const struct wh_coldef *cd,
                           int loc);
/* Resolves a RangeVar body to a table; fails with NOTFOUND unless `missing_ok`. */
struct wh_table *wh__rangevar_table(struct wh_q *q, json_t *rv, bool missing_ok);

/* Table layout (wh_sql.c). wh__layout_check fails the query unless t's order_by names its
 * columns and its partition_by is one expression over them (no aggregates, windows or
 * subqueries). wh__layout_sort returns rel (the table's columns) ordered by t's sort key;
 * wh__layout_hash fills h[r] with a hash of row r's partition value. */
void wh__layout_check(struct wh_q *q, const struct wh_table *t, int loc);
struct wh_rel *wh__layout_sort(struct wh_q *q, const struct wh_table *t, const struct wh_rel *rel);
void wh__layout_hash(struct wh_q *q, const struct wh_table *t, const struct wh_rel *rel,
                     uint64_t *h);
/* Sorts rows by keys (stable); returns the permutation. */
uint32_t *wh__sort_perm(struct wh_q *q, struct wh_vec **keys, int nk, const bool *desc,
                        const bool *nfirst, size_t n);

/* COPY (wh_copy.c). */
uint64_t wh__copy(struct wh_q *q, json_t *stmt);

#endif
