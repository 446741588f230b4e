#!/usr/bin/env bash
# Train a demo model from scratch on a CPU, carried across machines that keep only git
# (recipes/demo/RESULTS.md, "Training from scratch on a CPU"). Resumable; run it again to go on.
#   FAMILY=flow1d MINUTES=60 bash recipes/demo/cpu_train.sh [key=value overrides]
#   FAMILY=score2d MINUTES=60 bash recipes/demo/cpu_train.sh        # the baseline family
# The stages (recipes/cpu_series.sh): render + prep the corpus, the conditioning SER and its
# prototypes (kept in recipes/demo/snapshots/), then MINUTES of training resumed from the run's
# last.pt or the committed snapshot recipes/demo/snapshots/<family>.pt, written again at the end.
# A series stops on time, never on the YAML's step count (the flow1d series ran into its 20000 once).
set -euo pipefail
family=${FAMILY:-flow1d}
dataset=demo; recipe=recipes/demo; series=$family
data=${DATA:-data/demo}; runs=${RUNS:-runs/demo}; keep=recipes/demo/snapshots
# the series differ only in the decoder: score2d takes tts_flow.yaml's other settings, except
# its decoder segment of 64 frames, the score2d CPU recipe (2.5x cheaper a step than 172 at the
# same batch; docs/performance.md), so the baseline gets its best CPU-hour. flow1d ran its
# encoder-emotion dropout at 0.2 until 4.14 h and 0.5 since: past 4.14 h, run score2d with
# model.enc_cond_dropout=0.5 as an extra argument to keep the two series alike
case "$family" in
  flow1d) config=recipes/demo/tts_flow.yaml; same=() ;;
  score2d) config=recipes/demo/tts.yaml
    same=(model.cond_dropout=0.15 model.enc_cond_dropout=0.2 normalise_mels=true train.lr=0.0002
          out_size=64) ;;
  *) echo "FAMILY must be flow1d or score2d, got '$family'" >&2; exit 2 ;;
esac
source recipes/cpu_series.sh
