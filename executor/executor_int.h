/* executor/executor_int.h - declarations shared by the executor's own .c files: the
 * executor kinds' operation table, and the task context every host function receives.
 * No other module includes this file (unit tests of the executor may). */
#ifndef WEIR_EXECUTOR_EXECUTOR_INT_H
#define WEIR_EXECUTOR_EXECUTOR_INT_H

#include <stdarg.h>

#include "executor/executor.h"
#include "weir/plugin.h"

/* ---- executor kinds (exec.c dispatches to these) ---------------------------------- */

struct exec_ops {
    int (*launch)(struct exec *ex, const struct exec_task *t, struct weir_err *err);
    int (*slots_free)(const struct exec *ex);
    int (*running)(const struct exec *ex);
    bool (*is_running)(const struct exec *ex, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number);
    void (*close)(struct exec *ex, bool kill_running);
};

/* The first member of every executor kind's struct. */
struct exec {
    const struct exec_ops *ops;
};

/* ---- host function table ---------------------------------------------------------- */

/* What a task context must implement. The table in plugins.c (exec__host) forwards each
 * host function to ctx->ops, so the registry does not depend on the runner (and tests can
 * drive plugins with a context of their own). */
struct exec_ctx_ops {
    void (*vlog)(struct weir_task_ctx *ctx, enum weir_log_level level, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
    int (*vfail)(struct weir_task_ctx *ctx, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
    int (*xcom_push)(struct weir_task_ctx *ctx, const char *key, json_t *value);
    json_t *(*xcom_pull)(struct weir_task_ctx *ctx, const char *task_id, const char *key);
    json_t *(*conn_get)(struct weir_task_ctx *ctx, const char *conn_id);
    json_t *(*var_get)(struct weir_task_ctx *ctx, const char *key);
    int (*cancelled)(struct weir_task_ctx *ctx);
    void (*progress)(struct weir_task_ctx *ctx, double fraction, const char *msg);
    json_t *(*context)(struct weir_task_ctx *ctx);
    char *(*render)(struct weir_task_ctx *ctx, const char *tmpl);
};

/* The host's per-task state starts with this (plugin.h keeps it opaque). */
struct weir_task_ctx {
    const struct exec_ctx_ops *ops;
};

/* The one host table handed to plugins (static lifetime). */
const struct weir_host *exec__host(void);

/* How many plugin files the registry has tried to open so far (for tests of lazy loading). */
size_t exec__plugins_opened(const struct exec_plugins *reg);

/* Finds task `task_id` in the text of a DAG doc without parsing the rest: *task gets the
 * task object and *params the doc's params ({} when absent), both new references.
 * -WEIR_ENOTFOUND when no task has that id, -WEIR_EINVAL when the text is not a JSON
 * object of the expected shape (callers may fall back to json_loads). */
int exec__doc_task(const char *text, size_t len, const char *task_id, json_t **task,
                   json_t **params, struct weir_err *err);

/* Parses a connection URI (Airflow's form: scheme://login:password@host:port/schema?k=v,
 * parts percent-decoded, '-' in the scheme read as '_', `__extra__` holding JSON extra) or
 * a JSON object into {"conn_id","conn_type","host","port","login","password","schema",
 * "extra"} (missing parts absent). Returns a new reference, or NULL with `err` filled. */
json_t *exec__conn_parse(const char *conn_id, const char *text, struct weir_err *err);

/* ---- recording a try (ctl.c) ------------------------------------------------------------ */

struct store;
struct store_run;
struct store_ti_update;

/* The claim: queued|scheduled at try N-1 -> running at try N for process `pid` of this host,
 * with the task instance's XComs cleared, in one transaction. *max_tries gets the stored
 * max_tries when there is one. A task instance already running at try N for this pid and
 * host counts as claimed (the executor claimed it and its answer was lost).
 * -WEIR_ECONFLICT when it is in another state or try. */
int exec__claim_store(struct store *st, const char *dag_id, const char *run_id,
                      const char *task_id, int try_number, int pid, int *max_tries,
                      struct weir_err *err);
/* The end: the try's remaining log lines and the CAS running at try N -> u->to, in one
 * transaction. Returns 0 also when exactly this end is already stored; -WEIR_ECONFLICT /
 * -WEIR_ENOTFOUND when the task instance left running (the lines are still stored). */
int exec__finish_store(struct store *st, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, const struct store_ti_update *u,
                       const char *const *lines, const int64_t *ts, size_t n,
                       struct weir_err *err);
/* The claim's usual case alone (queued at try N-1 -> running at try N, XComs cleared),
 * inside the caller's transaction: nothing is rolled back here. -WEIR_ECONFLICT when the
 * task instance is not queued at try N-1 (then nothing was written). */
int exec__claim_queued(struct store *st, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, int pid, struct weir_err *err);
json_t *exec__run_to_json(const struct store_run *r);
int exec__run_from_json(json_t *j, struct store_run *out, struct weir_err *err);

/* The control channel between forked tries and the local executor (abstract Unix socket
 * `name`, JSON messages framed by a 4-byte length). Listen: a non-blocking listening fd or
 * a negative WEIR_E*. Connect: a blocking fd or -1. Frame: the framed bytes of `msg`
 * (free them). Call: sends `req`, waits for the answer; NULL when the channel failed. */
int exec__ctl_listen(const char *name, struct weir_err *err);
int exec__ctl_connect(const char *name);
char *exec__ctl_frame(json_t *msg, size_t *len);
json_t *exec__ctl_call(int fd, json_t *req);
/* Heartbeat interval when none is configured (scheduler.heartbeat_interval's default). */
#define EXEC_DEFAULT_HEARTBEAT_US (5 * INT64_C(1000000))

/* The control socket name of a local executor, NULL when it has none (for tests). */
const char *exec__local_ctl_name(const struct exec *ex);

/* Scratch folders (workdir.c). New: a fresh private folder under $TMPDIR (or /tmp), NULL
 * with errno set. Reusable: still a private directory of ours (not a link, mode 0700) and
 * empty. Remove: the folder and anything in it. */
char *exec__workdir_new(void);
bool exec__workdir_reusable(const char *dir);
void exec__workdir_remove(const char *dir);

/* SIGKILLs every process of session `sid` but `sid` itself (kill.c). */
void exec__kill_session(int sid);

/* Whether a plugin declares WEIR_PLUGIN_REUSABLE (with a descriptor that has the field). */
bool exec__plugin_reusable(const struct weir_plugin *p);

/* The signal (SIGTERM, SIGINT) that cancelled the last try exec_task_run ran in this
 * process, 0 if none did: such a process is not given another try. */
int exec__runner_signal(void);
/* Whether the end of the last try exec_task_run ran in this process was recorded by the
 * executor over the control channel (it then knows the try is over). */
bool exec__runner_told_executor(void);

#endif
