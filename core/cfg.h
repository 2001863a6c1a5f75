/* core/cfg.h - configuration: `weir.yaml` in WEIR_HOME (default ~/.weir), a mapping of
 * sections to mappings of keys, with every key overridable by the environment variable
 * WEIR_<SECTION>__<KEY> (upper case). Embedded defaults live in cfg.c and are listed in
 * docs/configuration.md. A loaded cfg is immutable: any thread may read it. */
#ifndef WEIR_CORE_CFG_H
#define WEIR_CORE_CFG_H

#include <stdbool.h>
#include <stdint.h>

struct weir_err;
struct cfg;

/* Loads configuration for `home` (NULL: $WEIR_HOME, else $HOME/.weir); creates the home
 * folder if missing. A missing weir.yaml is fine; a broken one is an error naming
 * file:line:col. Unknown sections or keys are errors (typos must not pass silently).
 * Caller frees with cfg_free. */
struct cfg *cfg_load(const char *home, struct weir_err *err);
void cfg_free(struct cfg *cfg);

/* The home folder in use (absolute). Borrowed. */
const char *cfg_home(const struct cfg *cfg);

/* Values after defaults, file and environment; `section` and `key` must be known keys
 * (WEIR_ASSERT). Strings are borrowed from cfg. Relative paths are not resolved here. */
const char *cfg_str(const struct cfg *cfg, const char *section, const char *key);
/* Integer value; a non-integer value was already rejected by cfg_load. */
int64_t cfg_int(const struct cfg *cfg, const char *section, const char *key);
bool cfg_bool(const struct cfg *cfg, const char *section, const char *key);

/* Sets a value programmatically (CLI flags override everything). Copies both. */
void cfg_set(struct cfg *cfg, const char *section, const char *key, const char *value);

#endif
