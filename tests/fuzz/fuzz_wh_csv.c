/* tests/fuzz/fuzz_wh_csv.c - fuzz target for the warehouse's CSV and NDJSON readers: the
 * first byte picks the options (header, delimiter, NULL string, ON_ERROR skip, FORMAT json,
 * existing typed table or type inference), the rest is the file that COPY FROM loads into
 * a scratch database. Errors are expected; crashes and sanitizer reports are bugs. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "warehouse/warehouse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wh_db *db;
static char dir[64], file[96];

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    wh_close(db);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    unlink(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db) {
        snprintf(dir, sizeof dir, "/tmp/weir-fuzz-whcsv-%d", (int)getpid());
        snprintf(file, sizeof file, "%s.in", dir);
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        if (wh_open(dir, &db, NULL) < 0)
            abort();
        wh_set_mem_limit(db, (size_t)64 << 20);
        atexit(cleanup);
    }
    if (size < 1 || size > 65536)
        return 0;
    FILE *f = fopen(file, "wb");
    if (!f)
        return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    unsigned o = data[0];
    char sql[512];
    bool typed = o & 32;
    if (typed)
        wh_exec(db,
                "CREATE TABLE typed (a int, b text, c double precision, d date, "
                "e numeric(6,2), f boolean, g timestamptz)",
                NULL, NULL);
    if (o & 16)
        snprintf(sql, sizeof sql, "COPY %s FROM '%s' WITH (FORMAT json%s)",
                 typed ? "typed" : "inferred", file, o & 8 ? ", ON_ERROR skip" : "");
    else
        snprintf(sql, sizeof sql,
                 "COPY %s FROM '%s' WITH (FORMAT csv, HEADER %s, DELIMITER '%s', NULL '%s'%s)",
                 typed ? "typed" : "inferred", file, o & 1 ? "true" : "false", o & 2 ? ";" : ",",
                 o & 4 ? "NA" : "", o & 8 ? ", ON_ERROR skip" : "");
    struct wh_result *r = NULL;
    if (wh_exec(db, sql, NULL, NULL) == 0 &&
        wh_exec(db, typed ? "SELECT * FROM typed" : "SELECT * FROM inferred", &r, NULL) == 0) {
        char buf[256];
        for (size_t i = 0; i < wh_result_nrows(r) && i < 100; i++)
            for (size_t c = 0; c < wh_result_ncols(r); c++)
                wh_result_text(r, i, c, buf, sizeof buf);
    }
    wh_result_free(r);
    wh_exec(db, "DROP TABLE IF EXISTS typed, inferred", NULL, NULL);
    return 0;
}
