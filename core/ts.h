/* core/ts.h - timestamps and durations. Inside weir a time is int64_t microseconds since
 * the Unix epoch in UTC; time zones apply only at the edges (core/tz.h). */
#ifndef WEIR_CORE_TS_H
#define WEIR_CORE_TS_H

#include <stddef.h>
#include <stdint.h>

struct weir_err;
struct tz;

#define TS_US_PER_SEC INT64_C(1000000)
#define TS_NONE INT64_MIN /* "no time": NULL in the store, null in JSON */

/* Wall-clock now, in microseconds since the epoch. */
int64_t ts_now_us(void);
/* Monotonic clock in microseconds (for durations and timers). */
int64_t ts_mono_us(void);

/* Parses RFC 3339 ("2026-03-29T01:00:00Z", "...+02:00", fractional seconds allowed,
 * 'T' or ' ' as separator), or a date/date-time without offset ("2026-01-01",
 * "2026-01-01T10:00[:00]"), which is read as local time in `tz` (UTC when `tz` is NULL;
 * a skipped local time moves forward by the gap, a repeated one takes the first
 * occurrence). Returns 0 or -WEIR_EINVAL naming the text. */
int ts_parse(const char *s, const struct tz *tz, int64_t *out_us, struct weir_err *err);

enum ts_format {
    TS_FMT_Z = 0,      /* 2026-03-29T01:00:00Z (fraction only if non-zero: .123456) */
    TS_FMT_OFFSET = 1, /* 2026-03-29T01:00:00+00:00 (Airflow's API form) */
};
/* Formats `us` as RFC 3339 in UTC into `out` (at least 40 bytes). Returns `out`. */
char *ts_format(int64_t us, enum ts_format fmt, char *out, size_t len);

/* Parses a duration: a number of seconds ("90", "1.5") or units combined ("30s", "10m",
 * "1h30m", "2d", "500ms"). Returns 0 or -WEIR_EINVAL. */
int ts_parse_duration(const char *s, int64_t *out_us, struct weir_err *err);

/* Civil (calendar) date-time, used at the time zone edges. */
struct civil {
    int year, month, day;    /* month 1..12, day 1..31 */
    int hour, minute, second; /* 0..23, 0..59, 0..59 */
    int usec;                 /* 0..999999 */
    int wday;                 /* 0 = Sunday (output only) */
    int yday;                 /* 0..365 (output only) */
    int offset;               /* seconds east of UTC (output of tz_to_local) */
};

/* UTC microseconds <-> civil time in UTC (proleptic Gregorian, any year 1..9999). */
void ts_to_civil_utc(int64_t us, struct civil *out);
int64_t ts_from_civil_utc(const struct civil *c);
/* Days since 1970-01-01 for a civil date, and the inverse. */
int64_t ts_days_from_civil(int y, int m, int d);
void ts_civil_from_days(int64_t days, int *y, int *m, int *d);

#endif
