/* cli/main.c - the weir command: dispatches argv[1] to one file per command group. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *usage =
    "usage: weir COMMAND [ARGS]\n"
    "\n"
    "  standalone            scheduler, local executor and web server in one process\n"
    "  scheduler             the scheduler alone\n"
    "  webserver             the web UI and REST API alone\n"
    "  users create|list|delete|password|token\n"
    "  dags list|show|trigger|pause|unpause|backfill|test\n"
    "  runs list|show\n"
    "  tasks list|run|test|clear|logs\n"
    "  cron next EXPR [--tz ZONE] [--from RFC3339] [--count N]\n"
    "  db migrate\n"
    "  plugins list\n"
#ifdef WEIR_HAVE_WAREHOUSE
    "  sql [--db DIR] [-c SQL | -f FILE]\n"
#endif
    "  version\n"
    "\n"
    "Configuration: $WEIR_HOME/weir.yaml (default ~/.weir), WEIR_<SECTION>__<KEY> variables.\n"
    "Exit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 not found, 4 conflict,\n"
    "5 store unavailable.";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s\n", usage);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        puts(usage);
        return CLI_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("weir %s\n", WEIR_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "standalone") == 0 || strcmp(cmd, "scheduler") == 0)
        return cli_serve_main(sub_argc, sub_argv);
    if (strcmp(cmd, "webserver") == 0)
        return cli_webserver_main(sub_argc, sub_argv);
    if (strcmp(cmd, "users") == 0)
        return cli_users_main(sub_argc, sub_argv);
    if (strcmp(cmd, "dags") == 0)
        return cli_dags_main(sub_argc, sub_argv);
    if (strcmp(cmd, "runs") == 0)
        return cli_runs_main(sub_argc, sub_argv);
    if (strcmp(cmd, "tasks") == 0 || strcmp(cmd, "task") == 0)
        return cli_tasks_main(sub_argc, sub_argv);
    if (strcmp(cmd, "cron") == 0)
        return cli_cron_main(sub_argc, sub_argv);
    if (strcmp(cmd, "db") == 0)
        return cli_db_main(sub_argc, sub_argv);
    if (strcmp(cmd, "plugins") == 0)
        return cli_plugins_main(sub_argc, sub_argv);
#ifdef WEIR_HAVE_WAREHOUSE
    if (strcmp(cmd, "sql") == 0)
        return cli_sql_main(sub_argc, sub_argv);
#endif
    fprintf(stderr, "weir: unknown command '%s'\n%s\n", cmd, usage);
    return CLI_USAGE;
}
