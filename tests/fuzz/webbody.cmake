# REST request body fuzz target (web_parse_body in webui/webui.h). ctest replays the seed
# corpus through replay_main.c with the normal compiler; for real fuzzing build
# fuzz/fuzz_webbody.c with clang -fsanitize=fuzzer,address,undefined and
# -dict=fuzz/webbody.dict.
add_executable(fuzz_webbody_replay fuzz/fuzz_webbody.c fuzz/replay_main.c)
target_link_libraries(fuzz_webbody_replay PRIVATE weir_webui weir_core weir_warnings)
target_include_directories(fuzz_webbody_replay PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
add_test(NAME fuzz.webbody COMMAND fuzz_webbody_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/webbody)
set_tests_properties(fuzz.webbody PROPERTIES LABELS fuzz TIMEOUT 60 ENVIRONMENT "${WEIR_TEST_ENV}")
