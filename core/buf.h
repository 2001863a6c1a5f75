/* core/buf.h - a growable NUL-terminated byte buffer with a required maximum size (curl
 * dynbuf, git strbuf). `s` is a valid C string after buf_init and after any append; only
 * buf_detach leaves it NULL. */
#ifndef WEIR_CORE_BUF_H
#define WEIR_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *s;    /* contents, NUL-terminated; owned by the buf */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* the most `len` may become; appends beyond it fail with -WEIR_ETOOBIG */
};

/* Initializes an empty buffer that may grow to `max` bytes (0 means 1 GiB). */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buf may be initialized again. NULL-safe. */
void buf_release(struct buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Appends; each returns 0 or -WEIR_ETOOBIG (buffer unchanged). */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the contents to the caller (free with free()) and leaves the buf empty and without
 * memory (`s` NULL until the next append; buf_release is then a no-op). */
char *buf_detach(struct buf *b);

#endif
