#!/usr/bin/env bash
# A GPU session's judge chain: the fine-tuned judge on the base generator's own trajectories,
# its evaluation, then DPO pairs labelled by it — one script for one `device` call.
#
#   tools/gpu/judge-chain.sh EVALCOT_CUDA_BINARY OUT_DIR
#
# Data collection (generator rollouts, annotator labels) runs on the host's cores, one batch per
# core (models/src/judge/data.rs); the judge and DPO updates run on the GPU.
# Environment: JUDGE_CONFIG (default configs/judge-fine-tuned.yaml), DPO_CONFIG (default
# configs/dpo.yaml; empty: skip), JUDGE_SECONDS / DPO_SECONDS wall-clock caps (default none; a
# capped run leaves its checkpoint, and the same command resumes it).
# Writes OUT_DIR/{judge-fine-tuned,judges.md,dpo,*.log} and OUT_DIR/chain.tar for the trip back.
set -euo pipefail
source "$(dirname "$0")/common.sh"
chain_start judge-chain.sh "$@"
cap "${JUDGE_SECONDS:-0}" "$bin" train judge --config "${JUDGE_CONFIG:-configs/judge-fine-tuned.yaml}" \
    --out "$out/judge-fine-tuned" --device cuda > "$out/judge.log" 2>&1
if [[ -f "$out/judge-fine-tuned/judge.json" ]]; then
    "$bin" eval judge --judges "zero-shot,$out/judge-fine-tuned" --out "$out/judges.md" \
        > "$out/judge-eval.log" 2>&1 || true
    dpo=${DPO_CONFIG-configs/dpo.yaml}
    if [[ -n "$dpo" ]]; then
        sed "s|^  judge: fine-tuned|  judge: $out/judge-fine-tuned|" "$dpo" > "$out/dpo.yaml"
        cap "${DPO_SECONDS:-0}" "$bin" train dpo --config "$out/dpo.yaml" --out "$out/dpo" \
            --device cuda > "$out/dpo.log" 2>&1
    fi
fi
tar -cf "$out/chain.tar" -C "$out" --exclude='*.tar' --exclude=checkpoint.bin .
