#!/usr/bin/env bash
# Side-by-side: evalcot's generator forward in burn against its PyTorch eager twin (twin.py), on
# the same machine, the same weights (exported from the checkpoint) and the same batch (the CFG
# pair of B images = 2B rows). Prints one line per (batch, implementation) and the ratio.
#
#   benchmarks/twin/compare.sh [--generator base|DIR] [--batches "1 16 64"] [--seconds 5] [--device cpu|cuda]
#
# Needs python3 with torch (pip install torch). With --device cuda the twin also runs in bf16,
# and burn must be built with --features cuda (the burn side here times the CPU backends).
set -euo pipefail
cd "$(dirname "$0")/../.."
generator=base batches="1 16 64" seconds=5 device=cpu
while [[ $# -gt 0 ]]; do
    case $1 in
        --generator) generator=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cargo build --release -q -p benchmarks --bin twin
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/release/twin export "$dir" --generator "$generator" 2>/dev/null
printf '%-6s %-34s %-9s %12s %12s %8s\n' batch implementation precision rows/s images/s ratio
for b in $batches; do
    results=()
    for backend in flex ndarray; do
        results+=("$(target/release/twin bench --generator "$generator" --backend "$backend" --batch "$b" --seconds "$seconds")")
    done
    results+=("$(python3 benchmarks/twin/twin.py "$dir" --batch "$b" --seconds "$seconds" --device "$device")")
    if [[ $device == cuda ]]; then
        results+=("$(python3 benchmarks/twin/twin.py "$dir" --batch "$b" --seconds "$seconds" --device cuda --dtype bfloat16)")
    fi
    printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
torch32 = next(r for r in rows if r["impl"] == "pytorch-eager" and r["precision"] == "float32")
for r in rows:
    name = r["impl"] + " " + r["backend"]
    ratio = r["rows_per_s"] / torch32["rows_per_s"]
    print("%-6d %-34s %-9s %12.1f %12.2f %7.2fx" % (r["batch"], name[:34], r["precision"], r["rows_per_s"], r["images_per_s"], ratio))
'
done
echo "ratio: rows/s against PyTorch eager fp32 on the same device; images/s = rows/s / (2 × T steps)"
