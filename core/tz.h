/* core/tz.h - IANA time zones read from the system's TZif files (tzdata:
 * /usr/share/zoneinfo, or $TZDIR). Zones are loaded once, cached for the life of the
 * process and immutable: any thread may use them, nobody frees them. */
#ifndef WEIR_CORE_TZ_H
#define WEIR_CORE_TZ_H

#include <stdint.h>

struct weir_err;
struct civil;
struct tz;

/* Returns the zone named `name` ("UTC", "Europe/Amsterdam", "America/New_York"; "Z" and
 * "Etc/UTC" too). NULL with -WEIR_EINVAL/-WEIR_ENOTFOUND in `err` for a bad or unknown
 * name (names are checked against [A-Za-z0-9_+/-] and ".." before touching files). */
const struct tz *tz_get(const char *name, struct weir_err *err);

/* The UTC zone (never NULL). */
const struct tz *tz_utc(void);

/* The zone's canonical name as given to tz_get. */
const char *tz_name(const struct tz *tz);

/* UTC offset in seconds at instant `us`. */
int tz_offset_at(const struct tz *tz, int64_t us);

/* Converts an instant to local civil time (offset, wday, yday filled). */
void tz_to_local(const struct tz *tz, int64_t us, struct civil *out);

/* Converts local civil time (fields year..usec) to instants. Returns how many instants
 * have that local time: 1 normally; 2 in a repeated hour (first in *a, second in *b);
 * 0 in a skipped hour, where *a is set to the instant the gap ends (the first valid
 * local time after it) and *b to the same. */
int tz_from_local(const struct tz *tz, const struct civil *local, int64_t *a, int64_t *b);

/* The span of constant UTC offset around an instant: the offset is `offset` for every
 * instant in [start, end) (microseconds; start is INT64_MIN when the span reaches back
 * for ever, end INT64_MAX when it never ends) and was `prev_offset` just before `start`
 * (equal to `offset` when start is INT64_MIN). Consecutive spans always differ in offset.
 * A NULL `tz` means UTC, as for the functions above. Any thread. Used to walk transitions
 * (core/cron.c). */
struct tz_span {
    int64_t start, end;
    int offset, prev_offset;
};
void tz_span_at(const struct tz *tz, int64_t us, struct tz_span *out);

#endif
