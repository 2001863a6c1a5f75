/* tests/unit/test_cfg.c - configuration: defaults, weir.yaml, WEIR_<SECTION>__<KEY>
 * overrides, cfg_set, and the errors for unknown or malformed settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/mem.h"

static char tmp_root[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/test_cfg_XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    unsetenv("WEIR_HOME");
    unsetenv("WEIR_STORE__URL");
    unsetenv("WEIR_WEBSERVER__PORT");
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(tmp_root);
    return 0;
}

static char *home_with(const char *name, const char *yaml)
{
    char *home = xasprintf("%s/%s", tmp_root, name);
    mkdir(home, 0700);
    if (yaml) {
        char *path = xasprintf("%s/weir.yaml", home);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(yaml, f);
        fclose(f);
        free(path);
    }
    return home;
}

static void test_defaults(void **state)
{
    (void)state;
    char *home = xasprintf("%s/new/nested", tmp_root); /* created by cfg_load */
    struct weir_err err;
    err_clear(&err);
    struct cfg *c = cfg_load(home, &err);
    if (!c)
        fail_msg("%s: %s", err.loc, err.msg);
    struct stat st;
    assert_int_equal(stat(home, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_string_equal(cfg_home(c), home);
    char *want = xasprintf("sqlite:///%s/weir.db", home);
    assert_string_equal(cfg_str(c, "store", "url"), want);
    free(want);
    want = xasprintf("%s/dags", home);
    assert_string_equal(cfg_str(c, "core", "dags_folder"), want);
    free(want);
    want = xasprintf("%s/warehouse", home);
    assert_string_equal(cfg_str(c, "warehouse", "path"), want);
    free(want);
    assert_string_equal(cfg_str(c, "core", "plugins_path"), "");
    assert_string_equal(cfg_str(c, "core", "log_level"), "info");
    assert_string_equal(cfg_str(c, "core", "default_timezone"), "UTC");
    assert_string_equal(cfg_str(c, "executor", "kind"), "local");
    assert_int_equal(cfg_int(c, "executor", "parallelism"), 0);
    assert_int_equal(cfg_int(c, "scheduler", "zombie_timeout"), 60);
    assert_int_equal(cfg_int(c, "scheduler", "heartbeat_interval"), 5);
    assert_int_equal(cfg_int(c, "scheduler", "sweep_interval"), 10);
    assert_int_equal(cfg_int(c, "scheduler", "dag_dir_poll_interval"), 1);
    assert_false(cfg_bool(c, "scheduler", "dags_are_paused_at_creation"));
    assert_string_equal(cfg_str(c, "webserver", "host"), "127.0.0.1");
    assert_int_equal(cfg_int(c, "webserver", "port"), 8080);
    assert_string_equal(cfg_str(c, "webserver", "port"), "8080");
    cfg_free(c);
    free(home);
    cfg_free(NULL);
}

static void test_home_resolution(void **state)
{
    (void)state;
    struct weir_err err;
    char *home = home_with("envhome", NULL);
    setenv("WEIR_HOME", home, 1);
    struct cfg *c = cfg_load(NULL, &err);
    assert_non_null(c);
    assert_string_equal(cfg_home(c), home);
    cfg_free(c);
    unsetenv("WEIR_HOME");

    /* A relative home becomes absolute; trailing slashes go. */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmp_root), 0);
    c = cfg_load("rel/", &err);
    assert_non_null(c);
    char *want = xasprintf("%s/rel", tmp_root);
    assert_string_equal(cfg_home(c), want);
    free(want);
    cfg_free(c);
    assert_int_equal(chdir(cwd), 0);

    /* No WEIR_HOME: $HOME/.weir */
    char *fake = xasprintf("%s/fakehome", tmp_root);
    mkdir(fake, 0700);
    char *old = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
    setenv("HOME", fake, 1);
    c = cfg_load(NULL, &err);
    assert_non_null(c);
    want = xasprintf("%s/.weir", fake);
    assert_string_equal(cfg_home(c), want);
    free(want);
    cfg_free(c);
    if (old)
        setenv("HOME", old, 1);
    free(old);
    free(fake);
    free(home);
}

static void test_file_env_set(void **state)
{
    (void)state;
    char *home = home_with("layers", "# weir configuration\n"
                                     "core:\n"
                                     "  dags_folder: ${WEIR_HOME}/mydags\n"
                                     "  log_level: debug\n"
                                     "store:\n"
                                     "  url: postgresql://db/weir\n"
                                     "webserver:\n"
                                     "  port: 9090\n"
                                     "  host: 0.0.0.0\n"
                                     "scheduler:\n"
                                     "  dags_are_paused_at_creation: true\n"
                                     "warehouse:\n");
    setenv("WEIR_STORE__URL", "sqlite:///$WEIR_HOME/other.db", 1);
    setenv("WEIR_WEBSERVER__PORT", "7070", 1);
    setenv("WEIR_CONN_MY__DB", "ignored: not a config section", 1);
    struct weir_err err;
    err_clear(&err);
    struct cfg *c = cfg_load(home, &err);
    if (!c)
        fail_msg("%s: %s", err.loc, err.msg);
    char *want = xasprintf("%s/mydags", home);
    assert_string_equal(cfg_str(c, "core", "dags_folder"), want);
    free(want);
    assert_string_equal(cfg_str(c, "core", "log_level"), "debug");
    want = xasprintf("sqlite:///%s/other.db", home); /* the environment beats the file */
    assert_string_equal(cfg_str(c, "store", "url"), want);
    free(want);
    assert_int_equal(cfg_int(c, "webserver", "port"), 7070);
    assert_string_equal(cfg_str(c, "webserver", "host"), "0.0.0.0");
    assert_true(cfg_bool(c, "scheduler", "dags_are_paused_at_creation"));

    cfg_set(c, "webserver", "port", "6060"); /* flags beat everything */
    assert_int_equal(cfg_int(c, "webserver", "port"), 6060);
    cfg_set(c, "webserver", "port", "nope"); /* rejected, old value kept */
    assert_int_equal(cfg_int(c, "webserver", "port"), 6060);
    cfg_set(c, "scheduler", "dags_are_paused_at_creation", "off");
    assert_false(cfg_bool(c, "scheduler", "dags_are_paused_at_creation"));
    cfg_set(c, "store", "url", "postgresql://x/y");
    assert_string_equal(cfg_str(c, "store", "url"), "postgresql://x/y");
    cfg_free(c);
    unsetenv("WEIR_STORE__URL");
    unsetenv("WEIR_WEBSERVER__PORT");
    unsetenv("WEIR_CONN_MY__DB");
    free(home);
}

/* Loads `yaml` as weir.yaml (with `env` set as NAME=VALUE when not NULL) and expects an
 * error whose message is `msg` and, for file errors, loc ending in `loc_suffix`. */
static void expect_error(const char *name, const char *yaml, const char *env, const char *msg,
                         const char *loc_suffix)
{
    char *home = home_with(name, yaml);
    char *var = NULL;
    if (env) {
        var = xstrdup(env);
        char *eq = strchr(var, '=');
        *eq = '\0';
        setenv(var, eq + 1, 1);
    }
    struct weir_err err;
    err_clear(&err);
    struct cfg *c = cfg_load(home, &err);
    if (var)
        unsetenv(var);
    free(var);
    if (c) {
        cfg_free(c);
        fail_msg("%s: expected an error", name);
    }
    assert_int_equal(err.code, WEIR_EINVAL);
    assert_string_equal(err.msg, msg);
    if (loc_suffix) {
        char *want = xasprintf("%s/weir.yaml%s", home, loc_suffix);
        assert_string_equal(err.loc, want);
        free(want);
    }
    free(home);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("e1", "core:\n  log_level: info\nstroe:\n  url: x\n", NULL,
                 "unknown section 'stroe' (did you mean 'store'?)", ":3:1");
    expect_error("e2", "core:\n  dag_folder: /x\n", NULL,
                 "unknown key 'dag_folder' in section 'core' (did you mean 'dags_folder'?)",
                 ":2:3");
    expect_error("e3", "webserver:\n  port: http\n", NULL, "'webserver.port' must be an integer",
                 ":2:9");
    expect_error("e4", "webserver:\n  port: 70000\n", NULL,
                 "'webserver.port': 70000 is out of range 0-65535", ":2:9");
    expect_error("e5", "scheduler:\n  dags_are_paused_at_creation: yes\n", NULL,
                 "'scheduler.dags_are_paused_at_creation' must be true or false", ":2:32");
    expect_error("e6", "core:\n  log_level: loud\n", NULL,
                 "'core.log_level': 'loud' is not one of error, warn, info, debug", ":2:14");
    expect_error("e7", "core: [a]\n", NULL, "section 'core' must be a mapping", ":1:7");
    expect_error("e8", "core:\n  log_level: info\n bad\n", NULL,
                 "invalid yaml: did not find expected key while parsing a block mapping", NULL);
    expect_error("e9", "- a\n", NULL, "weir.yaml must be a mapping of sections", ":1:1");
    expect_error("e10", "store:\n  url: 5\n", NULL, "'store.url' must be a string", ":2:8");
    expect_error("e11", "core:\n  default_timezone: Mars/Base\n", NULL,
                 "'core.default_timezone': unknown time zone 'Mars/Base'", ":2:21");
    expect_error("e12", NULL, "WEIR_STORE__URLL=x",
                 "unknown configuration variable 'WEIR_STORE__URLL' (did you mean "
                 "'WEIR_STORE__URL'?)",
                 NULL);
    expect_error("e13", NULL, "WEIR_SCHEDULER__NOPE=1",
                 "unknown configuration variable 'WEIR_SCHEDULER__NOPE'", NULL);
    expect_error("e14", NULL, "WEIR_WEBSERVER__PORT=80a",
                 "WEIR_WEBSERVER__PORT: '80a' is not an integer", NULL);
    expect_error("e15", NULL, "WEIR_SCHEDULER__DAGS_ARE_PAUSED_AT_CREATION=maybe",
                 "WEIR_SCHEDULER__DAGS_ARE_PAUSED_AT_CREATION: 'maybe' is not a boolean (true "
                 "or false)",
                 NULL);
    expect_error("e16", NULL, "WEIR_SCHEDULER__ZOMBIE_TIMEOUT=0",
                 "WEIR_SCHEDULER__ZOMBIE_TIMEOUT: 0 is out of range 1-604800", NULL);

    /* The home must be a directory. */
    char *file = xasprintf("%s/plainfile", tmp_root);
    FILE *f = fopen(file, "w");
    fclose(f);
    struct weir_err err;
    assert_null(cfg_load(file, &err));
    assert_int_equal(err.code, WEIR_EIO);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_home_resolution),
        cmocka_unit_test(test_file_env_set),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
