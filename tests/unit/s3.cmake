# s3: the S3 client library (unit.s3client) and the s3 plugin end to end (tests/e2e/
# test_s3_*.py, see e2e.cmake), all against the ctest fixture "s3": s3.start runs the
# SigV4-verifying test server ../shared/tools/s3peer/s3peer.sh (CI clones the repo with
# shared/ beside it) on a free port and writes its eval-able settings to
# ${WEIR_S3_DIR}/env; tests read that file through WEIR_TEST_S3_ENV.
set(WEIR_S3_DIR ${CMAKE_BINARY_DIR}/s3-fixture)
set(WEIR_S3PEER_SH ${PROJECT_SOURCE_DIR}/../shared/tools/s3peer/s3peer.sh)
set(WEIR_S3_FIXTURE_SH ${CMAKE_CURRENT_LIST_DIR}/../helpers/s3_fixture.sh)
add_test(NAME s3.start COMMAND ${WEIR_S3_FIXTURE_SH} start ${WEIR_S3PEER_SH} ${WEIR_S3_DIR})
set_tests_properties(s3.start PROPERTIES FIXTURES_SETUP s3 LABELS s3 TIMEOUT 300)
add_test(NAME s3.stop COMMAND ${WEIR_S3_FIXTURE_SH} stop ${WEIR_S3PEER_SH} ${WEIR_S3_DIR})
set_tests_properties(s3.stop PROPERTIES FIXTURES_CLEANUP s3 LABELS s3 TIMEOUT 60)

weir_unit_test(s3client unit/test_s3client.c weir_s3client)
set_tests_properties(unit.s3client PROPERTIES LABELS "unit;s3" TIMEOUT 300
  FIXTURES_REQUIRED s3
  ENVIRONMENT "${WEIR_TEST_ENV};WEIR_TEST_S3_ENV=${WEIR_S3_DIR}/env;WEIR_TEST_FLAKY_PROXY=${CMAKE_CURRENT_LIST_DIR}/../helpers/flaky_proxy.py")
