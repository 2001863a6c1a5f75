/* scheduler/sched.c - the scheduling loop: events in, store transitions out.
 *
 * The scheduler owns one libuv loop thread and reacts to events instead of re-scanning on
 * a fixed tick: a task process exited (sched_task_exited), something changed in the store
 * (sched_wake, e.g. a trigger from the API), a cron time came (cron timer), a retry came
 * due (retry timer), a DAG file changed (fs event). Each event marks the runs it concerns
 * "dirty"; a zero-delay work timer then processes just those runs. A slow sweep (safety
 * net) re-reads every active run and looks for zombies, so state written by processes we
 * did not start (after a restart, or by hand) is picked up too.
 *
 * Every transition is one compare-and-set in the store (store_ti_update with the expected
 * state and try number), so a crash at any point leaves a state the next start resumes
 * from, and a transition that lost a race is simply skipped.
 */
#define LOG_MODULE "scheduler"
#include "scheduler/scheduler.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cron.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "core/tz.h"
#include "scheduler/sched_int.h"
#include "store/store.h"

#define DOC_CACHE_MAX 256
#define SCHED_EXIT_NOT_CLAIMED 4 /* `weir tasks run`: the try is held by another process */
#define CRON_CREATE_MAX 1000 /* runs created per DAG per planning pass */
#define ADOPTED_SWEEP_US (1 * TS_US_PER_SEC)

/* The task instances of an active run as last read or written by this scheduler. An exit
 * refreshes just the task instance it concerns (the event's whole news); anything that
 * may have changed behind our back (a wake, the sweep, a retry) rereads the run. */
struct run_cache {
    struct run_cache *next;
    char *key;
    struct store_ti_list tis;
    struct store_ti **by_task; /* by_task[i]: the task instance of doc task i, or NULL */
    size_t ntasks;
};

struct sched {
    uv_loop_t *loop;
    struct store *st;
    struct sched_opts o;
    char *dags_folder, *only_dag;
    char hostname[256];

    uv_async_t wake;
    uv_timer_t work, cron, sweep, retry, debounce;
    uv_fs_event_t watch, wake_watch;
    bool watching;
    struct subwatch *subwatches; /* one per subfolder of the DAG folder */
    int nsubwatches;
    char *wake_file;
    int open_handles;
    bool closing;

    json_t *dirty;    /* "dag\x1frun" -> true: runs to process */
    json_t *waiting;  /* runs with scheduled tries that found no free slot */
    json_t *retries;  /* run key -> due time (us) of its earliest retry */
    json_t *docs;     /* "dag@version" -> DAG doc */
    json_t *doc_index; /* "dag@version" -> {task_id: index in doc tasks} */
    struct run_cache *cache;
    bool all_dirty, cron_dirty, folder_dirty;
    int adopted;      /* running tries we did not start (after a restart) */

    /* Counters for /metrics. */
    int64_t runs_started, runs_finished, tis_launched, loop_passes;
    int64_t last_pass_us;
};

/* ---- small helpers ------------------------------------------------------------------- */

static char *run_key(const char *dag_id, const char *run_id)
{
    return xasprintf("%s\x1f%s", dag_id, run_id);
}

static void split_key(const char *key, char *dag, size_t dl, char *run, size_t rl)
{
    const char *sep = strchr(key, '\x1f');
    size_t n = sep ? (size_t)(sep - key) : strlen(key);
    snprintf(dag, dl, "%.*s", (int)n, key);
    snprintf(run, rl, "%s", sep ? sep + 1 : "");
}

/* Marks a run for processing; `reload` asks for a fresh read of its task instances
 * (a pending reload is never downgraded). */
static void mark_dirty_ex(struct sched *s, const char *dag_id, const char *run_id, bool reload)
{
    char *k = run_key(dag_id, run_id);
    if (reload || !json_object_get(s->dirty, k))
        json_object_set_new(s->dirty, k, json_boolean(reload));
    free(k);
}

static void mark_dirty(struct sched *s, const char *dag_id, const char *run_id)
{
    mark_dirty_ex(s, dag_id, run_id, true);
}

static struct run_cache *cache_find(struct sched *s, const char *key)
{
    for (struct run_cache *c = s->cache; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

static void cache_drop(struct sched *s, const char *key)
{
    for (struct run_cache **pp = &s->cache; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct run_cache *c = *pp;
            *pp = c->next;
            store_ti_list_release(&c->tis);
            free(c->by_task);
            free(c->key);
            free(c);
            return;
        }
    }
}

/* Replaces the cached copy of one task instance with `fresh` (taking its contents). */
static struct store_ti *find_ti(struct store_ti_list *l, const char *task_id);

static void cache_update_ti(struct sched *s, const char *key, struct store_ti *fresh)
{
    struct run_cache *c = cache_find(s, key);
    struct store_ti *old = c ? find_ti(&c->tis, fresh->task_id) : NULL;
    if (!old)
        return;
    store_ti_release(old);
    *old = *fresh; /* in place: by_task keeps pointing at it */
    memset(fresh, 0, sizeof *fresh);
}

static void kick(struct sched *s);
static void subwatch_sync(struct sched *s);
static void on_cron(uv_timer_t *t);
static void on_sweep(uv_timer_t *t);
static void on_retry(uv_timer_t *t);

/* Returns the cached doc (borrowed) of dag_id@version, loading it if needed; NULL on error. */
static json_t *doc_get(struct sched *s, const char *dag_id, int64_t version)
{
    char *k = xasprintf("%s@%lld", dag_id, (long long)version);
    json_t *doc = json_object_get(s->docs, k);
    if (!doc) {
        struct weir_err err = {0};
        if (sched__doc_load(s->st, dag_id, version, &doc, &err) < 0) {
            LOG_ERROR("cannot load dag doc dag=%s version=%lld: %s", dag_id, (long long)version,
                      err.msg);
            free(k);
            return NULL;
        }
        if (json_object_size(s->docs) >= DOC_CACHE_MAX)
            json_object_clear(s->docs);
        json_object_set_new(s->docs, k, doc);
    }
    free(k);
    return doc;
}

/* {task_id: index} of a doc's tasks (borrowed), built once per cached doc. */
static json_t *doc_index(struct sched *s, const char *dag_id, int64_t version, json_t *doc)
{
    char *k = xasprintf("%s@%lld", dag_id, (long long)version);
    json_t *idx = json_object_get(s->doc_index, k);
    if (!idx) {
        idx = json_object();
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(doc, "tasks"), i, t)
            json_object_set_new(idx, json_string_value(json_object_get(t, "task_id")),
                                json_integer((json_int_t)i));
        if (json_object_size(s->doc_index) >= DOC_CACHE_MAX)
            json_object_clear(s->doc_index);
        json_object_set_new(s->doc_index, k, idx);
    }
    free(k);
    return idx;
}

static void task_log(struct sched *s, const char *dag_id, const char *run_id, const char *task_id,
                     int try_number, const char *msg)
{
    const char *lines[1] = {msg};
    int64_t ts[1] = {ts_now_us()};
    struct weir_err err = {0};
    if (store_log_append(s->st, dag_id, run_id, task_id, try_number, lines, ts, 1, &err) < 0)
        LOG_WARN("cannot write task log dag=%s run=%s task=%s: %s", dag_id, run_id, task_id, err.msg);
}

/* ---- trigger rules ------------------------------------------------------------------- */

enum decision { WAIT, READY, SET_UPSTREAM_FAILED, SET_SKIPPED };

static enum decision eval_rule(const char *rule, int n, int success, int failed, int skipped,
                               int done)
{
    if (n == 0)
        return READY;
    if (!rule || strcmp(rule, "all_success") == 0) {
        if (failed)
            return SET_UPSTREAM_FAILED;
        if (skipped)
            return SET_SKIPPED;
        return success == n ? READY : WAIT;
    }
    if (strcmp(rule, "all_failed") == 0) {
        if (success || skipped)
            return SET_SKIPPED;
        return failed == n ? READY : WAIT;
    }
    if (strcmp(rule, "all_done") == 0)
        return done == n ? READY : WAIT;
    if (strcmp(rule, "one_success") == 0) {
        if (success)
            return READY;
        if (done == n)
            return failed ? SET_UPSTREAM_FAILED : SET_SKIPPED;
        return WAIT;
    }
    if (strcmp(rule, "one_failed") == 0) {
        if (failed)
            return READY;
        return done == n ? SET_SKIPPED : WAIT;
    }
    if (strcmp(rule, "none_failed") == 0) {
        if (failed)
            return SET_UPSTREAM_FAILED;
        return done == n ? READY : WAIT;
    }
    return WAIT; /* unknown rules were rejected by the parser */
}

/* ---- failure of a try whose process did not record a result ----------------------------- */

static void fail_try(struct sched *s, const struct store_ti *ti, int try_number, const char *why)
{
    task_log(s, ti->dag_id, ti->run_id, ti->task_id, try_number, why);
    struct store_ti_update u = {0};
    u.to = try_number < ti->max_tries ? TI_UP_FOR_RETRY : TI_FAILED;
    u.set_try_number = true;
    u.try_number = try_number;
    u.set_end_date = true;
    u.end_date = ts_now_us();
    if (u.to == TI_UP_FOR_RETRY) {
        struct store_run run = {0};
        json_t *task = NULL;
        if (store_run_get(s->st, ti->dag_id, ti->run_id, &run, NULL) == 0)
            task = sched_doc_task(doc_get(s, ti->dag_id, run.version), ti->task_id);
        store_run_release(&run);
        u.set_next_retry_at = true;
        u.next_retry_at = u.end_date + (task ? sched__retry_delay(task, try_number + 1) : 0);
    }
    struct weir_err err = {0};
    int rc = store_ti_update(s->st, ti->dag_id, ti->run_id, ti->task_id, ti->state, ti->try_number,
                             &u, &err);
    if (rc == 0)
        LOG_WARN("task try failed dag=%s run=%s task=%s try=%d state=%s reason=\"%s\"", ti->dag_id,
                 ti->run_id, ti->task_id, try_number, store_ti_state_name(u.to), why);
    else if (rc != -WEIR_ECONFLICT)
        LOG_ERROR("cannot record failed try dag=%s run=%s task=%s: %s", ti->dag_id, ti->run_id,
                  ti->task_id, err.msg);
}

void sched_task_exited(struct sched *s, const char *dag_id, const char *run_id, const char *task_id,
                       int try_number, int64_t exit_status, int term_signal, bool timed_out)
{
    struct store_ti ti = {0};
    struct weir_err err = {0};
    bool reread = true;
    if (store_ti_get(s->st, dag_id, run_id, task_id, &ti, &err) == 0) {
        reread = false;
        bool lost_claim = exit_status == SCHED_EXIT_NOT_CLAIMED && !timed_out && !term_signal;
        bool unrecorded = !lost_claim &&
                          ((ti.state == TI_RUNNING && ti.try_number == try_number) ||
                           (ti.state == TI_QUEUED && ti.try_number == try_number - 1));
        char why[256];
        if (timed_out) {
            struct store_run run = {0};
            double secs = 0;
            if (store_run_get(s->st, dag_id, run_id, &run, NULL) == 0) {
                json_t *doc = doc_get(s, dag_id, run.version);
                secs = json_number_value(json_object_get(sched_doc_task(doc, task_id), "timeout"));
            }
            store_run_release(&run);
            snprintf(why, sizeof why, "task timed out after %gs: its process group was killed",
                     secs);
            /* The runner may have recorded the failure itself when it got SIGTERM; the
             * reason belongs in the log either way. */
            if (!unrecorded)
                task_log(s, dag_id, run_id, task_id, try_number, why);
        }
        if (unrecorded) {
            if (timed_out) {
                /* reason set above */
            } else if (term_signal) {
                snprintf(why, sizeof why, "task process was killed by signal %d", term_signal);
            } else {
                snprintf(why, sizeof why, "task process exited with status %lld without recording a result",
                         (long long)exit_status);
            }
            fail_try(s, &ti, try_number, why);
            reread = true;
        }
    } else {
        LOG_WARN("exited try of unknown task instance dag=%s run=%s task=%s: %s", dag_id, run_id,
                 task_id, err.msg);
    }
    if (reread) {
        store_ti_release(&ti);
        if (store_ti_get(s->st, dag_id, run_id, task_id, &ti, NULL) < 0)
            store_ti_release(&ti);
    }
    if (ti.task_id) {
        char *key = run_key(dag_id, run_id);
        cache_update_ti(s, key, &ti);
        free(key);
    }
    store_ti_release(&ti);
    mark_dirty_ex(s, dag_id, run_id, false);
    /* A slot is free: runs that were waiting for one get another chance. */
    const char *wk;
    json_t *wv;
    json_object_foreach(s->waiting, wk, wv)
        if (!json_object_get(s->dirty, wk))
            json_object_set_new(s->dirty, wk, json_false());
    json_object_clear(s->waiting);
    kick(s);
}

/* ---- processing one run ---------------------------------------------------------------- */

struct tstate {
    struct store_ti *ti; /* borrowed from the list, NULL if missing */
    enum store_ti_state state;
};

static struct store_ti *find_ti(struct store_ti_list *l, const char *task_id)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) { /* the list is ordered by task_id */
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->items[mid].task_id, task_id);
        if (c == 0)
            return &l->items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < l->n; i++) /* in case the backend's collation differs */
        if (strcmp(l->items[i].task_id, task_id) == 0)
            return &l->items[i];
    return NULL;
}

static bool ti_set(struct sched *s, struct store_ti *ti, enum store_ti_state to, bool set_dates)
{
    struct store_ti_update u = {.to = to};
    if (set_dates) {
        u.set_start_date = u.set_end_date = true;
        u.start_date = u.end_date = ts_now_us();
    }
    struct weir_err err = {0};
    int rc = store_ti_update(s->st, ti->dag_id, ti->run_id, ti->task_id, ti->state, ti->try_number,
                             &u, &err);
    if (rc < 0 && rc != -WEIR_ECONFLICT)
        LOG_ERROR("cannot set task state dag=%s run=%s task=%s state=%s: %s", ti->dag_id,
                  ti->run_id, ti->task_id, store_ti_state_name(to), err.msg);
    if (rc == 0)
        ti->state = to;
    return rc == 0;
}

static void note_retry(struct sched *s, const char *key, int64_t due)
{
    json_t *old = json_object_get(s->retries, key);
    if (!old || json_integer_value(old) > due)
        json_object_set_new(s->retries, key, json_integer(due));
}

/* Launches the scheduled tries of a run while slots allow. Returns false if it stopped
 * for lack of a slot (the run then waits). */
static bool launch_scheduled(struct sched *s, struct store_run *run, json_t *doc, json_t *tasks,
                             struct tstate *ts)
{
    int64_t dag_active = 0;
    int64_t max_tasks = json_integer_value(json_object_get(doc, "max_active_tasks"));
    bool counted = false;
    size_t i;
    json_t *task;
    json_array_foreach(tasks, i, task) {
        struct store_ti *ti = ts[i].ti;
        if (!ti || ti->state != TI_SCHEDULED)
            continue;
        if (s->o.exec.slots_free(s->o.exec.ud) <= 0)
            return false;
        if (!counted) {
            store_ti_count_active(s->st, run->dag_id, NULL, &dag_active, NULL);
            counted = true;
        }
        if (max_tasks > 0 && dag_active >= max_tasks)
            return false;
        const char *pool = json_string_value(json_object_get(task, "pool"));
        if (pool && strcmp(pool, "default_pool") != 0) {
            int64_t slots = 0, used = 0;
            if (store_pool_get(s->st, pool, &slots, NULL) == 0 &&
                store_ti_count_active(s->st, NULL, pool, &used, NULL) == 0 && used >= slots)
                return false;
        }
        int next_try = ti->try_number + 1;
        struct store_ti_update u = {.to = TI_QUEUED};
        u.set_queued_at = true;
        u.queued_at = ts_now_us();
        u.set_pool = true;
        u.pool = pool ? pool : "default_pool";
        if (ti->max_tries <= 0) {
            u.set_max_tries = true;
            u.max_tries = (int)json_integer_value(json_object_get(task, "retries")) + 1;
            ti->max_tries = u.max_tries;
        }
        struct weir_err err = {0};
        if (store_ti_update(s->st, ti->dag_id, ti->run_id, ti->task_id, TI_SCHEDULED, ti->try_number,
                            &u, &err) < 0)
            continue; /* lost a race: someone else moved it */
        ti->state = TI_QUEUED;
        json_t *tmo = json_object_get(task, "timeout");
        int64_t timeout_us = json_is_number(tmo) ? (int64_t)(json_number_value(tmo) * 1e6) : 0;
        struct sched_launch l = {.dag_id = ti->dag_id, .run_id = ti->run_id,
                                 .task_id = ti->task_id, .try_number = next_try,
                                 .max_tries = ti->max_tries, .version = run->version,
                                 .timeout_us = timeout_us,
                                 .pool = pool ? pool : "default_pool", .run = run};
        int rc = s->o.exec.launch(s->o.exec.ud, &l, &err);
        if (rc == -WEIR_EUNAVAIL) {
            struct store_ti_update back = {.to = TI_SCHEDULED};
            store_ti_update(s->st, ti->dag_id, ti->run_id, ti->task_id, TI_QUEUED, ti->try_number,
                            &back, NULL);
            ti->state = TI_SCHEDULED;
            return false;
        }
        if (rc < 0) {
            char why[400];
            snprintf(why, sizeof why, "cannot start task process: %s", err.msg);
            fail_try(s, ti, next_try, why);
            continue;
        }
        s->tis_launched++;
        dag_active++;
        LOG_DEBUG("task queued dag=%s run=%s task=%s try=%d", ti->dag_id, ti->run_id, ti->task_id,
                  next_try);
    }
    return true;
}

static void finish_run(struct sched *s, struct store_run *run, json_t *tasks, struct tstate *ts)
{
    bool failed = false;
    size_t i;
    json_t *task;
    json_array_foreach(tasks, i, task) {
        if (json_array_size(json_object_get(task, "downstream")) != 0)
            continue; /* Airflow: the leaves decide the run's state */
        if (ts[i].state == TI_FAILED || ts[i].state == TI_UPSTREAM_FAILED)
            failed = true;
    }
    enum store_run_state to = failed ? RUN_FAILED : RUN_SUCCESS;
    struct weir_err err = {0};
    int rc = store_run_set_state(s->st, run->dag_id, run->run_id, RUN_RUNNING, to, TS_NONE,
                                 ts_now_us(), &err);
    if (rc == 0) {
        s->runs_finished++;
        LOG_INFO("run finished dag=%s run=%s state=%s", run->dag_id, run->run_id,
                 store_run_state_name(to));
        if (s->o.run_finished)
            s->o.run_finished(s->o.run_finished_ud, run->dag_id, run->run_id);
        /* Queued runs of this DAG may start now, and cron may create the next one. */
        struct store_run_filter f = {.dag_id = run->dag_id, .state_mask = 1 << RUN_QUEUED,
                                     .order_by = "logical_date", .limit = 64};
        struct store_run_list l = {0};
        if (store_run_list(s->st, &f, &l, NULL) == 0)
            for (size_t k = 0; k < l.n; k++)
                mark_dirty(s, l.items[k].dag_id, l.items[k].run_id);
        store_run_list_release(&l);
        s->cron_dirty = true;
    } else if (rc != -WEIR_ECONFLICT) {
        LOG_ERROR("cannot finish run dag=%s run=%s: %s", run->dag_id, run->run_id, err.msg);
    }
}

static void process_run(struct sched *s, const char *dag_id, const char *run_id, bool reload)
{
    struct store_run run = {0};
    struct store_dag dag = {0};
    struct run_cache *rc_entry = NULL;
    struct tstate *ts = NULL;
    struct weir_err err = {0};
    char *key = run_key(dag_id, run_id);
    if (s->only_dag && strcmp(dag_id, s->only_dag) != 0)
        goto out;
    if (store_run_get(s->st, dag_id, run_id, &run, &err) < 0)
        goto out;
    if (run.state == RUN_SUCCESS || run.state == RUN_FAILED) {
        cache_drop(s, key);
        goto out;
    }
    if (store_dag_get(s->st, dag_id, &dag, &err) < 0)
        goto out;
    if (dag.is_paused && !s->only_dag)
        goto out; /* Airflow: a paused DAG schedules no tasks; running ones finish */
    json_t *doc = doc_get(s, dag_id, run.version);
    if (!doc)
        goto out;
    json_t *tasks = json_object_get(doc, "tasks");
    if (run.state == RUN_QUEUED) {
        struct store_run_filter f = {.dag_id = dag_id, .state_mask = 1 << RUN_RUNNING, .limit = 1};
        struct store_run_list l = {0};
        int64_t max_runs = json_integer_value(json_object_get(doc, "max_active_runs"));
        int lrc = store_run_list(s->st, &f, &l, &err);
        size_t running = l.total;
        store_run_list_release(&l);
        if (lrc < 0 || (max_runs > 0 && running >= (size_t)max_runs))
            goto out;
        if (store_run_set_state(s->st, dag_id, run_id, RUN_QUEUED, RUN_RUNNING, ts_now_us(), TS_NONE,
                                &err) < 0)
            goto out;
        run.state = RUN_RUNNING;
        s->runs_started++;
        LOG_INFO("run started dag=%s run=%s", dag_id, run_id);
    }
    rc_entry = cache_find(s, key);
    if (!rc_entry || reload) {
        struct store_ti_list fresh = {0};
        if (store_ti_list_run(s->st, dag_id, run_id, &fresh, &err) < 0)
            goto out;
        if (!rc_entry) {
            rc_entry = xcalloc(1, sizeof *rc_entry);
            rc_entry->key = xstrdup(key);
            rc_entry->next = s->cache;
            s->cache = rc_entry;
        }
        store_ti_list_release(&rc_entry->tis);
        rc_entry->tis = fresh;
        /* Align the task instances with the doc's tasks once, so every later pass (one
         * per exit) finds each in O(1) instead of searching by name. */
        size_t n = json_array_size(tasks);
        free(rc_entry->by_task);
        rc_entry->by_task = xcalloc(n ? n : 1, sizeof *rc_entry->by_task);
        rc_entry->ntasks = n;
        size_t j;
        json_t *t;
        json_array_foreach(tasks, j, t)
            rc_entry->by_task[j] =
                find_ti(&rc_entry->tis, json_string_value(json_object_get(t, "task_id")));
    }
    json_t *index = doc_index(s, dag_id, run.version, doc);
    size_t nt = json_array_size(tasks);
    if (rc_entry->ntasks != nt) { /* cannot happen: a run's version never changes */
        LOG_ERROR("task count changed under a cached run dag=%s run=%s", dag_id, run_id);
        cache_drop(s, key);
        goto out;
    }
    ts = xcalloc(nt ? nt : 1, sizeof *ts);
    int64_t now = ts_now_us();
    json_object_del(s->retries, key);
    bool all_done = true;
    size_t i;
    json_t *task;
    /* The transitions of one pass share a transaction (each is still its own CAS): a new run
     * of 1000 ready tasks is one commit, not 1000. */
    bool tx = store_begin(s->st, NULL) == 0;
    json_array_foreach(tasks, i, task) {
        struct store_ti *ti = rc_entry->by_task[i];
        ts[i].ti = ti;
        if (!ti) {
            ts[i].state = TI_SKIPPED; /* a task missing from the run cannot block it */
            continue;
        }
        if (ti->state == TI_UP_FOR_RETRY) {
            /* The runner records when its retry is due; tries the scheduler failed itself
             * (timeouts, vanished processes) get their due time set in fail_try. */
            int64_t base = ti->end_date != TS_NONE ? ti->end_date : now;
            int64_t due = ti->next_retry_at != TS_NONE
                              ? ti->next_retry_at
                              : base + sched__retry_delay(task, ti->try_number + 1);
            if (due <= now)
                ti_set(s, ti, TI_SCHEDULED, false);
            else
                note_retry(s, key, due);
        }
        if (ti->state == TI_NONE) {
            int n = 0, ok = 0, bad = 0, skip = 0, done = 0;
            size_t j;
            json_t *need;
            json_array_foreach(json_object_get(task, "needs"), j, need) {
                json_t *kj = json_object_get(index, json_string_value(need));
                size_t k = kj ? (size_t)json_integer_value(kj) : (size_t)-1;
                if (k == (size_t)-1 || k >= i)
                    continue; /* topological order: upstream comes first */
                enum store_ti_state us = ts[k].state;
                n++;
                ok += us == TI_SUCCESS;
                bad += us == TI_FAILED || us == TI_UPSTREAM_FAILED;
                skip += us == TI_SKIPPED;
                done += store_ti_state_finished(us);
            }
            const char *rule = json_string_value(json_object_get(task, "trigger_rule"));
            switch (eval_rule(rule, n, ok, bad, skip, done)) {
            case READY: ti_set(s, ti, TI_SCHEDULED, false); break;
            case SET_UPSTREAM_FAILED: ti_set(s, ti, TI_UPSTREAM_FAILED, true); break;
            case SET_SKIPPED: ti_set(s, ti, TI_SKIPPED, true); break;
            case WAIT: break;
            }
        }
        ts[i].state = ti->state;
        if (!store_ti_state_finished(ti->state))
            all_done = false;
    }
    if (tx && store_commit(s->st, &err) < 0) {
        /* None of this pass's transitions happened: forget what the cache says and redo. */
        LOG_ERROR("cannot store the transitions of run dag=%s run=%s: %s", dag_id, run_id, err.msg);
        cache_drop(s, key);
        mark_dirty_ex(s, dag_id, run_id, true);
        kick(s);
        goto out;
    }
    if (!launch_scheduled(s, &run, doc, tasks, ts))
        json_object_set_new(s->waiting, key, json_true());
    if (all_done) {
        finish_run(s, &run, tasks, ts);
        cache_drop(s, key);
    }
out:
    free(ts);
    free(key);
    store_dag_release(&dag);
    store_run_release(&run);
}

/* ---- cron ------------------------------------------------------------------------------ */

/* Creates the scheduled runs that are due for one DAG; returns its next fire time. */
static int64_t plan_dag(struct sched *s, const struct store_dag *dag, int64_t now)
{
    json_t *doc = doc_get(s, dag->dag_id, dag->version);
    struct cron c;
    const struct tz *tz;
    if (!doc || !sched__doc_cron(doc, &c, &tz))
        return INT64_MAX;
    int64_t start = sched__doc_time(doc, "start_date");
    int64_t end = sched__doc_time(doc, "end_date");
    bool catchup = json_is_true(json_object_get(doc, "catchup"));
    int64_t max_runs = json_integer_value(json_object_get(doc, "max_active_runs"));
    struct store_run last = {0};
    int64_t prev = TS_NONE;
    if (store_run_latest_scheduled(s->st, dag->dag_id, &last, NULL) == 0)
        prev = last.logical_date;
    store_run_release(&last);
    for (int k = 0; k < CRON_CREATE_MAX; k++) {
        int64_t t;
        if (prev != TS_NONE)
            t = cron_next(&c, tz, prev);
        else
            t = cron_next(&c, tz, (start != TS_NONE ? start : now) - 1);
        if (t == INT64_MAX)
            return INT64_MAX;
        if (!catchup && t <= now) {
            int64_t latest = cron_prev(&c, tz, now + 1); /* the latest fire time <= now */
            if (latest != INT64_MIN && latest > t)
                t = latest;
        }
        if (end != TS_NONE && t > end)
            return INT64_MAX;
        if (t > now) {
            store_dag_set_next(s->st, dag->dag_id, t, t, NULL);
            return t;
        }
        int64_t active = 0;
        if (store_run_count_active(s->st, dag->dag_id, &active, NULL) < 0 ||
            (max_runs > 0 && active >= max_runs))
            return INT64_MAX; /* planned again when a run finishes */
        struct weir_err err = {0};
        int rc = sched__create_cron_run(s->st, doc, dag->version, t, RUN_TYPE_SCHEDULED, NULL, &err);
        if (rc < 0 && rc != -WEIR_ECONFLICT) {
            LOG_ERROR("cannot create scheduled run dag=%s: %s", dag->dag_id, err.msg);
            return now + 10 * TS_US_PER_SEC; /* try again soon */
        }
        char ts[48], rid[96];
        snprintf(rid, sizeof rid, "scheduled__%s", ts_format(t, TS_FMT_OFFSET, ts, sizeof ts));
        mark_dirty(s, dag->dag_id, rid);
        prev = t;
    }
    return now; /* more to create: plan again right away */
}

static void plan_cron(struct sched *s)
{
    if (s->o.no_cron)
        return;
    struct store_dag_list l = {0};
    struct weir_err err = {0};
    if (store_dag_list(s->st, true, 0, 0, &l, &err) < 0) {
        LOG_ERROR("cannot list dags: %s", err.msg);
        return;
    }
    int64_t now = ts_now_us(), next = INT64_MAX;
    for (size_t i = 0; i < l.n; i++) {
        const struct store_dag *d = &l.items[i];
        if (d->is_paused || !d->schedule)
            continue;
        if (s->only_dag && strcmp(d->dag_id, s->only_dag) != 0)
            continue;
        int64_t t = plan_dag(s, d, now);
        if (t < next)
            next = t;
    }
    store_dag_list_release(&l);
    uv_timer_stop(&s->cron);
    if (next != INT64_MAX) {
        int64_t ms = next > now ? (next - now + 999) / 1000 : 0;
        uv_timer_start(&s->cron, on_cron, (uint64_t)ms, 0);
    }
}

/* ---- recovery and the safety sweep --------------------------------------------------------- */

/* When process `pid` started (µs since the epoch, from /proc), or TS_NONE if unknown. */
static int64_t proc_start_us(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return TS_NONE;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    unsigned long long start = 0;
    /* after ") ": state is field 3, starttime field 22 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                            "%*d %*d %llu", &start) != 1)
        return TS_NONE;
    static long long btime = -1; /* the boot time never changes: read once */
    if (btime < 0 && (f = fopen("/proc/stat", "re")) != NULL) {
        char line[256];
        while (btime < 0 && fgets(line, sizeof line, f))
            if (sscanf(line, "btime %lld", &btime) != 1)
                btime = -1;
        fclose(f);
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || hz <= 0)
        return TS_NONE;
    return btime * TS_US_PER_SEC + (int64_t)(start * (unsigned long long)TS_US_PER_SEC / (unsigned long long)hz);
}

/* Whether the running try's process was started on this host (so its pid can be checked). */
static bool ran_here(struct sched *s, const struct store_ti *ti)
{
    return ti->hostname && strcmp(ti->hostname, s->hostname) == 0 && ti->pid > 0;
}

/* Whether the process of a try of this host lives: a process with its pid exists and
 * started before the try was claimed (a younger one reuses the pid of one that is gone). */
static bool pid_alive(const struct store_ti *ti)
{
    if (kill(ti->pid, 0) < 0 && errno == ESRCH)
        return false;
    int64_t started = proc_start_us(ti->pid);
    /* btime has whole seconds and starttime clock ticks: allow for both */
    return started == TS_NONE || ti->start_date == TS_NONE ||
           started <= ti->start_date + 2 * TS_US_PER_SEC;
}

/* Running tries whose process is gone become failed or up_for_retry; queued tries nobody
 * started go back to scheduled. `startup`: nothing can be queued in our own executor. */
static void check_zombies(struct sched *s, bool startup)
{
    struct store_ti_list l = {0};
    int64_t now = ts_now_us();
    s->adopted = 0;
    if (store_ti_list_state(s->st, TI_RUNNING, &l, NULL) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            struct store_ti *ti = &l.items[i];
            if (s->only_dag && strcmp(ti->dag_id, s->only_dag) != 0)
                continue;
            if (s->o.exec.is_running(s->o.exec.ud, ti->dag_id, ti->run_id, ti->task_id,
                                     ti->try_number))
                continue;
            /* A try on this host whose process lives is adopted whatever its heartbeat
             * says, and its heartbeats are written here: a try forked by a local executor
             * that is gone may have no heartbeat thread (it starts one only when it runs
             * long enough and calls the host, runner.c), and nobody else would write
             * them. Tries on other hosts are judged by their heartbeat alone. */
            bool here = ran_here(s, ti);
            if (here && pid_alive(ti)) {
                s->adopted++;
                store_ti_heartbeat(s->st, ti->dag_id, ti->run_id, ti->task_id, ti->try_number,
                                   now, NULL);
                continue;
            }
            int64_t hb = ti->heartbeat_at != TS_NONE ? ti->heartbeat_at : ti->start_date;
            bool stale = hb == TS_NONE || now - hb > s->o.zombie_timeout_us;
            if (here || stale) {
                fail_try(s, ti, ti->try_number,
                         here ? "task process vanished (scheduler restarted while it ran)"
                              : "task process vanished: no heartbeat within the zombie timeout");
                mark_dirty(s, ti->dag_id, ti->run_id);
            } else {
                s->adopted++; /* still alive: finishes on its own, the sweep notices */
            }
        }
    }
    store_ti_list_release(&l);
    if (store_ti_list_state(s->st, TI_QUEUED, &l, NULL) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            struct store_ti *ti = &l.items[i];
            if (s->only_dag && strcmp(ti->dag_id, s->only_dag) != 0)
                continue;
            if (s->o.exec.is_running(s->o.exec.ud, ti->dag_id, ti->run_id, ti->task_id,
                                     ti->try_number + 1))
                continue;
            bool old = ti->queued_at == TS_NONE || now - ti->queued_at > s->o.zombie_timeout_us;
            if (!startup && !old)
                continue;
            struct store_ti_update u = {.to = TI_SCHEDULED};
            if (store_ti_update(s->st, ti->dag_id, ti->run_id, ti->task_id, TI_QUEUED,
                                ti->try_number, &u, NULL) == 0) {
                LOG_INFO("requeued a try that never started dag=%s run=%s task=%s", ti->dag_id,
                         ti->run_id, ti->task_id);
                mark_dirty(s, ti->dag_id, ti->run_id);
            }
        }
    }
    store_ti_list_release(&l);
}

static void arm_sweep(struct sched *s)
{
    int64_t us = s->adopted > 0 ? ADOPTED_SWEEP_US : s->o.sweep_interval_us;
    uv_timer_start(&s->sweep, on_sweep, (uint64_t)(us / 1000), 0);
}

/* ---- the work pass ---------------------------------------------------------------------- */

static void arm_retry(struct sched *s)
{
    uv_timer_stop(&s->retry);
    int64_t due = INT64_MAX;
    const char *k;
    json_t *v;
    json_object_foreach(s->retries, k, v)
        if (json_integer_value(v) < due)
            due = json_integer_value(v);
    if (due != INT64_MAX) {
        int64_t now = ts_now_us();
        uv_timer_start(&s->retry, on_retry, (uint64_t)(due > now ? (due - now + 999) / 1000 : 0), 0);
    }
}

static void sync_folder(struct sched *s)
{
    if (!s->dags_folder)
        return;
    struct sched_sync_report rep = {0};
    struct weir_err err = {0};
    int64_t t0 = ts_mono_us();
    if (sched_sync_folder(s->st, s->dags_folder, &s->o.ops, s->o.paused_on_create, &rep, &err) < 0) {
        LOG_ERROR("cannot sync dags folder '%s': %s", s->dags_folder, err.msg);
        return;
    }
    LOG_INFO("dags folder synced folder=%s files=%d ok=%d errors=%d changed=%d ms=%lld",
             s->dags_folder, rep.files, rep.ok, rep.errors, rep.changed,
             (long long)((ts_mono_us() - t0) / 1000));
}

static void mark_all_active(struct sched *s)
{
    struct store_run_filter f = {.dag_id = s->only_dag,
                                 .state_mask = (1 << RUN_QUEUED) | (1 << RUN_RUNNING),
                                 .order_by = "logical_date"};
    struct store_run_list l = {0};
    struct weir_err err = {0};
    if (store_run_list(s->st, &f, &l, &err) < 0) {
        LOG_ERROR("cannot list active runs: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < l.n; i++)
        mark_dirty(s, l.items[i].dag_id, l.items[i].run_id);
    store_run_list_release(&l);
}

static void do_work(struct sched *s)
{
    int64_t t0 = ts_mono_us();
    s->loop_passes++;
    if (s->folder_dirty) {
        s->folder_dirty = false;
        sync_folder(s);
        subwatch_sync(s);
        json_object_clear(s->docs);
        json_object_clear(s->doc_index);
        s->cron_dirty = s->all_dirty = true;
    }
    if (s->all_dirty) {
        s->all_dirty = false;
        mark_all_active(s);
    }
    if (s->cron_dirty) {
        s->cron_dirty = false;
        plan_cron(s);
    }
    /* Process until quiet: finishing a run can dirty others (queued runs of its DAG). */
    for (int round = 0; round < 8 && json_object_size(s->dirty) > 0; round++) {
        json_t *batch = s->dirty;
        s->dirty = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(batch, k, v) {
            char dag[256], run[512];
            split_key(k, dag, sizeof dag, run, sizeof run);
            process_run(s, dag, run, json_is_true(v));
        }
        json_decref(batch);
        if (s->cron_dirty) {
            s->cron_dirty = false;
            plan_cron(s);
        }
    }
    if (json_object_size(s->dirty) > 0)
        kick(s);
    arm_retry(s);
    s->last_pass_us = ts_mono_us() - t0;
}

static void on_work(uv_timer_t *t)
{
    do_work(t->data);
}

static void kick(struct sched *s)
{
    if (!s->closing && !uv_is_active((uv_handle_t *)&s->work))
        uv_timer_start(&s->work, on_work, 0, 0);
}

static void on_wake(uv_async_t *a)
{
    struct sched *s = a->data;
    s->all_dirty = s->cron_dirty = true;
    kick(s);
}

static void on_cron(uv_timer_t *t)
{
    struct sched *s = t->data;
    s->cron_dirty = true;
    kick(s);
}

static void on_retry(uv_timer_t *t)
{
    struct sched *s = t->data;
    int64_t now = ts_now_us();
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(s->retries, tmp, k, v) {
        if (json_integer_value(v) <= now + 1000) {
            json_object_set_new(s->dirty, k, json_true());
            json_object_del(s->retries, k);
        }
    }
    kick(s);
}

static void on_sweep(uv_timer_t *t)
{
    struct sched *s = t->data;
    check_zombies(s, false);
    s->all_dirty = s->cron_dirty = true;
    kick(s);
    arm_sweep(s);
}

/* ---- watching subfolders ---------------------------------------------------------------- */

/* inotify watches one folder, so each subfolder of the DAG folder (the ones the sync reads:
 * not hidden, up to 8 levels) gets a watch of its own, kept in step after every sync. */
#define MAX_SUBWATCHES 4096

struct subwatch {
    uv_fs_event_t h;
    struct sched *s;
    char *path;
    struct subwatch *next;
    bool seen;
};

static void on_closed(uv_handle_t *h);
static void folder_changed(struct sched *s, int status);

static void on_subfolder_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)filename;
    (void)events;
    folder_changed(((struct subwatch *)h->data)->s, status);
}

static void subwatch_closed(uv_handle_t *h)
{
    struct subwatch *w = h->data;
    struct sched *s = w->s;
    free(w->path);
    free(w);
    h->data = s;
    on_closed(h); /* the handle counted in open_handles */
}

static void subwatch_add(struct sched *s, const char *path)
{
    for (struct subwatch *w = s->subwatches; w; w = w->next) {
        if (strcmp(w->path, path) == 0) {
            w->seen = true;
            return;
        }
    }
    if (s->nsubwatches >= MAX_SUBWATCHES) {
        if (s->nsubwatches++ == MAX_SUBWATCHES)
            LOG_WARN("more than %d subfolders in the dags folder: changes in the others are seen "
                     "at the next sweep", MAX_SUBWATCHES);
        return;
    }
    struct subwatch *w = xcalloc(1, sizeof *w);
    w->s = s;
    w->path = xstrdup(path);
    w->seen = true;
    uv_fs_event_init(s->loop, &w->h);
    w->h.data = w;
    s->open_handles++;
    int rc = uv_fs_event_start(&w->h, on_subfolder_event, path, 0);
    if (rc < 0)
        LOG_WARN("cannot watch dags subfolder '%s': %s (its changes are seen at the next sweep)",
                 path, uv_strerror(rc));
    w->next = s->subwatches;
    s->subwatches = w;
    s->nsubwatches++;
}

static void subwatch_walk(struct sched *s, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && depth < 8) {
            subwatch_add(s, path);
            subwatch_walk(s, path, depth + 1);
        }
        free(path);
    }
    closedir(d);
}

/* Watches every subfolder there is now, and stops watching the ones that are gone. */
static void subwatch_sync(struct sched *s)
{
    if (!s->watching || s->closing)
        return;
    for (struct subwatch *w = s->subwatches; w; w = w->next)
        w->seen = false;
    s->nsubwatches = 0;
    for (struct subwatch *w = s->subwatches; w; w = w->next)
        s->nsubwatches++;
    subwatch_walk(s, s->dags_folder, 0);
    struct subwatch **pp = &s->subwatches;
    while (*pp) {
        struct subwatch *w = *pp;
        if (w->seen) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        s->nsubwatches--;
        uv_close((uv_handle_t *)&w->h, subwatch_closed);
    }
}

static void on_debounce(uv_timer_t *t)
{
    struct sched *s = t->data;
    s->folder_dirty = true;
    kick(s);
}

static void folder_changed(struct sched *s, int status)
{
    if (status < 0) {
        LOG_WARN("dags folder watch error: %s", uv_strerror(status));
        return;
    }
    /* Editors write in several steps; wait until the burst is over. */
    uv_timer_start(&s->debounce, on_debounce, 100, 0);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)filename;
    (void)events;
    folder_changed(h->data, status);
}

static void on_wake_file(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)filename;
    (void)events;
    if (status == 0)
        on_wake(&((struct sched *)h->data)->wake);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void init_timer(struct sched *s, uv_timer_t *t)
{
    uv_timer_init(s->loop, t);
    t->data = s;
    s->open_handles++;
}

struct sched *sched_new(uv_loop_t *loop, struct store *st, const struct sched_opts *opts,
                        struct weir_err *err)
{
    struct sched *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->st = st;
    s->o = *opts;
    s->dags_folder = opts->dags_folder ? xstrdup(opts->dags_folder) : NULL;
    s->only_dag = opts->only_dag ? xstrdup(opts->only_dag) : NULL;
    s->o.dags_folder = s->dags_folder;
    s->o.only_dag = s->only_dag;
    if (s->o.zombie_timeout_us <= 0)
        s->o.zombie_timeout_us = 60 * TS_US_PER_SEC;
    if (s->o.sweep_interval_us <= 0)
        s->o.sweep_interval_us = 10 * TS_US_PER_SEC;
    if (gethostname(s->hostname, sizeof s->hostname) < 0)
        snprintf(s->hostname, sizeof s->hostname, "localhost");
    s->dirty = json_object();
    s->waiting = json_object();
    s->retries = json_object();
    s->docs = json_object();
    s->doc_index = json_object();

    if (s->dags_folder) {
        sync_folder(s);
    }
    uv_async_init(loop, &s->wake, on_wake);
    s->wake.data = s;
    s->open_handles++;
    init_timer(s, &s->work);
    init_timer(s, &s->cron);
    init_timer(s, &s->sweep);
    init_timer(s, &s->retry);
    init_timer(s, &s->debounce);
    uv_fs_event_init(loop, &s->watch);
    s->watch.data = s;
    s->open_handles++;
    if (s->dags_folder) {
        int rc = uv_fs_event_start(&s->watch, on_fs_event, s->dags_folder, 0);
        if (rc < 0)
            LOG_WARN("cannot watch dags folder '%s': %s (changes need a restart)", s->dags_folder,
                     uv_strerror(rc));
        else
            s->watching = true;
        subwatch_sync(s);
    }
    uv_fs_event_init(loop, &s->wake_watch);
    s->wake_watch.data = s;
    s->open_handles++;
    if (opts->wake_file) {
        s->wake_file = xstrdup(opts->wake_file);
        FILE *f = fopen(s->wake_file, "a");
        if (f)
            fclose(f);
        int rc = uv_fs_event_start(&s->wake_watch, on_wake_file, s->wake_file, 0);
        if (rc < 0)
            LOG_WARN("cannot watch '%s': %s (CLI changes are seen at the next sweep)",
                     s->wake_file, uv_strerror(rc));
    }
    check_zombies(s, true);
    s->all_dirty = s->cron_dirty = true;
    kick(s);
    uv_timer_start(&s->sweep, on_sweep, (uint64_t)(s->o.sweep_interval_us / 1000), 0);
    (void)err;
    return s;
}

void sched_wake(struct sched *s)
{
    uv_async_send(&s->wake);
}

bool sched_run_finished(struct sched *s, const char *dag_id, const char *run_id, int *state)
{
    struct store_run r = {0};
    bool done = false;
    if (store_run_get(s->st, dag_id, run_id, &r, NULL) == 0) {
        done = r.state == RUN_SUCCESS || r.state == RUN_FAILED;
        if (state)
            *state = r.state;
    }
    store_run_release(&r);
    return done;
}

json_t *sched_stats(const struct sched *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:f,s:i}", "runs_started", (json_int_t)s->runs_started,
                     "runs_finished", (json_int_t)s->runs_finished, "tis_launched",
                     (json_int_t)s->tis_launched, "loop_passes", (json_int_t)s->loop_passes,
                     "last_pass_seconds", (double)s->last_pass_us / 1e6, "adopted", s->adopted);
}

static void on_closed(uv_handle_t *h)
{
    struct sched *s = h->data;
    if (--s->open_handles > 0)
        return;
    json_decref(s->dirty);
    json_decref(s->waiting);
    json_decref(s->retries);
    json_decref(s->docs);
    json_decref(s->doc_index);
    while (s->cache) {
        struct run_cache *c = s->cache;
        s->cache = c->next;
        store_ti_list_release(&c->tis);
        free(c->by_task);
        free(c->key);
        free(c);
    }
    free(s->dags_folder);
    free(s->only_dag);
    free(s->wake_file);
    free(s);
}

void sched_close(struct sched *s)
{
    s->closing = true;
    uv_close((uv_handle_t *)&s->wake, on_closed);
    uv_close((uv_handle_t *)&s->work, on_closed);
    uv_close((uv_handle_t *)&s->cron, on_closed);
    uv_close((uv_handle_t *)&s->sweep, on_closed);
    uv_close((uv_handle_t *)&s->retry, on_closed);
    uv_close((uv_handle_t *)&s->debounce, on_closed);
    uv_close((uv_handle_t *)&s->watch, on_closed);
    uv_close((uv_handle_t *)&s->wake_watch, on_closed);
    while (s->subwatches) {
        struct subwatch *w = s->subwatches;
        s->subwatches = w->next;
        uv_close((uv_handle_t *)&w->h, subwatch_closed);
    }
}
