/* executor/local.c - the local executor: each try is `weir tasks run DAG TASK RUN_ID
 * --try N` started with uv_spawn as a detached child (its own session and process group,
 * so a scheduler crash or Ctrl-C does not take running tasks down), bounded by
 * `parallelism`. With opts->fork_server, tries are forked by a fork server instead
 * (executor/forksrv.c; same session isolation, no exec per try); if that server cannot
 * start or dies, launches fall back to exec.
 *
 * Timeouts kill the whole process group (SIGTERM, then SIGKILL after kill_grace), so
 * grandchildren the task started go too. Exits are reported through uv's SIGCHLD handling
 * on the loop thread: no polling, no sleeps (per-try overhead is one fork+exec). A try's
 * slot is released before `done` runs, so `done` may launch the next try at once. Handle
 * memory is freed only in close callbacks (libuv's rule). */
#define LOG_MODULE "executor"
#include "executor/executor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "executor/executor_int.h"
#include "store/store.h"

#define DEFAULT_KILL_GRACE_US (5 * INT64_C(1000000))
/* The fork server reads request lines of up to 4 KiB (forksrv.c); ids are checked shorter. */
#define FS_RUN_HINT_MAX       2048

struct local;

struct local_proc {
    uv_process_t proc;
    uv_timer_t timer;
    struct local *ex;
    struct local_proc *prev, *next;
    char *dag_id, *run_id, *task_id;
    int try_number;
    int pid;
    int closing; /* handles still to close */
    bool has_timer;
    bool exited;
    bool timed_out;
    bool term_sent;
    bool via_fs; /* forked by the fork server: no uv_process_t, pid from STARTED */
    int64_t version;
    int64_t timeout_us;
    int max_tries;
    char *run_json;           /* the run for the fork server's child, or NULL */
    struct local_proc *qnext; /* in the queue of accepted tries waiting for a slot */
    /* Forked ahead while waiting for a slot (in the queue and in the list of procs): the
     * try prepares, connects and asks for its claim, which is answered when a slot frees. */
    bool waiting;
    struct ctl_conn *held;    /* the connection whose claim request waits for the slot */
    json_t *held_req;
    long id;     /* fork server request id */
};

struct local {
    struct exec base;
    uv_loop_t *loop;
    char *weir_exe;
    int parallelism;
    int64_t kill_grace_us;
    exec_done_fn done;
    void *ud;
    struct local_proc *head; /* every proc whose handles are not closed yet */
    int running;             /* tries launched and not exited */
    /* Tries accepted while every slot was taken (at most `parallelism` of them): each
     * starts the moment a slot frees, without waiting for a scheduler pass. */
    struct local_proc *q_head, *q_tail;
    int queued;
    int handles;             /* procs not yet freed */
    bool closing;
    /* the fork server */
    uv_process_t fs_proc;
    uv_pipe_t fs_in, fs_out; /* its stdin (requests) and stdout (events) */
    int fs_handles;          /* fork server handles not yet closed */
    bool fs_alive;
    long fs_next_id;
    char fs_buf[4096];
    size_t fs_used;
    /* the control socket of forked tries (ctl.c) */
    struct store *st;         /* borrowed: the loop thread's connection */
    uv_pipe_t ctl_srv;
    bool ctl_on;
    char ctl_name[80];
    int ctl_handles;          /* server + connections + heartbeat timer not yet closed */
    struct ctl_conn *conns;
    /* Heartbeats of the forked tries, written here: such a try starts no thread of its own
     * unless it runs long enough to need one (runner.c, bg_poke). */
    uv_timer_t hb_timer;
    bool hb_on;
    int64_t heartbeat_us;
};

/* One connected try. */
struct ctl_conn {
    uv_pipe_t pipe;
    struct local *ex;
    struct ctl_conn *prev, *next;
    char *buf;
    size_t used, cap;
    bool closing;
    struct local_proc *held_for; /* its claim waits for this proc's slot */
};

static void local_maybe_free(struct local *ex)
{
    if (ex->closing && ex->handles == 0 && ex->fs_handles == 0 && ex->ctl_handles == 0) {
        free(ex->weir_exe);
        free(ex);
    }
}

static void proc_unlink(struct local_proc *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (p->ex->head == p)
        p->ex->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void proc_free(struct local_proc *p)
{
    struct local *ex = p->ex;
    free(p->dag_id);
    free(p->run_id);
    free(p->task_id);
    free(p->run_json);
    json_decref(p->held_req);
    if (p->held)
        p->held->held_for = NULL;
    free(p);
    ex->handles--;
    local_maybe_free(ex);
}

static void proc_handle_closed(uv_handle_t *h)
{
    struct local_proc *p = h->data;
    if (--p->closing > 0)
        return;
    proc_free(p);
}

static void proc_close(struct local_proc *p)
{
    if (p->closing)
        return;
    proc_unlink(p);
    p->closing = (p->via_fs ? 0 : 1) + (p->has_timer ? 1 : 0);
    if (p->closing == 0) {
        proc_free(p);
        return;
    }
    if (p->has_timer)
        uv_close((uv_handle_t *)&p->timer, proc_handle_closed);
    if (!p->via_fs)
        uv_close((uv_handle_t *)&p->proc, proc_handle_closed);
}

static void kill_group(struct local_proc *p, int sig)
{
    if (p->pid > 0 && kill(-p->pid, sig) < 0 && errno != ESRCH) {
        char eb[128];
        LOG_WARN("cannot signal process group pgid=%d sig=%d: %s", p->pid, sig,
                 err_errno(errno, eb, sizeof eb));
    }
}

static int fs_send(struct local *ex, const char *text);

/* Signals a try's process group; with `sweep`, SIGKILLs the rest of its session too. A try
 * of a living fork server is signalled by the server: the process may be a worker that has
 * finished this try and runs another one by now (forksrv.c), which only the server knows.
 * The request names the try, so it works before STARTED told us the pid. */
static void proc_signal(struct local_proc *p, int sig, bool sweep)
{
    if (p->via_fs && p->ex->fs_alive) {
        char line[96];
        snprintf(line, sizeof line, "KILL\t%ld\t%d\t%d\t%d\n", p->id, p->pid, sig, sweep ? 1 : 0);
        if (fs_send(p->ex, line) == 0)
            return;
    }
    kill_group(p, sig);
    if (sweep)
        exec__kill_session(p->pid);
}

static void on_timer(uv_timer_t *t)
{
    struct local_proc *p = t->data;
    if (p->exited)
        return;
    if (!p->term_sent) {
        p->timed_out = true;
        p->term_sent = true;
        LOG_INFO("try timed out, terminating dag=%s run=%s task=%s try=%d pid=%d", p->dag_id,
                 p->run_id, p->task_id, p->try_number, p->pid);
        proc_signal(p, SIGTERM, false);
        uint64_t ms = (uint64_t)((p->ex->kill_grace_us + 999) / 1000);
        uv_timer_start(&p->timer, on_timer, ms ? ms : 1, 0);
    } else {
        LOG_WARN("try ignored SIGTERM, killing dag=%s run=%s task=%s try=%d pid=%d", p->dag_id,
                 p->run_id, p->task_id, p->try_number, p->pid);
        proc_signal(p, SIGKILL, true);
    }
}

static void start_queued(struct local *ex);
static void queue_remove(struct local *ex, struct local_proc *p);
static void held_drop(struct local_proc *p);
static void held_answer(struct local_proc *p, const char *why);
static void slot_take(struct local *ex, struct local_proc *p, int64_t timeout_us);

static void proc_exited(struct local_proc *p, int64_t exit_status, int term_signal)
{
    struct local *ex = p->ex;
    p->exited = true;
    if (p->waiting) { /* died before it had a slot */
        queue_remove(ex, p);
        p->waiting = false;
        held_drop(p);
    } else {
        ex->running--;
    }
    start_queued(ex);
    if (p->has_timer)
        uv_timer_stop(&p->timer);
    /* The leader is gone; members that ignored SIGTERM would outlive the timeout. The pgid
     * cannot be reused while any member is alive, so this reaches only our group. */
    if (p->term_sent)
        proc_signal(p, SIGKILL, true);
    LOG_DEBUG("try exited dag=%s run=%s task=%s try=%d status=%lld signal=%d", p->dag_id, p->run_id,
              p->task_id, p->try_number, (long long)exit_status, term_signal);
    if (!ex->closing && ex->done) {
        struct exec_event ev = {
            .dag_id = p->dag_id,
            .run_id = p->run_id,
            .task_id = p->task_id,
            .try_number = p->try_number,
            .exit_status = term_signal ? -1 : exit_status,
            .term_signal = term_signal,
            .timed_out = p->timed_out,
        };
        ex->done(ex->ud, &ev);
    }
    proc_close(p);
}

static void on_exit_cb(uv_process_t *h, int64_t exit_status, int term_signal)
{
    proc_exited(h->data, exit_status, term_signal);
}

/* ---- the fork server ------------------------------------------------------------------ */

static struct local_proc *fs_find(struct local *ex, long id)
{
    for (struct local_proc *p = ex->head; p; p = p->next)
        if (p->via_fs && p->id == id && !p->exited)
            return p;
    return NULL;
}

static void fs_handle_closed(uv_handle_t *h)
{
    struct local *ex = h->data;
    ex->fs_handles--;
    local_maybe_free(ex);
}

/* Closes the server's handles; tries it forked and has not reported are forgotten here
 * (their processes live on in their own sessions; the scheduler's sweep adopts them). */
static void fs_shutdown(struct local *ex)
{
    if (!ex->fs_alive)
        return;
    ex->fs_alive = false;
    uv_close((uv_handle_t *)&ex->fs_in, fs_handle_closed);
    uv_close((uv_handle_t *)&ex->fs_out, fs_handle_closed);
    struct local_proc *p = ex->head, *next;
    for (; p; p = next) {
        next = p->next;
        if (p->via_fs && !p->exited && p->waiting) {
            /* Forked ahead, no slot yet: tell it not to run, and start it with exec later. */
            held_answer(p, "the fork server stopped before the try started");
            proc_unlink(p);
            p->via_fs = false;
            p->waiting = false;
        } else if (p->via_fs && !p->exited) {
            p->exited = true;
            ex->running--;
            proc_close(p);
        }
    }
    start_queued(ex);
}

static void fs_on_exit(uv_process_t *h, int64_t exit_status, int term_signal)
{
    struct local *ex = h->data;
    if (!ex->closing)
        LOG_WARN("fork server exited status=%lld signal=%d: starting tries with exec from now on",
                 (long long)exit_status, term_signal);
    fs_shutdown(ex);
    uv_close((uv_handle_t *)h, fs_handle_closed);
}

static void fs_line(struct local *ex, char *line)
{
    char *f[4] = {0};
    int nf = 0;
    for (char *p = line, *tab; nf < 4; p = tab + 1) {
        f[nf++] = p;
        tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
    }
    if (nf < 3)
        return;
    struct local_proc *p = fs_find(ex, strtol(f[1], NULL, 10));
    if (!p)
        return;
    if (strcmp(f[0], "STARTED") == 0) {
        p->pid = (int)strtol(f[2], NULL, 10);
        LOG_DEBUG("try started dag=%s run=%s task=%s try=%d pid=%d", p->dag_id, p->run_id,
                  p->task_id, p->try_number, p->pid);
        /* a try that timed out before this was signalled by the server (KILL by id) */
    } else if (strcmp(f[0], "EXITED") == 0 && nf == 4) {
        proc_exited(p, strtoll(f[2], NULL, 10), (int)strtol(f[3], NULL, 10));
    } else if (strcmp(f[0], "FAILED") == 0) {
        LOG_ERROR("fork server could not fork dag=%s run=%s task=%s: errno %s", p->dag_id,
                  p->run_id, p->task_id, f[2]);
        proc_exited(p, 5, 0);
    }
}

static void fs_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct local *ex = h->data;
    buf->base = ex->fs_buf + ex->fs_used;
    buf->len = sizeof ex->fs_buf - ex->fs_used;
}

static void fs_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct local *ex = s->data;
    if (n < 0) {
        if (!ex->closing)
            LOG_WARN("fork server pipe closed: %s", uv_strerror((int)n));
        fs_shutdown(ex);
        return;
    }
    ex->fs_used += (size_t)n;
    char *nl;
    while ((nl = memchr(ex->fs_buf, '\n', ex->fs_used)) != NULL) {
        *nl = '\0';
        fs_line(ex, ex->fs_buf);
        size_t rest = ex->fs_used - (size_t)(nl + 1 - ex->fs_buf);
        memmove(ex->fs_buf, nl + 1, rest);
        ex->fs_used = rest;
        if (!ex->fs_alive)
            return;
    }
    if (ex->fs_used == sizeof ex->fs_buf)
        ex->fs_used = 0; /* cannot happen with well-formed lines */
}

static int fs_start(struct local *ex)
{
    uv_pipe_init(ex->loop, &ex->fs_in, 0);
    uv_pipe_init(ex->loop, &ex->fs_out, 0);
    ex->fs_in.data = ex->fs_out.data = ex->fs_proc.data = ex;
    /* weir-fork-server beside the weir binary is the lean one (forksrv/main.c); the weir
     * binary itself serves as well. */
    char *lean = xasprintf("%s", ex->weir_exe);
    char *slash = strrchr(lean, '/');
    char *path = slash ? xasprintf("%.*s/weir-fork-server", (int)(slash - lean), lean)
                       : xstrdup("weir-fork-server");
    free(lean);
    char *ctl = ex->ctl_on ? ex->ctl_name : NULL;
    char *args_lean[] = {path, ctl, NULL};
    char *args_weir[] = {ex->weir_exe, "tasks", "fork-server", ctl, NULL};
    char **args = access(path, X_OK) == 0 ? args_lean : args_weir;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&ex->fs_in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&ex->fs_out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t po = {.exit_cb = fs_on_exit, .file = args[0], .args = args,
                               .stdio_count = 3, .stdio = stdio};
    ex->fs_handles = 3;
    int rc = uv_spawn(ex->loop, &ex->fs_proc, &po);
    free(path);
    if (rc < 0) {
        LOG_WARN("cannot start the fork server: %s (tries start with exec)", uv_strerror(rc));
        uv_close((uv_handle_t *)&ex->fs_proc, fs_handle_closed);
        uv_close((uv_handle_t *)&ex->fs_in, fs_handle_closed);
        uv_close((uv_handle_t *)&ex->fs_out, fs_handle_closed);
        return rc;
    }
    ex->fs_alive = true;
    uv_read_start((uv_stream_t *)&ex->fs_out, fs_alloc, fs_read);
    return 0;
}

static void fs_write_done(uv_write_t *req, int status)
{
    (void)status; /* a dead server is noticed by its exit callback */
    free(req);
}

/* Sends one line to the fork server; the request and its text live in one allocation. */
static int fs_send(struct local *ex, const char *text)
{
    size_t len = strlen(text);
    uv_write_t *req = xmalloc(sizeof *req + len);
    char *copy = (char *)(req + 1);
    memcpy(copy, text, len);
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    int rc = uv_write(req, (uv_stream_t *)&ex->fs_in, &b, 1, fs_write_done);
    if (rc < 0)
        free(req);
    return rc;
}

/* Sends one RUN request. */
static int fs_request(struct local *ex, struct local_proc *p)
{
    for (const char *s2 = p->dag_id; *s2; s2++)
        if (*s2 == '\t' || *s2 == '\n')
            return -1;
    for (const char *s2 = p->run_id; *s2; s2++)
        if (*s2 == '\t' || *s2 == '\n')
            return -1;
    for (const char *s2 = p->task_id; *s2; s2++)
        if (*s2 == '\t' || *s2 == '\n')
            return -1;
    /* compact JSON never holds a raw tab or newline. The run is only a hint: one too long
     * for the server's request line (a large conf) is left out, and the try asks for it. */
    const char *run_json = p->run_json && strlen(p->run_json) <= FS_RUN_HINT_MAX ? p->run_json : "";
    char *text = xasprintf("RUN\t%ld\t%s\t%s\t%s\t%d\t%lld\t%d\t%s\n", p->id, p->dag_id,
                           p->run_id, p->task_id, p->try_number, (long long)p->version,
                           p->max_tries, run_json);
    int rc = fs_send(ex, text);
    free(text);
    return rc;
}

/* ---- the control socket: claims and ends recorded for forked tries (ctl.c) ------------ */

static void ctl_conn_closed(uv_handle_t *h)
{
    struct ctl_conn *c = h->data;
    struct local *ex = c->ex;
    free(c->buf);
    free(c);
    ex->ctl_handles--;
    local_maybe_free(ex);
}

static void ctl_conn_close(struct ctl_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->held_for) {
        struct local_proc *p = c->held_for;
        p->held = NULL;
        json_decref(p->held_req);
        p->held_req = NULL;
        c->held_for = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->ex->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->pipe, ctl_conn_closed);
}

static json_t *ctl_fail(int rc, const struct weir_err *e)
{
    const char *code = rc == -WEIR_ECONFLICT ? "conflict" : rc == -WEIR_ENOTFOUND ? "notfound"
                                                                                : "error";
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "msg", e->msg);
}

static json_t *ctl_claim(struct local *ex, json_t *m, const char *dag, const char *run,
                         const char *task, int try_number)
{
    json_t *jpid = json_object_get(m, "pid");
    struct weir_err e = {0};
    if (!json_is_integer(jpid))
        return ctl_fail(-WEIR_EINVAL, &e);
    int max_tries = 0;
    int rc = exec__claim_store(ex->st, dag, run, task, try_number, (int)json_integer_value(jpid),
                               &max_tries, &e);
    if (rc < 0)
        return ctl_fail(rc, &e);
    if (!json_is_true(json_object_get(m, "want_run")))
        return json_pack("{s:b}", "ok", 1); /* the try has the run from its launch */
    struct store_run r = {0};
    rc = store_run_get(ex->st, dag, run, &r, &e);
    json_t *ans = rc < 0 ? ctl_fail(rc, &e)
                         : json_pack("{s:b, s:i, s:o}", "ok", 1, "max_tries", max_tries, "run",
                                     exec__run_to_json(&r));
    store_run_release(&r);
    return ans;
}

static struct local_proc *proc_find(struct local *ex, const char *dag, const char *run,
                                    const char *task, int try_number);

/* Records a try's end. When the next try in the queue was forked ahead and its claim is
 * held, that claim goes into the same transaction (one commit hands the slot over):
 * *next is then that proc and *next_ans its answer, for the caller to send once the
 * finishing try is answered. */
static json_t *ctl_finish(struct local *ex, json_t *m, const char *dag, const char *run,
                          const char *task, int try_number, int *exit_code,
                          struct local_proc **next, json_t **next_ans)
{
    struct weir_err e = {0};
    enum store_ti_state to;
    const char *state = json_string_value(json_object_get(m, "state"));
    json_t *jend = json_object_get(m, "end_date"), *jnext = json_object_get(m, "next_retry_at");
    json_t *jl = json_object_get(m, "lines");
    if (!state || store_ti_state_parse(state, &to) < 0 ||
        (to != TI_SUCCESS && to != TI_FAILED && to != TI_UP_FOR_RETRY && to != TI_SKIPPED) ||
        !json_is_integer(jend) || !json_is_integer(jnext) || !json_is_array(jl))
        return ctl_fail(-WEIR_EINVAL, &e);
    struct store_ti_update u = {.to = to, .set_end_date = true,
                                .end_date = (int64_t)json_integer_value(jend)};
    if ((int64_t)json_integer_value(jnext) != TS_NONE) {
        u.set_next_retry_at = true;
        u.next_retry_at = (int64_t)json_integer_value(jnext);
    }
    size_t n = json_array_size(jl);
    const char **lines = xcalloc(n ? n : 1, sizeof *lines);
    int64_t *ts = xcalloc(n ? n : 1, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(jl, i);
        lines[i] = json_string_value(json_array_get(l, 1));
        ts[i] = (int64_t)json_integer_value(json_array_get(l, 0));
        if (!lines[i]) {
            free(lines);
            free(ts);
            return ctl_fail(-WEIR_EINVAL, &e);
        }
    }
    struct local_proc *pa = proc_find(ex, dag, run, task, try_number);
    struct local_proc *pb = ex->q_head;
    json_t *jpid = pb && pb->held_req ? json_object_get(pb->held_req, "pid") : NULL;
    int rc = 1;
    if (pa && !pa->waiting && pb && pb->waiting && pb->held && json_is_integer(jpid) &&
        !json_is_true(json_object_get(pb->held_req, "want_run")) &&
        store_begin(ex->st, NULL) == 0) {
        rc = n ? store_log_append(ex->st, dag, run, task, try_number, lines, ts, n, &e) : 0;
        if (rc == 0)
            rc = store_ti_update(ex->st, dag, run, task, TI_RUNNING, try_number, &u, &e);
        struct weir_err eb = {0};
        int rcb = -WEIR_EINTERNAL;
        if (rc == 0 || rc == -WEIR_ECONFLICT || rc == -WEIR_ENOTFOUND)
            rcb = exec__claim_queued(ex->st, pb->dag_id, pb->run_id, pb->task_id,
                                     pb->try_number, (int)json_integer_value(jpid), &eb);
        bool settled = rcb == 0 || rcb == -WEIR_ECONFLICT || rcb == -WEIR_ENOTFOUND;
        if (settled && store_commit(ex->st, NULL) == 0) {
            *next = pb;
            *next_ans = rcb == 0 ? json_pack("{s:b}", "ok", 1) : ctl_fail(rcb, &eb);
        } else {
            /* a database error: redo the end alone; the held claim waits for its turn */
            store_rollback(ex->st);
            err_clear(&e);
            rc = 1;
        }
    }
    if (rc == 1)
        rc = exec__finish_store(ex->st, dag, run, task, try_number, &u, lines, ts, n, &e);
    free(lines);
    free(ts);
    if (rc == 0)
        *exit_code = to == TI_SUCCESS ? EXEC_EXIT_SUCCESS
                     : to == TI_SKIPPED ? EXEC_EXIT_SKIPPED
                                        : EXEC_EXIT_FAILED;
    else if (rc == -WEIR_ECONFLICT || rc == -WEIR_ENOTFOUND)
        *exit_code = EXEC_EXIT_LOST;
    return rc < 0 ? ctl_fail(rc, &e) : json_pack("{s:b}", "ok", 1);
}

static void ctl_write_done(uv_write_t *req, int status)
{
    (void)status; /* a try that went away falls back to its own connection */
    free(req);
}

static void ctl_send(struct ctl_conn *c, json_t *ans)
{
    size_t flen;
    char *frame = exec__ctl_frame(ans, &flen);
    json_decref(ans);
    if (!frame) {
        ctl_conn_close(c);
        return;
    }
    uv_write_t *req = xmalloc(sizeof *req + flen);
    memcpy(req + 1, frame, flen);
    free(frame);
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)flen);
    if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, ctl_write_done) < 0) {
        free(req);
        ctl_conn_close(c);
    }
}

static struct local_proc *proc_find(struct local *ex, const char *dag, const char *run,
                                    const char *task, int try_number)
{
    for (struct local_proc *p = ex->head; p; p = p->next)
        if (p->via_fs && !p->exited && p->try_number == try_number &&
            strcmp(p->task_id, task) == 0 && strcmp(p->run_id, run) == 0 &&
            strcmp(p->dag_id, dag) == 0)
            return p;
    return NULL;
}

static void held_drop(struct local_proc *p)
{
    if (p->held)
        p->held->held_for = NULL;
    p->held = NULL;
    json_decref(p->held_req);
    p->held_req = NULL;
}

/* Answers the claim `p` holds: made now (its slot came), or refused with `why`. */
static void held_answer(struct local_proc *p, const char *why)
{
    if (!p->held)
        return;
    struct ctl_conn *c = p->held;
    json_t *ans;
    if (why) {
        struct weir_err e = {0};
        err_set(&e, WEIR_ECONFLICT, "%s", why);
        ans = ctl_fail(-WEIR_ECONFLICT, &e);
    } else {
        ans = ctl_claim(p->ex, p->held_req, p->dag_id, p->run_id, p->task_id, p->try_number);
    }
    held_drop(p);
    ctl_send(c, ans);
}

static void ctl_handle(struct ctl_conn *c, const char *text, size_t len)
{
    json_t *m = json_loadb(text, len, 0, NULL);
    const char *op = json_string_value(json_object_get(m, "op"));
    const char *dag = json_string_value(json_object_get(m, "dag_id"));
    const char *run = json_string_value(json_object_get(m, "run_id"));
    const char *task = json_string_value(json_object_get(m, "task_id"));
    json_t *jtry = json_object_get(m, "try_number");
    struct weir_err e = {0};
    json_t *ans;
    int ended = -1;
    struct local_proc *next = NULL;
    json_t *next_ans = NULL;
    if (!op || !dag || !run || !task || !json_is_integer(jtry) || json_integer_value(jtry) < 1) {
        err_set(&e, WEIR_EINVAL, "malformed request");
        ans = ctl_fail(-WEIR_EINVAL, &e);
    } else if (strcmp(op, "claim") == 0) {
        struct local_proc *p = proc_find(c->ex, dag, run, task, (int)json_integer_value(jtry));
        if (p && p->waiting && !p->held && !c->held_for) {
            /* Forked ahead of its slot: the answer waits until the slot frees. */
            p->held = c;
            p->held_req = m;
            c->held_for = p;
            return;
        }
        ans = ctl_claim(c->ex, m, dag, run, task, (int)json_integer_value(jtry));
    } else if (strcmp(op, "finish") == 0) {
        ans = ctl_finish(c->ex, m, dag, run, task, (int)json_integer_value(jtry), &ended, &next,
                         &next_ans);
    } else {
        err_set(&e, WEIR_EINVAL, "unknown request '%s'", op);
        ans = ctl_fail(-WEIR_EINVAL, &e);
    }
    ctl_send(c, ans);
    if (next) {
        /* The slot goes to the try whose claim was made with this end. */
        struct local *ex = c->ex;
        queue_remove(ex, next);
        next->waiting = false;
        slot_take(ex, next, next->timeout_us);
        struct ctl_conn *nc = next->held;
        held_drop(next);
        ctl_send(nc, next_ans);
    }
    /* The try's end is recorded: it no longer holds a slot. Its process is only exiting
     * (its exit report is then ignored), so the next try can start meanwhile. */
    if (ended >= 0) {
        struct local_proc *p = proc_find(c->ex, dag, run, task, (int)json_integer_value(jtry));
        if (p && !p->waiting) {
            proc_exited(p, ended, 0);
        } else if (!p && !c->ex->closing && c->ex->done) {
            /* A try this executor no longer tracks (its fork server died and left it
             * running): the scheduler hears of its end now rather than at the next sweep. */
            struct exec_event ev = {.dag_id = dag, .run_id = run, .task_id = task,
                                    .try_number = (int)json_integer_value(jtry),
                                    .exit_status = ended};
            c->ex->done(c->ex->ud, &ev);
        }
    }
    json_decref(m);
}

#define CTL_MAX_MSG (64u * 1024 * 1024)

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ctl_conn *c = h->data;
    if (c->cap - c->used < suggested) {
        c->cap = c->used + suggested;
        c->buf = xrealloc(c->buf, c->cap);
    }
    buf->base = c->buf + c->used;
    buf->len = c->cap - c->used;
}

static void ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct ctl_conn *c = s->data;
    if (n < 0) {
        ctl_conn_close(c);
        return;
    }
    c->used += (size_t)n;
    size_t off = 0;
    while (c->used - off >= 4) {
        uint32_t len;
        memcpy(&len, c->buf + off, 4);
        if (len > CTL_MAX_MSG) {
            LOG_WARN("control socket: message of %u bytes refused", len);
            ctl_conn_close(c);
            return;
        }
        if (c->used - off - 4 < len)
            break;
        ctl_handle(c, c->buf + off + 4, len);
        if (c->closing)
            return;
        off += 4 + (size_t)len;
    }
    memmove(c->buf, c->buf + off, c->used - off);
    c->used -= off;
}

static void ctl_on_connection(uv_stream_t *srv, int status)
{
    struct local *ex = srv->data;
    if (status < 0 || ex->closing)
        return;
    struct ctl_conn *c = xcalloc(1, sizeof *c);
    c->ex = ex;
    uv_pipe_init(ex->loop, &c->pipe, 0);
    c->pipe.data = c;
    ex->ctl_handles++;
    c->next = ex->conns;
    if (ex->conns)
        ex->conns->prev = c;
    ex->conns = c;
    if (uv_accept(srv, (uv_stream_t *)&c->pipe) < 0) {
        ctl_conn_close(c);
        return;
    }
    /* Only our own user's processes may record task states. */
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid()) {
        LOG_WARN("control socket: refused a connection from another user");
        ctl_conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc, ctl_read);
}

static void ctl_srv_closed(uv_handle_t *h)
{
    struct local *ex = h->data;
    ex->ctl_handles--;
    local_maybe_free(ex);
}

static void on_hb_timer(uv_timer_t *t);

/* Listens on a fresh abstract socket name; without it, tries record everything themselves. */
static void ctl_start(struct local *ex)
{
    unsigned char rnd[8];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) < 0)
        return;
    snprintf(ex->ctl_name, sizeof ex->ctl_name, "weir-exec-%d-%02x%02x%02x%02x%02x%02x%02x%02x",
             (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    struct weir_err e = {0};
    int fd = exec__ctl_listen(ex->ctl_name, &e);
    if (fd < 0) {
        LOG_WARN("no control socket for tries (%s): each try opens its own store connection",
                 e.msg);
        return;
    }
    uv_pipe_init(ex->loop, &ex->ctl_srv, 0);
    ex->ctl_srv.data = ex;
    ex->ctl_handles++;
    int rc = uv_pipe_open(&ex->ctl_srv, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ex->ctl_srv, 128, ctl_on_connection);
    if (rc < 0) {
        LOG_WARN("no control socket for tries (%s): each try opens its own store connection",
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&ex->ctl_srv, ctl_srv_closed);
        return;
    }
    ex->ctl_on = true;
    uv_timer_init(ex->loop, &ex->hb_timer);
    ex->hb_timer.data = ex;
    ex->ctl_handles++;
    ex->hb_on = true;
    uv_unref((uv_handle_t *)&ex->hb_timer); /* never keeps the loop alive on its own */
}

/* Runs the heartbeat timer while forked tries run (it stops itself when none is left). */
static void hb_arm(struct local *ex)
{
    if (ex->hb_on && !uv_is_active((uv_handle_t *)&ex->hb_timer)) {
        uint64_t ms = (uint64_t)(ex->heartbeat_us / 1000);
        uv_timer_start(&ex->hb_timer, on_hb_timer, ms, ms);
    }
}

/* Every heartbeat interval, one transaction of heartbeats for the tries forked through the
 * fork server and not yet exited. A try not claimed yet, or no longer running at its try
 * number (marked, cleared), changes nothing: store_ti_heartbeat only touches a running
 * try, and the try's own thread, once started, notices the change and cancels it. */
static bool hb_wanted(const struct local_proc *p)
{
    return p->via_fs && !p->exited && !p->waiting;
}

static void on_hb_timer(uv_timer_t *t)
{
    struct local *ex = t->data;
    const struct local_proc *first = ex->head;
    while (first && !hb_wanted(first))
        first = first->next;
    if (!first || ex->closing) {
        uv_timer_stop(t); /* idle: restarted by the next forked try (hb_arm) */
        return;
    }
    struct weir_err e = {0};
    int64_t now = ts_now_us();
    int rc = store_begin(ex->st, &e);
    for (const struct local_proc *p = first; p && rc == 0; p = p->next) {
        if (!hb_wanted(p))
            continue;
        rc = store_ti_heartbeat(ex->st, p->dag_id, p->run_id, p->task_id, p->try_number, now, &e);
        if (rc == -WEIR_ECONFLICT || rc == -WEIR_ENOTFOUND) {
            err_clear(&e);
            rc = 0;
        }
    }
    if (rc == 0)
        rc = store_commit(ex->st, &e);
    if (rc < 0) {
        store_rollback(ex->st);
        LOG_WARN("cannot write the heartbeats of running tries: %s", e.msg);
    }
}

static void hb_timer_closed(uv_handle_t *h)
{
    struct local *ex = h->data;
    ex->ctl_handles--;
    local_maybe_free(ex);
}

static void ctl_stop(struct local *ex)
{
    if (ex->hb_on) {
        ex->hb_on = false;
        uv_close((uv_handle_t *)&ex->hb_timer, hb_timer_closed);
    }
    if (ex->ctl_on) {
        ex->ctl_on = false;
        uv_close((uv_handle_t *)&ex->ctl_srv, ctl_srv_closed);
    }
    while (ex->conns)
        ctl_conn_close(ex->conns);
}

static int local_slots_free(const struct exec *base)
{
    const struct local *ex = (const struct local *)base;
    if (ex->closing)
        return 0;
    int n = 2 * ex->parallelism - ex->running - ex->queued;
    return n > 0 ? n : 0;
}

static int local_running(const struct exec *base)
{
    return ((const struct local *)base)->running;
}

static bool local_is_running(const struct exec *base, const char *dag_id, const char *run_id,
                             const char *task_id, int try_number)
{
    const struct local *ex = (const struct local *)base;
    for (const struct local_proc *p = ex->head; p; p = p->next)
        if (!p->exited && p->try_number == try_number && strcmp(p->task_id, task_id) == 0 &&
            strcmp(p->run_id, run_id) == 0 && strcmp(p->dag_id, dag_id) == 0)
            return true;
    for (const struct local_proc *p = ex->q_head; p; p = p->qnext)
        if (p->try_number == try_number && strcmp(p->task_id, task_id) == 0 &&
            strcmp(p->run_id, run_id) == 0 && strcmp(p->dag_id, dag_id) == 0)
            return true;
    return false;
}

/* Counts a started try, links it into the list and arms its timeout. */
static void proc_link(struct local *ex, struct local_proc *p)
{
    p->next = ex->head;
    if (ex->head)
        ex->head->prev = p;
    ex->head = p;
}

/* The try takes a slot: it counts as running and its timeout starts. */
static void slot_take(struct local *ex, struct local_proc *p, int64_t timeout_us)
{
    ex->running++;
    if (p->via_fs)
        hb_arm(ex);
    if (timeout_us > 0) {
        uv_timer_init(ex->loop, &p->timer);
        p->timer.data = p;
        p->has_timer = true;
        uv_timer_start(&p->timer, on_timer, (uint64_t)((timeout_us + 999) / 1000), 0);
    }
}

static void proc_track(struct local *ex, struct local_proc *p, int64_t timeout_us)
{
    ex->handles++;
    proc_link(ex, p);
    slot_take(ex, p, timeout_us);
}

/* Starts accepted try `p` in a free slot: through the fork server, else with exec. On
 * failure `p` is being closed (its strings stay valid until the loop runs again). */
static int proc_start(struct local *ex, struct local_proc *p, struct weir_err *err)
{
    if (ex->fs_alive) {
        p->via_fs = true;
        p->id = ++ex->fs_next_id;
        if (fs_request(ex, p) == 0) {
            proc_track(ex, p, p->timeout_us);
            return 0;
        }
        p->via_fs = false; /* odd ids or a broken pipe: exec this one */
    }

    char trybuf[16];
    snprintf(trybuf, sizeof trybuf, "%d", p->try_number);
    char *args[] = { ex->weir_exe, "tasks", "run",  p->dag_id, p->task_id,
                     p->run_id,    "--try", trybuf, NULL };
    /* stdin from nothing; the runner's own stdout and stderr join ours (task output goes
     * to the store, so this is only the runner's diagnostics). */
    uv_stdio_container_t stdio[3] = {
        { .flags = UV_IGNORE },
        { .flags = UV_INHERIT_FD, .data.fd = 2 },
        { .flags = UV_INHERIT_FD, .data.fd = 2 },
    };
    uv_process_options_t po = {
        .exit_cb = on_exit_cb,
        .file = ex->weir_exe,
        .args = args,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    p->proc.data = p;
    int rc = uv_spawn(ex->loop, &p->proc, &po);
    if (rc < 0) {
        int r = err_set(err, WEIR_EIO, "cannot start '%s' for task '%s': %s", ex->weir_exe,
                        p->task_id, uv_strerror(rc));
        /* uv_spawn initialized the handle even on failure: it must be closed. */
        p->closing = 1;
        ex->handles++;
        uv_close((uv_handle_t *)&p->proc, proc_handle_closed);
        return r;
    }
    p->pid = p->proc.pid;
    proc_track(ex, p, p->timeout_us);
    LOG_DEBUG("try started dag=%s run=%s task=%s try=%d pid=%d", p->dag_id, p->run_id, p->task_id,
              p->try_number, p->pid);
    return 0;
}

/* Starts queued tries while slots are free. One that cannot start is reported through
 * `done` as a failed start (the scheduler then fails the try with the reason). */
static void queue_remove(struct local *ex, struct local_proc *p)
{
    struct local_proc **pp = &ex->q_head, *prev = NULL;
    for (; *pp && *pp != p; pp = &(*pp)->qnext)
        prev = *pp;
    if (!*pp)
        return;
    *pp = p->qnext;
    if (ex->q_tail == p)
        ex->q_tail = prev;
    p->qnext = NULL;
    ex->queued--;
}

static void start_queued(struct local *ex)
{
    while (ex->q_head && ex->running < ex->parallelism && !ex->closing) {
        struct local_proc *p = ex->q_head;
        queue_remove(ex, p);
        if (p->waiting) {
            /* Forked ahead: it runs as soon as its claim is answered. */
            p->waiting = false;
            slot_take(ex, p, p->timeout_us);
            held_answer(p, NULL);
            continue;
        }
        ex->handles--; /* proc_start counts it again */
        struct weir_err err = {0};
        if (proc_start(ex, p, &err) == 0)
            continue;
        LOG_ERROR("queued try could not start dag=%s run=%s task=%s try=%d: %s", p->dag_id,
                  p->run_id, p->task_id, p->try_number, err.msg);
        if (ex->done) {
            struct exec_event ev = {.dag_id = p->dag_id, .run_id = p->run_id,
                                    .task_id = p->task_id, .try_number = p->try_number,
                                    .exit_status = 5};
            ex->done(ex->ud, &ev);
        }
    }
}

static int local_launch(struct exec *base, const struct exec_task *t, struct weir_err *err)
{
    struct local *ex = (struct local *)base;
    if (ex->closing)
        return err_set(err, WEIR_EUNAVAIL, "executor is closing");
    if (ex->running >= ex->parallelism && ex->queued >= ex->parallelism)
        return err_set(err, WEIR_EUNAVAIL, "no free slot (parallelism %d)", ex->parallelism);
    if (!t->dag_id || !t->run_id || !t->task_id || t->try_number < 1)
        return err_set(err, WEIR_EINVAL, "invalid task to launch");

    struct local_proc *p = xcalloc(1, sizeof *p);
    p->ex = ex;
    p->dag_id = xstrdup(t->dag_id);
    p->run_id = xstrdup(t->run_id);
    p->task_id = xstrdup(t->task_id);
    p->try_number = t->try_number;
    p->version = t->version;
    p->timeout_us = t->timeout_us;
    p->max_tries = t->max_tries;
    if (t->run && ex->ctl_on) {
        json_t *rj = exec__run_to_json(t->run);
        p->run_json = json_dumps(rj, JSON_COMPACT);
        json_decref(rj);
    }
    if (ex->running < ex->parallelism && !ex->q_head)
        return proc_start(ex, p, err);
    /* Every slot is taken: the try waits here and starts as soon as one frees. */
    if (ex->q_tail)
        ex->q_tail->qnext = p;
    else
        ex->q_head = p;
    ex->q_tail = p;
    ex->queued++;
    ex->handles++;
    /* With the control socket it is forked now and waits in its claim, so the fork, its
     * start-up and its request are done by the time the slot frees. */
    if (ex->ctl_on && ex->fs_alive) {
        p->via_fs = true;
        p->id = ++ex->fs_next_id;
        if (fs_request(ex, p) == 0) {
            p->waiting = true;
            proc_link(ex, p);
        } else {
            p->via_fs = false;
        }
    }
    return 0;
}

static void local_close(struct exec *base, bool kill_running)
{
    struct local *ex = (struct local *)base;
    if (ex->closing)
        return;
    ex->closing = true;
    /* Queued tries never started: their task instances stay queued for the next scheduler.
     * Those forked ahead are told so (they exit without running) and closed below. */
    while (ex->q_head) {
        struct local_proc *q = ex->q_head;
        queue_remove(ex, q);
        if (q->waiting) {
            held_answer(q, "the executor stopped before the try started");
            q->waiting = false; /* still in the list of procs: closed (or killed) below */
            continue;
        }
        proc_free(q);
    }
    struct local_proc *p = ex->head, *next;
    for (; p; p = next) {
        next = p->next;
        if (kill_running && !p->exited) {
            kill_group(p, SIGKILL);
            exec__kill_session(p->pid);
            if (!p->via_fs)
                continue; /* keep the process handle until the exit callback reaps it */
        }
        proc_close(p);
    }
    ctl_stop(ex);
    /* Closing its stdin ends the fork server; its exit callback closes the rest. */
    if (ex->fs_alive) {
        ex->fs_alive = false;
        uv_close((uv_handle_t *)&ex->fs_in, fs_handle_closed);
        uv_close((uv_handle_t *)&ex->fs_out, fs_handle_closed);
    }
    local_maybe_free(ex);
}

static const struct exec_ops local_ops = {
    .launch = local_launch,
    .slots_free = local_slots_free,
    .running = local_running,
    .is_running = local_is_running,
    .close = local_close,
};

const char *exec__local_ctl_name(const struct exec *base)
{
    const struct local *ex = (const struct local *)base;
    return base && base->ops == &local_ops && ex->ctl_on ? ex->ctl_name : NULL;
}

struct exec *exec_local_new(uv_loop_t *loop, const struct exec_local_opts *opts, exec_done_fn done,
                            void *ud, struct weir_err *err)
{
    if (!loop || !opts || !opts->weir_exe || !*opts->weir_exe) {
        err_set(err, WEIR_EINVAL, "local executor needs the path of the weir binary");
        return NULL;
    }
    if (opts->parallelism < 0) {
        err_set(err, WEIR_EINVAL, "invalid parallelism %d", opts->parallelism);
        return NULL;
    }
    struct local *ex = xcalloc(1, sizeof *ex);
    ex->base.ops = &local_ops;
    ex->loop = loop;
    ex->weir_exe = xstrdup(opts->weir_exe);
    ex->parallelism = opts->parallelism ? opts->parallelism : (int)uv_available_parallelism();
    if (ex->parallelism < 1)
        ex->parallelism = 1;
    ex->kill_grace_us = opts->kill_grace_us > 0 ? opts->kill_grace_us : DEFAULT_KILL_GRACE_US;
    ex->done = done;
    ex->ud = ud;
    ex->st = opts->store;
    ex->heartbeat_us = opts->heartbeat_us > 0 ? opts->heartbeat_us : EXEC_DEFAULT_HEARTBEAT_US;
    if (ex->heartbeat_us < 1000)
        ex->heartbeat_us = 1000;
    if (opts->fork_server && ex->st)
        ctl_start(ex);
    if (opts->fork_server)
        fs_start(ex);
    return &ex->base;
}
