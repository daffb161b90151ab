#!/usr/bin/env bash
# QAT step time (forward + backward + update) of `piqc train` beside PyTorch (bench/qat_torch.py) on
# the same model, batch, STE (LSQ), KD loss, AdamW and thread count (issue 7, "Speed"). For each
# model and thread count, piqc and torch alternate for --rounds rounds; medians of the per-run medians.
# Usage: bench/bench_qat.sh [--rounds R] [--steps N] [--torch-steps N] [--threads "1 2"]
#                           [--batch B] [--models "digits charlm"] [--pipeline P]
#   --steps N        piqc train --max-steps (default 100); --torch-steps: timed torch steps (100)
#                    after 10 untimed ones; --pipeline (default qat-piq3; qat_torch.py models piq3
#                    full QAT with lsq)
#   env: PIQC (default build/tools/piqc), PY (default /usr/bin/python3), CHARLM_DIR (default
#        examples/charlm; skipped when absent), TORCH_BLAS_DIR: a directory with an optimized
#        libblas.so.3 for torch (default: /usr/lib/x86_64-linux-gnu/openblas-pthread when present;
#        Debian's torch otherwise runs on the netlib reference BLAS, ~17x slower on the LM).
#   For T > 1 both sides get OMP_WAIT_POLICY=passive unless set (spinning OpenMP workers fight for
#   the 2 cores of a shared machine).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIQC=${PIQC:-$ROOT/build/tools/piqc}
PY=${PY:-/usr/bin/python3}
CHARLM_DIR=${CHARLM_DIR:-$ROOT/examples/charlm}
user_wait=${OMP_WAIT_POLICY:-}
rounds=3 steps=100 tsteps=100 threads_list="1 2" batch=16 models="digits charlm" pipeline=qat-piq3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
        --steps) steps=${2:?--steps needs a value}; shift 2 ;;
        --torch-steps) tsteps=${2:?--torch-steps needs a value}; shift 2 ;;
        --threads) threads_list=${2:?--threads needs a value}; shift 2 ;;
        --batch) batch=${2:?--batch needs a value}; shift 2 ;;
        --models) models=${2:?--models needs a value}; shift 2 ;;
        --pipeline) pipeline=${2:?--pipeline needs a value}; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "bench_qat: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
for v in "$rounds" "$steps" "$tsteps" "$batch" $threads_list; do
    case "$v" in ''|*[!0-9]*|0) echo "bench_qat: '$v' is not a positive integer" >&2; exit 2 ;; esac
done
short_steps=$(( steps / 10 > 0 ? steps / 10 : 1 ))
[ "$steps" -gt "$short_steps" ] && [ "$tsteps" -gt 1 ] || { echo "bench_qat: --steps and --torch-steps must be > 1" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_qat: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
[ -x "$PIQC" ] || { echo "bench_qat: piqc not found at $PIQC (build it or set PIQC)" >&2; exit 2; }
"$PY" -c "import torch, onnx, numpy" 2>/dev/null ||
    { echo "bench_qat: $PY lacks torch/onnx/numpy (scripts/install-deps --with-models)" >&2; exit 2; }

blas_dir=${TORCH_BLAS_DIR:-}
if [ -z "$blas_dir" ] && [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
    blas_dir=/usr/lib/x86_64-linux-gnu/openblas-pthread
fi
if [ -n "$blas_dir" ] && [ ! -e "$blas_dir/libblas.so.3" ]; then
    echo "bench_qat: TORCH_BLAS_DIR=$blas_dir has no libblas.so.3" >&2; exit 2
fi
[ -n "$blas_dir" ] || echo "bench_qat: warning: no OpenBLAS found (apt-get install libopenblas0-pthread, or set TORCH_BLAS_DIR): torch may run on the reference BLAS and the ratio would flatter piqc" >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name | onnx | data dir | torch --model
cases=()
for m in $models; do
    case "$m" in
        digits) cases+=("digits|$ROOT/examples/digits/model.onnx|$ROOT/examples/digits/train|digits") ;;
        charlm)
            if [ -f "$CHARLM_DIR/model.onnx" ] && [ -d "$CHARLM_DIR/train" ]; then
                cases+=("charlm|$CHARLM_DIR/model.onnx|$CHARLM_DIR/train|charlm")
            else
                echo "bench_qat: $CHARLM_DIR/model.onnx or $CHARLM_DIR/train is missing: the language model is skipped (scripts/train_charlm.py makes it; or set CHARLM_DIR)" >&2
            fi ;;
        *) echo "bench_qat: unknown model '$m' (digits, charlm)" >&2; exit 2 ;;
    esac
done
[ ${#cases[@]} -gt 0 ] || { echo "bench_qat: nothing to run" >&2; exit 2; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
cpu_of() { awk '{print $1 + $2}' "$1"; }  # user + sys seconds written by /usr/bin/time -f "%U %S"

piqc_run() {  # model data threads steps -> "step-median-ms cpu-s"; keeps the memory line in $tmp/mem
    local log=$tmp/piqc.log
    if ! /usr/bin/time -f "%U %S" -o "$tmp/cpu" "$PIQC" train "$1" --pipeline "$pipeline" \
            --data "$2" -o "$tmp/out.gguf" --max-steps "$4" --threads "$3" --batch "$batch" \
            >"$log" 2>&1; then
        echo "bench_qat: piqc train $1 failed:" >&2; tail -5 "$log" >&2; return 1
    fi
    grep -m1 '^training memory:' "$log" >"$tmp/mem" || true
    echo "$(sed -n 's/^step time median \([0-9.]*\) ms.*/\1/p' "$log" | head -1) $(cpu_of "$tmp/cpu")"
}
torch_run() {  # torch-model onnx data threads steps -> "step-median-ms cpu-s"
    local log=$tmp/torch.log
    if ! /usr/bin/time -f "%U %S" -o "$tmp/cpu" \
            env ${blas_dir:+LD_LIBRARY_PATH=$blas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}} \
            "$PY" "$ROOT/bench/qat_torch.py" --model "$1" --onnx "$2" --data "$3" --threads "$4" \
            --batch "$batch" --steps "$5" --warmup 10 >"$log" 2>&1; then
        echo "bench_qat: bench/qat_torch.py --model $1 failed:" >&2; tail -5 "$log" >&2; return 1
    fi
    grep -m1 '^torch [0-9]' "$log" | sed 's/^/  /' >"$tmp/torchinfo" || true
    echo "$(sed -n 's/^torch step time median \([0-9.]*\) ms.*/\1/p' "$log" | head -1) $(cpu_of "$tmp/cpu")"
}
per_step() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{printf "%.3f", (b - a) / n * 1000}'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "piqc train --pipeline $pipeline (--max-steps $steps) vs PyTorch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null) (10 + $tsteps steps), batch $batch, $rounds alternating rounds; medians of the per-run step-time medians; CPU: $cpu, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "torch BLAS: ${blas_dir:-system default}"
echo "cpu ms/step: process CPU time (user + sys, all threads) of the long runs minus that of a run with $short_steps steps, per extra step (wall-clock step times swing with other load; CPU time much less)"
results=()
for c in "${cases[@]}"; do
    IFS='|' read -r name onnx data tmodel <<<"$c"
    for t in $threads_list; do
        if [ -n "$user_wait" ]; then export OMP_WAIT_POLICY=$user_wait
        elif [ "$t" -gt 1 ]; then export OMP_WAIT_POLICY=passive; else unset OMP_WAIT_POLICY; fi
        export OMP_NUM_THREADS=$t
        p=() q=() pc=() qc=()
        set -- $(piqc_run "$onnx" "$data" "$t" "$short_steps"); p0=$2
        set -- $(torch_run "$tmodel" "$onnx" "$data" "$t" 1); q0=$2
        for _ in $(seq "$rounds"); do
            set -- $(piqc_run "$onnx" "$data" "$t" "$steps"); p+=("$1"); pc+=("$2")
            set -- $(torch_run "$tmodel" "$onnx" "$data" "$t" "$tsteps"); q+=("$1"); qc+=("$2")
        done
        pm=$(printf "%s\n" "${p[@]}" | median)
        qm=$(printf "%s\n" "${q[@]}" | median)
        pcpu=$(per_step "$p0" "$(printf "%s\n" "${pc[@]}" | median)" $((steps - short_steps)))
        qcpu=$(per_step "$q0" "$(printf "%s\n" "${qc[@]}" | median)" $((tsteps - 1)))
        echo "$name, $t thread(s): piqc runs ${p[*]} ms; torch runs ${q[*]} ms (OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}); cpu ms/step piqc $pcpu, torch $qcpu"
        echo "  piqc $(cat "$tmp/mem")"
        cat "$tmp/torchinfo"
        results+=("$(printf "%-8s %7s %6s %10.3f %10.3f %11.2f %14s %14s %9.2f" "$name" "$t" "$batch" \
            "$pm" "$qm" "$(awk -v a="$pm" -v b="$qm" 'BEGIN{print a/b}')" "$pcpu" "$qcpu" \
            "$(awk -v a="$pcpu" -v b="$qcpu" 'BEGIN{print (b > 0) ? a/b : 0}')")")
    done
done
unset OMP_WAIT_POLICY
echo
printf "%-8s %7s %6s %10s %10s %11s %14s %14s %9s\n" model threads batch "piqc ms" "torch ms" "piqc/torch" \
    "piqc cpu ms" "torch cpu ms" "cpu ratio"
printf "%s\n" "${results[@]}"
