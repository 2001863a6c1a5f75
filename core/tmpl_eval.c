/* core/tmpl_eval.c - renders a parsed template: walks nodes, evaluates expressions to jansson
 * values with Jinja semantics (StrictUndefined, / is true division, ~ concatenates strings).
 * Every evaluation step is charged against a budget, so no input loops or allocates forever;
 * recursion is bounded by the tree height the parser allowed. */
#include "core/tmpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/tmpl_int.h"

int tmpl__fail(struct tmpl_ctx *c, size_t pos, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(c->err, code, fmt, ap);
    va_end(ap);
    tmpl__loc(c->t->src, pos, c->err->loc, sizeof c->err->loc);
    return -code;
}

int tmpl__charge(struct tmpl_ctx *c, size_t pos, size_t steps, size_t bytes)
{
    c->steps += steps;
    c->made += bytes;
    if (c->steps > TMPL_MAX_STEPS)
        return tmpl__fail(c, pos, WEIR_ETOOBIG, "template takes too many steps (limit %zu)",
                          TMPL_MAX_STEPS);
    if (c->made > TMPL_MAX_MADE)
        return tmpl__fail(c, pos, WEIR_ETOOBIG, "template builds too much data (limit %zu MiB)",
                          TMPL_MAX_MADE >> 20);
    return 0;
}

/* The source text of `e`, shortened, for messages ("params.city"). */
static const char *desc(struct tmpl_ctx *c, const struct tmpl_expr *e, char *buf, size_t size)
{
    size_t n = e->end > e->pos ? e->end - e->pos : 0;
    if (n > 40)
        snprintf(buf, size, "%.37s...", c->t->src + e->pos);
    else
        snprintf(buf, size, "%.*s", (int)n, c->t->src + e->pos);
    return buf;
}

static json_t *lookup(struct tmpl_ctx *c, const char *name)
{
    for (size_t i = c->nscopes; i-- > 0;) {
        json_t *v = json_object_get(c->scopes[i], name);
        if (v)
            return v;
    }
    if (c->env && json_is_object(c->env->vars))
        return json_object_get(c->env->vars, name);
    return NULL;
}

static int eval(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out, bool lenient);

static int call_host(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *name, json_t **argv,
                     size_t argc, json_t **out);

/* Is `e` Airflow's `var.value` or `var.json` (and the host defines no `var` variable)? */
static bool is_airflow_var(struct tmpl_ctx *c, const struct tmpl_expr *e)
{
    return e->kind == X_ATTR && e->a->kind == X_NAME && !strcmp(e->a->name, "var") &&
           (!strcmp(e->name, "value") || !strcmp(e->name, "json")) && !lookup(c, "var");
}

/* var.value.key -> the host's var('key'). Undefined (not an error) when lenient. */
static int airflow_var(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **argv, size_t argc,
                       json_t **out, bool lenient)
{
    int rc = call_host(c, e, "var", argv, argc, out);
    if (rc == -WEIR_ENOTFOUND && lenient) {
        err_clear(c->err);
        return 0;
    }
    return rc;
}

static int eval_attr(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out, bool lenient)
{
    json_t *obj = NULL;
    char b[64];
    if (is_airflow_var(c, e->a)) {
        json_t *key = json_string_nocheck(e->name);
        int rc = airflow_var(c, e, &key, 1, out, lenient);
        json_decref(key);
        return rc;
    }
    int rc = eval(c, e->a, &obj, lenient);
    if (rc || !obj)
        return rc;
    json_t *v = json_is_object(obj) ? json_object_get(obj, e->name) : NULL;
    if (v)
        *out = json_incref(v);
    else if (!lenient && json_is_object(obj))
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' has no attribute '%s'",
                        desc(c, e->a, b, sizeof b), e->name);
    else if (!lenient)
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' (%s) has no attribute '%s'",
                        desc(c, e->a, b, sizeof b), tmpl__typename(obj), e->name);
    json_decref(obj);
    return rc;
}

/* Byte offset of character `i` in UTF-8 `s` of `n` bytes (n if past the end). A character
 * starts at every byte that is not a continuation byte, as utf8_len counts them, so invalid
 * input gives odd characters but never an offset outside the string. */
static size_t utf8_off(const char *s, size_t n, size_t i)
{
    size_t k = 0;
    for (size_t off = 0; off < n; off++)
        if (((unsigned char)s[off] & 0xc0) != 0x80 && k++ == i)
            return off;
    return n;
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            k++;
    return k;
}

static int eval_index(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out, bool lenient)
{
    json_t *obj = NULL, *key = NULL;
    char b[64];
    int rc = eval(c, e->a, &obj, lenient);
    if (rc || !obj)
        return rc;
    rc = eval(c, e->b, &key, false);
    if (rc)
        goto out;
    if (json_is_object(obj)) {
        char kb[32];
        const char *k = json_string_value(key);
        if (json_is_integer(key)) {
            snprintf(kb, sizeof kb, "%lld", (long long)json_integer_value(key));
            k = kb;
        }
        json_t *v = k ? json_object_get(obj, k) : NULL;
        if (v)
            *out = json_incref(v);
        else if (!lenient && k)
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' has no key '%s'",
                            desc(c, e->a, b, sizeof b), k);
        else if (!lenient)
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "dict keys are strings, not %s",
                            tmpl__typename(key));
        goto out;
    }
    if (json_is_array(obj) || json_is_string(obj)) {
        if (!json_is_integer(key)) {
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "index into '%s' must be an integer, not %s",
                            desc(c, e->a, b, sizeof b), tmpl__typename(key));
            goto out;
        }
        long long i = json_integer_value(key);
        const char *s = json_string_value(obj);
        size_t sn = s ? json_string_length(obj) : 0;
        if ((rc = tmpl__charge(c, e->pos, sn / 16, 0)))
            goto out;
        size_t n = s ? utf8_len(s, sn) : json_array_size(obj);
        if (i < 0)
            i += (long long)n;
        if (i < 0 || (unsigned long long)i >= n) {
            if (!lenient)
                rc = tmpl__fail(c, e->pos, WEIR_EINVAL,
                                "index %lld is out of range for '%s' (length %zu)",
                                (long long)json_integer_value(key), desc(c, e->a, b, sizeof b), n);
            goto out;
        }
        if (s) {
            size_t a = utf8_off(s, sn, (size_t)i), z = utf8_off(s, sn, (size_t)i + 1);
            rc = tmpl__mkstr(c, e->pos, s + a, z - a, out);
        } else {
            *out = json_incref(json_array_get(obj, (size_t)i));
        }
        goto out;
    }
    if (!lenient)
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' (%s) cannot be indexed",
                        desc(c, e->a, b, sizeof b), tmpl__typename(obj));
out:
    json_decref(obj);
    json_decref(key);
    return rc;
}

static int slice_bound(struct tmpl_ctx *c, const struct tmpl_expr *e, long long dflt, long long *v)
{
    json_t *x = NULL;
    *v = dflt;
    if (!e)
        return 0;
    int rc = eval(c, e, &x, false);
    if (rc)
        return rc;
    if (json_is_integer(x))
        *v = json_integer_value(x);
    else if (!json_is_null(x))
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "slice bounds must be integers, not %s",
                        tmpl__typename(x));
    json_decref(x);
    return rc;
}

static int eval_slice(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    json_t *obj = NULL, *res = NULL;
    size_t *offs = NULL;
    long long start, stop, step;
    char b[64];
    struct buf sb;
    int rc = eval(c, e->a, &obj, false);
    if (rc)
        return rc;
    buf_init(&sb, c->max_str);
    if ((rc = slice_bound(c, e->args[2], 1, &step)))
        goto out;
    if (step == 0 || step == INT64_MIN) {
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "slice step cannot be %lld", step);
        goto out;
    }
    const char *s = json_string_value(obj);
    size_t sn = s ? json_string_length(obj) : 0;
    if (!s && !json_is_array(obj)) {
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' (%s) cannot be sliced",
                        desc(c, e->a, b, sizeof b), tmpl__typename(obj));
        goto out;
    }
    long long n = (long long)(s ? utf8_len(s, sn) : json_array_size(obj));
    if (s) {
        /* byte offset of every character, so that each step is O(1) */
        if ((rc = tmpl__charge(c, e->pos, sn / 16, (size_t)n * sizeof *offs)))
            goto out;
        offs = xmalloc(((size_t)n + 1) * sizeof *offs);
        size_t k = 0;
        for (size_t i = 0; i < sn; i++)
            if (((unsigned char)s[i] & 0xc0) != 0x80)
                offs[k++] = i;
        offs[k] = sn;
    }
    if ((rc = slice_bound(c, e->args[0], step > 0 ? 0 : n - 1, &start)) ||
        (rc = slice_bound(c, e->args[1], step > 0 ? n : -n - 1, &stop)))
        goto out;
    /* Python's slice.indices() */
    if (start < 0)
        start = start + n < 0 ? (step > 0 ? 0 : -1) : start + n;
    else if (start >= n)
        start = step > 0 ? n : n - 1;
    if (stop < 0)
        stop = stop + n < 0 ? (step > 0 ? 0 : -1) : stop + n;
    else if (stop >= n)
        stop = step > 0 ? n : n - 1;
    if (!s)
        res = json_array();
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) {
        if ((rc = tmpl__charge(c, e->pos, 1, 16)))
            goto out;
        if (s) {
            size_t a = offs[i], z = offs[i + 1];
            if (buf_add(&sb, s + a, z - a)) {
                rc = tmpl__fail(c, e->pos, WEIR_ETOOBIG, "string is too long");
                goto out;
            }
        } else {
            json_array_append(res, json_array_get(obj, (size_t)i));
        }
        if (step > 0 ? i > INT64_MAX - step : i < INT64_MIN - step)
            break;
    }
    if (s)
        rc = tmpl__mkstr(c, e->pos, sb.s, sb.len, &res);
out:
    free(offs);
    buf_release(&sb);
    json_decref(obj);
    if (rc)
        json_decref(res);
    else
        *out = res;
    return rc;
}

/* Evaluates call arguments into argv (new references). */
static int eval_args(struct tmpl_ctx *c, const struct tmpl_expr *e, size_t from, json_t **argv)
{
    for (size_t i = from; i < e->nargs; i++) {
        int rc = eval(c, e->args[i], &argv[i - from], false);
        if (rc)
            return rc;
    }
    return 0;
}

static void free_args(json_t **argv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(argv[i]);
}

static bool has_kwargs(const struct tmpl_expr *e)
{
    for (size_t i = 0; e->kwnames && i < e->nargs; i++)
        if (e->kwnames[i])
            return true;
    return false;
}

static int call_host(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *name, json_t **argv,
                     size_t argc, json_t **out)
{
    if (!c->env || !c->env->call)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "unknown function '%s'", name);
    json_t *args = json_array();
    for (size_t i = 0; i < argc; i++)
        json_array_append(args, argv[i]);
    struct weir_err herr;
    err_clear(&herr);
    json_t *v = c->env->call(c->env->ud, name, args, &herr);
    json_decref(args);
    if (!v) {
        int code = herr.code > 0 ? herr.code : herr.code < 0 ? -herr.code : WEIR_EINTERNAL;
        if (herr.msg[0])
            return tmpl__fail(c, e->pos, code, "%s", herr.msg);
        return tmpl__fail(c, e->pos, code, "function '%s' failed", name);
    }
    *out = v;
    return 0;
}

static bool is_ns(const struct tmpl_ctx *c, const json_t *v)
{
    for (size_t i = 0; i < c->nns; i++)
        if (c->ns[i] == v)
            return true;
    return false;
}

/* Fails if `v` is or contains a namespace object: storing one inside a namespace could
 * make a cycle. Depth is bounded by the engine's value depth limit. */
static int ns_check(struct tmpl_ctx *c, size_t pos, const json_t *v, int depth)
{
    if (!json_is_array(v) && !json_is_object(v))
        return 0;
    int rc = tmpl__charge(c, pos, tmpl__cost(v) + c->nns / 8, 0);
    if (rc)
        return rc;
    if (is_ns(c, v))
        return tmpl__fail(c, pos, WEIR_EINVAL, "a namespace cannot hold a namespace");
    if (depth > TMPL_MAX_VALUE_DEPTH + 2)
        return tmpl__fail(c, pos, WEIR_ETOOBIG, "value nests too deeply");
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if ((rc = ns_check(c, pos, x, depth + 1)))
                return rc;
        }
    } else {
        json_object_foreach((json_t *)v, k, x) {
            if ((rc = ns_check(c, pos, x, depth + 1)))
                return rc;
        }
    }
    return 0;
}

/* namespace(a=1, b=2) or namespace(dict): a mutable object for `set ns.attr = ...`. */
static int make_ns(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **argv, json_t **out)
{
    if (c->nns >= TMPL_MAX_NS)
        return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "too many namespace() objects (limit %d)",
                          TMPL_MAX_NS);
    json_t *o = json_object();
    int rc = 0;
    for (size_t i = 0; i < e->nargs && !rc; i++) {
        if ((rc = ns_check(c, e->pos, argv[i], 0)))
            break;
        if (e->kwnames && e->kwnames[i])
            json_object_set(o, e->kwnames[i], argv[i]);
        else if (json_is_object(argv[i]))
            json_object_update(o, argv[i]);
        else
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "namespace() takes a dict or name=value");
    }
    if (rc) {
        json_decref(o);
        return rc;
    }
    c->ns[c->nns++] = json_incref(o);
    *out = o;
    return 0;
}

/* Airflow's ti.xcom_pull(task_ids='t', key='k') -> the host's xcom('t'[, 'k']). */
static int xcom_pull(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    json_t *argv[TMPL_MAX_ARGS] = { NULL };
    json_t *task = NULL, *key = NULL;
    int rc = eval_args(c, e, 0, argv);
    for (size_t i = 0; !rc && i < e->nargs; i++) {
        const char *kw = e->kwnames ? e->kwnames[i] : NULL;
        if ((!kw && i == 0) || (kw && !strcmp(kw, "task_ids")))
            task = argv[i];
        else if ((!kw && i == 1) || (kw && !strcmp(kw, "key")))
            key = argv[i];
        else
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "xcom_pull() takes task_ids and key");
    }
    if (!rc && !json_is_string(task))
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "xcom_pull() needs task_ids='a task id'");
    if (!rc && key && !json_is_string(key))
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "xcom_pull(): key must be a string");
    if (!rc) {
        json_t *args[2] = { task, key };
        rc = call_host(c, e, "xcom", args, key ? 2 : 1, out);
    }
    free_args(argv, TMPL_MAX_ARGS);
    return rc;
}

static int eval_call(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    json_t *argv[TMPL_MAX_ARGS] = { NULL };
    json_t *obj = NULL;
    const struct tmpl_expr *f = e->a;
    char b[64];
    int rc;
    if (f->kind == X_NAME && !strcmp(f->name, "namespace")) {
        if (!(rc = eval_args(c, e, 0, argv)))
            rc = make_ns(c, e, argv, out);
        free_args(argv, TMPL_MAX_ARGS);
        return rc;
    }
    if (f->kind == X_ATTR && !strcmp(f->name, "xcom_pull") && f->a->kind == X_NAME &&
        (!strcmp(f->a->name, "ti") || !strcmp(f->a->name, "task_instance")) &&
        !lookup(c, f->a->name))
        return xcom_pull(c, e, out);
    if (has_kwargs(e))
        return tmpl__fail(c, e->pos, WEIR_EINVAL,
                          "keyword arguments are only supported by filters");
    if (f->kind != X_NAME && f->kind != X_ATTR)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' is not callable", desc(c, f, b, sizeof b));
    if ((rc = eval_args(c, e, 0, argv)))
        goto out;
    if (f->kind == X_NAME) {
        rc = tmpl__builtin(c, e, f->name, argv, e->nargs, out);
        if (rc == 0)
            rc = call_host(c, e, f->name, argv, e->nargs, out);
        goto out;
    }
    /* var.value.get('key', default) as in Airflow */
    if (!strcmp(f->name, "get") && is_airflow_var(c, f->a)) {
        if (e->nargs < 1 || e->nargs > 2 || !json_is_string(argv[0]))
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "var.value.get() takes a key and a default");
        else
            rc = airflow_var(c, e, argv, 1, out, e->nargs == 2);
        if (!rc && !*out)
            *out = json_incref(argv[1]);
        goto out;
    }
    /* macros.ds_add(ds, 1) as in Airflow, unless the host defines `macros` itself */
    if (f->a->kind == X_NAME && !strcmp(f->a->name, "macros") && !lookup(c, "macros")) {
        rc = tmpl__builtin(c, e, f->name, argv, e->nargs, out);
        if (rc == 0)
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "unknown macro '%s'", f->name);
        goto out;
    }
    if ((rc = eval(c, f->a, &obj, false)))
        goto out;
    rc = tmpl__method(c, e, obj, f->name, argv, e->nargs, out);
    if (rc == 0)
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "'%s' (%s) has no method '%s'",
                        desc(c, f->a, b, sizeof b), tmpl__typename(obj), f->name);
out:
    json_decref(obj);
    free_args(argv, TMPL_MAX_ARGS);
    return rc < 0 ? rc : 0;
}

static int eval_filter(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    json_t *argv[TMPL_MAX_ARGS] = { NULL };
    json_t *in = NULL;
    bool lenient = !strcmp(e->name, "default") || !strcmp(e->name, "d");
    int rc = eval(c, e->a, &in, lenient);
    if (!rc)
        rc = eval_args(c, e, 0, argv);
    if (!rc)
        rc = tmpl__filter(c, e, in, argv, e->nargs, e->kwnames, out);
    json_decref(in);
    free_args(argv, TMPL_MAX_ARGS);
    return rc;
}

static int eval_test(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    json_t *argv[TMPL_MAX_ARGS] = { NULL };
    json_t *in = NULL;
    bool res = false;
    bool lenient = !strcmp(e->name, "defined") || !strcmp(e->name, "undefined");
    int rc = eval(c, e->a, &in, lenient);
    if (!rc && has_kwargs(e))
        rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "test '%s' takes no keyword arguments", e->name);
    if (!rc)
        rc = eval_args(c, e, 0, argv);
    if (!rc)
        rc = tmpl__test(c, e, in, argv, e->nargs, &res);
    if (!rc)
        *out = json_boolean(res != e->negate);
    json_decref(in);
    free_args(argv, TMPL_MAX_ARGS);
    return rc;
}

/* ---- arithmetic ---- */

static bool is_num(const json_t *v)
{
    return json_is_integer(v) || json_is_real(v);
}

static double num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* floor() without libm: exact for every double. */
static double dfloor(double x)
{
    if (!(x > -4503599627370496.0 && x < 4503599627370496.0))
        return x; /* integral already (|x| >= 2^52), or NaN */
    double t = (double)(long long)x;
    return t > x ? t - 1 : t;
}

static int bad_operands(struct tmpl_ctx *c, const struct tmpl_expr *e, const char *op,
                        const json_t *a, const json_t *b)
{
    return tmpl__fail(c, e->pos, WEIR_EINVAL, "unsupported operand types for %s: %s and %s", op,
                      tmpl__typename(a), tmpl__typename(b));
}

static int repeat(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *seq, long long n,
                  json_t **out)
{
    if (n < 0)
        n = 0;
    if (json_is_string(seq)) {
        size_t len = json_string_length(seq);
        if (len && (unsigned long long)n > c->max_str / len)
            return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "string is too long (limit %zu bytes)",
                              c->max_str);
        struct buf b;
        buf_init(&b, c->max_str);
        for (long long i = 0; i < n; i++)
            buf_add(&b, json_string_value(seq), len);
        int rc = tmpl__mkstr(c, e->pos, b.s, b.len, out);
        buf_release(&b);
        return rc;
    }
    size_t len = json_array_size(seq);
    if (len && (unsigned long long)n > TMPL_MAX_ITEMS / len)
        return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "list is too long (limit %zu items)",
                          TMPL_MAX_ITEMS);
    int rc = tmpl__charge(c, e->pos, (size_t)n * len, (size_t)n * len * 16);
    if (rc)
        return rc;
    json_t *r = json_array();
    for (long long i = 0; i < n; i++)
        json_array_extend(r, seq);
    *out = r;
    return 0;
}

static int int_pow(struct tmpl_ctx *c, const struct tmpl_expr *e, long long base, long long ex,
                   json_t **out)
{
    long long r = 1;
    while (ex > 0) {
        if ((ex & 1) && __builtin_mul_overflow(r, base, &r))
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "integer overflow");
        ex >>= 1;
        if (ex && __builtin_mul_overflow(base, base, &base))
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "integer overflow");
    }
    *out = json_integer(r);
    return 0;
}

static int real_pow(struct tmpl_ctx *c, const struct tmpl_expr *e, double base, double ex,
                    json_t **out)
{
    /* Only whole exponents: the engine does without libm. */
    if (dfloor(ex) != ex || ex > 1e6 || ex < -1e6)
        return tmpl__fail(c, e->pos, WEIR_EINVAL, "fractional or huge exponents are not supported");
    bool neg = ex < 0;
    long long k = (long long)(neg ? -ex : ex);
    double r = 1, b = base;
    while (k > 0) {
        if (k & 1)
            r *= b;
        b *= b;
        k >>= 1;
    }
    if (neg) {
        if (r == 0)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "division by zero");
        r = 1 / r;
    }
    return tmpl__mkreal(c, e->pos, r, out);
}

static int arith(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *a, json_t *b, json_t **out)
{
    static const char *const names[] = { "+", "-", "*", "/", "//", "%", "**", "~" };
    const char *opn = names[e->op];
    if (e->op == OP_CAT) {
        struct buf s;
        buf_init(&s, c->max_str);
        int rc = tmpl__str(c, e->pos, a, &s);
        if (!rc)
            rc = tmpl__str(c, e->pos, b, &s);
        if (!rc)
            rc = tmpl__mkstr(c, e->pos, s.s, s.len, out);
        buf_release(&s);
        return rc;
    }
    if (e->op == OP_ADD && json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        if (la + lb > c->max_str)
            return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "string is too long (limit %zu bytes)",
                              c->max_str);
        char *s = xmalloc(la + lb + 1);
        memcpy(s, json_string_value(a), la);
        memcpy(s + la, json_string_value(b), lb);
        int rc = tmpl__mkstr(c, e->pos, s, la + lb, out);
        free(s);
        return rc;
    }
    if (e->op == OP_ADD && json_is_array(a) && json_is_array(b)) {
        size_t n = json_array_size(a) + json_array_size(b);
        if (n > TMPL_MAX_ITEMS)
            return tmpl__fail(c, e->pos, WEIR_ETOOBIG, "list is too long (limit %zu items)",
                              TMPL_MAX_ITEMS);
        int rc = tmpl__charge(c, e->pos, n, n * 16);
        if (rc)
            return rc;
        json_t *r = json_array();
        json_array_extend(r, a);
        json_array_extend(r, b);
        *out = r;
        return 0;
    }
    if (e->op == OP_MOD && json_is_string(a))
        return tmpl__percent(c, e->pos, a, b, out);
    if (e->op == OP_MUL && (json_is_string(a) || json_is_array(a)) && json_is_integer(b))
        return repeat(c, e, a, json_integer_value(b), out);
    if (e->op == OP_MUL && (json_is_string(b) || json_is_array(b)) && json_is_integer(a))
        return repeat(c, e, b, json_integer_value(a), out);
    if (!is_num(a) || !is_num(b))
        return bad_operands(c, e, opn, a, b);
    if (json_is_integer(a) && json_is_integer(b)) {
        long long x = json_integer_value(a), y = json_integer_value(b), r = 0;
        bool ovf = false;
        switch (e->op) {
        case OP_ADD:
            ovf = __builtin_add_overflow(x, y, &r);
            break;
        case OP_SUB:
            ovf = __builtin_sub_overflow(x, y, &r);
            break;
        case OP_MUL:
            ovf = __builtin_mul_overflow(x, y, &r);
            break;
        case OP_FDIV:
        case OP_MOD:
            if (y == 0)
                return tmpl__fail(c, e->pos, WEIR_EINVAL, "division by zero");
            if (y == -1) {
                /* x // -1 overflows for INT64_MIN; x % -1 is 0 */
                r = e->op == OP_MOD ? 0 : -x;
                ovf = e->op == OP_FDIV && x == INT64_MIN;
                break;
            }
            {
                long long q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                r = e->op == OP_FDIV ? q : m;
            }
            break;
        case OP_POW:
            if (y >= 0)
                return int_pow(c, e, x, y, out);
            return real_pow(c, e, (double)x, (double)y, out);
        default:
            goto real;
        }
        if (ovf)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "integer overflow");
        *out = json_integer(r);
        return 0;
    }
real:;
    double x = num(a), y = num(b), r;
    switch (e->op) {
    case OP_ADD:
        r = x + y;
        break;
    case OP_SUB:
        r = x - y;
        break;
    case OP_MUL:
        r = x * y;
        break;
    case OP_DIV:
        if (y == 0)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "division by zero");
        r = x / y;
        break;
    case OP_FDIV:
        if (y == 0)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "division by zero");
        r = dfloor(x / y);
        break;
    case OP_MOD:
        if (y == 0)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "division by zero");
        r = x - y * dfloor(x / y);
        break;
    case OP_POW:
        return real_pow(c, e, x, y, out);
    default:
        return bad_operands(c, e, opn, a, b);
    }
    return tmpl__mkreal(c, e->pos, r, out);
}

static int contains(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t *item, json_t *seq,
                    bool *res)
{
    *res = false;
    if (json_is_string(seq)) {
        if (!json_is_string(item))
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "'in <string>' needs a string, not %s",
                              tmpl__typename(item));
        *res = memmem(json_string_value(seq), json_string_length(seq), json_string_value(item),
                      json_string_length(item)) != NULL;
        return 0;
    }
    if (json_is_array(seq)) {
        size_t i;
        json_t *v;
        json_array_foreach(seq, i, v) {
            if (tmpl__equal(c, item, v)) {
                *res = true;
                break;
            }
        }
        return tmpl__charge(c, e->pos, json_array_size(seq), 0);
    }
    if (json_is_object(seq)) {
        *res = json_is_string(item) && json_object_get(seq, json_string_value(item));
        return 0;
    }
    return tmpl__fail(c, e->pos, WEIR_EINVAL, "'in' needs a string, list or dict, not %s",
                      tmpl__typename(seq));
}

static int eval_cmp(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    json_t *left = NULL, *right = NULL;
    bool res = true;
    int rc = eval(c, e->args[0], &left, false);
    for (size_t i = 0; !rc && res && i + 1 < e->nargs; i++) {
        if ((rc = eval(c, e->args[i + 1], &right, false)) ||
            (rc = tmpl__charge(c, e->pos, tmpl__cost(left) + tmpl__cost(right), 0)))
            break;
        int cmp = 0;
        switch (e->ops[i]) {
        case OP_EQ:
            res = tmpl__equal(c, left, right);
            break;
        case OP_NE:
            res = !tmpl__equal(c, left, right);
            break;
        case OP_IN:
            rc = contains(c, e, left, right, &res);
            break;
        case OP_NOTIN:
            rc = contains(c, e, left, right, &res);
            res = !res;
            break;
        default:
            rc = tmpl__compare(c, e->args[i + 1]->pos, left, right, &cmp);
            res = e->ops[i] == OP_LT   ? cmp < 0
                  : e->ops[i] == OP_LE ? cmp <= 0
                  : e->ops[i] == OP_GT ? cmp > 0
                                       : cmp >= 0;
            break;
        }
        json_decref(left);
        left = right;
        right = NULL;
    }
    json_decref(left);
    if (!rc)
        *out = json_boolean(res);
    return rc;
}

static int eval_container(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out)
{
    int rc = tmpl__charge(c, e->pos, e->nargs, e->nargs * 16);
    if (rc)
        return rc;
    json_t *r = e->kind == X_LIST ? json_array() : json_object();
    for (size_t i = 0; i < e->nargs && !rc; i++) {
        json_t *v = NULL, *k = NULL;
        if (e->kind == X_DICT) {
            if ((rc = eval(c, e->args[i++], &k, false)))
                break;
            if (!json_is_string(k)) {
                rc = tmpl__fail(c, e->args[i - 1]->pos, WEIR_EINVAL,
                                "dict keys must be strings, not %s", tmpl__typename(k));
                json_decref(k);
                break;
            }
        }
        rc = eval(c, e->args[i], &v, false);
        if (!rc)
            rc = tmpl__check_nest(c, e->args[i]->pos, v);
        if (!rc) {
            if (k)
                json_object_set_nocheck(r, json_string_value(k), v);
            else
                json_array_append(r, v);
        }
        json_decref(v);
        json_decref(k);
    }
    if (rc)
        json_decref(r);
    else
        *out = r;
    return rc;
}

static int eval(struct tmpl_ctx *c, const struct tmpl_expr *e, json_t **out, bool lenient)
{
    json_t *a = NULL, *b = NULL;
    char d[64];
    *out = NULL;
    int rc = tmpl__charge(c, e->pos, 1, 0);
    if (rc)
        return rc;
    switch (e->kind) {
    case X_LIT:
        *out = json_incref(e->lit);
        return 0;
    case X_NAME: {
        json_t *v = lookup(c, e->name);
        if (v)
            *out = json_incref(v);
        else if (!lenient)
            return tmpl__fail(c, e->pos, WEIR_EINVAL, "undefined variable '%s'", e->name);
        return 0;
    }
    case X_ATTR:
        return eval_attr(c, e, out, lenient);
    case X_INDEX:
        return eval_index(c, e, out, lenient);
    case X_SLICE:
        return eval_slice(c, e, out);
    case X_CALL:
        return eval_call(c, e, out);
    case X_FILTER:
        return eval_filter(c, e, out);
    case X_TEST:
        return eval_test(c, e, out);
    case X_CMP:
        return eval_cmp(c, e, out);
    case X_LIST:
    case X_DICT:
        return eval_container(c, e, out);
    case X_BIN:
        if (!(rc = eval(c, e->a, &a, false)) && !(rc = eval(c, e->b, &b, false)))
            rc = arith(c, e, a, b, out);
        break;
    case X_NEG:
    case X_POS:
        if ((rc = eval(c, e->a, &a, false)))
            break;
        if (json_is_integer(a)) {
            long long v = json_integer_value(a);
            if (e->kind == X_NEG && v == INT64_MIN)
                rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "integer overflow");
            else
                *out = json_integer(e->kind == X_NEG ? -v : v);
        } else if (json_is_real(a)) {
            rc = tmpl__mkreal(c, e->pos,
                              e->kind == X_NEG ? -json_real_value(a) : json_real_value(a), out);
        } else {
            rc = tmpl__fail(c, e->pos, WEIR_EINVAL, "bad operand type for unary %s: %s",
                            e->kind == X_NEG ? "-" : "+", tmpl__typename(a));
        }
        break;
    case X_NOT:
        if (!(rc = eval(c, e->a, &a, false)))
            *out = json_boolean(!tmpl__truthy(a));
        break;
    case X_AND:
    case X_OR:
        /* Python semantics: the result is one of the operands */
        if ((rc = eval(c, e->a, &a, false)))
            break;
        if (tmpl__truthy(a) == (e->kind == X_OR)) {
            *out = a;
            return 0;
        }
        json_decref(a);
        return eval(c, e->b, out, false);
    case X_COND:
        if ((rc = eval(c, e->b, &a, false)))
            break;
        if (tmpl__truthy(a))
            rc = eval(c, e->a, out, false);
        else if (e->c)
            rc = eval(c, e->c, out, false);
        else
            *out = json_string(""); /* Jinja: a missing else is an empty undefined */
        break;
    default:
        rc = tmpl__fail(c, e->pos, WEIR_EINTERNAL, "bad expression %d in '%s'", (int)e->kind,
                        desc(c, e, d, sizeof d));
        break;
    }
    json_decref(a);
    json_decref(b);
    return rc;
}

/* ---- statements ---- */

static int exec(struct tmpl_ctx *c, const struct tmpl_node *n, struct buf *out);

static int out_add(struct tmpl_ctx *c, size_t pos, struct buf *out, const char *s, size_t len)
{
    if (buf_add(out, s, len))
        return tmpl__fail(c, pos, WEIR_ETOOBIG, "output is too big (limit %zu bytes)", out->max);
    return 0;
}

static int push_scope(struct tmpl_ctx *c, size_t pos)
{
    if (c->nscopes >= WEIR_ARRAY_LEN(c->scopes))
        return tmpl__fail(c, pos, WEIR_ETOOBIG, "blocks nest too deeply");
    c->scopes[c->nscopes++] = json_object();
    return 0;
}

static void pop_scope(struct tmpl_ctx *c)
{
    json_decref(c->scopes[--c->nscopes]);
}

/* Binds the loop targets to `item` in the innermost scope. */
static int bind(struct tmpl_ctx *c, const struct tmpl_node *n, json_t *item)
{
    json_t *scope = c->scopes[c->nscopes - 1];
    if (n->ntargets == 1) {
        json_object_set(scope, n->targets[0], item);
        return 0;
    }
    if (!json_is_array(item) || json_array_size(item) != n->ntargets)
        return tmpl__fail(c, n->pos, WEIR_EINVAL, "cannot unpack %s into %zu variables",
                          tmpl__typename(item), n->ntargets);
    for (size_t i = 0; i < n->ntargets; i++)
        json_object_set(scope, n->targets[i], json_array_get(item, i));
    return 0;
}

static int exec_for(struct tmpl_ctx *c, const struct tmpl_node *n, struct buf *out)
{
    json_t *it = NULL, *list = NULL;
    char d[64];
    int rc = eval(c, n->e, &it, false);
    if (rc)
        return rc;
    if (!json_is_array(it) && !json_is_object(it) && !json_is_string(it)) {
        rc = tmpl__fail(c, n->e->pos, WEIR_EINVAL, "cannot loop over '%s' (%s)",
                        desc(c, n->e, d, sizeof d), tmpl__typename(it));
        goto out;
    }
    if ((rc = tmpl__to_list(c, n->e->pos, it, &list)))
        goto out;
    if (n->filter) {
        json_t *kept = json_array();
        size_t i;
        json_t *item;
        if (!(rc = push_scope(c, n->pos))) {
            json_array_foreach(list, i, item) {
                json_t *v = NULL;
                if ((rc = tmpl__charge(c, n->pos, 1, 0)))
                    break;
                json_object_clear(c->scopes[c->nscopes - 1]);
                if (!(rc = bind(c, n, item)) && !(rc = eval(c, n->filter, &v, false)) &&
                    tmpl__truthy(v))
                    json_array_append(kept, item);
                json_decref(v);
                if (rc)
                    break;
            }
            pop_scope(c);
        }
        json_decref(list);
        list = kept;
        if (rc)
            goto out;
    }
    size_t len = json_array_size(list);
    if (len == 0) {
        if (n->alt)
            rc = exec(c, n->alt, out);
        goto out;
    }
    /* One scope for the whole loop, emptied before each iteration: a `set` in the body
     * does not outlive its iteration, and no allocation happens per iteration unless the
     * body uses `loop`. */
    if ((rc = push_scope(c, n->pos)))
        goto out;
    json_t *scope = c->scopes[c->nscopes - 1];
    for (size_t i = 0; i < len && !rc; i++) {
        if (++c->iters > TMPL_MAX_ITERS) {
            rc = tmpl__fail(c, n->pos, WEIR_ETOOBIG, "too many loop iterations (limit %zu)",
                            TMPL_MAX_ITERS);
            break;
        }
        json_object_clear(scope);
        if (n->uses_loop) {
            json_t *loop = json_object();
            json_object_set_new(loop, "index", json_integer((json_int_t)i + 1));
            json_object_set_new(loop, "index0", json_integer((json_int_t)i));
            json_object_set_new(loop, "revindex", json_integer((json_int_t)(len - i)));
            json_object_set_new(loop, "revindex0", json_integer((json_int_t)(len - i - 1)));
            json_object_set_new(loop, "first", json_boolean(i == 0));
            json_object_set_new(loop, "last", json_boolean(i + 1 == len));
            json_object_set_new(loop, "length", json_integer((json_int_t)len));
            if (i > 0)
                json_object_set(loop, "previtem", json_array_get(list, i - 1));
            if (i + 1 < len)
                json_object_set(loop, "nextitem", json_array_get(list, i + 1));
            json_object_set_new(scope, "loop", loop);
        }
        rc = bind(c, n, json_array_get(list, i));
        if (!rc)
            rc = exec(c, n->body, out);
    }
    pop_scope(c);
out:
    json_decref(it);
    json_decref(list);
    return rc;
}

/* {% set name = v %} or {% set ns.attr = v %} */
static int assign(struct tmpl_ctx *c, const struct tmpl_node *n, json_t *v)
{
    if (n->ntargets == 1) {
        json_object_set(c->scopes[c->nscopes - 1], n->targets[0], v);
        return 0;
    }
    json_t *obj = lookup(c, n->targets[0]);
    if (!obj)
        return tmpl__fail(c, n->pos, WEIR_EINVAL, "undefined variable '%s'", n->targets[0]);
    if (!is_ns(c, obj))
        return tmpl__fail(c, n->pos, WEIR_EINVAL,
                          "cannot set '%s.%s': only namespace() objects can be changed",
                          n->targets[0], n->targets[1]);
    int rc = ns_check(c, n->pos, v, 0);
    if (!rc)
        json_object_set(obj, n->targets[1], v);
    return rc;
}

static int exec(struct tmpl_ctx *c, const struct tmpl_node *n, struct buf *out)
{
    int rc = 0;
    for (; n && !rc; n = n->next) {
        json_t *v = NULL;
        if ((rc = tmpl__charge(c, n->pos, 1, 0)))
            break;
        switch (n->kind) {
        case N_TEXT:
            rc = out_add(c, n->pos, out, n->text, n->len);
            break;
        case N_OUT:
            if (!(rc = eval(c, n->e, &v, false)))
                rc = tmpl__str(c, n->pos, v, out);
            break;
        case N_IF:
            for (const struct tmpl_branch *br = n->branches; br; br = br->next) {
                bool take = true;
                if (br->cond) {
                    if ((rc = eval(c, br->cond, &v, false)))
                        break;
                    take = tmpl__truthy(v);
                    json_decref(v);
                    v = NULL;
                }
                if (take) {
                    rc = exec(c, br->body, out);
                    break;
                }
            }
            break;
        case N_SET:
            if (!(rc = eval(c, n->e, &v, false)))
                rc = assign(c, n, v);
            break;
        case N_SETBLOCK: {
            struct buf sb;
            buf_init(&sb, c->max_str);
            if (!(rc = exec(c, n->body, &sb)) && !(rc = tmpl__mkstr(c, n->pos, sb.s, sb.len, &v)))
                rc = assign(c, n, v);
            buf_release(&sb);
            break;
        }
        case N_FOR:
            rc = exec_for(c, n, out);
            break;
        }
        json_decref(v);
    }
    return rc;
}

int tmpl__run(struct tmpl_ctx *c, struct buf *out)
{
    c->nscopes = 0;
    c->scopes[c->nscopes++] = json_object();
    int rc = exec(c, c->t->root, out);
    while (c->nscopes)
        pop_scope(c);
    while (c->nns)
        json_decref(c->ns[--c->nns]);
    return rc;
}
