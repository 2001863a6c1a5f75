/* forksrv/main.c - `weir-fork-server`, the local executor's fork server as a binary of its
 * own (executor/forksrv.c has the loop). Every try is a fork of this process, so its size
 * is paid on every try: fork() copies each memory mapping and exit() tears them down. The
 * weir binary maps about fifty shared libraries (the web server's TLS, the warehouse's
 * compressors, libpq's Kerberos and LDAP, the SQL shell's line editing); this one links
 * only the runner, the store and core. Plugins load on first use, before the fork, so
 * children inherit them. The executor starts it when it sits next to the weir binary and
 * falls back to `weir tasks fork-server` otherwise.
 *
 * usage: weir-fork-server [CTL]   (CTL: the executor's control socket, executor/ctl.c)
 * Configuration is read like weir reads it (WEIR_HOME, weir.toml, WEIR_* variables). */
#define LOG_MODULE "executor"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/ts.h"
#include "executor/executor.h"

int main(int argc, char **argv)
{
    struct weir_err err = {0};
    struct cfg *cfg = cfg_load(NULL, &err);
    if (!cfg) {
        fprintf(stderr, "weir-fork-server: %s\n", err.msg);
        return 1;
    }
    log_set_level_name(cfg_str(cfg, "core", "log_level"));
    const char *path = cfg_str(cfg, "core", "plugins_path");
    char *def = NULL;
    if (!path || !*path) {
        /* the same default as weir's: plugins/ next to the binary, then ../lib/weir/plugins */
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        path = def = xasprintf("%s/plugins:%s/../lib/weir/plugins", exe, exe);
    }
    struct exec_plugins *reg = exec_plugins_load(path);
    free(def);
    int code = exec_forkserver_main(reg, cfg_str(cfg, "store", "url"),
                                    cfg_int(cfg, "scheduler", "heartbeat_interval") * TS_US_PER_SEC,
                                    argc > 1 ? argv[1] : NULL);
    exec_plugins_free(reg);
    cfg_free(cfg);
    return code;
}
