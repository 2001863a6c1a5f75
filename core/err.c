/* core/err.c - filling struct weir_err. */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int err_vset(struct weir_err *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        err->loc[0] = '\0';
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return -code;
}

int err_set(struct weir_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = err_vset(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

int err_set_at(struct weir_err *err, int code, const char *loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = err_vset(err, code, fmt, ap);
    va_end(ap);
    if (err && loc)
        snprintf(err->loc, sizeof err->loc, "%s", loc);
    return rc;
}

int err_prefix(struct weir_err *err, const char *fmt, ...)
{
    if (!err)
        return -WEIR_EINTERNAL;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(pre, sizeof err->msg - 3);
    memcpy(err->msg, pre, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3, m = strnlen(old, room);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return -(err->code ? err->code : WEIR_EINTERNAL);
}

void err_clear(struct weir_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
        err->loc[0] = '\0';
    }
}

const char *err_name(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case WEIR_OK: return "ok";
    case WEIR_EINVAL: return "invalid";
    case WEIR_ENOTFOUND: return "not found";
    case WEIR_ECONFLICT: return "conflict";
    case WEIR_ETOOBIG: return "too big";
    case WEIR_EUNAVAIL: return "unavailable";
    case WEIR_ETIMEOUT: return "timeout";
    case WEIR_EIO: return "i/o error";
    case WEIR_EINTERNAL: return "internal error";
    default: return "unknown error";
    }
}

const char *err_errno(int errnum, char *buf, size_t len)
{
    return strerror_r(errnum, buf, len);
}
