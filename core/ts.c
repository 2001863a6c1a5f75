/* core/ts.c - timestamps (int64_t microseconds since the epoch, UTC), RFC 3339 parsing and
 * formatting, durations, and proleptic Gregorian calendar arithmetic. Calendar conversion
 * uses Howard Hinnant's days_from_civil / civil_from_days, exact for any int64 day count
 * we can reach; nothing here calls the C library's time zone functions. */
#include "core/ts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/tz.h"

#define US_PER_MIN (60 * TS_US_PER_SEC)
#define US_PER_DAY (INT64_C(86400) * TS_US_PER_SEC)

/* Floor division and modulo for a positive divisor. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t m = a % b;
    return m < 0 ? m + b : m;
}

int64_t ts_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * TS_US_PER_SEC + t.tv_nsec / 1000;
}

int64_t ts_mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * TS_US_PER_SEC + t.tv_nsec / 1000;
}

int64_t ts_days_from_civil(int y, int m, int d)
{
    /* Normalize the month so that callers may do arithmetic on it (month 13 = January). */
    int64_t yy = (int64_t)y + floor_div((int64_t)m - 1, 12);
    int64_t mm = floor_mod((int64_t)m - 1, 12) + 1;
    yy -= mm <= 2;
    int64_t era = floor_div(yy, 400);
    int64_t yoe = yy - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (mm + (mm > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] for valid d */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void ts_civil_from_days(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                      /* [0, 11] */
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;             /* [1, 31] */
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;                /* [1, 12] */
    *y = (int)(yy + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

void ts_to_civil_utc(int64_t us, struct civil *out)
{
    int64_t days = floor_div(us, US_PER_DAY);
    int64_t rem = us - days * US_PER_DAY; /* [0, US_PER_DAY) */
    int64_t secs = rem / TS_US_PER_SEC;
    memset(out, 0, sizeof *out);
    ts_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
    out->usec = (int)(rem % TS_US_PER_SEC);
    out->wday = (int)floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
    out->yday = (int)(days - ts_days_from_civil(out->year, 1, 1));
    out->offset = 0;
}

int64_t ts_from_civil_utc(const struct civil *c)
{
    int64_t days = ts_days_from_civil(c->year, c->month, c->day);
    int64_t secs = days * 86400 + (int64_t)c->hour * 3600 + (int64_t)c->minute * 60 + c->second;
    return secs * TS_US_PER_SEC + c->usec;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly `n` decimal digits at *p into *out and advances *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

#define TS_SYNTAX "expected YYYY-MM-DD[THH:MM[:SS[.frac]]][Z|+HH:MM]"

int ts_parse(const char *s, const struct tz *tz, int64_t *out_us, struct weir_err *err)
{
    struct civil c;
    const char *p = s;
    bool has_off = false;
    int off = 0;

    if (!s)
        return err_set(err, WEIR_EINVAL, "invalid time: missing");
    if (strnlen(s, 65) > 64)
        return err_set(err, WEIR_EINVAL, "invalid time '%.64s...': too long", s);
    memset(&c, 0, sizeof c);
    if (!digits(&p, 4, &c.year) || *p++ != '-' || !digits(&p, 2, &c.month) || *p++ != '-' ||
        !digits(&p, 2, &c.day))
        return err_set(err, WEIR_EINVAL, "invalid time '%s': " TS_SYNTAX, s);
    if (*p == 'T' || *p == 't' || (*p == ' ' && p[1] != '\0')) {
        p++;
        if (!digits(&p, 2, &c.hour) || *p++ != ':' || !digits(&p, 2, &c.minute))
            return err_set(err, WEIR_EINVAL, "invalid time '%s': " TS_SYNTAX, s);
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &c.second))
                return err_set(err, WEIR_EINVAL, "invalid time '%s': " TS_SYNTAX, s);
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0, us = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 6)
                        us = us * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0 || nd > 9)
                    return err_set(err, WEIR_EINVAL, "invalid time '%s': bad fraction of a second",
                                   s);
                for (int i = nd; i < 6; i++)
                    us *= 10;
                c.usec = us; /* digits past microseconds are truncated */
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
            has_off = true;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!digits(&p, 2, &oh))
                return err_set(err, WEIR_EINVAL, "invalid time '%s': bad UTC offset", s);
            if (*p == ':')
                p++;
            if (!digits(&p, 2, &om) || oh > 23 || om > 59)
                return err_set(err, WEIR_EINVAL, "invalid time '%s': bad UTC offset", s);
            off = sign * (oh * 3600 + om * 60);
            has_off = true;
        }
    }
    if (*p != '\0')
        return err_set(err, WEIR_EINVAL, "invalid time '%s': " TS_SYNTAX, s);
    if (c.year < 1 || c.month < 1 || c.month > 12 || c.day < 1 ||
        c.day > days_in_month(c.year, c.month))
        return err_set(err, WEIR_EINVAL, "invalid time '%s': no such date", s);
    if (c.hour > 23 || c.minute > 59 || c.second > 59)
        return err_set(err, WEIR_EINVAL, "invalid time '%s': no such time of day", s);

    int64_t local = ts_from_civil_utc(&c);
    if (has_off) {
        *out_us = local - (int64_t)off * TS_US_PER_SEC;
        return 0;
    }
    if (!tz) {
        *out_us = local;
        return 0;
    }
    int64_t a, b;
    int n = tz_from_local(tz, &c, &a, &b);
    if (n == 0) {
        /* Skipped: read the wall time with the offset in force before the gap, which moves
         * it forward by the gap (02:30 in a 02:00->03:00 gap becomes 03:30), as mktime does. */
        int before = tz_offset_at(tz, a - 1);
        a = local - (int64_t)before * TS_US_PER_SEC;
    }
    *out_us = a;
    return 0;
}

char *ts_format(int64_t us, enum ts_format fmt, char *out, size_t len)
{
    struct civil c;
    char frac[16] = "";
    ts_to_civil_utc(us, &c);
    if (c.usec != 0)
        snprintf(frac, sizeof frac, ".%06d", c.usec);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", c.year, c.month, c.day, c.hour,
             c.minute, c.second, frac, fmt == TS_FMT_OFFSET ? "+00:00" : "Z");
    return out;
}

int ts_parse_duration(const char *s, int64_t *out_us, struct weir_err *err)
{
    /* Limit: 100 years keeps every sum far from int64 overflow. */
    const int64_t max_us = INT64_C(100) * 366 * US_PER_DAY;
    const char *p = s;
    int64_t total = 0;
    int parts = 0;
    bool bare = false;

    if (!s || !*s)
        return err_set(err, WEIR_EINVAL, "invalid duration '%s': empty", s ? s : "");
    if (strnlen(s, 65) > 64)
        return err_set(err, WEIR_EINVAL, "invalid duration '%.64s...': too long", s);
    while (*p) {
        int64_t ip = 0, fnum = 0, fden = 1;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (ip > max_us)
                return err_set(err, WEIR_EINVAL, "invalid duration '%s': too large", s);
            ip = ip * 10 + (*p++ - '0');
            nd++;
        }
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                if (fden < INT64_C(1000000)) { /* keeps fnum * unit in range */
                    fnum = fnum * 10 + (*p - '0');
                    fden *= 10;
                }
                p++;
                nd++;
            }
        }
        if (nd == 0)
            return err_set(err, WEIR_EINVAL,
                           "invalid duration '%s': expected seconds or units like 90s, 10m, 1h30m, "
                           "2d, 500ms",
                           s);
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1000;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = TS_US_PER_SEC;
            p++;
        } else if (*p == 'm') {
            unit = US_PER_MIN;
            p++;
        } else if (*p == 'h') {
            unit = 60 * US_PER_MIN;
            p++;
        } else if (*p == 'd') {
            unit = US_PER_DAY;
            p++;
        } else if (*p == 'w') {
            unit = 7 * US_PER_DAY;
            p++;
        } else if (*p == '\0' && parts == 0) {
            unit = TS_US_PER_SEC; /* a bare number is seconds */
            bare = true;
        } else {
            return err_set(err, WEIR_EINVAL, "invalid duration '%s': unknown unit at '%s'", s, p);
        }
        if (ip > max_us / unit)
            return err_set(err, WEIR_EINVAL, "invalid duration '%s': too large", s);
        total += ip * unit + fnum * unit / fden;
        if (total > max_us)
            return err_set(err, WEIR_EINVAL, "invalid duration '%s': too large", s);
        parts++;
        if (bare)
            break;
    }
    *out_us = total;
    return 0;
}
