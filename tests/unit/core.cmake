weir_unit_test(core_basics unit/test_core_basics.c weir_core)
