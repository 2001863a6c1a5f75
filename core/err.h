/* core/err.h - weir's error codes and the error struct every fallible call fills.
 * Functions return 0 (or a count) on success and a negative WEIR_E* code on failure;
 * constructors return NULL. Codes are only ever appended, never renumbered. */
#ifndef WEIR_CORE_ERR_H
#define WEIR_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum weir_errcode {
    WEIR_OK = 0,
    WEIR_EINVAL = 1,    /* bad input: the caller must fix its request */
    WEIR_ENOTFOUND = 2, /* the named thing does not exist */
    WEIR_ECONFLICT = 3, /* exists already, or the state changed underneath */
    WEIR_ETOOBIG = 4,   /* a size limit was hit */
    WEIR_EUNAVAIL = 5,  /* temporarily unavailable: retry later */
    WEIR_ETIMEOUT = 6,  /* a deadline passed */
    WEIR_EIO = 7,       /* an operating system or I/O failure */
    WEIR_EINTERNAL = 8, /* a bug: should never happen */
};

/* Lives on the caller's stack; every function that takes one accepts NULL.
 * `msg` is one line, lower case, no full stop (git style). `loc` optionally names
 * where the problem is, e.g. "dags/x.yaml:12:5"; empty when unknown. */
struct weir_err {
    int code;
    char msg[256];
    char loc[128];
};

/* Fills `err` (if not NULL) with `code` and the formatted message, clears `loc`,
 * and returns -code so that failing is one line: `return err_set(err, ...)`. */
int err_set(struct weir_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_vset(struct weir_err *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Like err_set, and also records a location ("file:line:col"). Returns -code. */
int err_set_at(struct weir_err *err, int code, const char *loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prepends "prefix: " to the message already in `err` (for adding context on the way
 * up). Returns -err->code (or -WEIR_EINTERNAL if err is NULL). */
int err_prefix(struct weir_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets `err` to "no error". NULL-safe. */
void err_clear(struct weir_err *err);

/* The stable lower-case name of a code ("invalid", "not found", ...); never NULL. */
const char *err_name(int code);

/* Thread-safe strerror: text for errno value `errnum`, written into `buf` if needed. */
const char *err_errno(int errnum, char *buf, size_t len);

#endif
