weir_unit_test(cfg unit/test_cfg.c weir_core)
