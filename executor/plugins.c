/* executor/plugins.c - the plugin registry: dlopen each weir_*.so, check its ABI and
 * descriptor, index its operators; the host function table; validation of operator
 * parameters against their schema.
 *
 * A plugin is refused (its error kept for `weir plugins list`) when the entry symbol is
 * missing, init returns NULL, the ABI differs, the descriptor is too small or malformed,
 * or its name is taken. Refusing one plugin never stops the others (nginx names the file
 * and both versions; so do we). */
#define LOG_MODULE "executor"
#include "executor/executor.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "executor/executor_int.h"

#define MAX_PLUGINS         256
#define MAX_PLUGIN_DIRS_LEN 4096

struct plugin_entry {
    char *file;
    void *dl;
    const struct weir_plugin *p;
};

/* Files found on the path are opened lazily: a task runner needs one plugin, so
 * exec_plugins_find first tries the file named after the plugin and opens the rest only if
 * that fails; listings open everything. `mu` guards the lazy loads (the web server may list
 * plugins from several threads). */
struct exec_plugins {
    pthread_mutex_t mu;
    struct plugin_entry *items;
    size_t n, cap;
    char **pending; /* files found but not opened yet, in path order */
    size_t npending;
    json_t *errors; /* array of {"file","error"} */
};

/* ---- host table ---------------------------------------------------------------------- */

static void host_log(struct weir_task_ctx *ctx, enum weir_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->ops->vlog(ctx, level, fmt, ap);
    va_end(ap);
}

static int host_fail(struct weir_task_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ctx->ops->vfail(ctx, fmt, ap);
    va_end(ap);
    return rc;
}

static int host_xcom_push(struct weir_task_ctx *ctx, const char *key, json_t *value)
{
    return ctx->ops->xcom_push(ctx, key, value);
}

static json_t *host_xcom_pull(struct weir_task_ctx *ctx, const char *task_id, const char *key)
{
    return ctx->ops->xcom_pull(ctx, task_id, key);
}

static json_t *host_conn_get(struct weir_task_ctx *ctx, const char *conn_id)
{
    return ctx->ops->conn_get(ctx, conn_id);
}

static json_t *host_var_get(struct weir_task_ctx *ctx, const char *key)
{
    return ctx->ops->var_get(ctx, key);
}

static int host_cancelled(struct weir_task_ctx *ctx)
{
    return ctx->ops->cancelled(ctx);
}

static void host_progress(struct weir_task_ctx *ctx, double fraction, const char *msg)
{
    ctx->ops->progress(ctx, fraction, msg);
}

static json_t *host_context(struct weir_task_ctx *ctx)
{
    return ctx->ops->context(ctx);
}

static char *host_render(struct weir_task_ctx *ctx, const char *tmpl)
{
    return ctx->ops->render(ctx, tmpl);
}

static void host_free(void *p)
{
    free(p);
}

static const struct weir_host host_table = {
    .abi = WEIR_PLUGIN_ABI,
    .size = sizeof(struct weir_host),
    .log = host_log,
    .fail = host_fail,
    .xcom_push = host_xcom_push,
    .xcom_pull = host_xcom_pull,
    .conn_get = host_conn_get,
    .var_get = host_var_get,
    .cancelled = host_cancelled,
    .progress = host_progress,
    .context = host_context,
    .render = host_render,
    .free = host_free,
};

const struct weir_host *exec__host(void)
{
    return &host_table;
}

/* ---- registry ------------------------------------------------------------------------ */

static struct exec_plugins *exec_plugins_new(void)
{
    struct exec_plugins *reg = xcalloc(1, sizeof *reg);
    pthread_mutex_init(&reg->mu, NULL);
    reg->errors = json_array();
    WEIR_ASSERT(reg->errors);
    return reg;
}

static void close_dl(void *dl)
{
    /* Sanitizer builds keep plugins mapped so leak reports still resolve their symbols. */
#if defined(__SANITIZE_ADDRESS__)
    (void)dl;
#else
    if (dl)
        dlclose(dl);
#endif
}

void exec_plugins_free(struct exec_plugins *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++) {
        close_dl(reg->items[i].dl);
        free(reg->items[i].file);
    }
    free(reg->items);
    for (size_t i = 0; i < reg->npending; i++)
        free(reg->pending[i]);
    free(reg->pending);
    json_decref(reg->errors);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static int schema_check(const char *text, struct weir_err *err);

/* The descriptor as ABI 1 first had it; later fields are read when `size` covers them. */
#define PLUGIN_MIN_SIZE offsetof(struct weir_plugin, flags)

bool exec__plugin_reusable(const struct weir_plugin *p)
{
    return p && p->size >= offsetof(struct weir_plugin, flags) + sizeof p->flags &&
           (p->flags & WEIR_PLUGIN_REUSABLE);
}

/* Checks the descriptor a plugin returned; fills err with the problem (no file prefix). */
static int check_descriptor(const struct weir_plugin *p, struct weir_err *err)
{
    if (p->abi != WEIR_PLUGIN_ABI)
        return err_set(err, WEIR_EINVAL, "ABI version %u, weir expects %u", p->abi,
                       WEIR_PLUGIN_ABI);
    if (p->size < PLUGIN_MIN_SIZE)
        return err_set(err, WEIR_EINVAL, "descriptor size %u, weir expects at least %zu", p->size,
                       PLUGIN_MIN_SIZE);
    if (!valid_name(p->name))
        return err_set(err, WEIR_EINVAL, "invalid plugin name '%s' (want [a-z0-9_]+)",
                       p->name ? p->name : "(null)");
    if (p->n_operators > 1024 || (p->n_operators && !p->operators))
        return err_set(err, WEIR_EINVAL, "invalid operator table");
    for (uint32_t i = 0; i < p->n_operators; i++) {
        const struct weir_operator *op = &p->operators[i];
        if (!valid_name(op->name))
            return err_set(err, WEIR_EINVAL, "operator %u: invalid name '%s'", i,
                           op->name ? op->name : "(null)");
        if (!op->run)
            return err_set(err, WEIR_EINVAL, "operator '%s': no run function", op->name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(p->operators[j].name, op->name) == 0)
                return err_set(err, WEIR_EINVAL, "operator '%s' defined twice", op->name);
        int rc = schema_check(op->params_schema, err);
        if (rc < 0)
            return err_prefix(err, "operator '%s'", op->name);
    }
    return 0;
}

static void add_error(struct exec_plugins *reg, const char *file, const char *msg)
{
    json_t *e = json_pack("{s:s, s:s}", "file", file, "error", msg);
    if (e)
        json_array_append_new(reg->errors, e);
}

static int add_file_locked(struct exec_plugins *reg, const char *file, struct weir_err *err)
{
    const char *base = base_name(file);
    struct weir_err e = { 0 };
    int rc = 0;
    void *dl = NULL;

    if (reg->n >= MAX_PLUGINS) {
        rc = err_set(&e, WEIR_ETOOBIG, "more than %d plugins", MAX_PLUGINS);
        goto out;
    }
    dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        rc = err_set(&e, WEIR_EINVAL, "cannot load: %s", why ? why : "unknown error");
        goto out;
    }
    dlerror();
    void *sym = dlsym(dl, WEIR_PLUGIN_ENTRY);
    if (!sym) {
        rc = err_set(&e, WEIR_EINVAL, "no entry symbol '%s'", WEIR_PLUGIN_ENTRY);
        goto out;
    }
    weir_plugin_init_fn init;
    /* POSIX guarantees the object-to-function pointer conversion dlsym needs. */
    memcpy(&init, &sym, sizeof init);
    const struct weir_plugin *p = init(&host_table);
    if (!p) {
        rc = err_set(&e, WEIR_EINVAL, "%s returned NULL", WEIR_PLUGIN_ENTRY);
        goto out;
    }
    rc = check_descriptor(p, &e);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < reg->n; i++) {
        if (strcmp(reg->items[i].p->name, p->name) == 0) {
            rc =
                err_set(&e, WEIR_ECONFLICT, "duplicate plugin name '%s' (already loaded from '%s')",
                        p->name, base_name(reg->items[i].file));
            goto out;
        }
    }
    if (reg->n == reg->cap) {
        reg->cap = reg->cap ? reg->cap * 2 : 8;
        reg->items = xrealloc(reg->items, reg->cap * sizeof *reg->items);
    }
    reg->items[reg->n].file = xstrdup(file);
    reg->items[reg->n].dl = dl;
    reg->items[reg->n].p = p;
    reg->n++;
    LOG_DEBUG("plugin loaded name=%s version=%s file=%s", p->name, p->version ? p->version : "",
              file);
    return 0;
out:
    close_dl(dl);
    err_prefix(&e, "plugin '%s'", base);
    add_error(reg, file, e.msg);
    if (err)
        *err = e;
    return rc;
}

int exec_plugins_add_file(struct exec_plugins *reg, const char *file, struct weir_err *err)
{
    pthread_mutex_lock(&reg->mu);
    int rc = add_file_locked(reg, file, err);
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

/* Opens pending file i (and forgets it). Caller holds mu. */
static void open_pending(struct exec_plugins *reg, size_t i)
{
    char *file = reg->pending[i];
    memmove(reg->pending + i, reg->pending + i + 1, (reg->npending - i - 1) * sizeof *reg->pending);
    reg->npending--;
    struct weir_err e = { 0 };
    if (add_file_locked(reg, file, &e) < 0)
        LOG_WARN("%s", e.msg);
    free(file);
}

static void open_all_pending(struct exec_plugins *reg)
{
    while (reg->npending)
        open_pending(reg, 0);
}

size_t exec__plugins_opened(const struct exec_plugins *creg)
{
    struct exec_plugins *reg = (struct exec_plugins *)creg;
    pthread_mutex_lock(&reg->mu);
    size_t n = reg->n + json_array_size(reg->errors);
    pthread_mutex_unlock(&reg->mu);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_dir(struct exec_plugins *reg, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        char eb[128];
        /* The default path lists folders that need not exist (an installed layout). */
        if (errno == ENOENT)
            LOG_DEBUG("no plugin folder '%s'", dir);
        else
            LOG_WARN("cannot open plugin folder '%s': %s", dir, err_errno(errno, eb, sizeof eb));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 9 || strncmp(de->d_name, "weir_", 5) != 0 ||
            strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n == 0)
        return;
    qsort(names, n, sizeof *names, cmp_str);
    if (reg->npending + n > MAX_PLUGINS) {
        LOG_WARN("more than %d plugin files: ignoring those in '%s'", MAX_PLUGINS, dir);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return;
    }
    reg->pending = xrealloc(reg->pending, (reg->npending + n + 1) * sizeof *reg->pending);
    memcpy(reg->pending + reg->npending, names, n * sizeof *names);
    reg->npending += n;
    free(names);
}

struct exec_plugins *exec_plugins_load(const char *path)
{
    struct exec_plugins *reg = exec_plugins_new();
    if (!path)
        return reg;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && len < MAX_PLUGIN_DIRS_LEN) {
            char *dir = xstrndup(p, len);
            load_dir(reg, dir);
            free(dir);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return reg;
}

/* Looks `ref` up among the opened plugins; *known says whether the plugin name exists. */
static const struct weir_operator *find_loaded(const struct exec_plugins *reg, const char *ref,
                                               const struct weir_plugin **plugin, bool *known)
{
    const char *dot = strchr(ref, '.');
    size_t plen = (size_t)(dot - ref);
    *known = false;
    for (size_t i = 0; i < reg->n; i++) {
        const struct weir_plugin *p = reg->items[i].p;
        if (strlen(p->name) != plen || strncmp(p->name, ref, plen) != 0)
            continue;
        *known = true;
        for (uint32_t j = 0; j < p->n_operators; j++) {
            if (strcmp(p->operators[j].name, dot + 1) == 0) {
                if (plugin)
                    *plugin = p;
                return &p->operators[j];
            }
        }
        return NULL;
    }
    return NULL;
}

const struct weir_operator *exec_plugins_find(const struct exec_plugins *creg, const char *ref,
                                              const struct weir_plugin **plugin)
{
    const char *dot = ref ? strchr(ref, '.') : NULL;
    if (!dot)
        return NULL;
    /* Opening plugins lazily changes the registry, not what it describes. */
    struct exec_plugins *reg = (struct exec_plugins *)creg;
    bool known;
    pthread_mutex_lock(&reg->mu);
    const struct weir_operator *op = find_loaded(reg, ref, plugin, &known);
    if (!op && !known && reg->npending) {
        /* weir_<plugin>.so first, then everything (a file may be named differently). */
        size_t plen = (size_t)(dot - ref);
        for (size_t i = 0; i < reg->npending; i++) {
            const char *b = base_name(reg->pending[i]);
            if (strlen(b) == plen + 8 && strncmp(b + 5, ref, plen) == 0) {
                open_pending(reg, i);
                break;
            }
        }
        op = find_loaded(reg, ref, plugin, &known);
        if (!op && !known) {
            open_all_pending(reg);
            op = find_loaded(reg, ref, plugin, &known);
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return op;
}

json_t *exec_plugins_to_json(const struct exec_plugins *creg)
{
    struct exec_plugins *reg = (struct exec_plugins *)creg;
    pthread_mutex_lock(&reg->mu);
    open_all_pending(reg);
    json_t *arr = json_array();
    WEIR_ASSERT(arr);
    for (size_t i = 0; i < reg->n; i++) {
        const struct weir_plugin *p = reg->items[i].p;
        json_t *ops = json_array();
        for (uint32_t j = 0; j < p->n_operators; j++) {
            const struct weir_operator *op = &p->operators[j];
            json_t *schema =
                op->params_schema ? json_loads(op->params_schema, 0, NULL) : json_object();
            json_array_append_new(ops, json_pack("{s:s, s:s, s:o}", "name", op->name, "summary",
                                                 op->summary ? op->summary : "", "params",
                                                 schema ? schema : json_object()));
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", p->name,
                                             "version", p->version ? p->version : "", "summary",
                                             p->summary ? p->summary : "", "file",
                                             reg->items[i].file, "operators", ops));
    }
    pthread_mutex_unlock(&reg->mu);
    return arr;
}

json_t *exec_plugins_errors(const struct exec_plugins *creg)
{
    struct exec_plugins *reg = (struct exec_plugins *)creg;
    pthread_mutex_lock(&reg->mu);
    open_all_pending(reg);
    json_t *e = json_deep_copy(reg->errors);
    pthread_mutex_unlock(&reg->mu);
    return e;
}

/* ---- parameter schemas ------------------------------------------------------------- */

static const char *const type_names[] = { "string", "integer", "number", "boolean",
                                          "object", "array",   "any" };

static bool known_type(const char *t)
{
    for (size_t i = 0; i < WEIR_ARRAY_LEN(type_names); i++)
        if (strcmp(t, type_names[i]) == 0)
            return true;
    return false;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Parses and checks a schema text; *out (may be NULL) gets the new object. */
static int schema_parse(const char *text, json_t **out, struct weir_err *err)
{
    json_error_t je;
    if (!text)
        text = "{}";
    json_t *s = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!s)
        return err_set(err, WEIR_EINVAL, "params schema: %s at %d:%d", je.text, je.line, je.column);
    if (!json_is_object(s)) {
        json_decref(s);
        return err_set(err, WEIR_EINVAL, "params schema: not an object");
    }
    const char *name;
    json_t *def;
    json_object_foreach(s, name, def) {
        const char *t = json_string_value(json_object_get(def, "type"));
        json_t *req = json_object_get(def, "required");
        if (!json_is_object(def) || !t || !known_type(t) || (req && !json_is_boolean(req))) {
            err_set(err, WEIR_EINVAL, "params schema: parameter '%s' needs a known \"type\"", name);
            json_decref(s); /* after err_set: `name` lives in `s` */
            return -WEIR_EINVAL;
        }
    }
    if (out)
        *out = s;
    else
        json_decref(s);
    return 0;
}

static int schema_check(const char *text, struct weir_err *err)
{
    return schema_parse(text, NULL, err);
}

/* Converts `v` to `type` when it is a rendered string that spells a value of that type
 * (templates render to strings: "{{ params.n }}" gives "5"). Returns a new reference, or
 * NULL if `v` does not fit. */
static json_t *coerce(json_t *v, const char *type)
{
    if (strcmp(type, "any") == 0 || strcmp(type, json_type_name(v)) == 0)
        return json_incref(v);
    if (strcmp(type, "number") == 0 && json_is_integer(v))
        return json_incref(v);
    if (strcmp(type, "integer") == 0 && json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.0e15)
            return json_integer((json_int_t)d);
        return NULL;
    }
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    if (!*s)
        return NULL;
    if (strcmp(type, "integer") == 0) {
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        while (*end == ' ' || *end == '\n')
            end++;
        if (errno || *end)
            return NULL;
        return json_integer(n);
    }
    if (strcmp(type, "number") == 0) {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        while (*end == ' ' || *end == '\n')
            end++;
        if (errno || *end || !isfinite(d))
            return NULL;
        return json_real(d);
    }
    if (strcmp(type, "boolean") == 0) {
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0)
            return json_true();
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0)
            return json_false();
        return NULL;
    }
    if (strcmp(type, "object") == 0 || strcmp(type, "array") == 0) {
        json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
        if (j && strcmp(json_type_name(j), type) == 0)
            return j;
        json_decref(j);
    }
    return NULL;
}

int exec_params_validate(const char *schema_text, json_t *params, json_t **out,
                         struct weir_err *err)
{
    json_t *schema = NULL, *res = NULL;
    int rc = schema_parse(schema_text, &schema, err);
    if (rc < 0)
        return rc;
    if (params && !json_is_object(params) && !json_is_null(params)) {
        rc = err_set(err, WEIR_EINVAL, "parameters must be an object, got %s",
                     json_type_name(params));
        goto out;
    }
    res = json_object();
    const char *name;
    json_t *v;
    if (params && json_is_object(params)) {
        json_object_foreach(params, name, v) {
            json_t *def = json_object_get(schema, name);
            if (!def) {
                rc = err_set(err, WEIR_EINVAL, "unknown parameter '%s'", name);
                goto out;
            }
            const char *type = json_string_value(json_object_get(def, "type"));
            if (json_is_null(v)) /* null means "not given" (the default applies) */
                continue;
            json_t *c = coerce(v, type);
            if (!c) {
                rc = err_set(err, WEIR_EINVAL, "parameter '%s' must be %s %s, got %s", name,
                             strcmp(type, "integer") == 0 || strcmp(type, "object") == 0 ||
                                     strcmp(type, "array") == 0
                                 ? "an"
                                 : "a",
                             type, json_type_name(v));
                goto out;
            }
            json_object_set_new(res, name, c);
        }
    }
    json_object_foreach(schema, name, v) {
        if (json_object_get(res, name))
            continue;
        json_t *dflt = json_object_get(v, "default");
        if (dflt && !json_is_null(dflt)) {
            json_object_set_new(res, name, json_deep_copy(dflt));
        } else if (json_is_true(json_object_get(v, "required"))) {
            rc = err_set(err, WEIR_EINVAL, "missing required parameter '%s'", name);
            goto out;
        }
    }
    *out = res;
    res = NULL;
    rc = 0;
out:
    json_decref(res);
    json_decref(schema);
    return rc;
}
