#!/usr/bin/env bash
# A GPU session's performance checks (issue 10) in one `device` call, each step under a cap and
# all of them under one deadline, so that whatever finished comes back:
#   1. a smoke run on the GPU (kernel compilation, the first failure shows here);
#   2. the PyTorch-twin comparison on the GPU in f32, f16 and bf16 (benchmarks/twin/compare.sh);
#   3. the baseline over 553 prompts × 4 images with the models on cuda, cuda-f16 and cuda-bf16,
#      for the verdicts against the same run on the CPU (tools/compare-runs.py);
#   4. PARM, N = 20, 553 × 4 (the paper's scale) on cuda, timed; first probes on a sample of the
#      suite (PERF_PARM_PROBE prompts of each tag), one per setting in PERF_PARM_PROBES, then the
#      full run with the setting of the fastest probe (or PERF_PARM_FULL_SPEC).
# Every run is made with `--profile`: its profile.json (time per phase: generator forward and
# draws, decoding, judge, detector) comes back in runs.tar and its table is in perf.log.
#
#   tools/gpu/perf-check.sh EVALCOT_CUDA_BINARY TWIN_CUDA_BINARY OUT_DIR [SECONDS]
#
# Both binaries built with `--features cuda` (README "GPU"). SECONDS (default 540) is the
# deadline for the whole script. Environment, to fit a call's budget: PERF_TWIN_BATCHES (default
# "16 64 256"; empty: no twin), PERF_BASELINE_DEVICES (default "cuda cuda-bf16 cuda-f16"; the
# first also runs the smoke), PERF_PARM_DEVICE (default cuda), PERF_PARM_PROBE (prompts per tag
# of each probe, default 4; 0: no probes), PERF_PARM_PROBES (settings THREADS:DRAWS:FORWARD:PROMPTS,
# i.e. worker threads, `run --draws`, `--forward-batch`, `--batch-prompts`; default
# "NPROC:host:32:8 4:device:512:16", the first paper-scale PARM run's setting on the GPU
# and the fastest probe in docs/performance.md; each probe
# is its own process, so the first also pays for kernel compilation), PERF_PARM_PROBE_CAP
# (seconds per probe, default 60), PERF_PARM_FULL_SPEC (default: the fastest finished probe's
# setting, else NPROC:host:32:8), PERF_PARM_FULL_CAP (default 400), PERF_PARM_FULL (default 1;
# 0: no full PARM run), PERF_KERNEL_PROFILE (a setting: one more probe with cubecl's kernel
# profiling and compilation log on, written to OUT_DIR/cubecl-{profile,compile}.log.xz; default
# none). Writes OUT_DIR/{perf.log,runs.tar}: the log with each step's wall time, and each run's
# config.yaml, results.jsonl, summary.json, profile.json and image checksums.
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
    echo "   images: $(find "$runs/$name" -name '*.png' 2>/dev/null | wc -l)" >> "$log"
}

{ nvidia-smi -L; nproc; date -u; } >> "$log" 2>&1
devices=${PERF_BASELINE_DEVICES-cuda cuda-bf16 cuda-f16}
batches=${PERF_TWIN_BATCHES-16 64 256}
parm_device=${PERF_PARM_DEVICE:-cuda}
probe=${PERF_PARM_PROBE:-4}
run_geneval smoke 90 --strategy baseline --limit 4 --images-per-prompt 1 --device "${devices%% *}"
if [[ -n $batches ]]; then
    step twin 150 benchmarks/twin/compare.sh --device cuda --twin-bin "$twin" --batches "$batches" --seconds 2
fi
for d in $devices; do
    run_geneval "baseline-$d" 90 --strategy baseline --device "$d"
done
# parm_args SPEC: the `run` arguments of a THREADS:DRAWS:FORWARD:PROMPTS setting (threads aside).
parm_args() {
    local draws forward prompts
    IFS=: read -r _ draws forward prompts <<< "$1"
    echo --strategy parm --n 20 --device "$parm_device" --draws "$draws" \
        --forward-batch "$forward" --batch-prompts "$prompts"
}
best_spec="" best_s=""
if ((probe > 0)); then
    # Numbered folders: a repeated setting must run again, not resume the finished run.
    i=0
    for spec in ${PERF_PARM_PROBES:-$(nproc):host:32:8 4:device:512:16}; do
        i=$((i + 1))
        name="parm-probe-$i-${spec//:/-}"
        t0=$SECONDS
        # shellcheck disable=SC2046 # parm_args's words are meant to split
        RAYON_NUM_THREADS=${spec%%:*} run_geneval "$name" "${PERF_PARM_PROBE_CAP:-60}" \
            $(parm_args "$spec") --per-tag "$probe"
        took=$((SECONDS - t0))
        # Only a probe that made all its images competes.
        if [[ -f "$runs/$name/summary.json" ]] && { [[ -z $best_s ]] || ((took < best_s)); }; then
            best_spec=$spec best_s=$took
        fi
    done
fi
if [[ -n ${PERF_KERNEL_PROFILE:-} ]]; then
    # cubecl reads cubecl.toml from the working directory: time per kernel (the summary), and one
    # line per compiled kernel (does a run compile a kernel for every new shape?).
    kdir=$(mktemp -d)
    cat > "$kdir/cubecl.toml" <<TOML
[profiling]
logger = { level = "basic", file = "$out/cubecl-profile.log" }
[compilation]
logger = { level = "basic", file = "$out/cubecl-compile.log" }
TOML
    spec=$PERF_KERNEL_PROFILE
    # shellcheck disable=SC2046
    (cd "$kdir" && RAYON_NUM_THREADS=${spec%%:*} run_geneval "kernel-profile-${spec//:/-}" \
        "${PERF_PARM_PROBE_CAP:-60}" $(parm_args "$spec") --per-tag "$((probe > 0 ? probe : 4))")
    for f in "$out"/cubecl-*.log; do
        [[ -f $f ]] && echo "   $(basename "$f"): $(wc -l < "$f") lines" >> "$log" && xz -f "$f"
    done
fi
if [[ ${PERF_PARM_FULL:-1} != 0 ]]; then
    full=${PERF_PARM_FULL_SPEC:-${best_spec:-$(nproc):host:32:8}}
    echo "   full PARM run with $full (fastest probe: ${best_spec:-none})" >> "$log"
    # shellcheck disable=SC2046
    RAYON_NUM_THREADS=${full%%:*} run_geneval "parm-553x4-${full//:/-}" \
        "${PERF_PARM_FULL_CAP:-400}" $(parm_args "$full")
fi
tar -cf "$out/runs.tar" -C "$runs" --exclude='*.png' .
