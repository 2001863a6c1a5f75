/* warehouse/wh_exec.c - SELECT execution: FROM (table scans with column pruning, derived
 * tables, CTEs, hash joins), WHERE, GROUP BY with hash aggregation, HAVING, projection,
 * ORDER BY, DISTINCT, LIMIT/OFFSET, VALUES and UNION [ALL]. Every operator consumes and
 * produces whole column batches (struct wh_rel); rows are only addressed through index
 * vectors (selection, join pairs, sort permutations). */
#include "warehouse/wh_int.h"

#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"

#define MAX_JOIN_ROWS ((size_t)1 << 31)

/* ---- small helpers ---- */

static const char *first_bad_key(json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(*a, k);
        if (!ok)
            return k;
    }
    return NULL;
}

/* Does the statement mention `name` anywhere (as an identifier or `*`)? Used to read only
 * the columns a query can touch. Conservative: any string equal to the name counts. */
static bool mentions(json_t *j, const char *name)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (!strcmp(k, "A_Star"))
                return true;
            if (mentions(v, name))
                return true;
        }
        return false;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            if (mentions(v, name))
                return true;
        return false;
    }
    return json_is_string(j) && !strcmp(json_string_value(j), name);
}

static struct wh_rel *filter_rel(struct wh_q *q, struct wh_rel *rel, const struct wh_vec *pred)
{
    uint32_t *idx = wh__alloc(q, (rel->n ? rel->n : 1) * sizeof *idx);
    size_t m = 0;
    for (size_t r = 0; r < rel->n; r++)
        if (!pred->nul[r] && pred->i[r])
            idx[m++] = (uint32_t)r;
    if (m == rel->n)
        return rel;
    return wh__rel_gather(q, rel, idx, m);
}

static bool rows_eq(struct wh_vec **v, int nk, size_t a, size_t b)
{
    for (int k = 0; k < nk; k++) {
        if (v[k]->nul[a] != v[k]->nul[b])
            return false;
        if (!v[k]->nul[a] && wh__cmp_rows(v[k], a, v[k], b) != 0)
            return false;
    }
    return true;
}

static uint64_t row_hash(struct wh_vec **v, int nk, size_t r)
{
    uint64_t h = 0x12345;
    for (int k = 0; k < nk; k++)
        h = wh__hash_row(v[k], r, h);
    return h;
}

/* Groups rows [from, to): gid[r] gets a group number local to the range, first[g] the
 * range's first row of group g (an absolute row number). Returns the number of groups,
 * numbered in order of first appearance. */
/* group_range for one or two integer-backed keys: hashing and comparing inline. */
static size_t group_range_int(struct wh_q *q, struct wh_vec **keys, int nk, size_t from, size_t to,
                              uint32_t *gid, uint32_t *first)
{
    size_t n = to - from, cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    uint32_t *slots = wh__alloc(q, cap * sizeof *slots);
    memset(slots, 0xff, cap * sizeof *slots);
    const int64_t *a = keys[0]->i, *b = nk > 1 ? keys[1]->i : NULL;
    const uint8_t *an = keys[0]->nul, *bn = nk > 1 ? keys[1]->nul : NULL;
    size_t ng = 0;
    for (size_t r = from; r < to; r++) {
        uint64_t x = an[r] ? 0x5bd1e995u : (uint64_t)a[r];
        uint64_t h = x * 0x9e3779b97f4a7c15ULL;
        if (b)
            h = (h ^ (bn[r] ? 0x5bd1e995u : (uint64_t)b[r])) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
        size_t s = (size_t)h & (cap - 1);
        for (;;) {
            uint32_t g = slots[s];
            if (g == UINT32_MAX) {
                slots[s] = (uint32_t)ng;
                first[ng] = (uint32_t)r;
                gid[r] = (uint32_t)ng++;
                break;
            }
            size_t f = first[g];
            if (an[f] == an[r] && (an[r] || a[f] == a[r]) &&
                (!b || (bn[f] == bn[r] && (bn[r] || b[f] == b[r])))) {
                gid[r] = g;
                break;
            }
            s = (s + 1) & (cap - 1);
        }
    }
    return ng;
}

static size_t group_range(struct wh_q *q, struct wh_vec **keys, int nk, size_t from, size_t to,
                          uint32_t *gid, uint32_t *first)
{
    if ((nk == 1 || nk == 2) && keys[0]->i && !keys[0]->m && !keys[0]->f &&
        (nk == 1 || (keys[1]->i && !keys[1]->m && !keys[1]->f)))
        return group_range_int(q, keys, nk, from, to, gid, first);
    size_t n = to - from, cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    uint32_t *slots = wh__alloc(q, cap * sizeof *slots);
    memset(slots, 0xff, cap * sizeof *slots);
    size_t ng = 0;
    for (size_t r = from; r < to; r++) {
        size_t s = row_hash(keys, nk, r) & (cap - 1);
        for (;;) {
            uint32_t g = slots[s];
            if (g == UINT32_MAX) {
                slots[s] = (uint32_t)ng;
                first[ng] = (uint32_t)r;
                gid[r] = (uint32_t)ng++;
                break;
            }
            if (rows_eq(keys, nk, first[g], r)) {
                gid[r] = g;
                break;
            }
            s = (s + 1) & (cap - 1);
        }
    }
    return ng;
}

struct group_par {
    struct wh_vec **keys;
    int nk;
    uint32_t *gid;
    uint32_t **first; /* per chunk */
    size_t *ng;       /* per chunk */
    uint32_t **map;   /* per chunk: local group -> global group */
    size_t chunk;
};

static void group_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    struct group_par *gp = arg;
    gp->first[ci] = wh__alloc(sub, (to - from + 1) * sizeof **gp->first);
    gp->ng[ci] = group_range(sub, gp->keys, gp->nk, from, to, gp->gid, gp->first[ci]);
}

static void regroup_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    struct group_par *gp = arg;
    const uint32_t *m = gp->map[ci];
    for (size_t r = from; r < to; r++)
        gp->gid[r] = m[gp->gid[r]];
}

/* GROUP BY one dictionary vector: rows are grouped by their entry's canonical code (equal
 * entries share one), found once per entry; each row range records the first row of every
 * code, and groups are numbered by first row, as group_range numbers them. */
struct dict_group {
    const struct wh_vec *v;
    const uint32_t *canon; /* entry -> canonical code; NULL rows use code nc */
    uint32_t nc;
    uint32_t **firstrow;  /* per chunk, per code */
    const uint32_t *gnum; /* code -> group */
    uint32_t *gid;
};

static void dict_group_first(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    struct dict_group *dg = arg;
    uint32_t *fr = wh__alloc(sub, ((size_t)dg->nc + 1) * sizeof *fr);
    memset(fr, 0xff, ((size_t)dg->nc + 1) * sizeof *fr);
    const struct wh_vec *v = dg->v;
    for (size_t r = from; r < to; r++) {
        uint32_t k = v->nul[r] ? dg->nc : dg->canon[v->dc[r]];
        if (fr[k] == UINT32_MAX)
            fr[k] = (uint32_t)r;
    }
    dg->firstrow[ci] = fr;
}

static void dict_group_assign(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    (void)ci;
    struct dict_group *dg = arg;
    const struct wh_vec *v = dg->v;
    for (size_t r = from; r < to; r++)
        dg->gid[r] = dg->gnum[v->nul[r] ? dg->nc : dg->canon[v->dc[r]]];
}

static int u32_pair_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Canonical codes of a dictionary's entries: equal strings get the same code, numbered
 * from 0; returns their number. NULL entries (unused) get code 0. */
static uint32_t dict_canon(struct wh_q *q, const struct wh_vec *v, uint32_t *canon)
{
    size_t cap = 16;
    while (cap < (size_t)v->ndict * 2)
        cap <<= 1;
    uint32_t *slot = wh__alloc(q, cap * sizeof *slot);
    memset(slot, 0xff, cap * sizeof *slot);
    uint32_t *rep = wh__alloc(q, ((size_t)v->ndict + 1) * sizeof *rep); /* code -> entry */
    uint32_t nc = 0;
    for (uint32_t d = 0; d < v->ndict; d++) {
        const char *str = v->dict[d];
        if (!str) {
            canon[d] = 0;
            continue;
        }
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const char *p = str; *p; p++)
            h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
        size_t at = (size_t)(h ^ (h >> 29)) & (cap - 1);
        for (;;) {
            uint32_t c = slot[at];
            if (c == UINT32_MAX) {
                slot[at] = nc;
                rep[nc] = d;
                canon[d] = nc++;
                break;
            }
            if (!strcmp(v->dict[rep[c]], str)) {
                canon[d] = c;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
    }
    return nc;
}

static size_t group_dict(struct wh_q *q, const struct wh_vec *v, size_t n, uint32_t *gid,
                         uint32_t *first)
{
    struct dict_group dg = { .v = v, .gid = gid };
    uint32_t *canon = wh__alloc(q, ((size_t)v->ndict + 1) * sizeof *canon);
    dg.nc = dict_canon(q, v, canon);
    dg.canon = canon;
    size_t nch = wh__par_chunks(q, n, 2 * WH_GRANULE);
    dg.firstrow = wh__calloc(q, nch + 1, sizeof *dg.firstrow);
    wh__par_rows(q, n, nch, dict_group_first, &dg);
    /* (first row, code) of every code that occurs, in order of first row. */
    uint32_t *pairs = wh__alloc(q, ((size_t)dg.nc + 1) * 2 * sizeof *pairs);
    size_t np = 0;
    for (uint32_t k = 0; k <= dg.nc; k++) {
        uint32_t fr = UINT32_MAX;
        for (size_t c = 0; c < nch && fr == UINT32_MAX; c++)
            fr = dg.firstrow[c][k]; /* chunks are in row order: the first hit is the least */
        if (fr != UINT32_MAX) {
            pairs[2 * np] = fr;
            pairs[2 * np + 1] = k;
            np++;
        }
    }
    qsort(pairs, np, 2 * sizeof *pairs, u32_pair_cmp);
    uint32_t *gnum = wh__alloc(q, ((size_t)dg.nc + 1) * sizeof *gnum);
    for (size_t g = 0; g < np; g++) {
        gnum[pairs[2 * g + 1]] = (uint32_t)g;
        first[g] = pairs[2 * g];
    }
    dg.gnum = gnum;
    wh__par_rows(q, n, nch, dict_group_assign, &dg);
    return np;
}

/* Assigns each row a group id (rows equal on all keys, NULLs equal, share one). Returns
 * the number of groups, numbered in order of first appearance; first[g] is the first row
 * of group g. With several threads, each range of rows is grouped on its own, then the
 * ranges' groups are merged in range order, which gives the same numbering. */
static size_t group_rows(struct wh_q *q, struct wh_vec **keys, int nk, size_t n, uint32_t *gid,
                         uint32_t **first_out)
{
    uint32_t *first = wh__alloc(q, (n ? n : 1) * sizeof *first);
    if (nk == 1 && keys[0]->dc && keys[0]->n == n && (size_t)keys[0]->ndict * 4 <= n) {
        *first_out = first;
        return group_dict(q, keys[0], n, gid, first);
    }
    /* Several keys: a dictionary key is replaced by its entries' canonical codes, so rows
     * hash and compare as integers (same groups, same numbering). */
    struct wh_vec **ck = NULL;
    for (int k = 0; k < nk; k++) {
        const struct wh_vec *v = keys[k];
        if (!v->dc || v->n != n || (size_t)v->ndict * 2 > n)
            continue;
        if (!ck) {
            ck = wh__calloc(q, (size_t)nk + 1, sizeof *ck);
            memcpy(ck, keys, (size_t)nk * sizeof *ck);
        }
        uint32_t *canon = wh__alloc(q, ((size_t)v->ndict + 1) * sizeof *canon);
        dict_canon(q, v, canon);
        struct wh_vec *iv = wh__calloc(q, 1, sizeof *iv);
        iv->type = WH_T_INT8;
        iv->n = n;
        iv->nul = v->nul;
        iv->i = wh__alloc(q, (n ? n : 1) * sizeof *iv->i);
        for (size_t r = 0; r < n; r++)
            iv->i[r] = v->nul[r] ? 0 : canon[v->dc[r]];
        ck[k] = iv;
    }
    if (ck)
        keys = ck;
    size_t nch = wh__par_chunks(q, n, 2 * WH_GRANULE);
    if (nch <= 1) {
        *first_out = first;
        return group_range(q, keys, nk, 0, n, gid, first);
    }
    struct group_par gp = { .keys = keys, .nk = nk, .gid = gid };
    gp.first = wh__calloc(q, nch + 1, sizeof *gp.first);
    gp.ng = wh__calloc(q, nch + 1, sizeof *gp.ng);
    gp.map = wh__calloc(q, nch + 1, sizeof *gp.map);
    wh__par_rows(q, n, nch, group_chunk, &gp);
    /* Merge: the chunks' first rows, in order, grouped once more. */
    size_t nrep = 0;
    for (size_t c = 0; c < nch; c++)
        nrep += gp.ng[c];
    uint32_t *reps = wh__alloc(q, (nrep + 1) * sizeof *reps);
    size_t at = 0;
    for (size_t c = 0; c < nch; c++)
        for (size_t g = 0; g < gp.ng[c]; g++)
            reps[at++] = gp.first[c][g];
    struct wh_vec **rk = wh__calloc(q, (size_t)nk + 1, sizeof *rk);
    for (int k = 0; k < nk; k++)
        rk[k] = wh__vec_gather(q, keys[k], reps, nrep);
    uint32_t *rgid = wh__alloc(q, (nrep + 1) * sizeof *rgid);
    uint32_t *rfirst = wh__alloc(q, (nrep + 1) * sizeof *rfirst);
    size_t ng = group_range(q, rk, nk, 0, nrep, rgid, rfirst);
    for (size_t g = 0; g < ng; g++)
        first[g] = reps[rfirst[g]];
    at = 0;
    for (size_t c = 0; c < nch; c++) {
        gp.map[c] = rgid + at;
        at += gp.ng[c];
    }
    wh__par_rows(q, n, nch, regroup_chunk, &gp);
    *first_out = first;
    return ng;
}

/* ---- FROM ---- */

static struct wh_rel *select_body(struct wh_q *q, json_t *b);

static void apply_alias(struct wh_q *q, struct wh_rel *rel, json_t *alias, const char *deflt)
{
    const char *qual = alias ? json_string_value(json_object_get(alias, "aliasname")) : deflt;
    json_t *cn = alias ? json_object_get(alias, "colnames") : NULL;
    if (json_array_size(cn) > (size_t)rel->ncols)
        wh__fail(q, WEIR_EINVAL, -1,
                 "table \"%s\" has %d columns available but %zu columns "
                 "specified",
                 qual, rel->ncols, json_array_size(cn));
    for (int c = 0; c < rel->ncols; c++) {
        rel->quals[c] = qual;
        if ((size_t)c < json_array_size(cn))
            rel->names[c] = wh__sval(json_array_get(cn, (size_t)c));
    }
}

static struct wh_rel *copy_rel_header(struct wh_q *q, const struct wh_rel *r)
{
    struct wh_rel *o = wh__rel_new(q, r->ncols, r->n);
    memcpy(o->cols, r->cols, (size_t)r->ncols * sizeof *o->cols);
    memcpy(o->names, r->names, (size_t)r->ncols * sizeof *o->names);
    memcpy(o->quals, r->quals, (size_t)r->ncols * sizeof *o->quals);
    return o;
}

/* Runs a view's query. Positions in its errors refer to the view's own text. */
static struct wh_rel *view_rel(struct wh_q *q, struct wh_view *v, json_t *alias)
{
    if (q->view_depth >= 16)
        wh__fail(q, WEIR_EINVAL, -1, "views nested more than 16 deep (a cycle?) at \"%s\"",
                 v->name);
    PgQueryParseResult pr = pg_query_parse(v->sql);
    if (pr.error) {
        pg_query_free_parse_result(pr);
        wh__fail(q, WEIR_EIO, -1, "stored definition of view \"%s\" does not parse", v->name);
    }
    json_t *tree = json_loads(pr.parse_tree, 0, NULL);
    pg_query_free_parse_result(pr);
    wh__hold_json(q, tree);
    json_t *vs = json_object_get(
        json_object_get(json_array_get(json_object_get(tree, "stmts"), 0), "stmt"), "ViewStmt");
    json_t *sel = json_object_get(json_object_get(vs, "query"), "SelectStmt");
    if (!sel)
        wh__fail(q, WEIR_EIO, -1, "stored definition of view \"%s\" is not a view", v->name);
    const char *saved_sql = q->sql;
    struct wh_cte *saved_ctes = q->ctes;
    q->sql = v->sql;
    q->ctes = NULL; /* a view sees tables, not the caller's CTEs */
    int saved_ncorr = q->ncorr, saved_agg = q->agg_depth;
    q->ncorr = 0; /* nor the columns of enclosing queries */
    q->agg_depth = 0;
    q->view_depth++;
    struct wh_rel *r = copy_rel_header(q, select_body(q, sel));
    q->view_depth--;
    q->ncorr = saved_ncorr;
    q->agg_depth = saved_agg;
    q->sql = saved_sql;
    q->ctes = saved_ctes;
    json_t *cn = json_object_get(vs, "aliases");
    for (size_t k = 0; k < json_array_size(cn) && (int)k < r->ncols; k++)
        r->names[k] = wh__sval(json_array_get(cn, k));
    apply_alias(q, r, alias, v->name);
    return r;
}

static void set_text(struct wh_vec *v, size_t r, const char *s)
{
    v->s[r] = s;
    v->nul[r] = s == NULL;
}

/* information_schema.tables and .columns, built from the catalog. */
static struct wh_rel *info_schema(struct wh_q *q, const char *name, int loc)
{
    struct wh_db *db = q->db;
    if (!strcmp(name, "tables")) {
        size_t n = db->ntables + db->nviews;
        struct wh_rel *r = wh__rel_new(q, 4, n);
        static const char *const cn[] = { "table_catalog", "table_schema", "table_name",
                                          "table_type" };
        for (int c = 0; c < 4; c++) {
            r->names[c] = cn[c];
            r->cols[c] = wh__vec_new(q, WH_T_TEXT, 0, n);
        }
        for (size_t k = 0; k < n; k++) {
            bool view = k >= db->ntables;
            set_text(r->cols[0], k, "weir");
            set_text(
                r->cols[1], k,
                wh__strdup(q, view ? db->views[k - db->ntables]->schema : db->tables[k]->schema));
            set_text(r->cols[2], k,
                     wh__strdup(q, view ? db->views[k - db->ntables]->name : db->tables[k]->name));
            set_text(r->cols[3], k, view ? "VIEW" : "BASE TABLE");
        }
        return r;
    }
    if (!strcmp(name, "columns")) {
        size_t n = 0;
        for (size_t k = 0; k < db->ntables; k++)
            n += (size_t)db->tables[k]->ncols;
        struct wh_rel *r = wh__rel_new(q, 9, n);
        static const char *const cn[] = { "table_catalog", "table_schema",      "table_name",
                                          "column_name",   "ordinal_position",  "data_type",
                                          "is_nullable",   "numeric_precision", "numeric_scale" };
        for (int c = 0; c < 9; c++) {
            r->names[c] = cn[c];
            r->cols[c] = wh__vec_new(q, c == 4 || c >= 7 ? WH_T_INT4 : WH_T_TEXT, 0, n);
        }
        size_t row = 0;
        for (size_t k = 0; k < db->ntables; k++) {
            struct wh_table *t = db->tables[k];
            for (int c = 0; c < t->ncols; c++, row++) {
                const struct wh_coldef *cd = &t->cols[c];
                set_text(r->cols[0], row, "weir");
                set_text(r->cols[1], row, wh__strdup(q, t->schema));
                set_text(r->cols[2], row, wh__strdup(q, t->name));
                set_text(r->cols[3], row, wh__strdup(q, cd->name));
                r->cols[4]->i[row] = c + 1;
                set_text(r->cols[5], row,
                         cd->type == WH_T_TEXT && cd->typmod > 0 ? "character varying"
                                                                 : wh_type_name(cd->type));
                set_text(r->cols[6], row, cd->notnull ? "NO" : "YES");
                r->cols[7]->nul[row] = cd->type != WH_T_NUMERIC;
                r->cols[7]->i[row] = cd->typmod;
                r->cols[8]->nul[row] = cd->type != WH_T_NUMERIC;
                r->cols[8]->i[row] = cd->scale;
            }
        }
        return r;
    }
    wh__fail(q, WEIR_ENOTFOUND, loc, "relation \"information_schema.%s\" does not exist", name);
}

static void split_and(json_t *j, json_t **out, int *n, int max);

/* One WHERE conjunct `col op constant` as a pruning predicate, if it converts exactly into
 * the column's representation. Returns false when it does not qualify. */
static bool prune_pred(struct wh_q *q, struct wh_table *t, const char *qual, json_t *colref,
                       json_t *cnode, int op, struct wh_prune *out)
{
    json_t *f = json_object_get(json_object_get(colref, "ColumnRef"), "fields");
    size_t nf = json_array_size(f);
    if (nf < 1 || nf > 2)
        return false;
    const char *name = wh__sval(json_array_get(f, nf - 1));
    if (!name || (nf == 2 && (!wh__sval(json_array_get(f, 0)) ||
                              strcmp(wh__sval(json_array_get(f, 0)), qual))))
        return false;
    int col = -1;
    for (int c = 0; c < t->ncols; c++)
        if (!strcmp(t->cols[c].name, name))
            col = c;
    json_t *inner = json_object_get(json_object_get(cnode, "TypeCast"), "arg");
    if (col < 0 || !(json_object_get(cnode, "A_Const") || json_object_get(inner, "A_Const")))
        return false;
    struct wh_rel *one = wh__rel_new(q, 0, 1);
    struct wh_bind bc = { .rel = one, .agg_where = "WHERE" };
    struct wh_expr *e = wh__bind(q, &bc, cnode);
    if (e->kind != E_CONST || e->cval->nul[0])
        return false;
    const struct wh_vec *v = e->cval;
    const struct wh_coldef *cd = &t->cols[col];
    uint8_t ct = cd->type, vt = v->type;
    bool vint = vt == WH_T_INT2 || vt == WH_T_INT4 || vt == WH_T_INT8;
    out->col = col;
    out->op = op;
    if (ct == WH_T_INT2 || ct == WH_T_INT4 || ct == WH_T_INT8) {
        if (!vint)
            return false;
        out->iv = v->i[0];
        return true;
    }
    if (ct == WH_T_NUMERIC) {
        int sc = vt == WH_T_NUMERIC ? v->scale : 0;
        if ((!vint && vt != WH_T_NUMERIC) || sc > cd->scale)
            return false;
        return !__builtin_mul_overflow(v->i[0], wh__pow10(cd->scale - sc), &out->iv);
    }
    if (ct == WH_T_FLOAT4 || ct == WH_T_FLOAT8) {
        if (ct == WH_T_FLOAT4 || !wh__type_is_numeric(vt))
            return false; /* real columns compare after widening: keep it simple */
        out->fv = v->f                 ? v->f[0]
                  : vt == WH_T_NUMERIC ? (double)v->i[0] / (double)wh__pow10(v->scale)
                                       : (double)v->i[0];
        return true;
    }
    if (ct == WH_T_DATE || ct == WH_T_TS || ct == WH_T_TSTZ) {
        if (vt == WH_T_UNKNOWN && v->s) {
            double fv;
            return wh__parse_val(v->s[0], ct, 0, &out->iv, &fv);
        }
        if (vt == ct) {
            out->iv = v->i[0];
            return true;
        }
        if (vt == WH_T_DATE && ct != WH_T_DATE) {
            out->iv = v->i[0] * WH_US_PER_DAY;
            return true;
        }
    }
    return false;
}

static int collect_prunes(struct wh_q *q, struct wh_table *t, const char *qual, json_t *where,
                          struct wh_prune *out, int max)
{
    json_t *conj[64];
    int nconj = 0, n = 0;
    split_and(where, conj, &nconj, 64);
    for (int k = 0; k < nconj && n + 2 <= max; k++) {
        json_t *ae = json_object_get(conj[k], "A_Expr");
        const char *kind = json_string_value(json_object_get(ae, "kind"));
        json_t *l = json_object_get(ae, "lexpr"), *r = json_object_get(ae, "rexpr");
        if (!kind || !l || !r)
            continue;
        if (!strcmp(kind, "AEXPR_BETWEEN")) {
            json_t *items = json_object_get(json_object_get(r, "List"), "items");
            if (json_object_get(l, "ColumnRef") && json_array_size(items) == 2) {
                n += prune_pred(q, t, qual, l, json_array_get(items, 0), OP_GE, &out[n]);
                n += prune_pred(q, t, qual, l, json_array_get(items, 1), OP_LE, &out[n]);
            }
            continue;
        }
        if (strcmp(kind, "AEXPR_OP"))
            continue;
        json_t *nm = json_object_get(ae, "name");
        const char *op = wh__sval(json_array_get(nm, json_array_size(nm) - 1));
        static const struct {
            const char *s;
            int op, flip;
        } ops[] = { { "=", OP_EQ, OP_EQ },
                    { "<", OP_LT, OP_GT },
                    { "<=", OP_LE, OP_GE },
                    { ">", OP_GT, OP_LT },
                    { ">=", OP_GE, OP_LE } };
        for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++) {
            if (strcmp(op, ops[i].s))
                continue;
            if (json_object_get(l, "ColumnRef"))
                n += prune_pred(q, t, qual, l, r, ops[i].op, &out[n]);
            else if (json_object_get(r, "ColumnRef"))
                n += prune_pred(q, t, qual, r, l, ops[i].flip, &out[n]);
        }
    }
    return n;
}

static struct wh_rel *scan_rangevar(struct wh_q *q, json_t *b, json_t *stmt)
{
    const char *schema = json_string_value(json_object_get(b, "schemaname"));
    const char *name = json_string_value(json_object_get(b, "relname"));
    const char *cat = json_string_value(json_object_get(b, "catalogname"));
    int loc = (int)json_integer_value(json_object_get(b, "location"));
    json_t *alias = json_object_get(b, "alias");
    (void)cat; /* "db"."schema"."name": the database is the open one */
    if (!schema)
        for (struct wh_cte *c = q->ctes; c; c = c->next)
            if (!strcmp(c->name, name)) {
                struct wh_rel *r = copy_rel_header(q, c->rel);
                apply_alias(q, r, alias, name);
                return r;
            }
    if (schema && !strcmp(schema, "information_schema")) {
        struct wh_rel *r = info_schema(q, name, loc);
        apply_alias(q, r, alias, name);
        return r;
    }
    struct wh_view *view = wh__view_find(q->db, schema ? schema : "public", name);
    if (view)
        return view_rel(q, view, alias);
    struct wh_table *t = wh__table_find(q->db, schema ? schema : "public", name);
    if (!t) {
        if (schema)
            wh__fail(q, WEIR_ENOTFOUND, loc, "relation \"%s.%s\" does not exist", schema, name);
        wh__fail(q, WEIR_ENOTFOUND, loc, "relation \"%s\" does not exist", name);
    }
    bool *want = wh__calloc(q, (size_t)t->ncols, sizeof *want);
    bool any = false;
    for (int c = 0; c < t->ncols; c++)
        any |= want[c] = mentions(stmt, t->cols[c].name);
    (void)any; /* count(*) needs no column: the relation knows its row count */
    /* Granule pruning: only when this table is the whole FROM clause, so every WHERE
     * conjunct filters its rows directly. */
    struct wh_prune pr[32];
    int npr = 0;
    json_t *from = json_object_get(stmt, "fromClause");
    json_t *where = json_object_get(stmt, "whereClause");
    if (where && json_array_size(from) == 1 &&
        json_object_get(json_array_get(from, 0), "RangeVar") == b) {
        const char *qual = alias ? json_string_value(json_object_get(alias, "aliasname")) : name;
        npr = collect_prunes(q, t, qual ? qual : name, where, pr, 32);
    }
    struct wh_rel *r = wh__table_scan_pruned(q, t, want, name, pr, npr);
    apply_alias(q, r, alias, name);
    /* Unread columns stay named so that errors say "not loaded" instead of "missing". */
    return r;
}

/* Which sides a parse tree's column references resolve in: bit 0 left, bit 1 right. */
static int ref_sides(json_t *j, const struct wh_rel *L, const struct wh_rel *R)
{
    int m = 0;
    if (json_is_object(j)) {
        json_t *cr = json_object_get(j, "ColumnRef");
        if (cr) {
            json_t *f = json_object_get(cr, "fields");
            size_t nf = json_array_size(f);
            const char *name = wh__sval(json_array_get(f, nf - 1));
            const char *qual = nf >= 2 ? wh__sval(json_array_get(f, nf - 2)) : NULL;
            for (int s = 0; s < 2; s++) {
                const struct wh_rel *rel = s ? R : L;
                for (int c = 0; name && c < rel->ncols; c++)
                    if (!strcmp(rel->names[c], name) &&
                        (!qual || (rel->quals[c] && !strcmp(rel->quals[c], qual))))
                        m |= 1 << s;
            }
            return m ? m : 4;
        }
        if (json_object_get(j, "SubLink"))
            return 4;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
            m |= ref_sides(v, L, R);
        return m;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            m |= ref_sides(v, L, R);
    }
    return m;
}

static void split_and(json_t *j, json_t **out, int *n, int max)
{
    json_t *be = json_object_get(j, "BoolExpr");
    if (be && !strcmp(json_string_value(json_object_get(be, "boolop")), "AND_EXPR")) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(be, "args"), i, v)
            split_and(v, out, n, max);
        return;
    }
    if (*n < max)
        out[(*n)++] = j;
}

static struct wh_rel *concat_rels(struct wh_q *q, const struct wh_rel *L, const uint32_t *li,
                                  const struct wh_rel *R, const uint32_t *ri, size_t n)
{
    struct wh_rel *o = wh__rel_new(q, L->ncols + R->ncols, n);
    for (int c = 0; c < L->ncols; c++) {
        o->names[c] = L->names[c];
        o->quals[c] = L->quals[c];
        o->cols[c] = !L->cols[c] ? NULL : li ? wh__vec_gather(q, L->cols[c], li, n) : L->cols[c];
    }
    for (int c = 0; c < R->ncols; c++) {
        o->names[L->ncols + c] = R->names[c];
        o->quals[L->ncols + c] = R->quals[c];
        o->cols[L->ncols + c] = R->cols[c] ? wh__vec_gather(q, R->cols[c], ri, n) : NULL;
    }
    return o;
}

struct pairs {
    uint32_t *l, *r;
    size_t n, cap;
};

static void pair_add(struct wh_q *q, struct pairs *p, uint32_t l, uint32_t r)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 1024;
        if (nc > MAX_JOIN_ROWS)
            wh__fail(q, WEIR_ETOOBIG, -1, "join result exceeds %zu rows", MAX_JOIN_ROWS);
        uint32_t *nl = wh__alloc(q, nc * sizeof *nl), *nr = wh__alloc(q, nc * sizeof *nr);
        if (p->n) {
            memcpy(nl, p->l, p->n * sizeof *nl);
            memcpy(nr, p->r, p->n * sizeof *nr);
        }
        p->l = nl;
        p->r = nr;
        p->cap = nc;
    }
    p->l[p->n] = l;
    p->r[p->n++] = r;
}

/* ---- hash join ----
 * Build on the right input, probe with the left, both on the pool. The build hashes row
 * ranges in parallel, then links the rows into the buckets of one slice of the table per
 * task, each in descending row order, so every chain lists its rows ascending whatever the
 * thread count. The probe gives each range of left rows its own pair list; the lists are
 * concatenated in range order: pairs come out ordered by left row, then right row, exactly
 * as one thread makes them. A left key that is a dictionary vector is looked up once per
 * entry. */
struct hj {
    struct wh_vec **lk, **rk;
    int nk;
    size_t cap, nparts;
    uint64_t *h; /* build: per right row, UINT64_MAX for a NULL key */
    uint32_t *head, *next;
    size_t nr;
    /* dictionary probe: entry d's matches are mlist[moff[d] .. moff[d + 1]) */
    const uint32_t *moff, *mlist;
    struct pairs *out; /* per chunk */
};

static void hj_hash_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    (void)ci;
    struct hj *j = arg;
    for (size_t r = from; r < to; r++) {
        bool nul = false;
        for (int k = 0; k < j->nk; k++)
            nul |= j->rk[k]->nul[r];
        j->h[r] = nul ? UINT64_MAX : row_hash(j->rk, j->nk, r) & (j->cap - 1);
    }
}

static void hj_link_task(void *arg, size_t t)
{
    struct hj *j = arg;
    uint64_t lo = j->cap / j->nparts * t, hi = j->cap / j->nparts * (t + 1);
    for (size_t r = j->nr; r-- > 0;) {
        uint64_t s = j->h[r];
        if (s < lo || s >= hi)
            continue;
        j->next[r] = j->head[s];
        j->head[s] = (uint32_t)r;
    }
}

static void hj_probe_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    struct hj *j = arg;
    struct pairs *p = &j->out[ci];
    if (j->moff) {
        const struct wh_vec *v = j->lk[0];
        for (size_t l = from; l < to; l++) {
            if (v->nul[l])
                continue;
            uint32_t d = v->dc[l];
            for (uint32_t k = j->moff[d]; k < j->moff[d + 1]; k++)
                pair_add(sub, p, (uint32_t)l, j->mlist[k]);
        }
        return;
    }
    for (size_t l = from; l < to; l++) {
        bool nul = false;
        for (int k = 0; k < j->nk; k++)
            nul |= j->lk[k]->nul[l];
        if (nul)
            continue;
        size_t s = row_hash(j->lk, j->nk, l) & (j->cap - 1);
        for (uint32_t r = j->head[s]; r != UINT32_MAX; r = j->next[r]) {
            bool eq = true;
            for (int k = 0; k < j->nk && eq; k++)
                eq = wh__cmp_rows(j->lk[k], l, j->rk[k], r) == 0;
            if (eq)
                pair_add(sub, p, (uint32_t)l, r);
        }
    }
}

static void hash_join(struct wh_q *q, const struct wh_rel *L, const struct wh_rel *R,
                      struct wh_vec **lk, struct wh_vec **rk, int nk, struct pairs *out)
{
    struct hj j = { .lk = lk, .rk = rk, .nk = nk, .nr = R->n };
    j.cap = 16;
    while (j.cap < R->n * 2)
        j.cap <<= 1;
    j.head = wh__alloc(q, j.cap * sizeof *j.head);
    j.next = wh__alloc(q, (R->n ? R->n : 1) * sizeof *j.next);
    j.h = wh__alloc(q, (R->n ? R->n : 1) * sizeof *j.h);
    memset(j.head, 0xff, j.cap * sizeof *j.head);
    size_t nch = wh__par_chunks(q, R->n, 2 * WH_GRANULE);
    wh__par_rows(q, R->n, nch, hj_hash_chunk, &j);
    j.nparts = nch > 1 ? (size_t)wh__pool_size(wh__db_pool(q->db)) * 2 : 1;
    while (j.nparts > 1 && j.cap % j.nparts)
        j.nparts--;
    if (j.nparts > 1)
        wh__pool_run(wh__db_pool(q->db), j.nparts, hj_link_task, &j);
    else
        hj_link_task(&j, 0);
    const struct wh_vec *lv = lk[0];
    if (nk == 1 && lv->dc && lv->n == L->n && (size_t)lv->ndict * 4 <= L->n) {
        /* Each dictionary entry's matches, found once. */
        struct wh_vec *ev = wh__vec_new(q, lv->type, lv->scale, (size_t)lv->ndict + 1);
        for (uint32_t d = 0; d < lv->ndict; d++) {
            ev->s[d] = lv->dict[d];
            ev->nul[d] = lv->dict[d] == NULL;
        }
        uint32_t *moff = wh__alloc(q, ((size_t)lv->ndict + 2) * sizeof *moff);
        struct pairs ml = { 0 };
        for (uint32_t d = 0; d < lv->ndict; d++) {
            moff[d] = (uint32_t)ml.n;
            if (ev->nul[d])
                continue;
            size_t s = row_hash(&ev, 1, d) & (j.cap - 1);
            for (uint32_t r = j.head[s]; r != UINT32_MAX; r = j.next[r])
                if (wh__cmp_rows(ev, d, rk[0], r) == 0)
                    pair_add(q, &ml, d, r);
        }
        moff[lv->ndict] = (uint32_t)ml.n;
        j.moff = moff;
        j.mlist = ml.r;
    }
    nch = wh__par_chunks(q, L->n, 2 * WH_GRANULE);
    j.out = wh__calloc(q, nch + 1, sizeof *j.out);
    wh__par_rows(q, L->n, nch, hj_probe_chunk, &j);
    size_t total = 0;
    for (size_t c = 0; c < nch; c++)
        total += j.out[c].n;
    if (total > MAX_JOIN_ROWS)
        wh__fail(q, WEIR_ETOOBIG, -1, "join result exceeds %zu rows", MAX_JOIN_ROWS);
    if (nch == 1) {
        *out = j.out[0];
        return;
    }
    out->cap = total ? total : 1;
    out->l = wh__alloc(q, out->cap * sizeof *out->l);
    out->r = wh__alloc(q, out->cap * sizeof *out->r);
    out->n = 0;
    for (size_t c = 0; c < nch; c++) {
        if (j.out[c].n) {
            memcpy(out->l + out->n, j.out[c].l, j.out[c].n * sizeof *out->l);
            memcpy(out->r + out->n, j.out[c].r, j.out[c].n * sizeof *out->r);
        }
        out->n += j.out[c].n;
    }
}

static struct wh_rel *do_join(struct wh_q *q, struct wh_rel *L, struct wh_rel *R, const char *jt,
                              json_t *quals, int loc)
{
    bool left = !strcmp(jt, "JOIN_LEFT") || !strcmp(jt, "JOIN_FULL");
    bool right = !strcmp(jt, "JOIN_RIGHT") || !strcmp(jt, "JOIN_FULL");
    if (strcmp(jt, "JOIN_INNER") && !left && !right)
        wh__fail(q, WEIR_EINVAL, loc, "join type %s is not supported", jt);
    json_t *conj[64];
    int nconj = 0;
    if (quals)
        split_and(quals, conj, &nconj, 64);
    if (nconj == 64)
        wh__fail(q, WEIR_ETOOBIG, loc, "too many join conditions");
    struct wh_vec *lk[64], *rk[64];
    int nk = 0;
    json_t *resid[64];
    int nres = 0;
    struct wh_bind bl = { .rel = L, .agg_where = "JOIN conditions" };
    struct wh_bind br = { .rel = R, .agg_where = "JOIN conditions" };
    for (int k = 0; k < nconj; k++) {
        json_t *ae = json_object_get(conj[k], "A_Expr");
        const char *kind = ae ? json_string_value(json_object_get(ae, "kind")) : NULL;
        json_t *nm = ae ? json_object_get(ae, "name") : NULL;
        const char *op = nm ? wh__sval(json_array_get(nm, 0)) : NULL;
        if (kind && !strcmp(kind, "AEXPR_OP") && op && !strcmp(op, "=") &&
            json_object_get(ae, "lexpr")) {
            json_t *a = json_object_get(ae, "lexpr"), *b = json_object_get(ae, "rexpr");
            int sa = ref_sides(a, L, R), sb = ref_sides(b, L, R);
            if (sa == 2 && sb == 1) {
                json_t *t = a;
                a = b;
                b = t;
                sa = 1;
                sb = 2;
            }
            if (sa == 1 && sb == 2) {
                struct wh_expr *ea = wh__bind(q, &bl, a), *eb = wh__bind(q, &br, b);
                struct wh_expr *cmp = wh__binop(q, OP_EQ, ea, eb, wh__loc(conj[k]));
                struct wh_vec *va = wh__eval(q, cmp->args[0], L);
                struct wh_vec *vb = wh__eval(q, cmp->args[1], R);
                if (va->type != vb->type || va->scale != vb->scale) {
                    va = wh__cast(q, va, WH_T_FLOAT8, 0, loc);
                    vb = wh__cast(q, vb, WH_T_FLOAT8, 0, loc);
                }
                lk[nk] = va;
                rk[nk++] = vb;
                continue;
            }
        }
        resid[nres++] = conj[k];
    }
    struct pairs p = { 0 };
    if (nk) {
        hash_join(q, L, R, lk, rk, nk, &p);
    } else {
        if (L->n && R->n > MAX_JOIN_ROWS / L->n)
            wh__fail(q, WEIR_ETOOBIG, loc, "cross join of %zu x %zu rows is too large", L->n, R->n);
        for (size_t l = 0; l < L->n; l++)
            for (size_t r = 0; r < R->n; r++)
                pair_add(q, &p, (uint32_t)l, (uint32_t)r);
    }
    /* Every left row matched exactly once, in order (a lookup into a dimension): the left
     * columns are used as they are, not gathered. */
    bool ident = p.n == L->n;
    for (size_t k = 0; k < p.n && ident; k++)
        ident = p.l[k] == k;
    struct wh_rel *J = concat_rels(q, L, ident ? NULL : p.l, R, p.r, p.n);
    if (nres) {
        struct wh_bind bj = { .rel = J, .agg_where = "JOIN conditions" };
        struct wh_expr *e;
        if (nres == 1) {
            e = wh__bind(q, &bj, resid[0]);
        } else {
            e = wh__calloc(q, 1, sizeof *e);
            e->kind = E_AND;
            e->type = WH_T_BOOL;
            e->nargs = nres;
            e->args = wh__calloc(q, (size_t)nres, sizeof *e->args);
            for (int k = 0; k < nres; k++)
                e->args[k] = wh__bind(q, &bj, resid[k]);
        }
        if (e->type != WH_T_BOOL)
            wh__fail(q, WEIR_EINVAL, loc, "argument of JOIN/ON must be type boolean");
        struct wh_vec *pred = wh__eval(q, e, J);
        size_t m = 0;
        for (size_t k = 0; k < p.n; k++)
            if (!pred->nul[k] && pred->i[k]) {
                p.l[m] = p.l[k];
                p.r[m++] = p.r[k];
            }
        p.n = m;
    }
    if (!left && !right)
        return nres ? concat_rels(q, L, p.l, R, p.r, p.n) : J;
    uint8_t *lm = wh__calloc(q, L->n + 1, 1), *rm = wh__calloc(q, R->n + 1, 1);
    for (size_t k = 0; k < p.n; k++) {
        lm[p.l[k]] = 1;
        rm[p.r[k]] = 1;
    }
    if (left)
        for (size_t l = 0; l < L->n; l++)
            if (!lm[l])
                pair_add(q, &p, (uint32_t)l, UINT32_MAX);
    if (right)
        for (size_t r = 0; r < R->n; r++)
            if (!rm[r])
                pair_add(q, &p, UINT32_MAX, (uint32_t)r);
    return concat_rels(q, L, p.l, R, p.r, p.n);
}

static struct wh_rel *from_item(struct wh_q *q, json_t *node, json_t *stmt)
{
    const char *ty = wh__node_type(node);
    json_t *b = wh__node_body(node);
    if (!strcmp(ty, "RangeVar"))
        return scan_rangevar(q, b, stmt);
    if (!strcmp(ty, "RangeSubselect")) {
        if (json_is_true(json_object_get(b, "lateral")))
            wh__fail(q, WEIR_EINVAL, wh__loc(node), "LATERAL is not supported");
        json_t *sub = json_object_get(json_object_get(b, "subquery"), "SelectStmt");
        struct wh_rel *r = copy_rel_header(q, select_body(q, sub));
        json_t *alias = json_object_get(b, "alias");
        apply_alias(q, r, alias, NULL);
        return r;
    }
    if (!strcmp(ty, "JoinExpr")) {
        int loc = wh__loc(json_object_get(b, "larg"));
        if (json_is_true(json_object_get(b, "isNatural")))
            wh__fail(q, WEIR_EINVAL, loc, "NATURAL JOIN is not supported");
        if (json_object_get(b, "alias"))
            wh__fail(q, WEIR_EINVAL, loc, "an alias on a JOIN is not supported");
        struct wh_rel *L = from_item(q, json_object_get(b, "larg"), stmt);
        struct wh_rel *R = from_item(q, json_object_get(b, "rarg"), stmt);
        const char *jt = json_string_value(json_object_get(b, "jointype"));
        json_t *using = json_object_get(b, "usingClause");
        if (json_array_size(using)) {
            if (strcmp(jt, "JOIN_INNER") && strcmp(jt, "JOIN_LEFT"))
                wh__fail(q, WEIR_EINVAL, loc, "USING is only supported with INNER and LEFT JOIN");
            /* Rewrite USING (k) as ON l.k = r.k, then hide the right copy of k. */
            json_t *conj = json_array();
            size_t i;
            json_t *u;
            int *hide = wh__calloc(q, json_array_size(using), sizeof *hide);
            json_array_foreach(using, i, u) {
                const char *k = wh__sval(u);
                int lc = -1, rc = -1;
                for (int c = 0; c < L->ncols; c++)
                    if (!strcmp(L->names[c], k))
                        lc = c;
                for (int c = 0; c < R->ncols; c++)
                    if (!strcmp(R->names[c], k))
                        rc = c;
                if (lc < 0 || rc < 0) {
                    json_decref(conj);
                    wh__fail(q, WEIR_ENOTFOUND, loc,
                             "column \"%s\" specified in USING clause does not exist", k);
                }
                hide[i] = rc;
                json_array_append_new(
                    conj, json_pack("{s:{s:s,s:[{s:{s:s}}],s:{s:{s:[{s:{s:s}},{s:{s:s}}]}},"
                                    "s:{s:{s:[{s:{s:s}},{s:{s:s}}]}}}}",
                                    "A_Expr", "kind", "AEXPR_OP", "name", "String", "sval", "=",
                                    "lexpr", "ColumnRef", "fields", "String", "sval", "\x01L",
                                    "String", "sval", k, "rexpr", "ColumnRef", "fields", "String",
                                    "sval", "\x01R", "String", "sval", k));
            }
            /* Temporary qualifiers make the generated references unambiguous. */
            const char **lq = wh__calloc(q, (size_t)L->ncols + 1, sizeof *lq);
            const char **rq = wh__calloc(q, (size_t)R->ncols + 1, sizeof *rq);
            memcpy(lq, L->quals, (size_t)L->ncols * sizeof *lq);
            memcpy(rq, R->quals, (size_t)R->ncols * sizeof *rq);
            for (int c = 0; c < L->ncols; c++)
                L->quals[c] = "\x01L";
            for (int c = 0; c < R->ncols; c++)
                R->quals[c] = "\x01R";
            json_t *on = json_array_size(conj) == 1 ? json_incref(json_array_get(conj, 0))
                                                    : json_pack("{s:{s:s,s:O}}", "BoolExpr",
                                                                "boolop", "AND_EXPR", "args", conj);
            /* Errors inside do_join longjmp out; the arena owns the generated JSON. */
            wh__hold_json(q, json_pack("[o,o]", on, conj));
            struct wh_rel *J = do_join(q, L, R, jt, on, loc);
            for (int c = 0; c < L->ncols; c++)
                J->quals[c] = lq[c];
            for (int c = 0; c < R->ncols; c++)
                J->quals[L->ncols + c] = rq[c];
            for (size_t k = 0; k < json_array_size(using); k++)
                J->names[L->ncols + hide[k]] = wh__strdup(q, "\x01hidden");
            return J;
        }
        return do_join(q, L, R, jt, json_object_get(b, "quals"), loc);
    }
    if (!strcmp(ty, "RangeFunction"))
        wh__fail(q, WEIR_EINVAL, wh__loc(node), "functions in FROM are not supported");
    wh__fail(q, WEIR_EINVAL, wh__loc(node), "FROM item %s is not supported", ty);
}

/* ---- aggregation ---- */

struct agg {
    json_t *node; /* the {"FuncCall": ...} node */
    const char *name;
    bool star, distinct;
    int loc;
};

static void collect_aggs(struct wh_q *q, json_t *j, struct agg **aggs, int *n, int *cap)
{
    if (json_is_object(j)) {
        json_t *fc = json_object_get(j, "FuncCall");
        if (fc && wh__is_agg(fc)) {
            for (int k = 0; k < *n; k++)
                if (wh__json_eq((*aggs)[k].node, j))
                    return;
            if (*n == *cap) {
                int nc = *cap ? *cap * 2 : 8;
                struct agg *na = wh__calloc(q, (size_t)nc, sizeof *na);
                if (*n)
                    memcpy(na, *aggs, (size_t)*n * sizeof *na);
                *aggs = na;
                *cap = nc;
            }
            json_t *names = json_object_get(fc, "funcname");
            struct agg *a = &(*aggs)[(*n)++];
            a->node = j;
            a->name = wh__sval(json_array_get(names, json_array_size(names) - 1));
            a->star = json_is_true(json_object_get(fc, "agg_star"));
            a->distinct = json_is_true(json_object_get(fc, "agg_distinct"));
            a->loc = (int)json_integer_value(json_object_get(fc, "location"));
            static const char *const ok[] = { "funcname",     "args",       "agg_star",
                                              "agg_distinct", "funcformat", "location",
                                              "agg_filter",   NULL };
            const char *bad = first_bad_key(fc, ok);
            if (bad)
                wh__fail(q, WEIR_EINVAL, a->loc, "aggregate option %s is not supported", bad);
            return;
        }
        if (json_object_get(j, "SubLink") || json_object_get(j, "SelectStmt"))
            return;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
            collect_aggs(q, v, aggs, n, cap);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            collect_aggs(q, v, aggs, n, cap);
    }
}

#define AGG_CHUNK ((size_t)1 << 16)

/* One chunk's share of an ungrouped aggregate (agg_compute_in's fast path). */
struct agg1_part {
    int64_t cnt;
    __int128 is;
    double fs;
    uint32_t best; /* min / max: the chunk's first best row */
};

struct agg1 {
    const struct wh_vec *x;
    int kind; /* 0 count, 1 sum, 2 avg, 3 min, 4 max */
    struct agg1_part *p;
};

static void agg1_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    struct agg1 *a = arg;
    const struct wh_vec *x = a->x;
    struct agg1_part pt = { .best = UINT32_MAX };
    if (a->kind == 0) {
        for (size_t r = from; r < to; r++)
            pt.cnt += !x->nul[r];
    } else if (a->kind <= 2) {
        for (size_t r = from; r < to; r++) {
            if (x->nul[r])
                continue;
            pt.cnt++;
            if (x->f)
                pt.fs += x->f[r];
            else
                pt.is += x->i[r];
        }
    } else {
        int dir = a->kind == 3 ? 1 : -1;
        for (size_t r = from; r < to; r++) {
            if (x->nul[r])
                continue;
            pt.cnt++;
            if (pt.best == UINT32_MAX)
                pt.best = (uint32_t)r;
            else if (x->i && !x->f ? (dir > 0 ? x->i[r] < x->i[pt.best] : x->i[r] > x->i[pt.best])
                                   : wh__cmp_rows(x, r, x, pt.best) * dir < 0)
                pt.best = (uint32_t)r;
        }
    }
    a->p[ci] = pt;
}

static struct wh_vec *agg_compute_in(struct wh_q *q, const struct agg *ag, struct wh_rel *base,
                                     const uint32_t *gid, size_t ng)
{
    json_t *fc = json_object_get(ag->node, "FuncCall");
    json_t *args = json_object_get(fc, "args");
    size_t n = base->n, na = json_array_size(args);
    const char *name = ag->name;
    if (!gid && ag->star && !json_object_get(fc, "agg_filter") && !strcmp(name, "count")) {
        struct wh_vec *o = wh__vec_new(q, WH_T_INT8, 0, 1); /* count(*) of one group */
        o->i[0] = (int64_t)n;
        return o;
    }
    struct wh_bind bc = { .rel = base, .agg_where = "aggregate function calls" };
    struct wh_vec *x = NULL;
    bool is_sa = !strcmp(name, "string_agg");
    if (!ag->star) {
        if (na != (is_sa ? 2u : 1u))
            wh__fail(q, WEIR_EINVAL, ag->loc, "function %s takes %d argument(s)", name,
                     is_sa ? 2 : 1);
        struct wh_expr *e = wh__bind(q, &bc, json_array_get(args, 0));
        if (e->type == WH_T_UNKNOWN)
            e = wh__binop(q, OP_CONCAT, e, e, ag->loc)->args[0];
        if (e->type == WH_T_INTERVAL && strcmp(name, "count"))
            wh__fail(q, WEIR_EINVAL, ag->loc, "%s(interval) is not supported", name);
        x = wh__eval_par(q, e, base);
    } else if (strcmp(name, "count")) {
        wh__fail(q, WEIR_EINVAL, ag->loc, "%s(*) is not a valid aggregate", name);
    }
    /* One group, no FILTER, no DISTINCT: count, sum, avg, min and max of a number in
     * fixed 64Ki-row chunks on the pool, combined in chunk order (the same float rounding
     * for any thread count). */
    if (ng == 1 && x && !ag->distinct && !json_object_get(fc, "agg_filter") && !x->m && !x->s &&
        n >= 2 * AGG_CHUNK) {
        int kind = !strcmp(name, "count") ? 0
                   : !strcmp(name, "sum") ? 1
                   : !strcmp(name, "avg") ? 2
                   : !strcmp(name, "min") ? 3
                   : !strcmp(name, "max") ? 4
                                          : -1;
        if (kind >= 0 && (kind == 0 || wh__type_is_numeric(x->type) || kind >= 3)) {
            struct agg1 a1 = { .x = x, .kind = kind };
            size_t nch = (n + AGG_CHUNK - 1) / AGG_CHUNK;
            a1.p = wh__calloc(q, nch + 1, sizeof *a1.p);
            wh__par_rows(q, n, nch, agg1_chunk, &a1);
            int64_t cnt = 0;
            __int128 is = 0;
            double fs = 0;
            uint32_t best = UINT32_MAX;
            for (size_t c = 0; c < nch; c++) {
                cnt += a1.p[c].cnt;
                is += a1.p[c].is;
                fs += a1.p[c].fs;
                uint32_t b = a1.p[c].best;
                if (b != UINT32_MAX &&
                    (best == UINT32_MAX || wh__cmp_rows(x, b, x, best) * (kind == 3 ? 1 : -1) < 0))
                    best = b;
            }
            struct wh_vec *o;
            if (kind == 0) {
                o = wh__vec_new(q, WH_T_INT8, 0, 1);
                o->i[0] = cnt;
                return o;
            }
            if (kind >= 3)
                return wh__vec_gather(q, x, &best, 1);
            uint8_t t = x->type;
            if (wh__type_is_float(t) || kind == 2) {
                o = wh__vec_new(q, WH_T_FLOAT8, 0, 1);
                double div = t == WH_T_NUMERIC ? (double)wh__pow10(x->scale) : 1.0;
                double v = x->f ? fs : (double)is / div;
                o->nul[0] = cnt == 0;
                o->f[0] = kind == 2 && cnt ? v / (double)cnt : v;
                return o;
            }
            o = wh__vec_new(q, t == WH_T_NUMERIC ? WH_T_NUMERIC : WH_T_INT8, x->scale, 1);
            if (is > INT64_MAX || is < INT64_MIN)
                wh__fail(q, WEIR_EINVAL, ag->loc, "%s out of range",
                         t == WH_T_NUMERIC ? "numeric" : "bigint");
            o->i[0] = (int64_t)is;
            o->nul[0] = cnt == 0;
            return o;
        }
    }
    /* Rows that take part: not NULL, passing FILTER, first of their value when DISTINCT. */
    uint8_t *use = wh__alloc(q, n + 1);
    for (size_t r = 0; r < n; r++)
        use[r] = x ? !x->nul[r] : 1;
    json_t *filt = json_object_get(fc, "agg_filter");
    if (filt) {
        struct wh_expr *fe = wh__bind(q, &bc, filt);
        if (fe->type != WH_T_BOOL)
            wh__fail(q, WEIR_EINVAL, ag->loc, "argument of FILTER must be type boolean");
        struct wh_vec *fv = wh__eval(q, fe, base);
        for (size_t r = 0; r < n; r++)
            use[r] &= !fv->nul[r] && fv->i[r];
    }
    if (ag->distinct && x) {
        /* First occurrence of each (group, value); with one group the value alone. */
        struct wh_vec *g = NULL;
        if (ng > 1) {
            g = wh__vec_new(q, WH_T_INT8, 0, n);
            for (size_t r = 0; r < n; r++)
                g->i[r] = gid[r];
        }
        struct wh_vec *keys[2] = { x, g };
        uint32_t *dg = wh__alloc(q, (n ? n : 1) * sizeof *dg), *first;
        group_rows(q, keys, g ? 2 : 1, n, dg, &first);
        for (size_t r = 0; r < n; r++)
            use[r] &= first[dg[r]] == r;
    }
    struct wh_vec *o;
    if (!strcmp(name, "count")) {
        o = wh__vec_new(q, WH_T_INT8, 0, ng);
        for (size_t r = 0; r < n; r++)
            o->i[gid[r]] += use[r];
        return o;
    }
    uint8_t t = x->type;
    int64_t *cnt = wh__calloc(q, ng + 1, sizeof *cnt);
    if (!strcmp(name, "sum") || !strcmp(name, "avg")) {
        if (!wh__type_is_numeric(t))
            wh__fail(q, WEIR_EINVAL, ag->loc, "function %s(%s) does not exist", name,
                     wh_type_name(t));
        bool avg = name[0] == 'a';
        if (wh__type_is_float(t) || avg) {
            double *s = wh__calloc(q, ng + 1, sizeof *s);
            __int128 *is = wh__calloc(q, ng + 1, sizeof *is);
            for (size_t r = 0; r < n; r++) {
                if (!use[r])
                    continue;
                cnt[gid[r]]++;
                if (x->f)
                    s[gid[r]] += x->f[r];
                else
                    is[gid[r]] += x->i[r];
            }
            o = wh__vec_new(q, WH_T_FLOAT8, 0, ng);
            double div = t == WH_T_NUMERIC ? (double)wh__pow10(x->scale) : 1.0;
            for (size_t g = 0; g < ng; g++) {
                o->nul[g] = cnt[g] == 0;
                double v = x->f ? s[g] : (double)is[g] / div;
                o->f[g] = avg && cnt[g] ? v / (double)cnt[g] : v;
            }
            return o;
        }
        o = wh__vec_new(q, t == WH_T_NUMERIC ? WH_T_NUMERIC : WH_T_INT8, x->scale, ng);
        for (size_t r = 0; r < n; r++) {
            if (!use[r])
                continue;
            cnt[gid[r]]++;
            if (__builtin_add_overflow(o->i[gid[r]], x->i[r], &o->i[gid[r]]))
                wh__fail(q, WEIR_EINVAL, ag->loc, "%s out of range",
                         t == WH_T_NUMERIC ? "numeric" : "bigint");
        }
        for (size_t g = 0; g < ng; g++)
            o->nul[g] = cnt[g] == 0;
        return o;
    }
    if (!strcmp(name, "min") || !strcmp(name, "max") || !strcmp(name, "any_value")) {
        int dir = name[1] == 'i' ? 1 : name[1] == 'a' ? -1 : 0;
        o = wh__vec_new(q, t, x->scale, ng);
        uint32_t *best = wh__alloc(q, (ng + 1) * sizeof *best);
        memset(best, 0xff, (ng + 1) * sizeof *best);
        for (size_t r = 0; r < n; r++) {
            if (!use[r])
                continue;
            uint32_t g = gid[r];
            if (best[g] == UINT32_MAX || (dir && wh__cmp_rows(x, r, x, best[g]) * dir < 0))
                best[g] = (uint32_t)r;
        }
        return wh__vec_gather(q, x, best, ng);
    }
    if (!strcmp(name, "bool_and") || !strcmp(name, "bool_or") || !strcmp(name, "every")) {
        if (t != WH_T_BOOL)
            wh__fail(q, WEIR_EINVAL, ag->loc, "function %s(%s) does not exist", name,
                     wh_type_name(t));
        bool isor = !strcmp(name, "bool_or");
        o = wh__vec_new(q, WH_T_BOOL, 0, ng);
        for (size_t g = 0; g < ng; g++)
            o->i[g] = !isor;
        for (size_t r = 0; r < n; r++) {
            if (!use[r])
                continue;
            cnt[gid[r]]++;
            if (isor)
                o->i[gid[r]] |= x->i[r] != 0;
            else
                o->i[gid[r]] &= x->i[r] != 0;
        }
        for (size_t g = 0; g < ng; g++)
            o->nul[g] = cnt[g] == 0;
        return o;
    }
    if (is_sa) {
        struct wh_expr *de = wh__bind(q, &bc, json_array_get(args, 1));
        if (de->kind != E_CONST)
            wh__fail(q, WEIR_EINVAL, ag->loc, "string_agg needs a constant delimiter");
        struct wh_vec *xs = wh__cast(q, x, WH_T_TEXT, 0, ag->loc);
        const char *delim = de->cval->nul[0] ? "" : de->cval->s[0];
        size_t dl = strlen(delim);
        size_t *len = wh__calloc(q, ng + 1, sizeof *len);
        for (size_t r = 0; r < n; r++)
            if (use[r])
                len[gid[r]] += strlen(xs->s[r]) + (cnt[gid[r]]++ ? dl : 0);
        o = wh__vec_new(q, WH_T_TEXT, 0, ng);
        char **w = wh__calloc(q, ng + 1, sizeof *w);
        for (size_t g = 0; g < ng; g++) {
            o->nul[g] = cnt[g] == 0;
            o->s[g] = w[g] = wh__alloc(q, len[g] + 1);
            w[g][0] = 0;
            cnt[g] = 0;
        }
        for (size_t r = 0; r < n; r++) {
            if (!use[r])
                continue;
            uint32_t g = gid[r];
            if (cnt[g]++) {
                memcpy(w[g], delim, dl);
                w[g] += dl;
            }
            size_t l = strlen(xs->s[r]);
            memcpy(w[g], xs->s[r], l + 1);
            w[g] += l;
        }
        return o;
    }
    wh__fail(q, WEIR_EINTERNAL, ag->loc, "aggregate %s has no implementation", name);
}

/* An aggregate's values: its arguments may not use the columns of enclosing queries (such an
 * aggregate would belong to the outer query in PostgreSQL), at any depth of subquery. */
static struct wh_vec *agg_compute(struct wh_q *q, const struct agg *ag, struct wh_rel *base,
                                  const uint32_t *gid, size_t ng)
{
    int saved = q->agg_depth;
    q->agg_depth = q->ncorr;
    struct wh_vec *v = agg_compute_in(q, ag, base, gid, ng);
    q->agg_depth = saved;
    return v;
}

/* ---- sorting ---- */

struct sortctx {
    struct wh_vec **keys;
    int nk;
    const bool *desc, *nfirst;
};

static int sort_cmp(const void *a, const void *b, void *arg)
{
    const struct sortctx *c = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    for (int k = 0; k < c->nk; k++) {
        const struct wh_vec *v = c->keys[k];
        int nx = v->nul[x], ny = v->nul[y];
        if (nx || ny) {
            if (nx && ny)
                continue;
            return (nx ? -1 : 1) * (c->nfirst[k] ? 1 : -1);
        }
        int r = wh__cmp_rows(v, x, v, y);
        if (r)
            return c->desc[k] ? -r : r;
    }
    return (x > y) - (x < y); /* stable */
}

static void heap_down(uint32_t *h, size_t n, size_t i, struct sortctx *c)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && sort_cmp(&h[l], &h[m], c) > 0)
            m = l;
        if (r < n && sort_cmp(&h[r], &h[m], c) > 0)
            m = r;
        if (m == i)
            return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static uint32_t *top_n_serial(struct wh_q *q, struct wh_vec **keys, int nk, const bool *desc,
                              const bool *nfirst, size_t n, size_t k);

struct topn_par {
    struct wh_vec **keys;
    int nk;
    const bool *desc, *nfirst;
    size_t k;
    uint32_t **best; /* per chunk: its first rows (absolute numbers) */
    size_t *nbest;
};

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void topn_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    struct topn_par *tp = arg;
    struct wh_vec **kk = wh__calloc(sub, (size_t)tp->nk + 1, sizeof *kk);
    struct wh_rel tmp = { .ncols = tp->nk, .n = to - from, .cols = tp->keys };
    struct wh_rel *sl = wh__rel_slice(sub, &tmp, from, to);
    for (int j = 0; j < tp->nk; j++)
        kk[j] = sl->cols[j];
    size_t m = tp->k < to - from ? tp->k : to - from;
    uint32_t *h = top_n_serial(sub, kk, tp->nk, tp->desc, tp->nfirst, to - from, m);
    for (size_t j = 0; j < m; j++)
        h[j] += (uint32_t)from;
    tp->best[ci] = h;
    tp->nbest[ci] = m;
}

/* Top-N: the first `k` rows in sort order, sorted. Row ranges each keep their first k on
 * the pool; the candidates, in row order, are then ranked once more, so ties break by row
 * number exactly as on one thread. */
static uint32_t *top_n(struct wh_q *q, struct wh_vec **keys, int nk, const bool *desc,
                       const bool *nfirst, size_t n, size_t k)
{
    size_t nch = k <= 4096 ? wh__par_chunks(q, n, 2 * WH_GRANULE) : 1;
    if (nch <= 1)
        return top_n_serial(q, keys, nk, desc, nfirst, n, k);
    struct topn_par tp = { keys, nk, desc, nfirst, k, NULL, NULL };
    tp.best = wh__calloc(q, nch + 1, sizeof *tp.best);
    tp.nbest = wh__calloc(q, nch + 1, sizeof *tp.nbest);
    wh__par_rows(q, n, nch, topn_chunk, &tp);
    size_t m = 0;
    for (size_t c = 0; c < nch; c++)
        m += tp.nbest[c];
    uint32_t *cand = wh__alloc(q, (m + 1) * sizeof *cand);
    m = 0;
    for (size_t c = 0; c < nch; c++) {
        memcpy(cand + m, tp.best[c], tp.nbest[c] * sizeof *cand);
        m += tp.nbest[c];
    }
    qsort(cand, m, sizeof *cand, u32_cmp);
    struct wh_vec **ck = wh__calloc(q, (size_t)nk + 1, sizeof *ck);
    for (int j = 0; j < nk; j++)
        ck[j] = wh__vec_gather(q, keys[j], cand, m);
    uint32_t *h = top_n_serial(q, ck, nk, desc, nfirst, m, k < m ? k : m);
    for (size_t j = 0; j < (k < m ? k : m); j++)
        h[j] = cand[h[j]];
    return h;
}

static uint32_t *top_n_serial(struct wh_q *q, struct wh_vec **keys, int nk, const bool *desc,
                              const bool *nfirst, size_t n, size_t k)
{
    struct sortctx c = { keys, nk, desc, nfirst };
    uint32_t *h = wh__alloc(q, (k ? k : 1) * sizeof *h);
    size_t hn = 0;
    for (size_t r = 0; r < n && k; r++) {
        uint32_t x = (uint32_t)r;
        if (hn < k) {
            h[hn] = x;
            for (size_t i = hn++; i > 0;) { /* sift up */
                size_t p = (i - 1) / 2;
                if (sort_cmp(&h[i], &h[p], &c) <= 0)
                    break;
                uint32_t t = h[i];
                h[i] = h[p];
                h[p] = t;
                i = p;
            }
        } else {
            /* Fast reject on an integer first key: strictly worse than the heap's worst. */
            const struct wh_vec *v0 = keys[0];
            if (v0->i && !v0->m && !v0->nul[r] && !v0->nul[h[0]] &&
                (desc[0] ? v0->i[r] < v0->i[h[0]] : v0->i[r] > v0->i[h[0]]))
                continue;
            if (sort_cmp(&x, &h[0], &c) < 0) {
                h[0] = x;
                heap_down(h, hn, 0, &c);
            }
        }
    }
    qsort_r(h, hn, sizeof *h, sort_cmp, &c);
    return h;
}

/* Parallel sort: row ranges are sorted on the pool, then merged pairwise, each round's
 * merges on the pool. sort_cmp breaks ties by row number, so the order is total and the
 * result is the same permutation on any number of threads. */
struct psort {
    struct sortctx c;
    uint32_t *idx, *tmp;
    size_t n, chunk;
    size_t width; /* merge round: runs of this many rows */
};

static void psort_chunk(struct wh_q *sub, void *arg, size_t ci, size_t from, size_t to)
{
    (void)sub;
    (void)ci;
    struct psort *ps = arg;
    qsort_r(ps->idx + from, to - from, sizeof *ps->idx, sort_cmp, &ps->c);
}

static void psort_merge(void *arg, size_t t)
{
    struct psort *ps = arg;
    size_t a = t * 2 * ps->width, m = a + ps->width, e = m + ps->width;
    if (m > ps->n)
        m = ps->n;
    if (e > ps->n)
        e = ps->n;
    size_t i = a, j = m, o = a;
    while (i < m && j < e)
        ps->tmp[o++] = sort_cmp(&ps->idx[j], &ps->idx[i], &ps->c) < 0 ? ps->idx[j++] : ps->idx[i++];
    while (i < m)
        ps->tmp[o++] = ps->idx[i++];
    while (j < e)
        ps->tmp[o++] = ps->idx[j++];
}

uint32_t *wh__sort_perm(struct wh_q *q, struct wh_vec **keys, int nk, const bool *desc,
                        const bool *nfirst, size_t n)
{
    uint32_t *idx = wh__alloc(q, (n ? n : 1) * sizeof *idx);
    for (size_t r = 0; r < n; r++)
        idx[r] = (uint32_t)r;
    struct sortctx c = { keys, nk, desc, nfirst };
    size_t nch = wh__par_chunks(q, n, 4 * WH_GRANULE);
    if (nch <= 1) {
        qsort_r(idx, n, sizeof *idx, sort_cmp, &c);
        return idx;
    }
    struct psort ps = { .c = c, .idx = idx, .n = n, .chunk = (n + nch - 1) / nch };
    ps.tmp = wh__alloc(q, n * sizeof *ps.tmp);
    wh__par_rows(q, n, nch, psort_chunk, &ps);
    for (ps.width = ps.chunk; ps.width < n; ps.width *= 2) {
        size_t pairs = (n + 2 * ps.width - 1) / (2 * ps.width);
        wh__pool_run(wh__db_pool(q->db), pairs, psort_merge, &ps);
        uint32_t *t = ps.idx;
        ps.idx = ps.tmp;
        ps.tmp = t;
    }
    return ps.idx;
}

/* ---- window functions ---- */

static void collect_windows(json_t *j, json_t ***out, int *n, int *cap, struct wh_q *q)
{
    if (json_is_object(j)) {
        json_t *fc = json_object_get(j, "FuncCall");
        if (fc && json_object_get(fc, "over")) {
            for (int k = 0; k < *n; k++)
                if (wh__json_eq((*out)[k], j))
                    return;
            if (*n == *cap) {
                int nc = *cap ? *cap * 2 : 8;
                json_t **na = wh__calloc(q, (size_t)nc, sizeof *na);
                if (*n)
                    memcpy(na, *out, (size_t)*n * sizeof *na);
                *out = na;
                *cap = nc;
            }
            (*out)[(*n)++] = j;
            return;
        }
        if (json_object_get(j, "SubLink") || json_object_get(j, "SelectStmt"))
            return;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
            collect_windows(v, out, n, cap, q);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            collect_windows(v, out, n, cap, q);
    }
}

/* Evaluates one window function call over ctx->rel (rows in their current order). The
 * frame is PostgreSQL's default: the whole partition without ORDER BY, else from the
 * partition start through the current row's last peer. */
static struct wh_vec *compute_window(struct wh_q *q, struct wh_bind *ctx, json_t *node,
                                     json_t *windefs)
{
    json_t *fc = json_object_get(node, "FuncCall");
    json_t *over = json_object_get(fc, "over");
    json_t *names = json_object_get(fc, "funcname");
    const char *name = wh__sval(json_array_get(names, json_array_size(names) - 1));
    int loc = (int)json_integer_value(json_object_get(fc, "location"));
    const struct wh_rel *rel = ctx->rel;
    size_t n = rel->n;
    const char *wname = json_string_value(json_object_get(over, "name"));
    if (wname) {
        json_t *def = NULL;
        size_t i;
        json_t *w;
        json_array_foreach(windefs, i, w) {
            json_t *wd = json_object_get(w, "WindowDef");
            const char *nm = json_string_value(json_object_get(wd, "name"));
            if (nm && !strcmp(nm, wname))
                def = wd;
        }
        if (!def)
            wh__fail(q, WEIR_EINVAL, loc, "window \"%s\" does not exist", wname);
        over = def;
    }
    if (json_object_get(over, "refname"))
        wh__fail(q, WEIR_EINVAL, loc, "window references (OVER (w ...)) are not supported");
    if (json_integer_value(json_object_get(over, "frameOptions")) & 1)
        wh__fail(q, WEIR_EINVAL, loc, "window frames (ROWS/RANGE/GROUPS ...) are not supported");
    static const char *const okf[] = { "funcname",   "args",     "agg_star", "over",
                                       "funcformat", "location", NULL };
    const char *bad = first_bad_key(fc, okf);
    if (bad)
        wh__fail(q, WEIR_EINVAL, loc, "window function option %s is not supported", bad);
    json_t *pc = json_object_get(over, "partitionClause"),
           *oc = json_object_get(over, "orderClause");
    int np = (int)json_array_size(pc), no = (int)json_array_size(oc);
    struct wh_vec **keys = wh__calloc(q, (size_t)(np + no) + 1, sizeof *keys);
    bool *desc = wh__calloc(q, (size_t)(np + no) + 1, sizeof *desc);
    bool *nfirst = wh__calloc(q, (size_t)(np + no) + 1, sizeof *nfirst);
    for (int k = 0; k < np; k++)
        keys[k] = wh__eval(q, wh__bind(q, ctx, json_array_get(pc, (size_t)k)), rel);
    for (int k = 0; k < no; k++) {
        json_t *sb = json_object_get(json_array_get(oc, (size_t)k), "SortBy");
        const char *dir = json_string_value(json_object_get(sb, "sortby_dir"));
        const char *nl = json_string_value(json_object_get(sb, "sortby_nulls"));
        desc[np + k] = !strcmp(dir, "SORTBY_DESC");
        nfirst[np + k] =
            !strcmp(nl, "SORTBY_NULLS_DEFAULT") ? desc[np + k] : !strcmp(nl, "SORTBY_NULLS_FIRST");
        keys[np + k] = wh__eval(q, wh__bind(q, ctx, json_object_get(sb, "node")), rel);
    }
    uint32_t *perm = wh__sort_perm(q, keys, np + no, desc, nfirst, n);
    json_t *args = json_object_get(fc, "args");
    int na = (int)json_array_size(args);
    bool star = json_is_true(json_object_get(fc, "agg_star"));
    struct wh_vec *x = NULL;
    if (na >= 1) {
        struct wh_expr *e = wh__bind(q, ctx, json_array_get(args, 0));
        if (e->type == WH_T_UNKNOWN)
            e = wh__binop(q, OP_CONCAT, e, e, loc)->args[0];
        if (e->type == WH_T_INTERVAL)
            wh__fail(q, WEIR_EINVAL, loc,
                     "window functions over interval values are not supported");
        x = wh__eval(q, e, rel);
    }
    enum {
        W_ROWNUM,
        W_RANK,
        W_DRANK,
        W_LAG,
        W_LEAD,
        W_COUNT,
        W_SUM,
        W_AVG,
        W_MIN,
        W_MAX
    } kind;
    static const char *const wn[] = { "row_number", "rank", "dense_rank", "lag", "lead",
                                      "count",      "sum",  "avg",        "min", "max" };
    int found = -1;
    for (int k = 0; k < 10; k++)
        if (!strcmp(wn[k], name))
            found = k;
    if (found < 0)
        wh__fail(q, WEIR_EINVAL, loc, "window function %s is not supported", name);
    kind = (int)found;
    int want_args = kind <= W_DRANK ? 0 : kind <= W_LEAD ? -1 : 1;
    if ((want_args == 0 && na) || (want_args == 1 && na != 1 && !(kind == W_COUNT && star)) ||
        (want_args == -1 && (na < 1 || na > 3)))
        wh__fail(q, WEIR_EINVAL, loc, "wrong number of arguments for window function %s", name);
    if ((kind == W_SUM || kind == W_AVG) && !wh__type_is_numeric(x->type))
        wh__fail(q, WEIR_EINVAL, loc, "function %s(%s) does not exist", name,
                 wh_type_name(x->type));
    struct wh_vec *o;
    if (kind <= W_DRANK || kind == W_COUNT)
        o = wh__vec_new(q, WH_T_INT8, 0, n);
    else if (kind == W_AVG || (kind == W_SUM && wh__type_is_float(x->type)))
        o = wh__vec_new(q, WH_T_FLOAT8, 0, n);
    else if (kind == W_SUM)
        o = wh__vec_new(q, x->type == WH_T_NUMERIC ? WH_T_NUMERIC : WH_T_INT8, x->scale, n);
    else
        o = wh__vec_new(q, x->type, x->scale, n);
    int64_t off = 1;
    struct wh_vec *dflt = NULL;
    if (kind == W_LAG || kind == W_LEAD) {
        if (na >= 2) {
            struct wh_expr *oe = wh__bind(q, ctx, json_array_get(args, 1));
            if (oe->kind != E_CONST)
                wh__fail(q, WEIR_EINVAL, loc, "%s offset must be a constant", name);
            struct wh_vec *ov = wh__cast(q, oe->cval, WH_T_INT8, 0, loc);
            off = ov->nul[0] ? 0 : ov->i[0];
        }
        if (na == 3) {
            struct wh_expr *de = wh__bind(q, ctx, json_array_get(args, 2));
            struct wh_expr xe = { .kind = E_COL, .type = x->type, .scale = x->scale };
            struct wh_expr *pair[2] = { &xe, de };
            uint8_t t;
            int16_t sc;
            wh__unify(q, pair, 2, loc, &t, &sc);
            x = wh__cast(q, x, t, sc, loc);
            o = wh__vec_new(q, t, sc, n);
            dflt = wh__eval(q, pair[1], rel);
        }
    }
    size_t start = 0;
    while (start < n) {
        size_t end = start + 1; /* partition [start, end) in sorted order */
        while (end < n && rows_eq(keys, np, perm[start], perm[end]))
            end++;
        int64_t rank = 0, drank = 0, cnt = 0;
        __int128 isum = 0;
        double fsum = 0;
        int64_t best = -1;
        size_t g = start;
        while (g < end) {
            size_t ge = g + 1; /* peer group [g, ge) */
            if (no)
                while (ge < end && rows_eq(keys + np, no, perm[g], perm[ge]))
                    ge++;
            else
                ge = end;
            rank = (int64_t)(g - start) + 1;
            drank++;
            for (size_t k = g; k < ge; k++) { /* fold the peers into running aggregates */
                uint32_t r = perm[k];
                if (kind < W_COUNT || (x && x->nul[r]))
                    continue;
                cnt++;
                if (kind == W_SUM || kind == W_AVG) {
                    if (x->f)
                        fsum += x->f[r];
                    else
                        isum += x->i[r];
                } else if (kind == W_MIN || kind == W_MAX) {
                    if (best < 0 ||
                        wh__cmp_rows(x, r, x, (size_t)best) * (kind == W_MIN ? 1 : -1) < 0)
                        best = r;
                }
            }
            for (size_t k = g; k < ge; k++) {
                uint32_t r = perm[k];
                switch (kind) {
                case W_ROWNUM:
                    o->i[r] = (int64_t)(k - start) + 1;
                    break;
                case W_RANK:
                    o->i[r] = rank;
                    break;
                case W_DRANK:
                    o->i[r] = drank;
                    break;
                case W_LAG:
                case W_LEAD: {
                    int64_t t = (int64_t)k + (kind == W_LAG ? -off : off);
                    const struct wh_vec *src = x;
                    size_t sr;
                    if (t < (int64_t)start || t >= (int64_t)end) {
                        if (!dflt) {
                            o->nul[r] = 1;
                            break;
                        }
                        src = dflt;
                        sr = r;
                    } else {
                        sr = perm[t];
                    }
                    o->nul[r] = src->nul[sr];
                    if (o->s)
                        o->s[r] = src->s[sr];
                    else if (o->f)
                        o->f[r] = src->f[sr];
                    else
                        o->i[r] = src->i[sr];
                    break;
                }
                case W_COUNT:
                    o->i[r] = cnt;
                    break;
                case W_SUM:
                case W_AVG: {
                    o->nul[r] = cnt == 0;
                    double div = x->type == WH_T_NUMERIC ? (double)wh__pow10(x->scale) : 1.0;
                    if (o->f) {
                        double v = x->f ? fsum : (double)isum / div;
                        o->f[r] = kind == W_AVG && cnt ? v / (double)cnt : v;
                    } else {
                        if (isum > INT64_MAX || isum < INT64_MIN)
                            wh__fail(q, WEIR_EINVAL, loc, "bigint out of range");
                        o->i[r] = (int64_t)isum;
                    }
                    break;
                }
                default: {
                    o->nul[r] = best < 0;
                    if (best < 0)
                        break;
                    if (o->s)
                        o->s[r] = x->s[best];
                    else if (o->f)
                        o->f[r] = x->f[best];
                    else
                        o->i[r] = x->i[best];
                }
                }
            }
            g = ge;
        }
        start = end;
    }
    return o;
}

/* ---- the pipeline ---- */

static int64_t limit_value(struct wh_q *q, json_t *node, const char *what)
{
    if (!node)
        return -1;
    if (json_object_get(json_object_get(node, "A_Const"), "isnull"))
        return -1;
    struct wh_rel *one = wh__rel_new(q, 0, 1);
    struct wh_bind bc = { .rel = one, .agg_where = what };
    struct wh_expr *e = wh__bind(q, &bc, node);
    struct wh_vec *v = wh__cast(q, wh__eval(q, e, one), WH_T_INT8, 0, wh__loc(node));
    if (v->nul[0])
        return -1;
    if (v->i[0] < 0)
        wh__fail(q, WEIR_EINVAL, wh__loc(node), "%s must not be negative", what);
    return v->i[0];
}

static struct wh_rel *sort_limit(struct wh_q *q, struct wh_rel *out, json_t *b, struct wh_bind *ctx,
                                 bool distinct)
{
    json_t *sc = json_object_get(b, "sortClause");
    int nk = (int)json_array_size(sc);
    if (nk) {
        struct wh_vec **keys = wh__calloc(q, (size_t)nk, sizeof *keys);
        bool *desc = wh__calloc(q, (size_t)nk, sizeof *desc);
        bool *nfirst = wh__calloc(q, (size_t)nk, sizeof *nfirst);
        json_t *tl = json_object_get(b, "targetList");
        for (int k = 0; k < nk; k++) {
            json_t *sb = json_object_get(json_array_get(sc, (size_t)k), "SortBy");
            json_t *node = json_object_get(sb, "node");
            const char *dir = json_string_value(json_object_get(sb, "sortby_dir"));
            const char *nl = json_string_value(json_object_get(sb, "sortby_nulls"));
            if (!strcmp(dir, "SORTBY_USING"))
                wh__fail(q, WEIR_EINVAL, wh__loc(node), "ORDER BY ... USING is not supported");
            desc[k] = !strcmp(dir, "SORTBY_DESC");
            nfirst[k] =
                !strcmp(nl, "SORTBY_NULLS_DEFAULT") ? desc[k] : !strcmp(nl, "SORTBY_NULLS_FIRST");
            json_t *ac = json_object_get(node, "A_Const");
            json_t *cr = json_object_get(node, "ColumnRef");
            int oc = -1;
            if (ac && json_object_get(ac, "ival")) {
                json_int_t pos =
                    json_integer_value(json_object_get(json_object_get(ac, "ival"), "ival"));
                if (pos < 1 || pos > out->ncols)
                    wh__fail(q, WEIR_EINVAL, wh__loc(node),
                             "ORDER BY position %lld is not in select list", (long long)pos);
                oc = (int)pos - 1;
            } else if (cr && json_array_size(json_object_get(cr, "fields")) == 1) {
                const char *nm = wh__sval(json_array_get(json_object_get(cr, "fields"), 0));
                for (int c = 0; nm && c < out->ncols; c++)
                    if (!strcmp(out->names[c], nm)) {
                        if (oc >= 0)
                            wh__fail(q, WEIR_EINVAL, wh__loc(node), "ORDER BY \"%s\" is ambiguous",
                                     nm);
                        oc = c;
                    }
            }
            if (oc < 0 && tl) {
                for (int c = 0; c < (int)json_array_size(tl) && oc < 0; c++) {
                    json_t *rt = json_object_get(json_array_get(tl, (size_t)c), "ResTarget");
                    if (wh__json_eq(json_object_get(rt, "val"), node) && c < out->ncols)
                        oc = c;
                }
            }
            if (oc >= 0) {
                keys[k] = out->cols[oc];
                continue;
            }
            if (!ctx || distinct)
                wh__fail(q, WEIR_EINVAL, wh__loc(node),
                         distinct ? "for SELECT DISTINCT, ORDER BY expressions must appear in "
                                    "select list"
                                  : "ORDER BY on a UNION/VALUES result must name an output "
                                    "column");
            keys[k] = wh__eval(q, wh__bind(q, ctx, node), ctx->rel);
        }
        /* With a small LIMIT and no DISTINCT, only the first OFFSET + LIMIT rows matter. */
        int64_t toff = limit_value(q, json_object_get(b, "limitOffset"), "OFFSET");
        int64_t tlim = limit_value(q, json_object_get(b, "limitCount"), "LIMIT");
        size_t want = tlim >= 0 ? (size_t)tlim + (size_t)(toff > 0 ? toff : 0) : out->n;
        if (!distinct && want < out->n / 4) {
            uint32_t *perm = top_n(q, keys, nk, desc, nfirst, out->n, want);
            out = wh__rel_gather(q, out, perm, want);
        } else {
            uint32_t *perm = wh__sort_perm(q, keys, nk, desc, nfirst, out->n);
            out = wh__rel_gather(q, out, perm, out->n);
        }
    }
    if (distinct) {
        uint32_t *gid = wh__alloc(q, (out->n ? out->n : 1) * sizeof *gid), *first;
        size_t ng = group_rows(q, out->cols, out->ncols, out->n, gid, &first);
        if (ng != out->n)
            out = wh__rel_gather(q, out, first, ng);
    }
    const char *lo = json_string_value(json_object_get(b, "limitOption"));
    if (lo && !strcmp(lo, "LIMIT_OPTION_WITH_TIES"))
        wh__fail(q, WEIR_EINVAL, -1, "FETCH ... WITH TIES is not supported");
    int64_t off = limit_value(q, json_object_get(b, "limitOffset"), "OFFSET");
    int64_t lim = limit_value(q, json_object_get(b, "limitCount"), "LIMIT");
    if (off > 0 || lim >= 0) {
        size_t from = off > 0 ? ((size_t)off < out->n ? (size_t)off : out->n) : 0;
        size_t cnt = out->n - from;
        if (lim >= 0 && (size_t)lim < cnt)
            cnt = (size_t)lim;
        uint32_t *idx = wh__alloc(q, (cnt ? cnt : 1) * sizeof *idx);
        for (size_t k = 0; k < cnt; k++)
            idx[k] = (uint32_t)(from + k);
        out = wh__rel_gather(q, out, idx, cnt);
    }
    return out;
}

static const char *target_name(json_t *rt)
{
    const char *nm = json_string_value(json_object_get(rt, "name"));
    if (nm)
        return nm;
    json_t *v = json_object_get(rt, "val");
    for (;;) {
        const char *ty = wh__node_type(v);
        json_t *b = wh__node_body(v);
        if (!strcmp(ty, "ColumnRef")) {
            json_t *f = json_object_get(b, "fields");
            return wh__sval(json_array_get(f, json_array_size(f) - 1));
        }
        if (!strcmp(ty, "FuncCall")) {
            json_t *f = json_object_get(b, "funcname");
            const char *n = wh__sval(json_array_get(f, json_array_size(f) - 1));
            return !strcmp(n, "btrim") ? "btrim" : n;
        }
        if (!strcmp(ty, "TypeCast")) {
            json_t *inner = json_object_get(b, "arg");
            if (json_object_get(inner, "A_Const")) {
                json_t *names = json_object_get(json_object_get(b, "typeName"), "names");
                return wh__sval(json_array_get(names, json_array_size(names) - 1));
            }
            v = inner;
            continue;
        }
        if (!strcmp(ty, "CaseExpr"))
            return "case";
        if (!strcmp(ty, "CoalesceExpr"))
            return "coalesce";
        if (!strcmp(ty, "MinMaxExpr"))
            return !strcmp(json_string_value(json_object_get(b, "op")), "IS_LEAST") ? "least"
                                                                                    : "greatest";
        if (!strcmp(ty, "A_Expr") &&
            !strcmp(json_string_value(json_object_get(b, "kind")), "AEXPR_NULLIF"))
            return "nullif";
        if (!strcmp(ty, "SQLValueFunction")) {
            const char *op = json_string_value(json_object_get(b, "op"));
            return !strcmp(op, "SVFOP_CURRENT_DATE") ? "current_date" : "current_timestamp";
        }
        return "?column?";
    }
}

static struct wh_rel *values_rel(struct wh_q *q, json_t *lists)
{
    size_t nr = json_array_size(lists);
    int nc = (int)json_array_size(
        json_object_get(json_object_get(json_array_get(lists, 0), "List"), "items"));
    struct wh_rel *one = wh__rel_new(q, 0, 1);
    struct wh_bind bc = { .rel = one, .agg_where = "VALUES" };
    struct wh_rel *out = wh__rel_new(q, nc, nr);
    struct wh_expr **cells = wh__calloc(q, nr * (size_t)nc + 1, sizeof *cells);
    for (size_t r = 0; r < nr; r++) {
        json_t *items = json_object_get(json_object_get(json_array_get(lists, r), "List"), "items");
        if ((int)json_array_size(items) != nc)
            wh__fail(q, WEIR_EINVAL, wh__loc(json_array_get(items, 0)),
                     "VALUES lists must all be the same length");
        for (int c = 0; c < nc; c++) {
            json_t *it = json_array_get(items, (size_t)c);
            if (json_object_get(it, "SetToDefault"))
                wh__fail(q, WEIR_EINVAL, wh__loc(it), "DEFAULT in VALUES is not supported");
            cells[r * (size_t)nc + (size_t)c] = wh__bind(q, &bc, it);
        }
    }
    for (int c = 0; c < nc; c++) {
        /* The column's type: the common type of its cells (PostgreSQL's UNION rules). */
        struct wh_expr **colc = wh__calloc(q, nr + 1, sizeof *colc);
        for (size_t r = 0; r < nr; r++)
            colc[r] = cells[r * (size_t)nc + (size_t)c];
        uint8_t t;
        int16_t s;
        wh__unify(q, colc, (int)nr, colc[0]->loc, &t, &s);
        for (size_t r = 0; r < nr; r++)
            cells[r * (size_t)nc + (size_t)c] = colc[r];
        struct wh_vec *v = wh__vec_new(q, t, s, nr);
        for (size_t r = 0; r < nr; r++) {
            struct wh_expr *e = cells[r * (size_t)nc + (size_t)c];
            struct wh_vec *x = wh__cast(q, wh__eval(q, e, one), t, s, e->loc);
            v->nul[r] = x->nul[0];
            if (v->s)
                v->s[r] = x->s[0];
            else if (v->f)
                v->f[r] = x->f[0];
            else
                v->i[r] = x->i[0];
        }
        out->cols[c] = v;
        out->names[c] = arena_printf(q->a, "column%d", c + 1);
        if (!out->names[c])
            wh__fail(q, WEIR_ETOOBIG, -1, "query memory limit exceeded");
    }
    return out;
}

static struct wh_rel *setop(struct wh_q *q, json_t *b)
{
    const char *op = json_string_value(json_object_get(b, "op"));
    struct wh_rel *L = select_body(q, json_object_get(b, "larg"));
    struct wh_rel *R = select_body(q, json_object_get(b, "rarg"));
    if (L->ncols != R->ncols)
        wh__fail(q, WEIR_EINVAL, -1, "each UNION query must have the same number of columns");
    struct wh_rel *o = wh__rel_new(q, L->ncols, L->n + R->n);
    for (int c = 0; c < L->ncols; c++) {
        struct wh_expr el = { .kind = E_COL, .type = L->cols[c]->type, .scale = L->cols[c]->scale };
        struct wh_expr er = { .kind = E_COL, .type = R->cols[c]->type, .scale = R->cols[c]->scale };
        struct wh_expr *pair[2] = { &el, &er };
        uint8_t t;
        int16_t s;
        wh__unify(q, pair, 2, -1, &t, &s);
        struct wh_vec *a = wh__cast(q, L->cols[c], t, s, -1);
        struct wh_vec *bv = wh__cast(q, R->cols[c], t, s, -1);
        struct wh_vec *v = wh__vec_new(q, t, s, L->n + R->n);
        for (size_t r = 0; r < L->n + R->n; r++) {
            const struct wh_vec *src = r < L->n ? a : bv;
            size_t sr = r < L->n ? r : r - L->n;
            v->nul[r] = src->nul[sr];
            if (v->s)
                v->s[r] = src->s[sr];
            else if (v->f)
                v->f[r] = src->f[sr];
            else
                v->i[r] = src->i[sr];
        }
        o->cols[c] = v;
        o->names[c] = L->names[c];
    }
    bool all = json_is_true(json_object_get(b, "all"));
    if (!strcmp(op, "SETOP_UNION")) {
        if (!all) {
            uint32_t *gid = wh__alloc(q, (o->n ? o->n : 1) * sizeof *gid), *first;
            size_t ng = group_rows(q, o->cols, o->ncols, o->n, gid, &first);
            o = wh__rel_gather(q, o, first, ng);
        }
        return o;
    }
    /* INTERSECT / EXCEPT [ALL]: count each distinct row on both sides, then keep left rows
     * (in their order) up to the quota: ALL keeps min(l, r) / l - r copies; without ALL one
     * copy of each row found in both inputs / only in the left one. */
    bool isect = !strcmp(op, "SETOP_INTERSECT");
    uint32_t *gid = wh__alloc(q, (o->n ? o->n : 1) * sizeof *gid), *first;
    size_t ng = group_rows(q, o->cols, o->ncols, o->n, gid, &first);
    int64_t *lc = wh__calloc(q, ng + 1, sizeof *lc), *rc = wh__calloc(q, ng + 1, sizeof *rc);
    for (size_t r = 0; r < o->n; r++)
        (r < L->n ? lc : rc)[gid[r]]++;
    uint32_t *idx = wh__alloc(q, (L->n ? L->n : 1) * sizeof *idx);
    int64_t *used = wh__calloc(q, ng + 1, sizeof *used);
    size_t m = 0;
    for (size_t r = 0; r < L->n; r++) {
        uint32_t g = gid[r];
        int64_t quota = isect ? (lc[g] < rc[g] ? lc[g] : rc[g]) : lc[g] - rc[g];
        if (!all)
            quota = isect ? rc[g] > 0 : rc[g] == 0;
        if (used[g] < quota) {
            used[g]++;
            idx[m++] = (uint32_t)r;
        }
    }
    return wh__rel_gather(q, o, idx, m);
}

/* Top-N on several keys whose first is an integer column: read that column alone, find
 * its k-th best value T, and read the other wanted columns only for rows at least as good
 * as T (ties included; with NULLS FIRST, the NULL rows too). Returns NULL when too many
 * rows qualify for this to pay. */
/* Top-N on an integer first key: the candidate rows (at least as good as the k-th best
 * value of the first key, ties included) come from the granule directory and the first key's
 * column alone (wh__table_topn_rows); the wanted columns (the sort keys) are then read for
 * the candidates only. Returns NULL when that does not apply or prunes too little. */
static struct wh_rel *topn_by_first_key(struct wh_q *q, struct wh_table *t, const bool *want,
                                        const char *qual, int kc, bool desc, bool nulls_first,
                                        size_t k, uint32_t **rowid)
{
    size_t n = 0, m = 0;
    for (size_t p = 0; p < t->nparts; p++)
        n += t->parts[p].rows;
    uint32_t *cand = NULL;
    if (!wh__table_topn_rows(q, t, kc, desc, nulls_first, k, &cand, &m) || m > n / 4 + k)
        return NULL;
    *rowid = cand;
    return wh__table_fetch(q, t, want, qual, cand, m);
}

/* Late materialization for `SELECT ... FROM table [WHERE ...] ORDER BY columns LIMIT k`:
 * read only the WHERE and ORDER BY columns, pick the first OFFSET + LIMIT rows, then read
 * the other columns for just those rows' granules. Returns NULL when the query does not
 * have that shape; otherwise a relation holding exactly those rows (already filtered), on
 * which the normal pipeline re-sorts k rows and applies OFFSET / LIMIT. */
static struct wh_rel *late_topn(struct wh_q *q, json_t *b)
{
    json_t *from = json_object_get(b, "fromClause");
    json_t *rv = json_object_get(json_array_get(from, 0), "RangeVar");
    json_t *sc = json_object_get(b, "sortClause");
    json_t *tl = json_object_get(b, "targetList");
    if (json_array_size(from) != 1 || !rv || !json_array_size(sc) ||
        !json_object_get(b, "limitCount") || json_array_size(json_object_get(b, "groupClause")) ||
        json_object_get(b, "havingClause") || json_array_size(json_object_get(b, "distinctClause")))
        return NULL;
    const char *schema = json_string_value(json_object_get(rv, "schemaname"));
    const char *name = json_string_value(json_object_get(rv, "relname"));
    if (!schema)
        for (struct wh_cte *c = q->ctes; c; c = c->next)
            if (!strcmp(c->name, name))
                return NULL;
    if (schema && !strcmp(schema, "information_schema"))
        return NULL;
    struct wh_table *t = wh__table_find(q->db, schema ? schema : "public", name);
    if (!t || json_object_get(json_object_get(rv, "alias"), "colnames"))
        return NULL;
    struct agg *aggs = NULL;
    int nagg = 0, acap = 0;
    collect_aggs(q, tl, &aggs, &nagg, &acap);
    json_t **wins = NULL;
    int nwin = 0, wcap = 0;
    collect_windows(tl, &wins, &nwin, &wcap, q);
    if (nagg || nwin)
        return NULL;
    /* Sort keys must be plain table columns that no output alias shadows. */
    int nk = (int)json_array_size(sc);
    for (int k = 0; k < nk; k++) {
        json_t *sb = json_object_get(json_array_get(sc, (size_t)k), "SortBy");
        json_t *cr = json_object_get(json_object_get(sb, "node"), "ColumnRef");
        json_t *f = json_object_get(cr, "fields");
        const char *cn = f ? wh__sval(json_array_get(f, json_array_size(f) - 1)) : NULL;
        if (!cn || !strcmp(json_string_value(json_object_get(sb, "sortby_dir")), "SORTBY_USING"))
            return NULL;
        for (size_t i = 0; i < json_array_size(tl); i++) {
            const char *an = json_string_value(
                json_object_get(json_object_get(json_array_get(tl, i), "ResTarget"), "name"));
            if (an && !strcmp(an, cn))
                return NULL;
        }
    }
    int64_t off = limit_value(q, json_object_get(b, "limitOffset"), "OFFSET");
    int64_t lim = limit_value(q, json_object_get(b, "limitCount"), "LIMIT");
    size_t total = 0;
    for (size_t p = 0; p < t->nparts; p++)
        total += t->parts[p].rows;
    if (lim < 0 || (size_t)lim + (size_t)(off > 0 ? off : 0) > total / 8)
        return NULL;
    size_t want_rows = (size_t)lim + (size_t)(off > 0 ? off : 0);
    json_t *where = json_object_get(b, "whereClause");
    bool *want1 = wh__calloc(q, (size_t)t->ncols + 1, sizeof *want1);
    bool *want2 = wh__calloc(q, (size_t)t->ncols + 1, sizeof *want2);
    for (int c = 0; c < t->ncols; c++) {
        want1[c] = mentions(sc, t->cols[c].name) || (where && mentions(where, t->cols[c].name));
        want2[c] = mentions(b, t->cols[c].name);
    }
    json_t *alias = json_object_get(rv, "alias");
    const char *qual = alias ? json_string_value(json_object_get(alias, "aliasname")) : name;
    /* Without WHERE, the first key's granule min/max can skip most of the table. */
    struct wh_rel *r1 = NULL;
    uint32_t *rowid = NULL;
    if (!where) {
        json_t *sb = json_object_get(json_array_get(sc, 0), "SortBy");
        json_t *f =
            json_object_get(json_object_get(json_object_get(sb, "node"), "ColumnRef"), "fields");
        const char *cn = wh__sval(json_array_get(f, json_array_size(f) - 1));
        const char *dir = json_string_value(json_object_get(sb, "sortby_dir"));
        const char *nl = json_string_value(json_object_get(sb, "sortby_nulls"));
        bool d0 = !strcmp(dir, "SORTBY_DESC");
        bool nf0 = !strcmp(nl, "SORTBY_NULLS_DEFAULT") ? d0 : !strcmp(nl, "SORTBY_NULLS_FIRST");
        int kc = -1;
        for (int c = 0; c < t->ncols && cn; c++)
            if (!strcmp(t->cols[c].name, cn))
                kc = c;
        if (kc >= 0 && wh__type_is_int(t->cols[kc].type))
            r1 = topn_by_first_key(q, t, want1, qual, kc, d0, nf0, want_rows, &rowid);
        if (!r1 && kc >= 0)
            r1 = wh__table_scan_topn(q, t, want1, qual, kc, d0, nf0, want_rows, &rowid);
    }
    if (!r1) {
        r1 = wh__table_scan(q, t, want1, qual);
        rowid = wh__alloc(q, (r1->n + 1) * sizeof *rowid);
        for (size_t r = 0; r < r1->n; r++)
            rowid[r] = (uint32_t)r;
    }
    size_t n = r1->n;
    if (where) {
        struct wh_bind bw = { .rel = r1, .agg_where = "WHERE" };
        struct wh_expr *e = wh__bind(q, &bw, where);
        if (e->type != WH_T_BOOL)
            wh__fail(q, WEIR_EINVAL, wh__loc(where), "argument of WHERE must be type boolean");
        struct wh_vec *pv = wh__eval_par(q, e, r1);
        size_t m = 0;
        for (size_t r = 0; r < n; r++)
            if (!pv->nul[r] && pv->i[r])
                rowid[m++] = (uint32_t)r;
        r1 = wh__rel_gather(q, r1, rowid, m);
        n = m;
    }
    struct wh_vec **keys = wh__calloc(q, (size_t)nk + 1, sizeof *keys);
    bool *desc = wh__calloc(q, (size_t)nk + 1, sizeof *desc);
    bool *nfirst = wh__calloc(q, (size_t)nk + 1, sizeof *nfirst);
    struct wh_bind bs = { .rel = r1 };
    for (int k = 0; k < nk; k++) {
        json_t *sb = json_object_get(json_array_get(sc, (size_t)k), "SortBy");
        const char *dir = json_string_value(json_object_get(sb, "sortby_dir"));
        const char *nl = json_string_value(json_object_get(sb, "sortby_nulls"));
        desc[k] = !strcmp(dir, "SORTBY_DESC");
        nfirst[k] =
            !strcmp(nl, "SORTBY_NULLS_DEFAULT") ? desc[k] : !strcmp(nl, "SORTBY_NULLS_FIRST");
        keys[k] = wh__eval(q, wh__bind(q, &bs, json_object_get(sb, "node")), r1);
    }
    if (want_rows > n)
        want_rows = n;
    uint32_t *top = top_n(q, keys, nk, desc, nfirst, n, want_rows);
    uint32_t *rows = wh__alloc(q, (want_rows + 1) * sizeof *rows);
    for (size_t k = 0; k < want_rows; k++)
        rows[k] = rowid[top[k]];
    struct wh_rel *r2 = wh__table_fetch(q, t, want2, qual, rows, want_rows);
    apply_alias(q, r2, alias, name);
    return r2;
}

static struct wh_rel *select_core(struct wh_q *q, json_t *b)
{
    /* FROM */
    json_t *from = json_object_get(b, "fromClause");
    struct wh_rel *rel;
    struct wh_rel *late = late_topn(q, b);
    if (late) {
        rel = late;
    } else if (!json_array_size(from)) {
        rel = wh__rel_new(q, 0, 1);
    } else {
        rel = from_item(q, json_array_get(from, 0), b);
        for (size_t k = 1; k < json_array_size(from); k++) {
            struct wh_rel *r = from_item(q, json_array_get(from, k), b);
            rel = do_join(q, rel, r, "JOIN_INNER", NULL, -1);
        }
    }
    /* WHERE */
    json_t *where = late ? NULL : json_object_get(b, "whereClause");
    if (where) {
        struct wh_bind bc = { .rel = rel, .agg_where = "WHERE" };
        struct wh_expr *e = wh__bind(q, &bc, where);
        if (e->type == WH_T_UNKNOWN)
            e = wh__binop(q, OP_EQ, e, e, e->loc)->args[0];
        if (e->type != WH_T_BOOL)
            wh__fail(q, WEIR_EINVAL, wh__loc(where), "argument of WHERE must be type boolean");
        uint32_t *sel;
        size_t nsel;
        if (wh__filter_dict(q, e, rel, &sel, &nsel))
            rel = nsel == rel->n ? rel : wh__rel_gather(q, rel, sel, nsel);
        else
            rel = filter_rel(q, rel, wh__eval_par(q, e, rel));
    }
    json_t *tl = json_object_get(b, "targetList");
    json_t *group = json_object_get(b, "groupClause");
    json_t *having = json_object_get(b, "havingClause");
    struct agg *aggs = NULL;
    int nagg = 0, acap = 0;
    collect_aggs(q, tl, &aggs, &nagg, &acap);
    collect_aggs(q, having, &aggs, &nagg, &acap);
    collect_aggs(q, json_object_get(b, "sortClause"), &aggs, &nagg, &acap);
    struct wh_bind ctx = { .rel = rel };
    if (json_array_size(group) || nagg || having) {
        int ng = (int)json_array_size(group);
        json_t **keys = wh__calloc(q, (size_t)(ng + nagg) + 1, sizeof *keys);
        int *kcol = wh__calloc(q, (size_t)(ng + nagg) + 1, sizeof *kcol);
        struct wh_vec **kv = wh__calloc(q, (size_t)ng + 1, sizeof *kv);
        struct wh_bind gb = { .rel = rel, .agg_where = "GROUP BY" };
        for (int k = 0; k < ng; k++) {
            json_t *g = json_array_get(group, (size_t)k);
            json_t *ac = json_object_get(g, "A_Const");
            json_t *cr = json_object_get(g, "ColumnRef");
            if (json_object_get(g, "GroupingSet"))
                wh__fail(q, WEIR_EINVAL, wh__loc(g),
                         "GROUPING SETS, ROLLUP and CUBE are not supported");
            if (ac && json_object_get(ac, "ival")) {
                json_int_t pos =
                    json_integer_value(json_object_get(json_object_get(ac, "ival"), "ival"));
                if (pos < 1 || (size_t)pos > json_array_size(tl))
                    wh__fail(q, WEIR_EINVAL, wh__loc(g),
                             "GROUP BY position %lld is not in select list", (long long)pos);
                g = json_object_get(
                    json_object_get(json_array_get(tl, (size_t)pos - 1), "ResTarget"), "val");
            } else if (cr && json_array_size(json_object_get(cr, "fields")) == 1) {
                const char *nm = wh__sval(json_array_get(json_object_get(cr, "fields"), 0));
                bool incol = false;
                for (int c = 0; nm && c < rel->ncols; c++)
                    incol |= !strcmp(rel->names[c], nm);
                for (size_t t = 0; !incol && nm && t < json_array_size(tl); t++) {
                    json_t *rt = json_object_get(json_array_get(tl, t), "ResTarget");
                    const char *an = json_string_value(json_object_get(rt, "name"));
                    if (an && !strcmp(an, nm))
                        g = json_object_get(rt, "val");
                }
            }
            keys[k] = g;
            struct wh_expr *e = wh__bind(q, &gb, g);
            kcol[k] = e->kind == E_COL ? e->col : -1;
            kv[k] = wh__eval_par(q, e, rel);
        }
        uint32_t *gid = NULL, *first;
        size_t ngroups;
        if (ng) {
            gid = wh__alloc(q, (rel->n ? rel->n : 1) * sizeof *gid);
            ngroups = group_rows(q, kv, ng, rel->n, gid, &first);
        } else {
            ngroups = 1;
            first = NULL;
        }
        /* One group: the ids (all 0) are made only if an aggregate needs them. */
        uint32_t *gid0 = NULL;
        struct wh_rel *grel = wh__rel_new(q, ng + nagg, ngroups);
        for (int k = 0; k < ng; k++) {
            grel->cols[k] = wh__vec_gather(q, kv[k], first, ngroups);
            grel->names[k] = "\x01key";
        }
        for (int k = 0; k < nagg; k++) {
            keys[ng + k] = aggs[k].node;
            kcol[ng + k] = -1;
            const uint32_t *g = gid;
            json_t *afc = json_object_get(aggs[k].node, "FuncCall");
            if (!g && !(aggs[k].star && !strcmp(aggs[k].name, "count") &&
                        !json_object_get(afc, "agg_filter"))) {
                if (!gid0)
                    gid0 = wh__calloc(q, rel->n ? rel->n : 1, sizeof *gid0);
                g = gid0;
            }
            grel->cols[ng + k] = agg_compute(q, &aggs[k], rel, g, ngroups);
            grel->names[ng + k] = "\x01agg";
        }
        ctx.rel = grel;
        ctx.base = rel;
        ctx.subst = keys;
        ctx.subst_col = kcol;
        ctx.nsubst = ng + nagg;
        if (having) {
            struct wh_expr *e = wh__bind(q, &ctx, having);
            if (e->type != WH_T_BOOL)
                wh__fail(q, WEIR_EINVAL, wh__loc(having),
                         "argument of HAVING must be type boolean");
            struct wh_rel *f = filter_rel(q, grel, wh__eval(q, e, grel));
            ctx.rel = f;
        }
    }
    /* Window functions: computed over the (grouped) rows, then visible as extra columns. */
    json_t **wins = NULL;
    int nwin = 0, wcap = 0;
    collect_windows(tl, &wins, &nwin, &wcap, q);
    collect_windows(json_object_get(b, "sortClause"), &wins, &nwin, &wcap, q);
    if (nwin) {
        const struct wh_rel *src = ctx.rel;
        struct wh_rel *wr = wh__rel_new(q, src->ncols + nwin, src->n);
        memcpy(wr->cols, src->cols, (size_t)src->ncols * sizeof *wr->cols);
        memcpy(wr->names, src->names, (size_t)src->ncols * sizeof *wr->names);
        memcpy(wr->quals, src->quals, (size_t)src->ncols * sizeof *wr->quals);
        int base_subst = ctx.nsubst;
        json_t **subst = wh__calloc(q, (size_t)(src->ncols + nwin) + 1, sizeof *subst);
        int *scol = wh__calloc(q, (size_t)(src->ncols + nwin) + 1, sizeof *scol);
        /* Substitutions index the columns of ctx.rel: grouped keys/aggregates keep theirs;
         * for plain rows, columns are found by name, so only the windows are added. */
        for (int k = 0; k < src->ncols + nwin; k++)
            scol[k] = -1;
        for (int k = 0; k < base_subst; k++) {
            subst[k] = ctx.subst[k];
            scol[k] = ctx.subst_col[k];
        }
        for (int k = 0; k < nwin; k++) {
            wr->cols[src->ncols + k] =
                compute_window(q, &ctx, wins[k], json_object_get(b, "windowClause"));
            wr->names[src->ncols + k] = "\x01win";
        }
        if (ctx.base) {
            for (int k = 0; k < nwin; k++)
                subst[base_subst + k] = wins[k];
            ctx.nsubst = base_subst + nwin;
        } else {
            /* Plain rows: substitution k must be column k, so pad with never-matching
             * entries up to the window columns. */
            for (int k = 0; k < src->ncols; k++)
                subst[k] = json_null();
            for (int k = 0; k < nwin; k++)
                subst[src->ncols + k] = wins[k];
            ctx.nsubst = src->ncols + nwin;
        }
        ctx.subst = subst;
        ctx.subst_col = scol;
        ctx.rel = wr;
        if (!ctx.base)
            rel = wr;
    }
    /* Projection, with * and t.* expanded. */
    int cap = 16, nout = 0;
    struct wh_vec **ocols = wh__calloc(q, (size_t)cap, sizeof *ocols);
    const char **onames = wh__calloc(q, (size_t)cap, sizeof *onames);
    for (size_t t = 0; t < json_array_size(tl); t++) {
        json_t *rt = json_object_get(json_array_get(tl, t), "ResTarget");
        json_t *val = json_object_get(rt, "val");
        json_t *cr = json_object_get(val, "ColumnRef");
        json_t *f = cr ? json_object_get(cr, "fields") : NULL;
        bool star = f && json_object_get(json_array_get(f, json_array_size(f) - 1), "A_Star");
        if (nout + rel->ncols + 1 >= cap) {
            int nc = (cap + rel->ncols) * 2;
            struct wh_vec **a = wh__calloc(q, (size_t)nc, sizeof *a);
            const char **nn = wh__calloc(q, (size_t)nc, sizeof *nn);
            memcpy(a, ocols, (size_t)nout * sizeof *a);
            memcpy(nn, onames, (size_t)nout * sizeof *nn);
            ocols = a;
            onames = nn;
            cap = nc;
        }
        if (star) {
            if (ctx.base)
                wh__fail(q, WEIR_EINVAL, wh__loc(val), "* is not allowed with GROUP BY");
            const char *qual = json_array_size(f) == 2 ? wh__sval(json_array_get(f, 0)) : NULL;
            bool any = false;
            for (int c = 0; c < rel->ncols; c++) {
                if (rel->names[c][0] == '\x01')
                    continue;
                if (qual && (!rel->quals[c] || strcmp(rel->quals[c], qual)))
                    continue;
                if (!rel->cols[c])
                    wh__fail(q, WEIR_EINTERNAL, wh__loc(val), "column not loaded");
                ocols[nout] = rel->cols[c];
                onames[nout++] = rel->names[c];
                any = true;
            }
            if (qual && !any)
                wh__fail(q, WEIR_ENOTFOUND, wh__loc(val),
                         "missing FROM-clause entry for table \"%s\"", qual);
            continue;
        }
        struct wh_expr *e = wh__bind(q, &ctx, val);
        ocols[nout] = wh__eval_par(q, e, ctx.rel);
        if (ocols[nout]->type == WH_T_UNKNOWN)
            ocols[nout] = wh__cast(q, ocols[nout], WH_T_TEXT, 0, e->loc);
        onames[nout++] = target_name(rt);
    }
    struct wh_rel *out = wh__rel_new(q, nout, ctx.rel->n);
    for (int c = 0; c < nout; c++) {
        out->cols[c] = ocols[c];
        out->names[c] = onames[c];
    }
    json_t *dc = json_object_get(b, "distinctClause");
    if (json_array_size(dc) &&
        !(json_array_size(dc) == 1 && json_object_size(json_array_get(dc, 0)) == 0))
        wh__fail(q, WEIR_EINVAL, wh__loc(json_array_get(dc, 0)), "DISTINCT ON is not supported");
    return sort_limit(q, out, b, &ctx, json_array_size(dc) > 0);
}

static struct wh_rel *select_body(struct wh_q *q, json_t *b)
{
    static const char *const ok[] = {
        "targetList", "fromClause",  "whereClause",    "groupClause", "havingClause", "sortClause",
        "limitCount", "limitOffset", "limitOption",    "op",          "all",          "larg",
        "rarg",       "withClause",  "distinctClause", "valuesLists", "windowClause", NULL
    };
    const char *bad = first_bad_key(b, ok);
    if (bad)
        wh__fail(q, WEIR_EINVAL, -1, "SELECT clause %s is not supported", bad);
    struct wh_cte *saved = q->ctes;
    json_t *with = json_object_get(b, "withClause");
    if (with) {
        if (json_is_true(json_object_get(with, "recursive")))
            wh__fail(q, WEIR_EINVAL, wh__loc(with), "WITH RECURSIVE is not supported");
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(with, "ctes"), i, c) {
            json_t *cb = json_object_get(c, "CommonTableExpr");
            json_t *sub = json_object_get(json_object_get(cb, "ctequery"), "SelectStmt");
            if (!sub)
                wh__fail(q, WEIR_EINVAL, wh__loc(c), "only SELECT is supported in WITH");
            struct wh_rel *r = copy_rel_header(q, select_body(q, sub));
            json_t *cn = json_object_get(cb, "aliascolnames");
            for (size_t k = 0; k < json_array_size(cn) && (int)k < r->ncols; k++)
                r->names[k] = wh__sval(json_array_get(cn, k));
            struct wh_cte *ce = wh__calloc(q, 1, sizeof *ce);
            ce->name = json_string_value(json_object_get(cb, "ctename"));
            ce->rel = r;
            ce->next = q->ctes;
            q->ctes = ce;
        }
    }
    struct wh_rel *out;
    const char *op = json_string_value(json_object_get(b, "op"));
    if (op && strcmp(op, "SETOP_NONE"))
        out = sort_limit(q, setop(q, b), b, NULL, false);
    else if (json_object_get(b, "valuesLists"))
        out = sort_limit(q, values_rel(q, json_object_get(b, "valuesLists")), b, NULL, false);
    else
        out = select_core(q, b);
    q->ctes = saved;
    return out;
}

struct wh_rel *wh__select(struct wh_q *q, json_t *select_stmt)
{
    return select_body(q, select_stmt);
}
