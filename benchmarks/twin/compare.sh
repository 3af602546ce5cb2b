#!/usr/bin/env bash
# Side-by-side: evalcot's generator forward in burn against its PyTorch eager twin (twin.py), on
# the same machine, the same weights (exported from the checkpoint) and the same batch (the CFG
# pair of B images = 2B rows). Prints one line per (batch, implementation, precision) and the
# ratio to PyTorch in the same precision.
#
#   benchmarks/twin/compare.sh [--generator base|DIR] [--batches "1 16 64"] [--seconds 5]
#                              [--device cpu|cuda] [--twin-bin PATH]
#
# Needs python3 with torch. On the CPU burn runs on its flex and ndarray backends in f32. With
# --device cuda both sides run in f32, f16 and bf16 on the GPU; the twin binary must then be
# built with `cargo build --release -p benchmarks --features cuda --bin twin` (README "GPU") and
# given with --twin-bin when it was built elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
generator=base batches="1 16 64" seconds=5 device=cpu twin=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --generator) generator=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --twin-bin) twin=$2; shift 2 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case $device in
    cpu) backends="flex ndarray" dtypes="float32" ;;
    cuda) backends="cuda cuda-f16 cuda-bf16" dtypes="float32 float16 bfloat16" ;;
    *) echo "compare.sh: --device $device: expected cpu or cuda" >&2; exit 2 ;;
esac
if [[ -z $twin ]]; then
    cargo build --release -q -p benchmarks --bin twin
    twin=target/release/twin
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$twin" export "$dir" --generator "$generator" 2>/dev/null
printf '%-6s %-34s %-9s %12s %12s %8s\n' batch implementation precision rows/s images/s ratio
for b in $batches; do
    results=()
    for backend in $backends; do
        results+=("$("$twin" bench --generator "$generator" --backend "$backend" --batch "$b" --seconds "$seconds")")
    done
    for dtype in $dtypes; do
        results+=("$(python3 benchmarks/twin/twin.py "$dir" --batch "$b" --seconds "$seconds" --device "$device" --dtype "$dtype")")
    done
    printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
short = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
for r in rows:
    r["precision"] = short.get(r["precision"], r["precision"])
torch = {r["precision"]: r for r in rows if r["impl"] == "pytorch-eager"}
for r in rows:
    name = r["impl"] + " " + r["backend"]
    ref = torch.get(r["precision"], torch["f32"])
    ratio = r["rows_per_s"] / ref["rows_per_s"]
    print("%-6d %-34s %-9s %12.1f %12.2f %7.2fx" % (r["batch"], name[:34], r["precision"], r["rows_per_s"], r["images_per_s"], ratio))
'
done
echo "ratio: rows/s against PyTorch eager in the same precision on the same device; images/s = rows/s / (2 × T steps)"
