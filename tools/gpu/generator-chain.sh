#!/usr/bin/env bash
# A GPU session's generator chain: (re)train a tokenizer, train a generator on it, run the
# baseline — one script for one `device` call, every step resumable.
#
#   tools/gpu/generator-chain.sh EVALCOT_CUDA_BINARY OUT_DIR
#
# Environment (defaults: the shipped canonical tokenizer and generator):
#   TOKENIZER_CONFIG  retrain this tokenizer config on the GPU first (e.g.
#                     configs/tokenizer-canonical.yaml with more steps); unset: use TOKENIZER_DIR
#   TOKENIZER_DIR     an existing tokenizer (default models/weights/tokenizer-canonical;
#                     models/weights/tokenizer-16x16 for the 16×16 generators)
#   GENERATOR_CONFIG  default configs/generator-canonical.yaml (configs/generator-16x16*.yaml for
#                     the 16×16 tokenizer)
#   TOKENIZER_SECONDS, GENERATOR_SECONDS  wall-clock caps (default: none). A capped generator run
#                     that stops early is evaluated from its newest snapshot, so a device call's
#                     time limit never loses the whole run.
#
# EVALCOT_CUDA_BINARY: built here with `CUDARC_CUDA_VERSION=13000 cargo build --release
# --features cuda` (README "GPU"). Writes OUT_DIR/{tokenizer,GENERATOR,*.log,*.md} and
# OUT_DIR/chain.tar for the trip back.
set -euo pipefail
source "$(dirname "$0")/common.sh"
chain_start generator-chain.sh "$@"
if [[ -n "${TOKENIZER_CONFIG:-}" ]]; then
    cap "${TOKENIZER_SECONDS:-0}" "$bin" train tokenizer --config "$TOKENIZER_CONFIG" \
        --out "$out/tokenizer" --device cuda > "$out/tokenizer.log" 2>&1
    cap 60 "$bin" eval tokenizer --tokenizer "$out/tokenizer" \
        --suite-images 1 --out "$out/tokenizer.md" > "$out/tokenizer-eval.log" 2>&1
else
    mkdir -p "$out/tokenizer"
    src=${TOKENIZER_DIR:-models/weights/tokenizer-canonical}
    cp "$src/tokenizer.json" "$src/tokenizer.bpk" "$out/tokenizer/"
fi
config=${GENERATOR_CONFIG:-configs/generator-canonical.yaml}
gen=$(basename "$config" .yaml)
sed "s|^tokenizer: .*|tokenizer: $out/tokenizer|" "$config" > "$out/$gen.yaml"
cap "${GENERATOR_SECONDS:-0}" "$bin" train generator --config "$out/$gen.yaml" --out "$out/$gen" \
    --device cuda > "$out/$gen.log" 2>&1
model="$out/$gen"
if [[ ! -f "$model/generator.json" ]]; then
    model=$(ls -d "$out/$gen"/snapshots/step-* | sort -t- -k2 -n | tail -1)
    echo "unfinished: evaluating $model" >> "$out/$gen.log"
    # The newest snapshot travels back in place of the final weights (snapshots stay behind:
    # the trip back takes 16 MiB a file).
    cp "$model/generator.json" "$model/generator.bpk" "$out/$gen/"
fi
mkdir -p "$model/tokenizer"
cp "$out/tokenizer/tokenizer.json" "$out/tokenizer/tokenizer.bpk" "$model/tokenizer/"
cap "${BASELINE_SECONDS:-0}" "$bin" run geneval --strategy baseline --generator "$model" \
    --per-tag 20 --images-per-prompt 2 --out "$out/baseline-$gen" > "$out/baseline-$gen.log" 2>&1
tar -cf "$out/chain.tar" -C "$out" --exclude='*.tar' --exclude=checkpoint.bin \
    --exclude=snapshots .
