/* scheduler/scheduler.h - DAG files to the DAG model, the DAG folder, and the scheduling
 * loop with the run / task-instance state machine.
 *
 * The DAG model crosses module boundaries as a canonical JSON document (the "DAG doc",
 * docs/architecture.md#dag-doc), stored as a versioned row by store_dag_sync. Runs pin a
 * version, so task runners, workers and pods need no DAG files.
 */
#ifndef WEIR_SCHEDULER_SCHEDULER_H
#define WEIR_SCHEDULER_SCHEDULER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct weir_err;
struct store;
struct cfg;
struct store_run;

/* ---- DAG files -------------------------------------------------------------------- */

/* How the parser learns which operators exist (wired by the CLI to the plugin registry,
 * so the scheduler does not depend on the executor). `find` returns true and sets
 * *params_schema (JSON text, borrowed) if "plugin.operator" `ref` exists. NULL `find`
 * disables the operator check. */
struct sched_ops {
    bool (*find)(void *ud, const char *ref, const char **params_schema);
    void *ud;
};

/* Parses and validates one DAG file (docs/dag-files.md) into a new canonical DAG doc
 * (*doc, new reference). `path` is the fileloc recorded in the doc. On error *doc = NULL
 * and returns -WEIR_EINVAL (invalid file: err->msg names the key and the problem and
 * err->loc is "file:line:col"), -WEIR_ETOOBIG (a limit: 4 MiB, 10,000 tasks, alias
 * expansion), or -WEIR_ENOTFOUND / -WEIR_EIO (the file cannot be read). Any thread. */
int sched_dag_parse_file(const char *path, const struct sched_ops *ops, json_t **doc,
                         struct weir_err *err);
/* The same for text in memory; `name` is used as the file in locations and fileloc. */
int sched_dag_parse_string(const char *src, size_t len, const char *name,
                           const struct sched_ops *ops, json_t **doc, struct weir_err *err);

/* Looks up a task (borrowed object) in a DAG doc, or NULL. */
json_t *sched_doc_task(json_t *doc, const char *task_id);

/* Result of syncing a folder. */
struct sched_sync_report {
    int files;   /* DAG files seen */
    int ok;      /* parsed and stored */
    int errors;  /* import errors recorded */
    int changed; /* DAGs whose version changed (new or edited) */
};

/* Parses every *.yaml / *.yml file in `folder` (not recursive into hidden folders),
 * stores each DAG (store_dag_sync), records an import error for each broken file (one
 * broken file never hides the others), clears errors of files that parse again, and marks
 * DAGs whose file disappeared inactive. Two files with the same dag id: the second is an
 * import error. */
int sched_sync_folder(struct store *st, const char *folder, const struct sched_ops *ops,
                      bool paused_on_create, struct sched_sync_report *rep, struct weir_err *err);

/* ---- actions shared by the CLI and the REST API ---------------------------------------- */

/* Creates a manual run of `dag_id` at its latest version: `run_id` NULL means
 * "manual__<logical date>"; `logical_date` TS_NONE means now; `conf` (borrowed, may be
 * NULL) is validated against the DAG's params (unknown keys allowed, types checked) and
 * merged over the defaults. The run starts queued; out (may be NULL) receives it.
 * -WEIR_ECONFLICT for a duplicate run id, -WEIR_ENOTFOUND for an unknown DAG. */
int sched_trigger(struct store *st, const char *dag_id, const char *run_id, int64_t logical_date,
                  json_t *conf, const char *note, struct store_run *out, struct weir_err *err);

/* Creates backfill runs for every schedule time t with from <= t <= to (logical dates),
 * skipping those that exist already. *created (may be NULL) gets the count. */
int sched_backfill(struct store *st, const char *dag_id, int64_t from, int64_t to,
                   json_t *conf, int *created, struct weir_err *err);

/* Clears a task instance so it runs again: state back to none (try_number kept, so the
 * next try counts on), max_tries extended by the task's retries; with `downstream`, every
 * task downstream of it too; the run goes back to queued if it had finished. *cleared (may
 * be NULL) gets the number of task instances cleared. */
int sched_clear(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                bool downstream, int *cleared, struct weir_err *err);

/* Sets a task instance's state by hand (mark success / failed); the run is re-evaluated by
 * the scheduler. */
int sched_mark(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
               const char *state, struct weir_err *err);

/* ---- the scheduling loop ---------------------------------------------------------------- */

/* One try to start. Everything is borrowed for the call. */
struct sched_launch {
    const char *dag_id, *run_id, *task_id;
    int try_number;
    int max_tries;            /* the task instance's */
    int64_t version;          /* the DAG version the run pinned */
    int64_t timeout_us;       /* 0: none */
    const char *pool;
    const struct store_run *run;
};

/* How the scheduler reaches an executor (wired by the CLI). */
struct sched_executor {
    /* Start one try; 0, -WEIR_EUNAVAIL (no slot), or another negative code. */
    int (*launch)(void *ud, const struct sched_launch *l, struct weir_err *err);
    int (*slots_free)(void *ud);
    /* Whether this executor is running that try right now (for adopting and zombies). */
    bool (*is_running)(void *ud, const char *dag_id, const char *run_id, const char *task_id,
                       int try_number);
    void *ud;
};

struct sched_opts {
    const char *dags_folder;      /* NULL: do not watch any folder */
    struct sched_ops ops;         /* operator lookup for parsing */
    struct sched_executor exec;
    bool paused_on_create;        /* new DAGs start paused */
    int64_t zombie_timeout_us;    /* running try without heartbeat for this long: failed */
    int64_t sweep_interval_us;    /* safety-net sweep period */
    const char *only_dag;         /* `weir dags test`: schedule only this DAG's runs */
    bool no_cron;                 /* do not create scheduled runs (dags test, backfill) */
    const char *wake_file;        /* other processes (the CLI) write it after changing the
                                     store; the scheduler watches it. NULL: none */
    /* Optional: called on the loop thread when this scheduler finished a run (its state is
     * stored), so a caller waiting for runs need not poll. */
    void (*run_finished)(void *ud, const char *dag_id, const char *run_id);
    void *run_finished_ud;
};

struct sched;

/* Creates the scheduler on `loop` with its own store connection `st` (borrowed; used only
 * on the loop thread). Syncs the DAG folder, recovers state left by a previous process
 * (queued tries that never started go back to scheduled; running tries whose process is
 * gone become failed or up_for_retry), and starts watching. NULL on failure. */
struct sched *sched_new(uv_loop_t *loop, struct store *st, const struct sched_opts *opts,
                        struct weir_err *err);

/* The executor reports a finished try (loop thread). Exit status 4 means the runner could
 * not claim the try because another process holds it (after a restart, the orphaned
 * runner of the previous scheduler): nothing ran, so it is not that try's failure. */
void sched_task_exited(struct sched *s, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, int64_t exit_status,
                       int term_signal, bool timed_out);

/* Wakes the scheduler to re-read the store (a run was triggered, a task cleared...).
 * Any thread; coalesces. */
void sched_wake(struct sched *s);

/* True when `dag_id`'s run `run_id` has finished (for `weir dags test`); *state gets it. */
bool sched_run_finished(struct sched *s, const char *dag_id, const char *run_id, int *state);

/* Stops timers and watchers; the scheduler is freed once its handles are closed. */
void sched_close(struct sched *s);

/* Prometheus-style counters for /metrics, as a JSON object of name -> number. New ref. */
json_t *sched_stats(const struct sched *s);

#endif
