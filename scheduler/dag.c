/* scheduler/dag.c - DAG files to the canonical DAG doc (docs/architecture.md#dag-doc,
 * docs/dag-files.md): YAML through core/yj, then a schema check that names file:line:col
 * and the key for every problem, then the doc, serialized by callers with
 * JSON_SORT_KEYS|JSON_COMPACT so that identical files give identical text.
 *
 * Validation order is fixed (top-level keys, then defaults, params, tasks in file order,
 * then the graph), so a file with several problems always reports the same first one. */
#define LOG_MODULE "scheduler"
#include "scheduler/scheduler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/cron.h"
#include "core/err.h"
#include "core/str.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tmpl.h"
#include "core/ts.h"
#include "core/tz.h"
#include "core/yj.h"

#define DAG_MAX_TASKS           10000
#define DAG_MAX_ID              250 /* Airflow's limit for dag and task ids */
#define DAG_MAX_DURATION        (INT64_C(3650) * 86400 * TS_US_PER_SEC) /* ten years */
#define DAG_DEFAULT_RETRY_DELAY (300 * TS_US_PER_SEC)                   /* Airflow's default */
#define DAG_DEFAULT_MAX_ACTIVE  16
#define DAG_MAX_INT             2147483647

static const char *const top_keys[] = {
    "dag",      "description", "schedule",        "timezone",         "start_date",
    "end_date", "catchup",     "max_active_runs", "max_active_tasks", "defaults",
    "params",   "tags",        "tasks",           "is_paused_upon_creation",
};
static const char *const default_keys[] = {
    "retries",      "retry_delay", "retry_exponential_backoff", "max_retry_delay", "timeout", "env",
    "trigger_rule", "pool",
};
static const char *const task_keys[] = {
    "run",
    "with",
    "needs",
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "timeout",
    "env",
    "pool",
    "description",
    "doc",
};
static const char *const param_keys[] = { "type", "default", "description" };
static const char *const param_types[] = { "string",  "integer", "number",
                                           "boolean", "object",  "array" };
static const char *const trigger_rules[] = { "all_success", "all_failed", "all_done",
                                             "one_success", "one_failed", "none_failed" };

/* Settings a task inherits from `defaults`. */
struct settings {
    int64_t retries;
    int64_t retry_delay; /* us */
    bool backoff;
    int64_t max_retry_delay; /* us or TS_NONE */
    int64_t timeout;         /* us or TS_NONE */
    json_t *env;             /* own reference: object of strings */
    const char *trigger_rule;
    const char *pool;
};

struct task {
    const char *id; /* borrowed from the yj tree */
    json_t *node;   /* the task's mapping (borrowed) */
    json_t *needs;  /* the needs array as written, or NULL when a single string */
    size_t *up;     /* indices of upstream tasks, in `needs` order */
    size_t nup;
    size_t indeg; /* remaining upstream count during the sort */
    size_t *down; /* indices of downstream tasks (filled during the sort) */
    size_t ndown;
    bool done;
    json_t *out; /* the task's doc object (own reference) */
};

struct ctx {
    struct yj_doc *y;
    const char *name;
    const struct sched_ops *ops;
    struct weir_err *err;
    struct arena *a;
    struct task *tasks;
    size_t ntasks;
    json_t *tasks_node;
    struct settings def;
};

/* ---- errors and locations --------------------------------------------------------------- */

static int vfail(struct ctx *c, int code, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static int vfail(struct ctx *c, int code, int line, int col, const char *fmt, va_list ap)
{
    err_vset(c->err, code, fmt, ap);
    if (c->err) {
        /* Messages quote keys from the file, which may hold any byte: keep them one line. */
        for (char *p = c->err->msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        if (line <= 0)
            yj_loc_root(c->y, &line, &col);
        snprintf(c->err->loc, sizeof c->err->loc, "%s:%d:%d", c->name, line > 0 ? line : 1,
                 col > 0 ? col : 1);
    }
    return -code;
}

static int vfail_at(struct ctx *c, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int vfail_at(struct ctx *c, int code, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, code, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Error at the key `key` of mapping `obj` (the root when obj is NULL). */
static int fail_key(struct ctx *c, const json_t *obj, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_key(struct ctx *c, const json_t *obj, const char *key, const char *fmt, ...)
{
    int line = 0, col = 0;
    if (obj && key)
        yj_loc_key(c->y, obj, key, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, WEIR_EINVAL, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Error at the value of `key` in mapping `obj`. */
static int fail_val(struct ctx *c, const json_t *obj, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_val(struct ctx *c, const json_t *obj, const char *key, const char *fmt, ...)
{
    int line = 0, col = 0;
    if (obj && key)
        yj_loc_value(c->y, obj, key, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, WEIR_EINVAL, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Error at element `i` of sequence `arr`. */
static int fail_idx(struct ctx *c, const json_t *arr, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_idx(struct ctx *c, const json_t *arr, size_t i, const char *fmt, ...)
{
    int line = 0, col = 0;
    yj_loc_index(c->y, arr, i, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, WEIR_EINVAL, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- key suggestions ------------------------------------------------------------------- */


/* The closest candidate to `word`, or NULL when none is close enough to suggest. */
static const char *closest(const char *word, const char *const *cands, size_t n)
{
    size_t best = (size_t)-1;
    const char *pick = NULL;
    size_t len = strlen(word);
    size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    for (size_t i = 0; i < n; i++) {
        size_t dist = str_edit_distance(word, cands[i]);
        if (dist < best) {
            best = dist;
            pick = cands[i];
        }
    }
    return best <= limit ? pick : NULL;
}

/* Formats " (did you mean 'x'?)" into `buf`, or "". */
static const char *suggest(char *buf, size_t len, const char *word, const char *const *cands,
                           size_t n)
{
    const char *s = closest(word, cands, n);
    if (s)
        snprintf(buf, len, " (did you mean '%s'?)", s);
    else
        buf[0] = '\0';
    return buf;
}

/* Rejects any key of `obj` outside `allowed`; `where` is appended (" in task 'x'"). */
static int check_keys(struct ctx *c, json_t *obj, const char *const *allowed, size_t n,
                      const char *where)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char hint[96];
            return fail_key(c, obj, k, "unknown key '%s'%s%s", k, where,
                            suggest(hint, sizeof hint, k, allowed, n));
        }
    }
    return 0;
}

/* ---- typed getters ----------------------------------------------------------------------- */

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DAG_MAX_ID || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static bool valid_ident(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

/* An integer in [min, max]; `pre` prefixes the message ("task 'x': "). */
static int get_int(struct ctx *c, json_t *obj, const char *key, int64_t min, int64_t max,
                   const char *pre, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return fail_val(c, obj, key, "%s'%s' must be an integer >= %lld", pre, key, (long long)min);
    if (json_integer_value(v) > max)
        return fail_val(c, obj, key, "%s'%s' must be at most %lld", pre, key, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(struct ctx *c, json_t *obj, const char *key, const char *pre, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail_val(c, obj, key, "%s'%s' must be true or false", pre, key);
    *out = json_is_true(v);
    return 0;
}

/* A string or null (null leaves *out unchanged when `null_ok`). */
static int get_str(struct ctx *c, json_t *obj, const char *key, const char *pre, bool null_ok,
                   const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || (null_ok && json_is_null(v)))
        return 0;
    if (!json_is_string(v))
        return fail_val(c, obj, key, "%s'%s' must be a string", pre, key);
    *out = json_string_value(v);
    return 0;
}

/* A duration: "30s", "5m", "1h30m" or a number of seconds. With `nullable`, null means
 * "none" (TS_NONE). `positive` rejects 0. */
static int get_duration(struct ctx *c, json_t *obj, const char *key, const char *pre, bool nullable,
                        bool positive, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (nullable && json_is_null(v)) {
        *out = TS_NONE;
        return 0;
    }
    int64_t us = -1;
    bool ok = false;
    if (json_is_string(v)) {
        ok = ts_parse_duration(json_string_value(v), &us, NULL) == 0;
    } else if (json_is_number(v)) {
        double secs = json_number_value(v);
        ok = secs >= 0 && secs <= (double)DAG_MAX_DURATION / 1e6;
        if (ok)
            us = (int64_t)(secs * 1e6 + 0.5);
    }
    if (!ok || us < 0 || (positive && us == 0))
        return fail_val(c, obj, key,
                        "%s'%s' must be a %sduration like '30s', '5m', '1h30m' or a number of "
                        "seconds",
                        pre, key, positive ? "positive " : "");
    if (us > DAG_MAX_DURATION)
        return fail_val(c, obj, key, "%s'%s' must be at most 3650d", pre, key);
    *out = us;
    return 0;
}

/* Seconds as a JSON number: an integer when whole (the common case), a real otherwise. */
static json_t *secs_json(int64_t us)
{
    if (us == TS_NONE)
        return json_null();
    if (us % TS_US_PER_SEC == 0)
        return json_integer(us / TS_US_PER_SEC);
    return json_real((double)us / 1e6);
}

/* ---- settings shared by `defaults` and tasks --------------------------------------------- */

static int get_env(struct ctx *c, json_t *obj, const char *pre, json_t *env)
{
    json_t *v = json_object_get(obj, "env");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail_val(c, obj, "env", "%s'env' must be a mapping of names to strings", pre);
    const char *k;
    json_t *s;
    json_object_foreach(v, k, s) {
        if (!valid_ident(k))
            return fail_key(c, v, k, "%s'env': '%s' is not a valid variable name", pre, k);
        if (!json_is_string(s))
            return fail_val(c, v, k, "%s'env': value of '%s' must be a string (quote it)", pre, k);
        json_object_set(env, k, s);
    }
    return 0;
}

/* Reads the inheritable settings of `obj` (the defaults or a task) over `s`. */
static int get_settings(struct ctx *c, json_t *obj, const char *pre, struct settings *s)
{
    int rc;
    if ((rc = get_int(c, obj, "retries", 0, DAG_MAX_INT, pre, &s->retries)) < 0 ||
        (rc = get_duration(c, obj, "retry_delay", pre, false, false, &s->retry_delay)) < 0 ||
        (rc = get_bool(c, obj, "retry_exponential_backoff", pre, &s->backoff)) < 0 ||
        (rc = get_duration(c, obj, "max_retry_delay", pre, true, true, &s->max_retry_delay)) < 0 ||
        (rc = get_duration(c, obj, "timeout", pre, true, true, &s->timeout)) < 0 ||
        (rc = get_env(c, obj, pre, s->env)) < 0)
        return rc;
    const char *rule = s->trigger_rule;
    if ((rc = get_str(c, obj, "trigger_rule", pre, false, &rule)) < 0)
        return rc;
    if (rule != s->trigger_rule) {
        bool ok = false;
        for (size_t i = 0; i < WEIR_ARRAY_LEN(trigger_rules) && !ok; i++)
            ok = strcmp(rule, trigger_rules[i]) == 0;
        if (!ok) {
            char hint[96];
            return fail_val(
                c, obj, "trigger_rule",
                "%s'trigger_rule' must be one of all_success, all_failed, all_done, "
                "one_success, one_failed, none_failed%s",
                pre,
                suggest(hint, sizeof hint, rule, trigger_rules, WEIR_ARRAY_LEN(trigger_rules)));
        }
        s->trigger_rule = rule;
    }
    const char *pool = s->pool;
    if ((rc = get_str(c, obj, "pool", pre, false, &pool)) < 0)
        return rc;
    if (pool != s->pool) {
        if (!valid_id(pool))
            return fail_val(c, obj, "pool", "%s'pool' must match [A-Za-z0-9_.-]+", pre);
        s->pool = pool;
    }
    return 0;
}

/* ---- top level ------------------------------------------------------------------------------ */

static int parse_dates(struct ctx *c, json_t *root, const struct tz *tz, bool scheduled,
                       json_t *out)
{
    int64_t when[2] = { TS_NONE, TS_NONE };
    const char *keys[2] = { "start_date", "end_date" };
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, keys[i]);
        if (v && !json_is_null(v)) {
            if (!json_is_string(v))
                return fail_val(c, root, keys[i],
                                "'%s' must be a date or date-time like 2026-01-01 or "
                                "2026-01-01T06:00:00",
                                keys[i]);
            struct weir_err te;
            err_clear(&te);
            if (ts_parse(json_string_value(v), tz, &when[i], &te) < 0)
                return fail_val(c, root, keys[i], "'%s': %s", keys[i], te.msg);
        }
        char buf[48];
        json_object_set_new(out, keys[i],
                            when[i] == TS_NONE
                                ? json_null()
                                : json_string(ts_format(when[i], TS_FMT_Z, buf, sizeof buf)));
    }
    if (scheduled && when[0] == TS_NONE)
        return fail_key(c, root, "schedule", "'start_date' is required when 'schedule' is set");
    if (when[0] != TS_NONE && when[1] != TS_NONE && when[1] < when[0])
        return fail_val(c, root, "end_date", "'end_date' is before 'start_date'");
    return 0;
}

static int parse_params(struct ctx *c, json_t *root, json_t *out)
{
    json_t *params = json_object_get(root, "params");
    json_t *res = json_object();
    json_object_set_new(out, "params", res);
    if (!params || json_is_null(params))
        return 0;
    if (!json_is_object(params))
        return fail_val(c, root, "params", "'params' must be a mapping of names to params");
    const char *name;
    json_t *p;
    json_object_foreach(params, name, p) {
        if (!valid_ident(name))
            return fail_key(c, params, name, "param '%s': name must match [A-Za-z_][A-Za-z0-9_]*",
                            name);
        json_t *def = p;
        const char *type = NULL, *desc = NULL;
        if (json_is_object(p)) {
            char where[300];
            snprintf(where, sizeof where, " in param '%s'", name);
            int rc = check_keys(c, p, param_keys, WEIR_ARRAY_LEN(param_keys), where);
            char pre[300];
            snprintf(pre, sizeof pre, "param '%s': ", name);
            if (rc < 0 || (rc = get_str(c, p, "type", pre, true, &type)) < 0 ||
                (rc = get_str(c, p, "description", pre, true, &desc)) < 0)
                return rc;
            if (type) {
                bool ok = false;
                for (size_t i = 0; i < WEIR_ARRAY_LEN(param_types) && !ok; i++)
                    ok = strcmp(type, param_types[i]) == 0;
                if (!ok)
                    return fail_val(c, p, "type",
                                    "param '%s': 'type' must be one of string, integer, number, "
                                    "boolean, object, array",
                                    name);
            }
            def = json_object_get(p, "default");
            if (!def)
                def = json_null();
        }
        const char *inferred = json_is_integer(def)   ? "integer"
                               : json_is_real(def)    ? "number"
                               : json_is_boolean(def) ? "boolean"
                               : json_is_object(def)  ? "object"
                               : json_is_array(def)   ? "array"
                                                      : "string";
        if (!type) {
            type = inferred;
        } else if (!json_is_null(def)) {
            bool ok =
                strcmp(type, inferred) == 0 || (strcmp(type, "number") == 0 && json_is_number(def));
            if (!ok)
                return fail_val(c, p, "default", "param '%s': 'default' must be of type '%s'", name,
                                type);
        }
        json_t *spec = json_object();
        json_object_set_new(spec, "type", json_string(type));
        json_object_set_new(spec, "default", json_deep_copy(def));
        json_object_set_new(spec, "description", desc ? json_string(desc) : json_null());
        json_object_set_new(res, name, spec);
    }
    return 0;
}

static int parse_tags(struct ctx *c, json_t *root, json_t *out)
{
    json_t *tags = json_object_get(root, "tags");
    json_t *res = json_array();
    json_object_set_new(out, "tags", res);
    if (!tags || json_is_null(tags))
        return 0;
    if (!json_is_array(tags))
        return fail_val(c, root, "tags", "'tags' must be a list of strings");
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (!json_is_string(t) || json_string_length(t) == 0)
            return fail_idx(c, tags, i, "'tags' must be a list of non-empty strings");
        json_array_append(res, t);
    }
    return 0;
}

static int parse_header(struct ctx *c, json_t *root, json_t *out, const struct tz **tzp)
{
    int rc = check_keys(c, root, top_keys, WEIR_ARRAY_LEN(top_keys), "");
    if (rc < 0)
        return rc;

    json_t *id = json_object_get(root, "dag");
    if (!id)
        return fail_key(c, NULL, NULL, "missing required key 'dag'");
    if (!json_is_string(id) || !valid_id(json_string_value(id)))
        return fail_val(c, root, "dag", "'dag' must match [A-Za-z0-9_.-]+ (at most %d characters)",
                        DAG_MAX_ID);
    json_object_set(out, "dag_id", id);

    const char *desc = NULL;
    if ((rc = get_str(c, root, "description", "", true, &desc)) < 0)
        return rc;
    json_object_set_new(out, "description", desc ? json_string(desc) : json_null());

    const char *sched = NULL;
    if ((rc = get_str(c, root, "schedule", "", true, &sched)) < 0)
        return rc;
    if (sched) {
        struct cron cr;
        struct weir_err ce;
        err_clear(&ce);
        if (cron_parse(sched, &cr, &ce) < 0)
            return fail_val(c, root, "schedule", "'schedule': %s", ce.msg);
    }
    json_object_set_new(out, "schedule", sched ? json_string(sched) : json_null());

    const char *zone = "UTC";
    if ((rc = get_str(c, root, "timezone", "", false, &zone)) < 0)
        return rc;
    struct weir_err te;
    err_clear(&te);
    const struct tz *tz = tz_get(zone, &te);
    if (!tz)
        return fail_val(c, root, "timezone", "'timezone': %s", te.msg);
    *tzp = tz;
    json_object_set_new(out, "timezone", json_string(zone));

    if ((rc = parse_dates(c, root, tz, sched != NULL, out)) < 0)
        return rc;

    bool catchup = false;
    int64_t runs = DAG_DEFAULT_MAX_ACTIVE, tasks = DAG_DEFAULT_MAX_ACTIVE;
    if ((rc = get_bool(c, root, "catchup", "", &catchup)) < 0 ||
        (rc = get_int(c, root, "max_active_runs", 1, DAG_MAX_INT, "", &runs)) < 0 ||
        (rc = get_int(c, root, "max_active_tasks", 1, DAG_MAX_INT, "", &tasks)) < 0)
        return rc;
    json_object_set_new(out, "catchup", json_boolean(catchup));
    /* Airflow's is_paused_upon_creation: null means the configured default. */
    bool paused = false;
    json_t *pv = json_object_get(root, "is_paused_upon_creation");
    if (pv && !json_is_null(pv)) {
        if ((rc = get_bool(c, root, "is_paused_upon_creation", "", &paused)) < 0)
            return rc;
        json_object_set_new(out, "is_paused_upon_creation", json_boolean(paused));
    } else {
        json_object_set_new(out, "is_paused_upon_creation", json_null());
    }
    json_object_set_new(out, "max_active_runs", json_integer(runs));
    json_object_set_new(out, "max_active_tasks", json_integer(tasks));

    if ((rc = parse_tags(c, root, out)) < 0 || (rc = parse_params(c, root, out)) < 0)
        return rc;

    json_t *defs = json_object_get(root, "defaults");
    if (defs && !json_is_null(defs)) {
        if (!json_is_object(defs))
            return fail_val(c, root, "defaults", "'defaults' must be a mapping");
        if ((rc = check_keys(c, defs, default_keys, WEIR_ARRAY_LEN(default_keys),
                             " in 'defaults'")) < 0 ||
            (rc = get_settings(c, defs, "defaults: ", &c->def)) < 0)
            return rc;
    }
    return 0;
}

/* ---- tasks --------------------------------------------------------------------------------- */

/* Checks template syntax in every string of `v` (the `with` tree); `path` names it. */
static int check_templates(struct ctx *c, const char *tid, json_t *parent, const char *key,
                           size_t idx, json_t *v, char *path, size_t plen)
{
    size_t used = strlen(path);
    if (json_is_string(v)) {
        struct weir_err te;
        err_clear(&te);
        if (tmpl_check(json_string_value(v), &te) == 0)
            return 0;
        char inner[160];
        if (te.loc[0])
            snprintf(inner, sizeof inner, " at %s", te.loc);
        else
            inner[0] = '\0';
        if (key)
            return fail_val(c, parent, key, "task '%s': template error in '%s'%s: %s", tid, path,
                            inner, te.msg);
        return fail_idx(c, parent, idx, "task '%s': template error in '%s'%s: %s", tid, path, inner,
                        te.msg);
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child) {
            snprintf(path + used, plen - used, ".%s", k);
            int rc = check_templates(c, tid, v, k, 0, child, path, plen);
            path[used] = '\0';
            if (rc < 0)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            snprintf(path + used, plen - used, "[%zu]", i);
            int rc = check_templates(c, tid, v, NULL, i, child, path, plen);
            path[used] = '\0';
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static bool type_matches(const char *type, json_t *v)
{
    if (!strcmp(type, "integer"))
        return json_is_integer(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "object"))
        return json_is_object(v);
    if (!strcmp(type, "array"))
        return json_is_array(v);
    if (!strcmp(type, "string"))
        return json_is_string(v);
    return true; /* "any" and types we do not know */
}

/* Checks `with` against the operator's params schema (JSON text from the plugin). */
static int check_with_schema(struct ctx *c, struct task *t, const char *run, const char *schema,
                             json_t *with)
{
    json_error_t je;
    json_t *s = json_loads(schema, 0, &je);
    if (!json_is_object(s)) {
        /* The plugin's bug, not the DAG's: say so in the log and check nothing. */
        LOG_WARN("operator has an invalid params schema op=%s error=\"%s\"", run,
                 s ? "not a JSON object" : je.text);
        json_decref(s);
        return 0;
    }
    int rc = 0;
    size_t n = json_object_size(s), i = 0;
    const char **names = xcalloc(n ? n : 1, sizeof *names);
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
        names[i++] = k;

    if (with) {
        json_object_foreach(with, k, v) {
            json_t *spec = json_object_get(s, k);
            if (!spec) {
                char hint[96];
                rc = fail_key(c, with, k,
                              "unknown key '%s' in 'with' of task '%s' (operator '%s')%s", k, t->id,
                              run, suggest(hint, sizeof hint, k, names, n));
                goto out;
            }
            const char *type = json_string_value(json_object_get(spec, "type"));
            /* A string may be a template that renders to the right type: the runner checks
             * types again after rendering. */
            if (type && !json_is_string(v) && !json_is_null(v) && !type_matches(type, v)) {
                rc = fail_val(c, with, k, "task '%s': 'with.%s' must be of type '%s'", t->id, k,
                              type);
                goto out;
            }
        }
    }
    json_object_foreach(s, k, v) {
        if (!json_is_true(json_object_get(v, "required")) || json_object_get(with, k))
            continue;
        if (json_object_get(t->node, "with"))
            rc = fail_key(c, t->node, "with",
                          "missing required key '%s' in 'with' of task '%s' (operator '%s')", k,
                          t->id, run);
        else
            rc = fail_key(c, c->tasks_node, t->id,
                          "missing required key '%s' in 'with' of task '%s' (operator '%s')", k,
                          t->id, run);
        goto out;
    }
out:
    free(names);
    json_decref(s);
    return rc;
}

static bool valid_ref(const char *s)
{
    /* plugin.operator: the plugin is [a-z0-9_]+ (plugin.h), the operator a name. */
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1])
        return false;
    for (const char *p = s; p < dot; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    for (const char *p = dot + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

static int parse_task(struct ctx *c, struct task *t)
{
    json_t *node = t->node;
    char pre[300];
    snprintf(pre, sizeof pre, "task '%s': ", t->id);
    if (!json_is_object(node))
        return fail_val(c, c->tasks_node, t->id, "task '%s' must be a mapping with at least 'run'",
                        t->id);
    char where[300];
    snprintf(where, sizeof where, " in task '%s'", t->id);
    int rc = check_keys(c, node, task_keys, WEIR_ARRAY_LEN(task_keys), where);
    if (rc < 0)
        return rc;

    json_t *run = json_object_get(node, "run");
    if (!run)
        return fail_key(c, c->tasks_node, t->id, "task '%s': missing required key 'run'", t->id);
    if (!json_is_string(run) || !valid_ref(json_string_value(run)))
        return fail_val(c, node, "run", "%s'run' must be 'plugin.operator'", pre);
    const char *ref = json_string_value(run);

    json_t *with = json_object_get(node, "with");
    if (with && json_is_null(with))
        with = NULL;
    if (with && !json_is_object(with))
        return fail_val(c, node, "with", "%s'with' must be a mapping", pre);

    const char *schema = NULL;
    if (c->ops && c->ops->find) {
        if (!c->ops->find(c->ops->ud, ref, &schema))
            return fail_val(c, node, "run", "unknown operator '%s' in task '%s'", ref, t->id);
        if (schema && *schema && (rc = check_with_schema(c, t, ref, schema, with)) < 0)
            return rc;
    }
    if (with) {
        char path[512] = "with";
        const char *k;
        json_t *v;
        json_object_foreach(with, k, v) {
            snprintf(path, sizeof path, "with.%s", k);
            if ((rc = check_templates(c, t->id, with, k, 0, v, path, sizeof path)) < 0)
                return rc;
        }
    }

    /* needs: a list of task ids, or one id. Resolved to indices later. */
    json_t *needs = json_object_get(node, "needs");
    if (needs && !json_is_null(needs) && !json_is_string(needs)) {
        if (!json_is_array(needs))
            return fail_val(c, node, "needs", "%s'needs' must be a task id or a list of task ids",
                            pre);
        size_t i;
        json_t *n;
        json_array_foreach(needs, i, n) {
            if (!json_is_string(n))
                return fail_idx(c, needs, i, "%s'needs' must be a task id or a list of task ids",
                                pre);
        }
        t->needs = needs;
    }

    struct settings s = c->def;
    s.env = json_deep_copy(c->def.env);
    rc = get_settings(c, node, pre, &s);
    const char *desc = NULL, *doc = NULL;
    if (rc == 0)
        rc = get_str(c, node, "description", pre, true, &desc);
    if (rc == 0)
        rc = get_str(c, node, "doc", pre, true, &doc);
    if (rc < 0) {
        json_decref(s.env);
        return rc;
    }

    json_t *o = json_object();
    t->out = o;
    json_object_set_new(o, "task_id", json_string(t->id));
    json_object_set_new(o, "run", json_string(ref));
    json_object_set_new(o, "with", with ? json_deep_copy(with) : json_object());
    json_object_set_new(o, "trigger_rule", json_string(s.trigger_rule));
    json_object_set_new(o, "retries", json_integer(s.retries));
    json_object_set_new(o, "retry_delay", secs_json(s.retry_delay));
    json_object_set_new(o, "retry_exponential_backoff", json_boolean(s.backoff));
    json_object_set_new(o, "max_retry_delay", secs_json(s.max_retry_delay));
    json_object_set_new(o, "timeout", secs_json(s.timeout));
    json_object_set_new(o, "env", s.env);
    json_object_set_new(o, "pool", json_string(s.pool));
    json_object_set_new(o, "description", desc ? json_string(desc) : json_null());
    json_object_set_new(o, "doc", doc ? json_string(doc) : json_null());
    return 0;
}

/* Resolves `needs` into upstream indices, rejecting unknown and repeated ids. A hash
 * table over ids keeps 10,000 tasks fast: json objects are one. */
static int resolve_needs(struct ctx *c, json_t *index)
{
    const char **ids = xcalloc(c->ntasks, sizeof *ids);
    for (size_t i = 0; i < c->ntasks; i++)
        ids[i] = c->tasks[i].id;
    int rc = 0;
    for (size_t i = 0; i < c->ntasks && rc == 0; i++) {
        struct task *t = &c->tasks[i];
        json_t *single = json_object_get(t->node, "needs");
        size_t n = t->needs ? json_array_size(t->needs) : json_is_string(single) ? 1 : 0;
        t->up = n ? arena_calloc(c->a, n, sizeof *t->up) : NULL;
        if (n && !t->up) {
            rc = fail_key(c, t->node, "needs", "task '%s': 'needs' is too long", t->id);
            break;
        }
        for (size_t j = 0; j < n; j++) {
            const char *name = json_string_value(t->needs ? json_array_get(t->needs, j) : single);
            json_t *ix = json_object_get(index, name);
            if (!ix) {
                char hint[300];
                const char *close = closest(name, ids, c->ntasks);
                if (close)
                    snprintf(hint, sizeof hint, " (did you mean '%s'?)", close);
                else
                    hint[0] = '\0';
                if (t->needs)
                    rc = fail_idx(c, t->needs, j, "task '%s': unknown task '%s' in 'needs'%s",
                                  t->id, name, hint);
                else
                    rc = fail_val(c, t->node, "needs", "task '%s': unknown task '%s' in 'needs'%s",
                                  t->id, name, hint);
                break;
            }
            size_t up = (size_t)json_integer_value(ix);
            for (size_t k = 0; k < t->nup; k++) {
                if (t->up[k] == up) {
                    rc = fail_idx(c, t->needs, j, "task '%s': '%s' is listed twice in 'needs'",
                                  t->id, name);
                    break;
                }
            }
            if (rc < 0)
                break;
            t->up[t->nup++] = up;
            c->tasks[up].ndown++;
        }
    }
    free(ids);
    return rc;
}

/* Binary min-heap of task indices: Kahn's algorithm picks the earliest task in file
 * order among those ready, so the order is deterministic and close to the file's. */
struct heap {
    size_t *v;
    size_t n;
};

static void heap_push(struct heap *h, size_t x)
{
    size_t i = h->n++;
    h->v[i] = x;
    while (i > 0 && h->v[(i - 1) / 2] > h->v[i]) {
        size_t p = (i - 1) / 2, tmp = h->v[p];
        h->v[p] = h->v[i];
        h->v[i] = tmp;
        i = p;
    }
}

static size_t heap_pop(struct heap *h)
{
    size_t top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l] < h->v[m])
            m = l;
        if (r < h->n && h->v[r] < h->v[m])
            m = r;
        if (m == i)
            break;
        size_t tmp = h->v[m];
        h->v[m] = h->v[i];
        h->v[i] = tmp;
        i = m;
    }
    return top;
}

/* Reports a cycle among the tasks the sort could not place. Every such task has an
 * unplaced upstream, so walking `needs` from any of them must revisit a task. */
static int report_cycle(struct ctx *c)
{
    size_t start = 0;
    while (c->tasks[start].done)
        start++;
    size_t *seen_at = xmalloc(c->ntasks * sizeof *seen_at);
    size_t *path = xmalloc((c->ntasks + 1) * sizeof *path);
    for (size_t i = 0; i < c->ntasks; i++)
        seen_at[i] = (size_t)-1;
    size_t len = 0, cur = start;
    while (seen_at[cur] == (size_t)-1) {
        seen_at[cur] = len;
        path[len++] = cur;
        const struct task *t = &c->tasks[cur];
        size_t next = (size_t)-1;
        for (size_t k = 0; k < t->nup && next == (size_t)-1; k++)
            if (!c->tasks[t->up[k]].done)
                next = t->up[k];
        if (next == (size_t)-1) { /* cannot happen: see above */
            free(seen_at);
            free(path);
            return err_set(c->err, WEIR_EINTERNAL, "dependency cycle detection failed");
        }
        cur = next;
    }
    /* path[seen_at[cur]..len-1] walks upstream: each needs the next. Spell it downstream,
     * starting from the task earliest in the file. */
    size_t first = seen_at[cur], n = len - first;
    size_t *cyc = xmalloc(n * sizeof *cyc);
    for (size_t i = 0; i < n; i++)
        cyc[i] = path[len - 1 - i]; /* downstream order */
    size_t rot = 0;
    for (size_t i = 1; i < n; i++)
        if (cyc[i] < cyc[rot])
            rot = i;
    char msg[sizeof c->err->msg];
    size_t used = (size_t)snprintf(msg, sizeof msg, "dependency cycle: ");
    for (size_t i = 0; i <= n && used < sizeof msg; i++)
        used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s", i ? " -> " : "",
                                 c->tasks[cyc[(rot + i) % n]].id);
    /* Point at the `needs` entry of the first task that closes the cycle. */
    const struct task *t0 = &c->tasks[cyc[rot]];
    size_t prev = cyc[(rot + n - 1) % n];
    int rc;
    if (t0->needs) {
        size_t j = 0;
        while (j < t0->nup && t0->up[j] != prev)
            j++;
        rc = fail_idx(c, t0->needs, j, "%s", msg);
    } else {
        rc = fail_val(c, t0->node, "needs", "%s", msg);
    }
    free(cyc);
    free(seen_at);
    free(path);
    return rc;
}

static int sort_tasks(struct ctx *c, size_t *order)
{
    for (size_t i = 0; i < c->ntasks; i++) {
        struct task *t = &c->tasks[i];
        t->indeg = t->nup;
        t->down = t->ndown ? arena_calloc(c->a, t->ndown, sizeof *t->down) : NULL;
        if (t->ndown && !t->down)
            return err_set(c->err, WEIR_ETOOBIG, "dag is too large");
        t->ndown = 0;
    }
    /* Downstream lists, in file order of the downstream task for now. */
    for (size_t i = 0; i < c->ntasks; i++)
        for (size_t k = 0; k < c->tasks[i].nup; k++) {
            struct task *u = &c->tasks[c->tasks[i].up[k]];
            u->down[u->ndown++] = i;
        }
    struct heap h = { xmalloc(c->ntasks * sizeof(size_t)), 0 };
    for (size_t i = 0; i < c->ntasks; i++)
        if (c->tasks[i].indeg == 0)
            heap_push(&h, i);
    size_t placed = 0;
    while (h.n) {
        size_t i = heap_pop(&h);
        struct task *t = &c->tasks[i];
        t->done = true;
        order[placed++] = i;
        for (size_t k = 0; k < t->ndown; k++)
            if (--c->tasks[t->down[k]].indeg == 0)
                heap_push(&h, t->down[k]);
    }
    free(h.v);
    if (placed < c->ntasks)
        return report_cycle(c);
    return 0;
}

static int parse_tasks(struct ctx *c, json_t *root, json_t *out)
{
    json_t *tasks = json_object_get(root, "tasks");
    if (!tasks)
        return fail_key(c, NULL, NULL, "missing required key 'tasks'");
    if (!json_is_object(tasks))
        return fail_val(c, root, "tasks", "'tasks' must be a mapping of task ids to tasks");
    size_t n = json_object_size(tasks);
    if (n == 0)
        return fail_val(c, root, "tasks", "'tasks' must have at least one task");
    if (n > DAG_MAX_TASKS) {
        int line = 0, col = 0;
        yj_loc_key(c->y, root, "tasks", &line, &col);
        return vfail_at(c, WEIR_ETOOBIG, line, col, "too many tasks (%zu; at most %d)", n,
                        DAG_MAX_TASKS);
    }
    c->tasks_node = tasks;
    c->tasks = arena_calloc(c->a, n, sizeof *c->tasks);
    if (!c->tasks)
        return err_set(c->err, WEIR_ETOOBIG, "dag is too large");

    int rc = 0;
    json_t *index = json_object(); /* task id -> file index */
    const char *k;
    json_t *v;
    json_object_foreach(tasks, k, v) {
        if (!valid_id(k)) {
            rc = fail_key(c, tasks, k,
                          "task id '%s' must match [A-Za-z0-9_.-]+ (at most %d "
                          "characters)",
                          k, DAG_MAX_ID);
            goto out;
        }
        struct task *t = &c->tasks[c->ntasks];
        t->id = k;
        t->node = v;
        json_object_set_new(index, k, json_integer((json_int_t)c->ntasks));
        c->ntasks++;
    }
    for (size_t i = 0; i < c->ntasks; i++)
        if ((rc = parse_task(c, &c->tasks[i])) < 0)
            goto out;
    if ((rc = resolve_needs(c, index)) < 0)
        goto out;
    size_t *order = xmalloc(c->ntasks * sizeof *order);
    if ((rc = sort_tasks(c, order)) < 0) {
        free(order);
        goto out;
    }
    /* Refill the downstream lists in output order: visiting tasks in that order and
     * appending each to its upstreams' lists sorts them without a sort. */
    for (size_t i = 0; i < c->ntasks; i++)
        c->tasks[i].ndown = 0;
    for (size_t i = 0; i < c->ntasks; i++) {
        struct task *t = &c->tasks[order[i]];
        for (size_t j = 0; j < t->nup; j++) {
            struct task *u = &c->tasks[t->up[j]];
            u->down[u->ndown++] = order[i];
        }
    }
    json_t *arr = json_array();
    json_object_set_new(out, "tasks", arr);
    for (size_t i = 0; i < c->ntasks; i++) {
        struct task *t = &c->tasks[order[i]];
        json_t *needs = json_array();
        for (size_t j = 0; j < t->nup; j++)
            json_array_append_new(needs, json_string(c->tasks[t->up[j]].id));
        json_object_set_new(t->out, "needs", needs);
        json_t *down = json_array();
        for (size_t j = 0; j < t->ndown; j++)
            json_array_append_new(down, json_string(c->tasks[t->down[j]].id));
        json_object_set_new(t->out, "downstream", down);
        json_array_append(arr, t->out);
    }
    free(order);
out:
    json_decref(index);
    return rc;
}

/* ---- entry points -------------------------------------------------------------------------- */

static int parse_doc(struct yj_doc *y, const char *name, const struct sched_ops *ops, json_t **doc,
                     struct weir_err *err)
{
    struct ctx c = { 0 };
    c.y = y;
    c.name = name;
    c.ops = ops;
    c.err = err;
    c.a = arena_new((size_t)64 << 20);
    c.def.retries = 0;
    c.def.retry_delay = DAG_DEFAULT_RETRY_DELAY;
    c.def.backoff = false;
    c.def.max_retry_delay = TS_NONE;
    c.def.timeout = TS_NONE;
    c.def.env = json_object();
    c.def.trigger_rule = "all_success";
    c.def.pool = "default_pool";

    json_t *out = json_object();
    json_t *root = yj_root(y);
    const struct tz *tz = NULL;
    int rc;
    if (json_is_null(root)) {
        rc = fail_key(&c, NULL, NULL, "dag file is empty");
        goto out;
    }
    if (!json_is_object(root)) {
        rc = fail_key(&c, NULL, NULL, "dag file must be a mapping with 'dag' and 'tasks'");
        goto out;
    }
    if ((rc = parse_header(&c, root, out, &tz)) < 0 || (rc = parse_tasks(&c, root, out)) < 0)
        goto out;
    json_object_set_new(out, "fileloc", json_string(name));
out:
    for (size_t i = 0; i < c.ntasks; i++)
        json_decref(c.tasks[i].out);
    json_decref(c.def.env);
    arena_free(c.a);
    if (rc < 0) {
        json_decref(out);
        *doc = NULL;
        return rc;
    }
    *doc = out;
    return 0;
}

int sched_dag_parse_string(const char *src, size_t len, const char *name,
                           const struct sched_ops *ops, json_t **doc, struct weir_err *err)
{
    *doc = NULL;
    struct weir_err local;
    if (!err)
        err = &local;
    if (!name)
        name = "<string>";
    struct yj_doc *y = yj_parse_string(src, len, name, err);
    if (!y)
        return -err->code;
    int rc = parse_doc(y, name, ops, doc, err);
    yj_free(y);
    return rc;
}

int sched_dag_parse_file(const char *path, const struct sched_ops *ops, json_t **doc,
                         struct weir_err *err)
{
    *doc = NULL;
    struct weir_err local;
    if (!err)
        err = &local;
    struct yj_doc *y = yj_parse_file(path, err);
    if (!y)
        return -err->code;
    int rc = parse_doc(y, path, ops, doc, err);
    yj_free(y);
    return rc;
}
