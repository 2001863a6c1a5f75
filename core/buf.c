/* core/buf.c - growable byte buffer. */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

#define BUF_DEFAULT_MAX ((size_t)1 << 30)

void buf_init(struct buf *b, size_t max)
{
    b->cap = 64;
    b->s = xmalloc(b->cap);
    b->s[0] = '\0';
    b->len = 0;
    b->max = max ? max : BUF_DEFAULT_MAX;
}

void buf_release(struct buf *b)
{
    if (!b)
        return;
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

static int grow(struct buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return -WEIR_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
    return 0;
}

int buf_add(struct buf *b, const void *data, size_t len)
{
    int rc = grow(b, len);
    if (rc)
        return rc;
    memcpy(b->s + b->len, data, len);
    b->len += len;
    b->s[b->len] = '\0';
    return 0;
}

int buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
    return buf_add(b, &c, 1);
}

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(b->s ? b->s + b->len : NULL, b->cap - b->len, fmt, cp);
    va_end(cp);
    if (n < 0)
        return -WEIR_EINVAL;
    if ((size_t)n >= b->cap - b->len) {
        int rc = grow(b, (size_t)n);
        if (rc) {
            b->s[b->len] = '\0';
            return rc;
        }
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    }
    if ((size_t)n > b->max - b->len) {
        if (b->s)
            b->s[b->len] = '\0';
        return -WEIR_ETOOBIG;
    }
    b->len += (size_t)n;
    return 0;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vaddf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *buf_detach(struct buf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    /* Leaves the buf empty without memory, so forgetting buf_release after a detach
     * leaks nothing; appending works again (the first append allocates). */
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}
