#!/usr/bin/env bash
# Per-layer comparison of piqc's FP32 convolutions with onnxruntime-node's at one thread (issue 9):
# for each model, --rounds rounds each run onnxruntime with profiling (bench/ort_profile.js) and
# piqc with PIQC_ONEDNN_CONV_TIME=1 (one stderr line per oneDNN convolution call: node, shape,
# wall time), alternating, then bench/conv_layers.py prints per block (onnxruntime fuses and renames
# nodes, so blocks are the unit) the minimum over rounds of the per-node medians, a summary per
# class of layer (stem, depthwise kxk sN, 1x1 by spatial size, 1x1 on 1x1 = squeeze-excite, dense
# kxk) and the totals. Models come from bench/bench_fp32_cnn.sh --keep DIR (model.onnx, fp32.gguf,
# input_input.npy, input_input_b8.npy).
# Usage: bench/conv_layers.sh [--dir DIR] [--batch 1|8] [--rounds K] [--repeat N] [--out DIR] MODEL...
#   env: PIQC (default build/tools/piqc), PY (default /usr/bin/python3), NODE (default node)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
NODE=${NODE:-node}
dir=/tmp/bk batch=1 rounds=3 repeat=30 out= models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=${2:?}; shift 2 ;;
        --batch) batch=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --repeat) repeat=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "conv_layers: unknown option '$1'" >&2; exit 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || { echo "conv_layers: no model given (e.g. mobilenet_v3_large)" >&2; exit 2; }
case "$batch" in 1) sfx= ;; 8) sfx=_b8 ;; *) echo "conv_layers: --batch takes 1 or 8" >&2; exit 2 ;; esac
for v in "$rounds" "$repeat"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "conv_layers: --rounds/--repeat need positive integers" >&2; exit 2; }
done
[ -x "$PIQC" ] || { echo "conv_layers: piqc not found at $PIQC" >&2; exit 2; }
if [ -n "$out" ]; then
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
for m in "${models[@]}"; do
    md=$dir/$m
    in=$md/input_input$sfx.npy
    [ -f "$md/model.onnx" ] && [ -f "$md/fp32.gguf" ] && [ -f "$in" ] ||
        { echo "conv_layers: $md lacks model.onnx, fp32.gguf or $(basename "$in") (bench/bench_fp32_cnn.sh --keep $dir)" >&2; exit 2; }
    traces=() profs=()
    for r in $(seq 1 "$rounds"); do
        prof=$("$NODE" "$ROOT/bench/ort_profile.js" "$md/model.onnx" "input=$in" "$out/ort_${m}_b${batch}_$r" "$repeat")
        profs+=("$prof")
        PIQC_ONEDNN_CONV_TIME=1 "$PIQC" run "$md/fp32.gguf" --input "input=$in" --threads 1 \
            --repeat "$repeat" >/dev/null 2>"$out/piqc_${m}_b${batch}_$r.txt"
        traces+=("$out/piqc_${m}_b${batch}_$r.txt")
    done
    echo "== $m batch $batch ($rounds rounds of $repeat runs; us per run)"
    "$PY" "$ROOT/bench/conv_layers.py" --piqc "${traces[@]}" --ort "${profs[@]}"
done
