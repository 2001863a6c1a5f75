/* tests/unit/test_whplugin.c - the warehouse plugin's pure parts (plugins/warehouse/whlib.c):
 * table names, SQL literals and identifiers, input formats by name, where the database
 * folder is, CSV headers (plain and gzip, quoted, CRLF), and engine results as XCom JSON. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "core/err.h"
#include "warehouse/warehouse.h"
#include "whlib.h"

static void test_parse_table(void **state)
{
    (void)state;
    struct whp_name n;
    struct ing_err err = { "" };
    assert_int_equal(whp_parse_table("events", &n, &err), 0);
    assert_string_equal(n.schema, "public");
    assert_string_equal(n.table, "events");
    assert_int_equal(whp_parse_table("Raw.Github_Events2", &n, &err), 0);
    assert_string_equal(n.schema, "raw");
    assert_string_equal(n.table, "github_events2");
    assert_int_equal(whp_parse_table("_s._t", &n, &err), 0);
    const char *bad[] = { "", ".t", "s.", "a.b.c", "1t", "s.1t", "a-b", "t;drop", "t\"", "é" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        assert_int_equal(whp_parse_table(bad[i], &n, &err), -1);
        assert_true(err.msg[0] != '\0');
    }
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_int_equal(whp_parse_table(longname, &n, &err), -1);
    longname[63] = '\0';
    assert_int_equal(whp_parse_table(longname, &n, &err), 0);
    assert_int_equal(whp_parse_table(NULL, &n, &err), -1);
}

static void test_quoting(void **state)
{
    (void)state;
    struct ing_buf b = { 0 };
    whp_add_lit(&b, "it's");
    ing_buf_adds(&b, " ");
    whp_add_ident(&b, "a\"b");
    ing_buf_adds(&b, " ");
    whp_add_lit(&b, "");
    ing_buf_add(&b, "", 1);
    assert_false(b.oom);
    assert_string_equal(b.p, "'it''s' \"a\"\"b\" ''");
    ing_buf_release(&b);
}

static void test_format_of(void **state)
{
    (void)state;
    assert_int_equal(whp_format_of("a/b.csv", NULL), WHP_FMT_CSV);
    assert_int_equal(whp_format_of("a/b.CSV.gz", "auto"), WHP_FMT_CSV);
    assert_int_equal(whp_format_of("b.tsv", ""), WHP_FMT_CSV);
    assert_int_equal(whp_format_of("s3://x/y/z.ndjson", NULL), WHP_FMT_JSON);
    assert_int_equal(whp_format_of("z.jsonl.gz", NULL), WHP_FMT_JSON);
    assert_int_equal(whp_format_of("z.json", NULL), WHP_FMT_JSON);
    assert_int_equal(whp_format_of("z.json.gz", NULL), WHP_FMT_JSON);
    assert_int_equal(whp_format_of("z.txt", NULL), WHP_FMT_UNKNOWN);
    assert_int_equal(whp_format_of("z.gz", NULL), WHP_FMT_UNKNOWN);
    assert_int_equal(whp_format_of("z.txt", "csv"), WHP_FMT_CSV);
    assert_int_equal(whp_format_of("z.csv", "json"), WHP_FMT_JSON);
    assert_int_equal(whp_format_of("z.csv", "NDJSON"), WHP_FMT_JSON);
    assert_int_equal(whp_format_of("z.csv", "parquet"), WHP_FMT_UNKNOWN);
    assert_int_equal(whp_format_of(NULL, NULL), WHP_FMT_UNKNOWN);
}

static void expect_path(char *got, const char *want)
{
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_db_path(void **state)
{
    (void)state;
    expect_path(whp_db_path("/p", "/c", "/e", "/w", "/h"), "/p");
    expect_path(whp_db_path("", "/c", "/e", "/w", "/h"), "/c");
    expect_path(whp_db_path(NULL, NULL, "/e", "/w", "/h"), "/e");
    expect_path(whp_db_path(NULL, "", "", "/w", "/h"), "/w/warehouse");
    expect_path(whp_db_path(NULL, NULL, NULL, NULL, "/h"), "/h/.weir/warehouse");
    expect_path(whp_db_path(NULL, NULL, NULL, "", ""), NULL);
}

/* The scratch folder of the test program (made by setup, removed by teardown). */
static char dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/weir-whp-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *write_tmp(const char *name, const char *text, bool gz)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void check_header(const char *name, const char *text, bool gz, char delim, const char **want,
                         size_t nwant)
{
    char *path = write_tmp(name, text, gz);
    char **names = NULL;
    size_t n = 0;
    struct ing_err err = { "" };
    assert_int_equal(whp_csv_header(path, delim, '"', &names, &n, &err), 0);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
    whp_names_free(names, n);
    unlink(path);
    free(path);
}

static void test_csv_header(void **state)
{
    (void)state;
    const char *simple[] = { "a", "b", "c" };
    check_header("h1.csv", "a,b,c\n1,2,3\n", false, ',', simple, 3);
    check_header("h2.csv", "a,b,c\r\n1,2,3\r\n", false, ',', simple, 3);
    check_header("h3.csv", "a,b,c", false, ',', simple, 3);
    check_header("h4.csv.gz", "a,b,c\n1,2,3\n", true, ',', simple, 3);
    const char *quoted[] = { "x,y", "say \"hi\"", "two\nlines", "" };
    check_header("h5.csv", "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\",\n1,2,3,4\n", false, ',',
                 quoted, 4);
    const char *semi[] = { "a", "b" };
    check_header("h6.csv", "a;b\n1;2\n", false, ';', semi, 2);

    char **names = NULL;
    size_t n = 0;
    struct ing_err err = { "" };
    char *empty = write_tmp("empty.csv", "", false);
    assert_int_equal(whp_csv_header(empty, ',', '"', &names, &n, &err), -1);
    assert_non_null(strstr(err.msg, "no header"));
    unlink(empty);
    free(empty);
    char *open_quote = write_tmp("open.csv", "\"abc,d\n", false);
    assert_int_equal(whp_csv_header(open_quote, ',', '"', &names, &n, &err), -1);
    unlink(open_quote);
    free(open_quote);
    assert_int_equal(whp_csv_header("/nonexistent/x.csv", ',', '"', &names, &n, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open"));
}

static void test_rows_json(void **state)
{
    (void)state;
    char db_dir[128];
    snprintf(db_dir, sizeof db_dir, "%s/db", dir);
    struct wh_db *db = NULL;
    struct weir_err err = { 0 };
    assert_int_equal(wh_open(db_dir, &db, &err), 0);
    struct wh_result *r = NULL;
    int rc = wh_exec(db,
                     "SELECT 1 AS i, CAST(2 AS bigint) AS b, 'x' AS t, NULL AS n, true AS f,"
                     " CAST(1.5 AS double precision) AS d, CAST('2024-01-02' AS date) AS day,"
                     " CAST(3.25 AS numeric(6,2)) AS num,"
                     " CAST('2024-01-02 03:04:05' AS timestamp) AS ts"
                     " UNION ALL SELECT 2, 3, 'y', NULL, false, 2.5, CAST(NULL AS date),"
                     " CAST(NULL AS numeric(6,2)), CAST(NULL AS timestamp)"
                     " ORDER BY 1",
                     &r, &err);
    assert_int_equal(rc, 0);
    json_t *rows = whp_rows_json(r, 10);
    char *text = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(text, "[{\"i\":1,\"b\":2,\"t\":\"x\",\"n\":null,\"f\":true,\"d\":1.5,"
                              "\"day\":\"2024-01-02\",\"num\":\"3.25\",\"ts\":\"2024-01-02 "
                              "03:04:05\"},{\"i\":2,\"b\":3,\"t\":\"y\",\"n\":null,\"f\":false,"
                              "\"d\":2.5,\"day\":null,\"num\":null,\"ts\":null}]");
    free(text);
    json_decref(rows);
    rows = whp_rows_json(r, 1);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    rows = whp_rows_json(r, 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    wh_result_free(r);
    wh_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table), cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_format_of),   cmocka_unit_test(test_db_path),
        cmocka_unit_test(test_csv_header),  cmocka_unit_test(test_rows_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
