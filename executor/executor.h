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
#include <uv.h>

struct weir_err;
struct weir_operator;
struct weir_plugin;
struct store;

/* ---- plugin registry ------------------------------------------------------------- */

struct exec_plugins;

/* Loads all plugins found in `path` (directories separated by ':'; files named
 * weir_<name>.so). A plugin that fails to load (missing symbol, wrong ABI, init returned
 * NULL, duplicate name) does not stop the others: its error is kept and listed by
 * exec_plugins_errors. Never NULL. Plugins stay loaded until exec_plugins_free. */
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

/* ---- task runner ----------------------------------------------------------------- */

struct exec_task_opts {
    const char *dag_id, *run_id, *task_id;
    int try_number;       /* the try to run (1-based) */
    bool test;            /* `weir tasks test`: run without touching task state (logs go
                             to stderr, XComs are not stored) */
    int64_t heartbeat_us; /* heartbeat interval (0: 5 s) */
};

/* Runs one try of a task in this process and records everything in the store. The task
 * instance must be queued (or scheduled) with try_number == opts->try_number - 1 (the
 * runner moves it to running, making a second runner of the same try fail with
 * -WEIR_ECONFLICT). Returns the process exit code to use: 0 success, 1 failed (state
 * failed or up_for_retry written), 2 skipped... see docs/architecture.md; a negative WEIR_E*
 * code when the try could not even start (err filled, state untouched). */
int exec_task_run(struct store *st, const struct exec_plugins *reg,
                  const struct exec_task_opts *opts, struct weir_err *err);

/* ---- executors --------------------------------------------------------------------- */

/* What an executor is asked to run. Strings are borrowed for the call. */
struct exec_task {
    const char *dag_id, *run_id, *task_id;
    int try_number;
    int64_t timeout_us; /* 0: none */
    const char *pool;
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
    const char *weir_exe; /* absolute path of the weir binary to run `tasks run` with */
    int parallelism;      /* max concurrent tries; 0 = number of cores */
    int64_t kill_grace_us; /* SIGTERM -> SIGKILL delay on timeout (0: 5 s) */
};

/* Creates a local executor on `loop` (the caller runs the loop). `done` is called on the
 * loop thread once per launched try. NULL on failure. */
struct exec *exec_local_new(uv_loop_t *loop, const struct exec_local_opts *opts, exec_done_fn done,
                            void *ud, struct weir_err *err);

/* Starts one try. Returns 0 (done will be called later), -WEIR_EUNAVAIL when no slot is
 * free, or another negative WEIR_E* code (done will NOT be called). Loop thread only. */
int exec_launch(struct exec *ex, const struct exec_task *t, struct weir_err *err);
/* How many more tries may start now. */
int exec_slots_free(const struct exec *ex);
/* How many tries are running. */
int exec_running(const struct exec *ex);
/* Whether a try with this key is currently running in this executor. */
bool exec_is_running(const struct exec *ex, const char *dag_id, const char *run_id,
                     const char *task_id, int try_number);
/* Stops accepting work and closes the handles. Running children are left running (they
 * finish on their own and record their state in the store; the next scheduler adopts
 * them) unless `kill_running`, which kills their process groups. The executor is freed
 * once its handles are closed; run the loop until then. */
void exec_close(struct exec *ex, bool kill_running);

#endif
