/* webui/api.c - the REST API's DAG, run and task-instance endpoints (Airflow's stable REST
 * API v1 paths and field names; docs/rest-api.md): dags, dagRuns, taskInstances,
 * clearTaskInstances, task logs with continuation tokens, XComs, the DAG source, plus the
 * route table. Changes go through the scheduler's actions (sched_trigger, sched_clear,
 * sched_mark) and wake the scheduler afterwards. */
#define LOG_MODULE "web"
#include "webui/webui.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "scheduler/scheduler.h"
#include "store/store.h"
#include "webui/web_int.h"

#define PAGE_DEFAULT   100
#define PAGE_MAX       1000
#define LOG_PAGE_LINES 10000
#define SOURCE_MAX     ((size_t)4 << 20)

#define GET_STORE(r, st)                      \
    struct weir_err err = { 0 };              \
    struct store *st = web__store((r), &err); \
    if (!st)                                  \
    return web__fail((r), -WEIR_EUNAVAIL, &err)

/* ---- query helpers ---------------------------------------------------------------------- */

static int q_size(struct req *r, const char *name, size_t def, size_t max, size_t *out)
{
    const char *s = web__query(r, name);
    *out = def;
    if (!s)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return web__problem(r, WEIR_EINVAL, "query parameter '%s' must be a non-negative integer",
                            name);
    *out = (size_t)v > max ? max : (size_t)v;
    return 0;
}

int web__page_params(struct req *r, size_t *limit, size_t *offset)
{
    if (q_size(r, "limit", PAGE_DEFAULT, PAGE_MAX, limit) < 0)
        return -1;
    if (*limit == 0)
        *limit = PAGE_DEFAULT;
    return q_size(r, "offset", 0, SIZE_MAX, offset);
}

static int q_bool(struct req *r, const char *name, int def, int *out)
{
    const char *s = web__query(r, name);
    *out = def;
    if (!s)
        return 0;
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = 1;
    else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = 0;
    else
        return web__problem(r, WEIR_EINVAL, "query parameter '%s' must be true or false", name);
    return 0;
}

struct multi {
    const char *name;
    json_t *vals;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct multi *m = cls;
    if (key && value && strcmp(key, m->name) == 0) {
        /* Airflow clients send repeated parameters; a comma list is accepted too */
        const char *p = value;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            if (n)
                json_array_append_new(m->vals, json_stringn(p, n));
            p += n;
            if (*p == ',')
                p++;
        }
    }
    return MHD_YES;
}

/* All values of a repeated query parameter; new reference. */
static json_t *q_multi(struct req *r, const char *name)
{
    struct multi m = { name, json_array() };
    MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, collect, &m);
    return m.vals;
}

static int q_time(struct req *r, const char *name, int64_t *out)
{
    const char *s = web__query(r, name);
    *out = TS_NONE;
    if (!s)
        return 0;
    struct weir_err err = { 0 };
    if (ts_parse(s, NULL, out, &err) < 0)
        return web__problem(r, WEIR_EINVAL, "query parameter '%s': %s", name, err.msg);
    return 0;
}

static json_t *collection(const char *name, json_t *items, size_t total)
{
    json_t *o = json_object();
    json_object_set_new(o, name, items);
    json_object_set_new(o, "total_entries", json_integer((json_int_t)total));
    return o;
}

/* Slices [offset, offset+limit) out of `arr` (stolen) into a collection. */
json_t *web__page_of(const char *name, json_t *arr, size_t limit, size_t offset)
{
    size_t total = json_array_size(arr);
    json_t *items = json_array();
    for (size_t i = offset; i < total && i < offset + limit; i++)
        json_array_append(items, json_array_get(arr, i));
    json_decref(arr);
    return collection(name, items, total);
}

static bool is_wild(const char *s)
{
    return strcmp(s, "~") == 0;
}

static int need_dag(struct req *r, struct store *st, const char *dag_id, struct store_dag *d)
{
    struct weir_err err = { 0 };
    if (is_wild(dag_id))
        return web__problem(r, WEIR_EINVAL, "'~' is not allowed here");
    int rc = STORE(r, store_dag_get(st, dag_id, d, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    return 0;
}

/* ---- DAGs ----------------------------------------------------------------------------------- */

static bool dag_has_tag(const struct store_dag *d, json_t *tags)
{
    size_t i, j;
    json_t *t, *dt;
    json_array_foreach(tags, i, t) {
        json_array_foreach(d->tags, j, dt) {
            if (json_equal(t, dt))
                return true;
        }
    }
    return false;
}

static int cmp_dag_id_desc(const void *a, const void *b)
{
    return -strcmp(json_string_value(json_object_get(*(json_t *const *)a, "dag_id")),
                   json_string_value(json_object_get(*(json_t *const *)b, "dag_id")));
}

/* The DAG list is what every UI tab and dashboard polls, and it is the same for every
 * caller, so its serialized answer is kept for DAGS_CACHE_US per distinct query string.
 * Changes made through this server (pause, delete) invalidate it at once; changes from
 * the scheduler (a parse, next_dagrun) or another replica show within DAGS_CACHE_US. */
#define DAGS_CACHE_US (1 * TS_US_PER_SEC)

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct buf *b = cls;
    buf_addf(b, "%s=%s&", key ? key : "", value ? value : "");
    return MHD_YES;
}

static int dags_cache_send(struct req *r, const char *key)
{
    struct web *w = r->w;
    char *body = NULL;
    size_t len = 0;
    int64_t now = ts_mono_us();
    uint64_t gen = atomic_load(&w->dags_gen);
    pthread_mutex_lock(&w->lcache_mu);
    for (size_t i = 0; i < WEB_LCACHE_SLOTS; i++) {
        struct web__lcache_ent *e = &w->lcache[i];
        if (e->key && e->expires > now && e->gen == gen && strcmp(e->key, key) == 0) {
            body = xmalloc(e->len);
            memcpy(body, e->body, e->len);
            len = e->len;
            break;
        }
    }
    pthread_mutex_unlock(&w->lcache_mu);
    if (!body)
        return 1;
    const char *h[] = { "Cache-Control", "no-store", NULL };
    web__send(r, 200, "application/json", body, len, h);
    free(body);
    return 0;
}

static void dags_cache_put(struct web *w, const char *key, const char *body, uint64_t gen)
{
    int64_t now = ts_mono_us();
    pthread_mutex_lock(&w->lcache_mu);
    struct web__lcache_ent *victim = &w->lcache[0];
    for (size_t i = 0; i < WEB_LCACHE_SLOTS; i++) {
        struct web__lcache_ent *e = &w->lcache[i];
        if (e->key && strcmp(e->key, key) == 0) {
            victim = e;
            break;
        }
        if (e->expires < victim->expires)
            victim = e;
    }
    free(victim->key);
    free(victim->body);
    victim->key = xstrdup(key);
    victim->len = strlen(body);
    victim->body = xstrdup(body);
    victim->expires = now + DAGS_CACHE_US;
    victim->gen = gen;
    pthread_mutex_unlock(&w->lcache_mu);
}

static int dags_list_build(struct req *r, json_t **out);

static int h_dags_list(struct req *r)
{
    struct buf key;
    buf_init(&key, 4096);
    MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, add_arg, &key);
    bool cacheable = key.len < 4000;
    if (cacheable && dags_cache_send(r, key.s) == 0) {
        buf_release(&key);
        return 0;
    }
    uint64_t gen = atomic_load(&r->w->dags_gen);
    json_t *o = NULL;
    int rc = dags_list_build(r, &o);
    if (rc == 0) {
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s) {
            rc = web__problem(r, WEIR_EINTERNAL, "response cannot be serialized");
        } else {
            if (cacheable)
                dags_cache_put(r->w, key.s, s, gen);
            const char *h[] = { "Cache-Control", "no-store", NULL };
            rc = web__send(r, 200, "application/json", s, strlen(s), h);
            free(s);
        }
    }
    buf_release(&key);
    return rc;
}

static int dags_list_build(struct req *r, json_t **out)
{
    GET_STORE(r, st);
    size_t limit, offset;
    int only_active, paused;
    if (web__page_params(r, &limit, &offset) < 0 || q_bool(r, "only_active", 1, &only_active) < 0 ||
        q_bool(r, "paused", -1, &paused) < 0)
        return -1;
    const char *pattern = web__query(r, "dag_id_pattern");
    const char *order = web__query(r, "order_by");
    if (order && strcmp(order, "dag_id") != 0 && strcmp(order, "-dag_id") != 0)
        return web__problem(r, WEIR_EINVAL, "order_by '%.60s' is not dag_id or -dag_id", order);
    json_t *tags = q_multi(r, "tags");
    struct store_dag_list l = { 0 };
    int rc = STORE(r, store_dag_list(st, only_active != 0, 0, 0, &l, &err));
    if (rc < 0) {
        json_decref(tags);
        return web__fail(r, rc, &err);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++) {
        const struct store_dag *d = &l.items[i];
        if (paused >= 0 && d->is_paused != (paused == 1))
            continue;
        if (pattern && *pattern && !strcasestr(d->dag_id, pattern))
            continue;
        if (json_array_size(tags) && !dag_has_tag(d, tags))
            continue;
        json_array_append_new(arr, store_dag_to_json(d));
    }
    store_dag_list_release(&l);
    json_decref(tags);
    if (order && order[0] == '-') {
        size_t n = json_array_size(arr);
        json_t **v = xcalloc(n ? n : 1, sizeof(*v));
        for (size_t i = 0; i < n; i++)
            v[i] = json_incref(json_array_get(arr, i));
        qsort(v, n, sizeof(*v), cmp_dag_id_desc);
        json_array_clear(arr);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, v[i]);
        free(v);
    }
    *out = web__page_of("dags", arr, limit, offset);
    return 0;
}

static int h_dag_get(struct req *r)
{
    GET_STORE(r, st);
    struct store_dag d = { 0 };
    if (need_dag(r, st, r->args[0], &d) < 0)
        return -1;
    json_t *o = store_dag_to_json(&d);
    store_dag_release(&d);
    return web__json(r, 200, o);
}

static int h_dag_patch(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    /* the fields of Airflow's DAG object: only is_paused may change */
    static const char *const keys[] = { "is_paused", "dag_id", NULL };
    int rc = web__check_keys(r, body, keys);
    json_t *p = json_object_get(body, "is_paused");
    const char *mask = web__query(r, "update_mask");
    if (rc == 0 && mask && strcmp(mask, "is_paused") != 0)
        rc = web__problem(r, WEIR_EINVAL, "update_mask '%.60s': only is_paused can change", mask);
    if (rc == 0 && !json_is_boolean(p))
        rc = web__problem(r, WEIR_EINVAL, "is_paused must be a boolean");
    json_t *did = json_object_get(body, "dag_id");
    if (rc == 0 && did && (!json_is_string(did) || strcmp(json_string_value(did), r->args[0]) != 0))
        rc = web__problem(r, WEIR_EINVAL, "dag_id in the body differs from the path");
    if (rc == 0) {
        rc = STORE(r, store_dag_set_paused(st, r->args[0], json_is_true(p), &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    json_decref(body);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&r->w->dags_gen, 1);
    web__wake(r);
    return h_dag_get(r);
}

static int h_dag_delete(struct req *r)
{
    GET_STORE(r, st);
    int rc = STORE(r, store_dag_delete(st, r->args[0], &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    atomic_fetch_add(&r->w->dags_gen, 1);
    LOG_INFO("dag deleted dag=%s user=%s", r->args[0], r->user);
    return web__no_content(r);
}

/* The latest DAG doc of a DAG; new reference or NULL after responding. */
static json_t *load_doc(struct req *r, struct store *st, const char *dag_id, int64_t version)
{
    struct weir_err err = { 0 };
    struct store_dag d = { 0 };
    if (version <= 0) {
        if (need_dag(r, st, dag_id, &d) < 0)
            return NULL;
        version = d.version;
        store_dag_release(&d);
    }
    char *text = NULL;
    int rc = STORE(r, store_dag_version_get(st, dag_id, version, &text, &err));
    if (rc < 0) {
        web__fail(r, rc, &err);
        return NULL;
    }
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(doc)) {
        json_decref(doc);
        web__problem(r, WEIR_EINTERNAL, "stored DAG '%s' version %lld is not a JSON object", dag_id,
                     (long long)version);
        return NULL;
    }
    return doc;
}

static json_t *time_delta(json_t *seconds)
{
    if (!json_is_number(seconds))
        return json_null();
    double s = json_number_value(seconds);
    long long whole = (long long)s;
    json_t *o = json_object();
    json_object_set_new(o, "__type", json_string("TimeDelta"));
    json_object_set_new(o, "days", json_integer(whole / 86400));
    json_object_set_new(o, "seconds", json_integer(whole % 86400));
    json_object_set_new(o, "microseconds", json_integer((json_int_t)((s - (double)whole) * 1e6)));
    return o;
}

static json_t *task_json(json_t *t)
{
    json_t *o = json_object();
    json_object_set(o, "task_id", json_object_get(t, "task_id"));
    json_object_set(o, "task_display_name", json_object_get(t, "task_id"));
    json_object_set(o, "operator_name", json_object_get(t, "run"));
    json_object_set_new(
        o, "class_ref",
        json_pack("{s:s,s:O}", "module_path", "weir", "class_name", json_object_get(t, "run")));
    json_object_set(o, "downstream_task_ids", json_object_get(t, "downstream"));
    json_object_set(o, "upstream_task_ids", json_object_get(t, "needs"));
    json_object_set(o, "trigger_rule", json_object_get(t, "trigger_rule"));
    json_object_set(o, "retries", json_object_get(t, "retries"));
    json_object_set_new(o, "retry_delay", time_delta(json_object_get(t, "retry_delay")));
    json_object_set(o, "retry_exponential_backoff",
                    json_object_get(t, "retry_exponential_backoff"));
    json_object_set_new(o, "execution_timeout", time_delta(json_object_get(t, "timeout")));
    json_object_set(o, "pool", json_object_get(t, "pool"));
    json_object_set_new(o, "pool_slots", json_integer(1));
    json_object_set(o, "doc_md", json_object_get(t, "doc"));
    json_object_set(o, "description", json_object_get(t, "description"));
    json_object_set_new(o, "is_mapped", json_false());
    json_object_set_new(o, "depends_on_past", json_false());
    json_object_set_new(o, "wait_for_downstream", json_false());
    json_object_set_new(o, "owner", json_string("weir"));
    json_object_set(o, "params", json_object_get(t, "with"));
    return o;
}

static int h_dag_tasks(struct req *r)
{
    GET_STORE(r, st);
    json_t *doc = load_doc(r, st, r->args[0], 0);
    if (!doc)
        return -1;
    json_t *arr = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tasks"), i, t)
        json_array_append_new(arr, task_json(t));
    json_decref(doc);
    return web__json(r, 200, collection("tasks", arr, json_array_size(arr)));
}

static int h_dag_task(struct req *r)
{
    GET_STORE(r, st);
    json_t *doc = load_doc(r, st, r->args[0], 0);
    if (!doc)
        return -1;
    json_t *t = sched_doc_task(doc, r->args[1]);
    if (!t) {
        json_decref(doc);
        return web__problem(r, WEIR_ENOTFOUND, "task '%s' not found in DAG '%s'", r->args[1],
                            r->args[0]);
    }
    json_t *o = task_json(t);
    json_decref(doc);
    return web__json(r, 200, o);
}

static int h_dag_details(struct req *r)
{
    GET_STORE(r, st);
    struct store_dag d = { 0 };
    if (need_dag(r, st, r->args[0], &d) < 0)
        return -1;
    json_t *doc = load_doc(r, st, r->args[0], d.version);
    if (!doc) {
        store_dag_release(&d);
        return -1;
    }
    json_t *o = store_dag_to_json(&d);
    store_dag_release(&d);
    static const char *const copy[] = { "catchup",    "max_active_runs", "max_active_tasks",
                                        "start_date", "end_date",        NULL };
    for (size_t i = 0; copy[i]; i++)
        json_object_set(o, copy[i], json_object_get(doc, copy[i]));
    /* Airflow's params: name -> {"__class", "value", "description", "schema"} */
    json_t *params = json_object();
    const char *k;
    json_t *p;
    json_object_foreach(json_object_get(doc, "params"), k, p) {
        json_t *schema = json_object();
        json_object_set(schema, "type", json_object_get(p, "type"));
        json_object_set_new(
            params, k,
            json_pack("{s:s,s:O,s:O,s:o}", "__class", "airflow.models.param.Param", "value",
                      json_object_get(p, "default") ? json_object_get(p, "default") : json_null(),
                      "description",
                      json_object_get(p, "description") ? json_object_get(p, "description")
                                                        : json_null(),
                      "schema", schema));
    }
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "doc_md", json_null());
    json_object_set_new(o, "dag_run_timeout", json_null());
    json_object_set_new(o, "render_template_as_native_obj", json_false());
    json_decref(doc);
    return web__json(r, 200, o);
}

/* The DAG file (text/plain, or {"content": ...} for Accept: application/json). Only files
 * inside the DAG folder are read, so a stored fileloc cannot point the server elsewhere. */
static int h_dag_source(struct req *r)
{
    GET_STORE(r, st);
    struct store_dag d = { 0 };
    if (need_dag(r, st, r->args[0], &d) < 0)
        return -1;
    char real[PATH_MAX], folder[PATH_MAX];
    bool inside = false;
    if (r->w->dags_folder && realpath(r->w->dags_folder, folder) && d.fileloc &&
        realpath(d.fileloc, real)) {
        size_t n = strlen(folder);
        inside = strncmp(real, folder, n) == 0 && real[n] == '/';
    }
    store_dag_release(&d);
    if (!inside)
        return web__problem(r, WEIR_ENOTFOUND, "the file of DAG '%s' is not available here",
                            r->args[0]);
    FILE *f = fopen(real, "rb");
    if (!f)
        return web__problem(r, WEIR_ENOTFOUND, "the file of DAG '%s' cannot be read", r->args[0]);
    struct buf b;
    buf_init(&b, SOURCE_MAX);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = buf_add(&b, chunk, n);
    fclose(f);
    if (rc < 0) {
        buf_release(&b);
        return web__problem(r, WEIR_ETOOBIG, "the file of DAG '%s' is too large", r->args[0]);
    }
    const char *accept = web__header(r, "Accept");
    if (accept && strstr(accept, "application/json")) {
        json_t *o = json_object();
        json_t *c = json_stringn(b.s, b.len);
        json_object_set_new(o, "content", c ? c : json_string(""));
        buf_release(&b);
        return web__json(r, 200, o);
    }
    const char *h[] = { "Cache-Control", "no-store", NULL };
    rc = web__send(r, 200, "text/plain; charset=utf-8", b.s, b.len, h);
    buf_release(&b);
    return rc;
}

/* ---- DAG runs ---------------------------------------------------------------------------------
 */

static int states_mask(struct req *r, json_t *states, bool runs, int *mask)
{
    size_t i;
    json_t *v;
    *mask = 0;
    json_array_foreach(states, i, v) {
        const char *s = json_string_value(v);
        if (runs) {
            enum store_run_state st;
            if (store_run_state_parse(s, &st) < 0)
                return web__problem(r, WEIR_EINVAL, "unknown run state '%.40s'", s);
            *mask |= 1 << st;
        } else {
            enum store_ti_state st;
            if (strcmp(s, "none") == 0 || strcmp(s, "null") == 0)
                st = TI_NONE;
            else if (store_ti_state_parse(s, &st) < 0)
                return web__problem(r, WEIR_EINVAL, "unknown task instance state '%.40s'", s);
            *mask |= 1 << st;
        }
    }
    return 0;
}

static int h_runs_list(struct req *r)
{
    GET_STORE(r, st);
    struct store_run_filter f;
    store_run_filter_init(&f);
    if (web__page_params(r, &f.limit, &f.offset) < 0)
        return -1;
    if (!is_wild(r->args[0])) {
        struct store_dag d = { 0 };
        if (need_dag(r, st, r->args[0], &d) < 0)
            return -1;
        store_dag_release(&d);
        f.dag_id = r->args[0];
    }
    json_t *states = q_multi(r, "state");
    int rc = states_mask(r, states, true, &f.state_mask);
    json_decref(states);
    if (rc < 0)
        return -1;
    int64_t t;
    if (q_time(r, "execution_date_gte", &f.logical_date_gte) < 0 ||
        q_time(r, "execution_date_lte", &f.logical_date_lte) < 0)
        return -1;
    if (q_time(r, "logical_date_gte", &t) < 0)
        return -1;
    if (t != TS_NONE)
        f.logical_date_gte = t;
    if (q_time(r, "logical_date_lte", &t) < 0)
        return -1;
    if (t != TS_NONE)
        f.logical_date_lte = t;
    const char *order = web__query(r, "order_by");
    if (order) {
        static const char *const ok[][2] = {
            { "execution_date", "logical_date" },
            { "-execution_date", "-logical_date" },
            { "logical_date", "logical_date" },
            { "-logical_date", "-logical_date" },
            { "start_date", "start_date" },
            { "-start_date", "-start_date" },
            { "id", "id" },
            { "-id", "-id" },
        };
        f.order_by = NULL;
        for (size_t i = 0; i < WEIR_ARRAY_LEN(ok); i++)
            if (strcmp(order, ok[i][0]) == 0)
                f.order_by = ok[i][1];
        if (!f.order_by)
            return web__problem(r, WEIR_EINVAL, "order_by '%.60s' is not supported", order);
    }
    struct store_run_list l = { 0 };
    rc = STORE(r, store_run_list(st, &f, &l, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, store_run_to_json(&l.items[i]));
    size_t total = l.total;
    store_run_list_release(&l);
    return web__json(r, 200, collection("dag_runs", arr, total));
}

static int body_time(struct req *r, json_t *body, const char *key, int64_t *out)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    struct weir_err err = { 0 };
    if (!json_is_string(v) || ts_parse(json_string_value(v), NULL, out, &err) < 0)
        return web__problem(r, WEIR_EINVAL, "%s must be an RFC 3339 date-time", key);
    return 0;
}

static int h_run_trigger(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = {
        "dag_run_id", "logical_date",        "execution_date",    "conf",
        "note",       "data_interval_start", "data_interval_end", NULL
    };
    int rc = web__check_keys(r, body, keys);
    json_t *rid = json_object_get(body, "dag_run_id");
    json_t *conf = json_object_get(body, "conf");
    json_t *note = json_object_get(body, "note");
    int64_t ld = TS_NONE;
    if (rc == 0 && rid && !json_is_null(rid) &&
        (!json_is_string(rid) || !web__valid_id(json_string_value(rid))))
        rc = web__problem(r, WEIR_EINVAL,
                          "dag_run_id must be 1 to 250 characters of [A-Za-z0-9_.~:+-]");
    if (rc == 0 && conf && !json_is_null(conf) && !json_is_object(conf))
        rc = web__problem(r, WEIR_EINVAL, "conf must be a JSON object");
    if (rc == 0 && note && !json_is_null(note) && !json_is_string(note))
        rc = web__problem(r, WEIR_EINVAL, "note must be a string");
    if (rc == 0)
        rc = body_time(r, body, "execution_date", &ld);
    if (rc == 0)
        rc = body_time(r, body, "logical_date", &ld);
    if (rc == 0 && !is_wild(r->args[0])) {
        struct store_run run = { 0 };
        rc = STORE(r, sched_trigger(st, r->args[0], json_string_value(rid), ld,
                                    json_is_object(conf) ? conf : NULL, json_string_value(note),
                                    &run, &err));
        if (rc < 0) {
            rc = web__fail(r, rc, &err);
        } else {
            LOG_INFO("run triggered dag=%s run=%s user=%s", run.dag_id, run.run_id, r->user);
            web__wake(r);
            rc = web__json(r, 200, store_run_to_json(&run));
        }
        store_run_release(&run);
    } else if (rc == 0) {
        rc = web__problem(r, WEIR_EINVAL, "'~' is not allowed here");
    }
    json_decref(body);
    return rc;
}

static int get_run(struct req *r, struct store *st, struct store_run *run)
{
    struct weir_err err = { 0 };
    if (is_wild(r->args[0]) || is_wild(r->args[1]))
        return web__problem(r, WEIR_EINVAL, "'~' is not allowed here");
    int rc = STORE(r, store_run_get(st, r->args[0], r->args[1], run, &err));
    return rc < 0 ? web__fail(r, rc, &err) : 0;
}

static int h_run_get(struct req *r)
{
    GET_STORE(r, st);
    struct store_run run = { 0 };
    if (get_run(r, st, &run) < 0)
        return -1;
    json_t *o = store_run_to_json(&run);
    store_run_release(&run);
    return web__json(r, 200, o);
}

/* Marks a run success or failed as Airflow does: every unfinished task instance takes the
 * state too; or (queued) clears every task instance so the run starts over. */
static int set_run_state(struct req *r, struct store *st, const char *state, struct weir_err *err)
{
    const char *dag = r->args[0], *rid = r->args[1];
    enum store_run_state to;
    if (store_run_state_parse(state, &to) < 0 || to == RUN_RUNNING)
        return err_set(err, WEIR_EINVAL, "state '%s': must be success, failed or queued", state);
    struct store_ti_list l = { 0 };
    int rc = STORE(r, store_ti_list_run(st, dag, rid, &l, err));
    if (rc < 0)
        return rc;
    if (to == RUN_QUEUED) {
        for (size_t i = 0; i < l.n && rc >= 0; i++)
            rc = STORE(r, sched_clear(st, dag, rid, l.items[i].task_id, false, NULL, err));
    } else {
        int64_t now = ts_now_us();
        rc = store_begin(st, err);
        for (size_t i = 0; i < l.n && rc >= 0; i++) {
            const struct store_ti *t = &l.items[i];
            if (store_ti_state_finished(t->state))
                continue;
            struct store_ti_update u = { .to = to == RUN_SUCCESS ? TI_SUCCESS : TI_FAILED };
            u.set_end_date = true;
            u.end_date = now;
            rc = STORE(r, store_ti_update(st, dag, rid, t->task_id, (int)t->state, -1, &u, err));
        }
        if (rc >= 0)
            rc = STORE(r, store_run_set_state(st, dag, rid, -1, to, TS_NONE, now, err));
        if (rc >= 0)
            rc = store_commit(st, err);
        else
            store_rollback(st);
    }
    store_ti_list_release(&l);
    return rc < 0 ? rc : 0;
}

static int h_run_patch(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "state", NULL };
    struct store_run run = { 0 };
    int rc = web__check_keys(r, body, keys);
    const char *state = json_string_value(json_object_get(body, "state"));
    if (rc == 0 && !state)
        rc = web__problem(r, WEIR_EINVAL, "state is required (success, failed or queued)");
    if (rc == 0)
        rc = get_run(r, st, &run);
    if (rc == 0) {
        rc = set_run_state(r, st, state, &err);
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    if (rc == 0)
        LOG_INFO("run state set dag=%s run=%s state=%s user=%s", r->args[0], r->args[1], state,
                 r->user);
    store_run_release(&run);
    json_decref(body); /* `state` pointed into it */
    if (rc < 0)
        return rc;
    web__wake(r);
    return h_run_get(r);
}

static int h_run_note(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "note", NULL };
    int rc = web__check_keys(r, body, keys);
    json_t *note = json_object_get(body, "note");
    if (rc == 0 && !json_is_string(note) && !json_is_null(note))
        rc = web__problem(r, WEIR_EINVAL, "note must be a string or null");
    if (rc == 0 && (is_wild(r->args[0]) || is_wild(r->args[1])))
        rc = web__problem(r, WEIR_EINVAL, "'~' is not allowed here");
    if (rc == 0) {
        rc =
            STORE(r, store_run_set_note(st, r->args[0], r->args[1], json_string_value(note), &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    json_decref(body);
    return rc < 0 ? rc : h_run_get(r);
}

static int h_run_delete(struct req *r)
{
    GET_STORE(r, st);
    struct store_run run = { 0 };
    if (get_run(r, st, &run) < 0)
        return -1;
    store_run_release(&run);
    int rc = STORE(r, store_run_delete(st, r->args[0], r->args[1], &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    LOG_INFO("run deleted dag=%s run=%s user=%s", r->args[0], r->args[1], r->user);
    web__wake(r);
    return web__no_content(r);
}

/* ---- task instances ----------------------------------------------------------------------------
 */

static int h_tis_list(struct req *r)
{
    GET_STORE(r, st);
    struct store_ti_filter f = { 0 };
    if (web__page_params(r, &f.limit, &f.offset) < 0)
        return -1;
    f.dag_id = is_wild(r->args[0]) ? NULL : r->args[0];
    f.run_id = is_wild(r->args[1]) ? NULL : r->args[1];
    if (f.dag_id && f.run_id) {
        struct store_run run = { 0 };
        if (get_run(r, st, &run) < 0)
            return -1;
        store_run_release(&run);
    }
    json_t *states = q_multi(r, "state");
    int rc = states_mask(r, states, false, &f.state_mask);
    json_decref(states);
    if (rc < 0)
        return -1;
    struct store_ti_list l = { 0 };
    rc = STORE(r, store_ti_list(st, &f, &l, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, store_ti_to_json(&l.items[i]));
    size_t total = l.total;
    store_ti_list_release(&l);
    return web__json(r, 200, collection("task_instances", arr, total));
}

static int get_ti(struct req *r, struct store *st, struct store_ti *t)
{
    struct weir_err err = { 0 };
    if (is_wild(r->args[0]) || is_wild(r->args[1]) || is_wild(r->args[2]))
        return web__problem(r, WEIR_EINVAL, "'~' is not allowed here");
    int rc = STORE(r, store_ti_get(st, r->args[0], r->args[1], r->args[2], t, &err));
    return rc < 0 ? web__fail(r, rc, &err) : 0;
}

static int h_ti_get(struct req *r)
{
    GET_STORE(r, st);
    struct store_ti t = { 0 };
    if (get_ti(r, st, &t) < 0)
        return -1;
    json_t *o = store_ti_to_json(&t);
    store_ti_release(&t);
    return web__json(r, 200, o);
}

static json_t *ti_ref(struct store *st, const char *dag, const char *run_id, const char *task)
{
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", json_string(dag));
    json_object_set_new(o, "dag_run_id", json_string(run_id));
    json_object_set_new(o, "task_id", json_string(task));
    struct store_run run = { 0 };
    json_t *ld = json_null();
    if (store_run_get(st, dag, run_id, &run, NULL) == 0) {
        json_t *rj = store_run_to_json(&run);
        ld = json_incref(json_object_get(rj, "logical_date"));
        json_decref(rj);
        store_run_release(&run);
    }
    json_object_set_new(o, "execution_date", ld);
    return o;
}

static int h_ti_patch(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = { "dry_run", "new_state", "note", NULL };
    int rc = web__check_keys(r, body, keys);
    json_t *dry = json_object_get(body, "dry_run");
    const char *state = json_string_value(json_object_get(body, "new_state"));
    json_t *note = json_object_get(body, "note");
    if (rc == 0 && dry && !json_is_boolean(dry))
        rc = web__problem(r, WEIR_EINVAL, "dry_run must be a boolean");
    if (rc == 0 && !state && !note)
        rc = web__problem(r, WEIR_EINVAL, "new_state (success, failed or skipped) is required");
    if (rc == 0 && note && !json_is_string(note) && !json_is_null(note))
        rc = web__problem(r, WEIR_EINVAL, "note must be a string or null");
    struct store_ti t = { 0 };
    if (rc == 0)
        rc = get_ti(r, st, &t);
    if (rc == 0 && state && strcmp(state, "success") != 0 && strcmp(state, "failed") != 0 &&
        strcmp(state, "skipped") != 0)
        rc = web__problem(r, WEIR_EINVAL, "new_state '%.40s': must be success, failed or skipped",
                          state);
    if (rc == 0 && !json_is_true(dry)) {
        if (state)
            rc = STORE(r, sched_mark(st, r->args[0], r->args[1], r->args[2], state, &err));
        if (rc == 0 && note) {
            struct store_ti cur = { 0 };
            rc = STORE(r, store_ti_get(st, r->args[0], r->args[1], r->args[2], &cur, &err));
            if (rc == 0) {
                struct store_ti_update u = { .to = cur.state,
                                             .set_note = true,
                                             .note = json_string_value(note) };
                rc = STORE(r, store_ti_update(st, r->args[0], r->args[1], r->args[2],
                                              (int)cur.state, cur.try_number, &u, &err));
            }
            store_ti_release(&cur);
        }
        if (rc < 0)
            rc = web__fail(r, rc, &err);
        else {
            LOG_INFO("task instance changed dag=%s run=%s task=%s state=%s user=%s", r->args[0],
                     r->args[1], r->args[2], state ? state : "-", r->user);
            web__wake(r);
        }
    }
    store_ti_release(&t);
    json_decref(body);
    if (rc < 0)
        return rc;
    return web__json(r, 200, ti_ref(st, r->args[0], r->args[1], r->args[2]));
}

/* POST /dags/{dag_id}/clearTaskInstances (Airflow's ClearTaskInstances; dry_run defaults
 * to true as in Airflow). */
static void add_closure(json_t *doc, const char *task, const char *key, json_t *set)
{
    if (json_object_get(set, task))
        return;
    json_object_set_new(set, task, json_true());
    json_t *t = sched_doc_task(doc, task);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(t, key), i, v)
        add_closure(doc, json_string_value(v), key, set);
}

static int h_clear(struct req *r)
{
    GET_STORE(r, st);
    json_t *body = NULL;
    if (web__body_object(r, &body) < 0)
        return -1;
    static const char *const keys[] = {
        "dry_run",         "task_ids",          "start_date",
        "end_date",        "only_failed",       "only_running",
        "include_subdags", "include_parentdag", "reset_dag_runs",
        "dag_run_id",      "include_upstream",  "include_downstream",
        "include_future",  "include_past",      NULL
    };
    int rc = web__check_keys(r, body, keys);
    static const char *const bools[] = { "dry_run",
                                         "only_failed",
                                         "only_running",
                                         "include_subdags",
                                         "include_parentdag",
                                         "reset_dag_runs",
                                         "include_upstream",
                                         "include_downstream",
                                         "include_future",
                                         "include_past",
                                         NULL };
    for (size_t i = 0; rc == 0 && bools[i]; i++) {
        json_t *v = json_object_get(body, bools[i]);
        if (v && !json_is_boolean(v))
            rc = web__problem(r, WEIR_EINVAL, "%s must be a boolean", bools[i]);
    }
    json_t *task_ids = json_object_get(body, "task_ids");
    json_t *run_id = json_object_get(body, "dag_run_id");
    if (rc == 0 && task_ids && !json_is_array(task_ids))
        rc = web__problem(r, WEIR_EINVAL, "task_ids must be an array of strings");
    if (rc == 0 && run_id && !json_is_null(run_id) && !json_is_string(run_id))
        rc = web__problem(r, WEIR_EINVAL, "dag_run_id must be a string");
    int64_t from = TS_NONE, to = TS_NONE;
    if (rc == 0)
        rc = body_time(r, body, "start_date", &from);
    if (rc == 0)
        rc = body_time(r, body, "end_date", &to);
    json_t *dry = json_object_get(body, "dry_run");
    bool dry_run = !dry || json_is_true(dry);
    bool only_failed = json_is_true(json_object_get(body, "only_failed"));
    bool only_running = json_is_true(json_object_get(body, "only_running"));
    bool down = json_is_true(json_object_get(body, "include_downstream"));
    bool up = json_is_true(json_object_get(body, "include_upstream"));

    struct store_run_list runs = { 0 };
    struct store_dag d = { 0 };
    if (rc == 0 && need_dag(r, st, r->args[0], &d) < 0)
        rc = -1;
    store_dag_release(&d);
    if (rc == 0 && json_is_string(run_id)) {
        runs.items = xcalloc(1, sizeof(*runs.items));
        rc = STORE(r,
                   store_run_get(st, r->args[0], json_string_value(run_id), &runs.items[0], &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
        else
            runs.n = 1;
    } else if (rc == 0) {
        struct store_run_filter f;
        store_run_filter_init(&f);
        f.dag_id = r->args[0];
        f.logical_date_gte = from;
        f.logical_date_lte = to;
        rc = STORE(r, store_run_list(st, &f, &runs, &err));
        if (rc < 0)
            rc = web__fail(r, rc, &err);
    }
    json_t *out = json_array();
    for (size_t i = 0; rc == 0 && i < runs.n; i++) {
        const struct store_run *run = &runs.items[i];
        json_t *doc = load_doc(r, st, run->dag_id, run->version);
        if (!doc) {
            rc = -1;
            break;
        }
        struct store_ti_list tis = { 0 };
        rc = STORE(r, store_ti_list_run(st, run->dag_id, run->run_id, &tis, &err));
        if (rc < 0) {
            json_decref(doc);
            rc = web__fail(r, rc, &err);
            break;
        }
        /* the selected task instances, then their closure over the graph */
        json_t *set = json_object();
        for (size_t k = 0; k < tis.n; k++) {
            const struct store_ti *t = &tis.items[k];
            bool pick = !task_ids;
            size_t j;
            json_t *v;
            json_array_foreach(task_ids, j, v)
                if (json_is_string(v) && strcmp(json_string_value(v), t->task_id) == 0)
                    pick = true;
            if (only_failed && t->state != TI_FAILED && t->state != TI_UPSTREAM_FAILED)
                pick = false;
            if (only_running && t->state != TI_RUNNING)
                pick = false;
            if (!pick)
                continue;
            if (down)
                add_closure(doc, t->task_id, "downstream", set);
            if (up) {
                json_object_del(set, t->task_id);
                add_closure(doc, t->task_id, "needs", set);
            }
            json_object_set_new(set, t->task_id, json_true());
        }
        for (size_t k = 0; rc == 0 && k < tis.n; k++) {
            const struct store_ti *t = &tis.items[k];
            if (!json_object_get(set, t->task_id))
                continue;
            if (!dry_run) {
                rc = STORE(
                    r, sched_clear(st, run->dag_id, run->run_id, t->task_id, false, NULL, &err));
                if (rc < 0) {
                    rc = web__fail(r, rc, &err);
                    break;
                }
            }
            json_array_append_new(out, ti_ref(st, run->dag_id, run->run_id, t->task_id));
        }
        json_decref(set);
        json_decref(doc);
        store_ti_list_release(&tis);
    }
    store_run_list_release(&runs);
    json_decref(body);
    if (rc < 0) {
        json_decref(out);
        return rc;
    }
    if (!dry_run && json_array_size(out)) {
        LOG_INFO("task instances cleared dag=%s count=%zu user=%s", r->args[0],
                 json_array_size(out), r->user);
        web__wake(r);
    }
    json_t *o = json_object();
    json_object_set_new(o, "task_instances", out);
    return web__json(r, 200, o);
}

/* ---- logs ---------------------------------------------------------------------------------------
 */

/* GET .../logs/{try}?token=T&full_content=B. The continuation token is the sequence number
 * of the last line sent (opaque to clients); the next call with it returns only newer
 * lines. end_of_log tells a live tail to stop: the try is over and every line was sent. */
static int h_logs(struct req *r)
{
    GET_STORE(r, st);
    char *end = NULL;
    errno = 0;
    long long tn = strtoll(r->args[3], &end, 10);
    if (errno || *end || tn < 1 || tn > INT_MAX)
        return web__problem(r, WEIR_EINVAL, "task try number '%.20s' must be a positive integer",
                            r->args[3]);
    int64_t after = 0;
    const char *tok = web__query(r, "token");
    if (tok && *tok) {
        errno = 0;
        after = strtoll(tok, &end, 10);
        if (errno || *end || after < 0)
            return web__problem(r, WEIR_EINVAL, "continuation token '%.40s' is not valid", tok);
    }
    int full = 0;
    if (q_bool(r, "full_content", 0, &full) < 0)
        return -1;
    struct store_ti t = { 0 };
    if (get_ti(r, st, &t) < 0)
        return -1;
    if (tn > t.try_number && !(tn == 1 && t.try_number == 0)) {
        store_ti_release(&t);
        return web__problem(r, WEIR_ENOTFOUND, "try %lld of task '%s' has not started", tn,
                            r->args[2]);
    }
    bool finished =
        tn < t.try_number ||
        (tn == t.try_number && (store_ti_state_finished(t.state) || t.state == TI_UP_FOR_RETRY));
    store_ti_release(&t);
    struct store_log_list l = { 0 };
    size_t limit = full ? 0 : LOG_PAGE_LINES;
    int rc = STORE(
        r, store_log_read(st, r->args[0], r->args[1], r->args[2], (int)tn, after, limit, &l, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    struct buf b;
    buf_init(&b, 0);
    int64_t last = after;
    for (size_t i = 0; i < l.n; i++) {
        char ts[48];
        ts_format(l.items[i].ts, TS_FMT_OFFSET, ts, sizeof ts);
        buf_addf(&b, "[%s] %s\n", ts, l.items[i].line);
        last = l.items[i].seq;
    }
    bool more = limit && l.n == limit;
    store_log_list_release(&l);
    const char *accept = web__header(r, "Accept");
    if (accept && strstr(accept, "text/plain") && !strstr(accept, "application/json")) {
        const char *h[] = { "Cache-Control", "no-store", NULL };
        rc = web__send(r, 200, "text/plain; charset=utf-8", b.s, b.len, h);
        buf_release(&b);
        return rc;
    }
    char token[32];
    snprintf(token, sizeof token, "%lld", (long long)last);
    json_t *o = json_object();
    json_t *content = json_stringn(b.s, b.len);
    json_object_set_new(o, "content", content ? content : json_string(""));
    json_object_set_new(o, "continuation_token", json_string(token));
    json_object_set_new(o, "end_of_log", json_boolean(finished && !more));
    buf_release(&b);
    return web__json(r, 200, o);
}

/* ---- XCom ---------------------------------------------------------------------------------------
 */

static json_t *xcom_value_text(json_t *v)
{
    if (json_is_string(v))
        return json_incref(v);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *o = json_string(s ? s : "null");
    free(s);
    return o;
}

static int h_xcom_list(struct req *r)
{
    GET_STORE(r, st);
    size_t limit, offset;
    if (web__page_params(r, &limit, &offset) < 0)
        return -1;
    struct store_ti t = { 0 };
    if (get_ti(r, st, &t) < 0)
        return -1;
    store_ti_release(&t);
    json_t *arr = NULL;
    int rc = STORE(r, store_xcom_list(st, r->args[0], r->args[1], r->args[2], &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        json_object_set(x, "execution_date", json_object_get(x, "timestamp"));
        json_object_set_new(x, "map_index", json_integer(-1));
        json_object_set_new(x, "value", xcom_value_text(json_object_get(x, "value")));
    }
    return web__json(r, 200, web__page_of("xcom_entries", arr, limit, offset));
}

static int h_xcom_get(struct req *r)
{
    GET_STORE(r, st);
    json_t *arr = NULL;
    int rc = STORE(r, store_xcom_list(st, r->args[0], r->args[1], r->args[2], &arr, &err));
    if (rc < 0)
        return web__fail(r, rc, &err);
    size_t i;
    json_t *x, *found = NULL;
    json_array_foreach(arr, i, x) {
        if (strcmp(json_string_value(json_object_get(x, "key")), r->args[3]) == 0)
            found = json_incref(x);
    }
    json_decref(arr);
    if (!found)
        return web__problem(r, WEIR_ENOTFOUND, "XCom '%s' of task '%s' not found", r->args[3],
                            r->args[2]);
    json_object_set(found, "execution_date", json_object_get(found, "timestamp"));
    json_object_set_new(found, "map_index", json_integer(-1));
    int deser = 0;
    if (q_bool(r, "deserialize", 0, &deser) < 0) {
        json_decref(found);
        return -1;
    }
    if (!deser)
        json_object_set_new(found, "value", xcom_value_text(json_object_get(found, "value")));
    return web__json(r, 200, found);
}

/* ---- the route table
 * ------------------------------------------------------------------------------ */

const struct web_route web__routes[] = {
    { "GET", "version", PERM_READ, web__h_version },
    { "GET", "dags", PERM_READ, h_dags_list },
    { "GET", "dags/*", PERM_READ, h_dag_get },
    { "PATCH", "dags/*", PERM_EDIT, h_dag_patch },
    { "DELETE", "dags/*", PERM_EDIT, h_dag_delete },
    { "GET", "dags/*/details", PERM_READ, h_dag_details },
    { "GET", "dags/*/tasks", PERM_READ, h_dag_tasks },
    { "GET", "dags/*/tasks/*", PERM_READ, h_dag_task },
    { "GET", "dags/*/source", PERM_READ, h_dag_source },
    { "POST", "dags/*/clearTaskInstances", PERM_EDIT, h_clear },
    { "GET", "dags/*/dagRuns", PERM_READ, h_runs_list },
    { "POST", "dags/*/dagRuns", PERM_EDIT, h_run_trigger },
    { "GET", "dags/*/dagRuns/*", PERM_READ, h_run_get },
    { "PATCH", "dags/*/dagRuns/*", PERM_EDIT, h_run_patch },
    { "DELETE", "dags/*/dagRuns/*", PERM_EDIT, h_run_delete },
    { "PATCH", "dags/*/dagRuns/*/setNote", PERM_EDIT, h_run_note },
    { "GET", "dags/*/dagRuns/*/taskInstances", PERM_READ, h_tis_list },
    { "GET", "dags/*/dagRuns/*/taskInstances/*", PERM_READ, h_ti_get },
    { "PATCH", "dags/*/dagRuns/*/taskInstances/*", PERM_EDIT, h_ti_patch },
    { "GET", "dags/*/dagRuns/*/taskInstances/*/logs/*", PERM_READ, h_logs },
    { "GET", "dags/*/dagRuns/*/taskInstances/*/xcomEntries", PERM_READ, h_xcom_list },
    { "GET", "dags/*/dagRuns/*/taskInstances/*/xcomEntries/*", PERM_READ, h_xcom_get },
    { "GET", "importErrors", PERM_READ, web__h_import_errors },
    { "GET", "variables", PERM_READ, web__h_variables_list },
    { "POST", "variables", PERM_EDIT, web__h_variable_post },
    { "GET", "variables/*", PERM_READ, web__h_variable_get },
    { "PATCH", "variables/*", PERM_EDIT, web__h_variable_patch },
    { "DELETE", "variables/*", PERM_EDIT, web__h_variable_delete },
    { "GET", "connections", PERM_READ, web__h_connections_list },
    { "POST", "connections", PERM_EDIT, web__h_connection_post },
    { "GET", "connections/*", PERM_READ, web__h_connection_get },
    { "PATCH", "connections/*", PERM_EDIT, web__h_connection_patch },
    { "DELETE", "connections/*", PERM_EDIT, web__h_connection_delete },
    { "GET", "pools", PERM_READ, web__h_pools_list },
    { "POST", "pools", PERM_EDIT, web__h_pool_post },
    { "GET", "pools/*", PERM_READ, web__h_pool_get },
    { "PATCH", "pools/*", PERM_EDIT, web__h_pool_patch },
    { "DELETE", "pools/*", PERM_EDIT, web__h_pool_delete },
    { "GET", "users", PERM_ADMIN, web__h_users_list },
    { "POST", "users", PERM_ADMIN, web__h_user_post },
    { "GET", "users/*", PERM_ADMIN, web__h_user_get },
    { "PATCH", "users/*", PERM_ADMIN, web__h_user_patch },
    { "DELETE", "users/*", PERM_ADMIN, web__h_user_delete },
};
const size_t web__nroutes = WEIR_ARRAY_LEN(web__routes);
