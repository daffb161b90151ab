#!/usr/bin/env bash
# Model-level latency table: piqc with the reference kernels only (PIQC_BACKEND=ref) and with the
# fast kernels (oneDNN Conv/MatMul/Gemm, default), each next to onnxruntime-node at one thread,
# through bench/compare_ort.sh (medians of per-round medians). Numbers on a shared machine are noisy.
# Usage: bench/bench_models.sh [--repeat N] [--rounds K]   env: PIQC (default build/tools/piqc)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
opts=()
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat|--rounds) [ $# -ge 2 ] || { echo "bench_models: $1 needs a value" >&2; exit 2; }
                           opts+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "bench_models: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$PIQC" ] || { echo "bench_models: piqc not found at $PIQC (build it or set PIQC)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

digits=$ROOT/examples/digits
"$PY" -c "import numpy as np, sys; x = np.load(sys.argv[1]); np.save(sys.argv[2], np.ascontiguousarray(x[:1]))" \
    "$digits/test_x.npy" "$tmp/digits_b1.npy" || { echo "bench_models: cannot make the batch-1 input" >&2; exit 1; }
nb=$("$PY" -c "import numpy as np, sys; print(np.load(sys.argv[1]).shape[0])" "$digits/test_x.npy")

# label | model | inputs...
cases=(
    "digits b$nb|$digits/model.onnx|input=$digits/test_x.npy"
    "digits b1|$digits/model.onnx|input=$tmp/digits_b1.npy"
    "transformer17|$ROOT/tests/models/transformer17/model.onnx|tokens=$ROOT/tests/models/transformer17/input_tokens.npy"
)

# Prints "ort piqc" medians of one compare_ort.sh run (backend given as PIQC_BACKEND value, "" = default).
measure() {
    local backend=$1 model=$2; shift 2
    local args=() out
    for i in "$@"; do args+=(--input "$i"); done
    if [ -n "$backend" ]; then
        out=$(PIQC_BACKEND=$backend "$ROOT/bench/compare_ort.sh" "${opts[@]}" "$model" "${args[@]}") || return 1
    else
        out=$(env -u PIQC_BACKEND "$ROOT/bench/compare_ort.sh" "${opts[@]}" "$model" "${args[@]}") || return 1
    fi
    echo "$out" >&2
    local o p
    o=$(sed -n 's/^ort: *median \([0-9.]*\) ms.*/\1/p' <<<"$out")
    p=$(sed -n 's/^piqc: *median \([0-9.]*\) ms.*/\1/p' <<<"$out")
    echo "$o $p"
}

rows=()
for c in "${cases[@]}"; do
    IFS='|' read -r label model inputs <<<"$c"
    read -r ort_r ref_ms < <(measure ref "$model" $inputs) || { echo "bench_models: $label (ref) failed" >&2; exit 1; }
    read -r ort_f fast_ms < <(measure "" "$model" $inputs) || { echo "bench_models: $label (fast) failed" >&2; exit 1; }
    rows+=("$label|$ort_r|$ort_f|$ref_ms|$fast_ms")
done

echo
echo "piqc vs onnxruntime-node, 1 thread, medians in ms (ort measured beside each piqc run)"
printf '%-16s %10s %10s %12s %12s %9s %9s %9s\n' model ort@ref ort@fast piqc-ref piqc-fast ref/ort fast/ort ref/fast
for r in "${rows[@]}"; do
    IFS='|' read -r label o1 o2 p1 p2 <<<"$r"
    awk -v l="$label" -v o1="$o1" -v o2="$o2" -v p1="$p1" -v p2="$p2" 'BEGIN {
        printf "%-16s %10.3f %10.3f %12.3f %12.3f %9.2f %9.2f %9.2f\n", l, o1, o2, p1, p2, p1 / o1, p2 / o2, p1 / p2 }'
done
