#!/usr/bin/env bash
# A GPU session's detector chain (issue 4): train a detector on the GPU under a wall-clock cap,
# then validate it as docs/detector.md does — one script for one `device` call.
#
#   tools/gpu/detector-chain.sh EVALCOT_CUDA_BINARY OUT_DIR
#
# Environment: DETECTOR_CONFIG (default configs/detector-v4-gpu.yaml), DETECTOR_SECONDS (cap on
# training, default 0 = none), DEVICE (default cuda; `cpu` runs the same chain here, to test
# it), EVAL_ARGS (default the report's: --images 2000 --empty 500 --suite-images 4 --seed 777).
# A capped run leaves OUT_DIR/detector/checkpoint.bin: carry it back up and the same command
# resumes where it stopped (training is exact under resumption). The evaluation runs only once
# the weights exist. Writes OUT_DIR/{detector/,detector.md,*.log} and OUT_DIR/chain.tar (with
# the checkpoint while training is unfinished) for the trip back.
set -euo pipefail
source "$(dirname "$0")/common.sh"
chain_start detector-chain.sh "$@"
device=${DEVICE:-cuda}
config=${DETECTOR_CONFIG:-configs/detector-v4-gpu.yaml}
cap "${DETECTOR_SECONDS:-0}" "$bin" train detector --config "$config" --out "$out/detector" \
    --device "$device" > "$out/train.log" 2>&1
if [[ -f "$out/detector/detector.json" ]]; then
    # shellcheck disable=SC2086 # EVAL_ARGS is a list of flags
    "$bin" eval detector --detector "$out/detector" \
        ${EVAL_ARGS:---images 2000 --empty 500 --suite-images 4 --seed 777} \
        --out "$out/detector.md" > "$out/eval.log" 2>&1 || echo "evaluation failed: see eval.log" >&2
    exclude=(--exclude=checkpoint.bin)
else
    exclude=()
fi
tar -cf "$out/chain.tar" -C "$out" --exclude='*.tar' "${exclude[@]}" .
