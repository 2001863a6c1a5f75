/* core/cfg.c - configuration from embedded defaults, $WEIR_HOME/weir.yaml and
 * WEIR_<SECTION>__<KEY> environment variables, in rising priority; cfg_set (CLI flags)
 * beats all three. Every key is declared once in `keys` below with its type, default and
 * range; docs/configuration.md lists the same table. Values are checked at load, so
 * readers never see a malformed integer or boolean. `$WEIR_HOME` (or `${WEIR_HOME}`) in
 * any string value becomes the absolute home folder. */
#define LOG_MODULE "core"
#include "core/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tz.h"
#include "core/yj.h"

extern char **environ;

enum cfg_type {
    CFG_STR,
    CFG_INT,
    CFG_BOOL
};

struct cfg_key {
    const char *section, *key;
    enum cfg_type type;
    const char *def;            /* default, as text */
    int64_t min, max;           /* range of an integer */
    const char *const *choices; /* allowed strings, NULL-terminated, or NULL */
};

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const executors[] = { "local", "queue", "kubernetes", NULL };

static const struct cfg_key keys[] = {
    { "core", "dags_folder", CFG_STR, "$WEIR_HOME/dags", 0, 0, NULL },
    { "core", "plugins_path", CFG_STR, "", 0, 0, NULL },
    { "core", "log_level", CFG_STR, "info", 0, 0, log_levels },
    { "core", "default_timezone", CFG_STR, "UTC", 0, 0, NULL },
    { "store", "url", CFG_STR, "sqlite:///$WEIR_HOME/weir.db", 0, 0, NULL },
    { "executor", "kind", CFG_STR, "local", 0, 0, executors },
    { "executor", "parallelism", CFG_INT, "0", 0, 100000, NULL },
    { "executor", "fork_server", CFG_BOOL, "true", 0, 0, NULL },
    { "scheduler", "zombie_timeout", CFG_INT, "60", 1, INT64_C(86400) * 7, NULL },
    { "scheduler", "heartbeat_interval", CFG_INT, "5", 1, 3600, NULL },
    { "scheduler", "sweep_interval", CFG_INT, "10", 1, 86400, NULL },
    { "scheduler", "dags_are_paused_at_creation", CFG_BOOL, "false", 0, 0, NULL },
    { "scheduler", "dag_dir_poll_interval", CFG_INT, "1", 1, 3600, NULL },
    { "webserver", "host", CFG_STR, "127.0.0.1", 0, 0, NULL },
    { "webserver", "port", CFG_INT, "8080", 0, 65535, NULL },
    { "warehouse", "path", CFG_STR, "$WEIR_HOME/warehouse", 0, 0, NULL },
};

#define NKEYS (sizeof keys / sizeof keys[0])

struct cfg_val {
    char *str; /* the value as text, $WEIR_HOME expanded */
    int64_t i;
    bool b;
};

struct cfg {
    char *home;
    struct cfg_val vals[NKEYS];
};

/* ---- lookups ------------------------------------------------------------------------------ */

static bool section_known(const char *section)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0)
            return true;
    return false;
}

static int key_index(const char *section, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
            return (int)i;
    return -1;
}


/* The known key of `section` (or, when NULL, the section) closest to `word`, or NULL
 * when none is close enough to suggest. */
static const char *closest(const char *section, const char *word)
{
    size_t best = 64;
    const char *pick = NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        if (section && strcmp(keys[i].section, section) != 0)
            continue;
        const char *cand = section ? keys[i].key : keys[i].section;
        size_t dist = str_edit_distance(word, cand);
        if (dist < best) {
            best = dist;
            pick = cand;
        }
    }
    size_t wl = strlen(word);
    size_t limit = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    return best <= limit ? pick : NULL;
}

/* " (did you mean 'x'?)" or "". */
static const char *hint(char *buf, size_t len, const char *section, const char *word)
{
    const char *pick = closest(section, word);
    if (pick)
        snprintf(buf, len, " (did you mean '%s'?)", pick);
    else
        buf[0] = '\0';
    return buf;
}

/* ---- values ------------------------------------------------------------------------------ */

/* Replaces $WEIR_HOME and ${WEIR_HOME} by the home folder. New string. */
static char *expand_home(const char *home, const char *s)
{
    struct buf b;
    buf_init(&b, 0);
    while (*s) {
        if (strncmp(s, "${WEIR_HOME}", 12) == 0) {
            buf_adds(&b, home);
            s += 12;
        } else if (strncmp(s, "$WEIR_HOME", 10) == 0) {
            buf_adds(&b, home);
            s += 10;
        } else {
            buf_addc(&b, *s++);
        }
    }
    char *out = buf_detach(&b);
    buf_release(&b);
    return out;
}

static int parse_bool_text(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Checks `text` for key `k` and stores it. `what` names the source in messages (a file
 * key "'webserver.port'" or a variable "WEIR_WEBSERVER__PORT"). */
static int set_text(struct cfg *cfg, int k, const char *text, const char *what,
                    struct weir_err *err)
{
    const struct cfg_key *d = &keys[k];
    struct cfg_val v = { 0 };
    if (d->type == CFG_INT) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (!*text || errno || !end || *end)
            return err_set(err, WEIR_EINVAL, "%s: '%s' is not an integer", what, text);
        if (n < d->min || n > d->max)
            return err_set(err, WEIR_EINVAL, "%s: %lld is out of range %lld-%lld", what, n,
                           (long long)d->min, (long long)d->max);
        v.i = n;
    } else if (d->type == CFG_BOOL) {
        if (parse_bool_text(text, &v.b) < 0)
            return err_set(err, WEIR_EINVAL, "%s: '%s' is not a boolean (true or false)", what,
                           text);
    } else if (d->choices) {
        bool ok = false;
        for (const char *const *c = d->choices; *c && !ok; c++)
            ok = strcmp(*c, text) == 0;
        if (!ok) {
            struct buf b;
            buf_init(&b, 256);
            for (const char *const *c = d->choices; *c; c++)
                buf_addf(&b, "%s%s", c == d->choices ? "" : ", ", *c);
            err_set(err, WEIR_EINVAL, "%s: '%s' is not one of %s", what, text, b.s);
            buf_release(&b);
            return -WEIR_EINVAL;
        }
    } else if (strcmp(d->section, "core") == 0 && strcmp(d->key, "default_timezone") == 0) {
        struct weir_err te;
        err_clear(&te);
        if (!tz_get(text, &te))
            return err_set(err, WEIR_EINVAL, "%s: %s", what, te.msg);
    }
    v.str = expand_home(cfg->home, text);
    free(cfg->vals[k].str);
    cfg->vals[k] = v;
    return 0;
}

/* ---- home folder ------------------------------------------------------------------------ */

/* mkdir -p with mode 0700 for the folders we create. */
static int make_dirs(const char *path, struct weir_err *err)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char saved = *s;
            *s = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
                char eb[128];
                rc = err_set(err, WEIR_EIO, "cannot create '%s': %s", p,
                             err_errno(errno, eb, sizeof eb));
                break;
            }
            *s = saved;
            if (!saved)
                break;
        }
    }
    free(p);
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            rc = err_set(err, WEIR_EIO, "weir home '%s' is not a directory", path);
    }
    return rc;
}

static char *resolve_home(const char *home, struct weir_err *err)
{
    struct buf b;
    buf_init(&b, 8192);
    if (!home || !*home)
        home = getenv("WEIR_HOME");
    if (home && *home) {
        if (home[0] != '/') {
            char cwd[4096];
            if (!getcwd(cwd, sizeof cwd)) {
                buf_release(&b);
                err_set(err, WEIR_EIO, "cannot resolve weir home '%s': no working directory", home);
                return NULL;
            }
            buf_addf(&b, "%s/", cwd);
        }
        buf_adds(&b, home);
    } else {
        const char *h = getenv("HOME");
        if (!h || h[0] != '/') {
            buf_release(&b);
            err_set(err, WEIR_EINVAL, "cannot find the weir home: set WEIR_HOME or HOME");
            return NULL;
        }
        buf_addf(&b, "%s/.weir", h);
    }
    while (b.len > 1 && b.s[b.len - 1] == '/')
        b.s[--b.len] = '\0';
    char *out = buf_detach(&b);
    buf_release(&b);
    return out;
}

/* ---- sources ------------------------------------------------------------------------------ */

static int load_file(struct cfg *cfg, struct weir_err *err)
{
    char *path = xasprintf("%s/weir.yaml", cfg->home);
    int rc = 0;
    struct yj_doc *y = NULL;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        goto out;
    y = yj_parse_file(path, err);
    if (!y) {
        rc = -(err ? err->code : WEIR_EINVAL);
        goto out;
    }
    json_t *root = yj_root(y);
    if (json_is_null(root))
        goto out;
    int line, col;
    char loc[128];
    if (!json_is_object(root)) {
        yj_loc_root(y, &line, &col);
        snprintf(loc, sizeof loc, "%s:%d:%d", path, line, col);
        rc = err_set_at(err, WEIR_EINVAL, loc, "weir.yaml must be a mapping of sections");
        goto out;
    }
    const char *sec;
    json_t *body;
    json_object_foreach(root, sec, body) {
        char h[96];
        if (!section_known(sec)) {
            yj_loc_key(y, root, sec, &line, &col);
            snprintf(loc, sizeof loc, "%s:%d:%d", path, line, col);
            rc = err_set_at(err, WEIR_EINVAL, loc, "unknown section '%s'%s", sec,
                            hint(h, sizeof h, NULL, sec));
            goto out;
        }
        if (json_is_null(body))
            continue;
        if (!json_is_object(body)) {
            yj_loc_value(y, root, sec, &line, &col);
            snprintf(loc, sizeof loc, "%s:%d:%d", path, line, col);
            rc = err_set_at(err, WEIR_EINVAL, loc, "section '%s' must be a mapping", sec);
            goto out;
        }
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v) {
            int k = key_index(sec, key);
            if (k < 0) {
                yj_loc_key(y, body, key, &line, &col);
                snprintf(loc, sizeof loc, "%s:%d:%d", path, line, col);
                rc = err_set_at(err, WEIR_EINVAL, loc, "unknown key '%s' in section '%s'%s", key,
                                sec, hint(h, sizeof h, sec, key));
                goto out;
            }
            yj_loc_value(y, body, key, &line, &col);
            snprintf(loc, sizeof loc, "%s:%d:%d", path, line, col);
            char what[128], num[32];
            snprintf(what, sizeof what, "'%s.%s'", sec, key);
            const char *text = NULL;
            if (json_is_null(v))
                continue; /* keep the default */
            if (keys[k].type == CFG_STR && json_is_string(v)) {
                text = json_string_value(v);
            } else if (keys[k].type == CFG_INT && json_is_integer(v)) {
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
                text = num;
            } else if (keys[k].type == CFG_BOOL && json_is_boolean(v)) {
                text = json_is_true(v) ? "true" : "false";
            } else {
                static const char *const tn[] = { "a string", "an integer", "true or false" };
                rc = err_set_at(err, WEIR_EINVAL, loc, "%s must be %s", what, tn[keys[k].type]);
                goto out;
            }
            if ((rc = set_text(cfg, k, text, what, err)) < 0) {
                if (err)
                    snprintf(err->loc, sizeof err->loc, "%s", loc);
                goto out;
            }
        }
    }
out:
    yj_free(y);
    free(path);
    return rc;
}

/* ASCII case mapping into `dst` (`len` bytes); names are ASCII, locales do not apply. */
static void map_case(char *dst, size_t len, const char *src, size_t n, bool to_upper)
{
    size_t i = 0;
    for (; i < n && src[i] && i + 1 < len; i++) {
        char ch = src[i];
        if (to_upper && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - ('a' - 'A'));
        else if (!to_upper && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + ('a' - 'A'));
        dst[i] = ch;
    }
    dst[i] = '\0';
}

/* WEIR_<SECTION>__<KEY>=value for known sections. Variables of other sections are left
 * alone (WEIR_CONN_*, WEIR_VAR_* and friends belong to others). */
static int load_env(struct cfg *cfg, struct weir_err *err)
{
    for (char **e = environ; e && *e; e++) {
        const char *var = *e;
        if (strncmp(var, "WEIR_", 5) != 0)
            continue;
        const char *eq = strchr(var, '=');
        const char *sep = strstr(var + 5, "__");
        if (!eq || !sep || sep > eq)
            continue;
        char sec[64], key[64];
        size_t sl = (size_t)(sep - (var + 5)), kl = (size_t)(eq - (sep + 2));
        if (sl == 0 || sl >= sizeof sec || kl >= sizeof key)
            continue;
        map_case(sec, sizeof sec, var + 5, sl, false);
        map_case(key, sizeof key, sep + 2, kl, false);
        if (!section_known(sec))
            continue;
        char name[160];
        snprintf(name, sizeof name, "%.*s", (int)(eq - var), var);
        int k = key_index(sec, key);
        if (k < 0) {
            const char *close = closest(sec, key);
            if (close) {
                char us[64], uk[64];
                map_case(us, sizeof us, sec, strlen(sec), true);
                map_case(uk, sizeof uk, close, strlen(close), true);
                return err_set(err, WEIR_EINVAL,
                               "unknown configuration variable '%s' (did you mean "
                               "'WEIR_%s__%s'?)",
                               name, us, uk);
            }
            return err_set(err, WEIR_EINVAL, "unknown configuration variable '%s'", name);
        }
        int rc = set_text(cfg, k, eq + 1, name, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- API ---------------------------------------------------------------------------------- */

struct cfg *cfg_load(const char *home, struct weir_err *err)
{
    struct cfg *cfg = xcalloc(1, sizeof *cfg);
    cfg->home = resolve_home(home, err);
    if (!cfg->home || make_dirs(cfg->home, err) < 0)
        goto fail;
    for (size_t i = 0; i < NKEYS; i++) {
        char what[128];
        snprintf(what, sizeof what, "default of '%s.%s'", keys[i].section, keys[i].key);
        if (set_text(cfg, (int)i, keys[i].def, what, err) < 0)
            goto fail;
    }
    if (load_file(cfg, err) < 0 || load_env(cfg, err) < 0)
        goto fail;
    return cfg;
fail:
    /* Messages quote values from the file or environment: keep them one line. */
    for (char *p = err ? err->msg : NULL; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    cfg_free(cfg);
    return NULL;
}

void cfg_free(struct cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        free(cfg->vals[i].str);
    free(cfg->home);
    free(cfg);
}

const char *cfg_home(const struct cfg *cfg)
{
    return cfg->home;
}

static int must_key(const char *section, const char *key, enum cfg_type type, bool any)
{
    int k = key_index(section, key);
    WEIR_ASSERT(k >= 0);
    WEIR_ASSERT(any || keys[k].type == type);
    return k;
}

const char *cfg_str(const struct cfg *cfg, const char *section, const char *key)
{
    return cfg->vals[must_key(section, key, CFG_STR, true)].str;
}

int64_t cfg_int(const struct cfg *cfg, const char *section, const char *key)
{
    return cfg->vals[must_key(section, key, CFG_INT, false)].i;
}

bool cfg_bool(const struct cfg *cfg, const char *section, const char *key)
{
    return cfg->vals[must_key(section, key, CFG_BOOL, false)].b;
}

void cfg_set(struct cfg *cfg, const char *section, const char *key, const char *value)
{
    int k = must_key(section, key, CFG_STR, true);
    char what[128];
    snprintf(what, sizeof what, "'%s.%s'", section, key);
    struct weir_err err;
    err_clear(&err);
    /* A flag the CLI already validated cannot fail here; anything else keeps the old value
     * (bad input never aborts) and says so. */
    if (set_text(cfg, k, value, what, &err) < 0)
        LOG_WARN("ignoring setting: %s", err.msg);
}
