/* executor/local.c - the local executor: each try is `weir tasks run DAG TASK RUN_ID
 * --try N` started with uv_spawn as a detached child (its own session and process group,
 * so a scheduler crash or Ctrl-C does not take running tasks down), bounded by
 * `parallelism`.
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
};

static void local_maybe_free(struct local *ex)
{
    if (ex->closing && ex->handles == 0) {
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

static void proc_handle_closed(uv_handle_t *h)
{
    struct local_proc *p = h->data;
    if (--p->closing > 0)
        return;
    struct local *ex = p->ex;
    free(p->dag_id);
    free(p->run_id);
    free(p->task_id);
    free(p);
    ex->handles--;
    local_maybe_free(ex);
}

static void proc_close(struct local_proc *p)
{
    if (p->closing)
        return;
    proc_unlink(p);
    p->closing = 1 + (p->has_timer ? 1 : 0);
    if (p->has_timer)
        uv_close((uv_handle_t *)&p->timer, proc_handle_closed);
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

static void on_exit_cb(uv_process_t *h, int64_t exit_status, int term_signal)
{
    struct local_proc *p = h->data;
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
    ex->handles++;
    ex->running++;
    p->next = ex->head;
    if (ex->head)
        ex->head->prev = p;
    ex->head = p;
    if (t->timeout_us > 0) {
        uv_timer_init(ex->loop, &p->timer);
        p->timer.data = p;
        p->has_timer = true;
        uint64_t ms = (uint64_t)((t->timeout_us + 999) / 1000);
        uv_timer_start(&p->timer, on_timer, ms, 0);
    }
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
            /* Keep the process handle until the exit callback reaps the child. */
            kill_group(p, SIGKILL);
            kill_session(p->pid);
            continue;
        }
        proc_close(p);
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
    return &ex->base;
}
