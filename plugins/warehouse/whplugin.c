/* plugins/warehouse/whplugin.c - the warehouse plugin: `load` (CSV / NDJSON files, globs or
 * s3:// objects into a table of the bundled engine), `sql` (statements; row counts and the
 * first rows as XComs) and `export` (a table or query to CSV in a file or s3://).
 *
 * The engine is linked in (weir_warehouse, static and PIC) and used only through
 * warehouse/warehouse.h. The database folder comes from the task (`path`), the connection
 * `conn_id` (extra.path), WEIR_WAREHOUSE__PATH, then $WEIR_HOME/warehouse: a plugin cannot
 * read the host's configuration.
 *
 * Idempotent loads: every row a load writes carries its load key in the column _weir_load
 * (default key "<dag_id>/<task_id>/<logical_date>"), and the ledger table weir.loads holds
 * one row per (table, key). A load stages the files in a scratch table first, then in one
 * transaction deletes the rows of an earlier load with the same key (only when the ledger
 * says there was one, so a first load never scans the table), inserts the staged rows and
 * replaces the ledger row. A retry or a rerun of the same logical date therefore replaces
 * its rows instead of adding them again, and a failure at any point leaves the table as it
 * was. The engine locks a database per statement and transaction (docs/warehouse.md,
 * Concurrency); on top of that, tasks of this plugin take an exclusive lock (flock on
 * "<folder>.lock") around their whole use of a database, so one task's staging table,
 * ledger check and load are never interleaved with another task's. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "s3client.h"
#include "warehouse/warehouse.h"
#include "weir/plugin.h"
#include "whlib.h"

#define MAX_FILES     10000
#define MAX_SQL_FILE  (4u << 20)
#define MAX_XCOM_ROWS 1000
#define MAX_STMT_INFO 100

#define DB_PARAMS                                                                              \
    "\"memory_limit\": {\"type\": \"integer\", \"default\": 0, \"description\":"               \
    " \"MiB one statement may use (0: the engine's default, 1024)\"},"                         \
    "\"conn_id\": {\"type\": \"string\", \"default\": \"warehouse_default\", \"description\":" \
    " \"connection whose extra.path is the database folder (used when it exists)\"},"          \
    "\"path\": {\"type\": \"string\", \"description\": \"database folder; default: the"        \
    " connection, WEIR_WAREHOUSE__PATH, else $WEIR_HOME/warehouse\"}"

struct op {
    struct weir_task_ctx *ctx;
    const struct weir_host *host;
    const char *name; /* "warehouse.load", for messages */
};

static const char *pstr(json_t *params, const char *key)
{
    const char *s = json_string_value(json_object_get(params, key));
    return s && *s ? s : NULL;
}

static const char *ctx_str(struct op *o, const char *key)
{
    return json_string_value(json_object_get(o->host->context(o->ctx), key));
}

static const char *errtext(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len); /* GNU form: use the returned pointer */
}

/* Fails the task: without retry when retrying cannot help. Returns the WEIR_TASK_* code. */
static int fail_code(struct op *o, bool retry, const char *msg)
{
    o->host->fail(o->ctx, "%s: %s", o->name, msg);
    return retry ? WEIR_TASK_FAILED : WEIR_TASK_FAILED_NO_RETRY;
}

/* Fails with an engine error: bad SQL, unknown tables and conflicts will not change by
 * themselves; I/O errors and limits might. */
static int fail_wh(struct op *o, const char *what, const struct weir_err *e)
{
    bool retry =
        !(e->code == WEIR_EINVAL || e->code == WEIR_ENOTFOUND || e->code == WEIR_ECONFLICT);
    /* the engine's message already names the position ("at line L, column C") */
    o->host->fail(o->ctx, "%s: %s: %s", o->name, what, e->msg);
    return retry ? WEIR_TASK_FAILED : WEIR_TASK_FAILED_NO_RETRY;
}

static int push(struct op *o, const char *key, json_t *v)
{
    if (!v)
        return -1;
    int rc = o->host->xcom_push(o->ctx, key, v);
    json_decref(v);
    return rc;
}

static int mkdir_p(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return -1;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0755) < 0 && errno != EEXIST) {
            free(d);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(d, 0755) < 0 && errno != EEXIST ? -1 : 0;
    free(d);
    return rc;
}

/* ---- the database ------------------------------------------------------------------------ */

struct db {
    struct wh_db *wh;
    char *path;
    int lock_fd;
};

static void db_close(struct db *d)
{
    wh_close(d->wh);
    d->wh = NULL;
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* releases the flock */
    d->lock_fd = -1;
    free(d->path);
    d->path = NULL;
}

/* Finds the database folder, takes the lock and opens it. Returns WEIR_TASK_SUCCESS or the
 * code of the failure it reported. */
static int db_open(struct op *o, json_t *params, struct db *d)
{
    char eb[128];
    d->wh = NULL;
    d->path = NULL;
    d->lock_fd = -1;
    json_int_t mem_mib = json_integer_value(json_object_get(params, "memory_limit"));
    if (mem_mib < 0 || mem_mib > ((json_int_t)1 << 24))
        return fail_code(o, false, "`memory_limit` must be 0 or a number of MiB");
    const char *conn_id = pstr(params, "conn_id");
    json_t *conn = conn_id ? o->host->conn_get(o->ctx, conn_id) : NULL;
    const char *conn_path = NULL;
    if (conn) {
        conn_path = json_string_value(json_object_get(json_object_get(conn, "extra"), "path"));
        if (!conn_path || !*conn_path) {
            json_decref(conn);
            o->host->fail(o->ctx, "%s: connection '%s' has no extra.path (the database folder)",
                          o->name, conn_id);
            return WEIR_TASK_FAILED_NO_RETRY;
        }
    }
    d->path = whp_db_path(pstr(params, "path"), conn_path, getenv("WEIR_WAREHOUSE__PATH"),
                          getenv("WEIR_HOME"), getenv("HOME"));
    json_decref(conn);
    if (!d->path)
        return fail_code(o, false,
                         "no database folder: set `path`, a connection or "
                         "WEIR_WAREHOUSE__PATH");
    size_t n = strlen(d->path);
    while (n > 1 && d->path[n - 1] == '/')
        d->path[--n] = '\0';
    if (mkdir_p(d->path) < 0) {
        o->host->fail(o->ctx, "%s: cannot create folder '%s': %s", o->name, d->path,
                      errtext(errno, eb, sizeof eb));
        return WEIR_TASK_FAILED;
    }
    size_t ln = n + 6;
    char *lock = malloc(ln);
    if (!lock)
        return fail_code(o, true, "out of memory");
    snprintf(lock, ln, "%s.lock", d->path);
    d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0) {
        o->host->fail(o->ctx, "%s: cannot open lock file '%s': %s", o->name, lock,
                      errtext(errno, eb, sizeof eb));
        free(lock);
        return WEIR_TASK_FAILED;
    }
    bool logged = false;
    while (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            o->host->fail(o->ctx, "%s: cannot lock '%s': %s", o->name, lock,
                          errtext(errno, eb, sizeof eb));
            free(lock);
            return WEIR_TASK_FAILED;
        }
        if (!logged)
            o->host->log(o->ctx, WEIR_LOG_INFO, "waiting for '%s' (another task uses the database)",
                         lock);
        logged = true;
        if (o->host->cancelled(o->ctx)) {
            free(lock);
            return fail_code(o, true, "cancelled while waiting for the database lock");
        }
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    free(lock);
    struct weir_err e = { 0 };
    if (wh_open(d->path, &d->wh, &e) < 0) {
        char what[600];
        snprintf(what, sizeof what, "cannot open the warehouse '%s'", d->path);
        return fail_wh(o, what, &e);
    }
    if (mem_mib > 0)
        wh_set_mem_limit(d->wh, (size_t)mem_mib << 20);
    return WEIR_TASK_SUCCESS;
}

/* Runs `sql`; on failure reports it (prefixed by `what`) and returns the task code.
 * `out` (may be NULL) receives the last result. */
static int exec(struct op *o, struct db *d, const char *what, const char *sql,
                struct wh_result **out)
{
    struct weir_err e = { 0 };
    o->host->log(o->ctx, WEIR_LOG_DEBUG, "sql: %s", sql);
    if (wh_exec(d->wh, sql, out, &e) < 0)
        return fail_wh(o, what, &e);
    return WEIR_TASK_SUCCESS;
}

static int exec_buf(struct op *o, struct db *d, const char *what, struct ing_buf *b,
                    struct wh_result **out)
{
    ing_buf_add(b, "", 1);
    if (b->oom)
        return fail_code(o, true, "out of memory");
    int rc = exec(o, d, what, b->p, out);
    b->len = 0;
    return rc;
}

static void add_table(struct ing_buf *b, const struct whp_name *t)
{
    whp_add_ident(b, t->schema);
    ing_buf_adds(b, ".");
    whp_add_ident(b, t->table);
}

/* ---- S3 ----------------------------------------------------------------------------------- */

static int s3_cancelled(void *arg)
{
    struct op *o = arg;
    return o->host->cancelled(o->ctx);
}

static void s3_log(void *arg, const char *line)
{
    struct op *o = arg;
    o->host->log(o->ctx, WEIR_LOG_WARN, "%s", line);
}

static struct s3_client *s3_open(struct op *o, json_t *params, int *rc)
{
    const char *id = pstr(params, "s3_conn_id");
    if (!id)
        id = "aws_default";
    json_t *conn = o->host->conn_get(o->ctx, id);
    if (!conn) {
        o->host->fail(o->ctx, "%s: S3 connection '%s' not found (see docs/s3.md)", o->name, id);
        *rc = WEIR_TASK_FAILED_NO_RETRY;
        return NULL;
    }
    struct s3_err se = { 0 };
    struct s3_client *c = s3_client_from_conn(conn, &se);
    json_decref(conn);
    if (!c) {
        *rc = fail_code(o, false, se.msg);
        return NULL;
    }
    s3_client_set_cancel(c, s3_cancelled, o);
    s3_client_set_log(c, s3_log, o);
    return c;
}

static int fail_s3(struct op *o, const struct s3_err *se)
{
    return fail_code(o, se->status != S3_EINVAL, se->msg);
}

/* ---- load --------------------------------------------------------------------------------- */

struct source {
    char *name;  /* as the user knows it: a path or s3:// URL */
    char *local; /* the file COPY reads */
    enum whp_format fmt;
};

struct sources {
    struct source *v;
    size_t n;
};

static void sources_release(struct sources *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].local);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int sources_add(struct sources *s, const char *name, const char *local)
{
    if (s->n >= MAX_FILES)
        return -1;
    struct source *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    s->v = nv;
    s->v[s->n].name = strdup(name);
    s->v[s->n].local = strdup(local);
    s->v[s->n].fmt = WHP_FMT_UNKNOWN;
    s->n++;
    return s->v[s->n - 1].name && s->v[s->n - 1].local ? 0 : -1;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Downloads the object(s) of one s3:// URL (a glob in the key matches keys under the prefix
 * before its first wildcard) into the try's scratch folder. */
static int add_s3(struct op *o, json_t *params, struct s3_client **cp, const char *url,
                  struct sources *out)
{
    int rc = WEIR_TASK_SUCCESS;
    struct s3_err se = { 0 };
    char *bucket = NULL, *key = NULL;
    const char *wd = ctx_str(o, "workdir");
    if (!wd)
        return fail_code(o, true, "the host gave no scratch folder (workdir)");
    if (s3_url_parse(url, &bucket, &key, &se) < 0)
        return fail_code(o, false, se.msg);
    if (!*key) {
        o->host->fail(o->ctx, "%s: '%s' names a bucket, not an object", o->name, url);
        rc = WEIR_TASK_FAILED_NO_RETRY;
        goto out;
    }
    if (!*cp && !(*cp = s3_open(o, params, &rc)))
        goto out;
    struct s3_object_list l = { 0 };
    char **keys = &key;
    size_t nkeys = 1;
    if (has_glob(key)) {
        size_t plen = strcspn(key, "*?[");
        char *prefix = strndup(key, plen);
        if (!prefix) {
            rc = fail_code(o, true, "out of memory");
            goto out;
        }
        int n = s3_list(*cp, bucket, prefix, 0, MAX_FILES, &l, &se);
        free(prefix);
        if (n < 0) {
            rc = fail_s3(o, &se);
            goto out;
        }
        keys = calloc(l.n + 1, sizeof *keys);
        if (!keys) {
            s3_object_list_release(&l);
            rc = fail_code(o, true, "out of memory");
            goto out;
        }
        nkeys = 0;
        for (size_t i = 0; i < l.n; i++)
            if (fnmatch(key, l.items[i].key, FNM_PATHNAME) == 0)
                keys[nkeys++] = l.items[i].key;
        if (!nkeys) {
            o->host->fail(o->ctx, "%s: no object matches '%s'", o->name, url);
            rc = WEIR_TASK_FAILED;
        }
    }
    for (size_t i = 0; i < nkeys && rc == WEIR_TASK_SUCCESS; i++) {
        char local[4096], name[4096];
        snprintf(local, sizeof local, "%s/wh-load-%zu-%s", wd, out->n, base_name(keys[i]));
        snprintf(name, sizeof name, "s3://%s/%s", bucket, keys[i]);
        o->host->log(o->ctx, WEIR_LOG_INFO, "downloading '%s'", name);
        if (s3_get_to_file(*cp, bucket, keys[i], local, &se) < 0)
            rc = fail_s3(o, &se);
        else if (sources_add(out, name, local) < 0)
            rc = fail_code(o, true, "too many files or out of memory");
    }
    if (keys != &key)
        free(keys);
    s3_object_list_release(&l);
out:
    free(bucket);
    free(key);
    return rc;
}

/* Adds one local path or glob (relative paths: the process's working folder). */
static int add_local(struct op *o, const char *path, struct sources *out)
{
    char eb[128];
    if (!has_glob(path)) {
        struct stat st;
        if (stat(path, &st) < 0) {
            o->host->fail(o->ctx, "%s: cannot read '%s': %s", o->name, path,
                          errtext(errno, eb, sizeof eb));
            return WEIR_TASK_FAILED;
        }
        return sources_add(out, path, path) < 0 ? fail_code(o, true, "out of memory")
                                                : WEIR_TASK_SUCCESS;
    }
    glob_t g;
    int grc = glob(path, GLOB_ERR, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        o->host->fail(o->ctx, "%s: no file matches '%s'", o->name, path);
        return WEIR_TASK_FAILED;
    }
    if (grc != 0) {
        globfree(&g);
        o->host->fail(o->ctx, "%s: cannot expand '%s'", o->name, path);
        return WEIR_TASK_FAILED;
    }
    int rc = WEIR_TASK_SUCCESS;
    for (size_t i = 0; i < g.gl_pathc && rc == WEIR_TASK_SUCCESS; i++)
        if (sources_add(out, g.gl_pathv[i], g.gl_pathv[i]) < 0)
            rc = fail_code(o, true, "too many files or out of memory");
    globfree(&g);
    return rc;
}

static int collect_sources(struct op *o, json_t *params, struct sources *out)
{
    json_t *from = json_object_get(params, "from");
    json_t *list = json_is_array(from) ? json_incref(from) : json_pack("[O]", from);
    struct s3_client *c = NULL;
    int rc = WEIR_TASK_SUCCESS;
    size_t i;
    json_t *v;
    const char *fmt = pstr(params, "format");
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (!s || !*s) {
            rc = fail_code(o, false, "`from` must be a non-empty string or a list of them");
            break;
        }
        size_t before = out->n;
        rc = strncmp(s, "s3://", 5) == 0 ? add_s3(o, params, &c, s, out) : add_local(o, s, out);
        if (rc != WEIR_TASK_SUCCESS)
            break;
        for (size_t k = before; k < out->n; k++) {
            out->v[k].fmt = whp_format_of(out->v[k].name, fmt);
            if (out->v[k].fmt == WHP_FMT_UNKNOWN) {
                o->host->fail(o->ctx,
                              "%s: cannot tell the format of '%s' (set format: csv or json)",
                              o->name, out->v[k].name);
                rc = WEIR_TASK_FAILED_NO_RETRY;
                break;
            }
        }
        if (rc != WEIR_TASK_SUCCESS)
            break;
    }
    if (rc == WEIR_TASK_SUCCESS && out->n == 0)
        rc = fail_code(o, false, "`from` names no file");
    s3_client_free(c);
    json_decref(list);
    return rc;
}

/* The columns of table `name` ("schema.table"): names, and their SQL types when `types` is
 * not NULL (both arrays malloc'd, *n entries; free with whp_names_free). *exists says
 * whether the table is there. Returns the task code (a failure other than "not found" is
 * reported). */
static int table_columns(struct op *o, struct db *d, const char *name, char ***cols, char ***types,
                         size_t *n, bool *exists)
{
    struct wh_result *r = NULL;
    struct weir_err e = { 0 };
    *cols = NULL;
    if (types)
        *types = NULL;
    *n = 0;
    *exists = false;
    int rc = wh_describe(d->wh, name, &r, &e);
    if (rc == -WEIR_ENOTFOUND)
        return WEIR_TASK_SUCCESS;
    if (rc < 0)
        return fail_wh(o, "cannot describe the table", &e);
    *exists = true;
    size_t nr = wh_result_nrows(r);
    char **c = calloc(nr + 1, sizeof *c), **t = types ? calloc(nr + 1, sizeof *t) : NULL;
    bool oom = !c || (types && !t);
    for (size_t i = 0; i < nr && !oom; i++) {
        c[i] = strdup(wh_result_str(r, i, 0));
        if (t)
            t[i] = strdup(wh_result_str(r, i, 1));
        oom = !c[i] || (t && !t[i]);
    }
    wh_result_free(r);
    if (oom) {
        whp_names_free(c, nr);
        whp_names_free(t, nr);
        return fail_code(o, true, "out of memory");
    }
    *cols = c;
    if (types)
        *types = t;
    *n = nr;
    return WEIR_TASK_SUCCESS;
}

/* Appends the COPY of one source into the stage table. */
static int copy_source(struct op *o, struct db *d, json_t *params, const char *stage,
                       bool stage_exists, const struct source *src, uint64_t *rows)
{
    struct ing_buf b = { 0 };
    struct ing_err ie = { "" };
    const char *delim = pstr(params, "delimiter");
    const char *null = json_string_value(json_object_get(params, "null"));
    bool header = json_is_true(json_object_get(params, "header"));
    bool skip = json_is_true(json_object_get(params, "skip_bad_rows"));
    if (!delim)
        delim = ",";
    if (strlen(delim) != 1) {
        ing_buf_release(&b);
        return fail_code(o, false, "`delimiter` must be one character");
    }
    ing_buf_adds(&b, "COPY ");
    ing_buf_adds(&b, stage);
    if (src->fmt == WHP_FMT_CSV && header && stage_exists) {
        /* COPY maps CSV columns by position; name them from the header instead */
        char **names = NULL;
        size_t nn = 0;
        if (whp_csv_header(src->local, delim[0], '"', &names, &nn, &ie) < 0) {
            ing_buf_release(&b);
            return fail_code(o, false, ie.msg);
        }
        ing_buf_adds(&b, " (");
        for (size_t i = 0; i < nn; i++) {
            if (i)
                ing_buf_adds(&b, ", ");
            whp_add_ident(&b, names[i]);
        }
        ing_buf_adds(&b, ")");
        whp_names_free(names, nn);
    }
    ing_buf_adds(&b, " FROM ");
    whp_add_lit(&b, src->local);
    if (src->fmt == WHP_FMT_JSON) {
        ing_buf_adds(&b, " WITH (FORMAT json");
    } else {
        ing_buf_adds(&b, " WITH (FORMAT csv, HEADER ");
        ing_buf_adds(&b, header ? "true" : "false");
        ing_buf_adds(&b, ", DELIMITER ");
        whp_add_lit(&b, delim);
        if (null) {
            ing_buf_adds(&b, ", NULL ");
            whp_add_lit(&b, null);
        }
    }
    if (skip)
        ing_buf_adds(&b, ", ON_ERROR skip");
    ing_buf_adds(&b, ")");
    struct wh_result *r = NULL;
    char what[600];
    snprintf(what, sizeof what, "cannot load '%s'", src->name);
    int rc = exec_buf(o, d, what, &b, &r);
    if (rc == WEIR_TASK_SUCCESS) {
        *rows += wh_result_affected(r);
        o->host->log(o->ctx, WEIR_LOG_INFO, "staged %llu rows from '%s'",
                     (unsigned long long)wh_result_affected(r), src->name);
    }
    wh_result_free(r);
    ing_buf_release(&b);
    return rc;
}

/* The default load key: the logical date identifies the data a run is responsible for, so
 * a retry and a rerun of the same date (weir dags test, a cleared run) share it. */
static char *default_key(struct op *o)
{
    const char *dag = ctx_str(o, "dag_id"), *task = ctx_str(o, "task_id");
    const char *ld = ctx_str(o, "logical_date");
    if (!ld)
        ld = ctx_str(o, "run_id");
    size_t n = strlen(dag ? dag : "") + strlen(task ? task : "") + strlen(ld ? ld : "") + 3;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s/%s", dag ? dag : "", task ? task : "", ld ? ld : "");
    return k;
}

/* The affected row counts of the load's statements, in order. */
struct counts {
    uint64_t v[8];
    size_t n;
};

static int count_statement(struct wh_result *r, double seconds, void *arg)
{
    struct counts *c = arg;
    (void)seconds;
    if (c->n < sizeof c->v / sizeof c->v[0])
        c->v[c->n++] = wh_result_affected(r);
    return 0;
}

static int load_into(struct op *o, json_t *params, struct db *d, const struct whp_name *t,
                     const struct sources *src, const char *key, bool replace)
{
    struct ing_buf b = { 0 };
    char **tcols = NULL, **ttypes = NULL, **scols = NULL;
    size_t ntc = 0, nsc = 0;
    bool texists = false, sexists = false;
    struct wh_result *r = NULL;
    char full[140], stage_name[64];
    const char *stage = stage_name;
    uint64_t staged = 0, inserted = 0, removed = 0;
    snprintf(full, sizeof full, "%s.%s", t->schema, t->table);
    /* One scratch table per target: under the lock nobody else uses it, and a leftover of
     * a crashed try is dropped here. Named by a hash of the target, since "schema.table"
     * may be longer than the 63 bytes an identifier keeps. */
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = full; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(stage_name, sizeof stage_name, "weir.stage_%016llx", (unsigned long long)h);

    ing_buf_adds(&b, "CREATE SCHEMA IF NOT EXISTS weir; CREATE TABLE IF NOT EXISTS " WHP_LEDGER
                     " (load_key text, table_name text, mode text, dag_id text, run_id text,"
                     " task_id text, try_number bigint, logical_date timestamptz, sources text,"
                     " rows bigint, loaded_at timestamptz); CREATE SCHEMA IF NOT EXISTS ");
    whp_add_ident(&b, t->schema);
    ing_buf_adds(&b, "; DROP TABLE IF EXISTS ");
    ing_buf_adds(&b, stage);
    int rc = exec_buf(o, d, "cannot prepare the load", &b, NULL);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    rc = table_columns(o, d, full, &tcols, &ttypes, &ntc, &texists);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;

    if (texists) {
        bool tagged = false;
        size_t other = 0;
        for (size_t i = 0; i < ntc; i++) {
            if (!strcmp(tcols[i], WHP_KEY_COLUMN))
                tagged = true;
            else
                other++;
        }
        if (!other) {
            rc = fail_code(o, false, "the target table has no data columns");
            goto out;
        }
        if (!tagged) {
            o->host->log(o->ctx, WEIR_LOG_INFO,
                         "adding column " WHP_KEY_COLUMN " to '%s' (the load key of each row)",
                         full);
            ing_buf_adds(&b, "ALTER TABLE ");
            add_table(&b, t);
            ing_buf_adds(&b, " ADD COLUMN " WHP_KEY_COLUMN " text");
            if ((rc = exec_buf(o, d, "cannot add the load key column", &b, NULL)))
                goto out;
        }
        /* Stage with the target's types, so values parse exactly as they will be stored
         * (declared from the catalog: a CREATE TABLE AS would scan the target). */
        ing_buf_adds(&b, "CREATE TABLE ");
        ing_buf_adds(&b, stage);
        ing_buf_adds(&b, " (");
        bool first = true;
        for (size_t i = 0; i < ntc; i++) {
            if (!strcmp(tcols[i], WHP_KEY_COLUMN))
                continue;
            if (!first)
                ing_buf_adds(&b, ", ");
            first = false;
            whp_add_ident(&b, tcols[i]);
            ing_buf_adds(&b, " ");
            ing_buf_adds(&b, ttypes[i]);
        }
        ing_buf_adds(&b, ")");
        if ((rc = exec_buf(o, d, "cannot create the staging table", &b, NULL)))
            goto out;
        sexists = true;
    }
    char eb[128];
    for (size_t i = 0; i < src->n; i++) {
        struct stat st;
        if (stat(src->v[i].local, &st) < 0) {
            o->host->fail(o->ctx, "%s: cannot read '%s': %s", o->name, src->v[i].name,
                          errtext(errno, eb, sizeof eb));
            rc = WEIR_TASK_FAILED;
            goto out;
        }
        if (st.st_size == 0) {
            o->host->log(o->ctx, WEIR_LOG_INFO, "'%s' is empty", src->v[i].name);
            continue;
        }
        if ((rc = copy_source(o, d, params, stage, sexists, &src->v[i], &staged)))
            goto out;
        sexists = true;
    }
    if (!sexists) {
        o->host->log(o->ctx, WEIR_LOG_INFO,
                     "nothing to load: every file is empty and '%s' "
                     "does not exist yet",
                     full);
        goto done;
    }
    if (!texists) {
        ing_buf_adds(&b, "CREATE TABLE ");
        add_table(&b, t);
        ing_buf_adds(&b, " AS SELECT *, CAST(NULL AS text) AS " WHP_KEY_COLUMN " FROM ");
        ing_buf_adds(&b, stage);
        ing_buf_adds(&b, " WHERE false");
        if ((rc = exec_buf(o, d, "cannot create the table", &b, NULL)))
            goto out;
        o->host->log(o->ctx, WEIR_LOG_INFO, "created table '%s'", full);
    }
    if ((rc = table_columns(o, d, stage_name, &scols, NULL, &nsc, &sexists)))
        goto out;

    /* Was this key loaded into the table before? Only then is there anything to delete. */
    bool before = false;
    if (!replace) {
        ing_buf_adds(&b, "SELECT count(*) FROM " WHP_LEDGER " WHERE table_name = ");
        whp_add_lit(&b, full);
        ing_buf_adds(&b, " AND load_key = ");
        whp_add_lit(&b, key);
        if ((rc = exec_buf(o, d, "cannot read the load ledger", &b, &r)))
            goto out;
        before = wh_result_nrows(r) == 1 && wh_result_int(r, 0, 0) > 0;
        wh_result_free(r);
        r = NULL;
    }

    /* The load itself: one transaction. */
    ing_buf_adds(&b, "BEGIN; ");
    if (replace || before) {
        ing_buf_adds(&b, "DELETE FROM ");
        add_table(&b, t);
        if (!replace) {
            ing_buf_adds(&b, " WHERE " WHP_KEY_COLUMN " = ");
            whp_add_lit(&b, key);
        }
        ing_buf_adds(&b, "; ");
    }
    ing_buf_adds(&b, "INSERT INTO ");
    add_table(&b, t);
    ing_buf_adds(&b, " (");
    for (size_t i = 0; i < nsc; i++) {
        whp_add_ident(&b, scols[i]);
        ing_buf_adds(&b, ", ");
    }
    ing_buf_adds(&b, WHP_KEY_COLUMN ") SELECT ");
    for (size_t i = 0; i < nsc; i++) {
        whp_add_ident(&b, scols[i]);
        ing_buf_adds(&b, ", ");
    }
    whp_add_lit(&b, key);
    ing_buf_adds(&b, " FROM ");
    ing_buf_adds(&b, stage);
    ing_buf_adds(&b, "; DELETE FROM " WHP_LEDGER " WHERE table_name = ");
    whp_add_lit(&b, full);
    if (!replace) {
        ing_buf_adds(&b, " AND load_key = ");
        whp_add_lit(&b, key);
    }
    ing_buf_adds(&b, "; INSERT INTO " WHP_LEDGER " VALUES (");
    whp_add_lit(&b, key);
    ing_buf_adds(&b, ", ");
    whp_add_lit(&b, full);
    ing_buf_adds(&b, replace ? ", 'replace', " : ", 'append', ");
    const char *ctx_keys[] = { "dag_id", "run_id", "task_id" };
    for (size_t i = 0; i < 3; i++) {
        const char *v = ctx_str(o, ctx_keys[i]);
        if (v)
            whp_add_lit(&b, v);
        else
            ing_buf_adds(&b, "NULL");
        ing_buf_adds(&b, ", ");
    }
    char num[64];
    snprintf(
        num, sizeof num, "%lld, ",
        (long long)json_integer_value(json_object_get(o->host->context(o->ctx), "try_number")));
    ing_buf_adds(&b, num);
    const char *ld = ctx_str(o, "logical_date");
    if (ld) {
        ing_buf_adds(&b, "CAST(");
        whp_add_lit(&b, ld);
        ing_buf_adds(&b, " AS timestamptz), ");
    } else {
        ing_buf_adds(&b, "NULL, ");
    }
    json_t *names = json_array();
    for (size_t i = 0; i < src->n; i++)
        json_array_append_new(names, json_string(src->v[i].name));
    char *names_text = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    whp_add_lit(&b, names_text ? names_text : "[]");
    free(names_text);
    snprintf(num, sizeof num, ", %llu, now()); COMMIT", (unsigned long long)staged);
    ing_buf_adds(&b, num);

    struct weir_err e = { 0 };
    ing_buf_add(&b, "", 1);
    if (b.oom) {
        rc = fail_code(o, true, "out of memory");
        goto out;
    }
    /* Statements in order: BEGIN, [DELETE], INSERT, DELETE, INSERT, COMMIT. */
    struct counts cnt = { { 0 }, 0 };
    o->host->log(o->ctx, WEIR_LOG_DEBUG, "sql: %s", b.p);
    int erc = wh_exec_each(d->wh, b.p, count_statement, &cnt, &e);
    b.len = 0;
    if (erc < 0) {
        rc = fail_wh(o, "the load failed (nothing was changed)", &e);
        goto out;
    }
    size_t at = (replace || before) ? 2 : 1;
    removed = at == 2 ? cnt.v[1] : 0;
    inserted = cnt.v[at];
done:
    o->host->log(o->ctx, WEIR_LOG_INFO,
                 "loaded %llu rows into '%s' (key '%s'; %llu rows of %s"
                 " removed)",
                 (unsigned long long)inserted, full, key, (unsigned long long)removed,
                 replace ? "the table" : "an earlier load with this key");
    json_t *files = json_array();
    for (size_t i = 0; i < src->n; i++)
        json_array_append_new(files, json_string(src->v[i].name));
    if (push(o, "return_value", json_integer((json_int_t)inserted)) < 0 ||
        push(o, "rows", json_integer((json_int_t)inserted)) < 0 ||
        push(o, "table", json_string(full)) < 0 || push(o, "key", json_string(key)) < 0 ||
        push(o, "removed", json_integer((json_int_t)removed)) < 0 || push(o, "files", files) < 0) {
        rc = fail_code(o, true, "cannot push XComs");
        goto out;
    }
out:
    if (sexists || rc != WEIR_TASK_SUCCESS) {
        struct weir_err e2 = { 0 };
        char drop[256];
        snprintf(drop, sizeof drop, "DROP TABLE IF EXISTS %s", stage);
        if (d->wh)
            wh_exec(d->wh, drop, NULL, &e2);
    }
    wh_result_free(r);
    whp_names_free(tcols, ntc);
    whp_names_free(ttypes, ntc);
    whp_names_free(scols, nsc);
    ing_buf_release(&b);
    return rc;
}

static int op_load(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op o = { ctx, host, "warehouse.load" };
    struct whp_name t;
    struct ing_err ie = { "" };
    struct sources src = { 0 };
    struct db d = { .lock_fd = -1 };
    char *key = NULL;
    int rc;
    if (whp_parse_table(pstr(params, "table"), &t, &ie) < 0)
        return fail_code(&o, false, ie.msg);
    const char *mode = pstr(params, "mode");
    bool replace = mode && !strcmp(mode, "replace");
    if (mode && !replace && strcmp(mode, "append"))
        return fail_code(&o, false, "`mode` must be append or replace");
    const char *fmt = pstr(params, "format");
    if (fmt && strcmp(fmt, "auto") && whp_format_of(NULL, fmt) == WHP_FMT_UNKNOWN)
        return fail_code(&o, false, "`format` must be auto, csv or json");
    if (!strcmp(t.schema, "weir"))
        return fail_code(&o, false, "schema 'weir' is reserved for the load ledger");
    key = pstr(params, "key") ? strdup(pstr(params, "key")) : default_key(&o);
    if (!key)
        return fail_code(&o, true, "out of memory");
    if ((rc = collect_sources(&o, params, &src)) != WEIR_TASK_SUCCESS)
        goto out;
    if ((rc = db_open(&o, params, &d)) != WEIR_TASK_SUCCESS)
        goto out;
    host->log(ctx, WEIR_LOG_INFO, "loading %zu file(s) into '%s.%s' of '%s' (%s, key '%s')", src.n,
              t.schema, t.table, d.path, replace ? "replace" : "append", key);
    rc = load_into(&o, params, &d, &t, &src, key, replace);
out:
    db_close(&d);
    sources_release(&src);
    free(key);
    return rc;
}

/* ---- sql ---------------------------------------------------------------------------------- */

struct sql_state {
    struct op *o;
    size_t max_rows;
    size_t n;           /* statements run */
    json_t *statements; /* [{tag, rows, seconds}] of the first MAX_STMT_INFO */
    json_t *last_rows;  /* rows of the last statement that had columns, or NULL */
    json_t *last_cols;
    uint64_t last_count;
    bool last_has_cols;
};

static int on_statement(struct wh_result *r, double seconds, void *arg)
{
    struct sql_state *s = arg;
    s->n++;
    bool cols = wh_result_ncols(r) > 0;
    uint64_t count = cols ? wh_result_nrows(r) : wh_result_affected(r);
    s->o->host->log(s->o->ctx, WEIR_LOG_INFO, "statement %zu: %s, %llu row(s), %.3f s", s->n,
                    wh_result_tag(r), (unsigned long long)count, seconds);
    if (json_array_size(s->statements) < MAX_STMT_INFO)
        json_array_append_new(s->statements,
                              json_pack("{s:s, s:I, s:f}", "tag", wh_result_tag(r), "rows",
                                        (json_int_t)count, "seconds", seconds));
    json_decref(s->last_rows);
    json_decref(s->last_cols);
    s->last_rows = s->last_cols = NULL;
    s->last_has_cols = cols;
    s->last_count = count;
    if (cols) {
        s->last_rows = whp_rows_json(r, s->max_rows);
        s->last_cols = json_array();
        for (size_t c = 0; c < wh_result_ncols(r); c++)
            json_array_append_new(s->last_cols, json_string(wh_result_colname(r, c)));
    }
    return 0;
}

/* Reads a SQL file (relative: the working folder) and renders it as a template. */
static char *read_sql_file(struct op *o, const char *path)
{
    char eb[128];
    FILE *f = fopen(path, "rb");
    if (!f) {
        o->host->fail(o->ctx, "%s: cannot read '%s': %s", o->name, path,
                      errtext(errno, eb, sizeof eb));
        return NULL;
    }
    struct ing_buf b = { 0 };
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= MAX_SQL_FILE)
        ing_buf_add(&b, chunk, got);
    bool bad = ferror(f);
    fclose(f);
    ing_buf_add(&b, "", 1);
    if (bad || b.oom || b.len > MAX_SQL_FILE) {
        ing_buf_release(&b);
        o->host->fail(o->ctx, "%s: cannot read '%s' (larger than %u bytes?)", o->name, path,
                      MAX_SQL_FILE);
        return NULL;
    }
    char *r = o->host->render(o->ctx, b.p);
    ing_buf_release(&b);
    if (!r)
        o->host->fail(o->ctx, "%s: cannot render '%s'", o->name, path);
    return r;
}

static int op_sql(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op o = { ctx, host, "warehouse.sql" };
    const char *sql = pstr(params, "sql"), *file = pstr(params, "file");
    json_int_t max_rows = json_integer_value(json_object_get(params, "max_rows"));
    if (!!sql == !!file)
        return fail_code(&o, false, "give exactly one of `sql` and `file`");
    if (max_rows < 0 || max_rows > MAX_XCOM_ROWS)
        return fail_code(&o, false, "`max_rows` must be 0..1000");
    char *rendered = NULL;
    if (file && !(rendered = read_sql_file(&o, file)))
        return WEIR_TASK_FAILED_NO_RETRY;
    struct db d = { .lock_fd = -1 };
    struct sql_state s = { .o = &o, .max_rows = (size_t)max_rows, .statements = json_array() };
    int rc = db_open(&o, params, &d);
    if (rc != WEIR_TASK_SUCCESS)
        goto out;
    struct weir_err e = { 0 };
    if (wh_exec_each(d.wh, rendered ? rendered : sql, on_statement, &s, &e) < 0) {
        /* the whole text is parsed before the first statement runs */
        char what[96];
        if (s.n == 1)
            snprintf(what, sizeof what, "statement 2 failed (statement 1 stays applied)");
        else if (s.n)
            snprintf(what, sizeof what, "statement %zu failed (statements 1-%zu stay applied)",
                     s.n + 1, s.n);
        else
            snprintf(what, sizeof what, "%s", "the SQL failed");
        rc = fail_wh(&o, what, &e);
        goto out;
    }
    if (!s.n) {
        rc = fail_code(&o, false, "no SQL statement to run");
        goto out;
    }
    json_t *rv =
        s.last_has_cols ? json_incref(s.last_rows) : json_integer((json_int_t)s.last_count);
    if (push(&o, "return_value", rv) < 0 ||
        push(&o, "rows", json_integer((json_int_t)s.last_count)) < 0 ||
        push(&o, "statements", json_incref(s.statements)) < 0 ||
        (s.last_has_cols && push(&o, "columns", json_incref(s.last_cols)) < 0))
        rc = fail_code(&o, true, "cannot push XComs");
out:
    db_close(&d);
    json_decref(s.statements);
    json_decref(s.last_rows);
    json_decref(s.last_cols);
    host->free(rendered);
    return rc;
}

/* ---- export ------------------------------------------------------------------------------- */

static int op_export(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    struct op o = { ctx, host, "warehouse.export" };
    const char *table = pstr(params, "table"), *query = pstr(params, "query");
    const char *to = pstr(params, "to");
    bool header = json_is_true(json_object_get(params, "header"));
    struct ing_err ie = { "" };
    struct whp_name t;
    if (!!table == !!query)
        return fail_code(&o, false, "give exactly one of `table` and `query`");
    if (!to)
        return fail_code(&o, false, "`to` is required");
    if (table && whp_parse_table(table, &t, &ie) < 0)
        return fail_code(&o, false, ie.msg);
    bool s3 = strncmp(to, "s3://", 5) == 0;
    char *bucket = NULL, *key = NULL, *file = NULL;
    struct s3_err se = { 0 };
    struct db d = { .lock_fd = -1 };
    struct ing_buf b = { 0 };
    struct wh_result *r = NULL;
    int rc = WEIR_TASK_SUCCESS;
    if (s3) {
        const char *wd = ctx_str(&o, "workdir");
        if (s3_url_parse(to, &bucket, &key, &se) < 0)
            return fail_code(&o, false, se.msg);
        if (!*key || key[strlen(key) - 1] == '/') {
            rc = fail_code(&o, false, "`to` must name an object, not a prefix");
            goto out;
        }
        if (!wd) {
            rc = fail_code(&o, true, "the host gave no scratch folder (workdir)");
            goto out;
        }
        size_t n = strlen(wd) + 16;
        file = malloc(n);
        if (file)
            snprintf(file, n, "%s/export.csv", wd);
    } else {
        file = strdup(to);
        char *slash = file ? strrchr(file, '/') : NULL;
        if (slash && slash != file) {
            *slash = '\0';
            int mk = mkdir_p(file);
            *slash = '/';
            if (mk < 0) {
                char eb[128];
                host->fail(ctx, "%s: cannot create the folder of '%s': %s", o.name, to,
                           errtext(errno, eb, sizeof eb));
                rc = WEIR_TASK_FAILED;
                goto out;
            }
        }
    }
    if (!file) {
        rc = fail_code(&o, true, "out of memory");
        goto out;
    }
    if ((rc = db_open(&o, params, &d)) != WEIR_TASK_SUCCESS)
        goto out;
    ing_buf_adds(&b, "COPY (");
    if (table) {
        /* every column but the load key (an internal of warehouse.load) */
        char full[140], **cols = NULL;
        size_t nc = 0;
        bool exists = false;
        snprintf(full, sizeof full, "%s.%s", t.schema, t.table);
        if ((rc = table_columns(&o, &d, full, &cols, NULL, &nc, &exists)))
            goto out;
        if (!exists) {
            host->fail(ctx, "%s: table '%s' does not exist", o.name, full);
            rc = WEIR_TASK_FAILED_NO_RETRY;
            goto out;
        }
        ing_buf_adds(&b, "SELECT ");
        bool first = true;
        for (size_t i = 0; i < nc; i++) {
            if (!strcmp(cols[i], WHP_KEY_COLUMN) && nc > 1)
                continue;
            if (!first)
                ing_buf_adds(&b, ", ");
            first = false;
            whp_add_ident(&b, cols[i]);
        }
        whp_names_free(cols, nc);
        ing_buf_adds(&b, " FROM ");
        add_table(&b, &t);
    } else {
        /* a trailing ';' would end the COPY's subquery early */
        size_t qn = strlen(query);
        while (qn && (query[qn - 1] == ';' || query[qn - 1] == ' ' || query[qn - 1] == '\n' ||
                      query[qn - 1] == '\t' || query[qn - 1] == '\r'))
            qn--;
        ing_buf_add(&b, query, qn);
    }
    ing_buf_adds(&b, ") TO ");
    whp_add_lit(&b, file);
    ing_buf_adds(&b, header ? " WITH (FORMAT csv, HEADER true)" : " WITH (FORMAT csv)");
    if ((rc = exec_buf(&o, &d, "the export failed", &b, &r)))
        goto out;
    uint64_t rows = wh_result_affected(r);
    db_close(&d); /* the upload does not need the database */
    if (s3) {
        struct s3_client *c = s3_open(&o, params, &rc);
        if (!c)
            goto out;
        struct s3_put_opts po = { .content_type = "text/csv" };
        if (s3_put_file(c, bucket, key, file, &po, &se) < 0)
            rc = fail_s3(&o, &se);
        s3_client_free(c);
        if (rc)
            goto out;
    }
    host->log(ctx, WEIR_LOG_INFO, "exported %llu rows to '%s'", (unsigned long long)rows, to);
    if (push(&o, "return_value", json_string(to)) < 0 ||
        push(&o, "rows", json_integer((json_int_t)rows)) < 0)
        rc = fail_code(&o, true, "cannot push XComs");
out:
    db_close(&d);
    wh_result_free(r);
    ing_buf_release(&b);
    free(bucket);
    free(key);
    free(file);
    return rc;
}

/* ---- description -------------------------------------------------------------------------- */

static const struct weir_operator operators[] = {
    {
        .name = "load",
        .summary = "load CSV or NDJSON files (local, a glob, or s3://) into a table; a retry or "
                   "rerun replaces its own rows",
        .params_schema =
            "{\"from\": {\"type\": \"any\", \"required\": true, \"description\":"
            " \"a path, a glob or s3://bucket/key (a glob in the key works too), or a list\"},"
            "\"table\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"target table, 'table' or 'schema.table' (created when missing)\"},"
            "\"format\": {\"type\": \"string\", \"default\": \"auto\", \"description\":"
            " \"auto (by file name), csv or json (newline-delimited)\"},"
            "\"mode\": {\"type\": \"string\", \"default\": \"append\", \"description\":"
            " \"append, or replace (the table's rows become this load's)\"},"
            "\"key\": {\"type\": \"string\", \"description\": \"load key: a later load with the"
            " same key replaces this one's rows (default: dag_id/task_id/logical_date)\"},"
            "\"header\": {\"type\": \"boolean\", \"default\": true, \"description\":"
            " \"CSV: the first line names the columns\"},"
            "\"delimiter\": {\"type\": \"string\", \"default\": \",\", \"description\":"
            " \"CSV field delimiter\"},"
            "\"null\": {\"type\": \"string\", \"description\": \"CSV: the text of a NULL"
            " (default: an empty unquoted field)\"},"
            "\"skip_bad_rows\": {\"type\": \"boolean\", \"default\": false, \"description\":"
            " \"skip rows that do not parse instead of failing\"},"
            "\"s3_conn_id\": {\"type\": \"string\", \"default\": \"aws_default\","
            " \"description\": \"connection for s3:// sources\"}," DB_PARAMS "}",
        .run = op_load,
    },
    {
        .name = "sql",
        .summary = "run SQL statements; the last one's rows (or row count) become XComs",
        .params_schema =
            "{\"sql\": {\"type\": \"string\", \"description\": \"one or more ;-separated"
            " statements (templated)\"},"
            "\"file\": {\"type\": \"string\", \"description\": \"a .sql file, rendered as a"
            " template (instead of sql)\"},"
            "\"max_rows\": {\"type\": \"integer\", \"default\": 20, \"description\":"
            " \"rows of the last result pushed as return_value (0..1000)\"}," DB_PARAMS "}",
        .run = op_sql,
    },
    {
        .name = "export",
        .summary = "export a table or query as CSV to a file or s3://",
        .params_schema =
            "{\"table\": {\"type\": \"string\", \"description\": \"'table' or 'schema.table'\"},"
            "\"query\": {\"type\": \"string\", \"description\": \"a SELECT (instead of"
            " table)\"},"
            "\"to\": {\"type\": \"string\", \"required\": true, \"description\":"
            " \"a local path or s3://bucket/key\"},"
            "\"header\": {\"type\": \"boolean\", \"default\": true, \"description\":"
            " \"write a header line\"},"
            "\"s3_conn_id\": {\"type\": \"string\", \"default\": \"aws_default\","
            " \"description\": \"connection for s3:// destinations\"}," DB_PARAMS "}",
        .run = op_export,
    },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "warehouse",
    .version = "1.0.0",
    .summary = "load files into the bundled warehouse, run SQL, export tables",
    .n_operators = sizeof operators / sizeof operators[0],
    .operators = operators,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    if (!host || host->abi != WEIR_PLUGIN_ABI || host->size < sizeof(struct weir_host))
        return NULL;
    return &plugin;
}
