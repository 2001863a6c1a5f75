# Cron, time zones and timestamps (core/ts.c, core/tz.c, core/cron.c) and `weir cron`.
weir_unit_test(time unit/test_time.c weir_core)

# cronprobe: batch driver for the reference test; also runs cli/cron.c (`cronprobe cron ...`).
add_executable(cronprobe helpers/cronprobe.c ${PROJECT_SOURCE_DIR}/cli/cron.c)
target_link_libraries(cronprobe PRIVATE weir_core weir_warnings)
target_include_directories(cronprobe PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)

find_package(Python3 3.9 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME unit.cron_reference
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/cron_reference.py
      --probe $<TARGET_FILE:cronprobe>)
  set_tests_properties(unit.cron_reference PROPERTIES LABELS unit TIMEOUT 300
    ENVIRONMENT "${WEIR_TEST_ENV}")
  add_test(NAME unit.cron_cli
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/helpers/cron_cli_test.py
      --probe $<TARGET_FILE:cronprobe>)
  set_tests_properties(unit.cron_cli PROPERTIES LABELS unit TIMEOUT 60
    ENVIRONMENT "${WEIR_TEST_ENV}")
endif()
