# Fuzz targets: libFuzzer builds with PIQC_FUZZ=ON and clang (see scripts/fuzz.sh), replay smoke
# tests otherwise. The targets live in tests/fuzz/.
add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/fuzz ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
