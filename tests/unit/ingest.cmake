# ingest: the weather and gharchive plugins. Unit tests of their pure parts (weir_wxlib,
# weir_ghflat, weir_ingest), the flattening benchmark driver used by
# bench/gharchive_flatten.sh, and a smoke run of that driver on the sample events.
weir_unit_test(gharchive unit/test_gharchive.c weir_ghflat)
target_compile_definitions(test_gharchive PRIVATE
  WEIR_FIXTURES="${PROJECT_SOURCE_DIR}/../shared/fixtures")

weir_unit_test(weather unit/test_weather.c weir_wxlib weir_ingest)
target_compile_definitions(test_weather PRIVATE
  WEIR_FIXTURES="${PROJECT_SOURCE_DIR}/../shared/fixtures"
  WEIR_DAGS_DATA="${PROJECT_SOURCE_DIR}/dags/data")

add_executable(ghflat_bench helpers/ghflat_bench.c)
target_link_libraries(ghflat_bench PRIVATE weir_ghflat weir_warnings)
