# ONNX conformance: tests/conformance/conformance.c runs every case of libonnx-testdata's node,
# pytorch-converted, pytorch-operator and simple suites; failures must be listed in
# tests/conformance/exceptions.txt. Registered only when the test data is installed.
add_executable(conformance ${CMAKE_CURRENT_SOURCE_DIR}/conformance/conformance.c)
target_compile_options(conformance PRIVATE ${PQ_WARN})
target_compile_definitions(conformance PRIVATE PQ_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(conformance PRIVATE pq_runtime pq_frontends pq_passes pq_backends pq_ir m)
if(EXISTS /usr/share/libonnx-testdata/data/node)
  add_test(NAME conformance COMMAND conformance)
  set_tests_properties(conformance PROPERTIES TIMEOUT 3600)
endif()
