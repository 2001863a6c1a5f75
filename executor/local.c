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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "executor/executor_int.h"

#define DEFAULT_KILL_GRACE_US (5 * INT64_C(1000000))

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
};

static void local_maybe_free(struct local *ex)
{
    if (ex->closing && ex->handles == 0 && ex->fs_handles == 0) {
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

/* SIGKILLs every process of session `sid` (the try's session: UV_PROCESS_DETACHED makes the
 * runner a session leader). Plugins may put their commands in process groups of their own
 * (the shell plugin does, to kill a command's tree on cancel); when the runner itself has
 * to be killed, those groups would survive a kill of the runner's group alone. Only a
 * process that started a new session escapes. Linux: reads /proc; elsewhere a no-op. */
static void kill_session(int sid)
{
#ifdef __linux__
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == sid)
            continue;
        char path[64], st[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, st, sizeof st - 1);
        close(fd);
        if (n <= 0)
            continue;
        st[n] = '\0';
        /* "pid (comm) state ppid pgrp session ...": comm may hold spaces and ')' */
        const char *rp = strrchr(st, ')');
        int ppid, pgrp, session;
        char state;
        if (rp && sscanf(rp + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) == 4 &&
            session == sid)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
#else
    (void)sid;
#endif
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
        kill_group(p, SIGTERM);
        uint64_t ms = (uint64_t)((p->ex->kill_grace_us + 999) / 1000);
        uv_timer_start(&p->timer, on_timer, ms ? ms : 1, 0);
    } else {
        LOG_WARN("try ignored SIGTERM, killing dag=%s run=%s task=%s try=%d pid=%d", p->dag_id,
                 p->run_id, p->task_id, p->try_number, p->pid);
        kill_group(p, SIGKILL);
        kill_session(p->pid);
    }
}

static void proc_exited(struct local_proc *p, int64_t exit_status, int term_signal)
{
    struct local *ex = p->ex;
    p->exited = true;
    ex->running--;
    if (p->has_timer)
        uv_timer_stop(&p->timer);
    /* The leader is gone; members that ignored SIGTERM would outlive the timeout. The pgid
     * cannot be reused while any member is alive, so this reaches only our group. */
    if (p->term_sent) {
        kill_group(p, SIGKILL);
        kill_session(p->pid);
    }
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
        if (p->via_fs && !p->exited) {
            p->exited = true;
            ex->running--;
            proc_close(p);
        }
    }
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
        if (p->term_sent) /* timed out before we knew the pid */
            kill_group(p, SIGTERM);
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
    char *args[] = {ex->weir_exe, "tasks", "fork-server", NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&ex->fs_in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&ex->fs_out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t po = {.exit_cb = fs_on_exit, .file = ex->weir_exe, .args = args,
                               .stdio_count = 3, .stdio = stdio};
    ex->fs_handles = 3;
    int rc = uv_spawn(ex->loop, &ex->fs_proc, &po);
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

/* Sends one RUN request; the request and its text live in one allocation. */
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
    char *text = xasprintf("RUN\t%ld\t%s\t%s\t%s\t%d\t%lld\n", p->id, p->dag_id, p->run_id,
                           p->task_id, p->try_number, (long long)p->version);
    size_t len = strlen(text);
    uv_write_t *req = xmalloc(sizeof *req + len);
    char *copy = (char *)(req + 1);
    memcpy(copy, text, len);
    free(text);
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    int rc = uv_write(req, (uv_stream_t *)&ex->fs_in, &b, 1, fs_write_done);
    if (rc < 0)
        free(req);
    return rc;
}

static int local_slots_free(const struct exec *base)
{
    const struct local *ex = (const struct local *)base;
    if (ex->closing)
        return 0;
    return ex->running >= ex->parallelism ? 0 : ex->parallelism - ex->running;
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
    return false;
}

/* Counts a started try, links it into the list and arms its timeout. */
static void proc_track(struct local *ex, struct local_proc *p, int64_t timeout_us)
{
    ex->handles++;
    ex->running++;
    p->next = ex->head;
    if (ex->head)
        ex->head->prev = p;
    ex->head = p;
    if (timeout_us > 0) {
        uv_timer_init(ex->loop, &p->timer);
        p->timer.data = p;
        p->has_timer = true;
        uv_timer_start(&p->timer, on_timer, (uint64_t)((timeout_us + 999) / 1000), 0);
    }
}

static int local_launch(struct exec *base, const struct exec_task *t, struct weir_err *err)
{
    struct local *ex = (struct local *)base;
    if (ex->closing)
        return err_set(err, WEIR_EUNAVAIL, "executor is closing");
    if (ex->running >= ex->parallelism)
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

    if (ex->fs_alive) {
        p->via_fs = true;
        p->id = ++ex->fs_next_id;
        if (fs_request(ex, p) == 0) {
            proc_track(ex, p, t->timeout_us);
            return 0;
        }
        p->via_fs = false; /* odd ids or a broken pipe: exec this one */
    }

    char trybuf[16];
    snprintf(trybuf, sizeof trybuf, "%d", t->try_number);
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
                        t->task_id, uv_strerror(rc));
        /* uv_spawn initialized the handle even on failure: it must be closed. */
        p->closing = 1;
        ex->handles++;
        uv_close((uv_handle_t *)&p->proc, proc_handle_closed);
        return r;
    }
    p->pid = p->proc.pid;
    proc_track(ex, p, t->timeout_us);
    LOG_DEBUG("try started dag=%s run=%s task=%s try=%d pid=%d", p->dag_id, p->run_id, p->task_id,
              p->try_number, p->pid);
    return 0;
}

static void local_close(struct exec *base, bool kill_running)
{
    struct local *ex = (struct local *)base;
    if (ex->closing)
        return;
    ex->closing = true;
    struct local_proc *p = ex->head, *next;
    for (; p; p = next) {
        next = p->next;
        if (kill_running && !p->exited) {
            kill_group(p, SIGKILL);
            kill_session(p->pid);
            if (!p->via_fs)
                continue; /* keep the process handle until the exit callback reaps it */
        }
        proc_close(p);
    }
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
    if (opts->fork_server)
        fs_start(ex);
    return &ex->base;
}
