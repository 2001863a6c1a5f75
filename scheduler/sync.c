/* scheduler/sync.c - the DAG folder: parse every DAG file, store each DAG as a versioned
 * doc, record an import error per broken file (one broken file never hides the others),
 * and mark DAGs whose file disappeared inactive. A cache of (size, mtime) per file lets the
 * watcher reparse only what changed. */
#define LOG_MODULE "scheduler"
#include "scheduler/scheduler.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "scheduler/sched_int.h"
#include "store/store.h"

#define MAX_DAG_FILES 100000

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_dag_file(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* Collects DAG files under `dir` (recursing into non-hidden subfolders) into `files`. */
static int list_files(const char *dir, char ***files, size_t *n, size_t *cap, int depth,
                      struct weir_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        char eb[128];
        return err_set(err, errno == ENOENT ? WEIR_ENOTFOUND : WEIR_EIO, "dags folder '%s': %s",
                       dir, err_errno(errno, eb, sizeof eb));
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) < 0) {
            free(path);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (depth < 8)
                rc = list_files(path, files, n, cap, depth + 1, err);
            free(path);
            if (rc < 0)
                break;
            continue;
        }
        if (!S_ISREG(sb.st_mode) || !is_dag_file(de->d_name)) {
            free(path);
            continue;
        }
        if (*n >= MAX_DAG_FILES) {
            free(path);
            rc = err_set(err, WEIR_ETOOBIG, "dags folder '%s': more than %d DAG files", dir,
                         MAX_DAG_FILES);
            break;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *files = xrealloc(*files, *cap * sizeof **files);
        }
        (*files)[(*n)++] = path;
    }
    closedir(d);
    return rc;
}

static void format_error(const struct weir_err *e, char *out, size_t len)
{
    if (e->loc[0])
        snprintf(out, len, "%s: %s", e->loc, e->msg);
    else
        snprintf(out, len, "%s", e->msg);
}

/* Clears the import errors of files under `folder` that no longer exist. */
static int clear_stale_errors(struct store *st, const char *folder, char **files, size_t n,
                              struct weir_err *err)
{
    json_t *list = NULL;
    int rc = store_import_error_list(st, &list, err);
    size_t i, plen = strlen(folder);
    json_t *ie;
    json_array_foreach(list, i, ie) {
        const char *f = json_string_value(json_object_get(ie, "filename"));
        if (rc < 0 || !f || strncmp(f, folder, plen) != 0)
            continue;
        if (n == 0 || !bsearch(&f, files, n, sizeof *files, cmp_str))
            rc = store_import_error_clear(st, f, err);
    }
    json_decref(list);
    return rc < 0 ? rc : 0;
}

int sched_sync_folder(struct store *st, const char *folder, const struct sched_ops *ops,
                      bool paused_on_create, struct sched_sync_report *rep, struct weir_err *err)
{
    char **files = NULL;
    size_t n = 0, cap = 0;
    json_t *seen = json_object(); /* dag_id -> fileloc */
    json_t *keep = json_array();
    struct sched_sync_report r = {0};
    int rc = list_files(folder, &files, &n, &cap, 0, err);
    if (rc < 0)
        goto out;
    if (n > 1)
        qsort(files, n, sizeof *files, cmp_str);
    rc = store_begin(st, err);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *doc = NULL;
        struct weir_err pe = {0};
        char msg[600];
        r.files++;
        int prc = sched_dag_parse_file(files[i], ops, &doc, &pe);
        const char *dag_id = prc == 0 ? json_string_value(json_object_get(doc, "dag_id")) : NULL;
        if (prc == 0 && json_object_get(seen, dag_id)) {
            snprintf(msg, sizeof msg, "%s: dag id '%s' is already defined in '%s'", files[i],
                     dag_id, json_string_value(json_object_get(seen, dag_id)));
            prc = -WEIR_ECONFLICT;
        } else if (prc < 0) {
            format_error(&pe, msg, sizeof msg);
        }
        if (prc < 0) {
            r.errors++;
            LOG_WARN("dag file broken file=%s error=\"%s\"", files[i], msg);
            rc = store_import_error_set(st, files[i], msg, err);
            json_decref(doc);
            continue;
        }
        json_object_set_new(seen, dag_id, json_string(files[i]));
        json_array_append_new(keep, json_string(dag_id));
        char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
        struct store_dag before = {0};
        int64_t old_version = store_dag_get(st, dag_id, &before, NULL) == 0 ? before.version : 0;
        bool was_active = old_version > 0 && before.is_active;
        store_dag_release(&before);
        int64_t version = 0;
        rc = store_dag_sync(st, dag_id, files[i], text,
                            json_string_value(json_object_get(doc, "description")),
                            json_string_value(json_object_get(doc, "schedule")),
                            json_string_value(json_object_get(doc, "timezone")),
                            json_object_get(doc, "tags"),
                            json_is_boolean(json_object_get(doc, "is_paused_upon_creation"))
                                ? json_is_true(json_object_get(doc, "is_paused_upon_creation"))
                                : paused_on_create,
                            &version, err);
        free(text);
        json_decref(doc);
        if (rc == 0)
            rc = store_import_error_clear(st, files[i], err);
        if (rc == 0) {
            r.ok++;
            if (version != old_version || !was_active)
                r.changed++;
        }
    }
    if (rc == 0) {
        rc = store_dag_deactivate_missing(st, folder, keep, err);
        if (rc > 0)
            rc = 0;
    }
    if (rc == 0)
        rc = clear_stale_errors(st, folder, files, n, err);
    if (rc == 0)
        rc = store_commit(st, err);
    else
        store_rollback(st);
out:
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    json_decref(seen);
    json_decref(keep);
    if (rep)
        *rep = r;
    return rc < 0 ? rc : 0;
}
