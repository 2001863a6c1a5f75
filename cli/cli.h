/* cli/cli.h - the command groups of the weir binary; main.c dispatches argv[1] to them.
 * Each returns the process exit code: 0 success, 1 the operation failed (a failed run,
 * a task error), 2 usage error (bad flags or arguments), 3 not found, 4 conflict,
 * 5 store unavailable. Errors go to stderr as "weir: <message>". */
#ifndef WEIR_CLI_CLI_H
#define WEIR_CLI_CLI_H

enum cli_exit {
    CLI_OK = 0,
    CLI_FAILED = 1,
    CLI_USAGE = 2,
    CLI_NOTFOUND = 3,
    CLI_CONFLICT = 4,
    CLI_UNAVAIL = 5,
};

/* `weir cron next EXPR [--tz ZONE] [--from RFC3339] [--count N]` (cli/cron.c). argv[0] is
 * "cron". */
int cli_cron_main(int argc, char **argv);

#endif
