/* tests/fuzz/fuzz_dag.c - libFuzzer target for DAG files: YAML (core/yj) and the DAG
 * schema (scheduler/dag.c). Every input must either parse into a doc that serializes, or
 * fail with a code, a message and a location; never crash, leak or hang. Run with the
 * dictionary tests/fuzz/dag.dict and the corpus tests/fuzz/corpus/dag/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "scheduler/scheduler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A registry with one operator that has a schema, so the `with` checks run too. */
static bool fuzz_find(void *ud, const char *ref, const char **schema)
{
    (void)ud;
    if (strcmp(ref, "shell.run") == 0) {
        *schema = "{\"cmd\": {\"type\": \"string\", \"required\": true},"
                  " \"n\": {\"type\": \"integer\"}}";
        return true;
    }
    if (strcmp(ref, "test.noop") == 0) {
        *schema = NULL;
        return true;
    }
    return false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level_name("error"); /* schema warnings would flood the output */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sched_ops ops = { fuzz_find, NULL };
    for (int pass = 0; pass < 2; pass++) {
        json_t *doc = NULL;
        struct weir_err err;
        err_clear(&err);
        int rc = sched_dag_parse_string((const char *)data, size, "fuzz.yaml", pass ? &ops : NULL,
                                        &doc, &err);
        if (rc == 0) {
            WEIR_ASSERT(doc != NULL);
            char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
            WEIR_ASSERT(text != NULL);
            free(text);
            json_decref(doc);
        } else {
            WEIR_ASSERT(doc == NULL);
            WEIR_ASSERT(err.code > 0 && rc == -err.code);
            WEIR_ASSERT(err.msg[0] != '\0');
        }
    }
    return 0;
}
