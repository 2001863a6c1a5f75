/* executor/forksrv.c - the fork server: a small single-threaded process, started once by
 * the local executor (`weir tasks fork-server`), that has the binary linked, the plugins
 * loaded and nothing else going on, and forks one child per try. A child becomes its own
 * session (so timeouts can kill its whole group, and nothing the scheduler or this
 * server does takes it down), opens its own store connection and runs exec_task_run:
 * the same isolation as exec'ing `weir tasks run`, without paying for exec and dynamic
 * linking on every try (the spine's 1000-task benchmark, bench/spine.py).
 *
 * Protocol, one line each way, fields separated by tabs (ids never hold tabs or newlines:
 * the executor checks):
 *   executor -> server:  RUN <id> <dag_id> <run_id> <task_id> <try> <version> <max_tries>
 *                        <run as compact JSON>   (the last two are hints: 0 and empty when
 *                        unknown)
 * The server keeps the parsed DAG doc of each version it was asked about (read once, with a
 * connection it closes before forking): children inherit it and skip
 * reading and scanning the doc, which for a DAG of 1000 tasks was most of a try's cost.
 *   server -> executor:  STARTED <id> <pid>  |  FAILED <id> <errno>  |  EXITED <id> <status> <signal>
 * When its stdin closes (the scheduler exited or was killed), the server exits and leaves
 * running children alone: they finish and record their state; the next scheduler adopts
 * them.
 *
 * Scratch folders: the server lends each child a folder and takes it back when the child
 * has exited, if it is still private and empty (workdir.c); the children of a server that
 * is gone remove theirs. Folders left free when the server exits are removed. */
#define LOG_MODULE "executor"
#include "executor/executor.h"
#include "executor/executor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#define MAX_LINE 4096
#define MAX_CHILDREN 65536

struct child {
    pid_t pid;
    long id;
    char *workdir; /* lent to the child, or NULL */
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

/* A folder back from an exited child: kept when it can be lent again, else removed. */
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

static void reply(const char *what, long a, long b, long c)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s\t%ld\t%ld\t%ld\n", what, a, b, c);
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
        (void)w; /* a closed pipe means the executor is gone: stdin EOF ends us soon */
    }
}

/* In the child: become a session, drop the server's plumbing, run the try. Never returns. */
static void run_child(const struct exec_plugins *reg, const char *store_url, int64_t hb_us,
                      const char *ctl, char **f, json_t *doc, int64_t version,
                      const char *workdir, pid_t server)
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
    char *end;
    long try_number = strtol(f[5], &end, 10);
    struct weir_err err = {0};
    struct store *st = NULL;
    int code;
    /* With the executor's control channel the try needs no connection of its own unless
     * the channel fails (then the runner opens one). */
    if (!ctl && !(st = store_open(store_url, &err))) {
        LOG_ERROR("try cannot open the store dag=%s run=%s task=%s: %s", f[2], f[3], f[4], err.msg);
        _exit(5);
    }
    struct exec_task_opts o = {.dag_id = f[2], .run_id = f[3], .task_id = f[4],
                               .try_number = (int)try_number, .heartbeat_us = hb_us,
                               .store_url = store_url, .doc = doc, .doc_version = version,
                               .ctl = ctl, .max_tries = (int)strtol(f[7], NULL, 10),
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
    _exit(code);
}

/* The parsed doc of dag@version (borrowed from `docs`), read on first use; NULL if it
 * cannot be read (the child then reads it itself and reports any error properly). The
 * store connection is closed again before returning: SQLite's locking state must never
 * be inherited across fork() (a child's own connection would share the parent's lock
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

int exec_forkserver_main(const struct exec_plugins *reg, const char *store_url, int64_t hb_us,
                         const char *ctl)
{
    if (ctl && !*ctl)
        ctl = NULL;
    json_t *docs = json_object();
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C in the terminal reaches the whole foreground group; the scheduler decides. */
    signal(SIGINT, SIG_IGN);
    struct child *kids = NULL;
    size_t nkids = 0, cap = 0;
    struct pool pool = {0};
    pid_t self = getpid();
    char buf[MAX_LINE];
    size_t used = 0;
    bool eof = false;
    while (!eof) {
        struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = sig_pipe[0], .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents & POLLIN) {
            char drain[64];
            while (read(sig_pipe[0], drain, sizeof drain) > 0)
                ;
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (size_t i = 0; i < nkids; i++) {
                    if (kids[i].pid != pid)
                        continue;
                    reply("EXITED", kids[i].id,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
                    pool_give(&pool, kids[i].workdir);
                    kids[i] = kids[--nkids];
                    break;
                }
            }
        }
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(STDIN_FILENO, buf + used, sizeof buf - 1 - used);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            eof = true;
            break;
        }
        used += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', used)) != NULL) {
            *nl = '\0';
            char *f[9] = {0};
            int nf = 0;
            for (char *p = buf, *tab; nf < 9; p = tab + 1) {
                f[nf++] = p;
                tab = strchr(p, '\t');
                if (!tab)
                    break;
                *tab = '\0';
            }
            if (nf == 9 && strcmp(f[0], "RUN") == 0 && nkids < MAX_CHILDREN) {
                long id = strtol(f[1], NULL, 10);
                int64_t version = strtoll(f[6], NULL, 10);
                json_t *doc = version > 0 ? doc_get(store_url, docs, f[2], version) : NULL;
                /* Plugins load on first use, here, so every child inherits them loaded. */
                const char *ref = json_string_value(json_object_get(
                    json_object_get(json_object_get(doc, "tasks"), f[4]), "run"));
                if (ref)
                    exec_plugins_find(reg, ref, NULL);
                /* NULL (cannot make one): the child tries itself and reports the error */
                char *wd = pool_take(&pool);
                fflush(NULL);
                pid_t pid = fork();
                if (pid == 0)
                    run_child(reg, store_url, hb_us, ctl, f, doc, version, wd, self);
                if (pid < 0) {
                    int e = errno;
                    pool_give(&pool, wd);
                    reply("FAILED", id, e, 0);
                } else {
                    if (nkids == cap) {
                        cap = cap ? cap * 2 : 64;
                        kids = xrealloc(kids, cap * sizeof *kids);
                    }
                    kids[nkids].pid = pid;
                    kids[nkids].id = id;
                    kids[nkids].workdir = wd;
                    nkids++;
                    reply("STARTED", id, pid, 0);
                }
            } else {
                LOG_WARN("fork server: ignoring a malformed request");
            }
            size_t rest = used - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest);
            used = rest;
        }
        if (used == sizeof buf - 1)
            used = 0; /* an absurdly long line: drop it */
    }
    /* Children still running keep their folders (they remove them: we are gone). */
    for (size_t i = 0; i < nkids; i++)
        free(kids[i].workdir);
    free(kids);
    for (size_t i = 0; i < pool.n; i++) {
        exec__workdir_remove(pool.dirs[i]);
        free(pool.dirs[i]);
    }
    free(pool.dirs);
    json_decref(docs);
    return 0;
}
