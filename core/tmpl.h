/* core/tmpl.h - the template language of DAG files and dbt models: a Jinja2 subset.
 *   {{ expr }}          output, with filters: {{ ds | replace('-', '') | upper }}
 *   {% if e %}..{% elif e %}..{% else %}..{% endif %}
 *   {% for x in e %}..{% else %}..{% endfor %}  (loop.index, loop.index0, loop.first, loop.last, loop.length)
 *   {% set x = e %}     {# comment #}           whitespace control with {%- -%} {{- -}}
 * Expressions: literals (strings, numbers, true/false/none, lists, dicts), names, a.b,
 * a['b'], a[0], calls f(x, y), filters, + - * / // % ~ (concat), == != < <= > >=,
 * and/or/not, in / not in, `x if c else y`, is defined / is none.
 * Built-in filters: upper lower title capitalize trim replace default(d) length join(sep)
 * first last int float string tojson abs round(n) list sort reverse unique.
 * Values are jansson values. Undefined names render as an error (StrictUndefined), so a
 * typo fails the task with a clear message instead of rendering an empty string. */
#ifndef WEIR_CORE_TMPL_H
#define WEIR_CORE_TMPL_H

#include <jansson.h>
#include <stddef.h>

struct weir_err;

/* A host function callable from templates, e.g. var('x') or xcom('task', 'key').
 * `args` is a JSON array (borrowed). Returns a new reference, or NULL with `err` filled
 * (the render then fails with that message). Return -WEIR_ENOTFOUND in err->code
 * only via err_set; the engine reports "unknown function 'f'" when `call` is NULL. */
typedef json_t *(*tmpl_call_fn)(void *ud, const char *name, json_t *args, struct weir_err *err);

struct tmpl_env {
    json_t *vars;      /* top-level names (a JSON object, borrowed), e.g. ds, params, dag */
    tmpl_call_fn call; /* host functions; NULL means none */
    void *ud;          /* passed to `call` */
    size_t max_output; /* render fails with -WEIR_ETOOBIG past this many bytes; 0 = 16 MiB */
};

/* Renders `src`. On success returns 0 and sets *out to a new NUL-terminated string (free
 * with free()). On failure returns a negative WEIR_E* code; err->msg says what failed and
 * err->loc gives "line:col" inside the template; *out is NULL. Any thread. */
int tmpl_render(const char *src, const struct tmpl_env *env, char **out, struct weir_err *err);

/* Renders every string inside `value` (objects and arrays recursively; keys are not
 * rendered) and returns a new deep copy in *out. Errors as tmpl_render, with the JSON path
 * of the failing string prepended to the message ("with.to: ..."). */
int tmpl_render_json(json_t *value, const struct tmpl_env *env, json_t **out,
                     struct weir_err *err);

/* Checks the syntax of `src` without rendering (for DAG validation). 0 or -WEIR_EINVAL. */
int tmpl_check(const char *src, struct weir_err *err);

#endif
