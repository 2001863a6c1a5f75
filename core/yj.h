/* core/yj.h - YAML (libyaml) to JSON (jansson) with source positions, for DAG files,
 * weir.yaml and dbt YAML. Scalars follow the YAML 1.2 core schema: plain `true/false`,
 * `null`/`~`/empty, integers and floats become JSON bool/null/integer/real; quoted
 * scalars and everything else stay strings. Mapping keys must be strings and unique.
 * Anchors and aliases are resolved by copy (with an expansion limit). Only the first
 * document of a stream is read; a second one is an error. */
#ifndef WEIR_CORE_YJ_H
#define WEIR_CORE_YJ_H

#include <jansson.h>
#include <stddef.h>

struct weir_err;
struct yj_doc;

/* Parses the file at `path` (at most 4 MiB). On error returns NULL and fills `err`
 * with a message naming the problem and err->loc = "path:line:col". Caller frees with
 * yj_free. */
struct yj_doc *yj_parse_file(const char *path, struct weir_err *err);

/* Parses `len` bytes of `src`; `name` is used in locations (e.g. the file name). */
struct yj_doc *yj_parse_string(const char *src, size_t len, const char *name, struct weir_err *err);

/* The parsed tree: borrowed, valid until yj_free. An empty document gives a JSON null. */
json_t *yj_root(const struct yj_doc *doc);

/* The name given at parse time (the path for yj_parse_file). Borrowed. */
const char *yj_name(const struct yj_doc *doc);

/* 1-based line and column of the key `key` inside mapping `obj` (a node of this doc).
 * Returns 0, or -WEIR_ENOTFOUND (line/col set to 0) when unknown. */
int yj_loc_key(const struct yj_doc *doc, const json_t *obj, const char *key, int *line, int *col);

/* Position of the value of `key` inside mapping `obj`. */
int yj_loc_value(const struct yj_doc *doc, const json_t *obj, const char *key, int *line, int *col);

/* Position of element `i` of sequence `arr`. */
int yj_loc_index(const struct yj_doc *doc, const json_t *arr, size_t i, int *line, int *col);

/* Position of the document's root node. */
void yj_loc_root(const struct yj_doc *doc, int *line, int *col);

/* Frees the document and its tree. NULL-safe. */
void yj_free(struct yj_doc *doc);

#endif
