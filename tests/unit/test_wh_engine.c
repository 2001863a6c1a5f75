/* tests/unit/test_wh_engine.c - the warehouse engine: storage round trips, atomic publish
 * and crash leftovers, corruption detection, NULL logic, errors with positions, memory
 * limits, COPY with inference and bad rows. Each test uses its own database folder. */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/err.h"
#include "warehouse/warehouse.h"

static char dbdir[256];

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dbdir, sizeof dbdir, "/tmp/weir-wh-test-%d", (int)getpid());
    nftw(dbdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dbdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static struct wh_db *open_db(void)
{
    struct wh_db *db = NULL;
    struct weir_err err;
    int rc = wh_open(dbdir, &db, &err);
    if (rc < 0)
        fail_msg("wh_open: %s", err.msg);
    return db;
}

static void exec_ok(struct wh_db *db, const char *sql)
{
    struct weir_err err;
    if (wh_exec(db, sql, NULL, &err) < 0)
        fail_msg("'%s': %s", sql, err.msg);
}

/* Runs a query and renders its rows as "a|b;c|d" with NULL as "N". */
static char *rows_of(struct wh_db *db, const char *sql)
{
    static char out[8192];
    struct wh_result *r = NULL;
    struct weir_err err;
    if (wh_exec(db, sql, &r, &err) < 0)
        fail_msg("'%s': %s", sql, err.msg);
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < wh_result_nrows(r); i++) {
        for (size_t c = 0; c < wh_result_ncols(r); c++) {
            char v[256];
            if (!wh_result_text(r, i, c, v, sizeof v))
                snprintf(v, sizeof v, "N");
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", c ? "|" : "", v);
        }
        n += (size_t)snprintf(out + n, sizeof out - n, ";");
    }
    wh_result_free(r);
    return out;
}

static int exec_err(struct wh_db *db, const char *sql, struct weir_err *err)
{
    struct wh_result *r = NULL;
    int rc = wh_exec(db, sql, &r, err);
    assert_null(r);
    return rc;
}

static void test_roundtrip_types(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    exec_ok(db, "CREATE TABLE t (b boolean, s smallint, i integer, l bigint, r real, "
                "d double precision, n numeric(12,3), t text, v varchar(5), dt date, "
                "ts timestamp, tz timestamptz)");
    exec_ok(db, "INSERT INTO t VALUES (true, 1, -2, 9000000000, 1.5, 2.25, 123.4567, 'x', "
                "'ab', '2024-02-29', '2024-02-29 23:59:59.5', '2024-01-01 10:00:00+02'), "
                "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
    wh_close(db);
    db = open_db(); /* read back from disk */
    assert_string_equal(rows_of(db, "SELECT * FROM t"),
                        "t|1|-2|9000000000|1.5|2.25|123.457|x|ab|2024-02-29|"
                        "2024-02-29 23:59:59.5|2024-01-01 08:00:00+00;N|N|N|N|N|N|N|N|N|N|N|N;");
    struct wh_result *r = NULL;
    assert_int_equal(wh_describe(db, "t", &r, NULL), 0);
    assert_int_equal(wh_result_nrows(r), 12);
    assert_string_equal(wh_result_str(r, 6, 1), "numeric(12,3)");
    wh_result_free(r);
    wh_close(db);
}

static void test_many_parts_and_granules(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    exec_ok(db, "CREATE TABLE big (k bigint, s text)");
    /* 3 inserts, the first spanning several granules. */
    exec_ok(db, "CREATE TABLE src (k bigint)");
    char sql[256];
    for (int i = 0; i < 4; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO src VALUES (%d), (%d), (%d), (%d), (%d)", i * 5,
                 i * 5 + 1, i * 5 + 2, i * 5 + 3, i * 5 + 4);
        exec_ok(db, sql);
    }
    /* 20 rows -> 20^3 = 8000 -> x 3 = 24000 rows through a cross join. */
    exec_ok(db, "INSERT INTO big SELECT a.k * 400 + b.k * 20 + c.k, 'v' || (a.k % 7) "
                "FROM src a, src b, src c");
    exec_ok(db, "INSERT INTO big SELECT k + 8000, s FROM big");
    exec_ok(db, "INSERT INTO big SELECT k + 16000, s FROM big WHERE k < 8000");
    wh_close(db);
    db = open_db();
    assert_string_equal(rows_of(db, "SELECT count(*), sum(k), min(k), max(k), count(DISTINCT s) "
                                    "FROM big"),
                        "24000|287988000|0|23999|7;");
    assert_string_equal(rows_of(db, "SELECT s, count(*) FROM big GROUP BY s ORDER BY s LIMIT 2"),
                        "v0|3600;v1|3600;");
    wh_close(db);
}

static void test_null_logic(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    assert_string_equal(rows_of(db, "SELECT NULL AND false, NULL AND true, NULL OR true, "
                                    "NULL OR false, NOT NULL::boolean, NULL = NULL, "
                                    "1 IN (2, NULL), 1 NOT IN (2, NULL), 1 IN (1, NULL), "
                                    "NULL IS NULL, NULL IS DISTINCT FROM 1"),
                        "f|N|t|N|N|N|N|N|t|t|t;");
    assert_string_equal(rows_of(db, "SELECT coalesce(NULL, NULL, 3), nullif(1, 1), "
                                    "CASE WHEN NULL THEN 1 ELSE 2 END"),
                        "3|N|2;");
    /* INTERSECT ALL / EXCEPT ALL keep multiplicities (SQLite has no ALL variants). */
    assert_string_equal(rows_of(db, "SELECT * FROM (VALUES (1), (1), (1), (2), (NULL)) a(x) "
                                    "INTERSECT ALL SELECT * FROM (VALUES (1), (1), (NULL)) b(y) "
                                    "ORDER BY 1"),
                        "1;1;N;");
    assert_string_equal(rows_of(db, "SELECT * FROM (VALUES (1), (1), (1), (2)) a(x) "
                                    "EXCEPT ALL SELECT * FROM (VALUES (1), (3)) b(y) ORDER BY 1"),
                        "1;1;2;");
    wh_close(db);
}

static void test_errors_have_positions(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE TABLE t (a int)");
    assert_int_equal(exec_err(db, "SELECT a,\n  nosuch FROM t", &err), -WEIR_ENOTFOUND);
    assert_string_equal(err.loc, "2:3");
    assert_int_equal(exec_err(db, "SELECT sum(a) OVER (ORDER BY a ROWS 1 PRECEDING) FROM t", &err),
                     -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "window frames"));
    assert_int_equal(exec_err(db, "SELECT DISTINCT ON (a) a FROM t", &err), -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "DISTINCT ON"));
    assert_int_equal(exec_err(db, "SELECT FROM WHERE", &err), -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "syntax error"));
    assert_int_equal(exec_err(db, "SELECT 2147483647 + 1", &err), -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "integer out of range"));
    assert_int_equal(exec_err(db, "CREATE TABLE t (b int)", &err), -WEIR_ECONFLICT);
    assert_int_equal(exec_err(db, "SAVEPOINT s1", &err), -WEIR_EINVAL);
    wh_close(db);
}

static void test_failed_statement_changes_nothing(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE TABLE t (a int NOT NULL, n numeric(4,1))");
    exec_ok(db, "INSERT INTO t VALUES (1, 1.5)");
    assert_int_equal(exec_err(db, "INSERT INTO t VALUES (2, 1.0), (NULL, 2.0)", &err),
                     -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "not-null"));
    assert_int_equal(exec_err(db, "INSERT INTO t VALUES (2, 1000.0)", &err), -WEIR_EINVAL);
    assert_int_equal(exec_err(db, "INSERT INTO t SELECT a / 0, n FROM t", &err), -WEIR_EINVAL);
    assert_string_equal(rows_of(db, "SELECT * FROM t"), "1|1.5;");
    exec_ok(db, "UPDATE t SET n = n * 2 WHERE a = 1");
    exec_ok(db, "INSERT INTO t VALUES (5, NULL)");
    exec_ok(db, "DELETE FROM t WHERE n IS NULL");
    assert_string_equal(rows_of(db, "SELECT * FROM t"), "1|3.0;");
    exec_ok(db, "TRUNCATE t");
    assert_string_equal(rows_of(db, "SELECT count(*) FROM t"), "0;");
    wh_close(db);
}

/* Low-cardinality text is stored dictionary-encoded (WHCOL002): it reads back with NULLs
 * and the empty string, a damaged dictionary is reported, and a file of a newer format is
 * refused with a message that names the format. */
static void test_dictionary_columns(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE TABLE d (k int, s text)");
    size_t cap = 200000, at = 0;
    char *sql = malloc(cap);
    assert_non_null(sql);
    at += (size_t)snprintf(sql + at, cap - at, "INSERT INTO d VALUES ");
    static const char *const vals[] = { "'red'", "'green'", "''", "NULL", "'blue'" };
    for (int i = 0; i < 3000; i++)
        at += (size_t)snprintf(sql + at, cap - at, "%s(%d, %s)", i ? ", " : "", i, vals[i % 5]);
    exec_ok(db, sql);
    free(sql);
    wh_close(db);
    char p[512];
    snprintf(p, sizeof p, "%s/public/d/p1/c1.col", dbdir);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    char magic[9] = { 0 };
    assert_int_equal(fread(magic, 1, 8, f), 8);
    assert_string_equal(magic, "WHCOL002");
    fclose(f);
    db = open_db();
    assert_string_equal(rows_of(db, "SELECT s, count(*) FROM d GROUP BY s ORDER BY s NULLS FIRST"),
                        "N|600;|600;blue|600;green|600;red|600;");
    assert_string_equal(rows_of(db, "SELECT count(*) FROM d WHERE s LIKE '%e%'"), "1800;");
    assert_string_equal(rows_of(db, "SELECT count(*) FROM d WHERE s = ''"), "600;");
    /* The dictionary block follows the header (32 bytes), the granule directory (48 bytes
     * for the one granule) and its descriptor (32 bytes): damage it. */
    f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 32 + 48 + 32 + 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 32 + 48 + 32 + 2, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    assert_int_equal(exec_err(db, "SELECT count(*) FROM d WHERE s = 'red'", &err), -WEIR_EIO);
    assert_non_null(strstr(err.msg, "corrupt"));
    f = fopen(p, "r+b");
    assert_non_null(f);
    fputs("WHCOL009", f);
    fclose(f);
    assert_int_equal(exec_err(db, "SELECT s FROM d", &err), -WEIR_EIO);
    assert_non_null(strstr(err.msg, "WHCOL009"));
    assert_string_equal(rows_of(db, "SELECT sum(k) FROM d"), "4498500;");
    wh_close(db);
}

static void test_crash_leftovers_and_corruption(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE SCHEMA s");
    exec_ok(db, "CREATE TABLE s.t (a int, b text)");
    exec_ok(db, "INSERT INTO s.t VALUES (1, 'one'), (2, 'two')");
    wh_close(db);
    /* Simulate a crash after writing a part but before publishing the manifest, and an
     * interrupted manifest write. */
    char p[512];
    snprintf(p, sizeof p, "%s/s/t/p99", dbdir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/s/t/p99/c0.col", dbdir);
    FILE *f = fopen(p, "w");
    fputs("garbage", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/s/t/manifest.json.tmp", dbdir);
    f = fopen(p, "w");
    fputs("{\"half", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/s/.new-x", dbdir);
    assert_int_equal(mkdir(p, 0755), 0);
    db = open_db();
    assert_string_equal(rows_of(db, "SELECT * FROM s.t ORDER BY a"), "1|one;2|two;");
    snprintf(p, sizeof p, "%s/s/t/p99", dbdir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/s/.new-x", dbdir);
    assert_int_not_equal(access(p, F_OK), 0);
    /* Flip one byte of a column file: the checksum catches it. */
    snprintf(p, sizeof p, "%s/s/t/p1/c1.col", dbdir);
    f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 60, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 60, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    assert_int_equal(exec_err(db, "SELECT b FROM s.t", &err), -WEIR_EIO);
    assert_non_null(strstr(err.msg, "corrupt"));
    /* The other column is intact and still readable. */
    assert_string_equal(rows_of(db, "SELECT sum(a) FROM s.t"), "3;");
    exec_ok(db, "DROP SCHEMA s CASCADE");
    assert_int_equal(exec_err(db, "SELECT * FROM s.t", &err), -WEIR_ENOTFOUND);
    wh_close(db);
}

static void test_memory_limit(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE TABLE t (a int)");
    exec_ok(db, "INSERT INTO t VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10)");
    wh_set_mem_limit(db, 256 << 10);
    assert_int_equal(exec_err(db, "SELECT count(*) FROM t a, t b, t c, t d, t e", &err),
                     -WEIR_ETOOBIG);
    wh_set_mem_limit(db, 0);
    assert_string_equal(rows_of(db, "SELECT count(*) FROM t a, t b, t c"), "1000;");
    wh_close(db);
}

static void test_copy(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    char csv[300], sql[600];
    snprintf(csv, sizeof csv, "%s.csv", dbdir);
    FILE *f = fopen(csv, "w");
    fputs("id;name;score;day;ok\r\n1;\"a;b\";1.5;2024-01-01;true\r\n2;NA;2;2024-01-02;false\r\n"
          "3;\"say \"\"hi\"\"\";NA;NA;NA\r\n",
          f);
    fclose(f);
    snprintf(sql, sizeof sql,
             "COPY inferred FROM '%s' WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL 'NA')",
             csv);
    exec_ok(db, sql);
    struct wh_result *r = NULL;
    assert_int_equal(wh_describe(db, "inferred", &r, NULL), 0);
    assert_string_equal(wh_result_str(r, 0, 1), "bigint");
    assert_string_equal(wh_result_str(r, 1, 1), "text");
    assert_string_equal(wh_result_str(r, 2, 1), "double precision");
    assert_string_equal(wh_result_str(r, 3, 1), "date");
    assert_string_equal(wh_result_str(r, 4, 1), "boolean");
    wh_result_free(r);
    assert_string_equal(rows_of(db, "SELECT * FROM inferred ORDER BY id"),
                        "1|a;b|1.5|2024-01-01|t;2|N|2|2024-01-02|f;3|say \"hi\"|N|N|N;");
    /* A bad row fails the whole COPY with its line number; ON_ERROR skip counts it. */
    f = fopen(csv, "w");
    fputs("id,v\n1,10\n2,oops\n3,30\n", f);
    fclose(f);
    exec_ok(db, "CREATE TABLE typed (id int, v int)");
    snprintf(sql, sizeof sql, "COPY typed FROM '%s' WITH (FORMAT csv, HEADER true)", csv);
    assert_int_equal(exec_err(db, sql, &err), -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "line 3"));
    assert_string_equal(rows_of(db, "SELECT count(*) FROM typed"), "0;");
    snprintf(sql, sizeof sql, "COPY typed FROM '%s' WITH (FORMAT csv, HEADER true, ON_ERROR skip)",
             csv);
    r = NULL;
    assert_int_equal(wh_exec(db, sql, &r, &err), 0);
    assert_int_equal(wh_result_affected(r), 2);
    wh_result_free(r);
    /* COPY TO and back. */
    snprintf(sql, sizeof sql,
             "COPY (SELECT id, v * 2 AS w FROM typed ORDER BY id) TO '%s' "
             "WITH (FORMAT csv, HEADER true)",
             csv);
    exec_ok(db, sql);
    f = fopen(csv, "r");
    char buf[128] = { 0 };
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    assert_string_equal(buf, "id,w\n1,20\n3,60\n");
    /* gzip input and blank lines. */
    char gzp[320];
    snprintf(gzp, sizeof gzp, "%s.csv.gz", dbdir);
    gzFile gz = gzopen(gzp, "wb");
    assert_non_null(gz);
    gzputs(gz, "7,70\n\n8,80\n");
    gzclose(gz);
    snprintf(sql, sizeof sql, "COPY typed FROM '%s' WITH (FORMAT csv)", gzp);
    exec_ok(db, sql);
    assert_string_equal(rows_of(db, "SELECT sum(id), sum(v) FROM typed"), "19|190;");
    unlink(gzp);
    unlink(csv);
    wh_close(db);
}

static void test_views_alter_merge(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE TABLE t (a int, b text)");
    char sql[128];
    for (int i = 1; i <= 12; i++) { /* 12 small inserts: merged automatically */
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'v%d')", i, i % 3);
        exec_ok(db, sql);
    }
    exec_ok(db, "CREATE VIEW v (k, n) AS SELECT b, count(*) FROM t GROUP BY b");
    exec_ok(db, "ALTER TABLE t ADD COLUMN c numeric(6,2)");
    exec_ok(db, "UPDATE t SET c = a * 1.5 WHERE a > 10");
    exec_ok(db, "ALTER TABLE t RENAME COLUMN a TO id");
    exec_ok(db, "ALTER TABLE t RENAME TO t2");
    exec_ok(db, "CREATE OR REPLACE VIEW v AS SELECT id, c FROM t2 WHERE c IS NOT NULL");
    wh_close(db);
    db = open_db();
    assert_string_equal(rows_of(db, "SELECT * FROM v ORDER BY id"), "11|16.50;12|18.00;");
    assert_string_equal(rows_of(db, "SELECT count(*), sum(id) FROM t2"), "12|78;");
    assert_int_equal(exec_err(db, "SELECT * FROM t", &err), -WEIR_ENOTFOUND);
    assert_int_equal(exec_err(db, "DROP TABLE v", &err), -WEIR_EINVAL);
    exec_ok(db, "OPTIMIZE TABLE t2");
    assert_string_equal(rows_of(db, "SELECT id, row_number() OVER (ORDER BY id DESC), "
                                    "sum(id) OVER (ORDER BY id) FROM t2 ORDER BY id LIMIT 3"),
                        "1|12|1;2|11|3;3|10|6;");
    exec_ok(db, "DROP VIEW v");
    assert_int_equal(exec_err(db, "SELECT * FROM v", &err), -WEIR_ENOTFOUND);
    wh_close(db);
}

static void test_transactions(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    struct weir_err err;
    exec_ok(db, "CREATE TABLE a (x int); CREATE TABLE b (y int)");
    exec_ok(db, "BEGIN; INSERT INTO a VALUES (1), (2); INSERT INTO b SELECT x * 10 FROM a");
    assert_string_equal(rows_of(db, "SELECT (SELECT sum(x) FROM a), (SELECT sum(y) FROM b)"),
                        "3|30;");
    exec_ok(db, "ROLLBACK");
    assert_string_equal(rows_of(db, "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)"),
                        "0|0;");
    exec_ok(db, "BEGIN; INSERT INTO a VALUES (5); INSERT INTO b VALUES (7); DELETE FROM a "
                "WHERE x > 100; COMMIT");
    /* A failing statement rolls the transaction back; DDL is refused inside one. */
    exec_ok(db, "BEGIN; INSERT INTO a VALUES (100)");
    assert_int_equal(exec_err(db, "SELECT 1 / 0", &err), -WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "rolled back"));
    exec_ok(db, "BEGIN");
    assert_int_equal(exec_err(db, "CREATE TABLE c (z int)", &err), -WEIR_EINVAL);
    /* An open transaction is rolled back by wh_close. */
    exec_ok(db, "BEGIN; INSERT INTO a VALUES (1000)");
    wh_close(db);
    db = open_db();
    assert_string_equal(rows_of(db, "SELECT (SELECT sum(x) FROM a), (SELECT sum(y) FROM b)"),
                        "5|7;");
    /* Roll forward: a crash after TXN.json was written but before the manifests were
     * renamed. Simulate it with the manifest of an earlier state. */
    char path[512], *m1 = NULL;
    snprintf(path, sizeof path, "%s/public/a/manifest.json", dbdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 0;
    assert_true(getline(&m1, &cap, f) > 0);
    fclose(f);
    exec_ok(db, "INSERT INTO a VALUES (9)");
    wh_close(db);
    json_t *rec =
        json_pack("{s:[{s:s,s:s,s:s}]}", "tables", "schema", "public", "name", "a", "manifest", m1);
    snprintf(path, sizeof path, "%s/TXN.json", dbdir);
    assert_int_equal(json_dump_file(rec, path, 0), 0);
    json_decref(rec);
    free(m1);
    db = open_db();
    assert_int_not_equal(access(path, F_OK), 0);
    assert_string_equal(rows_of(db, "SELECT sum(x) FROM a"), "5;");
    wh_close(db);
}

static void test_not_a_warehouse(void **state)
{
    (void)state;
    struct wh_db *db = NULL;
    struct weir_err err;
    mkdir(dbdir, 0755);
    char p[300];
    snprintf(p, sizeof p, "%s/unrelated.txt", dbdir);
    FILE *f = fopen(p, "w");
    fclose(f);
    assert_int_equal(wh_open(dbdir, &db, &err), -WEIR_EINVAL);
    assert_null(db);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Two handles on one folder behave like two processes (flock belongs to the open file):
 * each sees the other's commits, writes never overwrite each other, a held lock makes the
 * other wait at most lock_timeout and then fail clearly, and wh_open never waits. The
 * multi-process tests are in tests/helpers/wh_locktest.py. */
static void test_locking_between_handles(void **state)
{
    (void)state;
    struct weir_err err;
    struct wh_db *h1 = open_db(), *h2 = open_db();
    exec_ok(h1, "CREATE TABLE t (x int)");
    assert_string_equal(rows_of(h2, "SELECT count(*) FROM t"), "0;");
    exec_ok(h1, "INSERT INTO t VALUES (1)");
    exec_ok(h2, "INSERT INTO t VALUES (2)"); /* on top of h1's insert, not of its old catalog */
    assert_string_equal(rows_of(h1, "SELECT sum(x), count(*) FROM t"), "3|2;");
    /* Merges in one handle delete parts the other's cached catalog still names. */
    for (int k = 0; k < 12; k++)
        exec_ok(k % 2 ? h1 : h2, "INSERT INTO t VALUES (0)");
    exec_ok(h1, "OPTIMIZE TABLE t");
    assert_string_equal(rows_of(h2, "SELECT sum(x), count(*) FROM t"), "3|14;");
    /* An open transaction holds the lock: the other handle waits lock_timeout, then fails. */
    exec_ok(h1, "BEGIN; INSERT INTO t VALUES (10)");
    exec_ok(h2, "SET lock_timeout = 150");
    assert_int_equal(wh_lock_timeout(h2), 150);
    double t0 = mono_now();
    assert_int_equal(exec_err(h2, "SELECT count(*) FROM t", &err), -WEIR_EUNAVAIL);
    double waited = mono_now() - t0;
    assert_non_null(strstr(err.msg, "database is locked by another process"));
    assert_true(waited >= 0.14 && waited < 5);
    assert_int_equal(exec_err(h2, "INSERT INTO t VALUES (100)", &err), -WEIR_EUNAVAIL);
    struct wh_result *r = NULL;
    assert_int_equal(wh_tables(h2, &r, &err), -WEIR_EUNAVAIL);
    assert_null(r);
    /* Opening does not wait; the first statement reads the catalog under its own timeout. */
    t0 = mono_now();
    struct wh_db *h3 = open_db();
    assert_true(mono_now() - t0 < 1);
    wh_set_lock_timeout(h3, 50);
    assert_int_equal(exec_err(h3, "SELECT count(*) FROM t", &err), -WEIR_EUNAVAIL);
    exec_ok(h1, "COMMIT");
    assert_string_equal(rows_of(h2, "SELECT sum(x), count(*) FROM t"), "13|15;");
    assert_string_equal(rows_of(h3, "SELECT sum(x), count(*) FROM t"), "13|15;");
    assert_int_equal(wh_tables(h3, &r, &err), 0);
    wh_result_free(r);
    /* A failed statement, inside a transaction or not, releases the lock. */
    assert_int_equal(exec_err(h1, "INSERT INTO nope VALUES (1)", &err), -WEIR_ENOTFOUND);
    exec_ok(h1, "BEGIN; INSERT INTO t VALUES (1000)");
    assert_int_equal(exec_err(h1, "SELECT 1 / 0", &err), -WEIR_EINVAL);
    exec_ok(h2, "INSERT INTO t VALUES (20)");
    /* wh_close of a handle in a transaction rolls back and releases. */
    exec_ok(h3, "BEGIN; INSERT INTO t VALUES (5000)");
    wh_close(h3);
    assert_string_equal(rows_of(h2, "SELECT sum(x), count(*) FROM t"), "33|16;");
    assert_string_equal(rows_of(h1, "SELECT sum(x), count(*) FROM t"), "33|16;");
    /* DDL from one handle is seen by the other. */
    exec_ok(h2, "ALTER TABLE t RENAME TO u; CREATE VIEW v AS SELECT x * 2 AS y FROM u");
    assert_string_equal(rows_of(h1, "SELECT sum(y) FROM v"), "66;");
    assert_int_equal(exec_err(h1, "SELECT * FROM t", &err), -WEIR_ENOTFOUND);
    /* A COMMIT whose writer died after TXN.json was written: the next reader finishes it
     * first (simulated, as in test_transactions, with the manifest of an earlier state). */
    char path[512], *m1 = NULL;
    snprintf(path, sizeof path, "%s/public/u/manifest.json", dbdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 0;
    assert_true(getline(&m1, &cap, f) > 0);
    fclose(f);
    exec_ok(h2, "INSERT INTO u VALUES (7)");
    json_t *rec =
        json_pack("{s:[{s:s,s:s,s:s}]}", "tables", "schema", "public", "name", "u", "manifest", m1);
    snprintf(path, sizeof path, "%s/TXN.json", dbdir);
    assert_int_equal(json_dump_file(rec, path, 0), 0);
    json_decref(rec);
    free(m1);
    assert_string_equal(rows_of(h1, "SELECT sum(x) FROM u"), "33;");
    assert_int_not_equal(access(path, F_OK), 0);
    assert_string_equal(rows_of(h2, "SELECT sum(x) FROM u"), "33;");
    exec_ok(h1, "DROP VIEW v; DROP TABLE u");
    assert_int_equal(exec_err(h2, "SELECT * FROM u", &err), -WEIR_ENOTFOUND);
    /* SET lock_timeout: milliseconds or a time with a unit; 0 waits forever. */
    exec_ok(h2, "SET lock_timeout = '2s'");
    assert_int_equal(wh_lock_timeout(h2), 2000);
    exec_ok(h2, "SET lock_timeout TO '1.5min'");
    assert_int_equal(wh_lock_timeout(h2), 90000);
    exec_ok(h2, "SET lock_timeout = 0 -- wait forever");
    assert_int_equal(wh_lock_timeout(h2), 0);
    exec_ok(h2, "RESET lock_timeout");
    assert_int_equal(wh_lock_timeout(h2), 30000);
    exec_ok(h2, "SET lock_timeout = 250");
    exec_ok(h2, "SET lock_timeout TO DEFAULT");
    assert_int_equal(wh_lock_timeout(h2), 30000);
    assert_int_equal(exec_err(h2, "SET lock_timeout = -5", &err), -WEIR_EINVAL);
    assert_int_equal(exec_err(h2, "SET lock_timeout = '3 parsecs'", &err), -WEIR_EINVAL);
    assert_int_equal(exec_err(h2, "SET lock_timeout = 'soon'", &err), -WEIR_EINVAL);
    assert_int_equal(wh_lock_timeout(h2), 30000);
    wh_set_lock_timeout(h2, -1);
    assert_int_equal(wh_lock_timeout(h2), 30000);
    wh_close(h1);
    wh_close(h2);
}

/* Threads: the API and SET agree; results on 1 and 4 threads are identical; a partitioned,
 * sorted table keeps its layout across reopen and merges. */
static void test_threads_and_layout(void **state)
{
    (void)state;
    struct wh_db *db = open_db();
    assert_true(wh_threads(db) >= 1);
    wh_set_threads(db, 3);
    assert_int_equal(wh_threads(db), 3);
    exec_ok(db, "SET threads = 1");
    assert_int_equal(wh_threads(db), 1);
    exec_ok(db, "SET threads TO DEFAULT");
    assert_true(wh_threads(db) >= 1);
    struct weir_err err;
    assert_int_equal(exec_err(db, "SET threads = 100000", &err), -WEIR_EINVAL);
    exec_ok(db, "CREATE TABLE src (k bigint)");
    exec_ok(db, "INSERT INTO src VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9),(10),(11),(12),"
                "(13),(14),(15),(16),(17),(18),(19),(20),(21),(22),(23),(24),(25),(26),(27),"
                "(28),(29),(30),(31),(32),(33),(34),(35),(36),(37),(38),(39)");
    exec_ok(db, "CREATE TABLE big (k bigint, g integer, s text) "
                "WITH (order_by = 'g, k', partition_by = 'k % 3')");
    exec_ok(db, "INSERT INTO big SELECT a.k * 1600 + b.k * 40 + c.k, (a.k * 7 + c.k) % 11, "
                "'s' || (b.k % 13) FROM src a, src b, src c");
    const char *qs[] = {
        "SELECT count(*), sum(k), min(k), max(k) FROM big",
        "SELECT g, count(*), sum(k), count(DISTINCT s) FROM big GROUP BY g ORDER BY g",
        "SELECT s, g, count(*) FROM big WHERE k % 5 <> 2 GROUP BY s, g ORDER BY s, g LIMIT 9",
        "SELECT k, g, upper(s) FROM big WHERE k BETWEEN 1000 AND 1010 ORDER BY k",
        "SELECT k FROM big ORDER BY k DESC LIMIT 3",
    };
    char first[5][8192];
    exec_ok(db, "SET threads = 1");
    for (int i = 0; i < 5; i++)
        snprintf(first[i], sizeof first[i], "%s", rows_of(db, qs[i]));
    assert_string_equal(first[0], "64000|2047968000|0|63999;");
    assert_string_equal(first[4], "63999;63998;63997;");
    exec_ok(db, "SET threads = 4");
    for (int i = 0; i < 5; i++)
        assert_string_equal(rows_of(db, qs[i]), first[i]);
    /* One part per partition value; still so after a reopen and a forced merge. */
    exec_ok(db, "INSERT INTO big SELECT k + 64000, g, s FROM big WHERE k < 100");
    exec_ok(db, "OPTIMIZE TABLE big");
    wh_close(db);
    db = open_db();
    assert_string_equal(rows_of(db, "SELECT count(*), sum(k) FROM big"), "64100|2054372950;");
    assert_string_equal(rows_of(db, qs[3]), first[3]);
    assert_string_equal(rows_of(db, "SELECT k % 3, count(*) FROM big GROUP BY 1 ORDER BY 1"),
                        "0|21367;1|21367;2|21366;");
    wh_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_parts_and_granules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_logic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_have_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_statement_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers_and_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_views_alter_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_warehouse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_and_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locking_between_handles, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
