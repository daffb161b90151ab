#!/bin/bash
# Cross-compiles tests/neon/neon_test.c with the NEON kernels and the scalar reference sources for
# aarch64 (static) and runs it under qemu-aarch64. Exit 77 (CTest skip) without the toolchain.
# The IR library (without the text parser/printer, which need OpenSSL) and the thread pool are
# linked in for the INT8 glue's node runners (QLinearAdd / Mul, Quantize / DequantizeLinear).
# PQ_NEON_CFLAGS adds compiler flags, e.g. UB checks without a runtime library:
#   PQ_NEON_CFLAGS='-fsanitize=undefined -fsanitize-undefined-trap-on-error' tests/neon/run.sh
set -u
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
CC="${PQ_AARCH64_CC:-aarch64-linux-gnu-gcc}"
QEMU="${PQ_QEMU_AARCH64:-qemu-aarch64}"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "neon: skipped: cross compiler $CC not found (install gcc-aarch64-linux-gnu)"
    exit 77
fi
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "neon: skipped: $QEMU not found (install qemu-user)"
    exit 77
fi
out="${PQ_NEON_OUT:-$(mktemp -d)}"
bin="$out/neon_test"
# shellcheck disable=SC2086 # PQ_NEON_CFLAGS is a list of flags
# (PQ_NO_SESSION_CACHE: qdq_ops.c without the session cache of backends/onednn)
"$CC" -std=c11 -O2 -static -Wall -Wextra -Werror -ffp-contract=off -D_POSIX_C_SOURCE=200809L \
    -DPQ_NO_SESSION_CACHE \
    ${PQ_NEON_CFLAGS:-} \
    -I"$src" -o "$bin" \
    "$here/neon_test.c" \
    "$src/backends/arm/qkernels_neon.c" \
    "$src/backends/quant/qkernels_scalar.c" \
    "$src/backends/quant/fwht.c" \
    "$src/backends/quant/qdispatch.c" \
    "$src/backends/cpu.c" \
    "$src/backends/threadpool.c" \
    "$src/backends/int8/qlinear_eltwise.c" \
    "$src/backends/arm/qlinear_eltwise_neon.c" \
    "$src/backends/int8/qdq_ops.c" \
    "$src/backends/arm/qdq_ops_neon.c" \
    "$src/backends/arm/int8_dwc_neon.c" \
    $(ls "$src"/ir/*.c | grep -v '/text_') \
    -lm -lpthread || { echo "neon: cross-compilation failed"; exit 1; }
# (the default dispatch is under test: a PIQC_ISA of the calling shell must not force it)
env -u PIQC_ISA "$QEMU" "$bin"
