/* core/tmpl_lib.c - the template language's library: value helpers (truth, str(), equality,
 * ordering, JSON output), built-in filters, tests, string and dict methods, and the engine's
 * own functions (range, ds_add, ds_format). Strings are UTF-8; case mapping is ASCII only. */
#include "core/tmpl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/tmpl_int.h"
#include "core/ts.h"

/* ---- values ---- */

bool tmpl__truthy(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_TRUE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false;
    }
}

const char *tmpl__typename(const json_t *v)
{
    if (!v)
        return "undefined";
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "dict";
    case JSON_ARRAY:
        return "list";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "float";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "none";
    }
}

void tmpl__fmt_real(double d, char *out, size_t size)
{
    if (d != d) {
        snprintf(out, size, "nan");
        return;
    }
    if (__builtin_isinf(d)) {
        snprintf(out, size, d < 0 ? "-inf" : "inf");
        return;
    }
    if (d == 0) {
        snprintf(out, size, __builtin_signbit(d) ? "-0.0" : "0.0");
        return;
    }
    /* The shortest digits that read back as `d` (Python's repr), then Python's layout:
     * positional for exponents -4..15, scientific otherwise. */
    char e[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    bool neg = e[0] == '-';
    const char *p = e + neg;
    char dig[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof dig - 1)
            dig[nd++] = *p;
    int exp = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    dig[nd] = '\0';
    char r[64];
    size_t n = 0;
    if (neg)
        r[n++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++)
                r[n++] = (size_t)i < nd ? dig[i] : '0';
            r[n++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++)
                    r[n++] = dig[i];
            else
                r[n++] = '0';
        } else {
            r[n++] = '0';
            r[n++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                r[n++] = '0';
            for (size_t i = 0; i < nd; i++)
                r[n++] = dig[i];
        }
        r[n] = '\0';
    } else {
        r[n++] = dig[0];
        if (nd > 1) {
            r[n++] = '.';
            for (size_t i = 1; i < nd; i++)
                r[n++] = dig[i];
        }
        snprintf(r + n, sizeof r - n, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(out, size, "%s", r);
}

static void json_str(struct buf *b, const char *s, size_t n)
{
    buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            buf_adds(b, "\\\"");
            break;
        case '\\':
            buf_adds(b, "\\\\");
            break;
        case '\n':
            buf_adds(b, "\\n");
            break;
        case '\r':
            buf_adds(b, "\\r");
            break;
        case '\t':
            buf_adds(b, "\\t");
            break;
        case '\b':
            buf_adds(b, "\\b");
            break;
        case '\f':
            buf_adds(b, "\\f");
            break;
        default:
            if (ch < 0x20)
                buf_addf(b, "\\u%04x", ch);
            else
                buf_addc(b, (char)ch);
        }
    }
    buf_addc(b, '"');
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void newline(struct buf *b, int indent, int depth)
{
    buf_addc(b, '\n');
    for (int i = 0; i < indent * depth; i++)
        buf_addc(b, ' ');
}

/* JSON text with Python's separators (", " and ": "), shortest floats; `sort` orders keys,
 * `indent` > 0 pretty-prints. The caller checks b for overflow afterwards. */
static void json_write(struct buf *b, const json_t *v, bool sort, int indent, int depth)
{
    char num[64];
    if (b->len >= b->max)
        return;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        if (!n) {
            buf_adds(b, "{}");
            break;
        }
        const char **keys = xmalloc(n * sizeof *keys);
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item) {
            if (k < n)
                keys[k++] = key;
        }
        if (sort)
            qsort(keys, k, sizeof *keys, cmp_keys);
        buf_addc(b, '{');
        for (size_t i = 0; i < k; i++) {
            if (i)
                buf_adds(b, indent ? "," : ", ");
            if (indent)
                newline(b, indent, depth + 1);
            json_str(b, keys[i], strlen(keys[i]));
            buf_adds(b, ": ");
            json_write(b, json_object_get(v, keys[i]), sort, indent, depth + 1);
        }
        if (indent)
            newline(b, indent, depth);
        buf_addc(b, '}');
        free(keys);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        if (!json_array_size(v)) {
            buf_adds(b, "[]");
            break;
        }
        buf_addc(b, '[');
        json_array_foreach(v, i, item) {
            if (i)
                buf_adds(b, indent ? "," : ", ");
            if (indent)
                newline(b, indent, depth + 1);
            json_write(b, item, sort, indent, depth + 1);
        }
        if (indent)
            newline(b, indent, depth);
        buf_addc(b, ']');
        break;
    }
    case JSON_STRING:
        json_str(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        buf_addf(b, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        tmpl__fmt_real(json_real_value(v), num, sizeof num);
        buf_adds(b, num);
        break;
    case JSON_TRUE:
        buf_adds(b, "true");
        break;
    case JSON_FALSE:
        buf_adds(b, "false");
        break;
    default:
        buf_adds(b, "null");
        break;
    }
}

static int too_long(struct tmpl_ctx *c, size_t pos, const struct buf *b)
{
    return tmpl__fail(c, pos, WEIR_ETOOBIG, "output is too big (limit %zu bytes)", b->max);
}

static int add_json(struct tmpl_ctx *c, size_t pos, const json_t *v, bool sort, int indent,
                    struct buf *b)
{
    size_t before = b->len;
    json_write(b, v, sort, indent, 0);
    if (b->len >= b->max)
        return too_long(c, pos, b);
    return tmpl__charge(c, pos, (b->len - before) / 16, b->len - before);
}

int tmpl__str(struct tmpl_ctx *c, size_t pos, const json_t *v, struct buf *b)
{
    char num[64];
    int rc = 0;
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        rc = buf_add(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        rc = buf_addf(b, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        tmpl__fmt_real(json_real_value(v), num, sizeof num);
        rc = buf_adds(b, num);
        break;
    case JSON_TRUE:
        rc = buf_adds(b, "True");
        break;
    case JSON_FALSE:
        rc = buf_adds(b, "False");
        break;
    case JSON_NULL:
        rc = buf_adds(b, "None");
        break;
    default:
        return add_json(c, pos, v, false, 0, b);
    }
    return rc ? too_long(c, pos, b) : 0;
}

int tmpl__mkstr(struct tmpl_ctx *c, size_t pos, const char *s, size_t len, json_t **out)
{
    if (len > c->max_str)
        return tmpl__fail(c, pos, WEIR_ETOOBIG, "string is too long (limit %zu bytes)", c->max_str);
    int rc = tmpl__charge(c, pos, len / 64, len);
    if (rc)
        return rc;
    *out = json_stringn_nocheck(s, len);
    return 0;
}

int tmpl__mkreal(struct tmpl_ctx *c, size_t pos, double d, json_t **out)
{
    if (!__builtin_isfinite(d))
        return tmpl__fail(c, pos, WEIR_EINVAL, "float result is out of range");
    *out = json_real(d);
    return 0;
}

/* Depth of `v` (1 for scalars), counting every item looked at in *visited (the caller
 * charges them: a big flat list costs its length); stops past `limit`. */
static size_t depth_of(const json_t *v, size_t limit, size_t *visited)
{
    size_t d = 0;
    (*visited)++;
    if (limit == 0)
        return 1;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            (*visited)++;
            if (!json_is_array(x) && !json_is_object(x))
                continue;
            size_t k = depth_of(x, limit - 1, visited);
            if (k > d)
                d = k;
            if (d >= limit)
                break;
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *x;
        json_object_foreach((json_t *)v, key, x) {
            (*visited)++;
            if (!json_is_array(x) && !json_is_object(x))
                continue;
            size_t k = depth_of(x, limit - 1, visited);
            if (k > d)
                d = k;
            if (d >= limit)
                break;
        }
    }
    return d + 1;
}

int tmpl__check_nest(struct tmpl_ctx *c, size_t pos, const json_t *v)
{
    if (!json_is_array(v) && !json_is_object(v))
        return 0;
    size_t visited = 0;
    size_t d = depth_of(v, TMPL_MAX_VALUE_DEPTH, &visited);
    int rc = tmpl__charge(c, pos, visited, 0);
    if (!rc && d >= TMPL_MAX_VALUE_DEPTH)
        rc = tmpl__fail(c, pos, WEIR_ETOOBIG, "value nests too deeply (limit %d)",
                        TMPL_MAX_VALUE_DEPTH);
    return rc;
}

/* floor() without libm: exact for every double. */
static double dfloor(double x)
{
    if (!(x > -4503599627370496.0 && x < 4503599627370496.0))
        return x;
    double t = (double)(long long)x;
    return t > x ? t - 1 : t;
}

size_t tmpl__cost(const json_t *v)
{
    if (json_is_string(v))
        return json_string_length(v) / 16 + 1;
    if (json_is_array(v))
        return json_array_size(v) + 1;
    if (json_is_object(v))
        return json_object_size(v) + 1;
    return 1;
}

static bool is_num(const json_t *v)
{
    return json_is_integer(v) || json_is_real(v);
}

static double num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

static int cmp_num(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        long long x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    double x = num(a), y = num(b);
    return x < y ? -1 : x > y;
}

bool tmpl__equal(struct tmpl_ctx *c, const json_t *a, const json_t *b)
{
    c->steps++;
    if (!a || !b)
        return a == b;
    if (is_num(a) && is_num(b))
        return cmp_num(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!tmpl__equal(c, json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *x;
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_foreach((json_t *)a, key, x) {
            if (!tmpl__equal(c, x, json_object_get(b, key)))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null: same type is equal */
    }
}

static int lower_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return na < nb ? -1 : na > nb;
}

/* Orders two values; `ci` compares strings ignoring ASCII case. */
static int compare(struct tmpl_ctx *c, size_t pos, const json_t *a, const json_t *b, bool ci,
                   int *res)
{
    c->steps++; /* checked by the next tmpl__charge */
    if (is_num(a) && is_num(b)) {
        *res = cmp_num(a, b);
        return 0;
    }
    if (json_is_boolean(a) && json_is_boolean(b)) {
        *res = json_is_true(a) - json_is_true(b);
        return 0;
    }
    if (json_is_string(a) && json_is_string(b)) {
        const char *x = json_string_value(a), *y = json_string_value(b);
        size_t nx = json_string_length(a), ny = json_string_length(b);
        if (ci) {
            *res = lower_cmp(x, nx, y, ny);
        } else {
            int r = memcmp(x, y, nx < ny ? nx : ny);
            *res = r ? (r < 0 ? -1 : 1) : (nx < ny ? -1 : nx > ny);
        }
        return 0;
    }
    if (json_is_array(a) && json_is_array(b)) {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            int rc = compare(c, pos, json_array_get(a, i), json_array_get(b, i), ci, res);
            if (rc || *res)
                return rc;
        }
        *res = na < nb ? -1 : na > nb;
        return 0;
    }
    return tmpl__fail(c, pos, WEIR_EINVAL, "cannot compare %s with %s", tmpl__typename(a),
                      tmpl__typename(b));
}

int tmpl__compare(struct tmpl_ctx *c, size_t pos, const json_t *a, const json_t *b, int *res)
{
    return compare(c, pos, a, b, false, res);
}

static size_t utf8_next(const char *s, size_t n, size_t i)
{
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
        i++;
    return i;
}

int tmpl__to_list(struct tmpl_ctx *c, size_t pos, json_t *v, json_t **out)
{
    if (json_is_array(v)) {
        *out = json_incref(v);
        return 0;
    }
    json_t *r = json_array();
    int rc = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *x;
        rc = tmpl__charge(c, pos, json_object_size(v), json_object_size(v) * 16);
        json_object_foreach(v, key, x) {
            if (rc)
                break;
            json_array_append_new(r, json_string_nocheck(key));
        }
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        rc = tmpl__charge(c, pos, n, n * 16);
        for (size_t i = 0; i < n && !rc;) {
            size_t j = utf8_next(s, n, i);
            json_array_append_new(r, json_stringn_nocheck(s + i, j - i));
            i = j;
        }
    } else {
        rc = tmpl__fail(c, pos, WEIR_EINVAL, "%s is not iterable", tmpl__typename(v));
    }
    if (rc)
        json_decref(r);
    else
        *out = r;
    return rc;
}

/* ---- helpers for filters ---- */

/* str(v) into `b` (a fresh buffer limited to max_str). */
static int to_str(struct tmpl_ctx *c, size_t pos, const json_t *v, struct buf *b)
{
    buf_init(b, c->max_str);
    int rc = tmpl__str(c, pos, v, b);
    if (rc)
        buf_release(b);
    return rc;
}

static int finish_str(struct tmpl_ctx *c, size_t pos, struct buf *b, json_t **out)
{
    int rc = tmpl__mkstr(c, pos, b->s, b->len, out);
    buf_release(b);
    return rc;
}

int tmpl__percent(struct tmpl_ctx *c, size_t pos, const json_t *fmt, json_t *args, json_t **out)
{
    const char *f = json_string_value(fmt);
    size_t n = json_string_length(fmt), next = 0;
    size_t nargs = json_is_array(args) ? json_array_size(args) : 1;
    struct buf b;
    int rc = 0;
    buf_init(&b, c->max_str);
    for (size_t i = 0; i < n && !rc; i++) {
        if (f[i] != '%') {
            rc = buf_addc(&b, f[i]) ? too_long(c, pos, &b) : 0;
            continue;
        }
        /* %[flags][width][.precision]conv, flags from "-+ 0#", numbers at most 2 digits */
        char spec[32]; /* "%" + 7 flags + 2 + "." + 2 + "ll" + conv + NUL fits */
        size_t k = 0;
        spec[k++] = '%';
        i++;
        while (i < n && strchr("-+ 0#", f[i]) && f[i] && k < 8)
            spec[k++] = f[i++];
        for (int d = 0; i < n && f[i] >= '0' && f[i] <= '9' && d < 2; d++)
            spec[k++] = f[i++];
        if (i < n && f[i] == '.') {
            spec[k++] = f[i++];
            for (int d = 0; i < n && f[i] >= '0' && f[i] <= '9' && d < 2; d++)
                spec[k++] = f[i++];
        }
        char conv = i < n ? f[i] : '\0';
        if (conv == '%' && k == 1) {
            rc = buf_addc(&b, '%') ? too_long(c, pos, &b) : 0;
            continue;
        }
        if (!strchr("sdifeEgGxXo", conv) || conv == '\0') {
            rc = tmpl__fail(c, pos, WEIR_EINVAL, "unsupported format character '%c' in %% format",
                            conv ? conv : '?');
            break;
        }
        if (next >= nargs) {
            rc = tmpl__fail(c, pos, WEIR_EINVAL, "not enough arguments for format string");
            break;
        }
        json_t *v = json_is_array(args) ? json_array_get(args, next) : args;
        next++;
        char nb[512];
        nb[0] = '\0';
        /* The spec is assembled here from a fixed set of characters and one conversion, and
         * the argument type is checked to match it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (conv == 's') {
            /* done by hand: the text may be long or contain NUL bytes */
            struct buf sv;
            spec[k] = '\0';
            bool left = strchr(spec, '-') != NULL;
            const char *w = spec + 1;
            while (*w && strchr("-+ 0#", *w))
                w++;
            size_t width = strtoul(w, NULL, 10), prec = (size_t)-1;
            if (strchr(w, '.'))
                prec = strtoul(strchr(w, '.') + 1, NULL, 10);
            if ((rc = to_str(c, pos, v, &sv)))
                break;
            size_t len = sv.len < prec ? sv.len : prec;
            for (size_t p = len; !left && p < width && !rc; p++)
                rc = buf_addc(&b, ' ');
            if (!rc)
                rc = buf_add(&b, sv.s, len);
            for (size_t p = len; left && p < width && !rc; p++)
                rc = buf_addc(&b, ' ');
            buf_release(&sv);
            if (rc)
                rc = too_long(c, pos, &b);
            continue;
        }
        if (!is_num(v) && !json_is_boolean(v)) {
            rc = tmpl__fail(c, pos, WEIR_EINVAL, "%%%c format: a number is required, not %s", conv,
                            tmpl__typename(v));
            break;
        }
        double d = json_is_boolean(v) ? json_is_true(v) : num(v);
        if (strchr("dixXo", conv)) {
            long long iv = json_is_integer(v)            ? json_integer_value(v)
                           : (d > -9.2e18 && d < 9.2e18) ? (long long)d
                                                         : 0;
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = conv == 'i' ? 'd' : conv;
            spec[k] = '\0';
            snprintf(nb, sizeof nb, spec, iv);
        } else {
            spec[k++] = conv;
            spec[k] = '\0';
            snprintf(nb, sizeof nb, spec, d);
        }
#pragma GCC diagnostic pop
        rc = buf_adds(&b, nb) ? too_long(c, pos, &b) : 0;
    }
    if (!rc && next < nargs && json_is_array(args))
        rc =
            tmpl__fail(c, pos, WEIR_EINVAL, "not all arguments converted during string formatting");
    if (!rc)
        rc = tmpl__mkstr(c, pos, b.s, b.len, out);
    buf_release(&b);
    return rc;
}

static int need(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *what, int argi,
                const json_t *v, bool ok)
{
    if (ok)
        return 0;
    if (argi < 0)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' needs %s, not %s", e->name, what,
                          tmpl__typename(v));
    return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': argument %d must be %s, not %s", e->name,
                      argi + 1, what, tmpl__typename(v));
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static char up(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
}

static char low(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
}

enum casing {
    CASE_UPPER,
    CASE_LOWER,
    CASE_CAPITALIZE,
    CASE_TITLE
};

static int f_case(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, enum casing how,
                  json_t **out)
{
    struct buf b;
    int rc = to_str(c, e->pos, in, &b);
    if (rc)
        return rc;
    bool word_start = true;
    for (size_t i = 0; i < b.len; i++) {
        char ch = b.s[i];
        switch (how) {
        case CASE_UPPER:
            ch = up(ch);
            break;
        case CASE_LOWER:
            ch = low(ch);
            break;
        case CASE_CAPITALIZE:
            ch = i == 0 ? up(ch) : low(ch);
            break;
        case CASE_TITLE:
            ch = word_start ? up(ch) : low(ch);
            word_start = is_space(ch) || strchr("-([{<_", ch) != NULL;
            break;
        }
        b.s[i] = ch;
    }
    return finish_str(c, e->pos, &b, out);
}

/* strip/lstrip/rstrip: `chars` NULL means whitespace. */
static int f_strip(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, const json_t *chars,
                   bool left, bool right, json_t **out)
{
    struct buf b;
    int rc =
        need(c, e, "a string", 0, chars, !chars || json_is_string(chars) || json_is_null(chars));
    if (rc || (rc = to_str(c, e->pos, in, &b)))
        return rc;
    const char *set = json_is_string(chars) ? json_string_value(chars) : NULL;
    size_t a = 0, z = b.len;
#define STRIPPABLE(ch) (set ? ((ch) != '\0' && strchr(set, (ch)) != NULL) : is_space(ch))
    while (left && a < z && STRIPPABLE(b.s[a]))
        a++;
    while (right && z > a && STRIPPABLE(b.s[z - 1]))
        z--;
#undef STRIPPABLE
    rc = tmpl__mkstr(c, e->pos, b.s + a, z - a, out);
    buf_release(&b);
    return rc;
}

static int f_replace(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *old,
                     json_t *new, json_t *count, json_t **out)
{
    int rc;
    if ((rc = need(c, e, "a string", 0, old, json_is_string(old))) ||
        (rc = need(c, e, "a string", 1, new, json_is_string(new))) ||
        (rc = need(c, e, "an integer", 2, count, !count || json_is_integer(count))))
        return rc;
    struct buf s, r;
    if ((rc = to_str(c, e->pos, in, &s)))
        return rc;
    buf_init(&r, c->max_str);
    const char *o = json_string_value(old), *nw = json_string_value(new);
    size_t on = json_string_length(old), nn = json_string_length(new);
    long long left = count ? json_integer_value(count) : -1;
    size_t i = 0;
    while (i <= s.len && !rc) {
        const char *hit = NULL;
        if (left != 0) {
            if (on == 0)
                hit = s.s + i; /* Python: an empty pattern matches between every character */
            else
                hit = memmem(s.s + i, s.len - i, o, on);
        }
        if (!hit) {
            rc = buf_add(&r, s.s + i, s.len - i);
            break;
        }
        size_t at = (size_t)(hit - s.s);
        rc = buf_add(&r, s.s + i, at - i);
        if (!rc)
            rc = buf_add(&r, nw, nn);
        if (left > 0)
            left--;
        if (on == 0) {
            if (at >= s.len)
                break;
            size_t j = utf8_next(s.s, s.len, at);
            if (!rc)
                rc = buf_add(&r, s.s + at, j - at);
            i = j;
            if (i == s.len && left != 0 && !rc) {
                rc = buf_add(&r, nw, nn);
                break;
            }
        } else {
            i = at + on;
        }
    }
    buf_release(&s);
    if (rc) {
        buf_release(&r);
        return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "string is too long (limit %zu bytes)",
                          c->max_str);
    }
    return finish_str(c, e->pos, &r, out);
}

static int f_split(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *sep,
                   json_t *maxsplit, json_t **out)
{
    int rc;
    if ((rc = need(c, e, "a string", -1, in, json_is_string(in))) ||
        (rc = need(c, e, "a string", 0, sep, !sep || json_is_null(sep) || json_is_string(sep))) ||
        (rc = need(c, e, "an integer", 1, maxsplit, !maxsplit || json_is_integer(maxsplit))))
        return rc;
    const char *s = json_string_value(in);
    size_t n = json_string_length(in);
    long long left = maxsplit ? json_integer_value(maxsplit) : -1;
    if ((rc = tmpl__charge(c, e->pos, n / 16, n * 2)))
        return rc;
    json_t *r = json_array();
    if (!json_is_string(sep)) {
        size_t i = 0;
        while (i < n) {
            while (i < n && is_space(s[i]))
                i++;
            if (i >= n)
                break;
            size_t j = i;
            if (left == 0)
                j = n;
            while (j < n && !is_space(s[j]))
                j++;
            if (left == 0)
                while (j > i && is_space(s[j - 1]))
                    j--;
            json_array_append_new(r, json_stringn_nocheck(s + i, j - i));
            if (left > 0)
                left--;
            i = j;
        }
    } else {
        const char *p = json_string_value(sep);
        size_t pn = json_string_length(sep);
        if (pn == 0) {
            json_decref(r);
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "'split': empty separator");
        }
        size_t i = 0;
        for (;;) {
            const char *hit = left != 0 ? memmem(s + i, n - i, p, pn) : NULL;
            if (!hit) {
                json_array_append_new(r, json_stringn_nocheck(s + i, n - i));
                break;
            }
            json_array_append_new(r, json_stringn_nocheck(s + i, (size_t)(hit - s) - i));
            i = (size_t)(hit - s) + pn;
            if (left > 0)
                left--;
        }
    }
    *out = r;
    return 0;
}

/* Looks up `attr` in `item` (dotted paths like "a.b"); NULL if missing. */
static json_t *get_attr(json_t *item, const char *attr)
{
    char part[256];
    while (item && *attr) {
        size_t n = strcspn(attr, ".");
        if (n >= sizeof part)
            return NULL;
        memcpy(part, attr, n);
        part[n] = '\0';
        if (json_is_object(item)) {
            item = json_object_get(item, part);
        } else if (json_is_array(item)) {
            char *end = NULL;
            errno = 0;
            long long i = strtoll(part, &end, 10);
            item = (!errno && end && !*end && n && i >= 0) ? json_array_get(item, (size_t)i) : NULL;
        } else {
            return NULL;
        }
        attr += n;
        if (*attr == '.')
            attr++;
    }
    return item;
}

static int item_key(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *item, const json_t *attr,
                    json_t **key)
{
    if (!attr || json_is_null(attr)) {
        *key = item;
        return 0;
    }
    *key = get_attr(item, json_string_value(attr));
    if (!*key)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': item has no attribute '%s'", e->name,
                          json_string_value(attr));
    return 0;
}

struct sort_item {
    json_t *key, *item;
};

struct sorter {
    struct tmpl_ctx *c;
    size_t pos;
    bool ci, rev;
    int rc;
};

static int sort_cmp(struct sorter *s, const struct sort_item *a, const struct sort_item *b)
{
    int r = 0;
    if (!s->rc)
        s->rc = compare(s->c, s->pos, a->key, b->key, s->ci, &r);
    return s->rev ? -r : r;
}

/* Stable merge sort (Python's sort is stable). */
static void merge_sort(struct sorter *s, struct sort_item *v, struct sort_item *tmp, size_t n)
{
    if (n < 2 || s->rc)
        return;
    size_t h = n / 2;
    merge_sort(s, v, tmp, h);
    merge_sort(s, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = sort_cmp(s, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int f_sort(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *rev,
                  json_t *cs, json_t *attr, json_t **out)
{
    json_t *list = NULL;
    int rc = need(c, e, "a string", 2, attr, !attr || json_is_null(attr) || json_is_string(attr));
    if (rc || (rc = tmpl__to_list(c, e->pos, in, &list)))
        return rc;
    size_t n = json_array_size(list);
    struct sort_item *v = xcalloc(n + 1, sizeof *v), *tmp = xcalloc(n + 1, sizeof *tmp);
    for (size_t i = 0; i < n && !rc; i++) {
        v[i].item = json_array_get(list, i);
        rc = item_key(c, e, v[i].item, attr, &v[i].key);
    }
    struct sorter s = { .c = c, .pos = e->pos, .ci = !tmpl__truthy(cs), .rev = tmpl__truthy(rev) };
    if (!rc)
        rc = tmpl__charge(c, e->pos, n, n * 16);
    if (!rc) {
        merge_sort(&s, v, tmp, n);
        rc = s.rc ? s.rc : tmpl__charge(c, e->pos, 0, 0);
    }
    if (!rc) {
        json_t *r = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(r, v[i].item);
        *out = r;
    }
    free(v);
    free(tmp);
    json_decref(list);
    return rc;
}

/* A hash key for a scalar (equal values give equal keys: 1 and 1.0 agree), or false for
 * lists and dicts, which unique() compares one by one. */
static bool scalar_key(const json_t *k, bool ci, struct buf *b)
{
    buf_reset(b);
    if (json_is_string(k)) {
        buf_addc(b, 's');
        const char *s = json_string_value(k);
        for (size_t i = 0; i < json_string_length(k); i++)
            buf_addc(b, ci ? low(s[i]) : s[i]);
        return memchr(b->s, '\0', b->len) == NULL; /* object keys stop at NUL */
    }
    if (json_is_real(k) && dfloor(json_real_value(k)) == json_real_value(k) &&
        json_real_value(k) > -9.2e18 && json_real_value(k) < 9.2e18) {
        buf_addf(b, "i%lld", (long long)json_real_value(k));
        return true;
    }
    if (json_is_real(k)) {
        buf_addf(b, "r%.17g", json_real_value(k));
        return true;
    }
    if (json_is_integer(k)) {
        buf_addf(b, "i%lld", (long long)json_integer_value(k));
        return true;
    }
    if (json_is_boolean(k) || json_is_null(k)) {
        buf_adds(b, json_is_true(k) ? "t" : json_is_false(k) ? "f" : "n");
        return true;
    }
    return false;
}

static int f_unique(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *cs,
                    json_t *attr, json_t **out)
{
    json_t *list = NULL;
    int rc = need(c, e, "a string", 1, attr, !attr || json_is_null(attr) || json_is_string(attr));
    if (rc || (rc = tmpl__to_list(c, e->pos, in, &list)))
        return rc;
    bool ci = !tmpl__truthy(cs);
    json_t *r = json_array();
    json_t *seen_scalars = json_object(); /* hash set of scalar keys */
    json_t *containers = json_array();    /* list and dict keys seen, compared one by one */
    struct buf kb;
    buf_init(&kb, c->max_str + 32);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *k;
        if ((rc = item_key(c, e, item, attr, &k)) ||
            (rc = tmpl__charge(c, e->pos, tmpl__cost(k), 0)))
            break;
        bool seen = false;
        if (scalar_key(k, ci, &kb)) {
            seen = json_object_get(seen_scalars, kb.s) != NULL;
            if (!seen)
                json_object_set_new_nocheck(seen_scalars, kb.s, json_true());
        } else {
            if ((rc = tmpl__charge(c, e->pos, json_array_size(containers), 0)))
                break;
            for (size_t j = 0; j < json_array_size(containers) && !seen; j++)
                seen = tmpl__equal(c, k, json_array_get(containers, j));
            if (!seen)
                json_array_append(containers, k);
        }
        if (!seen)
            json_array_append(r, item);
    }
    buf_release(&kb);
    json_decref(seen_scalars);
    json_decref(containers);
    json_decref(list);
    if (rc)
        json_decref(r);
    else
        *out = r;
    return rc;
}

static int f_join(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *sep,
                  json_t *attr, json_t **out)
{
    json_t *list = NULL;
    int rc = need(c, e, "a string", 1, attr, !attr || json_is_null(attr) || json_is_string(attr));
    if (rc || (rc = tmpl__to_list(c, e->pos, in, &list)))
        return rc;
    struct buf b, s;
    buf_init(&b, c->max_str);
    if (sep && (rc = to_str(c, e->pos, sep, &s)))
        goto out;
    if (!sep)
        buf_init(&s, 16);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *k;
        if (i && buf_add(&b, s.s, s.len)) {
            rc = too_long(c, e->pos, &b);
            break;
        }
        if ((rc = item_key(c, e, item, attr, &k)) || (rc = tmpl__str(c, e->pos, k, &b)))
            break;
    }
    buf_release(&s);
    if (!rc)
        rc = tmpl__mkstr(c, e->pos, b.s, b.len, out);
out:
    buf_release(&b);
    json_decref(list);
    return rc;
}

/* int filter: Jinja's semantics, falling back to `dflt` when the value cannot convert. */
static int f_int(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *dflt,
                 json_t *base, json_t **out)
{
    int rc = need(c, e, "an integer", 1, base, !base || json_is_integer(base));
    if (rc)
        return rc;
    long long b = base ? json_integer_value(base) : 10;
    if (b != 0 && (b < 2 || b > 36))
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'int': base must be 0 or 2..36");
    if (json_is_integer(in)) {
        *out = json_incref(in);
        return 0;
    }
    if (json_is_real(in)) {
        double d = json_real_value(in);
        if (d > -9.2e18 && d < 9.2e18) {
            *out = json_integer((long long)d);
            return 0;
        }
    } else if (json_is_boolean(in)) {
        *out = json_integer(json_is_true(in));
        return 0;
    } else if (json_is_string(in) && json_string_length(in) < 512) {
        char tmp[512];
        size_t k = 0;
        const char *s = json_string_value(in);
        for (size_t i = 0; i < json_string_length(in); i++)
            if (s[i] != '_')
                tmp[k++] = s[i];
        tmp[k] = '\0';
        char *end = NULL;
        errno = 0;
        long long v = strtoll(tmp, &end, (int)b);
        while (end && is_space(*end))
            end++;
        if (!errno && end != tmp && end && !*end) {
            *out = json_integer(v);
            return 0;
        }
        errno = 0;
        double d = strtod(tmp, &end);
        while (end && is_space(*end))
            end++;
        if (b == 10 && !errno && end != tmp && end && !*end && d > -9.2e18 && d < 9.2e18) {
            *out = json_integer((long long)d);
            return 0;
        }
    }
    *out = dflt ? json_incref(dflt) : json_integer(0);
    return 0;
}

static int f_float(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *dflt,
                   json_t **out)
{
    if (is_num(in))
        return tmpl__mkreal(c, e->pos, num(in), out);
    if (json_is_boolean(in))
        return tmpl__mkreal(c, e->pos, json_is_true(in), out);
    if (json_is_string(in) && json_string_length(in) < 512) {
        char *end = NULL;
        const char *s = json_string_value(in);
        errno = 0;
        double d = strtod(s, &end);
        while (end && is_space(*end))
            end++;
        if (!errno && end != s && end && !*end && __builtin_isfinite(d))
            return tmpl__mkreal(c, e->pos, d, out);
    }
    *out = dflt ? json_incref(dflt) : json_real(0.0);
    return 0;
}

static double pow10i(long long n)
{
    double r = 1;
    for (long long i = 0; i < n && i < 400; i++)
        r *= 10;
    return r;
}

static int f_round(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *prec,
                   json_t *method, json_t **out)
{
    int rc;
    if ((rc = need(c, e, "a number", -1, in, is_num(in))) ||
        (rc = need(c, e, "an integer", 0, prec, !prec || json_is_integer(prec))) ||
        (rc = need(c, e, "a string", 1, method, !method || json_is_string(method))))
        return rc;
    const char *m = method ? json_string_value(method) : "common";
    if (strcmp(m, "common") && strcmp(m, "floor") && strcmp(m, "ceil"))
        return tmpl__fail(c, e->pos, WEIR_EINVAL,
                          "'round': method must be 'common', 'floor' or 'ceil', not '%s'", m);
    if (json_is_integer(in)) {
        *out = json_incref(in);
        return 0;
    }
    long long p = prec ? json_integer_value(prec) : 0;
    if (p < 0 || p > 15)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'round': precision must be 0..15");
    double x = json_real_value(in), s = pow10i(p), y = x * s, r;
    if (!__builtin_isfinite(y) || y > 4503599627370496.0 || y < -4503599627370496.0)
        return tmpl__mkreal(c, e->pos, x, out);
    if (!strcmp(m, "floor"))
        r = dfloor(y);
    else if (!strcmp(m, "ceil"))
        r = -dfloor(-y);
    else {
        /* Python's round(): halves go to the even neighbour */
        r = dfloor(y);
        double frac = y - r;
        if (frac > 0.5 || (frac == 0.5 && dfloor(r / 2) * 2 != r))
            r += 1;
    }
    return tmpl__mkreal(c, e->pos, r / s, out);
}

static int f_first_last(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, bool last,
                        json_t **out)
{
    if (json_is_string(in)) {
        const char *s = json_string_value(in);
        size_t n = json_string_length(in);
        if (n) {
            size_t a = 0;
            if (last)
                for (size_t i = 0; i < n; i = utf8_next(s, n, i))
                    a = i;
            return tmpl__mkstr(c, e->pos, s + a, utf8_next(s, n, a) - a, out);
        }
    } else if (json_is_array(in)) {
        size_t n = json_array_size(in);
        if (n) {
            *out = json_incref(json_array_get(in, last ? n - 1 : 0));
            return 0;
        }
    } else {
        return need(c, e, "a list or string", -1, in, false);
    }
    return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' of an empty %s", e->name, tmpl__typename(in));
}

static int f_reverse(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t **out)
{
    if (json_is_string(in)) {
        const char *s = json_string_value(in);
        size_t n = json_string_length(in);
        char *r = xmalloc(n + 1);
        for (size_t i = 0; i < n;) {
            size_t j = utf8_next(s, n, i);
            memcpy(r + n - j, s + i, j - i);
            i = j;
        }
        int rc = tmpl__mkstr(c, e->pos, r, n, out);
        free(r);
        return rc;
    }
    json_t *list = NULL;
    int rc = tmpl__to_list(c, e->pos, in, &list);
    if (rc)
        return rc;
    size_t n = json_array_size(list);
    json_t *r = json_array();
    for (size_t i = n; i-- > 0;)
        json_array_append(r, json_array_get(list, i));
    json_decref(list);
    *out = r;
    return tmpl__charge(c, e->pos, n, n * 16);
}

static int f_length(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t **out)
{
    size_t n;
    if (json_is_string(in)) {
        const char *s = json_string_value(in);
        size_t len = json_string_length(in);
        n = 0;
        for (size_t i = 0; i < len; i++)
            if (((unsigned char)s[i] & 0xc0) != 0x80)
                n++;
    } else if (json_is_array(in)) {
        n = json_array_size(in);
    } else if (json_is_object(in)) {
        n = json_object_size(in);
    } else {
        return need(c, e, "a string, list or dict", -1, in, false);
    }
    *out = json_integer((json_int_t)n);
    return 0;
}

static int f_minmax(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *cs,
                    json_t *attr, bool max, json_t **out)
{
    json_t *list = NULL, *best = NULL, *bestk = NULL;
    int rc = need(c, e, "a string", 1, attr, !attr || json_is_null(attr) || json_is_string(attr));
    if (rc || (rc = tmpl__to_list(c, e->pos, in, &list)))
        return rc;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *k;
        int r = 0;
        if ((rc = item_key(c, e, item, attr, &k)))
            break;
        if (best && (rc = compare(c, e->pos, k, bestk, !tmpl__truthy(cs), &r)))
            break;
        if (!best || (max ? r > 0 : r < 0)) {
            best = item;
            bestk = k;
        }
    }
    if (!rc && !best)
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' of an empty sequence", e->name);
    if (!rc)
        *out = json_incref(best);
    json_decref(list);
    return rc;
}

static int f_sum(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *attr,
                 json_t *start, json_t **out)
{
    json_t *list = NULL;
    int rc = need(c, e, "a string", 0, attr, !attr || json_is_null(attr) || json_is_string(attr));
    if (rc || (rc = tmpl__to_list(c, e->pos, in, &list)))
        return rc;
    long long si = 0;
    double sd = 0;
    bool real = false;
    if (start && (rc = need(c, e, "a number", 1, start, is_num(start))))
        goto out;
    if (start && json_is_real(start)) {
        real = true;
        sd = json_real_value(start);
    } else if (start) {
        si = json_integer_value(start);
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *k;
        if ((rc = item_key(c, e, item, attr, &k)))
            break;
        if (!is_num(k)) {
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'sum' needs numbers, not %s",
                            tmpl__typename(k));
            break;
        }
        if (!real && json_is_integer(k)) {
            if (__builtin_add_overflow(si, json_integer_value(k), &si)) {
                rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "integer overflow");
                break;
            }
            continue;
        }
        if (!real) {
            real = true;
            sd = (double)si;
        }
        sd += num(k);
    }
    if (!rc)
        rc = real ? tmpl__mkreal(c, e->pos, sd, out) : (*out = json_integer(si), 0);
out:
    json_decref(list);
    return rc;
}

static int f_items(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, bool sorted,
                   json_t **out)
{
    int rc = need(c, e, "a dict", -1, in, json_is_object(in));
    if (rc || (rc = tmpl__check_nest(c, e->pos, in)))
        return rc;
    size_t n = json_object_size(in);
    if ((rc = tmpl__charge(c, e->pos, n, n * 48)))
        return rc;
    const char **keys = xmalloc((n + 1) * sizeof *keys);
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        if (k < n)
            keys[k++] = key;
    }
    if (sorted)
        qsort(keys, k, sizeof *keys, cmp_keys);
    json_t *r = json_array();
    for (size_t i = 0; i < k; i++) {
        json_t *pair = json_array();
        json_array_append_new(pair, json_string_nocheck(keys[i]));
        json_array_append(pair, json_object_get(in, keys[i]));
        json_array_append_new(r, pair);
    }
    free(keys);
    *out = r;
    return 0;
}

static int f_map(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t *fname,
                 json_t *attr, json_t *dflt, json_t **out)
{
    json_t *list = NULL;
    int rc;
    if ((rc = need(c, e, "a filter name", 0, fname, !fname || json_is_string(fname))) ||
        (rc = need(c, e, "a string", 1, attr, !attr || json_is_string(attr))))
        return rc;
    if (!fname == !attr)
        return tmpl__fail(c, e->pos, WEIR_EINVAL,
                          "'map' needs either a filter name or attribute='name'");
    if ((rc = tmpl__to_list(c, e->pos, in, &list)))
        return rc;
    struct tmpl_expr sub = *e;
    if (fname) {
        sub.name = json_string_value(fname);
        sub.nargs = 0;
        if (!tmpl__has_filter(sub.name) || !strcmp(sub.name, "map")) {
            json_decref(list);
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "unknown filter '%s'", sub.name);
        }
    }
    json_t *r = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *v = NULL;
        if ((rc = tmpl__charge(c, e->pos, 1, 16)))
            break;
        if (fname) {
            rc = tmpl__filter(c, &sub, item, NULL, 0, NULL, &v);
        } else {
            v = get_attr(item, json_string_value(attr));
            if (!v && dflt)
                v = dflt;
            if (v)
                json_incref(v);
            else
                rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'map': item has no attribute '%s'",
                                json_string_value(attr));
        }
        if (rc)
            break;
        json_array_append_new(r, v);
    }
    json_decref(list);
    if (rc)
        json_decref(r);
    else
        *out = r;
    return rc;
}

/* ---- dates (Airflow's macros.ds_add / ds_format) ---- */

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
/* Calendar arithmetic is core/ts.h's; these adapt its types. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    return (long long)ts_days_from_civil((int)y, (int)m, (int)d);
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    int yy, mm, dd;
    ts_civil_from_days((int64_t)z, &yy, &mm, &dd);
    *y = yy;
    *m = (unsigned)mm;
    *d = (unsigned)dd;
}

static bool parse_ds(const char *s, size_t n, long long *days)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    long long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return false;
    *days = days_from_civil(y, m, d);
    return true;
}

static int ds_add(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *ds, json_t *days,
                  json_t **out)
{
    long long z;
    int rc;
    if ((rc = need(c, e, "a date string 'YYYY-MM-DD'", -1, ds, json_is_string(ds))) ||
        (rc = need(c, e, "an integer", 0, days, json_is_integer(days))))
        return rc;
    if (!parse_ds(json_string_value(ds), json_string_length(ds), &z))
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': '%.40s' is not a date 'YYYY-MM-DD'",
                          e->name, json_string_value(ds));
    long long n = json_integer_value(days);
    if (n < -3000000 || n > 3000000)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': %lld days is out of range", e->name, n);
    long long y;
    unsigned m, d;
    civil_from_days(z + n, &y, &m, &d);
    if (y < 1 || y > 9999)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': the result is outside years 1..9999",
                          e->name);
    char buf[32];
    snprintf(buf, sizeof buf, "%04lld-%02u-%02u", y, m, d);
    *out = json_string(buf);
    return 0;
}

static bool is_digit2(const char *s)
{
    return s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9';
}

/* strftime of a date whose year, month and day are set (weekday and day of year are
 * derived here: strptime need not fill them). */
static int format_tm(struct tmpl_ctx *c, const struct tmpl_expr *e, struct tm *tm,
                     const json_t *fmt, json_t **out)
{
    long long z = days_from_civil((long long)tm->tm_year + 1900, (unsigned)tm->tm_mon + 1,
                                  (unsigned)tm->tm_mday);
    tm->tm_wday = (int)(((z % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    tm->tm_yday = (int)(z - days_from_civil((long long)tm->tm_year + 1900, 1, 1));
    char buf[512];
    /* The format comes from the template by design (Airflow's ds_format); strftime only
     * reads `tm` and writes at most sizeof buf bytes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(buf, sizeof buf, json_string_value(fmt), tm);
#pragma GCC diagnostic pop
    if (n == 0 && json_string_length(fmt) > 0)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': output format gives no text or too much",
                          e->name);
    return tmpl__mkstr(c, e->pos, buf, n, out);
}

static int ds_format(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *ds, json_t *infmt,
                     json_t *outfmt, json_t **out)
{
    int rc;
    if ((rc = need(c, e, "a string", -1, ds, json_is_string(ds))) ||
        (rc = need(c, e, "a format string", 0, infmt, json_is_string(infmt))) ||
        (rc = need(c, e, "a format string", 1, outfmt, json_is_string(outfmt))))
        return rc;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = 1;
    const char *end = strptime(json_string_value(ds), json_string_value(infmt), &tm);
    if (!end || *end)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': '%.40s' does not match format '%.40s'",
                          e->name, json_string_value(ds), json_string_value(infmt));
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s': bad date", e->name);
    return format_tm(c, e, &tm, outfmt, out);
}

/* Parses an ISO 8601 date or timestamp as the task runner writes them: "YYYY-MM-DD",
 * optionally "THH:MM[:SS[.ffffff]]" and "Z" or "+HH:MM". The time stays as written (no
 * time zone conversion); the offset goes to tm_gmtoff for %z. */
static bool parse_iso(const char *s, size_t n, struct tm *tm)
{
    long long z;
    memset(tm, 0, sizeof *tm);
    if (n < 10 || !parse_ds(s, 10, &z))
        return false;
    tm->tm_year =
        (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm->tm_mon = (s[5] - '0') * 10 + (s[6] - '0') - 1;
    tm->tm_mday = (s[8] - '0') * 10 + (s[9] - '0');
    size_t i = 10;
#define D2(k) (i + (k) + 1 < n && is_digit2(s + i + (k)))
#define V2(k) ((s[i + (k)] - '0') * 10 + (s[i + (k) + 1] - '0'))
    if (i < n && (s[i] == 'T' || s[i] == ' ')) {
        i++;
        if (!D2(0) || i + 2 >= n || s[i + 2] != ':' || !D2(3))
            return false;
        tm->tm_hour = V2(0);
        tm->tm_min = V2(3);
        i += 5;
        if (i < n && s[i] == ':') {
            i++;
            if (!D2(0))
                return false;
            tm->tm_sec = V2(0);
            i += 2;
            if (i < n && s[i] == '.') {
                i++;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            }
        }
        if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
            return false;
        if (i < n && s[i] == 'Z') {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int sign = s[i] == '-' ? -1 : 1;
            i++;
            if (!D2(0))
                return false;
            int h = V2(0), m = 0;
            i += 2;
            if (i < n && s[i] == ':')
                i++;
            if (D2(0)) {
                m = V2(0);
                i += 2;
            }
            if (h > 23 || m > 59)
                return false;
            tm->tm_gmtoff = (long)sign * (h * 3600L + m * 60L);
        }
    }
#undef D2
#undef V2
    tm->tm_zone = tm->tm_gmtoff == 0 ? "UTC" : "";
    return i == n;
}

static int f_strftime(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *ts, json_t *fmt,
                      json_t **out)
{
    struct tm tm;
    int rc;
    if ((rc = need(c, e, "a date or timestamp string", -1, ts, json_is_string(ts))) ||
        (rc = need(c, e, "a format string", 0, fmt, json_is_string(fmt))))
        return rc;
    if (!parse_iso(json_string_value(ts), json_string_length(ts), &tm))
        return tmpl__fail(c, e->pos, WEIR_EINVAL,
                          "'%s': '%.40s' is not an ISO 8601 date or timestamp", e->name,
                          json_string_value(ts));
    return format_tm(c, e, &tm, fmt, out);
}

/* ---- filter table ---- */

enum fid {
    F_UPPER,
    F_LOWER,
    F_TITLE,
    F_CAPITALIZE,
    F_TRIM,
    F_REPLACE,
    F_DEFAULT,
    F_LENGTH,
    F_JOIN,
    F_FIRST,
    F_LAST,
    F_INT,
    F_FLOAT,
    F_STRING,
    F_TOJSON,
    F_ABS,
    F_ROUND,
    F_LIST,
    F_SORT,
    F_REVERSE,
    F_UNIQUE,
    F_DS_ADD,
    F_DS_FORMAT,
    F_SAFE,
    F_MIN,
    F_MAX,
    F_SUM,
    F_DICTSORT,
    F_ITEMS,
    F_MAP,
    F_SPLIT,
    F_STRFTIME,
    F_FORMAT,
};

struct filter_def {
    const char *name;
    enum fid id;
    int nreq;
    const char *params[4];
};

static const struct filter_def filters[] = {
    { "upper", F_UPPER, 0, { NULL } },
    { "lower", F_LOWER, 0, { NULL } },
    { "title", F_TITLE, 0, { NULL } },
    { "capitalize", F_CAPITALIZE, 0, { NULL } },
    { "trim", F_TRIM, 0, { "chars" } },
    { "replace", F_REPLACE, 2, { "old", "new", "count" } },
    { "default", F_DEFAULT, 0, { "default_value", "boolean" } },
    { "d", F_DEFAULT, 0, { "default_value", "boolean" } },
    { "length", F_LENGTH, 0, { NULL } },
    { "count", F_LENGTH, 0, { NULL } },
    { "join", F_JOIN, 0, { "d", "attribute" } },
    { "first", F_FIRST, 0, { NULL } },
    { "last", F_LAST, 0, { NULL } },
    { "int", F_INT, 0, { "default", "base" } },
    { "float", F_FLOAT, 0, { "default" } },
    { "string", F_STRING, 0, { NULL } },
    { "tojson", F_TOJSON, 0, { "indent" } },
    { "abs", F_ABS, 0, { NULL } },
    { "round", F_ROUND, 0, { "precision", "method" } },
    { "list", F_LIST, 0, { NULL } },
    { "sort", F_SORT, 0, { "reverse", "case_sensitive", "attribute" } },
    { "reverse", F_REVERSE, 0, { NULL } },
    { "unique", F_UNIQUE, 0, { "case_sensitive", "attribute" } },
    { "ds_add", F_DS_ADD, 1, { "days" } },
    { "ds_format", F_DS_FORMAT, 2, { "input_format", "output_format" } },
    { "safe", F_SAFE, 0, { NULL } },
    { "min", F_MIN, 0, { "case_sensitive", "attribute" } },
    { "max", F_MAX, 0, { "case_sensitive", "attribute" } },
    { "sum", F_SUM, 0, { "attribute", "start" } },
    { "dictsort", F_DICTSORT, 0, { NULL } },
    { "items", F_ITEMS, 0, { NULL } },
    { "map", F_MAP, 0, { "filter", "attribute", "default" } },
    { "split", F_SPLIT, 0, { "sep", "maxsplit" } },
    { "strftime", F_STRFTIME, 1, { "format" } },
    { "format", F_FORMAT, 0, { NULL } },
};

static const struct filter_def *find_filter(const char *name)
{
    for (size_t i = 0; i < WEIR_ARRAY_LEN(filters); i++)
        if (!strcmp(filters[i].name, name))
            return &filters[i];
    return NULL;
}

bool tmpl__has_filter(const char *name)
{
    return find_filter(name) != NULL;
}

/* Binds positional and keyword arguments to the parameters of `def` in `a`. */
static int bind_args(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *what,
                     const char *const *params, int nreq, json_t **argv, size_t argc,
                     const char **kw, json_t **a)
{
    size_t np = 0;
    while (np < 4 && params[np])
        np++;
    for (size_t i = 0; i < argc; i++) {
        size_t slot = i;
        if (kw && kw[i]) {
            for (slot = 0; slot < np && strcmp(params[slot], kw[i]); slot++)
                ;
            if (slot == np)
                return tmpl__fail(c, e->pos, WEIR_EINVAL, "%s '%s' has no argument '%s'", what,
                                  e->name, kw[i]);
        } else if (i >= np) {
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "%s '%s' takes at most %zu arguments", what,
                              e->name, np);
        }
        if (a[slot])
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "%s '%s': argument '%s' given twice", what,
                              e->name, params[slot]);
        a[slot] = argv[i];
    }
    for (int i = 0; i < nreq; i++)
        if (!a[i])
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "%s '%s' needs %d argument%s", what, e->name,
                              nreq, nreq == 1 ? "" : "s");
    return 0;
}

int tmpl__filter(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t **argv,
                 size_t argc, const char **kwnames, json_t **out)
{
    const struct filter_def *f = find_filter(e->name);
    json_t *a[4] = { NULL, NULL, NULL, NULL };
    struct buf b;
    if (!f)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "unknown filter '%s'", e->name);
    if (f->id == F_FORMAT) {
        /* '%s-%s' | format(a, b): any number of positional arguments */
        int rc = need(c, e, "a format string", -1, in, json_is_string(in));
        for (size_t i = 0; !rc && kwnames && i < argc; i++)
            if (kwnames[i])
                rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "filter 'format' takes no keywords");
        if (rc)
            return rc;
        json_t *args = json_array();
        for (size_t i = 0; i < argc; i++)
            json_array_append(args, argv[i]);
        rc = tmpl__percent(c, e->pos, in, args, out);
        json_decref(args);
        return rc;
    }
    int rc = bind_args(c, e, "filter", f->params, f->nreq, argv, argc, kwnames, a);
    if (rc || (rc = tmpl__charge(c, e->pos, tmpl__cost(in), 0)))
        return rc;
    if (!in && f->id != F_DEFAULT)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "undefined value passed to '%s'", e->name);
    switch (f->id) {
    case F_UPPER:
        return f_case(c, e, in, CASE_UPPER, out);
    case F_LOWER:
        return f_case(c, e, in, CASE_LOWER, out);
    case F_TITLE:
        return f_case(c, e, in, CASE_TITLE, out);
    case F_CAPITALIZE:
        return f_case(c, e, in, CASE_CAPITALIZE, out);
    case F_TRIM:
        return f_strip(c, e, in, a[0], true, true, out);
    case F_REPLACE:
        return f_replace(c, e, in, a[0], a[1], a[2], out);
    case F_DEFAULT:
        if (!in || (a[1] && tmpl__truthy(a[1]) && !tmpl__truthy(in)))
            *out = a[0] ? json_incref(a[0]) : json_string("");
        else
            *out = json_incref(in);
        return 0;
    case F_LENGTH:
        return f_length(c, e, in, out);
    case F_JOIN:
        return f_join(c, e, in, a[0], a[1], out);
    case F_FIRST:
        return f_first_last(c, e, in, false, out);
    case F_LAST:
        return f_first_last(c, e, in, true, out);
    case F_INT:
        return f_int(c, e, in, a[0], a[1], out);
    case F_FLOAT:
        return f_float(c, e, in, a[0], out);
    case F_STRING:
        if (json_is_string(in)) {
            *out = json_incref(in);
            return 0;
        }
        if ((rc = to_str(c, e->pos, in, &b)))
            return rc;
        return finish_str(c, e->pos, &b, out);
    case F_TOJSON: {
        if ((rc = need(c, e, "an integer", 0, a[0],
                       !a[0] || json_is_null(a[0]) || json_is_integer(a[0]))))
            return rc;
        long long ind = json_is_integer(a[0]) ? json_integer_value(a[0]) : 0;
        if (ind < 0 || ind > 16)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "'tojson': indent must be 0..16");
        buf_init(&b, c->max_str);
        if ((rc = add_json(c, e->pos, in, true, (int)ind, &b))) {
            buf_release(&b);
            return rc;
        }
        return finish_str(c, e->pos, &b, out);
    }
    case F_ABS:
        if ((rc = need(c, e, "a number", -1, in, is_num(in))))
            return rc;
        if (json_is_integer(in)) {
            long long v = json_integer_value(in);
            if (v == INT64_MIN)
                return tmpl__fail(c, e->pos, WEIR_EINVAL, "integer overflow");
            *out = json_integer(v < 0 ? -v : v);
            return 0;
        }
        return tmpl__mkreal(
            c, e->pos, json_real_value(in) < 0 ? -json_real_value(in) : json_real_value(in), out);
    case F_ROUND:
        return f_round(c, e, in, a[0], a[1], out);
    case F_LIST:
        return tmpl__to_list(c, e->pos, in, out);
    case F_SORT:
        return f_sort(c, e, in, a[0], a[1], a[2], out);
    case F_REVERSE:
        return f_reverse(c, e, in, out);
    case F_UNIQUE:
        return f_unique(c, e, in, a[0], a[1], out);
    case F_DS_ADD:
        return ds_add(c, e, in, a[0], out);
    case F_DS_FORMAT:
        return ds_format(c, e, in, a[0], a[1], out);
    case F_SAFE:
        *out = json_incref(in);
        return 0;
    case F_MIN:
        return f_minmax(c, e, in, a[0], a[1], false, out);
    case F_MAX:
        return f_minmax(c, e, in, a[0], a[1], true, out);
    case F_SUM:
        return f_sum(c, e, in, a[0], a[1], out);
    case F_DICTSORT:
        return f_items(c, e, in, true, out);
    case F_ITEMS:
        return f_items(c, e, in, false, out);
    case F_MAP:
        return f_map(c, e, in, a[0], a[1], a[2], out);
    case F_SPLIT:
        return f_split(c, e, in, a[0], a[1], out);
    case F_STRFTIME:
        return f_strftime(c, e, in, a[0], out);
    case F_FORMAT:
        break; /* handled above */
    }
    return tmpl__fail(c, e->pos, WEIR_EINTERNAL, "filter '%s' is not implemented", e->name);
}

/* ---- tests ---- */

static const char *const tests[] = {
    "defined", "undefined", "none",    "number", "string", "mapping", "sequence", "iterable",
    "boolean", "integer",   "float",   "true",   "false",  "even",    "odd",      "divisibleby",
    "eq",      "ne",        "equalto", "in",     "lower",  "upper",
};

bool tmpl__has_test(const char *name)
{
    for (size_t i = 0; i < WEIR_ARRAY_LEN(tests); i++)
        if (!strcmp(tests[i], name))
            return true;
    return false;
}

static bool str_all(const json_t *v, bool upper)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0; i < n; i++)
        if (upper ? (s[i] >= 'a' && s[i] <= 'z') : (s[i] >= 'A' && s[i] <= 'Z'))
            return false;
    return json_is_string(v);
}

int tmpl__test(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *in, json_t **argv,
               size_t argc, bool *res)
{
    const char *t = e->name;
    size_t want = (!strcmp(t, "divisibleby") || !strcmp(t, "eq") || !strcmp(t, "ne") ||
                   !strcmp(t, "equalto") || !strcmp(t, "in"))
                      ? 1
                      : 0;
    if (argc != want)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "test '%s' takes %zu argument%s", t, want,
                          want == 1 ? "" : "s");
    int rc = tmpl__charge(c, e->pos, tmpl__cost(in) + (argc ? tmpl__cost(argv[0]) : 0), 0);
    if (rc)
        return rc;
    if (!strcmp(t, "defined") || !strcmp(t, "undefined")) {
        *res = (in != NULL) == !strcmp(t, "defined");
        return 0;
    }
    if (!strcmp(t, "none"))
        *res = json_is_null(in);
    else if (!strcmp(t, "number"))
        *res = is_num(in);
    else if (!strcmp(t, "string"))
        *res = json_is_string(in);
    else if (!strcmp(t, "mapping"))
        *res = json_is_object(in);
    else if (!strcmp(t, "sequence") || !strcmp(t, "iterable"))
        *res = json_is_array(in) || json_is_string(in) || json_is_object(in);
    else if (!strcmp(t, "boolean"))
        *res = json_is_boolean(in);
    else if (!strcmp(t, "integer"))
        *res = json_is_integer(in);
    else if (!strcmp(t, "float"))
        *res = json_is_real(in);
    else if (!strcmp(t, "true"))
        *res = json_is_true(in);
    else if (!strcmp(t, "false"))
        *res = json_is_false(in);
    else if (!strcmp(t, "eq") || !strcmp(t, "equalto"))
        *res = tmpl__equal(c, in, argv[0]);
    else if (!strcmp(t, "ne"))
        *res = !tmpl__equal(c, in, argv[0]);
    else if (!strcmp(t, "lower"))
        *res = str_all(in, false);
    else if (!strcmp(t, "upper"))
        *res = str_all(in, true);
    else if (!strcmp(t, "in")) {
        json_t *seq = argv[0];
        *res = false;
        if (json_is_array(seq)) {
            for (size_t i = 0; i < json_array_size(seq) && !*res; i++)
                *res = tmpl__equal(c, in, json_array_get(seq, i));
            return tmpl__charge(c, e->pos, json_array_size(seq), 0);
        } else if (json_is_object(seq)) {
            *res = json_is_string(in) && json_object_get(seq, json_string_value(in));
        } else if (json_is_string(seq) && json_is_string(in)) {
            *res = memmem(json_string_value(seq), json_string_length(seq), json_string_value(in),
                          json_string_length(in)) != NULL;
        } else {
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "test 'in' needs a list, dict or string");
        }
    } else {
        /* even, odd, divisibleby */
        if (!json_is_integer(in))
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "test '%s' needs an integer, not %s", t,
                              tmpl__typename(in));
        long long v = json_integer_value(in);
        if (!strcmp(t, "divisibleby")) {
            if (!json_is_integer(argv[0]) || json_integer_value(argv[0]) == 0)
                return tmpl__fail(c, e->pos, WEIR_EINVAL,
                                  "test 'divisibleby' needs a non-zero integer");
            long long d = json_integer_value(argv[0]);
            *res = d == -1 || v % d == 0;
        } else {
            *res = (v % 2 == 0) == !strcmp(t, "even");
        }
    }
    return 0;
}

/* ---- methods and functions ---- */

int tmpl__method(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *obj, const char *name,
                 json_t **argv, size_t argc, json_t **out)
{
    struct tmpl_expr sub = *e;
    sub.name = name;
    int rc = tmpl__charge(c, e->pos, tmpl__cost(obj), 0);
    if (rc)
        return rc;
#define ARGS(lo, hi)                                                                          \
    do {                                                                                      \
        if ((int)argc < (lo) || (int)argc > (hi))                                             \
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "method '%s' takes %d to %d arguments", \
                              name, (lo), (hi));                                              \
    } while (0)
    json_t *a0 = argc > 0 ? argv[0] : NULL, *a1 = argc > 1 ? argv[1] : NULL;
    json_t *a2 = argc > 2 ? argv[2] : NULL;
    if (json_is_string(obj)) {
        if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") ||
            !strcmp(name, "capitalize")) {
            ARGS(0, 0);
            enum casing how = name[0] == 'u'   ? CASE_UPPER
                              : name[0] == 'l' ? CASE_LOWER
                              : name[0] == 't' ? CASE_TITLE
                                               : CASE_CAPITALIZE;
            rc = f_case(c, &sub, obj, how, out);
        } else if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
            ARGS(0, 1);
            rc = f_strip(c, &sub, obj, a0, name[0] != 'r', name[0] != 'l', out);
        } else if (!strcmp(name, "replace")) {
            ARGS(2, 3);
            rc = f_replace(c, &sub, obj, a0, a1, a2, out);
        } else if (!strcmp(name, "split")) {
            ARGS(0, 2);
            rc = f_split(c, &sub, obj, a0, a1, out);
        } else if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            ARGS(1, 1);
            if ((rc = need(c, &sub, "a string", 0, a0, json_is_string(a0))))
                return rc;
            size_t n = json_string_length(obj), k = json_string_length(a0);
            const char *s = json_string_value(obj);
            bool r = k <= n && !memcmp(name[0] == 's' ? s : s + n - k, json_string_value(a0), k);
            *out = json_boolean(r);
            rc = 0;
        } else if (!strcmp(name, "strftime")) {
            /* logical_date.strftime('%Y') as with Airflow's pendulum datetimes */
            ARGS(1, 1);
            rc = f_strftime(c, &sub, obj, a0, out);
        } else if (!strcmp(name, "join")) {
            ARGS(1, 1);
            rc = f_join(c, &sub, a0, obj, NULL, out);
        } else {
            return 0;
        }
        return rc < 0 ? rc : 1;
    }
    if (json_is_object(obj)) {
        if (!strcmp(name, "items") || !strcmp(name, "keys") || !strcmp(name, "values")) {
            ARGS(0, 0);
            if (name[0] == 'i') {
                rc = f_items(c, &sub, obj, false, out);
            } else {
                json_t *r = json_array();
                const char *key;
                json_t *v;
                rc = tmpl__charge(c, e->pos, json_object_size(obj), json_object_size(obj) * 16);
                json_object_foreach(obj, key, v) {
                    json_array_append_new(r, name[0] == 'k' ? json_string_nocheck(key)
                                                            : json_incref(v));
                }
                if (rc)
                    json_decref(r);
                else
                    *out = r;
            }
            return rc < 0 ? rc : 1;
        }
        if (!strcmp(name, "cycle") && json_is_integer(json_object_get(obj, "index0"))) {
            /* loop.cycle('odd', 'even') */
            if (argc == 0)
                return tmpl__fail(c, e->pos, WEIR_EINVAL, "loop.cycle() needs arguments");
            long long i = json_integer_value(json_object_get(obj, "index0"));
            *out = json_incref(argv[(size_t)(i < 0 ? 0 : i) % argc]);
            return 1;
        }
        if (!strcmp(name, "get")) {
            ARGS(1, 2);
            json_t *v = json_is_string(a0) ? json_object_get(obj, json_string_value(a0)) : NULL;
            *out = json_incref(v ? v : a1 ? a1 : json_null());
            return 1;
        }
    }
#undef ARGS
    return 0;
}

int tmpl__builtin(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *name, json_t **argv,
                  size_t argc, json_t **out)
{
    struct tmpl_expr sub = *e;
    sub.name = name;
    int rc;
    if (!strcmp(name, "range")) {
        long long v[3] = { 0, 0, 1 };
        if (argc < 1 || argc > 3)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "range() takes 1 to 3 arguments");
        for (size_t i = 0; i < argc; i++) {
            if (!json_is_integer(argv[i]))
                return tmpl__fail(c, e->pos, WEIR_EINVAL, "range() needs integers, not %s",
                                  tmpl__typename(argv[i]));
            v[argc == 1 ? 1 : i] = json_integer_value(argv[i]);
        }
        if (v[2] == 0)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "range() step must not be zero");
        /* count without overflow */
        double span = v[2] > 0 ? ((double)v[1] - (double)v[0]) : ((double)v[0] - (double)v[1]);
        double step = v[2] > 0 ? (double)v[2] : -(double)v[2];
        double cnt = span <= 0 ? 0 : (span + step - 1) / step;
        if (cnt > (double)TMPL_MAX_ITEMS)
            return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "range() is too long (limit %zu items)",
                              TMPL_MAX_ITEMS);
        size_t n = (size_t)cnt;
        if ((rc = tmpl__charge(c, e->pos, n, n * 16)))
            return rc;
        json_t *r = json_array();
        long long x = v[0];
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(r, json_integer(x));
            if (i + 1 < n)
                x += v[2];
        }
        *out = r;
        return 1;
    }
    if (!strcmp(name, "ds_add")) {
        if (argc != 2)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "ds_add() takes 2 arguments (ds, days)");
        rc = ds_add(c, &sub, argv[0], argv[1], out);
        return rc < 0 ? rc : 1;
    }
    if (!strcmp(name, "ds_format")) {
        if (argc != 3)
            return tmpl__fail(c, e->pos, WEIR_EINVAL,
                              "ds_format() takes 3 arguments (ds, input_format, output_format)");
        rc = ds_format(c, &sub, argv[0], argv[1], argv[2], out);
        return rc < 0 ? rc : 1;
    }
    return 0;
}
