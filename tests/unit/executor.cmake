# executor: plugin registry (with fixture plugins), local executor, task runner, and the
# check that every plugin exports exactly weir_plugin_init.
set(WEIR_FIXTURE_DIR ${CMAKE_CURRENT_BINARY_DIR}/plugins_fixtures)
set(_weir_fixtures)
# Output names: the good plugin's file is named after it (weir_fixture.so, found first by a
# lazy lookup); the duplicate sorts after it.
foreach(_fx good:fixture bad_abi:fix_abi2 no_symbol:fix_nosym null_init:fix_null dup:fixz_dup
            old_size:fix_old small:fix_small)
  string(REPLACE ":" ";" _p ${_fx})
  list(GET _p 0 _src)
  list(GET _p 1 _out)
  add_library(weir_fixture_${_src} MODULE unit/plugins_fixtures/${_src}.c)
  set_target_properties(weir_fixture_${_src} PROPERTIES PREFIX "" OUTPUT_NAME weir_${_out}
    LIBRARY_OUTPUT_DIRECTORY ${WEIR_FIXTURE_DIR} C_VISIBILITY_PRESET hidden)
  target_include_directories(weir_fixture_${_src} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(weir_fixture_${_src} PRIVATE weir_warnings PkgConfig::JANSSON)
  list(APPEND _weir_fixtures weir_fixture_${_src})
endforeach()

weir_unit_test(plugins unit/test_plugins.c weir_executor)
add_dependencies(test_plugins weir_plugin_shell ${_weir_fixtures})
target_compile_definitions(test_plugins PRIVATE WEIR_FIXTURE_DIR="${WEIR_FIXTURE_DIR}"
  WEIR_PLUGIN_DIR="${PROJECT_BINARY_DIR}/plugins")

weir_unit_test(local_exec unit/test_local_exec.c weir_executor)

weir_unit_test(runner unit/test_runner.c weir_executor)
add_dependencies(test_runner weir_plugin_shell ${_weir_fixtures})
target_compile_definitions(test_runner PRIVATE WEIR_FIXTURE_DIR="${WEIR_FIXTURE_DIR}"
  WEIR_PLUGIN_DIR="${PROJECT_BINARY_DIR}/plugins")

# Every built plugin exports exactly one symbol (jansson's check-exports).
add_test(NAME unit.plugin_exports
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_plugin_exports.sh ${PROJECT_BINARY_DIR}/plugins)
set_tests_properties(unit.plugin_exports PROPERTIES LABELS unit TIMEOUT 30)

weir_unit_test(ctl unit/test_ctl.c weir_executor)
target_link_libraries(test_ctl PRIVATE Threads::Threads)
