/* executor/doc.c - pulls one task (and the params) out of a DAG doc's text without parsing
 * the whole document.
 *
 * Why: a task runner needs one task of the pinned DAG version, but json_loads of a
 * 1000-task doc costs more CPU than the rest of a no-op try together (about 1 ms of 2 in
 * a measurement). Skipping over JSON text allocates nothing and runs at memchr speed, so
 * the runner scans the doc, parses only `params` and the task it runs, and falls back to a
 * full parse when the text is not what it expects. The scanner checks every bound: the
 * text comes from the store, which is external input. */
#include "executor/executor_int.h"

#include <string.h>

#include "core/err.h"

#define MAX_DEPTH 256

struct scan {
    const char *p, *end;
};

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Skips a string starting at s->p ('"'); sets [*b, *e) to its raw contents. */
static bool skip_string(struct scan *s, const char **b, const char **e)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *q = s->p + 1;
    while (q < s->end) {
        if (*q == '\\') {
            q += 2;
            continue;
        }
        if (*q == '"') {
            if (b)
                *b = s->p + 1;
            if (e)
                *e = q;
            s->p = q + 1;
            return true;
        }
        q++;
    }
    return false;
}

/* Skips one value of any kind. */
static bool skip_value(struct scan *s)
{
    int depth = 0;
    ws(s);
    do {
        if (s->p >= s->end)
            return false;
        char c = *s->p;
        if (c == '"') {
            if (!skip_string(s, NULL, NULL))
                return false;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_DEPTH)
                return false;
            s->p++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return false;
            s->p++;
        } else if (depth > 0) {
            s->p++; /* ',', ':', whitespace, literal characters inside a container */
        } else {
            /* a literal at top level: up to the next delimiter */
            while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
                s->p++;
        }
    } while (depth > 0);
    return true;
}

static bool key_is(const char *b, const char *e, const char *key)
{
    size_t n = strlen(key);
    return (size_t)(e - b) == n && memcmp(b, key, n) == 0;
}

/* Calls fn for each member of the object at s->p; stops early when fn returns 1.
 * Returns -1 on malformed text, 0 when done, 1 when stopped. */
typedef int (*member_fn)(void *ud, const char *kb, const char *ke, struct scan *val);

static int each_member(struct scan *s, member_fn fn, void *ud)
{
    ws(s);
    if (s->p >= s->end || *s->p != '{')
        return -1;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *kb, *ke;
        ws(s);
        if (!skip_string(s, &kb, &ke))
            return -1;
        ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        ws(s);
        struct scan v = { s->p, s->end };
        int rc = fn(ud, kb, ke, &v);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return 1;
        if (v.p != s->p) /* fn consumed the value */
            s->p = v.p;
        else if (!skip_value(s))
            return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        return -1;
    }
}

/* Within one task object: is its task_id `id`? */
struct id_match {
    const char *id;
    bool match;
};

static int task_id_member(void *ud, const char *kb, const char *ke, struct scan *v)
{
    struct id_match *m = ud;
    if (!key_is(kb, ke, "task_id"))
        return 0;
    const char *b, *e;
    /* ids are [A-Za-z0-9_.-]: they never need escapes, so raw bytes compare exactly */
    if (skip_string(v, &b, &e) && key_is(b, e, m->id))
        m->match = true;
    return 1;
}

struct doc_want {
    const char *task_id;
    json_t *task, *params;
    bool bad;
};

static json_t *load_span(const char *b, const char *e)
{
    return json_loadb(b, (size_t)(e - b), JSON_REJECT_DUPLICATES, NULL);
}

static int doc_member(void *ud, const char *kb, const char *ke, struct scan *v)
{
    struct doc_want *w = ud;
    if (key_is(kb, ke, "params")) {
        const char *b = v->p;
        if (!skip_value(v))
            return -1;
        w->params = load_span(b, v->p);
        if (!w->params)
            w->bad = true;
        return 0;
    }
    if (!key_is(kb, ke, "tasks"))
        return 0;
    ws(v);
    if (v->p >= v->end || *v->p != '[')
        return -1;
    v->p++;
    for (;;) {
        ws(v);
        if (v->p < v->end && *v->p == ']') {
            v->p++;
            return 0;
        }
        const char *b = v->p;
        struct scan t = { v->p, v->end };
        struct id_match m = { w->task_id, false };
        if (each_member(&t, task_id_member, &m) < 0)
            return -1;
        if (!skip_value(v))
            return -1;
        if (m.match && !w->task) {
            w->task = load_span(b, v->p);
            if (!w->task)
                w->bad = true;
        }
        ws(v);
        if (v->p < v->end && *v->p == ',') {
            v->p++;
            continue;
        }
        if (v->p < v->end && *v->p == ']') {
            v->p++;
            return 0;
        }
        return -1;
    }
}

int exec__doc_task(const char *text, size_t len, const char *task_id, json_t **task,
                   json_t **params, struct weir_err *err)
{
    struct doc_want w = { .task_id = task_id };
    struct scan s = { text, text + len };
    *task = *params = NULL;
    int rc = each_member(&s, doc_member, &w);
    if (rc < 0 || w.bad) {
        json_decref(w.task);
        json_decref(w.params);
        return err_set(err, WEIR_EINVAL, "malformed DAG document");
    }
    if (!w.task) {
        json_decref(w.params);
        return err_set(err, WEIR_ENOTFOUND, "task '%s' not in the DAG document", task_id);
    }
    *task = w.task;
    *params = w.params ? w.params : json_object();
    return 0;
}
