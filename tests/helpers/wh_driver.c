/* tests/helpers/wh_driver.c - runs SQL against a warehouse for the differential tests:
 * `wh_driver DBDIR` reads one statement per input line and prints one JSON object per
 * statement: {"ok":true,"tag":..,"cols":[..],"rows":[[..]..]} or {"ok":false,"code":..,
 * "error":..,"loc":..}. Values: NULL as null, booleans and integers as integers, floats
 * and numerics as numbers, everything else as PostgreSQL text. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "warehouse/warehouse.h"

static json_t *value(struct wh_result *r, size_t row, size_t col)
{
    if (wh_result_isnull(r, row, col))
        return json_null();
    switch (wh_result_coltype(r, col)) {
    case WH_T_BOOL:
    case WH_T_INT2:
    case WH_T_INT4:
    case WH_T_INT8:
        return json_integer(wh_result_int(r, row, col));
    case WH_T_FLOAT4:
    case WH_T_FLOAT8:
    case WH_T_NUMERIC:
        return json_real(wh_result_double(r, row, col));
    default: {
        char buf[4096];
        wh_result_text(r, row, col, buf, sizeof buf);
        return json_string(buf);
    }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: wh_driver DBDIR < statements\n");
        return 2;
    }
    struct weir_err err;
    struct wh_db *db = NULL;
    if (wh_open(argv[1], &db, &err) < 0) {
        fprintf(stderr, "wh_driver: %s\n", err.msg);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = 0;
        if (!line[0])
            continue;
        struct wh_result *r = NULL;
        json_t *o;
        err_clear(&err);
        if (wh_exec(db, line, &r, &err) < 0) {
            o = json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "code", err_name(err.code), "error",
                          err.msg, "loc", err.loc);
        } else {
            json_t *cols = json_array(), *rows = json_array();
            for (size_t c = 0; c < wh_result_ncols(r); c++)
                json_array_append_new(cols, json_string(wh_result_colname(r, c)));
            for (size_t i = 0; i < wh_result_nrows(r); i++) {
                json_t *row = json_array();
                for (size_t c = 0; c < wh_result_ncols(r); c++)
                    json_array_append_new(row, value(r, i, c));
                json_array_append_new(rows, row);
            }
            o = json_pack("{s:b,s:s,s:I,s:o,s:o}", "ok", 1, "tag", wh_result_tag(r), "affected",
                          (json_int_t)wh_result_affected(r), "cols", cols, "rows", rows);
            wh_result_free(r);
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
        printf("%s\n", s);
        fflush(stdout);
        free(s);
        json_decref(o);
    }
    free(line);
    wh_close(db);
    return 0;
}
