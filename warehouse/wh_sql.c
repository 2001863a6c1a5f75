/* warehouse/wh_sql.c - the public API: opening a database, running SQL statements (parsed by
 * libpg_query into its JSON tree), DDL and DML, and results. Each statement runs in its own
 * arena with the database's memory limit; errors unwind to the statement boundary with
 * longjmp (see wh_int.h), after which the arena is freed and the catalog is unchanged. */
#include "warehouse/warehouse.h"

#include <pg_query.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"
#include "warehouse/wh_int.h"

#define MAX_SQL ((size_t)64 << 20)

struct wh_result {
    struct arena *a;
    struct wh_rel *rel;
    const char *tag;
    uint64_t affected;
};

/* ---- query context helpers ---- */

void wh__fail(struct wh_q *q, int code, int loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(q->err, code, fmt, ap);
    va_end(ap);
    if (q->err && loc >= 0 && q->sql) {
        int line = 1, col = 1;
        for (int k = 0; k < loc && q->sql[k]; k++) {
            if (q->sql[k] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(q->err->loc, sizeof q->err->loc, "%d:%d", line, col);
        size_t n = strlen(q->err->msg);
        snprintf(q->err->msg + n, sizeof q->err->msg - n, " at line %d, column %d", line, col);
    }
    longjmp(q->jb, 1);
}

struct big_ref {
    struct wh_db *db;
    void *p;
    size_t size;
};

/* Arena cleanup: the block goes back to the database's cache, or is freed. */
static void big_release(void *arg)
{
    struct big_ref *b = arg;
    struct wh_db *db = b->db;
    if (db->nbig < WH_BIG_CACHE && db->bigbytes + b->size <= WH_BIG_CACHE_BYTES) {
        db->big[db->nbig].p = b->p;
        db->big[db->nbig++].size = b->size;
        db->bigbytes += b->size;
    } else {
        free(b->p);
    }
    free(b);
}

void wh__big_cache_clear(struct wh_db *db)
{
    for (size_t k = 0; k < db->nbig; k++)
        free(db->big[k].p);
    db->nbig = 0;
    db->bigbytes = 0;
}

/* A large block: the smallest cached one that fits (and wastes at most half), else a new
 * one; released to the cache with the statement's arena. Called with the arena lock held. */
static void *big_alloc(struct wh_q *q, size_t n)
{
    struct wh_db *db = q->db;
    if (arena_used(q->a) + *q->big_used + n > db->mem_limit)
        return NULL;
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < db->nbig; k++)
        if (db->big[k].size >= n && db->big[k].size / 2 <= n &&
            (best == SIZE_MAX || db->big[k].size < db->big[best].size))
            best = k;
    struct big_ref *b = xmalloc(sizeof *b);
    b->db = db;
    if (best != SIZE_MAX) {
        b->p = db->big[best].p;
        b->size = db->big[best].size;
        db->bigbytes -= b->size;
        db->big[best] = db->big[--db->nbig];
    } else {
        b->size = (n + 65535) & ~(size_t)65535;
        b->p = xmalloc(b->size);
    }
    if (arena_on_reset(q->a, big_release, b) < 0) {
        free(b->p);
        free(b);
        return NULL;
    }
    *q->big_used += b->size;
    return b->p;
}

void *wh__alloc(struct wh_q *q, size_t n)
{
    void *p;
    bool big = n >= WH_BIG_MIN && q->big_used && !q->no_big;
    if (q->amu)
        pthread_mutex_lock(q->amu);
    if (big)
        p = big_alloc(q, n);
    else if (q->big_used && arena_used(q->a) + *q->big_used + n > q->db->mem_limit)
        p = NULL;
    else
        p = arena_alloc(q->a, n ? n : 1);
    if (q->amu)
        pthread_mutex_unlock(q->amu);
    if (!p)
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit of %zu bytes exceeded", q->db->mem_limit);
    return p;
}

void *wh__calloc(struct wh_q *q, size_t n, size_t sz)
{
    if (sz && n > SIZE_MAX / sz)
        wh__fail(q, WEIR_ETOOBIG, -1, "allocation too large");
    void *p = wh__alloc(q, n * sz);
    memset(p, 0, n * sz > 0 ? n * sz : 1);
    return p;
}

char *wh__strdup(struct wh_q *q, const char *s)
{
    return wh__strndup(q, s, strlen(s));
}

char *wh__strndup(struct wh_q *q, const char *s, size_t n)
{
    char *p = wh__alloc(q, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static void decref_cb(void *p)
{
    json_decref(p);
}

void wh__hold_json(struct wh_q *q, json_t *j)
{
    if (!j)
        wh__fail(q, WEIR_EINTERNAL, -1, "cannot build a parse tree");
    if (q->amu)
        pthread_mutex_lock(q->amu);
    int rc = arena_on_reset(q->a, decref_cb, j);
    if (q->amu)
        pthread_mutex_unlock(q->amu);
    if (rc < 0) {
        json_decref(j);
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    }
}

/* ---- open / close ---- */

int wh_open(const char *dir, struct wh_db **out, struct weir_err *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return err_set(err, WEIR_EINVAL, "no database folder given");
    struct wh_db *db = xcalloc(1, sizeof *db);
    db->dir = xstrdup(dir);
    db->mem_limit = WH_DEFAULT_MEM;
    db->threads = wh__default_threads();
    db->lock_fd = -1;
    db->lock_timeout_ms = WH_LOCK_TIMEOUT_MS;
    int rc = wh__db_init(db, err);
    if (rc == 0)
        rc = wh__lock_open(db, err);
    if (rc < 0) {
        wh_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void wh_close(struct wh_db *db)
{
    if (!db)
        return;
    if (db->in_txn)
        wh__txn_rollback(db); /* an open transaction never commits implicitly */
    wh__lock_close(db);
    wh__catalog_clear(db);
    wh__pool_free(db->pool);
    wh__dict_cache_clear(db);
    wh__big_cache_clear(db);
    free(db->verified);
    free(db->dir);
    free(db);
}

void wh_set_mem_limit(struct wh_db *db, size_t bytes)
{
    db->mem_limit = bytes ? bytes : WH_DEFAULT_MEM;
}

void wh_set_threads(struct wh_db *db, int threads)
{
    if (threads <= 0)
        threads = wh__default_threads();
    db->threads = threads > WH_MAX_THREADS ? WH_MAX_THREADS : threads;
}

int wh_threads(const struct wh_db *db)
{
    return db->threads;
}

void wh_set_lock_timeout(struct wh_db *db, int64_t ms)
{
    db->lock_timeout_ms = ms < 0 ? WH_LOCK_TIMEOUT_MS : ms;
}

int64_t wh_lock_timeout(const struct wh_db *db)
{
    return db->lock_timeout_ms;
}

struct wh_pool *wh__db_pool(struct wh_db *db)
{
    if (db->pool && wh__pool_size(db->pool) != db->threads) {
        wh__pool_free(db->pool);
        db->pool = NULL;
    }
    if (!db->pool && db->threads > 1)
        db->pool = wh__pool_new(db->threads);
    return db->pool;
}

/* ---- statements ---- */

struct wh_table *wh__rangevar_table(struct wh_q *q, json_t *rv, bool missing_ok)
{
    const char *schema = json_string_value(json_object_get(rv, "schemaname"));
    const char *name = json_string_value(json_object_get(rv, "relname"));
    int loc = (int)json_integer_value(json_object_get(rv, "location"));
    struct wh_table *t = wh__table_find(q->db, schema ? schema : "public", name);
    if (!t && !missing_ok)
        wh__fail(q, WEIR_ENOTFOUND, loc, "relation \"%s%s%s\" does not exist", schema ? schema : "",
                 schema ? "." : "", name);
    return t;
}

struct wh_vec *wh__conform(struct wh_q *q, const struct wh_vec *v, const struct wh_coldef *cd,
                           int loc)
{
    struct wh_vec *o = wh__cast(q, v, cd->type, cd->scale, loc);
    int64_t lim = cd->type == WH_T_NUMERIC && cd->typmod > 0 ? wh__pow10(cd->typmod) : 0;
    for (size_t r = 0; r < o->n; r++) {
        if (o->nul[r]) {
            if (cd->notnull)
                wh__fail(q, WEIR_EINVAL, loc,
                         "null value in column \"%s\" violates not-null constraint", cd->name);
            continue;
        }
        if (lim && (o->i[r] >= lim || o->i[r] <= -lim))
            wh__fail(q, WEIR_EINVAL, loc, "numeric field overflow: column \"%s\" is numeric(%d,%d)",
                     cd->name, cd->typmod, cd->scale);
        if (cd->type == WH_T_TEXT && cd->typmod > 0) {
            size_t chars = 0;
            for (const char *p = o->s[r]; *p; p++)
                chars += (*p & 0xC0) != 0x80;
            if (chars > (size_t)cd->typmod)
                wh__fail(q, WEIR_EINVAL, loc, "value too long for type character varying(%d)",
                         cd->typmod);
        }
    }
    return o;
}

static void result_set(struct wh_result *res, const char *tag, uint64_t n)
{
    res->tag = tag;
    res->affected = n;
}

/* ---- table layout: WITH (order_by = 'a, b', partition_by = 'expr') ---- */

/* The columns of t's sort key; fails when one is missing. Returns their number. */
static int layout_keys(struct wh_q *q, const struct wh_table *t, int *cols, int loc)
{
    int n = 0;
    const char *p = t->order_by;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && e[-1] == ' ')
            e--;
        if (e == s)
            continue;
        int c = -1;
        for (int k = 0; k < t->ncols; k++)
            if (strlen(t->cols[k].name) == (size_t)(e - s) &&
                !strncmp(t->cols[k].name, s, (size_t)(e - s)))
                c = k;
        if (c < 0)
            wh__fail(q, WEIR_EINVAL, loc, "order_by column \"%.*s\" does not exist in \"%s\"",
                     (int)(e - s), s, t->name);
        if (n >= WH_MAX_COLS)
            wh__fail(q, WEIR_EINVAL, loc, "order_by has too many columns");
        cols[n++] = c;
    }
    return n;
}

static bool has_key(json_t *j, const char *key)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (!strcmp(k, key) || has_key(v, key))
                return true;
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if (has_key(v, key))
                return true;
        }
    }
    return false;
}

/* Binds t's partition expression over `rel`, whose columns are t's. */
static struct wh_expr *layout_expr(struct wh_q *q, const struct wh_table *t,
                                   const struct wh_rel *rel, int loc)
{
    char *sql = arena_printf(q->a, "SELECT %s", t->partition_by);
    if (!sql)
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    PgQueryParseResult pr = pg_query_parse(sql);
    if (pr.error) {
        pg_query_free_parse_result(pr);
        wh__fail(q, WEIR_EINVAL, loc, "partition_by \"%s\" is not an expression", t->partition_by);
    }
    json_t *tree = json_loads(pr.parse_tree, 0, NULL);
    pg_query_free_parse_result(pr);
    wh__hold_json(q, tree);
    json_t *stmts = json_object_get(tree, "stmts");
    json_t *sel = json_object_get(json_object_get(json_array_get(stmts, 0), "stmt"), "SelectStmt");
    json_t *tl = json_object_get(sel, "targetList");
    if (json_array_size(stmts) != 1 || !sel || json_array_size(tl) != 1 ||
        json_object_size(sel) != 3) /* targetList, limitOption, op */
        wh__fail(q, WEIR_EINVAL, loc, "partition_by \"%s\" must be one expression",
                 t->partition_by);
    json_t *val = json_object_get(json_object_get(json_array_get(tl, 0), "ResTarget"), "val");
    if (has_key(val, "SubLink") || has_key(val, "over"))
        wh__fail(q, WEIR_EINVAL, loc, "partition_by cannot hold subqueries or window functions");
    struct wh_rel *r = wh__rel_new(q, t->ncols, rel->n);
    for (int c = 0; c < t->ncols; c++) {
        r->cols[c] = rel->cols[c];
        r->names[c] = t->cols[c].name;
    }
    /* The expression is parsed from its own text: positions point into it, not into the
     * statement, so errors carry none. */
    const char *saved = q->sql;
    q->sql = NULL;
    struct wh_bind bc = { .rel = r, .agg_where = "partition_by" };
    struct wh_expr *e = wh__bind(q, &bc, val);
    q->sql = saved;
    return e;
}

void wh__layout_check(struct wh_q *q, const struct wh_table *t, int loc)
{
    int *cols = wh__calloc(q, (size_t)t->ncols + WH_MAX_COLS + 1, sizeof *cols);
    if (t->order_by && layout_keys(q, t, cols, loc) == 0)
        wh__fail(q, WEIR_EINVAL, loc, "order_by names no column");
    if (!t->partition_by)
        return;
    /* Bind over zero rows of the right types: names and types are checked. */
    struct wh_rel *r = wh__rel_new(q, t->ncols, 0);
    for (int c = 0; c < t->ncols; c++)
        r->cols[c] = wh__vec_new(q, t->cols[c].type, t->cols[c].scale, 0);
    struct wh_expr *e = layout_expr(q, t, r, loc);
    if (e->type == WH_T_INTERVAL)
        wh__fail(q, WEIR_EINVAL, loc, "partition_by cannot be an interval");
}

struct wh_rel *wh__layout_sort(struct wh_q *q, const struct wh_table *t, const struct wh_rel *rel)
{
    if (!t->order_by || rel->n < 2)
        return (struct wh_rel *)rel;
    int *cols = wh__calloc(q, (size_t)WH_MAX_COLS + 1, sizeof *cols);
    int nk = layout_keys(q, t, cols, -1);
    struct wh_vec **keys = wh__calloc(q, (size_t)nk + 1, sizeof *keys);
    bool *desc = wh__calloc(q, (size_t)nk + 1, sizeof *desc);
    bool *nfirst = wh__calloc(q, (size_t)nk + 1, sizeof *nfirst);
    for (int k = 0; k < nk; k++)
        keys[k] = rel->cols[cols[k]];
    uint32_t *perm = wh__sort_perm(q, keys, nk, desc, nfirst, rel->n);
    return wh__rel_gather(q, rel, perm, rel->n);
}

void wh__layout_hash(struct wh_q *q, const struct wh_table *t, const struct wh_rel *rel,
                     uint64_t *h)
{
    struct wh_rel *r = wh__rel_new(q, t->ncols, rel->n);
    for (int c = 0; c < t->ncols; c++) {
        r->cols[c] = rel->cols[c];
        r->names[c] = t->cols[c].name;
    }
    struct wh_vec *v = wh__eval_par(q, layout_expr(q, t, rel, -1), r);
    for (size_t i = 0; i < rel->n; i++)
        h[i] = wh__hash_row(v, i, 0x5eed) | 1; /* never 0: that is "no partition" */
}

/* Reads WITH (order_by = '...', partition_by = '...') storage options. */
static void layout_options(struct wh_q *q, json_t *opts, const char **order_by,
                           const char **partition_by)
{
    size_t i;
    json_t *o;
    *order_by = *partition_by = NULL;
    json_array_foreach(opts, i, o) {
        json_t *de = json_object_get(o, "DefElem");
        const char *name = json_string_value(json_object_get(de, "defname"));
        const char *val = json_string_value(
            json_object_get(json_object_get(json_object_get(de, "arg"), "String"), "sval"));
        int loc = wh__loc(o);
        if (!name || json_object_get(de, "defnamespace"))
            wh__fail(q, WEIR_EINVAL, loc, "unsupported CREATE TABLE option");
        if (strcmp(name, "order_by") && strcmp(name, "partition_by"))
            wh__fail(q, WEIR_EINVAL, loc,
                     "CREATE TABLE option \"%s\" is not supported (only order_by and "
                     "partition_by)",
                     name);
        if (!val || !*val)
            wh__fail(q, WEIR_EINVAL, loc, "%s needs a string value, as in %s = 'col'", name, name);
        if (strlen(val) > 1000)
            wh__fail(q, WEIR_ETOOBIG, loc, "%s is longer than 1000 bytes", name);
        *(name[0] == 'o' ? order_by : partition_by) = val;
    }
}

static void create_table(struct wh_q *q, json_t *b, struct wh_result *res)
{
    static const char *const ok[] = { "relation",      "tableElts", "oncommit",
                                      "if_not_exists", "options",   NULL };
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        bool good = false;
        for (const char *const *a = ok; *a; a++)
            good |= !strcmp(*a, k);
        if (!good)
            wh__fail(q, WEIR_EINVAL, -1, "CREATE TABLE option %s is not supported", k);
    }
    json_t *rv = json_object_get(b, "relation");
    const char *schema = json_string_value(json_object_get(rv, "schemaname"));
    const char *name = json_string_value(json_object_get(rv, "relname"));
    int loc = (int)json_integer_value(json_object_get(rv, "location"));
    if (json_is_true(json_object_get(b, "if_not_exists")) &&
        wh__table_find(q->db, schema ? schema : "public", name)) {
        result_set(res, "CREATE TABLE", 0);
        return;
    }
    json_t *elts = json_object_get(b, "tableElts");
    int n = (int)json_array_size(elts);
    struct wh_coldef *cols = wh__calloc(q, (size_t)n + 1, sizeof *cols);
    for (int c = 0; c < n; c++) {
        json_t *e = json_array_get(elts, (size_t)c);
        json_t *cd = json_object_get(e, "ColumnDef");
        if (!cd)
            wh__fail(q, WEIR_EINVAL, wh__loc(e), "table constraint %s is not supported",
                     wh__node_type(e));
        cols[c].name = (char *)json_string_value(json_object_get(cd, "colname"));
        for (int p = 0; p < c; p++)
            if (!strcmp(cols[p].name, cols[c].name))
                wh__fail(q, WEIR_ECONFLICT, wh__loc(e), "column \"%s\" specified more than once",
                         cols[c].name);
        wh__typename(q, json_object_get(cd, "typeName"), &cols[c].type, &cols[c].scale,
                     &cols[c].typmod);
        size_t i;
        json_t *con;
        json_array_foreach(json_object_get(cd, "constraints"), i, con) {
            json_t *cb = json_object_get(con, "Constraint");
            const char *ct = json_string_value(json_object_get(cb, "contype"));
            if (ct && !strcmp(ct, "CONSTR_NOTNULL"))
                cols[c].notnull = true;
            else if (!ct || strcmp(ct, "CONSTR_NULL"))
                wh__fail(q, WEIR_EINVAL, wh__loc(con), "column constraint %s is not supported",
                         ct ? ct : "?");
        }
    }
    const char *ob, *pb;
    layout_options(q, json_object_get(b, "options"), &ob, &pb);
    struct wh_table lt = { .name = (char *)name,
                           .ncols = n,
                           .cols = cols,
                           .order_by = (char *)ob,
                           .partition_by = (char *)pb };
    wh__layout_check(q, &lt, loc);
    wh__table_create(q, schema ? schema : "public", name, cols, n, ob, pb, loc);
    result_set(res, "CREATE TABLE", 0);
}

static uint64_t insert_rel(struct wh_q *q, struct wh_table *t, struct wh_rel *src, json_t *cols,
                           int loc)
{
    int ncols = json_array_size(cols) ? (int)json_array_size(cols) : t->ncols;
    if (src->ncols > ncols)
        wh__fail(q, WEIR_EINVAL, loc, "INSERT has more expressions than target columns");
    if (src->ncols < ncols && json_array_size(cols))
        wh__fail(q, WEIR_EINVAL, loc, "INSERT has more target columns than expressions");
    int *map = wh__calloc(q, (size_t)t->ncols, sizeof *map);
    for (int c = 0; c < t->ncols; c++)
        map[c] = -1;
    for (int k = 0; k < src->ncols; k++) {
        int c = k;
        if (json_array_size(cols)) {
            json_t *rt = json_object_get(json_array_get(cols, (size_t)k), "ResTarget");
            const char *nm = json_string_value(json_object_get(rt, "name"));
            c = -1;
            for (int j = 0; j < t->ncols; j++)
                if (!strcmp(t->cols[j].name, nm))
                    c = j;
            if (c < 0)
                wh__fail(q, WEIR_ENOTFOUND,
                         (int)json_integer_value(json_object_get(rt, "location")),
                         "column \"%s\" of relation \"%s\" does not exist", nm, t->name);
            if (map[c] >= 0)
                wh__fail(q, WEIR_EINVAL, loc, "column \"%s\" specified more than once", nm);
        }
        map[c] = k;
    }
    struct wh_rel *rel = wh__rel_new(q, t->ncols, src->n);
    for (int c = 0; c < t->ncols; c++) {
        struct wh_vec *v;
        if (map[c] < 0) {
            v = wh__vec_new(q, t->cols[c].type, t->cols[c].scale, src->n);
            memset(v->nul, 1, src->n);
        } else {
            v = src->cols[map[c]];
        }
        rel->cols[c] = wh__conform(q, v, &t->cols[c], loc);
        rel->names[c] = t->cols[c].name;
    }
    wh__table_append(q, t, rel);
    return src->n;
}

static void insert_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    if (json_object_get(b, "onConflictClause") ||
        json_array_size(json_object_get(b, "returningList")))
        wh__fail(q, WEIR_EINVAL, -1, "INSERT ... ON CONFLICT / RETURNING is not supported");
    if (json_object_get(b, "withClause"))
        wh__fail(q, WEIR_EINVAL, -1, "WITH before INSERT is not supported; put it in the SELECT");
    json_t *rv = json_object_get(b, "relation");
    struct wh_table *t = wh__rangevar_table(q, rv, false);
    json_t *sel = json_object_get(json_object_get(b, "selectStmt"), "SelectStmt");
    if (!sel)
        wh__fail(q, WEIR_EINVAL, -1, "INSERT ... DEFAULT VALUES is not supported");
    struct wh_rel *src = wh__select(q, sel);
    uint64_t n = insert_rel(q, t, src, json_object_get(b, "cols"),
                            (int)json_integer_value(json_object_get(rv, "location")));
    result_set(res, "INSERT", n);
}

static struct wh_rel *scan_all(struct wh_q *q, struct wh_table *t)
{
    bool *want = wh__calloc(q, (size_t)t->ncols, sizeof *want);
    for (int c = 0; c < t->ncols; c++)
        want[c] = true;
    return wh__table_scan(q, t, want, t->name);
}

static struct wh_vec *where_mask(struct wh_q *q, struct wh_rel *rel, json_t *where)
{
    struct wh_bind bc = { .rel = rel, .agg_where = "WHERE" };
    struct wh_expr *e = wh__bind(q, &bc, where);
    if (e->type != WH_T_BOOL)
        wh__fail(q, WEIR_EINVAL, wh__loc(where), "argument of WHERE must be type boolean");
    return wh__eval(q, e, rel);
}

static void delete_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    if (json_array_size(json_object_get(b, "usingClause")) ||
        json_array_size(json_object_get(b, "returningList")) || json_object_get(b, "withClause"))
        wh__fail(q, WEIR_EINVAL, -1, "DELETE ... USING / RETURNING / WITH is not supported");
    json_t *rv = json_object_get(b, "relation");
    struct wh_table *t = wh__rangevar_table(q, rv, false);
    if (json_object_get(rv, "alias"))
        wh__fail(q, WEIR_EINVAL, -1, "an alias on the DELETE target is not supported");
    struct wh_rel *rel = scan_all(q, t);
    json_t *where = json_object_get(b, "whereClause");
    uint32_t *keep = wh__alloc(q, (rel->n ? rel->n : 1) * sizeof *keep);
    size_t m = 0;
    if (where) {
        struct wh_vec *p = where_mask(q, rel, where);
        for (size_t r = 0; r < rel->n; r++)
            if (p->nul[r] || !p->i[r])
                keep[m++] = (uint32_t)r;
    }
    uint64_t deleted = rel->n - m;
    if (deleted)
        wh__table_replace(q, t, wh__rel_gather(q, rel, keep, m));
    result_set(res, "DELETE", deleted);
}

static void update_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    if (json_array_size(json_object_get(b, "fromClause")) ||
        json_array_size(json_object_get(b, "returningList")) || json_object_get(b, "withClause"))
        wh__fail(q, WEIR_EINVAL, -1, "UPDATE ... FROM / RETURNING / WITH is not supported");
    json_t *rv = json_object_get(b, "relation");
    struct wh_table *t = wh__rangevar_table(q, rv, false);
    struct wh_rel *rel = scan_all(q, t);
    json_t *where = json_object_get(b, "whereClause");
    struct wh_vec *p = where ? where_mask(q, rel, where) : NULL;
    struct wh_rel *nr = wh__rel_new(q, t->ncols, rel->n);
    memcpy(nr->cols, rel->cols, (size_t)t->ncols * sizeof *nr->cols);
    memcpy(nr->names, rel->names, (size_t)t->ncols * sizeof *nr->names);
    struct wh_bind bc = { .rel = rel, .agg_where = "UPDATE" };
    size_t i;
    json_t *tgt;
    json_array_foreach(json_object_get(b, "targetList"), i, tgt) {
        json_t *rt = json_object_get(tgt, "ResTarget");
        const char *nm = json_string_value(json_object_get(rt, "name"));
        int loc = (int)json_integer_value(json_object_get(rt, "location"));
        if (json_array_size(json_object_get(rt, "indirection")))
            wh__fail(q, WEIR_EINVAL, loc, "UPDATE of a sub-field is not supported");
        int c = -1;
        for (int j = 0; j < t->ncols; j++)
            if (!strcmp(t->cols[j].name, nm))
                c = j;
        if (c < 0)
            wh__fail(q, WEIR_ENOTFOUND, loc, "column \"%s\" of relation \"%s\" does not exist", nm,
                     t->name);
        struct wh_vec *v = wh__eval(q, wh__bind(q, &bc, json_object_get(rt, "val")), rel);
        v = wh__cast(q, v, t->cols[c].type, t->cols[c].scale, loc);
        struct wh_vec *o = wh__vec_new(q, t->cols[c].type, t->cols[c].scale, rel->n);
        for (size_t r = 0; r < rel->n; r++) {
            const struct wh_vec *src = !p || (!p->nul[r] && p->i[r]) ? v : rel->cols[c];
            o->nul[r] = src->nul[r];
            if (o->s)
                o->s[r] = src->s[r];
            else if (o->f)
                o->f[r] = src->f[r];
            else
                o->i[r] = src->i[r];
        }
        nr->cols[c] = wh__conform(q, o, &t->cols[c], loc);
    }
    uint64_t n = 0;
    for (size_t r = 0; r < rel->n; r++)
        n += !p || (!p->nul[r] && p->i[r]);
    if (n)
        wh__table_replace(q, t, nr);
    result_set(res, "UPDATE", n);
}

static void drop_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    const char *rt = json_string_value(json_object_get(b, "removeType"));
    bool missing_ok = json_is_true(json_object_get(b, "missing_ok"));
    const char *beh = json_string_value(json_object_get(b, "behavior"));
    bool cascade = beh && !strcmp(beh, "DROP_CASCADE");
    size_t i;
    json_t *obj;
    json_array_foreach(json_object_get(b, "objects"), i, obj) {
        if (!strcmp(rt, "OBJECT_SCHEMA")) {
            const char *s = wh__sval(obj);
            wh__schema_drop(q, s, missing_ok, cascade, -1);
            continue;
        }
        if (strcmp(rt, "OBJECT_TABLE") && strcmp(rt, "OBJECT_VIEW"))
            wh__fail(q, WEIR_EINVAL, -1, "DROP %s is not supported", rt + 7);
        json_t *items = json_object_get(json_object_get(obj, "List"), "items");
        size_t n = json_array_size(items);
        const char *name = wh__sval(json_array_get(items, n - 1));
        const char *schema = n >= 2 ? wh__sval(json_array_get(items, n - 2)) : "public";
        if (!strcmp(rt, "OBJECT_VIEW")) {
            struct wh_view *v = wh__view_find(q->db, schema, name);
            if (!v && wh__table_find(q->db, schema, name))
                wh__fail(q, WEIR_EINVAL, -1, "\"%s\" is not a view", name);
            if (v)
                wh__view_drop(q, v);
            else if (!missing_ok)
                wh__fail(q, WEIR_ENOTFOUND, -1, "view \"%s\" does not exist", name);
            continue;
        }
        if (wh__view_find(q->db, schema, name))
            wh__fail(q, WEIR_EINVAL, -1, "\"%s\" is not a table; use DROP VIEW", name);
        struct wh_table *t = wh__table_find(q->db, schema, name);
        if (!t) {
            if (missing_ok)
                continue;
            wh__fail(q, WEIR_ENOTFOUND, -1, "table \"%s\" does not exist", name);
        }
        wh__table_drop(q, t);
    }
    result_set(res,
               !strcmp(rt, "OBJECT_SCHEMA") ? "DROP SCHEMA"
               : !strcmp(rt, "OBJECT_VIEW") ? "DROP VIEW"
                                            : "DROP TABLE",
               0);
}

static void ctas_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    const char *ot = json_string_value(json_object_get(b, "objtype"));
    if (ot && strcmp(ot, "OBJECT_TABLE"))
        wh__fail(q, WEIR_EINVAL, -1, "CREATE MATERIALIZED VIEW is not supported");
    json_t *into = json_object_get(b, "into");
    json_t *rv = json_object_get(into, "rel");
    const char *schema = json_string_value(json_object_get(rv, "schemaname"));
    const char *name = json_string_value(json_object_get(rv, "relname"));
    int loc = (int)json_integer_value(json_object_get(rv, "location"));
    if (wh__table_find(q->db, schema ? schema : "public", name)) {
        if (json_is_true(json_object_get(b, "if_not_exists"))) {
            result_set(res, "CREATE TABLE AS", 0);
            return;
        }
        wh__fail(q, WEIR_ECONFLICT, loc, "relation \"%s\" already exists", name);
    }
    json_t *sel = json_object_get(json_object_get(b, "query"), "SelectStmt");
    if (!sel)
        wh__fail(q, WEIR_EINVAL, loc, "CREATE TABLE AS needs a SELECT");
    struct wh_rel *src = wh__select(q, sel);
    json_t *cn = json_object_get(into, "colNames");
    struct wh_coldef *cols = wh__calloc(q, (size_t)src->ncols + 1, sizeof *cols);
    for (int c = 0; c < src->ncols; c++) {
        cols[c].name =
            (char *)((size_t)c < json_array_size(cn) ? wh__sval(json_array_get(cn, (size_t)c))
                                                     : src->names[c]);
        cols[c].type = src->cols[c]->type == WH_T_UNKNOWN ? WH_T_TEXT : src->cols[c]->type;
        cols[c].scale = src->cols[c]->scale;
        cols[c].typmod = cols[c].type == WH_T_NUMERIC ? 18 : -1;
        for (int p = 0; p < c; p++)
            if (!strcmp(cols[p].name, cols[c].name))
                wh__fail(q, WEIR_ECONFLICT, loc, "column \"%s\" specified more than once",
                         cols[c].name);
    }
    const char *ob, *pb;
    layout_options(q, json_object_get(into, "options"), &ob, &pb);
    struct wh_table lt = { .name = (char *)name,
                           .ncols = src->ncols,
                           .cols = cols,
                           .order_by = (char *)ob,
                           .partition_by = (char *)pb };
    wh__layout_check(q, &lt, loc);
    wh__table_create(q, schema ? schema : "public", name, cols, src->ncols, ob, pb, loc);
    struct wh_table *t = wh__table_find(q->db, schema ? schema : "public", name);
    uint64_t n = insert_rel(q, t, src, NULL, loc);
    result_set(res, "SELECT", n);
}

static void rename_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    const char *rt = json_string_value(json_object_get(b, "renameType"));
    json_t *rv = json_object_get(b, "relation");
    const char *newname = json_string_value(json_object_get(b, "newname"));
    int loc = (int)json_integer_value(json_object_get(rv, "location"));
    bool missing_ok = json_is_true(json_object_get(b, "missing_ok"));
    struct wh_table *t = wh__rangevar_table(q, rv, missing_ok);
    if (!t) {
        result_set(res, "ALTER TABLE", 0);
        return;
    }
    if (!strcmp(rt, "OBJECT_TABLE")) {
        wh__table_rename(q, t, newname, loc);
    } else if (!strcmp(rt, "OBJECT_COLUMN")) {
        const char *old = json_string_value(json_object_get(b, "subname"));
        struct wh_coldef *cols = wh__calloc(q, (size_t)t->ncols, sizeof *cols);
        int found = -1;
        for (int c = 0; c < t->ncols; c++) {
            cols[c] = t->cols[c];
            if (!strcmp(cols[c].name, newname))
                wh__fail(q, WEIR_ECONFLICT, loc, "column \"%s\" already exists", newname);
            if (!strcmp(cols[c].name, old))
                found = c;
        }
        if (found < 0)
            wh__fail(q, WEIR_ENOTFOUND, loc, "column \"%s\" does not exist", old);
        cols[found].name = (char *)newname;
        wh__table_alter(q, t, cols, t->ncols, NULL);
    } else {
        wh__fail(q, WEIR_EINVAL, loc, "ALTER %s ... RENAME is not supported", rt + 7);
    }
    result_set(res, "ALTER TABLE", 0);
}

/* ADD COLUMN [IF NOT EXISTS] and DROP COLUMN [IF EXISTS]: the table is rewritten as one
 * new part with the new columns (NULLs for an added column), published atomically. */
static void alter_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    json_t *rv = json_object_get(b, "relation");
    int loc = (int)json_integer_value(json_object_get(rv, "location"));
    struct wh_table *t = wh__rangevar_table(q, rv, json_is_true(json_object_get(b, "missing_ok")));
    if (!t) {
        result_set(res, "ALTER TABLE", 0);
        return;
    }
    size_t i;
    json_t *cmd;
    json_array_foreach(json_object_get(b, "cmds"), i, cmd) {
        json_t *cb = json_object_get(cmd, "AlterTableCmd");
        const char *st = json_string_value(json_object_get(cb, "subtype"));
        bool mok = json_is_true(json_object_get(cb, "missing_ok"));
        bool *want = wh__calloc(q, (size_t)t->ncols + 1, sizeof *want);
        for (int c = 0; c < t->ncols; c++)
            want[c] = true;
        struct wh_rel *rel = wh__table_scan(q, t, want, t->name);
        if (!strcmp(st, "AT_AddColumn")) {
            json_t *cd = json_object_get(json_object_get(cb, "def"), "ColumnDef");
            const char *name = json_string_value(json_object_get(cd, "colname"));
            bool exists = false;
            for (int c = 0; c < t->ncols; c++)
                exists |= !strcmp(t->cols[c].name, name);
            if (exists) {
                if (mok)
                    continue;
                wh__fail(q, WEIR_ECONFLICT, loc, "column \"%s\" of relation \"%s\" already exists",
                         name, t->name);
            }
            if (json_array_size(json_object_get(cd, "constraints")))
                wh__fail(q, WEIR_EINVAL, loc, "constraints on ADD COLUMN are not supported");
            if (t->ncols >= WH_MAX_COLS)
                wh__fail(q, WEIR_ETOOBIG, loc, "a table has at most %d columns", WH_MAX_COLS);
            struct wh_coldef *cols = wh__calloc(q, (size_t)t->ncols + 1, sizeof *cols);
            memcpy(cols, t->cols, (size_t)t->ncols * sizeof *cols);
            cols[t->ncols].name = (char *)name;
            wh__typename(q, json_object_get(cd, "typeName"), &cols[t->ncols].type,
                         &cols[t->ncols].scale, &cols[t->ncols].typmod);
            struct wh_rel *nr = wh__rel_new(q, t->ncols + 1, rel->n);
            memcpy(nr->cols, rel->cols, (size_t)t->ncols * sizeof *nr->cols);
            nr->cols[t->ncols] = wh__vec_new(q, cols[t->ncols].type, cols[t->ncols].scale, rel->n);
            memset(nr->cols[t->ncols]->nul, 1, rel->n);
            wh__table_alter(q, t, cols, t->ncols + 1, nr);
        } else if (!strcmp(st, "AT_DropColumn")) {
            const char *name = json_string_value(json_object_get(cb, "name"));
            int found = -1;
            for (int c = 0; c < t->ncols; c++)
                if (!strcmp(t->cols[c].name, name))
                    found = c;
            if (found < 0) {
                if (mok)
                    continue;
                wh__fail(q, WEIR_ENOTFOUND, loc, "column \"%s\" of relation \"%s\" does not exist",
                         name, t->name);
            }
            if (t->ncols == 1)
                wh__fail(q, WEIR_EINVAL, loc, "cannot drop the only column of \"%s\"", t->name);
            struct wh_coldef *cols = wh__calloc(q, (size_t)t->ncols, sizeof *cols);
            struct wh_rel *nr = wh__rel_new(q, t->ncols - 1, rel->n);
            for (int c = 0, k = 0; c < t->ncols; c++)
                if (c != found) {
                    cols[k] = t->cols[c];
                    nr->cols[k++] = rel->cols[c];
                }
            wh__table_alter(q, t, cols, t->ncols - 1, nr);
        } else {
            wh__fail(q, WEIR_EINVAL, loc, "ALTER TABLE %s is not supported", st + 3);
        }
    }
    result_set(res, "ALTER TABLE", 0);
}

/* SET lock_timeout = ms | 'text with a unit' (PostgreSQL's setting: an integer is
 * milliseconds, 0 waits forever). Returns the milliseconds. */
static int64_t lock_timeout_value(struct wh_q *q, json_t *c)
{
    const char *text = NULL;
    char num[64];
    if (json_object_get(c, "ival")) {
        json_t *iv = json_object_get(json_object_get(c, "ival"), "ival");
        /* libpg_query drops 0 and negative integers from its JSON: look for a minus sign
         * in the text (before any `--` comment). */
        for (size_t k = 0; !iv && k < q->stmt_len && q->stmt_text[k] != '\n'; k++) {
            if (q->stmt_text[k] == '-' && k + 1 < q->stmt_len && q->stmt_text[k + 1] == '-')
                break;
            if (q->stmt_text[k] == '-')
                wh__fail(q, WEIR_EINVAL, -1, "lock_timeout must not be negative");
        }
        snprintf(num, sizeof num, "%lld", iv ? (long long)json_integer_value(iv) : 0LL);
        text = num;
    } else if (json_object_get(c, "fval")) {
        text = json_string_value(json_object_get(json_object_get(c, "fval"), "fval"));
    } else if (json_object_get(c, "sval")) {
        text = json_string_value(json_object_get(json_object_get(c, "sval"), "sval"));
    }
    if (!text)
        wh__fail(q, WEIR_EINVAL, -1, "SET lock_timeout needs milliseconds or a time such as '30s'");
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text)
        wh__fail(q, WEIR_EINVAL, -1, "invalid value for lock_timeout: \"%s\"", text);
    while (*end == ' ')
        end++;
    double scale = 0;
    static const struct {
        const char *unit;
        double ms;
    } units[] = { { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "min", 60000 }, { "h", 3600000 } };
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (!strcmp(end, units[k].unit))
            scale = units[k].ms;
    if (scale == 0)
        wh__fail(q, WEIR_EINVAL, -1,
                 "invalid unit in lock_timeout \"%s\" (valid units: ms, s, min, h)", text);
    v *= scale;
    if (!(v >= 0) || v > 2147483647.0)
        wh__fail(q, WEIR_EINVAL, -1, "lock_timeout must be between 0 and 2147483647 ms");
    return (int64_t)(v + 0.5);
}

/* SET threads = n | TO DEFAULT, RESET threads; SET lock_timeout likewise. */
static void set_stmt(struct wh_q *q, json_t *b, struct wh_result *res)
{
    const char *kind = json_string_value(json_object_get(b, "kind"));
    const char *name = json_string_value(json_object_get(b, "name"));
    bool dflt = !strcmp(kind, "VAR_SET_DEFAULT") || !strcmp(kind, "VAR_RESET");
    json_t *args = json_object_get(b, "args");
    json_t *c = json_object_get(json_array_get(args, 0), "A_Const");
    if (name && !strcmp(name, "lock_timeout")) {
        if (dflt)
            wh_set_lock_timeout(q->db, -1);
        else if (!strcmp(kind, "VAR_SET_VALUE") && json_array_size(args) == 1 && c &&
                 !json_object_get(c, "isnull"))
            wh_set_lock_timeout(q->db, lock_timeout_value(q, c));
        else
            wh__fail(q, WEIR_EINVAL, -1,
                     "SET lock_timeout needs milliseconds or a time such as '30s'");
        result_set(res, "SET", 0);
        return;
    }
    if (!name || strcmp(name, "threads"))
        wh__fail(q, WEIR_EINVAL, -1,
                 "unknown setting '%s' (only 'threads' and 'lock_timeout' can be SET)",
                 name ? name : "");
    if (dflt) {
        wh_set_threads(q->db, 0);
    } else {
        json_t *iv = json_object_get(json_object_get(c, "ival"), "ival");
        if (!strcmp(kind, "VAR_SET_VALUE") && json_array_size(args) == 1 && c &&
            json_object_get(c, "ival") && !json_object_get(c, "isnull")) {
            /* libpg_query drops integer 0 (and negatives) from its JSON: both mean default. */
            long long n = iv ? json_integer_value(iv) : 0;
            if (n > WH_MAX_THREADS)
                wh__fail(q, WEIR_EINVAL, -1, "threads must be between 0 and %d", WH_MAX_THREADS);
            wh_set_threads(q->db, (int)n);
        } else {
            wh__fail(q, WEIR_EINVAL, -1, "SET threads needs an integer (0 for the default)");
        }
    }
    result_set(res, "SET", 0);
}

static void run_stmt(struct wh_q *q, json_t *stmt, struct wh_result *res)
{
    const char *ty = wh__node_type(stmt);
    json_t *b = wh__node_body(stmt);
    static const char *const ddl[] = { "CreateStmt",        "CreateSchemaStmt", "DropStmt",
                                       "CreateTableAsStmt", "ViewStmt",         "RenameStmt",
                                       "AlterTableStmt",    "VacuumStmt" };
    for (size_t k = 0; q->db->in_txn && k < sizeof ddl / sizeof ddl[0]; k++)
        if (!strcmp(ty, ddl[k]))
            wh__fail(q, WEIR_EINVAL, -1,
                     "DDL inside a transaction is not supported; COMMIT or ROLLBACK first");
    if (!strcmp(ty, "SelectStmt")) {
        res->rel = wh__select(q, b);
        result_set(res, "SELECT", res->rel->n);
    } else if (!strcmp(ty, "CreateStmt")) {
        create_table(q, b, res);
    } else if (!strcmp(ty, "CreateSchemaStmt")) {
        if (json_array_size(json_object_get(b, "schemaElts")) || json_object_get(b, "authrole"))
            wh__fail(q, WEIR_EINVAL, -1,
                     "CREATE SCHEMA with elements or AUTHORIZATION is not "
                     "supported");
        wh__schema_create(q, json_string_value(json_object_get(b, "schemaname")),
                          json_is_true(json_object_get(b, "if_not_exists")), -1);
        result_set(res, "CREATE SCHEMA", 0);
    } else if (!strcmp(ty, "DropStmt")) {
        drop_stmt(q, b, res);
    } else if (!strcmp(ty, "InsertStmt")) {
        insert_stmt(q, b, res);
    } else if (!strcmp(ty, "DeleteStmt")) {
        delete_stmt(q, b, res);
    } else if (!strcmp(ty, "UpdateStmt")) {
        update_stmt(q, b, res);
    } else if (!strcmp(ty, "CreateTableAsStmt")) {
        ctas_stmt(q, b, res);
    } else if (!strcmp(ty, "TruncateStmt")) {
        size_t i;
        json_t *rv;
        json_array_foreach(json_object_get(b, "relations"), i, rv) {
            struct wh_table *t = wh__rangevar_table(q, json_object_get(rv, "RangeVar"), false);
            wh__table_replace(q, t, NULL);
        }
        result_set(res, "TRUNCATE TABLE", 0);
    } else if (!strcmp(ty, "CopyStmt")) {
        result_set(res, "COPY", wh__copy(q, b));
    } else if (!strcmp(ty, "ViewStmt")) {
        json_t *rv = json_object_get(b, "view");
        const char *schema = json_string_value(json_object_get(rv, "schemaname"));
        const char *name = json_string_value(json_object_get(rv, "relname"));
        const char *opt = json_string_value(json_object_get(b, "withCheckOption"));
        if (json_array_size(json_object_get(b, "options")) ||
            (opt && strcmp(opt, "NO_CHECK_OPTION")))
            wh__fail(q, WEIR_EINVAL, -1, "CREATE VIEW options are not supported");
        if (!json_object_get(json_object_get(b, "query"), "SelectStmt"))
            wh__fail(q, WEIR_EINVAL, -1, "a view needs a SELECT");
        char *text = wh__strndup(q, q->stmt_text, q->stmt_len);
        wh__view_create(q, schema ? schema : "public", name, text,
                        json_is_true(json_object_get(b, "replace")),
                        (int)json_integer_value(json_object_get(rv, "location")));
        result_set(res, "CREATE VIEW", 0);
    } else if (!strcmp(ty, "VacuumStmt")) {
        size_t i;
        json_t *vr;
        json_t *rels = json_object_get(b, "rels");
        if (!json_array_size(rels))
            for (size_t k = 0; k < q->db->ntables; k++)
                wh__table_optimize(q, q->db->tables[k], true);
        json_array_foreach(rels, i, vr) {
            json_t *rv = json_object_get(json_object_get(vr, "VacuumRelation"), "relation");
            wh__table_optimize(q, wh__rangevar_table(q, rv, false), true);
        }
        result_set(res, "VACUUM", 0);
    } else if (!strcmp(ty, "RenameStmt")) {
        rename_stmt(q, b, res);
    } else if (!strcmp(ty, "AlterTableStmt")) {
        alter_stmt(q, b, res);
    } else if (!strcmp(ty, "VariableSetStmt")) {
        set_stmt(q, b, res);
    } else if (!strcmp(ty, "TransactionStmt")) {
        const char *kind = json_string_value(json_object_get(b, "kind"));
        if (!strcmp(kind, "TRANS_STMT_BEGIN") || !strcmp(kind, "TRANS_STMT_START")) {
            q->db->in_txn = true; /* BEGIN inside a transaction: a no-op, as in PostgreSQL */
            result_set(res, "BEGIN", 0);
        } else if (!strcmp(kind, "TRANS_STMT_COMMIT")) {
            wh__txn_commit(q);
            result_set(res, "COMMIT", 0);
        } else if (!strcmp(kind, "TRANS_STMT_ROLLBACK")) {
            wh__txn_rollback(q->db);
            result_set(res, "ROLLBACK", 0);
        } else {
            wh__fail(q, WEIR_EINVAL, -1, "%s is not supported (only BEGIN, COMMIT, ROLLBACK)",
                     kind + 11);
        }
    } else {
        static const struct {
            const char *node, *what;
        } names[] = { { "ViewStmt", "CREATE VIEW" },        { "AlterTableStmt", "ALTER TABLE" },
                      { "RenameStmt", "ALTER ... RENAME" }, { "ExplainStmt", "EXPLAIN" },
                      { "VariableSetStmt", "SET" },         { "IndexStmt", "CREATE INDEX" } };
        const char *what = ty;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (!strcmp(names[k].node, ty))
                what = names[k].what;
        wh__fail(q, WEIR_EINVAL, -1, "statement %s is not supported", what);
    }
}

/* Copies the result relation into its own small arena so the statement's working memory
 * can be released. */
static struct wh_rel *copy_out(struct wh_q *q, const struct wh_rel *r)
{
    struct wh_rel *o = wh__rel_new(q, r->ncols, r->n);
    for (int c = 0; c < r->ncols; c++) {
        const struct wh_vec *v = r->cols[c];
        struct wh_vec *w =
            wh__vec_new(q, v->type == WH_T_UNKNOWN ? WH_T_TEXT : v->type, v->scale, r->n);
        memcpy(w->nul, v->nul, r->n);
        for (size_t i = 0; i < r->n; i++) {
            if (w->s)
                w->s[i] = v->nul[i] || !v->s ? NULL : wh__strdup(q, v->s[i]);
            else if (w->f)
                w->f[i] = v->f[i];
            else
                w->i[i] = v->i ? v->i[i] : 0;
            if (w->m)
                w->m[i] = v->m ? v->m[i] : 0;
        }
        o->cols[c] = w;
        o->names[c] = wh__strdup(q, r->names[c] ? r->names[c] : "?column?");
    }
    return o;
}

/* The lock a statement takes outside a transaction (see wh_lock.c): none for SET and for
 * COMMIT or ROLLBACK without a transaction, shared for one that only reads, exclusive for
 * everything else, BEGIN included (held until COMMIT or ROLLBACK). */
static int stmt_lock(json_t *stmt)
{
    const char *ty = wh__node_type(stmt);
    json_t *b = wh__node_body(stmt);
    if (!strcmp(ty, "VariableSetStmt"))
        return 0;
    if (!strcmp(ty, "TransactionStmt")) {
        const char *kind = json_string_value(json_object_get(b, "kind"));
        return kind && (!strcmp(kind, "TRANS_STMT_BEGIN") || !strcmp(kind, "TRANS_STMT_START"))
                   ? WH_LOCK_EX
                   : 0;
    }
    if (!strcmp(ty, "SelectStmt") ||
        (!strcmp(ty, "CopyStmt") && !json_is_true(json_object_get(b, "is_from"))))
        return WH_LOCK_SH;
    return WH_LOCK_EX;
}

static int exec_one(struct wh_db *db, json_t *stmt, const char *sql, size_t off, size_t len,
                    struct wh_result **out, struct weir_err *err)
{
    int lk = db->in_txn ? 0 : stmt_lock(stmt);
    if (lk) {
        int lrc = wh__lock(db, lk == WH_LOCK_EX, err);
        if (lrc < 0)
            return lrc;
    }
    struct wh_q q;
    memset(&q, 0, sizeof q);
    q.db = db;
    q.err = err;
    q.sql = sql;
    q.stmt_text = sql + off;
    q.stmt_len = len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    q.now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    q.a = arena_new(db->mem_limit);
    size_t big_used = 0;
    q.big_used = &big_used;
    struct wh_result *res = xcalloc(1, sizeof *res);
    struct arena *ra = NULL;
    volatile int rc = 0;
    if (setjmp(q.jb)) {
        rc = err ? -err->code : -WEIR_EINVAL;
        if (rc == 0)
            rc = -WEIR_EINTERNAL;
        if (db->in_txn) {
            /* A failed statement aborts the whole transaction. */
            wh__txn_rollback(db);
            if (err) {
                size_t n = strlen(err->msg);
                snprintf(err->msg + n, sizeof err->msg - n, " (transaction rolled back)");
            }
        }
        goto out;
    }
    run_stmt(&q, stmt, res);
    if (out) {
        struct arena *qa = q.a;
        ra = arena_new(db->mem_limit);
        q.a = ra;
        q.no_big = true; /* the result may outlive the database handle */
        struct wh_rel *rel = res->rel ? res->rel : wh__rel_new(&q, 0, 0);
        res->rel = copy_out(&q, rel);
        q.a = qa;
        res->a = ra;
        ra = NULL;
        *out = res;
        res = NULL;
    }
out:
    if (db->lock_held && !db->in_txn)
        wh__unlock(db, rc == 0);
    arena_free(q.a);
    arena_free(ra);
    if (res) {
        arena_free(res->a);
        free(res);
    }
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses `sql` and runs its statements; the last result goes to `out`, every result to
 * `fn`. */
static int exec_all(struct wh_db *db, const char *sql, struct wh_result **out, wh_each_fn fn,
                    void *arg, struct weir_err *err)
{
    if (out)
        *out = NULL;
    if (strlen(sql) > MAX_SQL)
        return err_set(err, WEIR_ETOOBIG, "SQL text longer than %zu bytes", MAX_SQL);
    /* OPTIMIZE TABLE t (ClickHouse's spelling) is VACUUM t, which PostgreSQL's grammar
     * knows: rewrite it before parsing. */
    char *rewritten = NULL;
    const char *p = sql;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (!strncasecmp(p, "optimize", 8) && (p[8] == ' ' || p[8] == '\t' || p[8] == '\n')) {
        const char *r = p + 8;
        while (*r == ' ' || *r == '\t' || *r == '\n')
            r++;
        if (!strncasecmp(r, "table", 5) && (r[5] == ' ' || r[5] == '\t' || r[5] == '\n'))
            r += 5;
        rewritten = xasprintf("%*sVACUUM %s", (int)(p - sql), "", r);
        sql = rewritten;
    }
    PgQueryParseResult pr = pg_query_parse(sql);
    if (pr.error) {
        int pos = pr.error->cursorpos > 0 ? pr.error->cursorpos - 1 : 0, line = 1, col = 1;
        for (int k = 0; k < pos && sql[k]; k++) {
            if (sql[k] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        int rc =
            err_set(err, WEIR_EINVAL, "%s at line %d, column %d", pr.error->message, line, col);
        if (err)
            snprintf(err->loc, sizeof err->loc, "%d:%d", line, col);
        pg_query_free_parse_result(pr);
        free(rewritten);
        return rc;
    }
    json_error_t je;
    json_t *tree = json_loads(pr.parse_tree, 0, &je);
    pg_query_free_parse_result(pr);
    if (!tree) {
        free(rewritten);
        return err_set(err, WEIR_EINTERNAL, "cannot read the parse tree: %s", je.text);
    }
    json_t *stmts = json_object_get(tree, "stmts");
    int rc = 0;
    size_t n = json_array_size(stmts);
    if (n == 0 && out) { /* empty input: an empty result */
        struct wh_result *r = xcalloc(1, sizeof *r);
        r->a = arena_new(4096);
        r->rel = arena_calloc(r->a, 1, sizeof *r->rel);
        r->tag = "";
        *out = r;
    }
    for (size_t k = 0; k < n && rc == 0; k++) {
        json_t *raw = json_array_get(stmts, k);
        json_t *st = json_object_get(raw, "stmt");
        size_t off = (size_t)json_integer_value(json_object_get(raw, "stmt_location"));
        size_t len = json_object_get(raw, "stmt_len")
                         ? (size_t)json_integer_value(json_object_get(raw, "stmt_len"))
                         : strlen(sql) - off;
        struct wh_result *one = NULL;
        double t0 = now_s();
        rc = exec_one(db, st, sql, off, len, out || fn ? &one : NULL, err);
        if (rc == 0 && fn && fn(one, now_s() - t0, arg) != 0)
            n = 0;
        if (rc == 0 && out && k + 1 == json_array_size(stmts)) {
            *out = one;
            one = NULL;
        }
        wh_result_free(one);
    }
    json_decref(tree);
    free(rewritten);
    return rc;
}

int wh_exec(struct wh_db *db, const char *sql, struct wh_result **out, struct weir_err *err)
{
    return exec_all(db, sql, out, NULL, NULL, err);
}

int wh_exec_each(struct wh_db *db, const char *sql, wh_each_fn fn, void *arg, struct weir_err *err)
{
    return exec_all(db, sql, NULL, fn, arg, err);
}

/* ---- results ---- */

size_t wh_result_ncols(const struct wh_result *r)
{
    return (size_t)r->rel->ncols;
}

size_t wh_result_nrows(const struct wh_result *r)
{
    return r->rel->n;
}

const char *wh_result_colname(const struct wh_result *r, size_t col)
{
    return r->rel->names[col];
}

enum wh_type wh_result_coltype(const struct wh_result *r, size_t col)
{
    return (enum wh_type)r->rel->cols[col]->type;
}

int wh_result_colscale(const struct wh_result *r, size_t col)
{
    return r->rel->cols[col]->scale;
}

uint64_t wh_result_affected(const struct wh_result *r)
{
    return r->affected;
}

const char *wh_result_tag(const struct wh_result *r)
{
    return r->tag ? r->tag : "";
}

bool wh_result_isnull(const struct wh_result *r, size_t row, size_t col)
{
    return r->rel->cols[col]->nul[row] != 0;
}

int64_t wh_result_int(const struct wh_result *r, size_t row, size_t col)
{
    const struct wh_vec *v = r->rel->cols[col];
    return v->i ? v->i[row] : v->f ? (int64_t)v->f[row] : 0;
}

void wh_result_interval(const struct wh_result *r, size_t row, size_t col, int32_t *months,
                        int32_t *days)
{
    const struct wh_vec *v = r->rel->cols[col];
    *months = v->m ? wh__iv_months(v->m[row]) : 0;
    *days = v->m ? wh__iv_days(v->m[row]) : 0;
}

double wh_result_double(const struct wh_result *r, size_t row, size_t col)
{
    const struct wh_vec *v = r->rel->cols[col];
    if (v->f)
        return v->f[row];
    if (!v->i)
        return 0;
    if (v->type == WH_T_NUMERIC)
        return (double)v->i[row] / (double)wh__pow10(v->scale);
    return (double)v->i[row];
}

const char *wh_result_str(const struct wh_result *r, size_t row, size_t col)
{
    const struct wh_vec *v = r->rel->cols[col];
    return v->s && !v->nul[row] ? v->s[row] : NULL;
}

bool wh_result_text(const struct wh_result *r, size_t row, size_t col, char *buf, size_t len)
{
    return wh__fmt_val(r->rel->cols[col], row, buf, len);
}

void wh_result_free(struct wh_result *r)
{
    if (!r)
        return;
    arena_free(r->a);
    free(r);
}

/* ---- catalog listings ---- */

/* Lists tables (name NULL) or describes one table. */
static int listing(struct wh_db *db, const char *name, struct wh_result **out, struct weir_err *err)
{
    *out = NULL;
    struct wh_result *r = xcalloc(1, sizeof *r);
    r->a = arena_new(0);
    struct wh_q q;
    memset(&q, 0, sizeof q);
    q.db = db;
    q.a = r->a;
    q.err = err;
    if (setjmp(q.jb)) {
        wh_result_free(r);
        return err ? -err->code : -WEIR_EINTERNAL;
    }
    if (!name) {
        struct wh_rel *rel = wh__rel_new(&q, 3, db->ntables);
        rel->names[0] = "schema";
        rel->names[1] = "name";
        rel->names[2] = "rows";
        rel->cols[0] = wh__vec_new(&q, WH_T_TEXT, 0, db->ntables);
        rel->cols[1] = wh__vec_new(&q, WH_T_TEXT, 0, db->ntables);
        rel->cols[2] = wh__vec_new(&q, WH_T_INT8, 0, db->ntables);
        for (size_t k = 0; k < db->ntables; k++) {
            struct wh_table *t = db->tables[k];
            rel->cols[0]->s[k] = wh__strdup(&q, t->schema);
            rel->cols[1]->s[k] = wh__strdup(&q, t->name);
            for (size_t p = 0; p < t->nparts; p++)
                rel->cols[2]->i[k] += (int64_t)t->parts[p].rows;
        }
        /* Sorted by schema, name for stable listings. */
        for (size_t i = 1; i < db->ntables; i++)
            for (size_t j = i; j > 0; j--) {
                int c = strcmp(rel->cols[0]->s[j - 1], rel->cols[0]->s[j]);
                if (c < 0 || (c == 0 && strcmp(rel->cols[1]->s[j - 1], rel->cols[1]->s[j]) <= 0))
                    break;
                for (int col = 0; col < 3; col++) {
                    struct wh_vec *v = rel->cols[col];
                    if (v->s) {
                        const char *t = v->s[j];
                        v->s[j] = v->s[j - 1];
                        v->s[j - 1] = t;
                    } else {
                        int64_t t = v->i[j];
                        v->i[j] = v->i[j - 1];
                        v->i[j - 1] = t;
                    }
                }
            }
        r->rel = rel;
        r->tag = "TABLES";
        *out = r;
        return 0;
    }
    char schema[WH_MAX_NAME + 1] = "public", tname[WH_MAX_NAME + 1];
    const char *dot = strchr(name, '.');
    if (dot) {
        snprintf(schema, sizeof schema, "%.*s", (int)(dot - name), name);
        snprintf(tname, sizeof tname, "%s", dot + 1);
    } else {
        snprintf(tname, sizeof tname, "%s", name);
    }
    struct wh_table *t = wh__table_find(db, schema, tname);
    if (!t) {
        wh_result_free(r);
        return err_set(err, WEIR_ENOTFOUND, "relation \"%s\" does not exist", name);
    }
    struct wh_rel *rel = wh__rel_new(&q, 3, (size_t)t->ncols);
    rel->names[0] = "column";
    rel->names[1] = "type";
    rel->names[2] = "nullable";
    for (int c = 0; c < 3; c++)
        rel->cols[c] = wh__vec_new(&q, WH_T_TEXT, 0, (size_t)t->ncols);
    for (int c = 0; c < t->ncols; c++) {
        const struct wh_coldef *cd = &t->cols[c];
        rel->cols[0]->s[c] = wh__strdup(&q, cd->name);
        if (cd->type == WH_T_NUMERIC)
            rel->cols[1]->s[c] = arena_printf(q.a, "numeric(%d,%d)", cd->typmod, cd->scale);
        else if (cd->type == WH_T_TEXT && cd->typmod > 0)
            rel->cols[1]->s[c] = arena_printf(q.a, "character varying(%d)", cd->typmod);
        else
            rel->cols[1]->s[c] = wh_type_name(cd->type);
        rel->cols[2]->s[c] = cd->notnull ? "not null" : "";
    }
    r->rel = rel;
    r->tag = "DESCRIBE";
    *out = r;
    return 0;
}

/* A listing under the shared lock (outside a transaction, which holds the lock already). */
static int listing_locked(struct wh_db *db, const char *name, struct wh_result **out,
                          struct weir_err *err)
{
    *out = NULL;
    bool lock = !db->in_txn;
    int rc = lock ? wh__lock(db, false, err) : 0;
    if (rc < 0)
        return rc;
    rc = listing(db, name, out, err);
    if (lock)
        wh__unlock(db, true);
    return rc;
}

int wh_tables(struct wh_db *db, struct wh_result **out, struct weir_err *err)
{
    return listing_locked(db, NULL, out, err);
}

int wh_describe(struct wh_db *db, const char *name, struct wh_result **out, struct weir_err *err)
{
    if (!name)
        return err_set(err, WEIR_EINVAL, "no table name given");
    return listing_locked(db, name, out, err);
}
