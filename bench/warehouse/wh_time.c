/* bench/warehouse/wh_time.c - times SQL against an existing warehouse, for profiling between
 * full benchmark runs: `weir-bench-time DBDIR [REPS] [THREADS] < statements` runs each input
 * line REPS times (default 5) and prints the median and minimum milliseconds and the first
 * row of the result. The database is opened with a 16 GiB per-query memory limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "warehouse/warehouse.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: weir-bench-time DBDIR [REPS] [THREADS] < statements\n");
        return 2;
    }
    int reps = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
    if (reps < 1 || reps > 1000)
        reps = 5;
    struct weir_err err;
    struct wh_db *db = NULL;
    if (wh_open(argv[1], &db, &err) < 0) {
        fprintf(stderr, "weir-bench-time: %s\n", err.msg);
        return 1;
    }
    wh_set_mem_limit(db, (size_t)16 << 30);
    if (argc > 3)
        wh_set_threads(db, (int)strtol(argv[3], NULL, 10));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    double *t = calloc((size_t)reps, sizeof *t);
    while (t && (n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = 0;
        if (!line[0] || !strncmp(line, "--", 2))
            continue;
        char first[512] = "";
        int rc = 0;
        for (int i = 0; i < reps && rc == 0; i++) {
            struct wh_result *r = NULL;
            double t0 = now_ms();
            rc = wh_exec(db, line, &r, &err);
            t[i] = now_ms() - t0;
            if (rc == 0 && i == 0 && wh_result_nrows(r) > 0) {
                size_t at = 0;
                for (size_t c = 0; c < wh_result_ncols(r) && at < sizeof first - 1; c++) {
                    char buf[128];
                    if (!wh_result_text(r, 0, c, buf, sizeof buf))
                        snprintf(buf, sizeof buf, "NULL");
                    at +=
                        (size_t)snprintf(first + at, sizeof first - at, "%s%s", c ? "|" : "", buf);
                    if (at >= sizeof first)
                        at = sizeof first - 1;
                }
            }
            wh_result_free(r);
        }
        if (rc < 0) {
            printf("ERROR %s: %.60s\n", err.msg, line);
            continue;
        }
        qsort(t, (size_t)reps, sizeof *t, dbl_cmp);
        printf("%9.2f ms (min %8.2f)  %-40.40s  %s\n", t[reps / 2], t[0], line, first);
        fflush(stdout);
    }
    free(t);
    free(line);
    wh_close(db);
    return 0;
}
