/* executor/runner.c - the task runner behind `weir tasks run` / `weir tasks test`: one try
 * of one task, in this process, recorded in the store.
 *
 * Sequence: load the run and its pinned DAG version, find the task, claim the task
 * instance (CAS queued|scheduled at try N-1 -> running at try N, one store_ti_update),
 * clear its XComs, render `with` and `env` with the template engine, set `env` in the
 * process environment, validate the parameters, call the operator in-process with the
 * host table, then write the final state in one CAS from running at try N. Anything that
 * goes wrong after the claim fails the try with the reason in the task log, so the user
 * sees it where they look.
 *
 * Threads: the operator runs on the calling thread with the caller's store connection.
 * One background thread, with its own connection opened from opts->store_url (opened
 * lazily, so a short task never pays for it), writes heartbeats and flushes log lines
 * that have waited FLUSH_US. A try with a ctl channel starts that thread only when it
 * runs long enough to need it (bg_poke); its executor writes its heartbeats meanwhile.
 * Log lines are batched (one transaction per batch); flushes are serialized by flush_mu
 * so the store sees lines in order. The main thread flushes
 * itself when a batch is full and always before it writes the final state, so every line
 * is stored before the state says the try ended. */
#define LOG_MODULE "executor"
#include "executor/executor.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tmpl.h"
#include "core/ts.h"
#include "executor/executor_int.h"
#include "store/store.h"

#define FLUSH_US              (200 * INT64_C(1000)) /* a log line waits at most this long for its batch */
#define LAZY_BG_US            (50 * INT64_C(1000))  /* see bg_poke */
#define BATCH_LINES           256             /* the main thread flushes a full batch itself */
#define MAX_PENDING           8192            /* past this, the main thread waits for the flush */
#define MAX_MSG               (64 * 1024)     /* one log call; longer messages are cut */
#define DEFAULT_RETRY_DELAY_S 300.0           /* Airflow's default */
#define MAX_BACKOFF_S         (24.0 * 3600.0) /* exponential backoff cap without max_retry_delay */

static volatile sig_atomic_t got_signal;
static bool told_executor; /* the last try's end was recorded by the executor (ctl) */

static void on_signal(int sig)
{
    got_signal = sig;
}

int exec__runner_signal(void)
{
    return got_signal;
}

bool exec__runner_told_executor(void)
{
    return told_executor;
}

struct runner {
    struct weir_task_ctx base; /* first: the host table casts the ctx back */
    struct store *st;          /* caller's connection or our own (own_st), used under st_mu;
                                  NULL until first needed when the try has a ctl channel */
    bool own_st;
    int ctl_fd;                /* channel to the local executor (ctl.c), or -1 */
    bool ctl_borrowed;         /* ctl_fd is the caller's (opts->ctl_conn): never closed */
    /* Plugins may call the host from threads they start (plugin.h), so every use of `st`,
     * test_xcoms and fail_msg during the try holds st_mu. Recursive: a store call may log
     * a warning, and a log line may flush through `st`. */
    pthread_mutex_t st_mu;
    const char *dag_id, *run_id, *task_id;
    int try_number, max_tries;
    bool test;
    const char *store_url;
    int64_t heartbeat_us;

    json_t *vars;       /* template variables = the plugin's context() */
    json_t *test_xcoms; /* test mode: this task's pushed XComs */
    char *workdir;
    char *fail_msg; /* the operator's fail() message */
    int64_t last_progress;

    /* log batching, shared with the background thread under `mu` */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t flush_mu; /* held across one batch's store_log_append */
    char **pend;
    int64_t *pend_ts;
    size_t npend, cap;
    int64_t first_pend; /* monotonic time the oldest pending line arrived */
    bool stop;
    bool thread_started; /* the thread exists (join it) */
    bool bg_flushing;    /* the thread flushes lines: the main thread need not */
    pthread_t thread;
    /* Lazy start (tries with a ctl channel, whose executor heartbeats for them): while the
     * operator runs, the first host call at or after bg_at starts the thread (bg_poke). */
    atomic_bool bg_due;
    int64_t bg_at;
    atomic_int lost; /* the task instance left running: cancel the operator */
};

static struct runner *R(struct weir_task_ctx *ctx)
{
    return (struct runner *)ctx;
}

static const char *level_name(enum weir_log_level l)
{
    switch (l) {
    case WEIR_LOG_ERROR:
        return "ERROR";
    case WEIR_LOG_WARN:
        return "WARN";
    case WEIR_LOG_INFO:
        return "INFO";
    case WEIR_LOG_DEBUG:
        return "DEBUG";
    }
    return "INFO";
}

/* The main connection, opened on first use when the try started without one (a try
 * forked with a ctl channel needs none unless it logs a lot or looks something up).
 * Caller holds st_mu. NULL (with a warning) when the store cannot be opened. */
static struct store *runner_st(struct runner *r)
{
    if (!r->st && r->store_url && !r->test) {
        struct weir_err e = { 0 };
        r->st = store_open(r->store_url, &e);
        if (!r->st)
            LOG_WARN("try cannot open the store dag=%s run=%s task=%s: %s", r->dag_id, r->run_id,
                     r->task_id, e.msg);
        r->own_st = r->st != NULL;
    }
    return r->st;
}

/* ---- log lines --------------------------------------------------------------------- */

static void bg_poke(struct runner *r);

/* A batch of log lines taken out of the pending list. */
struct batch {
    char **lines;
    int64_t *ts;
    size_t n;
};

/* Takes every pending line (caller holds flush_mu, so batches reach the store in order). */
static struct batch batch_take(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    struct batch b = { r->pend, r->pend_ts, r->npend };
    r->pend = NULL;
    r->pend_ts = NULL;
    r->npend = r->cap = 0;
    pthread_cond_broadcast(&r->cv); /* wakes a main thread waiting for room */
    pthread_mutex_unlock(&r->mu);
    return b;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->lines[i]);
    free(b->lines);
    free(b->ts);
}

/* Writes the pending batch with `st` (NULL: the main connection). Caller holds neither
 * lock. */
static void flush_with(struct runner *r, struct store *st)
{
    bool main_conn = st == NULL;
    pthread_mutex_lock(&r->flush_mu);
    struct batch b = batch_take(r);
    char **lines = b.lines;
    int64_t *ts = b.ts;
    size_t n = b.n;
    if (n) {
        struct weir_err e = { 0 };
        int rc = -WEIR_EUNAVAIL;
        if (main_conn) {
            pthread_mutex_lock(&r->st_mu);
            st = runner_st(r);
        }
        for (int attempt = 0; st && attempt < 3 && rc < 0; attempt++)
            rc = store_log_append(st, r->dag_id, r->run_id, r->task_id, r->try_number,
                                  (const char *const *)lines, ts, n, &e);
        if (!st)
            err_set(&e, WEIR_EUNAVAIL, "no store connection");
        if (main_conn)
            pthread_mutex_unlock(&r->st_mu);
        if (rc < 0) {
            /* The lines must not vanish: they go to stderr, which the executor keeps. */
            LOG_ERROR("cannot store %zu log lines dag=%s run=%s task=%s try=%d: %s", n, r->dag_id,
                      r->run_id, r->task_id, r->try_number, e.msg);
            for (size_t i = 0; i < n; i++)
                LOG_ERROR("task log: %s", lines[i]);
        }
    }
    pthread_mutex_unlock(&r->flush_mu);
    batch_free(&b);
}

/* Replaces every byte that is not part of valid UTF-8 by '?', in place: child output is
 * external input, and the store (PostgreSQL text) accepts only UTF-8. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xE0) == 0xC0 ? 2
                   : (*p & 0xF0) == 0xE0 ? 3
                   : (*p & 0xF8) == 0xF0 ? 4
                                         : 0;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 2)
            ok = *p >= 0xC2; /* no overlong forms */
        else if (ok && n == 3)
            ok = !(*p == 0xE0 && p[1] < 0xA0) && !(*p == 0xED && p[1] >= 0xA0); /* surrogates */
        else if (ok && n == 4)
            ok = !(*p == 0xF0 && p[1] < 0x90) && *p <= 0xF4 && !(*p == 0xF4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void emit_line(struct runner *r, int64_t now, char *line)
{
    utf8_sanitize(line);
    log_mask_secrets(line);
    if (r->test) {
        char tb[48];
        ts_format(now, TS_FMT_Z, tb, sizeof tb);
        struct buf b;
        buf_init(&b, 0);
        buf_addf(&b, "%s %s\n", tb, line);
        ssize_t w = write(STDERR_FILENO, b.s, b.len);
        (void)w;
        buf_release(&b);
        free(line);
        return;
    }
    bool flush_now = false;
    bg_poke(r);
    pthread_mutex_lock(&r->mu);
    while (r->npend >= MAX_PENDING && r->bg_flushing)
        pthread_cond_wait(&r->cv, &r->mu);
    if (r->npend == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->pend = xrealloc(r->pend, r->cap * sizeof *r->pend);
        r->pend_ts = xrealloc(r->pend_ts, r->cap * sizeof *r->pend_ts);
    }
    if (r->npend == 0) {
        r->first_pend = ts_mono_us();
        pthread_cond_broadcast(&r->cv); /* the thread recomputes its deadline */
    }
    r->pend[r->npend] = line;
    r->pend_ts[r->npend] = now;
    r->npend++;
    /* Without a background thread every line is written at once (nobody else would),
     * except with a ctl channel: the try's end carries them to the store. */
    flush_now = r->npend >= BATCH_LINES || (!r->bg_flushing && r->ctl_fd < 0);
    pthread_mutex_unlock(&r->mu);
    if (flush_now)
        flush_with(r, NULL);
}

/* Formats one message and emits it as one or more lines ("LEVEL text"). */
static void runner_vlog(struct runner *r, enum weir_log_level level, const char *fmt, va_list ap)
{
    struct buf b;
    buf_init(&b, MAX_MSG);
    if (buf_vaddf(&b, fmt, ap) < 0)
        buf_adds(&b, "(log message too long)");
    int64_t now = ts_now_us();
    const char *p = b.s;
    do {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        emit_line(r, now, xasprintf("%s %.*s", level_name(level), (int)len, p));
        p = nl ? nl + 1 : NULL;
    } while (p && *p);
    buf_release(&b);
}

__attribute__((format(printf, 3, 4))) static void rlog(struct runner *r, enum weir_log_level level,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    runner_vlog(r, level, fmt, ap);
    va_end(ap);
}

/* ---- background thread: heartbeats and log flushes ------------------------------------ */

static void abs_deadline(int64_t mono_us, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_us / TS_US_PER_SEC);
    ts->tv_nsec = (long)(mono_us % TS_US_PER_SEC) * 1000;
}

static void *bg_main(void *arg)
{
    struct runner *r = arg;
    struct store *bst = NULL;
    int64_t next_hb = ts_mono_us() + r->heartbeat_us;

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        int64_t now = ts_mono_us();
        int64_t deadline = next_hb;
        if (r->npend && r->first_pend + FLUSH_US < deadline)
            deadline = r->first_pend + FLUSH_US;
        if (now < deadline) {
            struct timespec ts;
            abs_deadline(deadline, &ts);
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            continue;
        }
        bool do_flush = r->npend && now >= r->first_pend + FLUSH_US;
        bool do_hb = now >= next_hb;
        pthread_mutex_unlock(&r->mu);
        if (!bst) {
            struct weir_err e = { 0 };
            bst = store_open(r->store_url, &e);
            if (!bst) {
                LOG_WARN("heartbeat thread cannot open the store: %s", e.msg);
                /* lines are then written by the main thread as they come */
                pthread_mutex_lock(&r->mu);
                r->bg_flushing = false;
                pthread_cond_broadcast(&r->cv);
                break;
            }
        }
        if (do_flush)
            flush_with(r, bst);
        if (do_hb) {
            next_hb = now + r->heartbeat_us;
            if (bst) {
                struct weir_err e = { 0 };
                int rc = store_ti_heartbeat(bst, r->dag_id, r->run_id, r->task_id, r->try_number,
                                            ts_now_us(), &e);
                if (rc == -WEIR_ECONFLICT || rc == -WEIR_ENOTFOUND) {
                    if (!atomic_exchange(&r->lost, 1))
                        LOG_WARN("task instance left running, cancelling dag=%s run=%s "
                                 "task=%s try=%d",
                                 r->dag_id, r->run_id, r->task_id, r->try_number);
                } else if (rc < 0) {
                    LOG_WARN("heartbeat failed dag=%s run=%s task=%s try=%d: %s", r->dag_id,
                             r->run_id, r->task_id, r->try_number, e.msg);
                }
            }
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    store_free(bst);
    return NULL;
}

/* Starts the thread unless it runs already or was stopped; any thread may call it. */
static void bg_start(struct runner *r)
{
    if (r->test || !r->store_url)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_mutex_lock(&r->mu);
    if (r->thread_started || r->stop) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->thread_started = true;
    r->bg_flushing = true;
    pthread_mutex_unlock(&r->mu);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main thread */
    int rc = pthread_create(&r->thread, NULL, bg_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        LOG_WARN("cannot start the heartbeat thread (error %d): no heartbeats", rc);
        pthread_mutex_lock(&r->mu);
        r->thread_started = false;
        r->bg_flushing = false;
        pthread_mutex_unlock(&r->mu);
    }
}

/* A try forked by the local executor with a control channel starts its thread lazily: the
 * executor writes its heartbeats while it runs (local.c), and a try that ends within
 * LAZY_BG_US (most no-op and short tasks) never pays for a thread, which costs more than
 * the rest of such a try's bookkeeping (a second thread makes every later page fault, mmap
 * and the exit of the process more expensive). The thread starts at the first host call
 * (a log line, cancelled(), progress, ...) made once the operator has run that long; its
 * first flush is then still due FLUSH_US after the oldest pending line. An operator that
 * blocks without calling the host stores its lines at its next call or at its end; its
 * heartbeats come from the executor meanwhile (or, after a scheduler restart, from the
 * scheduler that adopts it). Any thread. */
static void bg_poke(struct runner *r)
{
    if (atomic_load_explicit(&r->bg_due, memory_order_acquire) && ts_mono_us() >= r->bg_at) {
        atomic_store(&r->bg_due, false);
        bg_start(r);
    }
}

static void bg_join(struct runner *r)
{
    atomic_store(&r->bg_due, false);
    if (r->thread_started) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        pthread_mutex_lock(&r->mu);
        r->thread_started = false;
        r->bg_flushing = false;
        pthread_mutex_unlock(&r->mu);
    }
}

static void bg_stop(struct runner *r)
{
    bg_join(r);
    if (!r->test)
        flush_with(r, NULL);
}

/* ---- variables, connections, XComs ---------------------------------------------------- */

/* NAME upper-cased with anything but [A-Z0-9] as '_', after `prefix`. */
static char *env_name(const char *prefix, const char *name)
{
    char *s = xasprintf("%s%s", prefix, name);
    for (char *p = s + strlen(prefix); *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
        else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    }
    return s;
}

/* Variable lookup: WEIR_VAR_<KEY> first (as Airflow reads AIRFLOW_VAR_* before the
 * metastore), then the store. New string reference or NULL. */
static json_t *var_lookup(struct runner *r, const char *key)
{
    char *en = env_name("WEIR_VAR_", key);
    const char *v = getenv(en);
    free(en);
    if (v)
        return json_string(v);
    if (!r->st && (!r->store_url || r->test))
        return NULL;
    char *val = NULL;
    struct weir_err e = { 0 };
    pthread_mutex_lock(&r->st_mu);
    struct store *st = runner_st(r);
    int rc = st ? store_var_get(st, key, &val, &e) : err_set(&e, WEIR_EUNAVAIL, "no store");
    pthread_mutex_unlock(&r->st_mu);
    if (rc < 0) {
        if (rc != -WEIR_ENOTFOUND)
            rlog(r, WEIR_LOG_WARN, "cannot read variable '%s': %s", key, e.msg);
        return NULL;
    }
    json_t *j = json_string(val);
    free(val);
    return j;
}

static json_t *conn_from_store(const struct store_conn *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "conn_id", json_string(c->conn_id));
#define SETS(k, v)                                     \
    do {                                               \
        if ((v) && *(v))                               \
            json_object_set_new(o, k, json_string(v)); \
    } while (0)
    SETS("conn_type", c->conn_type);
    SETS("host", c->host);
    SETS("login", c->login);
    SETS("password", c->password);
    SETS("schema", c->schema);
#undef SETS
    if (c->port > 0)
        json_object_set_new(o, "port", json_integer(c->port));
    if (c->extra && json_is_object(c->extra))
        json_object_set(o, "extra", c->extra);
    return o;
}

static json_t *conn_lookup(struct runner *r, const char *conn_id)
{
    json_t *c = NULL;
    char *en = env_name("WEIR_CONN_", conn_id);
    const char *uri = getenv(en);
    if (uri) {
        struct weir_err e = { 0 };
        c = exec__conn_parse(conn_id, uri, &e);
        if (!c)
            rlog(r, WEIR_LOG_WARN, "connection '%s' from %s: %s", conn_id, en, e.msg);
    } else if (r->st || (r->store_url && !r->test)) {
        struct store_conn sc = { 0 };
        struct weir_err e = { 0 };
        pthread_mutex_lock(&r->st_mu);
        struct store *st = runner_st(r);
        int rc = st ? store_conn_get(st, conn_id, &sc, &e)
                    : err_set(&e, WEIR_EUNAVAIL, "no store");
        pthread_mutex_unlock(&r->st_mu);
        if (rc == 0)
            c = conn_from_store(&sc);
        else if (rc != -WEIR_ENOTFOUND)
            rlog(r, WEIR_LOG_WARN, "cannot read connection '%s': %s", conn_id, e.msg);
        store_conn_release(&sc);
    }
    free(en);
    const char *pw = json_string_value(json_object_get(c, "password"));
    if (pw)
        log_add_secret(pw);
    return c;
}

static json_t *xcom_lookup(struct runner *r, const char *task_id, const char *key)
{
    json_t *v = NULL;
    struct weir_err e = { 0 };
    pthread_mutex_lock(&r->st_mu);
    if (r->test && strcmp(task_id, r->task_id) == 0) {
        v = json_deep_copy(json_object_get(r->test_xcoms, key));
        pthread_mutex_unlock(&r->st_mu);
        return v;
    }
    struct store *st = runner_st(r);
    int rc = st ? store_xcom_get(st, r->dag_id, r->run_id, task_id, key, &v, &e)
                : err_set(&e, WEIR_EUNAVAIL, "no store");
    pthread_mutex_unlock(&r->st_mu);
    if (rc < 0) {
        if (rc != -WEIR_ENOTFOUND)
            rlog(r, WEIR_LOG_WARN, "cannot read xcom '%s' of task '%s': %s", key, task_id, e.msg);
        return NULL;
    }
    return v;
}

/* Template functions: var('key'[, default]) and xcom('task'[, 'key']). */
static json_t *tmpl_call(void *ud, const char *name, json_t *args, struct weir_err *err)
{
    struct runner *r = ud;
    size_t n = json_array_size(args);
    const char *a0 = json_string_value(json_array_get(args, 0));
    if (strcmp(name, "var") == 0) {
        if (n < 1 || n > 2 || !a0) {
            err_set(err, WEIR_EINVAL, "var() takes a key and an optional default");
            return NULL;
        }
        json_t *v = var_lookup(r, a0);
        if (!v && n == 2)
            return json_incref(json_array_get(args, 1));
        if (!v)
            err_set(err, WEIR_ENOTFOUND, "variable '%s' not found", a0);
        return v;
    }
    if (strcmp(name, "xcom") == 0) {
        const char *key = n >= 2 ? json_string_value(json_array_get(args, 1)) : "return_value";
        if (n < 1 || n > 2 || !a0 || !key) {
            err_set(err, WEIR_EINVAL, "xcom() takes a task id and an optional key");
            return NULL;
        }
        json_t *v = xcom_lookup(r, a0, key);
        if (!v)
            err_set(err, WEIR_ENOTFOUND, "no xcom '%s' from task '%s'", key, a0);
        return v;
    }
    err_set(err, WEIR_EINVAL, "unknown function '%s'", name);
    return NULL;
}

static void tmpl_env_init(struct runner *r, struct tmpl_env *env)
{
    memset(env, 0, sizeof *env);
    env->vars = r->vars;
    env->call = tmpl_call;
    env->ud = r;
}

/* ---- context ops (the host table forwards here) ------------------------------------------ */

static void ctx_vlog(struct weir_task_ctx *ctx, enum weir_log_level level, const char *fmt,
                     va_list ap)
{
    runner_vlog(R(ctx), level, fmt, ap);
}

static int ctx_vfail(struct weir_task_ctx *ctx, const char *fmt, va_list ap)
{
    struct runner *r = R(ctx);
    struct buf b;
    buf_init(&b, 4096);
    if (buf_vaddf(&b, fmt, ap) < 0)
        buf_adds(&b, "(failure message too long)");
    rlog(r, WEIR_LOG_ERROR, "%s", b.s);
    pthread_mutex_lock(&r->st_mu);
    free(r->fail_msg);
    r->fail_msg = buf_detach(&b);
    pthread_mutex_unlock(&r->st_mu);
    buf_release(&b);
    return WEIR_TASK_FAILED;
}

static int ctx_xcom_push(struct weir_task_ctx *ctx, const char *key, json_t *value)
{
    struct runner *r = R(ctx);
    if (!key || !*key || strlen(key) > 250 || !value) {
        rlog(r, WEIR_LOG_ERROR, "xcom push: invalid key or value");
        return -1;
    }
    if (r->test) {
        pthread_mutex_lock(&r->st_mu);
        json_object_set_new(r->test_xcoms, key, json_deep_copy(value));
        pthread_mutex_unlock(&r->st_mu);
        char *s = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        rlog(r, WEIR_LOG_INFO, "xcom %s = %.200s", key, s ? s : "?");
        free(s);
        return 0;
    }
    struct weir_err e = { 0 };
    pthread_mutex_lock(&r->st_mu);
    struct store *st = runner_st(r);
    int rc = st ? store_xcom_set(st, r->dag_id, r->run_id, r->task_id, key, value, &e)
                : err_set(&e, WEIR_EUNAVAIL, "no store");
    pthread_mutex_unlock(&r->st_mu);
    if (rc < 0) {
        rlog(r, WEIR_LOG_ERROR, "cannot push xcom '%s': %s", key, e.msg);
        return -1;
    }
    return 0;
}

static json_t *ctx_xcom_pull(struct weir_task_ctx *ctx, const char *task_id, const char *key)
{
    if (!task_id || !key)
        return NULL;
    return xcom_lookup(R(ctx), task_id, key);
}

static json_t *ctx_conn_get(struct weir_task_ctx *ctx, const char *conn_id)
{
    return conn_id ? conn_lookup(R(ctx), conn_id) : NULL;
}

static json_t *ctx_var_get(struct weir_task_ctx *ctx, const char *key)
{
    return key ? var_lookup(R(ctx), key) : NULL;
}

static int ctx_cancelled(struct weir_task_ctx *ctx)
{
    bg_poke(R(ctx));
    return got_signal != 0 || atomic_load(&R(ctx)->lost) != 0;
}

static void ctx_progress(struct weir_task_ctx *ctx, double fraction, const char *msg)
{
    struct runner *r = R(ctx);
    int64_t now = ts_mono_us();
    bg_poke(r);
    /* At most one line a second, so a chatty operator does not flood the log. */
    if (fraction < 1.0 && r->last_progress && now - r->last_progress < TS_US_PER_SEC)
        return;
    r->last_progress = now;
    if (fraction >= 0 && !isnan(fraction))
        rlog(r, WEIR_LOG_INFO, "progress %.0f%%%s%s", fraction * 100.0, msg ? ": " : "",
             msg ? msg : "");
    else
        rlog(r, WEIR_LOG_INFO, "progress%s%s", msg ? ": " : "", msg ? msg : "");
}

static json_t *ctx_context(struct weir_task_ctx *ctx)
{
    return R(ctx)->vars;
}

static char *ctx_render(struct weir_task_ctx *ctx, const char *src)
{
    struct runner *r = R(ctx);
    struct tmpl_env env;
    tmpl_env_init(r, &env);
    char *out = NULL;
    struct weir_err e = { 0 };
    if (!src || tmpl_render(src, &env, &out, &e) < 0) {
        rlog(r, WEIR_LOG_ERROR, "template error%s%s: %s", e.loc[0] ? " at " : "", e.loc, e.msg);
        return NULL;
    }
    return out;
}

/* Fails the try from the runner's side, as an operator's host->fail would. */
__attribute__((format(printf, 2, 3))) static void rfail(struct runner *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx_vfail(&r->base, fmt, ap);
    va_end(ap);
}

static const struct exec_ctx_ops runner_ops = {
    .vlog = ctx_vlog,
    .vfail = ctx_vfail,
    .xcom_push = ctx_xcom_push,
    .xcom_pull = ctx_xcom_pull,
    .conn_get = ctx_conn_get,
    .var_get = ctx_var_get,
    .cancelled = ctx_cancelled,
    .progress = ctx_progress,
    .context = ctx_context,
    .render = ctx_render,
};

/* ---- the template context ------------------------------------------------------------- */

static json_t *ts_json(int64_t us, enum ts_format fmt)
{
    if (us == TS_NONE)
        return json_null();
    char b[48];
    return json_string(ts_format(us, fmt, b, sizeof b));
}

static json_t *build_vars(struct runner *r, const struct store_run *run, json_t *doc_params)
{
    int64_t ld = run->logical_date;
    if (ld == TS_NONE)
        ld = run->data_interval_start != TS_NONE ? run->data_interval_start
             : run->queued_at != TS_NONE         ? run->queued_at
                                                 : ts_now_us();
    int64_t dis = run->data_interval_start != TS_NONE ? run->data_interval_start : ld;
    int64_t die = run->data_interval_end != TS_NONE ? run->data_interval_end : ld;
    struct civil c;
    ts_to_civil_utc(ld, &c);
    char ds[16], ds_nodash[16], ts_nodash[24];
    snprintf(ds, sizeof ds, "%04d-%02d-%02d", c.year, c.month, c.day);
    snprintf(ds_nodash, sizeof ds_nodash, "%04d%02d%02d", c.year, c.month, c.day);
    snprintf(ts_nodash, sizeof ts_nodash, "%04d%02d%02dT%02d%02d%02d", c.year, c.month, c.day,
             c.hour, c.minute, c.second);

    /* params: the DAG's defaults, overridden by the run's conf (Airflow's
     * dag_run_conf_overrides_params). */
    json_t *params = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(doc_params, k, v) {
        json_t *d = json_is_object(v) ? json_object_get(v, "default") : v;
        json_object_set_new(params, k, d ? json_deep_copy(d) : json_null());
    }
    json_object_update(params, run->conf);

    json_t *vars = json_object();
    json_object_set_new(vars, "dag_id", json_string(r->dag_id));
    json_object_set_new(vars, "run_id", json_string(r->run_id));
    json_object_set_new(vars, "task_id", json_string(r->task_id));
    json_object_set_new(vars, "try_number", json_integer(r->try_number));
    json_object_set_new(vars, "max_tries", json_integer(r->max_tries));
    json_object_set_new(vars, "ds", json_string(ds));
    json_object_set_new(vars, "ds_nodash", json_string(ds_nodash));
    json_object_set_new(vars, "ts", ts_json(ld, TS_FMT_OFFSET));
    json_object_set_new(vars, "ts_nodash", json_string(ts_nodash));
    json_object_set_new(vars, "logical_date", ts_json(ld, TS_FMT_OFFSET));
    json_object_set_new(vars, "data_interval_start", ts_json(dis, TS_FMT_OFFSET));
    json_object_set_new(vars, "data_interval_end", ts_json(die, TS_FMT_OFFSET));
    json_object_set_new(vars, "params", params);
    json_object_set_new(vars, "conf", json_deep_copy(run->conf));
    json_object_set_new(vars, "dag", json_pack("{s:s, s:s}", "id", r->dag_id, "dag_id", r->dag_id));
    json_object_set_new(vars, "task",
                        json_pack("{s:s, s:s}", "id", r->task_id, "task_id", r->task_id));
    json_object_set_new(vars, "dag_run",
                        json_pack("{s:s, s:s, s:O, s:o}", "run_id", r->run_id, "run_type",
                                  store_run_type_name(run->run_type), "conf", run->conf,
                                  "logical_date", ts_json(ld, TS_FMT_OFFSET)));
    json_object_set_new(vars, "workdir", r->workdir ? json_string(r->workdir) : json_null());
    return vars;
}

/* ---- retries --------------------------------------------------------------------------- */

static double num_field(json_t *task, const char *key, double dflt)
{
    json_t *v = json_object_get(task, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Seconds until the next try after failed try `try_number`. */
static double retry_delay_s(json_t *task, int try_number)
{
    double base = num_field(task, "retry_delay", DEFAULT_RETRY_DELAY_S);
    if (base < 0)
        base = 0;
    double d = base;
    if (json_is_true(json_object_get(task, "retry_exponential_backoff"))) {
        int e = try_number - 1;
        d = base * ldexp(1.0, e > 40 ? 40 : (e < 0 ? 0 : e));
        double cap = num_field(task, "max_retry_delay", MAX_BACKOFF_S);
        if (cap >= 0 && d > cap)
            d = cap;
    } else {
        json_t *cap = json_object_get(task, "max_retry_delay");
        if (json_is_number(cap) && d > json_number_value(cap))
            d = json_number_value(cap);
    }
    if (d > 365.0 * 86400.0)
        d = 365.0 * 86400.0;
    return d;
}

/* ---- the runner ------------------------------------------------------------------------- */

static json_t *find_task(json_t *doc, const char *task_id)
{
    json_t *tasks = json_object_get(doc, "tasks");
    if (json_is_object(tasks))
        return json_object_get(tasks, task_id);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) {
        const char *id = json_string_value(json_object_get(t, "task_id"));
        if (id && strcmp(id, task_id) == 0)
            return t;
    }
    return NULL;
}

/* Sets each entry of the rendered `env` object in the process environment. */
static int apply_env(struct runner *r, json_t *env)
{
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        if (!*k || strchr(k, '=')) {
            rfail(r, "env: invalid variable name '%s'", k);
            return -1;
        }
        char *s = json_is_string(v) ? xstrdup(json_string_value(v))
                                    : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s || setenv(k, s, 1) < 0) {
            free(s);
            rfail(r, "env: cannot set '%s'", k);
            return -1;
        }
        free(s);
    }
    return 0;
}

/* Runs everything between the claim and the final state; returns a WEIR_TASK_* result. */
static int run_try(struct runner *r, const struct exec_plugins *reg, json_t *task)
{
    json_t *with = NULL, *env = NULL, *params = NULL;
    int result = WEIR_TASK_FAILED;
    struct weir_err e = { 0 };
    struct tmpl_env tenv;
    tmpl_env_init(r, &tenv);

    const char *ref = json_string_value(json_object_get(task, "run"));
    const struct weir_plugin *plugin = NULL;
    const struct weir_operator *op = ref ? exec_plugins_find(reg, ref, &plugin) : NULL;
    if (!op) {
        rfail(r, "unknown operator '%s' (is the plugin installed?)", ref ? ref : "(none)");
        goto out;
    }
    json_t *with_src = json_object_get(task, "with");
    if (tmpl_render_json(with_src ? with_src : json_null(), &tenv, &with, &e) < 0) {
        rfail(r, "template error in with%s%s: %s", e.loc[0] ? " at " : "", e.loc, e.msg);
        goto out;
    }
    json_t *env_src = json_object_get(task, "env");
    if (json_is_object(env_src) && json_object_size(env_src) > 0) {
        if (tmpl_render_json(env_src, &tenv, &env, &e) < 0) {
            rfail(r, "template error in env%s%s: %s", e.loc[0] ? " at " : "", e.loc, e.msg);
            goto out;
        }
        if (apply_env(r, env) < 0)
            goto out;
    }
    if (exec_params_validate(op->params_schema, with, &params, &e) < 0) {
        rfail(r, "task '%s': %s.%s: %s", r->task_id, plugin->name, op->name, e.msg);
        result = WEIR_TASK_FAILED_NO_RETRY;
        goto out;
    }
    /* after setenv: the environment is not touched while threads run */
    if (r->ctl_fd >= 0) {
        r->bg_at = ts_mono_us() + LAZY_BG_US;
        atomic_store(&r->bg_due, true);
    } else {
        bg_start(r);
    }
    rlog(r, WEIR_LOG_INFO, "running %s.%s (%s %s), try %d of %d", plugin->name, op->name,
         plugin->name, plugin->version ? plugin->version : "", r->try_number, r->max_tries);
    result = op->run(&r->base, exec__host(), params);
    atomic_store(&r->bg_due, false); /* the operator is done: no thread from here on */
    if (result < WEIR_TASK_SUCCESS || result > WEIR_TASK_FAILED_NO_RETRY) {
        rfail(r, "operator returned an unknown result %d", result);
        result = WEIR_TASK_FAILED;
    }
    if (result != WEIR_TASK_SUCCESS && result != WEIR_TASK_SKIPPED && ctx_cancelled(&r->base))
        rlog(r, WEIR_LOG_WARN, "the try was cancelled (%s)",
             got_signal ? "terminated by a signal" : "the task instance left running");
out:
    json_decref(with);
    json_decref(env);
    json_decref(params);
    return result;
}

/* Stops using the control channel after it failed. A borrowed one is shut down, not
 * closed: its owner sees that and connects again for its next try. */
static void ctl_drop(struct runner *r)
{
    if (r->ctl_borrowed)
        shutdown(r->ctl_fd, SHUT_RDWR);
    else
        close(r->ctl_fd);
    r->ctl_fd = -1;
}

/* The claim, through the executor when the try has a ctl channel, else on the runner's
 * own connection. *run is the hint the executor launched the try with, or the executor's
 * answer, or read from the store. */
static int claim(struct runner *r, struct store_run *run, json_t *run_hint,
                 struct weir_err *err)
{
    bool have_run = run_hint && exec__run_from_json(run_hint, run, NULL) == 0;
    if (r->ctl_fd >= 0) {
        json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "op", "claim", "dag_id",
                                r->dag_id, "run_id", r->run_id, "task_id", r->task_id,
                                "try_number", r->try_number, "pid", (int)getpid(), "want_run",
                                !have_run);
        json_t *ans = exec__ctl_call(r->ctl_fd, req);
        json_decref(req);
        const char *code = json_string_value(json_object_get(ans, "code"));
        int rc = 1;
        if (json_is_true(json_object_get(ans, "ok"))) {
            rc = 0;
            json_t *mt = json_object_get(ans, "max_tries");
            if (json_integer_value(mt) > 0)
                r->max_tries = (int)json_integer_value(mt);
            if (!have_run)
                rc = exec__run_from_json(json_object_get(ans, "run"), run, err);
        } else if (code && (strcmp(code, "conflict") == 0 || strcmp(code, "notfound") == 0)) {
            rc = err_set(err, strcmp(code, "conflict") == 0 ? WEIR_ECONFLICT : WEIR_ENOTFOUND,
                         "%s", json_string_value(json_object_get(ans, "msg")) ?: code);
        }
        json_decref(ans);
        if (rc <= 0)
            return rc;
        /* The channel failed or the executor could not reach the store: do it ourselves. */
        ctl_drop(r);
        err_clear(err);
    }
    pthread_mutex_lock(&r->st_mu);
    struct store *st = runner_st(r);
    store_run_release(run);
    int rc = st ? store_run_get(st, r->dag_id, r->run_id, run, err)
                : err_set(err, WEIR_EUNAVAIL, "cannot open the store");
    if (rc == 0)
        rc = exec__claim_store(st, r->dag_id, r->run_id, r->task_id, r->try_number,
                               (int)getpid(), &r->max_tries, err);
    pthread_mutex_unlock(&r->st_mu);
    return rc;
}

/* The end of the try with its remaining log lines: through the executor when the try has
 * a ctl channel, else (or when that fails) on the runner's own connection, retried while
 * the store is busy. 0, -WEIR_ECONFLICT/-WEIR_ENOTFOUND when the task instance left
 * running, or another negative code. */
static int record_end(struct runner *r, const struct store_ti_update *u, char **lines,
                      int64_t *ts, size_t n, struct weir_err *err)
{
    if (r->ctl_fd >= 0) {
        json_t *jl = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(jl, json_pack("[I, s]", (json_int_t)ts[i], lines[i]));
        json_t *req = json_pack(
            "{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:o}", "op", "finish", "dag_id", r->dag_id,
            "run_id", r->run_id, "task_id", r->task_id, "try_number", r->try_number, "state",
            store_ti_state_name(u->to), "end_date", (json_int_t)u->end_date, "next_retry_at",
            (json_int_t)(u->set_next_retry_at ? u->next_retry_at : TS_NONE), "lines", jl);
        json_t *ans = req ? exec__ctl_call(r->ctl_fd, req) : NULL;
        json_decref(req);
        const char *code = json_string_value(json_object_get(ans, "code"));
        int rc = json_is_true(json_object_get(ans, "ok")) ? 0
                 : code && (strcmp(code, "conflict") == 0 || strcmp(code, "notfound") == 0)
                     ? -WEIR_ECONFLICT
                     : 1;
        json_decref(ans);
        if (rc <= 0) {
            told_executor = true;
            return rc;
        }
        ctl_drop(r);
    }
    int rc = -WEIR_EUNAVAIL;
    pthread_mutex_lock(&r->st_mu);
    struct store *st = runner_st(r);
    for (int attempt = 0; st && attempt < 5; attempt++) {
        rc = exec__finish_store(st, r->dag_id, r->run_id, r->task_id, r->try_number, u,
                                (const char *const *)lines, ts, n, err);
        if (rc != -WEIR_EUNAVAIL)
            break;
        struct timespec t = { 0, (long)(100000000L << attempt) };
        nanosleep(&t, NULL); /* the store is busy: back off, then try again */
    }
    pthread_mutex_unlock(&r->st_mu);
    if (!st)
        err_set(err, WEIR_EUNAVAIL, "cannot open the store");
    if (rc < 0 && rc != -WEIR_ECONFLICT && rc != -WEIR_ENOTFOUND) {
        /* The lines must not vanish: they go to stderr, which the executor keeps. */
        for (size_t i = 0; i < n; i++)
            LOG_ERROR("task log: %s", lines[i]);
    }
    return rc;
}

/* Writes the final state (CAS from running at this try). Returns an exec_exit value or a
 * negative code when the store stayed unreachable. */
static int finish(struct runner *r, json_t *task, int result, struct weir_err *err)
{
    struct store_ti_update u = { .set_end_date = true, .end_date = ts_now_us() };
    int code;
    switch (result) {
    case WEIR_TASK_SUCCESS:
        u.to = TI_SUCCESS;
        code = EXEC_EXIT_SUCCESS;
        break;
    case WEIR_TASK_SKIPPED:
        u.to = TI_SKIPPED;
        code = EXEC_EXIT_SKIPPED;
        break;
    default:
        code = EXEC_EXIT_FAILED;
        if (result == WEIR_TASK_FAILED && r->try_number < r->max_tries) {
            double d = retry_delay_s(task, r->try_number);
            u.to = TI_UP_FOR_RETRY;
            u.set_next_retry_at = true;
            u.next_retry_at = u.end_date + (int64_t)(d * 1e6);
            rlog(r, WEIR_LOG_INFO, "try %d of %d failed%s%s: retrying in %.0f s", r->try_number,
                 r->max_tries, r->fail_msg ? ": " : "", r->fail_msg ? r->fail_msg : "", d);
        } else {
            u.to = TI_FAILED;
            rlog(r, WEIR_LOG_INFO, "try %d of %d failed%s%s: task failed%s", r->try_number,
                 r->max_tries, r->fail_msg ? ": " : "", r->fail_msg ? r->fail_msg : "",
                 result == WEIR_TASK_FAILED_NO_RETRY ? " (not retried)" : "");
        }
        break;
    }
    if (result == WEIR_TASK_SUCCESS || result == WEIR_TASK_SKIPPED)
        rlog(r, WEIR_LOG_INFO, "task %s", store_ti_state_name(u.to));
    if (r->test)
        return code;
    /* Every line is stored with (never after) the state that says the try ended: the
     * thread is stopped and what it has not flushed goes into the same transaction. */
    bg_join(r);
    pthread_mutex_lock(&r->flush_mu);
    struct batch b = batch_take(r);
    int rc = record_end(r, &u, b.lines, b.ts, b.n, err);
    pthread_mutex_unlock(&r->flush_mu);
    batch_free(&b);
    if (rc == -WEIR_ECONFLICT || rc == -WEIR_ENOTFOUND) {
        LOG_WARN("task instance left running before the try ended, result not recorded "
                 "dag=%s run=%s task=%s try=%d",
                 r->dag_id, r->run_id, r->task_id, r->try_number);
        return EXEC_EXIT_LOST;
    }
    if (rc < 0)
        return err_prefix(err, "cannot record the end of task '%s'", r->task_id);
    return code;
}

int exec_task_run(struct store *st, const struct exec_plugins *reg,
                  const struct exec_task_opts *opts, struct weir_err *err)
{
    struct store_run run = { 0 };
    char *doc_text = NULL;
    json_t *task = NULL, *doc_params = NULL;
    struct runner r = { 0 };
    struct sigaction sa_old_term, sa_old_int;
    bool claimed = false;
    int rc;

    if (!opts || !opts->dag_id || !opts->run_id || !opts->task_id || opts->try_number < 1)
        return err_set(err, WEIR_EINVAL, "task run needs a dag, a run, a task and a try >= 1");
    if (!st && (opts->test || !opts->store_url))
        return err_set(err, WEIR_EINVAL, "task run needs a store connection or its url");
    r.base.ops = &runner_ops;
    r.st = st;
    r.ctl_fd = -1;
    r.dag_id = opts->dag_id;
    r.run_id = opts->run_id;
    r.task_id = opts->task_id;
    r.try_number = opts->try_number;
    r.test = opts->test;
    r.store_url = opts->store_url;
    r.heartbeat_us = opts->heartbeat_us > 0 ? opts->heartbeat_us : EXEC_DEFAULT_HEARTBEAT_US;
    r.test_xcoms = json_object();
    pthread_mutex_init(&r.mu, NULL);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&r.st_mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&r.flush_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ts_mono_us deadlines */
    pthread_cond_init(&r.cv, &ca);
    pthread_condattr_destroy(&ca);
    told_executor = false;
    if (opts->ctl_conn && !r.test) {
        r.ctl_fd = opts->ctl_fd;
        r.ctl_borrowed = true;
    } else if (opts->ctl && !r.test) {
        r.ctl_fd = exec__ctl_connect(opts->ctl); /* -1: record everything ourselves */
    }

    /* Handlers first, so a SIGTERM from here on cancels the try instead of killing the
     * process between the claim and the final state. */
    got_signal = 0;
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &sa_old_term);
    sigaction(SIGINT, &sa, &sa_old_int);

    if (r.test) {
        rc = store_run_get(st, opts->dag_id, opts->run_id, &run, err);
    } else if (got_signal) {
        rc = err_set(err, WEIR_EUNAVAIL, "terminated before task '%s' started", r.task_id);
    } else {
        /* The claim comes first: with a ctl channel it also brings the run. The task is
         * looked up after it, so a missing task fails the claimed try with the reason in
         * its log (a run's pinned version cannot lose a task, so this is only defensive). */
        json_t *hint = opts->run_json ? json_loads(opts->run_json, 0, NULL) : NULL;
        if (opts->max_tries > 0)
            r.max_tries = opts->max_tries;
        rc = claim(&r, &run, hint, err);
        json_decref(hint);
        claimed = rc == 0;
    }
    if (rc < 0)
        goto out;

    struct weir_err de = { 0 };
    if (opts->doc && opts->doc_version == run.version) {
        task = json_incref(find_task(opts->doc, opts->task_id));
        doc_params = json_incref(json_object_get(opts->doc, "params"));
        if (!doc_params)
            doc_params = json_object();
        rc = task ? 0 : -WEIR_ENOTFOUND;
    } else {
        pthread_mutex_lock(&r.st_mu);
        struct store *dst = runner_st(&r);
        rc = dst ? store_dag_version_get(dst, opts->dag_id, run.version, &doc_text, err)
                 : err_set(err, WEIR_EUNAVAIL, "cannot open the store");
        pthread_mutex_unlock(&r.st_mu);
        if (rc == 0)
            rc = exec__doc_task(doc_text, strlen(doc_text), opts->task_id, &task, &doc_params,
                                &de);
        if (rc == -WEIR_EINVAL) {
            /* not the shape the scanner expects: let the full parser decide */
            json_error_t je;
            json_t *doc = json_loads(doc_text, 0, &je);
            if (doc) {
                task = json_incref(find_task(doc, opts->task_id));
                doc_params = json_incref(json_object_get(doc, "params"));
                json_decref(doc);
                rc = task ? 0 : -WEIR_ENOTFOUND;
            } else {
                rc = err_set(err, WEIR_EINTERNAL,
                             "dag '%s' version %lld: invalid stored document: %s", opts->dag_id,
                             (long long)run.version, je.text);
            }
        } else if (rc == -WEIR_ENOTFOUND) {
            rc = err_set(err, WEIR_ENOTFOUND, "task '%s' not found in dag '%s' version %lld",
                         opts->task_id, opts->dag_id, (long long)run.version);
        }
    }
    if (!doc_params)
        doc_params = json_object();
    if (rc == 0 && r.max_tries < 1) {
        json_t *retries = json_object_get(task, "retries");
        r.max_tries = (json_is_integer(retries) ? (int)json_integer_value(retries) : 0) + 1;
    }
    if (r.max_tries < 1)
        r.max_tries = 1;
    if (rc < 0 && !claimed)
        goto out;

    /* From here on the try has started: problems fail it and land in its log. */

    int result;
    int wd_errno = 0;
    if (rc == 0 && opts->workdir)
        r.workdir = xstrdup(opts->workdir);
    else if (rc == 0 && !(r.workdir = exec__workdir_new()))
        wd_errno = errno;
    r.vars = build_vars(&r, &run, doc_params);
    if (rc < 0) {
        rfail(&r, "%s", err && err->msg[0] ? err->msg : "the task cannot be found");
        err_clear(err);
        result = WEIR_TASK_FAILED;
    } else if (!r.workdir) {
        char eb[128];
        rfail(&r, "cannot create a scratch folder: %s", err_errno(wd_errno, eb, sizeof eb));
        result = WEIR_TASK_FAILED;
    } else {
        result = run_try(&r, reg, task);
    }
    rc = finish(&r, task, result, err);

out:
    if (claimed || r.test)
        bg_stop(&r); /* no-op when finish() stopped it already */
    sigaction(SIGTERM, &sa_old_term, NULL);
    sigaction(SIGINT, &sa_old_int, NULL);
    if (r.ctl_fd >= 0 && !r.ctl_borrowed)
        close(r.ctl_fd);
    /* A folder lent by the fork server goes back to it when empty (it checks again before
     * lending it out); one with files in it is removed here, by the try, not by the server
     * that has other tries to fork. After the server is gone nobody would take it back. */
    if (r.workdir && (!opts->workdir || getppid() != opts->workdir_owner ||
                      !exec__workdir_reusable(r.workdir)))
        exec__workdir_remove(r.workdir);
    free(r.workdir);
    free(r.fail_msg);
    json_decref(r.vars);
    json_decref(r.test_xcoms);
    json_decref(task);
    json_decref(doc_params);
    free(doc_text);
    store_run_release(&run);
    if (r.own_st)
        store_free(r.st);
    pthread_mutex_destroy(&r.mu);
    pthread_mutex_destroy(&r.st_mu);
    pthread_mutex_destroy(&r.flush_mu);
    pthread_cond_destroy(&r.cv);
    return rc;
}
