# fuzz.wh_sql and fuzz.wh_csv: the warehouse SQL front end and its CSV / NDJSON readers.
# ctest replays corpus/wh_sql and corpus/wh_csv; with clang and -DWEIR_FUZZ=ON the libFuzzer
# binaries fuzz_wh_sql / fuzz_wh_csv are built too (see dag.cmake for the recipe).
if(TARGET weir_warehouse AND COMMAND weir_fuzz_target)
  weir_fuzz_target(wh_sql fuzz/fuzz_wh_sql.c weir_warehouse)
  weir_fuzz_target(wh_csv fuzz/fuzz_wh_csv.c weir_warehouse)
endif()
