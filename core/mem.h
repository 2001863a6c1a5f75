/* core/mem.h - allocation that cannot fail: heap OOM is the one fatal case (git, redis).
 * xmalloc and friends log and abort when the heap is exhausted; free with free(). */
#ifndef WEIR_CORE_MEM_H
#define WEIR_CORE_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formats into a new heap string (never NULL). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Stays on in every build: for programmer errors only, never for bad input. */
#define WEIR_ASSERT(cond)                                                                         \
    do {                                                                                          \
        if (!(cond))                                                                              \
            weir_assert_fail(#cond, __FILE__, __LINE__);                                          \
    } while (0)
void weir_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#define WEIR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
