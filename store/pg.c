/* store/pg.c - PostgreSQL backend of store.h. One PGconn per struct store (one per thread);
 * every statement goes through PQexecParams with text parameters.
 *
 * A lost connection is WEIR_EUNAVAIL. Outside a transaction the statement is retried once
 * after PQreset: that is safe because writes run inside transactions, so a bare statement
 * is a read, BEGIN, or a small log append (store.c), whose worst case is a log line stored
 * twice when the connection died after the server committed it. Inside a transaction the
 * server has already rolled the work back, so the error goes to the caller, who rolls
 * back and retries later. */
#define LOG_MODULE "store"
#include "store/store_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* libpq is loaded when the first PostgreSQL store is opened, not linked: it brings some
 * twenty libraries (TLS, Kerberos, LDAP, SASL) that a SQLite installation never uses, and
 * every process that links them pays for their mappings on each fork (the local executor
 * forks one process per try). The header still gives the types and prototypes. */
#define PQ_FUNCS(X)                                                                           \
    X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectdbParams) X(PQconninfoFree)          \
    X(PQconninfoParse) X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQfinish) X(PQfreemem)  \
    X(PQgetisnull) X(PQgetvalue) X(PQntuples) X(PQreset) X(PQresultErrorField)               \
    X(PQresultStatus) X(PQsetNoticeProcessor) X(PQstatus)
#define PQ_DECLARE(f) static __typeof__(f) *pq_##f;
PQ_FUNCS(PQ_DECLARE)
static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_error[256];

static void pq_load_once(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(pq_error, sizeof pq_error, "cannot load libpq (install libpq5): %s", dlerror());
        return;
    }
#define PQ_RESOLVE(f)                                                                         \
    if (!pq_error[0] && !(*(void **)&pq_##f = dlsym(h, #f)))                                  \
        snprintf(pq_error, sizeof pq_error, "libpq.so.5 has no %s", #f);
    PQ_FUNCS(PQ_RESOLVE)
#undef PQ_RESOLVE
}

static int pq_load(struct weir_err *err)
{
    pthread_once(&pq_once, pq_load_once);
    return pq_error[0] ? err_set(err, WEIR_EUNAVAIL, "%s", pq_error) : 0;
}

/* From here on every PQ* call goes through the loaded table. */
#define PQ_REDIRECT(f) pq_##f
#define PQclear PQ_REDIRECT(PQclear)
#define PQcmdStatus PQ_REDIRECT(PQcmdStatus)
#define PQcmdTuples PQ_REDIRECT(PQcmdTuples)
#define PQconnectdbParams PQ_REDIRECT(PQconnectdbParams)
#define PQconninfoFree PQ_REDIRECT(PQconninfoFree)
#define PQconninfoParse PQ_REDIRECT(PQconninfoParse)
#define PQerrorMessage PQ_REDIRECT(PQerrorMessage)
#define PQexec PQ_REDIRECT(PQexec)
#define PQexecParams PQ_REDIRECT(PQexecParams)
#define PQfinish PQ_REDIRECT(PQfinish)
#define PQfreemem PQ_REDIRECT(PQfreemem)
#define PQgetisnull PQ_REDIRECT(PQgetisnull)
#define PQgetvalue PQ_REDIRECT(PQgetvalue)
#define PQntuples PQ_REDIRECT(PQntuples)
#define PQreset PQ_REDIRECT(PQreset)
#define PQresultErrorField PQ_REDIRECT(PQresultErrorField)
#define PQresultStatus PQ_REDIRECT(PQresultStatus)
#define PQsetNoticeProcessor PQ_REDIRECT(PQsetNoticeProcessor)
#define PQstatus PQ_REDIRECT(PQstatus)

/* Arbitrary but fixed: every weir process serialises migrations on this advisory lock. */
#define PG_MIGRATE_LOCK_KEY "7320846571208417"
/* Room for any int64_t in decimal, sign and NUL included. */
#define PG_INT_LEN 24

struct pg_db {
    PGconn *conn;
};

struct store__cur {
    PGresult *res;
    int row;
    int nrows;
};

/* Copies libpq's multi-line message into one line: newlines and tabs become spaces. */
static void one_line(char *dst, size_t len, const char *src)
{
    size_t j = 0;
    bool space = false;
    for (const char *p = src ? src : ""; *p && j + 1 < len; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = true;
            continue;
        }
        if (space && j > 0 && j + 2 < len)
            dst[j++] = ' ';
        space = false;
        dst[j++] = *p;
    }
    dst[j] = '\0';
}

/* libpq echoes a URI it cannot parse, password included: replace the password (the
 * userinfo after ':', as store__url_redact finds it) by "***" in `msg`. */
static void scrub_password(char *msg, size_t len, const char *url)
{
    const char *auth = strstr(url, "://");
    if (!auth)
        return;
    auth += 3;
    size_t alen = strcspn(auth, "?");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon || at - colon < 2)
        return; /* no password */
    size_t pl = (size_t)(at - colon - 1);
    char *out = xmalloc(len);
    size_t j = 0;
    for (const char *p = msg; *p && j + 1 < len;) {
        if (strncmp(p, colon + 1, pl) == 0) {
            for (int k = 0; k < 3 && j + 1 < len; k++)
                out[j++] = '*';
            p += pl;
        } else {
            out[j++] = *p++;
        }
    }
    out[j] = '\0';
    memcpy(msg, out, j + 1);
    free(out);
}

static int pg_code_for_state(const char *sqlstate)
{
    if (!sqlstate)
        return WEIR_EUNAVAIL; /* no server answer at all */
    if (strcmp(sqlstate, "23505") == 0)
        return WEIR_ECONFLICT; /* unique_violation */
    if (strcmp(sqlstate, "23503") == 0)
        return WEIR_ENOTFOUND; /* foreign_key_violation */
    if (strncmp(sqlstate, "23", 2) == 0 || strncmp(sqlstate, "22", 2) == 0)
        return WEIR_EINVAL; /* other integrity / data exceptions */
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
        strncmp(sqlstate, "57", 2) == 0 || strcmp(sqlstate, "40001") == 0 ||
        strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "55P03") == 0)
        return WEIR_EUNAVAIL; /* connection, resources, shutdown, serialisation, locks */
    if (strcmp(sqlstate, "25P02") == 0)
        return WEIR_ECONFLICT; /* in_failed_sql_transaction: an earlier statement failed */
    if (strcmp(sqlstate, "54000") == 0 || strcmp(sqlstate, "54001") == 0)
        return WEIR_ETOOBIG;
    return WEIR_EINTERNAL;
}

static int pg_fail(struct store *st, PGresult *res, struct weir_err *err)
{
    struct pg_db *db = st->db;
    char msg[200];
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY))
        one_line(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    else
        one_line(msg, sizeof(msg), PQerrorMessage(db->conn));
    int code = pg_code_for_state(sqlstate);
    if (PQstatus(db->conn) == CONNECTION_BAD)
        code = WEIR_EUNAVAIL;
    return err_set(err, code, "postgresql '%s': %s", st->url_safe, msg);
}

static bool pg_reconnect(struct store *st)
{
    struct pg_db *db = st->db;
    LOG_WARN("connection lost, reconnecting url=%s", st->url_safe);
    PQreset(db->conn);
    return PQstatus(db->conn) == CONNECTION_OK;
}

static PGresult *pg_exec(struct store *st, const char *sql, const struct store__param *p, int np)
{
    struct pg_db *db = st->db;
    const char **values = NULL;
    char *ints = NULL;
    if (np > 0) {
        values = xcalloc((size_t)np, sizeof(*values));
        ints = xmalloc((size_t)np * PG_INT_LEN);
        for (size_t i = 0; i < (size_t)np; i++) {
            if (p[i].type == SP_TEXT) {
                values[i] = p[i].s;
            } else if (p[i].type == SP_INT) {
                (void)snprintf(ints + i * PG_INT_LEN, PG_INT_LEN, "%" PRId64, p[i].i);
                values[i] = ints + i * PG_INT_LEN;
            }
        }
    }
    PGresult *res = PQexecParams(db->conn, sql, np, NULL, values, NULL, NULL, 0);
    free(values);
    free(ints);
    return res;
}

static bool res_ok(const PGresult *res)
{
    ExecStatusType s = PQresultStatus(res);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static int pg_query(struct store *st, const char *sql, const struct store__param *p, int np,
                    struct store__cur **cur, int64_t *changes, struct weir_err *err)
{
    struct pg_db *db = st->db;
    PGresult *res = NULL;
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        if (st->in_tx)
            return err_set(err, WEIR_EUNAVAIL, "postgresql '%s': connection lost", st->url_safe);
        if (!pg_reconnect(st))
            return pg_fail(st, NULL, err);
    }
    res = pg_exec(st, sql, p, np);
    if (!res_ok(res) && PQstatus(db->conn) == CONNECTION_BAD && !st->in_tx) {
        PQclear(res);
        if (!pg_reconnect(st))
            return pg_fail(st, NULL, err);
        res = pg_exec(st, sql, p, np);
    }
    if (!res_ok(res)) {
        int rc = pg_fail(st, res, err);
        PQclear(res);
        return rc;
    }
    if (changes) {
        const char *t = PQcmdTuples(res);
        *changes = (t && *t) ? strtoll(t, NULL, 10) : 0;
    }
    if (!cur) {
        PQclear(res);
        return 0;
    }
    struct store__cur *c = xcalloc(1, sizeof(*c));
    c->res = res;
    c->row = -1;
    c->nrows = PQntuples(res);
    *cur = c;
    return 0;
}

static int pg_next(struct store__cur *c, struct weir_err *err)
{
    (void)err;
    if (c->row + 1 >= c->nrows) {
        c->row = c->nrows;
        return 0;
    }
    c->row++;
    return 1;
}

static const char *pg_col_text(struct store__cur *c, int i)
{
    if (PQgetisnull(c->res, c->row, i))
        return NULL;
    return PQgetvalue(c->res, c->row, i);
}

static int64_t pg_col_int(struct store__cur *c, int i)
{
    if (PQgetisnull(c->res, c->row, i))
        return 0;
    return strtoll(PQgetvalue(c->res, c->row, i), NULL, 10);
}

static bool pg_col_null(struct store__cur *c, int i)
{
    return PQgetisnull(c->res, c->row, i) != 0;
}

static void pg_cur_free(struct store__cur *c)
{
    if (!c)
        return;
    PQclear(c->res);
    free(c);
}

static int pg_script(struct store *st, const char *sql, struct weir_err *err)
{
    struct pg_db *db = st->db;
    PGresult *res = PQexec(db->conn, sql);
    int rc = res_ok(res) ? 0 : pg_fail(st, res, err);
    PQclear(res);
    return rc;
}

static int pg_begin(struct store *st, struct weir_err *err)
{
    return pg_query(st, "BEGIN", NULL, 0, NULL, NULL, err);
}

static int pg_commit(struct store *st, struct weir_err *err)
{
    struct pg_db *db = st->db;
    if (PQstatus(db->conn) != CONNECTION_OK)
        return err_set(err, WEIR_EUNAVAIL, "postgresql '%s': connection lost", st->url_safe);
    PGresult *res = PQexec(db->conn, "COMMIT");
    int rc = 0;
    if (!res_ok(res))
        rc = pg_fail(st, res, err);
    else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
        /* COMMIT of a transaction that an earlier statement aborted rolls it back */
        rc = err_set(err, WEIR_ECONFLICT,
                     "postgresql '%s': transaction rolled back after an earlier error",
                     st->url_safe);
    PQclear(res);
    return rc;
}

static void pg_rollback(struct store *st)
{
    struct pg_db *db = st->db;
    if (PQstatus(db->conn) != CONNECTION_OK)
        return; /* the server rolled back when the connection went */
    PGresult *res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);
}

static int pg_migrate_lock(struct store *st, struct weir_err *err)
{
    return pg_query(st, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK_KEY ")", NULL, 0, NULL,
                    NULL, err);
}

static int pg_has_table(struct store *st, const char *name, bool *exists, struct weir_err *err)
{
    struct store__cur *c = NULL;
    struct store__param p[] = { { SP_TEXT, name, 0 } };
    int rc = pg_query(st, "SELECT to_regclass($1) IS NOT NULL", p, 1, &c, NULL, err);
    if (rc < 0 || !c)
        return rc < 0 ? rc : -WEIR_EINTERNAL;
    *exists = pg_next(c, err) == 1 && strcmp(pg_col_text(c, 0), "t") == 0;
    pg_cur_free(c);
    return 0;
}

/* CREATE TABLE IF NOT EXISTS and friends send NOTICEs that libpq would print to stderr. */
static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void pg_close(struct store *st)
{
    struct pg_db *db = st->db;
    if (!db)
        return;
    PQfinish(db->conn);
    free(db);
    st->db = NULL;
}

static int pg_open(struct store *st, const char *url, struct weir_err *err)
{
    int lrc = pq_load(err);
    if (lrc < 0)
        return lrc;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        char msg[200];
        one_line(msg, sizeof(msg), perr ? perr : "out of memory");
        PQfreemem(perr);
        scrub_password(msg, sizeof(msg), url);
        return err_set(err, WEIR_EINVAL, "store url '%s': %s", st->url_safe, msg);
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            log_add_secret(o->val);
    PQconninfoFree(opts);

    /* Later entries win, so anything the URL says overrides these defaults. Keepalives
     * notice a vanished server (a network partition sends no RST) within about a minute
     * instead of leaving a query blocked for the kernel's two hours. */
    const char *const keys[] = { "connect_timeout",  "application_name", "client_encoding",
                                 "keepalives",       "keepalives_idle",  "keepalives_interval",
                                 "keepalives_count", "dbname",           NULL };
    const char *const vals[] = { "10", "weir", "UTF8", "1", "30", "10", "3", url, NULL };
    struct pg_db *db = xcalloc(1, sizeof(*db));
    st->db = db;
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        char msg[200];
        one_line(msg, sizeof(msg), db->conn ? PQerrorMessage(db->conn) : "out of memory");
        scrub_password(msg, sizeof(msg), url);
        int rc =
            err_set(err, WEIR_EUNAVAIL, "cannot connect to postgresql '%s': %s", st->url_safe, msg);
        pg_close(st);
        return rc;
    }
    PQsetNoticeProcessor(db->conn, pg_quiet, NULL);
    return 0;
}

const struct store__drv store__pg_drv = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .query = pg_query,
    .next = pg_next,
    .col_text = pg_col_text,
    .col_int = pg_col_int,
    .col_null = pg_col_null,
    .cur_free = pg_cur_free,
    .script = pg_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .migrate_lock = pg_migrate_lock,
    .has_table = pg_has_table,
};
