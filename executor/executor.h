/* executor/executor.h - where task processes run, and what runs inside them.
 *
 * Three parts:
 * 1. The plugin registry: loads every weir_*.so from the plugin path with dlopen, checks
 *    the ABI, and finds operators by "plugin.operator".
 * 2. The task runner (the body of `weir tasks run DAG TASK RUN_ID --try N`): loads the
 *    pinned DAG version from the store, renders the task's `with`, validates it against
 *    the operator's schema, calls the operator, and writes log lines (timestamped, secrets
 *    masked), XComs, heartbeats and the final state to the store.
 * 3. Executors: the local executor starts each try as a child process in its own process
 *    group through libuv, bounded by `parallelism`, kills the whole group on timeout, and
 *    reports each exit on the loop thread. Queue and Kubernetes executors will implement
 *    the same `struct exec` operations.
 */
#ifndef WEIR_EXECUTOR_EXECUTOR_H
#define WEIR_EXECUTOR_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct weir_err;
struct weir_operator;
struct weir_plugin;
struct store;
struct store_run;

/* ---- plugin registry ------------------------------------------------------------- */

struct exec_plugins;

/* A registry of the plugins found in `path` (directories separated by ':', missing ones
 * skipped; files named weir_*.so, in path order then name order; NULL: none). Files are
 * opened lazily: exec_plugins_find opens weir_<plugin>.so first and every other file only
 * if that does not provide the plugin (a task runner pays for one dlopen), while
 * exec_plugins_to_json and exec_plugins_errors open them all. A plugin that fails to load
 * (missing symbol, wrong ABI, init returned NULL, bad descriptor, duplicate name) does not
 * stop the others: its error is logged, kept and listed by exec_plugins_errors. Never
 * NULL. Plugins stay loaded until exec_plugins_free. The registry functions are
 * thread-safe (a mutex guards the lazy loads). */
struct exec_plugins *exec_plugins_load(const char *path);
void exec_plugins_free(struct exec_plugins *reg);

/* Loads one plugin file. Returns 0 or a negative WEIR_E* code with `err` naming the file
 * (and, for an ABI mismatch, both versions). Used by exec_plugins_load and tests. */
int exec_plugins_add_file(struct exec_plugins *reg, const char *file, struct weir_err *err);

/* Finds "plugin.operator". Returns the operator (borrowed; valid until the registry is
 * freed) and sets *plugin if not NULL; NULL if unknown. */
const struct weir_operator *exec_plugins_find(const struct exec_plugins *reg, const char *ref,
                                              const struct weir_plugin **plugin);

/* JSON array of {"name","version","summary","file","operators":[{"name","summary",
 * "params": {...schema...}}]} for `weir plugins list --json`. New reference. */
json_t *exec_plugins_to_json(const struct exec_plugins *reg);
/* JSON array of {"file","error"} for plugins that failed to load. New reference. */
json_t *exec_plugins_errors(const struct exec_plugins *reg);

/* Validates an operator's parameters (`params`: the rendered `with` object, borrowed; NULL
 * or null means {}) against `schema_text` (struct weir_operator.params_schema: an object of
 * name -> {"type","required","default","description"}; NULL means no parameters).
 * Unknown names, missing required ones and wrong types are refused. Strings produced by
 * templates are converted when the schema asks for another type and the text spells a value
 * of it ("5" -> 5 for "integer"/"number", "true"/"false" for "boolean", JSON text for
 * "object"/"array"). A null value counts as absent. On success *out is a new object with
 * defaults filled in; otherwise -WEIR_EINVAL with err naming the parameter. Any thread. */
int exec_params_validate(const char *schema_text, json_t *params, json_t **out,
                         struct weir_err *err);

/* ---- task runner ----------------------------------------------------------------- */

struct exec_task_opts {
    const char *dag_id, *run_id, *task_id;
    int try_number;       /* the try to run (1-based) */
    bool test;            /* `weir tasks test`: run without touching task state (logs go
                             to stderr, XComs are not stored) */
    int64_t heartbeat_us; /* heartbeat interval (0: 5 s) */
    /* URL of the store `st` was opened with: the heartbeat and log-flush thread opens its
     * own connection with it (a connection is never shared between threads). NULL: no
     * background thread (log lines are written as they come, no heartbeats). */
    const char *store_url;
    /* Optional: the parsed DAG doc of version `doc_version` (borrowed). When the run pinned
     * that version, the runner uses it instead of reading and scanning the stored text
     * (the fork server parses each version once; its children inherit it). */
    json_t *doc;
    int64_t doc_version;
    /* Optional: the local executor's control channel (executor/ctl.c). With it, `st` may
     * be NULL: the executor records the claim and the end on its own connection, and the
     * runner opens one (from store_url) only when the try needs it or the channel fails. */
    const char *ctl;
    /* Optional: that channel already connected (a worker of the fork server keeps one for
     * all its tries), used when ctl_conn is set instead of connecting. The runner never
     * closes it; when it fails, the runner shuts it down (its owner then sees it closed
     * and connects again) and goes on without it. */
    bool ctl_conn;
    int ctl_fd;
    /* Optional hints from the executor, sparing the try a read: the run as JSON
     * (exec__run_to_json) and the task instance's max_tries (0: unknown). */
    const char *run_json;
    int max_tries;
    /* Optional: a scratch folder lent by the fork server (process `workdir_owner`, the
     * try's parent), empty and private, used instead of making one. The try leaves it empty
     * for the next try (or removes it if its parent is no longer the owner). NULL: the try
     * makes its own and removes it. */
    const char *workdir;
    pid_t workdir_owner;
};

/* Exit codes of `weir tasks run` (what exec_task_run returns when the try ran). The store
 * holds the truth; the code lets an executor log something meaningful. Codes 2..5 are the
 * CLI's usage / not found / conflict / unavailable codes (cli/cli.h) for a try that could
 * not start; the runner's own codes avoid them. */
enum exec_exit {
    EXEC_EXIT_SUCCESS = 0,  /* state success written */
    EXEC_EXIT_FAILED = 1,   /* state failed or up_for_retry written */
    EXEC_EXIT_SKIPPED = 10, /* state skipped written */
    EXEC_EXIT_LOST = 11,    /* the operator finished but the task instance had left running
                               (marked, cleared or failed as a zombie meanwhile): nothing
                               written */
};

/* Runs one try of a task in this process and records everything in the store. The task
 * instance must be queued (or scheduled) with try_number == opts->try_number - 1 (the
 * runner moves it to running, making a second runner of the same try fail with
 * -WEIR_ECONFLICT). Returns an enum exec_exit value once the try ran (its state, logs and
 * XComs are in the store), or a negative WEIR_E* code when the try could not even start
 * (err filled, state untouched): the run, the DAG version or the task does not exist
 * (-WEIR_ENOTFOUND), the task instance is not queued/scheduled at try N-1
 * (-WEIR_ECONFLICT), the store is unreachable (-WEIR_EUNAVAIL), SIGTERM arrived before
 * the claim (-WEIR_EUNAVAIL). Also negative, after the try ran, when the store stayed
 * unreachable for the final state (the instance stays running until the scheduler's
 * zombie check ends it).
 * Templates in `with` and `env` see the context listed in docs/plugins.md (ds, ts, params =
 * DAG defaults overridden by the run's conf, var('k'), xcom('task'[, 'key']), ...); `env`
 * is set in the process environment before the operator runs. XComs of the task instance
 * are cleared when the try starts.
 * Failures inside the try (unknown operator, template error, invalid parameters, the
 * operator failing) are written to the task log and end in failed / up_for_retry;
 * invalid parameters are not retried. SIGTERM and SIGINT during the try make
 * host->cancelled() true, as does the task instance leaving `running` in the store.
 * With opts->test nothing is written: lines go to stderr, XComs stay in memory, and the
 * task instance need not exist. Main thread of the process (it installs signal handlers
 * for the duration of the call and sets the task's `env` in the process environment). */
int exec_task_run(struct store *st, const struct exec_plugins *reg,
                  const struct exec_task_opts *opts, struct weir_err *err);

/* The fork server's main loop (the body of the hidden `weir tasks fork-server`): reads
 * RUN requests on stdin, forks one child per try (its own session; it opens its own store
 * connection to `store_url` and runs exec_task_run), and reports STARTED/EXITED lines on
 * stdout. Returns when stdin closes, leaving running children alone. Single-threaded:
 * call it in a process that has started no threads. */
int exec_forkserver_main(const struct exec_plugins *reg, const char *store_url, int64_t hb_us,
                         const char *ctl);

/* ---- executors --------------------------------------------------------------------- */

/* What an executor is asked to run. Strings are borrowed for the call. */
struct exec_task {
    const char *dag_id, *run_id, *task_id;
    int try_number;
    int64_t timeout_us; /* 0: none */
    const char *pool;
    int64_t version;    /* the DAG version the run pinned, 0 if unknown (a hint) */
    int max_tries;      /* the task instance's, 0 if unknown (a hint) */
    const struct store_run *run; /* the run, NULL if unknown (a hint: the try reads it) */
};

/* Why a try's process ended, reported on the loop thread. */
struct exec_event {
    const char *dag_id, *run_id, *task_id; /* borrowed for the callback */
    int try_number;
    int64_t exit_status; /* exit code, or -1 if killed by a signal */
    int term_signal;     /* the signal, or 0 */
    bool timed_out;      /* the executor killed it at its timeout */
};
typedef void (*exec_done_fn)(void *ud, const struct exec_event *ev);

struct exec;

struct exec_local_opts {
    const char *weir_exe;  /* absolute path of the weir binary to run `tasks run` with */
    int parallelism;       /* max concurrent tries; 0 = number of cores */
    int64_t kill_grace_us; /* SIGTERM -> SIGKILL delay on timeout (0: 5 s) */
    /* Start tries through a fork server (`<weir_exe> tasks fork-server`, see
     * exec_forkserver_main) instead of exec'ing `tasks run` for each: same isolation,
     * a fraction of the cost. Falls back to exec if the server cannot start or dies. */
    bool fork_server;
    /* Optional: a store connection of the loop thread (the scheduler's). With it, tries
     * forked by the fork server ask the executor to record their claim and their end on
     * it (one round trip each on a local socket) instead of each opening a connection of
     * its own; a try whose executor is gone records them itself. Borrowed: it must outlive
     * the executor. */
    struct store *store;
    /* With `store`: how often the executor writes the heartbeats of the tries it forked
     * (0: 5 s), so that a short try needs no heartbeat thread (docs/architecture.md). */
    int64_t heartbeat_us;
};

/* Creates a local executor on `loop` (the caller runs the loop). `done` is called on the
 * loop thread once per launched try. NULL on failure. */
struct exec *exec_local_new(uv_loop_t *loop, const struct exec_local_opts *opts, exec_done_fn done,
                            void *ud, struct weir_err *err);

/* Starts one try: the local executor runs `<weir_exe> tasks run DAG TASK RUN_ID --try N`
 * detached in its own session (process group = its pid) with the scheduler's environment,
 * stdin from nothing and stdout/stderr to the scheduler's stderr. A positive timeout_us
 * sends SIGTERM to the whole group when it passes, then SIGKILL after kill_grace (the
 * event then has timed_out set; the timeout counts from the start, not from the launch of
 * a try that waited for a slot). Returns 0 (done will be called later), -WEIR_EUNAVAIL
 * when neither a slot nor room among the waiting tries is free (exec_slots_free), or
 * another negative WEIR_E* code (done will NOT be called).
 * Loop thread only; `t` is copied. */
int exec_launch(struct exec *ex, const struct exec_task *t, struct weir_err *err);
/* How many more tries may be launched now: free slots, plus room among the tries waiting
 * for one (the local executor accepts up to `parallelism` of them; each starts the moment
 * a slot frees, without a round trip through the scheduler). */
int exec_slots_free(const struct exec *ex);
/* How many tries are running. */
int exec_running(const struct exec *ex);
/* Whether a try with this key is currently running in this executor. */
bool exec_is_running(const struct exec *ex, const char *dag_id, const char *run_id,
                     const char *task_id, int try_number);
/* Stops accepting work and closes the handles. Running children are left running (they
 * finish on their own and record their state in the store; the next scheduler adopts
 * them) unless `kill_running`, which kills their process groups with SIGKILL and reaps
 * them. `done` is not called after exec_close. The executor is freed once its handles
 * are closed; run the loop until then. Loop thread only. */
void exec_close(struct exec *ex, bool kill_running);

#endif
