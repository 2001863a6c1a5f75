/* tests/unit/test_core_basics.c - err, buf, arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"

static void test_err_set(void **state)
{
    (void)state;
    struct weir_err e;
    assert_int_equal(err_set(&e, WEIR_EINVAL, "task '%s': unknown key", "x"), -WEIR_EINVAL);
    assert_string_equal(e.msg, "task 'x': unknown key");
    assert_int_equal(err_set_at(&e, WEIR_ENOTFOUND, "a.yaml:3:4", "nope"), -WEIR_ENOTFOUND);
    assert_string_equal(e.loc, "a.yaml:3:4");
    err_prefix(&e, "dag '%s'", "d");
    assert_string_equal(e.msg, "dag 'd': nope");
    assert_int_equal(err_set(NULL, WEIR_EIO, "ignored"), -WEIR_EIO);
}

static void test_buf_limits(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_adds(&b, "hello"), 0);
    assert_int_equal(buf_addf(&b, "%d", 1234), 0);
    assert_string_equal(b.s, "hello1234");
    assert_int_equal(buf_adds(&b, "xy"), -WEIR_ETOOBIG);
    assert_string_equal(b.s, "hello1234");
    assert_int_equal(buf_addf(&b, "%s", "zz"), -WEIR_ETOOBIG);
    assert_string_equal(b.s, "hello1234");
    char *s = buf_detach(&b);
    assert_string_equal(s, "hello1234");
    free(s);
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

static int cleaned;
static void cleanup(void *p)
{
    cleaned += *(int *)p;
}

static void test_arena(void **state)
{
    (void)state;
    struct arena *a = arena_new(100000);
    int one = 1;
    char *s = arena_strdup(a, "abc");
    assert_string_equal(s, "abc");
    assert_non_null(arena_alloc(a, 50000));
    assert_null(arena_alloc(a, 60000)); /* over the limit */
    assert_int_equal(arena_on_reset(a, cleanup, &one), 0);
    arena_reset(a);
    assert_int_equal(cleaned, 1);
    assert_int_equal(arena_used(a), 0);
    assert_non_null(arena_alloc(a, 60000));
    assert_string_equal(arena_printf(a, "%s-%d", "x", 5), "x-5");
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set),
        cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
