/* store/store.c - every store.h operation, written once over the driver vtable in
 * store_int.h with SQL that both SQLite (3.40) and PostgreSQL (15) accept: upserts via
 * ON CONFLICT, RETURNING, explicit NULLS FIRST/LAST, LIMIT/OFFSET as parameters.
 *
 * Transactions: each mutating operation calls tx_enter/tx_leave, which open and commit a
 * transaction of its own unless the caller opened one with store_begin, in which case the
 * operation joins it. Lost compare-and-set races are detected from the number of changed
 * rows (never from a database error), so a conflict does not abort an enclosing
 * PostgreSQL transaction; the same holds for duplicate runs (ON CONFLICT DO NOTHING).
 *
 * Rows read back are external input: states, tags, conf and XCom values are checked
 * when they are converted, and a bad row is a WEIR_EINTERNAL soft failure. */
#define LOG_MODULE "store"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store_int.h"

#define ID_MAX       250                /* Airflow's limit for dag_id, run_id, task_id */
#define LOG_LINE_MAX ((size_t)64 << 10) /* longer log lines are cut (store.h) */
#define XCOM_MAX     ((size_t)4 << 20)  /* serialized XCom value */
#define BATCH_ROWS   64                 /* rows per multi-row INSERT */

/* ---- small helpers ---------------------------------------------------------------- */

static struct store__param p_text(const char *s)
{
    return (struct store__param){ s ? SP_TEXT : SP_NULL, s, 0 };
}

static struct store__param p_int(int64_t i)
{
    return (struct store__param){ SP_INT, NULL, i };
}

static struct store__param p_ts(int64_t t)
{
    return t == TS_NONE ? (struct store__param){ SP_NULL, NULL, 0 } : p_int(t);
}

static int q(struct store *st, const char *sql, const struct store__param *p, int np,
             struct store__cur **cur, int64_t *changes, struct weir_err *err)
{
    return st->drv->query(st, sql, p, np, cur, changes, err);
}

static int next_row(struct store *st, struct store__cur *c, struct weir_err *err)
{
    return st->drv->next(c, err);
}

static void cur_free(struct store *st, struct store__cur *c)
{
    st->drv->cur_free(c);
}

static char *col_dup(struct store *st, struct store__cur *c, int i)
{
    const char *s = st->drv->col_text(c, i);
    return s ? xstrdup(s) : NULL;
}

static const char *col_str(struct store *st, struct store__cur *c, int i)
{
    return st->drv->col_text(c, i);
}

static int64_t col_int(struct store *st, struct store__cur *c, int i)
{
    return st->drv->col_int(c, i);
}

static int64_t col_ts(struct store *st, struct store__cur *c, int i)
{
    return st->drv->col_null(c, i) ? TS_NONE : st->drv->col_int(c, i);
}

/* Runs a query expected to return one integer (COUNT and the like). */
static int q_int(struct store *st, const char *sql, const struct store__param *p, int np,
                 int64_t *out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    int rc = q(st, sql, p, np, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        *out = col_int(st, c, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(err, WEIR_EINTERNAL, "query returned no row");
    }
    cur_free(st, c);
    return rc;
}

static int check_id(const char *what, const char *s, struct weir_err *err)
{
    if (!s || !*s)
        return err_set(err, WEIR_EINVAL, "%s is empty", what);
    if (strlen(s) > ID_MAX)
        return err_set(err, WEIR_EINVAL, "%s '%.40s...' is longer than %d bytes", what, s, ID_MAX);
    return 0;
}

static int64_t clamp_size(size_t n)
{
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* Query builder for the few statements whose shape depends on the arguments. Only fixed
 * SQL fragments are appended; values always become $N parameters. */
struct qb {
    struct buf sql;
    struct store__param *p;
    int n, cap;
};

static void qb_init(struct qb *b, const char *sql)
{
    buf_init(&b->sql, 1 << 20);
    buf_adds(&b->sql, sql);
    b->p = NULL;
    b->n = b->cap = 0;
}

static void qb_release(struct qb *b)
{
    buf_release(&b->sql);
    free(b->p);
}

static void qb_sql(struct qb *b, const char *s)
{
    buf_adds(&b->sql, s);
}

/* Appends "$N" and records the parameter. */
static void qb_param(struct qb *b, struct store__param p)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->p = xrealloc(b->p, (size_t)b->cap * sizeof(*b->p));
    }
    b->p[b->n++] = p;
    buf_addf(&b->sql, "$%d", b->n);
}

static void qb_limit(struct qb *b, size_t limit, size_t offset)
{
    qb_sql(b, " LIMIT ");
    qb_param(b, p_int(limit ? clamp_size(limit) : INT64_MAX));
    qb_sql(b, " OFFSET ");
    qb_param(b, p_int(clamp_size(offset)));
}

/* ---- transactions --------------------------------------------------------------- */

static int tx_enter(struct store *st, bool *own, struct weir_err *err)
{
    *own = false;
    if (st->depth > 0 && !st->in_tx)
        return err_set(err, WEIR_ECONFLICT, "the enclosing transaction was rolled back");
    if (st->in_tx)
        return 0;
    int rc = st->drv->begin(st, err);
    if (rc < 0)
        return rc;
    st->in_tx = true;
    *own = true;
    return 0;
}

/* Ends what tx_enter began: commits on success, rolls back on failure. Returns rc or the
 * commit's error. */
static int tx_leave(struct store *st, bool own, int rc, struct weir_err *err)
{
    if (!own)
        return rc;
    if (rc < 0) {
        st->drv->rollback(st);
        st->in_tx = false;
        return rc;
    }
    int crc = st->drv->commit(st, err);
    st->in_tx = false;
    return crc < 0 ? crc : rc;
}

int store_begin(struct store *st, struct weir_err *err)
{
    if (st->depth > 0) {
        if (!st->in_tx)
            return err_set(err, WEIR_ECONFLICT, "the enclosing transaction was rolled back");
        st->depth++;
        return 0;
    }
    int rc = st->drv->begin(st, err);
    if (rc < 0)
        return rc;
    st->in_tx = true;
    st->depth = 1;
    return 0;
}

int store_commit(struct store *st, struct weir_err *err)
{
    if (st->depth == 0)
        return err_set(err, WEIR_EINVAL, "commit without an open transaction");
    if (!st->in_tx) {
        /* an inner level rolled back: the whole transaction is gone */
        st->depth--;
        return err_set(err, WEIR_ECONFLICT, "the transaction was rolled back");
    }
    if (--st->depth > 0)
        return 0;
    int rc = st->drv->commit(st, err);
    st->in_tx = false;
    return rc;
}

void store_rollback(struct store *st)
{
    if (!st)
        return;
    if (st->in_tx)
        st->drv->rollback(st);
    st->in_tx = false;
    if (st->depth > 0)
        st->depth--;
}

/* ---- lifecycle ------------------------------------------------------------------- */

char *store__url_redact(const char *url)
{
    char *s = xstrdup(url ? url : "");
    char *auth = strstr(s, "://");
    if (!auth)
        return s;
    auth += 3;
    char *query = strchr(auth, '?');
    size_t alen = query ? (size_t)(query - auth) : strlen(auth);
    char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    struct buf b;
    buf_init(&b, 0);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        buf_add(&b, s, (size_t)(colon + 1 - s));
        buf_adds(&b, "***");
        buf_add(&b, at, (size_t)(auth + alen - at));
    } else {
        buf_add(&b, s, (size_t)(auth + alen - s));
    }
    if (query) {
        /* ?a=1&password=x&b=2: keep every key, hide the password's value */
        const char *p = query;
        while (*p) {
            size_t seg = strcspn(p + 1, "&") + 1;
            if (strncmp(p + 1, "password=", 9) == 0) {
                buf_add(&b, p, 10);
                buf_adds(&b, "***");
            } else {
                buf_add(&b, p, seg);
            }
            p += seg;
        }
    }
    free(s);
    char *out = buf_detach(&b);
    buf_release(&b); /* buf_detach leaves a fresh empty buffer behind */
    return out;
}

struct store *store_open(const char *url, struct weir_err *err)
{
    const struct store__drv *drv = NULL;
    if (!url || !*url) {
        err_set(err, WEIR_EINVAL, "store url is empty");
        return NULL;
    }
    if (strncmp(url, "sqlite://", 9) == 0)
        drv = &store__sqlite_drv;
    else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        drv = &store__pg_drv;
    struct store *st = xcalloc(1, sizeof(*st));
    st->url_safe = store__url_redact(url);
    if (!drv) {
        err_set(err, WEIR_EINVAL,
                "store url '%s': unknown scheme (want sqlite:// or postgresql://)", st->url_safe);
        store_free(st);
        return NULL;
    }
    st->drv = drv;
    if (drv->open(st, url, err) < 0) {
        store_free(st);
        return NULL;
    }
    return st;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    if (st->db) {
        if (st->in_tx)
            st->drv->rollback(st);
        st->drv->close(st);
    }
    free(st->url_safe);
    free(st);
}

const char *store_backend(const struct store *st)
{
    return st->drv->name;
}

int store_schema_latest(void)
{
    return store__migration_count();
}

static int read_version(struct store *st, int *version, struct weir_err *err)
{
    int64_t v = 0;
    int rc = q_int(st, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, &v, err);
    if (rc < 0)
        return rc;
    *version = (int)v;
    return 0;
}

int store_schema_version(struct store *st, int *version, struct weir_err *err)
{
    bool exists = false;
    int rc = st->drv->has_table(st, "schema_migrations", &exists, err);
    if (rc < 0)
        return rc;
    if (!exists) {
        *version = 0;
        return 0;
    }
    return read_version(st, version, err);
}

/* One step of store_migrate: under the migration lock, applies the next pending version.
 * Returns the version it applied, or 0 if none was pending. */
static int migrate_step(struct store *st, struct weir_err *err)
{
    int rc = st->drv->migrate_lock(st, err);
    if (rc < 0)
        return rc;
    rc = st->drv->script(st,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                         err);
    if (rc < 0)
        return rc;
    int cur = 0;
    if ((rc = read_version(st, &cur, err)) < 0)
        return rc;
    if (cur >= store__migration_count()) {
        if (cur > store__migration_count())
            LOG_WARN("database schema is newer than this build version=%d latest=%d", cur,
                     store__migration_count());
        return 0;
    }
    int v = cur + 1;
    rc = st->drv->script(st, store__migration_sql(st->drv->name, v), err);
    if (rc < 0)
        return err_prefix(err, "migration %d", v);
    struct store__param p[] = { p_int(v), p_int(ts_now_us()) };
    rc = q(st, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", p, 2, NULL,
           NULL, err);
    if (rc < 0)
        return rc;
    return v;
}

int store_migrate(struct store *st, int *applied, struct weir_err *err)
{
    int n = 0;
    if (applied)
        *applied = 0;
    if (st->in_tx)
        return err_set(err, WEIR_EINVAL, "cannot migrate inside a transaction");
    for (;;) {
        bool own;
        int rc = tx_enter(st, &own, err);
        if (rc < 0)
            return rc;
        rc = tx_leave(st, own, migrate_step(st, err), err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        n++;
        LOG_INFO("applied schema migration version=%d backend=%s", rc, st->drv->name);
    }
    if (applied)
        *applied = n;
    return 0;
}

/* Batched multi-row INSERTs. Rows go in chunks of 64, 32, 16, ... 1, so a batch of any
 * size takes few statements while only seven distinct SQL texts exist (the SQLite driver
 * caches their prepared statements). `build` writes the SQL for a chunk of `rows` rows
 * whose own parameters start at $(nfixed + 1), `nper` per row; `fill` writes row `i`'s
 * parameters. Parameters shared by every row ($1..$nfixed) are bound once. */
typedef void batch_sql_fn(struct buf *b, int nfixed, int nper, size_t rows);
typedef void batch_fill_fn(void *ctx, size_t i, struct store__param *out);

static size_t batch_chunk(size_t left)
{
    size_t rows = BATCH_ROWS;
    while (rows > left)
        rows /= 2;
    return rows;
}

static int batch_insert(struct store *st, batch_sql_fn *build, const struct store__param *fixed,
                        int nfixed, int nper, size_t nrows, batch_fill_fn *fill, void *ctx,
                        struct weir_err *err)
{
    struct buf sql;
    buf_init(&sql, 1 << 20);
    size_t np_max = (size_t)nfixed + (size_t)nper * BATCH_ROWS;
    struct store__param *p = xcalloc(np_max, sizeof(*p));
    memcpy(p, fixed, (size_t)nfixed * sizeof(*p));
    int rc = 0;
    for (size_t i = 0; i < nrows && rc >= 0;) {
        size_t rows = batch_chunk(nrows - i);
        for (size_t r = 0; r < rows; r++)
            fill(ctx, i + r, p + nfixed + r * (size_t)nper);
        buf_reset(&sql);
        build(&sql, nfixed, nper, rows);
        rc = q(st, sql.s, p, nfixed + (int)rows * nper, NULL, NULL, err);
        i += rows;
    }
    free(p);
    buf_release(&sql);
    return rc;
}

/* FNV-1a: a cheap, stable 64-bit hash (statement cache keys, DAG doc versions). */
uint64_t store__fnv1a(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* ---- DAGs ------------------------------------------------------------------------- */

#define DAG_COLS                                                                              \
    "dag_id, fileloc, description, schedule, timezone, tags, is_paused, is_active, version, " \
    "last_parsed, next_dagrun, next_dagrun_create_after"

void store_dag_release(struct store_dag *d)
{
    if (!d)
        return;
    free(d->dag_id);
    free(d->fileloc);
    free(d->description);
    free(d->schedule);
    free(d->timezone);
    json_decref(d->tags);
    memset(d, 0, sizeof(*d));
}

void store_dag_list_release(struct store_dag_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        store_dag_release(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int read_dag(struct store *st, struct store__cur *c, struct store_dag *d,
                    struct weir_err *err)
{
    memset(d, 0, sizeof(*d));
    const char *tags = col_str(st, c, 5);
    d->tags = tags ? json_loads(tags, 0, NULL) : json_array();
    if (!json_is_array(d->tags)) {
        json_decref(d->tags);
        d->tags = NULL;
        LOG_ERROR("stored tags are not a JSON array dag=%s", col_str(st, c, 0));
        return err_set(err, WEIR_EINTERNAL, "dag '%s': stored tags are not a JSON array",
                       col_str(st, c, 0));
    }
    d->dag_id = col_dup(st, c, 0);
    d->fileloc = col_dup(st, c, 1);
    d->description = col_dup(st, c, 2);
    d->schedule = col_dup(st, c, 3);
    d->timezone = col_dup(st, c, 4);
    d->is_paused = col_int(st, c, 6) != 0;
    d->is_active = col_int(st, c, 7) != 0;
    d->version = col_int(st, c, 8);
    d->last_parsed = col_ts(st, c, 9);
    d->next_dagrun = col_ts(st, c, 10);
    d->next_dagrun_create_after = col_ts(st, c, 11);
    if (!d->description)
        d->description = xstrdup("");
    if (!d->fileloc)
        d->fileloc = xstrdup("");
    if (!d->timezone)
        d->timezone = xstrdup("UTC");
    return 0;
}

static int dag_sync_tx(struct store *st, const char *dag_id, const char *fileloc,
                       const char *doc_json, const char *description, const char *schedule,
                       const char *timezone, const char *tags, bool paused_on_create,
                       int64_t *version, struct weir_err *err)
{
    int64_t now = ts_now_us();
    struct store__param up[] = { p_text(dag_id),
                                 p_text(fileloc ? fileloc : ""),
                                 p_text(description ? description : ""),
                                 p_text(schedule),
                                 p_text(timezone ? timezone : "UTC"),
                                 p_text(tags),
                                 p_int(paused_on_create ? 1 : 0),
                                 p_int(now) };
    int rc = q(st,
               "INSERT INTO dag (dag_id, fileloc, description, schedule, timezone, tags, "
               "is_paused, is_active, last_parsed) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) "
               "ON CONFLICT (dag_id) DO UPDATE SET fileloc = excluded.fileloc, "
               "description = excluded.description, schedule = excluded.schedule, "
               "timezone = excluded.timezone, tags = excluded.tags, is_active = 1, "
               "last_parsed = excluded.last_parsed",
               up, 8, NULL, NULL, err);
    if (rc < 0)
        return rc;

    char hash[17];
    (void)snprintf(hash, sizeof(hash), "%016" PRIx64, store__fnv1a(doc_json));
    struct store__cur *c = NULL;
    struct store__param id[] = { p_text(dag_id) };
    rc = q(st,
           "SELECT version, hash, doc FROM dag_version WHERE dag_id = $1 "
           "ORDER BY version DESC LIMIT 1",
           id, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    int64_t latest = 0;
    bool same = false;
    rc = next_row(st, c, err);
    if (rc == 1) {
        latest = col_int(st, c, 0);
        const char *h = col_str(st, c, 1);
        const char *doc = col_str(st, c, 2);
        same = h && doc && strcmp(h, hash) == 0 && strcmp(doc, doc_json) == 0;
    }
    cur_free(st, c);
    if (rc < 0)
        return rc;
    if (same) {
        *version = latest;
        return 0;
    }
    struct store__param ins[] = { p_text(dag_id), p_int(latest + 1), p_text(doc_json), p_text(hash),
                                  p_int(now) };
    rc = q(st,
           "INSERT INTO dag_version (dag_id, version, doc, hash, created_at) "
           "VALUES ($1, $2, $3, $4, $5)",
           ins, 5, NULL, NULL, err);
    if (rc < 0)
        return rc;
    struct store__param upd[] = { p_text(dag_id), p_int(latest + 1) };
    rc = q(st, "UPDATE dag SET version = $2 WHERE dag_id = $1", upd, 2, NULL, NULL, err);
    if (rc < 0)
        return rc;
    *version = latest + 1;
    return 0;
}

int store_dag_sync(struct store *st, const char *dag_id, const char *fileloc, const char *doc_json,
                   const char *description, const char *schedule, const char *timezone,
                   json_t *tags, bool paused_on_create, int64_t *version, struct weir_err *err)
{
    int rc = check_id("dag id", dag_id, err);
    if (rc < 0)
        return rc;
    if (!doc_json || !*doc_json)
        return err_set(err, WEIR_EINVAL, "dag '%s': empty document", dag_id);
    if (tags && !json_is_array(tags))
        return err_set(err, WEIR_EINVAL, "dag '%s': tags must be an array", dag_id);
    char *tags_txt = tags ? json_dumps(tags, JSON_COMPACT) : xstrdup("[]");
    if (!tags_txt)
        return err_set(err, WEIR_EINVAL, "dag '%s': tags cannot be serialized", dag_id);
    int64_t v = 0;
    bool own;
    rc = tx_enter(st, &own, err);
    if (rc >= 0)
        rc = tx_leave(st, own,
                      dag_sync_tx(st, dag_id, fileloc, doc_json, description, schedule, timezone,
                                  tags_txt, paused_on_create, &v, err),
                      err);
    free(tags_txt);
    if (rc < 0)
        return err_prefix(err, "sync dag '%s'", dag_id);
    if (version)
        *version = v;
    return 0;
}

int store_dag_get(struct store *st, const char *dag_id, struct store_dag *out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id) };
    int rc = q(st, "SELECT " DAG_COLS " FROM dag WHERE dag_id = $1", p, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1)
        rc = read_dag(st, c, out, err);
    else if (rc == 0)
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' not found", dag_id ? dag_id : "");
    cur_free(st, c);
    return rc;
}

int store_dag_list(struct store *st, bool only_active, size_t limit, size_t offset,
                   struct store_dag_list *out, struct weir_err *err)
{
    const char *where = only_active ? " WHERE is_active = 1" : "";
    char sql[128];
    (void)snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM dag%s", where);
    int64_t total = 0;
    int rc = q_int(st, sql, NULL, 0, &total, err);
    if (rc < 0)
        return rc;
    struct qb b;
    qb_init(&b, "SELECT " DAG_COLS " FROM dag");
    qb_sql(&b, where);
    qb_sql(&b, " ORDER BY dag_id");
    qb_limit(&b, limit, offset);
    struct store__cur *c = NULL;
    struct store_dag_list l = { 0 };
    rc = q(st, b.sql.s, b.p, b.n, &c, NULL, err);
    size_t cap = 0;
    while (rc >= 0 && (rc = next_row(st, c, err)) == 1) {
        if (l.n == cap) {
            cap = cap ? cap * 2 : 16;
            l.items = xrealloc(l.items, cap * sizeof(*l.items));
        }
        rc = read_dag(st, c, &l.items[l.n], err);
        if (rc >= 0)
            l.n++;
    }
    cur_free(st, c);
    qb_release(&b);
    if (rc < 0) {
        store_dag_list_release(&l);
        return rc;
    }
    l.total = (size_t)total;
    *out = l;
    return 0;
}

/* Runs one UPDATE/DELETE in its own (or the caller's) transaction; *changes gets the
 * number of rows it touched. */
static int exec_write(struct store *st, const char *sql, const struct store__param *p, int np,
                      int64_t *changes, struct weir_err *err)
{
    bool own;
    int rc = tx_enter(st, &own, err);
    if (rc < 0)
        return rc;
    return tx_leave(st, own, q(st, sql, p, np, NULL, changes, err), err);
}

int store_dag_set_paused(struct store *st, const char *dag_id, bool paused, struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_int(paused ? 1 : 0) };
    int64_t n = 0;
    int rc = exec_write(st, "UPDATE dag SET is_paused = $2 WHERE dag_id = $1", p, 2, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' not found", dag_id ? dag_id : "");
    return 0;
}

static int deactivate_tx(struct store *st, const char *prefix, json_t *keep, struct weir_err *err)
{
    struct store__cur *c = NULL;
    int rc = q(st, "SELECT dag_id, fileloc FROM dag WHERE is_active = 1 ORDER BY dag_id", NULL, 0,
               &c, NULL, err);
    if (rc < 0)
        return rc;
    json_t *gone = json_array();
    size_t plen = strlen(prefix);
    while ((rc = next_row(st, c, err)) == 1) {
        const char *id = col_str(st, c, 0);
        const char *loc = col_str(st, c, 1);
        if (!id || !loc || strncmp(loc, prefix, plen) != 0 || json_object_get(keep, id))
            continue;
        json_array_append_new(gone, json_string(id));
    }
    cur_free(st, c);
    size_t i;
    json_t *v;
    int n = 0;
    json_array_foreach(gone, i, v) {
        if (rc < 0)
            break;
        struct store__param p[] = { p_text(json_string_value(v)) };
        rc = q(st, "UPDATE dag SET is_active = 0 WHERE dag_id = $1", p, 1, NULL, NULL, err);
        if (rc >= 0)
            LOG_INFO("dag file gone, marked inactive dag=%s", json_string_value(v));
        n++;
    }
    json_decref(gone);
    return rc < 0 ? rc : n;
}

int store_dag_deactivate_missing(struct store *st, const char *folder_prefix, json_t *keep,
                                 struct weir_err *err)
{
    if (keep && !json_is_array(keep))
        return err_set(err, WEIR_EINVAL, "dags to keep must be an array");
    json_t *set = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(keep, i, v) {
        if (json_is_string(v))
            json_object_set_new(set, json_string_value(v), json_true());
    }
    bool own;
    int rc = tx_enter(st, &own, err);
    if (rc >= 0)
        rc =
            tx_leave(st, own, deactivate_tx(st, folder_prefix ? folder_prefix : "", set, err), err);
    json_decref(set);
    return rc;
}

int store_dag_set_next(struct store *st, const char *dag_id, int64_t next_dagrun,
                       int64_t create_after, struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_ts(next_dagrun), p_ts(create_after) };
    int64_t n = 0;
    int rc = exec_write(st,
                        "UPDATE dag SET next_dagrun = $2, next_dagrun_create_after = $3 "
                        "WHERE dag_id = $1",
                        p, 3, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' not found", dag_id ? dag_id : "");
    return 0;
}

/* Deletes the one row `sql` (a DELETE with $1 = `key`) names; -WEIR_ENOTFOUND, naming
 * `what` and the key, when there was none. */
static int delete_one(struct store *st, const char *sql, const char *key, const char *what,
                      struct weir_err *err)
{
    struct store__param p[] = { p_text(key) };
    int64_t n = 0;
    int rc = exec_write(st, sql, p, 1, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "%s '%s' not found", what, key ? key : "");
    return 0;
}

int store_dag_delete(struct store *st, const char *dag_id, struct weir_err *err)
{
    /* dag_version, dag_run and (through them) task instances, logs and XComs cascade */
    return delete_one(st, "DELETE FROM dag WHERE dag_id = $1", dag_id, "dag", err);
}

int store_dag_version_get(struct store *st, const char *dag_id, int64_t version, char **out,
                          struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id), p_int(version) };
    int rc = q(st, "SELECT doc FROM dag_version WHERE dag_id = $1 AND version = $2", p, 2, &c, NULL,
               err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        *out = col_dup(st, c, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' version %" PRId64 " not found",
                     dag_id ? dag_id : "", version);
    }
    cur_free(st, c);
    return rc;
}

/* ---- import errors ---------------------------------------------------------------- */

int store_import_error_set(struct store *st, const char *fileloc, const char *msg,
                           struct weir_err *err)
{
    if (!fileloc || !*fileloc)
        return err_set(err, WEIR_EINVAL, "import error without a file name");
    struct store__param p[] = { p_text(fileloc), p_text(msg ? msg : ""), p_int(ts_now_us()) };
    return exec_write(st,
                      "INSERT INTO import_error (fileloc, msg, ts) VALUES ($1, $2, $3) "
                      "ON CONFLICT (fileloc) DO UPDATE SET msg = excluded.msg, ts = excluded.ts",
                      p, 3, NULL, err);
}

int store_import_error_clear(struct store *st, const char *fileloc, struct weir_err *err)
{
    struct store__param p[] = { p_text(fileloc) };
    return exec_write(st, "DELETE FROM import_error WHERE fileloc = $1", p, 1, NULL, err);
}

static json_t *j_str(const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v ? v : json_null();
}

static json_t *j_ts(int64_t t)
{
    if (t == TS_NONE)
        return json_null();
    char b[64];
    return json_string(ts_format(t, TS_FMT_OFFSET, b, sizeof(b)));
}

/* Builds the JSON object of the current row of `c` (new reference), or returns NULL with
 * `err` filled to stop the listing. */
typedef json_t *(*row_json_fn)(struct store *st, struct store__cur *c, void *ud,
                               struct weir_err *err);

/* Runs `sql` and collects one object per row into a new array in *out. */
static int list_json(struct store *st, const char *sql, const struct store__param *p, int np,
                     row_json_fn row, void *ud, json_t **out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    int rc = q(st, sql, p, np, &c, NULL, err);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    while ((rc = next_row(st, c, err)) == 1) {
        json_t *o = row(st, c, ud, err);
        if (!o) {
            rc = -(err && err->code ? err->code : WEIR_EINTERNAL);
            break;
        }
        json_array_append_new(arr, o);
    }
    cur_free(st, c);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static json_t *import_error_row(struct store *st, struct store__cur *c, void *ud,
                                struct weir_err *err)
{
    (void)ud;
    (void)err;
    json_t *o = json_object();
    json_object_set_new(o, "import_error_id", json_integer(col_int(st, c, 0)));
    json_object_set_new(o, "filename", j_str(col_str(st, c, 1)));
    json_object_set_new(o, "stack_trace", j_str(col_str(st, c, 2)));
    json_object_set_new(o, "timestamp", j_ts(col_ts(st, c, 3)));
    return o;
}

int store_import_error_list(struct store *st, json_t **out, struct weir_err *err)
{
    return list_json(st, "SELECT id, fileloc, msg, ts FROM import_error ORDER BY id", NULL, 0,
                     import_error_row, NULL, out, err);
}

/* ---- runs ------------------------------------------------------------------------- */

#define RUN_COLS                                                                                  \
    "r.id, r.dag_id, r.run_id, r.version, r.state, r.run_type, r.logical_date, "                  \
    "r.data_interval_start, r.data_interval_end, r.queued_at, r.start_date, r.end_date, r.conf, " \
    "r.note"

void store_run_release(struct store_run *r)
{
    if (!r)
        return;
    free(r->dag_id);
    free(r->run_id);
    json_decref(r->conf);
    free(r->note);
    memset(r, 0, sizeof(*r));
}

void store_run_list_release(struct store_run_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        store_run_release(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int read_run(struct store *st, struct store__cur *c, struct store_run *r,
                    struct weir_err *err)
{
    memset(r, 0, sizeof(*r));
    const char *dag_id = col_str(st, c, 1);
    const char *run_id = col_str(st, c, 2);
    const char *conf = col_str(st, c, 12);
    json_t *cj = conf ? json_loads(conf, 0, NULL) : json_object();
    if (store_run_state_parse(col_str(st, c, 4), &r->state) < 0 ||
        store_run_type_parse(col_str(st, c, 5), &r->run_type) < 0 || !json_is_object(cj)) {
        json_decref(cj);
        LOG_ERROR("stored run is corrupt dag=%s run=%s", dag_id, run_id);
        return err_set(err, WEIR_EINTERNAL, "dag '%s' run '%s': stored row is corrupt", dag_id,
                       run_id);
    }
    r->id = col_int(st, c, 0);
    r->dag_id = xstrdup(dag_id ? dag_id : "");
    r->run_id = xstrdup(run_id ? run_id : "");
    r->version = col_int(st, c, 3);
    r->logical_date = col_ts(st, c, 6);
    r->data_interval_start = col_ts(st, c, 7);
    r->data_interval_end = col_ts(st, c, 8);
    r->queued_at = col_ts(st, c, 9);
    r->start_date = col_ts(st, c, 10);
    r->end_date = col_ts(st, c, 11);
    r->conf = cj;
    r->note = col_dup(st, c, 13);
    return 0;
}

/* INSERT INTO task_instance ... VALUES ($1, $2, $3), ($1, $2, $4), ... */
static void ti_insert_sql(struct buf *b, int nfixed, int nper, size_t rows)
{
    (void)nper;
    buf_adds(b, "INSERT INTO task_instance (dag_id, run_id, task_id) VALUES ");
    for (size_t r = 0; r < rows; r++)
        buf_addf(b, "%s($1, $2, $%d)", r ? ", " : "", nfixed + 1 + (int)r);
}

struct ti_fill {
    json_t *ids;
};

static void fill_ti(void *ctx, size_t i, struct store__param *out)
{
    struct ti_fill *f = ctx;
    out[0] = p_text(json_string_value(json_array_get(f->ids, i)));
}

static int run_create_tx(struct store *st, struct store_run *r, const char *conf, json_t *task_ids,
                         struct weir_err *err)
{
    struct store__param p[] = { p_text(r->dag_id),
                                p_text(r->run_id),
                                p_int(r->version),
                                p_text(store_run_state_name(r->state)),
                                p_text(store_run_type_name(r->run_type)),
                                p_ts(r->logical_date),
                                p_ts(r->data_interval_start),
                                p_ts(r->data_interval_end),
                                p_ts(r->queued_at),
                                p_ts(r->start_date),
                                p_ts(r->end_date),
                                p_text(conf),
                                p_text(r->note) };
    struct store__cur *c = NULL;
    int rc = q(st,
               "INSERT INTO dag_run (dag_id, run_id, version, state, run_type, logical_date, "
               "data_interval_start, data_interval_end, queued_at, start_date, end_date, conf, "
               "note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
               "ON CONFLICT (dag_id, run_id) DO NOTHING RETURNING id",
               p, 13, &c, NULL, err);
    if (rc == -WEIR_ENOTFOUND)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' not found", r->dag_id);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    int64_t id = rc == 1 ? col_int(st, c, 0) : 0;
    cur_free(st, c);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return err_set(err, WEIR_ECONFLICT, "dag '%s' run '%s' already exists", r->dag_id,
                       r->run_id);
    size_t n = json_array_size(task_ids);
    if (n > 0) {
        struct ti_fill f = { task_ids };
        rc = batch_insert(st, ti_insert_sql, p, 2, 1, n, fill_ti, &f, err);
        if (rc == -WEIR_ECONFLICT)
            return err_set(err, WEIR_EINVAL, "dag '%s' run '%s': duplicate task id", r->dag_id,
                           r->run_id);
        if (rc < 0)
            return rc;
    }
    r->id = id;
    return 0;
}

int store_run_create(struct store *st, struct store_run *r, json_t *task_ids, struct weir_err *err)
{
    int rc;
    if ((rc = check_id("dag id", r->dag_id, err)) < 0 ||
        (rc = check_id("run id", r->run_id, err)) < 0)
        return rc;
    if ((unsigned)r->state > RUN_FAILED || (unsigned)r->run_type > RUN_TYPE_BACKFILL)
        return err_set(err, WEIR_EINVAL, "dag '%s' run '%s': bad state or run type", r->dag_id,
                       r->run_id);
    if (r->conf && !json_is_object(r->conf))
        return err_set(err, WEIR_EINVAL, "dag '%s' run '%s': conf must be an object", r->dag_id,
                       r->run_id);
    if (task_ids && !json_is_array(task_ids))
        return err_set(err, WEIR_EINVAL, "dag '%s' run '%s': task ids must be an array", r->dag_id,
                       r->run_id);
    size_t i;
    json_t *v;
    json_array_foreach(task_ids, i, v) {
        if (check_id("task id", json_string_value(v), err) < 0)
            return err_prefix(err, "dag '%s' run '%s'", r->dag_id, r->run_id);
    }
    char *conf = r->conf ? json_dumps(r->conf, JSON_COMPACT) : xstrdup("{}");
    if (!conf)
        return err_set(err, WEIR_EINVAL, "dag '%s' run '%s': conf cannot be serialized", r->dag_id,
                       r->run_id);
    bool own;
    rc = tx_enter(st, &own, err);
    if (rc >= 0)
        rc = tx_leave(st, own, run_create_tx(st, r, conf, task_ids, err), err);
    free(conf);
    return rc;
}

int store_run_get(struct store *st, const char *dag_id, const char *run_id, struct store_run *out,
                  struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id), p_text(run_id) };
    int rc = q(st, "SELECT " RUN_COLS " FROM dag_run r WHERE r.dag_id = $1 AND r.run_id = $2", p, 2,
               &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1)
        rc = read_run(st, c, out, err);
    else if (rc == 0)
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' not found", dag_id ? dag_id : "",
                     run_id ? run_id : "");
    cur_free(st, c);
    return rc;
}

void store_run_filter_init(struct store_run_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->logical_date_gte = TS_NONE;
    f->logical_date_lte = TS_NONE;
}

/* Appends " AND state IN (...)" for the states in `mask` (bits 0..n-1). */
static void qb_state_mask(struct qb *b, const char *col, int mask, int n, const char *(*name)(int))
{
    if (mask == 0)
        return;
    bool any = false;
    qb_sql(b, " AND (");
    for (int s = 0; s < n; s++) {
        if (!(mask & (1 << s)))
            continue;
        if (any)
            qb_sql(b, " OR ");
        qb_sql(b, col);
        const char *nm = name(s);
        if (!nm) {
            qb_sql(b, " IS NULL");
        } else {
            qb_sql(b, " = ");
            qb_param(b, p_text(nm));
        }
        any = true;
    }
    if (!any)
        qb_sql(b, "1 = 0");
    qb_sql(b, ")");
}

static const char *run_state_col(int s)
{
    return store_run_state_name((enum store_run_state)s);
}

static const char *ti_state_col(int s)
{
    return s == TI_NONE ? NULL : store_ti_state_name((enum store_ti_state)s);
}

static void run_where(struct qb *b, const struct store_run_filter *f)
{
    qb_sql(b, " WHERE 1 = 1");
    if (f->dag_id) {
        qb_sql(b, " AND r.dag_id = ");
        qb_param(b, p_text(f->dag_id));
    }
    qb_state_mask(b, "r.state", f->state_mask, RUN_FAILED + 1, run_state_col);
    /* 0 counts as unbounded too, so that `struct store_run_filter f = {.dag_id = x}` lists
     * every run of x instead of those up to 1970-01-01 */
    if (f->logical_date_gte != TS_NONE && f->logical_date_gte != 0) {
        qb_sql(b, " AND r.logical_date >= ");
        qb_param(b, p_int(f->logical_date_gte));
    }
    if (f->logical_date_lte != TS_NONE && f->logical_date_lte != 0) {
        qb_sql(b, " AND r.logical_date <= ");
        qb_param(b, p_int(f->logical_date_lte));
    }
}

int store_run_list(struct store *st, const struct store_run_filter *f, struct store_run_list *out,
                   struct weir_err *err)
{
    struct store_run_filter all;
    if (!f) {
        store_run_filter_init(&all);
        f = &all;
    }
    static const struct {
        const char *key, *sql;
    } orders[] = {
        { "logical_date", " ORDER BY r.logical_date ASC NULLS FIRST, r.id ASC" },
        { "-logical_date", " ORDER BY r.logical_date DESC NULLS LAST, r.id DESC" },
        { "start_date", " ORDER BY r.start_date ASC NULLS FIRST, r.id ASC" },
        { "-start_date", " ORDER BY r.start_date DESC NULLS LAST, r.id DESC" },
        { "id", " ORDER BY r.id ASC" },
        { "-id", " ORDER BY r.id DESC" },
    };
    const char *order = f->order_by && *f->order_by ? f->order_by : "-logical_date";
    const char *order_sql = NULL;
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
        if (strcmp(orders[i].key, order) == 0)
            order_sql = orders[i].sql;
    if (!order_sql)
        return err_set(err, WEIR_EINVAL, "unknown run order '%s'", order);

    struct qb b;
    qb_init(&b, "SELECT COUNT(*) FROM dag_run r");
    run_where(&b, f);
    int64_t total = 0;
    int rc = q_int(st, b.sql.s, b.p, b.n, &total, err);
    qb_release(&b);
    if (rc < 0)
        return rc;

    qb_init(&b, "SELECT " RUN_COLS " FROM dag_run r");
    run_where(&b, f);
    qb_sql(&b, order_sql);
    qb_limit(&b, f->limit, f->offset);
    struct store__cur *c = NULL;
    struct store_run_list l = { 0 };
    size_t cap = 0;
    rc = q(st, b.sql.s, b.p, b.n, &c, NULL, err);
    while (rc >= 0 && (rc = next_row(st, c, err)) == 1) {
        if (l.n == cap) {
            cap = cap ? cap * 2 : 16;
            l.items = xrealloc(l.items, cap * sizeof(*l.items));
        }
        rc = read_run(st, c, &l.items[l.n], err);
        if (rc >= 0)
            l.n++;
    }
    cur_free(st, c);
    qb_release(&b);
    if (rc < 0) {
        store_run_list_release(&l);
        return rc;
    }
    l.total = (size_t)total;
    *out = l;
    return 0;
}

int store_run_count_active(struct store *st, const char *dag_id, int64_t *count,
                           struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id) };
    return q_int(st,
                 "SELECT COUNT(*) FROM dag_run WHERE dag_id = $1 "
                 "AND state IN ('queued', 'running')",
                 p, 1, count, err);
}

int store_run_latest_scheduled(struct store *st, const char *dag_id, struct store_run *out,
                               struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id) };
    int rc = q(st,
               "SELECT " RUN_COLS " FROM dag_run r WHERE r.dag_id = $1 "
               "AND r.run_type IN ('scheduled', 'backfill') AND r.logical_date IS NOT NULL "
               "ORDER BY r.logical_date DESC LIMIT 1",
               p, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1)
        rc = read_run(st, c, out, err);
    else if (rc == 0)
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' has no scheduled run", dag_id ? dag_id : "");
    cur_free(st, c);
    return rc;
}

/* After an UPDATE matched nothing: -WEIR_ENOTFOUND, or -WEIR_ECONFLICT naming the state
 * actually found. */
static int run_cas_failed(struct store *st, const char *dag_id, const char *run_id, int from,
                          struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id), p_text(run_id) };
    int rc =
        q(st, "SELECT state FROM dag_run WHERE dag_id = $1 AND run_id = $2", p, 2, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1)
        rc = err_set(err, WEIR_ECONFLICT, "dag '%s' run '%s': state is '%s', expected '%s'", dag_id,
                     run_id, col_str(st, c, 0), store_run_state_name((enum store_run_state)from));
    else if (rc == 0)
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' not found", dag_id, run_id);
    cur_free(st, c);
    return rc;
}

static int run_set_state_tx(struct store *st, const char *dag_id, const char *run_id, int from,
                            enum store_run_state to, int64_t start_date, int64_t end_date,
                            struct weir_err *err)
{
    struct qb b;
    qb_init(&b, "UPDATE dag_run SET state = ");
    qb_param(&b, p_text(store_run_state_name(to)));
    if (start_date != TS_NONE) {
        qb_sql(&b, ", start_date = ");
        qb_param(&b, p_int(start_date));
    }
    if (end_date != TS_NONE) {
        qb_sql(&b, ", end_date = ");
        qb_param(&b, p_int(end_date));
    }
    qb_sql(&b, " WHERE dag_id = ");
    qb_param(&b, p_text(dag_id));
    qb_sql(&b, " AND run_id = ");
    qb_param(&b, p_text(run_id));
    if (from >= 0) {
        qb_sql(&b, " AND state = ");
        qb_param(&b, p_text(store_run_state_name((enum store_run_state)from)));
    }
    int64_t n = 0;
    int rc = q(st, b.sql.s, b.p, b.n, NULL, &n, err);
    qb_release(&b);
    if (rc < 0)
        return rc;
    return n == 0 ? run_cas_failed(st, dag_id, run_id, from, err) : 0;
}

int store_run_set_state(struct store *st, const char *dag_id, const char *run_id, int from,
                        enum store_run_state to, int64_t start_date, int64_t end_date,
                        struct weir_err *err)
{
    if (!dag_id || !run_id)
        return err_set(err, WEIR_EINVAL, "run state change without dag or run id");
    if (from < -1 || from > RUN_FAILED || (unsigned)to > RUN_FAILED)
        return err_set(err, WEIR_EINVAL, "dag '%s' run '%s': bad run state", dag_id, run_id);
    bool own;
    int rc = tx_enter(st, &own, err);
    if (rc < 0)
        return rc;
    return tx_leave(st, own,
                    run_set_state_tx(st, dag_id, run_id, from, to, start_date, end_date, err), err);
}

int store_run_set_note(struct store *st, const char *dag_id, const char *run_id, const char *note,
                       struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(note) };
    int64_t n = 0;
    int rc = exec_write(st, "UPDATE dag_run SET note = $3 WHERE dag_id = $1 AND run_id = $2", p, 3,
                        &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' not found", dag_id ? dag_id : "",
                       run_id ? run_id : "");
    return 0;
}

int store_run_delete(struct store *st, const char *dag_id, const char *run_id, struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_text(run_id) };
    int64_t n = 0;
    /* task instances cascade, and their logs and XComs with them */
    int rc = exec_write(st, "DELETE FROM dag_run WHERE dag_id = $1 AND run_id = $2", p, 2, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' not found", dag_id ? dag_id : "",
                       run_id ? run_id : "");
    return 0;
}

/* ---- task instances --------------------------------------------------------------- */

#define TI_COLS                                                                                    \
    "ti.dag_id, ti.run_id, ti.task_id, ti.state, ti.try_number, ti.max_tries, ti.start_date, "     \
    "ti.end_date, ti.queued_at, ti.next_retry_at, ti.heartbeat_at, ti.hostname, ti.pid, ti.pool, " \
    "ti.executor_ref, ti.note"

void store_ti_release(struct store_ti *t)
{
    if (!t)
        return;
    free(t->dag_id);
    free(t->run_id);
    free(t->task_id);
    free(t->hostname);
    free(t->pool);
    free(t->executor_ref);
    free(t->note);
    memset(t, 0, sizeof(*t));
}

void store_ti_list_release(struct store_ti_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        store_ti_release(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int read_ti(struct store *st, struct store__cur *c, struct store_ti *t, struct weir_err *err)
{
    memset(t, 0, sizeof(*t));
    const char *state = col_str(st, c, 3);
    t->state = TI_NONE;
    if (state && (store_ti_state_parse(state, &t->state) < 0 || t->state == TI_NONE)) {
        LOG_ERROR("stored task instance state is unknown dag=%s run=%s task=%s state=%s",
                  col_str(st, c, 0), col_str(st, c, 1), col_str(st, c, 2), state);
        return err_set(err, WEIR_EINTERNAL, "dag '%s' run '%s' task '%s': unknown state '%s'",
                       col_str(st, c, 0), col_str(st, c, 1), col_str(st, c, 2), state);
    }
    t->dag_id = col_dup(st, c, 0);
    t->run_id = col_dup(st, c, 1);
    t->task_id = col_dup(st, c, 2);
    t->try_number = (int)col_int(st, c, 4);
    t->max_tries = (int)col_int(st, c, 5);
    t->start_date = col_ts(st, c, 6);
    t->end_date = col_ts(st, c, 7);
    t->queued_at = col_ts(st, c, 8);
    t->next_retry_at = col_ts(st, c, 9);
    t->heartbeat_at = col_ts(st, c, 10);
    t->hostname = col_dup(st, c, 11);
    t->pid = (int)col_int(st, c, 12);
    t->pool = col_dup(st, c, 13);
    if (!t->pool)
        t->pool = xstrdup("default_pool");
    t->executor_ref = col_dup(st, c, 14);
    t->note = col_dup(st, c, 15);
    return 0;
}

/* Runs a TI query and collects every row. */
static int ti_collect(struct store *st, const char *sql, const struct store__param *p, int np,
                      struct store_ti_list *out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store_ti_list l = { 0 };
    size_t cap = 0;
    int rc = q(st, sql, p, np, &c, NULL, err);
    while (rc >= 0 && (rc = next_row(st, c, err)) == 1) {
        if (l.n == cap) {
            cap = cap ? cap * 2 : 16;
            l.items = xrealloc(l.items, cap * sizeof(*l.items));
        }
        rc = read_ti(st, c, &l.items[l.n], err);
        if (rc >= 0)
            l.n++;
    }
    cur_free(st, c);
    if (rc < 0) {
        store_ti_list_release(&l);
        return rc;
    }
    l.total = l.n;
    *out = l;
    return 0;
}

int store_ti_get(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                 struct store_ti *out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id) };
    int rc = q(st,
               "SELECT " TI_COLS " FROM task_instance ti "
               "WHERE ti.dag_id = $1 AND ti.run_id = $2 AND ti.task_id = $3",
               p, 3, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1)
        rc = read_ti(st, c, out, err);
    else if (rc == 0)
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' task '%s' not found",
                     dag_id ? dag_id : "", run_id ? run_id : "", task_id ? task_id : "");
    cur_free(st, c);
    return rc;
}

int store_ti_list_run(struct store *st, const char *dag_id, const char *run_id,
                      struct store_ti_list *out, struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_text(run_id) };
    return ti_collect(st,
                      "SELECT " TI_COLS " FROM task_instance ti "
                      "WHERE ti.dag_id = $1 AND ti.run_id = $2 ORDER BY ti.task_id",
                      p, 2, out, err);
}

static void ti_where(struct qb *b, const struct store_ti_filter *f)
{
    qb_sql(b, " WHERE 1 = 1");
    if (f->dag_id) {
        qb_sql(b, " AND ti.dag_id = ");
        qb_param(b, p_text(f->dag_id));
    }
    if (f->run_id) {
        qb_sql(b, " AND ti.run_id = ");
        qb_param(b, p_text(f->run_id));
    }
    qb_state_mask(b, "ti.state", f->state_mask, TI__COUNT, ti_state_col);
}

int store_ti_list(struct store *st, const struct store_ti_filter *f, struct store_ti_list *out,
                  struct weir_err *err)
{
    struct store_ti_filter all = { 0 };
    if (!f)
        f = &all;
    struct qb b;
    qb_init(&b, "SELECT COUNT(*) FROM task_instance ti");
    ti_where(&b, f);
    int64_t total = 0;
    int rc = q_int(st, b.sql.s, b.p, b.n, &total, err);
    qb_release(&b);
    if (rc < 0)
        return rc;
    qb_init(&b, "SELECT " TI_COLS " FROM task_instance ti");
    ti_where(&b, f);
    qb_sql(&b, " ORDER BY ti.dag_id, ti.run_id, ti.task_id");
    qb_limit(&b, f->limit, f->offset);
    rc = ti_collect(st, b.sql.s, b.p, b.n, out, err);
    qb_release(&b);
    if (rc < 0)
        return rc;
    out->total = (size_t)total;
    return 0;
}

int store_ti_count_active(struct store *st, const char *dag_id, const char *pool, int64_t *count,
                          struct weir_err *err)
{
    struct qb b;
    qb_init(&b, "SELECT COUNT(*) FROM task_instance WHERE state IN ('queued', 'running')");
    if (dag_id) {
        qb_sql(&b, " AND dag_id = ");
        qb_param(&b, p_text(dag_id));
    }
    if (pool) {
        qb_sql(&b, " AND pool = ");
        qb_param(&b, p_text(pool));
    }
    int rc = q_int(st, b.sql.s, b.p, b.n, count, err);
    qb_release(&b);
    return rc;
}

/* After a TI update matched nothing: -WEIR_ENOTFOUND, or -WEIR_ECONFLICT saying what the
 * row holds instead. */
static int ti_cas_failed(struct store *st, const char *dag_id, const char *run_id,
                         const char *task_id, int from, int expect_try, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id) };
    int rc = q(st,
               "SELECT state, try_number FROM task_instance "
               "WHERE dag_id = $1 AND run_id = $2 AND task_id = $3",
               p, 3, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        const char *state = col_str(st, c, 0);
        rc = err_set(err, WEIR_ECONFLICT,
                     "dag '%s' run '%s' task '%s': state '%s' try %d, expected '%s' try %d", dag_id,
                     run_id, task_id, state ? state : "none", (int)col_int(st, c, 1),
                     from < 0 ? "any" : store_ti_state_name((enum store_ti_state)from), expect_try);
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' task '%s' not found", dag_id, run_id,
                     task_id);
    }
    cur_free(st, c);
    return rc;
}

static void qb_set(struct qb *b, const char *col, struct store__param p)
{
    qb_sql(b, ", ");
    qb_sql(b, col);
    qb_sql(b, " = ");
    qb_param(b, p);
}

static void qb_ti_key(struct qb *b, const char *dag_id, const char *run_id, const char *task_id)
{
    qb_sql(b, " WHERE dag_id = ");
    qb_param(b, p_text(dag_id));
    qb_sql(b, " AND run_id = ");
    qb_param(b, p_text(run_id));
    qb_sql(b, " AND task_id = ");
    qb_param(b, p_text(task_id));
}

static int ti_update_tx(struct store *st, const char *dag_id, const char *run_id,
                        const char *task_id, int from, int expect_try,
                        const struct store_ti_update *u, struct weir_err *err)
{
    struct qb b;
    qb_init(&b, "UPDATE task_instance SET state = ");
    qb_param(&b, p_text(ti_state_col(u->to)));
    if (u->set_try_number)
        qb_set(&b, "try_number", p_int(u->try_number));
    if (u->set_max_tries)
        qb_set(&b, "max_tries", p_int(u->max_tries));
    if (u->set_start_date)
        qb_set(&b, "start_date", p_ts(u->start_date));
    if (u->set_end_date)
        qb_set(&b, "end_date", p_ts(u->end_date));
    if (u->set_queued_at)
        qb_set(&b, "queued_at", p_ts(u->queued_at));
    if (u->set_next_retry_at)
        qb_set(&b, "next_retry_at", p_ts(u->next_retry_at));
    if (u->set_heartbeat_at)
        qb_set(&b, "heartbeat_at", p_ts(u->heartbeat_at));
    if (u->set_hostname)
        qb_set(&b, "hostname", p_text(u->hostname));
    if (u->set_pid)
        qb_set(&b, "pid", p_int(u->pid));
    if (u->set_executor_ref)
        qb_set(&b, "executor_ref", p_text(u->executor_ref));
    if (u->set_note)
        qb_set(&b, "note", p_text(u->note));
    if (u->set_pool)
        qb_set(&b, "pool", p_text(u->pool));
    qb_ti_key(&b, dag_id, run_id, task_id);
    if (from == TI_NONE) {
        qb_sql(&b, " AND state IS NULL");
    } else if (from > 0) {
        qb_sql(&b, " AND state = ");
        qb_param(&b, p_text(store_ti_state_name((enum store_ti_state)from)));
    }
    if (expect_try >= 0) {
        qb_sql(&b, " AND try_number = ");
        qb_param(&b, p_int(expect_try));
    }
    int64_t n = 0;
    int rc = q(st, b.sql.s, b.p, b.n, NULL, &n, err);
    qb_release(&b);
    if (rc < 0)
        return rc;
    return n == 0 ? ti_cas_failed(st, dag_id, run_id, task_id, from, expect_try, err) : 0;
}

int store_ti_update(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                    int from, int expect_try, const struct store_ti_update *u, struct weir_err *err)
{
    if (!dag_id || !run_id || !task_id || !u)
        return err_set(err, WEIR_EINVAL, "task instance update without a key");
    if (from < -1 || from >= TI__COUNT || (unsigned)u->to >= TI__COUNT)
        return err_set(err, WEIR_EINVAL, "dag '%s' run '%s' task '%s': bad state", dag_id, run_id,
                       task_id);
    bool own;
    int rc = tx_enter(st, &own, err);
    if (rc < 0)
        return rc;
    return tx_leave(st, own, ti_update_tx(st, dag_id, run_id, task_id, from, expect_try, u, err),
                    err);
}

static int ti_heartbeat_tx(struct store *st, const char *dag_id, const char *run_id,
                           const char *task_id, int try_number, int64_t now, struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id), p_int(try_number),
                                p_int(now) };
    int64_t n = 0;
    int rc = q(st,
               "UPDATE task_instance SET heartbeat_at = $5 WHERE dag_id = $1 AND run_id = $2 "
               "AND task_id = $3 AND try_number = $4 AND state = 'running'",
               p, 5, NULL, &n, err);
    if (rc < 0)
        return rc;
    return n == 0 ? ti_cas_failed(st, dag_id, run_id, task_id, TI_RUNNING, try_number, err) : 0;
}

int store_ti_heartbeat(struct store *st, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, int64_t now, struct weir_err *err)
{
    if (!dag_id || !run_id || !task_id)
        return err_set(err, WEIR_EINVAL, "heartbeat without a task instance key");
    bool own;
    int rc = tx_enter(st, &own, err);
    if (rc < 0)
        return rc;
    return tx_leave(st, own, ti_heartbeat_tx(st, dag_id, run_id, task_id, try_number, now, err),
                    err);
}

int store_ti_list_state(struct store *st, enum store_ti_state state, struct store_ti_list *out,
                        struct weir_err *err)
{
    if ((unsigned)state >= TI__COUNT)
        return err_set(err, WEIR_EINVAL, "bad task instance state %d", (int)state);
    if (state == TI_NONE)
        return ti_collect(st,
                          "SELECT " TI_COLS " FROM task_instance ti JOIN dag_run r "
                          "ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id "
                          "WHERE ti.state IS NULL AND r.state IN ('queued', 'running') "
                          "ORDER BY ti.dag_id, ti.run_id, ti.task_id",
                          NULL, 0, out, err);
    struct store__param p[] = { p_text(store_ti_state_name(state)) };
    return ti_collect(st,
                      "SELECT " TI_COLS " FROM task_instance ti JOIN dag_run r "
                      "ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id "
                      "WHERE ti.state = $1 AND r.state IN ('queued', 'running') "
                      "ORDER BY ti.dag_id, ti.run_id, ti.task_id",
                      p, 1, out, err);
}

/* ---- task logs ---------------------------------------------------------------------- */

void store_log_list_release(struct store_log_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].line);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Length of the valid UTF-8 sequence at `s` (at most `n` bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    uint32_t cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Log lines come from child processes: cut them at LOG_LINE_MAX (on a character
 * boundary) and replace bytes that are not UTF-8, which PostgreSQL's TEXT would refuse.
 * Returns `s` itself when it is fine, else a new string stored in *tmp. */
static const char *clean_line(const char *s, char **tmp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n && i < LOG_LINE_MAX) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0 || i + k > LOG_LINE_MAX)
            break;
        i += k;
    }
    if (i == n) {
        *tmp = NULL;
        return s;
    }
    struct buf b;
    buf_init(&b, 0);
    i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        size_t add = k ? k : 1;
        if (b.len + add > LOG_LINE_MAX)
            break;
        if (k)
            buf_add(&b, s + i, k);
        else
            buf_addc(&b, '?');
        i += add;
    }
    *tmp = buf_detach(&b);
    buf_release(&b);
    return *tmp;
}

struct log_fill {
    const char *const *lines;
    char **clean;
    int64_t *ts;
};

static void fill_log(void *ctx, size_t i, struct store__param *out)
{
    struct log_fill *f = ctx;
    out[0] = p_int(f->ts[i]);
    out[1] = p_text(f->clean[i] ? f->clean[i] : f->lines[i]);
}

/* One statement per chunk, numbering the lines after the try's current last seq:
 *   INSERT INTO task_log (...) SELECT $1, $2, $3, $4, b.m + v.column1, v.column2, v.column3
 *   FROM (SELECT COALESCE(MAX(seq), 0) AS m FROM task_log WHERE <the try>) AS b,
 *        (VALUES (1, $5, $6), (2, $7, $8), ...) AS v
 * Both databases name VALUES columns column1, column2, ...; the casts give PostgreSQL the
 * parameter types it cannot infer inside VALUES and a select list. */
static void log_insert_sql(struct buf *b, int nfixed, int nper, size_t rows)
{
    buf_adds(b, "INSERT INTO task_log (dag_id, run_id, task_id, try_number, seq, ts, line) "
                "SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), "
                "CAST($4 AS INTEGER), b.m + v.column1, v.column2, v.column3 "
                "FROM (SELECT COALESCE(MAX(seq), 0) AS m FROM task_log WHERE dag_id = $1 "
                "AND run_id = $2 AND task_id = $3 AND try_number = $4) AS b, (VALUES ");
    int k = nfixed + 1;
    for (size_t r = 0; r < rows; r++, k += nper)
        buf_addf(b, "%s(%zu, CAST($%d AS BIGINT), CAST($%d AS TEXT))", r ? ", " : "", r + 1, k,
                 k + 1);
    buf_adds(b, ") AS v");
}

int store_log_append(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                     int try_number, const char *const *lines, const int64_t *ts, size_t n,
                     struct weir_err *err)
{
    if (!dag_id || !run_id || !task_id)
        return err_set(err, WEIR_EINVAL, "log append without a task instance key");
    if (n == 0)
        return 0;
    if (!lines)
        return err_set(err, WEIR_EINVAL, "log append without lines");
    struct log_fill f = { lines, xcalloc(n, sizeof(char *)), xmalloc(n * sizeof(int64_t)) };
    int64_t now = TS_NONE;
    for (size_t i = 0; i < n; i++) {
        const char *tmp = clean_line(lines[i] ? lines[i] : "", &f.clean[i]);
        if (!f.clean[i] && !lines[i])
            f.clean[i] = xstrdup(tmp);
        f.ts[i] = ts ? ts[i] : TS_NONE;
        if (f.ts[i] == TS_NONE) {
            if (now == TS_NONE)
                now = ts_now_us();
            f.ts[i] = now;
        }
    }
    struct store__param key[] = { p_text(dag_id), p_text(run_id), p_text(task_id),
                                  p_int(try_number) };
    /* One chunk is one statement, atomic without a transaction around it: a single round
     * trip to PostgreSQL for the common small append. */
    int rc;
    if (batch_chunk(n) == n && !st->in_tx && st->depth == 0) {
        rc = batch_insert(st, log_insert_sql, key, 4, 2, n, fill_log, &f, err);
    } else {
        bool own;
        rc = tx_enter(st, &own, err);
        if (rc >= 0)
            rc = tx_leave(st, own,
                          batch_insert(st, log_insert_sql, key, 4, 2, n, fill_log, &f, err), err);
    }
    for (size_t i = 0; i < n; i++)
        free(f.clean[i]);
    free(f.clean);
    free(f.ts);
    if (rc == -WEIR_ENOTFOUND)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' task '%s' not found", dag_id, run_id,
                       task_id);
    return rc;
}

int store_log_read(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                   int try_number, int64_t after_seq, size_t limit, struct store_log_list *out,
                   struct weir_err *err)
{
    struct qb b;
    qb_init(&b, "SELECT seq, ts, line FROM task_log WHERE dag_id = ");
    qb_param(&b, p_text(dag_id));
    qb_sql(&b, " AND run_id = ");
    qb_param(&b, p_text(run_id));
    qb_sql(&b, " AND task_id = ");
    qb_param(&b, p_text(task_id));
    qb_sql(&b, " AND try_number = ");
    qb_param(&b, p_int(try_number));
    qb_sql(&b, " AND seq > ");
    qb_param(&b, p_int(after_seq));
    qb_sql(&b, " ORDER BY seq");
    qb_limit(&b, limit, 0);
    struct store__cur *c = NULL;
    struct store_log_list l = { 0 };
    size_t cap = 0;
    int rc = q(st, b.sql.s, b.p, b.n, &c, NULL, err);
    while (rc >= 0 && (rc = next_row(st, c, err)) == 1) {
        if (l.n == cap) {
            cap = cap ? cap * 2 : 64;
            l.items = xrealloc(l.items, cap * sizeof(*l.items));
        }
        struct store_log_line *ln = &l.items[l.n++];
        ln->seq = col_int(st, c, 0);
        ln->ts = col_int(st, c, 1);
        ln->line = col_dup(st, c, 2);
        if (!ln->line)
            ln->line = xstrdup("");
    }
    cur_free(st, c);
    qb_release(&b);
    if (rc < 0) {
        store_log_list_release(&l);
        return rc;
    }
    *out = l;
    return 0;
}

/* ---- XCom ------------------------------------------------------------------------- */

int store_xcom_set(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                   const char *key, json_t *value, struct weir_err *err)
{
    int rc;
    if ((rc = check_id("xcom key", key, err)) < 0)
        return rc;
    if (!dag_id || !run_id || !task_id)
        return err_set(err, WEIR_EINVAL, "xcom '%s' without a task instance key", key);
    if (!value)
        return err_set(err, WEIR_EINVAL, "xcom '%s': no value", key);
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return err_set(err, WEIR_EINVAL, "xcom '%s': value cannot be serialized", key);
    if (strlen(text) > XCOM_MAX) {
        free(text);
        return err_set(err, WEIR_ETOOBIG, "xcom '%s' is larger than %zu bytes", key, XCOM_MAX);
    }
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id),
                                p_text(key),    p_text(text),   p_int(ts_now_us()) };
    rc = exec_write(st,
                    "INSERT INTO xcom (dag_id, run_id, task_id, key, value, ts) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dag_id, run_id, task_id, key) "
                    "DO UPDATE SET value = excluded.value, ts = excluded.ts",
                    p, 6, NULL, err);
    free(text);
    if (rc == -WEIR_ENOTFOUND)
        return err_set(err, WEIR_ENOTFOUND, "dag '%s' run '%s' task '%s' not found", dag_id, run_id,
                       task_id);
    return rc;
}

static json_t *parse_value(const char *text)
{
    return text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
}

int store_xcom_get(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                   const char *key, json_t **out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id), p_text(key) };
    int rc = q(st,
               "SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 "
               "AND key = $4",
               p, 4, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        json_t *v = parse_value(col_str(st, c, 0));
        if (v) {
            *out = v;
            rc = 0;
        } else {
            LOG_ERROR("stored xcom is not JSON dag=%s run=%s task=%s key=%s", dag_id, run_id,
                      task_id, key);
            rc = err_set(err, WEIR_EINTERNAL, "xcom '%s': stored value is not JSON", key);
        }
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "xcom '%s' of dag '%s' run '%s' task '%s' not found",
                     key ? key : "", dag_id ? dag_id : "", run_id ? run_id : "",
                     task_id ? task_id : "");
    }
    cur_free(st, c);
    return rc;
}

struct xcom_row_ud {
    const char *dag_id, *run_id;
};

static json_t *xcom_row(struct store *st, struct store__cur *c, void *ud, struct weir_err *err)
{
    const struct xcom_row_ud *k = ud;
    json_t *v = parse_value(col_str(st, c, 2));
    if (!v) {
        err_set(err, WEIR_EINTERNAL, "xcom '%s': stored value is not JSON", col_str(st, c, 1));
        return NULL;
    }
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", j_str(k->dag_id));
    json_object_set_new(o, "dag_run_id", j_str(k->run_id));
    json_object_set_new(o, "task_id", j_str(col_str(st, c, 0)));
    json_object_set_new(o, "key", j_str(col_str(st, c, 1)));
    json_object_set_new(o, "value", v);
    json_object_set_new(o, "timestamp", j_ts(col_ts(st, c, 3)));
    return o;
}

int store_xcom_list(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                    json_t **out, struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id) };
    struct xcom_row_ud ud = { dag_id, run_id };
    if (task_id)
        return list_json(st,
                         "SELECT task_id, key, value, ts FROM xcom WHERE dag_id = $1 "
                         "AND run_id = $2 AND task_id = $3 ORDER BY task_id, key",
                         p, 3, xcom_row, &ud, out, err);
    return list_json(st,
                     "SELECT task_id, key, value, ts FROM xcom WHERE dag_id = $1 "
                     "AND run_id = $2 ORDER BY task_id, key",
                     p, 2, xcom_row, &ud, out, err);
}

int store_xcom_clear(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                     struct weir_err *err)
{
    struct store__param p[] = { p_text(dag_id), p_text(run_id), p_text(task_id) };
    return exec_write(st, "DELETE FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3", p,
                      3, NULL, err);
}

/* ---- variables ---------------------------------------------------------------------- */

int store_var_get(struct store *st, const char *key, char **out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(key) };
    int rc = q(st, "SELECT value FROM variable WHERE key = $1", p, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        *out = col_dup(st, c, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "variable '%s' not found", key ? key : "");
    }
    cur_free(st, c);
    return rc;
}

int store_var_set(struct store *st, const char *key, const char *value, const char *description,
                  struct weir_err *err)
{
    int rc = check_id("variable key", key, err);
    if (rc < 0)
        return rc;
    if (!value)
        return err_set(err, WEIR_EINVAL, "variable '%s': no value", key);
    struct store__param p[] = { p_text(key), p_text(value), p_text(description) };
    return exec_write(st,
                      "INSERT INTO variable (key, value, description) VALUES ($1, $2, $3) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                      "description = excluded.description",
                      p, 3, NULL, err);
}

int store_var_delete(struct store *st, const char *key, struct weir_err *err)
{
    return delete_one(st, "DELETE FROM variable WHERE key = $1", key, "variable", err);
}

static json_t *var_row(struct store *st, struct store__cur *c, void *ud, struct weir_err *err)
{
    (void)ud;
    (void)err;
    json_t *o = json_object();
    json_object_set_new(o, "key", j_str(col_str(st, c, 0)));
    json_object_set_new(o, "value", j_str(col_str(st, c, 1)));
    json_object_set_new(o, "description", j_str(col_str(st, c, 2)));
    return o;
}

int store_var_list(struct store *st, json_t **out, struct weir_err *err)
{
    return list_json(st, "SELECT key, value, description FROM variable ORDER BY key", NULL, 0,
                     var_row, NULL, out, err);
}

/* ---- connections -------------------------------------------------------------------- */

void store_conn_release(struct store_conn *c)
{
    if (!c)
        return;
    free(c->conn_id);
    free(c->conn_type);
    free(c->description);
    free(c->host);
    free(c->schema);
    free(c->login);
    free(c->password);
    json_decref(c->extra);
    memset(c, 0, sizeof(*c));
}

int store_conn_get(struct store *st, const char *conn_id, struct store_conn *out,
                   struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(conn_id) };
    int rc = q(st,
               "SELECT conn_id, conn_type, description, host, conn_schema, login, password, "
               "port, extra FROM connection WHERE conn_id = $1",
               p, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        const char *extra = col_str(st, c, 8);
        json_t *ej = extra ? json_loads(extra, 0, NULL) : NULL;
        if (extra && !json_is_object(ej)) {
            json_decref(ej);
            LOG_ERROR("stored connection extra is not a JSON object conn=%s", conn_id);
            rc = err_set(err, WEIR_EINTERNAL, "connection '%s': stored extra is not an object",
                         conn_id);
        } else {
            memset(out, 0, sizeof(*out));
            out->conn_id = col_dup(st, c, 0);
            out->conn_type = col_dup(st, c, 1);
            out->description = col_dup(st, c, 2);
            out->host = col_dup(st, c, 3);
            out->schema = col_dup(st, c, 4);
            out->login = col_dup(st, c, 5);
            out->password = col_dup(st, c, 6);
            out->port = (int)col_int(st, c, 7);
            out->extra = ej;
            rc = 0;
        }
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "connection '%s' not found", conn_id ? conn_id : "");
    }
    cur_free(st, c);
    return rc;
}

int store_conn_set(struct store *st, const struct store_conn *c, struct weir_err *err)
{
    int rc = check_id("connection id", c->conn_id, err);
    if (rc < 0)
        return rc;
    if (c->extra && !json_is_object(c->extra))
        return err_set(err, WEIR_EINVAL, "connection '%s': extra must be an object", c->conn_id);
    if (c->port < 0 || c->port > 65535)
        return err_set(err, WEIR_EINVAL, "connection '%s': port %d out of range", c->conn_id,
                       c->port);
    char *extra = c->extra ? json_dumps(c->extra, JSON_COMPACT) : NULL;
    if (c->extra && !extra)
        return err_set(err, WEIR_EINVAL, "connection '%s': extra cannot be serialized", c->conn_id);
    struct store__param p[] = { p_text(c->conn_id),  p_text(c->conn_type), p_text(c->description),
                                p_text(c->host),     p_text(c->schema),    p_text(c->login),
                                p_text(c->password), p_int(c->port),       p_text(extra) };
    rc = exec_write(st,
                    "INSERT INTO connection (conn_id, conn_type, description, host, conn_schema, "
                    "login, password, port, extra) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                    "ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, "
                    "description = excluded.description, host = excluded.host, "
                    "conn_schema = excluded.conn_schema, login = excluded.login, "
                    "password = excluded.password, port = excluded.port, extra = excluded.extra",
                    p, 9, NULL, err);
    free(extra);
    return rc;
}

int store_conn_delete(struct store *st, const char *conn_id, struct weir_err *err)
{
    return delete_one(st, "DELETE FROM connection WHERE conn_id = $1", conn_id, "connection", err);
}

/* Airflow's list of extra keys whose values are secrets (DEFAULT_SENSITIVE_FIELDS). */
static bool sensitive_key(const char *k)
{
    static const char *const words[] = { "access_token",  "api_key",      "apikey",
                                         "authorization", "passphrase",   "passwd",
                                         "password",      "private_key",  "secret",
                                         "token",         "keyfile_dict", "service_account" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(k, words[i]))
            return true;
    return false;
}

static void mask_extra(json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (sensitive_key(k))
            json_object_set_new(o, k, json_string("***"));
        else if (json_is_object(v))
            mask_extra(v);
    }
}

static json_t *conn_row(struct store *st, struct store__cur *c, void *ud, struct weir_err *err)
{
    (void)ud;
    (void)err;
    json_t *o = json_object();
    json_object_set_new(o, "connection_id", j_str(col_str(st, c, 0)));
    json_object_set_new(o, "conn_type", j_str(col_str(st, c, 1)));
    json_object_set_new(o, "description", j_str(col_str(st, c, 2)));
    json_object_set_new(o, "host", j_str(col_str(st, c, 3)));
    json_object_set_new(o, "schema", j_str(col_str(st, c, 4)));
    json_object_set_new(o, "login", j_str(col_str(st, c, 5)));
    int64_t port = col_int(st, c, 6);
    json_object_set_new(o, "port", port ? json_integer(port) : json_null());
    /* Airflow sends extra as a JSON string; secrets inside it are masked */
    json_t *extra = parse_value(col_str(st, c, 7));
    char *etext = NULL;
    if (json_is_object(extra)) {
        mask_extra(extra);
        etext = json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(extra);
    json_object_set_new(o, "extra", j_str(etext));
    free(etext);
    return o;
}

int store_conn_list(struct store *st, json_t **out, struct weir_err *err)
{
    return list_json(st,
                     "SELECT conn_id, conn_type, description, host, conn_schema, login, port, "
                     "extra FROM connection ORDER BY conn_id",
                     NULL, 0, conn_row, NULL, out, err);
}

/* ---- pools -------------------------------------------------------------------------- */

int store_pool_get(struct store *st, const char *name, int64_t *slots, struct weir_err *err)
{
    struct store__param p[] = { p_text(name) };
    struct store__cur *c = NULL;
    int rc = q(st, "SELECT slots FROM pool WHERE name = $1", p, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        *slots = col_int(st, c, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "pool '%s' not found", name ? name : "");
    }
    cur_free(st, c);
    return rc;
}

int store_pool_set(struct store *st, const char *name, int64_t slots, const char *description,
                   struct weir_err *err)
{
    int rc = check_id("pool name", name, err);
    if (rc < 0)
        return rc;
    if (slots < -1)
        return err_set(err, WEIR_EINVAL, "pool '%s': slots must be >= 0 (or -1 for unlimited)",
                       name);
    struct store__param p[] = { p_text(name), p_int(slots), p_text(description) };
    return exec_write(st,
                      "INSERT INTO pool (name, slots, description) VALUES ($1, $2, $3) "
                      "ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, "
                      "description = excluded.description",
                      p, 3, NULL, err);
}

int store_pool_delete(struct store *st, const char *name, struct weir_err *err)
{
    if (name && strcmp(name, "default_pool") == 0)
        return err_set(err, WEIR_EINVAL, "pool 'default_pool' cannot be deleted");
    return delete_one(st, "DELETE FROM pool WHERE name = $1", name, "pool", err);
}

static json_t *pool_row(struct store *st, struct store__cur *c, void *ud, struct weir_err *err)
{
    (void)ud;
    (void)err;
    json_t *o = json_object();
    json_object_set_new(o, "name", j_str(col_str(st, c, 0)));
    json_object_set_new(o, "slots", json_integer(col_int(st, c, 1)));
    json_object_set_new(o, "description", j_str(col_str(st, c, 2)));
    return o;
}

int store_pool_list(struct store *st, json_t **out, struct weir_err *err)
{
    return list_json(st, "SELECT name, slots, description FROM pool ORDER BY name", NULL, 0,
                     pool_row, NULL, out, err);
}

/* ---- users and tokens ------------------------------------------------------------------ */

void store_user_release(struct store_user *u)
{
    if (!u)
        return;
    free(u->username);
    free(u->role);
    free(u->password_hash);
    memset(u, 0, sizeof(*u));
}

int store_user_create(struct store *st, const char *username, const char *role,
                      const char *password_hash, struct weir_err *err)
{
    int rc = check_id("username", username, err);
    if (rc < 0)
        return rc;
    if (!role || !*role || !password_hash || !*password_hash)
        return err_set(err, WEIR_EINVAL, "user '%s': role and password hash are required",
                       username);
    struct store__param p[] = { p_text(username), p_text(role), p_text(password_hash),
                                p_int(ts_now_us()) };
    int64_t n = 0;
    rc = exec_write(st,
                    "INSERT INTO users (username, role, password_hash, created_at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
                    p, 4, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ECONFLICT, "user '%s' already exists", username);
    return 0;
}

int store_user_get(struct store *st, const char *username, struct store_user *out,
                   struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(username) };
    int rc = q(st,
               "SELECT username, role, password_hash, created_at FROM users "
               "WHERE username = $1",
               p, 1, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        out->username = col_dup(st, c, 0);
        out->role = col_dup(st, c, 1);
        out->password_hash = col_dup(st, c, 2);
        out->created_at = col_int(st, c, 3);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "user '%s' not found", username ? username : "");
    }
    cur_free(st, c);
    return rc;
}

int store_user_update(struct store *st, const char *username, const char *role,
                      const char *password_hash, struct weir_err *err)
{
    struct store__param p[] = { p_text(username), p_text(role), p_text(password_hash) };
    int64_t n = 0;
    int rc = exec_write(st,
                        "UPDATE users SET role = COALESCE($2, role), "
                        "password_hash = COALESCE($3, password_hash) WHERE username = $1",
                        p, 3, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "user '%s' not found", username ? username : "");
    return 0;
}

static int user_delete_tx(struct store *st, const char *username, struct weir_err *err)
{
    struct store__param p[] = { p_text(username) };
    int64_t n = 0;
    /* explicit, so it does not depend on SQLite's foreign_keys pragma */
    int rc = q(st, "DELETE FROM sessions WHERE username = $1", p, 1, NULL, NULL, err);
    if (rc < 0)
        return rc;
    rc = q(st, "DELETE FROM users WHERE username = $1", p, 1, NULL, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "user '%s' not found", username ? username : "");
    return 0;
}

int store_user_delete(struct store *st, const char *username, struct weir_err *err)
{
    bool own;
    int rc = tx_enter(st, &own, err);
    if (rc < 0)
        return rc;
    rc = user_delete_tx(st, username, err);
    return tx_leave(st, own, rc, err);
}

static json_t *user_row(struct store *st, struct store__cur *c, void *ud, struct weir_err *err)
{
    (void)ud;
    (void)err;
    json_t *o = json_object();
    json_object_set_new(o, "username", j_str(col_str(st, c, 0)));
    json_object_set_new(o, "role", j_str(col_str(st, c, 1)));
    json_object_set_new(o, "created_at", j_ts(col_ts(st, c, 2)));
    return o;
}

int store_user_list(struct store *st, json_t **out, struct weir_err *err)
{
    return list_json(st, "SELECT username, role, created_at FROM users ORDER BY username", NULL,
                     0, user_row, NULL, out, err);
}

int store_user_count(struct store *st, int64_t *count, struct weir_err *err)
{
    return q_int(st, "SELECT COUNT(*) FROM users", NULL, 0, count, err);
}

void store_token_release(struct store_token *t)
{
    if (!t)
        return;
    free(t->username);
    free(t->role);
    free(t->kind);
    free(t->csrf);
    memset(t, 0, sizeof(*t));
}

int store_token_create(struct store *st, const char *token_hash, const char *username,
                       const char *kind, const char *csrf, int64_t expires_at,
                       struct weir_err *err)
{
    if (!token_hash || !*token_hash || !kind || !*kind)
        return err_set(err, WEIR_EINVAL, "token: hash and kind are required");
    struct store__param p[] = { p_text(token_hash), p_text(username), p_text(kind),
                                p_text(csrf),       p_int(ts_now_us()), p_ts(expires_at) };
    int64_t n = 0;
    /* INSERT ... SELECT: no row when the user does not exist, on both backends */
    int rc = exec_write(st,
                        "INSERT INTO sessions (token_hash, username, kind, csrf, created_at, "
                        "expires_at) SELECT CAST($1 AS TEXT), username, CAST($3 AS TEXT), "
                        "CAST($4 AS TEXT), CAST($5 AS BIGINT), CAST($6 AS BIGINT) FROM users "
                        "WHERE username = $2",
                        p, 6, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "user '%s' not found", username ? username : "");
    return 0;
}

int store_token_get(struct store *st, const char *token_hash, int64_t now,
                    struct store_token *out, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { p_text(token_hash), p_int(now) };
    int rc = q(st,
               "SELECT s.username, u.role, s.kind, s.csrf, s.expires_at FROM sessions s "
               "JOIN users u ON u.username = s.username "
               "WHERE s.token_hash = $1 AND (s.expires_at IS NULL OR s.expires_at > $2)",
               p, 2, &c, NULL, err);
    if (rc < 0)
        return rc;
    rc = next_row(st, c, err);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        out->username = col_dup(st, c, 0);
        out->role = col_dup(st, c, 1);
        out->kind = col_dup(st, c, 2);
        out->csrf = col_dup(st, c, 3);
        out->expires_at = col_ts(st, c, 4);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(err, WEIR_ENOTFOUND, "token not found or expired");
    }
    cur_free(st, c);
    return rc;
}

int store_token_delete(struct store *st, const char *token_hash, struct weir_err *err)
{
    struct store__param p[] = { p_text(token_hash) };
    int64_t n = 0;
    int rc = exec_write(st, "DELETE FROM sessions WHERE token_hash = $1", p, 1, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, WEIR_ENOTFOUND, "token not found");
    return 0;
}

int store_token_purge(struct store *st, int64_t now, int64_t *deleted, struct weir_err *err)
{
    struct store__param p[] = { p_int(now) };
    int64_t n = 0;
    int rc = exec_write(st,
                        "DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= $1",
                        p, 1, &n, err);
    if (rc < 0)
        return rc;
    if (deleted)
        *deleted = n;
    return 0;
}

/* ---- JSON views ----------------------------------------------------------------------- */

json_t *store_run_to_json(const struct store_run *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", j_str(r->dag_id));
    json_object_set_new(o, "dag_run_id", j_str(r->run_id));
    json_object_set_new(o, "state", json_string(store_run_state_name(r->state)));
    json_object_set_new(o, "run_type", json_string(store_run_type_name(r->run_type)));
    json_object_set_new(o, "logical_date", j_ts(r->logical_date));
    json_object_set_new(o, "execution_date", j_ts(r->logical_date));
    json_object_set_new(o, "data_interval_start", j_ts(r->data_interval_start));
    json_object_set_new(o, "data_interval_end", j_ts(r->data_interval_end));
    json_object_set_new(o, "start_date", j_ts(r->start_date));
    json_object_set_new(o, "end_date", j_ts(r->end_date));
    json_object_set_new(o, "queued_at", j_ts(r->queued_at));
    json_object_set_new(o, "last_scheduling_decision", json_null());
    json_object_set_new(o, "conf", r->conf ? json_deep_copy(r->conf) : json_object());
    json_object_set_new(o, "note", j_str(r->note));
    json_object_set_new(o, "external_trigger", json_boolean(r->run_type == RUN_TYPE_MANUAL));
    return o;
}

json_t *store_ti_to_json(const struct store_ti *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", j_str(t->dag_id));
    json_object_set_new(o, "dag_run_id", j_str(t->run_id));
    json_object_set_new(o, "task_id", j_str(t->task_id));
    json_object_set_new(o, "map_index", json_integer(-1));
    json_object_set_new(
        o, "state", t->state == TI_NONE ? json_null() : json_string(store_ti_state_name(t->state)));
    json_object_set_new(o, "try_number", json_integer(t->try_number));
    json_object_set_new(o, "max_tries", json_integer(t->max_tries));
    json_object_set_new(o, "start_date", j_ts(t->start_date));
    json_object_set_new(o, "end_date", j_ts(t->end_date));
    json_object_set_new(o, "duration",
                        t->start_date != TS_NONE && t->end_date != TS_NONE
                            ? json_real((double)(t->end_date - t->start_date) / 1e6)
                            : json_null());
    json_object_set_new(o, "queued_when", j_ts(t->queued_at));
    json_object_set_new(o, "hostname", json_string(t->hostname ? t->hostname : ""));
    json_object_set_new(o, "pid", t->pid ? json_integer(t->pid) : json_null());
    json_object_set_new(o, "pool", json_string(t->pool ? t->pool : "default_pool"));
    json_object_set_new(o, "pool_slots", json_integer(1));
    json_object_set_new(o, "note", j_str(t->note));
    return o;
}

json_t *store_dag_to_json(const struct store_dag *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", j_str(d->dag_id));
    json_object_set_new(o, "dag_display_name", j_str(d->dag_id));
    json_object_set_new(o, "description",
                        d->description && *d->description ? j_str(d->description) : json_null());
    json_object_set_new(o, "fileloc", j_str(d->fileloc));
    json_object_set_new(o, "is_paused", json_boolean(d->is_paused));
    json_object_set_new(o, "is_active", json_boolean(d->is_active));
    json_object_set_new(o, "is_subdag", json_false());
    json_object_set_new(o, "root_dag_id", json_null());
    json_object_set_new(o, "owners", json_array());
    json_t *tags = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(d->tags, i, v) {
        if (!json_is_string(v))
            continue;
        json_t *t = json_object();
        json_object_set_new(t, "name", json_copy(v));
        json_array_append_new(tags, t);
    }
    json_object_set_new(o, "tags", tags);
    if (d->schedule) {
        json_t *si = json_object();
        json_object_set_new(si, "__type", json_string("CronExpression"));
        json_object_set_new(si, "value", j_str(d->schedule));
        json_object_set_new(o, "schedule_interval", si);
        json_object_set_new(o, "timetable_description", j_str(d->schedule));
    } else {
        json_object_set_new(o, "schedule_interval", json_null());
        json_object_set_new(o, "timetable_description",
                            json_string("Never, external triggers only"));
    }
    json_object_set_new(o, "timezone", j_str(d->timezone));
    json_object_set_new(o, "next_dagrun", j_ts(d->next_dagrun));
    json_object_set_new(o, "next_dagrun_create_after", j_ts(d->next_dagrun_create_after));
    json_object_set_new(o, "last_parsed_time", j_ts(d->last_parsed));
    return o;
}
