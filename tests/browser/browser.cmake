# Browser tests: the web UI in Debian's headless chromium, driven by the npm package
# playwright-core (no browser download), against a real `weir standalone`. The fixture
# browser.setup installs playwright-core from tests/browser/package-lock.json into
# <build>/browser/node_modules; screenshots land in <build>/browser-artifacts/.
find_program(WEIR_NODE node)
if(NOT WEIR_NODE)
  message(STATUS "browser tests: node not found, not registered")
  return()
endif()
set(_browser_src ${CMAKE_CURRENT_SOURCE_DIR}/browser)
set(_browser_dir ${CMAKE_BINARY_DIR}/browser)

add_test(NAME browser.setup COMMAND sh ${_browser_src}/setup.sh ${_browser_src} ${_browser_dir})
set_tests_properties(browser.setup PROPERTIES FIXTURES_SETUP browser LABELS "e2e;browser"
  TIMEOUT 300)

file(GLOB _browser_tests ${_browser_src}/*.test.mjs)
foreach(_t ${_browser_tests})
  get_filename_component(_name ${_t} NAME)
  string(REPLACE ".test.mjs" "" _name ${_name})
  add_test(NAME browser.${_name}
    COMMAND ${WEIR_NODE} --test --test-reporter=spec ${_t}
    WORKING_DIRECTORY ${_browser_src})
  set_tests_properties(browser.${_name} PROPERTIES FIXTURES_REQUIRED browser
    LABELS "e2e;browser" TIMEOUT 300 RUN_SERIAL TRUE
    ENVIRONMENT "${WEIR_TEST_ENV};WEIR_BIN=$<TARGET_FILE:weir>;WEIR_NODE_MODULES=${_browser_dir}/node_modules;WEIR_BROWSER_ARTIFACTS=${CMAKE_BINARY_DIR}/browser-artifacts/${_name}")
endforeach()
