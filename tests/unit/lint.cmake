# STYLE.md's cheap guards: banned functions, module boundaries, self-contained headers.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME unit.lint COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/lint/lint.py
  ${PROJECT_SOURCE_DIR} ${CMAKE_C_COMPILER} ${JANSSON_INCLUDE_DIRS} ${LIBUV_INCLUDE_DIRS})
set_tests_properties(unit.lint PROPERTIES LABELS unit TIMEOUT 120)
