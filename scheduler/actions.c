/* scheduler/actions.c - operations on runs that the CLI and the REST API share: trigger,
 * backfill, clear, mark. Each is one store transaction; the scheduler learns about the
 * change through sched_wake or its sweep. */
#define LOG_MODULE "scheduler"
#include "scheduler/scheduler.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/cron.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "core/tz.h"
#include "scheduler/sched_int.h"
#include "store/store.h"

int sched__doc_load(struct store *st, const char *dag_id, int64_t version, json_t **doc,
                    struct weir_err *err)
{
    *doc = NULL;
    if (version <= 0) {
        struct store_dag d = {0};
        int rc = store_dag_get(st, dag_id, &d, err);
        if (rc < 0)
            return rc;
        version = d.version;
        store_dag_release(&d);
    }
    char *text = NULL;
    int rc = store_dag_version_get(st, dag_id, version, &text, err);
    if (rc < 0)
        return rc;
    json_error_t jerr;
    *doc = json_loads(text, 0, &jerr);
    free(text);
    if (!*doc)
        return err_set(err, WEIR_EINTERNAL, "dag '%s' version %lld: stored document is not JSON: %s",
                       dag_id, (long long)version, jerr.text);
    return 0;
}

bool sched__doc_cron(json_t *doc, struct cron *c, const struct tz **tz)
{
    const char *expr = json_string_value(json_object_get(doc, "schedule"));
    if (!expr)
        return false;
    if (cron_parse(expr, c, NULL) < 0)
        return false;
    const char *zone = json_string_value(json_object_get(doc, "timezone"));
    *tz = zone ? tz_get(zone, NULL) : NULL;
    if (!*tz)
        *tz = tz_utc();
    return true;
}

int64_t sched__doc_time(json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    int64_t t;
    if (!s || ts_parse(s, NULL, &t, NULL) < 0)
        return TS_NONE;
    return t;
}

json_t *sched__doc_task_ids(json_t *doc)
{
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tasks"), i, t)
        json_array_append(ids, json_object_get(t, "task_id"));
    return ids;
}

int64_t sched__retry_delay(json_t *task, int next_try)
{
    double delay = json_number_value(json_object_get(task, "retry_delay"));
    if (json_is_true(json_object_get(task, "retry_exponential_backoff"))) {
        int doublings = next_try - 2;
        if (doublings > 30)
            doublings = 30;
        delay *= pow(2.0, doublings > 0 ? doublings : 0);
    }
    json_t *cap = json_object_get(task, "max_retry_delay");
    if (json_is_number(cap) && delay > json_number_value(cap))
        delay = json_number_value(cap);
    if (delay < 0)
        delay = 0;
    return (int64_t)(delay * 1e6);
}

/* Merges `conf` over the defaults of the DAG's params and checks the declared types.
 * Returns a new object or NULL with err. */
static json_t *merge_params(json_t *doc, json_t *conf, struct weir_err *err)
{
    json_t *out = json_object();
    const char *name;
    json_t *p;
    json_object_foreach(json_object_get(doc, "params"), name, p) {
        json_t *def = json_object_get(p, "default");
        if (def)
            json_object_set(out, name, def);
    }
    if (!conf)
        return out;
    if (!json_is_object(conf)) {
        json_decref(out);
        err_set(err, WEIR_EINVAL, "conf must be a JSON object");
        return NULL;
    }
    json_t *v;
    json_object_foreach(conf, name, v) {
        json_t *spec = json_object_get(json_object_get(doc, "params"), name);
        const char *type = json_string_value(json_object_get(spec, "type"));
        bool ok = true;
        if (type && !json_is_null(v)) {
            if (strcmp(type, "string") == 0)
                ok = json_is_string(v);
            else if (strcmp(type, "integer") == 0)
                ok = json_is_integer(v);
            else if (strcmp(type, "number") == 0)
                ok = json_is_number(v);
            else if (strcmp(type, "boolean") == 0)
                ok = json_is_boolean(v);
            else if (strcmp(type, "object") == 0)
                ok = json_is_object(v);
            else if (strcmp(type, "array") == 0)
                ok = json_is_array(v);
        }
        if (!ok) {
            json_decref(out);
            err_set(err, WEIR_EINVAL, "conf: param '%s' must be of type %s", name, type);
            return NULL;
        }
        json_object_set(out, name, v);
    }
    return out;
}

int sched_trigger(struct store *st, const char *dag_id, const char *run_id, int64_t logical_date,
                  json_t *conf, const char *note, struct store_run *out, struct weir_err *err)
{
    struct store_dag d = {0};
    json_t *doc = NULL, *ids = NULL, *params = NULL;
    char rid[128];
    int rc = store_dag_get(st, dag_id, &d, err);
    if (rc < 0)
        goto out;
    rc = sched__doc_load(st, dag_id, d.version, &doc, err);
    if (rc < 0)
        goto out;
    params = merge_params(doc, conf, err);
    if (!params) {
        rc = -WEIR_EINVAL;
        goto out;
    }
    if (logical_date == TS_NONE)
        logical_date = ts_now_us();
    if (!run_id || !*run_id) {
        char t[48];
        snprintf(rid, sizeof rid, "manual__%s", ts_format(logical_date, TS_FMT_OFFSET, t, sizeof t));
        run_id = rid;
    } else {
        for (const char *p = run_id; *p; p++) {
            if (!(*p == '_' || *p == '-' || *p == '.' || *p == ':' || *p == '+' ||
                  (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
                rc = err_set(err, WEIR_EINVAL,
                             "run id '%s' may only contain letters, digits and _ - . : +", run_id);
                goto out;
            }
        }
        if (strlen(run_id) > 250) {
            rc = err_set(err, WEIR_EINVAL, "run id is longer than 250 characters");
            goto out;
        }
    }
    ids = sched__doc_task_ids(doc);
    struct store_run r = {0};
    r.dag_id = (char *)dag_id;
    r.run_id = (char *)run_id;
    r.version = d.version;
    r.state = RUN_QUEUED;
    r.run_type = RUN_TYPE_MANUAL;
    r.logical_date = logical_date;
    r.data_interval_start = logical_date;
    r.data_interval_end = logical_date;
    r.queued_at = ts_now_us();
    r.start_date = r.end_date = TS_NONE;
    r.conf = conf && json_is_object(conf) ? conf : NULL;
    r.note = (char *)note;
    rc = store_run_create(st, &r, ids, err);
    if (rc < 0)
        goto out;
    LOG_INFO("run triggered dag=%s run=%s", dag_id, run_id);
    if (out)
        rc = store_run_get(st, dag_id, run_id, out, err);
out:
    json_decref(params);
    json_decref(ids);
    json_decref(doc);
    store_dag_release(&d);
    return rc < 0 ? rc : 0;
}

int sched__create_cron_run(struct store *st, json_t *doc, int64_t version, int64_t t,
                           int run_type, json_t *conf, struct weir_err *err)
{
    struct cron c;
    const struct tz *tz;
    if (!sched__doc_cron(doc, &c, &tz))
        return err_set(err, WEIR_EINVAL, "dag '%s' has no schedule",
                       json_string_value(json_object_get(doc, "dag_id")));
    char ts[48], rid[96];
    ts_format(t, TS_FMT_OFFSET, ts, sizeof ts);
    snprintf(rid, sizeof rid, "%s__%s", store_run_type_name(run_type), ts);
    int64_t prev = cron_prev(&c, tz, t);
    json_t *ids = sched__doc_task_ids(doc);
    struct store_run r = {0};
    r.dag_id = (char *)json_string_value(json_object_get(doc, "dag_id"));
    r.run_id = rid;
    r.version = version;
    r.state = RUN_QUEUED;
    r.run_type = run_type;
    r.logical_date = t;
    r.data_interval_start = prev == INT64_MIN ? t : prev;
    r.data_interval_end = t;
    r.queued_at = ts_now_us();
    r.start_date = r.end_date = TS_NONE;
    r.conf = conf;
    int rc = store_run_create(st, &r, ids, err);
    json_decref(ids);
    if (rc == 0)
        LOG_INFO("run created dag=%s run=%s", r.dag_id, rid);
    return rc;
}

int sched_backfill(struct store *st, const char *dag_id, int64_t from, int64_t to, json_t *conf,
                   int *created, struct weir_err *err)
{
    json_t *doc = NULL;
    struct store_dag d = {0};
    int n = 0;
    if (created)
        *created = 0;
    if (from > to)
        return err_set(err, WEIR_EINVAL, "backfill: --from is after --to");
    int rc = store_dag_get(st, dag_id, &d, err);
    if (rc < 0)
        return rc;
    rc = sched__doc_load(st, dag_id, d.version, &doc, err);
    if (rc < 0)
        goto out;
    struct cron c;
    const struct tz *tz;
    if (!sched__doc_cron(doc, &c, &tz)) {
        rc = err_set(err, WEIR_EINVAL, "dag '%s' has no schedule to backfill", dag_id);
        goto out;
    }
    json_t *params = merge_params(doc, conf, err);
    if (!params) {
        rc = -WEIR_EINVAL;
        goto out;
    }
    for (int64_t t = cron_next(&c, tz, from - 1); t <= to && t != INT64_MAX;
         t = cron_next(&c, tz, t)) {
        if (n >= 100000) {
            rc = err_set(err, WEIR_ETOOBIG, "backfill: more than 100000 runs in the range");
            break;
        }
        struct weir_err e2;
        rc = sched__create_cron_run(st, doc, d.version, t, RUN_TYPE_BACKFILL,
                                    json_object_size(conf) ? conf : NULL, &e2);
        if (rc == -WEIR_ECONFLICT) {
            rc = 0;
            continue;
        }
        if (rc < 0) {
            if (err)
                *err = e2;
            break;
        }
        n++;
    }
    json_decref(params);
out:
    if (created)
        *created = n;
    json_decref(doc);
    store_dag_release(&d);
    return rc < 0 ? rc : 0;
}

/* Adds the ids of `task_id` and everything downstream of it (from the doc's "downstream"
 * lists) to `set` (an object used as a set). */
static void collect_downstream(json_t *doc, const char *task_id, json_t *set)
{
    if (json_object_get(set, task_id))
        return;
    json_object_set_new(set, task_id, json_true());
    json_t *t = sched_doc_task(doc, task_id);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(t, "downstream"), i, d)
        collect_downstream(doc, json_string_value(d), set);
}

int sched_clear(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                bool downstream, int *cleared, struct weir_err *err)
{
    struct store_run run = {0};
    json_t *doc = NULL, *set = json_object();
    int n = 0;
    int rc = store_run_get(st, dag_id, run_id, &run, err);
    if (rc < 0)
        goto out;
    rc = sched__doc_load(st, dag_id, run.version, &doc, err);
    if (rc < 0)
        goto out;
    if (!sched_doc_task(doc, task_id)) {
        rc = err_set(err, WEIR_ENOTFOUND, "task '%s' not found in dag '%s'", task_id, dag_id);
        goto out;
    }
    if (downstream)
        collect_downstream(doc, task_id, set);
    else
        json_object_set_new(set, task_id, json_true());
    rc = store_begin(st, err);
    if (rc < 0)
        goto out;
    const char *id;
    json_t *v;
    json_object_foreach(set, id, v) {
        struct store_ti ti = {0};
        rc = store_ti_get(st, dag_id, run_id, id, &ti, err);
        if (rc < 0)
            break;
        json_t *task = sched_doc_task(doc, id);
        int retries = (int)json_integer_value(json_object_get(task, "retries"));
        bool active = ti.state == TI_QUEUED || ti.state == TI_RUNNING;
        if (!active && ti.state != TI_NONE) {
            struct store_ti_update u = {.to = TI_NONE};
            u.set_max_tries = true;
            u.max_tries = ti.try_number + retries + 1;
            u.set_end_date = true;
            u.end_date = TS_NONE;
            u.set_start_date = true;
            u.start_date = TS_NONE;
            u.set_next_retry_at = true;
            u.next_retry_at = TS_NONE;
            rc = store_ti_update(st, dag_id, run_id, id, ti.state, ti.try_number, &u, err);
            if (rc == 0)
                n++;
        }
        store_ti_release(&ti);
        if (rc < 0)
            break;
    }
    if (rc == 0 && n > 0 && (run.state == RUN_SUCCESS || run.state == RUN_FAILED))
        rc = store_run_set_state(st, dag_id, run_id, run.state, RUN_QUEUED, TS_NONE, TS_NONE, err);
    if (rc == 0)
        rc = store_commit(st, err);
    else
        store_rollback(st);
    if (rc == 0)
        LOG_INFO("cleared dag=%s run=%s task=%s count=%d", dag_id, run_id, task_id, n);
out:
    if (cleared)
        *cleared = rc < 0 ? 0 : n;
    json_decref(set);
    json_decref(doc);
    store_run_release(&run);
    return rc < 0 ? rc : 0;
}

int sched_mark(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
               const char *state, struct weir_err *err)
{
    enum store_ti_state to;
    if (store_ti_state_parse(state, &to) < 0 || (to != TI_SUCCESS && to != TI_FAILED &&
                                                 to != TI_SKIPPED))
        return err_set(err, WEIR_EINVAL, "state '%s': can only mark success, failed or skipped",
                       state);
    struct store_ti ti = {0};
    int rc = store_ti_get(st, dag_id, run_id, task_id, &ti, err);
    if (rc < 0)
        return rc;
    struct store_ti_update u = {.to = to};
    u.set_end_date = true;
    u.end_date = ts_now_us();
    rc = store_ti_update(st, dag_id, run_id, task_id, ti.state, ti.try_number, &u, err);
    if (rc == 0) {
        struct store_run run = {0};
        /* A finished run whose task is marked again is re-evaluated by the scheduler. */
        if (store_run_get(st, dag_id, run_id, &run, NULL) == 0 &&
            (run.state == RUN_SUCCESS || run.state == RUN_FAILED))
            store_run_set_state(st, dag_id, run_id, run.state, RUN_RUNNING, TS_NONE, TS_NONE, NULL);
        store_run_release(&run);
    }
    store_ti_release(&ti);
    return rc;
}
