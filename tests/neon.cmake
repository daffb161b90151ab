# NEON kernels: cross-compiled static aarch64 test program run under qemu-aarch64
# (tests/neon/run.sh prints "N passed, N failed"; exit 77 = skipped when the toolchain is missing).
add_test(NAME neon COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/neon/run.sh)
set_tests_properties(neon PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
