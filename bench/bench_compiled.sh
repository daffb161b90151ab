#!/usr/bin/env bash
# Latency of compiled (packed PiQ) artifacts beside the FP32 model, in one run at N threads (1):
# each model is compiled with a preset and with the `fp32` preset (same canonical passes, no
# quantization); the .onnx, the fp32 artifact and the packed artifact alternate for several rounds
# and the medians of the per-round medians are compared. Numbers on a shared machine are noisy.
# Usage: bench/bench_compiled.sh [--preset NAME] [--repeat N] [--rounds K] [--threads N] [--no-export]
#   --threads N: `piqc run --threads N` (piqc's pool and oneDNN's OpenMP threads; OMP_NUM_THREADS=N,
#                and GOMP_SPINCOUNT=10000 unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set)
#   env: PIQC (default build/tools/piqc), PY (default /usr/bin/python3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
preset=ptq-piq3 repeat=30 rounds=5 export_big=1 threads=1
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) preset=${2:?--preset needs a value}; shift 2 ;;
        --repeat) repeat=${2:?--repeat needs a value}; shift 2 ;;
        --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
        --threads) threads=${2:?--threads needs a value}; shift 2 ;;
        --no-export) export_big=0; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "bench_compiled: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$PIQC" ] || { echo "bench_compiled: piqc not found at $PIQC (build it or set PIQC)" >&2; exit 2; }
case "$threads" in ''|*[!0-9]*|0) echo "bench_compiled: --threads needs a positive integer" >&2; exit 2 ;; esac
export OMP_NUM_THREADS=$threads
# libgomp's spinning bounded to ~0.25 ms (passive makes every oneDNN call at 2 threads a futex
# wake, so piqc threads only the largest convolutions; backends/onednn/onednn.h) unless the caller
# chose a policy; piqc itself stops threading small calls while other processes are busy.
if [ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ]; then export GOMP_SPINCOUNT=10000; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
digits=$ROOT/examples/digits
"$PY" -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:1])" \
    "$digits/test_x.npy" "$tmp/digits_b1.npy"

# label | model | input binding
cases=(
    "digits b360|$digits/model.onnx|input=$digits/test_x.npy"
    "digits b1|$digits/model.onnx|input=$tmp/digits_b1.npy"
    "transformer17|$ROOT/tests/models/transformer17/model.onnx|tokens=$ROOT/tests/models/transformer17/input_tokens.npy"
)
if [ "$export_big" = 1 ]; then
    if "$PY" "$ROOT/bench/export_bench_models.py" "$tmp/big" >/dev/null 2>&1; then
        cases+=("encoder d256 s128|$tmp/big/encoder_d256/model.onnx|tokens=$tmp/big/encoder_d256/input_tokens.npy"
                "mlp 2048 b1|$tmp/big/mlp_2048/model.onnx|x=$tmp/big/mlp_2048/input_x.npy")
    else
        echo "bench_compiled: python3-torch missing: larger models skipped (scripts/install-deps --with-models)" >&2
    fi
fi

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
run_ms() { "$PIQC" run "$1" --input "$2" --threads "$threads" --repeat "$repeat" 2>/dev/null |
           sed -n 's/^median \([0-9.]*\) ms.*/\1/p'; }

echo "preset $preset, $threads thread(s) (OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}), $rounds rounds x $repeat runs, medians; CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-20s %9s %9s %9s %12s %12s %8s %8s\n" model "onnx ms" "fp32 ms" "packed ms" "packed/onnx" "packed/fp32" "onnx MB" "gguf MB"
for c in "${cases[@]}"; do
    IFS='|' read -r label model input <<<"$c"
    art=$tmp/$(echo "$label" | tr ' ' '_').gguf
    f32art=$tmp/$(echo "$label" | tr ' ' '_')-fp32.gguf
    for pair in "$preset:$art" "fp32:$f32art"; do
        if ! "$PIQC" compile "$model" --pipeline "${pair%%:*}" -o "${pair#*:}" -q >"$tmp/compile.log" 2>&1; then
            echo "bench_compiled: compiling $label (${pair%%:*}) failed:" >&2; cat "$tmp/compile.log" >&2; exit 1
        fi
    done
    o=() f=() p=()
    for _ in $(seq "$rounds"); do
        o+=("$(run_ms "$model" "$input")")
        f+=("$(run_ms "$f32art" "$input")")
        p+=("$(run_ms "$art" "$input")")
    done
    om=$(printf "%s\n" "${o[@]}" | median)
    fm=$(printf "%s\n" "${f[@]}" | median)
    pm=$(printf "%s\n" "${p[@]}" | median)
    printf "%-20s %9.3f %9.3f %9.3f %12.2f %12.2f %8.2f %8.2f\n" "$label" "$om" "$fm" "$pm" \
        "$(awk -v a="$pm" -v b="$om" 'BEGIN{print a/b}')" \
        "$(awk -v a="$pm" -v b="$fm" 'BEGIN{print a/b}')" \
        "$(awk -v s="$(stat -c %s "$model")" 'BEGIN{print s/1048576}')" \
        "$(awk -v s="$(stat -c %s "$art")" 'BEGIN{print s/1048576}')"
done
