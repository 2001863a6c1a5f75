# store: one cmocka suite run twice, against SQLite (unit.store) and against a throwaway
# PostgreSQL cluster (unit.store_pg). The cluster is the ctest fixture "pg": pg.start
# creates it under the build dir and writes its URL to ${WEIR_PG_DIR}/url; any test that
# needs PostgreSQL sets FIXTURES_REQUIRED pg and reads WEIR_TEST_PG_URL_FILE.
weir_unit_test(store unit/test_store.c weir_store)
target_link_libraries(test_store PRIVATE Threads::Threads PkgConfig::LIBPQ)

set(WEIR_PG_DIR ${CMAKE_BINARY_DIR}/pg-fixture)
set(WEIR_PG_SH ${CMAKE_CURRENT_LIST_DIR}/../helpers/pg.sh)
add_test(NAME pg.start COMMAND ${WEIR_PG_SH} start ${WEIR_PG_DIR})
set_tests_properties(pg.start PROPERTIES FIXTURES_SETUP pg LABELS pg TIMEOUT 90)
add_test(NAME pg.stop COMMAND ${WEIR_PG_SH} stop ${WEIR_PG_DIR})
set_tests_properties(pg.stop PROPERTIES FIXTURES_CLEANUP pg LABELS pg TIMEOUT 60)

add_test(NAME unit.store_pg COMMAND test_store --pg)
set_tests_properties(unit.store_pg PROPERTIES LABELS "unit;pg" TIMEOUT 120
  FIXTURES_REQUIRED pg
  ENVIRONMENT "${WEIR_TEST_ENV};WEIR_TEST_PG_URL_FILE=${WEIR_PG_DIR}/url")
