/* warehouse/wh_types.c - column vectors and values: type names, text parsing and output in
 * PostgreSQL's formats, casts between types, comparison and hashing of rows. Dates are days
 * and timestamps microseconds since 1970-01-01 (proleptic Gregorian, UTC). */
#include "warehouse/wh_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/ts.h"

bool wh__type_is_float(uint8_t t)
{
    return t == WH_T_FLOAT4 || t == WH_T_FLOAT8;
}

bool wh__type_is_int(uint8_t t)
{
    return t != WH_T_TEXT && !wh__type_is_float(t);
}

bool wh__type_is_numeric(uint8_t t)
{
    return t == WH_T_INT2 || t == WH_T_INT4 || t == WH_T_INT8 || t == WH_T_NUMERIC ||
           wh__type_is_float(t);
}

const char *wh_type_name(enum wh_type t)
{
    switch (t) {
    case WH_T_BOOL:
        return "boolean";
    case WH_T_INT2:
        return "smallint";
    case WH_T_INT4:
        return "integer";
    case WH_T_INT8:
        return "bigint";
    case WH_T_FLOAT4:
        return "real";
    case WH_T_FLOAT8:
        return "double precision";
    case WH_T_NUMERIC:
        return "numeric";
    case WH_T_TEXT:
        return "text";
    case WH_T_DATE:
        return "date";
    case WH_T_TS:
        return "timestamp without time zone";
    case WH_T_TSTZ:
        return "timestamp with time zone";
    case WH_T_INTERVAL:
        return "interval";
    default:
        return "unknown";
    }
}

int wh__type_from_name(const char *name, int ntypmods, const int *typmods, uint8_t *type,
                       int16_t *scale, int32_t *typmod)
{
    static const struct {
        const char *name;
        uint8_t type;
    } names[] = {
        { "bool", WH_T_BOOL },       { "boolean", WH_T_BOOL },  { "int2", WH_T_INT2 },
        { "smallint", WH_T_INT2 },   { "int4", WH_T_INT4 },     { "int", WH_T_INT4 },
        { "integer", WH_T_INT4 },    { "int8", WH_T_INT8 },     { "bigint", WH_T_INT8 },
        { "float4", WH_T_FLOAT4 },   { "real", WH_T_FLOAT4 },   { "float8", WH_T_FLOAT8 },
        { "float", WH_T_FLOAT8 },    { "double", WH_T_FLOAT8 }, { "numeric", WH_T_NUMERIC },
        { "decimal", WH_T_NUMERIC }, { "text", WH_T_TEXT },     { "varchar", WH_T_TEXT },
        { "bpchar", WH_T_TEXT },     { "char", WH_T_TEXT },     { "string", WH_T_TEXT },
        { "date", WH_T_DATE },       { "timestamp", WH_T_TS },  { "timestamptz", WH_T_TSTZ },
        { "json", WH_T_TEXT },       { "jsonb", WH_T_TEXT },
    };
    *scale = 0;
    *typmod = -1;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (strcasecmp(name, names[k].name))
            continue;
        *type = names[k].type;
        if (*type == WH_T_NUMERIC) {
            /* Unconstrained numeric has no int64 representation: it is computed as double
             * precision (documented in docs/warehouse.md). */
            if (ntypmods == 0) {
                *type = WH_T_FLOAT8;
                return 0;
            }
            int p = typmods[0], s = ntypmods > 1 ? typmods[1] : 0;
            if (p < 1 || p > 18 || s < 0 || s > p)
                return -WEIR_EINVAL;
            *scale = (int16_t)s;
            *typmod = p;
        } else if (*type == WH_T_TEXT && ntypmods > 0) {
            *typmod = typmods[0];
        }
        return 0;
    }
    return -WEIR_ENOTFOUND;
}

int64_t wh__pow10(int n)
{
    int64_t r = 1;
    while (n-- > 0)
        r *= 10;
    return r;
}

/* Howard Hinnant's civil calendar algorithms. */
/* Calendar arithmetic is core/ts.h's; these adapt its types to the engine's. */
int64_t wh__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    return ts_days_from_civil((int)y, (int)m, (int)d);
}

void wh__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int yy, mm, dd;
    ts_civil_from_days(z, &yy, &mm, &dd);
    *y = yy;
    *m = (unsigned)mm;
    *d = (unsigned)dd;
}

struct wh_vec *wh__vec_new(struct wh_q *q, uint8_t type, int16_t scale, size_t n)
{
    struct wh_vec *v = wh__calloc(q, 1, sizeof *v);
    v->type = type;
    v->scale = scale;
    v->n = n;
    v->nul = wh__calloc(q, n ? n : 1, 1);
    if (type == WH_T_TEXT)
        v->s = wh__calloc(q, n ? n : 1, sizeof *v->s);
    else if (wh__type_is_float(type))
        v->f = wh__calloc(q, n ? n : 1, sizeof *v->f);
    else
        v->i = wh__calloc(q, n ? n : 1, sizeof *v->i);
    if (type == WH_T_INTERVAL)
        v->m = wh__calloc(q, n ? n : 1, sizeof *v->m);
    return v;
}

void wh__vec_copy_row(struct wh_vec *o, size_t ro, const struct wh_vec *v, size_t rv)
{
    o->nul[ro] = v->nul[rv];
    if (o->s)
        o->s[ro] = v->s[rv];
    else if (o->f)
        o->f[ro] = v->f[rv];
    else
        o->i[ro] = v->i[rv];
    if (o->m)
        o->m[ro] = v->m ? v->m[rv] : 0;
}

struct gather_job {
    const struct wh_vec *v;
    struct wh_vec *o;
    const uint32_t *idx;
    size_t n, chunk;
};

static void gather_range(const struct wh_vec *v, struct wh_vec *o, const uint32_t *idx, size_t from,
                         size_t to)
{
    for (size_t k = from; k < to; k++) {
        uint32_t r = idx[k];
        if (r == UINT32_MAX) {
            o->nul[k] = 1;
            continue;
        }
        o->nul[k] = v->nul[r];
        if (o->dc)
            o->dc[k] = v->dc ? v->dc[r] : r;
        if (o->s)
            o->s[k] = v->s[r];
        else if (o->f)
            o->f[k] = v->f[r];
        else
            o->i[k] = v->i[r];
        if (o->m)
            o->m[k] = v->m[r];
    }
}

static void gather_task(void *arg, size_t i)
{
    struct gather_job *j = arg;
    size_t from = i * j->chunk, to = from + j->chunk;
    gather_range(j->v, j->o, j->idx, from, to < j->n ? to : j->n);
}

struct wh_vec *wh__vec_gather(struct wh_q *q, const struct wh_vec *v, const uint32_t *idx, size_t n)
{
    struct wh_vec *o = wh__vec_new(q, v->type, v->scale, n);
    if (v->s && v->dc) {
        o->dc = wh__alloc(q, (n ? n : 1) * sizeof *o->dc);
        o->dict = v->dict;
        o->ndict = v->ndict;
    } else if (v->s && !v->m && v->n <= WH_DICT_SMALL_SRC && n >= 4 * v->n && n >= WH_GRANULE) {
        o->dc = wh__alloc(q, (n ? n : 1) * sizeof *o->dc);
        o->dict = (const char **)v->s;
        o->ndict = (uint32_t)v->n;
    }
    size_t nch = wh__par_chunks(q, n, 4 * WH_GRANULE);
    if (nch <= 1) {
        gather_range(v, o, idx, 0, n);
        return o;
    }
    struct gather_job j = { .v = v, .o = o, .idx = idx, .n = n, .chunk = (n + nch - 1) / nch };
    wh__pool_run(wh__db_pool(q->db), nch, gather_task, &j);
    return o;
}

struct wh_rel *wh__rel_new(struct wh_q *q, int ncols, size_t n)
{
    struct wh_rel *r = wh__calloc(q, 1, sizeof *r);
    r->ncols = ncols;
    r->n = n;
    r->cols = wh__calloc(q, (size_t)ncols + 1, sizeof *r->cols);
    r->names = wh__calloc(q, (size_t)ncols + 1, sizeof *r->names);
    r->quals = wh__calloc(q, (size_t)ncols + 1, sizeof *r->quals);
    return r;
}

struct wh_rel *wh__rel_gather(struct wh_q *q, const struct wh_rel *r, const uint32_t *idx, size_t n)
{
    struct wh_rel *o = wh__rel_new(q, r->ncols, n);
    for (int c = 0; c < r->ncols; c++) {
        o->names[c] = r->names[c];
        o->quals[c] = r->quals[c];
        o->cols[c] = r->cols[c] ? wh__vec_gather(q, r->cols[c], idx, n) : NULL;
    }
    return o;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static bool parse_int(const char *s, int64_t *out)
{
    char *end = NULL;
    s = skip_ws(s);
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno)
        return false;
    if (*skip_ws(end))
        return false;
    *out = v;
    return true;
}

static bool parse_numeric(const char *s, int scale, int64_t *out)
{
    s = skip_ws(s);
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    __int128 v = 0;
    int digits = 0, frac = -1;
    bool round_up = false;
    for (; *s; s++) {
        if (*s == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        digits++;
        if (frac >= 0) {
            if (frac == scale) {
                if (*s >= '5')
                    round_up = true;
                frac++;
                continue;
            }
            if (frac > scale)
                continue;
            frac++;
        }
        v = v * 10 + (*s - '0');
        if (v > (__int128)INT64_MAX * 10)
            return false;
    }
    if (!digits)
        return false;
    if (*skip_ws(s))
        return false;
    if (frac > scale)
        frac = scale;
    if (frac < 0)
        frac = 0;
    for (int k = frac; k < scale; k++)
        v *= 10;
    if (round_up)
        v += 1;
    if (v > INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool parse_date_part(const char **sp, int64_t *days)
{
    const char *s = *sp;
    char *end = NULL;
    errno = 0;
    long y = strtol(s, &end, 10);
    if (end == s || *end != '-' || errno)
        return false;
    s = end + 1;
    long m = strtol(s, &end, 10);
    if (end == s || *end != '-')
        return false;
    s = end + 1;
    long d = strtol(s, &end, 10);
    if (end == s)
        return false;
    if (y < -4713 || y > 294276 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return false;
    *days = wh__days_from_civil(y, (unsigned)m, (unsigned)d);
    *sp = end;
    return true;
}

/* 'YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|+HH[:MM]]'; `tz` says whether an offset applies. */
static bool parse_ts(const char *s, bool tz, int64_t *out)
{
    int64_t days;
    s = skip_ws(s);
    if (!parse_date_part(&s, &days))
        return false;
    int64_t us = 0;
    if (*s == ' ' || *s == 'T') {
        s++;
        int h = 0, mi = 0, sec = 0;
        char *end = NULL;
        h = (int)strtol(s, &end, 10);
        if (end == s || *end != ':')
            return false;
        s = end + 1;
        mi = (int)strtol(s, &end, 10);
        if (end == s)
            return false;
        s = end;
        if (*s == ':') {
            s++;
            sec = (int)strtol(s, &end, 10);
            if (end == s)
                return false;
            s = end;
        }
        if (h > 24 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0)
            return false;
        int64_t frac = 0;
        if (*s == '.') {
            s++;
            int nd = 0;
            while (*s >= '0' && *s <= '9') {
                if (nd < 6) {
                    frac = frac * 10 + (*s - '0');
                    nd++;
                }
                s++;
            }
            while (nd++ < 6)
                frac *= 10;
        }
        us = ((int64_t)h * 3600 + mi * 60 + sec) * 1000000 + frac;
        s = skip_ws(s);
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1;
            s++;
            long oh = strtol(s, &end, 10);
            if (end == s)
                return false;
            long om = 0;
            if (end - s == 4) {
                om = oh % 100;
                oh /= 100;
            }
            s = end;
            if (*s == ':') {
                s++;
                om = strtol(s, &end, 10);
                s = end;
            }
            if (tz)
                us -= sign * ((int64_t)oh * 3600 + om * 60) * 1000000;
        }
    }
    if (*skip_ws(s))
        return false;
    *out = days * WH_US_PER_DAY + us;
    return true;
}

bool wh__parse_val(const char *s, uint8_t type, int16_t scale, int64_t *iv, double *fv)
{
    switch (type) {
    case WH_T_BOOL: {
        s = skip_ws(s);
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
            n--;
        static const char *yes[] = { "t", "true", "yes", "y", "on", "1" };
        static const char *no[] = { "f", "false", "no", "n", "off", "0" };
        for (size_t k = 0; k < 6; k++) {
            if (strlen(yes[k]) == n && !strncasecmp(s, yes[k], n)) {
                *iv = 1;
                return true;
            }
            if (strlen(no[k]) == n && !strncasecmp(s, no[k], n)) {
                *iv = 0;
                return true;
            }
        }
        return false;
    }
    case WH_T_INT2:
    case WH_T_INT4:
    case WH_T_INT8: {
        int64_t v;
        if (!parse_int(s, &v))
            return false;
        if (type == WH_T_INT2 && (v < INT16_MIN || v > INT16_MAX))
            return false;
        if (type == WH_T_INT4 && (v < INT32_MIN || v > INT32_MAX))
            return false;
        *iv = v;
        return true;
    }
    case WH_T_FLOAT4:
    case WH_T_FLOAT8: {
        char *end = NULL;
        s = skip_ws(s);
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || *skip_ws(end) || (errno == ERANGE && isinf(d)))
            return false;
        *fv = type == WH_T_FLOAT4 ? (double)(float)d : d;
        return true;
    }
    case WH_T_NUMERIC:
        return parse_numeric(s, scale, iv);
    case WH_T_DATE: {
        int64_t d;
        s = skip_ws(s);
        if (!parse_date_part(&s, &d) || *skip_ws(s))
            return false;
        *iv = d;
        return true;
    }
    case WH_T_TS:
        return parse_ts(s, false, iv);
    case WH_T_TSTZ:
        return parse_ts(s, true, iv);
    default:
        return false;
    }
}

static void fmt_double(double d, char *buf, size_t len)
{
    if (isnan(d)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, len, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    /* Shortest representation that reads back as the same double, in positional notation
     * for decimal exponents -4..14 and scientific otherwise (PostgreSQL 12+). */
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, len, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    snprintf(buf, len, "%.*e", p - 1, d);
    const char *e = strchr(buf, 'e');
    int exp = e ? (int)strtol(e + 1, NULL, 10) : 0;
    if (exp >= -4 && exp < 15) {
        int dec = p - 1 - exp;
        snprintf(buf, len, "%.*f", dec > 0 ? dec : 0, d);
    } else {
        snprintf(buf, len, "%.*g", p, d);
    }
}

static void fmt_ts(int64_t us, char *buf, size_t len, bool tz)
{
    int64_t days = us / WH_US_PER_DAY, rem = us % WH_US_PER_DAY;
    if (rem < 0) {
        rem += WH_US_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    wh__civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / 1000000, frac = rem % 1000000;
    int n = snprintf(buf, len, "%04lld-%02u-%02u %02d:%02d:%02d", (long long)y, m, d,
                     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    if (frac && n > 0 && (size_t)n < len) {
        char f[8];
        snprintf(f, sizeof f, "%06lld", (long long)frac);
        int fl = 6;
        while (fl > 0 && f[fl - 1] == '0')
            fl--;
        n += snprintf(buf + n, len - (size_t)n, ".%.*s", fl, f);
    }
    if (tz && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "+00");
}

static void fmt_numeric(int64_t v, int scale, char *buf, size_t len)
{
    if (scale == 0) {
        snprintf(buf, len, "%lld", (long long)v);
        return;
    }
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int sc = scale < 0 ? 0 : scale > 18 ? 18 : scale;
    uint64_t p = (uint64_t)wh__pow10(sc);
    int n = snprintf(buf, len, "%s%llu.%0*llu", v < 0 ? "-" : "", (unsigned long long)(a / p), sc,
                     (unsigned long long)(a % p));
    (void)n;
}

bool wh__fmt_val(const struct wh_vec *v, size_t r, char *buf, size_t len)
{
    if (v->nul[r]) {
        if (len)
            buf[0] = 0;
        return false;
    }
    switch (v->type) {
    case WH_T_BOOL:
        snprintf(buf, len, "%s", v->i[r] ? "t" : "f");
        break;
    case WH_T_FLOAT4:
    case WH_T_FLOAT8:
        fmt_double(v->f[r], buf, len);
        break;
    case WH_T_NUMERIC:
        fmt_numeric(v->i[r], v->scale, buf, len);
        break;
    case WH_T_TEXT:
        snprintf(buf, len, "%s", v->s[r]);
        break;
    case WH_T_DATE: {
        int64_t y;
        unsigned m, d;
        wh__civil_from_days(v->i[r], &y, &m, &d);
        snprintf(buf, len, "%04lld-%02u-%02u", (long long)y, m, d);
        break;
    }
    case WH_T_TS:
        fmt_ts(v->i[r], buf, len, false);
        break;
    case WH_T_TSTZ:
        fmt_ts(v->i[r], buf, len, true);
        break;
    case WH_T_INTERVAL:
        wh__fmt_interval(wh__iv_months(v->m[r]), wh__iv_days(v->m[r]), v->i[r], buf, len);
        break;
    default:
        snprintf(buf, len, "%lld", (long long)v->i[r]);
        break;
    }
    return true;
}

static double to_double(const struct wh_vec *v, size_t r)
{
    if (v->f)
        return v->f[r];
    if (v->type == WH_T_NUMERIC)
        return (double)v->i[r] / (double)wh__pow10(v->scale);
    return (double)v->i[r];
}

static int64_t round_div(int64_t a, int64_t p)
{
    /* Rounds half away from zero, as PostgreSQL's numeric does. */
    int64_t q = a / p, m = a % p;
    if (m * 2 >= p)
        q++;
    else if (m * 2 <= -p)
        q--;
    return q;
}

static int64_t int_range_check(struct wh_q *q, int64_t v, uint8_t type, int loc)
{
    if ((type == WH_T_INT2 && (v < INT16_MIN || v > INT16_MAX)) ||
        (type == WH_T_INT4 && (v < INT32_MIN || v > INT32_MAX)))
        wh__fail(q, WEIR_EINVAL, loc, "%s out of range", wh_type_name(type));
    return v;
}

struct wh_vec *wh__cast(struct wh_q *q, const struct wh_vec *v, uint8_t type, int16_t scale,
                        int loc)
{
    if (v->type == type && (type != WH_T_NUMERIC || v->scale == scale))
        return (struct wh_vec *)v;
    struct wh_vec *o = wh__vec_new(q, type, scale, v->n);
    char tmp[64];
    for (size_t r = 0; r < v->n; r++) {
        if ((o->nul[r] = v->nul[r]))
            continue;
        if (v->type == WH_T_UNKNOWN && !v->s) /* a NULL literal */
            continue;
        if (v->type == WH_T_TEXT || v->type == WH_T_UNKNOWN) {
            if (type == WH_T_TEXT || type == WH_T_UNKNOWN) {
                o->s[r] = v->s[r];
                continue;
            }
            if (type == WH_T_INTERVAL) {
                int32_t mo, dd;
                if (!wh__parse_interval(v->s[r], &mo, &dd, &o->i[r]))
                    wh__fail(q, WEIR_EINVAL, loc,
                             "invalid input syntax for type interval: \"%.80s\"", v->s[r]);
                o->m[r] = wh__iv_pack(mo, dd);
                continue;
            }
            int64_t iv = 0;
            double fv = 0;
            if (!wh__parse_val(v->s[r], type, scale, &iv, &fv))
                wh__fail(q, WEIR_EINVAL, loc, "invalid input syntax for type %s: \"%.80s\"",
                         wh_type_name(type), v->s[r]);
            if (o->f)
                o->f[r] = fv;
            else
                o->i[r] = iv;
            continue;
        }
        if (type == WH_T_TEXT) {
            wh__fmt_val(v, r, tmp, sizeof tmp);
            o->s[r] = wh__strdup(q, tmp);
            continue;
        }
        uint8_t ft = v->type;
        if (type == WH_T_INTERVAL || ft == WH_T_INTERVAL)
            goto bad;
        if (wh__type_is_float(type)) {
            if (!wh__type_is_numeric(ft) && ft != WH_T_BOOL)
                goto bad;
            o->f[r] = to_double(v, r);
            if (type == WH_T_FLOAT4)
                o->f[r] = (float)o->f[r];
            continue;
        }
        switch (type) {
        case WH_T_BOOL:
            if (ft == WH_T_INT4 || ft == WH_T_INT2 || ft == WH_T_INT8)
                o->i[r] = v->i[r] != 0;
            else
                goto bad;
            break;
        case WH_T_INT2:
        case WH_T_INT4:
        case WH_T_INT8:
            if (wh__type_is_float(ft)) {
                double d = rint(v->f[r]);
                if (!(d >= -9.2e18 && d <= 9.2e18))
                    wh__fail(q, WEIR_EINVAL, loc, "%s out of range", wh_type_name(type));
                o->i[r] = int_range_check(q, (int64_t)d, type, loc);
            } else if (ft == WH_T_NUMERIC) {
                o->i[r] = int_range_check(q, round_div(v->i[r], wh__pow10(v->scale)), type, loc);
            } else if (ft == WH_T_BOOL || ft == WH_T_INT2 || ft == WH_T_INT4 || ft == WH_T_INT8) {
                o->i[r] = int_range_check(q, v->i[r], type, loc);
            } else {
                goto bad;
            }
            break;
        case WH_T_NUMERIC: {
            double lim = (double)wh__pow10(18 - scale);
            if (wh__type_is_float(ft)) {
                if (!(fabs(v->f[r]) < lim))
                    wh__fail(q, WEIR_EINVAL, loc, "numeric field overflow");
                o->i[r] = (int64_t)llround(v->f[r] * (double)wh__pow10(scale));
            } else if (ft == WH_T_NUMERIC) {
                if (v->scale > scale) {
                    o->i[r] = round_div(v->i[r], wh__pow10(v->scale - scale));
                } else {
                    int64_t m = wh__pow10(scale - v->scale);
                    if (__builtin_mul_overflow(v->i[r], m, &o->i[r]))
                        wh__fail(q, WEIR_EINVAL, loc, "numeric field overflow");
                }
            } else if (ft == WH_T_INT2 || ft == WH_T_INT4 || ft == WH_T_INT8) {
                if (__builtin_mul_overflow(v->i[r], wh__pow10(scale), &o->i[r]))
                    wh__fail(q, WEIR_EINVAL, loc, "numeric field overflow");
            } else {
                goto bad;
            }
            break;
        }
        case WH_T_DATE:
            if (ft == WH_T_TS || ft == WH_T_TSTZ) {
                int64_t d = v->i[r] / WH_US_PER_DAY;
                if (v->i[r] % WH_US_PER_DAY < 0)
                    d--;
                o->i[r] = d;
            } else {
                goto bad;
            }
            break;
        case WH_T_TS:
        case WH_T_TSTZ:
            if (ft == WH_T_DATE)
                o->i[r] = v->i[r] * WH_US_PER_DAY;
            else if (ft == WH_T_TS || ft == WH_T_TSTZ)
                o->i[r] = v->i[r];
            else
                goto bad;
            break;
        default:
            goto bad;
        }
    }
    return o;
bad:
    wh__fail(q, WEIR_EINVAL, loc, "cannot cast type %s to %s", wh_type_name(v->type),
             wh_type_name(type));
}

/* An interval's length for comparisons, as PostgreSQL measures it: a month is 30 days, a
 * day 24 hours. */
static __int128 iv_span(const struct wh_vec *v, size_t r)
{
    int64_t m = v->m ? v->m[r] : 0;
    return ((__int128)wh__iv_months(m) * 30 + wh__iv_days(m)) * WH_US_PER_DAY + v->i[r];
}

int wh__cmp_rows(const struct wh_vec *a, size_t ra, const struct wh_vec *b, size_t rb)
{
    if (a->m || b->m) {
        __int128 x = iv_span(a, ra), y = iv_span(b, rb);
        return (x > y) - (x < y);
    }
    if (a->s) {
        int c = strcmp(a->s[ra], b->s[rb]);
        return (c > 0) - (c < 0);
    }
    if (a->f || b->f || (a->type == WH_T_NUMERIC && b->scale != a->scale)) {
        double x = to_double(a, ra), y = to_double(b, rb);
        /* NaN sorts after everything, as in PostgreSQL. */
        if (isnan(x) || isnan(y))
            return isnan(x) - isnan(y);
        return (x > y) - (x < y);
    }
    return (a->i[ra] > b->i[rb]) - (a->i[ra] < b->i[rb]);
}

uint64_t wh__hash_row(const struct wh_vec *v, size_t r, uint64_t h)
{
    uint64_t x;
    if (v->nul[r]) {
        x = 0x9e3779b97f4a7c15ULL;
    } else if (v->s) {
        x = 1469598103934665603ULL;
        for (const unsigned char *p = (const unsigned char *)v->s[r]; *p; p++)
            x = (x ^ *p) * 1099511628211ULL;
    } else if (v->f) {
        double d = v->f[r] == 0 ? 0 : v->f[r];
        memcpy(&x, &d, sizeof x);
    } else if (v->m) {
        __int128 sp = iv_span(v, r); /* equal intervals ('1 day', '24 hours') hash alike */
        x = (uint64_t)sp ^ ((uint64_t)(sp >> 64) * 0x9e3779b97f4a7c15ULL);
    } else {
        x = (uint64_t)v->i[r];
    }
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

/* ---- intervals ---- */

bool wh__parse_interval(const char *s, int32_t *months, int32_t *days, int64_t *us)
{
    static const struct {
        const char *unit;
        int64_t months, days, us;
    } units[] = {
        { "microsecond", 0, 0, 1 },
        { "millisecond", 0, 0, 1000 },
        { "second", 0, 0, 1000000 },
        { "sec", 0, 0, 1000000 },
        { "minute", 0, 0, 60000000 },
        { "min", 0, 0, 60000000 },
        { "hour", 0, 0, 3600000000LL },
        { "day", 0, 1, 0 },
        { "week", 0, 7, 0 },
        { "month", 1, 0, 0 },
        { "mon", 1, 0, 0 },
        { "year", 12, 0, 0 },
        { "decade", 120, 0, 0 },
        { "century", 1200, 0, 0 },
    };
    int64_t mo = 0, dd = 0;
    *us = 0;
    bool any = false;
    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        char *end = NULL;
        double v = strtod(s, &end);
        if (end == s || !isfinite(v) || fabs(v) > 1e15)
            return false;
        if (*end == ':') { /* [-]HH:MM[:SS[.ffffff]] */
            int sign = *s == '-' ? -1 : 1;
            long h = labs(strtol(s, &end, 10)), mi = 0;
            double sec = 0;
            mi = strtol(end + 1, &end, 10);
            if (*end == ':')
                sec = strtod(end + 1, &end);
            if (h > 100000000 || mi < 0 || mi > 59 || !(sec >= 0 && sec < 60))
                return false;
            *us += sign * (int64_t)llround(((double)h * 3600 + (double)mi * 60 + sec) * 1e6);
            s = end;
            any = true;
            continue;
        }
        s = end;
        while (*s == ' ')
            s++;
        const char *u = s;
        while (isalpha((unsigned char)*s))
            s++;
        size_t ul = (size_t)(s - u);
        if (ul && (u[ul - 1] == 's' || u[ul - 1] == 'S'))
            ul--;                     /* plural */
        int found = ul == 0 ? 2 : -1; /* a bare number counts seconds */
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].unit) == ul && !strncasecmp(u, units[k].unit, ul))
                found = (int)k;
        if (found < 0)
            return false;
        if (units[found].months) {
            /* Fractions of months and years spill into days (30 per month), as in
             * PostgreSQL. */
            double m = v * (double)units[found].months;
            int64_t whole = (int64_t)m;
            mo += whole;
            double fd = (m - (double)whole) * 30;
            int64_t wd = (int64_t)fd;
            dd += wd;
            *us += (int64_t)llround((fd - (double)wd) * (double)WH_US_PER_DAY);
        } else if (units[found].days) {
            double d = v * (double)units[found].days;
            int64_t wd = (int64_t)d;
            dd += wd;
            *us += (int64_t)llround((d - (double)wd) * (double)WH_US_PER_DAY);
        } else {
            *us += (int64_t)llround(v * (double)units[found].us);
        }
        any = true;
        if (mo > INT32_MAX || mo < INT32_MIN || dd > INT32_MAX || dd < INT32_MIN)
            return false;
    }
    *months = (int32_t)mo;
    *days = (int32_t)dd;
    return any;
}

/* PostgreSQL's output (IntervalStyle postgres): "1 year 2 mons 3 days 04:05:06.5",
 * "-1 days +02:00:00", "00:00:00". */
void wh__fmt_interval(int32_t months, int32_t days, int64_t us, char *buf, size_t len)
{
    size_t n = 0;
    bool before = false, any = false; /* a negative part printed; any part printed */
    int32_t years = months / 12, mons = months % 12;
    const struct {
        int32_t v;
        const char *unit;
    } parts[] = { { years, "year" }, { mons, "mon" }, { days, "day" } };
    buf[0] = 0;
    for (size_t k = 0; k < 3; k++) {
        if (!parts[k].v)
            continue;
        int w = snprintf(buf + n, len - n, "%s%s%d %s%s", any ? " " : "",
                         before && parts[k].v > 0 ? "+" : "", parts[k].v, parts[k].unit,
                         parts[k].v == 1 ? "" : "s");
        if (w < 0 || (size_t)w >= len - n)
            return;
        n += (size_t)w;
        before = parts[k].v < 0; /* PostgreSQL: a sign "+" only right after a negative part */
        any = true;
    }
    if (us == 0 && any)
        return;
    bool minus = us < 0;
    uint64_t a = minus ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
    uint64_t secs = a / 1000000, frac = a % 1000000;
    int w = snprintf(buf + n, len - n, "%s%s%02llu:%02llu:%02llu", any ? " " : "",
                     minus    ? "-"
                     : before ? "+"
                              : "",
                     (unsigned long long)(secs / 3600), (unsigned long long)(secs / 60 % 60),
                     (unsigned long long)(secs % 60));
    if (w < 0 || (size_t)w >= len - n)
        return;
    n += (size_t)w;
    if (frac) {
        char f[8];
        int fw = snprintf(f, sizeof f, "%06llu", (unsigned long long)frac);
        (void)fw;
        int fl = 6;
        while (fl > 0 && f[fl - 1] == '0')
            fl--;
        w = snprintf(buf + n, len - n, ".%.*s", fl, f);
        (void)w;
    }
}
