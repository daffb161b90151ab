# QDQ test models (tests/passes/gen_qdq_models.py) generated at build time into
# <build>/tests/data/qdq for the fold-qdq tests and the com.microsoft QOperator import test
# (tests/tools/test_qlinear_add_ort.c); without python3-onnx the step is skipped and the
# tests skip visibly.
set(PQ_QDQ_DIR ${PROJECT_BINARY_DIR}/tests/data/qdq)
add_custom_command(
  OUTPUT ${PQ_QDQ_DIR}/stamp
  COMMAND sh -c "/usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/passes/gen_qdq_models.py ${PQ_QDQ_DIR} || echo 'gen_qdq_models.py failed: fold-qdq model tests will be skipped'"
  COMMAND ${CMAKE_COMMAND} -E touch ${PQ_QDQ_DIR}/stamp
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/passes/gen_qdq_models.py
  COMMENT "gen_qdq_models.py: QDQ test models")
add_custom_target(pq_qdq_models ALL DEPENDS ${PQ_QDQ_DIR}/stamp)
foreach(t test_passes test_tools)
  if(TARGET ${t})
    add_dependencies(${t} pq_qdq_models)
  endif()
endforeach()
