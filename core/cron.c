/* core/cron.c - Vixie cron expressions evaluated in IANA time zones.
 *
 * The fire times of an expression in a zone are defined on local wall-clock minutes L that
 * match all five fields (with Vixie's day rule, see cron.h):
 *   - L exists once: fire at that instant;
 *   - L repeats (clocks went back): fire at the first instant, and also at the second one
 *     when the minute or hour field starts with '*' (the job follows the wall clock);
 *   - L is skipped (clocks went forward): when neither field starts with '*', fire once at
 *     the instant the gap ends; otherwise not at all.
 * Searching walks the zone's spans of constant UTC offset (tz_span_at): inside a span, local
 * time is UTC plus a constant, so the first matching local minute is found by skipping whole
 * months, days and hours (match_first); gaps and repeats sit at span starts. Nothing here
 * steps minute by minute. Internally times are whole seconds; "local seconds" means the
 * local civil time read as if it were UTC. */
#include "core/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/ts.h"
#include "core/tz.h"

#define CRON_MAX_LEN 256
#define NONE_LO      INT64_MIN
#define NONE_HI      INT64_MAX
#define HORIZON_SEC  (INT64_C(3653) * 86400) /* "10 years": 3653 days */
#define MIN_SEC      INT64_C(-62135596800)   /* 0001-01-01T00:00:00Z */
#define MAX_SEC      INT64_C(253402300799)   /* 9999-12-31T23:59:59Z */
#define US           TS_US_PER_SEC

/* ---- parsing ---- */

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* three-letter names, or NULL */
    int name_base;            /* the value names[0] stands for */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                           "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const struct field fields[5] = {
    { "minute", 0, 59, NULL, 0 },          { "hour", 0, 23, NULL, 0 },
    { "day-of-month", 1, 31, NULL, 0 },    { "month", 1, 12, month_names, 1 },
    { "day-of-week", 0, 7, dow_names, 0 }, /* 7 is Sunday too */
};

struct pctx {
    const char *expr;
    const struct field *f;
    const char *text; /* the field's text, NUL-terminated copy */
    struct weir_err *err;
};

__attribute__((format(printf, 2, 0))) static int perr_v(const struct pctx *x, const char *fmt,
                                                        va_list ap)
{
    char detail[160];
    /* clang-analyzer (clang 14) wrongly reports `ap` uninitialized when perr() started it */
    vsnprintf(detail, sizeof detail, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    return err_set(x->err, WEIR_EINVAL, "cron '%s': %s field: %s", x->expr, x->f->name, detail);
}

/* Fails parsing of the current field: "cron 'EXPR': FIELD field: DETAIL". */
__attribute__((format(printf, 2, 3))) static int perr(const struct pctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = perr_v(x, fmt, ap);
    va_end(ap);
    return rc;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Reads a value (number, or a name where the field has names) at *p. */
static int get_value(const struct pctx *x, const char **p, int *out)
{
    const char *s = *p;
    if (is_digit(*s)) {
        long v = 0;
        while (is_digit(*s)) {
            if (v < 1000000)
                v = v * 10 + (*s - '0');
            s++;
        }
        if (v < x->f->lo || v > x->f->hi) {
            char num[32];
            snprintf(num, sizeof num, "%.*s", (int)(s - *p) > 20 ? 20 : (int)(s - *p), *p);
            return perr(x, "%s is out of range %d-%d", num, x->f->lo, x->f->hi);
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (is_alpha(*s)) {
        while (is_alpha(*s))
            s++;
        char word[16];
        size_t n = (size_t)(s - *p);
        snprintf(word, sizeof word, "%.*s", n > 12 ? 12 : (int)n, *p);
        if (!x->f->names)
            return perr(x, "names such as '%s' are only allowed for months and days of the week",
                        word);
        if (n == 3) {
            for (int i = 0; x->f->names[i]; i++) {
                if (strncasecmp(x->f->names[i], *p, 3) == 0) {
                    *out = x->f->name_base + i;
                    *p = s;
                    return 0;
                }
            }
        }
        return perr(x, "unknown name '%s'", word);
    }
    if (*s == '\0')
        return perr(x, "missing value in '%s'", x->text);
    return perr(x, "unexpected '%.1s'", s);
}

static int get_step(const struct pctx *x, const char **p, int *out)
{
    const char *s = *p;
    long v = 0;
    if (!is_digit(*s))
        return perr(x, "a step must be a number, in '%s'", x->text);
    while (is_digit(*s)) {
        if (v < 1000000)
            v = v * 10 + (*s - '0');
        s++;
    }
    if (v == 0)
        return perr(x, "step 0 in '%s'", x->text);
    if (v > 1000)
        return perr(x, "step too large in '%s'", x->text);
    *out = (int)v;
    *p = s;
    return 0;
}

/* Parses one field's text into `bits` (bit i = value i). */
static int parse_field(const struct pctx *x, uint64_t *bits)
{
    const char *p = x->text;
    *bits = 0;
    for (;;) {
        int a = 0, b = 0, step = 1, rc;
        if (*p == '*') {
            p++;
            a = x->f->lo;
            b = x->f->hi;
            if (*p == '/') {
                p++;
                if ((rc = get_step(x, &p, &step)) < 0)
                    return rc;
            }
        } else {
            if ((rc = get_value(x, &p, &a)) < 0)
                return rc;
            b = a;
            if (*p == '-') {
                p++;
                if ((rc = get_value(x, &p, &b)) < 0)
                    return rc;
                if (b < a) {
                    char r[64];
                    snprintf(r, sizeof r, "%d-%d", a, b);
                    return perr(x, "range %s is reversed", r);
                }
                if (*p == '/') {
                    p++;
                    if ((rc = get_step(x, &p, &step)) < 0)
                        return rc;
                }
            } else if (*p == '/') {
                /* Vixie (Debian, ISC 4.1) rejects a step on a single value. */
                return perr(x, "a step needs a range or '*' (write %d-%d/N), in '%s'", a, x->f->hi,
                            x->text);
            }
        }
        for (int i = a; i <= b; i += step)
            *bits |= UINT64_C(1) << i;
        if (*p == '\0')
            return 0;
        if (*p != ',')
            return perr(x, "unexpected '%.1s'", p);
        p++;
        if (*p == '\0')
            return perr(x, "missing value after ',' in '%s'", x->text);
    }
}

static int parse_preset(const char *expr, const char *name, struct cron *out, struct weir_err *err)
{
    static const struct {
        const char *name, *expansion;
    } presets[] = {
        { "yearly", "0 0 1 1 *" }, { "annually", "0 0 1 1 *" }, { "monthly", "0 0 1 * *" },
        { "weekly", "0 0 * * 0" }, { "daily", "0 0 * * *" },    { "midnight", "0 0 * * *" },
        { "hourly", "0 * * * *" },
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcasecmp(name, presets[i].name) == 0)
            return cron_parse(presets[i].expansion, out, err);
    if (strcasecmp(name, "reboot") == 0)
        return err_set(err, WEIR_EINVAL, "cron '%s': @reboot is not a schedule", expr);
    return err_set(err, WEIR_EINVAL,
                   "cron '%s': unknown preset (use @yearly, @annually, @monthly, @weekly, @daily, "
                   "@midnight or @hourly)",
                   expr);
}

int cron_parse(const char *expr, struct cron *out, struct weir_err *err)
{
    char copy[CRON_MAX_LEN + 1];
    char *fv[6];
    int nf = 0;

    if (!expr)
        return err_set(err, WEIR_EINVAL, "cron '': empty expression");
    size_t len = strnlen(expr, CRON_MAX_LEN + 1);
    if (len > CRON_MAX_LEN)
        return err_set(err, WEIR_EINVAL, "cron '%.40s...': longer than %d characters", expr,
                       CRON_MAX_LEN);
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)expr[i] < 0x20 && expr[i] != '\t') || (unsigned char)expr[i] >= 0x7f)
            return err_set(err, WEIR_EINVAL, "cron: unexpected control or non-ASCII character");
    memcpy(copy, expr, len + 1);
    for (char *p = copy; *p;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (!*p)
            break;
        if (nf == 6) {
            nf++;
            break;
        }
        fv[nf++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    if (nf == 0)
        return err_set(err, WEIR_EINVAL, "cron '%s': empty expression", expr);
    if (fv[0][0] == '@') {
        if (nf != 1)
            return err_set(err, WEIR_EINVAL, "cron '%s': a preset stands alone", expr);
        return parse_preset(expr, fv[0] + 1, out, err);
    }
    if (nf != 5)
        return err_set(err, WEIR_EINVAL,
                       "cron '%s': expected 5 fields (minute hour day-of-month month day-of-week), "
                       "got %s%d",
                       expr, nf > 6 ? "more than " : "", nf > 6 ? 6 : nf);

    uint64_t bits[5];
    for (int i = 0; i < 5; i++) {
        struct pctx x = { expr, &fields[i], fv[i], err };
        int rc = parse_field(&x, &bits[i]);
        if (rc < 0)
            return rc;
    }
    memset(out, 0, sizeof *out);
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 -> Sunday (0) */
    out->min_star = fv[0][0] == '*';
    out->hour_star = fv[1][0] == '*';
    out->dom_star = fv[2][0] == '*';
    out->dow_star = fv[4][0] == '*';
    return 0;
}

/* ---- matching local civil times ---- */

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - ((a % b) != 0 && a < 0);
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int dim(int y, int m)
{
    static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m < 1 || m > 12) /* cannot happen: months come from the calendar code */
        return 31;
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Smallest set bit >= from, or -1. */
static int next_bit(uint64_t mask, int from)
{
    if (from > 63)
        return -1;
    mask >>= from;
    return mask ? from + __builtin_ctzll(mask) : -1;
}

/* Largest set bit <= from, or -1. */
static int prev_bit(uint64_t mask, int from)
{
    if (from < 0)
        return -1;
    if (from < 63)
        mask &= (UINT64_C(1) << (from + 1)) - 1;
    return mask ? 63 - __builtin_clzll(mask) : -1;
}

static bool day_ok(const struct cron *c, int y, int m, int d)
{
    int64_t days = ts_days_from_civil(y, m, d);
    int wd = (int)(((days + 4) % 7 + 7) % 7);
    bool dom = c->dom >> d & 1, dow = c->dow >> wd & 1;
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

struct cur {
    int y, m, d, h, mi;
};

static int64_t cur_sec(const struct cur *k)
{
    return ts_days_from_civil(k->y, k->m, k->d) * 86400 + (int64_t)k->h * 3600 +
           (int64_t)k->mi * 60;
}

static void cur_set(struct cur *k, int64_t sec)
{
    int64_t days = fdiv(sec, 86400), r = sec - days * 86400;
    ts_civil_from_days(days, &k->y, &k->m, &k->d);
    k->h = (int)(r / 3600);
    k->mi = (int)(r / 60 % 60);
}

static void next_day(struct cur *k)
{
    if (++k->d > dim(k->y, k->m)) {
        k->d = 1;
        if (++k->m > 12) {
            k->m = 1;
            k->y++;
        }
    }
    k->h = 0;
    k->mi = 0;
}

static void prev_day(struct cur *k)
{
    if (--k->d < 1) {
        if (--k->m < 1) {
            k->m = 12;
            k->y--;
        }
        k->d = dim(k->y, k->m);
    }
    k->h = 23;
    k->mi = 59;
}

/* First matching local minute in [lo, hi) (local seconds), or NONE_HI. */
static int64_t match_first(const struct cron *c, int64_t lo, int64_t hi)
{
    struct cur k = { 1970, 1, 1, 0, 0 };
    if (lo >= hi)
        return NONE_HI;
    cur_set(&k, fdiv(lo + 59, 60) * 60);
    for (;;) {
        int64_t s = cur_sec(&k);
        if (s >= hi)
            return NONE_HI;
        if (!(c->month >> k.m & 1)) {
            int m = next_bit(c->month, k.m + 1);
            if (m < 0) {
                k.y++;
                m = next_bit(c->month, 1);
            }
            k.m = m;
            k.d = 1;
            k.h = 0;
            k.mi = 0;
            continue;
        }
        if (!day_ok(c, k.y, k.m, k.d)) {
            next_day(&k);
            continue;
        }
        if (!(c->hour >> k.h & 1)) {
            int h = next_bit(c->hour, k.h + 1);
            if (h < 0 || h > 23) {
                next_day(&k);
            } else {
                k.h = h;
                k.mi = 0;
            }
            continue;
        }
        if (!(c->minute >> k.mi & 1)) {
            int mi = next_bit(c->minute, k.mi + 1);
            if (mi < 0 || mi > 59) {
                k.mi = 0;
                if (++k.h > 23)
                    next_day(&k);
            } else {
                k.mi = mi;
            }
            continue;
        }
        return s;
    }
}

/* Last matching local minute in [lo, hi) (local seconds), or NONE_LO. */
static int64_t match_last(const struct cron *c, int64_t lo, int64_t hi)
{
    struct cur k = { 1970, 1, 1, 0, 0 };
    if (lo >= hi)
        return NONE_LO;
    cur_set(&k, fdiv(hi - 1, 60) * 60);
    for (;;) {
        int64_t s = cur_sec(&k);
        if (s < lo)
            return NONE_LO;
        if (!(c->month >> k.m & 1)) {
            int m = prev_bit(c->month, k.m - 1);
            if (m < 1) {
                k.y--;
                m = prev_bit(c->month, 12);
            }
            k.m = m;
            k.d = dim(k.y, k.m);
            k.h = 23;
            k.mi = 59;
            continue;
        }
        if (!day_ok(c, k.y, k.m, k.d)) {
            prev_day(&k);
            continue;
        }
        if (!(c->hour >> k.h & 1)) {
            int h = prev_bit(c->hour, k.h - 1);
            if (h < 0) {
                prev_day(&k);
            } else {
                k.h = h;
                k.mi = 59;
            }
            continue;
        }
        if (!(c->minute >> k.mi & 1)) {
            int mi = prev_bit(c->minute, k.mi - 1);
            if (mi < 0) {
                k.mi = 59;
                if (--k.h < 0)
                    prev_day(&k);
            } else {
                k.mi = mi;
            }
            continue;
        }
        return s;
    }
}

/* ---- walking the zone ---- */

struct sspan {
    int64_t start, end; /* seconds, INT64_MIN / INT64_MAX when unbounded */
    int64_t off, prev;
};

static void sspan_at(const struct tz *tz, int64_t sec, struct sspan *out)
{
    struct tz_span sp;
    tz_span_at(tz, sec * US, &sp);
    out->start = sp.start == INT64_MIN ? INT64_MIN : fdiv(sp.start, US);
    out->end = sp.end == INT64_MAX ? INT64_MAX : fdiv(sp.end + US - 1, US);
    out->off = sp.offset;
    out->prev = sp.prev_offset;
}

static bool fixed_time(const struct cron *c)
{
    return !c->min_star && !c->hour_star;
}

/* struct cron is a plain value that callers may build by hand: drop bits outside each
 * field's range, and report whether the result can match at all (an empty field would
 * otherwise send the searches out of range). */
static bool cron_sane(const struct cron *in, struct cron *out)
{
    *out = *in;
    out->minute &= (UINT64_C(1) << 60) - 1;
    out->hour &= (UINT32_C(1) << 24) - 1;
    out->dom &= ~UINT32_C(1);
    out->month &= 0x1ffe;
    out->dow &= 0x7f;
    return out->minute && out->hour && out->month && (out->dom || out->dow);
}

int64_t cron_next(const struct cron *cin, const struct tz *tz, int64_t after_us)
{
    const struct tz *z = tz ? tz : tz_utc();
    struct cron sane, *c = &sane;
    if (!cron_sane(cin, &sane))
        return INT64_MAX;
    bool fixed = fixed_time(c);
    int64_t a = fdiv(after_us, US) + 1; /* first candidate second */
    if (a < MIN_SEC)
        a = MIN_SEC;
    if (a > MAX_SEC)
        return INT64_MAX;
    int64_t limit = a + HORIZON_SEC; /* exclusive */
    if (limit > MAX_SEC + 1)
        limit = MAX_SEC + 1;

    for (int64_t t = a; t < limit;) {
        struct sspan sp;
        sspan_at(z, t, &sp);
        bool real = sp.start != INT64_MIN;
        /* Clocks went forward at sp.start: fixed-time jobs whose local time was skipped
         * fire once, when the gap ends. */
        if (fixed && real && sp.start >= a && sp.off > sp.prev &&
            match_first(c, sp.start + sp.prev, sp.start + sp.off) != NONE_HI)
            return sp.start * US;
        int64_t lo = t + sp.off;
        /* Clocks went back at sp.start: fixed-time jobs already ran at the first occurrence
         * of the repeated local times. */
        if (fixed && real && sp.off < sp.prev && lo < sp.start + sp.prev)
            lo = sp.start + sp.prev;
        int64_t stop = sp.end < limit ? sp.end : limit;
        int64_t l = match_first(c, lo, stop + sp.off);
        if (l != NONE_HI)
            return (l - sp.off) * US;
        if (sp.end >= limit)
            break;
        t = sp.end;
    }
    return INT64_MAX;
}

int64_t cron_prev(const struct cron *cin, const struct tz *tz, int64_t before_us)
{
    const struct tz *z = tz ? tz : tz_utc();
    struct cron sane, *c = &sane;
    if (!cron_sane(cin, &sane))
        return INT64_MIN;
    bool fixed = fixed_time(c);
    if (before_us == INT64_MIN)
        return INT64_MIN;
    int64_t b = fdiv(before_us - 1, US); /* last candidate second: b * US < before_us */
    if (b > MAX_SEC)
        b = MAX_SEC;
    if (b < MIN_SEC)
        return INT64_MIN;
    int64_t limit = b - HORIZON_SEC; /* exclusive */
    if (limit < MIN_SEC - 1)
        limit = MIN_SEC - 1;

    for (int64_t t = b; t > limit;) {
        struct sspan sp;
        sspan_at(z, t, &sp);
        bool real = sp.start != INT64_MIN;
        int64_t first = real && sp.start > limit ? sp.start : limit + 1;
        int64_t lo = first + sp.off;
        if (fixed && real && sp.off < sp.prev && lo < sp.start + sp.prev)
            lo = sp.start + sp.prev;
        int64_t l = match_last(c, lo, t + sp.off + 1);
        if (l != NONE_LO)
            return (l - sp.off) * US;
        if (!real || sp.start <= limit)
            break;
        if (fixed && sp.off > sp.prev &&
            match_first(c, sp.start + sp.prev, sp.start + sp.off) != NONE_HI)
            return sp.start * US;
        t = sp.start - 1;
    }
    return INT64_MIN;
}
