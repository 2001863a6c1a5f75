/* core/yj.c - YAML to jansson with source positions (see yj.h for the contract).
 *
 * libyaml's event parser drives a small tree builder: containers are attached to their
 * parent when they start, so every value's position is known when it is inserted.
 * Positions live in a side table keyed by (container pointer, key or index), never by
 * value pointer: jansson shares one object for every true/false/null, and alias copies
 * share scalars. Aliases are expanded by copying the anchored tree (positions included)
 * against a node budget, so "billion laughs" input fails fast instead of eating RAM.
 * YAML 1.1 merge keys (`<<: *base`) are supported because DAG authors use them for
 * shared task settings; explicit keys win over merged ones. */
#include "core/yj.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"

#define YJ_MAX_FILE        ((size_t)4 << 20)  /* 4 MiB: far above any sane DAG or config file */
#define YJ_MAX_DEPTH       256                /* nesting; keeps recursive copy/free/dump shallow */
#define YJ_MAX_ALIAS_NODES 100000             /* nodes created by alias expansion, per document */
#define YJ_MAX_ARENA       ((size_t)64 << 20) /* key strings of the position table */

/* One position record: where a key and its value start (1-based). */
struct yj_ent {
    const json_t *obj; /* the container */
    const char *key;   /* NULL for a sequence element */
    size_t idx;        /* element index when key is NULL */
    int kline, kcol, vline, vcol;
};

struct yj_doc {
    json_t *root;
    char *name;
    int rline, rcol;
    struct yj_ent *ents;
    size_t nents, cap;
    uint32_t *slots; /* open addressing: 0 empty, else entry index + 1 */
    size_t nslots;   /* power of two */
    struct arena *strs;
    json_t *keep; /* merge sources: kept alive so no container address is ever reused while
                   * the position table may still hold entries for it */
};

/* ---- position table ----------------------------------------------------------------- */

static uint64_t ent_hash(const json_t *obj, const char *key, size_t idx)
{
    uint64_t h = 1469598103934665603ull;
    uintptr_t p = (uintptr_t)obj;
    for (size_t i = 0; i < sizeof p; i++) {
        h ^= (p >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
    if (key) {
        for (const unsigned char *s = (const unsigned char *)key; *s; s++) {
            h ^= *s;
            h *= 1099511628211ull;
        }
    } else {
        h ^= (uint64_t)idx * 0x9e3779b97f4a7c15ull;
        h *= 1099511628211ull;
    }
    return h;
}

static bool ent_match(const struct yj_ent *e, const json_t *obj, const char *key, size_t idx)
{
    if (e->obj != obj)
        return false;
    if (key)
        return e->key && strcmp(e->key, key) == 0;
    return !e->key && e->idx == idx;
}

static struct yj_ent *ent_find(const struct yj_doc *d, const json_t *obj, const char *key,
                               size_t idx)
{
    if (!d->nslots)
        return NULL;
    size_t mask = d->nslots - 1;
    for (size_t s = ent_hash(obj, key, idx) & mask;; s = (s + 1) & mask) {
        uint32_t v = d->slots[s];
        if (!v)
            return NULL;
        if (ent_match(&d->ents[v - 1], obj, key, idx))
            return &d->ents[v - 1];
    }
}

static void slots_rebuild(struct yj_doc *d, size_t nslots)
{
    free(d->slots);
    d->slots = xcalloc(nslots, sizeof *d->slots);
    d->nslots = nslots;
    size_t mask = nslots - 1;
    for (size_t i = 0; i < d->nents; i++) {
        const struct yj_ent *e = &d->ents[i];
        size_t s = ent_hash(e->obj, e->key, e->idx) & mask;
        while (d->slots[s])
            s = (s + 1) & mask;
        d->slots[s] = (uint32_t)(i + 1);
    }
}

/* Records (or overwrites) a position. Returns 0 or -WEIR_ETOOBIG. */
static int ent_put(struct yj_doc *d, const json_t *obj, const char *key, size_t idx, int kline,
                   int kcol, int vline, int vcol)
{
    struct yj_ent *e = ent_find(d, obj, key, idx);
    if (!e) {
        if (d->nents >= UINT32_MAX - 1)
            return -WEIR_ETOOBIG;
        const char *k = NULL;
        if (key && !(k = arena_strdup(d->strs, key)))
            return -WEIR_ETOOBIG;
        if (d->nents == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->ents = xrealloc(d->ents, d->cap * sizeof *d->ents);
        }
        e = &d->ents[d->nents++];
        e->obj = obj;
        e->key = k;
        e->idx = idx;
        if (d->nents * 2 > d->nslots) {
            slots_rebuild(d, d->nslots ? d->nslots * 2 : 128);
        } else {
            size_t mask = d->nslots - 1;
            size_t s = ent_hash(obj, key, idx) & mask;
            while (d->slots[s])
                s = (s + 1) & mask;
            d->slots[s] = (uint32_t)d->nents;
        }
    }
    e->kline = kline;
    e->kcol = kcol;
    e->vline = vline;
    e->vcol = vcol;
    return 0;
}

/* ---- the builder -------------------------------------------------------------------- */

struct frame {
    json_t *node; /* borrowed: owned by its parent (or the doc root) */
    bool is_map;
    char *anchor;    /* anchor to register when the container ends, or NULL */
    char *key;       /* pending key of a mapping, or NULL */
    bool merge;      /* the pending key is the merge key `<<` */
    int kline, kcol; /* position of the pending key */
    int mline, mcol; /* position of the last merge key */
    json_t *merges;  /* array of merge sources, or NULL */
};

struct anchor {
    char *name;
    json_t *node; /* own reference */
};

struct builder {
    struct yj_doc *doc;
    const char *src;
    size_t len;
    struct frame stack[YJ_MAX_DEPTH];
    int depth;
    struct anchor *anchors;
    size_t nanchors, capanchors;
    size_t copied; /* nodes created by alias expansion */
    bool have_root;
    int rc; /* the last error code set by fail_at (negative) */
    struct weir_err *err;
};

static int fail_at(struct builder *b, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail_at(struct builder *b, int code, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(b->err, code, fmt, ap);
    va_end(ap);
    if (b->err) {
        /* Messages quote keys and scalars, which may hold any byte: keep them one line. */
        for (char *p = b->err->msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        snprintf(b->err->loc, sizeof b->err->loc, "%s:%d:%d", b->doc->name, line, col);
    }
    b->rc = -code;
    return -code;
}

static void frame_release(struct builder *b, struct frame *f)
{
    free(f->anchor);
    free(f->key);
    if (f->merges) {
        if (!b->doc->keep)
            b->doc->keep = json_array();
        json_array_append_new(b->doc->keep, f->merges);
    }
    memset(f, 0, sizeof *f);
}

static void anchor_add(struct builder *b, const char *name, json_t *node)
{
    if (b->nanchors == b->capanchors) {
        b->capanchors = b->capanchors ? b->capanchors * 2 : 16;
        b->anchors = xrealloc(b->anchors, b->capanchors * sizeof *b->anchors);
    }
    b->anchors[b->nanchors].name = xstrdup(name);
    b->anchors[b->nanchors].node = json_incref(node);
    b->nanchors++;
}

static json_t *anchor_find(const struct builder *b, const char *name)
{
    /* Newest first: YAML lets a later anchor of the same name shadow an earlier one. */
    for (size_t i = b->nanchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0)
            return b->anchors[i].node;
    return NULL;
}

/* Deep copy of an anchored node for an alias, positions included. `depth` is the nesting
 * level the copy will sit at. New reference, or NULL with the builder's error set. */
static json_t *copy_node(struct builder *b, json_t *src, int depth, int line, int col)
{
    if (++b->copied > YJ_MAX_ALIAS_NODES) {
        fail_at(b, WEIR_ETOOBIG, line, col, "alias expansion limit exceeded (more than %d nodes)",
                YJ_MAX_ALIAS_NODES);
        return NULL;
    }
    if (!json_is_object(src) && !json_is_array(src))
        return json_incref(src); /* scalars are immutable: share them */
    if (depth >= YJ_MAX_DEPTH) {
        fail_at(b, WEIR_ETOOBIG, line, col, "nesting deeper than %d levels", YJ_MAX_DEPTH);
        return NULL;
    }
    struct yj_doc *d = b->doc;
    if (json_is_object(src)) {
        json_t *dst = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v) {
            json_t *c = copy_node(b, v, depth + 1, line, col);
            if (!c || json_object_set_new(dst, k, c) < 0) {
                json_decref(dst);
                return NULL;
            }
            const struct yj_ent *e = ent_find(d, src, k, 0);
            if (e && ent_put(d, dst, k, 0, e->kline, e->kcol, e->vline, e->vcol) < 0) {
                json_decref(dst);
                fail_at(b, WEIR_ETOOBIG, line, col, "document too large");
                return NULL;
            }
        }
        return dst;
    }
    json_t *dst = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(src, i, v) {
        json_t *c = copy_node(b, v, depth + 1, line, col);
        if (!c || json_array_append_new(dst, c) < 0) {
            json_decref(dst);
            return NULL;
        }
        const struct yj_ent *e = ent_find(d, src, NULL, i);
        if (e && ent_put(d, dst, NULL, i, e->kline, e->kcol, e->vline, e->vcol) < 0) {
            json_decref(dst);
            fail_at(b, WEIR_ETOOBIG, line, col, "document too large");
            return NULL;
        }
    }
    return dst;
}

/* Inserts `v` (stolen) at the current position: as the root, a sequence element, a
 * mapping key (`text` is then its key text, `plain` whether it was unquoted) or a
 * mapping value. Returns 0 or a negative code with the error set. */
static int add_value(struct builder *b, json_t *v, int line, int col, bool plain)
{
    struct yj_doc *d = b->doc;
    if (b->depth == 0) {
        if (b->have_root) { /* cannot happen: libyaml emits one node per document */
            json_decref(v);
            return fail_at(b, WEIR_EINTERNAL, line, col, "second root node");
        }
        d->root = v;
        d->rline = line;
        d->rcol = col;
        b->have_root = true;
        return 0;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (!f->is_map) {
        size_t idx = json_array_size(f->node);
        if (json_array_append_new(f->node, v) < 0)
            return fail_at(b, WEIR_EINTERNAL, line, col, "cannot append to sequence");
        if (ent_put(d, f->node, NULL, idx, 0, 0, line, col) < 0)
            return fail_at(b, WEIR_ETOOBIG, line, col, "document too large");
        return 0;
    }
    if (!f->key) {
        /* A key. */
        if (!json_is_string(v)) {
            json_decref(v);
            return fail_at(b, WEIR_EINVAL, line, col, "mapping key must be a string");
        }
        const char *k = json_string_value(v);
        if (strlen(k) != json_string_length(v)) {
            json_decref(v);
            return fail_at(b, WEIR_EINVAL, line, col, "mapping key contains a NUL byte");
        }
        bool merge = plain && strcmp(k, "<<") == 0;
        if (!merge && json_object_get(f->node, k)) {
            const struct yj_ent *e = ent_find(d, f->node, k, 0);
            if (e && e->kline)
                fail_at(b, WEIR_EINVAL, line, col, "duplicate key '%s' (first at line %d)", k,
                        e->kline);
            else
                fail_at(b, WEIR_EINVAL, line, col, "duplicate key '%s'", k);
            json_decref(v);
            return -WEIR_EINVAL;
        }
        f->key = xstrdup(k);
        f->merge = merge;
        f->kline = line;
        f->kcol = col;
        json_decref(v);
        return 0;
    }
    /* A value for the pending key. */
    char *k = f->key;
    f->key = NULL;
    if (f->merge) {
        free(k);
        if (!json_is_object(v) && !json_is_array(v)) {
            json_decref(v);
            return fail_at(b, WEIR_EINVAL, line, col,
                           "merge key '<<' needs a mapping or a sequence of mappings");
        }
        if (!f->merges)
            f->merges = json_array();
        f->mline = f->kline;
        f->mcol = f->kcol;
        if (json_array_append_new(f->merges, v) < 0)
            return fail_at(b, WEIR_EINTERNAL, line, col, "cannot record merge");
        return 0;
    }
    if (json_object_set_new(f->node, k, v) < 0) {
        free(k);
        return fail_at(b, WEIR_EINTERNAL, line, col, "cannot set key");
    }
    int rc = ent_put(d, f->node, k, 0, f->kline, f->kcol, line, col);
    free(k);
    if (rc < 0)
        return fail_at(b, WEIR_ETOOBIG, line, col, "document too large");
    return 0;
}

/* Applies `<<` merges at the end of a mapping: keys not set explicitly are taken from
 * each source in order (earlier sources win, as in YAML 1.1). */
static int apply_merges(struct builder *b, struct frame *f)
{
    struct yj_doc *d = b->doc;
    size_t i;
    json_t *src;
    json_array_foreach(f->merges, i, src) {
        json_t *list = json_is_array(src) ? src : NULL;
        size_t n = list ? json_array_size(list) : 1;
        for (size_t j = 0; j < n; j++) {
            json_t *m = list ? json_array_get(list, j) : src;
            if (!json_is_object(m))
                return fail_at(b, WEIR_EINVAL, f->mline, f->mcol,
                               "merge key '<<' needs a mapping or a sequence of mappings");
            const char *k;
            json_t *v;
            json_object_foreach(m, k, v) {
                if (json_object_get(f->node, k))
                    continue;
                if (json_object_set(f->node, k, v) < 0)
                    return fail_at(b, WEIR_EINTERNAL, f->mline, f->mcol, "cannot merge");
                const struct yj_ent *e = ent_find(d, m, k, 0);
                int kl = e ? e->kline : f->mline, kc = e ? e->kcol : f->mcol;
                int vl = e ? e->vline : f->mline, vc = e ? e->vcol : f->mcol;
                if (ent_put(d, f->node, k, 0, kl, kc, vl, vc) < 0)
                    return fail_at(b, WEIR_ETOOBIG, f->mline, f->mcol, "document too large");
            }
        }
    }
    return 0;
}

/* ---- scalars ------------------------------------------------------------------------- */

static bool all_digits(const char *s, const char *set)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr(set, *s))
            return false;
    return true;
}

static bool is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int bool_text(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return 0;
    return -1;
}

/* YAML 1.2 core schema integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
 * Returns 1 and sets *out, 0 if the text is not an integer, -1 if it is out of range. */
static int int_text(const char *s, json_int_t *out)
{
    int base = 10;
    const char *digits = s;
    if (s[0] == '0' && s[1] == 'o') {
        base = 8;
        digits = s + 2;
        if (!all_digits(digits, "01234567"))
            return 0;
    } else if (s[0] == '0' && s[1] == 'x') {
        base = 16;
        digits = s + 2;
        if (!all_digits(digits, "0123456789abcdefABCDEF"))
            return 0;
    } else {
        if (*digits == '-' || *digits == '+')
            digits++;
        if (!all_digits(digits, "0123456789"))
            return 0;
        digits = s;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(digits, &end, base);
    if (errno == ERANGE || !end || *end)
        return -1;
    *out = (json_int_t)v;
    return 1;
}

/* YAML 1.2 core schema floats without .inf/.nan (JSON cannot hold those; they stay
 * strings): [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int float_text(const char *s, double *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t nd = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        nd++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            nd++;
        }
    }
    if (!nd)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return 0;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || *end || errno == ERANGE)
        return -1;
    *out = v;
    return 1;
}

#define TAG_PREFIX "tag:yaml.org,2002:"

/* Converts one scalar to a new JSON value following the core schema. */
static int scalar_value(struct builder *b, const yaml_event_t *ev, json_t **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    const char *want = NULL; /* explicit core tag: "str", "int", ... */

    if (tag) {
        if (!strcmp(tag, "!"))
            want = "str";
        else if (!strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)))
            want = tag + strlen(TAG_PREFIX);
        else
            return fail_at(b, WEIR_EINVAL, line, col, "unsupported tag '%s'", tag);
        if (strcmp(want, "str") != 0 && strcmp(want, "int") != 0 && strcmp(want, "float") != 0 &&
            strcmp(want, "bool") != 0 && strcmp(want, "null") != 0)
            return fail_at(b, WEIR_EINVAL, line, col, "unsupported tag '%s'", tag);
    }
    if (strlen(s) != len)
        return fail_at(b, WEIR_EINVAL, line, col, "string contains a NUL byte");

    if ((!want && plain) || (want && strcmp(want, "str") != 0)) {
        if ((!want || !strcmp(want, "null")) && is_null_text(s)) {
            *out = json_null();
            return 0;
        }
        int bv = bool_text(s);
        if ((!want || !strcmp(want, "bool")) && bv >= 0) {
            *out = json_boolean(bv);
            return 0;
        }
        json_int_t iv;
        int r = (!want || !strcmp(want, "int") || !strcmp(want, "float")) ? int_text(s, &iv) : 0;
        if (r < 0)
            return fail_at(b, WEIR_EINVAL, line, col, "integer '%s' is out of range", s);
        if (r > 0) {
            *out = want && !strcmp(want, "float") ? json_real((double)iv) : json_integer(iv);
            return 0;
        }
        double dv;
        r = (!want || !strcmp(want, "float")) ? float_text(s, &dv) : 0;
        if (r < 0)
            return fail_at(b, WEIR_EINVAL, line, col, "number '%s' is out of range", s);
        if (r > 0) {
            *out = json_real(dv);
            return 0;
        }
        if (want)
            return fail_at(b, WEIR_EINVAL, line, col, "'%s' is not a valid !!%s", s, want);
    }
    *out = json_stringn(s, len);
    if (!*out)
        return fail_at(b, WEIR_EINVAL, line, col, "string is not valid UTF-8");
    return 0;
}

static int check_container_tag(struct builder *b, const yaml_char_t *tag, const char *kind,
                               int line, int col)
{
    if (!tag || !strcmp((const char *)tag, "!"))
        return 0;
    char want[32];
    snprintf(want, sizeof want, TAG_PREFIX "%s", kind);
    if (!strcmp((const char *)tag, want))
        return 0;
    return fail_at(b, WEIR_EINVAL, line, col, "unsupported tag '%s'", (const char *)tag);
}

/* ---- driver -------------------------------------------------------------------------- */

/* Line and column (1-based) of byte `off` of the input, for reader errors. */
static void offset_pos(const char *src, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)src[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int parser_error(struct builder *b, const yaml_parser_t *p)
{
    int line, col;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        offset_pos(b->src, b->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail_at(b, WEIR_EINVAL, line, col, "invalid yaml: %s (byte 0x%x)", problem,
                           (unsigned)p->problem_value);
        return fail_at(b, WEIR_EINVAL, line, col, "invalid yaml: %s", problem);
    }
    if (p->error == YAML_MEMORY_ERROR)
        return fail_at(b, WEIR_EINTERNAL, 1, 1, "yaml parser out of memory");
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        return fail_at(b, WEIR_EINVAL, line, col, "invalid yaml: %s %s", problem, p->context);
    return fail_at(b, WEIR_EINVAL, line, col, "invalid yaml: %s", problem);
}

/* Starts a container: attaches it to its parent and pushes a frame. */
static int push_container(struct builder *b, json_t *node, bool is_map, const yaml_char_t *anchor,
                          int line, int col)
{
    if (b->depth >= YJ_MAX_DEPTH) {
        json_decref(node);
        return fail_at(b, WEIR_ETOOBIG, line, col, "nesting deeper than %d levels", YJ_MAX_DEPTH);
    }
    if (b->depth > 0) {
        struct frame *p = &b->stack[b->depth - 1];
        if (p->is_map && !p->key) {
            json_decref(node);
            return fail_at(b, WEIR_EINVAL, line, col, "mapping key must be a string");
        }
    }
    json_incref(node); /* the frame's borrowed pointer must outlive add_value's steal */
    int rc = add_value(b, node, line, col, false);
    json_decref(node);
    if (rc < 0)
        return rc;
    struct frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof *f);
    f->node = node;
    f->is_map = is_map;
    f->anchor = anchor ? xstrdup((const char *)anchor) : NULL;
    return 0;
}

static int pop_container(struct builder *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    int rc = 0;
    if (f->merges)
        rc = apply_merges(b, f);
    if (rc == 0 && f->anchor)
        anchor_add(b, f->anchor, f->node);
    frame_release(b, f);
    b->depth--;
    return rc;
}

static int handle_event(struct builder *b, const yaml_event_t *ev, int *docs)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1)
            return fail_at(b, WEIR_EINVAL, line, col,
                           "more than one yaml document (only one is allowed)");
        return 0;
    case YAML_SCALAR_EVENT: {
        json_t *v = NULL;
        int rc = scalar_value(b, ev, &v);
        if (rc < 0)
            return rc;
        if (b->depth > 0 && b->stack[b->depth - 1].is_map && !b->stack[b->depth - 1].key &&
            !json_is_string(v)) {
            json_decref(v);
            return fail_at(b, WEIR_EINVAL, line, col, "mapping key '%s' is not a string (quote it)",
                           (const char *)ev->data.scalar.value);
        }
        if (ev->data.scalar.anchor)
            anchor_add(b, (const char *)ev->data.scalar.anchor, v);
        return add_value(b, v, line, col, ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
    }
    case YAML_SEQUENCE_START_EVENT: {
        int rc = check_container_tag(b, ev->data.sequence_start.tag, "seq", line, col);
        if (rc < 0)
            return rc;
        return push_container(b, json_array(), false, ev->data.sequence_start.anchor, line, col);
    }
    case YAML_MAPPING_START_EVENT: {
        int rc = check_container_tag(b, ev->data.mapping_start.tag, "map", line, col);
        if (rc < 0)
            return rc;
        return push_container(b, json_object(), true, ev->data.mapping_start.anchor, line, col);
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth == 0)
            return fail_at(b, WEIR_EINTERNAL, line, col, "unbalanced yaml events");
        return pop_container(b);
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        json_t *src = anchor_find(b, name);
        if (!src)
            return fail_at(b, WEIR_EINVAL, line, col, "unknown anchor '%s'", name);
        json_t *c = copy_node(b, src, b->depth, line, col);
        if (!c)
            return b->rc;
        return add_value(b, c, line, col, false);
    }
    }
    return 0;
}

static struct yj_doc *parse(const char *src, size_t len, const char *name, struct weir_err *err)
{
    struct yj_doc *doc = xcalloc(1, sizeof *doc);
    doc->name = xstrdup(name ? name : "<string>");
    doc->strs = arena_new(YJ_MAX_ARENA);
    doc->rline = doc->rcol = 1;

    struct builder *b = xcalloc(1, sizeof *b);
    b->doc = doc;
    b->src = src;
    b->len = len;
    b->err = err;

    int rc = 0;
    if (len > YJ_MAX_FILE) {
        rc = fail_at(b, WEIR_ETOOBIG, 1, 1, "file is larger than %zu bytes", YJ_MAX_FILE);
        goto out;
    }

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        rc = fail_at(b, WEIR_EINTERNAL, 1, 1, "cannot initialize the yaml parser");
        goto out;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)src, len);
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parser_error(b, &p);
            break;
        }
        rc = handle_event(b, &ev, &docs);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc < 0 || end)
            break;
    }
    yaml_parser_delete(&p);
    if (rc == 0 && !doc->root)
        doc->root = json_null();

out:
    while (b->depth > 0) {
        b->depth--;
        frame_release(b, &b->stack[b->depth]);
    }
    for (size_t i = 0; i < b->nanchors; i++) {
        free(b->anchors[i].name);
        json_decref(b->anchors[i].node);
    }
    free(b->anchors);
    free(b);
    if (rc < 0) {
        yj_free(doc);
        return NULL;
    }
    return doc;
}

struct yj_doc *yj_parse_string(const char *src, size_t len, const char *name, struct weir_err *err)
{
    return parse(src ? src : "", src ? len : 0, name, err);
}

struct yj_doc *yj_parse_file(const char *path, struct weir_err *err)
{
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        err_set(err, e == ENOENT ? WEIR_ENOTFOUND : WEIR_EIO, "cannot open '%s': %s", path,
                err_errno(e, ebuf, sizeof ebuf));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        if (e == 0 || S_ISDIR(st.st_mode))
            err_set(err, WEIR_EIO, "cannot read '%s': not a regular file", path);
        else
            err_set(err, WEIR_EIO, "cannot read '%s': %s", path, err_errno(e, ebuf, sizeof ebuf));
        return NULL;
    }
    if ((uint64_t)st.st_size > YJ_MAX_FILE) {
        close(fd);
        err_set(err, WEIR_ETOOBIG, "file '%s' is larger than %zu bytes", path, YJ_MAX_FILE);
        return NULL;
    }
    /* Read until EOF rather than trusting st_size: the file may change while we read. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *data = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > YJ_MAX_FILE) {
                free(data);
                close(fd);
                err_set(err, WEIR_ETOOBIG, "file '%s' is larger than %zu bytes", path, YJ_MAX_FILE);
                return NULL;
            }
            cap *= 2;
            data = xrealloc(data, cap + 1);
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(data);
            close(fd);
            err_set(err, WEIR_EIO, "cannot read '%s': %s", path, err_errno(e, ebuf, sizeof ebuf));
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    data[len] = '\0';
    struct yj_doc *doc = parse(data, len, path, err);
    free(data);
    return doc;
}

json_t *yj_root(const struct yj_doc *doc)
{
    return doc ? doc->root : NULL;
}

const char *yj_name(const struct yj_doc *doc)
{
    return doc ? doc->name : NULL;
}

int yj_loc_key(const struct yj_doc *doc, const json_t *obj, const char *key, int *line, int *col)
{
    const struct yj_ent *e = doc && obj && key ? ent_find(doc, obj, key, 0) : NULL;
    *line = e ? e->kline : 0;
    *col = e ? e->kcol : 0;
    return e ? 0 : -WEIR_ENOTFOUND;
}

int yj_loc_value(const struct yj_doc *doc, const json_t *obj, const char *key, int *line, int *col)
{
    const struct yj_ent *e = doc && obj && key ? ent_find(doc, obj, key, 0) : NULL;
    *line = e ? e->vline : 0;
    *col = e ? e->vcol : 0;
    return e ? 0 : -WEIR_ENOTFOUND;
}

int yj_loc_index(const struct yj_doc *doc, const json_t *arr, size_t i, int *line, int *col)
{
    const struct yj_ent *e = doc && arr ? ent_find(doc, arr, NULL, i) : NULL;
    *line = e ? e->vline : 0;
    *col = e ? e->vcol : 0;
    return e ? 0 : -WEIR_ENOTFOUND;
}

void yj_loc_root(const struct yj_doc *doc, int *line, int *col)
{
    *line = doc ? doc->rline : 0;
    *col = doc ? doc->rcol : 0;
}

void yj_free(struct yj_doc *doc)
{
    if (!doc)
        return;
    json_decref(doc->root);
    json_decref(doc->keep);
    free(doc->name);
    free(doc->ents);
    free(doc->slots);
    arena_free(doc->strs);
    free(doc);
}
