/* core/str.h - small string helpers shared across modules. */
#ifndef WEIR_CORE_STR_H
#define WEIR_CORE_STR_H

#include <stddef.h>

/* Optimal string alignment distance between `a` and `b` (Levenshtein plus adjacent
 * swaps), for "did you mean" suggestions. Strings longer than 63 bytes are never close
 * to anything: the result is then 64. Any thread. */
size_t str_edit_distance(const char *a, const char *b);

#endif
