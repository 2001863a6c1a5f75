/* core/tz.c - IANA time zones from TZif files (RFC 8536): the 64-bit (v2+) transition table
 * plus the POSIX TZ string in the footer, which gives the rule for instants after the table.
 * A zone is reduced to the list of instants where the UTC offset changes; abbreviations and
 * isdst flags are not kept (weir never shows them). Leap-second records ("right/" zones) are
 * ignored. Loaded zones live in a process-wide list under a mutex and are never freed, so
 * the pointers tz_get returns stay valid for ever and need no locking to read. */
#include "core/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/ts.h"

#define TZ_MAX_FILE   (1024 * 1024) /* real TZif files are < 4 KiB */
#define TZ_MAX_NAME   255
#define TZ_MAX_OFFSET 93599 /* RFC 8536: -89999 .. 93599 seconds */
#define TZ_MIN_OFFSET (-89999)

/* A date rule of the POSIX TZ string: Jn (1..365, no Feb 29), n (0..365), Mm.w.d. */
struct tz_rdate {
    char kind; /* 'J', 'n' or 'M' */
    int a, b, c;
    int32_t time; /* seconds after local midnight, -167h..167h */
};

struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct tz_rdate start, end;
};

struct tz {
    const char *name;
    int64_t *trans; /* seconds; strictly increasing; each one changes the offset */
    int32_t *offs;  /* offs[i] is the offset from trans[i] on */
    size_t n;
    int32_t initial; /* offset before trans[0] */
    bool has_rule;   /* the footer rule governs instants from trans[n-1] on */
    struct tz_rule rule;
    struct tz *next; /* the cache list */
};

static struct tz utc_zone = { .name = "UTC" };
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *cache;

const struct tz *tz_utc(void)
{
    return &utc_zone;
}

const char *tz_name(const struct tz *tz)
{
    return tz ? tz->name : utc_zone.name;
}

/* ---- POSIX TZ strings ("CET-1CEST,M3.5.0,M10.5.0/3") ---- */

static bool p_num(const char **p, int max_digits, int *out)
{
    int v = 0, nd = 0;
    while (**p >= '0' && **p <= '9' && nd < max_digits) {
        v = v * 10 + (*(*p)++ - '0');
        nd++;
    }
    *out = v;
    return nd > 0;
}

/* [+-]h[h[h]][:mm[:ss]] in seconds; hours up to max_h. */
static bool p_hms(const char **p, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!p_num(p, 3, &h) || h > max_h)
        return false;
    if (**p == ':') {
        (*p)++;
        if (!p_num(p, 2, &m) || m > 59)
            return false;
        if (**p == ':') {
            (*p)++;
            if (!p_num(p, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool p_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        s++;
        while (*s && *s != '>')
            s++;
        if (*s != '>')
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

static bool p_rdate(const char **p, struct tz_rdate *d)
{
    memset(d, 0, sizeof *d);
    d->time = 7200;
    if (**p == 'J') {
        (*p)++;
        d->kind = 'J';
        if (!p_num(p, 3, &d->a) || d->a < 1 || d->a > 365)
            return false;
    } else if (**p == 'M') {
        (*p)++;
        d->kind = 'M';
        if (!p_num(p, 2, &d->a) || d->a < 1 || d->a > 12 || *(*p)++ != '.' || !p_num(p, 1, &d->b) ||
            d->b < 1 || d->b > 5 || *(*p)++ != '.' || !p_num(p, 1, &d->c) || d->c > 6)
            return false;
    } else {
        d->kind = 'n';
        if (!p_num(p, 3, &d->a) || d->a > 365)
            return false;
    }
    if (**p == '/') {
        (*p)++;
        if (!p_hms(p, 167, &d->time))
            return false;
    }
    return true;
}

static bool parse_posix(const char *s, struct tz_rule *r)
{
    const char *p = s;
    int32_t off;
    memset(r, 0, sizeof *r);
    if (!p_name(&p) || !p_hms(&p, 24, &off))
        return false;
    r->std_off = -off; /* POSIX offsets count west */
    if (*p == '\0')
        return true;
    if (!p_name(&p))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!p_hms(&p, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (*p == '\0') {
        /* No rule given: POSIX leaves it to the implementation; tzcode uses US rules. */
        const char *def = "M3.2.0,M11.1.0";
        if (!p_rdate(&def, &r->start) || *def++ != ',' || !p_rdate(&def, &r->end))
            return false;
        return true;
    }
    if (*p++ != ',' || !p_rdate(&p, &r->start) || *p++ != ',' || !p_rdate(&p, &r->end))
        return false;
    return *p == '\0';
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since the epoch of the day rule `d` names in year `y`. */
static int64_t rdate_day(const struct tz_rdate *d, int y)
{
    int64_t jan1 = ts_days_from_civil(y, 1, 1);
    switch (d->kind) {
    case 'J':
        return jan1 + d->a - 1 + (leap_year(y) && d->a >= 60 ? 1 : 0);
    case 'n':
        return jan1 + d->a;
    default: {
        int64_t first = ts_days_from_civil(y, d->a, 1);
        int64_t next = ts_days_from_civil(y, d->a + 1, 1);
        int64_t wd = ((first + 4) % 7 + 7) % 7;
        int64_t day = first + (d->c - wd + 7) % 7 + 7 * (int64_t)(d->b - 1);
        while (day >= next)
            day -= 7;
        return day;
    }
    }
}

struct tz_edge {
    int64_t at; /* seconds */
    int32_t off;
};

static int edge_cmp(const void *a, const void *b)
{
    const struct tz_edge *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* ---- spans ---- */

struct span_s {
    int64_t start, end; /* seconds; INT64_MIN / INT64_MAX for unbounded */
    int32_t off, prev;
};

static int64_t year_of(int64_t sec)
{
    int y, m, d;
    int64_t days = sec / 86400 - (sec % 86400 < 0);
    ts_civil_from_days(days, &y, &m, &d);
    return y;
}

static void span_rule(const struct tz *tz, int64_t t, struct span_s *out)
{
    struct tz_edge e[9];
    size_t ne = 0;
    int64_t last = tz->n ? tz->trans[tz->n - 1] : INT64_MIN;
    int32_t cur = tz->n ? tz->offs[tz->n - 1] : tz->initial;
    int64_t y0 = year_of(t);
    struct tz_edge gen[8];

    for (int i = 0; i < 4; i++) {
        int y = (int)(y0 - 2 + i);
        gen[2 * (size_t)i].at =
            rdate_day(&tz->rule.start, y) * 86400 + tz->rule.start.time - tz->rule.std_off;
        gen[2 * (size_t)i].off = tz->rule.dst_off;
        gen[2 * (size_t)i + 1].at =
            rdate_day(&tz->rule.end, y) * 86400 + tz->rule.end.time - tz->rule.dst_off;
        gen[2 * (size_t)i + 1].off = tz->rule.std_off;
    }
    qsort(gen, 8, sizeof gen[0], edge_cmp);
    int32_t prev_of_first = tz->n >= 2 ? tz->offs[tz->n - 2] : tz->initial;
    if (tz->n) {
        e[ne++] = (struct tz_edge){ last, cur };
    } else {
        /* No table: the first generated edge opens the list. */
        e[ne++] = gen[0];
        cur = gen[0].off;
        prev_of_first = gen[0].off == tz->rule.dst_off ? tz->rule.std_off : tz->rule.dst_off;
    }
    for (size_t i = tz->n ? 0 : 1; i < 8; i++) {
        if (gen[i].at <= e[ne - 1].at || gen[i].off == cur)
            continue;
        e[ne++] = gen[i];
        cur = gen[i].off;
    }
    size_t k = 0;
    while (k + 1 < ne && e[k + 1].at <= t)
        k++;
    out->start = e[k].at;
    out->off = e[k].off;
    out->prev = k ? e[k - 1].off : prev_of_first;
    out->end = k + 1 < ne ? e[k + 1].at : INT64_MAX;
}

static void span_sec(const struct tz *tz, int64_t t, struct span_s *out)
{
    bool rule = tz->has_rule && tz->rule.has_dst;
    if (rule && (tz->n == 0 || t >= tz->trans[tz->n - 1])) {
        span_rule(tz, t, out);
        return;
    }
    /* i = number of transitions at or before t */
    size_t lo = 0, hi = tz->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo;
    if (i == 0) {
        out->start = INT64_MIN;
        out->off = out->prev = tz->initial;
    } else {
        out->start = tz->trans[i - 1];
        out->off = tz->offs[i - 1];
        out->prev = i >= 2 ? tz->offs[i - 2] : tz->initial;
    }
    out->end = i < tz->n ? tz->trans[i] : INT64_MAX;
}

static int64_t sec_to_us(int64_t s)
{
    if (s == INT64_MIN || s <= INT64_MIN / TS_US_PER_SEC)
        return INT64_MIN;
    if (s == INT64_MAX || s >= INT64_MAX / TS_US_PER_SEC)
        return INT64_MAX;
    return s * TS_US_PER_SEC;
}

static int64_t us_to_sec(int64_t us)
{
    return us / TS_US_PER_SEC - (us % TS_US_PER_SEC < 0);
}

void tz_span_at(const struct tz *tz, int64_t us, struct tz_span *out)
{
    struct span_s s;
    span_sec(tz ? tz : &utc_zone, us_to_sec(us), &s);
    out->start = sec_to_us(s.start);
    out->end = sec_to_us(s.end);
    out->offset = s.off;
    out->prev_offset = s.start == INT64_MIN ? s.off : s.prev;
}

int tz_offset_at(const struct tz *tz, int64_t us)
{
    struct span_s s;
    span_sec(tz ? tz : &utc_zone, us_to_sec(us), &s);
    return s.off;
}

void tz_to_local(const struct tz *tz, int64_t us, struct civil *out)
{
    int off = tz_offset_at(tz, us);
    ts_to_civil_utc(us + (int64_t)off * TS_US_PER_SEC, out);
    out->offset = off;
}

int tz_from_local(const struct tz *tz, const struct civil *local, int64_t *a, int64_t *b)
{
    const int64_t margin = INT64_C(2) * 86400 * TS_US_PER_SEC; /* > any UTC offset */
    int64_t l = ts_from_civil_utc(local);
    int64_t found[2] = { 0, 0 }, gap_end = INT64_MAX;
    int n = 0;
    struct tz_span sp;

    tz_span_at(tz, l - margin, &sp);
    for (;;) {
        int64_t off = (int64_t)sp.offset * TS_US_PER_SEC;
        int64_t cand = l - off;
        if (cand >= sp.start && cand < sp.end && n < 2)
            found[n++] = cand;
        if (sp.start != INT64_MIN && sp.offset > sp.prev_offset &&
            l >= sp.start + (int64_t)sp.prev_offset * TS_US_PER_SEC && l < sp.start + off &&
            gap_end == INT64_MAX)
            gap_end = sp.start;
        if (sp.end == INT64_MAX || sp.end > l + margin)
            break;
        tz_span_at(tz, sp.end, &sp);
    }
    if (n == 0) {
        /* Skipped local time. gap_end is always found for a real gap; fall back to the
         * plain UTC reading if the zone data were inconsistent. */
        *a = *b = gap_end != INT64_MAX ? gap_end : l;
        return 0;
    }
    *a = found[0];
    *b = n == 2 ? found[1] : found[0];
    return n;
}

/* ---- TZif files ---- */

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* Parses TZif data into `z` (name already set). Returns NULL or the reason it is bad. */
static const char *parse_tzif(const unsigned char *buf, size_t len, struct tz *z)
{
    const unsigned char *p = buf, *end = buf + len;
    int tsize = 4;
    for (int pass = 0;; pass++) {
        if ((size_t)(end - p) < 44 || memcmp(p, "TZif", 4) != 0)
            return "bad header";
        char version = (char)p[4];
        int64_t isutcnt = be(p + 20, 4), isstdcnt = be(p + 24, 4), leapcnt = be(p + 28, 4);
        int64_t timecnt = be(p + 32, 4), typecnt = be(p + 36, 4), charcnt = be(p + 40, 4);
        if (isutcnt < 0 || isstdcnt < 0 || leapcnt < 0 || timecnt < 0 || typecnt < 1 ||
            charcnt < 0 || typecnt > 256)
            return "bad counts";
        p += 44;
        int64_t need = timecnt * tsize + timecnt + typecnt * 6 + charcnt + leapcnt * (tsize + 4) +
                       isstdcnt + isutcnt;
        if (need > end - p)
            return "truncated";
        if (pass == 0 && version >= '2') {
            p += need; /* skip the 32-bit data; the 64-bit block follows */
            tsize = 8;
            continue;
        }
        const unsigned char *times = p, *idx = p + timecnt * tsize, *types = idx + timecnt;
        int32_t offs_by_type[256] = { 0 };
        for (int64_t i = 0; i < typecnt; i++) {
            int64_t o = be(types + 6 * i, 4);
            if (o < TZ_MIN_OFFSET || o > TZ_MAX_OFFSET)
                return "bad UTC offset";
            offs_by_type[i] = (int32_t)o;
        }
        z->initial = offs_by_type[0];
        z->trans = xmalloc(sizeof *z->trans * (size_t)(timecnt ? timecnt : 1));
        z->offs = xmalloc(sizeof *z->offs * (size_t)(timecnt ? timecnt : 1));
        z->n = 0;
        int32_t cur = z->initial;
        int64_t prev_t = INT64_MIN;
        for (int64_t i = 0; i < timecnt; i++) {
            int64_t t = be(times + i * tsize, tsize);
            if (idx[i] >= typecnt)
                return "bad type index";
            if (i > 0 && t <= prev_t)
                return "transitions out of order";
            prev_t = t;
            if (offs_by_type[idx[i]] == cur)
                continue;
            cur = offs_by_type[idx[i]];
            z->trans[z->n] = t;
            z->offs[z->n] = cur;
            z->n++;
        }
        p += need;
        z->has_rule = false;
        if (tsize == 8 && p < end && *p == '\n') {
            const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
            if (!nl)
                return "bad footer";
            size_t flen = (size_t)(nl - p - 1);
            if (flen > 0) {
                char footer[128];
                if (flen >= sizeof footer)
                    return "footer too long";
                memcpy(footer, p + 1, flen);
                footer[flen] = '\0';
                if (!parse_posix(footer, &z->rule))
                    return "bad TZ string in footer";
                z->has_rule = true;
                if (!z->rule.has_dst && z->n == 0)
                    z->initial = z->rule.std_off;
            }
        }
        return NULL;
    }
}

static bool valid_name(const char *name)
{
    size_t len = strnlen(name, TZ_MAX_NAME + 1);
    if (len == 0 || len > TZ_MAX_NAME || name[0] == '/' || name[0] == '-' || strstr(name, ".."))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '/' || c == '-'))
            return false;
    }
    return true;
}

static struct tz *load_zone(const char *name, struct weir_err *err)
{
    const char *dir = getenv("TZDIR");
    char path[4096], ebuf[128];
    struct stat st;
    unsigned char *buf = NULL;
    struct tz *z = NULL;
    int fd;

    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        err_set(err, WEIR_EINVAL, "invalid time zone '%s': path too long", name);
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            err_set(err, WEIR_ENOTFOUND, "unknown time zone '%s'", name);
        else
            err_set(err, WEIR_EIO, "time zone '%s': cannot open '%s': %s", name, path,
                    err_errno(errno, ebuf, sizeof ebuf));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        err_set(err, WEIR_ENOTFOUND, "unknown time zone '%s'", name);
        return NULL;
    }
    if (st.st_size > (off_t)TZ_MAX_FILE) {
        close(fd);
        err_set(err, WEIR_EINVAL, "time zone '%s': '%s' is too large for a TZif file", name, path);
        return NULL;
    }
    size_t len = (size_t)st.st_size, got = 0;
    buf = xmalloc(len ? len : 1);
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    z = xcalloc(1, sizeof *z);
    z->name = xstrdup(name);
    const char *why = got == len ? parse_tzif(buf, len, z) : "short read";
    free(buf);
    if (why) {
        err_set(err, WEIR_EINVAL, "time zone '%s': bad TZif file '%s': %s", name, path, why);
        free(z->trans);
        free(z->offs);
        free((char *)z->name);
        free(z);
        return NULL;
    }
    return z;
}

const struct tz *tz_get(const char *name, struct weir_err *err)
{
    if (!name || !*name) {
        err_set(err, WEIR_EINVAL, "invalid time zone '': empty name");
        return NULL;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Z") == 0 || strcmp(name, "Etc/UTC") == 0)
        return &utc_zone;
    if (!valid_name(name)) {
        err_set(err, WEIR_EINVAL, "invalid time zone '%.*s'", 64, name);
        return NULL;
    }
    pthread_mutex_lock(&cache_lock);
    struct tz *z = cache;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z) {
        z = load_zone(name, err);
        if (z) {
            z->next = cache;
            cache = z;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return z;
}
