#!/usr/bin/env bash
# Regenerates reports/demo/, the example report shipped with clip-audit: the CLIP paper probe on
# the offline demo set with the tiny random-weight test model. It shows the report format only;
# the model is random, so its numbers mean nothing. --no-cache keeps this machine's cache folder out
# of run.json. The last digit of a few probabilities can differ between CPUs (kernel order); the
# tables, charts and page do not. CLIP_AUDIT names a built binary to use instead of
# `cargo run --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CLIP_AUDIT:-}" ]; then
    tool=("$CLIP_AUDIT")
else
    tool=(cargo run --release --quiet --)
fi
rm -rf reports/demo
"${tool[@]}" run \
    --probe probes/clip-paper-race.toml \
    --dataset datasets/demo.toml \
    --model tests/fixtures/tiny-clip \
    --intersect 'race*gender' \
    --predictions-csv \
    --no-cache \
    --note "Format example: a tiny random-weight test model on synthetic cartoon faces; the numbers mean nothing." \
    --out reports/demo
