/* executor/forksrv.c - the fork server: a small single-threaded process, started once by
 * the local executor (`weir tasks fork-server`), that has the binary linked, the plugins
 * loaded and nothing else going on, and forks the processes that run tries. A child
 * becomes its own session (so timeouts can kill its whole group, and nothing the
 * scheduler or this server does takes it down), opens its own store connection if it has
 * no control channel, and runs exec_task_run: the same isolation as exec'ing `weir tasks
 * run`, without paying for exec and dynamic linking on every try (the spine's 1000-task
 * benchmark, bench/spine.py).
 *
 * Workers: a child whose try used an operator of a plugin that declares
 * WEIR_PLUGIN_REUSABLE (plugin.h: it leaves nothing behind in the process), whose task
 * sets no `env`, that was not cancelled, and whose end was recorded, does not exit: it
 * tells the server DONE and waits for another try. fork() and the exit that follows cost
 * about a third of a no-op try's CPU on a VM that copies page tables slowly, which a
 * worker saves. A worker runs at most WORKER_MAX_TRIES tries, and is dismissed after
 * IDLE_MAX_MS without one (or when more than MAX_IDLE wait). It gets
 * the try's task and the doc's params with the request: it may have been forked before
 * that DAG version was read. A try of any other plugin gets a fresh child that exits
 * after it, as before; so does (after its try) a worker whose try set `env`.
 *
 * Protocol with the executor, one line each way, fields separated by tabs (ids never hold
 * tabs or newlines: the executor checks):
 *   executor -> server:  RUN <id> <dag_id> <run_id> <task_id> <try> <version> <max_tries>
 *                        <run as compact JSON>   (the last two are hints: 0 and empty when
 *                        unknown)
 *                        KILL <id> <pid> <signal> <sweep>   signal try <id>'s process group
 *                        (and with sweep=1, SIGKILL the rest of its session) if the process
 *                        still runs that try; if it is gone, its group and session (<pid>)
 *                        are signalled as they are; a worker that moved on is left alone
 * The server keeps the parsed DAG doc of each version it was asked about (read once, with a
 * connection it closes before forking): children inherit it and skip
 * reading and scanning the doc, which for a DAG of 1000 tasks was most of a try's cost.
 *   server -> executor:  STARTED <id> <pid>  |  FAILED <id> <errno>  |  EXITED <id> <status> <signal>
 * (EXITED also when a worker reports DONE, the try's process being done with it, unless
 * the executor recorded the try's end itself: see told below.)
 * Server <-> worker, over a socketpair per worker: the RUN line with three fields
 * appended (the lent scratch folder, the task and the doc's params as compact JSON), and
 * "DONE <code> <told>" back (told=1: the executor recorded the try's end over the control
 * socket and knows it is over, so no EXITED). A worker keeps one control-socket
 * connection for all its tries.
 * When its stdin closes (the scheduler exited or was killed), the server exits and leaves
 * running children alone: they finish and record their state; the next scheduler adopts
 * them. Workers see their socket close and exit after the try they run.
 *
 * Scratch folders: the server lends each try a folder and takes it back when the try is
 * done, if it is still private and empty (workdir.c); the children of a server that is
 * gone remove theirs. Folders left free when the server exits are removed. */
#define LOG_MODULE "executor"
#include "executor/executor.h"
#include "executor/executor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#define MAX_LINE         4096
#define MAX_CHILDREN     65536
#define MAX_IDLE         32    /* workers kept waiting for a try; more are dismissed */
#define IDLE_MAX_MS      20000 /* a worker without a try for this long is dismissed */
#define WORKER_MAX_TRIES 256   /* tries one worker runs before it exits (bounds any leak) */
#define NF               9     /* fields of a RUN request */
#define NFW              (NF + 3) /* to a worker: + scratch folder, task, params */
#define WORKER_LINE_MAX  (64 * 1024) /* a longer request (a huge task) gets a fresh child */

struct child {
    pid_t pid;
    long id;         /* the try it runs; -1 while a worker waits for one */
    char *workdir;   /* lent to that try, or NULL */
    int sock;        /* our end of its socketpair, -1 once closed (it then exits) */
    int64_t idle_at; /* monotonic ms it became idle */
    char in[64];     /* a DONE line being read */
    size_t in_used;
};

/* Scratch folders ready to lend: empty and private, checked when they came back. */
struct pool {
    char **dirs;
    size_t n, cap;
};

static char *pool_take(struct pool *p)
{
    return p->n ? p->dirs[--p->n] : exec__workdir_new();
}

/* A folder back from a try: kept when it can be lent again, else removed. */
static void pool_give(struct pool *p, char *dir)
{
    if (!dir)
        return;
    if (!exec__workdir_reusable(dir) || p->n >= 256) {
        exec__workdir_remove(dir);
        free(dir);
        return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->dirs = xrealloc(p->dirs, p->cap * sizeof *p->dirs);
    }
    p->dirs[p->n++] = dir;
}

static int sig_pipe[2] = {-1, -1};

static void on_sigchld(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t w = write(sig_pipe[1], "c", 1);
    (void)w;
    errno = saved;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void reply(const char *what, long a, long b, long c)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s\t%ld\t%ld\t%ld\n", what, a, b, c);
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
        (void)w; /* a closed pipe means the executor is gone: stdin EOF ends us soon */
    }
}

/* Splits `line` at tabs into at most `max` fields; returns how many. */
static int split_tabs(char *line, char **f, int max)
{
    int nf = 0;
    for (char *p = line, *tab; nf < max; p = tab + 1) {
        f[nf++] = p;
        tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
    }
    return nf;
}

/* One try in the child, over the control channel `ctl_fd` when it is connected (>= 0);
 * returns its exit code. */
static int run_one(const struct exec_plugins *reg, const char *store_url, int64_t hb_us,
                   const char *ctl, int ctl_fd, char **f, json_t *doc, int64_t version,
                   const char *workdir, pid_t server)
{
    char *end;
    long try_number = strtol(f[5], &end, 10);
    struct weir_err err = {0};
    struct store *st = NULL;
    int code;
    /* With the executor's control channel the try needs no connection of its own unless
     * the channel fails (then the runner opens one). */
    if (ctl_fd < 0 && !(st = store_open(store_url, &err))) {
        LOG_ERROR("try cannot open the store dag=%s run=%s task=%s: %s", f[2], f[3], f[4], err.msg);
        return 5;
    }
    struct exec_task_opts o = {.dag_id = f[2], .run_id = f[3], .task_id = f[4],
                               .try_number = (int)try_number, .heartbeat_us = hb_us,
                               .store_url = store_url, .doc = doc, .doc_version = version,
                               .ctl = ctl, .ctl_conn = ctl_fd >= 0, .ctl_fd = ctl_fd,
                               .max_tries = (int)strtol(f[7], NULL, 10),
                               .run_json = *f[8] ? f[8] : NULL,
                               .workdir = workdir, .workdir_owner = server};
    int rc = exec_task_run(st, reg, &o, &err);
    if (rc < 0) {
        LOG_ERROR("try did not start dag=%s run=%s task=%s try=%ld: %s", f[2], f[3], f[4],
                  try_number, err.msg);
        code = rc == -WEIR_ECONFLICT ? 4 : rc == -WEIR_ENOTFOUND ? 3 : 5;
    } else {
        code = rc;
    }
    store_free(st);
    fflush(NULL);
    return code;
}

/* Whether the process that ran task `task_id` of `doc` (ending with `code`) may run another
 * try: its end is recorded, it was not cancelled, the task sets no environment and its
 * plugin declares itself reusable. */
static bool may_reuse(const struct exec_plugins *reg, json_t *doc, const char *task_id,
                      int code, pid_t server)
{
    if ((code != EXEC_EXIT_SUCCESS && code != EXEC_EXIT_FAILED && code != EXEC_EXIT_SKIPPED) ||
        exec__runner_signal() != 0 || !doc || getppid() != server)
        return false;
    json_t *task = json_object_get(json_object_get(doc, "tasks"), task_id);
    json_t *env = json_object_get(task, "env");
    if (!task || (env && (!json_is_object(env) || json_object_size(env) > 0)))
        return false;
    const char *ref = json_string_value(json_object_get(task, "run"));
    const struct weir_plugin *plugin = NULL;
    return ref && exec_plugins_find(reg, ref, &plugin) && exec__plugin_reusable(plugin);
}

/* Whether the control channel kept between tries is still usable: nothing may be waiting
 * on it (an answer comes only to a request), so anything readable is its end (the
 * executor closed it, or a try shut it down after it failed). */
static bool ctl_alive(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

/* Reads one line (the next request) from the server into buf; false at EOF or error. */
static bool read_request(int sock, char *buf, size_t size)
{
    size_t used = 0;
    while (used < size - 1) {
        ssize_t n = read(sock, buf + used, size - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        used += (size_t)n;
        char *nl = memchr(buf, '\n', used);
        if (nl) {
            *nl = '\0';
            return true;
        }
    }
    return false;
}

/* In the child: become a session, drop the server's plumbing, run the try, and while the
 * process may be reused, the tries the server sends. Never returns. */
static void run_child(const struct exec_plugins *reg, const char *store_url, int64_t hb_us,
                      const char *ctl, char **f, json_t *doc, int64_t version,
                      const char *workdir, pid_t server, int sock)
{
    setsid();
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    dup2(STDERR_FILENO, STDOUT_FILENO); /* the protocol pipe is not the task's */
    static char req[WORKER_LINE_MAX + 1];
    char *fv[NFW];
    json_t *own = NULL; /* the doc of a try the server sent us: its task and params */
    int ctl_fd = -1;    /* one connection to the executor for all our tries */
    for (int tries = 1;; tries++) {
        if (ctl_fd >= 0 && !ctl_alive(ctl_fd)) {
            close(ctl_fd);
            ctl_fd = -1;
        }
        if (ctl_fd < 0 && ctl)
            ctl_fd = exec__ctl_connect(ctl); /* -1: the try records itself */
        int code = run_one(reg, store_url, hb_us, ctl, ctl_fd, f, doc, version, workdir, server);
        if (sock < 0 || tries >= WORKER_MAX_TRIES || !may_reuse(reg, doc, f[4], code, server))
            _exit(code);
        char done[32];
        int n = snprintf(done, sizeof done, "DONE\t%d\t%d\n", code,
                         exec__runner_told_executor() ? 1 : 0);
        if (send(sock, done, (size_t)n, MSG_NOSIGNAL) != n || !read_request(sock, req, sizeof req))
            _exit(code); /* the server is gone or dismissed us: the try is recorded */
        if (split_tabs(req, fv, NFW) != NFW || strcmp(fv[0], "RUN") != 0)
            _exit(code);
        f = fv;
        version = strtoll(f[6], NULL, 10);
        workdir = *f[9] ? f[9] : NULL;
        /* The doc as the runner reads it, with just this task: NULL (the runner then reads
         * the stored doc itself) if the server sent something that does not parse. */
        json_decref(own);
        json_t *task = json_loads(f[10], 0, NULL);
        json_t *params = json_loads(f[11], 0, NULL);
        own = json_is_object(task) && json_is_object(params)
                  ? json_pack("{s:{s:O}, s:O}", "tasks", f[4], task, "params", params)
                  : NULL;
        json_decref(task);
        json_decref(params);
        doc = own;
    }
}

/* The parsed doc of dag@version (borrowed from `docs`), read on first use; NULL if it
 * cannot be read (the child then reads it itself and reports any error properly). The store
 * connection is closed again before returning: SQLite's locking state must never be
 * inherited across fork() (a child's own connection would share the parent's lock
 * bookkeeping and fail with I/O errors). One open per new DAG version is cheap. */
static json_t *doc_get(const char *store_url, json_t *docs, const char *dag_id, int64_t version)
{
    char key[512];
    snprintf(key, sizeof key, "%s@%lld", dag_id, (long long)version);
    json_t *doc = json_object_get(docs, key);
    if (doc)
        return doc;
    struct store *st = store_open(store_url, NULL);
    char *text = NULL;
    int rc = st ? store_dag_version_get(st, dag_id, version, &text, NULL) : -1;
    store_free(st);
    if (rc < 0)
        return NULL;
    doc = json_loads(text, 0, NULL);
    free(text);
    if (!doc)
        return NULL;
    /* Tasks keyed by id, so each child finds its own in O(1) (the runner accepts both). */
    json_t *tasks = json_object_get(doc, "tasks");
    if (json_is_array(tasks)) {
        json_t *by_id = json_object();
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) {
            const char *id = json_string_value(json_object_get(t, "task_id"));
            if (id)
                json_object_set(by_id, id, t);
        }
        json_object_set_new(doc, "tasks", by_id);
    }
    if (json_object_size(docs) >= 64)
        json_object_clear(docs);
    json_object_set_new(docs, key, doc);
    return doc;
}

struct server {
    const struct exec_plugins *reg;
    const char *store_url;
    int64_t hb_us;
    const char *ctl;
    pid_t self;
    json_t *docs;
    struct child *kids;
    size_t nkids, cap;
    struct pool pool;
};

static void child_close_sock(struct child *c)
{
    if (c->sock >= 0)
        close(c->sock);
    c->sock = -1;
}

/* The try `c` ran is done (DONE, or its process exited): tell the executor (unless it
 * knows), take the folder back. */
static void child_try_done(struct server *S, struct child *c, long status, long sig,
                           bool report)
{
    if (c->id < 0)
        return;
    if (report)
        reply("EXITED", c->id, status, sig);
    pool_give(&S->pool, c->workdir);
    c->workdir = NULL;
    c->id = -1;
}

/* Reads what worker `c` sent: DONE lines. At EOF or on garbage its socket is closed (the
 * process is exiting; its exit reports the rest). */
static void child_input(struct server *S, struct child *c)
{
    for (;;) {
        ssize_t n = read(c->sock, c->in + c->in_used, sizeof c->in - 1 - c->in_used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            child_close_sock(c);
            return;
        }
        c->in_used += (size_t)n;
        char *nl;
        while ((nl = memchr(c->in, '\n', c->in_used)) != NULL) {
            *nl = '\0';
            char *f[3];
            if (split_tabs(c->in, f, 3) == 3 && strcmp(f[0], "DONE") == 0 && c->id >= 0) {
                /* told: the executor recorded the try's end itself and needs no EXITED */
                child_try_done(S, c, strtol(f[1], NULL, 10), 0, strcmp(f[2], "1") != 0);
                c->idle_at = mono_ms();
            }
            size_t rest = c->in_used - (size_t)(nl + 1 - c->in);
            memmove(c->in, nl + 1, rest);
            c->in_used = rest;
        }
        if (c->in_used == sizeof c->in - 1) {
            child_close_sock(c); /* not a DONE line: stop talking to it */
            return;
        }
    }
}

/* Dismisses workers idle for too long, and any beyond MAX_IDLE; returns the poll
 * timeout until the next one is due (-1: none is idle). */
static int idle_sweep(struct server *S)
{
    int64_t now = mono_ms();
    size_t idle = 0;
    for (size_t i = 0; i < S->nkids; i++)
        if (S->kids[i].id < 0 && S->kids[i].sock >= 0)
            idle++;
    int timeout = -1;
    for (size_t i = 0; i < S->nkids; i++) {
        struct child *c = &S->kids[i];
        if (c->id >= 0 || c->sock < 0)
            continue;
        if (idle > MAX_IDLE || now - c->idle_at >= IDLE_MAX_MS) {
            child_close_sock(c); /* it reads EOF and exits */
            idle--;
            continue;
        }
        int left = (int)(c->idle_at + IDLE_MAX_MS - now);
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    return timeout;
}

static void reap(struct server *S)
{
    char drain[64];
    while (read(sig_pipe[0], drain, sizeof drain) > 0)
        ;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < S->nkids; i++) {
            struct child *c = &S->kids[i];
            if (c->pid != pid)
                continue;
            if (c->sock >= 0)
                child_input(S, c); /* a DONE it sent before it died counts */
            child_try_done(S, c, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                           WIFSIGNALED(status) ? WTERMSIG(status) : 0, true);
            child_close_sock(c);
            S->kids[i] = S->kids[--S->nkids];
            break;
        }
    }
}

/* KILL <id> <pid> <sig> <sweep> */
static void handle_kill(struct server *S, char **f)
{
    long id = strtol(f[1], NULL, 10);
    pid_t pid = (pid_t)strtol(f[2], NULL, 10);
    int sig = (int)strtol(f[3], NULL, 10);
    bool sweep = strcmp(f[4], "1") == 0;
    if (sig <= 0 || sig >= NSIG)
        return;
    for (size_t i = 0; i < S->nkids; i++) {
        struct child *c = &S->kids[i];
        if (c->id == id) {
            kill(-c->pid, sig);
            if (sweep)
                exec__kill_session(c->pid);
            return;
        }
    }
    /* Not running any more. A process of ours that lives has moved on to another try (or
     * waits for one): leave it. One that is gone may have left members of its group and
     * session (their ids cannot be reused while those live). */
    if (pid <= 0)
        return;
    for (size_t i = 0; i < S->nkids; i++)
        if (S->kids[i].pid == pid)
            return;
    kill(-pid, sig);
    if (sweep)
        exec__kill_session(pid);
}

/* Hands the try to an idle worker, with its task and the doc's params (a worker forked
 * before this DAG version was read has not got its doc); false when there is none. */
static bool give_to_worker(struct server *S, char **f, long id, json_t *doc)
{
    size_t i = 0;
    while (i < S->nkids && (S->kids[i].id >= 0 || S->kids[i].sock < 0))
        i++;
    if (i == S->nkids)
        return false;
    json_t *params = json_object_get(doc, "params");
    char *task = json_dumps(json_object_get(json_object_get(doc, "tasks"), f[4]), JSON_COMPACT);
    char *pj = params ? json_dumps(params, JSON_COMPACT) : xstrdup("{}");
    bool ok = false;
    char *wd = pool_take(&S->pool);
    /* compact JSON never holds a raw tab or newline */
    char *line = task && pj ? xasprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f[0], f[1],
                                        f[2], f[3], f[4], f[5], f[6], f[7], f[8], wd ? wd : "",
                                        task, pj)
                            : NULL;
    size_t len = line ? strlen(line) : 0;
    if (line && len <= WORKER_LINE_MAX) {
        struct child *c = &S->kids[i];
        if (send(c->sock, line, len, MSG_NOSIGNAL) == (ssize_t)len) {
            c->id = id;
            c->workdir = wd;
            wd = NULL;
            reply("STARTED", id, c->pid, 0);
            ok = true;
        } else {
            child_close_sock(c); /* gone or stuck: it exits or is reaped */
        }
    }
    pool_give(&S->pool, wd);
    free(line);
    free(task);
    free(pj);
    return ok;
}

static void handle_run(struct server *S, char **f)
{
    long id = strtol(f[1], NULL, 10);
    int64_t version = strtoll(f[6], NULL, 10);
    json_t *doc = version > 0 ? doc_get(S->store_url, S->docs, f[2], version) : NULL;
    /* Plugins load on first use, here, so every child inherits them loaded. */
    const char *ref = json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "tasks"), f[4]), "run"));
    const struct weir_plugin *plugin = NULL;
    if (ref)
        exec_plugins_find(S->reg, ref, &plugin);
    if (doc && exec__plugin_reusable(plugin) && give_to_worker(S, f, id, doc))
        return;
    /* NULL (cannot make one): the child tries itself and reports the error */
    char *wd = pool_take(&S->pool);
    /* A child that may become a worker gets a socket to hear of its next try; without one
     * (or when it cannot be made) it runs this try only. */
    int sv[2] = {-1, -1};
    if (doc && exec__plugin_reusable(plugin) &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        sv[0] = sv[1] = -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < S->nkids; i++)
            if (S->kids[i].sock >= 0)
                close(S->kids[i].sock); /* other workers see EOF only from the server */
        if (sv[0] >= 0)
            close(sv[0]);
        run_child(S->reg, S->store_url, S->hb_us, S->ctl, f, doc, version, wd, S->self, sv[1]);
    }
    if (sv[1] >= 0)
        close(sv[1]);
    if (pid < 0) {
        int e = errno;
        if (sv[0] >= 0)
            close(sv[0]);
        pool_give(&S->pool, wd);
        reply("FAILED", id, e, 0);
        return;
    }
    if (sv[0] >= 0)
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (S->nkids == S->cap) {
        S->cap = S->cap ? S->cap * 2 : 64;
        S->kids = xrealloc(S->kids, S->cap * sizeof *S->kids);
    }
    S->kids[S->nkids++] = (struct child){.pid = pid, .id = id, .workdir = wd, .sock = sv[0]};
    reply("STARTED", id, pid, 0);
}

int exec_forkserver_main(const struct exec_plugins *reg, const char *store_url, int64_t hb_us,
                         const char *ctl)
{
    struct server S = {.reg = reg, .store_url = store_url, .hb_us = hb_us,
                       .ctl = ctl && *ctl ? ctl : NULL, .self = getpid(),
                       .docs = json_object()};
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C in the terminal reaches the whole foreground group; the scheduler decides. */
    signal(SIGINT, SIG_IGN);
    char buf[MAX_LINE];
    size_t used = 0;
    struct pollfd *pfd = NULL;
    size_t pfd_cap = 0;
    for (;;) {
        int timeout = idle_sweep(&S);
        if (pfd_cap < S.nkids + 2) {
            pfd_cap = S.nkids + 2 + 16;
            pfd = xrealloc(pfd, pfd_cap * sizeof *pfd);
        }
        pfd[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
        size_t npfd = 2;
        for (size_t i = 0; i < S.nkids; i++)
            if (S.kids[i].sock >= 0)
                pfd[npfd++] = (struct pollfd){.fd = S.kids[i].sock, .events = POLLIN};
        if (poll(pfd, npfd, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* Worker messages first: a DONE and the exit of the same worker come in order. */
        for (size_t k = 2; k < npfd; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (size_t i = 0; i < S.nkids; i++)
                if (S.kids[i].sock == pfd[k].fd) {
                    child_input(&S, &S.kids[i]);
                    break;
                }
        }
        if (pfd[1].revents & POLLIN)
            reap(&S);
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(STDIN_FILENO, buf + used, sizeof buf - 1 - used);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break; /* the executor is gone */
        }
        used += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', used)) != NULL) {
            *nl = '\0';
            char *f[NF] = {0};
            int nf = split_tabs(buf, f, NF);
            if (nf == NF && strcmp(f[0], "RUN") == 0 && S.nkids < MAX_CHILDREN)
                handle_run(&S, f);
            else if (nf == 5 && strcmp(f[0], "KILL") == 0)
                handle_kill(&S, f);
            else
                LOG_WARN("fork server: ignoring a malformed request");
            size_t rest = used - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest);
            used = rest;
        }
        if (used == sizeof buf - 1)
            used = 0; /* an absurdly long line: drop it */
    }
    /* Children still running keep their folders (they remove them: we are gone); workers
     * see their sockets close and exit after their try. Idle ones exit at once: they are
     * reaped here, so nothing of ours outlives us without a try to finish. */
    for (size_t i = 0; i < S.nkids; i++) {
        child_close_sock(&S.kids[i]);
        free(S.kids[i].workdir);
    }
    for (size_t i = 0; i < S.nkids; i++)
        if (S.kids[i].id < 0)
            while (waitpid(S.kids[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
    free(S.kids);
    free(pfd);
    for (size_t i = 0; i < S.pool.n; i++) {
        exec__workdir_remove(S.pool.dirs[i]);
        free(S.pool.dirs[i]);
    }
    free(S.pool.dirs);
    json_decref(S.docs);
    return 0;
}
