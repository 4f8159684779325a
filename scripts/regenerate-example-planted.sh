#!/usr/bin/env bash
# Regenerates reports/example-planted/: the report `aggregate` makes from a synthetic predictions
# file with documented planted disparities (scripts/make-planted-example.py writes it, with the
# list of what was planted in examples/planted/planted.json), so that the findings, charts and
# heatmaps show what a real disparity looks like. No model, no images. tests/example_planted.rs
# checks that the shipped folder is current and that its findings are exactly the planted ones.
# CLIP_AUDIT names a built binary to use instead of `cargo run --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/make-planted-example.py
if [ -n "${CLIP_AUDIT:-}" ]; then
    tool=("$CLIP_AUDIT")
else
    tool=(cargo run --release --quiet --)
fi
rm -rf reports/example-planted
"${tool[@]}" aggregate \
    --predictions examples/planted/predictions.csv \
    --probe probes/clip-paper-race.toml \
    --intersect 'race*gender' \
    --reference race=White \
    --reference 'race*gender=White*Male' \
    --note "$(cat examples/planted/NOTE.txt)" \
    --out reports/example-planted
