#!/bin/bash
# Queues a sharded run on Slurm: an array of N shard tasks, then the merge once all succeeded.
#
#   deploy/slurm/submit.sh N RUN_CONFIG.yaml RUN_DIR [evalcot run flags…]
#
# Prints the two job ids. RUN_DIR must be on a file system every node sees.
set -euo pipefail
usage="usage: submit.sh N RUN_CONFIG.yaml RUN_DIR [evalcot run flags…]"
n=${1:?$usage}
config=${2:?$usage}
out=${3:?$usage}
shift 3
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "submit.sh: N must be a positive whole number, got '$n'" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
array=$(sbatch --parsable --array="0-$((n - 1))" "$here/evalcot-shard.sbatch" "$config" "$out" "$@")
array=${array%%;*} # --parsable prints "id;cluster" on multi-cluster setups
merge=$(sbatch --parsable --dependency="afterok:$array" "$here/evalcot-merge.sbatch" "$out" "$n")
echo "shards: job $array (array 0-$((n - 1))); merge: job ${merge%%;*}"
