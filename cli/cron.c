/* cli/cron.c - `weir cron next EXPR [--tz ZONE] [--from TIME] [--count N]`: prints the next
 * fire times of a cron expression, one RFC 3339 UTC time per line. Needs only core/, so the
 * test helper tests/helpers/cronprobe.c links this file too. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "core/err.h"
#include "core/ts.h"
#include "core/tz.h"

#define CRON_DEFAULT_COUNT 5
#define CRON_MAX_COUNT     1000

static const char cron_usage[] =
    "usage: weir cron next EXPR [--tz ZONE] [--from TIME] [--count N]\n"
    "\n"
    "Prints the next N (default 5, at most 1000) fire times of the cron expression EXPR\n"
    "after TIME (default now), evaluated in time zone ZONE (default UTC), one RFC 3339 UTC\n"
    "time per line. TIME is RFC 3339 (2026-03-29T01:00:00Z); without an offset it is read\n"
    "as local time in ZONE. EXPR is one argument (quote it) or the five fields as separate\n"
    "arguments. See docs/cron.md.\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "weir: %s", msg);
    if (arg)
        fprintf(stderr, " '%s'", arg);
    fprintf(stderr, "\n%s", cron_usage);
    return CLI_USAGE;
}

/* Matches "--name VALUE" or "--name=VALUE"; advances *i past what it used. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

static int cron_next_cmd(int argc, char **argv)
{
    const char *tzname = NULL, *from = NULL, *count_s = NULL;
    char expr[512] = "";
    size_t elen = 0;
    int npos = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(cron_usage, stdout);
            return CLI_OK;
        }
        if ((r = opt_value(argc, argv, &i, "--tz", &tzname)) != 0 ||
            (r = opt_value(argc, argv, &i, "--from", &from)) != 0 ||
            (r = opt_value(argc, argv, &i, "--count", &count_s)) != 0) {
            if (r < 0)
                return usage_error("missing value for", a);
            continue;
        }
        if (a[0] == '-' && a[1] == '-')
            return usage_error("unknown option", a);
        size_t n = strlen(a);
        if (elen + n + 2 > sizeof expr)
            return usage_error("cron expression too long", NULL);
        if (npos++)
            expr[elen++] = ' ';
        memcpy(expr + elen, a, n + 1);
        elen += n;
    }
    if (npos == 0)
        return usage_error("missing cron expression", NULL);

    struct weir_err err;
    struct cron c;
    const struct tz *tz = tz_utc();
    long count = CRON_DEFAULT_COUNT;
    int64_t t;

    err_clear(&err);
    if (count_s) {
        char *end;
        errno = 0;
        count = strtol(count_s, &end, 10);
        if (errno || end == count_s || *end || count < 1 || count > CRON_MAX_COUNT) {
            fprintf(stderr, "weir: invalid --count '%s': expected 1-%d\n", count_s, CRON_MAX_COUNT);
            return CLI_USAGE;
        }
    }
    if (tzname && !(tz = tz_get(tzname, &err))) {
        fprintf(stderr, "weir: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (cron_parse(expr, &c, &err) < 0) {
        fprintf(stderr, "weir: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (from) {
        if (ts_parse(from, tz, &t, &err) < 0) {
            fprintf(stderr, "weir: --from: %s\n", err.msg);
            return CLI_USAGE;
        }
    } else {
        t = ts_now_us();
    }
    long printed = 0;
    for (; printed < count; printed++) {
        char buf[48];
        t = cron_next(&c, tz, t);
        if (t == INT64_MAX)
            break;
        printf("%s\n", ts_format(t, TS_FMT_Z, buf, sizeof buf));
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "weir: cannot write the output\n");
        return CLI_FAILED;
    }
    if (printed == 0) {
        fprintf(stderr, "weir: cron '%s' does not fire within 10 years\n", expr);
        return CLI_FAILED;
    }
    return CLI_OK;
}

int cli_cron_main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing subcommand", NULL);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(cron_usage, stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "next") == 0)
        return cron_next_cmd(argc - 1, argv + 1);
    return usage_error("unknown cron subcommand", argv[1]);
}
