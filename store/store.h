/* store/store.h - weir's one persistence interface: DAGs (versioned JSON), runs, task
 * instances, logs, XComs, variables, connections, pools. Backends: SQLite (WAL) for
 * "sqlite:///abs/path.db" (or "sqlite://relative.db") and PostgreSQL (libpq) for
 * "postgresql://..." / "postgres://..." URLs. Schema changes are numbered migrations.
 *
 * Threads: a `struct store` is one connection; use it from one thread at a time. Every
 * thread, process and pool slot opens its own.
 * Transactions: every state-changing call below is atomic on its own (one transaction).
 * store_begin/commit/rollback group several calls into one transaction; inside them the
 * calls join the outer transaction instead of opening their own.
 * Times are int64_t microseconds since the epoch, UTC; TS_NONE (INT64_MIN) means NULL.
 * Errors: negative WEIR_E* codes with `err` filled; WEIR_EUNAVAIL when the database
 * cannot be reached (retry later), WEIR_ECONFLICT for duplicates and lost CAS races.
 * Strings in result structs are owned by the struct; free with the named _free. */
#ifndef WEIR_STORE_STORE_H
#define WEIR_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weir_err;
struct store;

/* ---- lifecycle ------------------------------------------------------------------- */

/* Opens a connection to `url`. Does not migrate. NULL on failure (err says why, without
 * the password). */
struct store *store_open(const char *url, struct weir_err *err);
void store_free(struct store *st);
/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *st);

/* Applies every pending numbered migration, each in its own transaction. Sets *applied
 * (may be NULL) to how many ran. Safe to call concurrently from several processes. */
int store_migrate(struct store *st, int *applied, struct weir_err *err);
/* The highest applied migration number (0 for an empty database). */
int store_schema_version(struct store *st, int *version, struct weir_err *err);
/* The highest migration number this build knows. */
int store_schema_latest(void);

int store_begin(struct store *st, struct weir_err *err);
int store_commit(struct store *st, struct weir_err *err);
/* Never fails from the caller's view; safe to call when no transaction is open. Rolls the
 * whole transaction back even when called at an inner nesting level; the outer levels'
 * later calls and their store_commit then fail with -WEIR_ECONFLICT. On PostgreSQL a
 * database error inside store_begin..store_commit aborts the transaction: roll back.
 * (Lost CAS races and duplicate runs are not database errors and leave it usable.) */
void store_rollback(struct store *st);

/* ---- DAGs ------------------------------------------------------------------------- */

struct store_dag {
    char *dag_id;
    char *fileloc;      /* DAG file path */
    char *description;  /* may be "" */
    char *schedule;     /* cron text, or NULL for manual only */
    char *timezone;
    json_t *tags;       /* array of strings (owned reference) */
    bool is_paused;
    bool is_active;     /* false once its file is gone */
    int64_t version;    /* latest version number (1..) */
    int64_t last_parsed;
    int64_t next_dagrun;            /* logical date of the next scheduled run, or TS_NONE */
    int64_t next_dagrun_create_after; /* when that run may be created, or TS_NONE */
};
void store_dag_release(struct store_dag *d);

struct store_dag_list {
    struct store_dag *items;
    size_t n;
    size_t total; /* total matching rows ignoring limit/offset */
};
void store_dag_list_release(struct store_dag_list *l);

/* Records the parse of a DAG file: inserts a new version if `doc_json` (canonical JSON
 * text of the DAG) differs from the latest version's, and upserts the dag row (marking it
 * active; a new DAG starts paused iff `paused_on_create`). *version gets the version in
 * effect. Atomic. */
int store_dag_sync(struct store *st, const char *dag_id, const char *fileloc,
                   const char *doc_json, const char *description, const char *schedule,
                   const char *timezone, json_t *tags, bool paused_on_create,
                   int64_t *version, struct weir_err *err);
int store_dag_get(struct store *st, const char *dag_id, struct store_dag *out,
                  struct weir_err *err);
/* All DAGs ordered by dag_id; `only_active` skips deleted files. limit 0 = no limit. */
int store_dag_list(struct store *st, bool only_active, size_t limit, size_t offset,
                   struct store_dag_list *out, struct weir_err *err);
int store_dag_set_paused(struct store *st, const char *dag_id, bool paused, struct weir_err *err);
/* Marks DAGs whose file is gone inactive: every active DAG whose fileloc starts with
 * `folder_prefix` and whose dag_id is not in `keep` (array of strings) */
int store_dag_deactivate_missing(struct store *st, const char *folder_prefix, json_t *keep,
                                 struct weir_err *err);
int store_dag_set_next(struct store *st, const char *dag_id, int64_t next_dagrun,
                       int64_t create_after, struct weir_err *err);
/* Deletes a DAG with its versions, runs, task instances, logs and XComs (Airflow's
 * DELETE /dags/{dag_id}). -WEIR_ENOTFOUND if it does not exist. */
int store_dag_delete(struct store *st, const char *dag_id, struct weir_err *err);
/* The canonical JSON text of a DAG version; *out is a new string (free()). */
int store_dag_version_get(struct store *st, const char *dag_id, int64_t version, char **out,
                          struct weir_err *err);

/* Import errors: one per broken file, replaced on each parse, cleared when it parses. */
int store_import_error_set(struct store *st, const char *fileloc, const char *msg,
                           struct weir_err *err);
int store_import_error_clear(struct store *st, const char *fileloc, struct weir_err *err);
/* All import errors as a JSON array of {"import_error_id", "filename", "stack_trace",
 * "timestamp"} (Airflow's ImportError fields); *out is a new reference. */
int store_import_error_list(struct store *st, json_t **out, struct weir_err *err);

/* ---- runs ------------------------------------------------------------------------- */

enum store_run_state { RUN_QUEUED = 0, RUN_RUNNING, RUN_SUCCESS, RUN_FAILED };
enum store_run_type { RUN_TYPE_SCHEDULED = 0, RUN_TYPE_MANUAL, RUN_TYPE_BACKFILL };

const char *store_run_state_name(enum store_run_state s);
int store_run_state_parse(const char *s, enum store_run_state *out);
const char *store_run_type_name(enum store_run_type t);
int store_run_type_parse(const char *s, enum store_run_type *out);

struct store_run {
    int64_t id;                /* surrogate key, assigned by store_run_create */
    char *dag_id;
    char *run_id;              /* e.g. scheduled__2026-01-01T00:00:00+00:00 */
    int64_t version;           /* the DAG version this run pinned */
    enum store_run_state state;
    enum store_run_type run_type;
    int64_t logical_date;      /* TS_NONE allowed for manual runs without one */
    int64_t data_interval_start, data_interval_end;
    int64_t queued_at, start_date, end_date; /* TS_NONE until known */
    json_t *conf;              /* object (owned reference), never NULL */
    char *note;                /* may be NULL */
};
void store_run_release(struct store_run *r);

struct store_run_list {
    struct store_run *items;
    size_t n;
    size_t total;
};
void store_run_list_release(struct store_run_list *l);

/* Inserts `r` (id ignored; conf NULL means {}) together with one task instance in state
 * none for each task id in `task_ids` (array of strings), atomically. Sets r->id.
 * -WEIR_ECONFLICT if (dag_id, run_id) exists. */
int store_run_create(struct store *st, struct store_run *r, json_t *task_ids,
                     struct weir_err *err);
int store_run_get(struct store *st, const char *dag_id, const char *run_id,
                  struct store_run *out, struct weir_err *err);

struct store_run_filter {
    const char *dag_id;  /* NULL: all DAGs */
    int state_mask;      /* bit (1 << state); 0: all states */
    int64_t logical_date_gte, logical_date_lte; /* TS_NONE or 0: unbounded */
    const char *order_by; /* "logical_date", "-logical_date" (default), "start_date", "-start_date", "id", "-id" */
    size_t limit, offset; /* limit 0: no limit */
};
/* Sets `f` to "every run" (zeroes it, both logical-date bounds TS_NONE). A zero-initialized
 * filter means the same: a bound of 0 (the epoch itself) counts as unbounded. */
void store_run_filter_init(struct store_run_filter *f);
int store_run_list(struct store *st, const struct store_run_filter *f,
                   struct store_run_list *out, struct weir_err *err);
/* Number of runs of `dag_id` in state queued or running. */
int store_run_count_active(struct store *st, const char *dag_id, int64_t *count,
                           struct weir_err *err);
/* The scheduled/backfill run of `dag_id` with the greatest logical date (for catchup),
 * or -WEIR_ENOTFOUND. */
int store_run_latest_scheduled(struct store *st, const char *dag_id, struct store_run *out,
                               struct weir_err *err);
/* Compare-and-set of the run state: succeeds only if the current state is `from`
 * (pass -1 for any). start_date/end_date are set when not TS_NONE. -WEIR_ECONFLICT when
 * the state was not `from`. */
int store_run_set_state(struct store *st, const char *dag_id, const char *run_id, int from,
                        enum store_run_state to, int64_t start_date, int64_t end_date,
                        struct weir_err *err);
int store_run_set_note(struct store *st, const char *dag_id, const char *run_id,
                       const char *note, struct weir_err *err);
/* Deletes the run and its task instances, logs and XComs. */
int store_run_delete(struct store *st, const char *dag_id, const char *run_id,
                     struct weir_err *err);

/* ---- task instances --------------------------------------------------------------- */

enum store_ti_state {
    TI_NONE = 0,
    TI_SCHEDULED,
    TI_QUEUED,
    TI_RUNNING,
    TI_SUCCESS,
    TI_FAILED,
    TI_UP_FOR_RETRY,
    TI_UPSTREAM_FAILED,
    TI_SKIPPED,
    TI__COUNT
};
/* Airflow's names: "none" is stored as SQL NULL and shown as null in JSON. */
const char *store_ti_state_name(enum store_ti_state s);
int store_ti_state_parse(const char *s, enum store_ti_state *out);
bool store_ti_state_finished(enum store_ti_state s); /* success failed skipped upstream_failed */

struct store_ti {
    char *dag_id, *run_id, *task_id;
    enum store_ti_state state;
    int try_number;        /* tries started so far (0 before the first) */
    int max_tries;         /* retries + 1; 0 until the scheduler first schedules it */
    int64_t start_date, end_date, queued_at; /* TS_NONE if unknown */
    int64_t next_retry_at; /* for up_for_retry: earliest time of the next try */
    int64_t heartbeat_at;  /* last heartbeat of the running try */
    char *hostname;        /* where the current try runs (may be NULL) */
    int pid;               /* its process id, 0 if unknown */
    char *pool;            /* "default_pool" unless set */
    char *executor_ref;    /* executor-specific handle of the running try (pod name...), NULL */
    char *note;
};
void store_ti_release(struct store_ti *t);

struct store_ti_list {
    struct store_ti *items;
    size_t n;
    size_t total;
};
void store_ti_list_release(struct store_ti_list *l);

int store_ti_get(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                 struct store_ti *out, struct weir_err *err);
/* All task instances of one run, ordered by task_id. */
int store_ti_list_run(struct store *st, const char *dag_id, const char *run_id,
                      struct store_ti_list *out, struct weir_err *err);

struct store_ti_filter {
    const char *dag_id, *run_id; /* NULL: any */
    int state_mask;              /* bit (1 << state); 0: all */
    size_t limit, offset;
};
int store_ti_list(struct store *st, const struct store_ti_filter *f, struct store_ti_list *out,
                  struct weir_err *err);
/* Counts task instances in queued+running for a DAG (max_active_tasks) or, with dag_id
 * NULL, for everything; with `pool` non-NULL, only that pool. */
int store_ti_count_active(struct store *st, const char *dag_id, const char *pool, int64_t *count,
                          struct weir_err *err);

/* Fields to change in a CAS update; only those whose `set_*` flag is true are written. */
struct store_ti_update {
    enum store_ti_state to;
    bool set_try_number; int try_number;
    bool set_max_tries; int max_tries;
    bool set_start_date; int64_t start_date;
    bool set_end_date; int64_t end_date;
    bool set_queued_at; int64_t queued_at;
    bool set_next_retry_at; int64_t next_retry_at;
    bool set_heartbeat_at; int64_t heartbeat_at;
    bool set_hostname; const char *hostname;
    bool set_pid; int pid;
    bool set_executor_ref; const char *executor_ref;
    bool set_note; const char *note;
    bool set_pool; const char *pool;
};
/* Compare-and-set: applies `u` only if the task instance is in state `from` (-1: any) and,
 * when `expect_try` >= 0, its try_number equals `expect_try`. -WEIR_ECONFLICT otherwise,
 * -WEIR_ENOTFOUND if it does not exist. This is how every transition is made. */
int store_ti_update(struct store *st, const char *dag_id, const char *run_id,
                    const char *task_id, int from, int expect_try,
                    const struct store_ti_update *u, struct weir_err *err);
/* Heartbeat of a running try: sets heartbeat_at only if state is running and try matches. */
int store_ti_heartbeat(struct store *st, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, int64_t now, struct weir_err *err);
/* Task instances in state `state` across all runs whose run is queued/running (for the
 * scheduler's start-up recovery and safety sweep). */
int store_ti_list_state(struct store *st, enum store_ti_state state, struct store_ti_list *out,
                        struct weir_err *err);

/* ---- task logs (per try) ---------------------------------------------------------- */

struct store_log_line {
    int64_t seq; /* increasing within one try, starting at 1 */
    int64_t ts;
    char *line;  /* without the newline */
};
struct store_log_list {
    struct store_log_line *items;
    size_t n;
};
void store_log_list_release(struct store_log_list *l);

/* Appends `n` lines (timestamps `ts[i]`) to the log of one try, in one transaction.
 * Lines longer than 64 KiB are cut. */
int store_log_append(struct store *st, const char *dag_id, const char *run_id,
                     const char *task_id, int try_number, const char *const *lines,
                     const int64_t *ts, size_t n, struct weir_err *err);
/* Lines with seq > after_seq, at most `limit` (0: all), in order. */
int store_log_read(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                   int try_number, int64_t after_seq, size_t limit, struct store_log_list *out,
                   struct weir_err *err);

/* ---- XCom ------------------------------------------------------------------------- */

/* Sets (replaces) the XCom `key` of a task instance; `value` is any JSON value. */
int store_xcom_set(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                   const char *key, json_t *value, struct weir_err *err);
/* *out is a new reference; -WEIR_ENOTFOUND if absent. */
int store_xcom_get(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                   const char *key, json_t **out, struct weir_err *err);
/* All XComs of a run (task_id NULL) or a task instance, as a JSON array of
 * {"dag_id","dag_run_id","task_id","key","value","timestamp"}; *out is new. */
int store_xcom_list(struct store *st, const char *dag_id, const char *run_id, const char *task_id,
                    json_t **out, struct weir_err *err);
/* Removes a task instance's XComs (before a new try). */
int store_xcom_clear(struct store *st, const char *dag_id, const char *run_id,
                     const char *task_id, struct weir_err *err);

/* ---- variables, connections, pools -------------------------------------------------- */

/* *out is a new string (free()); -WEIR_ENOTFOUND if absent. */
int store_var_get(struct store *st, const char *key, char **out, struct weir_err *err);
int store_var_set(struct store *st, const char *key, const char *value, const char *description,
                  struct weir_err *err);
int store_var_delete(struct store *st, const char *key, struct weir_err *err);
/* JSON array of {"key","value","description"} ordered by key; *out is new. */
int store_var_list(struct store *st, json_t **out, struct weir_err *err);

/* A connection as Airflow models it. Strings may be NULL. */
struct store_conn {
    char *conn_id, *conn_type, *description, *host, *schema, *login, *password;
    int port;      /* 0 if none */
    json_t *extra; /* object (owned), may be NULL */
};
void store_conn_release(struct store_conn *c);
int store_conn_get(struct store *st, const char *conn_id, struct store_conn *out,
                   struct weir_err *err);
/* Inserts or replaces c->conn_id. */
int store_conn_set(struct store *st, const struct store_conn *c, struct weir_err *err);
int store_conn_delete(struct store *st, const char *conn_id, struct weir_err *err);
/* JSON array of connections WITHOUT passwords, ordered by conn_id; *out is new. */
int store_conn_list(struct store *st, json_t **out, struct weir_err *err);

/* Pools: "default_pool" exists after migration with 128 slots. */
int store_pool_get(struct store *st, const char *name, int64_t *slots, struct weir_err *err);
int store_pool_set(struct store *st, const char *name, int64_t slots, const char *description,
                   struct weir_err *err);
int store_pool_delete(struct store *st, const char *name, struct weir_err *err);
/* JSON array of {"name","slots","description"}; *out is new. */
int store_pool_list(struct store *st, json_t **out, struct weir_err *err);

/* ---- users and tokens of the web server (migration 2) ------------------------------------ */

/* A user of the web UI and API. `role` is "admin", "op" or "viewer" (webui checks it);
 * `password_hash` is a libsodium crypto_pwhash_str string; the store never sees passwords. */
struct store_user {
    char *username, *role, *password_hash;
    int64_t created_at;
};
void store_user_release(struct store_user *u);
/* Inserts a user; -WEIR_ECONFLICT if the username exists. */
int store_user_create(struct store *st, const char *username, const char *role,
                      const char *password_hash, struct weir_err *err);
int store_user_get(struct store *st, const char *username, struct store_user *out,
                   struct weir_err *err);
/* Changes role and/or password hash (NULL: keep). -WEIR_ENOTFOUND if absent. */
int store_user_update(struct store *st, const char *username, const char *role,
                      const char *password_hash, struct weir_err *err);
/* Deletes a user and all its tokens. -WEIR_ENOTFOUND if absent. */
int store_user_delete(struct store *st, const char *username, struct weir_err *err);
/* JSON array of {"username","role","created_at"} ordered by username (never the hash);
 * *out is new. */
int store_user_list(struct store *st, json_t **out, struct weir_err *err);
/* Number of users. */
int store_user_count(struct store *st, int64_t *count, struct weir_err *err);

/* A token (UI session or API token) of a user, looked up by a hash of the token text;
 * the token itself is never stored. */
struct store_token {
    char *username, *role; /* the owner and its current role */
    char *kind;            /* "session" or "api" */
    char *csrf;            /* the session's CSRF token (NULL for API tokens) */
    int64_t expires_at;    /* TS_NONE: never */
};
void store_token_release(struct store_token *t);
/* Records a token. -WEIR_ENOTFOUND if the user does not exist. */
int store_token_create(struct store *st, const char *token_hash, const char *username,
                       const char *kind, const char *csrf, int64_t expires_at,
                       struct weir_err *err);
/* The token with this hash that has not expired at `now`, or -WEIR_ENOTFOUND. */
int store_token_get(struct store *st, const char *token_hash, int64_t now,
                    struct store_token *out, struct weir_err *err);
/* Deletes one token (logout); -WEIR_ENOTFOUND if absent. */
int store_token_delete(struct store *st, const char *token_hash, struct weir_err *err);
/* Deletes every token that expired before `now`; *deleted (may be NULL) gets the count. */
int store_token_purge(struct store *st, int64_t now, int64_t *deleted, struct weir_err *err);

/* ---- JSON views (the CLI's --json and the REST API share these field names) ------- */

/* Airflow's DAGRun object: dag_id, dag_run_id, state, run_type, logical_date,
 * execution_date, data_interval_start, data_interval_end, start_date, end_date,
 * queued_at, conf, note, external_trigger. New reference. */
json_t *store_run_to_json(const struct store_run *r);
/* Airflow's TaskInstance object: dag_id, dag_run_id, task_id, state, try_number,
 * max_tries, start_date, end_date, duration, queued_when, hostname, pid, pool, note. */
json_t *store_ti_to_json(const struct store_ti *t);
/* Airflow's DAG object (the parts the store knows): dag_id, description, fileloc,
 * is_paused, is_active, tags [{name}], timetable_description (the schedule),
 * schedule_interval {"__type":"CronExpression","value":...}, next_dagrun, ... */
json_t *store_dag_to_json(const struct store_dag *d);

#endif
