# Template engine (core/tmpl.c, core/tmpl_eval.c, core/tmpl_lib.c).
weir_unit_test(tmpl unit/test_tmpl.c weir_core)
