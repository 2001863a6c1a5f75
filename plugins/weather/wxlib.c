/* plugins/weather/wxlib.c - places CSV, Open-Meteo URLs, response checks and row
 * flattening for the weather plugin (see wxlib.h). No I/O except wx_places_load. */
#include "wxlib.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void wx_places_release(struct wx_places *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].name);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* One CSV record: fields as malloc'd strings. */
struct rec {
    char *f[32];
    size_t n;
};

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->f[i]);
    r->n = 0;
}

/* Reads the record at *pp; advances past its line end. Returns 1 for a record, 0 at the
 * end, -1 on a syntax error (an unterminated quote, too many fields, no memory). */
static int read_rec(const char **pp, const char *e, struct rec *r, size_t *line)
{
    const char *p = *pp;
    if (p >= e)
        return 0;
    struct ing_buf b = { 0 };
    bool more = true;
    while (more) {
        b.len = 0;
        if (p < e && *p == '"') {
            p++;
            for (;;) {
                if (p >= e) {
                    ing_buf_release(&b);
                    return -1;
                }
                if (*p == '"') {
                    if (p + 1 < e && p[1] == '"') {
                        ing_buf_add(&b, "\"", 1);
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (*p == '\n')
                    (*line)++;
                ing_buf_add(&b, p, 1);
                p++;
            }
            /* anything up to the separator after a closing quote is kept, as most readers do */
        }
        const char *s = p;
        while (p < e && *p != ',' && *p != '\n' && *p != '\r')
            p++;
        ing_buf_add(&b, s, (size_t)(p - s));
        ing_buf_add(&b, "", 0);
        if (b.oom || r->n >= sizeof r->f / sizeof r->f[0]) {
            ing_buf_release(&b);
            return -1;
        }
        r->f[r->n++] = b.p ? strdup(b.p) : strdup("");
        if (!r->f[r->n - 1]) {
            ing_buf_release(&b);
            return -1;
        }
        if (p < e && *p == ',') {
            p++;
        } else {
            more = false;
            if (p < e && *p == '\r')
                p++;
            if (p < e && *p == '\n')
                p++;
        }
    }
    ing_buf_release(&b);
    *pp = p;
    return 1;
}

static void trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (a < n && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
}

static int parse_coord(const char *s, double lim, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < -lim || v > lim)
        return -1;
    *out = v;
    return 0;
}

int wx_places_parse(const char *text, size_t n, struct wx_places *out, struct ing_err *err)
{
    const char *p = text, *e = text + n;
    struct rec r = { 0 };
    size_t line = 1;
    int ci_name = -1, ci_lat = -1, ci_lon = -1;
    memset(out, 0, sizeof *out);
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    /* header */
    for (;;) {
        int rc = read_rec(&p, e, &r, &line);
        if (rc <= 0) {
            rec_clear(&r);
            return ing_fail(err,
                            rc < 0 ? "places CSV line %zu: syntax error"
                                   : "places CSV is empty (line %zu)",
                            line);
        }
        if (r.n == 1 && r.f[0][0] == '\0') {
            rec_clear(&r);
            line++;
            continue;
        }
        break;
    }
    for (size_t i = 0; i < r.n; i++) {
        trim(r.f[i]);
        if (strcasecmp(r.f[i], "name") == 0)
            ci_name = (int)i;
        else if (strcasecmp(r.f[i], "latitude") == 0 || strcasecmp(r.f[i], "lat") == 0)
            ci_lat = (int)i;
        else if (strcasecmp(r.f[i], "longitude") == 0 || strcasecmp(r.f[i], "lon") == 0)
            ci_lon = (int)i;
    }
    rec_clear(&r);
    if (ci_name < 0 || ci_lat < 0 || ci_lon < 0)
        return ing_fail(err,
                        "places CSV line %zu: the header must name the columns name,"
                        " latitude and longitude",
                        line);
    size_t cap = 0;
    for (;;) {
        line++;
        int rc = read_rec(&p, e, &r, &line);
        if (rc == 0)
            break;
        if (rc < 0) {
            rec_clear(&r);
            wx_places_release(out);
            return ing_fail(err, "places CSV line %zu: syntax error", line);
        }
        if (r.n == 1 && r.f[0][0] == '\0') {
            rec_clear(&r);
            continue;
        }
        int need = ci_name > ci_lat ? ci_name : ci_lat;
        need = need > ci_lon ? need : ci_lon;
        struct wx_place pl = { 0 };
        const char *bad = NULL;
        if ((int)r.n <= need) {
            bad = "missing columns";
        } else {
            trim(r.f[ci_name]);
            trim(r.f[ci_lat]);
            trim(r.f[ci_lon]);
            if (!r.f[ci_name][0])
                bad = "empty name";
            else if (parse_coord(r.f[ci_lat], 90, &pl.lat) < 0)
                bad = "latitude must be a number in [-90, 90]";
            else if (parse_coord(r.f[ci_lon], 180, &pl.lon) < 0)
                bad = "longitude must be a number in [-180, 180]";
        }
        if (!bad && out->n >= WX_MAX_PLACES)
            bad = "too many places";
        if (!bad && out->n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            struct wx_place *nv = realloc(out->v, nc * sizeof *nv);
            if (!nv)
                bad = "out of memory";
            else {
                out->v = nv;
                cap = nc;
            }
        }
        if (!bad) {
            pl.name = r.f[ci_name];
            r.f[ci_name] = strdup("");
            out->v[out->n++] = pl;
        }
        rec_clear(&r);
        if (bad) {
            wx_places_release(out);
            return ing_fail(err, "places CSV line %zu: %s", line, bad);
        }
    }
    if (out->n == 0)
        return ing_fail(err, "places CSV has no places");
    return 0;
}

int wx_places_load(const char *path, struct wx_places *out, struct ing_err *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        char eb[128];
        return ing_fail(err, "cannot open places file '%s': %s", path,
                        strerror_r(errno, eb, sizeof eb));
    }
    struct ing_buf b = { 0 };
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= WX_MAX_CSV)
        ing_buf_add(&b, chunk, n);
    int rerr = ferror(f);
    fclose(f);
    int rc;
    if (rerr)
        rc = ing_fail(err, "cannot read places file '%s'", path);
    else if (b.oom)
        rc = ing_fail(err, "out of memory");
    else if (b.len > WX_MAX_CSV)
        rc = ing_fail(err, "places file '%s' is larger than %u bytes", path, WX_MAX_CSV);
    else if ((rc = wx_places_parse(b.p ? b.p : "", b.len, out, err)) < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ing_fail(err, "'%s': %s", path, msg);
    }
    ing_buf_release(&b);
    return rc;
}

static bool var_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

int wx_vars_parse(json_t *spec, const char **vars, size_t max, json_t **storage,
                  struct ing_err *err)
{
    json_t *arr = json_array();
    *storage = arr;
    if (json_is_string(spec)) {
        const char *s = json_string_value(spec);
        while (*s) {
            size_t n = strcspn(s, ",");
            size_t a = 0, b = n;
            while (a < b && s[a] == ' ')
                a++;
            while (b > a && s[b - 1] == ' ')
                b--;
            if (b > a)
                json_array_append_new(arr, json_stringn(s + a, b - a));
            s += n;
            if (*s == ',')
                s++;
        }
    } else if (json_is_array(spec)) {
        size_t i;
        json_t *v;
        json_array_foreach(spec, i, v) {
            if (!json_is_string(v))
                return ing_fail(err, "hourly variables must be strings");
            json_array_append(arr, v);
        }
    } else {
        return ing_fail(err, "hourly must be a comma-separated string or an array");
    }
    size_t n = json_array_size(arr);
    if (n == 0)
        return ing_fail(err, "no hourly variables given");
    if (n > max)
        return ing_fail(err, "more than %zu hourly variables", max);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!var_name_ok(json_string_value(v), json_string_length(v)))
            return ing_fail(err, "invalid hourly variable '%s' (expected [a-z0-9_]+)",
                            json_string_value(v));
        for (size_t j = 0; j < i; j++)
            if (strcmp(vars[j], json_string_value(v)) == 0)
                return ing_fail(err, "hourly variable '%s' given twice", vars[j]);
        vars[i] = json_string_value(v);
    }
    return (int)n;
}

/* Appends s percent-encoded (unreserved characters and ',' kept). */
static void add_pct(struct ing_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == ',') {
            ing_buf_add(b, s, 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            ing_buf_add(b, e, 3);
        }
    }
}

char *wx_url(const char *base, const struct wx_places *pl, size_t from, size_t count,
             const struct wx_query *q)
{
    struct ing_buf b = { 0 };
    char num[64];
    ing_buf_adds(&b, base);
    ing_buf_adds(&b, "/v1/forecast?latitude=");
    for (size_t i = 0; i < count; i++) {
        snprintf(num, sizeof num, "%s%.6g", i ? "," : "", pl->v[from + i].lat);
        ing_buf_adds(&b, num);
    }
    ing_buf_adds(&b, "&longitude=");
    for (size_t i = 0; i < count; i++) {
        snprintf(num, sizeof num, "%s%.6g", i ? "," : "", pl->v[from + i].lon);
        ing_buf_adds(&b, num);
    }
    ing_buf_adds(&b, "&hourly=");
    for (size_t i = 0; i < q->n_vars; i++) {
        if (i)
            ing_buf_adds(&b, ",");
        add_pct(&b, q->vars[i]);
    }
    ing_buf_adds(&b, "&timezone=");
    add_pct(&b, q->timezone && *q->timezone ? q->timezone : "UTC");
    if (q->forecast_days > 0) {
        snprintf(num, sizeof num, "&forecast_days=%d", q->forecast_days);
        ing_buf_adds(&b, num);
    }
    if (q->past_days > 0) {
        snprintf(num, sizeof num, "&past_days=%d", q->past_days);
        ing_buf_adds(&b, num);
    }
    if (b.oom) {
        ing_buf_release(&b);
        return NULL;
    }
    return b.p;
}

int wx_response_check(const char *body, size_t n, size_t count, const struct wx_query *q,
                      json_t **out, struct ing_err *err)
{
    json_error_t je;
    *out = NULL;
    json_t *root = json_loadb(body, n, 0, &je);
    if (!root) {
        ing_fail(err, "response is not JSON (%zu bytes): %s at position %d", n, je.text,
                 je.position);
        return WX_EPARSE;
    }
    if (json_is_object(root) && json_is_true(json_object_get(root, "error"))) {
        const char *reason = json_string_value(json_object_get(root, "reason"));
        ing_fail(err, "open-meteo refused the request: %s", reason ? reason : "(no reason)");
        json_decref(root);
        return WX_EAPI;
    }
    if (json_is_object(root)) {
        json_t *a = json_array();
        json_array_append_new(a, root);
        root = a;
    }
    if (!json_is_array(root) || json_array_size(root) != count) {
        ing_fail(err, "expected %zu forecast(s), got %s", count,
                 json_is_array(root) ? "a different number" : "something else");
        json_decref(root);
        return WX_ESHAPE;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *hourly = json_object_get(json_array_get(root, i), "hourly");
        json_t *time = json_object_get(hourly, "time");
        if (!json_is_array(time)) {
            ing_fail(err, "forecast %zu has no hourly.time", i + 1);
            json_decref(root);
            return WX_ESHAPE;
        }
        for (size_t k = 0; k < q->n_vars; k++) {
            json_t *v = json_object_get(hourly, q->vars[k]);
            if (!json_is_array(v) || json_array_size(v) != json_array_size(time)) {
                ing_fail(err, "forecast %zu: hourly.%s is %s", i + 1, q->vars[k],
                         json_is_array(v) ? "not as long as hourly.time" : "missing");
                json_decref(root);
                return WX_ESHAPE;
            }
        }
    }
    *out = root;
    return WX_OK;
}

static void add_json(struct ing_buf *b, json_t *v)
{
    char tmp[128];
    if (!v || json_is_null(v)) {
        ing_buf_adds(b, "null");
        return;
    }
    if (json_is_real(v)) {
        /* %.15g: Open-Meteo sends at most a few decimals; 17 digits would print 11.8 as
         * 11.800000000000001 */
        double d = json_real_value(v);
        snprintf(tmp, sizeof tmp, "%.15g", d);
        ing_buf_adds(b, tmp);
        if (!strpbrk(tmp, ".eEn")) /* keep it a real: 12 -> 12.0 */
            ing_buf_adds(b, ".0");
        return;
    }
    size_t n = json_dumpb(v, NULL, 0, JSON_ENCODE_ANY | JSON_COMPACT);
    if (n < sizeof tmp) {
        json_dumpb(v, tmp, n, JSON_ENCODE_ANY | JSON_COMPACT);
        ing_buf_add(b, tmp, n);
        return;
    }
    char *s = malloc(n);
    if (!s) {
        b->oom = true;
        return;
    }
    json_dumpb(v, s, n, JSON_ENCODE_ANY | JSON_COMPACT);
    ing_buf_add(b, s, n);
    free(s);
}

long wx_rows(const struct wx_place *place, json_t *resp, const struct wx_query *q,
             struct ing_buf *out)
{
    json_t *hourly = json_object_get(resp, "hourly");
    json_t *time = json_object_get(hourly, "time");
    size_t n = json_array_size(time);
    char num[96];
    for (size_t j = 0; j < n; j++) {
        ing_buf_adds(out, "{\"name\":");
        ing_buf_add_jstr(out, place->name, strlen(place->name));
        snprintf(num, sizeof num, ",\"latitude\":%.10g,\"longitude\":%.10g,\"time\":", place->lat,
                 place->lon);
        ing_buf_adds(out, num);
        add_json(out, json_array_get(time, j));
        for (size_t k = 0; k < q->n_vars; k++) {
            ing_buf_adds(out, ",");
            ing_buf_add_jstr(out, q->vars[k], strlen(q->vars[k]));
            ing_buf_adds(out, ":");
            add_json(out, json_array_get(json_object_get(hourly, q->vars[k]), j));
        }
        ing_buf_adds(out, "}\n");
    }
    return out->oom ? -1 : (long)n;
}
