/* warehouse/wh_copy.c - COPY FROM / COPY TO for CSV files (RFC 4180 quoting, header,
 * delimiter, quote, NULL string, CRLF line ends, gzip input by the .gz suffix). COPY FROM a
 * table that does not exist creates it with types inferred from the data. The whole file is
 * one new part, so the table is unchanged when any row fails. */
#include "warehouse/wh_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

#define MAX_COPY_FILE ((size_t)4 << 30)

struct copt {
    char delim, quote;
    const char *null;
    bool header, skip_bad, json;
};

static void parse_opts(struct wh_q *q, json_t *opts, struct copt *o)
{
    o->delim = ',';
    o->quote = '"';
    o->null = "";
    o->header = false;
    o->skip_bad = false;
    o->json = false;
    bool csv = false;
    size_t i;
    json_t *d;
    json_array_foreach(opts, i, d) {
        json_t *b = json_object_get(d, "DefElem");
        const char *name = json_string_value(json_object_get(b, "defname"));
        json_t *arg = json_object_get(b, "arg");
        const char *val = arg ? wh__sval(arg) : NULL;
        int loc = (int)json_integer_value(json_object_get(b, "location"));
        if (!val && json_object_get(arg, "Integer"))
            val = json_integer_value(json_object_get(json_object_get(arg, "Integer"), "ival"))
                      ? "true"
                      : "false";
        if (!val && json_object_get(arg, "Boolean"))
            val = json_is_true(json_object_get(json_object_get(arg, "Boolean"), "boolval"))
                      ? "true"
                      : "false";
        if (!strcmp(name, "format")) {
            if (val && (!strcasecmp(val, "json") || !strcasecmp(val, "ndjson")))
                o->json = true;
            else if (!val || strcasecmp(val, "csv"))
                wh__fail(q, WEIR_EINVAL, loc,
                         "COPY format \"%s\" is not supported (use csv or json)", val ? val : "?");
            csv = true;
        } else if (!strcmp(name, "header")) {
            o->header = !val || !strcasecmp(val, "true") || !strcasecmp(val, "on") ||
                        !strcmp(val, "1") || !strcasecmp(val, "match");
        } else if (!strcmp(name, "delimiter")) {
            if (!val || strlen(val) != 1)
                wh__fail(q, WEIR_EINVAL, loc, "COPY delimiter must be a single one-byte character");
            o->delim = val[0];
        } else if (!strcmp(name, "quote")) {
            if (!val || strlen(val) != 1)
                wh__fail(q, WEIR_EINVAL, loc, "COPY quote must be a single one-byte character");
            o->quote = val[0];
        } else if (!strcmp(name, "null")) {
            o->null = val ? val : "";
        } else if (!strcmp(name, "on_error")) {
            if (val && (!strcasecmp(val, "skip") || !strcasecmp(val, "ignore")))
                o->skip_bad = true;
            else if (!val || strcasecmp(val, "stop"))
                wh__fail(q, WEIR_EINVAL, loc, "COPY ON_ERROR must be stop or skip");
        } else {
            wh__fail(q, WEIR_EINVAL, loc, "COPY option \"%s\" is not supported", name);
        }
    }
    if (!csv)
        wh__fail(q, WEIR_EINVAL, -1,
                 "COPY needs (FORMAT csv) or (FORMAT json): the text format is not supported");
}

static void free_cb(void *p)
{
    free(p);
}

/* Reads the file (gunzipping *.gz) into arena-owned memory. */
static char *slurp(struct wh_q *q, const char *path, size_t *len)
{
    gzFile gz = gzopen(path, "rb"); /* reads plain files unchanged */
    if (!gz) {
        char eb[128];
        wh__fail(q, WEIR_EIO, -1, "cannot open '%s': %s", path, err_errno(errno, eb, sizeof eb));
    }
    size_t cap = 1 << 20, n = 0;
    char *b = xmalloc(cap);
    for (;;) {
        if (cap - n < (1 << 16)) {
            if (cap >= MAX_COPY_FILE) {
                free(b);
                gzclose(gz);
                wh__fail(q, WEIR_ETOOBIG, -1, "'%s' is larger than %zu bytes", path, MAX_COPY_FILE);
            }
            cap *= 2;
            b = xrealloc(b, cap);
        }
        int r = gzread(gz, b + n, (unsigned)(cap - n - 1));
        if (r < 0) {
            int e;
            const char *m = gzerror(gz, &e);
            free(b);
            gzclose(gz);
            wh__fail(q, WEIR_EIO, -1, "cannot read '%s': %s", path, m);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    gzclose(gz);
    b[n] = 0;
    if (arena_on_reset(q->a, free_cb, b) < 0) {
        free(b);
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    }
    *len = n;
    return b;
}

struct rows {
    size_t n, cap, ncols;
    const char **f; /* n * ncols fields; NULL for SQL NULL */
    size_t *line;
};

static void rows_add(struct wh_q *q, struct rows *rs, const char **fields, size_t line)
{
    if (rs->n == rs->cap) {
        size_t nc = rs->cap ? rs->cap * 2 : 1024;
        const char **nfv = wh__alloc(q, nc * rs->ncols * sizeof *nfv);
        size_t *nl = wh__alloc(q, nc * sizeof *nl);
        if (rs->n) {
            memcpy(nfv, rs->f, rs->n * rs->ncols * sizeof *nfv);
            memcpy(nl, rs->line, rs->n * sizeof *nl);
        }
        rs->f = nfv;
        rs->line = nl;
        rs->cap = nc;
    }
    memcpy(rs->f + rs->n * rs->ncols, fields, rs->ncols * sizeof *fields);
    rs->line[rs->n++] = line;
}

/* Splits CSV text into records. Fields are decoded in place (the buffer is ours). */
static void parse_csv(struct wh_q *q, char *s, size_t len, const struct copt *o, struct rows *rs,
                      const char ***hdr, size_t *nhdr)
{
    char *end = s + len, *p = s;
    size_t line = 1;
    const char **fields = NULL;
    size_t nf = 0, fcap = 0;
    bool first = true;
    while (p < end) {
        size_t rec_line = line;
        bool blank = *p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n');
        nf = 0;
        for (;;) {
            /* One field. */
            char *w = p, *start = p;
            bool quoted = false;
            if (*p == o->quote) {
                quoted = true;
                p++;
                for (;;) {
                    if (p >= end)
                        wh__fail(q, WEIR_EINVAL, -1, "COPY: unterminated quoted field at line %zu",
                                 rec_line);
                    if (*p == o->quote) {
                        if (p + 1 < end && p[1] == o->quote) {
                            *w++ = o->quote;
                            p += 2;
                            continue;
                        }
                        p++;
                        break;
                    }
                    if (*p == '\n')
                        line++;
                    *w++ = *p++;
                }
                /* Anything up to the delimiter after the closing quote is kept verbatim. */
                while (p < end && *p != o->delim && *p != '\n' && *p != '\r')
                    *w++ = *p++;
            } else {
                while (p < end && *p != o->delim && *p != '\n' && *p != '\r')
                    p++;
                w = p;
            }
            char term = p < end ? *p : '\n';
            *w = 0;
            if (nf == fcap) {
                fcap = fcap ? fcap * 2 : 16;
                const char **nfld = wh__calloc(q, fcap, sizeof *nfld);
                if (nf)
                    memcpy(nfld, fields, nf * sizeof *nfld);
                fields = nfld;
            }
            /* The NULL string is usually empty: test that without a call per field. */
            bool isnull = !quoted && (o->null[0] ? !strcmp(start, o->null) : !start[0]);
            fields[nf++] = isnull ? NULL : start;
            if (term == o->delim) {
                p++;
                continue;
            }
            if (term == '\r' && p + 1 < end && p[1] == '\n')
                p++;
            p++;
            line++;
            break;
        }
        if (nf == 1 && blank && rs->ncols != 1)
            continue; /* an empty line; in a one-column file it is a NULL row */
        if (first) {
            first = false;
            if (!rs->ncols)
                rs->ncols = nf;
            if (o->header) {
                *hdr = wh__calloc(q, nf, sizeof **hdr);
                for (size_t k = 0; k < nf; k++)
                    (*hdr)[k] = fields[k] ? fields[k] : "";
                *nhdr = nf;
                continue;
            }
        }
        if (nf != rs->ncols) {
            if (o->skip_bad)
                continue;
            wh__fail(q, WEIR_EINVAL, -1, "COPY: line %zu has %zu fields, expected %zu", rec_line,
                     nf, rs->ncols);
        }
        rows_add(q, rs, fields, rec_line);
    }
}

/* Newline-delimited JSON: one object per line; keys name columns. With `names` (the
 * table's columns) keys map to them and unknown keys are errors; without, the columns are
 * the keys in first-seen order. Nested values are kept as JSON text. */
static void parse_ndjson(struct wh_q *q, char *s, size_t len, const struct copt *o, struct rows *rs,
                         const char ***names, size_t *nnames)
{
    bool fixed = *names != NULL;
    size_t cap = fixed ? *nnames : 16, n = fixed ? *nnames : 0;
    const char **cols = fixed ? *names : wh__calloc(q, cap, sizeof *cols);
    /* Pass 1 (inference only): collect keys. */
    char *p = s, *end = s + len;
    size_t line = 0;
    if (!fixed) {
        for (char *l = s; l < end;) {
            char *nl = memchr(l, '\n', (size_t)(end - l));
            size_t ll = nl ? (size_t)(nl - l) : (size_t)(end - l);
            json_t *j = json_loadb(l, ll, JSON_DECODE_ANY, NULL);
            const char *k;
            json_t *v;
            if (json_is_object(j))
                json_object_foreach(j, k, v) {
                    size_t c = 0;
                    while (c < n && strcmp(cols[c], k))
                        c++;
                    if (c == n) {
                        if (n == cap) {
                            const char **nc = wh__calloc(q, cap * 2, sizeof *nc);
                            memcpy(nc, cols, n * sizeof *nc);
                            cols = nc;
                            cap *= 2;
                        }
                        cols[n++] = wh__strdup(q, k);
                    }
                }
            json_decref(j);
            l = nl ? nl + 1 : end;
        }
        *names = cols;
        *nnames = n;
    }
    rs->ncols = n;
    const char **fields = wh__calloc(q, n + 1, sizeof *fields);
    char num[64];
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *l = p;
        p = nl ? nl + 1 : end;
        line++;
        while (ll && (l[ll - 1] == '\r' || l[ll - 1] == ' '))
            ll--;
        if (!ll)
            continue;
        json_error_t je;
        json_t *j = json_loadb(l, ll, 0, &je);
        if (!json_is_object(j)) {
            json_decref(j);
            if (o->skip_bad)
                continue;
            wh__fail(q, WEIR_EINVAL, -1, "COPY: line %zu is not a JSON object: %s", line,
                     j ? "not an object" : je.text);
        }
        memset(fields, 0, n * sizeof *fields);
        const char *k;
        json_t *v;
        bool bad = false;
        json_object_foreach(j, k, v) {
            size_t c = 0;
            while (c < n && strcmp(cols[c], k))
                c++;
            if (c == n) {
                bad = true;
                if (!o->skip_bad) {
                    char *kk = wh__strdup(q, k);
                    json_decref(j);
                    wh__fail(q, WEIR_EINVAL, -1, "COPY: line %zu has unknown key \"%.60s\"", line,
                             kk);
                }
                break;
            }
            switch (json_typeof(v)) {
            case JSON_NULL:
                fields[c] = NULL;
                break;
            case JSON_TRUE:
                fields[c] = "true";
                break;
            case JSON_FALSE:
                fields[c] = "false";
                break;
            case JSON_STRING:
                fields[c] = wh__strdup(q, json_string_value(v));
                break;
            case JSON_INTEGER:
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
                fields[c] = wh__strdup(q, num);
                break;
            case JSON_REAL:
                snprintf(num, sizeof num, "%.17g", json_real_value(v));
                fields[c] = wh__strdup(q, num);
                break;
            default: {
                char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                fields[c] = wh__strdup(q, t ? t : "null");
                free(t);
            }
            }
        }
        json_decref(j);
        if (!bad)
            rows_add(q, rs, fields, line);
    }
}

/* Picks the narrowest type every non-NULL value of column c parses as. */
static void infer(struct wh_q *q, const struct rows *rs, size_t c, struct wh_coldef *cd)
{
    static const uint8_t order[] = { WH_T_BOOL, WH_T_INT8, WH_T_FLOAT8,
                                     WH_T_DATE, WH_T_TS,   WH_T_TSTZ };
    cd->type = WH_T_TEXT;
    cd->scale = 0;
    cd->typmod = -1;
    bool any = false;
    for (size_t k = 0; k < sizeof order; k++) {
        bool ok = true;
        for (size_t r = 0; r < rs->n && ok; r++) {
            const char *v = rs->f[r * rs->ncols + c];
            if (!v)
                continue;
            any = true;
            int64_t iv;
            double fv;
            if (order[k] == WH_T_BOOL)
                ok = !strcasecmp(v, "true") || !strcasecmp(v, "false") || !strcmp(v, "t") ||
                     !strcmp(v, "f");
            else if (order[k] == WH_T_TS && strpbrk(v, "Zz+"))
                ok = false; /* an offset: timestamptz */
            else if (order[k] == WH_T_TS || order[k] == WH_T_DATE)
                ok = (order[k] != WH_T_DATE || strlen(v) <= 10) &&
                     wh__parse_val(v, order[k], 0, &iv, &fv);
            else
                ok = *v && wh__parse_val(v, order[k], 0, &iv, &fv);
        }
        if (!any)
            return;
        if (ok) {
            cd->type = order[k];
            return;
        }
    }
    (void)q;
}

static uint64_t copy_from(struct wh_q *q, json_t *b, const char *path, const struct copt *o)
{
    json_t *rv = json_object_get(b, "relation");
    struct wh_table *t = wh__rangevar_table(q, rv, true);
    json_t *att = json_object_get(b, "attlist");
    size_t len;
    char *text = slurp(q, path, &len);
    struct rows rs = { 0 };
    const char **hdr = NULL;
    size_t nhdr = 0;
    if (t)
        rs.ncols = json_array_size(att) ? json_array_size(att) : (size_t)t->ncols;
    if (o->json) {
        if (t) {
            nhdr = rs.ncols;
            hdr = wh__calloc(q, nhdr + 1, sizeof *hdr);
            for (size_t k = 0; k < nhdr; k++)
                hdr[k] = json_array_size(att) ? wh__sval(json_array_get(att, k)) : t->cols[k].name;
        }
        parse_ndjson(q, text, len, o, &rs, &hdr, &nhdr);
    } else {
        parse_csv(q, text, len, o, &rs, &hdr, &nhdr);
    }
    if (!t && q->db->in_txn)
        wh__fail(q, WEIR_EINVAL, -1,
                 "COPY into a new table inside a transaction is not "
                 "supported; create the table first");
    if (!t) {
        /* Create the table from the data: names from the header, types inferred. */
        const char *schema = json_string_value(json_object_get(rv, "schemaname"));
        const char *name = json_string_value(json_object_get(rv, "relname"));
        if (!rs.ncols)
            wh__fail(q, WEIR_EINVAL, -1, "COPY: '%s' is empty; cannot infer columns of \"%s\"",
                     path, name);
        struct wh_coldef *cols = wh__calloc(q, rs.ncols, sizeof *cols);
        for (size_t c = 0; c < rs.ncols; c++) {
            cols[c].name =
                (char *)(hdr && c < nhdr && hdr[c][0] ? hdr[c]
                                                      : arena_printf(q->a, "column%zu", c + 1));
            infer(q, &rs, c, &cols[c]);
        }
        wh__table_create(q, schema ? schema : "public", name, cols, (int)rs.ncols, NULL, NULL,
                         (int)json_integer_value(json_object_get(rv, "location")));
        t = wh__table_find(q->db, schema ? schema : "public", name);
    }
    /* Map file columns to table columns. */
    int *map = wh__calloc(q, rs.ncols + 1, sizeof *map);
    for (size_t k = 0; k < rs.ncols; k++) {
        map[k] = (int)k;
        if (json_array_size(att)) {
            const char *nm = wh__sval(json_array_get(att, k));
            map[k] = -1;
            for (int c = 0; c < t->ncols; c++)
                if (nm && !strcmp(t->cols[c].name, nm))
                    map[k] = c;
            if (map[k] < 0)
                wh__fail(q, WEIR_ENOTFOUND, -1, "column \"%s\" of relation \"%s\" does not exist",
                         nm ? nm : "?", t->name);
        }
    }
    uint8_t *bad = wh__calloc(q, rs.n + 1, 1);
    struct wh_rel *rel = wh__rel_new(q, t->ncols, rs.n);
    for (int c = 0; c < t->ncols; c++) {
        rel->cols[c] = wh__vec_new(q, t->cols[c].type, t->cols[c].scale, rs.n);
        rel->names[c] = t->cols[c].name;
        memset(rel->cols[c]->nul, 1, rs.n);
    }
    for (size_t k = 0; k < rs.ncols; k++) {
        const struct wh_coldef *cd = &t->cols[map[k]];
        struct wh_vec *v = rel->cols[map[k]];
        for (size_t r = 0; r < rs.n; r++) {
            const char *f = rs.f[r * rs.ncols + k];
            if (!f)
                continue;
            v->nul[r] = 0;
            if (v->s) {
                v->s[r] = f;
                continue;
            }
            if (!wh__parse_val(f, cd->type, cd->scale, v->i ? &v->i[r] : NULL,
                               v->f ? &v->f[r] : NULL)) {
                if (o->skip_bad) {
                    bad[r] = 1;
                    continue;
                }
                wh__fail(q, WEIR_EINVAL, -1,
                         "COPY %s, line %zu, column %s: invalid input syntax for type %s: "
                         "\"%.60s\"",
                         t->name, rs.line[r], cd->name, wh_type_name(cd->type), f);
            }
        }
    }
    size_t keep = 0;
    uint32_t *idx = wh__alloc(q, (rs.n + 1) * sizeof *idx);
    for (size_t r = 0; r < rs.n; r++)
        if (!bad[r])
            idx[keep++] = (uint32_t)r;
    if (keep != rs.n)
        rel = wh__rel_gather(q, rel, idx, keep);
    for (int c = 0; c < t->ncols; c++)
        rel->cols[c] = wh__conform(q, rel->cols[c], &t->cols[c], -1);
    wh__table_append(q, t, rel);
    return keep;
}

static void csv_field(struct buf *b, const char *s, const struct copt *o)
{
    bool need = !*s && !o->null[0];
    for (const char *p = s; *p && !need; p++)
        need = *p == o->delim || *p == o->quote || *p == '\n' || *p == '\r';
    if (!strcmp(s, o->null))
        need = true;
    if (!need) {
        buf_adds(b, s);
        return;
    }
    buf_addc(b, o->quote);
    for (const char *p = s; *p; p++) {
        if (*p == o->quote)
            buf_addc(b, o->quote);
        buf_addc(b, *p);
    }
    buf_addc(b, o->quote);
}

static void buf_release_cb(void *p)
{
    buf_release(p);
}

static uint64_t copy_to(struct wh_q *q, json_t *b, const char *path, const struct copt *o)
{
    struct wh_rel *rel;
    json_t *query = json_object_get(b, "query");
    if (query) {
        json_t *sel = json_object_get(query, "SelectStmt");
        if (!sel)
            wh__fail(q, WEIR_EINVAL, -1, "COPY (query) TO needs a SELECT");
        rel = wh__select(q, sel);
    } else {
        struct wh_table *t = wh__rangevar_table(q, json_object_get(b, "relation"), false);
        bool *want = wh__calloc(q, (size_t)t->ncols, sizeof *want);
        for (int c = 0; c < t->ncols; c++)
            want[c] = true;
        rel = wh__table_scan(q, t, want, t->name);
        if (json_array_size(json_object_get(b, "attlist")))
            wh__fail(q, WEIR_EINVAL, -1,
                     "COPY t (columns) TO is not supported; use COPY (SELECT ...) TO");
    }
    struct buf *out = wh__calloc(q, 1, sizeof *out);
    buf_init(out, (size_t)4 << 30);
    if (arena_on_reset(q->a, buf_release_cb, out) < 0) {
        buf_release(out);
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    }
    char tmp[128];
    int rc = 0;
    if (o->header) {
        for (int c = 0; c < rel->ncols; c++) {
            if (c)
                rc |= buf_addc(out, o->delim);
            csv_field(out, rel->names[c], o);
        }
        rc |= buf_addc(out, '\n');
    }
    for (size_t r = 0; r < rel->n; r++) {
        for (int c = 0; c < rel->ncols; c++) {
            if (c)
                buf_addc(out, o->delim);
            const struct wh_vec *v = rel->cols[c];
            if (v->nul[r]) {
                buf_adds(out, o->null);
            } else if (v->s) {
                csv_field(out, v->s[r], o);
            } else {
                wh__fmt_val(v, r, tmp, sizeof tmp);
                csv_field(out, tmp, o);
            }
        }
        rc |= buf_addc(out, '\n');
    }
    if (rc < 0)
        wh__fail(q, WEIR_ETOOBIG, -1, "COPY TO output larger than 4 GiB");
    char *tpath = arena_printf(q->a, "%s.tmp", path);
    int fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        char eb[128];
        wh__fail(q, WEIR_EIO, -1, "cannot create '%s': %s", tpath, err_errno(errno, eb, sizeof eb));
    }
    size_t off = 0;
    while (off < out->len) {
        ssize_t w = write(fd, out->s + off, out->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            char eb[128];
            close(fd);
            unlink(tpath);
            wh__fail(q, WEIR_EIO, -1, "cannot write '%s': %s", tpath,
                     err_errno(errno, eb, sizeof eb));
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 || rename(tpath, path) < 0) {
        char eb[128];
        unlink(tpath);
        wh__fail(q, WEIR_EIO, -1, "cannot write '%s': %s", path, err_errno(errno, eb, sizeof eb));
    }
    return rel->n;
}

uint64_t wh__copy(struct wh_q *q, json_t *stmt)
{
    const char *path = json_string_value(json_object_get(stmt, "filename"));
    if (!path)
        wh__fail(q, WEIR_EINVAL, -1, "COPY FROM STDIN / TO STDOUT is not supported; name a file");
    if (json_is_true(json_object_get(stmt, "is_program")))
        wh__fail(q, WEIR_EINVAL, -1, "COPY ... PROGRAM is not supported");
    if (json_object_get(stmt, "whereClause"))
        wh__fail(q, WEIR_EINVAL, -1, "COPY ... WHERE is not supported");
    struct copt o;
    parse_opts(q, json_object_get(stmt, "options"), &o);
    if (json_is_true(json_object_get(stmt, "is_from")))
        return copy_from(q, stmt, path, &o);
    if (o.json)
        wh__fail(q, WEIR_EINVAL, -1, "COPY TO supports FORMAT csv only");
    return copy_to(q, stmt, path, &o);
}
