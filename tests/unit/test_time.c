/* tests/unit/test_time.c - core/ts.c (timestamps, RFC 3339, durations, calendar), core/tz.c
 * (TZif zones, POSIX footer rules, local<->UTC) and core/cron.c (parsing, Vixie day rule,
 * DST behaviour). The bulk comparison against an independent model is
 * tests/helpers/cron_reference.py (ctest unit.cron_reference). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cron.h"
#include "core/err.h"
#include "core/ts.h"
#include "core/tz.h"

/* ---- helpers ---- */

static int64_t T(const char *s)
{
    struct weir_err e;
    int64_t us = 0;
    int rc = ts_parse(s, NULL, &us, &e);
    if (rc != 0)
        fail_msg("ts_parse('%s'): %s", s, e.msg);
    return us;
}

static const char *F(int64_t us)
{
    static char buf[8][48];
    static int i;
    i = (i + 1) % 8;
    if (us == INT64_MAX)
        return "never";
    if (us == INT64_MIN)
        return "never-before";
    return ts_format(us, TS_FMT_Z, buf[i], sizeof buf[i]);
}

static const struct tz *Z(const char *name)
{
    struct weir_err e;
    const struct tz *z = tz_get(name, &e);
    if (!z)
        fail_msg("tz_get('%s'): %s", name, e.msg);
    return z;
}

static struct cron C(const char *expr) {
    struct weir_err e;
    struct cron c;
    if (cron_parse(expr, &c, &e) != 0)
        fail_msg("cron_parse('%s'): %s", expr, e.msg);
    return c;
}

/* Checks that the fire times after `from` are exactly the NULL-terminated list `want`. */
static void
expect_next(const char *expr, const char *zone, const char *from, const char **want)
{
    struct cron c = C(expr);
    const struct tz *z = zone ? Z(zone) : NULL;
    int64_t t = T(from);
    for (int i = 0; want[i]; i++) {
        t = cron_next(&c, z, t);
        if (strcmp(F(t), want[i]) != 0)
            fail_msg("'%s' in %s after %s: fire #%d is %s, want %s", expr, zone ? zone : "UTC",
                     from, i + 1, F(t), want[i]);
    }
}

/* Same backwards: the fire times before `from`, newest first. */
static void expect_prev(const char *expr, const char *zone, const char *from, const char **want)
{
    struct cron c = C(expr);
    const struct tz *z = zone ? Z(zone) : NULL;
    int64_t t = T(from);
    for (int i = 0; want[i]; i++) {
        t = cron_prev(&c, z, t);
        if (strcmp(F(t), want[i]) != 0)
            fail_msg("'%s' in %s before %s: fire #%d is %s, want %s", expr, zone ? zone : "UTC",
                     from, i + 1, F(t), want[i]);
    }
}

#define NEXT(expr, zone, from, ...) \
    expect_next(expr, zone, from, (const char *[]){ __VA_ARGS__, NULL })
#define PREV(expr, zone, from, ...) \
    expect_prev(expr, zone, from, (const char *[]){ __VA_ARGS__, NULL })

static void expect_parse_error(const char *expr, const char *msg)
{
    struct weir_err e;
    struct cron c;
    err_clear(&e);
    int rc = cron_parse(expr, &c, &e);
    const char *shown = expr ? expr : "(null)";
    if (rc != -WEIR_EINVAL)
        fail_msg("cron_parse('%s') returned %d, want -WEIR_EINVAL", shown, rc);
    assert_int_equal(e.code, WEIR_EINVAL);
    if (msg && strcmp(e.msg, msg) != 0)
        fail_msg("cron_parse('%s'): message\n  '%s'\nwant\n  '%s'", shown, e.msg, msg);
}

/* ---- ts ---- */

static void test_ts_parse_format(void **state)
{
    (void)state;
    char buf[48];
    int64_t us;
    struct weir_err e;

    assert_int_equal(T("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(T("1970-01-01"), 0);
    assert_int_equal(T("2026-03-29T01:00:00Z"), INT64_C(1774746000) * TS_US_PER_SEC);
    assert_int_equal(T("2026-03-29T03:00:00+02:00"), T("2026-03-29T01:00:00Z"));
    assert_int_equal(T("2026-03-28T20:00:00-05:00"), T("2026-03-29T01:00:00Z"));
    assert_int_equal(T("2026-03-29 01:00:00z"), T("2026-03-29T01:00:00Z"));
    assert_int_equal(T("2026-03-29t01:00Z"), T("2026-03-29T01:00:00Z"));
    assert_int_equal(T("2026-03-29T01:00:00+0000"), T("2026-03-29T01:00:00Z"));
    assert_int_equal(T("2026-03-29T01:00:00.5Z"), T("2026-03-29T01:00:00Z") + 500000);
    assert_int_equal(T("2026-03-29T01:00:00.123456789Z"), T("2026-03-29T01:00:00Z") + 123456);
    assert_int_equal(T("1969-12-31T23:59:59.999999Z"), -1);
    assert_int_equal(T("2024-02-29T12:00:00Z") - T("2024-02-28T12:00:00Z"),
                     INT64_C(86400) * TS_US_PER_SEC);

    assert_string_equal(ts_format(T("2026-03-29T01:00:00Z"), TS_FMT_Z, buf, sizeof buf),
                        "2026-03-29T01:00:00Z");
    assert_string_equal(ts_format(T("2026-03-29T01:00:00Z"), TS_FMT_OFFSET, buf, sizeof buf),
                        "2026-03-29T01:00:00+00:00");
    assert_string_equal(ts_format(T("2026-03-29T01:00:00.123Z"), TS_FMT_Z, buf, sizeof buf),
                        "2026-03-29T01:00:00.123000Z");
    assert_string_equal(ts_format(-1, TS_FMT_Z, buf, sizeof buf), "1969-12-31T23:59:59.999999Z");
    assert_string_equal(ts_format(T("0001-01-01T00:00:00Z"), TS_FMT_Z, buf, sizeof buf),
                        "0001-01-01T00:00:00Z");
    assert_string_equal(ts_format(T("9999-12-31T23:59:59Z"), TS_FMT_Z, buf, sizeof buf),
                        "9999-12-31T23:59:59Z");

    /* round trips over a wide range, including negative instants and fractions */
    for (int64_t x = -INT64_C(62135596800) * TS_US_PER_SEC;
         x < INT64_C(253402300799) * TS_US_PER_SEC; x += INT64_C(98765432123457)) {
        ts_format(x, TS_FMT_Z, buf, sizeof buf);
        assert_int_equal(ts_parse(buf, NULL, &us, &e), 0);
        assert_int_equal(us, x);
        ts_format(x, TS_FMT_OFFSET, buf, sizeof buf);
        assert_int_equal(ts_parse(buf, NULL, &us, &e), 0);
        assert_int_equal(us, x);
    }

    const char *bad[] = { "",
                          "2026",
                          "2026-13-01",
                          "2026-02-29",
                          "2025-02-29",
                          "2026-00-10",
                          "2026-01-32",
                          "2026-01-01T24:00",
                          "2026-01-01T10:60",
                          "2026-01-01T10:00:60",
                          "2026-01-01T10",
                          "2026-01-01T10:00:00.Z",
                          "2026-01-01T10:00:00+2",
                          "2026-01-01T10:00:00+25:00",
                          "2026-01-01T10:00:00Zjunk",
                          "2026-01-01 ",
                          "0000-01-01",
                          "26-01-01",
                          "2026-1-1",
                          " 2026-01-01",
                          "2026-01-01T10:00:00.1234567891Z" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        if (ts_parse(bad[i], NULL, &us, &e) != -WEIR_EINVAL)
            fail_msg("ts_parse('%s') accepted", bad[i]);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        if (!strstr(e.msg, quoted))
            fail_msg("ts_parse('%s'): message '%s' does not quote the text", bad[i], e.msg);
    }
}

static void test_ts_parse_local(void **state)
{
    (void)state;
    const struct tz *ams = Z("Europe/Amsterdam"), *ny = Z("America/New_York");
    int64_t us;
    struct weir_err e;

    assert_int_equal(ts_parse("2026-01-01T10:00:00", ams, &us, &e), 0);
    assert_string_equal(F(us), "2026-01-01T09:00:00Z");
    assert_int_equal(ts_parse("2026-07-01", ams, &us, &e), 0);
    assert_string_equal(F(us), "2026-06-30T22:00:00Z");
    /* an explicit offset wins over the zone */
    assert_int_equal(ts_parse("2026-07-01T00:00:00Z", ams, &us, &e), 0);
    assert_string_equal(F(us), "2026-07-01T00:00:00Z");
    /* skipped: 02:30 moves forward by the gap to 03:30 CEST */
    assert_int_equal(ts_parse("2026-03-29T02:30", ams, &us, &e), 0);
    assert_string_equal(F(us), "2026-03-29T01:30:00Z");
    /* repeated: the first occurrence (CEST) */
    assert_int_equal(ts_parse("2026-10-25T02:30", ams, &us, &e), 0);
    assert_string_equal(F(us), "2026-10-25T00:30:00Z");
    assert_int_equal(ts_parse("2026-03-08T02:30", ny, &us, &e), 0);
    assert_string_equal(F(us), "2026-03-08T07:30:00Z");
    assert_int_equal(ts_parse("2026-11-01T01:30", ny, &us, &e), 0);
    assert_string_equal(F(us), "2026-11-01T05:30:00Z");
}

static void test_ts_civil(void **state)
{
    (void)state;
    struct civil c;
    int y, m, d;

    ts_to_civil_utc(0, &c);
    assert_int_equal(c.year, 1970);
    assert_int_equal(c.wday, 4);
    assert_int_equal(c.yday, 0);
    ts_to_civil_utc(T("2024-12-31T23:59:59.25Z"), &c);
    assert_int_equal(c.yday, 365);
    assert_int_equal(c.usec, 250000);
    assert_int_equal(c.wday, 2);
    ts_to_civil_utc(T("2000-02-29T00:00:00Z"), &c);
    assert_int_equal(c.month, 2);
    assert_int_equal(c.day, 29);
    assert_int_equal(c.wday, 2);
    ts_to_civil_utc(-1, &c);
    assert_int_equal(c.year, 1969);
    assert_int_equal(c.second, 59);
    assert_int_equal(c.usec, 999999);

    assert_int_equal(ts_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(ts_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(ts_days_from_civil(1, 1, 1), -719162);
    /* month and day normalization */
    assert_int_equal(ts_days_from_civil(2025, 13, 1), ts_days_from_civil(2026, 1, 1));
    assert_int_equal(ts_days_from_civil(2024, 3, 0), ts_days_from_civil(2024, 2, 29));
    assert_int_equal(ts_days_from_civil(2026, 0, 1), ts_days_from_civil(2025, 12, 1));
    for (int64_t days = -800000; days < 3000000; days += 17) {
        ts_civil_from_days(days, &y, &m, &d);
        assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
        assert_int_equal(ts_days_from_civil(y, m, d), days);
    }
    struct civil x = { .year = 2026, .month = 3, .day = 29, .hour = 25, .minute = 61 };
    assert_string_equal(F(ts_from_civil_utc(&x)), "2026-03-30T02:01:00Z");
}

static void test_ts_duration(void **state)
{
    (void)state;
    struct {
        const char *s;
        int64_t us;
    } ok[] = {
        { "90", 90 * TS_US_PER_SEC },
        { "1.5", 1500000 },
        { "30s", 30 * TS_US_PER_SEC },
        { "10m", 600 * TS_US_PER_SEC },
        { "1h30m", 5400 * TS_US_PER_SEC },
        { "2d", 172800 * TS_US_PER_SEC },
        { "500ms", 500000 },
        { "1h30m15s", 5415 * TS_US_PER_SEC },
        { "1.5h", 5400 * TS_US_PER_SEC },
        { "0", 0 },
        { "250us", 250 },
        { "1w", 7 * 86400 * TS_US_PER_SEC },
        { "0.000001", 1 },
    };
    const char *bad[] = {
        "",    "abc", "10x", "-5", "1h-5m", "h", "1.5.5", "10 m", "99999999999999d",
        "5s3", "1e3", ".",   "s"
    };
    int64_t us;
    struct weir_err e;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (ts_parse_duration(ok[i].s, &us, &e) != 0)
            fail_msg("ts_parse_duration('%s'): %s", ok[i].s, e.msg);
        assert_int_equal(us, ok[i].us);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        if (ts_parse_duration(bad[i], &us, &e) != -WEIR_EINVAL)
            fail_msg("ts_parse_duration('%s') accepted", bad[i]);
        assert_non_null(strstr(e.msg, "invalid duration '"));
    }
}

static void test_ts_clocks(void **state)
{
    (void)state;
    int64_t now = ts_now_us(), m1 = ts_mono_us(), m2 = ts_mono_us();
    assert_true(now > T("2020-01-01T00:00:00Z"));
    assert_true(m2 >= m1);
}

/* ---- tz ---- */

static void test_tz_names(void **state)
{
    (void)state;
    struct weir_err e;
    assert_ptr_equal(Z("UTC"), tz_utc());
    assert_ptr_equal(Z("Z"), tz_utc());
    assert_ptr_equal(Z("Etc/UTC"), tz_utc());
    assert_string_equal(tz_name(tz_utc()), "UTC");
    assert_string_equal(tz_name(Z("Europe/Amsterdam")), "Europe/Amsterdam");
    assert_ptr_equal(Z("Europe/Amsterdam"), Z("Europe/Amsterdam")); /* cached */

    const char *invalid[] = { "",
                              "../etc/passwd",
                              "/etc/passwd",
                              "Europe/../../etc/passwd",
                              "Europe/Amsterdam ",
                              "a b",
                              "Europe\\Paris",
                              "x;y",
                              "-x" };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        err_clear(&e);
        if (tz_get(invalid[i], &e) != NULL)
            fail_msg("tz_get('%s') accepted", invalid[i]);
        assert_int_equal(e.code, WEIR_EINVAL);
    }
    const char *unknown[] = { "Mars/Olympus_Mons", "Europe", "Europe/Amsterdam/x" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        err_clear(&e);
        if (tz_get(unknown[i], &e) != NULL)
            fail_msg("tz_get('%s') accepted", unknown[i]);
        assert_int_equal(e.code, WEIR_ENOTFOUND);
        char want[96];
        snprintf(want, sizeof want, "unknown time zone '%s'", unknown[i]);
        assert_string_equal(e.msg, want);
    }
}

static void test_tz_bad_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/weir-tz-XXXXXX", path[128];
    struct weir_err e;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/Bad_Zone", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("TZif2 but not really a zone file, far too short", f);
    fclose(f);
    setenv("TZDIR", dir, 1);
    err_clear(&e);
    assert_null(tz_get("Bad_Zone", &e));
    assert_int_equal(e.code, WEIR_EINVAL);
    assert_non_null(strstr(e.msg, "time zone 'Bad_Zone': bad TZif file"));
    unsetenv("TZDIR");
    unlink(path);
    rmdir(dir);
}

static void test_tz_offsets(void **state)
{
    (void)state;
    const struct tz *ams = Z("Europe/Amsterdam"), *ny = Z("America/New_York");
    const struct tz *syd = Z("Australia/Sydney"), *kol = Z("Asia/Kolkata");

    assert_int_equal(tz_offset_at(ams, T("2026-01-15T12:00:00Z")), 3600);
    assert_int_equal(tz_offset_at(ams, T("2026-07-15T12:00:00Z")), 7200);
    assert_int_equal(tz_offset_at(ams, T("2026-03-29T00:59:59Z")), 3600);
    assert_int_equal(tz_offset_at(ams, T("2026-03-29T01:00:00Z")), 7200);
    assert_int_equal(tz_offset_at(ams, T("2026-10-25T00:59:59Z")), 7200);
    assert_int_equal(tz_offset_at(ams, T("2026-10-25T01:00:00Z")), 3600);
    assert_int_equal(tz_offset_at(ny, T("2026-03-08T06:59:59Z")), -18000);
    assert_int_equal(tz_offset_at(ny, T("2026-03-08T07:00:00Z")), -14400);
    assert_int_equal(tz_offset_at(ny, T("2026-11-01T05:59:59Z")), -14400);
    assert_int_equal(tz_offset_at(ny, T("2026-11-01T06:00:00Z")), -18000);
    assert_int_equal(tz_offset_at(kol, T("2026-06-01T00:00:00Z")), 19800);
    assert_int_equal(tz_offset_at(tz_utc(), T("2026-06-01T00:00:00Z")), 0);
    assert_int_equal(tz_offset_at(NULL, T("2026-06-01T00:00:00Z")), 0);
    /* beyond the table: the footer's POSIX rule */
    assert_int_equal(tz_offset_at(ams, T("2150-07-01T00:00:00Z")), 7200);
    assert_int_equal(tz_offset_at(ams, T("2150-12-01T00:00:00Z")), 3600);
    assert_int_equal(tz_offset_at(ams, T("2150-03-29T00:59:59Z")), 3600); /* last Sunday */
    assert_int_equal(tz_offset_at(ams, T("2150-03-29T01:00:00Z")), 7200);
    assert_int_equal(tz_offset_at(ny, T("2150-03-08T06:59:59Z")), -18000); /* 2nd Sunday */
    assert_int_equal(tz_offset_at(ny, T("2150-03-08T07:00:00Z")), -14400);
    assert_int_equal(tz_offset_at(syd, T("2150-01-15T00:00:00Z")), 39600); /* southern summer */
    assert_int_equal(tz_offset_at(syd, T("2150-07-15T00:00:00Z")), 36000);
    /* before the table: local mean time */
    assert_int_equal(tz_offset_at(ams, T("1800-01-01T00:00:00Z")), 1172);
    assert_int_equal(tz_offset_at(ny, T("1800-01-01T00:00:00Z")), -17762);

    struct civil c;
    tz_to_local(ams, T("2026-03-29T01:00:00Z"), &c);
    assert_int_equal(c.hour, 3);
    assert_int_equal(c.offset, 7200);
    assert_int_equal(c.wday, 0);
    tz_to_local(ny, T("2026-01-01T03:00:00.5Z"), &c);
    assert_int_equal(c.year, 2025);
    assert_int_equal(c.day, 31);
    assert_int_equal(c.hour, 22);
    assert_int_equal(c.usec, 500000);
    assert_int_equal(c.offset, -18000);

    struct tz_span sp;
    tz_span_at(ams, T("2026-06-01T00:00:00Z"), &sp);
    assert_string_equal(F(sp.start), "2026-03-29T01:00:00Z");
    assert_string_equal(F(sp.end), "2026-10-25T01:00:00Z");
    assert_int_equal(sp.offset, 7200);
    assert_int_equal(sp.prev_offset, 3600);
    tz_span_at(tz_utc(), 0, &sp);
    assert_true(sp.start == INT64_MIN && sp.end == INT64_MAX && sp.offset == 0);
}

static void test_tz_from_local(void **state)
{
    (void)state;
    const struct tz *ams = Z("Europe/Amsterdam");
    int64_t a, b;
    struct civil c = { .year = 2026, .month = 3, .day = 29, .hour = 2, .minute = 30 };
    assert_int_equal(tz_from_local(ams, &c, &a, &b), 0);
    assert_string_equal(F(a), "2026-03-29T01:00:00Z");
    assert_int_equal(a, b);
    c = (struct civil){ .year = 2026, .month = 10, .day = 25, .hour = 2, .minute = 30 };
    assert_int_equal(tz_from_local(ams, &c, &a, &b), 2);
    assert_string_equal(F(a), "2026-10-25T00:30:00Z");
    assert_string_equal(F(b), "2026-10-25T01:30:00Z");
    c = (struct civil){ .year = 2026, .month = 10, .day = 25, .hour = 3 };
    assert_int_equal(tz_from_local(ams, &c, &a, &b), 1);
    assert_string_equal(F(a), "2026-10-25T02:00:00Z");
    c = (struct civil){ .year = 2026, .month = 10, .day = 25, .hour = 2 };
    assert_int_equal(tz_from_local(ams, &c, &a, &b), 2);
    assert_string_equal(F(a), "2026-10-25T00:00:00Z");
    assert_string_equal(F(b), "2026-10-25T01:00:00Z");
    c = (struct civil){ .year = 2026, .month = 3, .day = 29, .hour = 3 };
    assert_int_equal(tz_from_local(ams, &c, &a, &b), 1);
    assert_string_equal(F(a), "2026-03-29T01:00:00Z");
    c = (struct civil){
        .year = 2026, .month = 3, .day = 29, .hour = 1, .minute = 59, .second = 59
    };
    assert_int_equal(tz_from_local(ams, &c, &a, &b), 1);
    assert_string_equal(F(a), "2026-03-29T00:59:59Z");
    c = (struct civil){ .year = 2026, .month = 6, .day = 1 };
    assert_int_equal(tz_from_local(NULL, &c, &a, &b), 1);
    assert_string_equal(F(a), "2026-06-01T00:00:00Z");
}

static void *tz_thread(void *arg)
{
    const char **names = arg;
    for (int i = 0; i < 200; i++) {
        const struct tz *z = tz_get(names[i % 4], NULL);
        if (!z || strcmp(tz_name(z), names[i % 4]) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_tz_threads(void **state)
{
    (void)state;
    static const char *names[] = { "Asia/Tokyo", "America/Sao_Paulo", "Africa/Cairo",
                                   "Pacific/Auckland" };
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, tz_thread, names), 0);
    for (int i = 0; i < 8; i++) {
        void *rv;
        assert_int_equal(pthread_join(th[i], &rv), 0);
        assert_null(rv);
    }
}

/* ---- cron: parsing ---- */

static void test_cron_parse_fields(void **state)
{
    (void)state;
    struct cron c = C("*/15 9-17 1,15 jan-MAR,Dec mon-fri");
    assert_true(c.minute ==
                (UINT64_C(1) << 0 | UINT64_C(1) << 15 | UINT64_C(1) << 30 | UINT64_C(1) << 45));
    assert_int_equal(c.hour, 0x3fe00);
    assert_int_equal(c.dom, 1u << 1 | 1u << 15);
    assert_int_equal(c.month, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 12);
    assert_int_equal(c.dow, 0x3e);
    assert_true(c.min_star && !c.hour_star && !c.dom_star && !c.dow_star);

    c = C("0 0 * * 7");
    assert_int_equal(c.dow, 1);
    c = C("0 0 * * 5-7");
    assert_int_equal(c.dow, 1u << 5 | 1u << 6 | 1u << 0);
    c = C("0 0 * * */2"); /* 0-7/2 = 0,2,4,6 */
    assert_int_equal(c.dow, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 6);
    assert_true(c.dow_star);
    c = C("0 0 * * SUN,Sat");
    assert_int_equal(c.dow, 1u << 0 | 1u << 6);
    c = C("0-59/20 */5 */10 */4 1-7/3");
    assert_true(c.minute == (UINT64_C(1) << 0 | UINT64_C(1) << 20 | UINT64_C(1) << 40));
    assert_int_equal(c.hour, 1u << 0 | 1u << 5 | 1u << 10 | 1u << 15 | 1u << 20);
    assert_int_equal(c.dom, 1u << 1 | 1u << 11 | 1u << 21 | 1u << 31);
    assert_int_equal(c.month, 1u << 1 | 1u << 5 | 1u << 9);
    assert_int_equal(c.dow, 1u << 1 | 1u << 4 | 1u << 0);
    assert_true(!c.min_star && c.hour_star && c.dom_star && !c.dow_star);
    c = C("  5\t4  *  *  *  ");
    assert_true(c.minute == UINT64_C(1) << 5);
    c = C("*/100 * * * *");
    assert_true(c.minute == 1);
    c = C("*,5 * 1-31 * *");
    assert_true(c.min_star && !c.dom_star);
}

static void test_cron_presets(void **state)
{
    (void)state;
    struct {
        const char *preset, *expansion;
    } p[] = { { "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
              { "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
              { "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
              { "@hourly", "0 * * * *" },  { " @DAILY ", "0 0 * * *" } };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        struct cron a = C(p[i].preset), b = C(p[i].expansion);
        assert_memory_equal(&a, &b, sizeof a);
    }
    NEXT("@weekly", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z");
    NEXT("@monthly", "Europe/Amsterdam", "2026-01-15T00:00:00Z", "2026-01-31T23:00:00Z",
         "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z");
    NEXT("@yearly", NULL, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
    NEXT("@hourly", NULL, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
}

static void test_cron_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("61 * * * *", "cron '61 * * * *': minute field: 61 is out of range 0-59");
    expect_parse_error("* 24 * * *", "cron '* 24 * * *': hour field: 24 is out of range 0-23");
    expect_parse_error("* * 0 * *", "cron '* * 0 * *': day-of-month field: 0 is out of range 1-31");
    expect_parse_error("* * 32 * *",
                       "cron '* * 32 * *': day-of-month field: 32 is out of range 1-31");
    expect_parse_error("* * * 13 *", "cron '* * * 13 *': month field: 13 is out of range 1-12");
    expect_parse_error("* * * * 8", "cron '* * * * 8': day-of-week field: 8 is out of range 0-7");
    expect_parse_error("5/15 * * * *", "cron '5/15 * * * *': minute field: a step needs a range "
                                       "or '*' (write 5-59/N), in '5/15'");
    expect_parse_error("*/0 * * * *", "cron '*/0 * * * *': minute field: step 0 in '*/0'");
    expect_parse_error("* * * * sat-sun",
                       "cron '* * * * sat-sun': day-of-week field: range 6-0 is reversed");
    expect_parse_error("30-10 * * * *",
                       "cron '30-10 * * * *': minute field: range 30-10 is reversed");
    expect_parse_error("* * * foo *", "cron '* * * foo *': month field: unknown name 'foo'");
    expect_parse_error("* * * january *",
                       "cron '* * * january *': month field: unknown name 'january'");
    expect_parse_error("* mon * * *",
                       "cron '* mon * * *': hour field: names such as 'mon' are only "
                       "allowed for months and days of the week");
    expect_parse_error("* * * *", "cron '* * * *': expected 5 fields (minute hour day-of-month "
                                  "month day-of-week), got 4");
    expect_parse_error("* * * * * *", "cron '* * * * * *': expected 5 fields (minute hour "
                                      "day-of-month month day-of-week), got 6");
    expect_parse_error("", "cron '': empty expression");
    expect_parse_error("   ", "cron '   ': empty expression");
    expect_parse_error(NULL, NULL);
    expect_parse_error("@every_5m", NULL);
    expect_parse_error("@reboot", "cron '@reboot': @reboot is not a schedule");
    expect_parse_error("@daily *", "cron '@daily *': a preset stands alone");
    expect_parse_error("1, * * * *",
                       "cron '1, * * * *': minute field: missing value after ',' in '1,'");
    expect_parse_error(",1 * * * *", "cron ',1 * * * *': minute field: unexpected ','");
    expect_parse_error("*-5 * * * *", "cron '*-5 * * * *': minute field: unexpected '-'");
    expect_parse_error("1- * * * *", "cron '1- * * * *': minute field: missing value in '1-'");
    expect_parse_error("*/ * * * *",
                       "cron '*/ * * * *': minute field: a step must be a number, in '*/'");
    expect_parse_error("? * * * *", "cron '? * * * *': minute field: unexpected '?'");
    expect_parse_error("* * L * *", NULL);
    expect_parse_error("* * * * 1#2", NULL);
    expect_parse_error(
        "99999999999 * * * *",
        "cron '99999999999 * * * *': minute field: 99999999999 is out of range 0-59");
    expect_parse_error("* * * * *\n", NULL);
    char longexpr[400];
    memset(longexpr, '1', sizeof longexpr - 1);
    longexpr[sizeof longexpr - 1] = '\0';
    expect_parse_error(longexpr, NULL);
}

/* ---- cron: evaluation ---- */

static void test_cron_basic(void **state)
{
    (void)state;
    NEXT("* * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z");
    NEXT("* * * * *", NULL, "2026-01-01T00:00:59.999999Z", "2026-01-01T00:01:00Z");
    NEXT("* * * * *", NULL, "2025-12-31T23:59:30Z", "2026-01-01T00:00:00Z");
    NEXT("0 0 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"); /* strictly after */
    NEXT("*/20 9-10 * * mon-fri", NULL, "2026-01-02T10:30:00Z", "2026-01-02T10:40:00Z",
         "2026-01-05T09:00:00Z", "2026-01-05T09:20:00Z");
    NEXT("15 14 1 * *", NULL, "2026-01-01T14:15:00Z", "2026-02-01T14:15:00Z",
         "2026-03-01T14:15:00Z");
    NEXT("0 12 31 * *", NULL, "2026-01-31T12:00:00Z", "2026-03-31T12:00:00Z",
         "2026-05-31T12:00:00Z", "2026-07-31T12:00:00Z", "2026-08-31T12:00:00Z");
    NEXT("0 0 1 jan *", NULL, "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z");
    PREV("* * * * *", NULL, "2026-01-01T00:00:00Z", "2025-12-31T23:59:00Z", "2025-12-31T23:58:00Z");
    PREV("* * * * *", NULL, "2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00Z");
    PREV("*/20 9-10 * * mon-fri", NULL, "2026-01-05T09:00:00Z", "2026-01-02T10:40:00Z",
         "2026-01-02T10:20:00Z");
    PREV("0 12 31 * *", NULL, "2026-03-31T12:00:00Z", "2026-01-31T12:00:00Z",
         "2025-12-31T12:00:00Z");
    /* a zone east of UTC moves the day boundary */
    NEXT("0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T18:30:00Z");
}

static void test_cron_leap_years(void **state)
{
    (void)state;
    NEXT("0 0 29 2 *", NULL, "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
         "2032-02-29T00:00:00Z");
    NEXT("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"); /* 2100 is not */
    PREV("0 0 29 2 *", NULL, "2104-01-01T00:00:00Z", "2096-02-29T00:00:00Z");
    NEXT("0 0 29 2 *", NULL, "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z"); /* 2000 is */
    NEXT("0 0 28-29 2 *", NULL, "2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z",
         "2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z");
}

static void test_cron_never(void **state)
{
    (void)state;
    struct cron c = C("0 0 30 2 *");
    assert_true(cron_next(&c, NULL, T("2026-01-01T00:00:00Z")) == INT64_MAX);
    assert_true(cron_prev(&c, NULL, T("2026-01-01T00:00:00Z")) == INT64_MIN);
    c = C("0 0 31 4,6,9,11 *");
    assert_true(cron_next(&c, Z("Europe/Amsterdam"), T("2026-01-01T00:00:00Z")) == INT64_MAX);
    /* AND with a '*' day-of-week: 31 Feb never exists whatever the weekday */
    c = C("0 0 31 2 */2");
    assert_true(cron_next(&c, NULL, T("2026-01-01T00:00:00Z")) == INT64_MAX);
    /* OR: "31 Feb or any Monday in Feb" fires */
    c = C("0 0 31 2 1");
    assert_string_equal(F(cron_next(&c, NULL, T("2026-01-01T00:00:00Z"))), "2026-02-02T00:00:00Z");
    /* beyond the 10-year horizon: 29 Feb on a Sunday ("*\/7" = 0,7) is 2032, then 2060 */
    c = C("0 0 29 2 */7");
    assert_string_equal(F(cron_next(&c, NULL, T("2026-01-01T00:00:00Z"))), "2032-02-29T00:00:00Z");
    assert_true(cron_next(&c, NULL, T("2032-02-29T00:00:00Z")) == INT64_MAX);
    assert_true(cron_prev(&c, NULL, T("2032-02-29T00:00:00Z")) == INT64_MIN); /* 2004 */
    assert_string_equal(F(cron_prev(&c, NULL, T("2032-02-29T00:00:01Z"))), "2032-02-29T00:00:00Z");
    /* a hand-built value with an empty field never fires (and never reads out of range) */
    struct cron empty = { 0 };
    assert_true(cron_next(&empty, NULL, 0) == INT64_MAX);
    assert_true(cron_prev(&empty, NULL, 0) == INT64_MIN);
    struct cron junk = C("0 0 * * *");
    junk.month = 0x8001; /* only bits outside 1..12 */
    assert_true(cron_next(&junk, NULL, 0) == INT64_MAX);
    junk = C("0 0 * * *");
    junk.minute |= UINT64_C(0xf) << 60; /* stray bits are ignored */
    assert_string_equal(F(cron_next(&junk, NULL, 0)), "1970-01-02T00:00:00Z");
    /* edges of the representable range */
    c = C("* * * * *");
    assert_true(cron_next(&c, NULL, INT64_MAX) == INT64_MAX);
    assert_true(cron_prev(&c, NULL, INT64_MIN) == INT64_MIN);
    assert_true(cron_next(&c, NULL, INT64_MIN) != INT64_MAX);
    assert_true(cron_prev(&c, NULL, INT64_MAX) != INT64_MIN);
}

static void test_cron_day_rule(void **state)
{
    (void)state;
    /* both restricted: OR. 2026-01-01 is a Thursday. */
    NEXT("0 0 13 * 5", NULL, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z",
         "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z");
    /* '*' in day-of-week (even with a step): AND, so "*" adds nothing */
    NEXT("0 0 13 * *", NULL, "2026-01-01T00:00:00Z", "2026-01-13T00:00:00Z");
    /* "*\/2" day-of-month starts with '*': AND with Monday = odd days that are Mondays */
    NEXT("0 0 */2 * mon", NULL, "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z",
         "2026-01-19T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z");
    /* the same days written without '*' are restricted: OR (every odd day, and Mondays) */
    NEXT("0 0 1-31/2 * mon", NULL, "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z",
         "2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z", "2026-01-09T00:00:00Z",
         "2026-01-11T00:00:00Z", "2026-01-12T00:00:00Z");
    /* a '*'-led day-of-week makes it AND: "*\/7" is 0,7 = Sunday, so Sundays the 13th */
    NEXT("0 0 13 * */7", NULL, "2026-01-01T00:00:00Z", "2026-09-13T00:00:00Z");
    /* 7 and 0 are both Sunday */
    NEXT("0 0 * * 7", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
}

static void test_cron_dst_amsterdam(void **state)
{
    (void)state;
    const char *z = "Europe/Amsterdam";
    /* spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z): 02:00-02:59 is skipped */
    NEXT("30 2 * * *", z, "2026-03-28T00:00:00Z", "2026-03-28T01:30:00Z",
         "2026-03-29T01:00:00Z", /* skipped: once, when the gap ends (03:00 CEST) */
         "2026-03-30T00:30:00Z");
    NEXT("0,15,30,45 2 * * *", z, "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z",
         "2026-03-30T00:00:00Z");
    NEXT("0 2,3 * * *", z, "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", /* 02:00 and 03:00 */
         "2026-03-30T00:00:00Z");
    NEXT("*/30 2 * * *", z, "2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z"); /* wall clock */
    NEXT("30 * * * *", z, "2026-03-29T00:00:00Z", "2026-03-29T00:30:00Z",    /* 01:30 CET */
         "2026-03-29T01:30:00Z" /* 03:30 CEST: no 02:30 */);
    NEXT("0 */2 * * *", z, "2026-03-28T23:30:00Z", "2026-03-29T02:00:00Z"); /* 04:00 CEST */
    NEXT("0 1 * * *", z, "2026-03-28T12:00:00Z", "2026-03-29T00:00:00Z");
    NEXT("0 3 * * *", z, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z");
    PREV("30 2 * * *", z, "2026-03-30T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-28T01:30:00Z");
    PREV("30 2 * * *", z, "2026-03-29T01:00:00Z", "2026-03-28T01:30:00Z");
    PREV("30 2 * * *", z, "2026-03-29T01:00:00.000001Z", "2026-03-29T01:00:00Z");
    /* the date matters: only on the 29th */
    NEXT("30 2 29 3 *", z, "2026-01-01T00:00:00Z", "2026-03-29T01:00:00Z", "2027-03-29T00:30:00Z");

    /* fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z): 02:00-02:59 happens twice */
    NEXT("30 2 * * *", z, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z", /* first only */
         "2026-10-26T01:30:00Z");
    NEXT("30 2 * * *", z, "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
    NEXT("30 * * * *", z, "2026-10-24T23:00:00Z", "2026-10-24T23:30:00Z", /* 01:30 CEST */
         "2026-10-25T00:30:00Z",                                          /* 02:30 CEST */
         "2026-10-25T01:30:00Z",                                          /* 02:30 CET */
         "2026-10-25T02:30:00Z" /* 03:30 CET */);
    NEXT("*/20 2 * * *", z, "2026-10-25T00:00:00Z", "2026-10-25T00:20:00Z", "2026-10-25T00:40:00Z",
         "2026-10-25T01:00:00Z", "2026-10-25T01:20:00Z", "2026-10-25T01:40:00Z",
         "2026-10-26T01:00:00Z");
    NEXT("0 2 * * *", z, "2026-10-24T12:00:00Z", "2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z");
    NEXT("0 3 * * *", z, "2026-10-24T12:00:00Z", "2026-10-25T02:00:00Z");
    PREV("30 * * * *", z, "2026-10-25T02:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z",
         "2026-10-24T23:30:00Z");
    PREV("30 2 * * *", z, "2026-10-26T00:00:00Z", "2026-10-25T00:30:00Z");
}

static void test_cron_dst_new_york(void **state)
{
    (void)state;
    const char *z = "America/New_York";
    /* 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) */
    NEXT("30 2 * * *", z, "2026-03-07T00:00:00Z", "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z",
         "2026-03-09T06:30:00Z");
    NEXT("59 2 * * 0", z, "2026-03-01T00:00:00Z", "2026-03-01T07:59:00Z", "2026-03-08T07:00:00Z",
         "2026-03-15T06:59:00Z");
    NEXT("* 2 * * *", z, "2026-03-08T06:58:00Z", "2026-03-09T06:00:00Z"); /* wall clock */
    NEXT("* 1 * * *", z, "2026-03-08T06:58:00Z", "2026-03-08T06:59:00Z", "2026-03-09T05:00:00Z");
    /* 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z): 01:00-01:59 twice */
    NEXT("30 1 * * *", z, "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z");
    NEXT("30 1-2 * * *", z, "2026-11-01T00:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T07:30:00Z");
    NEXT("0,30 * * * *", z, "2026-11-01T04:45:00Z", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z",
         "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z");
    NEXT("@daily", z, "2026-03-07T12:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
    PREV("30 1 * * *", z, "2026-11-02T00:00:00Z", "2026-11-01T05:30:00Z", "2026-10-31T05:30:00Z");
}

static void test_cron_far_future(void **state)
{
    (void)state;
    /* beyond the TZif table the footer rule decides; the gap rule still applies */
    NEXT("30 2 * * *", "Europe/Amsterdam", "2150-03-28T00:00:00Z", "2150-03-28T01:30:00Z",
         "2150-03-29T01:00:00Z", "2150-03-30T00:30:00Z");
    /* Sydney: first Sunday of October (2150-10-04) 02:00 AEST -> 03:00 AEDT (16:00Z) */
    NEXT("30 2 * * *", "Australia/Sydney", "2150-10-02T00:00:00Z", "2150-10-02T16:30:00Z",
         "2150-10-03T16:00:00Z", "2150-10-04T15:30:00Z");
    NEXT("0 0 1 1 *", NULL, "9998-06-01T00:00:00Z", "9999-01-01T00:00:00Z");
    NEXT("0 0 1 1 *", NULL, "9999-06-01T00:00:00Z", "never");
}

/* Stepping 100000 times through a busy expression stays fast (no minute-by-minute loop). */
static void test_cron_speed(void **state)
{
    (void)state;
    struct cron c = C("0 0 29 2 1");
    const struct tz *z = Z("America/New_York");
    int64_t t = T("2000-01-01T00:00:00Z"), t0 = ts_mono_us();
    for (int i = 0; i < 20000; i++) {
        t = cron_next(&c, z, t);
        assert_true(t != INT64_MAX);
    }
    struct cron never = C("0 0 30 2 *");
    for (int i = 0; i < 2000; i++)
        assert_true(cron_next(&never, z, T("2026-01-01T00:00:00Z")) == INT64_MAX);
    int64_t el = ts_mono_us() - t0;
    print_message("cron speed: 22000 searches in %lld ms\n", (long long)(el / 1000));
    assert_true(el < 20 * TS_US_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_parse_format),   cmocka_unit_test(test_ts_parse_local),
        cmocka_unit_test(test_ts_civil),          cmocka_unit_test(test_ts_duration),
        cmocka_unit_test(test_ts_clocks),         cmocka_unit_test(test_tz_names),
        cmocka_unit_test(test_tz_bad_file),       cmocka_unit_test(test_tz_offsets),
        cmocka_unit_test(test_tz_from_local),     cmocka_unit_test(test_tz_threads),
        cmocka_unit_test(test_cron_parse_fields), cmocka_unit_test(test_cron_presets),
        cmocka_unit_test(test_cron_parse_errors), cmocka_unit_test(test_cron_basic),
        cmocka_unit_test(test_cron_leap_years),   cmocka_unit_test(test_cron_never),
        cmocka_unit_test(test_cron_day_rule),     cmocka_unit_test(test_cron_dst_amsterdam),
        cmocka_unit_test(test_cron_dst_new_york), cmocka_unit_test(test_cron_far_future),
        cmocka_unit_test(test_cron_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
