/* executor/ctl.c - how a try records its claim and its end, and the control channel that
 * lets a forked try have the local executor record them.
 *
 * A try changes its task instance twice: the claim (queued|scheduled at try N-1 ->
 * running at try N, with its XComs cleared) and the end (running at try N -> success |
 * failed | up_for_retry | skipped, with the log lines not yet stored). Each is one store
 * transaction, made by exec__claim_store / exec__finish_store, whoever calls them.
 *
 * Tries forked by the fork server do not open a store connection for that: they connect
 * to the local executor's control socket (an abstract Unix socket of the scheduler
 * process, peers checked to be the same user) and ask it to make both transactions on
 * the scheduler's warm connection (local.c). That saves each try a connection (opening
 * SQLite parses the whole schema), and the pages of the store code it would touch after
 * fork(). Messages are JSON objects, each framed by a 4-byte length in host order:
 *   try -> executor  {"op":"claim","dag_id","run_id","task_id","try_number","pid"}
 *   executor -> try  {"ok":true,"max_tries":N,"run":{...}}  |  {"ok":false,"code":C,"msg":M}
 *   try -> executor  {"op":"finish","dag_id","run_id","task_id","try_number","state",
 *                     "end_date","next_retry_at","lines":[[ts,"text"],...]}
 *   executor -> try  {"ok":true}  |  {"ok":false,"code":C,"msg":M}
 * with C one of "conflict", "notfound", "error". Crash safety does not depend on the
 * executor: when the channel fails (the scheduler was killed, the connection dropped, the
 * executor answered "error"), the try makes the same transaction itself on a connection
 * of its own, and both functions recognize a transaction the executor committed before
 * its answer was lost. */
#define LOG_MODULE "executor"
#include "executor/executor_int.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "store/store.h"

/* ---- the two transactions ------------------------------------------------------------ */

static char host_name[256];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_init(void)
{
    if (gethostname(host_name, sizeof host_name) < 0)
        snprintf(host_name, sizeof host_name, "unknown");
    host_name[sizeof host_name - 1] = '\0';
}

/* This host's name, looked up once per process (the claim is on every try's path). */
static const char *this_host(void)
{
    pthread_once(&host_once, host_init);
    return host_name;
}

/* CAS `from` at try N-1 -> running at try N for `pid` of `host`, then the XComs cleared;
 * inside the caller's transaction. */
static int claim_from(struct store *st, const char *dag_id, const char *run_id,
                      const char *task_id, int try_number, int pid, const char *host,
                      enum store_ti_state from, struct weir_err *err)
{
    int64_t now = ts_now_us();
    struct store_ti_update u = {
        .to = TI_RUNNING,
        .set_try_number = true,
        .try_number = try_number,
        .set_start_date = true,
        .start_date = now,
        .set_end_date = true,
        .end_date = TS_NONE,
        .set_heartbeat_at = true,
        .heartbeat_at = now,
        .set_hostname = true,
        .hostname = host,
        .set_pid = true,
        .pid = pid,
    };
    int rc = store_ti_update(st, dag_id, run_id, task_id, (int)from, try_number - 1, &u, err);
    return rc < 0 ? rc : store_xcom_clear(st, dag_id, run_id, task_id, err);
}

int exec__claim_queued(struct store *st, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, int pid, struct weir_err *err)
{
    return claim_from(st, dag_id, run_id, task_id, try_number, pid, this_host(), TI_QUEUED,
                      err);
}

int exec__claim_store(struct store *st, const char *dag_id, const char *run_id,
                      const char *task_id, int try_number, int pid, int *max_tries,
                      struct weir_err *err)
{
    const char *host = this_host();
    int rc = store_begin(st, err);
    if (rc < 0)
        return rc;
    /* The usual case first: queued at the previous try, as the scheduler left it. */
    rc = claim_from(st, dag_id, run_id, task_id, try_number, pid, host, TI_QUEUED, err);
    if (rc == 0)
        return store_commit(st, err);
    if (rc != -WEIR_ECONFLICT)
        goto fail;
    err_clear(err);
    struct store_ti ti = {0};
    rc = store_ti_get(st, dag_id, run_id, task_id, &ti, err);
    if (rc < 0)
        goto fail;
    enum store_ti_state from = ti.state;
    int cur_try = ti.try_number;
    if (ti.max_tries > 0 && max_tries)
        *max_tries = ti.max_tries;
    /* Ours already: the executor claimed it for this process and its answer was lost. */
    bool ours = from == TI_RUNNING && cur_try == try_number && ti.pid == pid && ti.hostname &&
                strcmp(ti.hostname, host) == 0;
    store_ti_release(&ti);
    if (ours) {
        store_rollback(st);
        return 0;
    }
    if ((from != TI_QUEUED && from != TI_SCHEDULED) || cur_try != try_number - 1) {
        rc = err_set(err, WEIR_ECONFLICT,
                     "task instance '%s' of run '%s' is %s at try %d, not queued at try %d",
                     task_id, run_id, store_ti_state_name(from), cur_try, try_number - 1);
        goto fail;
    }
    rc = claim_from(st, dag_id, run_id, task_id, try_number, pid, host, from, err);
    if (rc == -WEIR_ECONFLICT)
        err_prefix(err, "task instance '%s' of run '%s' try %d was claimed by someone else",
                   task_id, run_id, try_number);
    if (rc < 0)
        goto fail;
    return store_commit(st, err);
fail:
    store_rollback(st);
    return rc;
}

int exec__finish_store(struct store *st, const char *dag_id, const char *run_id,
                       const char *task_id, int try_number, const struct store_ti_update *u,
                       const char *const *lines, const int64_t *ts, size_t n,
                       struct weir_err *err)
{
    int rc = store_begin(st, err);
    if (rc < 0)
        return rc;
    if (n)
        rc = store_log_append(st, dag_id, run_id, task_id, try_number, lines, ts, n, err);
    if (rc == 0)
        rc = store_ti_update(st, dag_id, run_id, task_id, TI_RUNNING, try_number, u, err);
    if (rc == 0)
        return store_commit(st, err);
    store_rollback(st);
    if (rc != -WEIR_ECONFLICT && rc != -WEIR_ENOTFOUND)
        return rc;
    /* The instance is not running at this try. Either this very transaction was committed
     * by the executor before its answer was lost (then the lines are stored too), or
     * somebody moved it meanwhile (cleared, marked, failed as a zombie): the lines still
     * belong to this try's log. */
    struct store_ti ti = {0};
    if (store_ti_get(st, dag_id, run_id, task_id, &ti, NULL) == 0 && ti.state == u->to &&
        ti.try_number == try_number && ti.end_date == u->end_date) {
        store_ti_release(&ti);
        return 0;
    }
    store_ti_release(&ti);
    if (n && store_log_append(st, dag_id, run_id, task_id, try_number, lines, ts, n, NULL) < 0)
        LOG_WARN("cannot store %zu log lines of a try that left running dag=%s run=%s task=%s "
                 "try=%d", n, dag_id, run_id, task_id, try_number);
    return rc;
}

/* ---- runs as JSON (the claim's answer carries the run the try needs) ------------------ */

static json_t *ts_or_null(int64_t v)
{
    return v == TS_NONE ? json_null() : json_integer(v);
}

static int64_t ts_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : TS_NONE;
}

json_t *exec__run_to_json(const struct store_run *r)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:O}", "dag_id", r->dag_id,
                     "run_id", r->run_id, "version", (json_int_t)r->version, "run_type",
                     store_run_type_name(r->run_type), "logical_date", ts_or_null(r->logical_date),
                     "data_interval_start", ts_or_null(r->data_interval_start),
                     "data_interval_end", ts_or_null(r->data_interval_end), "queued_at",
                     ts_or_null(r->queued_at), "conf", r->conf ? r->conf : json_object());
}

int exec__run_from_json(json_t *j, struct store_run *out, struct weir_err *err)
{
    const char *dag = json_string_value(json_object_get(j, "dag_id"));
    const char *run = json_string_value(json_object_get(j, "run_id"));
    const char *type = json_string_value(json_object_get(j, "run_type"));
    json_t *conf = json_object_get(j, "conf");
    enum store_run_type rt;
    if (!dag || !run || !type || store_run_type_parse(type, &rt) < 0 || !json_is_object(conf) ||
        !json_is_integer(json_object_get(j, "version")))
        return err_set(err, WEIR_EINVAL, "malformed run in the executor's answer");
    memset(out, 0, sizeof *out);
    out->dag_id = xstrdup(dag);
    out->run_id = xstrdup(run);
    out->version = (int64_t)json_integer_value(json_object_get(j, "version"));
    out->state = RUN_RUNNING;
    out->run_type = rt;
    out->logical_date = ts_of(j, "logical_date");
    out->data_interval_start = ts_of(j, "data_interval_start");
    out->data_interval_end = ts_of(j, "data_interval_end");
    out->queued_at = ts_of(j, "queued_at");
    out->start_date = out->end_date = TS_NONE;
    out->conf = json_incref(conf);
    return 0;
}

/* ---- the channel ------------------------------------------------------------------------ */

#define CTL_MAX_FRAME (64u * 1024 * 1024)

static socklen_t ctl_addr(const char *name, struct sockaddr_un *a)
{
    size_t n = strlen(name);
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (n == 0 || n + 1 > sizeof a->sun_path)
        return 0;
    memcpy(a->sun_path + 1, name, n); /* abstract: sun_path[0] stays '\0' */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int exec__ctl_listen(const char *name, struct weir_err *err)
{
    struct sockaddr_un a;
    socklen_t len = ctl_addr(name, &a);
    if (!len)
        return err_set(err, WEIR_EINVAL, "control socket name too long");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    char eb[128];
    if (fd < 0)
        return err_set(err, WEIR_EIO, "control socket: %s", err_errno(errno, eb, sizeof eb));
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, WEIR_EIO, "control socket: %s", err_errno(e, eb, sizeof eb));
    }
    return fd;
}

int exec__ctl_connect(const char *name)
{
    struct sockaddr_un a;
    socklen_t len = ctl_addr(name, &a);
    if (!len)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&a, len);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue; /* SIGTERM only sets a flag: the answer is still worth waiting for */
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

char *exec__ctl_frame(json_t *msg, size_t *len)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *f = xmalloc(4 + n);
    uint32_t n32 = (uint32_t)n;
    memcpy(f, &n32, 4);
    memcpy(f + 4, text, n);
    free(text);
    *len = 4 + n;
    return f;
}

json_t *exec__ctl_call(int fd, json_t *req)
{
    size_t len;
    char *f = exec__ctl_frame(req, &len);
    if (!f)
        return NULL;
    int rc = write_all(fd, f, len);
    free(f);
    if (rc < 0)
        return NULL;
    uint32_t n;
    if (read_all(fd, (char *)&n, 4) < 0 || n > CTL_MAX_FRAME)
        return NULL;
    char *body = xmalloc((size_t)n + 1);
    if (read_all(fd, body, n) < 0) {
        free(body);
        return NULL;
    }
    json_t *reply = json_loadb(body, n, 0, NULL);
    free(body);
    return json_is_object(reply) ? reply : (json_decref(reply), NULL);
}
