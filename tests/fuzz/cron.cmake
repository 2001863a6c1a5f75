# Cron / time parser fuzz target (core/cron.h, core/ts.h, core/tz.h). ctest replays the seed
# corpus through replay_main.c with the normal compiler; for real fuzzing build
# fuzz/fuzz_cron.c with clang -fsanitize=fuzzer,address,undefined and -dict=fuzz/cron.dict.
add_executable(fuzz_cron_replay fuzz/fuzz_cron.c fuzz/replay_main.c)
target_link_libraries(fuzz_cron_replay PRIVATE weir_core weir_warnings)
target_include_directories(fuzz_cron_replay PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
add_test(NAME fuzz.cron COMMAND fuzz_cron_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/cron)
set_tests_properties(fuzz.cron PROPERTIES LABELS fuzz TIMEOUT 60 ENVIRONMENT "${WEIR_TEST_ENV}")
