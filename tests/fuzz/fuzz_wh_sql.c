/* tests/fuzz/fuzz_wh_sql.c - fuzz target for the warehouse SQL front end and executor:
 * each input is run as SQL against a small scratch database (created once per process in a
 * temporary folder, memory limit 64 MiB). Inputs mentioning COPY are skipped so that the
 * fuzzer never reads or writes files outside the scratch folder. Any crash or sanitizer
 * report is a bug; SQL errors are expected. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/err.h"
#include "warehouse/warehouse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wh_db *db;
static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    wh_close(db);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/weir-fuzz-wh-%d", (int)getpid());
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    if (wh_open(dir, &db, NULL) < 0)
        abort();
    wh_set_mem_limit(db, (size_t)64 << 20);
    wh_exec(db,
            "CREATE TABLE t (a int, b text, c double precision, d date, e numeric(8,2), "
            "f boolean, g timestamp); "
            "INSERT INTO t VALUES (1, 'x', 1.5, '2024-01-01', 2.25, true, '2024-01-01 10:00'), "
            "(2, NULL, NULL, NULL, NULL, NULL, NULL), (3, 'yz', -1, '2023-05-06', -7.5, false, "
            "'2024-02-02 00:00:01'); "
            "CREATE TABLE u (a bigint, s varchar(5)); INSERT INTO u VALUES (1, 'p'), (3, 'q')",
            NULL, NULL);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        setup();
    if (size > 4096)
        return 0;
    char *sql = malloc(size + 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    sql[size] = 0;
    /* No file access from fuzzed SQL. */
    for (char *p = sql; *p; p++)
        if (!strncasecmp(p, "copy", 4)) {
            free(sql);
            return 0;
        }
    struct wh_result *r = NULL;
    struct weir_err err;
    if (wh_exec(db, sql, &r, &err) == 0 && r) {
        char buf[256];
        for (size_t i = 0; i < wh_result_nrows(r) && i < 100; i++)
            for (size_t c = 0; c < wh_result_ncols(r); c++)
                wh_result_text(r, i, c, buf, sizeof buf);
    }
    wh_result_free(r);
    free(sql);
    return 0;
}
