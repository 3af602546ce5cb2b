#!/usr/bin/env bash
# The measurements of docs/verifiers.md, from a bank of the base generator on GenEval.
#
#   evalcot bank geneval --n 20 --images-per-prompt 4 --shard 0/4 --out banks/geneval-base-n20
#   tools/verifiers.sh banks/geneval-base-n20.shard-0-of-4 runs/verifiers
#
# (shard 0 of a 4-image bank is image 0 of every prompt: 553 × 1 × 20 candidates). Every step
# resumes or is skipped when its output exists; times go to OUT/times.txt.
set -euo pipefail
BANK=${1:?usage: tools/verifiers.sh BANK OUT}
OUT=${2:?usage: tools/verifiers.sh BANK OUT}
EVALCOT=${EVALCOT:-target/release/evalcot}
ANY=${ANY_BUILD:+--any-build}
mkdir -p "$OUT"
timed() { # NAME CMD…: runs CMD once, recording its wall time
  local name=$1; shift
  if grep -q "^$name " "$OUT/times.txt" 2>/dev/null; then return; fi
  local t0; t0=$(date +%s.%N)
  "$@"
  echo "$name $(echo "$(date +%s.%N) - $t0" | bc) s" >> "$OUT/times.txt"
}
HEAD=models/weights/judge-evidence-fine-tuned
# 1. Every judge ranks the bank's candidates (within-image AUROC, best-of-N′, gap closed), and
#    again without the image (blank, shuffled).
timed bench-ablations "$EVALCOT" eval judge --bank "$BANK" $ANY --ablations \
  --judges zero-shot,fine-tuned,evidence,evidence:models/weights/annotator-v1,$HEAD \
  --out "$OUT/verifiers-geneval.md" > /dev/null
# 2. Through the product: replays (byte-identical to `evalcot run` with the same settings).
replay() { local name=$1; shift; timed "$name" "$EVALCOT" replay "$BANK" $ANY --out "$OUT/$name" "$@" > /dev/null; }
replay baseline --strategy baseline
replay oracle --strategy oracle
replay orm-fine-tuned-n20 --strategy orm --judge fine-tuned
replay orm-fine-tuned-n8 --strategy orm --judge fine-tuned --n 8
replay orm-evidence-n20 --strategy orm --judge evidence
replay orm-evidence-n8 --strategy orm --judge evidence --n 8
replay parm-evidence-n20 --strategy parm --judge evidence@1.0
replay parm-evidence-half-n20 --strategy parm --judge evidence@0.5
replay orm-head-n20 --strategy orm --judge $HEAD
replay orm-head-n8 --strategy orm --judge $HEAD --n 8
# PARM with the relative rule, the two settings chosen on the development bank.
replay parm-evidence-0.33-keep-0.25 --strategy parm --judge evidence@0.33 --keep-best 0.25
replay parm-evidence-0.5-keep-0.5 --strategy parm --judge evidence@0.5 --keep-best 0.5
# 3. The annotator against the evaluation detector on the base generator's samples.
base=$(ls -d "$OUT"/baseline "$OUT"/baseline.shard-* 2>/dev/null | head -1 || true)
timed annotator "$EVALCOT" score "$base" --detector models/weights/annotator \
  --out "$OUT/baseline-annotator/results.jsonl" > /dev/null
