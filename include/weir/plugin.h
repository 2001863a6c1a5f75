/* weir/plugin.h - the weir plugin ABI: the one header a plugin author needs.
 *
 * A plugin is a shared object that exports exactly one function, weir_plugin_init. The
 * host dlopens it (RTLD_NOW | RTLD_LOCAL), calls weir_plugin_init with its function table
 * and gets back a static description: ABI version, size, name, version, and operators.
 * The host refuses a plugin whose `abi` differs from WEIR_PLUGIN_ABI or whose `size` is
 * too small, naming the file and both versions.
 *
 * Rules (see docs/plugins.md):
 * - Both structs start with `uint32_t abi; uint32_t size;`. Fields are only ever appended;
 *   each side checks `size` before reading a newer field. Removing, reordering or changing
 *   a field's type or meaning increments WEIR_PLUGIN_ABI.
 * - A plugin calls the host only through `struct weir_host` and never links against host
 *   symbols. It never calls exit() or abort(): it returns a WEIR_TASK_* code.
 * - Nothing is freed across the boundary, except JSON values: plugin and host share the
 *   process's one libjansson, and reference counting works as documented per function.
 * - Host functions may only be called from the thread that entered `run` (or threads it
 *   waits for before returning), with the `ctx` that `run` received.
 */
#ifndef WEIR_PLUGIN_H
#define WEIR_PLUGIN_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEIR_PLUGIN_ABI 1u

/* The name of the one exported symbol. */
#define WEIR_PLUGIN_ENTRY "weir_plugin_init"

#if defined(__GNUC__)
#define WEIR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WEIR_PLUGIN_EXPORT
#endif

/* Results of weir_operator.run. */
enum weir_task_result {
    WEIR_TASK_SUCCESS = 0,       /* the task succeeded */
    WEIR_TASK_FAILED = 1,        /* failed; retried if the task has retries left */
    WEIR_TASK_SKIPPED = 2,       /* nothing to do: the task instance becomes skipped */
    WEIR_TASK_FAILED_NO_RETRY = 3 /* failed and retrying cannot help (bad parameters) */
};

enum weir_log_level { WEIR_LOG_ERROR = 0, WEIR_LOG_WARN = 1, WEIR_LOG_INFO = 2, WEIR_LOG_DEBUG = 3 };

/* The host's per-task state; opaque to plugins. */
struct weir_task_ctx;

struct weir_host {
    uint32_t abi;  /* WEIR_PLUGIN_ABI of the host */
    uint32_t size; /* sizeof(struct weir_host) in the host */

    /* Writes one line to the task's log (stored per try, secrets masked). */
    void (*log)(struct weir_task_ctx *ctx, enum weir_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Records why the task failed: the message becomes the final log line and the task's
     * error. Returns WEIR_TASK_FAILED so `return host->fail(ctx, "...")` reads naturally. */
    int (*fail)(struct weir_task_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    /* Pushes an XCom for this task instance. Borrows `value` (the host copies it).
     * Returns 0, or -1 on failure (logged by the host). */
    int (*xcom_push)(struct weir_task_ctx *ctx, const char *key, json_t *value);
    /* Pulls the XCom `key` of task `task_id` in the same run. Returns a new reference the
     * plugin must json_decref, or NULL if there is none. */
    json_t *(*xcom_pull)(struct weir_task_ctx *ctx, const char *task_id, const char *key);

    /* Looks up a connection (store, or the WEIR_CONN_<ID> environment variable as a URI).
     * Returns a new reference to an object {"conn_id","conn_type","host","port","login",
     * "password","schema","extra"} (missing parts absent), or NULL if unknown. Passwords
     * returned here are registered as secrets and masked in logs. */
    json_t *(*conn_get)(struct weir_task_ctx *ctx, const char *conn_id);
    /* Looks up a variable (store, or WEIR_VAR_<KEY>). Returns a new reference to a JSON
     * string, or NULL if unknown. */
    json_t *(*var_get)(struct weir_task_ctx *ctx, const char *key);

    /* Non-zero once the task should stop (timeout, kill, shutdown). Long-running operators
     * poll it and return WEIR_TASK_FAILED promptly. */
    int (*cancelled)(struct weir_task_ctx *ctx);
    /* Reports progress (0..1, or < 0 if unknown) with an optional short message. */
    void (*progress)(struct weir_task_ctx *ctx, double fraction, const char *msg);

    /* The run context as a borrowed object valid during `run`: dag_id, run_id, task_id,
     * try_number, max_tries, logical_date, ds, ds_nodash, ts, ts_nodash,
     * data_interval_start, data_interval_end, params, conf, and "workdir" (a scratch
     * folder for this try, removed afterwards). */
    json_t *(*context)(struct weir_task_ctx *ctx);

    /* Renders a template string with the task's context (as {{ ... }} in DAG files do).
     * Returns a new heap string to release with host->free, or NULL after logging why. */
    char *(*render)(struct weir_task_ctx *ctx, const char *tmpl);
    /* Releases memory the host allocated for the plugin (render results). NULL-safe. */
    void (*free)(void *p);
};

struct weir_operator {
    const char *name;    /* e.g. "run": referenced in DAG files as "<plugin>.<name>" */
    const char *summary; /* one line for `weir plugins list` */
    /* The parameters, as JSON text: an object mapping each parameter name to
     * {"type": "string"|"integer"|"number"|"boolean"|"object"|"array"|"any",
     *  "required": true|false, "default": ..., "description": "..."}.
     * The host rejects unknown parameters, missing required ones and wrong types (after
     * template rendering) before calling `run`, and fills in defaults. */
    const char *params_schema;
    /* Runs the operator. `params` is the rendered, validated `with` object (borrowed).
     * Returns a WEIR_TASK_* value. */
    int (*run)(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params);
};

struct weir_plugin {
    uint32_t abi;        /* WEIR_PLUGIN_ABI the plugin was built with */
    uint32_t size;       /* sizeof(struct weir_plugin) in the plugin */
    const char *name;    /* [a-z0-9_]+, unique among loaded plugins */
    const char *version;
    const char *summary;
    uint32_t n_operators;
    const struct weir_operator *operators;
    /* WEIR_PLUGIN_* flags (appended: the host reads them only when `size` covers them). */
    uint32_t flags;
};

/* The plugin's operators leave nothing behind in the process that runs them: no threads,
 * open files, changed environment, working directory, signal dispositions or umask, and no
 * state in statics that a later try would see. The local executor may then run several
 * tries of them, one after another, in one process instead of forking one per try. Tries
 * of a task with `env` and tries that were cancelled are never followed by another. */
#define WEIR_PLUGIN_REUSABLE 1u

typedef const struct weir_plugin *(*weir_plugin_init_fn)(const struct weir_host *host);

/* The entry point every plugin defines (and exports, as its only symbol). Returns a
 * description with static lifetime, or NULL if the plugin cannot work with this host
 * (it may check host->abi and host->size first). */
WEIR_PLUGIN_EXPORT const struct weir_plugin *weir_plugin_init(const struct weir_host *host);

#ifdef __cplusplus
}
#endif

#endif
