/* warehouse/wh_expr.c - expressions: binding libpg_query's JSON parse tree to typed
 * expression trees (column resolution, PostgreSQL's literal coercion), and vectorized
 * evaluation over whole column batches with SQL three-valued logic. Each operator runs
 * over an entire batch before the next one starts; CASE evaluates each branch only on the
 * rows that take it, so `CASE WHEN x = 0 THEN 0 ELSE 1 / x END` never divides by zero. */
#include "warehouse/wh_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/arena.h"
#include "core/err.h"

int wh__loc(json_t *node)
{
    if (!json_is_object(node))
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(node, k, v) {
        json_t *l = json_object_get(v, "location");
        if (json_is_integer(l))
            return (int)json_integer_value(l);
        return -1;
    }
    return -1;
}

const char *wh__node_type(json_t *node)
{
    void *it = json_object_iter(node);
    return it ? json_object_iter_key(it) : "?";
}

json_t *wh__node_body(json_t *node)
{
    void *it = json_object_iter(node);
    return it ? json_object_iter_value(it) : NULL;
}

const char *wh__sval(json_t *str_node)
{
    json_t *s = json_object_get(str_node, "String");
    return s ? json_string_value(json_object_get(s, "sval")) : NULL;
}

bool wh__json_eq(json_t *a, json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        size_t na = 0, nb = 0;
        json_object_foreach(a, k, v) {
            if (!strcmp(k, "location"))
                continue;
            na++;
            json_t *w = json_object_get(b, k);
            if (!w || !wh__json_eq(v, w))
                return false;
        }
        json_object_foreach(b, k, v)
            nb += strcmp(k, "location") != 0;
        return na == nb;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!wh__json_eq(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal(a, b);
}

/* ---- binding ---- */

static struct wh_expr *enew(struct wh_q *q, int kind, int loc, int nargs)
{
    struct wh_expr *e = wh__calloc(q, 1, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->nargs = nargs;
    e->args = wh__calloc(q, (size_t)nargs + 1, sizeof *e->args);
    e->col = -1;
    return e;
}

static struct wh_expr *const_expr(struct wh_q *q, struct wh_vec *v, int loc)
{
    struct wh_expr *e = enew(q, E_CONST, loc, 0);
    e->cval = v;
    e->type = v->type;
    e->scale = v->scale;
    return e;
}

static struct wh_expr *cast_expr(struct wh_q *q, struct wh_expr *a, uint8_t type, int16_t scale,
                                 int loc)
{
    if (a->type == type && (type != WH_T_NUMERIC || a->scale == scale))
        return a;
    if (a->kind == E_CONST) /* fold: literal errors show at bind time */
        return const_expr(q, wh__cast(q, a->cval, type, scale, loc), a->loc);
    struct wh_expr *e = enew(q, E_CAST, loc, 1);
    e->args[0] = a;
    e->type = type;
    e->scale = scale;
    return e;
}

static int type_rank(uint8_t t)
{
    switch (t) {
    case WH_T_INT2:
        return 1;
    case WH_T_INT4:
        return 2;
    case WH_T_INT8:
        return 3;
    case WH_T_NUMERIC:
        return 4;
    case WH_T_FLOAT4:
        return 5;
    case WH_T_FLOAT8:
        return 6;
    default:
        return 0;
    }
}

/* The type two operands are compared or combined in; fails when there is none. */
static void common_type(struct wh_q *q, struct wh_expr *a, struct wh_expr *b, int loc,
                        const char *op, uint8_t *type, int16_t *scale)
{
    uint8_t x = a->type, y = b->type;
    *scale = 0;
    if (x == WH_T_UNKNOWN && y == WH_T_UNKNOWN) {
        *type = WH_T_TEXT;
        return;
    }
    if (x == WH_T_UNKNOWN || y == WH_T_UNKNOWN) {
        struct wh_expr *k = x == WH_T_UNKNOWN ? b : a;
        *type = k->type;
        *scale = k->scale;
        return;
    }
    int rx = type_rank(x), ry = type_rank(y);
    if (rx && ry) {
        *type = rx > ry ? x : y;
        if (*type == WH_T_FLOAT4)
            *type = WH_T_FLOAT8;
        if (*type == WH_T_NUMERIC)
            *scale =
                (int16_t)((x == WH_T_NUMERIC ? a->scale : 0) > (y == WH_T_NUMERIC ? b->scale : 0)
                              ? (x == WH_T_NUMERIC ? a->scale : 0)
                              : (y == WH_T_NUMERIC ? b->scale : 0));
        return;
    }
    if (x == y) {
        *type = x;
        return;
    }
    if ((x == WH_T_DATE || x == WH_T_TS || x == WH_T_TSTZ) &&
        (y == WH_T_DATE || y == WH_T_TS || y == WH_T_TSTZ)) {
        *type = (x == WH_T_TSTZ || y == WH_T_TSTZ) ? WH_T_TSTZ : WH_T_TS;
        return;
    }
    wh__fail(q, WEIR_EINVAL, loc, "operator does not exist: %s %s %s", wh_type_name(x), op,
             wh_type_name(y));
}

static int resolve_col(struct wh_q *q, const struct wh_rel *rel, json_t *fields, int loc, bool must)
{
    size_t nf = json_array_size(fields);
    const char *qual = nf >= 2 ? wh__sval(json_array_get(fields, nf - 2)) : NULL;
    const char *name = wh__sval(json_array_get(fields, nf - 1));
    if (!name || nf > 3)
        wh__fail(q, WEIR_EINVAL, loc, "unsupported column reference");
    int found = -1;
    for (int c = 0; rel && c < rel->ncols; c++) {
        if (strcmp(rel->names[c], name))
            continue;
        if (qual && (!rel->quals[c] || strcmp(rel->quals[c], qual)))
            continue;
        if (found >= 0)
            wh__fail(q, WEIR_EINVAL, loc, "column reference \"%s\" is ambiguous", name);
        found = c;
    }
    if (found < 0 && must) {
        if (qual)
            wh__fail(q, WEIR_ENOTFOUND, loc, "column %s.%s does not exist", qual, name);
        wh__fail(q, WEIR_ENOTFOUND, loc, "column \"%s\" does not exist", name);
    }
    return found;
}

static struct wh_expr *const_expr(struct wh_q *q, struct wh_vec *v, int loc);

/* A column of an enclosing query (innermost first), bound as a constant through its
 * correlation frame; NULL when no enclosing query has it. Fails for the forms that are not
 * supported: a grouped outer query, an outer column inside an aggregate's arguments
 * (q->agg_depth). */
static struct wh_expr *outer_ref(struct wh_q *q, json_t *fields, int loc)
{
    size_t nf = json_array_size(fields);
    const char *qual = nf >= 2 ? wh__sval(json_array_get(fields, nf - 2)) : NULL;
    const char *name = wh__sval(json_array_get(fields, nf - 1));
    if (!name || nf > 3)
        return NULL;
    for (int o = q->ncorr - 1; o >= 0; o--) {
        struct wh_corr *f = q->corr[o];
        int c = resolve_col(q, f->rel, fields, loc, false);
        if (c < 0)
            continue;
        int k = 0;
        while (k < f->nref && f->refs[k] != c)
            k++;
        if (f->grouped || o < q->agg_depth || !f->rel->cols[c] || (k == f->nref && !f->discover) ||
            (k == f->nref && f->nref >= WH_MAX_CORR))
            wh__fail(q, WEIR_EINVAL, loc,
                     "correlated subqueries are not supported (%s%s%s refers to the "
                     "outer query); rewrite it as a join",
                     qual ? qual : "", qual ? "." : "", name);
        if (!f->discover)
            return const_expr(q, f->vals[k], loc);
        if (k == f->nref)
            f->refs[f->nref++] = c;
        struct wh_vec *v = wh__vec_new(q, f->rel->cols[c]->type, f->rel->cols[c]->scale, 1);
        v->nul[0] = 1;
        return const_expr(q, v, loc);
    }
    return NULL;
}

static struct wh_expr *bind_const(struct wh_q *q, json_t *b, int loc)
{
    json_t *x;
    struct wh_vec *v;
    if (json_is_true(json_object_get(b, "isnull"))) {
        v = wh__vec_new(q, WH_T_UNKNOWN, 0, 1);
        v->nul[0] = 1;
    } else if ((x = json_object_get(b, "ival"))) {
        json_int_t iv = json_integer_value(json_object_get(x, "ival"));
        if (!json_object_get(x, "ival") && q->sql && loc >= 0) {
            /* libpg_query 15's JSON writer drops negative integer constants ("ival":{});
             * read the literal back from the SQL text instead. */
            const char *p = q->sql + loc;
            bool neg = *p == '-';
            if (neg)
                p++;
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
            iv = 0;
            while (*p >= '0' && *p <= '9' && iv < INT32_MAX)
                iv = iv * 10 + (*p++ - '0');
            iv = neg ? -iv : iv;
        }
        v = wh__vec_new(q, WH_T_INT4, 0, 1);
        v->i[0] = iv;
    } else if ((x = json_object_get(b, "fval"))) {
        const char *s = json_string_value(json_object_get(x, "fval"));
        const char *dot = strchr(s, '.');
        size_t digits = 0;
        for (const char *p = s; *p; p++)
            digits += isdigit((unsigned char)*p) != 0;
        if (strpbrk(s, "eE") || digits > 18) {
            v = wh__vec_new(q, WH_T_FLOAT8, 0, 1);
            v->f[0] = strtod(s, NULL);
        } else if (!dot) { /* an integer too big for int4 */
            v = wh__vec_new(q, WH_T_INT8, 0, 1);
            wh__parse_val(s, WH_T_INT8, 0, &v->i[0], NULL);
        } else {
            int16_t sc = (int16_t)strlen(dot + 1);
            v = wh__vec_new(q, WH_T_NUMERIC, sc, 1);
            wh__parse_val(s, WH_T_NUMERIC, sc, &v->i[0], NULL);
        }
    } else if ((x = json_object_get(b, "sval"))) {
        v = wh__vec_new(q, WH_T_UNKNOWN, 0, 1);
        v->s = wh__calloc(q, 1, sizeof *v->s);
        const char *s = json_string_value(json_object_get(x, "sval"));
        v->s[0] = wh__strdup(q, s ? s : "");
    } else if ((x = json_object_get(b, "boolval"))) {
        v = wh__vec_new(q, WH_T_BOOL, 0, 1);
        v->i[0] = json_is_true(json_object_get(x, "boolval"));
    } else if (json_object_get(b, "bsval")) {
        wh__fail(q, WEIR_EINVAL, loc, "bit string literals are not supported");
    } else {
        wh__fail(q, WEIR_EINVAL, loc, "unsupported constant");
    }
    return const_expr(q, v, loc);
}

void wh__typename(struct wh_q *q, json_t *tn, uint8_t *type, int16_t *scale, int32_t *typmod)
{
    json_t *names = json_object_get(tn, "names");
    const char *name = wh__sval(json_array_get(names, json_array_size(names) - 1));
    int loc = (int)json_integer_value(json_object_get(tn, "location"));
    int mods[4] = { 0 }, nm = 0;
    json_t *tm = json_object_get(tn, "typmods"), *m;
    size_t k;
    json_array_foreach(tm, k, m) {
        json_t *c = json_object_get(m, "A_Const");
        if (!c || nm >= 4)
            wh__fail(q, WEIR_EINVAL, loc, "unsupported type modifier");
        mods[nm++] = (int)json_integer_value(json_object_get(json_object_get(c, "ival"), "ival"));
    }
    if (json_array_size(json_object_get(tn, "arrayBounds")))
        wh__fail(q, WEIR_EINVAL, loc, "array types are not supported");
    if (!name)
        wh__fail(q, WEIR_EINVAL, loc, "unsupported type name");
    /* "timestamp with time zone" arrives as timestamptz; "double precision" as float8. */
    int rc = wh__type_from_name(name, nm, mods, type, scale, typmod);
    if (rc == -WEIR_EINVAL)
        wh__fail(q, WEIR_EINVAL, loc, "numeric precision must be 1..18 and scale 0..precision");
    if (rc < 0)
        wh__fail(q, WEIR_EINVAL, loc, "type \"%s\" is not supported", name);
}

static struct wh_expr *bind_list(struct wh_q *q, struct wh_bind *bc, int kind, json_t *args,
                                 int loc)
{
    struct wh_expr *e = enew(q, kind, loc, (int)json_array_size(args));
    for (int k = 0; k < e->nargs; k++)
        e->args[k] = wh__bind(q, bc, json_array_get(args, (size_t)k));
    return e;
}

/* Gives all args one common type (CASE results, COALESCE, IN lists, GREATEST). */
void wh__unify(struct wh_q *q, struct wh_expr **args, int n, int loc, uint8_t *type, int16_t *scale)
{
    struct wh_expr *acc = NULL;
    uint8_t t = WH_T_UNKNOWN;
    int16_t s = 0;
    for (int k = 0; k < n; k++) {
        if (!args[k] || args[k]->type == WH_T_UNKNOWN)
            continue;
        if (!acc) {
            acc = args[k];
            t = acc->type;
            s = acc->scale;
            continue;
        }
        struct wh_expr tmp = { .type = t, .scale = s };
        common_type(q, &tmp, args[k], loc, "and", &t, &s);
    }
    if (t == WH_T_UNKNOWN)
        t = WH_T_TEXT;
    for (int k = 0; k < n; k++)
        if (args[k])
            args[k] = cast_expr(q, args[k], t, s, loc);
    *type = t;
    *scale = s;
}

static const struct {
    const char *name;
    int fn, minargs, maxargs;
} funcs[] = {
    { "lower", F_LOWER, 1, 1 },
    { "upper", F_UPPER, 1, 1 },
    { "length", F_LENGTH, 1, 1 },
    { "char_length", F_LENGTH, 1, 1 },
    { "substring", F_SUBSTR, 2, 3 },
    { "substr", F_SUBSTR, 2, 3 },
    { "concat", F_CONCAT, 1, 100 },
    { "replace", F_REPLACE, 3, 3 },
    { "btrim", F_BTRIM, 1, 2 },
    { "ltrim", F_LTRIM, 1, 2 },
    { "rtrim", F_RTRIM, 1, 2 },
    { "split_part", F_SPLIT_PART, 3, 3 },
    { "position", F_STRPOS, 2, 2 },
    { "strpos", F_STRPOS, 2, 2 },
    { "left", F_LEFT, 2, 2 },
    { "right", F_RIGHT, 2, 2 },
    { "abs", F_ABS, 1, 1 },
    { "round", F_ROUND, 1, 2 },
    { "floor", F_FLOOR, 1, 1 },
    { "ceil", F_CEIL, 1, 1 },
    { "ceiling", F_CEIL, 1, 1 },
    { "date_trunc", F_DATE_TRUNC, 2, 2 },
    { "extract", F_EXTRACT, 2, 2 },
    { "date_part", F_DATE_PART, 2, 2 },
    { "now", F_NOW, 0, 0 },
    { "age", F_AGE, 1, 2 },
    { "to_char", F_TO_CHAR, 2, 2 },
    { "justify_days", F_JUSTIFY_DAYS, 1, 1 },
    { "justify_hours", F_JUSTIFY_HOURS, 1, 1 },
    { "justify_interval", F_JUSTIFY_INTERVAL, 1, 1 },
    { "json_extract_path_text", F_JSON_PATH_TEXT, 1, 100 },
    { "json_extract_path", F_JSON_PATH, 1, 100 },
    { "jsonb_extract_path_text", F_JSON_PATH_TEXT, 1, 100 },
    { "jsonb_extract_path", F_JSON_PATH, 1, 100 },
};

static const char *agg_names[] = { "count",    "sum",     "avg",        "min",       "max",
                                   "bool_and", "bool_or", "string_agg", "any_value", "every" };

bool wh__is_agg(json_t *fc)
{
    json_t *names = json_object_get(fc, "funcname");
    const char *n = wh__sval(json_array_get(names, json_array_size(names) - 1));
    if (!n || json_object_get(fc, "over"))
        return false;
    for (size_t k = 0; k < sizeof agg_names / sizeof agg_names[0]; k++)
        if (!strcmp(n, agg_names[k]))
            return true;
    return false;
}

static struct wh_expr *bind_func(struct wh_q *q, struct wh_bind *bc, json_t *b, int loc)
{
    json_t *names = json_object_get(b, "funcname");
    const char *name = wh__sval(json_array_get(names, json_array_size(names) - 1));
    json_t *args = json_object_get(b, "args");
    int nargs = (int)json_array_size(args);
    if (json_object_get(b, "over"))
        wh__fail(q, WEIR_EINVAL, loc, "window function %s is not allowed here", name);
    if (wh__is_agg(b))
        wh__fail(q, WEIR_EINVAL, loc,
                 bc->agg_where ? "aggregate functions are not allowed in %s"
                               : "aggregate function %s is not allowed here",
                 bc->agg_where ? bc->agg_where : name);
    int fn = -1;
    for (size_t k = 0; k < sizeof funcs / sizeof funcs[0]; k++)
        if (!strcmp(funcs[k].name, name)) {
            fn = funcs[k].fn;
            if (fn >= 0 && (nargs < funcs[k].minargs || nargs > funcs[k].maxargs))
                wh__fail(q, WEIR_EINVAL, loc, "function %s does not take %d arguments", name,
                         nargs);
            break;
        }
    if (fn < 0)
        wh__fail(q, WEIR_EINVAL, loc, "function %s is not supported", name);
    struct wh_expr *e = bind_list(q, bc, E_FUNC, args, loc);
    e->fn = fn;
    switch (fn) {
    case F_LOWER:
    case F_UPPER:
    case F_BTRIM:
    case F_LTRIM:
    case F_RTRIM:
    case F_REPLACE:
    case F_CONCAT:
        for (int k = 0; k < nargs; k++)
            e->args[k] = cast_expr(q, e->args[k], WH_T_TEXT, 0, loc);
        e->type = WH_T_TEXT;
        break;
    case F_LENGTH:
    case F_STRPOS:
        for (int k = 0; k < nargs; k++)
            e->args[k] = cast_expr(q, e->args[k], WH_T_TEXT, 0, loc);
        e->type = WH_T_INT4;
        break;
    case F_SUBSTR:
    case F_LEFT:
    case F_RIGHT:
    case F_SPLIT_PART:
        e->args[0] = cast_expr(q, e->args[0], WH_T_TEXT, 0, loc);
        for (int k = 1; k < nargs; k++)
            e->args[k] = cast_expr(q, e->args[k],
                                   fn == F_SPLIT_PART && k == 1 ? WH_T_TEXT : WH_T_INT8, 0, loc);
        e->type = WH_T_TEXT;
        break;
    case F_ABS:
    case F_FLOOR:
    case F_CEIL:
    case F_ROUND:
        if (e->args[0]->type == WH_T_UNKNOWN)
            e->args[0] = cast_expr(q, e->args[0], WH_T_FLOAT8, 0, loc);
        if (!wh__type_is_numeric(e->args[0]->type))
            wh__fail(q, WEIR_EINVAL, loc, "function %s(%s) does not exist", name,
                     wh_type_name(e->args[0]->type));
        e->type = e->args[0]->type == WH_T_FLOAT4 ? WH_T_FLOAT8 : e->args[0]->type;
        e->scale = e->args[0]->scale;
        if (nargs == 2) {
            e->args[1] = cast_expr(q, e->args[1], WH_T_INT4, 0, loc);
            if (e->type != WH_T_NUMERIC && e->type != WH_T_FLOAT8)
                e->args[0] = cast_expr(q, e->args[0], e->type = WH_T_NUMERIC, 0, loc);
            if (e->type == WH_T_NUMERIC) {
                if (e->args[1]->kind != E_CONST || e->args[1]->cval->nul[0])
                    wh__fail(q, WEIR_EINVAL, loc, "round(numeric, n) needs a constant n");
                int64_t d = e->args[1]->cval->i[0];
                e->scale = (int16_t)(d < 0 ? 0 : d > e->args[0]->scale ? e->args[0]->scale : d);
            } else {
                wh__fail(q, WEIR_EINVAL, loc,
                         "function round(double precision, integer) does not exist");
            }
        } else if (fn != F_ABS && e->type == WH_T_NUMERIC) {
            e->scale = 0;
        }
        break;
    case F_DATE_TRUNC:
        e->args[0] = cast_expr(q, e->args[0], WH_T_TEXT, 0, loc);
        if (e->args[1]->type == WH_T_UNKNOWN)
            e->args[1] = cast_expr(q, e->args[1], WH_T_TS, 0, loc);
        if (e->args[1]->type == WH_T_DATE)
            e->args[1] = cast_expr(q, e->args[1], WH_T_TS, 0, loc);
        if (e->args[1]->type != WH_T_TS && e->args[1]->type != WH_T_TSTZ)
            wh__fail(q, WEIR_EINVAL, loc, "function date_trunc(text, %s) does not exist",
                     wh_type_name(e->args[1]->type));
        e->type = e->args[1]->type;
        break;
    case F_EXTRACT:
    case F_DATE_PART:
        e->args[0] = cast_expr(q, e->args[0], WH_T_TEXT, 0, loc);
        if (e->args[1]->type == WH_T_UNKNOWN)
            e->args[1] = cast_expr(q, e->args[1], WH_T_TS, 0, loc);
        if (e->args[1]->type != WH_T_TS && e->args[1]->type != WH_T_TSTZ &&
            e->args[1]->type != WH_T_DATE && e->args[1]->type != WH_T_INTERVAL)
            wh__fail(q, WEIR_EINVAL, loc, "function %s(text, %s) does not exist", name,
                     wh_type_name(e->args[1]->type));
        /* extract() gives numeric in PostgreSQL 14+, date_part() double precision. */
        e->type = fn == F_EXTRACT ? WH_T_NUMERIC : WH_T_FLOAT8;
        e->scale = 0;
        if (fn == F_EXTRACT && e->args[0]->kind == E_CONST && !e->args[0]->cval->nul[0] &&
            (!strcasecmp(e->args[0]->cval->s[0], "epoch") ||
             !strcasecmp(e->args[0]->cval->s[0], "second")))
            e->scale = 6;
        break;
    case F_NOW:
        e->type = WH_T_TSTZ;
        break;
    case F_AGE:
        for (int k = 0; k < nargs; k++) {
            if (e->args[k]->type == WH_T_UNKNOWN || e->args[k]->type == WH_T_DATE)
                e->args[k] = cast_expr(q, e->args[k], WH_T_TS, 0, loc);
            if (e->args[k]->type != WH_T_TS && e->args[k]->type != WH_T_TSTZ)
                wh__fail(q, WEIR_EINVAL, loc, "function age(%s) does not exist",
                         wh_type_name(e->args[k]->type));
        }
        e->type = WH_T_INTERVAL;
        break;
    case F_JUSTIFY_DAYS:
    case F_JUSTIFY_HOURS:
    case F_JUSTIFY_INTERVAL:
        if (e->args[0]->type == WH_T_UNKNOWN)
            e->args[0] = cast_expr(q, e->args[0], WH_T_INTERVAL, 0, loc);
        if (e->args[0]->type != WH_T_INTERVAL)
            wh__fail(q, WEIR_EINVAL, loc, "function %s(%s) does not exist", name,
                     wh_type_name(e->args[0]->type));
        e->type = WH_T_INTERVAL;
        break;
    case F_TO_CHAR:
        if (e->args[0]->type == WH_T_UNKNOWN)
            e->args[0] = cast_expr(q, e->args[0], WH_T_TS, 0, loc);
        if (e->args[0]->type == WH_T_DATE)
            e->args[0] = cast_expr(q, e->args[0], WH_T_TS, 0, loc);
        if (e->args[0]->type != WH_T_TS && e->args[0]->type != WH_T_TSTZ &&
            e->args[0]->type != WH_T_INTERVAL)
            wh__fail(q, WEIR_EINVAL, loc,
                     "to_char(%s, text) is not supported (only dates, timestamps and "
                     "intervals)",
                     wh_type_name(e->args[0]->type));
        e->args[1] = cast_expr(q, e->args[1], WH_T_TEXT, 0, loc);
        e->type = WH_T_TEXT;
        break;
    case F_JSON_PATH:
    case F_JSON_PATH_TEXT:
        for (int k = 0; k < nargs; k++)
            e->args[k] = cast_expr(q, e->args[k], WH_T_TEXT, 0, loc);
        e->type = WH_T_TEXT;
        break;
    default:
        break;
    }
    return e;
}

static struct wh_expr *bind_aexpr(struct wh_q *q, struct wh_bind *bc, json_t *b, int loc)
{
    const char *kind = json_string_value(json_object_get(b, "kind"));
    json_t *names = json_object_get(b, "name");
    const char *op = wh__sval(json_array_get(names, json_array_size(names) - 1));
    json_t *lj = json_object_get(b, "lexpr"), *rj = json_object_get(b, "rexpr");
    if (!strcmp(kind, "AEXPR_OP")) {
        if (!lj) { /* prefix operator */
            struct wh_expr *a = wh__bind(q, bc, rj);
            if (strcmp(op, "-") && strcmp(op, "+"))
                wh__fail(q, WEIR_EINVAL, loc, "prefix operator %s is not supported", op);
            if (a->type == WH_T_UNKNOWN)
                a = cast_expr(q, a, WH_T_FLOAT8, 0, loc);
            if (!wh__type_is_numeric(a->type) && a->type != WH_T_INTERVAL)
                wh__fail(q, WEIR_EINVAL, loc, "operator does not exist: %s %s", op,
                         wh_type_name(a->type));
            if (!strcmp(op, "+"))
                return a;
            struct wh_expr *e = enew(q, E_NEG, loc, 1);
            e->args[0] = a;
            e->type = a->type;
            e->scale = a->scale;
            return e;
        }
        struct wh_expr *a = wh__bind(q, bc, lj), *c = wh__bind(q, bc, rj);
        static const struct {
            const char *op;
            int code;
        } ops[] = { { "+", OP_ADD },    { "-", OP_SUB }, { "*", OP_MUL }, { "/", OP_DIV },
                    { "%", OP_MOD },    { "=", OP_EQ },  { "<>", OP_NE }, { "!=", OP_NE },
                    { "<", OP_LT },     { "<=", OP_LE }, { ">", OP_GT },  { ">=", OP_GE },
                    { "||", OP_CONCAT } };
        if (!strcmp(op, "->") || !strcmp(op, "->>")) {
            /* json (stored as text) -> key | index; ->> gives the value as text. */
            struct wh_expr *e = enew(q, E_FUNC, loc, 2);
            e->fn = op[2] ? F_JSON_GET_TEXT : F_JSON_GET;
            e->args[0] = cast_expr(q, a, WH_T_TEXT, 0, loc);
            bool idx = c->type == WH_T_INT2 || c->type == WH_T_INT4 || c->type == WH_T_INT8;
            e->args[1] = cast_expr(q, c, idx ? WH_T_INT8 : WH_T_TEXT, 0, loc);
            e->type = WH_T_TEXT;
            return e;
        }
        int code = -1;
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
            if (!strcmp(ops[k].op, op))
                code = ops[k].code;
        if (code < 0)
            wh__fail(q, WEIR_EINVAL, loc, "operator %s is not supported", op);
        return wh__binop(q, code, a, c, loc);
    }
    if (!strcmp(kind, "AEXPR_IN")) {
        struct wh_expr *a = wh__bind(q, bc, lj);
        json_t *items = json_object_get(json_object_get(rj, "List"), "items");
        if (!items)
            wh__fail(q, WEIR_EINVAL, loc, "IN (subquery) is not supported yet");
        struct wh_expr *e = enew(q, E_IN, loc, 1 + (int)json_array_size(items));
        e->args[0] = a;
        for (int k = 1; k < e->nargs; k++)
            e->args[k] = wh__bind(q, bc, json_array_get(items, (size_t)k - 1));
        uint8_t t;
        int16_t s;
        wh__unify(q, e->args, e->nargs, loc, &t, &s);
        e->neg = !strcmp(op, "<>");
        e->type = WH_T_BOOL;
        return e;
    }
    if (!strcmp(kind, "AEXPR_LIKE") || !strcmp(kind, "AEXPR_ILIKE")) {
        struct wh_expr *e = enew(q, E_LIKE, loc, 2);
        e->args[0] = cast_expr(q, wh__bind(q, bc, lj), WH_T_TEXT, 0, loc);
        e->args[1] = cast_expr(q, wh__bind(q, bc, rj), WH_T_TEXT, 0, loc);
        e->neg = op[0] == '!';
        e->ci = !strcmp(kind, "AEXPR_ILIKE");
        e->type = WH_T_BOOL;
        return e;
    }
    if (!strcmp(kind, "AEXPR_BETWEEN") || !strcmp(kind, "AEXPR_NOT_BETWEEN")) {
        json_t *items = json_object_get(json_object_get(rj, "List"), "items");
        struct wh_expr *a = wh__bind(q, bc, lj);
        struct wh_expr *lo = wh__binop(q, OP_GE, a, wh__bind(q, bc, json_array_get(items, 0)), loc);
        struct wh_expr *hi = wh__binop(q, OP_LE, a, wh__bind(q, bc, json_array_get(items, 1)), loc);
        struct wh_expr *e = enew(q, E_AND, loc, 2);
        e->args[0] = lo;
        e->args[1] = hi;
        e->type = WH_T_BOOL;
        if (kind[6] == 'N') {
            struct wh_expr *n = enew(q, E_NOT, loc, 1);
            n->args[0] = e;
            n->type = WH_T_BOOL;
            return n;
        }
        return e;
    }
    if (!strcmp(kind, "AEXPR_NULLIF")) {
        struct wh_expr *e = enew(q, E_NULLIF, loc, 2);
        e->args[0] = wh__bind(q, bc, lj);
        e->args[1] = wh__bind(q, bc, rj);
        uint8_t t;
        int16_t s;
        common_type(q, e->args[0], e->args[1], loc, "=", &t, &s);
        if (e->args[0]->type == WH_T_UNKNOWN)
            e->args[0] = cast_expr(q, e->args[0], t, s, loc);
        e->args[1] = cast_expr(q, e->args[1], t, s, loc);
        e->args[0] = cast_expr(q, e->args[0], t, s, loc);
        e->type = t;
        e->scale = s;
        return e;
    }
    if (!strcmp(kind, "AEXPR_DISTINCT") || !strcmp(kind, "AEXPR_NOT_DISTINCT")) {
        struct wh_expr *e = wh__binop(q, OP_EQ, wh__bind(q, bc, lj), wh__bind(q, bc, rj), loc);
        e->kind = E_DISTINCT;
        e->neg = kind[5] == 'N';
        return e;
    }
    wh__fail(q, WEIR_EINVAL, loc, "expression %s is not supported", kind);
}

/* Arithmetic with interval values: timestamp +/- interval, timestamp - timestamp,
 * interval +/- interval, interval * number, number * interval, interval / number. */
static struct wh_expr *interval_binop(struct wh_q *q, int code, struct wh_expr *a,
                                      struct wh_expr *c, int loc)
{
    static const char *const opn[] = { "+",  "-", "*",  "/", "%",  "=",
                                       "<>", "<", "<=", ">", ">=", "||" };
    struct wh_expr *e = enew(q, E_FUNC, loc, 2);
    if (a->type == WH_T_INTERVAL && c->type == WH_T_UNKNOWN && code != OP_MUL && code != OP_DIV)
        c = cast_expr(q, c, WH_T_INTERVAL, 0, loc);
    if (c->type == WH_T_INTERVAL && a->type == WH_T_UNKNOWN && code != OP_MUL)
        a = cast_expr(q, a, WH_T_INTERVAL, 0, loc);
    bool ats = a->type == WH_T_TS || a->type == WH_T_TSTZ || a->type == WH_T_DATE;
    bool cts = c->type == WH_T_TS || c->type == WH_T_TSTZ || c->type == WH_T_DATE;
    if (code == OP_ADD && a->type == WH_T_INTERVAL && cts) {
        struct wh_expr *t = a;
        a = c;
        c = t;
        ats = true;
    }
    if ((code == OP_ADD || code == OP_SUB) && ats && c->type == WH_T_INTERVAL) {
        if (a->type == WH_T_DATE)
            a = cast_expr(q, a, WH_T_TS, 0, loc);
        e->fn = F_TS_ADD_IV;
        e->neg = code == OP_SUB;
        e->type = a->type;
    } else if (code == OP_SUB && (a->type == WH_T_TS || a->type == WH_T_TSTZ)) {
        if (c->type == WH_T_UNKNOWN)
            c = cast_expr(q, c, a->type, 0, loc);
        if (c->type != WH_T_TS && c->type != WH_T_TSTZ)
            goto bad;
        e->fn = F_TS_DIFF;
        e->type = WH_T_INTERVAL;
    } else if ((code == OP_ADD || code == OP_SUB) && a->type == WH_T_INTERVAL &&
               c->type == WH_T_INTERVAL) {
        e->fn = F_IV_ADD;
        e->neg = code == OP_SUB;
        e->type = WH_T_INTERVAL;
    } else if ((code == OP_MUL || code == OP_DIV) && a->type == WH_T_INTERVAL &&
               (wh__type_is_numeric(c->type) || c->type == WH_T_UNKNOWN)) {
        c = cast_expr(q, c, WH_T_FLOAT8, 0, loc);
        e->fn = F_IV_MUL;
        e->neg = code == OP_DIV;
        e->type = WH_T_INTERVAL;
    } else if (code == OP_MUL && c->type == WH_T_INTERVAL &&
               (wh__type_is_numeric(a->type) || a->type == WH_T_UNKNOWN)) {
        struct wh_expr *t = cast_expr(q, a, WH_T_FLOAT8, 0, loc);
        a = c;
        c = t;
        e->fn = F_IV_MUL;
        e->type = WH_T_INTERVAL;
    } else {
        goto bad;
    }
    e->args[0] = a;
    e->args[1] = c;
    return e;
bad:
    wh__fail(q, WEIR_EINVAL, loc, "operator does not exist: %s %s %s", wh_type_name(a->type),
             opn[code], wh_type_name(c->type));
}

struct wh_expr *wh__binop(struct wh_q *q, int code, struct wh_expr *a, struct wh_expr *c, int loc)
{
    static const char *opn[] = { "+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">=", "||" };
    struct wh_expr *e = enew(q, code >= OP_EQ && code <= OP_GE ? E_CMP : E_ARITH, loc, 2);
    e->op = code;
    if (code == OP_CONCAT) {
        e->args[0] = cast_expr(q, a, WH_T_TEXT, 0, loc);
        e->args[1] = cast_expr(q, c, WH_T_TEXT, 0, loc);
        e->type = WH_T_TEXT;
        return e;
    }
    if (e->kind == E_CMP && (a->type == WH_T_INTERVAL || c->type == WH_T_INTERVAL)) {
        if (a->type == WH_T_UNKNOWN)
            a = cast_expr(q, a, WH_T_INTERVAL, 0, loc);
        if (c->type == WH_T_UNKNOWN)
            c = cast_expr(q, c, WH_T_INTERVAL, 0, loc);
        if (a->type != c->type)
            wh__fail(q, WEIR_EINVAL, loc, "operator does not exist: %s %s %s",
                     wh_type_name(a->type), opn[code], wh_type_name(c->type));
        e->args[0] = a;
        e->args[1] = c;
        e->type = WH_T_BOOL;
        return e;
    }
    if (e->kind == E_CMP) {
        uint8_t t;
        int16_t s;
        common_type(q, a, c, loc, opn[code], &t, &s);
        /* Numbers compare without rescaling numeric columns (wh__cmp_rows aligns them). */
        if (!(wh__type_is_numeric(a->type) && wh__type_is_numeric(c->type) &&
              !wh__type_is_float(t))) {
            a = cast_expr(q, a, t, s, loc);
            c = cast_expr(q, c, t, s, loc);
        } else if (t == WH_T_NUMERIC) {
            if (a->type != WH_T_NUMERIC)
                a = cast_expr(q, a, t, 0, loc);
            if (c->type != WH_T_NUMERIC)
                c = cast_expr(q, c, t, 0, loc);
        }
        e->args[0] = a;
        e->args[1] = c;
        e->type = WH_T_BOOL;
        return e;
    }
    if (a->kind == E_INTERVAL || c->kind == E_INTERVAL) {
        /* date/timestamp +/- interval constant (and interval + date/timestamp). */
        struct wh_expr *iv = a->kind == E_INTERVAL ? a : c, *dt = a->kind == E_INTERVAL ? c : a;
        if (dt->type == WH_T_INTERVAL || dt->type == WH_T_UNKNOWN ||
            wh__type_is_numeric(dt->type) || (code != OP_ADD && code != OP_SUB) ||
            (code == OP_SUB && a->kind == E_INTERVAL))
            goto interval_ops;
        if (dt->type == WH_T_DATE)
            dt = cast_expr(q, dt, WH_T_TS, 0, loc);
        if (dt->type != WH_T_TS && dt->type != WH_T_TSTZ)
            wh__fail(q, WEIR_EINVAL, loc, "operator does not exist: %s %s interval",
                     wh_type_name(dt->type), opn[code]);
        struct wh_expr *e2 = enew(q, E_FUNC, loc, 1);
        e2->fn = F_ADD_INTERVAL;
        e2->args[0] = dt;
        int64_t ius = iv->us + iv->days * WH_US_PER_DAY; /* no time zones: a day is 24 h */
        e2->months = code == OP_SUB ? -iv->months : iv->months;
        e2->us = code == OP_SUB ? -ius : ius;
        e2->type = dt->type;
        return e2;
    }
interval_ops:
    if (a->type == WH_T_INTERVAL || c->type == WH_T_INTERVAL ||
        ((code == OP_SUB) && (a->type == WH_T_TS || a->type == WH_T_TSTZ) &&
         (c->type == WH_T_TS || c->type == WH_T_TSTZ || c->type == WH_T_UNKNOWN)))
        return interval_binop(q, code, a, c, loc);
    /* Arithmetic. Date +/- integer and date - date follow PostgreSQL. */
    if (a->type == WH_T_UNKNOWN && c->type != WH_T_UNKNOWN && wh__type_is_numeric(c->type))
        a = cast_expr(q, a, c->type == WH_T_NUMERIC ? WH_T_FLOAT8 : c->type, 0, loc);
    if (c->type == WH_T_UNKNOWN && wh__type_is_numeric(a->type))
        c = cast_expr(q, c, a->type == WH_T_NUMERIC ? WH_T_FLOAT8 : a->type, 0, loc);
    e->args[0] = a;
    e->args[1] = c;
    if (a->type == WH_T_DATE && (code == OP_ADD || code == OP_SUB) &&
        (c->type == WH_T_INT4 || c->type == WH_T_INT2 || c->type == WH_T_INT8)) {
        e->type = WH_T_DATE;
        return e;
    }
    if (a->type == WH_T_DATE && c->type == WH_T_DATE && code == OP_SUB) {
        e->type = WH_T_INT4;
        return e;
    }
    if (!wh__type_is_numeric(a->type) || !wh__type_is_numeric(c->type))
        wh__fail(q, WEIR_EINVAL, loc, "operator does not exist: %s %s %s", wh_type_name(a->type),
                 opn[code], wh_type_name(c->type));
    uint8_t t;
    int16_t s;
    common_type(q, a, c, loc, opn[code], &t, &s);
    if (t == WH_T_INT2)
        t = WH_T_INT4;
    if (t == WH_T_NUMERIC && (code == OP_DIV || code == OP_MOD)) {
        /* Exact numeric division would need arbitrary scale; computed in double. */
        t = WH_T_FLOAT8;
    }
    if (t == WH_T_NUMERIC && code == OP_MUL) {
        int s1 = a->type == WH_T_NUMERIC ? a->scale : 0,
            s2 = c->type == WH_T_NUMERIC ? c->scale : 0;
        e->args[0] = cast_expr(q, a, WH_T_NUMERIC, (int16_t)s1, loc);
        e->args[1] = cast_expr(q, c, WH_T_NUMERIC, (int16_t)s2, loc);
        if (s1 + s2 > 18)
            wh__fail(q, WEIR_EINVAL, loc, "numeric scale too large");
        e->type = WH_T_NUMERIC;
        e->scale = (int16_t)(s1 + s2);
        return e;
    }
    e->args[0] = cast_expr(q, a, t, s, loc);
    e->args[1] = cast_expr(q, c, t, s, loc);
    e->type = t;
    e->scale = s;
    return e;
}

static int sort_vec_cmp(const void *a, const void *b, void *arg)
{
    const struct wh_vec *v = arg;
    return wh__cmp_rows(v, *(const uint32_t *)a, v, *(const uint32_t *)b);
}

/* Uncorrelated subqueries run once, at bind time, and become constants: EXISTS a boolean,
 * a scalar subquery its single value, IN a sorted value list searched per row. A reference
 * to an outer query's column fails to resolve (correlation is not supported). */
static struct wh_expr *bind_sublink(struct wh_q *q, struct wh_bind *bc, json_t *b, int loc)
{
    const char *kind = json_string_value(json_object_get(b, "subLinkType"));
    json_t *sel = json_object_get(json_object_get(b, "subselect"), "SelectStmt");
    if (!sel)
        wh__fail(q, WEIR_EINVAL, loc, "unsupported subquery");
    bool exists = !strcmp(kind, "EXISTS_SUBLINK"), scalar = !strcmp(kind, "EXPR_SUBLINK");
    bool any = !strcmp(kind, "ANY_SUBLINK");
    if (!exists && !scalar && !any)
        wh__fail(q, WEIR_EINVAL, loc, "subquery kind %s is not supported", kind);
    json_t *opn = json_object_get(b, "operName");
    if (any && json_array_size(opn) &&
        strcmp(wh__sval(json_array_get(opn, json_array_size(opn) - 1)), "="))
        wh__fail(q, WEIR_EINVAL, loc, "only = ANY / IN subqueries are supported");
    if (q->ncorr >= (int)(sizeof q->corr / sizeof q->corr[0]))
        wh__fail(q, WEIR_EINVAL, loc, "subqueries are nested too deeply");
    /* Run once with the outer columns it refers to bound as NULL, which finds them; an
     * uncorrelated subquery's result is final. */
    struct wh_corr *f = wh__calloc(q, 1, sizeof *f);
    f->rel = bc->base ? bc->base : bc->rel;
    f->grouped = bc->base != NULL;
    f->discover = true;
    q->corr[q->ncorr++] = f;
    struct wh_rel *r = wh__select(q, sel);
    q->ncorr--;
    if (f->nref) {
        if (!exists && r->ncols != 1)
            wh__fail(q, WEIR_EINVAL, loc, "subquery must return only one column");
        struct wh_expr *e = enew(q, E_CORR, loc, f->nref + (any ? 1 : 0));
        e->col = f->nref;
        e->sub = sel;
        e->orel = bc->rel;
        e->op = exists ? 0 : scalar ? 1 : 2;
        for (int k = 0; k < f->nref; k++) {
            struct wh_expr *c = enew(q, E_COL, loc, 0);
            c->col = f->refs[k];
            c->type = bc->rel->cols[c->col]->type;
            c->scale = bc->rel->cols[c->col]->scale;
            e->args[k] = c;
        }
        e->type = WH_T_BOOL;
        if (scalar) {
            e->type = r->cols[0]->type == WH_T_UNKNOWN ? WH_T_TEXT : r->cols[0]->type;
            e->scale = r->cols[0]->scale;
        } else if (any) {
            struct wh_expr *lhs = wh__bind(q, bc, json_object_get(b, "testexpr"));
            struct wh_expr sub = { .kind = E_COL,
                                   .type = r->cols[0]->type,
                                   .scale = r->cols[0]->scale };
            struct wh_expr *pair[2] = { lhs, &sub };
            uint8_t t;
            int16_t s;
            wh__unify(q, pair, 2, loc, &t, &s);
            e->args[f->nref] = pair[0];
        }
        return e;
    }
    if (exists) {
        struct wh_vec *v = wh__vec_new(q, WH_T_BOOL, 0, 1);
        v->i[0] = r->n > 0;
        return const_expr(q, v, loc);
    }
    if (r->ncols != 1)
        wh__fail(q, WEIR_EINVAL, loc, "subquery must return only one column");
    struct wh_vec *col = r->cols[0];
    if (scalar) {
        if (r->n > 1)
            wh__fail(q, WEIR_EINVAL, loc,
                     "more than one row returned by a subquery used as an expression");
        struct wh_vec *v = wh__vec_new(q, col->type, col->scale, 1);
        if (r->n == 0) {
            v->nul[0] = 1;
        } else {
            uint32_t zero = 0;
            v = wh__vec_gather(q, col, &zero, 1);
        }
        return const_expr(q, v, loc);
    }
    struct wh_expr *lhs = wh__bind(q, bc, json_object_get(b, "testexpr"));
    struct wh_expr sub = { .kind = E_COL, .type = col->type, .scale = col->scale };
    struct wh_expr *pair[2] = { lhs, &sub };
    uint8_t t;
    int16_t s;
    wh__unify(q, pair, 2, loc, &t, &s);
    col = wh__cast(q, col, t, s, loc);
    uint32_t *idx = wh__alloc(q, (r->n + 1) * sizeof *idx);
    size_t m = 0;
    bool sawnull = false;
    for (size_t k = 0; k < r->n; k++) {
        if (col->nul[k])
            sawnull = true;
        else
            idx[m++] = (uint32_t)k;
    }
    qsort_r(idx, m, sizeof *idx, sort_vec_cmp, col);
    struct wh_expr *e = enew(q, E_INSUB, loc, 1);
    e->args[0] = pair[0];
    e->cval = wh__vec_gather(q, col, idx, m);
    e->ci = sawnull; /* the list holds a NULL */
    e->type = WH_T_BOOL;
    return e;
}

struct wh_expr *wh__bind(struct wh_q *q, struct wh_bind *bc, json_t *node)
{
    if (!node)
        wh__fail(q, WEIR_EINTERNAL, -1, "missing expression");
    int loc = wh__loc(node);
    /* Grouped context: group keys and aggregates are columns of the grouped relation. */
    for (int k = 0; k < bc->nsubst; k++)
        if (wh__json_eq(bc->subst[k], node)) {
            struct wh_expr *e = enew(q, E_COL, loc, 0);
            e->col = k;
            e->type = bc->rel->cols[k]->type;
            e->scale = bc->rel->cols[k]->scale;
            return e;
        }
    const char *ty = wh__node_type(node);
    json_t *b = wh__node_body(node);
    if (!strcmp(ty, "ColumnRef")) {
        json_t *fields = json_object_get(b, "fields");
        json_t *last = json_array_get(fields, json_array_size(fields) - 1);
        if (json_object_get(last, "A_Star"))
            wh__fail(q, WEIR_EINVAL, loc, "* is not allowed here");
        if (bc->base) { /* grouped: a column must be a GROUP BY key */
            int c = resolve_col(q, bc->base, fields, loc, false);
            struct wh_expr *oe = c < 0 ? outer_ref(q, fields, loc) : NULL;
            if (oe)
                return oe;
            if (c < 0)
                c = resolve_col(q, bc->base, fields, loc, true);
            for (int k = 0; k < bc->nsubst; k++)
                if (bc->subst_col[k] == c) {
                    struct wh_expr *e = enew(q, E_COL, loc, 0);
                    e->col = k;
                    e->type = bc->rel->cols[k]->type;
                    e->scale = bc->rel->cols[k]->scale;
                    return e;
                }
            wh__fail(q, WEIR_EINVAL, loc,
                     "column \"%s\" must appear in the GROUP BY clause or be used in an "
                     "aggregate function",
                     wh__sval(last));
        }
        int c = resolve_col(q, bc->rel, fields, loc, false);
        if (c < 0) {
            struct wh_expr *oe = outer_ref(q, fields, loc);
            if (oe)
                return oe;
            c = resolve_col(q, bc->rel, fields, loc, true);
        }
        struct wh_expr *e = enew(q, E_COL, loc, 0);
        e->col = c;
        if (!bc->rel->cols[c])
            wh__fail(q, WEIR_EINTERNAL, loc, "column \"%s\" was not loaded", bc->rel->names[c]);
        e->type = bc->rel->cols[c]->type;
        e->scale = bc->rel->cols[c]->scale;
        return e;
    }
    if (!strcmp(ty, "A_Const"))
        return bind_const(q, b, loc);
    if (!strcmp(ty, "TypeCast")) {
        json_t *names = json_object_get(json_object_get(b, "typeName"), "names");
        const char *tname = wh__sval(json_array_get(names, json_array_size(names) - 1));
        if (tname && !strcmp(tname, "interval")) {
            json_t *c = json_object_get(json_object_get(b, "arg"), "A_Const");
            const char *txt =
                json_string_value(json_object_get(json_object_get(c, "sval"), "sval"));
            if (json_array_size(json_object_get(json_object_get(b, "typeName"), "typmods")))
                wh__fail(q, WEIR_EINVAL, loc, "interval field restrictions are not supported");
            if (!txt) {
                struct wh_expr *x = wh__bind(q, bc, json_object_get(b, "arg"));
                if (x->type == WH_T_INTERVAL)
                    return x;
                if (x->type != WH_T_TEXT && x->type != WH_T_UNKNOWN)
                    wh__fail(q, WEIR_EINVAL, loc, "cannot cast type %s to interval",
                             wh_type_name(x->type));
                return cast_expr(q, x, WH_T_INTERVAL, 0, loc);
            }
            struct wh_expr *e = enew(q, E_INTERVAL, loc, 0);
            int32_t mo, dd;
            int64_t us;
            if (!wh__parse_interval(txt, &mo, &dd, &us))
                wh__fail(q, WEIR_EINVAL, loc, "invalid input syntax for type interval: \"%s\"",
                         txt);
            e->months = mo;
            e->days = dd;
            e->us = us;
            e->type = WH_T_INTERVAL;
            return e;
        }
        uint8_t t;
        int16_t s;
        int32_t tm;
        wh__typename(q, json_object_get(b, "typeName"), &t, &s, &tm);
        struct wh_expr *a = wh__bind(q, bc, json_object_get(b, "arg"));
        return cast_expr(q, a, t, s, loc);
    }
    if (!strcmp(ty, "A_Expr"))
        return bind_aexpr(q, bc, b, loc);
    if (!strcmp(ty, "BoolExpr")) {
        const char *op = json_string_value(json_object_get(b, "boolop"));
        int kind = !strcmp(op, "AND_EXPR") ? E_AND : !strcmp(op, "OR_EXPR") ? E_OR : E_NOT;
        struct wh_expr *e = bind_list(q, bc, kind, json_object_get(b, "args"), loc);
        for (int k = 0; k < e->nargs; k++) {
            e->args[k] = cast_expr(q, e->args[k], WH_T_BOOL, 0, loc);
            if (e->args[k]->type != WH_T_BOOL)
                wh__fail(q, WEIR_EINVAL, loc, "argument of %s must be type boolean",
                         kind == E_AND  ? "AND"
                         : kind == E_OR ? "OR"
                                        : "NOT");
        }
        e->type = WH_T_BOOL;
        return e;
    }
    if (!strcmp(ty, "NullTest")) {
        struct wh_expr *e = enew(q, E_NULLTEST, loc, 1);
        e->args[0] = wh__bind(q, bc, json_object_get(b, "arg"));
        e->neg = !strcmp(json_string_value(json_object_get(b, "nulltesttype")), "IS_NOT_NULL");
        e->type = WH_T_BOOL;
        return e;
    }
    if (!strcmp(ty, "BooleanTest")) {
        static const char *tests[] = { "IS_TRUE",      "IS_NOT_TRUE", "IS_FALSE",
                                       "IS_NOT_FALSE", "IS_UNKNOWN",  "IS_NOT_UNKNOWN" };
        const char *bt = json_string_value(json_object_get(b, "booltesttype"));
        struct wh_expr *e = enew(q, E_BOOLTEST, loc, 1);
        e->args[0] = cast_expr(q, wh__bind(q, bc, json_object_get(b, "arg")), WH_T_BOOL, 0, loc);
        for (int k = 0; k < 6; k++)
            if (bt && !strcmp(bt, tests[k]))
                e->op = k;
        e->type = WH_T_BOOL;
        return e;
    }
    if (!strcmp(ty, "CaseExpr")) {
        json_t *args = json_object_get(b, "args"), *arg = json_object_get(b, "arg");
        int nw = (int)json_array_size(args);
        /* args: [cond0, res0, cond1, res1, ..., default] */
        struct wh_expr *e = enew(q, E_CASE, loc, 2 * nw + 1);
        struct wh_expr *subject = arg ? wh__bind(q, bc, arg) : NULL;
        struct wh_expr **res = wh__calloc(q, (size_t)nw + 1, sizeof *res);
        for (int k = 0; k < nw; k++) {
            json_t *w = json_object_get(json_array_get(args, (size_t)k), "CaseWhen");
            struct wh_expr *c = wh__bind(q, bc, json_object_get(w, "expr"));
            if (subject)
                c = wh__binop(q, OP_EQ, subject, c, loc);
            c = cast_expr(q, c, WH_T_BOOL, 0, loc);
            if (c->type != WH_T_BOOL)
                wh__fail(q, WEIR_EINVAL, wh__loc(json_object_get(w, "expr")),
                         "argument of CASE/WHEN must be type boolean");
            e->args[2 * k] = c;
            res[k] = wh__bind(q, bc, json_object_get(w, "result"));
        }
        json_t *dj = json_object_get(b, "defresult");
        res[nw] = dj ? wh__bind(q, bc, dj) : NULL;
        wh__unify(q, res, nw + 1, loc, &e->type, &e->scale);
        for (int k = 0; k < nw; k++)
            e->args[2 * k + 1] = res[k];
        e->args[2 * nw] = res[nw];
        return e;
    }
    if (!strcmp(ty, "CoalesceExpr") || !strcmp(ty, "MinMaxExpr")) {
        bool co = ty[0] == 'C';
        struct wh_expr *e =
            bind_list(q, bc, co ? E_COALESCE : E_MINMAX, json_object_get(b, "args"), loc);
        wh__unify(q, e->args, e->nargs, loc, &e->type, &e->scale);
        if (!co)
            e->neg = !strcmp(json_string_value(json_object_get(b, "op")), "IS_LEAST");
        return e;
    }
    if (!strcmp(ty, "FuncCall"))
        return bind_func(q, bc, b, loc);
    if (!strcmp(ty, "SQLValueFunction")) {
        const char *op = json_string_value(json_object_get(b, "op"));
        struct wh_expr *e = enew(q, E_FUNC, loc, 0);
        e->fn = F_NOW;
        e->type = WH_T_TSTZ;
        if (!strcmp(op, "SVFOP_CURRENT_DATE"))
            return cast_expr(q, e, WH_T_DATE, 0, loc);
        if (!strcmp(op, "SVFOP_CURRENT_TIMESTAMP") || !strcmp(op, "SVFOP_NOW"))
            return e;
        if (!strcmp(op, "SVFOP_LOCALTIMESTAMP"))
            return cast_expr(q, e, WH_T_TS, 0, loc);
        wh__fail(q, WEIR_EINVAL, loc, "%s is not supported", op);
    }
    if (!strcmp(ty, "SubLink"))
        return bind_sublink(q, bc, b, loc);
    if (!strcmp(ty, "ParamRef"))
        wh__fail(q, WEIR_EINVAL, loc, "parameters ($n) are not supported");
    wh__fail(q, WEIR_EINVAL, loc, "expression %s is not supported", ty);
}

/* ---- evaluation ---- */

static struct wh_vec *broadcast(struct wh_q *q, const struct wh_vec *c, size_t n)
{
    struct wh_vec *v = wh__vec_new(q, c->type, c->scale, n);
    if (c->type == WH_T_UNKNOWN && c->s)
        v->s = wh__calloc(q, n ? n : 1, sizeof *v->s);
    for (size_t r = 0; r < n; r++) {
        v->nul[r] = c->nul[0];
        if (v->s)
            v->s[r] = c->s ? c->s[0] : NULL;
        else if (v->f)
            v->f[r] = c->f[0];
        else
            v->i[r] = c->i[0];
        if (v->m)
            v->m[r] = c->m[0];
    }
    return v;
}

static bool like_match(const char *s, const char *p, bool ci)
{
    while (*p) {
        if (*p == '%') {
            while (*p == '%')
                p++;
            if (!*p)
                return true;
            for (; *s; s++)
                if (like_match(s, p, ci))
                    return true;
            return false;
        }
        if (!*s)
            return false;
        if (*p == '_') {
            /* One character: skip a whole UTF-8 sequence. */
            s++;
            while ((*s & 0xC0) == 0x80)
                s++;
            p++;
            continue;
        }
        if (*p == '\\' && p[1])
            p++;
        char a = *s, b = *p;
        if (ci) {
            a = (char)tolower((unsigned char)a);
            b = (char)tolower((unsigned char)b);
        }
        if (a != b)
            return false;
        s++;
        p++;
    }
    return !*s;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += (*s & 0xC0) != 0x80;
    return n;
}

/* Byte offset of character `k` (0-based) in s, clamped to the end. */
static size_t utf8_off(const char *s, int64_t k)
{
    size_t o = 0;
    while (s[o] && k > 0) {
        o++;
        while ((s[o] & 0xC0) == 0x80)
            o++;
        k--;
    }
    return o;
}

static int64_t trunc_ts(struct wh_q *q, const char *unit, int64_t us, int loc)
{
    int64_t days = us / WH_US_PER_DAY, rem = us % WH_US_PER_DAY;
    if (rem < 0) {
        rem += WH_US_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    wh__civil_from_days(days, &y, &m, &d);
    if (!strcasecmp(unit, "microseconds"))
        return us;
    if (!strcasecmp(unit, "second"))
        return days * WH_US_PER_DAY + rem / 1000000 * 1000000;
    if (!strcasecmp(unit, "minute"))
        return days * WH_US_PER_DAY + rem / 60000000 * 60000000;
    if (!strcasecmp(unit, "hour"))
        return days * WH_US_PER_DAY + rem / 3600000000LL * 3600000000LL;
    if (!strcasecmp(unit, "day"))
        return days * WH_US_PER_DAY;
    if (!strcasecmp(unit, "week")) {
        int64_t dow = ((days % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
        return (days - dow) * WH_US_PER_DAY;
    }
    if (!strcasecmp(unit, "month"))
        return wh__days_from_civil(y, m, 1) * WH_US_PER_DAY;
    if (!strcasecmp(unit, "quarter"))
        return wh__days_from_civil(y, (m - 1) / 3 * 3 + 1, 1) * WH_US_PER_DAY;
    if (!strcasecmp(unit, "year"))
        return wh__days_from_civil(y, 1, 1) * WH_US_PER_DAY;
    if (!strcasecmp(unit, "decade"))
        return wh__days_from_civil(y - (y % 10 + 10) % 10, 1, 1) * WH_US_PER_DAY;
    wh__fail(q, WEIR_EINVAL, loc, "unit \"%s\" not recognized for date_trunc", unit);
}

/* extract(): returns the field scaled by 10^scale (scale 6 for seconds and epoch). */
static double extract_field(struct wh_q *q, const char *f, int64_t us, int loc)
{
    int64_t days = us / WH_US_PER_DAY, rem = us % WH_US_PER_DAY;
    if (rem < 0) {
        rem += WH_US_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    wh__civil_from_days(days, &y, &m, &d);
    if (!strcasecmp(f, "year"))
        return (double)y;
    if (!strcasecmp(f, "month"))
        return m;
    if (!strcasecmp(f, "day"))
        return d;
    if (!strcasecmp(f, "hour"))
        return (double)(rem / 3600000000LL);
    if (!strcasecmp(f, "minute"))
        return (double)(rem / 60000000 % 60);
    if (!strcasecmp(f, "second"))
        return (double)(rem % 60000000) / 1e6;
    if (!strcasecmp(f, "epoch"))
        return (double)us / 1e6;
    if (!strcasecmp(f, "quarter"))
        return (m - 1) / 3 + 1;
    if (!strcasecmp(f, "dow"))
        return (double)(((days % 7) + 7 + 4) % 7);
    if (!strcasecmp(f, "isodow"))
        return (double)(((days % 7) + 7 + 3) % 7 + 1);
    if (!strcasecmp(f, "doy"))
        return (double)(days - wh__days_from_civil(y, 1, 1) + 1);
    if (!strcasecmp(f, "decade"))
        return (double)(y >= 0 ? y / 10 : -((-y + 9) / 10));
    if (!strcasecmp(f, "century"))
        return (double)(y > 0 ? (y + 99) / 100 : -((99 - y) / 100));
    if (!strcasecmp(f, "week")) {
        /* ISO week: the week with the year's first Thursday is week 1. */
        int64_t dow = ((days % 7) + 7 + 3) % 7;
        int64_t thu = days - dow + 3;
        int64_t ty;
        unsigned tm, td;
        wh__civil_from_days(thu, &ty, &tm, &td);
        return (double)((thu - wh__days_from_civil(ty, 1, 1)) / 7 + 1);
    }
    wh__fail(q, WEIR_EINVAL, loc, "unit \"%s\" not recognized for extract", f);
}

static char *trim_str(struct wh_q *q, const char *s, const char *chars, bool left, bool right)
{
    size_t n = strlen(s), a = 0;
    if (left)
        while (a < n && strchr(chars, s[a]))
            a++;
    if (right)
        while (n > a && strchr(chars, s[n - 1]))
            n--;
    return wh__strndup(q, s + a, n - a);
}

static void decref_json(void *p)
{
    json_decref(p);
}

/* Steps into a JSON value by object key or array index (text "3" indexes arrays, as in
 * PostgreSQL's path functions). Borrowed result or NULL. */
static json_t *json_step(json_t *v, const struct wh_vec *key, size_t r)
{
    if (key->s) {
        const char *k = key->s[r];
        if (json_is_object(v))
            return json_object_get(v, k);
        if (json_is_array(v)) {
            char *end = NULL;
            long i = strtol(k, &end, 10);
            if (end == k || *end)
                return NULL;
            return json_array_get(v, i < 0 ? json_array_size(v) + (size_t)i : (size_t)i);
        }
        return NULL;
    }
    if (!json_is_array(v))
        return NULL;
    int64_t i = key->i[r];
    if (i < 0)
        i += (int64_t)json_array_size(v);
    return i < 0 ? NULL : json_array_get(v, (size_t)i);
}

static void eval_json(struct wh_q *q, const struct wh_expr *e, struct wh_vec **a, struct wh_vec *o)
{
    bool text = e->fn == F_JSON_GET_TEXT || e->fn == F_JSON_PATH_TEXT;
    for (size_t r = 0; r < o->n; r++) {
        bool anynull = false;
        for (int k = 0; k < e->nargs; k++)
            anynull |= a[k]->nul[r];
        if (anynull) {
            o->nul[r] = 1;
            continue;
        }
        json_error_t je;
        json_t *doc = json_loads(a[0]->s[r], JSON_DECODE_ANY, &je);
        if (!doc)
            wh__fail(q, WEIR_EINVAL, e->loc, "invalid input syntax for type json: %s", je.text);
        if (arena_on_reset(q->a, decref_json, doc) < 0) {
            json_decref(doc);
            wh__fail(q, WEIR_ETOOBIG, e->loc, "query memory limit exceeded");
        }
        json_t *v = doc;
        for (int k = 1; k < e->nargs && v; k++)
            v = json_step(v, a[k], r);
        if (!v || (text && json_is_null(v))) {
            o->nul[r] = 1;
            continue;
        }
        if (text && json_is_string(v)) {
            o->s[r] = wh__strdup(q, json_string_value(v));
            continue;
        }
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!dump)
            wh__fail(q, WEIR_EINTERNAL, e->loc, "cannot encode a json value");
        o->s[r] = wh__strdup(q, dump);
        free(dump);
    }
}

/* ---- interval values, age(), to_char() ---- */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
    static const unsigned md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

/* Splits microseconds since 1970 into a civil date and the time of day. */
static void ts_split(int64_t t, int64_t *y, unsigned *m, unsigned *d, int64_t *tod)
{
    int64_t days = t / WH_US_PER_DAY, rem = t % WH_US_PER_DAY;
    if (rem < 0) {
        rem += WH_US_PER_DAY;
        days--;
    }
    wh__civil_from_days(days, y, m, d);
    *tod = rem;
}

/* t + months, calendar-wise with the day clamped to the month's last (PostgreSQL). */
static int64_t ts_add_months(int64_t t, int64_t months)
{
    if (!months)
        return t;
    int64_t y, tod;
    unsigned m, d;
    ts_split(t, &y, &m, &d, &tod);
    int64_t mm = y * 12 + (m - 1) + months;
    int64_t ny = mm >= 0 ? mm / 12 : -((-mm + 11) / 12);
    unsigned nm = (unsigned)(mm - ny * 12) + 1;
    unsigned lim = month_days(ny, nm);
    return wh__days_from_civil(ny, nm, d > lim ? lim : d) * WH_US_PER_DAY + tod;
}

static int64_t ts_add_interval(struct wh_q *q, int64_t t, int64_t m, int64_t us, bool neg, int loc)
{
    int64_t mo = wh__iv_months(m), dd = wh__iv_days(m);
    if (neg) {
        mo = -mo;
        dd = -dd;
        us = -us;
    }
    if (mo > 240000 || mo < -240000)
        wh__fail(q, WEIR_EINVAL, loc, "timestamp out of range");
    t = ts_add_months(t, mo);
    int64_t o;
    if (__builtin_add_overflow(t, dd * WH_US_PER_DAY, &o) || __builtin_add_overflow(o, us, &o))
        wh__fail(q, WEIR_EINVAL, loc, "timestamp out of range");
    return o;
}

static void iv_store(struct wh_q *q, struct wh_vec *o, size_t r, int64_t mo, int64_t dd,
                     int64_t us1, int64_t us2, int loc)
{
    int64_t us;
    if (mo > INT32_MAX || mo < INT32_MIN || dd > INT32_MAX || dd < INT32_MIN ||
        __builtin_add_overflow(us1, us2, &us))
        wh__fail(q, WEIR_EINVAL, loc, "interval out of range");
    o->m[r] = wh__iv_pack((int32_t)mo, (int32_t)dd);
    o->i[r] = us;
}

static double ts_round(double x)
{
    return rint(x * 1e6) / 1e6;
}

/* PostgreSQL's interval_mul: fractional months spill into days (30 a month), fractional
 * days into time. */
static void iv_mul(struct wh_q *q, struct wh_vec *o, size_t r, int64_t m, int64_t us, double f,
                   bool div, int loc)
{
    if (div) {
        if (f == 0)
            wh__fail(q, WEIR_EINVAL, loc, "division by zero");
        f = 1.0 / f;
    }
    double om = wh__iv_months(m), od = wh__iv_days(m);
    double rm = om * f, rd = od * f, rt = (double)us * f;
    if (!isfinite(rm) || !isfinite(rd) || !isfinite(rt) || fabs(rm) > INT32_MAX ||
        fabs(rd) > INT32_MAX || fabs(rt) > 9.2e18)
        wh__fail(q, WEIR_EINVAL, loc, "interval out of range");
    int64_t mo = (int64_t)rm, dd = (int64_t)rd;
    double mrem = ts_round((rm - (double)mo) * 30);
    double srem = ts_round((rd - (double)dd + mrem - (double)(int64_t)mrem) * 86400);
    if (fabs(srem) >= 86400) {
        dd += (int64_t)(srem / 86400);
        srem -= (double)(int64_t)(srem / 86400) * 86400;
    }
    dd += (int64_t)mrem;
    iv_store(q, o, r, mo, dd, (int64_t)rint(rt + srem * 1e6), 0, loc);
}

static void iv_justify(struct wh_q *q, struct wh_vec *o, size_t r, int64_t m, int64_t us, int fn,
                       int loc)
{
    int64_t mo = wh__iv_months(m), dd = wh__iv_days(m), t = us;
    if (fn == F_JUSTIFY_INTERVAL && ((dd > 0 && t > 0) || (dd < 0 && t < 0))) {
        mo += dd / 30;
        dd %= 30;
    }
    if (fn != F_JUSTIFY_DAYS) {
        dd += t / WH_US_PER_DAY;
        t %= WH_US_PER_DAY;
    }
    if (fn != F_JUSTIFY_HOURS) {
        mo += dd / 30;
        dd %= 30;
        if (mo > 0 && (dd < 0 || (fn == F_JUSTIFY_INTERVAL && dd == 0 && t < 0))) {
            dd += 30;
            mo--;
        } else if (mo < 0 && (dd > 0 || (fn == F_JUSTIFY_INTERVAL && dd == 0 && t > 0))) {
            dd -= 30;
            mo++;
        }
    }
    if (fn != F_JUSTIFY_DAYS) {
        if (dd > 0 && t < 0) {
            t += WH_US_PER_DAY;
            dd--;
        } else if (dd < 0 && t > 0) {
            t -= WH_US_PER_DAY;
            dd++;
        }
    }
    iv_store(q, o, r, mo, dd, t, 0, loc);
}

/* age(x, y): x - y in years, months and days, borrowing as PostgreSQL's timestamp_age. */
static void ts_age(struct wh_vec *o, size_t r, int64_t x, int64_t y)
{
    int64_t y1, y2, t1, t2;
    unsigned m1, m2, d1, d2;
    ts_split(x, &y1, &m1, &d1, &t1);
    ts_split(y, &y2, &m2, &d2, &t2);
    int64_t us = t1 - t2, mday = (int64_t)d1 - d2, mon = (int64_t)m1 - m2, year = y1 - y2;
    bool neg = x < y;
    if (neg) {
        us = -us;
        mday = -mday;
        mon = -mon;
        year = -year;
    }
    while (us < 0) {
        us += WH_US_PER_DAY;
        mday--;
    }
    while (mday < 0) {
        mday += neg ? month_days(y1, m1) : month_days(y2, m2);
        mon--;
    }
    while (mon < 0) {
        mon += 12;
        year--;
    }
    if (neg) {
        us = -us;
        mday = -mday;
        mon = -mon;
        year = -year;
    }
    o->m[r] = wh__iv_pack((int32_t)(year * 12 + mon), (int32_t)mday);
    o->i[r] = us;
}

static double extract_interval(struct wh_q *q, const char *f, int64_t m, int64_t us, int loc)
{
    int64_t mo = wh__iv_months(m), dd = wh__iv_days(m);
    if (!strcasecmp(f, "epoch"))
        return 365.25 * 86400 * (double)(mo / 12) + 30.0 * 86400 * (double)(mo % 12) +
               86400.0 * (double)dd + (double)us / 1e6;
    if (!strcasecmp(f, "year"))
        return (double)(mo / 12);
    if (!strcasecmp(f, "month"))
        return (double)(mo % 12);
    if (!strcasecmp(f, "quarter"))
        return (double)((mo % 12) / 3 + 1);
    if (!strcasecmp(f, "decade"))
        return (double)(mo / 120);
    if (!strcasecmp(f, "century"))
        return (double)(mo / 1200);
    if (!strcasecmp(f, "millennium"))
        return (double)(mo / 12000);
    if (!strcasecmp(f, "day"))
        return (double)dd;
    if (!strcasecmp(f, "hour"))
        return (double)(us / 3600000000LL);
    if (!strcasecmp(f, "minute"))
        return (double)(us / 60000000 % 60);
    if (!strcasecmp(f, "second"))
        return (double)(us % 60000000) / 1e6;
    if (!strcasecmp(f, "milliseconds"))
        return (double)(us % 60000000) / 1e3;
    if (!strcasecmp(f, "microseconds"))
        return (double)(us % 60000000);
    wh__fail(q, WEIR_EINVAL, loc, "unit \"%s\" not supported for type interval", f);
}

/* Fields that to_char prints. */
struct tc_fields {
    int64_t year, mon, mday, hour, min, sec, us, doy, days;
    int dow; /* 0 = Sunday */
    int64_t iso_year, iso_week;
    bool tz, iv;
};

static const char *const tc_months[] = { "January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December" };
static const char *const tc_days[] = { "Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday" };

static void tc_put(struct wh_q *q, char **buf, size_t *n, size_t *cap, const char *s, size_t l)
{
    if (*n + l + 1 > *cap) {
        size_t nc = (*cap + l + 1) * 2;
        char *nb = wh__alloc(q, nc);
        memcpy(nb, *buf, *n);
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *n, s, l);
    *n += l;
    (*buf)[*n] = 0;
}

/* A name in the pattern's case: "MONTH" upper, "Month" capitalized, "month" lower; padded
 * to `width` unless in fill mode; `abbr` keeps three letters. */
static void tc_name(struct wh_q *q, char **buf, size_t *n, size_t *cap, const char *name,
                    const char *pat, bool abbr, int width, bool fm)
{
    char t[16];
    size_t l = abbr ? 3 : strlen(name), w = width < 0 ? 0 : width > 12 ? 12 : (size_t)width;
    if (l > 12)
        l = 12;
    for (size_t k = 0; k < l; k++) {
        char c = name[k];
        if (pat[0] >= 'A' && pat[0] <= 'Z' && pat[1] >= 'A' && pat[1] <= 'Z')
            c = (char)toupper((unsigned char)c);
        else if (pat[0] >= 'a' && pat[0] <= 'z')
            c = (char)tolower((unsigned char)c);
        t[k] = c;
    }
    while (!abbr && !fm && l < w)
        t[l++] = ' ';
    tc_put(q, buf, n, cap, t, l);
}

static char *tc_format(struct wh_q *q, const struct tc_fields *f, const char *pat, int loc)
{
    size_t n = 0, cap = strlen(pat) * 4 + 16;
    char *buf = wh__alloc(q, cap);
    buf[0] = 0;
    const char *p = pat;
    while (*p) {
        bool fm = false;
        if (!strncmp(p, "FM", 2) || !strncmp(p, "fm", 2)) {
            fm = true;
            p += 2;
            if (!*p)
                break;
        }
        if (*p == '"') { /* literal text; \" inside */
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                tc_put(q, &buf, &n, &cap, p, 1);
                p++;
            }
            if (*p)
                p++;
            continue;
        }
        if (*p == '\\' && p[1]) {
            tc_put(q, &buf, &n, &cap, p + 1, 1);
            p += 2;
            continue;
        }
        /* Numeric fields: pattern, value, zero-padded width. */
        static const char *const numpat[] = { "HH24", "HH12", "HH",  "MI", "SS", "MS",
                                              "US",   "YYYY", "YYY", "YY", "Y",  "IYYY",
                                              "MM",   "DDD",  "DD",  "D",  "ID", "IW",
                                              "WW",   "Q",    "CC",  "J" };
        size_t pl = 0;
        int which = -1;
        for (size_t k = 0; k < sizeof numpat / sizeof numpat[0]; k++) {
            size_t l = strlen(numpat[k]);
            if (!strncasecmp(p, numpat[k], l) && l > pl &&
                !(numpat[k][0] == 'D' &&
                  (p[1] == 'a' || p[1] == 'A' || p[1] == 'y' || p[1] == 'Y'))) {
                pl = l;
                which = (int)k;
            }
        }
        /* Names first: "Month", "Mon", "Day", "Dy", AM/PM. */
        if (!strncasecmp(p, "MONTH", 5)) {
            if (f->iv || f->mon < 1)
                goto unsupported;
            tc_name(q, &buf, &n, &cap, tc_months[f->mon - 1], p, false, 9, fm);
            p += 5;
            continue;
        }
        if (!strncasecmp(p, "MON", 3)) {
            if (f->iv || f->mon < 1)
                goto unsupported;
            tc_name(q, &buf, &n, &cap, tc_months[f->mon - 1], p, true, 3, fm);
            p += 3;
            continue;
        }
        if (!strncasecmp(p, "DAY", 3)) {
            if (f->iv)
                goto unsupported;
            tc_name(q, &buf, &n, &cap, tc_days[f->dow], p, false, 9, fm);
            p += 3;
            continue;
        }
        if (!strncasecmp(p, "DY", 2)) {
            if (f->iv)
                goto unsupported;
            tc_name(q, &buf, &n, &cap, tc_days[f->dow], p, true, 3, fm);
            p += 2;
            continue;
        }
        if (!strncasecmp(p, "AM", 2) || !strncasecmp(p, "PM", 2)) {
            const char *s = f->hour % 24 < 12 ? "AM" : "PM";
            char t[3] = { s[0], s[1], 0 };
            if (p[0] >= 'a' && p[0] <= 'z') {
                t[0] = (char)tolower((unsigned char)t[0]);
                t[1] = (char)tolower((unsigned char)t[1]);
            }
            tc_put(q, &buf, &n, &cap, t, 2);
            p += 2;
            continue;
        }
        if (!strncasecmp(p, "A.M.", 4) || !strncasecmp(p, "P.M.", 4)) {
            bool am = f->hour % 24 < 12, lo = p[0] >= 'a' && p[0] <= 'z';
            tc_put(q, &buf, &n, &cap, am ? (lo ? "a.m." : "A.M.") : (lo ? "p.m." : "P.M."), 4);
            p += 4;
            continue;
        }
        if (!strncmp(p, "TZ", 2) || !strncmp(p, "tz", 2)) {
            if (f->tz)
                tc_put(q, &buf, &n, &cap, p[0] == 'T' ? "UTC" : "utc", 3);
            p += 2;
            continue;
        }
        if (which < 0) {
            tc_put(q, &buf, &n, &cap, p, 1);
            p++;
            continue;
        }
        const char *np = numpat[which];
        int64_t v = 0;
        int width = 2;
        if (!strcmp(np, "HH24")) {
            v = f->hour;
        } else if (!strcmp(np, "HH12") || !strcmp(np, "HH")) {
            v = f->hour % 12 == 0 ? 12 : f->hour % 12;
        } else if (!strcmp(np, "MI")) {
            v = f->min;
        } else if (!strcmp(np, "SS")) {
            v = f->sec;
        } else if (!strcmp(np, "MS")) {
            v = f->us / 1000;
            width = 3;
        } else if (!strcmp(np, "US")) {
            v = f->us;
            width = 6;
        } else if (!strcmp(np, "YYYY") || !strcmp(np, "IYYY")) {
            v = np[0] == 'I' ? f->iso_year : f->year;
            width = 4;
        } else if (!strcmp(np, "YYY")) {
            v = f->year % 1000;
            width = 3;
        } else if (!strcmp(np, "YY")) {
            v = f->year % 100;
        } else if (!strcmp(np, "Y")) {
            v = f->year % 10;
            width = 1;
        } else if (!strcmp(np, "MM")) {
            v = f->mon;
        } else if (!strcmp(np, "DDD")) {
            v = f->iv ? f->days : f->doy;
            width = 3;
        } else if (!strcmp(np, "DD")) {
            v = f->mday;
        } else if (!strcmp(np, "D")) {
            v = f->dow + 1;
            width = 1;
        } else if (!strcmp(np, "ID")) {
            v = f->dow == 0 ? 7 : f->dow;
            width = 1;
        } else if (!strcmp(np, "IW")) {
            v = f->iso_week;
        } else if (!strcmp(np, "WW")) {
            v = (f->doy - 1) / 7 + 1;
        } else if (!strcmp(np, "Q")) {
            v = (f->mon - 1) / 3 + 1;
            width = 1;
        } else if (!strcmp(np, "CC")) {
            v = f->year > 0 ? (f->year + 99) / 100 : -((99 - f->year) / 100);
        } else { /* J: Julian day */
            v = f->days + 2440588;
            width = 1;
        }
        if (f->iv && (!strcmp(np, "D") || !strcmp(np, "ID") || !strcmp(np, "IW") ||
                      !strcmp(np, "WW") || !strcmp(np, "J") || !strcmp(np, "IYYY")))
            goto unsupported;
        char t[32];
        /* Hours, minutes and seconds keep two digits after a minus sign (intervals). */
        bool hms = np[0] == 'H' || !strcmp(np, "MI") || !strcmp(np, "SS");
        int l = snprintf(t, sizeof t, "%0*lld", fm ? 1 : width + (hms && v < 0), (long long)v);
        tc_put(q, &buf, &n, &cap, t, (size_t)(l > 0 ? l : 0));
        p += pl;
    }
    return buf;
unsupported:
    wh__fail(q, WEIR_EINVAL, loc, "to_char pattern \"%.20s\" is not supported for %s", p,
             f->iv ? "interval" : "this value");
}

static char *ts_to_char(struct wh_q *q, int64_t t, bool tz, const char *pat, int loc)
{
    struct tc_fields f = { .tz = tz };
    int64_t y, tod;
    unsigned m, d;
    ts_split(t, &y, &m, &d, &tod);
    int64_t days = (t - tod) / WH_US_PER_DAY;
    f.year = y;
    f.mon = m;
    f.mday = d;
    f.hour = tod / 3600000000LL;
    f.min = tod / 60000000 % 60;
    f.sec = tod / 1000000 % 60;
    f.us = tod % 1000000;
    f.days = days;
    f.doy = days - wh__days_from_civil(y, 1, 1) + 1;
    f.dow = (int)(((days % 7) + 7 + 4) % 7);
    int64_t idow = ((days % 7) + 7 + 3) % 7; /* Monday 0 */
    int64_t thu = days - idow + 3, ty;
    unsigned tm, td;
    wh__civil_from_days(thu, &ty, &tm, &td);
    f.iso_year = ty;
    f.iso_week = (thu - wh__days_from_civil(ty, 1, 1)) / 7 + 1;
    return tc_format(q, &f, pat, loc);
}

static char *iv_to_char(struct wh_q *q, int64_t m, int64_t us, const char *pat, int loc)
{
    struct tc_fields f = { .iv = true };
    int64_t mo = wh__iv_months(m);
    f.year = mo / 12;
    f.mon = mo % 12;
    f.mday = wh__iv_days(m);
    f.days = f.mday;
    f.hour = us / 3600000000LL;
    f.min = us / 60000000 % 60;
    f.sec = us / 1000000 % 60;
    f.us = us % 1000000;
    return tc_format(q, &f, pat, loc);
}

static void eval_func(struct wh_q *q, const struct wh_expr *e, struct wh_vec **a, struct wh_vec *o)
{
    if (e->fn >= F_JSON_GET && e->fn <= F_JSON_PATH_TEXT) {
        eval_json(q, e, a, o);
        return;
    }
    size_t n = o->n;
    for (size_t r = 0; r < n; r++) {
        bool anynull = false;
        for (int k = 0; k < e->nargs; k++)
            anynull |= a[k]->nul[r];
        if (e->fn == F_CONCAT) {
            size_t len = 0;
            for (int k = 0; k < e->nargs; k++)
                len += a[k]->nul[r] ? 0 : strlen(a[k]->s[r]);
            char *s = wh__alloc(q, len + 1), *p = s;
            for (int k = 0; k < e->nargs; k++)
                if (!a[k]->nul[r]) {
                    size_t l = strlen(a[k]->s[r]);
                    memcpy(p, a[k]->s[r], l);
                    p += l;
                }
            *p = 0;
            o->s[r] = s;
            continue;
        }
        if (anynull) {
            o->nul[r] = 1;
            continue;
        }
        const char *s0 = a[0] && a[0]->s ? a[0]->s[r] : NULL;
        switch (e->fn) {
        case F_LOWER:
        case F_UPPER: {
            char *s = wh__strdup(q, s0);
            for (char *p = s; *p; p++)
                *p = (char)(e->fn == F_LOWER ? tolower((unsigned char)*p)
                                             : toupper((unsigned char)*p));
            o->s[r] = s;
            break;
        }
        case F_LENGTH:
            o->i[r] = (int64_t)utf8_len(s0);
            break;
        case F_SUBSTR: {
            int64_t from = a[1]->i[r], len = e->nargs > 2 ? a[2]->i[r] : INT64_MAX / 4;
            if (len < 0)
                wh__fail(q, WEIR_EINVAL, e->loc, "negative substring length not allowed");
            int64_t end = from + len; /* exclusive, 1-based */
            if (from < 1)
                from = 1;
            if (end <= from) {
                o->s[r] = "";
                break;
            }
            size_t b0 = utf8_off(s0, from - 1), b1 = utf8_off(s0, end - 1);
            o->s[r] = wh__strndup(q, s0 + b0, b1 - b0);
            break;
        }
        case F_REPLACE: {
            const char *from = a[1]->s[r], *to = a[2]->s[r];
            size_t fl = strlen(from), tl = strlen(to);
            if (!fl) {
                o->s[r] = s0;
                break;
            }
            size_t cnt = 0;
            for (const char *p = s0; (p = strstr(p, from)); p += fl)
                cnt++;
            char *s = wh__alloc(q, strlen(s0) + cnt * tl + 1), *w = s;
            const char *p = s0, *m;
            while ((m = strstr(p, from))) {
                memcpy(w, p, (size_t)(m - p));
                w += m - p;
                memcpy(w, to, tl);
                w += tl;
                p = m + fl;
            }
            size_t rest = strlen(p);
            memcpy(w, p, rest + 1);
            o->s[r] = s;
            break;
        }
        case F_BTRIM:
        case F_LTRIM:
        case F_RTRIM:
            o->s[r] = trim_str(q, s0, e->nargs > 1 ? a[1]->s[r] : " ", e->fn != F_RTRIM,
                               e->fn != F_LTRIM);
            break;
        case F_SPLIT_PART: {
            const char *delim = a[1]->s[r];
            int64_t k = a[2]->i[r];
            size_t dl = strlen(delim);
            if (k <= 0)
                wh__fail(q, WEIR_EINVAL, e->loc, "field position must be greater than zero");
            const char *p = s0;
            if (!dl) {
                o->s[r] = k == 1 ? s0 : "";
                break;
            }
            while (--k > 0 && p) {
                p = strstr(p, delim);
                if (p)
                    p += dl;
            }
            if (!p) {
                o->s[r] = "";
                break;
            }
            const char *end = strstr(p, delim);
            o->s[r] = end ? wh__strndup(q, p, (size_t)(end - p)) : p;
            break;
        }
        case F_STRPOS: {
            const char *m = strstr(s0, a[1]->s[r]);
            if (!m) {
                o->i[r] = 0;
            } else {
                char *pre = wh__strndup(q, s0, (size_t)(m - s0));
                o->i[r] = (int64_t)utf8_len(pre) + 1;
            }
            break;
        }
        case F_LEFT:
        case F_RIGHT: {
            int64_t k = a[1]->i[r], len = (int64_t)utf8_len(s0);
            int64_t take = k >= 0 ? (k < len ? k : len) : (len + k > 0 ? len + k : 0);
            if (e->fn == F_LEFT) {
                o->s[r] = wh__strndup(q, s0, utf8_off(s0, take));
            } else {
                o->s[r] = s0 + utf8_off(s0, len - take);
            }
            break;
        }
        case F_ABS:
            if (o->f)
                o->f[r] = fabs(a[0]->f[r]);
            else if (a[0]->i[r] == INT64_MIN)
                wh__fail(q, WEIR_EINVAL, e->loc, "bigint out of range");
            else
                o->i[r] = a[0]->i[r] < 0 ? -a[0]->i[r] : a[0]->i[r];
            break;
        case F_FLOOR:
        case F_CEIL:
        case F_ROUND:
            if (o->f) {
                double x = a[0]->f[r];
                o->f[r] = e->fn == F_FLOOR ? floor(x) : e->fn == F_CEIL ? ceil(x) : round(x);
                /* PostgreSQL rounds double precision half to even. */
                if (e->fn == F_ROUND)
                    o->f[r] = rint(x);
            } else if (a[0]->type == WH_T_NUMERIC) {
                int64_t p = wh__pow10(a[0]->scale - o->scale), x = a[0]->i[r];
                int64_t qv = x / p, m = x % p;
                if (e->fn == F_FLOOR && m < 0)
                    qv--;
                else if (e->fn == F_CEIL && m > 0)
                    qv++;
                else if (e->fn == F_ROUND && (m * 2 >= p || m * 2 <= -p))
                    qv += m > 0 ? 1 : -1;
                o->i[r] = qv;
            } else {
                o->i[r] = a[0]->i[r];
            }
            break;
        case F_DATE_TRUNC:
            o->i[r] = trunc_ts(q, a[0]->s[r], a[1]->i[r], e->loc);
            break;
        case F_EXTRACT:
        case F_DATE_PART: {
            int64_t us = a[1]->type == WH_T_DATE ? a[1]->i[r] * WH_US_PER_DAY : a[1]->i[r];
            double v = a[1]->m ? extract_interval(q, a[0]->s[r], a[1]->m[r], us, e->loc)
                               : extract_field(q, a[0]->s[r], us, e->loc);
            if (o->f)
                o->f[r] = v;
            else
                o->i[r] = (int64_t)llround(v * (double)wh__pow10(o->scale));
            break;
        }
        case F_NOW:
            o->i[r] = q->now; /* fixed per statement, like PostgreSQL's per transaction */
            break;
        case F_ADD_INTERVAL: {
            int64_t t = ts_add_months(a[0]->i[r], e->months);
            if (__builtin_add_overflow(t, e->us, &o->i[r]))
                wh__fail(q, WEIR_EINVAL, e->loc, "timestamp out of range");
            break;
        }
        case F_TS_ADD_IV:
            o->i[r] = ts_add_interval(q, a[0]->i[r], a[1]->m[r], a[1]->i[r], e->neg, e->loc);
            break;
        case F_TS_DIFF: {
            int64_t d;
            if (__builtin_sub_overflow(a[0]->i[r], a[1]->i[r], &d))
                wh__fail(q, WEIR_EINVAL, e->loc, "interval out of range");
            /* PostgreSQL justifies hours into days here ("1 day 02:00:00"). */
            o->m[r] = wh__iv_pack(0, (int32_t)(d / WH_US_PER_DAY));
            o->i[r] = d % WH_US_PER_DAY;
            break;
        }
        case F_IV_ADD: {
            int64_t mo = wh__iv_months(a[0]->m[r]), dd = wh__iv_days(a[0]->m[r]);
            int64_t mo2 = wh__iv_months(a[1]->m[r]), dd2 = wh__iv_days(a[1]->m[r]);
            int64_t us2 = a[1]->i[r];
            if (e->neg) {
                mo2 = -mo2;
                dd2 = -dd2;
                us2 = -us2;
            }
            iv_store(q, o, r, mo + mo2, dd + dd2, a[0]->i[r], us2, e->loc);
            break;
        }
        case F_IV_MUL:
            iv_mul(q, o, r, a[0]->m[r], a[0]->i[r], a[1]->f[r], e->neg, e->loc);
            break;
        case F_AGE: {
            int64_t x = e->nargs == 2 ? a[0]->i[r] : q->now - q->now % WH_US_PER_DAY;
            int64_t y = e->nargs == 2 ? a[1]->i[r] : a[0]->i[r];
            ts_age(o, r, x, y);
            break;
        }
        case F_JUSTIFY_DAYS:
        case F_JUSTIFY_HOURS:
        case F_JUSTIFY_INTERVAL:
            iv_justify(q, o, r, a[0]->m[r], a[0]->i[r], e->fn, e->loc);
            break;
        case F_TO_CHAR:
            o->s[r] = a[0]->m
                          ? iv_to_char(q, a[0]->m[r], a[0]->i[r], a[1]->s[r], e->loc)
                          : ts_to_char(q, a[0]->i[r], a[0]->type == WH_T_TSTZ, a[1]->s[r], e->loc);
            break;
        default:
            wh__fail(q, WEIR_EINTERNAL, e->loc, "function %d has no implementation", e->fn);
        }
    }
}

static void arith(struct wh_q *q, const struct wh_expr *e, struct wh_vec *x, struct wh_vec *y,
                  struct wh_vec *o)
{
    size_t n = o->n;
    if (e->op == OP_CONCAT) {
        for (size_t r = 0; r < n; r++) {
            if ((o->nul[r] = x->nul[r] | y->nul[r]))
                continue;
            size_t a = strlen(x->s[r]), b = strlen(y->s[r]);
            char *s = wh__alloc(q, a + b + 1);
            memcpy(s, x->s[r], a);
            memcpy(s + a, y->s[r], b + 1);
            o->s[r] = s;
        }
        return;
    }
    if (o->f) {
        for (size_t r = 0; r < n; r++) {
            if ((o->nul[r] = x->nul[r] | y->nul[r]))
                continue;
            double a = x->f[r], b = y->f[r];
            switch (e->op) {
            case OP_ADD:
                o->f[r] = a + b;
                break;
            case OP_SUB:
                o->f[r] = a - b;
                break;
            case OP_MUL:
                o->f[r] = a * b;
                break;
            case OP_DIV:
                if (b == 0)
                    wh__fail(q, WEIR_EINVAL, e->loc, "division by zero");
                o->f[r] = a / b;
                break;
            default:
                if (b == 0)
                    wh__fail(q, WEIR_EINVAL, e->loc, "division by zero");
                o->f[r] = fmod(a, b);
            }
        }
        return;
    }
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (o->type == WH_T_INT4)
        lo = INT32_MIN, hi = INT32_MAX;
    if (o->type == WH_T_DATE && x->type == WH_T_DATE && y->type == WH_T_DATE)
        lo = INT32_MIN, hi = INT32_MAX;
    for (size_t r = 0; r < n; r++) {
        if ((o->nul[r] = x->nul[r] | y->nul[r]))
            continue;
        int64_t a = x->i[r], b = y->i[r], v = 0;
        bool ovf = false;
        switch (e->op) {
        case OP_ADD:
            ovf = __builtin_add_overflow(a, b, &v);
            break;
        case OP_SUB:
            ovf = __builtin_sub_overflow(a, b, &v);
            break;
        case OP_MUL:
            ovf = __builtin_mul_overflow(a, b, &v);
            break;
        case OP_DIV:
        case OP_MOD:
            if (b == 0)
                wh__fail(q, WEIR_EINVAL, e->loc, "division by zero");
            if (b == -1)
                v = e->op == OP_DIV ? -a : 0, ovf = a == INT64_MIN;
            else
                v = e->op == OP_DIV ? a / b : a % b;
            break;
        }
        if (ovf || v < lo || v > hi)
            wh__fail(q, WEIR_EINVAL, e->loc, "%s out of range",
                     o->type == WH_T_NUMERIC ? "numeric" : wh_type_name(o->type));
        o->i[r] = v;
    }
}

static struct wh_vec *bool_vec(struct wh_q *q, size_t n)
{
    return wh__vec_new(q, WH_T_BOOL, 0, n);
}

/* Row ro of o (boolean) = x[r] IN set, where set holds the sorted non-NULL values of the
 * subquery and `sawnull` says whether it also returned a NULL (SQL three-valued logic). */
static void insub_row(struct wh_vec *o, size_t ro, const struct wh_vec *x, size_t r,
                      const struct wh_vec *set, bool sawnull)
{
    o->nul[ro] = 0;
    if (x->nul[r]) { /* NULL IN (empty set) is false */
        if (set->n > 0 || sawnull)
            o->nul[ro] = 1;
        else
            o->i[ro] = 0;
        return;
    }
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = wh__cmp_rows(set, mid, x, r);
        if (c == 0) {
            o->i[ro] = 1;
            return;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (sawnull)
        o->nul[ro] = 1;
    else
        o->i[ro] = 0;
}

static bool has_corr(const struct wh_expr *e);

/* A correlated subquery: the rows are grouped by the outer columns it refers to, and the
 * subquery runs once per distinct combination (NULLs equal) with those bound as constants. */
static struct wh_vec *eval_corr(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel)
{
    size_t n = rel->n;
    int nk = e->col;
    struct wh_vec **keys = wh__calloc(q, (size_t)nk + 1, sizeof *keys);
    bool *flags = wh__calloc(q, (size_t)nk + 1, sizeof *flags);
    for (int k = 0; k < nk; k++)
        keys[k] = wh__eval(q, e->args[k], rel);
    struct wh_vec *x = e->op == 2 ? wh__eval(q, e->args[nk], rel) : NULL;
    struct wh_vec *o = e->op == 1 ? wh__vec_new(q, e->type, e->scale, n) : bool_vec(q, n);
    uint32_t *perm = wh__sort_perm(q, keys, nk, flags, flags, n);
    if (q->ncorr >= (int)(sizeof q->corr / sizeof q->corr[0]))
        wh__fail(q, WEIR_EINVAL, e->loc, "subqueries are nested too deeply");
    struct wh_corr *f = wh__calloc(q, 1, sizeof *f);
    f->rel = e->orel;
    f->nref = nk;
    for (int k = 0; k < nk; k++)
        f->refs[k] = e->args[k]->col;
    for (size_t g = 0; g < n;) {
        size_t end = g + 1;
        for (; end < n; end++) {
            bool same = true;
            for (int k = 0; k < nk && same; k++) {
                const struct wh_vec *v = keys[k];
                uint32_t a = perm[g], b = perm[end];
                same = v->nul[a] == v->nul[b] && (v->nul[a] || wh__cmp_rows(v, a, v, b) == 0);
            }
            if (!same)
                break;
        }
        for (int k = 0; k < nk; k++)
            f->vals[k] = wh__vec_gather(q, keys[k], &perm[g], 1);
        q->corr[q->ncorr++] = f;
        struct wh_rel *r = wh__select(q, e->sub);
        q->ncorr--;
        if (e->op == 0) {
            for (size_t j = g; j < end; j++)
                o->i[perm[j]] = r->n > 0;
        } else {
            if (r->ncols != 1)
                wh__fail(q, WEIR_EINVAL, e->loc, "subquery must return only one column");
            const struct wh_expr *want = e->op == 1 ? e : e->args[nk];
            struct wh_vec *col = wh__cast(q, r->cols[0], want->type, want->scale, e->loc);
            if (e->op == 1) {
                if (r->n > 1)
                    wh__fail(q, WEIR_EINVAL, e->loc,
                             "more than one row returned by a subquery used as an expression");
                for (size_t j = g; j < end; j++) {
                    if (r->n == 0)
                        o->nul[perm[j]] = 1;
                    else
                        wh__vec_copy_row(o, perm[j], col, 0);
                }
            } else {
                uint32_t *idx = wh__alloc(q, (r->n + 1) * sizeof *idx);
                size_t m = 0;
                bool sawnull = false;
                for (size_t k = 0; k < r->n; k++) {
                    if (col->nul[k])
                        sawnull = true;
                    else
                        idx[m++] = (uint32_t)k;
                }
                qsort_r(idx, m, sizeof *idx, sort_vec_cmp, col);
                struct wh_vec *set = wh__vec_gather(q, col, idx, m);
                for (size_t j = g; j < end; j++)
                    insub_row(o, perm[j], x, perm[j], set, sawnull);
            }
        }
        g = end;
    }
    return o;
}

struct wh_vec *wh__eval(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel)
{
    size_t n = rel->n;
    switch (e->kind) {
    case E_COL:
        return rel->cols[e->col];
    case E_CONST:
        return broadcast(q, e->cval, n);
    case E_CAST:
        return wh__cast(q, wh__eval(q, e->args[0], rel), e->type, e->scale, e->loc);
    case E_NEG: {
        struct wh_vec *a = wh__eval(q, e->args[0], rel), *o = wh__vec_new(q, e->type, e->scale, n);
        for (size_t r = 0; r < n; r++) {
            if ((o->nul[r] = a->nul[r]))
                continue;
            if (o->m) {
                int32_t mo = wh__iv_months(a->m[r]), dd = wh__iv_days(a->m[r]);
                if (mo == INT32_MIN || dd == INT32_MIN || a->i[r] == INT64_MIN)
                    wh__fail(q, WEIR_EINVAL, e->loc, "interval out of range");
                o->m[r] = wh__iv_pack(-mo, -dd);
                o->i[r] = -a->i[r];
            } else if (o->f)
                o->f[r] = -a->f[r];
            else if (a->i[r] == INT64_MIN || (o->type == WH_T_INT4 && a->i[r] == INT32_MIN))
                wh__fail(q, WEIR_EINVAL, e->loc, "%s out of range", wh_type_name(o->type));
            else
                o->i[r] = -a->i[r];
        }
        return o;
    }
    case E_ARITH: {
        struct wh_vec *x = wh__eval(q, e->args[0], rel), *y = wh__eval(q, e->args[1], rel);
        struct wh_vec *o = wh__vec_new(q, e->type, e->scale, n);
        arith(q, e, x, y, o);
        return o;
    }
    case E_CMP:
    case E_DISTINCT: {
        if (e->kind == E_CMP && e->args[1]->kind == E_CONST && e->args[0]->kind != E_CONST &&
            (e->op == OP_EQ || e->op == OP_NE)) {
            /* column = constant: compare against the one value, no broadcast. */
            struct wh_vec *x = wh__eval(q, e->args[0], rel);
            const struct wh_vec *c = e->args[1]->cval;
            struct wh_vec *o = bool_vec(q, n);
            bool ne = e->op == OP_NE;
            if (c->nul[0]) {
                memset(o->nul, 1, n);
            } else if (x->s && c->s && !x->m) {
                const char *cs = c->s[0];
                const char *last = NULL; /* repeated pointers (deduplicated text) */
                bool lasteq = false;
                for (size_t r = 0; r < n; r++) {
                    if ((o->nul[r] = x->nul[r]))
                        continue;
                    if (x->s[r] != last) {
                        last = x->s[r];
                        lasteq = strcmp(last, cs) == 0;
                    }
                    o->i[r] = lasteq != ne;
                }
            } else {
                for (size_t r = 0; r < n; r++) {
                    if ((o->nul[r] = x->nul[r]))
                        continue;
                    o->i[r] = (wh__cmp_rows(x, r, c, 0) == 0) != ne;
                }
            }
            return o;
        }
        struct wh_vec *x = wh__eval(q, e->args[0], rel), *y = wh__eval(q, e->args[1], rel);
        struct wh_vec *o = bool_vec(q, n);
        for (size_t r = 0; r < n; r++) {
            if (e->kind == E_DISTINCT) {
                bool same = (x->nul[r] && y->nul[r]) ||
                            (!x->nul[r] && !y->nul[r] && wh__cmp_rows(x, r, y, r) == 0);
                o->i[r] = e->neg ? same : !same;
                continue;
            }
            if ((o->nul[r] = x->nul[r] | y->nul[r]))
                continue;
            int c = wh__cmp_rows(x, r, y, r);
            switch (e->op) {
            case OP_EQ:
                o->i[r] = c == 0;
                break;
            case OP_NE:
                o->i[r] = c != 0;
                break;
            case OP_LT:
                o->i[r] = c < 0;
                break;
            case OP_LE:
                o->i[r] = c <= 0;
                break;
            case OP_GT:
                o->i[r] = c > 0;
                break;
            default:
                o->i[r] = c >= 0;
                break;
            }
        }
        return o;
    }
    case E_AND:
    case E_OR: {
        struct wh_vec *o = bool_vec(q, n);
        bool isand = e->kind == E_AND;
        for (size_t r = 0; r < n; r++)
            o->i[r] = isand;
        /* Correlated subqueries run last, and only on the rows still undecided. */
        uint32_t *idx = NULL;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < e->nargs; k++) {
                bool hc = has_corr(e->args[k]);
                if (hc != (pass == 1))
                    continue;
                size_t m = n;
                const struct wh_rel *sub = rel;
                if (hc) {
                    if (!idx)
                        idx = wh__alloc(q, (n ? n : 1) * sizeof *idx);
                    m = 0;
                    for (size_t r = 0; r < n; r++)
                        if (o->i[r] == isand || o->nul[r])
                            idx[m++] = (uint32_t)r;
                    if (!m)
                        continue;
                    if (m < n)
                        sub = wh__rel_gather(q, rel, idx, m);
                }
                struct wh_vec *a = wh__eval(q, e->args[k], sub);
                for (size_t j = 0; j < m; j++) {
                    size_t r = sub == rel ? j : idx[j];
                    if (o->i[r] != isand && !o->nul[r])
                        continue; /* already decided */
                    if (a->nul[j]) {
                        o->nul[r] = 1;
                    } else if ((a->i[j] != 0) != isand) {
                        o->i[r] = !isand;
                        o->nul[r] = 0;
                    }
                }
            }
        return o;
    }
    case E_NOT: {
        struct wh_vec *a = wh__eval(q, e->args[0], rel), *o = bool_vec(q, n);
        for (size_t r = 0; r < n; r++) {
            o->nul[r] = a->nul[r];
            o->i[r] = !a->i[r];
        }
        return o;
    }
    case E_NULLTEST: {
        struct wh_vec *a = wh__eval(q, e->args[0], rel), *o = bool_vec(q, n);
        for (size_t r = 0; r < n; r++)
            o->i[r] = e->neg ? !a->nul[r] : a->nul[r];
        return o;
    }
    case E_BOOLTEST: {
        struct wh_vec *a = wh__eval(q, e->args[0], rel), *o = bool_vec(q, n);
        for (size_t r = 0; r < n; r++) {
            bool t = !a->nul[r] && a->i[r], f = !a->nul[r] && !a->i[r], u = a->nul[r];
            bool res[] = { t, !t, f, !f, u, !u };
            o->i[r] = res[e->op];
        }
        return o;
    }
    case E_LIKE: {
        struct wh_vec *x = wh__eval(q, e->args[0], rel), *y = wh__eval(q, e->args[1], rel);
        struct wh_vec *o = bool_vec(q, n);
        for (size_t r = 0; r < n; r++) {
            if ((o->nul[r] = x->nul[r] | y->nul[r]))
                continue;
            o->i[r] = like_match(x->s[r], y->s[r], e->ci) != e->neg;
        }
        return o;
    }
    case E_IN: {
        struct wh_vec *x = wh__eval(q, e->args[0], rel), *o = bool_vec(q, n);
        struct wh_vec **items = wh__calloc(q, (size_t)e->nargs, sizeof *items);
        for (int k = 1; k < e->nargs; k++)
            items[k] = wh__eval(q, e->args[k], rel);
        for (size_t r = 0; r < n; r++) {
            if ((o->nul[r] = x->nul[r]))
                continue;
            bool found = false, sawnull = false;
            for (int k = 1; k < e->nargs && !found; k++) {
                if (items[k]->nul[r])
                    sawnull = true;
                else if (wh__cmp_rows(x, r, items[k], r) == 0)
                    found = true;
            }
            if (found)
                o->i[r] = !e->neg;
            else if (sawnull)
                o->nul[r] = 1;
            else
                o->i[r] = e->neg;
        }
        return o;
    }
    case E_INSUB: {
        struct wh_vec *x = wh__eval(q, e->args[0], rel), *o = bool_vec(q, n);
        for (size_t r = 0; r < n; r++)
            insub_row(o, r, x, r, e->cval, e->ci);
        return o;
    }
    case E_CORR:
        return eval_corr(q, e, rel);
    case E_COALESCE:
    case E_MINMAX: {
        struct wh_vec *o = wh__vec_new(q, e->type, e->scale, n);
        for (size_t r = 0; r < n; r++)
            o->nul[r] = 1;
        for (int k = 0; k < e->nargs; k++) {
            struct wh_vec *a = wh__eval(q, e->args[k], rel);
            for (size_t r = 0; r < n; r++) {
                if (a->nul[r])
                    continue;
                if (!o->nul[r]) {
                    if (e->kind == E_COALESCE)
                        continue;
                    int c = wh__cmp_rows(a, r, o, r);
                    if (e->neg ? c >= 0 : c <= 0)
                        continue;
                }
                wh__vec_copy_row(o, r, a, r);
            }
        }
        return o;
    }
    case E_NULLIF: {
        struct wh_vec *x = wh__eval(q, e->args[0], rel), *y = wh__eval(q, e->args[1], rel);
        struct wh_vec *o = wh__vec_new(q, e->type, e->scale, n);
        for (size_t r = 0; r < n; r++) {
            wh__vec_copy_row(o, r, x, r);
            o->nul[r] = x->nul[r] || (!y->nul[r] && wh__cmp_rows(x, r, y, r) == 0);
        }
        return o;
    }
    case E_CASE: {
        int nw = (e->nargs - 1) / 2;
        struct wh_vec *o = wh__vec_new(q, e->type, e->scale, n);
        uint32_t *branch = wh__alloc(q, (n ? n : 1) * sizeof *branch);
        for (size_t r = 0; r < n; r++)
            branch[r] = (uint32_t)nw;
        uint8_t *done = wh__calloc(q, n ? n : 1, 1);
        for (int k = 0; k < nw; k++) {
            struct wh_vec *c = wh__eval(q, e->args[2 * k], rel);
            for (size_t r = 0; r < n; r++)
                if (!done[r] && !c->nul[r] && c->i[r]) {
                    done[r] = 1;
                    branch[r] = (uint32_t)k;
                }
        }
        uint32_t *idx = wh__alloc(q, (n ? n : 1) * sizeof *idx);
        for (int k = 0; k <= nw; k++) {
            struct wh_expr *res = e->args[2 * k + 1 > 2 * nw ? 2 * nw : 2 * k + 1];
            size_t m = 0;
            for (size_t r = 0; r < n; r++)
                if (branch[r] == (uint32_t)k)
                    idx[m++] = (uint32_t)r;
            if (!m)
                continue;
            if (!res) {
                for (size_t j = 0; j < m; j++)
                    o->nul[idx[j]] = 1;
                continue;
            }
            struct wh_rel *sub = m == n ? (struct wh_rel *)rel : wh__rel_gather(q, rel, idx, m);
            struct wh_vec *v = wh__eval(q, res, sub);
            for (size_t j = 0; j < m; j++) {
                wh__vec_copy_row(o, idx[j], v, j);
            }
        }
        return o;
    }
    case E_INTERVAL: {
        struct wh_vec *o = wh__vec_new(q, WH_T_INTERVAL, 0, n);
        for (size_t r = 0; r < n; r++) {
            o->i[r] = e->us;
            o->m[r] = wh__iv_pack((int32_t)e->months, (int32_t)e->days);
        }
        return o;
    }
    case E_FUNC: {
        struct wh_vec **a = wh__calloc(q, (size_t)e->nargs + 1, sizeof *a);
        for (int k = 0; k < e->nargs; k++)
            a[k] = wh__eval(q, e->args[k], rel);
        struct wh_vec *o = wh__vec_new(q, e->type, e->scale, n);
        eval_func(q, e, a, o);
        return o;
    }
    }
    wh__fail(q, WEIR_EINTERNAL, e->loc, "unknown expression kind %d", e->kind);
}

/* ---- parallel evaluation ---- */

/* Rows [from, to) of v, sharing its memory. */
static struct wh_vec *vec_slice(struct wh_q *q, const struct wh_vec *v, size_t from, size_t to)
{
    struct wh_vec *o = wh__alloc(q, sizeof *o);
    *o = *v;
    o->n = to - from;
    o->nul = v->nul + from;
    if (v->i)
        o->i = v->i + from;
    if (v->f)
        o->f = v->f + from;
    if (v->s)
        o->s = v->s + from;
    if (v->m)
        o->m = v->m + from;
    if (v->dc)
        o->dc = v->dc + from;
    return o;
}

struct wh_rel *wh__rel_slice(struct wh_q *q, const struct wh_rel *r, size_t from, size_t to)
{
    struct wh_rel *o = wh__alloc(q, sizeof *o);
    *o = *r;
    o->n = to - from;
    o->cols = wh__calloc(q, (size_t)r->ncols + 1, sizeof *o->cols);
    for (int c = 0; c < r->ncols; c++)
        if (r->cols[c])
            o->cols[c] = vec_slice(q, r->cols[c], from, to);
    return o;
}

static bool has_corr(const struct wh_expr *e)
{
    if (!e)
        return false;
    if (e->kind == E_CORR)
        return true;
    for (int k = 0; k < e->nargs; k++)
        if (has_corr(e->args[k]))
            return true;
    return false;
}

struct eval_par {
    const struct wh_expr *e;
    const struct wh_rel *rel;
    struct wh_vec **parts;
};

static void eval_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    struct eval_par *ep = arg;
    ep->parts[ci] = wh__eval(sub, ep->e, wh__rel_slice(sub, ep->rel, from, to));
}

/* ---- evaluation once per dictionary entry ---- */

/* Whether e reads exactly one column (stored in *col) and nothing that must see rows
 * one by one (correlated subqueries). */
static bool one_col(const struct wh_expr *e, int *col)
{
    if (e->kind == E_CORR)
        return false;
    if (e->kind == E_COL) {
        if (*col >= 0 && *col != e->col)
            return false;
        *col = e->col;
    }
    for (int k = 0; k < e->nargs; k++)
        if (e->args[k] && !one_col(e->args[k], col))
            return false;
    return true;
}

struct dict_eval {
    const struct wh_vec *x;
    uint32_t ndict;
    uint8_t **used; /* per chunk: entries its rows use */
    bool *anynull;  /* per chunk */
    uint32_t *map;  /* entry -> row of res (nu: the NULL row) */
    uint32_t nu;
    const struct wh_vec *res;
    struct wh_vec *o;    /* spread: the output */
    uint32_t *idx;       /* filter: selected rows, chunk c's from its first row */
    size_t *nsel;        /* filter: per chunk */
    const uint8_t *keep; /* filter: per res row */
};

static void dict_mark_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    struct dict_eval *de = arg;
    uint8_t *u = wh__calloc(sub, (size_t)de->ndict + 1, 1);
    bool an = false;
    const struct wh_vec *x = de->x;
    for (size_t r = from; r < to; r++) {
        if (x->nul[r])
            an = true;
        else
            u[x->dc[r]] = 1;
    }
    de->used[ci] = u;
    de->anynull[ci] = an;
}

static void dict_spread_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    (void)ci;
    struct dict_eval *de = arg;
    const struct wh_vec *x = de->x, *res = de->res;
    struct wh_vec *o = de->o;
    for (size_t r = from; r < to; r++) {
        uint32_t j = x->nul[r] ? de->nu : de->map[x->dc[r]];
        wh__vec_copy_row(o, r, res, j);
        if (o->dc)
            o->dc[r] = j;
    }
}

static void dict_filter_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    struct dict_eval *de = arg;
    const struct wh_vec *x = de->x;
    uint32_t *out = de->idx + from;
    size_t m = 0;
    for (size_t r = from; r < to; r++) {
        uint32_t j = x->nul[r] ? de->nu : de->map[x->dc[r]];
        out[m] = (uint32_t)r;
        m += de->keep[j];
    }
    de->nsel[ci] = m;
}

/* Evaluates e over the dictionary entries the rows of its one column use (and a NULL row),
 * into de->res; de->map gives each entry's row of it. Returns false when e does not read
 * exactly one dictionary column or the dictionary is not much smaller than the rows. */
static bool dict_eval_entries(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel,
                              struct dict_eval *de, size_t *nchunks)
{
    int c = -1;
    if (!one_col(e, &c) || c < 0 || c >= rel->ncols || !rel->cols[c])
        return false;
    const struct wh_vec *x = rel->cols[c];
    size_t n = rel->n;
    if (!x->dc || !x->dict || x->n != n || n < WH_GRANULE || (size_t)x->ndict * 4 > n)
        return false;
    memset(de, 0, sizeof *de);
    de->x = x;
    de->ndict = x->ndict;
    size_t nch = wh__par_chunks(q, n, WH_GRANULE);
    de->used = wh__calloc(q, nch + 1, sizeof *de->used);
    de->anynull = wh__calloc(q, nch + 1, sizeof *de->anynull);
    wh__par_rows(q, n, nch, dict_mark_chunk, de);
    uint32_t *map = wh__alloc(q, ((size_t)x->ndict + 1) * sizeof *map);
    uint32_t nu = 0;
    bool anynull = false;
    for (size_t k = 0; k < nch; k++)
        anynull |= de->anynull[k];
    for (uint32_t d = 0; d < x->ndict; d++) {
        bool u = false;
        for (size_t k = 0; k < nch && !u; k++)
            u = de->used[k][d];
        map[d] = u ? nu++ : UINT32_MAX;
    }
    /* The entries as a relation: column c holds them, then one NULL row. */
    struct wh_rel *dr = wh__rel_new(q, rel->ncols, (size_t)nu + 1);
    for (int k = 0; k < rel->ncols; k++) {
        dr->names[k] = rel->names[k];
        dr->quals[k] = rel->quals[k];
    }
    struct wh_vec *dv = wh__vec_new(q, x->type, x->scale, (size_t)nu + 1);
    for (uint32_t d = 0; d < x->ndict; d++)
        if (map[d] != UINT32_MAX)
            dv->s[map[d]] = x->dict[d];
    dv->nul[nu] = 1;
    dr->cols[c] = dv;
    /* Without NULL rows the NULL row is left out, so it can raise no error of its own. */
    struct wh_rel *er = anynull ? dr : wh__rel_slice(q, dr, 0, nu);
    struct wh_vec *res = wh__eval(q, e, er);
    if (!anynull) {
        struct wh_vec *full = wh__vec_new(q, res->type, res->scale, (size_t)nu + 1);
        for (uint32_t j = 0; j < nu; j++)
            wh__vec_copy_row(full, j, res, j);
        full->nul[nu] = 1;
        res = full;
    }
    de->map = map;
    de->nu = nu;
    de->res = res;
    *nchunks = nch;
    return true;
}

/* e over a relation whose one column it reads is a dictionary vector: evaluated once per
 * entry, then spread over the rows (a text result is a dictionary vector again). NULL when
 * that does not apply. */
static struct wh_vec *eval_dict(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel)
{
    struct dict_eval de;
    size_t nch;
    if (!dict_eval_entries(q, e, rel, &de, &nch))
        return NULL;
    struct wh_vec *o = wh__vec_new(q, de.res->type, de.res->scale, rel->n);
    if (o->s && !o->m) {
        o->dc = wh__alloc(q, (rel->n ? rel->n : 1) * sizeof *o->dc);
        o->dict = (const char **)de.res->s;
        o->ndict = de.nu + 1;
    }
    de.o = o;
    wh__par_rows(q, rel->n, nch, dict_spread_chunk, &de);
    return o;
}

bool wh__filter_dict(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel,
                     uint32_t **idx, size_t *m)
{
    struct dict_eval de;
    size_t nch;
    if (e->type != WH_T_BOOL || !dict_eval_entries(q, e, rel, &de, &nch))
        return false;
    uint8_t *keep = wh__alloc(q, (size_t)de.nu + 1);
    for (uint32_t j = 0; j <= de.nu; j++)
        keep[j] = !de.res->nul[j] && de.res->i[j];
    de.keep = keep;
    de.idx = wh__alloc(q, (rel->n ? rel->n : 1) * sizeof *de.idx);
    de.nsel = wh__calloc(q, nch + 1, sizeof *de.nsel);
    wh__par_rows(q, rel->n, nch, dict_filter_chunk, &de);
    /* Chunks wrote from their first row on; close the gaps in order. */
    size_t chunk = nch > 1 ? (rel->n + nch - 1) / nch : rel->n, at = 0;
    for (size_t k = 0; k < nch; k++) {
        if (at != k * chunk)
            memmove(de.idx + at, de.idx + k * chunk, de.nsel[k] * sizeof *de.idx);
        at += de.nsel[k];
    }
    *idx = de.idx;
    *m = at;
    return true;
}

struct wh_vec *wh__eval_par(struct wh_q *q, const struct wh_expr *e, const struct wh_rel *rel)
{
    if (e->kind != E_COL && e->kind != E_CONST) {
        struct wh_vec *dv = eval_dict(q, e, rel);
        if (dv)
            return dv;
    }
    if (e->kind == E_COL || e->kind == E_CONST || has_corr(e))
        return wh__eval(q, e, rel); /* a correlated subquery runs queries: not in a task */
    size_t nch = wh__par_chunks(q, rel->n, WH_GRANULE);
    if (nch <= 1)
        return wh__eval(q, e, rel);
    struct eval_par ep = { .e = e, .rel = rel };
    ep.parts = wh__calloc(q, nch + 1, sizeof *ep.parts);
    wh__par_rows(q, rel->n, nch, eval_chunk, &ep);
    const struct wh_vec *p0 = ep.parts[0];
    struct wh_vec *o = wh__alloc(q, sizeof *o);
    *o = *p0;
    o->dc = NULL; /* chunks may carry different dictionaries */
    o->dict = NULL;
    o->ndict = 0;
    o->n = rel->n;
    o->nul = wh__alloc(q, rel->n);
    o->i = p0->i ? wh__alloc(q, rel->n * sizeof *o->i) : NULL;
    o->f = p0->f ? wh__alloc(q, rel->n * sizeof *o->f) : NULL;
    o->s = p0->s ? wh__alloc(q, rel->n * sizeof *o->s) : NULL;
    o->m = p0->m ? wh__alloc(q, rel->n * sizeof *o->m) : NULL;
    size_t at = 0;
    for (size_t c = 0; c < nch; c++) {
        const struct wh_vec *v = ep.parts[c];
        if (v->type != p0->type || v->scale != p0->scale || !v->i != !p0->i || !v->f != !p0->f ||
            !v->s != !p0->s || !v->m != !p0->m || at + v->n > rel->n)
            wh__fail(q, WEIR_EINTERNAL, e->loc, "parallel evaluation gave mismatched chunks");
        memcpy(o->nul + at, v->nul, v->n);
        if (o->i)
            memcpy(o->i + at, v->i, v->n * sizeof *o->i);
        if (o->f)
            memcpy(o->f + at, v->f, v->n * sizeof *o->f);
        if (o->s)
            memcpy(o->s + at, v->s, v->n * sizeof *o->s);
        if (o->m)
            memcpy(o->m + at, v->m, v->n * sizeof *o->m);
        at += v->n;
    }
    if (at != rel->n)
        wh__fail(q, WEIR_EINTERNAL, e->loc, "parallel evaluation lost rows");
    return o;
}
