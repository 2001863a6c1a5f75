/* tests/helpers/cronprobe.c - batch driver for cron tests. Reads lines
 * "EXPR<TAB>ZONE<TAB>FROM<TAB>COUNT" on stdin and prints one line per input line:
 * "ok T1 T2 ..." (the next COUNT fire times after FROM, or with a negative COUNT the
 * previous -COUNT ones before FROM, newest first; fewer when the schedule ends, RFC 3339 UTC)
 * or "error MESSAGE". `cronprobe cron ARGS...` runs the CLI command instead (cli/cron.c).
 * `cronprobe offsets` reads "ZONE<TAB>TIME" lines and prints "ok OFFSET_SECONDS" or
 * "error MESSAGE" (tz_offset_at, for comparing zones with another implementation). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/cron.h"
#include "core/err.h"
#include "core/ts.h"
#include "core/tz.h"

static void probe(char *line)
{
    char *f[4];
    int n = 0;
    struct weir_err err;
    struct cron c;
    const struct tz *tz;
    int64_t t;

    err_clear(&err);
    for (char *p = line; n < 4; n++) {
        f[n] = p;
        p = strchr(p, '\t');
        if (!p) {
            n++;
            break;
        }
        *p++ = '\0';
    }
    if (n != 4) {
        printf("error bad input line\n");
        return;
    }
    if (!(tz = tz_get(f[1], &err)) || ts_parse(f[2], tz, &t, &err) < 0 ||
        cron_parse(f[0], &c, &err) < 0) {
        printf("error %s\n", err.msg);
        return;
    }
    long count = strtol(f[3], NULL, 10);
    fputs("ok", stdout);
    for (long i = 0; i < labs(count); i++) {
        char buf[48];
        t = count > 0 ? cron_next(&c, tz, t) : cron_prev(&c, tz, t);
        if (t == INT64_MAX || t == INT64_MIN)
            break;
        printf(" %s", ts_format(t, TS_FMT_Z, buf, sizeof buf));
    }
    putchar('\n');
}

static void offset(char *line)
{
    struct weir_err err;
    const struct tz *tz;
    int64_t t;
    char *tab = strchr(line, '\t');

    err_clear(&err);
    if (!tab) {
        printf("error bad input line\n");
        return;
    }
    *tab = '\0';
    if (!(tz = tz_get(line, &err)) || ts_parse(tab + 1, NULL, &t, &err) < 0) {
        printf("error %s\n", err.msg);
        return;
    }
    printf("ok %d\n", tz_offset_at(tz, t));
}

int main(int argc, char **argv)
{
    char line[1024];
    bool offsets = argc > 1 && strcmp(argv[1], "offsets") == 0;
    if (argc > 1 && strcmp(argv[1], "cron") == 0)
        return cli_cron_main(argc - 1, argv + 1);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (offsets)
            offset(line);
        else
            probe(line);
    }
    return 0;
}
