/* plugins/shell/shell.c - the shell plugin: `shell.run` runs the user's command with
 * /bin/sh -c (running a shell string is this plugin's whole job) in its own process group,
 * streams stdout and stderr to the task log line by line, and maps the exit code to the
 * task state (0 success, skip_exit_code (99) skipped, anything else failed). The last
 * non-empty stdout line becomes the XCom `return_value`.
 *
 * Plain POSIX (posix_spawn with a new process group, pipes, poll): no host symbols, only
 * the host table.
 * Cancellation (timeout, kill) is noticed within POLL_MS: the group gets SIGTERM, then
 * SIGKILL after KILL_GRACE_MS. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weir/plugin.h"

#define POLL_MS       100
#define KILL_GRACE_MS 3000
#define MAX_LINE      (64 * 1024) /* longer lines are split */
#define DRAIN_MS      200         /* after the shell exits, read until output pauses this long */
#define DRAIN_MAX_MS  2000        /* ...but never longer than this (a chatty background job) */

extern char **environ;

static const char params_schema[] =
    "{"
    "\"command\": {\"type\": \"string\", \"required\": true,"
    " \"description\": \"the command, run with /bin/sh -c\"},"
    "\"env\": {\"type\": \"object\","
    " \"description\": \"environment variables for the command (values turned into text)\"},"
    "\"append_env\": {\"type\": \"boolean\", \"default\": true,"
    " \"description\": \"merge env over the task's environment; false: env only\"},"
    "\"cwd\": {\"type\": \"string\", \"description\": \"working directory (default: the try's"
    " scratch folder)\"},"
    "\"skip_exit_code\": {\"type\": \"integer\", \"default\": 99,"
    " \"description\": \"exit code that marks the task skipped\"},"
    "\"xcom_push\": {\"type\": \"boolean\", \"default\": true,"
    " \"description\": \"push the last non-empty stdout line as return_value\"}"
    "}";

/* GNU strerror_r: thread-safe, returns the text (maybe not in buf). */
static const char *errtext(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A growable array of "K=V" strings for execve. */
struct envv {
    char **v;
    size_t n, cap;
};

static int envv_set(struct envv *e, const char *key, const char *val)
{
    size_t klen = strlen(key);
    size_t len = klen + 1 + strlen(val) + 1;
    char *kv = malloc(len);
    if (!kv)
        return -1;
    snprintf(kv, len, "%s=%s", key, val);
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], key, klen) == 0 && e->v[i][klen] == '=') {
            free(e->v[i]);
            e->v[i] = kv;
            return 0;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        char **nv = realloc(e->v, cap * sizeof *nv);
        if (!nv) {
            free(kv);
            return -1;
        }
        e->v = nv;
        e->cap = cap;
    }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
    return 0;
}

static void envv_free(struct envv *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static bool valid_env_name(const char *k)
{
    if (!*k || (*k >= '0' && *k <= '9'))
        return false;
    for (; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
              *k == '_'))
            return false;
    return true;
}

/* Builds the child's environment. Returns 0, or fails the task through the host. */
static int build_env(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *env,
                     bool append, struct envv *out)
{
    if (append || !env) {
        for (char **p = environ; *p; p++) {
            const char *eq = strchr(*p, '=');
            if (!eq)
                continue;
            char key[256];
            size_t kl = (size_t)(eq - *p);
            if (kl == 0 || kl >= sizeof key)
                continue;
            memcpy(key, *p, kl);
            key[kl] = '\0';
            if (envv_set(out, key, eq + 1) < 0)
                return host->fail(ctx, "out of memory");
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        if (!valid_env_name(k))
            return host->fail(ctx, "env: invalid variable name '%s'", k);
        char *text = NULL;
        int rc;
        if (json_is_null(v))
            continue;
        if (json_is_string(v))
            rc = envv_set(out, k, json_string_value(v));
        else {
            text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            rc = text ? envv_set(out, k, text) : -1;
            free(text);
        }
        if (rc < 0)
            return host->fail(ctx, "out of memory");
    }
    if (!out->v && envv_set(out, "WEIR_SHELL", "1") < 0) /* execve needs an array */
        return host->fail(ctx, "out of memory");
    return 0;
}

/* One output stream: bytes not yet forming a whole line. */
struct stream {
    int fd;
    bool is_stdout;
    char *buf;
    size_t len;
};

struct run_state {
    struct weir_task_ctx *ctx;
    const struct weir_host *host;
    char *last; /* last non-empty stdout line */
};

static void emit_line(struct run_state *rs, struct stream *s, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    rs->host->log(rs->ctx, s->is_stdout ? WEIR_LOG_INFO : WEIR_LOG_WARN, "%.*s", (int)len, line);
    if (!s->is_stdout)
        return;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, line, len);
    copy[len] = '\0';
    free(rs->last);
    rs->last = copy;
}

/* Reads what is available; emits whole lines. Returns 1 if open, 0 at EOF. */
static int stream_read(struct run_state *rs, struct stream *s)
{
    char chunk[16384];
    ssize_t n = read(s->fd, chunk, sizeof chunk);
    if (n < 0)
        return (errno == EINTR || errno == EAGAIN) ? 1 : 0;
    if (n == 0) {
        if (s->len)
            emit_line(rs, s, s->buf, s->len);
        s->len = 0;
        return 0;
    }
    const char *p = chunk, *end = chunk + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (s->len + take > MAX_LINE)
            take = MAX_LINE - s->len;
        memcpy(s->buf + s->len, p, take);
        s->len += take;
        p += take;
        if (nl && p == nl) {
            emit_line(rs, s, s->buf, s->len);
            s->len = 0;
            p++;
        } else if (s->len == MAX_LINE) {
            emit_line(rs, s, s->buf, s->len);
            s->len = 0;
        }
    }
    return 1;
}

/* Starts /bin/sh in a new process group (pgid = its pid, so kill(-pid) reaches everything
 * it starts) with stdin from /dev/null, stdout/stderr on the given pipe ends, default
 * signal dispositions and an empty signal mask. posix_spawn (vfork-style in glibc) costs
 * far less than fork in a process with many mappings. Returns 0 or an errno value. */
static int spawn_shell(char *const argv[], char *const envp[], const char *cwd, int out_fd,
                       int err_fd, pid_t *pid, bool direct, const char *file)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2)) == 0 &&
        (!cwd || (rc = posix_spawn_file_actions_addchdir_np(&fa, cwd)) == 0) &&
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) == 0 &&
        (rc = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
        (rc = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) == 0)
        rc = !direct ? posix_spawn(pid, "/bin/sh", &fa, &attr, argv, envp)
             : file  ? posix_spawn(pid, file, &fa, &attr, argv, envp)
                     : posix_spawnp(pid, argv[0], &fa, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Looks `name` up in our PATH as execvp would, into buf: true when an executable file of
 * that name is found. access() on each entry is far cheaper than letting the spawned child
 * try (and fail) an execve per entry, which builds a whole exec context each time. False
 * (leave it to posix_spawnp) when `name` holds a slash or PATH is unset or has an empty or
 * relative entry: those are looked up from the command's working directory, not ours.
 * Something found that cannot be executed after all (a directory) makes the spawn fail,
 * and the command then goes through the shell. */
static bool path_lookup(const char *name, char *buf, size_t size)
{
    const char *path = getenv("PATH");
    if (!path || !*path || strchr(name, '/'))
        return false;
    for (const char *p = path;;) {
        const char *colon = strchrnul(p, ':');
        size_t dl = (size_t)(colon - p);
        if (dl == 0 || *p != '/')
            return false;
        int n = snprintf(buf, size, "%.*s/%s", (int)dl, p, name);
        if (n > 0 && (size_t)n < size && access(buf, X_OK) == 0)
            return true;
        if (!*colon)
            return false;
        p = colon + 1;
    }
}

/* Like make: a command that is only plain words (no quoting, expansion, redirection,
 * globbing or operators) and does not start with a shell keyword or builtin means exactly
 * the same when exec'd directly, and skips a shell's start-up (a large share of a no-op
 * task). Splits `cmd` into `words` (pointing into `buf`); returns the word count, or 0
 * when the shell is needed. */
#define MAX_WORDS 64
static int simple_words(const char *cmd, char *buf, size_t len, char *words[MAX_WORDS + 1])
{
    static const char *const shell_words[] = {
        ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "do",
        "done", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi",
        "for", "function", "getopts", "hash", "if", "jobs", "local", "login", "logout",
        "read", "readonly", "return", "select", "set", "shift", "source", "test", "then",
        "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "until", "wait",
        "while", NULL};
    size_t n = strlen(cmd);
    if (n == 0 || n >= len)
        return 0;
    for (const char *p = cmd; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(c == ' ' || c == '\t' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("_./,:=+@%-", c)))
            return 0;
    }
    memcpy(buf, cmd, n + 1);
    int nw = 0;
    for (char *p = buf; *p;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (!*p)
            break;
        if (nw == MAX_WORDS)
            return 0;
        words[nw++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    words[nw] = NULL;
    if (nw == 0 || strchr(words[0], '=')) /* "A=1 cmd" is an assignment */
        return 0;
    for (int i = 0; shell_words[i]; i++)
        if (strcmp(words[0], shell_words[i]) == 0)
            return 0;
    return nw;
}

static int op_run(struct weir_task_ctx *ctx, const struct weir_host *host, json_t *params)
{
    const char *command = json_string_value(json_object_get(params, "command"));
    const char *cwd = json_string_value(json_object_get(params, "cwd"));
    json_t *env = json_object_get(params, "env");
    bool append = !json_is_false(json_object_get(params, "append_env"));
    bool push = !json_is_false(json_object_get(params, "xcom_push"));
    json_t *skip_j = json_object_get(params, "skip_exit_code");
    int skip_code = skip_j ? (int)json_integer_value(skip_j) : 99;
    struct envv ev = { 0 };
    struct run_state rs = { .ctx = ctx, .host = host };
    struct stream so = { .fd = -1, .is_stdout = true }, se = { .fd = -1 };
    int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
    int result = WEIR_TASK_FAILED;
    pid_t pid = -1;
    int rc;

    if (!command)
        return host->fail(ctx, "no command");
    if (!cwd) {
        json_t *c = host->context(ctx);
        cwd = json_string_value(json_object_get(c, "workdir"));
    }
    char eb[128];
    if (cwd && access(cwd, X_OK) != 0)
        return host->fail(ctx, "cannot use '%s' as working directory: %s", cwd,
                          errtext(errno, eb, sizeof eb));
    /* Without `env` to add, the command gets our environment as it is (no copy). */
    if (env && !(append && json_object_size(env) == 0) &&
        build_env(ctx, host, env, append, &ev) != 0)
        goto out;
    so.buf = malloc(MAX_LINE);
    se.buf = malloc(MAX_LINE);
    if (!so.buf || !se.buf) {
        result = host->fail(ctx, "out of memory");
        goto out;
    }
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        result = host->fail(ctx, "cannot create pipes: %s", errtext(errno, eb, sizeof eb));
        goto out;
    }
    char *argv[] = { "sh", "-c", (char *)command, NULL };
    host->log(ctx, WEIR_LOG_INFO, "running command: %s", command);
    /* The direct path looks the program up in our own PATH, so only when `env` leaves
     * PATH alone; a program it cannot find goes through the shell for sh's own error. */
    char wbuf[1024];
    char *words[MAX_WORDS + 1];
    rc = -1;
    char file[4096];
    char *const *envp = ev.v ? ev.v : environ;
    if (!json_object_get(env, "PATH") && simple_words(command, wbuf, sizeof wbuf, words) > 0)
        rc = spawn_shell(words, envp, cwd, out[1], errp[1], &pid, true,
                         path_lookup(words[0], file, sizeof file) ? file : NULL);
    if (rc != 0)
        rc = spawn_shell(argv, envp, cwd, out[1], errp[1], &pid, false, NULL);
    if (rc != 0) {
        result = host->fail(ctx, "cannot start /bin/sh: %s", errtext(rc, eb, sizeof eb));
        pid = -1;
        goto out;
    }
    close(out[1]);
    close(errp[1]);
    out[1] = errp[1] = -1;
    so.fd = out[0];
    se.fd = errp[0];

    bool so_open = true, se_open = true, exited = false, cancelled = false, poll_failed = false;
    int status = 0;
    int64_t kill_at = 0, exited_at = 0;
    while (so_open || se_open) {
        struct pollfd pf[2];
        nfds_t nf = 0;
        if (so_open)
            pf[nf++] = (struct pollfd){ .fd = so.fd, .events = POLLIN };
        if (se_open)
            pf[nf++] = (struct pollfd){ .fd = se.fd, .events = POLLIN };
        int pr = poll(pf, nf, POLL_MS);
        if (pr < 0 && errno != EINTR) {
            host->log(ctx, WEIR_LOG_ERROR, "poll failed: %s", errtext(errno, eb, sizeof eb));
            kill(-pid, SIGKILL);
            poll_failed = true;
            break;
        }
        for (nfds_t i = 0; pr > 0 && i < nf; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (pf[i].fd == so.fd)
                so_open = stream_read(&rs, &so);
            else
                se_open = stream_read(&rs, &se);
        }
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            exited_at = mono_ms();
        }
        /* Background processes may keep the pipes open after the shell exits: read what
         * they write for a moment, then stop waiting for them. */
        if (exited && mono_ms() - exited_at >= (pr == 0 ? DRAIN_MS : DRAIN_MAX_MS))
            break;
        if (!cancelled && host->cancelled(ctx)) {
            cancelled = true;
            host->log(ctx, WEIR_LOG_WARN, "task cancelled: terminating the command");
            kill(-pid, SIGTERM);
            kill_at = mono_ms() + KILL_GRACE_MS;
        }
        if (cancelled && kill_at && mono_ms() >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = 0;
        }
    }
    if (!exited) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    if (cancelled) {
        kill(-pid, SIGKILL); /* whatever of the group survived SIGTERM */
        result = host->fail(ctx, "command cancelled");
    } else if (poll_failed) {
        result = host->fail(ctx, "lost the command's output");
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0) {
            result = WEIR_TASK_SUCCESS;
            if (push && rs.last) {
                json_t *v = json_string(rs.last);
                if (!v) /* not UTF-8: push nothing rather than fail a successful command */
                    host->log(ctx, WEIR_LOG_WARN, "last line is not UTF-8: no return_value");
                else if (host->xcom_push(ctx, "return_value", v) < 0)
                    result = host->fail(ctx, "cannot push return_value");
                json_decref(v);
            }
        } else if (code == skip_code) {
            host->log(ctx, WEIR_LOG_INFO, "command exited with code %d: skipping", code);
            result = WEIR_TASK_SKIPPED;
        } else {
            result = host->fail(ctx, "command exited with code %d", code);
        }
    } else if (WIFSIGNALED(status)) {
        result = host->fail(ctx, "command killed by signal %d", WTERMSIG(status));
    } else {
        result = host->fail(ctx, "command ended with status %d", status);
    }
out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    free(so.buf);
    free(se.buf);
    free(rs.last);
    envv_free(&ev);
    return result;
}

static const struct weir_operator operators[] = {
    {
        .name = "run",
        .summary = "run a command with /bin/sh -c; exit code 0 succeeds, 99 skips",
        .params_schema = params_schema,
        .run = op_run,
    },
};

static const struct weir_plugin plugin = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_plugin),
    .name = "shell",
    .version = "1.0.0",
    .summary = "run shell commands",
    .n_operators = 1,
    .operators = operators,
    /* op_run leaves nothing behind: its command runs in a process of its own (reaped
     * before it returns), its pipes are closed, and the environment and working directory
     * it gives the command are built for the command, never set in this process. */
    .flags = WEIR_PLUGIN_REUSABLE,
};

const struct weir_plugin *weir_plugin_init(const struct weir_host *host)
{
    if (!host || host->abi != WEIR_PLUGIN_ABI || host->size < sizeof(struct weir_host))
        return NULL;
    return &plugin;
}
