#!/bin/bash
# Builds a libFuzzer target with clang + ASan/UBSan in build-fuzz/ and fuzzes it for N seconds.
# usage: scripts/fuzz.sh [seconds=60] [target=fuzz_onnx]
# Seeds: tests/data/bad_onnx plus a few libonnx-testdata models (fuzz_onnx), any files in
# tests/fuzz/seeds_<target>/ otherwise (fuzz_yaml: also the presets in examples/pipelines/).
# Exits non-zero when libFuzzer reports a finding; the crashing input is kept in
# build-fuzz/fuzz-artifacts/.
set -euo pipefail
secs=${1:-60}
target=${2:-fuzz_onnx}
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="$root/build-fuzz"
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed" >&2; exit 2; }

cmake -S "$root" -B "$bdir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPIQC_FUZZ=ON -DPIQC_SANITIZE=ON -DPIQC_WERROR=OFF -DPIQC_TESTS=ON \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$bdir" --target "$target" -j2

corpus=$(mktemp -d /tmp/piqc-fuzz-corpus.XXXXXX)
trap 'rm -rf "$corpus"' EXIT
if [ "$target" = fuzz_onnx ]; then
  cp "$root"/tests/data/bad_onnx/*.onnx "$corpus"/
  td=/usr/share/libonnx-testdata/data
  for m in node/test_if node/test_loop11 node/test_conv_with_strides_padding node/test_resize_upsample_scales_nearest \
           node/test_reduce_mean_keepdims_example node/test_clip pytorch-operator/test_operator_clip \
           pytorch-converted/test_ConstantPad2d simple/test_expand_shape_model1; do
    [ -f "$td/$m/model.onnx" ] && cp "$td/$m/model.onnx" "$corpus/$(echo "$m" | tr / _).onnx"
  done
fi
if [ "$target" = fuzz_yaml ]; then cp "$root"/examples/pipelines/*.yaml "$corpus"/; fi
if [ -d "$root/tests/fuzz/seeds_$target" ]; then cp "$root/tests/fuzz/seeds_$target"/* "$corpus"/; fi

mkdir -p "$bdir/fuzz-artifacts"
echo "fuzz.sh: running $target for $secs s on $(ls "$corpus" | wc -l) seeds"
"$bdir/tests/fuzz/$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$bdir/fuzz-artifacts/" "$corpus"
