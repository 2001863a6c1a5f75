/* warehouse/wh_store.c - on-disk storage and the catalog. A database is a folder; each
 * schema a sub-folder; each table a folder holding manifest.json (columns and the list of
 * published parts) and one folder per part with one compressed file per column.
 *
 * Publishing is crash-safe: part files are written and fsynced first, then the new manifest
 * is written to a temporary file, fsynced and renamed over the old one, and the folder is
 * fsynced. A crash before the rename leaves the old manifest, which does not name the new
 * part; wh_open (and the writer after one that died, see wh_lock.c) deletes such orphans.
 * Column files end with a CRC-32 of their contents, so a corrupted file is reported, never
 * read as data. Everything here runs under the database lock of wh_lock.c: shared for reads,
 * exclusive for anything that writes or deletes. Format details: docs/warehouse.md. */
#include "warehouse/wh_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"

#define COL_MAGIC       "WHCOL001"          /* plain values */
#define COL_MAGIC_DICT  "WHCOL002"          /* dictionary-encoded text */
#define DICT_MAX        ((uint32_t)1 << 20) /* most entries in one file's dictionary */
#define COL_TRAILER     0x21434857u         /* "WHC!" */
#define CODEC_ZSTD      1
#define CODEC_LZ4       2
#define MANIFEST_FORMAT 1

/* Granule directory entry as stored (little-endian host layout, 48 bytes). */
struct gran {
    uint32_t rows;
    uint32_t flags;   /* bit0: min/max valid; bit1: has NULLs */
    int64_t min, max; /* doubles are stored bit-for-bit */
    uint64_t off, csize, rawsize;
};

struct col_hdr {
    char magic[8];
    uint32_t type, codec;
    uint64_t rows;
    uint32_t ngran;
    int32_t scale;
};

/* After the granule directory of a WHCOL002 file: where its dictionary is. The dictionary
 * block (LZ4) holds ndict 4-byte lengths, then the bytes; granules hold a validity bitmap
 * and then one `width`-byte code (1, 2 or 4 bytes) per row (0 for NULL rows). */
struct dict_hdr {
    uint32_t ndict, width;
    uint64_t off, csize, rawsize;
};

/* 1 for WHCOL001, 2 for WHCOL002, 0 for anything else. */
static int col_version(const struct col_hdr *h)
{
    if (!memcmp(h->magic, COL_MAGIC, 8))
        return 1;
    if (!memcmp(h->magic, COL_MAGIC_DICT, 8))
        return 2;
    return 0;
}

/* ---- file helpers ---- */

static int io_fail(struct weir_err *err, const char *what, const char *path)
{
    char eb[128];
    return err_set(err, WEIR_EIO, "%s '%s': %s", what, path, err_errno(errno, eb, sizeof eb));
}

static int fsync_path(const char *path, struct weir_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(err, "cannot open", path);
    int rc = fsync(fd);
    close(fd);
    if (rc < 0)
        return io_fail(err, "cannot fsync", path);
    return 0;
}

static int write_all(const char *path, const void *data, size_t len, struct weir_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return io_fail(err, "cannot create", path);
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return io_fail(err, "cannot write", path);
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) < 0) {
        close(fd);
        return io_fail(err, "cannot fsync", path);
    }
    if (close(fd) < 0)
        return io_fail(err, "cannot close", path);
    return 0;
}

/* Reads a whole file into malloc'd memory. */
static int read_all(const char *path, char **out, size_t *outlen, struct weir_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(err, "cannot open", path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return io_fail(err, "cannot stat", path);
    }
    size_t len = (size_t)st.st_size, got = 0;
    char *b = xmalloc(len + 1);
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            close(fd);
            return io_fail(err, "cannot read", path);
        }
        got += (size_t)r;
    }
    close(fd);
    b[len] = 0;
    *out = b;
    *outlen = len;
    return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WH_MAX_NAME || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 32)
            return false;
    return true;
}

static int txn_roll_forward(struct wh_db *db, struct weir_err *err);

/* ---- catalog ---- */

void wh__table_free(struct wh_table *t)
{
    if (!t)
        return;
    for (int c = 0; c < t->ncols; c++)
        free(t->cols[c].name);
    free(t->cols);
    free(t->parts);
    free(t->schema);
    free(t->name);
    free(t->order_by);
    free(t->partition_by);
    free(t);
}

struct wh_table *wh__table_find(struct wh_db *db, const char *schema, const char *name)
{
    for (size_t k = 0; k < db->ntables; k++)
        if (!strcmp(db->tables[k]->schema, schema) && !strcmp(db->tables[k]->name, name))
            return db->tables[k];
    return NULL;
}

bool wh__schema_exists(struct wh_db *db, const char *schema)
{
    for (size_t k = 0; k < db->nschemas; k++)
        if (!strcmp(db->schemas[k], schema))
            return true;
    return false;
}

static char *manifest_dump(const struct wh_table *t)
{
    json_t *cols = json_array(), *parts = json_array();
    for (int c = 0; c < t->ncols; c++)
        json_array_append_new(
            cols, json_pack("{s:s,s:i,s:i,s:i,s:b}", "name", t->cols[c].name, "type",
                            (int)t->cols[c].type, "scale", (int)t->cols[c].scale, "typmod",
                            (int)t->cols[c].typmod, "notnull", (int)t->cols[c].notnull));
    for (size_t p = 0; p < t->nparts; p++)
        json_array_append_new(parts, json_pack("{s:I,s:I,s:I}", "id", (json_int_t)t->parts[p].id,
                                               "rows", (json_int_t)t->parts[p].rows, "pkey",
                                               (json_int_t)t->parts[p].pkey));
    json_t *m = json_pack("{s:i,s:s,s:s,s:o,s:o,s:I}", "format", MANIFEST_FORMAT, "schema",
                          t->schema, "name", t->name, "columns", cols, "parts", parts, "next_part",
                          (json_int_t)t->next_part);
    if (m && t->order_by)
        json_object_set_new(m, "order_by", json_string(t->order_by));
    if (m && t->partition_by)
        json_object_set_new(m, "partition_by", json_string(t->partition_by));
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

static int manifest_publish(struct wh_db *db, const struct wh_table *t, const char *tabdir,
                            struct weir_err *err)
{
    char *s = manifest_dump(t);
    if (!s)
        return err_set(err, WEIR_EINTERNAL, "cannot encode manifest of '%s'", t->name);
    char *tmp = xasprintf("%s/manifest.json.tmp", tabdir);
    char *fin = xasprintf("%s/manifest.json", tabdir);
    int rc = write_all(tmp, s, strlen(s), err);
    if (rc == 0 && rename(tmp, fin) < 0)
        rc = io_fail(err, "cannot rename", tmp);
    if (rc == 0)
        rc = fsync_path(tabdir, err);
    free(s);
    free(tmp);
    free(fin);
    (void)db;
    return rc;
}

static struct wh_table *manifest_load(const char *path, struct weir_err *err)
{
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    if (!m) {
        err_set(err, WEIR_EIO, "corrupt manifest '%s': %s", path, je.text);
        return NULL;
    }
    struct wh_table *t = xcalloc(1, sizeof *t);
    json_t *cols = json_object_get(m, "columns"), *parts = json_object_get(m, "parts");
    const char *schema = json_string_value(json_object_get(m, "schema"));
    const char *name = json_string_value(json_object_get(m, "name"));
    if (json_integer_value(json_object_get(m, "format")) != MANIFEST_FORMAT || !schema || !name ||
        !json_is_array(cols) || !json_is_array(parts) || json_array_size(cols) == 0 ||
        json_array_size(cols) > WH_MAX_COLS)
        goto bad;
    t->schema = xstrdup(schema);
    t->name = xstrdup(name);
    t->next_part = (uint64_t)json_integer_value(json_object_get(m, "next_part"));
    t->ncols = (int)json_array_size(cols);
    t->cols = xcalloc((size_t)t->ncols, sizeof *t->cols);
    for (int c = 0; c < t->ncols; c++) {
        json_t *cj = json_array_get(cols, (size_t)c);
        const char *cn = json_string_value(json_object_get(cj, "name"));
        json_int_t ty = json_integer_value(json_object_get(cj, "type"));
        if (!cn || ty < WH_T_BOOL || ty > WH_T_TSTZ)
            goto bad;
        t->cols[c].name = xstrdup(cn);
        t->cols[c].type = (uint8_t)ty;
        t->cols[c].scale = (int16_t)json_integer_value(json_object_get(cj, "scale"));
        t->cols[c].typmod = (int32_t)json_integer_value(json_object_get(cj, "typmod"));
        t->cols[c].notnull = json_is_true(json_object_get(cj, "notnull"));
    }
    t->nparts = json_array_size(parts);
    t->parts = xcalloc(t->nparts + 1, sizeof *t->parts);
    for (size_t p = 0; p < t->nparts; p++) {
        json_t *pj = json_array_get(parts, p);
        t->parts[p].id = (uint64_t)json_integer_value(json_object_get(pj, "id"));
        t->parts[p].rows = (uint64_t)json_integer_value(json_object_get(pj, "rows"));
        t->parts[p].pkey = (uint64_t)json_integer_value(json_object_get(pj, "pkey"));
    }
    const char *ob = json_string_value(json_object_get(m, "order_by"));
    const char *pb = json_string_value(json_object_get(m, "partition_by"));
    t->order_by = ob ? xstrdup(ob) : NULL;
    t->partition_by = pb ? xstrdup(pb) : NULL;
    json_decref(m);
    return t;
bad:
    json_decref(m);
    wh__table_free(t);
    err_set(err, WEIR_EIO, "corrupt manifest '%s': missing or invalid fields", path);
    return NULL;
}

static void add_schema(struct wh_db *db, const char *name)
{
    db->schemas = xrealloc(db->schemas, (db->nschemas + 1) * sizeof *db->schemas);
    db->schemas[db->nschemas++] = xstrdup(name);
}

static void add_view(struct wh_db *db, struct wh_view *v)
{
    db->views = xrealloc(db->views, (db->nviews + 1) * sizeof *db->views);
    db->views[db->nviews++] = v;
}

void wh__view_free(struct wh_view *v)
{
    if (!v)
        return;
    free(v->schema);
    free(v->name);
    free(v->sql);
    free(v);
}

struct wh_view *wh__view_find(struct wh_db *db, const char *schema, const char *name)
{
    for (size_t k = 0; k < db->nviews; k++)
        if (!strcmp(db->views[k]->schema, schema) && !strcmp(db->views[k]->name, name))
            return db->views[k];
    return NULL;
}

static struct wh_view *view_load(const char *path, struct weir_err *err)
{
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    const char *schema = json_string_value(json_object_get(m, "schema"));
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *sql = json_string_value(json_object_get(m, "sql"));
    if (!m || !schema || !name || !sql) {
        err_set(err, WEIR_EIO, "corrupt view definition '%s'", path);
        json_decref(m);
        return NULL;
    }
    struct wh_view *v = xcalloc(1, sizeof *v);
    v->schema = xstrdup(schema);
    v->name = xstrdup(name);
    v->sql = xstrdup(sql);
    json_decref(m);
    return v;
}

static void add_table(struct wh_db *db, struct wh_table *t)
{
    db->tables = xrealloc(db->tables, (db->ntables + 1) * sizeof *db->tables);
    db->tables[db->ntables++] = t;
}

/* Removes part folders the manifest does not name (an insert that crashed before publish). */
static void clean_orphans(const char *tabdir, const struct wh_table *t)
{
    DIR *d = opendir(tabdir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, "manifest.json"))
            continue;
        bool keep = false;
        unsigned long long id;
        char extra;
        if (sscanf(de->d_name, "p%llu%c", &id, &extra) == 1)
            for (size_t p = 0; p < t->nparts; p++)
                keep |= t->parts[p].id == id;
        if (!keep) {
            char *path = xasprintf("%s/%s", tabdir, de->d_name);
            rm_rf(path);
            free(path);
        }
    }
    closedir(d);
}

int wh__db_init(struct wh_db *db, struct weir_err *err)
{
    char *marker = xasprintf("%s/WEIR_WAREHOUSE", db->dir);
    int rc = 0;
    if (mkdir(db->dir, 0755) < 0 && errno != EEXIST) {
        rc = io_fail(err, "cannot create database folder", db->dir);
        goto out;
    }
    if (access(marker, F_OK) < 0) {
        /* A new database only in an empty folder, so a typo never scribbles on other data. */
        DIR *e = opendir(db->dir);
        if (!e) {
            rc = io_fail(err, "cannot open database folder", db->dir);
            goto out;
        }
        struct dirent *de;
        bool empty = true;
        while ((de = readdir(e)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                empty = false;
        closedir(e);
        /* Another process may be creating the same new database right now: its marker
         * comes first, so a folder holding one is a warehouse. */
        if (!empty && access(marker, F_OK) == 0)
            goto out;
        if (!empty) {
            rc = err_set(err, WEIR_EINVAL, "'%s' is not a weir warehouse (no WEIR_WAREHOUSE file)",
                         db->dir);
            goto out;
        }
        const char *txt = "weir warehouse format 1\n";
        rc = write_all(marker, txt, strlen(txt), err);
    }
out:
    free(marker);
    return rc;
}

void wh__catalog_clear(struct wh_db *db)
{
    for (size_t k = 0; k < db->ntables; k++)
        wh__table_free(db->tables[k]);
    for (size_t k = 0; k < db->nschemas; k++)
        free(db->schemas[k]);
    for (size_t k = 0; k < db->nviews; k++)
        wh__view_free(db->views[k]);
    free(db->tables);
    free(db->schemas);
    free(db->views);
    db->tables = NULL;
    db->schemas = NULL;
    db->views = NULL;
    db->ntables = db->nschemas = db->nviews = 0;
}

int wh__catalog_load(struct wh_db *db, bool recover, struct weir_err *err)
{
    int rc = 0;
    DIR *d = NULL;
    wh__catalog_clear(db);
    if (recover && (rc = txn_roll_forward(db, err)) < 0)
        goto out;
    char *pub = xasprintf("%s/public", db->dir);
    if (mkdir(pub, 0755) < 0 && errno != EEXIST)
        rc = io_fail(err, "cannot create", pub);
    free(pub);
    if (rc < 0)
        goto out;
    if (!(d = opendir(db->dir))) {
        rc = io_fail(err, "cannot open database folder", db->dir);
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') {
            if (recover && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                char *p = xasprintf("%s/%s", db->dir, de->d_name);
                rm_rf(p); /* an interrupted CREATE or DROP */
                free(p);
            }
            continue;
        }
        char *sdir = xasprintf("%s/%s", db->dir, de->d_name);
        struct stat st;
        if (stat(sdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            free(sdir);
            continue;
        }
        add_schema(db, de->d_name);
        DIR *sd = opendir(sdir);
        struct dirent *te;
        while (sd && (te = readdir(sd))) {
            char *tdir = xasprintf("%s/%s", sdir, te->d_name);
            if (te->d_name[0] == '.') {
                if (recover && strcmp(te->d_name, ".") && strcmp(te->d_name, ".."))
                    rm_rf(tdir);
                free(tdir);
                continue;
            }
            char *vp = xasprintf("%s/view.json", tdir);
            if (access(vp, F_OK) == 0) {
                struct wh_view *v = view_load(vp, err);
                free(vp);
                free(tdir);
                if (!v) {
                    closedir(sd);
                    free(sdir);
                    rc = -WEIR_EIO;
                    goto out;
                }
                add_view(db, v);
                continue;
            }
            free(vp);
            char *mp = xasprintf("%s/manifest.json", tdir);
            struct wh_table *t = manifest_load(mp, err);
            free(mp);
            if (!t) {
                free(tdir);
                closedir(sd);
                free(sdir);
                rc = -WEIR_EIO;
                goto out;
            }
            /* The folder names are authoritative (ALTER TABLE RENAME renames the folder
             * first, then rewrites the manifest). */
            free(t->schema);
            free(t->name);
            t->schema = xstrdup(de->d_name);
            t->name = xstrdup(te->d_name);
            if (recover)
                clean_orphans(tdir, t);
            free(tdir);
            add_table(db, t);
        }
        if (sd)
            closedir(sd);
        free(sdir);
    }
out:
    if (d)
        closedir(d);
    if (rc < 0)
        wh__catalog_clear(db);
    return rc;
}

/* ---- DDL ---- */

static void check_io(struct wh_q *q, int rc)
{
    if (rc < 0)
        longjmp(q->jb, 1);
}

void wh__schema_create(struct wh_q *q, const char *schema, bool if_not_exists, int loc)
{
    if (wh__schema_exists(q->db, schema)) {
        if (if_not_exists)
            return;
        wh__fail(q, WEIR_ECONFLICT, loc, "schema \"%s\" already exists", schema);
    }
    if (!valid_name(schema))
        wh__fail(q, WEIR_EINVAL, loc, "invalid schema name \"%s\"", schema);
    char *p = arena_printf(q->a, "%s/%s", q->db->dir, schema);
    if (mkdir(p, 0755) < 0)
        check_io(q, io_fail(q->err, "cannot create schema folder", p));
    check_io(q, fsync_path(q->db->dir, q->err));
    add_schema(q->db, schema);
}

void wh__schema_drop(struct wh_q *q, const char *schema, bool missing_ok, bool cascade, int loc)
{
    if (!wh__schema_exists(q->db, schema)) {
        if (missing_ok)
            return;
        wh__fail(q, WEIR_ENOTFOUND, loc, "schema \"%s\" does not exist", schema);
    }
    size_t n = 0;
    for (size_t k = 0; k < q->db->ntables; k++)
        n += !strcmp(q->db->tables[k]->schema, schema);
    if (n && !cascade)
        wh__fail(q, WEIR_ECONFLICT, loc,
                 "cannot drop schema \"%s\" because other objects depend on it", schema);
    for (size_t k = 0; k < q->db->nviews; k++)
        n += !strcmp(q->db->views[k]->schema, schema);
    if (n && !cascade)
        wh__fail(q, WEIR_ECONFLICT, loc,
                 "cannot drop schema \"%s\" because other objects depend on it", schema);
    for (size_t k = q->db->ntables; k-- > 0;)
        if (!strcmp(q->db->tables[k]->schema, schema))
            wh__table_drop(q, q->db->tables[k]);
    for (size_t k = q->db->nviews; k-- > 0;)
        if (!strcmp(q->db->views[k]->schema, schema))
            wh__view_drop(q, q->db->views[k]);
    char *p = arena_printf(q->a, "%s/%s", q->db->dir, schema);
    char *trash = arena_printf(q->a, "%s/.drop-%s", q->db->dir, schema);
    if (rename(p, trash) < 0)
        check_io(q, io_fail(q->err, "cannot remove schema folder", p));
    check_io(q, fsync_path(q->db->dir, q->err));
    rm_rf(trash);
    for (size_t k = 0; k < q->db->nschemas; k++)
        if (!strcmp(q->db->schemas[k], schema)) {
            free(q->db->schemas[k]);
            q->db->schemas[k] = q->db->schemas[--q->db->nschemas];
            break;
        }
}

void wh__table_create(struct wh_q *q, const char *schema, const char *name,
                      const struct wh_coldef *cols, int ncols, const char *order_by,
                      const char *partition_by, int loc)
{
    if (!wh__schema_exists(q->db, schema))
        wh__fail(q, WEIR_ENOTFOUND, loc, "schema \"%s\" does not exist", schema);
    if (wh__table_find(q->db, schema, name) || wh__view_find(q->db, schema, name))
        wh__fail(q, WEIR_ECONFLICT, loc, "relation \"%s\" already exists", name);
    if (!valid_name(name))
        wh__fail(q, WEIR_EINVAL, loc, "invalid table name \"%s\"", name);
    if (ncols < 1 || ncols > WH_MAX_COLS)
        wh__fail(q, WEIR_EINVAL, loc, "a table needs 1 to %d columns", WH_MAX_COLS);
    for (int c = 0; c < ncols; c++)
        if (cols[c].type == WH_T_INTERVAL || cols[c].type == WH_T_UNKNOWN)
            wh__fail(q, WEIR_EINVAL, loc,
                     "column \"%s\" has type %s, which tables cannot store (cast it to text)",
                     cols[c].name, cols[c].type == WH_T_INTERVAL ? "interval" : "unknown");
    struct wh_table *t = xcalloc(1, sizeof *t);
    t->schema = xstrdup(schema);
    t->name = xstrdup(name);
    t->ncols = ncols;
    t->next_part = 1;
    t->parts = xcalloc(1, sizeof *t->parts);
    t->cols = xcalloc((size_t)ncols, sizeof *t->cols);
    for (int c = 0; c < ncols; c++) {
        t->cols[c] = cols[c];
        t->cols[c].name = xstrdup(cols[c].name);
    }
    t->order_by = order_by ? xstrdup(order_by) : NULL;
    t->partition_by = partition_by ? xstrdup(partition_by) : NULL;
    /* Build the folder under a dot name and rename it into place: atomic creation. */
    char *tmp = arena_printf(q->a, "%s/%s/.new-%s", q->db->dir, schema, name);
    char *fin = arena_printf(q->a, "%s/%s/%s", q->db->dir, schema, name);
    char *sdir = arena_printf(q->a, "%s/%s", q->db->dir, schema);
    rm_rf(tmp);
    int rc = 0;
    if (mkdir(tmp, 0755) < 0)
        rc = io_fail(q->err, "cannot create", tmp);
    if (rc == 0)
        rc = manifest_publish(q->db, t, tmp, q->err);
    if (rc == 0 && rename(tmp, fin) < 0)
        rc = io_fail(q->err, "cannot rename", tmp);
    if (rc == 0)
        rc = fsync_path(sdir, q->err);
    if (rc < 0) {
        wh__table_free(t);
        rm_rf(tmp);
        longjmp(q->jb, 1);
    }
    add_table(q->db, t);
}

void wh__table_drop(struct wh_q *q, struct wh_table *t)
{
    char *p = arena_printf(q->a, "%s/%s/%s", q->db->dir, t->schema, t->name);
    char *trash = arena_printf(q->a, "%s/%s/.drop-%s", q->db->dir, t->schema, t->name);
    char *sdir = arena_printf(q->a, "%s/%s", q->db->dir, t->schema);
    if (rename(p, trash) < 0)
        check_io(q, io_fail(q->err, "cannot remove table folder", p));
    check_io(q, fsync_path(sdir, q->err));
    rm_rf(trash);
    for (size_t k = 0; k < q->db->ntables; k++)
        if (q->db->tables[k] == t) {
            q->db->tables[k] = q->db->tables[--q->db->ntables];
            break;
        }
    wh__table_free(t);
}

/* ---- transactions ---- */

static void txn_touch(struct wh_db *db, struct wh_table *t)
{
    for (size_t k = 0; k < db->ntx; k++)
        if (db->tx[k].t == t)
            return;
    db->tx = xrealloc(db->tx, (db->ntx + 1) * sizeof *db->tx);
    struct wh_txn_tab *e = &db->tx[db->ntx++];
    e->t = t;
    e->nparts = t->nparts;
    e->next_part = t->next_part;
    e->parts = xmalloc((t->nparts + 1) * sizeof *e->parts);
    memcpy(e->parts, t->parts, t->nparts * sizeof *e->parts);
}

/* Publishes nt as t's new state, or inside a transaction records t as changed. */
static void publish(struct wh_q *q, struct wh_table *t, const struct wh_table *nt,
                    const char *tabdir)
{
    if (q->db->in_txn)
        txn_touch(q->db, t);
    else
        check_io(q, manifest_publish(q->db, nt, tabdir, q->err));
}

static void txn_clear(struct wh_db *db)
{
    for (size_t k = 0; k < db->ntx; k++)
        free(db->tx[k].parts);
    free(db->tx);
    db->tx = NULL;
    db->ntx = 0;
    db->in_txn = false;
}

void wh__txn_rollback(struct wh_db *db)
{
    for (size_t k = 0; k < db->ntx; k++) {
        struct wh_txn_tab *e = &db->tx[k];
        struct wh_table *t = e->t;
        t->parts = xrealloc(t->parts, (e->nparts + 1) * sizeof *t->parts);
        memcpy(t->parts, e->parts, e->nparts * sizeof *t->parts);
        t->nparts = e->nparts;
        t->next_part = e->next_part;
        char *tabdir = xasprintf("%s/%s/%s", db->dir, t->schema, t->name);
        clean_orphans(tabdir, t); /* the parts written since BEGIN */
        free(tabdir);
    }
    txn_clear(db);
}

void wh__txn_commit(struct wh_q *q)
{
    struct wh_db *db = q->db;
    if (!db->ntx) {
        txn_clear(db);
        return;
    }
    /* 1. The roll-forward record: every changed table's new manifest. */
    json_t *tabs = json_array();
    for (size_t k = 0; k < db->ntx; k++) {
        struct wh_table *t = db->tx[k].t;
        char *m = manifest_dump(t);
        json_array_append_new(tabs, json_pack("{s:s,s:s,s:s}", "schema", t->schema, "name", t->name,
                                              "manifest", m ? m : ""));
        free(m);
    }
    json_t *rec = json_pack("{s:o}", "tables", tabs);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    char *tmp = arena_printf(q->a, "%s/TXN.json.tmp", db->dir);
    char *fin = arena_printf(q->a, "%s/TXN.json", db->dir);
    int rc = text ? write_all(tmp, text, strlen(text), q->err)
                  : err_set(q->err, WEIR_EINTERNAL, "cannot encode the transaction record");
    free(text);
    if (rc == 0 && rename(tmp, fin) < 0)
        rc = io_fail(q->err, "cannot rename", tmp);
    if (rc == 0)
        rc = fsync_path(db->dir, q->err);
    if (rc < 0) { /* nothing is published: roll back */
        unlink(tmp);
        wh__txn_rollback(db);
        longjmp(q->jb, 1);
    }
    /* 2. Publish each table; from here on the commit is durable (wh_open finishes it). */
    for (size_t k = 0; k < db->ntx; k++) {
        struct wh_table *t = db->tx[k].t;
        char *tabdir = arena_printf(q->a, "%s/%s/%s", db->dir, t->schema, t->name);
        if (manifest_publish(db, t, tabdir, q->err) < 0) {
            txn_clear(db); /* the in-memory state is the committed one */
            longjmp(q->jb, 1);
        }
    }
    unlink(fin);
    fsync_path(db->dir, NULL);
    for (size_t k = 0; k < db->ntx; k++) {
        struct wh_table *t = db->tx[k].t;
        char *tabdir = arena_printf(q->a, "%s/%s/%s", db->dir, t->schema, t->name);
        clean_orphans(tabdir, t); /* parts replaced during the transaction */
    }
    txn_clear(db);
}

/* Completes a commit that a crash interrupted after its TXN.json was written. */
static int txn_roll_forward(struct wh_db *db, struct weir_err *err)
{
    char *tmp = xasprintf("%s/TXN.json.tmp", db->dir);
    char *fin = xasprintf("%s/TXN.json", db->dir);
    unlink(tmp);
    int rc = 0;
    if (access(fin, F_OK) == 0) {
        json_error_t je;
        json_t *rec = json_load_file(fin, 0, &je);
        json_t *tabs = json_object_get(rec, "tables");
        if (!json_is_array(tabs)) {
            rc = err_set(err, WEIR_EIO, "corrupt transaction record '%s'", fin);
        } else {
            size_t i;
            json_t *e;
            json_array_foreach(tabs, i, e) {
                const char *schema = json_string_value(json_object_get(e, "schema"));
                const char *name = json_string_value(json_object_get(e, "name"));
                const char *m = json_string_value(json_object_get(e, "manifest"));
                if (!schema || !name || !m || !*m) {
                    rc = err_set(err, WEIR_EIO, "corrupt transaction record '%s'", fin);
                    break;
                }
                char *tabdir = xasprintf("%s/%s/%s", db->dir, schema, name);
                char *mt = xasprintf("%s/manifest.json.tmp", tabdir);
                char *mf = xasprintf("%s/manifest.json", tabdir);
                rc = write_all(mt, m, strlen(m), err);
                if (rc == 0 && rename(mt, mf) < 0)
                    rc = io_fail(err, "cannot rename", mt);
                if (rc == 0)
                    rc = fsync_path(tabdir, err);
                free(tabdir);
                free(mt);
                free(mf);
                if (rc < 0)
                    break;
            }
        }
        json_decref(rec);
        if (rc == 0 && (unlink(fin) < 0 || fsync_path(db->dir, err) < 0))
            rc = io_fail(err, "cannot remove", fin);
    }
    free(tmp);
    free(fin);
    return rc;
}

/* ---- column files ---- */

static void put(char **p, const void *src, size_t n)
{
    memcpy(*p, src, n);
    *p += n;
}

/* Encodes one granule's raw bytes: validity bitmap, then values. */
static size_t granule_raw(struct wh_q *q, const struct wh_vec *v, size_t from, size_t rows,
                          char **out, struct gran *g)
{
    size_t bm = (rows + 7) / 8, size = bm;
    if (v->s) {
        size += rows * 4;
        for (size_t r = from; r < from + rows; r++)
            size += v->nul[r] ? 0 : strlen(v->s[r]);
    } else {
        size += rows * 8;
    }
    char *raw = wh__calloc(q, size ? size : 1, 1), *p = raw + bm;
    bool any = false;
    g->flags = 0;
    for (size_t k = 0; k < rows; k++) {
        size_t r = from + k;
        if (v->nul[r]) {
            g->flags |= 2;
        } else {
            raw[k / 8] |= (char)(1u << (k % 8));
        }
        if (v->s) {
            uint32_t len = v->nul[r] ? 0 : (uint32_t)strlen(v->s[r]);
            put(&p, &len, 4);
        } else if (v->f) {
            put(&p, &v->f[r], 8);
            if (!v->nul[r]) {
                double mn, mx;
                memcpy(&mn, &g->min, 8);
                memcpy(&mx, &g->max, 8);
                if (!any || v->f[r] < mn)
                    memcpy(&g->min, &v->f[r], 8);
                if (!any || v->f[r] > mx)
                    memcpy(&g->max, &v->f[r], 8);
                any = true;
            }
        } else {
            put(&p, &v->i[r], 8);
            if (!v->nul[r]) {
                if (!any || v->i[r] < g->min)
                    g->min = v->i[r];
                if (!any || v->i[r] > g->max)
                    g->max = v->i[r];
                any = true;
            }
        }
    }
    if (v->s)
        for (size_t r = from; r < from + rows; r++)
            if (!v->nul[r])
                put(&p, v->s[r], strlen(v->s[r]));
    if (any)
        g->flags |= 1;
    *out = raw;
    return size;
}

/* A fast hash of a short byte string, 8 bytes at a time. */
static uint64_t bytes_hash(const char *s, size_t l)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (l * 0xff51afd7ed558ccdULL);
    while (l >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h = (h << 31) | (h >> 33);
        s += 8;
        l -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, l);
    h ^= w;
    /* murmur3's finalizer: every input bit reaches the low bits the table uses */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* Dictionary encoding of a text column: the distinct values in order of first appearance
 * and each row's code (0 for NULL rows). Returns false when there are more than DICT_MAX
 * distinct values or the dictionary would not make the raw data at least a fifth smaller. */
static bool dict_build(struct wh_q *q, const struct wh_vec *v, const char ***dict_out,
                       uint32_t *ndict_out, uint32_t **codes_out, size_t *dict_bytes)
{
    size_t n = v->n, plain = 0;
    if (n < 64)
        return false;
    uint32_t maxd = n < DICT_MAX ? (uint32_t)n : DICT_MAX;
    size_t cap = 64;
    while (cap < 2 * (size_t)maxd)
        cap <<= 1;
    /* Slots hold the string and its length, so a lookup touches one slot and one string;
     * the slots of rows a few ahead are prefetched (the table outgrows the caches). */
    struct dslot {
        const char *p;
        uint32_t len, code;
    } *slot = wh__calloc(q, cap, sizeof *slot);
    const char **dict = wh__alloc(q, ((size_t)maxd + 1) * sizeof *dict);
    uint32_t *dlen = wh__alloc(q, ((size_t)maxd + 1) * sizeof *dlen);
    uint32_t *codes = wh__alloc(q, n * sizeof *codes);
    uint32_t nd = 0;
    size_t bytes = 0;
    /* A source that is a dictionary vector already maps each of its entries once. */
    uint32_t *emap = NULL;
    if (v->dc && v->ndict <= 4 * DICT_MAX) {
        emap = wh__alloc(q, ((size_t)v->ndict + 1) * sizeof *emap);
        memset(emap, 0xff, ((size_t)v->ndict + 1) * sizeof *emap);
    }
    enum {
        AHEAD = 8
    };
    size_t hs[AHEAD];
    uint32_t ls[AHEAD];
    for (size_t r = 0; r < n && r < AHEAD; r++)
        if (!v->nul[r]) {
            ls[r] = (uint32_t)strlen(v->s[r]);
            hs[r] = (size_t)bytes_hash(v->s[r], ls[r]) & (cap - 1);
            __builtin_prefetch(&slot[hs[r]]);
        }
    for (size_t r = 0; r < n; r++) {
        size_t at = hs[r % AHEAD];
        uint32_t l = ls[r % AHEAD];
        size_t ra = r + AHEAD;
        if (ra < n && !v->nul[ra]) {
            ls[ra % AHEAD] = (uint32_t)strlen(v->s[ra]);
            hs[ra % AHEAD] = (size_t)bytes_hash(v->s[ra], ls[ra % AHEAD]) & (cap - 1);
            __builtin_prefetch(&slot[hs[ra % AHEAD]]);
        }
        if (v->nul[r]) {
            codes[r] = 0;
            continue;
        }
        if (emap && emap[v->dc[r]] != UINT32_MAX) {
            codes[r] = emap[v->dc[r]];
            plain += dlen[emap[v->dc[r]]];
            continue;
        }
        const char *str = v->s[r];
        plain += l;
        uint32_t code;
        for (;;) {
            struct dslot *e = &slot[at];
            if (!e->p) {
                if (nd == maxd)
                    return false;
                e->p = str;
                e->len = l;
                e->code = code = nd;
                dict[nd] = str;
                dlen[nd++] = l;
                bytes += l;
                break;
            }
            if (e->len == l && !memcmp(e->p, str, l)) {
                code = e->code;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
        codes[r] = code;
        if (emap)
            emap[v->dc[r]] = code;
    }
    size_t width = nd <= 256 ? 1 : nd <= 65536 ? 2 : 4;
    plain += 4 * n;
    if (bytes + 4 * (size_t)nd + width * n > plain - plain / 5)
        return false;
    *dict_out = dict;
    *ndict_out = nd;
    *codes_out = codes;
    *dict_bytes = bytes;
    return true;
}

static size_t compress_block(struct wh_q *q, int codec, const char *raw, size_t rawlen, char **out)
{
    size_t cap =
        codec == CODEC_LZ4 ? (size_t)LZ4_compressBound((int)rawlen) : ZSTD_compressBound(rawlen);
    char *c = wh__alloc(q, cap ? cap : 1);
    size_t clen;
    if (codec == CODEC_LZ4) {
        int n = LZ4_compress_default(raw, c, (int)rawlen, (int)cap);
        if (n <= 0 && rawlen)
            wh__fail(q, WEIR_EINTERNAL, -1, "lz4 compression failed");
        clen = n > 0 ? (size_t)n : 0;
    } else {
        clen = ZSTD_compress(c, cap, raw, rawlen, 1);
        if (ZSTD_isError(clen))
            wh__fail(q, WEIR_EINTERNAL, -1, "zstd compression failed: %s", ZSTD_getErrorName(clen));
    }
    *out = c;
    return clen;
}

/* Writes one column file: WHCOL002 (dictionary) for a text column when dict_build finds
 * that it pays, else WHCOL001. */
static void write_column(struct wh_q *q, const char *path, const struct wh_vec *v)
{
    size_t ngran = (v->n + WH_GRANULE - 1) / WH_GRANULE;
    int codec = v->type == WH_T_TEXT ? CODEC_LZ4 : CODEC_ZSTD;
    const char **dict = NULL;
    uint32_t ndict = 0;
    uint32_t *codes = NULL;
    size_t dict_bytes = 0;
    bool isdict = v->s && !v->m && dict_build(q, v, &dict, &ndict, &codes, &dict_bytes);
    size_t width = ndict <= 256 ? 1 : ndict <= 65536 ? 2 : 4;
    struct gran *gs = wh__calloc(q, ngran + 1, sizeof *gs);
    char **blocks = wh__calloc(q, ngran + 1, sizeof *blocks);
    uint64_t off = 0;
    struct dict_hdr dh;
    memset(&dh, 0, sizeof dh);
    char *dblock = NULL;
    if (isdict) {
        size_t rawlen = 4 * (size_t)ndict + dict_bytes;
        char *raw = wh__alloc(q, rawlen + 1), *p = raw;
        for (uint32_t k = 0; k < ndict; k++) {
            uint32_t l = (uint32_t)strlen(dict[k]);
            put(&p, &l, 4);
        }
        for (uint32_t k = 0; k < ndict; k++)
            put(&p, dict[k], strlen(dict[k]));
        dh.ndict = ndict;
        dh.width = (uint32_t)width;
        dh.off = 0;
        dh.rawsize = rawlen;
        dh.csize = compress_block(q, CODEC_LZ4, raw, rawlen, &dblock);
        off = dh.csize;
    }
    for (size_t g = 0; g < ngran; g++) {
        size_t from = g * WH_GRANULE, rows = v->n - from < WH_GRANULE ? v->n - from : WH_GRANULE;
        char *raw;
        size_t rawlen;
        if (isdict) {
            size_t bm = (rows + 7) / 8;
            rawlen = bm + rows * width;
            raw = wh__calloc(q, rawlen + 1, 1);
            gs[g].flags = 0;
            for (size_t k = 0; k < rows; k++) {
                size_t r = from + k;
                if (v->nul[r])
                    gs[g].flags |= 2;
                else
                    raw[k / 8] |= (char)(1u << (k % 8));
                if (width == 1) {
                    raw[bm + k] = (char)(uint8_t)codes[r];
                } else if (width == 2) {
                    uint16_t c16 = (uint16_t)codes[r];
                    memcpy(raw + bm + 2 * k, &c16, 2);
                } else {
                    memcpy(raw + bm + 4 * k, &codes[r], 4);
                }
            }
        } else {
            rawlen = granule_raw(q, v, from, rows, &raw, &gs[g]);
        }
        size_t clen = compress_block(q, codec, raw, rawlen, &blocks[g]);
        gs[g].rows = (uint32_t)rows;
        gs[g].off = off;
        gs[g].csize = clen;
        gs[g].rawsize = rawlen;
        off += clen;
    }
    size_t total =
        sizeof(struct col_hdr) + ngran * sizeof(struct gran) + (isdict ? sizeof dh : 0) + off + 8;
    char *file = wh__alloc(q, total), *p = file;
    struct col_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, isdict ? COL_MAGIC_DICT : COL_MAGIC, 8);
    h.type = v->type;
    h.codec = (uint32_t)codec;
    h.rows = v->n;
    h.ngran = (uint32_t)ngran;
    h.scale = v->scale;
    put(&p, &h, sizeof h);
    put(&p, gs, ngran * sizeof *gs);
    if (isdict) {
        put(&p, &dh, sizeof dh);
        put(&p, dblock, dh.csize);
    }
    for (size_t g = 0; g < ngran; g++)
        put(&p, blocks[g], gs[g].csize);
    uint32_t crc = (uint32_t)crc32(0, (const Bytef *)file, (uInt)(p - file));
    uint32_t tr = COL_TRAILER;
    put(&p, &crc, 4);
    put(&p, &tr, 4);
    check_io(q, write_all(path, file, total, q->err));
}

/* One granule to decode: where it is in the file, where its rows go, and (text) the block
 * that receives its strings. */
struct gran_job {
    struct gran gr;
    size_t row;
    char *blk;
};

struct col_read {
    const char *data;
    struct wh_vec *v;
    uint8_t codec;
    /* WHCOL002: the file's dictionary, and its entries' codes in v's dictionary (NULL: the
     * same; no dc to fill when v has none) */
    const char **dict;
    uint32_t ndict, width;
    const uint32_t *remap;
    struct gran_job *jobs;
    size_t njobs, per_task;
    bool *bad;
};

struct mapping {
    void *p;
    size_t len;
};

static void unmap_cb(void *arg)
{
    struct mapping *m = arg;
    munmap(m->p, m->len);
    free(m);
}

static size_t ver_slot(const struct wh_db *db, const struct wh_verified *v)
{
    uint64_t h = (v->ino * 0x9e3779b97f4a7c15ULL) ^ v->dev ^ (v->mtime_ns * 31) ^ v->size;
    return (size_t)(h ^ (h >> 29)) & (db->capverified - 1);
}

static bool ver_same(const struct wh_verified *a, const struct wh_verified *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* Whether this handle already verified the file's checksum (parts are immutable). */
static bool ver_has(const struct wh_db *db, const struct wh_verified *v)
{
    if (!db->capverified)
        return false;
    for (size_t s = ver_slot(db, v);; s = (s + 1) & (db->capverified - 1)) {
        if (!db->verified[s].ino && !db->verified[s].size)
            return false;
        if (ver_same(&db->verified[s], v))
            return true;
    }
}

static void ver_add(struct wh_db *db, const struct wh_verified *v)
{
    if (ver_has(db, v))
        return;
    if ((db->nverified + 1) * 2 > db->capverified) {
        struct wh_verified *old = db->verified;
        size_t oc = db->capverified;
        db->capverified = oc ? oc * 2 : 1024;
        if (db->capverified > ((size_t)1 << 20)) { /* bounded: start over */
            db->capverified = 1024;
            oc = 0;
        }
        db->verified = xcalloc(db->capverified, sizeof *db->verified);
        db->nverified = 0;
        for (size_t k = 0; k < oc; k++)
            if (old[k].ino || old[k].size)
                ver_add(db, &old[k]);
        free(old);
    }
    size_t s = ver_slot(db, v);
    while (db->verified[s].ino || db->verified[s].size)
        s = (s + 1) & (db->capverified - 1);
    db->verified[s] = *v;
    db->nverified++;
}

/* Maps a column file read-only for the rest of the statement (unmapped at arena reset);
 * `id` receives its identity for the verified-checksum set. With `sparse` (only a few
 * granules will be read) a file whose checksum is already verified is not prefaulted. */
static const char *map_file(struct wh_q *q, const char *path, size_t *len, struct wh_verified *id,
                            bool sparse)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        check_io(q, io_fail(q->err, "cannot open", path));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        check_io(q, io_fail(q->err, "cannot stat", path));
    }
    *len = (size_t)st.st_size;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->size = (uint64_t)st.st_size;
    id->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    if (*len == 0) {
        close(fd);
        return "";
    }
    int flags = MAP_PRIVATE | (sparse && ver_has(q->db, id) ? 0 : MAP_POPULATE);
    void *p = mmap(NULL, *len, PROT_READ, flags, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        check_io(q, io_fail(q->err, "cannot map", path));
    struct mapping *m = xmalloc(sizeof *m);
    m->p = p;
    m->len = *len;
    if (arena_on_reset(q->a, unmap_cb, m) < 0) {
        unmap_cb(m);
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    }
    return p;
}

#define CRC_CHUNK ((size_t)4 << 20)

struct crc_job {
    const char *data;
    size_t len;
    uint32_t *crc; /* per chunk */
};

static void crc_task(void *arg, size_t i)
{
    struct crc_job *j = arg;
    size_t off = i * CRC_CHUNK, n = j->len - off < CRC_CHUNK ? j->len - off : CRC_CHUNK;
    j->crc[i] = (uint32_t)crc32(0, (const Bytef *)j->data + off, (uInt)n);
}

/* CRC-32 of data[0..len), in 4 MiB chunks on the pool, combined in order. */
static uint32_t file_crc(struct wh_q *q, const char *data, size_t len)
{
    size_t nch = (len + CRC_CHUNK - 1) / CRC_CHUNK;
    if (nch < 2 || q->worker || q->db->threads < 2)
        return (uint32_t)crc32(0, (const Bytef *)data, (uInt)len);
    struct crc_job j = { data, len, wh__alloc(q, nch * sizeof(uint32_t)) };
    wh__pool_run(wh__db_pool(q->db), nch, crc_task, &j);
    uLong c = j.crc[0];
    for (size_t i = 1; i < nch; i++) {
        size_t n = len - i * CRC_CHUNK < CRC_CHUNK ? len - i * CRC_CHUNK : CRC_CHUNK;
        c = crc32_combine(c, j.crc[i], (z_off_t)n);
    }
    return (uint32_t)c;
}

/* Decompresses and decodes one granule into its rows of v, using `raw` (at least the
 * granule's raw size) as scratch. Returns false for corrupt data. */
static bool gran_decode(struct col_read *cr, size_t i, char *raw)
{
    struct gran_job *j = &cr->jobs[i];
    struct wh_vec *v = cr->v;
    const struct gran *gr = &j->gr;
    if (cr->codec == CODEC_LZ4) {
        int n = LZ4_decompress_safe(cr->data + gr->off, raw, (int)gr->csize, (int)gr->rawsize);
        if (n < 0 || (size_t)n != gr->rawsize)
            goto corrupt;
    } else if (cr->codec == CODEC_ZSTD) {
        size_t n = ZSTD_decompress(raw, gr->rawsize, cr->data + gr->off, gr->csize);
        if (ZSTD_isError(n) || n != gr->rawsize)
            goto corrupt;
    } else {
        goto corrupt;
    }
    size_t bm = (gr->rows + 7) / 8, row = j->row;
    const char *p = raw + bm;
    if (cr->dict) {
        const uint8_t *c8 = (const uint8_t *)p;
        uint32_t *dc = v->dc;
        for (uint32_t k = 0; k < gr->rows; k++) {
            uint32_t code;
            if (cr->width == 1) {
                code = c8[k];
            } else if (cr->width == 2) {
                uint16_t c16;
                memcpy(&c16, c8 + 2 * k, 2);
                code = c16;
            } else {
                memcpy(&code, c8 + 4 * k, 4);
            }
            bool nul = !(raw[k / 8] & (1 << (k % 8)));
            v->nul[row + k] = nul;
            if (nul) {
                v->s[row + k] = NULL;
                continue;
            }
            if (code >= cr->ndict)
                goto corrupt;
            v->s[row + k] = cr->dict[code];
            if (dc)
                dc[row + k] = cr->remap ? cr->remap[code] : code;
        }
    } else if (v->s) {
        const char *sp = p + (size_t)gr->rows * 4, *end = raw + gr->rawsize;
        char *blk = j->blk; /* holds the granule's strings, NUL-terminated */
        /* Repeated values (low-cardinality columns) are stored once: a small direct-mapped
         * cache of recent strings, given up when most lookups miss. */
        const char *cache[256] = { 0 };
        uint32_t clen[256];
        uint32_t miss = 0;
        bool dedup = true;
        for (uint32_t k = 0; k < gr->rows; k++) {
            uint32_t l;
            memcpy(&l, p + 4 * k, 4);
            v->nul[row + k] = !(raw[k / 8] & (1 << (k % 8)));
            if ((size_t)(end - sp) < l)
                goto corrupt;
            if (v->nul[row + k]) {
                v->s[row + k] = NULL;
                continue;
            }
            if (dedup) {
                uint64_t a = 0, b = 0;
                memcpy(&a, sp, l < 8 ? l : 8);
                if (l > 8)
                    memcpy(&b, sp + l - 8, 8);
                uint64_t hh = (a * 0x9e3779b97f4a7c15ULL) ^ (b * 0xff51afd7ed558ccdULL) ^ l;
                size_t slot = (size_t)(hh >> 56);
                if (cache[slot] && clen[slot] == l && !memcmp(cache[slot], sp, l)) {
                    v->s[row + k] = cache[slot];
                    sp += l;
                    continue;
                }
                cache[slot] = blk;
                clen[slot] = l;
                if (++miss > 64 && miss > k / 2)
                    dedup = false;
            }
            memcpy(blk, sp, l);
            blk[l] = 0;
            v->s[row + k] = blk;
            blk += l + 1;
            sp += l;
        }
    } else {
        for (uint32_t k = 0; k < gr->rows; k++)
            v->nul[row + k] = !(raw[k / 8] & (1 << (k % 8)));
        memcpy(v->f ? (void *)(v->f + row) : (void *)(v->i + row), p, (size_t)gr->rows * 8);
    }
    return true;
corrupt:
    return false;
}

/* A pool task: a contiguous range of granules with one scratch buffer (task i of
 * cr->ntasks); touches only those granules' rows. */
static void gran_task(void *arg, size_t i)
{
    struct col_read *cr = arg;
    size_t from = i * cr->per_task, to = from + cr->per_task;
    if (to > cr->njobs)
        to = cr->njobs;
    size_t cap = 0;
    for (size_t k = from; k < to; k++)
        if (cr->jobs[k].gr.rawsize > cap)
            cap = cr->jobs[k].gr.rawsize;
    char *raw = xmalloc(cap + 1);
    for (size_t k = from; k < to; k++)
        if (!gran_decode(cr, k, raw))
            cr->bad[k] = true;
    free(raw);
}

/* One vector's dictionary while its parts are read one after the other: the first
 * dictionary-encoded part gives v its dictionary; later parts' entries are looked up (and
 * added) through a hash of the entries; a plain part, or too many entries, ends it (v->dc
 * cleared; v->s is filled in every case). */
struct dict_merge {
    bool broken, started;
    uint32_t *slot; /* open addressing over v->dict, capacity cap */
    size_t cap, dcap;
};

#define DICT_MERGE_MAX ((uint32_t)1 << 22)

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static void dict_merge_end(struct wh_vec *v, struct dict_merge *dm)
{
    dm->broken = true;
    v->dc = NULL;
    v->dict = NULL;
    v->ndict = 0;
}

static void dict_slot_insert(struct dict_merge *dm, const char **dict, uint32_t code)
{
    size_t at = (size_t)str_hash(dict[code]) & (dm->cap - 1);
    while (dm->slot[at] != UINT32_MAX)
        at = (at + 1) & (dm->cap - 1);
    dm->slot[at] = code;
}

/* Gives the file's entries codes in v's dictionary; returns the remap table (NULL when the
 * codes are the file's own) or ends the dictionary. */
static const uint32_t *dict_merge_add(struct wh_q *q, struct wh_vec *v, struct dict_merge *dm,
                                      const char **ent, uint32_t n)
{
    if (dm->broken)
        return NULL;
    if (!dm->started) {
        dm->started = true;
        v->dc = wh__alloc(q, (v->n ? v->n : 1) * sizeof *v->dc);
        v->dict = ent;
        v->ndict = n;
        return NULL;
    }
    if ((uint64_t)v->ndict + n > DICT_MERGE_MAX) {
        dict_merge_end(v, dm);
        return NULL;
    }
    if (!dm->slot || (v->ndict + n) * 2 > dm->cap) {
        size_t cap = 1024;
        while (cap < ((size_t)v->ndict + n) * 4)
            cap <<= 1;
        dm->cap = cap;
        dm->slot = wh__alloc(q, cap * sizeof *dm->slot);
        memset(dm->slot, 0xff, cap * sizeof *dm->slot);
        for (uint32_t k = 0; k < v->ndict; k++)
            dict_slot_insert(dm, v->dict, k);
    }
    if (dm->dcap < (size_t)v->ndict + n) {
        size_t nc = ((size_t)v->ndict + n) * 2;
        const char **nd = wh__alloc(q, nc * sizeof *nd);
        memcpy(nd, v->dict, v->ndict * sizeof *nd);
        v->dict = nd;
        dm->dcap = nc;
    }
    uint32_t *remap = wh__alloc(q, ((size_t)n + 1) * sizeof *remap);
    for (uint32_t k = 0; k < n; k++) {
        size_t at = (size_t)str_hash(ent[k]) & (dm->cap - 1);
        for (;;) {
            uint32_t e = dm->slot[at];
            if (e == UINT32_MAX) {
                v->dict[v->ndict] = ent[k];
                dm->slot[at] = v->ndict;
                remap[k] = v->ndict++;
                break;
            }
            if (!strcmp(v->dict[e], ent[k])) {
                remap[k] = e;
                break;
            }
            at = (at + 1) & (dm->cap - 1);
        }
    }
    return remap;
}

static void dict_cache_free(struct wh_dict_cache *e)
{
    free(e->blob);
    free((void *)e->ent);
    memset(e, 0, sizeof *e);
}

void wh__dict_cache_clear(struct wh_db *db)
{
    for (int k = 0; k < WH_DICT_CACHE; k++)
        dict_cache_free(&db->dcache[k]);
}

struct dict_blob {
    char *blob;
    const char **ent;
};

static void dict_blob_free(void *p)
{
    struct dict_blob *b = p;
    free(b->blob);
    free((void *)b->ent);
    free(b);
}

/* Drops a cache entry; the current statement may still point into it, so its memory is
 * freed with the statement's arena. */
static void dict_cache_evict(struct wh_q *q, struct wh_dict_cache *e)
{
    struct dict_blob *b = xmalloc(sizeof *b);
    b->blob = e->blob;
    b->ent = e->ent;
    memset(e, 0, sizeof *e);
    if (arena_on_reset(q->a, dict_blob_free, b) < 0) {
        dict_blob_free(b);
        wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    }
}

/* Decodes a WHCOL002 file's dictionary block into NUL-terminated entries, or takes them
 * from the database's cache (by file identity `id`; NULL: not cached). NULL when the block
 * is malformed. */
static const char **dict_load(struct wh_q *q, const struct dict_hdr *dh, const char *data,
                              size_t datalen, const struct wh_verified *id)
{
    struct wh_db *db = q->db;
    bool cache = id && !q->worker;
    if (cache)
        for (int k = 0; k < WH_DICT_CACHE; k++) {
            struct wh_dict_cache *e = &db->dcache[k];
            if (e->ent && !memcmp(&e->id, id, sizeof *id) && e->n == dh->ndict) {
                e->tick = ++db->dtick;
                return e->ent;
            }
        }
    if (dh->ndict == 0 || dh->ndict > DICT_MAX ||
        (dh->width != 1 && dh->width != 2 && dh->width != 4) ||
        (dh->width == 1 && dh->ndict > 256) || (dh->width == 2 && dh->ndict > 65536) ||
        dh->off + dh->csize > datalen || dh->rawsize < 4 * (uint64_t)dh->ndict ||
        dh->rawsize > ((uint64_t)1 << 31))
        return NULL;
    char *raw = wh__alloc(q, dh->rawsize + 1);
    int got = LZ4_decompress_safe(data + dh->off, raw, (int)dh->csize, (int)dh->rawsize);
    if (got < 0 || (uint64_t)got != dh->rawsize)
        return NULL;
    size_t blen = dh->rawsize - 4 * (size_t)dh->ndict + dh->ndict + 1;
    const char **ent;
    char *blk, *blob = NULL;
    if (cache) {
        ent = xmalloc(((size_t)dh->ndict + 1) * sizeof *ent);
        blk = blob = xmalloc(blen);
    } else {
        ent = wh__alloc(q, ((size_t)dh->ndict + 1) * sizeof *ent);
        blk = wh__alloc(q, blen);
    }
    const char *sp = raw + 4 * (size_t)dh->ndict, *end = raw + dh->rawsize;
    for (uint32_t k = 0; k < dh->ndict; k++) {
        uint32_t l;
        memcpy(&l, raw + 4 * (size_t)k, 4);
        if ((size_t)(end - sp) < l) {
            sp = NULL;
            break;
        }
        memcpy(blk, sp, l);
        blk[l] = 0;
        ent[k] = blk;
        blk += l + 1;
        sp += l;
    }
    if (sp != end) {
        if (cache) {
            free(blob);
            free((void *)ent);
        }
        return NULL;
    }
    if (!cache)
        return ent;
    /* Into the cache: the least recently used entry goes, and more while over budget. */
    size_t bytes = blen + ((size_t)dh->ndict + 1) * sizeof *ent, total = bytes;
    for (int k = 0; k < WH_DICT_CACHE; k++)
        total += db->dcache[k].bytes;
    for (;;) {
        int lru = -1, used = 0;
        for (int k = 0; k < WH_DICT_CACHE; k++)
            if (db->dcache[k].ent) {
                used++;
                if (lru < 0 || db->dcache[k].tick < db->dcache[lru].tick)
                    lru = k;
            }
        if (lru < 0 || (used < WH_DICT_CACHE && total <= WH_DICT_CACHE_BYTES))
            break;
        total -= db->dcache[lru].bytes;
        dict_cache_evict(q, &db->dcache[lru]);
    }
    int slot = -1;
    for (int k = 0; k < WH_DICT_CACHE && slot < 0; k++)
        if (!db->dcache[k].ent)
            slot = k;
    struct wh_dict_cache *e = &db->dcache[slot];
    e->id = *id;
    e->blob = blob;
    e->ent = ent;
    e->n = dh->ndict;
    e->bytes = bytes;
    e->tick = ++db->dtick;
    if (bytes > WH_DICT_CACHE_BYTES) /* too big to keep: used by this statement only */
        dict_cache_evict(q, e);
    return ent;
}

/* Reads one column file holding `rows` rows into v starting at row `at`; with `keep`, only
 * the granules it marks (the caller sized v for them). Granules are decoded in parallel on
 * the database's pool. `dm` carries v's dictionary across the parts of one scan. */
static void read_column(struct wh_q *q, const char *path, struct wh_vec *v, size_t at,
                        uint64_t rows, const uint8_t *keep, uint64_t kept, struct dict_merge *dm)
{
    size_t len = 0;
    struct wh_verified fid;
    const char *file = map_file(q, path, &len, &fid, keep && kept * 4 < rows);
    struct col_hdr h;
    uint32_t crc, tr;
    if (len < sizeof h + 8)
        goto corrupt;
    memcpy(&h, file, sizeof h);
    int ver = col_version(&h);
    if (!ver && !memcmp(h.magic, "WHCOL", 5))
        wh__fail(q, WEIR_EIO, -1,
                 "column file '%s' has format %.8s, which this version of weir cannot read "
                 "(it reads WHCOL001 and WHCOL002)",
                 path, h.magic);
    memcpy(&crc, file + len - 8, 4);
    memcpy(&tr, file + len - 4, 4);
    bool known = ver_has(q->db, &fid);
    if (tr != COL_TRAILER || (!known && crc != file_crc(q, file, len - 8)))
        goto corrupt;
    if (!ver || h.type != v->type || h.rows != rows || h.scale != v->scale ||
        sizeof h + (uint64_t)h.ngran * sizeof(struct gran) +
                (ver == 2 ? sizeof(struct dict_hdr) : 0) >
            len - 8)
        goto corrupt;
    if (h.codec != CODEC_LZ4 && h.codec != CODEC_ZSTD)
        goto corrupt;
    if (ver == 2 && (!v->s || h.codec != CODEC_LZ4))
        goto corrupt;
    const char *dir = file + sizeof h;
    const char *data = dir + (size_t)h.ngran * sizeof(struct gran);
    struct dict_hdr dh;
    memset(&dh, 0, sizeof dh);
    if (ver == 2) {
        memcpy(&dh, data, sizeof dh);
        data += sizeof dh;
    }
    size_t datalen = (size_t)(file + len - 8 - data);
    struct col_read cr = { .data = data, .v = v, .codec = (uint8_t)h.codec };
    if (ver == 2) {
        cr.dict = dict_load(q, &dh, data, datalen, &fid);
        if (!cr.dict)
            goto corrupt;
        cr.ndict = dh.ndict;
        cr.width = dh.width;
        if (kept)
            cr.remap = dict_merge_add(q, v, dm, cr.dict, dh.ndict);
    } else if (v->s && kept && !dm->broken) {
        dict_merge_end(v, dm);
    }
    size_t row = at, nj = 0;
    struct gran_job *jobs = wh__calloc(q, (size_t)h.ngran + 1, sizeof *jobs);
    for (uint32_t g = 0; g < h.ngran; g++) {
        struct gran gr;
        memcpy(&gr, dir + g * sizeof gr, sizeof gr);
        if (gr.off + gr.csize > datalen || gr.rows > WH_GRANULE ||
            gr.rawsize > (size_t)gr.rows * 8 + (gr.rows + 7) / 8 + ((size_t)1 << 30))
            goto corrupt;
        if (keep && !keep[g])
            continue;
        if (row + gr.rows > at + kept)
            goto corrupt;
        size_t bm = (gr.rows + 7) / 8;
        if (ver == 2 ? bm + (size_t)gr.rows * dh.width != gr.rawsize
            : v->s   ? bm + (size_t)gr.rows * 4 > gr.rawsize
                     : bm + (size_t)gr.rows * 8 != gr.rawsize)
            goto corrupt;
        jobs[nj].gr = gr;
        jobs[nj].row = row;
        if (v->s && ver == 1)
            jobs[nj].blk = wh__alloc(q, gr.rawsize - bm - (size_t)gr.rows * 4 + gr.rows + 1);
        nj++;
        row += gr.rows;
    }
    if (row != at + kept)
        goto corrupt;
    cr.jobs = jobs;
    cr.njobs = nj;
    cr.bad = wh__calloc(q, nj + 1, sizeof *cr.bad);
    int th = q->worker || nj < 4 || q->db->threads < 2 ? 1 : wh__pool_size(wh__db_pool(q->db));
    size_t ntask = th > 1 ? (size_t)th * 4 : 1;
    if (ntask > nj)
        ntask = nj ? nj : 1;
    cr.per_task = (nj + ntask - 1) / ntask;
    if (cr.per_task == 0)
        cr.per_task = 1;
    ntask = (nj + cr.per_task - 1) / cr.per_task;
    if (ntask <= 1)
        for (size_t i = 0; i < ntask; i++)
            gran_task(&cr, i);
    else
        wh__pool_run(wh__db_pool(q->db), ntask, gran_task, &cr);
    for (size_t i = 0; i < nj; i++)
        if (cr.bad[i])
            goto corrupt;
    if (!known)
        ver_add(q->db, &fid);
    return;
corrupt:
    wh__fail(q, WEIR_EIO, -1, "corrupt column file '%s' (checksum or structure mismatch)", path);
}

/* Narrows keep[] (one entry per granule) to the granules whose min/max can satisfy the
 * predicates on column `c`. The data read later verifies the file's checksum. */
static void prune_column(struct wh_q *q, const char *path, const struct wh_prune *pr, int npr,
                         int c, uint8_t *keep, size_t ngran)
{
    char *file = NULL;
    size_t len = 0;
    check_io(q, read_all(path, &file, &len, q->err));
    struct col_hdr h;
    if (len < sizeof h + 8) {
        free(file);
        return;
    }
    memcpy(&h, file, sizeof h);
    if (!col_version(&h) || h.ngran != ngran ||
        sizeof h + (uint64_t)h.ngran * sizeof(struct gran) > len - 8) {
        free(file); /* leave it to read_column to report */
        return;
    }
    bool isf = h.type == WH_T_FLOAT4 || h.type == WH_T_FLOAT8;
    for (size_t g = 0; g < ngran; g++) {
        struct gran gr;
        memcpy(&gr, file + sizeof h + g * sizeof gr, sizeof gr);
        for (int k = 0; k < npr && keep[g]; k++) {
            if (pr[k].col != c)
                continue;
            if (!(gr.flags & 1)) { /* only NULLs: no comparison is true */
                keep[g] = 0;
                break;
            }
            int lo, hi; /* sign of (min - value), (max - value) */
            if (isf) {
                double mn, mx;
                memcpy(&mn, &gr.min, 8);
                memcpy(&mx, &gr.max, 8);
                lo = (mn > pr[k].fv) - (mn < pr[k].fv);
                hi = (mx > pr[k].fv) - (mx < pr[k].fv);
            } else {
                lo = (gr.min > pr[k].iv) - (gr.min < pr[k].iv);
                hi = (gr.max > pr[k].iv) - (gr.max < pr[k].iv);
            }
            bool may;
            switch (pr[k].op) {
            case OP_EQ:
                may = lo <= 0 && hi >= 0;
                break;
            case OP_LT:
                may = lo < 0;
                break;
            case OP_LE:
                may = lo <= 0;
                break;
            case OP_GT:
                may = hi > 0;
                break;
            default:
                may = hi >= 0;
                break;
            }
            if (!may)
                keep[g] = 0;
        }
    }
    free(file);
}

/* Reads the wanted columns of the granules keep[p] marks (all of part p when keep[p] is
 * NULL; none when kept[p] is 0 and keep[p] set); parts with use_part false are skipped. */
/* The file of column `c` in part `p` of `t`. */
static char *col_path(struct wh_q *q, const struct wh_table *t, size_t p, int c)
{
    return arena_printf(q->a, "%s/%s/%s/p%llu/c%d.col", q->db->dir, t->schema, t->name,
                        (unsigned long long)t->parts[p].id, c);
}

static struct wh_rel *scan_kept(struct wh_q *q, struct wh_table *t, const bool *want,
                                const char *qual, const bool *use_part, uint8_t **keep,
                                const uint64_t *kept)
{
    size_t total = 0;
    for (size_t p = 0; p < t->nparts; p++)
        if (!use_part || use_part[p])
            total += kept[p];
    struct wh_rel *r = wh__rel_new(q, t->ncols, total);
    for (int c = 0; c < t->ncols; c++) {
        r->names[c] = t->cols[c].name;
        r->quals[c] = qual;
        if (!want[c])
            continue;
        r->cols[c] = wh__vec_new(q, t->cols[c].type, t->cols[c].scale, total);
        struct dict_merge dm = { 0 };
        size_t at = 0;
        for (size_t p = 0; p < t->nparts; p++) {
            if ((use_part && !use_part[p]) || (keep[p] && !kept[p]))
                continue;
            char *path = col_path(q, t, p, c);
            read_column(q, path, r->cols[c], at, t->parts[p].rows, keep[p], kept[p], &dm);
            at += kept[p];
        }
    }
    return r;
}

static uint64_t granule_rows(const struct wh_part *part, size_t g, size_t ngran)
{
    return g + 1 < ngran ? WH_GRANULE : part->rows - g * WH_GRANULE;
}

static struct wh_rel *scan_parts(struct wh_q *q, struct wh_table *t, const bool *want,
                                 const char *qual, const bool *use_part, const struct wh_prune *pr,
                                 int npr)
{
    uint8_t **keep = wh__calloc(q, t->nparts + 1, sizeof *keep);
    uint64_t *kept = wh__calloc(q, t->nparts + 1, sizeof *kept);
    for (size_t p = 0; p < t->nparts; p++) {
        if (use_part && !use_part[p])
            continue;
        kept[p] = t->parts[p].rows;
        if (npr) {
            size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
            keep[p] = wh__alloc(q, ngran + 1);
            memset(keep[p], 1, ngran + 1);
            for (int c = 0; c < t->ncols; c++) {
                bool has = false;
                for (int k = 0; k < npr; k++)
                    has |= pr[k].col == c;
                if (!has)
                    continue;
                char *path = col_path(q, t, p, c);
                prune_column(q, path, pr, npr, c, keep[p], ngran);
            }
            kept[p] = 0;
            for (size_t g = 0; g < ngran; g++)
                if (keep[p][g])
                    kept[p] += granule_rows(&t->parts[p], g, ngran);
        }
    }
    return scan_kept(q, t, want, qual, use_part, keep, kept);
}

struct wh_rel *wh__table_fetch(struct wh_q *q, struct wh_table *t, const bool *want,
                               const char *qual, const uint32_t *rows, size_t n)
{
    uint8_t **keep = wh__calloc(q, t->nparts + 1, sizeof *keep);
    uint64_t *kept = wh__calloc(q, t->nparts + 1, sizeof *kept);
    uint64_t **start = wh__calloc(q, t->nparts + 1, sizeof *start); /* granule -> position */
    uint64_t *pbase = wh__calloc(q, t->nparts + 1, sizeof *pbase);  /* first row of part */
    uint64_t base = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        keep[p] = wh__calloc(q, ngran + 1, 1);
        start[p] = wh__calloc(q, ngran + 1, sizeof **start);
        pbase[p] = base;
        base += t->parts[p].rows;
    }
    size_t *part_of = wh__alloc(q, (n + 1) * sizeof *part_of);
    for (size_t k = 0; k < n; k++) {
        size_t p = 0;
        while (p + 1 < t->nparts && rows[k] >= pbase[p + 1])
            p++;
        if (p >= t->nparts || rows[k] >= pbase[p] + t->parts[p].rows)
            wh__fail(q, WEIR_EINTERNAL, -1, "row %u is out of range", rows[k]);
        part_of[k] = p;
        keep[p][(rows[k] - pbase[p]) / WH_GRANULE] = 1;
    }
    uint64_t pos = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        for (size_t g = 0; g < ngran; g++)
            if (keep[p][g]) {
                start[p][g] = pos;
                uint64_t gr = granule_rows(&t->parts[p], g, ngran);
                kept[p] += gr;
                pos += gr;
            }
    }
    struct wh_rel *r = scan_kept(q, t, want, qual, NULL, keep, kept);
    uint32_t *idx = wh__alloc(q, (n + 1) * sizeof *idx);
    for (size_t k = 0; k < n; k++) {
        size_t p = part_of[k];
        uint64_t off = rows[k] - pbase[p];
        idx[k] = (uint32_t)(start[p][off / WH_GRANULE] + off % WH_GRANULE);
    }
    return wh__rel_gather(q, r, idx, n);
}

/* Reads the header and granule directory of a column file (not its data: the checksum is
 * verified when the data is read). Returns the directory (malloc'd) or NULL when the file
 * is too short or malformed. */
static struct gran *read_dir(struct wh_q *q, const char *path, struct col_hdr *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        check_io(q, io_fail(q->err, "cannot open", path));
    struct gran *d = NULL;
    if (pread(fd, h, sizeof *h, 0) != (ssize_t)sizeof *h || !col_version(h) ||
        h->ngran > (1u << 26))
        goto out;
    size_t dl = (size_t)h->ngran * sizeof *d;
    d = xmalloc(dl + 1);
    if (pread(fd, d, dl, sizeof *h) != (ssize_t)dl) {
        free(d);
        d = NULL;
    }
out:
    close(fd);
    return d;
}

struct topn_gran {
    int64_t key; /* a granule's worst or best value, larger is better */
    uint64_t rows;
    size_t part, gran;
};

static int i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

static int topn_cmp(const void *a, const void *b)
{
    const struct topn_gran *x = a, *y = b;
    return (x->key < y->key) - (x->key > y->key); /* descending */
}

struct wh_rel *wh__table_scan_topn(struct wh_q *q, struct wh_table *t, const bool *want,
                                   const char *qual, int c, bool desc, bool nulls_first, size_t k,
                                   uint32_t **rowids)
{
    if (!wh__type_is_int(t->cols[c].type) || k == 0)
        return NULL;
    uint8_t **keep = wh__calloc(q, t->nparts + 1, sizeof *keep);
    uint64_t *kept = wh__calloc(q, t->nparts + 1, sizeof *kept);
    struct gran **dirs = wh__calloc(q, t->nparts + 1, sizeof *dirs);
    size_t total_gran = 0;
    bool ok = true;
    for (size_t p = 0; p < t->nparts && ok; p++) {
        struct col_hdr h;
        char *path = col_path(q, t, p, c);
        struct gran *d = read_dir(q, path, &h);
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        if (!d || h.ngran != ngran) {
            free(d);
            ok = false;
            break;
        }
        dirs[p] = wh__alloc(q, ngran * sizeof *d + 1);
        memcpy(dirs[p], d, ngran * sizeof *d);
        free(d);
        total_gran += ngran;
    }
    if (!ok || !total_gran)
        return NULL;
    /* The threshold: the smallest key T such that whole NULL-free granules whose every value
     * is at least as good as T hold k rows. Every row of the first k is then at least as
     * good as T, so only granules that reach T (and, with NULLS FIRST, those with NULLs)
     * can hold them. */
    struct topn_gran *tg = wh__calloc(q, total_gran + 1, sizeof *tg);
    size_t n = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        for (size_t g = 0; g < ngran; g++) {
            const struct gran *gr = &dirs[p][g];
            if ((gr->flags & 1) && !(gr->flags & 2)) {
                /* Sort by "worst value" descending in the query's order: negate for ASC. */
                tg[n].key = desc ? gr->min : (gr->max == INT64_MIN ? INT64_MAX : -gr->max);
                tg[n].rows = gr->rows;
                n++;
            }
        }
    }
    qsort(tg, n, sizeof *tg, topn_cmp);
    uint64_t acc = 0;
    size_t j = 0;
    while (j < n && acc < k)
        acc += tg[j++].rows;
    bool have = acc >= k;
    int64_t thr = have ? tg[j - 1].key : INT64_MIN; /* in the negated space for ASC */
    /* A better threshold from real values: read the granules with the best min/max until
     * they hold k rows; their k-th best value bounds the first k rows of the table. */
    struct topn_gran *bg = wh__calloc(q, total_gran + 1, sizeof *bg);
    size_t nb = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        for (size_t g = 0; g < ngran; g++)
            if (dirs[p][g].flags & 1) {
                const struct gran *gr = &dirs[p][g];
                bg[nb].key = desc ? gr->max : (gr->min == INT64_MIN ? INT64_MAX : -gr->min);
                bg[nb].rows = gr->rows;
                bg[nb].part = p;
                bg[nb].gran = g;
                nb++;
            }
    }
    qsort(bg, nb, sizeof *bg, topn_cmp);
    uint8_t **skeep = wh__calloc(q, t->nparts + 1, sizeof *skeep);
    uint64_t *skept = wh__calloc(q, t->nparts + 1, sizeof *skept);
    for (size_t p = 0; p < t->nparts; p++)
        skeep[p] = wh__calloc(q, (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE + 1, 1);
    uint64_t sacc = 0;
    for (size_t b = 0; b < nb && sacc < k; b++) {
        skeep[bg[b].part][bg[b].gran] = 1;
        skept[bg[b].part] += bg[b].rows;
        sacc += bg[b].rows;
    }
    if (sacc >= k) {
        bool *wc = wh__calloc(q, (size_t)t->ncols + 1, sizeof *wc);
        wc[c] = true;
        struct wh_vec *sv = scan_kept(q, t, wc, qual, NULL, skeep, skept)->cols[c];
        int64_t *vals = wh__alloc(q, (sv->n + 1) * sizeof *vals);
        size_t nv = 0;
        for (size_t r = 0; r < sv->n; r++)
            if (!sv->nul[r])
                vals[nv++] = desc ? sv->i[r] : (sv->i[r] == INT64_MIN ? INT64_MAX : -sv->i[r]);
        if (nv >= k) {
            qsort(vals, nv, sizeof *vals, i64_desc);
            if (!have || vals[k - 1] > thr)
                thr = vals[k - 1];
            have = true;
        }
    }
    if (!have)
        return NULL;
    size_t total = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        keep[p] = wh__calloc(q, ngran + 1, 1);
        for (size_t g = 0; g < ngran; g++) {
            const struct gran *gr = &dirs[p][g];
            bool may = false;
            if (gr->flags & 1) {
                int64_t best = desc ? gr->max : (gr->min == INT64_MIN ? INT64_MAX : -gr->min);
                may = best >= thr;
            }
            if ((gr->flags & 2) && nulls_first)
                may = true;
            if (gr->rows != granule_rows(&t->parts[p], g, ngran))
                return NULL; /* malformed directory: take the plain path, which reports it */
            if (may) {
                keep[p][g] = 1;
                kept[p] += gr->rows;
            }
        }
        total += kept[p];
    }
    uint32_t *ids = wh__alloc(q, (total + 1) * sizeof *ids);
    size_t at = 0;
    uint64_t base = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        for (size_t g = 0; g < ngran; g++)
            if (keep[p][g])
                for (uint64_t r = 0; r < granule_rows(&t->parts[p], g, ngran); r++)
                    ids[at++] = (uint32_t)(base + g * WH_GRANULE + r);
        base += t->parts[p].rows;
    }
    *rowids = ids;
    return scan_kept(q, t, want, qual, NULL, keep, kept);
}

struct topn_cand {
    int64_t key; /* goodness: larger is better (the value, negated for ASC) */
    uint32_t row;
};

static int topn_cand_row(const void *a, const void *b)
{
    uint32_t x = ((const struct topn_cand *)a)->row, y = ((const struct topn_cand *)b)->row;
    return (x > y) - (x < y);
}

/* Restores the min-heap order of h[0..n) after h[0] changed. */
static void heap_sift_down_min(int64_t *h, size_t n)
{
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l] < h[m])
            m = l;
        if (r < n && h[r] < h[m])
            m = r;
        if (m == i)
            break;
        int64_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_push_min(int64_t *h, size_t *n, size_t cap, int64_t x)
{
    if (*n < cap) {
        size_t i = (*n)++;
        h[i] = x;
        while (i > 0 && h[(i - 1) / 2] > h[i]) {
            int64_t t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (x <= h[0])
        return;
    h[0] = x;
    heap_sift_down_min(h, cap);
}

/* Top-N candidates by the granule directory, read best granules first. Granules are
 * visited in order of their best value (max for DESC, min for ASC); a min-heap keeps the k
 * best values read so far, and once it is full its smallest value is the threshold: a
 * granule whose best value is below it cannot hold a row of the result, and neither can
 * any granule after it, so reading stops there. With NULLS FIRST the granules holding NULLs
 * are read first and their NULL rows count toward k. */
bool wh__table_topn_rows(struct wh_q *q, struct wh_table *t, int c, bool desc, bool nulls_first,
                         size_t k, uint32_t **rows_out, size_t *n_out)
{
    if (!wh__type_is_int(t->cols[c].type) || k == 0 || k > ((size_t)1 << 20) || !t->nparts)
        return false;
    size_t total_gran = 0;
    struct gran **dirs = wh__calloc(q, t->nparts + 1, sizeof *dirs);
    uint64_t *pbase = wh__calloc(q, t->nparts + 1, sizeof *pbase);
    uint64_t base = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        struct col_hdr h;
        char *path = col_path(q, t, p, c);
        struct gran *d = read_dir(q, path, &h);
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        if (!d || h.ngran != ngran) {
            free(d);
            return false;
        }
        dirs[p] = wh__alloc(q, ngran * sizeof *d + 1);
        memcpy(dirs[p], d, ngran * sizeof *d);
        free(d);
        for (size_t g = 0; g < ngran; g++)
            if (dirs[p][g].rows != granule_rows(&t->parts[p], g, ngran))
                return false; /* malformed directory: the plain path reports it */
        total_gran += ngran;
        pbase[p] = base;
        base += t->parts[p].rows;
    }
    if (base > UINT32_MAX)
        return false;
    /* Visiting order: NULL-holding granules first (NULLS FIRST), then by best value. */
    struct topn_gran *order = wh__calloc(q, total_gran + 1, sizeof *order);
    size_t no = 0, nfirst = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
        for (size_t g = 0; g < ngran; g++) {
            const struct gran *gr = &dirs[p][g];
            if (nulls_first && (gr->flags & 2)) {
                order[no].key = INT64_MAX;
                nfirst++;
            } else if (gr->flags & 1) {
                order[no].key = desc ? gr->max : (gr->min == INT64_MIN ? INT64_MAX : -gr->min);
            } else {
                continue; /* only NULLs, sorted last: needed only when k exceeds the values */
            }
            order[no].rows = gr->rows;
            order[no].part = p;
            order[no].gran = g;
            no++;
        }
    }
    qsort(order, no, sizeof *order, topn_cmp);
    int64_t *heap = wh__alloc(q, (k + 1) * sizeof *heap);
    size_t hn = 0, nnull = 0, ncand = 0, capcand = 1024;
    struct topn_cand *cand = wh__alloc(q, capcand * sizeof *cand);
    bool *wc = wh__calloc(q, (size_t)t->ncols + 1, sizeof *wc);
    wc[c] = true;
    uint8_t **keep = wh__calloc(q, t->nparts + 1, sizeof *keep);
    uint64_t *kept = wh__calloc(q, t->nparts + 1, sizeof *kept);
    for (size_t p = 0; p < t->nparts; p++)
        keep[p] = wh__alloc(q, (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE + 1);
    size_t at = 0, batch = nfirst > 2 ? nfirst : 2;
    int64_t thr = INT64_MIN;
    bool full = false;
    while (at < no) {
        /* The next batch: granules that can still reach the threshold (all NULL-holding
         * ones with NULLS FIRST come in the first batch). */
        size_t end = at;
        while (end < no && end - at < batch && (!full || order[end].key >= thr))
            end++;
        if (end == at)
            break;
        for (size_t p = 0; p < t->nparts; p++) {
            memset(keep[p], 0, (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE + 1);
            kept[p] = 0;
        }
        for (size_t b = at; b < end; b++) {
            keep[order[b].part][order[b].gran] = 1;
            kept[order[b].part] += order[b].rows;
        }
        struct wh_vec *v = scan_kept(q, t, wc, NULL, NULL, keep, kept)->cols[c];
        /* Rows of v come in (part, granule) order. */
        size_t r = 0;
        for (size_t p = 0; p < t->nparts; p++) {
            size_t ngran = (t->parts[p].rows + WH_GRANULE - 1) / WH_GRANULE;
            for (size_t g = 0; g < ngran && kept[p]; g++) {
                if (!keep[p][g])
                    continue;
                uint64_t gn = dirs[p][g].rows;
                uint32_t row0 = (uint32_t)(pbase[p] + g * WH_GRANULE);
                for (uint64_t j = 0; j < gn; j++, r++) {
                    int64_t key;
                    if (v->nul[r]) {
                        if (!nulls_first)
                            continue;
                        key = INT64_MAX;
                        nnull++;
                    } else {
                        int64_t x = v->i[r];
                        key = desc ? x : (x == INT64_MIN ? INT64_MAX : -x);
                        if (full && key < thr)
                            continue;
                        heap_push_min(heap, &hn, k, key);
                    }
                    if (ncand == capcand) {
                        struct topn_cand *nc = wh__alloc(q, 2 * capcand * sizeof *nc);
                        memcpy(nc, cand, ncand * sizeof *nc);
                        cand = nc;
                        capcand *= 2;
                    }
                    cand[ncand].key = key;
                    cand[ncand++].row = row0 + (uint32_t)j;
                }
            }
        }
        if (r != v->n)
            wh__fail(q, WEIR_EINTERNAL, -1, "top-N granule rows do not add up");
        if (nnull >= k) {
            full = true;
            thr = INT64_MAX; /* NULLs alone fill the result: no value can enter */
        } else if (hn == k - nnull || hn == k) {
            /* The heap holds k values; with NULLs first only k - nnull of them count. */
            if (hn > k - nnull) {
                /* Keep the k - nnull best: drop the heap's smallest until it fits. */
                while (hn > k - nnull) {
                    heap[0] = heap[--hn];
                    heap_sift_down_min(heap, hn);
                }
            }
            full = hn > 0;
            if (full)
                thr = heap[0];
        }
        at = end;
        batch *= 2;
        /* Prune candidates that fell below the threshold, so memory stays bounded. */
        if (full && ncand > 4 * k + 1024) {
            size_t m = 0;
            for (size_t i = 0; i < ncand; i++)
                if (cand[i].key >= thr)
                    cand[m++] = cand[i];
            ncand = m;
        }
    }
    if (!full)
        return false; /* fewer than k non-NULL values: NULLs last matter; plain path */
    size_t m = 0;
    for (size_t i = 0; i < ncand; i++)
        if (cand[i].key >= thr)
            cand[m++] = cand[i];
    qsort(cand, m, sizeof *cand, topn_cand_row);
    uint32_t *rows = wh__alloc(q, (m + 1) * sizeof *rows);
    for (size_t i = 0; i < m; i++)
        rows[i] = cand[i].row;
    *rows_out = rows;
    *n_out = m;
    return true;
}

struct wh_rel *wh__table_scan_pruned(struct wh_q *q, struct wh_table *t, const bool *want,
                                     const char *qual, const struct wh_prune *pr, int npr)
{
    return scan_parts(q, t, want, qual, NULL, pr, npr);
}

struct wh_rel *wh__table_scan(struct wh_q *q, struct wh_table *t, const bool *want,
                              const char *qual)
{
    return scan_parts(q, t, want, qual, NULL, NULL, 0);
}

struct part_job {
    const char *pdir;
    const struct wh_rel *rel;
};

/* A pool task: compresses, writes and fsyncs column `from` of the part. */
static void column_task(struct wh_q *sub, void *arg, size_t chunk, size_t from, size_t to)
{
    (void)chunk;
    struct part_job *pj = arg;
    for (size_t c = from; c < to; c++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/c%zu.col", pj->pdir, c) >= (int)sizeof path)
            wh__fail(sub, WEIR_ETOOBIG, -1, "path too long in '%s'", pj->pdir);
        write_column(sub, path, pj->rel->cols[c]);
    }
}

/* Writes one part folder; its column files are written in parallel on the pool. */
static void write_part(struct wh_q *q, const struct wh_table *t, const struct wh_rel *rel,
                       const char *tabdir, uint64_t id)
{
    char *pdir = arena_printf(q->a, "%s/p%llu", tabdir, (unsigned long long)id);
    rm_rf(pdir);
    if (mkdir(pdir, 0755) < 0)
        check_io(q, io_fail(q->err, "cannot create part folder", pdir));
    struct part_job pj = { pdir, rel };
    size_t nc = (size_t)t->ncols;
    bool par = !q->worker && q->db->threads > 1 && nc > 1 && rel->n >= WH_GRANULE;
    wh__par_rows(q, nc, par ? nc : 1, column_task, &pj);
    check_io(q, fsync_path(pdir, q->err));
}

/* Writes rel as new parts following t's layout: one part per partition value (in order of
 * first appearance), each sorted by the sort key. Part ids start at t->next_part; the
 * parts are stored in out[] (room for rel->n entries) and their number returned. Nothing
 * is published. With `pkey` set, rel is one partition already (a merge). */
static size_t write_parts(struct wh_q *q, const struct wh_table *t, const struct wh_rel *rel,
                          const char *tabdir, struct wh_part *out, const uint64_t *pkey)
{
    if (rel->n == 0)
        return 0;
    if (!t->partition_by || pkey) {
        write_part(q, t, wh__layout_sort(q, t, rel), tabdir, t->next_part);
        out[0] = (struct wh_part){ t->next_part, rel->n, pkey ? *pkey : 0 };
        return 1;
    }
    uint64_t *h = wh__alloc(q, rel->n * sizeof *h);
    wh__layout_hash(q, t, rel, h);
    /* Group rows by hash: an open-addressing map from hash to partition number. */
    size_t cap = 16;
    while (cap < rel->n * 2)
        cap <<= 1;
    uint32_t *slot = wh__alloc(q, cap * sizeof *slot);
    memset(slot, 0xff, cap * sizeof *slot);
    uint64_t *keys = wh__alloc(q, rel->n * sizeof *keys);
    uint32_t *pid = wh__alloc(q, rel->n * sizeof *pid);
    size_t np = 0;
    for (size_t r = 0; r < rel->n; r++) {
        size_t s = (size_t)(h[r] * 0x9e3779b97f4a7c15ULL >> 7) & (cap - 1);
        while (slot[s] != UINT32_MAX && keys[slot[s]] != h[r])
            s = (s + 1) & (cap - 1);
        if (slot[s] == UINT32_MAX) {
            slot[s] = (uint32_t)np;
            keys[np++] = h[r];
        }
        pid[r] = slot[s];
    }
    /* Rows of each partition, in order: a counting sort by partition number. */
    size_t *start = wh__calloc(q, np + 1, sizeof *start);
    for (size_t r = 0; r < rel->n; r++)
        start[pid[r] + 1]++;
    for (size_t p = 0; p < np; p++)
        start[p + 1] += start[p];
    uint32_t *idx = wh__alloc(q, rel->n * sizeof *idx);
    size_t *fill = wh__alloc(q, (np + 1) * sizeof *fill);
    memcpy(fill, start, (np + 1) * sizeof *fill);
    for (size_t r = 0; r < rel->n; r++)
        idx[fill[pid[r]]++] = (uint32_t)r;
    for (size_t p = 0; p < np; p++) {
        size_t cnt = start[p + 1] - start[p];
        struct wh_rel *sub = wh__rel_gather(q, rel, idx + start[p], cnt);
        uint64_t id = t->next_part + p;
        write_part(q, t, wh__layout_sort(q, t, sub), tabdir, id);
        out[p] = (struct wh_part){ id, cnt, keys[p] };
    }
    return np;
}

void wh__table_append(struct wh_q *q, struct wh_table *t, const struct wh_rel *rel)
{
    if (rel->n == 0)
        return;
    char *tabdir = arena_printf(q->a, "%s/%s/%s", q->db->dir, t->schema, t->name);
    struct wh_part *np = wh__alloc(q, rel->n * sizeof *np);
    size_t k = write_parts(q, t, rel, tabdir, np, NULL);
    /* Publish: the in-memory catalog changes only once the manifest rename succeeded. */
    struct wh_table nt = *t;
    nt.parts = wh__calloc(q, t->nparts + k + 1, sizeof *nt.parts);
    memcpy(nt.parts, t->parts, t->nparts * sizeof *nt.parts);
    memcpy(nt.parts + t->nparts, np, k * sizeof *np);
    nt.nparts += k;
    nt.next_part = t->next_part + k;
    publish(q, t, &nt, tabdir);
    t->parts = xrealloc(t->parts, (t->nparts + k + 1) * sizeof *t->parts);
    memcpy(t->parts + t->nparts, np, k * sizeof *np);
    t->nparts += k;
    t->next_part = nt.next_part;
    wh__table_optimize(q, t, false);
}

/* Parts below this many rows count as small and get merged. */
#define SMALL_PART      ((uint64_t)WH_GRANULE * 16)
#define MAX_SMALL_PARTS 8

void wh__table_optimize(struct wh_q *q, struct wh_table *t, bool force)
{
    bool *use = wh__calloc(q, t->nparts + 1, sizeof *use);
    size_t nsmall = 0;
    for (size_t p = 0; p < t->nparts; p++)
        if (force || t->parts[p].rows < SMALL_PART) {
            use[p] = true;
            nsmall++;
        }
    if (nsmall < 2 || (!force && nsmall <= MAX_SMALL_PARTS))
        return;
    /* Merge the chosen parts of each partition into one part (partitions never mix). A
     * partition with a single chosen part keeps it. */
    for (size_t p = 0; p < t->nparts; p++) {
        if (!use[p])
            continue;
        size_t same = 0;
        for (size_t o = 0; o < t->nparts; o++)
            same += use[o] && t->parts[o].pkey == t->parts[p].pkey;
        if (same < 2)
            use[p] = false;
    }
    bool *want = wh__calloc(q, (size_t)t->ncols, sizeof *want);
    for (int c = 0; c < t->ncols; c++)
        want[c] = true;
    char *tabdir = arena_printf(q->a, "%s/%s/%s", q->db->dir, t->schema, t->name);
    struct wh_table nt = *t;
    nt.parts = wh__calloc(q, t->nparts + 1, sizeof *nt.parts);
    nt.nparts = 0;
    for (size_t p = 0; p < t->nparts; p++)
        if (!use[p])
            nt.parts[nt.nparts++] = t->parts[p];
    bool *done = wh__calloc(q, t->nparts + 1, sizeof *done);
    bool *grp = wh__calloc(q, t->nparts + 1, sizeof *grp);
    size_t merged = 0;
    for (size_t p = 0; p < t->nparts; p++) {
        if (!use[p] || done[p])
            continue;
        for (size_t o = 0; o < t->nparts; o++) {
            grp[o] = use[o] && !done[o] && t->parts[o].pkey == t->parts[p].pkey;
            done[o] |= grp[o];
        }
        struct wh_rel *rel = scan_parts(q, t, want, t->name, grp, NULL, 0);
        uint64_t pk = t->parts[p].pkey;
        if (write_parts(q, &nt, rel, tabdir, nt.parts + nt.nparts, &pk)) {
            nt.nparts++;
            nt.next_part++;
        }
        merged++;
    }
    if (!merged)
        return;
    /* Publish the kept parts plus the merged ones; then delete the merged-away parts. */
    publish(q, t, &nt, tabdir);
    for (size_t p = 0; p < t->nparts && !q->db->in_txn; p++)
        if (use[p]) {
            char *pd = arena_printf(q->a, "%s/p%llu", tabdir, (unsigned long long)t->parts[p].id);
            rm_rf(pd);
        }
    memcpy(t->parts, nt.parts, nt.nparts * sizeof *t->parts);
    t->nparts = nt.nparts;
    t->next_part = nt.next_part;
}

void wh__table_alter(struct wh_q *q, struct wh_table *t, const struct wh_coldef *cols, int ncols,
                     const struct wh_rel *rel)
{
    char *tabdir = arena_printf(q->a, "%s/%s/%s", q->db->dir, t->schema, t->name);
    struct wh_table nt = *t;
    struct wh_part np = { 0, 0, 0 };
    nt.cols = (struct wh_coldef *)cols;
    nt.ncols = ncols;
    wh__layout_check(q, &nt, -1); /* a renamed or dropped key column */
    if (rel) {
        nt.nparts = 0;
        nt.parts = &np;
        if (rel->n) {
            np.id = t->next_part;
            write_part(q, &nt, rel, tabdir, np.id);
            np.rows = rel->n;
            nt.nparts = 1;
            nt.next_part = np.id + 1;
        }
    }
    check_io(q, manifest_publish(q->db, &nt, tabdir, q->err));
    if (rel) {
        for (size_t p = 0; p < t->nparts; p++) {
            char *pd = arena_printf(q->a, "%s/p%llu", tabdir, (unsigned long long)t->parts[p].id);
            rm_rf(pd);
        }
        t->nparts = nt.nparts;
        if (nt.nparts)
            t->parts[0] = np;
        t->next_part = nt.next_part;
    }
    /* `cols` may borrow names from t->cols: copy first, then free the old definitions. */
    struct wh_coldef *nc = xcalloc((size_t)ncols, sizeof *nc);
    for (int c = 0; c < ncols; c++) {
        nc[c] = cols[c];
        nc[c].name = xstrdup(cols[c].name);
    }
    for (int c = 0; c < t->ncols; c++)
        free(t->cols[c].name);
    free(t->cols);
    t->ncols = ncols;
    t->cols = nc;
}

void wh__table_rename(struct wh_q *q, struct wh_table *t, const char *newname, int loc)
{
    if (wh__table_find(q->db, t->schema, newname) || wh__view_find(q->db, t->schema, newname))
        wh__fail(q, WEIR_ECONFLICT, loc, "relation \"%s\" already exists", newname);
    if (!valid_name(newname))
        wh__fail(q, WEIR_EINVAL, loc, "invalid table name \"%s\"", newname);
    char *sdir = arena_printf(q->a, "%s/%s", q->db->dir, t->schema);
    char *from = arena_printf(q->a, "%s/%s", sdir, t->name);
    char *to = arena_printf(q->a, "%s/%s", sdir, newname);
    if (rename(from, to) < 0)
        check_io(q, io_fail(q->err, "cannot rename", from));
    check_io(q, fsync_path(sdir, q->err));
    free(t->name);
    t->name = xstrdup(newname);
    /* The manifest's own name field is informational; refresh it (best effort: the
     * folder name is what wh_open trusts). */
    manifest_publish(q->db, t, to, NULL);
}

void wh__table_replace(struct wh_q *q, struct wh_table *t, const struct wh_rel *rel)
{
    char *tabdir = arena_printf(q->a, "%s/%s/%s", q->db->dir, t->schema, t->name);
    struct wh_table nt = *t;
    size_t n = rel ? rel->n : 0;
    nt.parts = wh__calloc(q, n + 1, sizeof *nt.parts);
    nt.nparts = rel ? write_parts(q, t, rel, tabdir, nt.parts, NULL) : 0;
    nt.next_part = t->next_part + nt.nparts;
    publish(q, t, &nt, tabdir);
    /* Old parts are garbage now (after COMMIT inside a transaction); a crash here leaves
     * orphans that wh_open removes. */
    for (size_t p = 0; p < t->nparts && !q->db->in_txn; p++) {
        char *pd = arena_printf(q->a, "%s/p%llu", tabdir, (unsigned long long)t->parts[p].id);
        rm_rf(pd);
    }
    t->parts = xrealloc(t->parts, (nt.nparts + 1) * sizeof *t->parts);
    memcpy(t->parts, nt.parts, nt.nparts * sizeof *t->parts);
    t->nparts = nt.nparts;
    t->next_part = nt.next_part;
}

/* ---- views ---- */

void wh__view_create(struct wh_q *q, const char *schema, const char *name, const char *sql,
                     bool replace, int loc)
{
    if (!wh__schema_exists(q->db, schema))
        wh__fail(q, WEIR_ENOTFOUND, loc, "schema \"%s\" does not exist", schema);
    if (wh__table_find(q->db, schema, name))
        wh__fail(q, WEIR_ECONFLICT, loc, "\"%s\" is a table, not a view", name);
    struct wh_view *old = wh__view_find(q->db, schema, name);
    if (old && !replace)
        wh__fail(q, WEIR_ECONFLICT, loc, "relation \"%s\" already exists", name);
    if (!valid_name(name))
        wh__fail(q, WEIR_EINVAL, loc, "invalid view name \"%s\"", name);
    json_t *m =
        json_pack("{s:i,s:s,s:s,s:s}", "format", 1, "schema", schema, "name", name, "sql", sql);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!text)
        wh__fail(q, WEIR_EINVAL, loc, "view text is not valid UTF-8");
    char *sdir = arena_printf(q->a, "%s/%s", q->db->dir, schema);
    char *fin = arena_printf(q->a, "%s/%s", sdir, name);
    int rc = 0;
    if (old) {
        /* Replace the definition file atomically inside the existing folder. */
        char *tmp = arena_printf(q->a, "%s/view.json.tmp", fin);
        char *vf = arena_printf(q->a, "%s/view.json", fin);
        rc = write_all(tmp, text, strlen(text), q->err);
        if (rc == 0 && rename(tmp, vf) < 0)
            rc = io_fail(q->err, "cannot rename", tmp);
        if (rc == 0)
            rc = fsync_path(fin, q->err);
    } else {
        char *tmp = arena_printf(q->a, "%s/.new-%s", sdir, name);
        char *vf = arena_printf(q->a, "%s/view.json", tmp);
        rm_rf(tmp);
        if (mkdir(tmp, 0755) < 0)
            rc = io_fail(q->err, "cannot create", tmp);
        if (rc == 0)
            rc = write_all(vf, text, strlen(text), q->err);
        if (rc == 0)
            rc = fsync_path(tmp, q->err);
        if (rc == 0 && rename(tmp, fin) < 0)
            rc = io_fail(q->err, "cannot rename", tmp);
        if (rc == 0)
            rc = fsync_path(sdir, q->err);
        if (rc < 0)
            rm_rf(tmp);
    }
    free(text);
    check_io(q, rc);
    if (old) {
        free(old->sql);
        old->sql = xstrdup(sql);
        return;
    }
    struct wh_view *v = xcalloc(1, sizeof *v);
    v->schema = xstrdup(schema);
    v->name = xstrdup(name);
    v->sql = xstrdup(sql);
    add_view(q->db, v);
}

void wh__view_drop(struct wh_q *q, struct wh_view *v)
{
    char *p = arena_printf(q->a, "%s/%s/%s", q->db->dir, v->schema, v->name);
    char *trash = arena_printf(q->a, "%s/%s/.drop-%s", q->db->dir, v->schema, v->name);
    char *sdir = arena_printf(q->a, "%s/%s", q->db->dir, v->schema);
    if (rename(p, trash) < 0)
        check_io(q, io_fail(q->err, "cannot remove view folder", p));
    check_io(q, fsync_path(sdir, q->err));
    rm_rf(trash);
    for (size_t k = 0; k < q->db->nviews; k++)
        if (q->db->views[k] == v) {
            q->db->views[k] = q->db->views[--q->db->nviews];
            break;
        }
    wh__view_free(v);
}
