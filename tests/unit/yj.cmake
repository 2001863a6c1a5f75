weir_unit_test(yj unit/test_yj.c weir_core)
