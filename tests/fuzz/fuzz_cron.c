/* tests/fuzz/fuzz_cron.c - libFuzzer target for the time parsers: cron expressions
 * (core/cron.h), RFC 3339 times and durations (core/ts.h) and zone names (core/tz.h).
 * Input: "EXPR\nZONE\nTIME" (missing parts default to UTC and 2026-03-29T00:00:00Z). Every
 * part is also tried as a time and a duration. For a valid expression a few fire times are
 * computed both ways and checked for order: any crash, sanitizer report or abort() is a bug.
 * Build with clang -fsanitize=fuzzer,address,undefined, or link tests/fuzz/replay_main.c to
 * replay the corpus (ctest fuzz.cron). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "core/err.h"
#include "core/ts.h"
#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[1024], *part[3] = { NULL, NULL, NULL };
    struct weir_err err;
    struct cron c;
    int64_t t = INT64_C(1774742400) * TS_US_PER_SEC, us;

    if (size >= sizeof buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    part[0] = buf;
    for (int i = 1; i < 3 && part[i - 1]; i++) {
        char *nl = strchr(part[i - 1], '\n');
        if (nl) {
            *nl = '\0';
            part[i] = nl + 1;
        }
    }
    for (int i = 0; i < 3 && part[i]; i++) {
        (void)ts_parse(part[i], NULL, &us, &err);
        (void)ts_parse_duration(part[i], &us, &err);
    }
    const struct tz *tz = part[1] ? tz_get(part[1], &err) : NULL;
    if (part[2] && ts_parse(part[2], tz, &us, &err) == 0)
        t = us;
    if (cron_parse(part[0], &c, &err) != 0)
        return 0;
    int64_t n = t, p = t;
    for (int i = 0; i < 3; i++) {
        int64_t next = cron_next(&c, tz, n);
        if (next != INT64_MAX) {
            if (next <= n || cron_prev(&c, tz, next) > n)
                abort(); /* not strictly after, or a fire time was skipped */
            n = next;
        }
        int64_t prev = cron_prev(&c, tz, p);
        if (prev != INT64_MIN) {
            if (prev >= p || cron_next(&c, tz, prev) < p)
                abort();
            p = prev;
        }
    }
    return 0;
}
