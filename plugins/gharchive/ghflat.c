/* plugins/gharchive/ghflat.c - gzip -> lines -> flattened GH Archive rows (see ghflat.h).
 *
 * Why a hand-written extractor: building a jansson tree for every event (objects, hash
 * tables, a string per value) and dumping the payload back to text costs several times
 * what inflating the line does, and the payload is most of the bytes. The extractor
 * walks the line once, validating it exactly as strictly as jansson's parser (the unit
 * tests hold both to the same answers), records where the wanted values are, and copies
 * their original bytes into the row; the payload is copied once more, escaped into a
 * string. Anything unusual falls back to jansson, so the fast path may be incomplete but
 * never different.
 *
 * Memory: the inflate window and output buffer, the carried partial line (bounded by
 * max_line) and the row buffer, which is flushed to `write` every OUT_FLUSH bytes. */
#include "ghflat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ZOUT_CAP  (256u << 10)
#define OUT_FLUSH (1u << 20)
#define MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef unsigned char uchar;

/* Set by the scanner when jansson might judge a line differently: a number that could
 * overflow jansson's integer or double, nesting deeper than its limit, an escaped object
 * key (jansson refuses NUL in keys). The line then takes the jansson path. Per thread, and
 * reset by extract(). */
static _Thread_local bool sc_slow;

/* ---- buffers ------------------------------------------------------------------------- */

static int buf_reserve(struct ghf_buf *b, size_t extra)
{
    if (b->max && b->len + extra > b->max)
        return -1;
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int ghf_buf_add(struct ghf_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void ghf_buf_release(struct ghf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- the validating scanner ---------------------------------------------------------- */

/* Character classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control (invalid),
 * 4 a UTF-8 lead byte to check. */
static uchar str_class[256];

static void init_tables(void)
{
    if (str_class['"'])
        return;
    for (int c = 0; c < 0x20; c++)
        str_class[c] = 3;
    for (int c = 0x80; c < 0x100; c++)
        str_class[c] = 4;
    str_class['\\'] = 2;
    str_class['"'] = 1;
}

/* SWAR (8 bytes at a time): a mask with the high bit set in the first byte of `v` (in
 * memory order) that needs attention, possibly also in later ones. The subtraction tricks
 * flag every true match; a borrow can only add false flags *above* a true match, so the
 * lowest flag is always exact, and that is the only one used. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define SWAR  (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

static inline uint64_t has_zero(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

/* '"', '\\' or a control byte (< 0x20) */
static inline uint64_t esc_mask(uint64_t v)
{
    return has_zero(v ^ (ONES * '"')) | has_zero(v ^ (ONES * '\\')) |
           ((v - ONES * 0x20) & ~v & HIGHS);
}

/* the same, or a byte >= 0x80 (UTF-8 to validate) */
static inline uint64_t str_mask(uint64_t v)
{
    return esc_mask(v) | (v & HIGHS);
}

/* Skips plain string bytes (str_class 0) from p. */
static inline const uchar *skip_plain(const uchar *p, const uchar *e)
{
#if SWAR
    while (e - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t m = str_mask(v);
        if (m)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e && str_class[*p] == 0)
        p++;
    return p;
}

static inline const uchar *ws(const uchar *p, const uchar *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex4(const uchar *p, const uchar *e, unsigned *v)
{
    if (e - p < 4)
        return -1;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) {
        uchar c = p[i];
        r <<= 4;
        if (c >= '0' && c <= '9')
            r |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            r |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            r |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *v = r;
    return 0;
}

/* Validates one UTF-8 sequence starting at p (a byte >= 0x80) as jansson does: no
 * overlong forms, no surrogates, nothing above U+10FFFF. Returns its end or NULL. */
static const uchar *utf8_seq(const uchar *p, const uchar *e)
{
    uchar c = *p;
    int n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return NULL;
    }
    if (e - p <= n)
        return NULL;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return NULL;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return NULL;
    return p + n + 1;
}

/* p at an opening quote. Returns the byte after the closing quote, or NULL when the
 * string is invalid. *esc is set when it holds a backslash escape. */
static const uchar *scan_string(const uchar *p, const uchar *e, bool *esc)
{
    p++;
    for (;;) {
        p = skip_plain(p, e);
        if (p >= e)
            return NULL;
        switch (str_class[*p]) {
        case 1:
            return p + 1;
        case 2: {
            *esc = true;
            if (p + 1 >= e)
                return NULL;
            uchar c = p[1];
            if (c == 'u') {
                unsigned v;
                if (hex4(p + 2, e, &v) < 0)
                    return NULL;
                p += 6;
                if (v >= 0xDC00 && v <= 0xDFFF)
                    return NULL; /* a lone low surrogate */
                if (v >= 0xD800 && v <= 0xDBFF) {
                    unsigned lo;
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, e, &lo) < 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return NULL;
                    p += 6;
                }
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                p += 2;
            } else {
                return NULL;
            }
            break;
        }
        case 3:
            return NULL;
        default:
            p = utf8_seq(p, e);
            if (!p)
                return NULL;
        }
    }
}

static const uchar *scan_number(const uchar *p, const uchar *e)
{
    const uchar *start = p;
    if (p < e && *p == '-')
        p++;
    if (p >= e)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    bool real = false;
    if (p < e && *p == '.') {
        real = true;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return NULL;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    /* 18 digits always fit jansson's json_int_t (int64); long reals may overflow */
    if ((!real && p - start > 18) || p - start > 300)
        sc_slow = true;
    if (p < e && (*p == 'e' || *p == 'E')) {
        sc_slow = true; /* an exponent may overflow a double: let strtod decide */
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return NULL;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    /* jansson 2.14 skips a NUL byte right after a number ({"a":1\0} parses): let it judge */
    if (p < e && *p == '\0')
        sc_slow = true;
    return p;
}

static const uchar *scan_lit(const uchar *p, const uchar *e, const char *lit, size_t n)
{
    if ((size_t)(e - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

static const uchar *scan_value(const uchar *p, const uchar *e, int depth);

static const uchar *scan_object(const uchar *p, const uchar *e, int depth)
{
    if (depth > MAX_DEPTH - 8) {
        sc_slow = true;
        return NULL;
    }
    p = ws(p + 1, e);
    if (p < e && *p == '}')
        return p + 1;
    for (;;) {
        bool esc = false;
        if (p >= e || *p != '"' || !(p = scan_string(p, e, &esc)))
            return NULL;
        if (esc)
            sc_slow = true;
        p = ws(p, e);
        if (p >= e || *p != ':')
            return NULL;
        p = scan_value(ws(p + 1, e), e, depth);
        if (!p)
            return NULL;
        p = ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = ws(p + 1, e);
    }
}

static const uchar *scan_array(const uchar *p, const uchar *e, int depth)
{
    if (depth > MAX_DEPTH - 8) {
        sc_slow = true;
        return NULL;
    }
    p = ws(p + 1, e);
    if (p < e && *p == ']')
        return p + 1;
    for (;;) {
        p = scan_value(p, e, depth);
        if (!p)
            return NULL;
        p = ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == ']')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = ws(p + 1, e);
    }
}

/* p at the first byte of a value (no leading space). Returns its end or NULL. */
static const uchar *scan_value(const uchar *p, const uchar *e, int depth)
{
    if (p >= e)
        return NULL;
    bool esc = false;
    switch (*p) {
    case '"':
        return scan_string(p, e, &esc);
    case '{':
        return scan_object(p, e, depth + 1);
    case '[':
        return scan_array(p, e, depth + 1);
    case 't':
        return scan_lit(p, e, "true", 4);
    case 'f':
        return scan_lit(p, e, "false", 5);
    case 'n':
        return scan_lit(p, e, "null", 4);
    default:
        return scan_number(p, e);
    }
}

/* ---- the extractor ------------------------------------------------------------------- */

struct span {
    const uchar *p; /* NULL: absent */
    size_t n;
};

enum {
    F_ID,
    F_TYPE,
    F_ACTOR_ID,
    F_ACTOR_LOGIN,
    F_REPO_ID,
    F_REPO_NAME,
    F_ORG_LOGIN,
    F_CREATED_AT,
    F_PUBLIC,
    F_PAYLOAD,
    F_COUNT
};

static const char *const col_names[F_COUNT] = {
    "id",        "type",      "actor_id",   "actor_login", "repo_id",
    "repo_name", "org_login", "created_at", "public",      "payload",
};

enum {
    R_ERR = -1,
    R_SLOW = -2
};

static bool key_is(const uchar *k, size_t n, const char *s, size_t sn)
{
    return n == sn && memcmp(k, s, n) == 0;
}

/* Scans the object at p (which must be one, else its value is only validated), storing
 * the spans of keys a and b (either may be NULL) in sa and sb. Returns the end, NULL on
 * invalid JSON, or sets *slow for a key with escapes. */
static const uchar *scan_sub(const uchar *p, const uchar *e, const char *a, struct span *sa,
                             const char *b, struct span *sb, bool *slow)
{
    if (*p != '{')
        return scan_value(p, e, 1);
    p = ws(p + 1, e);
    if (p < e && *p == '}')
        return p + 1;
    size_t an = a ? strlen(a) : 0, bn = b ? strlen(b) : 0;
    for (;;) {
        bool esc = false;
        if (p >= e || *p != '"')
            return NULL;
        const uchar *k = p + 1, *ke = scan_string(p, e, &esc);
        if (!ke)
            return NULL;
        if (esc) {
            *slow = true;
            return NULL;
        }
        size_t kn = (size_t)(ke - 1 - k);
        p = ws(ke, e);
        if (p >= e || *p != ':')
            return NULL;
        const uchar *v = ws(p + 1, e);
        p = scan_value(v, e, 2);
        if (!p)
            return NULL;
        if (a && key_is(k, kn, a, an))
            *sa = (struct span){ v, (size_t)(p - v) };
        else if (b && key_is(k, kn, b, bn))
            *sb = (struct span){ v, (size_t)(p - v) };
        p = ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = ws(p + 1, e);
    }
}

/* Fills f[] from the event line. Returns 0, R_ERR (not a JSON object) or R_SLOW. */
static int extract_inner(const uchar *p, const uchar *e, struct span *f);

static int extract(const uchar *p, const uchar *e, struct span *f)
{
    sc_slow = false;
    int rc = extract_inner(p, e, f);
    return sc_slow ? R_SLOW : rc;
}

static int extract_inner(const uchar *p, const uchar *e, struct span *f)
{
    bool slow = false;
    memset(f, 0, sizeof *f * F_COUNT);
    p = ws(p, e);
    if (p >= e || *p != '{')
        return R_ERR;
    p = ws(p + 1, e);
    if (p < e && *p == '}')
        return ws(p + 1, e) == e ? 0 : R_ERR;
    for (;;) {
        bool esc = false;
        if (p >= e || *p != '"')
            return R_ERR;
        const uchar *k = p + 1, *ke = scan_string(p, e, &esc);
        if (!ke)
            return R_ERR;
        if (esc)
            return R_SLOW;
        size_t kn = (size_t)(ke - 1 - k);
        p = ws(ke, e);
        if (p >= e || *p != ':')
            return R_ERR;
        const uchar *v = ws(p + 1, e);
        int fi = -1;
        struct span *sa = NULL, *sb = NULL;
        const char *a = NULL, *b = NULL;
        switch (kn) {
        case 2:
            if (key_is(k, kn, "id", 2))
                fi = F_ID;
            break;
        case 3:
            if (key_is(k, kn, "org", 3)) {
                a = "login";
                sa = &f[F_ORG_LOGIN];
            }
            break;
        case 4:
            if (key_is(k, kn, "type", 4))
                fi = F_TYPE;
            else if (key_is(k, kn, "repo", 4)) {
                a = "id";
                sa = &f[F_REPO_ID];
                b = "name";
                sb = &f[F_REPO_NAME];
            }
            break;
        case 5:
            if (key_is(k, kn, "actor", 5)) {
                a = "id";
                sa = &f[F_ACTOR_ID];
                b = "login";
                sb = &f[F_ACTOR_LOGIN];
            }
            break;
        case 6:
            if (key_is(k, kn, "public", 6))
                fi = F_PUBLIC;
            break;
        case 7:
            if (key_is(k, kn, "payload", 7))
                fi = F_PAYLOAD;
            break;
        case 10:
            if (key_is(k, kn, "created_at", 10))
                fi = F_CREATED_AT;
            break;
        default:
            break;
        }
        if (sa) {
            /* a repeated key replaces the earlier value, as in jansson */
            *sa = (struct span){ 0 };
            if (sb)
                *sb = (struct span){ 0 };
            p = v < e ? scan_sub(v, e, a, sa, b, sb, &slow) : NULL;
            if (slow)
                return R_SLOW;
        } else {
            p = scan_value(v, e, 1);
            if (p && fi >= 0)
                f[fi] = (struct span){ v, (size_t)(p - v) };
        }
        if (!p)
            return R_ERR;
        p = ws(p, e);
        if (p >= e)
            return R_ERR;
        if (*p == '}')
            return ws(p + 1, e) == e ? 0 : R_ERR;
        if (*p != ',')
            return R_ERR;
        p = ws(p + 1, e);
    }
}

/* Does the type span pass the filter? 1 yes, 0 no, R_SLOW when it needs decoding. */
static int type_ok(const struct span *t, const char *const *types, size_t n_types)
{
    if (!n_types)
        return 1;
    if (!t->p || t->p[0] != '"')
        return 0;
    const uchar *s = t->p + 1;
    size_t n = t->n - 2;
    if (memchr(s, '\\', n))
        return R_SLOW;
    for (size_t i = 0; i < n_types; i++)
        if (strlen(types[i]) == n && memcmp(types[i], s, n) == 0)
            return 1;
    return 0;
}

/* Appends s[0..n) (valid JSON text) escaped as the inside of a JSON string. */
static int add_escaped(struct ghf_buf *b, const uchar *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, n + n / 8 + 16) < 0)
        return -1;
    const uchar *end = s + n;
    while (s < end) {
        const uchar *run = s;
#if SWAR
        while (end - s >= 8) {
            uint64_t v, m;
            memcpy(&v, s, 8);
            if ((m = esc_mask(v))) {
                s += __builtin_ctzll(m) >> 3;
                break;
            }
            s += 8;
        }
#endif
        while (s < end && *s != '"' && *s != '\\' && *s >= 0x20)
            s++;
        size_t rn = (size_t)(s - run);
        if (buf_reserve(b, rn + 6) < 0)
            return -1;
        memcpy(b->p + b->len, run, rn);
        b->len += rn;
        if (s >= end)
            break;
        char *o = b->p + b->len;
        o[0] = '\\';
        if (*s == '"' || *s == '\\') {
            o[1] = (char)*s;
            b->len += 2;
        } else {
            o[1] = 'u';
            o[2] = '0';
            o[3] = '0';
            o[4] = hex[*s >> 4];
            o[5] = hex[*s & 15];
            b->len += 6;
        }
        s++;
    }
    return 0;
}

static int emit_fast(const struct span *f, struct ghf_buf *out)
{
    size_t need = 160 + f[F_PAYLOAD].n;
    for (int i = 0; i < F_PAYLOAD; i++)
        need += f[i].n;
    if (buf_reserve(out, need) < 0)
        return -1;
    char *o = out->p + out->len;
    for (int i = 0; i < F_PAYLOAD; i++) {
        *o++ = i == 0 ? '{' : ',';
        *o++ = '"';
        size_t kn = strlen(col_names[i]);
        memcpy(o, col_names[i], kn);
        o += kn;
        *o++ = '"';
        *o++ = ':';
        if (f[i].p) {
            memcpy(o, f[i].p, f[i].n);
            o += f[i].n;
        } else {
            memcpy(o, "null", 4);
            o += 4;
        }
    }
    memcpy(o, ",\"payload\":", 11);
    o += 11;
    out->len = (size_t)(o - out->p);
    if (f[F_PAYLOAD].p) {
        if (ghf_buf_add(out, "\"", 1) < 0 || add_escaped(out, f[F_PAYLOAD].p, f[F_PAYLOAD].n) < 0)
            return -1;
        return ghf_buf_add(out, "\"}\n", 3);
    }
    return ghf_buf_add(out, "null}\n", 6);
}

/* ---- the jansson reference ----------------------------------------------------------- */

static json_t *sub(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    return json_is_object(v) ? json_object_get(v, b) : NULL;
}

int ghf_flatten_jansson(const char *line, size_t n, const char *const *types, size_t n_types,
                        struct ghf_buf *out)
{
    json_error_t je;
    json_t *root = json_loadb(line, n, JSON_ALLOW_NUL, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    json_t *vals[F_COUNT] = {
        json_object_get(root, "id"),     json_object_get(root, "type"),
        sub(root, "actor", "id"),        sub(root, "actor", "login"),
        sub(root, "repo", "id"),         sub(root, "repo", "name"),
        sub(root, "org", "login"),       json_object_get(root, "created_at"),
        json_object_get(root, "public"), NULL,
    };
    if (n_types) {
        bool ok = false;
        const char *t = json_string_value(vals[F_TYPE]);
        for (size_t i = 0; t && i < n_types && !ok; i++)
            ok = strlen(types[i]) == json_string_length(vals[F_TYPE]) && strcmp(types[i], t) == 0;
        if (!ok) {
            json_decref(root);
            return 0;
        }
    }
    json_t *row = json_object();
    for (int i = 0; i < F_PAYLOAD; i++)
        json_object_set_new(row, col_names[i], vals[i] ? json_incref(vals[i]) : json_null());
    json_t *payload = json_object_get(root, "payload");
    if (payload) {
        size_t pn = json_dumpb(payload, NULL, 0, JSON_ENCODE_ANY | JSON_COMPACT);
        char *pt = malloc(pn ? pn : 1);
        if (pt)
            json_dumpb(payload, pt, pn, JSON_ENCODE_ANY | JSON_COMPACT);
        json_object_set_new(row, "payload", pt ? json_stringn(pt, pn) : NULL);
        free(pt);
    } else {
        json_object_set_new(row, "payload", json_null());
    }
    int rc = -1;
    size_t rn = json_dumpb(row, NULL, 0, JSON_COMPACT);
    if (rn && json_object_size(row) == F_COUNT && buf_reserve(out, rn + 1) == 0) {
        json_dumpb(row, out->p + out->len, rn, JSON_COMPACT);
        out->len += rn;
        out->p[out->len++] = '\n';
        rc = 1;
    }
    json_decref(row);
    json_decref(root);
    return rc;
}

int ghf_flatten_line(const char *line, size_t n, const char *const *types, size_t n_types,
                     struct ghf_buf *out, bool *slow)
{
    struct span f[F_COUNT];
    init_tables();
    if (slow)
        *slow = false;
    int rc = extract((const uchar *)line, (const uchar *)line + n, f);
    if (rc == 0) {
        rc = type_ok(&f[F_TYPE], types, n_types);
        if (rc == 0)
            return 0;
        if (rc == 1)
            return emit_fast(f, out) < 0 ? -1 : 1;
    }
    if (rc == R_ERR)
        return -1;
    if (slow)
        *slow = true;
    return ghf_flatten_jansson(line, n, types, n_types, out);
}

/* ---- the stream ---------------------------------------------------------------------- */

static int fail(struct ghf *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ghf *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return -1;
}

int ghf_init(struct ghf *g, const char *const *types, size_t n_types, size_t max_line,
             uint64_t max_bad, ghf_write_fn write, void *ud)
{
    memset(g, 0, sizeof *g);
    init_tables();
    g->types = types;
    g->n_types = types ? n_types : 0;
    g->max_line = max_line ? max_line : GHF_MAX_LINE_DEFAULT;
    g->max_bad = max_bad;
    g->write = write;
    g->ud = ud;
    g->carry.max = g->max_line;
    g->zout_cap = ZOUT_CAP;
    g->zout = malloc(g->zout_cap);
    if (!g->zout)
        return fail(g, "out of memory");
    if (inflateInit2(&g->zs, 15 + 16) != Z_OK) /* +16: gzip wrapper only */
        return fail(g, "cannot start zlib: %s", g->zs.msg ? g->zs.msg : "error");
    g->z_live = true;
    return 0;
}

int ghf_reset(struct ghf *g)
{
    g->carry.len = 0;
    g->out.len = 0;
    g->row.len = 0;
    g->z_end = false;
    memset(&g->stats, 0, sizeof g->stats);
    g->err[0] = '\0';
    if (g->z_live && inflateReset(&g->zs) != Z_OK)
        return fail(g, "cannot reset zlib");
    return 0;
}

void ghf_release(struct ghf *g)
{
    if (g->z_live)
        inflateEnd(&g->zs);
    free(g->zout);
    ghf_buf_release(&g->carry);
    ghf_buf_release(&g->out);
    ghf_buf_release(&g->row);
    memset(g, 0, sizeof *g);
}

static int flush(struct ghf *g)
{
    if (g->out.len && g->write(g->ud, g->out.p, g->out.len) != 0)
        return fail(g, "cannot write rows");
    g->out.len = 0;
    return 0;
}

static int one_line(struct ghf *g, const char *line, size_t n)
{
    /* blank lines (a trailing "\r\n", an empty last line) are not events */
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == n)
        return 0;
    g->stats.lines++;
    bool slow;
    int rc = ghf_flatten_line(line, n, g->types, g->n_types, &g->out, &slow);
    if (slow)
        g->stats.slow++;
    if (rc > 0) {
        g->stats.rows++;
        if (g->out.len >= OUT_FLUSH)
            return flush(g);
        return 0;
    }
    if (rc == 0) {
        g->stats.filtered++;
        return 0;
    }
    g->stats.bad++;
    if (g->stats.bad > g->max_bad) {
        json_error_t je;
        json_t *j = json_loadb(line, n, JSON_ALLOW_NUL, &je);
        const char *why = j ? "not a JSON object" : je.text;
        json_decref(j);
        return fail(g, "line %llu is not a JSON event: %s", (unsigned long long)g->stats.lines,
                    why);
    }
    return 0;
}

int ghf_feed_text(struct ghf *g, const char *data, size_t n)
{
    const char *p = data, *e = data + n;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl) {
            if (ghf_buf_add(&g->carry, p, (size_t)(e - p)) < 0)
                return fail(g, "line %llu is longer than %zu bytes",
                            (unsigned long long)g->stats.lines + 1, g->max_line);
            return 0;
        }
        int rc;
        if (g->carry.len) {
            if (ghf_buf_add(&g->carry, p, (size_t)(nl - p)) < 0)
                return fail(g, "line %llu is longer than %zu bytes",
                            (unsigned long long)g->stats.lines + 1, g->max_line);
            rc = one_line(g, g->carry.p, g->carry.len);
            g->carry.len = 0;
        } else {
            if ((size_t)(nl - p) > g->max_line)
                return fail(g, "line %llu is longer than %zu bytes",
                            (unsigned long long)g->stats.lines + 1, g->max_line);
            rc = one_line(g, p, (size_t)(nl - p));
        }
        if (rc < 0)
            return -1;
        p = nl + 1;
    }
    return 0;
}

int ghf_feed_gz(struct ghf *g, const void *data, size_t n)
{
    if (!g->z_live)
        return fail(g, "zlib is not ready");
    g->stats.bytes_in += n;
    g->zs.next_in = (Bytef *)(uintptr_t)data; /* zlib does not write through next_in */
    g->zs.avail_in = (uInt)n;
    for (;;) {
        if (g->z_end) {
            if (g->zs.avail_in == 0)
                break;
            /* another gzip member follows (gzip -c a >> f; gzip -c b >> f) */
            if (inflateReset(&g->zs) != Z_OK)
                return fail(g, "cannot reset zlib");
            g->z_end = false;
        }
        g->zs.next_out = g->zout;
        g->zs.avail_out = (uInt)g->zout_cap;
        int rc = inflate(&g->zs, Z_NO_FLUSH);
        size_t got = g->zout_cap - g->zs.avail_out;
        g->stats.bytes_out += got;
        if (got && ghf_feed_text(g, (const char *)g->zout, got) < 0)
            return -1;
        if (rc == Z_STREAM_END) {
            g->z_end = true;
            continue;
        }
        if (rc == Z_BUF_ERROR && g->zs.avail_in == 0)
            break;
        if (rc != Z_OK)
            return fail(g, "corrupt gzip data: %s", g->zs.msg ? g->zs.msg : "inflate failed");
        if (g->zs.avail_in == 0 && g->zs.avail_out != 0)
            break;
    }
    return 0;
}

int ghf_finish(struct ghf *g, bool gz)
{
    if (gz && g->stats.bytes_in == 0)
        return fail(g, "empty gzip data");
    if (gz && !g->z_end)
        return fail(g, "truncated gzip data (%llu bytes): the stream ended inside a member",
                    (unsigned long long)g->stats.bytes_in);
    if (g->carry.len) {
        int rc = one_line(g, g->carry.p, g->carry.len);
        g->carry.len = 0;
        if (rc < 0)
            return -1;
    }
    return flush(g);
}
