/* cli/cli.h - the command groups of the weir binary and what they share; main.c dispatches
 * argv[1] to them. Each returns the process exit code: 0 success, 1 the operation failed
 * (a failed run, a task error), 2 usage error (bad flags or arguments, invalid input),
 * 3 not found, 4 conflict, 5 store unavailable. Errors go to stderr as "weir: <message>". */
#ifndef WEIR_CLI_CLI_H
#define WEIR_CLI_CLI_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

struct weir_err;
struct cfg;
struct store;
struct exec_plugins;

enum cli_exit {
    CLI_OK = 0,
    CLI_FAILED = 1,
    CLI_USAGE = 2,
    CLI_NOTFOUND = 3,
    CLI_CONFLICT = 4,
    CLI_UNAVAIL = 5,
};

/* CLI_NEED_SYNC: also parse the DAG folder into the store (implies store and plugins), so
 * listings are fresh without a running scheduler. */
enum cli_need { CLI_NEED_STORE = 1u << 0, CLI_NEED_PLUGINS = 1u << 1, CLI_NEED_SYNC = 1u << 2 };

/* What a command works with; filled by cli_env_open, released by cli_env_close. */
struct cli_env {
    struct cfg *cfg;
    struct store *st;
    struct exec_plugins *plugins;
    char exe[PATH_MAX]; /* absolute path of this weir binary */
    char dags_folder[PATH_MAX];
    char wake_file[PATH_MAX]; /* touched after changes so a running scheduler wakes up */
};

/* Loads the configuration and opens what `need` asks for (the store is migrated). On
 * failure prints the error and returns the exit code to use; 0 on success. */
int cli_env_open(struct cli_env *e, unsigned need);
void cli_env_close(struct cli_env *e);

/* The operator lookup for the DAG parser over a plugin registry (`ud`). */
bool cli_op_find(void *ud, const char *ref, const char **schema);

/* Prints "weir: <loc>: <msg>" and returns the exit code for the WEIR_E* code `rc`. */
int cli_fail(int rc, const struct weir_err *err);
/* Prints "weir: <formatted>" and returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints `v` as indented JSON on stdout, then a newline. Steals nothing. */
void cli_print_json(json_t *v);
/* Tells a running scheduler that the store changed (touches the wake file). */
void cli_notify(const struct cli_env *e);
/* Option parsing helpers: returns true and advances *i when argv[*i] is `name`
 * (with a value in *val when want_val; missing value -> *bad = true). */
bool cli_opt(int argc, char **argv, int *i, const char *name, bool want_val, const char **val,
             bool *bad);
/* Parses a time argument (RFC 3339 or a date) in UTC; prints an error on failure. */
bool cli_time_arg(const char *s, int64_t *out);

int cli_cron_main(int argc, char **argv);
int cli_dags_main(int argc, char **argv);
int cli_runs_main(int argc, char **argv);
int cli_tasks_main(int argc, char **argv);
int cli_serve_main(int argc, char **argv); /* standalone, scheduler */
int cli_db_main(int argc, char **argv);
int cli_plugins_main(int argc, char **argv);
/* `weir webserver [--host ADDR] [--port N]` and `weir users ...` (cli/web.c). */
int cli_webserver_main(int argc, char **argv);
int cli_users_main(int argc, char **argv);

struct web_opts;
/* Fills `o` from the configuration (webserver.host/port, store.url, the DAG folder). */
int cli_web_opts(struct cli_env *e, struct web_opts *o);
/* On a store without users, creates 'admin' with a random password and prints it once on
 * stdout. Returns 0 or a negative WEIR_E* code with `err` filled. */
int cli_ensure_admin(struct cli_env *e, struct weir_err *err);

/* Runs an in-process scheduler with a local executor until the runs listed in `runs`
 * (array of [dag_id, run_id]) have finished; returns how many failed, or a negative
 * WEIR_E* code. Used by `dags test` and `dags backfill --wait`. */
int cli_run_until_done(struct cli_env *e, const char *only_dag, json_t *runs,
                       struct weir_err *err);

/* `weir sql [--db DIR] [-c SQL | -f FILE] [--format table|csv|jsonl|markdown] [--timing]`
 * and the interactive warehouse shell (cli/sql.c). argv[0] is "sql". */
int cli_sql_main(int argc, char **argv);

#endif
