/* cli/web.c - `weir webserver` (the web server alone, for deployments where the scheduler
 * runs elsewhere over a shared store) and `weir users create|list|delete|password|token`. */
#define LOG_MODULE "cli"
#include "cli/cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/ts.h"
#include "store/store.h"
#include "webui/webui.h"

static void notify_wake(void *ud)
{
    cli_notify(ud);
}

/* --host/--port override webserver.host/port. */
static bool web_args(int argc, char **argv, int start, const char **host, int *port,
                     const char *usage, int *code)
{
    for (int i = start; i < argc; i++) {
        const char *v = NULL;
        bool bad = false;
        if (cli_opt(argc, argv, &i, "--host", true, &v, &bad)) {
            if (!bad)
                *host = v;
        } else if (cli_opt(argc, argv, &i, "--port", true, &v, &bad)) {
            char *end = NULL;
            errno = 0;
            long p = bad ? -1 : strtol(v, &end, 10);
            if (bad || errno || *end || p < 0 || p > 65535) {
                *code = cli_usage("--port must be 0..65535\n%s", usage);
                return false;
            }
            *port = (int)p;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts(usage);
            *code = CLI_OK;
            return false;
        } else {
            *code = cli_usage("unknown argument '%s'\n%s", argv[i], usage);
            return false;
        }
        if (bad) {
            *code = CLI_USAGE;
            return false;
        }
    }
    return true;
}

int cli_web_opts(struct cli_env *e, struct web_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = cfg_str(e->cfg, "webserver", "host");
    o->port = (int)cfg_int(e->cfg, "webserver", "port");
    o->store_url = cfg_str(e->cfg, "store", "url");
    o->dags_folder = e->dags_folder;
    return 0;
}

int cli_ensure_admin(struct cli_env *e, struct weir_err *err)
{
    int64_t n = 0;
    int rc = store_user_count(e->st, &n, err);
    if (rc < 0 || n > 0)
        return rc < 0 ? rc : 0;
    char pw[32];
    web_random_password(pw, sizeof pw);
    rc = web_user_create(e->st, "admin", "admin", pw, err);
    if (rc == -WEIR_ECONFLICT) /* another process created it first */
        return 0;
    if (rc < 0)
        return err_prefix(err, "cannot create the first admin user");
    printf("weir: created user 'admin' (role admin) with password: %s\n"
           "weir: the password is shown only this once; change it with "
           "'weir users password admin'\n",
           pw);
    fflush(stdout);
    return 0;
}

static const char *webserver_usage = "usage: weir webserver [--host ADDR] [--port N]";

int cli_webserver_main(int argc, char **argv)
{
    const char *host = NULL;
    int port = -1, code = 0;
    if (!web_args(argc, argv, 1, &host, &port, webserver_usage, &code))
        return code;
    struct cli_env e;
    code = cli_env_open(&e, CLI_NEED_STORE);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    struct web_opts o;
    cli_web_opts(&e, &o);
    if (host)
        o.host = host;
    if (port >= 0)
        o.port = port;
    o.wake = notify_wake;
    o.wake_ud = &e;
    /* block the signals before the server's threads start, so they inherit the mask and
     * only sigwait below sees SIGINT/SIGTERM */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct weir_err err = { 0 };
    LOG_INFO("weir %s webserver home=%s store=%s", WEIR_VERSION, cfg_home(e.cfg),
             store_backend(e.st));
    struct web *w = web_start(&o, &err);
    if (!w) {
        code = cli_fail(-err.code, &err);
        cli_env_close(&e);
        return code;
    }
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO("signal %d: shutting down", sig);
    web_stop(w);
    cli_env_close(&e);
    return CLI_OK;
}

/* ---- weir users ---------------------------------------------------------------------- */

static const char *users_usage =
    "usage: weir users create --username U --role admin|op|viewer [--password P]\n"
    "       weir users list [--json]\n"
    "       weir users delete USERNAME\n"
    "       weir users password USERNAME [--password P]\n"
    "       weir users token USERNAME [--ttl DURATION]   (prints a new API token)";

int cli_users_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        puts(users_usage);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *cmd = argv[1], *user = NULL, *role = NULL, *pass = NULL, *ttl = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        bool bad = false;
        if (cli_opt(argc, argv, &i, "--username", true, &user, &bad) ||
            cli_opt(argc, argv, &i, "--role", true, &role, &bad) ||
            cli_opt(argc, argv, &i, "--password", true, &pass, &bad) ||
            cli_opt(argc, argv, &i, "--ttl", true, &ttl, &bad)) {
            if (bad)
                return CLI_USAGE;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] != '-' && !user) {
            user = argv[i];
        } else {
            return cli_usage("unknown argument '%s'\n%s", argv[i], users_usage);
        }
    }
    bool known = strcmp(cmd, "create") == 0 || strcmp(cmd, "list") == 0 ||
                 strcmp(cmd, "delete") == 0 || strcmp(cmd, "password") == 0 ||
                 strcmp(cmd, "token") == 0;
    if (!known)
        return cli_usage("unknown users command '%s'\n%s", cmd, users_usage);
    if (strcmp(cmd, "list") != 0 && !user)
        return cli_usage("users %s needs a username\n%s", cmd, users_usage);
    if (strcmp(cmd, "create") == 0 && !role)
        return cli_usage("users create needs --role admin|op|viewer");
    int64_t ttl_us = 0;
    struct weir_err err = { 0 };
    if (ttl && ts_parse_duration(ttl, &ttl_us, &err) < 0)
        return cli_usage("--ttl: %s", err.msg);
    struct cli_env e;
    int code = cli_env_open(&e, CLI_NEED_STORE);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    int rc = 0;
    char pw[32];
    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "password") == 0) {
        bool generated = !pass;
        if (generated) {
            web_random_password(pw, sizeof pw);
            pass = pw;
        }
        rc = strcmp(cmd, "create") == 0 ? web_user_create(e.st, user, role, pass, &err)
                                        : web_user_set_password(e.st, user, pass, &err);
        if (rc == 0 && generated)
            printf("%s\n", pw);
        else if (rc == 0)
            printf("%s user '%s'\n", strcmp(cmd, "create") == 0 ? "created" : "changed password of",
                   user);
    } else if (strcmp(cmd, "list") == 0) {
        json_t *arr = NULL;
        rc = store_user_list(e.st, &arr, &err);
        if (rc == 0 && json) {
            json_t *o = json_object();
            json_object_set_new(o, "users", arr);
            cli_print_json(o);
            json_decref(o);
        } else if (rc == 0) {
            size_t i;
            json_t *u;
            json_array_foreach(arr, i, u)
                printf("%-30s %s\n", json_string_value(json_object_get(u, "username")),
                       json_string_value(json_object_get(u, "role")));
            json_decref(arr);
        }
    } else if (strcmp(cmd, "delete") == 0) {
        rc = store_user_delete(e.st, user, &err);
        if (rc == 0)
            printf("deleted user '%s'\n", user);
    } else {
        char tok[96];
        rc = web_token_create(e.st, user, ttl_us, tok, sizeof tok, &err);
        if (rc == 0)
            printf("%s\n", tok);
    }
    code = rc < 0 ? cli_fail(rc, &err) : CLI_OK;
    cli_env_close(&e);
    return code;
}
