# warehouse: cmocka unit tests, and the differential test against SQLite (tests/helpers).
if(TARGET weir_warehouse)
  weir_unit_test(warehouse unit/test_wh_engine.c weir_warehouse)
  add_executable(wh_driver helpers/wh_driver.c)
  target_link_libraries(wh_driver PRIVATE weir_warehouse weir_warnings)
  target_include_directories(wh_driver PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME unit.warehouse_diff
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_difftest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_diff)
    set_tests_properties(unit.warehouse_diff PROPERTIES LABELS unit TIMEOUT 120
      ENVIRONMENT "${WEIR_TEST_ENV}")
    # kill -9 during large COPYs and during part merges; reopen and check every table.
    add_test(NAME unit.warehouse_crash
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/wh_crashtest.py
        --driver $<TARGET_FILE:wh_driver> --workdir ${CMAKE_CURRENT_BINARY_DIR}/wh_crash)
    set_tests_properties(unit.warehouse_crash PROPERTIES LABELS unit TIMEOUT 120
      ENVIRONMENT "${WEIR_TEST_ENV}")
  endif()
endif()
