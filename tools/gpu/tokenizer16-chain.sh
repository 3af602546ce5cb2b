#!/usr/bin/env bash
# The next GPU session's chain (prepared in session 4): the generator on the shipped 16×16
# tokenizer (models/weights/tokenizer-16x16, trained on the CPU in session 4: 0.858 of the ground
# truth's 0.933 kept) and its baseline — one script for one `device` call, every step resumable.
# RETRAIN_TOKENIZER=1 first retrains the tokenizer from configs/tokenizer-16x16.yaml on the GPU.
# GENERATOR_CONFIG picks the generator (default configs/generator-16x16.yaml, one position per
# token; configs/generator-16x16-g2.yaml holds 2×2 token groups per position, 4× cheaper).
#
#   tools/gpu/tokenizer16-chain.sh EVALCOT_CUDA_BINARY OUT_DIR
#
# EVALCOT_CUDA_BINARY: built here with `CUDARC_CUDA_VERSION=13000 cargo build --release
# --features cuda` (README "GPU"). Writes OUT_DIR/{tokenizer-16x16,generator-16x16,*.log} and
# OUT_DIR/chain.tar for the trip back.
set -euo pipefail
bin=${1:?usage: tokenizer16-chain.sh EVALCOT_CUDA_BINARY OUT_DIR}
out=${2:?usage: tokenizer16-chain.sh EVALCOT_CUDA_BINARY OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
if [[ -n "${RETRAIN_TOKENIZER:-}" ]]; then
    "$bin" train tokenizer --config configs/tokenizer-16x16.yaml --out "$out/tokenizer-16x16" --device cuda \
        > "$out/tokenizer.log" 2>&1
    "$bin" eval tokenizer --tokenizer "$out/tokenizer-16x16" --suite-images 1 --out "$out/tokenizer.md" \
        > "$out/tokenizer-eval.log" 2>&1
else
    mkdir -p "$out/tokenizer-16x16"
    cp models/weights/tokenizer-16x16/tokenizer.json models/weights/tokenizer-16x16/tokenizer.bpk "$out/tokenizer-16x16/"
fi
config=${GENERATOR_CONFIG:-configs/generator-16x16.yaml}
gen=$(basename "$config" .yaml)
sed "s|^tokenizer: .*|tokenizer: $out/tokenizer-16x16|" "$config" > "$out/$gen.yaml"
"$bin" train generator --config "$out/$gen.yaml" --out "$out/$gen" --device cuda \
    > "$out/$gen.log" 2>&1
mkdir -p "$out/$gen/tokenizer"
cp "$out/tokenizer-16x16/tokenizer.json" "$out/tokenizer-16x16/tokenizer.bpk" "$out/$gen/tokenizer/"
"$bin" run geneval --strategy baseline --generator "$out/$gen" --per-tag 20 \
    --images-per-prompt 2 --out "$out/baseline-$gen" > "$out/baseline-$gen.log" 2>&1
tar -cf "$out/chain.tar" -C "$out" --exclude='*.tar' --exclude=checkpoint.bin .
