# End-to-end tests: Python unittest scripts that run the real weir binary, each once per
# store backend (SQLite, and PostgreSQL through the pg fixture of tests/unit/store.cmake).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
file(GLOB _e2e_tests ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_*.py)
foreach(_t ${_e2e_tests})
  get_filename_component(_name ${_t} NAME_WE)
  string(REPLACE "test_" "" _name ${_name})
  foreach(_backend sqlite pg)
    add_test(NAME e2e.${_name}.${_backend}
      COMMAND ${Python3_EXECUTABLE} ${_t} --weir $<TARGET_FILE:weir> --backend ${_backend}
      WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
    set_tests_properties(e2e.${_name}.${_backend} PROPERTIES LABELS e2e TIMEOUT 300
      ENVIRONMENT "${WEIR_TEST_ENV};WEIR_TEST_PG_URL_FILE=${CMAKE_BINARY_DIR}/pg-fixture/url;WEIR_TEST_FIXTURE_PLUGINS=${CMAKE_BINARY_DIR}/tests/plugins_fixtures")
    if(_backend STREQUAL "pg")
      set_tests_properties(e2e.${_name}.${_backend} PROPERTIES FIXTURES_REQUIRED pg LABELS "e2e;pg")
    endif()
    # test_s3*.py also need the S3 test server (fixture "s3" of tests/unit/s3.cmake).
    if(_name MATCHES "^s3")
      set_property(TEST e2e.${_name}.${_backend} APPEND PROPERTY FIXTURES_REQUIRED s3)
      set_property(TEST e2e.${_name}.${_backend} APPEND PROPERTY LABELS s3)
      set_property(TEST e2e.${_name}.${_backend} APPEND PROPERTY ENVIRONMENT
        "WEIR_TEST_S3_ENV=${CMAKE_BINARY_DIR}/s3-fixture/env")
    endif()
  endforeach()
endforeach()
