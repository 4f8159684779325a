#!/usr/bin/env bash
# A clip-audit audit spread over a Slurm cluster: a job array with one `run --shard K/N` per task,
# then a job that starts only when every task succeeded (afterok) and aggregates the shards into
# one report and gates it with `check`.
#
# Submit from a folder on storage every node sees (the shards, the report and the embedding cache
# are written under $WORK):
#
#   SHARDS=8 MODEL=openai/clip-vit-base-patch32 RULES=my-rules.toml bash slurm-array.sh
#
# Settings (environment variables, all optional):
#   CLIP_AUDIT  the clip-audit binary (default: `clip-audit` on PATH)
#   PROBE       probe set, a built-in name or a file (default: clip-paper-race)
#   DATASET     dataset spec, a built-in name or a file (default: fairface-val)
#   MODEL       checkpoint folder or Hub id (default: openai/clip-vit-base-patch32)
#   REVISION    Hub revision to pin (default: none)
#   SHARDS      N, the number of array tasks (default: 4)
#   WORK        shared folder for shards/, report/ and cache/ (default: ./clip-audit-work)
#   RULES       rules file for `check` (default: none; then the gate step is skipped)
#   TABULATE_ARGS  what to tabulate, for `run` and `aggregate` alike (default: "--intersect
#               race*gender"); the aggregated tables equal the unsharded run's only when both agree
#   RUN_ARGS    extra arguments for each shard's `run`, e.g. "--batch 64 --offline"
#   SBATCH_ARGS extra sbatch options for both jobs, e.g. "--partition=cpu --time=02:00:00"
#
# Exit status of the final job: `check`'s (0 every rule holds, 1 a rule failed, 2 an error), so
# Slurm marks the audit FAILED when the gate fails. A shard that fails leaves its folder
# unfinished (no run.json), the aggregate job never starts (afterok), and a later `aggregate`
# over the folders names the missing shard.
#
#SBATCH --job-name=clip-audit
#SBATCH --cpus-per-task=2
#SBATCH --output=clip-audit-%A_%a.out

set -euo pipefail

CLIP_AUDIT=${CLIP_AUDIT:-clip-audit}
PROBE=${PROBE:-clip-paper-race}
DATASET=${DATASET:-fairface-val}
MODEL=${MODEL:-openai/clip-vit-base-patch32}
SHARDS=${SHARDS:-4}
WORK=${WORK:-$PWD/clip-audit-work}
RULES=${RULES:-}
TABULATE_ARGS=${TABULATE_ARGS-"--intersect race*gender"}
read -r -a tabulate_args <<< "$TABULATE_ARGS"
read -r -a run_args <<< "${RUN_ARGS:-}"
read -r -a sbatch_args <<< "${SBATCH_ARGS:-}"
revision=()
if [[ -n ${REVISION:-} ]]; then revision=(--revision "$REVISION"); fi

case "${CLIP_AUDIT_STAGE:-submit}" in
submit)
    # Not inside a job: submit the array, then the aggregating job that waits for all of it.
    mkdir -p "$WORK/shards" "$WORK/logs"
    export CLIP_AUDIT PROBE DATASET MODEL SHARDS WORK RULES TABULATE_ARGS RUN_ARGS SBATCH_ARGS \
        REVISION
    script=$(readlink -f "${BASH_SOURCE[0]}")
    array=$(CLIP_AUDIT_STAGE=shard sbatch --parsable --export=ALL \
        --array="0-$((SHARDS - 1))" --output="$WORK/logs/shard-%a.out" \
        "${sbatch_args[@]}" "$script")
    array=${array%%;*}
    final=$(CLIP_AUDIT_STAGE=aggregate sbatch --parsable --export=ALL \
        --dependency="afterok:$array" --kill-on-invalid-dep=yes \
        --job-name=clip-audit-aggregate --output="$WORK/logs/aggregate.out" \
        "${sbatch_args[@]}" "$script")
    final=${final%%;*}
    echo "submitted shards as job array $array and the aggregation as job $final"
    echo "report: $WORK/report (logs in $WORK/logs)"
    ;;
shard)
    # One array task: shard K of N, K = the task id.
    k=${SLURM_ARRAY_TASK_ID:?not inside a Slurm array task}
    "$CLIP_AUDIT" --threads "${SLURM_CPUS_PER_TASK:-2}" run --probe "$PROBE" \
        --dataset "$DATASET" --model "$MODEL" "${revision[@]}" \
        --shard "$k/$SHARDS" --cache-dir "$WORK/cache" \
        --out "$WORK/shards/$k" "${tabulate_args[@]}" "${run_args[@]}"
    ;;
aggregate)
    # After every task succeeded: combine the shards (the command checks they are all N shards
    # of one run), then gate.
    "$CLIP_AUDIT" aggregate --predictions "$WORK"/shards/*/ --probe "$PROBE" \
        --out "$WORK/report" "${tabulate_args[@]}"
    if [[ -n $RULES ]]; then
        "$CLIP_AUDIT" check "$WORK/report" --rules "$RULES" --junit "$WORK/check-junit.xml"
    else
        echo "RULES not set: the fairness gate (clip-audit check) was skipped"
    fi
    ;;
*)
    echo "unknown CLIP_AUDIT_STAGE=$CLIP_AUDIT_STAGE" >&2
    exit 2
    ;;
esac
