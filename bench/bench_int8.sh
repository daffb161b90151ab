#!/usr/bin/env bash
# INT8 CNN path end to end: torchvision mobilenet_v3_small, resnet18 and efficientnet_b0 (random
# weights, eval mode; efficientnet_b0 only with torchvision) and the digits CNN are exported to
# ONNX, checked FP32 piqc vs PyTorch, calibrated, compiled with --pipeline int8-cnn, exported as
# QDQ (piqc export --onnx-qdq) and timed: piqc FP32 (fp32 preset
# artifact), piqc INT8 and onnxruntime-node on the QDQ model at 1 and 2 threads, interleaved rounds,
# medians; onnxruntime on the FP32 ONNX model too (its best on such a model when the QDQ form runs
# slower, e.g. Conv -> HardSwish -> QuantizeLinear that it does not fuse). Prints output cosine /
# top-1 agreement of INT8 vs FP32 and the latency ratios.
# Usage: bench/bench_int8.sh [--repeat N] [--rounds K] [--calib N] [--eval N] [--size S] [--only NAME]
#                            [--keep DIR]   (models, artifacts and outputs kept in DIR for piqc run --profile)
#   env: PIQC (default build/tools/piqc), PY (default /usr/bin/python3), NODE (default node),
#        PIQC_BASE (optional: another piqc, e.g. an older commit's build; its own int8-cnn artifact
#        is timed in the same interleaved rounds as an 'int8 base' column)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
NODE=${NODE:-node}
BASE=${PIQC_BASE:-}
repeat=10 rounds=3 calib=200 eval=32 size=224 only= keep=
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --calib) calib=${2:?}; shift 2 ;;
        --eval) eval=${2:?}; shift 2 ;;
        --size) size=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --keep) keep=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "bench_int8: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$PIQC" ] || { echo "bench_int8: piqc not found at $PIQC (build it or set PIQC)" >&2; exit 2; }
# (the list is captured first: grep -q exiting early under pipefail killed piqc with SIGPIPE)
passes=$("$PIQC" compile --list-passes 2>/dev/null || true)
if ! grep -q "quantize-int8" <<<"$passes"; then
    echo "bench_int8: this piqc has no quantize-int8 pass (pipeline int8-cnn): nothing to measure" >&2
    exit 3
fi
have_ort=1
[ -f "$ROOT/node_modules/onnxruntime-node/package.json" ] || {
    have_ort=0
    echo "bench_int8: onnxruntime-node missing (ONNXRUNTIME_NODE_INSTALL=skip npm install): no onnxruntime column" >&2
}
export OMP_NUM_THREADS=1
# OpenMP waiting: piqc runs get GOMP_SPINCOUNT=10000 unless the caller sets OMP_WAIT_POLICY or
# GOMP_SPINCOUNT (as bench_fp32_cnn.sh; with passive every oneDNN call at 2 threads is a futex wake,
# so piqc threads only the largest FP32 convolutions then; backends/onednn/onednn.h)

if [ -n "$keep" ]; then
    mkdir -p "$keep" && tmp=$(cd "$keep" && pwd)
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
fi

# ---- models: ONNX, calibration set, eval set, batch-1 input, PyTorch reference ----
"$PY" - "$tmp" "$calib" "$eval" "$size" "$ROOT" "$only" <<'EOF'
import os, sys
import numpy as np
out, n_cal, n_eval, size, root, only = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def save(name, onnx_path, cal, ev):
    d = os.path.join(out, name); os.makedirs(os.path.join(d, "calib"), exist_ok=True)
    if onnx_path != os.path.join(d, "model.onnx"):
        import shutil; shutil.copy(onnx_path, os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, "calib", "input.npy"), cal)
    np.save(os.path.join(d, "eval.npy"), ev)
    np.save(os.path.join(d, "b1.npy"), ev[:1])
if only in ("", "digits"):
    dg = os.path.join(root, "examples", "digits")
    save("digits", os.path.join(dg, "model.onnx"), np.load(os.path.join(dg, "train_x.npy"))[:n_cal],
         np.load(os.path.join(dg, "test_x.npy")))
try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.stderr.write("bench_int8: python3-torch missing: torchvision models skipped\n"); sys.exit(0)
names = ["mobilenet_v3_small", "resnet18"]
try:
    import torchvision
    build = lambda name: getattr(torchvision.models, name)(weights=None)
    names.append("efficientnet_b0")  # SiLU and Sigmoid gates: the Sigmoid / Swish INT8 epilogue
except ImportError:  # the same architectures as torchvision's, written out (random init likewise)
    sys.stderr.write("bench_int8: torchvision missing: using built-in copies of resnet18 / mobilenet_v3_small"
                     " (no efficientnet_b0)\n")
    def cbn(i, o, k, s=1, g=1, act=None):
        layers = [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
        return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)
    class Basic(nn.Module):
        def __init__(s, i, o, st):
            super().__init__()
            s.c1, s.c2 = cbn(i, o, 3, st, act=lambda: nn.ReLU(inplace=True)), cbn(o, o, 3)
            s.down = cbn(i, o, 1, st) if st != 1 or i != o else None
            s.relu = nn.ReLU(inplace=True)
        def forward(s, x):
            return s.relu(s.c2(s.c1(x)) + (s.down(x) if s.down is not None else x))
    def resnet18():
        layers, i = [], 64
        for o, st in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Basic(i, o, st), Basic(o, o, 1)]; i = o
        return nn.Sequential(cbn(3, 64, 7, 2, act=lambda: nn.ReLU(inplace=True)), nn.MaxPool2d(3, 2, 1),
                             *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(512, 1000))
    def div8(v):
        n = max(8, int(v + 4) // 8 * 8)
        return n + 8 if n < 0.9 * v else n
    class SE(nn.Module):
        def __init__(s, c):
            super().__init__()
            q = div8(c // 4)
            s.f1, s.f2, s.r, s.h = nn.Conv2d(c, q, 1), nn.Conv2d(q, c, 1), nn.ReLU(), nn.Hardsigmoid()
        def forward(s, x):
            return x * s.h(s.f2(s.r(s.f1(nn.functional.adaptive_avg_pool2d(x, 1)))))
    class IR(nn.Module):
        def __init__(s, i, k, e, o, se, hs, st):
            super().__init__()
            a = nn.Hardswish if hs else nn.ReLU
            m = [cbn(i, e, 1, act=a)] if e != i else []
            m += [cbn(e, e, k, st, g=e, act=a)] + ([SE(e)] if se else []) + [cbn(e, o, 1)]
            s.b, s.res = nn.Sequential(*m), st == 1 and i == o
        def forward(s, x):
            return x + s.b(x) if s.res else s.b(x)
    def mobilenet_v3_small():
        cfg = [(16, 3, 16, 16, 1, 0, 2), (16, 3, 72, 24, 0, 0, 2), (24, 3, 88, 24, 0, 0, 1),
               (24, 5, 96, 40, 1, 1, 2), (40, 5, 240, 40, 1, 1, 1), (40, 5, 240, 40, 1, 1, 1),
               (40, 5, 120, 48, 1, 1, 1), (48, 5, 144, 48, 1, 1, 1), (48, 5, 288, 96, 1, 1, 2),
               (96, 5, 576, 96, 1, 1, 1), (96, 5, 576, 96, 1, 1, 1)]
        return nn.Sequential(cbn(3, 16, 3, 2, act=nn.Hardswish), *[IR(*c) for c in cfg],
                             cbn(96, 576, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                             nn.Linear(576, 1024), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(1024, 1000))
    def build(name):
        m = {"resnet18": resnet18, "mobilenet_v3_small": mobilenet_v3_small}[name]()
        for mod in m.modules():  # torchvision's init
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out")
                if mod.bias is not None: nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, 0, 0.01); nn.init.zeros_(mod.bias)
        return m
torch.manual_seed(0)
rng = np.random.default_rng(0)
for name in names:
    if only not in ("", name): continue
    m = build(name).eval()
    d = os.path.join(out, name); os.makedirs(d, exist_ok=True)
    x = torch.randn(1, 3, size, size)
    torch.onnx.export(m, x, os.path.join(d, "model.onnx"), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    cal = rng.standard_normal((n_cal, 3, size, size)).astype(np.float32)
    ev = rng.standard_normal((n_eval, 3, size, size)).astype(np.float32)
    save(name, os.path.join(d, "model.onnx"), cal, ev)
    with torch.no_grad():
        np.save(os.path.join(d, "torch_eval.npy"), m(torch.from_numpy(ev)).numpy())
EOF

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# piqc with GOMP_SPINCOUNT=10000 unless the caller set a wait policy (see above)
# (3 untimed runs first, as onnxruntime gets, when the binary knows --warmup)
piqc_ms() { if [ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ]; then local e=(GOMP_SPINCOUNT=10000); else local e=(); fi
            local w=() h; h=$("${4:-$PIQC}" run --help 2>&1 || true); grep -q -- --warmup <<<"$h" && w=(--warmup 3)
            env "${e[@]}" "${4:-$PIQC}" run "$1" --input "input=$2" --threads "$3" --repeat "$repeat" "${w[@]}" 2>/dev/null |
            sed -n 's/^median \([0-9.]*\) ms.*/\1/p'; }
ort_ms() { "$NODE" "$ROOT/tests/tools/ort_run.js" "$1" --input "input=$2" --threads "$3" --repeat "$repeat" --warmup 3 |
           sed -n 's/^median \([0-9.]*\) ms.*/\1/p'; }
cmp_py() { "$PY" - "$@" <<'EOF'
import sys, numpy as np
def load(p): return np.load(p).astype(np.float64)
a, b = load(sys.argv[1]), load(sys.argv[2])
a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
cos = float((a2 * b2).sum() / (np.linalg.norm(a2) * np.linalg.norm(b2) + 1e-300))
top1 = float((a2.argmax(1) == b2.argmax(1)).mean() * 100)
print(f"{cos:.6f} {top1:.1f} {np.abs(a - b).max():.3g}")
EOF
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc --all) cores; repeat $repeat x $rounds rounds, medians; calib $calib, eval $eval"
summary=()
for d in "$tmp"/*/; do
    name=$(basename "$d")
    [ -f "$d/model.onnx" ] || continue
    echo "== $name"
    # FP32 piqc vs PyTorch (torchvision models)
    "$PIQC" compile "$d/model.onnx" --pipeline fp32 -o "$d/fp32.gguf" -q >"$d/log" 2>&1 ||
        { cat "$d/log" >&2; echo "bench_int8: $name: fp32 compile failed" >&2; exit 1; }
    "$PIQC" run "$d/fp32.gguf" --input "input=$d/eval.npy" --output-dir "$d/fp32_out" >/dev/null 2>"$d/log" ||
        { cat "$d/log" >&2; exit 1; }
    if [ -f "$d/torch_eval.npy" ]; then
        read -r c t m <<<"$(cmp_py "$d/fp32_out/logits.npy" "$d/torch_eval.npy")"
        echo "  piqc FP32 vs PyTorch: cosine $c, top-1 agreement $t%, max |diff| $m"
    fi
    if ! "$PIQC" compile "$d/model.onnx" --pipeline int8-cnn --calib-data "$d/calib" -o "$d/int8.gguf" >"$d/log" 2>&1; then
        cat "$d/log" >&2
        echo "bench_int8: $name: 'piqc compile --pipeline int8-cnn' failed (see above)" >&2
        exit 1
    fi
    grep -i "quantize-int8" "$d/log" | sed 's/^/  /' | head -5 || true  # head may close the pipe early
    if [ -n "$BASE" ]; then
        "$BASE" compile "$d/model.onnx" --pipeline int8-cnn --calib-data "$d/calib" -o "$d/int8_base.gguf" >"$d/log" 2>&1 ||
            { cat "$d/log" >&2; echo "bench_int8: $name: PIQC_BASE int8-cnn compile failed" >&2; exit 1; }
    fi
    "$PIQC" run "$d/int8.gguf" --input "input=$d/eval.npy" --output-dir "$d/int8_out" >/dev/null 2>"$d/log" ||
        { cat "$d/log" >&2; exit 1; }
    read -r c t m <<<"$(cmp_py "$d/int8_out/logits.npy" "$d/fp32_out/logits.npy")"
    echo "  piqc INT8 vs FP32: cosine $c, top-1 agreement $t%, max |diff| $m"
    ort=0
    if [ $have_ort = 1 ]; then
        if "$PIQC" export "$d/int8.gguf" --onnx-qdq "$d/qdq.onnx" 2>"$d/log"; then
            sed 's/^/  /' "$d/log"
            "$NODE" "$ROOT/tests/tools/ort_run.js" "$d/qdq.onnx" --input "input=$d/eval.npy" --output-dir "$d/ort_out"
            read -r c2 t2 m2 <<<"$(cmp_py "$d/ort_out/logits.npy" "$d/int8_out/logits.npy")"
            read -r c3 t3 m3 <<<"$(cmp_py "$d/ort_out/logits.npy" "$d/fp32_out/logits.npy")"
            echo "  onnxruntime QDQ vs piqc INT8: cosine $c2, top-1 agreement $t2%, max |diff| $m2; vs FP32: cosine $c3, top-1 $t3%"
            ort=1
        else
            cat "$d/log" >&2
            echo "  (QDQ export failed: no onnxruntime column)"
        fi
    fi
    for th in 1 2; do
        f=() q=() o=() of=() qb=()
        for _ in $(seq "$rounds"); do
            f+=("$(piqc_ms "$d/fp32.gguf" "$d/b1.npy" "$th")")
            [ -n "$BASE" ] && qb+=("$(piqc_ms "$d/int8_base.gguf" "$d/b1.npy" "$th" "$BASE")")
            q+=("$(piqc_ms "$d/int8.gguf" "$d/b1.npy" "$th")")
            [ $ort = 1 ] && o+=("$(ort_ms "$d/qdq.onnx" "$d/b1.npy" "$th")")
            [ $ort = 1 ] && of+=("$(ort_ms "$d/model.onnx" "$d/b1.npy" "$th")")
        done
        fm=$(printf '%s\n' "${f[@]}" | median) qm=$(printf '%s\n' "${q[@]}" | median)
        om=nan bm=nan ofm=nan
        [ $ort = 1 ] && om=$(printf '%s\n' "${o[@]}" | median)
        [ $ort = 1 ] && ofm=$(printf '%s\n' "${of[@]}" | median)
        [ -n "$BASE" ] && bm=$(printf '%s\n' "${qb[@]}" | median)
        line=$(awk -v n="$name" -v th="$th" -v f="$fm" -v q="$qm" -v o="$om" -v b="$bm" -v of="$ofm" 'BEGIN {
            r1 = (q > 0) ? f / q : 0; r2 = (o != "nan" && q > 0) ? o / q : 0
            r3 = (of != "nan" && q > 0) ? of / q : 0
            fmt = (f < 0.1) ? "%.4f" : "%.3f"  # microsecond digits for the small models
            printf "%-20s %2d %10s %10s %10s %12.2fx %12s %12s %12s %12s", n, th, sprintf(fmt, f), sprintf(fmt, q), o, r1, (o == "nan") ? "-" : sprintf("%.2fx", r2),
                   (b == "nan") ? "-" : sprintf(fmt, b), of, (of == "nan") ? "-" : sprintf("%.2fx", r3) }')
        summary+=("$line")
    done
done
echo
printf "%-20s %2s %10s %10s %10s %13s %12s %12s %12s %12s\n" model th "fp32 ms" "int8 ms" "ort ms" "fp32/int8" "ort/int8" "int8 base ms" "ort fp32 ms" "ortf32/int8"
printf '%s\n' "${summary[@]}"
echo "(batch 1; fp32 = piqc fp32-preset artifact; int8 = piqc int8-cnn artifact; ort = onnxruntime-node on the QDQ export, graph optimizations on; int8 base = PIQC_BASE's own int8-cnn artifact; ort fp32 = onnxruntime-node on the FP32 ONNX model)"
