#!/usr/bin/env bash
# Train the natural model (flow1d) from scratch on a CPU, carried across machines that keep only
# git (recipes/demo_natural/RESULTS.md). Resumable; run it again to go on.
#   WIDTH=128 MINUTES=60 bash recipes/demo_natural/cpu_train.sh [key=value overrides]
# WIDTH is the flow decoder's U-Net channels (the width study: recipes/demo_natural/RESULTS.md);
# each width is its own series, snapshot recipes/demo_natural/snapshots/flow1d_c<WIDTH>.pt.
# The stages are recipes/cpu_series.sh's: render + prep demo-natural (pip install
# 'emomix[natural]'), the conditioning SER and prototypes (kept in the snapshot folder), training.
set -euo pipefail
width=${WIDTH:-128}
dataset=demo-natural; recipe=recipes/demo_natural; series=flow1d_c$width
data=${DATA:-data/demo_natural}; runs=${RUNS:-runs/demo_natural}; keep=recipes/demo_natural/snapshots
config=recipes/demo_natural/tts.yaml; same=("model.flow.channels=[$width,$width]")
source recipes/cpu_series.sh
