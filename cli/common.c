/* cli/common.c - what every command shares: configuration, store, plugins, errors,
 * output. */
#define LOG_MODULE "cli"
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "executor/executor.h"
#include "scheduler/scheduler.h"
#include "weir/plugin.h"
#include "store/store.h"

int cli_fail(int rc, const struct weir_err *err)
{
    int code = rc < 0 ? -rc : rc;
    if (err && err->loc[0])
        fprintf(stderr, "weir: %s: %s\n", err->loc, err->msg);
    else if (err && err->msg[0])
        fprintf(stderr, "weir: %s\n", err->msg);
    else
        fprintf(stderr, "weir: %s\n", err_name(code));
    switch (code) {
    case WEIR_EINVAL: return CLI_USAGE;
    case WEIR_ENOTFOUND: return CLI_NOTFOUND;
    case WEIR_ECONFLICT: return CLI_CONFLICT;
    case WEIR_EUNAVAIL: return CLI_UNAVAIL;
    default: return CLI_FAILED;
    }
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weir: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_USAGE;
}

void cli_print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
}

bool cli_opt(int argc, char **argv, int *i, const char *name, bool want_val, const char **val,
             bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return false;
    if (!want_val)
        return a[n] == '\0';
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "weir: option '%s' needs a value\n", name);
        *bad = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

bool cli_time_arg(const char *s, int64_t *out)
{
    struct weir_err err = {0};
    if (ts_parse(s, NULL, out, &err) < 0) {
        fprintf(stderr, "weir: %s\n", err.msg);
        return false;
    }
    return true;
}

static void resolve_exe(struct cli_env *e)
{
    ssize_t n = readlink("/proc/self/exe", e->exe, sizeof e->exe - 1);
    e->exe[n > 0 ? n : 0] = '\0';
}

/* The default plugin path: plugins/ next to the binary, then ../lib/weir/plugins. */
static char *default_plugin_path(const char *exe)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", exe);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return xasprintf("%s/plugins:%s/../lib/weir/plugins", dir, dir);
}

static bool op_find(void *ud, const char *ref, const char **schema)
{
    const struct weir_operator *op = exec_plugins_find(ud, ref, NULL);
    if (op && schema)
        *schema = op->params_schema;
    return op != NULL;
}

bool cli_op_find(void *ud, const char *ref, const char **schema)
{
    return op_find(ud, ref, schema);
}

int cli_env_open(struct cli_env *e, unsigned need)
{
    struct weir_err err = {0};
    memset(e, 0, sizeof *e);
    if (need & CLI_NEED_SYNC)
        need |= CLI_NEED_STORE | CLI_NEED_PLUGINS;
    resolve_exe(e);
    e->cfg = cfg_load(NULL, &err);
    if (!e->cfg)
        return cli_fail(-err.code, &err);
    log_set_level_name(cfg_str(e->cfg, "core", "log_level"));
    const char *dags = cfg_str(e->cfg, "core", "dags_folder");
    if (!realpath(dags, e->dags_folder))
        snprintf(e->dags_folder, sizeof e->dags_folder, "%s", dags);
    snprintf(e->wake_file, sizeof e->wake_file, "%s/scheduler.wake", cfg_home(e->cfg));
    if (need & CLI_NEED_STORE) {
        const char *url = cfg_str(e->cfg, "store", "url");
        e->st = store_open(url, &err);
        if (!e->st)
            return cli_fail(-err.code, &err);
        int rc = store_migrate(e->st, NULL, &err);
        if (rc < 0)
            return cli_fail(rc, &err);
    }
    if (need & CLI_NEED_PLUGINS) {
        const char *path = cfg_str(e->cfg, "core", "plugins_path");
        char *def = NULL;
        if (!path || !*path)
            path = def = default_plugin_path(e->exe);
        e->plugins = exec_plugins_load(path);
        free(def);
    }
    if (need & CLI_NEED_SYNC) {
        struct sched_ops ops = {.find = op_find, .ud = e->plugins};
        int rc = sched_sync_folder(e->st, e->dags_folder, &ops,
                                   cfg_bool(e->cfg, "scheduler", "dags_are_paused_at_creation"),
                                   NULL, &err);
        if (rc < 0 && rc != -WEIR_ENOTFOUND)
            return cli_fail(rc, &err);
    }
    return 0;
}

void cli_env_close(struct cli_env *e)
{
    exec_plugins_free(e->plugins);
    store_free(e->st);
    cfg_free(e->cfg);
    memset(e, 0, sizeof *e);
}

void cli_notify(const struct cli_env *e)
{
    /* The scheduler watches this file (uv_fs_event); any write wakes it. */
    int fd = open(e->wake_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, "1\n", 2);
        (void)w;
        close(fd);
    }
}
