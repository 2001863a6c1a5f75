# fuzz.dag: the DAG file parser (YAML + schema). ctest replays the seed corpus through a
# plain main (replay_main.c), so gcc and sanitizer builds check it; with clang and
# -DWEIR_FUZZ=ON a real libFuzzer binary fuzz_dag is built too (the C flags instrument the
# libraries for coverage; new inputs go to the first folder, seeds are read from the second):
#   CC=clang cmake -B build-fuzz -DWEIR_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
#     -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined"
#   cmake --build build-fuzz --target fuzz_dag
#   mkdir -p /tmp/dag-corpus && build-fuzz/tests/fuzz_dag -dict=tests/fuzz/dag.dict \
#     -max_total_time=300 /tmp/dag-corpus tests/fuzz/corpus/dag

# weir_fuzz_target(NAME SRC LIBS...) builds tests/fuzz/SRC with replay_main.c as
# fuzz_NAME_replay, registers ctest fuzz.NAME over corpus/NAME, and with WEIR_FUZZ builds
# the libFuzzer binary fuzz_NAME. Shared by every tests/fuzz/*.cmake (defined once).
if(NOT COMMAND weir_fuzz_target)
  option(WEIR_FUZZ "build libFuzzer targets (needs clang)" OFF)
  function(weir_fuzz_target name src)
    add_executable(fuzz_${name}_replay ${src} fuzz/replay_main.c)
    target_link_libraries(fuzz_${name}_replay PRIVATE ${ARGN} weir_warnings)
    target_include_directories(fuzz_${name}_replay PRIVATE ${PROJECT_SOURCE_DIR}
      ${PROJECT_SOURCE_DIR}/include)
    add_test(NAME fuzz.${name} COMMAND fuzz_${name}_replay
      ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300
      ENVIRONMENT "${WEIR_TEST_ENV}")
    if(WEIR_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
      add_executable(fuzz_${name} ${src})
      target_link_libraries(fuzz_${name} PRIVATE ${ARGN} weir_warnings)
      target_include_directories(fuzz_${name} PRIVATE ${PROJECT_SOURCE_DIR}
        ${PROJECT_SOURCE_DIR}/include)
      target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    endif()
  endfunction()
endif()

weir_fuzz_target(dag fuzz/fuzz_dag.c weir_scheduler)
