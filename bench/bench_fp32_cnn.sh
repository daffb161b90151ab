#!/usr/bin/env bash
# FP32 side-by-side table, piqc vs onnxruntime-node (issue 9): torchvision mobilenet_v3_small,
# mobilenet_v3_large, resnet18, efficientnet_b0 and the segmentation lraspp_mobilenet_v3_large
# (320x320, bilinear Resize; random weights, bench/export_bench_models.py; batch 1 and 8), the
# 4-layer d256 seq-128 transformer encoder, the digits CNN (batch 1 and 8) and
# examples/charlm when its model is there (batch 1). Each model is compiled with the fp32 preset,
# its output checked against PyTorch's (or the ONNX model's reference data), then piqc and
# onnxruntime-node (graph optimizations on) run the same .npy inputs at 1 and 2 threads,
# alternating in every round; each run reports the median of --repeat timed runs (onnxruntime after
# 3 warm-up runs; piqc too, with --warmup 3, unless --base is a build without that option), and
# the table shows the medians of the per-round medians and the ratio piqc/onnxruntime (< 1: piqc
# faster). --base PIQC_OLD times another piqc build in the same rounds (before/after a change).
# Usage: bench/bench_fp32_cnn.sh [--repeat N] [--rounds K] [--only NAME[,NAME...]]
#          [--threads "1 2"] [--batches "1 8"] [--base PIQC_OLD] [--keep DIR]
#   names: mobilenet_v3_small mobilenet_v3_large resnet18 efficientnet_b0 lraspp_mobilenet_v3_large
#          encoder_d256 digits charlm
#   --keep DIR: export into / reuse DIR (models, inputs, artifacts stay for piqc run --profile)
#   env: PIQC (default build/tools/piqc), PY (default /usr/bin/python3), NODE (default node);
#        piqc runs get GOMP_SPINCOUNT=10000 (libgomp's workers spin ~0.25 ms between oneDNN
#        calls, then sleep), as `piqc run --help` suggests, unless the caller sets
#        OMP_WAIT_POLICY or GOMP_SPINCOUNT itself (passive makes every oneDNN call at 2 threads
#        a futex wake: piqc then threads only the largest convolutions); BASE_OMP_WAIT_POLICY
#        (e.g. passive, what piqc before issue 9's fix asked for) is used for --base instead
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
NODE=${NODE:-node}
repeat=10 rounds=3 only= base= keep= threads="1 2" batches="1 8"
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --batches) batches=${2:?}; shift 2 ;;
        --base) base=${2:?}; shift 2 ;;
        --keep) keep=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "bench_fp32_cnn: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
for v in "$repeat" "$rounds" $threads $batches; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] ||
        { echo "bench_fp32_cnn: --repeat/--rounds/--threads/--batches need positive integers, got '$v'" >&2; exit 2; }
done
for b in $batches; do
    case "$b" in 1|8) ;; *) echo "bench_fp32_cnn: --batches takes 1 and/or 8" >&2; exit 2 ;; esac
done
all="mobilenet_v3_small mobilenet_v3_large resnet18 efficientnet_b0 lraspp_mobilenet_v3_large encoder_d256 digits charlm"
models=()
for name in $all; do
    [ -z "$only" ] || [[ ",$only," == *",$name,"* ]] && models+=("$name")
done
for o in ${only//,/ }; do
    [[ " $all " == *" $o "* ]] || { echo "bench_fp32_cnn: --only: unknown model '$o' (known: $all)" >&2; exit 2; }
done
[ -x "$PIQC" ] || { echo "bench_fp32_cnn: piqc not found at $PIQC (build it or set PIQC)" >&2; exit 2; }
[ -z "$base" ] || [ -x "$base" ] || { echo "bench_fp32_cnn: --base $base is not an executable" >&2; exit 2; }
have_ort=1
[ -f "$ROOT/node_modules/onnxruntime-node/package.json" ] || {
    have_ort=0
    echo "bench_fp32_cnn: onnxruntime-node missing (ONNXRUNTIME_NODE_INSTALL=skip npm install): no onnxruntime column" >&2
}

if [ -n "$keep" ]; then
    mkdir -p "$keep" && tmp=$(cd "$keep" && pwd)
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
fi

# ---- models: <dir>/model.onnx, input_<in>.npy (b1), input_<in>_b8.npy, reference outputs ----
# cases: "label|dir|input name|batch|reference .npy (or -)"
cases=()
export_names=()
for name in "${models[@]}"; do
    case "$name" in
        digits|charlm) ;;
        *) [ -f "$tmp/$name/model.onnx" ] || export_names+=("$name") ;;
    esac
done
if [ ${#export_names[@]} -gt 0 ]; then
    "$PY" "$ROOT/bench/export_bench_models.py" "$tmp" "${export_names[@]}" 2>&1 |
        grep -v -i "warning\|^ *warnings.warn\|^$" >&2 ||
        true
fi
for name in "${models[@]}"; do
    d=$tmp/$name
    case "$name" in
        digits)
            mkdir -p "$d"
            cp "$ROOT/examples/digits/model.onnx" "$d/model.onnx"
            "$PY" - "$ROOT/examples/digits" "$d" <<'EOF'
import sys, numpy as np
src, d = sys.argv[1], sys.argv[2]
x, ref = np.load(src + "/test_x.npy"), np.load(src + "/test_logits.npy")
for b, sfx in ((1, ""), (8, "_b8")):
    np.save(f"{d}/input_input{sfx}.npy", np.ascontiguousarray(x[:b]))
    np.save(f"{d}/torch_logits{sfx}.npy", np.ascontiguousarray(ref[:b]))
EOF
            for b in $batches; do cases+=("digits|$d|input|$b|logits"); done ;;
        charlm)
            if [ ! -f "$ROOT/examples/charlm/model.onnx" ]; then
                echo "bench_fp32_cnn: examples/charlm/model.onnx not present: charlm skipped" >&2
                continue
            fi
            mkdir -p "$d"
            cp "$ROOT/examples/charlm/model.onnx" "$d/model.onnx"
            "$PY" -c "import sys, numpy as np; np.save(sys.argv[2], np.ascontiguousarray(np.load(sys.argv[1])[:1]))" \
                "$ROOT/examples/charlm/val/tokens.npy" "$d/input_tokens.npy"
            cases+=("charlm|$d|tokens|1|-") ;;
        encoder_d256)
            [ -f "$d/model.onnx" ] || { echo "bench_fp32_cnn: $name: export failed (python3-torch?)" >&2; exit 1; }
            cases+=("encoder_d256|$d|tokens|1|y") ;;
        *)
            [ -f "$d/model.onnx" ] || { echo "bench_fp32_cnn: $name: export failed (python3-torchvision?)" >&2; exit 1; }
            for b in $batches; do cases+=("$name|$d|input|$b|logits"); done ;;
    esac
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# piqc_ms PIQC MODEL NAME=FILE THREADS [OMP_WAIT_POLICY for this binary]
piqc_ms() {
    local e=()
    if [ -n "${5:-}" ]; then e=(OMP_WAIT_POLICY="$5")
    elif [ -z "${OMP_WAIT_POLICY:-}" ] && [ -z "${GOMP_SPINCOUNT:-}" ]; then e=(GOMP_SPINCOUNT=10000)
    fi
    # 3 untimed runs first, as onnxruntime gets (a --base build older than --warmup: none)
    local w=()
    local h; h=$("$1" run --help 2>&1 || true) # captured: grep -q under pipefail could SIGPIPE piqc
    grep -q -- --warmup <<<"$h" && w=(--warmup 3)
    env "${e[@]}" "$1" run "$2" --input "$3" --threads "$4" --repeat "$repeat" "${w[@]}" 2>/dev/null |
        sed -n 's/^median \([0-9.]*\) ms.*/\1/p'
}
ort_ms() { "$NODE" "$ROOT/bench/ort_bench.js" "$1" --input "$2" --threads "$3" --repeat "$repeat" --warmup 3 |
           sed -n 's/^median \([0-9.]*\) ms.*/\1/p'; }
check() { "$PY" - "$@" <<'EOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64).ravel(), np.load(sys.argv[2]).astype(np.float64).ravel()
cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))
rel = float(np.abs(a - b).max() / (np.abs(b).max() + 1e-300))
print(f"{sys.argv[3]}: piqc vs PyTorch: cosine {cos:.6f}, max |diff| / max |ref| {rel:.2g}")
sys.exit(0 if cos > 0.9999 and rel < 1e-3 else 1)
EOF
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc --all) cores; load $(cut -d' ' -f1-3 /proc/loadavg); repeat $repeat x $rounds rounds, medians; piqc: OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-$([ -z "${OMP_WAIT_POLICY:-}" ] && echo 10000 || echo unset)}$([ -n "$base" ] && [ -n "${BASE_OMP_WAIT_POLICY:-}" ] && echo ", base: OMP_WAIT_POLICY=$BASE_OMP_WAIT_POLICY")"
summary=()
compiled=" "
for c in "${cases[@]}"; do
    IFS='|' read -r name d in b ref <<<"$c"
    sfx=$([ "$b" = 8 ] && echo _b8 || true)
    x=$d/input_${in}$sfx.npy
    if [[ "$compiled" != *" $name "* ]]; then
        "$PIQC" compile "$d/model.onnx" --pipeline fp32 -o "$d/fp32.gguf" -q >"$d/log" 2>&1 ||
            { cat "$d/log" >&2; echo "bench_fp32_cnn: $name: fp32 compile failed" >&2; exit 1; }
        if [ -n "$base" ]; then
            "$base" compile "$d/model.onnx" --pipeline fp32 -o "$d/fp32_base.gguf" -q >"$d/log" 2>&1 ||
                { cat "$d/log" >&2; echo "bench_fp32_cnn: $name: --base compile failed" >&2; exit 1; }
        fi
        compiled+="$name "
    fi
    "$PIQC" run "$d/fp32.gguf" --input "$in=$x" --output-dir "$d/out$sfx" >/dev/null 2>"$d/log" ||
        { cat "$d/log" >&2; echo "bench_fp32_cnn: $name: piqc run failed" >&2; exit 1; }
    if [ "$ref" != - ]; then
        check "$d/out$sfx/$ref.npy" "$d/torch_$ref$sfx.npy" "$name b$b" ||
            { echo "bench_fp32_cnn: $name b$b: piqc's output does not match PyTorch's" >&2; exit 1; }
    fi
    for th in $threads; do
        p=() bb=() o=()
        for _ in $(seq "$rounds"); do
            p+=("$(piqc_ms "$PIQC" "$d/fp32.gguf" "$in=$x" "$th")")
            [ -n "$base" ] && bb+=("$(piqc_ms "$base" "$d/fp32_base.gguf" "$in=$x" "$th" "${BASE_OMP_WAIT_POLICY:-}")")
            [ $have_ort = 1 ] && o+=("$(ort_ms "$d/model.onnx" "$in=$x" "$th")")
        done
        pm=$(printf '%s\n' "${p[@]}" | median)
        bm=nan om=nan
        [ -n "$base" ] && bm=$(printf '%s\n' "${bb[@]}" | median)
        [ $have_ort = 1 ] && om=$(printf '%s\n' "${o[@]}" | median)
        row=$(awk -v n="$name" -v b="$b" -v th="$th" -v p="$pm" -v q="$bm" -v o="$om" 'BEGIN {
            r1 = (q != "nan" && p > 0) ? sprintf("%.2f", p / q) : "-"
            r2 = (o != "nan" && o > 0) ? sprintf("%.2f", p / o) : "-"
            printf "| %s | %d | %d | %.3f | %s | %s | %s | %s |", n, b, th, p, q == "nan" ? "-" : q, o == "nan" ? "-" : o, r1, r2 }')
        echo "$row" >&2
        summary+=("$row")
    done
done
echo
echo "| model | batch | threads | piqc ms | base ms | ort ms | piqc/base | piqc/ort |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
echo "(load after: $(cut -d' ' -f1-3 /proc/loadavg); piqc = fp32-preset artifact of $PIQC; base = --base build; ort = onnxruntime-node on the ONNX model; piqc/ort < 1: piqc faster)"
