/* bench/warehouse/weir_runner.c - the weir engine's runner for the warehouse benchmark in
 * ../shared/bench/warehouse (run.py's runner protocol): loads events from CSV (and NDJSON
 * into a second table, checked against the first), the two dimensions, runs each query
 * REPS times and prints one JSON object as its last line. Build target: weir-bench-runner. */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/err.h"
#include "core/mem.h"
#include "warehouse/warehouse.h"

static const char *EVENTS_COLS =
    "(id bigint, type text, actor_login text, repo_name text, created_at timestamp, "
    "payload_size bigint, public boolean, org text)";
#define CHECK_SQL                                                                            \
    "SELECT count(*), sum(id), count(org), sum(payload_size), min(created_at), "             \
    "max(created_at), sum(CASE WHEN public THEN 1 ELSE 0 END), count(DISTINCT actor_login) " \
    "FROM %s"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static off_t total_bytes;
static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}
static int du_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)p, (void)ftw;
    if (f == FTW_F)
        total_bytes += sb->st_size;
    return 0;
}

static json_t *value(struct wh_result *r, size_t i, size_t c)
{
    if (wh_result_isnull(r, i, c))
        return json_null();
    switch (wh_result_coltype(r, c)) {
    case WH_T_BOOL:
    case WH_T_INT2:
    case WH_T_INT4:
    case WH_T_INT8:
        return json_integer(wh_result_int(r, i, c));
    case WH_T_FLOAT4:
    case WH_T_FLOAT8:
        return json_real(wh_result_double(r, i, c));
    default: {
        char buf[4096];
        wh_result_text(r, i, c, buf, sizeof buf);
        return json_string(buf);
    }
    }
}

static json_t *rows_json(struct wh_result *r)
{
    json_t *rows = json_array();
    for (size_t i = 0; r && i < wh_result_nrows(r); i++) {
        json_t *row = json_array();
        for (size_t c = 0; c < wh_result_ncols(r); c++)
            json_array_append_new(row, value(r, i, c));
        json_array_append_new(rows, row);
    }
    return rows;
}

static int run(struct wh_db *db, const char *sql, struct wh_result **out, double *secs)
{
    struct weir_err err;
    double t0 = now_s();
    int rc = wh_exec(db, sql, out, &err);
    if (secs)
        *secs = now_s() - t0;
    if (rc < 0)
        fprintf(stderr, "weir-bench-runner: %s: %s\n", sql, err.msg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *engine = "weir", *data = NULL, *dbdir = NULL, *qfile = NULL;
    int reps = 3;
    bool ndjson = true;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--engine") && has)
            engine = argv[++i];
        else if (!strcmp(argv[i], "--data") && has)
            data = argv[++i];
        else if (!strcmp(argv[i], "--db") && has)
            dbdir = argv[++i];
        else if (!strcmp(argv[i], "--queries") && has)
            qfile = argv[++i];
        else if (!strcmp(argv[i], "--reps") && has)
            reps = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--query-timeout") && has)
            i++; /* queries are not interruptible yet; run.py's own timeout applies */
        else if (!strcmp(argv[i], "--no-ndjson"))
            ndjson = false;
        else {
            fprintf(stderr, "usage: weir-bench-runner --data DIR --db PATH --queries FILE.json "
                            "[--reps N] [--query-timeout S] [--no-ndjson] [--engine NAME]\n");
            return 2;
        }
    }
    if (!data || !dbdir || !qfile || reps < 1) {
        fprintf(stderr, "weir-bench-runner: --data, --db and --queries are required\n");
        return 2;
    }
    nftw(dbdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    struct wh_db *db = NULL;
    struct weir_err err;
    if (wh_open(dbdir, &db, &err) < 0) {
        fprintf(stderr, "weir-bench-runner: %s\n", err.msg);
        return 1;
    }
    wh_set_mem_limit(db, (size_t)16 << 30);
    json_t *load = json_object();
    char *sql =
        xasprintf("CREATE TABLE event_types (type text, category text, is_write boolean); "
                  "COPY event_types FROM '%s/event_types.csv' WITH (FORMAT csv, HEADER true); "
                  "CREATE TABLE orgs (org text, tier text, country text, created_year integer); "
                  "COPY orgs FROM '%s/orgs.csv' WITH (FORMAT csv, HEADER true)",
                  data, data);
    double secs;
    if (run(db, sql, NULL, &secs) < 0)
        return 1;
    free(sql);
    json_object_set_new(load, "dims_s", json_real(secs));
    sql = xasprintf("CREATE TABLE events %s; COPY events FROM '%s/events.csv' WITH (FORMAT csv, "
                    "HEADER true)",
                    EVENTS_COLS, data);
    if (run(db, sql, NULL, &secs) < 0)
        return 1;
    free(sql);
    json_object_set_new(load, "csv_s", json_real(secs));
    if (ndjson) {
        sql = xasprintf("CREATE TABLE events_nd %s; COPY events_nd FROM '%s/events.ndjson' "
                        "WITH (FORMAT json)",
                        EVENTS_COLS, data);
        if (run(db, sql, NULL, &secs) < 0)
            return 1;
        free(sql);
        json_object_set_new(load, "ndjson_s", json_real(secs));
        struct wh_result *a = NULL, *b = NULL;
        char *c1 = xasprintf(CHECK_SQL, "events"), *c2 = xasprintf(CHECK_SQL, "events_nd");
        if (run(db, c1, &a, NULL) < 0 || run(db, c2, &b, NULL) < 0)
            return 1;
        json_t *ja = rows_json(a), *jb = rows_json(b);
        json_object_set_new(load, "ndjson_matches_csv", json_boolean(json_equal(ja, jb)));
        json_decref(ja);
        json_decref(jb);
        wh_result_free(a);
        wh_result_free(b);
        free(c1);
        free(c2);
        run(db, "DROP TABLE events_nd", NULL, NULL);
    }
    struct wh_result *cnt = NULL;
    if (run(db, "SELECT count(*) FROM events", &cnt, NULL) < 0)
        return 1;
    json_object_set_new(load, "rows", json_integer(wh_result_int(cnt, 0, 0)));
    wh_result_free(cnt);
    total_bytes = 0;
    nftw(dbdir, du_cb, 16, FTW_PHYS);
    json_object_set_new(load, "db_bytes", json_integer((json_int_t)total_bytes));

    json_error_t je;
    json_t *qs = json_load_file(qfile, 0, &je);
    if (!json_is_array(qs)) {
        fprintf(stderr, "weir-bench-runner: cannot read '%s': %s\n", qfile, je.text);
        return 1;
    }
    json_t *results = json_array();
    size_t i;
    json_t *q;
    json_array_foreach(qs, i, q) {
        const char *name = json_string_value(json_object_get(q, "name"));
        /* "sql" is the picked text, or run.py's map of engine -> variant ("*" = common); the
         * PostgreSQL-like duckdb variant is the closest dialect when there is no common SQL. */
        json_t *sj = json_object_get(q, "sql");
        const char *qsql = json_string_value(sj);
        if (json_is_object(sj)) {
            qsql = json_string_value(json_object_get(sj, engine));
            if (!qsql || !*qsql)
                qsql = json_string_value(json_object_get(sj, "*"));
            if (!qsql || !*qsql)
                qsql = json_string_value(json_object_get(sj, ""));
            if (!qsql || !*qsql)
                qsql = json_string_value(json_object_get(sj, "duckdb"));
        }
        json_t *times = json_array(), *rows = json_null(), *error = json_null();
        for (int r = 0; r < reps && qsql; r++) {
            struct wh_result *res = NULL;
            double t0 = now_s();
            err_clear(&err);
            int rc = wh_exec(db, qsql, &res, &err);
            double dt = now_s() - t0;
            if (rc < 0) {
                json_decref(error);
                error = json_string(err.msg);
                break;
            }
            json_array_append_new(times, json_real(dt));
            if (r == 0) {
                json_decref(rows);
                rows = rows_json(res);
            }
            wh_result_free(res);
        }
        json_array_append_new(results, json_pack("{s:s,s:o,s:o,s:o}", "name", name ? name : "?",
                                                 "times", times, "rows", rows, "error", error));
        fprintf(stderr, "weir-bench-runner: %s done\n", name ? name : "?");
    }
    json_t *outj = json_pack("{s:s,s:s,s:o,s:o}", "engine", engine, "version", WEIR_VERSION, "load",
                             load, "queries", results);
    char *s = json_dumps(outj, JSON_COMPACT | JSON_REAL_PRECISION(12));
    printf("%s\n", s);
    free(s);
    json_decref(outj);
    json_decref(qs);
    wh_close(db);
    /* run.py cleans its db folder with unlink(), which cannot remove a folder: remove ours
     * unless asked to keep it. */
    if (!getenv("WEIR_BENCH_KEEP_DB"))
        nftw(dbdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
