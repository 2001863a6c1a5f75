/* core/cron.h - cron expressions exactly as Vixie cron (Debian's cron) reads them, in any
 * IANA time zone. Five fields (minute hour day-of-month month day-of-week) with lists,
 * ranges, steps, month and day names (jan-dec, sun-sat, case-insensitive; 7 = Sunday),
 * and presets (@yearly @annually @monthly @weekly @daily @midnight @hourly).
 * Day rule (Vixie): when both day fields are restricted a time matches if EITHER matches;
 * a field whose text starts with '*' (including "*\/N") counts as unrestricted, so then
 * both must match (AND). DST (Debian cron(8)): a job with a fixed minute and hour whose
 * local time is skipped fires once at the end of the gap; one whose local time repeats
 * fires once, at the first occurrence; a job with '*' in the minute or hour field runs on
 * the wall clock: not at all in a skipped hour, at both occurrences of a repeated one.
 * See docs/cron.md. */
#ifndef WEIR_CORE_CRON_H
#define WEIR_CORE_CRON_H

#include <stdbool.h>
#include <stdint.h>

struct weir_err;
struct tz;

/* A parsed expression: a small value the caller owns (copy freely, nothing to free). */
struct cron {
    uint64_t minute; /* bit i: minute i (0..59) */
    uint32_t hour;   /* bit i: hour i (0..23) */
    uint32_t dom;    /* bit i: day-of-month i (1..31) */
    uint16_t month;  /* bit i: month i (1..12) */
    uint8_t dow;     /* bit i: day-of-week i (0..6, 0 = Sunday) */
    bool dom_star;   /* day-of-month field started with '*' */
    bool dow_star;   /* day-of-week field started with '*' */
    bool min_star;   /* minute field started with '*' (wall-clock DST behaviour) */
    bool hour_star;  /* hour field started with '*' */
};

/* Parses `expr`. On error returns -WEIR_EINVAL and `err` names the field and the bad text,
 * e.g. "cron '61 * * * *': minute field: 61 is out of range 0-59". */
int cron_parse(const char *expr, struct cron *out, struct weir_err *err);

/* The first fire time strictly after `after_us`, as UTC microseconds, evaluated in `tz`
 * (UTC when NULL). Returns INT64_MAX when the expression never fires (e.g. "0 0 30 2 *")
 * within the next 10 years. */
int64_t cron_next(const struct cron *c, const struct tz *tz, int64_t after_us);

/* The last fire time strictly before `before_us`; INT64_MIN when none in the 10 years before. */
int64_t cron_prev(const struct cron *c, const struct tz *tz, int64_t before_us);

#endif
