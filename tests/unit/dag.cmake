# unit.dag: the DAG file parser, data-driven from tests/unit/dag_cases/<case>/.
weir_unit_test(dag unit/test_dag.c weir_scheduler)
target_compile_definitions(test_dag PRIVATE DAG_CASES_DIR="${CMAKE_CURRENT_LIST_DIR}/dag_cases")
