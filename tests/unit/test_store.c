/* tests/unit/test_store.c - the store.h contract, run against SQLite (a temp file per test)
 * and, with --pg, against PostgreSQL: the URL comes from the file named by
 * WEIR_TEST_PG_URL_FILE (ctest fixture "pg"); the suite works in its own database
 * weir_t_<pid> and each test in a fresh schema of it. */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store.h"

static bool use_pg;
static char pg_base[512];  /* URL of this run's database, without options */
static char pg_admin[512]; /* URL of the fixture's weir_test database */
static char pg_dbname[64];
static int schema_seq;

struct ctx {
    struct store *st;
    char dir[256];
    char url[1024];
};

static void pg_exec_admin(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to '%s': %s", url, PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("'%s' failed: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* A URL naming an empty database: a new file (SQLite) or a new schema (PostgreSQL). */
static void fresh_url(struct ctx *x, const char *name, char *out, size_t len)
{
    if (!use_pg) {
        snprintf(out, len, "sqlite://%s/%s.db", x->dir, name);
        return;
    }
    char schema[64], sql[128];
    snprintf(schema, sizeof(schema), "t%d_%s", ++schema_seq, name);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    pg_exec_admin(pg_base, sql);
    snprintf(out, len, "%s?options=-csearch_path%%3D%s", pg_base, schema);
}

static int setup(void **state)
{
    struct ctx *x = xcalloc(1, sizeof(*x));
    snprintf(x->dir, sizeof(x->dir), "/tmp/weir-store-XXXXXX");
    if (!mkdtemp(x->dir))
        return -1;
    fresh_url(x, "main", x->url, sizeof(x->url));
    struct weir_err e = { 0 };
    x->st = store_open(x->url, &e);
    if (!x->st) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    if (store_migrate(x->st, NULL, &e) < 0) {
        fprintf(stderr, "store_migrate: %s\n", e.msg);
        return -1;
    }
    *state = x;
    return 0;
}

/* Removes our own mkdtemp folder: the databases the tests create and their WAL files. */
static void rm_tree(const char *dir)
{
    static const char *const names[] = { "main.db", "conc.db", "empty.db", "file" };
    static const char *const sfx[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t j = 0; j < sizeof(sfx) / sizeof(sfx[0]); j++) {
            char p[400];
            snprintf(p, sizeof(p), "%s/%s%s", dir, names[i], sfx[j]);
            unlink(p);
        }
    }
    rmdir(dir);
}

static int teardown(void **state)
{
    struct ctx *x = *state;
    store_free(x->st);
    rm_tree(x->dir);
    free(x);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

#define OK(call)                                          \
    do {                                                  \
        struct weir_err e_ = { 0 };                       \
        int rc_ = (call);                                 \
        if (rc_ < 0)                                      \
            fail_msg("%s -> %d: %s", #call, rc_, e_.msg); \
    } while (0)
#define E (&e_)

static const int64_t T0 = INT64_C(1767225600000000); /* 2026-01-01T00:00:00Z */
static const int64_t HOUR = INT64_C(3600000000);

static void make_dag(struct store *st, const char *dag_id)
{
    int64_t v = 0;
    OK(store_dag_sync(st, dag_id, "/dags/x.yaml", "{\"tasks\":{}}", "", "0 * * * *", "UTC", NULL,
                      false, &v, E));
}

static void make_run(struct store *st, const char *dag_id, const char *run_id,
                     enum store_run_state state, enum store_run_type type, int64_t logical,
                     const char *tasks_json)
{
    struct store_run r = { 0 };
    r.dag_id = (char *)dag_id;
    r.run_id = (char *)run_id;
    r.version = 1;
    r.state = state;
    r.run_type = type;
    r.logical_date = logical;
    r.data_interval_start = logical == TS_NONE ? TS_NONE : logical - HOUR;
    r.data_interval_end = logical;
    r.queued_at = T0;
    r.start_date = TS_NONE;
    r.end_date = TS_NONE;
    json_t *tasks = tasks_json ? json_loads(tasks_json, 0, NULL) : NULL;
    OK(store_run_create(st, &r, tasks, E));
    assert_true(r.id > 0);
    json_decref(tasks);
}

/* ---- migrations ------------------------------------------------------------------- */

static void test_migrate(void **state)
{
    struct ctx *x = *state;
    int v = -1, applied = -1;
    OK(store_schema_version(x->st, &v, E));
    assert_int_equal(v, store_schema_latest());
    assert_true(store_schema_latest() >= 1);
    OK(store_migrate(x->st, &applied, E));
    assert_int_equal(applied, 0);
    assert_string_equal(store_backend(x->st), use_pg ? "postgresql" : "sqlite");

    char url[1024];
    fresh_url(x, "empty", url, sizeof(url));
    struct weir_err e = { 0 };
    struct store *st = store_open(url, &e);
    assert_non_null(st);
    OK(store_schema_version(st, &v, E));
    assert_int_equal(v, 0);
    OK(store_migrate(st, &applied, E));
    assert_int_equal(applied, store_schema_latest());
    OK(store_schema_version(st, &v, E));
    assert_int_equal(v, store_schema_latest());
    int64_t slots = 0;
    OK(store_pool_get(st, "default_pool", &slots, E));
    assert_int_equal(slots, 128);
    store_free(st);
}

struct mig_thread {
    const char *url;
    int applied;
    int rc;
    char msg[256];
};

static void *mig_main(void *arg)
{
    struct mig_thread *t = arg;
    struct weir_err e = { 0 };
    struct store *st = store_open(t->url, &e);
    if (!st) {
        t->rc = -e.code;
        snprintf(t->msg, sizeof(t->msg), "%s", e.msg);
        return NULL;
    }
    t->rc = store_migrate(st, &t->applied, &e);
    snprintf(t->msg, sizeof(t->msg), "%s", e.msg);
    store_free(st);
    return NULL;
}

static void test_migrate_concurrent(void **state)
{
    struct ctx *x = *state;
    char url[1024];
    fresh_url(x, "conc", url, sizeof(url));
    enum {
        N = 4
    };
    struct mig_thread t[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        t[i] = (struct mig_thread){ .url = url };
        assert_int_equal(pthread_create(&th[i], NULL, mig_main, &t[i]), 0);
    }
    int sum = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (t[i].rc < 0)
            fail_msg("migrate in thread %d: %s", i, t[i].msg);
        sum += t[i].applied;
    }
    assert_int_equal(sum, store_schema_latest());
    struct weir_err e = { 0 };
    struct store *st = store_open(url, &e);
    assert_non_null(st);
    int v = 0;
    OK(store_schema_version(st, &v, E));
    assert_int_equal(v, store_schema_latest());
    store_free(st);
}

/* ---- DAGs ------------------------------------------------------------------------- */

static void test_dag_sync(void **state)
{
    struct ctx *x = *state;
    struct store *st = x->st;
    int64_t v = 0;
    json_t *tags = json_pack("[ss]", "weather", "hourly");
    OK(store_dag_sync(st, "wx", "/dags/wx.yaml", "{\"a\":1}", "Forecasts", "0 * * * *",
                      "Europe/Amsterdam", tags, true, &v, E));
    assert_int_equal(v, 1);
    OK(store_dag_sync(st, "wx", "/dags/wx.yaml", "{\"a\":1}", "Forecasts", "0 * * * *",
                      "Europe/Amsterdam", tags, false, &v, E));
    assert_int_equal(v, 1);
    OK(store_dag_sync(st, "wx", "/dags/wx.yaml", "{\"a\":2}", "Forecasts 2", "0 * * * *",
                      "Europe/Amsterdam", tags, false, &v, E));
    assert_int_equal(v, 2);
    json_decref(tags);

    struct store_dag d;
    OK(store_dag_get(st, "wx", &d, E));
    assert_string_equal(d.dag_id, "wx");
    assert_string_equal(d.fileloc, "/dags/wx.yaml");
    assert_string_equal(d.description, "Forecasts 2");
    assert_string_equal(d.schedule, "0 * * * *");
    assert_string_equal(d.timezone, "Europe/Amsterdam");
    assert_int_equal(json_array_size(d.tags), 2);
    assert_true(d.is_paused); /* paused on create, and a resync does not unpause */
    assert_true(d.is_active);
    assert_int_equal(d.version, 2);
    assert_true(d.last_parsed != TS_NONE);
    assert_true(d.next_dagrun == TS_NONE);

    json_t *j = store_dag_to_json(&d);
    assert_string_equal(json_string_value(json_object_get(j, "dag_id")), "wx");
    assert_true(json_is_true(json_object_get(j, "is_paused")));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "tags"), 0), "name")),
        "weather");
    json_t *si = json_object_get(j, "schedule_interval");
    assert_string_equal(json_string_value(json_object_get(si, "__type")), "CronExpression");
    assert_string_equal(json_string_value(json_object_get(si, "value")), "0 * * * *");
    assert_true(json_is_null(json_object_get(j, "next_dagrun")));
    json_decref(j);
    store_dag_release(&d);

    char *doc = NULL;
    OK(store_dag_version_get(st, "wx", 1, &doc, E));
    assert_string_equal(doc, "{\"a\":1}");
    free(doc);
    struct weir_err e = { 0 };
    assert_int_equal(store_dag_version_get(st, "wx", 3, &doc, &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_dag_get(st, "nope", &d, &e), -WEIR_ENOTFOUND);
    assert_non_null(strstr(e.msg, "'nope'"));

    OK(store_dag_set_paused(st, "wx", false, E));
    OK(store_dag_set_next(st, "wx", T0, T0 + HOUR, E));
    OK(store_dag_get(st, "wx", &d, E));
    assert_false(d.is_paused);
    assert_true(d.next_dagrun == T0);
    assert_true(d.next_dagrun_create_after == T0 + HOUR);
    j = store_dag_to_json(&d);
    assert_string_equal(json_string_value(json_object_get(j, "next_dagrun")),
                        "2026-01-01T00:00:00+00:00");
    json_decref(j);
    store_dag_release(&d);
    assert_int_equal(store_dag_set_paused(st, "nope", true, &e), -WEIR_ENOTFOUND);

    /* a second DAG in another folder, a third in the same folder */
    OK(store_dag_sync(st, "b", "/other/b.yaml", "{}", NULL, NULL, NULL, NULL, false, &v, E));
    OK(store_dag_sync(st, "c", "/dags/c.yaml", "{}", NULL, NULL, NULL, NULL, false, &v, E));
    json_t *keep = json_pack("[s]", "c");
    struct weir_err e2 = { 0 };
    int n = store_dag_deactivate_missing(st, "/dags/", keep, &e2);
    assert_int_equal(n, 1);
    json_decref(keep);

    struct store_dag_list l;
    OK(store_dag_list(st, true, 0, 0, &l, E));
    assert_int_equal(l.n, 2);
    assert_int_equal(l.total, 2);
    assert_string_equal(l.items[0].dag_id, "b");
    assert_string_equal(l.items[1].dag_id, "c");
    assert_null(l.items[0].schedule);
    assert_string_equal(l.items[0].timezone, "UTC");
    store_dag_list_release(&l);
    OK(store_dag_list(st, false, 1, 1, &l, E));
    assert_int_equal(l.n, 1);
    assert_int_equal(l.total, 3);
    assert_string_equal(l.items[0].dag_id, "c");
    store_dag_list_release(&l);

    /* a resync reactivates */
    OK(store_dag_sync(st, "wx", "/dags/wx.yaml", "{\"a\":2}", "Forecasts 2", "0 * * * *",
                      "Europe/Amsterdam", NULL, false, &v, E));
    assert_int_equal(v, 2);
    OK(store_dag_get(st, "wx", &d, E));
    assert_true(d.is_active);
    j = store_dag_to_json(&d);
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 0);
    json_decref(j);
    store_dag_release(&d);

    assert_int_equal(store_dag_sync(st, "", "/x", "{}", NULL, NULL, NULL, NULL, false, &v, &e),
                     -WEIR_EINVAL);
}

static void test_import_errors(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    OK(store_import_error_set(st, "/dags/bad.yaml", "bad.yaml:3:1: unknown key 'x'", E));
    OK(store_import_error_set(st, "/dags/bad.yaml", "bad.yaml:4:1: unknown key 'y'", E));
    OK(store_import_error_set(st, "/dags/worse.yaml", "oops", E));
    json_t *l = NULL;
    OK(store_import_error_list(st, &l, E));
    assert_int_equal(json_array_size(l), 2);
    json_t *a = json_array_get(l, 0);
    assert_string_equal(json_string_value(json_object_get(a, "filename")), "/dags/bad.yaml");
    assert_string_equal(json_string_value(json_object_get(a, "stack_trace")),
                        "bad.yaml:4:1: unknown key 'y'");
    assert_true(json_is_integer(json_object_get(a, "import_error_id")));
    assert_true(json_is_string(json_object_get(a, "timestamp")));
    json_decref(l);
    OK(store_import_error_clear(st, "/dags/bad.yaml", E));
    OK(store_import_error_clear(st, "/dags/never.yaml", E));
    OK(store_import_error_list(st, &l, E));
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
}

/* ---- runs ------------------------------------------------------------------------- */

static void test_run_create(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "d");
    struct store_run r = { 0 };
    r.dag_id = "d";
    r.run_id = "manual__1";
    r.version = 1;
    r.state = RUN_QUEUED;
    r.run_type = RUN_TYPE_MANUAL;
    r.logical_date = TS_NONE;
    r.data_interval_start = r.data_interval_end = TS_NONE;
    r.queued_at = T0;
    r.start_date = r.end_date = TS_NONE;
    r.conf = json_pack("{si}", "x", 1);
    r.note = "hello";
    json_t *tasks = json_pack("[sss]", "extract", "load", "transform");
    OK(store_run_create(st, &r, tasks, E));
    assert_true(r.id > 0);
    int64_t id1 = r.id;
    struct weir_err e = { 0 };
    assert_int_equal(store_run_create(st, &r, tasks, &e), -WEIR_ECONFLICT);
    assert_non_null(strstr(e.msg, "'manual__1'"));
    json_decref(r.conf);

    struct store_run g;
    OK(store_run_get(st, "d", "manual__1", &g, E));
    assert_int_equal(g.id, id1);
    assert_int_equal(g.state, RUN_QUEUED);
    assert_int_equal(g.run_type, RUN_TYPE_MANUAL);
    assert_true(g.logical_date == TS_NONE);
    assert_true(g.queued_at == T0);
    assert_true(g.start_date == TS_NONE);
    assert_int_equal(json_integer_value(json_object_get(g.conf, "x")), 1);
    assert_string_equal(g.note, "hello");
    json_t *j = store_run_to_json(&g);
    assert_string_equal(json_string_value(json_object_get(j, "dag_run_id")), "manual__1");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
    assert_string_equal(json_string_value(json_object_get(j, "run_type")), "manual");
    assert_true(json_is_null(json_object_get(j, "logical_date")));
    assert_string_equal(json_string_value(json_object_get(j, "queued_at")),
                        "2026-01-01T00:00:00+00:00");
    assert_true(json_is_true(json_object_get(j, "external_trigger")));
    assert_true(json_is_object(json_object_get(j, "conf")));
    json_decref(j);
    store_run_release(&g);

    struct store_ti_list tl;
    OK(store_ti_list_run(st, "d", "manual__1", &tl, E));
    assert_int_equal(tl.n, 3);
    assert_string_equal(tl.items[0].task_id, "extract");
    assert_string_equal(tl.items[2].task_id, "transform");
    assert_int_equal(tl.items[1].state, TI_NONE);
    assert_int_equal(tl.items[1].try_number, 0);
    assert_string_equal(tl.items[1].pool, "default_pool");
    store_ti_list_release(&tl);

    /* conf NULL means {} ; a run of an unknown DAG is not found */
    r.run_id = "manual__2";
    r.conf = NULL;
    r.note = NULL;
    OK(store_run_create(st, &r, NULL, E));
    OK(store_run_get(st, "d", "manual__2", &g, E));
    assert_int_equal(json_object_size(g.conf), 0);
    assert_null(g.note);
    store_run_release(&g);
    r.dag_id = "ghost";
    assert_int_equal(store_run_create(st, &r, NULL, &e), -WEIR_ENOTFOUND);
    assert_non_null(strstr(e.msg, "'ghost'"));
    assert_int_equal(store_run_get(st, "d", "nope", &g, &e), -WEIR_ENOTFOUND);

    /* a conflict inside an open transaction leaves it usable */
    r.dag_id = "d";
    OK(store_begin(st, E));
    r.run_id = "manual__3";
    OK(store_run_create(st, &r, tasks, E));
    assert_int_equal(store_run_create(st, &r, tasks, &e), -WEIR_ECONFLICT);
    r.run_id = "manual__4";
    OK(store_run_create(st, &r, tasks, E));
    OK(store_commit(st, E));
    OK(store_run_get(st, "d", "manual__3", &g, E));
    store_run_release(&g);
    OK(store_run_get(st, "d", "manual__4", &g, E));
    store_run_release(&g);

    /* duplicate task ids */
    json_t *dup = json_pack("[ss]", "a", "a");
    r.run_id = "manual__5";
    assert_int_equal(store_run_create(st, &r, dup, &e), -WEIR_EINVAL);
    assert_int_equal(store_run_get(st, "d", "manual__5", &g, &e), -WEIR_ENOTFOUND);
    json_decref(dup);
    json_decref(tasks);
}

static void test_run_list(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "a");
    make_dag(st, "b");
    for (int i = 0; i < 5; i++) {
        char id[64];
        snprintf(id, sizeof(id), "scheduled__%d", i);
        make_run(st, "a", id, i < 2 ? RUN_SUCCESS : (i == 4 ? RUN_RUNNING : RUN_QUEUED),
                 RUN_TYPE_SCHEDULED, T0 + i * HOUR, "[\"t\"]");
    }
    make_run(st, "a", "manual__x", RUN_FAILED, RUN_TYPE_MANUAL, T0 + 10 * HOUR, NULL);
    make_run(st, "b", "scheduled__0", RUN_RUNNING, RUN_TYPE_SCHEDULED, T0, NULL);

    struct store_run_filter f;
    store_run_filter_init(&f);
    struct store_run_list l;
    OK(store_run_list(st, &f, &l, E));
    assert_int_equal(l.n, 7);
    assert_int_equal(l.total, 7);
    assert_string_equal(l.items[0].run_id, "manual__x"); /* -logical_date by default */
    store_run_list_release(&l);

    f.dag_id = "a";
    f.state_mask = (1 << RUN_QUEUED) | (1 << RUN_RUNNING);
    f.order_by = "logical_date";
    OK(store_run_list(st, &f, &l, E));
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].run_id, "scheduled__2");
    assert_string_equal(l.items[2].run_id, "scheduled__4");
    store_run_list_release(&l);

    store_run_filter_init(&f);
    f.dag_id = "a";
    f.logical_date_gte = T0 + HOUR;
    f.logical_date_lte = T0 + 3 * HOUR;
    f.order_by = "-logical_date";
    f.limit = 2;
    OK(store_run_list(st, &f, &l, E));
    assert_int_equal(l.n, 2);
    assert_int_equal(l.total, 3);
    assert_string_equal(l.items[0].run_id, "scheduled__3");
    assert_string_equal(l.items[1].run_id, "scheduled__2");
    store_run_list_release(&l);
    f.offset = 2;
    OK(store_run_list(st, &f, &l, E));
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].run_id, "scheduled__1");
    store_run_list_release(&l);

    store_run_filter_init(&f);
    f.order_by = "id";
    f.offset = 5;
    OK(store_run_list(st, &f, &l, E));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].run_id, "manual__x");
    store_run_list_release(&l);
    f.order_by = "-start_date";
    OK(store_run_list(st, &f, &l, E));
    store_run_list_release(&l);
    f.order_by = "sideways";
    struct weir_err e = { 0 };
    assert_int_equal(store_run_list(st, &f, &l, &e), -WEIR_EINVAL);
    OK(store_run_list(st, NULL, &l, E));
    assert_int_equal(l.n, 7);
    store_run_list_release(&l);
    struct store_run_filter zero = { .dag_id = "b" }; /* bounds 0: unbounded */
    OK(store_run_list(st, &zero, &l, E));
    assert_int_equal(l.n, 1);
    store_run_list_release(&l);

    int64_t n = 0;
    OK(store_run_count_active(st, "a", &n, E));
    assert_int_equal(n, 3);
    OK(store_run_count_active(st, "zzz", &n, E));
    assert_int_equal(n, 0);

    struct store_run r;
    OK(store_run_latest_scheduled(st, "a", &r, E));
    assert_string_equal(r.run_id, "scheduled__4"); /* the manual one is later but not scheduled */
    store_run_release(&r);
    make_dag(st, "c");
    assert_int_equal(store_run_latest_scheduled(st, "c", &r, &e), -WEIR_ENOTFOUND);
}

static void test_run_state(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "d");
    make_run(st, "d", "r1", RUN_QUEUED, RUN_TYPE_SCHEDULED, T0, "[\"t\"]");
    OK(store_run_set_state(st, "d", "r1", RUN_QUEUED, RUN_RUNNING, T0 + 5, TS_NONE, E));
    struct weir_err e = { 0 };
    assert_int_equal(
        store_run_set_state(st, "d", "r1", RUN_QUEUED, RUN_RUNNING, TS_NONE, TS_NONE, &e),
        -WEIR_ECONFLICT);
    assert_non_null(strstr(e.msg, "running"));
    assert_int_equal(
        store_run_set_state(st, "d", "nope", RUN_QUEUED, RUN_RUNNING, TS_NONE, TS_NONE, &e),
        -WEIR_ENOTFOUND);
    OK(store_run_set_state(st, "d", "r1", -1, RUN_SUCCESS, TS_NONE, T0 + 99, E));
    OK(store_run_set_note(st, "d", "r1", "done", E));
    assert_int_equal(store_run_set_note(st, "d", "nope", "x", &e), -WEIR_ENOTFOUND);
    struct store_run r;
    OK(store_run_get(st, "d", "r1", &r, E));
    assert_int_equal(r.state, RUN_SUCCESS);
    assert_true(r.start_date == T0 + 5);
    assert_true(r.end_date == T0 + 99);
    assert_string_equal(r.note, "done");
    json_t *j = store_run_to_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "logical_date")),
                        "2026-01-01T00:00:00+00:00");
    assert_string_equal(json_string_value(json_object_get(j, "execution_date")),
                        "2026-01-01T00:00:00+00:00");
    assert_string_equal(json_string_value(json_object_get(j, "data_interval_start")),
                        "2025-12-31T23:00:00+00:00");
    assert_true(json_is_false(json_object_get(j, "external_trigger")));
    assert_string_equal(json_string_value(json_object_get(j, "state")), "success");
    json_decref(j);
    store_run_release(&r);
}

/* ---- task instances ---------------------------------------------------------------- */

static void test_ti_cas(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "d");
    make_run(st, "d", "r1", RUN_RUNNING, RUN_TYPE_SCHEDULED, T0, "[\"a\",\"b\",\"c\"]");
    make_run(st, "d", "r2", RUN_SUCCESS, RUN_TYPE_SCHEDULED, T0 + HOUR, "[\"a\"]");

    struct store_ti_update u = { .to = TI_SCHEDULED };
    OK(store_ti_update(st, "d", "r1", "a", TI_NONE, -1, &u, E));
    struct weir_err e = { 0 };
    assert_int_equal(store_ti_update(st, "d", "r1", "a", TI_NONE, -1, &u, &e), -WEIR_ECONFLICT);
    assert_non_null(strstr(e.msg, "'scheduled'"));
    assert_int_equal(store_ti_update(st, "d", "r1", "zz", TI_NONE, -1, &u, &e), -WEIR_ENOTFOUND);

    u = (struct store_ti_update){ .to = TI_QUEUED,
                                  .set_queued_at = true,
                                  .queued_at = T0 + 1,
                                  .set_max_tries = true,
                                  .max_tries = 3,
                                  .set_executor_ref = true,
                                  .executor_ref = "pod-1" };
    OK(store_ti_update(st, "d", "r1", "a", TI_SCHEDULED, 0, &u, E));
    u = (struct store_ti_update){ .to = TI_RUNNING,
                                  .set_try_number = true,
                                  .try_number = 1,
                                  .set_start_date = true,
                                  .start_date = T0 + 2,
                                  .set_hostname = true,
                                  .hostname = "host1",
                                  .set_pid = true,
                                  .pid = 4242 };
    /* wrong expected try */
    assert_int_equal(store_ti_update(st, "d", "r1", "a", TI_QUEUED, 5, &u, &e), -WEIR_ECONFLICT);
    OK(store_ti_update(st, "d", "r1", "a", TI_QUEUED, 0, &u, E));

    struct store_ti t;
    OK(store_ti_get(st, "d", "r1", "a", &t, E));
    assert_int_equal(t.state, TI_RUNNING);
    assert_int_equal(t.try_number, 1);
    assert_int_equal(t.max_tries, 3);
    assert_true(t.queued_at == T0 + 1);
    assert_true(t.start_date == T0 + 2);
    assert_true(t.end_date == TS_NONE);
    assert_string_equal(t.hostname, "host1");
    assert_int_equal(t.pid, 4242);
    assert_string_equal(t.executor_ref, "pod-1");
    assert_null(t.note);
    store_ti_release(&t);

    /* heartbeats: only for the running try */
    OK(store_ti_heartbeat(st, "d", "r1", "a", 1, T0 + 50, E));
    assert_int_equal(store_ti_heartbeat(st, "d", "r1", "a", 2, T0 + 60, &e), -WEIR_ECONFLICT);
    assert_int_equal(store_ti_heartbeat(st, "d", "r1", "b", 0, T0 + 60, &e), -WEIR_ECONFLICT);
    assert_int_equal(store_ti_heartbeat(st, "d", "r1", "zz", 1, T0 + 60, &e), -WEIR_ENOTFOUND);
    OK(store_ti_get(st, "d", "r1", "a", &t, E));
    assert_true(t.heartbeat_at == T0 + 50);
    store_ti_release(&t);

    /* counts and lists */
    int64_t n = 0;
    OK(store_ti_count_active(st, "d", NULL, &n, E));
    assert_int_equal(n, 1);
    OK(store_ti_count_active(st, NULL, "default_pool", &n, E));
    assert_int_equal(n, 1);
    OK(store_ti_count_active(st, NULL, "other", &n, E));
    assert_int_equal(n, 0);

    struct store_ti_list l;
    struct store_ti_filter f = { .dag_id = "d", .state_mask = 1 << TI_NONE };
    OK(store_ti_list(st, &f, &l, E));
    assert_int_equal(l.n, 3); /* r1/b, r1/c, r2/a */
    assert_int_equal(l.total, 3);
    store_ti_list_release(&l);
    f = (struct store_ti_filter){ .run_id = "r1",
                                  .state_mask = (1 << TI_NONE) | (1 << TI_RUNNING),
                                  .limit = 2 };
    OK(store_ti_list(st, &f, &l, E));
    assert_int_equal(l.n, 2);
    assert_int_equal(l.total, 3);
    assert_string_equal(l.items[0].task_id, "a");
    store_ti_list_release(&l);
    OK(store_ti_list(st, NULL, &l, E));
    assert_int_equal(l.n, 4);
    store_ti_list_release(&l);

    OK(store_ti_list_state(st, TI_RUNNING, &l, E));
    assert_int_equal(l.n, 1);
    store_ti_list_release(&l);
    OK(store_ti_list_state(st, TI_NONE, &l, E)); /* r2 is finished: its TI is left out */
    assert_int_equal(l.n, 2);
    store_ti_list_release(&l);

    /* finish, then clear back to none (NULL) */
    u = (struct store_ti_update){ .to = TI_SUCCESS,
                                  .set_end_date = true,
                                  .end_date = T0 + 2000002,
                                  .set_note = true,
                                  .note = "ok" };
    OK(store_ti_update(st, "d", "r1", "a", TI_RUNNING, 1, &u, E));
    OK(store_ti_get(st, "d", "r1", "a", &t, E));
    json_t *j = store_ti_to_json(&t);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "success");
    assert_string_equal(json_string_value(json_object_get(j, "dag_run_id")), "r1");
    assert_true(json_real_value(json_object_get(j, "duration")) > 1.99 &&
                json_real_value(json_object_get(j, "duration")) < 2.01);
    assert_string_equal(json_string_value(json_object_get(j, "start_date")),
                        "2026-01-01T00:00:00.000002+00:00");
    assert_int_equal(json_integer_value(json_object_get(j, "pid")), 4242);
    assert_string_equal(json_string_value(json_object_get(j, "pool")), "default_pool");
    json_decref(j);
    store_ti_release(&t);
    u = (struct store_ti_update){ .to = TI_NONE,
                                  .set_end_date = true,
                                  .end_date = TS_NONE,
                                  .set_start_date = true,
                                  .start_date = TS_NONE };
    OK(store_ti_update(st, "d", "r1", "a", -1, -1, &u, E));
    OK(store_ti_get(st, "d", "r1", "a", &t, E));
    assert_int_equal(t.state, TI_NONE);
    assert_true(t.start_date == TS_NONE);
    j = store_ti_to_json(&t);
    assert_true(json_is_null(json_object_get(j, "state")));
    assert_true(json_is_null(json_object_get(j, "duration")));
    json_decref(j);
    store_ti_release(&t);
}

/* ---- logs --------------------------------------------------------------------------- */

static void test_logs(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "d");
    make_run(st, "d", "r", RUN_RUNNING, RUN_TYPE_SCHEDULED, T0, "[\"t\"]");
    const char *three[] = { "one", "two", "three" };
    int64_t ts3[] = { T0, T0 + 1, T0 + 2 };
    OK(store_log_append(st, "d", "r", "t", 1, three, ts3, 3, E));
    enum {
        N = 150
    };
    const char *many[N];
    char bufs[N][24];
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "line %d", i + 4);
        many[i] = bufs[i];
    }
    OK(store_log_append(st, "d", "r", "t", 1, many, NULL, N, E));
    OK(store_log_append(st, "d", "r", "t", 2, three, ts3, 1, E));
    OK(store_log_append(st, "d", "r", "t", 2, three, NULL, 0, E));

    struct store_log_list l;
    OK(store_log_read(st, "d", "r", "t", 1, 0, 0, &l, E));
    assert_int_equal(l.n, 3 + N);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(l.items[i].seq, (int64_t)i + 1);
    assert_string_equal(l.items[0].line, "one");
    assert_true(l.items[2].ts == T0 + 2);
    assert_string_equal(l.items[3].line, "line 4");
    assert_string_equal(l.items[l.n - 1].line, "line 153");
    assert_true(l.items[l.n - 1].ts > T0);
    store_log_list_release(&l);
    OK(store_log_read(st, "d", "r", "t", 1, 150, 0, &l, E));
    assert_int_equal(l.n, 3);
    assert_int_equal(l.items[0].seq, 151);
    store_log_list_release(&l);
    OK(store_log_read(st, "d", "r", "t", 1, 10, 5, &l, E));
    assert_int_equal(l.n, 5);
    assert_int_equal(l.items[4].seq, 15);
    store_log_list_release(&l);
    OK(store_log_read(st, "d", "r", "t", 2, 0, 0, &l, E));
    assert_int_equal(l.n, 1);
    store_log_list_release(&l);
    OK(store_log_read(st, "d", "r", "t", 3, 0, 0, &l, E));
    assert_int_equal(l.n, 0);
    store_log_list_release(&l);

    /* long and non-UTF-8 lines */
    size_t big = 70000;
    char *longl = xmalloc(big + 1);
    memset(longl, 'x', big);
    longl[big] = '\0';
    const char *odd[] = { longl, "bad \xff\xfe byte", NULL };
    OK(store_log_append(st, "d", "r", "t", 3, odd, NULL, 3, E));
    free(longl);
    OK(store_log_read(st, "d", "r", "t", 3, 0, 0, &l, E));
    assert_int_equal(l.n, 3);
    assert_int_equal(strlen(l.items[0].line), 64 * 1024);
    assert_string_equal(l.items[1].line, "bad ?? byte");
    assert_string_equal(l.items[2].line, "");
    store_log_list_release(&l);

    struct weir_err e = { 0 };
    assert_int_equal(store_log_append(st, "d", "r", "ghost", 1, three, NULL, 1, &e),
                     -WEIR_ENOTFOUND);
    assert_non_null(strstr(e.msg, "'ghost'"));
}

/* ---- XCom, variables, connections, pools ------------------------------------------- */

static void test_xcom(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "d");
    make_run(st, "d", "r", RUN_RUNNING, RUN_TYPE_SCHEDULED, T0, "[\"a\",\"b\"]");
    json_t *v = json_pack("{s:s,s:[i,i]}", "object", "s3://raw/x.json", "n", 1, 2);
    OK(store_xcom_set(st, "d", "r", "a", "return_value", v, E));
    json_decref(v);
    v = json_integer(42);
    OK(store_xcom_set(st, "d", "r", "a", "count", v, E));
    json_decref(v);
    v = json_string("first");
    OK(store_xcom_set(st, "d", "r", "b", "name", v, E));
    json_decref(v);
    v = json_string("second");
    OK(store_xcom_set(st, "d", "r", "b", "name", v, E));
    json_decref(v);

    json_t *got = NULL;
    OK(store_xcom_get(st, "d", "r", "a", "return_value", &got, E));
    assert_string_equal(json_string_value(json_object_get(got, "object")), "s3://raw/x.json");
    json_decref(got);
    OK(store_xcom_get(st, "d", "r", "a", "count", &got, E));
    assert_int_equal(json_integer_value(got), 42);
    json_decref(got);
    OK(store_xcom_get(st, "d", "r", "b", "name", &got, E));
    assert_string_equal(json_string_value(got), "second");
    json_decref(got);
    struct weir_err e = { 0 };
    assert_int_equal(store_xcom_get(st, "d", "r", "a", "nope", &got, &e), -WEIR_ENOTFOUND);
    v = json_true();
    assert_int_equal(store_xcom_set(st, "d", "r", "ghost", "k", v, &e), -WEIR_ENOTFOUND);

    json_t *l = NULL;
    OK(store_xcom_list(st, "d", "r", NULL, &l, E));
    assert_int_equal(json_array_size(l), 3);
    json_t *first = json_array_get(l, 0);
    assert_string_equal(json_string_value(json_object_get(first, "task_id")), "a");
    assert_string_equal(json_string_value(json_object_get(first, "key")), "count");
    assert_string_equal(json_string_value(json_object_get(first, "dag_run_id")), "r");
    assert_int_equal(json_integer_value(json_object_get(first, "value")), 42);
    assert_true(json_is_string(json_object_get(first, "timestamp")));
    json_decref(l);
    OK(store_xcom_list(st, "d", "r", "b", &l, E));
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    OK(store_xcom_clear(st, "d", "r", "a", E));
    OK(store_xcom_list(st, "d", "r", NULL, &l, E));
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
}

static void test_variables(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    OK(store_var_set(st, "city", "Utrecht", "where", E));
    OK(store_var_set(st, "alpha", "1", NULL, E));
    OK(store_var_set(st, "city", "Delft", "where", E));
    char *s = NULL;
    OK(store_var_get(st, "city", &s, E));
    assert_string_equal(s, "Delft");
    free(s);
    json_t *l = NULL;
    OK(store_var_list(st, &l, E));
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "key")), "alpha");
    assert_true(json_is_null(json_object_get(json_array_get(l, 0), "description")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "value")), "Delft");
    json_decref(l);
    OK(store_var_delete(st, "city", E));
    struct weir_err e = { 0 };
    assert_int_equal(store_var_get(st, "city", &s, &e), -WEIR_ENOTFOUND);
    assert_non_null(strstr(e.msg, "'city'"));
    assert_int_equal(store_var_delete(st, "city", &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_var_set(st, "", "x", NULL, &e), -WEIR_EINVAL);
}

static void test_connections(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    struct store_conn c = { 0 };
    c.conn_id = "s3_raw";
    c.conn_type = "aws";
    c.host = "minio.local";
    c.login = "AKIA";
    c.password = "hunter2-secret";
    c.port = 9000;
    c.extra = json_pack("{s:s,s:s}", "region", "eu-west-1", "session_token", "tok-value");
    OK(store_conn_set(st, &c, E));
    c.conn_id = "pg";
    c.conn_type = "postgres";
    c.port = 0;
    json_decref(c.extra);
    c.extra = NULL;
    c.password = NULL;
    OK(store_conn_set(st, &c, E));

    struct store_conn g;
    OK(store_conn_get(st, "s3_raw", &g, E));
    assert_string_equal(g.conn_type, "aws");
    assert_string_equal(g.password, "hunter2-secret");
    assert_int_equal(g.port, 9000);
    assert_null(g.schema);
    assert_string_equal(json_string_value(json_object_get(g.extra, "session_token")), "tok-value");
    store_conn_release(&g);

    json_t *l = NULL;
    OK(store_conn_list(st, &l, E));
    assert_int_equal(json_array_size(l), 2);
    char *dump = json_dumps(l, 0);
    assert_null(strstr(dump, "hunter2"));
    assert_null(strstr(dump, "tok-value"));
    assert_null(strstr(dump, "\"password\""));
    free(dump);
    json_t *s3 = json_array_get(l, 1);
    assert_string_equal(json_string_value(json_object_get(s3, "connection_id")), "s3_raw");
    assert_int_equal(json_integer_value(json_object_get(s3, "port")), 9000);
    assert_non_null(strstr(json_string_value(json_object_get(s3, "extra")), "eu-west-1"));
    assert_true(json_is_null(json_object_get(json_array_get(l, 0), "port")));
    json_decref(l);

    OK(store_conn_delete(st, "pg", E));
    struct weir_err e = { 0 };
    assert_int_equal(store_conn_get(st, "pg", &g, &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_conn_delete(st, "pg", &e), -WEIR_ENOTFOUND);
}

static void test_pools(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    int64_t slots = 0;
    OK(store_pool_get(st, "default_pool", &slots, E));
    assert_int_equal(slots, 128);
    OK(store_pool_set(st, "api", 2, "rate limited", E));
    OK(store_pool_set(st, "api", 3, "rate limited", E));
    OK(store_pool_get(st, "api", &slots, E));
    assert_int_equal(slots, 3);
    json_t *l = NULL;
    OK(store_pool_list(st, &l, E));
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "name")), "api");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "slots")), 128);
    json_decref(l);
    struct weir_err e = { 0 };
    assert_int_equal(store_pool_delete(st, "default_pool", &e), -WEIR_EINVAL);
    assert_int_equal(store_pool_set(st, "neg", -5, NULL, &e), -WEIR_EINVAL);
    OK(store_pool_delete(st, "api", E));
    assert_int_equal(store_pool_delete(st, "api", &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_pool_get(st, "api", &slots, &e), -WEIR_ENOTFOUND);
}

/* ---- users and tokens (migration 2) ------------------------------------------------ */

static void test_users_tokens(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    struct weir_err e = { 0 };
    int64_t n = -1;
    OK(store_user_count(st, &n, E));
    assert_int_equal(n, 0);
    OK(store_user_create(st, "alice", "op", "$argon2id$fake", E));
    assert_int_equal(store_user_create(st, "alice", "admin", "$h", &e), -WEIR_ECONFLICT);
    assert_int_equal(store_user_create(st, "", "admin", "$h", &e), -WEIR_EINVAL);
    assert_int_equal(store_user_create(st, "bob", "admin", NULL, &e), -WEIR_EINVAL);
    OK(store_user_create(st, "bob", "viewer", "$h2", E));
    struct store_user u = { 0 };
    OK(store_user_get(st, "alice", &u, E));
    assert_string_equal(u.role, "op");
    assert_string_equal(u.password_hash, "$argon2id$fake");
    assert_true(u.created_at > 0);
    store_user_release(&u);
    OK(store_user_update(st, "alice", "admin", NULL, E));
    OK(store_user_get(st, "alice", &u, E));
    assert_string_equal(u.role, "admin");
    assert_string_equal(u.password_hash, "$argon2id$fake"); /* NULL keeps it */
    store_user_release(&u);
    assert_int_equal(store_user_update(st, "nobody", "op", NULL, &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_user_get(st, "nobody", &u, &e), -WEIR_ENOTFOUND);
    json_t *l = NULL;
    OK(store_user_list(st, &l, E));
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "username")),
                        "alice");
    assert_null(json_object_get(json_array_get(l, 0), "password_hash"));
    json_decref(l);

    /* tokens: kinds, CSRF, expiry, owner's current role, purge, cascade on user delete */
    OK(store_token_create(st, "h1", "alice", "session", "csrf1", T0 + HOUR, E));
    OK(store_token_create(st, "h2", "alice", "api", NULL, TS_NONE, E));
    OK(store_token_create(st, "h3", "bob", "api", NULL, T0 - HOUR, E));
    assert_int_equal(store_token_create(st, "h4", "nobody", "api", NULL, TS_NONE, &e),
                     -WEIR_ENOTFOUND);
    assert_int_equal(store_token_create(st, "h1", "bob", "api", NULL, TS_NONE, &e),
                     -WEIR_ECONFLICT);
    struct store_token t = { 0 };
    OK(store_token_get(st, "h1", T0, &t, E));
    assert_string_equal(t.username, "alice");
    assert_string_equal(t.role, "admin");
    assert_string_equal(t.kind, "session");
    assert_string_equal(t.csrf, "csrf1");
    assert_int_equal(t.expires_at, T0 + HOUR);
    store_token_release(&t);
    assert_int_equal(store_token_get(st, "h1", T0 + HOUR, &t, &e), -WEIR_ENOTFOUND); /* expired */
    OK(store_token_get(st, "h2", T0 + 1000 * HOUR, &t, E));
    assert_null(t.csrf);
    assert_int_equal(t.expires_at, TS_NONE);
    store_token_release(&t);
    assert_int_equal(store_token_get(st, "h3", T0, &t, &e), -WEIR_ENOTFOUND);
    int64_t purged = 0;
    OK(store_token_purge(st, T0, &purged, E));
    assert_int_equal(purged, 1); /* h3 */
    OK(store_token_delete(st, "h1", E));
    assert_int_equal(store_token_delete(st, "h1", &e), -WEIR_ENOTFOUND);
    OK(store_user_delete(st, "alice", E));
    assert_int_equal(store_token_get(st, "h2", T0, &t, &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_user_delete(st, "alice", &e), -WEIR_ENOTFOUND);
    OK(store_user_count(st, &n, E));
    assert_int_equal(n, 1);
}

/* ---- deletes and transactions ------------------------------------------------------- */

static void test_delete_cascades(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    make_dag(st, "d");
    make_run(st, "d", "r1", RUN_RUNNING, RUN_TYPE_SCHEDULED, T0, "[\"a\"]");
    make_run(st, "d", "r2", RUN_RUNNING, RUN_TYPE_SCHEDULED, T0 + HOUR, "[\"a\"]");
    const char *ln[] = { "x" };
    json_t *v = json_integer(1);
    for (int i = 0; i < 2; i++) {
        const char *run = i ? "r2" : "r1";
        OK(store_log_append(st, "d", run, "a", 1, ln, NULL, 1, E));
        OK(store_xcom_set(st, "d", run, "a", "k", v, E));
    }
    json_decref(v);
    OK(store_run_delete(st, "d", "r1", E));
    struct weir_err e = { 0 };
    struct store_ti t;
    json_t *got = NULL;
    assert_int_equal(store_ti_get(st, "d", "r1", "a", &t, &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_xcom_get(st, "d", "r1", "a", "k", &got, &e), -WEIR_ENOTFOUND);
    struct store_log_list l;
    OK(store_log_read(st, "d", "r1", "a", 1, 0, 0, &l, E));
    assert_int_equal(l.n, 0);
    store_log_list_release(&l);
    assert_int_equal(store_run_delete(st, "d", "r1", &e), -WEIR_ENOTFOUND);
    /* r2 is untouched */
    OK(store_xcom_get(st, "d", "r2", "a", "k", &got, E));
    json_decref(got);

    OK(store_dag_delete(st, "d", E));
    struct store_run r;
    assert_int_equal(store_run_get(st, "d", "r2", &r, &e), -WEIR_ENOTFOUND);
    OK(store_log_read(st, "d", "r2", "a", 1, 0, 0, &l, E));
    assert_int_equal(l.n, 0);
    store_log_list_release(&l);
    char *doc = NULL;
    assert_int_equal(store_dag_version_get(st, "d", 1, &doc, &e), -WEIR_ENOTFOUND);
    assert_int_equal(store_dag_delete(st, "d", &e), -WEIR_ENOTFOUND);
}

static void test_transactions(void **state)
{
    struct store *st = ((struct ctx *)*state)->st;
    struct weir_err e = { 0 };
    char *s = NULL;
    assert_int_equal(store_commit(st, &e), -WEIR_EINVAL);
    store_rollback(st); /* no transaction: harmless */

    OK(store_begin(st, E));
    OK(store_var_set(st, "a", "1", NULL, E));
    store_rollback(st);
    assert_int_equal(store_var_get(st, "a", &s, &e), -WEIR_ENOTFOUND);

    OK(store_begin(st, E));
    OK(store_begin(st, E));
    OK(store_var_set(st, "a", "1", NULL, E));
    OK(store_commit(st, E));
    OK(store_var_set(st, "b", "2", NULL, E));
    OK(store_commit(st, E));
    OK(store_var_get(st, "b", &s, E));
    free(s);

    /* an inner rollback dooms the outer level */
    OK(store_begin(st, E));
    OK(store_var_set(st, "c", "3", NULL, E));
    OK(store_begin(st, E));
    store_rollback(st);
    assert_int_equal(store_var_set(st, "d", "4", NULL, &e), -WEIR_ECONFLICT);
    assert_int_equal(store_commit(st, &e), -WEIR_ECONFLICT);
    assert_int_equal(store_var_get(st, "c", &s, &e), -WEIR_ENOTFOUND);
    OK(store_begin(st, E));
    OK(store_var_set(st, "c", "3", NULL, E));
    OK(store_commit(st, E));
    OK(store_var_get(st, "c", &s, E));
    free(s);

    /* a failed operation inside a transaction (FK error) then rollback */
    OK(store_begin(st, E));
    json_t *v = json_true();
    assert_int_equal(store_xcom_set(st, "x", "y", "z", "k", v, &e), -WEIR_ENOTFOUND);
    json_decref(v);
    store_rollback(st);
    OK(store_var_set(st, "after", "ok", NULL, E));
    assert_int_equal(store_migrate(st, NULL, &e), 0);
}

/* ---- failures ------------------------------------------------------------------------ */

/* A loopback port nobody listens on: bind to port 0, read the port back, close. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

static void test_bad_urls(void **state)
{
    struct ctx *x = *state;
    struct weir_err e = { 0 };
    assert_null(store_open("mysql://root:pw@localhost/db", &e));
    assert_int_equal(e.code, WEIR_EINVAL);
    assert_null(strstr(e.msg, ":pw@"));
    assert_null(store_open("", &e));
    assert_int_equal(e.code, WEIR_EINVAL);

    /* SQLite: missing folder, a file where a folder should be */
    char url[1024];
    snprintf(url, sizeof(url), "sqlite://%s/missing/dir/weir.db", x->dir);
    assert_null(store_open(url, &e));
    assert_int_equal(e.code, WEIR_EIO);
    assert_non_null(strstr(e.msg, "missing/dir"));
    assert_non_null(strstr(e.msg, "No such file"));
    char file[512];
    snprintf(file, sizeof(file), "%s/file", x->dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("not a database, definitely not a database at all, no", f);
    fclose(f);
    snprintf(url, sizeof(url), "sqlite://%s/x.db", file);
    assert_null(store_open(url, &e));
    assert_int_equal(e.code, WEIR_EIO);
    assert_non_null(strstr(e.msg, "not a directory"));
    snprintf(url, sizeof(url), "sqlite://%s", file);
    assert_null(store_open(url, &e));
    assert_int_equal(e.code, WEIR_EIO);
    assert_non_null(strstr(e.msg, "not a database"));

    /* SQLite: a read-only folder (as root, checked as user nobody in a child) */
    char ro[] = "/tmp/weir-ro-XXXXXX";
    assert_non_null(mkdtemp(ro));
    assert_int_equal(chmod(ro, 0555), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        char u[256];
        struct weir_err ce = { 0 };
        snprintf(u, sizeof(u), "sqlite://%s/weir.db", ro);
        struct store *st = store_open(u, &ce);
        if (st)
            _exit(1);
        _exit(ce.code == WEIR_EIO && strstr(ce.msg, "not writable") ? 0 : 2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    rmdir(ro);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* PostgreSQL nobody listens on: unavailable, and the password never shows */
    snprintf(url, sizeof(url),
             "postgresql://weir:s3cretpw@127.0.0.1:%d/weir?connect_timeout=2&password=s3cretpw",
             free_port());
    assert_null(store_open(url, &e));
    assert_int_equal(e.code, WEIR_EUNAVAIL);
    assert_null(strstr(e.msg, "s3cretpw"));
    assert_non_null(strstr(e.msg, "127.0.0.1"));
    assert_non_null(strstr(e.msg, "***"));
    assert_null(store_open("postgresql://u@127.0.0.1:1/db?bogus_option=1", &e));
    assert_int_equal(e.code, WEIR_EINVAL);
    /* libpq echoes a URI it cannot parse: the password must not come along */
    assert_null(store_open("postgresql://u:pw123456@[::1", &e));
    assert_int_equal(e.code, WEIR_EINVAL);
    assert_null(strstr(e.msg, "pw123456"));
}

static void test_pg_reconnect(void **state)
{
    struct ctx *x = *state;
    if (!use_pg)
        skip();
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = '%s' AND application_name = 'weir'",
             pg_dbname);
    char *s = NULL;
    struct weir_err e = { 0 };
    /* outside a transaction: one silent reconnect */
    OK(store_var_set(x->st, "k", "v", NULL, E));
    pg_exec_admin(pg_base, sql);
    OK(store_var_get(x->st, "k", &s, E));
    assert_string_equal(s, "v");
    free(s);
    /* inside one: unavailable, then usable again after the rollback */
    OK(store_begin(x->st, E));
    OK(store_var_set(x->st, "k", "w", NULL, E));
    pg_exec_admin(pg_base, sql);
    assert_int_equal(store_var_set(x->st, "k2", "w", NULL, &e), -WEIR_EUNAVAIL);
    store_rollback(x->st);
    OK(store_var_get(x->st, "k", &s, E));
    assert_string_equal(s, "v");
    free(s);
    /* a failed statement aborts the PostgreSQL transaction: commit reports it */
    OK(store_begin(x->st, E));
    json_t *v = json_true();
    assert_int_equal(store_xcom_set(x->st, "x", "y", "z", "k", v, &e), -WEIR_ENOTFOUND);
    json_decref(v);
    assert_int_equal(store_commit(x->st, &e), -WEIR_ECONFLICT);
    OK(store_var_set(x->st, "k3", "ok", NULL, E));
}

/* ---- main ---------------------------------------------------------------------------- */

static int pg_suite_setup(void)
{
    const char *file = getenv("WEIR_TEST_PG_URL_FILE");
    if (!file) {
        fprintf(stderr, "test_store --pg: WEIR_TEST_PG_URL_FILE is not set, skipping\n");
        return 77;
    }
    FILE *f = fopen(file, "r");
    if (!f || !fgets(pg_admin, sizeof(pg_admin), f)) {
        fprintf(stderr, "test_store --pg: cannot read '%s'\n", file);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    pg_admin[strcspn(pg_admin, "\r\n")] = '\0';
    char *slash = strrchr(pg_admin, '/');
    if (!slash || slash < strstr(pg_admin, "://") + 3) {
        fprintf(stderr, "test_store --pg: bad url '%s'\n", pg_admin);
        return 1;
    }
    snprintf(pg_dbname, sizeof(pg_dbname), "weir_t_%d", (int)getpid());
    snprintf(pg_base, sizeof(pg_base), "%.*s/%s", (int)(slash - pg_admin), pg_admin, pg_dbname);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", pg_dbname);
    pg_exec_admin(pg_admin, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_dbname);
    pg_exec_admin(pg_admin, sql);
    return 0;
}

int main(int argc, char **argv)
{
    use_pg = argc > 1 && strcmp(argv[1], "--pg") == 0;
    if (use_pg) {
        int rc = pg_suite_setup();
        if (rc)
            return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dag_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ti_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xcom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name(use_pg ? "store_pg" : "store", tests, NULL, NULL);
    if (use_pg) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_dbname);
        pg_exec_admin(pg_admin, sql);
    }
    return failed;
}
