# warehouse: cmocka unit tests, and the differential test against SQLite (tests/helpers).
if(TARGET weir_warehouse)
  weir_unit_test(warehouse unit/test_wh_engine.c weir_warehouse)
  add_executable(wh_driver helpers/wh_driver.c)
  target_link_libraries(wh_driver PRIVATE weir_warehouse weir_warnings)
  target_include_directories(wh_driver PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    # Once on 4 threads (the parallel paths, whatever the core count) and once on one.
    add_test(NAME unit.warehouse_diff
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_difftest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_diff
        --threads 4)
    add_test(NAME unit.warehouse_diff_1thread
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_difftest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_diff1
        --threads 1)
    set_tests_properties(unit.warehouse_diff unit.warehouse_diff_1thread PROPERTIES
      LABELS unit TIMEOUT 120 ENVIRONMENT "${WEIR_TEST_ENV}")
    # intervals, age, to_char and CREATE TABLE ... WITH (order_by, partition_by) against
    # PostgreSQL (the "pg" fixture of store.cmake).
    add_test(NAME unit.warehouse_pgdiff
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_pgdifftest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_pgdiff
        --threads 4)
    set_tests_properties(unit.warehouse_pgdiff PROPERTIES LABELS "unit;pg" TIMEOUT 120
      FIXTURES_REQUIRED pg
      ENVIRONMENT "${WEIR_TEST_ENV};WEIR_TEST_PG_URL_FILE=${CMAKE_BINARY_DIR}/pg-fixture/url")
    # kill -9 during large COPYs and during part merges; reopen and check every table.
    add_test(NAME unit.warehouse_crash
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_crashtest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_crash)
    set_tests_properties(unit.warehouse_crash PROPERTIES LABELS unit TIMEOUT 120
      ENVIRONMENT "${WEIR_TEST_ENV}")
    # several processes on one folder: concurrent inserts, merges and reads; a held lock
    # times out clearly; kill -9 of the holder releases it.
    add_test(NAME unit.warehouse_lock
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_locktest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_lock)
    set_tests_properties(unit.warehouse_lock PROPERTIES LABELS unit TIMEOUT 120
      ENVIRONMENT "${WEIR_TEST_ENV}")
  endif()
endif()
