#!/usr/bin/env bash
# A GPU session's performance checks (issue 10) in one `device` call, each step under a cap and
# all of them under one deadline, so that whatever finished comes back:
#   1. a smoke run on the GPU (kernel compilation, the first failure shows here);
#   2. the PyTorch-twin comparison on the GPU in f32, f16 and bf16 (benchmarks/twin/compare.sh);
#   3. the baseline over 553 prompts × 4 images with the models on cuda, cuda-f16 and cuda-bf16,
#      for the verdicts against the same run on the CPU (tools/compare-runs.py);
#   4. PARM, N = 20, 553 × 4 (the paper's scale) on cuda, timed; first a 16-prompt probe, once
#      per worker-thread count in PERF_PARM_THREADS and per token-draw site in PERF_PARM_DRAWS
#      (each run is its own process: compare probes with the same kernels compiled, or set
#      PERF_PARM_DRAWS="host device host" to see what the first one paid for compilation).
# Every run is made with `--profile`: its profile.json (time per phase: generator forward and
# draws, decoding, judge, detector) comes back in runs.tar and its table is in perf.log.
#
#   tools/gpu/perf-check.sh EVALCOT_CUDA_BINARY TWIN_CUDA_BINARY OUT_DIR [SECONDS]
#
# Both binaries built with `--features cuda` (README "GPU"). SECONDS (default 540) is the
# deadline for the whole script. Environment, to fit a call's budget: PERF_TWIN_BATCHES (default
# "16 64 256"; empty: no twin), PERF_BASELINE_DEVICES (default "cuda cuda-bf16 cuda-f16"; the
# first also runs the smoke), PERF_PARM_PROBE (default 16 prompts; 0: none), PERF_PARM_DEVICE
# (default cuda), PERF_PARM_THREADS (default: all cores; e.g. "16 4" probes with 16 then 4
# worker threads), PERF_PARM_DRAWS (default "host device": `run --draws` of the probes; to skip
# the probes set PERF_PARM_PROBE=0),
# PERF_PARM_FULL_DRAWS (default host), PERF_PARM_PROBE_CAP (seconds per probe, default 60),
# PERF_PARM_FULL (default 1; 0: no full PARM run). Writes OUT_DIR/{perf.log,runs.tar}: the log with each step's
# wall time, and each run's config.yaml, results.jsonl, summary.json and image checksums.
set -uo pipefail
source "$(dirname "$0")/common.sh"
twin=$(realpath "${2:?usage: perf-check.sh EVALCOT_CUDA TWIN_CUDA OUT_DIR [SECONDS]}")
chain_start perf-check.sh "$1" "$3"
deadline=$((SECONDS + ${4:-540}))
# cubecl tunes kernels per shape on first use; the default (balanced) level spent minutes on
# half precision in an earlier session (../shared/reference/burn.md), more than one call affords.
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
log="$out/perf.log"
runs="$out/runs"
mkdir -p "$runs"

# step NAME CAP CMD...: runs CMD under min(CAP, time left), logs its wall time and exit status.
step() {
    local name=$1 cap_s=$2
    shift 2
    local left=$((deadline - SECONDS))
    ((left < cap_s)) && cap_s=$left
    if ((cap_s < 5)); then
        echo "== $name: skipped (deadline)" >> "$log"
        return
    fi
    echo "== $name (cap ${cap_s}s): $*" >> "$log"
    local t0=$SECONDS
    timeout "$cap_s" "$@" >> "$log" 2>&1
    echo "== $name: exit $? after $((SECONDS - t0))s" >> "$log"
}

# run_geneval NAME CAP ARGS...: an `evalcot run geneval` into runs/NAME, then its image checksums.
run_geneval() {
    local name=$1 cap_s=$2
    shift 2
    step "$name" "$cap_s" "$bin" run geneval --profile --out "$runs/$name" "$@"
    [[ -d "$runs/$name" ]] && (cd "$runs/$name" && find . -name '*.png' | sort | xargs -r md5sum > md5.txt)
    echo "   images: $(find "$runs/$name" -name '*.png' | wc -l)" >> "$log"
}

{ nvidia-smi -L; nproc; date -u; } >> "$log" 2>&1
devices=${PERF_BASELINE_DEVICES-cuda cuda-bf16 cuda-f16}
batches=${PERF_TWIN_BATCHES-16 64 256}
parm_device=${PERF_PARM_DEVICE:-cuda}
probe=${PERF_PARM_PROBE:-16}
run_geneval smoke 90 --strategy baseline --limit 4 --images-per-prompt 1 --device "${devices%% *}"
if [[ -n $batches ]]; then
    step twin 150 benchmarks/twin/compare.sh --device cuda --twin-bin "$twin" --batches "$batches" --seconds 2
fi
for d in $devices; do
    run_geneval "baseline-$d" 90 --strategy baseline --device "$d"
done
if ((probe > 0)); then
    # Numbered folders: a repeated setting must run again, not resume the finished run.
    i=0
    for threads in ${PERF_PARM_THREADS:-$(nproc)}; do
        for draws in ${PERF_PARM_DRAWS:-host device}; do
            i=$((i + 1))
            RAYON_NUM_THREADS=$threads run_geneval "parm-probe-$i-t$threads-$draws" \
                "${PERF_PARM_PROBE_CAP:-60}" \
                --strategy parm --n 20 --limit "$probe" --device "$parm_device" --draws "$draws"
        done
    done
fi
if [[ ${PERF_PARM_FULL:-1} != 0 ]]; then
    full_draws=${PERF_PARM_FULL_DRAWS:-host}
    run_geneval "parm-553x4-$parm_device-$full_draws" 400 --strategy parm --n 20 \
        --device "$parm_device" --draws "$full_draws"
fi
tar -cf "$out/runs.tar" -C "$runs" --exclude='*.png' .
