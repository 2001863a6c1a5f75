# weather plugin parsers fuzz target (plugins/weather/wxlib.c: places CSV, Open-Meteo
# responses). ctest replays the seed corpus through replay_main.c; for real fuzzing build
# fuzz/fuzz_wx.c with clang -fsanitize=fuzzer,address,undefined.
add_executable(fuzz_wx_replay fuzz/fuzz_wx.c fuzz/replay_main.c)
target_link_libraries(fuzz_wx_replay PRIVATE weir_wxlib weir_warnings)
add_test(NAME fuzz.wx COMMAND fuzz_wx_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/wx)
set_tests_properties(fuzz.wx PROPERTIES LABELS fuzz TIMEOUT 60 ENVIRONMENT "${WEIR_TEST_ENV}")
