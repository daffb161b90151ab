#!/usr/bin/env bash
# Side-by-side latency of piqc and onnxruntime (node, one thread) on one model: runs each several
# rounds (alternating), takes the median of the per-round medians and prints both and the ratio piqc/ort.
# Usage: bench/compare_ort.sh [--repeat N] [--rounds K] MODEL.onnx [--input NAME=FILE.npy ...]
set -u

usage() {
    echo "usage: bench/compare_ort.sh [--repeat N] [--rounds K] MODEL.onnx [--input NAME=FILE.npy ...]"
    echo "  env: PIQC (default build/tools/piqc), NODE (default node)"
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
NODE=${NODE:-node}
repeat=20 rounds=5

while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) [ $# -ge 2 ] || { usage >&2; exit 2; }; repeat=$2; shift 2 ;;
        --rounds) [ $# -ge 2 ] || { usage >&2; exit 2; }; rounds=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
for v in "$repeat" "$rounds"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "compare_ort: --repeat/--rounds need a positive integer, got '$v'" >&2; exit 2; }
done
model=$1; shift
[ -f "$model" ] || { echo "compare_ort: $model: no such file" >&2; exit 2; }
input_args=("$@")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a command, prints the number from its last "median X ms" line or fails with its output.
median_of() {
    local label=$1; shift
    if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
        echo "compare_ort: $label failed: $*" >&2
        tail -n 5 "$tmp/err" "$tmp/out" >&2
        return 1
    fi
    local m
    m=$(sed -n 's/^median \([0-9][0-9.]*\) ms.*/\1/p' "$tmp/out" | tail -n 1)
    if [ -z "$m" ]; then
        echo "compare_ort: $label printed no 'median X ms' line" >&2
        return 1
    fi
    echo "$m"
}

# Median of numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

have_piqc=1
if [ ! -x "$PIQC" ]; then
    have_piqc=0
    echo "compare_ort: piqc not found at $PIQC (build it first); measuring onnxruntime only" >&2
fi

piqc_ms=() ort_ms=()
for ((r = 0; r < rounds; r++)); do
    if [ "$have_piqc" = 1 ]; then
        m=$(median_of piqc "$PIQC" run "$model" "${input_args[@]}" --threads 1 --repeat "$repeat") || exit 1
        piqc_ms+=("$m")
    fi
    m=$(median_of ort "$NODE" "$ROOT/bench/ort_bench.js" "$model" "${input_args[@]}" --repeat "$repeat") || exit 1
    ort_ms+=("$m")
done

ort=$(median "${ort_ms[@]}")
echo "model: $model ($rounds rounds x $repeat runs, 1 thread)"
echo "ort:   median $ort ms  (rounds: ${ort_ms[*]})"
if [ "$have_piqc" = 1 ]; then
    piqc=$(median "${piqc_ms[@]}")
    echo "piqc:  median $piqc ms  (rounds: ${piqc_ms[*]})"
    awk -v p="$piqc" -v o="$ort" 'BEGIN { if (o > 0) printf "ratio piqc/ort: %.2f\n", p / o; else print "ratio piqc/ort: n/a" }'
else
    echo "piqc:  not available"
    echo "ratio piqc/ort: n/a"
fi
