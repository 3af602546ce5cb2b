# Shared by the GPU chain scripts (sourced): `chain_start NAME "$@"` checks the two arguments,
# sets $bin and $out, creates $out and moves to the repository root; `cap` runs a step under a
# wall-clock cap.

chain_start() {
    local name=$1
    shift
    bin=${1:?usage: $name EVALCOT_CUDA_BINARY OUT_DIR}
    out=${2:?usage: $name EVALCOT_CUDA_BINARY OUT_DIR}
    mkdir -p "$out"
    # Absolute, so that both survive the move to the repository root.
    bin=$(realpath "$bin")
    out=$(realpath "$out")
    cd "$(dirname "${BASH_SOURCE[0]}")/../.."
}

# cap SECONDS CMD...: runs CMD, killed after SECONDS (0: no cap); a kill is logged, not fatal.
cap() {
    local seconds=$1
    shift
    if [[ "$seconds" == 0 ]]; then
        "$@"
    else
        timeout "$seconds" "$@" || echo "stopped after ${seconds}s (exit $?)" >&2
    fi
}
