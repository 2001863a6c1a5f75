/* cli/misc.c - `weir db migrate` and `weir plugins list`. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "core/cfg.h"
#include "core/err.h"
#include "executor/executor.h"
#include "store/store.h"

int cli_db_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "migrate") != 0 || argc > 2)
        return cli_usage("usage: weir db migrate");
    struct cli_env e;
    /* cli_env_open migrates; open without the store first to report what happened. */
    int code = cli_env_open(&e, 0);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    struct weir_err err = {0};
    e.st = store_open(cfg_str(e.cfg, "store", "url"), &err);
    if (!e.st) {
        code = cli_fail(-err.code, &err);
        cli_env_close(&e);
        return code;
    }
    int applied = 0, version = 0;
    int rc = store_migrate(e.st, &applied, &err);
    if (rc == 0)
        rc = store_schema_version(e.st, &version, &err);
    if (rc < 0)
        code = cli_fail(rc, &err);
    else
        printf("database at schema version %d (%d migration%s applied, %s)\n", version, applied,
               applied == 1 ? "" : "s", store_backend(e.st));
    cli_env_close(&e);
    return code;
}

int cli_plugins_main(int argc, char **argv)
{
    bool json = false;
    if (argc < 2 || strcmp(argv[1], "list") != 0)
        return cli_usage("usage: weir plugins list [--json]");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return cli_usage("unknown argument '%s'\nusage: weir plugins list [--json]", argv[i]);
    }
    struct cli_env e;
    int code = cli_env_open(&e, CLI_NEED_PLUGINS);
    if (code) {
        cli_env_close(&e);
        return code;
    }
    json_t *list = exec_plugins_to_json(e.plugins);
    json_t *errs = exec_plugins_errors(e.plugins);
    if (json) {
        json_t *o = json_pack("{s:O,s:O}", "plugins", list, "errors", errs);
        cli_print_json(o);
        json_decref(o);
    } else {
        size_t i, j;
        json_t *p, *op;
        json_array_foreach(list, i, p) {
            printf("%s %s  %s\n", json_string_value(json_object_get(p, "name")),
                   json_string_value(json_object_get(p, "version")),
                   json_string_value(json_object_get(p, "file")));
            json_array_foreach(json_object_get(p, "operators"), j, op)
                printf("  %s.%-20s %s\n", json_string_value(json_object_get(p, "name")),
                       json_string_value(json_object_get(op, "name")),
                       json_string_value(json_object_get(op, "summary")));
        }
        json_array_foreach(errs, i, p)
            fprintf(stderr, "weir: plugin not loaded: %s\n",
                    json_string_value(json_object_get(p, "error")));
    }
    if (json_array_size(errs))
        code = CLI_FAILED;
    json_decref(list);
    json_decref(errs);
    cli_env_close(&e);
    return code;
}
