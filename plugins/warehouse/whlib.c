/* plugins/warehouse/whlib.c - the warehouse plugin's pure parts: names, quoting, formats,
 * the database folder, CSV headers and results as JSON. See whlib.h. */
#include "whlib.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "warehouse/warehouse.h"

#define MAX_HEADER    (1u << 20)
#define MAX_HDR_NAMES 4096

static int parse_part(const char *s, size_t n, char *out, const char *what, const char *whole,
                      struct ing_err *err)
{
    if (n == 0 || n > 63)
        return ing_fail(err, "table '%s': the %s name must have 1 to 63 characters", whole, what);
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return ing_fail(err, "table '%s': the %s name must start with a letter or '_'", whole,
                        what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_'))
            return ing_fail(err, "table '%s': the %s name may hold only letters, digits and '_'",
                            whole, what);
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return 0;
}

int whp_parse_table(const char *s, struct whp_name *out, struct ing_err *err)
{
    if (!s)
        return ing_fail(err, "no table name");
    const char *dot = strchr(s, '.');
    if (!dot) {
        snprintf(out->schema, sizeof out->schema, "public");
        return parse_part(s, strlen(s), out->table, "table", s, err);
    }
    if (strchr(dot + 1, '.'))
        return ing_fail(err, "table '%s': expected 'table' or 'schema.table'", s);
    if (parse_part(s, (size_t)(dot - s), out->schema, "schema", s, err) < 0)
        return -1;
    return parse_part(dot + 1, strlen(dot + 1), out->table, "table", s, err);
}

static void add_quoted(struct ing_buf *b, const char *s, char q)
{
    ing_buf_add(b, &q, 1);
    for (const char *p = s; *p; p++) {
        if (*p == q)
            ing_buf_add(b, &q, 1);
        ing_buf_add(b, p, 1);
    }
    ing_buf_add(b, &q, 1);
}

void whp_add_lit(struct ing_buf *b, const char *s)
{
    add_quoted(b, s, '\'');
}

void whp_add_ident(struct ing_buf *b, const char *s)
{
    add_quoted(b, s, '"');
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

enum whp_format whp_format_of(const char *path, const char *fmt)
{
    if (fmt && *fmt && strcmp(fmt, "auto") != 0) {
        if (!strcasecmp(fmt, "csv"))
            return WHP_FMT_CSV;
        if (!strcasecmp(fmt, "json") || !strcasecmp(fmt, "ndjson") || !strcasecmp(fmt, "jsonl"))
            return WHP_FMT_JSON;
        return WHP_FMT_UNKNOWN;
    }
    if (!path)
        return WHP_FMT_UNKNOWN;
    size_t n = strlen(path);
    if (ends_with(path, n, ".gz"))
        n -= 3;
    if (ends_with(path, n, ".csv") || ends_with(path, n, ".tsv"))
        return WHP_FMT_CSV;
    if (ends_with(path, n, ".ndjson") || ends_with(path, n, ".jsonl") ||
        ends_with(path, n, ".json"))
        return WHP_FMT_JSON;
    return WHP_FMT_UNKNOWN;
}

static char *join2(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", a, b);
    return out;
}

char *whp_db_path(const char *param, const char *conn_path, const char *env_path,
                  const char *weir_home, const char *home)
{
    if (param && *param)
        return strdup(param);
    if (conn_path && *conn_path)
        return strdup(conn_path);
    if (env_path && *env_path)
        return strdup(env_path);
    if (weir_home && *weir_home)
        return join2(weir_home, "/warehouse");
    if (home && *home)
        return join2(home, "/.weir/warehouse");
    return NULL;
}

void whp_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Splits one CSV record (`s`, NUL-terminated, may span lines inside quotes) into fields. */
static int split_record(const char *s, char delim, char quote, char ***names, size_t *n,
                        struct ing_err *err)
{
    char **v = NULL;
    size_t nv = 0;
    struct ing_buf f = { 0 };
    const char *p = s;
    for (;;) {
        f.len = 0;
        if (*p == quote) {
            p++;
            for (;;) {
                if (!*p) {
                    ing_buf_release(&f);
                    whp_names_free(v, nv);
                    return ing_fail(err, "unterminated quoted field in the header");
                }
                if (*p == quote) {
                    if (p[1] == quote) {
                        ing_buf_add(&f, p, 1);
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                ing_buf_add(&f, p++, 1);
            }
        }
        while (*p && *p != delim && *p != '\n' && *p != '\r')
            ing_buf_add(&f, p++, 1);
        ing_buf_add(&f, "", 1);
        char **nvp = nv < MAX_HDR_NAMES ? realloc(v, (nv + 1) * sizeof *v) : NULL;
        char *name = f.oom ? NULL : strdup(f.p);
        if (!nvp || !name) {
            free(name);
            if (nvp)
                v = nvp;
            ing_buf_release(&f);
            whp_names_free(v, nv);
            if (nv >= MAX_HDR_NAMES)
                return ing_fail(err, "more than %d header fields", MAX_HDR_NAMES);
            return ing_fail(err, "out of memory");
        }
        v = nvp;
        v[nv++] = name;
        if (*p != delim)
            break;
        p++;
    }
    ing_buf_release(&f);
    *names = v;
    *n = nv;
    return 0;
}

int whp_csv_header(const char *path, char delim, char quote, char ***names, size_t *n,
                   struct ing_err *err)
{
    *names = NULL;
    *n = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return ing_fail(err, "cannot open '%s'", path);
    struct ing_buf b = { 0 };
    bool in_quotes = false, done = false;
    char chunk[4096];
    int got;
    /* Read until the end of the first record: a newline outside quotes. */
    while (!done && (got = gzread(g, chunk, sizeof chunk)) > 0) {
        for (int i = 0; i < got; i++) {
            if (chunk[i] == quote)
                in_quotes = !in_quotes;
            else if (chunk[i] == '\n' && !in_quotes) {
                ing_buf_add(&b, chunk, (size_t)i);
                done = true;
                break;
            }
        }
        if (!done)
            ing_buf_add(&b, chunk, (size_t)got);
        if (b.len > MAX_HEADER) {
            gzclose(g);
            ing_buf_release(&b);
            return ing_fail(err, "'%s': the header is longer than %u bytes", path, MAX_HEADER);
        }
    }
    int zerr = 0;
    const char *zmsg = gzerror(g, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
        ing_fail(err, "cannot read '%s': %s", path, zmsg);
        gzclose(g);
        ing_buf_release(&b);
        return -1;
    }
    gzclose(g);
    while (b.len && b.p[b.len - 1] == '\r')
        b.len--;
    ing_buf_add(&b, "", 1);
    if (b.oom) {
        ing_buf_release(&b);
        return ing_fail(err, "out of memory");
    }
    if (!b.p[0]) {
        ing_buf_release(&b);
        return ing_fail(err, "'%s' has no header line", path);
    }
    int rc = split_record(b.p, delim, quote, names, n, err);
    ing_buf_release(&b);
    return rc;
}

json_t *whp_value_json(const struct wh_result *r, size_t row, size_t col)
{
    if (wh_result_isnull(r, row, col))
        return json_null();
    switch (wh_result_coltype(r, col)) {
    case WH_T_BOOL:
        return json_boolean(wh_result_int(r, row, col));
    case WH_T_INT2:
    case WH_T_INT4:
    case WH_T_INT8:
        return json_integer((json_int_t)wh_result_int(r, row, col));
    case WH_T_FLOAT4:
    case WH_T_FLOAT8: {
        double d = wh_result_double(r, row, col);
        if (isfinite(d))
            return json_real(d);
        break;
    }
    case WH_T_TEXT:
        return json_string(wh_result_str(r, row, col));
    default:
        break;
    }
    char buf[256];
    wh_result_text(r, row, col, buf, sizeof buf);
    return json_string(buf);
}

json_t *whp_rows_json(const struct wh_result *r, size_t max_rows)
{
    json_t *rows = json_array();
    size_t nr = wh_result_nrows(r), nc = wh_result_ncols(r);
    for (size_t i = 0; rows && i < nr && i < max_rows; i++) {
        json_t *o = json_object();
        for (size_t c = 0; o && c < nc; c++) {
            json_t *v = whp_value_json(r, i, c);
            if (!v || json_object_set_new(o, wh_result_colname(r, c), v) < 0) {
                json_decref(o);
                o = NULL;
            }
        }
        if (!o || json_array_append_new(rows, o) < 0) {
            json_decref(rows);
            return NULL;
        }
    }
    return rows;
}
