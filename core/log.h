/* core/log.h - one-line structured logging to stderr: `ts level module message k=v...`.
 * Each .c file defines LOG_MODULE before including this header. The macros test the
 * level before formatting anything. Any thread may log; a line goes out in one write().
 * Registered secrets are masked in the single sink. */
#ifndef WEIR_CORE_LOG_H
#define WEIR_CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

extern int log_level_current;

#ifndef LOG_MODULE
#define LOG_MODULE "weir"
#endif

void log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT(lvl, ...)                                                                          \
    do {                                                                                          \
        if ((lvl) <= log_level_current)                                                           \
            log_write((lvl), LOG_MODULE, __VA_ARGS__);                                            \
    } while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

/* Sets the level from a name ("error", "warn", "info", "debug"). Returns 0, or -WEIR_EINVAL
 * for an unknown name (level unchanged). Call before starting threads. */
int log_set_level_name(const char *name);

/* Registers a secret (>= 4 bytes) that the sink replaces by "***" in every line.
 * Copies `secret`. Thread-safe. */
void log_add_secret(const char *secret);

/* Replaces every registered secret in `s` (NUL-terminated, modified in place, never
 * grows) by "***". Used by the log sink and by task-log writers. Thread-safe. */
void log_mask_secrets(char *s);

#endif
