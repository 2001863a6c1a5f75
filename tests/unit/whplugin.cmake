# warehouse plugin: unit tests of its pure parts (plugins/warehouse/whlib.c): table names,
# SQL quoting, input formats, the database folder, CSV headers and results as JSON. The
# operators themselves run end to end in tests/e2e/test_s3_pipelines.py.
if(TARGET weir_whlib)
  weir_unit_test(whplugin unit/test_whplugin.c weir_whlib)
endif()
