#!/usr/bin/env bash
# FP32 CNN latency, piqc vs onnxruntime-node: resnet18 and mobilenet_v3_small (random weights, the
# exporter of bench/bench_int8.sh, batch 1), compiled with the fp32 preset, checked against
# PyTorch, timed at 1 and 2 threads in interleaved rounds (medians of per-round medians), ratios.
# --base PIQC_OLD times a second piqc build in the same rounds (before/after a change).
# Usage: bench/bench_fp32_cnn.sh [--repeat N] [--rounds K] [--size S] [--only NAME] [--base PIQC_OLD]
#   env: PIQC (default build/tools/piqc), PY (default /usr/bin/python3), NODE (default node)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
NODE=${NODE:-node}
repeat=20 rounds=5 size=224 only= base=
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --size) size=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --base) base=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "bench_fp32_cnn: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
for v in "$repeat" "$rounds" "$size"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "bench_fp32_cnn: --repeat/--rounds/--size need a positive integer, got '$v'" >&2; exit 2; }
done
case "$only" in ""|resnet18|mobilenet_v3_small) ;; *) echo "bench_fp32_cnn: --only resnet18|mobilenet_v3_small" >&2; exit 2 ;; esac
[ -x "$PIQC" ] || { echo "bench_fp32_cnn: piqc not found at $PIQC (build it or set PIQC)" >&2; exit 2; }
[ -z "$base" ] || [ -x "$base" ] || { echo "bench_fp32_cnn: --base $base is not an executable" >&2; exit 2; }
have_ort=1
[ -f "$ROOT/node_modules/onnxruntime-node/package.json" ] || {
    have_ort=0
    echo "bench_fp32_cnn: onnxruntime-node missing (ONNXRUNTIME_NODE_INSTALL=skip npm install): no onnxruntime column" >&2
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The model exporter is the Python program bench_int8.sh feeds to "$PY -" (one copy of it).
awk '/^"\$PY" - "\$tmp"/ {f = 1; next} f && /^EOF$/ {exit} f' "$ROOT/bench/bench_int8.sh" >"$tmp/export.py"
grep -q "mobilenet_v3_small" "$tmp/export.py" ||
    { echo "bench_fp32_cnn: could not find the exporter in bench/bench_int8.sh" >&2; exit 1; }
models=()
for name in mobilenet_v3_small resnet18; do
    [ -z "$only" ] || [ "$only" = "$name" ] || continue
    # arguments: out dir, calibration rows, eval rows, image size, repo root, only this model
    "$PY" "$tmp/export.py" "$tmp" 1 1 "$size" "$ROOT" "$name" 2>&1 | grep -v "^$" >&2 || true
    [ -f "$tmp/$name/model.onnx" ] || { echo "bench_fp32_cnn: $name: export failed (python3-torch?)" >&2; exit 1; }
    models+=("$name")
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
piqc_ms() { "$1" run "$2" --input "input=$3" --threads "$4" --repeat "$repeat" 2>/dev/null |
            sed -n 's/^median \([0-9.]*\) ms.*/\1/p'; }
ort_ms() { "$NODE" "$ROOT/tests/tools/ort_run.js" "$1" --input "input=$2" --threads "$3" --repeat "$repeat" --warmup 3 |
           sed -n 's/^median \([0-9.]*\) ms.*/\1/p'; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc --all) cores; load $(cut -d' ' -f1-3 /proc/loadavg); repeat $repeat x $rounds rounds, medians; image ${size}x${size}, batch 1"
summary=()
for name in "${models[@]}"; do
    d=$tmp/$name
    "$PIQC" compile "$d/model.onnx" --pipeline fp32 -o "$d/fp32.gguf" -q >"$d/log" 2>&1 ||
        { cat "$d/log" >&2; echo "bench_fp32_cnn: $name: fp32 compile failed" >&2; exit 1; }
    "$PIQC" run "$d/fp32.gguf" --input "input=$d/b1.npy" --output-dir "$d/out" >/dev/null 2>"$d/log" ||
        { cat "$d/log" >&2; echo "bench_fp32_cnn: $name: piqc run failed" >&2; exit 1; }
    if [ -f "$d/torch_eval.npy" ]; then
        "$PY" - "$d/out/logits.npy" "$d/torch_eval.npy" "$name" <<'EOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64).ravel(), np.load(sys.argv[2]).astype(np.float64).ravel()
cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))
print(f"{sys.argv[3]}: piqc FP32 vs PyTorch: cosine {cos:.6f}, max |diff| {np.abs(a - b).max():.3g}, max |ref| {np.abs(b).max():.3g}")
EOF
    fi
    if [ -n "$base" ]; then
        "$base" compile "$d/model.onnx" --pipeline fp32 -o "$d/fp32_base.gguf" -q >"$d/log" 2>&1 ||
            { cat "$d/log" >&2; echo "bench_fp32_cnn: $name: --base compile failed" >&2; exit 1; }
    fi
    for th in 1 2; do
        p=() b=() o=()
        for _ in $(seq "$rounds"); do
            p+=("$(piqc_ms "$PIQC" "$d/fp32.gguf" "$d/b1.npy" "$th")")
            [ -n "$base" ] && b+=("$(piqc_ms "$base" "$d/fp32_base.gguf" "$d/b1.npy" "$th")")
            [ $have_ort = 1 ] && o+=("$(ort_ms "$d/model.onnx" "$d/b1.npy" "$th")")
        done
        pm=$(printf '%s\n' "${p[@]}" | median)
        bm=nan om=nan
        [ -n "$base" ] && bm=$(printf '%s\n' "${b[@]}" | median)
        [ $have_ort = 1 ] && om=$(printf '%s\n' "${o[@]}" | median)
        summary+=("$(awk -v n="$name" -v th="$th" -v p="$pm" -v b="$bm" -v o="$om" 'BEGIN {
            r1 = (b != "nan" && p > 0) ? sprintf("%.2fx", b / p) : "-"
            r2 = (o != "nan" && o > 0) ? sprintf("%.2f", p / o) : "-"
            printf "%-20s %2d %10.3f %10s %10s %12s %12s", n, th, p, b, o, r1, r2 }')")
    done
done
echo
printf "%-20s %2s %10s %10s %10s %12s %12s\n" model th "piqc ms" "base ms" "ort ms" "base/piqc" "piqc/ort"
printf '%s\n' "${summary[@]}"
echo "(batch 1, FP32; piqc = fp32-preset artifact of $PIQC; base = --base build; ort = onnxruntime-node on the ONNX model, graph optimizations on; lower piqc/ort is better)"
