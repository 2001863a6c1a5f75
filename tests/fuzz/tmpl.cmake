# fuzz.tmpl: the template engine (core/tmpl.h). ctest replays the seed corpus through
# replay_main.c with the normal compiler (gcc and Sanitize builds check it too). With clang
# and -DWEIR_FUZZ=ON (see dag.cmake) the libFuzzer binary fuzz_tmpl is built as well; a
# session: fuzz_tmpl -dict=tests/fuzz/tmpl.dict -max_total_time=300 /tmp/tmpl-corpus
# tests/fuzz/corpus/tmpl (docs/templates.md shows a build without CMake).
add_executable(fuzz_tmpl_replay fuzz/fuzz_tmpl.c fuzz/replay_main.c)
target_link_libraries(fuzz_tmpl_replay PRIVATE weir_core weir_warnings)
target_include_directories(fuzz_tmpl_replay PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
add_test(NAME fuzz.tmpl COMMAND fuzz_tmpl_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/tmpl)
set_tests_properties(fuzz.tmpl PROPERTIES LABELS fuzz TIMEOUT 60 ENVIRONMENT "${WEIR_TEST_ENV}")
if(WEIR_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_tmpl fuzz/fuzz_tmpl.c)
  target_link_libraries(fuzz_tmpl PRIVATE weir_core weir_warnings)
  target_include_directories(fuzz_tmpl PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(fuzz_tmpl PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_tmpl PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
