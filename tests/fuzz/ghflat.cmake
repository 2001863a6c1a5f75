# gharchive flattener fuzz target (plugins/gharchive/ghflat.c): the fast extractor must agree
# with the jansson reference. ctest replays the seed corpus through replay_main.c; for real
# fuzzing build fuzz/fuzz_ghflat.c with clang -fsanitize=fuzzer,address,undefined and
# -dict=fuzz/ghflat.dict.
add_executable(fuzz_ghflat_replay fuzz/fuzz_ghflat.c fuzz/replay_main.c)
target_link_libraries(fuzz_ghflat_replay PRIVATE weir_ghflat weir_warnings)
add_test(NAME fuzz.ghflat COMMAND fuzz_ghflat_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/ghflat)
set_tests_properties(fuzz.ghflat PROPERTIES LABELS fuzz TIMEOUT 60 ENVIRONMENT "${WEIR_TEST_ENV}")
