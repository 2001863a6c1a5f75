/* core/tmpl.h - the template language of DAG files and dbt models: a Jinja2 subset.
 *   {{ expr }}          output, with filters: {{ ds | replace('-', '') | upper }}
 *   {% if e %}..{% elif e %}..{% else %}..{% endif %}
 *   {% for x in e %}..{% else %}..{% endfor %}  (loop.index, loop.index0, loop.first, loop.last, loop.length)
 *   {% set x = e %}     {# comment #}           whitespace control with {%- -%} {{- -}}
 * Expressions: literals (strings, numbers, true/false/none, lists, dicts), names, a.b,
 * a['b'], a[0], calls f(x, y), filters, + - * / // % ~ (concat), == != < <= > >=,
 * and/or/not, in / not in, `x if c else y`, is defined / is none.
 * Built-in filters: upper lower title capitalize trim replace default(d) length join(sep)
 * first last int float string tojson abs round(n) list sort reverse unique, and also
 * ds_add(days) ds_format(in, out) strftime(fmt) format min max sum map dictsort items split
 * safe count d; 'fmt' % args formats like Python. Airflow spellings work too:
 * macros.ds_add(), var.value.x, ti.xcom_pull().
 * Engine functions: range(), namespace(), ds_add(), ds_format() (also as macros.ds_add...).
 * Values are jansson values. Undefined names render as an error (StrictUndefined), so a
 * typo fails the task with a clear message instead of rendering an empty string.
 * Output: strings as is, integers as integers, reals like Python's str() (1.5, 2.0),
 * True/False/None, lists and dicts as JSON ([1, "a"]). One trailing newline of the
 * template is dropped, as in Jinja. Full reference: docs/templates.md.
 * Every size is bounded (output, loop iterations, nesting depth, work): hostile input
 * fails with -WEIR_ETOOBIG, never a crash. */
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
 * err->loc gives "line:col" inside the template; *out is NULL. Codes: -WEIR_EINVAL for
 * syntax and evaluation errors, -WEIR_ETOOBIG past a limit, or the code a host function
 * set. `env` may be NULL (no variables, no functions). Any thread; `env->call` runs on the
 * calling thread. */
int tmpl_render(const char *src, const struct tmpl_env *env, char **out, struct weir_err *err);

/* Renders every string inside `value` (objects and arrays recursively; keys are not
 * rendered) and returns a new deep copy in *out (caller owns it; `value` is not changed).
 * Errors as tmpl_render, with the JSON path of the failing string prepended to the message
 * ("with.to: ...", "cmds[2]: ..."); a rendered string that is not UTF-8 is -WEIR_EINVAL. */
int tmpl_render_json(json_t *value, const struct tmpl_env *env, json_t **out,
                     struct weir_err *err);

/* Checks the syntax of `src` without rendering (for DAG validation): tags, expressions,
 * and that every filter and test exists; names and functions are resolved only when
 * rendering. Returns 0, -WEIR_EINVAL (err->msg, err->loc as for tmpl_render), or
 * -WEIR_ETOOBIG when the template nests too deeply or is too big. Any thread. */
int tmpl_check(const char *src, struct weir_err *err);

#endif
